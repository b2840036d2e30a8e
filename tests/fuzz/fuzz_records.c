/* The record log (lib/records.c) is read back from disk after a crash,
 * so its reader meets torn, corrupt and hostile bytes. The input is a
 * script that writes <store>/.records before the store is opened:
 *
 *   byte 0, bit 0: the rest is the whole file, as is (anything at all);
 *   otherwise it is a valid header, then entries of 4-byte steps
 *   { flags, key 0..15, value length 0..63, then that many value bytes }
 *   with flags: bit 0 a removal, bit 1 another generation, bit 2 a digest
 *   that fails, bit 3 a bad magic, bit 4 the entry cut in half (the end).
 *
 * Beyond not crashing or leaking:
 *  - a log of entries opens, and the store holds exactly what the
 *    entries before the first bad one say (a model applies them);
 *  - any file at all either opens or fails with OCTO_EIO, and every key a
 *    store that opened lists can be read;
 *  - what an opened store holds survives a put and a reopen (the new file
 *    the owner writes reads back the same). */
#include "config.h"
#include "fuzzutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../lib/internal.h"
#include "../../lib/store.h"

#define KEYS 16
#define HEAD 64 /* an entry's digest, magic, lengths, generation and time */

static char dir[256], data_dir[300], log_path[320];

typedef struct {
	int present[KEYS];
	size_t len[KEYS];
	unsigned char value[KEYS][64];
} model;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_tmpdir(dir);
	snprintf(data_dir, sizeof(data_dir), "%s/data", dir);
	snprintf(log_path, sizeof(log_path), "%s/.records", data_dir);
	return 0;
}

static void key_of(int k, char *out, size_t size)
{
	snprintf(out, size, "jobs/k%d.json", k);
}

static void write_file(const unsigned char *bytes, size_t len)
{
	FILE *f = fopen(log_path, "wb");

	FUZZ_CHECK(f && fwrite(bytes, 1, len, f) == len && fclose(f) == 0, "write %s", log_path);
}

/* One entry as the owner writes it, damaged as `flags` say. */
static size_t encode(unsigned char *out, int flags, int k, const unsigned char *value,
                     size_t vlen)
{
	char key[32];
	size_t klen;

	key_of(k, key, sizeof(key));
	klen = strlen(key);
	memcpy(out + OCTO__DIGEST, flags & 8 ? "OR2\n" : "OR1\n", 4);
	octo__put_le(out + OCTO__DIGEST + 4, klen, 4);
	octo__put_le(out + OCTO__DIGEST + 8, flags & 1 ? UINT64_MAX : vlen, 8);
	octo__put_le(out + OCTO__DIGEST + 16, flags & 2 ? 8 : 7, 8); /* the header says 7 */
	octo__put_le(out + OCTO__DIGEST + 24, 1700000000000ULL, 8);
	memcpy(out + HEAD, key, klen);
	if (!(flags & 1))
		memcpy(out + HEAD + klen, value, vlen);
	vlen = flags & 1 ? 0 : vlen;
	octo__seal(out, HEAD - OCTO__DIGEST + klen + vlen);
	if (flags & 4)
		out[0] ^= 1;
	return HEAD + klen + vlen;
}

/* Writes the log the script describes and what it should read as. */
static void build(const uint8_t *in, size_t size, model *m)
{
	/* At most one entry per 3 bytes of script, each at most HEAD + 13 + 63. */
	unsigned char *log = malloc(44 + (size / 3 + 1) * (HEAD + 32 + 64));
	size_t at = 44, i = 0;
	int good = 1;

	FUZZ_CHECK(log != NULL, "out of memory");
	memset(m, 0, sizeof(*m));
	memcpy(log + OCTO__DIGEST, "ORH1", 4);
	octo__put_le(log + OCTO__DIGEST + 4, 7, 8);
	octo__seal(log, 12);
	while (i + 3 <= size) {
		int flags = in[i], k = in[i + 1] % KEYS;
		size_t vlen = in[i + 2] % 64, n;

		i += 3;
		if (vlen > size - i)
			vlen = size - i;
		n = encode(log + at, flags, k, in + i, vlen);
		i += vlen;
		if (flags & 16) { /* torn: the end of what reached the disk */
			at += n / 2;
			break;
		}
		good = good && !(flags & (2 | 4 | 8));
		if (good && (flags & 1)) {
			m->present[k] = 0;
		} else if (good) {
			m->present[k] = 1;
			m->len[k] = vlen;
			memcpy(m->value[k], in + i - vlen, vlen);
		}
		at += n;
	}
	write_file(log, at);
	free(log);
}

static int count_key(const char *key, const octo_object_info *info, void *payload)
{
	(void)info;
	FUZZ_CHECK(octo_store_key_valid(key), "listed an invalid key");
	++*(int *)payload;
	return 0;
}

static int listed(octo_store *store)
{
	int n = 0, more = 0;

	FUZZ_CHECK(octo_store_list(store, "", NULL, 1000, count_key, &n, &more) == 0 && !more,
	           "list: %s", octo_error_last());
	return n;
}

static void check_model(octo_store *store, const model *m)
{
	char key[32], *got;
	size_t len;
	int k, n = 0;

	for (k = 0; k < KEYS; k++) {
		key_of(k, key, sizeof(key));
		got = NULL;
		if (!m->present[k]) {
			FUZZ_CHECK(octo_store_head(store, key, NULL) == OCTO_ENOTFOUND,
			           "%s should be absent", key);
			continue;
		}
		n++;
		FUZZ_CHECK(octo_store_get(store, key, &got, &len) == 0 && len == m->len[k] &&
		           memcmp(got, m->value[k], len) == 0, "%s reads wrong", key);
		octo_free(got);
	}
	FUZZ_CHECK(listed(store) == n, "lists %d keys, not %d", listed(store), n);
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size)
{
	octo_store *store = NULL;
	model m;
	int rc, raw = size > 0 && (in[0] & 1);

	fuzz_rmtree(data_dir);
	FUZZ_CHECK(octo_store_open_local(&store, data_dir) == 0, "setup: %s", octo_error_last());
	octo_store_free(store);
	if (raw)
		write_file(in + 1, size - 1);
	else
		build(size ? in + 1 : in, size ? size - 1 : 0, &m);
	rc = octo_store_open_local(&store, data_dir);
	if (raw) {
		FUZZ_CHECK(rc == 0 || rc == OCTO_EIO, "open gave %d: %s", rc, octo_error_last());
		if (rc < 0)
			return 0;
		listed(store); /* every key valid */
	} else {
		FUZZ_CHECK(rc == 0, "open: %s", octo_error_last());
		check_model(store, &m);
	}
	FUZZ_CHECK(octo__store_put_record(store, "jobs/new.json", "n", 1) == 0, "put: %s",
	           octo_error_last());
	octo_store_free(store);
	FUZZ_CHECK(octo_store_open_local(&store, data_dir) == 0, "reopen: %s", octo_error_last());
	FUZZ_CHECK(octo_store_head(store, "jobs/new.json", NULL) == 0, "the new record is lost");
	FUZZ_CHECK(octo_store_delete(store, "jobs/new.json") == 0, "delete: %s",
	           octo_error_last());
	if (!raw)
		check_model(store, &m);
	octo_store_free(store);
	return 0;
}
