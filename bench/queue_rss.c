/* queue_rss: the memory of a job engine holding many queued files.
 *
 *   queue_rss DIR JOBS FILES
 *
 * Embeds an engine over a local store in DIR whose processor never
 * finishes a file (it waits until told to stop), so the workers stay busy
 * and everything submitted stays queued. Submits JOBS jobs of FILES
 * distinct file ids each (FILES <= OCTO_JOB_FILES_MAX), each written
 * durably as libocto always does, then reads this process's resident
 * memory from /proc/self/status. Prints key=value lines; exits non-zero
 * when a submit fails or the queue does not hold what was submitted. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <octopus/octopus.h>

#define WORKERS 4

/* Holds its worker until the engine shuts down. */
static int park(octo_task *task, void *payload)
{
	(void)payload;
	while (!octo_task_sleep(task, 60000))
		;
	return OCTO_EABORTED;
}

/* A "Vm...:" figure of /proc/self/status in KiB, or -1. */
static long status_kib(const char *field)
{
	char line[256];
	size_t n = strlen(field);
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, n) == 0 && line[n] == ':') {
			kib = strtol(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return kib;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int submit_all(octo_engine *engine, long jobs, long files)
{
	int64_t *ids = calloc((size_t)files, sizeof(*ids));
	char job_id[OCTO_JOB_ID_LEN + 1];
	long j, i;
	int rc = 0;

	if (!ids)
		return OCTO_ENOMEM;
	for (j = 0; j < jobs && rc == 0; j++) {
		for (i = 0; i < files; i++)
			ids[i] = 10000 + j * files + i;
		rc = octo_engine_submit(engine, ids, (size_t)files, job_id);
		if (rc < 0)
			fprintf(stderr, "queue_rss: submit %ld: %s: %s\n", j, octo_strerror(rc),
			        octo_error_last());
	}
	free(ids);
	return rc;
}

int main(int argc, char **argv)
{
	octo_engine_options opts = OCTO_ENGINE_OPTIONS_INIT;
	octo_store *store = NULL;
	octo_engine *engine = NULL;
	long jobs, files, rss_before, rss, hwm;
	size_t queued = 0;
	uint32_t median;
	unsigned workers;
	double t0, submit_s, t1;
	int rc = 1;

	if (argc != 4 || (jobs = atol(argv[2])) < 1 || (files = atol(argv[3])) < 1 ||
	    files > OCTO_JOB_FILES_MAX) {
		fprintf(stderr, "usage: queue_rss DIR JOBS FILES (FILES <= %d)\n", OCTO_JOB_FILES_MAX);
		return 2;
	}
	opts.workers = WORKERS;
	opts.queue_max = (size_t)(jobs * files) + WORKERS;
	opts.file_timeout_ms = 86400000;
	if (octo_store_open_local(&store, argv[1]) < 0 ||
	    octo_engine_new(&engine, store, park, NULL, &opts) < 0 ||
	    octo_engine_start(engine, NULL) < 0) {
		fprintf(stderr, "queue_rss: %s\n", octo_error_last());
		goto out;
	}
	rss_before = status_kib("VmRSS");
	t0 = now_s();
	if (submit_all(engine, jobs, files) < 0)
		goto out;
	submit_s = now_s() - t0;
	rss = status_kib("VmRSS");
	hwm = status_kib("VmHWM");
	octo_engine_stats(engine, &queued, &median, &workers);
	printf("jobs=%ld\nfiles_per_job=%ld\nentries=%ld\nworkers=%u\nqueued=%zu\n", jobs, files,
	       jobs * files, workers, queued);
	printf("submit_s=%.3f\nsubmit_ms_per_job=%.3f\n", submit_s, submit_s * 1000 / (double)jobs);
	printf("rss_before_kib=%ld\nrss_kib=%ld\nhwm_kib=%ld\n", rss_before, rss, hwm);
	printf("bytes_per_entry=%.1f\n", (double)(rss - rss_before) * 1024 / (double)(jobs * files));
	/* Every file but those the workers hold must be waiting. */
	if ((long)queued + WORKERS < jobs * files) {
		fprintf(stderr, "queue_rss: %zu files queued, expected %ld\n", queued,
		        jobs * files - WORKERS);
		goto out;
	}
	rc = 0;
out:
	t1 = now_s();
	octo_engine_free(engine);
	octo_store_free(store);
	if (rc == 0)
		printf("free_s=%.3f\n", now_s() - t1);
	return rc;
}
