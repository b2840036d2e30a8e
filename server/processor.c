/* The simulate processor. */
#include "config.h"
#include "processor.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define PROGRESS_STEPS 10

/* 64 KiB to 127 KiB, depending on the id: small, but not all alike. */
uint64_t artifact_size(int64_t file_id)
{
	return 65536 + (uint64_t)(file_id % 64) * 1024;
}

/* A header naming the file, then bytes from a generator seeded by the id:
 * the same id always gives the same file. */
void artifact_fill(int64_t file_id, unsigned char *buf, uint64_t size)
{
	uint64_t x = (uint64_t)file_id * 0x9e3779b97f4a7c15u + 1, i;
	int n = snprintf((char *)buf, size, "Octopus artifact for file %" PRId64 "\n", file_id);

	for (i = n > 0 ? (uint64_t)n : 0; i < size; i++) {
		x ^= x << 13; /* xorshift64 */
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (unsigned char)x;
	}
}

static uint32_t random_delay(const simulate_options *o)
{
	uint32_t r = 0, span = o->delay_max_ms - o->delay_min_ms;

	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = 0;
	return o->delay_min_ms + (span == UINT32_MAX ? r : r % (span + 1));
}

int processor_simulate(octo_task *task, void *payload)
{
	const simulate_options *o = payload;
	octo_store *store = octo_task_store(task);
	const char *key = octo_task_key(task);
	uint32_t delay = o->delay_enabled ? random_delay(o) : 0;
	unsigned char *buf;
	uint64_t size;
	int i, rc;

	for (i = 1; i <= PROGRESS_STEPS && delay > 0; i++) {
		if (octo_task_sleep(task, delay / PROGRESS_STEPS))
			return OCTO_EABORTED;
		octo_task_progress(task, (double)i / PROGRESS_STEPS * 0.99);
	}
	rc = octo_store_head(store, key, NULL);
	if (rc != OCTO_ENOTFOUND)
		return rc; /* 0: the file is there already */
	size = artifact_size(octo_task_file_id(task));
	if (!(buf = malloc(size)))
		return OCTO_ENOMEM;
	artifact_fill(octo_task_file_id(task), buf, size);
	rc = octo_store_put(store, key, buf, size);
	free(buf);
	return rc;
}

/* ---- origin ------------------------------------------------------------- */

#define RESUMES 3

typedef struct {
	octo_task *task;
	int fd;
	curl_off_t have;     /* bytes in fd */
	int failed_write;
} fetch;

static size_t on_data(char *data, size_t size, size_t n, void *payload)
{
	fetch *f = payload;
	size_t len = size * n, done = 0;

	while (done < len) {
		ssize_t w = write(f->fd, data + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			f->failed_write = 1;
			return 0; /* curl stops with CURLE_WRITE_ERROR */
		}
		done += (size_t)w;
	}
	f->have += (curl_off_t)len;
	return len;
}

static int on_progress(void *payload, curl_off_t dl_total, curl_off_t dl_now,
                       curl_off_t ul_total, curl_off_t ul_now)
{
	fetch *f = payload;
	curl_off_t total = dl_total > 0 ? f->have - dl_now + dl_total : 0;

	(void)ul_total;
	(void)ul_now;
	if (total > 0)
		octo_task_progress(f->task, 0.99 * (double)f->have / (double)total);
	return octo_task_should_stop(f->task); /* non-zero aborts the transfer */
}

static void origin_url(const char *tpl, int64_t file_id, char *out, size_t size)
{
	const char *at = strstr(tpl, "{file_id}");

	snprintf(out, size, "%.*s%" PRId64 "%s", (int)(at - tpl), tpl, file_id, at + 9);
}

/* One transfer from where the file now ends; CURLE_OK or why not. */
static CURLcode transfer(CURL *c, fetch *f, long *status)
{
	CURLcode rc;

	/* A server that ignores the Range makes curl fail with
	 * CURLE_RANGE_ERROR rather than append a second copy. */
	curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, f->have);
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	return rc;
}

int processor_origin(octo_task *task, void *payload)
{
	const origin_options *o = payload;
	char url[4096], tmp[] = "/tmp/octopus-origin-XXXXXX";
	fetch f = { task, -1, 0, 0 };
	long status = 0;
	CURLcode rc = CURLE_FAILED_INIT;
	CURL *c;
	int i, result;

	origin_url(o->url_template, octo_task_file_id(task), url, sizeof(url));
	if ((f.fd = mkstemp(tmp)) < 0)
		return OCTO_EIO;
	unlink(tmp); /* gone when closed, whatever happens */
	if (!(c = curl_easy_init())) {
		close(f.fd);
		return OCTO_ENOMEM;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &f);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, &f);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)o->stall_s);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "octopus-origin");
	for (i = 0; i <= RESUMES; i++) {
		rc = transfer(c, &f, &status);
		if (rc == CURLE_RANGE_ERROR) { /* the origin cannot resume: start over */
			f.have = 0;
			if (ftruncate(f.fd, 0) < 0 || lseek(f.fd, 0, SEEK_SET) < 0)
				break;
			continue;
		}
		/* Resume only what broke in transit; an HTTP error is an answer. */
		if (rc == CURLE_OK || rc == CURLE_HTTP_RETURNED_ERROR || rc == CURLE_ABORTED_BY_CALLBACK ||
		    rc == CURLE_WRITE_ERROR || octo_task_should_stop(task))
			break;
	}
	curl_easy_cleanup(c);
	if (rc == CURLE_ABORTED_BY_CALLBACK)
		result = OCTO_EABORTED;
	else if (rc == CURLE_HTTP_RETURNED_ERROR)
		result = status == 404 ? OCTO_ENOTFOUND : status >= 500 ? OCTO_EUNAVAILABLE : OCTO_EIO;
	else if (rc != CURLE_OK)
		result = f.failed_write ? OCTO_EIO : OCTO_EUNAVAILABLE;
	else
		result = octo_store_put_fd(octo_task_store(task), octo_task_key(task), f.fd, 0,
		                           (uint64_t)f.have);
	close(f.fd);
	return result;
}
