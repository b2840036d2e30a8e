/* Metrics: counters, gauges and histograms kept in a registry and rendered
 * in the Prometheus text exposition format (version 0.0.4). */
/*
 * Ownership: the registry owns every metric it hands out; octo_metric
 * pointers are borrowed and stay valid until octo_metrics_free(). Rendered
 * text is the caller's, released with octo_free().
 *
 * Thread safety: every function may be called from any thread at any time,
 * except octo_metrics_free(). Updates (inc, dec, add, set, observe) are
 * lock-free atomic operations; octo_metrics_with() takes a lock only the
 * first time it sees a label set, and rendering takes the registration
 * lock (never the update path).
 *
 * Errors: registration fails with OCTO_EINVAL for a bad name, label or
 * help text, OCTO_ECONFLICT for a name already registered with another
 * definition, and OCTO_ENOMEM. Updates never fail: they ignore what they
 * cannot apply, so instrumentation never fails the code it observes.
 */
#ifndef OCTOPUS_METRICS_H
#define OCTOPUS_METRICS_H

#include <stddef.h>

#include "common.h"

OCTO_BEGIN_DECL

typedef struct octo_metrics octo_metrics; /* a registry */
typedef struct octo_metric octo_metric;   /* a family, or one child of it */

/* A bound on the children of one family, so that a label fed by outside
 * input cannot grow memory and the exposition without limit. */
#define OCTO_METRICS_MAX_CHILDREN 10000

/* Makes an empty registry and sets *`out` to it, released with
 * octo_metrics_free().
 * Errors: OCTO_ENOMEM. */
OCTO_EXTERN int octo_metrics_new(octo_metrics **out);

/* Frees the registry `reg` and every metric in it, which invalidates each
 * octo_metric it handed out. NULL-safe. No other call on `reg` or its
 * metrics may be in flight. */
OCTO_EXTERN void octo_metrics_free(octo_metrics *reg);

/* Registers in `reg` the counter family `name` with the HELP text `help`
 * and sets *`out` to it. `labels` is a NULL-terminated list of label names,
 * or NULL for none; with labels, update the children that
 * octo_metrics_with() gives, not the family. Names and help are copied.
 * Metric names match [a-zA-Z_:][a-zA-Z0-9_:]*, label names
 * [a-zA-Z_][a-zA-Z0-9_]* and may not begin with "__" nor repeat.
 * Registering a name again with the same type, help and labels (and
 * buckets) returns the family already there, so independent modules may
 * share one registry.
 * Errors: OCTO_EINVAL for a bad name or label or a NULL `help`;
 * OCTO_ECONFLICT when `name` exists with another definition; OCTO_ENOMEM. */
OCTO_EXTERN int octo_metrics_counter(octo_metric **out, octo_metrics *reg,
                                     const char *name, const char *help,
                                     const char *const *labels);
/* Registers in `reg` the gauge family `name` and sets *`out` to it, as
 * octo_metrics_counter() does a counter: same rules for `help` and
 * `labels`, same errors. */
OCTO_EXTERN int octo_metrics_gauge(octo_metric **out, octo_metrics *reg,
                                   const char *name, const char *help,
                                   const char *const *labels);

/* Registers in `reg` the histogram family `name` and sets *`out` to it, as
 * octo_metrics_counter() does a counter (same rules for `help` and
 * `labels`, which may not include "le"), with the `count` finite upper
 * bounds of `buckets`, strictly increasing and copied (+Inf is always
 * added). A `count` of 0 uses Prometheus's defaults {.005, .01, .025, .05,
 * .1, .25, .5, 1, 2.5, 5, 10}, and `buckets` may then be NULL.
 * Errors: those of octo_metrics_counter(), and OCTO_EINVAL for unsorted,
 * repeated, NaN or infinite bounds or NULL `buckets` with a count. */
OCTO_EXTERN int octo_metrics_histogram(octo_metric **out, octo_metrics *reg,
                                       const char *name, const char *help,
                                       const char *const *labels,
                                       const double *buckets, size_t count);

/* Sets *`out` to the child of the labelled `family` for the label values
 * `values`, one per label name in order (copied; any bytes but NUL; none
 * NULL). Created on first use, then found without a lock; borrowed from the
 * registry.
 * Errors: OCTO_EINVAL when `family` has no labels or is a child itself, or
 * `values` is NULL or holds a NULL; OCTO_ERANGE when the family already has
 * OCTO_METRICS_MAX_CHILDREN children; OCTO_ENOMEM. */
OCTO_EXTERN int octo_metrics_with(octo_metric **out, octo_metric *family,
                                  const char *const *values);

/* Adds 1 to `counter_or_gauge`. Like every update below, a no-op on NULL,
 * on a family that has labels (update a child instead) and on a metric of
 * another type. */
OCTO_EXTERN void octo_metrics_inc(octo_metric *counter_or_gauge);
/* Subtracts 1 from `gauge`; a no-op on anything else, counters included. */
OCTO_EXTERN void octo_metrics_dec(octo_metric *gauge);
/* Adds `amount` to `counter_or_gauge`. Counters only go up: a negative or
 * NaN `amount` leaves a counter as it was. */
OCTO_EXTERN void octo_metrics_add(octo_metric *counter_or_gauge, double amount);
/* Sets `gauge` to `value`; a no-op on anything else. */
OCTO_EXTERN void octo_metrics_set(octo_metric *gauge, double value);
/* Records `value` in `histogram`: the bucket of the first bound >= it (NaN
 * lands in +Inf), the count and the sum. A no-op on anything else. */
OCTO_EXTERN void octo_metrics_observe(octo_metric *histogram, double value);

/* The current value of the counter or gauge `m`, or the observation count
 * of the histogram `m`; 0 for NULL, a labelled family or a metric read from
 * a callback. */
OCTO_EXTERN double octo_metrics_value(const octo_metric *m);

/* Reads the value of a callback metric at render time, for figures another
 * component already keeps (a queue length, a drop count); gets the
 * `payload` given at registration. It runs on the rendering thread with the
 * registry locked, so it must not register metrics itself. */
typedef double (*octo_metrics_fn)(void *payload);
/* Registers in `reg` the counter `name` (no labels) with the HELP text
 * `help`, whose value `fn` returns at render time. `payload` is borrowed
 * and must outlive the registry. Registering it again with the same `help`,
 * `fn` and `payload` is a no-op.
 * Errors: those of octo_metrics_counter(), and OCTO_EINVAL for a NULL
 * `fn`. */
OCTO_EXTERN int octo_metrics_counter_fn(octo_metrics *reg, const char *name,
                                        const char *help, octo_metrics_fn fn,
                                        void *payload);
/* Registers in `reg` the gauge `name` read from `fn`, as
 * octo_metrics_counter_fn() does a counter: same rules for `help` and
 * `payload`, same errors. */
OCTO_EXTERN int octo_metrics_gauge_fn(octo_metrics *reg, const char *name,
                                      const char *help, octo_metrics_fn fn,
                                      void *payload);

/* Adds to `reg` the standard process metrics, read from /proc at render
 * time (process_resident_memory_bytes, process_virtual_memory_bytes,
 * process_cpu_seconds_total, process_open_fds, process_max_fds,
 * process_start_time_seconds) and octopus_build_info{version} = 1. Calling
 * it again is a no-op.
 * Errors: OCTO_EUNSUPPORTED where /proc/self/stat is missing;
 * OCTO_ECONFLICT when one of those names exists with another definition;
 * OCTO_ENOMEM. */
OCTO_EXTERN int octo_metrics_add_process(octo_metrics *reg);

/* Renders the whole registry `reg` in the text exposition format into
 * *`text`, NUL-terminated and released with octo_free(), and its length
 * into *`len` unless `len` is NULL: families sorted by name, children by
 * label values, each family with its HELP and TYPE lines; histograms as
 * cumulative _bucket{le} series, _sum and _count.
 * Errors: OCTO_ENOMEM. */
OCTO_EXTERN int octo_metrics_render(octo_metrics *reg, char **text, size_t *len);

/* The Content-Type of that text. */
#define OCTO_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

OCTO_END_DECL

#endif
