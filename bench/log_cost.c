/* log_cost: what one log line costs when it goes to a file.
 *
 *   log_cost DIR LINES
 *
 * Writes LINES records through octo_log_write() to a file in DIR, in four
 * ways: on one thread with three fields; on one thread shaped like
 * octopusd's access-log line (ten fields, the figure that matters); the
 * same on four threads at once (LINES in total); and below the logger's
 * level (LOG_LEVEL=warn with info records: what the HTTP benchmark pays).
 * Prints key=value lines, ns per line; exits non-zero when the logger
 * does not count every line as written. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <octopus/octopus.h>

#define THREADS 4

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void write_short(octo_log *log, long i)
{
	octo_log_field f[] = {
		OCTO_LOG_STR("job_id", "6f1c2d9e-8a1b-4c3d-9e8f-0a1b2c3d4e5f"),
		OCTO_LOG_INT("file_id", 70000 + i % 1000),
		OCTO_LOG_DOUBLE("duration_ms", 12.345),
	};

	octo_log_write(log, OCTO_LOG_INFO, "File prepared", f, 3);
}

/* The fields of server/http.c's access log. */
static void write_access(octo_log *log, long i)
{
	octo_log_field f[] = {
		OCTO_LOG_STR("request_id", "9d1f175a-3c2b-4e5f-8a9b-0c1d2e3f4a5b"),
		OCTO_LOG_STR("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"),
		OCTO_LOG_STR("method", "GET"),
		OCTO_LOG_STR("route", "/v1/download/status/{jobId}"),
		OCTO_LOG_STR("path", "/v1/download/status/6f1c2d9e-8a1b-4c3d-9e8f-0a1b2c3d4e5f"),
		OCTO_LOG_INT("status", 200),
		OCTO_LOG_INT("bytes", 300 + i % 100),
		OCTO_LOG_DOUBLE("duration_ms", 0.173 + (double)(i % 7) / 1000),
		OCTO_LOG_STR("client", "127.0.0.1"),
		OCTO_LOG_STR("peer", "127.0.0.1"),
	};

	octo_log_write(log, OCTO_LOG_INFO, "GET /v1/download/status/{jobId} 200", f, 10);
}

typedef struct {
	octo_log *log;
	long lines;
	pthread_barrier_t *start;
} worker;

static void *run_worker(void *arg)
{
	worker *w = arg;
	long i;

	pthread_barrier_wait(w->start);
	for (i = 0; i < w->lines; i++)
		write_access(w->log, i);
	return NULL;
}

static int open_log(octo_log **log, const char *dir, const char *name, octo_log_level level,
                    char *path, size_t size)
{
	octo_log_options o = OCTO_LOG_OPTIONS_INIT;

	snprintf(path, size, "%s/%s", dir, name);
	o.path = path;
	o.level = level;
	if (octo_log_new(log, &o) < 0) {
		fprintf(stderr, "log_cost: %s: %s\n", path, octo_error_last());
		return -1;
	}
	return 0;
}

/* Frees the logger and its file; -1 unless it wrote `expect` lines. */
static int close_log(octo_log *log, const char *path, uint64_t expect)
{
	octo_log_stats st;

	octo_log_get_stats(log, &st);
	octo_log_free(log);
	unlink(path);
	if (st.written != expect) {
		fprintf(stderr, "log_cost: %s: %llu lines written, expected %llu\n", path,
		        (unsigned long long)st.written, (unsigned long long)expect);
		return -1;
	}
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* One thread; `each` ns of every call are kept for percentiles. */
static int single(const char *dir, const char *name, long lines, int access, uint32_t *each)
{
	octo_log *log;
	char path[4096];
	double t0, total;
	long i;

	if (open_log(&log, dir, name, OCTO_LOG_INFO, path, sizeof(path)) < 0)
		return -1;
	t0 = now_ns();
	for (i = 0; i < lines; i++) {
		double s = now_ns();
		if (access)
			write_access(log, i);
		else
			write_short(log, i);
		each[i] = (uint32_t)(now_ns() - s);
	}
	total = now_ns() - t0;
	qsort(each, (size_t)lines, sizeof(*each), cmp_u32);
	printf("%s_ns=%.0f\n%s_p50_ns=%u\n%s_p99_ns=%u\n", name, total / (double)lines, name,
	       each[lines / 2], name, each[(size_t)((double)(lines - 1) * 0.99)]);
	return close_log(log, path, (uint64_t)lines);
}

static int threaded(const char *dir, long lines)
{
	pthread_t threads[THREADS];
	worker w[THREADS];
	pthread_barrier_t start;
	octo_log *log;
	char path[4096];
	double t0, wall;
	int i;

	if (open_log(&log, dir, "threads4", OCTO_LOG_INFO, path, sizeof(path)) < 0)
		return -1;
	pthread_barrier_init(&start, NULL, THREADS + 1);
	for (i = 0; i < THREADS; i++) {
		w[i].log = log;
		w[i].lines = lines / THREADS;
		w[i].start = &start;
		pthread_create(&threads[i], NULL, run_worker, &w[i]);
	}
	pthread_barrier_wait(&start);
	t0 = now_ns();
	for (i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);
	wall = now_ns() - t0;
	pthread_barrier_destroy(&start);
	lines = lines / THREADS * THREADS;
	/* Throughput (wall time per line) and what one call costs its thread. */
	printf("threads4_ns=%.0f\nthreads4_per_call_ns=%.0f\n", wall / (double)lines,
	       wall * THREADS / (double)lines);
	return close_log(log, path, (uint64_t)lines);
}

static int filtered(const char *dir, long lines)
{
	octo_log *log;
	char path[4096];
	double t0;
	long i;

	if (open_log(&log, dir, "filtered", OCTO_LOG_WARN, path, sizeof(path)) < 0)
		return -1;
	t0 = now_ns();
	for (i = 0; i < lines; i++)
		write_access(log, i);
	printf("filtered_ns=%.1f\n", (now_ns() - t0) / (double)lines);
	return close_log(log, path, 0);
}

int main(int argc, char **argv)
{
	long lines = argc == 3 ? atol(argv[2]) : 0;
	uint32_t *each;
	int rc = 0;

	if (argc != 3 || lines < THREADS) {
		fprintf(stderr, "usage: log_cost DIR LINES\n");
		return 2;
	}
	if (!(each = calloc((size_t)lines, sizeof(*each))))
		return 1;
	printf("lines=%ld\n", lines);
	rc |= single(argv[1], "short", lines, 0, each);
	rc |= single(argv[1], "access", lines, 1, each);
	rc |= threaded(argv[1], lines);
	rc |= filtered(argv[1], lines);
	free(each);
	return rc ? 1 : 0;
}
