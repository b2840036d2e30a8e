#include "config.h"
#include "testutil.h"
int main(void){Suite *s=suite_create("envfile");return tu_run(s);}
