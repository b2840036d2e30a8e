#include "config.h"
#include "s3server.h"
