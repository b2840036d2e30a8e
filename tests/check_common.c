/* Error codes, messages and version of libocto. */
#include "config.h"

#include <string.h>

#include <octopus/octopus.h>

#include "../lib/internal.h"
#include "testutil.h"

START_TEST(strerror_names_every_code)
{
	int code;

	ck_assert_str_eq(octo_strerror(OCTO_OK), "success");
	for (code = OCTO_ERROR; code >= OCTO_ECONFLICT; code--)
		ck_assert_str_ne(octo_strerror(code), "unknown error code");
	ck_assert_str_eq(octo_strerror(OCTO_ECONFLICT - 1), "unknown error code");
	ck_assert_str_eq(octo_strerror(42), "unknown error code");
}
END_TEST

START_TEST(error_codes_keep_their_numbers)
{
	/* Frozen: programs compiled against older headers rely on them. */
	ck_assert_int_eq(OCTO_ENOTFOUND, -4);
	ck_assert_int_eq(OCTO_ENOSPC, -8);
	ck_assert_int_eq(OCTO_EUNSUPPORTED, -10);
	ck_assert_int_eq(OCTO_EUNAVAILABLE, -11);
	ck_assert_int_eq(OCTO_EABORTED, -13);
}
END_TEST

START_TEST(last_error_is_set_and_cleared)
{
	octo_store *store = NULL;

	ck_assert_int_eq(octo__error(OCTO_EIO, "disk %d gone", 3), OCTO_EIO);
	ck_assert_str_eq(octo_error_last(), "disk 3 gone");
	ck_assert_int_eq(octo_store_open_local(&store, ""), OCTO_EINVAL);
	ck_assert_str_eq(octo_error_last(), "no store directory given");
	octo__error_clear();
	ck_assert_str_eq(octo_error_last(), "");
}
END_TEST

START_TEST(version_matches_headers)
{
	ck_assert_str_eq(octo_version(), OCTO_VERSION);
	ck_assert_int_eq(OCTO_VERSION_NUM,
	                 (OCTO_VERSION_MAJOR << 16) | (OCTO_VERSION_MINOR << 8) | OCTO_VERSION_PATCH);
}
END_TEST

START_TEST(uuid4_is_well_formed_and_fresh)
{
	char a[OCTO__UUID_LEN + 1], b[OCTO__UUID_LEN + 1];
	size_t i;

	ck_assert_int_eq(octo__uuid4(a), 0);
	ck_assert_int_eq(octo__uuid4(b), 0);
	ck_assert_uint_eq(strlen(a), 36);
	ck_assert_str_ne(a, b);
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			ck_assert_int_eq(a[i], '-');
		else
			ck_assert_ptr_nonnull(strchr("0123456789abcdef", a[i]));
	}
	ck_assert_int_eq(a[14], '4');
	ck_assert_ptr_nonnull(strchr("89ab", a[19]));
}
END_TEST

START_TEST(timestamp_is_rfc3339_utc_millis)
{
	char ts[OCTO__TIMESTAMP_LEN + 1];

	octo__timestamp(ts);
	ck_assert_uint_eq(strlen(ts), 24);
	ck_assert_int_eq(ts[4], '-');
	ck_assert_int_eq(ts[10], 'T');
	ck_assert_int_eq(ts[19], '.');
	ck_assert_int_eq(ts[23], 'Z');
}
END_TEST

int main(void)
{
	Suite *s = suite_create("common");
	TCase *tc = tcase_create("common");

	tcase_add_test(tc, strerror_names_every_code);
	tcase_add_test(tc, error_codes_keep_their_numbers);
	tcase_add_test(tc, last_error_is_set_and_cleared);
	tcase_add_test(tc, version_matches_headers);
	tcase_add_test(tc, uuid4_is_well_formed_and_fresh);
	tcase_add_test(tc, timestamp_is_rfc3339_utc_millis);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
