/* What the libFuzzer targets share: failing loudly, a scratch directory,
 * the API over a local store and a job engine, a bounded wait for its
 * answers, the checks every response must pass, and the U+FFFD repair
 * the library documents for invalid UTF-8. */
#ifndef OCTO_FUZZUTIL_H
#define OCTO_FUZZUTIL_H

#include <stddef.h>
#include <stdint.h>

#include <octopus/octopus.h>

/* Every target is a libFuzzer entry point. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant: prints where and why, then aborts, so libFuzzer
 * keeps the input as a crash artifact. */
#define FUZZ_CHECK(cond, ...) \
	do { \
		if (!(cond)) \
			fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__); \
	} while (0)

void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 4, 5)));

/* A fresh directory under $TMPDIR, else /dev/shm (store writes fsync,
 * which costs nothing there), else /tmp; removed when the process exits. */
void fuzz_tmpdir(char out[256]);

void fuzz_rmtree(const char *path);

/* Removes every object under `prefix` ("jobs/") from the store. */
void fuzz_store_clear(octo_store *store, const char *prefix);

/* Prepares files with ids below FUZZ_FILE_READY_MAX at once (a one-byte
 * object); the others fail, so the failure paths run too and the store
 * stays small. */
#define FUZZ_FILE_READY_MAX 10100
int fuzz_processor(octo_task *task, void *payload);

/* The API as octopusd runs it, over a local store in a scratch directory:
 * a job engine with fuzz_processor, metrics, a log to /dev/null, signed
 * download URLs, trusted proxies and an origin list; no rate limiting,
 * no download delay. Finished jobs are forgotten after 10 s. */
typedef struct {
	char dir[256];
	octo_store *store;
	octo_metrics *metrics;
	octo_log *log;
	octo_engine *engine;
	octo_api *api;
	char job_id[OCTO_JOB_ID_LEN + 1]; /* a completed job: files 10000, 10001 */
	uint64_t job_ms;                  /* when it was made */
	char file_path[512];              /* a signed URL of downloads/10000.zip */
	char file_query[512];
} fuzz_world;

void fuzz_world_init(fuzz_world *w);

/* The id of a completed job that retention will not remove for a while:
 * made again when the last one grows old. */
const char *fuzz_world_job(fuzz_world *w);

/* Handles one request and waits (bounded) for its answer; aborts when
 * none comes. The caller frees the response. */
octo_response *fuzz_handle(octo_api *api, const octo_request *req);

/* What every response must be: a status in 100..599; header names and
 * values without control characters (CR, LF, ...); X-Request-ID and a
 * traceparent that continues; a JSON body that parses, and for errors
 * exactly {"error","message","requestId"} with the X-Request-ID; an event
 * stream whose first event is well formed; a file of the size announced. */
void fuzz_check_response(octo_response *resp);

/* The first event an event stream has ready, checked for its form
 * ("id: N\nevent: NAME\ndata: JSON\n\n" and the like), or NULL when it
 * has none yet or has ended. free() it. */
char *fuzz_read_event(octo_stream *s);

/* 1 when `s` holds a byte below 0x20 other than HTAB, or DEL. */
int fuzz_has_ctl(const char *s);

/* Copies `len` bytes to `out` (3 * len + 1 bytes) with each byte that is
 * not part of valid UTF-8 (overlong forms, surrogates, code points over
 * U+10FFFF) replaced by U+FFFD, as json.h, log.h and metrics.c promise.
 * Returns the length written; `out` is NUL-terminated. */
size_t fuzz_utf8_repair(const char *in, size_t len, char *out);

/* A NUL-terminated copy of `size` bytes of fuzz input (free() it). */
char *fuzz_strndup(const uint8_t *data, size_t size);

#endif
