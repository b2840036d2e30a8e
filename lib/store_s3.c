/* The S3 storage backend over libs3.
 *
 * Every call runs in its own libs3 request context, driven here with
 * select() so that it ends by its deadline whatever the network does
 * (Debian's libs3 2.0 has no timeout of its own). Transient failures are
 * retried with capped, jittered exponential backoff inside that deadline;
 * permanent ones (403, 404) are not. No state is shared between calls, so
 * the store is safe to use from many threads. */
#include "config.h"
#include "internal.h"
#include "store.h"

#include <errno.h>
#include <libs3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

/* libs3 4 added a per-request timeout argument and V4 signing; configure
 * tells which API this build has. */
#ifdef OCTO_LIBS3_V4
#define TIMEOUT_ARG(ms) (int)(ms),
#define SIGNATURE "V4"
#else
#define TIMEOUT_ARG(ms)
#define SIGNATURE "V2"
#endif
#ifdef OCTO_LIBS3_VERIFY_PEER
#define INIT_FLAGS (S3_INIT_ALL | S3_INIT_VERIFY_PEER)
#define TLS_VERIFY 1
#else
#define INIT_FLAGS S3_INIT_ALL
#define TLS_VERIFY 0
#endif

/* libs3 keeps each listed key in a buffer of S3_MAX_KEY_SIZE bytes, NUL
 * included, so a listing silently cuts a 1024-byte key to 1023 bytes (and
 * paging from the cut key would list it again, forever). Objects that
 * could not be listed as they are named are not written. */
#define LISTABLE_KEY_MAX (S3_MAX_KEY_SIZE - 1)

#define BACKOFF_BASE_MS 100
#define BACKOFF_CAP_MS 2000
#define PING_TIMEOUT_MS 3000

typedef struct {
	octo_store base;
	char *host;
	char *bucket;
	char *access_key_id;
	char *secret_access_key;
	char *region;
	char *public_url;       /* NULL: URLs name the endpoint */
	S3Protocol protocol;
	S3UriStyle uri_style;
	uint32_t timeout_ms;
	uint32_t max_attempts;
} s3_store;

/* One call's state, shared by its attempts and libs3's callbacks. */
typedef struct {
	s3_store *s;
	const char *key;
	S3Status status;
	char detail[160];
	/* head */
	octo_object_info *info;
	/* put */
	const char *data;
	int fd;
	uint64_t offset, len, sent;
	int source_failed;
	/* get */
	octo_store_data_cb data_cb;
	void *payload;
	uint64_t received;
	uint64_t expected;  /* where this attempt's body ends */
	char etag[80];
	int aborted;
	/* list */
	const char *prefix, *start_after;
	int max_keys, more;
	size_t listed;
	octo_object_info *infos;
	char **keys;
} call;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static S3Status init_status;

static void init_libs3(void)
{
	init_status = S3_initialize("octopus", INIT_FLAGS, NULL);
}

const char *octo_store_s3_features(void)
{
	return TLS_VERIFY ? "signature=" SIGNATURE " tls-verify=yes"
	                  : "signature=" SIGNATURE " tls-verify=no";
}

static void bucket_context(const s3_store *s, S3BucketContext *b)
{
	memset(b, 0, sizeof(*b));
	b->hostName = s->host;
	b->bucketName = s->bucket;
	b->protocol = s->protocol;
	b->uriStyle = s->uri_style;
	b->accessKeyId = s->access_key_id;
	b->secretAccessKey = s->secret_access_key;
#ifdef OCTO_LIBS3_V4
	b->authRegion = s->region;
#endif
}

/* ---- callbacks ------------------------------------------------------------ */

static S3Status on_properties(const S3ResponseProperties *p, void *data)
{
	call *c = data;

	if (c->info) {
		c->info->size = p->contentLength;
		c->info->mtime = p->lastModified > 0 ? p->lastModified : 0;
		snprintf(c->info->etag, sizeof(c->info->etag), "%s", p->eTag ? p->eTag : "");
	}
	if (c->data_cb)
		c->expected = c->received + p->contentLength;
	/* A resumed read must continue the same version of the object. */
	if (p->eTag && !c->etag[0])
		snprintf(c->etag, sizeof(c->etag), "%s", p->eTag);
	return S3StatusOK;
}

static void on_complete(S3Status status, const S3ErrorDetails *e, void *data)
{
	call *c = data;

	c->status = status;
	c->detail[0] = '\0';
	if (status != S3StatusOK && e && e->message)
		snprintf(c->detail, sizeof(c->detail), ": %s", e->message);
	/* libs3 reports a body cut short (curl's CURLE_PARTIAL_FILE) as a
	 * success: a read that got less than announced failed, and the next
	 * attempt resumes it. */
	if (status == S3StatusOK && c->data_cb && c->received < c->expected) {
		c->status = S3StatusConnectionFailed;
		snprintf(c->detail, sizeof(c->detail), ": the connection closed %llu bytes early",
		         (unsigned long long)(c->expected - c->received));
	}
}

static int on_put_data(int size, char *buffer, void *data)
{
	call *c = data;
	uint64_t left = c->len - c->sent;
	size_t want = left < (uint64_t)size ? (size_t)left : (size_t)size;
	ssize_t n;

	if (want == 0)
		return 0;
	if (c->data) {
		memcpy(buffer, c->data + c->sent, want);
		n = (ssize_t)want;
	} else {
		do
			n = pread(c->fd, buffer, want, (off_t)(c->offset + c->sent));
		while (n < 0 && errno == EINTR);
		if (n <= 0) {
			c->source_failed = 1;
			return -1; /* libs3 aborts the request */
		}
	}
	c->sent += (uint64_t)n;
	return (int)n;
}

static S3Status on_get_data(int size, const char *buffer, void *data)
{
	call *c = data;

	if (c->data_cb(buffer, (size_t)size, c->payload) != 0) {
		c->aborted = 1;
		return S3StatusAbortedByCallback;
	}
	c->received += (uint64_t)size;
	return S3StatusOK;
}

static S3Status on_list(int truncated, const char *next_marker, int count,
                        const S3ListBucketContent *contents, int prefixes_count,
                        const char **prefixes, void *data)
{
	call *c = data;
	int i;

	(void)next_marker;
	(void)prefixes_count;
	(void)prefixes;
	for (i = 0; i < count && c->listed < (size_t)c->max_keys; i++) {
		octo_object_info *info = &c->infos[c->listed];
		if (!(c->keys[c->listed] = strdup(contents[i].key)))
			return S3StatusOutOfMemory;
		info->size = contents[i].size;
		info->mtime = contents[i].lastModified;
		snprintf(info->etag, sizeof(info->etag), "%s",
		         contents[i].eTag ? contents[i].eTag : "");
		c->listed++;
	}
	c->more = truncated || i < count;
	return S3StatusOK;
}

/* ---- running one attempt within the deadline -------------------------------- */

typedef void (*issue_fn)(call *c, S3RequestContext *ctx, uint32_t budget_ms);

static const S3ResponseHandler response_handler = { on_properties, on_complete };

static void issue_head(call *c, S3RequestContext *ctx, uint32_t budget_ms)
{
	S3BucketContext b;

	(void)budget_ms;
	bucket_context(c->s, &b);
	S3_head_object(&b, c->key, ctx, TIMEOUT_ARG(budget_ms) &response_handler, c);
}

static void issue_put(call *c, S3RequestContext *ctx, uint32_t budget_ms)
{
	static const S3PutObjectHandler handler = { { on_properties, on_complete }, on_put_data };
	S3BucketContext b;

	(void)budget_ms;
	bucket_context(c->s, &b);
	c->sent = 0;
	S3_put_object(&b, c->key, c->len, NULL, ctx, TIMEOUT_ARG(budget_ms) &handler, c);
}

static void issue_get(call *c, S3RequestContext *ctx, uint32_t budget_ms)
{
	static const S3GetObjectHandler handler = { { on_properties, on_complete }, on_get_data };
	S3GetConditions cond = { -1, -1, NULL, NULL };
	S3BucketContext b;

	(void)budget_ms;
	bucket_context(c->s, &b);
	c->expected = 0;
	if (c->received > 0 && c->etag[0])
		cond.ifMatchETag = c->etag;
	S3_get_object(&b, c->key, cond.ifMatchETag ? &cond : NULL, c->received, 0, ctx,
	              TIMEOUT_ARG(budget_ms) &handler, c);
}

static void issue_delete(call *c, S3RequestContext *ctx, uint32_t budget_ms)
{
	S3BucketContext b;

	(void)budget_ms;
	bucket_context(c->s, &b);
	S3_delete_object(&b, c->key, ctx, TIMEOUT_ARG(budget_ms) &response_handler, c);
}

static void clear_listed(call *c)
{
	while (c->listed > 0)
		free(c->keys[--c->listed]);
	c->more = 0;
}

static void issue_list(call *c, S3RequestContext *ctx, uint32_t budget_ms)
{
	static const S3ListBucketHandler handler = { { on_properties, on_complete }, on_list };
	S3BucketContext b;

	(void)budget_ms;
	bucket_context(c->s, &b);
	clear_listed(c); /* a retry lists the page afresh */
	S3_list_bucket(&b, c->prefix[0] ? c->prefix : NULL,
	               c->start_after[0] ? c->start_after : NULL, NULL, c->max_keys, ctx,
	               TIMEOUT_ARG(budget_ms) &handler, c);
}

/* Drives one request until it completes or the deadline passes. */
static void run_attempt(call *c, issue_fn issue, uint64_t deadline)
{
	S3RequestContext *ctx;
	uint64_t now = octo__monotonic_ms();
	int remaining = 1;

	c->status = S3StatusInterrupted; /* what a request cut short reports */
	if (S3_create_request_context(&ctx) != S3StatusOK) {
		c->status = S3StatusOutOfMemory;
		return;
	}
	issue(c, ctx, (uint32_t)(deadline > now ? deadline - now : 1));
	while (remaining && (now = octo__monotonic_ms()) < deadline) {
		fd_set r, w, x;
		int max_fd = -1;
		uint64_t wait_ms = deadline - now < 50 ? deadline - now : 50;
		struct timeval tv = { 0, (suseconds_t)(wait_ms * 1000) };

		if (S3_runonce_request_context(ctx, &remaining) != S3StatusOK || !remaining)
			break;
		FD_ZERO(&r);
		FD_ZERO(&w);
		FD_ZERO(&x);
		S3_get_request_context_fdsets(ctx, &r, &w, &x, &max_fd);
		/* No socket yet (name lookup, connect): wait a little all the same. */
		select(max_fd + 1, &r, &w, &x, &tv);
	}
	if (remaining)
		c->status = S3StatusErrorRequestTimeout;
	S3_destroy_request_context(ctx); /* aborts whatever is still running */
}

/* S3StatusInternalError is what libs3 makes of most curl errors, among
 * them a connection reset or closed without an answer (CURLE_RECV_ERROR,
 * CURLE_SEND_ERROR, CURLE_GOT_NOTHING): a server going away, not a bug. */
static int transient(S3Status st)
{
	return S3_status_is_retryable(st) || st == S3StatusInternalError ||
	       st == S3StatusErrorInternalError ||
	       st == S3StatusErrorSlowDown ||
	       st == S3StatusErrorRequestTimeout || st == S3StatusErrorOperationAborted ||
	       st == S3StatusInterrupted || st == S3StatusHttpErrorUnknown;
}

static int map_status(call *c, const char *op)
{
	S3Status st = c->status;

	switch (st) {
	case S3StatusOK:
		return 0;
	case S3StatusErrorNoSuchKey:
	case S3StatusHttpErrorNotFound:
		return octo__error(OCTO_ENOTFOUND, "no object %s", c->key ? c->key : "");
	case S3StatusErrorAccessDenied:
	case S3StatusErrorSignatureDoesNotMatch:
	case S3StatusErrorInvalidAccessKeyId:
	case S3StatusHttpErrorForbidden:
		return octo__error(OCTO_EDENIED, "S3 %s refused: %s%s", op,
		                   S3_get_status_name(st), c->detail);
	case S3StatusAbortedByCallback:
		if (c->aborted)
			return octo__error(OCTO_EABORTED, "reader stopped");
		break;
	default:
		break;
	}
	if (c->source_failed)
		return octo__error(OCTO_EIO, "S3 %s: the source descriptor ended early", op);
	if (transient(st))
		return octo__error(OCTO_EUNAVAILABLE, "S3 %s failed: %s%s", op,
		                   S3_get_status_name(st), c->detail);
	return octo__error(OCTO_EIO, "S3 %s failed: %s%s", op, S3_get_status_name(st), c->detail);
}

static void backoff(unsigned attempt, uint64_t deadline)
{
	uint64_t cap = BACKOFF_BASE_MS << (attempt < 5 ? attempt : 5), now, ms;
	uint32_t r = 0;
	struct timespec ts;

	if (cap > BACKOFF_CAP_MS)
		cap = BACKOFF_CAP_MS;
	octo__random(&r, sizeof(r));
	ms = cap / 2 + r % (cap / 2 + 1); /* jitter: spread retries of many callers */
	now = octo__monotonic_ms();
	if (now + ms > deadline)
		ms = deadline > now ? deadline - now : 0;
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	nanosleep(&ts, NULL);
}

/* Runs a call with retries, all within `timeout_ms`. */
static int perform(call *c, issue_fn issue, const char *op, uint32_t timeout_ms)
{
	uint64_t deadline = octo__monotonic_ms() + timeout_ms;
	unsigned attempt;

	for (attempt = 0;; attempt++) {
		run_attempt(c, issue, deadline);
		if (c->status == S3StatusOK || !transient(c->status) || c->aborted ||
		    c->source_failed || attempt + 1 >= c->s->max_attempts ||
		    octo__monotonic_ms() >= deadline)
			break;
		backoff(attempt, deadline);
	}
	return map_status(c, op);
}

static void call_init(call *c, octo_store *store, const char *key)
{
	memset(c, 0, sizeof(*c));
	c->s = (s3_store *)store;
	c->key = key;
	c->fd = -1;
}

/* ---- operations --------------------------------------------------------------- */

static int s3_head(octo_store *store, const char *key, octo_object_info *info)
{
	call c;

	call_init(&c, store, key);
	memset(info, 0, sizeof(*info));
	c.info = info;
	return perform(&c, issue_head, "head", c.s->timeout_ms);
}

static int check_listable(const char *key)
{
	if (strlen(key) > LISTABLE_KEY_MAX)
		return octo__error(OCTO_EINVAL, "S3 keys may have at most %d bytes: libs3 "
		                   "cannot list longer ones", LISTABLE_KEY_MAX);
	return 0;
}

static int s3_put(octo_store *store, const char *key, const void *data, size_t len)
{
	call c;
	int rc;

	if ((rc = check_listable(key)) < 0)
		return rc;
	call_init(&c, store, key);
	c.data = data;
	c.len = len;
	return perform(&c, issue_put, "put", c.s->timeout_ms);
}

static int s3_put_fd(octo_store *store, const char *key, int fd, uint64_t offset,
                     uint64_t len)
{
	call c;
	int rc;

	if ((rc = check_listable(key)) < 0)
		return rc;
	call_init(&c, store, key);
	c.fd = fd;
	c.offset = offset;
	c.len = len;
	return perform(&c, issue_put, "put", c.s->timeout_ms);
}

static int s3_get_cb(octo_store *store, const char *key, octo_store_data_cb cb,
                     void *payload)
{
	call c;

	call_init(&c, store, key);
	c.data_cb = cb;
	c.payload = payload;
	return perform(&c, issue_get, "get", c.s->timeout_ms);
}

static int s3_del(octo_store *store, const char *key)
{
	call c;

	call_init(&c, store, key);
	return perform(&c, issue_delete, "delete", c.s->timeout_ms);
}

static int list_page(octo_store *store, const char *prefix, const char *start_after,
                     size_t max_keys, uint32_t timeout_ms, call *c)
{
	call_init(c, store, NULL);
	c->prefix = prefix;
	c->start_after = start_after;
	c->max_keys = (int)max_keys;
	c->keys = calloc(max_keys, sizeof(*c->keys));
	c->infos = calloc(max_keys, sizeof(*c->infos));
	if (!c->keys || !c->infos)
		return octo__error(OCTO_ENOMEM, "out of memory");
	return perform(c, issue_list, "list", timeout_ms);
}

static void list_done(call *c)
{
	clear_listed(c);
	free(c->keys);
	free(c->infos);
}

static int s3_list(octo_store *store, const char *prefix, const char *start_after,
                   size_t max_keys, octo_store_list_cb cb, void *payload, int *more)
{
	call c;
	size_t i;
	int rc = list_page(store, prefix, start_after, max_keys, ((s3_store *)store)->timeout_ms, &c);

	/* The page is delivered only once it arrived whole, so a retried
	 * listing never shows a key twice. */
	for (i = 0; rc == 0 && i < c.listed; i++)
		if (cb(c.keys[i], &c.infos[i], payload) != 0)
			rc = octo__error(OCTO_EABORTED, "lister stopped");
	*more = c.more;
	list_done(&c);
	return rc;
}

static int s3_ping(octo_store *store)
{
	s3_store *s = (s3_store *)store;
	uint32_t t = s->timeout_ms < PING_TIMEOUT_MS ? s->timeout_ms : PING_TIMEOUT_MS;
	call c;
	int rc = list_page(store, "", "", 1, t, &c);

	list_done(&c);
	return rc;
}

/* `signed_url` as clients reach it: behind `public_url`, when there is
 * one, with the same path and query (what the signature covers). */
static int public_form(const char *public_url, const char *signed_url, char **url)
{
	const char *path = strstr(signed_url, "://");
	size_t n;

	path = path ? strchr(path + 3, '/') : NULL;
	if (!public_url || !path)
		*url = strdup(signed_url);
	else if ((*url = malloc((n = strlen(public_url)) + strlen(path) + 1)) != NULL) {
		memcpy(*url, public_url, n);
		strcpy(*url + n, path);
	}
	return *url ? 0 : octo__error(OCTO_ENOMEM, "out of memory");
}

static int s3_presign(octo_store *store, const char *key, uint32_t ttl_s, char **url)
{
	char buf[S3_MAX_AUTHENTICATED_QUERY_STRING_SIZE];
	S3BucketContext b;
	S3Status st;

	bucket_context((s3_store *)store, &b);
#ifdef OCTO_LIBS3_V4
	st = S3_generate_authenticated_query_string(buf, &b, key, (int64_t)ttl_s, NULL, "GET");
#else
	st = S3_generate_authenticated_query_string(buf, &b, key,
	                                            (int64_t)time(NULL) + ttl_s, NULL);
#endif
	if (st != S3StatusOK)
		return octo__error(OCTO_EIO, "cannot sign a URL: %s", S3_get_status_name(st));
	return public_form(((s3_store *)store)->public_url, buf, url);
}

static void s3_free(octo_store *store)
{
	s3_store *s = (s3_store *)store;

	free(s->host);
	free(s->bucket);
	free(s->access_key_id);
	if (s->secret_access_key) /* do not leave the secret in freed memory */
		explicit_bzero(s->secret_access_key, strlen(s->secret_access_key));
	free(s->secret_access_key);
	free(s->region);
	free(s->public_url);
	free(s);
}

static const octo__store_backend s3_backend = {
	.name = "s3",
	.ping = s3_ping,
	.head = s3_head,
	.put_fd = s3_put_fd,
	.put = s3_put,
	.get_cb = s3_get_cb,
	.del = s3_del,
	.list = s3_list,
	.presign = s3_presign,
	.open_object = NULL,
	.free = s3_free,
};

/* ---- opening ---------------------------------------------------------------- */

/* Whether the `n` bytes at `h` may be a host[:port] (IPv6 in brackets). */
static int host_valid(const char *h, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char c = h[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == ':' || c == '[' || c == ']'))
			return 0;
	}
	return n > 0;
}

/* "http://host[:port]" or "https://..." with no path: the protocol and
 * the host libs3 wants. */
static int parse_endpoint(const char *endpoint, S3Protocol *proto, char **host)
{
	const char *h;
	size_t n;

	if (!endpoint) {
		*proto = S3ProtocolHTTPS;
		*host = strdup(S3_DEFAULT_HOSTNAME);
		return *host ? 0 : octo__error(OCTO_ENOMEM, "out of memory");
	}
	if (strncmp(endpoint, "http://", 7) == 0)
		*proto = S3ProtocolHTTP, h = endpoint + 7;
	else if (strncmp(endpoint, "https://", 8) == 0)
		*proto = S3ProtocolHTTPS, h = endpoint + 8;
	else
		return octo__error(OCTO_EINVAL, "endpoint must start with http:// or https://");
	n = strlen(h);
	if (n > 0 && h[n - 1] == '/')
		n--; /* "http://minio:9000/" is common and harmless */
	if (n == 0 || n > S3_MAX_HOSTNAME_SIZE)
		return octo__error(OCTO_EINVAL, "endpoint has no host");
	if (!host_valid(h, n))
		return octo__error(OCTO_EINVAL, "endpoint must be scheme://host[:port] without a path");
	*host = strndup(h, n);
	return *host ? 0 : octo__error(OCTO_ENOMEM, "out of memory");
}

/* http(s)://host[:port][/path], the path of unreserved characters and
 * slashes (no query), at most 255 bytes: as octopusd checks S3_PUBLIC_URL. */
static int public_url_valid(const char *url)
{
	static const char path_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                                 "0123456789-._~/";
	const char *h = strncmp(url, "http://", 7) == 0    ? url + 7
	                : strncmp(url, "https://", 8) == 0 ? url + 8
	                                                   : NULL;
	size_t n;

	if (!h || strlen(url) > 255)
		return 0;
	n = strcspn(h, "/");
	return host_valid(h, n) && strspn(h + n, path_chars) == strlen(h + n);
}

/* The public_url of options, which those of version 1 do not have. */
static const char *public_url_of(const octo_s3_options *o)
{
	return o->version >= 2 ? o->public_url : NULL;
}

/* A copy of `url` without its trailing slash, if any: the signed path
 * put after it starts with one. */
static char *without_trailing_slash(const char *url)
{
	size_t n = strlen(url);

	return strndup(url, n > 0 && url[n - 1] == '/' ? n - 1 : n);
}

static int check_s3_options(const octo_s3_options *o)
{
	if (o->version != 1 && o->version != OCTO_S3_OPTIONS_VERSION)
		return octo__error(OCTO_EINVAL, "options version %u is not 1 or %d", o->version,
		                   OCTO_S3_OPTIONS_VERSION);
	if (public_url_of(o) && !public_url_valid(o->public_url))
		return octo__error(OCTO_EINVAL,
		                   "public_url must be http(s)://host[:port][/path], at most 255 bytes");
	/* In virtual-host style the bucket is in the host it would replace. */
	if (public_url_of(o) && !o->force_path_style)
		return octo__error(OCTO_EINVAL, "public_url needs force_path_style");
	if (!o->bucket || !*o->bucket)
		return octo__error(OCTO_EINVAL, "bucket is required");
	if (!o->access_key_id || !*o->access_key_id || !o->secret_access_key ||
	    !*o->secret_access_key)
		return octo__error(OCTO_EINVAL, "access_key_id and secret_access_key are required");
	if (!o->region || !*o->region)
		return octo__error(OCTO_EINVAL, "region is required");
	if (o->timeout_ms == 0 || o->max_attempts == 0)
		return octo__error(OCTO_EINVAL, "timeout_ms and max_attempts must be positive");
	return 0;
}

int octo_store_open_s3(octo_store **out, const octo_s3_options *opts)
{
	s3_store *s;
	int rc;

	octo__error_clear();
	if (!out || !opts)
		return octo__error(OCTO_EINVAL, "no options given");
	if ((rc = check_s3_options(opts)) < 0)
		return rc;
	pthread_once(&init_once, init_libs3);
	if (init_status != S3StatusOK)
		return octo__error(OCTO_ERROR, "libs3 initialisation failed: %s",
		                   S3_get_status_name(init_status));
	if (!(s = calloc(1, sizeof(*s))))
		return octo__error(OCTO_ENOMEM, "out of memory");
	s->base.backend = &s3_backend;
	if ((rc = parse_endpoint(opts->endpoint, &s->protocol, &s->host)) < 0)
		goto fail;
	if (s->protocol == S3ProtocolHTTPS && opts->tls_verify && !TLS_VERIFY) {
		rc = octo__error(OCTO_EUNSUPPORTED,
		                 "this libs3 does not verify TLS peers, so https endpoints "
		                 "need tls_verify turned off explicitly");
		goto fail;
	}
	s->uri_style = opts->force_path_style ? S3UriStylePath : S3UriStyleVirtualHost;
	if (S3_validate_bucket_name(opts->bucket, s->uri_style) != S3StatusOK) {
		rc = octo__error(OCTO_EINVAL, "invalid bucket name");
		goto fail;
	}
	s->bucket = strdup(opts->bucket);
	s->access_key_id = strdup(opts->access_key_id);
	s->secret_access_key = strdup(opts->secret_access_key);
	s->region = strdup(opts->region);
	s->timeout_ms = opts->timeout_ms;
	s->max_attempts = opts->max_attempts;
	if (public_url_of(opts) && !(s->public_url = without_trailing_slash(opts->public_url))) {
		rc = octo__error(OCTO_ENOMEM, "out of memory");
		goto fail;
	}
	if (!s->bucket || !s->access_key_id || !s->secret_access_key || !s->region) {
		rc = octo__error(OCTO_ENOMEM, "out of memory");
		goto fail;
	}
	*out = &s->base;
	return 0;
fail:
	s3_free(&s->base);
	return rc;
}
