/* Download jobs: a durable queue of files to prepare, worked by a bounded
 * pool of threads, observable while it runs. */
/*
 * An engine owns jobs over a store and a processor, the caller's function
 * that prepares one file. Every job is written to the store as
 * "jobs/<id>.json" before octo_engine_submit() returns and on every change
 * of state, so a restarted engine resumes whatever was unfinished (files
 * in flight are prepared again: processors must be idempotent).
 *
 * States: a file is pending, processing, completed, failed or cancelled;
 * a job is queued, processing, then completed (every file completed),
 * partial (some completed, some failed), failed (none completed) or
 * cancelled.
 *
 * Ownership: octo_engine_new() gives an engine released with
 * octo_engine_free(). The store, metrics registry and log an engine is
 * given are borrowed and must outlive it; options and job options are
 * copied. Snapshots are JSON text the caller owns and releases with
 * octo_free(). An octo_task and everything it hands out are borrowed from
 * the engine for the duration of one processor call.
 *
 * Thread safety: every function may be called from any thread at once,
 * except octo_engine_start() (once) and octo_engine_free(). The processor
 * runs on the engine's workers, the listener on whichever thread made a
 * change.
 *
 * Errors: see each function. Errors of the asynchronous work travel with
 * the job: each file's "error" in its snapshot.
 */
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

/* Prepares one file: makes the object octo_task_key(`task`) exist in
 * octo_task_store(`task`). Gets the `payload` given to octo_engine_new().
 * Runs on a worker thread, several at once for different files; a file
 * wanted by several jobs at once is prepared once for all, and a file whose
 * object already exists is completed without a call. It should check
 * octo_task_should_stop() (or wait with octo_task_sleep()) and return soon
 * after it says stop: the time limit is not enforced. Returns 0 once the
 * object exists (the engine then checks that it does), or a negative
 * OCTO_E* code, which with this thread's octo_error_last() becomes the
 * file's error. A failed attempt is tried again with backoff up to
 * max_attempts, unless the job was cancelled (the file is then cancelled)
 * or the engine's shutdown grace ran out (it stays pending for the next
 * start); the code does not matter for that. */
typedef int (*octo_processor)(octo_task *task, void *payload);

/* The id of the file `task` prepares. */
OCTO_EXTERN int64_t octo_task_file_id(const octo_task *task);
/* The engine's store, where the file of `task` belongs. Borrowed. */
OCTO_EXTERN octo_store *octo_task_store(const octo_task *task);
/* The key of the object `task` must make: "downloads/<file_id>.zip".
 * Borrowed for the processor call. */
OCTO_EXTERN const char *octo_task_key(const octo_task *task);
/* Which attempt at its file `task` is, from 1. */
OCTO_EXTERN unsigned octo_task_attempt(const octo_task *task);
/* Reports the progress of `task`, `fraction` in [0, 1] (clamped; NaN counts
 * as 0). A change within the same thousandth is ignored; others reach
 * snapshots and the listener at once and the store at most every
 * progress_persist_ms, so the call may take as long as a store write. */
OCTO_EXTERN void octo_task_progress(octo_task *task, double fraction);
/* 1 when `task` should stop now: its job was cancelled, the attempt is past
 * file_timeout_ms, or the engine's shutdown grace ran out; else 0. */
OCTO_EXTERN int octo_task_should_stop(const octo_task *task);
/* Waits `ms` milliseconds and returns 0, or returns 1 as soon as `task`
 * should stop (see octo_task_should_stop()). */
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

/* Makes an engine over `store` (borrowed) that prepares files with
 * `processor`, which gets `payload` (borrowed), and sets *`out` to it.
 * `opts` is copied, the webhook secret included; NULL means
 * OCTO_ENGINE_OPTIONS_INIT. With a metrics registry, registers the engine's
 * metrics in it now. No thread runs until octo_engine_start(), but jobs may
 * be submitted before: they wait.
 * Errors: OCTO_EINVAL for bad options (another version, workers outside
 * 1..1024, a zero queue_max, max_attempts or file_timeout_ms,
 * backoff_cap_ms under backoff_base_ms, a webhook_secret that is empty,
 * over 256 bytes or a "whsec_" secret that is not base64); the registration
 * errors of octo_metrics_counter(); OCTO_ENOMEM. */
OCTO_EXTERN int octo_engine_new(octo_engine **out, octo_store *store,
                                octo_processor processor, void *payload,
                                const octo_engine_options *opts);

/* Loads every job record of the store of `engine`, queues the files of
 * unfinished jobs, and starts the workers (and the webhook and retention
 * threads the options call for). Finished jobs are kept for snapshots,
 * retention and webhooks still owed. A file whose attempts were cut short
 * by restarts too often is failed. Records that cannot be read are skipped
 * and logged; their number goes to *`skipped` unless `skipped` is NULL. A
 * job resumed is never refused for a full queue.
 * Errors: OCTO_EINVAL when already started; OCTO_ESHUTDOWN after
 * octo_engine_shutdown(); a storage error from listing the records;
 * OCTO_ENOMEM; OCTO_ERROR when no worker thread can start.
 * Thread safety: call it once, from one thread. */
OCTO_EXTERN int octo_engine_start(octo_engine *engine, size_t *skipped);

/* Gives `engine` a job of the `count` file ids at `file_ids`
 * (1..OCTO_JOB_FILES_MAX, each in [10000, 100000000]; copied) and writes it
 * durably before writing its id to `job_id` (OCTO_JOB_ID_LEN + 1 bytes).
 * Errors: OCTO_EINVAL for a bad count or id; OCTO_EBUSY when the queue
 * lacks room for its files; OCTO_ESHUTDOWN after octo_engine_shutdown(); a
 * storage error when the record cannot be written (the job is then not
 * accepted); OCTO_ENOMEM. */
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
	 * files and callback URL gets the first job's id (and 1) instead of a
	 * new job; with other files or URL it gets OCTO_ECONFLICT. Kept with
	 * the job, across restarts. The job's id is then made from the key
	 * and the request (a version 8 UUID), so that a retry whose first
	 * attempt was written after all names the same job. NULL: none (a
	 * random id). */
	const char *idempotency_key;
	/* Who asked (an address, a client id; at most 64 bytes, longer is
	 * cut), for the engine's client_max_active. NULL: nobody in particular. */
	const char *client;
} octo_job_options;

#define OCTO_JOB_OPTIONS_VERSION 1
#define OCTO_JOB_OPTIONS_INIT { OCTO_JOB_OPTIONS_VERSION, NULL, NULL, NULL }

/* octo_engine_submit() of `count` `file_ids` to `engine` with `options`
 * (NULL: none; copied). Returns 0 for a new job, 1 when the idempotency key
 * named an earlier one (whose id is then in `job_id`).
 * Errors: those of octo_engine_submit(); OCTO_EINVAL also for a bad
 * idempotency key, options of another version, a callback URL that is
 * not http(s) or is too long, or one given to an engine without
 * webhook_secret; OCTO_ECONFLICT when the idempotency key was used
 * with other files or another callback URL; OCTO_EBUSY also while another
 * submit with the same key is being written. */
OCTO_EXTERN int octo_engine_submit_with(octo_engine *engine, const int64_t *file_ids,
                                        size_t count, const octo_job_options *options,
                                        char *job_id);

/* How an octo_engine_submit_async() ended: `rc` as
 * octo_engine_submit_with() returns it (an error with octo_error_last()
 * set on the calling thread), and the job's id, borrowed for the call
 * (NULL on error). */
typedef void (*octo_engine_submit_cb)(int rc, const char *job_id, void *payload);

/* octo_engine_submit_with() without holding the calling thread while the
 * job's record is written: a server's thread serves other requests
 * meanwhile, and every submit in flight can share the store's next sync.
 * Returns 0, and `done` is then called exactly once: on this thread
 * before the call returns, or on the store's commit thread once the
 * record is durable. The job is accepted only if `done` gets 0 or 1.
 * Errors, when `done` is not called: OCTO_EINVAL for no `done` and as
 * octo_engine_submit_with(), and the others it finds before writing
 * (OCTO_ECONFLICT, OCTO_EBUSY, OCTO_ESHUTDOWN, OCTO_ENOMEM); a storage
 * error comes through `done`. octo_engine_shutdown() waits for the
 * `done` calls owed. */
OCTO_EXTERN int octo_engine_submit_async(octo_engine *engine, const int64_t *file_ids,
                                         size_t count, const octo_job_options *options,
                                         octo_engine_submit_cb done, void *payload);

/* Sets *`json` to the state of the job `job_id` of `engine` as JSON text,
 * released with octo_free(): {"version","jobId","status","totalFileIds",
 * "completedFileIds","failedFileIds","progress","files":[{"file_id",
 * "status","progress","attempts","size","error"}],"createdAt","updatedAt",
 * "seq"}, plus "client", "idempotencyKey" and "requestHash", "callbackUrl"
 * and "webhook" when the job has them. Progress is in thousandths
 * (0..1000); "size" and "error" are null until known. `seq` grows with
 * every change. A job this engine does not hold (another engine on the same
 * store accepted it: a replica) is read from its record, which every change
 * of state rewrites (progress at most every progress_persist_ms).
 * Errors: OCTO_ENOTFOUND for an unknown id, NULL included, or a record that
 * cannot be read; OCTO_ENOMEM. */
OCTO_EXTERN int octo_engine_snapshot(octo_engine *engine, const char *job_id,
                                     char **json);

/* Sets *`seq` to the change counter of the job `job_id` of `engine`,
 * cheaper than a snapshot.
 * Errors: OCTO_ENOTFOUND when `engine` does not hold the job (a replica's
 * jobs included). */
OCTO_EXTERN int octo_engine_seq(octo_engine *engine, const char *job_id,
                                uint64_t *seq);

/* Cancels the job `job_id` of `engine`: pending files are cancelled,
 * running ones asked to stop. Idempotent; a finished job stays as it was.
 * Errors: OCTO_ENOTFOUND when `engine` does not hold the job; a storage
 * error when its record cannot be written (the cancellation holds in memory
 * all the same, and the next change writes it). */
OCTO_EXTERN int octo_engine_cancel(octo_engine *engine, const char *job_id);

/* Told after a change of the job `job_id` (borrowed for the call): its new
 * `seq`, and `finished` 1 once it is in a final state; gets the `payload`
 * given to octo_engine_set_listener(). Runs on the thread that made the
 * change, possibly several at once, outside the engine's lock: it must be
 * quick and thread-safe, may read the engine (snapshot, seq, stats) but
 * must not shut it down or free it. A submit is not a change. */
typedef void (*octo_engine_listener)(const char *job_id, uint64_t seq,
                                     int finished, void *payload);
/* Makes `fn` (NULL: none) the listener of `engine`, with `payload`
 * (borrowed), in place of any other. When it returns, no call of the
 * previous listener is running or will start, so its payload may be
 * freed; it waits for calls in progress, so a listener must not call it.
 * An API given this engine takes the listener over for its event
 * streams. */
OCTO_EXTERN void octo_engine_set_listener(octo_engine *engine,
                                          octo_engine_listener fn, void *payload);

/* Inputs for Retry-After estimates from `engine`, each written unless its
 * pointer is NULL: *`queued`, the files waiting in the queue;
 * *`median_file_ms`, the median time of the last 64 files prepared (0
 * before any); *`workers`, the number of workers configured. */
OCTO_EXTERN void octo_engine_stats(octo_engine *engine, size_t *queued,
                                   uint32_t *median_file_ms, unsigned *workers);

/* Stops `engine` accepting jobs, waits for the submits being written
 * (their callers, or their done calls, get their answer), lets running
 * files finish for up to `grace_ms`, then asks them to stop, and returns
 * once every worker returned (however long a processor takes to notice). Unfinished files and
 * webhooks still owed stay in the store for the next start. The engine
 * cannot be started again. Idempotent; NULL-safe. */
OCTO_EXTERN void octo_engine_shutdown(octo_engine *engine, uint32_t grace_ms);

/* Shuts `engine` down (grace 0) and frees it. NULL-safe. An API given the
 * engine must be freed first. */
OCTO_EXTERN void octo_engine_free(octo_engine *engine);

OCTO_END_DECL

#endif
