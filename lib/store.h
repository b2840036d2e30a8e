/* The storage backend interface: what a backend implements so that
 * octo_store_* can dispatch to it. Keys reach a backend already validated;
 * list arguments are checked too. */
#ifndef OCTO_LIB_STORE_H
#define OCTO_LIB_STORE_H

#include <octopus/store.h>

/* Hears how a posted put ended: rc 0, or an error with this thread's last
 * error set. */
typedef void (*octo__store_done)(int rc, void *payload);

typedef struct {
	const char *name;
	int (*ping)(octo_store *store);
	int (*head)(octo_store *store, const char *key, octo_object_info *info);
	int (*put_fd)(octo_store *store, const char *key, int fd, uint64_t offset,
	              uint64_t len);
	int (*put)(octo_store *store, const char *key, const void *data, size_t len);
	/* Optional: a put of a small object rewritten often (a job record),
	 * which the backend may keep other than as an object of its own. */
	int (*put_record)(octo_store *store, const char *key, const void *data, size_t len);
	/* Optional: put_record() that calls `done` once, maybe on another
	 * thread, instead of waiting (see octo__store_post_record). */
	void (*post_record)(octo_store *store, const char *key, const void *data, size_t len,
	                    octo__store_done done, void *payload);
	int (*get_cb)(octo_store *store, const char *key, octo_store_data_cb cb,
	              void *payload);
	int (*del)(octo_store *store, const char *key);
	int (*list)(octo_store *store, const char *prefix, const char *start_after,
	            size_t max_keys, octo_store_list_cb cb, void *payload, int *more);
	int (*presign)(octo_store *store, const char *key, uint32_t ttl_s, char **url);
	/* Optional: a read-only descriptor on the object, for serving it. */
	int (*open_object)(octo_store *store, const char *key, int *fd,
	                   octo_object_info *info);
	void (*free)(octo_store *store);
} octo__store_backend;

/* Every backend's handle starts with this, so a backend casts
 * octo_store * to its own struct. */
struct octo_store {
	const octo__store_backend *backend;
	struct octo__store_metrics *metrics; /* NULL: calls are not counted */
};

/* octo_store_put() of a job record: backends without put_record put it
 * as any other object. */
int octo__store_put_record(octo_store *store, const char *key, const void *data,
                           size_t len);

/* octo__store_put_record() that need not hold the caller's thread while
 * the disk syncs: `key` and `data` are copied, and `done` is called once
 * the record is durable or has failed, on this thread before the call
 * returns or on the store's commit thread. Always called, exactly once. */
void octo__store_post_record(octo_store *store, const char *key, const void *data,
                             size_t len, octo__store_done done, void *payload);

/* Opens the object for reading: *fd is the caller's to close.
 * OCTO_EUNSUPPORTED on backends whose objects are not local files. */
int octo__store_open_object(octo_store *store, const char *key, int *fd,
                            octo_object_info *info);

#endif
