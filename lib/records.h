/* The record log of a local store: small objects that change often (job
 * records) kept in one append-only file, <root>/.records, with an index
 * in memory, instead of a file each.
 *
 * A file per record costs an inode, a directory entry and their writeback
 * on every new job; on a busy store that was most of a durable submit's
 * CPU. Here a record is one append, and concurrent puts share one
 * fdatasync. The log is compacted (its live records copied to a new file
 * that replaces it) once it is more than twice their size.
 *
 * The process that owns the store's journal owns the log: it replays it
 * on open and alone writes it. Any other handle on the directory follows
 * it, reading what the owner appended since its last call, so replicas
 * on one directory still read each other's records.
 *
 * Ownership: a log is released with octo__records_free(); copies of
 * records are the caller's (octo_free()).
 * Thread safety: every call may run on many threads at once, except
 * octo__records_free(). */
#ifndef OCTO_LIB_RECORDS_H
#define OCTO_LIB_RECORDS_H

#include <octopus/store.h>

typedef struct octo__records octo__records;

/* Records larger than this are not logged: the store writes them as files. */
#define OCTO__RECORD_MAX (1024 * 1024)

/* Opens the record log of the store directory `root`. The `owner` replays
 * it and starts a generation of its own in a new file; another opener
 * only follows it.
 * Errors: OCTO_EIO or OCTO_ENOSPC when the log cannot be read or
 * rewritten (it is kept for the next try); OCTO_ENOMEM. */
int octo__records_open(octo__records **out, const char *root, int owner);

void octo__records_free(octo__records *r);

/* Logs `key` = the `len` (≤ OCTO__RECORD_MAX) bytes at `data` durably.
 * Owner only. Errors: OCTO_EIO, OCTO_ENOSPC, OCTO_ENOMEM. */
int octo__records_put(octo__records *r, const char *key, const void *data, size_t len);

/* octo__records_put() without waiting: copies `key` and `data` and
 * returns; the log's commit thread calls `done` once the record is
 * durable, with rc 0 or an error as a put's (and that thread's last error
 * set). Errors, when done is not called: those checked first (another
 * owner, too large, OCTO_ENOMEM); OCTO_ERROR when no thread can start. */
int octo__records_post(octo__records *r, const char *key, const void *data, size_t len,
                       void (*done)(int rc, void *payload), void *payload);

/* Logs the removal of record `key` durably. Owner only.
 * Errors: OCTO_ENOTFOUND when there is no such record; as a put. */
int octo__records_del(octo__records *r, const char *key);

/* Reports record `key`: its info (may be NULL) and, when `data` is not
 * NULL, a NUL-terminated copy of its bytes in *`data`, *`len`.
 * Errors: OCTO_ENOTFOUND (quietly: no message is set); OCTO_EIO;
 * OCTO_ENOMEM. */
int octo__records_get(octo__records *r, const char *key, octo_object_info *info,
                      char **data, size_t *len);

/* Calls `add` with every record whose key starts with `prefix` and sorts
 * after `start_after`, in no order. The key and info are borrowed for the
 * call, which runs with the log's index locked: `add` must not call back. */
void octo__records_each(octo__records *r, const char *prefix, const char *start_after,
                        void (*add)(const char *key, const octo_object_info *info,
                                    void *payload),
                        void *payload);

#endif
