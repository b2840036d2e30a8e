/* The Octopus HTTP API as a function from request to response, so that
 * any C HTTP server can embed it (octopusd wraps libmicrohttpd). */
/*
 * A request (method, path, query, headers, body) goes in; a response
 * (status, headers, and a body in memory, a file or an event stream)
 * comes out, through a callback.
 *
 * Ownership: octo_api_new() gives an API released with octo_api_free().
 * The store, engine and metrics registry it is given are borrowed and must
 * outlive it; the rest of its options is copied. The request and
 * everything it points to belong to the caller and are only read during
 * octo_api_handle(). The response is handed to the done callback, which
 * owns it and releases it with octo_response_free(); what the accessors
 * return is borrowed from it. A file or an event stream taken from a
 * response belongs to whoever took it.
 *
 * Thread safety: octo_api_handle() may be called from many threads at
 * once, and octo_api_shutdown() from one thread while they run. A response
 * belongs to one thread at a time. A stream may be read and woken on any
 * thread.
 *
 * Errors: only octo_api_new() and octo_api_handle() report any. HTTP
 * errors are responses, with a JSON body {"error","message","requestId"}.
 */
#ifndef OCTOPUS_API_H
#define OCTOPUS_API_H

#include "common.h"
#include "store.h"
#include "job.h"
#include "metrics.h"
#include "trace.h"

OCTO_BEGIN_DECL

typedef struct octo_api octo_api;
typedef struct octo_response octo_response;

typedef struct {
	const char *name;
	const char *value;
} octo_header;

typedef struct {
	const char *method;          /* "GET", "POST", ... */
	const char *path;            /* without the query, e.g. "/health" */
	const char *query;           /* raw query without '?', or NULL */
	const octo_header *headers;  /* names compare case-insensitively */
	size_t header_count;
	const char *body;            /* may hold any bytes, NUL included */
	size_t body_len;
	int body_too_large;          /* the server stopped reading the body
	                                after octo_api_max_body() bytes */
	const char *client;          /* client address: rate limiting, logs */
} octo_request;

typedef struct {
	unsigned int version;           /* OCTO_API_OPTIONS_VERSION */
	size_t max_body_bytes;          /* larger bodies get 413 */
	uint32_t rate_limit_window_ms;  /* fixed window per client address */
	uint32_t rate_limit_max;        /* requests per window; 0 = no limit */
	const char *cors_origins;       /* "*" or "https://a.example,https://b..." */
	int download_delay_enabled;     /* the legacy /v1/download/start waits */
	uint32_t download_delay_min_ms; /* ... a random time in [min, max] */
	uint32_t download_delay_max_ms;
	uint32_t url_ttl_s;             /* lifetime of download URLs handed out */
	/* Stores that cannot presign (local) get URLs to GET /v1/files/<key>,
	 * signed with HMAC-SHA256 under this secret; NULL: no such URLs. */
	const unsigned char *url_secret;
	size_t url_secret_len;          /* at least 16 bytes */
	const char *public_url;         /* "https://dl.example.com": base of those
	                                   URLs; NULL: http://<Host header> */
	uint32_t health_cache_ms;       /* reuse a storage check this long */
	/* Runs the jobs of /v1/download/initiate and serves the job routes
	 * (status, events, cancel, file); borrowed, must outlive the API,
	 * whose event streams take over its listener
	 * (octo_engine_set_listener). NULL: jobs are only recorded. */
	octo_engine *engine;
	uint32_t sse_heartbeat_ms;      /* a comment on idle event streams */
	/* With an engine, the legacy /v1/download/start runs a one-file job
	 * and waits this long for it, then answers 202 with Location. */
	uint32_t start_wait_ms;
	/* Proxies whose X-Forwarded-For names the client's address (for
	 * rate limiting and logs) and whose X-Client-ID names the client (for
	 * the engine's per-client cap): "10.0.0.0/8,192.168.1.2,fd00::/8";
	 * NULL or "": none, the client is the peer's address. */
	const char *trusted_proxies;
	/* Served at GET /metrics in the Prometheus text format (borrowed; it
	 * must outlive the API). NULL: /metrics answers 404. */
	octo_metrics *metrics;
} octo_api_options;

#define OCTO_API_OPTIONS_VERSION 1
#define OCTO_API_OPTIONS_INIT \
	{ OCTO_API_OPTIONS_VERSION, 64 * 1024, 60000, 100, "*", 1, 10000, 120000, \
	  3600, NULL, 0, NULL, 1000, NULL, 15000, 30000, NULL, NULL }

/* Makes the API over `store` (borrowed) and sets *`out` to it. `opts` is
 * copied but for the engine and metrics registry it names (borrowed); NULL
 * means OCTO_API_OPTIONS_INIT. Starts a timer thread and, with an engine, a
 * heartbeat thread for event streams, and takes the engine's listener over.
 * Errors: OCTO_EINVAL, naming the bad option in octo_error_last() (another
 * version; a zero max_body_bytes, rate_limit_window_ms or url_ttl_s; no
 * cors_origins; download_delay_min_ms over download_delay_max_ms; a
 * url_secret under 16 bytes; a public_url that is not http(s) or is over
 * 255 bytes; a trusted_proxies entry that is no address or network);
 * OCTO_ENOMEM; OCTO_ERROR when a thread cannot start. */
OCTO_EXTERN int octo_api_new(octo_api **out, octo_store *store,
                             const octo_api_options *opts);

/* Answers every request of `api` still waiting (the legacy
 * /v1/download/start): without an engine with 503 ("shutting down"), with
 * one with the outcome of its job if the job ended, else with 202 and a
 * Location to follow it. Ends every event stream with a final "shutdown"
 * event. An initiate whose job is being written is answered as it would
 * be, once it is. Returns once those done calls are made. Later, an
 * initiate answers 503 at once, and so does a legacy start without an
 * engine; with one, a legacy start is answered at once with the outcome
 * of its job if it ended, else with 202 and a Location.
 * Idempotent; NULL-safe. */
OCTO_EXTERN void octo_api_shutdown(octo_api *api);

/* Shuts `api` down (see above), gives the engine's listener up and frees
 * `api`. NULL-safe. No octo_api_handle() call may be in flight, and every
 * stream taken from its responses must have been freed. */
OCTO_EXTERN void octo_api_free(octo_api *api);

/* The body size limit of `api` (max_body_bytes): a server should stop
 * reading past it and set request.body_too_large. */
OCTO_EXTERN size_t octo_api_max_body(const octo_api *api);

/* Called exactly once per handled request with its response `resp`, which
 * the callee owns and releases with octo_response_free(), and the `payload`
 * given to octo_api_handle(). Runs either on the caller's thread before
 * octo_api_handle() returns, or later on a thread of the API (for requests
 * that wait, such as the legacy /v1/download/start) or of the store (an
 * initiate, answered once its job is durable): it must be thread-safe and
 * short. */
typedef void (*octo_api_done_cb)(octo_response *resp, void *payload);

/* Handles the request `req` with `api` and hands its response to `done`,
 * with `payload` (borrowed). Returns 0 once `done` has been or will be
 * called; a response that cannot be built whole becomes a 500.
 * Errors, with no call of `done`: OCTO_EINVAL when `req` lacks a method or
 * path; OCTO_ENOMEM when not even a response can be allocated. */
OCTO_EXTERN int octo_api_handle(octo_api *api, const octo_request *req,
                                octo_api_done_cb done, void *payload);

/* The HTTP status code of `resp`. */
OCTO_EXTERN int octo_response_status(const octo_response *resp);
/* The number of headers of `resp`. */
OCTO_EXTERN size_t octo_response_header_count(const octo_response *resp);
/* Sets *`name` and *`value` to the header of `resp` at `index` (from 0),
 * borrowed from it; both to NULL when `index` is out of range. */
OCTO_EXTERN void octo_response_header(const octo_response *resp, size_t index,
                                      const char **name, const char **value);
/* The value of the first header of `resp` called `name` (compared
 * case-insensitively), borrowed from it, or NULL when there is none. */
OCTO_EXTERN const char *octo_response_header_get(const octo_response *resp,
                                                 const char *name);
/* The in-memory body of `resp`, borrowed from it; "" when there is none.
 * Its length goes to *`len` unless `len` is NULL. */
OCTO_EXTERN const char *octo_response_body(const octo_response *resp,
                                           size_t *len);
/* A response may carry a file instead of an in-memory body (GET
 * /v1/files/...). Returns 1 and hands its open descriptor to *`fd` and its
 * size to *`size`, after which the caller owns (and closes) it; 0 when
 * `resp` has no file (or it was taken). A file left untaken is closed by
 * octo_response_free(). */
OCTO_EXTERN int octo_response_take_file(octo_response *resp, int *fd,
                                        uint64_t *size);
/* An event stream (GET /v1/download/<jobId>/events): a body with no end
 * known in advance, which the server pulls as it can send. */
typedef struct octo_stream octo_stream;

/* Returns 1 and hands the stream of `resp` to *`out`; the caller frees it
 * with octo_stream_free() once the connection is done, and before
 * octo_api_free(). Returns 0 when `resp` has no stream (or it was taken). */
OCTO_EXTERN int octo_response_take_stream(octo_response *resp, octo_stream **out);

/* Sets who to tell that the stream `s` has more to send: `wake` (NULL:
 * nobody) is called with `payload` (borrowed) on any thread, at most until
 * octo_stream_free(); it must be quick and thread-safe (such as resuming a
 * suspended connection), and must not call octo_stream_set_wake() or
 * octo_stream_free(), whose lock it runs under. Set it before the first
 * read. */
OCTO_EXTERN void octo_stream_set_wake(octo_stream *s, void (*wake)(void *payload),
                                      void *payload);

/* Copies up to `max` bytes of the stream `s` that are ready to send into
 * `buf`. Returns the count, 0 when nothing is ready (wait for the wake
 * call), or -1 when the stream has ended: after its job's final event, the
 * "error" event of an unknown job, or the "shutdown" event. After the
 * final event of a job, 0 comes until every stream of the job has read
 * its own final event (at most a second); then a wake, and -1. */
OCTO_EXTERN long octo_stream_read(octo_stream *s, char *buf, size_t max);

/* Ends the life of the stream `s`; its wake function is not called once
 * this returns. NULL-safe. No other call on `s` may be in flight. */
OCTO_EXTERN void octo_stream_free(octo_stream *s);

/* The route template that matched the request of `resp`
 * ("/v1/download/check"), or "unmatched": a bounded label for logs and
 * metrics, unlike the raw path. Static. */
OCTO_EXTERN const char *octo_response_route(const octo_response *resp);
/* The request id of `resp`, also sent back in X-Request-ID: the request's
 * own X-Request-ID when it is 1..128 characters of [A-Za-z0-9._-], else a
 * new UUID. Borrowed. */
OCTO_EXTERN const char *octo_response_request_id(const octo_response *resp);
/* The W3C trace id of the request of `resp`: the caller's, from a valid
 * traceparent header, or a new one. The response's traceparent header names
 * it. Borrowed. */
OCTO_EXTERN const char *octo_response_trace_id(const octo_response *resp);
/* The client's address as rate limiting saw it: the request's `client`, or
 * when that is a trusted proxy, the address X-Forwarded-For names (read
 * right to left past trusted proxies). "" when unknown. Borrowed from
 * `resp`. */
OCTO_EXTERN const char *octo_response_client(const octo_response *resp);

/* Frees the response `resp`, closing a file it still holds and freeing a
 * stream it still holds. NULL-safe. */
OCTO_EXTERN void octo_response_free(octo_response *resp);

OCTO_END_DECL

#endif
