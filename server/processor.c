/* The simulate processor. */
#include "config.h"
#include "processor.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define PROGRESS_STEPS 10

/* 64 KiB to 127 KiB, depending on the id: small, but not all alike. */
uint64_t artifact_size(int64_t file_id)
{
	return 65536 + (uint64_t)(file_id % 64) * 1024;
}

/* A header naming the file, then bytes from a generator seeded by the id:
 * the same id always gives the same file. */
void artifact_fill(int64_t file_id, unsigned char *buf, uint64_t size)
{
	uint64_t x = (uint64_t)file_id * 0x9e3779b97f4a7c15u + 1, i;
	int n = snprintf((char *)buf, size, "Octopus artifact for file %" PRId64 "\n", file_id);

	for (i = n > 0 ? (uint64_t)n : 0; i < size; i++) {
		x ^= x << 13; /* xorshift64 */
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (unsigned char)x;
	}
}

static uint32_t random_delay(const simulate_options *o)
{
	uint32_t r = 0, span = o->delay_max_ms - o->delay_min_ms;

	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = 0;
	return o->delay_min_ms + (span == UINT32_MAX ? r : r % (span + 1));
}

int processor_simulate(octo_task *task, void *payload)
{
	const simulate_options *o = payload;
	octo_store *store = octo_task_store(task);
	const char *key = octo_task_key(task);
	uint32_t delay = o->delay_enabled ? random_delay(o) : 0;
	unsigned char *buf;
	uint64_t size;
	int i, rc;

	for (i = 1; i <= PROGRESS_STEPS && delay > 0; i++) {
		if (octo_task_sleep(task, delay / PROGRESS_STEPS))
			return OCTO_EABORTED;
		octo_task_progress(task, (double)i / PROGRESS_STEPS * 0.99);
	}
	rc = octo_store_head(store, key, NULL);
	if (rc != OCTO_ENOTFOUND)
		return rc; /* 0: the file is there already */
	size = artifact_size(octo_task_file_id(task));
	if (!(buf = malloc(size)))
		return OCTO_ENOMEM;
	artifact_fill(octo_task_file_id(task), buf, size);
	rc = octo_store_put(store, key, buf, size);
	free(buf);
	return rc;
}
