/* Structured logging: JSON lines on stderr or a file, and an optional
 * Elasticsearch sink fed through a bounded queue by a background thread. */
#include "config.h"
#include "internal.h"

#include <octopus/json.h>
#include <octopus/log.h>

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define OPEN_FLAGS (O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC)
#define NO_DEADLINE UINT64_MAX
#define BACKOFF_FIRST_MS 100
#define PREFIX_MAX 200           /* an index name may have 255 bytes */
#define RESPONSE_MAX (64u << 20) /* a _bulk answer larger than this is unread */

/* What the background thread decided for one record of a batch. */
enum { SHIPPED, RETRY, DROP };

/* One record for Elasticsearch: its action line and document, each ending
 * in "\n", so a _bulk body is the records' texts one after the other. */
typedef struct es_record {
	struct es_record *next;
	uint64_t queued_ms;  /* monotonic; a partial batch waits es_flush_ms */
	size_t len;
	char text[];
} es_record;

typedef struct {
	es_record *head, *tail;
	size_t len;
} es_list;

typedef struct {
	char *bulk_url;        /* <elasticsearch_url>/_bulk */
	char *index_prefix;
	size_t buffer_max, batch_max;
	uint32_t flush_ms, timeout_ms, retry_max_ms;

	pthread_mutex_t mu;
	pthread_cond_t wake;   /* the thread waits on it: records, flush, stop */
	pthread_cond_t idle;   /* flushers wait on it: records were settled */
	/* Both lists count against buffer_max. Writers append to the queue; the
	 * thread alone moves records into the batch and changes the batch,
	 * always under the lock, so it may read the batch without it. */
	es_list queue;
	es_list batch;         /* being sent, or waiting for its retry */
	uint64_t retry_at;     /* monotonic ms when the batch may go again */
	unsigned attempts;     /* failed attempts in a row, for the backoff */
	int flushers;          /* octo_log_flush() callers waiting */
	int stop;
	uint64_t stop_at;      /* monotonic ms when octo_log_free() asked */
	uint64_t shipped, dropped, retried;
	uint64_t rng;          /* xorshift state for the backoff jitter */
	unsigned char *verdicts; /* one per batch record, batch_max of them */
	int sync_ready;
	int running;
	pthread_t thread;
} es_sink;

struct octo_log {
	char *service;
	char *path;            /* NULL: stderr */
	octo_log_level level;
	int fd;
	int owns_fd;
	_Atomic uint64_t written;
	es_sink *es;           /* NULL: no Elasticsearch */
};

static const char *const level_names[] = { "debug", "info", "warn", "error" };

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void init_curl(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- levels ---------------------------------------------------------- */

/* ASCII only: strcasecmp follows the locale, where 'I' may not fold to 'i'. */
static int ascii_caseeq(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		int x = (unsigned char)a[i], y = (unsigned char)b[i];
		if (x >= 'A' && x <= 'Z')
			x += 'a' - 'A';
		if (y >= 'A' && y <= 'Z')
			y += 'a' - 'A';
		if (x != y)
			return 0;
		if (x == '\0')
			return 1;
	}
	return 1;
}

int octo_log_level_parse(const char *name, octo_log_level *out)
{
	int i;

	octo__error_clear();
	if (!name || !out)
		return octo__error(OCTO_EINVAL, "no log level name");
	for (i = OCTO_LOG_DEBUG; i <= OCTO_LOG_ERROR; i++) {
		if (ascii_caseeq(name, level_names[i], SIZE_MAX)) {
			*out = (octo_log_level)i;
			return 0;
		}
	}
	if (ascii_caseeq(name, "warning", SIZE_MAX)) {
		*out = OCTO_LOG_WARN;
		return 0;
	}
	return octo__error(OCTO_EINVAL, "unknown log level \"%.32s\"", name);
}

const char *octo_log_level_name(octo_log_level level)
{
	if ((int)level < OCTO_LOG_DEBUG || (int)level > OCTO_LOG_ERROR)
		return "unknown";
	return level_names[level];
}

int octo_log_enabled(const octo_log *log, octo_log_level level)
{
	return log && (int)level >= (int)log->level;
}

/* ---- options ----------------------------------------------------------- */

static int url_valid(const char *url)
{
	size_t skip = 0, i;

	if (ascii_caseeq(url, "http://", 7))
		skip = 7;
	else if (ascii_caseeq(url, "https://", 8))
		skip = 8;
	if (skip == 0 || url[skip] == '\0' || url[skip] == '/')
		return 0;
	for (i = 0; url[i]; i++)
		if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7f)
			return 0;
	return 1;
}

/* Elasticsearch refuses index names with these, and would then reject
 * every document: better to say so when the logger is made. */
static int index_prefix_valid(const char *p)
{
	size_t i;

	if (strlen(p) > PREFIX_MAX || (p[0] && strchr("-_+", p[0])))
		return 0;
	for (i = 0; p[i]; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c <= 0x20 || c >= 0x7f || (c >= 'A' && c <= 'Z') ||
		    strchr("\\/*?\"<>|,#:", c) != NULL)
			return 0;
	}
	return 1;
}

static int check_es_options(const octo_log_options *o)
{
	if (!url_valid(o->elasticsearch_url))
		return octo__error(OCTO_EINVAL, "elasticsearch_url must be an http:// or https:// URL");
	if (!o->index_prefix || !index_prefix_valid(o->index_prefix))
		return octo__error(OCTO_EINVAL, "index_prefix is not a valid index name start");
	if (o->es_buffer_max == 0 || o->es_batch_max == 0)
		return octo__error(OCTO_EINVAL, "es_buffer_max and es_batch_max must not be 0");
	/* To libcurl a zero timeout means none, and a zero backoff spins. */
	if (o->es_timeout_ms == 0 || o->es_retry_max_ms == 0)
		return octo__error(OCTO_EINVAL, "es_timeout_ms and es_retry_max_ms must not be 0");
	return 0;
}

static int check_options(const octo_log_options *o)
{
	if (!o)
		return octo__error(OCTO_EINVAL, "no log options");
	if (o->version != OCTO_LOG_OPTIONS_VERSION)
		return octo__error(OCTO_EINVAL, "log options version %u is not %u", o->version,
		                   OCTO_LOG_OPTIONS_VERSION);
	if (!o->service || !o->service[0])
		return octo__error(OCTO_EINVAL, "a log needs a service name");
	if ((int)o->level < OCTO_LOG_DEBUG || (int)o->level > OCTO_LOG_ERROR)
		return octo__error(OCTO_EINVAL, "log level %d is out of range", (int)o->level);
	return o->elasticsearch_url ? check_es_options(o) : 0;
}

/* ---- rendering ------------------------------------------------------- */

/* Keys of the line's own members, a NULL key, and a key seen earlier are
 * skipped: a repeated key makes an object that strict parsers (ours,
 * Elasticsearch's) refuse, so the first one wins. */
static int field_skipped(const octo_log_field *fields, size_t i)
{
	static const char *const reserved[] = { "timestamp", "level", "service", "message" };
	const char *key = fields[i].key;
	size_t j;

	if (!key)
		return 1;
	for (j = 0; j < sizeof(reserved) / sizeof(reserved[0]); j++)
		if (strcmp(key, reserved[j]) == 0)
			return 1;
	for (j = 0; j < i; j++)
		if (fields[j].key && strcmp(key, fields[j].key) == 0)
			return 1;
	return 0;
}

static void write_value(octo_json_writer *w, const octo_log_field *f)
{
	switch (f->type) {
	case OCTO_LOG_FIELD_STR:
		if (f->s)
			octo_json_write_string(w, f->s);
		else
			octo_json_write_null(w);
		break;
	case OCTO_LOG_FIELD_INT:
		octo_json_write_int(w, f->i);
		break;
	case OCTO_LOG_FIELD_DOUBLE:
		if (isfinite(f->d))
			octo_json_write_double(w, f->d);
		else
			octo_json_write_null(w); /* JSON has no NaN or infinity */
		break;
	case OCTO_LOG_FIELD_BOOL:
		octo_json_write_bool(w, f->i != 0);
		break;
	default:
		octo_json_write_null(w);
	}
}

typedef struct {
	char ts[OCTO__TIMESTAMP_LEN + 1];
	octo_log_level level;
	const char *message;
	const octo_log_field *fields;
	size_t count;
} record;

/* The line, with its "\n" in place of the terminating NUL. */
static char *render_line(octo_json_writer *w, const octo_log *log, const record *r,
                         size_t *len)
{
	char *text = NULL;
	size_t i;

	octo_json_write_object_begin(w);
	octo_json_write_key(w, "timestamp");
	octo_json_write_string(w, r->ts);
	octo_json_write_key(w, "level");
	octo_json_write_string(w, octo_log_level_name(r->level));
	octo_json_write_key(w, "service");
	octo_json_write_string(w, log->service);
	octo_json_write_key(w, "message");
	octo_json_write_string(w, r->message);
	for (i = 0; i < r->count; i++) {
		if (field_skipped(r->fields, i))
			continue;
		octo_json_write_key(w, r->fields[i].key);
		write_value(w, &r->fields[i]);
	}
	octo_json_write_object_end(w);
	if (octo_json_writer_finish(w, &text, len) < 0)
		return NULL;
	text[(*len)++] = '\n';
	return text;
}

/* Field keys with an Elastic Common Schema name. */
static const struct {
	const char *key;
	const char *ecs;
} ecs_names[] = {
	{ "request_id", "http.request.id" },
	{ "trace_id", "trace.id" },
	{ "span_id", "span.id" },
	{ "method", "http.request.method" },
	{ "status", "http.response.status_code" },
	{ "bytes", "http.response.body.bytes" },
	{ "path", "url.path" },
	{ "client", "client.address" },
	{ "error", "error.message" },
};

/* duration_ms as ECS's event.duration, in nanoseconds; 0 when the field
 * is no number that fits, and then it stays a label. */
static int duration_ns(const octo_log_field *f, int64_t *ns)
{
	const int64_t scale = 1000000;

	if (f->type == OCTO_LOG_FIELD_INT && f->i <= INT64_MAX / scale &&
	    f->i >= INT64_MIN / scale) {
		*ns = f->i * scale;
		return 1;
	}
	if (f->type == OCTO_LOG_FIELD_DOUBLE && f->d > -9.2e12 && f->d < 9.2e12) {
		double x = f->d * 1e6; /* rounded half away from zero */
		*ns = (int64_t)(x < 0 ? x - 0.5 : x + 0.5);
		return 1;
	}
	return 0;
}

/* Dotted names: Elasticsearch expands "http.request.id" into objects.
 * -1 when out of memory. */
static int write_ecs_field(octo_json_writer *w, const octo_log_field *f)
{
	char *label;
	int64_t ns;
	size_t i;

	if (strcmp(f->key, "duration_ms") == 0 && duration_ns(f, &ns)) {
		octo_json_write_key(w, "event.duration");
		octo_json_write_int(w, ns);
		return 0;
	}
	for (i = 0; i < sizeof(ecs_names) / sizeof(ecs_names[0]); i++) {
		if (strcmp(f->key, ecs_names[i].key) == 0) {
			octo_json_write_key(w, ecs_names[i].ecs);
			write_value(w, f);
			return 0;
		}
	}
	if (asprintf(&label, "labels.%s", f->key) < 0)
		return -1;
	octo_json_write_key(w, label);
	free(label);
	write_value(w, f);
	return 0;
}

static char *render_document(octo_json_writer *w, const octo_log *log, const record *r,
                             size_t *len)
{
	char *text = NULL;
	int failed = 0;
	size_t i;

	octo_json_write_object_begin(w);
	octo_json_write_key(w, "@timestamp");
	octo_json_write_string(w, r->ts);
	octo_json_write_key(w, "log.level");
	octo_json_write_string(w, octo_log_level_name(r->level));
	octo_json_write_key(w, "message");
	octo_json_write_string(w, r->message);
	octo_json_write_key(w, "service.name");
	octo_json_write_string(w, log->service);
	octo_json_write_key(w, "ecs.version");
	octo_json_write_string(w, "8.11.0");
	for (i = 0; i < r->count; i++)
		if (!field_skipped(r->fields, i) && write_ecs_field(w, &r->fields[i]) < 0)
			failed = 1;
	octo_json_write_object_end(w);
	/* finish also resets the writer for the next use. */
	if (octo_json_writer_finish(w, &text, len) < 0 || failed) {
		octo_free(text);
		return NULL;
	}
	return text;
}

/* The action line. "create", not "index": an index named logs-*-* becomes
 * a data stream under Elasticsearch 8's built-in template, and data
 * streams accept only create. */
static char *render_action(octo_json_writer *w, const es_sink *es, const record *r,
                           size_t *len)
{
	char index[PREFIX_MAX + 16], *text = NULL;
	size_t n = strlen(es->index_prefix);

	/* <prefix>YYYY.MM.DD, from the record's own UTC time. */
	memcpy(index, es->index_prefix, n);
	memcpy(index + n, r->ts, 10);
	index[n + 4] = index[n + 7] = '.';
	index[n + 10] = '\0';
	octo_json_write_object_begin(w);
	octo_json_write_key(w, "create");
	octo_json_write_object_begin(w);
	octo_json_write_key(w, "_index");
	octo_json_write_string(w, index);
	octo_json_write_object_end(w);
	octo_json_write_object_end(w);
	return octo_json_writer_finish(w, &text, len) < 0 ? NULL : text;
}

static es_record *render_record(octo_json_writer *w, const octo_log *log, const record *r)
{
	size_t alen = 0, dlen = 0;
	char *action = render_action(w, log->es, r, &alen);
	char *doc = action ? render_document(w, log, r, &dlen) : NULL;
	es_record *rec = doc ? malloc(sizeof(*rec) + alen + dlen + 2) : NULL;

	if (rec) {
		rec->next = NULL;
		rec->len = alen + dlen + 2;
		memcpy(rec->text, action, alen);
		rec->text[alen] = '\n';
		memcpy(rec->text + alen + 1, doc, dlen);
		rec->text[alen + 1 + dlen] = '\n';
	}
	octo_free(action);
	octo_free(doc);
	return rec;
}

/* ---- the queue ------------------------------------------------------- */

static void list_append(es_list *l, es_record *r)
{
	r->next = NULL;
	if (l->tail)
		l->tail->next = r;
	else
		l->head = r;
	l->tail = r;
	l->len++;
}

static es_record *list_pop(es_list *l)
{
	es_record *r = l->head;

	if (r) {
		l->head = r->next;
		if (!l->head)
			l->tail = NULL;
		l->len--;
	}
	return r;
}

/* Hands a record to the thread; NULL (it could not be rendered) and a
 * record that finds the buffer full are dropped. Never waits on the
 * network: the lock is only held by list operations. */
static void es_push(es_sink *es, es_record *r)
{
	pthread_mutex_lock(&es->mu);
	if (!r || es->stop || es->queue.len + es->batch.len >= es->buffer_max) {
		es->dropped++;
		pthread_mutex_unlock(&es->mu);
		free(r);
		return;
	}
	r->queued_ms = octo__monotonic_ms();
	list_append(&es->queue, r);
	/* The thread sleeps without a deadline on an empty queue, and until
	 * the first record's flush time otherwise. */
	if (es->queue.len == 1 || es->queue.len == es->batch_max)
		pthread_cond_signal(&es->wake);
	pthread_mutex_unlock(&es->mu);
}

/* ---- writing --------------------------------------------------------- */

/* The loop only finishes what a signal or a full disk cut short; normally
 * one write(2) takes the whole line, which O_APPEND keeps in one piece. */
static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void emit(octo_log *log, octo_json_writer *w, const record *r)
{
	size_t len = 0;
	char *line = render_line(w, log, r, &len);

	if (line && write_all(log->fd, line, len) == 0)
		atomic_fetch_add(&log->written, 1);
	octo_free(line);
	if (log->es)
		es_push(log->es, render_record(w, log, r));
}

void octo_log_write(octo_log *log, octo_log_level level, const char *message,
                    const octo_log_field *fields, size_t count)
{
	/* Logging is what callers do between a failure and reporting it, so
	 * it keeps errno and the thread's last error as it found them (the
	 * JSON writer would clear the latter). */
	int saved_errno = errno;
	char *saved_error = NULL;
	octo_json_writer *w = NULL;
	record r;

	if (!octo_log_enabled(log, level))
		return;
	if (octo_error_last()[0])
		saved_error = strdup(octo_error_last());
	octo__timestamp(r.ts);
	r.level = level;
	r.message = message;
	r.fields = fields;
	r.count = fields ? count : 0;
	if (octo_json_writer_new(&w) == 0)
		emit(log, w, &r);
	else if (log->es)
		es_push(log->es, NULL);
	octo_json_writer_free(w);
	octo__error_clear();
	if (saved_error)
		octo__error(0, "%s", saved_error);
	free(saved_error);
	errno = saved_errno;
}

/* ---- the file -------------------------------------------------------- */

static int open_file(octo_log *log, const char *path)
{
	if (!(log->path = octo__strdup(path)))
		return OCTO_ENOMEM;
	log->fd = open(path, OPEN_FLAGS, 0640);
	if (log->fd < 0) {
		log->fd = STDERR_FILENO;
		return octo__error(OCTO_EIO, "cannot open the log %s: %s", path, strerror(errno));
	}
	log->owns_fd = 1;
	return 0;
}

int octo_log_reopen(octo_log *log)
{
	int fd;

	octo__error_clear();
	if (!log || !log->path)
		return 0;
	fd = open(log->path, OPEN_FLAGS, 0640);
	if (fd < 0)
		return octo__error(OCTO_EIO, "cannot reopen the log %s: %s", log->path,
		                   strerror(errno));
	/* Put the new file under the old descriptor number in one step, so
	 * writers on other threads need no lock: each line goes whole to the
	 * old file or to the new one. dup3, unlike dup2, keeps O_CLOEXEC. */
	while (dup3(fd, log->fd, O_CLOEXEC) < 0) {
		int err = errno;
		if (err == EINTR || err == EBUSY)
			continue;
		close(fd);
		return octo__error(OCTO_EIO, "cannot reopen the log %s: %s", log->path,
		                   strerror(err));
	}
	close(fd);
	return 0;
}

/* ---- the Elasticsearch thread -------------------------------------------- */

typedef struct {
	char *data;
	size_t len, cap;
	int overflow;
} response;

static size_t collect(char *data, size_t size, size_t n, void *payload)
{
	response *r = payload;
	size_t add = size * n;

	if (r->overflow || r->len + add > RESPONSE_MAX) {
		r->overflow = 1;
		return add;
	}
	if (r->len + add + 1 > r->cap) {
		size_t cap = (r->len + add + 1) * 2;
		char *p = realloc(r->data, cap);
		if (!p) {
			r->overflow = 1;
			return add;
		}
		r->data = p;
		r->cap = cap;
	}
	memcpy(r->data + r->len, data, add);
	r->len += add;
	return add;
}

/* One handle for the thread's life, so the connection is kept alive. */
typedef struct {
	CURL *curl;
	struct curl_slist *headers;
} es_conn;

static void conn_open(es_conn *c, const es_sink *es)
{
	c->curl = NULL;
	c->headers = curl_slist_append(NULL, "Content-Type: application/x-ndjson");
	/* No "Expect: 100-continue" round trip before a large body. */
	if (!c->headers || !curl_slist_append(c->headers, "Expect:") ||
	    !(c->curl = curl_easy_init()))
		return;
	curl_easy_setopt(c->curl, CURLOPT_URL, es->bulk_url);
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->headers);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "octopus-log");
}

static void conn_close(es_conn *c)
{
	curl_easy_cleanup(c->curl);
	curl_slist_free_all(c->headers);
}

/* Returns the HTTP status, or 0 when no answer came (connection refused,
 * timeout, or nothing to send with). */
static long post_bulk(es_conn *c, const char *body, size_t len, uint32_t timeout_ms,
                      response *resp)
{
	long status = 0;

	if (!c->curl || !body)
		return 0;
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	if (curl_easy_perform(c->curl) != CURLE_OK)
		return 0;
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	return status;
}

static char *batch_body(const es_list *batch, size_t *len)
{
	const es_record *r;
	char *body;
	size_t n = 0;

	for (r = batch->head; r; r = r->next)
		n += r->len;
	if (!(body = malloc(n + 1)))
		return NULL;
	for (n = 0, r = batch->head; r; r = r->next) {
		memcpy(body + n, r->text, r->len);
		n += r->len;
	}
	body[n] = '\0';
	*len = n;
	return body;
}

static unsigned char item_verdict(const octo_json_value *item)
{
	int64_t status = 0;

	if (octo_json_int(octo_json_get(octo_json_get(item, "create"), "status"), &status) < 0)
		return DROP;
	if (status >= 200 && status <= 299)
		return SHIPPED;
	/* Elasticsearch is overloaded or failing: the item may pass later. */
	if (status == 429 || status >= 500)
		return RETRY;
	return DROP; /* a mapping error or the like, which will never succeed */
}

/* A 2xx answer, which says item by item what was taken. An answer that
 * cannot be read tells nothing was stored: the batch is dropped rather
 * than resent forever. */
static void judge_body(const response *resp, unsigned char *v, size_t n)
{
	const octo_json_value *root, *items;
	octo_json *doc = NULL;
	int errors = 1;
	size_t i;

	memset(v, DROP, n);
	if (resp->overflow || !resp->data || octo_json_parse(&doc, resp->data, resp->len) < 0)
		return;
	root = octo_json_root(doc);
	if (octo_json_bool(octo_json_get(root, "errors"), &errors) < 0)
		goto cleanup;
	if (!errors) {
		memset(v, SHIPPED, n);
		goto cleanup;
	}
	items = octo_json_get(root, "items");
	for (i = 0; i < n; i++)
		v[i] = item_verdict(octo_json_at(items, i));
cleanup:
	octo_json_free(doc);
}

/* Fills one verdict per record; returns 1 when the answer was about the
 * whole request rather than item by item. */
static int judge(long status, const response *resp, unsigned char *v, size_t n)
{
	if (status == 0 || status == 429 || status >= 500) {
		memset(v, RETRY, n);
		return 1;
	}
	if (status < 200 || status > 299) {
		memset(v, DROP, n);
		return 1;
	}
	judge_body(resp, v, n);
	return 0;
}

/* Under the lock: settles the batch by its verdicts. Records to retry
 * stay in the batch, in order (dropped instead when `final`). Returns how
 * many stay. */
static size_t settle(es_sink *es, int final)
{
	es_record **link = &es->batch.head, *r;
	size_t i = 0, kept = 0;

	es->batch.tail = NULL;
	while ((r = *link) != NULL) {
		unsigned char v = es->verdicts[i++];
		if (v == RETRY && !final) {
			kept++;
			es->batch.tail = r;
			link = &r->next;
			continue;
		}
		*link = r->next;
		if (v == SHIPPED)
			es->shipped++;
		else
			es->dropped++;
		free(r);
	}
	es->batch.len = kept;
	return kept;
}

/* Under the lock, which it lets go while the request runs: tops the batch
 * up from the queue, sends it once and settles it. Returns 1 when the
 * whole request failed, else 0; the records to retry stay in the batch. */
static int send_batch(es_sink *es, es_conn *c, uint32_t timeout_ms, int final)
{
	response resp = { NULL, 0, 0, 0 };
	size_t len = 0, n;
	char *body;
	int whole;

	while (es->batch.len < es->batch_max && es->queue.len > 0)
		list_append(&es->batch, list_pop(&es->queue));
	n = es->batch.len;
	pthread_mutex_unlock(&es->mu);
	body = batch_body(&es->batch, &len);
	whole = judge(post_bulk(c, body, len, timeout_ms, &resp), &resp, es->verdicts, n);
	free(body);
	free(resp.data);
	pthread_mutex_lock(&es->mu);
	settle(es, final);
	return whole;
}

static uint64_t next_random(es_sink *es)
{
	es->rng ^= es->rng << 13;
	es->rng ^= es->rng >> 7;
	es->rng ^= es->rng << 17;
	return es->rng;
}

/* Under the lock, after an attempt: exponential backoff from 100 ms up to
 * es_retry_max_ms, with jitter so many processes do not retry in step
 * after an outage. "retried" counts a whole request sent again as one,
 * and each item sent again as one. */
static void schedule_retry(es_sink *es, int whole)
{
	uint64_t delay = BACKOFF_FIRST_MS;
	unsigned i;

	if (es->batch.len == 0) {
		es->attempts = 0;
		return;
	}
	es->retried += whole ? 1 : es->batch.len;
	es->attempts++;
	for (i = 1; i < es->attempts && delay < es->retry_max_ms; i++)
		delay *= 2;
	if (delay > es->retry_max_ms)
		delay = es->retry_max_ms;
	delay = delay / 2 + next_random(es) % (delay / 2 + 1);
	es->retry_at = octo__monotonic_ms() + delay;
}

/* Under the lock: whether a request is due now; if not, `next` says when
 * to look again (NO_DEADLINE: when woken). */
static int batch_due(const es_sink *es, uint64_t now, uint64_t *next)
{
	*next = NO_DEADLINE;
	if (es->batch.len > 0) {
		*next = es->retry_at;
		return now >= es->retry_at;
	}
	if (es->queue.len == 0)
		return 0;
	if (es->queue.len >= es->batch_max || es->flushers > 0)
		return 1;
	*next = es->queue.head->queued_ms + es->flush_ms;
	return now >= *next;
}

static void wait_until(pthread_cond_t *cond, pthread_mutex_t *mu, uint64_t deadline_ms)
{
	struct timespec ts;

	if (deadline_ms == NO_DEADLINE) {
		pthread_cond_wait(cond, mu);
		return;
	}
	/* The conditions use the monotonic clock, as octo__monotonic_ms. */
	ts.tv_sec = (time_t)(deadline_ms / 1000);
	ts.tv_nsec = (long)(deadline_ms % 1000) * 1000000L;
	pthread_cond_timedwait(cond, mu, &ts);
}

/* Under the lock, at shutdown: one more attempt for every record still
 * waiting, all within es_timeout_ms of the request to stop (a request
 * under way then uses up part of it); what does not get through is
 * dropped. */
static void last_attempt(es_sink *es, es_conn *c)
{
	uint64_t deadline = es->stop_at + es->timeout_ms, now;
	es_record *r;

	while (es->batch.len + es->queue.len > 0 && (now = octo__monotonic_ms()) < deadline)
		send_batch(es, c, (uint32_t)(deadline - now), 1);
	while ((r = list_pop(&es->batch)) != NULL || (r = list_pop(&es->queue)) != NULL) {
		es->dropped++;
		free(r);
	}
}

static void *es_main(void *arg)
{
	es_sink *es = arg;
	es_conn c;
	uint64_t next;

	conn_open(&c, es);
	pthread_mutex_lock(&es->mu);
	while (!es->stop) {
		if (!batch_due(es, octo__monotonic_ms(), &next)) {
			/* Also the backoff: octo_log_free() cuts it short. */
			wait_until(&es->wake, &es->mu, next);
			continue;
		}
		schedule_retry(es, send_batch(es, &c, es->timeout_ms, 0));
		pthread_cond_broadcast(&es->idle);
	}
	last_attempt(es, &c);
	pthread_cond_broadcast(&es->idle);
	pthread_mutex_unlock(&es->mu);
	conn_close(&c);
	return NULL;
}

/* ---- the sink's life --------------------------------------------------- */

static void es_free(es_sink *es)
{
	es_record *r;

	if (!es)
		return;
	if (es->running) {
		pthread_mutex_lock(&es->mu);
		es->stop = 1;
		es->stop_at = octo__monotonic_ms();
		pthread_cond_signal(&es->wake);
		pthread_mutex_unlock(&es->mu);
		pthread_join(es->thread, NULL);
	}
	while ((r = list_pop(&es->batch)) != NULL || (r = list_pop(&es->queue)) != NULL)
		free(r);
	if (es->sync_ready) {
		pthread_mutex_destroy(&es->mu);
		pthread_cond_destroy(&es->wake);
		pthread_cond_destroy(&es->idle);
	}
	free(es->verdicts);
	free(es->bulk_url);
	free(es->index_prefix);
	free(es);
}

static void es_init_sync(es_sink *es)
{
	pthread_condattr_t attr;

	/* Deadlines are on the monotonic clock: wall-clock jumps must not
	 * stretch or cut a flush delay or a backoff. */
	pthread_mutex_init(&es->mu, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&es->wake, &attr);
	pthread_cond_init(&es->idle, &attr);
	pthread_condattr_destroy(&attr);
	es->sync_ready = 1;
}

static int es_copy_options(es_sink *es, const octo_log_options *o)
{
	size_t n = strlen(o->elasticsearch_url);

	/* A batch cannot be larger than what may wait. */
	es->batch_max = o->es_batch_max < o->es_buffer_max ? o->es_batch_max : o->es_buffer_max;
	es->buffer_max = o->es_buffer_max;
	es->flush_ms = o->es_flush_ms;
	es->timeout_ms = o->es_timeout_ms;
	es->retry_max_ms = o->es_retry_max_ms;
	while (n > 0 && o->elasticsearch_url[n - 1] == '/')
		n--;
	if (asprintf(&es->bulk_url, "%.*s/_bulk", (int)n, o->elasticsearch_url) < 0) {
		es->bulk_url = NULL;
		return octo__error(OCTO_ENOMEM, "out of memory");
	}
	if (!(es->index_prefix = octo__strdup(o->index_prefix)))
		return OCTO_ENOMEM;
	if (!(es->verdicts = malloc(es->batch_max)))
		return octo__error(OCTO_ENOMEM, "out of memory");
	return 0;
}

static int es_new(es_sink **out, const octo_log_options *o)
{
	es_sink *es = calloc(1, sizeof(*es));
	int rc;

	if (!es)
		return octo__error(OCTO_ENOMEM, "out of memory");
	if ((rc = es_copy_options(es, o)) < 0)
		goto fail;
	if (octo__random(&es->rng, sizeof(es->rng)) < 0 || es->rng == 0)
		es->rng = 0x9e3779b97f4a7c15u; /* jitter needs no strong randomness */
	es_init_sync(es);
	pthread_once(&curl_once, init_curl);
	if (pthread_create(&es->thread, NULL, es_main, es) != 0) {
		rc = octo__error(OCTO_ERROR, "cannot start the Elasticsearch thread");
		goto fail;
	}
	es->running = 1;
	*out = es;
	return 0;
fail:
	es_free(es);
	return rc;
}

/* ---- the logger ------------------------------------------------------ */

int octo_log_new(octo_log **out, const octo_log_options *opts)
{
	octo_log *log;
	int rc;

	octo__error_clear();
	if (!out)
		return octo__error(OCTO_EINVAL, "no output pointer");
	*out = NULL;
	if ((rc = check_options(opts)) < 0)
		return rc;
	if (!(log = calloc(1, sizeof(*log))))
		return octo__error(OCTO_ENOMEM, "out of memory");
	log->fd = STDERR_FILENO;
	log->level = opts->level;
	atomic_init(&log->written, 0);
	if (!(log->service = octo__strdup(opts->service))) {
		rc = OCTO_ENOMEM;
		goto fail;
	}
	if (opts->path && (rc = open_file(log, opts->path)) < 0)
		goto fail;
	if (opts->elasticsearch_url && (rc = es_new(&log->es, opts)) < 0)
		goto fail;
	*out = log;
	return 0;
fail:
	octo_log_free(log);
	return rc;
}

void octo_log_free(octo_log *log)
{
	if (!log)
		return;
	es_free(log->es);
	if (log->owns_fd)
		close(log->fd);
	free(log->service);
	free(log->path);
	free(log);
}

int octo_log_flush(octo_log *log, uint32_t timeout_ms)
{
	uint64_t deadline = octo__monotonic_ms() + timeout_ms;
	es_sink *es;
	int rc = 0;

	octo__error_clear();
	if (!log || !log->es)
		return 0;
	es = log->es;
	pthread_mutex_lock(&es->mu);
	es->flushers++; /* a partial batch need not wait for es_flush_ms */
	pthread_cond_signal(&es->wake);
	while (es->queue.len + es->batch.len > 0) {
		if (octo__monotonic_ms() >= deadline) {
			rc = octo__error(OCTO_EUNAVAILABLE, "%zu log records still wait for Elasticsearch",
			                 es->queue.len + es->batch.len);
			break;
		}
		wait_until(&es->idle, &es->mu, deadline);
	}
	es->flushers--;
	pthread_mutex_unlock(&es->mu);
	return rc;
}

void octo_log_get_stats(const octo_log *log, octo_log_stats *out)
{
	es_sink *es;

	if (!out)
		return;
	memset(out, 0, sizeof(*out));
	if (!log)
		return;
	out->written = atomic_load(&log->written);
	if (!(es = log->es))
		return;
	pthread_mutex_lock(&es->mu);
	out->shipped = es->shipped;
	out->dropped = es->dropped;
	out->retried = es->retried;
	out->buffered = es->queue.len + es->batch.len;
	pthread_mutex_unlock(&es->mu);
}
