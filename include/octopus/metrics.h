/* Metrics: counters, gauges and histograms kept in a registry and rendered
 * in the Prometheus text exposition format (version 0.0.4). */
/*
 * Ownership: the registry owns every metric it hands out; octo_metric
 * pointers are borrowed and stay valid until octo_metrics_free(). Rendered
 * text is the caller's, released with octo_free().
 *
 * Thread safety: every function may be called from any thread at any time,
 * except octo_metrics_free(). Updates (inc, add, set, observe) are lock-free
 * atomic operations; octo_metrics_with() takes a lock only the first time it
 * sees a label set, and rendering takes the registration lock (never the
 * update path).
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

OCTO_EXTERN int octo_metrics_new(octo_metrics **out);

/* NULL-safe. Invalidates every octo_metric of the registry. */
OCTO_EXTERN void octo_metrics_free(octo_metrics *reg);

/* Registers a family. `labels` is a NULL-terminated list of label names, or
 * NULL for none; the names are copied. Metric names match
 * [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* and may not
 * begin with "__" nor repeat; histograms may not use "le".
 * Registering a name again with the same type, help and labels (and
 * buckets) returns the family already there, so independent modules may
 * share one registry; a different definition fails with OCTO_ECONFLICT.
 * OCTO_EINVAL for a bad name, label or help (NULL). */
OCTO_EXTERN int octo_metrics_counter(octo_metric **out, octo_metrics *reg,
                                     const char *name, const char *help,
                                     const char *const *labels);
OCTO_EXTERN int octo_metrics_gauge(octo_metric **out, octo_metrics *reg,
                                   const char *name, const char *help,
                                   const char *const *labels);

/* `buckets` are the finite upper bounds, strictly increasing (+Inf is
 * always added); NULL with count 0 uses Prometheus's defaults
 * {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}. OCTO_EINVAL for
 * unsorted, repeated, NaN or infinite bounds. */
OCTO_EXTERN int octo_metrics_histogram(octo_metric **out, octo_metrics *reg,
                                       const char *name, const char *help,
                                       const char *const *labels,
                                       const double *buckets, size_t count);

/* The child of a labelled family for these label values, one per label
 * name in order (copied; any bytes but NUL). Created on first use, then
 * found without a lock. OCTO_EINVAL when the family has no labels or
 * `values` is NULL; OCTO_ERANGE beyond OCTO_METRICS_MAX_CHILDREN. */
OCTO_EXTERN int octo_metrics_with(octo_metric **out, octo_metric *family,
                                  const char *const *values);

/* Updates. They are no-ops on NULL, on a family that has labels (update a
 * child instead) and on a metric of another type, so instrumentation never
 * fails the code it observes. Counters only go up: add() ignores negative
 * and NaN amounts. */
OCTO_EXTERN void octo_metrics_inc(octo_metric *counter_or_gauge);
OCTO_EXTERN void octo_metrics_dec(octo_metric *gauge);
OCTO_EXTERN void octo_metrics_add(octo_metric *counter_or_gauge, double amount);
OCTO_EXTERN void octo_metrics_set(octo_metric *gauge, double value);
OCTO_EXTERN void octo_metrics_observe(octo_metric *histogram, double value);

/* The current value of a counter or gauge child, or the observation count
 * of a histogram; 0 for NULL or a labelled family. */
OCTO_EXTERN double octo_metrics_value(const octo_metric *m);

/* A counter or gauge whose value is read from `fn` at render time, for
 * figures another component already keeps (a queue length, a drop count).
 * `fn` runs on the rendering thread with the registry locked, so it must
 * not register metrics itself; `payload` is borrowed and must outlive the
 * registry. Same name rules and errors as above. */
typedef double (*octo_metrics_fn)(void *payload);
OCTO_EXTERN int octo_metrics_counter_fn(octo_metrics *reg, const char *name,
                                        const char *help, octo_metrics_fn fn,
                                        void *payload);
OCTO_EXTERN int octo_metrics_gauge_fn(octo_metrics *reg, const char *name,
                                      const char *help, octo_metrics_fn fn,
                                      void *payload);

/* Adds the standard process metrics, read from /proc at render time
 * (process_resident_memory_bytes, process_virtual_memory_bytes,
 * process_cpu_seconds_total, process_open_fds, process_max_fds,
 * process_start_time_seconds) and octopus_build_info{version} = 1.
 * OCTO_EUNSUPPORTED where /proc/self is missing. */
OCTO_EXTERN int octo_metrics_add_process(octo_metrics *reg);

/* The whole registry in the text exposition format: families sorted by
 * name, children by label values, each family with its HELP and TYPE
 * lines; histograms as cumulative _bucket{le} series, _sum and _count.
 * *text is NUL-terminated; *len may be NULL. */
OCTO_EXTERN int octo_metrics_render(octo_metrics *reg, char **text, size_t *len);

/* The Content-Type of that text. */
#define OCTO_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

OCTO_END_DECL

#endif
