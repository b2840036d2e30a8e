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

static int local_put(octo_store *store, const char *key, const void *data, size_t len)
{
	local_store *s = (local_store *)store;
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
	if (write_all(fd, data, len) < 0 || fsync(fd) < 0) {
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
			return octo__error(OCTO_ENOTFOUND, "no object %s", key);
		return io_error(errno, "stat", path);
	}
	if (!S_ISREG(st.st_mode))
		return octo__error(OCTO_ENOTFOUND, "no object %s", key);
	info->size = (uint64_t)st.st_size;
	info->mtime = (int64_t)st.st_mtime;
	return 0;
}

static int read_fd(int fd, char **data, size_t *len)
{
	size_t cap = 4096, used = 0;
	char *buf = malloc(cap);

	if (!buf)
		return octo__error(OCTO_ENOMEM, "out of memory");
	for (;;) {
		ssize_t n;
		if (used + 1 == cap) {
			char *bigger = realloc(buf, cap * 2);
			if (!bigger) {
				free(buf);
				return octo__error(OCTO_ENOMEM, "out of memory");
			}
			buf = bigger;
			cap *= 2;
		}
		n = read(fd, buf + used, cap - used - 1);
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			free(buf);
			return io_error(errno, "read", "object");
		}
		used += (size_t)n;
	}
	buf[used] = '\0';
	*data = buf;
	*len = used;
	return 0;
}

static int local_get(octo_store *store, const char *key, char **data, size_t *len)
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
			return octo__error(OCTO_ENOTFOUND, "no object %s", key);
		return io_error(errno, "open", path);
	}
	/* open() succeeds on a directory (a key prefix such as "a" of "a/b"),
	 * which is no object: report it as head() does. */
	if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
		close(fd);
		return octo__error(OCTO_ENOTFOUND, "no object %s", key);
	}
	rc = read_fd(fd, data, len);
	close(fd);
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
	"local", local_ping, local_head, local_put, local_get, local_del, local_free
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
