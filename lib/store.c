/* The storage front end: key validation, then dispatch to the backend. */
#include "config.h"
#include "internal.h"
#include "store.h"

#include <string.h>

static int segment_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

int octo_store_key_valid(const char *key)
{
	size_t len, i, segment_len = 0;
	int segment_start = 1;

	if (!key)
		return 0;
	len = strlen(key);
	if (len == 0 || len > OCTO_STORE_KEY_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		char c = key[i];
		if (c == '/') {
			if (segment_start) /* empty segment: leading or doubled '/' */
				return 0;
			segment_start = 1;
			segment_len = 0;
			continue;
		}
		/* A leading '.' rules out "." and ".." and hides nothing the
		 * backends keep for themselves (such as .tmp). */
		if (!segment_char_ok(c) || (segment_start && c == '.') ||
		    ++segment_len > OCTO_STORE_SEGMENT_MAX)
			return 0;
		segment_start = 0;
	}
	return !segment_start; /* no trailing '/' */
}

static int check_key(const char *key)
{
	if (!octo_store_key_valid(key))
		return octo__error(OCTO_EINVAL, "invalid object key");
	return 0;
}

const char *octo_store_backend(const octo_store *store)
{
	return store->backend->name;
}

int octo_store_ping(octo_store *store)
{
	octo__error_clear();
	return store->backend->ping(store);
}

int octo_store_head(octo_store *store, const char *key, octo_object_info *info)
{
	octo_object_info ignored;
	int rc;

	octo__error_clear();
	if ((rc = check_key(key)) < 0)
		return rc;
	return store->backend->head(store, key, info ? info : &ignored);
}

int octo_store_put(octo_store *store, const char *key, const void *data, size_t len)
{
	int rc;

	octo__error_clear();
	if ((rc = check_key(key)) < 0)
		return rc;
	if (!data && len > 0)
		return octo__error(OCTO_EINVAL, "no data");
	return store->backend->put(store, key, data, len);
}

int octo_store_get(octo_store *store, const char *key, char **data, size_t *len)
{
	int rc;

	octo__error_clear();
	if ((rc = check_key(key)) < 0)
		return rc;
	return store->backend->get(store, key, data, len);
}

int octo_store_delete(octo_store *store, const char *key)
{
	int rc;

	octo__error_clear();
	if ((rc = check_key(key)) < 0)
		return rc;
	return store->backend->del(store, key);
}

void octo_store_free(octo_store *store)
{
	if (store)
		store->backend->free(store);
}
