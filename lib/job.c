/* The job engine: jobs in a hash table, file tasks in one FIFO queue,
 * worker threads, and a record per job in the store.
 *
 * One mutex guards all in-memory state. Store I/O never runs under it:
 * a change bumps the job's seq and renders its record under the lock,
 * then writes it outside; per job, a record is written only if no newer
 * one was, so records never go back in time. */
#include "config.h"
#include "internal.h"
#include "store.h"
#include "webhook.h"

#include <octopus/job.h>
#include <octopus/json.h>

#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUCKETS 4096
#define DURATIONS 64
#define RECORD_VERSION 2
#define RECORD_MAX_BYTES (4u << 20)
#define RESTARTS_FORGIVEN 5 /* attempts cut short by restarts, beyond max_attempts */
#define FILE_ID_MIN 10000
#define FILE_ID_MAX 100000000

typedef enum { F_PENDING, F_PROCESSING, F_COMPLETED, F_FAILED, F_CANCELLED } file_state;
typedef enum { J_QUEUED, J_PROCESSING, J_COMPLETED, J_PARTIAL, J_FAILED, J_CANCELLED } job_state;

static const char *const file_names[] = { "pending", "processing", "completed", "failed",
                                          "cancelled" };
static const char *const job_names[] = { "queued", "processing", "completed", "partial",
                                         "failed", "cancelled" };

typedef struct {
	int64_t file_id;
	file_state state;
	unsigned attempts;
	double progress;
	int64_t size;   /* -1: unknown */
	char *error;
} job_file;

typedef struct job {
	struct job *next;        /* hash chain by id */
	struct job *key_next;    /* hash chain by idem_key, when it has one */
	char id[OCTO_JOB_ID_LEN + 1];
	job_state state;
	int cancelled;
	char created[OCTO__TIMESTAMP_LEN + 1];
	char updated[OCTO__TIMESTAMP_LEN + 1];
	uint64_t seq;            /* grows with every change */
	uint64_t persisted_seq;  /* newest record written; under persist_lock */
	uint64_t persisted_ms;   /* when progress was last written */
	pthread_mutex_t persist_lock;
	size_t count;
	job_file *files;
	char *callback_url;      /* NULL: no webhook */
	unsigned wh_attempts;
	int wh_delivered;
	int wh_queued;           /* in the webhook queue now */
	char *wh_error;
	int pending;             /* submitted, record not yet durable: hidden */
	int expiring;            /* past retention, record being deleted: its
	                            key stays taken until it is gone */
	char client[65];         /* who asked, "" for nobody in particular */
	int from_store;          /* loaded by octo_engine_start() */
	int gave_up;             /* resume failed files: the record must say so */
	time_t ended_at;         /* wall clock, when it finished; 0 while not */
	char *idem_key;          /* Idempotency-Key, or NULL */
	char idem_hash[65];      /* SHA-256 of what the job asked for, in hex */
} job;

/* Single flight: a file being prepared for one job is not prepared again
 * for another; the others follow it and take its result. */
typedef struct follower {
	struct follower *next;
	job *j;
	size_t index;
} follower;

typedef struct flight {
	struct flight *next;
	int64_t file_id;
	follower *followers;
} flight;

#define FLIGHT_BUCKETS 1024

typedef struct delivery {
	struct delivery *next;
	job *j;
	uint64_t due_ms;
} delivery;

typedef struct item {
	struct item *next;
	job *j;
	size_t index;
	uint64_t not_before;     /* monotonic ms: retries wait for their backoff */
} item;

struct octo_task {
	octo_engine *e;
	job *j;
	size_t index;
	int64_t file_id;
	char key[64];
	unsigned attempt;
	uint64_t deadline;
};

struct octo_engine {
	octo_store *store;
	octo_processor processor;
	void *payload;
	octo_engine_options opts;
	pthread_mutex_t lock;
	pthread_cond_t work;     /* a task may be due */
	pthread_cond_t tick;     /* cancel or shutdown: sleeping tasks wake */
	pthread_cond_t idle;     /* a file finished: shutdown may go on */
	job *buckets[BUCKETS];
	job *keyed[BUCKETS];     /* jobs with an Idempotency-Key, by key */
	item *head, *tail;
	size_t queued;           /* items in the queue, plus reservations */
	unsigned running;        /* files being prepared */
	pthread_t *threads;
	unsigned thread_count;
	int accepting;           /* 0 once shutdown began */
	int hard_stop;           /* running tasks must stop */
	octo_engine_listener listener;
	void *listener_payload;
	unsigned listener_calls; /* calls of it running now */
	unsigned submitting;     /* submits whose record is being written */
	pthread_cond_t submits_idle; /* submitting fell to 0 */
	pthread_cond_t listener_idle; /* listener_calls fell to 0 */
	uint32_t durations[DURATIONS];
	size_t duration_count;
	flight *flights[FLIGHT_BUCKETS]; /* files being prepared, by id */
	struct client_slot *clients[FLIGHT_BUCKETS]; /* files running per client */
	unsigned char webhook_key[256];
	int webhook_key_len;     /* -1: no webhooks */
	delivery *deliveries;    /* webhook queue, any order */
	pthread_cond_t deliver;  /* a delivery may be due */
	pthread_t webhook_thread;
	int webhook_running;
	pthread_t janitor_thread;
	int janitor_running;
	pthread_mutex_t shutdown_lock; /* one shutdown joins the threads */
	struct {                 /* all NULL without a registry: updates no-op */
		octo_metric *processing, *active, *queue_depth, *submitted;
		octo_metric *retried, *rescued, *finished[J_CANCELLED + 1];
	} m;
	octo_log *log;           /* NULL: nothing is logged */
};

/* ---- small helpers ------------------------------------------------------- */

/* FNV-1a: job ids are random, keys are the clients' choice. */
static size_t hash_id(const char *id)
{
	uint32_t h = 2166136261u;

	while (*id)
		h = (h ^ (unsigned char)*id++) * 16777619u;
	return h % BUCKETS;
}

static job *find_job(octo_engine *e, const char *id)
{
	job *j;

	if (!id || strlen(id) != OCTO_JOB_ID_LEN)
		return NULL;
	for (j = e->buckets[hash_id(id)]; j; j = j->next)
		if (!j->pending && strcmp(j->id, id) == 0)
			return j;
	return NULL;
}

/* Takes `j` off the chain by key; it stays on the chain by id. */
static void unlink_key(octo_engine *e, job *j)
{
	job **link;

	if (!j->idem_key)
		return;
	for (link = &e->keyed[hash_id(j->idem_key)]; *link && *link != j;)
		link = &(*link)->key_next;
	if (*link)
		*link = j->key_next;
}

static void remove_job(octo_engine *e, job *j)
{
	job **link = &e->buckets[hash_id(j->id)];

	while (*link && *link != j)
		link = &(*link)->next;
	if (*link)
		*link = j->next;
	unlink_key(e, j);
}

static void add_job(octo_engine *e, job *j)
{
	size_t b = hash_id(j->id);

	j->next = e->buckets[b];
	e->buckets[b] = j;
	if (j->idem_key) {
		b = hash_id(j->idem_key);
		j->key_next = e->keyed[b];
		e->keyed[b] = j;
	}
}

static void free_job(job *j)
{
	size_t i;

	free(j->callback_url);
	free(j->wh_error);
	free(j->idem_key);
	for (i = 0; i < j->count; i++)
		free(j->files[i].error);
	free(j->files);
	pthread_mutex_destroy(&j->persist_lock);
	free(j);
}

static job *new_job(size_t count)
{
	job *j = calloc(1, sizeof(*j));

	if (!j || !(j->files = calloc(count, sizeof(*j->files)))) {
		free(j);
		return NULL;
	}
	j->count = count;
	pthread_mutex_init(&j->persist_lock, NULL);
	return j;
}

static void deadline_ts(uint64_t until_ms, struct timespec *ts)
{
	uint64_t now = octo__monotonic_ms(), wait = until_ms > now ? until_ms - now : 0;

	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(wait / 1000);
	ts->tv_nsec += (long)(wait % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static int enqueue(octo_engine *e, job *j, size_t index, uint64_t not_before)
{
	item *it = calloc(1, sizeof(*it));

	if (!it)
		return octo__error(OCTO_ENOMEM, "out of memory");
	it->j = j;
	it->index = index;
	it->not_before = not_before;
	if (e->tail)
		e->tail->next = it;
	else
		e->head = it;
	e->tail = it;
	e->queued++;
	octo_metrics_set(e->m.queue_depth, (double)e->queued);
	pthread_cond_signal(&e->work);
	return 0;
}

/* Files being prepared for one client, for client_max_active. */
typedef struct client_slot {
	struct client_slot *next;
	char name[65];
	unsigned active;
} client_slot;

static client_slot **find_client(octo_engine *e, const char *name)
{
	uint32_t h = 2166136261u;
	const char *p;
	client_slot **link;

	for (p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	for (link = &e->clients[h % FLIGHT_BUCKETS]; *link; link = &(*link)->next)
		if (strcmp((*link)->name, name) == 0)
			break;
	return link;
}

static int client_at_cap(octo_engine *e, const char *name)
{
	client_slot **link;

	if (!e->opts.client_max_active || !name[0])
		return 0;
	link = find_client(e, name);
	return *link && (*link)->active >= e->opts.client_max_active;
}

/* Counts a file of `name` starting (+1) or ending (-1); a client with
 * nothing running is forgotten. */
static void client_count(octo_engine *e, const char *name, int delta)
{
	client_slot **link, *c;

	if (!e->opts.client_max_active || !name[0])
		return;
	link = find_client(e, name);
	if (!*link && delta > 0 && (c = calloc(1, sizeof(*c))) != NULL) {
		snprintf(c->name, sizeof(c->name), "%s", name);
		*link = c;
	}
	if (!(c = *link))
		return;
	c->active = delta > 0 ? c->active + 1 : c->active - 1;
	if (c->active == 0) {
		*link = c->next;
		free(c);
	}
}

/* Takes the first task that is due and whose client is under its cap;
 * else *wake_at says when a retry will be due (a file ending wakes the
 * workers for capped clients). */
static item *dequeue_due(octo_engine *e, uint64_t now, uint64_t *wake_at)
{
	item **link = &e->head, *prev = NULL;

	*wake_at = UINT64_MAX;
	for (; *link; prev = *link, link = &(*link)->next) {
		item *it = *link;
		if (client_at_cap(e, it->j->client))
			continue;
		if (it->not_before > now) {
			if (it->not_before < *wake_at)
				*wake_at = it->not_before;
			continue;
		}
		*link = it->next;
		if (e->tail == it)
			e->tail = prev;
		e->queued--;
		octo_metrics_set(e->m.queue_depth, (double)e->queued);
		return it;
	}
	return NULL;
}

/* ---- state and records --------------------------------------------------- */

static int file_done(file_state s)
{
	return s == F_COMPLETED || s == F_FAILED || s == F_CANCELLED;
}

static int job_done(job_state s)
{
	return s >= J_COMPLETED;
}

static job_state compute_state(const job *j)
{
	size_t i, completed = 0, done = 0, started = 0;

	if (j->cancelled)
		return J_CANCELLED;
	for (i = 0; i < j->count; i++) {
		file_state s = j->files[i].state;
		completed += s == F_COMPLETED;
		done += file_done(s);
		started += s != F_PENDING || j->files[i].attempts > 0;
	}
	if (done < j->count)
		return started ? J_PROCESSING : J_QUEUED;
	if (completed == j->count)
		return J_COMPLETED;
	return completed == 0 ? J_FAILED : J_PARTIAL;
}

static void write_file(octo_json_writer *w, const job_file *f)
{
	octo_json_write_object_begin(w);
	octo_json_write_key(w, "file_id");
	octo_json_write_int(w, f->file_id);
	octo_json_write_key(w, "status");
	octo_json_write_string(w, file_names[f->state]);
	octo_json_write_key(w, "progress");
	/* Progress in thousandths: JSON integers keep records exact. */
	octo_json_write_int(w, (int64_t)(f->progress * 1000.0 + 0.5));
	octo_json_write_key(w, "attempts");
	octo_json_write_int(w, f->attempts);
	octo_json_write_key(w, "size");
	if (f->size >= 0)
		octo_json_write_int(w, f->size);
	else
		octo_json_write_null(w);
	octo_json_write_key(w, "error");
	if (f->error)
		octo_json_write_string(w, f->error);
	else
		octo_json_write_null(w);
	octo_json_write_object_end(w);
}

static void write_counts(octo_json_writer *w, const job *j)
{
	size_t i, completed = 0, failed = 0;
	double progress = 0;

	for (i = 0; i < j->count; i++) {
		completed += j->files[i].state == F_COMPLETED;
		failed += j->files[i].state == F_FAILED;
		progress += file_done(j->files[i].state) ? 1.0 : j->files[i].progress;
	}
	octo_json_write_key(w, "totalFileIds");
	octo_json_write_int(w, (int64_t)j->count);
	octo_json_write_key(w, "completedFileIds");
	octo_json_write_int(w, (int64_t)completed);
	octo_json_write_key(w, "failedFileIds");
	octo_json_write_int(w, (int64_t)failed);
	octo_json_write_key(w, "progress");
	octo_json_write_int(w, (int64_t)(progress * 1000.0 / (double)j->count + 0.5));
}

/* The job as JSON: the record in the store and the snapshot callers get
 * are the same text, so what a client sees is what survives a crash.
 * Progress values are in thousandths (0..1000). */
static char *render(const job *j)
{
	octo_json_writer *w;
	char *text = NULL;
	size_t i;

	if (octo_json_writer_new(&w) < 0)
		return NULL;
	octo_json_write_object_begin(w);
	octo_json_write_key(w, "version");
	octo_json_write_int(w, RECORD_VERSION);
	octo_json_write_key(w, "jobId");
	octo_json_write_string(w, j->id);
	octo_json_write_key(w, "status");
	octo_json_write_string(w, job_names[j->state]);
	write_counts(w, j);
	octo_json_write_key(w, "files");
	octo_json_write_array_begin(w);
	for (i = 0; i < j->count; i++)
		write_file(w, &j->files[i]);
	octo_json_write_array_end(w);
	if (j->client[0]) {
		octo_json_write_key(w, "client");
		octo_json_write_string(w, j->client);
	}
	if (j->idem_key) {
		octo_json_write_key(w, "idempotencyKey");
		octo_json_write_string(w, j->idem_key);
		octo_json_write_key(w, "requestHash");
		octo_json_write_string(w, j->idem_hash);
	}
	if (j->callback_url) {
		octo_json_write_key(w, "callbackUrl");
		octo_json_write_string(w, j->callback_url);
		octo_json_write_key(w, "webhook");
		octo_json_write_object_begin(w);
		octo_json_write_key(w, "attempts");
		octo_json_write_int(w, j->wh_attempts);
		octo_json_write_key(w, "delivered");
		octo_json_write_bool(w, j->wh_delivered);
		octo_json_write_key(w, "lastError");
		if (j->wh_error)
			octo_json_write_string(w, j->wh_error);
		else
			octo_json_write_null(w);
		octo_json_write_object_end(w);
	}
	octo_json_write_key(w, "createdAt");
	octo_json_write_string(w, j->created);
	octo_json_write_key(w, "updatedAt");
	octo_json_write_string(w, j->updated);
	octo_json_write_key(w, "seq");
	octo_json_write_int(w, (int64_t)j->seq);
	octo_json_write_object_end(w);
	if (octo_json_writer_finish(w, &text, NULL) < 0)
		text = NULL;
	octo_json_writer_free(w);
	return text;
}

static void record_key(const job *j, char *out, size_t size)
{
	snprintf(out, size, "jobs/%s.json", j->id);
}

/* Under the lock: schedules the job's webhook, if it has one still due. */
static void queue_webhook(octo_engine *e, job *j, uint64_t due_ms)
{
	delivery *d;

	if (!j->callback_url || j->wh_delivered || j->wh_queued ||
	    j->wh_attempts >= e->opts.webhook_max_attempts || !(d = calloc(1, sizeof(*d))))
		return;
	d->j = j;
	d->due_ms = due_ms;
	d->next = e->deliveries;
	e->deliveries = d;
	j->wh_queued = 1;
	pthread_cond_broadcast(&e->deliver); /* the janitor waits on it too */
}

/* A change made under the lock, to write and announce once it is let go. */
typedef struct {
	job *j;
	char *record;   /* NULL: announce only */
	uint64_t seq;
	int finished;
	int first_end;  /* the job just ended: counted and logged once */
	job_state state;
} change;

/* Under the lock: counts a change of `j`; renders the record when it must
 * be written now (`persist`). */
static void note_change(octo_engine *e, job *j, int persist, change *c)
{
	j->state = compute_state(j);
	j->seq++;
	octo__timestamp(j->updated);
	c->j = j;
	c->seq = j->seq;
	c->finished = job_done(j->state);
	c->first_end = c->finished && !j->ended_at;
	c->state = j->state;
	c->record = NULL;
	if (persist || c->finished) {
		c->record = render(j);
		j->persisted_ms = octo__monotonic_ms();
	}
	if (c->first_end) {
		j->ended_at = time(NULL);
		octo_metrics_inc(e->m.finished[j->state]);
	}
	if (c->finished)
		queue_webhook(e, j, 0);
}

/* Outside the lock: tells the listener, counted so that
 * octo_engine_set_listener() can wait until no call of the old one runs. */
static void announce(octo_engine *e, const change *c)
{
	octo_engine_listener fn;
	void *payload;

	pthread_mutex_lock(&e->lock);
	fn = e->listener;
	payload = e->listener_payload;
	if (fn)
		e->listener_calls++;
	pthread_mutex_unlock(&e->lock);
	if (!fn)
		return;
	fn(c->j->id, c->seq, c->finished, payload);
	pthread_mutex_lock(&e->lock);
	if (--e->listener_calls == 0)
		pthread_cond_broadcast(&e->listener_idle);
	pthread_mutex_unlock(&e->lock);
}

/* Outside the lock: writes the record (unless a newer one was) and tells
 * the listener. A failed write is retried by the next change; resumption
 * after a crash then redoes the file, which processors allow. */
static int publish(octo_engine *e, change *c)
{
	char key[64];
	int rc = 0;

	if (c->record) {
		record_key(c->j, key, sizeof(key));
		pthread_mutex_lock(&c->j->persist_lock);
		if (c->seq > c->j->persisted_seq) {
			rc = octo__store_put_record(e->store, key, c->record, strlen(c->record));
			if (rc == 0)
				c->j->persisted_seq = c->seq;
		}
		pthread_mutex_unlock(&c->j->persist_lock);
		free(c->record);
		c->record = NULL;
	}
	if (c->first_end) {
		octo_log_field f[] = { OCTO_LOG_STR("job_id", c->j->id),
			               OCTO_LOG_STR("status", job_names[c->state]) };
		octo_log_write(e->log, c->state == J_COMPLETED ? OCTO_LOG_INFO : OCTO_LOG_WARN,
		               "Download job finished", f, 2);
	}
	announce(e, c);
	return rc;
}

/* ---- tasks ------------------------------------------------------------------ */

int64_t octo_task_file_id(const octo_task *task)
{
	return task->file_id;
}

octo_store *octo_task_store(const octo_task *task)
{
	return task->e->store;
}

const char *octo_task_key(const octo_task *task)
{
	return task->key;
}

unsigned octo_task_attempt(const octo_task *task)
{
	return task->attempt;
}

static int should_stop_locked(const octo_task *t)
{
	return t->j->cancelled || t->e->hard_stop || octo__monotonic_ms() >= t->deadline;
}

int octo_task_should_stop(const octo_task *task)
{
	int stop;

	pthread_mutex_lock(&task->e->lock);
	stop = should_stop_locked(task);
	pthread_mutex_unlock(&task->e->lock);
	return stop;
}

int octo_task_sleep(octo_task *task, uint32_t ms)
{
	octo_engine *e = task->e;
	uint64_t until = octo__monotonic_ms() + ms;
	struct timespec ts;
	int stop;

	pthread_mutex_lock(&e->lock);
	while (!(stop = should_stop_locked(task)) && octo__monotonic_ms() < until) {
		deadline_ts(until < task->deadline ? until : task->deadline, &ts);
		pthread_cond_timedwait(&e->tick, &e->lock, &ts);
	}
	pthread_mutex_unlock(&e->lock);
	return stop;
}

void octo_task_progress(octo_task *task, double fraction)
{
	octo_engine *e = task->e;
	job_file *f;
	change c;
	int persist;

	if (!(fraction >= 0.0))
		fraction = 0.0; /* NaN too */
	if (fraction > 1.0)
		fraction = 1.0;
	pthread_mutex_lock(&e->lock);
	f = &task->j->files[task->index];
	if (f->state != F_PROCESSING || (int)(fraction * 1000) == (int)(f->progress * 1000)) {
		pthread_mutex_unlock(&e->lock);
		return;
	}
	f->progress = fraction;
	persist = octo__monotonic_ms() - task->j->persisted_ms >= e->opts.progress_persist_ms;
	note_change(e, task->j, persist, &c);
	pthread_mutex_unlock(&e->lock);
	publish(e, &c);
}

/* ---- workers ---------------------------------------------------------------- */

static uint32_t backoff_ms(const octo_engine *e, unsigned attempt)
{
	uint64_t ms = (uint64_t)e->opts.backoff_base_ms << (attempt < 20 ? attempt - 1 : 19);
	uint32_t r = 0;

	if (ms > e->opts.backoff_cap_ms)
		ms = e->opts.backoff_cap_ms;
	octo__random(&r, sizeof(r));
	return (uint32_t)(ms / 2 + r % (ms / 2 + 1)); /* jitter spreads retries */
}

static void record_duration(octo_engine *e, uint64_t ms)
{
	e->durations[e->duration_count % DURATIONS] = (uint32_t)(ms > UINT32_MAX ? UINT32_MAX : ms);
	e->duration_count++;
}

static void set_error(job_file *f, const char *msg)
{
	free(f->error);
	f->error = msg ? strdup(msg) : NULL;
}

/* Under the lock: what the processor's result means for the file. */
static void settle(octo_engine *e, octo_task *t, int rc, int64_t size, uint64_t took_ms,
                   const char *why)
{
	job_file *f = &t->j->files[t->index];
	char msg[300];

	f->progress = rc == 0 ? 1.0 : f->progress;
	if (rc == 0) {
		f->state = F_COMPLETED;
		f->size = size;
		set_error(f, NULL);
		record_duration(e, took_ms);
	} else if (t->j->cancelled) {
		f->state = F_CANCELLED;
	} else if (e->hard_stop) {
		f->state = F_PENDING; /* shutting down: the next start redoes it */
		f->attempts--;
		f->progress = 0;
	} else {
		snprintf(msg, sizeof(msg), "%s (attempt %u of %u)", why, f->attempts,
		         e->opts.max_attempts);
		set_error(f, msg);
		if (f->attempts < e->opts.max_attempts) {
			octo_metrics_inc(e->m.retried);
			f->state = F_PENDING;
			f->progress = 0;
			enqueue(e, t->j, t->index, octo__monotonic_ms() + backoff_ms(e, f->attempts));
		} else {
			f->state = F_FAILED;
		}
	}
}

static flight **find_flight(octo_engine *e, int64_t file_id)
{
	flight **link = &e->flights[(uint64_t)file_id % FLIGHT_BUCKETS];

	while (*link && (*link)->file_id != file_id)
		link = &(*link)->next;
	return link;
}

/* Under the lock: the leader of a file is done; its followers take its
 * result, or queue again when it did not prepare the file. Their changes
 * go to *out (malloc'd) for publishing. */
static size_t land(octo_engine *e, int64_t file_id, int ok, int64_t size, change **out)
{
	flight **link = find_flight(e, file_id), *fl = *link;
	size_t n = 0, max = 0;
	follower *fw;

	*out = NULL;
	if (!fl)
		return 0;
	*link = fl->next;
	for (fw = fl->followers; fw; fw = fw->next)
		max++;
	if (max && !(*out = calloc(max, sizeof(**out))))
		max = 0; /* out of memory: the records catch up at the next change */
	while ((fw = fl->followers) != NULL) {
		job_file *f = &fw->j->files[fw->index];
		fl->followers = fw->next;
		if (fw->j->cancelled) {
			f->state = F_CANCELLED;
		} else if (ok) {
			f->state = F_COMPLETED;
			f->size = size;
			f->progress = 1.0;
		} else {
			f->state = F_PENDING;
			f->progress = 0;
			enqueue(e, fw->j, fw->index, 0);
		}
		if (n < max)
			note_change(e, fw->j, 1, &(*out)[n++]);
		free(fw);
	}
	free(fl);
	return n;
}

/* Outside the lock: one line per attempt, as the operator reads them. */
static void log_file_end(octo_engine *e, const octo_task *t, int rc, const char *why,
                         uint64_t took_ms)
{
	octo_log_field f[] = { OCTO_LOG_STR("job_id", t->j->id),
		               OCTO_LOG_INT("file_id", t->file_id),
		               OCTO_LOG_INT("attempt", t->attempt),
		               OCTO_LOG_INT("duration_ms", took_ms),
		               OCTO_LOG_STR("error", why) };

	if (rc == 0)
		octo_log_write(e->log, OCTO_LOG_INFO, "File prepared", f, 4);
	else
		octo_log_write(e->log, OCTO_LOG_WARN, "File attempt failed", f, 5);
}

static void prepare(octo_engine *e, octo_task *t)
{
	uint64_t started = octo__monotonic_ms();
	octo_object_info info;
	change c, *landed;
	char why[256] = "";
	size_t n, i;
	int rc;

	octo__error_clear();
	/* A file already prepared is served from storage at once. */
	if (octo_store_head(e->store, t->key, &info) == 0)
		rc = 0;
	else if ((rc = e->processor(t, e->payload)) == 0 &&
	         (rc = octo_store_head(e->store, t->key, &info)) < 0)
		snprintf(why, sizeof(why), "the processor left no object: %s", octo_strerror(rc));
	else if (rc < 0)
		snprintf(why, sizeof(why), "%s%s%s", octo_strerror(rc),
		         octo_error_last()[0] ? ": " : "", octo_error_last());
	if (rc < 0 && octo__monotonic_ms() >= t->deadline)
		snprintf(why, sizeof(why), "timed out after %" PRIu32 " ms", e->opts.file_timeout_ms);
	octo_metrics_observe(e->m.processing, (double)(octo__monotonic_ms() - started) / 1000.0);
	log_file_end(e, t, rc, why, octo__monotonic_ms() - started);
	pthread_mutex_lock(&e->lock);
	settle(e, t, rc, rc == 0 ? (int64_t)info.size : -1, octo__monotonic_ms() - started, why);
	e->running--;
	octo_metrics_set(e->m.active, e->running);
	client_count(e, t->j->client, -1);
	pthread_cond_broadcast(&e->work); /* a capped client may go on */
	note_change(e, t->j, 1, &c);
	n = land(e, t->file_id, rc == 0, rc == 0 ? (int64_t)info.size : -1, &landed);
	pthread_cond_broadcast(&e->idle);
	pthread_mutex_unlock(&e->lock);
	publish(e, &c);
	for (i = 0; i < n; i++)
		publish(e, &landed[i]);
	free(landed);
}

/* Under the lock: turns a queue item into a task to run (1), makes it
 * follow the file's leader (2: publish `c` only), or drops it (0: its
 * job was cancelled meanwhile). */
static int start_task(octo_engine *e, item *it, octo_task *t, change *c)
{
	job_file *f = &it->j->files[it->index];
	flight **link, *fl;
	follower *fw;

	if (it->j->cancelled || f->state != F_PENDING)
		return 0;
	link = find_flight(e, f->file_id);
	if (*link && (fw = calloc(1, sizeof(*fw))) != NULL) {
		fw->j = it->j;
		fw->index = it->index;
		fw->next = (*link)->followers;
		(*link)->followers = fw;
		f->state = F_PROCESSING;
		f->progress = 0;
		note_change(e, it->j, 1, c);
		return 2;
	}
	if (!*link && (fl = calloc(1, sizeof(*fl))) != NULL) {
		fl->file_id = f->file_id;
		*link = fl;
	}
	f->state = F_PROCESSING;
	f->attempts++;
	f->progress = 0;
	memset(t, 0, sizeof(*t));
	t->e = e;
	t->j = it->j;
	t->index = it->index;
	t->file_id = f->file_id;
	t->attempt = f->attempts;
	t->deadline = octo__monotonic_ms() + e->opts.file_timeout_ms;
	snprintf(t->key, sizeof(t->key), "downloads/%" PRId64 ".zip", f->file_id);
	e->running++;
	octo_metrics_set(e->m.active, e->running);
	client_count(e, it->j->client, +1);
	note_change(e, it->j, 1, c);
	return 1;
}

static void *worker_main(void *arg)
{
	octo_engine *e = arg;

	pthread_mutex_lock(&e->lock);
	while (e->accepting) {
		uint64_t wake_at;
		item *it = dequeue_due(e, octo__monotonic_ms(), &wake_at);
		octo_task t;
		change c;
		int go;

		if (!it) {
			struct timespec ts;
			deadline_ts(wake_at == UINT64_MAX ? octo__monotonic_ms() + 60000 : wake_at, &ts);
			pthread_cond_timedwait(&e->work, &e->lock, &ts);
			continue;
		}
		go = start_task(e, it, &t, &c);
		free(it);
		if (!go)
			continue;
		pthread_mutex_unlock(&e->lock);
		publish(e, &c);
		if (go == 1)
			prepare(e, &t);
		pthread_mutex_lock(&e->lock);
	}
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

/* ---- the public calls ---------------------------------------------------------- */

static int key_valid(const char *key)
{
	size_t n = strlen(key), i;

	if (n < 1 || n > 255)
		return 0;
	for (i = 0; i < n; i++) {
		char c = key[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == ':' || c == '-'))
			return 0;
	}
	return 1;
}

/* What a job asked for, as a SHA-256 in hex: its file ids in order and
 * its callback URL. Two submits are "the same" when these are. */
static int request_hash(const int64_t *ids, size_t count, const char *callback, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0, i;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
	         EVP_DigestUpdate(ctx, ids, count * sizeof(*ids)) &&
	         EVP_DigestUpdate(ctx, "\n", 1) &&
	         (!callback || EVP_DigestUpdate(ctx, callback, strlen(callback))) &&
	         EVP_DigestFinal_ex(ctx, md, &len) && len == 32;

	EVP_MD_CTX_free(ctx);
	out[0] = '\0';
	for (i = 0; ok && i < len; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return ok ? 0 : -1;
}

/* The id of a job asked for under an Idempotency-Key: made from the key
 * and the request's hash, not drawn at random. A submit whose answer was
 * lost (to a crash, a timeout) may still land in storage after its retry
 * was accepted, on S3 even after a restart read the bucket; with one id
 * for both, the two writes are of one job, never two jobs under one key.
 * It tells nothing a replay with the same key would not: that hands the
 * id out too. A UUID of version 8 (RFC 9562: laid out by its maker). */
static int idempotent_id(const char *key, const char *hash, char out[OCTO_JOB_ID_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	char text[512]; /* a key is at most 255 bytes, a hash 64 */
	int n = snprintf(text, sizeof(text), "octopus job\n%s\n%s", key, hash);

	if (n < 0 || (size_t)n >= sizeof(text) ||
	    !EVP_Digest(text, (size_t)n, md, NULL, EVP_sha256(), NULL))
		return -1;
	octo__uuid_format(md, 8, out);
	return 0;
}

/* Under the lock: the job submitted with `key`, if any. */
static job *find_by_key(octo_engine *e, const char *key)
{
	job *j;

	for (j = e->keyed[hash_id(key)]; j; j = j->key_next)
		if (strcmp(j->idem_key, key) == 0)
			return j;
	return NULL;
}

static int check_ids(const int64_t *ids, size_t count)
{
	size_t i;

	if (!ids || count < 1 || count > OCTO_JOB_FILES_MAX)
		return octo__error(OCTO_EINVAL, "a job has 1 to %d files", OCTO_JOB_FILES_MAX);
	for (i = 0; i < count; i++)
		if (ids[i] < FILE_ID_MIN || ids[i] > FILE_ID_MAX)
			return octo__error(OCTO_EINVAL, "file id %" PRId64 " is out of range", ids[i]);
	return 0;
}

int octo_engine_submit(octo_engine *e, const int64_t *ids, size_t count, char *job_id)
{
	return octo_engine_submit_with(e, ids, count, NULL, job_id);
}

static int check_job_options(const octo_engine *e, const octo_job_options *o)
{
	if (!o)
		return 0;
	if (o->version != OCTO_JOB_OPTIONS_VERSION)
		return octo__error(OCTO_EINVAL, "job options version %u is not %d", o->version,
		                   OCTO_JOB_OPTIONS_VERSION);
	if (o->idempotency_key && !key_valid(o->idempotency_key))
		return octo__error(OCTO_EINVAL, "an idempotency key is 1 to 255 characters of "
		                                "[A-Za-z0-9._:-]");
	if (!o->callback_url)
		return 0;
	if (!octo__webhook_url_valid(o->callback_url))
		return octo__error(OCTO_EINVAL, "callbackUrl must be an http or https URL of at "
		                                "most 2048 bytes");
	if (e->webhook_key_len < 0)
		return octo__error(OCTO_EINVAL, "callbackUrl needs a webhook secret on the server");
	return 0;
}

/* Under the lock: what an earlier submit with the same key means for
 * this one. 1: it is that job (its id is in job_id); 0: go on. */
static int replayed(octo_engine *e, const job *j, char *job_id, int *rc)
{
	job *old = j->idem_key ? find_by_key(e, j->idem_key) : NULL;

	if (!old)
		return 0;
	if (old->pending)
		*rc = octo__error(OCTO_EBUSY, "a job with this idempotency key is being accepted");
	else if (old->expiring)
		*rc = octo__error(OCTO_EBUSY, "a job with this idempotency key is being removed");
	else if (strcmp(old->idem_hash, j->idem_hash) != 0)
		*rc = octo__error(OCTO_ECONFLICT, "this idempotency key was used for another request");
	else {
		memcpy(job_id, old->id, OCTO_JOB_ID_LEN + 1);
		*rc = 1;
	}
	return 1;
}

static job *make_job(const int64_t *ids, size_t count, const octo_job_options *o)
{
	job *j = new_job(count);
	size_t i;

	if (!j)
		return NULL;
	if ((o && o->callback_url && !(j->callback_url = strdup(o->callback_url))) ||
	    (o && o->idempotency_key && !(j->idem_key = strdup(o->idempotency_key))) ||
	    (!j->idem_key && octo__uuid4(j->id) < 0)) {
		free_job(j);
		return NULL;
	}
	if (j->idem_key && (request_hash(ids, count, j->callback_url, j->idem_hash) < 0 ||
	                    idempotent_id(j->idem_key, j->idem_hash, j->id) < 0)) {
		free_job(j);
		return NULL;
	}
	if (o && o->client)
		snprintf(j->client, sizeof(j->client), "%s", o->client);
	octo__timestamp(j->created);
	memcpy(j->updated, j->created, sizeof(j->updated));
	for (i = 0; i < count; i++) {
		j->files[i].file_id = ids[i];
		j->files[i].size = -1;
	}
	j->seq = 1;
	j->pending = 1;
	return j;
}

/* Takes a job in before its record is written: checks it, replays an
 * idempotency key (1, its job's id in `job_id`), or holds room in the
 * queue for its files, counts the submit in flight (for shutdown to
 * wait on, until submit_ended()) and sets *`out` (0). */
static int admit(octo_engine *e, const int64_t *ids, size_t count,
                 const octo_job_options *options, char *job_id, job **out)
{
	job *j;
	int rc = 0;

	octo__error_clear();
	if (!job_id)
		return octo__error(OCTO_EINVAL, "no room for the job id");
	if ((rc = check_ids(ids, count)) < 0 || (rc = check_job_options(e, options)) < 0)
		return rc;
	if (!(j = make_job(ids, count, options)))
		return octo__error(OCTO_ENOMEM, "out of memory");
	pthread_mutex_lock(&e->lock);
	if (replayed(e, j, job_id, &rc)) {
		pthread_mutex_unlock(&e->lock);
		free_job(j);
		return rc;
	}
	rc = !e->accepting ? octo__error(OCTO_ESHUTDOWN, "the engine is shutting down")
	     : e->queued + count > e->opts.queue_max
	             ? octo__error(OCTO_EBUSY, "the queue is full (%zu files waiting)", e->queued)
	             : 0;
	if (rc == 0) {
		e->queued += count; /* held while the record is written */
		add_job(e, j);      /* pending: found by its key only */
		e->submitting++;    /* counted with the check of accepting */
		*out = j;
	}
	pthread_mutex_unlock(&e->lock);
	if (rc < 0)
		free_job(j);
	return rc;
}

/* Once the record of admitted job `j` is written (`rc` 0) or has failed:
 * queues its files and writes its id to `job_id`, or forgets it. */
static int accept_job(octo_engine *e, job *j, int rc, char *job_id)
{
	size_t i, count = j->count;
	int owned;

	pthread_mutex_lock(&e->lock);
	e->queued -= count;
	octo_metrics_set(e->m.queue_depth, (double)e->queued);
	if (rc == 0) {
		octo_metrics_inc(e->m.submitted);
		j->persisted_seq = 1;
		j->pending = 0;
		for (i = 0; i < count && rc == 0; i++)
			rc = enqueue(e, j, i, 0);
		memcpy(job_id, j->id, OCTO_JOB_ID_LEN + 1);
	} else {
		remove_job(e, j);
	}
	owned = j->persisted_seq != 0; /* read before workers can see the job */
	pthread_mutex_unlock(&e->lock);
	if (!owned)
		free_job(j);
	return rc;
}

static void submit_ended(octo_engine *e)
{
	pthread_mutex_lock(&e->lock);
	if (--e->submitting == 0)
		pthread_cond_broadcast(&e->submits_idle);
	pthread_mutex_unlock(&e->lock);
}

int octo_engine_submit_with(octo_engine *e, const int64_t *ids, size_t count,
                            const octo_job_options *options, char *job_id)
{
	char *record, key[64];
	job *j = NULL;
	int rc;

	if ((rc = admit(e, ids, count, options, job_id, &j)) != 0)
		return rc;
	/* Durable before anyone hears of the job. */
	record = render(j);
	record_key(j, key, sizeof(key));
	rc = record ? octo__store_put_record(e->store, key, record, strlen(record))
	            : octo__error(OCTO_ENOMEM, "out of memory");
	free(record);
	rc = accept_job(e, j, rc, job_id);
	submit_ended(e);
	return rc;
}

/* A submit whose record is being written. */
typedef struct {
	octo_engine *e;
	job *j;
	octo_engine_submit_cb done;
	void *payload;
} submission;

static void record_written(int rc, void *payload)
{
	submission *s = payload;
	octo_engine *e = s->e;
	char job_id[OCTO_JOB_ID_LEN + 1];

	rc = accept_job(e, s->j, rc, job_id);
	s->done(rc, rc == 0 ? job_id : NULL, s->payload);
	free(s);
	submit_ended(e); /* last: shutdown waits for this */
}

int octo_engine_submit_async(octo_engine *e, const int64_t *ids, size_t count,
                             const octo_job_options *options, octo_engine_submit_cb done,
                             void *payload)
{
	char *record, key[64], job_id[OCTO_JOB_ID_LEN + 1];
	submission *s;
	job *j = NULL;
	int rc;

	if (!done)
		return octo__error(OCTO_EINVAL, "no callback");
	if ((rc = admit(e, ids, count, options, job_id, &j)) < 0)
		return rc;
	if (rc == 1) {
		done(1, job_id, payload);
		return 0;
	}
	record = render(j);
	if (!record || !(s = malloc(sizeof(*s)))) {
		free(record);
		accept_job(e, j, OCTO_ENOMEM, job_id);
		submit_ended(e);
		return octo__error(OCTO_ENOMEM, "out of memory");
	}
	*s = (submission){ e, j, done, payload };
	record_key(j, key, sizeof(key));
	octo__store_post_record(e->store, key, record, strlen(record), record_written, s);
	free(record);
	return 0;
}

/* A job another process holds (a replica on the same store) is known by
 * its record, written on every change of state. */
static int stored_snapshot(octo_engine *e, const char *job_id, char **json)
{
	octo_object_info info;
	char key[64], *text = NULL;
	octo_json *doc = NULL;
	const char *id = NULL;
	size_t len;
	int ok;

	if (!job_id || !octo__uuid_shaped(job_id))
		return octo__error(OCTO_ENOTFOUND, "no job %.40s", job_id ? job_id : "");
	snprintf(key, sizeof(key), "jobs/%s.json", job_id);
	/* What resume would skip is no job here either. */
	if (octo_store_head(e->store, key, &info) < 0 || info.size > RECORD_MAX_BYTES ||
	    octo_store_get(e->store, key, &text, &len) < 0)
		return octo__error(OCTO_ENOTFOUND, "no job %.40s", job_id);
	ok = octo_json_parse(&doc, text, len) == 0 &&
	     octo_json_string(octo_json_get(octo_json_root(doc), "jobId"), &id) == 0 &&
	     strcmp(id, job_id) == 0;
	octo_json_free(doc);
	if (!ok) {
		octo_free(text);
		return octo__error(OCTO_ENOTFOUND, "no readable record of job %.40s", job_id);
	}
	*json = text;
	return 0;
}

int octo_engine_snapshot(octo_engine *e, const char *job_id, char **json)
{
	job *j;

	octo__error_clear();
	pthread_mutex_lock(&e->lock);
	j = find_job(e, job_id);
	*json = j ? render(j) : NULL;
	pthread_mutex_unlock(&e->lock);
	if (!j)
		return stored_snapshot(e, job_id, json);
	return *json ? 0 : octo__error(OCTO_ENOMEM, "out of memory");
}

int octo_engine_seq(octo_engine *e, const char *job_id, uint64_t *seq)
{
	job *j;

	pthread_mutex_lock(&e->lock);
	j = find_job(e, job_id);
	if (j)
		*seq = j->seq;
	pthread_mutex_unlock(&e->lock);
	return j ? 0 : octo__error(OCTO_ENOTFOUND, "no job %.40s", job_id ? job_id : "");
}

int octo_engine_cancel(octo_engine *e, const char *job_id)
{
	change c;
	size_t i;
	job *j;

	octo__error_clear();
	pthread_mutex_lock(&e->lock);
	j = find_job(e, job_id);
	if (!j || job_done(j->state)) {
		pthread_mutex_unlock(&e->lock);
		return j ? 0 : octo__error(OCTO_ENOTFOUND, "no job %.40s", job_id ? job_id : "");
	}
	j->cancelled = 1;
	for (i = 0; i < j->count; i++)
		if (j->files[i].state == F_PENDING)
			j->files[i].state = F_CANCELLED;
	note_change(e, j, 1, &c);
	pthread_cond_broadcast(&e->tick); /* running files stop promptly */
	pthread_mutex_unlock(&e->lock);
	return publish(e, &c);
}

void octo_engine_set_listener(octo_engine *e, octo_engine_listener fn, void *payload)
{
	pthread_mutex_lock(&e->lock);
	e->listener = fn;
	e->listener_payload = payload;
	/* The old listener's payload may be freed once this returns. */
	while (e->listener_calls > 0)
		pthread_cond_wait(&e->listener_idle, &e->lock);
	pthread_mutex_unlock(&e->lock);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

void octo_engine_stats(octo_engine *e, size_t *queued, uint32_t *median_file_ms,
                       unsigned *workers)
{
	uint32_t copy[DURATIONS];
	size_t n;

	pthread_mutex_lock(&e->lock);
	n = e->duration_count < DURATIONS ? e->duration_count : DURATIONS;
	memcpy(copy, e->durations, n * sizeof(*copy));
	if (queued)
		*queued = e->queued;
	if (workers)
		*workers = e->opts.workers;
	pthread_mutex_unlock(&e->lock);
	qsort(copy, n, sizeof(*copy), cmp_u32);
	if (median_file_ms)
		*median_file_ms = n ? copy[n / 2] : 0;
}

/* ---- resuming from the store --------------------------------------------------- */

static int parse_state(const char *name, const char *const *names, int n)
{
	int i;

	for (i = 0; name && i < n; i++)
		if (strcmp(name, names[i]) == 0)
			return i;
	return -1;
}

static int copy_text(const octo_json_value *v, char *out, size_t size)
{
	const char *s;

	if (octo_json_string(v, &s) < 0 || strlen(s) >= size)
		return -1;
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

/* Reads one file of a version 2 record. */
static int load_file(const octo_json_value *v, job_file *f)
{
	const char *state = NULL, *error = NULL;
	int64_t n;
	int st;

	if (octo_json_int(octo_json_get(v, "file_id"), &f->file_id) < 0 ||
	    f->file_id < FILE_ID_MIN || f->file_id > FILE_ID_MAX ||
	    octo_json_string(octo_json_get(v, "status"), &state) < 0 ||
	    (st = parse_state(state, file_names, 5)) < 0)
		return -1;
	f->state = (file_state)st;
	f->attempts = octo_json_int(octo_json_get(v, "attempts"), &n) == 0 && n > 0 && n < 1000
	                      ? (unsigned)n : 0;
	f->size = octo_json_int(octo_json_get(v, "size"), &n) == 0 && n >= 0 ? n : -1;
	f->progress = 0;
	if (octo_json_string(octo_json_get(v, "error"), &error) == 0 && !(f->error = strdup(error)))
		return -1;
	if (f->state == F_COMPLETED)
		f->progress = 1.0;
	return 0;
}

static int load_webhook(const octo_json_value *root, job *j)
{
	const octo_json_value *wh = octo_json_get(root, "webhook");
	const char *url = NULL, *err = NULL;
	int64_t n = 0;

	if (octo_json_string(octo_json_get(root, "callbackUrl"), &url) < 0)
		return 0; /* no webhook */
	if (!octo__webhook_url_valid(url) || !(j->callback_url = strdup(url)))
		return -1;
	if (octo_json_int(octo_json_get(wh, "attempts"), &n) == 0 && n >= 0 && n < 1000)
		j->wh_attempts = (unsigned)n;
	octo_json_bool(octo_json_get(wh, "delivered"), &j->wh_delivered);
	if (octo_json_string(octo_json_get(wh, "lastError"), &err) == 0 && !(j->wh_error = strdup(err)))
		return -1;
	return 0;
}

static int load_idempotency(const octo_json_value *root, job *j)
{
	const char *key = NULL, *hash = NULL;

	if (octo_json_string(octo_json_get(root, "idempotencyKey"), &key) < 0)
		return 0;
	if (!key_valid(key) || octo_json_string(octo_json_get(root, "requestHash"), &hash) < 0 ||
	    strlen(hash) != 64 || !(j->idem_key = strdup(key)))
		return -1;
	memcpy(j->idem_hash, hash, 65);
	return 0;
}

/* "2025-12-14T10:00:00.000Z" to seconds; now when it does not parse, so a
 * job with a damaged date is kept a full retention period. */
static time_t parse_time(const char *text)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (!strptime(text, "%Y-%m-%dT%H:%M:%S", &tm))
		return time(NULL);
	return timegm(&tm);
}

/* A record read back may be corrupt or hostile: everything is checked. */
static job *load_job(const octo_json_value *root)
{
	const octo_json_value *files = octo_json_get(root, "files");
	const octo_json_value *ids = octo_json_get(root, "fileIds");
	const char *status = NULL;
	int64_t version = 0, seq = 1, n;
	size_t i, count;
	job *j;

	if (octo_json_int(octo_json_get(root, "version"), &version) < 0 ||
	    (version != 1 && version != RECORD_VERSION))
		return NULL;
	count = octo_json_size(version == 1 ? ids : files);
	if (count < 1 || count > OCTO_JOB_FILES_MAX || !(j = new_job(count)))
		return NULL;
	if (copy_text(octo_json_get(root, "jobId"), j->id, sizeof(j->id)) < 0 ||
	    strlen(j->id) != OCTO_JOB_ID_LEN ||
	    copy_text(octo_json_get(root, "createdAt"), j->created, sizeof(j->created)) < 0 ||
	    octo_json_string(octo_json_get(root, "status"), &status) < 0)
		goto bad;
	if (copy_text(octo_json_get(root, "updatedAt"), j->updated, sizeof(j->updated)) < 0)
		memcpy(j->updated, j->created, sizeof(j->updated));
	if (octo_json_get(root, "client") &&
	    copy_text(octo_json_get(root, "client"), j->client, sizeof(j->client)) < 0)
		goto bad;
	for (i = 0; i < count; i++) {
		job_file *f = &j->files[i];
		if (version == 1) { /* the first format: ids only, all pending */
			if (octo_json_int(octo_json_at(ids, i), &n) < 0 || n < FILE_ID_MIN || n > FILE_ID_MAX)
				goto bad;
			f->file_id = n;
			f->size = -1;
		} else if (load_file(octo_json_at(files, i), f) < 0) {
			goto bad;
		}
	}
	j->cancelled = strcmp(status, "cancelled") == 0;
	for (i = 0; j->cancelled && i < count; i++) /* a crash came before they stopped */
		if (!file_done(j->files[i].state))
			j->files[i].state = F_CANCELLED;
	if (load_webhook(root, j) < 0 || load_idempotency(root, j) < 0)
		goto bad;
	if (octo_json_int(octo_json_get(root, "seq"), &seq) < 0 || seq < 1)
		seq = 1;
	j->seq = j->persisted_seq = (uint64_t)seq;
	j->state = compute_state(j);
	if (job_done(j->state))
		j->ended_at = parse_time(j->updated);
	return j;
bad:
	free_job(j);
	return NULL;
}

typedef struct {
	octo_engine *e;
	char last[OCTO_STORE_KEY_MAX + 1];
	size_t skipped;
	int failed;
} resume;

/* Under the lock: adopts a loaded job and queues what it has left. Files
 * that were in flight when the process died are simply pending again. */
static void adopt(octo_engine *e, job *j)
{
	size_t i;

	add_job(e, j);
	if (job_done(j->state)) {
		queue_webhook(e, j, 0); /* a delivery the crash cut short */
		return;
	}
	for (i = 0; i < j->count; i++) {
		job_file *f = &j->files[i];
		if (f->state == F_PROCESSING)
			f->state = F_PENDING;
		/* A file whose preparation kills the process must not bring it
		 * down forever; but restarts (deploys, crashes elsewhere) are
		 * not its fault, so a few interruptions are forgiven. */
		if (f->state == F_PENDING && f->attempts >= e->opts.max_attempts + RESTARTS_FORGIVEN) {
			j->gave_up = 1;
			f->state = F_FAILED;
			free(f->error);
			f->error = strdup("gave up: its attempts kept being cut short by restarts");
		}
		if (f->state == F_PENDING && enqueue(e, j, i, 0) == 0)
			octo_metrics_inc(e->m.rescued);
	}
	j->state = compute_state(j);
}

/* A record is the job its key names: "jobs/<id>.json" with a UUID id.
 * Otherwise a stray or hostile record could take over a real job's id,
 * or write its updates under another key. */
static int named_by(const job *j, const char *key)
{
	char want[64];

	if (!octo__uuid_shaped(j->id))
		return 0;
	snprintf(want, sizeof(want), "jobs/%s.json", j->id);
	return strcmp(key, want) == 0;
}

static int resume_one(const char *key, const octo_object_info *info, void *payload)
{
	resume *r = payload;
	job *old;
	octo_json *doc = NULL;
	char *text = NULL;
	size_t len;
	job *j = NULL;

	snprintf(r->last, sizeof(r->last), "%s", key);
	/* A record of 1000 files with long errors is well under 1 MiB; a
	 * bigger one was not written by an engine, and reading it whole
	 * would cost start-up time and memory for nothing. */
	if (info->size <= RECORD_MAX_BYTES &&
	    octo_store_get(r->e->store, key, &text, &len) == 0 &&
	    octo_json_parse(&doc, text, len) == 0)
		j = load_job(octo_json_root(doc));
	octo_json_free(doc);
	octo_free(text);
	if (j && !named_by(j, key)) {
		free_job(j); /* a record must not speak for another job */
		j = NULL;
	}
	pthread_mutex_lock(&r->e->lock);
	if (j && (old = find_job(r->e, j->id)) != NULL) {
		/* Submitted before start: the same job. Another record with the
		 * same id: a bad one. */
		if (old->from_store)
			r->skipped++;
		free_job(j);
	} else if (j) {
		j->from_store = 1;
		adopt(r->e, j);
	} else {
		r->skipped++;
	}
	pthread_mutex_unlock(&r->e->lock);
	if (!j) {
		octo_log_field f[] = { OCTO_LOG_STR("key", key) };
		octo_log_write(r->e->log, OCTO_LOG_ERROR, "Skipped a job record that cannot be read", f, 1);
	}
	return 0;
}

static int resume_all(octo_engine *e, size_t *skipped)
{
	resume r;
	int more = 1, rc = 0;

	memset(&r, 0, sizeof(r));
	r.e = e;
	while (more && rc == 0)
		rc = octo_store_list(e->store, "jobs/", r.last, 1000, resume_one, &r, &more);
	if (skipped)
		*skipped = r.skipped;
	return rc;
}

/* ---- webhooks ------------------------------------------------------------------- */

/* Under the lock: takes the first due delivery, else says when one is. */
static delivery *take_delivery(octo_engine *e, uint64_t now, uint64_t *wake_at)
{
	delivery **link;

	*wake_at = UINT64_MAX;
	for (link = &e->deliveries; *link; link = &(*link)->next) {
		delivery *d = *link;
		if (d->due_ms <= now) {
			*link = d->next;
			return d;
		}
		if (d->due_ms < *wake_at)
			*wake_at = d->due_ms;
	}
	return NULL;
}

/* One attempt: POST the job's final status, then record how it went and
 * schedule the next try (capped exponential backoff) if it failed. */
static void deliver(octo_engine *e, job *j)
{
	char id[64], err[200] = "", *body;
	change c;
	int rc;

	pthread_mutex_lock(&e->lock);
	body = render(j);
	pthread_mutex_unlock(&e->lock);
	/* The same id on every attempt lets receivers drop duplicates. */
	snprintf(id, sizeof(id), "msg_%s", j->id);
	rc = body ? octo__webhook_post(j->callback_url, e->webhook_key, (size_t)e->webhook_key_len,
	                               id, body, e->opts.webhook_timeout_ms, err, sizeof(err))
	          : -1;
	free(body);
	pthread_mutex_lock(&e->lock);
	j->wh_attempts++;
	j->wh_delivered = rc == 0;
	free(j->wh_error);
	j->wh_error = rc == 0 ? NULL : strdup(err[0] ? err : "out of memory");
	j->wh_queued = 0;
	if (rc != 0 && !e->hard_stop)
		queue_webhook(e, j, octo__monotonic_ms() + backoff_ms(e, j->wh_attempts));
	j->seq++; /* note_change would queue it again: count the change here */
	octo__timestamp(j->updated);
	c.j = j;
	c.seq = j->seq;
	c.finished = 1;
	c.record = render(j);
	pthread_mutex_unlock(&e->lock);
	publish(e, &c);
}

static void *webhook_main(void *arg)
{
	octo_engine *e = arg;

	pthread_mutex_lock(&e->lock);
	while (!e->hard_stop) {
		uint64_t wake_at;
		delivery *d = take_delivery(e, octo__monotonic_ms(), &wake_at);
		struct timespec ts;
		if (!d) {
			deadline_ts(wake_at == UINT64_MAX ? octo__monotonic_ms() + 60000 : wake_at, &ts);
			pthread_cond_timedwait(&e->deliver, &e->lock, &ts);
			continue;
		}
		pthread_mutex_unlock(&e->lock);
		deliver(e, d->j);
		free(d);
		pthread_mutex_lock(&e->lock);
	}
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

/* ---- retention -------------------------------------------------------------------- */

/* Under the lock: unlinks the jobs past retention (webhook done) and
 * returns them chained through `next`, for deleting outside the lock. */
static job *take_expired(octo_engine *e, time_t now)
{
	job *expired = NULL;
	size_t b;

	for (b = 0; b < BUCKETS; b++) {
		job **link = &e->buckets[b];
		while (*link) {
			job *j = *link;
			int webhook_done = !j->callback_url || j->wh_delivered ||
			                   j->wh_attempts >= e->opts.webhook_max_attempts;
			if (j->ended_at && now - j->ended_at >= (time_t)e->opts.retention_s &&
			    webhook_done && !j->wh_queued) {
				*link = j->next;
				/* Its key stays taken until the record is gone: the
				 * same key and request would make a job of the same
				 * id, whose record the delete must not take. */
				j->expiring = 1;
				j->next = expired;
				expired = j;
			} else {
				link = &j->next;
			}
		}
	}
	return expired;
}

static void *janitor_main(void *arg)
{
	octo_engine *e = arg;
	uint32_t every_ms = e->opts.retention_s * 100; /* a tenth of retention, */
	struct timespec ts;

	if (every_ms < 1000 || every_ms > 60000)
		every_ms = every_ms < 1000 ? 1000 : 60000; /* within 1 s .. 1 min */
	pthread_mutex_lock(&e->lock);
	while (!e->hard_stop) {
		job *expired = take_expired(e, time(NULL));
		pthread_mutex_unlock(&e->lock);
		while (expired) {
			job *j = expired;
			char key[64];
			expired = j->next;
			record_key(j, key, sizeof(key));
			octo_store_delete(e->store, key); /* gone already is fine */
			pthread_mutex_lock(&e->lock);
			unlink_key(e, j);
			pthread_mutex_unlock(&e->lock);
			free_job(j);
		}
		pthread_mutex_lock(&e->lock);
		deadline_ts(octo__monotonic_ms() + every_ms, &ts);
		if (!e->hard_stop)
			pthread_cond_timedwait(&e->deliver, &e->lock, &ts);
	}
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

/* ---- life cycle ------------------------------------------------------------------ */

static const char *const status_label[] = { "status", NULL };

static int register_metrics(octo_engine *e, octo_metrics *reg)
{
	static const double file_buckets[] = { 1, 5, 10, 15, 30, 60, 90, 120, 180, 300, 600 };
	octo_metric *jobs;
	int rc, st;

	if ((rc = octo_metrics_histogram(&e->m.processing, reg, "download_processing_duration_seconds",
	                                 "Time one attempt at preparing a file took.", NULL,
	                                 file_buckets, sizeof(file_buckets) / sizeof(file_buckets[0]))) < 0 ||
	    (rc = octo_metrics_gauge(&e->m.active, reg, "active_downloads",
	                             "Files being prepared now.", NULL)) < 0 ||
	    (rc = octo_metrics_gauge(&e->m.queue_depth, reg, "download_queue_depth",
	                             "Files waiting for a worker.", NULL)) < 0 ||
	    (rc = octo_metrics_counter(&e->m.submitted, reg, "download_jobs_submitted_total",
	                               "Download jobs accepted.", NULL)) < 0 ||
	    (rc = octo_metrics_counter(&e->m.retried, reg, "download_files_retried_total",
	                               "File attempts that failed and were queued again.", NULL)) < 0 ||
	    (rc = octo_metrics_counter(&e->m.rescued, reg, "download_files_rescued_total",
	                               "Unfinished files queued again when the engine started.", NULL)) < 0 ||
	    (rc = octo_metrics_counter(&jobs, reg, "download_jobs_total",
	                               "Download jobs that ended, by final status.", status_label)) < 0)
		return rc;
	for (st = J_COMPLETED; st <= J_CANCELLED; st++) {
		const char *value[] = { job_names[st], NULL };
		if ((rc = octo_metrics_with(&e->m.finished[st], jobs, value)) < 0)
			return rc;
	}
	return 0;
}

int octo_engine_new(octo_engine **out, octo_store *store, octo_processor processor,
                    void *payload, const octo_engine_options *opts)
{
	static const octo_engine_options defaults = OCTO_ENGINE_OPTIONS_INIT;
	pthread_condattr_t attr;
	octo_engine *e;
	int rc;

	octo__error_clear();
	if (!opts)
		opts = &defaults;
	if (!out || !store || !processor)
		return octo__error(OCTO_EINVAL, "an engine needs a store and a processor");
	if (opts->version != OCTO_ENGINE_OPTIONS_VERSION || opts->workers < 1 ||
	    opts->workers > 1024 || opts->queue_max < 1 || opts->max_attempts < 1 ||
	    opts->file_timeout_ms < 1 || opts->backoff_cap_ms < opts->backoff_base_ms)
		return octo__error(OCTO_EINVAL, "invalid engine options");
	if (!(e = calloc(1, sizeof(*e))))
		return octo__error(OCTO_ENOMEM, "out of memory");
	e->store = store;
	e->processor = processor;
	e->payload = payload;
	e->opts = *opts;
	e->opts.webhook_secret = NULL; /* the key below is what is kept */
	e->accepting = 1;
	e->webhook_key_len = opts->webhook_secret
	        ? octo__webhook_key(opts->webhook_secret, e->webhook_key, sizeof(e->webhook_key))
	        : -1;
	if (opts->webhook_secret && e->webhook_key_len < 1) {
		free(e);
		return octo__error(OCTO_EINVAL, "webhook_secret is not a valid secret");
	}
	e->log = opts->log;
	if (opts->metrics && (rc = register_metrics(e, opts->metrics)) < 0) {
		free(e);
		return rc;
	}
	pthread_mutex_init(&e->lock, NULL);
	pthread_mutex_init(&e->shutdown_lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&e->work, &attr);
	pthread_cond_init(&e->tick, &attr);
	pthread_cond_init(&e->idle, &attr);
	pthread_cond_init(&e->deliver, &attr);
	pthread_cond_init(&e->listener_idle, NULL);
	pthread_cond_init(&e->submits_idle, NULL);
	pthread_condattr_destroy(&attr);
	*out = e;
	return 0;
}

/* Writes and announces the jobs whose files resume gave up on. */
static void publish_given_up(octo_engine *e)
{
	change *changes = NULL, *bigger;
	size_t n = 0, b, i;
	job *j;

	pthread_mutex_lock(&e->lock);
	for (b = 0; b < BUCKETS; b++) {
		for (j = e->buckets[b]; j; j = j->next) {
			if (!j->gave_up || !(bigger = realloc(changes, (n + 1) * sizeof(*changes))))
				continue;
			changes = bigger;
			j->gave_up = 0;
			note_change(e, j, 1, &changes[n++]);
		}
	}
	pthread_mutex_unlock(&e->lock);
	for (i = 0; i < n; i++)
		publish(e, &changes[i]);
	free(changes);
}

static void log_resumed(octo_engine *e, size_t skipped)
{
	octo_log_field f[2] = { OCTO_LOG_INT("files_queued", 0),
		                OCTO_LOG_INT("records_skipped", skipped) };

	pthread_mutex_lock(&e->lock);
	f[0].i = (int64_t)e->queued;
	pthread_mutex_unlock(&e->lock);
	octo_log_write(e->log, skipped ? OCTO_LOG_WARN : OCTO_LOG_INFO,
	               "Job engine started", f, 2);
}

int octo_engine_start(octo_engine *e, size_t *skipped)
{
	size_t bad = 0;
	unsigned i;
	int rc;

	octo__error_clear();
	if (e->threads)
		return octo__error(OCTO_EINVAL, "the engine is already started");
	if (!e->accepting)
		return octo__error(OCTO_ESHUTDOWN, "the engine was shut down");
	if ((rc = resume_all(e, &bad)) < 0)
		return rc;
	if (skipped)
		*skipped = bad;
	log_resumed(e, bad);
	publish_given_up(e);
	if (!(e->threads = calloc(e->opts.workers, sizeof(*e->threads))))
		return octo__error(OCTO_ENOMEM, "out of memory");
	for (i = 0; i < e->opts.workers; i++) {
		if (pthread_create(&e->threads[i], NULL, worker_main, e) != 0)
			break;
		e->thread_count++;
	}
	if (e->webhook_key_len > 0 &&
	    pthread_create(&e->webhook_thread, NULL, webhook_main, e) == 0)
		e->webhook_running = 1;
	if (e->opts.retention_s > 0 &&
	    pthread_create(&e->janitor_thread, NULL, janitor_main, e) == 0)
		e->janitor_running = 1;
	return e->thread_count ? 0 : octo__error(OCTO_ERROR, "cannot start worker threads");
}

void octo_engine_shutdown(octo_engine *e, uint32_t grace_ms)
{
	uint64_t until = octo__monotonic_ms() + grace_ms;
	struct timespec ts;
	unsigned i;

	if (!e)
		return;
	pthread_mutex_lock(&e->shutdown_lock);
	pthread_mutex_lock(&e->lock);
	e->accepting = 0; /* workers take no more files */
	pthread_cond_broadcast(&e->work);
	while (e->submitting > 0) /* their callers are owed an answer */
		pthread_cond_wait(&e->submits_idle, &e->lock);
	while (e->running > 0 && octo__monotonic_ms() < until) {
		deadline_ts(until, &ts);
		pthread_cond_timedwait(&e->idle, &e->lock, &ts);
	}
	e->hard_stop = 1; /* what still runs is asked to stop */
	pthread_cond_broadcast(&e->tick);
	pthread_cond_broadcast(&e->deliver);
	pthread_mutex_unlock(&e->lock);
	for (i = 0; i < e->thread_count; i++)
		pthread_join(e->threads[i], NULL);
	e->thread_count = 0;
	if (e->webhook_running) /* deliveries still due resume at the next start */
		pthread_join(e->webhook_thread, NULL);
	e->webhook_running = 0;
	if (e->janitor_running)
		pthread_join(e->janitor_thread, NULL);
	e->janitor_running = 0;
	pthread_mutex_unlock(&e->shutdown_lock);
}

void octo_engine_free(octo_engine *e)
{
	size_t b;
	item *it;

	if (!e)
		return;
	octo_engine_shutdown(e, 0);
	free(e->threads);
	while ((it = e->head) != NULL) {
		e->head = it->next;
		free(it);
	}
	for (b = 0; b < FLIGHT_BUCKETS; b++) {
		while (e->clients[b]) {
			client_slot *cs = e->clients[b];
			e->clients[b] = cs->next;
			free(cs);
		}
		while (e->flights[b]) {
			flight *fl = e->flights[b];
			e->flights[b] = fl->next;
			while (fl->followers) {
				follower *fw = fl->followers;
				fl->followers = fw->next;
				free(fw);
			}
			free(fl);
		}
	}
	while (e->deliveries) {
		delivery *d = e->deliveries;
		e->deliveries = d->next;
		free(d);
	}
	for (b = 0; b < BUCKETS; b++) {
		while (e->buckets[b]) {
			job *j = e->buckets[b];
			e->buckets[b] = j->next;
			free_job(j);
		}
	}
	pthread_cond_destroy(&e->work);
	pthread_cond_destroy(&e->tick);
	pthread_cond_destroy(&e->idle);
	pthread_cond_destroy(&e->deliver);
	pthread_cond_destroy(&e->listener_idle);
	pthread_cond_destroy(&e->submits_idle);
	explicit_bzero(e->webhook_key, sizeof(e->webhook_key));
	pthread_mutex_destroy(&e->lock);
	pthread_mutex_destroy(&e->shutdown_lock);
	free(e);
}
