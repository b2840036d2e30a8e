/* Structured logging: one JSON object per line on stderr or in a file,
 * optionally also shipped to Elasticsearch in _bulk batches. */
/*
 * Ownership: octo_log_new() returns a logger the caller releases with
 * octo_log_free(); the options' strings are copied. Messages and fields
 * are copied before octo_log_write() returns.
 *
 * Thread safety: octo_log_write(), octo_log_enabled(), octo_log_reopen(),
 * octo_log_flush() and octo_log_get_stats() may be called from any thread
 * at once; octo_log_free() only once no other call is in flight. Each line
 * is written with a single write(2), so lines from several threads (and
 * processes appending to one file) never interleave. Writing never waits
 * for Elasticsearch: when its buffer is full, records are dropped and
 * counted.
 *
 * Errors: see each function. Writing a record never fails visibly: a line
 * that cannot be written is lost and not counted as written.
 */
#ifndef OCTOPUS_LOG_H
#define OCTOPUS_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

OCTO_BEGIN_DECL

typedef struct octo_log octo_log;

typedef enum {
	OCTO_LOG_DEBUG,
	OCTO_LOG_INFO,
	OCTO_LOG_WARN,
	OCTO_LOG_ERROR
} octo_log_level;

/* Sets *`out` to the level called `name`: "debug", "info", "warn" (or
 * "warning") or "error", in any case.
 * Errors: OCTO_EINVAL for any other name. */
OCTO_EXTERN int octo_log_level_parse(const char *name, octo_log_level *out);
/* The name of `level`: "debug", "info", "warn" or "error"; "unknown" out of
 * range. Static. */
OCTO_EXTERN const char *octo_log_level_name(octo_log_level level);

/* A typed field of a record. Fields with a NULL key, a key that repeats
 * a line's own fields (timestamp, level, service, message) or a key seen
 * earlier in the same record are skipped: the first one wins. */
typedef enum {
	OCTO_LOG_FIELD_STR,
	OCTO_LOG_FIELD_INT,
	OCTO_LOG_FIELD_DOUBLE,
	OCTO_LOG_FIELD_BOOL
} octo_log_field_type;

typedef struct {
	const char *key;
	octo_log_field_type type;
	const char *s;   /* STR: any bytes; NULL is written as null */
	int64_t i;       /* INT, and BOOL (0 or not) */
	double d;        /* DOUBLE; not finite is written as null */
} octo_log_field;

#define OCTO_LOG_STR(k, v) { (k), OCTO_LOG_FIELD_STR, (v), 0, 0.0 }
#define OCTO_LOG_INT(k, v) { (k), OCTO_LOG_FIELD_INT, NULL, (int64_t)(v), 0.0 }
#define OCTO_LOG_DOUBLE(k, v) { (k), OCTO_LOG_FIELD_DOUBLE, NULL, 0, (double)(v) }
#define OCTO_LOG_BOOL(k, v) { (k), OCTO_LOG_FIELD_BOOL, NULL, !!(v), 0.0 }

typedef struct {
	unsigned int version;     /* OCTO_LOG_OPTIONS_VERSION */
	const char *service;      /* the "service" of every line */
	octo_log_level level;     /* records below it are not written */
	const char *path;         /* NULL: stderr; else appended to (created 0640) */
	/* Elasticsearch shipping, off when NULL: "http://host:9200" (a path
	 * prefix is kept). Documents go to <index_prefix><YYYY.MM.DD> (UTC, from
	 * the record's time) with the Elastic Common Schema names. */
	const char *elasticsearch_url;
	const char *index_prefix;  /* "logs-octopus-" */
	size_t es_buffer_max;      /* records waiting; more are dropped */
	size_t es_batch_max;       /* records per _bulk request */
	uint32_t es_flush_ms;      /* a partial batch waits at most this long */
	uint32_t es_timeout_ms;    /* one _bulk request, connection included */
	uint32_t es_retry_max_ms;  /* cap of the backoff between retries */
} octo_log_options;

#define OCTO_LOG_OPTIONS_VERSION 1
#define OCTO_LOG_OPTIONS_INIT \
	{ OCTO_LOG_OPTIONS_VERSION, "octopus-api", OCTO_LOG_INFO, NULL, NULL, \
	  "logs-octopus-", 10000, 500, 1000, 5000, 30000 }

/* Makes a logger as `opts` says (start from OCTO_LOG_OPTIONS_INIT) and sets
 * *`out` to it, or to NULL on failure. With an elasticsearch_url, a
 * background thread ships the records.
 * Errors: OCTO_EINVAL for bad options (another version, no service, a level
 * out of range; with elasticsearch_url: a URL that is not http(s), an
 * index_prefix Elasticsearch would refuse, or a zero es_buffer_max,
 * es_batch_max, es_timeout_ms or es_retry_max_ms); OCTO_EIO when the file
 * cannot be opened; OCTO_ENOMEM; OCTO_ERROR when the thread cannot start. */
OCTO_EXTERN int octo_log_new(octo_log **out, const octo_log_options *opts);

/* Gives the records still buffered for Elasticsearch one last attempt
 * (bounded by es_timeout_ms; what does not get through is dropped), then
 * closes the file and frees `log`. NULL-safe. */
OCTO_EXTERN void octo_log_free(octo_log *log);

/* 1 when `log` would write a record of `level`, else 0, so callers can skip
 * building fields. `log` may be NULL: 0. */
OCTO_EXTERN int octo_log_enabled(const octo_log *log, octo_log_level level);

/* Writes one record of `level`, with the text `message` and the `count`
 * entries of `fields`: {"timestamp":"2026-01-02T03:04:05.678Z","level":...,
 * "service":...,"message":..., fields...}; with Elasticsearch, also queues
 * it for shipping. Any bytes in `message` or string fields come out as
 * valid JSON (invalid UTF-8 becomes U+FFFD); a NULL `message` is written as
 * "". `log` may be NULL, and a level under the threshold writes nothing;
 * `fields` may be NULL (then `count` is ignored). Leaves errno and
 * octo_error_last() as they were. */
OCTO_EXTERN void octo_log_write(octo_log *log, octo_log_level level,
                                const char *message,
                                const octo_log_field *fields, size_t count);

/* Reopens the file of `log` by its path (after logrotate moved it, on
 * SIGHUP). The new file takes the old one's descriptor in one step, so a
 * line written meanwhile goes whole to one file or the other. Returns 0 at
 * once when `log` is NULL or writes to stderr.
 * Errors: OCTO_EIO when the file cannot be opened (the old one stays in
 * use). */
OCTO_EXTERN int octo_log_reopen(octo_log *log);

/* Waits until every record of `log` buffered for Elasticsearch was sent or
 * given up, at most `timeout_ms`; a partial batch goes out at once. Returns
 * 0 at once when `log` is NULL or ships nothing.
 * Errors: OCTO_EUNAVAILABLE when records still wait at the timeout. */
OCTO_EXTERN int octo_log_flush(octo_log *log, uint32_t timeout_ms);

typedef struct {
	uint64_t written;   /* records written to stderr or the file */
	uint64_t shipped;   /* records Elasticsearch accepted */
	uint64_t dropped;   /* records lost: buffer full, rejected by
	                       Elasticsearch, or retries exhausted at shutdown */
	uint64_t retried;   /* _bulk requests or items sent again */
	uint64_t buffered;  /* records waiting for Elasticsearch now */
} octo_log_stats;

/* Fills *`out` with the counters of `log`: all zero when `log` is NULL;
 * nothing happens when `out` is NULL. */
OCTO_EXTERN void octo_log_get_stats(const octo_log *log, octo_log_stats *out);

OCTO_END_DECL

#endif
