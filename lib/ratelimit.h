/* A fixed-window request counter per client address, bounded in memory.
 * Safe to use from many threads at once. */
#ifndef OCTO_LIB_RATELIMIT_H
#define OCTO_LIB_RATELIMIT_H

#include <stdint.h>

typedef struct octo__ratelimit octo__ratelimit;

typedef struct {
	int allowed;         /* 1: serve the request; 0: answer 429 */
	uint32_t limit;      /* RateLimit-Limit */
	uint32_t remaining;  /* RateLimit-Remaining */
	uint32_t reset_s;    /* RateLimit-Reset: seconds until the window ends */
} octo__ratelimit_verdict;

/* At most this many clients are tracked; past it, untracked clients are
 * let through rather than letting memory grow without bound. */
#define OCTO__RATELIMIT_MAX_CLIENTS 100000

int octo__ratelimit_new(octo__ratelimit **out, uint32_t window_ms, uint32_t max);
void octo__ratelimit_free(octo__ratelimit *rl);

/* Counts one request of `client` at `now_ms` (monotonic) when `count` is
 * non-zero, or only looks when it is zero, and says what to answer. */
void octo__ratelimit_hit(octo__ratelimit *rl, const char *client, uint64_t now_ms,
                         int count, octo__ratelimit_verdict *out);

/* Number of clients tracked now (for tests). */
size_t octo__ratelimit_clients(octo__ratelimit *rl);

#endif
