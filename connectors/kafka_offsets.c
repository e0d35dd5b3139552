/*
 * The per-partition offset tracker (see kafka_offsets.h): a ring of delivered offsets
 * with a settled flag each. The ring only ever holds the offsets after the committed
 * prefix, so its size is bounded by what is in flight or buffered, not by the
 * partition's history.
 */
#include "kafka_offsets.h"

#include <stdlib.h>
#include <string.h>

#include <triggerd/errors.h>

void td_kafka_offsets_init(struct td_kafka_offsets *t)
{
	memset(t, 0, sizeof *t);
	t->last = -1;
	t->committed = -1;
}

void td_kafka_offsets_free(struct td_kafka_offsets *t)
{
	free(t->offs);
	free(t->done);
	td_kafka_offsets_init(t);
}

static size_t slot(const struct td_kafka_offsets *t, size_t i)
{
	return (t->head + i) & (t->cap - 1);
}

static int grow(struct td_kafka_offsets *t)
{
	size_t cap = t->cap ? t->cap * 2 : 64;
	long long *offs = malloc(cap * sizeof *offs);
	unsigned char *done = malloc(cap);
	if (!offs || !done) {
		free(offs);
		free(done);
		return -TD_ENOMEM;
	}
	for (size_t i = 0; i < t->len; i++) {
		offs[i] = t->offs[slot(t, i)];
		done[i] = t->done[slot(t, i)];
	}
	free(t->offs);
	free(t->done);
	t->offs = offs;
	t->done = done;
	t->cap = cap;
	t->head = 0;
	t->next = 0;
	return 0;
}

int td_kafka_offsets_add(struct td_kafka_offsets *t, long long offset)
{
	if (offset < 0 || offset <= t->last)
		return -TD_EINVAL;
	if (t->len == t->cap && grow(t) < 0)
		return -TD_ENOMEM;
	if (t->last < 0)
		t->committed = offset; /* where reading started: nothing to report yet */
	size_t s = slot(t, t->len);
	t->offs[s] = offset;
	t->done[s] = 0;
	t->len++;
	t->open++;
	t->last = offset;
	return 0;
}

static int mark(struct td_kafka_offsets *t, size_t s)
{
	if (t->done[s])
		return -TD_ENOTFOUND;
	t->done[s] = 1;
	t->open--;
	t->next = (s + 1) & (t->cap - 1);
	return 0;
}

int td_kafka_offsets_settle(struct td_kafka_offsets *t, long long offset)
{
	size_t lo = 0, hi = t->len;
	/* A batch settles its offsets in order: try the slot after the last one first. */
	if (t->cap && ((t->next - t->head) & (t->cap - 1)) < t->len && t->offs[t->next] == offset)
		return mark(t, t->next);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		long long v = t->offs[slot(t, mid)];
		if (v == offset)
			return mark(t, slot(t, mid));
		if (v < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -TD_ENOTFOUND;
}

long long td_kafka_offsets_position(const struct td_kafka_offsets *t)
{
	if (t->last < 0)
		return -1;
	for (size_t i = 0; i < t->len; i++)
		if (!t->done[slot(t, i)])
			return t->offs[slot(t, i)];
	return t->last + 1;
}

bool td_kafka_offsets_advance(struct td_kafka_offsets *t, long long *position)
{
	while (t->len > 0 && t->done[t->head]) {
		t->head = (t->head + 1) & (t->cap - 1);
		t->len--;
	}
	if (t->last < 0)
		return false;
	long long pos = t->len > 0 ? t->offs[t->head] : t->last + 1;
	if (pos <= t->committed)
		return false;
	t->committed = pos;
	*position = pos;
	return true;
}

size_t td_kafka_offsets_unsettled(const struct td_kafka_offsets *t)
{
	return t->open;
}
