#include "config.h"
#include "testutil.h"
int main(void){Suite *s=suite_create("e2e");return tu_run(s);}
