/* Trace context: which traceparent headers are continued, which start a
 * new trace, and what octopusd sends back. */
#include "config.h"

#include <check.h>
#include <string.h>

#include <octopus/trace.h>

#include "testutil.h"

#define LATER "-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
#define VALID "00" LATER

static int is_lower_hex(const char *s, size_t n)
{
	size_t i;

	if (strlen(s) != n)
		return 0;
	for (i = 0; i < n; i++)
		if (!strchr("0123456789abcdef", s[i]))
			return 0;
	return 1;
}

START_TEST(valid_header_is_continued)
{
	octo_trace t;

	ck_assert_int_eq(octo_trace_start(&t, VALID), 1);
	ck_assert_str_eq(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
	ck_assert_str_eq(t.parent_id, "00f067aa0ba902b7");
	ck_assert_int_eq(t.flags, 1);
	ck_assert(is_lower_hex(t.span_id, 16));
	ck_assert_str_ne(t.span_id, t.parent_id);
}
END_TEST

START_TEST(unsampled_flag_is_kept)
{
	octo_trace t;

	ck_assert_int_eq(octo_trace_start(&t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"), 1);
	ck_assert_int_eq(t.flags, 0);
}
END_TEST

START_TEST(later_version_with_more_fields_is_continued)
{
	octo_trace t;

	ck_assert_int_eq(octo_trace_start(&t, "cc" LATER), 1);
	ck_assert_int_eq(octo_trace_start(&t, "cc" LATER "-what-comes-next"), 1);
	ck_assert_str_eq(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
}
END_TEST

/* Each of these starts a new trace: the header may not be trusted. */
static const char *const invalid[] = {
	"",
	"garbage",
	"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",      /* no flags */
	"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", /* 00 is exact */
	"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   /* uppercase */
	"00-00000000000000000000000000000000-00f067aa0ba902b7-01",   /* zero trace */
	"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   /* zero parent */
	"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   /* version ff */
	"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",  /* no '-' after */
	"00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",   /* separators */
	"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",   /* not hex */
	"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
	"0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
};

START_TEST(invalid_header_starts_a_new_trace)
{
	octo_trace t;

	ck_assert_int_eq(octo_trace_start(&t, invalid[_i]), 0);
	ck_assert(is_lower_hex(t.trace_id, 32));
	ck_assert_str_ne(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
	ck_assert_str_eq(t.parent_id, "");
	ck_assert(is_lower_hex(t.span_id, 16));
	ck_assert_int_eq(t.flags, 1);
}
END_TEST

START_TEST(absent_header_starts_a_new_trace)
{
	octo_trace a, b;

	ck_assert_int_eq(octo_trace_start(&a, NULL), 0);
	ck_assert_int_eq(octo_trace_start(&b, NULL), 0);
	ck_assert(is_lower_hex(a.trace_id, 32));
	ck_assert_str_ne(a.trace_id, b.trace_id);
	ck_assert_str_ne(a.span_id, b.span_id);
}
END_TEST

START_TEST(format_names_our_span)
{
	octo_trace t, again;
	char header[OCTO_TRACEPARENT_LEN + 1];

	ck_assert_int_eq(octo_trace_start(&t, VALID), 1);
	octo_trace_format(&t, header);
	ck_assert_uint_eq(strlen(header), OCTO_TRACEPARENT_LEN);
	ck_assert(strncmp(header, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36) == 0);
	ck_assert_str_eq(header + 36 + 16, "-01");
	ck_assert(strncmp(header + 36, t.span_id, 16) == 0);
	/* What we send is itself a header the next hop continues. */
	ck_assert_int_eq(octo_trace_start(&again, header), 1);
	ck_assert_str_eq(again.parent_id, t.span_id);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("trace");
	TCase *start = tcase_create("start");
	TCase *format = tcase_create("format");

	tcase_add_test(start, valid_header_is_continued);
	tcase_add_test(start, unsampled_flag_is_kept);
	tcase_add_test(start, later_version_with_more_fields_is_continued);
	tcase_add_loop_test(start, invalid_header_starts_a_new_trace, 0,
	                    (int)(sizeof(invalid) / sizeof(invalid[0])));
	tcase_add_test(start, absent_header_starts_a_new_trace);
	suite_add_tcase(s, start);

	tcase_add_test(format, format_names_our_span);
	suite_add_tcase(s, format);
	return tu_run(s);
}
