/* Request headers a client controls, with the input (up to its first NUL)
 * as the value, each on a fixed route of the API. Beyond not crashing,
 * and besides fuzz_check_response() (no CR/LF in any header echoed):
 *  - traceparent: octo_trace_start continues it exactly when it is valid
 *    per W3C Trace Context (an independent reading of the rules below),
 *    keeping its ids and flags; what octo_trace_format writes parses as
 *    continued; GET /health answers within the caller's trace.
 *  - X-Request-ID on GET /health: echoed when [A-Za-z0-9._-]{1,128}, else
 *    replaced by a fresh UUID.
 *  - Content-Type on POST /v1/download/check: the media type
 *    application/json (any case, parameters allowed) is taken (200);
 *    one that does not even start with it gets 415.
 *  - Idempotency-Key on POST /v1/download/initiate: a valid key (1..255
 *    of [A-Za-z0-9._:-], job.h) sent twice gets the same job; others 400.
 *  - Last-Event-ID on GET /v1/download/{jobId}/events of a finished job:
 *    an event id (digits) resumes, and then only an event newer than it
 *    comes; anything else is answered 200 or 400. */
#include "config.h"
#include "fuzzutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static fuzz_world world;
static const char check_body[] = "{\"file_id\":10000}";
static const char initiate_body[] = "{\"file_ids\":[10000]}";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_world_init(&world);
	return 0;
}

static int only(const char *s, const char *set, size_t min, size_t max)
{
	size_t n = strlen(s);

	return n >= min && n <= max && strspn(s, set) == n;
}

#define HEX "0123456789abcdef"
#define ID_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

static int hex_field(const char *s, size_t n)
{
	size_t i, zero = 1;

	for (i = 0; i < n; i++) {
		if (!strchr(HEX, s[i]) || !s[i])
			return 0;
		zero &= s[i] == '0';
	}
	return !zero || n == 2; /* ids may not be all zero; flags may */
}

/* W3C Trace Context, traceparent: version 00 is exactly
 * "00-<32 hex>-<16 hex>-<2 hex>"; a later version (not ff) may append
 * "-..." after those four fields. Lowercase hex, no all-zero id. */
static int traceparent_valid(const char *v)
{
	size_t len = strlen(v);

	if (len < 55 || !hex_field(v, 2) || strncmp(v, "ff", 2) == 0)
		return 0;
	if (strncmp(v, "00", 2) == 0 ? len != 55 : len > 55 && v[55] != '-')
		return 0;
	return v[2] == '-' && v[35] == '-' && v[52] == '-' && hex_field(v + 3, 32) &&
	       hex_field(v + 36, 16) && hex_field(v + 53, 2);
}

static void check_trace(const char *v)
{
	char out[OCTO_TRACEPARENT_LEN + 1];
	octo_trace t, again;
	int rc = octo_trace_start(&t, v), valid = traceparent_valid(v);
	unsigned flags = 0;

	FUZZ_CHECK(rc == valid, "traceparent \"%s\": continued %d, valid %d", v, rc, valid);
	if (valid) {
		sscanf(v + 53, "%2x", &flags);
		FUZZ_CHECK(strncmp(t.trace_id, v + 3, 32) == 0 && strncmp(t.parent_id, v + 36, 16) == 0 &&
		           t.flags == flags, "ids or flags of \"%s\" not kept", v);
	} else {
		FUZZ_CHECK(t.parent_id[0] == '\0', "a new trace with a parent");
	}
	octo_trace_format(&t, out);
	FUZZ_CHECK(octo_trace_start(&again, out) == 1 && strcmp(again.trace_id, t.trace_id) == 0 &&
	           strcmp(again.parent_id, t.span_id) == 0 && again.flags == t.flags,
	           "formatted \"%s\" does not continue", out);
}

static octo_response *run(const char *method, const char *path, const char *name,
                          const char *value, const char *body)
{
	octo_header h[2] = { { "Content-Type", "application/json" }, { name, value } };
	octo_request req;
	octo_response *resp;

	memset(&req, 0, sizeof(req));
	req.method = method;
	req.path = path;
	req.client = "127.0.0.1";
	req.headers = strcasecmp(name, "Content-Type") == 0 ? h + 1 : h;
	req.header_count = strcasecmp(name, "Content-Type") == 0 ? 1 : 2;
	req.body = body;
	req.body_len = body ? strlen(body) : 0;
	resp = fuzz_handle(world.api, &req);
	return resp;
}

static void check_health(const char *v)
{
	octo_header h[2] = { { "X-Request-ID", v }, { "traceparent", v } };
	octo_request req;
	octo_response *resp;
	const char *id;

	memset(&req, 0, sizeof(req));
	req.method = "GET";
	req.path = "/health";
	req.client = "127.0.0.1";
	req.headers = h;
	req.header_count = 2;
	resp = fuzz_handle(world.api, &req);
	fuzz_check_response(resp);
	id = octo_response_header_get(resp, "X-Request-ID");
	if (only(v, ID_CHARS "._-", 1, 128))
		FUZZ_CHECK(strcmp(id, v) == 0, "X-Request-ID \"%s\" came back as \"%s\"", v, id);
	else
		FUZZ_CHECK(strlen(id) == 36 && only(id, HEX "-", 36, 36) && id[14] == '4',
		           "X-Request-ID \"%s\" was replaced by \"%s\", no UUID", v, id);
	if (traceparent_valid(v))
		FUZZ_CHECK(strncmp(octo_response_trace_id(resp), v + 3, 32) == 0,
		           "the answer left trace %.32s", v + 3);
	octo_response_free(resp);
}

static void check_content_type(const char *v)
{
	octo_response *resp = run("POST", "/v1/download/check", "Content-Type", v, check_body);
	const char *p = v + strspn(v, " \t");
	size_t type_len = strcspn(p, ";");
	int status = octo_response_status(resp);

	fuzz_check_response(resp);
	while (type_len > 0 && (p[type_len - 1] == ' ' || p[type_len - 1] == '\t'))
		type_len--;
	if (type_len == 16 && strncasecmp(p, "application/json", 16) == 0)
		FUZZ_CHECK(status == 200, "Content-Type \"%s\" refused with %d", v, status);
	else if (strncasecmp(p, "application/json", 16) != 0)
		FUZZ_CHECK(status == 415, "Content-Type \"%s\" taken (%d)", v, status);
	octo_response_free(resp);
}

static const char *job_of(const octo_response *resp, octo_json **doc)
{
	const char *id = NULL;

	*doc = NULL;
	FUZZ_CHECK(octo_json_parse(doc, octo_response_body(resp, NULL),
	                           strlen(octo_response_body(resp, NULL))) == 0 &&
	           octo_json_string(octo_json_get(octo_json_root(*doc), "jobId"), &id) == 0,
	           "a 202 without a jobId");
	return id;
}

static void check_idempotency(const char *v)
{
	octo_response *first = run("POST", "/v1/download/initiate", "Idempotency-Key", v,
	                           initiate_body), *second;
	octo_json *a, *b;
	int valid = only(v, ID_CHARS ".:_-", 1, 255);

	fuzz_check_response(first);
	if (!valid || octo_response_status(first) != 202) {
		FUZZ_CHECK(valid ? octo_response_status(first) == 503 : octo_response_status(first) == 400,
		           "Idempotency-Key \"%s\" (valid %d) answered %d", v, valid,
		           octo_response_status(first));
		octo_response_free(first);
		return;
	}
	second = run("POST", "/v1/download/initiate", "Idempotency-Key", v, initiate_body);
	fuzz_check_response(second);
	FUZZ_CHECK(octo_response_status(second) == 202, "a replay of \"%s\" answered %d", v,
	           octo_response_status(second));
	FUZZ_CHECK(strcmp(job_of(first, &a), job_of(second, &b)) == 0,
	           "Idempotency-Key \"%s\" made two jobs", v);
	octo_json_free(a);
	octo_json_free(b);
	octo_response_free(first);
	octo_response_free(second);
}

static void check_last_event_id(const char *v)
{
	const char *job = fuzz_world_job(&world);
	char path[96], *event;
	octo_response *resp;
	octo_stream *stream = NULL;
	unsigned long long last = strtoull(v, NULL, 10), id = 0;
	uint64_t seq = 0;
	int digits = only(v, "0123456789", 0, 19);

	snprintf(path, sizeof(path), "/v1/download/%s/events", job);
	FUZZ_CHECK(octo_engine_seq(world.engine, job, &seq) == 0, "job %s is gone", job);
	resp = run("GET", path, "Last-Event-ID", v, NULL);
	FUZZ_CHECK(octo_response_status(resp) == 200 || (!digits && octo_response_status(resp) == 400),
	           "Last-Event-ID \"%s\" answered %d", v, octo_response_status(resp));
	if (octo_response_take_stream(resp, &stream) && (event = fuzz_read_event(stream)) != NULL) {
		if (digits) {
			FUZZ_CHECK(sscanf(event, "id: %llu", &id) == 1 && id == seq && id > last,
			           "after Last-Event-ID %s of a job at seq %llu came: %s", v,
			           (unsigned long long)seq, event);
		}
		free(event);
	}
	octo_stream_free(stream);
	fuzz_check_response(resp);
	octo_response_free(resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *v = fuzz_strndup(data, size);

	check_trace(v);
	check_health(v);
	check_content_type(v);
	check_idempotency(v);
	check_last_event_id(v);
	free(v);
	return 0;
}
