/* The storage contract, run the same way against every backend: round
 * trips, missing objects, streaming in both directions (also beyond
 * 64 MiB in bounded memory), listing, keys, threads and signed URLs. */
#include "config.h"
#include "store_contract.h"
#include "testutil.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONTRACTS 8

static const store_contract *contracts[MAX_CONTRACTS];
static int n_contracts;

/* The running test's backend, its handle and the prefix of its keys. */
static const store_contract *cur;
static octo_store *store;
static char prefix[160];

/* Opens the store for the test `test` (its __func__): its keys live under
 * "test-pid/", so tests sharing one bucket never see each other's keys. */
static void begin(int contract, const char *test)
{
	cur = contracts[contract];
	snprintf(prefix, sizeof(prefix), "%s-%ld", test, (long)getpid());
	store = cur->open();
	ck_assert_ptr_nonnull(store);
}

static void finish(void)
{
	if (store && cur)
		cur->close(store);
	store = NULL;
}

/* "prefix/leaf", in one of a few rotating buffers so that a test can hold
 * several keys at once. */
static const char *key(const char *leaf)
{
	static char bufs[8][OCTO_STORE_KEY_MAX + 1];
	static unsigned next;
	char *b = bufs[next++ % 8];

	ck_assert_int_lt(snprintf(b, sizeof(bufs[0]), "%s/%s", prefix, leaf),
	                 (int)sizeof(bufs[0]));
	return b;
}

/* ---- data ----------------------------------------------------------- */

/* A xorshift byte stream: no period a buffer size could hide. */
static void pattern_fill(uint32_t *state, unsigned char *buf, size_t n)
{
	uint32_t x = *state;
	size_t i;

	for (i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (unsigned char)(x >> 11);
	}
	*state = x;
}

static unsigned char *pattern_alloc(size_t n, uint32_t seed)
{
	unsigned char *buf = malloc(n ? n : 1);

	ck_assert_ptr_nonnull(buf);
	pattern_fill(&seed, buf, n);
	return buf;
}

#define FNV_INIT UINT64_C(14695981039346656037)

/* FNV-1a: a running checksum that depends on every byte and its order. */
static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
	const unsigned char *p = data;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= p[i];
		h *= UINT64_C(1099511628211);
	}
	return h;
}

/* An unlinked temporary file: it vanishes with its descriptor. */
static int temp_fd(char path_out[256])
{
	const char *tmp = getenv("TMPDIR");
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/octo-contract-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	if (path_out)
		memcpy(path_out, path, sizeof(path));
	else
		unlink(path);
	return fd;
}

static void write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		ck_assert_int_gt(n, 0);
		p += n;
		len -= (size_t)n;
	}
}

/* What a get_cb callback saw. */
typedef struct {
	const unsigned char *expect; /* compared chunk by chunk, or NULL */
	uint64_t expect_len;
	uint64_t got;
	uint64_t hash;
	size_t calls;
	size_t stop_at_call;         /* return non-zero on this call; 0: never */
	int mismatch;
} sink;

static void sink_init(sink *s, const void *expect, uint64_t expect_len)
{
	memset(s, 0, sizeof(*s));
	s->expect = expect;
	s->expect_len = expect_len;
	s->hash = FNV_INIT;
}

static int to_sink(const void *data, size_t len, void *payload)
{
	sink *s = payload;

	s->calls++;
	if (s->stop_at_call && s->calls == s->stop_at_call)
		return 1;
	if (s->expect && (s->got + len > s->expect_len ||
	                  memcmp(s->expect + s->got, data, len) != 0))
		s->mismatch = 1;
	s->hash = fnv1a(s->hash, data, len);
	s->got += len;
	return 0;
}

/* Asserts that `k` holds exactly `len` bytes of `data`, through head,
 * get and get_cb. */
static void assert_object(const char *k, const void *data, size_t len)
{
	octo_object_info info;
	char *got = NULL;
	size_t got_len = (size_t)-1;
	sink s;

	memset(&info, 0xa5, sizeof(info));
	ck_assert_int_eq(octo_store_head(store, k, &info), 0);
	ck_assert_uint_eq(info.size, len);
	ck_assert_uint_lt(strnlen(info.etag, sizeof(info.etag)), sizeof(info.etag));
	ck_assert_str_ne(info.etag, "");
	ck_assert_int_eq(octo_store_get(store, k, &got, &got_len), 0);
	ck_assert_ptr_nonnull(got);
	ck_assert_uint_eq(got_len, len);
	ck_assert_int_eq(memcmp(got, data, len), 0);
	ck_assert_int_eq(got[len], '\0');
	octo_free(got);
	sink_init(&s, data, len);
	ck_assert_int_eq(octo_store_get_cb(store, k, to_sink, &s), 0);
	ck_assert_uint_eq(s.got, len);
	ck_assert_int_eq(s.mismatch, 0);
}

static int under_valgrind(void)
{
	const char *v = getenv("OCTO_UNDER_VALGRIND");

	return v && strcmp(v, "1") == 0;
}

/* ---- round trips ---------------------------------------------------- */

START_TEST(round_trips_an_empty_object)
{
	begin(_i, __func__);
	ck_assert_int_eq(octo_store_put(store, key("empty"), "ignored", 0), 0);
	ck_assert_int_eq(octo_store_put(store, key("empty-null"), NULL, 0), 0);
	assert_object(key("empty"), "", 0);
	assert_object(key("empty-null"), "", 0);
}
END_TEST

START_TEST(round_trips_a_small_binary_object)
{
	/* An embedded NUL and high bytes: length, not strlen, counts. */
	static const char data[] = "hello\0world\xff\x80\n";
	const size_t len = sizeof(data) - 1;
	octo_object_info info = { 0 };
	time_t before, after;

	begin(_i, __func__);
	before = time(NULL);
	ck_assert_int_eq(octo_store_put(store, key("dir/small.bin"), data, len), 0);
	after = time(NULL);
	assert_object(key("dir/small.bin"), data, len);
	ck_assert_int_eq(octo_store_head(store, key("dir/small.bin"), &info), 0);
	ck_assert_int_ge(info.mtime, (int64_t)before - 2);
	ck_assert_int_le(info.mtime, (int64_t)after + 2);
	ck_assert_int_eq(octo_store_head(store, key("dir/small.bin"), NULL), 0);
}
END_TEST

START_TEST(round_trips_a_multi_megabyte_object)
{
	const size_t len = 5u * 1024 * 1024 + 7; /* no buffer size divides it */
	unsigned char *data = pattern_alloc(len, 2463534242u);

	begin(_i, __func__);
	ck_assert_int_eq(octo_store_put(store, key("big/blob.bin"), data, len), 0);
	assert_object(key("big/blob.bin"), data, len);
	free(data);
}
END_TEST

START_TEST(put_replaces_an_object_and_its_etag)
{
	static const char first[] = "the first, longer version";
	octo_object_info a = { 0 }, b = { 0 };

	begin(_i, __func__);
	ck_assert_int_eq(octo_store_put(store, key("doc"), first, strlen(first)), 0);
	ck_assert_int_eq(octo_store_head(store, key("doc"), &a), 0);
	ck_assert_int_eq(octo_store_put(store, key("doc"), "short", 5), 0);
	assert_object(key("doc"), "short", 5);
	ck_assert_int_eq(octo_store_head(store, key("doc"), &b), 0);
	ck_assert_str_ne(a.etag, b.etag);
	ck_assert_int_eq(octo_store_put(store, key("doc"), first, strlen(first)), 0);
	assert_object(key("doc"), first, strlen(first));
	ck_assert_int_eq(octo_store_put(store, key("doc"), NULL, 0), 0);
	assert_object(key("doc"), "", 0);
}
END_TEST

/* ---- missing and deleted objects ------------------------------------ */

static void assert_not_found(const char *k)
{
	char *data = NULL;
	size_t len = 77;
	sink s;
	int fd;

	ck_assert_int_eq(octo_store_head(store, k, NULL), OCTO_ENOTFOUND);
	ck_assert_str_ne(octo_error_last(), "");
	ck_assert_int_eq(octo_store_get(store, k, &data, &len), OCTO_ENOTFOUND);
	ck_assert_ptr_null(data);
	ck_assert_str_ne(octo_error_last(), "");
	sink_init(&s, NULL, 0);
	ck_assert_int_eq(octo_store_get_cb(store, k, to_sink, &s), OCTO_ENOTFOUND);
	ck_assert_uint_eq(s.calls, 0);
	fd = temp_fd(NULL);
	ck_assert_int_eq(octo_store_get_fd(store, k, fd), OCTO_ENOTFOUND);
	ck_assert_int_eq(lseek(fd, 0, SEEK_END), 0);
	close(fd);
}

START_TEST(missing_objects_are_not_found)
{
	octo_object_info info;

	begin(_i, __func__);
	assert_not_found(key("missing"));
	assert_not_found(key("no/such/dir/object"));
	memset(&info, 0, sizeof(info));
	ck_assert_int_eq(octo_store_head(store, key("missing"), &info), OCTO_ENOTFOUND);
}
END_TEST

START_TEST(deleted_objects_are_gone)
{
	int rc;

	begin(_i, __func__);
	ck_assert_int_eq(octo_store_put(store, key("doomed"), "bye", 3), 0);
	ck_assert_int_eq(octo_store_put(store, key("kept"), "hi", 2), 0);
	ck_assert_int_eq(octo_store_delete(store, key("doomed")), 0);
	assert_not_found(key("doomed"));
	assert_object(key("kept"), "hi", 2);
	/* S3 cannot tell a missing object from a deleted one (see store.h). */
	rc = octo_store_delete(store, key("doomed"));
	ck_assert_msg(rc == 0 || rc == OCTO_ENOTFOUND, "second delete gave %d", rc);
	assert_not_found(key("doomed"));
	/* The key can be written again. */
	ck_assert_int_eq(octo_store_put(store, key("doomed"), "back", 4), 0);
	assert_object(key("doomed"), "back", 4);
}
END_TEST

/* ---- streaming from a descriptor ------------------------------------ */

#define HEADER "HEADER-HEADER"
#define TRAILER "TRAILER"

START_TEST(put_fd_streams_a_slice_of_a_file)
{
	const size_t len = 200u * 1024 + 3;
	unsigned char *payload = pattern_alloc(len, 7);
	int fd = temp_fd(NULL);

	begin(_i, __func__);
	write_all(fd, HEADER, strlen(HEADER));
	write_all(fd, payload, len);
	write_all(fd, TRAILER, strlen(TRAILER));
	/* The descriptor's position is not used, nor moved. */
	ck_assert_int_eq(lseek(fd, 5, SEEK_SET), 5);
	ck_assert_int_eq(octo_store_put_fd(store, key("slice"), fd, strlen(HEADER), len), 0);
	ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 5);
	assert_object(key("slice"), payload, len);
	ck_assert_int_eq(octo_store_put_fd(store, key("trailer"), fd,
	                                   strlen(HEADER) + len, strlen(TRAILER)), 0);
	assert_object(key("trailer"), TRAILER, strlen(TRAILER));
	ck_assert_int_eq(octo_store_put_fd(store, key("none"), fd, 3, 0), 0);
	assert_object(key("none"), "", 0);
	close(fd);
	free(payload);
}
END_TEST

START_TEST(put_fd_fails_when_the_file_ends_early)
{
	int fd = temp_fd(NULL);

	begin(_i, __func__);
	write_all(fd, "0123456789", 10);
	ck_assert_int_eq(octo_store_put_fd(store, key("short"), fd, 5, 6), OCTO_EIO);
	ck_assert_str_ne(octo_error_last(), "");
	ck_assert_int_eq(octo_store_put_fd(store, key("past-end"), fd, 11, 1), OCTO_EIO);
	ck_assert_int_eq(octo_store_put_fd(store, key("bad-fd"), -1, 0, 1), OCTO_EINVAL);
	/* The handle is fine afterwards. */
	ck_assert_int_eq(octo_store_put_fd(store, key("whole"), fd, 0, 10), 0);
	assert_object(key("whole"), "0123456789", 10);
	close(fd);
}
END_TEST

/* ---- streaming out -------------------------------------------------- */

START_TEST(get_cb_delivers_the_exact_bytes_in_order)
{
	const size_t len = 300u * 1024 + 11;
	unsigned char *data = pattern_alloc(len, 99);
	sink s;

	begin(_i, __func__);
	ck_assert_int_eq(octo_store_put(store, key("stream"), data, len), 0);
	sink_init(&s, data, len);
	ck_assert_int_eq(octo_store_get_cb(store, key("stream"), to_sink, &s), 0);
	ck_assert_uint_eq(s.got, len);
	ck_assert_int_eq(s.mismatch, 0);
	ck_assert_uint_eq(s.hash, fnv1a(FNV_INIT, data, len));
	ck_assert_int_eq(octo_store_get_cb(store, key("stream"), NULL, NULL), OCTO_EINVAL);
	free(data);
}
END_TEST

START_TEST(get_cb_stops_when_the_callback_says_so)
{
	const size_t len = 1024u * 1024;
	unsigned char *data = pattern_alloc(len, 5);
	sink s;

	begin(_i, __func__);
	ck_assert_int_eq(octo_store_put(store, key("stoppable"), data, len), 0);
	sink_init(&s, data, len);
	s.stop_at_call = 1;
	ck_assert_int_eq(octo_store_get_cb(store, key("stoppable"), to_sink, &s), OCTO_EABORTED);
	ck_assert_uint_eq(s.calls, 1);
	ck_assert_str_ne(octo_error_last(), "");
	/* Stopping later, after some bytes went through. */
	sink_init(&s, data, len);
	s.stop_at_call = 2;
	ck_assert_int_eq(octo_store_get_cb(store, key("stoppable"), to_sink, &s), OCTO_EABORTED);
	ck_assert_uint_eq(s.calls, 2);
	ck_assert_uint_gt(s.got, 0);
	ck_assert_uint_lt(s.got, len);
	ck_assert_int_eq(s.mismatch, 0);
	/* No retry hid the stop, and the handle works afterwards. */
	assert_object(key("stoppable"), data, len);
	free(data);
}
END_TEST

START_TEST(get_fd_writes_at_the_current_position)
{
	const size_t len = 150u * 1024 + 1;
	unsigned char *data = pattern_alloc(len, 1234);
	unsigned char *back = malloc(len + 7);
	int fd = temp_fd(NULL);

	begin(_i, __func__);
	ck_assert_ptr_nonnull(back);
	ck_assert_int_eq(octo_store_put(store, key("to-fd"), data, len), 0);
	write_all(fd, "before:", 7);
	ck_assert_int_eq(octo_store_get_fd(store, key("to-fd"), fd), 0);
	ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), (off_t)(len + 7));
	ck_assert_int_eq(lseek(fd, 0, SEEK_END), (off_t)(len + 7));
	ck_assert_int_eq(pread(fd, back, len + 7, 0), (ssize_t)(len + 7));
	ck_assert_int_eq(memcmp(back, "before:", 7), 0);
	ck_assert_int_eq(memcmp(back + 7, data, len), 0);
	close(fd);
	free(back);
	free(data);
}
END_TEST

START_TEST(get_fd_fails_on_an_unwritable_descriptor)
{
	char path[256];
	int fd = temp_fd(path), ro;

	begin(_i, __func__);
	ro = open(path, O_RDONLY);
	unlink(path);
	close(fd);
	ck_assert_int_ge(ro, 0);
	ck_assert_int_eq(octo_store_put(store, key("obj"), "content", 7), 0);
	ck_assert_int_eq(octo_store_get_fd(store, key("obj"), ro), OCTO_EIO);
	ck_assert_str_ne(octo_error_last(), "");
	close(ro);
}
END_TEST

/* ---- beyond 64 MiB, in bounded memory ------------------------------- */

#define HUGE_LEN (UINT64_C(65) * 1024 * 1024 + 1)
#define HUGE_RSS_GROWTH_KIB (32 * 1024)

static long max_rss_kib(void)
{
	struct rusage ru;

	ck_assert_int_eq(getrusage(RUSAGE_SELF, &ru), 0);
	return ru.ru_maxrss;
}

/* Writes HUGE_LEN pattern bytes to a fresh unlinked file; returns the
 * descriptor and the bytes' checksum. */
static int huge_file(uint64_t *hash)
{
	const size_t chunk = 256 * 1024;
	unsigned char *buf = malloc(chunk);
	uint32_t state = 77;
	uint64_t done = 0;
	int fd = temp_fd(NULL);

	ck_assert_ptr_nonnull(buf);
	*hash = FNV_INIT;
	while (done < HUGE_LEN) {
		size_t n = HUGE_LEN - done < chunk ? (size_t)(HUGE_LEN - done) : chunk;
		pattern_fill(&state, buf, n);
		*hash = fnv1a(*hash, buf, n);
		write_all(fd, buf, n);
		done += n;
	}
	free(buf);
	return fd;
}

START_TEST(streams_an_object_larger_than_64_mib_in_bounded_memory)
{
	octo_object_info info = { 0 };
	uint64_t hash;
	long before, after;
	sink s;
	int fd;

	begin(_i, __func__);
	fd = huge_file(&hash);
	before = max_rss_kib();
	ck_assert_int_eq(octo_store_put_fd(store, key("huge.bin"), fd, 0, HUGE_LEN), 0);
	ck_assert_int_eq(octo_store_head(store, key("huge.bin"), &info), 0);
	ck_assert_uint_eq(info.size, HUGE_LEN);
	sink_init(&s, NULL, 0);
	ck_assert_int_eq(octo_store_get_cb(store, key("huge.bin"), to_sink, &s), 0);
	after = max_rss_kib();
	ck_assert_uint_eq(s.got, HUGE_LEN);
	ck_assert_msg(s.hash == hash, "checksum of the streamed object differs");
	/* Valgrind's own memory is all the process's RSS shows there. */
	if (!under_valgrind())
		ck_assert_msg(after - before < HUGE_RSS_GROWTH_KIB,
		              "peak RSS grew by %ld KiB streaming %llu bytes", after - before,
		              (unsigned long long)HUGE_LEN);
	ck_assert_int_eq(octo_store_delete(store, key("huge.bin")), 0);
	close(fd);
}
END_TEST

/* ---- listing -------------------------------------------------------- */

#define LISTED_MAX 64

typedef struct {
	char keys[LISTED_MAX][256];
	octo_object_info infos[LISTED_MAX];
	int n;
	int stop_at;  /* return non-zero on this key (1-based); 0: never */
} listing;

static int to_listing(const char *k, const octo_object_info *info, void *payload)
{
	listing *l = payload;

	ck_assert_int_lt(l->n, LISTED_MAX);
	ck_assert_uint_lt(strlen(k), sizeof(l->keys[0]));
	strcpy(l->keys[l->n], k);
	l->infos[l->n] = *info;
	l->n++;
	return l->stop_at && l->n == l->stop_at;
}

/* One page: asserts success, and that `more` came back as 0 or 1. */
static listing *list_page(const char *pfx, const char *start_after, size_t max_keys,
                          int *more)
{
	static listing l;

	memset(&l, 0, sizeof(l));
	*more = -1;
	ck_assert_int_eq(octo_store_list(store, pfx, start_after, max_keys, to_listing, &l,
	                                 more), 0);
	ck_assert_msg(*more == 0 || *more == 1, "more is %d", *more);
	return &l;
}

/* Asserts that `l` holds exactly "base" + leaves[from..to), in order,
 * with the sizes they were written with (index + 1). */
static void assert_listed(const listing *l, const char *base, const char *const *leaves,
                          int from, int to)
{
	char want[256];
	int i;

	ck_assert_int_eq(l->n, to - from);
	for (i = from; i < to; i++) {
		snprintf(want, sizeof(want), "%s%s", base, leaves[i]);
		ck_assert_str_eq(l->keys[i - from], want);
		ck_assert_uint_eq(l->infos[i - from].size, (uint64_t)i + 1);
		ck_assert_str_ne(l->infos[i - from].etag, "");
		ck_assert_int_gt(l->infos[i - from].mtime, 0);
	}
}

/* Seven keys under "<prefix>/list/", in byte order: upper case, '_' and
 * lower case, '.' before digits, and one a level deeper. Every key is
 * written with index + 1 bytes. */
static const char *const list_leaves[] = {
	"A-1", "Zeta", "_under", "a.txt", "a0", "b", "sub/c",
};
#define N_LIST 7

/* Writes the listed keys (in scrambled order) and neighbours that share
 * part of the prefix but are not below "<prefix>/list/". */
static void put_list_keys(void)
{
	static const int order[N_LIST] = { 4, 0, 6, 2, 5, 1, 3 };
	static const char *const outside[] = { "lis", "list0", "listing/y", "other/a" };
	char leaf[64], content[N_LIST];
	size_t i;

	memset(content, 'x', sizeof(content));
	for (i = 0; i < N_LIST; i++) {
		int k = order[i];
		snprintf(leaf, sizeof(leaf), "list/%s", list_leaves[k]);
		ck_assert_int_eq(octo_store_put(store, key(leaf), content, (size_t)k + 1), 0);
	}
	for (i = 0; i < sizeof(outside) / sizeof(outside[0]); i++)
		ck_assert_int_eq(octo_store_put(store, key(outside[i]), "out", 3), 0);
}

START_TEST(list_pages_through_keys_in_byte_order)
{
	char base[256], after[256];
	listing *l;
	int more, from = 0, pages = 0;

	begin(_i, __func__);
	put_list_keys();
	snprintf(base, sizeof(base), "%s/list/", prefix);
	after[0] = '\0';
	/* Pages of 3: 3 + 3 + 1, each asked after the last key seen. */
	do {
		int n = N_LIST - from < 3 ? N_LIST - from : 3;
		l = list_page(base, after, 3, &more);
		assert_listed(l, base, list_leaves, from, from + n);
		from += n;
		ck_assert_int_eq(more, from < N_LIST);
		snprintf(after, sizeof(after), "%s", l->keys[l->n - 1]);
		pages++;
	} while (more);
	ck_assert_int_eq(pages, 3);
	ck_assert_int_eq(from, N_LIST);

	l = list_page(base, NULL, N_LIST, &more);
	assert_listed(l, base, list_leaves, 0, N_LIST);
	ck_assert_int_eq(more, 0);
	l = list_page(base, "", N_LIST - 1, &more);
	assert_listed(l, base, list_leaves, 0, N_LIST - 1);
	ck_assert_int_eq(more, 1);
	l = list_page(base, NULL, 1, &more);
	assert_listed(l, base, list_leaves, 0, 1);
	ck_assert_int_eq(more, 1);
	/* `more` may be NULL. */
	ck_assert_int_eq(octo_store_list(store, base, NULL, 2, to_listing, l, NULL), 0);
}
END_TEST

START_TEST(list_filters_by_prefix_and_start_after)
{
	static const char *const wide[] = {
		"lis", "list/A-1", "list/Zeta", "list/_under", "list/a.txt", "list/a0",
		"list/b", "list/sub/c", "list0", "listing/y",
	};
	char base[256], sa[512];
	listing *l;
	int more, i;

	begin(_i, __func__);
	put_list_keys();
	snprintf(base, sizeof(base), "%s/list/", prefix);

	/* Starting after an existing key in the middle. */
	snprintf(sa, sizeof(sa), "%sa.txt", base);
	l = list_page(base, sa, 1000, &more);
	assert_listed(l, base, list_leaves, 4, N_LIST);
	ck_assert_int_eq(more, 0);
	/* After a key that does not exist, and after a mere prefix of keys. */
	snprintf(sa, sizeof(sa), "%sa00", base);
	l = list_page(base, sa, 1000, &more);
	assert_listed(l, base, list_leaves, 5, N_LIST);
	snprintf(sa, sizeof(sa), "%sa", base);
	l = list_page(base, sa, 1000, &more);
	assert_listed(l, base, list_leaves, 3, N_LIST);
	/* After the last key, and past everything. */
	snprintf(sa, sizeof(sa), "%ssub/c", base);
	l = list_page(base, sa, 1000, &more);
	ck_assert_int_eq(l->n, 0);
	ck_assert_int_eq(more, 0);
	l = list_page(base, "zzz", 1000, &more);
	ck_assert_int_eq(l->n, 0);
	ck_assert_int_eq(more, 0);

	/* A prefix need not end at a '/'. */
	snprintf(sa, sizeof(sa), "%sa", base);
	l = list_page(sa, NULL, 1000, &more);
	assert_listed(l, base, list_leaves, 3, 5);
	ck_assert_int_eq(more, 0);
	snprintf(sa, sizeof(sa), "%s/lis", prefix);
	l = list_page(sa, NULL, 1000, &more);
	ck_assert_int_eq(l->n, (int)(sizeof(wide) / sizeof(wide[0])));
	for (i = 0; i < l->n; i++) {
		snprintf(sa, sizeof(sa), "%s/%s", prefix, wide[i]);
		ck_assert_str_eq(l->keys[i], sa);
	}
	/* A prefix nothing has. */
	snprintf(sa, sizeof(sa), "%s/nothing-here/", prefix);
	l = list_page(sa, NULL, 1000, &more);
	ck_assert_int_eq(l->n, 0);
	ck_assert_int_eq(more, 0);
}
END_TEST

START_TEST(list_delivers_pages_of_many_keys)
{
	char leaf[32], base[256], sa[512], want[512];
	listing *l;
	int more, i;

	begin(_i, __func__);
	/* More keys than fit one parser batch of libs3 (32). */
	for (i = 0; i < 40; i++) {
		snprintf(leaf, sizeof(leaf), "many/k%02d", i);
		ck_assert_int_eq(octo_store_put(store, key(leaf), leaf, strlen(leaf)), 0);
	}
	snprintf(base, sizeof(base), "%s/many/", prefix);
	l = list_page(base, NULL, 1000, &more);
	ck_assert_int_eq(l->n, 40);
	ck_assert_int_eq(more, 0);
	for (i = 0; i < 40; i++) {
		snprintf(want, sizeof(want), "%sk%02d", base, i);
		ck_assert_str_eq(l->keys[i], want);
		ck_assert_uint_eq(l->infos[i].size, strlen("many/k00"));
	}
	l = list_page(base, NULL, 35, &more);
	ck_assert_int_eq(l->n, 35);
	ck_assert_int_eq(more, 1);
	snprintf(sa, sizeof(sa), "%s", l->keys[34]);
	l = list_page(base, sa, 35, &more);
	ck_assert_int_eq(l->n, 5);
	ck_assert_int_eq(more, 0);
	snprintf(want, sizeof(want), "%sk35", base);
	ck_assert_str_eq(l->keys[0], want);
}
END_TEST

START_TEST(list_stops_when_the_callback_says_so)
{
	static listing l;
	char base[256];
	int more = -1;

	begin(_i, __func__);
	put_list_keys();
	snprintf(base, sizeof(base), "%s/list/", prefix);
	memset(&l, 0, sizeof(l));
	l.stop_at = 2;
	ck_assert_int_eq(octo_store_list(store, base, NULL, 1000, to_listing, &l, &more),
	                 OCTO_EABORTED);
	ck_assert_int_eq(l.n, 2);
	ck_assert_str_ne(octo_error_last(), "");
}
END_TEST

START_TEST(list_refuses_bad_arguments)
{
	static listing l;
	char *long_prefix = malloc(OCTO_STORE_KEY_MAX + 2);
	int more = -1;

	begin(_i, __func__);
	ck_assert_ptr_nonnull(long_prefix);
	memset(long_prefix, 'p', OCTO_STORE_KEY_MAX + 1);
	long_prefix[OCTO_STORE_KEY_MAX + 1] = '\0';
	memset(&l, 0, sizeof(l));
	ck_assert_int_eq(octo_store_list(store, "", NULL, 0, to_listing, &l, &more), OCTO_EINVAL);
	ck_assert_str_ne(octo_error_last(), "");
	ck_assert_int_eq(octo_store_list(store, "", NULL, 1001, to_listing, &l, &more),
	                 OCTO_EINVAL);
	ck_assert_int_eq(octo_store_list(store, "", NULL, 10, NULL, NULL, &more), OCTO_EINVAL);
	ck_assert_int_eq(octo_store_list(store, long_prefix, NULL, 10, to_listing, &l, &more),
	                 OCTO_EINVAL);
	ck_assert_int_eq(octo_store_list(store, "", long_prefix, 10, to_listing, &l, &more),
	                 OCTO_EINVAL);
	ck_assert_int_eq(l.n, 0);
	/* The bounds themselves are fine. */
	ck_assert_int_eq(octo_store_list(store, prefix, NULL, 1000, to_listing, &l, &more), 0);
	ck_assert_int_eq(octo_store_list(store, prefix, NULL, 1, to_listing, &l, &more), 0);
	free(long_prefix);
}
END_TEST

/* ---- health and keys ------------------------------------------------ */

START_TEST(ping_succeeds_on_a_usable_store)
{
	begin(_i, __func__);
	ck_assert_int_eq(octo_store_ping(store), 0);
	ck_assert_str_eq(octo_error_last(), "");
}
END_TEST

static const char *const invalid_keys[] = {
	"", "/a", "a/", "/", "a//b", ".", "..", "a/..", "a/../b", "./a", ".hidden",
	"a/.tmp", "a b", "a\\b", "a:b", "a?b", "a%20b", "caf\xc3\xa9", "\xff", "a\nb",
};

/* Every operation that takes a key refuses `k` before doing anything. */
static void assert_key_refused(const char *k, int fd)
{
	char *data = NULL, *url = NULL;
	size_t len = 0;
	sink s;

	sink_init(&s, NULL, 0);
	ck_assert_int_eq(octo_store_put(store, k, "x", 1), OCTO_EINVAL);
	ck_assert_str_ne(octo_error_last(), "");
	ck_assert_int_eq(octo_store_put_fd(store, k, fd, 0, 1), OCTO_EINVAL);
	ck_assert_int_eq(octo_store_head(store, k, NULL), OCTO_EINVAL);
	ck_assert_int_eq(octo_store_get(store, k, &data, &len), OCTO_EINVAL);
	ck_assert_ptr_null(data);
	ck_assert_int_eq(octo_store_get_cb(store, k, to_sink, &s), OCTO_EINVAL);
	ck_assert_uint_eq(s.calls, 0);
	ck_assert_int_eq(octo_store_get_fd(store, k, fd), OCTO_EINVAL);
	ck_assert_int_eq(octo_store_delete(store, k), OCTO_EINVAL);
	ck_assert_int_eq(octo_store_presign(store, k, 60, &url), OCTO_EINVAL);
	ck_assert_ptr_null(url);
}

/* A key of exactly `len` bytes under the test's prefix, in segments of
 * at most 200 bytes (any file system takes those). */
static char *long_key(size_t len)
{
	char *k = malloc(len + 1);
	size_t i, n = strlen(prefix);

	ck_assert_ptr_nonnull(k);
	ck_assert_uint_lt(n + 2, len);
	memcpy(k, prefix, n);
	for (i = n; i < len; i++)
		k[i] = ((i - n) % 201 == 0) ? '/' : (char)('a' + i % 26);
	k[len] = '\0';
	if (k[len - 1] == '/')
		k[len - 1] = 'z';
	return k;
}

START_TEST(invalid_keys_are_refused_by_every_operation)
{
	char *too_long;
	size_t i;
	int fd = temp_fd(NULL);

	begin(_i, __func__);
	write_all(fd, "x", 1);
	for (i = 0; i < sizeof(invalid_keys) / sizeof(invalid_keys[0]); i++) {
		ck_assert_msg(!octo_store_key_valid(invalid_keys[i]), "\"%s\"", invalid_keys[i]);
		assert_key_refused(invalid_keys[i], fd);
	}
	assert_key_refused(NULL, fd);
	too_long = long_key(OCTO_STORE_KEY_MAX + 1);
	ck_assert_int_eq(octo_store_key_valid(too_long), 0);
	assert_key_refused(too_long, fd);
	free(too_long);
	close(fd);
}
END_TEST

typedef struct {
	const char *want;
	int seen, matched;
} finder;

static int find_key(const char *k, const octo_object_info *info, void *payload)
{
	finder *f = payload;

	f->seen++;
	f->matched += strcmp(k, f->want) == 0 && info->size == 3;
	return 0;
}

START_TEST(the_longest_key_round_trips_and_a_longer_one_is_refused)
{
	finder f = { NULL, 0, 0 };
	char *k, *longer;
	int more = -1, fd;

	begin(_i, __func__);
	ck_assert_uint_le(cur->key_max, OCTO_STORE_KEY_MAX);
	k = long_key(cur->key_max);
	ck_assert_int_eq(octo_store_key_valid(k), 1);
	ck_assert_int_eq(octo_store_put(store, k, "max", 3), 0);
	assert_object(k, "max", 3);
	/* Listed whole, neither cut nor left out; as a prefix and as a
	 * start key. */
	f.want = k;
	ck_assert_int_eq(octo_store_list(store, k, NULL, 10, find_key, &f, &more), 0);
	ck_assert_int_eq(f.seen, 1);
	ck_assert_int_eq(f.matched, 1);
	ck_assert_int_eq(more, 0);
	ck_assert_int_eq(octo_store_list(store, prefix, k, 10, find_key, &f, &more), 0);
	ck_assert_int_eq(f.seen, 1);
	ck_assert_int_eq(octo_store_delete(store, k), 0);
	ck_assert_int_eq(octo_store_head(store, k, NULL), OCTO_ENOTFOUND);

	/* A valid key beyond what the backend can write is refused, not
	 * written under a name it would later report wrongly. */
	if (cur->key_max < OCTO_STORE_KEY_MAX) {
		longer = long_key(cur->key_max + 1);
		ck_assert_int_eq(octo_store_key_valid(longer), 1);
		ck_assert_int_eq(octo_store_put(store, longer, "x", 1), OCTO_EINVAL);
		ck_assert_str_ne(octo_error_last(), "");
		fd = temp_fd(NULL);
		write_all(fd, "x", 1);
		ck_assert_int_eq(octo_store_put_fd(store, longer, fd, 0, 1), OCTO_EINVAL);
		close(fd);
		ck_assert_int_eq(octo_store_head(store, longer, NULL), OCTO_ENOTFOUND);
		free(longer);
	}
	free(k);
}
END_TEST

/* ---- threads -------------------------------------------------------- */

#define THREADS 4
#define ROUNDS 6

typedef struct {
	int id;
	int failures;
} worker;

static void *put_and_get(void *arg)
{
	worker *w = arg;
	char k[256], body[64], *got;
	size_t len;
	int i;

	for (i = 0; i < ROUNDS; i++) {
		/* Not key(): its rotating buffers are not for threads. */
		snprintf(k, sizeof(k), "%s/t%d/r%d", prefix, w->id, i);
		snprintf(body, sizeof(body), "thread %d round %d", w->id, i);
		got = NULL;
		if (octo_store_put(store, k, body, strlen(body)) != 0 ||
		    octo_store_get(store, k, &got, &len) != 0 || len != strlen(body) ||
		    memcmp(got, body, len) != 0)
			w->failures++;
		octo_free(got);
	}
	return NULL;
}

START_TEST(one_handle_serves_many_threads)
{
	pthread_t threads[THREADS];
	worker workers[THREADS];
	int t;

	begin(_i, __func__);
	for (t = 0; t < THREADS; t++) {
		workers[t].id = t;
		workers[t].failures = 0;
		ck_assert_int_eq(pthread_create(&threads[t], NULL, put_and_get, &workers[t]), 0);
	}
	for (t = 0; t < THREADS; t++)
		ck_assert_int_eq(pthread_join(threads[t], NULL), 0);
	for (t = 0; t < THREADS; t++)
		ck_assert_msg(workers[t].failures == 0, "thread %d: %d failures", t,
		              workers[t].failures);
}
END_TEST

/* ---- signed URLs ---------------------------------------------------- */

typedef struct {
	char *data;
	size_t len;
} body;

static size_t to_body(char *data, size_t size, size_t nmemb, void *payload)
{
	body *b = payload;
	size_t n = size * nmemb;
	char *bigger = realloc(b->data, b->len + n + 1);

	if (!bigger)
		return 0;
	memcpy(bigger + b->len, data, n);
	b->data = bigger;
	b->len += n;
	return n;
}

/* GETs `url`; returns the HTTP status and leaves the body in `b`. */
static long http_get(const char *url, body *b)
{
	CURL *h = curl_easy_init();
	CURLcode rc;
	long status = 0;

	ck_assert_ptr_nonnull(h);
	b->data = NULL;
	b->len = 0;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, to_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 20000L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	ck_assert_msg(rc == CURLE_OK, "GET %s: %s", url, curl_easy_strerror(rc));
	return status;
}

static long http_status(const char *url)
{
	body b;
	long status = http_get(url, &b);

	free(b.data);
	return status;
}

/* The value of query parameter `name` ("Expires=") in `url`. */
static const char *query_param(const char *url, const char *name)
{
	const char *p = strchr(url, '?');

	ck_assert_ptr_nonnull(p);
	while (p) {
		p++; /* past the '?' or '&' */
		if (strncmp(p, name, strlen(name)) == 0)
			return p + strlen(name);
		p = strchr(p, '&');
	}
	ck_abort_msg("no %s in %s", name, url);
	return NULL;
}

/* Waits for the wall clock to pass `t`: the condition under test is
 * the clock itself, so this is what the test awaits, not a guess. */
static void wait_for_wall_clock_past(time_t t)
{
	struct timespec target = { t, 50 * 1000000L }, now;

	for (;;) {
		clock_gettime(CLOCK_REALTIME, &now);
		if (now.tv_sec > target.tv_sec ||
		    (now.tv_sec == target.tv_sec && now.tv_nsec >= target.tv_nsec))
			return;
		clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &target, NULL);
	}
}

/* A copy of `url` with one letter of its signature changed. */
static char *tamper_signature(const char *url)
{
	char *copy = strdup(url), *p;

	ck_assert_ptr_nonnull(copy);
	for (p = copy + (query_param(url, "Signature=") - url); *p && *p != '&'; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')) {
			*p = *p == 'A' ? 'B' : 'A';
			return copy;
		}
	}
	ck_abort_msg("no letter in the signature of %s", url);
	return NULL;
}

/* A copy of `url` with Expires moved one hour later. */
static char *extend_expiry(const char *url)
{
	const char *v = query_param(url, "Expires=");
	char *end, *copy;
	long long expires = strtoll(v, &end, 10);
	size_t n = strlen(url) + 32;

	copy = malloc(n);
	ck_assert_ptr_nonnull(copy);
	snprintf(copy, n, "%.*s%lld%s", (int)(v - url), url, expires + 3600, end);
	return copy;
}

static void presign_works(void)
{
	const size_t len = 1000;
	unsigned char *data = pattern_alloc(len, 31);
	char *url = NULL, *short_url = NULL, *missing = NULL, *bad;
	time_t issued = time(NULL);
	long long expires;
	body b;

	ck_assert_int_eq(octo_store_put(store, key("signed.bin"), data, len), 0);
	/* The short-lived URL first, so that its second passes meanwhile. */
	ck_assert_int_eq(octo_store_presign(store, key("signed.bin"), 1, &short_url), 0);
	expires = strtoll(query_param(short_url, "Expires="), NULL, 10);
	ck_assert_int_ge(expires, (long long)issued + 1);
	ck_assert_int_le(expires, (long long)time(NULL) + 1);

	ck_assert_int_eq(octo_store_presign(store, key("signed.bin"), 3600, &url), 0);
	ck_assert_int_eq(http_get(url, &b), 200);
	ck_assert_uint_eq(b.len, len);
	ck_assert_int_eq(memcmp(b.data, data, len), 0);
	free(b.data);

	bad = tamper_signature(url);
	ck_assert_int_eq(http_status(bad), 403);
	free(bad);
	bad = extend_expiry(url);
	ck_assert_int_eq(http_status(bad), 403);
	free(bad);
	ck_assert_int_eq(octo_store_presign(store, key("absent"), 60, &missing), 0);
	ck_assert_int_eq(http_status(missing), 404);

	wait_for_wall_clock_past((time_t)expires);
	ck_assert_int_eq(http_status(short_url), 403);

	octo_free(url);
	octo_free(short_url);
	octo_free(missing);
	free(data);
}

START_TEST(presign_gives_working_urls_or_is_unsupported)
{
	char *url = NULL;

	begin(_i, __func__);
	ck_assert_int_eq(octo_store_presign(store, key("k"), 0, &url), OCTO_EINVAL);
	ck_assert_int_eq(octo_store_presign(store, key("k"), 60, NULL), OCTO_EINVAL);
	if (cur->presign) {
		/* libs3 2.0 reads a byte past its own base64 buffer on every
		 * URL it signs, which valgrind reports as an error in libs3. */
		if (!under_valgrind())
			presign_works();
		return;
	}
	ck_assert_int_eq(octo_store_put(store, key("k"), "x", 1), 0);
	ck_assert_int_eq(octo_store_presign(store, key("k"), 60, &url), OCTO_EUNSUPPORTED);
	ck_assert_ptr_null(url);
	ck_assert_str_ne(octo_error_last(), "");
}
END_TEST

/* ---- the TCase ------------------------------------------------------ */

TCase *store_contract_tcase(const store_contract *contract)
{
	TCase *tc = tcase_create(contract->name);
	int i = n_contracts;

	if (n_contracts == MAX_CONTRACTS) { /* no test runs yet to fail */
		fprintf(stderr, "store_contract_tcase: more than %d contracts\n", MAX_CONTRACTS);
		abort();
	}
	contracts[n_contracts++] = contract;
	/* Generous: the 65 MiB round trip under valgrind takes a while. */
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, NULL, finish);
	/* Each test runs once, with _i naming its contract. */
	tcase_add_loop_test(tc, round_trips_an_empty_object, i, i + 1);
	tcase_add_loop_test(tc, round_trips_a_small_binary_object, i, i + 1);
	tcase_add_loop_test(tc, round_trips_a_multi_megabyte_object, i, i + 1);
	tcase_add_loop_test(tc, put_replaces_an_object_and_its_etag, i, i + 1);
	tcase_add_loop_test(tc, missing_objects_are_not_found, i, i + 1);
	tcase_add_loop_test(tc, deleted_objects_are_gone, i, i + 1);
	tcase_add_loop_test(tc, put_fd_streams_a_slice_of_a_file, i, i + 1);
	tcase_add_loop_test(tc, put_fd_fails_when_the_file_ends_early, i, i + 1);
	tcase_add_loop_test(tc, get_cb_delivers_the_exact_bytes_in_order, i, i + 1);
	tcase_add_loop_test(tc, get_cb_stops_when_the_callback_says_so, i, i + 1);
	tcase_add_loop_test(tc, get_fd_writes_at_the_current_position, i, i + 1);
	tcase_add_loop_test(tc, get_fd_fails_on_an_unwritable_descriptor, i, i + 1);
	tcase_add_loop_test(tc, streams_an_object_larger_than_64_mib_in_bounded_memory, i, i + 1);
	tcase_add_loop_test(tc, list_pages_through_keys_in_byte_order, i, i + 1);
	tcase_add_loop_test(tc, list_filters_by_prefix_and_start_after, i, i + 1);
	tcase_add_loop_test(tc, list_delivers_pages_of_many_keys, i, i + 1);
	tcase_add_loop_test(tc, list_stops_when_the_callback_says_so, i, i + 1);
	tcase_add_loop_test(tc, list_refuses_bad_arguments, i, i + 1);
	tcase_add_loop_test(tc, ping_succeeds_on_a_usable_store, i, i + 1);
	tcase_add_loop_test(tc, invalid_keys_are_refused_by_every_operation, i, i + 1);
	tcase_add_loop_test(tc, the_longest_key_round_trips_and_a_longer_one_is_refused, i, i + 1);
	tcase_add_loop_test(tc, one_handle_serves_many_threads, i, i + 1);
	tcase_add_loop_test(tc, presign_gives_working_urls_or_is_unsupported, i, i + 1);
	return tc;
}
