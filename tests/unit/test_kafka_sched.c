/*
 * Unit tests for connectors/kafka_sched.c: what each ordering lets run at once
 * (partition: one batch; key: one key in order, different keys and keyless records in
 * parallel; none: up to max_batches), batch sizes, the batch window, bisection (the
 * second half waits for the first), abandoning (offsets not settled), dropping what
 * waits, duplicates, and a randomised key-ordering run checked against a model (no two
 * unfinished batches share a key; each key's records start in offset order).
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <triggerd/errors.h>

#include "../../connectors/kafka_event.h"
#include "../../connectors/kafka_sched.h"

static int freed_items;

static void count_free(void *item)
{
	(void)item;
	freed_items++;
}

static struct td_kafka_rec *mkrec(long long offset, const char *key, long long arrival)
{
	struct td_kafka_rec *r = calloc(1, sizeof *r);
	cr_assert_not_null(r);
	r->offset = offset;
	r->arrival_ms = arrival;
	r->has_key = key != NULL;
	r->key_hash = key ? td_kafka_key_hash(key, strlen(key)) : 0;
	r->item = r; /* any non-NULL pointer: counted by count_free */
	return r;
}

static void setup(struct td_kafka_sched *s, int ordering, size_t batch_size, long long window,
		  size_t max_batches)
{
	struct td_kafka_sched_conf c = {.ordering = ordering,
					.batch_size = batch_size,
					.window_ms = window,
					.max_batches = max_batches,
					.free_item = count_free};
	freed_items = 0;
	td_kafka_sched_init(s, &c);
}

static void add(struct td_kafka_sched *s, long long offset, const char *key)
{
	cr_assert_eq(td_kafka_sched_add(s, mkrec(offset, key, 0)), 0, "add %lld", offset);
}

static struct td_kafka_batch *next(struct td_kafka_sched *s)
{
	long long wait;
	return td_kafka_sched_next(s, 1000000, &wait);
}

static void expect_offsets(const struct td_kafka_batch *b, const long long *want, size_t n)
{
	cr_assert_not_null(b);
	cr_assert_eq(b->n, n, "batch of %zu, want %zu", b->n, n);
	for (size_t i = 0; i < n; i++)
		cr_expect_eq(b->recs[i]->offset, want[i], "record %zu: %lld, want %lld", i,
			     b->recs[i]->offset, want[i]);
}

static long long settle(struct td_kafka_sched *s, struct td_kafka_batch *b)
{
	long long pos = -1;
	struct td_kafka_batch *resume;
	td_kafka_sched_settle(s, b, &pos, &resume);
	return pos;
}

Test(kafka_sched, partition_ordering_runs_one_batch_at_a_time)
{
	struct td_kafka_sched s;
	setup(&s, TD_KAFKA_ORDER_PARTITION, 2, 0, 10);
	for (int i = 0; i < 5; i++)
		add(&s, i, i % 2 ? "a" : "b");
	struct td_kafka_batch *b1 = next(&s);
	expect_offsets(b1, (long long[]){0, 1}, 2);
	cr_expect_null(next(&s), "one batch per partition");
	cr_expect_eq(settle(&s, b1), 2);
	struct td_kafka_batch *b2 = next(&s);
	expect_offsets(b2, (long long[]){2, 3}, 2);
	cr_expect_eq(settle(&s, b2), 4);
	struct td_kafka_batch *b3 = next(&s);
	expect_offsets(b3, (long long[]){4}, 1);
	cr_expect_eq(settle(&s, b3), 5);
	cr_expect_null(next(&s));
	cr_expect_eq(freed_items, 5);
	td_kafka_sched_free(&s);
}

Test(kafka_sched, key_ordering_holds_back_busy_keys_only)
{
	struct td_kafka_sched s;
	setup(&s, TD_KAFKA_ORDER_KEY, 1, 0, 10);
	add(&s, 0, "a");
	add(&s, 1, "b");
	add(&s, 2, "a");
	add(&s, 3, NULL);
	add(&s, 4, "c");
	add(&s, 5, "b");
	struct td_kafka_batch *got[6];
	int n = 0;
	struct td_kafka_batch *b;
	while ((b = next(&s)))
		got[n++] = b;
	/* a@0, b@1, keyless@3, c@4 start; a@2 and b@5 wait for their keys. */
	cr_assert_eq(n, 4);
	long long want[] = {0, 1, 3, 4};
	for (int i = 0; i < 4; i++)
		cr_expect_eq(got[i]->recs[0]->offset, want[i]);
	cr_expect_eq(s.pending, 2);
	/* b@1 done: b@5 may start, a@2 still waits. */
	cr_expect_eq(settle(&s, got[1]), -1, "offset 0 is open: the position does not move");
	b = next(&s);
	expect_offsets(b, (long long[]){5}, 1);
	cr_expect_null(next(&s));
	/* a@0 done: a@2 starts; position moves over 0 and 1. */
	cr_expect_eq(settle(&s, got[0]), 2);
	struct td_kafka_batch *a2 = next(&s);
	expect_offsets(a2, (long long[]){2}, 1);
	cr_expect_eq(settle(&s, got[2]), -1, "a@2 is open");
	cr_expect_eq(settle(&s, got[3]), -1);
	cr_expect_eq(settle(&s, b), -1);
	cr_expect_eq(settle(&s, a2), 6);
	td_kafka_sched_free(&s);
}

Test(kafka_sched, key_ordering_keeps_a_key_behind_its_waiting_record)
{
	struct td_kafka_sched s;
	setup(&s, TD_KAFKA_ORDER_KEY, 3, 0, 10);
	add(&s, 0, "a");
	struct td_kafka_batch *b1 = next(&s);
	expect_offsets(b1, (long long[]){0}, 1);
	add(&s, 1, "a"); /* waits for a@0 */
	add(&s, 2, "b");
	add(&s, 3, "a"); /* must not pass a@1 */
	add(&s, 4, "b");
	struct td_kafka_batch *b2 = next(&s);
	expect_offsets(b2, (long long[]){2, 4}, 2);
	cr_expect_null(next(&s));
	settle(&s, b1);
	struct td_kafka_batch *b3 = next(&s);
	expect_offsets(b3, (long long[]){1, 3}, 2);
	settle(&s, b2);
	cr_expect_eq(settle(&s, b3), 5);
	td_kafka_sched_free(&s);
}

Test(kafka_sched, none_ordering_runs_up_to_max_batches)
{
	struct td_kafka_sched s;
	setup(&s, TD_KAFKA_ORDER_NONE, 2, 0, 3);
	for (int i = 0; i < 10; i++)
		add(&s, i, "same");
	struct td_kafka_batch *b[3];
	for (int i = 0; i < 3; i++) {
		b[i] = next(&s);
		expect_offsets(b[i], (long long[]){2 * i, 2 * i + 1}, 2);
	}
	cr_expect_null(next(&s), "max_batches reached");
	cr_expect_eq(settle(&s, b[2]), -1, "out of order: the position waits");
	cr_expect_eq(settle(&s, b[0]), 2);
	struct td_kafka_batch *b4 = next(&s);
	expect_offsets(b4, (long long[]){6, 7}, 2);
	cr_expect_eq(settle(&s, b[1]), 6);
	cr_expect_eq(settle(&s, b4), 8);
	td_kafka_sched_free(&s);
	cr_expect_eq(freed_items, 10, "pending records are freed with the scheduler");
}

Test(kafka_sched, batch_window_waits_for_a_full_batch)
{
	struct td_kafka_sched s;
	long long wait;
	setup(&s, TD_KAFKA_ORDER_PARTITION, 3, 500, 1);
	cr_assert_eq(td_kafka_sched_add(&s, mkrec(0, "k", 1000)), 0);
	cr_assert_eq(td_kafka_sched_add(&s, mkrec(1, "k", 1100)), 0);
	cr_expect_null(td_kafka_sched_next(&s, 1200, &wait));
	cr_expect_eq(wait, 300, "the window runs from the oldest waiting record");
	cr_expect_eq(td_kafka_sched_oldest(&s), 1000);
	cr_expect_null(td_kafka_sched_next(&s, 1499, &wait));
	cr_expect_eq(wait, 1);
	struct td_kafka_batch *b = td_kafka_sched_next(&s, 1500, &wait);
	expect_offsets(b, (long long[]){0, 1}, 2);
	cr_expect_eq(wait, -1);
	settle(&s, b);
	/* A full batch does not wait. */
	for (int i = 2; i < 5; i++)
		cr_assert_eq(td_kafka_sched_add(&s, mkrec(i, "k", 2000)), 0);
	b = td_kafka_sched_next(&s, 2000, &wait);
	expect_offsets(b, (long long[]){2, 3, 4}, 3);
	settle(&s, b);
	td_kafka_sched_free(&s);
}

Test(kafka_sched, zero_window_sends_what_is_there)
{
	struct td_kafka_sched s;
	long long wait;
	setup(&s, TD_KAFKA_ORDER_PARTITION, 100, 0, 1);
	add(&s, 7, "k");
	struct td_kafka_batch *b = td_kafka_sched_next(&s, 0, &wait);
	expect_offsets(b, (long long[]){7}, 1);
	cr_expect_eq(wait, -1);
	settle(&s, b);
	td_kafka_sched_free(&s);
}

Test(kafka_sched, split_defers_the_second_half)
{
	struct td_kafka_sched s;
	struct td_kafka_batch *second, *resume;
	long long pos;
	setup(&s, TD_KAFKA_ORDER_PARTITION, 8, 0, 1);
	for (int i = 0; i < 5; i++)
		add(&s, i, "k");
	struct td_kafka_batch *b = next(&s);
	b->attempts = 3;
	cr_assert_eq(td_kafka_sched_split(&s, b, &second), 0);
	expect_offsets(b, (long long[]){0, 1}, 2);
	expect_offsets(second, (long long[]){2, 3, 4}, 3);
	cr_expect(second->deferred);
	cr_expect_eq(b->attempts, 0);
	cr_expect_eq(second->attempts, 0);
	cr_expect_eq(b->after, second);
	cr_expect_eq(second->recs[0]->batch, second, "records know their new batch");
	cr_expect_eq(s.batches, 2);
	/* Split the second again: 2 | 3 4, and 3 4 waits for 2. */
	struct td_kafka_batch *third;
	cr_assert_eq(td_kafka_sched_split(&s, second, &third), 0);
	expect_offsets(second, (long long[]){2}, 1);
	cr_expect_eq(td_kafka_sched_split(&s, second, &third), -TD_EINVAL, "one record");
	cr_expect_null(third);
	cr_expect_eq(td_kafka_sched_settle(&s, b, &pos, &resume), 1);
	cr_expect_eq(pos, 2);
	cr_expect_eq(resume, second);
	cr_expect_not(second->deferred);
	struct td_kafka_batch *last = second->after;
	cr_expect_eq(td_kafka_sched_settle(&s, second, &pos, &resume), 1);
	cr_expect_eq(pos, 3);
	cr_expect_eq(resume, last);
	cr_expect_eq(td_kafka_sched_settle(&s, last, &pos, &resume), 1);
	cr_expect_eq(pos, 5);
	cr_expect_null(resume);
	cr_expect_eq(s.batches, 0);
	td_kafka_sched_free(&s);
}

Test(kafka_sched, abandon_leaves_offsets_unsettled)
{
	struct td_kafka_sched s;
	setup(&s, TD_KAFKA_ORDER_NONE, 1, 0, 5);
	for (int i = 0; i < 3; i++)
		add(&s, i, "k");
	struct td_kafka_batch *b0 = next(&s), *b1 = next(&s), *b2 = next(&s);
	td_kafka_sched_abandon(&s, b0);
	cr_expect_eq(settle(&s, b1), -1, "offset 0 was given up: the position stays at it");
	cr_expect_eq(settle(&s, b2), -1);
	cr_expect_eq(td_kafka_offsets_position(&s.offsets), 0);
	cr_expect_eq(freed_items, 3);
	td_kafka_sched_free(&s);
}

/* free_rec: every record goes to it (after its item), in settle, abandon, drop and free;
 * none is freed by the scheduler itself. */
struct graves {
	struct td_kafka_rec *list;
	int n;
};

static void bury(struct td_kafka_rec *r, void *arg)
{
	struct graves *g = arg;
	cr_assert_null(r->item, "free_item runs before free_rec");
	r->next = g->list;
	g->list = r;
	g->n++;
}

static void item_cleared(void *item)
{
	((struct td_kafka_rec *)item)->item = NULL;
	freed_items++;
}

Test(kafka_sched, free_rec_takes_every_record)
{
	struct td_kafka_sched s;
	struct graves g = {0};
	struct td_kafka_sched_conf c = {.ordering = TD_KAFKA_ORDER_NONE,
					.batch_size = 2,
					.max_batches = 3,
					.free_item = item_cleared,
					.free_rec = bury,
					.free_arg = &g};
	freed_items = 0;
	td_kafka_sched_init(&s, &c);
	for (int i = 0; i < 9; i++)
		add(&s, i, i % 2 ? "odd" : NULL);
	struct td_kafka_batch *a = next(&s), *b = next(&s), *d = next(&s);
	cr_assert(a && b && d);
	cr_expect_eq(settle(&s, a), 2);
	cr_expect_eq(g.n, 2);
	td_kafka_sched_abandon(&s, b);
	cr_expect_eq(g.n, 4);
	td_kafka_sched_drop_pending(&s); /* 6, 7, 8 */
	cr_expect_eq(g.n, 7);
	td_kafka_sched_free(&s); /* d: 4, 5 */
	cr_expect_eq(g.n, 9);
	cr_expect_eq(freed_items, 9);
	while (g.list) {
		struct td_kafka_rec *r = g.list;
		g.list = r->next;
		free(r);
	}
}

Test(kafka_sched, drop_pending_and_duplicates)
{
	struct td_kafka_sched s;
	setup(&s, TD_KAFKA_ORDER_PARTITION, 1, 0, 1);
	add(&s, 10, "k");
	add(&s, 11, "k");
	struct td_kafka_rec *dup = mkrec(11, "k", 0);
	cr_expect_eq(td_kafka_sched_add(&s, dup), -TD_EINVAL);
	free(dup);
	td_kafka_sched_drop_pending(&s);
	cr_expect_eq(s.pending, 0);
	cr_expect_eq(freed_items, 2);
	cr_expect_null(next(&s));
	cr_expect_eq(td_kafka_sched_oldest(&s), -1);
	td_kafka_sched_free(&s);
}

/* Many keys, random completion: no two unfinished batches share a key, and each key's
 * records start in offset order. */
Test(kafka_sched, random_key_ordering_keeps_each_key_in_order)
{
	enum { N = 4000, KEYS = 37 };
	struct td_kafka_sched s;
	struct td_kafka_batch *live[64];
	int nlive = 0;
	long long last_started[KEYS];
	unsigned seed = 99;
	char key[8];
	setup(&s, TD_KAFKA_ORDER_KEY, 4, 0, 16);
	for (int k = 0; k < KEYS; k++)
		last_started[k] = -1;
	long long added = 0;
	int started = 0;
	while (started < N) {
		while (added < N && s.pending < 200) {
			int k = rand_r(&seed) % KEYS;
			snprintf(key, sizeof key, "%d", k);
			struct td_kafka_rec *r = mkrec(added, key, 0);
			r->item = (void *)(long)(k + 1);
			cr_assert_eq(td_kafka_sched_add(&s, r), 0);
			added++;
		}
		struct td_kafka_batch *b;
		while (nlive < 64 && (b = next(&s))) {
			for (size_t i = 0; i < b->n; i++) {
				int k = (int)(long)b->recs[i]->item - 1;
				cr_assert_gt(b->recs[i]->offset, last_started[k],
					     "key %d out of order", k);
				last_started[k] = b->recs[i]->offset;
				for (int j = 0; j < nlive; j++)
					for (size_t x = 0; x < live[j]->n; x++)
						cr_assert_neq((int)(long)live[j]->recs[x]->item - 1,
							      k, "key %d in two unfinished batches",
							      k);
			}
			started += (int)b->n;
			live[nlive++] = b;
		}
		cr_assert_gt(nlive, 0);
		int pick = rand_r(&seed) % nlive;
		settle(&s, live[pick]);
		live[pick] = live[--nlive];
	}
	while (nlive > 0)
		settle(&s, live[--nlive]);
	cr_expect_eq(td_kafka_offsets_position(&s.offsets), N);
	td_kafka_sched_free(&s);
}
