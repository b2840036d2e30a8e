/* The libmicrohttpd adapter. MHD calls on_request several times per
 * request: once with the headers, then with body chunks, then once with
 * nothing more to read; only then does the API see the request. */
#include "config.h"
#include "http.h"
#include "settings.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <octopus/log.h>
#include <octopus/metrics.h>

#define DRAIN_TIMEOUT_MS 5000

/* One open connection, for the request deadline below. */
typedef struct peer {
	struct peer *prev, *next;
	int fd;
	uint64_t since_ms; /* when the request being received began */
	int receiving;     /* 0 once the whole request is in (or it was cut) */
} peer;

struct http_server {
	struct MHD_Daemon *daemon;
	octo_api *api;
	const settings *cfg;
	octo_log *log;
	octo_metric *requests;  /* http_requests_total{method,route,status} */
	octo_metric *durations; /* http_request_duration_seconds{method,route} */
	_Atomic unsigned int in_flight; /* requests between headers and completion */
	_Atomic unsigned int open;      /* connections, for OCTO_MAX_CONNECTIONS */
	pthread_mutex_t peers_lock;     /* guards peers and stopping */
	pthread_cond_t peers_wake;
	peer *peers;
	int stopping;
	pthread_t watchdog;
	int watchdog_running;
};

/* One request's state across MHD's calls. */
typedef struct {
	http_server *srv;
	struct MHD_Connection *conn;
	char *body;
	size_t body_len;
	int too_large;
	int handed_over;        /* octo_api_handle() was called */
	pthread_mutex_t lock;   /* guards resp and suspended */
	octo_response *resp;
	int suspended;
	struct timespec started;
	octo_header *headers;
	size_t header_count, header_cap;
	char *query;
	size_t query_len;
	char client[INET6_ADDRSTRLEN]; /* the peer's address, read once */
} exchange;

static double seconds_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

/* Methods outside this list share one label: the method is client input
 * and must not grow the series without bound. */
static const char *method_label(const char *method)
{
	static const char *const known[] = { "GET", "POST", "DELETE", "OPTIONS",
		                             "HEAD", "PUT", "PATCH" };
	size_t i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(method, known[i]) == 0)
			return known[i];
	return "OTHER";
}

static void count_request(const http_server *srv, const char *method,
                          const octo_response *resp, double seconds)
{
	char status[8];
	const char *labels[] = { method_label(method), octo_response_route(resp), status, NULL };
	octo_metric *m;

	snprintf(status, sizeof(status), "%d", octo_response_status(resp));
	if (octo_metrics_with(&m, srv->requests, labels) == 0)
		octo_metrics_inc(m);
	labels[2] = NULL;
	if (octo_metrics_with(&m, srv->durations, labels) == 0)
		octo_metrics_observe(m, seconds);
}

/* The access log: one line per answered request. */
static void log_request(const exchange *x, const char *method, const char *path,
                        const octo_response *resp, uint64_t bytes, double seconds)
{
	int status = octo_response_status(resp);
	octo_log_level level = status >= 500 ? OCTO_LOG_ERROR : OCTO_LOG_INFO;
	char message[96];
	octo_log_field f[] = {
		OCTO_LOG_STR("request_id", octo_response_request_id(resp)),
		OCTO_LOG_STR("trace_id", octo_response_trace_id(resp)),
		OCTO_LOG_STR("method", method),
		OCTO_LOG_STR("route", octo_response_route(resp)),
		OCTO_LOG_STR("path", path),
		OCTO_LOG_INT("status", status),
		OCTO_LOG_INT("bytes", bytes),
		OCTO_LOG_DOUBLE("duration_ms", seconds * 1000.0),
		OCTO_LOG_STR("client", octo_response_client(resp)),
		OCTO_LOG_STR("peer", x->client),
	};

	if (!octo_log_enabled(x->srv->log, level))
		return;
	snprintf(message, sizeof(message), "%.16s %.60s %d", method_label(method),
	         octo_response_route(resp), status);
	octo_log_write(x->srv->log, level, message, f, sizeof(f) / sizeof(f[0]));
}

static void client_address(struct MHD_Connection *conn, char *out, size_t size)
{
	const union MHD_ConnectionInfo *info =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = info ? info->client_addr : NULL;
	struct sockaddr_in in4;
	struct sockaddr_in6 in6;

	/* Copied out rather than cast: MHD's pointer need not be aligned
	 * for the larger structures. */
	snprintf(out, size, "unknown");
	if (sa && sa->sa_family == AF_INET) {
		memcpy(&in4, sa, sizeof(in4));
		inet_ntop(AF_INET, &in4.sin_addr, out, (socklen_t)size);
	} else if (sa && sa->sa_family == AF_INET6) {
		memcpy(&in6, sa, sizeof(in6));
		inet_ntop(AF_INET6, &in6.sin6_addr, out, (socklen_t)size);
	}
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind,
                                      const char *key, const char *value)
{
	exchange *x = cls;

	(void)kind;
	if (x->header_count == x->header_cap) {
		size_t cap = x->header_cap ? x->header_cap * 2 : 32;
		octo_header *bigger = realloc(x->headers, cap * sizeof(*bigger));
		if (!bigger)
			return MHD_NO;
		x->headers = bigger;
		x->header_cap = cap;
	}
	x->headers[x->header_count].name = key;
	x->headers[x->header_count].value = value ? value : "";
	x->header_count++;
	return MHD_YES;
}

/* The API's done callback: may run on the API's timer thread. */
static void on_response(octo_response *resp, void *payload)
{
	exchange *x = payload;

	pthread_mutex_lock(&x->lock);
	x->resp = resp;
	if (x->suspended) {
		x->suspended = 0;
		MHD_resume_connection(x->conn);
	}
	pthread_mutex_unlock(&x->lock);
}

/* An event stream on one connection. MHD pulls its bytes; when there are
 * none the connection is suspended (no thread, no polling) until the
 * stream's wake resumes it. It lives as long as MHD's response does. */
typedef struct {
	octo_stream *stream;
	struct MHD_Connection *conn;
	pthread_mutex_t lock;  /* guards suspended and woken */
	int suspended;
	int woken;             /* a wake came while the reader was running */
} sse;

static void sse_wake(void *payload)
{
	sse *e = payload;

	pthread_mutex_lock(&e->lock);
	if (e->suspended) {
		e->suspended = 0;
		MHD_resume_connection(e->conn);
	} else {
		e->woken = 1;
	}
	pthread_mutex_unlock(&e->lock);
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	sse *e = cls;
	long n;

	(void)pos;
	pthread_mutex_lock(&e->lock);
	n = octo_stream_read(e->stream, buf, max);
	if (n == 0 && e->woken)
		e->woken = 0; /* something came meanwhile: MHD asks again */
	else if (n == 0) {
		e->suspended = 1;
		MHD_suspend_connection(e->conn);
	}
	pthread_mutex_unlock(&e->lock);
	return n > 0 ? (ssize_t)n : n < 0 ? MHD_CONTENT_READER_END_OF_STREAM : 0;
}

static void sse_free(void *cls)
{
	sse *e = cls;

	octo_stream_free(e->stream); /* no wake can come after this */
	pthread_mutex_destroy(&e->lock);
	free(e);
}

static struct MHD_Response *make_stream(struct MHD_Connection *conn, octo_stream *stream)
{
	struct MHD_Response *r;
	sse *e = calloc(1, sizeof(*e));

	if (!e) {
		octo_stream_free(stream);
		return NULL;
	}
	e->stream = stream;
	e->conn = conn;
	pthread_mutex_init(&e->lock, NULL);
	octo_stream_set_wake(stream, sse_wake, e);
	/* The block is held for the stream's life: 1 KiB, not 4, saves 30 MiB
	 * over 10,000 idle streams; a larger event goes out in several reads. */
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024, sse_read, e, sse_free);
	if (!r)
		sse_free(e);
	return r;
}

/* A file body goes out with sendfile() from its descriptor, which MHD
 * then owns; a stream is pulled; anything else is copied from memory. */
static struct MHD_Response *make_body(struct MHD_Connection *conn, octo_response *resp,
                                      uint64_t *bytes)
{
	struct MHD_Response *r;
	octo_stream *stream;
	const char *body;
	uint64_t size;
	size_t len;
	int fd;

	*bytes = 0; /* a stream's length is not known when it starts */
	if (octo_response_take_stream(resp, &stream))
		return make_stream(conn, stream);

	if (octo_response_take_file(resp, &fd, &size)) {
		*bytes = size;
		r = MHD_create_response_from_fd64(size, fd);
		if (!r)
			close(fd);
		return r;
	}
	body = octo_response_body(resp, &len);
	*bytes = len;
	return MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
}

/* MHD hands the query over decoded and split; the API wants it whole. */
static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind,
                                   const char *key, const char *value)
{
	exchange *x = cls;
	size_t need = strlen(key) + (value ? strlen(value) + 1 : 0) + 2;
	char *bigger;

	(void)kind;
	if (!(bigger = realloc(x->query, x->query_len + need)))
		return MHD_NO;
	x->query = bigger;
	x->query_len += (size_t)snprintf(x->query + x->query_len, need, "%s%s%s%s",
	                                 x->query_len ? "&" : "", key,
	                                 value ? "=" : "", value ? value : "");
	return MHD_YES;
}

static enum MHD_Result send_response(exchange *x, const char *method, const char *url)
{
	octo_response *resp = x->resp;
	struct MHD_Response *r;
	const char *name, *value;
	enum MHD_Result ok;
	uint64_t bytes;
	double seconds;
	size_t i;

	r = make_body(x->conn, resp, &bytes);
	if (!r)
		return MHD_NO;
	for (i = 0; i < octo_response_header_count(resp); i++) {
		octo_response_header(resp, i, &name, &value);
		MHD_add_response_header(r, name, value);
	}
	ok = MHD_queue_response(x->conn, (unsigned int)octo_response_status(resp), r);
	MHD_destroy_response(r);
	seconds = seconds_since(&x->started);
	count_request(x->srv, method, resp, seconds);
	log_request(x, method, url, resp, bytes, seconds);
	octo_response_free(resp);
	x->resp = NULL;
	return ok;
}

/* ---- connections -------------------------------------------------------- */

/* libmicrohttpd's connection timeout is an idle timeout: a client that
 * sends its request a byte now and then (slowloris) never meets it and
 * holds its connection for ever. So each request must also arrive whole
 * within REQUEST_TIMEOUT_MS of its start; a watchdog cuts the connections
 * that are late. And at OCTO_MAX_CONNECTIONS libmicrohttpd stops
 * accepting, which leaves new clients hanging in the listen queue with
 * no answer for as long as the slots stay taken (event streams can take
 * them for hours); they are closed at once instead, so that they can go
 * elsewhere. */

static uint64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
	http_server *srv = cls;

	(void)addr;
	(void)len;
	return srv->open < srv->cfg->max_connections ? MHD_YES : MHD_NO;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
	http_server *srv = cls;
	const union MHD_ConnectionInfo *info;
	peer *p = *socket_context;

	pthread_mutex_lock(&srv->peers_lock);
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		srv->open++;
		info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (info && (p = calloc(1, sizeof(*p))) != NULL) {
			p->fd = info->connect_fd;
			p->since_ms = now_ms();
			p->receiving = 1;
			p->next = srv->peers;
			if (p->next)
				p->next->prev = p;
			srv->peers = p;
			*socket_context = p;
		}
	} else {
		/* Before libmicrohttpd closes the socket: the watchdog never
		 * touches a descriptor that may have been reused. */
		srv->open--;
		if (p) {
			if (p->prev)
				p->prev->next = p->next;
			else
				srv->peers = p->next;
			if (p->next)
				p->next->prev = p->prev;
			free(p);
			*socket_context = NULL;
		}
	}
	pthread_mutex_unlock(&srv->peers_lock);
}

/* The request on `conn` is all in (receiving 0), or it was answered and
 * the connection waits for the next one (receiving 1, from now). */
static void mark_receiving(http_server *srv, struct MHD_Connection *conn, int receiving)
{
	const union MHD_ConnectionInfo *info =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	peer *p = info ? info->socket_context : NULL;

	if (!p)
		return;
	pthread_mutex_lock(&srv->peers_lock);
	p->receiving = receiving;
	p->since_ms = now_ms();
	pthread_mutex_unlock(&srv->peers_lock);
}

/* Shutting the socket down makes libmicrohttpd read its end and close the
 * connection in its own thread, as if the client had gone. */
static void *watchdog_main(void *arg)
{
	http_server *srv = arg;
	uint32_t limit = srv->cfg->request_timeout_ms;
	uint32_t tick = limit / 4 < 1000 ? limit / 4 : 1000;

	pthread_mutex_lock(&srv->peers_lock);
	while (!srv->stopping) {
		uint64_t now = now_ms(), until = now + tick;
		struct timespec ts = { (time_t)(until / 1000), (long)(until % 1000) * 1000000L };
		unsigned cut = 0;
		peer *p;
		for (p = srv->peers; p; p = p->next) {
			if (p->receiving && now - p->since_ms >= limit) {
				p->receiving = 0;
				shutdown(p->fd, SHUT_RDWR);
				cut++;
			}
		}
		if (cut) { /* a slow log must not hold up new connections */
			octo_log_field f[] = { OCTO_LOG_INT("connections", cut) };
			pthread_mutex_unlock(&srv->peers_lock);
			octo_log_write(srv->log, OCTO_LOG_WARN, "closed connections whose request "
			               "did not arrive within REQUEST_TIMEOUT_MS", f, 1);
			pthread_mutex_lock(&srv->peers_lock);
		}
		if (!srv->stopping)
			pthread_cond_timedwait(&srv->peers_wake, &srv->peers_lock, &ts);
	}
	pthread_mutex_unlock(&srv->peers_lock);
	return NULL;
}

static int watchdog_start(http_server *srv)
{
	pthread_condattr_t attr;

	pthread_mutex_init(&srv->peers_lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&srv->peers_wake, &attr);
	pthread_condattr_destroy(&attr);
	if (pthread_create(&srv->watchdog, NULL, watchdog_main, srv) != 0)
		return -1;
	srv->watchdog_running = 1;
	return 0;
}

/* After MHD_stop_daemon(): every connection is gone. */
static void watchdog_stop(http_server *srv)
{
	if (srv->watchdog_running) {
		pthread_mutex_lock(&srv->peers_lock);
		srv->stopping = 1;
		pthread_cond_signal(&srv->peers_wake);
		pthread_mutex_unlock(&srv->peers_lock);
		pthread_join(srv->watchdog, NULL);
	}
	pthread_cond_destroy(&srv->peers_wake);
	pthread_mutex_destroy(&srv->peers_lock);
}

static exchange *exchange_new(http_server *srv, struct MHD_Connection *conn)
{
	exchange *x = calloc(1, sizeof(*x));

	if (!x)
		return NULL;
	x->srv = srv;
	x->conn = conn;
	srv->in_flight++;
	pthread_mutex_init(&x->lock, NULL);
	clock_gettime(CLOCK_MONOTONIC, &x->started);
	return x;
}

/* A body larger than the limit is never read into memory: a declared
 * Content-Length over it is refused before reading, and chunked data past
 * it is discarded. */
static int declared_too_large(struct MHD_Connection *conn, size_t max)
{
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	                                             MHD_HTTP_HEADER_CONTENT_LENGTH);
	char *end;
	unsigned long long n;

	if (!cl)
		return 0;
	n = strtoull(cl, &end, 10);
	return *end == '\0' && n > max;
}

static int append_body(exchange *x, const char *data, size_t size)
{
	size_t max = octo_api_max_body(x->srv->api);
	char *bigger;

	if (x->too_large || x->body_len + size > max) {
		x->too_large = 1;
		return 0;
	}
	if (!(bigger = realloc(x->body, x->body_len + size + 1)))
		return -1;
	x->body = bigger;
	memcpy(x->body + x->body_len, data, size);
	x->body_len += size;
	return 0;
}

static int hand_over(exchange *x, const char *method, const char *url)
{
	octo_request req;

	if (MHD_get_connection_values(x->conn, MHD_HEADER_KIND, collect_header, x) < 0 ||
	    MHD_get_connection_values(x->conn, MHD_GET_ARGUMENT_KIND, collect_arg, x) < 0)
		return -1;
	client_address(x->conn, x->client, sizeof(x->client));
	memset(&req, 0, sizeof(req));
	req.method = method;
	req.path = url;
	req.query = x->query;
	req.headers = x->headers;
	req.header_count = x->header_count;
	req.body = x->body;
	req.body_len = x->body_len;
	req.body_too_large = x->too_large;
	req.client = x->client;
	x->handed_over = 1;
	mark_receiving(x->srv, x->conn, 0);
	return octo_api_handle(x->srv->api, &req, on_response, x);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
	http_server *srv = cls;
	exchange *x = *con_cls;
	int waiting;

	(void)version;
	if (!x) {
		if (!(x = exchange_new(srv, conn)))
			return MHD_NO;
		*con_cls = x;
		x->too_large = declared_too_large(conn, octo_api_max_body(srv->api));
		if (!x->too_large)
			return MHD_YES; /* wait for the body */
	}
	if (*upload_data_size > 0) {
		if (append_body(x, upload_data, *upload_data_size) < 0)
			return MHD_NO;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (!x->handed_over && hand_over(x, method, url) < 0)
		return MHD_NO;
	pthread_mutex_lock(&x->lock);
	waiting = x->resp == NULL;
	if (waiting) {
		x->suspended = 1;
		MHD_suspend_connection(conn);
	}
	pthread_mutex_unlock(&x->lock);
	if (waiting)
		octo_log_write(srv->log, OCTO_LOG_DEBUG, "request waiting for its answer", NULL, 0);
	return waiting ? MHD_YES : send_response(x, method, url);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	exchange *x = *con_cls;

	(void)cls;
	(void)toe;
	if (!x)
		return;
	mark_receiving(x->srv, conn, 1); /* the next request's clock starts */
	octo_response_free(x->resp);
	x->srv->in_flight--;
	pthread_mutex_destroy(&x->lock);
	free(x->headers);
	free(x->query);
	free(x->body);
	free(x);
	*con_cls = NULL;
}

static int bind_address(const settings *cfg, struct sockaddr_storage *ss)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, cfg->host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(cfg->port);
		return AF_INET;
	}
	if (inet_pton(AF_INET6, cfg->host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(cfg->port);
		return AF_INET6;
	}
	return -1;
}

static int register_metrics(http_server *srv, octo_metrics *reg)
{
	static const char *const all[] = { "method", "route", "status", NULL };
	static const char *const no_status[] = { "method", "route", NULL };

	return octo_metrics_counter(&srv->requests, reg, "http_requests_total",
	                            "HTTP requests answered, by method, route template "
	                            "and status.", all) < 0 ||
	       octo_metrics_histogram(&srv->durations, reg, "http_request_duration_seconds",
	                              "Time from a request's arrival to its answer "
	                              "(an event stream: to its first bytes).",
	                              no_status, NULL, 0) < 0 ? -1 : 0;
}

int http_start(http_server **out, octo_api *api, const settings *cfg,
               octo_log *log, octo_metrics *metrics,
               uint16_t *port, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *info;
	http_server *srv;
	unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
	                     MHD_USE_ITC | MHD_USE_ERROR_LOG;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	/* A request that waits on S3 (a HEAD, a record of another replica)
	 * holds its thread meanwhile; a durable initiate is suspended instead
	 * until its batch is on disk. On 2 cores 16 threads kept /health's
	 * p99 at saturation lower than 2 did: eight a core is the default,
	 * OCTO_HTTP_THREADS the knob. */
	unsigned int threads = cfg->http_threads ? cfg->http_threads
	                       : cores < 1 ? 8 : cores > 8 ? 64 : (unsigned int)cores * 8;
	int family = bind_address(cfg, &ss);

	if (family < 0 || !(srv = calloc(1, sizeof(*srv)))) {
		snprintf(err, errlen, family < 0 ? "bad HOST %s" : "out of memory", cfg->host);
		return -1;
	}
	if (family == AF_INET6)
		flags |= MHD_USE_IPv6;
	srv->api = api;
	srv->cfg = cfg;
	srv->log = log;
	if (metrics && register_metrics(srv, metrics) < 0) {
		snprintf(err, errlen, "metrics: %s", octo_error_last());
		free(srv);
		return -1;
	}
	if (watchdog_start(srv) < 0) {
		snprintf(err, errlen, "cannot start the connection watchdog");
		watchdog_stop(srv);
		free(srv);
		return -1;
	}
	/* libmicrohttpd splits its limit among the pool's threads: each one's
	 * share is the whole limit plus one, so on_accept(), which counts
	 * for them all, always decides first. */
	srv->daemon = MHD_start_daemon(
		flags, cfg->port, on_accept, srv, on_request, srv,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
		MHD_OPTION_THREAD_POOL_SIZE, threads,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)(cfg->max_connections + 1) * threads,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)((cfg->request_timeout_ms + 999) / 1000),
		/* Each connection holds this much for as long as it is open: at
		 * the default 32 KiB, 10,000 idle event streams took 284 MiB;
		 * at 16 KiB, 206 MiB. Request headers still get 16 KiB, twice
		 * nginx's default. */
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(16 * 1024),
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
		MHD_OPTION_END);
	if (!srv->daemon) {
		snprintf(err, errlen, "cannot listen on %s:%u (address in use or not available)",
		         cfg->host, cfg->port);
		watchdog_stop(srv);
		free(srv);
		return -1;
	}
	info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
	*port = info ? info->port : cfg->port;
	*out = srv;
	return 0;
}

void http_stop(http_server *srv)
{
	struct timespec tick = { 0, 10 * 1000000L };
	int waited_ms = 0;

	if (!srv)
		return;
	/* Requests waiting on a timer are answered now, then in-flight ones
	 * get a bounded grace period to finish; idle keep-alive connections
	 * hold no request and are simply closed. The listener stays open
	 * meanwhile: libmicrohttpd 0.9.75 aborts in MHD_quiesce_daemon() with
	 * an epoll thread pool ("Failed to remove listen FD from epoll set"). */
	octo_api_shutdown(srv->api);
	while (srv->in_flight > 0 && waited_ms < DRAIN_TIMEOUT_MS) {
		nanosleep(&tick, NULL);
		waited_ms += 10;
	}
	MHD_stop_daemon(srv->daemon);
	watchdog_stop(srv);
	free(srv);
}
