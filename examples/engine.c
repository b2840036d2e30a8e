/* Embedding the job engine: a program that prepares "files" with its own
 * processor, submits one job, and waits for it to end. Jobs are durable:
 * kill it mid-way and run it again on the same directory, and the job
 * resumes. Usage: engine DIRECTORY */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <octopus/octopus.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static unsigned changes;

/* Prepares one file: here, writes a small text object in four steps. */
static int make_file(octo_task *task, void *payload)
{
	char text[64];
	int step, n;

	(void)payload;
	for (step = 1; step <= 4; step++) {
		if (octo_task_sleep(task, 50) < 0)
			return OCTO_EABORTED; /* cancelled or shutting down */
		octo_task_progress(task, step / 4.0);
	}
	n = snprintf(text, sizeof(text), "file %lld\n", (long long)octo_task_file_id(task));
	return octo_store_put(octo_task_store(task), octo_task_key(task), text, (size_t)n);
}

/* Called after every change of any job (resumed ones too). */
static void on_change(const char *job_id, uint64_t seq, int finished, void *payload)
{
	(void)job_id;
	(void)seq;
	(void)finished;
	(void)payload;
	pthread_mutex_lock(&lock);
	changes++;
	pthread_cond_signal(&changed);
	pthread_mutex_unlock(&lock);
}

/* Has our job ended? Its status says; *status is replaced. */
static int ended(octo_engine *engine, const char *job_id, char **status)
{
	octo_free(*status);
	*status = NULL;
	if (octo_engine_snapshot(engine, job_id, status) < 0)
		return 1;
	return !strstr(*status, "\"status\":\"queued\"") &&
	       !strstr(*status, "\"status\":\"processing\"");
}

int main(int argc, char **argv)
{
	const int64_t files[] = { 70000, 70001, 70002 };
	octo_engine_options opts = OCTO_ENGINE_OPTIONS_INIT;
	char job_id[OCTO_JOB_ID_LEN + 1], *status = NULL;
	octo_store *store = NULL;
	octo_engine *engine = NULL;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIRECTORY\n", argv[0]);
		return 2;
	}
	opts.workers = 2;
	if ((rc = octo_store_open_local(&store, argv[1])) < 0 ||
	    (rc = octo_engine_new(&engine, store, make_file, NULL, &opts)) < 0)
		goto out;
	octo_engine_set_listener(engine, on_change, NULL);
	if ((rc = octo_engine_start(engine, NULL)) < 0 ||
	    (rc = octo_engine_submit(engine, files, 3, job_id)) < 0)
		goto out;
	pthread_mutex_lock(&lock);
	while (!ended(engine, job_id, &status)) {
		unsigned seen = changes;
		while (changes == seen)
			pthread_cond_wait(&changed, &lock);
	}
	pthread_mutex_unlock(&lock);
	printf("%s\n", status ? status : "no status");
	rc = status && strstr(status, "\"status\":\"completed\"") ? 0 : OCTO_ERROR;
out:
	if (rc < 0)
		fprintf(stderr, "engine: %s: %s\n", octo_strerror(rc), octo_error_last());
	octo_free(status);
	octo_engine_shutdown(engine, 1000);
	octo_engine_free(engine);
	octo_store_free(store);
	return rc < 0 ? 1 : 0;
}
