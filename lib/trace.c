/* W3C Trace Context (https://www.w3.org/TR/trace-context/): the
 * traceparent header is version-traceid-parentid-flags in lowercase hex. */
#include "internal.h"

#include <octopus/trace.h>

#include <stdio.h>
#include <string.h>

static int lower_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static int all_zero(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] != '0')
			return 0;
	return 1;
}

static unsigned char hex_byte(const char *s)
{
	unsigned v = 0;

	sscanf(s, "%2x", &v);
	return (unsigned char)v;
}

/* Version 00 is exactly 55 characters. A later version may append fields
 * after a '-', and a reader that knows only 00 still takes the first four. */
static int parse(octo_trace *t, const char *h)
{
	size_t len = strlen(h);

	if (len < OCTO_TRACEPARENT_LEN || !lower_hex(h, 2) || memcmp(h, "ff", 2) == 0)
		return 0;
	if (memcmp(h, "00", 2) == 0 ? len != OCTO_TRACEPARENT_LEN
	                            : len > OCTO_TRACEPARENT_LEN && h[OCTO_TRACEPARENT_LEN] != '-')
		return 0;
	if (h[2] != '-' || h[35] != '-' || h[52] != '-')
		return 0;
	if (!lower_hex(h + 3, 32) || !lower_hex(h + 36, 16) || !lower_hex(h + 53, 2))
		return 0;
	if (all_zero(h + 3, 32) || all_zero(h + 36, 16))
		return 0;
	memcpy(t->trace_id, h + 3, 32);
	t->trace_id[32] = '\0';
	memcpy(t->parent_id, h + 36, 16);
	t->parent_id[16] = '\0';
	t->flags = hex_byte(h + 53);
	return 1;
}

static void to_hex(char *out, const unsigned char *b, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Random ids; all zero is invalid, so that (vanishingly rare) draw is redone. */
static int random_id(char *out, size_t bytes)
{
	unsigned char b[16];

	do {
		if (octo__random(b, bytes) < 0)
			return OCTO_ERROR;
		to_hex(out, b, bytes);
	} while (all_zero(out, 2 * bytes));
	return 0;
}

int octo_trace_start(octo_trace *out, const char *traceparent)
{
	int continued;

	octo__error_clear();
	memset(out, 0, sizeof(*out));
	continued = traceparent && parse(out, traceparent);
	if (!continued) {
		memset(out, 0, sizeof(*out));
		/* A new trace is recorded: nothing upstream decided otherwise. */
		out->flags = 1;
		if (random_id(out->trace_id, 16) < 0)
			return octo__error(OCTO_ERROR, "no random bytes for a trace id");
	}
	if (random_id(out->span_id, 8) < 0)
		return octo__error(OCTO_ERROR, "no random bytes for a span id");
	return continued;
}

void octo_trace_format(const octo_trace *trace, char out[OCTO_TRACEPARENT_LEN + 1])
{
	snprintf(out, OCTO_TRACEPARENT_LEN + 1, "00-%s-%s-%02x", trace->trace_id,
	         trace->span_id, trace->flags);
}
