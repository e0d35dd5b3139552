/*
 * The MQTT source's spool (mqtt_spool.h): segment files of length-prefixed, checked
 * records in a directory locked for the process (flock), or in-memory files (memfd) for
 * TD_QUEUE_MEMORY. Open spools are shared per path through a small registry, so that
 * the instances of one source across a reload see the same rows and claims.
 *
 * In memory: the index of live rows (id, segment, offset, length, claimed), sorted by id
 * (appends come in increasing order), and the removals not yet written. A message's
 * bytes are read back from its segment only when it is recovered.
 */
#include "mqtt_spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <triggerd/errors.h>

#include "../router/json.h"

#define SEGMENT_MAX  (1 << 20) /* bytes after which the next append starts a segment */
#define HEADER	     17	       /* body length u32, check u32, id u64, kind u8 */
#define KIND_ROW     1
#define KIND_REMOVED 2

struct segment {
	struct segment *next; /* the next newer one */
	long long first_id;   /* its name */
	int fd;
	off_t size;
	long live;   /* its rows not removed */
	bool sealed; /* nothing more is appended (damage that could not be cut off) */
};

struct row {
	long long id;
	struct segment *seg;
	off_t offset; /* of the record in seg */
	size_t len;   /* of the record, header included */
	bool claimed;
};

/* A growable list of row ids. */
struct ids {
	long long *v;
	size_t n, cap;
};

struct td_mqtt_spool {
	struct td_mqtt_spool *next; /* the registry */
	char *path;
	int refs;
	enum td_queue_durability durability;
	int dirfd; /* -1 in memory */
	/* lock: the files, the index and what is to be written. Held across writes and
	 * syncs, so the settling side (the engine thread) never takes it: it queues ids
	 * under qlock, and whoever takes lock next applies them (drain). */
	pthread_mutex_t lock;
	struct segment *oldest, *current;
	struct row *rows; /* sorted by id */
	size_t nrows, caprows;
	size_t unclaimed;      /* rows of the index that nobody holds */
	struct ids removals;   /* settled rows, for the next removal record */
	pthread_mutex_t qlock; /* guards the two lists below and nothing else */
	struct ids q_removed, q_unclaimed;
	struct ids spare_removed, spare_unclaimed; /* emptied lists, swapped in by drain */
	long long next_id;
	struct td_buf buf; /* what one write sends */
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct td_mqtt_spool *registry;

/* ---- the record format ---- */

static void put_u32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t get_u64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* FNV-1a over id, kind and body: the record header from byte 8 on. */
static uint32_t check_of(const unsigned char *p, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/* Fills the header in front of a body of blen bytes already at p + HEADER. */
static void seal(unsigned char *p, size_t blen, long long id, int kind)
{
	put_u32(p, (uint32_t)blen);
	put_u64(p + 8, (uint64_t)id);
	p[16] = (unsigned char)kind;
	put_u32(p + 4, check_of(p + 8, 9 + blen));
}

static size_t row_body_len(const struct td_mqtt_spooled *m)
{
	return 12 + m->event_len + (m->reply_topic ? strlen(m->reply_topic) + 1 : 0) +
	       (m->correlation ? m->correlation_len : 0);
}

/* Writes m's body at p (row_body_len(m) bytes). */
static void put_row_body(unsigned char *p, const struct td_mqtt_spooled *m)
{
	put_u32(p, (uint32_t)m->event_len);
	memcpy(p + 4, m->event, m->event_len);
	p += 4 + m->event_len;
	size_t rlen = m->reply_topic ? strlen(m->reply_topic) + 1 : 0;
	put_u32(p, m->reply_topic ? (uint32_t)rlen + 1 : 0);
	if (rlen)
		memcpy(p + 4, m->reply_topic, rlen);
	p += 4 + rlen;
	size_t clen = m->correlation ? m->correlation_len : 0;
	put_u32(p, m->correlation ? (uint32_t)clen + 1 : 0);
	if (clen)
		memcpy(p + 4, m->correlation, clen);
}

/* Reads a length-prefixed part (u32 length + 1, 0: none) at *pos. */
static int get_part(const unsigned char *body, size_t blen, size_t *pos, const void **out,
		    size_t *len)
{
	if (blen - *pos < 4)
		return -1;
	uint32_t n = get_u32(body + *pos);
	*pos += 4;
	*out = NULL;
	*len = 0;
	if (n == 0)
		return 0;
	if (n - 1 > blen - *pos)
		return -1;
	*out = body + *pos;
	*len = n - 1;
	*pos += n - 1;
	return 0;
}

static int decode_row(const unsigned char *body, size_t blen, long long id,
		      struct td_mqtt_spooled *m)
{
	size_t pos = 0;
	if (blen < 4)
		return -1;
	uint32_t elen = get_u32(body);
	if (elen > blen - 4)
		return -1;
	*m = (struct td_mqtt_spooled){.id = id, .event = body + 4, .event_len = elen};
	pos = 4 + elen;
	const void *reply;
	size_t rlen;
	if (get_part(body, blen, &pos, &reply, &rlen) < 0 ||
	    (reply && (rlen == 0 || ((const char *)reply)[rlen - 1] != '\0')))
		return -1;
	m->reply_topic = reply;
	if (get_part(body, blen, &pos, &m->correlation, &m->correlation_len) < 0)
		return -1;
	return pos == blen ? 0 : -1;
}

int td_mqtt_spool_parse(const void *buf, size_t len,
			int (*on_row)(void *arg, const struct td_mqtt_spooled *m, size_t offset,
				      size_t record_len),
			int (*on_removed)(void *arg, long long id), void *arg, size_t *valid,
			char *err, size_t errlen)
{
	const unsigned char *p = buf;
	size_t off = 0;
	*valid = 0;
	while (off < len) {
		const char *what = NULL;
		if (len - off < HEADER) {
			what = "a record header cut short";
			goto bad;
		}
		size_t blen = get_u32(p + off);
		uint64_t id = get_u64(p + off + 8);
		int kind = p[off + 16];
		const unsigned char *body = p + off + HEADER;
		if (blen > len - off - HEADER) {
			what = "a record body cut short";
			goto bad;
		}
		if (get_u32(p + off + 4) != check_of(p + off + 8, 9 + blen)) {
			what = "a record whose check does not match";
			goto bad;
		}
		if (kind == KIND_ROW) {
			struct td_mqtt_spooled m;
			if (id == 0 || id > (uint64_t)LLONG_MAX ||
			    decode_row(body, blen, (long long)id, &m) < 0) {
				what = "a message record with a damaged body";
				goto bad;
			}
			if (on_row && on_row(arg, &m, off, HEADER + blen))
				return -TD_ENOMEM;
		} else if (kind == KIND_REMOVED) {
			if (id != 0 || blen % 8) {
				what = "a damaged removal record";
				goto bad;
			}
			for (size_t i = 0; i < blen; i += 8) {
				uint64_t rid = get_u64(body + i);
				if (rid <= (uint64_t)LLONG_MAX && on_removed &&
				    on_removed(arg, (long long)rid))
					return -TD_ENOMEM;
			}
		} else {
			what = "a record of an unknown kind";
			goto bad;
		}
		off += HEADER + blen;
		*valid = off;
		continue;
	bad:
		return td_fail(err, errlen, "%s at byte %zu", what, off);
	}
	return 0;
}

/* ---- the index of live rows ---- */

/* The index of the first row whose id >= id. */
static size_t row_lower(const struct td_mqtt_spool *s, long long id)
{
	size_t lo = 0, hi = s->nrows;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->rows[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct row *row_find(struct td_mqtt_spool *s, long long id)
{
	size_t i = row_lower(s, id);
	return i < s->nrows && s->rows[i].id == id ? &s->rows[i] : NULL;
}

static int rows_reserve(struct td_mqtt_spool *s)
{
	if (s->nrows < s->caprows)
		return 0;
	size_t cap = s->caprows ? s->caprows * 2 : 64;
	struct row *v = realloc(s->rows, cap * sizeof *v);
	if (!v)
		return -TD_ENOMEM;
	s->rows = v;
	s->caprows = cap;
	return 0;
}

static int ids_push(struct ids *a, long long id)
{
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		long long *v = realloc(a->v, cap * sizeof *v);
		if (!v)
			return -TD_ENOMEM;
		a->v = v;
		a->cap = cap;
	}
	a->v[a->n++] = id;
	return 0;
}

/* Takes row r out of the index (its segment counts one row less). */
static void row_erase(struct td_mqtt_spool *s, struct row *r)
{
	if (!r->claimed)
		s->unclaimed--;
	r->seg->live--;
	size_t i = (size_t)(r - s->rows);
	memmove(r, r + 1, (s->nrows - i - 1) * sizeof *r);
	s->nrows--;
}

/* ---- segments ---- */

static void segment_name(char *out, size_t cap, long long first_id)
{
	snprintf(out, cap, "%020lld.seg", first_id);
}

static void segment_close(struct td_mqtt_spool *s, struct segment *g, bool unlink_it)
{
	if (g->fd >= 0)
		close(g->fd);
	if (unlink_it && s->dirfd >= 0) {
		char name[32];
		segment_name(name, sizeof name, g->first_id);
		unlinkat(s->dirfd, name, 0);
	}
	free(g);
}

/* The oldest segments go once none of their rows is left (oldest first, so that the
 * removal records of a newer segment never outlive the rows they name). */
static void drop_dead_segments(struct td_mqtt_spool *s)
{
	while (s->oldest && s->oldest != s->current && s->oldest->live == 0) {
		struct segment *g = s->oldest;
		s->oldest = g->next;
		segment_close(s, g, true);
	}
}

static struct segment *segment_add(struct td_mqtt_spool *s, long long first_id, int fd, off_t size)
{
	struct segment *g = calloc(1, sizeof *g);
	if (!g)
		return NULL;
	g->first_id = first_id;
	g->fd = fd;
	g->size = size;
	if (s->current)
		s->current->next = g;
	else
		s->oldest = g;
	s->current = g;
	return g;
}

/* Starts a new segment named by the next id. */
static int segment_start(struct td_mqtt_spool *s, char *err, size_t errlen)
{
	char name[32];
	segment_name(name, sizeof name, s->next_id);
	int fd = s->dirfd >= 0 ? openat(s->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)
			       : memfd_create("triggerd-mqtt-spool", MFD_CLOEXEC);
	if (fd < 0) {
		td_fail(err, errlen, "spool %s/%s: cannot create: %s", s->path, name,
			strerror(errno));
		return -TD_EIO;
	}
	if (s->durability == TD_QUEUE_FSYNC && fsync(s->dirfd) < 0) {
		td_fail(err, errlen, "spool %s: cannot sync the directory: %s", s->path,
			strerror(errno));
		close(fd);
		unlinkat(s->dirfd, name, 0);
		return -TD_EIO;
	}
	if (!segment_add(s, s->next_id, fd, 0)) {
		close(fd);
		if (s->dirfd >= 0)
			unlinkat(s->dirfd, name, 0);
		td_fail(err, errlen, "out of memory");
		return -TD_ENOMEM;
	}
	return 0;
}

/* The write buffer with room for n bytes, or NULL when out of memory. */
static unsigned char *buf_room(struct td_mqtt_spool *s, size_t n)
{
	td_buf_reset(&s->buf);
	return td_buf_reserve(&s->buf, n) == 0 ? (unsigned char *)s->buf.data : NULL;
}

/* Writes the queued removals as one record at p (HEADER + 8 per id). */
static size_t put_removals(struct td_mqtt_spool *s, unsigned char *p)
{
	if (!s->removals.n)
		return 0;
	for (size_t i = 0; i < s->removals.n; i++)
		put_u64(p + HEADER + 8 * i, (uint64_t)s->removals.v[i]);
	seal(p, 8 * s->removals.n, 0, KIND_REMOVED);
	return HEADER + 8 * s->removals.n;
}

/* Appends n bytes of s->buf to the current segment (synced when the durability says
 * so). A failed write is cut off again, so that the file stays a sequence of records. */
static int write_out(struct td_mqtt_spool *s, size_t n, bool sync, char *err, size_t errlen)
{
	struct segment *g = s->current;
	size_t done = 0;
	int e = 0;
	while (done < n && !e) {
		ssize_t w = pwrite(g->fd, s->buf.data + done, n - done, g->size + (off_t)done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			e = w < 0 ? errno : ENOSPC;
		else
			done += (size_t)w;
	}
	if (!e && sync && s->durability == TD_QUEUE_FSYNC && fdatasync(g->fd) < 0)
		e = errno;
	if (!e) {
		g->size += (off_t)n;
		return 0;
	}
	char name[32];
	segment_name(name, sizeof name, g->first_id);
	td_fail(err, errlen, "spool %s/%s: cannot write: %s", s->path, name, strerror(e));
	if (ftruncate(g->fd, g->size) < 0) {
		/* Left as it is: reading cuts the torn record off. */
	}
	return -TD_EIO;
}

/* ---- appending and settling ---- */

/* With lock held: applies what the settling side queued. Settled rows leave the index
 * (and go into the next removal record), given-back rows become unclaimed, and the
 * segments left without rows go. */
static void drain(struct td_mqtt_spool *s)
{
	pthread_mutex_lock(&s->qlock);
	struct ids removed = s->q_removed, unclaimed = s->q_unclaimed;
	s->q_removed = s->spare_removed;
	s->q_unclaimed = s->spare_unclaimed;
	pthread_mutex_unlock(&s->qlock);
	for (size_t i = 0; i < removed.n; i++) {
		struct row *r = row_find(s, removed.v[i]);
		if (r) {
			row_erase(s, r);
			/* Out of memory: not written, so the row comes once more after a
			 * crash. */
			ids_push(&s->removals, removed.v[i]);
		}
	}
	for (size_t i = 0; i < unclaimed.n; i++) {
		struct row *r = row_find(s, unclaimed.v[i]);
		if (r && r->claimed) {
			r->claimed = false;
			s->unclaimed++;
		}
	}
	removed.n = unclaimed.n = 0;
	s->spare_removed = removed;
	s->spare_unclaimed = unclaimed;
	drop_dead_segments(s);
}

int td_mqtt_spool_append(struct td_mqtt_spool *s, const struct td_mqtt_spooled *m, long long *id,
			 char *err, size_t errlen)
{
	size_t blen = row_body_len(m);
	if (blen > UINT32_MAX - 1) {
		td_fail(err, errlen, "a message of %zu bytes does not fit a spool record", blen);
		return -TD_EINVAL;
	}
	pthread_mutex_lock(&s->lock);
	drain(s);
	int ret = -TD_ENOMEM;
	size_t n = (s->removals.n ? HEADER + 8 * s->removals.n : 0) + HEADER + blen;
	unsigned char *p = buf_room(s, n);
	if (!p || rows_reserve(s) < 0) {
		td_fail(err, errlen, "out of memory");
		goto out;
	}
	if (!s->current || s->current->sealed ||
	    (s->current->size >= SEGMENT_MAX && s->next_id > s->current->first_id)) {
		if ((ret = segment_start(s, err, errlen)) < 0)
			goto out;
		drop_dead_segments(s);
	}
	size_t at = put_removals(s, p);
	put_row_body(p + at + HEADER, m);
	seal(p + at, blen, s->next_id, KIND_ROW);
	off_t offset = s->current->size + (off_t)at;
	if ((ret = write_out(s, n, true, err, errlen)) < 0)
		goto out;
	s->removals.n = 0;
	s->rows[s->nrows++] = (struct row){.id = s->next_id,
					   .seg = s->current,
					   .offset = offset,
					   .len = HEADER + blen,
					   .claimed = true};
	s->current->live++;
	*id = s->next_id++;
	ret = 0;
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

void td_mqtt_spool_remove(struct td_mqtt_spool *s, long long id)
{
	pthread_mutex_lock(&s->qlock);
	/* Out of memory: the row stays, and comes once more after a restart. */
	ids_push(&s->q_removed, id);
	pthread_mutex_unlock(&s->qlock);
}

void td_mqtt_spool_unclaim(struct td_mqtt_spool *s, long long id)
{
	pthread_mutex_lock(&s->qlock);
	/* Out of memory: the row stays claimed, and comes again after a restart. */
	ids_push(&s->q_unclaimed, id);
	pthread_mutex_unlock(&s->qlock);
}

/* Removals are not synced: one lost in a power loss only repeats a message. */
static int flush_locked(struct td_mqtt_spool *s, char *err, size_t errlen)
{
	drain(s);
	if (!s->removals.n || !s->current)
		return 0;
	unsigned char *p = buf_room(s, HEADER + 8 * s->removals.n);
	if (!p) {
		td_fail(err, errlen, "out of memory");
		return -TD_ENOMEM;
	}
	size_t n = put_removals(s, p);
	int rc = write_out(s, n, false, err, errlen);
	if (rc == 0)
		s->removals.n = 0;
	return rc;
}

int td_mqtt_spool_flush(struct td_mqtt_spool *s, char *err, size_t errlen)
{
	pthread_mutex_lock(&s->lock);
	int ret = flush_locked(s, err, errlen);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

size_t td_mqtt_spool_pending(struct td_mqtt_spool *s)
{
	pthread_mutex_lock(&s->lock);
	drain(s);
	size_t n = s->removals.n;
	pthread_mutex_unlock(&s->lock);
	return n;
}

size_t td_mqtt_spool_unclaimed(struct td_mqtt_spool *s)
{
	pthread_mutex_lock(&s->lock);
	drain(s);
	size_t n = s->unclaimed;
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* ---- recovery ---- */

struct recover_call {
	int (*fn)(void *arg, const struct td_mqtt_spooled *m);
	void *arg;
	int rc;
};

static int recover_row(void *arg, const struct td_mqtt_spooled *m, size_t offset, size_t len)
{
	struct recover_call *c = arg;
	(void)offset;
	(void)len;
	c->rc = c->fn(c->arg, m);
	return 0;
}

int td_mqtt_spool_recover(struct td_mqtt_spool *s,
			  int (*fn)(void *arg, const struct td_mqtt_spooled *m), void *arg,
			  char *err, size_t errlen)
{
	pthread_mutex_lock(&s->lock);
	drain(s);
	int claimed = 0;
	unsigned char *rec = NULL;
	size_t cap = 0;
	for (size_t i = 0; i < s->nrows; i++) {
		struct row *r = &s->rows[i];
		if (r->claimed)
			continue;
		if (r->len > cap) {
			unsigned char *b = realloc(rec, r->len);
			if (!b)
				break; /* out of memory: the rest waits for the next recover */
			rec = b;
			cap = r->len;
		}
		char name[32];
		segment_name(name, sizeof name, r->seg->first_id);
		ssize_t got = pread(r->seg->fd, rec, r->len, r->offset);
		struct recover_call call = {.fn = fn, .arg = arg};
		size_t valid;
		char why[200];
		if (got != (ssize_t)r->len ||
		    td_mqtt_spool_parse(rec, r->len, recover_row, NULL, &call, &valid, why,
					sizeof why) < 0) {
			td_fail(err, errlen, "spool %s/%s: cannot read back message %lld: %s",
				s->path, name, r->id,
				got < 0 ? strerror(errno) : "changed on disk");
			claimed = -TD_EIO;
			break;
		}
		if (call.rc != 0)
			break;
		r->claimed = true;
		s->unclaimed--;
		claimed++;
	}
	free(rec);
	pthread_mutex_unlock(&s->lock);
	return claimed;
}

/* ---- opening: reading what a previous run left ---- */

struct loading {
	struct td_mqtt_spool *s;
	struct segment *seg;
	long long max_id;
};

static int load_row(void *arg, const struct td_mqtt_spooled *m, size_t offset, size_t len)
{
	struct loading *l = arg;
	struct td_mqtt_spool *s = l->s;
	if (m->id > l->max_id)
		l->max_id = m->id;
	if (s->nrows && s->rows[s->nrows - 1].id >= m->id)
		return 0; /* not in increasing order: a damaged file; keep the first */
	if (rows_reserve(s) < 0)
		return 1;
	s->rows[s->nrows++] =
	    (struct row){.id = m->id, .seg = l->seg, .offset = (off_t)offset, .len = len};
	s->unclaimed++;
	l->seg->live++;
	return 0;
}

static int load_removed(void *arg, long long id)
{
	struct loading *l = arg;
	struct row *r = row_find(l->s, id);
	if (r)
		row_erase(l->s, r);
	return 0;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return x < y ? -1 : x > y;
}

/* The first ids of the segment files in the directory, sorted, into *out (empty). */
static int list_segments(struct td_mqtt_spool *s, struct ids *out, char *err, size_t errlen)
{
	int fd = dup(s->dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		td_fail(err, errlen, "spool %s: cannot list: %s", s->path, strerror(errno));
		return -TD_EIO;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		char *end;
		if (strlen(e->d_name) != 24 || strcmp(e->d_name + 20, ".seg") != 0)
			continue;
		long long id = strtoll(e->d_name, &end, 10);
		if (end != e->d_name + 20 || id < 0)
			continue;
		if (ids_push(out, id) < 0) {
			closedir(d);
			td_fail(err, errlen, "out of memory");
			return -TD_ENOMEM;
		}
	}
	closedir(d);
	if (out->n)
		qsort(out->v, out->n, sizeof *out->v, cmp_ll);
	return 0;
}

/* Writes the n bytes that do not read at the end of segment name to NAME.cut. */
static bool keep_cut(struct td_mqtt_spool *s, const char *name, const void *bytes, size_t n)
{
	char cut[48];
	snprintf(cut, sizeof cut, "%s.cut", name);
	int fd = openat(s->dirfd, cut, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return false;
	bool ok = write(fd, bytes, n) == (ssize_t)n && fsync(fd) == 0;
	close(fd);
	return ok;
}

/* Reads one segment file into the index. Damage is cut off (the last segment: the torn
 * tail of a crash) or skipped, with a warning in warn. */
static int load_segment(struct td_mqtt_spool *s, long long first_id, bool last, struct loading *l,
			char *warn, size_t warnlen, char *err, size_t errlen)
{
	char name[32];
	segment_name(name, sizeof name, first_id);
	int fd = openat(s->dirfd, name, O_RDWR | O_CLOEXEC);
	struct stat st;
	unsigned char *data = NULL;
	if (fd < 0 || fstat(fd, &st) < 0)
		goto io_fail;
	size_t size = (size_t)st.st_size;
	if (size && !(data = malloc(size))) {
		close(fd);
		td_fail(err, errlen, "out of memory");
		return -TD_ENOMEM;
	}
	for (size_t done = 0; done < size;) {
		ssize_t got = pread(fd, data + done, size - done, (off_t)done);
		if (got <= 0) {
			if (got < 0 && errno == EINTR)
				continue;
			goto io_fail;
		}
		done += (size_t)got;
	}
	if (!segment_add(s, first_id, fd, (off_t)size)) {
		free(data);
		close(fd);
		td_fail(err, errlen, "out of memory");
		return -TD_ENOMEM;
	}
	l->seg = s->current;
	size_t valid;
	char why[200];
	int rc =
	    td_mqtt_spool_parse(data, size, load_row, load_removed, l, &valid, why, sizeof why);
	if (rc == -TD_ENOMEM) {
		free(data);
		td_fail(err, errlen, "out of memory");
		return rc;
	}
	if (rc < 0 && last) {
		/* Appends go on here: what does not read is moved aside (NAME.cut) and cut
		 * off. A crash while writing leaves part of one write; more is damage. */
		bool kept = keep_cut(s, name, data + valid, size - valid);
		if (ftruncate(fd, (off_t)valid) == 0)
			s->current->size = (off_t)valid;
		else
			s->current->sealed = true; /* appends go to a new segment */
		td_fail(warn, warnlen, "spool %s/%s: %s: the %zu bytes from there on %s", s->path,
			name, why, size - valid,
			kept ? "were moved to a .cut file beside it (a crash while writing leaves "
			       "part of its last write)"
			     : "were cut off (they could not be kept)");
	} else if (rc < 0) {
		td_fail(warn, warnlen,
			"spool %s/%s: damaged: %s; what follows it in this file is lost", s->path,
			name, why);
	}
	free(data);
	if (s->current->sealed && first_id > l->max_id)
		l->max_id = first_id; /* the next segment needs a name of its own */
	if (first_id - 1 > l->max_id)
		l->max_id = first_id - 1;
	return 0;
io_fail:
	td_fail(err, errlen, "spool %s/%s: cannot read: %s", s->path, name, strerror(errno));
	free(data);
	if (fd >= 0)
		close(fd);
	return -TD_EIO;
}

static void spool_close(struct td_mqtt_spool *s)
{
	while (s->oldest) {
		struct segment *g = s->oldest;
		s->oldest = g->next;
		segment_close(s, g, false);
	}
	if (s->dirfd >= 0)
		close(s->dirfd); /* lets the lock go */
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->qlock);
	free(s->rows);
	free(s->removals.v);
	free(s->q_removed.v);
	free(s->q_unclaimed.v);
	free(s->spare_removed.v);
	free(s->spare_unclaimed.v);
	td_buf_free(&s->buf);
	free(s->path);
	free(s);
}

/* fsync of the directory that holds path (a new entry in it survives a power loss). */
static int sync_parent(const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];
	if (!slash)
		snprintf(dir, sizeof dir, ".");
	else
		snprintf(dir, sizeof dir, "%.*s", (int)(slash > path ? slash - path : 1), path);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	int e = errno;
	close(fd);
	errno = e;
	return rc;
}

static struct td_mqtt_spool *spool_open(const char *path, enum td_queue_durability d, char *err,
					size_t errlen)
{
	struct td_mqtt_spool *s = calloc(1, sizeof *s);
	if (!s || !(s->path = strdup(path))) {
		free(s);
		td_fail(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->qlock, NULL);
	s->durability = d;
	s->dirfd = -1;
	td_buf_init(&s->buf);
	s->next_id = 1;
	if (d == TD_QUEUE_MEMORY)
		return s;
	if (mkdir(path, 0700) == 0) {
		if (d == TD_QUEUE_FSYNC && sync_parent(path) < 0) {
			td_fail(err, errlen, "spool %s: cannot sync its parent directory: %s", path,
				strerror(errno));
			goto fail;
		}
	} else if (errno != EEXIST) {
		td_fail(err, errlen, "spool %s: cannot create: %s", path, strerror(errno));
		goto fail;
	}
	if ((s->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		td_fail(err, errlen, "spool %s: cannot open: %s", path, strerror(errno));
		goto fail;
	}
	if (flock(s->dirfd, LOCK_EX | LOCK_NB) < 0) {
		td_fail(err, errlen, "spool %s: %s", path,
			errno == EWOULDBLOCK ? "in use by another triggerd process"
					     : strerror(errno));
		goto fail;
	}
	struct ids segs = {0};
	if (list_segments(s, &segs, err, errlen) < 0) {
		free(segs.v);
		goto fail;
	}
	struct loading l = {.s = s};
	char warn[400] = "";
	for (size_t i = 0; i < segs.n; i++) {
		char one[400] = "";
		if (load_segment(s, segs.v[i], i + 1 == segs.n, &l, one, sizeof one, err, errlen) <
		    0) {
			free(segs.v);
			goto fail;
		}
		if (one[0] && !warn[0])
			snprintf(warn, sizeof warn, "%s", one);
	}
	free(segs.v);
	s->next_id = l.max_id + 1;
	drop_dead_segments(s);
	td_fail(err, errlen, "%s", warn);
	return s;
fail:
	spool_close(s);
	return NULL;
}

struct td_mqtt_spool *td_mqtt_spool_acquire(const char *path, enum td_queue_durability d, char *err,
					    size_t errlen)
{
	td_fail(err, errlen, "%s", "");
	pthread_mutex_lock(&registry_lock);
	struct td_mqtt_spool *s = registry;
	while (s && strcmp(s->path, path) != 0)
		s = s->next;
	if (!s && (s = spool_open(path, d, err, errlen))) {
		s->next = registry;
		registry = s;
	}
	if (s)
		s->refs++;
	pthread_mutex_unlock(&registry_lock);
	return s;
}

void td_mqtt_spool_release(struct td_mqtt_spool *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&registry_lock);
	bool last = --s->refs == 0;
	if (last) {
		pthread_mutex_lock(&s->lock);
		drain(s);
		/* A memory spool that still holds rows stays registered, for the next
		 * acquire of its path (the instance a reload starts): nothing else keeps
		 * them. */
		if (s->durability == TD_QUEUE_MEMORY && s->nrows > 0)
			last = false;
		pthread_mutex_unlock(&s->lock);
	}
	if (last) {
		struct td_mqtt_spool **p = &registry;
		while (*p != s)
			p = &(*p)->next;
		*p = s->next;
	}
	pthread_mutex_unlock(&registry_lock);
	if (!last)
		return;
	/* A failure here leaves rows that come again at the next start (at least once). */
	pthread_mutex_lock(&s->lock);
	flush_locked(s, NULL, 0);
	pthread_mutex_unlock(&s->lock);
	spool_close(s);
}
