/* The .env parser. One pass per line; values are built in a growable
 * buffer so any length fits, and every syntax error names its line. */
#include "config.h"
#include "envfile.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENVFILE_MAX_BYTES (1024 * 1024)

typedef struct {
	char *name;
	char *value;
} pair;

struct envfile {
	pair *pairs;
	size_t count, cap;
};

typedef struct {
	char *data;
	size_t len, cap;
} buf;

static int buf_put(buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		char *bigger;
		while (cap < b->len + n + 1)
			cap *= 2;
		if (!(bigger = realloc(b->data, cap)))
			return -1;
		b->data = bigger;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

static int fail(char *err, size_t errlen, size_t line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, size_t line, const char *fmt, ...)
{
	char why[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "line %zu: %s", line, why);
	return -1;
}

const char *envfile_get(const envfile *ef, const char *name)
{
	size_t i;

	if (!ef)
		return NULL;
	for (i = 0; i < ef->count; i++)
		if (strcmp(ef->pairs[i].name, name) == 0)
			return ef->pairs[i].value;
	return NULL;
}

size_t envfile_count(const envfile *ef)
{
	return ef ? ef->count : 0;
}

static int set_pair(envfile *ef, char *name, char *value)
{
	size_t i;

	for (i = 0; i < ef->count; i++) {
		if (strcmp(ef->pairs[i].name, name) == 0) {
			free(name);
			free(ef->pairs[i].value);
			ef->pairs[i].value = value;
			return 0;
		}
	}
	if (ef->count == ef->cap) {
		size_t cap = ef->cap ? ef->cap * 2 : 16;
		pair *bigger = realloc(ef->pairs, cap * sizeof(*bigger));
		if (!bigger)
			return -1;
		ef->pairs = bigger;
		ef->cap = cap;
	}
	ef->pairs[ef->count].name = name;
	ef->pairs[ef->count].value = value;
	ef->count++;
	return 0;
}

static int is_name_char(char c, int first)
{
	return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (!first && c >= '0' && c <= '9');
}

/* Expands ${NAME} at *p (just past the '$'); advances *p. */
static int expand(const envfile *ef, const char **p, const char *end, buf *out,
                  char *err, size_t errlen, size_t line)
{
	const char *s = *p + 1, *close;
	char name[256];
	const char *value;
	size_t n;

	close = memchr(s, '}', (size_t)(end - s));
	if (!close)
		return fail(err, errlen, line, "unterminated ${");
	n = (size_t)(close - s);
	if (n == 0 || n >= sizeof(name) || !is_name_char(s[0], 1))
		return fail(err, errlen, line, "invalid variable reference");
	for (size_t i = 0; i < n; i++)
		if (!is_name_char(s[i], 0))
			return fail(err, errlen, line, "invalid variable reference");
	memcpy(name, s, n);
	name[n] = '\0';
	value = getenv(name);
	if (!value)
		value = envfile_get(ef, name);
	*p = close + 1;
	if (!value)
		return 0;
	/* Each ${VAR} copies a whole earlier value: nested references grow
	 * exponentially, so a small file could ask for gigabytes. */
	if (out->len + strlen(value) > ENVFILE_MAX_BYTES)
		return fail(err, errlen, line, "value longer than 1 MiB after expansion");
	return buf_put(out, value, strlen(value));
}

static int double_quoted(const envfile *ef, const char **p, const char *end, buf *out,
                         char *err, size_t errlen, size_t line)
{
	const char *s = *p + 1;

	while (s < end && *s != '"') {
		int rc = 0;
		if (*s == '\\' && s + 1 < end) {
			char c = s[1];
			char e = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
			rc = buf_put(out, &e, 1);
			s += 2;
		} else if (*s == '$' && s + 1 < end && s[1] == '{') {
			s++;
			rc = expand(ef, &s, end, out, err, errlen, line);
		} else {
			rc = buf_put(out, s++, 1);
		}
		if (rc < 0)
			return rc;
	}
	if (s >= end)
		return fail(err, errlen, line, "unterminated double quote");
	*p = s + 1;
	return 0;
}

static int single_quoted(const char **p, const char *end, buf *out,
                         char *err, size_t errlen, size_t line)
{
	const char *s = *p + 1, *close = memchr(s, '\'', (size_t)(end - s));

	if (!close)
		return fail(err, errlen, line, "unterminated single quote");
	*p = close + 1;
	return buf_put(out, s, (size_t)(close - s));
}

/* Unquoted: up to end of line or " #"; trailing blanks dropped. */
static int unquoted(const envfile *ef, const char **p, const char *end, buf *out,
                    char *err, size_t errlen, size_t line)
{
	const char *s = *p;

	while (s < end && !(*s == '#' && s > *p && (s[-1] == ' ' || s[-1] == '\t'))) {
		int rc;
		if (*s == '$' && s + 1 < end && s[1] == '{') {
			s++;
			rc = expand(ef, &s, end, out, err, errlen, line);
		} else {
			rc = buf_put(out, s++, 1);
		}
		if (rc < 0)
			return rc;
	}
	while (out->len > 0 && (out->data[out->len - 1] == ' ' || out->data[out->len - 1] == '\t'))
		out->data[--out->len] = '\0';
	*p = end;
	return 0;
}

static const char *skip_blanks(const char *s, const char *end)
{
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	return s;
}

static int parse_value(const envfile *ef, const char *s, const char *end, buf *value,
                       char *err, size_t errlen, size_t line)
{
	int rc;

	if (s < end && *s == '"')
		rc = double_quoted(ef, &s, end, value, err, errlen, line);
	else if (s < end && *s == '\'')
		rc = single_quoted(&s, end, value, err, errlen, line);
	else
		return unquoted(ef, &s, end, value, err, errlen, line);
	if (rc < 0)
		return rc;
	s = skip_blanks(s, end);
	if (s < end && *s != '#')
		return fail(err, errlen, line, "unexpected text after closing quote");
	return 0;
}

static int parse_line(envfile *ef, const char *s, const char *end,
                      char *err, size_t errlen, size_t line)
{
	const char *name;
	buf value = { NULL, 0, 0 };
	char *key;
	size_t n;

	if (end > s && end[-1] == '\r')
		end--;
	s = skip_blanks(s, end);
	if (s == end || *s == '#')
		return 0;
	if ((size_t)(end - s) > 7 && strncmp(s, "export ", 7) == 0)
		s = skip_blanks(s + 7, end);
	for (name = s; s < end && is_name_char(*s, s == name); s++)
		;
	n = (size_t)(s - name);
	if (n == 0)
		return fail(err, errlen, line, "expected a variable name");
	s = skip_blanks(s, end);
	if (s == end || *s != '=')
		return fail(err, errlen, line, "expected '=' after %.*s", (int)(n > 64 ? 64 : n), name);
	if (parse_value(ef, skip_blanks(s + 1, end), end, &value, err, errlen, line) < 0 ||
	    (!value.data && buf_put(&value, "", 0) < 0)) {
		free(value.data);
		return -1;
	}
	if (!(key = strndup(name, n)) || set_pair(ef, key, value.data) < 0) {
		free(key);
		free(value.data);
		return fail(err, errlen, line, "out of memory");
	}
	return 0;
}

int envfile_parse(envfile **out, const char *text, size_t len, char *err, size_t errlen)
{
	const char *s = text, *end = text + len, *nul;
	envfile *ef = calloc(1, sizeof(*ef));
	size_t line = 1;

	if (!ef)
		return fail(err, errlen, 0, "out of memory");
	if ((nul = memchr(text, '\0', len))) {
		for (; s < nul; s++)
			if (*s == '\n')
				line++;
		envfile_free(ef);
		return fail(err, errlen, line, "NUL byte in file");
	}
	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		const char *eol = nl ? nl : end;
		if (parse_line(ef, s, eol, err, errlen, line) < 0) {
			envfile_free(ef);
			return -1;
		}
		s = nl ? nl + 1 : end;
		line++;
	}
	*out = ef;
	return 0;
}

int envfile_load(envfile **out, const char *path, char *err, size_t errlen)
{
	char *text = malloc(ENVFILE_MAX_BYTES + 1), why[256];
	FILE *f = fopen(path, "rb");
	size_t len;
	int rc;

	if (!f || !text) {
		snprintf(err, errlen, "%s: %s", path, f ? "out of memory" : strerror(errno));
		free(text);
		if (f)
			fclose(f);
		return -1;
	}
	len = fread(text, 1, ENVFILE_MAX_BYTES + 1, f);
	rc = ferror(f) ? -1 : 0;
	fclose(f);
	if (rc < 0 || len > ENVFILE_MAX_BYTES) {
		snprintf(err, errlen, "%s: %s", path, rc < 0 ? "read error" : "larger than 1 MiB");
		free(text);
		return -1;
	}
	rc = envfile_parse(out, text, len, why, sizeof(why));
	free(text);
	if (rc < 0)
		snprintf(err, errlen, "%s: %s", path, why);
	return rc;
}

void envfile_free(envfile *ef)
{
	size_t i;

	if (!ef)
		return;
	for (i = 0; i < ef->count; i++) {
		free(ef->pairs[i].name);
		free(ef->pairs[i].value);
	}
	free(ef->pairs);
	free(ef);
}
