/* Trace context: reading and making W3C `traceparent` headers, so one
 * request can be followed across a gateway, octopusd and its logs. */
/*
 * Ownership: octo_trace is a plain value the caller owns; nothing is
 * allocated.
 *
 * Thread safety: all functions are reentrant.
 *
 * Errors: only octo_trace_start() can fail, when the kernel gives no
 * random bytes.
 */
#ifndef OCTOPUS_TRACE_H
#define OCTOPUS_TRACE_H

#include "common.h"

OCTO_BEGIN_DECL

/* "00-" trace id "-" span id "-" flags: 55 characters. */
#define OCTO_TRACEPARENT_LEN 55

typedef struct {
	char trace_id[33];   /* 32 lowercase hex digits, not all zero */
	char parent_id[17];  /* the caller's span; "" when the trace is new */
	char span_id[17];    /* this service's span, always fresh */
	unsigned char flags; /* bit 0: sampled */
} octo_trace;

/* Fills *`out` from the `traceparent` header value: continues its trace
 * (keeps its trace id and flags, remembers its span as the parent) and
 * makes a new span id. When `traceparent` is NULL or not valid per W3C
 * Trace Context (version 00 exactly, or a later version's first four
 * fields; lowercase hex; no all-zero ids; version ff is invalid), starts a
 * new trace instead, with a new trace id, no parent and the sampled flag
 * set. Returns 1 when the header was continued, 0 when a new trace began.
 * Errors: OCTO_ERROR when no random bytes could be had. */
OCTO_EXTERN int octo_trace_start(octo_trace *out, const char *traceparent);

/* Writes to `out` the header value that names the span of `trace`, for the
 * response or a call further down: "00-<trace_id>-<span_id>-<flags>",
 * OCTO_TRACEPARENT_LEN characters and a NUL. */
OCTO_EXTERN void octo_trace_format(const octo_trace *trace,
                                   char out[OCTO_TRACEPARENT_LEN + 1]);

OCTO_END_DECL

#endif
