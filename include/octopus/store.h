/* Object storage: named byte objects under slash-separated keys
 * ("downloads/70000.zip"), written atomically, behind one interface.
 *
 * Backends: a local directory (the embedded default). A store handle is
 * safe to use from many threads at once. Keys are 1..1024 bytes of
 * [A-Za-z0-9._-] segments of 1..255 bytes joined by '/'; no segment may
 * start with '.', so a key never escapes the store. Invalid keys give
 * OCTO_EINVAL. */
#ifndef OCTOPUS_STORE_H
#define OCTOPUS_STORE_H

#include "common.h"

OCTO_BEGIN_DECL

typedef struct octo_store octo_store;

/* What octo_store_head() reports about an object. */
typedef struct {
	uint64_t size;     /* bytes */
	int64_t mtime;     /* last modification, seconds since the epoch */
} octo_object_info;

#define OCTO_STORE_KEY_MAX 1024
#define OCTO_STORE_SEGMENT_MAX 255

/* Opens a store over the local directory `dir`, creating it (mode 0750)
 * when missing. Objects are plain files below it; partial writes live in
 * `dir/.tmp` and are removed here, so a crash never leaves a torn object. */
OCTO_EXTERN int octo_store_open_local(octo_store **out, const char *dir);

/* Closes the store. NULL-safe. No call may be in flight. */
OCTO_EXTERN void octo_store_free(octo_store *store);

/* The backend's name: "local". Borrowed, static. */
OCTO_EXTERN const char *octo_store_backend(const octo_store *store);

/* Is the store usable right now? 0 when it is, OCTO_EIO when not. */
OCTO_EXTERN int octo_store_ping(octo_store *store);

/* Looks an object up. `info` may be NULL. OCTO_ENOTFOUND when absent. */
OCTO_EXTERN int octo_store_head(octo_store *store, const char *key,
                                octo_object_info *info);

/* Writes an object from memory, replacing any previous one atomically and
 * durably: when this returns 0 the object survives a crash or power loss,
 * and a reader sees either the old or the new object, never a mix.
 * OCTO_ENOSPC when the device is full. */
OCTO_EXTERN int octo_store_put(octo_store *store, const char *key,
                               const void *data, size_t len);

/* Reads a whole object into memory. On success *data is NUL-terminated
 * (not counted in *len) and released with octo_free(). */
OCTO_EXTERN int octo_store_get(octo_store *store, const char *key,
                               char **data, size_t *len);

/* Removes an object. OCTO_ENOTFOUND when it was already absent. */
OCTO_EXTERN int octo_store_delete(octo_store *store, const char *key);

/* 1 when `key` is a valid object key, 0 otherwise. */
OCTO_EXTERN int octo_store_key_valid(const char *key);

OCTO_END_DECL

#endif
