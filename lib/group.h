/* Group commit, as the local store's journal and record log do it:
 * callers queue a change and wait; whoever finds no commit running
 * commits everything queued at that moment, so concurrent callers share
 * one sync of the disk.
 *
 * Ownership: a waiter lives on its caller's stack and is embedded first
 * in the module's own change, which the commit callback casts back. The
 * group is the module's, initialised and destroyed by it.
 * Thread safety: octo__group_submit() may run on many threads at once. */
#ifndef OCTO_LIB_GROUP_H
#define OCTO_LIB_GROUP_H

#include <pthread.h>

typedef struct octo__waiter {
	struct octo__waiter *next; /* in the queue, then in its batch */
	int rc;                    /* set by the commit: octo__waiter_finish() */
	char message[256];
	int done;
	pthread_cond_t cond;       /* signalled when done, or when it is next to commit */
} octo__waiter;

typedef struct {
	pthread_mutex_t lock;
	octo__waiter *head, **tail; /* waiting, in arrival order */
	int busy;                   /* some thread is committing */
	/* Commits `batch` (linked by next, in arrival order) without the
	 * lock, finishing each waiter. */
	void (*commit)(octo__waiter *batch, void *payload);
	/* Optional: runs once the batch's callers are released, before the
	 * next commit starts (such as a compaction). */
	void (*after)(void *payload);
	void *payload;
} octo__group;

void octo__group_init(octo__group *g, void (*commit)(octo__waiter *, void *),
                      void (*after)(void *), void *payload);
void octo__group_destroy(octo__group *g);

/* Queues `w` and returns once it is committed: its rc, with its message
 * as this thread's last error when it failed. */
int octo__group_submit(octo__group *g, octo__waiter *w);

/* Sets the result of `w`: `rc`, and when it is an error, this thread's
 * last error as the message its caller will see. */
void octo__waiter_finish(octo__waiter *w, int rc);

#endif
