/* JSON in and out, over yajl: a strict parser for untrusted input and a
 * writer that always produces valid, compact UTF-8 JSON.
 *
 * Ownership: a parsed document (octo_json) owns every value reached from
 * it; values are borrowed and die with octo_json_free(). A writer's output
 * is handed over by octo_json_writer_finish() and released with octo_free().
 * Handles are not shared between threads; distinct handles are independent. */
#ifndef OCTOPUS_JSON_H
#define OCTOPUS_JSON_H

#include "common.h"

OCTO_BEGIN_DECL

typedef struct octo_json octo_json;
typedef struct octo_json_value octo_json_value;
typedef struct octo_json_writer octo_json_writer;

typedef enum {
	OCTO_JSON_NULL,
	OCTO_JSON_BOOL,
	OCTO_JSON_INTEGER, /* a number without fraction or exponent that fits int64 */
	OCTO_JSON_NUMBER,  /* any other number */
	OCTO_JSON_STRING,
	OCTO_JSON_ARRAY,
	OCTO_JSON_OBJECT
} octo_json_type;

/* Nesting deeper than this is refused, so hostile input cannot exhaust
 * the stack or the heap. */
#define OCTO_JSON_MAX_DEPTH 64

/* Parses `len` bytes of JSON text. Refused with OCTO_EPARSE (and a message
 * in octo_error_last()): invalid syntax or UTF-8, NUL bytes (raw or \u0000), nesting over
 * OCTO_JSON_MAX_DEPTH, an object with a duplicate key, trailing data. */
OCTO_EXTERN int octo_json_parse(octo_json **out, const char *text, size_t len);

/* Frees a document and all its values. NULL-safe. */
OCTO_EXTERN void octo_json_free(octo_json *doc);

/* The top-level value of a document. */
OCTO_EXTERN const octo_json_value *octo_json_root(const octo_json *doc);

OCTO_EXTERN octo_json_type octo_json_typeof(const octo_json_value *v);

/* The member `key` of an object, or NULL (also when `obj` is no object). */
OCTO_EXTERN const octo_json_value *octo_json_get(const octo_json_value *obj,
                                                 const char *key);

/* Element count of an array or object (0 for other types), and the
 * element at `index` of an array (NULL when out of range). */
OCTO_EXTERN size_t octo_json_size(const octo_json_value *v);
OCTO_EXTERN const octo_json_value *octo_json_at(const octo_json_value *arr,
                                                size_t index);

/* Scalar readers: 0 on success, OCTO_EINVAL when `v` has another type.
 * The string is borrowed and NUL-terminated. */
OCTO_EXTERN int octo_json_int(const octo_json_value *v, int64_t *out);
OCTO_EXTERN int octo_json_bool(const octo_json_value *v, int *out);
OCTO_EXTERN int octo_json_string(const octo_json_value *v, const char **out);

/* A streaming writer. Calls must form valid JSON (keys inside objects,
 * values elsewhere); a misuse makes octo_json_writer_finish() fail with
 * OCTO_EINVAL, so callers may check once at the end. */
OCTO_EXTERN int octo_json_writer_new(octo_json_writer **out);
OCTO_EXTERN void octo_json_writer_free(octo_json_writer *w);

OCTO_EXTERN void octo_json_write_object_begin(octo_json_writer *w);
OCTO_EXTERN void octo_json_write_object_end(octo_json_writer *w);
OCTO_EXTERN void octo_json_write_array_begin(octo_json_writer *w);
OCTO_EXTERN void octo_json_write_array_end(octo_json_writer *w);
OCTO_EXTERN void octo_json_write_key(octo_json_writer *w, const char *key);
/* Any bytes in; invalid UTF-8 is replaced with U+FFFD so output stays valid. */
OCTO_EXTERN void octo_json_write_string(octo_json_writer *w, const char *s);
OCTO_EXTERN void octo_json_write_int(octo_json_writer *w, int64_t n);
/* Up to 6 significant digits ("0.25", not "0.25000000000000000"); a value
 * that is not finite makes finish fail, as JSON has no such number. */
OCTO_EXTERN void octo_json_write_double(octo_json_writer *w, double d);
OCTO_EXTERN void octo_json_write_bool(octo_json_writer *w, int b);
OCTO_EXTERN void octo_json_write_null(octo_json_writer *w);

/* Hands the finished text to the caller (*text NUL-terminated, release
 * with octo_free()) and resets the writer for reuse. */
OCTO_EXTERN int octo_json_writer_finish(octo_json_writer *w, char **text,
                                        size_t *len);

OCTO_END_DECL

#endif
