/* Object storage: named byte objects under slash-separated keys
 * ("downloads/70000.zip"), written atomically, behind one interface. */
/*
 * Backends: a local directory (the embedded default) and S3 through libs3
 * (MinIO, AWS and other S3-compatible stores). Callers never see which one
 * they hold. Each call is bounded in time (S3: the timeout in its options,
 * retries included). Keys are 1..1024 bytes of [A-Za-z0-9._-] segments of
 * 1..255 bytes joined by '/'; no segment may start with '.', so a key never
 * escapes the store.
 *
 * Ownership: octo_store_open_local() and octo_store_open_s3() give a handle
 * released with octo_store_free(). Objects read into memory and presigned
 * URLs are the caller's, released with octo_free(). Keys, data and options
 * passed in are only read during the call.
 *
 * Thread safety: a store handle is safe to use from many threads at once,
 * except for octo_store_set_metrics() and octo_store_free().
 *
 * Errors: every call that takes a key gives OCTO_EINVAL for an invalid
 * one, and so does a put of a 1024-byte key on S3 (libs3 lists keys of at
 * most 1023 bytes). Every call that reaches the backend can also give a
 * storage error: OCTO_EUNAVAILABLE (the backend is unreachable or did not
 * answer in time: try again later), OCTO_EDENIED (credentials refused),
 * OCTO_ENOSPC (device full), OCTO_EIO (other I/O, including a local
 * directory that is no longer usable) or OCTO_ENOMEM. OCTO_ENOTFOUND (no
 * such object) and OCTO_EABORTED (a callback returned non-zero) come only
 * from the calls that say so. Messages in octo_error_last() never contain
 * credentials.
 */
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

/* Opens a store over the local directory `dir` (copied), creating it and
 * its parents (mode 0750) when missing, and sets *`out` to it. Objects are
 * plain files below it; partial writes live in `dir/.tmp` and are removed
 * here, so a crash never leaves a torn object. Puts of up to 1 MiB and
 * deletes made at the same time share one sync of `dir/.journal`, which
 * this replays over whatever a power loss took. The records a job engine
 * (job.h) writes are the exception: they are not files but entries of
 * the log `dir/.records`, read back through this same interface. The
 * first handle on a directory owns the journal and the log; another (in
 * this process or another) reads the owner's records by following the
 * log, writes each object durably on its own, and must not write the
 * keys the owner writes: after a power loss the owner's replay could put
 * back its older copy.
 * Errors: OCTO_EINVAL for an empty `dir` or one too long for the longest
 * key; OCTO_EIO or OCTO_ENOSPC when it cannot be created, is not a
 * writable directory, or its journal or log cannot be read or rewritten
 * (they are kept for the next try); OCTO_ENOMEM. */
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
	/* Version 2: where clients reach the endpoint, when it is not where
	 * they can: presigned URLs start with this base instead of the
	 * endpoint's scheme://host[:port], their path and query unchanged
	 * ("http://localhost:8080/storage" behind a gateway that passes
	 * /storage/... on to the endpoint with the endpoint's Host).
	 * http(s)://host[:port][/path], at most 255 bytes; needs
	 * force_path_style (the bucket is then in the path). NULL: the
	 * endpoint. */
	const char *public_url;
} octo_s3_options;

/* Options of version 1 (without public_url) are still accepted. */
#define OCTO_S3_OPTIONS_VERSION 2
#define OCTO_S3_OPTIONS_INIT \
	{ OCTO_S3_OPTIONS_VERSION, NULL, "us-east-1", NULL, NULL, NULL, 1, 1, 10000, 4, NULL }

/* Opens a store over the S3 bucket `opts` describes (start from
 * OCTO_S3_OPTIONS_INIT) and sets *`out` to it. Checks the options only; it
 * does not contact the server (octo_store_ping() does). The first call
 * initialises libs3 and libcurl for the whole process.
 * Errors: OCTO_EINVAL, naming the bad option (another version; no bucket,
 * keys or region; a zero timeout_ms or max_attempts; an endpoint that is
 * not http(s)://host[:port]; a bucket name S3 refuses; a public_url that
 * is malformed or given without force_path_style); OCTO_EUNSUPPORTED
 * when an https endpoint needs peer verification this libs3 cannot do (see
 * octo_store_s3_features()); OCTO_ERROR when libs3 cannot be initialised;
 * OCTO_ENOMEM. */
OCTO_EXTERN int octo_store_open_s3(octo_store **out, const octo_s3_options *opts);

/* What the linked libs3 offers, such as "signature=V2 tls-verify=no" or
 * "signature=V4 tls-verify=yes". Static. */
OCTO_EXTERN const char *octo_store_s3_features(void);

/* Closes `store`. NULL-safe. No call on it may be in flight. */
OCTO_EXTERN void octo_store_free(octo_store *store);

/* Counts every later call of `store` in `reg`: storage_requests_total
 * {operation,result} and storage_request_duration_seconds{operation}, with
 * operation ping|head|put|get|delete|list|presign and result
 * ok|not_found|error. `reg` is borrowed and must outlive the store; a
 * second call replaces the first.
 * Errors: OCTO_ECONFLICT when `reg` already has those names with another
 * definition; OCTO_ENOMEM.
 * Thread safety: call it before the store is shared between threads. */
OCTO_EXTERN int octo_store_set_metrics(octo_store *store, octo_metrics *reg);

/* The name of the backend of `store`: "local" or "s3". Static. */
OCTO_EXTERN const char *octo_store_backend(const octo_store *store);

/* Checks that `store` is usable right now. Local: its directory and .tmp
 * are writable directories. S3: lists one key of the bucket, within 3
 * seconds or the store's timeout if that is shorter.
 * Errors: the storage errors (local: OCTO_EIO only). */
OCTO_EXTERN int octo_store_ping(octo_store *store);

/* Looks the object `key` of `store` up and fills *`info` with its size,
 * time and etag; `info` may be NULL.
 * Errors: OCTO_ENOTFOUND when it is absent. */
OCTO_EXTERN int octo_store_head(octo_store *store, const char *key,
                                octo_object_info *info);

/* Writes the `len` bytes at `data` (NULL only when `len` is 0) as the
 * object `key` of `store`, replacing any previous one atomically and
 * durably: when this returns 0 the object survives a crash, and a reader
 * sees either the old or the new object, never a mix.
 * Errors: the storage errors. */
OCTO_EXTERN int octo_store_put(octo_store *store, const char *key,
                               const void *data, size_t len);

/* Like octo_store_put() of `key` to `store`, streaming `len` bytes read
 * from `fd` starting at `offset` (with pread: fd's position is not used),
 * so objects far larger than memory go through a small buffer.
 * Errors: OCTO_EINVAL for a negative `fd`; OCTO_EIO when `fd` cannot be
 * read or ends early. */
OCTO_EXTERN int octo_store_put_fd(octo_store *store, const char *key, int fd,
                                  uint64_t offset, uint64_t len);

/* Reads the whole object `key` of `store` into memory: *`data` is
 * NUL-terminated (not counted in *`len`) and released with octo_free().
 * Errors: OCTO_ENOTFOUND when it is absent; OCTO_ENOMEM when it does not
 * fit in memory. */
OCTO_EXTERN int octo_store_get(octo_store *store, const char *key,
                               char **data, size_t *len);

/* Receives the bytes of an object in order, `len` at `data` at a time
 * (borrowed for the call), with the `payload` given to octo_store_get_cb(),
 * on that call's thread. Returns 0 to go on; anything else stops the read
 * with OCTO_EABORTED. */
typedef int (*octo_store_data_cb)(const void *data, size_t len, void *payload);

/* Streams the object `key` of `store` to `cb`, which gets `payload`. After
 * a transient failure mid-object the read resumes where it stopped, so `cb`
 * sees every byte exactly once; if the object changed meanwhile, the read
 * fails with OCTO_EIO.
 * Errors: OCTO_ENOTFOUND when it is absent; OCTO_EABORTED when `cb` stopped
 * it. */
OCTO_EXTERN int octo_store_get_cb(octo_store *store, const char *key,
                                  octo_store_data_cb cb, void *payload);

/* Streams the object `key` of `store` into `fd`, written at its current
 * position. After a failure `fd` may hold part of the object.
 * Errors: OCTO_ENOTFOUND when it is absent; OCTO_EIO also when writing to
 * `fd` fails. */
OCTO_EXTERN int octo_store_get_fd(octo_store *store, const char *key, int fd);

/* Removes the object `key` of `store`.
 * Errors: OCTO_ENOTFOUND when it was already absent (local only: S3 cannot
 * tell, and reports 0). */
OCTO_EXTERN int octo_store_delete(octo_store *store, const char *key);

/* Called by octo_store_list() once per listed object, in key order, with
 * its `key` and `info` (borrowed for the call) and the `payload` given to
 * it, on that call's thread. Returns 0 to go on; anything else stops the
 * listing with OCTO_EABORTED. */
typedef int (*octo_store_list_cb)(const char *key, const octo_object_info *info,
                                  void *payload);

/* Lists to `cb`, which gets `payload`, up to `max_keys` (1..1000) objects
 * of `store` whose keys start with `prefix` (NULL or "" for all) and sort
 * after `start_after` (NULL or "" to begin), in byte order. *`more` is set
 * to 1 when further keys remain, else 0 (`more` may be NULL): pass the last
 * key seen as `start_after` to get the next page. S3 hands a page over only
 * once it arrived whole, so a retry never shows a key twice.
 * Errors: OCTO_EINVAL for `max_keys` out of range or a `prefix` or
 * `start_after` over 1024 bytes; OCTO_EABORTED when `cb` stopped it. */
OCTO_EXTERN int octo_store_list(octo_store *store, const char *prefix,
                                const char *start_after, size_t max_keys,
                                octo_store_list_cb cb, void *payload, int *more);

/* Sets *`url` to a URL that lets anyone GET the object `key` of `store`
 * until `ttl_s` (at least 1) seconds from now, released with octo_free().
 * The object need not exist yet: nothing is sent to the server.
 * Errors: OCTO_EINVAL for a `ttl_s` of 0; OCTO_EUNSUPPORTED on backends
 * that cannot sign URLs (local: the HTTP API serves such files itself);
 * OCTO_EIO when libs3 cannot sign it; OCTO_ENOMEM. */
OCTO_EXTERN int octo_store_presign(octo_store *store, const char *key,
                                   uint32_t ttl_s, char **url);

/* 1 when `key` is a valid object key, 0 otherwise (NULL included). */
OCTO_EXTERN int octo_store_key_valid(const char *key);

OCTO_END_DECL

#endif
