/* Fixed-window rate limiting: one counter per client address, reset when
 * its window has passed. A chained hash table under one mutex; expired
 * entries are swept when the table grows, so memory follows active clients. */
#include "config.h"
#include "internal.h"
#include "ratelimit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 4096
#define CLIENT_MAX 64 /* an IPv6 text address is at most 45 bytes */

typedef struct entry {
	struct entry *next;
	uint64_t window_start;
	uint32_t count;
	char client[CLIENT_MAX];
} entry;

struct octo__ratelimit {
	pthread_mutex_t lock;
	uint32_t window_ms;
	uint32_t max;
	size_t clients;
	size_t sweep_at;  /* sweep expired entries when clients reach this */
	entry *buckets[BUCKETS];
};

int octo__ratelimit_new(octo__ratelimit **out, uint32_t window_ms, uint32_t max)
{
	octo__ratelimit *rl;

	if (window_ms == 0)
		return octo__error(OCTO_EINVAL, "rate limit window must be positive");
	if (!(rl = calloc(1, sizeof(*rl))))
		return octo__error(OCTO_ENOMEM, "out of memory");
	pthread_mutex_init(&rl->lock, NULL);
	rl->window_ms = window_ms;
	rl->max = max;
	rl->sweep_at = 1024;
	*out = rl;
	return 0;
}

void octo__ratelimit_free(octo__ratelimit *rl)
{
	size_t i;

	if (!rl)
		return;
	for (i = 0; i < BUCKETS; i++) {
		entry *e = rl->buckets[i];
		while (e) {
			entry *next = e->next;
			free(e);
			e = next;
		}
	}
	pthread_mutex_destroy(&rl->lock);
	free(rl);
}

static size_t hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % BUCKETS;
}

/* Callers read the clock before taking the lock, so `now_ms` may be a
 * little older than the window's start: that is inside the window, not a
 * huge unsigned difference that would restart it. */
static uint64_t elapsed_since(uint64_t start_ms, uint64_t now_ms)
{
	return now_ms > start_ms ? now_ms - start_ms : 0;
}

static void sweep(octo__ratelimit *rl, uint64_t now_ms)
{
	size_t i;

	for (i = 0; i < BUCKETS; i++) {
		entry **link = &rl->buckets[i];
		while (*link) {
			entry *e = *link;
			if (elapsed_since(e->window_start, now_ms) >= rl->window_ms) {
				*link = e->next;
				free(e);
				rl->clients--;
			} else {
				link = &e->next;
			}
		}
	}
	/* Sweep again only after the table has doubled, so the cost of
	 * sweeping stays proportional to the number of inserts. */
	rl->sweep_at = rl->clients * 2 > 1024 ? rl->clients * 2 : 1024;
}

static entry *find_or_add(octo__ratelimit *rl, const char *client, uint64_t now_ms)
{
	size_t b = hash(client);
	entry *e;

	for (e = rl->buckets[b]; e; e = e->next)
		if (strcmp(e->client, client) == 0)
			return e;
	if (rl->clients >= rl->sweep_at)
		sweep(rl, now_ms);
	if (rl->clients >= OCTO__RATELIMIT_MAX_CLIENTS || !(e = calloc(1, sizeof(*e))))
		return NULL;
	memcpy(e->client, client, strlen(client) + 1);
	e->window_start = now_ms;
	e->next = rl->buckets[b];
	rl->buckets[b] = e;
	rl->clients++;
	return e;
}

void octo__ratelimit_hit(octo__ratelimit *rl, const char *client, uint64_t now_ms,
                         int count, octo__ratelimit_verdict *out)
{
	char key[CLIENT_MAX];
	uint64_t elapsed;
	entry *e;

	snprintf(key, sizeof(key), "%s", client ? client : "");
	out->limit = rl->max;
	pthread_mutex_lock(&rl->lock);
	e = find_or_add(rl, key, now_ms);
	if (!e) {
		pthread_mutex_unlock(&rl->lock);
		out->allowed = 1;
		out->remaining = rl->max;
		out->reset_s = (rl->window_ms + 999) / 1000;
		return;
	}
	if (elapsed_since(e->window_start, now_ms) >= rl->window_ms) {
		e->window_start = now_ms;
		e->count = 0;
	}
	if (count && e->count < UINT32_MAX)
		e->count++;
	elapsed = elapsed_since(e->window_start, now_ms);
	out->allowed = e->count <= rl->max;
	out->remaining = e->count < rl->max ? rl->max - e->count : 0;
	out->reset_s = (uint32_t)((rl->window_ms - elapsed + 999) / 1000);
	pthread_mutex_unlock(&rl->lock);
}

size_t octo__ratelimit_clients(octo__ratelimit *rl)
{
	size_t n;

	pthread_mutex_lock(&rl->lock);
	n = rl->clients;
	pthread_mutex_unlock(&rl->lock);
	return n;
}
