/* The local-directory storage backend: one plain file per object.
 *
 * A large put writes a temporary file in <root>/.tmp, fsyncs it, renames
 * it over the object and fsyncs the directory: rename is atomic on POSIX,
 * and the two fsyncs make both the bytes and the new name survive a power
 * loss.
 *
 * Small puts (job records) and deletes are group-committed instead: each
 * goes into <root>/.journal, and whoever commits first writes every change
 * waiting at that moment with a single fdatasync, then installs each
 * object by rename without syncing it. Two fsyncs per record cap a disk at
 * a few thousand records a second; one fdatasync per batch reaches tens of
 * thousands. Replaying the journal on open re-installs whatever a power
 * loss took from the files; a checkpoint (syncfs, then an empty journal)
 * bounds it to a few MiB. The journal's space is written once before it
 * is used, so that an append changes no metadata and its fdatasync waits
 * for its own blocks only, not for a filesystem commit of every object
 * installed since. One process owns a journal (flock): a second opener of
 * the same directory writes each object durably on its own.
 *
 * Job records are not files: they live in the record log (records.h),
 * which the journal's owner owns too. A key that is both a record and a
 * file (a file put before the record) is the record; deleting the key
 * removes the file first, then the record. */
#include "config.h"
#include "group.h"
#include "internal.h"
#include "records.h"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define TMP_DIR ".tmp"
#define JOURNAL ".journal"
#define JOURNAL_VALUE_MAX (1024 * 1024)     /* larger puts are written directly */
#define JOURNAL_CHECKPOINT (8 * 1024 * 1024) /* bytes journaled between syncfs calls */
#define JOURNAL_GROW (256 * 1024)            /* zeroed ahead of the appends */

/* One put or delete waiting for a commit; lives on its caller's stack. */
typedef struct change {
	octo__waiter w;     /* first: the group's batches are of these */
	const char *key;
	const void *data;   /* a journaled put, or NULL */
	size_t len;
	const char *tmp;    /* a direct put: a durable temporary file to rename */
	char staged[PATH_MAX]; /* a journaled put: its temporary file, once written */
	int staged_fd;        /* or its unnamed file (O_TMPFILE), or -1 */
} change;

static change *next_of(const change *c)
{
	return (change *)c->w.next;
}

typedef struct {
	octo__group commits;  /* changes waiting for a commit */
	int fd;               /* -1: another process owns the journal */
	uint64_t size;        /* where the next entry goes */
	uint64_t space;       /* bytes of the file written (zeroes or entries) */
	uint64_t generation;  /* of the entries since the last checkpoint */
	int dirty;            /* bytes past the header may be replayed: a
	                       * checkpoint must start a new generation */
	int torn;             /* an append failed: rotate before the next */
	int ready;            /* replayed at open: closing may checkpoint */
} journal;

typedef struct {
	octo_store base;
	char *root;
	journal journal;
	octo__records *records; /* job records: not files (records.h) */
	int unnamed;          /* files made with O_TMPFILE can be linked */
} local_store;

static int object_path(const local_store *s, const char *key, char *out, size_t size)
{
	int n = snprintf(out, size, "%s/%s", s->root, key);

	if (n < 0 || (size_t)n >= size)
		return octo__error(OCTO_EINVAL, "object path too long");
	return 0;
}

/* mkdir -p for every directory in `path` before its last '/'; counts
 * the directories it made in *made (may be NULL). */
static int make_parents(char *path, size_t from, int *made)
{
	char *slash;

	for (slash = strchr(path + from, '/'); slash; slash = strchr(slash + 1, '/')) {
		if (slash == path)
			continue;
		*slash = '\0';
		if (mkdir(path, 0750) == 0) {
			if (made)
				(*made)++;
		} else if (errno != EEXIST) {
			int err = errno;
			*slash = '/';
			return octo__io_error(err, "mkdir", path);
		}
		*slash = '/';
	}
	return 0;
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

/* Writes a temporary file in .tmp; synced when `durable`. */
static int fill_temp(local_store *s, const source *src, int durable, char *tmp, size_t size)
{
	int fd, rc;

	snprintf(tmp, size, "%s/" TMP_DIR "/put-XXXXXX", s->root);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return octo__io_error(errno, "create", tmp);
	if (copy_source(fd, src) < 0 || (durable && fsync(fd) < 0)) {
		rc = octo__io_error(errno, "write", tmp);
		close(fd);
		unlink(tmp);
		return rc;
	}
	if (close(fd) < 0) {
		rc = octo__io_error(errno, "close", tmp);
		unlink(tmp);
		return rc;
	}
	return 0;
}

/* Syncs the directory holding `path` and, for each of the `made`
 * directories just created above it, the one holding that in turn. */
static int fsync_dirs_of(const char *path, int made)
{
	char at[PATH_MAX];
	char *slash;
	int rc;

	snprintf(at, sizeof(at), "%s", path);
	do {
		if ((rc = octo__fsync_dir_of(at)) < 0 || !(slash = strrchr(at, '/')))
			return rc;
		*slash = '\0';
	} while (made-- > 0);
	return 0;
}

/* Renames a temporary file over `path`, whose directories exist; on
 * failure the temporary file is removed. */
static int place(const char *tmp, const char *path)
{
	int rc;

	if (rename(tmp, path) == 0)
		return 0;
	rc = octo__io_error(errno, "rename", path);
	unlink(tmp);
	return rc;
}

/* Renames a temporary file over the object's path, making its
 * directories first. */
static int install(local_store *s, const char *tmp, const char *key, int durable)
{
	char path[PATH_MAX];
	int rc, made = 0;

	if ((rc = object_path(s, key, path, sizeof(path))) < 0 ||
	    (rc = make_parents(path, strlen(s->root) + 1, &made)) < 0) {
		unlink(tmp);
		return rc;
	}
	if ((rc = place(tmp, path)) < 0)
		return rc;
	return durable ? fsync_dirs_of(path, made) : 0;
}

static int write_object(local_store *s, const char *key, const source *src, int durable)
{
	char tmp[PATH_MAX];
	int rc;

	if ((rc = fill_temp(s, src, durable, tmp, sizeof(tmp))) < 0)
		return rc;
	return install(s, tmp, key, durable);
}

static int remove_object(local_store *s, const char *key, int durable)
{
	char path[PATH_MAX];
	int rc;

	if ((rc = object_path(s, key, path, sizeof(path))) < 0)
		return rc;
	if (unlink(path) < 0) {
		if (errno == ENOENT || errno == ENOTDIR || errno == EISDIR)
			return octo__error(OCTO_ENOTFOUND, "no object %s", key);
		return octo__io_error(errno, "unlink", path);
	}
	return durable ? octo__fsync_dir_of(path) : 0;
}

/* ---- the journal ---------------------------------------------------------
 *
 * The file starts with a header: a SHA-256 digest of the rest, the magic
 * "OJH1", and the generation, a random number chosen at each checkpoint.
 * Entries follow: a digest of the rest, the magic "OJ1\n", the key's
 * length (4 bytes), the value's (8 bytes; all ones for a delete), the
 * generation, the key, the value. Integers are little-endian. Replay
 * takes the entries of the header's generation and stops at the first
 * that is torn, fails its digest or is older: nothing after it was ever
 * acknowledged, since a batch is acknowledged only once synced whole. */

#define DIGEST OCTO__DIGEST
#define HEADER_SIZE (DIGEST + 12)
#define ENTRY_HEAD (DIGEST + 24)
#define ENTRY_DELETE UINT64_MAX

static size_t entry_size(const change *c)
{
	return ENTRY_HEAD + strlen(c->key) + (c->data ? c->len : 0);
}

static int encode_entry(const change *c, uint64_t generation, unsigned char *out)
{
	size_t klen = strlen(c->key), vlen = c->data ? c->len : 0;
	unsigned char *body = out + DIGEST;

	memcpy(body, "OJ1\n", 4);
	octo__put_le(body + 4, klen, 4);
	octo__put_le(body + 8, c->data ? (uint64_t)vlen : ENTRY_DELETE, 8);
	octo__put_le(body + 16, generation, 8);
	memcpy(body + 24, c->key, klen);
	if (vlen)
		memcpy(body + 24 + klen, c->data, vlen);
	return octo__seal(out, 24 + klen + vlen);
}

static int zero_fill(journal *j, uint64_t target)
{
	static const char zeroes[64 * 1024];

	while (j->space < target) {
		size_t n = target - j->space < sizeof(zeroes) ? (size_t)(target - j->space)
		                                              : sizeof(zeroes);
		if (octo__pwrite_all(j->fd, zeroes, n, j->space) < 0)
			return -1;
		j->space += n;
	}
	return 0;
}

/* Shrinks the file back to `size`, keeping errno. */
static void give_back(journal *j, uint64_t size)
{
	int err = errno;

	if (ftruncate(j->fd, (off_t)size) == 0)
		j->space = size;
	errno = err;
}

/* Writes zeroes up to `end` and a step beyond (just to `end` on a nearly
 * full device), then syncs once: later appends in that space overwrite
 * blocks the file already has. */
static int make_space(local_store *s, uint64_t end)
{
	journal *j = &s->journal;
	uint64_t before = j->space;

	if (end <= j->space)
		return 0;
	if (zero_fill(j, end + JOURNAL_GROW) < 0) {
		give_back(j, before); /* objects need the space more */
		if (errno != ENOSPC || zero_fill(j, end) < 0) {
			give_back(j, before);
			return octo__io_error(errno, "extend", JOURNAL);
		}
	}
	if (fdatasync(j->fd) < 0)
		return octo__io_error(errno, "sync", JOURNAL);
	return 0;
}

/* Starts a new generation: everything journaled so far must be on disk,
 * in its objects, before the header stops replay from reading it. Until
 * the new header is synced, the old generation stays dirty. */
static int checkpoint(local_store *s)
{
	journal *j = &s->journal;
	unsigned char header[HEADER_SIZE];
	uint64_t generation;
	int rc;

	if (!j->dirty)
		return 0;
	if (syncfs(j->fd) < 0)
		return octo__io_error(errno, "syncfs", s->root);
	if ((rc = octo__random(&generation, sizeof(generation))) < 0)
		return rc;
	memcpy(header + DIGEST, "OJH1", 4);
	octo__put_le(header + DIGEST + 4, generation, 8);
	if ((rc = octo__seal(header, 12)) < 0 || (rc = make_space(s, HEADER_SIZE)) < 0)
		return rc;
	if (octo__pwrite_all(j->fd, header, sizeof(header), 0) < 0 || fdatasync(j->fd) < 0) {
		/* The new header may be on disk all the same: entries of the
		 * old generation would not be replayed. None is appended
		 * before a checkpoint succeeds. */
		j->torn = 1;
		return octo__io_error(errno, "write the header of", JOURNAL);
	}
	j->generation = generation;
	j->size = HEADER_SIZE;
	j->dirty = j->torn = 0;
	return 0;
}

static void finish(change *c, int rc)
{
	octo__waiter_finish(&c->w, rc);
}

/* Appends the changes of [from, to) that were staged, with one
 * fdatasync. After a failed append its entries may lie on disk past the
 * end, so the next append starts a new generation first. */
static int append_run(local_store *s, change *from, change *to)
{
	journal *j = &s->journal;
	unsigned char *buf, *at;
	size_t total = 0;
	change *c;
	int rc = 0;

	if (j->torn && (rc = checkpoint(s)) < 0)
		return rc;
	for (c = from; c != to; c = next_of(c))
		total += entry_size(c);
	if ((rc = make_space(s, j->size + total)) < 0)
		return rc;
	if (!(buf = malloc(total)))
		return octo__error(OCTO_ENOMEM, "out of memory");
	for (c = from, at = buf; c != to && rc == 0; c = next_of(c)) {
		rc = encode_entry(c, j->generation, at);
		at += entry_size(c);
	}
	j->dirty = 1;
	if (rc == 0 && (octo__pwrite_all(j->fd, buf, total, j->size) < 0 || fdatasync(j->fd) < 0)) {
		rc = octo__io_error(errno, "append to", JOURNAL);
		j->torn = 1;
	}
	free(buf);
	if (rc == 0)
		j->size += total;
	return rc;
}

/* A put of a new key is staged in an unnamed file (O_TMPFILE) in .tmp,
 * linked under its name once journaled: one change of a directory (the
 * object's) instead of a file made in .tmp, then renamed from there
 * across directories, and nothing left behind by a crash in between.
 * Made in .tmp, as every other temporary file is, so that a store whose
 * .tmp is gone fails its puts as its ping does. Returns 1 when the
 * filesystem has no unnamed files, so a named one is used instead. */
static int stage_unnamed(local_store *s, change *c)
{
	char dir[PATH_MAX];
	int rc;

	snprintf(dir, sizeof(dir), "%s/" TMP_DIR, s->root);
	c->staged_fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (c->staged_fd < 0)
		return errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL
		               ? 1
		               : octo__io_error(errno, "create a file in", dir);
	if (write_all(c->staged_fd, c->data, c->len) < 0) {
		rc = octo__io_error(errno, "write a file in", dir);
		close(c->staged_fd);
		c->staged_fd = -1;
		return rc;
	}
	return 0;
}

/* Before a put is journaled, everything that can fail for reasons of its
 * own is done: its directories made, its bytes in a temporary file, its
 * path checked. What is journaled then only has to be linked or renamed,
 * so replay never meets a put that failed. Each caller stages its own
 * put before it queues, so the copies run in parallel and the committer
 * only appends, syncs and installs. Directories are never removed, so
 * what staging made is still there when the put is installed. */
static int stage(local_store *s, change *c)
{
	source src = { c->data, -1, 0, c->len };
	char path[PATH_MAX];
	struct stat st;
	int rc;

	if ((rc = object_path(s, c->key, path, sizeof(path))) < 0 ||
	    (rc = make_parents(path, strlen(s->root) + 1, NULL)) < 0)
		return rc;
	if (stat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return octo__io_error(EISDIR, "put", path);
	} else if (errno == ENOENT && s->unnamed && (rc = stage_unnamed(s, c)) <= 0) {
		return rc;
	}
	return fill_temp(s, &src, 0, c->staged, sizeof(c->staged));
}

/* Puts a staged put's file in place: staging made its directories. An
 * unnamed file is linked under the object's name; a key made since it
 * was staged (by another put) is replaced as any other object is,
 * through a named temporary file. */
static int install_staged(local_store *s, change *c)
{
	source src = { c->data, -1, 0, c->len };
	char proc[64], path[PATH_MAX];
	int rc;

	object_path(s, c->key, path, sizeof(path)); /* fits: staging made it */
	if (c->staged_fd < 0)
		return place(c->staged, path);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", c->staged_fd);
	rc = 0;
	if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) < 0)
		rc = errno == EEXIST ? write_object(s, c->key, &src, 0) : octo__io_error(errno, "link", path);
	close(c->staged_fd);
	c->staged_fd = -1;
	return rc;
}

/* Makes one journaled change visible (replay). */
static int apply(local_store *s, const change *c)
{
	source src = { c->data, -1, 0, c->len };

	return c->data ? write_object(s, c->key, &src, 0) : remove_object(s, c->key, 0);
}

/* Makes a journaled change of a batch visible, or drops what it staged. */
static void settle(local_store *s, change *c, int rc)
{
	if (!c->data)
		finish(c, rc < 0 ? rc : remove_object(s, c->key, 0));
	else if (rc == 0)
		finish(c, install_staged(s, c));
	else {
		if (c->staged_fd >= 0)
			close(c->staged_fd); /* an unnamed file is gone with it */
		else
			unlink(c->staged);
		finish(c, rc);
	}
}

/* Commits a batch in order: runs of journaled changes, each appended and
 * synced at once, and direct puts, which wait for a checkpoint so that no
 * older journaled copy of their key can be replayed over them. Objects
 * are installed in batch order, so the last put of a key wins. */
static void commit(octo__waiter *batch, void *payload)
{
	local_store *s = payload;
	change *c = (change *)batch, *run, *end;
	int rc;

	while (c) {
		if (c->tmp) {
			if ((rc = checkpoint(s)) < 0)
				unlink(c->tmp); /* install() removes it when it fails */
			finish(c, rc < 0 ? rc : install(s, c->tmp, c->key, 1));
			c = next_of(c);
			continue;
		}
		for (run = c, end = c; end && !end->tmp; end = next_of(end))
			;
		rc = append_run(s, run, end);
		for (c = run; c != end; c = next_of(c))
			settle(s, c, rc);
	}
	if (s->journal.size >= JOURNAL_CHECKPOINT)
		checkpoint(s); /* on failure, the next batch tries again */
}

/* Queues a change and waits until it is committed with others.
 * Installing objects right after the sync, in the same turn, measured
 * faster than overlapping it with the next batch's sync: the overlap
 * shrank batches to one change each. */
static int submit(local_store *s, change *c)
{
	return octo__group_submit(&s->journal.commits, &c->w);
}

static int put_direct(local_store *s, const char *key, const source *src)
{
	change c = { .key = key };
	char tmp[PATH_MAX];
	int rc;

	if (s->journal.fd < 0)
		return write_object(s, key, src, 1);
	/* The copy, however large, runs outside the commit queue. */
	if ((rc = fill_temp(s, src, 1, tmp, sizeof(tmp))) < 0)
		return rc;
	c.tmp = tmp;
	return submit(s, &c);
}

/* A key put as a file stops being a record, whose entry would hide the
 * file. Until the record has gone (a crash in between), it is the
 * object: as if the put had not happened. */
static int unrecord(local_store *s, const char *key, int rc)
{
	if (rc < 0 || s->journal.fd < 0 ||
	    octo__records_get(s->records, key, NULL, NULL, NULL) != 0)
		return rc;
	rc = octo__records_del(s->records, key);
	return rc == OCTO_ENOTFOUND ? 0 : rc;
}

static int local_put(octo_store *store, const char *key, const void *data, size_t len)
{
	local_store *s = (local_store *)store;
	source src = { data, -1, 0, len };
	change c = { .key = key, .data = data, .len = len, .staged_fd = -1 };
	int rc;

	if (s->journal.fd < 0 || len > JOURNAL_VALUE_MAX)
		return unrecord(s, key, put_direct(s, key, &src));
	if ((rc = stage(s, &c)) < 0)
		return rc;
	return unrecord(s, key, submit(s, &c));
}

static int local_put_fd(octo_store *store, const char *key, int fd, uint64_t offset,
                        uint64_t len)
{
	local_store *s = (local_store *)store;
	source src = { NULL, fd, offset, len };

	return unrecord(s, key, put_direct(s, key, &src));
}

static int local_ping(octo_store *store);

/* The record log writes into space it set aside, so a record would
 * still fit on a device too full for anything else. It is refused as a
 * file of its size would be: the server must not accept a job whose
 * files it has no room for. */
static int has_room(local_store *s, size_t len)
{
	struct statvfs vfs;
	uint64_t free_bytes;

	if (fstatvfs(s->journal.fd, &vfs) < 0)
		return octo__io_error(errno, "statvfs", s->root);
	free_bytes = (uint64_t)(geteuid() == 0 ? vfs.f_bfree : vfs.f_bavail) * vfs.f_frsize;
	if (free_bytes <= len)
		return octo__io_error(ENOSPC, "put a record in", s->root);
	return 0;
}

/* Where a job record of `len` bytes goes: 1, the record log (when this
 * handle owns the store); 0, a file like any object (another handle's
 * store, a record too large); or an error. The file a record may hide (a
 * key put as a file before) is left until the key is deleted. A store
 * that fails its ping fails records as it fails other puts: the server
 * must not accept work it then reports it cannot store. */
static int record_goes_to_log(octo_store *store, size_t len)
{
	local_store *s = (local_store *)store;
	int rc;

	if (s->journal.fd < 0 || len > OCTO__RECORD_MAX)
		return 0;
	if ((rc = local_ping(store)) < 0 || (rc = has_room(s, len)) < 0)
		return rc;
	return 1;
}

static int local_put_record(octo_store *store, const char *key, const void *data,
                            size_t len)
{
	int rc = record_goes_to_log(store, len);

	if (rc == 0)
		return local_put(store, key, data, len);
	return rc < 0 ? rc : octo__records_put(((local_store *)store)->records, key, data, len);
}

/* local_put_record() heard of later: the record log commits it on its
 * own thread, so the caller's thread goes on meanwhile. */
static void local_post_record(octo_store *store, const char *key, const void *data,
                              size_t len, octo__store_done done, void *payload)
{
	int rc = record_goes_to_log(store, len);

	if (rc == 0)
		rc = local_put(store, key, data, len);
	else if (rc > 0 && (rc = octo__records_post(((local_store *)store)->records, key, data,
	                                            len, done, payload)) == 0)
		return;
	done(rc, payload);
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

	if ((rc = octo__records_get(s->records, key, info, NULL, NULL)) != OCTO_ENOTFOUND)
		return rc;
	if ((rc = object_path(s, key, path, sizeof(path))) < 0)
		return rc;
	if (stat(path, &st) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return not_found(store, key);
		return octo__io_error(errno, "stat", path);
	}
	if (!S_ISREG(st.st_mode))
		return octo__error(OCTO_ENOTFOUND, "no object %s", key);
	fill_info(&st, info);
	return 0;
}

/* A record is served from a copy in an unnamed memory file, so that
 * readers get a descriptor for it as they do for files. */
static int open_record(local_store *s, const char *key, int *out, octo_object_info *info)
{
	char *data;
	size_t len;
	int fd, rc;

	if ((rc = octo__records_get(s->records, key, info, &data, &len)) < 0)
		return rc;
	fd = memfd_create("octo-record", MFD_CLOEXEC);
	if (fd < 0 || write_all(fd, data, len) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
		rc = octo__io_error(errno, "copy the record", key);
		if (fd >= 0)
			close(fd);
	} else {
		*out = fd;
	}
	free(data);
	return rc;
}

static int local_open_object(octo_store *store, const char *key, int *out,
                             octo_object_info *info)
{
	local_store *s = (local_store *)store;
	char path[PATH_MAX];
	struct stat st;
	int fd, rc;

	if ((rc = open_record(s, key, out, info)) != OCTO_ENOTFOUND)
		return rc;
	if ((rc = object_path(s, key, path, sizeof(path))) < 0)
		return rc;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR || errno == EISDIR)
			return not_found(store, key);
		return octo__io_error(errno, "open", path);
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
	local_store *s = (local_store *)store;
	char buf[64 * 1024], *data = NULL;
	size_t len;
	int fd, rc;

	if ((rc = octo__records_get(s->records, key, NULL, &data, &len)) != OCTO_ENOTFOUND) {
		if (rc == 0 && cb(data, len, payload) != 0)
			rc = octo__error(OCTO_EABORTED, "reader stopped");
		free(data);
		return rc;
	}
	if ((rc = local_open_object(store, key, &fd, NULL)) < 0)
		return rc;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = octo__io_error(errno, "read", key);
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
	int record;  /* a record hides a file of the same key */
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

static void walk_push(walk *w, const char *key, const octo_object_info *info, int record)
{
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
	w->items[w->count].info = *info;
	w->items[w->count].record = record;
	w->count++;
}

static void walk_add(walk *w, const char *key, const struct stat *st)
{
	octo_object_info info;

	if (strncmp(key, w->prefix, strlen(w->prefix)) != 0 || strcmp(key, w->start_after) <= 0)
		return;
	fill_info(st, &info);
	walk_push(w, key, &info, 0);
}

static void walk_add_record(const char *key, const octo_object_info *info, void *payload)
{
	walk_push(payload, key, info, 1);
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

/* By key; of a record and a file with the same key, the record first. */
static int cmp_listed(const void *a, const void *b)
{
	const listed *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c ? c : y->record - x->record;
}

/* Drops the file a record of the same key hides (sorted right after it). */
static void drop_hidden(walk *w)
{
	size_t i, kept = 0;

	for (i = 0; i < w->count; i++) {
		if (kept > 0 && strcmp(w->items[kept - 1].key, w->items[i].key) == 0)
			free(w->items[i].key);
		else
			w->items[kept++] = w->items[i];
	}
	w->count = kept;
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
	octo__records_each(s->records, prefix, start_after, walk_add_record, &w);
	if (w.failed)
		rc = octo__error(OCTO_ENOMEM, "out of memory");
	if (w.count > 1) { /* qsort() must not see NULL, which no match leaves */
		qsort(w.items, w.count, sizeof(*w.items), cmp_listed);
		drop_hidden(&w);
	}
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

static int delete_file(local_store *s, const char *key)
{
	change c = { .key = key };

	if (s->journal.fd < 0)
		return remove_object(s, key, 1);
	return submit(s, &c);
}

/* A record's key may also name a file it hides (put before the record):
 * that file goes first, so that it never shows once the record is gone. */
static int local_del(octo_store *store, const char *key)
{
	local_store *s = (local_store *)store;
	char path[PATH_MAX];
	struct stat st;
	int rc;

	if (octo__records_get(s->records, key, NULL, NULL, NULL) != 0)
		return delete_file(s, key);
	if (object_path(s, key, path, sizeof(path)) == 0 && lstat(path, &st) == 0 &&
	    S_ISREG(st.st_mode) && (rc = delete_file(s, key)) < 0 && rc != OCTO_ENOTFOUND)
		return rc;
	return octo__records_del(s->records, key);
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

	if (s->journal.fd >= 0) {
		/* Never after a failed open: the journal is not replayed yet. */
		if (s->journal.ready)
			checkpoint(s); /* on failure the next open replays it */
		close(s->journal.fd);
	}
	octo__records_free(s->records);
	octo__group_destroy(&s->journal.commits);
	free(s->root);
	free(s);
}

static const octo__store_backend local_backend = {
	.name = "local",
	.ping = local_ping,
	.head = local_head,
	.put_fd = local_put_fd,
	.put = local_put,
	.put_record = local_put_record,
	.post_record = local_post_record,
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

/* Re-installs every entry of the journal `data` the header vouches for,
 * in order. */
static int replay_entries(local_store *s, const unsigned char *data, size_t size)
{
	char key[OCTO_STORE_KEY_MAX + 1];
	uint64_t generation;
	size_t at = HEADER_SIZE;
	int rc;

	if (size < HEADER_SIZE || memcmp(data + DIGEST, "OJH1", 4) != 0 ||
	    !octo__sealed(data, HEADER_SIZE - DIGEST))
		return 0; /* new, or never past its first checkpoint */
	generation = octo__get_le(data + DIGEST + 4, 8);
	while (size - at >= ENTRY_HEAD) {
		const unsigned char *body = data + at + DIGEST;
		uint64_t klen = octo__get_le(body + 4, 4), vlen = octo__get_le(body + 8, 8);
		uint64_t room = size - at - ENTRY_HEAD;
		int del = vlen == ENTRY_DELETE;
		change c = { .key = key };

		if (memcmp(body, "OJ1\n", 4) != 0 || octo__get_le(body + 16, 8) != generation ||
		    klen > OCTO_STORE_KEY_MAX || klen > room || (!del && vlen > room - klen) ||
		    !octo__sealed(data + at, 24 + klen + (del ? 0 : vlen)))
			break; /* torn, corrupt, or of an older generation */
		memcpy(key, body + 24, klen);
		key[klen] = '\0';
		if (!octo_store_key_valid(key))
			break;
		if (!del) {
			c.data = body + 24 + klen;
			c.len = (size_t)vlen;
		}
		/* A full device may be freed and the open tried again; any other
		 * failure (a directory now where the object was) would fail every
		 * open, so that entry is passed over. */
		if ((rc = apply(s, &c)) == OCTO_ENOSPC)
			return rc;
		at += ENTRY_HEAD + klen + (del ? 0 : vlen);
	}
	return 0;
}

/* Takes the journal, replays what a crash left in it and starts a new
 * generation. Another process holding it leaves journal.fd at -1. */
static int open_journal(local_store *s)
{
	journal *j = &s->journal;
	char path[PATH_MAX];
	unsigned char *data;
	struct stat st;
	int rc;

	snprintf(path, sizeof(path), "%s/" JOURNAL, s->root);
	j->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (j->fd < 0)
		return octo__io_error(errno, "open", path);
	if (flock(j->fd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? 0 : octo__io_error(errno, "lock", path);
		close(j->fd);
		j->fd = -1;
		return rc;
	}
	if (fstat(j->fd, &st) < 0)
		return octo__io_error(errno, "stat", path);
	j->space = (uint64_t)st.st_size;
	if (st.st_size > 0) {
		ssize_t got;
		if (!(data = malloc((size_t)st.st_size)))
			return octo__error(OCTO_ENOMEM, "out of memory");
		got = pread(j->fd, data, (size_t)st.st_size, 0);
		if (got != st.st_size)
			rc = octo__io_error(got < 0 ? errno : EIO, "read", path);
		else
			rc = replay_entries(s, data, (size_t)st.st_size);
		free(data);
		if (rc < 0)
			return rc; /* the journal stays for the next open */
	}
	/* Always a generation of our own, whatever the file held. */
	j->dirty = 1;
	if ((rc = checkpoint(s)) < 0)
		return rc;
	j->ready = 1;
	return 0;
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
	if ((rc = make_parents(tmp, 0, NULL)) < 0)
		return rc;
	tmp[strlen(tmp) - 1] = '\0';
	if (!(s = calloc(1, sizeof(*s))) || !(s->root = strdup(dir))) {
		free(s);
		return octo__error(OCTO_ENOMEM, "out of memory");
	}
	s->base.backend = &local_backend;
	octo__group_init(&s->journal.commits, commit, NULL, s);
	s->journal.fd = -1;
	/* An unnamed file is linked through its /proc/self/fd entry. */
	s->unnamed = access("/proc/self/fd", X_OK) == 0;
	if ((rc = local_ping(&s->base)) < 0 || (rc = open_journal(s)) < 0 ||
	    (rc = octo__records_open(&s->records, dir, s->journal.fd >= 0)) < 0) {
		local_free(&s->base);
		return rc;
	}
	/* Only the journal's owner may clear .tmp: another owner's direct puts
	 * are in flight there. */
	if (s->journal.fd >= 0)
		remove_stale_temps(tmp);
	*out = &s->base;
	return 0;
}
