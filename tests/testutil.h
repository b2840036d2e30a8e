/* Helpers shared by the Check suites: temporary directories and the
 * standard runner that prints Check's summary and sets the exit code. */
#ifndef OCTO_TESTUTIL_H
#define OCTO_TESTUTIL_H

#include <check.h>
#include <stddef.h>

#include <octopus/json.h>

/* Creates a fresh directory under $TMPDIR (or /tmp) and returns its path
 * in a static buffer of the caller's: `out` must hold 256 bytes. */
void tu_mkdtemp(char out[256]);

/* Removes a directory tree (rm -rf). */
void tu_rmtree(const char *path);

/* Writes `len` bytes to `path`, creating or truncating it. */
void tu_write_file(const char *path, const char *data, size_t len);

/* Members of a parsed JSON object, asserting they exist and have the
 * type asked for. Borrowed from `doc`. */
const octo_json_value *member(const octo_json *doc, const char *key);
int64_t int_member(const octo_json *doc, const char *key);
const char *str_member(const octo_json *doc, const char *key);

/* Runs a suite and returns the process exit status. */
int tu_run(Suite *s);

#endif
