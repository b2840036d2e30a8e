/* JSON: the strict parser and its readers, and the writer that must
 * always produce valid JSON whatever bytes it is given. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <octopus/octopus.h>

#include "testutil.h"

#define N_ELEMS(a) (int)(sizeof(a) / sizeof((a)[0]))

/* The document of a test; the teardown frees it. */
static octo_json *doc;

static void setup(void)
{
	doc = NULL;
}

static void teardown(void)
{
	octo_json_free(doc);
	doc = NULL;
}

/* Parses a NUL-terminated text that must be valid; returns its root. */
static const octo_json_value *parse_ok(const char *text)
{
	int rc = octo_json_parse(&doc, text, strlen(text));

	ck_assert_msg(rc == 0, "parse of '%s' gave %d: %s", text, rc, octo_error_last());
	ck_assert_ptr_nonnull(doc);
	return octo_json_root(doc);
}

/* A string of `depth` nested arrays around 1, e.g. depth 2: [[1]]. */
static char *nested_arrays(int depth)
{
	char *text = malloc((size_t)depth * 2 + 2);
	int i;

	ck_assert_ptr_nonnull(text);
	for (i = 0; i < depth; i++) {
		text[i] = '[';
		text[depth + 1 + i] = ']';
	}
	text[depth] = '1';
	text[depth * 2 + 1] = '\0';
	return text;
}

/* ---- parsing and types ---------------------------------------------- */

START_TEST(parse_reads_an_object_with_every_type_of_member)
{
	const octo_json_value *root = parse_ok(
		"{\"s\":\"text\",\"i\":-3,\"f\":1.5,\"t\":true,\"no\":false,"
		"\"n\":null,\"a\":[1,2],\"o\":{}}");

	ck_assert_int_eq(octo_json_typeof(root), OCTO_JSON_OBJECT);
	ck_assert_uint_eq(octo_json_size(root), 8);
	ck_assert_int_eq(octo_json_typeof(octo_json_get(root, "s")), OCTO_JSON_STRING);
	ck_assert_int_eq(octo_json_typeof(octo_json_get(root, "i")), OCTO_JSON_INTEGER);
	ck_assert_int_eq(octo_json_typeof(octo_json_get(root, "f")), OCTO_JSON_NUMBER);
	ck_assert_int_eq(octo_json_typeof(octo_json_get(root, "t")), OCTO_JSON_BOOL);
	ck_assert_int_eq(octo_json_typeof(octo_json_get(root, "no")), OCTO_JSON_BOOL);
	ck_assert_ptr_nonnull(octo_json_get(root, "n"));
	ck_assert_int_eq(octo_json_typeof(octo_json_get(root, "n")), OCTO_JSON_NULL);
	ck_assert_int_eq(octo_json_typeof(octo_json_get(root, "a")), OCTO_JSON_ARRAY);
	ck_assert_uint_eq(octo_json_size(octo_json_get(root, "a")), 2);
	ck_assert_int_eq(octo_json_typeof(octo_json_get(root, "o")), OCTO_JSON_OBJECT);
	ck_assert_uint_eq(octo_json_size(octo_json_get(root, "o")), 0);
}
END_TEST

START_TEST(parse_reads_nested_arrays)
{
	const octo_json_value *root = parse_ok("[[1,[2]],\"x\",[]]");
	const octo_json_value *inner;
	int64_t n = 0;

	ck_assert_int_eq(octo_json_typeof(root), OCTO_JSON_ARRAY);
	ck_assert_uint_eq(octo_json_size(root), 3);
	inner = octo_json_at(root, 0);
	ck_assert_uint_eq(octo_json_size(inner), 2);
	ck_assert_int_eq(octo_json_int(octo_json_at(inner, 0), &n), 0);
	ck_assert_int_eq(n, 1);
	inner = octo_json_at(inner, 1);
	ck_assert_int_eq(octo_json_typeof(inner), OCTO_JSON_ARRAY);
	ck_assert_int_eq(octo_json_int(octo_json_at(inner, 0), &n), 0);
	ck_assert_int_eq(n, 2);
	ck_assert_uint_eq(octo_json_size(octo_json_at(root, 2)), 0);
}
END_TEST

static const struct {
	const char *text;
	octo_json_type type;
} scalars[] = {
	{ "42", OCTO_JSON_INTEGER },
	{ "-0", OCTO_JSON_INTEGER },
	{ "-1.5", OCTO_JSON_NUMBER },
	{ "\"s\"", OCTO_JSON_STRING },
	{ "\"\"", OCTO_JSON_STRING },
	{ "true", OCTO_JSON_BOOL },
	{ "false", OCTO_JSON_BOOL },
	{ "null", OCTO_JSON_NULL },
	{ " \t\r\n[] \n", OCTO_JSON_ARRAY },
	{ "\n{ }\t", OCTO_JSON_OBJECT },
};

START_TEST(parse_accepts_any_value_at_the_top_level)
{
	const octo_json_value *root = parse_ok(scalars[_i].text);

	ck_assert_int_eq(octo_json_typeof(root), scalars[_i].type);
	ck_assert_uint_eq(octo_json_size(root), 0);
}
END_TEST

START_TEST(parse_reads_only_len_bytes)
{
	static const char text[] = "[7]garbage";
	int64_t n = 0;

	ck_assert_int_eq(octo_json_parse(&doc, text, 3), 0);
	ck_assert_int_eq(octo_json_int(octo_json_at(octo_json_root(doc), 0), &n), 0);
	ck_assert_int_eq(n, 7);
}
END_TEST

START_TEST(parse_allows_slashes_and_brackets_inside_strings)
{
	/* Neither a comment nor nesting: they are string content. */
	const octo_json_value *root =
		parse_ok("{\"url\":\"http://x/*y*/\",\"b\":\"[[[[{{{{\",\"q\":\"\\\"//\"}");
	const char *s = NULL;

	ck_assert_int_eq(octo_json_string(octo_json_get(root, "url"), &s), 0);
	ck_assert_str_eq(s, "http://x/*y*/");
	ck_assert_int_eq(octo_json_string(octo_json_get(root, "b"), &s), 0);
	ck_assert_str_eq(s, "[[[[{{{{");
	ck_assert_int_eq(octo_json_string(octo_json_get(root, "q"), &s), 0);
	ck_assert_str_eq(s, "\"//");
}
END_TEST

START_TEST(parse_allows_the_same_key_in_different_objects)
{
	const octo_json_value *root = parse_ok("{\"a\":{\"a\":1},\"b\":[{\"a\":2},{\"a\":3}]}");
	int64_t n = 0;

	ck_assert_int_eq(octo_json_int(octo_json_get(octo_json_get(root, "a"), "a"), &n), 0);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(octo_json_int(octo_json_get(octo_json_at(octo_json_get(root, "b"), 1),
	                                             "a"), &n), 0);
	ck_assert_int_eq(n, 3);
}
END_TEST

START_TEST(parse_accepts_nesting_of_the_maximum_depth)
{
	char *text = nested_arrays(OCTO_JSON_MAX_DEPTH);
	const octo_json_value *v = parse_ok(text);
	int depth = 0;

	while (octo_json_typeof(v) == OCTO_JSON_ARRAY) {
		v = octo_json_at(v, 0);
		depth++;
	}
	ck_assert_int_eq(depth, OCTO_JSON_MAX_DEPTH);
	free(text);
}
END_TEST

START_TEST(parse_accepts_objects_nested_to_the_maximum_depth)
{
	char text[OCTO_JSON_MAX_DEPTH * 6 + 2];
	size_t o = 0;
	int i;

	for (i = 0; i < OCTO_JSON_MAX_DEPTH; i++)
		o += (size_t)sprintf(text + o, "{\"k\":");
	text[o++] = '1';
	for (i = 0; i < OCTO_JSON_MAX_DEPTH; i++)
		text[o++] = '}';
	text[o] = '\0';
	parse_ok(text);
}
END_TEST

/* ---- octo_json_int -------------------------------------------------- */

static const struct {
	const char *text;
	int64_t value;
} integers[] = {
	{ "0", 0 },
	{ "42", 42 },
	{ "-7", -7 },
	{ "1234567890123", INT64_C(1234567890123) },
	{ "9223372036854775807", INT64_MAX },
	{ "-9223372036854775808", INT64_MIN },
};

START_TEST(int_reads_integers_up_to_the_int64_bounds)
{
	const octo_json_value *root = parse_ok(integers[_i].text);
	int64_t n = 12345;

	ck_assert_int_eq(octo_json_typeof(root), OCTO_JSON_INTEGER);
	ck_assert_int_eq(octo_json_int(root, &n), 0);
	ck_assert_int_eq(n, integers[_i].value);
}
END_TEST

static const char *const non_integers[] = {
	"1.0", "1e5", "1E5", "-2.5e-3", "0.0", "1e0",
	"99999999999999999999", "9223372036854775808", "-9223372036854775809",
	"9223372036854775810", "9223372036854775879", "-9223372036854775810",
};

START_TEST(int_refuses_fractions_exponents_and_numbers_beyond_int64)
{
	const octo_json_value *root = parse_ok(non_integers[_i]);
	int64_t n = 12345;

	ck_assert_int_eq(octo_json_typeof(root), OCTO_JSON_NUMBER);
	ck_assert_int_eq(octo_json_int(root, &n), OCTO_EINVAL);
	ck_assert_int_eq(n, 12345);
}
END_TEST

START_TEST(int_refuses_values_of_other_types)
{
	const octo_json_value *root = parse_ok("[\"5\",true,null,[5],{\"5\":5}]");
	int64_t n = 12345;
	size_t i;

	for (i = 0; i < octo_json_size(root); i++)
		ck_assert_int_eq(octo_json_int(octo_json_at(root, i), &n), OCTO_EINVAL);
	ck_assert_int_eq(n, 12345);
}
END_TEST

/* ---- strings, bools, null ------------------------------------------- */

START_TEST(string_reads_the_decoded_text)
{
	/* Escapes as RFC 8259 defines them, and a surrogate pair. */
	const octo_json_value *root =
		parse_ok("[\"plain\",\"q\\\"b\\\\s\\/n\\nt\\t\",\"\\u00e9\\u20ac\\ud83d\\ude00\",\"\"]");
	const char *s = NULL;

	ck_assert_int_eq(octo_json_string(octo_json_at(root, 0), &s), 0);
	ck_assert_str_eq(s, "plain");
	ck_assert_int_eq(octo_json_string(octo_json_at(root, 1), &s), 0);
	ck_assert_str_eq(s, "q\"b\\s/n\nt\t");
	ck_assert_int_eq(octo_json_string(octo_json_at(root, 2), &s), 0);
	ck_assert_str_eq(s, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	ck_assert_int_eq(octo_json_string(octo_json_at(root, 3), &s), 0);
	ck_assert_str_eq(s, "");
}
END_TEST

START_TEST(string_refuses_values_of_other_types)
{
	const octo_json_value *root = parse_ok("[1,true,null,[],{}]");
	const char *s = "untouched";
	size_t i;

	for (i = 0; i < octo_json_size(root); i++)
		ck_assert_int_eq(octo_json_string(octo_json_at(root, i), &s), OCTO_EINVAL);
	ck_assert_str_eq(s, "untouched");
}
END_TEST

START_TEST(bool_reads_true_and_false)
{
	const octo_json_value *root = parse_ok("[true,false]");
	int b = -1;

	ck_assert_int_eq(octo_json_bool(octo_json_at(root, 0), &b), 0);
	ck_assert_int_eq(b, 1);
	ck_assert_int_eq(octo_json_bool(octo_json_at(root, 1), &b), 0);
	ck_assert_int_eq(b, 0);
}
END_TEST

START_TEST(bool_refuses_values_of_other_types)
{
	const octo_json_value *root = parse_ok("[0,1,\"true\",null,[]]");
	int b = -1;
	size_t i;

	for (i = 0; i < octo_json_size(root); i++)
		ck_assert_int_eq(octo_json_bool(octo_json_at(root, i), &b), OCTO_EINVAL);
	ck_assert_int_eq(b, -1);
}
END_TEST

START_TEST(null_is_a_value_of_its_own_type)
{
	const octo_json_value *root = parse_ok("{\"n\":null}");
	const octo_json_value *n = octo_json_get(root, "n");

	/* Present (not a missing member), typed null, and no other type. */
	ck_assert_ptr_nonnull(n);
	ck_assert_int_eq(octo_json_typeof(n), OCTO_JSON_NULL);
	ck_assert_uint_eq(octo_json_size(n), 0);
	ck_assert_ptr_null(octo_json_get(root, "m"));
}
END_TEST

/* ---- octo_json_get, octo_json_at, octo_json_size -------------------- */

START_TEST(get_finds_members_by_exact_key)
{
	const octo_json_value *root = parse_ok("{\"a\":1,\"ab\":2,\"A\":3,\"\":4}");
	int64_t n = 0;

	ck_assert_int_eq(octo_json_int(octo_json_get(root, "a"), &n), 0);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(octo_json_int(octo_json_get(root, "ab"), &n), 0);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(octo_json_int(octo_json_get(root, "A"), &n), 0);
	ck_assert_int_eq(n, 3);
	ck_assert_int_eq(octo_json_int(octo_json_get(root, ""), &n), 0);
	ck_assert_int_eq(n, 4);
}
END_TEST

START_TEST(get_returns_null_for_a_missing_key)
{
	const octo_json_value *root = parse_ok("{\"a\":1}");

	ck_assert_ptr_null(octo_json_get(root, "b"));
	ck_assert_ptr_null(octo_json_get(root, "a "));
	ck_assert_ptr_null(octo_json_get(root, "A"));
}
END_TEST

START_TEST(get_returns_null_on_anything_but_an_object)
{
	const octo_json_value *root = parse_ok("[\"a\",{\"a\":1},[\"a\"],1,null]");

	ck_assert_ptr_null(octo_json_get(root, "a"));
	ck_assert_ptr_null(octo_json_get(octo_json_at(root, 0), "a"));
	ck_assert_ptr_null(octo_json_get(octo_json_at(root, 2), "a"));
	ck_assert_ptr_null(octo_json_get(octo_json_at(root, 3), "a"));
	ck_assert_ptr_null(octo_json_get(octo_json_at(root, 4), "a"));
	ck_assert_ptr_nonnull(octo_json_get(octo_json_at(root, 1), "a"));
}
END_TEST

START_TEST(at_returns_elements_in_order)
{
	const octo_json_value *root = parse_ok("[10,20,30]");
	int64_t n = 0;
	size_t i;

	ck_assert_uint_eq(octo_json_size(root), 3);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(octo_json_int(octo_json_at(root, i), &n), 0);
		ck_assert_int_eq(n, (int64_t)(i + 1) * 10);
	}
}
END_TEST

START_TEST(at_returns_null_out_of_range)
{
	const octo_json_value *root = parse_ok("[10,20,30]");

	ck_assert_ptr_null(octo_json_at(root, 3));
	ck_assert_ptr_null(octo_json_at(root, SIZE_MAX));
	teardown();
	root = parse_ok("[]");
	ck_assert_ptr_null(octo_json_at(root, 0));
}
END_TEST

START_TEST(at_returns_null_on_anything_but_an_array)
{
	const octo_json_value *root = parse_ok("{\"a\":1,\"s\":\"xyz\"}");

	ck_assert_ptr_null(octo_json_at(root, 0));
	ck_assert_ptr_null(octo_json_at(octo_json_get(root, "s"), 0));
}
END_TEST

START_TEST(size_counts_members_and_elements_only)
{
	const octo_json_value *root = parse_ok("{\"a\":[1,2,3,4],\"b\":{\"x\":1,\"y\":2},\"s\":\"long\"}");

	ck_assert_uint_eq(octo_json_size(root), 3);
	ck_assert_uint_eq(octo_json_size(octo_json_get(root, "a")), 4);
	ck_assert_uint_eq(octo_json_size(octo_json_get(root, "b")), 2);
	ck_assert_uint_eq(octo_json_size(octo_json_get(root, "s")), 0);
}
END_TEST

/* ---- refusals ------------------------------------------------------- */

/* Texts with explicit lengths, so NUL bytes can be inside. */
#define BAD(s) { s, sizeof(s) - 1 }
static const struct {
	const char *text;
	size_t len;
} bad_texts[] = {
	/* syntax */
	BAD("{"), BAD("}"), BAD("[1,]"), BAD("[,1]"), BAD("{\"a\":}"), BAD("{\"a\"1}"),
	BAD("{a:1}"), BAD("{\"a\":1,}"), BAD("'x'"), BAD("tru"), BAD("nul"), BAD("01"),
	BAD("+1"), BAD(".5"), BAD("1."), BAD("NaN"), BAD("Infinity"), BAD("-"),
	BAD("\"bad \\x escape\""), BAD("\"\\u12\""), BAD("\"raw\ttab\""), BAD("\"raw\nline\""),
	/* truncated */
	BAD("{\"a\":[1,2"), BAD("\"abc"), BAD("["), BAD("{\"a\""), BAD("[1,2,"), BAD("\"\\"),
	/* trailing data */
	BAD("{} x"), BAD("1 2"), BAD("[]]"), BAD("{}{}"), BAD("\"a\"\"b\""), BAD("null,"),
	/* NUL bytes */
	BAD("[1,\0 2]"), BAD("\"a\0b\""), BAD("{}\0"), BAD("\0"),
	/* invalid UTF-8 */
	BAD("\xff"), BAD("\"\xff\""), BAD("\"a\xc3\""), BAD("\"\xe2\x82\""),
	BAD("[\"\x80\"]"), BAD("{\"\xfe\":1}"),
	BAD("\"\xc0\xaf\""), BAD("\"\xe0\x80\xaf\""), BAD("\"\xed\xa0\x80\""),
	BAD("\"\xf4\x90\x80\x80\""), BAD("\"\xf8\x88\x80\x80\x80\""),
	/* unpaired UTF-16 surrogates, which yajl would decode to bad UTF-8 */
	BAD("\"\\udc00\""), BAD("\"\\ud800\""), BAD("\"\\ud800x\""), BAD("\"\\ud800\\u0041\""),
	BAD("\"\\ud83d\\ud83d\""), BAD("{\"\\udc00\":1,\"\\udc01\":2}"), BAD("\"\\uDFFF\""),
	BAD("\"\\ude00\\ud83d\""),
	/* comments */
	BAD("// c\n{}"), BAD("{} // c"), BAD("/* c */ {}"), BAD("[1 /* c */]"),
	BAD("{\"a\":1 // c\n}"),
	/* duplicate keys, also spelled differently and nested */
	BAD("{\"a\":1,\"a\":2}"), BAD("{\"a\":1,\"b\":2,\"a\":1}"), BAD("{\"a\":1,\"\\u0061\":2}"),
	BAD("{\"x\":{\"a\":1,\"a\":1}}"), BAD("[{\"k\":null,\"k\":[]}]"),
	BAD("{\"x\":[1,{\"y\":{\"z\":1,\"z\":2}}]}"),
	/* empty */
	BAD(""), BAD(" "), BAD("\n\t "),
};

START_TEST(parse_refuses_malformed_text)
{
	int rc = octo_json_parse(&doc, bad_texts[_i].text, bad_texts[_i].len);

	ck_assert_msg(rc == OCTO_EPARSE, "text #%d \"%s\" gave %d, not OCTO_EPARSE",
	              _i, bad_texts[_i].text, rc);
	ck_assert_ptr_null(doc);
	ck_assert_str_ne(octo_error_last(), "");
}
END_TEST

START_TEST(parse_refuses_nesting_beyond_the_maximum_depth)
{
	char *text = nested_arrays(OCTO_JSON_MAX_DEPTH + 1);

	ck_assert_int_eq(octo_json_parse(&doc, text, strlen(text)), OCTO_EPARSE);
	ck_assert_ptr_null(doc);
	ck_assert_str_ne(octo_error_last(), "");
	free(text);
}
END_TEST

START_TEST(parse_refuses_a_deep_nesting_bomb)
{
	const size_t depth = 1000000;
	char *text = malloc(depth);

	ck_assert_ptr_nonnull(text);
	memset(text, '[', depth);
	ck_assert_int_eq(octo_json_parse(&doc, text, depth), OCTO_EPARSE);
	ck_assert_ptr_null(doc);
	free(text);
}
END_TEST

START_TEST(parse_of_null_text_is_refused)
{
	ck_assert_int_lt(octo_json_parse(&doc, NULL, 0), 0);
	ck_assert_ptr_null(doc);
	ck_assert_int_eq(octo_json_parse(&doc, NULL, 5), OCTO_EINVAL);
	ck_assert_ptr_null(doc);
}
END_TEST

START_TEST(error_last_is_cleared_by_a_successful_parse)
{
	ck_assert_int_eq(octo_json_parse(&doc, "[", 1), OCTO_EPARSE);
	ck_assert_str_ne(octo_error_last(), "");
	parse_ok("[]");
	ck_assert_str_eq(octo_error_last(), "");
}
END_TEST

/* ---- writer --------------------------------------------------------- */

static octo_json_writer *w;
static char *out;

static void writer_setup(void)
{
	setup();
	w = NULL;
	out = NULL;
	ck_assert_int_eq(octo_json_writer_new(&w), 0);
	ck_assert_ptr_nonnull(w);
}

static void writer_teardown(void)
{
	octo_free(out);
	out = NULL;
	octo_json_writer_free(w);
	w = NULL;
	teardown();
}

/* Finishes the writer, which must succeed; returns the text's root
 * as parsed back by octo_json_parse. */
static const octo_json_value *finish_and_parse(void)
{
	size_t len = 0;
	int rc = octo_json_writer_finish(w, &out, &len);

	ck_assert_msg(rc == 0, "finish gave %d: %s", rc, octo_error_last());
	ck_assert_ptr_nonnull(out);
	ck_assert_uint_eq(len, strlen(out));
	return parse_ok(out);
}

START_TEST(writer_builds_nested_objects_and_arrays)
{
	const octo_json_value *root, *list, *obj;
	const char *s = NULL;
	int64_t n = 0;
	int b = -1;

	octo_json_write_object_begin(w);
	octo_json_write_key(w, "name");
	octo_json_write_string(w, "octopus");
	octo_json_write_key(w, "n");
	octo_json_write_int(w, -5);
	octo_json_write_key(w, "ok");
	octo_json_write_bool(w, 1);
	octo_json_write_key(w, "none");
	octo_json_write_null(w);
	octo_json_write_key(w, "list");
	octo_json_write_array_begin(w);
	octo_json_write_int(w, 1);
	octo_json_write_array_begin(w);
	octo_json_write_array_end(w);
	octo_json_write_object_begin(w);
	octo_json_write_object_end(w);
	octo_json_write_bool(w, 0);
	octo_json_write_array_end(w);
	octo_json_write_key(w, "obj");
	octo_json_write_object_begin(w);
	octo_json_write_key(w, "k");
	octo_json_write_string(w, "v");
	octo_json_write_object_end(w);
	octo_json_write_object_end(w);
	root = finish_and_parse();

	ck_assert_uint_eq(octo_json_size(root), 6);
	ck_assert_int_eq(octo_json_string(octo_json_get(root, "name"), &s), 0);
	ck_assert_str_eq(s, "octopus");
	ck_assert_int_eq(octo_json_int(octo_json_get(root, "n"), &n), 0);
	ck_assert_int_eq(n, -5);
	ck_assert_int_eq(octo_json_bool(octo_json_get(root, "ok"), &b), 0);
	ck_assert_int_eq(b, 1);
	ck_assert_int_eq(octo_json_typeof(octo_json_get(root, "none")), OCTO_JSON_NULL);
	list = octo_json_get(root, "list");
	ck_assert_uint_eq(octo_json_size(list), 4);
	ck_assert_int_eq(octo_json_typeof(octo_json_at(list, 1)), OCTO_JSON_ARRAY);
	ck_assert_int_eq(octo_json_typeof(octo_json_at(list, 2)), OCTO_JSON_OBJECT);
	ck_assert_int_eq(octo_json_bool(octo_json_at(list, 3), &b), 0);
	ck_assert_int_eq(b, 0);
	obj = octo_json_get(root, "obj");
	ck_assert_int_eq(octo_json_string(octo_json_get(obj, "k"), &s), 0);
	ck_assert_str_eq(s, "v");
}
END_TEST

START_TEST(writer_output_is_compact)
{
	octo_json_write_object_begin(w);
	octo_json_write_key(w, "a");
	octo_json_write_array_begin(w);
	octo_json_write_int(w, 1);
	octo_json_write_bool(w, 1);
	octo_json_write_null(w);
	octo_json_write_array_end(w);
	octo_json_write_object_end(w);
	finish_and_parse();
	ck_assert_str_eq(out, "{\"a\":[1,true,null]}");
}
END_TEST

START_TEST(writer_round_trips_int64_bounds)
{
	const octo_json_value *root;
	int64_t n = 0;

	octo_json_write_array_begin(w);
	octo_json_write_int(w, INT64_MIN);
	octo_json_write_int(w, INT64_MAX);
	octo_json_write_int(w, 0);
	octo_json_write_array_end(w);
	root = finish_and_parse();
	ck_assert_int_eq(octo_json_int(octo_json_at(root, 0), &n), 0);
	ck_assert_int_eq(n, INT64_MIN);
	ck_assert_int_eq(octo_json_int(octo_json_at(root, 1), &n), 0);
	ck_assert_int_eq(n, INT64_MAX);
	ck_assert_int_eq(octo_json_int(octo_json_at(root, 2), &n), 0);
	ck_assert_int_eq(n, 0);
}
END_TEST

static const char *const tricky_strings[] = {
	"say \"hi\"", "back\\slash", "line\nbreak", "\x01\x02\x1f", "tab\there\r\n",
	"\b\f", "slash/and*star", "\"\\\"\\", "\x7f", "",
	"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\xef\xbf\xbd", "{\"not\":\"json\"}",
};

START_TEST(writer_escapes_strings_so_they_parse_back_unchanged)
{
	const char *in = tricky_strings[_i];
	const octo_json_value *root;
	const char *s = NULL;
	size_t i;

	octo_json_write_object_begin(w);
	octo_json_write_key(w, in);
	octo_json_write_string(w, in);
	octo_json_write_object_end(w);
	root = finish_and_parse();
	/* JSON forbids raw control characters in its text. */
	for (i = 0; out[i]; i++)
		ck_assert_uint_ge((unsigned char)out[i], 0x20);
	ck_assert_uint_eq(octo_json_size(root), 1);
	ck_assert_int_eq(octo_json_string(octo_json_get(root, in), &s), 0);
	ck_assert_str_eq(s, in);
}
END_TEST

START_TEST(writer_replaces_a_lone_invalid_byte_with_u_fffd)
{
	const char *s = NULL;

	octo_json_write_array_begin(w);
	octo_json_write_string(w, "a\xff" "b");
	octo_json_write_string(w, "\x80");
	octo_json_write_array_end(w);
	finish_and_parse();
	ck_assert_int_eq(octo_json_string(octo_json_at(octo_json_root(doc), 0), &s), 0);
	ck_assert_str_eq(s, "a\xef\xbf\xbd" "b");
	ck_assert_int_eq(octo_json_string(octo_json_at(octo_json_root(doc), 1), &s), 0);
	ck_assert_str_eq(s, "\xef\xbf\xbd");
}
END_TEST

/* Invalid sequences whose exact number of U+FFFD is a matter of policy:
 * only the valid text around them must survive, with a U+FFFD between. */
static const char *const invalid_utf8[] = {
	"<\xc3>",             /* lead byte without continuation */
	"<\xe2\x82>",         /* truncated three-byte sequence */
	"<\xc0\xaf>",         /* overlong '/' */
	"<\xed\xa0\x80>",     /* UTF-16 surrogate */
	"<\xf4\x90\x80\x80>", /* above U+10FFFF */
	"<\xf8\x88\x80\x80\x80>", /* five-byte form */
	"<\xfe\xff>",
};

START_TEST(writer_repairs_invalid_utf8_into_parseable_text)
{
	const octo_json_value *root;
	const char *s = NULL, *v = NULL;
	size_t len, i;

	octo_json_write_array_begin(w);
	octo_json_write_string(w, invalid_utf8[_i]);
	octo_json_write_object_begin(w);
	octo_json_write_key(w, invalid_utf8[_i]);
	octo_json_write_string(w, "value");
	octo_json_write_object_end(w);
	octo_json_write_array_end(w);
	root = finish_and_parse();

	ck_assert_int_eq(octo_json_string(octo_json_at(root, 0), &s), 0);
	len = strlen(s);
	ck_assert_uint_ge(len, 5);
	ck_assert_int_eq(s[0], '<');
	ck_assert_int_eq(s[len - 1], '>');
	/* Nothing of the invalid bytes is left: only U+FFFD between < and >. */
	ck_assert_uint_eq((len - 2) % 3, 0);
	for (i = 1; i < len - 1; i += 3)
		ck_assert_int_eq(memcmp(s + i, "\xef\xbf\xbd", 3), 0);
	/* A key is repaired the same way as a value. */
	ck_assert_int_eq(octo_json_string(octo_json_get(octo_json_at(root, 1), s), &v), 0);
	ck_assert_str_eq(v, "value");
}
END_TEST

/* ---- writer misuse -------------------------------------------------- */

static void misuse_value_where_key_expected(void)
{
	octo_json_write_object_begin(w);
	octo_json_write_int(w, 1);
	octo_json_write_int(w, 2);
	octo_json_write_object_end(w);
}

static void misuse_unclosed_object(void)
{
	octo_json_write_object_begin(w);
	octo_json_write_key(w, "a");
	octo_json_write_int(w, 1);
}

static void misuse_unclosed_array(void)
{
	octo_json_write_array_begin(w);
	octo_json_write_int(w, 1);
}

static void misuse_two_top_level_values(void)
{
	octo_json_write_int(w, 1);
	octo_json_write_int(w, 2);
}

static void misuse_two_top_level_objects(void)
{
	octo_json_write_object_begin(w);
	octo_json_write_object_end(w);
	octo_json_write_object_begin(w);
	octo_json_write_object_end(w);
}

static void misuse_nothing_written(void)
{
}

static void misuse_only_a_key(void)
{
	octo_json_write_key(w, "lonely");
}

static void misuse_key_without_value(void)
{
	octo_json_write_object_begin(w);
	octo_json_write_key(w, "a");
	octo_json_write_object_end(w);
}

static void misuse_string_where_key_expected(void)
{
	/* yajl would take the string as a key; the header asks for write_key. */
	octo_json_write_object_begin(w);
	octo_json_write_string(w, "a");
	octo_json_write_int(w, 1);
	octo_json_write_object_end(w);
}

static void misuse_key_inside_array(void)
{
	octo_json_write_array_begin(w);
	octo_json_write_key(w, "k");
	octo_json_write_array_end(w);
}

static void misuse_array_closed_as_object(void)
{
	octo_json_write_array_begin(w);
	octo_json_write_object_end(w);
}

static void misuse_object_closed_as_array(void)
{
	octo_json_write_object_begin(w);
	octo_json_write_array_end(w);
}

static void misuse_close_without_open(void)
{
	octo_json_write_object_end(w);
}

static void misuse_extra_close(void)
{
	octo_json_write_array_begin(w);
	octo_json_write_array_end(w);
	octo_json_write_array_end(w);
}

static const struct {
	const char *name;
	void (*run)(void);
} misuses[] = {
	{ "value where a key is expected", misuse_value_where_key_expected },
	{ "unclosed object", misuse_unclosed_object },
	{ "unclosed array", misuse_unclosed_array },
	{ "two top-level values", misuse_two_top_level_values },
	{ "two top-level objects", misuse_two_top_level_objects },
	{ "nothing written", misuse_nothing_written },
	{ "only a key", misuse_only_a_key },
	{ "key without value", misuse_key_without_value },
	{ "string where a key is expected", misuse_string_where_key_expected },
	{ "key inside an array", misuse_key_inside_array },
	{ "array closed as object", misuse_array_closed_as_object },
	{ "object closed as array", misuse_object_closed_as_array },
	{ "close without open", misuse_close_without_open },
	{ "extra close", misuse_extra_close },
};

START_TEST(finish_refuses_calls_that_do_not_form_one_value)
{
	size_t len = 777;
	int rc;

	misuses[_i].run();
	rc = octo_json_writer_finish(w, &out, &len);
	ck_assert_msg(rc == OCTO_EINVAL, "%s: finish gave %d (text %s)",
	              misuses[_i].name, rc, out ? out : "(none)");
	ck_assert_ptr_null(out);
	ck_assert_uint_eq(len, 777);
	ck_assert_str_ne(octo_error_last(), "");
}
END_TEST

START_TEST(writer_is_reusable_after_a_failed_finish)
{
	misuses[_i].run();
	ck_assert_int_eq(octo_json_writer_finish(w, &out, NULL), OCTO_EINVAL);
	octo_json_write_array_begin(w);
	octo_json_write_string(w, "fresh");
	octo_json_write_array_end(w);
	finish_and_parse();
	ck_assert_str_eq(out, "[\"fresh\"]");
}
END_TEST

START_TEST(writer_is_reusable_after_finish)
{
	char *first = NULL;
	size_t len = 0;

	octo_json_write_object_begin(w);
	octo_json_write_key(w, "first");
	octo_json_write_int(w, 1);
	octo_json_write_object_end(w);
	ck_assert_int_eq(octo_json_writer_finish(w, &first, &len), 0);
	ck_assert_str_eq(first, "{\"first\":1}");
	ck_assert_uint_eq(len, strlen(first));

	/* The next document starts from scratch: nothing of the first. */
	octo_json_write_string(w, "second");
	finish_and_parse();
	ck_assert_str_eq(out, "\"second\"");
	ck_assert_str_eq(first, "{\"first\":1}");
	octo_free(first);
}
END_TEST

START_TEST(finish_refuses_nesting_deeper_than_the_generator_allows)
{
	int i;

	for (i = 0; i < 1000; i++)
		octo_json_write_array_begin(w);
	for (i = 0; i < 1000; i++)
		octo_json_write_array_end(w);
	ck_assert_int_eq(octo_json_writer_finish(w, &out, NULL), OCTO_EINVAL);
	ck_assert_ptr_null(out);
}
END_TEST

START_TEST(finish_accepts_a_null_length)
{
	octo_json_write_null(w);
	ck_assert_int_eq(octo_json_writer_finish(w, &out, NULL), 0);
	ck_assert_str_eq(out, "null");
}
END_TEST

START_TEST(free_functions_accept_null_and_unfinished_writers)
{
	octo_json_writer *unfinished = NULL;

	octo_json_writer_free(NULL);
	octo_json_free(NULL);
	/* A writer freed mid-document releases everything (valgrind checks). */
	ck_assert_int_eq(octo_json_writer_new(&unfinished), 0);
	octo_json_write_object_begin(unfinished);
	octo_json_write_key(unfinished, "k");
	octo_json_write_string(unfinished, "v");
	octo_json_writer_free(unfinished);
	ck_assert_int_eq(octo_json_writer_new(&unfinished), 0);
	ck_assert_ptr_nonnull(unfinished);
	octo_json_writer_free(unfinished);
}
END_TEST

/* ---- suite ---------------------------------------------------------- */

static TCase *json_tcase(const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, setup, teardown);
	return tc;
}

static TCase *writer_tcase(const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, writer_setup, writer_teardown);
	return tc;
}

int main(void)
{
	Suite *s = suite_create("json");
	TCase *tc;

	tc = json_tcase("parse");
	tcase_add_test(tc, parse_reads_an_object_with_every_type_of_member);
	tcase_add_test(tc, parse_reads_nested_arrays);
	tcase_add_loop_test(tc, parse_accepts_any_value_at_the_top_level, 0, N_ELEMS(scalars));
	tcase_add_test(tc, parse_reads_only_len_bytes);
	tcase_add_test(tc, parse_allows_slashes_and_brackets_inside_strings);
	tcase_add_test(tc, parse_allows_the_same_key_in_different_objects);
	tcase_add_test(tc, parse_accepts_nesting_of_the_maximum_depth);
	tcase_add_test(tc, parse_accepts_objects_nested_to_the_maximum_depth);
	suite_add_tcase(s, tc);

	tc = json_tcase("int");
	tcase_add_loop_test(tc, int_reads_integers_up_to_the_int64_bounds, 0, N_ELEMS(integers));
	tcase_add_loop_test(tc, int_refuses_fractions_exponents_and_numbers_beyond_int64,
	                    0, N_ELEMS(non_integers));
	tcase_add_test(tc, int_refuses_values_of_other_types);
	suite_add_tcase(s, tc);

	tc = json_tcase("string_bool_null");
	tcase_add_test(tc, string_reads_the_decoded_text);
	tcase_add_test(tc, string_refuses_values_of_other_types);
	tcase_add_test(tc, bool_reads_true_and_false);
	tcase_add_test(tc, bool_refuses_values_of_other_types);
	tcase_add_test(tc, null_is_a_value_of_its_own_type);
	suite_add_tcase(s, tc);

	tc = json_tcase("get_at_size");
	tcase_add_test(tc, get_finds_members_by_exact_key);
	tcase_add_test(tc, get_returns_null_for_a_missing_key);
	tcase_add_test(tc, get_returns_null_on_anything_but_an_object);
	tcase_add_test(tc, at_returns_elements_in_order);
	tcase_add_test(tc, at_returns_null_out_of_range);
	tcase_add_test(tc, at_returns_null_on_anything_but_an_array);
	tcase_add_test(tc, size_counts_members_and_elements_only);
	suite_add_tcase(s, tc);

	tc = json_tcase("refusals");
	tcase_add_loop_test(tc, parse_refuses_malformed_text, 0, N_ELEMS(bad_texts));
	tcase_add_test(tc, parse_refuses_nesting_beyond_the_maximum_depth);
	tcase_add_test(tc, parse_refuses_a_deep_nesting_bomb);
	tcase_add_test(tc, parse_of_null_text_is_refused);
	tcase_add_test(tc, error_last_is_cleared_by_a_successful_parse);
	suite_add_tcase(s, tc);

	tc = writer_tcase("writer");
	tcase_add_test(tc, writer_builds_nested_objects_and_arrays);
	tcase_add_test(tc, writer_output_is_compact);
	tcase_add_test(tc, writer_round_trips_int64_bounds);
	tcase_add_loop_test(tc, writer_escapes_strings_so_they_parse_back_unchanged,
	                    0, N_ELEMS(tricky_strings));
	tcase_add_test(tc, writer_replaces_a_lone_invalid_byte_with_u_fffd);
	tcase_add_loop_test(tc, writer_repairs_invalid_utf8_into_parseable_text,
	                    0, N_ELEMS(invalid_utf8));
	suite_add_tcase(s, tc);

	tc = writer_tcase("writer_misuse");
	tcase_add_loop_test(tc, finish_refuses_calls_that_do_not_form_one_value, 0, N_ELEMS(misuses));
	tcase_add_loop_test(tc, writer_is_reusable_after_a_failed_finish, 0, N_ELEMS(misuses));
	tcase_add_test(tc, writer_is_reusable_after_finish);
	tcase_add_test(tc, finish_refuses_nesting_deeper_than_the_generator_allows);
	tcase_add_test(tc, finish_accepts_a_null_length);
	tcase_add_test(tc, free_functions_accept_null_and_unfinished_writers);
	suite_add_tcase(s, tc);

	return tu_run(s);
}
