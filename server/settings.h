/* octopusd's configuration: environment variables (12-factor), optionally
 * backed by a .env file, validated all at once at start-up. */
#ifndef OCTOPUSD_SETTINGS_H
#define OCTOPUSD_SETTINGS_H

#include <stdint.h>

#include <octopus/api.h>
#include <octopus/log.h>

#include "envfile.h"

typedef struct {
	char host[64];               /* numeric address to bind */
	uint16_t port;               /* 0: any free port */
	char *data_dir;              /* embedded store directory */
	uint32_t request_timeout_ms; /* idle connection timeout */
	uint32_t max_connections;
	uint32_t http_threads;       /* OCTO_HTTP_THREADS; 0: by the cores */
	octo_log_options log;        /* LOG_LEVEL, LOG_FILE, ELASTICSEARCH_URL */
	char *log_file;
	char *elasticsearch_url;
	octo_api_options api;        /* its strings point into this struct */
	char *cors_origins;
	char *public_url;            /* OCTO_PUBLIC_URL, or NULL */
	char *url_secret;            /* OCTO_URL_SECRET, or NULL: see main.c */
	octo_engine_options engine;  /* OCTO_WORKERS, OCTO_QUEUE_MAX, ... */
	uint32_t shutdown_grace_s;   /* running files may finish this long */
	char *webhook_secret;        /* OCTO_WEBHOOK_SECRET, or NULL */
	int use_origin;              /* OCTO_PROCESSOR=origin */
	char *origin_url;            /* OCTO_ORIGIN_URL, or NULL */
	char *trusted_proxies;       /* TRUSTED_PROXIES, or NULL (checked by libocto) */
	int use_s3;                  /* S3_BUCKET_NAME is set */
	octo_s3_options s3;          /* its strings point into s3_strings */
	char *s3_strings[6];         /* endpoint, region, key id, secret, bucket,
	                                public URL */
} settings;

/* Fills `cfg` from the environment, falling back to `ef` (may be NULL) for
 * variables the environment lacks; an empty value counts as unset. On a
 * bad value returns -1 with a message naming the variable in `err`. */
int settings_load(settings *cfg, const envfile *ef, char *err, size_t errlen);

/* Releases what settings_load() allocated. */
void settings_free(settings *cfg);

/* Parses a port ("0".."65535") as the --port flag and PORT take it. */
int settings_parse_port(const char *text, uint16_t *out);

/* Parses a numeric IPv4/IPv6 address or "localhost" as --host and HOST
 * take it, into `out` (numeric form). */
int settings_parse_host(const char *text, char *out, size_t size);

#endif
