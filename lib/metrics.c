/* Metrics: families of counters, gauges and histograms in a registry,
 * rendered in the Prometheus text format. Updates are atomic operations on
 * double bits; children are found through a per-family hash table of
 * append-only lists that readers walk without a lock. */
#include "config.h"
#include "internal.h"

#include <octopus/metrics.h>
#include <octopus/version.h>

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define SLOTS 64 /* children hash slots per family */

typedef enum { COUNTER, GAUGE, HISTOGRAM } metric_type;

static const char *const type_names[] = { "counter", "gauge", "histogram" };

static const double default_bounds[] = {
	.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10
};

typedef struct family family;

/* A family's own handle, or one of its children. Values are doubles kept
 * as their bits, since C has no atomic floating-point add. */
struct octo_metric {
	family *fam;
	char **values;              /* a child's label values; NULL for a family */
	_Atomic uint64_t value;     /* counter or gauge */
	_Atomic uint64_t sum;       /* histogram */
	_Atomic uint64_t *counts;   /* histogram: per bucket, +Inf last, not cumulative */
	_Atomic(octo_metric *) next; /* next child in the same slot */
};

struct family {
	octo_metric self;           /* the handle given to the caller */
	family *next;               /* the registry's list, sorted by name */
	metric_type type;
	char *name;
	char *help;
	char **labels;              /* NULL-terminated */
	size_t nlabels;
	double *bounds;             /* histogram: finite upper bounds */
	size_t nbounds;
	char (*le)[32];             /* ... as labels, "+Inf" last: formatted once */
	octo_metrics_fn fn;         /* a family read at render time */
	void *payload;
	pthread_mutex_t lock;       /* serialises the insertion of children */
	size_t children;            /* under `lock` */
	_Atomic(octo_metric *) slots[SLOTS];
};

struct octo_metrics {
	pthread_mutex_t lock;       /* the family list, for registration and render */
	family *families;
};

/* What a registration asks for, checked before anything is allocated. */
typedef struct {
	metric_type type;
	const char *name;
	const char *help;
	const char *const *labels;
	size_t nlabels;
	const double *bounds;
	size_t nbounds;
	octo_metrics_fn fn;
	void *payload;
} definition;

/* ---- atomic doubles ------------------------------------------------------ */

static double to_double(uint64_t bits)
{
	double d;

	memcpy(&d, &bits, sizeof(d));
	return d;
}

static uint64_t to_bits(double d)
{
	uint64_t bits;

	memcpy(&bits, &d, sizeof(bits));
	return bits;
}

static double load_double(const _Atomic uint64_t *a)
{
	return to_double(atomic_load_explicit(a, memory_order_relaxed));
}

static void add_double(_Atomic uint64_t *a, double amount)
{
	uint64_t old = atomic_load_explicit(a, memory_order_relaxed);

	while (!atomic_compare_exchange_weak_explicit(a, &old,
	                                              to_bits(to_double(old) + amount),
	                                              memory_order_relaxed,
	                                              memory_order_relaxed))
		;
}

/* ---- validation ---------------------------------------------------------- */

static int name_char(char c, int first, int colon)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
		return 1;
	if (colon && c == ':')
		return 1;
	return !first && c >= '0' && c <= '9';
}

static int valid_name(const char *s, int colon)
{
	size_t i;

	if (!s || !*s)
		return 0;
	for (i = 0; s[i]; i++)
		if (!name_char(s[i], i == 0, colon))
			return 0;
	return 1;
}

static int check_labels(definition *d)
{
	size_t i, j;

	for (i = 0; d->labels && d->labels[i]; i++) {
		const char *l = d->labels[i];
		if (!valid_name(l, 0))
			return octo__error(OCTO_EINVAL, "%s: invalid label name \"%.64s\"",
			                   d->name, l);
		/* Prometheus reserves "__" for its own labels. */
		if (strncmp(l, "__", 2) == 0)
			return octo__error(OCTO_EINVAL, "%s: label \"%.64s\" begins with \"__\"",
			                   d->name, l);
		/* The exposition adds "le" to every bucket line. */
		if (d->type == HISTOGRAM && strcmp(l, "le") == 0)
			return octo__error(OCTO_EINVAL, "%s: a histogram may not use the label \"le\"",
			                   d->name);
		for (j = 0; j < i; j++)
			if (strcmp(d->labels[j], l) == 0)
				return octo__error(OCTO_EINVAL, "%s: label \"%.64s\" repeated",
				                   d->name, l);
	}
	d->nlabels = i;
	return 0;
}

static int check_bounds(definition *d)
{
	size_t i;

	/* As Prometheus's clients do, no bounds at all means the defaults. */
	if (d->nbounds == 0) {
		d->bounds = default_bounds;
		d->nbounds = sizeof(default_bounds) / sizeof(default_bounds[0]);
		return 0;
	}
	if (!d->bounds)
		return octo__error(OCTO_EINVAL, "%s: no bucket bounds", d->name);
	for (i = 0; i < d->nbounds; i++) {
		if (!isfinite(d->bounds[i]))
			return octo__error(OCTO_EINVAL, "%s: bucket bound %zu is not finite",
			                   d->name, i);
		if (i > 0 && !(d->bounds[i] > d->bounds[i - 1]))
			return octo__error(OCTO_EINVAL, "%s: bucket bounds not strictly increasing",
			                   d->name);
	}
	return 0;
}

static int check_definition(definition *d)
{
	int rc;

	if (!valid_name(d->name, 1))
		return octo__error(OCTO_EINVAL, "invalid metric name \"%.64s\"",
		                   d->name ? d->name : "(null)");
	if (!d->help)
		return octo__error(OCTO_EINVAL, "%s: no help text", d->name);
	if ((rc = check_labels(d)) < 0)
		return rc;
	return d->type == HISTOGRAM ? check_bounds(d) : 0;
}

/* ---- families ------------------------------------------------------------ */

static void free_strings(char **v)
{
	size_t i;

	for (i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* A NULL-terminated copy of the first `n` strings of `src`. */
static char **copy_strings(const char *const *src, size_t n)
{
	char **v = calloc(n + 1, sizeof(*v));
	size_t i;

	if (!v)
		return NULL;
	for (i = 0; i < n; i++) {
		if (!(v[i] = strdup(src[i]))) {
			free_strings(v);
			return NULL;
		}
	}
	return v;
}

/* Gives a histogram metric its bucket counters. */
static int init_counts(octo_metric *m, const family *f)
{
	if (f->type != HISTOGRAM)
		return 0;
	m->counts = calloc(f->nbounds + 1, sizeof(*m->counts));
	return m->counts ? 0 : -1;
}

static void free_child(octo_metric *c)
{
	free_strings(c->values);
	free(c->counts);
	free(c);
}

static void free_family(family *f)
{
	size_t i;

	for (i = 0; i < SLOTS; i++) {
		octo_metric *c = atomic_load_explicit(&f->slots[i], memory_order_relaxed);
		while (c) {
			octo_metric *next = atomic_load_explicit(&c->next, memory_order_relaxed);
			free_child(c);
			c = next;
		}
	}
	free(f->self.counts);
	free(f->name);
	free(f->help);
	free_strings(f->labels);
	free(f->bounds);
	free(f->le);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

static void format_number(char out[32], double v);

static family *new_family(const definition *d)
{
	family *f = calloc(1, sizeof(*f));
	size_t i;

	if (!f)
		return NULL;
	pthread_mutex_init(&f->lock, NULL);
	f->self.fam = f;
	f->type = d->type;
	f->nlabels = d->nlabels;
	f->nbounds = d->nbounds;
	f->fn = d->fn;
	f->payload = d->payload;
	f->name = strdup(d->name);
	f->help = strdup(d->help);
	f->labels = copy_strings(d->labels, d->nlabels);
	if (d->nbounds && (f->bounds = malloc(d->nbounds * sizeof(double))))
		memcpy(f->bounds, d->bounds, d->nbounds * sizeof(double));
	if (d->type == HISTOGRAM && (f->le = malloc((d->nbounds + 1) * sizeof(*f->le))))
		for (i = 0; i <= d->nbounds; i++)
			format_number(f->le[i], i < d->nbounds ? d->bounds[i] : INFINITY);
	/* A labelled family only names its children: it holds no values. */
	if (!f->name || !f->help || !f->labels || (d->nbounds && !f->bounds) ||
	    (d->type == HISTOGRAM && !f->le) ||
	    (f->nlabels == 0 && init_counts(&f->self, f) < 0)) {
		free_family(f);
		return NULL;
	}
	return f;
}

static int same_definition(const family *f, const definition *d)
{
	size_t i;

	if (f->type != d->type || f->fn != d->fn || f->payload != d->payload ||
	    f->nlabels != d->nlabels || f->nbounds != d->nbounds ||
	    strcmp(f->help, d->help) != 0)
		return 0;
	for (i = 0; i < f->nlabels; i++)
		if (strcmp(f->labels[i], d->labels[i]) != 0)
			return 0;
	for (i = 0; i < f->nbounds; i++)
		if (f->bounds[i] != d->bounds[i])
			return 0;
	return 1;
}

/* Finds the family named `d->name` or inserts a new one in name order,
 * so that rendering needs no sort. Called with the registry locked. */
static int find_or_add_family(family **out, octo_metrics *reg, const definition *d)
{
	family **link = &reg->families;
	family *f;
	int cmp = 1;

	while (*link && (cmp = strcmp((*link)->name, d->name)) < 0)
		link = &(*link)->next;
	if (*link && cmp == 0) {
		if (!same_definition(*link, d))
			return octo__error(OCTO_ECONFLICT,
			                   "%s is already registered with another definition",
			                   d->name);
		*out = *link;
		return 0;
	}
	if (!(f = new_family(d)))
		return octo__error(OCTO_ENOMEM, "out of memory");
	f->next = *link;
	*link = f;
	*out = f;
	return 0;
}

static int define(family **out, octo_metrics *reg, definition *d)
{
	int rc;

	if (!reg)
		return octo__error(OCTO_EINVAL, "no registry");
	if ((rc = check_definition(d)) < 0)
		return rc;
	pthread_mutex_lock(&reg->lock);
	rc = find_or_add_family(out, reg, d);
	pthread_mutex_unlock(&reg->lock);
	return rc;
}

static int define_metric(octo_metric **out, octo_metrics *reg, definition *d)
{
	family *f;
	int rc;

	octo__error_clear();
	if (!out)
		return octo__error(OCTO_EINVAL, "no output pointer");
	if ((rc = define(&f, reg, d)) < 0)
		return rc;
	*out = &f->self;
	return 0;
}

static int define_fn(octo_metrics *reg, definition *d)
{
	family *f;

	octo__error_clear();
	if (!d->fn)
		return octo__error(OCTO_EINVAL, "no callback for %.64s",
		                   d->name ? d->name : "(null)");
	return define(&f, reg, d);
}

int octo_metrics_new(octo_metrics **out)
{
	octo_metrics *reg;

	octo__error_clear();
	if (!out)
		return octo__error(OCTO_EINVAL, "no output pointer");
	if (!(reg = calloc(1, sizeof(*reg))))
		return octo__error(OCTO_ENOMEM, "out of memory");
	pthread_mutex_init(&reg->lock, NULL);
	*out = reg;
	return 0;
}

void octo_metrics_free(octo_metrics *reg)
{
	family *f, *next;

	if (!reg)
		return;
	for (f = reg->families; f; f = next) {
		next = f->next;
		free_family(f);
	}
	pthread_mutex_destroy(&reg->lock);
	free(reg);
}

int octo_metrics_counter(octo_metric **out, octo_metrics *reg, const char *name,
                         const char *help, const char *const *labels)
{
	definition d = { COUNTER, name, help, labels, 0, NULL, 0, NULL, NULL };

	return define_metric(out, reg, &d);
}

int octo_metrics_gauge(octo_metric **out, octo_metrics *reg, const char *name,
                       const char *help, const char *const *labels)
{
	definition d = { GAUGE, name, help, labels, 0, NULL, 0, NULL, NULL };

	return define_metric(out, reg, &d);
}

int octo_metrics_histogram(octo_metric **out, octo_metrics *reg, const char *name,
                           const char *help, const char *const *labels,
                           const double *buckets, size_t count)
{
	definition d = { HISTOGRAM, name, help, labels, 0, buckets, count, NULL, NULL };

	return define_metric(out, reg, &d);
}

int octo_metrics_counter_fn(octo_metrics *reg, const char *name, const char *help,
                            octo_metrics_fn fn, void *payload)
{
	definition d = { COUNTER, name, help, NULL, 0, NULL, 0, fn, payload };

	return define_fn(reg, &d);
}

int octo_metrics_gauge_fn(octo_metrics *reg, const char *name, const char *help,
                          octo_metrics_fn fn, void *payload)
{
	definition d = { GAUGE, name, help, NULL, 0, NULL, 0, fn, payload };

	return define_fn(reg, &d);
}

/* ---- children ------------------------------------------------------------ */

static size_t hash_values(const char *const *values, size_t n)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	size_t i;
	const char *s;

	for (i = 0; i < n; i++) {
		/* The terminator is hashed too, so ("ab","c") and ("a","bc")
		 * do not always collide. */
		for (s = values[i];; s++) {
			h = (h ^ (unsigned char)*s) * 16777619u;
			if (!*s)
				break;
		}
	}
	return h % SLOTS;
}

static int same_values(char *const *a, const char *const *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(a[i], b[i]) != 0)
			return 0;
	return 1;
}

/* Lock-free: children are only ever prepended, each published with a
 * release store after it was fully built. */
static octo_metric *find_child(family *f, size_t slot, const char *const *values)
{
	octo_metric *c = atomic_load_explicit(&f->slots[slot], memory_order_acquire);

	while (c && !same_values(c->values, values, f->nlabels))
		c = atomic_load_explicit(&c->next, memory_order_acquire);
	return c;
}

static octo_metric *new_child(family *f, const char *const *values)
{
	octo_metric *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->fam = f;
	if (!(c->values = copy_strings(values, f->nlabels)) || init_counts(c, f) < 0) {
		free_child(c);
		return NULL;
	}
	return c;
}

/* Called with the family locked. Another thread may have added the same
 * child between the lock-free lookup and the lock, hence the second look. */
static int add_child(octo_metric **out, family *f, size_t slot, const char *const *values)
{
	octo_metric *c;

	if ((c = find_child(f, slot, values))) {
		*out = c;
		return 0;
	}
	if (f->children >= OCTO_METRICS_MAX_CHILDREN)
		return octo__error(OCTO_ERANGE, "%s has reached %d children",
		                   f->name, OCTO_METRICS_MAX_CHILDREN);
	if (!(c = new_child(f, values)))
		return octo__error(OCTO_ENOMEM, "out of memory");
	atomic_store_explicit(&c->next,
	                      atomic_load_explicit(&f->slots[slot], memory_order_relaxed),
	                      memory_order_relaxed);
	atomic_store_explicit(&f->slots[slot], c, memory_order_release);
	f->children++;
	*out = c;
	return 0;
}

int octo_metrics_with(octo_metric **out, octo_metric *parent, const char *const *values)
{
	family *f;
	size_t i, slot;
	int rc;

	octo__error_clear();
	if (!out || !parent)
		return octo__error(OCTO_EINVAL, "no output pointer or family");
	f = parent->fam;
	if (parent != &f->self)
		return octo__error(OCTO_EINVAL, "%s: not a family but one of its children", f->name);
	if (f->nlabels == 0)
		return octo__error(OCTO_EINVAL, "%s has no labels", f->name);
	if (!values)
		return octo__error(OCTO_EINVAL, "%s: no label values", f->name);
	for (i = 0; i < f->nlabels; i++)
		if (!values[i])
			return octo__error(OCTO_EINVAL, "%s: label value %zu is NULL", f->name, i);
	slot = hash_values(values, f->nlabels);
	if ((*out = find_child(f, slot, values)))
		return 0;
	pthread_mutex_lock(&f->lock);
	rc = add_child(out, f, slot, values);
	pthread_mutex_unlock(&f->lock);
	return rc;
}

/* ---- updates ------------------------------------------------------------- */

/* 1 when `m` holds a value of `type`: a labelled family only names its
 * children, and a wrong type must not corrupt the value. */
static int updatable(const octo_metric *m, metric_type type)
{
	if (!m || m->fam->type != type)
		return 0;
	return m->values || m->fam->nlabels == 0;
}

void octo_metrics_inc(octo_metric *counter_or_gauge)
{
	octo_metrics_add(counter_or_gauge, 1.0);
}

void octo_metrics_dec(octo_metric *gauge)
{
	if (updatable(gauge, GAUGE))
		add_double(&gauge->value, -1.0);
}

void octo_metrics_add(octo_metric *counter_or_gauge, double amount)
{
	octo_metric *m = counter_or_gauge;

	if (updatable(m, GAUGE))
		add_double(&m->value, amount);
	else if (updatable(m, COUNTER) && amount >= 0) /* false for NaN too */
		add_double(&m->value, amount);
}

void octo_metrics_set(octo_metric *gauge, double value)
{
	if (updatable(gauge, GAUGE))
		atomic_store_explicit(&gauge->value, to_bits(value), memory_order_relaxed);
}

/* The index of the first bound >= value (bounds are inclusive), or
 * nbounds for the +Inf bucket; NaN lands there too. */
static size_t bucket_of(const family *f, double value)
{
	size_t lo = 0, hi = f->nbounds;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (value <= f->bounds[mid])
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

void octo_metrics_observe(octo_metric *histogram, double value)
{
	if (!updatable(histogram, HISTOGRAM))
		return;
	atomic_fetch_add_explicit(&histogram->counts[bucket_of(histogram->fam, value)], 1,
	                          memory_order_relaxed);
	add_double(&histogram->sum, value);
}

static uint64_t observations(const octo_metric *m)
{
	uint64_t total = 0;
	size_t i;

	for (i = 0; i <= m->fam->nbounds; i++)
		total += atomic_load_explicit(&m->counts[i], memory_order_relaxed);
	return total;
}

double octo_metrics_value(const octo_metric *m)
{
	if (!m || (!m->values && m->fam->nlabels > 0))
		return 0;
	if (m->fam->type == HISTOGRAM)
		return (double)observations(m);
	return load_double(&m->value);
}

/* ---- rendering ----------------------------------------------------------- */

typedef struct {
	char *data;
	size_t len;
	size_t cap;
	int failed;
} buffer;

/* Appends, always keeping the text NUL-terminated; a failed allocation
 * is remembered and reported once at the end. */
static void put(buffer *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4096;
		char *data;
		while (cap < b->len + n + 1)
			cap *= 2;
		if (!(data = realloc(b->data, cap))) {
			b->failed = 1;
			return;
		}
		b->data = data;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void put_str(buffer *b, const char *s)
{
	put(b, s, strlen(s));
}

/* The length of the valid UTF-8 sequence at `s`, or 0 (overlong forms,
 * surrogates and code points above U+10FFFF are invalid). */
static size_t utf8_seq(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];
	size_t n, i;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	if (avail < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

/* Writes the character at `p` escaped and returns how many bytes it
 * took. Label values may come from outside and the text is declared UTF-8,
 * so each byte that is not part of valid UTF-8 becomes U+FFFD. */
static size_t put_escaped_char(buffer *b, const unsigned char *p, size_t left, int quote)
{
	size_t n;

	if (*p == '\\') {
		put_str(b, "\\\\");
		return 1;
	}
	if (*p == '\n') {
		put_str(b, "\\n");
		return 1;
	}
	if (*p == '"' && quote) {
		put_str(b, "\\\"");
		return 1;
	}
	if ((n = utf8_seq(p, left)) > 0) {
		put(b, (const char *)p, n);
		return n;
	}
	put_str(b, "\xef\xbf\xbd");
	return 1;
}

/* Backslash and newline are escaped everywhere, the double quote only
 * inside label values (quote = 1). */
static void put_escaped(buffer *b, const char *s, int quote)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t left = strlen(s), n;

	while (left > 0) {
		/* A run of ASCII that needs no escape goes in one copy. */
		for (n = 0; n < left && p[n] < 0x80 && p[n] != '\\' && p[n] != '\n' &&
		            !(p[n] == '"' && quote); n++)
			;
		if (n > 0)
			put(b, (const char *)p, n);
		else
			n = put_escaped_char(b, p, left, quote);
		p += n;
		left -= n;
	}
}

/* A whole number under 10^15 in decimal, as %.15g would write it: most
 * samples are counts, and this is several times faster than printf. */
static int format_whole(char out[32], double v)
{
	char digits[24];
	uint64_t n;
	size_t k = 0, i = 0;

	if (!(v > -1e15 && v < 1e15) || v != trunc(v) || (v == 0 && signbit(v)))
		return 0;
	if (v < 0)
		out[i++] = '-';
	n = (uint64_t)fabs(v);
	do
		digits[k++] = (char)('0' + n % 10);
	while ((n /= 10) > 0);
	while (k > 0)
		out[i++] = digits[--k];
	out[i] = '\0';
	return 1;
}

/* The shortest of %.15g, %.16g and %.17g that reads back as the same
 * double, spelled as Prometheus spells the special values. */
static void format_number(char out[32], double v)
{
	int precision;

	if (format_whole(out, v))
		return;
	if (isnan(v)) {
		strcpy(out, "NaN");
		return;
	}
	if (isinf(v)) {
		strcpy(out, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	for (precision = 15; precision < 17; precision++) {
		snprintf(out, 32, "%.*g", precision, v);
		if (strtod(out, NULL) == v)
			return;
	}
	snprintf(out, 32, "%.17g", v);
}

static void put_number(buffer *b, double v)
{
	char num[32];

	format_number(num, v);
	put_str(b, num);
}

/* {name="value",...} with an optional le="bound" last; nothing when there
 * are no labels at all. */
static void put_labels(buffer *b, const family *f, char *const *values, const char *le)
{
	size_t i;

	if (f->nlabels == 0 && !le)
		return;
	put_str(b, "{");
	for (i = 0; i < f->nlabels; i++) {
		if (i > 0)
			put_str(b, ",");
		put_str(b, f->labels[i]);
		put_str(b, "=\"");
		put_escaped(b, values[i], 1);
		put_str(b, "\"");
	}
	if (le) {
		if (f->nlabels > 0)
			put_str(b, ",");
		put_str(b, "le=\"");
		put_str(b, le);
		put_str(b, "\"");
	}
	put_str(b, "}");
}

static void put_sample(buffer *b, const family *f, const char *suffix,
                       char *const *values, const char *le, double v)
{
	put_str(b, f->name);
	put_str(b, suffix);
	put_labels(b, f, values, le);
	put_str(b, " ");
	put_number(b, v);
	put_str(b, "\n");
}

/* _count is the total of the buckets read here rather than a separate
 * counter, so it always equals the +Inf bucket even while updates run. */
static void put_histogram(buffer *b, const family *f, const octo_metric *m)
{
	uint64_t cumulative = 0;
	size_t i;

	for (i = 0; i <= f->nbounds; i++) {
		cumulative += atomic_load_explicit(&m->counts[i], memory_order_relaxed);
		put_sample(b, f, "_bucket", m->values, f->le[i], (double)cumulative);
	}
	put_sample(b, f, "_sum", m->values, NULL, load_double(&m->sum));
	put_sample(b, f, "_count", m->values, NULL, (double)cumulative);
}

static void put_metric(buffer *b, const family *f, const octo_metric *m)
{
	if (f->type == HISTOGRAM)
		put_histogram(b, f, m);
	else
		put_sample(b, f, "", m->values, NULL, load_double(&m->value));
}

static int cmp_children(const void *pa, const void *pb)
{
	char *const *a = (*(octo_metric *const *)pa)->values;
	char *const *b = (*(octo_metric *const *)pb)->values;
	int cmp;

	/* Both lists are NULL-terminated and of the family's length. */
	for (; *a; a++, b++)
		if ((cmp = strcmp(*a, *b)) != 0)
			return cmp;
	return 0;
}

/* A snapshot of the children, taken under the family's lock so that the
 * count and the lists agree. */
static int collect_children(family *f, octo_metric ***out, size_t *n)
{
	octo_metric **all;
	size_t i, k = 0;

	pthread_mutex_lock(&f->lock);
	if (!(all = malloc((f->children ? f->children : 1) * sizeof(*all)))) {
		pthread_mutex_unlock(&f->lock);
		return octo__error(OCTO_ENOMEM, "out of memory");
	}
	for (i = 0; i < SLOTS; i++) {
		octo_metric *c = atomic_load_explicit(&f->slots[i], memory_order_acquire);
		for (; c; c = atomic_load_explicit(&c->next, memory_order_acquire))
			all[k++] = c;
	}
	pthread_mutex_unlock(&f->lock);
	qsort(all, k, sizeof(*all), cmp_children);
	*out = all;
	*n = k;
	return 0;
}

static int render_family(buffer *b, family *f)
{
	octo_metric **children = NULL;
	size_t i, n = 0;
	int rc;

	put_str(b, "# HELP ");
	put_str(b, f->name);
	put_str(b, " ");
	put_escaped(b, f->help, 0);
	put_str(b, "\n# TYPE ");
	put_str(b, f->name);
	put_str(b, " ");
	put_str(b, type_names[f->type]);
	put_str(b, "\n");
	if (f->fn) {
		put_sample(b, f, "", NULL, NULL, f->fn(f->payload));
		return 0;
	}
	if (f->nlabels == 0) {
		put_metric(b, f, &f->self);
		return 0;
	}
	if ((rc = collect_children(f, &children, &n)) < 0)
		return rc;
	for (i = 0; i < n; i++)
		put_metric(b, f, children[i]);
	free(children);
	return 0;
}

/* Callbacks run with the registry locked: they may read anything but must
 * not register metrics in the same registry. */
int octo_metrics_render(octo_metrics *reg, char **text, size_t *len)
{
	buffer b = { NULL, 0, 0, 0 };
	family *f;
	int rc = 0;

	octo__error_clear();
	if (!reg || !text)
		return octo__error(OCTO_EINVAL, "no registry or output pointer");
	put(&b, "", 0);
	pthread_mutex_lock(&reg->lock);
	for (f = reg->families; f && rc == 0; f = f->next)
		rc = render_family(&b, f);
	pthread_mutex_unlock(&reg->lock);
	if (rc == 0 && b.failed)
		rc = octo__error(OCTO_ENOMEM, "out of memory");
	if (rc < 0) {
		free(b.data);
		return rc;
	}
	*text = b.data;
	if (len)
		*len = b.len;
	return 0;
}

/* ---- process metrics ----------------------------------------------------- */

/* Reads a small /proc file whole; -1 when it cannot or it is empty. */
static int read_small(const char *path, char *buf, size_t size)
{
	FILE *fp = fopen(path, "r");
	size_t n;

	if (!fp)
		return -1;
	n = fread(buf, 1, size - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	return n > 0 ? 0 : -1;
}

/* Field `n` of /proc/self/stat, numbered as in proc(5). The command name
 * (field 2) may hold spaces and parentheses, so counting starts after its
 * last ')'. */
static int stat_field(int n, double *out)
{
	char buf[4096], *p, *end;
	int field = 2;

	if (read_small("/proc/self/stat", buf, sizeof(buf)) < 0 || !(p = strrchr(buf, ')')))
		return -1;
	for (p++; *p; field++) {
		while (*p == ' ')
			p++;
		if (field + 1 == n) {
			*out = (double)strtoull(p, &end, 10);
			return end > p ? 0 : -1;
		}
		while (*p && *p != ' ')
			p++;
	}
	return -1;
}

/* Field `n` (from 1) of /proc/self/statm, in pages. */
static int statm_field(int n, double *out)
{
	unsigned long long v[2];
	char buf[256];

	if (n < 1 || n > 2 || read_small("/proc/self/statm", buf, sizeof(buf)) < 0 ||
	    sscanf(buf, "%llu %llu", &v[0], &v[1]) != 2)
		return -1;
	*out = (double)v[n - 1];
	return 0;
}

/* The boot time in seconds since the epoch, from /proc/stat: a line-wise
 * read, as the file is long on machines with many CPUs. */
static int boot_time(double *out)
{
	FILE *fp = fopen("/proc/stat", "r");
	char *line = NULL;
	size_t cap = 0;
	unsigned long long btime;
	int rc = -1;

	if (!fp)
		return -1;
	while (rc < 0 && getline(&line, &cap, fp) > 0)
		if (sscanf(line, "btime %llu", &btime) == 1)
			rc = 0;
	free(line);
	fclose(fp);
	if (rc == 0)
		*out = (double)btime;
	return rc;
}

static double cpu_seconds(void *payload)
{
	double utime, stime;

	(void)payload;
	if (stat_field(14, &utime) < 0 || stat_field(15, &stime) < 0)
		return NAN;
	return (utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static double start_time(void *payload)
{
	double ticks, btime;

	(void)payload;
	if (stat_field(22, &ticks) < 0 || boot_time(&btime) < 0)
		return NAN;
	return btime + ticks / (double)sysconf(_SC_CLK_TCK);
}

static double resident_bytes(void *payload)
{
	double pages;

	(void)payload;
	if (statm_field(2, &pages) < 0)
		return NAN;
	return pages * (double)sysconf(_SC_PAGESIZE);
}

static double virtual_bytes(void *payload)
{
	double pages;

	(void)payload;
	if (statm_field(1, &pages) < 0)
		return NAN;
	return pages * (double)sysconf(_SC_PAGESIZE);
}

static double open_fds(void *payload)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *e;
	double n = 0;

	(void)payload;
	if (!dir)
		return NAN;
	while ((e = readdir(dir)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(dir);
	return n - 1; /* the directory stream's own descriptor */
}

static double max_fds(void *payload)
{
	struct rlimit rl;

	(void)payload;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return NAN;
	return (double)rl.rlim_cur;
}

static int add_build_info(octo_metrics *reg)
{
	static const char *const labels[] = { "version", NULL };
	static const char *const values[] = { OCTO_VERSION, NULL };
	octo_metric *fam, *child;
	int rc;

	if ((rc = octo_metrics_gauge(&fam, reg, "octopus_build_info",
	                             "A metric with a constant '1' value labeled by the "
	                             "version of libocto.", labels)) < 0 ||
	    (rc = octo_metrics_with(&child, fam, values)) < 0)
		return rc;
	octo_metrics_set(child, 1);
	return 0;
}

int octo_metrics_add_process(octo_metrics *reg)
{
	FILE *fp;
	int rc;

	octo__error_clear();
	if (!reg)
		return octo__error(OCTO_EINVAL, "no registry");
	if (!(fp = fopen("/proc/self/stat", "r")))
		return octo__error(OCTO_EUNSUPPORTED, "no /proc/self/stat: %s", strerror(errno));
	fclose(fp);
	if ((rc = octo_metrics_counter_fn(reg, "process_cpu_seconds_total",
	                                  "Total user and system CPU time spent in seconds.",
	                                  cpu_seconds, NULL)) < 0 ||
	    (rc = octo_metrics_gauge_fn(reg, "process_start_time_seconds",
	                                "Start time of the process since unix epoch in seconds.",
	                                start_time, NULL)) < 0 ||
	    (rc = octo_metrics_gauge_fn(reg, "process_resident_memory_bytes",
	                                "Resident memory size in bytes.",
	                                resident_bytes, NULL)) < 0 ||
	    (rc = octo_metrics_gauge_fn(reg, "process_virtual_memory_bytes",
	                                "Virtual memory size in bytes.",
	                                virtual_bytes, NULL)) < 0 ||
	    (rc = octo_metrics_gauge_fn(reg, "process_open_fds",
	                                "Number of open file descriptors.",
	                                open_fds, NULL)) < 0 ||
	    (rc = octo_metrics_gauge_fn(reg, "process_max_fds",
	                                "Maximum number of open file descriptors.",
	                                max_fds, NULL)) < 0)
		return rc;
	return add_build_info(reg);
}
