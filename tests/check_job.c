#include "config.h"
#include "testutil.h"
int main(void){Suite *s=suite_create("job");return tu_run(s);}
