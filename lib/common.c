/* Error codes and messages, version, ids and clocks. */
#include "config.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <octopus/version.h>

/* One message per thread, so concurrent callers never see each other's. */
static _Thread_local char last_error[512];

const char *octo_strerror(int code)
{
	switch (code) {
	case OCTO_OK: return "success";
	case OCTO_ERROR: return "unexpected error";
	case OCTO_ENOMEM: return "out of memory";
	case OCTO_EINVAL: return "invalid argument";
	case OCTO_ENOTFOUND: return "not found";
	case OCTO_EIO: return "input/output error";
	case OCTO_EPARSE: return "malformed input";
	case OCTO_ERANGE: return "value out of range";
	case OCTO_ENOSPC: return "no space left on storage device";
	case OCTO_ESHUTDOWN: return "shutting down";
	case OCTO_EUNSUPPORTED: return "not supported";
	case OCTO_EUNAVAILABLE: return "service unavailable";
	case OCTO_EDENIED: return "access denied";
	case OCTO_EABORTED: return "aborted by callback";
	case OCTO_EBUSY: return "busy: queue full";
	case OCTO_ECONFLICT: return "conflict with the current state";
	default: return "unknown error code";
	}
}

const char *octo_error_last(void)
{
	return last_error;
}

int octo__error(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	return code;
}

void octo__error_clear(void)
{
	last_error[0] = '\0';
}

void octo_free(void *ptr)
{
	free(ptr);
}

const char *octo_version(void)
{
	return OCTO_VERSION;
}

int octo__random(void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return octo__error(OCTO_EIO, "getrandom: %s", strerror(errno));
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int octo__uuid_shaped(const char *s)
{
	size_t i;

	for (i = 0; i < OCTO__UUID_LEN; i++) {
		char c = s[i];
		int dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return 0;
	}
	return s[OCTO__UUID_LEN] == '\0';
}

void octo__uuid_format(unsigned char b[16], unsigned version, char out[OCTO__UUID_LEN + 1])
{
	b[6] = (unsigned char)((b[6] & 0x0f) | (version << 4));
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 9562 variant */
	snprintf(out, OCTO__UUID_LEN + 1,
	         "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
	         b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

int octo__uuid4(char out[OCTO__UUID_LEN + 1])
{
	unsigned char b[16];
	int rc = octo__random(b, sizeof(b));

	if (rc < 0)
		return rc;
	octo__uuid_format(b, 4, out);
	return 0;
}

uint64_t octo__monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

double octo__monotonic_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void octo__timestamp(char out[OCTO__TIMESTAMP_LEN + 1])
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(out, OCTO__TIMESTAMP_LEN + 1, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + 19, OCTO__TIMESTAMP_LEN + 1 - 19, ".%03dZ",
	         (int)(ts.tv_nsec / 1000000L));
}

void octo__timestamp_after(uint32_t seconds, char out[OCTO__TIMESTAMP_LEN + 1])
{
	time_t t = time(NULL) + (time_t)seconds;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, OCTO__TIMESTAMP_LEN + 1, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

char *octo__strdup(const char *s)
{
	char *copy = strdup(s);

	if (!copy)
		octo__error(OCTO_ENOMEM, "out of memory");
	return copy;
}

int octo__io_error(int err, const char *what, const char *path)
{
	int code = (err == ENOSPC || err == EDQUOT) ? OCTO_ENOSPC : OCTO_EIO;
	return octo__error(code, "%s %s: %s", what, path, strerror(err));
}

void octo__put_le(unsigned char *p, uint64_t v, int bytes)
{
	int i;

	for (i = 0; i < bytes; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

uint64_t octo__get_le(const unsigned char *p, int bytes)
{
	uint64_t v = 0;
	int i;

	for (i = bytes - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

int octo__pwrite_all(int fd, const void *data, size_t len, uint64_t at)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t)at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
		at += (uint64_t)n;
	}
	return 0;
}

int octo__seal(unsigned char *out, size_t len)
{
	if (!EVP_Digest(out + OCTO__DIGEST, len, out, NULL, EVP_sha256(), NULL))
		return octo__error(OCTO_ERROR, "SHA-256 failed");
	return 0;
}

int octo__sealed(const unsigned char *at, size_t len)
{
	unsigned char digest[OCTO__DIGEST];

	return EVP_Digest(at + OCTO__DIGEST, len, digest, NULL, EVP_sha256(), NULL) &&
	       memcmp(digest, at, OCTO__DIGEST) == 0;
}

int octo__fsync_dir_of(const char *path)
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
		return octo__io_error(errno, "open directory", dir);
	if (fsync(fd) < 0)
		rc = octo__io_error(errno, "fsync directory", dir);
	close(fd);
	return rc;
}
