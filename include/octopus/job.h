/* Download jobs: a durable queue of files to prepare, worked by a bounded
 * pool of threads, observable while it runs.
 *
 * An engine owns jobs over a store (borrowed: it must outlive the engine)
 * and a processor, the caller's function that prepares one file. Every
 * job is written to the store as "jobs/<id>.json" before
 * octo_engine_submit() returns and on every change of state, so a
 * restarted engine resumes whatever was unfinished (files in flight are
 * prepared again: processors must be idempotent).
 *
 * States: a file is pending, processing, completed, failed or cancelled;
 * a job is queued, processing, then completed (every file completed),
 * partial (some completed, some failed), failed (none completed) or
 * cancelled.
 *
 * Threads: every function may be called from any thread. Snapshots are
 * JSON text the caller owns and releases with octo_free(). */
#ifndef OCTOPUS_JOB_H
#define OCTOPUS_JOB_H

#include "common.h"
#include "store.h"
#include "metrics.h"
#include "log.h"

OCTO_BEGIN_DECL

typedef struct octo_engine octo_engine;
typedef struct octo_task octo_task;

#define OCTO_JOB_ID_LEN 36          /* a UUID in text */
#define OCTO_JOB_FILES_MAX 1000

/* Prepares one file: makes the object octo_task_key() exist in
 * octo_task_store(). Returns 0, or a negative OCTO_E* code: the file is
 * tried again (up to max_attempts) unless the code is OCTO_EABORTED
 * after octo_task_should_stop(). Runs on a worker thread. */
typedef int (*octo_processor)(octo_task *task, void *payload);

OCTO_EXTERN int64_t octo_task_file_id(const octo_task *task);
OCTO_EXTERN octo_store *octo_task_store(const octo_task *task);
/* "downloads/<file_id>.zip": where the prepared file belongs. Borrowed. */
OCTO_EXTERN const char *octo_task_key(const octo_task *task);
/* Which attempt this is, from 1. */
OCTO_EXTERN unsigned octo_task_attempt(const octo_task *task);
/* Reports progress, a fraction in [0, 1]. */
OCTO_EXTERN void octo_task_progress(octo_task *task, double fraction);
/* 1 when the task should stop now: cancelled, past its time limit, or the
 * engine is shutting down. */
OCTO_EXTERN int octo_task_should_stop(const octo_task *task);
/* Waits up to `ms`, returning early (1) when the task should stop. */
OCTO_EXTERN int octo_task_sleep(octo_task *task, uint32_t ms);

typedef struct {
	unsigned int version;       /* OCTO_ENGINE_OPTIONS_VERSION */
	unsigned workers;           /* threads preparing files */
	size_t queue_max;           /* files waiting at most; more: OCTO_EBUSY */
	unsigned max_attempts;      /* tries per file */
	uint32_t file_timeout_ms;   /* time limit of one attempt */
	uint32_t backoff_base_ms;   /* retry after base * 2^(attempt-1) ... */
	uint32_t backoff_cap_ms;    /* ... capped here */
	uint32_t progress_persist_ms; /* progress is written at most this often */
	/* Webhooks: a job with a callback URL is POSTed its final status,
	 * signed under this secret ("whsec_<base64>" or raw text; copied).
	 * NULL: jobs with a callback URL are refused. */
	const char *webhook_secret;
	uint32_t webhook_timeout_ms;    /* bound on one delivery attempt */
	unsigned webhook_max_attempts;  /* then it is given up (and says why) */
	/* A finished job (and its record) is removed this long after it
	 * ended, once its webhook is done; 0 keeps jobs forever. */
	uint32_t retention_s;
	/* At most this many files of one client are prepared at once, so one
	 * client cannot take every worker; 0: no limit. */
	unsigned client_max_active;
	/* Borrowed; NULL for none. The engine registers its download_*
	 * metrics and active_downloads in `metrics`, and writes what happens
	 * to jobs and files to `log`. Both must outlive the engine. */
	octo_metrics *metrics;
	octo_log *log;
} octo_engine_options;

#define OCTO_ENGINE_OPTIONS_VERSION 1
#define OCTO_ENGINE_OPTIONS_INIT \
	{ OCTO_ENGINE_OPTIONS_VERSION, 4, 10000, 3, 300000, 1000, 30000, 1000, \
	  NULL, 10000, 8, 0, 0, NULL, NULL }

/* Creates an engine; no thread runs until octo_engine_start(). */
OCTO_EXTERN int octo_engine_new(octo_engine **out, octo_store *store,
                                octo_processor processor, void *payload,
                                const octo_engine_options *opts);

/* Loads every unfinished job from the store (records that cannot be read
 * are skipped: their ids and reasons are counted in *skipped when it is
 * not NULL), queues their files, and starts the workers. A job resumed
 * is never refused for a full queue. */
OCTO_EXTERN int octo_engine_start(octo_engine *engine, size_t *skipped);

/* Accepts a job of `count` file ids (1..OCTO_JOB_FILES_MAX, each in
 * [10000, 100000000]) and writes it durably before returning its id in
 * `job_id` (OCTO_JOB_ID_LEN + 1 bytes). OCTO_EBUSY when the queue lacks
 * room for its files; OCTO_ESHUTDOWN after octo_engine_shutdown(). */
OCTO_EXTERN int octo_engine_submit(octo_engine *engine, const int64_t *file_ids,
                                   size_t count, char *job_id);

/* What a job may ask for besides its files. */
typedef struct {
	unsigned int version;      /* OCTO_JOB_OPTIONS_VERSION */
	/* When the job ends, its final status is POSTed here (http or https,
	 * at most 2048 bytes), retried with backoff up to the engine's
	 * webhook_max_attempts; the status shows "webhook":{"attempts",
	 * "delivered","lastError"}. Copied. */
	const char *callback_url;
	/* A client's key for retrying a submit safely (1..255 bytes of
	 * [A-Za-z0-9._:-]): a second submit with the same key and the same
	 * files and callback URL gets the first job's id (and 0) instead of a
	 * new job; with other files or URL it gets OCTO_ECONFLICT. Kept with
	 * the job, across restarts. NULL: none. */
	const char *idempotency_key;
	/* Who asked (an address, a client id; at most 64 bytes), for the
	 * engine's client_max_active. NULL: nobody in particular. */
	const char *client;
} octo_job_options;

#define OCTO_JOB_OPTIONS_VERSION 1
#define OCTO_JOB_OPTIONS_INIT { OCTO_JOB_OPTIONS_VERSION, NULL, NULL, NULL }

/* octo_engine_submit() with options (NULL: none). Returns 0 for a new
 * job, 1 when the idempotency key named an earlier one (whose id is then
 * in job_id). OCTO_EINVAL for a bad callback URL or idempotency key, or a
 * callback URL without a webhook secret; OCTO_ECONFLICT as above. */
OCTO_EXTERN int octo_engine_submit_with(octo_engine *engine, const int64_t *file_ids,
                                        size_t count, const octo_job_options *options,
                                        char *job_id);

/* The job's state as JSON:
 * {"jobId","status","totalFileIds","completedFileIds","failedFileIds",
 *  "progress","files":[{"file_id","status","progress","attempts","size",
 *  "error"}],"createdAt","updatedAt","seq"}. `seq` grows with every
 * change. A job this engine does not hold (another engine on the same
 * store accepted it: a replica) is read from its record, which every
 * change of state rewrites (progress at most every progress_persist_ms).
 * OCTO_ENOTFOUND for an unknown id. */
OCTO_EXTERN int octo_engine_snapshot(octo_engine *engine, const char *job_id,
                                     char **json);

/* The change counter of a job, cheaper than a snapshot. */
OCTO_EXTERN int octo_engine_seq(octo_engine *engine, const char *job_id,
                                uint64_t *seq);

/* Cancels a job: pending files are cancelled, running ones asked to stop.
 * Idempotent; a finished job stays as it was. OCTO_ENOTFOUND if unknown. */
OCTO_EXTERN int octo_engine_cancel(octo_engine *engine, const char *job_id);

/* Called after every change of a job, on the thread that made it; must
 * be quick and must not call back into the engine. */
typedef void (*octo_engine_listener)(const char *job_id, uint64_t seq,
                                     int finished, void *payload);
OCTO_EXTERN void octo_engine_set_listener(octo_engine *engine,
                                          octo_engine_listener fn, void *payload);

/* Files waiting in the queue, and the median time of the last prepared
 * files in ms (0 before any): inputs for Retry-After estimates. */
OCTO_EXTERN void octo_engine_stats(octo_engine *engine, size_t *queued,
                                   uint32_t *median_file_ms, unsigned *workers);

/* Stops accepting jobs, lets running files finish for up to `grace_ms`,
 * then asks them to stop; unfinished files stay pending in the store for
 * the next start. Idempotent. */
OCTO_EXTERN void octo_engine_shutdown(octo_engine *engine, uint32_t grace_ms);

/* Shuts down (grace 0) and frees. NULL-safe. */
OCTO_EXTERN void octo_engine_free(octo_engine *engine);

OCTO_END_DECL

#endif
