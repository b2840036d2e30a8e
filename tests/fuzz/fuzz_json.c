/* octo_json_parse on arbitrary bytes. Beyond not crashing: every string
 * and key of a document that parses is valid UTF-8 (json.h refuses invalid
 * UTF-8), and the document round trips: written back with
 * octo_json_writer, the text parses again into an equal document (same
 * types, keys in the same order, same strings and integers; any other
 * number as the writer's 6 significant digits of it). A number beyond
 * double range cannot be written (the writer refuses non-finite values),
 * so such documents end after the first parse.
 *
 * Object keys and number texts come from the yajl nodes behind the opaque
 * values: json.h has no call that lists keys. */
#include "config.h"
#include "fuzzutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#define NODE(v) ((yajl_val)(v))

static int valid_utf8(const char *s)
{
	size_t len = strlen(s), i;
	char *copy = malloc(3 * len + 1);
	int same;

	FUZZ_CHECK(copy != NULL, "out of memory");
	i = fuzz_utf8_repair(s, len, copy);
	same = i == len && memcmp(copy, s, len) == 0;
	free(copy);
	return same;
}

/* Writes `v`; 0 when the writer cannot hold it (a number out of range). */
static int write_value(octo_json_writer *w, const octo_json_value *v)
{
	yajl_val n = NODE(v);
	const char *s = NULL;
	int64_t i = 0;
	int b = 0, ok = 1;
	size_t k;

	switch (octo_json_typeof(v)) {
	case OCTO_JSON_NULL: octo_json_write_null(w); break;
	case OCTO_JSON_BOOL: octo_json_bool(v, &b); octo_json_write_bool(w, b); break;
	case OCTO_JSON_INTEGER: octo_json_int(v, &i); octo_json_write_int(w, i); break;
	case OCTO_JSON_NUMBER:
		if (!isfinite(strtod(YAJL_GET_NUMBER(n), NULL)))
			return 0;
		octo_json_write_double(w, strtod(YAJL_GET_NUMBER(n), NULL));
		break;
	case OCTO_JSON_STRING:
		octo_json_string(v, &s);
		FUZZ_CHECK(valid_utf8(s), "a parsed string is not valid UTF-8: \"%s\"", s);
		octo_json_write_string(w, s);
		break;
	case OCTO_JSON_ARRAY:
		octo_json_write_array_begin(w);
		for (k = 0; k < octo_json_size(v) && ok; k++)
			ok = write_value(w, octo_json_at(v, k));
		octo_json_write_array_end(w);
		break;
	case OCTO_JSON_OBJECT:
		octo_json_write_object_begin(w);
		for (k = 0; k < octo_json_size(v) && ok; k++) {
			FUZZ_CHECK(valid_utf8(n->u.object.keys[k]), "a parsed key is not valid UTF-8: "
			           "\"%s\"", n->u.object.keys[k]);
			octo_json_write_key(w, n->u.object.keys[k]);
			ok = write_value(w, (const octo_json_value *)n->u.object.values[k]);
		}
		octo_json_write_object_end(w);
		break;
	}
	return ok;
}

static void compare(const octo_json_value *a, const octo_json_value *b)
{
	octo_json_type ta = octo_json_typeof(a), tb = octo_json_typeof(b);
	const char *sa = NULL, *sb = NULL;
	int64_t ia = 0, ib = 0;
	int ba = 0, bb = 0;
	char num[32];
	size_t k;

	if (ta == OCTO_JSON_NUMBER) {
		snprintf(num, sizeof(num), "%.6g", strtod(YAJL_GET_NUMBER(NODE(a)), NULL));
		FUZZ_CHECK((tb == OCTO_JSON_NUMBER || tb == OCTO_JSON_INTEGER) &&
		           strcmp(YAJL_GET_NUMBER(NODE(b)), num) == 0,
		           "number %s came back as %s", YAJL_GET_NUMBER(NODE(a)),
		           YAJL_IS_NUMBER(NODE(b)) ? YAJL_GET_NUMBER(NODE(b)) : "no number");
		return;
	}
	FUZZ_CHECK(ta == tb, "type %d came back as %d", (int)ta, (int)tb);
	FUZZ_CHECK(octo_json_size(a) == octo_json_size(b), "%zu members came back as %zu",
	           octo_json_size(a), octo_json_size(b));
	switch (ta) {
	case OCTO_JSON_BOOL:
		octo_json_bool(a, &ba);
		octo_json_bool(b, &bb);
		FUZZ_CHECK(ba == bb, "bool %d came back as %d", ba, bb);
		break;
	case OCTO_JSON_INTEGER:
		octo_json_int(a, &ia);
		octo_json_int(b, &ib);
		FUZZ_CHECK(ia == ib, "%lld came back as %lld", (long long)ia, (long long)ib);
		break;
	case OCTO_JSON_STRING:
		octo_json_string(a, &sa);
		octo_json_string(b, &sb);
		FUZZ_CHECK(strcmp(sa, sb) == 0, "\"%s\" came back as \"%s\"", sa, sb);
		break;
	case OCTO_JSON_ARRAY:
		for (k = 0; k < octo_json_size(a); k++)
			compare(octo_json_at(a, k), octo_json_at(b, k));
		break;
	case OCTO_JSON_OBJECT:
		for (k = 0; k < octo_json_size(a); k++) {
			const char *key = NODE(a)->u.object.keys[k];
			FUZZ_CHECK(strcmp(key, NODE(b)->u.object.keys[k]) == 0,
			           "key \"%s\" came back as \"%s\"", key, NODE(b)->u.object.keys[k]);
			compare((const octo_json_value *)NODE(a)->u.object.values[k],
			        (const octo_json_value *)NODE(b)->u.object.values[k]);
		}
		break;
	default:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	octo_json *doc = NULL, *again = NULL;
	octo_json_writer *w = NULL;
	char *text = NULL;
	size_t len = 0;
	int rc;

	if (octo_json_parse(&doc, (const char *)data, size) != 0)
		return 0;
	FUZZ_CHECK(octo_json_writer_new(&w) == 0, "out of memory");
	if (write_value(w, octo_json_root(doc))) {
		rc = octo_json_writer_finish(w, &text, &len);
		FUZZ_CHECK(rc == 0, "the writer refused the document: %s", octo_error_last());
		rc = octo_json_parse(&again, text, len);
		FUZZ_CHECK(rc == 0, "what the writer wrote does not parse (%s): %s",
		           octo_error_last(), text);
		compare(octo_json_root(doc), octo_json_root(again));
	}
	octo_json_free(again);
	octo_free(text);
	octo_json_writer_free(w);
	octo_json_free(doc);
	return 0;
}
