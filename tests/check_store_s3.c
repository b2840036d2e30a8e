#include "config.h"
#include "testutil.h"
int main(void){Suite *s=suite_create("store_s3");return tu_run(s);}
