/* Group commit (see group.h). */
#include "config.h"
#include "group.h"
#include "internal.h"

#include <stdio.h>

void octo__group_init(octo__group *g, void (*commit)(octo__waiter *, void *),
                      void (*after)(void *), void *payload)
{
	pthread_mutex_init(&g->lock, NULL);
	g->head = NULL;
	g->tail = &g->head;
	g->busy = 0;
	g->commit = commit;
	g->after = after;
	g->payload = payload;
}

void octo__group_destroy(octo__group *g)
{
	pthread_mutex_destroy(&g->lock);
}

void octo__waiter_finish(octo__waiter *w, int rc)
{
	w->rc = rc;
	if (rc < 0)
		snprintf(w->message, sizeof(w->message), "%s", octo_error_last());
}

/* Commits everything queued; called and returns with the lock held. */
static void lead(octo__group *g)
{
	octo__waiter *batch = g->head, *w, *next;

	g->head = NULL;
	g->tail = &g->head;
	g->busy = 1;
	pthread_mutex_unlock(&g->lock);
	g->commit(batch, g->payload);
	pthread_mutex_lock(&g->lock);
	for (w = batch; w; w = next) { /* a waiter may return once done is set */
		next = w->next;
		w->done = 1;
		pthread_cond_signal(&w->cond);
	}
	if (g->after) { /* holds the next batch, not the callers of this one */
		pthread_mutex_unlock(&g->lock);
		g->after(g->payload);
		pthread_mutex_lock(&g->lock);
	}
	g->busy = 0;
	if (g->head) /* the first of those who queued meanwhile commits next */
		pthread_cond_signal(&g->head->cond);
}

int octo__group_submit(octo__group *g, octo__waiter *w)
{
	w->next = NULL;
	w->done = 0;
	pthread_cond_init(&w->cond, NULL);
	pthread_mutex_lock(&g->lock);
	*g->tail = w;
	g->tail = &w->next;
	while (!w->done) {
		if (!g->busy)
			lead(g);
		else
			pthread_cond_wait(&w->cond, &g->lock);
	}
	pthread_mutex_unlock(&g->lock);
	pthread_cond_destroy(&w->cond);
	return w->rc < 0 ? octo__error(w->rc, "%s", w->message) : 0;
}
