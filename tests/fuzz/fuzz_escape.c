/* Outside bytes in metric label values and log lines. The input, up to its
 * first NUL, is used as:
 *  - the label value of a counter's child and the HELP text of another
 *    family: the exposition must parse per the Prometheus text format
 *    (label values escape \ " and newline; HELP escapes \ and newline),
 *    and unescaped, both must equal the input after the documented repair
 *    of invalid UTF-8 (each byte that is not part of valid UTF-8 becomes
 *    U+FFFD); the text must be valid UTF-8 of exactly the lines expected;
 *  - the message and a string field of a log record written to a file:
 *    one line, which parses with octo_json_parse, with both members equal
 *    to the repaired input. */
#include "config.h"
#include "fuzzutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SERIES "fuzz_escape_total{value=\""
#define HELP "\n# HELP fuzz_help "

static char dir[256], log_path[300];
static octo_log *logger;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	octo_log_options o = OCTO_LOG_OPTIONS_INIT;

	(void)argc;
	(void)argv;
	fuzz_tmpdir(dir);
	snprintf(log_path, sizeof(log_path), "%s/log", dir);
	o.service = "fuzz";
	o.path = log_path;
	FUZZ_CHECK(octo_log_new(&logger, &o) == 0, "log: %s", octo_error_last());
	return 0;
}

/* Unescapes from `p` up to `stop` ('"' for label values, '\n' for HELP)
 * into `out`; returns where it stopped, or NULL on a bad escape. */
static const char *unescape(const char *p, char stop, int quote, char *out)
{
	for (; *p && *p != stop; p++) {
		if (*p != '\\') {
			*out++ = *p;
			continue;
		}
		p++;
		if (*p == '\\' || (*p == '"' && quote))
			*out++ = *p;
		else if (*p == 'n')
			*out++ = '\n';
		else
			return NULL;
	}
	*out = '\0';
	return *p == stop ? p : NULL;
}

static void check_metrics(const char *in, const char *want)
{
	const char *labels[] = { "value", NULL }, *values[] = { in, NULL }, *p;
	octo_metric *family, *child;
	octo_metrics *reg;
	char *text = NULL, *got, *check;
	size_t len, lines = 0, i;

	FUZZ_CHECK(octo_metrics_new(&reg) == 0 &&
	           octo_metrics_counter(&family, reg, "fuzz_escape_total", "Fuzzed label values.",
	                                labels) == 0 &&
	           octo_metrics_with(&child, family, values) == 0 &&
	           octo_metrics_gauge(&family, reg, "fuzz_help", in, NULL) == 0,
	           "metrics: %s", octo_error_last());
	octo_metrics_inc(child);
	FUZZ_CHECK(octo_metrics_render(reg, &text, &len) == 0, "render: %s", octo_error_last());
	got = malloc(len + 1);
	check = malloc(3 * len + 1);
	FUZZ_CHECK(got && check, "out of memory");
	FUZZ_CHECK(fuzz_utf8_repair(text, len, check) == len && memcmp(check, text, len) == 0,
	           "the exposition is not valid UTF-8");
	for (i = 0; i < len; i++)
		lines += text[i] == '\n';
	FUZZ_CHECK(lines == 6 && text[len - 1] == '\n', "%zu lines: %s", lines, text);
	p = strstr(text, "\n" SERIES);
	FUZZ_CHECK(p && (p = unescape(p + strlen("\n" SERIES), '"', 1, got)) != NULL &&
	           strncmp(p, "\"} 1\n# HELP ", 12) == 0, "no series line to read: %s", text);
	FUZZ_CHECK(strcmp(got, want) == 0, "label value \"%s\" came back as \"%s\"", want, got);
	p = strstr(text, HELP);
	FUZZ_CHECK(p && (p = unescape(p + strlen(HELP), '\n', 0, got)) != NULL,
	           "no HELP line to read: %s", text);
	FUZZ_CHECK(strcmp(got, want) == 0, "HELP \"%s\" came back as \"%s\"", want, got);
	free(check);
	free(got);
	octo_free(text);
	octo_metrics_free(reg);
}

static void check_log(const char *in, const char *want)
{
	octo_log_field field[] = { OCTO_LOG_STR("value", in) };
	const char *message = NULL, *value = NULL;
	octo_json *doc = NULL;
	char *line;
	ssize_t n;
	int fd;

	FUZZ_CHECK(truncate(log_path, 0) == 0, "cannot empty the log");
	octo_log_write(logger, OCTO_LOG_INFO, in, field, 1);
	/* \u00XX for a control byte, twice: 12 bytes per byte at most */
	line = malloc(12 * strlen(in) + 4096);
	FUZZ_CHECK(line != NULL && (fd = open(log_path, O_RDONLY)) >= 0, "cannot read the log");
	n = read(fd, line, 12 * strlen(in) + 4095);
	close(fd);
	FUZZ_CHECK(n > 0 && line[n - 1] == '\n' && memchr(line, '\n', (size_t)n) == line + n - 1,
	           "not one line: %.*s", (int)(n > 0 ? n : 0), line);
	FUZZ_CHECK(octo_json_parse(&doc, line, (size_t)n - 1) == 0, "the line is no JSON (%s): %.*s",
	           octo_error_last(), (int)n, line);
	octo_json_string(octo_json_get(octo_json_root(doc), "message"), &message);
	octo_json_string(octo_json_get(octo_json_root(doc), "value"), &value);
	FUZZ_CHECK(message && strcmp(message, want) == 0, "message \"%s\" came back as \"%s\"",
	           want, message ? message : "(none)");
	FUZZ_CHECK(value && strcmp(value, want) == 0, "field \"%s\" came back as \"%s\"", want,
	           value ? value : "(none)");
	octo_json_free(doc);
	free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = fuzz_strndup(data, size), *want = malloc(3 * size + 1);

	FUZZ_CHECK(want != NULL, "out of memory");
	fuzz_utf8_repair(in, strlen(in), want);
	check_metrics(in, want);
	check_log(in, want);
	free(want);
	free(in);
	return 0;
}
