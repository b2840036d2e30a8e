/* Group commit, as the local store's journal and record log do it:
 * callers queue a change; whoever finds no commit running commits
 * everything queued at that moment, so concurrent callers share one sync
 * of the disk.
 *
 * A caller either waits for its change (octo__group_submit) or posts it
 * and hears of it later (octo__group_post): a thread of the group's own
 * then commits it and calls the waiter's done. Posting lets a server's
 * thread go on with other connections while the disk syncs, so every
 * request in flight can join the next batch, not only one per thread.
 *
 * Ownership: a submitted waiter lives on its caller's stack; a posted one
 * is the module's (on the heap) and is handed back through its done. A
 * waiter is embedded first in the module's own change, which the commit
 * callback casts back. The group is the module's, initialised and
 * destroyed by it.
 * Thread safety: octo__group_submit() and octo__group_post() may run on
 * many threads at once. */
#ifndef OCTO_LIB_GROUP_H
#define OCTO_LIB_GROUP_H

#include <pthread.h>

typedef struct octo__waiter {
	struct octo__waiter *next; /* in the queue, then in its batch */
	int rc;                    /* set by the commit: octo__waiter_finish() */
	char message[256];
	/* Posted: called once the change is committed, on the group's
	 * thread, with rc and that thread's last error set; it may free the
	 * waiter. It must not submit to the same group. NULL: a caller
	 * waits on cond. */
	void (*done)(struct octo__waiter *w);
	int finished;
	pthread_cond_t cond;       /* signalled when finished, or when it is next to commit */
} octo__waiter;

typedef struct {
	pthread_mutex_t lock;
	octo__waiter *head, **tail; /* waiting, in arrival order */
	int busy;                   /* some thread is committing */
	pthread_t thread;           /* commits posted changes, once one is */
	int thread_running, stopping;
	pthread_cond_t wake;        /* the thread's: a posted change waits */
	octo__waiter *untold, **untold_tail; /* posted, committed by a submitter:
	                                        the thread calls their done */
	/* Commits `batch` (linked by next, in arrival order) without the
	 * lock, finishing each waiter. */
	void (*commit)(octo__waiter *batch, void *payload);
	/* Optional: runs once the batch's callers are released (posted ones
	 * told), before the next commit starts (such as a compaction). */
	void (*after)(void *payload);
	void *payload;
} octo__group;

void octo__group_init(octo__group *g, void (*commit)(octo__waiter *, void *),
                      void (*after)(void *), void *payload);

/* Commits what is still posted, stops the group's thread and releases
 * the group. No submit or post may run or follow. */
void octo__group_destroy(octo__group *g);

/* Queues `w` and returns once it is committed: its rc, with its message
 * as this thread's last error when it failed. */
int octo__group_submit(octo__group *g, octo__waiter *w);

/* Queues `w`, whose done is set, and returns at once; done is called
 * once it is committed. Errors: OCTO_ERROR when the group's thread cannot
 * start (done is then not called). */
int octo__group_post(octo__group *g, octo__waiter *w);

/* Sets the result of `w`: `rc`, and when it is an error, this thread's
 * last error as the message its caller will see. */
void octo__waiter_finish(octo__waiter *w, int rc);

#endif
