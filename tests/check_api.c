/* The HTTP API without a server: octo_request structs go into
 * octo_api_handle() over a real local store in a temporary directory, and
 * the tests assert status codes, exact bodies, headers, validation, rate
 * limiting, CORS, the delayed legacy /v1/download/start, signed download
 * URLs and the files they lead to, the health cache and shutdown. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <octopus/octopus.h>

#include "../lib/internal.h"
#include "testutil.h"

/* How long a test waits for a delayed answer: generous, for valgrind. */
#define WAIT_MS 20000
#define DELAY_MIN_MS 50
#define DELAY_MAX_MS 80
#define TEST_LIMIT 1000000
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static char dir[256];        /* the test's temporary directory */
static char data_dir[300];   /* the store, below it */
static octo_store *store;
static octo_api *api;        /* default options, see test_options() */
static octo_api *custom;     /* one a test built with its own options */

/* ---- waiting for an answer -------------------------------------------- */

/* What the done callback saw; the test waits on `cond` for it. */
typedef struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	octo_response *resp;
	int calls;
	pthread_t thread;     /* the thread that called back */
	uint64_t done_ms;     /* when it called back */
} reply;

static void reply_init(reply *r)
{
	pthread_condattr_t attr;

	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cond, &attr);
	pthread_condattr_destroy(&attr);
}

static void reply_destroy(reply *r)
{
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
}

static void on_done(octo_response *resp, void *payload)
{
	reply *r = payload;

	pthread_mutex_lock(&r->lock);
	r->resp = resp;
	r->calls++;
	r->thread = pthread_self();
	r->done_ms = octo__monotonic_ms();
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

static int reply_calls(reply *r)
{
	int n;

	pthread_mutex_lock(&r->lock);
	n = r->calls;
	pthread_mutex_unlock(&r->lock);
	return n;
}

/* Waits (bounded) until there were more than `seen` calls; their count. */
static int reply_wait_past(reply *r, int seen)
{
	struct timespec deadline;
	int calls;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += WAIT_MS / 1000;
	pthread_mutex_lock(&r->lock);
	while (r->calls <= seen)
		if (pthread_cond_timedwait(&r->cond, &r->lock, &deadline) != 0)
			break;
	calls = r->calls;
	pthread_mutex_unlock(&r->lock);
	return calls;
}

/* Waits (bounded) for the callback and returns the response it got. */
static octo_response *reply_wait(reply *r)
{
	octo_response *resp;
	int calls = reply_wait_past(r, 0);

	pthread_mutex_lock(&r->lock);
	resp = r->resp;
	pthread_mutex_unlock(&r->lock);
	ck_assert_msg(calls == 1, "done was called %d times within %d ms", calls, WAIT_MS);
	ck_assert_ptr_nonnull(resp);
	return resp;
}

/* Handles one request and returns its response, waiting when it is late. */
static octo_response *run(octo_api *a, const octo_request *req)
{
	octo_response *resp;
	reply r;

	reply_init(&r);
	ck_assert_int_eq(octo_api_handle(a, req, on_done, &r), 0);
	resp = reply_wait(&r);
	reply_destroy(&r);
	return resp;
}

/* ---- building requests -------------------------------------------------- */

static const octo_header json_type[] = { { "Content-Type", "application/json" } };

static octo_request make_request(const char *method, const char *path,
                                 const octo_header *headers, size_t count,
                                 const char *body)
{
	octo_request req;

	memset(&req, 0, sizeof(req));
	req.method = method;
	req.path = path;
	req.headers = headers;
	req.header_count = count;
	req.body = body;
	req.body_len = body ? strlen(body) : 0;
	req.client = "127.0.0.1";
	return req;
}

static octo_response *call(octo_api *a, const char *method, const char *path)
{
	octo_request req = make_request(method, path, NULL, 0, NULL);

	return run(a, &req);
}

static octo_response *post_n(octo_api *a, const char *path, const char *body, size_t len)
{
	octo_request req = make_request("POST", path, json_type, 1, body);

	req.body_len = len;
	return run(a, &req);
}

static octo_response *post(octo_api *a, const char *path, const char *body)
{
	return post_n(a, path, body, strlen(body));
}

/* {"file_ids":[10000,10001,...]} with `n` ids; free() it. */
static char *file_ids_body(size_t n)
{
	char *body = malloc(32 + n * 7), *p = body;
	size_t i;

	ck_assert_ptr_nonnull(body);
	p += sprintf(p, "{\"file_ids\":[");
	for (i = 0; i < n; i++)
		p += sprintf(p, "%s%zu", i ? "," : "", 10000 + i);
	sprintf(p, "]}");
	return body;
}

/* ---- reading responses ---------------------------------------------------- */

static const char *header(const octo_response *resp, const char *name)
{
	return octo_response_header_get(resp, name);
}

static void assert_header(const octo_response *resp, const char *name, const char *value)
{
	const char *got = header(resp, name);

	ck_assert_msg(got != NULL, "no %s header", name);
	ck_assert_str_eq(got, value);
}

static void assert_body(const octo_response *resp, int status, const char *body)
{
	size_t len;

	ck_assert_int_eq(octo_response_status(resp), status);
	ck_assert_str_eq(octo_response_body(resp, &len), body);
	ck_assert_uint_eq(len, strlen(body));
	assert_header(resp, "Content-Type", "application/json; charset=utf-8");
}

static octo_json *body_json(const octo_response *resp)
{
	octo_json *doc = NULL;
	const char *body;
	size_t len;

	body = octo_response_body(resp, &len);
	ck_assert_msg(octo_json_parse(&doc, body, len) == 0, "body is not JSON: %s", body);
	ck_assert_int_eq(octo_json_typeof(octo_json_root(doc)), OCTO_JSON_OBJECT);
	return doc;
}




static void assert_null_member(const octo_json *doc, const char *key)
{
	ck_assert_int_eq(octo_json_typeof(member(doc, key)), OCTO_JSON_NULL);
}

static void assert_uuid4(const char *s)
{
	size_t i;

	ck_assert_msg(strlen(s) == 36, "\"%s\" is no UUID", s);
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			ck_assert_int_eq(s[i], '-');
		else
			ck_assert_msg(strchr("0123456789abcdef", s[i]) != NULL, "\"%s\" is no UUID", s);
	}
	ck_assert_int_eq(s[14], '4');
	ck_assert_ptr_nonnull(strchr("89ab", s[19]));
}

static void assert_digits(const char *name, const char *value)
{
	ck_assert_msg(value != NULL, "no %s header", name);
	ck_assert_msg(*value && strspn(value, "0123456789") == strlen(value),
	              "%s: \"%s\" is no number", name, value);
}

/* What every response carries, errors included. `limit` is the expected
 * RateLimit-Limit. */
static void assert_common_headers(const octo_response *resp, const char *limit)
{
	const char *id = header(resp, "X-Request-ID");

	ck_assert_msg(id != NULL, "no X-Request-ID header");
	ck_assert_str_eq(id, octo_response_request_id(resp));
	ck_assert_ptr_nonnull(header(resp, "traceparent"));
	ck_assert_uint_eq(strlen(header(resp, "traceparent")), OCTO_TRACEPARENT_LEN);
	ck_assert_int_eq(strncmp(header(resp, "traceparent") + 3, octo_response_trace_id(resp), 32), 0);
	assert_header(resp, "X-Content-Type-Options", "nosniff");
	assert_header(resp, "X-Frame-Options", "SAMEORIGIN");
	ck_assert_ptr_nonnull(header(resp, "Strict-Transport-Security"));
	ck_assert_int_eq(strncmp(header(resp, "Strict-Transport-Security"), "max-age=", 8), 0);
	assert_header(resp, "Referrer-Policy", "no-referrer");
	assert_header(resp, "RateLimit-Limit", limit);
	assert_digits("RateLimit-Remaining", header(resp, "RateLimit-Remaining"));
	assert_digits("RateLimit-Reset", header(resp, "RateLimit-Reset"));
}

/* An error body: exactly error, message and requestId; the message
 * mentions `names`; requestId is the X-Request-ID header. */
static void assert_error(const octo_response *resp, int status, const char *error,
                         const char *names)
{
	const char *message, *id = header(resp, "X-Request-ID");
	octo_json *doc;

	ck_assert_msg(octo_response_status(resp) == status, "status %d, not %d: %s",
	              octo_response_status(resp), status, octo_response_body(resp, NULL));
	doc = body_json(resp);
	ck_assert_uint_eq(octo_json_size(octo_json_root(doc)), 3);
	ck_assert_str_eq(str_member(doc, "error"), error);
	message = str_member(doc, "message");
	ck_assert_msg(strstr(message, names) != NULL, "message \"%s\" does not name %s",
	              message, names);
	ck_assert_ptr_nonnull(id);
	ck_assert_str_eq(str_member(doc, "requestId"), id);
	assert_header(resp, "Content-Type", "application/json; charset=utf-8");
	octo_json_free(doc);
}

/* ---- fixture --------------------------------------------------------------- */

static octo_api_options test_options(void)
{
	octo_api_options o = OCTO_API_OPTIONS_INIT;

	o.rate_limit_max = TEST_LIMIT;
	o.download_delay_enabled = 0;
	return o;
}

static void setup(void)
{
	octo_api_options o = test_options();

	tu_mkdtemp(dir);
	snprintf(data_dir, sizeof(data_dir), "%s/data", dir);
	store = NULL;
	api = custom = NULL;
	ck_assert_int_eq(octo_store_open_local(&store, data_dir), 0);
	ck_assert_int_eq(octo_api_new(&api, store, &o), 0);
}

static void teardown(void)
{
	octo_api_free(custom);
	octo_api_free(api);
	octo_store_free(store);
	tu_rmtree(dir);
	api = custom = NULL;
	store = NULL;
}

/* An API with other options; the teardown frees it. */
static octo_api *api_with(const octo_api_options *o)
{
	ck_assert_ptr_null(custom);
	ck_assert_int_eq(octo_api_new(&custom, store, o), 0);
	return custom;
}

static octo_api *delayed_api(uint32_t min_ms, uint32_t max_ms)
{
	octo_api_options o = test_options();

	o.download_delay_enabled = 1;
	o.download_delay_min_ms = min_ms;
	o.download_delay_max_ms = max_ms;
	return api_with(&o);
}

static void put_file(int file_id, size_t size)
{
	char key[64], *data = calloc(1, size + 1);

	ck_assert_ptr_nonnull(data);
	snprintf(key, sizeof(key), "downloads/%d.zip", file_id);
	ck_assert_int_eq(octo_store_put(store, key, data, size), 0);
	free(data);
}

/* ---- GET / and /health ----------------------------------------------------- */

START_TEST(root_answers_with_a_message)
{
	octo_response *resp = call(api, "GET", "/");
	octo_json *doc;

	ck_assert_int_eq(octo_response_status(resp), 200);
	assert_header(resp, "Content-Type", "application/json; charset=utf-8");
	doc = body_json(resp);
	ck_assert_uint_eq(octo_json_size(octo_json_root(doc)), 1);
	ck_assert_uint_gt(strlen(str_member(doc, "message")), 0);
	ck_assert_str_eq(octo_response_route(resp), "/");
	octo_json_free(doc);
	octo_response_free(resp);
}
END_TEST

START_TEST(health_reports_healthy_storage)
{
	octo_response *resp = call(api, "GET", "/health");

	assert_body(resp, 200, "{\"status\":\"healthy\",\"checks\":{\"storage\":\"ok\"}}");
	ck_assert_str_eq(octo_response_route(resp), "/health");
	octo_response_free(resp);
}
END_TEST

START_TEST(health_reports_unhealthy_after_the_store_is_removed)
{
	octo_response *resp;

	tu_rmtree(data_dir);
	resp = call(api, "GET", "/health");
	assert_body(resp, 503, "{\"status\":\"unhealthy\",\"checks\":{\"storage\":\"error\"}}");
	assert_common_headers(resp, "1000000");
	octo_response_free(resp);
}
END_TEST

START_TEST(head_health_answers_like_get)
{
	octo_response *resp = call(api, "HEAD", "/health");

	ck_assert_int_eq(octo_response_status(resp), 200);
	ck_assert_str_eq(octo_response_route(resp), "/health");
	assert_header(resp, "Content-Type", "application/json; charset=utf-8");
	assert_common_headers(resp, "1000000");
	octo_response_free(resp);
}
END_TEST

START_TEST(query_string_does_not_change_the_route)
{
	octo_request req = make_request("GET", "/health", NULL, 0, NULL);
	octo_response *resp;

	req.query = "verbose=1&x=%00";
	resp = run(api, &req);
	assert_body(resp, 200, "{\"status\":\"healthy\",\"checks\":{\"storage\":\"ok\"}}");
	octo_response_free(resp);
}
END_TEST

/* ---- POST /v1/download/check -------------------------------------------- */

START_TEST(check_reports_a_missing_file)
{
	octo_response *resp = post(api, "/v1/download/check", "{\"file_id\":70000}");

	assert_body(resp, 200,
	            "{\"file_id\":70000,\"available\":false,\"s3Key\":null,\"size\":null}");
	ck_assert_str_eq(octo_response_route(resp), "/v1/download/check");
	octo_response_free(resp);
}
END_TEST

START_TEST(check_reports_a_stored_file_with_its_size)
{
	octo_response *resp;

	put_file(70000, 1234);
	resp = post(api, "/v1/download/check", "{\"file_id\":70000}");
	assert_body(resp, 200, "{\"file_id\":70000,\"available\":true,"
	                       "\"s3Key\":\"downloads/70000.zip\",\"size\":1234}");
	octo_response_free(resp);
}
END_TEST

START_TEST(check_reports_an_empty_file_as_available)
{
	octo_response *resp;

	put_file(70001, 0);
	resp = post(api, "/v1/download/check", "{\"file_id\":70001}");
	assert_body(resp, 200, "{\"file_id\":70001,\"available\":true,"
	                       "\"s3Key\":\"downloads/70001.zip\",\"size\":0}");
	octo_response_free(resp);
}
END_TEST

START_TEST(check_accepts_the_smallest_and_largest_file_id)
{
	static const char *bodies[] = { "{\"file_id\":10000}", "{\"file_id\":100000000}" };
	static const int64_t ids[] = { 10000, 100000000 };
	size_t i;

	for (i = 0; i < COUNT(bodies); i++) {
		octo_response *resp = post(api, "/v1/download/check", bodies[i]);
		octo_json *doc = body_json(resp);
		ck_assert_int_eq(octo_response_status(resp), 200);
		ck_assert_int_eq(int_member(doc, "file_id"), ids[i]);
		octo_json_free(doc);
		octo_response_free(resp);
	}
}
END_TEST

/* ---- POST /v1/download/initiate ------------------------------------------- */

static octo_json *read_job_record(const char *job_id)
{
	char key[128], *text = NULL;
	octo_json *record = NULL;
	size_t len = 0;

	snprintf(key, sizeof(key), "jobs/%s.json", job_id);
	ck_assert_msg(octo_store_get(store, key, &text, &len) == 0, "no record %s", key);
	ck_assert_int_eq(octo_json_parse(&record, text, len), 0);
	octo_free(text);
	return record;
}

static size_t count_job_records(void)
{
	char path[400];
	struct dirent *e;
	size_t n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/jobs", data_dir);
	if (!(d = opendir(path)))
		return 0;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

START_TEST(initiate_queues_a_job)
{
	octo_response *resp = post(api, "/v1/download/initiate",
	                           "{\"file_ids\":[70000,10000,100000000]}");
	octo_json *doc;

	ck_assert_int_eq(octo_response_status(resp), 202);
	ck_assert_str_eq(octo_response_route(resp), "/v1/download/initiate");
	doc = body_json(resp);
	ck_assert_uint_eq(octo_json_size(octo_json_root(doc)), 3);
	assert_uuid4(str_member(doc, "jobId"));
	ck_assert_str_eq(str_member(doc, "status"), "queued");
	ck_assert_int_eq(int_member(doc, "totalFileIds"), 3);
	octo_json_free(doc);
	octo_response_free(resp);
}
END_TEST

START_TEST(initiate_stores_the_job_record_first)
{
	static const int64_t ids[] = { 70000, 10000, 100000000 };
	octo_response *resp = post(api, "/v1/download/initiate",
	                           "{\"file_ids\":[70000,10000,100000000]}");
	const octo_json_value *file_ids;
	octo_json *doc = body_json(resp), *record;
	int64_t id;
	size_t i;

	record = read_job_record(str_member(doc, "jobId"));
	ck_assert_int_eq(int_member(record, "version"), 1);
	ck_assert_str_eq(str_member(record, "jobId"), str_member(doc, "jobId"));
	ck_assert_str_eq(str_member(record, "status"), "queued");
	ck_assert_str_eq(str_member(record, "requestId"), octo_response_request_id(resp));
	ck_assert_uint_eq(strlen(str_member(record, "createdAt")), 24);
	file_ids = member(record, "fileIds");
	ck_assert_int_eq(octo_json_typeof(file_ids), OCTO_JSON_ARRAY);
	ck_assert_uint_eq(octo_json_size(file_ids), COUNT(ids));
	for (i = 0; i < COUNT(ids); i++) {
		ck_assert_int_eq(octo_json_int(octo_json_at(file_ids, i), &id), 0);
		ck_assert_int_eq(id, ids[i]);
	}
	octo_json_free(record);
	octo_json_free(doc);
	octo_response_free(resp);
}
END_TEST

START_TEST(initiate_gives_every_job_its_own_id)
{
	octo_response *a = post(api, "/v1/download/initiate", "{\"file_ids\":[70000]}");
	octo_response *b = post(api, "/v1/download/initiate", "{\"file_ids\":[70000]}");
	octo_json *da = body_json(a), *db = body_json(b);

	ck_assert_str_ne(str_member(da, "jobId"), str_member(db, "jobId"));
	ck_assert_uint_eq(count_job_records(), 2);
	octo_json_free(da);
	octo_json_free(db);
	octo_response_free(a);
	octo_response_free(b);
}
END_TEST

START_TEST(initiate_accepts_a_thousand_file_ids)
{
	char *body = file_ids_body(1000);
	octo_response *resp = post(api, "/v1/download/initiate", body);
	const octo_json_value *file_ids;
	octo_json *doc, *record;
	int64_t id;

	ck_assert_int_eq(octo_response_status(resp), 202);
	doc = body_json(resp);
	ck_assert_int_eq(int_member(doc, "totalFileIds"), 1000);
	record = read_job_record(str_member(doc, "jobId"));
	file_ids = member(record, "fileIds");
	ck_assert_uint_eq(octo_json_size(file_ids), 1000);
	ck_assert_int_eq(octo_json_int(octo_json_at(file_ids, 999), &id), 0);
	ck_assert_int_eq(id, 10999);
	octo_json_free(record);
	octo_json_free(doc);
	octo_response_free(resp);
	free(body);
}
END_TEST

START_TEST(initiate_refuses_a_thousand_and_one_file_ids)
{
	char *body = file_ids_body(1001);
	octo_response *resp = post(api, "/v1/download/initiate", body);

	assert_error(resp, 400, "validation_error", "file_ids");
	ck_assert_uint_eq(count_job_records(), 0);
	octo_response_free(resp);
	free(body);
}
END_TEST

START_TEST(initiate_answers_503_when_storage_is_gone)
{
	octo_response *resp;

	tu_rmtree(data_dir);
	resp = post(api, "/v1/download/initiate", "{\"file_ids\":[70000]}");
	assert_error(resp, 503, "storage_unavailable", "Storage");
	assert_common_headers(resp, "1000000");
	octo_response_free(resp);
}
END_TEST

/* ---- POST /v1/download/start, delay disabled ------------------------------ */

START_TEST(start_completes_a_stored_file_at_once)
{
	octo_request req = make_request("POST", "/v1/download/start", json_type, 1,
	                                "{\"file_id\":70000}");
	octo_json *doc;
	reply r;

	put_file(70000, 2048);
	reply_init(&r);
	ck_assert_int_eq(octo_api_handle(api, &req, on_done, &r), 0);
	ck_assert_int_eq(reply_calls(&r), 1);
	ck_assert(pthread_equal(r.thread, pthread_self()));
	ck_assert_int_eq(octo_response_status(r.resp), 200);
	doc = body_json(r.resp);
	ck_assert_uint_eq(octo_json_size(octo_json_root(doc)), 6);
	ck_assert_int_eq(int_member(doc, "file_id"), 70000);
	ck_assert_str_eq(str_member(doc, "status"), "completed");
	assert_null_member(doc, "downloadUrl");
	ck_assert_int_eq(int_member(doc, "size"), 2048);
	ck_assert_int_ge(int_member(doc, "processingTimeMs"), 0);
	ck_assert_str_eq(str_member(doc, "message"),
	                 "File is ready in storage; no download URL can be made");
	octo_json_free(doc);
	octo_response_free(r.resp);
	reply_destroy(&r);
}
END_TEST

START_TEST(start_fails_a_missing_file)
{
	octo_response *resp = post(api, "/v1/download/start", "{\"file_id\":70002}");
	octo_json *doc = body_json(resp);

	ck_assert_int_eq(octo_response_status(resp), 200);
	ck_assert_int_eq(int_member(doc, "file_id"), 70002);
	ck_assert_str_eq(str_member(doc, "status"), "failed");
	assert_null_member(doc, "downloadUrl");
	assert_null_member(doc, "size");
	ck_assert_str_eq(str_member(doc, "message"), "File not found in storage");
	ck_assert_str_eq(octo_response_route(resp), "/v1/download/start");
	octo_json_free(doc);
	octo_response_free(resp);
}
END_TEST

/* ---- POST /v1/download/start, delay enabled ------------------------------ */

START_TEST(start_waits_at_least_the_minimum_delay)
{
	octo_request req = make_request("POST", "/v1/download/start", json_type, 1,
	                                "{\"file_id\":70000}");
	octo_api *a = delayed_api(DELAY_MIN_MS, DELAY_MAX_MS);
	octo_response *resp;
	uint64_t t0;
	octo_json *doc;
	reply r;

	put_file(70000, 99);
	reply_init(&r);
	t0 = octo__monotonic_ms();
	ck_assert_int_eq(octo_api_handle(a, &req, on_done, &r), 0);
	resp = reply_wait(&r);
	ck_assert_uint_ge(r.done_ms - t0, DELAY_MIN_MS);
	ck_assert_int_eq(octo_response_status(resp), 200);
	doc = body_json(resp);
	ck_assert_str_eq(str_member(doc, "status"), "completed");
	ck_assert_int_eq(int_member(doc, "size"), 99);
	ck_assert_int_ge(int_member(doc, "processingTimeMs"), DELAY_MIN_MS);
	ck_assert_int_lt(int_member(doc, "processingTimeMs"), DELAY_MAX_MS + WAIT_MS);
	assert_common_headers(resp, "1000000");
	octo_json_free(doc);
	octo_response_free(resp);
	reply_destroy(&r);
}
END_TEST

START_TEST(start_returns_before_the_answer_is_ready)
{
	octo_request req = make_request("POST", "/v1/download/start", json_type, 1,
	                                "{\"file_id\":70000}");
	octo_api *a = delayed_api(DELAY_MIN_MS, DELAY_MAX_MS);
	uint64_t t0, returned;
	int early;
	reply r;

	reply_init(&r);
	t0 = octo__monotonic_ms();
	ck_assert_int_eq(octo_api_handle(a, &req, on_done, &r), 0);
	early = reply_calls(&r);
	returned = octo__monotonic_ms();
	/* The answer may only exist already if this thread was held up for
	 * longer than the delay. */
	ck_assert_msg(!early || returned - t0 >= DELAY_MIN_MS,
	              "answered %d ms after the call", (int)(returned - t0));
	octo_response_free(reply_wait(&r));
	ck_assert(!pthread_equal(r.thread, pthread_self()));
	reply_destroy(&r);
}
END_TEST

START_TEST(start_refuses_bad_input_without_waiting)
{
	octo_request req = make_request("POST", "/v1/download/start", json_type, 1,
	                                "{\"file_id\":1}");
	octo_api *a = delayed_api(DELAY_MIN_MS, DELAY_MAX_MS);
	reply r;

	reply_init(&r);
	ck_assert_int_eq(octo_api_handle(a, &req, on_done, &r), 0);
	ck_assert_int_eq(reply_calls(&r), 1);
	ck_assert(pthread_equal(r.thread, pthread_self()));
	assert_error(r.resp, 400, "validation_error", "file_id");
	octo_response_free(r.resp);
	reply_destroy(&r);
}
END_TEST

START_TEST(waiting_starts_each_get_their_own_answer)
{
	static const char *bodies[] = {
		"{\"file_id\":70000}", "{\"file_id\":70001}", "{\"file_id\":70002}",
		"{\"file_id\":70003}", "{\"file_id\":70004}"
	};
	octo_api *a = delayed_api(DELAY_MIN_MS, DELAY_MAX_MS);
	reply r[COUNT(bodies)];
	size_t i;

	put_file(70001, 11);
	put_file(70003, 33);
	for (i = 0; i < COUNT(bodies); i++) {
		octo_request req = make_request("POST", "/v1/download/start", json_type, 1,
		                                bodies[i]);
		reply_init(&r[i]);
		ck_assert_int_eq(octo_api_handle(a, &req, on_done, &r[i]), 0);
	}
	for (i = 0; i < COUNT(bodies); i++) {
		octo_response *resp = reply_wait(&r[i]);
		octo_json *doc = body_json(resp);
		ck_assert_int_eq(int_member(doc, "file_id"), 70000 + (int64_t)i);
		ck_assert_str_eq(str_member(doc, "status"), i % 2 ? "completed" : "failed");
		if (i % 2)
			ck_assert_int_eq(int_member(doc, "size"), 11 * (int64_t)i);
		octo_json_free(doc);
		octo_response_free(resp);
		reply_destroy(&r[i]);
	}
}
END_TEST

/* ---- shutdown --------------------------------------------------------------- */

static void start_waiting(octo_api *a, reply *r)
{
	octo_request req = make_request("POST", "/v1/download/start", json_type, 1,
	                                "{\"file_id\":70000}");

	reply_init(r);
	ck_assert_int_eq(octo_api_handle(a, &req, on_done, r), 0);
}

START_TEST(shutdown_answers_a_waiting_start_with_503)
{
	octo_api *a = delayed_api(60000, 60000);
	reply r;

	start_waiting(a, &r);
	ck_assert_int_eq(reply_calls(&r), 0);
	octo_api_shutdown(a);
	/* Shutdown answers before it returns, not some time later. */
	ck_assert_int_eq(reply_calls(&r), 1);
	assert_error(r.resp, 503, "shutting_down", "shutting down");
	assert_common_headers(r.resp, "1000000");
	octo_response_free(r.resp);
	reply_destroy(&r);
}
END_TEST

START_TEST(shutdown_answers_every_waiting_start)
{
	octo_api *a = delayed_api(60000, 60000);
	reply r[3];
	size_t i;

	for (i = 0; i < COUNT(r); i++)
		start_waiting(a, &r[i]);
	octo_api_shutdown(a);
	for (i = 0; i < COUNT(r); i++) {
		ck_assert_int_eq(reply_calls(&r[i]), 1);
		assert_error(r[i].resp, 503, "shutting_down", "shutting down");
		octo_response_free(r[i].resp);
		reply_destroy(&r[i]);
	}
}
END_TEST

START_TEST(start_after_shutdown_gets_503_at_once)
{
	octo_api *a = delayed_api(60000, 60000);
	reply r;

	octo_api_shutdown(a);
	start_waiting(a, &r);
	ck_assert_int_eq(reply_calls(&r), 1);
	ck_assert(pthread_equal(r.thread, pthread_self()));
	assert_error(r.resp, 503, "shutting_down", "shutting down");
	octo_response_free(r.resp);
	reply_destroy(&r);
}
END_TEST

static int slow_processor(octo_task *task, void *payload)
{
	(void)payload;
	octo_task_sleep(task, 60000);
	return OCTO_EABORTED;
}

/* With an engine the legacy start waits on the timer thread; once the
 * API is shut down that thread is gone, so the answer comes at once. */
START_TEST(start_through_an_engine_after_shutdown_is_answered_at_once)
{
	octo_engine_options eo = OCTO_ENGINE_OPTIONS_INIT;
	octo_api_options o = test_options();
	octo_engine *engine;
	char location[128];
	const char *value;
	octo_api *a;
	reply r;

	eo.workers = 1;
	ck_assert_int_eq(octo_engine_new(&engine, store, slow_processor, NULL, &eo), 0);
	ck_assert_int_eq(octo_engine_start(engine, NULL), 0);
	o.engine = engine;
	o.start_wait_ms = 60000;
	a = api_with(&o);
	octo_api_shutdown(a);
	start_waiting(a, &r);
	ck_assert_int_eq(reply_calls(&r), 1);
	ck_assert(pthread_equal(r.thread, pthread_self()));
	ck_assert_int_eq(octo_response_status(r.resp), 202);
	ck_assert_ptr_nonnull(value = octo_response_header_get(r.resp, "Location"));
	snprintf(location, sizeof(location), "%s", value);
	ck_assert_int_eq(strncmp(location, "/v1/download/status/", 20), 0);
	octo_response_free(r.resp);
	reply_destroy(&r);
	octo_api_free(custom);
	custom = NULL;
	octo_engine_shutdown(engine, 0);
	octo_engine_free(engine);
}
END_TEST

/* An initiate is answered once its job is written, maybe on the store's
 * thread; shutdown returns only after each such answer, and later ones
 * are refused at once. */
START_TEST(shutdown_answers_every_initiate_being_written_first)
{
	enum { N = 40 };
	octo_engine_options eo = OCTO_ENGINE_OPTIONS_INIT;
	octo_api_options o = test_options();
	octo_request req = make_request("POST", "/v1/download/initiate", json_type, 1,
	                                "{\"file_ids\":[70000,70001]}");
	octo_engine *engine;
	reply r[N], late;
	octo_api *a;
	size_t i;

	eo.workers = 1;
	ck_assert_int_eq(octo_engine_new(&engine, store, slow_processor, NULL, &eo), 0);
	o.engine = engine; /* never started: its jobs stay queued */
	a = api_with(&o);
	for (i = 0; i < N; i++) {
		reply_init(&r[i]);
		ck_assert_int_eq(octo_api_handle(a, &req, on_done, &r[i]), 0);
	}
	octo_api_shutdown(a);
	for (i = 0; i < N; i++) {
		ck_assert_int_eq(reply_calls(&r[i]), 1);
		ck_assert_int_eq(octo_response_status(r[i].resp), 202);
		octo_response_free(r[i].resp);
		reply_destroy(&r[i]);
	}
	reply_init(&late);
	ck_assert_int_eq(octo_api_handle(a, &req, on_done, &late), 0);
	ck_assert_int_eq(reply_calls(&late), 1);
	ck_assert(pthread_equal(late.thread, pthread_self()));
	assert_error(late.resp, 503, "shutting_down", "shutting down");
	ck_assert_ptr_nonnull(octo_response_header_get(late.resp, "Retry-After"));
	octo_response_free(late.resp);
	reply_destroy(&late);
	octo_api_free(custom);
	custom = NULL;
	octo_engine_free(engine);
}
END_TEST

START_TEST(shutdown_twice_is_harmless)
{
	octo_api *a = delayed_api(60000, 60000);
	reply r;

	octo_api_shutdown(a);
	octo_api_shutdown(a);
	octo_api_shutdown(NULL);
	start_waiting(a, &r);
	ck_assert_int_eq(reply_calls(&r), 1);
	ck_assert_int_eq(octo_response_status(r.resp), 503);
	octo_response_free(r.resp);
	reply_destroy(&r);
}
END_TEST

START_TEST(requests_that_do_not_wait_are_served_after_shutdown)
{
	octo_api *a = delayed_api(60000, 60000);
	octo_response *resp;

	octo_api_shutdown(a);
	resp = call(a, "GET", "/health");
	ck_assert_int_eq(octo_response_status(resp), 200);
	octo_response_free(resp);
	resp = post(a, "/v1/download/check", "{\"file_id\":70000}");
	ck_assert_int_eq(octo_response_status(resp), 200);
	octo_response_free(resp);
}
END_TEST

START_TEST(free_answers_a_waiting_start)
{
	octo_api *a = delayed_api(60000, 60000);
	reply r;

	start_waiting(a, &r);
	custom = NULL;
	octo_api_free(a);
	ck_assert_int_eq(reply_calls(&r), 1);
	assert_error(r.resp, 503, "shutting_down", "shutting down");
	octo_response_free(r.resp);
	reply_destroy(&r);
}
END_TEST

/* ---- validation ---------------------------------------------------------------- */

typedef struct {
	const char *body;
	size_t len;          /* 0: strlen(body) */
	const char *error;
	const char *names;   /* what the message must mention */
} bad_body;

/* Bodies refused by both routes that take a file_id. */
static const bad_body bad_file_id[] = {
	{ "{}", 0, "validation_error", "file_id" },
	{ "{\"fileId\":70000}", 0, "validation_error", "file_id" },
	{ "{\"file_id\":\"70000\"}", 0, "validation_error", "file_id" },
	{ "{\"file_id\":70000.5}", 0, "validation_error", "file_id" },
	{ "{\"file_id\":70000.0}", 0, "validation_error", "file_id" },
	{ "{\"file_id\":1e5}", 0, "validation_error", "file_id" },
	{ "{\"file_id\":-1}", 0, "validation_error", "file_id" },
	{ "{\"file_id\":0}", 0, "validation_error", "file_id" },
	{ "{\"file_id\":9999}", 0, "validation_error", "file_id" },
	{ "{\"file_id\":100000001}", 0, "validation_error", "file_id" },
	{ "{\"file_id\":99999999999999999999}", 0, "validation_error", "file_id" },
	{ "{\"file_id\":-99999999999999999999}", 0, "validation_error", "file_id" },
	{ "{\"file_id\":null}", 0, "validation_error", "file_id" },
	{ "{\"file_id\":true}", 0, "validation_error", "file_id" },
	{ "{\"file_id\":[70000]}", 0, "validation_error", "file_id" },
	{ "{\"file_id\":{\"id\":70000}}", 0, "validation_error", "file_id" },
	{ "[]", 0, "validation_error", "object" },
	{ "[{\"file_id\":70000}]", 0, "validation_error", "object" },
	{ "42", 0, "validation_error", "object" },
	{ "\"file_id\"", 0, "validation_error", "object" },
	{ "null", 0, "validation_error", "object" },
	{ "", 0, "invalid_json", "JSON" },
	{ "   ", 0, "invalid_json", "JSON" },
	{ "{", 0, "invalid_json", "JSON" },
	{ "{\"file_id\":70000,}", 0, "invalid_json", "JSON" },
	{ "{'file_id':70000}", 0, "invalid_json", "JSON" },
	{ "{\"file_id\":70000,\"file_id\":70001}", 0, "invalid_json", "duplicate" },
	{ "{\"file_id\":70000} {}", 0, "invalid_json", "JSON" },
	{ "{\"file_id\":70000 /* c */}", 0, "invalid_json", "JSON" },
	{ "{\"file_id\":70000,\"x\":\"\xc3\x28\"}", 0, "invalid_json", "JSON" },
	{ "{\"file_id\":70000,\"x\":\"\xff\"}", 0, "invalid_json", "JSON" },
	{ "{\"file_id\":70000}\0", 18, "invalid_json", "NUL" },
};

START_TEST(bad_file_id_bodies_get_400)
{
	static const char *paths[] = { "/v1/download/check", "/v1/download/start" };
	const bad_body *b = &bad_file_id[_i];
	size_t i, len = b->len ? b->len : strlen(b->body);

	for (i = 0; i < COUNT(paths); i++) {
		octo_response *resp = post_n(api, paths[i], b->body, len);
		ck_assert_msg(octo_response_status(resp) == 400, "%s %s: %d", paths[i],
		              b->body, octo_response_status(resp));
		assert_error(resp, 400, b->error, b->names);
		octo_response_free(resp);
	}
}
END_TEST

static const bad_body bad_file_ids[] = {
	{ "{}", 0, "validation_error", "file_ids" },
	{ "{\"file_id\":70000}", 0, "validation_error", "file_ids" },
	{ "{\"file_ids\":70000}", 0, "validation_error", "file_ids" },
	{ "{\"file_ids\":\"70000\"}", 0, "validation_error", "file_ids" },
	{ "{\"file_ids\":null}", 0, "validation_error", "file_ids" },
	{ "{\"file_ids\":{\"0\":70000}}", 0, "validation_error", "file_ids" },
	{ "{\"file_ids\":[]}", 0, "validation_error", "file_ids" },
	{ "{\"file_ids\":[\"70000\"]}", 0, "validation_error", "file_ids[0]" },
	{ "{\"file_ids\":[70000,70001,9999]}", 0, "validation_error", "file_ids[2]" },
	{ "{\"file_ids\":[70000,100000001]}", 0, "validation_error", "file_ids[1]" },
	{ "{\"file_ids\":[70000,null,70001]}", 0, "validation_error", "file_ids[1]" },
	{ "{\"file_ids\":[70000.5]}", 0, "validation_error", "file_ids[0]" },
	{ "{\"file_ids\":[[70000]]}", 0, "validation_error", "file_ids[0]" },
	{ "{\"file_ids\":[70000],\"file_ids\":[70001]}", 0, "invalid_json", "duplicate" },
};

START_TEST(bad_file_ids_bodies_get_400_and_store_nothing)
{
	const bad_body *b = &bad_file_ids[_i];
	octo_response *resp = post(api, "/v1/download/initiate", b->body);

	assert_error(resp, 400, b->error, b->names);
	ck_assert_uint_eq(count_job_records(), 0);
	octo_response_free(resp);
}
END_TEST

/* {"file_id":70000,"x":[[...]]}: the object plus `arrays` levels. */
static char *nested_body(int arrays)
{
	char *body = malloc(64 + 2 * (size_t)arrays), *p = body;
	int i;

	ck_assert_ptr_nonnull(body);
	p += sprintf(p, "{\"file_id\":70000,\"x\":");
	for (i = 0; i < arrays; i++)
		*p++ = '[';
	for (i = 0; i < arrays; i++)
		*p++ = ']';
	sprintf(p, "}");
	return body;
}

START_TEST(deep_nesting_gets_400)
{
	char *body = nested_body(10000);
	octo_response *resp = post(api, "/v1/download/check", body);

	assert_error(resp, 400, "invalid_json", "nesting");
	octo_response_free(resp);
	free(body);
}
END_TEST

START_TEST(nesting_up_to_the_limit_is_accepted)
{
	char *body = nested_body(OCTO_JSON_MAX_DEPTH - 1);
	octo_response *resp = post(api, "/v1/download/check", body);

	ck_assert_int_eq(octo_response_status(resp), 200);
	octo_response_free(resp);
	free(body);
}
END_TEST

START_TEST(missing_body_gets_400)
{
	octo_request req = make_request("POST", "/v1/download/check", json_type, 1, NULL);
	octo_response *resp = run(api, &req);

	assert_error(resp, 400, "invalid_json", "JSON");
	octo_response_free(resp);
}
END_TEST

/* ---- body size and media type ----------------------------------------------- */

/* {"file_id":70000,"p":"xxx..."} of exactly `len` bytes; free() it. */
static char *padded_body(size_t len)
{
	static const char head[] = "{\"file_id\":70000,\"p\":\"";
	size_t fixed = sizeof(head) - 1 + 2;
	char *body = malloc(len + 1);

	ck_assert_uint_ge(len, fixed);
	ck_assert_ptr_nonnull(body);
	memcpy(body, head, sizeof(head) - 1);
	memset(body + sizeof(head) - 1, 'x', len - fixed);
	memcpy(body + len - 2, "\"}", 3);
	return body;
}

static octo_api *small_body_api(void)
{
	octo_api_options o = test_options();

	o.max_body_bytes = 32;
	return api_with(&o);
}

START_TEST(max_body_reports_the_option)
{
	ck_assert_uint_eq(octo_api_max_body(api), 64 * 1024);
	ck_assert_uint_eq(octo_api_max_body(small_body_api()), 32);
}
END_TEST

START_TEST(body_over_the_limit_gets_413)
{
	octo_api *a = small_body_api();
	char *body = padded_body(33);
	octo_response *resp = post(a, "/v1/download/check", body);

	assert_error(resp, 413, "payload_too_large", "32");
	assert_common_headers(resp, "1000000");
	octo_response_free(resp);
	free(body);
}
END_TEST

START_TEST(body_at_the_limit_is_accepted)
{
	octo_api *a = small_body_api();
	char *body = padded_body(32);
	octo_response *resp = post(a, "/v1/download/check", body);

	ck_assert_int_eq(octo_response_status(resp), 200);
	octo_response_free(resp);
	free(body);
}
END_TEST

START_TEST(body_the_server_cut_short_gets_413)
{
	octo_request req = make_request("POST", "/v1/download/check", json_type, 1,
	                                "{\"file_id\":70000}");
	octo_response *resp;

	req.body_too_large = 1;
	resp = run(api, &req);
	assert_error(resp, 413, "payload_too_large", "65536");
	octo_response_free(resp);
}
END_TEST

static octo_response *post_typed(const char *content_type)
{
	octo_header h[] = { { "Content-Type", content_type } };
	octo_request req = make_request("POST", "/v1/download/check", h, 1,
	                                "{\"file_id\":70000}");

	return run(api, &req);
}

START_TEST(post_without_content_type_gets_415)
{
	octo_request req = make_request("POST", "/v1/download/check", NULL, 0,
	                                "{\"file_id\":70000}");
	octo_response *resp = run(api, &req);

	assert_error(resp, 415, "unsupported_media_type", "Content-Type");
	octo_response_free(resp);
}
END_TEST

START_TEST(post_with_another_content_type_gets_415)
{
	static const char *types[] = {
		"text/plain", "application/jsonp", "application/x-www-form-urlencoded", "",
		"json", "text/json"
	};
	size_t i;

	for (i = 0; i < COUNT(types); i++) {
		octo_response *resp = post_typed(types[i]);
		ck_assert_msg(octo_response_status(resp) == 415, "%s: %d", types[i],
		              octo_response_status(resp));
		assert_error(resp, 415, "unsupported_media_type", "Content-Type");
		octo_response_free(resp);
	}
}
END_TEST

START_TEST(json_content_type_with_parameters_is_accepted)
{
	static const char *types[] = {
		"application/json; charset=utf-8", "application/json;charset=UTF-8",
		"Application/JSON", " application/json"
	};
	size_t i;

	for (i = 0; i < COUNT(types); i++) {
		octo_response *resp = post_typed(types[i]);
		ck_assert_msg(octo_response_status(resp) == 200, "%s: %d", types[i],
		              octo_response_status(resp));
		octo_response_free(resp);
	}
}
END_TEST

START_TEST(request_header_names_match_case_insensitively)
{
	octo_header h[] = { { "content-type", "application/json" }, { "x-request-id", "low-1" } };
	octo_request req = make_request("POST", "/v1/download/check", h, 2,
	                                "{\"file_id\":70000}");
	octo_response *resp = run(api, &req);

	ck_assert_int_eq(octo_response_status(resp), 200);
	assert_header(resp, "X-Request-ID", "low-1");
	octo_response_free(resp);
}
END_TEST

/* ---- routing ------------------------------------------------------------------ */

START_TEST(unknown_path_gets_404)
{
	octo_response *resp = call(api, "GET", "/v2/nothing");

	assert_error(resp, 404, "not_found", "/v2/nothing");
	ck_assert_str_eq(octo_response_route(resp), "unmatched");
	octo_response_free(resp);
}
END_TEST

START_TEST(hostile_path_still_gets_a_json_404)
{
	octo_response *resp = call(api, "GET", "/\xff\xfe\x01\"\\\n<script>");

	assert_error(resp, 404, "not_found", "script");
	octo_response_free(resp);
}
END_TEST

START_TEST(get_on_a_post_route_gets_405_with_allow)
{
	static const char *methods[] = { "GET", "HEAD", "PUT", "DELETE" };
	size_t i;

	for (i = 0; i < COUNT(methods); i++) {
		octo_response *resp = call(api, methods[i], "/v1/download/check");
		assert_error(resp, 405, "method_not_allowed", methods[i]);
		assert_header(resp, "Allow", "POST, OPTIONS");
		ck_assert_str_eq(octo_response_route(resp), "/v1/download/check");
		octo_response_free(resp);
	}
}
END_TEST

START_TEST(post_on_root_gets_405_with_allow)
{
	octo_response *resp = post(api, "/", "{}");

	assert_error(resp, 405, "method_not_allowed", "POST");
	assert_header(resp, "Allow", "GET, HEAD, OPTIONS");
	octo_response_free(resp);
}
END_TEST

START_TEST(options_on_a_route_gets_204_with_allowed_methods)
{
	octo_response *resp = call(api, "OPTIONS", "/v1/download/initiate");
	size_t len;

	ck_assert_int_eq(octo_response_status(resp), 204);
	assert_header(resp, "Access-Control-Allow-Methods", "POST, OPTIONS");
	assert_header(resp, "Allow", "POST, OPTIONS");
	ck_assert_ptr_nonnull(strstr(header(resp, "Access-Control-Allow-Headers"), "Content-Type"));
	ck_assert_ptr_nonnull(strstr(header(resp, "Access-Control-Allow-Headers"), "X-Request-ID"));
	ck_assert_ptr_nonnull(header(resp, "Access-Control-Max-Age"));
	octo_response_body(resp, &len);
	ck_assert_uint_eq(len, 0);
	ck_assert_str_eq(octo_response_route(resp), "/v1/download/initiate");
	octo_response_free(resp);
	resp = call(api, "OPTIONS", "/health");
	ck_assert_int_eq(octo_response_status(resp), 204);
	assert_header(resp, "Access-Control-Allow-Methods", "GET, HEAD, OPTIONS");
	octo_response_free(resp);
}
END_TEST

START_TEST(options_on_an_unknown_path_gets_404)
{
	octo_response *resp = call(api, "OPTIONS", "/nope");

	assert_error(resp, 404, "not_found", "/nope");
	ck_assert_ptr_null(header(resp, "Access-Control-Allow-Methods"));
	octo_response_free(resp);
}
END_TEST

/* ---- headers on every response ------------------------------------------------ */

typedef struct {
	const char *method;
	const char *path;
	const char *content_type;
	const char *body;
	int too_large;
	int status;
} sample;

static const sample samples[] = {
	{ "GET", "/", NULL, NULL, 0, 200 },
	{ "GET", "/health", NULL, NULL, 0, 200 },
	{ "HEAD", "/health", NULL, NULL, 0, 200 },
	{ "POST", "/v1/download/check", "application/json", "{\"file_id\":70000}", 0, 200 },
	{ "POST", "/v1/download/start", "application/json", "{\"file_id\":70000}", 0, 200 },
	{ "POST", "/v1/download/initiate", "application/json", "{\"file_ids\":[70000]}", 0, 202 },
	{ "OPTIONS", "/v1/download/check", NULL, NULL, 0, 204 },
	{ "POST", "/v1/download/check", "application/json", "{", 0, 400 },
	{ "POST", "/v1/download/check", "application/json", "{\"file_id\":1}", 0, 400 },
	{ "GET", "/nope", NULL, NULL, 0, 404 },
	{ "OPTIONS", "/nope", NULL, NULL, 0, 404 },
	{ "GET", "/v1/download/check", NULL, NULL, 0, 405 },
	{ "POST", "/v1/download/check", "application/json", "{}", 1, 413 },
	{ "POST", "/v1/download/check", "text/plain", "{\"file_id\":70000}", 0, 415 },
};

START_TEST(every_response_carries_the_common_headers)
{
	const sample *s = &samples[_i];
	octo_header h[] = { { "Content-Type", s->content_type } };
	octo_request req = make_request(s->method, s->path, h, s->content_type ? 1 : 0, s->body);
	octo_response *resp;

	req.body_too_large = s->too_large;
	resp = run(api, &req);
	ck_assert_msg(octo_response_status(resp) == s->status, "%s %s: %d, not %d", s->method,
	              s->path, octo_response_status(resp), s->status);
	assert_common_headers(resp, "1000000");
	assert_uuid4(header(resp, "X-Request-ID"));
	assert_header(resp, "Access-Control-Allow-Origin", "*");
	if (s->status >= 400) {
		octo_json *doc = body_json(resp);
		ck_assert_str_eq(str_member(doc, "requestId"), header(resp, "X-Request-ID"));
		octo_json_free(doc);
	}
	octo_response_free(resp);
}
END_TEST

START_TEST(traceparent_is_continued_or_started)
{
	octo_header h[] = { { "traceparent",
	                      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" } };
	octo_request req = make_request("GET", "/", h, 1, NULL);
	octo_response *resp = run(api, &req), *other;
	const char *tp = header(resp, "traceparent");

	ck_assert_str_eq(octo_response_trace_id(resp), "4bf92f3577b34da6a3ce929d0e0e4736");
	ck_assert_int_eq(strncmp(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36), 0);
	ck_assert_int_ne(strncmp(tp + 36, "00f067aa0ba902b7", 16), 0);
	h[0].value = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01; evil";
	other = run(api, &req);
	ck_assert_str_ne(octo_response_trace_id(other), "4bf92f3577b34da6a3ce929d0e0e4736");
	ck_assert_uint_eq(strlen(octo_response_trace_id(other)), 32);
	octo_response_free(other);
	octo_response_free(resp);
}
END_TEST

START_TEST(metrics_are_served_only_with_a_registry)
{
	octo_api_options o = test_options();
	octo_metrics *reg;
	octo_metric *m;
	octo_response *resp;
	const char *body;
	size_t len;
	int i;

	resp = call(api, "GET", "/metrics");
	ck_assert_int_eq(octo_response_status(resp), 404);
	octo_response_free(resp);

	ck_assert_int_eq(octo_metrics_new(&reg), 0);
	ck_assert_int_eq(octo_metrics_counter(&m, reg, "things_total", "Things.", NULL), 0);
	octo_metrics_add(m, 7);
	o.metrics = reg;
	o.rate_limit_max = 1;
	api_with(&o);
	for (i = 0; i < 3; i++) { /* scrapes are never rate-limited */
		resp = call(custom, "GET", "/metrics");
		ck_assert_int_eq(octo_response_status(resp), 200);
		octo_response_free(resp);
	}
	resp = call(custom, "GET", "/metrics");
	assert_header(resp, "Content-Type", OCTO_METRICS_CONTENT_TYPE);
	ck_assert_str_eq(octo_response_route(resp), "/metrics");
	body = octo_response_body(resp, &len);
	ck_assert_str_eq(body, "# HELP things_total Things.\n# TYPE things_total counter\n"
	                       "things_total 7\n");
	octo_response_free(resp);
	resp = call(custom, "POST", "/metrics");
	ck_assert_int_eq(octo_response_status(resp), 405);
	octo_response_free(resp);
	octo_api_free(custom);
	custom = NULL;
	octo_metrics_free(reg);
}
END_TEST

START_TEST(request_ids_are_fresh_per_request)
{
	octo_response *a = call(api, "GET", "/");
	octo_response *b = call(api, "GET", "/");

	assert_uuid4(octo_response_request_id(a));
	assert_uuid4(octo_response_request_id(b));
	ck_assert_str_ne(octo_response_request_id(a), octo_response_request_id(b));
	octo_response_free(a);
	octo_response_free(b);
}
END_TEST

static octo_response *with_request_id(const char *path, const char *id)
{
	octo_header h[] = { { "X-Request-ID", id } };
	octo_request req = make_request("GET", path, h, 1, NULL);

	return run(api, &req);
}

START_TEST(sane_client_request_id_is_echoed)
{
	static const char *paths[] = { "/", "/nope" };
	char longest[129];
	const char *ids[] = { "trace-42.a_B", "0", longest };
	size_t i, j;

	memset(longest, 'a', 128);
	longest[128] = '\0';
	for (i = 0; i < COUNT(ids); i++) {
		for (j = 0; j < COUNT(paths); j++) {
			octo_response *resp = with_request_id(paths[j], ids[i]);
			assert_header(resp, "X-Request-ID", ids[i]);
			ck_assert_str_eq(octo_response_request_id(resp), ids[i]);
			if (octo_response_status(resp) == 404)
				assert_error(resp, 404, "not_found", "/nope");
			octo_response_free(resp);
		}
	}
}
END_TEST

START_TEST(unsafe_client_request_id_is_replaced)
{
	char too_long[130];
	const char *ids[] = {
		"has space", "a\r\nSet-Cookie: x=1", "a\nb", "a\rb", too_long, "",
		"a<script>", "caf\xc3\xa9", "a\"b", "a/b"
	};
	size_t i;

	memset(too_long, 'a', 129);
	too_long[129] = '\0';
	for (i = 0; i < COUNT(ids); i++) {
		octo_response *resp = with_request_id("/nope", ids[i]);
		assert_uuid4(header(resp, "X-Request-ID"));
		assert_error(resp, 404, "not_found", "/nope");
		octo_response_free(resp);
	}
}
END_TEST

START_TEST(response_accessors_agree)
{
	octo_response *resp = call(api, "GET", "/");
	const char *name, *value;
	size_t i, n = octo_response_header_count(resp);

	ck_assert_uint_ge(n, 9);
	for (i = 0; i < n; i++) {
		octo_response_header(resp, i, &name, &value);
		ck_assert_ptr_nonnull(name);
		ck_assert_ptr_nonnull(value);
		ck_assert_ptr_nonnull(header(resp, name));
	}
	octo_response_header(resp, n, &name, &value);
	ck_assert_ptr_null(name);
	ck_assert_ptr_null(value);
	ck_assert_str_eq(header(resp, "x-content-type-options"), "nosniff");
	ck_assert_ptr_null(header(resp, "X-No-Such-Header"));
	ck_assert_str_eq(octo_response_body(resp, NULL), octo_response_body(resp, &i));
	ck_assert_uint_eq(i, strlen(octo_response_body(resp, NULL)));
	octo_response_free(resp);
}
END_TEST

/* ---- rate limiting ------------------------------------------------------------- */

static octo_api *limited_api(uint32_t max)
{
	octo_api_options o = test_options();

	o.rate_limit_max = max;
	return api_with(&o);
}

static octo_response *call_from(octo_api *a, const char *client, const char *path)
{
	octo_request req = make_request("GET", path, NULL, 0, NULL);

	req.client = client;
	return run(a, &req);
}

START_TEST(requests_within_the_limit_count_down)
{
	static const char *remaining[] = { "2", "1", "0" };
	octo_api *a = limited_api(3);
	size_t i;

	for (i = 0; i < COUNT(remaining); i++) {
		octo_response *resp = call_from(a, "10.0.0.1", "/");
		ck_assert_int_eq(octo_response_status(resp), 200);
		assert_header(resp, "RateLimit-Limit", "3");
		assert_header(resp, "RateLimit-Remaining", remaining[i]);
		if (i == 0)
			assert_header(resp, "RateLimit-Reset", "60");
		ck_assert_ptr_null(header(resp, "Retry-After"));
		octo_response_free(resp);
	}
}
END_TEST

START_TEST(fourth_request_gets_429_with_retry_after)
{
	octo_api *a = limited_api(3);
	octo_response *resp;
	int i, retry;

	for (i = 0; i < 3; i++)
		octo_response_free(call_from(a, "10.0.0.1", "/"));
	resp = call_from(a, "10.0.0.1", "/");
	assert_error(resp, 429, "rate_limited", "Too many requests");
	assert_common_headers(resp, "3");
	assert_header(resp, "RateLimit-Remaining", "0");
	assert_digits("Retry-After", header(resp, "Retry-After"));
	retry = atoi(header(resp, "Retry-After"));
	ck_assert_int_ge(retry, 1);
	ck_assert_int_le(retry, 60);
	octo_response_free(resp);
}
END_TEST

START_TEST(another_client_is_not_limited)
{
	octo_api *a = limited_api(3);
	octo_response *resp;
	int i;

	for (i = 0; i < 4; i++)
		octo_response_free(call_from(a, "10.0.0.1", "/"));
	resp = call_from(a, "10.0.0.2", "/");
	ck_assert_int_eq(octo_response_status(resp), 200);
	assert_header(resp, "RateLimit-Remaining", "2");
	octo_response_free(resp);
}
END_TEST

/* ---- client addresses through proxies ---------------------------------- */

static octo_api *proxied_api(uint32_t max)
{
	octo_api_options o = test_options();

	o.rate_limit_max = max;
	o.trusted_proxies = "10.0.0.0/8, fd00::/8";
	return api_with(&o);
}

/* A request from `peer` carrying X-Forwarded-For headers (NULL-ended). */
static octo_response *forwarded(octo_api *a, const char *peer, const char *const *xff)
{
	octo_header h[4];
	octo_request req;
	size_t n = 0;

	for (; xff && *xff && n < 4; xff++, n++) {
		h[n].name = "X-Forwarded-For";
		h[n].value = *xff;
	}
	req = make_request("GET", "/", h, n, NULL);
	req.client = peer;
	return run(a, &req);
}

static const struct {
	const char *peer;
	const char *xff[3];
	const char *client;
} forwarding[] = {
	/* not a trusted peer: its header is ignored */
	{ "203.0.113.7", { "198.51.100.1" }, "203.0.113.7" },
	{ "10.1.2.3", { "198.51.100.1" }, "198.51.100.1" },
	/* the right-most address not a trusted proxy; a spoofed left part is ignored */
	{ "10.1.2.3", { "6.6.6.6, 198.51.100.1, 10.9.9.9" }, "198.51.100.1" },
	{ "10.1.2.3", { "6.6.6.6", "198.51.100.1" }, "198.51.100.1" },
	{ "10.1.2.3", { " 198.51.100.1 ,10.9.9.9 " }, "198.51.100.1" },
	{ "fd00::1", { "2001:db8:0:0::42" }, "2001:db8::42" },
	/* only proxies: the farthest one */
	{ "10.1.2.3", { "10.7.7.7" }, "10.7.7.7" },
	/* a header that is no address list: the peer */
	{ "10.1.2.3", { "evil\r\nX-Injected: 1" }, "10.1.2.3" },
	{ "10.1.2.3", { "" }, "10.1.2.3" },
	{ "10.1.2.3", { NULL }, "10.1.2.3" },
};

START_TEST(client_address_comes_through_trusted_proxies_only)
{
	octo_response *resp = forwarded(proxied_api(100), forwarding[_i].peer, forwarding[_i].xff);

	ck_assert_int_eq(octo_response_status(resp), 200);
	ck_assert_str_eq(octo_response_client(resp), forwarding[_i].client);
	octo_response_free(resp);
}
END_TEST

START_TEST(clients_behind_one_proxy_are_limited_apart)
{
	static const char *const flood[] = { "198.51.100.1", NULL };
	static const char *const calm[] = { "198.51.100.2", NULL };
	octo_api *a = proxied_api(3);
	octo_response *resp;
	int i;

	for (i = 0; i < 10; i++)
		octo_response_free(forwarded(a, "10.0.0.9", flood));
	resp = forwarded(a, "10.0.0.9", flood);
	ck_assert_int_eq(octo_response_status(resp), 429);
	octo_response_free(resp);
	/* The flood spent its own budget, not the proxy's nor its neighbour's. */
	resp = forwarded(a, "10.0.0.9", calm);
	ck_assert_int_eq(octo_response_status(resp), 200);
	assert_header(resp, "RateLimit-Remaining", "2");
	octo_response_free(resp);
}
END_TEST

START_TEST(health_is_not_counted)
{
	octo_api *a = limited_api(3);
	octo_response *resp;
	int i;

	for (i = 0; i < 10; i++) {
		resp = call_from(a, "10.0.0.1", "/health");
		ck_assert_int_eq(octo_response_status(resp), 200);
		assert_header(resp, "RateLimit-Remaining", "3");
		octo_response_free(resp);
	}
	for (i = 0; i < 3; i++) {
		resp = call_from(a, "10.0.0.1", "/");
		ck_assert_int_eq(octo_response_status(resp), 200);
		octo_response_free(resp);
	}
	resp = call_from(a, "10.0.0.1", "/");
	ck_assert_int_eq(octo_response_status(resp), 429);
	octo_response_free(resp);
}
END_TEST

START_TEST(zero_max_turns_rate_limiting_off)
{
	octo_api *a = limited_api(0);
	int i;

	for (i = 0; i < 20; i++) {
		octo_response *resp = call_from(a, "10.0.0.1", "/");
		ck_assert_int_eq(octo_response_status(resp), 200);
		ck_assert_ptr_null(header(resp, "RateLimit-Limit"));
		octo_response_free(resp);
	}
}
END_TEST

#define THREADS 4
#define REQUESTS_PER_THREAD 50

static void *request_many(void *arg)
{
	octo_api *a = arg;
	int i, ok = 0;

	for (i = 0; i < REQUESTS_PER_THREAD; i++) {
		octo_response *resp = call_from(a, "10.0.0.9", "/");
		ok += octo_response_status(resp) == 200;
		octo_response_free(resp);
	}
	return ok == REQUESTS_PER_THREAD ? arg : NULL;
}

START_TEST(concurrent_requests_are_counted_exactly)
{
	octo_api *a = limited_api(THREADS * REQUESTS_PER_THREAD);
	pthread_t threads[THREADS];
	octo_response *resp;
	void *result;
	int i;

	for (i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&threads[i], NULL, request_many, a), 0);
	for (i = 0; i < THREADS; i++) {
		ck_assert_int_eq(pthread_join(threads[i], &result), 0);
		ck_assert_ptr_eq(result, a);
	}
	resp = call_from(a, "10.0.0.9", "/");
	ck_assert_int_eq(octo_response_status(resp), 429);
	octo_response_free(resp);
}
END_TEST

/* ---- CORS ---------------------------------------------------------------------- */

static octo_response *call_with_origin(octo_api *a, const char *method, const char *path,
                                       const char *origin)
{
	octo_header h[] = { { "Origin", origin } };
	octo_request req = make_request(method, path, h, origin ? 1 : 0, NULL);

	return run(a, &req);
}

static octo_api *listed_origins_api(void)
{
	octo_api_options o = test_options();

	o.cors_origins = "https://a.example,https://b.example";
	return api_with(&o);
}

START_TEST(any_origin_is_allowed_with_star)
{
	octo_response *resp = call_with_origin(api, "GET", "/", "https://x.example");

	assert_header(resp, "Access-Control-Allow-Origin", "*");
	ck_assert_ptr_nonnull(strstr(header(resp, "Access-Control-Expose-Headers"), "X-Request-ID"));
	octo_response_free(resp);
}
END_TEST

START_TEST(listed_origin_is_echoed_with_vary)
{
	octo_api *a = listed_origins_api();
	static const char *origins[] = { "https://a.example", "https://b.example" };
	size_t i;

	for (i = 0; i < COUNT(origins); i++) {
		octo_response *resp = call_with_origin(a, "GET", "/", origins[i]);
		assert_header(resp, "Access-Control-Allow-Origin", origins[i]);
		assert_header(resp, "Vary", "Origin");
		ck_assert_ptr_nonnull(header(resp, "Access-Control-Expose-Headers"));
		octo_response_free(resp);
	}
}
END_TEST

START_TEST(unlisted_origin_gets_no_allow_origin)
{
	octo_api *a = listed_origins_api();
	static const char *origins[] = {
		"https://c.example", "https://a.exampl", "https://a.example.evil",
		"http://a.example", "https://a.example,https://b.example", "", "*"
	};
	octo_response *resp;
	size_t i;

	for (i = 0; i < COUNT(origins); i++) {
		resp = call_with_origin(a, "GET", "/", origins[i]);
		ck_assert_msg(header(resp, "Access-Control-Allow-Origin") == NULL,
		              "\"%s\" was allowed", origins[i]);
		assert_header(resp, "Vary", "Origin");
		octo_response_free(resp);
	}
	resp = call_with_origin(a, "GET", "/", NULL);
	ck_assert_ptr_null(header(resp, "Access-Control-Allow-Origin"));
	assert_header(resp, "Vary", "Origin");
	octo_response_free(resp);
}
END_TEST

START_TEST(listed_origin_is_echoed_on_errors_and_preflight)
{
	octo_api *a = listed_origins_api();
	octo_response *resp = call_with_origin(a, "GET", "/nope", "https://b.example");

	ck_assert_int_eq(octo_response_status(resp), 404);
	assert_header(resp, "Access-Control-Allow-Origin", "https://b.example");
	octo_response_free(resp);
	resp = call_with_origin(a, "OPTIONS", "/v1/download/check", "https://a.example");
	ck_assert_int_eq(octo_response_status(resp), 204);
	assert_header(resp, "Access-Control-Allow-Origin", "https://a.example");
	assert_header(resp, "Access-Control-Allow-Methods", "POST, OPTIONS");
	octo_response_free(resp);
}
END_TEST

/* ---- signed download URLs ------------------------------------------------------- */

/* The URL secret the signing tests configure: 32 bytes. */
static const unsigned char url_secret[] = "k3y-for-signing-download-urls-32";
#define URL_SECRET_LEN 32
#define SIG_HEX 64
#define NO_URL "File is ready in storage; no download URL can be made"

static octo_api_options signed_options(const char *public_url)
{
	octo_api_options o = test_options();

	o.url_secret = url_secret;
	o.url_secret_len = URL_SECRET_LEN;
	o.public_url = public_url;
	return o;
}

static octo_api *signed_api(const char *public_url)
{
	octo_api_options o = signed_options(public_url);

	return api_with(&o);
}

/* The byte at `i` of the objects the file tests store: all 256 values. */
static char pattern_byte(size_t i)
{
	return (char)((i * 7 + i / 251) & 0xff);
}

static void put_pattern(int file_id, size_t size)
{
	char key[64], *data = malloc(size + 1);
	size_t i;

	ck_assert_ptr_nonnull(data);
	for (i = 0; i < size; i++)
		data[i] = pattern_byte(i);
	snprintf(key, sizeof(key), "downloads/%d.zip", file_id);
	ck_assert_int_eq(octo_store_put(store, key, data, size), 0);
	free(data);
}

/* HMAC-SHA256 over "<key>\n<expires>" in lowercase hex, computed here
 * independently of lib/api.c. */
static void sign(const unsigned char *secret, size_t secret_len, const char *key,
                 long long expires, char out[SIG_HEX + 1])
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0, i;
	char msg[1100];
	int n = snprintf(msg, sizeof(msg), "%s\n%lld", key, expires);

	ck_assert(n > 0 && (size_t)n < sizeof(msg));
	ck_assert_ptr_nonnull(HMAC(EVP_sha256(), secret, (int)secret_len,
	                           (const unsigned char *)msg, (size_t)n, mac, &mac_len));
	ck_assert_uint_eq(mac_len, 32);
	for (i = 0; i < mac_len; i++)
		snprintf(out + 2 * i, 3, "%02x", mac[i]);
}

/* "expires=E&signature=S" for `key` under the tests' secret. */
static void signed_query(char *out, size_t size, const char *key, long long expires)
{
	char sig[SIG_HEX + 1];

	sign(url_secret, URL_SECRET_LEN, key, expires, sig);
	snprintf(out, size, "expires=%lld&signature=%s", expires, sig);
}

/* POST /v1/download/start for `file_id`, with `host` as the Host header
 * (NULL: none). */
static octo_response *start_from(octo_api *a, int file_id, const char *host)
{
	octo_header h[] = { { "Content-Type", "application/json" }, { "Host", host } };
	octo_request req;
	char body[64];

	snprintf(body, sizeof(body), "{\"file_id\":%d}", file_id);
	req = make_request("POST", "/v1/download/start", h, host ? 2 : 1, body);
	return run(a, &req);
}

/* The downloadUrl of a completed start (free() it), or NULL when the
 * answer has none; the message must say which. */
static char *start_url(octo_api *a, int file_id, const char *host)
{
	octo_response *resp = start_from(a, file_id, host);
	octo_json *doc = body_json(resp);
	const octo_json_value *v;
	const char *url = NULL;
	char *copy = NULL;

	ck_assert_int_eq(octo_response_status(resp), 200);
	ck_assert_str_eq(str_member(doc, "status"), "completed");
	v = member(doc, "downloadUrl");
	if (octo_json_typeof(v) == OCTO_JSON_NULL) {
		ck_assert_str_eq(str_member(doc, "message"), NO_URL);
	} else {
		ck_assert_int_eq(octo_json_string(v, &url), 0);
		ck_assert_str_eq(str_member(doc, "message"), "Download ready");
		ck_assert_ptr_nonnull(copy = strdup(url));
	}
	octo_json_free(doc);
	octo_response_free(resp);
	return copy;
}

/* A signed URL taken apart. */
typedef struct {
	char path[512];
	char query[256];
	char key[64];
	long long expires;
	char signature[SIG_HEX + 1];
} url_parts;

/* Checks that `url` is exactly
 * <base>/v1/files/downloads/<id>.zip?expires=E&signature=<64 hex>
 * with E = now + ttl for some now in [t0, t1], and splits it. */
static url_parts parse_url(const char *url, const char *base, int file_id,
                           time_t t0, time_t t1, uint32_t ttl)
{
	char want[512], *end;
	const char *e, *sig;
	url_parts u;

	memset(&u, 0, sizeof(u));
	snprintf(u.key, sizeof(u.key), "downloads/%d.zip", file_id);
	snprintf(want, sizeof(want), "%s/v1/files/%s?expires=", base, u.key);
	ck_assert_msg(strncmp(url, want, strlen(want)) == 0, "\"%s\" does not start with \"%s\"",
	              url, want);
	e = url + strlen(want);
	ck_assert_msg(*e >= '0' && *e <= '9', "no expiry in \"%s\"", url);
	u.expires = strtoll(e, &end, 10);
	ck_assert_msg(strncmp(end, "&signature=", 11) == 0, "no signature in \"%s\"", url);
	sig = end + 11;
	ck_assert_msg(strlen(sig) == SIG_HEX && strspn(sig, "0123456789abcdef") == SIG_HEX,
	              "\"%s\" is no SHA-256 hex signature", sig);
	memcpy(u.signature, sig, SIG_HEX + 1);
	ck_assert_int_ge(u.expires, (long long)t0 + ttl);
	ck_assert_int_le(u.expires, (long long)t1 + ttl);
	snprintf(u.path, sizeof(u.path), "/v1/files/%s", u.key);
	snprintf(u.query, sizeof(u.query), "expires=%lld&signature=%s", u.expires, u.signature);
	return u;
}

static void assert_signed_by(const url_parts *u, const unsigned char *secret, size_t len)
{
	char want[SIG_HEX + 1];

	sign(secret, len, u->key, u->expires, want);
	ck_assert_str_eq(u->signature, want);
}

/* Starts `file_id` through `a` and returns its URL taken apart. */
static url_parts start_signed(octo_api *a, int file_id, const char *host,
                              const char *base, uint32_t ttl)
{
	time_t t0 = time(NULL), t1;
	char *url = start_url(a, file_id, host);
	url_parts u;

	t1 = time(NULL);
	ck_assert_msg(url != NULL, "no downloadUrl");
	u = parse_url(url, base, file_id, t0, t1, ttl);
	free(url);
	return u;
}

static octo_response *get_with_query(octo_api *a, const char *method, const char *path,
                                     const char *query)
{
	octo_request req = make_request(method, path, NULL, 0, NULL);

	req.query = query;
	return run(a, &req);
}

static octo_response *get_file(octo_api *a, const char *path, const char *query)
{
	return get_with_query(a, "GET", path, query);
}

/* A 200 carrying the pattern object `file_id` of `size` bytes as a file,
 * which this takes, reads and closes. */
static void assert_serves_pattern(octo_response *resp, int file_id, size_t size)
{
	char want[64], *data = malloc(size + 1);
	uint64_t got_size = 0;
	size_t i, total = 0;
	int fd = -1;
	ssize_t n;

	ck_assert_ptr_nonnull(data);
	ck_assert_msg(octo_response_status(resp) == 200, "status %d: %s",
	              octo_response_status(resp), octo_response_body(resp, NULL));
	ck_assert_str_eq(octo_response_route(resp), "/v1/files/{key}");
	snprintf(want, sizeof(want), "attachment; filename=\"%d.zip\"", file_id);
	assert_header(resp, "Content-Disposition", want);
	assert_header(resp, "Content-Type", "application/octet-stream");
	assert_common_headers(resp, "1000000");
	ck_assert_int_eq(octo_response_take_file(resp, &fd, &got_size), 1);
	ck_assert_int_ge(fd, 0);
	ck_assert_uint_eq(got_size, size);
	while ((n = read(fd, data + total, size + 1 - total)) > 0)
		total += (size_t)n;
	ck_assert_int_eq(n, 0);
	ck_assert_uint_eq(total, size);
	for (i = 0; i < size; i++)
		ck_assert_msg(data[i] == pattern_byte(i), "byte %zu differs", i);
	ck_assert_int_eq(close(fd), 0);
	/* The descriptor is handed over once. */
	ck_assert_int_eq(octo_response_take_file(resp, &fd, &got_size), 0);
	free(data);
}

static void assert_forbidden(octo_response *resp, const char *names)
{
	uint64_t size = 0;
	int fd = -1;

	assert_error(resp, 403, "forbidden", names);
	ck_assert_str_eq(octo_response_route(resp), "/v1/files/{key}");
	ck_assert_int_eq(octo_response_take_file(resp, &fd, &size), 0);
}

START_TEST(start_without_a_secret_gives_no_url_even_with_a_host)
{
	char *url;

	put_file(70000, 10);
	url = start_url(api, 70000, "files.example:8080");
	ck_assert_ptr_null(url);
}
END_TEST

START_TEST(start_with_a_secret_gives_a_signed_url_to_the_host)
{
	octo_api *a = signed_api(NULL);
	url_parts u;

	put_pattern(70000, 3000);
	u = start_signed(a, 70000, "files.example:8080", "http://files.example:8080", 3600);
	assert_signed_by(&u, url_secret, URL_SECRET_LEN);
}
END_TEST

START_TEST(signed_url_lives_url_ttl_s)
{
	octo_api_options o = signed_options(NULL);
	url_parts u;

	o.url_ttl_s = 120;
	api_with(&o);
	put_pattern(70000, 10);
	u = start_signed(custom, 70000, "[::1]:3000", "http://[::1]:3000", 120);
	assert_signed_by(&u, url_secret, URL_SECRET_LEN);
}
END_TEST

START_TEST(public_url_is_the_base_of_signed_urls)
{
	octo_api *a = signed_api("https://dl.example.com/");
	char *url;

	put_pattern(70000, 10);
	url = start_url(a, 70000, "files.example:8080");
	ck_assert_ptr_nonnull(url);
	ck_assert_int_eq(strncmp(url, "https://dl.example.com/v1/files/", 32), 0);
	free(url);
	start_signed(a, 70000, "files.example:8080", "https://dl.example.com", 3600);
	start_signed(a, 70000, NULL, "https://dl.example.com", 3600);
}
END_TEST

START_TEST(missing_file_gets_no_url_with_a_secret)
{
	octo_api *a = signed_api("https://dl.example.com");
	octo_response *resp = start_from(a, 70002, "files.example");
	octo_json *doc = body_json(resp);

	ck_assert_str_eq(str_member(doc, "status"), "failed");
	assert_null_member(doc, "downloadUrl");
	ck_assert_str_eq(str_member(doc, "message"), "File not found in storage");
	octo_json_free(doc);
	octo_response_free(resp);
}
END_TEST

static const char *const unsafe_hosts[] = {
	NULL, "", "files example", "files.example/x", "evil.example/v1?x=",
	"a\r\nX-Injected: 1", "user@files.example", "files.example\"", "files.example\\",
	"caf\xc3\xa9.example",
};

START_TEST(unsafe_host_gives_no_url)
{
	octo_api *a = signed_api(NULL);
	char *url;

	put_pattern(70000, 10);
	url = start_url(a, 70000, unsafe_hosts[_i]);
	ck_assert_msg(url == NULL, "Host \"%s\" gave %s", unsafe_hosts[_i], url);
}
END_TEST

START_TEST(unsafe_host_does_not_matter_with_a_public_url)
{
	octo_api *a = signed_api("https://dl.example.com");

	put_pattern(70000, 10);
	start_signed(a, 70000, unsafe_hosts[_i], "https://dl.example.com", 3600);
}
END_TEST

START_TEST(host_of_255_bytes_is_used_and_256_is_not)
{
	octo_api *a = signed_api(NULL);
	char host[257], base[300];

	put_pattern(70000, 10);
	memset(host, 'h', 255);
	host[255] = '\0';
	snprintf(base, sizeof(base), "http://%s", host);
	start_signed(a, 70000, host, base, 3600);
	host[255] = 'h';
	host[256] = '\0';
	ck_assert_ptr_null(start_url(a, 70000, host));
}
END_TEST

START_TEST(delayed_start_also_gets_a_signed_url)
{
	octo_api_options o = signed_options(NULL);
	url_parts u;

	o.download_delay_enabled = 1;
	o.download_delay_min_ms = DELAY_MIN_MS;
	o.download_delay_max_ms = DELAY_MAX_MS;
	api_with(&o);
	put_pattern(70000, 10);
	u = start_signed(custom, 70000, "files.example", "http://files.example", 3600);
	assert_signed_by(&u, url_secret, URL_SECRET_LEN);
}
END_TEST

/* ---- GET /v1/files/{key} --------------------------------------------------------- */

START_TEST(signed_url_serves_the_stored_file)
{
	octo_api *a = signed_api(NULL);
	octo_response *resp;
	url_parts u;

	put_pattern(70000, 100000);
	u = start_signed(a, 70000, "files.example", "http://files.example", 3600);
	resp = get_file(a, u.path, u.query);
	assert_serves_pattern(resp, 70000, 100000);
	octo_response_free(resp);
}
END_TEST

START_TEST(signed_url_serves_an_empty_file)
{
	octo_api *a = signed_api("https://dl.example.com");
	octo_response *resp;
	url_parts u;

	put_pattern(70001, 0);
	u = start_signed(a, 70001, NULL, "https://dl.example.com", 3600);
	resp = get_file(a, u.path, u.query);
	assert_serves_pattern(resp, 70001, 0);
	octo_response_free(resp);
}
END_TEST

START_TEST(head_on_a_signed_url_answers_200)
{
	octo_api *a = signed_api(NULL);
	octo_response *resp;
	url_parts u;

	put_pattern(70000, 10);
	u = start_signed(a, 70000, "files.example", "http://files.example", 3600);
	resp = get_with_query(a, "HEAD", u.path, u.query);
	ck_assert_int_eq(octo_response_status(resp), 200);
	assert_header(resp, "Content-Disposition", "attachment; filename=\"70000.zip\"");
	octo_response_free(resp);
}
END_TEST

enum {
	FLIP_FIRST_DIGIT, FLIP_LAST_DIGIT, LATER_EXPIRY, EARLIER_EXPIRY, NO_SIGNATURE,
	NO_EXPIRY, SHORT_SIGNATURE, LONG_SIGNATURE, EMPTY_SIGNATURE, OTHER_KEY, OTHER_SECRET,
	NO_QUERY, EMPTY_QUERY, JUNK_EXPIRY, TAMPER_CASES
};

static char flipped(char c)
{
	return c == '0' ? '1' : '0';
}

START_TEST(tampered_url_gets_403)
{
	octo_api *a = signed_api(NULL);
	char path[600], query[600], sig[SIG_HEX + 2], other[SIG_HEX + 1];
	const char *q = query;
	octo_response *resp;
	url_parts u;

	put_pattern(70000, 10);
	put_pattern(70001, 10);
	u = start_signed(a, 70000, "files.example", "http://files.example", 3600);
	/* The URL as handed out works: what follows fails by the change alone. */
	resp = get_file(a, u.path, u.query);
	ck_assert_int_eq(octo_response_status(resp), 200);
	octo_response_free(resp);
	snprintf(path, sizeof(path), "%s", u.path);
	snprintf(sig, sizeof(sig), "%s", u.signature);
	snprintf(query, sizeof(query), "%s", u.query);
	switch (_i) {
	case FLIP_FIRST_DIGIT:
		sig[0] = flipped(sig[0]);
		snprintf(query, sizeof(query), "expires=%lld&signature=%s", u.expires, sig);
		break;
	case FLIP_LAST_DIGIT:
		sig[SIG_HEX - 1] = flipped(sig[SIG_HEX - 1]);
		snprintf(query, sizeof(query), "expires=%lld&signature=%s", u.expires, sig);
		break;
	case LATER_EXPIRY:
		snprintf(query, sizeof(query), "expires=%lld&signature=%s", u.expires + 1, sig);
		break;
	case EARLIER_EXPIRY:
		snprintf(query, sizeof(query), "expires=%lld&signature=%s", u.expires - 1, sig);
		break;
	case NO_SIGNATURE:
		snprintf(query, sizeof(query), "expires=%lld", u.expires);
		break;
	case NO_EXPIRY:
		snprintf(query, sizeof(query), "signature=%s", sig);
		break;
	case SHORT_SIGNATURE:
		sig[SIG_HEX - 1] = '\0';
		snprintf(query, sizeof(query), "expires=%lld&signature=%s", u.expires, sig);
		break;
	case LONG_SIGNATURE:
		snprintf(query, sizeof(query), "expires=%lld&signature=%s0", u.expires, sig);
		break;
	case EMPTY_SIGNATURE:
		snprintf(query, sizeof(query), "expires=%lld&signature=", u.expires);
		break;
	case OTHER_KEY:
		snprintf(path, sizeof(path), "/v1/files/downloads/70001.zip");
		break;
	case OTHER_SECRET:
		sign((const unsigned char *)"another-secret-of-32-bytes-here!", URL_SECRET_LEN,
		     u.key, u.expires, other);
		snprintf(query, sizeof(query), "expires=%lld&signature=%s", u.expires, other);
		break;
	case NO_QUERY:
		q = NULL;
		break;
	case EMPTY_QUERY:
		query[0] = '\0';
		break;
	default:
		snprintf(query, sizeof(query), "expires=%lldx&signature=%s", u.expires, sig);
		break;
	}
	resp = get_file(a, path, q);
	assert_forbidden(resp, "invalid");
	octo_response_free(resp);
}
END_TEST

START_TEST(expired_url_gets_403)
{
	octo_api *a = signed_api(NULL);
	long long now = (long long)time(NULL);
	octo_response *resp;
	char query[256];

	put_pattern(70000, 10);
	/* This test's own signing is right: a future expiry is served. */
	signed_query(query, sizeof(query), "downloads/70000.zip", now + 600);
	resp = get_file(a, "/v1/files/downloads/70000.zip", query);
	assert_serves_pattern(resp, 70000, 10);
	octo_response_free(resp);
	signed_query(query, sizeof(query), "downloads/70000.zip", now - 10);
	resp = get_file(a, "/v1/files/downloads/70000.zip", query);
	assert_forbidden(resp, "expired");
	octo_response_free(resp);
	signed_query(query, sizeof(query), "downloads/70000.zip", 0);
	resp = get_file(a, "/v1/files/downloads/70000.zip", query);
	assert_forbidden(resp, "expired");
	octo_response_free(resp);
}
END_TEST

START_TEST(valid_signature_for_a_missing_key_gets_404)
{
	octo_api *a = signed_api(NULL);
	octo_response *resp;
	char query[256];

	put_pattern(70000, 10);
	signed_query(query, sizeof(query), "downloads/70009.zip", (long long)time(NULL) + 600);
	resp = get_file(a, "/v1/files/downloads/70009.zip", query);
	assert_error(resp, 404, "not_found", "file");
	ck_assert_str_eq(octo_response_route(resp), "/v1/files/{key}");
	octo_response_free(resp);
}
END_TEST

START_TEST(valid_signature_for_a_directory_gets_404)
{
	octo_api *a = signed_api(NULL);
	octo_response *resp;
	char query[256];

	put_pattern(70000, 10);
	signed_query(query, sizeof(query), "downloads", (long long)time(NULL) + 600);
	resp = get_file(a, "/v1/files/downloads", query);
	assert_error(resp, 404, "not_found", "file");
	octo_response_free(resp);
}
END_TEST

/* Keys the store refuses, signed properly: the key check alone stops them. */
static const char *const invalid_keys[] = {
	"downloads/../downloads/70000.zip", "../data/downloads/70000.zip", ".tmp/x",
	"downloads//70000.zip", "downloads/70000.zip/", "downloads/.70000.zip",
	"downloads/70000 .zip",
};

START_TEST(valid_signature_for_an_invalid_key_gets_403)
{
	octo_api *a = signed_api(NULL);
	octo_response *resp;
	char path[256], query[256];

	put_pattern(70000, 10);
	snprintf(path, sizeof(path), "/v1/files/%s", invalid_keys[_i]);
	signed_query(query, sizeof(query), invalid_keys[_i], (long long)time(NULL) + 600);
	resp = get_file(a, path, query);
	assert_forbidden(resp, "invalid");
	octo_response_free(resp);
}
END_TEST

START_TEST(files_without_a_secret_get_403)
{
	octo_response *resp;
	char query[256];

	put_pattern(70000, 10);
	resp = get_file(api, "/v1/files/x", NULL);
	assert_forbidden(resp, "invalid");
	octo_response_free(resp);
	/* Even a signature made with some secret opens nothing. */
	signed_query(query, sizeof(query), "downloads/70000.zip", (long long)time(NULL) + 600);
	resp = get_file(api, "/v1/files/downloads/70000.zip", query);
	assert_forbidden(resp, "invalid");
	octo_response_free(resp);
}
END_TEST

START_TEST(post_on_files_gets_405)
{
	octo_response *resp = post(signed_api(NULL), "/v1/files/x", "{}");

	assert_error(resp, 405, "method_not_allowed", "POST");
	assert_header(resp, "Allow", "GET, HEAD, OPTIONS");
	ck_assert_str_eq(octo_response_route(resp), "/v1/files/{key}");
	octo_response_free(resp);
}
END_TEST

START_TEST(take_file_on_a_json_response_returns_0)
{
	octo_response *resp = call(api, "GET", "/");
	uint64_t size = 99;
	int fd = 1234;

	ck_assert_int_eq(octo_response_take_file(resp, &fd, &size), 0);
	ck_assert_int_eq(fd, 1234);
	ck_assert_uint_eq(size, 99);
	ck_assert_int_eq(octo_response_status(resp), 200);
	octo_response_free(resp);
}
END_TEST

/* The descriptor open on `path`, found by its inode, or -1. */
static int fd_open_on(const char *path)
{
	struct stat want, st;
	int fd;

	ck_assert_int_eq(stat(path, &want), 0);
	for (fd = 0; fd < 1024; fd++)
		if (fstat(fd, &st) == 0 && st.st_dev == want.st_dev && st.st_ino == want.st_ino)
			return fd;
	return -1;
}

START_TEST(untaken_file_is_closed_by_free)
{
	octo_api *a = signed_api(NULL);
	char query[256], path[400];
	octo_response *resp;
	int fd;

	put_pattern(70000, 10);
	snprintf(path, sizeof(path), "%s/downloads/70000.zip", data_dir);
	ck_assert_int_eq(fd_open_on(path), -1);
	signed_query(query, sizeof(query), "downloads/70000.zip", (long long)time(NULL) + 600);
	resp = get_file(a, "/v1/files/downloads/70000.zip", query);
	ck_assert_int_eq(octo_response_status(resp), 200);
	fd = fd_open_on(path);
	ck_assert_int_ge(fd, 0);
	octo_response_free(resp);
	errno = 0;
	ck_assert_int_eq(fcntl(fd, F_GETFD), -1);
	ck_assert_int_eq(errno, EBADF);
}
END_TEST

START_TEST(new_copies_the_url_secret)
{
	unsigned char secret[URL_SECRET_LEN];
	octo_api_options o = signed_options(NULL);
	octo_response *resp;
	url_parts u;

	memcpy(secret, url_secret, URL_SECRET_LEN);
	o.url_secret = secret;
	api_with(&o);
	memset(secret, 'x', sizeof(secret));
	put_pattern(70000, 10);
	u = start_signed(custom, 70000, "files.example", "http://files.example", 3600);
	assert_signed_by(&u, url_secret, URL_SECRET_LEN);
	resp = get_file(custom, u.path, u.query);
	assert_serves_pattern(resp, 70000, 10);
	octo_response_free(resp);
}
END_TEST

START_TEST(new_accepts_a_sixteen_byte_secret)
{
	octo_api_options o = signed_options(NULL);
	url_parts u;

	o.url_secret_len = 16;
	api_with(&o);
	put_pattern(70000, 10);
	u = start_signed(custom, 70000, "files.example", "http://files.example", 3600);
	assert_signed_by(&u, url_secret, 16);
}
END_TEST

/* A public URL longer than the room kept for it must be refused or used
 * whole, never cut into another host. */
START_TEST(long_public_url_is_used_whole_or_refused)
{
	octo_api_options o = signed_options(NULL);
	char public_url[400];
	octo_api *a = NULL;
	int rc;

	memcpy(public_url, "https://", 8);
	memset(public_url + 8, 'd', sizeof(public_url) - 9);
	public_url[sizeof(public_url) - 1] = '\0';
	o.public_url = public_url;
	rc = octo_api_new(&a, store, &o);
	if (rc == OCTO_EINVAL) {
		ck_assert_ptr_null(a);
		ck_assert_ptr_nonnull(strstr(octo_error_last(), "public_url"));
		return;
	}
	ck_assert_int_eq(rc, 0);
	custom = a;
	put_pattern(70000, 10);
	start_signed(a, 70000, "files.example", public_url, 3600);
}
END_TEST

/* ---- health cache ---------------------------------------------------------------- */

static octo_api *health_api(uint32_t cache_ms)
{
	octo_api_options o = test_options();

	o.health_cache_ms = cache_ms;
	return api_with(&o);
}

START_TEST(health_is_cached_for_health_cache_ms)
{
	octo_api *a = health_api(60000);
	octo_response *resp;

	resp = call(a, "GET", "/health");
	assert_body(resp, 200, "{\"status\":\"healthy\",\"checks\":{\"storage\":\"ok\"}}");
	octo_response_free(resp);
	tu_rmtree(data_dir);
	resp = call(a, "GET", "/health");
	assert_body(resp, 200, "{\"status\":\"healthy\",\"checks\":{\"storage\":\"ok\"}}");
	octo_response_free(resp);
	/* An API with nothing cached sees the store is gone. */
	resp = call(api, "GET", "/health");
	assert_body(resp, 503, "{\"status\":\"unhealthy\",\"checks\":{\"storage\":\"error\"}}");
	octo_response_free(resp);
}
END_TEST

START_TEST(zero_health_cache_checks_every_time)
{
	octo_api *a = health_api(0);
	char tmp[400];
	octo_response *resp;

	resp = call(a, "GET", "/health");
	ck_assert_int_eq(octo_response_status(resp), 200);
	octo_response_free(resp);
	tu_rmtree(data_dir);
	resp = call(a, "GET", "/health");
	assert_body(resp, 503, "{\"status\":\"unhealthy\",\"checks\":{\"storage\":\"error\"}}");
	octo_response_free(resp);
	/* And back as soon as the store is. */
	snprintf(tmp, sizeof(tmp), "%s/.tmp", data_dir);
	ck_assert_int_eq(mkdir(data_dir, 0750), 0);
	ck_assert_int_eq(mkdir(tmp, 0750), 0);
	resp = call(a, "GET", "/health");
	ck_assert_int_eq(octo_response_status(resp), 200);
	octo_response_free(resp);
}
END_TEST

START_TEST(unhealthy_result_is_cached_too)
{
	octo_api *a = health_api(60000);
	char tmp[400];
	octo_response *resp;

	tu_rmtree(data_dir);
	resp = call(a, "GET", "/health");
	ck_assert_int_eq(octo_response_status(resp), 503);
	octo_response_free(resp);
	snprintf(tmp, sizeof(tmp), "%s/.tmp", data_dir);
	ck_assert_int_eq(mkdir(data_dir, 0750), 0);
	ck_assert_int_eq(mkdir(tmp, 0750), 0);
	resp = call(a, "GET", "/health");
	ck_assert_int_eq(octo_response_status(resp), 503);
	octo_response_free(resp);
}
END_TEST

/* ---- life cycle and arguments -------------------------------------------------- */

typedef struct {
	const char *what;
	octo_api_options opts;
	const char *names;  /* what octo_error_last() must mention */
} bad_options;

#define BAD_OPTION_CASES 10

static bad_options bad_option(int i)
{
	bad_options b;

	b.opts = test_options();
	switch (i) {
	case 0:
		b.what = "min delay over max";
		b.opts.download_delay_min_ms = 2;
		b.opts.download_delay_max_ms = 1;
		b.names = "download_delay_min_ms";
		break;
	case 1:
		b.what = "zero window";
		b.opts.rate_limit_window_ms = 0;
		b.names = "rate_limit_window_ms";
		break;
	case 2:
		b.what = "NULL cors";
		b.opts.cors_origins = NULL;
		b.names = "cors_origins";
		break;
	case 3:
		b.what = "empty cors";
		b.opts.cors_origins = "";
		b.names = "cors_origins";
		break;
	case 4:
		b.what = "version 0";
		b.opts.version = 0;
		b.names = "version";
		break;
	case 5:
		b.what = "version 2";
		b.opts.version = OCTO_API_OPTIONS_VERSION + 1;
		b.names = "version";
		break;
	case 7:
		b.what = "zero url ttl";
		b.opts.url_ttl_s = 0;
		b.names = "url_ttl_s";
		break;
	case 8:
		b.what = "15-byte url secret";
		b.opts.url_secret = (const unsigned char *)"0123456789abcdef";
		b.opts.url_secret_len = 15;
		b.names = "url_secret";
		break;
	case 9:
		b.what = "ftp public url";
		b.opts.public_url = "ftp://x";
		b.names = "public_url";
		break;
	default:
		b.what = "zero max body";
		b.opts.max_body_bytes = 0;
		b.names = "max_body_bytes";
		break;
	}
	return b;
}

START_TEST(new_refuses_bad_options)
{
	bad_options b = bad_option(_i);
	octo_api *a = NULL;

	ck_assert_msg(octo_api_new(&a, store, &b.opts) == OCTO_EINVAL, "%s accepted", b.what);
	ck_assert_ptr_null(a);
	ck_assert_msg(strstr(octo_error_last(), b.names) != NULL, "%s: \"%s\"", b.what,
	              octo_error_last());
}
END_TEST

START_TEST(new_refuses_missing_arguments)
{
	octo_api *a = NULL;

	ck_assert_int_eq(octo_api_new(&a, NULL, NULL), OCTO_EINVAL);
	ck_assert_ptr_null(a);
	ck_assert_int_eq(octo_api_new(NULL, store, NULL), OCTO_EINVAL);
}
END_TEST

START_TEST(new_with_null_options_uses_the_defaults)
{
	octo_api *a = NULL;
	octo_response *resp;

	ck_assert_int_eq(octo_api_new(&a, store, NULL), 0);
	custom = a;
	ck_assert_uint_eq(octo_api_max_body(a), 64 * 1024);
	resp = call(a, "GET", "/");
	assert_common_headers(resp, "100");
	assert_header(resp, "Access-Control-Allow-Origin", "*");
	octo_response_free(resp);
}
END_TEST

START_TEST(new_accepts_equal_min_and_max_delay)
{
	octo_api *a = delayed_api(DELAY_MIN_MS, DELAY_MIN_MS);
	octo_response *resp = post(a, "/v1/download/start", "{\"file_id\":70000}");
	octo_json *doc = body_json(resp);

	ck_assert_int_ge(int_member(doc, "processingTimeMs"), DELAY_MIN_MS);
	octo_json_free(doc);
	octo_response_free(resp);
}
END_TEST

START_TEST(new_copies_the_options)
{
	char origins[] = "https://a.example";
	octo_api_options o = test_options();
	octo_response *resp;

	o.cors_origins = origins;
	api_with(&o);
	memcpy(origins, "https://z.example", sizeof(origins));
	o.max_body_bytes = 1;
	resp = call_with_origin(custom, "GET", "/", "https://a.example");
	assert_header(resp, "Access-Control-Allow-Origin", "https://a.example");
	ck_assert_uint_eq(octo_api_max_body(custom), 64 * 1024);
	octo_response_free(resp);
}
END_TEST

START_TEST(handle_refuses_incomplete_requests)
{
	octo_request req = make_request("GET", "/", NULL, 0, NULL);
	reply r;

	reply_init(&r);
	ck_assert_int_eq(octo_api_handle(NULL, &req, on_done, &r), OCTO_EINVAL);
	ck_assert_int_eq(octo_api_handle(api, NULL, on_done, &r), OCTO_EINVAL);
	ck_assert_int_eq(octo_api_handle(api, &req, NULL, &r), OCTO_EINVAL);
	req.method = NULL;
	ck_assert_int_eq(octo_api_handle(api, &req, on_done, &r), OCTO_EINVAL);
	req.method = "GET";
	req.path = NULL;
	ck_assert_int_eq(octo_api_handle(api, &req, on_done, &r), OCTO_EINVAL);
	ck_assert_int_eq(reply_calls(&r), 0);
	ck_assert_uint_gt(strlen(octo_error_last()), 0);
	reply_destroy(&r);
}
END_TEST

START_TEST(free_functions_accept_null)
{
	octo_response *resp;

	octo_api_free(NULL);
	octo_response_free(NULL);
	resp = call(api, "GET", "/");
	ck_assert_int_eq(octo_response_status(resp), 200);
	octo_response_free(resp);
}
END_TEST

START_TEST(route_is_the_template_or_unmatched)
{
	static const struct {
		const char *method, *path, *route;
	} cases[] = {
		{ "GET", "/", "/" },
		{ "GET", "/health", "/health" },
		{ "GET", "/v1/download/check", "/v1/download/check" },
		{ "OPTIONS", "/v1/download/start", "/v1/download/start" },
		{ "GET", "/v1/download/check/70000", "unmatched" },
		{ "GET", "/health/", "unmatched" },
		{ "GET", "/v1/files/x", "/v1/files/{key}" },
		{ "GET", "/v1/files/downloads/70000.zip", "/v1/files/{key}" },
		{ "POST", "/v1/files/x", "/v1/files/{key}" },
		{ "GET", "/v1/files/", "unmatched" },
		{ "GET", "/v1/files", "unmatched" },
		{ "GET", "", "unmatched" },
	};
	size_t i;

	for (i = 0; i < COUNT(cases); i++) {
		octo_response *resp = call(api, cases[i].method, cases[i].path);
		ck_assert_str_eq(octo_response_route(resp), cases[i].route);
		octo_response_free(resp);
	}
}
END_TEST

/* ---- the streams of a finished job ------------------------------------------- */

/* A stream's wake function: counts its calls in a reply. */
static void on_wake(void *payload)
{
	reply *w = payload;

	pthread_mutex_lock(&w->lock);
	w->calls++;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/* Reads what the stream has now: what octo_stream_read() returned last
 * (0: more may come, -1: the stream is over), the text in `out`. */
static long drain(octo_stream *s, char *out, size_t size)
{
	size_t got = 0;
	long n;

	while ((n = octo_stream_read(s, out + got, size - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	return n;
}

/* Reads until the stream is over, waiting for its wakes; the text of the
 * last read in `out`. */
static void drain_to_end(octo_stream *s, reply *w, char *out, size_t size)
{
	int seen;

	for (;;) {
		seen = reply_calls(w);
		if (drain(s, out, size) < 0)
			return;
		ck_assert_msg(reply_wait_past(w, seen) > seen, "no wake within %d ms", WAIT_MS);
	}
}

/* The events of a job that waits in the queue behind another that holds
 * the only worker, so its cancel is the one change it makes; heartbeats
 * far away. */
typedef struct {
	octo_engine *engine;
	octo_api *api;
	char job[OCTO_JOB_ID_LEN + 1];
	octo_stream *s[2];
	reply w[2];           /* the wakes of each stream */
} finishing;

static void finishing_start(finishing *f)
{
	octo_engine_options eo = OCTO_ENGINE_OPTIONS_INIT;
	octo_api_options o = test_options();
	int64_t busy = 10001, queued = 10002;
	char path[96], text[4096], other[OCTO_JOB_ID_LEN + 1];
	octo_response *resp;
	int i;

	memset(f, 0, sizeof(*f));
	eo.workers = 1;
	ck_assert_int_eq(octo_engine_new(&f->engine, store, slow_processor, NULL, &eo), 0);
	ck_assert_int_eq(octo_engine_start(f->engine, NULL), 0);
	ck_assert_int_eq(octo_engine_submit(f->engine, &busy, 1, other), 0);
	ck_assert_int_eq(octo_engine_submit(f->engine, &queued, 1, f->job), 0);
	o.engine = f->engine;
	o.sse_heartbeat_ms = 600000;
	f->api = api_with(&o);
	snprintf(path, sizeof(path), "/v1/download/%s/events", f->job);
	for (i = 0; i < 2; i++) {
		reply_init(&f->w[i]);
		resp = call(f->api, "GET", path);
		ck_assert_int_eq(octo_response_status(resp), 200);
		ck_assert_int_eq(octo_response_take_stream(resp, &f->s[i]), 1);
		octo_response_free(resp);
		octo_stream_set_wake(f->s[i], on_wake, &f->w[i]);
		ck_assert_int_eq(drain(f->s[i], text, sizeof(text)), 0);
		ck_assert_ptr_nonnull(strstr(text, "event: queued\n"));
	}
}

static void finishing_end(finishing *f)
{
	int i;

	for (i = 0; i < 2; i++) {
		octo_stream_free(f->s[i]);
		reply_destroy(&f->w[i]);
	}
	octo_api_free(custom);
	custom = NULL;
	octo_engine_shutdown(f->engine, 0);
	octo_engine_free(f->engine);
}

/* Ending a stream costs about what sending it its event does: no stream
 * ends before every stream of the job has its terminal event. */
START_TEST(streams_of_a_finished_job_end_once_each_has_its_last_event)
{
	char text[4096];
	finishing f;

	finishing_start(&f);
	ck_assert_int_eq(octo_engine_cancel(f.engine, f.job), 0);
	/* Its event, and no end: the other stream has not had the event. */
	ck_assert_int_eq(drain(f.s[0], text, sizeof(text)), 0);
	ck_assert_ptr_nonnull(strstr(text, "event: cancelled\n"));
	ck_assert_int_eq(drain(f.s[1], text, sizeof(text)), 0);
	ck_assert_ptr_nonnull(strstr(text, "event: cancelled\n"));
	drain_to_end(f.s[0], &f.w[0], text, sizeof(text));
	ck_assert_str_eq(text, "");
	drain_to_end(f.s[1], &f.w[1], text, sizeof(text));
	ck_assert_str_eq(text, "");
	finishing_end(&f);
}
END_TEST

/* A client that does not read keeps its stream from sending: the others
 * end all the same, after a while. */
START_TEST(a_stream_that_never_takes_its_last_event_does_not_hold_the_others)
{
	char text[4096];
	finishing f;

	finishing_start(&f);
	ck_assert_int_eq(octo_engine_cancel(f.engine, f.job), 0);
	ck_assert_int_eq(drain(f.s[0], text, sizeof(text)), 0);
	ck_assert_ptr_nonnull(strstr(text, "event: cancelled\n"));
	drain_to_end(f.s[0], &f.w[0], text, sizeof(text));
	ck_assert_str_eq(text, "");
	/* The slow one still gets its event, then ends at once. */
	ck_assert_int_eq(drain(f.s[1], text, sizeof(text)), -1);
	ck_assert_ptr_nonnull(strstr(text, "event: cancelled\n"));
	finishing_end(&f);
}
END_TEST

START_TEST(a_stream_freed_before_its_last_event_lets_the_others_end)
{
	char text[4096];
	finishing f;

	finishing_start(&f);
	ck_assert_int_eq(octo_engine_cancel(f.engine, f.job), 0);
	ck_assert_int_eq(drain(f.s[0], text, sizeof(text)), 0);
	ck_assert_ptr_nonnull(strstr(text, "event: cancelled\n"));
	octo_stream_free(f.s[1]); /* its client went away */
	f.s[1] = NULL;
	drain_to_end(f.s[0], &f.w[0], text, sizeof(text));
	ck_assert_str_eq(text, "");
	finishing_end(&f);
}
END_TEST

START_TEST(shutdown_ends_a_stream_that_waits_for_the_others)
{
	char text[4096];
	finishing f;
	int seen;

	finishing_start(&f);
	ck_assert_int_eq(octo_engine_cancel(f.engine, f.job), 0);
	ck_assert_int_eq(drain(f.s[0], text, sizeof(text)), 0);
	ck_assert_ptr_nonnull(strstr(text, "event: cancelled\n"));
	seen = reply_calls(&f.w[0]);
	octo_api_shutdown(f.api);
	ck_assert_int_gt(reply_wait_past(&f.w[0], seen), seen);
	ck_assert_int_eq(drain(f.s[0], text, sizeof(text)), -1);
	ck_assert_str_eq(text, ""); /* its terminal event was its last */
	finishing_end(&f);
}
END_TEST

/* ---- the suite ------------------------------------------------------------------ */

static TCase *tcase(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return tc;
}

int main(void)
{
	Suite *s = suite_create("api");
	TCase *tc;

	tc = tcase(s, "root and health");
	tcase_add_test(tc, root_answers_with_a_message);
	tcase_add_test(tc, health_reports_healthy_storage);
	tcase_add_test(tc, health_reports_unhealthy_after_the_store_is_removed);
	tcase_add_test(tc, head_health_answers_like_get);
	tcase_add_test(tc, query_string_does_not_change_the_route);

	tc = tcase(s, "check");
	tcase_add_test(tc, check_reports_a_missing_file);
	tcase_add_test(tc, check_reports_a_stored_file_with_its_size);
	tcase_add_test(tc, check_reports_an_empty_file_as_available);
	tcase_add_test(tc, check_accepts_the_smallest_and_largest_file_id);

	tc = tcase(s, "initiate");
	tcase_add_test(tc, initiate_queues_a_job);
	tcase_add_test(tc, initiate_stores_the_job_record_first);
	tcase_add_test(tc, initiate_gives_every_job_its_own_id);
	tcase_add_test(tc, initiate_accepts_a_thousand_file_ids);
	tcase_add_test(tc, initiate_refuses_a_thousand_and_one_file_ids);
	tcase_add_test(tc, initiate_answers_503_when_storage_is_gone);

	tc = tcase(s, "start");
	tcase_add_test(tc, start_completes_a_stored_file_at_once);
	tcase_add_test(tc, start_fails_a_missing_file);
	tcase_add_test(tc, start_waits_at_least_the_minimum_delay);
	tcase_add_test(tc, start_returns_before_the_answer_is_ready);
	tcase_add_test(tc, start_refuses_bad_input_without_waiting);
	tcase_add_test(tc, waiting_starts_each_get_their_own_answer);

	tc = tcase(s, "shutdown");
	tcase_add_test(tc, shutdown_answers_a_waiting_start_with_503);
	tcase_add_test(tc, shutdown_answers_every_waiting_start);
	tcase_add_test(tc, start_after_shutdown_gets_503_at_once);
	tcase_add_test(tc, shutdown_answers_every_initiate_being_written_first);
	tcase_add_test(tc, shutdown_twice_is_harmless);
	tcase_add_test(tc, start_through_an_engine_after_shutdown_is_answered_at_once);
	tcase_add_test(tc, requests_that_do_not_wait_are_served_after_shutdown);
	tcase_add_test(tc, free_answers_a_waiting_start);

	tc = tcase(s, "streams of a finished job");
	tcase_add_test(tc, streams_of_a_finished_job_end_once_each_has_its_last_event);
	tcase_add_test(tc, a_stream_that_never_takes_its_last_event_does_not_hold_the_others);
	tcase_add_test(tc, a_stream_freed_before_its_last_event_lets_the_others_end);
	tcase_add_test(tc, shutdown_ends_a_stream_that_waits_for_the_others);

	tc = tcase(s, "validation");
	tcase_add_loop_test(tc, bad_file_id_bodies_get_400, 0, (int)COUNT(bad_file_id));
	tcase_add_loop_test(tc, bad_file_ids_bodies_get_400_and_store_nothing, 0,
	                    (int)COUNT(bad_file_ids));
	tcase_add_test(tc, deep_nesting_gets_400);
	tcase_add_test(tc, nesting_up_to_the_limit_is_accepted);
	tcase_add_test(tc, missing_body_gets_400);

	tc = tcase(s, "body size and media type");
	tcase_add_test(tc, max_body_reports_the_option);
	tcase_add_test(tc, body_over_the_limit_gets_413);
	tcase_add_test(tc, body_at_the_limit_is_accepted);
	tcase_add_test(tc, body_the_server_cut_short_gets_413);
	tcase_add_test(tc, post_without_content_type_gets_415);
	tcase_add_test(tc, post_with_another_content_type_gets_415);
	tcase_add_test(tc, json_content_type_with_parameters_is_accepted);
	tcase_add_test(tc, request_header_names_match_case_insensitively);

	tc = tcase(s, "routing");
	tcase_add_test(tc, unknown_path_gets_404);
	tcase_add_test(tc, hostile_path_still_gets_a_json_404);
	tcase_add_test(tc, get_on_a_post_route_gets_405_with_allow);
	tcase_add_test(tc, post_on_root_gets_405_with_allow);
	tcase_add_test(tc, options_on_a_route_gets_204_with_allowed_methods);
	tcase_add_test(tc, options_on_an_unknown_path_gets_404);
	tcase_add_test(tc, route_is_the_template_or_unmatched);

	tc = tcase(s, "common headers");
	tcase_add_loop_test(tc, every_response_carries_the_common_headers, 0, (int)COUNT(samples));
	tcase_add_test(tc, request_ids_are_fresh_per_request);
	tcase_add_test(tc, traceparent_is_continued_or_started);
	tcase_add_test(tc, metrics_are_served_only_with_a_registry);
	tcase_add_test(tc, sane_client_request_id_is_echoed);
	tcase_add_test(tc, unsafe_client_request_id_is_replaced);
	tcase_add_test(tc, response_accessors_agree);

	tc = tcase(s, "rate limiting");
	tcase_add_test(tc, requests_within_the_limit_count_down);
	tcase_add_test(tc, fourth_request_gets_429_with_retry_after);
	tcase_add_test(tc, another_client_is_not_limited);
	tcase_add_loop_test(tc, client_address_comes_through_trusted_proxies_only, 0,
	                    (int)COUNT(forwarding));
	tcase_add_test(tc, clients_behind_one_proxy_are_limited_apart);
	tcase_add_test(tc, health_is_not_counted);
	tcase_add_test(tc, zero_max_turns_rate_limiting_off);
	tcase_add_test(tc, concurrent_requests_are_counted_exactly);

	tc = tcase(s, "cors");
	tcase_add_test(tc, any_origin_is_allowed_with_star);
	tcase_add_test(tc, listed_origin_is_echoed_with_vary);
	tcase_add_test(tc, unlisted_origin_gets_no_allow_origin);
	tcase_add_test(tc, listed_origin_is_echoed_on_errors_and_preflight);

	tc = tcase(s, "download urls");
	tcase_add_test(tc, start_without_a_secret_gives_no_url_even_with_a_host);
	tcase_add_test(tc, start_with_a_secret_gives_a_signed_url_to_the_host);
	tcase_add_test(tc, signed_url_lives_url_ttl_s);
	tcase_add_test(tc, public_url_is_the_base_of_signed_urls);
	tcase_add_test(tc, missing_file_gets_no_url_with_a_secret);
	tcase_add_loop_test(tc, unsafe_host_gives_no_url, 0, (int)COUNT(unsafe_hosts));
	tcase_add_loop_test(tc, unsafe_host_does_not_matter_with_a_public_url, 0,
	                    (int)COUNT(unsafe_hosts));
	tcase_add_test(tc, host_of_255_bytes_is_used_and_256_is_not);
	tcase_add_test(tc, delayed_start_also_gets_a_signed_url);
	tcase_add_test(tc, new_copies_the_url_secret);
	tcase_add_test(tc, new_accepts_a_sixteen_byte_secret);
	tcase_add_test(tc, long_public_url_is_used_whole_or_refused);

	tc = tcase(s, "files");
	tcase_add_test(tc, signed_url_serves_the_stored_file);
	tcase_add_test(tc, signed_url_serves_an_empty_file);
	tcase_add_test(tc, head_on_a_signed_url_answers_200);
	tcase_add_loop_test(tc, tampered_url_gets_403, 0, TAMPER_CASES);
	tcase_add_test(tc, expired_url_gets_403);
	tcase_add_test(tc, valid_signature_for_a_missing_key_gets_404);
	tcase_add_test(tc, valid_signature_for_a_directory_gets_404);
	tcase_add_loop_test(tc, valid_signature_for_an_invalid_key_gets_403, 0,
	                    (int)COUNT(invalid_keys));
	tcase_add_test(tc, files_without_a_secret_get_403);
	tcase_add_test(tc, post_on_files_gets_405);
	tcase_add_test(tc, take_file_on_a_json_response_returns_0);
	tcase_add_test(tc, untaken_file_is_closed_by_free);

	tc = tcase(s, "health cache");
	tcase_add_test(tc, health_is_cached_for_health_cache_ms);
	tcase_add_test(tc, zero_health_cache_checks_every_time);
	tcase_add_test(tc, unhealthy_result_is_cached_too);

	tc = tcase(s, "life cycle");
	tcase_add_loop_test(tc, new_refuses_bad_options, 0, BAD_OPTION_CASES);
	tcase_add_test(tc, new_refuses_missing_arguments);
	tcase_add_test(tc, new_with_null_options_uses_the_defaults);
	tcase_add_test(tc, new_accepts_equal_min_and_max_delay);
	tcase_add_test(tc, new_copies_the_options);
	tcase_add_test(tc, handle_refuses_incomplete_requests);
	tcase_add_test(tc, free_functions_accept_null);
	return tu_run(s);
}
