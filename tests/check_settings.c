#include "config.h"
#include "testutil.h"
int main(void){Suite *s=suite_create("settings");return tu_run(s);}
