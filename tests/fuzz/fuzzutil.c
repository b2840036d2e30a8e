/* Helpers of the fuzz targets: see fuzzutil.h. */
#include "config.h"
#include "fuzzutil.h"

#include <ftw.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Bounds on waiting: well under libFuzzer's -timeout=10. */
#define ANSWER_WAIT_MS 5000
#define JOB_WAIT_MS 3000
#define RETENTION_S 10

static const unsigned char url_secret[] = "fuzz-url-secret-0123456789abcdef";

void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "\n%s:%d: check failed: %s\n  ", file, line, cond);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ---- scratch space ---------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void fuzz_rmtree(const char *path)
{
	nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static char made_dirs[8][256];
static int made_count;

static void remove_dirs(void)
{
	while (made_count > 0)
		fuzz_rmtree(made_dirs[--made_count]);
}

void fuzz_tmpdir(char out[256])
{
	const char *tmp = getenv("TMPDIR");

	if (!tmp || !*tmp)
		tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(out, 256, "%s/octo-fuzz-XXXXXX", tmp);
	FUZZ_CHECK(mkdtemp(out) != NULL, "cannot make a directory under %s", tmp);
	if (made_count == 0)
		atexit(remove_dirs);
	if (made_count < 8)
		snprintf(made_dirs[made_count++], 256, "%s", out);
}

typedef struct {
	char (*keys)[OCTO_STORE_KEY_MAX + 1];
	size_t count;
} key_list;

static int collect_key(const char *key, const octo_object_info *info, void *payload)
{
	key_list *l = payload;

	(void)info;
	snprintf(l->keys[l->count++], OCTO_STORE_KEY_MAX + 1, "%s", key);
	return 0;
}

void fuzz_store_clear(octo_store *store, const char *prefix)
{
	key_list l;
	int more = 1;
	size_t i;

	l.keys = malloc(100 * sizeof(*l.keys));
	FUZZ_CHECK(l.keys != NULL, "out of memory");
	while (more) {
		l.count = 0;
		if (octo_store_list(store, prefix, NULL, 100, collect_key, &l, &more) < 0)
			break;
		for (i = 0; i < l.count; i++)
			octo_store_delete(store, l.keys[i]);
		if (l.count == 0)
			break;
	}
	free(l.keys);
}

int fuzz_processor(octo_task *task, void *payload)
{
	(void)payload;
	if (octo_task_file_id(task) >= FUZZ_FILE_READY_MAX)
		return OCTO_EIO;
	octo_task_progress(task, 0.5);
	return octo_store_put(octo_task_store(task), octo_task_key(task), "z", 1);
}

char *fuzz_strndup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	FUZZ_CHECK(s != NULL, "out of memory");
	if (size)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* ---- UTF-8 -------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at `s` (Unicode table 3-7),
 * or 0. */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, lo = s[0] == 0xe0 ? 0xa0 : 0x80, hi = s[0] == 0xed ? 0x9f : 0xbf;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, lo = s[0] == 0xf0 ? 0x90 : 0x80, hi = s[0] == 0xf4 ? 0x8f : 0xbf;
	else
		return 0;
	if (avail < n || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

size_t fuzz_utf8_repair(const char *in, size_t len, char *out)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t i = 0, o = 0, n;

	while (i < len) {
		if ((n = utf8_len(p + i, len - i)) == 0) {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		} else {
			memcpy(out + o, p + i, n);
			o += n;
			i += n;
		}
	}
	out[o] = '\0';
	return o;
}

/* ---- waiting for answers ----------------------------------------------- */

typedef struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	octo_response *resp;
	int calls;
} reply;

static void on_done(octo_response *resp, void *payload)
{
	reply *r = payload;

	pthread_mutex_lock(&r->lock);
	r->resp = resp;
	r->calls++;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

octo_response *fuzz_handle(octo_api *api, const octo_request *req)
{
	pthread_condattr_t attr;
	struct timespec deadline;
	octo_response *resp;
	reply r;
	int rc;

	memset(&r, 0, sizeof(r));
	pthread_mutex_init(&r.lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&r.cond, &attr);
	pthread_condattr_destroy(&attr);
	rc = octo_api_handle(api, req, on_done, &r);
	FUZZ_CHECK(rc == 0, "octo_api_handle: %s", octo_strerror(rc));
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += ANSWER_WAIT_MS / 1000;
	pthread_mutex_lock(&r.lock);
	while (r.calls == 0 && pthread_cond_timedwait(&r.cond, &r.lock, &deadline) == 0)
		;
	/* A late answer would write into this stack frame: stop here. */
	FUZZ_CHECK(r.calls == 1, "%s %s: done called %d times within %d ms", req->method,
	           req->path, r.calls, ANSWER_WAIT_MS);
	resp = r.resp;
	pthread_mutex_unlock(&r.lock);
	pthread_cond_destroy(&r.cond);
	pthread_mutex_destroy(&r.lock);
	FUZZ_CHECK(resp != NULL, "done was called without a response");
	return resp;
}

/* ---- checking responses ------------------------------------------------- */

int fuzz_has_ctl(const char *s)
{
	for (; *s; s++)
		if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
			return 1;
	return 0;
}

static int token(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr("!#$%&'*+-.^_`|~", *s)))
			return 0;
	return 1;
}

static void check_headers(const octo_response *resp)
{
	const char *name, *value, *id;
	octo_trace t;
	size_t i;

	for (i = 0; i < octo_response_header_count(resp); i++) {
		octo_response_header(resp, i, &name, &value);
		FUZZ_CHECK(name && token(name), "header %zu has a bad name", i);
		FUZZ_CHECK(value && !fuzz_has_ctl(value), "header %s has a control character: %s",
		           name, value);
	}
	id = octo_response_header_get(resp, "X-Request-ID");
	FUZZ_CHECK(id && strcmp(id, octo_response_request_id(resp)) == 0, "X-Request-ID %s",
	           id ? id : "missing");
	value = octo_response_header_get(resp, "traceparent");
	FUZZ_CHECK(value && octo_trace_start(&t, value) == 1, "traceparent %s does not parse",
	           value ? value : "missing");
}

static int has_prefix(const char *s, const char *prefix)
{
	return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

static const char *string_member(const octo_json_value *obj, const char *key)
{
	const char *s = NULL;

	return octo_json_string(octo_json_get(obj, key), &s) == 0 ? s : NULL;
}

/* {"error","message","requestId"} and nothing else. The fallback for an
 * allocation failure has "requestId":null. */
static void check_error_body(const octo_response *resp, const octo_json_value *root)
{
	const octo_json_value *rid = octo_json_get(root, "requestId");
	const char *error = string_member(root, "error");

	FUZZ_CHECK(octo_json_typeof(root) == OCTO_JSON_OBJECT && octo_json_size(root) == 3 &&
	           error && string_member(root, "message") && rid,
	           "error body of a %d is not {error,message,requestId}: %s",
	           octo_response_status(resp), octo_response_body(resp, NULL));
	if (octo_json_typeof(rid) == OCTO_JSON_NULL)
		FUZZ_CHECK(strcmp(error, "internal_error") == 0, "requestId null in a %s", error);
	else
		FUZZ_CHECK(string_member(root, "requestId") &&
		           strcmp(string_member(root, "requestId"),
		                  octo_response_request_id(resp)) == 0,
		           "requestId differs from X-Request-ID");
}

static void check_json_body(const octo_response *resp)
{
	octo_json *doc = NULL;
	size_t len;
	const char *body = octo_response_body(resp, &len);
	int rc = octo_json_parse(&doc, body, len);

	FUZZ_CHECK(rc == 0, "a %d with a JSON body that does not parse (%s): %.*s",
	           octo_response_status(resp), octo_error_last(), (int)len, body);
	/* An unhealthy /health is a 503 that is no error. */
	if (octo_response_status(resp) >= 400 &&
	    strcmp(octo_response_route(resp), "/health") != 0)
		check_error_body(resp, octo_json_root(doc));
	octo_json_free(doc);
}

/* "id: N\nevent: NAME\ndata: JSON\n\n", or "event: NAME\ndata: JSON\n\n",
 * or a heartbeat comment. */
static void check_event(const char *ev, size_t len)
{
	const char *p = ev, *data;
	octo_json *doc = NULL;
	size_t n;

	FUZZ_CHECK(len >= 2 && ev[len - 1] == '\n' && ev[len - 2] == '\n' &&
	           memchr(ev, '\n', len) != NULL, "event not ended by a blank line: %s", ev);
	if (strcmp(ev, ": heartbeat\n\n") == 0)
		return;
	if (has_prefix(p, "id: ")) {
		p += 4;
		n = strspn(p, "0123456789");
		FUZZ_CHECK(n > 0 && p[n] == '\n', "bad event id: %s", ev);
		p += n + 1;
	}
	FUZZ_CHECK(has_prefix(p, "event: "), "no event name: %s", ev);
	p += 7;
	n = strspn(p, "abcdefghijklmnopqrstuvwxyz");
	FUZZ_CHECK(n > 0 && has_prefix(p + n, "\ndata: "), "bad event name: %s", ev);
	data = p + n + 7;
	n = (size_t)(ev + len - 2 - data);
	FUZZ_CHECK(memchr(data, '\n', n) == NULL, "event data spans lines: %s", ev);
	FUZZ_CHECK(octo_json_parse(&doc, data, n) == 0, "event data is no JSON (%s): %s",
	           octo_error_last(), ev);
	octo_json_free(doc);
}

char *fuzz_read_event(octo_stream *s)
{
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap);
	long n;

	FUZZ_CHECK(buf != NULL, "out of memory");
	while ((n = octo_stream_read(s, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		buf[len] = '\0';
		if (len >= 2 && buf[len - 2] == '\n' && buf[len - 1] == '\n')
			break;
		if (cap - len < 2) {
			char *bigger = realloc(buf, cap *= 2);
			FUZZ_CHECK(bigger != NULL, "out of memory");
			buf = bigger;
		}
	}
	if (len == 0) {
		free(buf);
		return NULL;
	}
	check_event(buf, len);
	return buf;
}

static void check_file(octo_response *resp)
{
	uint64_t size;
	struct stat st;
	int fd;

	if (!octo_response_take_file(resp, &fd, &size))
		return;
	FUZZ_CHECK(fstat(fd, &st) == 0 && (uint64_t)st.st_size == size,
	           "file body of %llu bytes announced as %llu",
	           (unsigned long long)st.st_size, (unsigned long long)size);
	close(fd);
}

void fuzz_check_response(octo_response *resp)
{
	const char *type = octo_response_header_get(resp, "Content-Type");
	int status = octo_response_status(resp);
	octo_stream *stream;

	FUZZ_CHECK(status >= 100 && status <= 599, "status %d", status);
	check_headers(resp);
	if (octo_response_take_stream(resp, &stream)) {
		FUZZ_CHECK(has_prefix(type, "text/event-stream"), "a stream of type %s",
		           type ? type : "none");
		free(fuzz_read_event(stream));
		octo_stream_free(stream);
	} else if (has_prefix(type, "application/json")) {
		check_json_body(resp);
	} else {
		FUZZ_CHECK(status < 400, "a %d without a JSON body", status);
	}
	check_file(resp);
}

/* ---- the API world ------------------------------------------------------ */

/* Submits files 10000 and 10001 and waits until the job completed. */
static int make_job(fuzz_world *w, char *job_id)
{
	static const int64_t ids[] = { 10000, 10001 };
	uint64_t until = now_ms() + JOB_WAIT_MS;
	int done = 0;

	if (octo_engine_submit(w->engine, ids, 2, job_id) != 0)
		return -1;
	while (!done && now_ms() < until) {
		char *text = NULL;
		octo_json *doc = NULL;
		const char *status = NULL;
		if (octo_engine_snapshot(w->engine, job_id, &text) == 0 &&
		    octo_json_parse(&doc, text, strlen(text)) == 0 &&
		    octo_json_string(octo_json_get(octo_json_root(doc), "status"), &status) == 0)
			done = strcmp(status, "completed") == 0;
		octo_json_free(doc);
		octo_free(text);
		if (!done)
			sleep_ms(1);
	}
	return done ? 0 : -1;
}

/* A signed URL of downloads/10000.zip, split for a request. */
static void find_file_url(fuzz_world *w)
{
	static const octo_header host[] = { { "Host", "fuzz.example" } };
	octo_request req;
	octo_response *resp;
	octo_json *doc = NULL;
	const char *url = NULL, *q;
	char path[128];

	memset(&req, 0, sizeof(req));
	snprintf(path, sizeof(path), "/v1/download/status/%s", w->job_id);
	req.method = "GET";
	req.path = path;
	req.headers = host;
	req.header_count = 1;
	req.client = "127.0.0.1";
	resp = fuzz_handle(w->api, &req);
	FUZZ_CHECK(octo_json_parse(&doc, octo_response_body(resp, NULL),
	                           strlen(octo_response_body(resp, NULL))) == 0 &&
	           octo_json_string(octo_json_get(octo_json_at(octo_json_get(octo_json_root(doc),
	                                                                     "files"), 0),
	                                          "downloadUrl"), &url) == 0 &&
	           has_prefix(url, "http://fuzz.example/") && (q = strchr(url, '?')) != NULL,
	           "no download URL in %s", octo_response_body(resp, NULL));
	snprintf(w->file_path, sizeof(w->file_path), "%.*s",
	         (int)(q - url - strlen("http://fuzz.example")), url + strlen("http://fuzz.example"));
	snprintf(w->file_query, sizeof(w->file_query), "%s", q + 1);
	octo_json_free(doc);
	octo_response_free(resp);
}

static fuzz_world *live_world;

/* At exit, before libcrypto's own cleanup (registered earlier, so run
 * later) frees what the workers' record writes still use. */
static void stop_world(void)
{
	octo_api_shutdown(live_world->api);
	octo_engine_shutdown(live_world->engine, 0);
}

void fuzz_world_init(fuzz_world *w)
{
	octo_engine_options eo = OCTO_ENGINE_OPTIONS_INIT;
	octo_api_options ao = OCTO_API_OPTIONS_INIT;
	octo_log_options lo = OCTO_LOG_OPTIONS_INIT;
	char data[300];

	memset(w, 0, sizeof(*w));
	fuzz_tmpdir(w->dir);
	snprintf(data, sizeof(data), "%s/data", w->dir);
	lo.path = "/dev/null";
	lo.level = OCTO_LOG_DEBUG;
	FUZZ_CHECK(octo_store_open_local(&w->store, data) == 0 &&
	           octo_metrics_new(&w->metrics) == 0 &&
	           octo_store_set_metrics(w->store, w->metrics) == 0 &&
	           octo_log_new(&w->log, &lo) == 0, "setup: %s", octo_error_last());
	eo.workers = 2;
	eo.queue_max = 1000;
	eo.max_attempts = 2;
	eo.file_timeout_ms = 5000;
	eo.backoff_base_ms = 10;
	eo.backoff_cap_ms = 50;
	eo.retention_s = RETENTION_S;
	eo.client_max_active = 2;
	eo.metrics = w->metrics;
	eo.log = w->log;
	FUZZ_CHECK(octo_engine_new(&w->engine, w->store, fuzz_processor, NULL, &eo) == 0 &&
	           octo_engine_start(w->engine, NULL) == 0, "engine: %s", octo_error_last());
	ao.max_body_bytes = 2048;
	ao.rate_limit_max = 0;
	ao.download_delay_enabled = 0;
	ao.cors_origins = "https://a.example,https://b.example";
	ao.url_secret = url_secret;
	ao.url_secret_len = sizeof(url_secret) - 1;
	ao.engine = w->engine;
	ao.start_wait_ms = 1000;
	ao.trusted_proxies = "127.0.0.1,10.0.0.0/8,::1";
	ao.metrics = w->metrics;
	FUZZ_CHECK(octo_api_new(&w->api, w->store, &ao) == 0, "api: %s", octo_error_last());
	live_world = w;
	atexit(stop_world);
	FUZZ_CHECK(make_job(w, w->job_id) == 0, "the first job did not complete");
	w->job_ms = now_ms();
	find_file_url(w);
}

const char *fuzz_world_job(fuzz_world *w)
{
	char fresh[OCTO_JOB_ID_LEN + 1];

	/* Half the retention: the old job stays while a new one is made. */
	if (now_ms() - w->job_ms > RETENTION_S * 1000 / 2 && make_job(w, fresh) == 0) {
		memcpy(w->job_id, fresh, sizeof(fresh));
		w->job_ms = now_ms();
	}
	return w->job_id;
}
