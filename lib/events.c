/* Event streams of jobs. Every event carries the whole status of its job
 * and the job's seq as its id, so a client that reconnects with
 * Last-Event-ID gets the current state at once and misses nothing:
 * changes that came while it was away are folded into that event.
 *
 * Locks, always taken in this order: the registry lock (ev->lock), then
 * whatever a wake function takes, then a stream's own lock. A wake is
 * only ever called under the registry lock, so after octo_stream_free()
 * (which unlinks under it) none can come. */
#include "config.h"
#include "internal.h"
#include "events.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct octo_stream {
	octo__events *ev;
	struct octo_stream *prev, *next;   /* registry list; under ev->lock */
	char job_id[OCTO_JOB_ID_LEN + 1];
	char *base;
	void (*wake)(void *payload);
	void *wake_payload;
	pthread_mutex_t lock;              /* guards what follows */
	int dirty;                         /* the job changed since the last event */
	int heartbeat;                     /* a heartbeat is due */
	int closing;                       /* shutdown: send the final event */
	int finished;                      /* the terminal event went out */
	int ended;
	uint64_t sent_seq;
	char *out;                         /* bytes ready to send */
	size_t out_len, out_pos;
};

struct octo__events {
	octo_engine *engine;
	octo__events_render render;
	octo__events_hook hook;
	void *payload;
	uint32_t heartbeat_ms;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t heartbeat_thread;
	int stopping;
	octo_stream *streams;
};

static void wake(octo_stream *s)
{
	if (s->wake)
		s->wake(s->wake_payload);
}

/* The engine's listener: marks the job's streams and wakes them. */
static void on_change(const char *job_id, uint64_t seq, int finished, void *payload)
{
	octo__events *ev = payload;
	octo_stream *s;

	(void)seq;
	pthread_mutex_lock(&ev->lock);
	for (s = ev->streams; s; s = s->next) {
		if (strcmp(s->job_id, job_id) != 0)
			continue;
		pthread_mutex_lock(&s->lock);
		s->dirty = 1;
		pthread_mutex_unlock(&s->lock);
		wake(s);
	}
	pthread_mutex_unlock(&ev->lock);
	if (ev->hook)
		ev->hook(ev->payload, job_id, finished);
}

/* Marks every stream for a heartbeat, or for closing, and wakes it.
 * Under ev->lock. */
static void wake_all(octo__events *ev, int closing)
{
	octo_stream *s;

	for (s = ev->streams; s; s = s->next) {
		pthread_mutex_lock(&s->lock);
		if (closing)
			s->closing = 1;
		else
			s->heartbeat = 1;
		pthread_mutex_unlock(&s->lock);
		wake(s);
	}
}

/* Heartbeats find dead clients: a write to a closed connection fails and
 * the server frees the stream. */
static void *heartbeat_main(void *arg)
{
	octo__events *ev = arg;
	struct timespec ts;

	pthread_mutex_lock(&ev->lock);
	while (!ev->stopping) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += ev->heartbeat_ms / 1000;
		ts.tv_nsec += (long)(ev->heartbeat_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (pthread_cond_timedwait(&ev->wake, &ev->lock, &ts) != 0 && !ev->stopping)
			wake_all(ev, 0);
	}
	pthread_mutex_unlock(&ev->lock);
	return NULL;
}

int octo__events_new(octo__events **out, octo_engine *engine, uint32_t heartbeat_ms,
                     octo__events_render render, octo__events_hook hook, void *payload)
{
	pthread_condattr_t attr;
	octo__events *ev = calloc(1, sizeof(*ev));

	if (!ev)
		return octo__error(OCTO_ENOMEM, "out of memory");
	ev->engine = engine;
	ev->render = render;
	ev->hook = hook;
	ev->payload = payload;
	ev->heartbeat_ms = heartbeat_ms ? heartbeat_ms : 15000;
	pthread_mutex_init(&ev->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&ev->wake, &attr);
	pthread_condattr_destroy(&attr);
	if (pthread_create(&ev->heartbeat_thread, NULL, heartbeat_main, ev) != 0) {
		pthread_cond_destroy(&ev->wake);
		pthread_mutex_destroy(&ev->lock);
		free(ev);
		return octo__error(OCTO_ERROR, "cannot start the heartbeat thread");
	}
	octo_engine_set_listener(engine, on_change, ev);
	*out = ev;
	return 0;
}

void octo__events_shutdown(octo__events *ev)
{
	if (!ev)
		return;
	pthread_mutex_lock(&ev->lock);
	if (!ev->stopping) {
		ev->stopping = 1;
		pthread_cond_signal(&ev->wake);
		wake_all(ev, 1);
	}
	pthread_mutex_unlock(&ev->lock);
}

void octo__events_free(octo__events *ev)
{
	if (!ev)
		return;
	octo__events_shutdown(ev);
	pthread_join(ev->heartbeat_thread, NULL);
	octo_engine_set_listener(ev->engine, NULL, NULL);
	pthread_cond_destroy(&ev->wake);
	pthread_mutex_destroy(&ev->lock);
	free(ev);
}

int octo__events_open(octo__events *ev, const char *job_id, const char *base,
                      uint64_t last_id, octo_stream **out)
{
	octo_stream *s = calloc(1, sizeof(*s));

	if (!s || !(s->base = strdup(base ? base : ""))) {
		free(s);
		return octo__error(OCTO_ENOMEM, "out of memory");
	}
	s->ev = ev;
	snprintf(s->job_id, sizeof(s->job_id), "%s", job_id);
	pthread_mutex_init(&s->lock, NULL);
	s->dirty = 1; /* the current state goes out first */
	s->sent_seq = last_id;
	pthread_mutex_lock(&ev->lock);
	s->closing = ev->stopping;
	s->next = ev->streams;
	if (ev->streams)
		ev->streams->prev = s;
	ev->streams = s;
	pthread_mutex_unlock(&ev->lock);
	*out = s;
	return 0;
}

void octo_stream_set_wake(octo_stream *s, void (*fn)(void *payload), void *payload)
{
	pthread_mutex_lock(&s->ev->lock);
	s->wake = fn;
	s->wake_payload = payload;
	pthread_mutex_unlock(&s->ev->lock);
}

void octo_stream_free(octo_stream *s)
{
	octo__events *ev;

	if (!s)
		return;
	ev = s->ev;
	pthread_mutex_lock(&ev->lock);
	if (s->prev)
		s->prev->next = s->next;
	else
		ev->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	pthread_mutex_unlock(&ev->lock);
	pthread_mutex_destroy(&s->lock);
	free(s->out);
	free(s->base);
	free(s);
}

/* Queues `text` to send. Under s->lock, with the buffer drained. */
static void put_out(octo_stream *s, char *text)
{
	free(s->out);
	s->out = text;
	s->out_len = text ? strlen(text) : 0;
	s->out_pos = 0;
}

/* The next event of the stream's job, if it changed since the last. */
static char *next_event(octo_stream *s, int *finished)
{
	uint64_t seq = 0;
	char *data, *event = NULL, status[32] = "status";
	const char *p;
	size_t size;

	data = s->ev->render(s->ev->payload, s->job_id, s->base[0] ? s->base : NULL, &seq, finished);
	if (!data) {
		*finished = 1;
		return strdup("event: error\ndata: {\"error\":\"not_found\"}\n\n");
	}
	if (seq > s->sent_seq) {
		/* The event name is the job's status: clients can listen for
		 * "completed" alone. */
		if ((p = strstr(data, "\"status\":\"")) != NULL)
			sscanf(p + 10, "%31[a-z]", status);
		size = strlen(data) + 96;
		if ((event = malloc(size)) != NULL)
			snprintf(event, size, "id: %" PRIu64 "\nevent: %s\ndata: %s\n\n", seq, status, data);
		s->sent_seq = seq;
	}
	free(data);
	return event;
}

long octo_stream_read(octo_stream *s, char *buf, size_t max)
{
	long n;

	pthread_mutex_lock(&s->lock);
	if (s->out_pos == s->out_len && !s->ended) {
		int finished = 0;
		if (s->closing && !s->finished) {
			put_out(s, strdup("event: shutdown\ndata: {}\n\n"));
			s->finished = 1;
		} else if (s->finished) {
			s->ended = 1;
		} else if (s->dirty) {
			char *event;
			s->dirty = 0;
			pthread_mutex_unlock(&s->lock); /* rendering reads the engine */
			event = next_event(s, &finished);
			pthread_mutex_lock(&s->lock);
			put_out(s, event);
			if (finished && event)
				s->finished = 1; /* the terminal event goes out, then the end */
			else if (finished)
				s->ended = 1; /* nothing new, and nothing will come */
		} else if (s->heartbeat) {
			put_out(s, strdup(": heartbeat\n\n"));
		}
		s->heartbeat = 0;
	}
	if (s->out_pos < s->out_len) {
		n = (long)(s->out_len - s->out_pos < max ? s->out_len - s->out_pos : max);
		memcpy(buf, s->out + s->out_pos, (size_t)n);
		s->out_pos += (size_t)n;
	} else {
		n = s->ended ? -1 : 0;
	}
	pthread_mutex_unlock(&s->lock);
	return n;
}
