/* Reads and validates every octopusd setting. Each variable has one line
 * in load_all(), which states its name, range and default. */
#include "config.h"
#include "settings.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef struct {
	const envfile *ef;
	char *err;
	size_t errlen;
	int failed;
} loader;

static const char *lookup(const loader *l, const char *name)
{
	const char *v = getenv(name);

	if (!v || !*v)
		v = envfile_get(l->ef, name);
	return v && *v ? v : NULL;
}

static void bad(loader *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void bad(loader *l, const char *fmt, ...)
{
	va_list ap;

	if (l->failed++)
		return; /* report the first problem */
	va_start(ap, fmt);
	vsnprintf(l->err, l->errlen, fmt, ap);
	va_end(ap);
}

/* Strict unsigned decimal: digits only, no sign, blanks or overflow. */
static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t n = 0;

	if (!*s || strlen(s) > 20)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || n > (max - (uint64_t)(*s - '0')) / 10)
			return -1;
		n = n * 10 + (uint64_t)(*s - '0');
	}
	*out = n;
	return 0;
}

static uint32_t get_u32(loader *l, const char *name, uint32_t min, uint32_t max,
                        uint32_t def)
{
	const char *v = lookup(l, name);
	uint64_t n;

	if (!v)
		return def;
	if (parse_u64(v, max, &n) < 0 || n < min) {
		bad(l, "%s must be an integer from %u to %u (got \"%.40s\")", name, min, max, v);
		return def;
	}
	return (uint32_t)n;
}

static int get_bool(loader *l, const char *name, int def)
{
	const char *v = lookup(l, name);

	if (!v)
		return def;
	if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes"))
		return 1;
	if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no"))
		return 0;
	bad(l, "%s must be true or false (got \"%.40s\")", name, v);
	return def;
}

int settings_parse_port(const char *text, uint16_t *out)
{
	uint64_t n;

	if (!text || parse_u64(text, 65535, &n) < 0)
		return -1;
	*out = (uint16_t)n;
	return 0;
}

int settings_parse_host(const char *text, char *out, size_t size)
{
	unsigned char addr[sizeof(struct in6_addr)];

	if (!text)
		return -1;
	if (strcmp(text, "localhost") == 0)
		text = "127.0.0.1";
	if (inet_pton(AF_INET, text, addr) != 1 && inet_pton(AF_INET6, text, addr) != 1)
		return -1;
	if (strlen(text) >= size)
		return -1;
	strcpy(out, text);
	return 0;
}

/* An origin is scheme://host[:port] with no path: what browsers send. */
static int origin_valid(const char *o, size_t n)
{
	size_t i, start;

	if (n > 7 && strncmp(o, "http://", 7) == 0)
		start = 7;
	else if (n > 8 && strncmp(o, "https://", 8) == 0)
		start = 8;
	else
		return 0;
	for (i = start; i < n; i++) {
		char c = o[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '-' || c == ':' ||
		      c == '[' || c == ']'))
			return 0;
	}
	return 1;
}

/* "*" or a comma-separated list of origins; blanks around commas go. */
static char *get_cors(loader *l)
{
	const char *v = lookup(l, "CORS_ORIGINS"), *p;
	char *list, *o;

	if (!v || strcmp(v, "*") == 0)
		return strdup("*");
	if (!(list = calloc(1, strlen(v) + 1)))
		return NULL;
	for (p = v, o = list; *p;) {
		size_t n;
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		n = strcspn(p, ", \t");
		if (n == 0)
			break;
		if (!origin_valid(p, n)) {
			bad(l, "CORS_ORIGINS must be * or a comma-separated list of "
			       "origins like https://app.example.com (bad: \"%.*s\")",
			    (int)(n > 60 ? 60 : n), p);
			break;
		}
		if (o != list)
			*o++ = ',';
		memcpy(o, p, n);
		o += n;
		p += n;
	}
	if (!l->failed && o == list)
		bad(l, "CORS_ORIGINS lists no origin");
	return list;
}

static char *get_string(loader *l, const char *name)
{
	const char *v = lookup(l, name);
	char *copy = v ? strdup(v) : NULL;

	if (v && !copy)
		bad(l, "out of memory");
	return copy;
}

/* A base URL: scheme://host[:port], one trailing '/' allowed. */
static int base_url_valid(const char *v)
{
	size_t n = strlen(v);

	if (n > 0 && v[n - 1] == '/')
		n--;
	return origin_valid(v, n);
}

/* A base URL that may go on with a path: http(s)://host[:port][/path],
 * the path of URL-safe characters, with no query. */
static int public_base_valid(const char *v)
{
	const char *host = strncmp(v, "http://", 7) == 0    ? v + 7
	                   : strncmp(v, "https://", 8) == 0 ? v + 8
	                                                    : NULL;
	const char *path = host ? strchr(host, '/') : NULL;

	if (!path)
		return base_url_valid(v);
	if (!origin_valid(v, (size_t)(path - v)))
		return 0;
	return strspn(path, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~/") ==
	       strlen(path);
}

/* S3 is on when S3_BUCKET_NAME is set; the other S3_* variables then
 * complete it, and without it they are a mistake worth stopping for.
 * Credentials are never echoed in messages. */
static void get_s3(loader *l, settings *c)
{
	static const char *names[] = {
		"S3_ENDPOINT", "S3_REGION", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY",
		"S3_BUCKET_NAME", "S3_PUBLIC_URL",
	};
	octo_s3_options *o = &c->s3;
	const char *endpoint, *public_url;
	size_t i;

	for (i = 0; i < 6; i++)
		c->s3_strings[i] = get_string(l, names[i]);
	o->timeout_ms = get_u32(l, "OCTO_STORE_TIMEOUT_MS", 100, 600000, 10000);
	o->max_attempts = get_u32(l, "OCTO_STORE_MAX_ATTEMPTS", 1, 10, 4);
	o->tls_verify = get_bool(l, "S3_TLS_VERIFY", 1);
	c->use_s3 = c->s3_strings[4] != NULL;
	o->force_path_style = get_bool(l, "S3_FORCE_PATH_STYLE", c->s3_strings[0] != NULL);
	for (i = 0; i < 6 && !c->use_s3; i++)
		if (c->s3_strings[i] && i != 4)
			bad(l, "%s is set but S3_BUCKET_NAME is not: set S3_BUCKET_NAME to "
			       "store in S3, or unset the S3_* variables to use OCTO_DATA_DIR",
			    names[i]);
	if (!c->use_s3)
		return;
	endpoint = c->s3_strings[0];
	if (endpoint && !base_url_valid(endpoint))
		bad(l, "S3_ENDPOINT must be http://host[:port] or https://host[:port] (got \"%.60s\")",
		    endpoint);
	if (!c->s3_strings[2] || !c->s3_strings[3])
		bad(l, "S3_BUCKET_NAME needs S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY");
	public_url = c->s3_strings[5];
	if (public_url && (strlen(public_url) > 255 || !public_base_valid(public_url)))
		bad(l, "S3_PUBLIC_URL must be http(s)://host[:port][/path] (got \"%.60s\")",
		    public_url);
	if (public_url && !o->force_path_style)
		bad(l, "S3_PUBLIC_URL needs S3_FORCE_PATH_STYLE=true: the bucket must be in "
		       "the URL's path, not in the host it replaces");
	o->public_url = public_url;
	if ((!endpoint || strncmp(endpoint, "https://", 8) == 0) && o->tls_verify &&
	    strstr(octo_store_s3_features(), "tls-verify=no"))
		bad(l, "S3_ENDPOINT uses https, but the libs3 octopusd was built with does "
		       "not verify TLS certificates; set S3_TLS_VERIFY=false to accept "
		       "unverified TLS, or use a libs3 that verifies");
	o->endpoint = endpoint;
	o->region = c->s3_strings[1] ? c->s3_strings[1] : "us-east-1";
	o->access_key_id = c->s3_strings[2];
	o->secret_access_key = c->s3_strings[3];
	o->bucket = c->s3_strings[4];
}

static void get_engine(loader *l, settings *c)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned def = (unsigned)(cores > 0 ? cores : 1) * 4;
	const char *v = lookup(l, "OCTO_PROCESSOR");

	c->engine.workers = get_u32(l, "OCTO_WORKERS", 1, 1024, def > 1024 ? 1024 : def);
	c->engine.queue_max = get_u32(l, "OCTO_QUEUE_MAX", 1, 10000000, 100000);
	c->engine.max_attempts = get_u32(l, "OCTO_MAX_ATTEMPTS", 1, 100, 3);
	c->engine.file_timeout_ms = get_u32(l, "OCTO_FILE_TIMEOUT_MS", 100, 86400000, 300000);
	c->shutdown_grace_s = get_u32(l, "OCTO_SHUTDOWN_GRACE_S", 0, 3600, 30);
	c->engine.retention_s = get_u32(l, "JOB_RETENTION_S", 0, 31536000, 86400);
	c->engine.client_max_active = get_u32(l, "OCTO_CLIENT_MAX_ACTIVE", 0, 100000, 0);
	c->trusted_proxies = get_string(l, "TRUSTED_PROXIES");
	c->api.trusted_proxies = c->trusted_proxies;
	c->engine.webhook_timeout_ms = get_u32(l, "OCTO_WEBHOOK_TIMEOUT_MS", 100, 600000, 10000);
	c->engine.webhook_max_attempts = get_u32(l, "OCTO_WEBHOOK_MAX_ATTEMPTS", 1, 100, 8);
	c->webhook_secret = get_string(l, "OCTO_WEBHOOK_SECRET");
	if (c->webhook_secret && strlen(c->webhook_secret) < 16)
		bad(l, "OCTO_WEBHOOK_SECRET must be at least 16 characters (or whsec_<base64>)");
	c->engine.webhook_secret = c->webhook_secret;
	c->origin_url = get_string(l, "OCTO_ORIGIN_URL");
	c->use_origin = v && strcmp(v, "origin") == 0;
	if (v && strcmp(v, "simulate") != 0 && !c->use_origin)
		bad(l, "OCTO_PROCESSOR must be simulate or origin (got \"%.40s\")", v);
	if (c->use_origin && (!c->origin_url || !strstr(c->origin_url, "{file_id}") ||
	                      (strncmp(c->origin_url, "http://", 7) != 0 &&
	                       strncmp(c->origin_url, "https://", 8) != 0) ||
	                      strlen(c->origin_url) > 2048))
		bad(l, "OCTO_PROCESSOR=origin needs OCTO_ORIGIN_URL, an http(s) URL with "
		       "{file_id} in it, e.g. https://files.example.com/{file_id}.zip");
}

static void get_urls(loader *l, settings *c)
{
	c->api.url_ttl_s = get_u32(l, "DOWNLOAD_URL_TTL_S", 1, 7 * 86400, 3600);
	c->api.health_cache_ms = get_u32(l, "OCTO_HEALTH_CACHE_MS", 0, 60000, 1000);
	c->api.sse_heartbeat_ms = get_u32(l, "OCTO_SSE_HEARTBEAT_MS", 100, 600000, 15000);
	c->public_url = get_string(l, "OCTO_PUBLIC_URL");
	if (c->public_url && (strlen(c->public_url) > 255 || !base_url_valid(c->public_url)))
		bad(l, "OCTO_PUBLIC_URL must be http://host[:port] or https://host[:port] (got \"%.60s\")",
		    c->public_url);
	c->api.public_url = c->public_url;
	c->url_secret = get_string(l, "OCTO_URL_SECRET");
	if (c->url_secret && strlen(c->url_secret) < 32)
		bad(l, "OCTO_URL_SECRET must be at least 32 characters");
}

static void get_log(loader *l, settings *c)
{
	const char *v = lookup(l, "LOG_LEVEL");

	c->log.level = OCTO_LOG_INFO;
	if (v && octo_log_level_parse(v, &c->log.level) < 0)
		bad(l, "LOG_LEVEL must be debug, info, warn or error (got \"%.40s\")", v);
	c->log_file = get_string(l, "LOG_FILE");
	if (c->log_file && strlen(c->log_file) > 4096)
		bad(l, "LOG_FILE must be a path of at most 4096 bytes");
	c->log.path = c->log_file;
	c->elasticsearch_url = get_string(l, "ELASTICSEARCH_URL");
	if (c->elasticsearch_url && (strlen(c->elasticsearch_url) > 255 ||
	                             !base_url_valid(c->elasticsearch_url)))
		bad(l, "ELASTICSEARCH_URL must be http://host[:port] or https://host[:port] "
		       "(got \"%.60s\")", c->elasticsearch_url);
	c->log.elasticsearch_url = c->elasticsearch_url;
}

static void load_all(loader *l, settings *c)
{
	const char *v;

	v = lookup(l, "PORT");
	if (v && settings_parse_port(v, &c->port) < 0)
		bad(l, "PORT must be an integer from 0 to 65535 (got \"%.40s\")", v);
	v = lookup(l, "HOST");
	if (v && settings_parse_host(v, c->host, sizeof(c->host)) < 0)
		bad(l, "HOST must be a numeric IPv4 or IPv6 address or localhost (got \"%.60s\")", v);
	v = lookup(l, "OCTO_DATA_DIR");
	c->data_dir = strdup(v ? v : "./data");
	c->request_timeout_ms = get_u32(l, "REQUEST_TIMEOUT_MS", 1000, 3600000, 30000);
	c->api.start_wait_ms = c->request_timeout_ms;
	c->max_connections = get_u32(l, "OCTO_MAX_CONNECTIONS", 1, 100000, 1024);
	c->http_threads = get_u32(l, "OCTO_HTTP_THREADS", 0, 1024, 0);
	c->api.max_body_bytes = get_u32(l, "OCTO_MAX_BODY_BYTES", 64, 16 * 1024 * 1024, 64 * 1024);
	c->api.rate_limit_window_ms = get_u32(l, "RATE_LIMIT_WINDOW_MS", 1, 86400000, 60000);
	c->api.rate_limit_max = get_u32(l, "RATE_LIMIT_MAX_REQUESTS", 0, 1000000000, 100);
	c->api.download_delay_enabled = get_bool(l, "DOWNLOAD_DELAY_ENABLED", 1);
	c->api.download_delay_min_ms = get_u32(l, "DOWNLOAD_DELAY_MIN_MS", 0, 3600000, 10000);
	c->api.download_delay_max_ms = get_u32(l, "DOWNLOAD_DELAY_MAX_MS", 0, 3600000, 120000);
	if (c->api.download_delay_min_ms > c->api.download_delay_max_ms)
		bad(l, "DOWNLOAD_DELAY_MIN_MS (%u) must not exceed DOWNLOAD_DELAY_MAX_MS (%u)",
		    c->api.download_delay_min_ms, c->api.download_delay_max_ms);
	get_log(l, c);
	c->cors_origins = get_cors(l);
	c->api.cors_origins = c->cors_origins;
	get_s3(l, c);
	get_urls(l, c);
	get_engine(l, c);
}

int settings_load(settings *cfg, const envfile *ef, char *err, size_t errlen)
{
	static const octo_api_options api_defaults = OCTO_API_OPTIONS_INIT;
	static const octo_s3_options s3_defaults = OCTO_S3_OPTIONS_INIT;
	static const octo_engine_options engine_defaults = OCTO_ENGINE_OPTIONS_INIT;
	static const octo_log_options log_defaults = OCTO_LOG_OPTIONS_INIT;
	loader l = { ef, err, errlen, 0 };

	memset(cfg, 0, sizeof(*cfg));
	strcpy(cfg->host, "0.0.0.0");
	cfg->port = 3000;
	cfg->api = api_defaults;
	cfg->s3 = s3_defaults;
	cfg->engine = engine_defaults;
	cfg->log = log_defaults;
	load_all(&l, cfg);
	if (!l.failed && (!cfg->data_dir || !cfg->cors_origins))
		bad(&l, "out of memory");
	if (l.failed) {
		settings_free(cfg);
		return -1;
	}
	return 0;
}

void settings_free(settings *cfg)
{
	size_t i;

	free(cfg->data_dir);
	free(cfg->cors_origins);
	free(cfg->public_url);
	if (cfg->url_secret)
		explicit_bzero(cfg->url_secret, strlen(cfg->url_secret));
	free(cfg->url_secret);
	free(cfg->origin_url);
	free(cfg->log_file);
	free(cfg->elasticsearch_url);
	cfg->log_file = cfg->elasticsearch_url = NULL;
	cfg->log.path = cfg->log.elasticsearch_url = NULL;
	cfg->origin_url = NULL;
	free(cfg->trusted_proxies);
	cfg->trusted_proxies = NULL;
	cfg->api.trusted_proxies = NULL;
	if (cfg->webhook_secret)
		explicit_bzero(cfg->webhook_secret, strlen(cfg->webhook_secret));
	free(cfg->webhook_secret);
	cfg->webhook_secret = NULL;
	cfg->engine.webhook_secret = NULL;
	if (cfg->s3_strings[3])
		explicit_bzero(cfg->s3_strings[3], strlen(cfg->s3_strings[3]));
	for (i = 0; i < 6; i++) {
		free(cfg->s3_strings[i]);
		cfg->s3_strings[i] = NULL;
	}
	cfg->data_dir = cfg->cors_origins = cfg->public_url = cfg->url_secret = NULL;
	cfg->api.cors_origins = cfg->api.public_url = NULL;
	cfg->s3.endpoint = cfg->s3.access_key_id = cfg->s3.secret_access_key = NULL;
	cfg->s3.bucket = cfg->s3.public_url = NULL;
	cfg->use_s3 = 0;
}
