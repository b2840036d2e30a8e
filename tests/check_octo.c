/* The octo command-line client ($OCTO_CLI) against the real octopusd
 * ($OCTOPUSD) on free loopback ports: live progress in a pseudo-terminal,
 * plain lines in a pipe, saved files, every command's output, exit codes,
 * Ctrl-C, a cancelled job, a failing file (an origin that answers 404),
 * and a stream that survives a restart of the daemon. A fake service
 * (a few canned answers) drives the polling fallback and a refused
 * argument. Every wait is for a condition, never for a time. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <octopus/octopus.h>

#include "testutil.h"

#define START_TIMEOUT_MS 15000
#define OCTO_TIMEOUT_MS 90000  /* no octo run in here takes nearly as long */
#define FAKE_JOB "11111111-2222-4333-8444-555555555555"

/* ---- a running octopusd ---------------------------------------------------- */

typedef struct {
	pid_t pid;
	int port;          /* 0 at first: a free one; kept for a restart */
	char dir[256];     /* its data directory */
	char base[64];     /* http://127.0.0.1:PORT */
} daemon_proc;

static const char *env_path(const char *name)
{
	const char *p = getenv(name);

	ck_assert_msg(p != NULL && *p, "%s must name the binary", name);
	return p;
}

/* Reads a line from fd with a deadline; its length, or -1. */
static int read_line(int fd, char *buf, size_t size, int timeout_ms)
{
	size_t used = 0;

	while (used + 1 < size) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, timeout_ms) <= 0 || read(fd, buf + used, 1) <= 0)
			return -1;
		if (buf[used] == '\n')
			break;
		used++;
	}
	buf[used] = '\0';
	return (int)used;
}

/* Starts octopusd with `env` added to a minimal environment, on d->port
 * (0: any) and d->dir (made when empty), and waits until it listens. No
 * variable appears twice: the binary and its libtool wrapper would not
 * agree on which one wins. */
static void daemon_start(daemon_proc *d, const char *const *env)
{
	char *envp[32], line[512], dirvar[300], portvar[32], *argv[2];
	const char *prefix = "listening on http://127.0.0.1:";
	int out[2], n = 0;

	if (!d->dir[0])
		tu_mkdtemp(d->dir);
	snprintf(dirvar, sizeof(dirvar), "OCTO_DATA_DIR=%s/data", d->dir);
	snprintf(portvar, sizeof(portvar), "PORT=%d", d->port);
	envp[n++] = dirvar;
	envp[n++] = portvar;
	envp[n++] = (char *)"HOST=127.0.0.1";
	envp[n++] = (char *)"RATE_LIMIT_MAX_REQUESTS=0";
	envp[n++] = (char *)"LOG_LEVEL=error";
	envp[n++] = (char *)"OCTO_SHUTDOWN_GRACE_S=1";
	for (; env && *env; env++)
		envp[n++] = (char *)*env;
	envp[n] = NULL;
	argv[0] = (char *)env_path("OCTOPUSD");
	argv[1] = NULL;
	ck_assert_int_eq(pipe(out), 0);
	d->pid = fork();
	ck_assert_int_ge(d->pid, 0);
	if (d->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failing test leaves no daemon */
		dup2(out[1], STDOUT_FILENO);
		execve(argv[0], argv, envp);
		_exit(127);
	}
	close(out[1]);
	ck_assert_int_gt(read_line(out[0], line, sizeof(line), START_TIMEOUT_MS), 0);
	close(out[0]);
	ck_assert_msg(strstr(line, prefix) != NULL, "octopusd said: %s", line);
	d->port = atoi(strstr(line, prefix) + strlen(prefix));
	ck_assert_int_gt(d->port, 0);
	snprintf(d->base, sizeof(d->base), "http://127.0.0.1:%d", d->port);
}

/* Stops it with `signo` (SIGTERM: cleanly; SIGKILL: a crash) and keeps
 * its data, for a start again on the same port. */
static void daemon_halt(daemon_proc *d, int signo)
{
	int status;

	ck_assert_int_eq(kill(d->pid, signo), 0);
	ck_assert_int_eq(waitpid(d->pid, &status, 0), d->pid);
}

static void daemon_stop(daemon_proc *d)
{
	daemon_halt(d, SIGTERM);
	tu_rmtree(d->dir);
}

/* ---- running octo ---------------------------------------------------------- */

typedef struct {
	char *p;
	size_t len;
} text;

static void text_add(text *t, const char *data, size_t n)
{
	t->p = realloc(t->p, t->len + n + 1);
	ck_assert_ptr_nonnull(t->p);
	memcpy(t->p + t->len, data, n);
	t->len += n;
	t->p[t->len] = '\0';
}

typedef struct {
	pid_t pid;
	int fd[2];         /* stdout and stderr; in a terminal both are fd[0] */
	text out, err;
	int status;        /* the exit status, or 128 + the signal */
} cli_proc;

/* Runs $OCTO_CLI with OCTO_URL=base: in a pseudo-terminal of 100 columns
 * when `tty`, else with stdout and stderr on pipes. */
static void cli_start(cli_proc *p, const char *base, int tty, const char *const *args)
{
	char *argv[32], *envp[8], url[128], path[1024];
	struct winsize ws = { 30, 100, 0, 0 };
	int out[2], err[2], a = 0, n = 0;

	memset(p, 0, sizeof(*p));
	snprintf(url, sizeof(url), "OCTO_URL=%s", base);
	snprintf(path, sizeof(path), "PATH=%s", getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	envp[n++] = url;
	envp[n++] = path;
	envp[n++] = (char *)(tty ? "TERM=xterm" : "TERM=dumb");
	envp[n] = NULL;
	argv[a++] = (char *)env_path("OCTO_CLI");
	for (; args && *args; args++)
		argv[a++] = (char *)*args;
	argv[a] = NULL;
	if (tty) {
		p->pid = forkpty(&p->fd[0], NULL, NULL, &ws);
		p->fd[1] = -1;
	} else {
		ck_assert_int_eq(pipe(out), 0);
		ck_assert_int_eq(pipe(err), 0);
		p->pid = fork();
	}
	ck_assert_int_ge(p->pid, 0);
	if (p->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (!tty) {
			dup2(out[1], STDOUT_FILENO);
			dup2(err[1], STDERR_FILENO);
			close(out[0]);
			close(err[0]);
		}
		execve(argv[0], argv, envp);
		_exit(127);
	}
	if (!tty) {
		close(out[1]);
		close(err[1]);
		p->fd[0] = out[0];
		p->fd[1] = err[0];
	}
}

/* Reads what is there; 0 once both outputs are closed. A terminal whose
 * program ended reads EIO: its end. */
static int cli_read(cli_proc *p, int timeout_ms)
{
	struct pollfd fds[2];
	int i, open = 0;
	char chunk[4096];

	for (i = 0; i < 2; i++) {
		fds[i].fd = p->fd[i];
		fds[i].events = POLLIN;
		open += p->fd[i] >= 0;
	}
	if (!open)
		return 0;
	ck_assert_msg(poll(fds, 2, timeout_ms) > 0, "octo said nothing for %d ms; so far:\n%s\n%s",
	              timeout_ms, p->out.p ? p->out.p : "", p->err.p ? p->err.p : "");
	for (i = 0; i < 2; i++) {
		ssize_t got;
		if (p->fd[i] < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		got = read(p->fd[i], chunk, sizeof(chunk));
		if (got > 0) {
			text_add(i == 0 ? &p->out : &p->err, chunk, (size_t)got);
		} else if (got == 0 || errno != EINTR) {
			close(p->fd[i]);
			p->fd[i] = -1;
		}
	}
	return 1;
}

/* Reads until `want` shows up on stdout (or stderr, when `on_err`); 1
 * if it did before octo ended. */
static int cli_await(cli_proc *p, const char *want, int on_err)
{
	for (;;) {
		text *t = on_err ? &p->err : &p->out;
		if (t->p && strstr(t->p, want))
			return 1;
		if (!cli_read(p, OCTO_TIMEOUT_MS))
			return 0;
	}
}

/* Reads to the end and reaps octo; its exit status. */
static int cli_finish(cli_proc *p)
{
	int status;

	while (cli_read(p, OCTO_TIMEOUT_MS))
		;
	ck_assert_int_eq(waitpid(p->pid, &status, 0), p->pid);
	if (!p->out.p)
		text_add(&p->out, "", 0);
	if (!p->err.p)
		text_add(&p->err, "", 0);
	p->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	return p->status;
}

static void cli_free(cli_proc *p)
{
	free(p->out.p);
	free(p->err.p);
}

/* One run to its end, outputs on pipes. */
static int cli_run(cli_proc *p, const char *base, const char *const *args)
{
	cli_start(p, base, 0, args);
	return cli_finish(p);
}

/* The job id that download announced on stderr ("octo: job <id>"). */
static void job_of(const cli_proc *p, char id[37])
{
	const char *at = strstr(p->err.p ? p->err.p : "", "octo: job ");

	ck_assert_msg(at != NULL, "no job announced: %s", p->err.p ? p->err.p : "");
	snprintf(id, 37, "%s", at + strlen("octo: job "));
	ck_assert_uint_eq(strlen(id), 36);
}

/* A URL line of download's results: "<file id> http://127.0.0.1:<port>/". */
static void assert_url_line(const char *out, int64_t file_id, const daemon_proc *d)
{
	char want[128];

	snprintf(want, sizeof(want), "%" PRId64 " %s/", file_id, d->base);
	ck_assert_msg(strstr(out, want) != NULL, "no \"%s\" in:\n%s", want, out);
}

/* Waits until `octo status` says the job ended; its summary line. */
static char *await_end(const daemon_proc *d, const char *job_id)
{
	const char *args[] = { "status", job_id, NULL };
	struct timespec tick = { 0, 100 * 1000000L };
	int i;

	for (i = 0; i < 600; i++) {
		cli_proc p;
		char *line;
		cli_run(&p, d->base, args);
		line = strndup(p.out.p, strcspn(p.out.p, "\n"));
		cli_free(&p);
		if (strstr(line, " completed:") || strstr(line, " partial:") ||
		    strstr(line, " failed:") || strstr(line, " cancelled:"))
			return line;
		free(line);
		nanosleep(&tick, NULL);
	}
	ck_abort_msg("job %s did not end", job_id);
	return NULL;
}

/* ---- the shared daemon ---------------------------------------------------- */

static daemon_proc shared;

static void shared_up(void)
{
	static const char *const env[] = {
		"DOWNLOAD_DELAY_MIN_MS=1000", "DOWNLOAD_DELAY_MAX_MS=1500", NULL
	};

	memset(&shared, 0, sizeof(shared));
	daemon_start(&shared, env);
}

static void shared_down(void)
{
	daemon_stop(&shared);
}

/* In a terminal: bars redrawn in place (cursor up, then the percentage
 * or status) while the job runs, then a URL line per file. */
START_TEST(download_on_a_terminal_draws_progress_then_urls)
{
	static const char *const args[] = { "download", "70000", "70001", NULL };
	const char *results, *up;
	cli_proc p;
	char *before;

	cli_start(&p, shared.base, 1, args);
	ck_assert_int_eq(cli_finish(&p), 0);
	results = strstr(p.out.p, "\n70000 http://");
	ck_assert_msg(results != NULL, "no URL line in:\n%s", p.out.p);
	before = strndup(p.out.p, (size_t)(results - p.out.p));
	up = strstr(before, "\033[");
	while (up && !(up[2] >= '1' && up[2] <= '9' && up[2 + strspn(up + 2, "0123456789")] == 'A'))
		up = strstr(up + 2, "\033[");
	ck_assert_msg(up != NULL, "no redraw before the results:\n%s", before);
	ck_assert_msg(strstr(up, "%") && (strstr(up, "processing") || strstr(up, "completed")),
	              "no progress in the redraw:\n%s", up);
	ck_assert_ptr_nonnull(strstr(before, "job "));
	assert_url_line(results, 70000, &shared);
	assert_url_line(results, 70001, &shared);
	free(before);
	cli_free(&p);
}
END_TEST

/* Does `line` read "<id> <status> <n>%", "<id> http..." or "<id> error: "? */
static int plain_line(const char *line)
{
	char status[32];
	long long id;
	int pct, used = 0;

	if (sscanf(line, "%lld %31[a-z] %d%%%n", &id, status, &pct, &used) == 3 &&
	    line[used] == '\0')
		return 1;
	return sscanf(line, "%lld %n", &id, &used) == 1 && used > 0 &&
	       (strncmp(line + used, "http://", 7) == 0 || strncmp(line + used, "error: ", 7) == 0);
}

/* In a pipe: plain lines, one per change, no escape sequences. */
START_TEST(download_into_a_pipe_prints_plain_lines_then_urls)
{
	static const char *const args[] = { "download", "70002", "70003", NULL };
	char *copy, *line, *save = NULL;
	int progress_lines = 0;
	cli_proc p;

	ck_assert_int_eq(cli_run(&p, shared.base, args), 0);
	ck_assert_msg(strchr(p.out.p, '\033') == NULL, "escapes in:\n%s", p.out.p);
	copy = strdup(p.out.p);
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		ck_assert_msg(plain_line(line), "odd line \"%s\"", line);
		progress_lines += strstr(line, "processing") != NULL;
	}
	free(copy);
	ck_assert_int_ge(progress_lines, 1);
	assert_url_line(p.out.p, 70002, &shared);
	assert_url_line(p.out.p, 70003, &shared);
	ck_assert_ptr_nonnull(strstr(p.err.p, "octo: job "));
	cli_free(&p);
}
END_TEST

/* The size of each file saved, against the status JSON's "size". */
static void assert_saved_sizes(const char *dir, const char *status_json)
{
	const octo_json_value *files;
	octo_json *doc = NULL;
	char path[512];
	struct stat st;
	size_t i;

	ck_assert_int_eq(octo_json_parse(&doc, status_json, strlen(status_json)), 0);
	files = member(doc, "files");
	ck_assert_uint_eq(octo_json_size(files), 2);
	for (i = 0; i < 2; i++) {
		int64_t id = 0, size = -1;
		octo_json_int(octo_json_get(octo_json_at(files, i), "file_id"), &id);
		octo_json_int(octo_json_get(octo_json_at(files, i), "size"), &size);
		snprintf(path, sizeof(path), "%s/%" PRId64 ".zip", dir, id);
		ck_assert_msg(stat(path, &st) == 0, "%s is missing", path);
		ck_assert_int_gt(size, 0);
		ck_assert_int_eq(st.st_size, size);
		snprintf(path, sizeof(path), "%s/.%" PRId64 ".zip.part", dir, id);
		ck_assert_int_ne(stat(path, &st), 0);
	}
	octo_json_free(doc);
}

START_TEST(output_dir_gets_files_of_the_sizes_the_status_gives)
{
	char dir[256], out[300], job_id[37];
	const char *args[] = { "download", "--output", out, "70004", "70005", NULL };
	const char *status[] = { "status", "--json", job_id, NULL };
	cli_proc p, s;

	tu_mkdtemp(dir);
	snprintf(out, sizeof(out), "%s/files", dir); /* made by octo */
	ck_assert_int_eq(cli_run(&p, shared.base, args), 0);
	assert_url_line(p.out.p, 70004, &shared);
	ck_assert_ptr_nonnull(strstr(p.err.p, "saved"));
	job_of(&p, job_id);
	ck_assert_int_eq(cli_run(&s, shared.base, status), 0);
	assert_saved_sizes(out, s.out.p);
	cli_free(&s);
	cli_free(&p);
	tu_rmtree(dir);
}
END_TEST

START_TEST(status_cancel_check_and_health_answer)
{
	const char *download[] = { "download", "70006", NULL };
	char job_id[37], want[256];
	const char *status[] = { "status", job_id, NULL };
	const char *cancel[] = { "cancel", job_id, NULL };
	const char *check[] = { "check", "70006", "70007", NULL };
	const char *health[] = { "health", NULL };
	cli_proc p;

	ck_assert_int_eq(cli_run(&p, shared.base, download), 0);
	job_of(&p, job_id);
	cli_free(&p);
	ck_assert_int_eq(cli_run(&p, shared.base, status), 0);
	snprintf(want, sizeof(want), "job %s completed: 1/1 completed, 0 failed\n70006 completed %s/",
	         job_id, shared.base);
	ck_assert_msg(strncmp(p.out.p, want, strlen(want)) == 0, "status said:\n%s", p.out.p);
	cli_free(&p);
	ck_assert_int_eq(cli_run(&p, shared.base, cancel), 0);
	snprintf(want, sizeof(want), "job %s already ended: completed\n", job_id);
	ck_assert_str_eq(p.out.p, want);
	cli_free(&p);
	ck_assert_int_eq(cli_run(&p, shared.base, check), 0);
	ck_assert_msg(strncmp(p.out.p, "70006 available ", 16) == 0 &&
	              strstr(p.out.p, " bytes\n70007 not available\n"), "check said:\n%s", p.out.p);
	cli_free(&p);
	ck_assert_int_eq(cli_run(&p, shared.base, health), 0);
	ck_assert_str_eq(p.out.p, "healthy (storage: ok)\n");
	cli_free(&p);
}
END_TEST

/* An error reply: the server's message and request id on stderr, exit 1.
 * A job id in upper case is the same UUID, so it is asked, not refused. */
START_TEST(server_errors_show_the_message_and_request_id)
{
	static const char *const args[] = { "status", "0000000A-0000-4000-8000-000000000000", NULL };
	cli_proc p;

	ck_assert_int_eq(cli_run(&p, shared.base, args), 1);
	ck_assert_msg(strstr(p.err.p, "No job 0000000a-0000-4000-8000-000000000000") &&
	              strstr(p.err.p, "HTTP 404") && strstr(p.err.p, ", request "),
	              "stderr:\n%s", p.err.p);
	ck_assert_str_eq(p.out.p, "");
	cli_free(&p);
}
END_TEST

typedef struct {
	const char *args[6];
	const char *says;
} bad_case;

static const bad_case bad_cases[] = {
	{ { "download", "9999" }, "not a number from 10000 to 100000000" },
	{ { "download", "100000001" }, "not a number from 10000 to 100000000" },
	{ { "download", "70000x" }, "'70000x' is not a number" },
	{ { "download", "-70000" }, "'-70000' is not a number" },
	{ { "download", "" }, "'' is not a number" },
	{ { "download" }, "needs at least one file id" },
	{ { "download", "70000", "70000" }, "70000 is given twice" },
	{ { "download", "--output" }, "--output needs a value" },
	{ { "check", "abc" }, "'abc' is not a number" },
	{ { "frobnicate" }, "unknown command 'frobnicate'" },
	{ { NULL }, "no command" },
	{ { "status", "not-a-uuid" }, "'not-a-uuid' is not a UUID" },
	{ { "status", "6f1c2d9e-8a4b-4c3d-9e2f-0123456789abc" }, "is not a UUID" },
	{ { "status" }, "takes one job id" },
	{ { "cancel", "6f1c2d9e-8a4b-4c3d-9e2f-0123456789ab", "x" }, "takes one job id" },
	{ { "health", "now" }, "takes no arguments" },
	{ { "--url", "ftp://example.com", "health" }, "'ftp://example.com'" },
	{ { "--url", "http://", "health" }, "http://HOST" },
	{ { "--timeout", "0", "health" }, "--timeout must be" },
	{ { "--timeout", "9x", "health" }, "--timeout must be" },
	{ { "--bogus", "health" }, "unknown option '--bogus'" },
	{ { "--json", "health" }, "--json goes with status only" },
	{ { "--output", "/tmp", "check", "70000" }, "--output goes with download only" },
};

/* Refused before any request: exit 2 and a message naming the problem. */
START_TEST(bad_arguments_exit_2_with_a_clear_message)
{
	const bad_case *c = &bad_cases[_i];
	cli_proc p;

	ck_assert_int_eq(cli_run(&p, shared.base, c->args), 2);
	ck_assert_msg(strstr(p.err.p, c->says) != NULL, "want \"%s\" in:\n%s", c->says, p.err.p);
	cli_free(&p);
}
END_TEST

START_TEST(help_and_version_exit_0)
{
	static const char *const help[] = { "--help", NULL };
	static const char *const version[] = { "--version", NULL };
	cli_proc p;

	ck_assert_int_eq(cli_run(&p, shared.base, help), 0);
	ck_assert_ptr_nonnull(strstr(p.out.p, "Usage: octo"));
	ck_assert_ptr_nonnull(strstr(p.out.p, "Exit status:"));
	cli_free(&p);
	ck_assert_int_eq(cli_run(&p, shared.base, version), 0);
	ck_assert_msg(strncmp(p.out.p, "octo " PACKAGE_VERSION " ", 6 + strlen(PACKAGE_VERSION)) == 0,
	              "version said: %s", p.out.p);
	cli_free(&p);
}
END_TEST

/* A loopback port nobody listens on: bound, then closed. */
static int closed_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	getsockname(fd, (struct sockaddr *)&sa, &len);
	close(fd);
	return ntohs(sa.sin_port);
}

START_TEST(nothing_listening_exits_3)
{
	static const char *const cases[][3] = {
		{ "health", NULL, NULL },
		{ "download", "70000", NULL },
		{ "status", "6f1c2d9e-8a4b-4c3d-9e2f-0123456789ab", NULL },
		{ "cancel", "6f1c2d9e-8a4b-4c3d-9e2f-0123456789ab", NULL },
		{ "check", "70000", NULL },
	};
	char base[64];
	size_t i;

	snprintf(base, sizeof(base), "http://127.0.0.1:%d", closed_port());
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cli_proc p;
		ck_assert_int_eq(cli_run(&p, base, cases[i]), 3);
		ck_assert_msg(strstr(p.err.p, "cannot reach http://127.0.0.1:"), "%s said:\n%s",
		              cases[i][0], p.err.p);
		cli_free(&p);
	}
}
END_TEST

/* ---- daemons of their own --------------------------------------------------- */

/* A listening socket on a free loopback port, for the test's servers. */
static int listen_loopback(int *port)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(lfd, 16), 0);
	getsockname(lfd, (struct sockaddr *)&sa, &len);
	*port = ntohs(sa.sin_port);
	return lfd;
}

/* Reads one HTTP request's head (and its body, which is short) into buf. */
static void read_request(int fd, char *buf, size_t size)
{
	size_t used = 0;
	const char *end, *cl;

	for (;;) {
		ssize_t n = recv(fd, buf + used, size - used - 1, 0);
		if (n <= 0)
			break;
		used += (size_t)n;
		buf[used] = '\0';
		if ((end = strstr(buf, "\r\n\r\n")) == NULL)
			continue;
		cl = strcasestr(buf, "Content-Length:");
		if (!cl || used >= (size_t)(end + 4 - buf) + (size_t)atol(cl + 15))
			break;
	}
	buf[used] = '\0';
}

static void answer(int fd, const char *status, const char *body)
{
	char head[256];

	snprintf(head, sizeof(head), "HTTP/1.1 %s\r\nContent-Type: application/json\r\n"
	         "Content-Length: %zu\r\nConnection: close\r\n\r\n", status, strlen(body));
	send(fd, head, strlen(head), MSG_NOSIGNAL);
	send(fd, body, strlen(body), MSG_NOSIGNAL);
}

/* Serves /files/<id> until killed: 404 for odd ids, 5000 bytes else. */
static pid_t origin_server(int *port)
{
	static char body[5000];
	int lfd = listen_loopback(port);
	pid_t pid = fork();

	if (pid != 0) {
		close(lfd);
		return pid;
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	memset(body, 'z', sizeof(body));
	body[sizeof(body) - 1] = '\0';
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		char req[4096];
		long long id = 0;
		read_request(fd, req, sizeof(req));
		sscanf(req, "GET /files/%lld", &id);
		answer(fd, id % 2 ? "404 Not Found" : "200 OK", id % 2 ? "" : body);
		close(fd);
	}
}

/* A file the origin lacks fails: its error line, the other's URL, exit 1. */
START_TEST(a_failing_file_exits_1_and_says_why)
{
	char origin_url[128];
	const char *env[] = { "OCTO_PROCESSOR=origin", origin_url, "OCTO_MAX_ATTEMPTS=1", NULL };
	static const char *const args[] = { "download", "70010", "70011", NULL };
	daemon_proc d = { 0 };
	int port;
	pid_t origin = origin_server(&port);
	cli_proc p;

	snprintf(origin_url, sizeof(origin_url),
	         "OCTO_ORIGIN_URL=http://127.0.0.1:%d/files/{file_id}", port);
	daemon_start(&d, env);
	ck_assert_int_eq(cli_run(&p, d.base, args), 1);
	assert_url_line(p.out.p, 70010, &d);
	ck_assert_msg(strstr(p.out.p, "\n70011 error: not found"), "stdout:\n%s", p.out.p);
	cli_free(&p);
	daemon_stop(&d);
	kill(origin, SIGKILL);
	waitpid(origin, NULL, 0);
}
END_TEST

/* A job cancelled (by octo cancel) while download follows it: every file
 * ends in an error line, exit 1. */
START_TEST(a_job_cancelled_while_followed_exits_1)
{
	static const char *const env[] = {
		"DOWNLOAD_DELAY_MIN_MS=60000", "DOWNLOAD_DELAY_MAX_MS=60000", "OCTO_WORKERS=1", NULL
	};
	static const char *const args[] = { "download", "70020", "70021", NULL };
	char job_id[37], want[80];
	const char *cancel[] = { "cancel", job_id, NULL };
	daemon_proc d = { 0 };
	cli_proc p, c;

	daemon_start(&d, env);
	cli_start(&p, d.base, 0, args);
	ck_assert(cli_await(&p, "70020 processing", 0));
	job_of(&p, job_id);
	ck_assert_int_eq(cli_run(&c, d.base, cancel), 0);
	snprintf(want, sizeof(want), "job %s cancelled\n", job_id);
	ck_assert_str_eq(c.out.p, want);
	cli_free(&c);
	ck_assert_int_eq(cli_finish(&p), 1);
	ck_assert_msg(strstr(p.out.p, "\n70020 error: cancelled\n70021 error: cancelled\n"),
	              "stdout:\n%s", p.out.p);
	cli_free(&p);
	daemon_stop(&d);
}
END_TEST

/* Ctrl-C: exit 130 at once, the job id to resume with, and the job goes
 * on to complete: octo did not cancel it. */
START_TEST(ctrl_c_stops_octo_but_not_the_job)
{
	static const char *const env[] = {
		"DOWNLOAD_DELAY_MIN_MS=3000", "DOWNLOAD_DELAY_MAX_MS=3000", NULL
	};
	static const char *const args[] = { "download", "70030", NULL };
	char job_id[37], want[80], *summary;
	daemon_proc d = { 0 };
	cli_proc p;

	daemon_start(&d, env);
	cli_start(&p, d.base, 0, args);
	ck_assert(cli_await(&p, "70030 processing", 0));
	job_of(&p, job_id);
	ck_assert_int_eq(kill(p.pid, SIGINT), 0);
	ck_assert_int_eq(cli_finish(&p), 130);
	snprintf(want, sizeof(want), "octo status %s", job_id);
	ck_assert_msg(strstr(p.err.p, want) != NULL, "stderr:\n%s", p.err.p);
	ck_assert_ptr_null(strstr(p.out.p, "http://"));
	summary = await_end(&d, job_id);
	ck_assert_msg(strstr(summary, " completed: 1/1") != NULL, "the job: %s", summary);
	free(summary);
	cli_free(&p);
	daemon_stop(&d);
}
END_TEST

/* The daemon goes away mid-stream (SIGKILL, or SIGTERM with its
 * "shutdown" event) and comes back on the same port and data: octo
 * reconnects and still ends with every URL. */
START_TEST(the_stream_survives_a_daemon_restart)
{
	static const char *const env[] = {
		"DOWNLOAD_DELAY_MIN_MS=2500", "DOWNLOAD_DELAY_MAX_MS=2500", NULL
	};
	const int signo = _i == 0 ? SIGKILL : SIGTERM;
	char first[16], second[16];
	const char *args[] = { "download", first, second, NULL };
	daemon_proc d = { 0 };
	cli_proc p;

	snprintf(first, sizeof(first), "%d", 70040 + 2 * _i);
	snprintf(second, sizeof(second), "%d", 70041 + 2 * _i);
	daemon_start(&d, env);
	cli_start(&p, d.base, 0, args);
	ck_assert(cli_await(&p, " processing", 0));
	daemon_halt(&d, signo);
	daemon_start(&d, env); /* the same port and data directory */
	ck_assert_int_eq(cli_finish(&p), 0);
	assert_url_line(p.out.p, 70040 + 2 * _i, &d);
	assert_url_line(p.out.p, 70041 + 2 * _i, &d);
	ck_assert_msg(strstr(p.err.p, "reconnecting"), "stderr:\n%s", p.err.p);
	cli_free(&p);
	daemon_stop(&d);
}
END_TEST

/* ---- a fake service ------------------------------------------------------------ */

/* Canned answers: its event stream always fails (503); the status says
 * "processing" six times, then "completed"; an initiate naming 70666 is
 * refused with a message holding an escape sequence. */
static pid_t fake_service(int *port)
{
	static const char refused[] =
		"{\"error\":\"validation_error\",\"message\":\"file_ids[0] \\u001b[31mred\","
		"\"requestId\":\"fake-1\"}";
	static const char accepted[] = "{\"jobId\":\"" FAKE_JOB "\",\"status\":\"queued\","
	                               "\"totalFileIds\":1}";
	static const char status_fmt[] =
		"{\"jobId\":\"" FAKE_JOB "\",\"status\":\"%s\",\"progress\":%s,\"files\":"
		"[{\"file_id\":70050,\"status\":\"%s\",\"progress\":%s,\"attempts\":1,"
		"\"downloadUrl\":%s,\"size\":%s,\"error\":null}]}";
	int lfd = listen_loopback(port), reads = 0;
	pid_t pid = fork();

	if (pid != 0) {
		close(lfd);
		return pid;
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;) {
		int fd = accept(lfd, NULL, NULL), done;
		char req[4096], body[1024];
		read_request(fd, req, sizeof(req));
		reads += strncmp(req, "GET /v1/download/status/", 24) == 0;
		done = reads > 6;
		snprintf(body, sizeof(body), status_fmt, done ? "completed" : "processing",
		         done ? "1" : "0.5", done ? "completed" : "processing", done ? "1" : "0.5",
		         done ? "\"http://127.0.0.1:1/f/70050.zip\"" : "null", done ? "5" : "null");
		if (strncmp(req, "POST /v1/download/initiate", 26) == 0)
			answer(fd, strstr(req, "70666") ? "400 Bad Request" : "202 Accepted",
			       strstr(req, "70666") ? refused : accepted);
		else if (strstr(req, "/events"))
			answer(fd, "503 Service Unavailable", "{}");
		else
			answer(fd, "200 OK", body);
		close(fd);
	}
}

/* The stream keeps failing: octo polls the status instead, to the end. */
START_TEST(polling_takes_over_when_the_stream_keeps_failing)
{
	static const char *const args[] = { "download", "70050", NULL };
	char base[64];
	int port;
	pid_t fake = fake_service(&port);
	cli_proc p;

	snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
	ck_assert_int_eq(cli_run(&p, base, args), 0);
	ck_assert_msg(strstr(p.out.p, "70050 processing 50%\n") &&
	              strstr(p.out.p, "\n70050 http://127.0.0.1:1/f/70050.zip\n"),
	              "stdout:\n%s", p.out.p);
	ck_assert_msg(strstr(p.err.p, "polling"), "stderr:\n%s", p.err.p);
	cli_free(&p);
	kill(fake, SIGKILL);
	waitpid(fake, NULL, 0);
}
END_TEST

/* A 400 is the user's argument refused: exit 2, and the server's text is
 * defanged before it reaches a terminal. */
START_TEST(a_refused_argument_exits_2_and_prints_safely)
{
	static const char *const args[] = { "download", "70666", NULL };
	char base[64];
	int port;
	pid_t fake = fake_service(&port);
	cli_proc p;

	snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
	ck_assert_int_eq(cli_run(&p, base, args), 2);
	ck_assert_msg(strstr(p.err.p, "file_ids[0] ?[31mred (HTTP 400 validation_error, "
	                               "request fake-1)"), "stderr:\n%s", p.err.p);
	ck_assert_ptr_null(strchr(p.err.p, '\033'));
	cli_free(&p);
	kill(fake, SIGKILL);
	waitpid(fake, NULL, 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("octo");
	TCase *shared_case = tcase_create("shared daemon");
	TCase *own = tcase_create("own daemon");
	TCase *fake = tcase_create("fake service");

	/* One daemon for the quick tests: started once, outside the forks. */
	tcase_add_unchecked_fixture(shared_case, shared_up, shared_down);
	tcase_set_timeout(shared_case, 120);
	tcase_add_test(shared_case, download_on_a_terminal_draws_progress_then_urls);
	tcase_add_test(shared_case, download_into_a_pipe_prints_plain_lines_then_urls);
	tcase_add_test(shared_case, output_dir_gets_files_of_the_sizes_the_status_gives);
	tcase_add_test(shared_case, status_cancel_check_and_health_answer);
	tcase_add_test(shared_case, server_errors_show_the_message_and_request_id);
	tcase_add_loop_test(shared_case, bad_arguments_exit_2_with_a_clear_message, 0,
	                    (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
	tcase_add_test(shared_case, help_and_version_exit_0);
	tcase_add_test(shared_case, nothing_listening_exits_3);
	suite_add_tcase(s, shared_case);

	tcase_set_timeout(own, 120);
	tcase_add_test(own, a_failing_file_exits_1_and_says_why);
	tcase_add_test(own, a_job_cancelled_while_followed_exits_1);
	tcase_add_test(own, ctrl_c_stops_octo_but_not_the_job);
	tcase_add_loop_test(own, the_stream_survives_a_daemon_restart, 0, 2);
	suite_add_tcase(s, own);

	tcase_set_timeout(fake, 60);
	tcase_add_test(fake, polling_takes_over_when_the_stream_keeps_failing);
	tcase_add_test(fake, a_refused_argument_exits_2_and_prints_safely);
	suite_add_tcase(s, fake);
	return tu_run(s);
}
