/* Group commit (see group.h). */
#include "config.h"
#include "group.h"
#include "internal.h"

#include <stdio.h>

void octo__group_init(octo__group *g, void (*commit)(octo__waiter *, void *),
                      void (*after)(void *), void *payload)
{
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->wake, NULL);
	g->head = NULL;
	g->tail = &g->head;
	g->busy = 0;
	g->untold = NULL;
	g->untold_tail = &g->untold;
	g->thread_running = 0;
	g->stopping = 0;
	g->commit = commit;
	g->after = after;
	g->payload = payload;
}

void octo__waiter_finish(octo__waiter *w, int rc)
{
	w->rc = rc;
	if (rc < 0)
		snprintf(w->message, sizeof(w->message), "%s", octo_error_last());
}

/* Under the lock, once a commit ended: the first of those who queued
 * meanwhile commits next, or the group's thread for a posted one. */
static void pass_on(octo__group *g)
{
	if (!g->head)
		return;
	pthread_cond_signal(g->head->done ? &g->wake : &g->head->cond);
}

/* Calls the done of each posted waiter of `list`, which may free it. */
static void tell(octo__waiter *list)
{
	octo__waiter *w, *next;

	for (w = list; w; w = next) {
		next = w->next;
		if (w->rc < 0)
			octo__error(w->rc, "%s", w->message);
		else
			octo__error_clear();
		w->done(w);
	}
}

/* Under the lock: whether this is the group's thread, which alone calls
 * posted waiters' done (a blocking submitter that led their batch must
 * not run callbacks of others on its caller's time). */
static int on_group_thread(const octo__group *g)
{
	return g->thread_running && pthread_equal(pthread_self(), g->thread);
}

/* Commits everything queued; called and returns with the lock held.
 * Posted waiters hear of it before after() runs: a compaction must not
 * hold their answers. */
static void lead(octo__group *g)
{
	octo__waiter *batch = g->head, *w, *next, *told = NULL, **last = &told;

	g->head = NULL;
	g->tail = &g->head;
	g->busy = 1;
	pthread_mutex_unlock(&g->lock);
	g->commit(batch, g->payload);
	pthread_mutex_lock(&g->lock);
	for (w = batch; w; w = next) { /* a waiter may return once finished is set */
		next = w->next;
		if (w->done) {
			w->next = NULL;
			*last = w;
			last = &w->next;
		} else {
			w->finished = 1;
			pthread_cond_signal(&w->cond);
		}
	}
	if (told && !on_group_thread(g)) {
		*g->untold_tail = told;
		g->untold_tail = last;
		told = NULL;
		pthread_cond_signal(&g->wake);
	}
	pthread_mutex_unlock(&g->lock);
	tell(told);
	if (g->after) /* holds the next batch, not the callers of this one */
		g->after(g->payload);
	pthread_mutex_lock(&g->lock);
	g->busy = 0;
	pass_on(g);
}

/* Under the lock: `w` joins the queue, in arrival order. */
static void enqueue(octo__group *g, octo__waiter *w)
{
	w->next = NULL;
	w->finished = 0;
	*g->tail = w;
	g->tail = &w->next;
}

int octo__group_submit(octo__group *g, octo__waiter *w)
{
	w->done = NULL;
	pthread_cond_init(&w->cond, NULL);
	pthread_mutex_lock(&g->lock);
	enqueue(g, w);
	while (!w->finished) {
		if (!g->busy)
			lead(g);
		else
			pthread_cond_wait(&w->cond, &g->lock);
	}
	pthread_mutex_unlock(&g->lock);
	pthread_cond_destroy(&w->cond);
	return w->rc < 0 ? octo__error(w->rc, "%s", w->message) : 0;
}

/* The group's thread: commits posted changes, and tells those that a
 * blocking submitter committed, until the group is destroyed and nothing
 * is left queued. */
static void *committer(void *arg)
{
	octo__group *g = arg;
	octo__waiter *told;

	pthread_setname_np(pthread_self(), "octo-commit");
	pthread_mutex_lock(&g->lock);
	for (;;) {
		if (g->untold) {
			told = g->untold;
			g->untold = NULL;
			g->untold_tail = &g->untold;
			pthread_mutex_unlock(&g->lock);
			tell(told);
			pthread_mutex_lock(&g->lock);
		} else if (g->head && !g->busy) {
			lead(g);
		} else if (g->stopping && !g->head) {
			break;
		} else {
			pthread_cond_wait(&g->wake, &g->lock);
		}
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

int octo__group_post(octo__group *g, octo__waiter *w)
{
	pthread_mutex_lock(&g->lock);
	if (!g->thread_running) {
		if (pthread_create(&g->thread, NULL, committer, g) != 0) {
			pthread_mutex_unlock(&g->lock);
			return octo__error(OCTO_ERROR, "cannot start a commit thread");
		}
		g->thread_running = 1;
	}
	enqueue(g, w);
	if (!g->busy) /* else the running commit passes on to the thread */
		pthread_cond_signal(&g->wake);
	pthread_mutex_unlock(&g->lock);
	return 0;
}

void octo__group_destroy(octo__group *g)
{
	if (g->thread_running) {
		pthread_mutex_lock(&g->lock);
		g->stopping = 1;
		pthread_cond_signal(&g->wake);
		pthread_mutex_unlock(&g->lock);
		pthread_join(g->thread, NULL);
	}
	pthread_cond_destroy(&g->wake);
	pthread_mutex_destroy(&g->lock);
}
