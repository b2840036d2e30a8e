/* What libocto's modules share privately: error reporting, ids and clocks.
 * Nothing here is exported from the shared library. */
#ifndef OCTO_LIB_INTERNAL_H
#define OCTO_LIB_INTERNAL_H

#include <octopus/common.h>

/* Records a formatted message as this thread's last error and returns
 * `code`, so a failure path reads: return octo__error(OCTO_EIO, "..."). */
int octo__error(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Clears this thread's last error (at the start of a public call). */
void octo__error_clear(void);

/* Fills `buf` with cryptographically random bytes from the kernel. */
int octo__random(void *buf, size_t len);

/* Writes a random (version 4) UUID, 36 characters plus NUL. */
#define OCTO__UUID_LEN 36

/* Writes the 16 bytes at `b` as a UUID of `version` (4: random; 8: laid
 * out by its maker), setting its version and variant bits in `b`. */
void octo__uuid_format(unsigned char b[16], unsigned version, char out[OCTO__UUID_LEN + 1]);
int octo__uuid4(char out[OCTO__UUID_LEN + 1]);

/* Whether `s` is exactly a lowercase UUID (8-4-4-4-12 hex digits), as
 * octo__uuid4() writes them and job ids are. */
int octo__uuid_shaped(const char *s);

/* Milliseconds of a monotonic clock, for durations and deadlines. */
uint64_t octo__monotonic_ms(void);

/* Seconds of the same clock with sub-millisecond resolution, for latency
 * histograms (a local store answers in microseconds). */
double octo__monotonic_seconds(void);

/* Writes the wall-clock time as RFC 3339 UTC with milliseconds,
 * "2025-12-14T10:00:00.000Z" (24 characters plus NUL). */
#define OCTO__TIMESTAMP_LEN 24
void octo__timestamp(char out[OCTO__TIMESTAMP_LEN + 1]);

/* The same for `seconds` from now (whole seconds: ".000Z"). */
void octo__timestamp_after(uint32_t seconds, char out[OCTO__TIMESTAMP_LEN + 1]);

/* strdup that records OCTO_ENOMEM on failure. */
char *octo__strdup(const char *s);

/* What the local store's journal and record log share. */

/* OCTO_EIO, or OCTO_ENOSPC for a full device, saying `what` failed on
 * `path` and why (`err`, an errno). */
int octo__io_error(int err, const char *what, const char *path);

/* `v` as `bytes` little-endian bytes at `p`, and back. */
void octo__put_le(unsigned char *p, uint64_t v, int bytes);
uint64_t octo__get_le(const unsigned char *p, int bytes);

/* fsync()s the directory holding `path`, so that a rename or link into
 * it survives a power loss. */
int octo__fsync_dir_of(const char *path);

/* pwrite() of all `len` bytes at `at`; -1 with errno on failure. */
int octo__pwrite_all(int fd, const void *data, size_t len, uint64_t at);

/* A SHA-256 digest of the `len` bytes at out + OCTO__DIGEST, written in
 * front of them (seal) or checked there (sealed: 1 when it matches). */
#define OCTO__DIGEST 32
int octo__seal(unsigned char *out, size_t len);
int octo__sealed(const unsigned char *at, size_t len);

/* The API's OpenAPI document and the page that renders it, served at GET
 * /openapi and GET /docs: lib/openapi.json and lib/docs.html as bytes,
 * compiled in through lib/api_assets.c, which make writes. */
extern const unsigned char octo__openapi_json[];
extern const size_t octo__openapi_json_len;
extern const unsigned char octo__docs_html[];
extern const size_t octo__docs_html_len;

#endif
