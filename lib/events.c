/* Event streams of jobs. Every event carries the whole status of its job
 * and the job's seq as its id, so a client that reconnects with
 * Last-Event-ID gets the current state at once and misses nothing:
 * changes that came while it was away are folded into that event.
 *
 * Locks, always taken in this order: the registry lock (ev->lock), then
 * whatever a wake function takes, then a stream's own lock, then the
 * endings lock (ev->end_lock), under which no other is taken. A wake is
 * only ever called under the registry lock, so after octo_stream_free()
 * (which unlinks under it) none can come.
 *
 * When a job finishes, its streams end after the terminal event. Ending
 * a stream (the end of the chunked body, the close) costs about as much
 * as sending it its event, so each stream waits until every stream of
 * the job has sent the terminal event, or ENDING_WAIT_MS: the last
 * stream hears of the end as soon as the first. */
#include "config.h"
#include "internal.h"
#include "events.h"

#include <inttypes.h>
#include <pthread.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How long the streams of a finished job wait for a slow one among them
 * to take its terminal event before they end regardless. */
#define ENDING_WAIT_MS 1000

/* The streams that had a job's terminal event to send when it finished.
 * Under ev->end_lock. */
typedef struct ending {
	unsigned pending;                  /* streams still sending it */
	uint64_t deadline_ms;              /* monotonic */
	struct ending *next;
} ending;

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
	ending *ending;                    /* ends when this one is over, or NULL */
	int sent_final;                    /* told its ending the event is sent */
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
	pthread_t ticker;                  /* heartbeats and endings */
	int stopping;
	octo_stream *streams;
	pthread_mutex_t end_lock;          /* guards what follows */
	pthread_cond_t tick;               /* an ending is over, or stop */
	ending *endings;
	int ticker_stop;
};


static void wake(octo_stream *s)
{
	if (s->wake)
		s->wake(s->wake_payload);
}

/* Under ev->lock and s->lock: ties a stream that has the terminal event
 * still to send to the job's ending, made on first need. */
static void join_ending(octo__events *ev, octo_stream *s, ending **e)
{
	if (s->finished || s->ended || s->ending || s->closing)
		return;
	if (!*e && !(*e = calloc(1, sizeof(**e))))
		return; /* out of memory: the stream ends at once, as it may */
	s->ending = *e;
	pthread_mutex_lock(&ev->end_lock);
	(*e)->pending++;
	pthread_mutex_unlock(&ev->end_lock);
}

/* The engine's listener: marks the job's streams and wakes them. */
static void on_change(const char *job_id, uint64_t seq, int finished, void *payload)
{
	octo__events *ev = payload;
	octo_stream *s;
	ending *e = NULL;

	(void)seq;
	pthread_mutex_lock(&ev->lock);
	for (s = ev->streams; s; s = s->next) {
		if (strcmp(s->job_id, job_id) != 0)
			continue;
		pthread_mutex_lock(&s->lock);
		s->dirty = 1;
		if (finished)
			join_ending(ev, s, &e);
		pthread_mutex_unlock(&s->lock);
		wake(s);
	}
	if (e) {
		/* Listed only now, once every stream is counted in: streams
		 * that sent the event meanwhile have counted themselves out. */
		pthread_mutex_lock(&ev->end_lock);
		e->deadline_ms = octo__monotonic_ms() + ENDING_WAIT_MS;
		e->next = ev->endings;
		ev->endings = e;
		pthread_cond_signal(&ev->tick);
		pthread_mutex_unlock(&ev->end_lock);
	}
	pthread_mutex_unlock(&ev->lock);
	if (ev->hook)
		ev->hook(ev->payload, job_id, finished);
}

/* Under s->lock (and maybe ev->lock): the stream's terminal event is
 * sent, or never will be. */
static void leave_ending(octo_stream *s)
{
	octo__events *ev = s->ev;

	if (!s->ending || s->sent_final)
		return;
	s->sent_final = 1;
	pthread_mutex_lock(&ev->end_lock);
	if (--s->ending->pending == 0)
		pthread_cond_signal(&ev->tick);
	pthread_mutex_unlock(&ev->end_lock);
}

/* Under ev->end_lock: unlists the endings that are over (every stream
 * sent its event, or the deadline passed); `*due` becomes the earliest
 * deadline of the others if sooner. */
static ending *take_over(octo__events *ev, uint64_t now, uint64_t *due)
{
	ending **link = &ev->endings, *over = NULL, *e;

	while ((e = *link) != NULL) {
		if (e->pending == 0 || e->deadline_ms <= now) {
			*link = e->next;
			e->next = over;
			over = e;
			continue;
		}
		if (e->deadline_ms < *due)
			*due = e->deadline_ms;
		link = &e->next;
	}
	return over;
}

/* Under ev->lock: lets the streams of these endings end, then frees
 * them; no stream refers to them after. */
static void release(octo__events *ev, ending *over)
{
	octo_stream *s;
	ending *e, *next;

	for (s = ev->streams; s; s = s->next) {
		int mine = 0;
		pthread_mutex_lock(&s->lock);
		for (e = over; e && !mine; e = e->next)
			mine = s->ending == e;
		if (mine)
			s->ending = NULL;
		pthread_mutex_unlock(&s->lock);
		if (mine)
			wake(s);
	}
	for (e = over; e; e = next) {
		next = e->next;
		free(e);
	}
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

static void deadline_of(uint64_t ms, struct timespec *ts)
{
	ts->tv_sec = (time_t)(ms / 1000);
	ts->tv_nsec = (long)(ms % 1000) * 1000000L;
}

/* Sends heartbeats, which find dead clients (a write to a closed
 * connection fails and the server frees the stream), and ends the
 * streams of finished jobs. */
static void *ticker_main(void *arg)
{
	octo__events *ev = arg;
	uint64_t beat = octo__monotonic_ms() + ev->heartbeat_ms;
	struct timespec ts;

	pthread_mutex_lock(&ev->end_lock);
	while (!ev->ticker_stop) {
		uint64_t now = octo__monotonic_ms(), due = beat;
		ending *over = take_over(ev, now, &due);
		int heartbeat = now >= beat;
		if (!over && !heartbeat) {
			deadline_of(due, &ts);
			pthread_cond_timedwait(&ev->tick, &ev->end_lock, &ts);
			continue;
		}
		pthread_mutex_unlock(&ev->end_lock);
		pthread_mutex_lock(&ev->lock);
		if (over)
			release(ev, over);
		if (heartbeat && !ev->stopping)
			wake_all(ev, 0);
		pthread_mutex_unlock(&ev->lock);
		if (heartbeat)
			beat = now + ev->heartbeat_ms;
		pthread_mutex_lock(&ev->end_lock);
	}
	pthread_mutex_unlock(&ev->end_lock);
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
	pthread_mutex_init(&ev->end_lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&ev->tick, &attr);
	pthread_condattr_destroy(&attr);
	if (pthread_create(&ev->ticker, NULL, ticker_main, ev) != 0) {
		pthread_cond_destroy(&ev->tick);
		pthread_mutex_destroy(&ev->end_lock);
		pthread_mutex_destroy(&ev->lock);
		free(ev);
		return octo__error(OCTO_ERROR, "cannot start the events thread");
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
		wake_all(ev, 1);
	}
	pthread_mutex_unlock(&ev->lock);
}

void octo__events_free(octo__events *ev)
{
	ending *e;

	if (!ev)
		return;
	octo__events_shutdown(ev);
	pthread_mutex_lock(&ev->end_lock);
	ev->ticker_stop = 1;
	pthread_cond_signal(&ev->tick);
	pthread_mutex_unlock(&ev->end_lock);
	pthread_join(ev->ticker, NULL);
	octo_engine_set_listener(ev->engine, NULL, NULL);
	/* Every stream is freed: what endings are left refer to none. */
	while ((e = ev->endings) != NULL) {
		ev->endings = e->next;
		free(e);
	}
	pthread_cond_destroy(&ev->tick);
	pthread_mutex_destroy(&ev->end_lock);
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
	pthread_mutex_lock(&s->lock);
	leave_ending(s); /* its client is gone: the others need not wait */
	pthread_mutex_unlock(&s->lock);
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
			/* Its terminal event is sent: it ends once the job's other
			 * streams have sent theirs. */
			leave_ending(s);
			s->ended = !s->ending || s->closing;
		} else if (s->dirty) {
			char *event;
			s->dirty = 0;
			pthread_mutex_unlock(&s->lock); /* rendering reads the engine */
			event = next_event(s, &finished);
			pthread_mutex_lock(&s->lock);
			put_out(s, event);
			if (finished && event)
				s->finished = 1; /* the terminal event goes out, then the end */
			else if (finished) {
				leave_ending(s); /* nothing to send: no one waits for it */
				s->ended = 1; /* nothing new, and nothing will come */
			}
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
