/* Object storage over S3, against a real S3 server (s3rver, started by
 * tests/s3server.c): the contract every backend keeps, the options
 * octo_store_open_s3() accepts, refused credentials, and what happens
 * when the server goes away and comes back. */
#include "config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <octopus/octopus.h>

#include "s3server.h"
#include "store_contract.h"
#include "testutil.h"

/* Bounds on each call: long enough for 65 MiB on a slow machine (and
 * under valgrind), short where the test waits for failures. */
#define CONTRACT_TIMEOUT_MS 30000
#define FAULT_TIMEOUT_MS 1500
/* What a failing call may take beyond its timeout. */
#define SLACK_MS 2000

#define WRONG_SECRET "wrong-Secret-7f3a9c"

/* The suite's server, started once for the contract and the option tests. */
static ts3_server srv;

static void start_server(void)
{
	ts3_start(&srv);
}

static void destroy_server(void)
{
	ts3_destroy(&srv);
}

static octo_s3_options options(const char *endpoint, const char *secret, uint32_t timeout_ms)
{
	octo_s3_options o = OCTO_S3_OPTIONS_INIT;

	o.endpoint = endpoint;
	o.region = "us-east-1";
	o.access_key_id = TS3_ACCESS_KEY;
	o.secret_access_key = secret;
	o.bucket = TS3_BUCKET;
	o.force_path_style = 1;
	o.timeout_ms = timeout_ms;
	return o;
}

static octo_store *open_store(const char *endpoint, const char *secret, uint32_t timeout_ms)
{
	octo_s3_options o = options(endpoint, secret, timeout_ms);
	octo_store *s = NULL;

	ck_assert_int_eq(octo_store_open_s3(&s, &o), 0);
	ck_assert_ptr_nonnull(s);
	return s;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the contract --------------------------------------------------- */

static octo_store *open_contract_store(void)
{
	return open_store(srv.endpoint, TS3_SECRET_KEY, CONTRACT_TIMEOUT_MS);
}

static const store_contract s3_contract = {
	.name = "contract_s3",
	.open = open_contract_store,
	.close = octo_store_free,
	.presign = 1,
	.key_max = OCTO_STORE_KEY_MAX - 1, /* libs3 cuts longer keys in listings */
};

/* ---- identity ------------------------------------------------------- */

START_TEST(backend_is_named_s3)
{
	octo_store *s = open_store(srv.endpoint, TS3_SECRET_KEY, 5000);

	ck_assert_str_eq(octo_store_backend(s), "s3");
	octo_store_free(s);
}
END_TEST

START_TEST(features_name_the_signature)
{
	const char *f = octo_store_s3_features();

	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(strstr(f, "signature="));
	ck_assert_msg(strstr(f, "tls-verify=yes") || strstr(f, "tls-verify=no"), "%s", f);
	ck_assert_ptr_eq(octo_store_s3_features(), f); /* static */
}
END_TEST

/* ---- refused credentials -------------------------------------------- */

static void assert_denied(int rc, const char *what, const char *secret)
{
	ck_assert_msg(rc == OCTO_EDENIED, "%s gave %d, not OCTO_EDENIED", what, rc);
	ck_assert_str_ne(octo_error_last(), "");
	ck_assert_msg(strstr(octo_error_last(), secret) == NULL,
	              "%s: the message shows the secret: %s", what, octo_error_last());
}

static int ignore_key(const char *key, const octo_object_info *info, void *payload)
{
	(void)key;
	(void)info;
	(void)payload;
	return 0;
}

static int ignore_data(const void *data, size_t len, void *payload)
{
	(void)data;
	(void)len;
	(void)payload;
	return 0;
}

START_TEST(a_wrong_secret_is_denied_and_never_shown)
{
	octo_store *good = open_store(srv.endpoint, TS3_SECRET_KEY, 5000);
	octo_store *bad = open_store(srv.endpoint, WRONG_SECRET, 5000);
	char *data = NULL;
	size_t len = 0;
	int more = 0;

	ck_assert_int_eq(octo_store_put(good, "denied/exists", "x", 1), 0);
	assert_denied(octo_store_head(bad, "denied/exists", NULL), "head", WRONG_SECRET);
	assert_denied(octo_store_put(bad, "denied/new", "y", 1), "put", WRONG_SECRET);
	assert_denied(octo_store_list(bad, "denied/", NULL, 10, ignore_key, NULL, &more), "list",
	              WRONG_SECRET);
	assert_denied(octo_store_get(bad, "denied/exists", &data, &len), "get", WRONG_SECRET);
	ck_assert_ptr_null(data);
	assert_denied(octo_store_get_cb(bad, "denied/exists", ignore_data, NULL), "get_cb",
	              WRONG_SECRET);
	assert_denied(octo_store_ping(bad), "ping", WRONG_SECRET);
	/* Nothing was written with the wrong secret. */
	ck_assert_int_eq(octo_store_head(good, "denied/new", NULL), OCTO_ENOTFOUND);
	octo_store_free(bad);
	octo_store_free(good);
}
END_TEST

START_TEST(an_unknown_access_key_is_denied)
{
	octo_s3_options o = options(srv.endpoint, TS3_SECRET_KEY, 5000);
	octo_store *s = NULL;

	o.access_key_id = "NOBODY";
	o.secret_access_key = WRONG_SECRET;
	ck_assert_int_eq(octo_store_open_s3(&s, &o), 0);
	assert_denied(octo_store_head(s, "denied/exists", NULL), "head", WRONG_SECRET);
	assert_denied(octo_store_put(s, "denied/other", "z", 1), "put", WRONG_SECRET);
	octo_store_free(s);
}
END_TEST

/* ---- octo_store_open_s3 options ------------------------------------- */

static void assert_refused(const octo_s3_options *o, int code, const char *what)
{
	octo_store *s = NULL;
	int rc = octo_store_open_s3(&s, o);

	ck_assert_msg(rc == code, "%s: got %d, want %d", what, rc, code);
	ck_assert_ptr_null(s);
	ck_assert_str_ne(octo_error_last(), "");
	ck_assert_msg(strstr(octo_error_last(), WRONG_SECRET) == NULL, "%s", what);
}

START_TEST(open_s3_refuses_missing_options)
{
	octo_s3_options o;
	octo_store *s = NULL;

	o = options(srv.endpoint, WRONG_SECRET, 5000);
	o.bucket = NULL;
	assert_refused(&o, OCTO_EINVAL, "no bucket");
	o.bucket = "";
	assert_refused(&o, OCTO_EINVAL, "empty bucket");
	o.bucket = "Not_A_Bucket!";
	assert_refused(&o, OCTO_EINVAL, "bad bucket name");

	o = options(srv.endpoint, WRONG_SECRET, 5000);
	o.access_key_id = NULL;
	assert_refused(&o, OCTO_EINVAL, "no access key");
	o.access_key_id = "";
	assert_refused(&o, OCTO_EINVAL, "empty access key");

	o = options(srv.endpoint, NULL, 5000);
	assert_refused(&o, OCTO_EINVAL, "no secret");
	o = options(srv.endpoint, "", 5000);
	assert_refused(&o, OCTO_EINVAL, "empty secret");

	o = options(srv.endpoint, WRONG_SECRET, 5000);
	o.region = NULL;
	assert_refused(&o, OCTO_EINVAL, "no region");
	o.region = "";
	assert_refused(&o, OCTO_EINVAL, "empty region");

	o = options(srv.endpoint, WRONG_SECRET, 0);
	assert_refused(&o, OCTO_EINVAL, "zero timeout");
	o = options(srv.endpoint, WRONG_SECRET, 5000);
	o.max_attempts = 0;
	assert_refused(&o, OCTO_EINVAL, "zero attempts");
	o = options(srv.endpoint, WRONG_SECRET, 5000);
	o.version = OCTO_S3_OPTIONS_VERSION + 1;
	assert_refused(&o, OCTO_EINVAL, "unknown version");

	o = options(srv.endpoint, WRONG_SECRET, 5000);
	ck_assert_int_eq(octo_store_open_s3(&s, NULL), OCTO_EINVAL);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(octo_store_open_s3(NULL, &o), OCTO_EINVAL);
}
END_TEST

START_TEST(open_s3_refuses_malformed_endpoints)
{
	static const char *const bad[] = {
		"ftp://x", "http://", "https://", "http://h/path", "127.0.0.1:9000",
		"http://user@host", "http://h:1/?q", "",
	};
	octo_s3_options o;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o = options(bad[i], WRONG_SECRET, 5000);
		o.tls_verify = 0;
		assert_refused(&o, OCTO_EINVAL, bad[i]);
	}
}
END_TEST

START_TEST(open_s3_accepts_an_endpoint_with_a_trailing_slash)
{
	char endpoint[80];
	octo_store *s;

	snprintf(endpoint, sizeof(endpoint), "%s/", srv.endpoint);
	s = open_store(endpoint, TS3_SECRET_KEY, 5000);
	ck_assert_int_eq(octo_store_ping(s), 0);
	octo_store_free(s);
}
END_TEST

/* A short body, NUL-terminated (what does not fit is dropped). */
typedef struct {
	char text[256];
	size_t len;
} small_body;

static size_t to_small_body(char *data, size_t size, size_t n, void *payload)
{
	small_body *b = payload;
	size_t take = size * n;

	if (take > sizeof(b->text) - 1 - b->len)
		take = sizeof(b->text) - 1 - b->len;
	memcpy(b->text + b->len, data, take);
	b->len += take;
	b->text[b->len] = '\0';
	return size * n;
}

/* GET `url`: its status, and its body in `b`. */
static long fetch(const char *url, small_body *b)
{
	CURL *h = curl_easy_init();
	long status = 0;

	ck_assert_ptr_nonnull(h);
	b->len = 0;
	b->text[0] = '\0';
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, to_small_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
	ck_assert_int_eq(curl_easy_perform(h), CURLE_OK);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	return status;
}

/* Behind a gateway, presigned URLs name the gateway: the path and query
 * that follow are the signed ones, and the endpoint takes them as is. */
START_TEST(presigned_urls_start_with_the_public_url)
{
	static const char public_url[] = "http://gateway.example:8080/storage";
	octo_s3_options o = options(srv.endpoint, TS3_SECRET_KEY, 5000);
	char *url = NULL, forwarded[2048], want[128];
	octo_store *s = NULL;
	small_body b;

	o.public_url = "http://gateway.example:8080/storage/"; /* the slash is dropped */
	ck_assert_int_eq(octo_store_open_s3(&s, &o), 0);
	ck_assert_int_eq(octo_store_put(s, "public/a.txt", "through the gateway", 19), 0);
	ck_assert_int_eq(octo_store_presign(s, "public/a.txt", 600, &url), 0);
	snprintf(want, sizeof(want), "%s/" TS3_BUCKET "/public/a.txt?", public_url);
	ck_assert_msg(strncmp(url, want, strlen(want)) == 0, "%s", url);
	/* What the gateway passes on: the same path and query. */
	snprintf(forwarded, sizeof(forwarded), "%s%s", srv.endpoint, url + strlen(public_url));
	ck_assert_int_eq(fetch(forwarded, &b), 200);
	ck_assert_str_eq(b.text, "through the gateway");
	octo_free(url);
	octo_store_delete(s, "public/a.txt");
	octo_store_free(s);
}
END_TEST

START_TEST(a_bad_public_url_is_refused_and_version_1_has_none)
{
	static const char *const bad[] = {
		"ftp://x", "http://", "https:///storage", "http://h/p?q=1", "http://h p",
		"gateway:8080", "",
	};
	char longest[300];
	octo_s3_options o;
	octo_store *s = NULL;
	char *url = NULL;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o = options(srv.endpoint, TS3_SECRET_KEY, 5000);
		o.public_url = bad[i];
		assert_refused(&o, OCTO_EINVAL, bad[i]);
		ck_assert_ptr_nonnull(strstr(octo_error_last(), "public_url"));
	}
	/* In virtual-host style the bucket is in the host it would replace. */
	o = options(srv.endpoint, TS3_SECRET_KEY, 5000);
	o.public_url = "http://gateway.example:8080/storage";
	o.force_path_style = 0;
	assert_refused(&o, OCTO_EINVAL, "virtual-host style");
	ck_assert_ptr_nonnull(strstr(octo_error_last(), "force_path_style"));
	o.force_path_style = 1;
	memset(longest, 'a', sizeof(longest) - 1);
	memcpy(longest, "http://", 7);
	longest[256] = '\0';
	o.public_url = longest;
	assert_refused(&o, OCTO_EINVAL, "256 bytes");
	longest[255] = '\0';
	o.public_url = longest;
	ck_assert_int_eq(octo_store_open_s3(&s, &o), 0);
	octo_store_free(s);
	/* Options of version 1 end before public_url: it is never read. */
	o = options(srv.endpoint, TS3_SECRET_KEY, 5000);
	o.version = 1;
	o.public_url = "not read";
	ck_assert_int_eq(octo_store_open_s3(&s, &o), 0);
	ck_assert_int_eq(octo_store_presign(s, "k", 60, &url), 0);
	ck_assert_int_eq(strncmp(url, srv.endpoint, strlen(srv.endpoint)), 0);
	octo_free(url);
	octo_store_free(s);
}
END_TEST

START_TEST(https_needs_tls_verify_off_when_libs3_cannot_verify)
{
	octo_s3_options o = options("https://s3.example.com", WRONG_SECRET, 5000);
	octo_store *s = NULL;

	o.tls_verify = 1;
	if (strstr(octo_store_s3_features(), "tls-verify=no")) {
		assert_refused(&o, OCTO_EUNSUPPORTED, "https with tls_verify");
	} else {
		ck_assert_int_eq(octo_store_open_s3(&s, &o), 0);
		octo_store_free(s);
		s = NULL;
	}
	/* Turned off explicitly, https opens (nothing is contacted yet). */
	o.tls_verify = 0;
	ck_assert_int_eq(octo_store_open_s3(&s, &o), 0);
	ck_assert_str_eq(octo_store_backend(s), "s3");
	octo_store_free(s);
	/* Plain http never needs verification. */
	o = options(srv.endpoint, TS3_SECRET_KEY, 5000);
	o.tls_verify = 1;
	s = NULL;
	ck_assert_int_eq(octo_store_open_s3(&s, &o), 0);
	octo_store_free(s);
}
END_TEST

/* ---- faults --------------------------------------------------------- */

/* Fault tests own their server: stopping the shared one would break
 * the tests after them, and in fork mode a test process can only wait
 * for servers it started itself. */
static ts3_server own;

static void start_own_server(void)
{
	ts3_start(&own);
}

static void destroy_own_server(void)
{
	if (own.pid > 0)
		kill(own.pid, SIGCONT); /* a test may have left it stopped */
	ts3_destroy(&own);
}

typedef enum { OP_HEAD, OP_PUT, OP_PUT_FD, OP_GET, OP_GET_CB, OP_LIST, OP_DELETE, OP_PING,
	       N_OPS } op;

static const char *const op_names[N_OPS] = {
	"head", "put", "put_fd", "get", "get_cb", "list", "delete", "ping",
};

/* Runs one operation on `s`; `tag` keeps its keys apart from the rest. */
static int run_op(octo_store *s, op which, const char *tag)
{
	char key[64], *data = NULL;
	size_t len = 0;
	int more = 0, rc = OCTO_ERROR, fd;

	snprintf(key, sizeof(key), "fault/%s-%s", tag, op_names[which]);
	switch (which) {
	case OP_HEAD:
		return octo_store_head(s, "fault/kept", NULL);
	case OP_PUT:
		return octo_store_put(s, key, "put", 3);
	case OP_PUT_FD:
		fd = open("/dev/zero", O_RDONLY);
		ck_assert_int_ge(fd, 0);
		rc = octo_store_put_fd(s, key, fd, 0, 4096);
		close(fd);
		return rc;
	case OP_GET:
		rc = octo_store_get(s, "fault/kept", &data, &len);
		if (rc == 0)
			rc = len == 4 && memcmp(data, "kept", 4) == 0 ? 0 : OCTO_ERROR;
		octo_free(data);
		return rc;
	case OP_GET_CB:
		return octo_store_get_cb(s, "fault/kept", ignore_data, NULL);
	case OP_LIST:
		return octo_store_list(s, "fault/", NULL, 10, ignore_key, NULL, &more);
	case OP_DELETE:
		return octo_store_delete(s, key);
	case OP_PING:
		return octo_store_ping(s);
	case N_OPS:
		break;
	}
	return rc;
}

static const op all_ops[] = {
	OP_HEAD, OP_PUT, OP_PUT_FD, OP_GET, OP_GET_CB, OP_LIST, OP_DELETE, OP_PING,
};

/* Each operation of `ops` fails with OCTO_EUNAVAILABLE within its bound. */
static void assert_unavailable(octo_store *s, const op *ops, size_t n, uint32_t timeout_ms,
                               const char *tag)
{
	size_t i;

	for (i = 0; i < n; i++) {
		long long start = now_ms(), took;
		int rc = run_op(s, ops[i], tag);

		took = now_ms() - start;
		ck_assert_msg(rc == OCTO_EUNAVAILABLE, "%s gave %d (%s), not OCTO_EUNAVAILABLE",
		              op_names[ops[i]], rc, octo_error_last());
		ck_assert_str_ne(octo_error_last(), "");
		ck_assert_msg(took <= (long long)timeout_ms + SLACK_MS,
		              "%s took %lld ms with a timeout of %u ms", op_names[ops[i]], took,
		              timeout_ms);
	}
}

static void assert_all_unavailable(octo_store *s, uint32_t timeout_ms, const char *tag)
{
	assert_unavailable(s, all_ops, N_OPS, timeout_ms, tag);
}

static void assert_all_work(octo_store *s, const char *tag)
{
	int i;

	for (i = 0; i < N_OPS; i++) {
		int rc = run_op(s, (op)i, tag);
		ck_assert_msg(rc == 0, "%s gave %d (%s)", op_names[i], rc, octo_error_last());
	}
}

START_TEST(a_stopped_server_is_unavailable_then_the_handle_recovers)
{
	octo_store *s = open_store(own.endpoint, TS3_SECRET_KEY, FAULT_TIMEOUT_MS);
	int port = own.port;

	ck_assert_int_eq(octo_store_put(s, "fault/kept", "kept", 4), 0);
	assert_all_work(s, "before");

	ts3_stop(&own);
	assert_all_unavailable(s, FAULT_TIMEOUT_MS, "down");

	ts3_restart(&own);
	ck_assert_int_eq(own.port, port);
	/* The same handle, not reopened; the data survived the restart. */
	assert_all_work(s, "after");
	ck_assert_int_eq(octo_store_head(s, "fault/after-put", NULL), 0);
	ck_assert_int_eq(octo_store_head(s, "fault/after-put_fd", NULL), 0);
	/* What failed while the server was down left nothing behind. */
	ck_assert_int_eq(octo_store_head(s, "fault/down-put", NULL), OCTO_ENOTFOUND);
	ck_assert_int_eq(octo_store_head(s, "fault/down-put_fd", NULL), OCTO_ENOTFOUND);
	octo_store_free(s);
}
END_TEST

START_TEST(a_hung_server_is_unavailable_within_the_timeout)
{
	/* Each waits out the whole timeout: a few kinds are enough. */
	static const op hung_ops[] = { OP_HEAD, OP_PUT_FD, OP_GET_CB, OP_LIST, OP_PING };
	octo_store *s = open_store(own.endpoint, TS3_SECRET_KEY, FAULT_TIMEOUT_MS);

	ck_assert_int_eq(octo_store_put(s, "fault/kept", "kept", 4), 0);
	/* Stopped, the server still accepts connections (the kernel does)
	 * but never answers: only the deadline ends each call. */
	ck_assert_int_eq(kill(own.pid, SIGSTOP), 0);
	assert_unavailable(s, hung_ops, sizeof(hung_ops) / sizeof(hung_ops[0]),
	                   FAULT_TIMEOUT_MS, "hung");
	ck_assert_int_eq(kill(own.pid, SIGCONT), 0);
	assert_all_work(s, "resumed");
	octo_store_free(s);
}
END_TEST

/* Reading an object while the server dies under it and comes back. */
typedef struct {
	uint64_t got, hash, break_at;
	int broken;
} resumed_read;

static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n)
{
	while (n--) {
		h ^= *p++;
		h *= UINT64_C(1099511628211);
	}
	return h;
}

static int count_and_break(const void *data, size_t len, void *payload)
{
	resumed_read *r = payload;

	r->hash = fnv1a(r->hash, data, len);
	r->got += len;
	if (!r->broken && r->got >= r->break_at) {
		/* Killed, the server drops the connection mid-object. */
		ck_assert_int_eq(kill(own.pid, SIGKILL), 0);
		ts3_restart(&own);
		r->broken = 1;
	}
	return 0;
}

START_TEST(a_read_cut_off_mid_object_resumes_where_it_stopped)
{
	/* Far more than the socket buffers hold, so the kill does cut it. */
	const size_t len = 32u * 1024 * 1024 + 5;
	unsigned char *data = malloc(len);
	resumed_read r = { 0, UINT64_C(14695981039346656037), 1024 * 1024, 0 };
	uint64_t want = UINT64_C(14695981039346656037);
	octo_store *s = open_store(own.endpoint, TS3_SECRET_KEY, 30000);
	size_t i;

	ck_assert_ptr_nonnull(data);
	for (i = 0; i < len; i++)
		data[i] = (unsigned char)((i * 2654435761u) >> 13);
	want = fnv1a(want, data, len);
	ck_assert_int_eq(octo_store_put(s, "fault/resume.bin", data, len), 0);
	free(data);
	ck_assert_int_eq(octo_store_get_cb(s, "fault/resume.bin", count_and_break, &r), 0);
	ck_assert_int_eq(r.broken, 1);
	/* Every byte once, in order: nothing repeated, nothing lost. */
	ck_assert_uint_eq(r.got, len);
	ck_assert_msg(r.hash == want, "the resumed read delivered other bytes");
	octo_store_free(s);
}
END_TEST

/* A loopback port nobody listens on: bound, then closed again. */
static int closed_port(void)
{
	struct sockaddr_in a;
	socklen_t n = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	ck_assert_int_ge(fd, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &n), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

START_TEST(a_refused_connection_is_unavailable_within_the_timeout)
{
	char endpoint[64];
	octo_store *s;

	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", closed_port());
	s = open_store(endpoint, TS3_SECRET_KEY, FAULT_TIMEOUT_MS);
	assert_all_unavailable(s, FAULT_TIMEOUT_MS, "refused");
	octo_store_free(s);
}
END_TEST

/* A loopback listener that accepts each connection and closes it
 * without a word, as a server does while it goes away. */
typedef struct {
	int fd;
	pthread_t thread;
} dropper;

static void *drop_connections(void *arg)
{
	dropper *d = arg;
	int c;

	/* accept() fails once the test shuts the listening socket down. */
	while ((c = accept(d->fd, NULL, NULL)) >= 0)
		close(c);
	return NULL;
}

static int dropper_start(dropper *d)
{
	struct sockaddr_in a;
	socklen_t n = sizeof(a);

	d->fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(d->fd, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(d->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(d->fd, 16), 0);
	ck_assert_int_eq(getsockname(d->fd, (struct sockaddr *)&a, &n), 0);
	ck_assert_int_eq(pthread_create(&d->thread, NULL, drop_connections, d), 0);
	return ntohs(a.sin_port);
}

static void dropper_stop(dropper *d)
{
	shutdown(d->fd, SHUT_RDWR);
	ck_assert_int_eq(pthread_join(d->thread, NULL), 0);
	close(d->fd);
}

START_TEST(a_server_that_drops_connections_is_unavailable_within_the_timeout)
{
	char endpoint[64];
	dropper d;
	octo_store *s;

	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", dropper_start(&d));
	s = open_store(endpoint, TS3_SECRET_KEY, FAULT_TIMEOUT_MS);
	assert_all_unavailable(s, FAULT_TIMEOUT_MS, "dropped");
	octo_store_free(s);
	dropper_stop(&d);
}
END_TEST

/* ---- suite ---------------------------------------------------------- */

static TCase *s3_tcase(const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, 120);
	return tc;
}

int main(void)
{
	Suite *s;
	TCase *tc;

	if (!ts3_available()) {
		const char *required = getenv("OCTO_REQUIRE_S3");
		int must = required && strcmp(required, "1") == 0;

		fprintf(stderr, "store_s3: %s: no S3 server to test against: OCTO_S3_SERVER=%s "
		                "needs node on PATH and `npm ci` run in its directory\n",
		        must ? "FAIL (OCTO_REQUIRE_S3=1)" : "SKIP",
		        getenv("OCTO_S3_SERVER") ? getenv("OCTO_S3_SERVER") : "(unset)");
		return must ? 1 : 77;
	}
	s = suite_create("store_s3");

	tc = store_contract_tcase(&s3_contract);
	tcase_add_unchecked_fixture(tc, start_server, destroy_server);
	suite_add_tcase(s, tc);

	tc = s3_tcase("s3");
	tcase_add_unchecked_fixture(tc, start_server, destroy_server);
	tcase_add_test(tc, backend_is_named_s3);
	tcase_add_test(tc, features_name_the_signature);
	tcase_add_test(tc, a_wrong_secret_is_denied_and_never_shown);
	tcase_add_test(tc, an_unknown_access_key_is_denied);
	tcase_add_test(tc, open_s3_refuses_missing_options);
	tcase_add_test(tc, open_s3_refuses_malformed_endpoints);
	tcase_add_test(tc, open_s3_accepts_an_endpoint_with_a_trailing_slash);
	tcase_add_test(tc, presigned_urls_start_with_the_public_url);
	tcase_add_test(tc, a_bad_public_url_is_refused_and_version_1_has_none);
	tcase_add_test(tc, https_needs_tls_verify_off_when_libs3_cannot_verify);
	tcase_add_test(tc, a_refused_connection_is_unavailable_within_the_timeout);
	tcase_add_test(tc, a_server_that_drops_connections_is_unavailable_within_the_timeout);
	suite_add_tcase(s, tc);

	tc = s3_tcase("faults");
	tcase_add_checked_fixture(tc, start_own_server, destroy_own_server);
	tcase_add_test(tc, a_stopped_server_is_unavailable_then_the_handle_recovers);
	tcase_add_test(tc, a_hung_server_is_unavailable_within_the_timeout);
	tcase_add_test(tc, a_read_cut_off_mid_object_resumes_where_it_stopped);
	suite_add_tcase(s, tc);

	return tu_run(s);
}
