/*
 * The per-partition scheduler (see kafka_sched.h). Pending records are a singly linked
 * list in offset order; a batch takes records out of it (from the front for partition
 * and none ordering, from anywhere for key ordering). The keys of unfinished batches are
 * counted in a small hash multiset; one scan for key ordering marks the keys it had to
 * hold back in a second set that is emptied by bumping a generation number.
 */
#include "kafka_sched.h"

#include <stdlib.h>
#include <string.h>

#include <triggerd/errors.h>

/* ---- key hash sets ---- */

static size_t mix(unsigned long long h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return (size_t)h;
}

static size_t keys_find(const struct td_kafka_keys *k, unsigned long long h)
{
	size_t mask = k->cap - 1, i = mix(h) & mask;
	while (k->count[i] && k->hash[i] != h)
		i = (i + 1) & mask;
	return i;
}

static int keys_grow(struct td_kafka_keys *k)
{
	size_t cap = k->cap ? k->cap * 2 : 64;
	struct td_kafka_keys n = {calloc(cap, sizeof *n.hash), calloc(cap, sizeof *n.count), cap,
				  0};
	if (!n.hash || !n.count) {
		free(n.hash);
		free(n.count);
		return -TD_ENOMEM;
	}
	for (size_t i = 0; i < k->cap; i++)
		if (k->count[i]) {
			size_t j = keys_find(&n, k->hash[i]);
			n.hash[j] = k->hash[i];
			n.count[j] = k->count[i];
			n.used++;
		}
	free(k->hash);
	free(k->count);
	*k = n;
	return 0;
}

static int keys_add(struct td_kafka_keys *k, unsigned long long h)
{
	if ((k->used + 1) * 2 > k->cap && keys_grow(k) < 0)
		return -TD_ENOMEM;
	size_t i = keys_find(k, h);
	if (!k->count[i]) {
		k->hash[i] = h;
		k->used++;
	}
	k->count[i]++;
	return 0;
}

static bool keys_has(const struct td_kafka_keys *k, unsigned long long h)
{
	return k->cap && k->count[keys_find(k, h)] > 0;
}

/* Removes one count of h; deletion shifts the following entries back into place. */
static void keys_del(struct td_kafka_keys *k, unsigned long long h)
{
	if (!k->cap)
		return;
	size_t mask = k->cap - 1, i = keys_find(k, h);
	if (!k->count[i] || --k->count[i] > 0)
		return;
	k->used--;
	for (size_t j = (i + 1) & mask; k->count[j]; j = (j + 1) & mask) {
		size_t ideal = mix(k->hash[j]) & mask;
		/* Move j into the hole at i unless its ideal slot lies cyclically in (i, j]. */
		bool in_between = i <= j ? (ideal > i && ideal <= j) : (ideal > i || ideal <= j);
		if (in_between)
			continue;
		k->hash[i] = k->hash[j];
		k->count[i] = k->count[j];
		k->count[j] = 0;
		i = j;
	}
}

static void keys_free(struct td_kafka_keys *k)
{
	free(k->hash);
	free(k->count);
	memset(k, 0, sizeof *k);
}

static size_t keyset_find(const struct td_kafka_keyset *k, unsigned long long h)
{
	size_t mask = k->cap - 1, i = mix(h) & mask;
	while (k->gen[i] == k->cur && k->hash[i] != h)
		i = (i + 1) & mask;
	return i;
}

static void keyset_clear(struct td_kafka_keyset *k)
{
	k->used = 0;
	if (++k->cur == 0) { /* the generation wrapped: really empty it */
		if (k->gen)
			memset(k->gen, 0, k->cap * sizeof *k->gen);
		k->cur = 1;
	}
}

static int keyset_add(struct td_kafka_keyset *k, unsigned long long h)
{
	if ((k->used + 1) * 2 > k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 64;
		struct td_kafka_keyset n = {calloc(cap, sizeof *n.hash), calloc(cap, sizeof *n.gen),
					    1, cap, 0};
		if (!n.hash || !n.gen) {
			free(n.hash);
			free(n.gen);
			return -TD_ENOMEM;
		}
		for (size_t i = 0; i < k->cap; i++)
			if (k->gen[i] == k->cur) {
				size_t j = keyset_find(&n, k->hash[i]);
				n.hash[j] = k->hash[i];
				n.gen[j] = n.cur;
				n.used++;
			}
		free(k->hash);
		free(k->gen);
		*k = n;
	}
	size_t i = keyset_find(k, h);
	if (k->gen[i] != k->cur) {
		k->hash[i] = h;
		k->gen[i] = k->cur;
		k->used++;
	}
	return 0;
}

static bool keyset_has(const struct td_kafka_keyset *k, unsigned long long h)
{
	return k->cap && k->gen[keyset_find(k, h)] == k->cur;
}

/* ---- the scheduler ---- */

void td_kafka_sched_init(struct td_kafka_sched *s, const struct td_kafka_sched_conf *conf)
{
	memset(s, 0, sizeof *s);
	s->conf = *conf;
	if (s->conf.batch_size == 0)
		s->conf.batch_size = 1;
	if (s->conf.max_batches == 0 || s->conf.ordering == TD_KAFKA_ORDER_PARTITION)
		s->conf.max_batches = 1;
	td_kafka_offsets_init(&s->offsets);
	s->scratch.cur = 1;
}

static void rec_free(struct td_kafka_sched *s, struct td_kafka_rec *r)
{
	if (s->conf.free_item && r->item)
		s->conf.free_item(r->item);
	if (s->conf.free_rec)
		s->conf.free_rec(r, s->conf.free_arg);
	else
		free(r);
}

/* Releases b: its records' keys are no longer busy; the records are freed. */
static void batch_release(struct td_kafka_sched *s, struct td_kafka_batch *b)
{
	bool keyed = s->conf.ordering == TD_KAFKA_ORDER_KEY;
	for (size_t i = 0; i < b->n; i++) {
		if (keyed && b->recs[i]->has_key)
			keys_del(&s->busy_keys, b->recs[i]->key_hash);
		rec_free(s, b->recs[i]);
	}
	if (b->prev_live)
		b->prev_live->next_live = b->next_live;
	else
		s->live = b->next_live;
	if (b->next_live)
		b->next_live->prev_live = b->prev_live;
	s->batches--;
	free(b->recs);
	free(b);
}

void td_kafka_sched_drop_pending(struct td_kafka_sched *s)
{
	struct td_kafka_rec *r = s->head;
	while (r) {
		struct td_kafka_rec *next = r->next;
		rec_free(s, r);
		r = next;
	}
	s->head = s->tail = NULL;
	s->pending = 0;
}

void td_kafka_sched_free(struct td_kafka_sched *s)
{
	td_kafka_sched_drop_pending(s);
	while (s->live)
		batch_release(s, s->live);
	td_kafka_offsets_free(&s->offsets);
	keys_free(&s->busy_keys);
	free(s->scratch.hash);
	free(s->scratch.gen);
	memset(&s->scratch, 0, sizeof s->scratch);
}

int td_kafka_sched_add(struct td_kafka_sched *s, struct td_kafka_rec *rec)
{
	int rc = td_kafka_offsets_add(&s->offsets, rec->offset);
	if (rc < 0)
		return rc;
	rec->next = NULL;
	if (s->tail)
		s->tail->next = rec;
	else
		s->head = rec;
	s->tail = rec;
	s->pending++;
	return 0;
}

long long td_kafka_sched_oldest(const struct td_kafka_sched *s)
{
	return s->head ? s->head->arrival_ms : -1;
}

static struct td_kafka_batch *batch_new(struct td_kafka_sched *s, size_t cap)
{
	struct td_kafka_batch *b = calloc(1, sizeof *b);
	if (!b)
		return NULL;
	b->recs = malloc((cap ? cap : 1) * sizeof *b->recs);
	if (!b->recs) {
		free(b);
		return NULL;
	}
	b->sched = s;
	return b;
}

static void batch_link(struct td_kafka_sched *s, struct td_kafka_batch *b)
{
	b->prev_live = NULL;
	b->next_live = s->live;
	if (s->live)
		s->live->prev_live = b;
	s->live = b;
	s->batches++;
}

/* Marks the keys of b busy (key ordering only: the others never look at them). On
 * failure nothing is marked. */
static int busy_add(struct td_kafka_sched *s, struct td_kafka_batch *b)
{
	if (s->conf.ordering != TD_KAFKA_ORDER_KEY)
		return 0;
	for (size_t i = 0; i < b->n; i++)
		if (b->recs[i]->has_key && keys_add(&s->busy_keys, b->recs[i]->key_hash) < 0) {
			while (i-- > 0)
				if (b->recs[i]->has_key)
					keys_del(&s->busy_keys, b->recs[i]->key_hash);
			return -TD_ENOMEM;
		}
	return 0;
}

/* Chooses up to batch_size records of the pending list that may start now (key
 * ordering: see the header) into sel; returns how many. -TD_ENOMEM. */
static long long select_records(struct td_kafka_sched *s, struct td_kafka_rec **sel)
{
	size_t n = 0, want = s->conf.batch_size;
	if (s->conf.ordering != TD_KAFKA_ORDER_KEY) {
		for (struct td_kafka_rec *r = s->head; r && n < want; r = r->next)
			sel[n++] = r;
		return (long long)n;
	}
	keyset_clear(&s->scratch);
	for (struct td_kafka_rec *r = s->head; r && n < want; r = r->next) {
		if (!r->has_key) {
			sel[n++] = r;
			continue;
		}
		if (keys_has(&s->busy_keys, r->key_hash) || keyset_has(&s->scratch, r->key_hash)) {
			if (keyset_add(&s->scratch, r->key_hash) < 0)
				return -TD_ENOMEM;
			continue;
		}
		sel[n++] = r;
	}
	return (long long)n;
}

/* Takes the selected records (in list order) out of the pending list. */
static void unlink_selected(struct td_kafka_sched *s, struct td_kafka_rec **sel, size_t n)
{
	struct td_kafka_rec *prev = NULL, *r = s->head;
	size_t k = 0;
	while (r && k < n) {
		struct td_kafka_rec *next = r->next;
		if (r == sel[k]) {
			if (prev)
				prev->next = next;
			else
				s->head = next;
			if (s->tail == r)
				s->tail = prev;
			r->next = NULL;
			k++;
			s->pending--;
		} else {
			prev = r;
		}
		r = next;
	}
}

struct td_kafka_batch *td_kafka_sched_next(struct td_kafka_sched *s, long long now_ms,
					   long long *wait_ms)
{
	*wait_ms = -1;
	if (!s->head || s->batches >= s->conf.max_batches)
		return NULL;
	size_t cap = s->pending < s->conf.batch_size ? s->pending : s->conf.batch_size;
	struct td_kafka_batch *b = batch_new(s, cap);
	if (!b)
		return NULL;
	long long n = select_records(s, b->recs);
	if (n <= 0)
		goto none;
	if ((size_t)n < s->conf.batch_size && s->conf.window_ms > 0) {
		long long due = s->head->arrival_ms + s->conf.window_ms;
		if (now_ms < due) {
			*wait_ms = due - now_ms;
			goto none;
		}
	}
	b->n = (size_t)n;
	if (busy_add(s, b) < 0)
		goto none;
	unlink_selected(s, b->recs, b->n);
	for (size_t i = 0; i < b->n; i++)
		b->recs[i]->batch = b;
	batch_link(s, b);
	return b;
none:
	free(b->recs);
	free(b);
	return NULL;
}

int td_kafka_sched_settle(struct td_kafka_sched *s, struct td_kafka_batch *b, long long *position,
			  struct td_kafka_batch **resume)
{
	*resume = b->after;
	if (b->after)
		b->after->deferred = false;
	for (size_t i = 0; i < b->n; i++)
		td_kafka_offsets_settle(&s->offsets, b->recs[i]->offset);
	batch_release(s, b);
	return td_kafka_offsets_advance(&s->offsets, position) ? 1 : 0;
}

int td_kafka_sched_split(struct td_kafka_sched *s, struct td_kafka_batch *b,
			 struct td_kafka_batch **second)
{
	*second = NULL;
	if (b->n < 2)
		return -TD_EINVAL;
	size_t keep = b->n / 2;
	struct td_kafka_batch *c = batch_new(s, b->n - keep);
	if (!c)
		return -TD_ENOMEM;
	memcpy(c->recs, b->recs + keep, (b->n - keep) * sizeof *c->recs);
	c->n = b->n - keep;
	for (size_t i = 0; i < c->n; i++)
		c->recs[i]->batch = c;
	b->n = keep;
	c->deferred = true;
	c->after = b->after;
	b->after = c;
	b->attempts = 0;
	batch_link(s, c);
	*second = c;
	return 0;
}

void td_kafka_sched_abandon(struct td_kafka_sched *s, struct td_kafka_batch *b)
{
	for (struct td_kafka_batch *x = s->live; x; x = x->next_live)
		if (x->after == b)
			x->after = b->after;
	batch_release(s, b);
}
