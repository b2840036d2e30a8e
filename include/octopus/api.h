/* The Octopus HTTP API, independent of any HTTP server: a request (method,
 * path, query, headers, body) goes in, a response (status, headers, body)
 * comes out. Any C HTTP server can embed it; octopusd wraps libmicrohttpd.
 *
 * Ownership: the request and everything it points to belong to the caller
 * and are only read during octo_api_handle(). The response is handed to the
 * done callback, which owns it and releases it with octo_response_free().
 * Threads: octo_api_handle() may be called from many threads at once. */
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

/* Creates the API over `store` (borrowed: it must outlive the API).
 * `opts` is copied; NULL means OCTO_API_OPTIONS_INIT. OCTO_EINVAL names
 * the bad option in octo_error_last(). */
OCTO_EXTERN int octo_api_new(octo_api **out, octo_store *store,
                             const octo_api_options *opts);

/* Answers every request still waiting (503, "shutting down") and makes
 * later ones that would wait answer 503 at once. Idempotent. */
OCTO_EXTERN void octo_api_shutdown(octo_api *api);

/* Shuts down (see above) and frees. NULL-safe. No octo_api_handle() call
 * may be in flight. */
OCTO_EXTERN void octo_api_free(octo_api *api);

/* The body size limit: a server should stop reading past it and set
 * request.body_too_large. */
OCTO_EXTERN size_t octo_api_max_body(const octo_api *api);

/* Called exactly once per handled request with its response, which the
 * callee owns. Runs either on the caller's thread before octo_api_handle()
 * returns, or later on a thread of the API (for requests that wait, such
 * as the legacy /v1/download/start): it must be thread-safe and short. */
typedef void (*octo_api_done_cb)(octo_response *resp, void *payload);

/* Handles one request. Returns 0 once `done` has been or will be called;
 * OCTO_EINVAL (and no call of `done`) when the request lacks a method or
 * path, OCTO_ENOMEM when even an error response cannot be built. */
OCTO_EXTERN int octo_api_handle(octo_api *api, const octo_request *req,
                                octo_api_done_cb done, void *payload);

/* Response accessors. Strings are borrowed from the response. */
OCTO_EXTERN int octo_response_status(const octo_response *resp);
OCTO_EXTERN size_t octo_response_header_count(const octo_response *resp);
OCTO_EXTERN void octo_response_header(const octo_response *resp, size_t index,
                                      const char **name, const char **value);
/* The value of the first header called `name` (case-insensitive), or NULL. */
OCTO_EXTERN const char *octo_response_header_get(const octo_response *resp,
                                                 const char *name);
OCTO_EXTERN const char *octo_response_body(const octo_response *resp,
                                           size_t *len);
/* A response may carry a file instead of an in-memory body (GET
 * /v1/files/...). Returns 1 and hands the open descriptor and its size to
 * the caller, who then owns (and closes) it; 0 when the body is in memory.
 * A file left untaken is closed by octo_response_free(). */
OCTO_EXTERN int octo_response_take_file(octo_response *resp, int *fd,
                                        uint64_t *size);
/* An event stream (GET /v1/download/<jobId>/events): a body with no end
 * known in advance, which the server pulls as it can send. */
typedef struct octo_stream octo_stream;

/* Returns 1 and hands the response's stream to the caller, who frees it
 * with octo_stream_free() once the connection is done; 0 for others. */
OCTO_EXTERN int octo_response_take_stream(octo_response *resp, octo_stream **out);

/* Who to tell that a stream has more to send: called on any thread, at
 * most until octo_stream_free(); must be quick and thread-safe (such as
 * resuming a suspended connection). Set it before the first read. */
OCTO_EXTERN void octo_stream_set_wake(octo_stream *s, void (*wake)(void *payload),
                                      void *payload);

/* Copies up to `max` bytes that are ready to send into `buf`. Returns
 * the count, 0 when nothing is ready (wait for the wake call), or -1 when
 * the stream has ended. */
OCTO_EXTERN long octo_stream_read(octo_stream *s, char *buf, size_t max);

/* Ends a stream's life; its wake function is not called after this. */
OCTO_EXTERN void octo_stream_free(octo_stream *s);

/* The route template that matched ("/v1/download/check"), or "unmatched":
 * a bounded label for logs and metrics, unlike the raw path. */
OCTO_EXTERN const char *octo_response_route(const octo_response *resp);
/* The request id sent back in X-Request-ID. */
OCTO_EXTERN const char *octo_response_request_id(const octo_response *resp);
/* The W3C trace id of the request: the caller's, from a valid traceparent
 * header, or a new one. The response's traceparent header names it. */
OCTO_EXTERN const char *octo_response_trace_id(const octo_response *resp);
/* The client's address as rate limiting saw it: the request's `client`,
 * or when that is a trusted proxy, the address X-Forwarded-For names
 * (read right to left past trusted proxies). "" when unknown. */
OCTO_EXTERN const char *octo_response_client(const octo_response *resp);

/* Frees a response. NULL-safe. */
OCTO_EXTERN void octo_response_free(octo_response *resp);

OCTO_END_DECL

#endif
