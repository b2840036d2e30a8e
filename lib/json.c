/* JSON over yajl: yajl_tree for parsing, yajl_gen for writing, plus the
 * strictness yajl leaves to its caller (depth, comments, duplicate keys). */
#include "config.h"
#include "internal.h"

#include <octopus/json.h>

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

struct octo_json {
	yajl_val root;
};

/* What the writer expects next inside each open container: yajl_gen
 * neither checks that a close matches its open nor that a key got its
 * value, so the writer tracks that itself. */
typedef enum { IN_ARRAY, IN_OBJECT_KEY, IN_OBJECT_VALUE } writer_state;

struct octo_json_writer {
	yajl_gen gen;
	int depth;
	int values;   /* top-level values written */
	int failed;
	unsigned char state[YAJL_MAX_DEPTH]; /* writer_state per open container */
};

/* A value handle is the yajl node itself; the public type stays opaque. */
#define NODE(v) ((yajl_val)(v))

static size_t utf8_seq(const unsigned char *s, size_t avail);

/* The four hex digits after "\\u" at text[i] ('u'), or -1. */
static long hex4(const char *text, size_t len, size_t i)
{
	char digits[5];
	char *end;
	long v;

	if (len - i <= 4)
		return -1;
	memcpy(digits, text + i + 1, 4);
	digits[4] = '\0';
	v = strtol(digits, &end, 16);
	return *end == '\0' && isxdigit((unsigned char)digits[0]) ? v : -1;
}

/* yajl decodes \uD800-\uDFFF escapes without pairing them: a lone low
 * surrogate becomes invalid UTF-8, and a high one is joined with
 * whatever \u escape follows. So a high surrogate must be followed by a
 * low one, and a low one may only follow a high one. text[i] is the 'u';
 * returns how many characters a valid pair lets the scan skip (its low
 * half), 0 for any other escape, -1 for an unpaired surrogate. */
static long surrogate_skip(const char *text, size_t len, size_t i)
{
	long v = hex4(text, len, i), next;

	if (v < 0xD800 || v > 0xDFFF)
		return 0;
	if (v >= 0xDC00 || len - i <= 10 || text[i + 5] != '\\' || text[i + 6] != 'u')
		return -1;
	next = hex4(text, len, i + 6);
	return next >= 0xDC00 && next <= 0xDFFF ? 10 : -1;
}

/* Checks what yajl_tree does not: nesting depth (yajl_tree_free recurses),
 * raw NUL bytes, strict UTF-8, and comments (yajl_tree_parse enables them). */
static int prescan(const char *text, size_t len)
{
	int depth = 0, in_string = 0, escaped = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		char c = text[i];
		if (c == '\0')
			return octo__error(OCTO_EPARSE, "NUL byte at offset %zu", i);
		/* yajl checks only the shape of UTF-8 sequences and lets overlong
		 * forms, surrogates and code points above U+10FFFF through. */
		if ((unsigned char)c >= 0x80) {
			size_t n = utf8_seq((const unsigned char *)text + i, len - i);
			if (n == 0)
				return octo__error(OCTO_EPARSE, "invalid UTF-8 at offset %zu", i);
			i += n - 1;
			escaped = 0;
			continue;
		}
		if (in_string) {
			/* \u0000 would cut the NUL-terminated strings readers get. */
			if (escaped && c == 'u' && len - i > 4 && memcmp(text + i + 1, "0000", 4) == 0)
				return octo__error(OCTO_EPARSE, "\\u0000 at offset %zu", i - 1);
			if (escaped && c == 'u') {
				long skip = surrogate_skip(text, len, i);
				if (skip < 0)
					return octo__error(OCTO_EPARSE, "unpaired UTF-16 surrogate "
					                   "at offset %zu", i - 1);
				i += (size_t)skip;
			}
			if (escaped)
				escaped = 0;
			else if (c == '\\')
				escaped = 1;
			else if (c == '"')
				in_string = 0;
			continue;
		}
		if (c == '"') {
			in_string = 1;
		} else if (c == '[' || c == '{') {
			if (++depth > OCTO_JSON_MAX_DEPTH)
				return octo__error(OCTO_EPARSE, "nesting deeper than %d",
				                   OCTO_JSON_MAX_DEPTH);
		} else if (c == ']' || c == '}') {
			depth--;
		} else if (c == '/') {
			return octo__error(OCTO_EPARSE, "comments are not JSON (offset %zu)", i);
		}
	}
	return 0;
}

static int cmp_keys(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* 0 when no object below `v` repeats a key. Depth is bounded by prescan. */
static int check_duplicates(yajl_val v)
{
	size_t i, n;

	if (YAJL_IS_ARRAY(v)) {
		int rc = 0;
		for (i = 0; i < v->u.array.len && rc == 0; i++)
			rc = check_duplicates(v->u.array.values[i]);
		return rc;
	}
	if (!YAJL_IS_OBJECT(v) || (n = v->u.object.len) == 0)
		return 0;
	{
		const char **keys = malloc(n * sizeof(*keys));
		int rc = 0;
		if (!keys)
			return octo__error(OCTO_ENOMEM, "out of memory");
		memcpy(keys, v->u.object.keys, n * sizeof(*keys));
		qsort(keys, n, sizeof(*keys), cmp_keys);
		for (i = 1; i < n && rc == 0; i++)
			if (strcmp(keys[i - 1], keys[i]) == 0)
				rc = octo__error(OCTO_EPARSE, "duplicate key \"%.64s\"", keys[i]);
		free(keys);
		for (i = 0; i < n && rc == 0; i++)
			rc = check_duplicates(v->u.object.values[i]);
		return rc;
	}
}

int octo_json_parse(octo_json **out, const char *text, size_t len)
{
	char errbuf[256] = "";
	char *copy;
	octo_json *doc;
	int rc;

	octo__error_clear();
	if (!out || (!text && len))
		return octo__error(OCTO_EINVAL, "no JSON text");
	if ((rc = prescan(text, len)) < 0)
		return rc;
	/* yajl_tree_parse wants a NUL-terminated string. */
	if (!(copy = malloc(len + 1)) || !(doc = calloc(1, sizeof(*doc)))) {
		free(copy);
		return octo__error(OCTO_ENOMEM, "out of memory");
	}
	if (len)
		memcpy(copy, text, len);
	copy[len] = '\0';
	doc->root = yajl_tree_parse(copy, errbuf, sizeof(errbuf));
	free(copy);
	if (!doc->root) {
		char *nl = strchr(errbuf, '\n');
		if (nl)
			*nl = '\0';
		free(doc);
		return octo__error(OCTO_EPARSE, "%s", errbuf[0] ? errbuf : "invalid JSON");
	}
	if ((rc = check_duplicates(doc->root)) < 0) {
		octo_json_free(doc);
		return rc;
	}
	*out = doc;
	return 0;
}

void octo_json_free(octo_json *doc)
{
	if (!doc)
		return;
	yajl_tree_free(doc->root);
	free(doc);
}

const octo_json_value *octo_json_root(const octo_json *doc)
{
	return (const octo_json_value *)doc->root;
}

/* 1 when the number node `n` is an integer that fits int64. Decided from
 * its text: yajl's own flag misses INT64_MIN. */
static int node_integer(yajl_val n, int64_t *out)
{
	const char *text = YAJL_GET_NUMBER(n);
	char *end;
	long long i;

	if (!text || strpbrk(text, ".eE"))
		return 0;
	errno = 0;
	i = strtoll(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0')
		return 0;
	*out = (int64_t)i;
	return 1;
}

octo_json_type octo_json_typeof(const octo_json_value *v)
{
	yajl_val n = NODE(v);
	int64_t ignored;

	if (!n || YAJL_IS_NULL(n))
		return OCTO_JSON_NULL;
	if (YAJL_IS_TRUE(n) || YAJL_IS_FALSE(n))
		return OCTO_JSON_BOOL;
	if (YAJL_IS_NUMBER(n))
		return node_integer(n, &ignored) ? OCTO_JSON_INTEGER : OCTO_JSON_NUMBER;
	if (YAJL_IS_STRING(n))
		return OCTO_JSON_STRING;
	if (YAJL_IS_ARRAY(n))
		return OCTO_JSON_ARRAY;
	return OCTO_JSON_OBJECT;
}

const octo_json_value *octo_json_get(const octo_json_value *obj, const char *key)
{
	yajl_val n = NODE(obj);
	size_t i;

	if (!n || !YAJL_IS_OBJECT(n) || !key)
		return NULL;
	for (i = 0; i < n->u.object.len; i++)
		if (strcmp(n->u.object.keys[i], key) == 0)
			return (const octo_json_value *)n->u.object.values[i];
	return NULL;
}

size_t octo_json_size(const octo_json_value *v)
{
	yajl_val n = NODE(v);

	if (n && YAJL_IS_ARRAY(n))
		return n->u.array.len;
	if (n && YAJL_IS_OBJECT(n))
		return n->u.object.len;
	return 0;
}

const octo_json_value *octo_json_at(const octo_json_value *arr, size_t index)
{
	yajl_val n = NODE(arr);

	if (!n || !YAJL_IS_ARRAY(n) || index >= n->u.array.len)
		return NULL;
	return (const octo_json_value *)n->u.array.values[index];
}

int octo_json_int(const octo_json_value *v, int64_t *out)
{
	int64_t i;

	if (!YAJL_IS_NUMBER(NODE(v)) || !node_integer(NODE(v), &i))
		return OCTO_EINVAL;
	*out = i;
	return 0;
}

int octo_json_bool(const octo_json_value *v, int *out)
{
	if (octo_json_typeof(v) != OCTO_JSON_BOOL)
		return OCTO_EINVAL;
	*out = YAJL_IS_TRUE(NODE(v));
	return 0;
}

int octo_json_string(const octo_json_value *v, const char **out)
{
	if (octo_json_typeof(v) != OCTO_JSON_STRING)
		return OCTO_EINVAL;
	*out = YAJL_GET_STRING(NODE(v));
	return 0;
}

/* ---- writer ---------------------------------------------------------- */

int octo_json_writer_new(octo_json_writer **out)
{
	octo_json_writer *w = calloc(1, sizeof(*w));

	if (!w || !(w->gen = yajl_gen_alloc(NULL))) {
		free(w);
		return octo__error(OCTO_ENOMEM, "out of memory");
	}
	yajl_gen_config(w->gen, yajl_gen_validate_utf8, 1);
	*out = w;
	return 0;
}

void octo_json_writer_free(octo_json_writer *w)
{
	if (!w)
		return;
	yajl_gen_free(w->gen);
	free(w);
}

/* Every write call returns early once the writer has failed: the output
 * is discarded anyway, and yajl_gen keeps counting depth past its limit,
 * so further calls would read beyond its state array. */
static void check(octo_json_writer *w, yajl_gen_status st)
{
	if (st != yajl_gen_status_ok)
		w->failed = 1;
}

/* Called before every value: inside an object a value must follow a key. */
static void value_expected(octo_json_writer *w)
{
	unsigned char *top = w->depth > 0 ? &w->state[w->depth - 1] : NULL;

	if (top && *top == IN_OBJECT_KEY)
		w->failed = 1;
	else if (top && *top == IN_OBJECT_VALUE)
		*top = IN_OBJECT_KEY;
}

static void value_written(octo_json_writer *w)
{
	if (w->depth == 0)
		w->values++;
}

static void open_container(octo_json_writer *w, writer_state state)
{
	value_expected(w);
	if (w->depth >= YAJL_MAX_DEPTH) {
		w->failed = 1;
		return;
	}
	w->state[w->depth++] = (unsigned char)state;
}

/* A close must match the innermost open container, with no key pending. */
static void close_container(octo_json_writer *w, writer_state state)
{
	if (w->depth == 0 || w->state[w->depth - 1] != state) {
		w->failed = 1;
		return;
	}
	w->depth--;
	value_written(w);
}

void octo_json_write_object_begin(octo_json_writer *w)
{
	if (w->failed)
		return;
	check(w, yajl_gen_map_open(w->gen));
	open_container(w, IN_OBJECT_KEY);
}

void octo_json_write_object_end(octo_json_writer *w)
{
	if (w->failed)
		return;
	check(w, yajl_gen_map_close(w->gen));
	close_container(w, IN_OBJECT_KEY);
}

void octo_json_write_array_begin(octo_json_writer *w)
{
	if (w->failed)
		return;
	check(w, yajl_gen_array_open(w->gen));
	open_container(w, IN_ARRAY);
}

void octo_json_write_array_end(octo_json_writer *w)
{
	if (w->failed)
		return;
	check(w, yajl_gen_array_close(w->gen));
	close_container(w, IN_ARRAY);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid:
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_seq(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];
	size_t n, i;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	if (avail < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}


static void write_text(octo_json_writer *w, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t len = strlen((const char *)p), i = 0, o = 0, n;
	unsigned char *clean;

	/* Valid UTF-8 goes straight through; anything else is repaired. */
	for (i = 0; i < len && (n = utf8_seq(p + i, len - i)) > 0; i += n)
		;
	if (i == len) {
		check(w, yajl_gen_string(w->gen, p, len));
		return;
	}
	if (!(clean = malloc(len * 3 + 1))) {
		w->failed = 1;
		return;
	}
	for (i = 0; i < len;) {
		n = utf8_seq(p + i, len - i);
		if (n == 0) {
			memcpy(clean + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		} else {
			memcpy(clean + o, p + i, n);
			o += n;
			i += n;
		}
	}
	check(w, yajl_gen_string(w->gen, clean, o));
	free(clean);
}

void octo_json_write_key(octo_json_writer *w, const char *key)
{
	if (w->failed)
		return;
	if (w->depth == 0 || w->state[w->depth - 1] != IN_OBJECT_KEY)
		w->failed = 1;
	else
		w->state[w->depth - 1] = IN_OBJECT_VALUE;
	write_text(w, key);
}

void octo_json_write_string(octo_json_writer *w, const char *s)
{
	if (w->failed)
		return;
	value_expected(w);
	write_text(w, s);
	value_written(w);
}

void octo_json_write_int(octo_json_writer *w, int64_t n)
{
	if (w->failed)
		return;
	value_expected(w);
	check(w, yajl_gen_integer(w->gen, (long long)n));
	value_written(w);
}

void octo_json_write_double(octo_json_writer *w, double d)
{
	char text[32];
	int n;

	if (w->failed)
		return;
	if (!isfinite(d)) {
		w->failed = 1;
		return;
	}
	value_expected(w);
	n = snprintf(text, sizeof(text), "%.6g", d);
	check(w, yajl_gen_number(w->gen, text, (size_t)n));
	value_written(w);
}

void octo_json_write_bool(octo_json_writer *w, int b)
{
	if (w->failed)
		return;
	value_expected(w);
	check(w, yajl_gen_bool(w->gen, b != 0));
	value_written(w);
}

void octo_json_write_null(octo_json_writer *w)
{
	if (w->failed)
		return;
	value_expected(w);
	check(w, yajl_gen_null(w->gen));
	value_written(w);
}

int octo_json_writer_finish(octo_json_writer *w, char **text, size_t *len)
{
	const unsigned char *buf;
	size_t n;
	int rc = 0;

	octo__error_clear();
	if (w->failed || w->depth != 0 || w->values != 1) {
		rc = octo__error(OCTO_EINVAL, "JSON writer calls do not form one value");
	} else if (yajl_gen_get_buf(w->gen, &buf, &n) != yajl_gen_status_ok ||
	           !(*text = malloc(n + 1))) {
		rc = octo__error(OCTO_ENOMEM, "out of memory");
	} else {
		memcpy(*text, buf, n);
		(*text)[n] = '\0';
		if (len)
			*len = n;
	}
	yajl_gen_reset(w->gen, NULL);
	yajl_gen_clear(w->gen);
	w->depth = w->values = w->failed = 0;
	return rc;
}
