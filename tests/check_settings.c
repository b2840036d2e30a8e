/* octopusd's settings: defaults, each variable from the environment or a
 * .env file, rejection of bad values naming the variable, and the --port
 * and --host parsers. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../server/envfile.h"
#include "../server/settings.h"
#include "testutil.h"

#define N_ELEMS(a) (int)(sizeof(a) / sizeof((a)[0]))

/* Every variable settings_load() reads. */
static const char *const all_names[] = {
	"PORT", "HOST", "OCTO_DATA_DIR", "REQUEST_TIMEOUT_MS", "OCTO_MAX_CONNECTIONS",
	"OCTO_HTTP_THREADS",
	"OCTO_MAX_BODY_BYTES", "RATE_LIMIT_WINDOW_MS", "RATE_LIMIT_MAX_REQUESTS",
	"DOWNLOAD_DELAY_ENABLED", "DOWNLOAD_DELAY_MIN_MS", "DOWNLOAD_DELAY_MAX_MS",
	"LOG_LEVEL", "LOG_FILE", "ELASTICSEARCH_URL", "CORS_ORIGINS",
	"S3_ENDPOINT", "S3_REGION", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY",
	"S3_BUCKET_NAME", "S3_FORCE_PATH_STYLE", "S3_TLS_VERIFY", "S3_PUBLIC_URL",
	"OCTO_STORE_TIMEOUT_MS", "OCTO_STORE_MAX_ATTEMPTS",
	"DOWNLOAD_URL_TTL_S", "OCTO_HEALTH_CACHE_MS", "OCTO_PUBLIC_URL", "OCTO_URL_SECRET",
};

/* The S3 variables that mean nothing without S3_BUCKET_NAME. */
static const char *const s3_names[] = {
	"S3_ENDPOINT", "S3_REGION", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "S3_PUBLIC_URL",
};

/* A secret no message could contain by chance. */
#define SECRET "wJalrXUtnFEMI-K7MDENG-bPxRfiCY-Zq81"
#define URL_SECRET_32 "0123456789abcdef0123456789ABCDEF"

static settings cfg;
static char err[512];

/* Each test starts from an environment without any of the variables, so
 * the result does not depend on the caller's shell or on earlier tests. */
static void clear_env(void)
{
	int i;

	for (i = 0; i < N_ELEMS(all_names); i++) {
		ck_assert_int_eq(unsetenv(all_names[i]), 0);
		ck_assert_ptr_null(getenv(all_names[i]));
	}
	memset(&cfg, 0, sizeof(cfg));
	err[0] = '\0';
}

static void set(const char *name, const char *value)
{
	ck_assert_int_eq(setenv(name, value, 1), 0);
}

static envfile *envfile_of(const char *text)
{
	envfile *ef = NULL;
	char why[256] = "";

	ck_assert_msg(envfile_parse(&ef, text, strlen(text), why, sizeof(why)) == 0,
	              "envfile_parse failed: %s", why);
	return ef;
}

static void load_ok(const envfile *ef)
{
	ck_assert_msg(settings_load(&cfg, ef, err, sizeof(err)) == 0,
	              "settings_load failed: %s", err);
}

/* Loads, expects failure, and checks that nothing stays allocated. */
static void load_fails(const envfile *ef)
{
	int i;

	ck_assert_int_eq(settings_load(&cfg, ef, err, sizeof(err)), -1);
	ck_assert_ptr_null(cfg.data_dir);
	ck_assert_ptr_null(cfg.cors_origins);
	ck_assert_ptr_null(cfg.api.cors_origins);
	ck_assert_ptr_null(cfg.public_url);
	ck_assert_ptr_null(cfg.api.public_url);
	ck_assert_ptr_null(cfg.url_secret);
	for (i = 0; i < N_ELEMS(cfg.s3_strings); i++)
		ck_assert_ptr_null(cfg.s3_strings[i]);
}

static void assert_err_names(const char *name)
{
	ck_assert_msg(strstr(err, name) != NULL, "expected \"%s\" in \"%s\"", name, err);
}

static void assert_err_hides(const char *value)
{
	ck_assert_uint_gt(strlen(err), 0);
	ck_assert_msg(strstr(err, value) == NULL, "\"%s\" leaked into \"%s\"", value, err);
}

/* A complete S3 configuration for a plain-http endpoint (MinIO-like). */
static void set_s3(void)
{
	set("S3_ENDPOINT", "http://minio:9000");
	set("S3_ACCESS_KEY_ID", "AKIDTEST");
	set("S3_SECRET_ACCESS_KEY", SECRET);
	set("S3_BUCKET_NAME", "files");
}

/* This machine's libs3 cannot verify TLS peers, so https needs an opt-out. */
static int libs3_cannot_verify_tls(void)
{
	return strstr(octo_store_s3_features(), "tls-verify=no") != NULL;
}

/* --- defaults --------------------------------------------------------- */

START_TEST(defaults_apply_when_nothing_is_set)
{
	load_ok(NULL);
	ck_assert_uint_eq(cfg.port, 3000);
	ck_assert_str_eq(cfg.host, "0.0.0.0");
	ck_assert_str_eq(cfg.data_dir, "./data");
	ck_assert_uint_eq(cfg.request_timeout_ms, 30000);
	ck_assert_uint_eq(cfg.max_connections, 1024);
	ck_assert_uint_eq(cfg.http_threads, 0);
	ck_assert_int_eq(cfg.log.level, OCTO_LOG_INFO);
	ck_assert_uint_eq(cfg.api.version, OCTO_API_OPTIONS_VERSION);
	ck_assert_uint_eq(cfg.api.max_body_bytes, 65536);
	ck_assert_uint_eq(cfg.api.rate_limit_window_ms, 60000);
	ck_assert_uint_eq(cfg.api.rate_limit_max, 100);
	ck_assert_int_eq(cfg.api.download_delay_enabled, 1);
	ck_assert_uint_eq(cfg.api.download_delay_min_ms, 10000);
	ck_assert_uint_eq(cfg.api.download_delay_max_ms, 120000);
	ck_assert_str_eq(cfg.cors_origins, "*");
	ck_assert_ptr_eq(cfg.api.cors_origins, cfg.cors_origins);
	settings_free(&cfg);
}
END_TEST

START_TEST(s3_and_url_defaults_apply_when_nothing_is_set)
{
	load_ok(NULL);
	ck_assert_int_eq(cfg.use_s3, 0);
	ck_assert_ptr_null(cfg.s3.endpoint);
	ck_assert_ptr_null(cfg.s3.bucket);
	ck_assert_ptr_null(cfg.s3.access_key_id);
	ck_assert_ptr_null(cfg.s3.secret_access_key);
	ck_assert_uint_eq(cfg.s3.timeout_ms, 10000);
	ck_assert_uint_eq(cfg.s3.max_attempts, 4);
	ck_assert_int_eq(cfg.s3.tls_verify, 1);
	ck_assert_int_eq(cfg.s3.force_path_style, 0);
	ck_assert_uint_eq(cfg.api.url_ttl_s, 3600);
	ck_assert_uint_eq(cfg.api.health_cache_ms, 1000);
	ck_assert_ptr_null(cfg.public_url);
	ck_assert_ptr_null(cfg.api.public_url);
	ck_assert_ptr_null(cfg.url_secret);
	settings_free(&cfg);
}
END_TEST

START_TEST(empty_envfile_changes_no_default)
{
	envfile *ef = envfile_of("# nothing\n");

	load_ok(ef);
	envfile_free(ef);
	ck_assert_uint_eq(cfg.port, 3000);
	ck_assert_str_eq(cfg.host, "0.0.0.0");
	ck_assert_str_eq(cfg.data_dir, "./data");
	settings_free(&cfg);
}
END_TEST

START_TEST(empty_values_count_as_unset)
{
	int i;

	for (i = 0; i < N_ELEMS(all_names); i++)
		set(all_names[i], "");
	load_ok(NULL);
	ck_assert_uint_eq(cfg.port, 3000);
	ck_assert_str_eq(cfg.host, "0.0.0.0");
	ck_assert_str_eq(cfg.data_dir, "./data");
	ck_assert_uint_eq(cfg.request_timeout_ms, 30000);
	ck_assert_int_eq(cfg.log.level, OCTO_LOG_INFO);
	ck_assert_uint_eq(cfg.api.rate_limit_max, 100);
	ck_assert_int_eq(cfg.api.download_delay_enabled, 1);
	ck_assert_str_eq(cfg.cors_origins, "*");
	ck_assert_int_eq(cfg.use_s3, 0);
	ck_assert_uint_eq(cfg.api.url_ttl_s, 3600);
	ck_assert_uint_eq(cfg.api.health_cache_ms, 1000);
	ck_assert_ptr_null(cfg.public_url);
	ck_assert_ptr_null(cfg.url_secret);
	settings_free(&cfg);
}
END_TEST

/* --- each variable ---------------------------------------------------- */

START_TEST(every_variable_is_read_from_the_environment)
{
	set("PORT", "8080");
	set("HOST", "127.0.0.1");
	set("OCTO_DATA_DIR", "/var/lib/octopus");
	set("REQUEST_TIMEOUT_MS", "5000");
	set("OCTO_MAX_CONNECTIONS", "77");
	set("OCTO_HTTP_THREADS", "12");
	set("OCTO_MAX_BODY_BYTES", "1048576");
	set("RATE_LIMIT_WINDOW_MS", "1000");
	set("RATE_LIMIT_MAX_REQUESTS", "7");
	set("DOWNLOAD_DELAY_ENABLED", "false");
	set("DOWNLOAD_DELAY_MIN_MS", "5");
	set("DOWNLOAD_DELAY_MAX_MS", "6");
	set("LOG_LEVEL", "debug");
	set("CORS_ORIGINS", "https://app.example");
	load_ok(NULL);
	ck_assert_uint_eq(cfg.port, 8080);
	ck_assert_str_eq(cfg.host, "127.0.0.1");
	ck_assert_str_eq(cfg.data_dir, "/var/lib/octopus");
	ck_assert_uint_eq(cfg.request_timeout_ms, 5000);
	ck_assert_uint_eq(cfg.max_connections, 77);
	ck_assert_uint_eq(cfg.http_threads, 12);
	ck_assert_uint_eq(cfg.api.max_body_bytes, 1048576);
	ck_assert_uint_eq(cfg.api.rate_limit_window_ms, 1000);
	ck_assert_uint_eq(cfg.api.rate_limit_max, 7);
	ck_assert_int_eq(cfg.api.download_delay_enabled, 0);
	ck_assert_uint_eq(cfg.api.download_delay_min_ms, 5);
	ck_assert_uint_eq(cfg.api.download_delay_max_ms, 6);
	ck_assert_int_eq(cfg.log.level, OCTO_LOG_DEBUG);
	ck_assert_str_eq(cfg.cors_origins, "https://app.example");
	ck_assert_ptr_eq(cfg.api.cors_origins, cfg.cors_origins);
	settings_free(&cfg);
}
END_TEST

typedef struct {
	const char *name;
	const char *value;
} setting;

/* Values at the edges of each range, all accepted. */
static const setting edge_values[] = {
	{ "PORT", "0" },
	{ "PORT", "65535" },
	{ "REQUEST_TIMEOUT_MS", "1000" },
	{ "REQUEST_TIMEOUT_MS", "3600000" },
	{ "OCTO_MAX_CONNECTIONS", "1" },
	{ "OCTO_MAX_CONNECTIONS", "100000" },
	{ "OCTO_HTTP_THREADS", "0" },
	{ "OCTO_HTTP_THREADS", "1024" },
	{ "OCTO_MAX_BODY_BYTES", "64" },
	{ "OCTO_MAX_BODY_BYTES", "16777216" },
	{ "RATE_LIMIT_WINDOW_MS", "1" },
	{ "RATE_LIMIT_WINDOW_MS", "86400000" },
	{ "RATE_LIMIT_MAX_REQUESTS", "0" },
	{ "RATE_LIMIT_MAX_REQUESTS", "1000000000" },
	{ "DOWNLOAD_DELAY_MIN_MS", "0" },
	{ "DOWNLOAD_DELAY_MAX_MS", "3600000" },
	{ "DOWNLOAD_URL_TTL_S", "1" },
	{ "DOWNLOAD_URL_TTL_S", "604800" },
	{ "OCTO_HEALTH_CACHE_MS", "0" },
	{ "OCTO_HEALTH_CACHE_MS", "60000" },
};

START_TEST(range_edges_are_accepted)
{
	const setting *t = &edge_values[_i];

	set(t->name, t->value);
	load_ok(NULL);
	settings_free(&cfg);
}
END_TEST

START_TEST(port_zero_means_any_free_port)
{
	set("PORT", "0");
	load_ok(NULL);
	ck_assert_uint_eq(cfg.port, 0);
	settings_free(&cfg);
}
END_TEST

START_TEST(host_accepts_ipv6_and_localhost)
{
	set("HOST", "::1");
	load_ok(NULL);
	ck_assert_str_eq(cfg.host, "::1");
	settings_free(&cfg);
	set("HOST", "localhost");
	load_ok(NULL);
	ck_assert_str_eq(cfg.host, "127.0.0.1");
	settings_free(&cfg);
}
END_TEST

static const struct {
	const char *text;
	int enabled;
} bools[] = {
	{ "true", 1 }, { "TRUE", 1 }, { "1", 1 }, { "yes", 1 }, { "Yes", 1 },
	{ "false", 0 }, { "False", 0 }, { "0", 0 }, { "no", 0 }, { "NO", 0 },
};

START_TEST(download_delay_enabled_takes_true_and_false_words)
{
	set("DOWNLOAD_DELAY_ENABLED", bools[_i].text);
	load_ok(NULL);
	ck_assert_int_eq(cfg.api.download_delay_enabled, bools[_i].enabled);
	settings_free(&cfg);
}
END_TEST

static const struct {
	const char *text;
	octo_log_level level;
} levels[] = {
	{ "debug", OCTO_LOG_DEBUG }, { "info", OCTO_LOG_INFO }, { "warn", OCTO_LOG_WARN },
	{ "error", OCTO_LOG_ERROR }, { "DEBUG", OCTO_LOG_DEBUG }, { "Error", OCTO_LOG_ERROR },
	{ "warning", OCTO_LOG_WARN },
};

START_TEST(log_level_takes_each_name_in_any_case)
{
	set("LOG_LEVEL", levels[_i].text);
	load_ok(NULL);
	ck_assert_int_eq(cfg.log.level, levels[_i].level);
	settings_free(&cfg);
}
END_TEST

START_TEST(log_sinks_default_to_stderr_only)
{
	load_ok(NULL);
	ck_assert_ptr_null(cfg.log.path);
	ck_assert_ptr_null(cfg.log.elasticsearch_url);
	ck_assert_str_eq(cfg.log.service, "octopus-api");
	settings_free(&cfg);
}
END_TEST

START_TEST(log_file_and_elasticsearch_are_taken)
{
	set("LOG_FILE", "/var/log/octopus/octopusd.log");
	set("ELASTICSEARCH_URL", "http://elasticsearch:9200/");
	load_ok(NULL);
	ck_assert_str_eq(cfg.log.path, "/var/log/octopus/octopusd.log");
	ck_assert_str_eq(cfg.log.elasticsearch_url, "http://elasticsearch:9200/");
	settings_free(&cfg);
}
END_TEST

START_TEST(equal_delay_bounds_are_accepted)
{
	set("DOWNLOAD_DELAY_MIN_MS", "500");
	set("DOWNLOAD_DELAY_MAX_MS", "500");
	load_ok(NULL);
	ck_assert_uint_eq(cfg.api.download_delay_min_ms, 500);
	ck_assert_uint_eq(cfg.api.download_delay_max_ms, 500);
	settings_free(&cfg);
}
END_TEST

/* --- envfile ---------------------------------------------------------- */

START_TEST(envfile_supplies_what_the_environment_lacks)
{
	envfile *ef = envfile_of("PORT=4000\nHOST=::1\nOCTO_DATA_DIR=/srv/octo\n"
	                         "LOG_LEVEL=warn\nCORS_ORIGINS=https://a.example\n");

	load_ok(ef);
	envfile_free(ef);
	ck_assert_uint_eq(cfg.port, 4000);
	ck_assert_str_eq(cfg.host, "::1");
	ck_assert_str_eq(cfg.data_dir, "/srv/octo");
	ck_assert_int_eq(cfg.log.level, OCTO_LOG_WARN);
	ck_assert_str_eq(cfg.cors_origins, "https://a.example");
	settings_free(&cfg);
}
END_TEST

START_TEST(environment_wins_over_envfile)
{
	envfile *ef = envfile_of("PORT=4000\nOCTO_DATA_DIR=/from/file\nLOG_LEVEL=warn\n");

	set("PORT", "5000");
	set("OCTO_DATA_DIR", "/from/env");
	load_ok(ef);
	envfile_free(ef);
	ck_assert_uint_eq(cfg.port, 5000);
	ck_assert_str_eq(cfg.data_dir, "/from/env");
	ck_assert_int_eq(cfg.log.level, OCTO_LOG_WARN);
	settings_free(&cfg);
}
END_TEST

START_TEST(empty_environment_value_falls_back_to_envfile)
{
	envfile *ef = envfile_of("PORT=4000\nOCTO_DATA_DIR=/from/file\n");

	set("PORT", "");
	set("OCTO_DATA_DIR", "");
	load_ok(ef);
	envfile_free(ef);
	ck_assert_uint_eq(cfg.port, 4000);
	ck_assert_str_eq(cfg.data_dir, "/from/file");
	settings_free(&cfg);
}
END_TEST

START_TEST(empty_envfile_value_counts_as_unset)
{
	envfile *ef = envfile_of("PORT=\nOCTO_DATA_DIR=''\nLOG_LEVEL=\"\"\nS3_BUCKET_NAME=\n");

	load_ok(ef);
	envfile_free(ef);
	ck_assert_uint_eq(cfg.port, 3000);
	ck_assert_str_eq(cfg.data_dir, "./data");
	ck_assert_int_eq(cfg.log.level, OCTO_LOG_INFO);
	settings_free(&cfg);
}
END_TEST

START_TEST(settings_outlive_the_envfile)
{
	envfile *ef = envfile_of("OCTO_DATA_DIR=/srv/octo\nCORS_ORIGINS=https://a.example\n");

	load_ok(ef);
	envfile_free(ef);
	ck_assert_str_eq(cfg.data_dir, "/srv/octo");
	ck_assert_str_eq(cfg.api.cors_origins, "https://a.example");
	settings_free(&cfg);
}
END_TEST

START_TEST(bad_value_from_envfile_names_the_variable)
{
	envfile *ef = envfile_of("LOG_LEVEL=loud\n");

	load_fails(ef);
	envfile_free(ef);
	assert_err_names("LOG_LEVEL");
	ck_assert_ptr_nonnull(strstr(err, "loud"));
}
END_TEST

/* --- bad values ------------------------------------------------------- */

static const setting bad_values[] = {
	{ "PORT", "abc" },
	{ "PORT", "-1" },
	{ "PORT", "65536" },
	{ "PORT", " 80" },
	{ "PORT", "80 " },
	{ "PORT", "80x" },
	{ "PORT", "1e3" },
	{ "PORT", "+80" },
	{ "PORT", "0x50" },
	{ "HOST", "example.com" },
	{ "HOST", "999.1.1.1" },
	{ "HOST", "1.2.3" },
	{ "HOST", "::1 " },
	{ "REQUEST_TIMEOUT_MS", "0" },
	{ "REQUEST_TIMEOUT_MS", "999" },
	{ "REQUEST_TIMEOUT_MS", "3600001" },
	{ "OCTO_MAX_CONNECTIONS", "0" },
	{ "OCTO_MAX_CONNECTIONS", "100001" },
	{ "OCTO_HTTP_THREADS", "1025" },
	{ "OCTO_HTTP_THREADS", "-1" },
	{ "OCTO_MAX_BODY_BYTES", "63" },
	{ "OCTO_MAX_BODY_BYTES", "16777217" },
	{ "OCTO_MAX_BODY_BYTES", "1k" },
	{ "RATE_LIMIT_WINDOW_MS", "0" },
	{ "RATE_LIMIT_WINDOW_MS", "86400001" },
	{ "RATE_LIMIT_MAX_REQUESTS", "-5" },
	{ "RATE_LIMIT_MAX_REQUESTS", "1000000001" },
	{ "RATE_LIMIT_MAX_REQUESTS", "99999999999999999999999" },
	{ "RATE_LIMIT_MAX_REQUESTS", "18446744073709551616" },
	{ "DOWNLOAD_DELAY_ENABLED", "maybe" },
	{ "DOWNLOAD_DELAY_ENABLED", "on" },
	{ "DOWNLOAD_DELAY_MIN_MS", "3600001" },
	{ "DOWNLOAD_DELAY_MAX_MS", "1.5" },
	{ "LOG_LEVEL", "loud" },
	{ "ELASTICSEARCH_URL", "elasticsearch:9200" },
	{ "ELASTICSEARCH_URL", "ftp://elasticsearch:9200" },
	{ "ELASTICSEARCH_URL", "http://user:secret@elasticsearch:9200" },
	{ "ELASTICSEARCH_URL", "http://elasticsearch:9200/with/path" },
	{ "ELASTICSEARCH_URL", "http://" },
	{ "CORS_ORIGINS", "ftp://x" },
	{ "CORS_ORIGINS", "https://a.example/path" },
	{ "CORS_ORIGINS", "https://a.example/" },
	{ "CORS_ORIGINS", "a.example" },
	{ "CORS_ORIGINS", "http://" },
	{ "CORS_ORIGINS", "https://a.example,ftp://b.example" },
	{ "CORS_ORIGINS", "*,https://a.example" },
	{ "CORS_ORIGINS", "," },
	{ "CORS_ORIGINS", " , " },
	{ "DOWNLOAD_URL_TTL_S", "0" },
	{ "DOWNLOAD_URL_TTL_S", "604801" },
	{ "DOWNLOAD_URL_TTL_S", "1h" },
	{ "OCTO_HEALTH_CACHE_MS", "60001" },
	{ "OCTO_HEALTH_CACHE_MS", "-1" },
	{ "OCTO_PUBLIC_URL", "ftp://dl.example.com" },
	{ "OCTO_PUBLIC_URL", "dl.example.com" },
	{ "OCTO_PUBLIC_URL", "https://" },
	{ "OCTO_PUBLIC_URL", "https://dl.example.com/files" },
	{ "OCTO_PUBLIC_URL", "https://dl.example.com//" },
	{ "OCTO_PUBLIC_URL", "https://user@dl.example.com" },
	{ "OCTO_PUBLIC_URL", "https://dl.example.com?x=1" },
	{ "OCTO_URL_SECRET", "x" },
	{ "OCTO_URL_SECRET", "0123456789abcdef0123456789abcde" },
};

START_TEST(bad_value_is_refused_naming_the_variable)
{
	const setting *t = &bad_values[_i];

	set(t->name, t->value);
	load_fails(NULL);
	ck_assert_msg(strstr(err, t->name) != NULL, "%s=\"%s\": expected the name in \"%s\"",
	              t->name, t->value, err);
}
END_TEST

START_TEST(delay_min_above_max_names_both)
{
	set("DOWNLOAD_DELAY_MIN_MS", "2000");
	set("DOWNLOAD_DELAY_MAX_MS", "1000");
	load_fails(NULL);
	assert_err_names("DOWNLOAD_DELAY_MIN_MS");
	assert_err_names("DOWNLOAD_DELAY_MAX_MS");
	assert_err_names("2000");
	assert_err_names("1000");
}
END_TEST

START_TEST(delay_min_above_default_max_is_refused)
{
	set("DOWNLOAD_DELAY_MIN_MS", "120001");
	load_fails(NULL);
	assert_err_names("DOWNLOAD_DELAY_MIN_MS");
	assert_err_names("DOWNLOAD_DELAY_MAX_MS");
}
END_TEST

START_TEST(first_problem_is_the_one_reported)
{
	set("PORT", "abc");
	set("LOG_LEVEL", "loud");
	load_fails(NULL);
	assert_err_names("PORT");
	ck_assert_ptr_null(strstr(err, "LOG_LEVEL"));
}
END_TEST

START_TEST(error_message_shows_the_bad_value)
{
	set("REQUEST_TIMEOUT_MS", "12abc");
	load_fails(NULL);
	ck_assert_str_eq(err, "REQUEST_TIMEOUT_MS must be an integer from 1000 to 3600000 (got \"12abc\")");
}
END_TEST

START_TEST(error_message_is_cut_to_the_buffer)
{
	char small[9];

	memset(small, 'x', sizeof(small));
	set("PORT", "abc");
	ck_assert_int_eq(settings_load(&cfg, NULL, small, 5), -1);
	ck_assert_str_eq(small, "PORT");
	ck_assert_int_eq(small[5], 'x');
}
END_TEST

/* --- CORS ------------------------------------------------------------- */

START_TEST(cors_star_is_kept)
{
	set("CORS_ORIGINS", "*");
	load_ok(NULL);
	ck_assert_str_eq(cfg.cors_origins, "*");
	ck_assert_ptr_eq(cfg.api.cors_origins, cfg.cors_origins);
	settings_free(&cfg);
}
END_TEST

START_TEST(cors_list_is_normalised)
{
	set("CORS_ORIGINS", "https://a.example, http://b.example:8080");
	load_ok(NULL);
	ck_assert_str_eq(cfg.cors_origins, "https://a.example,http://b.example:8080");
	ck_assert_ptr_eq(cfg.api.cors_origins, cfg.cors_origins);
	settings_free(&cfg);
}
END_TEST

START_TEST(cors_list_drops_blanks_and_empty_entries)
{
	set("CORS_ORIGINS", " ,https://a.example ,\t, https://B.example-2.test ,");
	load_ok(NULL);
	ck_assert_str_eq(cfg.cors_origins, "https://a.example,https://B.example-2.test");
	settings_free(&cfg);
}
END_TEST

START_TEST(cors_accepts_an_ipv6_origin)
{
	set("CORS_ORIGINS", "http://[::1]:3000");
	load_ok(NULL);
	ck_assert_str_eq(cfg.cors_origins, "http://[::1]:3000");
	settings_free(&cfg);
}
END_TEST

/* --- S3 --------------------------------------------------------------- */

START_TEST(s3_variable_without_bucket_is_refused_naming_both)
{
	const char *value = strcmp(s3_names[_i], "S3_ENDPOINT") == 0 ? "http://minio:9000" : SECRET;

	set(s3_names[_i], value);
	load_fails(NULL);
	assert_err_names(s3_names[_i]);
	assert_err_names("S3_BUCKET_NAME");
	assert_err_hides(SECRET);
}
END_TEST

START_TEST(s3_variable_in_envfile_without_bucket_is_refused)
{
	envfile *ef = envfile_of("S3_REGION=eu-west-1\n");

	load_fails(ef);
	envfile_free(ef);
	assert_err_names("S3_REGION");
	assert_err_names("S3_BUCKET_NAME");
}
END_TEST

START_TEST(bucket_without_keys_is_refused)
{
	set("S3_BUCKET_NAME", "files");
	load_fails(NULL);
	assert_err_names("S3_ACCESS_KEY_ID");
}
END_TEST

START_TEST(bucket_in_envfile_without_keys_is_refused)
{
	envfile *ef = envfile_of("S3_BUCKET_NAME=files\n");

	load_fails(ef);
	envfile_free(ef);
	assert_err_names("S3_ACCESS_KEY_ID");
}
END_TEST

START_TEST(bucket_needs_both_keys)
{
	set("S3_BUCKET_NAME", "files");
	set("S3_ACCESS_KEY_ID", "AKIDTEST");
	load_fails(NULL);
	assert_err_names("S3_SECRET_ACCESS_KEY");
	clear_env();
	set("S3_BUCKET_NAME", "files");
	set("S3_SECRET_ACCESS_KEY", SECRET);
	load_fails(NULL);
	assert_err_names("S3_ACCESS_KEY_ID");
	assert_err_hides(SECRET);
}
END_TEST

START_TEST(bucket_turns_s3_on_with_every_option)
{
	set_s3();
	set("S3_REGION", "eu-central-1");
	load_ok(NULL);
	ck_assert_int_eq(cfg.use_s3, 1);
	ck_assert_uint_eq(cfg.s3.version, OCTO_S3_OPTIONS_VERSION);
	ck_assert_str_eq(cfg.s3.endpoint, "http://minio:9000");
	ck_assert_str_eq(cfg.s3.region, "eu-central-1");
	ck_assert_str_eq(cfg.s3.access_key_id, "AKIDTEST");
	ck_assert_str_eq(cfg.s3.secret_access_key, SECRET);
	ck_assert_str_eq(cfg.s3.bucket, "files");
	ck_assert_int_eq(cfg.s3.force_path_style, 1);
	ck_assert_int_eq(cfg.s3.tls_verify, 1);
	ck_assert_uint_eq(cfg.s3.timeout_ms, 10000);
	ck_assert_uint_eq(cfg.s3.max_attempts, 4);
	settings_free(&cfg);
}
END_TEST

START_TEST(s3_region_defaults_to_us_east_1)
{
	set_s3();
	load_ok(NULL);
	ck_assert_int_eq(cfg.use_s3, 1);
	ck_assert_str_eq(cfg.s3.region, "us-east-1");
	settings_free(&cfg);
}
END_TEST

START_TEST(s3_settings_come_from_the_envfile)
{
	envfile *ef = envfile_of("S3_ENDPOINT=http://127.0.0.1:9000\nS3_REGION=eu-west-3\n"
	                         "S3_ACCESS_KEY_ID=AKIDFILE\nS3_SECRET_ACCESS_KEY=" SECRET "\n"
	                         "S3_BUCKET_NAME=from-file\nS3_FORCE_PATH_STYLE=false\n"
	                         "OCTO_STORE_TIMEOUT_MS=2500\nOCTO_STORE_MAX_ATTEMPTS=7\n");

	load_ok(ef);
	envfile_free(ef);
	ck_assert_int_eq(cfg.use_s3, 1);
	ck_assert_str_eq(cfg.s3.endpoint, "http://127.0.0.1:9000");
	ck_assert_str_eq(cfg.s3.region, "eu-west-3");
	ck_assert_str_eq(cfg.s3.access_key_id, "AKIDFILE");
	ck_assert_str_eq(cfg.s3.secret_access_key, SECRET);
	ck_assert_str_eq(cfg.s3.bucket, "from-file");
	ck_assert_int_eq(cfg.s3.force_path_style, 0);
	ck_assert_uint_eq(cfg.s3.timeout_ms, 2500);
	ck_assert_uint_eq(cfg.s3.max_attempts, 7);
	settings_free(&cfg);
}
END_TEST

START_TEST(without_endpoint_s3_is_aws_with_virtual_hosts)
{
	set_s3();
	ck_assert_int_eq(unsetenv("S3_ENDPOINT"), 0);
	set("S3_TLS_VERIFY", "false");
	load_ok(NULL);
	ck_assert_int_eq(cfg.use_s3, 1);
	ck_assert_ptr_null(cfg.s3.endpoint);
	ck_assert_int_eq(cfg.s3.force_path_style, 0);
	ck_assert_int_eq(cfg.s3.tls_verify, 0);
	settings_free(&cfg);
}
END_TEST

START_TEST(force_path_style_can_be_set_either_way)
{
	set_s3();
	set("S3_FORCE_PATH_STYLE", "no");
	load_ok(NULL);
	ck_assert_int_eq(cfg.s3.force_path_style, 0);
	settings_free(&cfg);
	ck_assert_int_eq(unsetenv("S3_ENDPOINT"), 0);
	set("S3_TLS_VERIFY", "false");
	set("S3_FORCE_PATH_STYLE", "TRUE");
	load_ok(NULL);
	ck_assert_int_eq(cfg.s3.force_path_style, 1);
	settings_free(&cfg);
}
END_TEST

START_TEST(tls_verify_takes_true_and_false_words)
{
	set_s3();
	set("S3_TLS_VERIFY", bools[_i].text);
	load_ok(NULL);
	ck_assert_int_eq(cfg.s3.tls_verify, bools[_i].enabled);
	settings_free(&cfg);
}
END_TEST

static const char *const good_endpoints[] = {
	"http://minio:9000", "http://minio:9000/", "http://127.0.0.1:9000",
	"http://[::1]:9000", "http://s3.local-net.example",
};

START_TEST(endpoint_is_kept_as_given)
{
	set_s3();
	set("S3_ENDPOINT", good_endpoints[_i]);
	load_ok(NULL);
	ck_assert_str_eq(cfg.s3.endpoint, good_endpoints[_i]);
	settings_free(&cfg);
}
END_TEST

static const char *const good_s3_public_urls[] = {
	"http://localhost:8080/storage", "https://dl.example.com", "http://[::1]:8080/s3/",
	"http://gw:8080/a-b_c.d~e/f",
};

START_TEST(s3_public_url_goes_to_the_store)
{
	set_s3();
	set("S3_PUBLIC_URL", good_s3_public_urls[_i]);
	load_ok(NULL);
	ck_assert_str_eq(cfg.s3.public_url, good_s3_public_urls[_i]);
	settings_free(&cfg);
}
END_TEST

static const char *const bad_s3_public_urls[] = {
	"localhost:8080/storage", "ftp://gw", "http://", "http:///storage", "http://gw/a?b=1",
	"http://gw/a b", "http://user@gw/s", "http://gw/%2e%2e",
};

START_TEST(bad_s3_public_url_is_refused_naming_it)
{
	set_s3();
	set("S3_PUBLIC_URL", bad_s3_public_urls[_i]);
	load_fails(NULL);
	assert_err_names("S3_PUBLIC_URL");
	assert_err_hides(SECRET);
}
END_TEST

START_TEST(s3_public_url_needs_path_style)
{
	set_s3();
	set("S3_PUBLIC_URL", "http://localhost:8080/storage");
	set("S3_FORCE_PATH_STYLE", "false");
	load_fails(NULL);
	assert_err_names("S3_PUBLIC_URL");
	assert_err_names("S3_FORCE_PATH_STYLE");
}
END_TEST

START_TEST(without_s3_public_url_urls_name_the_endpoint)
{
	set_s3();
	load_ok(NULL);
	ck_assert_ptr_null(cfg.s3.public_url);
	settings_free(&cfg);
}
END_TEST

static const char *const bad_endpoints[] = {
	"minio:9000", "ftp://minio", "http://", "https://", "http://minio:9000/path",
	"http://minio:9000//", "http://mi nio", "http://user:pw@minio", "http://minio?x=1",
	"//minio:9000",
};

START_TEST(bad_endpoint_is_refused_naming_it)
{
	set_s3();
	set("S3_ENDPOINT", bad_endpoints[_i]);
	load_fails(NULL);
	assert_err_names("S3_ENDPOINT");
	assert_err_hides(SECRET);
}
END_TEST

/* Values only S3 reads, refused while S3 is otherwise complete. */
static const setting bad_s3_values[] = {
	{ "S3_FORCE_PATH_STYLE", "maybe" },
	{ "S3_FORCE_PATH_STYLE", "on" },
	{ "S3_TLS_VERIFY", "maybe" },
	{ "S3_TLS_VERIFY", "off" },
	{ "OCTO_STORE_TIMEOUT_MS", "99" },
	{ "OCTO_STORE_TIMEOUT_MS", "600001" },
	{ "OCTO_STORE_TIMEOUT_MS", "1s" },
	{ "OCTO_STORE_MAX_ATTEMPTS", "0" },
	{ "OCTO_STORE_MAX_ATTEMPTS", "11" },
	{ "OCTO_STORE_MAX_ATTEMPTS", "-1" },
};

START_TEST(bad_s3_value_is_refused_naming_the_variable)
{
	const setting *t = &bad_s3_values[_i];

	set_s3();
	set(t->name, t->value);
	load_fails(NULL);
	ck_assert_msg(strstr(err, t->name) != NULL, "%s=\"%s\": expected the name in \"%s\"",
	              t->name, t->value, err);
	assert_err_hides(SECRET);
}
END_TEST

static const struct {
	const char *name;
	const char *value;
	uint32_t timeout_ms;
	uint32_t max_attempts;
} s3_edges[] = {
	{ "OCTO_STORE_TIMEOUT_MS", "100", 100, 4 },
	{ "OCTO_STORE_TIMEOUT_MS", "600000", 600000, 4 },
	{ "OCTO_STORE_MAX_ATTEMPTS", "1", 10000, 1 },
	{ "OCTO_STORE_MAX_ATTEMPTS", "10", 10000, 10 },
};

START_TEST(store_timeout_and_attempts_take_their_range_edges)
{
	set_s3();
	set(s3_edges[_i].name, s3_edges[_i].value);
	load_ok(NULL);
	ck_assert_uint_eq(cfg.s3.timeout_ms, s3_edges[_i].timeout_ms);
	ck_assert_uint_eq(cfg.s3.max_attempts, s3_edges[_i].max_attempts);
	settings_free(&cfg);
}
END_TEST

/* https (an https endpoint, or none: AWS) with TLS verification left on
 * cannot be honoured by a libs3 that does not verify: refuse to start. */
static void check_https_needs_tls_verify_off(const char *endpoint, const char *verify)
{
	clear_env();
	set_s3();
	if (endpoint)
		set("S3_ENDPOINT", endpoint);
	else
		ck_assert_int_eq(unsetenv("S3_ENDPOINT"), 0);
	if (verify)
		set("S3_TLS_VERIFY", verify);
	if (libs3_cannot_verify_tls()) {
		load_fails(NULL);
		assert_err_names("S3_TLS_VERIFY");
		assert_err_hides(SECRET);
	} else {
		load_ok(NULL);
		ck_assert_int_eq(cfg.s3.tls_verify, 1);
		settings_free(&cfg);
	}
}

START_TEST(https_with_tls_verify_on_needs_a_verifying_libs3)
{
	check_https_needs_tls_verify_off("https://s3.example.com", NULL);
	check_https_needs_tls_verify_off("https://s3.example.com", "true");
	check_https_needs_tls_verify_off("https://s3.example.com:8443/", "yes");
	check_https_needs_tls_verify_off(NULL, NULL);
	check_https_needs_tls_verify_off(NULL, "1");
}
END_TEST

START_TEST(https_with_tls_verify_off_loads)
{
	set_s3();
	set("S3_ENDPOINT", "https://s3.example.com");
	set("S3_TLS_VERIFY", "false");
	load_ok(NULL);
	ck_assert_int_eq(cfg.use_s3, 1);
	ck_assert_str_eq(cfg.s3.endpoint, "https://s3.example.com");
	ck_assert_int_eq(cfg.s3.tls_verify, 0);
	ck_assert_int_eq(cfg.s3.force_path_style, 1);
	settings_free(&cfg);
}
END_TEST

START_TEST(http_endpoint_keeps_tls_verify_on)
{
	set_s3();
	load_ok(NULL);
	ck_assert_int_eq(cfg.s3.tls_verify, 1);
	settings_free(&cfg);
}
END_TEST

START_TEST(tls_verify_is_checked_only_with_s3_on)
{
	set("S3_TLS_VERIFY", "true");
	load_ok(NULL);
	ck_assert_int_eq(cfg.use_s3, 0);
	settings_free(&cfg);
}
END_TEST

/* With the secret set, one other thing wrong (NULL: unset). */
static const setting secret_leaks[] = {
	{ "S3_BUCKET_NAME", NULL },
	{ "S3_ACCESS_KEY_ID", NULL },
	{ "S3_ENDPOINT", "ftp://minio" },
	{ "S3_TLS_VERIFY", "maybe" },
	{ "S3_FORCE_PATH_STYLE", "maybe" },
	{ "OCTO_STORE_TIMEOUT_MS", "1" },
	{ "OCTO_STORE_MAX_ATTEMPTS", "99" },
	{ "PORT", "abc" },
	{ "LOG_LEVEL", "loud" },
	{ "OCTO_PUBLIC_URL", "ftp://x" },
	{ "OCTO_URL_SECRET", "too-short" },
};

START_TEST(secret_never_appears_in_a_message)
{
	const setting *t = &secret_leaks[_i];

	set_s3();
	if (t->value)
		set(t->name, t->value);
	else
		ck_assert_int_eq(unsetenv(t->name), 0);
	load_fails(NULL);
	assert_err_hides(SECRET);
	assert_err_names(t->name);
}
END_TEST

START_TEST(empty_s3_variable_is_ignored)
{
	set("S3_ENDPOINT", "");
	load_ok(NULL);
	ck_assert_str_eq(cfg.data_dir, "./data");
	settings_free(&cfg);
}
END_TEST

/* --- download URLs and health cache ---------------------------------- */

START_TEST(url_variables_are_read)
{
	set("DOWNLOAD_URL_TTL_S", "60");
	set("OCTO_HEALTH_CACHE_MS", "0");
	set("OCTO_PUBLIC_URL", "https://dl.example.com");
	set("OCTO_URL_SECRET", URL_SECRET_32);
	load_ok(NULL);
	ck_assert_uint_eq(cfg.api.url_ttl_s, 60);
	ck_assert_uint_eq(cfg.api.health_cache_ms, 0);
	ck_assert_str_eq(cfg.public_url, "https://dl.example.com");
	ck_assert_ptr_eq(cfg.api.public_url, cfg.public_url);
	ck_assert_str_eq(cfg.url_secret, URL_SECRET_32);
	settings_free(&cfg);
}
END_TEST

START_TEST(url_variables_come_from_the_envfile)
{
	envfile *ef = envfile_of("DOWNLOAD_URL_TTL_S=604800\nOCTO_HEALTH_CACHE_MS=60000\n"
	                         "OCTO_PUBLIC_URL=http://[::1]:3000/\n"
	                         "OCTO_URL_SECRET=" URL_SECRET_32 "\n");

	load_ok(ef);
	envfile_free(ef);
	ck_assert_uint_eq(cfg.api.url_ttl_s, 604800);
	ck_assert_uint_eq(cfg.api.health_cache_ms, 60000);
	ck_assert_str_eq(cfg.public_url, "http://[::1]:3000/");
	ck_assert_ptr_eq(cfg.api.public_url, cfg.public_url);
	ck_assert_str_eq(cfg.url_secret, URL_SECRET_32);
	settings_free(&cfg);
}
END_TEST

static const char *const good_public_urls[] = {
	"https://dl.example.com", "https://dl.example.com/", "http://127.0.0.1:8080",
	"http://[::1]:3000", "https://dl-1.example.com:8443/",
};

START_TEST(public_url_is_kept_as_given)
{
	set("OCTO_PUBLIC_URL", good_public_urls[_i]);
	load_ok(NULL);
	ck_assert_str_eq(cfg.public_url, good_public_urls[_i]);
	ck_assert_ptr_eq(cfg.api.public_url, cfg.public_url);
	settings_free(&cfg);
}
END_TEST

START_TEST(short_url_secret_is_refused_without_showing_it)
{
	static const char short_secret[] = "Kq8-short-url-secret-value-31ch";

	ck_assert_uint_eq(strlen(short_secret), 31);
	set("OCTO_URL_SECRET", short_secret);
	load_fails(NULL);
	assert_err_names("OCTO_URL_SECRET");
	assert_err_hides(short_secret);
	assert_err_hides("Kq8");
}
END_TEST

START_TEST(long_url_secret_is_accepted)
{
	static const char long_secret[] =
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef+/=";

	set("OCTO_URL_SECRET", long_secret);
	load_ok(NULL);
	ck_assert_str_eq(cfg.url_secret, long_secret);
	settings_free(&cfg);
}
END_TEST

/* --- settings_parse_port / settings_parse_host ------------------------ */

static const struct {
	const char *text;
	uint16_t port;
} good_ports[] = {
	{ "0", 0 }, { "1", 1 }, { "80", 80 }, { "3000", 3000 }, { "65535", 65535 },
};

START_TEST(parse_port_accepts_zero_to_65535)
{
	uint16_t port = 1234;

	ck_assert_int_eq(settings_parse_port(good_ports[_i].text, &port), 0);
	ck_assert_uint_eq(port, good_ports[_i].port);
}
END_TEST

static const char *const bad_ports[] = {
	"", "abc", "-1", "65536", "70000", " 80", "80 ", "80x", "1e3", "+80", "0x50",
	"8 0", "99999999999999999999999", "18446744073709551616",
};

START_TEST(parse_port_refuses_bad_text_and_leaves_out_alone)
{
	uint16_t port = 1234;

	ck_assert_msg(settings_parse_port(bad_ports[_i], &port) == -1, "accepted \"%s\"",
	              bad_ports[_i]);
	ck_assert_uint_eq(port, 1234);
}
END_TEST

START_TEST(parse_port_refuses_null)
{
	uint16_t port = 1234;

	ck_assert_int_eq(settings_parse_port(NULL, &port), -1);
	ck_assert_uint_eq(port, 1234);
}
END_TEST

static const struct {
	const char *text;
	const char *host;
} good_hosts[] = {
	{ "127.0.0.1", "127.0.0.1" },
	{ "0.0.0.0", "0.0.0.0" },
	{ "255.255.255.255", "255.255.255.255" },
	{ "::1", "::1" },
	{ "::", "::" },
	{ "2001:db8::1", "2001:db8::1" },
	{ "::ffff:192.0.2.1", "::ffff:192.0.2.1" },
	{ "localhost", "127.0.0.1" },
};

START_TEST(parse_host_accepts_numeric_addresses_and_localhost)
{
	char host[64] = "unchanged";

	ck_assert_int_eq(settings_parse_host(good_hosts[_i].text, host, sizeof(host)), 0);
	ck_assert_str_eq(host, good_hosts[_i].host);
}
END_TEST

static const char *const bad_hosts[] = {
	"", "example.com", "999.1.1.1", "1.2.3", "1.2.3.4.5", " 127.0.0.1", "127.0.0.1 ",
	"LOCALHOST", "[::1]", "::1:", "1.2.3.4:80", "::g",
};

START_TEST(parse_host_refuses_names_and_bad_addresses)
{
	char host[64] = "unchanged";

	ck_assert_msg(settings_parse_host(bad_hosts[_i], host, sizeof(host)) == -1,
	              "accepted \"%s\"", bad_hosts[_i]);
	ck_assert_str_eq(host, "unchanged");
}
END_TEST

START_TEST(parse_host_refuses_null)
{
	char host[64] = "unchanged";

	ck_assert_int_eq(settings_parse_host(NULL, host, sizeof(host)), -1);
	ck_assert_str_eq(host, "unchanged");
}
END_TEST

START_TEST(parse_host_refuses_a_buffer_too_small)
{
	char host[16] = "unchanged";

	ck_assert_int_eq(settings_parse_host("::1", host, 3), -1);
	ck_assert_str_eq(host, "unchanged");
	ck_assert_int_eq(settings_parse_host("localhost", host, 9), -1);
	ck_assert_str_eq(host, "unchanged");
	ck_assert_int_eq(settings_parse_host("::1", host, 4), 0);
	ck_assert_str_eq(host, "::1");
	ck_assert_int_eq(settings_parse_host("localhost", host, 10), 0);
	ck_assert_str_eq(host, "127.0.0.1");
}
END_TEST

/* --- settings_free ---------------------------------------------------- */

START_TEST(free_releases_and_clears_the_strings)
{
	set("OCTO_DATA_DIR", "/srv/octo");
	set("CORS_ORIGINS", "https://a.example");
	load_ok(NULL);
	ck_assert_ptr_nonnull(cfg.data_dir);
	ck_assert_ptr_nonnull(cfg.cors_origins);
	settings_free(&cfg);
	ck_assert_ptr_null(cfg.data_dir);
	ck_assert_ptr_null(cfg.cors_origins);
	ck_assert_ptr_null(cfg.api.cors_origins);
	settings_free(&cfg); /* a second call finds nothing to free */
	ck_assert_ptr_null(cfg.data_dir);
}
END_TEST

START_TEST(free_releases_the_s3_and_url_strings)
{
	int i;

	set_s3();
	set("S3_REGION", "eu-central-1");
	set("S3_PUBLIC_URL", "http://localhost:8080/storage");
	set("OCTO_PUBLIC_URL", "https://dl.example.com");
	set("OCTO_URL_SECRET", URL_SECRET_32);
	load_ok(NULL);
	for (i = 0; i < N_ELEMS(cfg.s3_strings); i++)
		ck_assert_ptr_nonnull(cfg.s3_strings[i]);
	ck_assert_ptr_nonnull(cfg.public_url);
	ck_assert_ptr_nonnull(cfg.url_secret);
	settings_free(&cfg);
	for (i = 0; i < N_ELEMS(cfg.s3_strings); i++)
		ck_assert_ptr_null(cfg.s3_strings[i]);
	ck_assert_ptr_null(cfg.public_url);
	ck_assert_ptr_null(cfg.api.public_url);
	ck_assert_ptr_null(cfg.s3.public_url);
	ck_assert_ptr_null(cfg.url_secret);
	settings_free(&cfg); /* a second call finds nothing to free */
	ck_assert_ptr_null(cfg.s3_strings[3]);
}
END_TEST

/* Like api.cors_origins and api.public_url, the S3 options borrow from
 * the freed strings and must not be left pointing at them. */
START_TEST(free_leaves_no_dangling_s3_option)
{
	set_s3();
	load_ok(NULL);
	settings_free(&cfg);
	ck_assert_ptr_null(cfg.s3.endpoint);
	ck_assert_ptr_null(cfg.s3.access_key_id);
	ck_assert_ptr_null(cfg.s3.secret_access_key);
	ck_assert_ptr_null(cfg.s3.bucket);
}
END_TEST

START_TEST(reloading_after_free_works)
{
	int i;

	for (i = 0; i < 3; i++) {
		load_ok(NULL);
		ck_assert_str_eq(cfg.data_dir, "./data");
		settings_free(&cfg);
	}
	ck_assert_ptr_null(cfg.data_dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("settings");
	TCase *defaults = tcase_create("defaults");
	TCase *vars = tcase_create("variables");
	TCase *file = tcase_create("envfile");
	TCase *bad = tcase_create("bad values");
	TCase *cors = tcase_create("cors");
	TCase *s3 = tcase_create("s3");
	TCase *urls = tcase_create("urls");
	TCase *parsers = tcase_create("parsers");
	TCase *release = tcase_create("free");

	tcase_add_checked_fixture(defaults, clear_env, NULL);
	tcase_add_test(defaults, defaults_apply_when_nothing_is_set);
	tcase_add_test(defaults, s3_and_url_defaults_apply_when_nothing_is_set);
	tcase_add_test(defaults, empty_envfile_changes_no_default);
	tcase_add_test(defaults, empty_values_count_as_unset);
	suite_add_tcase(s, defaults);

	tcase_add_checked_fixture(vars, clear_env, NULL);
	tcase_add_test(vars, every_variable_is_read_from_the_environment);
	tcase_add_loop_test(vars, range_edges_are_accepted, 0, N_ELEMS(edge_values));
	tcase_add_test(vars, port_zero_means_any_free_port);
	tcase_add_test(vars, host_accepts_ipv6_and_localhost);
	tcase_add_loop_test(vars, download_delay_enabled_takes_true_and_false_words, 0, N_ELEMS(bools));
	tcase_add_loop_test(vars, log_level_takes_each_name_in_any_case, 0, N_ELEMS(levels));
	tcase_add_test(vars, log_sinks_default_to_stderr_only);
	tcase_add_test(vars, log_file_and_elasticsearch_are_taken);
	tcase_add_test(vars, equal_delay_bounds_are_accepted);
	suite_add_tcase(s, vars);

	tcase_add_checked_fixture(file, clear_env, NULL);
	tcase_add_test(file, envfile_supplies_what_the_environment_lacks);
	tcase_add_test(file, environment_wins_over_envfile);
	tcase_add_test(file, empty_environment_value_falls_back_to_envfile);
	tcase_add_test(file, empty_envfile_value_counts_as_unset);
	tcase_add_test(file, settings_outlive_the_envfile);
	tcase_add_test(file, bad_value_from_envfile_names_the_variable);
	suite_add_tcase(s, file);

	tcase_add_checked_fixture(bad, clear_env, NULL);
	tcase_add_loop_test(bad, bad_value_is_refused_naming_the_variable, 0, N_ELEMS(bad_values));
	tcase_add_test(bad, delay_min_above_max_names_both);
	tcase_add_test(bad, delay_min_above_default_max_is_refused);
	tcase_add_test(bad, first_problem_is_the_one_reported);
	tcase_add_test(bad, error_message_shows_the_bad_value);
	tcase_add_test(bad, error_message_is_cut_to_the_buffer);
	suite_add_tcase(s, bad);

	tcase_add_checked_fixture(cors, clear_env, NULL);
	tcase_add_test(cors, cors_star_is_kept);
	tcase_add_test(cors, cors_list_is_normalised);
	tcase_add_test(cors, cors_list_drops_blanks_and_empty_entries);
	tcase_add_test(cors, cors_accepts_an_ipv6_origin);
	suite_add_tcase(s, cors);

	tcase_add_checked_fixture(s3, clear_env, NULL);
	tcase_add_loop_test(s3, s3_variable_without_bucket_is_refused_naming_both, 0,
	                    N_ELEMS(s3_names));
	tcase_add_test(s3, s3_variable_in_envfile_without_bucket_is_refused);
	tcase_add_test(s3, bucket_without_keys_is_refused);
	tcase_add_test(s3, bucket_in_envfile_without_keys_is_refused);
	tcase_add_test(s3, bucket_needs_both_keys);
	tcase_add_test(s3, bucket_turns_s3_on_with_every_option);
	tcase_add_test(s3, s3_region_defaults_to_us_east_1);
	tcase_add_test(s3, s3_settings_come_from_the_envfile);
	tcase_add_test(s3, without_endpoint_s3_is_aws_with_virtual_hosts);
	tcase_add_test(s3, force_path_style_can_be_set_either_way);
	tcase_add_loop_test(s3, s3_public_url_goes_to_the_store, 0, N_ELEMS(good_s3_public_urls));
	tcase_add_loop_test(s3, bad_s3_public_url_is_refused_naming_it, 0,
	                    N_ELEMS(bad_s3_public_urls));
	tcase_add_test(s3, without_s3_public_url_urls_name_the_endpoint);
	tcase_add_test(s3, s3_public_url_needs_path_style);
	tcase_add_loop_test(s3, tls_verify_takes_true_and_false_words, 0, N_ELEMS(bools));
	tcase_add_loop_test(s3, endpoint_is_kept_as_given, 0, N_ELEMS(good_endpoints));
	tcase_add_loop_test(s3, bad_endpoint_is_refused_naming_it, 0, N_ELEMS(bad_endpoints));
	tcase_add_loop_test(s3, bad_s3_value_is_refused_naming_the_variable, 0,
	                    N_ELEMS(bad_s3_values));
	tcase_add_loop_test(s3, store_timeout_and_attempts_take_their_range_edges, 0,
	                    N_ELEMS(s3_edges));
	tcase_add_test(s3, https_with_tls_verify_on_needs_a_verifying_libs3);
	tcase_add_test(s3, https_with_tls_verify_off_loads);
	tcase_add_test(s3, http_endpoint_keeps_tls_verify_on);
	tcase_add_test(s3, tls_verify_is_checked_only_with_s3_on);
	tcase_add_loop_test(s3, secret_never_appears_in_a_message, 0, N_ELEMS(secret_leaks));
	tcase_add_test(s3, empty_s3_variable_is_ignored);
	suite_add_tcase(s, s3);

	tcase_add_checked_fixture(urls, clear_env, NULL);
	tcase_add_test(urls, url_variables_are_read);
	tcase_add_test(urls, url_variables_come_from_the_envfile);
	tcase_add_loop_test(urls, public_url_is_kept_as_given, 0, N_ELEMS(good_public_urls));
	tcase_add_test(urls, short_url_secret_is_refused_without_showing_it);
	tcase_add_test(urls, long_url_secret_is_accepted);
	suite_add_tcase(s, urls);

	tcase_add_checked_fixture(parsers, clear_env, NULL);
	tcase_add_loop_test(parsers, parse_port_accepts_zero_to_65535, 0, N_ELEMS(good_ports));
	tcase_add_loop_test(parsers, parse_port_refuses_bad_text_and_leaves_out_alone, 0,
	                    N_ELEMS(bad_ports));
	tcase_add_test(parsers, parse_port_refuses_null);
	tcase_add_loop_test(parsers, parse_host_accepts_numeric_addresses_and_localhost, 0,
	                    N_ELEMS(good_hosts));
	tcase_add_loop_test(parsers, parse_host_refuses_names_and_bad_addresses, 0,
	                    N_ELEMS(bad_hosts));
	tcase_add_test(parsers, parse_host_refuses_null);
	tcase_add_test(parsers, parse_host_refuses_a_buffer_too_small);
	suite_add_tcase(s, parsers);

	tcase_add_checked_fixture(release, clear_env, NULL);
	tcase_add_test(release, free_releases_and_clears_the_strings);
	tcase_add_test(release, free_releases_the_s3_and_url_strings);
	tcase_add_test(release, free_leaves_no_dangling_s3_option);
	tcase_add_test(release, reloading_after_free_works);
	suite_add_tcase(s, release);
	return tu_run(s);
}
