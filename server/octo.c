/* octo: the command-line client of Octopus. It starts jobs and follows
 * them over the service's event stream (reconnecting with Last-Event-ID,
 * falling back to polling), checks files and the service's health, and
 * saves finished files. Talks HTTP with libcurl; reads and writes JSON
 * with libocto (and progress fractions, which libocto cannot read yet,
 * with yajl's tree). */
#include "config.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include <octopus/octopus.h>

enum {
	EXIT_OK = 0,
	EXIT_FAILED = 1,       /* a file or the job failed, or the server said no */
	EXIT_USAGE = 2,
	EXIT_UNREACHABLE = 3,  /* no answer from the server */
	EXIT_SIGNAL = 128      /* plus the signal's number */
};

#define DEFAULT_URL "http://localhost:3000"
#define URL_MAX 2048
#define FILE_ID_MIN 10000
#define FILE_ID_MAX 100000000
#define FILE_IDS_MAX 1000        /* the service's limit per job */
#define UUID_LEN 36
#define REPLY_MAX (64u << 20)    /* a status of 1000 files is well under 1 MB */
#define CONNECT_TIMEOUT_S 10L
#define INITIATE_TRIES 3
#define STREAM_TRIES 5           /* failed connections in a row before polling */
#define GIVE_UP_MS 60000         /* polling: silence from the server this long ends it */
#define POLL_INTERVAL_MS 1000
#define BACKOFF_MIN_MS 100
#define BACKOFF_BASE_MS 250
#define BACKOFF_MAX_MS 5000

static const char usage[] =
	"Usage: octo [--url URL] [--timeout SECONDS] COMMAND [ARGS]\n"
	"       octo --help | --version\n"
	"\n"
	"Commands:\n"
	"  download [--output DIR] FILE_ID...\n"
	"                     start a job for the files and follow it live; then print\n"
	"                     \"FILE_ID URL\" or \"FILE_ID error: REASON\" for each file.\n"
	"                     On a terminal it draws a progress bar per file, else it\n"
	"                     prints a line per change (\"70000 processing 42%\").\n"
	"                     --output DIR also saves each file as DIR/FILE_ID.zip.\n"
	"  status [--json] JOB_ID\n"
	"                     a job's state: a summary line, then a line per file;\n"
	"                     --json prints the status JSON as the server sent it\n"
	"  cancel JOB_ID      cancel a job (its running files stop)\n"
	"  check FILE_ID...   tell whether each file is in storage, and its size\n"
	"  health             tell whether the service and its storage are healthy\n"
	"\n"
	"Options:\n"
	"  --url URL          the service (default: $OCTO_URL, else " DEFAULT_URL ")\n"
	"  --timeout SECONDS  bound on each request, 1 to 3600 (default 30); an event\n"
	"                     stream silent for twice as long counts as lost\n"
	"  -h, --help         this text\n"
	"  --version          octo's version\n"
	"\n"
	"A FILE_ID is an integer from 10000 to 100000000 (1 to 1000 per job); a\n"
	"JOB_ID is a UUID, as download prints it. A lost event stream is resumed\n"
	"(Last-Event-ID); if it keeps failing octo polls the status instead, and it\n"
	"gives up when the server has not answered for a minute.\n"
	"\n"
	"Exit status:\n"
	"  0    success: every file completed (status: the job has not failed;\n"
	"       check: the service answered, whether or not a file is there)\n"
	"  1    a file failed, the job failed or was cancelled, the service is\n"
	"       unhealthy, or the server answered with an error (its message and\n"
	"       request id go to stderr)\n"
	"  2    usage: a bad argument, or the server refused one (HTTP 400)\n"
	"  3    the server could not be reached (connection refused, DNS, timeout)\n"
	"  130  interrupted (Ctrl-C; 143 for SIGTERM): a download's job goes on,\n"
	"       see octo status\n";

/* ---- memory and text ---------------------------------------------------- */

/* A command-line tool has nothing to fall back on when memory runs out:
 * it says so and stops, rather than threading ENOMEM through every call. */
static _Noreturn void out_of_memory(void)
{
	fputs("octo: out of memory\n", stderr);
	exit(EXIT_FAILED);
}

static void *grow(void *p, size_t size)
{
	void *q = realloc(p, size ? size : 1);

	if (!q)
		out_of_memory();
	return q;
}

static char *dup_text(const char *s)
{
	size_t n = strlen(s) + 1;

	return memcpy(grow(NULL, n), s, n);
}

/* A growable, always NUL-terminated byte buffer. */
typedef struct {
	char *p;
	size_t len, cap;
} buf;

/* Room for `n` more bytes and the NUL. */
static void buf_reserve(buf *b, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = grow(b->p, b->cap);
	}
}

static void buf_add(buf *b, const char *data, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void buf_printf(buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	buf_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

static void buf_free(buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* Text from the server goes to terminals: control characters, C0 and C1
 * (U+0080..U+009F, which some terminals obey as escapes), become '?' so
 * no reply can move the cursor or retitle the window. In place. */
static char *defang(char *s)
{
	unsigned char *p = (unsigned char *)s;

	for (; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			*p = '?';
		else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			p[0] = p[1] = '?';
	}
	return s;
}

/* ---- signals and time ---------------------------------------------------- */

/* The one piece of global state: which signal asked us to stop. A handler
 * can do no more than set it; every wait and transfer looks at it. */
static volatile sig_atomic_t stop_signal;

static void on_signal(int signo)
{
	stop_signal = signo;
}

/* No SA_RESTART: a signal cuts sleeps and polls short, so Ctrl-C is
 * obeyed at once. SIGPIPE is ignored: a closed pipe is an error to report. */
static void catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* Sleeps `ms`; -1 as soon as a signal asks us to stop. In slices, so a
 * signal that lands just before a slice starts costs at most one slice. */
static int nap(long ms)
{
	while (ms > 0 && !stop_signal) {
		long slice = ms < 100 ? ms : 100;
		struct timespec ts = { 0, slice * 1000000L };
		nanosleep(&ts, NULL);
		ms -= slice;
	}
	return stop_signal ? -1 : 0;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Capped exponential backoff with jitter, so that the clients of a
 * restarted server do not all come back in the same instant. */
static long backoff_ms(int failures)
{
	long ms = BACKOFF_BASE_MS;
	int i;

	for (i = 1; i < failures && ms < BACKOFF_MAX_MS; i++)
		ms *= 2;
	if (ms > BACKOFF_MAX_MS)
		ms = BACKOFF_MAX_MS;
	ms = ms / 2 + rand() % (ms / 2 + 1);
	return ms < BACKOFF_MIN_MS ? BACKOFF_MIN_MS : ms;
}

/* ---- arguments ------------------------------------------------------------ */

typedef struct {
	const char *url_arg;     /* --url */
	char url[URL_MAX + 1];   /* the service, checked, no trailing slash */
	long timeout_s;
	const char *output;      /* download --output DIR */
	int json;                /* status --json */
	const char *command;
	char **args;             /* the command's operands */
	int nargs;
	int64_t *ids;            /* download and check: the file ids, validated */
	char job_id[UUID_LEN + 1];
} options;

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("octo: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'octo --help'.\n", stderr);
}

/* "--name VALUE" or "--name=VALUE" at argv[*i]: 1 with *value set and
 * *i on the value, 0 when argv[*i] is something else, -1 (said) when
 * the value is missing. */
static int option_value(int argc, char **argv, int *i, const char *name, const char **value)
{
	size_t n = strlen(name);
	const char *a = argv[*i];

	if (strncmp(a, name, n) != 0 || (a[n] != '\0' && a[n] != '='))
		return 0;
	if (a[n] == '=') {
		*value = a + n + 1;
		return 1;
	}
	if (*i + 1 >= argc) {
		usage_error("%s needs a value", name);
		return -1;
	}
	*value = argv[++*i];
	return 1;
}

static void print_version(void)
{
	printf("octo %s (libocto %s, libcurl %s)\n", PACKAGE_VERSION, octo_version(),
	       curl_version_info(CURLVERSION_NOW)->version);
}

static int set_timeout(options *o, const char *v)
{
	char *end;

	errno = 0;
	o->timeout_s = strtol(v, &end, 10);
	if (errno || end == v || *end || o->timeout_s < 1 || o->timeout_s > 3600) {
		usage_error("--timeout must be a whole number of seconds from 1 to 3600");
		return -1;
	}
	return 0;
}

/* One option at argv[*i]: 0 taken, 1 help or version shown, -1 bad. */
static int take_option(int argc, char **argv, int *i, options *o)
{
	const char *a = argv[*i], *v;
	int rc;

	if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
		fputs(usage, stdout);
		return 1;
	}
	if (strcmp(a, "--version") == 0) {
		print_version();
		return 1;
	}
	if (strcmp(a, "--json") == 0) {
		o->json = 1;
		return 0;
	}
	if ((rc = option_value(argc, argv, i, "--url", &o->url_arg)) != 0 ||
	    (rc = option_value(argc, argv, i, "--output", &o->output)) != 0)
		return rc < 0 ? -1 : 0;
	if ((rc = option_value(argc, argv, i, "--timeout", &v)) != 0)
		return rc < 0 ? -1 : set_timeout(o, v);
	usage_error("unknown option '%s'", a);
	return -1;
}

/* Splits argv into options and operands: 0 go on, 1 done, -1 bad. A
 * dash followed by a digit is an operand, so "-5" is refused as a file
 * id, which says more than "unknown option". */
static int parse_args(int argc, char **argv, options *o)
{
	int i, only_operands = 0;

	o->timeout_s = 30;
	o->args = grow(NULL, sizeof(char *) * (size_t)argc);
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		int rc;
		if (only_operands || a[0] != '-' || a[1] == '\0' || (a[1] >= '0' && a[1] <= '9')) {
			if (!o->command)
				o->command = a;
			else
				o->args[o->nargs++] = argv[i];
			continue;
		}
		if (strcmp(a, "--") == 0) {
			only_operands = 1;
			continue;
		}
		if ((rc = take_option(argc, argv, &i, o)) != 0)
			return rc;
	}
	return 0;
}

/* --url, else $OCTO_URL, else the default: http:// or https://, a host,
 * no spaces or control characters. Kept without a trailing slash. */
static int check_url(options *o)
{
	const char *env = getenv("OCTO_URL"), *url = o->url_arg;
	size_t n, skip;

	if (!url)
		url = env && *env ? env : DEFAULT_URL;
	skip = strncasecmp(url, "http://", 7) == 0 ? 7 : strncasecmp(url, "https://", 8) == 0 ? 8 : 0;
	for (n = 0; url[n]; n++)
		if ((unsigned char)url[n] <= 0x20 || url[n] == 0x7f)
			skip = 0;
	if (skip == 0 || url[skip] == '\0' || url[skip] == '/' || n > URL_MAX) {
		snprintf(o->url, sizeof(o->url), "%s", url);
		usage_error("the service URL must be http://HOST[:PORT] or https://..., "
		            "at most %d bytes, not '%s'", URL_MAX, defang(o->url));
		return -1;
	}
	memcpy(o->url, url, n + 1);
	while (n > skip && o->url[n - 1] == '/')
		o->url[--n] = '\0';
	return 0;
}

/* A decimal file id in range: digits only, no sign, no spaces. */
static int parse_file_id(const char *s, int64_t *out)
{
	size_t n = strlen(s);
	int64_t id = 0;

	if (n > 0 && n <= 9 && strspn(s, "0123456789") == n)
		id = strtoll(s, NULL, 10);
	if (id < FILE_ID_MIN || id > FILE_ID_MAX) {
		usage_error("file id '%s' is not a number from %d to %d", s, FILE_ID_MIN,
		            FILE_ID_MAX);
		return -1;
	}
	*out = id;
	return 0;
}

/* Duplicates are refused: each file's line of output must name one file. */
static int parse_file_ids(options *o)
{
	int i, j;

	if (o->nargs == 0) {
		usage_error("%s needs at least one file id", o->command);
		return -1;
	}
	if (o->nargs > FILE_IDS_MAX) {
		usage_error("at most %d file ids at once", FILE_IDS_MAX);
		return -1;
	}
	o->ids = grow(NULL, sizeof(int64_t) * (size_t)o->nargs);
	for (i = 0; i < o->nargs; i++) {
		if (parse_file_id(o->args[i], &o->ids[i]) < 0)
			return -1;
		for (j = 0; j < i; j++) {
			if (o->ids[j] == o->ids[i]) {
				usage_error("file id %" PRId64 " is given twice", o->ids[i]);
				return -1;
			}
		}
	}
	return 0;
}

/* 8-4-4-4-12 hex digits, in either case. */
static int uuid_shaped(const char *s)
{
	size_t i;

	for (i = 0; i < UUID_LEN; i++) {
		char c = s[i];
		int hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
		if (i == 8 || i == 13 || i == 18 || i == 23 ? c != '-' : !hex)
			return 0;
	}
	return s[UUID_LEN] == '\0';
}

/* The service writes job ids in lower case; upper case is accepted and
 * folded, as a UUID is the same either way. */
static int parse_job_id(options *o)
{
	size_t i;

	if (o->nargs != 1) {
		usage_error("%s takes one job id", o->command);
		return -1;
	}
	if (!uuid_shaped(o->args[0])) {
		usage_error("job id '%s' is not a UUID (like 6f1c2d9e-8a4b-4c3d-9e2f-0123456789ab)",
		            o->args[0]);
		return -1;
	}
	for (i = 0; i <= UUID_LEN; i++)
		o->job_id[i] = (char)tolower((unsigned char)o->args[0][i]);
	return 0;
}

/* --output DIR must be a directory we can write; it is made if missing,
 * before the job starts, so a typo does not cost a finished job. */
static int check_output(const char *dir)
{
	struct stat st;

	if (stat(dir, &st) < 0 && (errno != ENOENT || mkdir(dir, 0777) < 0 || stat(dir, &st) < 0)) {
		usage_error("--output %s: %s", dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode) || access(dir, W_OK | X_OK) < 0) {
		usage_error("--output %s: not a directory octo can write to", dir);
		return -1;
	}
	return 0;
}

/* ---- HTTP ----------------------------------------------------------------- */

typedef enum { NET_OK, NET_DOWN, NET_INTERRUPTED } net_rc;

typedef struct {
	long status;
	buf body;
	char request_id[129];         /* X-Request-ID, the server's name for the call */
	char error[CURL_ERROR_SIZE];  /* why the call failed, when it did */
	CURLcode code;
} reply;

static int on_progress(void *p, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	(void)p;
	(void)a;
	(void)b;
	(void)c;
	(void)d;
	return stop_signal ? 1 : 0; /* aborts the transfer */
}

/* A handle with what every request shares: a bounded connect, http(s)
 * only, and an abort on SIGINT. `errbuf` gets curl's own message. */
static CURL *easy_new(const options *o, const char *path, char *errbuf)
{
	CURL *c = curl_easy_init();
	buf url = { 0 };

	if (!c) {
		fputs("octo: cannot start libcurl\n", stderr);
		exit(EXIT_FAILED);
	}
	buf_printf(&url, "%s%s", o->url, path);
	curl_easy_setopt(c, CURLOPT_URL, url.p);
	buf_free(&url);
	errbuf[0] = '\0';
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT,
	                 o->timeout_s < CONNECT_TIMEOUT_S ? o->timeout_s : CONNECT_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "octo/" PACKAGE_VERSION);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	return c;
}

static size_t on_reply_body(char *data, size_t size, size_t n, void *userp)
{
	reply *r = userp;

	if (r->body.len + size * n > REPLY_MAX) {
		/* No reply of this API is that large. */
		snprintf(r->error, sizeof(r->error), "the reply is over %u bytes", REPLY_MAX);
		return 0;
	}
	buf_add(&r->body, data, size * n);
	return size * n;
}

/* Keeps the header value of `name` from a raw header line, if it is. */
static void header_value(const char *line, size_t len, const char *name, char *out, size_t size)
{
	size_t n = strlen(name), v;

	if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
		return;
	for (v = n + 1; v < len && line[v] == ' '; v++)
		;
	while (len > v && (line[len - 1] == '\r' || line[len - 1] == '\n'))
		len--;
	snprintf(out, size, "%.*s", (int)(len - v), line + v);
	defang(out);
}

static size_t on_reply_header(char *data, size_t size, size_t n, void *userp)
{
	reply *r = userp;

	header_value(data, size * n, "X-Request-ID", r->request_id, sizeof(r->request_id));
	return size * n;
}

static net_rc net_result(CURLcode code, reply *r)
{
	r->code = code;
	if (code == CURLE_OK)
		return NET_OK;
	if (code == CURLE_ABORTED_BY_CALLBACK && stop_signal)
		return NET_INTERRUPTED;
	if (!r->error[0])
		snprintf(r->error, sizeof(r->error), "%s", curl_easy_strerror(code));
	return NET_DOWN;
}

/* One request with a JSON body or none, answered in `r` (free it with
 * reply_free()). Any HTTP status counts as an answer: NET_DOWN means
 * none came (r->error says why). */
static net_rc call(const options *o, const char *method, const char *path,
                   const char *json, const char *header, reply *r)
{
	struct curl_slist *hdrs = NULL;
	CURL *c;
	net_rc rc;

	memset(r, 0, sizeof(*r));
	c = easy_new(o, path, r->error);
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	hdrs = curl_slist_append(hdrs, "Expect:");
	if (json)
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	if (header)
		hdrs = curl_slist_append(hdrs, header);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (json)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, o->timeout_s);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_reply_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_reply_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	rc = net_result(curl_easy_perform(c), r);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	buf_add(&r->body, "", 0);
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	return rc;
}

static void reply_free(reply *r)
{
	buf_free(&r->body);
}

/* The exit status of a call that got no answer (saying why), else 0. */
static int no_answer(const options *o, net_rc rc, const reply *r)
{
	if (rc == NET_INTERRUPTED)
		return EXIT_SIGNAL + stop_signal;
	if (rc == NET_DOWN) {
		fprintf(stderr, "octo: cannot reach %s: %s\n", o->url, r->error);
		return EXIT_UNREACHABLE;
	}
	return 0;
}

/* ---- JSON ----------------------------------------------------------------- */

static const char *str_of(const octo_json_value *obj, const char *key)
{
	const char *s = NULL;

	octo_json_string(octo_json_get(obj, key), &s);
	return s;
}

static int64_t int_of(const octo_json_value *obj, const char *key, int64_t otherwise)
{
	int64_t n;

	return octo_json_int(octo_json_get(obj, key), &n) == 0 ? n : otherwise;
}

/* Parses a reply that must be a JSON object; NULL (and a message) if not. */
static octo_json *reply_json(const reply *r)
{
	octo_json *doc = NULL;

	if (octo_json_parse(&doc, r->body.p, r->body.len) < 0 ||
	    octo_json_typeof(octo_json_root(doc)) != OCTO_JSON_OBJECT) {
		fprintf(stderr, "octo: the server answered HTTP %ld with no JSON object%s%s\n",
		        r->status, r->request_id[0] ? ", request " : "", r->request_id);
		octo_json_free(doc);
		return NULL;
	}
	return doc;
}

/* Prints a server's error reply, {"error","message","requestId"}, and
 * returns the exit status it calls for: a 400 is a refused argument. */
static int server_error(const reply *r, const char *what)
{
	char message[600] = "the server answered with an error", code[64] = "", rid[129];
	octo_json *doc = NULL;
	const char *s;

	snprintf(rid, sizeof(rid), "%s", r->request_id);
	if (octo_json_parse(&doc, r->body.p, r->body.len) == 0) {
		const octo_json_value *root = octo_json_root(doc);
		if ((s = str_of(root, "message")) != NULL)
			snprintf(message, sizeof(message), "%s", s);
		if ((s = str_of(root, "error")) != NULL)
			snprintf(code, sizeof(code), " %s", s);
		if ((s = str_of(root, "requestId")) != NULL)
			snprintf(rid, sizeof(rid), "%s", s);
	}
	octo_json_free(doc);
	fprintf(stderr, "octo: %s: %s (HTTP %ld%s%s%s)\n", what, defang(message), r->status,
	        defang(code), rid[0] ? ", request " : "", defang(rid));
	return r->status == 400 ? EXIT_USAGE : EXIT_FAILED;
}

/* ---- a job, as octo shows it ---------------------------------------------- */

typedef struct {
	int64_t id;
	char status[16];     /* pending, processing, completed, failed, cancelled */
	double progress;     /* 0 to 1 */
	int64_t size;        /* bytes, or -1 */
	char *url;           /* the latest downloadUrl, or NULL */
	char *error;         /* the latest error, or NULL */
	char *save_error;    /* --output: why saving failed, or NULL */
	char shown[32];      /* line mode: the state printed last */
} file_view;

typedef struct {
	char job_id[UUID_LEN + 1];
	char status[16];
	char last_event_id[24];
	file_view *files;
	size_t n;
	int tty;             /* draw bars in place, else print a line per change */
	int drawn;           /* lines drawn last time, to move back over */
	char note[200];      /* terminal: the connection's trouble, if any */
} job_view;

static void view_init(job_view *v, const int64_t *ids, size_t n)
{
	size_t i;

	memset(v, 0, sizeof(*v));
	snprintf(v->status, sizeof(v->status), "queued");
	v->files = grow(NULL, sizeof(file_view) * (n ? n : 1));
	memset(v->files, 0, sizeof(file_view) * (n ? n : 1));
	for (i = 0; i < n; i++) {
		v->files[i].id = ids[i];
		v->files[i].size = -1;
		snprintf(v->files[i].status, sizeof(v->files[i].status), "pending");
	}
	v->n = n;
}

static void view_free(job_view *v)
{
	size_t i;

	for (i = 0; i < v->n; i++) {
		free(v->files[i].url);
		free(v->files[i].error);
		free(v->files[i].save_error);
	}
	free(v->files);
}

static int terminal_status(const char *s)
{
	return strcmp(s, "completed") == 0 || strcmp(s, "partial") == 0 ||
	       strcmp(s, "failed") == 0 || strcmp(s, "cancelled") == 0;
}

/* The file of the view with this id: the server keeps the job's order,
 * so the same index is tried first. */
static file_view *find_file(job_view *v, size_t hint, int64_t id)
{
	size_t i;

	if (hint < v->n && v->files[hint].id == id)
		return &v->files[hint];
	for (i = 0; i < v->n; i++)
		if (v->files[i].id == id)
			return &v->files[i];
	return NULL;
}

static void replace_text(char **slot, const char *s)
{
	free(*slot);
	*slot = s ? defang(dup_text(s)) : NULL;
}

static void file_update(file_view *f, const octo_json_value *obj)
{
	const char *status = str_of(obj, "status");

	if (status)
		snprintf(f->status, sizeof(f->status), "%s", status);
	f->size = int_of(obj, "size", -1);
	replace_text(&f->url, str_of(obj, "downloadUrl"));
	replace_text(&f->error, str_of(obj, "error"));
	if (strcmp(f->status, "completed") == 0)
		f->progress = 1;
}

/* Progress is a fraction ("0.42"), and libocto's JSON reads integers
 * only: the fractions are read from the same text with yajl's tree. */
static void read_fractions(job_view *v, const char *text)
{
	static const char *files_path[] = { "files", NULL };
	static const char *id_path[] = { "file_id", NULL };
	static const char *progress_path[] = { "progress", NULL };
	yajl_val root = yajl_tree_parse(text, NULL, 0), files;
	size_t i;

	files = yajl_tree_get(root, files_path, yajl_t_array);
	for (i = 0; files && i < files->u.array.len; i++) {
		yajl_val f = files->u.array.values[i];
		yajl_val id = yajl_tree_get(f, id_path, yajl_t_number);
		yajl_val p = yajl_tree_get(f, progress_path, yajl_t_number);
		file_view *fv = NULL;
		if (id && YAJL_IS_INTEGER(id))
			fv = find_file(v, i, YAJL_GET_INTEGER(id));
		if (fv && p && YAJL_IS_DOUBLE(p) && strcmp(fv->status, "completed") != 0)
			fv->progress = YAJL_GET_DOUBLE(p) < 0 ? 0 : YAJL_GET_DOUBLE(p) > 1 ? 1 :
			               YAJL_GET_DOUBLE(p);
	}
	yajl_tree_free(root);
}

/* status reads a job it did not start: its files come from the status. */
static void adopt_files(job_view *v, const octo_json_value *files)
{
	int64_t ids[FILE_IDS_MAX];
	char job_id[UUID_LEN + 1];
	size_t i, n = 0;

	for (i = 0; i < octo_json_size(files) && n < FILE_IDS_MAX; i++)
		ids[n++] = int_of(octo_json_at(files, i), "file_id", 0);
	memcpy(job_id, v->job_id, sizeof(job_id));
	view_free(v);
	view_init(v, ids, n);
	memcpy(v->job_id, job_id, sizeof(job_id));
}

/* Folds a job status (an event's data, or a status reply) into the view;
 * -1 if `text` (NUL-terminated) is no status. */
static int view_update(job_view *v, const char *text, size_t len)
{
	const octo_json_value *root, *files;
	const char *status;
	octo_json *doc = NULL;
	size_t i;

	if (octo_json_parse(&doc, text, len) < 0)
		return -1;
	root = octo_json_root(doc);
	files = octo_json_get(root, "files");
	if (!(status = str_of(root, "status")) || octo_json_typeof(files) != OCTO_JSON_ARRAY) {
		octo_json_free(doc);
		return -1;
	}
	if (v->n == 0)
		adopt_files(v, files);
	snprintf(v->status, sizeof(v->status), "%s", status);
	defang(v->status);
	for (i = 0; i < octo_json_size(files); i++) {
		const octo_json_value *f = octo_json_at(files, i);
		file_view *fv = find_file(v, i, int_of(f, "file_id", 0));
		if (fv)
			file_update(fv, f);
	}
	octo_json_free(doc);
	read_fractions(v, text);
	return 0;
}

/* ---- showing progress -------------------------------------------------------- */

static int percent(const file_view *f)
{
	int p = (int)(f->progress * 100.0 + 1e-9);

	return p < 0 ? 0 : p > 100 ? 100 : p;
}

/* Line mode: "70000 processing 42%" for each file whose state changed. */
static void print_changes(job_view *v)
{
	size_t i;

	for (i = 0; i < v->n; i++) {
		file_view *f = &v->files[i];
		char now[32];
		snprintf(now, sizeof(now), "%s %d%%", f->status, percent(f));
		if (strcmp(now, f->shown) != 0) {
			printf("%" PRId64 " %s\n", f->id, now);
			memcpy(f->shown, now, sizeof(now));
		}
	}
	fflush(stdout);
}

static void term_size(int *cols, int *rows)
{
	struct winsize ws;

	*cols = 80;
	*rows = 24;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
		*cols = ws.ws_col;
		*rows = ws.ws_row > 2 ? ws.ws_row : 24;
	}
}

/* Adds `line` to `out` cut to `cols` columns (a column per character,
 * never splitting a UTF-8 sequence): a line that wrapped would throw off
 * the count of lines to move back over. */
static void add_line(buf *out, const char *line, int cols)
{
	int used = 0;
	size_t i;

	for (i = 0; line[i]; i++) {
		if (((unsigned char)line[i] & 0xc0) != 0x80 && used++ == cols)
			break;
	}
	buf_add(out, line, i);
	buf_add(out, "\n", 1);
}

/* "70000     [########............]  42% processing", and for a file
 * that failed its error after the status. */
static void bar_line(buf *out, const file_view *f, int cols)
{
	int width = cols - 34, done, i, why = f->error && strcmp(f->status, "completed") != 0;
	char line[1024], bar[41];

	width = width > 40 ? 40 : width < 0 ? 0 : width;
	done = percent(f) * width / 100;
	for (i = 0; i < width; i++)
		bar[i] = i < done ? '#' : '.';
	bar[width] = '\0';
	snprintf(line, sizeof(line), "%-9" PRId64 " %s%s%s %3d%% %s%s%s", f->id, width ? "[" : "",
	         bar, width ? "]" : "", percent(f), f->status, why ? ": " : "", why ? f->error : "");
	add_line(out, line, cols);
}

static void count_files(const job_view *v, size_t *done, size_t *failed)
{
	size_t i;

	*done = *failed = 0;
	for (i = 0; i < v->n; i++) {
		*done += strcmp(v->files[i].status, "completed") == 0;
		*failed += strcmp(v->files[i].status, "failed") == 0;
	}
}

/* Terminal mode: the whole block again, in place: back up over the last
 * drawing, clear to the end of the screen, draw. A block taller than the
 * screen could not be backed over, so files beyond it are summed up. */
static void draw(job_view *v)
{
	char line[512];
	size_t i, done, failed, fit;
	int cols, rows;
	buf out = { 0 };

	term_size(&cols, &rows);
	cols--; /* the last column makes some terminals wrap early */
	fit = (size_t)rows - 2 < v->n ? (size_t)rows - 3 : v->n;
	if (v->drawn)
		buf_printf(&out, "\033[%dA", v->drawn);
	buf_add(&out, "\r\033[J", 4);
	count_files(v, &done, &failed);
	snprintf(line, sizeof(line), "job %s %s: %zu/%zu completed, %zu failed%s%s", v->job_id,
	         v->status, done, v->n, failed, v->note[0] ? " - " : "", v->note);
	add_line(&out, line, cols);
	for (i = 0; i < fit; i++)
		bar_line(&out, &v->files[i], cols);
	if (fit < v->n) {
		snprintf(line, sizeof(line), "... and %zu more files", v->n - fit);
		add_line(&out, line, cols);
	}
	v->drawn = (int)(fit + 1 + (fit < v->n));
	fwrite(out.p, 1, out.len, stdout);
	fflush(stdout);
	buf_free(&out);
}

static void show(job_view *v)
{
	if (v->tty)
		draw(v);
	else
		print_changes(v);
}

/* Trouble with the connection: in the block on a terminal (a line of its
 * own would break the redraw), else on stderr. NULL clears it. */
static void note(job_view *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note(job_view *v, const char *fmt, ...)
{
	va_list ap;

	v->note[0] = '\0';
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(v->note, sizeof(v->note), fmt, ap);
		va_end(ap);
	}
	if (v->tty)
		draw(v);
	else if (fmt)
		fprintf(stderr, "octo: %s\n", v->note);
}

/* ---- following a job ----------------------------------------------------------- */

typedef enum {
	F_DONE,         /* the job ended: the view holds its final state */
	F_RUNNING,      /* a status read: the job goes on */
	F_LOST,         /* no answer, or the stream broke: try again */
	F_GONE,         /* the server no longer knows the job (said on stderr) */
	F_UNREACHABLE,  /* lost for good */
	F_INTERRUPTED
} follow_rc;

/* One event stream connection and its Server-Sent Events parser. */
typedef struct {
	job_view *view;
	CURL *curl;
	long status;          /* the stream's HTTP status, once known */
	buf line, data;       /* the line being read; the data lines of the event */
	char event[32], id[24];
	int after_cr;         /* a '\n' right after '\r' ends no second line */
	int events;           /* status events on this connection */
	int terminal, shutdown, gone, broken;
} stream;

/* One complete event. A status event updates the view; after the
 * terminal one there is nothing left to read. -1 stops reading. */
static int dispatch(stream *s)
{
	if (strcmp(s->event, "shutdown") == 0) {
		s->shutdown = 1; /* the server is stopping: come back later */
		return 0;
	}
	if (strcmp(s->event, "error") == 0) {
		s->gone = 1;
		return -1;
	}
	if (view_update(s->view, s->data.p, s->data.len) < 0)
		return 0; /* not a status: nothing to show */
	snprintf(s->view->last_event_id, sizeof(s->view->last_event_id), "%s", s->id);
	s->events++;
	s->view->note[0] = '\0'; /* the stream is back */
	show(s->view);
	if (terminal_status(s->view->status)) {
		s->terminal = 1;
		return -1;
	}
	return 0;
}

/* A field line ("name: value") of the event being read. */
static void field(stream *s, const char *line)
{
	const char *colon = strchr(line, ':');
	size_t name = colon ? (size_t)(colon - line) : strlen(line);
	const char *value = colon ? colon + 1 + (colon[1] == ' ') : "";

	if (name == 4 && strncmp(line, "data", 4) == 0) {
		buf_add(&s->data, value, strlen(value));
		buf_add(&s->data, "\n", 1);
	} else if (name == 5 && strncmp(line, "event", 5) == 0) {
		snprintf(s->event, sizeof(s->event), "%s", value);
	} else if (name == 2 && strncmp(line, "id", 2) == 0 &&
	           strspn(value, "0123456789") == strlen(value) && strlen(value) < sizeof(s->id)) {
		snprintf(s->id, sizeof(s->id), "%s", value); /* echoed in a header: digits only */
	}
}

/* A whole line: a blank one ends the event; ':' starts a comment (the
 * heartbeat, whose bytes already told curl the stream lives). */
static int end_line(stream *s)
{
	int rc = 0;

	if (s->line.len == 0) {
		if (s->data.len > 0) {
			s->data.p[--s->data.len] = '\0'; /* the last data line's '\n' */
			rc = dispatch(s);
		}
		s->data.len = 0;
		s->event[0] = '\0';
	} else if (s->line.p[0] != ':') {
		field(s, s->line.p);
	}
	s->line.len = 0;
	return rc;
}

/* Bytes of the stream: lines end with "\r\n", "\n" or "\r". */
static int sse_feed(stream *s, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char c = p[i];
		int cr = s->after_cr;
		s->after_cr = c == '\r';
		if (c == '\n' && cr)
			continue;
		if (c == '\r' || c == '\n') {
			if (end_line(s) < 0)
				return -1;
		} else if (s->line.len + s->data.len >= REPLY_MAX) {
			s->broken = 1;
			return -1;
		} else {
			buf_add(&s->line, &c, 1);
		}
	}
	return 0;
}

static size_t on_stream(char *data, size_t size, size_t n, void *userp)
{
	stream *s = userp;

	if (!s->status)
		curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &s->status);
	if (s->status != 200 || stop_signal)
		return 0; /* an error reply: the status read that follows tells */
	return sse_feed(s, data, size * n) < 0 ? 0 : size * n;
}

/* Why a stream ended without the job's end, for the note. */
static void stream_reason(const stream *s, const reply *r, char *out, size_t size)
{
	if (s->shutdown)
		snprintf(out, size, "the server is restarting");
	else if (s->gone)
		snprintf(out, size, "the server no longer knows the job");
	else if (s->status && s->status != 200)
		snprintf(out, size, "the event stream answered HTTP %ld", s->status);
	else if (s->broken)
		snprintf(out, size, "the event stream sent a line too long");
	else if (r->code != CURLE_OK)
		snprintf(out, size, "%s", r->error);
	else
		snprintf(out, size, "the event stream ended");
}

static void stream_headers(const job_view *v, struct curl_slist **hdrs)
{
	char last[64];

	*hdrs = curl_slist_append(*hdrs, "Accept: text/event-stream");
	*hdrs = curl_slist_append(*hdrs, "Cache-Control: no-cache");
	if (v->last_event_id[0]) {
		snprintf(last, sizeof(last), "Last-Event-ID: %s", v->last_event_id);
		*hdrs = curl_slist_append(*hdrs, last);
	}
}

/* Follows the job's events on one connection, resuming after the last
 * event seen. No overall timeout: a stream silent (not even a heartbeat)
 * for twice the request timeout is taken for dead. */
static follow_rc stream_once(const options *o, job_view *v, int *events, char *why, size_t size)
{
	struct curl_slist *hdrs = NULL;
	stream s;
	reply r;
	buf path = { 0 };
	net_rc rc;

	memset(&s, 0, sizeof(s));
	memset(&r, 0, sizeof(r));
	s.view = v;
	buf_printf(&path, "/v1/download/%s/events", v->job_id);
	s.curl = easy_new(o, path.p, r.error);
	buf_free(&path);
	stream_headers(v, &hdrs);
	curl_easy_setopt(s.curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(s.curl, CURLOPT_WRITEFUNCTION, on_stream);
	curl_easy_setopt(s.curl, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(s.curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(s.curl, CURLOPT_LOW_SPEED_TIME, 2 * o->timeout_s);
	rc = net_result(curl_easy_perform(s.curl), &r);
	if (!s.status) /* a reply with no body never reached on_stream() */
		curl_easy_getinfo(s.curl, CURLINFO_RESPONSE_CODE, &s.status);
	curl_easy_cleanup(s.curl);
	curl_slist_free_all(hdrs);
	buf_free(&s.line);
	buf_free(&s.data);
	*events = s.events;
	if (s.terminal)
		return F_DONE;
	if (rc == NET_INTERRUPTED || stop_signal)
		return F_INTERRUPTED;
	stream_reason(&s, &r, why, size);
	return F_LOST; /* even "gone": the status read that follows says so */
}

/* Reads the job's status once. A 5xx or 429 is passing trouble; any
 * other error means the job is out of reach for good. */
static follow_rc refresh(const options *o, job_view *v, char *why, size_t size)
{
	follow_rc out = F_RUNNING;
	buf path = { 0 };
	reply r;
	net_rc rc;

	buf_printf(&path, "/v1/download/status/%s", v->job_id);
	rc = call(o, "GET", path.p, NULL, NULL, &r);
	buf_free(&path);
	if (rc == NET_INTERRUPTED) {
		out = F_INTERRUPTED;
	} else if (rc == NET_DOWN) {
		snprintf(why, size, "%s", r.error);
		out = F_LOST;
	} else if (r.status >= 500 || r.status == 429) {
		snprintf(why, size, "the server answered HTTP %ld", r.status);
		out = F_LOST;
	} else if (r.status != 200) {
		server_error(&r, "job status");
		out = F_GONE;
	} else if (view_update(v, r.body.p, r.body.len) < 0) {
		snprintf(why, size, "the status is not a job status");
		out = F_LOST;
	} else {
		show(v);
		out = terminal_status(v->status) ? F_DONE : F_RUNNING;
	}
	reply_free(&r);
	return out;
}

/* The fallback when the stream keeps failing: the status, once a second,
 * until the job ends, or until the server has not answered for
 * GIVE_UP_MS (a restart with its shutdown grace fits well within). */
static follow_rc poll_status(const options *o, job_view *v)
{
	char why[CURL_ERROR_SIZE + 64] = "";
	long long quiet_since = now_ms();
	int failures = 0;

	note(v, "the event stream keeps failing; polling the status");
	for (;;) {
		follow_rc rc = refresh(o, v, why, sizeof(why));
		if (rc != F_RUNNING && rc != F_LOST)
			return rc;
		if (rc == F_RUNNING) {
			failures = 0;
			quiet_since = now_ms();
		} else if (now_ms() - quiet_since >= GIVE_UP_MS) {
			fprintf(stderr, "octo: cannot reach %s: %s\n", o->url, why);
			return F_UNREACHABLE;
		} else {
			note(v, "%s; retrying", why);
			failures++;
		}
		if (nap(failures ? backoff_ms(failures) : POLL_INTERVAL_MS) < 0)
			return F_INTERRUPTED;
	}
}

/* Follows the job to its end. A stream that breaks is resumed with
 * Last-Event-ID after a status read (which also catches an end the
 * stream can no longer tell, e.g. after a server restart). Attempts that
 * bring no event count as failures; too many in a row, and it polls. */
static follow_rc follow(const options *o, job_view *v)
{
	char why[CURL_ERROR_SIZE + 64], ignored[CURL_ERROR_SIZE + 64];
	int failures = 0, events;
	follow_rc rc;
	long delay;

	for (;;) {
		rc = stream_once(o, v, &events, why, sizeof(why));
		if (rc != F_LOST)
			return rc;
		failures = events ? 0 : failures + 1;
		if (failures >= STREAM_TRIES)
			return poll_status(o, v);
		rc = refresh(o, v, ignored, sizeof(ignored));
		if (rc != F_RUNNING && rc != F_LOST)
			return rc;
		delay = backoff_ms(failures);
		note(v, "lost the event stream (%s); reconnecting in %.1f s", why,
		     (double)delay / 1000.0);
		if (nap(delay) < 0)
			return F_INTERRUPTED;
	}
}

/* ---- saving files (--output) ------------------------------------------------------- */

typedef struct {
	int fd;
	int64_t written;
	int failed_errno;
} sink;

static size_t on_file_data(char *data, size_t size, size_t n, void *userp)
{
	sink *k = userp;
	size_t left = size * n;

	while (left > 0) {
		ssize_t w = write(k->fd, data, left);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			k->failed_errno = errno ? errno : EIO;
			return 0;
		}
		data += w;
		left -= (size_t)w;
		k->written += w;
	}
	return size * n;
}

/* GETs the job's file route, following its redirect to a URL signed just
 * now (the one in the status may be near its expiry), into `fd`. NULL on
 * success, else why it failed (malloc'd). */
static char *fetch_file(const options *o, const job_view *v, const file_view *f, int fd)
{
	char errbuf[CURL_ERROR_SIZE];
	sink k = { fd, 0, 0 };
	buf path = { 0 }, why = { 0 };
	long status = 0;
	CURLcode rc;
	CURL *c;

	buf_printf(&path, "/v1/download/%s/files/%" PRId64, v->job_id, f->id);
	c = easy_new(o, path.p, errbuf);
	buf_free(&path);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_file_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &k);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L); /* a big file may take long */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, o->timeout_s);
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	if (k.failed_errno)
		buf_printf(&why, "cannot write: %s", strerror(k.failed_errno));
	else if (rc != CURLE_OK)
		buf_printf(&why, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
	else if (status != 200)
		buf_printf(&why, "HTTP %ld", status);
	else if (f->size >= 0 && k.written != f->size)
		buf_printf(&why, "got %" PRId64 " bytes of %" PRId64, k.written, f->size);
	return why.p;
}

/* Saves one completed file as DIR/<id>.zip, through a hidden temporary
 * name, so DIR never holds a partial file under the final name. */
static void save_file(const options *o, const job_view *v, file_view *f)
{
	buf tmp = { 0 }, final = { 0 }, why = { 0 };
	char *failure;
	int fd;

	buf_printf(&tmp, "%s/.%" PRId64 ".zip.part", o->output, f->id);
	buf_printf(&final, "%s/%" PRId64 ".zip", o->output, f->id);
	fd = open(tmp.p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		buf_printf(&why, "save: %s: %s", tmp.p, strerror(errno));
	} else {
		failure = fetch_file(o, v, f, fd);
		if (close(fd) < 0 && !failure)
			failure = dup_text(strerror(errno));
		if (!failure && rename(tmp.p, final.p) < 0)
			failure = dup_text(strerror(errno));
		if (failure) {
			unlink(tmp.p);
			buf_printf(&why, "save: %s", failure);
			free(failure);
		} else {
			fprintf(stderr, "octo: saved %s\n", final.p);
		}
	}
	f->save_error = why.p ? defang(why.p) : NULL;
	buf_free(&tmp);
	buf_free(&final);
}

static void save_files(const options *o, job_view *v)
{
	size_t i;

	for (i = 0; i < v->n && !stop_signal; i++)
		if (strcmp(v->files[i].status, "completed") == 0)
			save_file(o, v, &v->files[i]);
}

/* ---- commands ------------------------------------------------------------------------ */

/* "70000 https://..." for a file ready, else "70000 error: why". */
static int print_results(const job_view *v)
{
	int rc = EXIT_OK;
	size_t i;

	for (i = 0; i < v->n; i++) {
		const file_view *f = &v->files[i];
		const char *why = f->error ? f->error : f->status;
		if (strcmp(f->status, "completed") == 0 && f->url && !f->save_error) {
			printf("%" PRId64 " %s\n", f->id, f->url);
			continue;
		}
		if (strcmp(f->status, "completed") == 0)
			why = f->save_error ? f->save_error : "no download URL";
		else if (strcmp(v->status, "cancelled") == 0)
			why = "cancelled";
		printf("%" PRId64 " error: %s\n", f->id, why);
		rc = EXIT_FAILED;
	}
	return rc;
}

/* A random Idempotency-Key: a retried initiate whose first reply was
 * lost then finds the first job instead of starting a second. */
static void idempotency_header(char *out, size_t size)
{
	unsigned char r[16];
	size_t i, n;

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		for (i = 0; i < sizeof(r); i++)
			r[i] = (unsigned char)rand();
	n = (size_t)snprintf(out, size, "Idempotency-Key: octo-");
	for (i = 0; i < sizeof(r) && n + 3 <= size; i++)
		n += (size_t)snprintf(out + n, size - n, "%02x", r[i]);
}

static char *initiate_body(const options *o)
{
	octo_json_writer *w = NULL;
	char *text = NULL;
	int i;

	if (octo_json_writer_new(&w) < 0)
		out_of_memory();
	octo_json_write_object_begin(w);
	octo_json_write_key(w, "file_ids");
	octo_json_write_array_begin(w);
	for (i = 0; i < o->nargs; i++)
		octo_json_write_int(w, o->ids[i]);
	octo_json_write_array_end(w);
	octo_json_write_object_end(w);
	if (octo_json_writer_finish(w, &text, NULL) < 0)
		out_of_memory(); /* the only way a writer fed these calls fails */
	octo_json_writer_free(w);
	return text;
}

/* A request that never left (refused, no such host) is not worth a retry;
 * one that may have arrived is, and the key makes the retry safe. */
static int worth_retrying(CURLcode code)
{
	return code != CURLE_COULDNT_CONNECT && code != CURLE_COULDNT_RESOLVE_HOST &&
	       code != CURLE_COULDNT_RESOLVE_PROXY;
}

static net_rc post_initiate(const options *o, const char *body, reply *r)
{
	char key[80];
	net_rc rc;
	int attempt;

	idempotency_header(key, sizeof(key));
	for (attempt = 1;; attempt++) {
		rc = call(o, "POST", "/v1/download/initiate", body, key, r);
		if (rc != NET_DOWN || attempt == INITIATE_TRIES || !worth_retrying(r->code))
			return rc;
		reply_free(r);
		if (nap(backoff_ms(attempt)) < 0)
			return NET_INTERRUPTED;
	}
}

/* The job id of a 202 reply, into v->job_id: 0, else the exit status. */
static int accepted_job(const reply *r, job_view *v)
{
	octo_json *doc = reply_json(r);
	const char *id;
	int rc = EXIT_FAILED;

	if (!doc)
		return rc;
	id = str_of(octo_json_root(doc), "jobId");
	if (id && uuid_shaped(id)) {
		memcpy(v->job_id, id, UUID_LEN + 1);
		rc = EXIT_OK;
	} else {
		fprintf(stderr, "octo: the server's reply names no job\n");
	}
	octo_json_free(doc);
	return rc;
}

/* Starts the job: 0 with v->job_id set, else the exit status. */
static int initiate(const options *o, job_view *v)
{
	char *body = initiate_body(o);
	reply r;
	net_rc net = post_initiate(o, body, &r);
	int rc = no_answer(o, net, &r);

	octo_free(body);
	if (rc == 0 && r.status != 202)
		rc = server_error(&r, "cannot start the job");
	else if (rc == 0)
		rc = accepted_job(&r, v);
	reply_free(&r);
	return rc;
}

/* What is left after following: a message, and the exit status. */
static int follow_outcome(const options *o, job_view *v, follow_rc rc)
{
	if (rc == F_INTERRUPTED) {
		/* On a terminal, past the "^C" it echoed. */
		fprintf(stderr, "%socto: interrupted; job %s goes on. "
		        "See it with: octo status %s\n", v->tty ? "\n" : "", v->job_id, v->job_id);
		return EXIT_SIGNAL + (stop_signal ? stop_signal : SIGINT);
	}
	if (rc == F_UNREACHABLE) {
		fprintf(stderr, "octo: job %s goes on without octo watching; see it with: "
		        "octo status %s\n", v->job_id, v->job_id);
		return EXIT_UNREACHABLE;
	}
	if (rc == F_GONE) {
		fprintf(stderr, "octo: job %s is gone from the server\n", v->job_id);
		return EXIT_FAILED;
	}
	if (o->output)
		save_files(o, v);
	if (stop_signal)
		return follow_outcome(o, v, F_INTERRUPTED);
	return print_results(v);
}

static int cmd_download(const options *o)
{
	job_view v;
	int rc;

	if (o->output && check_output(o->output) < 0)
		return EXIT_USAGE;
	view_init(&v, o->ids, (size_t)o->nargs);
	v.tty = isatty(STDOUT_FILENO) && !(getenv("TERM") && strcmp(getenv("TERM"), "dumb") == 0);
	setvbuf(stdout, NULL, _IOLBF, 0); /* each line as it comes, even to a pipe */
	rc = initiate(o, &v);
	if (rc == EXIT_OK) {
		if (v.tty)
			draw(&v);
		else
			fprintf(stderr, "octo: job %s\n", v.job_id);
		rc = follow_outcome(o, &v, follow(o, &v));
	}
	view_free(&v);
	return rc;
}

static const char *file_state(const file_view *f, char *out, size_t size)
{
	if (strcmp(f->status, "completed") == 0)
		snprintf(out, size, "%s", f->url ? f->url : "(no download URL)");
	else if (f->error)
		snprintf(out, size, "error: %s", f->error);
	else
		snprintf(out, size, "%d%%", percent(f));
	return out;
}

/* The summary: "job ID STATUS: 1/2 completed, 1 failed", then a line per
 * file: its status and its URL, error or percentage. */
static int print_summary(const job_view *v)
{
	char state[4096];
	size_t i, done, failed;

	count_files(v, &done, &failed);
	printf("job %s %s: %zu/%zu completed, %zu failed\n", v->job_id, v->status, done, v->n,
	       failed);
	for (i = 0; i < v->n; i++)
		printf("%" PRId64 " %s %s\n", v->files[i].id, v->files[i].status,
		       file_state(&v->files[i], state, sizeof(state)));
	return strcmp(v->status, "partial") == 0 || strcmp(v->status, "failed") == 0 ||
	       strcmp(v->status, "cancelled") == 0 ? EXIT_FAILED : EXIT_OK;
}

/* GET or DELETE of a job: its status, or the exit status of a failure. */
static int job_call(const options *o, const char *method, const char *prefix, const char *what,
                    reply *r)
{
	buf url = { 0 };
	net_rc rc;

	buf_printf(&url, "%s%s", prefix, o->job_id);
	rc = call(o, method, url.p, NULL, NULL, r);
	buf_free(&url);
	if (rc != NET_OK)
		return no_answer(o, rc, r);
	return r->status == 200 ? EXIT_OK : server_error(r, what);
}

static int cmd_status(const options *o)
{
	job_view v;
	reply r;
	int rc = job_call(o, "GET", "/v1/download/status/", "job status", &r);

	if (rc == EXIT_OK && o->json) {
		/* Only what parses: JSON holds no raw control characters. */
		octo_json *doc = reply_json(&r);
		if (doc)
			printf("%s\n", r.body.p);
		rc = doc ? EXIT_OK : EXIT_FAILED;
		octo_json_free(doc);
	} else if (rc == EXIT_OK) {
		view_init(&v, NULL, 0);
		memcpy(v.job_id, o->job_id, sizeof(v.job_id));
		if (view_update(&v, r.body.p, r.body.len) < 0) {
			fprintf(stderr, "octo: the server's reply is no job status\n");
			rc = EXIT_FAILED;
		} else {
			rc = print_summary(&v);
		}
		view_free(&v);
	}
	reply_free(&r);
	return rc;
}

/* Cancelling is idempotent, and a job that already ended stays as it was:
 * either way the job no longer runs, which is what was asked. */
static int cmd_cancel(const options *o)
{
	char status[32] = "unknown";
	octo_json *doc;
	reply r;
	int rc = job_call(o, "DELETE", "/v1/download/", "cannot cancel", &r);

	if (rc == EXIT_OK && (doc = reply_json(&r)) != NULL) {
		const char *s = str_of(octo_json_root(doc), "status");
		if (s)
			snprintf(status, sizeof(status), "%s", s);
		if (strcmp(status, "cancelled") == 0)
			printf("job %s cancelled\n", o->job_id);
		else
			printf("job %s already ended: %s\n", o->job_id, defang(status));
		octo_json_free(doc);
	} else if (rc == EXIT_OK) {
		rc = EXIT_FAILED;
	}
	reply_free(&r);
	return rc;
}

/* "70000 available 1048576 bytes" or "70000 not available". */
static int print_check(const reply *r, int64_t id)
{
	octo_json *doc = reply_json(r);
	int available = 0;

	if (!doc)
		return EXIT_FAILED;
	octo_json_bool(octo_json_get(octo_json_root(doc), "available"), &available);
	if (available)
		printf("%" PRId64 " available %" PRId64 " bytes\n", id,
		       int_of(octo_json_root(doc), "size", 0));
	else
		printf("%" PRId64 " not available\n", id);
	octo_json_free(doc);
	return EXIT_OK;
}

static int check_one(const options *o, int64_t id)
{
	char body[64];
	reply r;
	net_rc net;
	int rc;

	snprintf(body, sizeof(body), "{\"file_id\":%" PRId64 "}", id);
	net = call(o, "POST", "/v1/download/check", body, NULL, &r);
	rc = no_answer(o, net, &r);
	if (rc == 0)
		rc = r.status == 200 ? print_check(&r, id) : server_error(&r, "check");
	reply_free(&r);
	return rc;
}

static int cmd_check(const options *o)
{
	int i, rc = EXIT_OK;

	for (i = 0; i < o->nargs && rc == EXIT_OK; i++)
		rc = check_one(o, o->ids[i]);
	return rc;
}

/* "healthy (storage: ok)", from a 200 or 503 health reply; -1 if the
 * reply is something else (a proxy's error page, say). */
static int print_health(const reply *r)
{
	char status[32], storage[32];
	const char *s;
	octo_json *doc = NULL;

	if ((r->status != 200 && r->status != 503) ||
	    octo_json_parse(&doc, r->body.p, r->body.len) < 0 ||
	    !(s = str_of(octo_json_root(doc), "status"))) {
		octo_json_free(doc);
		return -1;
	}
	snprintf(status, sizeof(status), "%s", s);
	s = str_of(octo_json_get(octo_json_root(doc), "checks"), "storage");
	snprintf(storage, sizeof(storage), "%s", s ? s : "unknown");
	printf("%s (storage: %s)\n", defang(status), defang(storage));
	octo_json_free(doc);
	return 0;
}

/* Unhealthy is exit 1, as a monitoring check wants. */
static int cmd_health(const options *o)
{
	reply r;
	net_rc net = call(o, "GET", "/health", NULL, NULL, &r);
	int rc = no_answer(o, net, &r);

	if (rc == 0 && print_health(&r) == 0)
		rc = r.status == 200 ? EXIT_OK : EXIT_FAILED;
	else if (rc == 0)
		rc = server_error(&r, "health");
	reply_free(&r);
	return rc;
}

/* ---- main --------------------------------------------------------------------------------- */

typedef struct {
	const char *name;
	int (*run)(const options *o);
	int (*operands)(options *o);  /* validates the command's operands */
} command;

static int no_operands(options *o)
{
	if (o->nargs == 0)
		return 0;
	usage_error("%s takes no arguments", o->command);
	return -1;
}

static const command commands[] = {
	{ "download", cmd_download, parse_file_ids },
	{ "status", cmd_status, parse_job_id },
	{ "cancel", cmd_cancel, parse_job_id },
	{ "check", cmd_check, parse_file_ids },
	{ "health", cmd_health, no_operands },
};

/* The command, with every argument checked before any request goes out. */
static const command *validate(options *o)
{
	const command *cmd = NULL;
	size_t i;

	if (!o->command) {
		fprintf(stderr, "octo: no command given\n%s", usage);
		return NULL;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(o->command, commands[i].name) == 0)
			cmd = &commands[i];
	if (!cmd) {
		usage_error("unknown command '%s'", o->command);
		return NULL;
	}
	if (o->output && cmd->run != cmd_download) {
		usage_error("--output goes with download only");
		return NULL;
	}
	if (o->json && cmd->run != cmd_status) {
		usage_error("--json goes with status only");
		return NULL;
	}
	return check_url(o) < 0 || cmd->operands(o) < 0 ? NULL : cmd;
}

int main(int argc, char **argv)
{
	const command *cmd = NULL;
	options o;
	int rc;

	memset(&o, 0, sizeof(o));
	rc = parse_args(argc, argv, &o);
	if (rc == 0 && !(cmd = validate(&o)))
		rc = -1;
	if (rc != 0) {
		free(o.args);
		free(o.ids);
		return rc > 0 ? EXIT_OK : EXIT_USAGE;
	}
	srand((unsigned int)time(NULL) ^ (unsigned int)getpid());
	curl_global_init(CURL_GLOBAL_DEFAULT);
	catch_signals();
	rc = cmd->run(&o);
	curl_global_cleanup();
	free(o.args);
	free(o.ids);
	if (fflush(stdout) != 0 && rc == EXIT_OK) {
		fprintf(stderr, "octo: cannot write the output: %s\n", strerror(errno));
		rc = EXIT_FAILED;
	}
	return rc;
}
