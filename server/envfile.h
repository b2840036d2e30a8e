/* .env files: KEY=VALUE lines as Docker Compose and dotenv read them.
 * Supports comments, `export`, single quotes (literal), double quotes
 * (with \n \t \" \\ escapes and ${VAR}), and ${VAR} in unquoted values. */
#ifndef OCTOPUSD_ENVFILE_H
#define OCTOPUSD_ENVFILE_H

#include <stddef.h>

typedef struct envfile envfile;

/* Parses `len` bytes. On failure returns -1 and writes "line N: why" to
 * `err`. ${VAR} resolves against the process environment first, then the
 * keys defined earlier in the file; an undefined one expands to "". */
int envfile_parse(envfile **out, const char *text, size_t len,
                  char *err, size_t errlen);

/* Reads and parses a file; errors name the file. */
int envfile_load(envfile **out, const char *path, char *err, size_t errlen);

/* The value of `name`, or NULL. Borrowed from `ef`; NULL-safe on `ef`.
 * A key defined twice has its last value. */
const char *envfile_get(const envfile *ef, const char *name);

/* Number of distinct keys. */
size_t envfile_count(const envfile *ef);

void envfile_free(envfile *ef);

#endif
