/* Adding libocto's metrics and JSON logging to an existing program, and
 * serving /metrics for Prometheus with libmicrohttpd. The "work" here is
 * a loop of fake requests; yours would be whatever the program does.
 * Usage: observe [PORT]   (serves until Ctrl-C; PORT 0 picks one)
 *        observe --check  (serves on a free port, scrapes itself once
 *                          with libcurl, checks the text, exits) */
#include <curl/curl.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <octopus/octopus.h>

static octo_metrics *registry;

static enum MHD_Result serve(void *cls, struct MHD_Connection *conn, const char *url,
                             const char *method, const char *version, const char *upload,
                             size_t *upload_size, void **state)
{
	struct MHD_Response *r;
	enum MHD_Result ok;
	char *text = NULL;
	size_t len = 0;
	int status = MHD_HTTP_OK;

	(void)cls, (void)version, (void)upload, (void)upload_size, (void)state;
	if (strcmp(method, "GET") != 0 || strcmp(url, "/metrics") != 0 ||
	    octo_metrics_render(registry, &text, &len) < 0)
		status = MHD_HTTP_NOT_FOUND;
	r = MHD_create_response_from_buffer(len, text ? text : (char *)"", MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(r, "Content-Type", OCTO_METRICS_CONTENT_TYPE);
	ok = MHD_queue_response(conn, (unsigned)status, r);
	MHD_destroy_response(r);
	octo_free(text);
	return ok;
}

/* The program's own work, instrumented: a counter by outcome, a latency
 * histogram and a log line with typed fields per unit of work. */
static void work(octo_log *log, octo_metric *done, octo_metric *seconds, int n)
{
	const char *ok[] = { "ok", NULL }, *failed[] = { "failed", NULL };
	octo_metric *ok_count, *failed_count;
	int i;

	octo_metrics_with(&ok_count, done, ok);
	octo_metrics_with(&failed_count, done, failed);
	for (i = 0; i < n; i++) {
		double took = 0.001 * (i % 7);
		octo_log_field f[] = { OCTO_LOG_INT("item", i), OCTO_LOG_DOUBLE("duration_ms", took * 1000) };
		octo_metrics_inc(i % 5 ? ok_count : failed_count);
		octo_metrics_observe(seconds, took);
		octo_log_write(log, i % 5 ? OCTO_LOG_DEBUG : OCTO_LOG_WARN, "item processed", f, 2);
	}
}

static size_t collect(char *data, size_t size, size_t n, void *out)
{
	strncat(out, data, size * n < 60000 - strlen(out) ? size * n : 60000 - strlen(out) - 1);
	return size * n;
}

/* Scrapes ourselves as Prometheus would and checks what it saw. */
static int self_check(unsigned port)
{
	static char body[60001];
	char url[64];
	CURL *c = curl_easy_init();
	int ok;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics", port);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, (void *)body);
	ok = curl_easy_perform(c) == CURLE_OK &&
	     strstr(body, "items_total{outcome=\"ok\"} 80\n") &&
	     strstr(body, "items_total{outcome=\"failed\"} 20\n") &&
	     strstr(body, "item_duration_seconds_count 100\n") &&
	     strstr(body, "process_resident_memory_bytes ");
	curl_easy_cleanup(c);
	fputs(body, stdout);
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	static const char *const outcome[] = { "outcome", NULL };
	octo_log_options lo = OCTO_LOG_OPTIONS_INIT;
	int check = argc > 1 && strcmp(argv[1], "--check") == 0, rc = 1;
	unsigned port = check || argc < 2 ? 0 : (unsigned)atoi(argv[1]);
	octo_metric *done, *seconds;
	struct MHD_Daemon *d = NULL;
	octo_log *log = NULL;
	sigset_t stop;

	lo.service = "observe-example";
	if (octo_log_new(&log, &lo) < 0 || octo_metrics_new(&registry) < 0 ||
	    octo_metrics_add_process(registry) < 0 ||
	    octo_metrics_counter(&done, registry, "items_total", "Items processed, by outcome.", outcome) < 0 ||
	    octo_metrics_histogram(&seconds, registry, "item_duration_seconds", "Time per item.",
	                           NULL, NULL, 0) < 0) {
		fprintf(stderr, "observe: %s\n", octo_error_last());
		goto out;
	}
	work(log, done, seconds, 100);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)port, NULL, NULL, serve, NULL,
	                     MHD_OPTION_END);
	if (!d)
		goto out;
	port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
	if (check) {
		rc = self_check(port);
		goto out;
	}
	printf("metrics on http://127.0.0.1:%u/metrics (Ctrl-C stops)\n", port);
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigprocmask(SIG_BLOCK, &stop, NULL);
	sigwait(&stop, &rc);
	rc = 0;
out:
	if (d)
		MHD_stop_daemon(d);
	octo_metrics_free(registry);
	octo_log_free(log);
	return rc;
}
