/*
 * Unit tests for connectors/kafka_offsets.c: the commit position is the first unsettled
 * offset (a slow record holds it back however many later ones are settled), gaps in the
 * offsets, duplicates and unknown offsets refused, growth of the ring past its first
 * size with wrap-around, and a randomised run checked against a plain model.
 */
#include <criterion/criterion.h>

#include <stdlib.h>

#include <triggerd/errors.h>

#include "../../connectors/kafka_offsets.h"

Test(kafka_offsets, empty_tracker_has_no_position)
{
	struct td_kafka_offsets t;
	long long pos = 0;
	td_kafka_offsets_init(&t);
	cr_expect_eq(td_kafka_offsets_position(&t), -1);
	cr_expect_not(td_kafka_offsets_advance(&t, &pos));
	cr_expect_eq(td_kafka_offsets_unsettled(&t), 0);
	td_kafka_offsets_free(&t);
}

/* Table: offsets delivered, settled in the given order; expected position after each. */
struct settle_case {
	const char *name;
	long long delivered[8];
	int ndelivered;
	long long settled[8];
	long long position_after[8];
};

Test(kafka_offsets, position_is_first_unsettled)
{
	static const struct settle_case cases[] = {
	    {"in order", {0, 1, 2}, 3, {0, 1, 2}, {1, 2, 3}},
	    {"slow first record holds the position", {5, 6, 7, 8}, 4, {6, 7, 8, 5}, {5, 5, 5, 9}},
	    {"middle first", {10, 11, 12}, 3, {11, 10, 12}, {10, 12, 13}},
	    {"gaps (compaction, markers)", {3, 7, 9}, 3, {3, 9, 7}, {7, 7, 10}},
	    {"reverse", {0, 1, 2, 3}, 4, {3, 2, 1, 0}, {0, 0, 0, 4}},
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		const struct settle_case *k = &cases[c];
		struct td_kafka_offsets t;
		td_kafka_offsets_init(&t);
		for (int i = 0; i < k->ndelivered; i++)
			cr_assert_eq(td_kafka_offsets_add(&t, k->delivered[i]), 0, "%s", k->name);
		cr_expect_eq(td_kafka_offsets_position(&t), k->delivered[0], "%s", k->name);
		for (int i = 0; i < k->ndelivered; i++) {
			cr_assert_eq(td_kafka_offsets_settle(&t, k->settled[i]), 0,
				     "%s: settle %lld", k->name, k->settled[i]);
			cr_expect_eq(td_kafka_offsets_position(&t), k->position_after[i],
				     "%s: after settling %lld", k->name, k->settled[i]);
		}
		cr_expect_eq(td_kafka_offsets_unsettled(&t), 0, "%s", k->name);
		td_kafka_offsets_free(&t);
	}
}

Test(kafka_offsets, advance_reports_only_forward_moves)
{
	struct td_kafka_offsets t;
	long long pos = -5;
	td_kafka_offsets_init(&t);
	for (long long o = 100; o < 104; o++)
		cr_assert_eq(td_kafka_offsets_add(&t, o), 0);
	cr_expect_not(td_kafka_offsets_advance(&t, &pos), "nothing settled: no position yet");
	cr_assert_eq(td_kafka_offsets_settle(&t, 101), 0);
	cr_expect_not(td_kafka_offsets_advance(&t, &pos), "100 is still open");
	cr_assert_eq(td_kafka_offsets_settle(&t, 100), 0);
	cr_expect(td_kafka_offsets_advance(&t, &pos));
	cr_expect_eq(pos, 102);
	cr_expect_not(td_kafka_offsets_advance(&t, &pos), "same position twice is not a move");
	cr_assert_eq(td_kafka_offsets_settle(&t, 103), 0);
	cr_expect_not(td_kafka_offsets_advance(&t, &pos));
	cr_assert_eq(td_kafka_offsets_settle(&t, 102), 0);
	cr_expect(td_kafka_offsets_advance(&t, &pos));
	cr_expect_eq(pos, 104);
	cr_expect_eq(td_kafka_offsets_unsettled(&t), 0);
	/* New records after everything was settled. */
	cr_assert_eq(td_kafka_offsets_add(&t, 110), 0);
	cr_expect_eq(td_kafka_offsets_position(&t), 110);
	cr_expect(td_kafka_offsets_advance(&t, &pos), "the gap 104..109 holds no record");
	cr_expect_eq(pos, 110);
	td_kafka_offsets_free(&t);
}

Test(kafka_offsets, refuses_duplicates_and_unknown_offsets)
{
	struct td_kafka_offsets t;
	td_kafka_offsets_init(&t);
	cr_expect_eq(td_kafka_offsets_add(&t, -1), -TD_EINVAL);
	cr_assert_eq(td_kafka_offsets_add(&t, 4), 0);
	cr_expect_eq(td_kafka_offsets_add(&t, 4), -TD_EINVAL, "delivered twice");
	cr_expect_eq(td_kafka_offsets_add(&t, 2), -TD_EINVAL, "going back");
	cr_expect_eq(td_kafka_offsets_settle(&t, 5), -TD_ENOTFOUND);
	cr_expect_eq(td_kafka_offsets_settle(&t, 3), -TD_ENOTFOUND);
	cr_assert_eq(td_kafka_offsets_settle(&t, 4), 0);
	cr_expect_eq(td_kafka_offsets_settle(&t, 4), -TD_ENOTFOUND, "settled twice");
	td_kafka_offsets_free(&t);
}

Test(kafka_offsets, ring_grows_and_wraps)
{
	struct td_kafka_offsets t;
	long long pos;
	td_kafka_offsets_init(&t);
	long long next = 0, first_open = 0;
	/* Keep about 100 open while 10000 pass through: the ring wraps many times. */
	for (int round = 0; round < 100; round++) {
		for (int i = 0; i < 100; i++)
			cr_assert_eq(td_kafka_offsets_add(&t, next++), 0);
		for (int i = 0; i < 100; i++)
			cr_assert_eq(td_kafka_offsets_settle(&t, first_open + i), 0);
		first_open += 100;
		cr_assert(td_kafka_offsets_advance(&t, &pos));
		cr_assert_eq(pos, first_open);
	}
	/* And a large backlog (growth with a wrapped head). */
	for (int i = 0; i < 5000; i++)
		cr_assert_eq(td_kafka_offsets_add(&t, next++), 0);
	cr_expect_eq(td_kafka_offsets_unsettled(&t), 5000);
	for (long long o = next - 1; o >= first_open; o--)
		cr_assert_eq(td_kafka_offsets_settle(&t, o), 0);
	cr_assert(td_kafka_offsets_advance(&t, &pos));
	cr_expect_eq(pos, next);
	td_kafka_offsets_free(&t);
}

/* Batches settle their offsets in order (the slot after the last settled is tried
 * first): gaps, a batch settled out of turn, repeats and growth in between. */
Test(kafka_offsets, in_order_settling_with_gaps_and_repeats)
{
	struct td_kafka_offsets t;
	long long pos;
	td_kafka_offsets_init(&t);
	for (long long o = 0; o < 60; o++)
		cr_assert_eq(td_kafka_offsets_add(&t, 3 * o), 0); /* 0, 3, ..., 177 */
	for (long long o = 30; o < 60; o++)			  /* the second half first */
		cr_assert_eq(td_kafka_offsets_settle(&t, 3 * o), 0);
	cr_expect_eq(td_kafka_offsets_settle(&t, 177), -TD_ENOTFOUND);
	cr_expect_eq(td_kafka_offsets_settle(&t, 90), -TD_ENOTFOUND);
	cr_expect_eq(td_kafka_offsets_settle(&t, 1), -TD_ENOTFOUND);
	cr_expect(!td_kafka_offsets_advance(&t, &pos));
	for (long long o = 60; o < 200; o++) /* grows past 64 while settled slots wait */
		cr_assert_eq(td_kafka_offsets_add(&t, 3 * o), 0);
	for (long long o = 0; o < 30; o++) {
		cr_assert_eq(td_kafka_offsets_settle(&t, 3 * o), 0);
		cr_expect_eq(td_kafka_offsets_settle(&t, 3 * o), -TD_ENOTFOUND);
	}
	cr_assert(td_kafka_offsets_advance(&t, &pos));
	cr_expect_eq(pos, 180);
	for (long long o = 60; o < 200; o++)
		cr_assert_eq(td_kafka_offsets_settle(&t, 3 * o), 0, "offset %lld", 3 * o);
	cr_expect_eq(td_kafka_offsets_unsettled(&t), 0);
	cr_assert(td_kafka_offsets_advance(&t, &pos));
	cr_expect_eq(pos, 3 * 199 + 1);
	td_kafka_offsets_free(&t);
}

Test(kafka_offsets, random_settling_matches_a_model)
{
	enum { N = 3000 };
	static long long offs[N];
	static bool settled[N];
	struct td_kafka_offsets t;
	long long pos, last_pos = -1;
	unsigned seed = 12345;
	td_kafka_offsets_init(&t);
	long long o = 0;
	for (int i = 0; i < N; i++) {
		o += 1 + (rand_r(&seed) % 3); /* gaps */
		offs[i] = o;
		cr_assert_eq(td_kafka_offsets_add(&t, o), 0);
	}
	for (int step = 0; step < N; step++) {
		int i;
		do
			i = rand_r(&seed) % N;
		while (settled[i]);
		settled[i] = true;
		cr_assert_eq(td_kafka_offsets_settle(&t, offs[i]), 0);
		int first = 0;
		while (first < N && settled[first])
			first++;
		long long want = first < N ? offs[first] : offs[N - 1] + 1;
		cr_assert_eq(td_kafka_offsets_position(&t), want, "step %d", step);
		if (td_kafka_offsets_advance(&t, &pos)) {
			cr_assert_eq(pos, want);
			cr_assert_gt(pos, last_pos);
			last_pos = pos;
		}
	}
	cr_expect_eq(last_pos, offs[N - 1] + 1);
	td_kafka_offsets_free(&t);
}
