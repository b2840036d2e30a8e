/* What every libocto module shares: the export macro, the error codes,
 * the last-error message and the one deallocator for library strings. */
/*
 * Ownership, for the whole library: a function named octo_<x>_new() or
 * _open() gives the caller a handle to release with the NULL-safe
 * octo_<x>_free(); a getter returns a borrowed pointer that lives as long
 * as the handle it came from; any other memory the library hands out
 * (strings, buffers) is released with octo_free(). Strings passed in are
 * copied when kept, unless a comment says they are borrowed.
 *
 * Thread safety: every function of this header may be called from any
 * thread; each header states the rules for its own handles.
 *
 * Errors, for the whole library: a function that can fail returns 0 on
 * success or a negative OCTO_E* code and, unless its comment says
 * otherwise, puts an English message in this thread's octo_error_last().
 * A few also return 1 for a second kind of success; their comments say so.
 *
 * Conventions of the comments in these headers: parameters are named in
 * backquotes; a pointer parameter must not be NULL unless its comment says
 * it may be (where a function can tell, it fails with OCTO_EINVAL, but do
 * not rely on that); "Errors:" lists the codes a function can return,
 * besides the module-wide ones its header names.
 */
#ifndef OCTOPUS_COMMON_H
#define OCTOPUS_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define OCTO_BEGIN_DECL extern "C" {
#define OCTO_END_DECL }
#else
#define OCTO_BEGIN_DECL
#define OCTO_END_DECL
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#define OCTO_EXTERN __attribute__((visibility("default")))
#else
#define OCTO_EXTERN
#endif

OCTO_BEGIN_DECL

/* Error codes. Every function that can fail returns 0 or one of these.
 * The numbers never change; a retired code keeps its number reserved. */
typedef enum {
	OCTO_OK = 0,
	OCTO_ERROR = -1,       /* unexpected failure; see octo_error_last() */
	OCTO_ENOMEM = -2,      /* out of memory */
	OCTO_EINVAL = -3,      /* an argument is invalid */
	OCTO_ENOTFOUND = -4,   /* the object or item does not exist */
	OCTO_EIO = -5,         /* storage or operating-system I/O failed */
	OCTO_EPARSE = -6,      /* input is not well-formed (JSON, config) */
	OCTO_ERANGE = -7,      /* a value is outside its allowed range */
	OCTO_ENOSPC = -8,      /* no space left on the storage device */
	OCTO_ESHUTDOWN = -9,   /* the handle is shutting down */
	OCTO_EUNSUPPORTED = -10, /* not supported by this build or backend */
	OCTO_EUNAVAILABLE = -11, /* a service is unreachable or timed out; retry later */
	OCTO_EDENIED = -12,      /* credentials or permissions refused */
	OCTO_EABORTED = -13,     /* a caller's callback asked to stop */
	OCTO_EBUSY = -14,        /* a bounded queue is full; retry later */
	OCTO_ECONFLICT = -15     /* the request conflicts with the current state */
} octo_error_code;

/* A short English description of `code`, any int: "unknown error code" for
 * a number that is no octo_error_code. Static; never NULL. */
OCTO_EXTERN const char *octo_strerror(int code);

/* The message of the last failing libocto call on this thread, or "" when
 * there is none. Borrowed: valid until the next libocto call on this
 * thread. Errors of asynchronous work travel with that work instead. Most
 * fallible calls clear it when they start; octo_log_write() leaves it as it
 * was, so a failure can be logged before it is reported. */
OCTO_EXTERN const char *octo_error_last(void);

/* Releases `ptr`, memory that libocto allocated for the caller (rendered
 * text, snapshots, URLs, object data). NULL-safe. */
OCTO_EXTERN void octo_free(void *ptr);

/* The version string of the library that is linked, e.g. "0.1.0"; compare
 * with OCTO_VERSION from <octopus/version.h>. Static. */
OCTO_EXTERN const char *octo_version(void);

OCTO_END_DECL

#endif
