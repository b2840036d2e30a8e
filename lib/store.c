/* The storage front end: key validation, then dispatch to the backend. */
#include "config.h"
#include "internal.h"
#include "store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int segment_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

int octo_store_key_valid(const char *key)
{
	size_t len, i, segment_len = 0;
	int segment_start = 1;

	if (!key)
		return 0;
	len = strlen(key);
	if (len == 0 || len > OCTO_STORE_KEY_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		char c = key[i];
		if (c == '/') {
			if (segment_start) /* empty segment: leading or doubled '/' */
				return 0;
			segment_start = 1;
			segment_len = 0;
			continue;
		}
		/* A leading '.' rules out "." and ".." and hides nothing the
		 * backends keep for themselves (such as .tmp). */
		if (!segment_char_ok(c) || (segment_start && c == '.') ||
		    ++segment_len > OCTO_STORE_SEGMENT_MAX)
			return 0;
		segment_start = 0;
	}
	return !segment_start; /* no trailing '/' */
}

static int check_key(const char *key)
{
	if (!octo_store_key_valid(key))
		return octo__error(OCTO_EINVAL, "invalid object key");
	return 0;
}

const char *octo_store_backend(const octo_store *store)
{
	return store->backend->name;
}

/* ---- metrics ------------------------------------------------------------ */

enum { OP_PING, OP_HEAD, OP_PUT, OP_GET, OP_DELETE, OP_LIST, OP_PRESIGN, OPS };
enum { RES_OK, RES_NOT_FOUND, RES_ERROR, RESULTS };

static const char *const op_names[OPS] = { "ping", "head", "put", "get",
	                                   "delete", "list", "presign" };
static const char *const result_names[RESULTS] = { "ok", "not_found", "error" };

/* Every child made up front, so a call only updates atomics. */
struct octo__store_metrics {
	octo_metric *count[OPS][RESULTS];
	octo_metric *seconds[OPS];
};

static int make_children(struct octo__store_metrics *m, octo_metric *total,
                         octo_metric *latency)
{
	int op, r, rc;

	for (op = 0; op < OPS; op++) {
		const char *one[] = { op_names[op], NULL };
		if ((rc = octo_metrics_with(&m->seconds[op], latency, one)) < 0)
			return rc;
		for (r = 0; r < RESULTS; r++) {
			const char *two[] = { op_names[op], result_names[r], NULL };
			if ((rc = octo_metrics_with(&m->count[op][r], total, two)) < 0)
				return rc;
		}
	}
	return 0;
}

int octo_store_set_metrics(octo_store *store, octo_metrics *reg)
{
	static const char *const both[] = { "operation", "result", NULL };
	static const char *const op_only[] = { "operation", NULL };
	static const double buckets[] = { .0005, .001, .0025, .005, .01, .025, .05,
	                                  .1, .25, .5, 1, 2.5, 5, 10 };
	struct octo__store_metrics *m;
	octo_metric *total, *latency;
	int rc;

	octo__error_clear();
	if (!store || !reg)
		return octo__error(OCTO_EINVAL, "no store or registry");
	if ((rc = octo_metrics_counter(&total, reg, "storage_requests_total",
	                               "Storage calls by operation and result.", both)) < 0 ||
	    (rc = octo_metrics_histogram(&latency, reg, "storage_request_duration_seconds",
	                                 "Time storage calls took, retries included.",
	                                 op_only, buckets, sizeof(buckets) / sizeof(buckets[0]))) < 0)
		return rc;
	if (!(m = calloc(1, sizeof(*m))))
		return octo__error(OCTO_ENOMEM, "out of memory");
	if ((rc = make_children(m, total, latency)) < 0) {
		free(m);
		return rc;
	}
	free(store->metrics);
	store->metrics = m;
	return 0;
}

/* Records one call and hands its result back. */
static int observed(octo_store *store, int op, double started, int rc)
{
	struct octo__store_metrics *m = store->metrics;

	if (m) {
		int r = rc == 0 ? RES_OK : rc == OCTO_ENOTFOUND ? RES_NOT_FOUND : RES_ERROR;
		octo_metrics_inc(m->count[op][r]);
		octo_metrics_observe(m->seconds[op], octo__monotonic_seconds() - started);
	}
	return rc;
}

/* ---- calls ---------------------------------------------------------------- */

int octo_store_ping(octo_store *store)
{
	double t0 = octo__monotonic_seconds();

	octo__error_clear();
	return observed(store, OP_PING, t0, store->backend->ping(store));
}

int octo_store_head(octo_store *store, const char *key, octo_object_info *info)
{
	double t0 = octo__monotonic_seconds();
	octo_object_info ignored;
	int rc;

	octo__error_clear();
	if ((rc = check_key(key)) < 0)
		return rc;
	return observed(store, OP_HEAD, t0,
	                store->backend->head(store, key, info ? info : &ignored));
}

/* A put from memory: of a job record, through the backend's put_record
 * when it has one. */
static int put_bytes(octo_store *store, const char *key, const void *data, size_t len,
                     int record)
{
	double t0 = octo__monotonic_seconds();
	int rc;

	octo__error_clear();
	if ((rc = check_key(key)) < 0)
		return rc;
	if (!data && len > 0)
		return octo__error(OCTO_EINVAL, "no data");
	if (!data)
		data = "";
	rc = record && store->backend->put_record ? store->backend->put_record(store, key, data, len)
	                                          : store->backend->put(store, key, data, len);
	return observed(store, OP_PUT, t0, rc);
}

int octo_store_put(octo_store *store, const char *key, const void *data, size_t len)
{
	return put_bytes(store, key, data, len, 0);
}

int octo__store_put_record(octo_store *store, const char *key, const void *data,
                           size_t len)
{
	return put_bytes(store, key, data, len, 1);
}

/* A posted record on its way: counted as a put when it ends. */
typedef struct {
	octo_store *store;
	double started;
	octo__store_done done;
	void *payload;
} posting;

static void post_ended(int rc, void *payload)
{
	posting *p = payload;

	observed(p->store, OP_PUT, p->started, rc);
	p->done(rc, p->payload);
	free(p);
}

void octo__store_post_record(octo_store *store, const char *key, const void *data,
                             size_t len, octo__store_done done, void *payload)
{
	posting *p;
	int rc;

	/* Bad arguments fail in put_bytes() as in any put; a backend that
	 * cannot post (or no memory to track the post) puts and waits. */
	if (!store->backend->post_record || check_key(key) < 0 || (!data && len > 0) ||
	    !(p = malloc(sizeof(*p)))) {
		rc = put_bytes(store, key, data, len, 1);
		done(rc, payload);
		return;
	}
	octo__error_clear();
	p->store = store;
	p->started = octo__monotonic_seconds();
	p->done = done;
	p->payload = payload;
	store->backend->post_record(store, key, data ? data : "", len, post_ended, p);
}

int octo_store_put_fd(octo_store *store, const char *key, int fd, uint64_t offset,
                      uint64_t len)
{
	double t0 = octo__monotonic_seconds();
	int rc;

	octo__error_clear();
	if ((rc = check_key(key)) < 0)
		return rc;
	if (fd < 0)
		return octo__error(OCTO_EINVAL, "invalid file descriptor");
	return observed(store, OP_PUT, t0,
	                store->backend->put_fd(store, key, fd, offset, len));
}

int octo_store_get_cb(octo_store *store, const char *key, octo_store_data_cb cb,
                      void *payload)
{
	double t0 = octo__monotonic_seconds();
	int rc;

	octo__error_clear();
	if ((rc = check_key(key)) < 0)
		return rc;
	if (!cb)
		return octo__error(OCTO_EINVAL, "no callback");
	return observed(store, OP_GET, t0,
	                store->backend->get_cb(store, key, cb, payload));
}

/* Collects a streamed object into one growing buffer. */
typedef struct {
	char *data;
	size_t len, cap;
} membuf;

static int to_memory(const void *data, size_t len, void *payload)
{
	membuf *b = payload;

	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *bigger;
		while (cap < b->len + len + 1)
			cap *= 2;
		if (!(bigger = realloc(b->data, cap)))
			return -1;
		b->data = bigger;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}

int octo_store_get(octo_store *store, const char *key, char **data, size_t *len)
{
	membuf b = { NULL, 0, 0 };
	int rc;

	if (!data || !len)
		return octo__error(OCTO_EINVAL, "no output");
	rc = octo_store_get_cb(store, key, to_memory, &b);
	if (rc == OCTO_EABORTED)
		rc = octo__error(OCTO_ENOMEM, "out of memory");
	if (rc == 0 && !b.data && !(b.data = malloc(1)))
		rc = octo__error(OCTO_ENOMEM, "out of memory");
	if (rc < 0) {
		free(b.data);
		return rc;
	}
	b.data[b.len] = '\0';
	*data = b.data;
	*len = b.len;
	return 0;
}

static int to_fd(const void *data, size_t len, void *payload)
{
	const char *p = data;
	int fd = *(int *)payload;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int octo_store_get_fd(octo_store *store, const char *key, int fd)
{
	int rc = octo_store_get_cb(store, key, to_fd, &fd);

	if (rc == OCTO_EABORTED)
		return octo__error(OCTO_EIO, "writing the object to the descriptor failed");
	return rc;
}

int octo_store_delete(octo_store *store, const char *key)
{
	double t0 = octo__monotonic_seconds();
	int rc;

	octo__error_clear();
	if ((rc = check_key(key)) < 0)
		return rc;
	return observed(store, OP_DELETE, t0,
	                store->backend->del(store, key));
}

int octo_store_list(octo_store *store, const char *prefix, const char *start_after,
                    size_t max_keys, octo_store_list_cb cb, void *payload, int *more)
{
	double t0 = octo__monotonic_seconds();
	int ignored;

	octo__error_clear();
	if (!cb || max_keys < 1 || max_keys > 1000)
		return octo__error(OCTO_EINVAL, "list needs a callback and 1..1000 keys");
	if (!prefix)
		prefix = "";
	if (!start_after)
		start_after = "";
	if (strlen(prefix) > OCTO_STORE_KEY_MAX || strlen(start_after) > OCTO_STORE_KEY_MAX)
		return octo__error(OCTO_EINVAL, "prefix or start key too long");
	return observed(store, OP_LIST, t0,
	                store->backend->list(store, prefix, start_after, max_keys, cb,
	                                     payload, more ? more : &ignored));
}

int octo_store_presign(octo_store *store, const char *key, uint32_t ttl_s, char **url)
{
	double t0 = octo__monotonic_seconds();
	int rc;

	octo__error_clear();
	if ((rc = check_key(key)) < 0)
		return rc;
	if (!url || ttl_s == 0)
		return octo__error(OCTO_EINVAL, "presign needs an output and a lifetime");
	if (!store->backend->presign)
		return octo__error(OCTO_EUNSUPPORTED, "%s storage cannot sign URLs",
		                   store->backend->name);
	return observed(store, OP_PRESIGN, t0,
	                store->backend->presign(store, key, ttl_s, url));
}

int octo__store_open_object(octo_store *store, const char *key, int *fd,
                            octo_object_info *info)
{
	int rc;

	if ((rc = check_key(key)) < 0)
		return rc;
	if (!store->backend->open_object)
		return octo__error(OCTO_EUNSUPPORTED, "objects are not local files");
	return store->backend->open_object(store, key, fd, info);
}

void octo_store_free(octo_store *store)
{
	struct octo__store_metrics *m;

	if (store) {
		m = store->metrics; /* posts the backend drains count as puts */
		store->backend->free(store);
		free(m);
	}
}
