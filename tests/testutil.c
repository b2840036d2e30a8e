#include "config.h"
#include "testutil.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void tu_mkdtemp(char out[256])
{
	const char *tmp = getenv("TMPDIR");

	snprintf(out, 256, "%s/octo-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(out));
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void tu_rmtree(const char *path)
{
	nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void tu_write_file(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

const octo_json_value *member(const octo_json *doc, const char *key)
{
	const octo_json_value *v = octo_json_get(octo_json_root(doc), key);

	ck_assert_msg(v != NULL, "no \"%s\" in the JSON", key);
	return v;
}

int64_t int_member(const octo_json *doc, const char *key)
{
	int64_t n = 0;

	ck_assert_int_eq(octo_json_int(member(doc, key), &n), 0);
	return n;
}

const char *str_member(const octo_json *doc, const char *key)
{
	const char *s = NULL;

	ck_assert_int_eq(octo_json_string(member(doc, key), &s), 0);
	return s;
}

int tu_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
