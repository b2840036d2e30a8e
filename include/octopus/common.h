/* What every libocto module shares: the export macro, the error codes,
 * the last-error message and the one deallocator for library strings.
 *
 * Ownership, for the whole library: a function named octo_<x>_new() or
 * _open() gives the caller a handle to release with the NULL-safe
 * octo_<x>_free(); a getter returns a borrowed pointer that lives as long
 * as the handle it came from; any other memory the library hands out
 * (strings, buffers) is released with octo_free(). */
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

/* A static English description of an error code; never NULL. */
OCTO_EXTERN const char *octo_strerror(int code);

/* The message of the last failing libocto call on this thread, or "" when
 * there is none. Borrowed: valid until the next libocto call on this
 * thread. Errors of asynchronous work travel with that work instead. */
OCTO_EXTERN const char *octo_error_last(void);

/* Releases memory that libocto allocated for the caller. NULL-safe. */
OCTO_EXTERN void octo_free(void *ptr);

/* The version string of the library that is linked, e.g. "0.1.0". */
OCTO_EXTERN const char *octo_version(void);

OCTO_END_DECL

#endif
