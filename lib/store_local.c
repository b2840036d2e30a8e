/* The local-directory storage backend: one plain file per object.
 *
 * A put writes a temporary file in <root>/.tmp, fsyncs it, renames it over
 * the object and fsyncs the directory: rename is atomic on POSIX, and the
 * two fsyncs make both the bytes and the new name survive a power loss. */
#include "config.h"
#include "internal.h"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMP_DIR ".tmp"

typedef struct {
	octo_store base;
	char *root;
} local_store;

static int io_error(int err, const char *what, const char *path)
{
	int code = (err == ENOSPC || err == EDQUOT) ? OCTO_ENOSPC : OCTO_EIO;
	return octo__error(code, "%s %s: %s", what, path, strerror(err));
}

static int object_path(const local_store *s, const char *key, char *out, size_t size)
{
	int n = snprintf(out, size, "%s/%s", s->root, key);

	if (n < 0 || (size_t)n >= size)
		return octo__error(OCTO_EINVAL, "object path too long");
	return 0;
}

/* mkdir -p for every directory in `path` before its last '/'. */
static int make_parents(char *path, size_t from)
{
	char *slash;

	for (slash = strchr(path + from, '/'); slash; slash = strchr(slash + 1, '/')) {
		if (slash == path)
			continue;
		*slash = '\0';
		if (mkdir(path, 0750) < 0 && errno != EEXIST) {
			int err = errno;
			*slash = '/';
			return io_error(err, "mkdir", path);
		}
		*slash = '/';
	}
	return 0;
}

static int fsync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	char *slash;
	int fd, rc = 0;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return io_error(errno, "open directory", dir);
	if (fsync(fd) < 0)
		rc = io_error(errno, "fsync directory", dir);
	close(fd);
	return rc;
}

static int write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Fills the temporary file: from memory or from another descriptor. */
typedef struct {
	const char *data;  /* memory source, or NULL */
	int fd;            /* descriptor source */
	uint64_t offset, len;
} source;

static int copy_source(int out, const source *src)
{
	char buf[64 * 1024];
	uint64_t done = 0;

	if (src->data)
		return write_all(out, src->data, src->len);
	while (done < src->len) {
		size_t want = src->len - done < sizeof(buf) ? (size_t)(src->len - done) : sizeof(buf);
		ssize_t n = pread(src->fd, buf, want, (off_t)(src->offset + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			errno = n == 0 ? EIO : errno; /* the source ended early */
			return -1;
		}
		if (write_all(out, buf, (size_t)n) < 0)
			return -1;
		done += (uint64_t)n;
	}
	return 0;
}

static int write_object(local_store *s, const char *key, const source *src)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	int fd, rc;

	if ((rc = object_path(s, key, path, sizeof(path))) < 0)
		return rc;
	if ((rc = make_parents(path, strlen(s->root) + 1)) < 0)
		return rc;
	snprintf(tmp, sizeof(tmp), "%s/" TMP_DIR "/put-XXXXXX", s->root);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return io_error(errno, "create", tmp);
	if (copy_source(fd, src) < 0 || fsync(fd) < 0) {
		rc = io_error(errno, "write", tmp);
		close(fd);
		goto fail;
	}
	if (close(fd) < 0) {
		rc = io_error(errno, "close", tmp);
		goto fail;
	}
	if (rename(tmp, path) < 0) {
		rc = io_error(errno, "rename", path);
		goto fail;
	}
	return fsync_dir_of(path);
fail:
	unlink(tmp);
	return rc;
}

static int local_put(octo_store *store, const char *key, const void *data, size_t len)
{
	source src = { data, -1, 0, len };

	return write_object((local_store *)store, key, &src);
}

static int local_put_fd(octo_store *store, const char *key, int fd, uint64_t offset,
                        uint64_t len)
{
	source src = { NULL, fd, offset, len };

	return write_object((local_store *)store, key, &src);
}

/* An etag that changes whenever the file does, as web servers make them. */
static void fill_info(const struct stat *st, octo_object_info *info)
{
	info->size = (uint64_t)st->st_size;
	info->mtime = (int64_t)st->st_mtime;
	snprintf(info->etag, sizeof(info->etag), "%llx-%llx-%lx",
	         (unsigned long long)st->st_ino, (unsigned long long)st->st_size,
	         (long)(st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000));
}

static int local_ping(octo_store *store);

/* A key that is missing because the whole store is (its directory gone,
 * its volume unmounted) is no answer about the object: report the store
 * as failing, as an unreachable S3 is, not the object as absent. */
static int not_found(octo_store *store, const char *key)
{
	if (local_ping(store) < 0)
		return OCTO_EIO;
	return octo__error(OCTO_ENOTFOUND, "no object %s", key);
}

static int local_head(octo_store *store, const char *key, octo_object_info *info)
{
	local_store *s = (local_store *)store;
	char path[PATH_MAX];
	struct stat st;
	int rc;

	if ((rc = object_path(s, key, path, sizeof(path))) < 0)
		return rc;
	if (stat(path, &st) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return not_found(store, key);
		return io_error(errno, "stat", path);
	}
	if (!S_ISREG(st.st_mode))
		return octo__error(OCTO_ENOTFOUND, "no object %s", key);
	fill_info(&st, info);
	return 0;
}

static int local_open_object(octo_store *store, const char *key, int *out,
                             octo_object_info *info)
{
	local_store *s = (local_store *)store;
	char path[PATH_MAX];
	struct stat st;
	int fd, rc;

	if ((rc = object_path(s, key, path, sizeof(path))) < 0)
		return rc;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR || errno == EISDIR)
			return not_found(store, key);
		return io_error(errno, "open", path);
	}
	/* open() succeeds on a directory (a key prefix such as "a" of "a/b"),
	 * which is no object: report it as head() does. */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return octo__error(OCTO_ENOTFOUND, "no object %s", key);
	}
	if (info)
		fill_info(&st, info);
	*out = fd;
	return 0;
}

static int local_get_cb(octo_store *store, const char *key, octo_store_data_cb cb,
                        void *payload)
{
	char buf[64 * 1024];
	int fd, rc;

	if ((rc = local_open_object(store, key, &fd, NULL)) < 0)
		return rc;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = io_error(errno, "read", key);
			break;
		}
		if (n == 0)
			break;
		if (cb(buf, (size_t)n, payload) != 0) {
			rc = octo__error(OCTO_EABORTED, "reader stopped");
			break;
		}
	}
	close(fd);
	return rc;
}

/* ---- listing: walk the tree, keep the page, sort ------------------------- */

typedef struct {
	char *key;
	octo_object_info info;
} listed;

typedef struct {
	const char *prefix, *start_after;
	listed *items;
	size_t count, cap;
	int failed;
} walk;

/* Could any key below directory `rel` ("a/b/") still match the prefix? */
static int dir_may_match(const char *rel, const char *prefix)
{
	size_t n = strlen(rel), p = strlen(prefix);

	return strncmp(rel, prefix, n < p ? n : p) == 0;
}

static void walk_add(walk *w, const char *key, const struct stat *st)
{
	if (strncmp(key, w->prefix, strlen(w->prefix)) != 0 || strcmp(key, w->start_after) <= 0)
		return;
	if (w->count == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 64;
		listed *bigger = realloc(w->items, cap * sizeof(*bigger));
		if (!bigger) {
			w->failed = 1;
			return;
		}
		w->items = bigger;
		w->cap = cap;
	}
	if (!(w->items[w->count].key = strdup(key))) {
		w->failed = 1;
		return;
	}
	fill_info(st, &w->items[w->count].info);
	w->count++;
}

static void walk_dir(walk *w, const char *root, const char *rel)
{
	char path[PATH_MAX], child[PATH_MAX];
	struct dirent *e;
	struct stat st;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	if (!(d = opendir(path)))
		return;
	while (!w->failed && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || !octo_store_key_valid(e->d_name))
			continue; /* .tmp, . and .., and files no key can name */
		if ((size_t)snprintf(child, sizeof(child), "%s%s", rel, e->d_name) >= sizeof(child) ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISREG(st.st_mode)) {
			walk_add(w, child, &st);
		} else if (S_ISDIR(st.st_mode) && strlen(child) + 1 < sizeof(child)) {
			strcat(child, "/");
			if (dir_may_match(child, w->prefix))
				walk_dir(w, root, child);
		}
	}
	closedir(d);
}

static int cmp_listed(const void *a, const void *b)
{
	return strcmp(((const listed *)a)->key, ((const listed *)b)->key);
}

/* Local listing reads the whole matching tree for every page: fine for
 * the embedded store's sizes; S3 pages on the server. */
static int local_list(octo_store *store, const char *prefix, const char *start_after,
                      size_t max_keys, octo_store_list_cb cb, void *payload, int *more)
{
	local_store *s = (local_store *)store;
	walk w = { prefix, start_after, NULL, 0, 0, 0 };
	size_t i, n;
	int rc = 0;

	if (local_ping(store) < 0)
		return octo__error(OCTO_EIO, "store directory %s is not usable", s->root);
	walk_dir(&w, s->root, "");
	if (w.failed)
		rc = octo__error(OCTO_ENOMEM, "out of memory");
	if (w.count > 1) /* qsort() must not see NULL, which no match leaves */
		qsort(w.items, w.count, sizeof(*w.items), cmp_listed);
	n = w.count < max_keys ? w.count : max_keys;
	for (i = 0; rc == 0 && i < n; i++)
		if (cb(w.items[i].key, &w.items[i].info, payload) != 0)
			rc = octo__error(OCTO_EABORTED, "lister stopped");
	*more = w.count > max_keys;
	for (i = 0; i < w.count; i++)
		free(w.items[i].key);
	free(w.items);
	return rc;
}

static int local_del(octo_store *store, const char *key)
{
	local_store *s = (local_store *)store;
	char path[PATH_MAX];
	int rc;

	if ((rc = object_path(s, key, path, sizeof(path))) < 0)
		return rc;
	if (unlink(path) < 0) {
		if (errno == ENOENT || errno == ENOTDIR || errno == EISDIR)
			return octo__error(OCTO_ENOTFOUND, "no object %s", key);
		return io_error(errno, "unlink", path);
	}
	return fsync_dir_of(path);
}

/* Usable means: the root and its .tmp are directories we may write in. */
static int local_ping(octo_store *store)
{
	local_store *s = (local_store *)store;
	char tmp[PATH_MAX];
	struct stat st;

	snprintf(tmp, sizeof(tmp), "%s/" TMP_DIR, s->root);
	if (stat(tmp, &st) < 0 || !S_ISDIR(st.st_mode) || access(tmp, W_OK | X_OK) < 0)
		return octo__error(OCTO_EIO, "store directory %s is not usable", s->root);
	return 0;
}

static void local_free(octo_store *store)
{
	local_store *s = (local_store *)store;

	free(s->root);
	free(s);
}

static const octo__store_backend local_backend = {
	.name = "local",
	.ping = local_ping,
	.head = local_head,
	.put_fd = local_put_fd,
	.put = local_put,
	.get_cb = local_get_cb,
	.del = local_del,
	.list = local_list,
	.presign = NULL, /* the HTTP API serves local files at signed URLs */
	.open_object = local_open_object,
	.free = local_free,
};

/* Partial writes of a crashed process are garbage: remove them. */
static void remove_stale_temps(const char *tmpdir)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.')
			unlinkat(dirfd(d), e->d_name, 0);
	}
	closedir(d);
}

int octo_store_open_local(octo_store **out, const char *dir)
{
	local_store *s;
	char tmp[PATH_MAX];
	int rc;

	octo__error_clear();
	if (!out || !dir || !*dir)
		return octo__error(OCTO_EINVAL, "no store directory given");
	if (strlen(dir) + sizeof("/" TMP_DIR "/put-XXXXXX") + OCTO_STORE_KEY_MAX >= PATH_MAX)
		return octo__error(OCTO_EINVAL, "store directory path too long");
	snprintf(tmp, sizeof(tmp), "%s/" TMP_DIR "/", dir);
	if ((rc = make_parents(tmp, 0)) < 0)
		return rc;
	tmp[strlen(tmp) - 1] = '\0';
	remove_stale_temps(tmp);
	if (!(s = calloc(1, sizeof(*s))) || !(s->root = strdup(dir))) {
		free(s);
		return octo__error(OCTO_ENOMEM, "out of memory");
	}
	s->base.backend = &local_backend;
	if ((rc = local_ping(&s->base)) < 0) {
		local_free(&s->base);
		return rc;
	}
	*out = &s->base;
	return 0;
}
