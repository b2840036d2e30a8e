/* Job records read back from storage may be corrupt or hostile. The input
 * is stored as jobs/<uuid>.json in a local store; an engine (one worker,
 * fuzz_processor) resumes it with octo_engine_start() and is shut down.
 * Beyond not crashing or leaking:
 *  - a record that is not JSON is skipped (skipped == 1), and at most the
 *    one record is ever skipped;
 *  - a record is skipped or resumed, never both or neither: the engine
 *    knows the job the record names exactly when it did not skip it;
 *  - a resumed job is the one the record's name says (its jobId is the
 *    <uuid> of jobs/<uuid>.json), and its snapshot parses, with that id;
 *  - what the engine left in the store resumes again: a second engine
 *    skips nothing and knows the job. */
#include "config.h"
#include "fuzzutil.h"

#include <stdio.h>
#include <string.h>

#define JOB_ID "6f1c2d3e-4a5b-4c6d-8e7f-901a2b3c4d5e"
#define RECORD "jobs/" JOB_ID ".json"

static char dir[256];
static octo_store *store;
static octo_metrics *metrics;
static octo_log *logger;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	octo_log_options lo = OCTO_LOG_OPTIONS_INIT;
	char data[300];

	(void)argc;
	(void)argv;
	fuzz_tmpdir(dir);
	snprintf(data, sizeof(data), "%s/data", dir);
	lo.path = "/dev/null";
	FUZZ_CHECK(octo_store_open_local(&store, data) == 0 && octo_metrics_new(&metrics) == 0 &&
	           octo_log_new(&logger, &lo) == 0, "setup: %s", octo_error_last());
	return 0;
}

/* Starts an engine over the store; *skipped as octo_engine_start says. */
static octo_engine *start(size_t *skipped)
{
	octo_engine_options o = OCTO_ENGINE_OPTIONS_INIT;
	octo_engine *e = NULL;
	int rc;

	o.workers = 1;
	o.metrics = metrics;
	o.log = logger;
	FUZZ_CHECK(octo_engine_new(&e, store, fuzz_processor, NULL, &o) == 0, "engine: %s",
	           octo_error_last());
	rc = octo_engine_start(e, skipped);
	FUZZ_CHECK(rc == 0, "octo_engine_start: %s", octo_error_last());
	return e;
}

static void check_snapshot(octo_engine *e, const char *job_id)
{
	octo_json *doc = NULL;
	const char *id = NULL;
	char *text = NULL;

	FUZZ_CHECK(octo_engine_snapshot(e, job_id, &text) == 0 &&
	           octo_json_parse(&doc, text, strlen(text)) == 0 &&
	           octo_json_string(octo_json_get(octo_json_root(doc), "jobId"), &id) == 0 &&
	           strcmp(id, job_id) == 0, "no snapshot of a resumed job: %s", text ? text : "");
	octo_json_free(doc);
	octo_free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	octo_json *doc = NULL;
	const char *job_id = NULL;
	size_t skipped = 99;
	octo_engine *e;
	uint64_t seq;
	int parsed, known;

	FUZZ_CHECK(octo_store_put(store, RECORD, data, size) == 0, "put: %s", octo_error_last());
	parsed = octo_json_parse(&doc, (const char *)data, size) == 0;
	if (parsed)
		octo_json_string(octo_json_get(octo_json_root(doc), "jobId"), &job_id);
	e = start(&skipped);
	known = job_id && octo_engine_seq(e, job_id, &seq) == 0;
	FUZZ_CHECK(skipped <= 1, "%zu records skipped of 1", skipped);
	FUZZ_CHECK(parsed || skipped == 1, "a record that is no JSON was not skipped");
	FUZZ_CHECK(known == (skipped == 0), "skipped %zu, and the job %s is %s", skipped,
	           job_id ? job_id : "(none)", known ? "known" : "unknown");
	if (known) {
		FUZZ_CHECK(strcmp(job_id, JOB_ID) == 0,
		           "the record " RECORD " was resumed as job \"%s\"", job_id);
		check_snapshot(e, job_id);
	}
	octo_engine_shutdown(e, 0);
	octo_engine_free(e);
	if (known) {
		e = start(&skipped);
		FUZZ_CHECK(skipped == 0 && octo_engine_seq(e, job_id, &seq) == 0,
		           "a resumed job does not resume again (skipped %zu)", skipped);
		octo_engine_free(e);
	}
	octo_json_free(doc);
	fuzz_store_clear(store, "jobs/");
	fuzz_store_clear(store, "downloads/");
	return 0;
}
