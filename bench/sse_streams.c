/* sse_streams: many idle Server-Sent Events streams on one job of a
 * running octopusd; what they cost it while idle, and how long a change
 * of the job takes to reach every one of them.
 *
 *   sse_streams HOST PORT JOB_ID STREAMS IDLE_S PID
 *
 * (IDLE_S 0 skips step 2: further rounds of fan-out on the same daemon.)
 *
 * 1. Opens STREAMS connections (GET /v1/download/<JOB_ID>/events, HTTP/1.1,
 *    chunked) with one epoll loop, a few hundred connecting at a time,
 *    and waits until each has its first event (the job's current state).
 * 2. Reads octopusd's (PID) resident memory from /proc/PID/status and its
 *    CPU time from /proc/PID/stat over IDLE_S seconds of idleness, while
 *    heartbeats come and are read.
 * 3. Cancels the job (DELETE /v1/download/<JOB_ID>) and times the
 *    "cancelled" event's arrival on every stream from just before the
 *    request was sent, and the CPU time octopusd spends on it (steadier
 *    than latencies on a shared machine). Arrival is the kernel's
 *    receive timestamp (SO_TIMESTAMPNS) when it gives one, so the time
 *    this client takes to read 10,000 sockets is not counted; else the
 *    time read() returned.
 *
 * Prints key=value lines; exits non-zero when a stream cannot be opened,
 * ends early, or misses the event. Raises its own RLIMIT_NOFILE. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CONNECTING_MAX 256     /* connections being opened at once */
#define HEAD_MAX 8192          /* response headers */
#define OPEN_TIMEOUT_S 180
#define FANOUT_TIMEOUT_S 60
#define SETTLE_S 2             /* after opening, before measuring idleness */
#define FANOUT_TAIL_S 0.5      /* after the last event, for ending the streams */

enum { S_CONNECTING, S_HEAD, S_OPEN, S_ENDED };
enum { CH_SIZE, CH_EXT, CH_DATA, CH_CRLF, CH_END };

typedef struct {
	int fd;
	int state;
	char *head;               /* response headers while they come */
	size_t head_len;
	int chunked;
	int chunk_state;
	size_t chunk_left;
	char line[24];            /* the start of the current SSE line */
	size_t line_len;
	int comment;              /* the current block has a comment line */
	char event[16];           /* its event: name, "" for none */
	unsigned events;
	double arrival;           /* realtime s of the trigger's event; 0 before */
} conn;

static struct {
	const char *host, *job;
	int port, epfd, streams;
	conn *conns;
	int ready;                /* streams that had their first event */
	int armed;                /* the trigger was sent */
	double trigger_at;        /* realtime s */
	int arrived;              /* streams that got the trigger's event */
	unsigned long heartbeats;
	int kernel_ts, client_ts; /* arrivals timed by the kernel / by us */
	int trigger_fd;
	char trigger_reply[64];
	size_t trigger_len;
} g;

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("sse_streams: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static double clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the octopusd process ------------------------------------------------ */

static long proc_status_kib(int pid, const char *field)
{
	char path[64], line[256];
	size_t n = strlen(field);
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if (!(f = fopen(path, "r")))
		die("%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, n) == 0 && line[n] == ':') {
			kib = strtol(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return kib;
}

/* utime + stime of the process, in clock ticks. */
static unsigned long long proc_cpu_ticks(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (!(f = fopen(path, "r")))
		die("%s: %s", path, strerror(errno));
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: skip to the last ')'. */
	if (!(p = strrchr(buf, ')')) ||
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		die("cannot read %s", path);
	return ut + st;
}

/* ---- reading a stream ---------------------------------------------------- */

static void on_event(conn *c, double at, int kernel)
{
	c->events++;
	if (c->events == 1) {
		g.ready++;
		return;
	}
	if (g.armed && c->arrival == 0 && strcmp(c->event, "cancelled") == 0) {
		c->arrival = at;
		g.arrived++;
		if (kernel)
			g.kernel_ts++;
		else
			g.client_ts++;
	}
}

/* SSE: lines end with \n; a blank line ends a block, which is an event
 * when it had fields and a heartbeat when it had only a comment. */
static void sse_feed(conn *c, const char *p, size_t n, double at, int kernel)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char ch = p[i];
		if (ch == '\r')
			continue;
		if (ch != '\n') {
			if (c->line_len < sizeof(c->line) - 1)
				c->line[c->line_len] = ch;
			c->line_len++;
			continue;
		}
		if (c->line_len == 0) {
			if (c->event[0])
				on_event(c, at, kernel);
			else if (c->comment)
				g.heartbeats++;
			c->event[0] = '\0';
			c->comment = 0;
			continue;
		}
		c->line[c->line_len < sizeof(c->line) ? c->line_len : sizeof(c->line) - 1] = '\0';
		if (c->line[0] == ':')
			c->comment = 1;
		else if (strncmp(c->line, "event:", 6) == 0)
			snprintf(c->event, sizeof(c->event), "%s", c->line + 6 + (c->line[6] == ' '));
		c->line_len = 0;
	}
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = (char)tolower((unsigned char)ch);
	return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Chunked transfer coding around the event text. */
static void body_feed(conn *c, const char *p, size_t n, double at, int kernel)
{
	if (!c->chunked) {
		sse_feed(c, p, n, at, kernel);
		return;
	}
	while (n > 0) {
		size_t take;
		switch (c->chunk_state) {
		case CH_SIZE:
		case CH_EXT:
			if (*p == '\n')
				c->chunk_state = c->chunk_left ? CH_DATA : CH_END;
			else if (c->chunk_state == CH_SIZE && hexval(*p) >= 0)
				c->chunk_left = c->chunk_left * 16 + (size_t)hexval(*p);
			else if (*p != '\r')
				c->chunk_state = CH_EXT;
			p++, n--;
			break;
		case CH_DATA:
			take = n < c->chunk_left ? n : c->chunk_left;
			sse_feed(c, p, take, at, kernel);
			p += take, n -= take;
			if ((c->chunk_left -= take) == 0)
				c->chunk_state = CH_CRLF;
			break;
		case CH_CRLF:
			if (*p == '\n')
				c->chunk_state = CH_SIZE;
			p++, n--;
			break;
		default: /* the last chunk: the stream is over */
			c->state = S_ENDED;
			return;
		}
	}
	if (c->chunk_state == CH_END)
		c->state = S_ENDED;
}

static int header_has(const char *head, const char *name, const char *value)
{
	const char *p = head;
	size_t n = strlen(name);

	while ((p = strchr(p, '\n')) != NULL) {
		p++;
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			const char *v = p + n + 1, *end = strchr(v, '\r');
			while (*v == ' ')
				v++;
			return end && (size_t)(end - v) >= strlen(value) &&
			       strncasecmp(v, value, strlen(value)) == 0;
		}
	}
	return 0;
}

static void head_feed(conn *c, const char *p, size_t n, double at, int kernel)
{
	char *end;
	size_t body;

	if (c->head_len + n >= HEAD_MAX)
		die("stream %td: response headers too long", c - g.conns);
	memcpy(c->head + c->head_len, p, n);
	c->head_len += n;
	c->head[c->head_len] = '\0';
	if (!(end = strstr(c->head, "\r\n\r\n")))
		return;
	if (strncmp(c->head, "HTTP/1.1 200", 12) != 0)
		die("stream %td: %.*s", c - g.conns, (int)strcspn(c->head, "\r"), c->head);
	c->chunked = header_has(c->head, "Transfer-Encoding", "chunked");
	c->state = S_OPEN;
	body = (size_t)(end + 4 - c->head);
	if (body < c->head_len) {
		char rest[HEAD_MAX];
		size_t len = c->head_len - body;
		memcpy(rest, c->head + body, len);
		free(c->head);
		c->head = NULL;
		body_feed(c, rest, len, at, kernel);
		return;
	}
	free(c->head);
	c->head = NULL;
}

/* Reads what is there. The kernel's timestamp of the received bytes
 * comes as a control message when SO_TIMESTAMPNS is on. */
static void on_readable(conn *c)
{
	static char buf[65536];
	char control[CMSG_SPACE(sizeof(struct timespec))];
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr msg;
	struct cmsghdr *cm;
	ssize_t n;

	for (;;) {
		double at = 0;
		int kernel = 0;
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = control;
		msg.msg_controllen = sizeof(control);
		n = recvmsg(c->fd, &msg, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n < 0)
			die("stream %td: read: %s", c - g.conns, strerror(errno));
		if (n == 0) {
			if (c->state != S_ENDED)
				die("stream %td: closed by the server (after %u events)", c - g.conns,
				    c->events);
			return;
		}
		for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
			if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
				struct timespec ts;
				memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
				at = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
				kernel = at > 0;
			}
		if (!kernel)
			at = clock_s(CLOCK_REALTIME);
		if (c->state == S_HEAD)
			head_feed(c, buf, (size_t)n, at, kernel);
		else if (c->state == S_OPEN)
			body_feed(c, buf, (size_t)n, at, kernel);
	}
}

/* ---- opening streams ----------------------------------------------------- */

static void send_all(int fd, const char *text)
{
	size_t len = strlen(text), done = 0;

	while (done < len) {
		ssize_t n = write(fd, text + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("write: %s", n < 0 ? strerror(errno) : "nothing written");
		done += (size_t)n;
	}
}

static struct sockaddr_in server_addr(void)
{
	struct sockaddr_in sa;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)g.port);
	if (inet_pton(AF_INET, g.host, &sa.sin_addr) != 1)
		die("HOST must be a numeric IPv4 address");
	return sa;
}

static void start_connect(int i)
{
	struct sockaddr_in sa = server_addr();
	struct epoll_event ev = { EPOLLIN | EPOLLOUT, { .u64 = (uint64_t)i } };
	conn *c = &g.conns[i];
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		die("socket: %s (open descriptors: raise the limit)", strerror(errno));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(c->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS)
		die("connect: %s", strerror(errno));
	c->state = S_CONNECTING;
	if (epoll_ctl(g.epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		die("epoll_ctl: %s", strerror(errno));
}

static void on_writable(conn *c)
{
	struct epoll_event ev = { EPOLLIN, { .u64 = (uint64_t)(c - g.conns) } };
	char req[512];
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0)
		die("stream %td: connect: %s", c - g.conns, strerror(err ? err : errno));
	snprintf(req, sizeof(req),
	         "GET /v1/download/%s/events HTTP/1.1\r\nHost: %s:%d\r\n"
	         "Accept: text/event-stream\r\nUser-Agent: octopus-bench\r\n\r\n",
	         g.job, g.host, g.port);
	send_all(c->fd, req);
	if (!(c->head = malloc(HEAD_MAX)))
		die("out of memory");
	c->head_len = 0;
	c->state = S_HEAD;
	epoll_ctl(g.epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void on_trigger_reply(void)
{
	ssize_t n;
	char buf[4096];

	while ((n = read(g.trigger_fd, buf, sizeof(buf))) > 0)
		if (g.trigger_len < sizeof(g.trigger_reply) - 1) {
			size_t take = sizeof(g.trigger_reply) - 1 - g.trigger_len;
			take = (size_t)n < take ? (size_t)n : take;
			memcpy(g.trigger_reply + g.trigger_len, buf, take);
			g.trigger_len += take;
			g.trigger_reply[g.trigger_len] = '\0';
		}
}

/* One round of the epoll loop, up to `ms`. */
static void pump(int ms)
{
	struct epoll_event evs[512];
	int n, i;

	n = epoll_wait(g.epfd, evs, 512, ms);
	if (n < 0 && errno != EINTR)
		die("epoll_wait: %s", strerror(errno));
	for (i = 0; i < n; i++) {
		uint64_t k = evs[i].data.u64;
		conn *c;
		if (k == (uint64_t)g.streams) {
			on_trigger_reply();
			continue;
		}
		c = &g.conns[k];
		if (c->state == S_CONNECTING && (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			on_writable(c);
		else if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
			on_readable(c);
	}
}

static void open_streams(void)
{
	double until = clock_s(CLOCK_MONOTONIC) + OPEN_TIMEOUT_S;
	int started = 0;

	while (g.ready < g.streams) {
		while (started < g.streams && started - g.ready < CONNECTING_MAX)
			start_connect(started++);
		if (clock_s(CLOCK_MONOTONIC) > until)
			die("only %d of %d streams opened in %d s", g.ready, g.streams, OPEN_TIMEOUT_S);
		pump(100);
	}
}

static void pump_for(double seconds)
{
	double until = clock_s(CLOCK_MONOTONIC) + seconds, left;

	while ((left = until - clock_s(CLOCK_MONOTONIC)) > 0)
		pump((int)(left * 1000) + 1);
}

/* ---- measuring ----------------------------------------------------------- */

static void raise_nofile(int streams)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)streams + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		die("getrlimit: %s", strerror(errno));
	if (rl.rlim_cur >= want)
		return;
	if (rl.rlim_max < want)
		rl.rlim_max = want; /* root may raise the hard limit */
	rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		die("cannot raise RLIMIT_NOFILE to %lu: %s", (unsigned long)want, strerror(errno));
}

static void trigger(void)
{
	struct sockaddr_in sa = server_addr();
	struct epoll_event ev = { EPOLLIN, { .u64 = (uint64_t)g.streams } };
	char req[512];

	g.trigger_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (g.trigger_fd < 0 || connect(g.trigger_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("trigger connection: %s", strerror(errno));
	snprintf(req, sizeof(req),
	         "DELETE /v1/download/%s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n",
	         g.job, g.host, g.port);
	g.armed = 1;
	g.trigger_at = clock_s(CLOCK_REALTIME);
	send_all(g.trigger_fd, req);
	fcntl(g.trigger_fd, F_SETFL, O_NONBLOCK);
	epoll_ctl(g.epfd, EPOLL_CTL_ADD, g.trigger_fd, &ev);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Times the cancel's event on every stream, and counts the CPU time
 * octopusd spends on the fan-out (until every stream has its event, plus
 * FANOUT_TAIL_S for ending the streams): steadier than latencies when
 * other work shares the machine. */
static void fan_out(int pid)
{
	double until = clock_s(CLOCK_MONOTONIC) + FANOUT_TIMEOUT_S, *ms;
	unsigned long long t0 = proc_cpu_ticks(pid);
	int i;

	trigger();
	while (g.arrived < g.streams && clock_s(CLOCK_MONOTONIC) < until)
		pump(100);
	pump_for(FANOUT_TAIL_S);
	printf("fanout_cpu_ms=%.0f\nfanout_cpu_us_per_stream=%.1f\n",
	       (double)(proc_cpu_ticks(pid) - t0) * 1000 / (double)sysconf(_SC_CLK_TCK),
	       (double)(proc_cpu_ticks(pid) - t0) * 1e6 / (double)sysconf(_SC_CLK_TCK) / g.streams);
	printf("fanout_received=%d\n", g.arrived);
	printf("fanout_clock=%s\n", g.client_ts ? (g.kernel_ts ? "mixed" : "client") : "kernel");
	printf("trigger_status=%.3s\n", g.trigger_len >= 12 ? g.trigger_reply + 9 : "none");
	if (g.arrived < g.streams)
		die("%d of %d streams missed the event within %d s", g.streams - g.arrived, g.streams,
		    FANOUT_TIMEOUT_S);
	if (!(ms = calloc((size_t)g.streams, sizeof(*ms))))
		die("out of memory");
	for (i = 0; i < g.streams; i++)
		ms[i] = (g.conns[i].arrival - g.trigger_at) * 1000;
	qsort(ms, (size_t)g.streams, sizeof(*ms), cmp_double);
	printf("fanout_min_ms=%.2f\nfanout_p50_ms=%.2f\nfanout_p90_ms=%.2f\n", ms[0],
	       ms[g.streams / 2], ms[(size_t)((g.streams - 1) * 0.9)]);
	printf("fanout_p99_ms=%.2f\nfanout_max_ms=%.2f\n", ms[(size_t)((g.streams - 1) * 0.99)],
	       ms[g.streams - 1]);
	free(ms);
}

/* Memory and CPU of the daemon over `seconds` of idle streams; the
 * heartbeats that come meanwhile are read and counted. */
static void measure_idle(int pid, double seconds)
{
	unsigned long long t0, t1;
	double m0, m1;

	g.heartbeats = 0;
	t0 = proc_cpu_ticks(pid);
	m0 = clock_s(CLOCK_MONOTONIC);
	pump_for(seconds);
	t1 = proc_cpu_ticks(pid);
	m1 = clock_s(CLOCK_MONOTONIC);
	printf("rss_kib=%ld\nhwm_kib=%ld\nthreads=%ld\n", proc_status_kib(pid, "VmRSS"),
	       proc_status_kib(pid, "VmHWM"), proc_status_kib(pid, "Threads"));
	printf("idle_s=%.1f\ncpu_idle_pct=%.3f\nheartbeats=%lu\n", m1 - m0,
	       (double)(t1 - t0) / (double)sysconf(_SC_CLK_TCK) / (m1 - m0) * 100, g.heartbeats);
}

int main(int argc, char **argv)
{
	double idle_s, m0;
	long rss_before;
	int pid, i;

	if (argc != 7 || (g.port = atoi(argv[2])) <= 0 || (g.streams = atoi(argv[4])) < 1 ||
	    (idle_s = atof(argv[5])) < 0 || (pid = atoi(argv[6])) <= 0) {
		fprintf(stderr, "usage: sse_streams HOST PORT JOB_ID STREAMS IDLE_S PID\n");
		return 2;
	}
	g.host = argv[1];
	g.job = argv[3];
	raise_nofile(g.streams);
	if (!(g.conns = calloc((size_t)g.streams, sizeof(*g.conns))) ||
	    (g.epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		die("out of memory");

	rss_before = proc_status_kib(pid, "VmRSS");
	m0 = clock_s(CLOCK_MONOTONIC);
	open_streams();
	printf("streams=%d\nopen_s=%.2f\nrss_before_kib=%ld\n", g.streams,
	       clock_s(CLOCK_MONOTONIC) - m0, rss_before);

	pump_for(SETTLE_S);
	if (idle_s > 0)
		measure_idle(pid, idle_s);
	fan_out(pid);
	for (i = 0; i < g.streams; i++)
		close(g.conns[i].fd);
	close(g.trigger_fd);
	return 0;
}

