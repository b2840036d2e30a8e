/* The .env parser: line syntax, unquoted and quoted values, ${VAR}
 * expansion, errors that name their line, and loading from a file. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../server/envfile.h"
#include "testutil.h"

#define N_ELEMS(a) (int)(sizeof(a) / sizeof((a)[0]))
#define MIB (1024 * 1024)

/* Every name a test expands with ${...}. The environment wins over the
 * file, so the fixture removes them all: each test starts without them,
 * forked or not, whatever the caller's shell exports. */
static const char *const env_names[] = {
	"OCTO_CHECK_ENVFILE_ONLY_ENV",
	"OCTO_CHECK_ENVFILE_BOTH",
	"OCTO_CHECK_ENVFILE_EMPTY",
	"OCTO_CHECK_ENVFILE_UNDEFINED",
	"HOST", "PORT", "BASE", "P", "LATER",
};

static void clear_env(void)
{
	int i;

	for (i = 0; i < N_ELEMS(env_names); i++) {
		ck_assert_int_eq(unsetenv(env_names[i]), 0);
		ck_assert_ptr_null(getenv(env_names[i]));
	}
}

/* Parses `text`, which must be valid. */
static envfile *parse_ok(const char *text, size_t len)
{
	envfile *ef = NULL;
	char err[256] = "";

	ck_assert_msg(envfile_parse(&ef, text, len, err, sizeof(err)) == 0,
	              "envfile_parse failed: %s", err);
	ck_assert_ptr_nonnull(ef);
	return ef;
}

#define PARSE_OK(literal) parse_ok(literal, sizeof(literal) - 1)

/* --- line syntax ------------------------------------------------------ */

START_TEST(key_value_lines_become_pairs)
{
	envfile *ef = PARSE_OK("A=1\nlower_case=two\n_UNDER9=three");

	ck_assert_uint_eq(envfile_count(ef), 3);
	ck_assert_str_eq(envfile_get(ef, "A"), "1");
	ck_assert_str_eq(envfile_get(ef, "lower_case"), "two");
	ck_assert_str_eq(envfile_get(ef, "_UNDER9"), "three");
	ck_assert_ptr_null(envfile_get(ef, "B"));
	ck_assert_ptr_null(envfile_get(ef, "a"));
	envfile_free(ef);
}
END_TEST

START_TEST(blank_lines_and_comment_lines_are_skipped)
{
	envfile *ef = PARSE_OK("\n# a comment\n   \n\t\n  # indented comment\nA=1\n\n#B=2\n");

	ck_assert_uint_eq(envfile_count(ef), 1);
	ck_assert_str_eq(envfile_get(ef, "A"), "1");
	ck_assert_ptr_null(envfile_get(ef, "B"));
	envfile_free(ef);
}
END_TEST

START_TEST(empty_text_gives_no_keys)
{
	envfile *ef = parse_ok("", 0);

	ck_assert_uint_eq(envfile_count(ef), 0);
	ck_assert_ptr_null(envfile_get(ef, "A"));
	envfile_free(ef);
}
END_TEST

START_TEST(export_prefix_is_ignored)
{
	envfile *ef = PARSE_OK("export A=1\n  export   B=two\nexportC=3\n");

	ck_assert_uint_eq(envfile_count(ef), 3);
	ck_assert_str_eq(envfile_get(ef, "A"), "1");
	ck_assert_str_eq(envfile_get(ef, "B"), "two");
	ck_assert_str_eq(envfile_get(ef, "exportC"), "3");
	ck_assert_ptr_null(envfile_get(ef, "export"));
	envfile_free(ef);
}
END_TEST

START_TEST(blanks_around_the_equals_sign_are_allowed)
{
	envfile *ef = PARSE_OK("A = 1\nB\t=\tvalue\n  C=  3\n");

	ck_assert_str_eq(envfile_get(ef, "A"), "1");
	ck_assert_str_eq(envfile_get(ef, "B"), "value");
	ck_assert_str_eq(envfile_get(ef, "C"), "3");
	envfile_free(ef);
}
END_TEST

START_TEST(crlf_line_endings_are_stripped)
{
	envfile *ef = PARSE_OK("A=1\r\nB='two'\r\nC=\"three\"\r\n# c\r\n\r\nD=4 # c\r\n");

	ck_assert_uint_eq(envfile_count(ef), 4);
	ck_assert_str_eq(envfile_get(ef, "A"), "1");
	ck_assert_str_eq(envfile_get(ef, "B"), "two");
	ck_assert_str_eq(envfile_get(ef, "C"), "three");
	ck_assert_str_eq(envfile_get(ef, "D"), "4");
	envfile_free(ef);
}
END_TEST

START_TEST(last_definition_wins)
{
	envfile *ef = PARSE_OK("A=first\nB=b\nA=second\nA='third'\n");

	ck_assert_str_eq(envfile_get(ef, "A"), "third");
	ck_assert_str_eq(envfile_get(ef, "B"), "b");
	ck_assert_uint_eq(envfile_count(ef), 2);
	envfile_free(ef);
}
END_TEST

START_TEST(count_counts_distinct_keys)
{
	char text[64 * 16];
	size_t len = 0;
	envfile *ef;
	int i;

	/* 40 keys, more than the first allocation holds, and a repeat. */
	for (i = 0; i < 40; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "K%d=%d\n", i, i);
	len += (size_t)snprintf(text + len, sizeof(text) - len, "K7=again\n");
	ef = parse_ok(text, len);
	ck_assert_uint_eq(envfile_count(ef), 40);
	ck_assert_str_eq(envfile_get(ef, "K0"), "0");
	ck_assert_str_eq(envfile_get(ef, "K39"), "39");
	ck_assert_str_eq(envfile_get(ef, "K7"), "again");
	envfile_free(ef);
}
END_TEST

START_TEST(empty_values_are_empty_strings)
{
	envfile *ef = PARSE_OK("A=\nB=''\nC=\"\"\nD=   \n");

	ck_assert_str_eq(envfile_get(ef, "A"), "");
	ck_assert_str_eq(envfile_get(ef, "B"), "");
	ck_assert_str_eq(envfile_get(ef, "C"), "");
	ck_assert_str_eq(envfile_get(ef, "D"), "");
	ck_assert_uint_eq(envfile_count(ef), 4);
	envfile_free(ef);
}
END_TEST

START_TEST(null_envfile_is_empty)
{
	ck_assert_ptr_null(envfile_get(NULL, "A"));
	ck_assert_uint_eq(envfile_count(NULL), 0);
	envfile_free(NULL);
}
END_TEST

START_TEST(long_values_are_kept_whole)
{
	size_t n = 10000, i;
	char *text = malloc(n + 8);
	envfile *ef;

	ck_assert_ptr_nonnull(text);
	memcpy(text, "LONG=", 5);
	for (i = 0; i < n; i++)
		text[5 + i] = (char)('a' + i % 26);
	ef = parse_ok(text, n + 5);
	ck_assert_uint_eq(strlen(envfile_get(ef, "LONG")), n);
	ck_assert_int_eq(memcmp(envfile_get(ef, "LONG"), text + 5, n), 0);
	envfile_free(ef);
	free(text);
}
END_TEST

/* --- unquoted values -------------------------------------------------- */

START_TEST(unquoted_value_loses_trailing_blanks)
{
	envfile *ef = PARSE_OK("A=value   \nB=two words \t\nC=x\n");

	ck_assert_str_eq(envfile_get(ef, "A"), "value");
	ck_assert_str_eq(envfile_get(ef, "B"), "two words");
	ck_assert_str_eq(envfile_get(ef, "C"), "x");
	envfile_free(ef);
}
END_TEST

START_TEST(inline_comment_after_a_blank_is_stripped)
{
	envfile *ef = PARSE_OK("A=value # a comment\nB=value\t# tab comment\nC=v   #x\n");

	ck_assert_str_eq(envfile_get(ef, "A"), "value");
	ck_assert_str_eq(envfile_get(ef, "B"), "value");
	ck_assert_str_eq(envfile_get(ef, "C"), "v");
	envfile_free(ef);
}
END_TEST

START_TEST(hash_inside_a_word_is_kept)
{
	envfile *ef = PARSE_OK("A=a#b\nB=http://x.example/#frag\nC=a#b # comment\n");

	ck_assert_str_eq(envfile_get(ef, "A"), "a#b");
	ck_assert_str_eq(envfile_get(ef, "B"), "http://x.example/#frag");
	ck_assert_str_eq(envfile_get(ef, "C"), "a#b");
	envfile_free(ef);
}
END_TEST

START_TEST(unquoted_value_keeps_quotes_and_backslashes_inside)
{
	envfile *ef = PARSE_OK("A=it's\nB=say \"hi\"\nC=a\\nb\nD=$HOME\n");

	ck_assert_str_eq(envfile_get(ef, "A"), "it's");
	ck_assert_str_eq(envfile_get(ef, "B"), "say \"hi\"");
	ck_assert_str_eq(envfile_get(ef, "C"), "a\\nb");
	ck_assert_str_eq(envfile_get(ef, "D"), "$HOME");
	envfile_free(ef);
}
END_TEST

/* --- quoted values ---------------------------------------------------- */

START_TEST(single_quotes_are_literal)
{
	envfile *ef;

	ck_assert_int_eq(setenv("OCTO_CHECK_ENVFILE_ONLY_ENV", "expanded", 1), 0);
	ef = PARSE_OK("A='a\\nb\\t\\\\c'\nB='${OCTO_CHECK_ENVFILE_ONLY_ENV}'\n"
	              "C='  # not a comment  '\nD='say \"hi\"'\n");
	ck_assert_str_eq(envfile_get(ef, "A"), "a\\nb\\t\\\\c");
	ck_assert_str_eq(envfile_get(ef, "B"), "${OCTO_CHECK_ENVFILE_ONLY_ENV}");
	ck_assert_str_eq(envfile_get(ef, "C"), "  # not a comment  ");
	ck_assert_str_eq(envfile_get(ef, "D"), "say \"hi\"");
	envfile_free(ef);
}
END_TEST

START_TEST(double_quotes_decode_escapes)
{
	envfile *ef = PARSE_OK("A=\"a\\nb\\tc\\\"d\\\\e\"\nB=\"it's\"\nC=\"\\$\"\n");

	ck_assert_str_eq(envfile_get(ef, "A"), "a\nb\tc\"d\\e");
	ck_assert_str_eq(envfile_get(ef, "B"), "it's");
	ck_assert_str_eq(envfile_get(ef, "C"), "$");
	envfile_free(ef);
}
END_TEST

START_TEST(double_quotes_keep_blanks_and_hashes)
{
	envfile *ef = PARSE_OK("A=\"  a # b  \"\nB=\"#\"\n");

	ck_assert_str_eq(envfile_get(ef, "A"), "  a # b  ");
	ck_assert_str_eq(envfile_get(ef, "B"), "#");
	envfile_free(ef);
}
END_TEST

START_TEST(double_quotes_expand_variables)
{
	envfile *ef;

	ck_assert_int_eq(setenv("OCTO_CHECK_ENVFILE_ONLY_ENV", "env", 1), 0);
	ef = PARSE_OK("BASE=/srv\nA=\"${BASE}/data ${OCTO_CHECK_ENVFILE_ONLY_ENV}!\"\n"
	              "B=\"[${OCTO_CHECK_ENVFILE_UNDEFINED}]\"\n");
	ck_assert_str_eq(envfile_get(ef, "A"), "/srv/data env!");
	ck_assert_str_eq(envfile_get(ef, "B"), "[]");
	envfile_free(ef);
}
END_TEST

START_TEST(comment_may_follow_a_closing_quote)
{
	envfile *ef = PARSE_OK("A='a' # c\nB=\"b\"   # c\nC='c'#c\nD=\"d\"  \n");

	ck_assert_str_eq(envfile_get(ef, "A"), "a");
	ck_assert_str_eq(envfile_get(ef, "B"), "b");
	ck_assert_str_eq(envfile_get(ef, "C"), "c");
	ck_assert_str_eq(envfile_get(ef, "D"), "d");
	envfile_free(ef);
}
END_TEST

/* --- ${VAR} expansion ------------------------------------------------- */

START_TEST(reference_to_an_earlier_key_expands)
{
	envfile *ef = PARSE_OK("HOST=db.local\nPORT=5432\nURL=pg://${HOST}:${PORT}/x\n");

	ck_assert_str_eq(envfile_get(ef, "URL"), "pg://db.local:5432/x");
	envfile_free(ef);
}
END_TEST

START_TEST(reference_to_the_environment_expands)
{
	envfile *ef;

	ck_assert_int_eq(setenv("OCTO_CHECK_ENVFILE_ONLY_ENV", "from-env", 1), 0);
	ef = PARSE_OK("A=x${OCTO_CHECK_ENVFILE_ONLY_ENV}y\n");
	ck_assert_str_eq(envfile_get(ef, "A"), "xfrom-envy");
	envfile_free(ef);
}
END_TEST

START_TEST(environment_wins_over_an_earlier_key)
{
	envfile *ef;

	ck_assert_int_eq(setenv("OCTO_CHECK_ENVFILE_BOTH", "env", 1), 0);
	ck_assert_int_eq(setenv("OCTO_CHECK_ENVFILE_EMPTY", "", 1), 0);
	ef = PARSE_OK("OCTO_CHECK_ENVFILE_BOTH=file\nOCTO_CHECK_ENVFILE_EMPTY=file\n"
	              "A=${OCTO_CHECK_ENVFILE_BOTH}\nB=\"${OCTO_CHECK_ENVFILE_BOTH}\"\n"
	              "C=[${OCTO_CHECK_ENVFILE_EMPTY}]\n");
	ck_assert_str_eq(envfile_get(ef, "A"), "env");
	ck_assert_str_eq(envfile_get(ef, "B"), "env");
	ck_assert_str_eq(envfile_get(ef, "C"), "[]");
	/* The key itself keeps the file's value. */
	ck_assert_str_eq(envfile_get(ef, "OCTO_CHECK_ENVFILE_BOTH"), "file");
	envfile_free(ef);
}
END_TEST

START_TEST(undefined_reference_expands_to_empty)
{
	envfile *ef = PARSE_OK("A=[${OCTO_CHECK_ENVFILE_UNDEFINED}]\nB=${OCTO_CHECK_ENVFILE_UNDEFINED}\n");

	ck_assert_str_eq(envfile_get(ef, "A"), "[]");
	ck_assert_str_eq(envfile_get(ef, "B"), "");
	envfile_free(ef);
}
END_TEST

START_TEST(reference_to_a_later_key_expands_to_empty)
{
	envfile *ef = PARSE_OK("A=[${LATER}]\nLATER=x\n");

	ck_assert_str_eq(envfile_get(ef, "A"), "[]");
	ck_assert_str_eq(envfile_get(ef, "LATER"), "x");
	envfile_free(ef);
}
END_TEST

START_TEST(redefinition_may_use_the_previous_value)
{
	envfile *ef = PARSE_OK("P=/bin\nP=${P}:/usr/bin\nP=\"${P}:/opt\"\n");

	ck_assert_str_eq(envfile_get(ef, "P"), "/bin:/usr/bin:/opt");
	ck_assert_uint_eq(envfile_count(ef), 1);
	envfile_free(ef);
}
END_TEST

/* --- errors ----------------------------------------------------------- */

typedef struct {
	const char *text;
	const char *prefix; /* "line N: " */
	const char *why;    /* a fragment of the reason */
} bad_text;

static const bad_text bad_texts[] = {
	{ "A=1\nNOEQUALS\n", "line 2: ", "expected '='" },
	{ "NAME VALUE\n", "line 1: ", "expected '='" },
	{ "export KEY\n", "line 1: ", "expected '='" },
	{ "A=1\n\n1ABC=x\n", "line 3: ", "variable name" },
	{ "=x\n", "line 1: ", "variable name" },
	{ "# c\nA-B=x\n", "line 2: ", "expected '='" },
	{ "A.B=x\n", "line 1: ", "expected '='" },
	{ "A=1\nB='abc\nC=2\n", "line 2: ", "unterminated single quote" },
	{ "B=\"abc\n", "line 1: ", "unterminated double quote" },
	{ "A=1\nB=\"abc\\\"\n", "line 2: ", "unterminated double quote" },
	{ "A=1\nB=\"multi\nline\"\n", "line 2: ", "unterminated double quote" },
	{ "B='a' b\n", "line 1: ", "after closing quote" },
	{ "A=1\nA=2\nB=\"a\"b\n", "line 3: ", "after closing quote" },
	{ "# c\nB=${A\n", "line 2: ", "unterminated ${" },
	{ "B=\"${A\"\n", "line 1: ", "unterminated ${" },
	{ "B=${1x}\n", "line 1: ", "invalid variable reference" },
	{ "A=1\r\nB=\"${1x}\"\r\n", "line 2: ", "invalid variable reference" },
	{ "B=${}\n", "line 1: ", "invalid variable reference" },
	{ "B=${A-B}\n", "line 1: ", "invalid variable reference" },
	{ "A=1\r\nB=2\r\nC\r\n", "line 3: ", "expected '='" },
};

START_TEST(malformed_line_is_rejected_naming_its_line)
{
	const bad_text *t = &bad_texts[_i];
	envfile *ef = NULL;
	char err[256] = "";

	ck_assert_int_eq(envfile_parse(&ef, t->text, strlen(t->text), err, sizeof(err)), -1);
	ck_assert_ptr_null(ef);
	ck_assert_msg(strncmp(err, t->prefix, strlen(t->prefix)) == 0,
	              "for %s: expected \"%s...\", got \"%s\"", t->text, t->prefix, err);
	ck_assert_msg(strstr(err, t->why) != NULL,
	              "for %s: expected \"%s\" in \"%s\"", t->text, t->why, err);
}
END_TEST

START_TEST(nul_byte_is_rejected_naming_its_line)
{
	static const char text[] = "A=1\nB=2\nC=x\0y\nD=4\n";
	envfile *ef = NULL;
	char err[256] = "";

	ck_assert_int_eq(envfile_parse(&ef, text, sizeof(text) - 1, err, sizeof(err)), -1);
	ck_assert_ptr_null(ef);
	ck_assert_msg(strncmp(err, "line 3: ", 8) == 0, "got \"%s\"", err);
	ck_assert_ptr_nonnull(strstr(err, "NUL"));
}
END_TEST

START_TEST(nul_byte_on_the_first_line_is_line_one)
{
	static const char text[] = "\0A=1\n";
	envfile *ef = NULL;
	char err[256] = "";

	ck_assert_int_eq(envfile_parse(&ef, text, sizeof(text) - 1, err, sizeof(err)), -1);
	ck_assert_ptr_null(ef);
	ck_assert_msg(strncmp(err, "line 1: ", 8) == 0, "got \"%s\"", err);
}
END_TEST

START_TEST(error_message_is_cut_to_the_buffer)
{
	static const char text[] = "A=1\nNOEQUALS_AND_A_LONG_NAME\n";
	envfile *ef = NULL;
	char err[12];

	memset(err, 'x', sizeof(err));
	ck_assert_int_eq(envfile_parse(&ef, text, sizeof(text) - 1, err, 9), -1);
	ck_assert_str_eq(err, "line 2: ");
	ck_assert_int_eq(err[9], 'x');
}
END_TEST

/* --- envfile_load ----------------------------------------------------- */

static char dir[256];

static void make_dir(void)
{
	clear_env();
	tu_mkdtemp(dir);
}

static void remove_dir(void)
{
	tu_rmtree(dir);
}

static void path_in_dir(char out[512], const char *name)
{
	snprintf(out, 512, "%s/%s", dir, name);
}

START_TEST(load_reads_a_file)
{
	static const char text[] = "# settings\nexport PORT=8080\nHOST = '127.0.0.1'\r\n"
	                           "MSG=\"hi\\tthere\" # c\nURL=http://${HOST}:${PORT}\n";
	char path[512], err[256] = "";
	envfile *ef = NULL;

	path_in_dir(path, ".env");
	tu_write_file(path, text, sizeof(text) - 1);
	ck_assert_msg(envfile_load(&ef, path, err, sizeof(err)) == 0, "load failed: %s", err);
	ck_assert_uint_eq(envfile_count(ef), 4);
	ck_assert_str_eq(envfile_get(ef, "PORT"), "8080");
	ck_assert_str_eq(envfile_get(ef, "HOST"), "127.0.0.1");
	ck_assert_str_eq(envfile_get(ef, "MSG"), "hi\tthere");
	ck_assert_str_eq(envfile_get(ef, "URL"), "http://127.0.0.1:8080");
	envfile_free(ef);
}
END_TEST

START_TEST(load_reads_an_empty_file)
{
	char path[512], err[256] = "";
	envfile *ef = NULL;

	path_in_dir(path, "empty.env");
	tu_write_file(path, "", 0);
	ck_assert_msg(envfile_load(&ef, path, err, sizeof(err)) == 0, "load failed: %s", err);
	ck_assert_ptr_nonnull(ef);
	ck_assert_uint_eq(envfile_count(ef), 0);
	envfile_free(ef);
}
END_TEST

START_TEST(load_of_a_missing_file_names_the_path)
{
	char path[512], prefix[520], err[1024] = "";
	envfile *ef = NULL;

	path_in_dir(path, "absent.env");
	snprintf(prefix, sizeof(prefix), "%s: ", path);
	ck_assert_int_eq(envfile_load(&ef, path, err, sizeof(err)), -1);
	ck_assert_ptr_null(ef);
	ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0, "got \"%s\"", err);
	ck_assert_ptr_nonnull(strstr(err, "No such file"));
}
END_TEST

START_TEST(load_syntax_error_names_the_path_and_line)
{
	char path[512], expected[600], err[1024] = "";
	envfile *ef = NULL;

	path_in_dir(path, "bad.env");
	tu_write_file(path, "A=1\nB='open\n", 12);
	snprintf(expected, sizeof(expected), "%s: line 2: unterminated single quote", path);
	ck_assert_int_eq(envfile_load(&ef, path, err, sizeof(err)), -1);
	ck_assert_ptr_null(ef);
	ck_assert_str_eq(err, expected);
}
END_TEST

/* Fills `len` bytes with "K=v" and then comment lines. */
static char *big_text(size_t len)
{
	char *text = malloc(len);
	size_t i;

	ck_assert_ptr_nonnull(text);
	memset(text, '#', len);
	for (i = 63; i < len; i += 64)
		text[i] = '\n';
	memcpy(text, "K=v\n", 4);
	return text;
}

START_TEST(load_accepts_a_file_of_exactly_one_mebibyte)
{
	char path[512], err[256] = "";
	char *text = big_text(MIB);
	envfile *ef = NULL;

	path_in_dir(path, "big.env");
	tu_write_file(path, text, MIB);
	free(text);
	ck_assert_msg(envfile_load(&ef, path, err, sizeof(err)) == 0, "load failed: %s", err);
	ck_assert_str_eq(envfile_get(ef, "K"), "v");
	envfile_free(ef);
}
END_TEST

START_TEST(load_refuses_a_file_over_one_mebibyte)
{
	char path[512], err[1024] = "";
	char *text = big_text(MIB + 1);
	envfile *ef = NULL;

	path_in_dir(path, "huge.env");
	tu_write_file(path, text, MIB + 1);
	free(text);
	ck_assert_int_eq(envfile_load(&ef, path, err, sizeof(err)), -1);
	ck_assert_ptr_null(ef);
	ck_assert_msg(strncmp(err, path, strlen(path)) == 0, "got \"%s\"", err);
	ck_assert_ptr_nonnull(strstr(err, "1 MiB"));
}
END_TEST

/* Nested references grow exponentially: 994 bytes could ask for 4 GB;
 * here D (48 times C, 48 times B, ...) is the first past 1 MiB. */
START_TEST(expansion_past_one_mebibyte_is_refused)
{
	char text[4096], err[256] = "";
	envfile *ef = NULL;
	size_t n = 0;
	int v, i;

	n += (size_t)snprintf(text + n, sizeof(text) - n, "A=0123456789abcdef\n");
	for (v = 1; v < 6; v++) {
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%c=", 'A' + v);
		for (i = 0; i < 48; i++)
			n += (size_t)snprintf(text + n, sizeof(text) - n, "${%c}", 'A' + v - 1);
		n += (size_t)snprintf(text + n, sizeof(text) - n, "\n");
	}
	ck_assert_int_eq(envfile_parse(&ef, text, n, err, sizeof(err)), -1);
	ck_assert_ptr_null(ef);
	ck_assert_msg(strstr(err, "line 4") && strstr(err, "1 MiB"), "got \"%s\"", err);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("envfile");
	TCase *syntax = tcase_create("line syntax");
	TCase *unquoted = tcase_create("unquoted values");
	TCase *quoted = tcase_create("quoted values");
	TCase *expansion = tcase_create("expansion");
	TCase *errors = tcase_create("errors");
	TCase *load = tcase_create("load");

	tcase_add_checked_fixture(syntax, clear_env, NULL);
	tcase_add_test(syntax, key_value_lines_become_pairs);
	tcase_add_test(syntax, blank_lines_and_comment_lines_are_skipped);
	tcase_add_test(syntax, empty_text_gives_no_keys);
	tcase_add_test(syntax, export_prefix_is_ignored);
	tcase_add_test(syntax, blanks_around_the_equals_sign_are_allowed);
	tcase_add_test(syntax, crlf_line_endings_are_stripped);
	tcase_add_test(syntax, last_definition_wins);
	tcase_add_test(syntax, count_counts_distinct_keys);
	tcase_add_test(syntax, empty_values_are_empty_strings);
	tcase_add_test(syntax, null_envfile_is_empty);
	tcase_add_test(syntax, long_values_are_kept_whole);
	suite_add_tcase(s, syntax);

	tcase_add_checked_fixture(unquoted, clear_env, NULL);
	tcase_add_test(unquoted, unquoted_value_loses_trailing_blanks);
	tcase_add_test(unquoted, inline_comment_after_a_blank_is_stripped);
	tcase_add_test(unquoted, hash_inside_a_word_is_kept);
	tcase_add_test(unquoted, unquoted_value_keeps_quotes_and_backslashes_inside);
	suite_add_tcase(s, unquoted);

	tcase_add_checked_fixture(quoted, clear_env, NULL);
	tcase_add_test(quoted, single_quotes_are_literal);
	tcase_add_test(quoted, double_quotes_decode_escapes);
	tcase_add_test(quoted, double_quotes_keep_blanks_and_hashes);
	tcase_add_test(quoted, double_quotes_expand_variables);
	tcase_add_test(quoted, comment_may_follow_a_closing_quote);
	suite_add_tcase(s, quoted);

	tcase_add_checked_fixture(expansion, clear_env, NULL);
	tcase_add_test(expansion, reference_to_an_earlier_key_expands);
	tcase_add_test(expansion, reference_to_the_environment_expands);
	tcase_add_test(expansion, environment_wins_over_an_earlier_key);
	tcase_add_test(expansion, undefined_reference_expands_to_empty);
	tcase_add_test(expansion, reference_to_a_later_key_expands_to_empty);
	tcase_add_test(expansion, redefinition_may_use_the_previous_value);
	suite_add_tcase(s, expansion);

	tcase_add_checked_fixture(errors, clear_env, NULL);
	tcase_add_loop_test(errors, malformed_line_is_rejected_naming_its_line, 0, N_ELEMS(bad_texts));
	tcase_add_test(errors, nul_byte_is_rejected_naming_its_line);
	tcase_add_test(errors, nul_byte_on_the_first_line_is_line_one);
	tcase_add_test(errors, error_message_is_cut_to_the_buffer);
	suite_add_tcase(s, errors);

	tcase_add_checked_fixture(load, make_dir, remove_dir);
	tcase_add_test(load, load_reads_a_file);
	tcase_add_test(load, load_reads_an_empty_file);
	tcase_add_test(load, load_of_a_missing_file_names_the_path);
	tcase_add_test(load, load_syntax_error_names_the_path_and_line);
	tcase_add_test(load, load_accepts_a_file_of_exactly_one_mebibyte);
	tcase_add_test(load, load_refuses_a_file_over_one_mebibyte);
	tcase_add_test(load, expansion_past_one_mebibyte_is_refused);
	suite_add_tcase(s, load);
	return tu_run(s);
}
