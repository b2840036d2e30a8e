/* The whole HTTP API through octo_api_handle, over a local store and a
 * job engine. The input is split at NUL bytes into method, path, query
 * (empty: none), then name/value header pairs up to an empty name, then
 * the body (the rest, any bytes). Beyond not crashing, every answer must
 * come (bounded wait) and be well formed: see fuzz_check_response().
 *
 * So that job routes and signed files are reachable, "{J}" in the path or
 * query stands for a completed job's id, "{P}" and "{Q}" for the path and
 * query of a signed URL of downloads/10000.zip. Pseudo-headers: ":client"
 * sets the peer address (default 127.0.0.1, a trusted proxy), and
 * ":too-large" says the server cut the body. With FUZZ_API_TRACE set in
 * the environment, each request and its answer are printed. */
#include "config.h"
#include "fuzzutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HEADERS 8

static fuzz_world world;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_world_init(&world);
	return 0;
}

/* The field at *p, up to the next NUL (or the end). */
static char *take(char **p, char *end)
{
	char *field = *p;

	*p += strlen(field) + 1;
	if (*p > end)
		*p = end;
	return field;
}

/* `in` with the placeholders replaced (free() it). */
static char *expand(const char *in)
{
	size_t cap = 64, o = 0, n;
	char *out = malloc(cap);
	const char *with;

	while (out && *in) {
		with = strncmp(in, "{J}", 3) == 0 ? fuzz_world_job(&world)
		       : strncmp(in, "{P}", 3) == 0 ? world.file_path
		       : strncmp(in, "{Q}", 3) == 0 ? world.file_query : NULL;
		n = with ? strlen(with) : 1;
		if (o + n + 1 > cap && !(out = realloc(out, cap = 2 * (o + n + 1))))
			break;
		memcpy(out + o, with ? with : in, n);
		o += n;
		in += with ? 3 : 1;
	}
	FUZZ_CHECK(out != NULL, "out of memory");
	out[o] = '\0';
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = fuzz_strndup(data, size), *p = copy, *end = copy + size;
	octo_header headers[MAX_HEADERS];
	octo_response *resp;
	octo_request req;
	char *path, *query;

	memset(&req, 0, sizeof(req));
	req.client = "127.0.0.1";
	req.method = take(&p, end);
	path = expand(take(&p, end));
	query = expand(take(&p, end));
	req.path = path;
	req.query = *query ? query : NULL;
	while (req.header_count < MAX_HEADERS && p < end) {
		char *name = take(&p, end), *value;
		if (!*name)
			break;
		value = take(&p, end);
		if (strcmp(name, ":client") == 0) {
			req.client = value;
		} else if (strcmp(name, ":too-large") == 0) {
			req.body_too_large = 1;
		} else {
			headers[req.header_count].name = name;
			headers[req.header_count++].value = value;
		}
	}
	req.headers = headers;
	req.body = p;
	req.body_len = (size_t)(end - p);
	resp = fuzz_handle(world.api, &req);
	if (getenv("FUZZ_API_TRACE"))
		fprintf(stderr, "%s %s%s%s -> %d %s\n", req.method, req.path, req.query ? "?" : "",
		        req.query ? req.query : "", octo_response_status(resp),
		        octo_response_body(resp, NULL));
	fuzz_check_response(resp);
	octo_response_free(resp);
	free(query);
	free(path);
	free(copy);
	return 0;
}
