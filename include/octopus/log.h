/* Structured logging: one JSON object per line on stderr or in a file, and
 * optionally shipped to Elasticsearch in _bulk batches by a background thread. */
/*
 * Ownership: octo_log_new() returns a logger the caller releases with
 * octo_log_free(). Messages and fields are copied before octo_log_write()
 * returns.
 *
 * Thread safety: octo_log_write(), octo_log_enabled(), octo_log_reopen(),
 * octo_log_flush() and octo_log_stats() may be called from any thread at
 * once. Each line is written with a single write(2), so lines from several
 * threads (and processes appending to one file) never interleave. Writing
 * never waits for Elasticsearch: when its buffer is full, records are
 * dropped and counted.
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

/* "debug", "info", "warn" (or "warning"), "error", in any case.
 * OCTO_EINVAL for anything else. */
OCTO_EXTERN int octo_log_level_parse(const char *name, octo_log_level *out);
/* "debug", "info", "warn", "error"; "unknown" out of range. */
OCTO_EXTERN const char *octo_log_level_name(octo_log_level level);

/* A typed field of a record. Keys that repeat a line's own fields
 * (timestamp, level, service, message) are skipped. */
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

/* OCTO_EINVAL for bad options (no service, a URL that is not http(s),
 * zero sizes); OCTO_EIO when the file cannot be opened. */
OCTO_EXTERN int octo_log_new(octo_log **out, const octo_log_options *opts);

/* Ships what is buffered (bounded by es_timeout_ms), then frees. NULL-safe. */
OCTO_EXTERN void octo_log_free(octo_log *log);

/* Whether a record of this level would be written; lets callers skip
 * building fields. 0 for a NULL logger. */
OCTO_EXTERN int octo_log_enabled(const octo_log *log, octo_log_level level);

/* Writes one record: {"timestamp":"2026-01-02T03:04:05.678Z","level":...,
 * "service":...,"message":..., fields...}. Any bytes in message or string
 * fields come out as valid JSON (invalid UTF-8 becomes U+FFFD). A NULL
 * logger or a level under the threshold writes nothing. */
OCTO_EXTERN void octo_log_write(octo_log *log, octo_log_level level,
                                const char *message,
                                const octo_log_field *fields, size_t count);

/* Reopens the file by its path (after logrotate moved it, on SIGHUP).
 * 0 without a file; OCTO_EIO if it cannot be opened (the old one stays). */
OCTO_EXTERN int octo_log_reopen(octo_log *log);

/* Waits until every record buffered for Elasticsearch was sent or given
 * up, at most timeout_ms. 0 when done, OCTO_EUNAVAILABLE on timeout. */
OCTO_EXTERN int octo_log_flush(octo_log *log, uint32_t timeout_ms);

typedef struct {
	uint64_t written;   /* records written to stderr or the file */
	uint64_t shipped;   /* records Elasticsearch accepted */
	uint64_t dropped;   /* records lost: buffer full, rejected by
	                       Elasticsearch, or retries exhausted at shutdown */
	uint64_t retried;   /* _bulk requests or items sent again */
	uint64_t buffered;  /* records waiting for Elasticsearch now */
} octo_log_stats;

OCTO_EXTERN void octo_log_get_stats(const octo_log *log, octo_log_stats *out);

OCTO_END_DECL

#endif
