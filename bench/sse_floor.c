/* sse_floor: the least a server can do to fan one event out to many
 * Server-Sent Events streams on this machine; the baseline of the
 * fan-out that bench/sse_streams measures on octopusd, as nginx is the
 * baseline of the HTTP rows.
 *
 *   sse_floor PORT EVENT_BYTES
 *
 * Listens on 127.0.0.1:PORT with one thread per core, each with its own
 * epoll loop and listening socket (SO_REUSEPORT spreads the connections).
 * It speaks only what sse_streams sends:
 *
 * - GET ...: 200 with a chunked text/event-stream, then a first event;
 *   the stream stays open.
 * - DELETE ...: 204; then every thread writes one "cancelled" event of
 *   EVENT_BYTES of data (the size of octopusd's) and the chunked end to
 *   each of its streams in one write, and closes it: what octopusd does
 *   when a job is cancelled, with nothing else around it (no rendering,
 *   no suspend and resume, no HTTP library).
 *
 * Runs until SIGTERM or SIGINT. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define THREADS_MAX 64
#define REQUEST_MAX 2048

typedef struct conn {
	int fd;
	int streaming;            /* answered a GET: an open event stream */
	size_t got;
	char request[REQUEST_MAX];
	struct conn *prev, *next; /* the thread's streams */
} conn;

typedef struct {
	pthread_t thread;
	int epfd, listen_fd, wake_fd;
	conn *streams;
} worker;

static struct {
	int port, threads;
	worker workers[THREADS_MAX];
	char *event;              /* the cancel's event and the chunked end */
	size_t event_len;
} g;

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("sse_floor: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* Small answers on loopback fit the socket buffer: one write does it. */
static void answer(int fd, const char *text)
{
	size_t len = strlen(text);

	if (write(fd, text, len) != (ssize_t)len)
		die("write: %s", strerror(errno));
}

static void add_fd(worker *w, int fd, void *ptr)
{
	struct epoll_event ev = { EPOLLIN, { .ptr = ptr } };

	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		die("epoll_ctl: %s", strerror(errno));
}

static void drop(worker *w, conn *c)
{
	if (c->streaming) {
		if (c->prev)
			c->prev->next = c->next;
		else
			w->streams = c->next;
		if (c->next)
			c->next->prev = c->prev;
	}
	close(c->fd);
	free(c);
}

static void wake_all(void)
{
	uint64_t one = 1;
	int i;

	for (i = 0; i < g.threads; i++)
		if (write(g.workers[i].wake_fd, &one, sizeof(one)) != sizeof(one))
			die("eventfd: %s", strerror(errno));
}

static void fan_out(worker *w)
{
	uint64_t n;
	conn *c, *next;

	if (read(w->wake_fd, &n, sizeof(n)) != sizeof(n))
		return;
	for (c = w->streams; c; c = c->next)
		if (write(c->fd, g.event, g.event_len) != (ssize_t)g.event_len)
			fprintf(stderr, "sse_floor: a stream took part of the event\n");
	for (c = w->streams; c; c = next) {
		next = c->next;
		close(c->fd);
		free(c);
	}
	w->streams = NULL;
}

static void on_request(worker *w, conn *c)
{
	static const char head[] =
		"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
		"Transfer-Encoding: chunked\r\n\r\n"
		"1e\r\nevent: status\nid: 1\ndata: {}\n\n\r\n"; /* 0x1e bytes of event */

	if (strncmp(c->request, "GET ", 4) == 0) {
		answer(c->fd, head);
		c->streaming = 1;
		c->prev = NULL;
		c->next = w->streams;
		if (w->streams)
			w->streams->prev = c;
		w->streams = c;
	} else {
		answer(c->fd, strncmp(c->request, "DELETE ", 7) == 0
		                  ? "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"
		                  : "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n"
		                    "Connection: close\r\n\r\n");
		if (strncmp(c->request, "DELETE ", 7) == 0)
			wake_all();
		drop(w, c);
	}
}

static void on_readable(worker *w, conn *c)
{
	char rest[256];
	ssize_t n;

	if (c->streaming) { /* its client says nothing more, or hangs up */
		if (read(c->fd, rest, sizeof(rest)) <= 0)
			drop(w, c);
		return;
	}
	n = read(c->fd, c->request + c->got, sizeof(c->request) - 1 - c->got);
	if (n <= 0) {
		drop(w, c);
		return;
	}
	c->got += (size_t)n;
	c->request[c->got] = '\0';
	if (strstr(c->request, "\r\n\r\n"))
		on_request(w, c);
	else if (c->got >= sizeof(c->request) - 1)
		drop(w, c);
}

static void on_accept(worker *w)
{
	int fd, one = 1;
	conn *c;

	while ((fd = accept4(w->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		if (!(c = calloc(1, sizeof(*c))))
			die("out of memory");
		c->fd = fd;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		add_fd(w, fd, c);
	}
}

static void *run(void *arg)
{
	worker *w = arg;
	struct epoll_event evs[256];
	int i, n;

	for (;;) {
		n = epoll_wait(w->epfd, evs, 256, -1);
		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr == &w->listen_fd)
				on_accept(w);
			else if (evs[i].data.ptr == &w->wake_fd)
				fan_out(w);
			else
				on_readable(w, evs[i].data.ptr);
		}
	}
	return NULL;
}

static int listen_on(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4096) < 0)
		die("listen on 127.0.0.1:%d: %s", port, strerror(errno));
	return fd;
}

/* The cancel's event as a chunk of the stream, then the chunked end. */
static void make_event(size_t data_bytes)
{
	static const char name[] = "event: cancelled\nid: 2\ndata: ";
	size_t body = sizeof(name) - 1 + data_bytes + 2;
	int n;

	if (!(g.event = malloc(body + 64)))
		die("out of memory");
	n = snprintf(g.event, 64, "%zx\r\n%s", body, name);
	memset(g.event + n, 'x', data_bytes);
	memcpy(g.event + n + data_bytes, "\n\n\r\n0\r\n\r\n", 9);
	g.event_len = (size_t)n + data_bytes + 9;
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	sigset_t stop;
	int i, sig;
	long bytes;

	if (argc != 3 || (g.port = atoi(argv[1])) <= 0 || (bytes = atol(argv[2])) < 1 ||
	    bytes > 1 << 20) {
		fprintf(stderr, "usage: sse_floor PORT EVENT_BYTES\n");
		return 2;
	}
	raise_nofile();
	make_event((size_t)bytes);
	g.threads = cores < 1 ? 1 : cores > THREADS_MAX ? THREADS_MAX : (int)cores;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop, NULL); /* the workers inherit it */
	for (i = 0; i < g.threads; i++) {
		worker *w = &g.workers[i];
		if ((w->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
		    (w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
			die("epoll: %s", strerror(errno));
		w->listen_fd = listen_on(g.port);
		add_fd(w, w->listen_fd, &w->listen_fd);
		add_fd(w, w->wake_fd, &w->wake_fd);
		if (pthread_create(&w->thread, NULL, run, w) != 0)
			die("cannot start a thread");
	}
	printf("sse_floor listening on 127.0.0.1:%d with %d threads\n", g.port, g.threads);
	fflush(stdout);
	sigwait(&stop, &sig);
	return 0;
}
