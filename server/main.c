/* octopusd: the Octopus download service over libmicrohttpd.
 * Reads its configuration, opens the store, serves until SIGINT/SIGTERM. */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <octopus/octopus.h>

#include "envfile.h"
#include "http.h"
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
			printf("octopusd %s (libocto %s; storage: local)\n", PACKAGE_VERSION,
			       octo_version());
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
	pthread_sigmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static int serve(settings *cfg, const sigset_t *signals)
{
	octo_store *store = NULL;
	octo_api *api = NULL;
	http_server *srv = NULL;
	char err[512], line[160];
	uint16_t port;
	int sig = 0, rc = -1;

	if (octo_store_open_local(&store, cfg->data_dir) < 0) {
		fprintf(stderr, "octopusd: OCTO_DATA_DIR %s: %s\n", cfg->data_dir, octo_error_last());
		goto out;
	}
	if (octo_api_new(&api, store, &cfg->api) < 0) {
		fprintf(stderr, "octopusd: %s\n", octo_error_last());
		goto out;
	}
	if (http_start(&srv, api, cfg, &port, err, sizeof(err)) < 0) {
		fprintf(stderr, "octopusd: %s\n", err);
		goto out;
	}
	printf("octopusd listening on http://%s%s%s:%u (store: %s)\n",
	       strchr(cfg->host, ':') ? "[" : "", cfg->host,
	       strchr(cfg->host, ':') ? "]" : "", port, cfg->data_dir);
	fflush(stdout);
	snprintf(line, sizeof(line), "listening on port %u", port);
	http_log(cfg, LOG_INFO, line);
	sigwait(signals, &sig);
	snprintf(line, sizeof(line), "received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
	http_log(cfg, LOG_INFO, line);
	rc = 0;
out:
	http_stop(srv);
	octo_api_free(api);
	octo_store_free(store);
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
	return rc < 0 ? 1 : 0;
}
