/* The storage backend interface: what a backend implements so that
 * octo_store_* can dispatch to it. Keys reach a backend already validated. */
#ifndef OCTO_LIB_STORE_H
#define OCTO_LIB_STORE_H

#include <octopus/store.h>

typedef struct {
	const char *name;
	int (*ping)(octo_store *store);
	int (*head)(octo_store *store, const char *key, octo_object_info *info);
	int (*put)(octo_store *store, const char *key, const void *data, size_t len);
	int (*get)(octo_store *store, const char *key, char **data, size_t *len);
	int (*del)(octo_store *store, const char *key);
	void (*free)(octo_store *store);
} octo__store_backend;

/* Every backend's handle starts with this, so a backend casts
 * octo_store * to its own struct. */
struct octo_store {
	const octo__store_backend *backend;
};

#endif
