/* The processors octopusd ships, chosen by OCTO_PROCESSOR. */
#ifndef OCTOPUSD_PROCESSOR_H
#define OCTOPUSD_PROCESSOR_H

#include <stdint.h>

#include <octopus/job.h>

typedef struct {
	int delay_enabled;
	uint32_t delay_min_ms;
	uint32_t delay_max_ms;
} simulate_options;

/* "simulate", the upstream behaviour: waits a random time in [min, max]
 * reporting progress, then makes downloads/<id>.zip available: an object
 * already in the store is used as it is, otherwise a deterministic
 * artifact for that id is written, so a fresh install serves real files.
 * Idempotent. `payload` is a simulate_options. */
int processor_simulate(octo_task *task, void *payload);

typedef struct {
	const char *url_template;   /* OCTO_ORIGIN_URL: "{file_id}" is replaced */
	uint32_t stall_s;           /* a transfer slower than 1 byte/s this long fails */
} origin_options;

/* "origin": fetches the file from url_template with libcurl into a
 * temporary file (reporting byte progress), resuming with Range when the
 * transfer breaks (up to 3 times per attempt), then streams it into the
 * store. A 4xx answer fails the attempt at once. `payload` is an
 * origin_options. */
int processor_origin(octo_task *task, void *payload);

/* The artifact for `file_id` into `buf` (`size` bytes, see artifact_size). */
uint64_t artifact_size(int64_t file_id);
void artifact_fill(int64_t file_id, unsigned char *buf, uint64_t size);

#endif
