/* libocto: long-running download jobs, storage, and the Octopus HTTP API.
 * Include this one header; link with `pkg-config --cflags --libs libocto`. */
#ifndef OCTOPUS_H
#define OCTOPUS_H

#include "octopus/version.h"
#include "octopus/common.h"
#include "octopus/store.h"
#include "octopus/json.h"
#include "octopus/job.h"
#include "octopus/api.h"
#include "octopus/metrics.h"
#include "octopus/log.h"
#include "octopus/trace.h"

#endif
