/* End to end: the real octopusd binary ($OCTOPUSD) on a free loopback
 * port, driven over HTTP with libcurl. Asserts status codes, headers and
 * JSON shapes of every endpoint, the bad-input table, start-up
 * validation, and a clean stop on SIGTERM.
 *
 * Built three times: check_e2e runs octopusd on its embedded store,
 * check_e2e_s3 (OCTO_E2E_S3) the same suite with octopusd on a real S3
 * server (s3rver, see tests/s3server.h), and check_e2e_gateway
 * (OCTO_E2E_GATEWAY) the api case again through nginx running
 * docker/nginx.conf, plus the gateway's own tests.
 *
 * The hardening cases drive octopusd as an attacker and a broken world
 * would: hostile bytes over raw sockets ("bad input"), slow and too many
 * clients ("slow clients"), storage that fails or fills and a webhook
 * receiver that never answers ("faults"), and SIGKILL at random points
 * under a steady stream of requests ("crash loop"). */
#include "config.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <octopus/octopus.h>

#include "s3server.h"
#include "testutil.h"

#define START_TIMEOUT_MS 15000

#ifdef OCTO_E2E_S3
static ts3_server s3;
#endif

/* ---- a running octopusd ------------------------------------------------ */

typedef struct {
	pid_t pid;
	int port;
	char dir[256];     /* its data directory */
	char base[64];     /* http://127.0.0.1:PORT */
	int log_fd;        /* its stderr, when captured; else -1 */
	int keep_dir;      /* set by daemon_crash(): start again on the same data */
} daemon_proc;

static const char *octopusd_path(void)
{
	const char *p = getenv("OCTOPUSD");

	ck_assert_msg(p != NULL, "OCTOPUSD must name the octopusd binary");
	return p;
}

/* Reads a line from fd with a deadline; returns its length or -1. */
static int read_line(int fd, char *buf, size_t size, int timeout_ms)
{
	size_t used = 0;

	while (used + 1 < size) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t n;
		if (poll(&p, 1, timeout_ms) <= 0)
			return -1;
		n = read(fd, buf + used, 1);
		if (n <= 0)
			return -1;
		if (buf[used] == '\n')
			break;
		used++;
	}
	buf[used] = '\0';
	return (int)used;
}

/* Runs octopusd with `env` (NULL-terminated "K=V" list, added to a
 * minimal environment) and optional extra argv; returns the length of the
 * first line it prints (its URL, once it listens), or -1. */
static int daemon_launch(daemon_proc *d, const char *const *env, const char *const *args,
                         int capture_log, char *line, size_t line_len)
{
	char *envp[64], *argv[16], dirvar[300];
	int out[2], err[2] = { -1, -1 }, n = 0, a = 0, got;

	if (!d->keep_dir) /* a restart keeps the data of the run before */
		tu_mkdtemp(d->dir);
	snprintf(dirvar, sizeof(dirvar), "OCTO_DATA_DIR=%s/data", d->dir);
	envp[n++] = dirvar;
	envp[n++] = (char *)"PORT=0";
	envp[n++] = (char *)"HOST=127.0.0.1";
	envp[n++] = (char *)"RATE_LIMIT_MAX_REQUESTS=100000";
	envp[n++] = (char *)"LOG_LEVEL=warn";
	envp[n++] = (char *)"OCTO_SHUTDOWN_GRACE_S=1";
#ifdef OCTO_E2E_S3
	char s3_endpoint[128];
	snprintf(s3_endpoint, sizeof(s3_endpoint), "S3_ENDPOINT=%s", s3.endpoint);
	envp[n++] = s3_endpoint;
	envp[n++] = (char *)"S3_BUCKET_NAME=" TS3_BUCKET;
	envp[n++] = (char *)"S3_ACCESS_KEY_ID=" TS3_ACCESS_KEY;
	envp[n++] = (char *)"S3_SECRET_ACCESS_KEY=" TS3_SECRET_KEY;
	envp[n++] = (char *)"OCTO_STORE_TIMEOUT_MS=3000";
#endif
	/* The test's own settings last: they override the defaults above
	 * (octopusd in the build tree is libtool's shell wrapper, and a shell
	 * keeps the last of two variables of one name). */
	for (; env && *env; env++)
		envp[n++] = (char *)*env;
	envp[n] = NULL;
	argv[a++] = (char *)octopusd_path();
	for (; args && *args; args++)
		argv[a++] = (char *)*args;
	argv[a] = NULL;
	ck_assert_int_eq(pipe(out), 0);
	if (capture_log)
		ck_assert_int_eq(pipe(err), 0);
	d->pid = fork();
	ck_assert_int_ge(d->pid, 0);
	if (d->pid == 0) {
		/* A failing test must not leave its daemon behind. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(out[1], STDOUT_FILENO);
		if (capture_log)
			dup2(err[1], STDERR_FILENO);
		execve(argv[0], argv, envp);
		_exit(127);
	}
	close(out[1]);
	if (capture_log)
		close(err[1]);
	d->log_fd = err[0];
	got = read_line(out[0], line, line_len, START_TIMEOUT_MS);
	close(out[0]);
	return got;
}

/* Takes the port from octopusd's first line. */
static void daemon_listening(daemon_proc *d, const char *line)
{
	const char *prefix = strstr(line, "listening on http://127.0.0.1:");

	ck_assert_msg(prefix != NULL, "octopusd said: %s", line);
	d->port = atoi(prefix + strlen("listening on http://127.0.0.1:"));
	ck_assert_int_gt(d->port, 0);
	snprintf(d->base, sizeof(d->base), "http://127.0.0.1:%d", d->port);
}

/* Starts octopusd (see daemon_launch()) and waits until it prints its
 * URL, so no test ever races the listener. */
static void daemon_start_logged(daemon_proc *d, const char *const *env,
                                const char *const *args, int capture_log)
{
	char line[512];

	ck_assert_int_gt(daemon_launch(d, env, args, capture_log, line, sizeof(line)), 0);
	daemon_listening(d, line);
}

static void daemon_start(daemon_proc *d, const char *const *env, const char *const *args)
{
	daemon_start_logged(d, env, args, 0);
}

/* kill -9: no chance to save anything. The next daemon_start() on `d`
 * runs on the same storage. */
static void daemon_crash(daemon_proc *d)
{
	int status;

	ck_assert_int_eq(kill(d->pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(d->pid, &status, 0), d->pid);
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	d->keep_dir = 1;
}

/* Reads the daemon's log until a line containing `text`; 1 if seen. */
static int await_log(const daemon_proc *d, const char *text)
{
	char line[2048];

	while (read_line(d->log_fd, line, sizeof(line), 20000) >= 0)
		if (strstr(line, text))
			return 1;
	return 0;
}

/* SIGTERM, then the exit status. */
static int daemon_stop(daemon_proc *d)
{
	int status = -1;

	kill(d->pid, SIGTERM);
	ck_assert_int_eq(waitpid(d->pid, &status, 0), d->pid);
	if (d->log_fd >= 0)
		close(d->log_fd);
	tu_rmtree(d->dir);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Runs octopusd expecting it to refuse to start; returns the exit code and
 * what it wrote to stderr. */
static int daemon_refuses(const char *const *env, const char *const *args,
                          char *err, size_t errlen)
{
	char *envp[32], *argv[16];
	int pipefd[2], n = 0, a = 0, status;
	ssize_t got;
	size_t used = 0;
	pid_t pid;

	envp[n++] = (char *)"PORT=0";
	envp[n++] = (char *)"HOST=127.0.0.1";
	envp[n++] = (char *)"OCTO_DATA_DIR=/nonexistent-octo-never-used";
	for (; env && *env; env++)
		envp[n++] = (char *)*env;
	envp[n] = NULL;
	argv[a++] = (char *)octopusd_path();
	for (; args && *args; args++)
		argv[a++] = (char *)*args;
	argv[a] = NULL;
	ck_assert_int_eq(pipe(pipefd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(pipefd[1], STDERR_FILENO);
		dup2(pipefd[1], STDOUT_FILENO);
		close(pipefd[0]);
		close(pipefd[1]);
		execve(argv[0], argv, envp);
		_exit(127);
	}
	close(pipefd[1]);
	while (used + 1 < errlen && (got = read(pipefd[0], err + used, errlen - used - 1)) > 0)
		used += (size_t)got;
	err[used] = '\0';
	close(pipefd[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* ---- HTTP ---------------------------------------------------------------- */

typedef struct {
	long status;
	char *body;
	size_t body_len;
	char *headers; /* raw header block */
	size_t headers_len;
} reply;

static size_t collect(char *data, size_t size, size_t n, void *userp, int hdr)
{
	reply *r = userp;
	char **buf = hdr ? &r->headers : &r->body;
	size_t *len = hdr ? &r->headers_len : &r->body_len;
	char *bigger = realloc(*buf, *len + size * n + 1);

	ck_assert_ptr_nonnull(bigger);
	memcpy(bigger + *len, data, size * n);
	*len += size * n;
	bigger[*len] = '\0';
	*buf = bigger;
	return size * n;
}

static size_t on_body(char *d, size_t s, size_t n, void *u) { return collect(d, s, n, u, 0); }
static size_t on_header(char *d, size_t s, size_t n, void *u) { return collect(d, s, n, u, 1); }

static CURL *prepare(const daemon_proc *d, const char *method, const char *path,
                     struct curl_slist *hdrs, const char *body, size_t len, reply *r)
{
	char url[512];
	CURL *c = curl_easy_init();

	ck_assert_ptr_nonnull(c);
	memset(r, 0, sizeof(*r));
	snprintf(url, sizeof(url), "%s%s", d->base, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	return c;
}

static void finish(CURL *c, reply *r)
{
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_cleanup(c);
	if (!r->body)
		r->body = calloc(1, 1);
}

/* One request; `extra` is one optional header line ("Name: value"). */
static void request(const daemon_proc *d, const char *method, const char *path,
                    const char *content_type, const char *extra,
                    const char *body, size_t len, reply *r)
{
	struct curl_slist *hdrs = NULL;
	char ct[128];
	CURL *c;
	CURLcode rc;

	/* Suppress curl's own defaults so the test controls what is sent. */
	hdrs = curl_slist_append(hdrs, "Expect:");
	if (content_type) {
		snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
		hdrs = curl_slist_append(hdrs, ct);
	} else {
		hdrs = curl_slist_append(hdrs, "Content-Type:");
	}
	if (extra)
		hdrs = curl_slist_append(hdrs, extra);
	c = prepare(d, method, path, hdrs, body, len, r);
	rc = curl_easy_perform(c);
	ck_assert_msg(rc == CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(rc));
	finish(c, r);
	curl_slist_free_all(hdrs);
}

static void post_json(const daemon_proc *d, const char *path, const char *body, reply *r)
{
	request(d, "POST", path, "application/json", NULL, body, strlen(body), r);
}

static void reply_free(reply *r)
{
	free(r->body);
	free(r->headers);
}

/* The value of a response header (case-insensitive name), copied into out. */
static int header(const reply *r, const char *name, char *out, size_t size)
{
	size_t n = strlen(name);
	const char *p = r->headers;

	while (p && *p) {
		const char *eol = strstr(p, "\r\n");
		if (!eol)
			break;
		if ((size_t)(eol - p) > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
			const char *v = p + n + 1;
			while (*v == ' ')
				v++;
			snprintf(out, size, "%.*s", (int)(eol - v), v);
			return 1;
		}
		p = eol + 2;
	}
	return 0;
}

static void assert_header(const reply *r, const char *name, const char *want)
{
	char got[512];

	ck_assert_msg(header(r, name, got, sizeof(got)), "missing header %s", name);
	if (want)
		ck_assert_str_eq(got, want);
}

/* ---- JSON assertions -------------------------------------------------- */

static octo_json *parse(const reply *r)
{
	octo_json *doc = NULL;

	ck_assert_msg(octo_json_parse(&doc, r->body, r->body_len) == 0,
	              "not JSON: %s", r->body);
	return doc;
}




/* An error reply: exactly {"error","message","requestId"}, requestId equal
 * to the X-Request-ID header, and message mentioning `mention`. */
static void assert_error(const reply *r, long status, const char *mention)
{
	char id[256];
	octo_json *doc;

	ck_assert_msg(r->status == status, "status %ld, want %ld: %s", r->status, status, r->body);
	doc = parse(r);
	ck_assert_int_eq(octo_json_typeof(octo_json_root(doc)), OCTO_JSON_OBJECT);
	ck_assert_uint_eq(octo_json_size(octo_json_root(doc)), 3);
	str_member(doc, "error");
	ck_assert_msg(strstr(str_member(doc, "message"), mention) != NULL,
	              "message \"%s\" does not mention \"%s\"", str_member(doc, "message"), mention);
	ck_assert(header(r, "X-Request-ID", id, sizeof(id)));
	ck_assert_str_eq(str_member(doc, "requestId"), id);
	octo_json_free(doc);
}

/* ---- raw sockets, for what curl will not send --------------------------- */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* Sends `req` as-is and returns what the server answers until it closes
 * or 10 s pass (malloc'd). */
static char *raw_exchange(const daemon_proc *d, const char *req, size_t len)
{
	struct sockaddr_in sa;
	size_t cap = 65536, used = 0;
	char *buf = malloc(cap);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct timeval tv = { 10, 0 };

	ck_assert_int_ge(fd, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)d->port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ck_assert_int_eq(send(fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
	for (;;) {
		ssize_t n = recv(fd, buf + used, cap - used - 1, 0);
		if (n <= 0)
			break;
		used += (size_t)n;
		/* One response is enough: stop at the end of its body. */
		if (strstr(buf, "\r\n\r\n") && buf[used - 1] == '}')
			break;
	}
	buf[used] = '\0';
	close(fd);
	return buf;
}

/* A store handle on the daemon's own storage, to look behind its back. */
static octo_store *daemon_store(const daemon_proc *d)
{
	octo_store *store = NULL;
#ifdef OCTO_E2E_S3
	octo_s3_options o = OCTO_S3_OPTIONS_INIT;

	(void)d;
	o.endpoint = s3.endpoint;
	o.bucket = TS3_BUCKET;
	o.access_key_id = TS3_ACCESS_KEY;
	o.secret_access_key = TS3_SECRET_KEY;
	ck_assert_int_eq(octo_store_open_s3(&store, &o), 0);
#else
	char dir[300];

	snprintf(dir, sizeof(dir), "%s/data", d->dir);
	ck_assert_int_eq(octo_store_open_local(&store, dir), 0);
#endif
	return store;
}

/* The object behind downloads/<id>.zip, as the daemon's store holds it. */
static char *stored_object(const daemon_proc *d, int64_t file_id, size_t *len)
{
	octo_store *store = daemon_store(d);
	char key[64], *data = NULL;

	snprintf(key, sizeof(key), "downloads/%lld.zip", (long long)file_id);
	ck_assert_int_eq(octo_store_get(store, key, &data, len), 0);
	octo_store_free(store);
	return data;
}

/* A job's record, parsed. The record is rewritten as the job runs.
 * s3rver keeps an object's bytes and its length in two files, so a read
 * racing a rewrite can mix them (S3 itself cannot): read again until one
 * read is whole. */
static octo_json *job_record(const daemon_proc *d, const char *job_id)
{
	octo_store *store = daemon_store(d);
	octo_json *record = NULL;
	char key[80], *text;
	int attempt;
	size_t n;

	snprintf(key, sizeof(key), "jobs/%s.json", job_id);
	for (attempt = 0;; attempt++) {
		ck_assert_msg(octo_store_get(store, key, &text, &n) == 0, "no job record %s", key);
		if (octo_json_parse(&record, text, n) == 0)
			break;
		ck_assert_msg(attempt < 50, "record: %s", octo_error_last());
		octo_free(text);
	}
	octo_free(text);
	octo_store_free(store);
	return record;
}

/* Puts downloads/<id>.zip of `size` bytes (a pattern, not a constant). */
static char *put_file(const daemon_proc *d, int64_t file_id, size_t size)
{
	octo_store *store = daemon_store(d);
	char key[64], *data = malloc(size + 1);
	size_t i;

	for (i = 0; i < size; i++)
		data[i] = (char)('a' + (i * 7 + (size_t)file_id) % 26);
	snprintf(key, sizeof(key), "downloads/%lld.zip", (long long)file_id);
	ck_assert_int_eq(octo_store_put(store, key, data, size), 0);
	octo_store_free(store);
	return data;
}

/* Makes the daemon's storage fail, or work again. */
static void break_storage(const daemon_proc *d, int broken)
{
#ifdef OCTO_E2E_S3
	(void)d;
	if (broken)
		ts3_stop(&s3);
	else
		ts3_restart(&s3);
#else
	char data[300], moved[300];

	snprintf(data, sizeof(data), "%s/data", d->dir);
	snprintf(moved, sizeof(moved), "%s/moved", d->dir);
	ck_assert_int_eq(broken ? rename(data, moved) : rename(moved, data), 0);
#endif
}

/* GETs an absolute URL; returns the status and the body. */
static long fetch(const char *url, reply *r)
{
	CURL *c = curl_easy_init();

	memset(r, 0, sizeof(*r));
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
	finish(c, r);
	return r->status;
}

#ifdef OCTO_E2E_GATEWAY
/* ---- nginx in front ------------------------------------------------------ */

/* nginx running docker/nginx.conf, rendered by docker/render-nginx-conf
 * for a free loopback port and the octopusd replicas behind it. */
typedef struct {
	pid_t pid;
	char dir[256];     /* its prefix: the rendered conf, temp files, logs */
	daemon_proc front; /* where clients go: only port and base are set;
	                      a port set before gateway_start() is kept */
	char storage[64];  /* host:port behind /storage/; "": nothing listens */
} gateway_proc;

static int listen_loopback(int *port);

/* $NGINX, else nginx on the PATH, else /usr/sbin/nginx (Debian's, which
 * is not on a user's PATH); NULL when there is none. */
static const char *nginx_path(void)
{
	static char found[512];
	const char *env = getenv("NGINX"), *path = getenv("PATH");

	if (env && *env)
		return access(env, X_OK) == 0 ? env : NULL;
	while (path && *path) {
		size_t n = strcspn(path, ":");
		snprintf(found, sizeof(found), "%.*s/nginx", (int)n, path);
		if (n > 0 && access(found, X_OK) == 0)
			return found;
		path += n + (path[n] == ':');
	}
	return access("/usr/sbin/nginx", X_OK) == 0 ? "/usr/sbin/nginx" : NULL;
}

static int redirect(const char *path, int flags, int target)
{
	int fd = open(path, flags, 0644);

	if (fd < 0 || dup2(fd, target) < 0)
		return 0;
	close(fd);
	return 1;
}

/* Runs argv with stdin from `in`, stdout to `out` and stderr to `err`
 * (NULL: inherited); returns its pid. The child gets SIGTERM when the
 * test process ends: nginx's master then stops its workers, which
 * SIGKILL would leave behind. */
static pid_t spawn(char *const argv[], const char *in, const char *out, const char *err)
{
	const int to_file = O_WRONLY | O_CREAT | O_TRUNC | O_APPEND;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if ((in && !redirect(in, O_RDONLY, STDIN_FILENO)) ||
		    (out && !redirect(out, to_file, STDOUT_FILENO)) ||
		    (err && !redirect(err, to_file, STDERR_FILENO)))
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static int exit_status(pid_t pid)
{
	int status;

	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* A whole file, malloc'd ("" when it cannot be read). */
static char *file_text(const char *path)
{
	FILE *f = fopen(path, "r");
	size_t used = 0, cap = 4096, n;
	char *text = malloc(cap);

	while (f && (n = fread(text + used, 1, cap - used - 1, f)) > 0) {
		used += n;
		if (cap - used < 2)
			text = realloc(text, cap *= 2);
	}
	text[used] = '\0';
	if (f)
		fclose(f);
	return text;
}

/* A path under the gateway's prefix. */
static void gateway_file(const gateway_proc *g, const char *name, char out[300])
{
	snprintf(out, 300, "%s/%s", g->dir, name);
}

/* render-nginx-conf: the shipped configuration for our port and replicas. */
static void gateway_render(const gateway_proc *g, daemon_proc *const replicas[], size_t n)
{
	char script[300], source[300], conf[300], err[300], listen[32], upstream[4][32];
	char storage[64];
	char *argv[10], *said;
	const char *srcdir = getenv("OCTO_SRCDIR");
	size_t i, a = 0;

	ck_assert_msg(srcdir != NULL, "OCTO_SRCDIR must name the source tree");
	ck_assert_uint_le(n, 4);
	snprintf(script, sizeof(script), "%s/docker/render-nginx-conf", srcdir);
	snprintf(source, sizeof(source), "%s/docker/nginx.conf", srcdir);
	gateway_file(g, "nginx.conf", conf);
	gateway_file(g, "render.err", err);
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", g->front.port);
	/* Port 9 (discard) has no listener here: /storage/ answers 502. */
	snprintf(storage, sizeof(storage), "%s", g->storage[0] ? g->storage : "127.0.0.1:9");
	argv[a++] = (char *)"/bin/sh";
	argv[a++] = script;
	argv[a++] = (char *)"--storage";
	argv[a++] = storage;
	argv[a++] = listen;
	for (i = 0; i < n; i++) {
		snprintf(upstream[i], sizeof(upstream[i]), "127.0.0.1:%d", replicas[i]->port);
		argv[a++] = upstream[i];
	}
	argv[a] = NULL;
	if (exit_status(spawn(argv, source, conf, err)) != 0) {
		said = file_text(err);
		ck_abort_msg("render-nginx-conf failed: %s", said);
	}
}

/* nginx -t: the rendered file is valid, and nginx has nothing to say
 * about it beyond that. */
static void gateway_check(const gateway_proc *g, const char *nginx)
{
	char conf[300], prefix[300], out[300], pid[330], *said;
	char *argv[] = { (char *)nginx, (char *)"-e", (char *)"stderr", (char *)"-t",
	                 (char *)"-p", prefix, (char *)"-c", conf, (char *)"-g", pid, NULL };
	int status;

	gateway_file(g, "nginx.conf", conf);
	gateway_file(g, "", prefix);
	gateway_file(g, "check.out", out);
	snprintf(pid, sizeof(pid), "pid %s/nginx.pid;", g->dir);
	status = exit_status(spawn(argv, NULL, out, out));
	said = file_text(out);
	ck_assert_msg(status == 0 && strstr(said, "test is successful"), "nginx -t: %s", said);
	ck_assert_msg(!strstr(said, "[warn]") && !strstr(said, "[emerg]"), "nginx -t: %s", said);
	free(said);
}

/* GET /health with a short timeout: the status, or 0 when nothing answered. */
static long probe_health(const daemon_proc *front)
{
	long status = 0;
	reply r;
	CURL *c = prepare(front, "GET", "/health", NULL, NULL, 0, &r);

	curl_easy_setopt(c, CURLOPT_TIMEOUT, 2L);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	reply_free(&r);
	return status;
}

/* Starts nginx in front of `replicas` and waits until /health answers
 * through it: nginx listens and reaches octopusd. */
static void gateway_start(gateway_proc *g, daemon_proc *const replicas[], size_t n)
{
	const char *nginx = nginx_path();
	char conf[300], prefix[300], out[300], err[300], globals[400], *said;
	char *argv[] = { NULL, (char *)"-e", (char *)"stderr", (char *)"-p", prefix,
	                 (char *)"-c", conf, (char *)"-g", globals, NULL };
	struct timespec pause = { 0, 20 * 1000000L };
	int i, status;

	ck_assert_msg(nginx != NULL, "nginx is not installed");
	argv[0] = (char *)nginx;
	tu_mkdtemp(g->dir);
	/* Started as root, nginx's workers run as an unprivileged user, who
	 * must reach the temporary directories under the prefix. */
	ck_assert_int_eq(chmod(g->dir, 0755), 0);
	if (!g->front.port)
		close(listen_loopback(&g->front.port)); /* free a moment ago: nginx takes it */
	snprintf(g->front.base, sizeof(g->front.base), "http://127.0.0.1:%d", g->front.port);
	gateway_render(g, replicas, n);
	gateway_check(g, nginx);
	gateway_file(g, "nginx.conf", conf);
	gateway_file(g, "", prefix);
	gateway_file(g, "access.log", out);
	gateway_file(g, "error.log", err);
	snprintf(globals, sizeof(globals), "daemon off; pid %s/nginx.pid;", g->dir);
	g->pid = spawn(argv, NULL, out, err);
	for (i = 0; i < 500; i++) { /* nothing to wait on but the port: poll, 10 s at most */
		if (probe_health(&g->front) == 200)
			return;
		if (waitpid(g->pid, &status, WNOHANG) == g->pid) {
			said = file_text(err);
			ck_abort_msg("nginx exited: %s", said);
		}
		nanosleep(&pause, NULL);
	}
	ck_abort_msg("nginx never answered /health on port %d", g->front.port);
}

/* Stops nginx (SIGTERM: its fast shutdown) and checks it logged nothing
 * worse than errors (an alert would be a crashed worker, say). */
static void gateway_stop(gateway_proc *g)
{
	char err[300], *said;

	ck_assert_int_eq(kill(g->pid, SIGTERM), 0);
	ck_assert_int_eq(exit_status(g->pid), 0);
	gateway_file(g, "error.log", err);
	said = file_text(err);
	ck_assert_msg(!strstr(said, "[alert]") && !strstr(said, "[crit]") &&
	              !strstr(said, "[emerg]"), "nginx error log: %s", said);
	free(said);
	tu_rmtree(g->dir);
}

static gateway_proc shared_gateway;
#endif

/* ---- the shared daemon -------------------------------------------------- */

static daemon_proc shared;

/* In S3 mode the api case shares one S3 server and each test of the own
 * daemon case has its own (started by fixtures: Check's assertions work
 * only inside tests and fixtures). */
static void storage_up(void)
{
#ifdef OCTO_E2E_S3
	ts3_start(&s3);
#endif
}

static void storage_down(void)
{
#ifdef OCTO_E2E_S3
	ts3_destroy(&s3);
#endif
}

static void shared_up(void)
{
	static const char *const env[] = {
		"DOWNLOAD_DELAY_MIN_MS=300", "DOWNLOAD_DELAY_MAX_MS=500", NULL
	};

	storage_up();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	daemon_start(&shared, env, NULL);
#ifdef OCTO_E2E_GATEWAY
	{
		/* Every api test goes through nginx: clients see its port, and
		 * the tests still reach octopusd's storage through shared.dir. */
		daemon_proc *replicas[] = { &shared };
		gateway_start(&shared_gateway, replicas, 1);
		shared.port = shared_gateway.front.port;
		snprintf(shared.base, sizeof(shared.base), "%s", shared_gateway.front.base);
	}
#endif
}

static void shared_down(void)
{
#ifdef OCTO_E2E_GATEWAY
	gateway_stop(&shared_gateway);
#endif
	ck_assert_int_eq(daemon_stop(&shared), 0);
	curl_global_cleanup();
	storage_down();
}

START_TEST(root_answers_with_a_message)
{
	reply r;
	octo_json *doc;

	request(&shared, "GET", "/", NULL, NULL, NULL, 0, &r);
	ck_assert_int_eq(r.status, 200);
	doc = parse(&r);
	ck_assert_uint_eq(octo_json_size(octo_json_root(doc)), 1);
	ck_assert_str_ne(str_member(doc, "message"), "");
	octo_json_free(doc);
	reply_free(&r);
}
END_TEST

START_TEST(health_is_healthy_on_the_embedded_store)
{
	reply r;

	request(&shared, "GET", "/health", NULL, NULL, NULL, 0, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "{\"status\":\"healthy\",\"checks\":{\"storage\":\"ok\"}}");
	assert_header(&r, "Content-Type", "application/json; charset=utf-8");
	reply_free(&r);
	request(&shared, "HEAD", "/health", NULL, NULL, NULL, 0, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.body_len, 0);
	reply_free(&r);
}
END_TEST

#ifdef OCTO_E2E_GATEWAY
/* A request without a usable X-Request-ID gets one from nginx ($request_id,
 * 32 hex digits), and octopusd keeps it; octopusd alone makes a UUID. */
#define NEW_REQUEST_ID_LEN 32
#else
#define NEW_REQUEST_ID_LEN 36
#endif

START_TEST(every_response_carries_the_common_headers)
{
	static const char *paths[] = { "/", "/health", "/nope", "/v1/download/check" };
	size_t i;

	for (i = 0; i < 4; i++) {
		reply r;
		char id[64];
		request(&shared, "GET", paths[i], NULL, NULL, NULL, 0, &r);
		assert_header(&r, "X-Content-Type-Options", "nosniff");
		assert_header(&r, "X-Frame-Options", "SAMEORIGIN");
		assert_header(&r, "Referrer-Policy", "no-referrer");
		assert_header(&r, "Strict-Transport-Security", NULL);
		assert_header(&r, "Access-Control-Allow-Origin", "*");
		assert_header(&r, "RateLimit-Limit", "100000");
		assert_header(&r, "RateLimit-Remaining", NULL);
		assert_header(&r, "RateLimit-Reset", NULL);
		ck_assert(header(&r, "X-Request-ID", id, sizeof(id)));
		ck_assert_uint_eq(strlen(id), NEW_REQUEST_ID_LEN);
		reply_free(&r);
	}
}
END_TEST

START_TEST(request_id_is_echoed_only_when_sane)
{
	char id[256], long_id[160];
	reply r;

	request(&shared, "GET", "/health", NULL, "X-Request-ID: trace-42.a_b", NULL, 0, &r);
	assert_header(&r, "X-Request-ID", "trace-42.a_b");
	reply_free(&r);
	request(&shared, "GET", "/health", NULL, "X-Request-ID: a<script>", NULL, 0, &r);
	ck_assert(header(&r, "X-Request-ID", id, sizeof(id)));
	ck_assert_uint_eq(strlen(id), NEW_REQUEST_ID_LEN);
	ck_assert_ptr_null(strchr(id, '<'));
	reply_free(&r);
	snprintf(long_id, sizeof(long_id), "X-Request-ID: %0129d", 7);
	request(&shared, "GET", "/health", NULL, long_id, NULL, 0, &r);
	ck_assert(header(&r, "X-Request-ID", id, sizeof(id)));
	ck_assert_uint_eq(strlen(id), NEW_REQUEST_ID_LEN);
	reply_free(&r);
}
END_TEST

START_TEST(check_reports_missing_then_present_files)
{
	reply r;
	octo_json *doc;

	post_json(&shared, "/v1/download/check", "{\"file_id\":70001}", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body,
	                 "{\"file_id\":70001,\"available\":false,\"s3Key\":null,\"size\":null}");
	reply_free(&r);
	free(put_file(&shared, 70001, 1234));
	post_json(&shared, "/v1/download/check", "{\"file_id\":70001}", &r);
	ck_assert_int_eq(r.status, 200);
	doc = parse(&r);
	ck_assert_int_eq(int_member(doc, "file_id"), 70001);
	ck_assert_str_eq(str_member(doc, "s3Key"), "downloads/70001.zip");
	ck_assert_int_eq(int_member(doc, "size"), 1234);
	octo_json_free(doc);
	reply_free(&r);
}
END_TEST

START_TEST(initiate_persists_the_job_before_replying)
{
	const octo_json_value *ids;
	octo_json *doc, *record;
	int64_t id;
	reply r;

	post_json(&shared, "/v1/download/initiate", "{\"file_ids\":[70000,10000,100000000]}", &r);
	ck_assert_int_eq(r.status, 202);
	doc = parse(&r);
	ck_assert_str_eq(str_member(doc, "status"), "queued");
	ck_assert_int_eq(int_member(doc, "totalFileIds"), 3);
	ck_assert_uint_eq(strlen(str_member(doc, "jobId")), 36);
	record = job_record(&shared, str_member(doc, "jobId"));
	ck_assert_int_eq(int_member(record, "version"), 2);
	ck_assert_str_eq(str_member(record, "jobId"), str_member(doc, "jobId"));
	ids = member(record, "files");
	ck_assert_uint_eq(octo_json_size(ids), 3);
	octo_json_int(octo_json_get(octo_json_at(ids, 2), "file_id"), &id);
	ck_assert_int_eq(id, 100000000);
	octo_json_free(record);
	octo_json_free(doc);
	reply_free(&r);
}
END_TEST

/* The legacy call runs a one-file job and waits for it (the simulated
 * preparation takes 300-500 ms here); a /health sent after it must be
 * answered while it still waits. */
START_TEST(start_waits_without_blocking_other_requests)
{
	struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	const char *body = "{\"file_id\":70002}";
	CURLM *multi = curl_multi_init();
	CURL *slow, *fast;
	reply rs, rh;
	int running = 1, fast_done = 0, slow_done_first = 0;
	octo_json *doc;

	char *stored;
	size_t stored_len;
	slow = prepare(&shared, "POST", "/v1/download/start", hdrs, body, strlen(body), &rs);
	curl_multi_add_handle(multi, slow);
	/* Let the slow request reach the server before the fast one starts. */
	while (running) {
		long code = 0;
		curl_multi_perform(multi, &running);
		curl_easy_getinfo(slow, CURLINFO_REQUEST_SIZE, &code);
		if (code > 0)
			break;
		curl_multi_poll(multi, NULL, 0, 50, NULL);
	}
	fast = prepare(&shared, "GET", "/health", NULL, NULL, 0, &rh);
	curl_multi_add_handle(multi, fast);
	do {
		CURLMsg *m;
		int left;
		curl_multi_perform(multi, &running);
		while ((m = curl_multi_info_read(multi, &left)) != NULL) {
			ck_assert_int_eq(m->data.result, CURLE_OK);
			if (m->easy_handle == fast)
				fast_done = 1;
			else if (!fast_done)
				slow_done_first = 1;
		}
		if (running)
			curl_multi_poll(multi, NULL, 0, 100, NULL);
	} while (running);
	ck_assert_msg(!slow_done_first, "/health waited for /v1/download/start");
	ck_assert(fast_done);
	curl_multi_remove_handle(multi, slow);
	curl_multi_remove_handle(multi, fast);
	finish(slow, &rs);
	finish(fast, &rh);
	curl_multi_cleanup(multi);
	curl_slist_free_all(hdrs);

	ck_assert_int_eq(rh.status, 200);
	ck_assert_int_eq(rs.status, 200);
	doc = parse(&rs);
	ck_assert_int_eq(int_member(doc, "file_id"), 70002);
	ck_assert_str_eq(str_member(doc, "status"), "completed");
	ck_assert_int_ge(int_member(doc, "processingTimeMs"), 300);
	str_member(doc, "message");
	/* The URL really downloads the bytes the job stored. */
	stored = stored_object(&shared, 70002, &stored_len);
	ck_assert_int_eq(int_member(doc, "size"), (int64_t)stored_len);
	reply_free(&rh);
	ck_assert_int_eq(fetch(str_member(doc, "downloadUrl"), &rh), 200);
	ck_assert_uint_eq(rh.body_len, stored_len);
	ck_assert_int_eq(memcmp(rh.body, stored, stored_len), 0);
	octo_json_free(doc);
	octo_free(stored);
	reply_free(&rs);
	reply_free(&rh);
}
END_TEST

/* A download URL is good for its file only: change one character and it
 * is refused. */
START_TEST(tampered_download_urls_are_refused)
{
	const char *body = "{\"file_id\":70004}";
	char *stored = put_file(&shared, 70004, 10), *url, *p;
	octo_json *doc;
	reply r, f;

	request(&shared, "POST", "/v1/download/start", "application/json", NULL, body,
	        strlen(body), &r);
	doc = parse(&r);
	url = strdup(str_member(doc, "downloadUrl"));
	ck_assert_int_eq(fetch(url, &f), 200);
	reply_free(&f);
	p = strstr(url, "70004");
	ck_assert_ptr_nonnull(p);
	p[4] = '5'; /* 70005: another file, the same signature */
	ck_assert_int_eq(fetch(url, &f), 403);
	reply_free(&f);
	p[4] = '4';
	p = url + strlen(url) - 2;
	*p = *p == 'a' ? 'b' : 'a'; /* the signature itself */
	ck_assert_int_eq(fetch(url, &f), 403);
	reply_free(&f);
	free(url);
	free(stored);
	octo_json_free(doc);
	reply_free(&r);
}
END_TEST

/* A file already in storage is answered at once: with a simulated delay
 * of ten minutes, only that path can answer 200 before the request
 * timeout turns the answer into a 202. */
START_TEST(start_answers_a_stored_file_at_once)
{
	static const char *const env[] = {
		"DOWNLOAD_DELAY_MIN_MS=600000", "DOWNLOAD_DELAY_MAX_MS=600000", NULL
	};
	daemon_proc d = { 0 };
	char *stored;
	octo_json *doc;
	reply r;

	daemon_start(&d, env, NULL);
	stored = put_file(&d, 70003, 77);
	post_json(&d, "/v1/download/start", "{\"file_id\":70003}", &r);
	ck_assert_int_eq(r.status, 200);
	doc = parse(&r);
	ck_assert_str_eq(str_member(doc, "status"), "completed");
	ck_assert_int_eq(int_member(doc, "size"), 77);
	octo_json_free(doc);
	free(stored);
	reply_free(&r);
	ck_assert_int_eq(daemon_stop(&d), 0);
}
END_TEST

/* The bad-input table: each row gets its status and a JSON error that
 * names the problem; nothing crashes and nothing is stored. */
typedef struct {
	const char *path;
	const char *content_type;
	const char *body;
	long status;
	const char *mention;
} bad_case;

static const bad_case bad_cases[] = {
	{ "/v1/download/check", "application/json", "{}", 400, "file_id is required" },
	{ "/v1/download/check", "application/json", "{\"file_id\":\"70000\"}", 400, "file_id must be an integer" },
	{ "/v1/download/check", "application/json", "{\"file_id\":70000.5}", 400, "file_id must be an integer" },
	{ "/v1/download/check", "application/json", "{\"file_id\":70000.0}", 400, "file_id must be an integer" },
	{ "/v1/download/check", "application/json", "{\"file_id\":7e4}", 400, "file_id must be an integer" },
	{ "/v1/download/check", "application/json", "{\"file_id\":-70000}", 400, "file_id" },
	{ "/v1/download/check", "application/json", "{\"file_id\":9999}", 400, "between 10000 and 100000000" },
	{ "/v1/download/check", "application/json", "{\"file_id\":100000001}", 400, "file_id" },
	{ "/v1/download/check", "application/json", "{\"file_id\":99999999999999999999999}", 400, "file_id" },
	{ "/v1/download/check", "application/json", "{\"file_id\":null}", 400, "file_id" },
	{ "/v1/download/check", "application/json", "{\"file_id\":true}", 400, "file_id" },
	{ "/v1/download/check", "application/json", "{\"file_id\":[70000]}", 400, "file_id" },
	{ "/v1/download/check", "application/json", "{\"file_id\":70000,\"file_id\":70001}", 400, "duplicate key" },
	{ "/v1/download/check", "application/json", "{\"file_id\":70000", 400, "not valid JSON" },
	{ "/v1/download/check", "application/json", "{file_id:70000}", 400, "not valid JSON" },
	{ "/v1/download/check", "application/json", "", 400, "not valid JSON" },
	{ "/v1/download/check", "application/json", "[70000]", 400, "JSON object" },
	{ "/v1/download/check", "application/json", "70000", 400, "JSON object" },
	{ "/v1/download/check", "application/json", "\"x\"", 400, "JSON object" },
	{ "/v1/download/check", "application/json", "{\"file_id\":70000} x", 400, "not valid JSON" },
	{ "/v1/download/check", "application/json", "{\"file_id\":70000 /* c */}", 400, "not valid JSON" },
	{ "/v1/download/check", "application/json", "{\"a\":\"\xff\xfe\",\"file_id\":70000}", 400, "not valid JSON" },
	{ "/v1/download/check", "text/plain", "{\"file_id\":70000}", 415, "application/json" },
	{ "/v1/download/check", NULL, "{\"file_id\":70000}", 415, "application/json" },
	{ "/v1/download/check", "application/x-www-form-urlencoded", "file_id=70000", 415, "application/json" },
	{ "/v1/download/check", "application/jsonx", "{\"file_id\":70000}", 415, "application/json" },
	{ "/v1/download/start", "application/json", "{\"file_id\":1}", 400, "file_id" },
	{ "/v1/download/start", "application/json", "{}", 400, "file_id is required" },
	{ "/v1/download/initiate", "application/json", "{}", 400, "file_ids is required" },
	{ "/v1/download/initiate", "application/json", "{\"file_ids\":[]}", 400, "file_ids must be an array" },
	{ "/v1/download/initiate", "application/json", "{\"file_ids\":70000}", 400, "file_ids must be an array" },
	{ "/v1/download/initiate", "application/json", "{\"file_ids\":[70000,\"x\"]}", 400, "file_ids[1]" },
	{ "/v1/download/initiate", "application/json", "{\"file_ids\":[70000,5]}", 400, "file_ids[1]" },
	{ "/v1/download/initiate", "application/json", "{\"file_ids\":[70000.5]}", 400, "file_ids[0]" },
};

START_TEST(bad_input_gets_a_clear_json_error)
{
	const bad_case *c = &bad_cases[_i];
	reply r;

	request(&shared, "POST", c->path, c->content_type, NULL, c->body, strlen(c->body), &r);
	assert_error(&r, c->status, c->mention);
	reply_free(&r);
}
END_TEST

static char *array_of_ids(size_t n)
{
	char *s = malloc(n * 7 + 32), *p = s;
	size_t i;

	p += sprintf(p, "{\"file_ids\":[");
	for (i = 0; i < n; i++)
		p += sprintf(p, "%s%d", i ? "," : "", 10000 + (int)i);
	sprintf(p, "]}");
	return s;
}

START_TEST(initiate_takes_1000_ids_and_refuses_1001)
{
	char *ok = array_of_ids(1000), *over = array_of_ids(1001);
	reply r;

	post_json(&shared, "/v1/download/initiate", ok, &r);
	ck_assert_int_eq(r.status, 202);
	reply_free(&r);
	post_json(&shared, "/v1/download/initiate", over, &r);
	assert_error(&r, 400, "1 to 1000");
	reply_free(&r);
	free(ok);
	free(over);
}
END_TEST

START_TEST(deep_nesting_and_nul_bytes_are_refused)
{
	char deep[300];
	static const char nul[] = "{\"file_id\":70000,\"x\":\"a\0b\"}";
	reply r;

	memset(deep, '[', sizeof(deep) - 1);
	deep[sizeof(deep) - 1] = '\0';
	post_json(&shared, "/v1/download/check", deep, &r);
	assert_error(&r, 400, "nesting");
	reply_free(&r);
	request(&shared, "POST", "/v1/download/check", "application/json", NULL,
	        nul, sizeof(nul) - 1, &r);
	assert_error(&r, 400, "NUL");
	reply_free(&r);
}
END_TEST

/* A declared 10 MB body is refused from its headers alone: the server
 * answers 413 after only a few bytes of it were sent. */
START_TEST(oversized_declared_body_gets_413_unread)
{
	static const char req[] =
		"POST /v1/download/check HTTP/1.1\r\nHost: x\r\n"
		"Content-Type: application/json\r\nContent-Length: 10485760\r\n\r\n{\"file_id\":";
	char *answer = raw_exchange(&shared, req, sizeof(req) - 1);

	ck_assert_msg(strncmp(answer, "HTTP/1.1 413", 12) == 0, "got: %.80s", answer);
	ck_assert_ptr_nonnull(strstr(answer, "\"error\":\"payload_too_large\""));
	free(answer);
}
END_TEST

/* A chunked body has no length up front: it is cut at the limit. */
START_TEST(oversized_chunked_body_gets_413)
{
	size_t chunk = 16384, chunks = 8, i, len;
	char *req = malloc(chunks * (chunk + 16) + 512), *p = req, *answer;

	p += sprintf(p, "POST /v1/download/check HTTP/1.1\r\nHost: x\r\n"
	                "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
	for (i = 0; i < chunks; i++) {
		p += sprintf(p, "%zx\r\n", chunk);
		memset(p, ' ', chunk);
		p += chunk;
		p += sprintf(p, "\r\n");
	}
	p += sprintf(p, "0\r\n\r\n");
	len = (size_t)(p - req);
	answer = raw_exchange(&shared, req, len);
	ck_assert_msg(strncmp(answer, "HTTP/1.1 413", 12) == 0, "got: %.80s", answer);
	free(answer);
	free(req);
}
END_TEST

START_TEST(unknown_paths_and_wrong_methods_are_told_apart)
{
	reply r;

	request(&shared, "GET", "/v1/download/nope", NULL, NULL, NULL, 0, &r);
	assert_error(&r, 404, "/v1/download/nope");
	reply_free(&r);
	request(&shared, "GET", "/../../etc/passwd", NULL, NULL, NULL, 0, &r);
	ck_assert_int_eq(r.status, 404);
	reply_free(&r);
	request(&shared, "GET", "/v1/download/check", NULL, NULL, NULL, 0, &r);
	assert_error(&r, 405, "GET");
	assert_header(&r, "Allow", "POST, OPTIONS");
	reply_free(&r);
	request(&shared, "DELETE", "/health", NULL, NULL, NULL, 0, &r);
	assert_error(&r, 405, "DELETE");
	assert_header(&r, "Allow", "GET, HEAD, OPTIONS");
	reply_free(&r);
}
END_TEST

START_TEST(preflight_gets_204_with_allowed_methods)
{
	reply r;

	request(&shared, "OPTIONS", "/v1/download/initiate", NULL,
	        "Origin: https://app.example", NULL, 0, &r);
	ck_assert_int_eq(r.status, 204);
	assert_header(&r, "Access-Control-Allow-Methods", "POST, OPTIONS");
	assert_header(&r, "Access-Control-Allow-Origin", "*");
	assert_header(&r, "Access-Control-Allow-Headers", NULL);
	reply_free(&r);
}
END_TEST

/* ---- jobs ------------------------------------------------------------------ */

/* POST /v1/download/initiate; asserts the 202 and its headers. */
static void initiate(const daemon_proc *d, const char *body, char job_id[37])
{
	char location[128], want[128];
	octo_json *doc;
	reply r;

	post_json(d, "/v1/download/initiate", body, &r);
	ck_assert_msg(r.status == 202, "initiate: %ld %s", r.status, r.body);
	doc = parse(&r);
	snprintf(job_id, 37, "%s", str_member(doc, "jobId"));
	ck_assert_str_eq(str_member(doc, "status"), "queued");
	ck_assert(header(&r, "Location", location, sizeof(location)));
	snprintf(want, sizeof(want), "/v1/download/status/%s", job_id);
	ck_assert_str_eq(location, want);
	assert_header(&r, "Retry-After", NULL);
	octo_json_free(doc);
	reply_free(&r);
}

static octo_json *job_status(const daemon_proc *d, const char *job_id)
{
	char path[128];
	octo_json *doc;
	reply r;

	snprintf(path, sizeof(path), "/v1/download/status/%s", job_id);
	request(d, "GET", path, NULL, NULL, NULL, 0, &r);
	ck_assert_msg(r.status == 200, "status: %ld %s", r.status, r.body);
	doc = parse(&r);
	reply_free(&r);
	return doc;
}

static int is_terminal(const char *status)
{
	return strcmp(status, "completed") == 0 || strcmp(status, "partial") == 0 ||
	       strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0;
}

/* Polls the job's status until `until` says so (bounded: 60 s). There is
 * no stream to wait on here, so the wait is a poll with a short pause. */
static octo_json *await_job(const daemon_proc *d, const char *job_id,
                            int (*until)(const octo_json *doc))
{
	struct timespec start, now, pause = { 0, 20 * 1000000L };

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		octo_json *doc = job_status(d, job_id);
		if (until(doc))
			return doc;
		octo_json_free(doc);
		clock_gettime(CLOCK_MONOTONIC, &now);
		ck_assert_msg(now.tv_sec - start.tv_sec < 60, "job %s never got there", job_id);
		nanosleep(&pause, NULL);
	}
}

static int finished(const octo_json *doc)
{
	return is_terminal(str_member(doc, "status"));
}

static int processing(const octo_json *doc)
{
	return strcmp(str_member(doc, "status"), "processing") == 0;
}

START_TEST(job_runs_to_completion_and_its_files_download)
{
	const octo_json_value *files;
	char job_id[37], path[160], location[512];
	octo_json *doc;
	size_t i, len;
	reply r, f;

	initiate(&shared, "{\"file_ids\":[70010,70011,70012]}", job_id);
	doc = await_job(&shared, job_id, finished);
	ck_assert_str_eq(str_member(doc, "status"), "completed");
	ck_assert_int_eq(int_member(doc, "completedFileIds"), 3);
	ck_assert_int_eq(int_member(doc, "failedFileIds"), 0);
	files = member(doc, "files");
	ck_assert_uint_eq(octo_json_size(files), 3);
	for (i = 0; i < 3; i++) {
		const octo_json_value *file = octo_json_at(files, i);
		const char *url = NULL, *expires = NULL;
		int64_t id = 0, size = 0;
		char *bytes;
		octo_json_int(octo_json_get(file, "file_id"), &id);
		octo_json_int(octo_json_get(file, "size"), &size);
		ck_assert_int_eq(id, 70010 + (int64_t)i);
		ck_assert_int_eq(octo_json_string(octo_json_get(file, "downloadUrl"), &url), 0);
		ck_assert_int_eq(octo_json_string(octo_json_get(file, "expiresAt"), &expires), 0);
		ck_assert_uint_eq(strlen(expires), 24);
		bytes = stored_object(&shared, id, &len);
		ck_assert_uint_eq(len, (size_t)size);
		ck_assert_int_eq(fetch(url, &f), 200);
		ck_assert_uint_eq(f.body_len, len);
		ck_assert_int_eq(memcmp(f.body, bytes, len), 0);
		reply_free(&f);
		/* The file route redirects to a fresh URL for the same bytes. */
		snprintf(path, sizeof(path), "/v1/download/%s/files/%lld", job_id, (long long)id);
		request(&shared, "GET", path, NULL, NULL, NULL, 0, &r);
		ck_assert_int_eq(r.status, 302);
		ck_assert(header(&r, "Location", location, sizeof(location)));
		ck_assert_int_eq(fetch(location, &f), 200);
		ck_assert_int_eq(memcmp(f.body, bytes, len), 0);
		reply_free(&f);
		reply_free(&r);
		octo_free(bytes);
	}
	octo_json_free(doc);
	snprintf(path, sizeof(path), "/v1/download/%s/files/99999", job_id);
	request(&shared, "GET", path, NULL, NULL, NULL, 0, &r);
	assert_error(&r, 404, "no file");
	reply_free(&r);
}
END_TEST

#ifndef OCTO_E2E_S3 /* S3 presigns its own URLs, whatever the Host */
/* The URL of the first file of a job's status asked for with `host`. */
static char *status_url_for_host(const char *job_id, const char *host)
{
	char path[160], line[300];
	const char *url = NULL;
	octo_json *doc;
	char *copy;
	reply r;

	snprintf(path, sizeof(path), "/v1/download/status/%s", job_id);
	snprintf(line, sizeof(line), "Host: %s", host);
	request(&shared, "GET", path, NULL, line, NULL, 0, &r);
	ck_assert_int_eq(r.status, 200);
	doc = parse(&r);
	ck_assert_int_eq(octo_json_string(octo_json_get(octo_json_at(member(doc, "files"), 0),
	                                                "downloadUrl"), &url), 0);
	copy = strdup(url);
	octo_json_free(doc);
	reply_free(&r);
	return copy;
}

/* Statuses are kept rendered for a second: one asked for through another
 * host name must still name that host in its URLs. */
START_TEST(a_status_names_the_host_each_client_used)
{
	static const char *const hosts[] = { "a.example:8080", "b.example:9090", "a.example:8080" };
	char job_id[37], want[64];
	size_t i;

	initiate(&shared, "{\"file_ids\":[70013]}", job_id);
	octo_json_free(await_job(&shared, job_id, finished));
	for (i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		char *url = status_url_for_host(job_id, hosts[i]);
		snprintf(want, sizeof(want), "http://%s/", hosts[i]);
		ck_assert_msg(strncmp(url, want, strlen(want)) == 0, "%s for Host %s", url, hosts[i]);
		free(url);
	}
}
END_TEST
#endif

/* Reads an event stream to its end (or until `stop_after` bytes of
 * `stop_at` were seen); returns the raw text. */
static char *read_events(const daemon_proc *d, const char *job_id, const char *last_id,
                         const char *stop_at)
{
	char req[512], *answer;
	int n = snprintf(req, sizeof(req),
	                 "GET /v1/download/%s/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
	                 "%s%s%s\r\n", job_id, last_id ? "Last-Event-ID: " : "",
	                 last_id ? last_id : "", last_id ? "\r\n" : "");
	struct sockaddr_in sa;
	size_t cap = 1 << 20, used = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct timeval tv = { 30, 0 };

	answer = malloc(cap);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)d->port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ck_assert_int_eq(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
	for (;;) {
		ssize_t got = recv(fd, answer + used, cap - used - 1, 0);
		if (got <= 0)
			break; /* the server ended the stream (or 30 s passed) */
		used += (size_t)got;
		answer[used] = '\0';
		if (stop_at && strstr(answer, stop_at))
			break;
	}
	answer[used] = '\0';
	close(fd);
	return answer;
}

/* Checks the events in `text`: ids strictly increase and the last event is
 * `last_event`; returns the number of events and the last id. */
static int check_events(const char *text, const char *last_event, unsigned long long *last_id)
{
	const char *p = text;
	char name[32] = "";
	int count = 0;

	*last_id = 0;
	while ((p = strstr(p, "\nid: ")) != NULL) {
		unsigned long long id = strtoull(p + 5, NULL, 10);
		const char *ev = strstr(p, "\nevent: ");
		ck_assert_msg(id > *last_id, "event id %llu after %llu", id, *last_id);
		*last_id = id;
		ck_assert_ptr_nonnull(ev);
		sscanf(ev + 8, "%31[a-z]", name);
		ck_assert_ptr_nonnull(strstr(ev, "\ndata: {\"jobId\":"));
		count++;
		p += 5;
	}
	if (last_event)
		ck_assert_str_eq(name, last_event);
	return count;
}

START_TEST(events_stream_a_job_to_its_end_and_resume_without_gaps)
{
	unsigned long long last = 0, again = 0;
	char job_id[37], id_text[32], *text;
	int n;

	initiate(&shared, "{\"file_ids\":[70040,70041]}", job_id);
	text = read_events(&shared, job_id, NULL, NULL);
	ck_assert_msg(strncmp(text, "HTTP/1.1 200", 12) == 0, "got: %.100s", text);
	ck_assert_ptr_nonnull(strstr(text, "Content-Type: text/event-stream"));
	n = check_events(text, "completed", &last);
	ck_assert_int_ge(n, 2); /* at least one progress event, then the end */
	free(text);
	/* A client that saw an early event comes back: it gets the current,
	 * final state at once, and the stream ends. */
	text = read_events(&shared, job_id, "1", NULL);
	check_events(text, "completed", &again);
	ck_assert_uint_eq(again, last);
	free(text);
	/* A client that saw everything gets nothing more. */
	snprintf(id_text, sizeof(id_text), "%llu", last);
	text = read_events(&shared, job_id, id_text, NULL);
	ck_assert_int_eq(check_events(text, NULL, &again), 0);
	free(text);
}
END_TEST

/* A client retrying an initiate with its Idempotency-Key gets the same
 * job; the same key with another request is a conflict. */
START_TEST(idempotency_key_makes_initiate_safe_to_retry)
{
	static const char body[] = "{\"file_ids\":[70070,70071]}";
	char key[80], first[37], second[37];
	octo_json *doc;
	reply r;

	snprintf(key, sizeof(key), "Idempotency-Key: order-%d", (int)getpid());
	request(&shared, "POST", "/v1/download/initiate", "application/json", key, body,
	        strlen(body), &r);
	ck_assert_int_eq(r.status, 202);
	doc = parse(&r);
	snprintf(first, sizeof(first), "%s", str_member(doc, "jobId"));
	octo_json_free(doc);
	reply_free(&r);
	request(&shared, "POST", "/v1/download/initiate", "application/json", key, body,
	        strlen(body), &r);
	ck_assert_int_eq(r.status, 202);
	doc = parse(&r);
	snprintf(second, sizeof(second), "%s", str_member(doc, "jobId"));
	ck_assert_str_eq(first, second);
	octo_json_free(doc);
	reply_free(&r);
	request(&shared, "POST", "/v1/download/initiate", "application/json", key,
	        "{\"file_ids\":[70072]}", 20, &r);
	assert_error(&r, 409, "idempotency key");
	reply_free(&r);
	request(&shared, "POST", "/v1/download/initiate", "application/json",
	        "Idempotency-Key: not valid!", body, strlen(body), &r);
	assert_error(&r, 400, "idempotency key");
	reply_free(&r);
}
END_TEST

START_TEST(unknown_and_malformed_job_ids_are_told_apart)
{
	reply r;

	request(&shared, "GET", "/v1/download/status/00000000-0000-4000-8000-000000000000",
	        NULL, NULL, NULL, 0, &r);
	assert_error(&r, 404, "No job");
	reply_free(&r);
	request(&shared, "GET", "/v1/download/status/not-a-job", NULL, NULL, NULL, 0, &r);
	assert_error(&r, 400, "jobId");
	reply_free(&r);
	request(&shared, "DELETE", "/v1/download/00000000-0000-4000-8000-000000000000",
	        NULL, NULL, NULL, 0, &r);
	assert_error(&r, 404, "No job");
	reply_free(&r);
}
END_TEST

/* ---- daemons of their own ------------------------------------------------ */

START_TEST(cancel_stops_a_running_job)
{
	static const char *const env[] = {
		"DOWNLOAD_DELAY_MIN_MS=60000", "DOWNLOAD_DELAY_MAX_MS=60000", "OCTO_WORKERS=1", NULL
	};
	char job_id[37], path[160];
	daemon_proc d = { 0 };
	octo_json *doc;
	reply r;
	int i;

	daemon_start(&d, env, NULL);
	initiate(&d, "{\"file_ids\":[70020,70021]}", job_id);
	octo_json_free(await_job(&d, job_id, processing));
	snprintf(path, sizeof(path), "/v1/download/%s", job_id);
	for (i = 0; i < 2; i++) { /* cancelling twice is the same as once */
		request(&d, "DELETE", path, NULL, NULL, NULL, 0, &r);
		ck_assert_int_eq(r.status, 200);
		doc = parse(&r);
		ck_assert_str_eq(str_member(doc, "status"), "cancelled");
		octo_json_free(doc);
		reply_free(&r);
	}
	/* The running file stops promptly: well before its 60 s delay. */
	doc = await_job(&d, job_id, finished);
	ck_assert_str_eq(str_member(doc, "status"), "cancelled");
	octo_json_free(doc);
	snprintf(path, sizeof(path), "/v1/download/%s/files/70020", job_id);
	request(&d, "GET", path, NULL, NULL, NULL, 0, &r);
	assert_error(&r, 409, "not ready");
	reply_free(&r);
	ck_assert_int_eq(daemon_stop(&d), 0);
}
END_TEST

START_TEST(full_queue_answers_503_with_retry_after)
{
	static const char *const env[] = {
		"DOWNLOAD_DELAY_MIN_MS=60000", "DOWNLOAD_DELAY_MAX_MS=60000", "OCTO_WORKERS=1",
		"OCTO_QUEUE_MAX=2", NULL
	};
	daemon_proc d = { 0 };
	char v[32];
	reply r;

	daemon_start(&d, env, NULL);
	post_json(&d, "/v1/download/initiate", "{\"file_ids\":[70030,70031,70032]}", &r);
	assert_error(&r, 503, "retry later");
	ck_assert(header(&r, "Retry-After", v, sizeof(v)));
	ck_assert_int_ge(atoi(v), 1);
	reply_free(&r);
	ck_assert_int_eq(daemon_stop(&d), 0);
}
END_TEST

/* Idle streams get heartbeats, and a stopping daemon ends every stream
 * with a final event instead of cutting it. */
START_TEST(idle_streams_get_heartbeats_and_a_final_event_at_shutdown)
{
	static const char *const env[] = {
		"DOWNLOAD_DELAY_MIN_MS=60000", "DOWNLOAD_DELAY_MAX_MS=60000",
		"OCTO_SSE_HEARTBEAT_MS=100", "LOG_LEVEL=debug", NULL
	};
	char job_id[37], *text;
	daemon_proc d = { 0 };
	int status, fd[2];
	pid_t reader;
	char line[64];

	daemon_start_logged(&d, env, NULL, 1);
	initiate(&d, "{\"file_ids\":[70050]}", job_id);
	text = read_events(&d, job_id, NULL, ": heartbeat");
	ck_assert_ptr_nonnull(strstr(text, ": heartbeat\n\n"));
	free(text);
	ck_assert_int_eq(pipe(fd), 0);
	reader = fork();
	if (reader == 0) { /* a client on the stream while the daemon stops */
		text = read_events(&d, job_id, NULL, NULL);
		dprintf(fd[1], "%s\n", strstr(text, "event: shutdown") ? "shutdown" : "cut");
		_exit(0);
	}
	close(fd[1]);
	/* The daemon logs each stream as it opens: wait for the second. */
	ck_assert(await_log(&d, "\"route\":\"/v1/download/{jobId}/events\""));
	ck_assert(await_log(&d, "\"route\":\"/v1/download/{jobId}/events\""));
	ck_assert_int_eq(kill(d.pid, SIGTERM), 0);
	ck_assert_int_gt(read_line(fd[0], line, sizeof(line), 20000), 0);
	ck_assert_str_eq(line, "shutdown");
	close(fd[0]);
	waitpid(reader, NULL, 0);
	ck_assert_int_eq(waitpid(d.pid, &status, 0), d.pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(d.log_fd);
	tu_rmtree(d.dir);
}
END_TEST

/* ---- a webhook receiver ---------------------------------------------------- */

#define WEBHOOK_KEY "0123456789abcdef0123456789abcdef"
/* base64 of WEBHOOK_KEY: the Standard Webhooks form of the same secret. */
#define WEBHOOK_SECRET "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

static int header_value(const char *req, const char *name, char *out, size_t size)
{
	const char *p = strcasestr(req, name);

	if (!p)
		return 0;
	p += strlen(name);
	while (*p == ' ')
		p++;
	snprintf(out, size, "%.*s", (int)strcspn(p, "\r\n"), p);
	return 1;
}

/* Reads one HTTP request (headers and Content-Length body). */
static char *read_request(int fd, const char **body)
{
	size_t cap = 1 << 20, used = 0;
	char *buf = malloc(cap), *end, len_text[32];

	for (;;) {
		ssize_t n = recv(fd, buf + used, cap - used - 1, 0);
		if (n <= 0)
			break;
		used += (size_t)n;
		buf[used] = '\0';
		if ((end = strstr(buf, "\r\n\r\n")) != NULL &&
		    (!header_value(buf, "Content-Length:", len_text, sizeof(len_text)) ||
		     used >= (size_t)(end + 4 - buf) + (size_t)atol(len_text)))
			break; /* headers done, and the body if one was announced */
	}
	buf[used] = '\0';
	end = strstr(buf, "\r\n\r\n");
	*body = end ? end + 4 : "";
	return buf;
}

/* Verifies a delivery as a receiver would: HMAC-SHA256 under the key over
 * "<webhook-id>.<webhook-timestamp>.<body>", base64, after "v1,". */
static int signature_valid(const char *req, const char *body)
{
	char id[128], ts[32], sig[128], want[72], *msg;
	unsigned char mac[32];
	unsigned int mac_len = 0;
	size_t size;

	if (!header_value(req, "webhook-id:", id, sizeof(id)) ||
	    !header_value(req, "webhook-timestamp:", ts, sizeof(ts)) ||
	    !header_value(req, "webhook-signature:", sig, sizeof(sig)))
		return 0;
	size = strlen(id) + strlen(ts) + strlen(body) + 3;
	msg = malloc(size);
	snprintf(msg, size, "%s.%s.%s", id, ts, body);
	HMAC(EVP_sha256(), WEBHOOK_KEY, (int)strlen(WEBHOOK_KEY), (unsigned char *)msg,
	     strlen(msg), mac, &mac_len);
	free(msg);
	memcpy(want, "v1,", 3);
	EVP_EncodeBlock((unsigned char *)want + 3, mac, (int)mac_len);
	return strcmp(sig, want) == 0;
}

/* A receiver in a child process: answers the first delivery 500 and the
 * second 200, and reports on `report` whether each was signed right. */
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

static pid_t webhook_receiver(int *port, int report)
{
	int lfd = listen_loopback(port), i;
	pid_t pid;

	pid = fork();
	if (pid != 0) {
		close(lfd);
		return pid;
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (i = 0; i < 2; i++) {
		int fd = accept(lfd, NULL, NULL);
		const char *body;
		char *req = read_request(fd, &body);
		static const char *const answers[] = {
			"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
			"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		};
		dprintf(report, "%s %s\n", signature_valid(req, body) ? "signed" : "unsigned",
		        strstr(body, "\"status\":\"completed\"") ? "completed" : "other");
		send(fd, answers[i], strlen(answers[i]), MSG_NOSIGNAL);
		close(fd);
		free(req);
	}
	_exit(0);
}

static int webhook_delivered(const octo_json *doc)
{
	int delivered = 0;

	octo_json_bool(octo_json_get(octo_json_get(octo_json_root(doc), "webhook"), "delivered"),
	               &delivered);
	return delivered;
}

/* The job's final status is POSTed to its callbackUrl, signed the Standard
 * Webhooks way; a receiver that first fails gets it again. */
START_TEST(webhook_is_signed_and_retried_until_delivered)
{
	static const char *const env[] = {
		"DOWNLOAD_DELAY_MIN_MS=10", "DOWNLOAD_DELAY_MAX_MS=50",
		"OCTO_WEBHOOK_SECRET=" WEBHOOK_SECRET, NULL
	};
	char job_id[37], body[160], line[64];
	daemon_proc d = { 0 };
	octo_json *doc;
	int port, fd[2];
	pid_t receiver;
	reply r;

	ck_assert_int_eq(pipe(fd), 0);
	receiver = webhook_receiver(&port, fd[1]);
	close(fd[1]);
	daemon_start(&d, env, NULL);
	post_json(&d, "/v1/download/initiate", "{\"file_ids\":[70060],\"callbackUrl\":\"ftp://x\"}", &r);
	assert_error(&r, 400, "callbackUrl");
	reply_free(&r);
	snprintf(body, sizeof(body), "{\"file_ids\":[70060],\"callbackUrl\":\"http://127.0.0.1:%d/hook\"}",
	         port);
	initiate(&d, body, job_id);
	ck_assert_int_gt(read_line(fd[0], line, sizeof(line), 30000), 0);
	ck_assert_str_eq(line, "signed completed"); /* answered 500 */
	ck_assert_int_gt(read_line(fd[0], line, sizeof(line), 30000), 0);
	ck_assert_str_eq(line, "signed completed"); /* answered 200 */
	close(fd[0]);
	waitpid(receiver, NULL, 0);
	doc = await_job(&d, job_id, webhook_delivered);
	ck_assert_str_eq(str_member(doc, "status"), "completed");
	{
		const octo_json_value *wh = member(doc, "webhook");
		int64_t attempts = 0;
		octo_json_int(octo_json_get(wh, "attempts"), &attempts);
		ck_assert_int_eq(attempts, 2);
		ck_assert_int_eq(octo_json_typeof(octo_json_get(wh, "lastError")), OCTO_JSON_NULL);
	}
	octo_json_free(doc);
	ck_assert_int_eq(daemon_stop(&d), 0);
}
END_TEST

static int64_t file_attempts(const octo_json *doc)
{
	int64_t n = -1;

	octo_json_int(octo_json_get(octo_json_at(member(doc, "files"), 0), "attempts"), &n);
	return n;
}

/* One piece of work per file: a second job asking for a file that is
 * being prepared follows that work (no attempt of its own), and a file
 * already in storage completes at once, whatever the processor's delay. */
START_TEST(a_file_is_prepared_once_for_all_jobs)
{
	static const char *const env[] = {
		"DOWNLOAD_DELAY_MIN_MS=300", "DOWNLOAD_DELAY_MAX_MS=300", NULL
	};
	static const char *const slow[] = {
		"DOWNLOAD_DELAY_MIN_MS=600000", "DOWNLOAD_DELAY_MAX_MS=600000", NULL
	};
	char a[37], b[37], c[37];
	daemon_proc d = { 0 };
	octo_json *da, *db, *dc;

	daemon_start(&d, env, NULL);
	initiate(&d, "{\"file_ids\":[70080]}", a);
	initiate(&d, "{\"file_ids\":[70080]}", b);
	da = await_job(&d, a, finished);
	db = await_job(&d, b, finished);
	ck_assert_str_eq(str_member(da, "status"), "completed");
	ck_assert_str_eq(str_member(db, "status"), "completed");
	ck_assert_int_eq(file_attempts(da), 1);
	ck_assert_int_eq(file_attempts(db), 0); /* it followed a's work */
	octo_json_free(da);
	octo_json_free(db);
	ck_assert_int_eq(daemon_stop(&d), 0);

	memset(&d, 0, sizeof(d));
	daemon_start(&d, slow, NULL);
	free(put_file(&d, 70090, 321));
	initiate(&d, "{\"file_ids\":[70090]}", c);
	dc = await_job(&d, c, finished); /* bounded at 60 s, the delay is 600 s */
	ck_assert_str_eq(str_member(dc, "status"), "completed");
	ck_assert_int_eq(int_member(dc, "completedFileIds"), 1);
	octo_json_free(dc);
	ck_assert_int_eq(daemon_stop(&d), 0);
}
END_TEST

/* Finished jobs are kept JOB_RETENTION_S, then removed with their record. */
START_TEST(finished_jobs_are_removed_after_retention)
{
	static const char *const env[] = {
		"DOWNLOAD_DELAY_MIN_MS=10", "DOWNLOAD_DELAY_MAX_MS=20", "JOB_RETENTION_S=1", NULL
	};
	struct timespec start, now, pause = { 0, 50 * 1000000L };
	char job_id[37], path[128], key[80];
	daemon_proc d = { 0 };
	octo_store *store;
	reply r;

	daemon_start(&d, env, NULL);
	initiate(&d, "{\"file_ids\":[70100]}", job_id);
	octo_json_free(await_job(&d, job_id, finished));
	snprintf(path, sizeof(path), "/v1/download/status/%s", job_id);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) { /* the janitor runs every second here */
		request(&d, "GET", path, NULL, NULL, NULL, 0, &r);
		if (r.status == 404)
			break;
		ck_assert_int_eq(r.status, 200);
		reply_free(&r);
		clock_gettime(CLOCK_MONOTONIC, &now);
		ck_assert_msg(now.tv_sec - start.tv_sec < 30, "job %s was never removed", job_id);
		nanosleep(&pause, NULL);
	}
	reply_free(&r);
	store = daemon_store(&d);
	snprintf(key, sizeof(key), "jobs/%s.json", job_id);
	ck_assert_int_eq(octo_store_head(store, key, NULL), OCTO_ENOTFOUND);
	octo_store_free(store);
	ck_assert_int_eq(daemon_stop(&d), 0);
}
END_TEST

/* The legacy call never outlives REQUEST_TIMEOUT_MS: past it, the client
 * gets 202 and where to follow the job, which goes on. */
START_TEST(start_answers_202_with_location_before_the_request_timeout)
{
	static const char *const env[] = {
		"DOWNLOAD_DELAY_MIN_MS=60000", "DOWNLOAD_DELAY_MAX_MS=60000",
		"REQUEST_TIMEOUT_MS=1000", NULL
	};
	char location[128], want[128];
	daemon_proc d = { 0 };
	octo_json *doc, *status;
	reply r;

	daemon_start(&d, env, NULL);
	post_json(&d, "/v1/download/start", "{\"file_id\":70110}", &r);
	ck_assert_int_eq(r.status, 202);
	doc = parse(&r);
	ck_assert_int_eq(int_member(doc, "file_id"), 70110);
	ck_assert(header(&r, "Location", location, sizeof(location)));
	snprintf(want, sizeof(want), "/v1/download/status/%s", str_member(doc, "jobId"));
	ck_assert_str_eq(location, want);
	assert_header(&r, "Retry-After", NULL);
	status = job_status(&d, str_member(doc, "jobId"));
	ck_assert_str_eq(str_member(status, "status"), "processing");
	octo_json_free(status);
	octo_json_free(doc);
	reply_free(&r);
	ck_assert_int_eq(daemon_stop(&d), 0);
}
END_TEST

/* ---- an origin server ----------------------------------------------------- */

#define ORIGIN_SIZE 200000

static void origin_bytes(int64_t file_id, char *buf, size_t size)
{
	size_t i;

	for (i = 0; i < size; i++)
		buf[i] = (char)('A' + (i * 31 + (size_t)file_id) % 61);
}

/* Serves /files/<id> until killed: 70122 is 404; 70121 breaks off half
 * way the first time, then serves Range requests with 206. */
static pid_t origin_server(int *port)
{
	static char body[ORIGIN_SIZE];
	int lfd = listen_loopback(port), broke_once = 0;
	pid_t pid;

	if ((pid = fork()) != 0) {
		close(lfd);
		return pid;
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		const char *ignored;
		char *req = read_request(fd, &ignored), head[256], range[64];
		long long id = 0, from = 0;
		sscanf(req, "GET /files/%lld", &id);
		if (header_value(req, "Range:", range, sizeof(range)))
			sscanf(range, "bytes=%lld-", &from);
		origin_bytes(id, body, sizeof(body));
		if (id == 70122) {
			snprintf(head, sizeof(head), "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
			                             "Connection: close\r\n\r\n");
			send(fd, head, strlen(head), MSG_NOSIGNAL);
		} else if (from > 0) {
			snprintf(head, sizeof(head), "HTTP/1.1 206 Partial Content\r\nContent-Length: %lld\r\n"
			         "Content-Range: bytes %lld-%d/%d\r\nConnection: close\r\n\r\n",
			         ORIGIN_SIZE - from, from, ORIGIN_SIZE - 1, ORIGIN_SIZE);
			send(fd, head, strlen(head), MSG_NOSIGNAL);
			send(fd, body + from, (size_t)(ORIGIN_SIZE - from), MSG_NOSIGNAL);
		} else {
			int cut = id == 70121 && !broke_once++;
			snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
			         "Accept-Ranges: bytes\r\nConnection: close\r\n\r\n", ORIGIN_SIZE);
			send(fd, head, strlen(head), MSG_NOSIGNAL);
			send(fd, body, cut ? ORIGIN_SIZE / 2 : ORIGIN_SIZE, MSG_NOSIGNAL);
		}
		close(fd);
		free(req);
	}
}

/* OCTO_PROCESSOR=origin fetches each file from the origin into storage,
 * resumes a transfer that broke off, and fails a file the origin lacks. */
START_TEST(origin_processor_fetches_resumes_and_fails_cleanly)
{
	char env_url[128], job_id[37], want[ORIGIN_SIZE];
	const char *env[] = { "OCTO_PROCESSOR=origin", env_url, "OCTO_MAX_ATTEMPTS=1", NULL };
	daemon_proc d = { 0 };
	const octo_json_value *files;
	octo_json *doc;
	int port, i;
	pid_t origin = origin_server(&port);

	snprintf(env_url, sizeof(env_url), "OCTO_ORIGIN_URL=http://127.0.0.1:%d/files/{file_id}",
	         port);
	daemon_start(&d, env, NULL);
	initiate(&d, "{\"file_ids\":[70120,70121,70122]}", job_id);
	doc = await_job(&d, job_id, finished);
	ck_assert_str_eq(str_member(doc, "status"), "partial");
	files = member(doc, "files");
	for (i = 0; i < 2; i++) {
		const octo_json_value *f = octo_json_at(files, (size_t)i);
		const char *state = NULL;
		size_t len;
		char *bytes = stored_object(&d, 70120 + i, &len);
		octo_json_string(octo_json_get(f, "status"), &state);
		ck_assert_str_eq(state, "completed");
		origin_bytes(70120 + i, want, sizeof(want));
		ck_assert_uint_eq(len, ORIGIN_SIZE);
		ck_assert_int_eq(memcmp(bytes, want, len), 0);
		octo_free(bytes);
	}
	{
		const octo_json_value *f = octo_json_at(files, 2);
		const char *state = NULL, *error = NULL;
		octo_json_string(octo_json_get(f, "status"), &state);
		octo_json_string(octo_json_get(f, "error"), &error);
		ck_assert_str_eq(state, "failed");
		ck_assert_ptr_nonnull(strstr(error, "not found"));
	}
	octo_json_free(doc);
	ck_assert_int_eq(daemon_stop(&d), 0);
	kill(origin, SIGKILL);
	waitpid(origin, NULL, 0);
}
END_TEST

static int processing_files(const octo_json *doc)
{
	const octo_json_value *files = member(doc, "files");
	const char *state;
	int n = 0;
	size_t i;

	for (i = 0; i < octo_json_size(files); i++)
		if (octo_json_string(octo_json_get(octo_json_at(files, i), "status"), &state) == 0)
			n += strcmp(state, "processing") == 0;
	return n;
}

static int max_processing_seen;

static int finished_watching_cap(const octo_json *doc)
{
	int n = processing_files(doc);

	if (n > max_processing_seen)
		max_processing_seen = n;
	return finished(doc);
}

/* With OCTO_CLIENT_MAX_ACTIVE=1 a client's files are prepared one at a
 * time, though workers are free: every status read shows at most one
 * file processing, and all complete. */
START_TEST(client_cap_limits_files_in_progress_per_client)
{
	static const char *const env[] = {
		"DOWNLOAD_DELAY_MIN_MS=150", "DOWNLOAD_DELAY_MAX_MS=150", "OCTO_WORKERS=4",
		"OCTO_CLIENT_MAX_ACTIVE=1", NULL
	};
	char job_id[37];
	daemon_proc d = { 0 };
	octo_json *doc;

	daemon_start(&d, env, NULL);
	initiate(&d, "{\"file_ids\":[70130,70131,70132]}", job_id);
	max_processing_seen = 0;
	doc = await_job(&d, job_id, finished_watching_cap);
	ck_assert_str_eq(str_member(doc, "status"), "completed");
	ck_assert_int_eq(max_processing_seen, 1);
	octo_json_free(doc);
	ck_assert_int_eq(daemon_stop(&d), 0);
}
END_TEST

/* The client a job is counted against, as its record keeps it. */
static char *job_client(const daemon_proc *d, const char *job_id)
{
	octo_json *doc = job_record(d, job_id);
	const char *v = "";
	char *client;

	octo_json_string(octo_json_get(octo_json_root(doc), "client"), &v);
	client = strdup(v);
	octo_json_free(doc);
	return client;
}

/* X-Client-ID names the client only when a trusted proxy sends it. */
START_TEST(x_client_id_counts_only_from_trusted_proxies)
{
	static const char *const trusted[] = {
		"TRUSTED_PROXIES=10.0.0.0/8, 127.0.0.0/8", "DOWNLOAD_DELAY_MIN_MS=10",
		"DOWNLOAD_DELAY_MAX_MS=10", NULL
	};
	static const char *const untrusted[] = {
		"TRUSTED_PROXIES=10.0.0.0/8", "DOWNLOAD_DELAY_MIN_MS=10", "DOWNLOAD_DELAY_MAX_MS=10", NULL
	};
	static const char body[] = "{\"file_ids\":[70140]}";
	const char *const *envs[] = { trusted, untrusted };
	const char *want[] = { "tenant-a", "127.0.0.1" };
	int i;

	for (i = 0; i < 2; i++) {
		daemon_proc d = { 0 };
		octo_json *doc;
		char *client;
		reply r;
		daemon_start(&d, envs[i], NULL);
		request(&d, "POST", "/v1/download/initiate", "application/json",
		        "X-Client-ID: tenant-a", body, strlen(body), &r);
		ck_assert_int_eq(r.status, 202);
		doc = parse(&r);
		client = job_client(&d, str_member(doc, "jobId"));
		ck_assert_str_eq(client, want[i]);
		free(client);
		octo_json_free(doc);
		reply_free(&r);
		ck_assert_int_eq(daemon_stop(&d), 0);
	}
}
END_TEST

#define CRASH_JOBS 8

static int any_file_completed(const octo_json *doc)
{
	int64_t n = 0;

	octo_json_int(octo_json_get(octo_json_root(doc), "completedFileIds"), &n);
	return n > 0 || finished(doc);
}

/* No accepted job is lost to kill -9: jobs are submitted, octopusd is
 * killed at several points of their processing and started again on the
 * same storage, and in the end every job has completed every file. */
START_TEST(no_accepted_job_is_lost_to_kill_9)
{
	static const char *const env[] = {
		"DOWNLOAD_DELAY_MIN_MS=20", "DOWNLOAD_DELAY_MAX_MS=150", "OCTO_WORKERS=2", NULL
	};
	char ids[CRASH_JOBS][37], body[96];
	daemon_proc d = { 0 };
	int i, round;

	daemon_start(&d, env, NULL);
	for (i = 0; i < CRASH_JOBS; i++) {
		snprintf(body, sizeof(body), "{\"file_ids\":[%d,%d,%d]}", 71000 + 3 * i,
		         71001 + 3 * i, 71002 + 3 * i);
		initiate(&d, body, ids[i]);
	}
	/* Kill points: right after the last answer, then each time one more
	 * job has made progress since the restart. */
	daemon_crash(&d);
	for (round = 0; round < 3; round++) {
		daemon_start(&d, env, NULL);
		octo_json_free(await_job(&d, ids[2 + 2 * round], any_file_completed));
		daemon_crash(&d);
	}
	daemon_start(&d, env, NULL);
	for (i = 0; i < CRASH_JOBS; i++) {
		octo_json *doc = await_job(&d, ids[i], finished);
		ck_assert_msg(strcmp(str_member(doc, "status"), "completed") == 0,
		              "job %d ended %s", i, str_member(doc, "status"));
		ck_assert_int_eq(int_member(doc, "completedFileIds"), 3);
		octo_json_free(doc);
	}
	ck_assert_int_eq(daemon_stop(&d), 0);
}
END_TEST



START_TEST(rate_limit_answers_429_per_client)
{
	static const char *const env[] = {
		"RATE_LIMIT_MAX_REQUESTS=3", "RATE_LIMIT_WINDOW_MS=600000", NULL
	};
	daemon_proc d = { 0 };
	char v[32];
	reply r;
	int i;

	daemon_start(&d, env, NULL);
	for (i = 0; i < 3; i++) {
		request(&d, "GET", "/", NULL, NULL, NULL, 0, &r);
		ck_assert_int_eq(r.status, 200);
		ck_assert(header(&r, "RateLimit-Remaining", v, sizeof(v)));
		ck_assert_int_eq(atoi(v), 2 - i);
		reply_free(&r);
	}
	request(&d, "GET", "/", NULL, NULL, NULL, 0, &r);
	assert_error(&r, 429, "Too many requests");
	assert_header(&r, "RateLimit-Limit", "3");
	assert_header(&r, "RateLimit-Remaining", "0");
	ck_assert(header(&r, "Retry-After", v, sizeof(v)));
	ck_assert_int_gt(atoi(v), 0);
	ck_assert_int_le(atoi(v), 600);
	reply_free(&r);
	/* Health probes are never refused. */
	request(&d, "GET", "/health", NULL, NULL, NULL, 0, &r);
	ck_assert_int_eq(r.status, 200);
	reply_free(&r);
	ck_assert_int_eq(daemon_stop(&d), 0);
}
END_TEST

/* Storage fails (the directory goes away, or the S3 server stops):
 * /health says so within its bound, writes get 503, and everything
 * recovers when storage does, without restarting octopusd. */
START_TEST(health_is_503_when_storage_fails)
{
	static const char *const env[] = { "OCTO_HEALTH_CACHE_MS=0", NULL };
	daemon_proc d = { 0 };
	reply r;

	daemon_start(&d, env, NULL);
	break_storage(&d, 1);
	request(&d, "GET", "/health", NULL, NULL, NULL, 0, &r);
	ck_assert_int_eq(r.status, 503);
	ck_assert_str_eq(r.body, "{\"status\":\"unhealthy\",\"checks\":{\"storage\":\"error\"}}");
	reply_free(&r);
	post_json(&d, "/v1/download/initiate", "{\"file_ids\":[70000]}", &r);
	assert_error(&r, 503, "Storage");
	reply_free(&r);
	break_storage(&d, 0);
	request(&d, "GET", "/health", NULL, NULL, NULL, 0, &r);
	ck_assert_int_eq(r.status, 200);
	reply_free(&r);
	post_json(&d, "/v1/download/initiate", "{\"file_ids\":[70000]}", &r);
	ck_assert_int_eq(r.status, 202);
	reply_free(&r);
	ck_assert_int_eq(daemon_stop(&d), 0);
}
END_TEST

START_TEST(cors_list_echoes_only_listed_origins)
{
	static const char *const env[] = { "CORS_ORIGINS=https://a.example, https://b.example", NULL };
	daemon_proc d = { 0 };
	char v[128];
	reply r;

	daemon_start(&d, env, NULL);
	request(&d, "GET", "/health", NULL, "Origin: https://b.example", NULL, 0, &r);
	assert_header(&r, "Access-Control-Allow-Origin", "https://b.example");
	assert_header(&r, "Vary", "Origin");
	reply_free(&r);
	request(&d, "GET", "/health", NULL, "Origin: https://evil.example", NULL, 0, &r);
	ck_assert(!header(&r, "Access-Control-Allow-Origin", v, sizeof(v)));
	reply_free(&r);
	ck_assert_int_eq(daemon_stop(&d), 0);
}
END_TEST

/* SIGTERM while a legacy call waits: it is answered 202 with where to
 * follow its job (which resumes at the next start), and the process
 * exits 0. */
START_TEST(sigterm_answers_waiting_requests_and_exits_cleanly)
{
	static const char *const env[] = {
		"DOWNLOAD_DELAY_MIN_MS=60000", "DOWNLOAD_DELAY_MAX_MS=60000",
		"LOG_LEVEL=debug", NULL
	};
	static const char req[] =
		"POST /v1/download/start HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
		"Content-Length: 17\r\n\r\n{\"file_id\":70000}";
	daemon_proc d = { 0 };
	char *answer, line[64];
	int status, fd[2];
	pid_t helper;

	daemon_start_logged(&d, env, NULL, 1);
	ck_assert_int_eq(pipe(fd), 0);
	helper = fork();
	if (helper == 0) {
		/* The waiting client: reports the status line it gets. */
		answer = raw_exchange(&d, req, sizeof(req) - 1);
		dprintf(fd[1], "%.12s\n", answer);
		_exit(0);
	}
	close(fd[1]);
	ck_assert(await_log(&d, "request waiting"));
	kill(d.pid, SIGTERM);
	ck_assert_int_gt(read_line(fd[0], line, sizeof(line), 20000), 0);
	ck_assert_str_eq(line, "HTTP/1.1 202");
	close(fd[0]);
	waitpid(helper, NULL, 0);
	ck_assert_int_eq(waitpid(d.pid, &status, 0), d.pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	close(d.log_fd);
	tu_rmtree(d.dir);
}
END_TEST

/* ---- hardening: helpers ----------------------------------------------------- */

static uint64_t mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static void pause_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&t, NULL);
}

/* Bytes that grow; always NUL-terminated. */
typedef struct {
	char *s;
	size_t len, cap;
} text_buf;

static void tb_add(text_buf *b, const void *data, size_t n)
{
	if (!b->s || b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (b->len + n + 1 > cap)
			cap *= 2;
		b->s = realloc(b->s, cap);
		ck_assert_ptr_nonnull(b->s);
		b->cap = cap;
	}
	memcpy(b->s + b->len, data, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void tb_printf(text_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void tb_printf(text_buf *b, const char *fmt, ...)
{
	char line[1500];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	ck_assert(n >= 0 && (size_t)n < sizeof(line));
	tb_add(b, line, (size_t)n);
}

static int connect_port(int port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_msg(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect: %s",
	              strerror(errno));
	return fd;
}

/* Sends `req` and reads the answer until the server closes the connection
 * (15 s at most). Sending stops as soon as the server answers or closes,
 * so a refusal that comes before the request is whole is seen as such.
 * Returns the answer (malloc'd, NUL-terminated) and its length; *closed
 * says whether the server closed the connection. */
static char *raw_request(int port, const char *req, size_t len, size_t *got, int *closed)
{
	uint64_t deadline = mono_ms() + 15000;
	text_buf answer = { 0 };
	int fd = connect_port(port);
	size_t sent = 0;
	char buf[65536];

	tb_add(&answer, "", 0);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	*closed = 0;
	while (sent < len && mono_ms() < deadline) {
		struct pollfd p = { fd, POLLIN | POLLOUT, 0 };
		ssize_t n;
		if (poll(&p, 1, 100) <= 0)
			continue;
		if (p.revents & (POLLIN | POLLHUP | POLLERR))
			break; /* answered (or closed) before the request was whole */
		n = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0)
			break;
		sent += (size_t)n;
	}
	while (mono_ms() < deadline) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t n;
		if (poll(&p, 1, 100) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) { /* end of file, or a reset after the answer */
			*closed = 1;
			break;
		}
		tb_add(&answer, buf, (size_t)n);
	}
	close(fd);
	*got = answer.len;
	return answer.s;
}

static char *copy_bytes(const char *data, size_t n)
{
	char *copy = malloc(n + 1);

	ck_assert_ptr_nonnull(copy);
	memcpy(copy, data, n);
	copy[n] = '\0';
	return copy;
}

/* A raw answer as a reply, so that header() and assert_error() read it. */
static void reply_from_raw(const char *raw, size_t len, reply *r)
{
	const char *end = memmem(raw, len, "\r\n\r\n", 4);
	size_t head = end ? (size_t)(end - raw) + 2 : len;

	memset(r, 0, sizeof(*r));
	if (len > 12 && strncmp(raw, "HTTP/1.", 7) == 0)
		r->status = strtol(raw + 9, NULL, 10);
	r->headers = copy_bytes(raw, head);
	r->headers_len = head;
	r->body_len = end ? len - head - 2 : 0;
	r->body = copy_bytes(end ? end + 4 : "", r->body_len);
}

/* SIGTERM and the exit status; unlike daemon_stop() the data stays, for
 * the test to read or to start again on. */
static int daemon_term(daemon_proc *d)
{
	int status = -1;

	kill(d->pid, SIGTERM);
	ck_assert_int_eq(waitpid(d->pid, &status, 0), d->pid);
	if (d->log_fd >= 0)
		close(d->log_fd);
	d->log_fd = -1;
	d->keep_dir = 1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Waits until the file at `path` holds `text` (bounded); 1 if it did. */
static int await_in_file(const char *path, const char *text, int timeout_ms)
{
	uint64_t until = mono_ms() + (uint64_t)timeout_ms;

	for (;;) {
		FILE *f = fopen(path, "r");
		char line[16384];
		int found = 0;
		while (f && !found && fgets(line, sizeof(line), f))
			found = strstr(line, text) != NULL;
		if (f)
			fclose(f);
		if (found)
			return 1;
		if (mono_ms() > until)
			return 0;
		pause_ms(20);
	}
}

/* The whole text of a file, malloc'd ("" when it cannot be read). */
static char *slurp(const char *path, size_t *len)
{
	text_buf b = { 0 };
	char buf[65536];
	ssize_t n;
	int fd = open(path, O_RDONLY);

	tb_add(&b, "", 0);
	while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
		tb_add(&b, buf, (size_t)n);
	if (fd >= 0)
		close(fd);
	if (len)
		*len = b.len;
	return b.s;
}

/* GET /health until it answers `want` (bounded: storage may take its
 * timeout to fail, and a restarted S3 server a moment to come back). */
static void await_health(const daemon_proc *d, long want)
{
	uint64_t until = mono_ms() + 30000;
	long got = 0;
	reply r;

	while (got != want) {
		ck_assert_msg(mono_ms() < until, "/health stayed %ld, never %ld", got, want);
		request(d, "GET", "/health", NULL, NULL, NULL, 0, &r);
		got = r.status;
		reply_free(&r);
		if (got != want)
			pause_ms(50);
	}
}

/* ---- what storage holds ------------------------------------------------------ */

typedef struct {
	text_buf out;
	char last[OCTO_STORE_KEY_MAX + 1];
} listing;

static int list_one(const char *key, const octo_object_info *info, void *payload)
{
	listing *l = payload;

	tb_printf(&l->out, "%s %llu %s\n", key, (unsigned long long)info->size, info->etag);
	snprintf(l->last, sizeof(l->last), "%s", key);
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every file and directory below `dir`, sorted, with sizes and times. */
static void tree_snapshot(text_buf *out, const char *dir)
{
	char **names = NULL, path[1024];
	size_t n = 0, i;
	struct dirent *e;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		names = realloc(names, (n + 1) * sizeof(*names));
		ck_assert_ptr_nonnull(names);
		names[n++] = strdup(e->d_name);
	}
	closedir(d);
	if (n > 1)
		qsort(names, n, sizeof(*names), cmp_names);
	for (i = 0; i < n; i++) {
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (lstat(path, &st) == 0) {
			tb_printf(out, "%s %lld %lld.%09ld\n", path, (long long)st.st_size,
			          (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
			if (S_ISDIR(st.st_mode))
				tree_snapshot(out, path);
		}
		free(names[i]);
	}
	free(names);
}

/* Every object the daemon's store lists, and every file under the
 * daemon's directory (its store and what lies beside it), with sizes and
 * times: two snapshots are equal when nothing was written. */
static char *store_snapshot(const daemon_proc *d)
{
	octo_store *store = daemon_store(d);
	listing l;
	int more = 1;

	memset(&l, 0, sizeof(l));
	tb_add(&l.out, "", 0);
	while (more)
		ck_assert_int_eq(octo_store_list(store, "", l.last, 1000, list_one, &l, &more), 0);
	octo_store_free(store);
	tree_snapshot(&l.out, d->dir);
	return l.out.s;
}

/* ---- bad input --------------------------------------------------------------- */

/* A daemon for the hostile requests, with a finished job whose ids the
 * path parameters can name, a URL secret the tests know (so they can sign
 * a traversal themselves and find nothing but the key check in the way),
 * a CORS list (Origin is echoed) and a file beside the store that no
 * answer may ever show. */
#define HOSTILE_URL_SECRET "hostile-clients-know-this-url-secret-0123"
#define OUTSIDE_TEXT "this file lies outside the store"

static daemon_proc hostile_daemon;
static char hostile_job[37];

/* 1 when the job's record says completed; 0 while it does not, or cannot
 * be read whole (s3rver, unlike S3, can serve a rewrite half done), with
 * what was read or the error in `said`. */
static int record_completed(const daemon_proc *d, const char *job_id, char *said, size_t size)
{
	octo_store *store = daemon_store(d);
	const char *status = "";
	octo_json *doc = NULL;
	char key[80], *text = NULL;
	int done = 0;
	size_t n;

	snprintf(key, sizeof(key), "jobs/%s.json", job_id);
	if (octo_store_get(store, key, &text, &n) < 0)
		snprintf(said, size, "%s: %s", key, octo_error_last());
	else if (octo_json_parse(&doc, text, n) < 0)
		snprintf(said, size, "%s: %s", key, octo_error_last());
	else if (octo_json_string(octo_json_get(octo_json_root(doc), "status"), &status) == 0)
		done = strcmp(status, "completed") == 0;
	if (doc)
		snprintf(said, size, "%s says %s", key, status);
	octo_json_free(doc);
	octo_free(text);
	octo_store_free(store);
	return done;
}

/* Waits until the job's record says completed (bounded). */
static void await_record_completed(const daemon_proc *d, const char *job_id)
{
	uint64_t until = mono_ms() + 30000;
	char said[300] = "";

	while (!record_completed(d, job_id, said, sizeof(said))) {
		ck_assert_msg(mono_ms() < until, "the record never said completed: %s", said);
		pause_ms(20);
	}
}

static void hostile_up(void)
{
	static const char *const env[] = {
		"CORS_ORIGINS=https://a.example", "OCTO_URL_SECRET=" HOSTILE_URL_SECRET,
		"DOWNLOAD_DELAY_MIN_MS=10", "DOWNLOAD_DELAY_MAX_MS=20", NULL
	};
	char path[300];

	storage_up();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	daemon_start(&hostile_daemon, env, NULL);
	initiate(&hostile_daemon, "{\"file_ids\":[70300]}", hostile_job);
	octo_json_free(await_job(&hostile_daemon, hostile_job, finished));
	/* Its last record is written just after the job ends: from then on
	 * nothing writes, and every snapshot must stay as it is. */
	await_record_completed(&hostile_daemon, hostile_job);
	snprintf(path, sizeof(path), "%s/outside.txt", hostile_daemon.dir);
	tu_write_file(path, OUTSIDE_TEXT, strlen(OUTSIDE_TEXT));
}

static void hostile_down(void)
{
	ck_assert_int_eq(daemon_stop(&hostile_daemon), 0);
	curl_global_cleanup();
	storage_down();
}

/* One hostile request. `head` is the request line and header lines
 * without the final CRLF, or with `raw` the whole request as sent. In
 * head and body, "{job}" stands for the finished job's id, "{sig}" for
 * "expires=E&signature=S" signing the key `sign` (itself expanded), and
 * "{c:N}" for N times the character c. Every request closes its
 * connection, so the answer is what comes before the server closes. */
typedef struct {
	const char *name;
	const char *head;
	size_t head_len;        /* 0: strlen(head); set when head holds a NUL */
	int raw;
	const char *body;       /* NULL: none; else sent with its Content-Length */
	size_t body_len;
	const char *sign;
	char *(*make)(size_t *len); /* instead: the whole request, made at run time */
	long status[3];         /* the answers allowed */
	const char *mention;    /* octopusd's JSON error, naming this; NULL: none */
} hostile;

static void expand(text_buf *out, const char *s, size_t len, const char *sign);

static void signed_query_for(text_buf *out, const char *key_template)
{
	long long expires = (long long)time(NULL) + 3600;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0, i;
	text_buf msg = { 0 };

	expand(&msg, key_template, strlen(key_template), NULL);
	tb_printf(&msg, "\n%lld", expires);
	ck_assert_ptr_nonnull(HMAC(EVP_sha256(), HOSTILE_URL_SECRET, (int)strlen(HOSTILE_URL_SECRET),
	                           (unsigned char *)msg.s, msg.len, mac, &mac_len));
	tb_printf(out, "expires=%lld&signature=", expires);
	for (i = 0; i < mac_len; i++)
		tb_printf(out, "%02x", mac[i]);
	free(msg.s);
}

static void expand(text_buf *out, const char *s, size_t len, const char *sign)
{
	size_t i = 0;

	while (i < len) {
		const char *close = s[i] == '{' ? memchr(s + i, '}', len - i) : NULL;
		size_t n = close ? (size_t)(close - (s + i)) + 1 : 0;

		if (n == 5 && memcmp(s + i, "{job}", 5) == 0) {
			tb_add(out, hostile_job, strlen(hostile_job));
		} else if (n == 5 && memcmp(s + i, "{sig}", 5) == 0 && sign) {
			signed_query_for(out, sign);
		} else if (n > 4 && s[i + 2] == ':' && strspn(s + i + 3, "0123456789") == n - 4) {
			long k, times = strtol(s + i + 3, NULL, 10);
			for (k = 0; k < times; k++)
				tb_add(out, s + i + 1, 1);
		} else {
			tb_add(out, s + i, 1);
			i++;
			continue;
		}
		i += n;
	}
}

static char *hostile_request(const hostile *c, size_t *len)
{
	text_buf b = { 0 }, body = { 0 };

	if (c->make)
		return c->make(len);
	expand(&b, c->head, c->head_len ? c->head_len : strlen(c->head), c->sign);
	if (!c->raw) {
		if (!memmem(b.s, b.len, "\r\nHost:", 7))
			tb_printf(&b, "\r\nHost: test");
		tb_printf(&b, "\r\nConnection: close");
		if (c->body) {
			expand(&body, c->body, c->body_len, NULL);
			if (!body.s)
				tb_add(&body, "", 0);
			tb_printf(&b, "\r\nContent-Length: %zu", body.len);
		}
		tb_printf(&b, "\r\n\r\n");
		if (c->body)
			tb_add(&b, body.s, body.len);
	}
	free(body.s);
	*len = b.len;
	return b.s;
}

/* 10 MB declared, 2 kB sent: a server that waited for the rest would
 * never answer, so the 413 proves it answered from the headers. */
static char *declared_10mb(size_t *len)
{
	text_buf b = { 0 };

	tb_printf(&b, "POST /v1/download/initiate HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
	              "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"file_ids\":[",
	          10 * 1024 * 1024);
	while (b.len < 2048)
		tb_add(&b, "70000,", 6);
	*len = b.len;
	return b.s;
}

static char *chunked_10mb(size_t *len)
{
	static char chunk[65536];
	text_buf b = { 0 };
	int i;

	memset(chunk, ' ', sizeof(chunk));
	tb_printf(&b, "POST /v1/download/initiate HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
	              "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
	for (i = 0; i < 160; i++) {
		tb_printf(&b, "%zx\r\n", sizeof(chunk));
		tb_add(&b, chunk, sizeof(chunk));
		tb_printf(&b, "\r\n");
	}
	tb_printf(&b, "0\r\n\r\n");
	*len = b.len;
	return b.s;
}

static char *many_headers(size_t *len)
{
	text_buf b = { 0 };
	int i;

	tb_printf(&b, "GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
	for (i = 0; i < 3000; i++)
		tb_printf(&b, "X-Header-%04d: value\r\n", i);
	tb_printf(&b, "\r\n");
	*len = b.len;
	return b.s;
}

#define POST_JSON(path, json) \
	.head = "POST " path " HTTP/1.1\r\nContent-Type: application/json", \
	.body = json, .body_len = sizeof(json) - 1
#define INITIATE(json) POST_JSON("/v1/download/initiate", json)
#define BODY(json) .body = json, .body_len = sizeof(json) - 1
#define WITH_NUL(text) .head = text, .head_len = sizeof(text) - 1
#define ONE_JOB "{\"file_ids\":[70000]}"
#define INITIATE_WITH(header) \
	"POST /v1/download/initiate HTTP/1.1\r\nContent-Type: application/json\r\n" header
#define BAD_JSON .status = { 400 }, .mention = "not valid JSON"
#define FIELD(name) .status = { 400 }, .mention = name
#define MALFORMED .status = { 400 }, .mention = "Malformed header"
#define REFUSED .status = { 400, 403, 404 }, .mention = ""
/* libmicrohttpd's own refusals: no JSON, a closed connection. */
#define MHD_REFUSES(a, b) .status = { a, b }

static const hostile hostiles[] = {
	/* Truncated and malformed JSON. */
	{ .name = "truncated in an array", INITIATE("{\"file_ids\":[70000,"), BAD_JSON },
	{ .name = "truncated before its end", INITIATE("{\"file_ids\":[70000]"), BAD_JSON },
	{ .name = "truncated in a key", INITIATE("{\"file_"), BAD_JSON },
	{ .name = "truncated in an escape", INITIATE("{\"file_ids\":[70000],\"x\":\"\\u00"), BAD_JSON },
	{ .name = "one brace too many", INITIATE("{\"file_ids\":[70000]}}"), BAD_JSON },
	{ .name = "whitespace only", INITIATE(" \r\n\t "), BAD_JSON },
	{ .name = "byte order mark", INITIATE("\xef\xbb\xbf{\"file_ids\":[70000]}"), BAD_JSON },
	{ .name = "two objects", INITIATE("{\"file_ids\":[70000]}{\"file_ids\":[70001]}"), BAD_JSON },
	{ .name = "single quotes", INITIATE("{'file_ids':[70000]}"), BAD_JSON },
	{ .name = "trailing comma", INITIATE("{\"file_ids\":[70000,]}"), BAD_JSON },
	{ .name = "NaN", INITIATE("{\"file_ids\":[NaN]}"), BAD_JSON },
	{ .name = "leading zero", INITIATE("{\"file_ids\":[070000]}"), BAD_JSON },
	/* Wrong types. */
	{ .name = "file_ids a string", INITIATE("{\"file_ids\":\"70000\"}"), FIELD("file_ids must be an array") },
	{ .name = "file_ids an object", INITIATE("{\"file_ids\":{\"0\":70000}}"), FIELD("file_ids must be an array") },
	{ .name = "file_ids null", INITIATE("{\"file_ids\":null}"), FIELD("file_ids") },
	{ .name = "file id an array", INITIATE("{\"file_ids\":[[70000]]}"), FIELD("file_ids[0]") },
	{ .name = "file id a bool", INITIATE("{\"file_ids\":[70000,true]}"), FIELD("file_ids[1]") },
	{ .name = "file id null", INITIATE("{\"file_ids\":[70000,null]}"), FIELD("file_ids[1]") },
	{ .name = "callbackUrl a number", INITIATE("{\"file_ids\":[70000],\"callbackUrl\":42}"), FIELD("callbackUrl") },
	{ .name = "callbackUrl an object", INITIATE("{\"file_ids\":[70000],\"callbackUrl\":{}}"), FIELD("callbackUrl") },
	{ .name = "callbackUrl javascript:", INITIATE("{\"file_ids\":[70000],\"callbackUrl\":\"javascript:alert(1)\"}"), FIELD("callbackUrl") },
	{ .name = "callbackUrl with CRLF", INITIATE("{\"file_ids\":[70000],\"callbackUrl\":\"http://x/\\r\\nX-Injected: 1\"}"), FIELD("callbackUrl") },
	{ .name = "callbackUrl over 2048 bytes", INITIATE("{\"file_ids\":[70000],\"callbackUrl\":\"http://x/{a:2048}\"}"), FIELD("callbackUrl") },
	/* Floats and integers beyond int64. */
	{ .name = "exponent", INITIATE("{\"file_ids\":[7e4]}"), FIELD("file_ids[0]") },
	{ .name = "float with zeros", INITIATE("{\"file_ids\":[70000.000]}"), FIELD("file_ids[0]") },
	{ .name = "float overflow", INITIATE("{\"file_ids\":[1e400]}"), FIELD("file_ids[0]") },
	{ .name = "negative zero", INITIATE("{\"file_ids\":[-0.0]}"), FIELD("file_ids[0]") },
	{ .name = "start float", POST_JSON("/v1/download/start", "{\"file_id\":70000.5}"), FIELD("file_id") },
	{ .name = "INT64_MAX", INITIATE("{\"file_ids\":[9223372036854775807]}"), FIELD("file_ids[0]") },
	{ .name = "INT64_MAX + 1", INITIATE("{\"file_ids\":[9223372036854775808]}"), FIELD("file_ids[0]") },
	{ .name = "INT64_MIN - 1", INITIATE("{\"file_ids\":[-9223372036854775809]}"), FIELD("file_ids[0]") },
	{ .name = "2^64", INITIATE("{\"file_ids\":[18446744073709551616]}"), FIELD("file_ids[0]") },
	{ .name = "400 digits", INITIATE("{\"file_ids\":[{9:400}]}"), FIELD("file_ids[0]") },
	{ .name = "start INT64_MIN", POST_JSON("/v1/download/start", "{\"file_id\":-9223372036854775808}"), FIELD("file_id") },
	/* Duplicate keys, however they are spelled. */
	{ .name = "duplicate file_ids", INITIATE("{\"file_ids\":[70000],\"file_ids\":[70001]}"), FIELD("duplicate key") },
	{ .name = "duplicate by escape", INITIATE("{\"file_ids\":[70000],\"file\\u005fids\":[70001]}"), FIELD("duplicate key") },
	{ .name = "duplicate nested", INITIATE("{\"file_ids\":[70000],\"x\":{\"a\":1,\"a\":2}}"), FIELD("duplicate key") },
	{ .name = "duplicate callbackUrl", INITIATE("{\"file_ids\":[70000],\"callbackUrl\":\"http://a/\",\"callbackUrl\":\"http://b/\"}"), FIELD("duplicate key") },
	/* Nesting: 64 levels are JSON like any other, 65 are not. */
	{ .name = "nesting 65", INITIATE("{\"file_ids\":[70000],\"x\":{[:64}{]:64}}"), FIELD("nesting") },
	{ .name = "nesting 60000", INITIATE("{[:60000}"), FIELD("nesting") },
	{ .name = "nesting 64 is fine", POST_JSON("/v1/download/check", "{\"file_id\":70000,\"x\":{[:63}{]:63}}"), .status = { 200 } },
	/* Invalid UTF-8. */
	{ .name = "overlong slash", INITIATE("{\"file_ids\":[70000],\"x\":\"\xc0\xaf\"}"), BAD_JSON },
	{ .name = "encoded surrogate", INITIATE("{\"file_ids\":[70000],\"x\":\"\xed\xa0\x80\"}"), BAD_JSON },
	{ .name = "beyond U+10FFFF", INITIATE("{\"file_ids\":[70000],\"x\":\"\xf4\x90\x80\x80\"}"), BAD_JSON },
	{ .name = "lone continuation", INITIATE("{\"file_ids\":[70000],\"x\":\"\x80\"}"), BAD_JSON },
	{ .name = "sequence cut by the end", INITIATE("{\"file_ids\":[70000],\"x\":\"\xe2\x82"), BAD_JSON },
	{ .name = "invalid in a key", INITIATE("{\"\xff\":1,\"file_ids\":[70000]}"), BAD_JSON },
	{ .name = "Latin-1 callbackUrl", INITIATE("{\"file_ids\":[70000],\"callbackUrl\":\"http://ex\xe4mple/\"}"), BAD_JSON },
	/* NUL, escaped or raw. */
	{ .name = "escaped NUL", INITIATE("{\"file_ids\":[70000],\"callbackUrl\":\"http://x/\\u0000\"}"), FIELD("u0000") },
	{ .name = "NUL in a key", INITIATE("{\"file_ids\":[70000],\"a\0b\":1}"), FIELD("NUL") },
	{ .name = "NUL after the object", INITIATE("{\"file_ids\":[70000]}\0"), FIELD("NUL") },
	/* Bodies framed two ways, or not at all. */
	{ .name = "two Content-Lengths", .raw = 1,
	  .head = "POST /v1/download/initiate HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
	          "Content-Type: application/json\r\nContent-Length: 20\r\nContent-Length: 5\r\n\r\n"
	          ONE_JOB, FIELD("Content-Length") },
	{ .name = "Content-Length and chunked", .raw = 1,
	  .head = "POST /v1/download/initiate HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
	          "Content-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
	          "14\r\n" ONE_JOB "\r\n0\r\n\r\n", FIELD("Content-Length") },
	{ .name = "bad chunk", .raw = 1,
	  .head = "POST /v1/download/initiate HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
	          "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" ONE_JOB,
	  MHD_REFUSES(400, 400) },
	{ .name = "negative Content-Length", .raw = 1,
	  .head = "POST /v1/download/initiate HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
	          "Content-Type: application/json\r\nContent-Length: -1\r\n\r\n", MHD_REFUSES(400, 400) },
	{ .name = "Content-Length over 64 bits", .raw = 1,
	  .head = "POST /v1/download/initiate HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
	          "Content-Type: application/json\r\nContent-Length: 99999999999999999999999\r\n\r\n",
	  MHD_REFUSES(413, 400) },
	{ .name = "10 MB declared", .make = declared_10mb, .status = { 413 }, .mention = "exceeds" },
	{ .name = "10 MB chunked", .make = chunked_10mb, .status = { 413 }, .mention = "exceeds" },
	/* Header injection, in every header octopusd echoes or reads. */
	{ .name = "X-Request-ID with CR", .head = "GET /health HTTP/1.1\r\nX-Request-ID: a\rX-Injected: 1", .status = { 200 } },
	{ .name = "X-Request-ID folded", .head = "GET /health HTTP/1.1\r\nX-Request-ID: a\r\n X-Injected: 1", MALFORMED },
	{ .name = "X-Request-ID with NUL", WITH_NUL("GET /health HTTP/1.1\r\nX-Request-ID: a\0\r\nX-Injected: 1"), .status = { 200 } },
	{ .name = "X-Request-ID 8 kB", .head = "GET /health HTTP/1.1\r\nX-Request-ID: {a:8192}", .status = { 200 } },
	{ .name = "X-Request-ID encoded CRLF", .head = "GET /health HTTP/1.1\r\nX-Request-ID: a%0d%0aX-Injected:%201", .status = { 200 } },
	{ .name = "Origin with CR", .head = "GET /health HTTP/1.1\r\nOrigin: https://a.example\rX-Injected: 1", .status = { 200 } },
	{ .name = "Origin folded", .head = "GET /health HTTP/1.1\r\nOrigin: https://a.example\r\n X-Injected: 1", MALFORMED },
	{ .name = "Origin with NUL", WITH_NUL("GET /health HTTP/1.1\r\nOrigin: https://a.example\0\r\nX-Injected: 1"), .status = { 200 } },
	{ .name = "Origin 8 kB", .head = "GET /health HTTP/1.1\r\nOrigin: https://{a:8192}.example", .status = { 200 } },
	{ .name = "Idempotency-Key with CR", .head = INITIATE_WITH("Idempotency-Key: k\rX-Injected: 1"), BODY(ONE_JOB), FIELD("idempotency key") },
	{ .name = "Idempotency-Key folded", .head = INITIATE_WITH("Idempotency-Key: k\r\n X-Injected: 1"), BODY(ONE_JOB), MALFORMED },
	{ .name = "Idempotency-Key with NUL", WITH_NUL(INITIATE_WITH("Idempotency-Key: \0X-Injected: 1")), BODY(ONE_JOB), FIELD("idempotency key") },
	{ .name = "Idempotency-Key 300 bytes", .head = INITIATE_WITH("Idempotency-Key: {k:300}"), BODY(ONE_JOB), FIELD("idempotency key") },
	{ .name = "Last-Event-ID with CR", .head = "GET /v1/download/{job}/events HTTP/1.1\r\nLast-Event-ID: 1\rX-Injected: 1", FIELD("Last-Event-ID") },
	{ .name = "Last-Event-ID folded", .head = "GET /v1/download/{job}/events HTTP/1.1\r\nLast-Event-ID: 1\r\n X-Injected: 1", MALFORMED },
	{ .name = "Last-Event-ID with NUL", WITH_NUL("GET /v1/download/{job}/events HTTP/1.1\r\nLast-Event-ID: \0\r\nX-Injected: 1"), .status = { 200 } },
	{ .name = "Last-Event-ID 8 kB", .head = "GET /v1/download/{job}/events HTTP/1.1\r\nLast-Event-ID: {9:8192}", FIELD("Last-Event-ID") },
	{ .name = "Last-Event-ID 2^64", .head = "GET /v1/download/{job}/events HTTP/1.1\r\nLast-Event-ID: 18446744073709551616", FIELD("Last-Event-ID") },
	{ .name = "Host with CR", .head = "GET /v1/download/status/{job} HTTP/1.1\r\nHost: evil.example\rX-Injected: 1", .status = { 200 } },
	{ .name = "Host with a path", .head = "GET /v1/download/status/{job} HTTP/1.1\r\nHost: evil.example/../../", .status = { 200 } },
	{ .name = "traceparent with CR", .head = "GET /health HTTP/1.1\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\rX-Injected: 1", .status = { 200 } },
	{ .name = "a name with a space", .head = "GET /health HTTP/1.1\r\nX-Bad Name: 1", MALFORMED },
	{ .name = "a line without a colon", .head = "GET /health HTTP/1.1\r\nX-Injected", MHD_REFUSES(400, 400) },
	/* Oversized headers: libmicrohttpd refuses them from its buffers. */
	{ .name = "one 64 kB header", .head = "GET /health HTTP/1.1\r\nX-Big: {a:65536}", MHD_REFUSES(431, 400) },
	{ .name = "3000 headers", .make = many_headers, MHD_REFUSES(431, 400) },
	{ .name = "10 kB path", .head = "GET /v1/download/status/{a:10000} HTTP/1.1", .status = { 404 }, .mention = "No route" },
	/* Past the 16 KiB a connection may hold (server/http.c). */
	{ .name = "20 kB path", .head = "GET /v1/download/status/{a:20000} HTTP/1.1", MHD_REFUSES(414, 400) },
	/* Path traversal in /v1/files/<key>, signed with the daemon's own
	 * secret: only the key check stands in the way. */
	{ .name = "files ../", .head = "GET /v1/files/../outside.txt?{sig} HTTP/1.1", .sign = "../outside.txt", REFUSED },
	{ .name = "files %2e%2e/", .head = "GET /v1/files/%2e%2e/outside.txt?{sig} HTTP/1.1", .sign = "../outside.txt", REFUSED },
	{ .name = "files %2e%2e%2f", .head = "GET /v1/files/%2e%2e%2foutside.txt?{sig} HTTP/1.1", .sign = "../outside.txt", REFUSED },
	{ .name = "files inner ..%2f", .head = "GET /v1/files/downloads/..%2f..%2foutside.txt?{sig} HTTP/1.1", .sign = "downloads/../../outside.txt", REFUSED },
	{ .name = "files backslashes", .head = "GET /v1/files/..%5c..%5coutside.txt?{sig} HTTP/1.1", .sign = "..\\..\\outside.txt", REFUSED },
	{ .name = "files absolute", .head = "GET /v1/files//etc/passwd?{sig} HTTP/1.1", .sign = "/etc/passwd", REFUSED },
	{ .name = "files absolute encoded", .head = "GET /v1/files/%2fetc%2fpasswd?{sig} HTTP/1.1", .sign = "/etc/passwd", REFUSED },
	{ .name = "files hidden", .head = "GET /v1/files/.url-secret?{sig} HTTP/1.1", .sign = ".url-secret", REFUSED },
	{ .name = "files encoded NUL", .head = "GET /v1/files/downloads/70300.zip%00/../../../outside.txt?expires=9999999999&signature={0:64} HTTP/1.1", REFUSED },
	{ .name = "files 300-byte segment", .head = "GET /v1/files/downloads/{a:300}?{sig} HTTP/1.1", .sign = "downloads/{a:300}", REFUSED },
	{ .name = "files 2000-byte key", .head = "GET /v1/files/{a:200}/{a:200}/{a:200}/{a:200}/{a:200}/{a:200}/{a:200}/{a:200}/{a:200}/{a:200}?{sig} HTTP/1.1", .sign = "{a:200}/{a:200}/{a:200}/{a:200}/{a:200}/{a:200}/{a:200}/{a:200}/{a:200}/{a:200}", REFUSED },
	/* ... and in jobId and fileId. */
	{ .name = "status ../", .head = "GET /v1/download/status/..%2f..%2fetc%2fpasswd HTTP/1.1", REFUSED },
	{ .name = "status ..", .head = "GET /v1/download/status/%2e%2e HTTP/1.1", REFUSED },
	{ .name = "status backslashes", .head = "GET /v1/download/status/..\\..\\etc HTTP/1.1", REFUSED },
	{ .name = "status encoded NUL", .head = "GET /v1/download/status/%00../../etc/passwd HTTP/1.1", REFUSED },
	{ .name = "status absolute", .head = "GET /v1/download/status//etc/passwd HTTP/1.1", REFUSED },
	{ .name = "status long segment", .head = "GET /v1/download/status/{a:5000} HTTP/1.1", REFUSED },
	{ .name = "cancel ../", .head = "DELETE /v1/download/%2e%2e%2f%2e%2e HTTP/1.1", REFUSED },
	{ .name = "events ../", .head = "GET /v1/download/..%2f..%2f/events HTTP/1.1", REFUSED },
	{ .name = "file ../", .head = "GET /v1/download/{job}/files/..%2f..%2foutside.txt HTTP/1.1", REFUSED },
	{ .name = "file ..", .head = "GET /v1/download/{job}/files/%2e%2e HTTP/1.1", REFUSED },
	{ .name = "file absolute", .head = "GET /v1/download/{job}/files//etc/passwd HTTP/1.1", REFUSED },
	{ .name = "file hex", .head = "GET /v1/download/{job}/files/0x11248 HTTP/1.1", REFUSED },
	{ .name = "file negative", .head = "GET /v1/download/{job}/files/-70300 HTTP/1.1", REFUSED },
	{ .name = "file long segment", .head = "GET /v1/download/{job}/files/{7:5000} HTTP/1.1", REFUSED },
	{ .name = "job id ../ with a file", .head = "GET /v1/download/..%2f{job}/files/70300 HTTP/1.1", REFUSED },
	{ .name = "absolute-form target", .head = "GET http://evil.example/../../etc/passwd HTTP/1.1", REFUSED },
};

/* The echoed X-Request-ID can carry nothing into a header or a log. */
static void assert_request_id_sane(const reply *r)
{
	char id[256];

	if (!header(r, "X-Request-ID", id, sizeof(id)))
		return;
	ck_assert_msg(strlen(id) >= 1 && strlen(id) <= 128 &&
	              strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
	                      strlen(id), "X-Request-ID %s", id);
}

/* Each hostile request gets an answer from the allowed set (octopusd's
 * JSON error where octopusd answers), the connection is closed, no
 * header is injected, nothing outside the store is shown, the daemon
 * still answers /health, and nothing was written anywhere. */
START_TEST(hostile_requests_get_defined_answers_and_change_nothing)
{
	const hostile *c = &hostiles[_i];
	char *before = store_snapshot(&hostile_daemon), *after, *req, *raw, v[64];
	size_t req_len, raw_len, i;
	int closed, allowed = 0;
	reply r;

	req = hostile_request(c, &req_len);
	raw = raw_request(hostile_daemon.port, req, req_len, &raw_len, &closed);
	reply_from_raw(raw, raw_len, &r);
	for (i = 0; i < 3; i++)
		allowed |= c->status[i] != 0 && r.status == c->status[i];
	ck_assert_msg(allowed, "%s: status %ld: %.400s", c->name, r.status, raw);
	ck_assert_msg(closed, "%s: the connection stayed open", c->name);
	if (c->mention)
		assert_error(&r, r.status, c->mention);
	ck_assert_msg(!header(&r, "X-Injected", v, sizeof(v)), "%s: injected:\n%s", c->name, r.headers);
	assert_request_id_sane(&r);
	ck_assert_msg(!memmem(raw, raw_len, OUTSIDE_TEXT, strlen(OUTSIDE_TEXT)) &&
	              !memmem(raw, raw_len, "root:x:0:0", 10), "%s: showed a file: %s", c->name, raw);
	reply_free(&r);
	request(&hostile_daemon, "GET", "/health", NULL, NULL, NULL, 0, &r);
	ck_assert_msg(r.status == 200, "%s: /health then said %ld", c->name, r.status);
	reply_free(&r);
	after = store_snapshot(&hostile_daemon);
	ck_assert_msg(strcmp(before, after) == 0, "%s wrote to storage:\nbefore:\n%s\nafter:\n%s",
	              c->name, before, after);
	free(after);
	free(before);
	free(raw);
	free(req);
}
END_TEST

/* ---- slow clients and too many -------------------------------------------------- */

/* How a slow client sends: `burst` bytes at once, then the rest one byte
 * every `gap_ms` (the pace is what is under test, not a wait). */
typedef struct {
	const char *name;
	const char *request;
	size_t burst;
	int gap_ms;
} slow_client;

#define THROUGH_HEADERS ((size_t)-1) /* a burst of the whole header block */

#define SLOW_HEADERS \
	"GET /health HTTP/1.1\r\nHost: test\r\nX-Pad: " \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
	"\r\n\r\n"

static const slow_client slow_clients[] = {
	/* Slowloris: every byte comes before the idle timeout (1 s), so only
	 * a bound on the whole request can end it. */
	{ "headers, a byte every 200 ms", SLOW_HEADERS, 0, 200 },
	{ "headers, a byte every 1500 ms", SLOW_HEADERS, 0, 1500 },
	{ "body, a byte every 200 ms",
	  "POST /v1/download/check HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
	  "Content-Length: 1000\r\n\r\n{\"file_id\":70000,\"pad\":\""
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	  THROUGH_HEADERS, 200 },
};

/* The slow client, in a child process: says "connected", sends, and
 * reports "cut N" when the server closes the connection after N bytes,
 * "answered <status line>" if it answers, or "sent" if it took it all. */
static pid_t slow_client_start(int port, const slow_client *c, int report)
{
	size_t i, len = strlen(c->request), burst = c->burst;
	struct sockaddr_in sa;
	pid_t pid = fork();
	int fd;

	ck_assert_int_ge(pid, 0);
	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		_exit(1);
	dprintf(report, "connected\n");
	if (burst == THROUGH_HEADERS)
		burst = (size_t)(strstr(c->request, "\r\n\r\n") + 4 - c->request);
	if (send(fd, c->request, burst, MSG_NOSIGNAL) != (ssize_t)burst)
		_exit(1);
	for (i = burst; i < len; i++) {
		struct pollfd p = { fd, POLLIN, 0 };
		char answer[13] = "";
		ssize_t n;
		if (send(fd, c->request + i, 1, MSG_NOSIGNAL) != 1) {
			dprintf(report, "cut %zu\n", i);
			_exit(0);
		}
		if (poll(&p, 1, c->gap_ms) <= 0)
			continue;
		n = recv(fd, answer, 12, 0);
		if (n <= 0)
			dprintf(report, "cut %zu\n", i + 1);
		else
			dprintf(report, "answered %.12s\n", answer);
		_exit(0);
	}
	dprintf(report, "sent\n");
	_exit(0);
}

/* A client that sends its request slower than REQUEST_TIMEOUT_MS allows
 * is cut, however it paces its bytes, while other clients are served. */
START_TEST(slow_requests_are_cut_while_others_are_served)
{
	static const char *const env[] = { "REQUEST_TIMEOUT_MS=1000", NULL };
	const slow_client *c = &slow_clients[_i];
	uint64_t until;
	daemon_proc d = { 0 };
	char line[64];
	int fd[2], served = 0, got, status;
	pid_t client;
	reply r;

	daemon_start(&d, env, NULL);
	ck_assert_int_eq(pipe(fd), 0);
	client = slow_client_start(d.port, c, fd[1]);
	close(fd[1]);
	ck_assert_int_gt(read_line(fd[0], line, sizeof(line), 10000), 0);
	ck_assert_str_eq(line, "connected");
	/* Other clients meanwhile: each /health is answered, until the slow
	 * one reports (bounded well above the 1 s timeout). */
	until = mono_ms() + 20000;
	while ((got = read_line(fd[0], line, sizeof(line), 100)) < 0) {
		ck_assert_msg(mono_ms() < until, "%s: still connected after 20 s", c->name);
		request(&d, "GET", "/health", NULL, NULL, NULL, 0, &r);
		ck_assert_int_eq(r.status, 200);
		reply_free(&r);
		served++;
	}
	ck_assert_msg(strncmp(line, "cut ", 4) == 0 || strcmp(line, "answered HTTP/1.1 408") == 0,
	              "%s: %s", c->name, line);
	ck_assert_int_ge(served, 1);
	close(fd[0]);
	waitpid(client, &status, 0);
	request(&d, "GET", "/health", NULL, NULL, NULL, 0, &r);
	ck_assert_int_eq(r.status, 200);
	reply_free(&r);
	ck_assert_int_eq(daemon_stop(&d), 0);
}
END_TEST

/* One GET /health on an open keep-alive connection: 1 when answered 200,
 * 0 when the server closed it unanswered, -1 when nothing came in 10 s. */
static int health_on(int fd)
{
	static const char req[] = "GET /health HTTP/1.1\r\nHost: test\r\n\r\n";
	struct timeval tv = { 10, 0 };
	char buf[4096];
	size_t used = 0;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) < 0)
		return 0;
	for (;;) {
		ssize_t n = recv(fd, buf + used, sizeof(buf) - 1 - used, 0);
		if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE)))
			return 0;
		if (n < 0)
			return -1;
		used += (size_t)n;
		buf[used] = '\0';
		if (strstr(buf, "\r\n\r\n") && buf[used - 1] == '}')
			return strncmp(buf, "HTTP/1.1 200", 12) == 0 ? 1 : 0;
		if (used == sizeof(buf) - 1)
			return 0;
	}
}

#define CONNECTION_LIMIT 20

/* OCTO_MAX_CONNECTIONS held open: more clients are closed at once (not
 * left hanging with no answer), the daemon stays up, and once the held
 * connections close it serves a full set again. */
START_TEST(connections_over_the_limit_are_closed_and_service_returns)
{
	static const char *const env[] = { "OCTO_MAX_CONNECTIONS=20", NULL };
	int held[CONNECTION_LIMIT], i, answer = 0, status;
	uint64_t until;
	daemon_proc d = { 0 };

	daemon_start(&d, env, NULL);
	for (i = 0; i < CONNECTION_LIMIT; i++) {
		held[i] = connect_port(d.port);
		ck_assert_msg(health_on(held[i]) == 1, "connection %d of %d was not served", i + 1,
		              CONNECTION_LIMIT);
	}
	for (i = 0; i < 5; i++) {
		int extra = connect_port(d.port);
		answer = health_on(extra);
		close(extra);
		ck_assert_msg(answer == 0, "connection %d over the limit: %s", i + 1,
		              answer > 0 ? "served" : "left hanging");
	}
	ck_assert_int_eq(waitpid(d.pid, &status, WNOHANG), 0); /* still up */
	for (i = 0; i < CONNECTION_LIMIT; i++)
		close(held[i]);
	/* The daemon learns of the closes as it reads them: try until one
	 * connection is served (bounded), then a full set again. */
	until = mono_ms() + 10000;
	do {
		int fd = connect_port(d.port);
		answer = health_on(fd);
		close(fd);
		ck_assert_msg(answer == 1 || mono_ms() < until, "not served again after the closes");
		if (answer != 1)
			pause_ms(20);
	} while (answer != 1);
	until = mono_ms() + 10000;
	for (i = 0; i < CONNECTION_LIMIT; i++) {
		held[i] = connect_port(d.port);
		answer = health_on(held[i]);
		if (answer != 1 && mono_ms() < until) { /* a close not yet seen */
			close(held[i--]);
			pause_ms(20);
			continue;
		}
		ck_assert_msg(answer == 1, "connection %d of a new set was not served", i + 1);
	}
	for (i = 0; i < CONNECTION_LIMIT; i++)
		close(held[i]);
	ck_assert_int_eq(daemon_stop(&d), 0);
}
END_TEST

/* ---- faults ------------------------------------------------------------------- */

static int started(const octo_json *doc)
{
	return strcmp(str_member(doc, "status"), "queued") != 0;
}

static int all_completed(const daemon_proc *d, char (*ids)[37], int n, int files_each)
{
	int i, attempts = 0;

	for (i = 0; i < n; i++) {
		octo_json *doc = await_job(d, ids[i], finished);
		const octo_json_value *files = member(doc, "files");
		size_t f;
		ck_assert_msg(strcmp(str_member(doc, "status"), "completed") == 0, "job %s ended %s",
		              ids[i], str_member(doc, "status"));
		ck_assert_int_eq(int_member(doc, "completedFileIds"), files_each);
		for (f = 0; f < octo_json_size(files); f++) {
			int64_t a = 0;
			octo_json_int(octo_json_get(octo_json_at(files, f), "attempts"), &a);
			attempts += (int)a;
		}
		octo_json_free(doc);
	}
	return attempts;
}

/* Storage goes away while files are being prepared (the S3 server stops,
 * or the data directory vanishes): /health says 503, attempts fail and are
 * retried, and when storage is back every job completes, none lost. */
START_TEST(jobs_wait_out_a_storage_outage_and_complete)
{
	char log_env[320], log_path[300], ids[4][37];
	const char *env[] = {
		"DOWNLOAD_DELAY_MIN_MS=500", "DOWNLOAD_DELAY_MAX_MS=800", "OCTO_WORKERS=2",
		"OCTO_MAX_ATTEMPTS=20", "OCTO_HEALTH_CACHE_MS=0", log_env, NULL
	};
	daemon_proc d = { 0 };
	int i, attempts;

	tu_mkdtemp(d.dir);
	d.keep_dir = 1;
	snprintf(log_path, sizeof(log_path), "%s/octopusd.log", d.dir);
	snprintf(log_env, sizeof(log_env), "LOG_FILE=%s", log_path);
	daemon_start(&d, env, NULL);
	for (i = 0; i < 4; i++) { /* 8 files, 2 at a time: seconds of work */
		char body[64];
		snprintf(body, sizeof(body), "{\"file_ids\":[%d,%d]}", 70500 + 2 * i, 70501 + 2 * i);
		initiate(&d, body, ids[i]);
	}
	octo_json_free(await_job(&d, ids[0], started));
	break_storage(&d, 1);
	await_health(&d, 503);
	ck_assert_msg(await_in_file(log_path, "File attempt failed", 30000),
	              "no attempt failed while storage was down");
	break_storage(&d, 0);
	await_health(&d, 200);
	attempts = all_completed(&d, ids, 4, 2);
	ck_assert_msg(attempts > 8, "%d attempts for 8 files: none was retried", attempts);
	for (i = 0; i < 4; i++) /* and the records say so, once written */
		await_record_completed(&d, ids[i]);
	fprintf(stderr, "storage outage: 8 files, %d attempts, all completed\n", attempts);
	d.keep_dir = 0;
	ck_assert_int_eq(daemon_stop(&d), 0);
}
END_TEST

#ifndef OCTO_E2E_S3
/* Every job record of the store in `data` parses, read through another
 * handle on it (the daemon owns the store); returns how many there are. */
typedef struct {
	octo_store *store;
	int count;
} record_count;

static int parse_record(const char *key, const octo_object_info *info, void *payload)
{
	record_count *rc = payload;
	octo_json *doc = NULL;
	char *text = NULL;
	size_t len;

	(void)info;
	ck_assert_int_eq(octo_store_get(rc->store, key, &text, &len), 0);
	ck_assert_msg(octo_json_parse(&doc, text, len) == 0, "record %s: %s", key,
	              octo_error_last());
	octo_json_free(doc);
	octo_free(text);
	rc->count++;
	return 0;
}

static int records_parse(const char *data)
{
	record_count rc = { NULL, 0 };
	int more = 0;

	ck_assert_int_eq(octo_store_open_local(&rc.store, data), 0);
	ck_assert_int_eq(octo_store_list(rc.store, "jobs/", NULL, 1000, parse_record, &rc, &more), 0);
	ck_assert_int_eq(more, 0);
	octo_store_free(rc.store);
	return rc.count;
}

static int entries_in(const char *dir)
{
	struct dirent *e;
	int n = 0;
	DIR *d = opendir(dir);

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL)
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return n;
}

/* The embedded store on a small tmpfs, filled to the last byte: initiate
 * and start get 507 in the error shape, no partial record or temporary
 * file is left, and with space freed the service works again. Needs
 * mount(2) (root in a container that allows it); skipped otherwise. */
START_TEST(a_full_disk_gets_507_and_leaves_no_partial_record)
{
	static const char *const env[] = {
		"DOWNLOAD_DELAY_MIN_MS=10", "DOWNLOAD_DELAY_MAX_MS=20", NULL
	};
	static char block[65536];
	char data[300], fill[320], tmp[320], job_id[37];
	daemon_proc d = { 0 };
	octo_json *doc;
	ssize_t n;
	reply r;
	int fd;

	tu_mkdtemp(d.dir);
	snprintf(data, sizeof(data), "%s/data", d.dir);
	ck_assert_int_eq(mkdir(data, 0750), 0);
	if (mount("tmpfs", data, "tmpfs", 0, "size=4m,mode=0750") != 0) {
		fprintf(stderr, "a_full_disk_gets_507_and_leaves_no_partial_record: SKIPPED, "
		                "cannot mount a tmpfs here (%s)\n", strerror(errno));
		tu_rmtree(d.dir);
		return;
	}
	d.keep_dir = 1;
	daemon_start(&d, env, NULL);
	initiate(&d, "{\"file_ids\":[70600]}", job_id);
	octo_json_free(await_job(&d, job_id, finished));

	snprintf(fill, sizeof(fill), "%s/.fill", data); /* no key names it */
	fd = open(fill, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	while ((n = write(fd, block, sizeof(block))) > 0)
		;
	while ((n = write(fd, block, 1)) > 0)
		;
	ck_assert_int_eq(errno, ENOSPC);
	close(fd);

	post_json(&d, "/v1/download/initiate", "{\"file_ids\":[70601]}", &r);
	assert_error(&r, 507, "full");
	reply_free(&r);
	post_json(&d, "/v1/download/start", "{\"file_id\":70602}", &r);
	assert_error(&r, 507, "full");
	reply_free(&r);
	ck_assert_int_eq(records_parse(data), 1); /* the first job's, whole */
	snprintf(tmp, sizeof(tmp), "%s/.tmp", data);
	ck_assert_int_eq(entries_in(tmp), 0);

	ck_assert_int_eq(unlink(fill), 0);
	initiate(&d, "{\"file_ids\":[70601]}", job_id);
	doc = await_job(&d, job_id, finished);
	ck_assert_str_eq(str_member(doc, "status"), "completed");
	octo_json_free(doc);
	ck_assert_int_eq(records_parse(data), 2);
	ck_assert_int_eq(daemon_term(&d), 0);
	ck_assert_int_eq(umount2(data, MNT_DETACH), 0);
	tu_rmtree(d.dir);
}
END_TEST
#endif

/* A record of `n` files: more than a job may have. */
static char *huge_record(size_t n, size_t *len)
{
	text_buf b = { 0 };
	size_t i;

	tb_printf(&b, "{\"version\":2,\"jobId\":\"5e0c5b0e-0000-4000-8000-000000000001\","
	              "\"status\":\"queued\",\"createdAt\":\"2026-01-01T00:00:00.000Z\",\"files\":[");
	for (i = 0; i < n; i++)
		tb_printf(&b, "%s{\"file_id\":%zu,\"status\":\"pending\"}", i ? "," : "",
		          70700 + i % 1000);
	tb_printf(&b, "]}");
	*len = b.len;
	return b.s;
}

/* Records no job can come from, each logged by name at start and
 * skipped; the jobs beside them resume and finish. */
START_TEST(corrupt_job_records_are_skipped_by_name_and_the_rest_resume)
{
	static const char *const slow[] = {
		"DOWNLOAD_DELAY_MIN_MS=600000", "DOWNLOAD_DELAY_MAX_MS=600000", NULL
	};
	struct {
		const char *key;
		char *text;
		size_t len;
	} bad[9];
	char log_env[320], log_path[300], ids[2][37], *good, *log, want[256], *line;
	const char *fast[] = { "DOWNLOAD_DELAY_MIN_MS=10", "DOWNLOAD_DELAY_MAX_MS=50", log_env, NULL };
	daemon_proc d = { 0 };
	octo_store *store;
	size_t good_len, i, n = 0;
	char skipped[64];

	daemon_start(&d, slow, NULL);
	initiate(&d, "{\"file_ids\":[70650,70651]}", ids[0]);
	initiate(&d, "{\"file_ids\":[70652]}", ids[1]);
	daemon_crash(&d);

	store = daemon_store(&d);
	snprintf(want, sizeof(want), "jobs/%s.json", ids[0]);
	ck_assert_int_eq(octo_store_get(store, want, &good, &good_len), 0);
	bad[n].key = "jobs/garbage.json";
	bad[n].text = copy_bytes("\x00\xff\xfe{\"version\":2\x80\x01garbage", 25);
	bad[n++].len = 25;
	bad[n].key = "jobs/truncated.json";
	bad[n].text = copy_bytes(good, good_len / 2);
	bad[n++].len = good_len / 2;
	bad[n].key = "jobs/array.json";
	bad[n].text = copy_bytes("[1,2,3]", 7);
	bad[n++].len = 7;
	bad[n].key = "jobs/wrong-types.json";
	bad[n].text = strdup("{\"version\":2,\"jobId\":5,\"status\":[],\"files\":\"all\"}");
	bad[n].len = strlen(bad[n].text);
	n++;
	bad[n].key = "jobs/no-files.json";
	bad[n].text = strdup("{\"version\":2,\"jobId\":\"5e0c5b0e-0000-4000-8000-000000000002\","
	                     "\"status\":\"queued\",\"createdAt\":\"2026-01-01T00:00:00.000Z\","
	                     "\"files\":[]}");
	bad[n].len = strlen(bad[n].text);
	n++;
	bad[n].key = "jobs/huge.json";
	bad[n].text = huge_record(20000, &bad[n].len); /* 20 times the limit */
	n++;
	bad[n].key = "jobs/deep.json";
	bad[n].text = malloc(100000);
	memset(bad[n].text, '[', 100000);
	bad[n++].len = 100000;
	bad[n].key = "jobs/empty.json";
	bad[n].text = strdup("");
	bad[n++].len = 0;
	bad[n].key = "jobs/copy.json"; /* a whole record, but of another job */
	bad[n].text = copy_bytes(good, good_len);
	bad[n++].len = good_len;
	for (i = 0; i < n; i++)
		ck_assert_int_eq(octo_store_put(store, bad[i].key, bad[i].text, bad[i].len), 0);
	octo_store_free(store);
	octo_free(good);

	snprintf(log_path, sizeof(log_path), "%s/octopusd.log", d.dir);
	snprintf(log_env, sizeof(log_env), "LOG_FILE=%s", log_path);
	daemon_start(&d, fast, NULL);
	ck_assert(await_in_file(log_path, "Job engine started", 30000));
	log = slurp(log_path, NULL);
	for (i = 0; i < n; i++) {
		snprintf(want, sizeof(want), "\"key\":\"%s\"", bad[i].key);
		line = strstr(log, want);
		ck_assert_msg(line != NULL, "no log line names %s:\n%s", bad[i].key, log);
		while (line > log && line[-1] != '\n')
			line--;
		ck_assert_msg(strstr(line, "\"level\":\"error\"") < strchr(line, '\n') &&
		              strstr(line, "Skipped a job record") < strchr(line, '\n'),
		              "%.300s", line);
		free(bad[i].text);
	}
	snprintf(skipped, sizeof(skipped), "\"records_skipped\":%zu", n);
	ck_assert_msg(strstr(log, skipped) != NULL, "want %s in:\n%s", skipped, log);
	free(log);
	all_completed(&d, ids, 1, 2);
	all_completed(&d, ids + 1, 1, 1);
	ck_assert_int_eq(daemon_stop(&d), 0);
}
END_TEST

/* Takes each delivery and never answers. Reports "accepted" when a
 * delivery is in, "closed" when octopusd hangs up on it. */
static pid_t silent_receiver(int *port, int report)
{
	int lfd = listen_loopback(port);
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid != 0) {
		close(lfd);
		return pid;
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		const char *body;
		char *req = read_request(fd, &body), sink[256];
		dprintf(report, "accepted %s\n", strstr(body, "\"jobId\"") ? "delivery" : "other");
		while (recv(fd, sink, sizeof(sink), 0) > 0)
			; /* no answer, ever: only octopusd can end this */
		dprintf(report, "closed\n");
		close(fd);
		free(req);
	}
}

static int two_webhook_attempts(const octo_json *doc)
{
	int64_t attempts = 0;

	octo_json_int(octo_json_get(octo_json_get(octo_json_root(doc), "webhook"), "attempts"),
	              &attempts);
	return attempts >= 2;
}

/* A receiver that accepts and never answers: each attempt ends on
 * octopusd's side (its timeout: the receiver never would), the status
 * shows the failed attempts, and the service answers meanwhile. */
START_TEST(a_receiver_that_never_answers_costs_one_timeout_per_attempt)
{
	static const char *const env[] = {
		"DOWNLOAD_DELAY_MIN_MS=10", "DOWNLOAD_DELAY_MAX_MS=50",
		"OCTO_WEBHOOK_SECRET=" WEBHOOK_SECRET, "OCTO_WEBHOOK_TIMEOUT_MS=500",
		"OCTO_WEBHOOK_MAX_ATTEMPTS=2", NULL
	};
	const char *error = NULL;
	char job_id[37], body[160], line[64];
	const octo_json_value *wh;
	daemon_proc d = { 0 };
	int port, fd[2], i, delivered = 1;
	octo_json *doc;
	pid_t receiver;
	reply r;

	ck_assert_int_eq(pipe(fd), 0);
	receiver = silent_receiver(&port, fd[1]);
	close(fd[1]);
	daemon_start(&d, env, NULL);
	snprintf(body, sizeof(body), "{\"file_ids\":[70680],\"callbackUrl\":\"http://127.0.0.1:%d/h\"}",
	         port);
	initiate(&d, body, job_id);
	for (i = 0; i < 2; i++) {
		ck_assert_int_gt(read_line(fd[0], line, sizeof(line), 30000), 0);
		ck_assert_str_eq(line, "accepted delivery");
		/* The delivery hangs: everything else is answered. */
		request(&d, "GET", "/health", NULL, NULL, NULL, 0, &r);
		ck_assert_int_eq(r.status, 200);
		reply_free(&r);
		octo_json_free(job_status(&d, job_id));
		ck_assert_int_gt(read_line(fd[0], line, sizeof(line), 30000), 0);
		ck_assert_str_eq(line, "closed");
	}
	doc = await_job(&d, job_id, two_webhook_attempts);
	ck_assert_str_eq(str_member(doc, "status"), "completed");
	wh = member(doc, "webhook");
	octo_json_bool(octo_json_get(wh, "delivered"), &delivered);
	ck_assert_int_eq(delivered, 0);
	ck_assert_int_eq(octo_json_string(octo_json_get(wh, "lastError"), &error), 0);
	ck_assert_msg(strstr(error, "Timeout") != NULL, "lastError %s", error);
	octo_json_free(doc);
	close(fd[0]);
	kill(receiver, SIGKILL);
	waitpid(receiver, NULL, 0);
	ck_assert_int_eq(daemon_stop(&d), 0);
}
END_TEST

/* ---- secrets ------------------------------------------------------------------ */

#define URL_SECRET_VALUE "url-secret-VALUE-never-logged-0123456789"
#define WRONG_S3_SECRET "s3-secret-VALUE-never-logged-wrong-one"

/* Reads a daemon's stderr to its end, in a thread: at LOG_LEVEL=debug it
 * says more than a pipe holds. */
typedef struct {
	int fd;
	text_buf text;
	pthread_t thread;
} log_drain;

static void *drain_main(void *arg)
{
	log_drain *l = arg;
	char buf[4096];
	ssize_t n;

	while ((n = read(l->fd, buf, sizeof(buf))) > 0)
		tb_add(&l->text, buf, (size_t)n);
	return NULL;
}

static void drain_start(log_drain *l, daemon_proc *d)
{
	memset(l, 0, sizeof(*l));
	l->fd = d->log_fd;
	d->log_fd = -1; /* the drain closes it */
	tb_add(&l->text, "", 0);
	ck_assert_int_eq(pthread_create(&l->thread, NULL, drain_main, l), 0);
}

/* After the daemon exited: everything it wrote. */
static char *drain_end(log_drain *l)
{
	pthread_join(l->thread, NULL);
	close(l->fd);
	return l->text.s;
}

static void assert_not_in(const char *log, const char *secret, const char *what)
{
	const char *at = strstr(log, secret);

	ck_assert_msg(at == NULL, "%s is in the log:\n%.300s", what,
	              at && (size_t)(at - log) > 150 ? at - 150 : log);
}

/* With every secret set and LOG_LEVEL=debug, a run that signs URLs,
 * delivers a webhook (after a failed attempt) and sees storage fail
 * writes none of them to the log. */
START_TEST(secrets_never_reach_the_log)
{
	static const char *const env[] = {
		"LOG_LEVEL=debug", "OCTO_WEBHOOK_SECRET=" WEBHOOK_KEY,
		"OCTO_URL_SECRET=" URL_SECRET_VALUE, "DOWNLOAD_DELAY_MIN_MS=10",
		"DOWNLOAD_DELAY_MAX_MS=50", "OCTO_HEALTH_CACHE_MS=0", NULL
	};
	char job_id[37], body[160], line[128], path[160], *log;
	const char *url = NULL;
	daemon_proc d = { 0 };
	int port, fd[2], i;
	log_drain drain;
	octo_json *doc;
	pid_t receiver;
	reply r, f;

	ck_assert_int_eq(pipe(fd), 0);
	receiver = webhook_receiver(&port, fd[1]);
	close(fd[1]);
	daemon_start_logged(&d, env, NULL, 1);
	drain_start(&drain, &d);
	snprintf(body, sizeof(body), "{\"file_ids\":[70690],\"callbackUrl\":\"http://127.0.0.1:%d/h\"}",
	         port);
	initiate(&d, body, job_id);
	for (i = 0; i < 2; i++) { /* answered 500, then 200 */
		ck_assert_int_gt(read_line(fd[0], line, sizeof(line), 30000), 0);
		ck_assert_str_eq(line, "signed completed");
	}
	close(fd[0]);
	waitpid(receiver, NULL, 0);
	doc = await_job(&d, job_id, webhook_delivered);
	ck_assert_int_eq(octo_json_string(octo_json_get(octo_json_at(member(doc, "files"), 0),
	                                                "downloadUrl"), &url), 0);
	ck_assert_int_eq(fetch(url, &f), 200); /* a URL signed with the secret */
	reply_free(&f);
	octo_json_free(doc);
	snprintf(path, sizeof(path), "/v1/download/%s/files/70690", job_id);
	request(&d, "GET", path, NULL, NULL, NULL, 0, &r);
	ck_assert_int_eq(r.status, 302);
	reply_free(&r);
	request(&d, "GET", "/v1/files/downloads/70690.zip?expires=9999999999&signature=00", NULL,
	        NULL, NULL, 0, &r);
	ck_assert_int_eq(r.status, 403);
	reply_free(&r);
	post_json(&d, "/v1/download/start", "{\"file_id\":70691}", &r);
	ck_assert_int_eq(r.status, 200);
	reply_free(&r);
	/* Storage calls that fail. */
	break_storage(&d, 1);
	await_health(&d, 503);
	post_json(&d, "/v1/download/initiate", "{\"file_ids\":[70692]}", &r);
	ck_assert_int_eq(r.status, 503);
	reply_free(&r);
	post_json(&d, "/v1/download/check", "{\"file_id\":70692}", &r);
	ck_assert_int_eq(r.status, 503);
	reply_free(&r);
	break_storage(&d, 0);
	await_health(&d, 200);
	ck_assert_int_eq(daemon_term(&d), 0);
	log = drain_end(&drain);
	ck_assert_msg(strstr(log, "\"level\":\"debug\""), "no debug line was captured:\n%s", log);
	ck_assert_ptr_nonnull(strstr(log, "POST /v1/download/initiate 503"));
	assert_not_in(log, WEBHOOK_KEY, "OCTO_WEBHOOK_SECRET");
	assert_not_in(log, URL_SECRET_VALUE, "OCTO_URL_SECRET");
#ifdef OCTO_E2E_S3
	/* s3rver's secret is also its key id: neither may show. */
	assert_not_in(log, TS3_SECRET_KEY, "S3_SECRET_ACCESS_KEY");
	free(log);
	{
		/* Signed with a wrong secret: every S3 call fails at S3. */
		static const char *const wrong[] = {
			"LOG_LEVEL=debug", "S3_SECRET_ACCESS_KEY=" WRONG_S3_SECRET, "OCTO_HEALTH_CACHE_MS=0",
			NULL
		};
		/* octopusd lists its jobs at start: with every S3 call refused it
		 * may not start at all; either way it must not say the secret. */
		int status;
		if (daemon_launch(&d, wrong, NULL, 1, line, sizeof(line)) > 0 &&
		    strstr(line, "listening on")) {
			daemon_listening(&d, line);
			drain_start(&drain, &d);
			await_health(&d, 503);
			post_json(&d, "/v1/download/initiate", "{\"file_ids\":[70693]}", &r);
			ck_assert_int_eq(r.status, 503);
			reply_free(&r);
			ck_assert_int_eq(daemon_term(&d), 0);
		} else {
			drain_start(&drain, &d);
			ck_assert_int_eq(waitpid(d.pid, &status, 0), d.pid);
			ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) != 0, "said: %s", line);
		}
		log = drain_end(&drain);
		ck_assert_ptr_nonnull(strstr(log, "S3"));
		assert_not_in(log, WRONG_S3_SECRET, "a wrong S3_SECRET_ACCESS_KEY");
	}
#endif
	free(log);
	tu_rmtree(d.dir);
}
END_TEST

/* ---- crash loop ------------------------------------------------------------------ */

#define CRASH_KEYS_MAX 8192

/* A client that asks for one job after another, each under its own
 * Idempotency-Key, and repeats a request until it gets an answer. */
typedef struct {
	char base[64];
	pthread_mutex_t lock;
	pthread_cond_t progress;
	int stop;
	unsigned acked;        /* keys 0..acked-1 have their job */
	unsigned retries;      /* attempts lost to a dead daemon (or a 503) */
	char failure[512];     /* an answer that was no 202 and no reason to retry */
	char ids[CRASH_KEYS_MAX][37];
} crash_client;

/* One attempt: the status (0: no answer, a connection error) and the
 * job id of a 202. */
static long crash_attempt(crash_client *c, unsigned key, char job_id[37], char *said, size_t size)
{
	char url[128], body[64], idem[64];
	struct curl_slist *hdrs = NULL;
	reply r;
	long status = 0;
	const char *p;
	CURL *h = curl_easy_init();

	if (!h)
		return 0;
	memset(&r, 0, sizeof(r));
	snprintf(url, sizeof(url), "%s/v1/download/initiate", c->base);
	snprintf(body, sizeof(body), "{\"file_ids\":[%u]}", 73000 + key % 300);
	snprintf(idem, sizeof(idem), "Idempotency-Key: crash-loop-%u", key);
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, "Expect:");
	hdrs = curl_slist_append(hdrs, idem);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	if (curl_easy_perform(h) == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	curl_slist_free_all(hdrs);
	snprintf(said, size, "%ld %s", status, r.body ? r.body : "");
	if (status == 202 && r.body && (p = strstr(r.body, "\"jobId\":\"")) != NULL)
		snprintf(job_id, 37, "%.36s", p + 9);
	free(r.body);
	return status;
}

static void *crash_client_main(void *arg)
{
	crash_client *c = arg;
	unsigned key;

	for (key = 0; key < CRASH_KEYS_MAX; key++) {
		char job_id[37] = "", said[256];
		long status;
		int stop;
		pthread_mutex_lock(&c->lock);
		stop = c->stop;
		pthread_mutex_unlock(&c->lock);
		if (stop)
			break;
		/* A request that got no answer (the daemon died under it) may or
		 * may not have been accepted: it is sent again under the same key
		 * until an answer comes. If its job was accepted, the retry gets
		 * that job back (the key is kept in its record, across restarts),
		 * so an accepted job is never left unacknowledged nor made twice. */
		while ((status = crash_attempt(c, key, job_id, said, sizeof(said))) != 202) {
			if (status != 0 && status != 503) {
				pthread_mutex_lock(&c->lock);
				snprintf(c->failure, sizeof(c->failure), "key %u: %s", key, said);
				c->stop = 1;
				pthread_cond_broadcast(&c->progress);
				pthread_mutex_unlock(&c->lock);
				return NULL;
			}
			pthread_mutex_lock(&c->lock);
			c->retries++;
			pthread_mutex_unlock(&c->lock);
			pause_ms(10); /* the daemon is restarting */
		}
		pthread_mutex_lock(&c->lock);
		snprintf(c->ids[key], sizeof(c->ids[key]), "%s", job_id);
		c->acked = key + 1;
		pthread_cond_broadcast(&c->progress);
		pthread_mutex_unlock(&c->lock);
		pause_ms(10); /* a steady stream, not a flood */
	}
	return NULL;
}

/* Waits until the client has more than `past` answers (bounded). */
static unsigned await_acks(crash_client *c, unsigned past)
{
	char failure[sizeof(c->failure)];
	struct timespec until;
	unsigned acked;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 30;
	pthread_mutex_lock(&c->lock);
	while (c->acked <= past && !c->failure[0] &&
	       pthread_cond_timedwait(&c->progress, &c->lock, &until) == 0)
		;
	acked = c->acked;
	snprintf(failure, sizeof(failure), "%s", c->failure);
	pthread_mutex_unlock(&c->lock);
	ck_assert_msg(!failure[0], "the client got %s", failure);
	ck_assert_msg(acked > past, "no job was accepted within 30 s");
	return acked;
}

static int cmp_ids(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

typedef struct {
	octo_store *store;
	crash_client *client;
	unsigned records, final;
	char last[OCTO_STORE_KEY_MAX + 1];
	char *keys_seen; /* one byte per idempotency key */
} record_check;

/* Every record parses, is final, holds the key of a job the client was
 * answered for, and no key is held twice. */
static int check_record(const char *key, const octo_object_info *info, void *payload)
{
	record_check *rc = payload;
	const char *status = "", *idem = "", *job = "";
	octo_json *doc = NULL;
	unsigned k;
	size_t len;
	char *text;

	(void)info;
	snprintf(rc->last, sizeof(rc->last), "%s", key);
	ck_assert_int_eq(octo_store_get(rc->store, key, &text, &len), 0);
	ck_assert_msg(octo_json_parse(&doc, text, len) == 0, "%s does not parse: %s", key,
	              octo_error_last());
	octo_json_string(octo_json_get(octo_json_root(doc), "status"), &status);
	octo_json_string(octo_json_get(octo_json_root(doc), "idempotencyKey"), &idem);
	octo_json_string(octo_json_get(octo_json_root(doc), "jobId"), &job);
	ck_assert_msg(is_terminal(status), "%s is %s", key, status);
	ck_assert_msg(sscanf(idem, "crash-loop-%u", &k) == 1 && k < rc->client->acked,
	              "%s has key \"%s\": a job no client was answered for", key, idem);
	ck_assert_msg(!rc->keys_seen[k], "key %s has two jobs", idem);
	rc->keys_seen[k] = 1;
	ck_assert_str_eq(job, rc->client->ids[k]);
	rc->records++;
	rc->final += strcmp(status, "completed") == 0;
	octo_json_free(doc);
	octo_free(text);
	return 0;
}

/* Under a steady stream of initiates, octopusd is killed with SIGKILL at
 * random points OCTO_CRASH_CYCLES times (20 unless set) and started again
 * on the same data and port. In the end every job the client was answered
 * 202 for exists and ends, each key has exactly one job, and every record
 * parses. */
START_TEST(crash_loop_loses_no_acknowledged_job)
{
	const char *cycles_env = getenv("OCTO_CRASH_CYCLES"), *seed_env = getenv("OCTO_CRASH_SEED");
	int cycles = cycles_env && atoi(cycles_env) > 0 ? atoi(cycles_env) : 20, i, more = 1;
	unsigned seed = seed_env ? (unsigned)strtoul(seed_env, NULL, 10)
	                         : (unsigned)time(NULL) ^ (unsigned)getpid();
	char port_env[32];
	const char *env[] = {
		"DOWNLOAD_DELAY_MIN_MS=10", "DOWNLOAD_DELAY_MAX_MS=100", "OCTO_WORKERS=4",
		"LOG_LEVEL=error", port_env, NULL
	};
	crash_client *c = calloc(1, sizeof(*c));
	char (*sorted)[37];
	daemon_proc d = { 0 };
	record_check rc;
	pthread_t client;
	unsigned acked = 0, k;
	int port;

	ck_assert_ptr_nonnull(c);
	curl_global_init(CURL_GLOBAL_DEFAULT); /* before a second thread uses curl */
	fprintf(stderr, "crash loop: %d cycles, OCTO_CRASH_SEED=%u\n", cycles, seed);
	close(listen_loopback(&port)); /* free a moment ago: every start takes it */
	snprintf(port_env, sizeof(port_env), "PORT=%d", port);
	daemon_start(&d, env, NULL);
	snprintf(c->base, sizeof(c->base), "%s", d.base);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->progress, NULL);
	ck_assert_int_eq(pthread_create(&client, NULL, crash_client_main, c), 0);
	for (i = 0; i < cycles; i++) {
		/* Each run serves some requests, then dies at a random moment:
		 * mid-request, mid-write, mid-file. */
		acked = await_acks(c, acked);
		pause_ms((long)(rand_r(&seed) % 300));
		daemon_crash(&d);
		daemon_start(&d, env, NULL);
	}
	acked = await_acks(c, acked); /* the last run serves too */
	pthread_mutex_lock(&c->lock);
	c->stop = 1;
	pthread_mutex_unlock(&c->lock);
	pthread_join(client, NULL);
	ck_assert_msg(!c->failure[0], "the client got %s", c->failure);
	acked = c->acked;

	/* One job per key: no two keys share a job id either. */
	sorted = malloc(acked * sizeof(*sorted));
	memcpy(sorted, c->ids, acked * sizeof(*sorted));
	qsort(sorted, acked, sizeof(*sorted), cmp_ids);
	for (k = 1; k < acked; k++)
		ck_assert_msg(strcmp(sorted[k - 1], sorted[k]) != 0, "two keys got job %s", sorted[k]);
	free(sorted);
	for (k = 0; k < acked; k++) /* zero lost: each exists and ends */
		octo_json_free(await_job(&d, c->ids[k], finished));
	ck_assert_int_eq(daemon_term(&d), 0);

	memset(&rc, 0, sizeof(rc));
	rc.store = daemon_store(&d);
	rc.client = c;
	rc.keys_seen = calloc(acked + 1, 1);
	while (more)
		ck_assert_int_eq(octo_store_list(rc.store, "jobs/", rc.last, 1000, check_record, &rc,
		                                 &more), 0);
	octo_store_free(rc.store);
	ck_assert_uint_eq(rc.records, acked); /* and no job nobody was answered for */
	fprintf(stderr, "crash loop: %d SIGKILLs, %u jobs acknowledged (%u completed, %u otherwise "
	                "final), %u requests retried, 0 lost, 0 duplicated\n",
	        cycles, acked, rc.final, acked - rc.final, c->retries);
	free(rc.keys_seen);
	pthread_cond_destroy(&c->progress);
	pthread_mutex_destroy(&c->lock);
	free(c);
	curl_global_cleanup();
	tu_rmtree(d.dir);
}
END_TEST


/* ---- start-up ------------------------------------------------------------ */

#ifndef OCTO_E2E_S3 /* start-up checks do not depend on the store */
typedef struct {
	const char *settings[3]; /* "NAME=value" each */
	const char *mention;     /* what the message must name */
} refusal;

static const refusal refusals[] = {
	{ { "PORT=abc" }, "PORT" },
	{ { "PORT=65536" }, "PORT" },
	{ { "PORT=-1" }, "PORT" },
	{ { "HOST=not-an-address" }, "HOST" },
	{ { "REQUEST_TIMEOUT_MS=0" }, "REQUEST_TIMEOUT_MS" },
	{ { "RATE_LIMIT_WINDOW_MS=soon" }, "RATE_LIMIT_WINDOW_MS" },
	{ { "RATE_LIMIT_MAX_REQUESTS=1.5" }, "RATE_LIMIT_MAX_REQUESTS" },
	{ { "DOWNLOAD_DELAY_ENABLED=perhaps" }, "DOWNLOAD_DELAY_ENABLED" },
	{ { "DOWNLOAD_DELAY_MIN_MS=9000000" }, "DOWNLOAD_DELAY_MIN_MS" },
	{ { "LOG_LEVEL=chatty" }, "LOG_LEVEL" },
	{ { "CORS_ORIGINS=javascript:alert(1)" }, "CORS_ORIGINS" },
	{ { "S3_BUCKET_NAME=downloads" }, "S3_ACCESS_KEY_ID" },
	{ { "S3_ENDPOINT=http://minio:9000" }, "S3_BUCKET_NAME" },
	{ { "S3_SECRET_ACCESS_KEY=abc" }, "S3_BUCKET_NAME" },
	{ { "S3_BUCKET_NAME=downloads", "S3_ACCESS_KEY_ID=k", "S3_SECRET_ACCESS_KEY=s3cr3t-VALUE" }, "S3_TLS_VERIFY" },
	{ { "S3_ENDPOINT=minio:9000", "S3_BUCKET_NAME=downloads", "S3_ACCESS_KEY_ID=k" }, "S3_ENDPOINT" },
	{ { "OCTO_URL_SECRET=short", }, "OCTO_URL_SECRET" },
	{ { "DOWNLOAD_URL_TTL_S=0", }, "DOWNLOAD_URL_TTL_S" },
	{ { "OCTO_PUBLIC_URL=dl.example.com", }, "OCTO_PUBLIC_URL" },
	{ { "TRUSTED_PROXIES=10.0.0.0/33", }, "trusted_proxies" },
};

START_TEST(bad_settings_stop_start_up_naming_the_variable)
{
	const refusal *r = &refusals[_i];
	const char *env[] = { r->settings[0], r->settings[1], r->settings[2], NULL };
	char err[2048];

	ck_assert_int_eq(daemon_refuses(env, NULL, err, sizeof(err)), 2);
	ck_assert_msg(strstr(err, r->mention) != NULL, "stderr: %s", err);
	/* No credential is ever echoed. */
	ck_assert_ptr_null(strstr(err, "s3cr3t-VALUE"));
}
END_TEST

START_TEST(min_above_max_delay_is_refused)
{
	const char *env[] = { "DOWNLOAD_DELAY_MIN_MS=500", "DOWNLOAD_DELAY_MAX_MS=100", NULL };
	char err[2048];

	ck_assert_int_eq(daemon_refuses(env, NULL, err, sizeof(err)), 2);
	ck_assert_ptr_nonnull(strstr(err, "DOWNLOAD_DELAY_MIN_MS"));
	ck_assert_ptr_nonnull(strstr(err, "DOWNLOAD_DELAY_MAX_MS"));
}
END_TEST

START_TEST(flags_are_validated_and_help_and_version_answer)
{
	const char *bad_port[] = { "--port", "http", NULL };
	const char *unknown[] = { "--verbose", NULL };
	const char *missing[] = { "--env-file", NULL };
	const char *help[] = { "--help", NULL };
	const char *version[] = { "--version", NULL };
	char out[2048];

	ck_assert_int_eq(daemon_refuses(NULL, bad_port, out, sizeof(out)), 2);
	ck_assert_ptr_nonnull(strstr(out, "--port"));
	ck_assert_int_eq(daemon_refuses(NULL, unknown, out, sizeof(out)), 2);
	ck_assert_ptr_nonnull(strstr(out, "--verbose"));
	ck_assert_int_eq(daemon_refuses(NULL, missing, out, sizeof(out)), 2);
	ck_assert_int_eq(daemon_refuses(NULL, help, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "Usage: octopusd"));
	ck_assert_int_eq(daemon_refuses(NULL, version, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "octopusd " PACKAGE_VERSION));
}
END_TEST

#endif

START_TEST(env_file_supplies_settings_the_environment_lacks)
{
	char dir[256], path[300], arg[300], err[2048];
	static const char text[] =
		"# settings for the test\n"
		"export RATE_LIMIT_MAX_REQUESTS=7\n"
		"RATE_LIMIT_WINDOW_MS='60000'\n"
		"CORS_ORIGINS=\"https://a.example\"  # one origin\n";
	const char *args[] = { "--env-file", arg, NULL };
	const char *bad_args[] = { "--env-file", path, NULL };
	daemon_proc d = { 0 };
	reply r;

	tu_mkdtemp(dir);
	snprintf(arg, sizeof(arg), "%s/good.env", dir);
	tu_write_file(arg, text, sizeof(text) - 1);
	/* RATE_LIMIT_MAX_REQUESTS=100000 from the environment wins over 7. */
	daemon_start(&d, NULL, args);
	request(&d, "GET", "/", NULL, "Origin: https://a.example", NULL, 0, &r);
	assert_header(&r, "RateLimit-Limit", "100000");
	assert_header(&r, "Access-Control-Allow-Origin", "https://a.example");
	reply_free(&r);
	ck_assert_int_eq(daemon_stop(&d), 0);

	snprintf(path, sizeof(path), "%s/bad.env", dir);
	tu_write_file(path, "PORT=1\nthis line is wrong\n", 26);
	ck_assert_int_eq(daemon_refuses(NULL, bad_args, err, sizeof(err)), 2);
	ck_assert_msg(strstr(err, "line 2") != NULL, "stderr: %s", err);
	tu_rmtree(dir);
}
END_TEST

/* ---- observability ------------------------------------------------------- */

/* Run once, on the embedded store: what is observed does not depend on it. */
#ifndef OCTO_E2E_S3

static void observability_up(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void observability_down(void)
{
	curl_global_cleanup();
}

/* The value of one exact series ("name{labels}") in an exposition, or -1. */
static double series_value(const char *text, const char *series)
{
	size_t n = strlen(series);
	const char *p = text;

	while ((p = strstr(p, series)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p += n;
	}
	return -1;
}

static char *scrape(const daemon_proc *d)
{
	reply r;

	request(d, "GET", "/metrics", NULL, NULL, NULL, 0, &r);
	ck_assert_int_eq(r.status, 200);
	assert_header(&r, "Content-Type", OCTO_METRICS_CONTENT_TYPE);
	free(r.headers);
	return r.body;
}

/* promtool is Prometheus's own checker; the test command installs it. */
static int tool_missing(const char *tool)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
	if (system(cmd) == 0)
		return 0;
	ck_assert_msg(!getenv("OCTO_REQUIRE_TOOLS"), "%s is required but not installed", tool);
	fprintf(stderr, "%s not installed: part of this test skipped\n", tool);
	return 1;
}

/* Feeds `text` to `promtool check metrics`; returns its exit status and
 * what it said. */
static int promtool_check_metrics(const char *text, char *said, size_t size)
{
	char path[300], cmd[400], dir[256];
	FILE *out;
	size_t n;
	int status;

	tu_mkdtemp(dir);
	snprintf(path, sizeof(path), "%s/scrape.txt", dir);
	tu_write_file(path, text, strlen(text));
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
	out = popen(cmd, "r");
	ck_assert_ptr_nonnull(out);
	n = fread(said, 1, size - 1, out);
	said[n] = '\0';
	status = pclose(out);
	tu_rmtree(dir);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

START_TEST(metrics_count_requests_by_route_template)
{
	daemon_proc d = { 0 };
	char *text, said[4096];
	reply r;
	int i;

	daemon_start(&d, NULL, NULL);
	for (i = 0; i < 3; i++) {
		request(&d, "GET", "/health", NULL, NULL, NULL, 0, &r);
		reply_free(&r);
	}
	for (i = 0; i < 2; i++) {
		request(&d, "GET", "/v1/download/status/0b1e2f8a-4c55-4d9e-9a43-4f1a3c5e7d21",
		        NULL, NULL, NULL, 0, &r);
		ck_assert_int_eq(r.status, 404);
		reply_free(&r);
	}
	request(&d, "BREW", "/no/such/path", NULL, NULL, NULL, 0, &r);
	reply_free(&r);
	text = scrape(&d);
	ck_assert_double_eq(series_value(text, "http_requests_total{method=\"GET\","
	                                 "route=\"/health\",status=\"200\"}"), 3);
	ck_assert_double_eq(series_value(text, "http_requests_total{method=\"GET\","
	                                 "route=\"/v1/download/status/{jobId}\",status=\"404\"}"), 2);
	ck_assert_double_eq(series_value(text, "http_requests_total{method=\"OTHER\","
	                                 "route=\"unmatched\",status=\"404\"}"), 1);
	ck_assert_double_eq(series_value(text, "http_request_duration_seconds_count"
	                                 "{method=\"GET\",route=\"/health\"}"), 3);
	/* Paths never become labels: their number has no bound. */
	ck_assert_ptr_null(strstr(text, "0b1e2f8a"));
	ck_assert_ptr_null(strstr(text, "/no/such/path"));
	ck_assert_double_ge(series_value(text, "storage_requests_total{operation=\"ping\","
	                                 "result=\"ok\"}"), 1);
	ck_assert_double_gt(series_value(text, "process_resident_memory_bytes"), 0);
	ck_assert_double_ge(series_value(text, "process_open_fds"), 3);
	ck_assert_double_eq(series_value(text, "octopus_build_info{version=\"" OCTO_VERSION "\"}"), 1);
	ck_assert_double_eq(series_value(text, "log_records_dropped_total"), 0);
	if (!tool_missing("promtool"))
		ck_assert_msg(promtool_check_metrics(text, said, sizeof(said)) == 0,
		              "promtool check metrics: %s", said);
	free(text);
	ck_assert_int_eq(daemon_stop(&d), 0);
}
END_TEST

START_TEST(job_metrics_follow_a_job_to_its_end)
{
	static const char *const env[] = {
		"DOWNLOAD_DELAY_MIN_MS=10", "DOWNLOAD_DELAY_MAX_MS=20", NULL
	};
	daemon_proc d = { 0 };
	char job_id[37], *text;

	daemon_start(&d, env, NULL);
	initiate(&d, "{\"file_ids\":[70101,70102]}", job_id);
	octo_json_free(await_job(&d, job_id, finished));
	text = scrape(&d);
	ck_assert_double_eq(series_value(text, "download_jobs_submitted_total"), 1);
	ck_assert_double_eq(series_value(text, "download_jobs_total{status=\"completed\"}"), 1);
	ck_assert_double_eq(series_value(text, "download_jobs_total{status=\"failed\"}"), 0);
	ck_assert_double_eq(series_value(text, "download_processing_duration_seconds_count"), 2);
	ck_assert_double_eq(series_value(text, "active_downloads"), 0);
	ck_assert_double_eq(series_value(text, "download_queue_depth"), 0);
	ck_assert_double_eq(series_value(text, "download_files_retried_total"), 0);
	ck_assert_double_ge(series_value(text, "storage_requests_total{operation=\"put\","
	                                 "result=\"ok\"}"), 3);
	free(text);
	ck_assert_int_eq(daemon_stop(&d), 0);
}
END_TEST

/* A real Prometheus, scraping every second: what it stores is what
 * octopusd counted. */
static pid_t prometheus_start(const daemon_proc *target, char dir[256], int *port)
{
	char config[600], path[300], flag_config[320], flag_data[320], flag_listen[64];
	int lfd = listen_loopback(port), out[2];
	pid_t pid;

	close(lfd); /* the port was free a moment ago: Prometheus takes it */
	tu_mkdtemp(dir);
	snprintf(config, sizeof(config),
	         "global:\n  scrape_interval: 1s\n"
	         "scrape_configs:\n  - job_name: octopus\n    static_configs:\n"
	         "      - targets: ['127.0.0.1:%d']\n", target->port);
	snprintf(path, sizeof(path), "%s/prometheus.yml", dir);
	tu_write_file(path, config, strlen(config));
	snprintf(flag_config, sizeof(flag_config), "--config.file=%s", path);
	snprintf(flag_data, sizeof(flag_data), "--storage.tsdb.path=%s/data", dir);
	snprintf(flag_listen, sizeof(flag_listen), "--web.listen-address=127.0.0.1:%d", *port);
	ck_assert_int_eq(pipe(out), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(out[1], STDERR_FILENO);
		execlp("prometheus", "prometheus", flag_config, flag_data, flag_listen,
		       (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	{
		char line[2048];
		int ready = 0;
		while (!ready && read_line(out[0], line, sizeof(line), 60000) >= 0)
			ready = strstr(line, "Server is ready to receive web requests") != NULL;
		close(out[0]);
		ck_assert_msg(ready, "Prometheus did not start");
	}
	return pid;
}

/* Asks Prometheus's query API; returns the first sample's value or -1. */
static double prometheus_query(int port, const char *query)
{
	daemon_proc api = { 0 };
	char path[512], *escaped;
	double value = -1;
	const char *v;
	reply r;
	CURL *c = curl_easy_init();

	escaped = curl_easy_escape(c, query, 0);
	curl_easy_cleanup(c);
	snprintf(api.base, sizeof(api.base), "http://127.0.0.1:%d", port);
	snprintf(path, sizeof(path), "/api/v1/query?query=%s", escaped);
	curl_free(escaped);
	request(&api, "GET", path, NULL, NULL, NULL, 0, &r);
	ck_assert_int_eq(r.status, 200);
	/* "value":[<time>,"<value>"] of the first result, if any */
	if ((v = strstr(r.body, "\"value\":[")) && (v = strchr(v, ',')) && v[1] == '"')
		value = strtod(v + 2, NULL);
	reply_free(&r);
	return value;
}

START_TEST(prometheus_scrapes_octopusd)
{
	daemon_proc d = { 0 };
	char dir[256];
	double health = -1, up = -1;
	int port, i, status;
	pid_t prom;
	reply r;

	if (tool_missing("prometheus"))
		return;
	daemon_start(&d, NULL, NULL);
	for (i = 0; i < 5; i++) {
		request(&d, "GET", "/health", NULL, NULL, NULL, 0, &r);
		reply_free(&r);
	}
	prom = prometheus_start(&d, dir, &port);
	/* No event tells when a scrape landed: ask until it has (bounded). */
	for (i = 0; i < 300 && health != 5; i++) {
		struct timespec tick = { 0, 100 * 1000000L };
		health = prometheus_query(port, "http_requests_total{job=\"octopus\","
		                                "route=\"/health\",method=\"GET\",status=\"200\"}");
		if (health != 5)
			nanosleep(&tick, NULL);
	}
	up = prometheus_query(port, "up{job=\"octopus\"}");
	kill(prom, SIGTERM);
	waitpid(prom, &status, 0);
	tu_rmtree(dir);
	ck_assert_double_eq(health, 5);
	ck_assert_double_eq(up, 1);
	ck_assert_int_eq(daemon_stop(&d), 0);
}
END_TEST

/* Reads the log file until a line containing `text` (the access log line
 * is written just after the answer is queued); returns it parsed. */
static octo_json *log_line_with(const char *path, const char *text)
{
	int i;

	for (i = 0; i < 500; i++) {
		struct timespec tick = { 0, 20 * 1000000L };
		FILE *f = fopen(path, "r");
		char line[8192];
		octo_json *doc = NULL;

		while (f && fgets(line, sizeof(line), f))
			if (strstr(line, text)) {
				fclose(f);
				ck_assert_msg(octo_json_parse(&doc, line, strlen(line)) == 0,
				              "log line is not JSON: %s", line);
				return doc;
			}
		if (f)
			fclose(f);
		nanosleep(&tick, NULL);
	}
	ck_abort_msg("no log line with %s in %s", text, path);
	return NULL;
}

/* Every line of the file is a JSON object with the fields every line has. */
static size_t assert_log_file_well_formed(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[8192];
	size_t lines = 0;

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		octo_json *doc = NULL;
		ck_assert_msg(octo_json_parse(&doc, line, strlen(line)) == 0, "not JSON: %s", line);
		ck_assert_str_eq(str_member(doc, "service"), "octopus-api");
		ck_assert_uint_eq(strlen(str_member(doc, "timestamp")), 24);
		ck_assert_ptr_nonnull(str_member(doc, "level"));
		ck_assert_ptr_nonnull(str_member(doc, "message"));
		octo_json_free(doc);
		lines++;
	}
	fclose(f);
	return lines;
}

#define TRACE_ID "4bf92f3577b34da6a3ce929d0e0e4736"

START_TEST(request_and_trace_ids_lead_from_the_response_to_the_log)
{
	daemon_proc d = { 0 };
	char env_file[320], path[300], got[128], fresh_trace[40];
	const char *env[] = { "LOG_LEVEL=info", env_file, NULL };
	octo_json *line;
	reply r;

	tu_mkdtemp(d.dir);
	d.keep_dir = 1;
	snprintf(path, sizeof(path), "%s/octopusd.log", d.dir);
	snprintf(env_file, sizeof(env_file), "LOG_FILE=%s", path);
	daemon_start(&d, env, NULL);

	request(&d, "GET", "/health", NULL, "traceparent: 00-" TRACE_ID "-00f067aa0ba902b7-01",
	        NULL, 0, &r);
	ck_assert(header(&r, "traceparent", got, sizeof(got)));
	ck_assert(strncmp(got, "00-" TRACE_ID "-", 36) == 0);
	ck_assert(strncmp(got + 36, "00f067aa0ba902b7", 16) != 0); /* our own span */
	ck_assert(header(&r, "X-Request-ID", got, sizeof(got)));
	line = log_line_with(path, got);
	ck_assert_str_eq(str_member(line, "request_id"), got);
	ck_assert_str_eq(str_member(line, "trace_id"), TRACE_ID);
	ck_assert_str_eq(str_member(line, "method"), "GET");
	ck_assert_str_eq(str_member(line, "route"), "/health");
	ck_assert_str_eq(str_member(line, "path"), "/health");
	ck_assert_int_eq(int_member(line, "status"), 200);
	ck_assert_int_eq(int_member(line, "bytes"), (int64_t)r.body_len);
	ck_assert_str_eq(str_member(line, "client"), "127.0.0.1");
	ck_assert_str_eq(str_member(line, "level"), "info");
	ck_assert_int_eq(octo_json_typeof(member(line, "duration_ms")), OCTO_JSON_NUMBER);
	octo_json_free(line);
	reply_free(&r);

	/* No traceparent (or a bad one): a new trace, named in the answer. */
	request(&d, "GET", "/", NULL, "traceparent: 00-" TRACE_ID "-0000000000000000-01",
	        NULL, 0, &r);
	ck_assert(header(&r, "traceparent", got, sizeof(got)));
	ck_assert_uint_eq(strlen(got), 55);
	ck_assert(strncmp(got + 3, TRACE_ID, 32) != 0);
	snprintf(fresh_trace, sizeof(fresh_trace), "%.32s", got + 3);
	line = log_line_with(path, fresh_trace);
	ck_assert_str_eq(str_member(line, "route"), "/");
	octo_json_free(line);
	reply_free(&r);

	/* Hostile bytes in what is logged still make JSON lines. */
	request(&d, "GET", "/%22%0a%ff%c0%af\\\"}{", NULL, "X-Request-ID: hostile-1", NULL, 0, &r);
	ck_assert_int_eq(r.status, 404);
	reply_free(&r);
	octo_json_free(log_line_with(path, "hostile-1"));
	ck_assert_uint_ge(assert_log_file_well_formed(path), 4);
	d.keep_dir = 0;
	ck_assert_int_eq(daemon_stop(&d), 0);
}
END_TEST

START_TEST(sighup_reopens_a_rotated_log_file)
{
	daemon_proc d = { 0 };
	char env_file[320], path[300], moved[310], id[64];
	const char *env[] = { "LOG_LEVEL=info", env_file, NULL };
	struct stat st;
	reply r;
	int i;

	tu_mkdtemp(d.dir);
	d.keep_dir = 1;
	snprintf(path, sizeof(path), "%s/octopusd.log", d.dir);
	snprintf(moved, sizeof(moved), "%s.1", path);
	snprintf(env_file, sizeof(env_file), "LOG_FILE=%s", path);
	daemon_start(&d, env, NULL);
	request(&d, "GET", "/health", NULL, "X-Request-ID: before-rotation", NULL, 0, &r);
	reply_free(&r);
	octo_json_free(log_line_with(path, "before-rotation"));
	ck_assert_int_eq(rename(path, moved), 0);
	ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
	/* The signal is handled asynchronously: log until the new file shows up. */
	for (i = 0; i < 500 && stat(path, &st) != 0; i++) {
		struct timespec tick = { 0, 20 * 1000000L };
		snprintf(id, sizeof(id), "X-Request-ID: after-rotation-%d", i);
		request(&d, "GET", "/health", NULL, id, NULL, 0, &r);
		reply_free(&r);
		nanosleep(&tick, NULL);
	}
	request(&d, "GET", "/health", NULL, "X-Request-ID: surely-after", NULL, 0, &r);
	reply_free(&r);
	octo_json_free(log_line_with(path, "surely-after"));
	octo_json_free(log_line_with(moved, "before-rotation"));
	ck_assert_uint_ge(assert_log_file_well_formed(moved), 1);
	ck_assert_uint_ge(assert_log_file_well_formed(path), 1);
	d.keep_dir = 0;
	ck_assert_int_eq(daemon_stop(&d), 0);
}
END_TEST

/* Stands in for Elasticsearch, which cannot be installed here: accepts
 * _bulk requests, answers as Elasticsearch does, and reports on `report`
 * the first bulk body that mentions `wanted`, with its Content-Type. */
static pid_t bulk_receiver(int *port, int report, const char *wanted)
{
	static const char answer[] =
		"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 35\r\n"
		"Connection: close\r\n\r\n{\"took\":1,\"errors\":false,\"items\":[]}";
	int lfd = listen_loopback(port);
	pid_t pid = fork();

	if (pid != 0) {
		close(lfd);
		return pid;
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		const char *body;
		char *req = read_request(fd, &body), type[128] = "";
		int found = strncmp(req, "POST /_bulk ", 12) == 0 && strstr(body, wanted);

		header_value(req, "Content-Type:", type, sizeof(type));
		send(fd, answer, sizeof(answer) - 1, MSG_NOSIGNAL);
		close(fd);
		if (found) {
			const char *doc = strstr(body, wanted);
			while (doc > body && doc[-1] != '\n')
				doc--;
			dprintf(report, "%s\n%.*s\n", type, (int)strcspn(doc, "\n"), doc);
			_exit(0);
		}
		free(req);
	}
}

START_TEST(log_records_reach_elasticsearch_with_their_ids)
{
	daemon_proc d = { 0 };
	char es_url[64], type[128], doc_text[8192], request_id[64];
	const char *env[] = { "LOG_LEVEL=info", es_url, NULL };
	int port, fd[2], status;
	octo_json *doc = NULL;
	pid_t receiver;
	reply r;

	ck_assert_int_eq(pipe(fd), 0);
	receiver = bulk_receiver(&port, fd[1], "\"http.request.id\":\"es-e2e-1\"");
	close(fd[1]);
	snprintf(es_url, sizeof(es_url), "ELASTICSEARCH_URL=http://127.0.0.1:%d", port);
	daemon_start(&d, env, NULL);
	request(&d, "GET", "/health", NULL, "X-Request-ID: es-e2e-1", NULL, 0, &r);
	ck_assert(header(&r, "X-Request-ID", request_id, sizeof(request_id)));
	reply_free(&r);
	ck_assert_int_gt(read_line(fd[0], type, sizeof(type), 30000), 0);
	ck_assert_str_eq(type, "application/x-ndjson");
	ck_assert_int_gt(read_line(fd[0], doc_text, sizeof(doc_text), 5000), 0);
	close(fd[0]);
	waitpid(receiver, &status, 0);
	ck_assert_msg(octo_json_parse(&doc, doc_text, strlen(doc_text)) == 0, "%s", doc_text);
	ck_assert_str_eq(str_member(doc, "http.request.id"), request_id);
	ck_assert_str_eq(str_member(doc, "service.name"), "octopus-api");
	ck_assert_str_eq(str_member(doc, "log.level"), "info");
	ck_assert_uint_eq(strlen(str_member(doc, "trace.id")), 32);
	ck_assert_ptr_nonnull(str_member(doc, "@timestamp"));
	octo_json_free(doc);
	ck_assert_int_eq(daemon_stop(&d), 0);
}
END_TEST

#endif /* OCTO_E2E_S3 */

/* ---- the gateway ----------------------------------------------------------- */

/* nginx in front of octopusd, as docker/nginx.conf configures it. Each
 * test has its own octopusd (or two) and its own nginx. */
#ifdef OCTO_E2E_GATEWAY

static void gateway_case_up(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void gateway_case_down(void)
{
	curl_global_cleanup();
}

/* How many times the response carries header `name`. */
static int header_count(const reply *r, const char *name)
{
	size_t n = strlen(name);
	const char *p = r->headers;
	int count = 0;

	while (p && (p = strstr(p, "\r\n")) != NULL) {
		p += 2;
		if (strncasecmp(p, name, n) == 0 && p[n] == ':')
			count++;
	}
	return count;
}

/* The headers every answer of the gateway has, each exactly once: set by
 * octopusd or added by nginx, never both. */
static void assert_gateway_headers(const reply *r)
{
	static const char *const once[] = {
		"X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy",
		"Content-Security-Policy", "X-Request-ID", "Server",
	};
	char csp[256];
	size_t i;

	for (i = 0; i < sizeof(once) / sizeof(once[0]); i++)
		ck_assert_msg(header_count(r, once[i]) == 1, "%s %d times in:\n%s", once[i],
		              header_count(r, once[i]), r->headers);
	assert_header(r, "X-Content-Type-Options", "nosniff");
	assert_header(r, "X-Frame-Options", "SAMEORIGIN");
	assert_header(r, "Referrer-Policy", "no-referrer");
	ck_assert(header(r, "Content-Security-Policy", csp, sizeof(csp)));
	ck_assert_ptr_nonnull(strstr(csp, "default-src 'none'"));
	ck_assert_ptr_nonnull(strstr(csp, "frame-ancestors 'none'"));
	assert_header(r, "Server", "nginx"); /* and no version */
}

/* octopusd sends traceparent on every answer: without it, nginx answered
 * alone. */
static int from_octopusd(const reply *r)
{
	return header_count(r, "traceparent") == 1;
}

/* Sends the same request until the gateway refuses one with 429 (at most
 * `max` of them); the 429 is left in `r`. */
static void burst_until_429(const daemon_proc *front, const char *method, const char *path,
                            const char *body, int max, reply *r)
{
	int i;

	for (i = 0; i < max; i++) {
		request(front, method, path, body ? "application/json" : NULL, NULL, body,
		        body ? strlen(body) : 0, r);
		if (r->status == 429)
			return;
		reply_free(r);
	}
	ck_abort_msg("%d requests to %s and no 429", max, path);
}

/* How many times `text` is in the file at `path`. */
static int count_in_file(const char *path, const char *text)
{
	char *all = file_text(path);
	const char *p = all;
	int count = 0;

	while ((p = strstr(p, text)) != NULL) {
		count++;
		p += strlen(text);
	}
	free(all);
	return count;
}

/* Drives the transfers of `multi` until `until` is in the body collected
 * in `r` or the transfers end (each has its own timeout); returns whether
 * they still run. */
static int pump(CURLM *multi, const reply *r, const char *until)
{
	int running = 1;

	for (;;) {
		curl_multi_perform(multi, &running);
		if (!running || (until && r->body && strstr(r->body, until)))
			return running;
		curl_multi_poll(multi, NULL, 0, 100, NULL);
	}
}

/* The result of the one transfer of `multi` that ended. */
static CURLcode transfer_result(CURLM *multi)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(multi, &left)) != NULL)
		if (m->msg == CURLMSG_DONE)
			return m->data.result;
	ck_abort_msg("no transfer ended");
	return CURLE_OK;
}

/* Events pass through nginx one by one as octopusd sends them, instead
 * of being gathered until the stream ends: the job's first event arrives
 * while its one file still has ten minutes to go (octopusd, asked
 * directly at that moment, says it is not done), heartbeats follow, and
 * the stream ends with the job's last event when it is cancelled. */
START_TEST(events_pass_through_the_gateway_as_they_happen)
{
	static const char *const env[] = {
		"DOWNLOAD_DELAY_MIN_MS=600000", "DOWNLOAD_DELAY_MAX_MS=600000",
		"OCTO_SSE_HEARTBEAT_MS=200", NULL
	};
	daemon_proc d = { 0 };
	daemon_proc *replicas[] = { &d };
	gateway_proc g = { 0 };
	char job_id[37], path[128];
	CURLM *multi = curl_multi_init();
	unsigned long long last;
	char *stream_text;
	CURL *stream;
	octo_json *doc;
	reply events, r;

	daemon_start(&d, env, NULL);
	gateway_start(&g, replicas, 1);
	initiate(&g.front, "{\"file_ids\":[70200]}", job_id);
	snprintf(path, sizeof(path), "/v1/download/%s/events", job_id);
	stream = prepare(&g.front, "GET", path, NULL, NULL, 0, &events);
	/* As browsers do: a gateway compressing responses must not hold
	 * events back in its compressor. */
	curl_easy_setopt(stream, CURLOPT_ACCEPT_ENCODING, "");
	curl_multi_add_handle(multi, stream);

	ck_assert_msg(pump(multi, &events, "}\n\n"), "the stream ended before its first event: %s",
	              events.body ? events.body : "");
	ck_assert_ptr_nonnull(strstr(events.body, "\ndata: {\"jobId\":"));
	doc = job_status(&d, job_id);
	ck_assert_msg(!finished(doc), "job already %s", str_member(doc, "status"));
	octo_json_free(doc);
	ck_assert(pump(multi, &events, ": heartbeat\n\n"));

	snprintf(path, sizeof(path), "/v1/download/%s", job_id);
	request(&g.front, "DELETE", path, NULL, NULL, NULL, 0, &r);
	ck_assert_int_eq(r.status, 200);
	reply_free(&r);
	ck_assert(!pump(multi, &events, NULL));
	ck_assert_int_eq(transfer_result(multi), CURLE_OK);
	curl_multi_remove_handle(multi, stream);
	finish(stream, &events);
	curl_multi_cleanup(multi);
	ck_assert_int_eq(events.status, 200);
	assert_header(&events, "Content-Type", "text/event-stream; charset=utf-8");
	/* check_events() finds events after a line break: give the first one its own. */
	stream_text = malloc(events.body_len + 2);
	snprintf(stream_text, events.body_len + 2, "\n%s", events.body);
	ck_assert_int_ge(check_events(stream_text, "cancelled", &last), 2);
	free(stream_text);
	reply_free(&events);
	gateway_stop(&g);
	ck_assert_int_eq(daemon_stop(&d), 0);
}
END_TEST

/* /metrics is for Prometheus on the internal network: the gateway
 * answers 403 in octopusd's error shape however the path is spelled,
 * while octopusd itself serves it. */
/* The reference page and its document pass through the gateway as
 * octopusd sends them: nginx's own policy (default-src 'none') would stop
 * the page's inline script, so octopusd's must be the one that arrives. */
START_TEST(the_docs_page_passes_through_the_gateway_with_its_own_policy)
{
	daemon_proc d = { 0 };
	daemon_proc *replicas[] = { &d };
	gateway_proc g = { 0 };
	char csp[512];
	octo_json *doc;
	reply r;

	daemon_start(&d, NULL, NULL);
	gateway_start(&g, replicas, 1);
	request(&g.front, "GET", "/docs", NULL, NULL, NULL, 0, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert(from_octopusd(&r));
	assert_header(&r, "Content-Type", "text/html; charset=utf-8");
	ck_assert_int_eq(header_count(&r, "Content-Security-Policy"), 1);
	ck_assert(header(&r, "Content-Security-Policy", csp, sizeof(csp)));
	ck_assert_ptr_nonnull(strstr(csp, "script-src 'unsafe-inline'"));
	ck_assert_ptr_nonnull(strstr(csp, "connect-src 'self'"));
	ck_assert_ptr_nonnull(strstr(r.body, "openapi"));
	reply_free(&r);
	request(&g.front, "GET", "/openapi", NULL, NULL, NULL, 0, &r);
	ck_assert_int_eq(r.status, 200);
	assert_header(&r, "Content-Type", "application/json; charset=utf-8");
	doc = parse(&r);
	ck_assert_str_eq(str_member(doc, "openapi"), "3.0.3");
	octo_json_free(doc);
	reply_free(&r);
	gateway_stop(&g);
	ck_assert_int_eq(daemon_stop(&d), 0);
}
END_TEST

START_TEST(metrics_are_closed_at_the_gateway)
{
	static const char *const paths[] = {
		"/metrics", "/metrics?format=text", "//metrics", "/%6detrics", "/metrics/",
	};
	daemon_proc d = { 0 };
	daemon_proc *replicas[] = { &d };
	gateway_proc g = { 0 };
	size_t i;
	reply r;

	daemon_start(&d, NULL, NULL);
	gateway_start(&g, replicas, 1);
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		request(&g.front, "GET", paths[i], NULL, NULL, NULL, 0, &r);
		assert_error(&r, 403, "gateway");
		ck_assert_msg(!from_octopusd(&r), "%s reached octopusd", paths[i]);
		assert_header(&r, "Content-Type", "application/json; charset=utf-8");
		assert_gateway_headers(&r);
		reply_free(&r);
	}
	request(&d, "GET", "/metrics", NULL, NULL, NULL, 0, &r);
	ck_assert_int_eq(r.status, 200);
	assert_header(&r, "Content-Type", OCTO_METRICS_CONTENT_TYPE);
	ck_assert_ptr_nonnull(strstr(r.body, "http_requests_total"));
	reply_free(&r);
	gateway_stop(&g);
	ck_assert_int_eq(daemon_stop(&d), 0);
}
END_TEST

/* A flood gets 429 from nginx, in octopusd's error shape, with the
 * gateway's headers and a Retry-After. New work has a lower limit of its
 * own; health probes have none. */
START_TEST(a_burst_over_the_limit_gets_429)
{
	daemon_proc d = { 0 };
	daemon_proc *replicas[] = { &d };
	gateway_proc g = { 0 };
	reply r;
	int i;

	daemon_start(&d, NULL, NULL);
	gateway_start(&g, replicas, 1);
	/* octopusd refuses "{}" with 400, but each try counts at the gateway. */
	burst_until_429(&g.front, "POST", "/v1/download/initiate", "{}", 200, &r);
	assert_error(&r, 429, "Too many requests");
	ck_assert(!from_octopusd(&r));
	reply_free(&r);
	request(&g.front, "GET", "/", NULL, NULL, NULL, 0, &r);
	ck_assert_int_eq(r.status, 200); /* that limit is for new work only */
	reply_free(&r);

	burst_until_429(&g.front, "GET", "/", NULL, 5000, &r);
	assert_error(&r, 429, "Too many requests");
	ck_assert(!from_octopusd(&r));
	assert_header(&r, "Content-Type", "application/json; charset=utf-8");
	assert_header(&r, "Retry-After", "1");
	assert_gateway_headers(&r);
	reply_free(&r);
	for (i = 0; i < 3; i++) {
		request(&g.front, "GET", "/health", NULL, NULL, NULL, 0, &r);
		ck_assert_int_eq(r.status, 200);
		reply_free(&r);
	}
	gateway_stop(&g);
	ck_assert_int_eq(daemon_stop(&d), 0);
}
END_TEST

/* Replicas on one data directory sign download URLs with one secret, so
 * that any of them serves a URL another made. */
#define REPLICA_SECRET "replicas-share-this-url-secret-0123456789"
/* octopusd's debug line for a request suspended until its answer is ready. */
#define WAITING "request waiting for its answer"

/* Two replicas on one data directory behind nginx; one is killed with
 * SIGKILL while it holds a POST. The client of that POST gets 502: nginx
 * did not send it again to the other replica, where it could have run a
 * second time. Idempotent requests all succeed: those nginx sends to the
 * dead replica, it passes on to the live one, as its access log shows. */
START_TEST(idempotent_requests_survive_a_killed_replica)
{
	struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	const char *body = "{\"file_id\":70211}";
	char dir[256], env_log[2][320], log[2][300], nginx_log[300], job_id[37], path[128];
	char text[160];
	const char *env[2][6];
	daemon_proc replica[2] = { { 0 }, { 0 } };
	daemon_proc *replicas[] = { &replica[0], &replica[1] };
	daemon_proc *holder = NULL, *other = NULL;
	const char *other_log = NULL;
	int waiting[2], other_waiting = 0;
	gateway_proc g = { 0 };
	CURLM *multi = curl_multi_init();
	CURL *slow;
	octo_json *line;
	reply rs, r;
	int i;

	tu_mkdtemp(dir);
	for (i = 0; i < 2; i++) {
		snprintf(replica[i].dir, sizeof(replica[i].dir), "%s", dir);
		replica[i].keep_dir = 1;
		snprintf(log[i], sizeof(log[i]), "%s/replica-%d.log", dir, i);
		snprintf(env_log[i], sizeof(env_log[i]), "LOG_FILE=%s/replica-%d.log", dir, i);
		env[i][0] = "OCTO_URL_SECRET=" REPLICA_SECRET;
		env[i][1] = "DOWNLOAD_DELAY_MIN_MS=600000";
		env[i][2] = "DOWNLOAD_DELAY_MAX_MS=600000";
		env[i][3] = "LOG_LEVEL=debug";
		env[i][4] = env_log[i];
		env[i][5] = NULL;
	}
	/* A job both serve: its file is stored, so it completes at once, and
	 * the second replica loads it from storage when it starts (octopusd
	 * reads jobs from storage only then). */
	daemon_start(&replica[0], env[0], NULL);
	free(put_file(&replica[0], 70210, 100));
	initiate(&replica[0], "{\"file_ids\":[70210]}", job_id);
	octo_json_free(await_job(&replica[0], job_id, finished));
	daemon_start(&replica[1], env[1], NULL);
	octo_json_free(job_status(&replica[1], job_id));
	gateway_start(&g, replicas, 2);
	gateway_file(&g, "access.log", nginx_log);

	/* The legacy call waits in whichever replica got it (the file takes
	 * ten minutes there), which logs one more waiting request: kill that
	 * one. */
	for (i = 0; i < 2; i++)
		waiting[i] = count_in_file(log[i], WAITING);
	slow = prepare(&g.front, "POST", "/v1/download/start", hdrs, body, strlen(body), &rs);
	curl_easy_setopt(slow, CURLOPT_TIMEOUT, 60L);
	curl_multi_add_handle(multi, slow);
	for (i = 0; !holder; i++) { /* no event to wait on but the log: poll, 10 s at most */
		int running = 0, h;
		curl_multi_perform(multi, &running);
		ck_assert_msg(running && i < 500, "no replica took the POST");
		for (h = 0; h < 2 && !holder; h++)
			if (count_in_file(log[h], WAITING) > waiting[h]) {
				holder = &replica[h];
				other = &replica[1 - h];
				other_log = log[1 - h];
				other_waiting = waiting[1 - h];
			}
		if (!holder)
			curl_multi_poll(multi, NULL, 0, 20, NULL);
	}
	daemon_crash(holder);
	ck_assert(!pump(multi, &rs, NULL));
	ck_assert_int_eq(transfer_result(multi), CURLE_OK);
	curl_multi_remove_handle(multi, slow);
	finish(slow, &rs);
	curl_multi_cleanup(multi);
	curl_slist_free_all(hdrs);
	assert_error(&rs, 502, "could not be reached");
	ck_assert_int_eq(count_in_file(other_log, WAITING), other_waiting);
	reply_free(&rs);

	snprintf(path, sizeof(path), "/v1/download/status/%s", job_id);
	for (i = 0; i < 10; i++) {
		request(&g.front, "GET", "/health", NULL, NULL, NULL, 0, &r);
		ck_assert_int_eq(r.status, 200);
		reply_free(&r);
		request(&g.front, "GET", path, NULL, NULL, NULL, 0, &r);
		ck_assert_int_eq(r.status, 200);
		reply_free(&r);
	}
	snprintf(text, sizeof(text), "\"upstream\":\"127.0.0.1:%d, 127.0.0.1:%d\"", holder->port,
	         other->port);
	line = log_line_with(nginx_log, text);
	ck_assert_str_eq(str_member(line, "method"), "GET");
	ck_assert_int_eq(int_member(line, "status"), 200);
	octo_json_free(line);
	line = log_line_with(nginx_log, "\"path\":\"/v1/download/start\"");
	snprintf(text, sizeof(text), "127.0.0.1:%d", holder->port);
	ck_assert_str_eq(str_member(line, "upstream"), text);
	ck_assert_int_eq(int_member(line, "status"), 502);
	octo_json_free(line);
	gateway_stop(&g);
	ck_assert_int_eq(daemon_stop(other), 0);
}
END_TEST

/* Two replicas share their storage, and it fails: clients see
 * octopusd's own 503 every time, never nginx's 502, and the first request
 * after storage is back succeeds. (Were 503 a reason to try the next
 * replica, each such answer would count against the replica, and nginx
 * would soon take both out of rotation and answer 502 to everything.) */
START_TEST(a_storage_outage_reaches_clients_as_octopusd_s_503)
{
	static const char *const env[] = {
		"OCTO_URL_SECRET=" REPLICA_SECRET, "OCTO_HEALTH_CACHE_MS=0", NULL
	};
	daemon_proc replica[2] = { { 0 }, { 0 } };
	daemon_proc *replicas[] = { &replica[0], &replica[1] };
	gateway_proc g = { 0 };
	reply r;
	int i;

	daemon_start(&replica[0], env, NULL);
	snprintf(replica[1].dir, sizeof(replica[1].dir), "%s", replica[0].dir);
	replica[1].keep_dir = 1;
	daemon_start(&replica[1], env, NULL);
	gateway_start(&g, replicas, 2);
	break_storage(&replica[0], 1);
	for (i = 0; i < 8; i++) { /* enough for max_fails=3 on both replicas */
		request(&g.front, "GET", "/health", NULL, NULL, NULL, 0, &r);
		ck_assert_msg(r.status == 503 && from_octopusd(&r), "%ld: %s", r.status, r.body);
		ck_assert_str_eq(r.body, "{\"status\":\"unhealthy\",\"checks\":{\"storage\":\"error\"}}");
		reply_free(&r);
	}
	break_storage(&replica[0], 0);
	request(&g.front, "GET", "/health", NULL, NULL, NULL, 0, &r);
	ck_assert_int_eq(r.status, 200);
	reply_free(&r);
	gateway_stop(&g);
	ck_assert_int_eq(daemon_stop(&replica[1]), 0);
	ck_assert_int_eq(daemon_stop(&replica[0]), 0);
}
END_TEST

/* With S3 on the internal network only, a job's download URLs name the
 * gateway (S3_PUBLIC_URL), whose /storage/ passes them to the S3 server
 * untouched: the signature still holds, and a tampered one does not.
 * Only reads pass. */
START_TEST(presigned_downloads_pass_through_the_gateway_to_storage)
{
	char endpoint[96], public_url[96], storage_prefix[128], *url, *bad, *sig;
	daemon_proc d = { 0 };
	daemon_proc *replicas[] = { &d };
	gateway_proc g = { 0 };
	const octo_json_value *file;
	ts3_server st;
	char job_id[37];
	const char *signed_url;
	int64_t size = 0;
	octo_json *doc;
	reply r;

	ck_assert_msg(ts3_available(), "no S3 server (OCTO_S3_SERVER, npm ci in tests/s3)");
	ts3_start(&st);
	close(listen_loopback(&g.front.port)); /* the gateway's, known to octopusd first */
	snprintf(endpoint, sizeof(endpoint), "S3_ENDPOINT=%s", st.endpoint);
	snprintf(public_url, sizeof(public_url), "S3_PUBLIC_URL=http://127.0.0.1:%d/storage",
	         g.front.port);
	{
		const char *const env[] = {
			endpoint, public_url, "S3_BUCKET_NAME=" TS3_BUCKET,
			"S3_ACCESS_KEY_ID=" TS3_ACCESS_KEY, "S3_SECRET_ACCESS_KEY=" TS3_SECRET_KEY,
			"DOWNLOAD_DELAY_MIN_MS=10", "DOWNLOAD_DELAY_MAX_MS=50", NULL
		};
		daemon_start(&d, env, NULL);
	}
	snprintf(g.storage, sizeof(g.storage), "%s", st.endpoint + strlen("http://"));
	gateway_start(&g, replicas, 1);

	initiate(&g.front, "{\"file_ids\":[70500]}", job_id);
	doc = await_job(&g.front, job_id, finished);
	ck_assert_str_eq(str_member(doc, "status"), "completed");
	file = octo_json_at(member(doc, "files"), 0);
	ck_assert_int_eq(octo_json_string(octo_json_get(file, "downloadUrl"), &signed_url), 0);
	ck_assert_int_eq(octo_json_int(octo_json_get(file, "size"), &size), 0);
	url = strdup(signed_url);
	octo_json_free(doc);
	snprintf(storage_prefix, sizeof(storage_prefix), "%s/storage/" TS3_BUCKET "/",
	         g.front.base);
	ck_assert_msg(strncmp(url, storage_prefix, strlen(storage_prefix)) == 0, "%s", url);

	ck_assert_int_eq(fetch(url, &r), 200);
	ck_assert_int_eq((int64_t)r.body_len, size);
	reply_free(&r);
	/* The S3 server, not the gateway, judges the signature. */
	bad = strdup(url);
	ck_assert_ptr_nonnull(sig = strstr(bad, "Signature="));
	sig += strlen("Signature=");
	*sig = *sig == 'A' ? 'B' : 'A'; /* another signature */
	ck_assert_int_eq(fetch(bad, &r), 403);
	ck_assert_ptr_nonnull(strstr(r.body, "<Error>"));
	reply_free(&r);
	free(bad);
	/* Nothing but presigned reads of objects: MinIO's own paths, a bare
	 * listing, an unsigned object and /storage itself are the gateway's
	 * 404, never passed on. */
	{
		static const char *const closed[] = {
			"/storage/minio/v2/metrics/cluster", "/storage/minio/health/live",
			"/storage/", "/storage", "/storage/" TS3_BUCKET "/",
			"/storage/" TS3_BUCKET "/downloads/70500.zip",
			"/storage/minio/x?Signature=abc",
		};
		size_t i;

		for (i = 0; i < sizeof(closed) / sizeof(closed[0]); i++) {
			request(&g.front, "GET", closed[i], NULL, NULL, NULL, 0, &r);
			ck_assert_msg(r.status == 404 && !from_octopusd(&r), "%s: %ld %s", closed[i],
			              r.status, r.body);
			assert_error(&r, 404, "");
			reply_free(&r);
		}
	}
	/* Nothing but reads: a PUT is refused at the gateway. */
	request(&g.front, "PUT", url + strlen(g.front.base), "text/plain", NULL, "x", 1, &r);
	assert_error(&r, 403, "");
	reply_free(&r);
	free(url);

	gateway_stop(&g);
	ck_assert_int_eq(daemon_stop(&d), 0);
	ts3_destroy(&st);
}
END_TEST

/* What nginx refuses before there is a request to pass on still gets a
 * JSON error: a request line that is not HTTP, a URI over nginx's
 * buffers, and the internal path of those error answers itself. */
START_TEST(malformed_requests_get_json_errors_from_the_gateway)
{
	static const char garbage[] = "GARBAGE\r\n\r\n";
	daemon_proc d = { 0 };
	daemon_proc *replicas[] = { &d };
	gateway_proc g = { 0 };
	char *answer, *long_request;
	octo_json *doc = NULL;
	const char *body;
	reply r;

	daemon_start(&d, NULL, NULL);
	gateway_start(&g, replicas, 1);
	answer = raw_exchange(&g.front, garbage, sizeof(garbage) - 1);
	ck_assert_msg(strncmp(answer, "HTTP/1.1 400", 12) == 0, "got: %.200s", answer);
	ck_assert_ptr_nonnull(strcasestr(answer, "\r\nContent-Type: application/json"));
	body = strstr(answer, "\r\n\r\n");
	ck_assert_ptr_nonnull(body);
	ck_assert_int_eq(octo_json_parse(&doc, body + 4, strlen(body + 4)), 0);
	ck_assert_str_eq(str_member(doc, "error"), "bad_request");
	ck_assert_uint_eq(octo_json_size(octo_json_root(doc)), 3);
	octo_json_free(doc);
	free(answer);

	/* 10 kB of request line; nginx's buffers hold 8 kB. */
	long_request = malloc(10100);
	snprintf(long_request, 10100, "GET /%0*d HTTP/1.1\r\nHost: x\r\n\r\n", 10000, 7);
	answer = raw_exchange(&g.front, long_request, strlen(long_request));
	ck_assert_msg(strncmp(answer, "HTTP/1.1 414", 12) == 0, "got: %.200s", answer);
	ck_assert_ptr_nonnull(strstr(answer, "\"error\":\"uri_too_long\""));
	free(answer);
	free(long_request);

	request(&g.front, "GET", "/.gateway/error/400", NULL, NULL, NULL, 0, &r);
	assert_error(&r, 404, "No such route");
	ck_assert(!from_octopusd(&r));
	reply_free(&r);
	gateway_stop(&g);
	ck_assert_int_eq(daemon_stop(&d), 0);
}
END_TEST

static int hex_id(const char *id)
{
	return strlen(id) == 32 && strspn(id, "0123456789abcdef") == 32;
}

/* Request `id` is in octopusd's log and nginx's, with `status` in both. */
static void assert_logged(const char *octopusd_log, const char *nginx_log, const char *id,
                          int64_t status)
{
	octo_json *line = log_line_with(octopusd_log, id);

	ck_assert_str_eq(str_member(line, "request_id"), id);
	ck_assert_int_eq(int_member(line, "status"), status);
	octo_json_free(line);
	line = log_line_with(nginx_log, id);
	ck_assert_str_eq(str_member(line, "request_id"), id);
	ck_assert_int_eq(int_member(line, "status"), status);
	octo_json_free(line);
}

/* Answers of octopusd (200, 404) and of nginx (429) all carry the
 * gateway's headers once each; one request id leads through the client,
 * nginx's log and octopusd's log, whether the client chose it or nginx
 * made it; nginx's log keeps no download signature. */
START_TEST(headers_and_request_ids_through_the_gateway)
{
	char env_file[320], octopusd_log[300], nginx_log[300], id[160], *all;
	const char *env[] = { "LOG_LEVEL=info", env_file, NULL };
	octo_json *line, *doc;
	reply file;
	daemon_proc d = { 0 };
	daemon_proc *replicas[] = { &d };
	gateway_proc g = { 0 };
	reply r;

	tu_mkdtemp(d.dir);
	d.keep_dir = 1;
	snprintf(octopusd_log, sizeof(octopusd_log), "%s/octopusd.log", d.dir);
	snprintf(env_file, sizeof(env_file), "LOG_FILE=%s", octopusd_log);
	daemon_start(&d, env, NULL);
	gateway_start(&g, replicas, 1);
	gateway_file(&g, "access.log", nginx_log);

	/* No X-Request-ID: nginx makes one, octopusd keeps it. */
	request(&g.front, "GET", "/", NULL, NULL, NULL, 0, &r);
	ck_assert_int_eq(r.status, 200);
	assert_gateway_headers(&r);
	ck_assert_int_eq(header_count(&r, "Strict-Transport-Security"), 1); /* octopusd's */
	ck_assert(header(&r, "X-Request-ID", id, sizeof(id)));
	ck_assert_msg(hex_id(id), "X-Request-ID %s", id);
	assert_logged(octopusd_log, nginx_log, id, 200);
	reply_free(&r);

	/* The client's own id, when octopusd would take it too. */
	request(&g.front, "GET", "/nope", NULL, "X-Request-ID: client-chosen.id_1", NULL, 0, &r);
	assert_error(&r, 404, "/nope");
	assert_gateway_headers(&r);
	assert_header(&r, "X-Request-ID", "client-chosen.id_1");
	assert_logged(octopusd_log, nginx_log, "client-chosen.id_1", 404);
	reply_free(&r);

	/* One it would not: nginx's own instead, in both logs. */
	request(&g.front, "GET", "/nope", NULL, "X-Request-ID: not usable!", NULL, 0, &r);
	ck_assert(header(&r, "X-Request-ID", id, sizeof(id)));
	ck_assert_msg(hex_id(id), "X-Request-ID %s", id);
	assert_logged(octopusd_log, nginx_log, id, 404);
	reply_free(&r);

	/* Download URLs point back at the gateway (it passes the client's
	 * Host on), and their signature, a credential, stays out of its log. */
	free(put_file(&d, 70240, 10));
	post_json(&g.front, "/v1/download/start", "{\"file_id\":70240}", &r);
	ck_assert_int_eq(r.status, 200);
	doc = parse(&r);
	ck_assert_msg(strncmp(str_member(doc, "downloadUrl"), g.front.base, strlen(g.front.base)) == 0,
	              "downloadUrl %s", str_member(doc, "downloadUrl"));
	ck_assert_int_eq(fetch(str_member(doc, "downloadUrl"), &file), 200);
	ck_assert_uint_eq(file.body_len, 10);
	reply_free(&file);
	octo_json_free(doc);
	reply_free(&r);
	line = log_line_with(nginx_log, "\"path\":\"/v1/files/downloads/70240.zip\"");
	ck_assert_int_eq(int_member(line, "status"), 200);
	octo_json_free(line);
	all = file_text(nginx_log);
	ck_assert_ptr_null(strstr(all, "signature"));
	free(all);

	/* nginx's own answer: its id in the answer and its log only. No
	 * Strict-Transport-Security from nginx on plain HTTP. */
	burst_until_429(&g.front, "GET", "/", NULL, 5000, &r);
	assert_error(&r, 429, "Too many requests");
	assert_gateway_headers(&r);
	ck_assert_int_eq(header_count(&r, "Strict-Transport-Security"), 0);
	ck_assert(header(&r, "X-Request-ID", id, sizeof(id)));
	ck_assert(hex_id(id));
	line = log_line_with(nginx_log, id);
	ck_assert_int_eq(int_member(line, "status"), 429);
	ck_assert_str_eq(str_member(line, "upstream"), "");
	octo_json_free(line);
	all = file_text(octopusd_log);
	ck_assert_ptr_null(strstr(all, id));
	free(all);
	reply_free(&r);
	gateway_stop(&g);
	d.keep_dir = 0;
	ck_assert_int_eq(daemon_stop(&d), 0);
}
END_TEST

/* The gateway takes exactly what octopusd takes: a body at the limit
 * reaches octopusd; one byte more is refused by nginx, in the words
 * octopusd would have used. */
START_TEST(the_gateway_takes_the_bodies_octopusd_takes)
{
	static const char over[] =
		"POST /v1/download/check HTTP/1.1\r\nHost: x\r\n"
		"Content-Type: application/json\r\nContent-Length: 65537\r\n\r\n{";
	const size_t limit = 65536; /* OCTO_MAX_BODY_BYTES */
	char *body = malloc(limit + 1), *direct;
	const char *theirs_text;
	daemon_proc d = { 0 };
	daemon_proc *replicas[] = { &d };
	gateway_proc g = { 0 };
	octo_json *ours, *theirs = NULL;
	reply r;

	memset(body, ' ', limit + 1);
	daemon_start(&d, NULL, NULL);
	gateway_start(&g, replicas, 1);
	request(&g.front, "POST", "/v1/download/check", "application/json", NULL, body, limit, &r);
	assert_error(&r, 400, "not valid JSON");
	ck_assert(from_octopusd(&r));
	reply_free(&r);

	request(&g.front, "POST", "/v1/download/check", "application/json", NULL, body, limit + 1,
	        &r);
	assert_error(&r, 413, "65536");
	ck_assert(!from_octopusd(&r));
	assert_header(&r, "Content-Type", "application/json; charset=utf-8");
	assert_gateway_headers(&r);
	/* octopusd's own answer, asked directly (declared, not sent: it
	 * answers from the headers and closes). */
	direct = raw_exchange(&d, over, sizeof(over) - 1);
	ck_assert_msg(strncmp(direct, "HTTP/1.1 413", 12) == 0, "got: %.200s", direct);
	ck_assert_ptr_nonnull(strstr(direct, "\r\n\r\n"));
	theirs_text = strstr(direct, "\r\n\r\n") + 4;
	ck_assert_int_eq(octo_json_parse(&theirs, theirs_text, strlen(theirs_text)), 0);
	ours = parse(&r);
	ck_assert_str_eq(str_member(ours, "error"), str_member(theirs, "error"));
	ck_assert_str_eq(str_member(ours, "message"), str_member(theirs, "message"));
	octo_json_free(ours);
	octo_json_free(theirs);
	free(direct);
	reply_free(&r);
	free(body);
	gateway_stop(&g);
	ck_assert_int_eq(daemon_stop(&d), 0);
}
END_TEST

/* octopusd believes X-Client-ID from a trusted proxy, and the gateway must
 * be one for per-client caps to work behind it: so nginx replaces
 * whatever a client sends with the client's address. */
START_TEST(clients_cannot_name_themselves_through_the_gateway)
{
	static const char *const env[] = {
		"TRUSTED_PROXIES=127.0.0.0/8", "DOWNLOAD_DELAY_MIN_MS=10", "DOWNLOAD_DELAY_MAX_MS=10",
		NULL
	};
	static const char body[] = "{\"file_ids\":[70230]}";
	daemon_proc d = { 0 };
	daemon_proc *replicas[] = { &d };
	gateway_proc g = { 0 };
	const daemon_proc *via[] = { &d, &g.front };
	const char *want[] = { "tenant-a", "127.0.0.1" };
	int i;

	daemon_start(&d, env, NULL);
	gateway_start(&g, replicas, 1);
	for (i = 0; i < 2; i++) { /* straight from a trusted peer, then through nginx */
		octo_json *doc;
		char *client;
		reply r;
		request(via[i], "POST", "/v1/download/initiate", "application/json",
		        "X-Client-ID: tenant-a", body, strlen(body), &r);
		ck_assert_int_eq(r.status, 202);
		doc = parse(&r);
		client = job_client(&d, str_member(doc, "jobId"));
		ck_assert_str_eq(client, want[i]);
		free(client);
		octo_json_free(doc);
		reply_free(&r);
	}
	gateway_stop(&g);
	ck_assert_int_eq(daemon_stop(&d), 0);
}
END_TEST

#endif /* OCTO_E2E_GATEWAY */

int main(void)
{
	Suite *s;
	TCase *api;
#ifdef OCTO_E2E_GATEWAY
	/* Through the gateway: the api case and the gateway's own. The other
	 * cases test octopusd alone, and the plain build runs them. */
	const int octopusd_alone = 0;

	if (!nginx_path()) {
		fprintf(stderr, "e2e through the gateway: nginx is not installed\n");
		return getenv("OCTO_REQUIRE_TOOLS") ? 1 : 77; /* 77: skipped */
	}
#else
	const int octopusd_alone = 1;
#endif

	s = suite_create("e2e");
	api = tcase_create("api");
	/* One daemon for the api case: started once, outside the forked tests. */
	tcase_add_unchecked_fixture(api, shared_up, shared_down);
	tcase_set_timeout(api, 120);
	tcase_add_test(api, root_answers_with_a_message);
	tcase_add_test(api, health_is_healthy_on_the_embedded_store);
	tcase_add_test(api, every_response_carries_the_common_headers);
	tcase_add_test(api, request_id_is_echoed_only_when_sane);
	tcase_add_test(api, check_reports_missing_then_present_files);
	tcase_add_test(api, initiate_persists_the_job_before_replying);
	tcase_add_test(api, start_waits_without_blocking_other_requests);
	tcase_add_test(api, tampered_download_urls_are_refused);
	tcase_add_test(api, job_runs_to_completion_and_its_files_download);
#ifndef OCTO_E2E_S3
	tcase_add_test(api, a_status_names_the_host_each_client_used);
#endif
	tcase_add_test(api, unknown_and_malformed_job_ids_are_told_apart);
	tcase_add_test(api, idempotency_key_makes_initiate_safe_to_retry);
	tcase_add_test(api, events_stream_a_job_to_its_end_and_resume_without_gaps);
	tcase_add_loop_test(api, bad_input_gets_a_clear_json_error, 0,
	                    (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
	tcase_add_test(api, initiate_takes_1000_ids_and_refuses_1001);
	tcase_add_test(api, deep_nesting_and_nul_bytes_are_refused);
	tcase_add_test(api, oversized_declared_body_gets_413_unread);
	tcase_add_test(api, oversized_chunked_body_gets_413);
	tcase_add_test(api, unknown_paths_and_wrong_methods_are_told_apart);
	tcase_add_test(api, preflight_gets_204_with_allowed_methods);
	suite_add_tcase(s, api);

	if (octopusd_alone) {
		TCase *own = tcase_create("own daemon");
		/* Checked: each test owns its S3 server, so it may stop and restart it. */
		tcase_add_checked_fixture(own, storage_up, storage_down);
		tcase_set_timeout(own, 180);
		tcase_add_test(own, rate_limit_answers_429_per_client);
		tcase_add_test(own, cancel_stops_a_running_job);
		tcase_add_test(own, full_queue_answers_503_with_retry_after);
		tcase_add_test(own, no_accepted_job_is_lost_to_kill_9);
		tcase_add_test(own, idle_streams_get_heartbeats_and_a_final_event_at_shutdown);
		tcase_add_test(own, webhook_is_signed_and_retried_until_delivered);
		tcase_add_test(own, a_file_is_prepared_once_for_all_jobs);
		tcase_add_test(own, finished_jobs_are_removed_after_retention);
		tcase_add_test(own, start_answers_202_with_location_before_the_request_timeout);
		tcase_add_test(own, origin_processor_fetches_resumes_and_fails_cleanly);
		tcase_add_test(own, client_cap_limits_files_in_progress_per_client);
		tcase_add_test(own, start_answers_a_stored_file_at_once);
		tcase_add_test(own, x_client_id_counts_only_from_trusted_proxies);
		tcase_add_test(own, health_is_503_when_storage_fails);
		tcase_add_test(own, cors_list_echoes_only_listed_origins);
		tcase_add_test(own, sigterm_answers_waiting_requests_and_exits_cleanly);
		tcase_add_test(own, env_file_supplies_settings_the_environment_lacks);
		suite_add_tcase(s, own);
	}

	if (octopusd_alone) {
		TCase *bad = tcase_create("bad input");
		TCase *slow = tcase_create("slow clients");
		TCase *faults = tcase_create("faults");
		TCase *crash = tcase_create("crash loop");

		/* One daemon for every hostile request: each must leave it as it was. */
		tcase_add_unchecked_fixture(bad, hostile_up, hostile_down);
		tcase_set_timeout(bad, 60);
		tcase_add_loop_test(bad, hostile_requests_get_defined_answers_and_change_nothing, 0,
		                    (int)(sizeof(hostiles) / sizeof(hostiles[0])));
		suite_add_tcase(s, bad);

		tcase_add_checked_fixture(slow, storage_up, storage_down);
		tcase_set_timeout(slow, 120);
		tcase_add_loop_test(slow, slow_requests_are_cut_while_others_are_served, 0,
		                    (int)(sizeof(slow_clients) / sizeof(slow_clients[0])));
		tcase_add_test(slow, connections_over_the_limit_are_closed_and_service_returns);
		suite_add_tcase(s, slow);

		tcase_add_checked_fixture(faults, storage_up, storage_down);
		tcase_set_timeout(faults, 180);
		tcase_add_test(faults, jobs_wait_out_a_storage_outage_and_complete);
#ifndef OCTO_E2E_S3
		tcase_add_test(faults, a_full_disk_gets_507_and_leaves_no_partial_record);
#endif
		tcase_add_test(faults, corrupt_job_records_are_skipped_by_name_and_the_rest_resume);
		tcase_add_test(faults, a_receiver_that_never_answers_costs_one_timeout_per_attempt);
		tcase_add_test(faults, secrets_never_reach_the_log);
		suite_add_tcase(s, faults);

		tcase_add_checked_fixture(crash, storage_up, storage_down);
		tcase_set_timeout(crash, 600); /* OCTO_CRASH_CYCLES may ask for many */
		tcase_add_test(crash, crash_loop_loses_no_acknowledged_job);
		suite_add_tcase(s, crash);
	}

#ifndef OCTO_E2E_S3
	if (octopusd_alone) {
		TCase *startup = tcase_create("start-up");
		TCase *observability = tcase_create("observability");

		/* Start-up checks do not depend on the store: run them once. */
		tcase_set_timeout(startup, 60);
		tcase_add_loop_test(startup, bad_settings_stop_start_up_naming_the_variable, 0,
		                    (int)(sizeof(refusals) / sizeof(refusals[0])));
		tcase_add_test(startup, min_above_max_delay_is_refused);
		tcase_add_test(startup, flags_are_validated_and_help_and_version_answer);
		suite_add_tcase(s, startup);

		/* Metrics and logs do not depend on the store either. */
		tcase_set_timeout(observability, 120);
		tcase_add_test(observability, metrics_count_requests_by_route_template);
		tcase_add_test(observability, job_metrics_follow_a_job_to_its_end);
		tcase_add_test(observability, prometheus_scrapes_octopusd);
		tcase_add_test(observability, request_and_trace_ids_lead_from_the_response_to_the_log);
		tcase_add_test(observability, sighup_reopens_a_rotated_log_file);
		tcase_add_test(observability, log_records_reach_elasticsearch_with_their_ids);
		tcase_add_checked_fixture(observability, observability_up, observability_down);
		suite_add_tcase(s, observability);
	}
#endif

#ifdef OCTO_E2E_GATEWAY
	{
		TCase *gateway = tcase_create("gateway");

		tcase_add_checked_fixture(gateway, gateway_case_up, gateway_case_down);
		tcase_set_timeout(gateway, 120);
		tcase_add_test(gateway, events_pass_through_the_gateway_as_they_happen);
		tcase_add_test(gateway, metrics_are_closed_at_the_gateway);
		tcase_add_test(gateway, the_docs_page_passes_through_the_gateway_with_its_own_policy);
		tcase_add_test(gateway, a_burst_over_the_limit_gets_429);
		tcase_add_test(gateway, idempotent_requests_survive_a_killed_replica);
		tcase_add_test(gateway, a_storage_outage_reaches_clients_as_octopusd_s_503);
		tcase_add_test(gateway, headers_and_request_ids_through_the_gateway);
		tcase_add_test(gateway, the_gateway_takes_the_bodies_octopusd_takes);
		tcase_add_test(gateway, clients_cannot_name_themselves_through_the_gateway);
		tcase_add_test(gateway, malformed_requests_get_json_errors_from_the_gateway);
		tcase_add_test(gateway, presigned_downloads_pass_through_the_gateway_to_storage);
		suite_add_tcase(s, gateway);
	}
#endif

#ifndef OCTO_E2E_S3
	return tu_run(s);
#else
	if (!ts3_available()) {
		fprintf(stderr, "e2e on S3: no S3 server (set OCTO_S3_SERVER, run npm ci in tests/s3)\n");
		return getenv("OCTO_REQUIRE_S3") ? 1 : 77; /* 77: skipped */
	}
	return tu_run(s);
#endif
}
