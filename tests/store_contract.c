#include "config.h"
#include "store_contract.h"
