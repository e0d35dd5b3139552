/*
 * The offset tracker of one Kafka partition: which delivered offsets are settled, and
 * how far the partition may be committed.
 *
 * Records of a partition arrive in increasing offset order (with gaps: compacted
 * topics, transaction markers) and may settle in any order (ordering "key" or "none",
 * retries, bisected batches). Kafka commits one number per partition: the offset of the
 * next record to read. So the tracker keeps the delivered offsets that are not yet
 * part of the committed prefix, in a ring, each with a settled flag; the commit
 * position is the first unsettled offset, or one past the last delivered offset when
 * every delivered record is settled. A slow record therefore holds the position back,
 * however many later records are settled (at least once: after a restart the later
 * ones are delivered again, never the slow one skipped).
 *
 * Settling finds the offset by binary search in the ring (O(log n)); advancing pops the
 * settled prefix (amortised O(1) per record).
 *
 * Threads: none of its own; one tracker is used by one thread at a time (the engine
 * thread in the kafka source). Ownership: the caller owns the struct; td_kafka_offsets_free
 * releases what the tracker allocated.
 */
#ifndef TRIGGERD_KAFKA_OFFSETS_H
#define TRIGGERD_KAFKA_OFFSETS_H

#include <stdbool.h>
#include <stddef.h>

struct td_kafka_offsets {
	long long *offs;       /* ring of tracked offsets, increasing */
	unsigned char *done;   /* settled flag per slot */
	size_t head, len, cap; /* cap: 0 or a power of two */
	size_t next;	       /* the slot after the last one settled: where a batch goes on */
	long long last;	       /* the last offset added, -1 before the first */
	long long committed;   /* the last position reported (at first: the first offset) */
	size_t open;	       /* tracked and not settled */
};

/* Zeroes t (no allocation until the first add). */
void td_kafka_offsets_init(struct td_kafka_offsets *t);
void td_kafka_offsets_free(struct td_kafka_offsets *t);

/*
 * Tracks a delivered offset. Returns 0; -TD_EINVAL when offset is negative or not above
 * the last one added (a record delivered twice: the caller drops the copy); -TD_ENOMEM.
 */
int td_kafka_offsets_add(struct td_kafka_offsets *t, long long offset);

/* Marks a tracked offset settled. 0, or -TD_ENOTFOUND when it is not tracked or was
 * already settled. */
int td_kafka_offsets_settle(struct td_kafka_offsets *t, long long offset);

/*
 * The commit position now: the first unsettled offset, or last + 1 when everything
 * delivered is settled; -1 before the first add.
 */
long long td_kafka_offsets_position(const struct td_kafka_offsets *t);

/*
 * Drops the settled prefix and returns true with *position set when the position moved
 * past the last one reported, or past the first offset added when none was reported yet
 * (what the caller stores for the next commit).
 */
bool td_kafka_offsets_advance(struct td_kafka_offsets *t, long long *position);

/* Offsets delivered and not yet settled. */
size_t td_kafka_offsets_unsettled(const struct td_kafka_offsets *t);

#endif
