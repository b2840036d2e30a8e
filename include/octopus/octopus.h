/* libocto: long-running download jobs, storage, and the Octopus HTTP API.
 * Include this one header; link with `pkg-config --cflags --libs libocto`. */
/*
 * common.h states the ownership, thread-safety and error rules of the
 * whole library; each module header adds those of its own handles and
 * documents every function it declares.
 */
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
