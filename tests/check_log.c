/* The structured logger: the line format, hostile input, the level
 * threshold, concurrent writers, reopening after rotation, the options,
 * and shipping to Elasticsearch.
 *
 * No Elasticsearch can be installed on this machine, so the Elasticsearch
 * tests stand up a local HTTP receiver with libmicrohttpd
 * (MHD_USE_INTERNAL_POLLING_THREAD on 127.0.0.1, port 0, the bound port
 * read with MHD_get_daemon_info(MHD_DAEMON_INFO_BIND_PORT), the body
 * collected across calls). It records every request, which the tests check
 * against the wire format the _bulk API documents, and answers as each
 * test scripts it. A server that goes silent is a plain socket listening
 * without accept: the backlog holds the connection and nothing answers.
 * Tests synchronise on conditions (octo_log_flush, counters read under a
 * mutex), never on sleeps, and assert no timings. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <octopus/json.h>
#include <octopus/log.h>

#include "testutil.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define FFFD "\xef\xbf\xbd"
#define WAIT_MS 60000 /* only a guard against hanging; never reached */

static char dir[256];
static char path[512];
static octo_log *log_;

static void setup(void)
{
	tu_mkdtemp(dir);
	snprintf(path, sizeof(path), "%s/app.log", dir);
	log_ = NULL;
}

static void teardown(void)
{
	octo_log_free(log_);
	log_ = NULL;
	tu_rmtree(dir);
}

static octo_log_options file_options(void)
{
	octo_log_options o = OCTO_LOG_OPTIONS_INIT;

	o.path = path;
	return o;
}

static octo_log *open_log(const octo_log_options *o)
{
	octo_log *log = NULL;
	int rc = octo_log_new(&log, o);

	ck_assert_msg(rc == 0, "octo_log_new gave %d: %s", rc, octo_error_last());
	ck_assert_ptr_nonnull(log);
	return log;
}

static octo_log_stats stats(const octo_log *log)
{
	octo_log_stats s;

	memset(&s, 0xa5, sizeof(s));
	octo_log_get_stats(log, &s);
	return s;
}

/* ---- reading lines back ----------------------------------------------- */

/* A file's lines, each NUL-terminated in place of its "\n". */
typedef struct {
	char *data;
	char **line;
	size_t *len;
	size_t n;
} lines;

static char *read_file(const char *file, size_t *len)
{
	size_t cap = 1 << 16, used = 0;
	char *buf = malloc(cap);
	int fd = open(file, O_RDONLY);
	ssize_t n;

	ck_assert_msg(fd >= 0, "cannot open %s", file);
	ck_assert_ptr_nonnull(buf);
	while ((n = read(fd, buf + used, cap - used - 1)) > 0) {
		used += (size_t)n;
		if (cap - used < 4096) {
			cap *= 2;
			buf = realloc(buf, cap);
			ck_assert_ptr_nonnull(buf);
		}
	}
	ck_assert_int_eq(n, 0);
	close(fd);
	buf[used] = '\0';
	*len = used;
	return buf;
}

static void read_lines(const char *file, lines *out)
{
	size_t len, i, start = 0;

	memset(out, 0, sizeof(*out));
	out->data = read_file(file, &len);
	ck_assert_msg(len == 0 || out->data[len - 1] == '\n', "%s does not end with a newline", file);
	for (i = 0; i < len; i++)
		out->n += out->data[i] == '\n';
	out->line = calloc(out->n + 1, sizeof(char *));
	out->len = calloc(out->n + 1, sizeof(size_t));
	ck_assert(out->line && out->len);
	for (out->n = 0, i = 0; i < len; i++) {
		if (out->data[i] != '\n')
			continue;
		out->data[i] = '\0';
		out->line[out->n] = out->data + start;
		out->len[out->n++] = i - start;
		start = i + 1;
	}
}

static void lines_free(lines *l)
{
	free(l->data);
	free(l->line);
	free(l->len);
}

/* Parses text that must be JSON under the strict parser (which also
 * refuses invalid UTF-8). */
static octo_json *parse(const char *text, size_t len)
{
	octo_json *doc = NULL;
	int rc = octo_json_parse(&doc, text, len);

	ck_assert_msg(rc == 0, "not strict JSON (%s): %.300s", octo_error_last(), text);
	return doc;
}

static octo_json_type type_of(const octo_json *doc, const char *key)
{
	return octo_json_typeof(member(doc, key));
}

static int bool_member(const octo_json *doc, const char *key)
{
	int b = -1;

	ck_assert_int_eq(octo_json_bool(member(doc, key), &b), 0);
	return b;
}

static void assert_timestamp_format(const char *ts)
{
	regex_t re;

	ck_assert_int_eq(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
	                              "\\.[0-9]{3}Z$", REG_EXTENDED | REG_NOSUB), 0);
	ck_assert_msg(regexec(&re, ts, 0, NULL, 0) == 0, "bad timestamp \"%s\"", ts);
	regfree(&re);
}

static time_t timestamp_seconds(const char *ts)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	ck_assert_ptr_nonnull(strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm));
	return timegm(&tm);
}

/* ---- levels ---------------------------------------------------------- */

START_TEST(level_parse_accepts_every_name_in_any_case)
{
	static const struct {
		const char *name;
		octo_log_level level;
	} ok[] = {
		{ "debug", OCTO_LOG_DEBUG }, { "DEBUG", OCTO_LOG_DEBUG }, { "Info", OCTO_LOG_INFO },
		{ "info", OCTO_LOG_INFO }, { "warn", OCTO_LOG_WARN }, { "WARN", OCTO_LOG_WARN },
		{ "warning", OCTO_LOG_WARN }, { "WarNing", OCTO_LOG_WARN },
		{ "error", OCTO_LOG_ERROR }, { "ErRoR", OCTO_LOG_ERROR },
	};
	octo_log_level l;
	size_t i;

	for (i = 0; i < N_ELEMS(ok); i++) {
		l = (octo_log_level)99;
		ck_assert_int_eq(octo_log_level_parse(ok[i].name, &l), 0);
		ck_assert_int_eq(l, ok[i].level);
	}
}
END_TEST

START_TEST(level_parse_refuses_anything_else)
{
	static const char *const bad[] = {
		"", "verbose", "inf", "info ", " info", "warnings", "err", "critical", "trace",
		"d\xc3\xa9" "bug", "inf\x80", "0", "1",
	};
	octo_log_level l = OCTO_LOG_ERROR;
	size_t i;

	for (i = 0; i < N_ELEMS(bad); i++) {
		ck_assert_int_eq(octo_log_level_parse(bad[i], &l), OCTO_EINVAL);
		ck_assert_int_eq(l, OCTO_LOG_ERROR);
		ck_assert_str_ne(octo_error_last(), "");
	}
	ck_assert_int_eq(octo_log_level_parse(NULL, &l), OCTO_EINVAL);
	ck_assert_int_eq(octo_log_level_parse("info", NULL), OCTO_EINVAL);
	ck_assert_int_eq(l, OCTO_LOG_ERROR);
}
END_TEST

START_TEST(level_name_names_each_level_and_round_trips)
{
	octo_log_level l, back;

	ck_assert_str_eq(octo_log_level_name(OCTO_LOG_DEBUG), "debug");
	ck_assert_str_eq(octo_log_level_name(OCTO_LOG_INFO), "info");
	ck_assert_str_eq(octo_log_level_name(OCTO_LOG_WARN), "warn");
	ck_assert_str_eq(octo_log_level_name(OCTO_LOG_ERROR), "error");
	ck_assert_str_eq(octo_log_level_name((octo_log_level)4), "unknown");
	ck_assert_str_eq(octo_log_level_name((octo_log_level)-1), "unknown");
	for (l = OCTO_LOG_DEBUG; l <= OCTO_LOG_ERROR; l++) {
		ck_assert_int_eq(octo_log_level_parse(octo_log_level_name(l), &back), 0);
		ck_assert_int_eq(back, l);
	}
}
END_TEST

/* ---- options ----------------------------------------------------------- */

/* Each bad option alone on otherwise good ones, Elasticsearch included. */
#define BAD_OPTIONS 22
static void spoil(octo_log_options *o, int i)
{
	o->elasticsearch_url = "http://127.0.0.1:9";
	switch (i) {
	case 0: o->version = 0; break;
	case 1: o->version = OCTO_LOG_OPTIONS_VERSION + 1; break;
	case 2: o->service = NULL; break;
	case 3: o->service = ""; break;
	case 4: o->level = (octo_log_level)4; break;
	case 5: o->level = (octo_log_level)-1; break;
	case 6: o->elasticsearch_url = "ftp://127.0.0.1:9200"; break;
	case 7: o->elasticsearch_url = "localhost:9200"; break;
	case 8: o->elasticsearch_url = "http://"; break;
	case 9: o->elasticsearch_url = "https:///_bulk"; break;
	case 10: o->elasticsearch_url = "http://es host:9200"; break;
	case 11: o->elasticsearch_url = ""; break;
	case 12: o->index_prefix = NULL; break;
	case 13: o->index_prefix = "Logs-octopus-"; break;
	case 14: o->index_prefix = "-logs-"; break;
	case 15: o->index_prefix = "logs/octopus-"; break;
	case 16: o->index_prefix = "logs octopus-"; break;
	case 17: o->es_buffer_max = 0; break;
	case 18: o->es_batch_max = 0; break;
	case 19: o->es_timeout_ms = 0; break;
	case 20: o->es_retry_max_ms = 0; break;
	default: o->elasticsearch_url = "mailto:ops@example.com"; break;
	}
}

START_TEST(new_refuses_bad_options)
{
	octo_log_options o = file_options();
	octo_log *log = (octo_log *)&o;

	spoil(&o, _i);
	ck_assert_int_eq(octo_log_new(&log, &o), OCTO_EINVAL);
	ck_assert_ptr_null(log);
	ck_assert_str_ne(octo_error_last(), "");
	/* Nothing was created for a refused logger. */
	ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

START_TEST(new_refuses_missing_arguments)
{
	octo_log_options o = file_options();
	octo_log *log = (octo_log *)&o;

	ck_assert_int_eq(octo_log_new(&log, NULL), OCTO_EINVAL);
	ck_assert_ptr_null(log);
	ck_assert_int_eq(octo_log_new(NULL, &o), OCTO_EINVAL);
}
END_TEST

START_TEST(new_reports_an_unwritable_path_as_io_error)
{
	char missing[600];
	octo_log_options o = file_options();
	octo_log *log = (octo_log *)&o;

	/* Not by permissions: the tests may run as root, who may write anywhere. */
	snprintf(missing, sizeof(missing), "%s/no-such-dir/app.log", dir);
	o.path = missing;
	ck_assert_int_eq(octo_log_new(&log, &o), OCTO_EIO);
	ck_assert_ptr_null(log);
	ck_assert_ptr_nonnull(strstr(octo_error_last(), "no-such-dir"));
	o.path = dir; /* a directory */
	ck_assert_int_eq(octo_log_new(&log, &o), OCTO_EIO);
	ck_assert_ptr_null(log);
}
END_TEST

START_TEST(new_accepts_good_urls_and_ignores_es_sizes_without_a_url)
{
	static const char *const urls[] = {
		"http://127.0.0.1:9", "https://es.example:9200/", "HTTP://127.0.0.1:9/prefix//",
		"http://user:secret@127.0.0.1:9",
	};
	octo_log_options o = file_options();
	size_t i;

	for (i = 0; i < N_ELEMS(urls); i++) {
		o.elasticsearch_url = urls[i];
		octo_log_free(open_log(&o));
	}
	o = file_options();
	o.es_buffer_max = o.es_batch_max = 0;
	o.es_timeout_ms = o.es_retry_max_ms = 0;
	o.index_prefix = NULL;
	octo_log_free(open_log(&o));
}
END_TEST

START_TEST(new_creates_the_file_0640_and_appends_to_it)
{
	octo_log_options o = file_options();
	struct stat st;
	lines l;

	umask(022);
	tu_write_file(path, "earlier line\n", 13);
	ck_assert_int_eq(unlink(path), 0);
	log_ = open_log(&o);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0640);
	octo_log_free(log_);
	log_ = NULL;

	tu_write_file(path, "earlier line\n", 13);
	log_ = open_log(&o);
	octo_log_write(log_, OCTO_LOG_INFO, "appended", NULL, 0);
	read_lines(path, &l);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_str_eq(l.line[0], "earlier line");
	ck_assert_ptr_nonnull(strstr(l.line[1], "\"appended\""));
	lines_free(&l);
}
END_TEST

START_TEST(a_null_logger_is_accepted_everywhere)
{
	octo_log_stats s = stats(NULL);

	ck_assert_int_eq(octo_log_enabled(NULL, OCTO_LOG_ERROR), 0);
	octo_log_write(NULL, OCTO_LOG_ERROR, "nowhere", NULL, 0);
	ck_assert_int_eq(octo_log_reopen(NULL), 0);
	ck_assert_int_eq(octo_log_flush(NULL, 0), 0);
	ck_assert_uint_eq(s.written + s.shipped + s.dropped + s.retried + s.buffered, 0);
	octo_log_free(NULL);
	octo_log_get_stats(NULL, NULL);
}
END_TEST

/* ---- the line ---------------------------------------------------------- */

START_TEST(a_line_has_the_documented_members_and_typed_fields)
{
	octo_log_field f[] = {
		OCTO_LOG_STR("user", "alice"),
		OCTO_LOG_STR("missing", NULL),
		OCTO_LOG_INT("count", 42),
		OCTO_LOG_INT("big", INT64_MAX),
		OCTO_LOG_INT("small", INT64_MIN),
		OCTO_LOG_DOUBLE("ratio", 0.25),
		OCTO_LOG_DOUBLE("nan", NAN),
		OCTO_LOG_DOUBLE("inf", INFINITY),
		OCTO_LOG_DOUBLE("ninf", -INFINITY),
		OCTO_LOG_BOOL("yes", 7),
		OCTO_LOG_BOOL("no", 0),
	};
	octo_log_options o = file_options();
	time_t before, after, t;
	octo_json *doc;
	int64_t n;
	lines l;

	log_ = open_log(&o);
	before = time(NULL);
	octo_log_write(log_, OCTO_LOG_INFO, "hello", f, N_ELEMS(f));
	after = time(NULL);
	read_lines(path, &l);
	ck_assert_uint_eq(l.n, 1);
	doc = parse(l.line[0], l.len[0]);
	assert_timestamp_format(str_member(doc, "timestamp"));
	/* time(2) may read a coarser clock: a second of slack either way. */
	t = timestamp_seconds(str_member(doc, "timestamp"));
	ck_assert_int_ge(t, before - 1);
	ck_assert_int_le(t, after + 1);
	ck_assert_str_eq(str_member(doc, "level"), "info");
	ck_assert_str_eq(str_member(doc, "service"), "octopus-api");
	ck_assert_str_eq(str_member(doc, "message"), "hello");
	ck_assert_str_eq(str_member(doc, "user"), "alice");
	ck_assert_int_eq(type_of(doc, "missing"), OCTO_JSON_NULL);
	ck_assert_int_eq(int_member(doc, "count"), 42);
	ck_assert(int_member(doc, "big") == INT64_MAX);
	ck_assert(int_member(doc, "small") == INT64_MIN);
	ck_assert_int_eq(type_of(doc, "ratio"), OCTO_JSON_NUMBER);
	ck_assert_ptr_nonnull(strstr(l.line[0], "\"ratio\":0.25,"));
	ck_assert_int_eq(type_of(doc, "nan"), OCTO_JSON_NULL);
	ck_assert_int_eq(type_of(doc, "inf"), OCTO_JSON_NULL);
	ck_assert_int_eq(type_of(doc, "ninf"), OCTO_JSON_NULL);
	ck_assert_int_eq(bool_member(doc, "yes"), 1);
	ck_assert_int_eq(bool_member(doc, "no"), 0);
	ck_assert_uint_eq(octo_json_size(octo_json_root(doc)), 4 + N_ELEMS(f));
	ck_assert_int_ne(octo_json_int(member(doc, "ratio"), &n), 0);
	octo_json_free(doc);
	lines_free(&l);
	ck_assert_uint_eq(stats(log_).written, 1);
}
END_TEST

START_TEST(reserved_and_repeated_keys_are_skipped_and_order_is_kept)
{
	octo_log_field f[] = {
		OCTO_LOG_STR("timestamp", "1970-01-01T00:00:00.000Z"),
		OCTO_LOG_STR("level", "error"),
		OCTO_LOG_STR("service", "evil"),
		OCTO_LOG_INT("message", 1),
		OCTO_LOG_STR("a", "1"),
		OCTO_LOG_INT("b", 2),
		OCTO_LOG_STR("a", "again"),
		OCTO_LOG_STR(NULL, "no key"),
		OCTO_LOG_BOOL("c", 1),
	};
	octo_log_options o = file_options();
	lines l;

	log_ = open_log(&o);
	octo_log_write(log_, OCTO_LOG_WARN, "real", f, N_ELEMS(f));
	octo_log_write(log_, OCTO_LOG_WARN, NULL, NULL, 3); /* no fields despite the count */
	read_lines(path, &l);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_uint_gt(l.len[0], 40);
	ck_assert_str_eq(l.line[0] + 38, "\",\"level\":\"warn\",\"service\":\"octopus-api\","
	                                 "\"message\":\"real\",\"a\":\"1\",\"b\":2,\"c\":true}");
	ck_assert_int_eq(strncmp(l.line[0], "{\"timestamp\":\"", 14), 0);
	ck_assert_str_eq(l.line[1] + 38, "\",\"level\":\"warn\",\"service\":\"octopus-api\","
	                                 "\"message\":\"\"}");
	octo_json_free(parse(l.line[0], l.len[0]));
	lines_free(&l);
}
END_TEST

START_TEST(without_a_path_lines_go_to_stderr)
{
	octo_log_options o = OCTO_LOG_OPTIONS_INIT;
	int saved = dup(STDERR_FILENO);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	octo_json *doc;
	lines l;

	ck_assert_int_ge(saved, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
	close(fd);
	o.service = "worker";
	log_ = open_log(&o);
	octo_log_write(log_, OCTO_LOG_ERROR, "to stderr", NULL, 0);
	ck_assert_int_eq(octo_log_reopen(log_), 0); /* nothing to reopen */
	octo_log_write(log_, OCTO_LOG_ERROR, "still stderr", NULL, 0);
	octo_log_free(log_);
	log_ = NULL;
	dup2(saved, STDERR_FILENO);
	close(saved);
	read_lines(path, &l);
	ck_assert_uint_eq(l.n, 2);
	doc = parse(l.line[1], l.len[1]);
	ck_assert_str_eq(str_member(doc, "service"), "worker");
	ck_assert_str_eq(str_member(doc, "message"), "still stderr");
	octo_json_free(doc);
	lines_free(&l);
}
END_TEST

START_TEST(writing_keeps_errno_and_the_last_error)
{
	octo_log_options o = file_options();
	octo_log_level l;

	log_ = open_log(&o);
	ck_assert_int_eq(octo_log_level_parse("loud", &l), OCTO_EINVAL);
	errno = ERANGE;
	octo_log_write(log_, OCTO_LOG_ERROR, "after a failure", NULL, 0);
	ck_assert_int_eq(errno, ERANGE);
	ck_assert_ptr_nonnull(strstr(octo_error_last(), "loud"));
}
END_TEST

/* ---- hostile input ----------------------------------------------------- */

/* A 100 KB message of valid UTF-8 full of what JSON must escape. */
static char *long_message(size_t size)
{
	static const char piece[] = "abc\"\\/\x01\x1f\t\n\r\x7f \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 ";
	char *m = malloc(size + 1);
	size_t n = 0;

	ck_assert_ptr_nonnull(m);
	while (n + sizeof(piece) - 1 <= size) {
		memcpy(m + n, piece, sizeof(piece) - 1);
		n += sizeof(piece) - 1;
	}
	memset(m + n, 'z', size - n);
	m[size] = '\0';
	return m;
}

START_TEST(any_bytes_give_valid_json_and_utf8_round_trips)
{
	static const struct {
		const char *in, *out; /* out NULL: the same as in */
	} cases[] = {
		{ "\x80", FFFD },
		{ "a\xbf\x80z", "a" FFFD FFFD "z" },
		{ "\xc0\xaf", FFFD FFFD },                 /* overlong '/' */
		{ "\xe0\x80\xaf", FFFD FFFD FFFD },        /* overlong '/' */
		{ "\xf0\x80\x80\xaf", FFFD FFFD FFFD FFFD }, /* overlong '/' */
		{ "\xed\xa0\x80", FFFD FFFD FFFD },        /* a surrogate */
		{ "\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD }, /* above U+10FFFF */
		{ "\xe2\x82", FFFD FFFD },                 /* cut short */
		{ "\xff\xfe", FFFD FFFD },
		{ "quote\" backslash\\ slash/", NULL },
		{ "\x01\x02\x1f\x7f\b\f\n\r\t", NULL },
		{ "</script><!--", NULL },
		{ "\\u0000 \\ud800", NULL },
		{ "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xef\xbf\xbd", NULL },
		{ "{\"level\":\"error\"}\n{\"forged\":1}", NULL },
		{ "", NULL },
	};
	octo_log_options o = file_options();
	char all[256], expect[127 + 128 * 3 + 1];
	char *big = long_message(100 * 1024);
	const size_t n = N_ELEMS(cases);
	octo_log_field f[2];
	octo_json *doc;
	size_t i;
	lines l;

	for (i = 1; i < 256; i++)
		all[i - 1] = (char)i;
	all[255] = '\0';
	log_ = open_log(&o);
	for (i = 0; i < N_ELEMS(cases); i++) {
		/* The same bytes as a string field and as a key. */
		f[0] = (octo_log_field)OCTO_LOG_STR("value", cases[i].in);
		f[1] = (octo_log_field)OCTO_LOG_INT(cases[i].in, 1);
		octo_log_write(log_, OCTO_LOG_INFO, cases[i].in, f, 2);
	}
	octo_log_write(log_, OCTO_LOG_INFO, all, NULL, 0);
	octo_log_write(log_, OCTO_LOG_INFO, big, NULL, 0);
	read_lines(path, &l);
	ck_assert_uint_eq(l.n, n + 2);
	for (i = 0; i < n; i++) {
		const char *out = cases[i].out ? cases[i].out : cases[i].in;
		doc = parse(l.line[i], l.len[i]);
		ck_assert_str_eq(str_member(doc, "message"), out);
		ck_assert_str_eq(str_member(doc, "value"), out);
		if (strcmp(out, "value") != 0 && out[0])
			ck_assert_int_eq(int_member(doc, out), 1);
		octo_json_free(doc);
	}
	/* Bytes 1..127 pass; 128..255 in rising order never form a sequence. */
	memcpy(expect, all, 127);
	for (i = 0; i < 128; i++)
		memcpy(expect + 127 + i * 3, FFFD, 3);
	expect[sizeof(expect) - 1] = '\0';
	doc = parse(l.line[n], l.len[n]);
	ck_assert_str_eq(str_member(doc, "message"), expect);
	octo_json_free(doc);
	doc = parse(l.line[n + 1], l.len[n + 1]);
	ck_assert_str_eq(str_member(doc, "message"), big);
	octo_json_free(doc);
	lines_free(&l);
	free(big);
}
END_TEST

/* ---- the threshold ----------------------------------------------------- */

START_TEST(records_under_the_threshold_are_not_written)
{
	octo_log_options o = file_options();
	octo_log_level l;
	octo_json *doc;
	lines lns;

	o.level = OCTO_LOG_WARN;
	log_ = open_log(&o);
	ck_assert_int_eq(octo_log_enabled(log_, OCTO_LOG_DEBUG), 0);
	ck_assert_int_eq(octo_log_enabled(log_, OCTO_LOG_INFO), 0);
	ck_assert_int_eq(octo_log_enabled(log_, OCTO_LOG_WARN), 1);
	ck_assert_int_eq(octo_log_enabled(log_, OCTO_LOG_ERROR), 1);
	for (l = OCTO_LOG_DEBUG; l <= OCTO_LOG_ERROR; l++)
		octo_log_write(log_, l, octo_log_level_name(l), NULL, 0);
	read_lines(path, &lns);
	ck_assert_uint_eq(lns.n, 2);
	doc = parse(lns.line[0], lns.len[0]);
	ck_assert_str_eq(str_member(doc, "level"), "warn");
	octo_json_free(doc);
	doc = parse(lns.line[1], lns.len[1]);
	ck_assert_str_eq(str_member(doc, "level"), "error");
	octo_json_free(doc);
	lines_free(&lns);
	ck_assert_uint_eq(stats(log_).written, 2);
}
END_TEST

START_TEST(debug_threshold_enables_every_level)
{
	octo_log_options o = file_options();
	octo_log_level l;
	lines lns;

	o.level = OCTO_LOG_DEBUG;
	log_ = open_log(&o);
	for (l = OCTO_LOG_DEBUG; l <= OCTO_LOG_ERROR; l++) {
		ck_assert_int_eq(octo_log_enabled(log_, l), 1);
		octo_log_write(log_, l, "x", NULL, 0);
	}
	read_lines(path, &lns);
	ck_assert_uint_eq(lns.n, 4);
	ck_assert_ptr_nonnull(strstr(lns.line[0], "\"level\":\"debug\""));
	lines_free(&lns);
}
END_TEST

/* ---- threads ------------------------------------------------------------- */

#define THREADS 8
#define LINES_PER_THREAD 2000

typedef struct {
	octo_log *log;
	int id;
} worker;

static void *write_lines(void *arg)
{
	worker *w = arg;
	char pad[301];
	int i;

	/* Long lines, so any interleaving would break them. */
	memset(pad, 'a' + w->id, sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	for (i = 0; i < LINES_PER_THREAD; i++) {
		octo_log_field f[] = {
			OCTO_LOG_INT("thread", w->id), OCTO_LOG_INT("seq", i), OCTO_LOG_STR("pad", pad),
		};
		octo_log_write(w->log, OCTO_LOG_INFO, "concurrent", f, N_ELEMS(f));
	}
	return NULL;
}

START_TEST(many_threads_write_whole_lines_to_one_file)
{
	static unsigned char seen[THREADS][LINES_PER_THREAD];
	octo_log_options o = file_options();
	pthread_t threads[THREADS];
	worker workers[THREADS];
	octo_json *doc;
	size_t i;
	lines l;

	memset(seen, 0, sizeof(seen));
	log_ = open_log(&o);
	for (i = 0; i < THREADS; i++) {
		workers[i].log = log_;
		workers[i].id = (int)i;
		ck_assert_int_eq(pthread_create(&threads[i], NULL, write_lines, &workers[i]), 0);
	}
	for (i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);
	read_lines(path, &l);
	ck_assert_uint_eq(l.n, THREADS * LINES_PER_THREAD);
	for (i = 0; i < l.n; i++) {
		int64_t t, s;
		doc = parse(l.line[i], l.len[i]);
		t = int_member(doc, "thread");
		s = int_member(doc, "seq");
		ck_assert(t >= 0 && t < THREADS && s >= 0 && s < LINES_PER_THREAD);
		ck_assert_int_eq(seen[t][s]++, 0);
		ck_assert_uint_eq(strlen(str_member(doc, "pad")), 300);
		octo_json_free(doc);
	}
	lines_free(&l);
	ck_assert_uint_eq(stats(log_).written, THREADS * LINES_PER_THREAD);
}
END_TEST

/* ---- reopen ------------------------------------------------------------ */

static void assert_messages(const char *file, const char *const *want, size_t n)
{
	octo_json *doc;
	size_t i;
	lines l;

	read_lines(file, &l);
	ck_assert_uint_eq(l.n, n);
	for (i = 0; i < n; i++) {
		doc = parse(l.line[i], l.len[i]);
		ck_assert_str_eq(str_member(doc, "message"), want[i]);
		octo_json_free(doc);
	}
	lines_free(&l);
}

START_TEST(reopen_after_rename_starts_a_new_file)
{
	static const char *const old_lines[] = { "before-1", "before-2" };
	static const char *const new_lines[] = { "after-1", "after-2", "after-3" };
	octo_log_options o = file_options();
	char rotated[600];
	struct stat st;
	size_t i;

	snprintf(rotated, sizeof(rotated), "%s.1", path);
	log_ = open_log(&o);
	for (i = 0; i < N_ELEMS(old_lines); i++)
		octo_log_write(log_, OCTO_LOG_INFO, old_lines[i], NULL, 0);
	ck_assert_int_eq(rename(path, rotated), 0);
	ck_assert_int_eq(octo_log_reopen(log_), 0);
	ck_assert_int_eq(stat(path, &st), 0);
	for (i = 0; i < N_ELEMS(new_lines); i++)
		octo_log_write(log_, OCTO_LOG_INFO, new_lines[i], NULL, 0);
	assert_messages(rotated, old_lines, N_ELEMS(old_lines));
	assert_messages(path, new_lines, N_ELEMS(new_lines));
	ck_assert_uint_eq(stats(log_).written, 5);
}
END_TEST

START_TEST(reopen_failure_keeps_the_old_file)
{
	static const char *const want[] = { "first", "second" };
	octo_log_options o = file_options();
	char sub[300], moved[300], file[600], moved_file[600];

	snprintf(sub, sizeof(sub), "%s/sub", dir);
	snprintf(moved, sizeof(moved), "%s/moved", dir);
	snprintf(file, sizeof(file), "%s/app.log", sub);
	snprintf(moved_file, sizeof(moved_file), "%s/app.log", moved);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	o.path = file;
	log_ = open_log(&o);
	octo_log_write(log_, OCTO_LOG_INFO, want[0], NULL, 0);
	ck_assert_int_eq(rename(sub, moved), 0);
	ck_assert_int_eq(octo_log_reopen(log_), OCTO_EIO);
	ck_assert_str_ne(octo_error_last(), "");
	octo_log_write(log_, OCTO_LOG_INFO, want[1], NULL, 0);
	assert_messages(moved_file, want, 2);
}
END_TEST

/* ---- the Elasticsearch receiver ------------------------------------------ */

typedef enum {
	ANSWER_OK,         /* 200, every item created */
	ANSWER_429_FIRST,  /* 429 to the first request, then as ANSWER_OK */
	ANSWER_ITEMS,      /* 200 with errors: "retry-me" 429 once, "reject-me" 400 */
	ANSWER_503         /* always 503 */
} script;

typedef struct {
	char *method, *url, *type;
	char *body;
	size_t len;
} request;

typedef struct {
	struct MHD_Daemon *daemon;
	char url[64];
	script script;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	request *reqs;
	size_t n, cap;
	int retry_answered;  /* ANSWER_ITEMS: "retry-me" got its 429 */
} receiver;

static receiver rcv;

typedef struct {
	char *data;
	size_t len;
} upload;

static char *copy_or_empty(const char *s)
{
	return strdup(s ? s : "");
}

/* Under the lock. The receiver runs on MHD's thread, where a failed
 * assertion could not end the test, so it only records; the tests check. */
static void record_request(receiver *r, struct MHD_Connection *conn, const char *method,
                           const char *url, const upload *u)
{
	request *q;

	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 16;
		r->reqs = realloc(r->reqs, r->cap * sizeof(*r->reqs));
	}
	q = &r->reqs[r->n++];
	q->method = copy_or_empty(method);
	q->url = copy_or_empty(url);
	q->type = copy_or_empty(MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	                                                    MHD_HTTP_HEADER_CONTENT_TYPE));
	q->body = malloc(u->len + 1);
	memcpy(q->body, u->data ? u->data : "", u->len);
	q->body[u->len] = '\0';
	q->len = u->len;
}

static int has(const char *line, size_t len, const char *s)
{
	return memmem(line, len, s, strlen(s)) != NULL;
}

/* Under the lock: the status of a document (one line) in a 2xx answer. */
static int item_status(receiver *r, const char *doc, size_t len)
{
	if (r->script != ANSWER_ITEMS)
		return 201;
	if (has(doc, len, "\"message\":\"reject-me\""))
		return 400;
	if (has(doc, len, "\"message\":\"retry-me\"") && !r->retry_answered) {
		r->retry_answered = 1;
		return 429;
	}
	return 201;
}

static void write_item(octo_json_writer *w, int status)
{
	octo_json_write_object_begin(w);
	octo_json_write_key(w, "create");
	octo_json_write_object_begin(w);
	octo_json_write_key(w, "_index");
	octo_json_write_string(w, "logs-octopus");
	octo_json_write_key(w, "status");
	octo_json_write_int(w, status);
	if (status >= 300) {
		octo_json_write_key(w, "error");
		octo_json_write_object_begin(w);
		octo_json_write_key(w, "type");
		octo_json_write_string(w, status == 429 ? "es_rejected_execution_exception"
		                                        : "document_parsing_exception");
		octo_json_write_object_end(w);
	}
	octo_json_write_object_end(w);
	octo_json_write_object_end(w);
}

/* Under the lock: a _bulk answer, one item per document (every second
 * line of the body). */
static char *bulk_answer(receiver *r, const request *q)
{
	int status[4096], errors = 0;
	octo_json_writer *w = NULL;
	const char *p = q->body, *nl;
	char *text = NULL;
	size_t n = 0, line = 0, i;

	for (; (nl = strchr(p, '\n')) != NULL && n < N_ELEMS(status); p = nl + 1)
		if (line++ % 2 == 1 && (status[n++] = item_status(r, p, (size_t)(nl - p))) >= 300)
			errors = 1;
	if (octo_json_writer_new(&w) < 0)
		return NULL;
	octo_json_write_object_begin(w);
	octo_json_write_key(w, "took");
	octo_json_write_int(w, 3);
	octo_json_write_key(w, "errors");
	octo_json_write_bool(w, errors);
	octo_json_write_key(w, "items");
	octo_json_write_array_begin(w);
	for (i = 0; i < n; i++)
		write_item(w, status[i]);
	octo_json_write_array_end(w);
	octo_json_write_object_end(w);
	octo_json_writer_finish(w, &text, NULL);
	octo_json_writer_free(w);
	return text;
}

static enum MHD_Result answer(receiver *r, struct MHD_Connection *conn, const char *method,
                              const char *url, const upload *u)
{
	struct MHD_Response *resp;
	unsigned int status = 200;
	enum MHD_Result ok;
	char *text = NULL;

	pthread_mutex_lock(&r->mu);
	record_request(r, conn, method, url, u);
	if (r->script == ANSWER_503 || (r->script == ANSWER_429_FIRST && r->n == 1))
		status = r->script == ANSWER_503 ? 503 : 429;
	else
		text = bulk_answer(r, &r->reqs[r->n - 1]);
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->mu);
	if (!text)
		text = strdup(status == 200 ? "not json" : "{\"error\":\"overloaded\",\"status\":429}");
	resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_COPY);
	free(text);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	ok = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *data, size_t *size, void **state)
{
	upload *u = *state;
	char *grown;

	(void)version;
	if (!u) {
		*state = u = calloc(1, sizeof(*u));
		return u ? MHD_YES : MHD_NO;
	}
	if (*size > 0) {
		/* The body arrives in pieces across calls. */
		if (!(grown = realloc(u->data, u->len + *size)))
			return MHD_NO;
		u->data = grown;
		memcpy(u->data + u->len, data, *size);
		u->len += *size;
		*size = 0;
		return MHD_YES;
	}
	return answer(cls, conn, method, url, u);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **state,
                         enum MHD_RequestTerminationCode code)
{
	upload *u = *state;

	(void)cls;
	(void)conn;
	(void)code;
	if (u) {
		free(u->data);
		free(u);
	}
	*state = NULL;
}

static void receiver_start(receiver *r, script s)
{
	const union MHD_DaemonInfo *info;
	struct sockaddr_in sa;

	memset(r, 0, sizeof(*r));
	r->script = s;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cond, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
	                             on_request, r, MHD_OPTION_SOCK_ADDR, &sa,
	                             MHD_OPTION_NOTIFY_COMPLETED, on_completed, r,
	                             MHD_OPTION_END);
	ck_assert_ptr_nonnull(r->daemon);
	info = MHD_get_daemon_info(r->daemon, MHD_DAEMON_INFO_BIND_PORT);
	ck_assert_ptr_nonnull(info);
	ck_assert_uint_gt(info->port, 0);
	snprintf(r->url, sizeof(r->url), "http://127.0.0.1:%u/", (unsigned)info->port);
}

static void receiver_stop(receiver *r)
{
	size_t i;

	if (!r->daemon)
		return;
	MHD_stop_daemon(r->daemon);
	r->daemon = NULL;
	for (i = 0; i < r->n; i++) {
		free(r->reqs[i].method);
		free(r->reqs[i].url);
		free(r->reqs[i].type);
		free(r->reqs[i].body);
	}
	free(r->reqs);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cond);
}

static void es_setup(void)
{
	setup();
	memset(&rcv, 0, sizeof(rcv));
}

/* The logger goes first: its thread may still hold a connection. */
static void es_teardown(void)
{
	octo_log_free(log_);
	log_ = NULL;
	receiver_stop(&rcv);
	tu_rmtree(dir);
}

static octo_log_options es_options(const char *url)
{
	octo_log_options o = file_options();

	o.elasticsearch_url = url;
	o.es_buffer_max = 1000;
	o.es_batch_max = 100;
	o.es_flush_ms = 20;
	o.es_timeout_ms = 30000;
	o.es_retry_max_ms = 50;
	return o;
}

static size_t requests_received(receiver *r)
{
	size_t n;

	pthread_mutex_lock(&r->mu);
	n = r->n;
	pthread_mutex_unlock(&r->mu);
	return n;
}

/* Waits for the receiver to have answered `n` requests. */
static void wait_requests(receiver *r, size_t n)
{
	struct timespec ts;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_MS / 1000;
	pthread_mutex_lock(&r->mu);
	while (r->n < n && rc == 0)
		rc = pthread_cond_timedwait(&r->cond, &r->mu, &ts);
	pthread_mutex_unlock(&r->mu);
	ck_assert_uint_ge(requests_received(r), n);
}

/* "YYYY.MM.DD" of a record's "@timestamp". */
static void index_date(const char *ts, char out[11])
{
	memcpy(out, ts, 10);
	out[4] = out[7] = '.';
	out[10] = '\0';
}

static void utc_date(char out[11])
{
	char ts[32];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%d", &tm);
	index_date(ts, out);
}

/* The day the test started and the day it checks: a run across midnight
 * may see either. */
static char day_before[11];

static void check_action(const char *action, size_t len, const octo_json *docj)
{
	octo_json *a = parse(action, len);
	const octo_json_value *create = octo_json_get(octo_json_root(a), "create");
	const char *index = NULL;
	char want[64], day[11], today[11];

	ck_assert_uint_eq(octo_json_size(octo_json_root(a)), 1);
	ck_assert_int_eq(octo_json_typeof(create), OCTO_JSON_OBJECT);
	ck_assert_uint_eq(octo_json_size(create), 1);
	ck_assert_int_eq(octo_json_string(octo_json_get(create, "_index"), &index), 0);
	index_date(str_member(docj, "@timestamp"), day);
	snprintf(want, sizeof(want), "logs-octopus-%s", day);
	ck_assert_str_eq(index, want);
	utc_date(today);
	ck_assert_msg(strcmp(day, day_before) == 0 || strcmp(day, today) == 0,
	              "index day %s is not today (%s)", day, today);
	octo_json_free(a);
}

static void check_document(const octo_json *d)
{
	const char *level = str_member(d, "log.level");

	assert_timestamp_format(str_member(d, "@timestamp"));
	ck_assert(strcmp(level, "debug") == 0 || strcmp(level, "info") == 0 ||
	          strcmp(level, "warn") == 0 || strcmp(level, "error") == 0);
	ck_assert_int_eq(type_of(d, "message"), OCTO_JSON_STRING);
	ck_assert_str_eq(str_member(d, "service.name"), "octopus-api");
	ck_assert_str_eq(str_member(d, "ecs.version"), "8.11.0");
	ck_assert_ptr_null(octo_json_get(octo_json_root(d), "timestamp"));
	ck_assert_ptr_null(octo_json_get(octo_json_root(d), "level"));
}

/* Calls `fn` on each document of request `q`, checking the _bulk format
 * on the way: NDJSON, lines alternating action and document. */
typedef void (*doc_fn)(const octo_json *doc, void *arg);

static void each_document(const request *q, doc_fn fn, void *arg)
{
	const char *p = q->body, *action, *nl;
	size_t alen, lines_seen = 0;
	octo_json *d;

	ck_assert_str_eq(q->method, "POST");
	ck_assert_str_eq(q->url, "/_bulk");
	ck_assert_str_eq(q->type, "application/x-ndjson");
	ck_assert_uint_gt(q->len, 0);
	ck_assert_int_eq(q->body[q->len - 1], '\n');
	ck_assert_uint_eq(strlen(q->body), q->len);
	while (*p) {
		action = p;
		nl = strchr(p, '\n');
		alen = (size_t)(nl - p);
		p = nl + 1;
		ck_assert_msg(*p != '\0', "an action line without its document");
		nl = strchr(p, '\n');
		d = parse(p, (size_t)(nl - p));
		check_action(action, alen, d);
		check_document(d);
		if (fn)
			fn(d, arg);
		octo_json_free(d);
		p = nl + 1;
		lines_seen += 2;
	}
	ck_assert_uint_gt(lines_seen, 0);
}

typedef struct {
	const char *message;
	size_t seen;
} counter;

static void count_message(const octo_json *d, void *arg)
{
	counter *c = arg;

	if (strcmp(str_member(d, "message"), c->message) == 0)
		c->seen++;
}

/* How often a message arrived, in request `index` or (SIZE_MAX) in all. */
static size_t times_received(receiver *r, const char *message, size_t index)
{
	counter c = { message, 0 };
	size_t i;

	pthread_mutex_lock(&r->mu);
	for (i = 0; i < r->n; i++)
		if (index == SIZE_MAX || index == i)
			each_document(&r->reqs[i], count_message, &c);
	pthread_mutex_unlock(&r->mu);
	return c.seen;
}

/* All documents received; checks the format of every request on the way. */
static size_t documents_received(receiver *r)
{
	counter c = { "", 0 };
	size_t i, n = 0;

	pthread_mutex_lock(&r->mu);
	for (i = 0; i < r->n; i++) {
		const char *p;
		each_document(&r->reqs[i], count_message, &c);
		for (p = r->reqs[i].body; *p; p++)
			n += *p == '\n';
	}
	pthread_mutex_unlock(&r->mu);
	return n / 2;
}

/* The first document with this message, parsed; the caller frees it. */
static octo_json *find_document(receiver *r, const char *message)
{
	size_t i;

	pthread_mutex_lock(&r->mu);
	for (i = 0; i < r->n; i++) {
		const char *p = r->reqs[i].body, *nl;
		size_t line = 0;
		for (; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
			octo_json *d;
			if (line++ % 2 == 0)
				continue;
			d = parse(p, (size_t)(nl - p));
			if (strcmp(str_member(d, "message"), message) == 0) {
				pthread_mutex_unlock(&r->mu);
				return d;
			}
			octo_json_free(d);
		}
	}
	pthread_mutex_unlock(&r->mu);
	ck_abort_msg("no document with message \"%s\"", message);
	return NULL;
}

static void write_messages(octo_log *log, const char *prefix, int n)
{
	char m[64];
	int i;

	for (i = 0; i < n; i++) {
		snprintf(m, sizeof(m), "%s%d", prefix, i);
		octo_log_write(log, OCTO_LOG_INFO, m, NULL, 0);
	}
}

/* ---- Elasticsearch: the wire format -------------------------------------- */

START_TEST(records_reach_elasticsearch_as_ecs_documents)
{
	octo_log_field f[] = {
		OCTO_LOG_STR("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"),
		OCTO_LOG_STR("span_id", "00f067aa0ba902b7"),
		OCTO_LOG_STR("request_id", "req-1"),
		OCTO_LOG_STR("method", "GET"),
		OCTO_LOG_INT("status", 200),
		OCTO_LOG_INT("bytes", 1234),
		OCTO_LOG_STR("path", "/v1/files/7"),
		OCTO_LOG_STR("client", "192.0.2.1"),
		OCTO_LOG_INT("duration_ms", 12),
		OCTO_LOG_STR("error", "boom"),
		OCTO_LOG_INT("file_id", 7),
		OCTO_LOG_BOOL("cached", 1),
		OCTO_LOG_DOUBLE("ratio", 0.5),
		OCTO_LOG_STR("note", NULL),
		OCTO_LOG_DOUBLE("bad", NAN),
		OCTO_LOG_STR("message", "ignored"),
		OCTO_LOG_STR("service", "ignored"),
	};
	octo_log_field g[] = { OCTO_LOG_DOUBLE("duration_ms", 1.5), OCTO_LOG_STR("x\x80", "\xff") };
	octo_log_options o;
	octo_log_stats s;
	octo_json *d;

	utc_date(day_before);
	receiver_start(&rcv, ANSWER_OK);
	o = es_options(rcv.url);
	log_ = open_log(&o);
	octo_log_write(log_, OCTO_LOG_INFO, "request done", f, N_ELEMS(f));
	octo_log_write(log_, OCTO_LOG_ERROR, "second", g, N_ELEMS(g));
	octo_log_write(log_, OCTO_LOG_DEBUG, "hidden", NULL, 0);
	ck_assert_int_eq(octo_log_flush(log_, WAIT_MS), 0);
	s = stats(log_);
	ck_assert_uint_eq(s.written, 2);
	ck_assert_uint_eq(s.shipped, 2);
	ck_assert_uint_eq(s.dropped, 0);
	ck_assert_uint_eq(s.buffered, 0);
	ck_assert_uint_eq(s.retried, 0);
	ck_assert_uint_eq(documents_received(&rcv), 2);
	ck_assert_uint_eq(times_received(&rcv, "hidden", SIZE_MAX), 0);

	d = find_document(&rcv, "request done");
	ck_assert_str_eq(str_member(d, "log.level"), "info");
	ck_assert_str_eq(str_member(d, "trace.id"), "4bf92f3577b34da6a3ce929d0e0e4736");
	ck_assert_str_eq(str_member(d, "span.id"), "00f067aa0ba902b7");
	ck_assert_str_eq(str_member(d, "http.request.id"), "req-1");
	ck_assert_str_eq(str_member(d, "http.request.method"), "GET");
	ck_assert_int_eq(int_member(d, "http.response.status_code"), 200);
	ck_assert_int_eq(int_member(d, "http.response.body.bytes"), 1234);
	ck_assert_str_eq(str_member(d, "url.path"), "/v1/files/7");
	ck_assert_str_eq(str_member(d, "client.address"), "192.0.2.1");
	ck_assert_int_eq(int_member(d, "event.duration"), 12000000);
	ck_assert_str_eq(str_member(d, "error.message"), "boom");
	ck_assert_int_eq(int_member(d, "labels.file_id"), 7);
	ck_assert_int_eq(bool_member(d, "labels.cached"), 1);
	ck_assert_int_eq(type_of(d, "labels.ratio"), OCTO_JSON_NUMBER);
	ck_assert_int_eq(type_of(d, "labels.note"), OCTO_JSON_NULL);
	ck_assert_int_eq(type_of(d, "labels.bad"), OCTO_JSON_NULL);
	ck_assert_ptr_null(octo_json_get(octo_json_root(d), "labels.message"));
	ck_assert_ptr_null(octo_json_get(octo_json_root(d), "labels.service"));
	ck_assert_ptr_null(octo_json_get(octo_json_root(d), "labels.trace_id"));
	ck_assert_ptr_null(octo_json_get(octo_json_root(d), "labels.duration_ms"));
	/* Five ECS members, ten mapped fields, five labels. */
	ck_assert_uint_eq(octo_json_size(octo_json_root(d)), 5 + 10 + 5);
	octo_json_free(d);

	d = find_document(&rcv, "second");
	ck_assert_str_eq(str_member(d, "log.level"), "error");
	ck_assert_int_eq(int_member(d, "event.duration"), 1500000);
	ck_assert_str_eq(str_member(d, "labels.x" FFFD), FFFD);
	octo_json_free(d);
}
END_TEST

START_TEST(a_full_batch_goes_without_waiting_for_the_flush_delay)
{
	octo_log_options o;

	utc_date(day_before);
	receiver_start(&rcv, ANSWER_OK);
	o = es_options(rcv.url);
	o.es_batch_max = 10;
	o.es_flush_ms = 3600000; /* only a full batch can go */
	log_ = open_log(&o);
	write_messages(log_, "batched-", 25);
	wait_requests(&rcv, 2);
	ck_assert_uint_eq(times_received(&rcv, "batched-0", 0), 1);
	ck_assert_uint_eq(times_received(&rcv, "batched-9", 0), 1);
	ck_assert_uint_eq(times_received(&rcv, "batched-10", 1), 1);
	ck_assert_uint_eq(times_received(&rcv, "batched-19", 1), 1);
	/* The last five wait for the flush, which sends them at once. */
	ck_assert_int_eq(octo_log_flush(log_, WAIT_MS), 0);
	ck_assert_uint_eq(documents_received(&rcv), 25);
	ck_assert_uint_eq(stats(log_).shipped, 25);
}
END_TEST

START_TEST(free_without_flush_ships_what_is_buffered)
{
	octo_log_options o;
	octo_log_stats s;
	char m[32];
	int i;

	utc_date(day_before);
	receiver_start(&rcv, ANSWER_OK);
	o = es_options(rcv.url);
	o.es_flush_ms = 3600000; /* nothing goes before the end */
	log_ = open_log(&o);
	write_messages(log_, "last-words-", 7);
	s = stats(log_);
	ck_assert_uint_eq(s.buffered, 7);
	ck_assert_uint_eq(s.shipped, 0);
	ck_assert_uint_eq(requests_received(&rcv), 0);
	octo_log_free(log_);
	log_ = NULL;
	ck_assert_uint_eq(documents_received(&rcv), 7);
	for (i = 0; i < 7; i++) {
		snprintf(m, sizeof(m), "last-words-%d", i);
		ck_assert_uint_eq(times_received(&rcv, m, SIZE_MAX), 1);
	}
}
END_TEST

/* ---- Elasticsearch: failures --------------------------------------------- */

START_TEST(a_429_answer_is_retried_until_shipped)
{
	octo_log_options o;
	octo_log_stats s;
	char m[32];
	size_t first;
	int i;

	utc_date(day_before);
	receiver_start(&rcv, ANSWER_429_FIRST);
	o = es_options(rcv.url);
	log_ = open_log(&o);
	write_messages(log_, "again-", 5);
	ck_assert_int_eq(octo_log_flush(log_, WAIT_MS), 0);
	s = stats(log_);
	ck_assert_uint_eq(s.shipped, 5);
	ck_assert_uint_eq(s.dropped, 0);
	ck_assert_uint_eq(s.buffered, 0);
	ck_assert_uint_gt(s.retried, 0);
	ck_assert_uint_ge(requests_received(&rcv), 2);
	/* What the 429 refused came again in a later request. */
	for (i = 0; i < 5; i++) {
		snprintf(m, sizeof(m), "again-%d", i);
		first = times_received(&rcv, m, 0);
		ck_assert_uint_eq(times_received(&rcv, m, SIZE_MAX), first + 1);
	}
}
END_TEST

START_TEST(refused_items_are_retried_or_dropped_by_status)
{
	octo_log_options o;
	octo_log_stats s;

	utc_date(day_before);
	receiver_start(&rcv, ANSWER_ITEMS);
	o = es_options(rcv.url);
	o.es_batch_max = 4;
	o.es_flush_ms = 3600000; /* the four go together */
	log_ = open_log(&o);
	octo_log_write(log_, OCTO_LOG_INFO, "ok-1", NULL, 0);
	octo_log_write(log_, OCTO_LOG_INFO, "retry-me", NULL, 0);
	octo_log_write(log_, OCTO_LOG_INFO, "reject-me", NULL, 0);
	octo_log_write(log_, OCTO_LOG_INFO, "ok-2", NULL, 0);
	ck_assert_int_eq(octo_log_flush(log_, WAIT_MS), 0);
	s = stats(log_);
	ck_assert_uint_eq(s.shipped, 3);
	ck_assert_uint_eq(s.dropped, 1);
	ck_assert_uint_eq(s.buffered, 0);
	ck_assert_uint_gt(s.retried, 0);
	ck_assert_uint_eq(times_received(&rcv, "retry-me", 0), 1);
	ck_assert_uint_eq(times_received(&rcv, "reject-me", 0), 1);
	ck_assert_uint_eq(times_received(&rcv, "retry-me", SIZE_MAX), 2);
	ck_assert_uint_eq(times_received(&rcv, "reject-me", SIZE_MAX), 1);
	ck_assert_uint_eq(times_received(&rcv, "ok-1", SIZE_MAX), 1);
	ck_assert_uint_eq(times_received(&rcv, "ok-2", SIZE_MAX), 1);
}
END_TEST

START_TEST(free_during_backoff_makes_one_last_attempt)
{
	octo_log_options o;
	size_t before;

	utc_date(day_before);
	receiver_start(&rcv, ANSWER_503);
	o = es_options(rcv.url);
	o.es_retry_max_ms = 3600000;
	log_ = open_log(&o);
	write_messages(log_, "doomed-", 3);
	wait_requests(&rcv, 2);
	ck_assert_int_eq(octo_log_flush(log_, 0), OCTO_EUNAVAILABLE);
	before = requests_received(&rcv);
	octo_log_free(log_);
	log_ = NULL;
	ck_assert_uint_gt(requests_received(&rcv), before);
	ck_assert_uint_eq(times_received(&rcv, "doomed-2", requests_received(&rcv) - 1), 1);
}
END_TEST

/* A loopback port that accepts connections in its backlog and never
 * answers. */
static int listen_silent(char url[64])
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 64), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	snprintf(url, 64, "http://127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
	return fd;
}

static octo_log_options silent_options(const char *url)
{
	octo_log_options o = es_options(url);

	o.es_buffer_max = 10;
	o.es_batch_max = 5;
	o.es_timeout_ms = 100;
	return o;
}

START_TEST(a_silent_server_never_blocks_writers)
{
	char url[64];
	int fd = listen_silent(url);
	octo_log_options o = silent_options(url);
	octo_log_stats s;

	log_ = open_log(&o);
	/* Would hang here if a write waited for the network. */
	write_messages(log_, "unheard-", 1000);
	s = stats(log_);
	ck_assert_uint_eq(s.written, 1000);
	ck_assert_uint_eq(s.shipped, 0);
	ck_assert_uint_gt(s.dropped, 0);
	ck_assert_uint_le(s.buffered, 10);
	ck_assert_uint_eq(s.shipped + s.dropped + s.buffered, s.written);
	octo_log_free(log_);
	log_ = NULL;
	close(fd);
}
END_TEST

START_TEST(flush_gives_up_against_a_silent_server)
{
	char url[64];
	int fd = listen_silent(url);
	octo_log_options o = silent_options(url);
	octo_log_stats s;

	log_ = open_log(&o);
	write_messages(log_, "waiting-", 3);
	ck_assert_int_eq(octo_log_flush(log_, 50), OCTO_EUNAVAILABLE);
	ck_assert_str_ne(octo_error_last(), "");
	s = stats(log_);
	ck_assert_uint_eq(s.buffered, 3);
	ck_assert_uint_eq(s.shipped + s.dropped, 0);
	octo_log_free(log_);
	log_ = NULL;
	close(fd);
}
END_TEST

static TCase *log_tcase(Suite *s, const char *name, int es)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, 120);
	if (es)
		tcase_add_checked_fixture(tc, es_setup, es_teardown);
	else
		tcase_add_checked_fixture(tc, setup, teardown);
	suite_add_tcase(s, tc);
	return tc;
}

int main(void)
{
	Suite *s = suite_create("log");
	TCase *tc;

	tc = log_tcase(s, "level names", 0);
	tcase_add_test(tc, level_parse_accepts_every_name_in_any_case);
	tcase_add_test(tc, level_parse_refuses_anything_else);
	tcase_add_test(tc, level_name_names_each_level_and_round_trips);

	tc = log_tcase(s, "new", 0);
	tcase_add_loop_test(tc, new_refuses_bad_options, 0, BAD_OPTIONS);
	tcase_add_test(tc, new_refuses_missing_arguments);
	tcase_add_test(tc, new_reports_an_unwritable_path_as_io_error);
	tcase_add_test(tc, new_accepts_good_urls_and_ignores_es_sizes_without_a_url);
	tcase_add_test(tc, new_creates_the_file_0640_and_appends_to_it);
	tcase_add_test(tc, a_null_logger_is_accepted_everywhere);

	tc = log_tcase(s, "line format", 0);
	tcase_add_test(tc, a_line_has_the_documented_members_and_typed_fields);
	tcase_add_test(tc, reserved_and_repeated_keys_are_skipped_and_order_is_kept);
	tcase_add_test(tc, without_a_path_lines_go_to_stderr);
	tcase_add_test(tc, writing_keeps_errno_and_the_last_error);

	tc = log_tcase(s, "hostile input", 0);
	tcase_add_test(tc, any_bytes_give_valid_json_and_utf8_round_trips);

	tc = log_tcase(s, "threshold", 0);
	tcase_add_test(tc, records_under_the_threshold_are_not_written);
	tcase_add_test(tc, debug_threshold_enables_every_level);

	tc = log_tcase(s, "threads", 0);
	tcase_add_test(tc, many_threads_write_whole_lines_to_one_file);

	tc = log_tcase(s, "reopen", 0);
	tcase_add_test(tc, reopen_after_rename_starts_a_new_file);
	tcase_add_test(tc, reopen_failure_keeps_the_old_file);

	tc = log_tcase(s, "elasticsearch format", 1);
	tcase_add_test(tc, records_reach_elasticsearch_as_ecs_documents);
	tcase_add_test(tc, a_full_batch_goes_without_waiting_for_the_flush_delay);
	tcase_add_test(tc, free_without_flush_ships_what_is_buffered);

	tc = log_tcase(s, "elasticsearch failures", 1);
	tcase_add_test(tc, a_429_answer_is_retried_until_shipped);
	tcase_add_test(tc, refused_items_are_retried_or_dropped_by_status);
	tcase_add_test(tc, free_during_backoff_makes_one_last_attempt);
	tcase_add_test(tc, a_silent_server_never_blocks_writers);
	tcase_add_test(tc, flush_gives_up_against_a_silent_server);
	return tu_run(s);
}
