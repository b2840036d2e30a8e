/* The .env parser (server/envfile.c) on arbitrary bytes, from memory.
 * Beyond not crashing or leaking: a refusal names its line ("line N: ..."
 * with N within the file); a file that parses defines every name its
 * lines assign and nothing else (envfile_count); and what it read round
 * trips: each value written back as NAME="..." (escaping \ " $ and line
 * breaks) parses again to the same value. Values are C strings, so the
 * comparison also shows they hold no NUL. */
#include "config.h"
#include "fuzzutil.h"
#include "../../server/envfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int name_char(char c, int first)
{
	return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (!first && c >= '0' && c <= '9');
}

/* The names the lines of a file that parsed assign, each once, in order:
 * "NAME=...", "  NAME =...", "export NAME=..."; blank and comment lines
 * assign nothing. NUL-separated in `out` (size of the text + 1). */
static size_t assigned_names(const char *text, size_t len, char *out)
{
	const char *line = text, *end = text + len;
	size_t count = 0, o = 0;

	while (line < end) {
		const char *eol = memchr(line, '\n', (size_t)(end - line)), *s = line, *name;
		if (!eol)
			eol = end;
		if (eol > s && eol[-1] == '\r')
			eol--;
		while (s < eol && (*s == ' ' || *s == '\t'))
			s++;
		if (eol - s > 7 && strncmp(s, "export ", 7) == 0)
			for (s += 7; s < eol && (*s == ' ' || *s == '\t'); s++)
				;
		for (name = s; s < eol && name_char(*s, s == name); s++)
			;
		if (s > name) {
			size_t n = (size_t)(s - name), i;
			int seen = 0;
			for (i = 0; i < o && !seen; i += strlen(out + i) + 1)
				seen = strlen(out + i) == n && memcmp(out + i, name, n) == 0;
			if (!seen) {
				memcpy(out + o, name, n);
				out[o + n] = '\0';
				o += n + 1;
				count++;
			}
		}
		line = memchr(line, '\n', (size_t)(end - line));
		line = line ? line + 1 : end;
	}
	return count;
}

/* NAME="value" lines for every name, escaped for double quotes. */
static char *write_back(const envfile *ef, const char *names, size_t count, size_t *len)
{
	size_t cap = 64, o = 0, i, k;
	char *out = malloc(cap);

	for (i = 0, k = 0; k < count; k++, i += strlen(names + i) + 1) {
		const char *v = envfile_get(ef, names + i);
		size_t need = o + strlen(names + i) + 2 * strlen(v) + 8;
		if (need > cap && out && !(out = realloc(out, cap = 2 * need)))
			break;
		FUZZ_CHECK(out != NULL, "out of memory");
		o += (size_t)sprintf(out + o, "%s=\"", names + i);
		for (; *v; v++) {
			const char *esc = *v == '\\' ? "\\\\" : *v == '"' ? "\\\"" : *v == '$' ? "\\$"
			                  : *v == '\n' ? "\\n" : *v == '\r' ? "\\r" : NULL;
			if (esc)
				o += (size_t)sprintf(out + o, "%s", esc);
			else
				out[o++] = *v;
		}
		o += (size_t)sprintf(out + o, "\"\n");
	}
	FUZZ_CHECK(out != NULL, "out of memory");
	*len = o;
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	char err[256] = "", *copy, *names, *again_text;
	envfile *ef = NULL, *again = NULL;
	size_t count, i, k, len, line = 0;

	if (envfile_parse(&ef, text, size, err, sizeof(err)) != 0) {
		FUZZ_CHECK(sscanf(err, "line %zu: ", &line) == 1 && line >= 1 &&
		           line <= (size_t)1 + (size_t)(size ? size : 0),
		           "refusal without its line: \"%s\"", err);
		return 0;
	}
	copy = fuzz_strndup(data, size); /* it parsed: no NUL inside */
	names = fuzz_strndup(data, size); /* as big as the names can be */
	count = assigned_names(copy, size, names);
	FUZZ_CHECK(envfile_count(ef) == count, "%zu names assigned, %zu defined", count,
	           envfile_count(ef));
	for (i = 0, k = 0; k < count; k++, i += strlen(names + i) + 1)
		FUZZ_CHECK(envfile_get(ef, names + i) != NULL, "%s was assigned, is undefined",
		           names + i);
	again_text = write_back(ef, names, count, &len);
	FUZZ_CHECK(envfile_parse(&again, again_text, len, err, sizeof(err)) == 0,
	           "what was read does not parse again (%s): %s", err, again_text);
	FUZZ_CHECK(envfile_count(again) == count, "%zu names came back as %zu", count,
	           envfile_count(again));
	for (i = 0, k = 0; k < count; k++, i += strlen(names + i) + 1)
		FUZZ_CHECK(strcmp(envfile_get(ef, names + i), envfile_get(again, names + i)) == 0,
		           "%s=\"%s\" came back as \"%s\"", names + i, envfile_get(ef, names + i),
		           envfile_get(again, names + i));
	envfile_free(again);
	envfile_free(ef);
	free(again_text);
	free(names);
	free(copy);
	return 0;
}
