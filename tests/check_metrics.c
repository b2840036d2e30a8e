/* The metrics registry: registration and its conflicts, children, updates
 * and their no-op cases, histogram arithmetic, the exact exposition text
 * (sorting, escaping, numbers), callback and process metrics, and exact
 * counts under concurrent updates. */
#include "config.h"

#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <octopus/metrics.h>
#include <octopus/version.h>

#include "testutil.h"

#define N_ELEMS(a) (int)(sizeof(a) / sizeof((a)[0]))

static octo_metrics *reg;

static void setup(void)
{
	reg = NULL;
	ck_assert_int_eq(octo_metrics_new(&reg), 0);
	ck_assert_ptr_nonnull(reg);
}

static void teardown(void)
{
	octo_metrics_free(reg);
	reg = NULL;
}

static int under_valgrind(void)
{
	const char *v = getenv("OCTO_UNDER_VALGRIND");

	return v && strcmp(v, "1") == 0;
}

/* The registry's text; the caller frees it with octo_free(). */
static char *render(void)
{
	char *text = NULL;
	size_t len = 0;

	ck_assert_int_eq(octo_metrics_render(reg, &text, &len), 0);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(len, strlen(text));
	return text;
}

static void assert_renders(const char *expected)
{
	char *text = render();

	ck_assert_str_eq(text, expected);
	octo_free(text);
}

static octo_metric *counter(const char *name, const char *const *labels)
{
	octo_metric *m = NULL;

	ck_assert_int_eq(octo_metrics_counter(&m, reg, name, "Help.", labels), 0);
	ck_assert_ptr_nonnull(m);
	return m;
}

static octo_metric *gauge(const char *name, const char *const *labels)
{
	octo_metric *m = NULL;

	ck_assert_int_eq(octo_metrics_gauge(&m, reg, name, "Help.", labels), 0);
	ck_assert_ptr_nonnull(m);
	return m;
}

static octo_metric *child(octo_metric *family, const char *const *values)
{
	octo_metric *c = NULL;

	ck_assert_int_eq(octo_metrics_with(&c, family, values), 0);
	ck_assert_ptr_nonnull(c);
	return c;
}

/* The value of the sample line that begins with `series` followed by a
 * space, asserting there is exactly one such line. */
static double sample(const char *text, const char *series)
{
	size_t n = strlen(series);
	const char *p, *next, *found = NULL;

	for (p = text; *p; p = next) {
		next = strchr(p, '\n');
		next = next ? next + 1 : p + strlen(p);
		if (strncmp(p, series, n) == 0 && p[n] == ' ') {
			ck_assert_msg(found == NULL, "%s appears twice", series);
			found = p + n + 1;
		}
	}
	ck_assert_msg(found != NULL, "no sample %s in:\n%s", series, text);
	return strtod(found, NULL);
}

static int occurrences(const char *text, const char *needle)
{
	int n = 0;

	while ((text = strstr(text, needle))) {
		n++;
		text += strlen(needle);
	}
	return n;
}

/* A callback metric's reading: the double its payload points to. */
static double read_double(void *payload)
{
	return *(const double *)payload;
}

/* ---- registration -------------------------------------------------------- */

START_TEST(new_refuses_null_and_free_accepts_it)
{
	ck_assert_int_eq(octo_metrics_new(NULL), OCTO_EINVAL);
	octo_metrics_free(NULL);
	assert_renders("");
}
END_TEST

START_TEST(identical_registration_returns_the_same_family)
{
	static const char *const labels[] = { "method", "code", NULL };
	static const char *const none[] = { NULL };
	static const double bounds[] = { 0.5, 1, 2 };
	octo_metric *a, *b = NULL;

	a = counter("requests_total", labels);
	ck_assert_ptr_eq(counter("requests_total", labels), a);
	a = gauge("temperature", NULL);
	ck_assert_ptr_eq(gauge("temperature", none), a);
	ck_assert_int_eq(octo_metrics_histogram(&a, reg, "latency", "Help.", labels, bounds, 3), 0);
	ck_assert_int_eq(octo_metrics_histogram(&b, reg, "latency", "Help.", labels, bounds, 3), 0);
	ck_assert_ptr_eq(a, b);
	ck_assert_int_eq(octo_metrics_histogram(&a, reg, "size", "Help.", NULL, NULL, 0), 0);
	ck_assert_int_eq(octo_metrics_histogram(&b, reg, "size", "Help.", NULL, NULL, 0), 0);
	ck_assert_ptr_eq(a, b);
	ck_assert_str_eq(octo_error_last(), "");
}
END_TEST

START_TEST(reregistration_keeps_the_children_and_their_values)
{
	static const char *const labels[] = { "k", NULL };
	static const char *const v[] = { "x", NULL };
	octo_metric *c = child(counter("kept_total", labels), v);

	octo_metrics_add(c, 4);
	ck_assert_ptr_eq(child(counter("kept_total", labels), v), c);
	ck_assert(octo_metrics_value(c) == 4);
}
END_TEST

START_TEST(a_different_definition_conflicts)
{
	static const char *const labels[] = { "a", NULL };
	static const char *const other[] = { "b", NULL };
	static const char *const more[] = { "a", "b", NULL };
	static const double b12[] = { 1, 2 }, b13[] = { 1, 3 }, b123[] = { 1, 2, 3 };
	octo_metric *m = NULL;

	counter("x", labels);
	ck_assert_int_eq(octo_metrics_gauge(&m, reg, "x", "Help.", labels), OCTO_ECONFLICT);
	ck_assert_ptr_null(m);
	ck_assert_ptr_nonnull(strstr(octo_error_last(), "x"));
	ck_assert_int_eq(octo_metrics_histogram(&m, reg, "x", "Help.", labels, NULL, 0),
	                 OCTO_ECONFLICT);
	ck_assert_int_eq(octo_metrics_counter(&m, reg, "x", "Other help.", labels), OCTO_ECONFLICT);
	ck_assert_int_eq(octo_metrics_counter(&m, reg, "x", "Help.", other), OCTO_ECONFLICT);
	ck_assert_int_eq(octo_metrics_counter(&m, reg, "x", "Help.", more), OCTO_ECONFLICT);
	ck_assert_int_eq(octo_metrics_counter(&m, reg, "x", "Help.", NULL), OCTO_ECONFLICT);
	ck_assert_int_eq(octo_metrics_histogram(&m, reg, "h", "Help.", NULL, b12, 2), 0);
	ck_assert_int_eq(octo_metrics_histogram(&m, reg, "h", "Help.", NULL, b13, 2), OCTO_ECONFLICT);
	ck_assert_int_eq(octo_metrics_histogram(&m, reg, "h", "Help.", NULL, b123, 3), OCTO_ECONFLICT);
	ck_assert_int_eq(octo_metrics_histogram(&m, reg, "h", "Help.", NULL, NULL, 0), OCTO_ECONFLICT);
}
END_TEST

START_TEST(bad_metric_names_are_refused)
{
	static const char *const bad[] = { "", "1abc", "a-b", "a b", "caf\xc3\xa9", "a.b", "a{" };
	static const char *const good[] = { "a", "_x", ":x", "a:b_c9", "Z" };
	double value = 1;
	octo_metric *m;
	int i;

	for (i = 0; i < N_ELEMS(bad); i++) {
		m = NULL;
		ck_assert_int_eq(octo_metrics_counter(&m, reg, bad[i], "Help.", NULL), OCTO_EINVAL);
		ck_assert_ptr_null(m);
		ck_assert_int_eq(octo_metrics_gauge_fn(reg, bad[i], "Help.", read_double, &value),
		                 OCTO_EINVAL);
	}
	ck_assert_int_eq(octo_metrics_gauge(&m, reg, NULL, "Help.", NULL), OCTO_EINVAL);
	for (i = 0; i < N_ELEMS(good); i++)
		counter(good[i], NULL);
}
END_TEST

START_TEST(bad_label_names_are_refused)
{
	static const char *const digit[] = { "1a", NULL };
	static const char *const colon[] = { "a:b", NULL };
	static const char *const empty[] = { "", NULL };
	static const char *const reserved[] = { "__x", NULL };
	static const char *const repeated[] = { "a", "b", "a", NULL };
	static const char *const le[] = { "le", NULL };
	const char *const *bad[] = { digit, colon, empty, reserved, repeated };
	octo_metric *m = NULL;
	int i;

	for (i = 0; i < N_ELEMS(bad); i++) {
		ck_assert_int_eq(octo_metrics_counter(&m, reg, "c", "Help.", bad[i]), OCTO_EINVAL);
		ck_assert_int_eq(octo_metrics_histogram(&m, reg, "h", "Help.", bad[i], NULL, 0),
		                 OCTO_EINVAL);
	}
	ck_assert_int_eq(octo_metrics_histogram(&m, reg, "h", "Help.", le, NULL, 0), OCTO_EINVAL);
	ck_assert_ptr_nonnull(strstr(octo_error_last(), "le"));
	ck_assert_ptr_null(m);
	/* Only histograms reserve "le"; a single underscore is fine. */
	counter("c", le);
	gauge("g", (const char *const[]){ "_x", "x_", NULL });
}
END_TEST

START_TEST(bad_buckets_are_refused)
{
	static const double unsorted[] = { 1, 0.5 };
	static const double repeated[] = { 1, 1 };
	static const double with_nan[] = { 1, NAN };
	static const double with_inf[] = { 1, INFINITY };
	static const double with_minus_inf[] = { -INFINITY, 1 };
	const double *bad[] = { unsorted, repeated, with_nan, with_inf, with_minus_inf };
	octo_metric *m = NULL;
	int i;

	for (i = 0; i < N_ELEMS(bad); i++)
		ck_assert_int_eq(octo_metrics_histogram(&m, reg, "h", "Help.", NULL, bad[i], 2),
		                 OCTO_EINVAL);
	ck_assert_int_eq(octo_metrics_histogram(&m, reg, "h", "Help.", NULL, NULL, 2), OCTO_EINVAL);
	ck_assert_ptr_null(m);
	assert_renders("");
}
END_TEST

START_TEST(missing_arguments_are_refused)
{
	octo_metric *m = NULL;

	ck_assert_int_eq(octo_metrics_counter(NULL, reg, "c", "Help.", NULL), OCTO_EINVAL);
	ck_assert_int_eq(octo_metrics_counter(&m, NULL, "c", "Help.", NULL), OCTO_EINVAL);
	ck_assert_int_eq(octo_metrics_counter(&m, reg, "c", NULL, NULL), OCTO_EINVAL);
	ck_assert_int_eq(octo_metrics_gauge(NULL, reg, "g", "Help.", NULL), OCTO_EINVAL);
	ck_assert_int_eq(octo_metrics_histogram(NULL, reg, "h", "Help.", NULL, NULL, 0), OCTO_EINVAL);
	ck_assert_ptr_null(m);
	ck_assert_int_eq(octo_metrics_render(NULL, &(char *){ NULL }, NULL), OCTO_EINVAL);
	ck_assert_int_eq(octo_metrics_render(reg, NULL, NULL), OCTO_EINVAL);
	ck_assert_int_eq(octo_metrics_add_process(NULL), OCTO_EINVAL);
	assert_renders("");
}
END_TEST

/* ---- children ------------------------------------------------------------ */

START_TEST(with_returns_one_child_per_label_set)
{
	static const char *const labels[] = { "a", "b", NULL };
	octo_metric *fam = counter("c_total", labels);
	octo_metric *x = child(fam, (const char *const[]){ "1", "2" });
	octo_metric *y = child(fam, (const char *const[]){ "12", "" });
	char buf[8];

	ck_assert_ptr_ne(x, y);
	ck_assert_ptr_ne(x, fam);
	/* The values are copied: the caller's buffer may change. */
	strcpy(buf, "1");
	ck_assert_ptr_eq(child(fam, (const char *const[]){ buf, "2" }), x);
	strcpy(buf, "zz");
	ck_assert_ptr_eq(child(fam, (const char *const[]){ "1", "2" }), x);
	ck_assert_ptr_eq(child(fam, (const char *const[]){ "12", "" }), y);
}
END_TEST

START_TEST(with_refuses_what_has_no_children)
{
	static const char *const labels[] = { "a", "b", NULL };
	static const char *const values[] = { "1", "2", NULL };
	octo_metric *fam = counter("c_total", labels);
	octo_metric *plain = gauge("g", NULL);
	octo_metric *c = child(fam, values), *out = NULL;

	ck_assert_int_eq(octo_metrics_with(&out, plain, values), OCTO_EINVAL);
	ck_assert_ptr_nonnull(strstr(octo_error_last(), "g"));
	ck_assert_int_eq(octo_metrics_with(&out, fam, NULL), OCTO_EINVAL);
	ck_assert_int_eq(octo_metrics_with(&out, fam, (const char *const[]){ "1", NULL }),
	                 OCTO_EINVAL);
	ck_assert_int_eq(octo_metrics_with(&out, c, values), OCTO_EINVAL);
	ck_assert_int_eq(octo_metrics_with(&out, NULL, values), OCTO_EINVAL);
	ck_assert_int_eq(octo_metrics_with(NULL, fam, values), OCTO_EINVAL);
	ck_assert_ptr_null(out);
}
END_TEST

START_TEST(children_beyond_the_maximum_are_refused)
{
	static const char *const labels[] = { "id", NULL };
	octo_metric *fam = counter("c_total", labels), *first = NULL, *out = NULL;
	char id[16];
	const char *values[] = { id, NULL };
	int i;

	for (i = 0; i < OCTO_METRICS_MAX_CHILDREN; i++) {
		snprintf(id, sizeof(id), "%d", i);
		ck_assert_int_eq(octo_metrics_with(&out, fam, values), 0);
		if (i == 0)
			first = out;
	}
	out = NULL;
	ck_assert_int_eq(octo_metrics_with(&out, fam, (const char *const[]){ "new" }), OCTO_ERANGE);
	ck_assert_ptr_null(out);
	/* Existing children are still found. */
	ck_assert_ptr_eq(child(fam, (const char *const[]){ "0" }), first);
	snprintf(id, sizeof(id), "%d", OCTO_METRICS_MAX_CHILDREN - 1);
	ck_assert_int_eq(octo_metrics_with(&out, fam, values), 0);
}
END_TEST

/* ---- updates ------------------------------------------------------------- */

START_TEST(counter_and_gauge_updates)
{
	octo_metric *c = counter("c_total", NULL), *g = gauge("g", NULL);

	ck_assert(octo_metrics_value(c) == 0);
	octo_metrics_inc(c);
	octo_metrics_add(c, 2.5);
	ck_assert(octo_metrics_value(c) == 3.5);
	octo_metrics_inc(g);
	octo_metrics_add(g, -4);
	ck_assert(octo_metrics_value(g) == -3);
	octo_metrics_dec(g);
	ck_assert(octo_metrics_value(g) == -4);
	octo_metrics_set(g, 7.25);
	ck_assert(octo_metrics_value(g) == 7.25);
}
END_TEST

START_TEST(counters_ignore_negative_and_nan_amounts)
{
	octo_metric *c = counter("c_total", NULL);

	octo_metrics_add(c, 2);
	octo_metrics_add(c, -1);
	octo_metrics_add(c, -0.001);
	octo_metrics_add(c, NAN);
	octo_metrics_add(c, -INFINITY);
	ck_assert(octo_metrics_value(c) == 2);
	octo_metrics_add(c, 0);
	ck_assert(octo_metrics_value(c) == 2);
}
END_TEST

START_TEST(updates_of_the_wrong_type_are_no_ops)
{
	octo_metric *c = counter("c_total", NULL), *g = gauge("g", NULL), *h = NULL;

	ck_assert_int_eq(octo_metrics_histogram(&h, reg, "h", "Help.", NULL, NULL, 0), 0);
	octo_metrics_inc(c);
	octo_metrics_dec(c);
	octo_metrics_set(c, 10);
	octo_metrics_observe(c, 10);
	ck_assert(octo_metrics_value(c) == 1);
	octo_metrics_set(g, 5);
	octo_metrics_observe(g, 10);
	ck_assert(octo_metrics_value(g) == 5);
	octo_metrics_inc(h);
	octo_metrics_dec(h);
	octo_metrics_add(h, 3);
	octo_metrics_set(h, 3);
	ck_assert(octo_metrics_value(h) == 0);
	{
		char *text = render();
		ck_assert(sample(text, "h_sum") == 0);
		ck_assert(sample(text, "h_count") == 0);
		octo_free(text);
	}
}
END_TEST

START_TEST(updates_of_a_labelled_family_are_no_ops)
{
	static const char *const labels[] = { "k", NULL };
	static const char *const v[] = { "x", NULL };
	octo_metric *fam = gauge("g", labels), *c = child(fam, v), *h = NULL, *hc;

	octo_metrics_set(c, 2);
	octo_metrics_inc(fam);
	octo_metrics_dec(fam);
	octo_metrics_add(fam, 5);
	octo_metrics_set(fam, 9);
	ck_assert(octo_metrics_value(fam) == 0);
	ck_assert(octo_metrics_value(c) == 2);
	ck_assert_int_eq(octo_metrics_histogram(&h, reg, "h", "Help.", labels,
	                                        (const double[]){ 1 }, 1), 0);
	hc = child(h, v);
	octo_metrics_observe(h, 0.5);
	octo_metrics_observe(hc, 0.5);
	ck_assert(octo_metrics_value(h) == 0);
	ck_assert(octo_metrics_value(hc) == 1);
	assert_renders("# HELP g Help.\n# TYPE g gauge\n"
	               "g{k=\"x\"} 2\n"
	               "# HELP h Help.\n# TYPE h histogram\n"
	               "h_bucket{k=\"x\",le=\"1\"} 1\n"
	               "h_bucket{k=\"x\",le=\"+Inf\"} 1\n"
	               "h_sum{k=\"x\"} 0.5\n"
	               "h_count{k=\"x\"} 1\n");
}
END_TEST

START_TEST(updates_of_null_are_no_ops)
{
	octo_metrics_inc(NULL);
	octo_metrics_dec(NULL);
	octo_metrics_add(NULL, 1);
	octo_metrics_set(NULL, 1);
	octo_metrics_observe(NULL, 1);
	ck_assert(octo_metrics_value(NULL) == 0);
	assert_renders("");
}
END_TEST

/* ---- histograms ---------------------------------------------------------- */

START_TEST(observations_fall_in_inclusive_buckets)
{
	static const double bounds[] = { 1, 2, 5 };
	static const double values[] = { -3, 0.5, 1, 1.5, 2, 5, 7 };
	octo_metric *h = NULL;
	int i;

	ck_assert_int_eq(octo_metrics_histogram(&h, reg, "h", "Help.", NULL, bounds, 3), 0);
	for (i = 0; i < N_ELEMS(values); i++)
		octo_metrics_observe(h, values[i]);
	ck_assert(octo_metrics_value(h) == 7);
	/* -3, 0.5 and 1 are <= 1; 1.5 and 2 add to <= 2; 5 to <= 5; 7 only
	 * to +Inf. The sum is 14. */
	assert_renders("# HELP h Help.\n# TYPE h histogram\n"
	               "h_bucket{le=\"1\"} 3\n"
	               "h_bucket{le=\"2\"} 5\n"
	               "h_bucket{le=\"5\"} 6\n"
	               "h_bucket{le=\"+Inf\"} 7\n"
	               "h_sum 14\n"
	               "h_count 7\n");
}
END_TEST

START_TEST(default_buckets_are_prometheus_ones)
{
	octo_metric *h = NULL;

	ck_assert_int_eq(octo_metrics_histogram(&h, reg, "h", "Help.", NULL, NULL, 0), 0);
	octo_metrics_observe(h, 0.005);
	octo_metrics_observe(h, 0.3);
	octo_metrics_observe(h, 11);
	assert_renders("# HELP h Help.\n# TYPE h histogram\n"
	               "h_bucket{le=\"0.005\"} 1\n"
	               "h_bucket{le=\"0.01\"} 1\n"
	               "h_bucket{le=\"0.025\"} 1\n"
	               "h_bucket{le=\"0.05\"} 1\n"
	               "h_bucket{le=\"0.1\"} 1\n"
	               "h_bucket{le=\"0.25\"} 1\n"
	               "h_bucket{le=\"0.5\"} 2\n"
	               "h_bucket{le=\"1\"} 2\n"
	               "h_bucket{le=\"2.5\"} 2\n"
	               "h_bucket{le=\"5\"} 2\n"
	               "h_bucket{le=\"10\"} 2\n"
	               "h_bucket{le=\"+Inf\"} 3\n"
	               "h_sum 11.305\n"
	               "h_count 3\n");
}
END_TEST

START_TEST(a_single_bound_and_negative_bounds_work)
{
	static const double bounds[] = { -1, 0 };
	octo_metric *h = NULL;

	ck_assert_int_eq(octo_metrics_histogram(&h, reg, "h", "Help.", NULL, bounds, 2), 0);
	octo_metrics_observe(h, -2);
	octo_metrics_observe(h, -1);
	octo_metrics_observe(h, -0.5);
	octo_metrics_observe(h, 0);
	octo_metrics_observe(h, 0.25);
	assert_renders("# HELP h Help.\n# TYPE h histogram\n"
	               "h_bucket{le=\"-1\"} 2\n"
	               "h_bucket{le=\"0\"} 4\n"
	               "h_bucket{le=\"+Inf\"} 5\n"
	               "h_sum -3.25\n"
	               "h_count 5\n");
}
END_TEST

/* ---- rendering ----------------------------------------------------------- */

START_TEST(exposition_text_is_exact)
{
	static const char *const http_labels[] = { "method", "code", NULL };
	static const char *const route[] = { "route", NULL };
	static const double bounds[] = { 0.1, 0.5, 1 };
	octo_metric *http, *temp, *lat = NULL, *a;

	ck_assert_int_eq(octo_metrics_histogram(&lat, reg, "request_seconds", "Time to answer.",
	                                        route, bounds, 3), 0);
	ck_assert_int_eq(octo_metrics_gauge(&temp, reg, "temperature_celsius",
	                                    "Current temperature.", NULL), 0);
	ck_assert_int_eq(octo_metrics_counter(&http, reg, "http_requests_total", "Requests served.",
	                                      http_labels), 0);
	octo_metrics_add(child(http, (const char *const[]){ "POST", "500" }), 2.5);
	a = child(http, (const char *const[]){ "GET", "200" });
	octo_metrics_inc(a);
	octo_metrics_inc(a);
	octo_metrics_inc(a);
	octo_metrics_set(temp, -3.25);
	a = child(lat, (const char *const[]){ "/a" });
	octo_metrics_observe(a, 0.25);
	octo_metrics_observe(a, 0.5);
	octo_metrics_observe(a, 2);
	assert_renders("# HELP http_requests_total Requests served.\n"
	               "# TYPE http_requests_total counter\n"
	               "http_requests_total{method=\"GET\",code=\"200\"} 3\n"
	               "http_requests_total{method=\"POST\",code=\"500\"} 2.5\n"
	               "# HELP request_seconds Time to answer.\n"
	               "# TYPE request_seconds histogram\n"
	               "request_seconds_bucket{route=\"/a\",le=\"0.1\"} 0\n"
	               "request_seconds_bucket{route=\"/a\",le=\"0.5\"} 2\n"
	               "request_seconds_bucket{route=\"/a\",le=\"1\"} 2\n"
	               "request_seconds_bucket{route=\"/a\",le=\"+Inf\"} 3\n"
	               "request_seconds_sum{route=\"/a\"} 2.75\n"
	               "request_seconds_count{route=\"/a\"} 3\n"
	               "# HELP temperature_celsius Current temperature.\n"
	               "# TYPE temperature_celsius gauge\n"
	               "temperature_celsius -3.25\n");
}
END_TEST

START_TEST(families_and_children_are_sorted)
{
	static const char *const labels[] = { "a", "b", NULL };
	static const char *const sets[][2] = {
		{ "b", "2" }, { "ab", "c" }, { "a", "9" }, { "b", "10" }, { "a", "bd" }, { "a", "10" },
	};
	octo_metric *fam;
	int i;

	gauge("zeta", NULL);
	fam = counter("mid_total", labels);
	gauge("alpha", NULL);
	for (i = 0; i < N_ELEMS(sets); i++)
		octo_metrics_inc(child(fam, sets[i]));
	/* Value by value: ("a","bd") sorts before ("ab","c"), though "abd"
	 * would sort after "abc" if the values were joined. */
	assert_renders("# HELP alpha Help.\n# TYPE alpha gauge\nalpha 0\n"
	               "# HELP mid_total Help.\n# TYPE mid_total counter\n"
	               "mid_total{a=\"a\",b=\"10\"} 1\n"
	               "mid_total{a=\"a\",b=\"9\"} 1\n"
	               "mid_total{a=\"a\",b=\"bd\"} 1\n"
	               "mid_total{a=\"ab\",b=\"c\"} 1\n"
	               "mid_total{a=\"b\",b=\"10\"} 1\n"
	               "mid_total{a=\"b\",b=\"2\"} 1\n"
	               "# HELP zeta Help.\n# TYPE zeta gauge\nzeta 0\n");
}
END_TEST

START_TEST(label_values_and_help_are_escaped)
{
	static const char *const labels[] = { "v", NULL };
	static const char *const values[] = {
		"say \"hi\"", "line1\nline2", "cut\xe2\x82", "a\\b", "caf\xc3\xa9", "bad\xff",
	};
	octo_metric *fam = NULL;
	int i;

	ck_assert_int_eq(octo_metrics_counter(&fam, reg, "esc_total",
	                                      "Line one\nback\\slash \"quoted\".", labels), 0);
	for (i = 0; i < N_ELEMS(values); i++)
		octo_metrics_inc(child(fam, &values[i]));
	/* Invalid UTF-8 becomes U+FFFD byte by byte; valid UTF-8 stays. */
	assert_renders("# HELP esc_total Line one\\nback\\\\slash \"quoted\".\n"
	               "# TYPE esc_total counter\n"
	               "esc_total{v=\"a\\\\b\"} 1\n"
	               "esc_total{v=\"bad\xef\xbf\xbd\"} 1\n"
	               "esc_total{v=\"caf\xc3\xa9\"} 1\n"
	               "esc_total{v=\"cut\xef\xbf\xbd\xef\xbf\xbd\"} 1\n"
	               "esc_total{v=\"line1\\nline2\"} 1\n"
	               "esc_total{v=\"say \\\"hi\\\"\"} 1\n");
}
END_TEST

static const struct {
	double value;
	const char *text;
} numbers[] = {
	{ 0.1, "0.1" },
	{ 1, "1" },
	{ 0, "0" },
	{ 1e20, "1e+20" },
	{ -0.5, "-0.5" },
	{ 123456789, "123456789" },
	{ 1e-7, "1e-07" },
	{ 1.0 / 3, "0.3333333333333333" },
	{ 0.1 + 0.2, "0.30000000000000004" },
	{ INFINITY, "+Inf" },
	{ -INFINITY, "-Inf" },
	{ NAN, "NaN" },
	/* Whole numbers take a faster path up to 10^15, which must agree. */
	{ -3, "-3" },
	{ -0.0, "-0" },
	{ 999999999999999, "999999999999999" },
	{ -999999999999999, "-999999999999999" },
	{ 1e15, "1e+15" },
	{ 1234567890123456, "1234567890123456" },
	{ 4503599627370497.0, "4503599627370497" },
};

START_TEST(numbers_are_shortest_round_trips)
{
	octo_metric *g = gauge("g", NULL);
	char expected[128];

	octo_metrics_set(g, numbers[_i].value);
	snprintf(expected, sizeof(expected), "# HELP g Help.\n# TYPE g gauge\ng %s\n",
	         numbers[_i].text);
	assert_renders(expected);
	if (isfinite(numbers[_i].value))
		ck_assert(strtod(numbers[_i].text, NULL) == numbers[_i].value);
}
END_TEST

START_TEST(a_labelled_family_without_children_has_only_its_header)
{
	static const char *const labels[] = { "k", NULL };
	octo_metric *h = NULL;

	counter("c_total", labels);
	ck_assert_int_eq(octo_metrics_histogram(&h, reg, "h", "Help.", labels, NULL, 0), 0);
	assert_renders("# HELP c_total Help.\n# TYPE c_total counter\n"
	               "# HELP h Help.\n# TYPE h histogram\n");
}
END_TEST

START_TEST(render_may_leave_out_the_length)
{
	char *text = NULL;

	gauge("g", NULL);
	ck_assert_int_eq(octo_metrics_render(reg, &text, NULL), 0);
	ck_assert_str_eq(text, "# HELP g Help.\n# TYPE g gauge\ng 0\n");
	octo_free(text);
}
END_TEST

/* ---- callback metrics ---------------------------------------------------- */

START_TEST(callbacks_are_read_at_render_time)
{
	double dropped = 42, queued = 1.5;

	ck_assert_int_eq(octo_metrics_counter_fn(reg, "dropped_total", "Jobs dropped.",
	                                         read_double, &dropped), 0);
	ck_assert_int_eq(octo_metrics_gauge_fn(reg, "queued", "Jobs queued.",
	                                       read_double, &queued), 0);
	assert_renders("# HELP dropped_total Jobs dropped.\n# TYPE dropped_total counter\n"
	               "dropped_total 42\n"
	               "# HELP queued Jobs queued.\n# TYPE queued gauge\nqueued 1.5\n");
	dropped = 43;
	queued = -2;
	assert_renders("# HELP dropped_total Jobs dropped.\n# TYPE dropped_total counter\n"
	               "dropped_total 43\n"
	               "# HELP queued Jobs queued.\n# TYPE queued gauge\nqueued -2\n");
}
END_TEST

START_TEST(callback_registration_follows_the_same_rules)
{
	double v = 1, w = 2;
	octo_metric *m = NULL;

	ck_assert_int_eq(octo_metrics_gauge_fn(reg, "q", "Help.", read_double, &v), 0);
	ck_assert_int_eq(octo_metrics_gauge_fn(reg, "q", "Help.", read_double, &v), 0);
	ck_assert_int_eq(octo_metrics_gauge_fn(reg, "q", "Help.", read_double, &w), OCTO_ECONFLICT);
	ck_assert_int_eq(octo_metrics_counter_fn(reg, "q", "Help.", read_double, &v), OCTO_ECONFLICT);
	ck_assert_int_eq(octo_metrics_gauge(&m, reg, "q", "Help.", NULL), OCTO_ECONFLICT);
	ck_assert_ptr_null(m);
	gauge("plain", NULL);
	ck_assert_int_eq(octo_metrics_gauge_fn(reg, "plain", "Help.", read_double, &v),
	                 OCTO_ECONFLICT);
	ck_assert_int_eq(octo_metrics_gauge_fn(reg, "n", "Help.", NULL, &v), OCTO_EINVAL);
	ck_assert_int_eq(octo_metrics_counter_fn(reg, "n", NULL, read_double, &v), OCTO_EINVAL);
	ck_assert_int_eq(octo_metrics_counter_fn(NULL, "n", "Help.", read_double, &v), OCTO_EINVAL);
	assert_renders("# HELP plain Help.\n# TYPE plain gauge\nplain 0\n"
	               "# HELP q Help.\n# TYPE q gauge\nq 1\n");
}
END_TEST

/* ---- process metrics ----------------------------------------------------- */

START_TEST(process_metrics_have_plausible_values)
{
	double now = (double)time(NULL), start, rss, vms, fds, max, cpu;
	char *text;

	ck_assert_int_eq(octo_metrics_add_process(reg), 0);
	text = render();
	cpu = sample(text, "process_cpu_seconds_total");
	start = sample(text, "process_start_time_seconds");
	rss = sample(text, "process_resident_memory_bytes");
	vms = sample(text, "process_virtual_memory_bytes");
	fds = sample(text, "process_open_fds");
	max = sample(text, "process_max_fds");
	ck_assert(cpu >= 0 && cpu < 1e6);
	ck_assert(start > now - 86400 && start < now + 60);
	ck_assert(rss > 0);
	ck_assert(vms >= rss);
	ck_assert(fds >= 3);
	ck_assert(max >= fds);
	ck_assert(sample(text, "octopus_build_info{version=\"" OCTO_VERSION "\"}") == 1);
	ck_assert_ptr_nonnull(strstr(text, "# TYPE process_cpu_seconds_total counter\n"));
	ck_assert_ptr_nonnull(strstr(text, "# TYPE process_open_fds gauge\n"));
	ck_assert_ptr_nonnull(strstr(text, "# HELP process_resident_memory_bytes "
	                                   "Resident memory size in bytes.\n"));
	ck_assert_ptr_nonnull(strstr(text, "# TYPE octopus_build_info gauge\n"));
	octo_free(text);
}
END_TEST

/* The open descriptors counted another way than the library does. */
static double probe_open_fds(void)
{
	struct rlimit rl;
	double n = 0;
	rlim_t fd;

	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	for (fd = 0; fd < rl.rlim_cur && fd < 1 << 20; fd++)
		if (fcntl((int)fd, F_GETFD) >= 0)
			n++;
	return n;
}

START_TEST(process_open_fds_matches_an_independent_count)
{
	double expected = probe_open_fds();
	char *text = NULL;

	ck_assert_int_eq(octo_metrics_add_process(reg), 0);
	text = render();
	/* valgrind hides its own descriptors from fcntl() but not from
	 * /proc/self/fd, so only there the library may count more. */
	if (under_valgrind())
		ck_assert(sample(text, "process_open_fds") >= expected);
	else
		ck_assert(sample(text, "process_open_fds") == expected);
	octo_free(text);
}
END_TEST

START_TEST(process_open_fds_follows_the_descriptors)
{
	int fd[5], i;
	double before, after;
	char *text;

	ck_assert_int_eq(octo_metrics_add_process(reg), 0);
	text = render();
	before = sample(text, "process_open_fds");
	octo_free(text);
	for (i = 0; i < 5; i++)
		ck_assert_int_ge(fd[i] = open("/dev/null", O_RDONLY), 0);
	text = render();
	after = sample(text, "process_open_fds");
	octo_free(text);
	for (i = 0; i < 5; i++)
		close(fd[i]);
	ck_assert(after == before + 5);
}
END_TEST

START_TEST(process_metrics_may_be_added_twice)
{
	char *text;

	ck_assert_int_eq(octo_metrics_add_process(reg), 0);
	ck_assert_int_eq(octo_metrics_add_process(reg), 0);
	text = render();
	ck_assert_int_eq(occurrences(text, "# TYPE "), 7);
	ck_assert_int_eq(occurrences(text, "\noctopus_build_info{"), 1);
	ck_assert_int_eq(occurrences(text, "\nprocess_max_fds "), 1);
	octo_free(text);
}
END_TEST

/* ---- threads ------------------------------------------------------------- */

#define THREADS 8

static int iterations(void)
{
	return under_valgrind() ? 10000 : 100000;
}

typedef struct {
	octo_metric *m;
	int n;
	pthread_barrier_t *start;
} job;

static void run_threads(void *(*fn)(void *), octo_metric *m)
{
	pthread_t threads[THREADS];
	pthread_barrier_t start;
	job j;
	int i;

	j.m = m;
	j.n = iterations();
	j.start = &start;
	ck_assert_int_eq(pthread_barrier_init(&start, NULL, THREADS), 0);
	for (i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&threads[i], NULL, fn, &j), 0);
	for (i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);
	pthread_barrier_destroy(&start);
}

static void *incrementer(void *arg)
{
	job *j = arg;
	int i;

	pthread_barrier_wait(j->start);
	for (i = 0; i < j->n; i++)
		octo_metrics_inc(j->m);
	return NULL;
}

static void *adder(void *arg)
{
	job *j = arg;
	int i;

	pthread_barrier_wait(j->start);
	for (i = 0; i < j->n; i++) {
		octo_metrics_add(j->m, 2.5);
		octo_metrics_dec(j->m);
	}
	return NULL;
}

/* 0.5 and 1 fall in le="1", 3 in le="5", 10 in +Inf. */
static const double observed[] = { 0.5, 1, 3, 10 };

static void *observer(void *arg)
{
	job *j = arg;
	int i;

	pthread_barrier_wait(j->start);
	for (i = 0; i < j->n; i++)
		octo_metrics_observe(j->m, observed[i % 4]);
	return NULL;
}

START_TEST(concurrent_counter_increments_are_exact)
{
	octo_metric *c = counter("c_total", NULL);

	run_threads(incrementer, c);
	ck_assert(octo_metrics_value(c) == (double)THREADS * iterations());
}
END_TEST

START_TEST(concurrent_gauge_additions_are_exact)
{
	octo_metric *g = gauge("g", NULL);

	run_threads(adder, g);
	ck_assert(octo_metrics_value(g) == 1.5 * THREADS * iterations());
}
END_TEST

START_TEST(concurrent_observations_are_exact)
{
	static const double bounds[] = { 1, 5 };
	octo_metric *h = NULL;
	double quarter = (double)THREADS * iterations() / 4;
	char *text;

	ck_assert_int_eq(octo_metrics_histogram(&h, reg, "h", "Help.", NULL, bounds, 2), 0);
	run_threads(observer, h);
	ck_assert(octo_metrics_value(h) == (double)THREADS * iterations());
	text = render();
	ck_assert(sample(text, "h_bucket{le=\"1\"}") == 2 * quarter);
	ck_assert(sample(text, "h_bucket{le=\"5\"}") == 3 * quarter);
	ck_assert(sample(text, "h_bucket{le=\"+Inf\"}") == 4 * quarter);
	ck_assert(sample(text, "h_count") == 4 * quarter);
	ck_assert(sample(text, "h_sum") == 14.5 * quarter);
	octo_free(text);
}
END_TEST

#define LABEL_SETS 32

typedef struct {
	octo_metric *fam;
	pthread_barrier_t *start;
	int rounds;
	int failures;
	octo_metric *seen[LABEL_SETS];
} chooser;

static const char *set_name(int k)
{
	static const char *const names[LABEL_SETS] = {
		"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9", "k10",
		"k11", "k12", "k13", "k14", "k15", "k16", "k17", "k18", "k19", "k20",
		"k21", "k22", "k23", "k24", "k25", "k26", "k27", "k28", "k29", "k30", "k31",
	};

	return names[k];
}

/* Records what it got rather than asserting: Check's assertions belong to
 * the test's own thread. */
static void *choose(void *arg)
{
	chooser *c = arg;
	octo_metric *m;
	int r, k;

	pthread_barrier_wait(c->start);
	for (r = 0; r < c->rounds; r++) {
		for (k = 0; k < LABEL_SETS; k++) {
			const char *values[] = { set_name(k), NULL };
			m = NULL;
			if (octo_metrics_with(&m, c->fam, values) != 0 || !m ||
			    (c->seen[k] && c->seen[k] != m))
				c->failures++;
			if (!c->seen[k])
				c->seen[k] = m;
			octo_metrics_inc(m);
		}
	}
	return NULL;
}

START_TEST(concurrent_with_creates_each_child_once)
{
	static const char *const labels[] = { "set", NULL };
	octo_metric *fam = counter("c_total", labels);
	pthread_t threads[THREADS];
	chooser choosers[THREADS];
	pthread_barrier_t start;
	int rounds = under_valgrind() ? 50 : 1000;
	int i, k;
	char *text;

	ck_assert_int_eq(pthread_barrier_init(&start, NULL, THREADS), 0);
	memset(choosers, 0, sizeof(choosers));
	for (i = 0; i < THREADS; i++) {
		choosers[i].fam = fam;
		choosers[i].start = &start;
		choosers[i].rounds = rounds;
		ck_assert_int_eq(pthread_create(&threads[i], NULL, choose, &choosers[i]), 0);
	}
	for (i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);
	pthread_barrier_destroy(&start);
	for (i = 0; i < THREADS; i++) {
		ck_assert_int_eq(choosers[i].failures, 0);
		for (k = 0; k < LABEL_SETS; k++)
			ck_assert_ptr_eq(choosers[i].seen[k], choosers[0].seen[k]);
	}
	for (k = 0; k < LABEL_SETS; k++) {
		const char *values[] = { set_name(k), NULL };
		ck_assert_ptr_eq(child(fam, values), choosers[0].seen[k]);
		ck_assert(octo_metrics_value(choosers[0].seen[k]) == (double)THREADS * rounds);
	}
	text = render();
	ck_assert_int_eq(occurrences(text, "\nc_total{"), LABEL_SETS);
	octo_free(text);
}
END_TEST

typedef struct {
	octo_metric *h;
	atomic_int stop;
} background;

static void *observe_until_stopped(void *arg)
{
	background *b = arg;
	int i = 0;

	while (!atomic_load(&b->stop))
		octo_metrics_observe(b->h, observed[i++ % 4]);
	return NULL;
}

START_TEST(count_equals_the_inf_bucket_during_updates)
{
	static const double bounds[] = { 1, 5 };
	int renders = under_valgrind() ? 20 : 300, i;
	double count, last = 0;
	background b;
	pthread_t t;
	char *text;

	b.h = NULL;
	atomic_init(&b.stop, 0);
	ck_assert_int_eq(octo_metrics_histogram(&b.h, reg, "h", "Help.", NULL, bounds, 2), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, observe_until_stopped, &b), 0);
	while (octo_metrics_value(b.h) == 0)
		;
	for (i = 0; i < renders; i++) {
		text = render();
		count = sample(text, "h_count");
		ck_assert(sample(text, "h_bucket{le=\"+Inf\"}") == count);
		ck_assert(sample(text, "h_bucket{le=\"5\"}") <= count);
		ck_assert(count >= last);
		last = count;
		octo_free(text);
	}
	atomic_store(&b.stop, 1);
	pthread_join(t, NULL);
	ck_assert(last > 0);
}
END_TEST

/* ---- main ---------------------------------------------------------------- */

static TCase *metrics_tcase(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	suite_add_tcase(s, tc);
	return tc;
}

int main(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc;

	tc = metrics_tcase(s, "registration");
	tcase_add_test(tc, new_refuses_null_and_free_accepts_it);
	tcase_add_test(tc, identical_registration_returns_the_same_family);
	tcase_add_test(tc, reregistration_keeps_the_children_and_their_values);
	tcase_add_test(tc, a_different_definition_conflicts);
	tcase_add_test(tc, bad_metric_names_are_refused);
	tcase_add_test(tc, bad_label_names_are_refused);
	tcase_add_test(tc, bad_buckets_are_refused);
	tcase_add_test(tc, missing_arguments_are_refused);

	tc = metrics_tcase(s, "with");
	tcase_add_test(tc, with_returns_one_child_per_label_set);
	tcase_add_test(tc, with_refuses_what_has_no_children);
	tcase_add_test(tc, children_beyond_the_maximum_are_refused);

	tc = metrics_tcase(s, "updates");
	tcase_add_test(tc, counter_and_gauge_updates);
	tcase_add_test(tc, counters_ignore_negative_and_nan_amounts);
	tcase_add_test(tc, updates_of_the_wrong_type_are_no_ops);
	tcase_add_test(tc, updates_of_a_labelled_family_are_no_ops);
	tcase_add_test(tc, updates_of_null_are_no_ops);

	tc = metrics_tcase(s, "histogram");
	tcase_add_test(tc, observations_fall_in_inclusive_buckets);
	tcase_add_test(tc, default_buckets_are_prometheus_ones);
	tcase_add_test(tc, a_single_bound_and_negative_bounds_work);

	tc = metrics_tcase(s, "render");
	tcase_add_test(tc, exposition_text_is_exact);
	tcase_add_test(tc, families_and_children_are_sorted);
	tcase_add_test(tc, label_values_and_help_are_escaped);
	tcase_add_loop_test(tc, numbers_are_shortest_round_trips, 0, N_ELEMS(numbers));
	tcase_add_test(tc, a_labelled_family_without_children_has_only_its_header);
	tcase_add_test(tc, render_may_leave_out_the_length);

	tc = metrics_tcase(s, "callbacks");
	tcase_add_test(tc, callbacks_are_read_at_render_time);
	tcase_add_test(tc, callback_registration_follows_the_same_rules);

	tc = metrics_tcase(s, "process");
	tcase_add_test(tc, process_metrics_have_plausible_values);
	tcase_add_test(tc, process_open_fds_matches_an_independent_count);
	tcase_add_test(tc, process_open_fds_follows_the_descriptors);
	tcase_add_test(tc, process_metrics_may_be_added_twice);

	tc = metrics_tcase(s, "threads");
	tcase_add_test(tc, concurrent_counter_increments_are_exact);
	tcase_add_test(tc, concurrent_gauge_additions_are_exact);
	tcase_add_test(tc, concurrent_observations_are_exact);
	tcase_add_test(tc, concurrent_with_creates_each_child_once);
	tcase_add_test(tc, count_equals_the_inf_bucket_during_updates);
	return tu_run(s);
}
