/* Object storage: named byte objects under slash-separated keys
 * ("downloads/70000.zip"), written atomically, behind one interface.
 *
 * Backends: a local directory (the embedded default) and S3 through libs3
 * (MinIO, AWS and other S3-compatible stores). Callers never see which one
 * they hold. A store handle is safe to use from many threads at once; each
 * call is bounded in time (S3: the timeout in its options, retries
 * included). Keys are 1..1024 bytes of [A-Za-z0-9._-] segments of 1..255
 * bytes joined by '/'; no segment may start with '.', so a key never
 * escapes the store. Invalid keys give OCTO_EINVAL, and so does a put of
 * a 1024-byte key on S3 (libs3 lists keys of at most 1023 bytes).
 *
 * Errors: OCTO_ENOTFOUND (no such object), OCTO_EUNAVAILABLE (the backend
 * is unreachable or did not answer in time: try again later), OCTO_EDENIED
 * (credentials refused), OCTO_ENOSPC (device full), OCTO_EIO (other I/O),
 * OCTO_EABORTED (a callback returned non-zero). Messages in
 * octo_error_last() never contain credentials. */
#ifndef OCTOPUS_STORE_H
#define OCTOPUS_STORE_H

#include "common.h"
#include "metrics.h"

OCTO_BEGIN_DECL

typedef struct octo_store octo_store;

/* What octo_store_head() and octo_store_list() report about an object. */
typedef struct {
	uint64_t size;     /* bytes */
	int64_t mtime;     /* last modification, seconds since the epoch */
	char etag[80];     /* opaque version tag, "" when the backend has none */
} octo_object_info;

#define OCTO_STORE_KEY_MAX 1024
#define OCTO_STORE_SEGMENT_MAX 255

/* Opens a store over the local directory `dir`, creating it (mode 0750)
 * when missing. Objects are plain files below it; partial writes live in
 * `dir/.tmp` and are removed here, so a crash never leaves a torn object. */
OCTO_EXTERN int octo_store_open_local(octo_store **out, const char *dir);

/* How to reach an S3 bucket. Strings are copied by octo_store_open_s3(). */
typedef struct {
	unsigned int version;          /* OCTO_S3_OPTIONS_VERSION */
	const char *endpoint;          /* "http://minio:9000"; NULL: AWS (https) */
	const char *region;            /* signs requests under Signature V4 */
	const char *access_key_id;
	const char *secret_access_key;
	const char *bucket;
	int force_path_style;          /* host/bucket/key rather than bucket.host/key */
	int tls_verify;                /* 0 allows https without peer verification */
	uint32_t timeout_ms;           /* bound on each call, retries included */
	uint32_t max_attempts;         /* transient failures are retried */
} octo_s3_options;

#define OCTO_S3_OPTIONS_VERSION 1
#define OCTO_S3_OPTIONS_INIT \
	{ OCTO_S3_OPTIONS_VERSION, NULL, "us-east-1", NULL, NULL, NULL, 1, 1, 10000, 4 }

/* Opens a store over an S3 bucket. Checks the options only; it does not
 * contact the server (octo_store_ping() does). The first call initialises
 * libs3 and libcurl for the whole process. OCTO_EINVAL names the bad
 * option; OCTO_EUNSUPPORTED when an https endpoint needs peer
 * verification this libs3 cannot do (see octo_store_s3_features()). */
OCTO_EXTERN int octo_store_open_s3(octo_store **out, const octo_s3_options *opts);

/* What the linked libs3 offers: "signature=V2 tls-verify=no" or
 * "signature=V4 tls-verify=yes". Static. */
OCTO_EXTERN const char *octo_store_s3_features(void);

/* Closes the store. NULL-safe. No call may be in flight. */
OCTO_EXTERN void octo_store_free(octo_store *store);

/* Counts every call of this store in `reg`: storage_requests_total
 * {operation,result} and storage_request_duration_seconds{operation}, with
 * operation ping|head|put|get|delete|list|presign and result
 * ok|not_found|error. `reg` is borrowed and must outlive the store. Call
 * before the store is shared between threads; OCTO_ECONFLICT when `reg`
 * already has those names with another definition. */
OCTO_EXTERN int octo_store_set_metrics(octo_store *store, octo_metrics *reg);

/* The backend's name: "local" or "s3". Borrowed, static. */
OCTO_EXTERN const char *octo_store_backend(const octo_store *store);

/* Is the store usable right now? 0 when it is; else OCTO_EIO,
 * OCTO_EUNAVAILABLE or OCTO_EDENIED. S3: lists one key of the bucket. */
OCTO_EXTERN int octo_store_ping(octo_store *store);

/* Looks an object up. `info` may be NULL. OCTO_ENOTFOUND when absent. */
OCTO_EXTERN int octo_store_head(octo_store *store, const char *key,
                                octo_object_info *info);

/* Writes an object from memory, replacing any previous one atomically and
 * durably: when this returns 0 the object survives a crash, and a reader
 * sees either the old or the new object, never a mix. */
OCTO_EXTERN int octo_store_put(octo_store *store, const char *key,
                               const void *data, size_t len);

/* Like octo_store_put(), streaming `len` bytes read from `fd` starting at
 * `offset` (with pread: fd's position is not used), so objects far larger
 * than memory go through a small buffer. OCTO_EIO when fd ends early. */
OCTO_EXTERN int octo_store_put_fd(octo_store *store, const char *key, int fd,
                                  uint64_t offset, uint64_t len);

/* Reads a whole object into memory. On success *data is NUL-terminated
 * (not counted in *len) and released with octo_free(). */
OCTO_EXTERN int octo_store_get(octo_store *store, const char *key,
                               char **data, size_t *len);

/* Receives an object's bytes in order, a chunk at a time. Returns 0 to go
 * on; anything else stops the read with OCTO_EABORTED. */
typedef int (*octo_store_data_cb)(const void *data, size_t len, void *payload);

/* Streams an object to `cb`. After a transient failure mid-object the
 * read resumes where it stopped, so `cb` sees every byte exactly once. */
OCTO_EXTERN int octo_store_get_cb(octo_store *store, const char *key,
                                  octo_store_data_cb cb, void *payload);

/* Streams an object into `fd` (written at its current position). */
OCTO_EXTERN int octo_store_get_fd(octo_store *store, const char *key, int fd);

/* Removes an object. OCTO_ENOTFOUND when it was already absent
 * (S3 cannot tell, and always reports 0). */
OCTO_EXTERN int octo_store_delete(octo_store *store, const char *key);

/* Called once per listed object, in key order. Returns 0 to go on. */
typedef int (*octo_store_list_cb)(const char *key, const octo_object_info *info,
                                  void *payload);

/* Lists up to `max_keys` (1..1000) objects whose keys start with `prefix`
 * ("" for all) and sort after `start_after` (NULL or "" to begin), in
 * byte order. *more is set to 1 when further keys remain: pass the last
 * key seen as `start_after` to get the next page. */
OCTO_EXTERN int octo_store_list(octo_store *store, const char *prefix,
                                const char *start_after, size_t max_keys,
                                octo_store_list_cb cb, void *payload, int *more);

/* A URL that lets anyone GET the object until `ttl_s` seconds from now,
 * released with octo_free(). OCTO_EUNSUPPORTED on backends that cannot
 * sign URLs (local: the HTTP API serves such files itself). */
OCTO_EXTERN int octo_store_presign(octo_store *store, const char *key,
                                   uint32_t ttl_s, char **url);

/* 1 when `key` is a valid object key, 0 otherwise. */
OCTO_EXTERN int octo_store_key_valid(const char *key);

OCTO_END_DECL

#endif
