/* The job engine over a real local store in a temporary directory, driven
 * by a scripted processor: what each file does (succeed, fail, leave no
 * object, block until released, sleep, report progress) is set per file
 * id by the test. Tests wait for states through the engine's listener and
 * the processor's own events, never by sleeping, with a generous bound.
 * Covers submission, snapshots, the state machine, retries, time limits,
 * cancellation, the bounded queue, progress, statistics, resumption from
 * the store (corrupt and version 1 records too), shutdown and concurrent
 * use. */
#include "config.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <octopus/octopus.h>

#include "../lib/internal.h"
#include "testutil.h"

/* How long a test waits for a state: generous, for valgrind. */
#define WAIT_MS 20000
#define MAX_RULES 32
#define MAX_LOGS 1024
#define N_ELEMS(a) (int)(sizeof(a) / sizeof((a)[0]))

/* ---- the scripted processor ---------------------------------------------- */

typedef enum {
	ACT_OK,        /* writes the object */
	ACT_FAIL,      /* returns OCTO_EIO with a message */
	ACT_NO_OBJECT, /* returns 0 without writing anything */
	ACT_BLOCK,     /* waits for release_all() or a stop, then writes */
	ACT_SLEEP,     /* octo_task_sleep(ms); stopped early: OCTO_EABORTED */
	ACT_PROGRESS,  /* reports 0.25, 0.5, 0.5004, halting at a gate after each */
	ACT_CLAMP      /* reports 2.0, NaN, -1.0, halting at a gate after each */
} action;

/* File `file_id` does `first` on attempts 1..n, then `then`. */
typedef struct {
	int64_t file_id;
	action first;
	unsigned n;
	action then;
	uint32_t ms;
} rule;

/* What the processor saw of one file id, over every engine of a test. */
typedef struct {
	int64_t file_id;
	unsigned calls;
	unsigned last_attempt;
	int sleep_rc;        /* result of the last octo_task_sleep() */
	uint64_t slept_ms;   /* and how long it took */
} call_log;

typedef struct {
	char id[OCTO_JOB_ID_LEN + 1];
	uint64_t seq;
	int finished;
} event;

/* Guards T, and is signalled on every event a test may wait for. */
static pthread_mutex_t lock;
static pthread_cond_t cond;

static struct {
	char dir[256];
	octo_store *store;
	octo_engine *engine;
	rule rules[MAX_RULES];
	size_t nrules;
	action fallback;       /* for files without a rule */
	call_log logs[MAX_LOGS];
	size_t nlogs;
	unsigned entered, exited;
	int released;          /* ACT_BLOCK may go on */
	unsigned gate, reached; /* ACT_PROGRESS and ACT_CLAMP steps */
	unsigned long ticks;   /* grows with every event */
	unsigned misuse;       /* the engine handed us something wrong */
	event *events;         /* every listener call, in order */
	size_t nevents, cap_events;
} T;

static void poke(void)
{
	T.ticks++;
	pthread_cond_broadcast(&cond);
}

/* Waits on `cond` (lock held) until a signal or the monotonic `deadline`. */
static void wait_signal(uint64_t deadline)
{
	uint64_t now = octo__monotonic_ms(), left = deadline > now ? deadline - now : 0;
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(left / 1000);
	ts.tv_nsec += (long)(left % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&cond, &lock, &ts);
}

static void listener(const char *id, uint64_t seq, int finished, void *payload)
{
	pthread_mutex_lock(&lock);
	if (payload != &T || !id || strlen(id) != OCTO_JOB_ID_LEN)
		T.misuse++;
	if (T.nevents == T.cap_events) {
		size_t cap = T.cap_events ? T.cap_events * 2 : 256;
		event *bigger = realloc(T.events, cap * sizeof(*bigger));
		if (bigger) {
			T.events = bigger;
			T.cap_events = cap;
		}
	}
	if (T.nevents < T.cap_events && id) {
		snprintf(T.events[T.nevents].id, sizeof(T.events[0].id), "%s", id);
		T.events[T.nevents].seq = seq;
		T.events[T.nevents].finished = finished;
		T.nevents++;
	} else {
		T.misuse++;
	}
	poke();
	pthread_mutex_unlock(&lock);
}

static size_t object_size(int64_t file_id)
{
	return 100 + (size_t)(file_id % 50);
}

static int put_object(octo_task *task)
{
	char data[200];
	size_t len = object_size(octo_task_file_id(task));

	memset(data, 'z', len);
	return octo_store_put(octo_task_store(task), octo_task_key(task), data, len);
}

/* Under the lock. */
static rule rule_for(int64_t file_id)
{
	rule r = { file_id, T.fallback, UINT_MAX, T.fallback, 0 };
	size_t i;

	for (i = 0; i < T.nrules; i++)
		if (T.rules[i].file_id == file_id)
			return T.rules[i];
	return r;
}

/* Under the lock; the entry stays where it is. */
static call_log *log_for(int64_t file_id)
{
	static call_log overflow;
	size_t i;

	for (i = 0; i < T.nlogs; i++)
		if (T.logs[i].file_id == file_id)
			return &T.logs[i];
	if (T.nlogs == MAX_LOGS) {
		T.misuse++;
		return &overflow;
	}
	T.logs[T.nlogs].file_id = file_id;
	return &T.logs[T.nlogs++];
}

static int block(octo_task *task)
{
	int released;

	for (;;) {
		pthread_mutex_lock(&lock);
		released = T.released;
		pthread_mutex_unlock(&lock);
		if (released)
			return put_object(task);
		/* Cancel and shutdown wake this at once; the slice only bounds
		 * how late a release is seen. */
		if (octo_task_sleep(task, 10))
			return OCTO_EABORTED;
	}
}

/* Announces `step`, then halts until the test opens the gate past it. */
static void reach(unsigned step)
{
	uint64_t deadline = octo__monotonic_ms() + WAIT_MS;

	pthread_mutex_lock(&lock);
	T.reached = step;
	poke();
	while (T.gate < step && octo__monotonic_ms() < deadline)
		wait_signal(deadline);
	pthread_mutex_unlock(&lock);
}

static int sleep_then_put(octo_task *task, call_log *log, uint32_t ms)
{
	uint64_t started = octo__monotonic_ms();
	int stop = octo_task_sleep(task, ms);

	pthread_mutex_lock(&lock);
	log->sleep_rc = stop;
	log->slept_ms = octo__monotonic_ms() - started;
	pthread_mutex_unlock(&lock);
	return stop ? OCTO_EABORTED : put_object(task);
}

static int processor(octo_task *task, void *payload)
{
	int64_t file_id = octo_task_file_id(task);
	unsigned attempt = octo_task_attempt(task);
	char key[64];
	call_log *log;
	action act;
	rule r;
	int rc = 0;

	snprintf(key, sizeof(key), "downloads/%" PRId64 ".zip", file_id);
	pthread_mutex_lock(&lock);
	if (payload != &T || strcmp(octo_task_key(task), key) != 0 ||
	    octo_task_store(task) != T.store || attempt < 1)
		T.misuse++;
	r = rule_for(file_id);
	act = attempt <= r.n ? r.first : r.then;
	log = log_for(file_id);
	log->calls++;
	log->last_attempt = attempt;
	T.entered++;
	poke();
	pthread_mutex_unlock(&lock);

	switch (act) {
	case ACT_OK:
		rc = put_object(task);
		break;
	case ACT_FAIL:
		rc = octo__error(OCTO_EIO, "scripted failure of %" PRId64, file_id);
		break;
	case ACT_NO_OBJECT:
		rc = 0;
		break;
	case ACT_BLOCK:
		rc = block(task);
		break;
	case ACT_SLEEP:
		rc = sleep_then_put(task, log, r.ms);
		break;
	case ACT_PROGRESS:
		octo_task_progress(task, 0.25);
		reach(1);
		octo_task_progress(task, 0.5);
		reach(2);
		octo_task_progress(task, 0.5004); /* the same thousandth: no change */
		reach(3);
		rc = put_object(task);
		break;
	case ACT_CLAMP:
		octo_task_progress(task, 2.0);
		reach(1);
		octo_task_progress(task, (double)NAN);
		reach(2);
		octo_task_progress(task, -1.0);
		reach(3);
		rc = put_object(task);
		break;
	}

	pthread_mutex_lock(&lock);
	T.exited++;
	poke();
	pthread_mutex_unlock(&lock);
	return rc;
}

static void script(int64_t file_id, action first, unsigned n, action then, uint32_t ms)
{
	ck_assert_uint_lt(T.nrules, MAX_RULES);
	pthread_mutex_lock(&lock);
	T.rules[T.nrules].file_id = file_id;
	T.rules[T.nrules].first = first;
	T.rules[T.nrules].n = n;
	T.rules[T.nrules].then = then;
	T.rules[T.nrules].ms = ms;
	T.nrules++;
	pthread_mutex_unlock(&lock);
}

static void script_always(int64_t file_id, action act, uint32_t ms)
{
	script(file_id, act, UINT_MAX, act, ms);
}

/* Forgets the rules; files then do `fallback`. */
static void rescript(action fallback)
{
	pthread_mutex_lock(&lock);
	T.nrules = 0;
	T.fallback = fallback;
	pthread_mutex_unlock(&lock);
}

static void release_all(void)
{
	pthread_mutex_lock(&lock);
	T.released = 1;
	poke();
	pthread_mutex_unlock(&lock);
}

static void open_gate(unsigned step)
{
	pthread_mutex_lock(&lock);
	T.gate = step;
	poke();
	pthread_mutex_unlock(&lock);
}

static call_log logged(int64_t file_id)
{
	call_log copy = { file_id, 0, 0, 0, 0 };
	size_t i;

	pthread_mutex_lock(&lock);
	for (i = 0; i < T.nlogs; i++)
		if (T.logs[i].file_id == file_id)
			copy = T.logs[i];
	pthread_mutex_unlock(&lock);
	return copy;
}

static unsigned counter(const unsigned *c)
{
	unsigned n;

	pthread_mutex_lock(&lock);
	n = *c;
	pthread_mutex_unlock(&lock);
	return n;
}

/* ---- fixture and engines --------------------------------------------------- */

static void setup(void)
{
	pthread_condattr_t attr;

	memset(&T, 0, sizeof(T));
	T.fallback = ACT_OK;
	pthread_mutex_init(&lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&cond, &attr);
	pthread_condattr_destroy(&attr);
	tu_mkdtemp(T.dir);
	ck_assert_int_eq(octo_store_open_local(&T.store, T.dir), 0);
}

static void teardown(void)
{
	/* Whatever still waits in the processor may go on, so workers join. */
	pthread_mutex_lock(&lock);
	T.released = 1;
	T.gate = UINT_MAX;
	poke();
	pthread_mutex_unlock(&lock);
	octo_engine_free(T.engine);
	T.engine = NULL;
	octo_store_free(T.store);
	T.store = NULL;
	tu_rmtree(T.dir);
	free(T.events);
	T.events = NULL;
	pthread_cond_destroy(&cond);
	pthread_mutex_destroy(&lock);
}

static octo_engine_options fast_options(unsigned workers)
{
	octo_engine_options o = OCTO_ENGINE_OPTIONS_INIT;

	o.workers = workers;
	o.backoff_base_ms = 1;
	o.backoff_cap_ms = 5;
	o.progress_persist_ms = 0;
	return o;
}

/* A new engine over T.store with the scripted processor and listener. */
static void new_engine(const octo_engine_options *o)
{
	ck_assert_ptr_null(T.engine);
	ck_assert_int_eq(octo_engine_new(&T.engine, T.store, processor, &T, o), 0);
	ck_assert_ptr_nonnull(T.engine);
	octo_engine_set_listener(T.engine, listener, &T);
}

static void start_engine(const octo_engine_options *o, size_t *skipped)
{
	new_engine(o);
	ck_assert_int_eq(octo_engine_start(T.engine, skipped), 0);
}

static void stop_engine(uint32_t grace_ms)
{
	octo_engine_shutdown(T.engine, grace_ms);
	octo_engine_free(T.engine);
	T.engine = NULL;
}

static void submit(const int64_t *ids, size_t count, char job_id[OCTO_JOB_ID_LEN + 1])
{
	int rc = octo_engine_submit(T.engine, ids, count, job_id);

	ck_assert_msg(rc == 0, "submit: %s: %s", octo_strerror(rc), octo_error_last());
	ck_assert_uint_eq(strlen(job_id), OCTO_JOB_ID_LEN);
}

/* ---- JSON and records -------------------------------------------------------- */

static octo_json *parse(const char *text, size_t len)
{
	octo_json *doc = NULL;

	if (!text || octo_json_parse(&doc, text, len) < 0)
		return NULL;
	return doc;
}

/* The job's snapshot, or NULL when the engine does not know it. */
static octo_json *snapshot_doc(const char *job_id)
{
	char *text = NULL;
	octo_json *doc;

	if (octo_engine_snapshot(T.engine, job_id, &text) < 0)
		return NULL;
	doc = parse(text, strlen(text));
	octo_free(text);
	return doc;
}

static octo_json *snapshot_of(const char *job_id)
{
	octo_json *doc = snapshot_doc(job_id);

	ck_assert_msg(doc != NULL, "no snapshot of %s: %s", job_id, octo_error_last());
	return doc;
}

static void record_key(const char *job_id, char *key, size_t size)
{
	snprintf(key, size, "jobs/%s.json", job_id);
}

/* The job's record in the store, or NULL. */
static octo_json *record_doc(const char *job_id)
{
	char key[80], *text = NULL;
	octo_json *doc;
	size_t len = 0;

	record_key(job_id, key, sizeof(key));
	if (octo_store_get(T.store, key, &text, &len) < 0)
		return NULL;
	doc = parse(text, len);
	octo_free(text);
	return doc;
}

static octo_json *record_of(const char *job_id)
{
	octo_json *doc = record_doc(job_id);

	ck_assert_msg(doc != NULL, "no readable record of %s", job_id);
	return doc;
}

static void put_text(const char *key, const char *text)
{
	ck_assert_int_eq(octo_store_put(T.store, key, text, strlen(text)), 0);
}

static int count_key(const char *key, const octo_object_info *info, void *payload)
{
	(void)key;
	(void)info;
	(*(size_t *)payload)++;
	return 0;
}

static size_t count_records(void)
{
	size_t n = 0;
	int more = 0;

	ck_assert_int_eq(octo_store_list(T.store, "jobs/", NULL, 1000, count_key, &n, &more), 0);
	ck_assert_int_eq(more, 0);
	return n;
}

static int64_t get_int(const octo_json_value *v, const char *key)
{
	int64_t n;

	return octo_json_int(octo_json_get(v, key), &n) == 0 ? n : INT64_MIN;
}

static const char *get_str(const octo_json_value *v, const char *key)
{
	const char *s;

	return octo_json_string(octo_json_get(v, key), &s) == 0 ? s : NULL;
}

static const octo_json_value *file_at(const octo_json *doc, size_t i)
{
	return octo_json_at(octo_json_get(octo_json_root(doc), "files"), i);
}

#define ROOT(doc) octo_json_root(doc)

static void assert_str(const octo_json_value *v, const char *key, const char *want)
{
	const char *s = get_str(v, key);

	ck_assert_msg(s && strcmp(s, want) == 0, "\"%s\" is \"%s\", not \"%s\"", key,
	              s ? s : "(absent)", want);
}

static void assert_int(const octo_json_value *v, const char *key, int64_t want)
{
	int64_t n = get_int(v, key);

	ck_assert_msg(n == want, "\"%s\" is %" PRId64 ", not %" PRId64, key, n, want);
}

static void assert_null(const octo_json_value *v, const char *key)
{
	const octo_json_value *m = octo_json_get(v, key);

	ck_assert_msg(m && octo_json_typeof(m) == OCTO_JSON_NULL, "\"%s\" is not null", key);
}

/* The file's error contains `part`. */
static void assert_error_has(const octo_json_value *file, const char *part)
{
	const char *e = get_str(file, "error");

	ck_assert_msg(e && strstr(e, part), "error \"%s\" lacks \"%s\"", e ? e : "(none)", part);
}

static void assert_file(const octo_json *doc, size_t i, int64_t file_id, const char *status,
                        int64_t attempts)
{
	const octo_json_value *f = file_at(doc, i);

	ck_assert_ptr_nonnull(f);
	assert_int(f, "file_id", file_id);
	assert_str(f, "status", status);
	assert_int(f, "attempts", attempts);
}

/* A completed file's size is the size of its object in the store. */
static void assert_size_matches_object(const octo_json *doc, size_t i)
{
	const octo_json_value *f = file_at(doc, i);
	octo_object_info info;
	char key[64];

	snprintf(key, sizeof(key), "downloads/%" PRId64 ".zip", get_int(f, "file_id"));
	ck_assert_int_eq(octo_store_head(T.store, key, &info), 0);
	assert_int(f, "size", (int64_t)info.size);
	ck_assert_uint_eq(info.size, object_size(get_int(f, "file_id")));
}

static int object_exists(int64_t file_id)
{
	char key[64];

	snprintf(key, sizeof(key), "downloads/%" PRId64 ".zip", file_id);
	return octo_store_head(T.store, key, NULL) == 0;
}

/* ---- waiting ------------------------------------------------------------------ */

typedef int (*check_fn)(const void *arg);

/* Re-checks `fn` after every listener or processor event until it holds;
 * fails the test after WAIT_MS. `fn` must not hold `lock`. */
static void wait_until(check_fn fn, const void *arg, const char *what)
{
	uint64_t deadline = octo__monotonic_ms() + WAIT_MS;
	unsigned long seen;

	for (;;) {
		pthread_mutex_lock(&lock);
		seen = T.ticks;
		pthread_mutex_unlock(&lock);
		if (fn(arg))
			return;
		pthread_mutex_lock(&lock);
		while (T.ticks == seen && octo__monotonic_ms() < deadline)
			wait_signal(deadline);
		pthread_mutex_unlock(&lock);
		ck_assert_msg(octo__monotonic_ms() < deadline, "timed out waiting for %s", what);
	}
}

typedef struct {
	const unsigned *counter;
	unsigned n;
} at_least;

static int count_reached(const void *arg)
{
	const at_least *a = arg;

	return counter(a->counter) >= a->n;
}

static void wait_count(const unsigned *c, unsigned n, const char *what)
{
	at_least a = { c, n };

	wait_until(count_reached, &a, what);
}

typedef struct {
	const char *job_id;
	const char *status;
} want;

static int status_is(const void *arg)
{
	const want *w = arg;
	octo_json *doc = snapshot_doc(w->job_id);
	const char *s = doc ? get_str(ROOT(doc), "status") : NULL;
	int ok = s && strcmp(s, w->status) == 0;

	octo_json_free(doc);
	return ok;
}

static int file_settled(const octo_json_value *f)
{
	const char *s = get_str(f, "status");

	return s && (strcmp(s, "completed") == 0 || strcmp(s, "failed") == 0 ||
	             strcmp(s, "cancelled") == 0);
}

/* Has the listener been told of change `seq` of the job? */
static int heard(const char *job_id, uint64_t seq)
{
	size_t i;
	int found = 0;

	pthread_mutex_lock(&lock);
	for (i = 0; i < T.nevents && !found; i++)
		found = T.events[i].seq == seq && strcmp(T.events[i].id, job_id) == 0;
	pthread_mutex_unlock(&lock);
	return found;
}

/* The job has its status, none of its files is pending or being prepared,
 * its record in the store has caught up with it and the listener has
 * heard of its last change. */
static int settled_as(const void *arg)
{
	const want *w = arg;
	octo_json *snap = snapshot_doc(w->job_id), *rec = NULL;
	const octo_json_value *files;
	const char *s;
	size_t i;
	int ok;

	if (!snap)
		return 0;
	files = octo_json_get(ROOT(snap), "files");
	s = get_str(ROOT(snap), "status");
	ok = s && strcmp(s, w->status) == 0 && octo_json_size(files) > 0;
	for (i = 0; ok && i < octo_json_size(files); i++)
		ok = file_settled(octo_json_at(files, i));
	if (ok) {
		rec = record_doc(w->job_id);
		ok = rec && get_int(ROOT(rec), "seq") == get_int(ROOT(snap), "seq") &&
		     heard(w->job_id, (uint64_t)get_int(ROOT(snap), "seq"));
	}
	octo_json_free(rec);
	octo_json_free(snap);
	return ok;
}

static void wait_status(const char *job_id, const char *status)
{
	want w = { job_id, status };
	char what[128];

	snprintf(what, sizeof(what), "job %s to be %s", job_id, status);
	wait_until(status_is, &w, what);
}

/* Waits until the job is finished as `status`, in memory and in the
 * store, and returns its snapshot (free with octo_json_free). */
static octo_json *wait_final(const char *job_id, const char *status)
{
	want w = { job_id, status };
	char what[128];

	snprintf(what, sizeof(what), "job %s to end %s", job_id, status);
	wait_until(settled_as, &w, what);
	return snapshot_of(job_id);
}

static void wait_completed(const char *job_id)
{
	octo_json *doc = wait_final(job_id, "completed");
	size_t i, n = octo_json_size(octo_json_get(ROOT(doc), "files"));

	for (i = 0; i < n; i++)
		assert_size_matches_object(doc, i);
	octo_json_free(doc);
}

/* The listener's calls for one job, in the order they came. */
static size_t events_of(const char *job_id, event *out, size_t max)
{
	size_t i, n = 0;

	pthread_mutex_lock(&lock);
	for (i = 0; i < T.nevents; i++)
		if (strcmp(T.events[i].id, job_id) == 0 && n < max)
			out[n++] = T.events[i];
	pthread_mutex_unlock(&lock);
	return n;
}

static uint64_t seq_of(const char *job_id)
{
	uint64_t seq = 0;

	ck_assert_int_eq(octo_engine_seq(T.engine, job_id, &seq), 0);
	return seq;
}

static char *snapshot_text(const char *job_id)
{
	char *text = NULL;

	ck_assert_int_eq(octo_engine_snapshot(T.engine, job_id, &text), 0);
	ck_assert_ptr_nonnull(text);
	return text;
}

/* ---- creating engines ---------------------------------------------------------- */

START_TEST(new_refuses_missing_arguments)
{
	octo_engine *e = NULL;

	ck_assert_int_eq(octo_engine_new(NULL, T.store, processor, &T, NULL), OCTO_EINVAL);
	ck_assert_int_eq(octo_engine_new(&e, NULL, processor, &T, NULL), OCTO_EINVAL);
	ck_assert_int_eq(octo_engine_new(&e, T.store, NULL, &T, NULL), OCTO_EINVAL);
	ck_assert_ptr_null(e);
	ck_assert_str_ne(octo_error_last(), "");
}
END_TEST

#define BAD_OPTIONS 9

static void spoil(int which, octo_engine_options *o)
{
	switch (which) {
	case 0: o->version = 0; break;
	case 1: o->version = OCTO_ENGINE_OPTIONS_VERSION + 1; break;
	case 2: o->workers = 0; break;
	case 3: o->workers = 1025; break;
	case 4: o->queue_max = 0; break;
	case 5: o->max_attempts = 0; break;
	case 6: o->file_timeout_ms = 0; break;
	case 7: o->backoff_base_ms = 10; o->backoff_cap_ms = 9; break;
	default: o->backoff_base_ms = 1000; o->backoff_cap_ms = 0; break;
	}
}

START_TEST(new_refuses_invalid_options)
{
	octo_engine_options o = fast_options(1);
	octo_engine *e = NULL;

	spoil(_i, &o);
	ck_assert_int_eq(octo_engine_new(&e, T.store, processor, &T, &o), OCTO_EINVAL);
	ck_assert_ptr_null(e);
	ck_assert_str_ne(octo_error_last(), "");
}
END_TEST

START_TEST(new_accepts_the_edges_of_the_options)
{
	octo_engine_options o;
	octo_engine *e = NULL;
	int i;

	for (i = 0; i < 5; i++) {
		o = fast_options(1);
		if (i == 0)
			o.workers = 1024;
		if (i == 1)
			o.queue_max = 1;
		if (i == 2)
			o.max_attempts = 1;
		if (i == 3)
			o.file_timeout_ms = 1;
		if (i == 4)
			o.backoff_base_ms = o.backoff_cap_ms = 0;
		ck_assert_int_eq(octo_engine_new(&e, T.store, processor, &T, &o), 0);
		ck_assert_ptr_nonnull(e);
		octo_engine_free(e);
		e = NULL;
	}
}
END_TEST

START_TEST(null_options_mean_the_defaults)
{
	const octo_engine_options d = OCTO_ENGINE_OPTIONS_INIT;
	size_t queued = 99;
	uint32_t median = 99;
	unsigned workers = 0;

	ck_assert_uint_eq(d.version, OCTO_ENGINE_OPTIONS_VERSION);
	ck_assert_uint_eq(d.workers, 4);
	ck_assert_uint_eq(d.queue_max, 10000);
	ck_assert_uint_eq(d.max_attempts, 3);
	ck_assert_int_eq(octo_engine_new(&T.engine, T.store, processor, &T, NULL), 0);
	octo_engine_stats(T.engine, &queued, &median, &workers);
	ck_assert_uint_eq(queued, 0);
	ck_assert_uint_eq(median, 0);
	ck_assert_uint_eq(workers, d.workers);
}
END_TEST

START_TEST(free_and_shutdown_accept_null)
{
	octo_engine_free(NULL);
	octo_engine_shutdown(NULL, 0);
	octo_engine_shutdown(NULL, 1000);
}
END_TEST

START_TEST(start_twice_is_refused)
{
	octo_engine_options o = fast_options(1);
	int64_t ids[] = { 70000 };
	char id[OCTO_JOB_ID_LEN + 1];

	start_engine(&o, NULL);
	ck_assert_int_eq(octo_engine_start(T.engine, NULL), OCTO_EINVAL);
	submit(ids, 1, id);
	wait_completed(id);
}
END_TEST

START_TEST(an_engine_never_started_accepts_jobs_and_frees_cleanly)
{
	octo_engine_options o = fast_options(1);
	int64_t ids[] = { 70000, 70001 };
	char id[OCTO_JOB_ID_LEN + 1], late[OCTO_JOB_ID_LEN + 1] = "";
	octo_json *rec;
	size_t queued = 0;

	new_engine(&o);
	submit(ids, 2, id);
	rec = record_of(id);
	assert_str(ROOT(rec), "status", "queued");
	octo_json_free(rec);
	octo_engine_stats(T.engine, &queued, NULL, NULL);
	ck_assert_uint_eq(queued, 2);
	octo_engine_shutdown(T.engine, 0);
	ck_assert_int_eq(octo_engine_submit(T.engine, ids, 2, late), OCTO_ESHUTDOWN);
	ck_assert_str_eq(late, "");
	stop_engine(0);
	ck_assert_uint_eq(count_records(), 1);
	ck_assert_uint_eq(counter(&T.entered), 0);
}
END_TEST

/* ---- submitting ------------------------------------------------------------------ */

START_TEST(submit_refuses_bad_file_id_lists)
{
	static const int64_t bad[] = { 9999, 100000001, -70000, 0, INT64_MIN, INT64_MAX };
	octo_engine_options o = fast_options(1);
	int64_t ids[OCTO_JOB_FILES_MAX + 1], last_bad[] = { 70000, 70001, 5 };
	char id[OCTO_JOB_ID_LEN + 1] = "";
	size_t i, queued = 99;

	for (i = 0; i < OCTO_JOB_FILES_MAX + 1; i++)
		ids[i] = 70000 + (int64_t)i;
	start_engine(&o, NULL);
	ck_assert_int_eq(octo_engine_submit(T.engine, ids, 0, id), OCTO_EINVAL);
	ck_assert_str_ne(octo_error_last(), "");
	ck_assert_int_eq(octo_engine_submit(T.engine, NULL, 1, id), OCTO_EINVAL);
	ck_assert_int_eq(octo_engine_submit(T.engine, ids, OCTO_JOB_FILES_MAX + 1, id), OCTO_EINVAL);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(octo_engine_submit(T.engine, &bad[i], 1, id), OCTO_EINVAL);
		ck_assert_str_ne(octo_error_last(), "");
	}
	ck_assert_int_eq(octo_engine_submit(T.engine, last_bad, 3, id), OCTO_EINVAL);
	ck_assert_ptr_nonnull(strstr(octo_error_last(), "5"));
	ck_assert_str_eq(id, "");
	ck_assert_uint_eq(count_records(), 0);
	octo_engine_stats(T.engine, &queued, NULL, NULL);
	ck_assert_uint_eq(queued, 0);
	ck_assert_uint_eq(counter(&T.entered), 0);
}
END_TEST

START_TEST(submit_accepts_the_edges_of_the_id_range_and_of_the_count)
{
	/* Not started: the 1000 files are accepted, not prepared. */
	octo_engine_options o = fast_options(1);
	int64_t edges[] = { 10000, 100000000 }, ids[OCTO_JOB_FILES_MAX];
	char a[OCTO_JOB_ID_LEN + 1], b[OCTO_JOB_ID_LEN + 1];
	size_t i, queued = 0;
	octo_json *rec;

	for (i = 0; i < OCTO_JOB_FILES_MAX; i++)
		ids[i] = 10000 + (int64_t)i;
	new_engine(&o);
	submit(edges, 2, a);
	submit(ids, OCTO_JOB_FILES_MAX, b);
	rec = record_of(b);
	assert_int(ROOT(rec), "totalFileIds", OCTO_JOB_FILES_MAX);
	ck_assert_uint_eq(octo_json_size(octo_json_get(ROOT(rec), "files")), OCTO_JOB_FILES_MAX);
	assert_file(rec, OCTO_JOB_FILES_MAX - 1, 10000 + OCTO_JOB_FILES_MAX - 1, "pending", 0);
	octo_json_free(rec);
	rec = record_of(a);
	assert_file(rec, 0, 10000, "pending", 0);
	assert_file(rec, 1, 100000000, "pending", 0);
	octo_json_free(rec);
	ck_assert_uint_eq(count_records(), 2);
	octo_engine_stats(T.engine, &queued, NULL, NULL);
	ck_assert_uint_eq(queued, OCTO_JOB_FILES_MAX + 2);
}
END_TEST

START_TEST(submit_writes_a_queued_record_before_returning)
{
	octo_engine_options o = fast_options(1);
	int64_t first[] = { 70000 }, second[] = { 70001, 70002 };
	char a[OCTO_JOB_ID_LEN + 1], b[OCTO_JOB_ID_LEN + 1];
	const octo_json_value *f;
	octo_json *rec;
	size_t i;

	rescript(ACT_BLOCK);
	start_engine(&o, NULL);
	submit(first, 1, a);
	wait_count(&T.entered, 1, "the first file to start");
	submit(second, 2, b);
	ck_assert_str_ne(a, b);

	/* The one worker is held by the first job: the second is queued. */
	rec = record_of(b);
	assert_int(ROOT(rec), "version", 2);
	assert_str(ROOT(rec), "jobId", b);
	assert_str(ROOT(rec), "status", "queued");
	assert_int(ROOT(rec), "totalFileIds", 2);
	assert_int(ROOT(rec), "completedFileIds", 0);
	assert_int(ROOT(rec), "failedFileIds", 0);
	assert_int(ROOT(rec), "progress", 0);
	assert_int(ROOT(rec), "seq", 1);
	ck_assert_ptr_nonnull(get_str(ROOT(rec), "createdAt"));
	for (i = 0; i < 2; i++) {
		assert_file(rec, i, second[i], "pending", 0);
		f = file_at(rec, i);
		assert_int(f, "progress", 0);
		assert_null(f, "size");
		assert_null(f, "error");
	}
	octo_json_free(rec);

	/* A running file was announced in the store before it was prepared. */
	rec = record_of(a);
	assert_str(ROOT(rec), "status", "processing");
	assert_file(rec, 0, 70000, "processing", 1);
	octo_json_free(rec);

	release_all();
	wait_completed(a);
	wait_completed(b);
}
END_TEST

/* ---- submits that do not wait ------------------------------------------------ */

/* What the done calls of octo_engine_submit_async() told. */
typedef struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned calls, written; /* written: the record was in the store at the call */
	unsigned submitted;      /* submits that returned 0, as their callers count */
	int rc;
	char job_id[OCTO_JOB_ID_LEN + 1];
	char message[256];
} answers;

static void answers_init(answers *a)
{
	memset(a, 0, sizeof(*a));
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->cond, NULL);
	a->rc = 99;
}

static void answers_destroy(answers *a)
{
	pthread_cond_destroy(&a->cond);
	pthread_mutex_destroy(&a->lock);
}

/* May run on the store's thread: only notes what it sees. */
static void on_submitted(int rc, const char *job_id, void *payload)
{
	answers *a = payload;
	char key[80];
	int written = 0;

	if (job_id) {
		record_key(job_id, key, sizeof(key));
		written = octo_store_head(T.store, key, NULL) == 0;
	}
	pthread_mutex_lock(&a->lock);
	a->calls++;
	a->written += written;
	a->rc = rc;
	snprintf(a->job_id, sizeof(a->job_id), "%s", job_id ? job_id : "");
	snprintf(a->message, sizeof(a->message), "%s", rc < 0 ? octo_error_last() : "");
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
}

/* Waits (bounded) until `*count`, one of `a`'s counters, reaches `n`;
 * its value then. */
static unsigned answers_wait_for(answers *a, const unsigned *count, unsigned n)
{
	uint64_t until = octo__monotonic_ms() + 10000;
	struct timespec ts;
	unsigned calls;

	pthread_mutex_lock(&a->lock);
	while (*count < n && octo__monotonic_ms() < until) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&a->cond, &a->lock, &ts);
	}
	calls = *count;
	pthread_mutex_unlock(&a->lock);
	return calls;
}

/* Waits (bounded) for `n` done calls in all; how many came. */
static unsigned answers_wait(answers *a, unsigned n)
{
	return answers_wait_for(a, &a->calls, n);
}

START_TEST(an_async_submit_answers_once_its_record_is_written)
{
	octo_engine_options o = fast_options(1);
	octo_job_options jo = OCTO_JOB_OPTIONS_INIT;
	int64_t ids[] = { 70300, 70301 }, bad[] = { 9999 };
	char first[OCTO_JOB_ID_LEN + 1];
	answers a;
	octo_json *rec;

	answers_init(&a);
	start_engine(&o, NULL);
	jo.idempotency_key = "async-1";
	ck_assert_int_eq(octo_engine_submit_async(T.engine, ids, 2, &jo, on_submitted, &a), 0);
	ck_assert_uint_eq(answers_wait(&a, 1), 1);
	ck_assert_msg(a.rc == 0, "submit: %s", a.message);
	ck_assert(octo__uuid_shaped(a.job_id));
	ck_assert_uint_eq(a.written, 1); /* durable before it was answered */
	memcpy(first, a.job_id, sizeof(first));
	rec = record_of(first);
	assert_int(ROOT(rec), "totalFileIds", 2);
	octo_json_free(rec);

	/* A replayed key is answered on the caller's thread, before return. */
	ck_assert_int_eq(octo_engine_submit_async(T.engine, ids, 2, &jo, on_submitted, &a), 0);
	ck_assert_uint_eq(a.calls, 2);
	ck_assert_int_eq(a.rc, 1);
	ck_assert_str_eq(a.job_id, first);

	/* What is wrong before writing is returned, and done is not called. */
	ck_assert_int_eq(octo_engine_submit_async(T.engine, bad, 1, NULL, on_submitted, &a),
	                 OCTO_EINVAL);
	ck_assert_int_eq(octo_engine_submit_async(T.engine, ids, 2, NULL, NULL, &a), OCTO_EINVAL);
	ck_assert_int_eq(octo_engine_submit_async(T.engine, ids + 1, 1, &jo, on_submitted, &a),
	                 OCTO_ECONFLICT);
	ck_assert_uint_eq(a.calls, 2);
	ck_assert_uint_eq(count_records(), 1);
	wait_completed(first);
	answers_destroy(&a);
}
END_TEST

/* A store that fails is reported through done, and the job is forgotten:
 * nothing queued, nothing to find. */
START_TEST(an_async_submit_the_store_refuses_is_not_accepted)
{
	octo_engine_options o = fast_options(1);
	int64_t ids[] = { 70310 };
	size_t queued = 9;
	answers a;

	answers_init(&a);
	start_engine(&o, NULL);
	tu_rmtree(T.dir);
	ck_assert_int_eq(octo_engine_submit_async(T.engine, ids, 1, NULL, on_submitted, &a), 0);
	ck_assert_uint_eq(answers_wait(&a, 1), 1);
	ck_assert_int_eq(a.rc, OCTO_EIO);
	ck_assert_str_eq(a.job_id, "");
	ck_assert_ptr_nonnull(strstr(a.message, "not usable"));
	octo_engine_stats(T.engine, &queued, NULL, NULL);
	ck_assert_uint_eq(queued, 0);
	ck_assert_uint_eq(logged(70310).calls, 0);
	answers_destroy(&a);
}
END_TEST

/* Many submits in flight at once share syncs; shutdown returns only once
 * each was answered, and every answered job is in the store. */
START_TEST(shutdown_waits_for_every_async_submit_in_flight)
{
	enum { JOBS = 400 };
	octo_engine_options o = fast_options(1);
	int64_t id;
	answers a;
	int i;

	answers_init(&a);
	o.queue_max = JOBS;
	new_engine(&o); /* not started: shutdown has no worker to wait for */
	for (i = 0; i < JOBS; i++) {
		id = 90000 + i;
		ck_assert_int_eq(octo_engine_submit_async(T.engine, &id, 1, NULL, on_submitted, &a), 0);
	}
	octo_engine_shutdown(T.engine, 0);
	ck_assert_uint_eq(a.calls, JOBS);
	ck_assert_uint_eq(a.written, JOBS);
	ck_assert_uint_eq(count_records(), JOBS);
	answers_destroy(&a);
}
END_TEST

/* Submits racing shutdown: each one admitted is answered before shutdown
 * returns, and the others are refused; no answer comes after. */
enum { RACERS = 4, RACE_MAX = 2000 }; /* submits a racer makes at most */

typedef struct {
	answers *a;
	int index;
	unsigned accepted; /* calls that returned 0 */
	int refused;       /* the last call got OCTO_ESHUTDOWN */
} racer;

static void *submit_until_refused(void *arg)
{
	racer *r = arg;
	int64_t id;
	int rc, n;

	for (n = 0; !r->refused && n < RACE_MAX; n++) {
		id = 10000 + r->index * 1000000 + n;
		rc = octo_engine_submit_async(T.engine, &id, 1, NULL, on_submitted, r->a);
		r->accepted += rc == 0;
		r->refused = rc == OCTO_ESHUTDOWN;
		pthread_mutex_lock(&r->a->lock);
		r->a->submitted += rc == 0;
		pthread_cond_broadcast(&r->a->cond);
		pthread_mutex_unlock(&r->a->lock);
		sched_yield(); /* fair to the thread shutting down (valgrind runs one at a time) */
	}
	return NULL;
}

START_TEST(no_async_submit_is_answered_after_shutdown_returns)
{
	octo_engine_options o = fast_options(1);
	pthread_t t[RACERS];
	racer r[RACERS];
	unsigned at_return, raced, accepted = 0;
	int i, joined = 0, refused = 1;
	answers a;

	answers_init(&a);
	o.queue_max = 10000000;
	new_engine(&o);
	for (i = 0; i < RACERS; i++) {
		r[i] = (racer){ &a, i, 0, 0 };
		ck_assert_int_eq(pthread_create(&t[i], NULL, submit_until_refused, &r[i]), 0);
	}
	/* No assertion until the racers are joined: they use this frame. */
	raced = answers_wait_for(&a, &a.submitted, 20); /* the race is on */
	octo_engine_shutdown(T.engine, 0);
	pthread_mutex_lock(&a.lock);
	at_return = a.calls;
	pthread_mutex_unlock(&a.lock);
	for (i = 0; i < RACERS; i++) {
		joined += pthread_join(t[i], NULL) == 0;
		refused &= r[i].refused;
		accepted += r[i].accepted;
	}
	ck_assert_int_eq(joined, RACERS);
	ck_assert_uint_ge(raced, 20);
	ck_assert_msg(refused, "a racer made %d submits and was never refused", RACE_MAX);
	ck_assert_uint_eq(at_return, accepted);
	ck_assert_uint_eq(a.calls, accepted);
	ck_assert_uint_eq(a.written, accepted);
	answers_destroy(&a);
}
END_TEST

/* ---- snapshots -------------------------------------------------------------------- */

static void assert_timestamp(const char *ts)
{
	ck_assert_ptr_nonnull(ts);
	ck_assert_uint_eq(strlen(ts), 24);
	ck_assert_int_eq(ts[4], '-');
	ck_assert_int_eq(ts[10], 'T');
	ck_assert_int_eq(ts[19], '.');
	ck_assert_int_eq(ts[23], 'Z');
}

START_TEST(snapshot_has_the_documented_shape)
{
	octo_engine_options o = fast_options(1);
	int64_t ids[] = { 70010, 70011 };
	char id[OCTO_JOB_ID_LEN + 1];
	const octo_json_value *root, *files, *f;
	const char *created, *updated;
	octo_json *doc, *rec;
	size_t i;

	start_engine(&o, NULL);
	submit(ids, 2, id);
	doc = wait_final(id, "completed");
	root = ROOT(doc);
	ck_assert_int_eq(octo_json_typeof(root), OCTO_JSON_OBJECT);
	assert_str(root, "jobId", id);
	assert_str(root, "status", "completed");
	assert_int(root, "totalFileIds", 2);
	assert_int(root, "completedFileIds", 2);
	assert_int(root, "failedFileIds", 0);
	assert_int(root, "progress", 1000);
	files = octo_json_get(root, "files");
	ck_assert_int_eq(octo_json_typeof(files), OCTO_JSON_ARRAY);
	ck_assert_uint_eq(octo_json_size(files), 2);
	for (i = 0; i < 2; i++) {
		f = octo_json_at(files, i);
		ck_assert_int_eq(octo_json_typeof(f), OCTO_JSON_OBJECT);
		assert_file(doc, i, ids[i], "completed", 1);
		assert_int(f, "progress", 1000);
		ck_assert_int_eq(octo_json_typeof(octo_json_get(f, "size")), OCTO_JSON_INTEGER);
		assert_size_matches_object(doc, i);
		assert_null(f, "error");
	}
	created = get_str(root, "createdAt");
	updated = get_str(root, "updatedAt");
	assert_timestamp(created);
	assert_timestamp(updated);
	ck_assert_int_le(strcmp(created, updated), 0);
	ck_assert_int_eq(octo_json_typeof(octo_json_get(root, "seq")), OCTO_JSON_INTEGER);
	/* Submitted, then each file started and finished: four changes. */
	ck_assert_int_ge(get_int(root, "seq"), 5);
	ck_assert_uint_eq(seq_of(id), (uint64_t)get_int(root, "seq"));

	rec = record_of(id);
	assert_str(ROOT(rec), "status", "completed");
	assert_int(ROOT(rec), "seq", get_int(root, "seq"));
	assert_str(ROOT(rec), "createdAt", created);
	octo_json_free(rec);
	octo_json_free(doc);
}
END_TEST

START_TEST(an_unknown_job_is_not_found)
{
	octo_engine_options o = fast_options(1);
	char uuid[OCTO__UUID_LEN + 1], dummy = 0, *json = &dummy;
	uint64_t seq = 0;

	ck_assert_int_eq(octo__uuid4(uuid), 0);
	start_engine(&o, NULL);
	ck_assert_int_eq(octo_engine_snapshot(T.engine, uuid, &json), OCTO_ENOTFOUND);
	ck_assert_ptr_null(json);
	ck_assert_str_ne(octo_error_last(), "");
	ck_assert_int_eq(octo_engine_snapshot(T.engine, NULL, &json), OCTO_ENOTFOUND);
	ck_assert_int_eq(octo_engine_snapshot(T.engine, "short", &json), OCTO_ENOTFOUND);
	ck_assert_int_eq(octo_engine_seq(T.engine, uuid, &seq), OCTO_ENOTFOUND);
	ck_assert_int_eq(octo_engine_seq(T.engine, NULL, &seq), OCTO_ENOTFOUND);
	ck_assert_int_eq(octo_engine_cancel(T.engine, uuid), OCTO_ENOTFOUND);
	ck_assert_int_eq(octo_engine_cancel(T.engine, NULL), OCTO_ENOTFOUND);
	ck_assert_int_eq(octo_engine_cancel(T.engine, ""), OCTO_ENOTFOUND);
}
END_TEST

/* ---- the state machine -------------------------------------------------------------- */

START_TEST(a_job_goes_from_queued_to_processing_to_completed)
{
	octo_engine_options o = fast_options(1);
	int64_t first[] = { 70020 }, second[] = { 70021, 70022 };
	char a[OCTO_JOB_ID_LEN + 1], b[OCTO_JOB_ID_LEN + 1];
	octo_json *doc;

	script_always(70020, ACT_BLOCK, 0);
	start_engine(&o, NULL);
	submit(first, 1, a);
	wait_status(a, "processing");
	wait_count(&T.entered, 1, "the first file to start");
	doc = snapshot_of(a);
	assert_file(doc, 0, 70020, "processing", 1);
	assert_int(file_at(doc, 0), "progress", 0);
	assert_null(file_at(doc, 0), "size");
	octo_json_free(doc);

	submit(second, 2, b);
	doc = snapshot_of(b);
	assert_str(ROOT(doc), "status", "queued");
	assert_file(doc, 0, 70021, "pending", 0);
	assert_file(doc, 1, 70022, "pending", 0);
	octo_json_free(doc);

	release_all();
	doc = wait_final(a, "completed");
	assert_file(doc, 0, 70020, "completed", 1);
	assert_size_matches_object(doc, 0);
	assert_null(file_at(doc, 0), "error");
	octo_json_free(doc);
	doc = wait_final(b, "completed");
	assert_int(ROOT(doc), "completedFileIds", 2);
	assert_file(doc, 0, 70021, "completed", 1);
	assert_file(doc, 1, 70022, "completed", 1);
	assert_size_matches_object(doc, 0);
	assert_size_matches_object(doc, 1);
	octo_json_free(doc);
}
END_TEST

START_TEST(a_job_with_some_failed_files_is_partial)
{
	octo_engine_options o = fast_options(1);
	int64_t ids[] = { 70030, 70031, 70032 };
	char id[OCTO_JOB_ID_LEN + 1];
	octo_json *doc;

	o.max_attempts = 2;
	script_always(70031, ACT_FAIL, 0);
	start_engine(&o, NULL);
	submit(ids, 3, id);
	doc = wait_final(id, "partial");
	assert_int(ROOT(doc), "completedFileIds", 2);
	assert_int(ROOT(doc), "failedFileIds", 1);
	assert_int(ROOT(doc), "progress", 1000);
	assert_file(doc, 0, 70030, "completed", 1);
	assert_file(doc, 1, 70031, "failed", 2);
	assert_file(doc, 2, 70032, "completed", 1);
	assert_null(file_at(doc, 0), "error");
	assert_null(file_at(doc, 1), "size");
	assert_error_has(file_at(doc, 1), octo_strerror(OCTO_EIO));
	assert_error_has(file_at(doc, 1), "scripted failure of 70031");
	assert_error_has(file_at(doc, 1), "attempt 2 of 2");
	octo_json_free(doc);
	doc = record_of(id);
	assert_str(ROOT(doc), "status", "partial");
	assert_error_has(file_at(doc, 1), "attempt 2 of 2");
	octo_json_free(doc);
	ck_assert_uint_eq(logged(70031).calls, 2);
	ck_assert(!object_exists(70031));
}
END_TEST

START_TEST(a_job_whose_files_all_fail_is_failed)
{
	octo_engine_options o = fast_options(2);
	int64_t ids[] = { 70040, 70041 };
	char id[OCTO_JOB_ID_LEN + 1];
	octo_json *doc;

	o.max_attempts = 1;
	rescript(ACT_FAIL);
	start_engine(&o, NULL);
	submit(ids, 2, id);
	doc = wait_final(id, "failed");
	assert_int(ROOT(doc), "completedFileIds", 0);
	assert_int(ROOT(doc), "failedFileIds", 2);
	assert_int(ROOT(doc), "progress", 1000);
	assert_file(doc, 0, 70040, "failed", 1);
	assert_file(doc, 1, 70041, "failed", 1);
	assert_error_has(file_at(doc, 0), "attempt 1 of 1");
	assert_error_has(file_at(doc, 1), "scripted failure of 70041");
	octo_json_free(doc);
}
END_TEST

START_TEST(a_processor_that_leaves_no_object_fails_the_file)
{
	octo_engine_options o = fast_options(1);
	int64_t ids[] = { 70050 };
	char id[OCTO_JOB_ID_LEN + 1];
	octo_json *doc;

	o.max_attempts = 1;
	script_always(70050, ACT_NO_OBJECT, 0);
	start_engine(&o, NULL);
	submit(ids, 1, id);
	doc = wait_final(id, "failed");
	assert_file(doc, 0, 70050, "failed", 1);
	assert_error_has(file_at(doc, 0), "left no object");
	assert_null(file_at(doc, 0), "size");
	octo_json_free(doc);
	ck_assert(!object_exists(70050));
}
END_TEST

/* ---- retries and time limits ------------------------------------------------------------ */

START_TEST(a_file_failing_twice_completes_on_its_third_attempt)
{
	octo_engine_options o = fast_options(1);
	int64_t ids[] = { 70060 };
	char id[OCTO_JOB_ID_LEN + 1];
	octo_json *doc;

	o.max_attempts = 3;
	script(70060, ACT_FAIL, 2, ACT_OK, 0);
	start_engine(&o, NULL);
	submit(ids, 1, id);
	doc = wait_final(id, "completed");
	assert_file(doc, 0, 70060, "completed", 3);
	assert_null(file_at(doc, 0), "error");
	assert_size_matches_object(doc, 0);
	octo_json_free(doc);
	ck_assert_uint_eq(logged(70060).calls, 3);
	ck_assert_uint_eq(logged(70060).last_attempt, 3);
}
END_TEST

START_TEST(the_same_file_fails_when_two_attempts_are_allowed)
{
	octo_engine_options o = fast_options(1);
	int64_t ids[] = { 70061 };
	char id[OCTO_JOB_ID_LEN + 1];
	octo_json *doc;

	o.max_attempts = 2;
	script(70061, ACT_FAIL, 2, ACT_OK, 0);
	start_engine(&o, NULL);
	submit(ids, 1, id);
	doc = wait_final(id, "failed");
	assert_file(doc, 0, 70061, "failed", 2);
	assert_error_has(file_at(doc, 0), "attempt 2 of 2");
	octo_json_free(doc);
	ck_assert_uint_eq(logged(70061).calls, 2);
	ck_assert(!object_exists(70061));
}
END_TEST

START_TEST(an_attempt_past_its_time_limit_is_stopped_and_retried)
{
	octo_engine_options o = fast_options(2);
	int64_t ids[] = { 70070, 70071 };
	char id[OCTO_JOB_ID_LEN + 1];
	octo_json *doc;
	call_log log;

	o.file_timeout_ms = 150;
	o.max_attempts = 2;
	script_always(70070, ACT_SLEEP, 60000);
	script(70071, ACT_SLEEP, 1, ACT_OK, 60000);
	start_engine(&o, NULL);
	submit(ids, 2, id);
	doc = wait_final(id, "partial");
	assert_file(doc, 0, 70070, "failed", 2);
	assert_error_has(file_at(doc, 0), "timed out after 150 ms");
	assert_error_has(file_at(doc, 0), "attempt 2 of 2");
	assert_file(doc, 1, 70071, "completed", 2);
	assert_null(file_at(doc, 1), "error");
	octo_json_free(doc);

	log = logged(70070);
	ck_assert_uint_eq(log.calls, 2);
	ck_assert_int_eq(log.sleep_rc, 1); /* woken by the time limit ... */
	ck_assert_uint_lt(log.slept_ms, 30000); /* ... long before its 60 s */
	log = logged(70071);
	ck_assert_uint_eq(log.calls, 2);
	ck_assert_int_eq(log.sleep_rc, 1);
}
END_TEST

/* ---- cancellation ------------------------------------------------------------------------ */

START_TEST(cancel_stops_a_running_file_promptly_and_cancels_pending_ones)
{
	octo_engine_options o = fast_options(1);
	int64_t ids[] = { 70080, 70081, 70082 }, later[] = { 70083 };
	char id[OCTO_JOB_ID_LEN + 1], next[OCTO_JOB_ID_LEN + 1];
	octo_json *doc;
	call_log log;
	size_t i;

	script_always(70080, ACT_SLEEP, 60000);
	start_engine(&o, NULL);
	submit(ids, 3, id);
	wait_count(&T.entered, 1, "the first file to start");
	ck_assert_int_eq(octo_engine_cancel(T.engine, id), 0);

	/* At once: the job is cancelled and so are its pending files. */
	doc = snapshot_of(id);
	assert_str(ROOT(doc), "status", "cancelled");
	assert_file(doc, 1, 70081, "cancelled", 0);
	assert_file(doc, 2, 70082, "cancelled", 0);
	octo_json_free(doc);

	doc = wait_final(id, "cancelled");
	assert_file(doc, 0, 70080, "cancelled", 1);
	octo_json_free(doc);
	doc = record_of(id);
	assert_str(ROOT(doc), "status", "cancelled");
	for (i = 0; i < 3; i++)
		assert_str(file_at(doc, i), "status", "cancelled");
	octo_json_free(doc);

	log = logged(70080);
	ck_assert_int_eq(log.sleep_rc, 1);
	ck_assert_uint_lt(log.slept_ms, 20000);
	ck_assert(!object_exists(70080));

	/* The worker passes over the cancelled files' queue entries. */
	submit(later, 1, next);
	wait_completed(next);
	ck_assert_uint_eq(logged(70081).calls, 0);
	ck_assert_uint_eq(logged(70082).calls, 0);
}
END_TEST

START_TEST(cancel_of_a_queued_job_prepares_none_of_its_files)
{
	octo_engine_options o = fast_options(1);
	int64_t first[] = { 70090 }, second[] = { 70091, 70092 }, third[] = { 70093 };
	char a[OCTO_JOB_ID_LEN + 1], b[OCTO_JOB_ID_LEN + 1], c[OCTO_JOB_ID_LEN + 1];
	octo_json *doc;

	script_always(70090, ACT_BLOCK, 0);
	start_engine(&o, NULL);
	submit(first, 1, a);
	wait_count(&T.entered, 1, "the first file to start");
	submit(second, 2, b);
	ck_assert_int_eq(octo_engine_cancel(T.engine, b), 0);
	doc = wait_final(b, "cancelled");
	assert_file(doc, 0, 70091, "cancelled", 0);
	assert_file(doc, 1, 70092, "cancelled", 0);
	octo_json_free(doc);

	release_all();
	wait_completed(a);
	submit(third, 1, c);
	wait_completed(c);
	ck_assert_uint_eq(logged(70091).calls, 0);
	ck_assert_uint_eq(logged(70092).calls, 0);
	doc = snapshot_of(b);
	assert_str(ROOT(doc), "status", "cancelled");
	octo_json_free(doc);
}
END_TEST

START_TEST(cancel_is_idempotent_and_leaves_finished_jobs_as_they_were)
{
	octo_engine_options o = fast_options(1);
	int64_t done[] = { 70101 }, held[] = { 70100 };
	char c[OCTO_JOB_ID_LEN + 1], x[OCTO_JOB_ID_LEN + 1];
	uint64_t seq;
	octo_json *doc;

	script_always(70100, ACT_BLOCK, 0);
	start_engine(&o, NULL);
	submit(done, 1, c);
	wait_completed(c);
	seq = seq_of(c);
	ck_assert_int_eq(octo_engine_cancel(T.engine, c), 0);
	ck_assert_uint_eq(seq_of(c), seq);
	doc = snapshot_of(c);
	assert_str(ROOT(doc), "status", "completed");
	octo_json_free(doc);
	doc = record_of(c);
	assert_str(ROOT(doc), "status", "completed");
	octo_json_free(doc);

	submit(held, 1, x);
	wait_count(&T.entered, 2, "the held file to start");
	ck_assert_int_eq(octo_engine_cancel(T.engine, x), 0);
	ck_assert_int_eq(octo_engine_cancel(T.engine, x), 0);
	doc = wait_final(x, "cancelled");
	octo_json_free(doc);
	seq = seq_of(x);
	ck_assert_int_eq(octo_engine_cancel(T.engine, x), 0);
	ck_assert_uint_eq(seq_of(x), seq);
	doc = snapshot_of(x);
	assert_str(ROOT(doc), "status", "cancelled");
	assert_file(doc, 0, 70100, "cancelled", 1);
	octo_json_free(doc);
}
END_TEST

/* ---- the bounded queue ------------------------------------------------------------------- */

START_TEST(a_full_queue_refuses_a_job_and_writes_nothing_for_it)
{
	octo_engine_options o = fast_options(1);
	int64_t first[] = { 70110 }, four[] = { 70111, 70112, 70113, 70114 };
	char a[OCTO_JOB_ID_LEN + 1], b[OCTO_JOB_ID_LEN + 1], c[OCTO_JOB_ID_LEN + 1];
	char refused[OCTO_JOB_ID_LEN + 1] = "";
	size_t queued = 99;

	o.queue_max = 3;
	rescript(ACT_BLOCK);
	start_engine(&o, NULL);
	submit(first, 1, a);
	wait_count(&T.entered, 1, "the first file to start");

	ck_assert_int_eq(octo_engine_submit(T.engine, four, 4, refused), OCTO_EBUSY);
	ck_assert_str_ne(octo_error_last(), "");
	ck_assert_str_eq(refused, "");
	ck_assert_uint_eq(count_records(), 1);

	submit(four, 3, b);
	octo_engine_stats(T.engine, &queued, NULL, NULL);
	ck_assert_uint_eq(queued, 3);
	ck_assert_int_eq(octo_engine_submit(T.engine, four + 3, 1, refused), OCTO_EBUSY);
	ck_assert_str_eq(refused, "");
	ck_assert_uint_eq(count_records(), 2);

	release_all();
	wait_completed(a);
	wait_completed(b);
	octo_engine_stats(T.engine, &queued, NULL, NULL);
	ck_assert_uint_eq(queued, 0);
	submit(four, 3, c);
	wait_completed(c);
	ck_assert_uint_eq(logged(70114).calls, 0);
	ck_assert(!object_exists(70114));
}
END_TEST

/* ---- progress and the listener ----------------------------------------------------------- */

static uint64_t wait_step(unsigned step, const char *id, int64_t file_progress,
                          int64_t job_progress)
{
	octo_json *doc;
	uint64_t seq;

	wait_count(&T.reached, step, "the processor to report progress");
	doc = snapshot_of(id);
	assert_str(ROOT(doc), "status", "processing");
	assert_str(file_at(doc, 1), "status", "processing");
	assert_int(file_at(doc, 1), "progress", file_progress);
	assert_int(ROOT(doc), "progress", job_progress);
	seq = (uint64_t)get_int(ROOT(doc), "seq");
	ck_assert_uint_eq(seq_of(id), seq);
	octo_json_free(doc);
	return seq;
}

START_TEST(progress_shows_in_thousandths_and_every_change_grows_seq)
{
	octo_engine_options o = fast_options(1);
	int64_t ids[] = { 70120, 70121 };
	char id[OCTO_JOB_ID_LEN + 1];
	uint64_t s1, s2, s3, final;
	event ev[64];
	size_t i, n;
	octo_json *doc;

	script_always(70121, ACT_PROGRESS, 0);
	start_engine(&o, NULL);
	submit(ids, 2, id);

	/* The first file is done (1000), the second a quarter: 625 in all. */
	s1 = wait_step(1, id, 250, 625);
	doc = record_of(id);
	assert_int(file_at(doc, 1), "progress", 250);
	assert_int(ROOT(doc), "seq", (int64_t)s1);
	octo_json_free(doc);
	open_gate(1);
	s2 = wait_step(2, id, 500, 750);
	ck_assert_uint_gt(s2, s1);
	open_gate(2);
	s3 = wait_step(3, id, 500, 750);
	ck_assert_uint_eq(s3, s2); /* 0.5004 is still 500: nothing changed */
	open_gate(3);

	doc = wait_final(id, "completed");
	assert_int(ROOT(doc), "progress", 1000);
	assert_int(file_at(doc, 1), "progress", 1000);
	final = (uint64_t)get_int(ROOT(doc), "seq");
	ck_assert_uint_gt(final, s2);
	octo_json_free(doc);

	/* One worker makes every change: the listener hears them in order. */
	n = events_of(id, ev, 64);
	ck_assert_uint_ge(n, 5);
	for (i = 0; i < n; i++) {
		if (i > 0)
			ck_assert_uint_gt(ev[i].seq, ev[i - 1].seq);
		ck_assert_int_eq(ev[i].finished, i == n - 1);
	}
	ck_assert_uint_eq(ev[n - 1].seq, final);
	for (i = 0; i < n && ev[i].seq != s1; i++)
		;
	ck_assert_uint_lt(i, n);
	ck_assert_uint_eq(seq_of(id), final);
}
END_TEST

START_TEST(progress_is_written_at_most_every_progress_persist_ms)
{
	octo_engine_options o = fast_options(1);
	int64_t ids[] = { 70130, 70131 };
	char id[OCTO_JOB_ID_LEN + 1];
	event ev[64];
	size_t i, n;
	uint64_t s1;
	octo_json *doc;

	o.progress_persist_ms = 3600000;
	script_always(70131, ACT_PROGRESS, 0);
	start_engine(&o, NULL);
	submit(ids, 2, id);
	s1 = wait_step(1, id, 250, 625);

	/* The store still has the file as it started; listeners heard more. */
	doc = record_of(id);
	assert_str(file_at(doc, 1), "status", "processing");
	assert_int(file_at(doc, 1), "progress", 0);
	ck_assert_int_lt(get_int(ROOT(doc), "seq"), (int64_t)s1);
	octo_json_free(doc);
	n = events_of(id, ev, 64);
	for (i = 0; i < n && ev[i].seq != s1; i++)
		;
	ck_assert_uint_lt(i, n);

	open_gate(UINT_MAX);
	doc = wait_final(id, "completed");
	octo_json_free(doc);
	doc = record_of(id);
	assert_int(file_at(doc, 1), "progress", 1000);
	octo_json_free(doc);
}
END_TEST

START_TEST(progress_is_clamped_to_between_0_and_1)
{
	octo_engine_options o = fast_options(1);
	int64_t ids[] = { 70140, 70141 };
	char id[OCTO_JOB_ID_LEN + 1];
	uint64_t s1, s2, s3;

	script_always(70141, ACT_CLAMP, 0);
	start_engine(&o, NULL);
	submit(ids, 2, id);
	s1 = wait_step(1, id, 1000, 1000); /* 2.0: all but done, still processing */
	open_gate(1);
	s2 = wait_step(2, id, 0, 500);     /* NaN */
	ck_assert_uint_gt(s2, s1);
	open_gate(2);
	s3 = wait_step(3, id, 0, 500);     /* -1.0 is 0: no change */
	ck_assert_uint_eq(s3, s2);
	open_gate(3);
	wait_completed(id);
}
END_TEST

/* ---- statistics -------------------------------------------------------------------------- */

START_TEST(stats_count_queued_files_and_report_the_median_and_workers)
{
	octo_engine_options o = fast_options(2);
	int64_t held[] = { 70150, 70151 }, timed[] = { 70152, 70153, 70154 };
	char a[OCTO_JOB_ID_LEN + 1], b[OCTO_JOB_ID_LEN + 1];
	size_t queued = 99, i;
	uint32_t median = 99;
	unsigned workers = 0;

	script_always(70150, ACT_BLOCK, 0);
	script_always(70151, ACT_BLOCK, 0);
	for (i = 0; i < 3; i++)
		script_always(timed[i], ACT_SLEEP, 30);
	start_engine(&o, NULL);
	octo_engine_stats(T.engine, &queued, &median, &workers);
	ck_assert_uint_eq(queued, 0);
	ck_assert_uint_eq(median, 0);
	ck_assert_uint_eq(workers, 2);
	octo_engine_stats(T.engine, NULL, NULL, NULL);

	submit(held, 2, a);
	wait_count(&T.entered, 2, "both workers to be held");
	submit(timed, 3, b);
	octo_engine_stats(T.engine, &queued, &median, NULL);
	ck_assert_uint_eq(queued, 3);
	ck_assert_uint_eq(median, 0);

	release_all();
	wait_completed(a);
	wait_completed(b);
	octo_engine_stats(T.engine, &queued, &median, &workers);
	ck_assert_uint_eq(queued, 0);
	/* Three of the five files took at least 30 ms: so does the median. */
	ck_assert_uint_ge(median, 30);
	ck_assert_uint_lt(median, 60000);
	ck_assert_uint_eq(workers, 2);
}
END_TEST

/* ---- resuming from the store ------------------------------------------------------------- */

START_TEST(a_new_engine_resumes_every_unfinished_job)
{
	octo_engine_options o = fast_options(2);
	int64_t ids[3][2] = { { 70200, 70201 }, { 70202, 70203 }, { 70204, 70205 } };
	char id[3][OCTO_JOB_ID_LEN + 1];
	size_t skipped = 99;
	octo_json *doc;
	int j, k;

	rescript(ACT_BLOCK);
	start_engine(&o, NULL);
	for (j = 0; j < 3; j++)
		submit(ids[j], 2, id[j]);
	wait_count(&T.entered, 2, "both workers to be held");
	stop_engine(0);

	/* The stopped files went back to pending; nothing was lost. */
	for (j = 0; j < 3; j++) {
		doc = record_of(id[j]);
		assert_str(ROOT(doc), "status", "queued");
		for (k = 0; k < 2; k++)
			assert_file(doc, (size_t)k, ids[j][k], "pending", 0);
		octo_json_free(doc);
	}

	rescript(ACT_OK);
	start_engine(&o, &skipped);
	ck_assert_uint_eq(skipped, 0);
	for (j = 0; j < 3; j++) {
		doc = wait_final(id[j], "completed");
		for (k = 0; k < 2; k++) {
			assert_file(doc, (size_t)k, ids[j][k], "completed", 1);
			assert_size_matches_object(doc, (size_t)k);
		}
		octo_json_free(doc);
	}
	/* FIFO over two workers: the first job's files were the held ones. */
	ck_assert_uint_eq(logged(70200).calls, 2);
	ck_assert_uint_eq(logged(70201).calls, 2);
	for (j = 1; j < 3; j++)
		for (k = 0; k < 2; k++)
			ck_assert_uint_eq(logged(ids[j][k]).calls, 1);
}
END_TEST

START_TEST(a_file_in_flight_at_a_crash_is_prepared_again)
{
	octo_engine_options o = fast_options(1);
	int64_t ids[] = { 70210, 70211 };
	char id[OCTO_JOB_ID_LEN + 1], key[80], *crashed = NULL;
	size_t len = 0, skipped = 99;
	octo_json *doc;

	rescript(ACT_BLOCK);
	start_engine(&o, NULL);
	submit(ids, 2, id);
	wait_count(&T.entered, 1, "the first file to start");
	record_key(id, key, sizeof(key));
	ck_assert_int_eq(octo_store_get(T.store, key, &crashed, &len), 0);
	stop_engine(0);

	/* As if the process had died right after the file started. */
	doc = parse(crashed, len);
	ck_assert_ptr_nonnull(doc);
	assert_file(doc, 0, 70210, "processing", 1);
	octo_json_free(doc);
	ck_assert_int_eq(octo_store_put(T.store, key, crashed, len), 0);
	octo_free(crashed);

	rescript(ACT_OK);
	start_engine(&o, &skipped);
	ck_assert_uint_eq(skipped, 0);
	doc = wait_final(id, "completed");
	assert_file(doc, 0, 70210, "completed", 2);
	assert_file(doc, 1, 70211, "completed", 1);
	assert_size_matches_object(doc, 0);
	octo_json_free(doc);
	ck_assert_uint_eq(logged(70210).calls, 2);
	ck_assert_uint_eq(logged(70210).last_attempt, 2);
}
END_TEST

/* A file whose preparation brings the process down every time must not
 * bring it down forever: an attempt cut short by a crash counts, and a
 * file out of attempts fails on resume instead of running again. */
START_TEST(a_file_out_of_attempts_after_a_crash_fails_instead_of_looping)
{
	octo_engine_options o = fast_options(1);
	int64_t ids[] = { 70230 };
	char id[OCTO_JOB_ID_LEN + 1], key[80], *crashed = NULL, *json = NULL, *attempts;
	size_t len = 0;
	octo_json *doc;

	o.max_attempts = 1;
	rescript(ACT_BLOCK);
	start_engine(&o, NULL);
	submit(ids, 1, id);
	wait_count(&T.entered, 1, "the file to start");
	record_key(id, key, sizeof(key));
	ck_assert_int_eq(octo_store_get(T.store, key, &crashed, &len), 0);
	stop_engine(0);
	/* The crash, after five more restarts cut this file short (the
	 * engine forgives five). */
	attempts = strstr(crashed, "\"attempts\":1");
	ck_assert_ptr_nonnull(attempts);
	attempts[11] = '6';
	ck_assert_int_eq(octo_store_put(T.store, key, crashed, len), 0);
	octo_free(crashed);

	rescript(ACT_OK);
	start_engine(&o, NULL);
	ck_assert_int_eq(octo_engine_snapshot(T.engine, id, &json), 0);
	doc = parse(json, strlen(json));
	ck_assert_ptr_nonnull(doc);
	ck_assert_str_eq(str_member(doc, "status"), "failed");
	assert_file(doc, 0, 70230, "failed", 6);
	octo_json_free(doc);
	octo_free(json);
	ck_assert_uint_eq(logged(70230).calls, 1); /* never prepared again */
	/* The record says so too, for the next start and for readers. */
	doc = record_of(id);
	ck_assert_str_eq(str_member(doc, "status"), "failed");
	octo_json_free(doc);
}
END_TEST

START_TEST(finished_jobs_are_loaded_as_they_were)
{
	octo_engine_options o = fast_options(1);
	int64_t ok[] = { 70220 }, bad[] = { 70221 }, held[] = { 70222 }, probe[] = { 70223 };
	char id[3][OCTO_JOB_ID_LEN + 1], p[OCTO_JOB_ID_LEN + 1];
	char *before[3], *after;
	size_t skipped = 99, queued = 99;
	octo_json *doc;
	int j;

	o.max_attempts = 1;
	script_always(70221, ACT_FAIL, 0);
	script_always(70222, ACT_BLOCK, 0);
	start_engine(&o, NULL);
	submit(ok, 1, id[0]);
	wait_completed(id[0]);
	submit(bad, 1, id[1]);
	octo_json_free(wait_final(id[1], "failed"));
	submit(held, 1, id[2]);
	wait_count(&T.entered, 3, "the held file to start");
	ck_assert_int_eq(octo_engine_cancel(T.engine, id[2]), 0);
	octo_json_free(wait_final(id[2], "cancelled"));
	for (j = 0; j < 3; j++)
		before[j] = snapshot_text(id[j]);
	stop_engine(0);

	rescript(ACT_OK);
	start_engine(&o, &skipped);
	ck_assert_uint_eq(skipped, 0);
	octo_engine_stats(T.engine, &queued, NULL, NULL);
	ck_assert_uint_eq(queued, 0);
	for (j = 0; j < 3; j++) {
		after = snapshot_text(id[j]);
		ck_assert_str_eq(after, before[j]);
		octo_free(after);
		octo_free(before[j]);
	}
	doc = snapshot_of(id[1]);
	assert_error_has(file_at(doc, 0), "scripted failure of 70221");
	octo_json_free(doc);

	/* Nothing finished is prepared again. */
	submit(probe, 1, p);
	wait_completed(p);
	ck_assert_uint_eq(logged(70220).calls, 1);
	ck_assert_uint_eq(logged(70221).calls, 1);
	ck_assert_uint_eq(logged(70222).calls, 1);
	ck_assert_int_eq(octo_engine_cancel(T.engine, id[0]), 0);
	doc = snapshot_of(id[0]);
	assert_str(ROOT(doc), "status", "completed");
	octo_json_free(doc);
}
END_TEST

/* Replaces every "@ID@" in `tmpl` with `id`. Free the result. */
static char *fill(const char *tmpl, const char *id)
{
	size_t n = strlen(tmpl) + 1;
	const char *at;
	char *out, *w;

	for (at = tmpl; (at = strstr(at, "@ID@")) != NULL; at += 4)
		n += strlen(id);
	ck_assert_ptr_nonnull(out = malloc(n));
	for (w = out; (at = strstr(tmpl, "@ID@")) != NULL; tmpl = at + 4) {
		memcpy(w, tmpl, (size_t)(at - tmpl));
		w += at - tmpl;
		memcpy(w, id, strlen(id));
		w += strlen(id);
	}
	strcpy(w, tmpl);
	return out;
}

static void put_job(const char *name, const char *tmpl, const char *id)
{
	char key[200], *text = fill(tmpl, id);

	snprintf(key, sizeof(key), "jobs/%s", name);
	put_text(key, text);
	free(text);
}

#define TS "\"2025-01-02T03:04:05.678Z\""
#define HEAD2 "{\"version\":2,\"jobId\":\"@ID@\",\"status\":\"processing\",\"createdAt\":" TS ","
#define PENDING(id) "{\"file_id\":" id ",\"status\":\"pending\",\"progress\":0,\"attempts\":0," \
	"\"size\":null,\"error\":null}"

START_TEST(a_resumed_job_keeps_the_files_it_had_settled)
{
	static const char record[] = HEAD2 "\"updatedAt\":" TS ",\"seq\":7,\"files\":["
		"{\"file_id\":70230,\"status\":\"completed\",\"progress\":1000,\"attempts\":1,"
		"\"size\":123,\"error\":null},"
		"{\"file_id\":70231,\"status\":\"failed\",\"progress\":0,\"attempts\":3,"
		"\"size\":null,\"error\":\"disk on fire (attempt 3 of 3)\"},"
		"{\"file_id\":70232,\"status\":\"pending\",\"progress\":0,\"attempts\":1,"
		"\"size\":null,\"error\":\"I/O error (attempt 1 of 3)\"}]}";
	octo_engine_options o = fast_options(1);
	char id[OCTO__UUID_LEN + 1], name[64];
	size_t skipped = 99;
	octo_json *doc;

	ck_assert_int_eq(octo__uuid4(id), 0);
	snprintf(name, sizeof(name), "%s.json", id);
	put_job(name, record, id);
	start_engine(&o, &skipped);
	ck_assert_uint_eq(skipped, 0);
	doc = wait_final(id, "partial");
	assert_file(doc, 0, 70230, "completed", 1);
	assert_int(file_at(doc, 0), "size", 123);
	assert_file(doc, 1, 70231, "failed", 3);
	assert_error_has(file_at(doc, 1), "disk on fire");
	assert_file(doc, 2, 70232, "completed", 2);
	assert_null(file_at(doc, 2), "error");
	assert_size_matches_object(doc, 2);
	assert_str(ROOT(doc), "createdAt", "2025-01-02T03:04:05.678Z");
	ck_assert_int_gt(get_int(ROOT(doc), "seq"), 7);
	octo_json_free(doc);
	ck_assert_uint_eq(logged(70230).calls, 0);
	ck_assert_uint_eq(logged(70231).calls, 0);
	ck_assert_uint_eq(logged(70232).calls, 1);
	ck_assert_uint_eq(logged(70232).last_attempt, 2);
}
END_TEST

/* Records no engine can use; "@ID@" becomes a fresh job id. */
static const char *const unreadable[] = {
	"this is not json",
	"",
	"[1,2,3]",
	"{\"version\":2,\"jobId\":\"@ID@\",\"files\":[",
	"{\"jobId\":\"@ID@\",\"status\":\"queued\",\"createdAt\":" TS ",\"fileIds\":[70300]}",
	HEAD2 "\"files\":[" PENDING("70300") "],\"version2\":1}x",
	"{\"version\":99,\"jobId\":\"@ID@\",\"status\":\"queued\",\"createdAt\":" TS
	",\"files\":[" PENDING("70300") "]}",
	"{\"version\":\"2\",\"jobId\":\"@ID@\",\"status\":\"queued\",\"createdAt\":" TS
	",\"files\":[" PENDING("70300") "]}",
	"{\"version\":0,\"jobId\":\"@ID@\",\"status\":\"queued\",\"createdAt\":" TS
	",\"fileIds\":[70300]}",
	HEAD2 "\"files\":[" PENDING("5") "]}",
	HEAD2 "\"files\":[" PENDING("100000001") "]}",
	HEAD2 "\"files\":[" PENDING("\"70300\"") "]}",
	HEAD2 "\"files\":[" PENDING("70300") "," PENDING("-1") "]}",
	HEAD2 "\"files\":[{\"file_id\":70300,\"status\":\"sleeping\"}]}",
	HEAD2 "\"files\":[{\"file_id\":70300}]}",
	HEAD2 "\"files\":[70300]}",
	HEAD2 "\"files\":[]}",
	HEAD2 "\"files\":{\"a\":1}}",
	HEAD2 "\"files\":\"70300\"}",
	"{\"version\":2,\"jobId\":\"1234\",\"status\":\"queued\",\"createdAt\":" TS
	",\"files\":[" PENDING("70300") "]}",
	"{\"version\":2,\"jobId\":\"@ID@-and-more\",\"status\":\"queued\",\"createdAt\":" TS
	",\"files\":[" PENDING("70300") "]}",
	"{\"version\":2,\"jobId\":12345,\"status\":\"queued\",\"createdAt\":" TS
	",\"files\":[" PENDING("70300") "]}",
	"{\"version\":2,\"jobId\":\"@ID@\",\"status\":\"queued\",\"files\":[" PENDING("70300") "]}",
	"{\"version\":2,\"jobId\":\"@ID@\",\"status\":\"queued\","
	"\"createdAt\":\"2025-01-02T03:04:05.678Z and then some\",\"files\":[" PENDING("70300") "]}",
	"{\"version\":2,\"jobId\":\"@ID@\",\"createdAt\":" TS ",\"files\":[" PENDING("70300") "]}",
	"{\"version\":1,\"jobId\":\"@ID@\",\"status\":\"queued\",\"createdAt\":" TS
	",\"fileIds\":[70300,99]}",
	"{\"version\":1,\"jobId\":\"@ID@\",\"status\":\"queued\",\"createdAt\":" TS
	",\"fileIds\":[70300.5]}",
	"{\"version\":1,\"jobId\":\"@ID@\",\"status\":\"queued\",\"createdAt\":" TS
	",\"fileIds\":[]}",
	"{\"version\":1,\"jobId\":\"@ID@\",\"status\":\"queued\",\"createdAt\":" TS "}",
};

/* A version 1 or 2 record of `n` files. Free the result. */
static char *huge_record(int version, size_t n)
{
	size_t cap = 200 + n * 100, i, len;
	char *text = malloc(cap);

	ck_assert_ptr_nonnull(text);
	len = (size_t)snprintf(text, cap, "{\"version\":%d,\"jobId\":\"@ID@\",\"status\":\"queued\","
	                       "\"createdAt\":" TS ",\"%s\":[", version,
	                       version == 1 ? "fileIds" : "files");
	for (i = 0; i < n; i++) {
		if (version == 1)
			len += (size_t)snprintf(text + len, cap - len, "%s%zu", i ? "," : "",
			                        70000 + i);
		else
			len += (size_t)snprintf(text + len, cap - len,
			                        "%s{\"file_id\":%zu,\"status\":\"pending\"}",
			                        i ? "," : "", 70000 + i);
	}
	snprintf(text + len, cap - len, "]}");
	return text;
}

START_TEST(unreadable_records_are_skipped_and_counted)
{
	static const char good2[] = HEAD2 "\"files\":[" PENDING("70310") "," PENDING("70311") "]}";
	static const char good1[] = "{\"version\":1,\"jobId\":\"@ID@\",\"status\":\"queued\","
	                            "\"createdAt\":" TS ",\"fileIds\":[70312]}";
	static const char stray[] = "{\"version\":1,\"jobId\":\"@ID@\",\"status\":\"queued\","
	                            "\"createdAt\":" TS ",\"fileIds\":[70399]}";
	enum { N_BAD = sizeof(unreadable) / sizeof(unreadable[0]), N_HUGE = 2 };
	octo_engine_options o = fast_options(2);
	char bad_ids[N_BAD + N_HUGE][OCTO__UUID_LEN + 1], a[OCTO__UUID_LEN + 1];
	char b[OCTO__UUID_LEN + 1], name[80], *text;
	size_t i, skipped = 0;
	octo_json *doc;

	for (i = 0; i < N_BAD; i++) {
		ck_assert_int_eq(octo__uuid4(bad_ids[i]), 0);
		snprintf(name, sizeof(name), "bad-%02zu.json", i);
		put_job(name, unreadable[i], bad_ids[i]);
	}
	for (i = 0; i < N_HUGE; i++) {
		ck_assert_int_eq(octo__uuid4(bad_ids[N_BAD + i]), 0);
		snprintf(name, sizeof(name), "huge-%zu.json", i);
		text = huge_record(i == 0 ? 1 : 2, OCTO_JOB_FILES_MAX + 1);
		put_job(name, text, bad_ids[N_BAD + i]);
		free(text);
	}
	ck_assert_int_eq(octo__uuid4(a), 0);
	ck_assert_int_eq(octo__uuid4(b), 0);
	snprintf(name, sizeof(name), "%s.json", a);
	put_job(name, good2, a);
	snprintf(name, sizeof(name), "%s.json", b);
	put_job(name, good1, b);
	/* A second record of the same job is one too many, and so is a record
	 * under another job's name: listed first, it would take b's place. */
	put_job("zz-duplicate.json", good1, b);
	put_job("00000000-0000-4000-8000-000000000000.json", stray, b);

	start_engine(&o, &skipped);
	ck_assert_uint_eq(skipped, N_BAD + N_HUGE + 2);
	wait_completed(a);
	wait_completed(b);
	doc = snapshot_of(a);
	assert_file(doc, 0, 70310, "completed", 1);
	assert_file(doc, 1, 70311, "completed", 1);
	octo_json_free(doc);
	for (i = 0; i < N_BAD + N_HUGE; i++) {
		doc = snapshot_doc(bad_ids[i]);
		ck_assert_msg(doc == NULL, "unreadable record %zu was loaded", i);
	}
	ck_assert_uint_eq(logged(70300).calls, 0);
	ck_assert_uint_eq(logged(70312).calls, 1);
	ck_assert_uint_eq(logged(70399).calls, 0);
}
END_TEST

/* A record over 4 MiB was not written by an engine: it is skipped unread,
 * even when it would parse. */
START_TEST(an_oversized_record_is_skipped_unread)
{
	static const char head[] = "{\"version\":1,\"jobId\":\"@ID@\",\"status\":\"queued\","
	                           "\"createdAt\":" TS ",\"fileIds\":[70398],\"pad\":\"";
	octo_engine_options o = fast_options(1);
	size_t pad = 5u << 20, n = strlen(head), skipped = 0;
	char id[OCTO__UUID_LEN + 1], name[64], *tmpl = malloc(n + pad + 3);

	ck_assert_ptr_nonnull(tmpl);
	memcpy(tmpl, head, n);
	memset(tmpl + n, 'x', pad);
	memcpy(tmpl + n + pad, "\"}", 3);
	ck_assert_int_eq(octo__uuid4(id), 0);
	snprintf(name, sizeof(name), "%s.json", id);
	put_job(name, tmpl, id);
	free(tmpl);
	start_engine(&o, &skipped);
	ck_assert_uint_eq(skipped, 1);
	ck_assert_ptr_null(snapshot_doc(id)); /* nor read through from storage */
	ck_assert_uint_eq(logged(70398).calls, 0);
}
END_TEST

START_TEST(a_version_1_record_is_resumed_and_completes)
{
	static const char v1[] = "{\"version\":1,\"jobId\":\"@ID@\",\"status\":\"queued\","
	                         "\"createdAt\":\"2024-05-06T07:08:09.010Z\","
	                         "\"fileIds\":[70000,70001]}";
	octo_engine_options o = fast_options(2);
	char id[OCTO__UUID_LEN + 1], name[64];
	size_t skipped = 99;
	octo_json *doc;

	ck_assert_int_eq(octo__uuid4(id), 0);
	snprintf(name, sizeof(name), "%s.json", id);
	put_job(name, v1, id);
	start_engine(&o, &skipped);
	ck_assert_uint_eq(skipped, 0);
	doc = wait_final(id, "completed");
	assert_int(ROOT(doc), "totalFileIds", 2);
	assert_file(doc, 0, 70000, "completed", 1);
	assert_file(doc, 1, 70001, "completed", 1);
	assert_size_matches_object(doc, 0);
	assert_size_matches_object(doc, 1);
	assert_str(ROOT(doc), "createdAt", "2024-05-06T07:08:09.010Z");
	octo_json_free(doc);
	doc = record_of(id);
	assert_int(ROOT(doc), "version", 2);
	assert_str(ROOT(doc), "status", "completed");
	ck_assert_uint_eq(octo_json_size(octo_json_get(ROOT(doc), "files")), 2);
	octo_json_free(doc);
}
END_TEST

START_TEST(more_records_than_one_listing_page_are_all_loaded)
{
	static const char done[] = "{\"version\":2,\"jobId\":\"@ID@\",\"status\":\"completed\","
		"\"createdAt\":" TS ",\"updatedAt\":" TS ",\"seq\":3,\"files\":[{\"file_id\":70400,"
		"\"status\":\"completed\",\"progress\":1000,\"attempts\":1,\"size\":9,"
		"\"error\":null}]}";
	enum { N = 1001 }; /* a listing page holds 1000 */
	static char ids[N][OCTO__UUID_LEN + 1];
	octo_engine_options o = fast_options(1);
	char name[64];
	size_t i, skipped = 99, queued = 99;
	uint64_t seq;

	for (i = 0; i < N; i++) {
		ck_assert_int_eq(octo__uuid4(ids[i]), 0);
		snprintf(name, sizeof(name), "%.36s.json", ids[i]);
		put_job(name, done, ids[i]);
	}
	start_engine(&o, &skipped);
	ck_assert_uint_eq(skipped, 0);
	for (i = 0; i < N; i++) {
		seq = 0;
		ck_assert_int_eq(octo_engine_seq(T.engine, ids[i], &seq), 0);
		ck_assert_uint_eq(seq, 3);
	}
	octo_engine_stats(T.engine, &queued, NULL, NULL);
	ck_assert_uint_eq(queued, 0);
	ck_assert_uint_eq(counter(&T.entered), 0);
}
END_TEST

/* ---- shutting down -------------------------------------------------------------------------- */

START_TEST(shutdown_with_grace_lets_the_running_file_finish)
{
	octo_engine_options o = fast_options(1);
	int64_t ids[] = { 70240, 70241 };
	char id[OCTO_JOB_ID_LEN + 1], late[OCTO_JOB_ID_LEN + 1] = "";
	uint64_t started, took;
	octo_json *doc;

	script_always(70240, ACT_SLEEP, 500);
	script_always(70241, ACT_BLOCK, 0);
	start_engine(&o, NULL);
	submit(ids, 2, id);
	wait_count(&T.entered, 1, "the first file to start");
	ck_assert_uint_eq(counter(&T.exited), 0);
	started = octo__monotonic_ms();
	octo_engine_shutdown(T.engine, 5000);
	took = octo__monotonic_ms() - started;
	ck_assert_uint_lt(took, 5000);
	ck_assert_int_eq(logged(70240).sleep_rc, 0);

	doc = snapshot_of(id);
	assert_str(ROOT(doc), "status", "processing");
	assert_file(doc, 0, 70240, "completed", 1);
	assert_file(doc, 1, 70241, "pending", 0);
	octo_json_free(doc);
	doc = record_of(id);
	assert_file(doc, 0, 70240, "completed", 1);
	assert_file(doc, 1, 70241, "pending", 0);
	assert_int(ROOT(doc), "seq", (int64_t)seq_of(id));
	octo_json_free(doc);

	ck_assert_int_eq(octo_engine_submit(T.engine, ids, 1, late), OCTO_ESHUTDOWN);
	ck_assert_str_eq(late, "");
	ck_assert_uint_eq(count_records(), 1);
	octo_engine_shutdown(T.engine, 5000);
	stop_engine(0);
	ck_assert_uint_eq(logged(70241).calls, 0);

	rescript(ACT_OK);
	start_engine(&o, NULL);
	doc = wait_final(id, "completed");
	assert_file(doc, 0, 70240, "completed", 1);
	assert_file(doc, 1, 70241, "completed", 1);
	octo_json_free(doc);
	ck_assert_uint_eq(logged(70240).calls, 1);
}
END_TEST

START_TEST(shutdown_without_grace_stops_a_blocked_file_and_keeps_it_pending)
{
	octo_engine_options o = fast_options(1);
	int64_t ids[] = { 70250 };
	char id[OCTO_JOB_ID_LEN + 1], late[OCTO_JOB_ID_LEN + 1] = "";
	octo_json *doc;

	rescript(ACT_BLOCK);
	start_engine(&o, NULL);
	submit(ids, 1, id);
	wait_count(&T.entered, 1, "the file to start");
	octo_engine_shutdown(T.engine, 0);
	ck_assert_uint_eq(counter(&T.exited), 1);

	doc = snapshot_of(id);
	assert_str(ROOT(doc), "status", "queued");
	assert_file(doc, 0, 70250, "pending", 0);
	assert_int(file_at(doc, 0), "progress", 0);
	octo_json_free(doc);
	doc = record_of(id);
	assert_str(ROOT(doc), "status", "queued");
	assert_file(doc, 0, 70250, "pending", 0);
	assert_int(ROOT(doc), "seq", (int64_t)seq_of(id));
	octo_json_free(doc);
	ck_assert(!object_exists(70250));

	ck_assert_int_eq(octo_engine_submit(T.engine, ids, 1, late), OCTO_ESHUTDOWN);
	ck_assert_str_eq(late, "");
	ck_assert_uint_eq(count_records(), 1);
	stop_engine(0);

	rescript(ACT_OK);
	start_engine(&o, NULL);
	doc = wait_final(id, "completed");
	assert_file(doc, 0, 70250, "completed", 1);
	octo_json_free(doc);
	ck_assert_uint_eq(logged(70250).calls, 2);
}
END_TEST

/* ---- concurrent use ------------------------------------------------------------------------- */

#define SUBMITTERS 8
#define JOBS_EACH 8
#define FILES_EACH 3

typedef struct {
	int index;
	char ids[JOBS_EACH][OCTO_JOB_ID_LEN + 1];
	int rc[JOBS_EACH];
} submitter;

static int64_t concurrent_file(int t, int j, int k)
{
	return 80000 + t * 100 + j * 10 + k;
}

static void *submit_many(void *arg)
{
	submitter *s = arg;
	int64_t ids[FILES_EACH];
	int j, k;

	for (j = 0; j < JOBS_EACH; j++) {
		for (k = 0; k < FILES_EACH; k++)
			ids[k] = concurrent_file(s->index, j, k);
		s->rc[j] = octo_engine_submit(T.engine, ids, FILES_EACH, s->ids[j]);
	}
	return NULL;
}

START_TEST(many_submitters_and_workers_complete_every_job)
{
	static submitter subs[SUBMITTERS];
	octo_engine_options o = fast_options(4);
	pthread_t threads[SUBMITTERS];
	event ev[64];
	size_t n, i, finished;
	int t, j, k, u, v;

	memset(subs, 0, sizeof(subs));
	start_engine(&o, NULL);
	for (t = 0; t < SUBMITTERS; t++) {
		subs[t].index = t;
		ck_assert_int_eq(pthread_create(&threads[t], NULL, submit_many, &subs[t]), 0);
	}
	for (t = 0; t < SUBMITTERS; t++)
		ck_assert_int_eq(pthread_join(threads[t], NULL), 0);

	for (t = 0; t < SUBMITTERS; t++)
		for (j = 0; j < JOBS_EACH; j++) {
			ck_assert_int_eq(subs[t].rc[j], 0);
			for (u = t; u < SUBMITTERS; u++)
				for (v = u == t ? j + 1 : 0; v < JOBS_EACH; v++)
					ck_assert_str_ne(subs[t].ids[j], subs[u].ids[v]);
		}
	for (t = 0; t < SUBMITTERS; t++)
		for (j = 0; j < JOBS_EACH; j++) {
			wait_completed(subs[t].ids[j]);
			for (k = 0; k < FILES_EACH; k++)
				ck_assert_uint_eq(logged(concurrent_file(t, j, k)).calls, 1);
			/* Exactly one change finishes a job: its last. */
			n = events_of(subs[t].ids[j], ev, 64);
			for (i = finished = 0; i < n; i++)
				finished += ev[i].finished != 0;
			ck_assert_uint_eq(finished, 1);
			for (i = 0; i < n; i++)
				if (ev[i].finished)
					ck_assert_uint_eq(ev[i].seq, seq_of(subs[t].ids[j]));
		}
	ck_assert_uint_eq(count_records(), SUBMITTERS * JOBS_EACH);
}
END_TEST

/* Hears what listener() hears, through another function. */
static void listener_too(const char *id, uint64_t seq, int finished, void *payload)
{
	listener(id, seq, finished, payload);
}

/* Meant for race detectors (helgrind, -fsanitize=thread): replacing the
 * listener races with no change being announced. */
START_TEST(the_listener_may_be_replaced_while_jobs_run)
{
	octo_engine_options o = fast_options(4);
	char id[16][OCTO_JOB_ID_LEN + 1];
	int64_t ids[4];
	int j, k;

	start_engine(&o, NULL);
	for (j = 0; j < 16; j++) {
		for (k = 0; k < 4; k++)
			ids[k] = 81000 + j * 10 + k;
		submit(ids, 4, id[j]);
		octo_engine_set_listener(T.engine, j % 2 ? listener : listener_too, &T);
	}
	for (j = 0; j < 16; j++)
		wait_completed(id[j]);
}
END_TEST

/* ---- suite --------------------------------------------------------------------------------- */

static void check_misuse(void)
{
	unsigned misuse = counter(&T.misuse);

	teardown();
	ck_assert_msg(misuse == 0, "the engine misused the processor or listener %u times", misuse);
}

static TCase *job_tcase(const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, check_misuse);
	return tc;
}

/* ---- replicas ------------------------------------------------------------ */

START_TEST(a_job_of_another_engine_is_read_from_its_record)
{
	octo_engine_options o = fast_options(1);
	int64_t ids[] = { 70400 };
	char a[OCTO_JOB_ID_LEN + 1], *text = NULL;
	octo_engine *replica;
	octo_json *doc;

	ck_assert_int_eq(octo_engine_new(&replica, T.store, processor, &T, &o), 0);
	ck_assert_int_eq(octo_engine_start(replica, NULL), 0);
	start_engine(&o, NULL);
	submit(ids, 1, a);
	ck_assert_int_eq(octo_engine_snapshot(replica, a, &text), 0);
	doc = parse(text, strlen(text));
	assert_str(ROOT(doc), "jobId", a);
	ck_assert(strcmp(get_str(ROOT(doc), "status"), "queued") == 0 ||
	          strcmp(get_str(ROOT(doc), "status"), "processing") == 0 ||
	          strcmp(get_str(ROOT(doc), "status"), "completed") == 0);
	octo_json_free(doc);
	octo_free(text);
	octo_json_free(wait_final(a, "completed")); /* its record written, too */
	ck_assert_int_eq(octo_engine_snapshot(replica, a, &text), 0);
	doc = parse(text, strlen(text));
	assert_str(ROOT(doc), "status", "completed");
	assert_file(doc, 0, 70400, "completed", 1);
	octo_json_free(doc);
	octo_free(text);
	text = NULL;
	ck_assert_int_eq(octo_engine_snapshot(replica, "0b1e2f8a-4c55-4d9e-9a43-4f1a3c5e7d21", &text),
	                 OCTO_ENOTFOUND);
	ck_assert_int_eq(octo_engine_snapshot(replica, "../../etc/passwd", &text), OCTO_ENOTFOUND);
	ck_assert_ptr_null(text);
	octo_engine_shutdown(replica, 0);
	octo_engine_free(replica);
}
END_TEST

/* ---- metrics and logs ---------------------------------------------------- */

static double series(octo_metrics *reg, const char *name)
{
	char *text, *p;
	double v = -1;
	size_t n = strlen(name);

	ck_assert_int_eq(octo_metrics_render(reg, &text, NULL), 0);
	for (p = text; (p = strstr(p, name)) != NULL; p += n)
		if ((p == text || p[-1] == '\n') && p[n] == ' ') {
			v = strtod(p + n + 1, NULL);
			break;
		}
	octo_free(text);
	return v;
}

static int file_has(const char *path, const char *a, const char *b)
{
	char line[4096];
	FILE *f = fopen(path, "r");
	int found = 0;

	ck_assert_ptr_nonnull(f);
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, a) && strstr(line, b);
	fclose(f);
	return found;
}

START_TEST(metrics_and_logs_follow_files_and_jobs)
{
	octo_engine_options o = fast_options(1);
	octo_log_options lo = OCTO_LOG_OPTIONS_INIT;
	int64_t retried[] = { 70300, 70301 }, slow[] = { 70302 }, queued[] = { 70303 };
	char a[OCTO_JOB_ID_LEN + 1], b[OCTO_JOB_ID_LEN + 1], c[OCTO_JOB_ID_LEN + 1];
	char logdir[256], path[300];
	octo_metrics *reg;
	octo_log *log;

	tu_mkdtemp(logdir);
	snprintf(path, sizeof(path), "%s/engine.log", logdir);
	lo.path = path;
	lo.level = OCTO_LOG_DEBUG;
	ck_assert_int_eq(octo_log_new(&log, &lo), 0);
	ck_assert_int_eq(octo_metrics_new(&reg), 0);
	o.metrics = reg;
	o.log = log;
	script(70300, ACT_FAIL, 1, ACT_OK, 0);
	script_always(70302, ACT_SLEEP, 60000);
	start_engine(&o, NULL);
	submit(retried, 2, a);
	octo_json_free(wait_final(a, "completed"));
	ck_assert_double_eq(series(reg, "download_jobs_submitted_total"), 1);
	ck_assert_double_eq(series(reg, "download_jobs_total{status=\"completed\"}"), 1);
	ck_assert_double_eq(series(reg, "download_files_retried_total"), 1);
	ck_assert_double_eq(series(reg, "download_processing_duration_seconds_count"), 3);
	ck_assert(file_has(path, "File attempt failed", "\"file_id\":70300"));
	ck_assert(file_has(path, "Download job finished", a));

	/* One worker busy, one file waiting: what the gauges say now. */
	submit(slow, 1, b);
	wait_count(&T.entered, 4, "the slow file to start");
	submit(queued, 1, c);
	ck_assert_double_eq(series(reg, "active_downloads"), 1);
	ck_assert_double_eq(series(reg, "download_queue_depth"), 1);

	/* Both are left unfinished, and the next engine rescues them. */
	stop_engine(0);
	rescript(ACT_OK);
	start_engine(&o, NULL);
	octo_json_free(wait_final(b, "completed"));
	octo_json_free(wait_final(c, "completed"));
	ck_assert_double_eq(series(reg, "download_files_rescued_total"), 2);
	ck_assert_double_eq(series(reg, "download_jobs_total{status=\"completed\"}"), 3);
	ck_assert_double_eq(series(reg, "active_downloads"), 0);
	ck_assert_double_eq(series(reg, "download_queue_depth"), 0);
	ck_assert(file_has(path, "Job engine started", "\"files_queued\":2"));
	stop_engine(0);
	octo_metrics_free(reg);
	octo_log_free(log);
	tu_rmtree(logdir);
}
END_TEST

/* ---- idempotency and retention ------------------------------------------ */

START_TEST(an_idempotency_key_replays_or_conflicts_across_restarts)
{
	octo_engine_options o = fast_options(2);
	octo_job_options jo = OCTO_JOB_OPTIONS_INIT;
	int64_t ids[] = { 70200, 70201 }, other[] = { 70202 };
	char first[OCTO_JOB_ID_LEN + 1], again[OCTO_JOB_ID_LEN + 1];

	start_engine(&o, NULL);
	jo.idempotency_key = "order-17";
	ck_assert_int_eq(octo_engine_submit_with(T.engine, ids, 2, &jo, first), 0);
	ck_assert_int_eq(octo_engine_submit_with(T.engine, ids, 2, &jo, again), 1);
	ck_assert_str_eq(first, again);
	ck_assert_int_eq(octo_engine_submit_with(T.engine, other, 1, &jo, again), OCTO_ECONFLICT);
	jo.idempotency_key = "bad key!";
	ck_assert_int_eq(octo_engine_submit_with(T.engine, ids, 2, &jo, again), OCTO_EINVAL);
	/* Options of another layout are refused, callback URL or not. */
	jo.idempotency_key = "order-18";
	jo.version = OCTO_JOB_OPTIONS_VERSION + 1;
	ck_assert_int_eq(octo_engine_submit_with(T.engine, ids, 2, &jo, again), OCTO_EINVAL);
	ck_assert_ptr_nonnull(strstr(octo_error_last(), "version"));
	jo.version = OCTO_JOB_OPTIONS_VERSION;
	jo.idempotency_key = "order-17";
	wait_status(first, "completed");
	stop_engine(0);
	/* The key lives in the record: a restarted engine still knows it. */
	start_engine(&o, NULL);
	memset(again, 0, sizeof(again));
	ck_assert_int_eq(octo_engine_submit_with(T.engine, ids, 2, &jo, again), 1);
	ck_assert_str_eq(first, again);
	ck_assert_int_eq(octo_engine_submit_with(T.engine, other, 1, &jo, again), OCTO_ECONFLICT);
}
END_TEST

/* Keys are looked up by hash: many keys, each finds its own job. */
START_TEST(each_of_many_idempotency_keys_finds_its_own_job)
{
	octo_engine_options o = fast_options(2);
	octo_job_options jo = OCTO_JOB_OPTIONS_INIT;
	static char ids[300][OCTO_JOB_ID_LEN + 1];
	char key[32], again[OCTO_JOB_ID_LEN + 1];
	int64_t file;
	int i;

	start_engine(&o, NULL);
	jo.idempotency_key = key;
	for (i = 0; i < 300; i++) {
		snprintf(key, sizeof(key), "k-%d", i);
		file = 70300 + i % 50;
		ck_assert_int_eq(octo_engine_submit_with(T.engine, &file, 1, &jo, ids[i]), 0);
	}
	for (i = 299; i >= 0; i--) {
		snprintf(key, sizeof(key), "k-%d", i);
		file = 70300 + i % 50;
		ck_assert_int_eq(octo_engine_submit_with(T.engine, &file, 1, &jo, again), 1);
		ck_assert_str_eq(again, ids[i]);
		file = 70299;
		ck_assert_int_eq(octo_engine_submit_with(T.engine, &file, 1, &jo, again), OCTO_ECONFLICT);
	}
}
END_TEST

/* A submit whose answer was lost may land in storage after its retry was
 * taken as new (on S3, even after a restart read the bucket). Under an
 * Idempotency-Key both name the same job: the id comes from the key and
 * the request, so the late write rewrites that job, never adds another. */
START_TEST(a_retry_whose_first_write_lands_late_names_the_same_job)
{
	octo_engine_options o = fast_options(1);
	octo_job_options jo = OCTO_JOB_OPTIONS_INIT;
	int64_t ids[] = { 70600, 70601 }, other[] = { 70602 };
	char first[OCTO_JOB_ID_LEN + 1], retry[OCTO_JOB_ID_LEN + 1];
	char plain[OCTO_JOB_ID_LEN + 1], key[80], *late = NULL;
	size_t len = 0;

	rescript(ACT_BLOCK);
	new_engine(&o); /* not started: its jobs stay queued */
	jo.idempotency_key = "lost-answer-1";
	ck_assert_int_eq(octo_engine_submit_with(T.engine, ids, 2, &jo, first), 0);
	ck_assert(octo__uuid_shaped(first));
	ck_assert_int_eq(first[14], '8'); /* version 8: made, not drawn */
	record_key(first, key, sizeof(key));
	ck_assert_int_eq(octo_store_get(T.store, key, &late, &len), 0);
	stop_engine(0);
	/* The first write has not landed when the next engine reads the store. */
	ck_assert_int_eq(octo_store_delete(T.store, key), 0);
	new_engine(&o);
	ck_assert_int_eq(octo_engine_submit_with(T.engine, ids, 2, &jo, retry), 0);
	ck_assert_str_eq(retry, first);
	put_text(key, late); /* now it lands */
	ck_assert_uint_eq(count_records(), 1);
	/* Another request, or none, gets an id of its own. */
	jo.idempotency_key = "lost-answer-2";
	ck_assert_int_eq(octo_engine_submit_with(T.engine, other, 1, &jo, plain), 0);
	ck_assert_str_ne(plain, first);
	ck_assert_int_eq(octo_engine_submit(T.engine, ids, 2, plain), 0);
	ck_assert_str_ne(plain, first);
	ck_assert_int_eq(plain[14], '4');
	octo_free(late);
}
END_TEST

/* The janitor wakes on its own clock, not on engine events: poll. */
static int gone_within(const char *job_id, uint64_t ms)
{
	uint64_t deadline = octo__monotonic_ms() + ms;
	struct timespec pause = { 0, 20 * 1000000L };
	char key[64], *json = NULL;

	snprintf(key, sizeof(key), "jobs/%s.json", job_id);
	while (octo__monotonic_ms() < deadline) {
		int rc = octo_engine_snapshot(T.engine, job_id, &json);
		octo_free(json);
		json = NULL;
		if (rc == OCTO_ENOTFOUND && octo_store_head(T.store, key, NULL) == OCTO_ENOTFOUND)
			return 1;
		nanosleep(&pause, NULL);
	}
	return 0;
}

START_TEST(finished_jobs_are_removed_after_retention)
{
	octo_engine_options o = fast_options(2);
	int64_t ids[] = { 70210 };
	char job_id[OCTO_JOB_ID_LEN + 1], again[OCTO_JOB_ID_LEN + 1];
	octo_job_options jo = OCTO_JOB_OPTIONS_INIT;
	uint64_t seq;

	o.retention_s = 2; /* whole seconds: 2 leaves at least 1 s before removal */
	start_engine(&o, NULL);
	jo.idempotency_key = "kept-until-retention";
	ck_assert_int_eq(octo_engine_submit_with(T.engine, ids, 1, &jo, job_id), 0);
	wait_status(job_id, "completed");
	ck_assert_int_eq(octo_engine_seq(T.engine, job_id, &seq), 0); /* kept for now */
	ck_assert_msg(gone_within(job_id, 10000), "job %s outlived its retention", job_id);
	/* Its key went with it: the same key makes a new job (0, not a
	 * replay's 1), under the same id, which is made from the key and the
	 * request. */
	ck_assert_int_eq(octo_engine_submit_with(T.engine, ids, 1, &jo, again), 0);
	ck_assert_str_eq(again, job_id);
	wait_status(again, "completed");
	/* The engine goes on serving other jobs. */
	ids[0] = 70211;
	ck_assert_int_eq(octo_engine_submit(T.engine, ids, 1, job_id), 0);
	wait_status(job_id, "completed");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("job");
	TCase *tc;

	tc = job_tcase("new");
	tcase_add_test(tc, new_refuses_missing_arguments);
	tcase_add_loop_test(tc, new_refuses_invalid_options, 0, BAD_OPTIONS);
	tcase_add_test(tc, new_accepts_the_edges_of_the_options);
	tcase_add_test(tc, null_options_mean_the_defaults);
	tcase_add_test(tc, free_and_shutdown_accept_null);
	tcase_add_test(tc, start_twice_is_refused);
	tcase_add_test(tc, an_engine_never_started_accepts_jobs_and_frees_cleanly);
	suite_add_tcase(s, tc);

	tc = job_tcase("submit");
	tcase_add_test(tc, submit_refuses_bad_file_id_lists);
	tcase_add_test(tc, submit_accepts_the_edges_of_the_id_range_and_of_the_count);
	tcase_add_test(tc, submit_writes_a_queued_record_before_returning);
	tcase_add_test(tc, an_async_submit_answers_once_its_record_is_written);
	tcase_add_test(tc, an_async_submit_the_store_refuses_is_not_accepted);
	tcase_add_test(tc, shutdown_waits_for_every_async_submit_in_flight);
	tcase_add_test(tc, no_async_submit_is_answered_after_shutdown_returns);
	suite_add_tcase(s, tc);

	tc = job_tcase("replicas");
	tcase_add_test(tc, a_job_of_another_engine_is_read_from_its_record);
	suite_add_tcase(s, tc);

	tc = job_tcase("metrics and logs");
	tcase_add_test(tc, metrics_and_logs_follow_files_and_jobs);
	suite_add_tcase(s, tc);

	tc = job_tcase("idempotency and retention");
	tcase_add_test(tc, an_idempotency_key_replays_or_conflicts_across_restarts);
	tcase_add_test(tc, each_of_many_idempotency_keys_finds_its_own_job);
	tcase_add_test(tc, a_retry_whose_first_write_lands_late_names_the_same_job);
	tcase_add_test(tc, finished_jobs_are_removed_after_retention);
	suite_add_tcase(s, tc);

	tc = job_tcase("snapshot");
	tcase_add_test(tc, snapshot_has_the_documented_shape);
	tcase_add_test(tc, an_unknown_job_is_not_found);
	suite_add_tcase(s, tc);

	tc = job_tcase("states");
	tcase_add_test(tc, a_job_goes_from_queued_to_processing_to_completed);
	tcase_add_test(tc, a_job_with_some_failed_files_is_partial);
	tcase_add_test(tc, a_job_whose_files_all_fail_is_failed);
	tcase_add_test(tc, a_processor_that_leaves_no_object_fails_the_file);
	suite_add_tcase(s, tc);

	tc = job_tcase("retries");
	tcase_add_test(tc, a_file_failing_twice_completes_on_its_third_attempt);
	tcase_add_test(tc, the_same_file_fails_when_two_attempts_are_allowed);
	tcase_add_test(tc, an_attempt_past_its_time_limit_is_stopped_and_retried);
	suite_add_tcase(s, tc);

	tc = job_tcase("cancel");
	tcase_add_test(tc, cancel_stops_a_running_file_promptly_and_cancels_pending_ones);
	tcase_add_test(tc, cancel_of_a_queued_job_prepares_none_of_its_files);
	tcase_add_test(tc, cancel_is_idempotent_and_leaves_finished_jobs_as_they_were);
	suite_add_tcase(s, tc);

	tc = job_tcase("queue");
	tcase_add_test(tc, a_full_queue_refuses_a_job_and_writes_nothing_for_it);
	suite_add_tcase(s, tc);

	tc = job_tcase("progress");
	tcase_add_test(tc, progress_shows_in_thousandths_and_every_change_grows_seq);
	tcase_add_test(tc, progress_is_written_at_most_every_progress_persist_ms);
	tcase_add_test(tc, progress_is_clamped_to_between_0_and_1);
	suite_add_tcase(s, tc);

	tc = job_tcase("stats");
	tcase_add_test(tc, stats_count_queued_files_and_report_the_median_and_workers);
	suite_add_tcase(s, tc);

	tc = job_tcase("resume");
	tcase_add_test(tc, a_new_engine_resumes_every_unfinished_job);
	tcase_add_test(tc, a_file_in_flight_at_a_crash_is_prepared_again);
	tcase_add_test(tc, a_file_out_of_attempts_after_a_crash_fails_instead_of_looping);
	tcase_add_test(tc, finished_jobs_are_loaded_as_they_were);
	tcase_add_test(tc, a_resumed_job_keeps_the_files_it_had_settled);
	tcase_add_test(tc, unreadable_records_are_skipped_and_counted);
	tcase_add_test(tc, a_version_1_record_is_resumed_and_completes);
	tcase_add_test(tc, an_oversized_record_is_skipped_unread);
	tcase_add_test(tc, more_records_than_one_listing_page_are_all_loaded);
	suite_add_tcase(s, tc);

	tc = job_tcase("shutdown");
	tcase_add_test(tc, shutdown_with_grace_lets_the_running_file_finish);
	tcase_add_test(tc, shutdown_without_grace_stops_a_blocked_file_and_keeps_it_pending);
	suite_add_tcase(s, tc);

	tc = job_tcase("concurrency");
	tcase_add_test(tc, many_submitters_and_workers_complete_every_job);
	tcase_add_test(tc, the_listener_may_be_replaced_while_jobs_run);
	suite_add_tcase(s, tc);

	return tu_run(s);
}
