/* Object storage over a local directory: opening, keys, the object
 * round trip, atomic replacement, health checks and concurrent use, then
 * the contract every backend keeps (store_contract.c). */
#include "config.h"

#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <octopus/octopus.h>

#include "../lib/store.h"
#include "store_contract.h"
#include "testutil.h"

/* Every test gets a fresh temporary directory; `dir` is where the store
 * lives (not created in advance, so opening has to create it). */
static char base[256];
static char dir[512];
static octo_store *store;

static void setup(void)
{
	tu_mkdtemp(base);
	snprintf(dir, sizeof(dir), "%s/store", base);
	store = NULL;
}

static void setup_open(void)
{
	setup();
	ck_assert_int_eq(octo_store_open_local(&store, dir), 0);
	ck_assert_ptr_nonnull(store);
}

static void teardown(void)
{
	octo_store_free(store);
	store = NULL;
	tu_rmtree(base);
}

/* Entries of a directory other than "." and "..", or -1 when it cannot be
 * read. */
static int count_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* What an untouched store directory holds: .tmp, the journal and the
 * record log. */
static void assert_store_empty(void)
{
	char path[600];
	struct stat st;

	ck_assert_int_eq(count_entries(dir), 3);
	snprintf(path, sizeof(path), "%s/.journal", dir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	snprintf(path, sizeof(path), "%s/.records", dir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
}

static int tmp_entries(void)
{
	char tmp[600];

	snprintf(tmp, sizeof(tmp), "%s/.tmp", dir);
	return count_entries(tmp);
}

static int is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Asserts that `key` holds exactly `len` bytes of `data`. */
static void assert_object(const char *key, const void *data, size_t len)
{
	octo_object_info info = { 0 };
	char *got = NULL;
	size_t got_len = (size_t)-1;

	ck_assert_int_eq(octo_store_head(store, key, &info), 0);
	ck_assert_uint_eq(info.size, len);
	ck_assert_int_eq(octo_store_get(store, key, &got, &got_len), 0);
	ck_assert_ptr_nonnull(got);
	ck_assert_uint_eq(got_len, len);
	ck_assert_int_eq(memcmp(got, data, len), 0);
	ck_assert_int_eq(got[len], '\0');
	octo_free(got);
}

/* ---- octo_store_open_local ------------------------------------------ */

START_TEST(open_local_creates_the_directory_its_parents_and_tmp)
{
	char tmp[600];
	struct stat st;

	snprintf(dir, sizeof(dir), "%s/a/b/c", base);
	ck_assert_int_eq(octo_store_open_local(&store, dir), 0);
	ck_assert_ptr_nonnull(store);
	ck_assert(is_dir(dir));
	snprintf(tmp, sizeof(tmp), "%s/.tmp", dir);
	ck_assert(is_dir(tmp));
	ck_assert_int_eq(count_entries(tmp), 0);
	/* Mode 0750: nothing for others, no group write. */
	ck_assert_int_eq(stat(dir, &st), 0);
	ck_assert_int_eq(st.st_mode & 0027, 0);
}
END_TEST

START_TEST(open_local_reopens_an_existing_store_with_its_objects)
{
	ck_assert_int_eq(octo_store_open_local(&store, dir), 0);
	ck_assert_int_eq(octo_store_put(store, "kept/object", "data", 4), 0);
	octo_store_free(store);
	store = NULL;

	ck_assert_int_eq(octo_store_open_local(&store, dir), 0);
	assert_object("kept/object", "data", 4);
}
END_TEST

START_TEST(open_local_removes_temp_files_left_by_a_crash)
{
	char path[700];

	snprintf(path, sizeof(path), "%s/.tmp", dir);
	ck_assert_int_eq(mkdir(dir, 0750), 0);
	ck_assert_int_eq(mkdir(path, 0750), 0);
	snprintf(path, sizeof(path), "%s/.tmp/put-Ab12Cd", dir);
	tu_write_file(path, "torn", 4);
	snprintf(path, sizeof(path), "%s/.tmp/put-Zz99Yy", dir);
	tu_write_file(path, "half a file", 11);
	snprintf(path, sizeof(path), "%s/object", dir);
	tu_write_file(path, "whole", 5);
	ck_assert_int_eq(tmp_entries(), 2);

	ck_assert_int_eq(octo_store_open_local(&store, dir), 0);
	ck_assert_int_eq(tmp_entries(), 0);
	/* Objects outside .tmp are not garbage. */
	assert_object("object", "whole", 5);
}
END_TEST

START_TEST(open_local_refuses_a_missing_or_empty_directory_name)
{
	ck_assert_int_eq(octo_store_open_local(&store, ""), OCTO_EINVAL);
	ck_assert_ptr_null(store);
	ck_assert_int_eq(octo_store_open_local(&store, NULL), OCTO_EINVAL);
	ck_assert_ptr_null(store);
	ck_assert_int_eq(octo_store_open_local(NULL, dir), OCTO_EINVAL);
	ck_assert_str_ne(octo_error_last(), "");
	ck_assert(!is_dir(dir));
}
END_TEST

START_TEST(open_local_fails_when_the_path_is_a_regular_file)
{
	tu_write_file(dir, "not a directory", 15);
	ck_assert_int_eq(octo_store_open_local(&store, dir), OCTO_EIO);
	ck_assert_ptr_null(store);
	ck_assert_str_ne(octo_error_last(), "");
	ck_assert(is_file(dir));
}
END_TEST

START_TEST(open_local_refuses_a_path_too_long_for_any_key)
{
	char *longdir = malloc(PATH_MAX);
	size_t n;

	ck_assert_ptr_nonnull(longdir);
	n = (size_t)snprintf(longdir, PATH_MAX, "%s/", base);
	memset(longdir + n, 'd', PATH_MAX - 1 - n);
	longdir[PATH_MAX - 1] = '\0';
	ck_assert_int_eq(octo_store_open_local(&store, longdir), OCTO_EINVAL);
	ck_assert_ptr_null(store);
	free(longdir);
}
END_TEST

/* ---- octo_store_backend, octo_store_free ---------------------------- */

START_TEST(backend_of_a_local_store_is_named_local)
{
	ck_assert_str_eq(octo_store_backend(store), "local");
}
END_TEST

START_TEST(free_accepts_null)
{
	octo_store_free(NULL);
	/* Reaching this line is the assertion; the store is still usable. */
	ck_assert_int_eq(octo_store_ping(store), 0);
}
END_TEST

/* ---- octo_store_ping ------------------------------------------------ */

START_TEST(ping_succeeds_on_a_usable_store)
{
	ck_assert_int_eq(octo_store_ping(store), 0);
	ck_assert_str_eq(octo_error_last(), "");
}
END_TEST

START_TEST(ping_fails_after_the_directory_is_removed)
{
	tu_rmtree(dir);
	ck_assert(!is_dir(dir));
	ck_assert_int_eq(octo_store_ping(store), OCTO_EIO);
	ck_assert_str_ne(octo_error_last(), "");
}
END_TEST

START_TEST(ping_fails_after_the_directory_is_replaced_by_a_file)
{
	tu_rmtree(dir);
	tu_write_file(dir, "x", 1);
	ck_assert_int_eq(octo_store_ping(store), OCTO_EIO);
	ck_assert_str_ne(octo_error_last(), "");
}
END_TEST

START_TEST(ping_fails_after_tmp_is_replaced_by_a_file)
{
	char tmp[600];

	snprintf(tmp, sizeof(tmp), "%s/.tmp", dir);
	ck_assert_int_eq(rmdir(tmp), 0);
	tu_write_file(tmp, "x", 1);
	ck_assert_int_eq(octo_store_ping(store), OCTO_EIO);
}
END_TEST

/* A store that fails its ping fails its puts too, new keys and old:
 * the server must not accept work it then reports it cannot store. */
START_TEST(puts_fail_while_tmp_is_gone)
{
	char tmp[600], away[620];

	ck_assert_int_eq(octo_store_put(store, "jobs/old.json", "1", 1), 0);
	snprintf(tmp, sizeof(tmp), "%s/.tmp", dir);
	snprintf(away, sizeof(away), "%s.away", tmp);
	ck_assert_int_eq(rename(tmp, away), 0);
	ck_assert_int_eq(octo_store_ping(store), OCTO_EIO);
	ck_assert_int_eq(octo_store_put(store, "jobs/new.json", "2", 1), OCTO_EIO);
	ck_assert_int_eq(octo_store_put(store, "jobs/old.json", "2", 1), OCTO_EIO);
	ck_assert_int_eq(rename(away, tmp), 0);
	ck_assert_int_eq(octo_store_head(store, "jobs/new.json", NULL), OCTO_ENOTFOUND);
	assert_object("jobs/old.json", "1", 1);
	ck_assert_int_eq(octo_store_put(store, "jobs/new.json", "2", 1), 0);
	assert_object("jobs/new.json", "2", 1);
}
END_TEST

/* ---- put / head / get / delete -------------------------------------- */

START_TEST(put_head_get_delete_round_trip)
{
	/* Binary content with an embedded NUL: length, not strlen, counts. */
	static const char data[] = "hello\0world\xff\n";
	const size_t len = sizeof(data) - 1;
	char path[700];

	ck_assert_int_eq(octo_store_put(store, "downloads/70000.zip", data, len), 0);
	assert_object("downloads/70000.zip", data, len);
	/* Objects are plain files below the store directory. */
	snprintf(path, sizeof(path), "%s/downloads/70000.zip", dir);
	ck_assert(is_file(path));

	ck_assert_int_eq(octo_store_delete(store, "downloads/70000.zip"), 0);
	ck_assert_int_eq(octo_store_head(store, "downloads/70000.zip", NULL), OCTO_ENOTFOUND);
	ck_assert(!is_file(path));
}
END_TEST

START_TEST(head_reports_size_and_a_current_mtime)
{
	octo_object_info info = { 0 };
	time_t before = time(NULL), after;

	ck_assert_int_eq(octo_store_put(store, "sized", "12345678", 8), 0);
	after = time(NULL);
	ck_assert_int_eq(octo_store_head(store, "sized", &info), 0);
	ck_assert_uint_eq(info.size, 8);
	ck_assert_int_ge(info.mtime, (int64_t)before - 1);
	ck_assert_int_le(info.mtime, (int64_t)after + 1);
}
END_TEST

START_TEST(head_accepts_a_null_info)
{
	ck_assert_int_eq(octo_store_put(store, "a", "x", 1), 0);
	ck_assert_int_eq(octo_store_head(store, "a", NULL), 0);
}
END_TEST

START_TEST(put_over_an_object_replaces_its_content)
{
	static const char first[] = "the first, longer version";

	ck_assert_int_eq(octo_store_put(store, "doc", first, strlen(first)), 0);
	ck_assert_int_eq(octo_store_put(store, "doc", "short", 5), 0);
	assert_object("doc", "short", 5);
	ck_assert_int_eq(octo_store_put(store, "doc", first, strlen(first)), 0);
	assert_object("doc", first, strlen(first));
}
END_TEST

START_TEST(put_of_zero_bytes_stores_an_empty_object)
{
	char *got = NULL;
	size_t len = 99;

	ck_assert_int_eq(octo_store_put(store, "empty/with-pointer", "ignored", 0), 0);
	ck_assert_int_eq(octo_store_put(store, "empty/with-null", NULL, 0), 0);
	assert_object("empty/with-pointer", "", 0);
	ck_assert_int_eq(octo_store_get(store, "empty/with-null", &got, &len), 0);
	ck_assert_ptr_nonnull(got);
	ck_assert_uint_eq(len, 0);
	ck_assert_str_eq(got, "");
	octo_free(got);
}
END_TEST

START_TEST(put_of_null_data_with_a_length_is_refused)
{
	ck_assert_int_eq(octo_store_put(store, "nothing", NULL, 5), OCTO_EINVAL);
	ck_assert_int_eq(octo_store_head(store, "nothing", NULL), OCTO_ENOTFOUND);
	ck_assert_int_eq(tmp_entries(), 0);
}
END_TEST

START_TEST(large_object_round_trips)
{
	const size_t len = 5u * 1024 * 1024 + 7; /* not a multiple of any buffer */
	unsigned char *data = malloc(len);
	uint32_t x = 2463534242u;
	size_t i;

	ck_assert_ptr_nonnull(data);
	for (i = 0; i < len; i++) { /* xorshift: no period a buffer could hide */
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		data[i] = (unsigned char)x;
	}
	ck_assert_int_eq(octo_store_put(store, "big/blob.bin", data, len), 0);
	assert_object("big/blob.bin", data, len);
	free(data);
}
END_TEST

START_TEST(keys_share_parent_directories)
{
	ck_assert_int_eq(octo_store_put(store, "p/q/one", "1", 1), 0);
	ck_assert_int_eq(octo_store_put(store, "p/q/two", "22", 2), 0);
	ck_assert_int_eq(octo_store_put(store, "p/three", "333", 3), 0);
	assert_object("p/q/one", "1", 1);
	assert_object("p/q/two", "22", 2);
	assert_object("p/three", "333", 3);
	ck_assert_int_eq(octo_store_delete(store, "p/q/one"), 0);
	assert_object("p/q/two", "22", 2);
}
END_TEST

START_TEST(no_temp_files_remain_after_puts)
{
	char key[32];
	int i;

	for (i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), "k/%d", i % 5); /* overwrites, too */
		ck_assert_int_eq(octo_store_put(store, key, key, strlen(key)), 0);
	}
	ck_assert_int_eq(octo_store_put(store, "k/empty", NULL, 0), 0);
	ck_assert_int_eq(tmp_entries(), 0);
}
END_TEST

START_TEST(failed_put_leaves_no_temp_file_and_keeps_the_blocker)
{
	/* "a" is an object, so "a/b" cannot be created below it. */
	ck_assert_int_eq(octo_store_put(store, "a", "file", 4), 0);
	ck_assert_int_lt(octo_store_put(store, "a/b", "x", 1), 0);
	ck_assert_str_ne(octo_error_last(), "");
	ck_assert_int_eq(tmp_entries(), 0);
	assert_object("a", "file", 4);
}
END_TEST

/* ---- missing objects ------------------------------------------------ */

/* ---- metrics ---------------------------------------------------------- */

static double counted(octo_metrics *reg, const char *series)
{
	char *text, *p;
	double v = -1;

	ck_assert_int_eq(octo_metrics_render(reg, &text, NULL), 0);
	if ((p = strstr(text, series)) != NULL && p[strlen(series)] == ' ')
		v = strtod(p + strlen(series) + 1, NULL);
	octo_free(text);
	return v;
}

START_TEST(calls_are_counted_by_operation_and_result)
{
	octo_metrics *reg;
	char *data;
	size_t len;

	ck_assert_int_eq(octo_metrics_new(&reg), 0);
	ck_assert_int_eq(octo_store_set_metrics(store, reg), 0);
	ck_assert_int_eq(octo_store_put(store, "a/b", "xy", 2), 0);
	ck_assert_int_eq(octo_store_head(store, "a/missing", NULL), OCTO_ENOTFOUND);
	ck_assert_int_eq(octo_store_get(store, "a/b", &data, &len), 0);
	octo_free(data);
	ck_assert_int_eq(octo_store_delete(store, "a/b"), 0);
	ck_assert_int_eq(octo_store_delete(store, "a/b"), OCTO_ENOTFOUND);
	ck_assert_double_eq(counted(reg, "storage_requests_total{operation=\"put\",result=\"ok\"}"), 1);
	ck_assert_double_eq(counted(reg, "storage_requests_total{operation=\"head\",result=\"not_found\"}"), 1);
	ck_assert_double_eq(counted(reg, "storage_requests_total{operation=\"get\",result=\"ok\"}"), 1);
	ck_assert_double_eq(counted(reg, "storage_requests_total{operation=\"delete\",result=\"ok\"}"), 1);
	ck_assert_double_eq(counted(reg, "storage_requests_total{operation=\"delete\",result=\"not_found\"}"), 1);
	ck_assert_double_eq(counted(reg, "storage_requests_total{operation=\"ping\",result=\"ok\"}"), 0);
	ck_assert_double_eq(counted(reg, "storage_request_duration_seconds_count{operation=\"delete\"}"), 2);
	/* An invalid key never reaches the backend: nothing to count. */
	ck_assert_int_eq(octo_store_put(store, "../x", "", 0), OCTO_EINVAL);
	ck_assert_double_eq(counted(reg, "storage_request_duration_seconds_count{operation=\"put\"}"), 1);
	octo_store_free(store); /* before the registry it counts in */
	store = NULL;
	octo_metrics_free(reg);
}
END_TEST

START_TEST(two_stores_share_one_registry)
{
	octo_metrics *reg;
	octo_store *other;

	ck_assert_int_eq(octo_metrics_new(&reg), 0);
	ck_assert_int_eq(octo_store_set_metrics(store, reg), 0);
	ck_assert_int_eq(octo_store_open_local(&other, dir), 0);
	ck_assert_int_eq(octo_store_set_metrics(other, reg), 0); /* same definition */
	ck_assert_int_eq(octo_store_put(other, "k", "1", 1), 0);
	ck_assert_int_eq(octo_store_put(store, "k", "2", 1), 0);
	ck_assert_double_eq(counted(reg, "storage_requests_total{operation=\"put\",result=\"ok\"}"), 2);
	ck_assert_int_eq(octo_store_set_metrics(NULL, reg), OCTO_EINVAL);
	ck_assert_int_eq(octo_store_set_metrics(store, NULL), OCTO_EINVAL);
	octo_store_free(other);
	octo_store_free(store);
	store = NULL;
	octo_metrics_free(reg);
}
END_TEST

START_TEST(head_of_a_missing_key_is_not_found)
{
	ck_assert_int_eq(octo_store_head(store, "missing", NULL), OCTO_ENOTFOUND);
	ck_assert_str_ne(octo_error_last(), "");
	ck_assert_int_eq(octo_store_head(store, "no/such/dir", NULL), OCTO_ENOTFOUND);
}
END_TEST

START_TEST(get_of_a_missing_key_is_not_found)
{
	char *data = NULL;
	size_t len = 0;

	ck_assert_int_eq(octo_store_get(store, "missing", &data, &len), OCTO_ENOTFOUND);
	ck_assert_ptr_null(data);
	ck_assert_str_ne(octo_error_last(), "");
	ck_assert_int_eq(octo_store_get(store, "no/such/dir", &data, &len), OCTO_ENOTFOUND);
	ck_assert_ptr_null(data);
}
END_TEST

START_TEST(delete_of_a_missing_key_is_not_found)
{
	ck_assert_int_eq(octo_store_delete(store, "missing"), OCTO_ENOTFOUND);
	ck_assert_str_ne(octo_error_last(), "");
	ck_assert_int_eq(octo_store_put(store, "once", "1", 1), 0);
	ck_assert_int_eq(octo_store_delete(store, "once"), 0);
	ck_assert_int_eq(octo_store_delete(store, "once"), OCTO_ENOTFOUND);
}
END_TEST

START_TEST(a_key_that_is_only_a_prefix_directory_is_not_found)
{
	char *data = NULL;
	size_t len = 0;

	ck_assert_int_eq(octo_store_put(store, "dir/object", "x", 1), 0);
	ck_assert_int_eq(octo_store_head(store, "dir", NULL), OCTO_ENOTFOUND);
	ck_assert_int_eq(octo_store_get(store, "dir", &data, &len), OCTO_ENOTFOUND);
	ck_assert_ptr_null(data);
	ck_assert_int_eq(octo_store_delete(store, "dir"), OCTO_ENOTFOUND);
	assert_object("dir/object", "x", 1);
}
END_TEST

START_TEST(a_key_below_an_object_is_not_found)
{
	char *data = NULL;
	size_t len = 0;

	ck_assert_int_eq(octo_store_put(store, "file", "x", 1), 0);
	ck_assert_int_eq(octo_store_head(store, "file/child", NULL), OCTO_ENOTFOUND);
	ck_assert_int_eq(octo_store_get(store, "file/child", &data, &len), OCTO_ENOTFOUND);
	ck_assert_int_eq(octo_store_delete(store, "file/child"), OCTO_ENOTFOUND);
}
END_TEST

/* ---- keys ----------------------------------------------------------- */

static const char *const invalid_keys[] = {
	"", "/a", "a/", "/", "a//b", ".", "..", "a/..", "a/../b", "./a",
	".hidden", "a/.tmp", ".tmp", ".tmp/x", "a b", "a\\b", "a\tb", "a:b",
	"a*", "caf\xc3\xa9", "\xe2\x82\xac", "\xff", "a\nb",
};

static const char *const valid_keys[] = {
	"a", "A", "0", "a/b", "downloads/70000.zip", "a.b", "a..b", "a.",
	"-", "_", "x-y_z.0/Q-9", "v1.2.3/notes.txt",
};

START_TEST(key_valid_accepts_well_formed_keys)
{
	ck_assert_msg(octo_store_key_valid(valid_keys[_i]) == 1,
	              "\"%s\" should be valid", valid_keys[_i]);
}
END_TEST

START_TEST(key_valid_refuses_malformed_keys)
{
	ck_assert_msg(octo_store_key_valid(invalid_keys[_i]) == 0,
	              "\"%s\" should be invalid", invalid_keys[_i]);
}
END_TEST

START_TEST(operations_with_an_invalid_key_fail_and_write_nothing)
{
	const char *key = invalid_keys[_i];
	char *data = NULL;
	size_t len = 0;

	ck_assert_int_eq(octo_store_put(store, key, "x", 1), OCTO_EINVAL);
	ck_assert_str_ne(octo_error_last(), "");
	ck_assert_int_eq(octo_store_head(store, key, NULL), OCTO_EINVAL);
	ck_assert_int_eq(octo_store_get(store, key, &data, &len), OCTO_EINVAL);
	ck_assert_ptr_null(data);
	ck_assert_int_eq(octo_store_delete(store, key), OCTO_EINVAL);
	assert_store_empty();
	ck_assert_int_eq(tmp_entries(), 0);
}
END_TEST

START_TEST(a_null_key_is_invalid)
{
	ck_assert_int_eq(octo_store_key_valid(NULL), 0);
	ck_assert_int_eq(octo_store_put(store, NULL, "x", 1), OCTO_EINVAL);
	ck_assert_int_eq(octo_store_head(store, NULL, NULL), OCTO_EINVAL);
	ck_assert_int_eq(octo_store_delete(store, NULL), OCTO_EINVAL);
}
END_TEST

/* A key of `len` bytes made of segments short enough for any file
 * system (at most 200 bytes each). */
static char *long_key(size_t len)
{
	char *key = malloc(len + 1);
	size_t i;

	ck_assert_ptr_nonnull(key);
	for (i = 0; i < len; i++)
		key[i] = (i % 201 == 200) ? '/' : (char)('a' + i % 26);
	key[len] = '\0';
	ck_assert_int_ne(key[len - 1], '/');
	return key;
}

START_TEST(a_key_of_the_maximum_length_is_valid_and_stored)
{
	char *key = long_key(OCTO_STORE_KEY_MAX);

	ck_assert_uint_eq(strlen(key), 1024);
	ck_assert_int_eq(octo_store_key_valid(key), 1);
	ck_assert_int_eq(octo_store_put(store, key, "max", 3), 0);
	assert_object(key, "max", 3);
	free(key);
}
END_TEST

START_TEST(a_key_one_byte_over_the_maximum_is_refused)
{
	char *key = long_key(OCTO_STORE_KEY_MAX + 1);

	ck_assert_uint_eq(strlen(key), 1025);
	ck_assert_int_eq(octo_store_key_valid(key), 0);
	ck_assert_int_eq(octo_store_put(store, key, "x", 1), OCTO_EINVAL);
	ck_assert_int_eq(octo_store_head(store, key, NULL), OCTO_EINVAL);
	assert_store_empty();
	free(key);
}
END_TEST

/* ---- the journal ----------------------------------------------------- */

static char *read_whole(const char *path, size_t *len)
{
	struct stat st;
	char *data;
	FILE *f;

	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_ptr_nonnull(data = malloc((size_t)st.st_size + 1));
	ck_assert_ptr_nonnull(f = fopen(path, "rb"));
	ck_assert_uint_eq(fread(data, 1, (size_t)st.st_size, f), (size_t)st.st_size);
	fclose(f);
	*len = (size_t)st.st_size;
	return data;
}

static void journal_path(char *out, size_t size)
{
	snprintf(out, size, "%s/.journal", dir);
}

static void object_file(const char *key, char *out, size_t size)
{
	snprintf(out, size, "%s/%s", dir, key);
}

/* What a power loss may leave: installed objects that were never synced
 * gone or empty, and the journal as it was synced. Closing the store
 * first empties the journal, so its synced copy is put back. */
static void lose_power(const char *journal_copy, size_t len)
{
	char path[600];

	octo_store_free(store);
	store = NULL;
	object_file("jobs/a.json", path, sizeof(path));
	ck_assert_int_eq(unlink(path), 0);
	object_file("jobs/b.json", path, sizeof(path));
	tu_write_file(path, "", 0);
	journal_path(path, sizeof(path));
	tu_write_file(path, journal_copy, len);
}

/* A copy of the journal as it is now. */
static char *journal_copy(size_t *len)
{
	char path[600];

	journal_path(path, sizeof(path));
	return read_whole(path, len);
}

START_TEST(a_reopen_replays_the_journal_over_what_a_power_loss_took)
{
	char *copy, *again;
	size_t len, again_len;

	ck_assert_int_eq(octo_store_put(store, "jobs/a.json", "{\"a\":1}", 7), 0);
	ck_assert_int_eq(octo_store_put(store, "jobs/b.json", "old", 3), 0);
	ck_assert_int_eq(octo_store_put(store, "jobs/b.json", "{\"b\":2}", 7), 0);
	ck_assert_int_eq(octo_store_put(store, "jobs/c.json", "c", 1), 0);
	ck_assert_int_eq(octo_store_delete(store, "jobs/c.json"), 0);
	copy = journal_copy(&len);
	lose_power(copy, len);
	/* c was put and deleted: replay must leave it absent. */
	ck_assert_int_eq(octo_store_open_local(&store, dir), 0);
	assert_object("jobs/a.json", "{\"a\":1}", 7);
	assert_object("jobs/b.json", "{\"b\":2}", 7);
	ck_assert_int_eq(octo_store_head(store, "jobs/c.json", NULL), OCTO_ENOTFOUND);
	ck_assert_int_eq(tmp_entries(), 0);
	/* The reopen started a new generation: the old entries, still in the
	 * file, are no longer replayed over newer objects. */
	ck_assert_int_eq(octo_store_put(store, "jobs/b.json", "{\"b\":3}", 7), 0);
	again = journal_copy(&again_len);
	octo_store_free(store);
	store = NULL;
	ck_assert_int_eq(octo_store_open_local(&store, dir), 0);
	assert_object("jobs/b.json", "{\"b\":3}", 7);
	free(copy);
	free(again);
}
END_TEST

/* Where `value` first appears in the journal copy. */
static size_t offset_of(const char *copy, size_t len, const char *value)
{
	const char *at = memmem(copy, len, value, strlen(value));

	ck_assert_ptr_nonnull(at);
	return (size_t)(at - copy);
}

START_TEST(replay_stops_at_a_torn_or_corrupt_entry)
{
	char *copy;
	size_t len, b_value;

	ck_assert_int_eq(octo_store_put(store, "jobs/a.json", "{\"a\":1}", 7), 0);
	ck_assert_int_eq(octo_store_put(store, "jobs/b.json", "{\"b\":2}", 7), 0);
	copy = journal_copy(&len);
	b_value = offset_of(copy, len, "{\"b\":2}");
	/* One flipped byte in b's value: its digest no longer matches. */
	copy[b_value + 2] ^= 0x20;
	lose_power(copy, len);
	ck_assert_int_eq(octo_store_open_local(&store, dir), 0);
	assert_object("jobs/a.json", "{\"a\":1}", 7);
	assert_object("jobs/b.json", "", 0); /* left as the loss left it */
	octo_store_free(store);
	store = NULL;
	/* A file cut inside b's entry: a is replayed, the open succeeds. */
	copy[b_value + 2] ^= 0x20;
	lose_power(copy, b_value + 3);
	ck_assert_int_eq(octo_store_open_local(&store, dir), 0);
	assert_object("jobs/a.json", "{\"a\":1}", 7);
	free(copy);
}
END_TEST

START_TEST(a_direct_put_is_never_undone_by_an_older_journaled_put)
{
	char path[600], big[4096], *copy;
	size_t len;
	int fd;

	ck_assert_int_eq(octo_store_put(store, "files/x", "small", 5), 0);
	memset(big, 'x', sizeof(big));
	snprintf(path, sizeof(path), "%s/source", base);
	tu_write_file(path, big, sizeof(big));
	ck_assert_int_ge(fd = open(path, O_RDONLY), 0);
	ck_assert_int_eq(octo_store_put_fd(store, "files/x", fd, 0, sizeof(big)), 0);
	close(fd);
	ck_assert_int_eq(octo_store_put(store, "jobs/a.json", "{}", 2), 0);
	copy = journal_copy(&len);
	lose_power(copy, len);
	ck_assert_int_eq(octo_store_open_local(&store, dir), 0);
	assert_object("files/x", big, sizeof(big));
	assert_object("jobs/a.json", "{}", 2);
	free(copy);
}
END_TEST

START_TEST(a_second_store_on_the_same_directory_writes_durably_without_the_journal)
{
	octo_store *second;
	char *before, *after;
	size_t before_len, after_len;

	before = journal_copy(&before_len);
	ck_assert_int_eq(octo_store_open_local(&second, dir), 0);
	ck_assert_int_eq(octo_store_put(second, "jobs/s.json", "{}", 2), 0);
	after = journal_copy(&after_len);
	ck_assert_uint_eq(after_len, before_len);
	ck_assert_int_eq(memcmp(before, after, before_len), 0);
	assert_object("jobs/s.json", "{}", 2);
	ck_assert_int_eq(octo_store_delete(second, "jobs/s.json"), 0);
	ck_assert_int_eq(octo_store_head(store, "jobs/s.json", NULL), OCTO_ENOTFOUND);
	octo_store_free(second);
	free(before);
	free(after);
}
END_TEST

/* A clean close and a reopen must leave a journal that still protects
 * the next writes: the reopen starts a generation of its own. */
START_TEST(writes_after_a_clean_reopen_survive_a_power_loss)
{
	char *copy;
	size_t len;

	ck_assert_int_eq(octo_store_put(store, "jobs/a.json", "first", 5), 0);
	octo_store_free(store);
	ck_assert_int_eq(octo_store_open_local(&store, dir), 0);
	ck_assert_int_eq(octo_store_put(store, "jobs/a.json", "second", 6), 0);
	ck_assert_int_eq(octo_store_put(store, "jobs/b.json", "b", 1), 0);
	copy = journal_copy(&len);
	lose_power(copy, len);
	ck_assert_int_eq(octo_store_open_local(&store, dir), 0);
	assert_object("jobs/a.json", "second", 6);
	assert_object("jobs/b.json", "b", 1);
	free(copy);
}
END_TEST

/* A put that fails on its own path (a file where a directory must be)
 * fails before it is journaled: nothing to replay, and the store still
 * opens. */
START_TEST(a_put_that_fails_is_never_replayed)
{
	char *copy;
	size_t len;

	ck_assert_int_eq(octo_store_put(store, "jobs/a.json", "a", 1), 0);
	ck_assert_int_eq(octo_store_put(store, "flat", "x", 1), 0);
	ck_assert_int_lt(octo_store_put(store, "flat/below", "y", 1), 0);
	ck_assert_int_eq(octo_store_put(store, "jobs/b.json", "b", 1), 0);
	ck_assert_int_eq(tmp_entries(), 0);
	copy = journal_copy(&len);
	lose_power(copy, len);
	ck_assert_int_eq(octo_store_open_local(&store, dir), 0);
	assert_object("jobs/a.json", "a", 1);
	assert_object("jobs/b.json", "b", 1);
	assert_object("flat", "x", 1);
	ck_assert_int_eq(octo_store_head(store, "flat/below", NULL), OCTO_ENOTFOUND);
	free(copy);
}
END_TEST

/* ---- concurrency ---------------------------------------------------- */

#define PUT_THREADS 8
#define PUTS_PER_THREAD 16

typedef struct {
	int id;
	int failures;
} put_job;

static void *put_distinct_keys(void *arg)
{
	put_job *job = arg;
	char key[64];
	int i;

	for (i = 0; i < PUTS_PER_THREAD; i++) {
		/* Half the keys share one parent, so directory creation races. */
		if (i % 2)
			snprintf(key, sizeof(key), "shared/dir/t%d-%d", job->id, i);
		else
			snprintf(key, sizeof(key), "own%d/sub/k%d", job->id, i);
		if (octo_store_put(store, key, key, strlen(key)) != 0)
			job->failures++;
	}
	return NULL;
}

START_TEST(many_threads_put_distinct_keys_concurrently)
{
	pthread_t threads[PUT_THREADS];
	put_job jobs[PUT_THREADS];
	char key[64];
	int t, i;

	for (t = 0; t < PUT_THREADS; t++) {
		jobs[t].id = t;
		jobs[t].failures = 0;
		ck_assert_int_eq(pthread_create(&threads[t], NULL, put_distinct_keys, &jobs[t]), 0);
	}
	for (t = 0; t < PUT_THREADS; t++)
		ck_assert_int_eq(pthread_join(threads[t], NULL), 0);
	for (t = 0; t < PUT_THREADS; t++) {
		ck_assert_int_eq(jobs[t].failures, 0);
		for (i = 0; i < PUTS_PER_THREAD; i++) {
			if (i % 2)
				snprintf(key, sizeof(key), "shared/dir/t%d-%d", t, i);
			else
				snprintf(key, sizeof(key), "own%d/sub/k%d", t, i);
			assert_object(key, key, strlen(key));
		}
	}
	ck_assert_int_eq(tmp_entries(), 0);
}
END_TEST

/* Puts of a new key are linked in from an unnamed file; when threads put
 * the same new key at once, all but the first find it made and replace
 * it. Every round starts with a key no one has put. */
typedef struct {
	pthread_barrier_t *round;
	int id;
	int failures;
} race_job;

static void *put_new_keys_together(void *arg)
{
	race_job *job = arg;
	char key[32], value[32];
	int i;

	snprintf(value, sizeof(value), "thread %d", job->id);
	for (i = 0; i < PUTS_PER_THREAD; i++) {
		snprintf(key, sizeof(key), "jobs/new-%d.json", i);
		pthread_barrier_wait(job->round);
		if (octo_store_put(store, key, value, strlen(value)) != 0)
			job->failures++;
	}
	return NULL;
}

START_TEST(threads_putting_one_new_key_at_once_leave_one_whole_value)
{
	pthread_t threads[PUT_THREADS];
	race_job jobs[PUT_THREADS];
	pthread_barrier_t round;
	char key[32], path[600], *before[PUTS_PER_THREAD], *copy;
	size_t len, copy_len;
	int t, i;

	pthread_barrier_init(&round, NULL, PUT_THREADS);
	for (t = 0; t < PUT_THREADS; t++) {
		jobs[t] = (race_job){ &round, t, 0 };
		ck_assert_int_eq(pthread_create(&threads[t], NULL, put_new_keys_together, &jobs[t]), 0);
	}
	for (t = 0; t < PUT_THREADS; t++) {
		ck_assert_int_eq(pthread_join(threads[t], NULL), 0);
		ck_assert_int_eq(jobs[t].failures, 0);
	}
	pthread_barrier_destroy(&round);
	for (i = 0; i < PUTS_PER_THREAD; i++) {
		snprintf(key, sizeof(key), "jobs/new-%d.json", i);
		ck_assert_int_eq(octo_store_get(store, key, &before[i], &len), 0);
		ck_assert_int_eq(strncmp(before[i], "thread ", 7), 0);
		ck_assert_uint_eq(len, 8);
	}
	ck_assert_int_eq(tmp_entries(), 0);
	/* The journal holds them in the order they were installed: replayed
	 * over a power loss that took every object, it puts each key back
	 * as it was. */
	copy = journal_copy(&copy_len);
	octo_store_free(store);
	store = NULL;
	for (i = 0; i < PUTS_PER_THREAD; i++) {
		snprintf(key, sizeof(key), "jobs/new-%d.json", i);
		object_file(key, path, sizeof(path));
		ck_assert_int_eq(unlink(path), 0);
	}
	journal_path(path, sizeof(path));
	tu_write_file(path, copy, copy_len);
	free(copy);
	ck_assert_int_eq(octo_store_open_local(&store, dir), 0);
	for (i = 0; i < PUTS_PER_THREAD; i++) {
		snprintf(key, sizeof(key), "jobs/new-%d.json", i);
		assert_object(key, before[i], 8);
		octo_free(before[i]);
	}
}
END_TEST

#define SWAP_LEN 65536
#define SWAP_ROUNDS 12

typedef struct {
	char fill;
	int failures;
} swap_job;

static void *overwrite_same_key(void *arg)
{
	swap_job *job = arg;
	char *data = malloc(SWAP_LEN);
	int i;

	if (!data) {
		job->failures++;
		return NULL;
	}
	memset(data, job->fill, SWAP_LEN);
	for (i = 0; i < SWAP_ROUNDS; i++)
		if (octo_store_put(store, "contended", data, SWAP_LEN) != 0)
			job->failures++;
	free(data);
	return NULL;
}

/* Counts reads that saw anything but a whole object of one fill byte. */
static void *read_same_key(void *arg)
{
	swap_job *job = arg;
	int i;

	for (i = 0; i < SWAP_ROUNDS * 4; i++) {
		char *data = NULL;
		size_t len = 0, j;

		if (octo_store_get(store, "contended", &data, &len) != 0 || len != SWAP_LEN) {
			job->failures++;
			octo_free(data);
			continue;
		}
		for (j = 1; j < len; j++)
			if (data[j] != data[0])
				break;
		if (j != len || (data[0] != 'A' && data[0] != 'B'))
			job->failures++;
		octo_free(data);
	}
	return NULL;
}

START_TEST(readers_see_the_old_or_the_new_object_never_a_mix)
{
	swap_job jobs[4] = { { 'A', 0 }, { 'B', 0 }, { 0, 0 }, { 0, 0 } };
	pthread_t threads[4];
	char *first = malloc(SWAP_LEN);
	int t;

	ck_assert_ptr_nonnull(first);
	memset(first, 'A', SWAP_LEN);
	ck_assert_int_eq(octo_store_put(store, "contended", first, SWAP_LEN), 0);
	free(first);
	for (t = 0; t < 4; t++)
		ck_assert_int_eq(pthread_create(&threads[t], NULL,
		                                t < 2 ? overwrite_same_key : read_same_key,
		                                &jobs[t]), 0);
	for (t = 0; t < 4; t++)
		ck_assert_int_eq(pthread_join(threads[t], NULL), 0);
	for (t = 0; t < 4; t++)
		ck_assert_msg(jobs[t].failures == 0, "thread %d: %d failures", t, jobs[t].failures);
	ck_assert_int_eq(tmp_entries(), 0);
}
END_TEST

/* ---- a full device -------------------------------------------------- */

/* A real full device: a 256 KiB tmpfs mounted in a private mount
 * namespace of a child process, so nothing outside the child sees it.
 * Needs CAP_SYS_ADMIN; without it the test is not registered. */
#define SMALL_FS_BYTES (256 * 1024)
enum { CHILD_OK = 0, CHILD_NO_MOUNT = 3, CHILD_WRONG = 4 };

static int mount_small_fs(const char *where)
{
	char opts[64];

	snprintf(opts, sizeof(opts), "size=%d", SMALL_FS_BYTES);
	if (unshare(CLONE_NEWNS) < 0 ||
	    mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", where, "tmpfs", 0, opts) < 0)
		return -1;
	return 0;
}

/* In the child: fills the device and checks what the store reports. No
 * ck_assert here, since a child must not unwind into the runner. */
static int enospc_child(const char *where)
{
	char path[300], *data, *got = NULL;
	size_t len = 0;
	octo_store *s = NULL;
	int rc, ok;

	snprintf(path, sizeof(path), "%s/store", where);
	if (octo_store_open_local(&s, path) != 0)
		return CHILD_WRONG;
	if (!(data = malloc(2 * SMALL_FS_BYTES))) {
		octo_store_free(s);
		return CHILD_WRONG;
	}
	memset(data, 'n', 2 * SMALL_FS_BYTES);
	ok = octo_store_put(s, "obj", "old", 3) == 0;
	rc = octo_store_put(s, "obj", data, 2 * SMALL_FS_BYTES);
	ok = ok && rc == OCTO_ENOSPC && octo_error_last()[0] != '\0';
	/* The failed put left the old object and no partial file. */
	ok = ok && octo_store_get(s, "obj", &got, &len) == 0 && len == 3 &&
	     memcmp(got, "old", 3) == 0;
	snprintf(path, sizeof(path), "%s/store/.tmp", where);
	ok = ok && count_entries(path) == 0;
	octo_free(got);
	free(data);
	octo_store_free(s);
	umount2(where, MNT_DETACH);
	return ok ? CHILD_OK : CHILD_WRONG;
}

/* Reads or writes a whole file; 0 on success. */
static int file_io(const char *path, char *data, size_t *len, int write_it)
{
	FILE *f = fopen(path, write_it ? "wb" : "rb");
	size_t n;

	if (!f)
		return -1;
	n = write_it ? fwrite(data, 1, *len, f) : fread(data, 1, *len, f);
	if (!write_it)
		*len = n;
	return fclose(f) == 0 && (!write_it || n == *len) ? 0 : -1;
}

/* Fills the device with one file; its path is the caller's to remove. */
static void fill_device(const char *path)
{
	static const char block[4096];
	FILE *f = fopen(path, "wb");

	while (f && fwrite(block, 1, sizeof(block), f) == sizeof(block) && fflush(f) == 0)
		;
	if (f)
		fclose(f);
}

/* In the child: a power loss took an object whose put the journal holds,
 * and the device is full when the store is opened again. That open fails
 * with OCTO_ENOSPC and must leave the journal as it was, so the open
 * after space is freed still brings the object back. */
static int replay_child(const char *where)
{
	enum { SIZE = 100 * 1024 };
	char dir_path[300], obj[300], journal[300], filler[300], *data, *copy, *got = NULL;
	size_t len = 2 * SIZE, got_len = 0;
	octo_store *s = NULL;
	int ok;

	snprintf(dir_path, sizeof(dir_path), "%s/store", where);
	snprintf(obj, sizeof(obj), "%s/store/obj", where);
	snprintf(journal, sizeof(journal), "%s/store/.journal", where);
	snprintf(filler, sizeof(filler), "%s/filler", where);
	if (!(data = malloc(SIZE)) || !(copy = malloc(len)))
		return CHILD_WRONG;
	memset(data, 'r', SIZE);
	ok = octo_store_open_local(&s, dir_path) == 0 && octo_store_put(s, "obj", data, SIZE) == 0 &&
	     file_io(journal, copy, &len, 0) == 0;
	octo_store_free(s);
	s = NULL;
	ok = ok && unlink(obj) == 0 && file_io(journal, copy, &len, 1) == 0;
	fill_device(filler);
	ok = ok && octo_store_open_local(&s, dir_path) == OCTO_ENOSPC;
	octo_store_free(s); /* NULL: the open failed */
	s = NULL;
	ok = ok && unlink(filler) == 0 && octo_store_open_local(&s, dir_path) == 0 &&
	     octo_store_get(s, "obj", &got, &got_len) == 0 && got_len == SIZE &&
	     memcmp(got, data, SIZE) == 0;
	octo_free(got);
	octo_store_free(s);
	free(data);
	free(copy);
	umount2(where, MNT_DETACH);
	return ok ? CHILD_OK : CHILD_WRONG;
}

/* Runs `body` (or just the mount when NULL) in a child with a small
 * tmpfs at base; returns the child's exit code. */
static int in_small_fs(int (*body)(const char *), const char *where)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (mount_small_fs(where) < 0)
			_exit(CHILD_NO_MOUNT);
		if (!body) {
			umount2(where, MNT_DETACH);
			_exit(CHILD_OK);
		}
		_exit(body(where));
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

START_TEST(put_on_a_full_device_fails_with_enospc_and_keeps_the_old_object)
{
	ck_assert_int_eq(in_small_fs(enospc_child, base), CHILD_OK);
}
END_TEST

START_TEST(an_open_that_cannot_replay_keeps_the_journal_for_the_next)
{
	ck_assert_int_eq(in_small_fs(replay_child, base), CHILD_OK);
}
END_TEST

static int can_mount_small_fs(void)
{
	const char *tmp = getenv("TMPDIR");
	char where[256];
	int rc;

	/* Not tu_mkdtemp(): no test is running yet to take an assertion. */
	snprintf(where, sizeof(where), "%s/octo-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(where))
		return 0;
	rc = in_small_fs(NULL, where);
	tu_rmtree(where);
	return rc == CHILD_OK;
}

/* ---- the storage contract ------------------------------------------- */

/* Each contract test gets a store in its own fresh temporary directory. */
static char contract_base[256];

static octo_store *open_contract_store(void)
{
	char path[300];
	octo_store *s = NULL;

	tu_mkdtemp(contract_base);
	snprintf(path, sizeof(path), "%s/store", contract_base);
	ck_assert_int_eq(octo_store_open_local(&s, path), 0);
	return s;
}

static void close_contract_store(octo_store *s)
{
	octo_store_free(s);
	tu_rmtree(contract_base);
}

static const store_contract local_contract = {
	.name = "contract_local",
	.open = open_contract_store,
	.close = close_contract_store,
	.presign = 0,                   /* the HTTP API serves local files */
	.key_max = OCTO_STORE_KEY_MAX,
};

/* ---- job records: the record log ------------------------------------ */

static int put_record(octo_store *st, const char *key, const char *value)
{
	return octo__store_put_record(st, key, value, strlen(value));
}

static void records_path(char *out, size_t size)
{
	snprintf(out, size, "%s/.records", dir);
}

static off_t records_size(void)
{
	char path[600];
	struct stat st;

	records_path(path, sizeof(path));
	ck_assert_int_eq(stat(path, &st), 0);
	return st.st_size;
}

/* Every key `st` lists under `prefix`, joined by spaces. */
static int list_join(const char *key, const octo_object_info *info, void *payload)
{
	(void)info;
	strcat(payload, key);
	strcat(payload, " ");
	return 0;
}

static void assert_listed(octo_store *st, const char *prefix, const char *want)
{
	char got[4096] = "";
	int more = -1;

	ck_assert_int_eq(octo_store_list(st, prefix, NULL, 1000, list_join, got, &more), 0);
	ck_assert_str_eq(got, want);
	ck_assert_int_eq(more, 0);
}

START_TEST(a_record_is_an_object_without_a_file_of_its_own)
{
	char path[700], buf[16] = "";
	octo_object_info info = { 0 };
	ssize_t n;
	int fd;

	ck_assert_int_eq(put_record(store, "jobs/a.json", "{\"a\":1}"), 0);
	assert_object("jobs/a.json", "{\"a\":1}", 7);
	object_file("jobs/a.json", path, sizeof(path));
	ck_assert(!is_file(path));
	ck_assert_int_eq(octo_store_head(store, "jobs/a.json", &info), 0);
	ck_assert_int_ne(info.etag[0], '\0');
	ck_assert_int_le(llabs((long long)(info.mtime - time(NULL))), 5);
	/* Served as files are: through a descriptor. */
	ck_assert_int_eq(octo__store_open_object(store, "jobs/a.json", &fd, &info), 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	ck_assert_int_eq(n, 7);
	ck_assert_str_eq(buf, "{\"a\":1}");
	ck_assert_uint_eq(info.size, 7);
	ck_assert_int_eq(put_record(store, "jobs/b.json", "b"), 0);
	ck_assert_int_eq(octo_store_put(store, "jobs/c.json", "c", 1), 0); /* a file */
	assert_listed(store, "jobs/", "jobs/a.json jobs/b.json jobs/c.json ");
	ck_assert_int_eq(octo_store_delete(store, "jobs/a.json"), 0);
	ck_assert_int_eq(octo_store_head(store, "jobs/a.json", NULL), OCTO_ENOTFOUND);
	ck_assert_int_eq(octo_store_delete(store, "jobs/a.json"), OCTO_ENOTFOUND);
	assert_listed(store, "jobs/", "jobs/b.json jobs/c.json ");
}
END_TEST

START_TEST(records_survive_a_reopen_as_last_written)
{
	octo_object_info before, after;

	ck_assert_int_eq(put_record(store, "jobs/a.json", "first"), 0);
	ck_assert_int_eq(put_record(store, "jobs/a.json", "second"), 0);
	ck_assert_int_eq(put_record(store, "jobs/b.json", "b"), 0);
	ck_assert_int_eq(put_record(store, "jobs/c.json", "c"), 0);
	ck_assert_int_eq(octo_store_delete(store, "jobs/c.json"), 0);
	ck_assert_int_eq(octo_store_put(store, "jobs/b.json", "file", 4), 0);
	ck_assert_int_eq(octo_store_head(store, "jobs/a.json", &before), 0);
	octo_store_free(store);
	ck_assert_int_eq(octo_store_open_local(&store, dir), 0);
	assert_object("jobs/a.json", "second", 6);
	assert_object("jobs/b.json", "file", 4); /* a file put later replaced the record */
	ck_assert_int_eq(octo_store_head(store, "jobs/c.json", NULL), OCTO_ENOTFOUND);
	ck_assert_int_eq(octo_store_head(store, "jobs/a.json", &after), 0);
	ck_assert_int_eq(after.mtime, before.mtime);
	assert_listed(store, "jobs/", "jobs/a.json jobs/b.json ");
}
END_TEST

/* Where `key`'s last entry starts in the log `data`: its head (64 bytes)
 * comes right before the key. */
static size_t entry_of(const char *data, size_t len, const char *key)
{
	const char *at = NULL, *p = data;

	while ((p = memmem(p, len - (size_t)(p - data), key, strlen(key))) != NULL)
		at = p++;
	ck_assert_ptr_nonnull(at);
	return (size_t)(at - data) - 64;
}

/* A crash leaves the log as it was synced plus whatever part of a batch
 * reached the disk before it: only acknowledged records come back. */
START_TEST(a_torn_or_corrupt_tail_of_the_log_is_left_behind)
{
	char path[600], *log;
	size_t len, at;

	ck_assert_int_eq(put_record(store, "jobs/a.json", "a"), 0);
	ck_assert_int_eq(put_record(store, "jobs/b.json", "b"), 0);
	ck_assert_int_eq(put_record(store, "jobs/c.json", "c"), 0);
	octo_store_free(store);
	store = NULL;
	records_path(path, sizeof(path));
	/* The entry of c, half written. */
	log = read_whole(path, &len);
	at = entry_of(log, len, "jobs/c.json");
	tu_write_file(path, log, at + 40);
	free(log);
	ck_assert_int_eq(octo_store_open_local(&store, dir), 0);
	assert_object("jobs/a.json", "a", 1);
	assert_object("jobs/b.json", "b", 1);
	ck_assert_int_eq(octo_store_head(store, "jobs/c.json", NULL), OCTO_ENOTFOUND);
	/* One byte of d's entry changed: its digest fails, and so does
	 * everything after it. */
	ck_assert_int_eq(put_record(store, "jobs/d.json", "d"), 0);
	ck_assert_int_eq(put_record(store, "jobs/e.json", "e"), 0);
	octo_store_free(store);
	store = NULL;
	log = read_whole(path, &len);
	log[entry_of(log, len, "jobs/d.json") + 64 + 11] ^= 1; /* its value */
	tu_write_file(path, log, len);
	free(log);
	ck_assert_int_eq(octo_store_open_local(&store, dir), 0);
	assert_listed(store, "jobs/", "jobs/a.json jobs/b.json ");
	/* Records written after a reopen are the new file's. */
	ck_assert_int_eq(put_record(store, "jobs/f.json", "f"), 0);
	octo_store_free(store);
	ck_assert_int_eq(octo_store_open_local(&store, dir), 0);
	assert_listed(store, "jobs/", "jobs/a.json jobs/b.json jobs/f.json ");
}
END_TEST

/* A log is put in place whole: one whose header is damaged is not read
 * as empty (which would lose every record) but kept, and the open fails. */
START_TEST(an_open_keeps_a_log_with_a_damaged_header)
{
	char path[600], *log, *after;
	size_t len, after_len;

	ck_assert_int_eq(put_record(store, "jobs/a.json", "a"), 0);
	octo_store_free(store);
	store = NULL;
	records_path(path, sizeof(path));
	log = read_whole(path, &len);
	log[0] ^= 1;
	tu_write_file(path, log, len);
	ck_assert_int_eq(octo_store_open_local(&store, dir), OCTO_EIO);
	ck_assert_ptr_nonnull(strstr(octo_error_last(), "header"));
	after = read_whole(path, &after_len);
	ck_assert_uint_eq(after_len, len);
	ck_assert_int_eq(memcmp(after, log, len), 0);
	log[0] ^= 1;
	tu_write_file(path, log, len);
	ck_assert_int_eq(octo_store_open_local(&store, dir), 0);
	assert_object("jobs/a.json", "a", 1);
	free(log);
	free(after);
}
END_TEST

/* Rewriting records grows the log; past twice the live records (and
 * 8 MiB) it is rewritten with only those. */
START_TEST(the_log_is_compacted_to_its_live_records)
{
	enum { VALUE = 64 * 1024, PUTS = 200 };
	char *value = malloc(VALUE + 1), key[32];
	int i;

	ck_assert_ptr_nonnull(value);
	memset(value, 'v', VALUE);
	value[VALUE] = '\0';
	for (i = 0; i < PUTS; i++) {
		snprintf(key, sizeof(key), "jobs/%d.json", i % 4);
		value[0] = (char)('a' + i % 26);
		ck_assert_int_eq(put_record(store, key, value), 0);
	}
	/* 200 puts of 64 KiB wrote 12.5 MiB: compacted at least once. */
	ck_assert_int_lt(records_size(), 9 * 1024 * 1024);
	for (i = PUTS - 4; i < PUTS; i++) {
		snprintf(key, sizeof(key), "jobs/%d.json", i % 4);
		value[0] = (char)('a' + i % 26);
		assert_object(key, value, VALUE);
	}
	octo_store_free(store);
	ck_assert_int_eq(octo_store_open_local(&store, dir), 0);
	/* A reopen starts a new file of the live records only. */
	ck_assert_int_lt(records_size(), 4 * (VALUE + 200) + 100);
	for (i = PUTS - 4; i < PUTS; i++) {
		snprintf(key, sizeof(key), "jobs/%d.json", i % 4);
		value[0] = (char)('a' + i % 26);
		assert_object(key, value, VALUE);
	}
	free(value);
}
END_TEST

/* Another handle on the directory (a replica, a tool) reads the owner's
 * records as they change, across compactions. */
START_TEST(a_second_store_follows_the_owners_records)
{
	octo_store *second;
	char *got = NULL;
	size_t len;

	ck_assert_int_eq(put_record(store, "jobs/a.json", "a1"), 0);
	ck_assert_int_eq(octo_store_open_local(&second, dir), 0);
	ck_assert_int_eq(octo_store_get(second, "jobs/a.json", &got, &len), 0);
	ck_assert_str_eq(got, "a1");
	octo_free(got);
	ck_assert_int_eq(put_record(store, "jobs/a.json", "a2"), 0);
	ck_assert_int_eq(put_record(store, "jobs/b.json", "b"), 0);
	ck_assert_int_eq(octo_store_get(second, "jobs/a.json", &got, &len), 0);
	ck_assert_str_eq(got, "a2");
	octo_free(got);
	assert_listed(second, "jobs/", "jobs/a.json jobs/b.json ");
	ck_assert_int_eq(octo_store_delete(store, "jobs/b.json"), 0);
	ck_assert_int_eq(octo_store_head(second, "jobs/b.json", NULL), OCTO_ENOTFOUND);
	/* The owner's records are its own to change. */
	ck_assert_int_eq(octo_store_delete(second, "jobs/a.json"), OCTO_EIO);
	/* A new owner (a restart) writes a new file. */
	octo_store_free(store);
	ck_assert_int_eq(octo_store_open_local(&store, dir), 0);
	ck_assert_int_eq(put_record(store, "jobs/c.json", "c"), 0);
	assert_listed(second, "jobs/", "jobs/a.json jobs/c.json ");
	octo_store_free(second);
}
END_TEST

/* A record and a file of one key: the record, written later, is the
 * object; deleting the key removes both, for good. */
START_TEST(a_record_hides_an_older_file_until_both_are_deleted)
{
	char path[700];

	ck_assert_int_eq(octo_store_put(store, "jobs/a.json", "file", 4), 0);
	ck_assert_int_eq(put_record(store, "jobs/a.json", "record"), 0);
	assert_object("jobs/a.json", "record", 6);
	assert_listed(store, "jobs/", "jobs/a.json ");
	ck_assert_int_eq(octo_store_delete(store, "jobs/a.json"), 0);
	object_file("jobs/a.json", path, sizeof(path));
	ck_assert(!is_file(path));
	ck_assert_int_eq(octo_store_head(store, "jobs/a.json", NULL), OCTO_ENOTFOUND);
	octo_store_free(store);
	ck_assert_int_eq(octo_store_open_local(&store, dir), 0);
	ck_assert_int_eq(octo_store_head(store, "jobs/a.json", NULL), OCTO_ENOTFOUND);
	assert_listed(store, "jobs/", "");
}
END_TEST

typedef struct {
	octo_store *store;
	int id;
} recorder;

static void *put_records(void *arg)
{
	recorder *r = arg;
	char key[64], value[64];
	int i, failed = 0;

	for (i = 0; i < 50; i++) {
		snprintf(key, sizeof(key), "jobs/%d-%d.json", r->id, i);
		snprintf(value, sizeof(value), "{\"thread\":%d,\"n\":%d}", r->id, i);
		failed |= put_record(r->store, key, value) != 0;
	}
	return failed ? r : NULL;
}

/* Record n of thread t: 3,200 in all, so the index grows from 1,024
 * chains to 4,096 while threads put, overwrite and delete. */
enum { GROW_THREADS = 16, GROW_EACH = 200 };

static void grow_value(int t, int n, int round, char *key, char *value)
{
	snprintf(key, 64, "jobs/g%d-%d.json", t, n);
	snprintf(value, 64, "{\"t\":%d,\"n\":%d,\"round\":%d}", t, n, round);
}

static void *grow_records(void *arg)
{
	recorder *r = arg;
	char key[64], value[64];
	int n, failed = 0;

	for (n = 0; n < GROW_EACH; n++) {
		grow_value(r->id, n, 0, key, value);
		failed |= put_record(r->store, key, value) != 0;
		if (n % 7 == 3) { /* overwritten while the table may be moving */
			grow_value(r->id, n, 1, key, value);
			failed |= put_record(r->store, key, value) != 0;
		}
		if (n % 10 == 5)
			failed |= octo_store_delete(r->store, key) != 0;
	}
	return failed ? r : NULL;
}

typedef struct {
	int n;
	char last[64]; /* where the next page starts */
} page_count;

static int count_page(const char *key, const octo_object_info *info, void *payload)
{
	page_count *p = payload;

	(void)info;
	p->n++;
	snprintf(p->last, sizeof(p->last), "%s", key);
	return 0;
}

static void assert_grown(void)
{
	page_count pages = { 0, "" };
	char key[64], value[64];
	int t, n, more = 1, want = 0;

	for (t = 0; t < GROW_THREADS; t++)
		for (n = 0; n < GROW_EACH; n++) {
			grow_value(t, n, n % 7 == 3, key, value);
			if (n % 10 == 5) {
				ck_assert_int_eq(octo_store_head(store, key, NULL), OCTO_ENOTFOUND);
				continue;
			}
			assert_object(key, value, strlen(value));
			want++;
		}
	while (more)
		ck_assert_int_eq(octo_store_list(store, "jobs/g", pages.last, 1000, count_page, &pages,
		                                 &more), 0);
	ck_assert_int_eq(pages.n, want);
	ck_assert_int_eq(want, GROW_THREADS * GROW_EACH * 9 / 10);
}

START_TEST(the_index_grows_while_records_change)
{
	pthread_t t[GROW_THREADS];
	recorder r[GROW_THREADS];
	void *failed;
	int i;

	for (i = 0; i < GROW_THREADS; i++) {
		r[i].store = store;
		r[i].id = i;
		ck_assert_int_eq(pthread_create(&t[i], NULL, grow_records, &r[i]), 0);
	}
	for (i = 0; i < GROW_THREADS; i++) {
		ck_assert_int_eq(pthread_join(t[i], &failed), 0);
		ck_assert_ptr_null(failed);
	}
	assert_grown();
	octo_store_free(store);
	ck_assert_int_eq(octo_store_open_local(&store, dir), 0);
	assert_grown();
}
END_TEST

START_TEST(threads_putting_records_at_once_lose_none)
{
	enum { THREADS = 8 };
	pthread_t t[THREADS];
	recorder r[THREADS];
	char key[64], value[64];
	void *failed;
	int i, n;

	for (i = 0; i < THREADS; i++) {
		r[i].store = store;
		r[i].id = i;
		ck_assert_int_eq(pthread_create(&t[i], NULL, put_records, &r[i]), 0);
	}
	for (i = 0; i < THREADS; i++) {
		ck_assert_int_eq(pthread_join(t[i], &failed), 0);
		ck_assert_ptr_null(failed);
	}
	octo_store_free(store);
	ck_assert_int_eq(octo_store_open_local(&store, dir), 0);
	for (i = 0; i < THREADS; i++)
		for (n = 0; n < 50; n++) {
			snprintf(key, sizeof(key), "jobs/%d-%d.json", i, n);
			snprintf(value, sizeof(value), "{\"thread\":%d,\"n\":%d}", i, n);
			assert_object(key, value, strlen(value));
		}
}
END_TEST

/* Posted records: each answered once, durable by then, and a store
 * closed with some still posted commits them before it goes. */
typedef struct {
	pthread_mutex_t lock;
	pthread_cond_t answered;
	octo_store *follower; /* reads the log as another handle would */
	int calls, failed, seen;
	char key[64];         /* the last one posted, read back when answered */
} post_tally;

static void on_posted(int rc, void *payload)
{
	post_tally *t = payload;

	pthread_mutex_lock(&t->lock);
	t->calls++;
	t->failed += rc != 0;
	pthread_cond_signal(&t->answered);
	pthread_mutex_unlock(&t->lock);
}

START_TEST(posted_records_are_answered_once_and_kept_at_close)
{
	enum { POSTS = 500 };
	post_tally t = { .lock = PTHREAD_MUTEX_INITIALIZER,
		         .answered = PTHREAD_COND_INITIALIZER };
	char key[64], value[64];
	octo_metrics *reg;
	int i;

	ck_assert_int_eq(octo_metrics_new(&reg), 0);
	ck_assert_int_eq(octo_store_set_metrics(store, reg), 0);
	for (i = 0; i < POSTS; i++) {
		snprintf(key, sizeof(key), "jobs/p%d.json", i);
		snprintf(value, sizeof(value), "{\"posted\":%d}", i);
		/* The buffers are reused at once: the store keeps copies. */
		octo__store_post_record(store, key, value, strlen(value), on_posted, &t);
	}
	octo_store_free(store); /* commits what is still posted */
	store = NULL;
	ck_assert_int_eq(t.calls, POSTS);
	ck_assert_int_eq(t.failed, 0);
	/* Each counted as a put when it ended, those drained at close too. */
	ck_assert_double_eq(counted(reg, "storage_requests_total{operation=\"put\",result=\"ok\"}"),
	                    POSTS);
	octo_metrics_free(reg);
	ck_assert_int_eq(octo_store_open_local(&store, dir), 0);
	for (i = 0; i < POSTS; i++) {
		snprintf(key, sizeof(key), "jobs/p%d.json", i);
		snprintf(value, sizeof(value), "{\"posted\":%d}", i);
		assert_object(key, value, strlen(value));
	}
	/* What cannot be written is answered too, on the caller's thread. */
	octo__store_post_record(store, "../outside", "x", 1, on_posted, &t);
	ck_assert_int_eq(t.calls, POSTS + 1);
	ck_assert_int_eq(t.failed, 1);
}
END_TEST

/* Blocking puts and posts on one log: every change is committed, and
 * every post is told on the log's own thread, never on a thread that was
 * waiting for a put of its own. */
enum { MIXED_THREADS = 6, MIXED_EACH = 150 };

typedef struct {
	pthread_mutex_t lock;
	pthread_t putters[MIXED_THREADS];
	int calls, failed, on_putter;
	pthread_t teller;
	int tellers; /* how many distinct threads told: must be 1 */
} mixed_tally;

typedef struct {
	mixed_tally *t;
	int id;
} mixed_arg;

static void on_mixed(int rc, void *payload)
{
	mixed_tally *t = payload;
	int i;

	pthread_mutex_lock(&t->lock);
	t->calls++;
	t->failed += rc != 0;
	for (i = 0; i < MIXED_THREADS; i++)
		t->on_putter += pthread_equal(pthread_self(), t->putters[i]) != 0;
	if (t->tellers == 0 || !pthread_equal(t->teller, pthread_self()))
		t->tellers++;
	t->teller = pthread_self();
	pthread_mutex_unlock(&t->lock);
}

static void *mix_puts_and_posts(void *arg)
{
	mixed_arg *a = arg;
	char key[64], value[64];
	int i, failed = 0;

	for (i = 0; i < MIXED_EACH; i++) {
		snprintf(key, sizeof(key), "jobs/m%d-%d.json", a->id, i);
		snprintf(value, sizeof(value), "{\"m\":%d}", i);
		if (a->id % 2)
			failed |= put_record(store, key, value) != 0;
		else
			octo__store_post_record(store, key, value, strlen(value), on_mixed, a->t);
	}
	return failed ? a : NULL;
}

START_TEST(blocking_puts_and_posts_share_the_log)
{
	mixed_tally t = { .lock = PTHREAD_MUTEX_INITIALIZER };
	mixed_arg args[MIXED_THREADS];
	char key[64], value[64];
	void *failed;
	int i, n;

	pthread_mutex_lock(&t.lock); /* the ids are complete before any is told */
	for (i = 0; i < MIXED_THREADS; i++) {
		args[i].t = &t;
		args[i].id = i;
		ck_assert_int_eq(pthread_create(&t.putters[i], NULL, mix_puts_and_posts, &args[i]), 0);
	}
	pthread_mutex_unlock(&t.lock);
	for (i = 0; i < MIXED_THREADS; i++) {
		ck_assert_int_eq(pthread_join(t.putters[i], &failed), 0);
		ck_assert_ptr_null(failed);
	}
	octo_store_free(store);
	store = NULL;
	ck_assert_int_eq(t.calls, MIXED_THREADS / 2 * MIXED_EACH);
	ck_assert_int_eq(t.failed, 0);
	ck_assert_int_eq(t.on_putter, 0);
	ck_assert_int_eq(t.tellers, 1);
	ck_assert_int_eq(octo_store_open_local(&store, dir), 0);
	for (i = 0; i < MIXED_THREADS; i++)
		for (n = 0; n < MIXED_EACH; n++) {
			snprintf(key, sizeof(key), "jobs/m%d-%d.json", i, n);
			snprintf(value, sizeof(value), "{\"m\":%d}", n);
			assert_object(key, value, strlen(value));
		}
}
END_TEST

/* An answered record is in the log: another handle reads it at once. */
static void on_posted_read(int rc, void *payload)
{
	post_tally *t = payload;
	char *text = NULL;
	size_t len = 0;
	int seen = rc == 0 && octo_store_get(t->follower, t->key, &text, &len) == 0 &&
	           len == 1 && text[0] == 'v';

	octo_free(text);
	pthread_mutex_lock(&t->lock);
	t->calls++;
	t->seen += seen;
	pthread_cond_signal(&t->answered);
	pthread_mutex_unlock(&t->lock);
}

START_TEST(a_posted_record_is_readable_when_answered)
{
	post_tally t = { .lock = PTHREAD_MUTEX_INITIALIZER,
		         .answered = PTHREAD_COND_INITIALIZER };
	int i;

	ck_assert_int_eq(octo_store_open_local(&t.follower, dir), 0);
	for (i = 0; i < 20; i++) {
		snprintf(t.key, sizeof(t.key), "jobs/r%d.json", i);
		octo__store_post_record(store, t.key, "v", 1, on_posted_read, &t);
		pthread_mutex_lock(&t.lock); /* one at a time: the key is the tally's */
		while (t.calls == i)
			pthread_cond_wait(&t.answered, &t.lock);
		pthread_mutex_unlock(&t.lock);
	}
	ck_assert_int_eq(t.seen, 20);
	octo_store_free(t.follower);
}
END_TEST

/* ---- suite ---------------------------------------------------------- */

static TCase *store_tcase(const char *name, void (*fixture)(void))
{
	TCase *tc = tcase_create(name);

	/* fsync-heavy tests on a slow disk outlast Check's default 4 s. */
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, fixture, teardown);
	return tc;
}

#define N_ELEMS(a) (int)(sizeof(a) / sizeof((a)[0]))

int main(void)
{
	Suite *s = suite_create("store");
	TCase *tc;

	tc = store_tcase("open_local", setup);
	tcase_add_test(tc, open_local_creates_the_directory_its_parents_and_tmp);
	tcase_add_test(tc, open_local_reopens_an_existing_store_with_its_objects);
	tcase_add_test(tc, open_local_removes_temp_files_left_by_a_crash);
	tcase_add_test(tc, open_local_refuses_a_missing_or_empty_directory_name);
	tcase_add_test(tc, open_local_fails_when_the_path_is_a_regular_file);
	tcase_add_test(tc, open_local_refuses_a_path_too_long_for_any_key);
	suite_add_tcase(s, tc);

	tc = store_tcase("backend_and_free", setup_open);
	tcase_add_test(tc, backend_of_a_local_store_is_named_local);
	tcase_add_test(tc, free_accepts_null);
	suite_add_tcase(s, tc);

	tc = store_tcase("ping", setup_open);
	tcase_add_test(tc, ping_succeeds_on_a_usable_store);
	tcase_add_test(tc, ping_fails_after_the_directory_is_removed);
	tcase_add_test(tc, ping_fails_after_the_directory_is_replaced_by_a_file);
	tcase_add_test(tc, ping_fails_after_tmp_is_replaced_by_a_file);
	tcase_add_test(tc, puts_fail_while_tmp_is_gone);
	suite_add_tcase(s, tc);

	tc = store_tcase("round_trip", setup_open);
	tcase_add_test(tc, put_head_get_delete_round_trip);
	tcase_add_test(tc, head_reports_size_and_a_current_mtime);
	tcase_add_test(tc, head_accepts_a_null_info);
	tcase_add_test(tc, put_over_an_object_replaces_its_content);
	tcase_add_test(tc, put_of_zero_bytes_stores_an_empty_object);
	tcase_add_test(tc, put_of_null_data_with_a_length_is_refused);
	tcase_add_test(tc, large_object_round_trips);
	tcase_add_test(tc, keys_share_parent_directories);
	tcase_add_test(tc, no_temp_files_remain_after_puts);
	tcase_add_test(tc, failed_put_leaves_no_temp_file_and_keeps_the_blocker);
	suite_add_tcase(s, tc);

	tc = store_tcase("metrics", setup_open);
	tcase_add_test(tc, calls_are_counted_by_operation_and_result);
	tcase_add_test(tc, two_stores_share_one_registry);
	suite_add_tcase(s, tc);

	tc = store_tcase("not_found", setup_open);
	tcase_add_test(tc, head_of_a_missing_key_is_not_found);
	tcase_add_test(tc, get_of_a_missing_key_is_not_found);
	tcase_add_test(tc, delete_of_a_missing_key_is_not_found);
	tcase_add_test(tc, a_key_that_is_only_a_prefix_directory_is_not_found);
	tcase_add_test(tc, a_key_below_an_object_is_not_found);
	suite_add_tcase(s, tc);

	tc = store_tcase("keys", setup_open);
	tcase_add_loop_test(tc, key_valid_accepts_well_formed_keys, 0, N_ELEMS(valid_keys));
	tcase_add_loop_test(tc, key_valid_refuses_malformed_keys, 0, N_ELEMS(invalid_keys));
	tcase_add_loop_test(tc, operations_with_an_invalid_key_fail_and_write_nothing,
	                    0, N_ELEMS(invalid_keys));
	tcase_add_test(tc, a_null_key_is_invalid);
	tcase_add_test(tc, a_key_of_the_maximum_length_is_valid_and_stored);
	tcase_add_test(tc, a_key_one_byte_over_the_maximum_is_refused);
	suite_add_tcase(s, tc);

	tc = store_tcase("records", setup_open);
	tcase_add_test(tc, a_record_is_an_object_without_a_file_of_its_own);
	tcase_add_test(tc, records_survive_a_reopen_as_last_written);
	tcase_add_test(tc, a_torn_or_corrupt_tail_of_the_log_is_left_behind);
	tcase_add_test(tc, an_open_keeps_a_log_with_a_damaged_header);
	tcase_add_test(tc, the_log_is_compacted_to_its_live_records);
	tcase_add_test(tc, a_second_store_follows_the_owners_records);
	tcase_add_test(tc, a_record_hides_an_older_file_until_both_are_deleted);
	tcase_add_test(tc, threads_putting_records_at_once_lose_none);
	tcase_add_test(tc, the_index_grows_while_records_change);
	tcase_add_test(tc, posted_records_are_answered_once_and_kept_at_close);
	tcase_add_test(tc, a_posted_record_is_readable_when_answered);
	tcase_add_test(tc, blocking_puts_and_posts_share_the_log);
	suite_add_tcase(s, tc);

	tc = store_tcase("journal", setup_open);
	tcase_add_test(tc, a_reopen_replays_the_journal_over_what_a_power_loss_took);
	tcase_add_test(tc, replay_stops_at_a_torn_or_corrupt_entry);
	tcase_add_test(tc, a_direct_put_is_never_undone_by_an_older_journaled_put);
	tcase_add_test(tc, a_second_store_on_the_same_directory_writes_durably_without_the_journal);
	tcase_add_test(tc, writes_after_a_clean_reopen_survive_a_power_loss);
	tcase_add_test(tc, a_put_that_fails_is_never_replayed);
	suite_add_tcase(s, tc);

	tc = store_tcase("concurrency", setup_open);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, many_threads_put_distinct_keys_concurrently);
	tcase_add_test(tc, threads_putting_one_new_key_at_once_leave_one_whole_value);
	tcase_add_test(tc, readers_see_the_old_or_the_new_object_never_a_mix);
	suite_add_tcase(s, tc);

	suite_add_tcase(s, store_contract_tcase(&local_contract));

	if (can_mount_small_fs()) {
		tc = store_tcase("full_device", setup);
		tcase_add_test(tc, put_on_a_full_device_fails_with_enospc_and_keeps_the_old_object);
		tcase_add_test(tc, an_open_that_cannot_replay_keeps_the_journal_for_the_next);
		suite_add_tcase(s, tc);
	} else {
		fprintf(stderr, "store: ENOSPC test not run: cannot mount a tmpfs "
		                "in a private mount namespace (needs CAP_SYS_ADMIN)\n");
	}
	return tu_run(s);
}
