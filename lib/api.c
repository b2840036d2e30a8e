/* The Octopus HTTP API: routing, validation, common headers, the
 * handlers, and the timer that answers the legacy /v1/download/start. */
#include "config.h"
#include "internal.h"
#include "ratelimit.h"
#include "store.h"
#include "events.h"

#include <octopus/api.h>
#include <octopus/json.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define FILE_ID_MIN 10000
#define FILE_ID_MAX 100000000
#define FILE_IDS_MAX 1000
#define REQUEST_ID_MAX 128

typedef struct {
	char *name;
	char *value;
} header;

struct octo_response {
	int status;
	char *body;
	size_t body_len;
	header *headers;
	size_t header_count;
	size_t header_cap;
	const char *route;
	char request_id[REQUEST_ID_MAX + 1];
	octo_trace trace;
	char client[INET6_ADDRSTRLEN]; /* resolved through trusted proxies; "" unknown */
	int failed;         /* an allocation failed while building it */
	int file_fd;        /* a file body instead of `body`, or -1 */
	uint64_t file_size;
	octo_stream *stream; /* an event stream instead of `body`, or NULL */
};

/* A /v1/download/start request waiting for its simulated delay. */
typedef struct pending {
	struct pending *next;
	uint64_t due_ms;
	uint64_t started_ms;
	int64_t file_id;
	char job_id[OCTO_JOB_ID_LEN + 1]; /* with an engine: the job to wait for */
	char base[300];  /* where locally signed URLs point, "" for none;
	                    holds "http://" + a Host or public_url (<= 255) */
	octo_response *resp;
	octo_api_done_cb done;
	void *payload;
} pending;

/* One entry of trusted_proxies: an address and how many leading bits
 * must match. */
typedef struct {
	int family;
	unsigned char addr[16];
	unsigned bits;
} proxy_net;

struct octo_api {
	octo_store *store;
	octo_api_options opts;
	char *cors_origins;
	unsigned char *url_secret;
	char *public_url;
	proxy_net *proxies;           /* TRUSTED_PROXIES, parsed */
	size_t proxy_count;
	octo__ratelimit *ratelimit;
	octo__events *events;         /* event streams, when there is an engine */
	pthread_mutex_t health_lock;  /* one storage check at a time */
	uint64_t health_checked_ms;   /* when the cached result was taken */
	int health_ok;                /* -1: nothing cached yet */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	unsigned submitting;          /* initiates whose job is being written */
	pthread_cond_t submits_idle;  /* submitting fell to 0 */
	pthread_t timer;
	int stopping;
	int timer_running;
	pending *queue; /* sorted by due_ms */
	struct rendered *rendered; /* STATUS_SLOTS statuses, by job id */
};

/* ---- responses -------------------------------------------------------- */

static octo_response *response_new(void)
{
	octo_response *r = calloc(1, sizeof(*r));

	if (r) {
		r->route = "unmatched";
		r->file_fd = -1;
	}
	return r;
}

void octo_response_free(octo_response *resp)
{
	size_t i;

	if (!resp)
		return;
	for (i = 0; i < resp->header_count; i++) {
		free(resp->headers[i].name);
		free(resp->headers[i].value);
	}
	free(resp->headers);
	free(resp->body);
	if (resp->file_fd >= 0)
		close(resp->file_fd);
	octo_stream_free(resp->stream);
	free(resp);
}

static void add_header(octo_response *r, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void add_header(octo_response *r, const char *name, const char *fmt, ...)
{
	char value[512];
	va_list ap;
	header *h;

	if (r->header_count == r->header_cap) {
		size_t cap = r->header_cap ? r->header_cap * 2 : 16;
		header *bigger = realloc(r->headers, cap * sizeof(*bigger));
		if (!bigger) {
			r->failed = 1;
			return;
		}
		r->headers = bigger;
		r->header_cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(value, sizeof(value), fmt, ap);
	va_end(ap);
	h = &r->headers[r->header_count];
	h->name = strdup(name);
	h->value = strdup(value);
	if (!h->name || !h->value) {
		free(h->name);
		free(h->value);
		r->failed = 1;
		return;
	}
	r->header_count++;
}

/* Takes the writer's text as the body. */
static void set_json(octo_response *r, int status, octo_json_writer *w)
{
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
	r->status = status;
	if (octo_json_writer_finish(w, &r->body, &r->body_len) < 0)
		r->failed = 1;
	add_header(r, "Content-Type", "application/json; charset=utf-8");
}

static void set_error(octo_response *r, int status, const char *error,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void set_error(octo_response *r, int status, const char *error,
                      const char *fmt, ...)
{
	char message[512];
	octo_json_writer *w;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	if (octo_json_writer_new(&w) < 0) {
		r->failed = 1;
		return;
	}
	octo_json_write_object_begin(w);
	octo_json_write_key(w, "error");
	octo_json_write_string(w, error);
	octo_json_write_key(w, "message");
	octo_json_write_string(w, message);
	octo_json_write_key(w, "requestId");
	octo_json_write_string(w, r->request_id);
	octo_json_write_object_end(w);
	set_json(r, status, w);
	octo_json_writer_free(w);
}

int octo_response_status(const octo_response *resp)
{
	return resp->status;
}

size_t octo_response_header_count(const octo_response *resp)
{
	return resp->header_count;
}

void octo_response_header(const octo_response *resp, size_t index,
                          const char **name, const char **value)
{
	*name = index < resp->header_count ? resp->headers[index].name : NULL;
	*value = index < resp->header_count ? resp->headers[index].value : NULL;
}

const char *octo_response_header_get(const octo_response *resp, const char *name)
{
	size_t i;

	for (i = 0; i < resp->header_count; i++)
		if (strcasecmp(resp->headers[i].name, name) == 0)
			return resp->headers[i].value;
	return NULL;
}

const char *octo_response_body(const octo_response *resp, size_t *len)
{
	if (len)
		*len = resp->body_len;
	return resp->body ? resp->body : "";
}

int octo_response_take_file(octo_response *resp, int *fd, uint64_t *size)
{
	if (resp->file_fd < 0)
		return 0;
	*fd = resp->file_fd;
	*size = resp->file_size;
	resp->file_fd = -1;
	return 1;
}

int octo_response_take_stream(octo_response *resp, octo_stream **out)
{
	if (!resp->stream)
		return 0;
	*out = resp->stream;
	resp->stream = NULL;
	return 1;
}

const char *octo_response_route(const octo_response *resp)
{
	return resp->route;
}

const char *octo_response_client(const octo_response *resp)
{
	return resp->client;
}

const char *octo_response_trace_id(const octo_response *resp)
{
	return resp->trace.trace_id;
}

const char *octo_response_request_id(const octo_response *resp)
{
	return resp->request_id;
}

/* ---- requests --------------------------------------------------------- */

static const char *request_header(const octo_request *req, const char *name)
{
	size_t i;

	for (i = 0; i < req->header_count; i++)
		if (req->headers[i].name && strcasecmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	return NULL;
}

/* A client's X-Request-ID is echoed only when it cannot inject anything
 * into headers or logs. */
static int request_id_sane(const char *id)
{
	size_t n = 0;

	if (!id)
		return 0;
	for (; id[n]; n++) {
		char c = id[n];
		if (n == REQUEST_ID_MAX ||
		    !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return n > 0;
}

/* RFC 9110: a field name is a token. */
static int field_name_ok(const char *name)
{
	if (!name || !*name)
		return 0;
	for (; *name; name++)
		if (!((*name >= 'a' && *name <= 'z') || (*name >= 'A' && *name <= 'Z') ||
		      (*name >= '0' && *name <= '9') || strchr("!#$%&'*+-.^_`|~", *name)))
			return 0;
	return 1;
}

/* A header that does not parse is refused, not read on: libmicrohttpd
 * 0.9.75 glues an obs-fold continuation line to the header's name
 * ("Idempotency-Key: k\r\n x" becomes a header "Idempotency-Keyx" with
 * value "k"), so the key would silently be lost and a retry would make a
 * second job. A second Content-Length, or one beside Transfer-Encoding,
 * frames the body two ways: a proxy in front may have read another
 * request than this one (request smuggling). Values are not judged here:
 * each is checked where it is used. */
static const char *malformed_header(const octo_request *req)
{
	const char *length = NULL;
	size_t i;

	for (i = 0; i < req->header_count; i++) {
		const octo_header *h = &req->headers[i];
		const char *value = h->value ? h->value : "";
		if (!field_name_ok(h->name))
			return h->name ? h->name : "";
		if (strcasecmp(h->name, "Content-Length") == 0) {
			if (length && strcmp(length, value) != 0)
				return h->name;
			length = value;
		}
	}
	if (length && request_header(req, "Transfer-Encoding"))
		return "Content-Length";
	return NULL;
}

static int content_type_json(const char *ct)
{
	static const char mime[] = "application/json";
	char next;

	if (!ct)
		return 0;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (strncasecmp(ct, mime, sizeof(mime) - 1) != 0)
		return 0;
	next = ct[sizeof(mime) - 1];
	return next == '\0' || next == ';' || next == ' ' || next == '\t';
}

/* Reads a file id; on failure fills `msg` with what is wrong with `field`. */
static int read_file_id(const octo_json_value *v, const char *field,
                        int64_t *out, char *msg, size_t size)
{
	if (!v) {
		snprintf(msg, size, "%s is required", field);
		return -1;
	}
	if (octo_json_int(v, out) < 0 || *out < FILE_ID_MIN || *out > FILE_ID_MAX) {
		snprintf(msg, size, "%s must be an integer between %d and %d",
		         field, FILE_ID_MIN, FILE_ID_MAX);
		return -1;
	}
	return 0;
}

static void object_key(int64_t file_id, char *out, size_t size)
{
	snprintf(out, size, "downloads/%" PRId64 ".zip", file_id);
}

/* ---- what every response carries --------------------------------------- */

static int origin_allowed(const octo_api *api, const char *origin, size_t len)
{
	const char *p = api->cors_origins;

	while (*p) {
		size_t n = strcspn(p, ",");
		if (n == len && strncmp(p, origin, len) == 0)
			return 1;
		p += n + (p[n] == ',');
	}
	return 0;
}

static void add_cors(const octo_api *api, const octo_request *req, octo_response *r)
{
	const char *origin = request_header(req, "Origin");

	if (strcmp(api->cors_origins, "*") == 0) {
		add_header(r, "Access-Control-Allow-Origin", "*");
	} else {
		add_header(r, "Vary", "Origin");
		if (!origin || !origin_allowed(api, origin, strlen(origin)))
			return;
		add_header(r, "Access-Control-Allow-Origin", "%s", origin);
	}
	add_header(r, "Access-Control-Expose-Headers",
	           "X-Request-ID, traceparent, RateLimit-Limit, RateLimit-Remaining, "
	           "RateLimit-Reset, Retry-After");
}

static void add_common_headers(const octo_api *api, const octo_request *req,
                               octo_response *r)
{
	char traceparent[OCTO_TRACEPARENT_LEN + 1];

	octo_trace_format(&r->trace, traceparent);
	add_header(r, "X-Request-ID", "%s", r->request_id);
	add_header(r, "traceparent", "%s", traceparent);
	add_header(r, "X-Content-Type-Options", "nosniff");
	add_header(r, "X-Frame-Options", "SAMEORIGIN");
	add_header(r, "Strict-Transport-Security", "max-age=31536000; includeSubDomains");
	add_header(r, "Referrer-Policy", "no-referrer");
	add_header(r, "Cache-Control", "no-store");
	add_cors(api, req, r);
}

/* Counts the request against its client; 0 when it may go on. /health is
 * neither counted nor refused: a prober sharing an address with a noisy
 * client must not see a healthy service as down. */
static int rate_limit(octo_api *api, const octo_request *req, octo_response *r)
{
	/* Probes and scrapes come from few addresses, often behind one. */
	int exempt = strcmp(req->path, "/health") == 0 || strcmp(req->path, "/metrics") == 0;
	octo__ratelimit_verdict v;

	if (!api->ratelimit)
		return 0;
	octo__ratelimit_hit(api->ratelimit, r->client[0] ? r->client : NULL,
	                    octo__monotonic_ms(), !exempt, &v);
	add_header(r, "RateLimit-Limit", "%" PRIu32, v.limit);
	add_header(r, "RateLimit-Remaining", "%" PRIu32, v.remaining);
	add_header(r, "RateLimit-Reset", "%" PRIu32, v.reset_s);
	if (v.allowed || exempt)
		return 0;
	add_header(r, "Retry-After", "%" PRIu32, v.reset_s);
	set_error(r, 429, "rate_limited",
	          "Too many requests: at most %" PRIu32 " per %" PRIu32 " ms; retry in %" PRIu32 " s",
	          v.limit, api->opts.rate_limit_window_ms, v.reset_s);
	return -1;
}

/* A response that failed for want of memory becomes a plain 500. */
static void finalize(octo_response *r)
{
	static const char fallback[] =
		"{\"error\":\"internal_error\",\"message\":\"Out of memory\",\"requestId\":null}";

	if (!r->failed)
		return;
	free(r->body);
	r->status = 500;
	r->body = strdup(fallback);
	r->body_len = r->body ? sizeof(fallback) - 1 : 0;
}

/* ---- handlers ----------------------------------------------------------- */

/* One request on its way through the API. */
typedef struct {
	octo_api *api;
	const octo_request *req;
	const octo_json_value *body; /* POST routes: the parsed JSON object */
	octo_response *resp;
	octo_api_done_cb done;
	void *payload;
	int deferred; /* the handler will call done later */
	char params[2][OCTO__UUID_LEN + 16]; /* {jobId}, {fileId} of the path */
} call;

static octo_json_writer *writer_or_fail(octo_response *r)
{
	octo_json_writer *w;

	if (octo_json_writer_new(&w) < 0) {
		r->failed = 1;
		return NULL;
	}
	octo_json_write_object_begin(w);
	return w;
}

static void finish_object(octo_response *r, int status, octo_json_writer *w)
{
	octo_json_write_object_end(w);
	set_json(r, status, w);
	octo_json_writer_free(w);
}

static void storage_error(octo_response *r, int rc)
{
	if (rc == OCTO_ENOSPC)
		set_error(r, 507, "insufficient_storage", "Storage is full; try again later");
	else
		set_error(r, 503, "storage_unavailable", "Storage is unavailable; try again later");
}

static void handle_root(call *c)
{
	octo_json_writer *w = writer_or_fail(c->resp);

	if (!w)
		return;
	octo_json_write_key(w, "message");
	octo_json_write_string(w, "Octopus download service");
	finish_object(c->resp, 200, w);
}

/* A compiled-in file as the body (the response frees its body). */
static void set_asset(octo_response *r, const char *type, const unsigned char *data,
                      size_t len)
{
	free(r->body);
	r->body_len = 0;
	if (!(r->body = malloc(len))) {
		r->failed = 1;
		return;
	}
	memcpy(r->body, data, len);
	r->body_len = len;
	r->status = 200;
	add_header(r, "Content-Type", "%s", type);
}

/* This API's OpenAPI document (lib/openapi.json). */
static void handle_openapi(call *c)
{
	set_asset(c->resp, "application/json; charset=utf-8", octo__openapi_json,
	          octo__openapi_json_len);
}

/* A reference page rendering /openapi (lib/docs.html). Gateways often
 * have no way out, so the page is self-contained, and the policy keeps
 * it to this origin and its own inline script and style. */
static void handle_docs(call *c)
{
	set_asset(c->resp, "text/html; charset=utf-8", octo__docs_html, octo__docs_html_len);
	add_header(c->resp, "Content-Security-Policy",
	           "default-src 'none'; connect-src 'self'; script-src 'unsafe-inline'; "
	           "style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; "
	           "form-action 'none'; frame-ancestors 'self'");
}

/* Prometheus scrapes this; without a registry there is nothing to show. */
static void handle_metrics(call *c)
{
	octo_response *r = c->resp;

	if (!c->api->opts.metrics) {
		set_error(r, 404, "not_found", "No metrics are kept here");
		return;
	}
	free(r->body);
	r->body = NULL;
	if (octo_metrics_render(c->api->opts.metrics, &r->body, &r->body_len) < 0) {
		set_error(r, 500, "internal_error", "Metrics could not be rendered");
		return;
	}
	r->status = 200;
	add_header(r, "Content-Type", OCTO_METRICS_CONTENT_TYPE);
}

/* The storage check behind /health, reused for health_cache_ms so that a
 * burst of probes costs the store one request. Callers arriving during a
 * check wait for it rather than starting their own. */
static int storage_ok(octo_api *api)
{
	uint64_t now;
	int ok;

	pthread_mutex_lock(&api->health_lock);
	now = octo__monotonic_ms();
	if (api->health_ok < 0 || now - api->health_checked_ms >= api->opts.health_cache_ms) {
		api->health_ok = octo_store_ping(api->store) == 0;
		api->health_checked_ms = octo__monotonic_ms();
	}
	ok = api->health_ok;
	pthread_mutex_unlock(&api->health_lock);
	return ok;
}

static void handle_health(call *c)
{
	int ok = storage_ok(c->api);
	octo_json_writer *w = writer_or_fail(c->resp);

	if (!w)
		return;
	octo_json_write_key(w, "status");
	octo_json_write_string(w, ok ? "healthy" : "unhealthy");
	octo_json_write_key(w, "checks");
	octo_json_write_object_begin(w);
	octo_json_write_key(w, "storage");
	octo_json_write_string(w, ok ? "ok" : "error");
	octo_json_write_object_end(w);
	finish_object(c->resp, ok ? 200 : 503, w);
}

static void write_int_or_null(octo_json_writer *w, const char *key, int present, int64_t n)
{
	octo_json_write_key(w, key);
	if (present)
		octo_json_write_int(w, n);
	else
		octo_json_write_null(w);
}

static void handle_check(call *c)
{
	char msg[128], key[64];
	octo_object_info info;
	octo_json_writer *w;
	int64_t file_id;
	int rc;

	if (read_file_id(octo_json_get(c->body, "file_id"), "file_id", &file_id,
	                 msg, sizeof(msg)) < 0) {
		set_error(c->resp, 400, "validation_error", "%s", msg);
		return;
	}
	object_key(file_id, key, sizeof(key));
	rc = octo_store_head(c->api->store, key, &info);
	if (rc < 0 && rc != OCTO_ENOTFOUND) {
		storage_error(c->resp, rc);
		return;
	}
	if (!(w = writer_or_fail(c->resp)))
		return;
	octo_json_write_key(w, "file_id");
	octo_json_write_int(w, file_id);
	octo_json_write_key(w, "available");
	octo_json_write_bool(w, rc == 0);
	octo_json_write_key(w, "s3Key");
	if (rc == 0)
		octo_json_write_string(w, key);
	else
		octo_json_write_null(w);
	write_int_or_null(w, "size", rc == 0, (int64_t)info.size);
	finish_object(c->resp, 200, w);
}

/* The durable job record, format version 1. */
static int write_job_record(octo_api *api, const char *job_id,
                            const octo_json_value *ids, const char *request_id)
{
	char key[80], ts[OCTO__TIMESTAMP_LEN + 1];
	octo_json_writer *w;
	char *text = NULL;
	size_t i, len;
	int64_t id;
	int rc;

	if ((rc = octo_json_writer_new(&w)) < 0)
		return rc;
	octo__timestamp(ts);
	octo_json_write_object_begin(w);
	octo_json_write_key(w, "version");
	octo_json_write_int(w, 1);
	octo_json_write_key(w, "jobId");
	octo_json_write_string(w, job_id);
	octo_json_write_key(w, "status");
	octo_json_write_string(w, "queued");
	octo_json_write_key(w, "createdAt");
	octo_json_write_string(w, ts);
	octo_json_write_key(w, "requestId");
	octo_json_write_string(w, request_id);
	octo_json_write_key(w, "fileIds");
	octo_json_write_array_begin(w);
	for (i = 0; i < octo_json_size(ids); i++) {
		octo_json_int(octo_json_at(ids, i), &id);
		octo_json_write_int(w, id);
	}
	octo_json_write_array_end(w);
	octo_json_write_object_end(w);
	rc = octo_json_writer_finish(w, &text, &len);
	octo_json_writer_free(w);
	if (rc < 0)
		return rc;
	snprintf(key, sizeof(key), "jobs/%s.json", job_id);
	rc = octo_store_put(api->store, key, text, len);
	free(text);
	return rc;
}

static int validate_file_ids(const octo_json_value *ids, char *msg, size_t size)
{
	char field[32];
	int64_t id;
	size_t i, n;

	if (!ids) {
		snprintf(msg, size, "file_ids is required");
		return -1;
	}
	n = octo_json_size(ids);
	if (octo_json_typeof(ids) != OCTO_JSON_ARRAY || n < 1 || n > FILE_IDS_MAX) {
		snprintf(msg, size, "file_ids must be an array of 1 to %d file ids", FILE_IDS_MAX);
		return -1;
	}
	for (i = 0; i < n; i++) {
		snprintf(field, sizeof(field), "file_ids[%zu]", i);
		if (read_file_id(octo_json_at(ids, i), field, &id, msg, size) < 0)
			return -1;
	}
	return 0;
}

/* "a.b.c.d[/n]" or "v6[/n]". */
static int parse_net(const char *text, size_t len, proxy_net *out)
{
	char buf[64], *slash, *end;
	unsigned max;
	long bits;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, text, len);
	buf[len] = '\0';
	if ((slash = strchr(buf, '/')) != NULL)
		*slash = '\0';
	if (inet_pton(AF_INET, buf, out->addr) == 1)
		out->family = AF_INET, max = 32;
	else if (inet_pton(AF_INET6, buf, out->addr) == 1)
		out->family = AF_INET6, max = 128;
	else
		return -1;
	bits = max;
	if (slash && ((bits = strtol(slash + 1, &end, 10)) < 0 || bits > (long)max ||
	              *end != '\0' || end == slash + 1))
		return -1;
	out->bits = (unsigned)bits;
	return 0;
}

static int parse_proxies(octo_api *api, const char *list)
{
	const char *p = list;

	while (*p) {
		size_t n;
		while (*p == ',' || *p == ' ')
			p++;
		n = strcspn(p, ", ");
		if (n == 0)
			break;
		proxy_net *bigger = realloc(api->proxies, (api->proxy_count + 1) * sizeof(*bigger));
		if (!bigger)
			return octo__error(OCTO_ENOMEM, "out of memory");
		api->proxies = bigger;
		if (parse_net(p, n, &api->proxies[api->proxy_count]) < 0)
			return octo__error(OCTO_EINVAL, "trusted_proxies: \"%.*s\" is no address "
			                                "or network", (int)(n > 60 ? 60 : n), p);
		api->proxy_count++;
		p += n;
	}
	return 0;
}

static int in_net(const proxy_net *net, const unsigned char *addr, int family)
{
	unsigned full = net->bits / 8, rest = net->bits % 8;

	if (net->family != family || memcmp(net->addr, addr, full) != 0)
		return 0;
	return rest == 0 || ((net->addr[full] ^ addr[full]) & (0xff00 >> rest) & 0xff) == 0;
}

/* An address written as text; its family, or 0 when it is none. */
static int parse_addr(const char *text, size_t len, unsigned char addr[16])
{
	char buf[INET6_ADDRSTRLEN];

	if (len == 0 || len >= sizeof(buf))
		return 0;
	memcpy(buf, text, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, addr) == 1)
		return AF_INET;
	return inet_pton(AF_INET6, buf, addr) == 1 ? AF_INET6 : 0;
}

static int trusted(const octo_api *api, const unsigned char *addr, int family)
{
	size_t i;

	for (i = 0; i < api->proxy_count; i++)
		if (in_net(&api->proxies[i], addr, family))
			return 1;
	return 0;
}

static int peer_trusted(const octo_api *api, const octo_request *req)
{
	unsigned char addr[16];
	int family = req->client ? parse_addr(req->client, strlen(req->client), addr) : 0;

	return family && trusted(api, addr, family);
}

/* Steps through one X-Forwarded-For value from its right end. Returns 1
 * when an untrusted address ended the walk (it is in `out`), 0 to go on
 * with the header before, -1 when an entry is no address. */
static int walk_forwarded(const octo_api *api, const char *value, char *out, size_t size)
{
	size_t end = strlen(value);

	while (end > 0) {
		unsigned char addr[16];
		size_t begin = end, start, len;
		int family;
		while (begin > 0 && value[begin - 1] != ',')
			begin--;
		for (start = begin, len = end - begin; len > 0 && value[start] == ' '; start++)
			len--;
		while (len > 0 && value[start + len - 1] == ' ')
			len--;
		if (!(family = parse_addr(value + start, len, addr)))
			return -1;
		inet_ntop(family, addr, out, (socklen_t)size); /* canonical, nothing injected */
		if (!trusted(api, addr, family))
			return 1;
		end = begin > 0 ? begin - 1 : 0; /* before the comma */
	}
	return 0;
}

/* The client's address, for rate limiting and logs: the peer's own, or
 * when the peer is a trusted proxy, the nearest X-Forwarded-For address
 * that is not a trusted proxy. The list is read from the right: only
 * proxies we trust wrote what lies right of that address, while anything
 * left of it the client may have made up. */
static void resolve_client(const octo_api *api, const octo_request *req, char *out,
                           size_t size)
{
	size_t i = req->header_count;

	snprintf(out, size, "%s", req->client ? req->client : "");
	if (!peer_trusted(api, req))
		return;
	while (i-- > 0) {
		const octo_header *h = &req->headers[i];
		if (h->name && h->value && strcasecmp(h->name, "X-Forwarded-For") == 0 &&
		    walk_forwarded(api, h->value, out, size) != 0)
			return;
	}
}

/* Who the request is for, for the per-client cap: the X-Client-ID a
 * trusted proxy passed on, else the client's address. */
static const char *client_identity(const octo_api *api, const octo_request *req,
                                   const octo_response *resp)
{
	const char *id = request_header(req, "X-Client-ID");

	if (id && request_id_sane(id) && strlen(id) <= 64 && peer_trusted(api, req))
		return id;
	return resp->client[0] ? resp->client : NULL;
}

/* Seconds until a client's work is likely done: the files ahead of it and
 * its own, spread over the workers, at the median time of recent files. */
static uint32_t retry_after_s(const octo_api *api, size_t own_files)
{
	uint32_t median_ms;
	unsigned workers;
	size_t queued;
	uint64_t s;

	octo_engine_stats(api->opts.engine, &queued, &median_ms, &workers);
	if (median_ms == 0)
		median_ms = 2000; /* nothing measured yet */
	s = ((uint64_t)(queued + own_files) * median_ms / (workers ? workers : 1) + 999) / 1000;
	return s < 1 ? 1 : s > 3600 ? 3600 : (uint32_t)s;
}

/* The job's status now, copied to `out`. */
static void job_status_name(octo_api *api, const char *job_id, char *out, size_t size)
{
	octo_json *doc = NULL;
	const char *status = NULL;
	char *text = NULL;

	snprintf(out, size, "queued");
	if (octo_engine_snapshot(api->opts.engine, job_id, &text) == 0 &&
	    octo_json_parse(&doc, text, strlen(text)) == 0 &&
	    octo_json_string(octo_json_get(octo_json_root(doc), "status"), &status) == 0)
		snprintf(out, size, "%s", status);
	octo_json_free(doc);
	octo_free(text);
}

/* The answer to a submit of `n` files that ended with `rc`. */
static void answer_submit(octo_api *api, octo_response *resp, int rc, const char *job_id,
                          size_t n)
{
	octo_json_writer *w;
	char status[32];

	if (rc == OCTO_EINVAL || rc == OCTO_ECONFLICT) {
		set_error(resp, rc == OCTO_EINVAL ? 400 : 409,
		          rc == OCTO_EINVAL ? "validation_error" : "conflict", "%s", octo_error_last());
		return;
	}
	if (rc == OCTO_EBUSY || rc == OCTO_ESHUTDOWN) {
		add_header(resp, "Retry-After", "%" PRIu32, retry_after_s(api, n));
		set_error(resp, 503, rc == OCTO_EBUSY ? "busy" : "shutting_down",
		          rc == OCTO_EBUSY ? "%s; retry later" : "The service is shutting down",
		          octo_error_last());
		return;
	}
	if (rc < 0) {
		storage_error(resp, rc);
		return;
	}
	if (!(w = writer_or_fail(resp)))
		return;
	add_header(resp, "Location", "/v1/download/status/%s", job_id);
	add_header(resp, "Retry-After", "%" PRIu32, retry_after_s(api, 0));
	octo_json_write_key(w, "jobId");
	octo_json_write_string(w, job_id);
	octo_json_write_key(w, "status");
	/* A replayed Idempotency-Key answers with the job as it is now. */
	if (rc == 1)
		job_status_name(api, job_id, status, sizeof(status));
	octo_json_write_string(w, rc == 1 ? status : "queued");
	octo_json_write_key(w, "totalFileIds");
	octo_json_write_int(w, (int64_t)n);
	finish_object(resp, 202, w);
}

/* An initiate whose job is being written: answered once it is, so the
 * server's thread serves others meanwhile. */
typedef struct {
	octo_api *api;
	octo_response *resp;
	octo_api_done_cb done;
	void *payload;
	size_t files;
} submit_call;

static void submit_ended(octo_api *api)
{
	pthread_mutex_lock(&api->lock);
	if (--api->submitting == 0)
		pthread_cond_broadcast(&api->submits_idle);
	pthread_mutex_unlock(&api->lock);
}

static void submitted(int rc, const char *job_id, void *payload)
{
	submit_call *s = payload;
	octo_api *api = s->api;

	answer_submit(api, s->resp, rc, job_id, s->files);
	finalize(s->resp);
	s->done(s->resp, s->payload);
	free(s);
	submit_ended(api); /* last: shutdown waits for this */
}

static void submit_job(call *c, const octo_json_value *ids)
{
	const octo_json_value *callback = octo_json_get(c->body, "callbackUrl");
	octo_job_options jopts = OCTO_JOB_OPTIONS_INIT;
	int64_t list[FILE_IDS_MAX];
	size_t i, n = octo_json_size(ids);
	octo_api *api = c->api;
	submit_call *s;
	int rc, stopping;

	if (callback && octo_json_typeof(callback) != OCTO_JSON_NULL &&
	    octo_json_string(callback, &jopts.callback_url) < 0) {
		set_error(c->resp, 400, "validation_error", "callbackUrl must be a string");
		return;
	}
	jopts.idempotency_key = request_header(c->req, "Idempotency-Key");
	jopts.client = client_identity(api, c->req, c->resp);
	for (i = 0; i < n; i++)
		octo_json_int(octo_json_at(ids, i), &list[i]);
	if (!(s = malloc(sizeof(*s)))) {
		c->resp->failed = 1;
		return;
	}
	*s = (submit_call){ api, c->resp, c->done, c->payload, n };
	pthread_mutex_lock(&api->lock);
	stopping = api->stopping;
	if (!stopping)
		api->submitting++;
	pthread_mutex_unlock(&api->lock);
	if (stopping) {
		free(s);
		answer_submit(api, c->resp, octo__error(OCTO_ESHUTDOWN, "shutting down"), NULL, n);
		return;
	}
	c->deferred = 1; /* before: the answer may come before the call returns */
	if ((rc = octo_engine_submit_async(api->opts.engine, list, n, &jopts, submitted, s)) < 0) {
		c->deferred = 0;
		free(s);
		submit_ended(api);
		answer_submit(api, c->resp, rc, NULL, n);
	}
}

static void handle_initiate(call *c)
{
	const octo_json_value *ids = octo_json_get(c->body, "file_ids");
	char msg[128], job_id[OCTO__UUID_LEN + 1];
	octo_json_writer *w;
	int rc;

	if (validate_file_ids(ids, msg, sizeof(msg)) < 0) {
		set_error(c->resp, 400, "validation_error", "%s", msg);
		return;
	}
	if (c->api->opts.engine) {
		submit_job(c, ids);
		return;
	}
	if (octo__uuid4(job_id) < 0) {
		c->resp->failed = 1;
		return;
	}
	/* The reply promises the job exists: persist it first. */
	if ((rc = write_job_record(c->api, job_id, ids, c->resp->request_id)) < 0) {
		storage_error(c->resp, rc);
		return;
	}
	if (!(w = writer_or_fail(c->resp)))
		return;
	octo_json_write_key(w, "jobId");
	octo_json_write_string(w, job_id);
	octo_json_write_key(w, "status");
	octo_json_write_string(w, "queued");
	octo_json_write_key(w, "totalFileIds");
	octo_json_write_int(w, (int64_t)octo_json_size(ids));
	finish_object(c->resp, 202, w);
}

/* ---- download URLs ------------------------------------------------------ */

#define FILES_PREFIX "/v1/files/"
#define PUBLIC_URL_MAX 255 /* like a Host: URLs built on it stay bounded */
#define SIGNATURE_HEX (2 * 32)

/* HMAC-SHA256 over "<key>\n<expires>", in hex. */
static int url_signature(const octo_api *api, const char *key, int64_t expires,
                         char out[SIGNATURE_HEX + 1])
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0, i;
	char msg[OCTO_STORE_KEY_MAX + 32];
	int n = snprintf(msg, sizeof(msg), "%s\n%" PRId64, key, expires);

	if (n < 0 || (size_t)n >= sizeof(msg) ||
	    !HMAC(EVP_sha256(), api->url_secret, (int)api->opts.url_secret_len,
	          (const unsigned char *)msg, (size_t)n, mac, &mac_len) || mac_len != 32)
		return -1;
	for (i = 0; i < mac_len; i++)
		snprintf(out + 2 * i, 3, "%02x", mac[i]);
	return 0;
}

/* The scheme://host the client used, for URLs it can follow back. Only a
 * Host made of host-name characters is echoed. */
static int base_url(const octo_api *api, const octo_request *req, char *out, size_t size)
{
	const char *host = request_header(req, "Host");
	size_t i;

	if (api->public_url) {
		int n = snprintf(out, size, "%s", api->public_url);
		return n >= 0 && (size_t)n < size ? 0 : -1;
	}
	if (!host || !*host || strlen(host) > 255)
		return -1;
	for (i = 0; host[i]; i++) {
		char c = host[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == ':' || c == '[' || c == ']'))
			return -1;
	}
	snprintf(out, size, "http://%s", host);
	return 0;
}

/* A time-limited URL for `key`: presigned by the store when it can, else
 * signed here for GET /v1/files/. NULL when neither is possible. */
static char *download_url(const octo_api *api, const char *base, const char *key)
{
	char sig[SIGNATURE_HEX + 1], *url = NULL;
	int64_t expires = (int64_t)time(NULL) + api->opts.url_ttl_s;
	size_t size;

	if (octo_store_presign(api->store, key, api->opts.url_ttl_s, &url) == 0)
		return url;
	if (!api->url_secret || !base || url_signature(api, key, expires, sig) < 0)
		return NULL;
	size = strlen(base) + strlen(key) + 128;
	if ((url = malloc(size)) != NULL)
		snprintf(url, size, "%s" FILES_PREFIX "%s?expires=%" PRId64 "&signature=%s",
		         base, key, expires, sig);
	return url;
}

/* The value of `name` in a raw query string, copied to `out`. */
static int query_param(const char *query, const char *name, char *out, size_t size)
{
	size_t n = strlen(name);

	while (query && *query) {
		size_t len = strcspn(query, "&");
		if (len > n && strncmp(query, name, n) == 0 && query[n] == '=') {
			if (len - n - 1 >= size)
				return -1;
			memcpy(out, query + n + 1, len - n - 1);
			out[len - n - 1] = '\0';
			return 0;
		}
		query += len + (query[len] == '&');
	}
	return -1;
}

/* GET /v1/files/<key>?expires=E&signature=S: serves a stored file to
 * whoever holds an unexpired URL this API signed. */
static void handle_file(call *c)
{
	const char *key = c->req->path + strlen(FILES_PREFIX);
	char expires_text[24], given[SIGNATURE_HEX + 2], want[SIGNATURE_HEX + 1], *end;
	octo_object_info info;
	long long expires;
	int fd, rc;

	if (!c->api->url_secret || !octo_store_key_valid(key) ||
	    query_param(c->req->query, "expires", expires_text, sizeof(expires_text)) < 0 ||
	    query_param(c->req->query, "signature", given, sizeof(given)) < 0 ||
	    strlen(given) != SIGNATURE_HEX ||
	    (expires = strtoll(expires_text, &end, 10), *end != '\0' || end == expires_text) ||
	    url_signature(c->api, key, expires, want) < 0 ||
	    CRYPTO_memcmp(given, want, SIGNATURE_HEX) != 0) {
		set_error(c->resp, 403, "forbidden", "The download URL is invalid");
		return;
	}
	if (expires < (long long)time(NULL)) {
		set_error(c->resp, 403, "forbidden", "The download URL has expired");
		return;
	}
	rc = octo__store_open_object(c->api->store, key, &fd, &info);
	if (rc == OCTO_ENOTFOUND) {
		set_error(c->resp, 404, "not_found", "No such file");
		return;
	}
	if (rc < 0) {
		storage_error(c->resp, rc);
		return;
	}
	c->resp->status = 200;
	c->resp->file_fd = fd;
	c->resp->file_size = info.size;
	add_header(c->resp, "Content-Type", "application/octet-stream");
	add_header(c->resp, "Content-Disposition", "attachment; filename=\"%s\"",
	           strrchr(key, '/') ? strrchr(key, '/') + 1 : key);
	add_header(c->resp, "ETag", "\"%s\"", info.etag);
}

/* Looks the file up and writes the legacy /v1/download/start answer.
 * `base` is where locally signed URLs point (NULL: none). */
static void complete_start(octo_api *api, int64_t file_id, uint64_t started_ms,
                           const char *base, octo_response *r)
{
	char key[64], *url = NULL;
	octo_object_info info;
	octo_json_writer *w;
	int rc;

	object_key(file_id, key, sizeof(key));
	rc = octo_store_head(api->store, key, &info);
	if (rc < 0 && rc != OCTO_ENOTFOUND) {
		storage_error(r, rc);
		return;
	}
	if (rc == 0)
		url = download_url(api, base, key);
	if (!(w = writer_or_fail(r))) {
		free(url);
		return;
	}
	octo_json_write_key(w, "file_id");
	octo_json_write_int(w, file_id);
	octo_json_write_key(w, "status");
	octo_json_write_string(w, rc == 0 ? "completed" : "failed");
	octo_json_write_key(w, "downloadUrl");
	if (url)
		octo_json_write_string(w, url);
	else
		octo_json_write_null(w);
	write_int_or_null(w, "size", rc == 0, (int64_t)info.size);
	octo_json_write_key(w, "processingTimeMs");
	octo_json_write_int(w, (int64_t)(octo__monotonic_ms() - started_ms));
	octo_json_write_key(w, "message");
	octo_json_write_string(w, rc != 0 ? "File not found in storage"
	                          : url ? "Download ready"
	                                : "File is ready in storage; no download URL can be made");
	finish_object(r, 200, w);
	free(url);
}

/* ---- jobs --------------------------------------------------------------- */


/* The engine's snapshot of the job in c->params[0], parsed; or an error
 * response and NULL. */
static octo_json *load_snapshot(call *c)
{
	octo_json *doc = NULL;
	char *text = NULL;
	int rc;

	if (!c->api->opts.engine) {
		set_error(c->resp, 404, "not_found", "Jobs are not served here");
		return NULL;
	}
	if (!octo__uuid_shaped(c->params[0])) {
		set_error(c->resp, 400, "validation_error", "jobId must be a UUID");
		return NULL;
	}
	rc = octo_engine_snapshot(c->api->opts.engine, c->params[0], &text);
	if (rc == OCTO_ENOTFOUND) {
		set_error(c->resp, 404, "not_found", "No job %s", c->params[0]);
		return NULL;
	}
	if (rc < 0 || octo_json_parse(&doc, text, strlen(text)) < 0)
		c->resp->failed = 1;
	octo_free(text);
	return doc;
}

static void copy_member(octo_json_writer *w, const octo_json_value *obj, const char *key)
{
	const octo_json_value *v = octo_json_get(obj, key);
	const char *str;
	int64_t n;

	octo_json_write_key(w, key);
	if (octo_json_int(v, &n) == 0)
		octo_json_write_int(w, n);
	else if (octo_json_string(v, &str) == 0)
		octo_json_write_string(w, str);
	else
		octo_json_write_null(w);
}

static void write_fraction(octo_json_writer *w, const octo_json_value *obj)
{
	int64_t thousandths = 0;

	octo_json_int(octo_json_get(obj, "progress"), &thousandths);
	octo_json_write_key(w, "progress");
	octo_json_write_double(w, (double)thousandths / 1000.0);
}

/* One file of a status: a completed file gets a URL signed now, so a URL
 * read from a status is never stale, with its expiry beside it. */
static void write_status_file(octo_api *api, octo_json_writer *w, const char *base,
                              const octo_json_value *f)
{
	const char *state = "";
	char key[64], expires[OCTO__TIMESTAMP_LEN + 1] = "", *url = NULL;
	int64_t file_id = 0;

	octo_json_int(octo_json_get(f, "file_id"), &file_id);
	octo_json_string(octo_json_get(f, "status"), &state);
	if (strcmp(state, "completed") == 0) {
		object_key(file_id, key, sizeof(key));
		url = download_url(api, base, key);
		octo__timestamp_after(api->opts.url_ttl_s, expires);
	}
	octo_json_write_object_begin(w);
	copy_member(w, f, "file_id");
	copy_member(w, f, "status");
	write_fraction(w, f);
	copy_member(w, f, "attempts");
	octo_json_write_key(w, "downloadUrl");
	if (url)
		octo_json_write_string(w, url);
	else
		octo_json_write_null(w);
	octo_json_write_key(w, "expiresAt");
	if (url)
		octo_json_write_string(w, expires);
	else
		octo_json_write_null(w);
	copy_member(w, f, "size");
	copy_member(w, f, "error");
	octo_json_write_object_end(w);
	free(url);
}

/* "callbackUrl" and "webhook":{"attempts","delivered","lastError"}. */
static void write_webhook(octo_json_writer *w, const octo_json_value *root)
{
	const octo_json_value *wh = octo_json_get(root, "webhook");
	int delivered = 0;

	copy_member(w, root, "callbackUrl");
	octo_json_write_key(w, "webhook");
	octo_json_write_object_begin(w);
	copy_member(w, wh, "attempts");
	octo_json_bool(octo_json_get(wh, "delivered"), &delivered);
	octo_json_write_key(w, "delivered");
	octo_json_write_bool(w, delivered);
	copy_member(w, wh, "lastError");
	octo_json_write_object_end(w);
}

/* The members of a job status, from the engine's snapshot `root`. */
static void write_status_members(octo_api *api, const char *base, const octo_json_value *root,
                                 octo_json_writer *w)
{
	static const char *const counts[] = { "jobId", "status", "totalFileIds",
	                                      "completedFileIds", "failedFileIds" };
	const octo_json_value *files = octo_json_get(root, "files");
	size_t i;

	for (i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
		copy_member(w, root, counts[i]);
	write_fraction(w, root);
	octo_json_write_key(w, "files");
	octo_json_write_array_begin(w);
	for (i = 0; i < octo_json_size(files); i++)
		write_status_file(api, w, base, octo_json_at(files, i));
	octo_json_write_array_end(w);
	if (octo_json_get(root, "callbackUrl"))
		write_webhook(w, root);
	copy_member(w, root, "createdAt");
	copy_member(w, root, "updatedAt");
}

/* ---- rendered statuses ---------------------------------------------------
 *
 * Rendering a status (the snapshot parsed back, each ready file's URL
 * signed) was most of the cost of GET status and of each event sent to
 * a stream. Within one second, a job at one seq renders the same for one
 * base URL (URL expiry has a resolution of a second), so the last
 * rendering of each job is kept and copied until one of those changes. */

#define STATUS_SLOTS 1024

struct rendered {
	pthread_mutex_t lock;
	char job_id[OCTO_JOB_ID_LEN + 1];
	uint64_t seq;
	time_t second;
	char base[300];
	char *text;
	size_t len;
	int finished;
};

static int init_rendered(octo_api *api)
{
	size_t i;

	if (!(api->rendered = calloc(STATUS_SLOTS, sizeof(*api->rendered))))
		return octo__error(OCTO_ENOMEM, "out of memory");
	for (i = 0; i < STATUS_SLOTS; i++)
		pthread_mutex_init(&api->rendered[i].lock, NULL);
	return 0;
}

static void free_rendered(octo_api *api)
{
	size_t i;

	for (i = 0; api->rendered && i < STATUS_SLOTS; i++) {
		pthread_mutex_destroy(&api->rendered[i].lock);
		free(api->rendered[i].text);
	}
	free(api->rendered);
}

/* Job ids are random: their first hex digits spread them over the slots. */
static struct rendered *slot_of(octo_api *api, const char *job_id)
{
	char head[4] = { job_id[0], job_id[1], job_id[2], '\0' };

	return &api->rendered[strtoul(head, NULL, 16) % STATUS_SLOTS];
}

static int is_final(const char *status)
{
	return strcmp(status, "completed") == 0 || strcmp(status, "partial") == 0 ||
	       strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0;
}

/* Renders a status from the engine's snapshot. */
static int render_status(octo_api *api, const char *job_id, const char *base, char **text,
                         size_t *len, uint64_t *seq, int *finished)
{
	const char *status = "";
	octo_json_writer *w = NULL;
	octo_json *doc = NULL;
	char *snapshot = NULL;
	int64_t n = 0;
	int rc;

	if ((rc = octo_engine_snapshot(api->opts.engine, job_id, &snapshot)) < 0 ||
	    (rc = octo_json_parse(&doc, snapshot, strlen(snapshot))) < 0 ||
	    (rc = octo_json_writer_new(&w)) < 0)
		goto out;
	octo_json_int(octo_json_get(octo_json_root(doc), "seq"), &n);
	octo_json_string(octo_json_get(octo_json_root(doc), "status"), &status);
	*seq = (uint64_t)n;
	*finished = is_final(status);
	octo_json_write_object_begin(w);
	write_status_members(api, base, octo_json_root(doc), w);
	octo_json_write_object_end(w);
	rc = octo_json_writer_finish(w, text, len);
out:
	octo_json_writer_free(w);
	octo_json_free(doc);
	octo_free(snapshot);
	return rc;
}

static char *copy_text(const char *text, size_t len)
{
	char *copy = malloc(len + 1);

	if (copy)
		memcpy(copy, text, len + 1);
	return copy;
}

/* A job's status as GET status shows it, in *text (the caller frees it),
 * rendered again only when the job, the second or the base URL changed.
 * OCTO_ENOTFOUND when there is no such job. */
static int status_text(octo_api *api, const char *job_id, const char *base, char **text,
                       size_t *len, uint64_t *seq, int *finished)
{
	struct rendered *r = slot_of(api, job_id);
	time_t now = time(NULL);
	uint64_t current;
	int rc, cached = octo_engine_seq(api->opts.engine, job_id, &current) == 0;

	if (!base)
		base = "";
	if (cached) {
		pthread_mutex_lock(&r->lock);
		if (r->text && r->seq == current && r->second == now &&
		    strcmp(r->job_id, job_id) == 0 && strcmp(r->base, base) == 0) {
			*text = copy_text(r->text, r->len);
			*len = r->len;
			*seq = r->seq;
			*finished = r->finished;
			pthread_mutex_unlock(&r->lock);
			return *text ? 0 : octo__error(OCTO_ENOMEM, "out of memory");
		}
		pthread_mutex_unlock(&r->lock);
	}
	/* Jobs of other replicas (read from the store) are not kept. */
	if ((rc = render_status(api, job_id, base[0] ? base : NULL, text, len, seq, finished)) < 0 ||
	    !cached || strlen(base) >= sizeof(r->base))
		return rc;
	pthread_mutex_lock(&r->lock);
	free(r->text);
	if ((r->text = copy_text(*text, *len)) != NULL) {
		snprintf(r->job_id, sizeof(r->job_id), "%s", job_id);
		snprintf(r->base, sizeof(r->base), "%s", base);
		r->seq = *seq;
		r->second = now;
		r->len = *len;
		r->finished = *finished;
	}
	pthread_mutex_unlock(&r->lock);
	return 0;
}

/* Answers with the job's status (GET status, and DELETE after cancelling). */
static void answer_status(call *c)
{
	char base[300], *text;
	uint64_t seq;
	size_t len;
	int finished, rc;

	if (!c->api->opts.engine) {
		set_error(c->resp, 404, "not_found", "Jobs are not served here");
		return;
	}
	if (!octo__uuid_shaped(c->params[0])) {
		set_error(c->resp, 400, "validation_error", "jobId must be a UUID");
		return;
	}
	if (base_url(c->api, c->req, base, sizeof(base)) < 0)
		base[0] = '\0';
	rc = status_text(c->api, c->params[0], base, &text, &len, &seq, &finished);
	if (rc == OCTO_ENOTFOUND) {
		set_error(c->resp, 404, "not_found", "No job %s", c->params[0]);
	} else if (rc < 0) {
		c->resp->failed = 1;
	} else {
		free(c->resp->body);
		c->resp->body = text;
		c->resp->body_len = len;
		c->resp->status = 200;
		add_header(c->resp, "Content-Type", "application/json; charset=utf-8");
	}
}

static void handle_status(call *c)
{
	answer_status(c);
}

static void handle_cancel(call *c)
{
	if (c->api->opts.engine && octo__uuid_shaped(c->params[0]) &&
	    octo_engine_cancel(c->api->opts.engine, c->params[0]) < 0 &&
	    octo_error_last()[0] && strstr(octo_error_last(), "no job") == NULL) {
		storage_error(c->resp, OCTO_EIO);
		return;
	}
	answer_status(c);
}

/* 302 to a fresh URL of one file of a job, once it is ready. */
static void handle_job_file(call *c)
{
	const octo_json_value *files, *f;
	char *end, key[64], base[300], *url;
	const char *state = "";
	long long file_id = strtoll(c->params[1], &end, 10);
	octo_json *doc = load_snapshot(c);
	int64_t id;
	size_t i;

	if (!doc)
		return;
	files = octo_json_get(octo_json_root(doc), "files");
	for (i = 0, f = NULL; i < octo_json_size(files); i++)
		if (octo_json_int(octo_json_get(octo_json_at(files, i), "file_id"), &id) == 0 &&
		    *end == '\0' && id == file_id)
			f = octo_json_at(files, i);
	octo_json_string(octo_json_get(f, "status"), &state);
	if (!f) {
		set_error(c->resp, 404, "not_found", "Job %s has no file %.20s", c->params[0],
		          c->params[1]);
	} else if (strcmp(state, "completed") != 0) {
		set_error(c->resp, 409, "not_ready", "File %lld is %s, not ready", file_id, state);
	} else {
		object_key(file_id, key, sizeof(key));
		if (base_url(c->api, c->req, base, sizeof(base)) < 0)
			base[0] = '\0';
		if (!(url = download_url(c->api, base[0] ? base : NULL, key))) {
			set_error(c->resp, 503, "storage_unavailable", "No download URL can be made");
		} else {
			c->resp->status = 302;
			add_header(c->resp, "Location", "%s", url);
			free(url);
		}
	}
	octo_json_free(doc);
}

/* An event's data: the job's status, as GET /v1/download/status shows it. */
static char *render_event(void *payload, const char *job_id, const char *base,
                          uint64_t *seq, int *finished)
{
	char *text;
	size_t len;

	return status_text(payload, job_id, base, &text, &len, seq, finished) < 0 ? NULL : text;
}

/* GET /v1/download/<jobId>/events: Server-Sent Events until the job ends.
 * Last-Event-ID resumes: events are whole statuses, ids are the job's seq. */
static void handle_events(call *c)
{
	const char *last = request_header(c->req, "Last-Event-ID");
	unsigned long long last_id = 0;
	char base[300], *end = NULL;
	uint64_t seq;

	if (!c->api->events || octo_engine_seq(c->api->opts.engine, c->params[0], &seq) < 0) {
		set_error(c->resp, 404, "not_found", "No job %s", c->params[0]);
		return;
	}
	if (last && *last) {
		errno = 0;
		last_id = strtoull(last, &end, 10);
		/* Past 2^64 strtoull() saturates: an id no event has is no id. */
		if (*end != '\0' || last[0] == '-' || errno == ERANGE) {
			set_error(c->resp, 400, "validation_error", "Last-Event-ID must be an event id");
			return;
		}
	}
	if (base_url(c->api, c->req, base, sizeof(base)) < 0)
		base[0] = '\0';
	if (octo__events_open(c->api->events, c->params[0], base, last_id, &c->resp->stream) < 0) {
		c->resp->failed = 1;
		return;
	}
	c->resp->status = 200;
	add_header(c->resp, "Content-Type", "text/event-stream; charset=utf-8");
	add_header(c->resp, "X-Accel-Buffering", "no"); /* nginx: pass events at once */
}

/* Inserts keeping the queue sorted by due time. Caller holds api->lock. */
static void enqueue(octo_api *api, pending *p)
{
	pending **link = &api->queue;

	while (*link && (*link)->due_ms <= p->due_ms)
		link = &(*link)->next;
	p->next = *link;
	*link = p;
}

static uint32_t random_delay(const octo_api_options *o)
{
	uint32_t r = 0, span = o->download_delay_max_ms - o->download_delay_min_ms;

	octo__random(&r, sizeof(r));
	return o->download_delay_min_ms + (span == UINT32_MAX ? r : r % (span + 1));
}

static int job_finished(octo_api *api, const char *job_id)
{
	char status[32];

	job_status_name(api, job_id, status, sizeof(status));
	return strcmp(status, "queued") != 0 && strcmp(status, "processing") != 0;
}

/* The legacy call waited as long as it may: the job goes on, and the
 * client is told where to follow it, before any proxy cuts the request. */
static void answer_still_running(octo_api *api, pending *p)
{
	octo_json_writer *w = writer_or_fail(p->resp);

	if (!w)
		return;
	add_header(p->resp, "Location", "/v1/download/status/%s", p->job_id);
	add_header(p->resp, "Retry-After", "%" PRIu32, retry_after_s(api, 0));
	octo_json_write_key(w, "jobId");
	octo_json_write_string(w, p->job_id);
	octo_json_write_key(w, "file_id");
	octo_json_write_int(w, p->file_id);
	octo_json_write_key(w, "status");
	octo_json_write_string(w, "processing");
	octo_json_write_key(w, "message");
	octo_json_write_string(w, "Still preparing; follow the Location header for its status");
	finish_object(p->resp, 202, w);
}

/* Under api->lock: answers the legacy call waiting for `job_id` now. */
static void wake_start(octo_api *api, const char *job_id)
{
	pending **link = &api->queue, *p;

	while (*link && strcmp((*link)->job_id, job_id) != 0)
		link = &(*link)->next;
	if (!(p = *link))
		return;
	*link = p->next;
	p->due_ms = 0;
	enqueue(api, p);
	pthread_cond_signal(&api->wake);
}

/* Called by the event registry on every job change. */
static void on_job_change(void *payload, const char *job_id, int finished)
{
	octo_api *api = payload;

	if (!finished)
		return;
	pthread_mutex_lock(&api->lock);
	wake_start(api, job_id);
	pthread_mutex_unlock(&api->lock);
}

/* With an engine, the legacy call is a one-file job: it waits for it up to
 * the request timeout, answered as soon as the job ends. */
static void start_through_engine(call *c, pending *p, int64_t file_id)
{
	octo_api *api = c->api;
	octo_job_options jopts = OCTO_JOB_OPTIONS_INIT;
	int rc;

	jopts.client = client_identity(api, c->req, c->resp);
	rc = octo_engine_submit_with(api->opts.engine, &file_id, 1, &jopts, p->job_id);

	if (rc < 0) {
		free(p);
		if (rc == OCTO_EBUSY || rc == OCTO_ESHUTDOWN) {
			add_header(c->resp, "Retry-After", "%" PRIu32, retry_after_s(api, 1));
			set_error(c->resp, 503, "busy", "%s; retry later", octo_error_last());
		} else {
			storage_error(c->resp, rc);
		}
		return;
	}
	p->started_ms = octo__monotonic_ms();
	p->due_ms = p->started_ms + api->opts.start_wait_ms;
	p->file_id = file_id;
	p->resp = c->resp;
	p->done = c->done;
	p->payload = c->payload;
	pthread_mutex_lock(&api->lock);
	if (api->stopping) {
		/* The timer thread is going, or gone: answer here, as it would. */
		pthread_mutex_unlock(&api->lock);
		if (job_finished(api, p->job_id))
			complete_start(api, file_id, p->started_ms, p->base[0] ? p->base : NULL,
			               c->resp);
		else
			answer_still_running(api, p);
		free(p);
		return;
	}
	enqueue(api, p);
	/* It may have ended before it was queued here: look once more. */
	if (job_finished(api, p->job_id))
		wake_start(api, p->job_id);
	pthread_cond_signal(&api->wake);
	pthread_mutex_unlock(&api->lock);
	c->deferred = 1;
}

static void handle_start(call *c)
{
	octo_api *api = c->api;
	char msg[128];
	int64_t file_id;
	pending *p;

	if (read_file_id(octo_json_get(c->body, "file_id"), "file_id", &file_id,
	                 msg, sizeof(msg)) < 0) {
		set_error(c->resp, 400, "validation_error", "%s", msg);
		return;
	}
	if (!(p = calloc(1, sizeof(*p)))) {
		c->resp->failed = 1;
		return;
	}
	if (base_url(api, c->req, p->base, sizeof(p->base)) < 0)
		p->base[0] = '\0';
	if (api->opts.engine) {
		start_through_engine(c, p, file_id);
		return;
	}
	if (!api->opts.download_delay_enabled) {
		complete_start(api, file_id, octo__monotonic_ms(), p->base[0] ? p->base : NULL,
		               c->resp);
		free(p);
		return;
	}
	p->started_ms = octo__monotonic_ms();
	p->due_ms = p->started_ms + random_delay(&api->opts);
	p->file_id = file_id;
	p->resp = c->resp;
	p->done = c->done;
	p->payload = c->payload;
	pthread_mutex_lock(&api->lock);
	if (api->stopping) {
		pthread_mutex_unlock(&api->lock);
		free(p);
		set_error(c->resp, 503, "shutting_down", "The service is shutting down");
		return;
	}
	enqueue(api, p);
	pthread_cond_signal(&api->wake);
	pthread_mutex_unlock(&api->lock);
	c->deferred = 1;
}

/* The timer thread: answers each waiting request when its time comes, or
 * at once with 503 when the API shuts down. */
static void *timer_main(void *arg)
{
	octo_api *api = arg;

	pthread_mutex_lock(&api->lock);
	for (;;) {
		pending *p = api->queue;
		uint64_t now = octo__monotonic_ms();
		int stopping;
		if (!p && api->stopping)
			break;
		if (!p || (!api->stopping && p->due_ms > now)) {
			struct timespec ts;
			uint64_t until = p ? p->due_ms : now + 60000;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += (time_t)((until - now) / 1000);
			ts.tv_nsec += (long)((until - now) % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&api->wake, &api->lock, &ts);
			continue;
		}
		api->queue = p->next;
		stopping = api->stopping;
		pthread_mutex_unlock(&api->lock);
		if (stopping && !p->job_id[0])
			set_error(p->resp, 503, "shutting_down", "The service is shutting down");
		else if (p->job_id[0] && !job_finished(api, p->job_id))
			answer_still_running(api, p); /* timed out, or shutting down */
		else
			complete_start(api, p->file_id, p->started_ms,
			               p->base[0] ? p->base : NULL, p->resp);
		finalize(p->resp);
		p->done(p->resp, p->payload);
		free(p);
		pthread_mutex_lock(&api->lock);
	}
	pthread_mutex_unlock(&api->lock);
	return NULL;
}

/* ---- routing ------------------------------------------------------------ */

enum { M_GET = 1, M_POST = 2, M_DELETE = 4 };

/* Templates match segment by segment: "{jobId}" and "{fileId}" match one
 * segment each, "{key}" the rest of the path. Literal routes come first,
 * so /v1/download/check never reads as a job id. */
typedef struct {
	const char *template;
	int methods;
	void (*handler)(call *c);
	int uuid_first; /* the first parameter must look like a UUID to match */
} route;

/* /v1/download/nope is no job path (404); /v1/download/status/nope is a
 * status request with a bad id (400). */
static const route routes[] = {
	{ "/", M_GET, handle_root, 0 },
	{ "/health", M_GET, handle_health, 0 },
	{ "/metrics", M_GET, handle_metrics, 0 },
	{ "/openapi", M_GET, handle_openapi, 0 },
	{ "/docs", M_GET, handle_docs, 0 },
	{ "/v1/download/check", M_POST, handle_check, 0 },
	{ "/v1/download/initiate", M_POST, handle_initiate, 0 },
	{ "/v1/download/start", M_POST, handle_start, 0 },
	{ "/v1/download/status/{jobId}", M_GET, handle_status, 0 },
	{ "/v1/download/{jobId}", M_DELETE, handle_cancel, 1 },
	{ "/v1/download/{jobId}/files/{fileId}", M_GET, handle_job_file, 1 },
	{ "/v1/download/{jobId}/events", M_GET, handle_events, 1 },
	{ FILES_PREFIX "{key}", M_GET, handle_file, 0 },
};

/* Does `path` fit `tpl`? Parameters go to params[]. */
static int match(const char *tpl, const char *path, char (*params)[OCTO__UUID_LEN + 16])
{
	int p = 0;

	while (*tpl && *path) {
		if (*tpl == '{') {
			size_t n = strcspn(path, "/");
			int rest = strncmp(tpl, "{key}", 5) == 0;
			if (rest)
				return 1;
			if (n == 0 || n >= sizeof(params[0]) || p >= 2)
				return 0;
			memcpy(params[p], path, n);
			params[p][n] = '\0';
			p++;
			path += n;
			tpl = strchr(tpl, '}') + 1;
			continue;
		}
		if (*tpl++ != *path++)
			return 0;
	}
	return *tpl == '\0' && *path == '\0';
}

static const route *find_route(const char *path, char (*params)[OCTO__UUID_LEN + 16])
{
	char ignored[2][OCTO__UUID_LEN + 16];
	size_t i;

	if (!params)
		params = ignored;
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (match(routes[i].template, path, params) &&
		    (!routes[i].uuid_first || octo__uuid_shaped(params[0])))
			return &routes[i];
	return NULL;
}

static const char *allow_list(const route *rt)
{
	switch (rt->methods) {
	case M_GET: return "GET, HEAD, OPTIONS";
	case M_POST: return "POST, OPTIONS";
	default: return "DELETE, OPTIONS";
	}
}

static int method_bit(const char *method)
{
	if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
		return M_GET;
	if (strcmp(method, "POST") == 0)
		return M_POST;
	if (strcmp(method, "DELETE") == 0)
		return M_DELETE;
	return 0;
}

static void preflight(const route *rt, octo_response *r)
{
	r->status = 204;
	add_header(r, "Allow", "%s", allow_list(rt));
	add_header(r, "Access-Control-Allow-Methods", "%s", allow_list(rt));
	add_header(r, "Access-Control-Allow-Headers",
	           "Content-Type, X-Request-ID, Idempotency-Key, traceparent");
	add_header(r, "Access-Control-Max-Age", "600");
}

/* Parses and checks a POST body; 0 when c->body is a JSON object. */
static int read_body(call *c, octo_json **doc)
{
	const octo_request *req = c->req;

	if (req->body_too_large || req->body_len > c->api->opts.max_body_bytes) {
		set_error(c->resp, 413, "payload_too_large",
		          "Request body exceeds %zu bytes", c->api->opts.max_body_bytes);
		return -1;
	}
	if (!content_type_json(request_header(req, "Content-Type"))) {
		set_error(c->resp, 415, "unsupported_media_type",
		          "Content-Type must be application/json");
		return -1;
	}
	if (octo_json_parse(doc, req->body, req->body_len) < 0) {
		set_error(c->resp, 400, "invalid_json", "Request body is not valid JSON: %s",
		          octo_error_last());
		return -1;
	}
	if (octo_json_typeof(octo_json_root(*doc)) != OCTO_JSON_OBJECT) {
		set_error(c->resp, 400, "validation_error", "Request body must be a JSON object");
		return -1;
	}
	c->body = octo_json_root(*doc);
	return 0;
}

static void dispatch(call *c)
{
	const octo_request *req = c->req;
	const route *rt = find_route(req->path, c->params);
	octo_json *doc = NULL;
	int bit;

	if (!rt) {
		set_error(c->resp, 404, "not_found", "No route for %.200s", req->path);
		return;
	}
	c->resp->route = rt->template;
	if (strcmp(req->method, "OPTIONS") == 0) {
		preflight(rt, c->resp);
		return;
	}
	bit = method_bit(req->method);
	if (!(rt->methods & bit)) {
		add_header(c->resp, "Allow", "%s", allow_list(rt));
		set_error(c->resp, 405, "method_not_allowed", "%.16s is not allowed on %s",
		          req->method, rt->template);
		return;
	}
	if (bit == M_POST && read_body(c, &doc) < 0) {
		octo_json_free(doc);
		return;
	}
	rt->handler(c);
	octo_json_free(doc);
}

int octo_api_handle(octo_api *api, const octo_request *req,
                    octo_api_done_cb done, void *payload)
{
	const char *id, *bad;
	call c;

	octo__error_clear();
	if (!api || !req || !req->method || !req->path || !done)
		return octo__error(OCTO_EINVAL, "request needs a method, a path and a callback");
	memset(&c, 0, sizeof(c));
	c.api = api;
	c.req = req;
	c.done = done;
	c.payload = payload;
	if (!(c.resp = response_new()))
		return octo__error(OCTO_ENOMEM, "out of memory");
	id = request_header(req, "X-Request-ID");
	if (request_id_sane(id))
		snprintf(c.resp->request_id, sizeof(c.resp->request_id), "%s", id);
	else if (octo__uuid4(c.resp->request_id) < 0)
		c.resp->failed = 1;
	if (octo_trace_start(&c.resp->trace, request_header(req, "traceparent")) < 0)
		c.resp->failed = 1;
	resolve_client(api, req, c.resp->client, sizeof(c.resp->client));
	add_common_headers(api, req, c.resp);
	if (find_route(req->path, NULL))
		c.resp->route = find_route(req->path, NULL)->template; /* 429s get their label too */
	if (rate_limit(api, req, c.resp) == 0) {
		if ((bad = malformed_header(req)) != NULL)
			set_error(c.resp, 400, "bad_request", "Malformed header field \"%.40s\"", bad);
		else
			dispatch(&c);
	}
	if (c.deferred)
		return 0;
	finalize(c.resp);
	done(c.resp, payload);
	return 0;
}

/* ---- life cycle ----------------------------------------------------------- */

static int check_options(const octo_api_options *o)
{
	if (o->version != OCTO_API_OPTIONS_VERSION)
		return octo__error(OCTO_EINVAL, "options version %u is not %d",
		                   o->version, OCTO_API_OPTIONS_VERSION);
	if (o->max_body_bytes == 0)
		return octo__error(OCTO_EINVAL, "max_body_bytes must be positive");
	if (o->rate_limit_window_ms == 0)
		return octo__error(OCTO_EINVAL, "rate_limit_window_ms must be positive");
	if (!o->cors_origins || !*o->cors_origins)
		return octo__error(OCTO_EINVAL, "cors_origins must be \"*\" or a list of origins");
	if (o->download_delay_min_ms > o->download_delay_max_ms)
		return octo__error(OCTO_EINVAL,
		                   "download_delay_min_ms must not exceed download_delay_max_ms");
	if (o->url_ttl_s == 0)
		return octo__error(OCTO_EINVAL, "url_ttl_s must be positive");
	if (o->url_secret && o->url_secret_len < 16)
		return octo__error(OCTO_EINVAL, "url_secret must hold at least 16 bytes");
	if (o->public_url && strncmp(o->public_url, "http://", 7) != 0 &&
	    strncmp(o->public_url, "https://", 8) != 0)
		return octo__error(OCTO_EINVAL, "public_url must start with http:// or https://");
	if (o->public_url && strlen(o->public_url) > PUBLIC_URL_MAX)
		return octo__error(OCTO_EINVAL, "public_url must not exceed %d bytes", PUBLIC_URL_MAX);
	return 0;
}

/* Deep-copies what the options point to, so the caller's may go. */
static int copy_options(octo_api *api, const octo_api_options *opts)
{
	api->opts = *opts;
	api->cors_origins = strdup(opts->cors_origins);
	api->opts.cors_origins = api->cors_origins;
	if (opts->url_secret) {
		api->url_secret = malloc(opts->url_secret_len);
		if (api->url_secret)
			memcpy(api->url_secret, opts->url_secret, opts->url_secret_len);
	}
	api->opts.url_secret = api->url_secret;
	if (opts->public_url) {
		size_t n = strlen(opts->public_url);
		while (n > 0 && opts->public_url[n - 1] == '/')
			n--; /* URLs are built as base + "/v1/..." */
		api->public_url = strndup(opts->public_url, n);
	}
	api->opts.public_url = api->public_url;
	api->opts.trusted_proxies = NULL; /* parsed into api->proxies */
	if (opts->trusted_proxies && parse_proxies(api, opts->trusted_proxies) < 0)
		return OCTO_EINVAL;
	if (!api->cors_origins || (opts->url_secret && !api->url_secret) ||
	    (opts->public_url && !api->public_url))
		return octo__error(OCTO_ENOMEM, "out of memory");
	return 0;
}

static void init_sync(octo_api *api)
{
	pthread_condattr_t attr;

	/* The timer waits on the monotonic clock: wall-clock jumps must not
	 * stretch or cut a delay. */
	pthread_mutex_init(&api->lock, NULL);
	pthread_mutex_init(&api->health_lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&api->wake, &attr);
	pthread_condattr_destroy(&attr);
	pthread_cond_init(&api->submits_idle, NULL);
}

static int start_timer(octo_api *api)
{
	if (pthread_create(&api->timer, NULL, timer_main, api) != 0)
		return octo__error(OCTO_ERROR, "cannot start the timer thread");
	api->timer_running = 1;
	return 0;
}

int octo_api_new(octo_api **out, octo_store *store, const octo_api_options *opts)
{
	static const octo_api_options defaults = OCTO_API_OPTIONS_INIT;
	octo_api *api;
	int rc;

	octo__error_clear();
	if (!out || !store)
		return octo__error(OCTO_EINVAL, "no store given");
	if (!opts)
		opts = &defaults;
	if ((rc = check_options(opts)) < 0)
		return rc;
	if (!(api = calloc(1, sizeof(*api))))
		return octo__error(OCTO_ENOMEM, "out of memory");
	init_sync(api);
	api->store = store;
	api->health_ok = -1;
	rc = copy_options(api, opts);
	if (rc == 0 && opts->rate_limit_max > 0)
		rc = octo__ratelimit_new(&api->ratelimit, opts->rate_limit_window_ms,
		                         opts->rate_limit_max);
	if (rc == 0)
		rc = init_rendered(api);
	if (rc == 0 && opts->engine)
		rc = octo__events_new(&api->events, opts->engine, opts->sse_heartbeat_ms,
		                      render_event, on_job_change, api);
	if (rc == 0)
		rc = start_timer(api);
	if (rc < 0) {
		octo_api_free(api);
		return rc;
	}
	*out = api;
	return 0;
}

void octo_api_shutdown(octo_api *api)
{
	if (!api)
		return;
	octo__events_shutdown(api->events);
	pthread_mutex_lock(&api->lock);
	api->stopping = 1;
	pthread_cond_signal(&api->wake);
	while (api->submitting > 0)
		pthread_cond_wait(&api->submits_idle, &api->lock);
	pthread_mutex_unlock(&api->lock);
	if (!api->timer_running)
		return;
	pthread_join(api->timer, NULL);
	api->timer_running = 0;
}

void octo_api_free(octo_api *api)
{
	if (!api)
		return;
	octo_api_shutdown(api);
	octo__events_free(api->events);
	pthread_cond_destroy(&api->wake);
	pthread_cond_destroy(&api->submits_idle);
	pthread_mutex_destroy(&api->lock);
	pthread_mutex_destroy(&api->health_lock);
	octo__ratelimit_free(api->ratelimit);
	free(api->cors_origins);
	if (api->url_secret)
		explicit_bzero(api->url_secret, api->opts.url_secret_len);
	free(api->url_secret);
	free(api->public_url);
	free(api->proxies);
	free_rendered(api);
	free(api);
}

size_t octo_api_max_body(const octo_api *api)
{
	return api->opts.max_body_bytes;
}
