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
	"OCTO_MAX_BODY_BYTES", "RATE_LIMIT_WINDOW_MS", "RATE_LIMIT_MAX_REQUESTS",
	"DOWNLOAD_DELAY_ENABLED", "DOWNLOAD_DELAY_MIN_MS", "DOWNLOAD_DELAY_MAX_MS",
	"LOG_LEVEL", "CORS_ORIGINS",
	"S3_ENDPOINT", "S3_REGION", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY",
	"S3_BUCKET_NAME", "S3_FORCE_PATH_STYLE",
};

static const char *const s3_names[] = {
	"S3_ENDPOINT", "S3_REGION", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY",
	"S3_BUCKET_NAME", "S3_FORCE_PATH_STYLE",
};

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
	ck_assert_int_eq(settings_load(&cfg, ef, err, sizeof(err)), -1);
	ck_assert_ptr_null(cfg.data_dir);
	ck_assert_ptr_null(cfg.cors_origins);
	ck_assert_ptr_null(cfg.api.cors_origins);
}

static void assert_err_names(const char *name)
{
	ck_assert_msg(strstr(err, name) != NULL, "expected \"%s\" in \"%s\"", name, err);
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
	ck_assert_int_eq(cfg.log_level, LOG_INFO);
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
	ck_assert_int_eq(cfg.log_level, LOG_INFO);
	ck_assert_uint_eq(cfg.api.rate_limit_max, 100);
	ck_assert_int_eq(cfg.api.download_delay_enabled, 1);
	ck_assert_str_eq(cfg.cors_origins, "*");
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
	ck_assert_uint_eq(cfg.api.max_body_bytes, 1048576);
	ck_assert_uint_eq(cfg.api.rate_limit_window_ms, 1000);
	ck_assert_uint_eq(cfg.api.rate_limit_max, 7);
	ck_assert_int_eq(cfg.api.download_delay_enabled, 0);
	ck_assert_uint_eq(cfg.api.download_delay_min_ms, 5);
	ck_assert_uint_eq(cfg.api.download_delay_max_ms, 6);
	ck_assert_int_eq(cfg.log_level, LOG_DEBUG);
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
	{ "OCTO_MAX_BODY_BYTES", "64" },
	{ "OCTO_MAX_BODY_BYTES", "16777216" },
	{ "RATE_LIMIT_WINDOW_MS", "1" },
	{ "RATE_LIMIT_WINDOW_MS", "86400000" },
	{ "RATE_LIMIT_MAX_REQUESTS", "0" },
	{ "RATE_LIMIT_MAX_REQUESTS", "1000000000" },
	{ "DOWNLOAD_DELAY_MIN_MS", "0" },
	{ "DOWNLOAD_DELAY_MAX_MS", "3600000" },
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
	log_level level;
} levels[] = {
	{ "debug", LOG_DEBUG }, { "info", LOG_INFO }, { "warn", LOG_WARN },
	{ "error", LOG_ERROR }, { "DEBUG", LOG_DEBUG }, { "Error", LOG_ERROR },
};

START_TEST(log_level_takes_each_name_in_any_case)
{
	set("LOG_LEVEL", levels[_i].text);
	load_ok(NULL);
	ck_assert_int_eq(cfg.log_level, levels[_i].level);
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
	ck_assert_int_eq(cfg.log_level, LOG_WARN);
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
	ck_assert_int_eq(cfg.log_level, LOG_WARN);
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
	ck_assert_int_eq(cfg.log_level, LOG_INFO);
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
	{ "LOG_LEVEL", "warning" },
	{ "CORS_ORIGINS", "ftp://x" },
	{ "CORS_ORIGINS", "https://a.example/path" },
	{ "CORS_ORIGINS", "https://a.example/" },
	{ "CORS_ORIGINS", "a.example" },
	{ "CORS_ORIGINS", "http://" },
	{ "CORS_ORIGINS", "https://a.example,ftp://b.example" },
	{ "CORS_ORIGINS", "*,https://a.example" },
	{ "CORS_ORIGINS", "," },
	{ "CORS_ORIGINS", " , " },
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

START_TEST(s3_variable_is_refused_as_not_supported_yet)
{
	set(s3_names[_i], "x");
	load_fails(NULL);
	assert_err_names(s3_names[_i]);
	assert_err_names("S3");
	assert_err_names("not supported");
}
END_TEST

START_TEST(s3_variable_in_envfile_is_refused)
{
	envfile *ef = envfile_of("S3_BUCKET_NAME=files\n");

	load_fails(ef);
	envfile_free(ef);
	assert_err_names("S3_BUCKET_NAME");
	assert_err_names("not supported");
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
	TCase *parsers = tcase_create("parsers");
	TCase *release = tcase_create("free");

	tcase_add_checked_fixture(defaults, clear_env, NULL);
	tcase_add_test(defaults, defaults_apply_when_nothing_is_set);
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
	tcase_add_loop_test(s3, s3_variable_is_refused_as_not_supported_yet, 0, N_ELEMS(s3_names));
	tcase_add_test(s3, s3_variable_in_envfile_is_refused);
	tcase_add_test(s3, empty_s3_variable_is_ignored);
	suite_add_tcase(s, s3);

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
	tcase_add_test(release, reloading_after_free_works);
	suite_add_tcase(s, release);
	return tu_run(s);
}
