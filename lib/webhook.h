/* Webhook delivery, signed the Standard Webhooks v1 way: headers
 * webhook-id, webhook-timestamp and webhook-signature "v1,<base64 of
 * HMAC-SHA256 over "<id>.<timestamp>.<body>">", so receivers can verify
 * with the existing libraries. */
#ifndef OCTO_LIB_WEBHOOK_H
#define OCTO_LIB_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

/* The signing key of a secret: "whsec_<base64>" is decoded, as the
 * standard's libraries do; anything else is used as it is. Returns its
 * length, or -1 for a whsec_ secret that is not base64. */
int octo__webhook_key(const char *secret, unsigned char *key, size_t size);

/* Writes "v1,<base64 signature>" (at most 64 bytes plus NUL). */
int octo__webhook_sign(const unsigned char *key, size_t key_len, const char *id,
                       int64_t timestamp, const char *body, char out[72]);

/* 1 for an acceptable callback URL: http(s), at most 2048 bytes, no
 * blanks or control characters. */
int octo__webhook_url_valid(const char *url);

/* POSTs `body` once, within `timeout_ms`. 0 on a 2xx answer; otherwise
 * -1 with the reason in `err` ("HTTP 500", "Connection refused"). */
int octo__webhook_post(const char *url, const unsigned char *key, size_t key_len,
                       const char *id, const char *body, uint32_t timeout_ms,
                       char *err, size_t errlen);

#endif
