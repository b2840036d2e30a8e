/* Webhooks: one signed POST with libcurl. Retrying is the engine's. */
#include "config.h"
#include "internal.h"
#include "webhook.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define URL_MAX 2048

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void init_curl(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

int octo__webhook_key(const char *secret, unsigned char *key, size_t size)
{
	size_t n = strlen(secret);
	int len;

	if (strncmp(secret, "whsec_", 6) != 0) {
		if (n > size)
			return -1;
		memcpy(key, secret, n);
		return (int)n;
	}
	secret += 6;
	n -= 6;
	if (n == 0 || n % 4 != 0 || n / 4 * 3 > size)
		return -1;
	len = EVP_DecodeBlock(key, (const unsigned char *)secret, (int)n);
	if (len < 0)
		return -1;
	/* EVP_DecodeBlock counts the bytes of '=' padding too. */
	while (n > 0 && secret[n - 1] == '=') {
		n--;
		len--;
	}
	return len;
}

int octo__webhook_sign(const unsigned char *key, size_t key_len, const char *id,
                       int64_t timestamp, const char *body, char out[72])
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	size_t size = strlen(id) + strlen(body) + 32;
	char *msg = malloc(size);
	int n;

	if (!msg)
		return -1;
	n = snprintf(msg, size, "%s.%" PRId64 ".%s", id, timestamp, body);
	if (n < 0 || !HMAC(EVP_sha256(), key, (int)key_len, (unsigned char *)msg, (size_t)n,
	                   mac, &mac_len)) {
		free(msg);
		return -1;
	}
	free(msg);
	memcpy(out, "v1,", 3);
	EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)mac_len); /* 44 chars + NUL */
	return 0;
}

int octo__webhook_url_valid(const char *url)
{
	size_t i, n;

	if (!url || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
		return 0;
	n = strlen(url);
	if (n > URL_MAX || n <= 8)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7f)
			return 0;
	return 1;
}

static size_t discard(char *data, size_t size, size_t n, void *payload)
{
	(void)data;
	(void)payload;
	return size * n; /* the receiver's answer body is not needed */
}

int octo__webhook_post(const char *url, const unsigned char *key, size_t key_len,
                       const char *id, const char *body, uint32_t timeout_ms,
                       char *err, size_t errlen)
{
	char h_id[128], h_ts[64], h_sig[96], sig[72];
	int64_t now = (int64_t)time(NULL);
	struct curl_slist *hdrs = NULL;
	long status = 0;
	CURLcode rc;
	CURL *c;

	pthread_once(&curl_once, init_curl);
	if (octo__webhook_sign(key, key_len, id, now, body, sig) < 0 || !(c = curl_easy_init())) {
		snprintf(err, errlen, "cannot sign or send");
		return -1;
	}
	snprintf(h_id, sizeof(h_id), "webhook-id: %s", id);
	snprintf(h_ts, sizeof(h_ts), "webhook-timestamp: %" PRId64, now);
	snprintf(h_sig, sizeof(h_sig), "webhook-signature: %s", sig);
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, h_id);
	hdrs = curl_slist_append(hdrs, h_ts);
	hdrs = curl_slist_append(hdrs, h_sig);
	hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "octopus-webhook");
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "%s", curl_easy_strerror(rc));
		return -1;
	}
	if (status < 200 || status > 299) {
		snprintf(err, errlen, "HTTP %ld", status);
		return -1;
	}
	return 0;
}
