/* JSON in and out, over yajl: a strict parser for untrusted input and a
 * writer that always produces valid, compact UTF-8 JSON. */
/*
 * Ownership: a parsed document (octo_json) owns every value reached from
 * it; values and their strings are borrowed and die with octo_json_free().
 * A writer's output is handed over by octo_json_writer_finish() and
 * released with octo_free().
 *
 * Thread safety: a document or a writer belongs to one thread at a time;
 * distinct handles are independent.
 *
 * Errors: see each function. The value readers return OCTO_EINVAL without
 * a message, as a wrong type is an answer rather than a failure.
 */
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

/* Parses `len` bytes of JSON at `text` (no NUL terminator needed; NULL only
 * when `len` is 0) and sets *`out` to the new document, released with
 * octo_json_free(). The text is not kept.
 * Errors: OCTO_EPARSE for invalid syntax or UTF-8, NUL bytes (raw or
 * \u0000), unpaired UTF-16 surrogate escapes, comments, nesting over
 * OCTO_JSON_MAX_DEPTH, an object with a duplicate key, trailing data, or no
 * value at all; OCTO_EINVAL when `out` is NULL or `text` is NULL with a
 * length; OCTO_ENOMEM. */
OCTO_EXTERN int octo_json_parse(octo_json **out, const char *text, size_t len);

/* Frees the document `doc` and all its values. NULL-safe. */
OCTO_EXTERN void octo_json_free(octo_json *doc);

/* The top-level value of the document `doc`. Borrowed from `doc`. */
OCTO_EXTERN const octo_json_value *octo_json_root(const octo_json *doc);

/* The type of the value `v`; OCTO_JSON_NULL also when `v` is NULL. */
OCTO_EXTERN octo_json_type octo_json_typeof(const octo_json_value *v);

/* The member called `key` of the object `obj`, or NULL when there is none,
 * when `obj` is no object or when either is NULL. Borrowed. */
OCTO_EXTERN const octo_json_value *octo_json_get(const octo_json_value *obj,
                                                 const char *key);

/* The element count of the array or object `v`; 0 for other types and for
 * NULL. */
OCTO_EXTERN size_t octo_json_size(const octo_json_value *v);

/* The element at `index` of the array `arr`, or NULL when out of range,
 * when `arr` is no array or is NULL. Borrowed. */
OCTO_EXTERN const octo_json_value *octo_json_at(const octo_json_value *arr,
                                                size_t index);

/* Reads the integer `v` (OCTO_JSON_INTEGER) into *`out`. `v` may be NULL.
 * Errors: OCTO_EINVAL, without a message, when `v` is NULL, of another
 * type, or a number with a fraction or exponent or beyond int64. */
OCTO_EXTERN int octo_json_int(const octo_json_value *v, int64_t *out);

/* Reads the boolean `v` into *`out` (1 for true, 0 for false). `v` may be
 * NULL.
 * Errors: OCTO_EINVAL, without a message, when `v` is NULL or of another
 * type. */
OCTO_EXTERN int octo_json_bool(const octo_json_value *v, int *out);

/* Points *`out` at the NUL-terminated text of the string `v`, borrowed from
 * its document. `v` may be NULL.
 * Errors: OCTO_EINVAL, without a message, when `v` is NULL or of another
 * type. */
OCTO_EXTERN int octo_json_string(const octo_json_value *v, const char **out);

/* Makes a streaming writer and sets *`out` to it; release it with
 * octo_json_writer_free(). The write calls below must form exactly one
 * valid JSON value (keys inside objects, values elsewhere); they return
 * nothing, and a misuse makes octo_json_writer_finish() fail, so callers
 * check once at the end.
 * Errors: OCTO_ENOMEM. */
OCTO_EXTERN int octo_json_writer_new(octo_json_writer **out);

/* Frees the writer `w` and any unfinished output. NULL-safe. */
OCTO_EXTERN void octo_json_writer_free(octo_json_writer *w);

/* Opens an object in `w`, as a value. */
OCTO_EXTERN void octo_json_write_object_begin(octo_json_writer *w);

/* Closes the innermost open container of `w`, which must be an object with
 * no key waiting for its value. */
OCTO_EXTERN void octo_json_write_object_end(octo_json_writer *w);

/* Opens an array in `w`, as a value. */
OCTO_EXTERN void octo_json_write_array_begin(octo_json_writer *w);

/* Closes the innermost open container of `w`, which must be an array. */
OCTO_EXTERN void octo_json_write_array_end(octo_json_writer *w);

/* Writes the member name `key` in the innermost open object of `w`; its
 * value must come next. Any bytes, repaired as octo_json_write_string()
 * does; NULL is written as "". */
OCTO_EXTERN void octo_json_write_key(octo_json_writer *w, const char *key);

/* Writes to `w` the string value `s` (copied). Any bytes in: invalid UTF-8
 * is replaced with U+FFFD so output stays valid; NULL is written as "". */
OCTO_EXTERN void octo_json_write_string(octo_json_writer *w, const char *s);

/* Writes to `w` the integer value `n`. */
OCTO_EXTERN void octo_json_write_int(octo_json_writer *w, int64_t n);

/* Writes to `w` the number `d` with up to 6 significant digits ("0.25", not
 * "0.25000000000000000"). A value that is not finite makes finish fail, as
 * JSON has no such number. */
OCTO_EXTERN void octo_json_write_double(octo_json_writer *w, double d);

/* Writes to `w` true when `b` is non-zero, else false. */
OCTO_EXTERN void octo_json_write_bool(octo_json_writer *w, int b);

/* Writes null to `w`. */
OCTO_EXTERN void octo_json_write_null(octo_json_writer *w);

/* Hands the finished text of `w` to the caller: *`text` is NUL-terminated
 * and released with octo_free(); its length goes to *`len` unless `len` is
 * NULL. The writer is reset for reuse, whether this succeeds or not.
 * Errors: OCTO_EINVAL when the calls since the last reset did not form
 * exactly one complete value (a misuse, a non-finite double, nesting past
 * 128 levels, or an allocation that failed while writing); OCTO_ENOMEM. */
OCTO_EXTERN int octo_json_writer_finish(octo_json_writer *w, char **text,
                                        size_t *len);

OCTO_END_DECL

#endif
