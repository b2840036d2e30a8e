#include "config.h"
#include "testutil.h"
int main(void){Suite *s=suite_create("store");return tu_run(s);}
