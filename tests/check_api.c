#include "config.h"
#include "testutil.h"
int main(void){Suite *s=suite_create("api");return tu_run(s);}
