/* octopusd: the Octopus download service over libmicrohttpd.
 * Reads its configuration, opens the store, serves until SIGINT/SIGTERM;
 * SIGHUP reopens LOG_FILE (after logrotate moved it). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <octopus/octopus.h>

#include "envfile.h"
#include "http.h"
#include "processor.h"
#include "settings.h"

static const char usage[] =
	"Usage: octopusd [--env-file FILE] [--host ADDRESS] [--port PORT]\n"
	"       octopusd --help | --version\n"
	"\n"
	"Serves the Octopus download API. Settings come from the environment\n"
	"(see README.md), then from FILE for variables the environment lacks;\n"
	"--host and --port override HOST and PORT. PORT 0 picks a free port.\n";

typedef struct {
	const char *env_file;
	const char *host;
	const char *port;
} flags;

/* 0: go on; 1: done, exit 0; -1: bad usage. */
static int parse_flags(int argc, char **argv, flags *f)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char **slot = NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			fputs(usage, stdout);
			return 1;
		}
		if (strcmp(a, "--version") == 0) {
			printf("octopusd %s (libocto %s; storage: local, s3 %s)\n", PACKAGE_VERSION,
			       octo_version(), octo_store_s3_features());
			return 1;
		}
		if (strcmp(a, "--env-file") == 0)
			slot = &f->env_file;
		else if (strcmp(a, "--host") == 0)
			slot = &f->host;
		else if (strcmp(a, "--port") == 0)
			slot = &f->port;
		if (!slot) {
			fprintf(stderr, "octopusd: unknown argument '%s'\n%s", a, usage);
			return -1;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "octopusd: %s needs a value\n", a);
			return -1;
		}
		*slot = argv[++i];
	}
	return 0;
}

static int apply_flags(const flags *f, settings *cfg)
{
	if (f->port && settings_parse_port(f->port, &cfg->port) < 0) {
		fprintf(stderr, "octopusd: --port must be an integer from 0 to 65535\n");
		return -1;
	}
	if (f->host && settings_parse_host(f->host, cfg->host, sizeof(cfg->host)) < 0) {
		fprintf(stderr, "octopusd: --host must be a numeric IPv4 or IPv6 address or localhost\n");
		return -1;
	}
	return 0;
}

static int load_config(const flags *f, settings *cfg)
{
	char err[512];
	envfile *ef = NULL;
	int rc;

	if (f->env_file && envfile_load(&ef, f->env_file, err, sizeof(err)) < 0) {
		fprintf(stderr, "octopusd: --env-file %s\n", err);
		return -1;
	}
	rc = settings_load(cfg, ef, err, sizeof(err));
	envfile_free(ef);
	if (rc < 0) {
		fprintf(stderr, "octopusd: configuration: %s\n", err);
		return -1;
	}
	if (apply_flags(f, cfg) < 0) {
		settings_free(cfg);
		return -1;
	}
	return 0;
}

/* Blocks SIGINT/SIGTERM in every thread (they inherit the mask) so that
 * the main thread alone receives them, synchronously, with sigwait(). */
static void block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

#define SECRET_FILE ".url-secret"

/* The key that signs local download URLs: OCTO_URL_SECRET, else one made
 * at first start and kept in the data directory, so URLs stay valid
 * across restarts and replicas sharing the directory agree. */
static int load_url_secret(settings *cfg, char *out, size_t size)
{
	char path[4096], hex[65];
	unsigned char raw[32];
	ssize_t n;
	int fd, i;

	if (cfg->url_secret) {
		snprintf(out, size, "%s", cfg->url_secret);
		return 0;
	}
	snprintf(path, sizeof(path), "%s/" SECRET_FILE, cfg->data_dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		int rfd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
		if (rfd < 0 || read(rfd, raw, sizeof(raw)) != (ssize_t)sizeof(raw)) {
			if (rfd >= 0)
				close(rfd);
			return -1;
		}
		close(rfd);
		for (i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", raw[i]);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0) {
			int ok = write(fd, hex, 64) == 64 && fsync(fd) == 0;
			close(fd);
			if (!ok)
				return -1;
		}
		fd = open(path, O_RDONLY | O_CLOEXEC); /* ours, or a racing replica's */
	}
	if (fd < 0)
		return -1;
	n = read(fd, out, size - 1);
	close(fd);
	if (n < 32)
		return -1;
	out[n] = '\0';
	return 0;
}

/* What octopusd observes itself with, made before anything that reports. */
typedef struct {
	octo_log *log;
	octo_metrics *metrics;
} observer;

static void say(const observer *o, octo_log_level level, const char *message)
{
	octo_log_write(o->log, level, message, NULL, 0);
}

static double log_dropped(void *payload)
{
	octo_log_stats stats;

	octo_log_get_stats(payload, &stats);
	return (double)stats.dropped;
}

static int observe(const settings *cfg, observer *o)
{
	if (octo_log_new(&o->log, &cfg->log) < 0) {
		fprintf(stderr, "octopusd: logging: %s\n", octo_error_last());
		return -1;
	}
	if (octo_metrics_new(&o->metrics) < 0 ||
	    octo_metrics_add_process(o->metrics) < 0 ||
	    octo_metrics_counter_fn(o->metrics, "log_records_dropped_total",
	                            "Log records that never reached Elasticsearch.",
	                            log_dropped, o->log) < 0) {
		fprintf(stderr, "octopusd: metrics: %s\n", octo_error_last());
		return -1;
	}
	return 0;
}

static int open_store(settings *cfg, const observer *o, octo_store **store, char *secret,
                      size_t size)
{
	if (cfg->use_s3) {
		if (octo_store_open_s3(store, &cfg->s3) < 0) {
			fprintf(stderr, "octopusd: S3 storage: %s\n", octo_error_last());
			return -1;
		}
		if (octo_store_set_metrics(*store, o->metrics) < 0)
			return -1;
		if (!cfg->s3.tls_verify)
			say(o, OCTO_LOG_WARN, "S3_TLS_VERIFY=false: the S3 server's TLS "
			                      "certificate is not verified");
		if (octo_store_ping(*store) < 0)
			say(o, OCTO_LOG_WARN, "S3 storage is not reachable yet; /health "
			                      "reports it until it is");
		return 0;
	}
	if (octo_store_open_local(store, cfg->data_dir) < 0 ||
	    octo_store_set_metrics(*store, o->metrics) < 0) {
		fprintf(stderr, "octopusd: OCTO_DATA_DIR %s: %s\n", cfg->data_dir, octo_error_last());
		return -1;
	}
	if (load_url_secret(cfg, secret, size) < 0) {
		fprintf(stderr, "octopusd: cannot read or create %s/" SECRET_FILE
		                " (or set OCTO_URL_SECRET)\n", cfg->data_dir);
		return -1;
	}
	cfg->api.url_secret = (const unsigned char *)secret;
	cfg->api.url_secret_len = strlen(secret);
	return 0;
}

/* Loads every job the store holds and starts the workers: whatever was
 * accepted before a crash or a stop goes on from here. */
static int start_engine(settings *cfg, const observer *o, octo_store *store,
                        simulate_options *sim, origin_options *origin, octo_engine **engine)
{
	octo_processor processor = cfg->use_origin ? processor_origin : processor_simulate;
	void *payload = cfg->use_origin ? (void *)origin : (void *)sim;

	cfg->engine.metrics = o->metrics;
	cfg->engine.log = o->log;
	if (octo_engine_new(engine, store, processor, payload, &cfg->engine) < 0 ||
	    octo_engine_start(*engine, NULL) < 0) {
		fprintf(stderr, "octopusd: jobs: %s\n", octo_error_last());
		return -1;
	}
	return 0;
}

/* Serves until SIGINT or SIGTERM; SIGHUP only reopens the log file. */
static int wait_for_stop(const sigset_t *signals, const observer *o)
{
	int sig = 0;

	while (sigwait(signals, &sig) == 0 && sig == SIGHUP)
		if (octo_log_reopen(o->log) < 0)
			fprintf(stderr, "octopusd: LOG_FILE: %s\n", octo_error_last());
	return sig;
}

static int serve(settings *cfg, const sigset_t *signals)
{
	simulate_options sim = { cfg->api.download_delay_enabled, cfg->api.download_delay_min_ms,
	                         cfg->api.download_delay_max_ms };
	origin_options origin = { cfg->origin_url, 30 };
	observer o = { NULL, NULL };
	octo_store *store = NULL;
	octo_engine *engine = NULL;
	octo_api *api = NULL;
	http_server *srv = NULL;
	char err[512], line[160], secret[512] = "";
	uint16_t port;
	int sig, rc = -1;

	if (observe(cfg, &o) < 0 || open_store(cfg, &o, &store, secret, sizeof(secret)) < 0 ||
	    start_engine(cfg, &o, store, &sim, &origin, &engine) < 0)
		goto out;
	cfg->api.engine = engine;
	cfg->api.metrics = o.metrics;
	if ((rc = octo_api_new(&api, store, &cfg->api)) < 0) {
		/* Options libocto checks itself, such as TRUSTED_PROXIES. */
		fprintf(stderr, "octopusd: %s%s\n", rc == OCTO_EINVAL ? "configuration: " : "",
		        octo_error_last());
		rc = rc == OCTO_EINVAL ? -2 : -1;
		goto out;
	}
	rc = -1;
	if (http_start(&srv, api, cfg, o.log, o.metrics, &port, err, sizeof(err)) < 0) {
		fprintf(stderr, "octopusd: %s\n", err);
		goto out;
	}
	printf("octopusd listening on http://%s%s%s:%u (store: %s %s)\n",
	       strchr(cfg->host, ':') ? "[" : "", cfg->host,
	       strchr(cfg->host, ':') ? "]" : "", port, octo_store_backend(store),
	       cfg->use_s3 ? cfg->s3.bucket : cfg->data_dir);
	fflush(stdout);
	snprintf(line, sizeof(line), "listening on port %u", port);
	say(&o, OCTO_LOG_INFO, line);
	sig = wait_for_stop(signals, &o);
	snprintf(line, sizeof(line), "received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
	say(&o, OCTO_LOG_INFO, line);
	rc = 0;
out:
	/* No new requests first, then running files get their grace period;
	 * whatever is left stays pending in the store for the next start. */
	http_stop(srv);
	octo_engine_shutdown(engine, cfg->shutdown_grace_s * 1000);
	octo_api_free(api);
	octo_engine_free(engine);
	octo_store_free(store);
	octo_metrics_free(o.metrics);
	octo_log_free(o.log); /* last: ships what is still buffered */
	explicit_bzero(secret, sizeof(secret));
	return rc;
}

int main(int argc, char **argv)
{
	flags f = { NULL, NULL, NULL };
	sigset_t signals;
	settings cfg;
	int rc;

	rc = parse_flags(argc, argv, &f);
	if (rc != 0)
		return rc > 0 ? 0 : 2;
	if (load_config(&f, &cfg) < 0)
		return 2;
	block_signals(&signals);
	rc = serve(&cfg, &signals);
	settings_free(&cfg);
	return rc == -2 ? 2 : rc < 0 ? 1 : 0; /* 2: bad configuration, as above */
}
