/* Runs tests/s3/server.js as a child process: fork, exec node, read its
 * "listening PORT" line under a deadline. The child asks the kernel to
 * kill it when the test process dies, so a crashed test leaves no server. */
#include "config.h"
#include "s3server.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_TIMEOUT_MS 15000
#define STOP_TIMEOUT_MS 10000

static const char *script_path(void)
{
	const char *script = getenv("OCTO_S3_SERVER");

	return script && *script ? script : NULL;
}

static int is_executable_on_path(const char *name)
{
	const char *path = getenv("PATH");
	char candidate[PATH_MAX];

	while (path && *path) {
		const char *colon = strchr(path, ':');
		size_t n = colon ? (size_t)(colon - path) : strlen(path);

		snprintf(candidate, sizeof(candidate), "%.*s/%s", (int)n, n ? path : ".", name);
		if (access(candidate, X_OK) == 0)
			return 1;
		path = colon ? colon + 1 : NULL;
	}
	return 0;
}

int ts3_available(void)
{
	const char *script = script_path();
	char modules[PATH_MAX];
	const char *slash;
	struct stat st;

	if (!script || stat(script, &st) != 0 || !S_ISREG(st.st_mode))
		return 0;
	slash = strrchr(script, '/');
	if (slash)
		snprintf(modules, sizeof(modules), "%.*s/node_modules/s3rver",
		         (int)(slash - script), script);
	else
		snprintf(modules, sizeof(modules), "node_modules/s3rver");
	if (stat(modules, &st) != 0 || !S_ISDIR(st.st_mode))
		return 0;
	return is_executable_on_path("node");
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* In the child: becomes `node SCRIPT DIR [PORT]` with stdout on `out`. */
static void exec_server(const char *dir, int port, int out, pid_t parent)
{
	char port_arg[16];

	/* Dies with the test process; the check closes the race with a parent
	 * that died before prctl() took effect. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(126);
	if (dup2(out, STDOUT_FILENO) < 0)
		_exit(126);
	if (out != STDOUT_FILENO)
		close(out);
	snprintf(port_arg, sizeof(port_arg), "%d", port);
	execlp("node", "node", script_path(), dir, port_arg, (char *)NULL);
	_exit(127);
}

/* Reads the "listening PORT" line; returns the port, or -1 with `why`
 * filled when the server died, said something else or took too long. */
static int read_port(int fd, char *why, size_t why_len)
{
	char line[128];
	size_t used = 0;
	long long deadline = now_ms() + START_TIMEOUT_MS;
	int port;

	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		long long left = deadline - now_ms();
		char *nl;
		ssize_t n;
		int rc;

		if (left <= 0) {
			snprintf(why, why_len, "no \"listening\" line within %d ms", START_TIMEOUT_MS);
			return -1;
		}
		rc = poll(&p, 1, (int)left);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			continue; /* the deadline check above ends the loop */
		n = read(fd, line + used, sizeof(line) - 1 - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(why, why_len, "the server exited before listening");
			return -1;
		}
		used += (size_t)n;
		line[used] = '\0';
		if ((nl = strchr(line, '\n')) != NULL) {
			*nl = '\0';
			if (sscanf(line, "listening %d", &port) == 1 && port > 0 && port < 65536)
				return port;
			snprintf(why, why_len, "unexpected output \"%s\"", line);
			return -1;
		}
		if (used == sizeof(line) - 1) {
			snprintf(why, why_len, "unexpected output \"%s\"", line);
			return -1;
		}
	}
}

/* The read end of each running server's stdout. It reaches end of file
 * when the server exits, so waiting for the exit can be polled with a
 * deadline instead of blocking in waitpid() on a server that hangs. */
#define MAX_SERVERS 8

static struct {
	pid_t pid;
	int fd;
} outputs[MAX_SERVERS];

static void watch_output(pid_t pid, int fd)
{
	int i;

	for (i = 0; i < MAX_SERVERS; i++) {
		if (outputs[i].pid == 0) {
			outputs[i].pid = pid;
			outputs[i].fd = fd;
			return;
		}
	}
	close(fd); /* unwatched: ts3_stop() then waits without a deadline */
}

/* Waits until the server's stdout ends (it exited) or the deadline passes;
 * returns 0 when it ended. */
static int await_output_end(pid_t pid)
{
	long long deadline = now_ms() + STOP_TIMEOUT_MS;
	int i, fd = -1, rc = 0;
	char sink[256];

	for (i = 0; i < MAX_SERVERS && fd < 0; i++)
		if (outputs[i].pid == pid) {
			fd = outputs[i].fd;
			outputs[i].pid = 0;
		}
	if (fd < 0)
		return 0;
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		long long left = deadline - now_ms();
		ssize_t n;

		if (left <= 0) {
			rc = -1;
			break;
		}
		if (poll(&p, 1, (int)left) <= 0)
			continue; /* EINTR or the deadline, checked above */
		n = read(fd, sink, sizeof(sink));
		if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
			break;
	}
	close(fd);
	return rc;
}

/* Waits for the server to end, killing it when it did not end in time. */
static void reap(pid_t pid)
{
	int status;

	if (await_output_end(pid) < 0)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0)
		ck_assert_msg(errno == EINTR, "waitpid(%d): %s", (int)pid, strerror(errno));
}

static void launch(ts3_server *srv, int port)
{
	char why[200];
	int fds[2];
	pid_t parent = getpid(), pid;

	ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		exec_server(srv->dir, port, fds[1], parent);
	}
	close(fds[1]);
	port = read_port(fds[0], why, sizeof(why));
	watch_output(pid, fds[0]);
	if (port < 0) {
		kill(pid, SIGKILL);
		reap(pid);
		srv->pid = 0;
		ck_abort_msg("s3 server %s in %s: %s", script_path(), srv->dir, why);
	}
	srv->pid = pid;
	srv->port = port;
	snprintf(srv->endpoint, sizeof(srv->endpoint), "http://127.0.0.1:%d", port);
}

void ts3_start(ts3_server *srv)
{
	memset(srv, 0, sizeof(*srv));
	ck_assert_msg(ts3_available(), "no S3 server: set OCTO_S3_SERVER and run npm ci");
	tu_mkdtemp(srv->dir);
	launch(srv, 0);
}

void ts3_stop(ts3_server *srv)
{
	if (srv->pid <= 0)
		return;
	kill(srv->pid, SIGTERM);
	reap(srv->pid);
	srv->pid = 0;
}

void ts3_restart(ts3_server *srv)
{
	ck_assert_int_gt(srv->port, 0);
	ts3_stop(srv);
	launch(srv, srv->port);
}

void ts3_destroy(ts3_server *srv)
{
	ts3_stop(srv);
	if (srv->dir[0])
		tu_rmtree(srv->dir);
	srv->dir[0] = '\0';
}
