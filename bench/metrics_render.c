/* metrics_render: how long octo_metrics_render() takes for a registry of
 * about 1,000 series.
 *
 *   metrics_render RENDERS
 *
 * octopusd labels its series by method, route and status only, so its own
 * /metrics never reaches 1,000 series; this program builds registries that
 * do, through libocto's public metrics API:
 *
 *   mix        octopusd's shape: http_requests_total{method,route,status}
 *              (300 children) and http_request_duration_seconds{method,
 *              route} histograms (50 children x 14 series) = 1,000 series
 *   counters   1,000 counter children of one family
 *   histograms 72 histogram children (x 14 series) = 1,008 series
 *   process    octo_metrics_add_process() alone: the /proc reads
 *   mix+process
 *
 * Each registry is rendered RENDERS times (after a few warm-up renders);
 * the program prints key=value lines (<name>_series, _bytes, _min_us,
 * _p50_us, _p99_us, _mean_us) and exits non-zero when a registry cannot be
 * built or renders another number of series than it holds. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <octopus/octopus.h>

#define WARMUP 5

static const char *const methods[] = { "GET", "POST", "DELETE", "OPTIONS", "HEAD" };
static const char *const routes[] = {
	"/", "/health", "/metrics", "/v1/download/check", "/v1/download/initiate",
	"/v1/download/start", "/v1/download/status/{jobId}", "/v1/download/{jobId}",
	"/v1/download/{jobId}/files/{fileId}", "/v1/download/{jobId}/events",
	"/v1/files/{key}", "unmatched",
};
static const char *const statuses[] = { "200", "202", "400", "404", "503" };

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* A small deterministic generator, so every run renders the same text. */
static unsigned long long rng = 0x9e3779b97f4a7c15ull;

static double uniform(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0;
}

static int fail(const char *what)
{
	fprintf(stderr, "metrics_render: %s: %s\n", what, octo_error_last());
	return -1;
}

/* Request latencies in seconds: mostly around a millisecond, a long tail,
 * so sums have all their digits (the formatting's worst case). */
static void observe_some(octo_metric *h, int n)
{
	int i;

	for (i = 0; i < n; i++)
		octo_metrics_observe(h, -log(1.0 - uniform()) * 0.002);
}

static int add_requests(octo_metrics *reg, size_t routes_used)
{
	static const char *const names[] = { "method", "route", "status", NULL };
	octo_metric *family, *child;
	size_t m, r, s;

	if (octo_metrics_counter(&family, reg, "http_requests_total",
	                         "HTTP requests answered.", names) < 0)
		return fail("counter");
	for (m = 0; m < COUNT(methods); m++)
		for (r = 0; r < routes_used; r++)
			for (s = 0; s < COUNT(statuses); s++) {
				const char *v[] = { methods[m], routes[r], statuses[s], NULL };
				if (octo_metrics_with(&child, family, v) < 0)
					return fail("counter child");
				octo_metrics_add(child, floor(uniform() * 1e6));
			}
	return 0;
}

static int add_durations(octo_metrics *reg, const char *name, size_t children)
{
	static const char *const names[] = { "method", "route", NULL };
	octo_metric *family, *child;
	char route[64];
	size_t i;

	if (octo_metrics_histogram(&family, reg, name, "Time to answer.", names, NULL, 0) < 0)
		return fail("histogram");
	for (i = 0; i < children; i++) {
		const char *v[] = { methods[i % COUNT(methods)], route, NULL };
		size_t r = i / COUNT(methods);
		/* Real route names while they last, then numbered ones. */
		if (r < COUNT(routes))
			snprintf(route, sizeof(route), "%s", routes[r]);
		else
			snprintf(route, sizeof(route), "%s#%zu", routes[r % COUNT(routes)], r);
		if (octo_metrics_with(&child, family, v) < 0)
			return fail("histogram child");
		observe_some(child, 100);
	}
	return 0;
}

static int add_counters(octo_metrics *reg, size_t children)
{
	static const char *const names[] = { "route", "status", NULL };
	octo_metric *family, *child;
	char route[64], status[8];
	size_t i;

	if (octo_metrics_counter(&family, reg, "bench_requests_total", "Requests.", names) < 0)
		return fail("counter");
	for (i = 0; i < children; i++) {
		const char *v[] = { route, status, NULL };
		snprintf(route, sizeof(route), "/v1/route/%zu", i / 10);
		snprintf(status, sizeof(status), "%zu", 200 + i % 10);
		if (octo_metrics_with(&child, family, v) < 0)
			return fail("counter child");
		octo_metrics_add(child, floor(uniform() * 1e6));
	}
	return 0;
}

/* The registries, by name; 0 when built. */
static int build(octo_metrics *reg, const char *name)
{
	if (strcmp(name, "mix") == 0 || strcmp(name, "mix_process") == 0) {
		/* 5 methods x 12 routes x 5 statuses = 300; 50 histograms x 14 = 700 */
		if (add_requests(reg, COUNT(routes)) < 0 ||
		    add_durations(reg, "http_request_duration_seconds", 50) < 0)
			return -1;
		if (strcmp(name, "mix_process") == 0 && octo_metrics_add_process(reg) < 0)
			return fail("process metrics");
		return 0;
	}
	if (strcmp(name, "counters") == 0)
		return add_counters(reg, 1000);
	if (strcmp(name, "histograms") == 0)
		return add_durations(reg, "bench_duration_seconds", 72);
	if (strcmp(name, "process") == 0)
		return octo_metrics_add_process(reg) < 0 ? fail("process metrics") : 0;
	return -1;
}

static size_t count_series(const char *text)
{
	size_t n = 0;
	const char *line = text;

	while (*line) {
		const char *end = strchr(line, '\n');
		if (*line != '#' && *line != '\n')
			n++;
		if (!end)
			break;
		line = end + 1;
	}
	return n;
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int measure(const char *name, size_t expect, int renders)
{
	octo_metrics *reg = NULL;
	double *took = calloc((size_t)renders, sizeof(*took)), total = 0;
	size_t len = 0, series;
	char *text = NULL;
	int i, rc = -1;

	if (!took || octo_metrics_new(&reg) < 0 || build(reg, name) < 0)
		goto out;
	for (i = -WARMUP; i < renders; i++) {
		double t0 = now_us();
		if (octo_metrics_render(reg, &text, &len) < 0) {
			fail("render");
			goto out;
		}
		if (i >= 0)
			took[i] = now_us() - t0;
		if (i < renders - 1) {
			octo_free(text);
			text = NULL;
		}
	}
	series = count_series(text);
	if (expect && series != expect) {
		fprintf(stderr, "metrics_render: %s rendered %zu series, expected %zu\n", name,
		        series, expect);
		goto out;
	}
	for (i = 0; i < renders; i++)
		total += took[i];
	qsort(took, (size_t)renders, sizeof(*took), cmp_double);
	printf("%s_series=%zu\n%s_bytes=%zu\n", name, series, name, len);
	printf("%s_min_us=%.1f\n%s_p50_us=%.1f\n%s_p99_us=%.1f\n%s_mean_us=%.1f\n", name, took[0],
	       name, took[renders / 2], name, took[(size_t)((renders - 1) * 0.99)], name,
	       total / renders);
	rc = 0;
out:
	octo_free(text);
	octo_metrics_free(reg);
	free(took);
	return rc;
}

int main(int argc, char **argv)
{
	int renders = argc > 1 ? atoi(argv[1]) : 1000;
	int rc = 0;

	if (argc > 2 || renders < 1) {
		fprintf(stderr, "usage: metrics_render [RENDERS]\n");
		return 2;
	}
	printf("renders=%d\n", renders);
	rc |= measure("mix", 1000, renders);
	rc |= measure("counters", 1000, renders);
	rc |= measure("histograms", 72 * 14, renders);
	rc |= measure("process", 0, renders);
	rc |= measure("mix_process", 0, renders);
	return rc ? 1 : 0;
}
