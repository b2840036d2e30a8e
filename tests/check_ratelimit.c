/* The fixed-window rate limiter: counting, refusal, the values sent in the
 * RateLimit-* headers, window expiry, sweeping of idle clients and exact
 * counting under concurrency. The clock is a parameter, so no test sleeps. */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <octopus/common.h>

#include "../lib/ratelimit.h"
#include "testutil.h"

#define WINDOW_MS 60000
#define T0 1000000 /* an arbitrary monotonic start time */

static octo__ratelimit *rl;

static void setup(void)
{
	rl = NULL;
	ck_assert_int_eq(octo__ratelimit_new(&rl, WINDOW_MS, 3), 0);
	ck_assert_ptr_nonnull(rl);
}

static void teardown(void)
{
	octo__ratelimit_free(rl);
	rl = NULL;
}

/* Counts one request and returns the verdict. */
static octo__ratelimit_verdict hit(const char *client, uint64_t now_ms)
{
	octo__ratelimit_verdict v;

	memset(&v, 0xa5, sizeof(v));
	octo__ratelimit_hit(rl, client, now_ms, 1, &v);
	return v;
}

/* Looks without counting. */
static octo__ratelimit_verdict peek(const char *client, uint64_t now_ms)
{
	octo__ratelimit_verdict v;

	memset(&v, 0xa5, sizeof(v));
	octo__ratelimit_hit(rl, client, now_ms, 0, &v);
	return v;
}

static void use_up(const char *client, uint64_t now_ms)
{
	int i;

	for (i = 0; i < 3; i++)
		ck_assert_int_eq(hit(client, now_ms).allowed, 1);
}

/* ---- counting ------------------------------------------------------------ */

START_TEST(requests_up_to_max_are_allowed)
{
	octo__ratelimit_verdict v;
	uint32_t i;

	for (i = 1; i <= 3; i++) {
		v = hit("10.0.0.1", T0 + i);
		ck_assert_int_eq(v.allowed, 1);
		ck_assert_uint_eq(v.limit, 3);
		ck_assert_uint_eq(v.remaining, 3 - i);
	}
}
END_TEST

START_TEST(request_past_max_is_refused)
{
	octo__ratelimit_verdict v;

	use_up("10.0.0.1", T0);
	v = hit("10.0.0.1", T0 + 1);
	ck_assert_int_eq(v.allowed, 0);
	ck_assert_uint_eq(v.limit, 3);
	ck_assert_uint_eq(v.remaining, 0);
}
END_TEST

START_TEST(refusals_continue_until_the_window_ends)
{
	int i;

	use_up("10.0.0.1", T0);
	for (i = 0; i < 50; i++)
		ck_assert_int_eq(hit("10.0.0.1", T0 + (uint64_t)i * 1000).allowed, 0);
	ck_assert_int_eq(hit("10.0.0.1", T0 + WINDOW_MS - 1).allowed, 0);
}
END_TEST

START_TEST(zero_count_only_peeks)
{
	octo__ratelimit_verdict v;
	int i;

	for (i = 0; i < 10; i++) {
		v = peek("10.0.0.1", T0);
		ck_assert_int_eq(v.allowed, 1);
		ck_assert_uint_eq(v.remaining, 3);
	}
	ck_assert_uint_eq(hit("10.0.0.1", T0).remaining, 2);
	v = peek("10.0.0.1", T0 + 1);
	ck_assert_int_eq(v.allowed, 1);
	ck_assert_uint_eq(v.remaining, 2);
	ck_assert_uint_eq(hit("10.0.0.1", T0 + 2).remaining, 1);
}
END_TEST

START_TEST(peek_reports_a_client_over_its_limit)
{
	octo__ratelimit_verdict v;

	use_up("10.0.0.1", T0);
	v = peek("10.0.0.1", T0 + 1);
	ck_assert_int_eq(v.allowed, 1);
	ck_assert_uint_eq(v.remaining, 0);
	hit("10.0.0.1", T0 + 2);
	v = peek("10.0.0.1", T0 + 3);
	ck_assert_int_eq(v.allowed, 0);
	ck_assert_uint_eq(v.remaining, 0);
}
END_TEST

START_TEST(clients_are_counted_independently)
{
	octo__ratelimit_verdict v;

	use_up("10.0.0.1", T0);
	ck_assert_int_eq(hit("10.0.0.1", T0).allowed, 0);
	v = hit("10.0.0.2", T0);
	ck_assert_int_eq(v.allowed, 1);
	ck_assert_uint_eq(v.remaining, 2);
	v = hit("2001:db8::1", T0);
	ck_assert_int_eq(v.allowed, 1);
	ck_assert_uint_eq(v.remaining, 2);
	ck_assert_uint_eq(octo__ratelimit_clients(rl), 3);
}
END_TEST

START_TEST(null_client_is_counted_as_one_client)
{
	use_up(NULL, T0);
	ck_assert_int_eq(hit(NULL, T0).allowed, 0);
	ck_assert_uint_eq(octo__ratelimit_clients(rl), 1);
}
END_TEST

START_TEST(zero_max_refuses_every_counted_request)
{
	octo__ratelimit *none = NULL;
	octo__ratelimit_verdict v;

	ck_assert_int_eq(octo__ratelimit_new(&none, WINDOW_MS, 0), 0);
	octo__ratelimit_hit(none, "10.0.0.1", T0, 1, &v);
	ck_assert_int_eq(v.allowed, 0);
	ck_assert_uint_eq(v.limit, 0);
	ck_assert_uint_eq(v.remaining, 0);
	octo__ratelimit_free(none);
}
END_TEST

/* ---- the window ---------------------------------------------------------- */

START_TEST(reset_counts_whole_seconds_left_rounded_up)
{
	ck_assert_uint_eq(hit("10.0.0.1", T0).reset_s, 60);
	ck_assert_uint_eq(hit("10.0.0.1", T0 + 1).reset_s, 60);
	ck_assert_uint_eq(hit("10.0.0.1", T0 + 1000).reset_s, 59);
	ck_assert_uint_eq(peek("10.0.0.1", T0 + 1001).reset_s, 59);
	ck_assert_uint_eq(peek("10.0.0.1", T0 + WINDOW_MS - 1000).reset_s, 1);
	ck_assert_uint_eq(peek("10.0.0.1", T0 + WINDOW_MS - 1).reset_s, 1);
}
END_TEST

START_TEST(window_expiry_resets_the_count)
{
	octo__ratelimit_verdict v;

	use_up("10.0.0.1", T0);
	ck_assert_int_eq(hit("10.0.0.1", T0 + WINDOW_MS - 1).allowed, 0);
	v = hit("10.0.0.1", T0 + WINDOW_MS);
	ck_assert_int_eq(v.allowed, 1);
	ck_assert_uint_eq(v.remaining, 2);
	ck_assert_uint_eq(v.reset_s, 60);
}
END_TEST

START_TEST(new_window_starts_at_the_first_request_after_expiry)
{
	uint64_t later = T0 + 5 * WINDOW_MS + 123;

	use_up("10.0.0.1", T0);
	use_up("10.0.0.1", later);
	ck_assert_int_eq(hit("10.0.0.1", later + WINDOW_MS - 1).allowed, 0);
	ck_assert_uint_eq(peek("10.0.0.1", later + WINDOW_MS - 1).reset_s, 1);
	ck_assert_int_eq(hit("10.0.0.1", later + WINDOW_MS).allowed, 1);
}
END_TEST

START_TEST(peek_after_expiry_shows_a_full_budget)
{
	octo__ratelimit_verdict v;

	use_up("10.0.0.1", T0);
	hit("10.0.0.1", T0);
	v = peek("10.0.0.1", T0 + WINDOW_MS);
	ck_assert_int_eq(v.allowed, 1);
	ck_assert_uint_eq(v.remaining, 3);
}
END_TEST

START_TEST(earlier_clock_reading_stays_in_the_current_window)
{
	octo__ratelimit_verdict v;

	/* Callers read the clock before taking the limiter's lock, so two
	 * concurrent requests may arrive with their times out of order. */
	use_up("10.0.0.1", T0 + 10);
	v = hit("10.0.0.1", T0 + 9);
	ck_assert_int_eq(v.allowed, 0);
	ck_assert_uint_eq(v.remaining, 0);
	ck_assert_uint_le(v.reset_s, 60);
	ck_assert_uint_ge(v.reset_s, 59);
}
END_TEST

START_TEST(zero_window_is_refused)
{
	octo__ratelimit *none = NULL;

	ck_assert_int_eq(octo__ratelimit_new(&none, 0, 10), OCTO_EINVAL);
	ck_assert_ptr_null(none);
	ck_assert_ptr_nonnull(strstr(octo_error_last(), "window"));
}
END_TEST

START_TEST(free_accepts_null)
{
	octo__ratelimit_free(NULL);
	ck_assert_ptr_nonnull(rl);
}
END_TEST

/* ---- memory --------------------------------------------------------------- */

static void hit_many(int from, int to, uint64_t now_ms)
{
	char client[32];
	int i;

	for (i = from; i < to; i++) {
		snprintf(client, sizeof(client), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		ck_assert_int_eq(hit(client, now_ms).allowed, 1);
	}
}

START_TEST(expired_clients_are_swept)
{
	hit_many(0, 5000, T0);
	ck_assert_uint_eq(octo__ratelimit_clients(rl), 5000);
	/* Every old entry has expired: by the time the table would have
	 * doubled, only the new clients are left. */
	hit_many(100000, 105000, T0 + WINDOW_MS);
	ck_assert_uint_eq(octo__ratelimit_clients(rl), 5000);
}
END_TEST

START_TEST(active_clients_survive_a_sweep)
{
	hit_many(0, 2000, T0);
	use_up("192.0.2.1", T0 + WINDOW_MS - 1);
	hit_many(100000, 104000, T0 + WINDOW_MS);
	ck_assert_uint_eq(octo__ratelimit_clients(rl), 4001);
	ck_assert_int_eq(hit("192.0.2.1", T0 + WINDOW_MS).allowed, 0);
}
END_TEST

START_TEST(sweep_with_an_earlier_clock_keeps_current_clients)
{
	use_up("192.0.2.1", T0 + 10);
	hit_many(0, 3000, T0 + 9);
	ck_assert_uint_eq(octo__ratelimit_clients(rl), 3001);
	ck_assert_int_eq(hit("192.0.2.1", T0 + 9).allowed, 0);
}
END_TEST

START_TEST(untracked_clients_past_the_cap_are_let_through)
{
	octo__ratelimit_verdict v;
	int i;

	hit_many(0, OCTO__RATELIMIT_MAX_CLIENTS, T0);
	ck_assert_uint_eq(octo__ratelimit_clients(rl), OCTO__RATELIMIT_MAX_CLIENTS);
	for (i = 0; i < 5; i++) {
		v = hit("192.0.2.1", T0);
		ck_assert_int_eq(v.allowed, 1);
		ck_assert_uint_eq(v.remaining, 3);
	}
	ck_assert_uint_eq(octo__ratelimit_clients(rl), OCTO__RATELIMIT_MAX_CLIENTS);
}
END_TEST

/* ---- threads --------------------------------------------------------------- */

#define THREADS 8
#define HITS_PER_THREAD 2000

typedef struct {
	octo__ratelimit *rl;
	int allowed;
} worker;

static void *hammer(void *arg)
{
	worker *w = arg;
	octo__ratelimit_verdict v;
	int i;

	for (i = 0; i < HITS_PER_THREAD; i++) {
		octo__ratelimit_hit(w->rl, "10.0.0.1", T0, 1, &v);
		w->allowed += v.allowed;
	}
	return NULL;
}

START_TEST(many_threads_on_one_client_count_exactly)
{
	const uint32_t max = THREADS * HITS_PER_THREAD / 2 + 7;
	octo__ratelimit *shared = NULL;
	pthread_t threads[THREADS];
	worker workers[THREADS];
	octo__ratelimit_verdict v;
	int i, allowed = 0;

	ck_assert_int_eq(octo__ratelimit_new(&shared, WINDOW_MS, max), 0);
	for (i = 0; i < THREADS; i++) {
		workers[i].rl = shared;
		workers[i].allowed = 0;
		ck_assert_int_eq(pthread_create(&threads[i], NULL, hammer, &workers[i]), 0);
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(threads[i], NULL);
		allowed += workers[i].allowed;
	}
	ck_assert_int_eq(allowed, (int)max);
	octo__ratelimit_hit(shared, "10.0.0.1", T0, 0, &v);
	ck_assert_int_eq(v.allowed, 0);
	ck_assert_uint_eq(octo__ratelimit_clients(shared), 1);
	octo__ratelimit_free(shared);
}
END_TEST

START_TEST(many_threads_leave_the_exact_remaining_budget)
{
	const uint32_t max = THREADS * HITS_PER_THREAD + 11;
	octo__ratelimit *shared = NULL;
	pthread_t threads[THREADS];
	worker workers[THREADS];
	octo__ratelimit_verdict v;
	int i;

	ck_assert_int_eq(octo__ratelimit_new(&shared, WINDOW_MS, max), 0);
	for (i = 0; i < THREADS; i++) {
		workers[i].rl = shared;
		workers[i].allowed = 0;
		ck_assert_int_eq(pthread_create(&threads[i], NULL, hammer, &workers[i]), 0);
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(threads[i], NULL);
		ck_assert_int_eq(workers[i].allowed, HITS_PER_THREAD);
	}
	octo__ratelimit_hit(shared, "10.0.0.1", T0, 0, &v);
	ck_assert_int_eq(v.allowed, 1);
	ck_assert_uint_eq(v.remaining, 11);
	octo__ratelimit_free(shared);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ratelimit");
	TCase *counting = tcase_create("counting");
	TCase *window = tcase_create("window");
	TCase *memory = tcase_create("memory");
	TCase *threads = tcase_create("threads");

	tcase_add_checked_fixture(counting, setup, teardown);
	tcase_add_test(counting, requests_up_to_max_are_allowed);
	tcase_add_test(counting, request_past_max_is_refused);
	tcase_add_test(counting, refusals_continue_until_the_window_ends);
	tcase_add_test(counting, zero_count_only_peeks);
	tcase_add_test(counting, peek_reports_a_client_over_its_limit);
	tcase_add_test(counting, clients_are_counted_independently);
	tcase_add_test(counting, null_client_is_counted_as_one_client);
	tcase_add_test(counting, zero_max_refuses_every_counted_request);
	suite_add_tcase(s, counting);

	tcase_add_checked_fixture(window, setup, teardown);
	tcase_add_test(window, reset_counts_whole_seconds_left_rounded_up);
	tcase_add_test(window, window_expiry_resets_the_count);
	tcase_add_test(window, new_window_starts_at_the_first_request_after_expiry);
	tcase_add_test(window, peek_after_expiry_shows_a_full_budget);
	tcase_add_test(window, earlier_clock_reading_stays_in_the_current_window);
	tcase_add_test(window, zero_window_is_refused);
	tcase_add_test(window, free_accepts_null);
	suite_add_tcase(s, window);

	tcase_add_checked_fixture(memory, setup, teardown);
	tcase_set_timeout(memory, 120);
	tcase_add_test(memory, expired_clients_are_swept);
	tcase_add_test(memory, active_clients_survive_a_sweep);
	tcase_add_test(memory, sweep_with_an_earlier_clock_keeps_current_clients);
	tcase_add_test(memory, untracked_clients_past_the_cap_are_let_through);
	suite_add_tcase(s, memory);

	tcase_set_timeout(threads, 120);
	tcase_add_test(threads, many_threads_on_one_client_count_exactly);
	tcase_add_test(threads, many_threads_leave_the_exact_remaining_budget);
	suite_add_tcase(s, threads);
	return tu_run(s);
}
