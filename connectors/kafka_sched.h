/*
 * The scheduler of one Kafka partition: which received records form the next batch,
 * and what may run in parallel. Pure bookkeeping (no librdkafka, no threads, no
 * clock of its own), so every ordering rule is unit tested on its own.
 *
 * Records wait in a pending list in offset order. td_kafka_sched_next() forms a batch
 * of at most batch_size records when the ordering allows one more batch:
 *
 *   partition  one batch of the partition at a time: the next records in order;
 *   key        records whose key is in an unfinished batch, or whose key an earlier
 *              waiting record has, wait; the others (and records without a key) form
 *              batches in offset order, at most max_batches unfinished at once; so one
 *              key runs in order while different keys run in parallel;
 *   none       the next records in order, at most max_batches unfinished at once.
 *
 * With a batch window, fewer than batch_size records wait until the oldest waiting one
 * has waited window_ms (as Lambda's MaximumBatchingWindowInSeconds); without one,
 * whatever is there goes at once.
 *
 * A batch is unfinished from td_kafka_sched_next() until td_kafka_sched_settle() (its
 * records are done: their offsets count as settled) or td_kafka_sched_abandon() (given
 * up at revocation: not settled, delivered again by the next owner). A failing batch
 * may be split in two (bisect): the second half then waits (`deferred`) until the first
 * is settled, so order within the batch survives the split.
 *
 * Keys are compared by a 64-bit hash of their bytes: two keys with the same hash are
 * treated as one key, which only serialises them, never reorders.
 *
 * Threads: one scheduler is used by one thread at a time. Ownership: the scheduler owns
 * pending records and the batches it handed out (the caller returns each through settle
 * or abandon); a record's item is freed with conf.free_item when the record is freed.
 */
#ifndef TRIGGERD_KAFKA_SCHED_H
#define TRIGGERD_KAFKA_SCHED_H

#include <stdbool.h>
#include <stddef.h>

#include "kafka_offsets.h"

enum td_kafka_ordering { TD_KAFKA_ORDER_PARTITION, TD_KAFKA_ORDER_KEY, TD_KAFKA_ORDER_NONE };

struct td_kafka_batch;

struct td_kafka_rec {
	long long offset;
	long long arrival_ms; /* the caller's monotonic clock, for the batch window */
	unsigned long long key_hash;
	bool has_key;		      /* false: no key, never held back by another record */
	bool handled;		      /* the caller finished it another way (dead-lettered) */
	bool dlq_busy;		      /* the caller is sending it to a dead-letter destination */
	void *item;		      /* the caller's (the event); freed with conf.free_item */
	struct td_kafka_batch *batch; /* the unfinished batch that holds it, or NULL */
	struct td_kafka_rec *next;
};

struct td_kafka_sched;

struct td_kafka_batch {
	struct td_kafka_sched *sched;
	struct td_kafka_rec **recs; /* in offset order */
	size_t n;
	int attempts;		      /* failed attempts so far (the caller counts) */
	bool deferred;		      /* waits for the batch before it (a bisected half) */
	struct td_kafka_batch *after; /* the half that waits for this one */
	struct td_kafka_batch *prev_live, *next_live;
	/* For the caller: */
	int state;
	void *timer;
	int outstanding;
};

struct td_kafka_sched_conf {
	int ordering; /* enum td_kafka_ordering */
	size_t batch_size;
	long long window_ms;
	size_t max_batches; /* unfinished batches at once for key and none (partition: 1) */
	void (*free_item)(void *item);
	/* When set, a record is handed to free_rec(rec, free_arg), which frees it (after
	 * free_item), instead of free(): the caller may free it on another thread. */
	void (*free_rec)(struct td_kafka_rec *rec, void *free_arg);
	void *free_arg;
};

/* A multiset of key hashes (open addressing, linear probing). */
struct td_kafka_keys {
	unsigned long long *hash;
	unsigned *count; /* 0: a free slot */
	size_t cap, used;
};

/* A set of key hashes emptied in O(1) by a new generation (for one scan). */
struct td_kafka_keyset {
	unsigned long long *hash;
	unsigned *gen; /* a slot is taken when gen[i] == cur */
	unsigned cur;
	size_t cap, used;
};

struct td_kafka_sched {
	struct td_kafka_sched_conf conf;
	struct td_kafka_offsets offsets;
	struct td_kafka_rec *head, *tail; /* pending, in offset order */
	size_t pending;
	size_t batches; /* unfinished */
	struct td_kafka_batch *live;
	struct td_kafka_keys busy_keys; /* keys of records in unfinished batches */
	struct td_kafka_keyset scratch;
};

/* Sets s up (no allocation yet). batch_size and max_batches of 0 count as 1. */
void td_kafka_sched_init(struct td_kafka_sched *s, const struct td_kafka_sched_conf *conf);
/* Frees pending records and every unfinished batch (their records are not settled). */
void td_kafka_sched_free(struct td_kafka_sched *s);

/*
 * Appends a received record (the scheduler owns it from here on success). -TD_EINVAL
 * when its offset is not above the last one (a record delivered twice: the caller still
 * owns and frees it), -TD_ENOMEM.
 */
int td_kafka_sched_add(struct td_kafka_sched *s, struct td_kafka_rec *rec);

/*
 * The next batch to start, or NULL. When NULL is returned because records wait for
 * the batch window, *wait_ms is the time left (>= 1); otherwise it is -1. Records are
 * taken out of the pending list; their keys are busy until the batch is finished.
 */
struct td_kafka_batch *td_kafka_sched_next(struct td_kafka_sched *s, long long now_ms,
					   long long *wait_ms);

/*
 * Finishes b with its records done: their offsets are settled and the records freed.
 * Returns 1 with *position set when the commit position moved (store it), else 0.
 * *resume receives the deferred half that may start now, or NULL.
 */
int td_kafka_sched_settle(struct td_kafka_sched *s, struct td_kafka_batch *b, long long *position,
			  struct td_kafka_batch **resume);

/*
 * Splits b (n >= 2) in two halves: b keeps the first, *second the rest, deferred until
 * b is settled; both start with no failed attempts. 0, -TD_EINVAL (n < 2), -TD_ENOMEM.
 */
int td_kafka_sched_split(struct td_kafka_sched *s, struct td_kafka_batch *b,
			 struct td_kafka_batch **second);

/* Finishes b without settling its records (they are freed): revocation. */
void td_kafka_sched_abandon(struct td_kafka_sched *s, struct td_kafka_batch *b);

/* Frees every pending record (revocation: the next owner reads them again). */
void td_kafka_sched_drop_pending(struct td_kafka_sched *s);

/* The arrival time of the oldest pending record, or -1. */
long long td_kafka_sched_oldest(const struct td_kafka_sched *s);

#endif
