/* The record log of a local store (see records.h).
 *
 * The file starts with a header: a SHA-256 digest of the rest, the magic
 * "ORH1" and the generation, a random number chosen for each file.
 * Entries follow: a digest of the rest, the magic "OR1\n", the key's
 * length (4 bytes), the value's (8 bytes; all ones for a removal), the
 * generation, the time of the put (milliseconds since the epoch), the
 * key, the value. Integers are little-endian. A reader takes the entries
 * of the header's generation and stops at the first that is torn, fails
 * its digest or belongs to another: nothing after it was acknowledged,
 * since a batch is acknowledged only once synced whole. After a failed
 * append the owner moves to a new file before it appends again, so that
 * entries it never acknowledged cannot reappear behind later ones. */
#include "config.h"
#include "group.h"
#include "internal.h"
#include "records.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define LOG_NAME ".records"
#define LOG_NEW ".records.new"
#define DIGEST OCTO__DIGEST
#define HEADER_SIZE (DIGEST + 12)
#define ENTRY_HEAD (DIGEST + 32)
#define ENTRY_DELETE UINT64_MAX
#define COMPACT_MIN (8 * 1024 * 1024) /* a smaller log is never compacted */
#define GROW (256 * 1024)             /* zeroed ahead of the appends */
#define COPY_BUFFER (4 * 1024 * 1024) /* compaction writes this much at once */
#define READ_MAX (1024 * 1024)        /* reading a log grows its reads to this */

/* A live record: where its value lies in the log. */
typedef struct slot {
	struct slot *next;  /* in its hash bucket */
	uint64_t hash;
	uint64_t at;
	uint64_t moved;     /* its place in the next file, while compacting */
	uint32_t len;
	int64_t mtime_ms;
	char key[];
} slot;

/* One put or removal waiting for a commit; lives on its caller's stack. */
typedef struct pending {
	octo__waiter w;     /* first: the group's batches are of these */
	const char *key;
	const void *data;   /* NULL: a removal */
	size_t len;
	int64_t mtime_ms;
} pending;

static pending *next_of(const pending *c)
{
	return (pending *)c->w.next;
}

struct octo__records {
	char *root, *path;
	int owner;
	pthread_rwlock_t index; /* the slots, fd, generation and seen */
	int fd;                 /* -1: a follower finds no log yet */
	slot **buckets;
	size_t nbuckets, count;
	slot **old;             /* a growing table's chains not moved yet: */
	size_t nold, moved;     /* those from old[moved] on */
	uint64_t live;          /* bytes the live records' entries take */
	uint64_t generation;
	dev_t dev;              /* a follower: the file it reads, */
	ino_t ino;
	uint64_t seen;          /* and the end of what it read */
	octo__group commits;    /* the owner's queue of puts and removals */
	int torn;               /* an append failed: move to a new file first */
	int unsynced_name;      /* the file's rename is not synced yet */
	uint64_t size;          /* where the next entry goes */
	uint64_t space;         /* bytes of the file written */
};

static int pread_all(int fd, void *out, size_t len, uint64_t at)
{
	char *p = out;

	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			errno = n == 0 ? EIO : errno; /* the log ended early */
			return -1;
		}
		p += n;
		len -= (size_t)n;
		at += (uint64_t)n;
	}
	return 0;
}

static int64_t now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static uint64_t entry_bytes(const char *key, uint64_t len)
{
	return ENTRY_HEAD + strlen(key) + len;
}

/* Writes an entry's head and key at `out`; its value, if any, follows
 * them and is sealed with them by octo__seal(out, entry size - DIGEST). */
static void encode_head(unsigned char *out, uint64_t generation, const char *key,
                        uint64_t vlen, int64_t mtime_ms)
{
	size_t klen = strlen(key);
	unsigned char *body = out + DIGEST;

	memcpy(body, "OR1\n", 4);
	octo__put_le(body + 4, klen, 4);
	octo__put_le(body + 8, vlen, 8);
	octo__put_le(body + 16, generation, 8);
	octo__put_le(body + 24, (uint64_t)mtime_ms, 8);
	memcpy(body + 32, key, klen);
}

/* ---- the index: a hash table of the live records ------------------------ */

static uint64_t hash_of(const char *key)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 1099511628211ULL;
	return h;
}

/* The chain a key of hash `h` is in: the old table's while a growing
 * table has not moved that chain yet. */
static slot **chain_of(const octo__records *r, uint64_t h)
{
	if (r->old) {
		size_t b = (size_t)(h & (r->nold - 1));
		if (b >= r->moved)
			return &r->old[b];
	}
	return &r->buckets[h & (r->nbuckets - 1)];
}

static slot *lookup(const octo__records *r, const char *key)
{
	uint64_t h;
	slot *s;

	if (r->nbuckets == 0)
		return NULL;
	h = hash_of(key);
	for (s = *chain_of(r, h); s; s = s->next)
		if (s->hash == h && strcmp(s->key, key) == 0)
			return s;
	return NULL;
}

/* Every slot of both tables once: `c` starts zeroed. The next slot is
 * read before one is returned, so the caller may free it. */
typedef struct {
	int table;
	size_t bucket;
	slot *s;
} cursor;

static slot *next_slot(const octo__records *r, cursor *c)
{
	slot *s;

	while (!c->s) {
		slot **t = c->table ? r->old : r->buckets;
		size_t n = c->table ? r->nold : r->nbuckets;

		if (c->bucket == n) {
			if (c->table || !r->old)
				return NULL;
			c->table = 1;
			c->bucket = 0;
			continue;
		}
		c->s = t[c->bucket++];
	}
	s = c->s;
	c->s = s->next;
	return s;
}

/* Moves up to `n` chains of the old table to the new one. A table that
 * grows is moved a little at each change rather than at once under the
 * lock: at once, 262,144 records held every submit for 64 ms. */
static void rehash_step(octo__records *r, size_t n)
{
	slot *s, *next;

	while (r->old && n-- > 0) {
		for (s = r->old[r->moved]; s; s = next) {
			slot **b = &r->buckets[s->hash & (r->nbuckets - 1)];
			next = s->next;
			s->next = *b;
			*b = s;
		}
		r->old[r->moved++] = NULL;
		if (r->moved == r->nold) {
			free(r->old);
			r->old = NULL;
			r->nold = r->moved = 0;
		}
	}
}

/* Starts doubling the table once it is full, so chains stay about one
 * long; 64 chains move per change, done long before it is full again. */
static int grow_index(octo__records *r)
{
	size_t n = r->nbuckets ? r->nbuckets * 2 : 1024;
	slot **bigger;

	if (r->count < r->nbuckets || r->old)
		return 0;
	if (!(bigger = calloc(n, sizeof(*bigger))))
		return octo__error(OCTO_ENOMEM, "out of memory");
	if (r->buckets) {
		r->old = r->buckets;
		r->nold = r->nbuckets;
		r->moved = 0;
	}
	r->buckets = bigger;
	r->nbuckets = n;
	return 0;
}

static int index_put(octo__records *r, const char *key, uint64_t at, uint64_t len,
                     int64_t mtime_ms)
{
	size_t klen = strlen(key);
	slot *s, **chain;
	int rc;

	rehash_step(r, 64);
	if ((s = lookup(r, key)) != NULL) {
		r->live -= entry_bytes(key, s->len);
	} else {
		if ((rc = grow_index(r)) < 0)
			return rc;
		if (!(s = malloc(sizeof(*s) + klen + 1)))
			return octo__error(OCTO_ENOMEM, "out of memory");
		memcpy(s->key, key, klen + 1);
		s->hash = hash_of(key);
		chain = chain_of(r, s->hash);
		s->next = *chain;
		*chain = s;
		r->count++;
	}
	s->at = at;
	s->len = (uint32_t)len;
	s->mtime_ms = mtime_ms;
	r->live += entry_bytes(key, len);
	return 0;
}

static void index_del(octo__records *r, const char *key)
{
	uint64_t h = hash_of(key);
	slot **p, *s;

	if (r->nbuckets == 0)
		return;
	rehash_step(r, 64);
	for (p = chain_of(r, h); (s = *p) != NULL; p = &s->next)
		if (s->hash == h && strcmp(s->key, key) == 0) {
			*p = s->next;
			r->live -= entry_bytes(key, s->len);
			r->count--;
			free(s);
			return;
		}
}

static void index_clear(octo__records *r)
{
	cursor c = { 0, 0, NULL };
	slot *s;

	while ((s = next_slot(r, &c)) != NULL)
		free(s);
	free(r->buckets);
	free(r->old);
	r->buckets = r->old = NULL;
	r->nbuckets = r->nold = r->moved = r->count = 0;
	r->live = 0;
}

/* ---- reading a log -------------------------------------------------------- */

/* Reads the header of the log open at r->fd: 1 with r->generation set,
 * 0 when there is none yet (a new file, or one not written whole). */
static int read_header(octo__records *r)
{
	unsigned char h[HEADER_SIZE];

	if (pread_all(r->fd, h, sizeof(h), 0) < 0 || memcmp(h + DIGEST, "ORH1", 4) != 0 ||
	    !octo__sealed(h, HEADER_SIZE - DIGEST))
		return 0;
	r->generation = octo__get_le(h + DIGEST + 4, 8);
	return 1;
}

/* Applies the entry at `e` (`have` bytes of the log from offset `pos`
 * there) to the index: its size, 0 when more bytes are needed first
 * (*need says how many), -1 where the log ends, or -2 when the index
 * cannot take it. */
static int64_t apply_entry(octo__records *r, const unsigned char *e, size_t have,
                           uint64_t pos, size_t *need)
{
	const unsigned char *body = e + DIGEST;
	uint64_t klen, vlen, size;
	char key[OCTO_STORE_KEY_MAX + 1];
	int del;

	if (have < ENTRY_HEAD) {
		*need = ENTRY_HEAD;
		return 0;
	}
	klen = octo__get_le(body + 4, 4);
	vlen = octo__get_le(body + 8, 8);
	del = vlen == ENTRY_DELETE;
	if (memcmp(body, "OR1\n", 4) != 0 || klen == 0 || klen > OCTO_STORE_KEY_MAX ||
	    (!del && vlen > OCTO__RECORD_MAX) || octo__get_le(body + 16, 8) != r->generation)
		return -1;
	size = ENTRY_HEAD + klen + (del ? 0 : vlen);
	if (have < size) {
		*need = (size_t)size;
		return 0;
	}
	memcpy(key, body + 32, klen);
	key[klen] = '\0';
	if (!octo__sealed(e, (size_t)size - DIGEST) || !octo_store_key_valid(key))
		return -1;
	if (del)
		index_del(r, key);
	else if (index_put(r, key, pos + ENTRY_HEAD + klen, vlen, (int64_t)octo__get_le(body + 24, 8)) < 0)
		return -2; /* out of memory: not the end of the log */
	return (int64_t)size;
}

/* Applies the entries from r->seen on to the index and moves r->seen past
 * the last whole one. */
static int scan(octo__records *r)
{
	/* A follower mostly finds a few new entries, then the zeroes ahead
	 * of them: it starts with a small read, which grows while reads come
	 * back full (a whole log, at open). */
	size_t cap = 4096, have = 0, off, need = 0;
	unsigned char *buf = malloc(cap), *bigger;
	int64_t n = 0;

	if (!buf)
		return octo__error(OCTO_ENOMEM, "out of memory");
	for (;;) {
		ssize_t got = pread(r->fd, buf + have, cap - have, (off_t)(r->seen + have));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			free(buf);
			return octo__io_error(errno, "read", r->path);
		}
		have += (size_t)got;
		for (off = 0; (n = apply_entry(r, buf + off, have - off, r->seen + off, &need)) > 0;)
			off += (size_t)n;
		r->seen += off;
		memmove(buf, buf + off, have - off);
		have -= off;
		if (n == -2) {
			free(buf);
			return OCTO_ENOMEM; /* octo__error() was called */
		}
		if (n < 0 || got == 0)
			break;
		if (need > cap || (have + off == cap && cap < READ_MAX)) {
			size_t want = need > cap * 2 ? need : cap * 2;
			if (!(bigger = realloc(buf, want))) {
				free(buf);
				return octo__error(OCTO_ENOMEM, "out of memory");
			}
			buf = bigger;
			cap = want;
		}
	}
	free(buf);
	return 0;
}

/* Brings a follower's index (write-locked) up to what the owner has
 * logged: a new file (the owner compacted, or another owner started) is
 * read from its start. */
static void follow(octo__records *r)
{
	struct stat st;
	int fd;

	if (stat(r->path, &st) < 0 || r->fd < 0 || st.st_ino != r->ino || st.st_dev != r->dev) {
		if ((fd = open(r->path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0) {
			if (fd >= 0)
				close(fd);
			return; /* no log (yet): what was read stays */
		}
		if (r->fd >= 0)
			close(r->fd);
		r->fd = fd;
		r->dev = st.st_dev;
		r->ino = st.st_ino;
		r->seen = 0;
		index_clear(r);
	}
	if (r->seen == 0) {
		if (!read_header(r))
			return; /* being written: the next call reads it */
		r->seen = HEADER_SIZE;
	}
	scan(r); /* on failure, the next call goes on from where it stopped */
}

static void enter(octo__records *r)
{
	if (r->owner) {
		pthread_rwlock_rdlock(&r->index);
	} else {
		pthread_rwlock_wrlock(&r->index);
		follow(r);
	}
}

static void fill_info(const octo__records *r, const slot *s, octo_object_info *info)
{
	info->size = s->len;
	info->mtime = s->mtime_ms / 1000;
	snprintf(info->etag, sizeof(info->etag), "r%llx-%llx-%x", (unsigned long long)r->generation,
	         (unsigned long long)s->at, (unsigned)s->len);
}

int octo__records_get(octo__records *r, const char *key, octo_object_info *info,
                      char **data, size_t *len)
{
	char *copy = NULL;
	slot *s;
	int rc = 0;

	enter(r);
	if (!(s = lookup(r, key))) {
		rc = OCTO_ENOTFOUND;
	} else {
		if (info)
			fill_info(r, s, info);
		if (data && !(copy = malloc((size_t)s->len + 1)))
			rc = octo__error(OCTO_ENOMEM, "out of memory");
		else if (data && pread_all(r->fd, copy, s->len, s->at) < 0)
			rc = octo__io_error(errno, "read", r->path);
		else if (data) {
			copy[s->len] = '\0';
			*data = copy;
			*len = s->len;
			copy = NULL;
		}
	}
	pthread_rwlock_unlock(&r->index);
	free(copy);
	return rc;
}

void octo__records_each(octo__records *r, const char *prefix, const char *start_after,
                        void (*add)(const char *key, const octo_object_info *info,
                                    void *payload),
                        void *payload)
{
	size_t plen = strlen(prefix);
	cursor c = { 0, 0, NULL };
	octo_object_info info;
	slot *s;

	enter(r);
	while ((s = next_slot(r, &c)) != NULL)
		if (strncmp(s->key, prefix, plen) == 0 && strcmp(s->key, start_after) > 0) {
			fill_info(r, s, &info);
			add(s->key, &info, payload);
		}
	pthread_rwlock_unlock(&r->index);
}

/* ---- writing: the owner ---------------------------------------------------- */

/* Writes the header and every live record to `fd` (a new file of
 * `generation`), noting each record's new place in its slot. */
static int copy_live(octo__records *r, int fd, uint64_t generation, uint64_t *end)
{
	unsigned char *buf = malloc(COPY_BUFFER + ENTRY_HEAD + OCTO_STORE_KEY_MAX + OCTO__RECORD_MAX);
	uint64_t at = HEADER_SIZE, flushed = 0;
	size_t used = HEADER_SIZE;
	cursor cur = { 0, 0, NULL };
	int rc = 0;
	slot *s;

	if (!buf)
		return octo__error(OCTO_ENOMEM, "out of memory");
	memcpy(buf + DIGEST, "ORH1", 4);
	octo__put_le(buf + DIGEST + 4, generation, 8);
	rc = octo__seal(buf, HEADER_SIZE - DIGEST);
	while (rc == 0 && (s = next_slot(r, &cur)) != NULL) {
		size_t klen = strlen(s->key), size = ENTRY_HEAD + klen + s->len;
		unsigned char *e = buf + used;

		encode_head(e, generation, s->key, s->len, s->mtime_ms);
		if (pread_all(r->fd, e + ENTRY_HEAD + klen, s->len, s->at) < 0) {
			rc = octo__io_error(errno, "read", r->path);
			break;
		}
		if ((rc = octo__seal(e, size - DIGEST)) < 0)
			break;
		s->moved = at + ENTRY_HEAD + klen;
		at += size;
		used += size;
		if (used >= COPY_BUFFER) {
			if (octo__pwrite_all(fd, buf, used, flushed) < 0)
				rc = octo__io_error(errno, "write", r->path);
			flushed += used;
			used = 0;
		}
	}
	if (rc == 0 && octo__pwrite_all(fd, buf, used, flushed) < 0)
		rc = octo__io_error(errno, "write", r->path);
	free(buf);
	*end = at;
	return rc;
}

/* Makes the rename of a new file durable: a put acknowledged in a file
 * whose name a power loss could take back would be lost with it. */
static int sync_name(octo__records *r)
{
	int rc;

	if (!r->unsynced_name)
		return 0;
	if ((rc = octo__fsync_dir_of(r->path)) == 0)
		r->unsynced_name = 0;
	return rc;
}

/* Replaces the log with a new file of a new generation holding only the
 * live records. Readers keep reading the old file until the swap. */
static int compact(octo__records *r)
{
	char tmp[PATH_MAX];
	uint64_t generation, end = 0;
	cursor cur = { 0, 0, NULL };
	slot *s;
	int fd, old, rc;

	snprintf(tmp, sizeof(tmp), "%s/" LOG_NEW, r->root);
	if ((rc = octo__random(&generation, sizeof(generation))) < 0)
		return rc;
	if ((fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640)) < 0)
		return octo__io_error(errno, "create", tmp);
	if ((rc = copy_live(r, fd, generation, &end)) < 0 ||
	    (fdatasync(fd) < 0 && (rc = octo__io_error(errno, "sync", tmp)) < 0) ||
	    (rename(tmp, r->path) < 0 && (rc = octo__io_error(errno, "rename", tmp)) < 0)) {
		close(fd);
		unlink(tmp);
		return rc;
	}
	pthread_rwlock_wrlock(&r->index);
	while ((s = next_slot(r, &cur)) != NULL)
		s->at = s->moved;
	old = r->fd;
	r->fd = fd;
	r->generation = generation;
	pthread_rwlock_unlock(&r->index);
	if (old >= 0)
		close(old);
	r->size = r->space = end;
	r->torn = 0;
	/* The new file is the log from now on, whatever happens to the sync
	 * of its name: until that sync succeeds, nothing is appended. */
	r->unsynced_name = 1;
	return sync_name(r);
}

/* Writes zeroes up to `end` and a step beyond, then syncs once: later
 * appends in that space change no metadata, so their fdatasync waits for
 * their own blocks only. */
static int make_space(octo__records *r, uint64_t end)
{
	static const char zeroes[64 * 1024];
	uint64_t target = end + GROW;

	if (end <= r->space)
		return 0;
	while (r->space < target) {
		size_t n = target - r->space < sizeof(zeroes) ? (size_t)(target - r->space)
		                                              : sizeof(zeroes);
		if (octo__pwrite_all(r->fd, zeroes, n, r->space) < 0) {
			int err = errno;
			if (ftruncate(r->fd, (off_t)r->size) == 0) /* give the space back */
				r->space = r->size;
			return octo__io_error(err, "extend", r->path);
		}
		r->space += n;
	}
	if (fdatasync(r->fd) < 0)
		return octo__io_error(errno, "sync", r->path);
	return 0;
}

static int append(octo__records *r, pending *batch)
{
	uint64_t total = 0, at;
	unsigned char *buf, *e;
	pending *c;
	int rc = 0;

	if ((r->torn && (rc = compact(r)) < 0) || (rc = sync_name(r)) < 0)
		return rc;
	for (c = batch; c; c = next_of(c))
		total += entry_bytes(c->key, c->data ? c->len : 0);
	if ((rc = make_space(r, r->size + total)) < 0)
		return rc;
	if (!(buf = malloc(total)))
		return octo__error(OCTO_ENOMEM, "out of memory");
	for (c = batch, e = buf; c && rc == 0; c = next_of(c)) {
		size_t klen = strlen(c->key), vlen = c->data ? c->len : 0;
		encode_head(e, r->generation, c->key, c->data ? (uint64_t)vlen : ENTRY_DELETE,
		            c->mtime_ms);
		if (vlen)
			memcpy(e + ENTRY_HEAD + klen, c->data, vlen);
		rc = octo__seal(e, ENTRY_HEAD - DIGEST + klen + vlen);
		e += ENTRY_HEAD + klen + vlen;
	}
	if (rc == 0 && (octo__pwrite_all(r->fd, buf, total, r->size) < 0 || fdatasync(r->fd) < 0)) {
		char why[256];

		rc = octo__io_error(errno, "append to", r->path);
		snprintf(why, sizeof(why), "%s", octo_error_last());
		r->torn = 1;
		/* The batch's entries may be whole on disk: a new file without
		 * them, before its callers hear of the failure, keeps a restart
		 * from bringing them back. */
		compact(r);
		octo__error(rc, "%s", why);
	}
	free(buf);
	if (rc < 0)
		return rc;
	pthread_rwlock_wrlock(&r->index);
	for (c = batch, at = r->size; c; c = next_of(c)) {
		if (!c->data)
			index_del(r, c->key);
		else if ((c->w.rc = index_put(r, c->key, at + ENTRY_HEAD + strlen(c->key), c->len,
		                            c->mtime_ms)) < 0)
			r->torn = 1; /* logged but not indexed: the log must not keep it */
		at += entry_bytes(c->key, c->data ? c->len : 0);
	}
	pthread_rwlock_unlock(&r->index);
	r->size = at;
	if (r->torn)
		compact(r); /* on failure, the next append tries again first */
	return 0;
}

/* The group's commit: one append of the batch, each caller finished with
 * its result. */
static void commit(octo__waiter *batch, void *payload)
{
	pending *c;
	int rc;

	rc = append(payload, (pending *)batch);
	for (c = (pending *)batch; c; c = next_of(c)) /* or as the index took it */
		octo__waiter_finish(&c->w, rc < 0 ? rc : c->w.rc);
}

/* After a batch: compaction, once the log is twice its live records. */
static void after(void *payload)
{
	octo__records *r = payload;

	if (!r->torn && r->size >= COMPACT_MIN && r->size > 2 * r->live)
		compact(r); /* on failure, the next batch tries again */
}

/* Whether this handle may log a change of `len` bytes to `key`. */
static int writable(const octo__records *r, const char *key, size_t len)
{
	if (!r->owner)
		return octo__error(OCTO_EIO, "the records of %s belong to another process", r->root);
	if (len > OCTO__RECORD_MAX)
		return octo__error(OCTO_EINVAL, "record %s is too large", key);
	return 0;
}

/* Queues a change and waits until it is committed with others. */
static int submit(octo__records *r, pending *c)
{
	int rc = writable(r, c->key, c->len);

	if (rc < 0)
		return rc;
	c->mtime_ms = now_ms();
	return octo__group_submit(&r->commits, &c->w);
}

int octo__records_put(octo__records *r, const char *key, const void *data, size_t len)
{
	pending c = { .key = key, .data = data ? data : "", .len = len };

	return submit(r, &c);
}

/* A posted put: its change, and copies of its key and bytes. */
typedef struct {
	pending c; /* first: its waiter is the group's */
	void (*done)(int rc, void *payload);
	void *payload;
	char bytes[];
} posted;

static void posted_done(octo__waiter *w)
{
	posted *p = (posted *)w;

	p->done(w->rc, p->payload);
	free(p);
}

int octo__records_post(octo__records *r, const char *key, const void *data, size_t len,
                       void (*done)(int rc, void *payload), void *payload)
{
	size_t klen = strlen(key);
	posted *p;
	int rc;

	if ((rc = writable(r, key, len)) < 0)
		return rc;
	if (!(p = calloc(1, sizeof(*p) + klen + 1 + len)))
		return octo__error(OCTO_ENOMEM, "out of memory");
	memcpy(p->bytes, key, klen + 1);
	if (len)
		memcpy(p->bytes + klen + 1, data, len);
	p->c.key = p->bytes;
	p->c.data = p->bytes + klen + 1;
	p->c.len = len;
	p->c.mtime_ms = now_ms();
	p->c.w.done = posted_done;
	p->done = done;
	p->payload = payload;
	if ((rc = octo__group_post(&r->commits, &p->c.w)) < 0)
		free(p);
	return rc;
}

int octo__records_del(octo__records *r, const char *key)
{
	pending c = { .key = key };
	int found;

	pthread_rwlock_rdlock(&r->index);
	found = lookup(r, key) != NULL;
	pthread_rwlock_unlock(&r->index);
	if (!found)
		return octo__error(OCTO_ENOTFOUND, "no object %s", key);
	return submit(r, &c);
}

/* ---- opening and closing ------------------------------------------------ */

/* The owner reads what the log holds, then starts a generation of its
 * own in a new file: whatever a crash left past the last whole entry is
 * left behind with the old file. */
static int take_over(octo__records *r)
{
	struct stat st;
	int rc;

	r->fd = open(r->path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0 && errno != ENOENT)
		return octo__io_error(errno, "open", r->path);
	if (r->fd >= 0) {
		if (fstat(r->fd, &st) < 0)
			return octo__io_error(errno, "stat", r->path);
		/* A log is renamed into place whole, header first: one without a
		 * header is damaged, not new, and is kept for a person to see. */
		if (st.st_size > 0 && !read_header(r))
			return octo__error(OCTO_EIO, "%s has no valid header", r->path);
		r->seen = HEADER_SIZE;
		if (st.st_size > 0 && (rc = scan(r)) < 0)
			return rc;
	}
	return compact(r);
}

int octo__records_open(octo__records **out, const char *root, int owner)
{
	octo__records *r = calloc(1, sizeof(*r));
	pthread_rwlockattr_t attr;
	char tmp[PATH_MAX];
	int rc;

	if (!r)
		return octo__error(OCTO_ENOMEM, "out of memory");
	r->owner = owner;
	r->fd = -1;
	/* Readers must not starve the committer, which indexes each batch. */
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&r->index, &attr);
	pthread_rwlockattr_destroy(&attr);
	octo__group_init(&r->commits, commit, after, r);
	if (!(r->root = strdup(root)) || !(r->path = malloc(strlen(root) + sizeof("/" LOG_NAME)))) {
		octo__records_free(r);
		return octo__error(OCTO_ENOMEM, "out of memory");
	}
	sprintf(r->path, "%s/" LOG_NAME, root);
	if (owner) {
		snprintf(tmp, sizeof(tmp), "%s/" LOG_NEW, root);
		unlink(tmp); /* a compaction a crash interrupted */
		if ((rc = take_over(r)) < 0) {
			octo__records_free(r);
			return rc;
		}
	}
	*out = r;
	return 0;
}

void octo__records_free(octo__records *r)
{
	if (!r)
		return;
	octo__group_destroy(&r->commits); /* first: it commits what is posted */
	if (r->fd >= 0)
		close(r->fd);
	index_clear(r);
	pthread_rwlock_destroy(&r->index);
	free(r->root);
	free(r->path);
	free(r);
}
