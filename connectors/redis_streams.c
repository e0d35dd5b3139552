/*
 * The Redis Streams source (kind "redis", hiredis): reads one or more streams as a
 * member of a consumer group (XREADGROUP), created with MKSTREAM when missing. On start
 * it reads its own pending entries first, takes over entries that dead consumers left
 * idle (XAUTOCLAIM after claim_idle), acknowledges (XACK) only settled entries, and
 * moves an entry delivered max_deliveries times to a dead-letter stream.
 *
 * This file holds the options of the kind and their checks, then the runtime. The pure
 * parts (URL, replies, the event of an entry, batches) are in redis_streams_entry.c and
 * redis_streams_url.c.
 *
 * Threads and connections. Each instance has two threads with a blocking hiredis
 * connection each, so that an acknowledgement never waits behind a blocked read:
 *   - the reader runs XREADGROUP (its own pending entries first, then ">" with BLOCK),
 *     XAUTOCLAIM and the clean-up of idle consumers every claim_idle/2, and XPENDING to
 *     learn delivery counts; it builds the events and submits them (with batch_size
 *     above 1 it writes each entry's structured JSON instead of its event, and a batch
 *     joins those texts into the batch event's data without another copy or check);
 *   - the writer runs what settling asks for, pipelined: XACK (coalesced per stream);
 *     dead letters (XADD to the dead-letter stream, then, once that succeeded, XACK: a
 *     crash in between writes a dead letter twice but never loses one, and MULTI would
 *     not help since EXEC runs the XACK even when the XADD fails); XCLAIM to record a
 *     new delivery count, or to keep held entries from looking idle to other
 *     instances; XADD for redis:// destinations; and CLIENT UNBLOCK to wake the reader
 *     when a stream it is not blocked on may be read again.
 * The router calls start/stop/settle/destroy/publish on the engine thread. stop joins
 * the reader; the writer lives on until destroy, so that entries settled while the
 * router drains are still acknowledged. Everything the threads share sits behind one
 * mutex: the per-stream lists of entries held in memory (sorted by id; each WAITING to
 * be submitted, INFLIGHT in a submission, or ACKING until the writer removed it from
 * the group's pending list), the writer's jobs and the flags. Network I/O never happens
 * under the mutex.
 *
 * Order and read-ahead. When a sync trigger reads the source, a stream has one unit (an
 * entry, or a batch of batch_size entries) in flight at a time: the next waits until
 * the previous one settled, and a failed unit is delivered again (with backoff) before
 * anything after it. With async triggers only, units are submitted as fast as the
 * router takes them, up to READAHEAD_UNITS x count entries in flight per stream; when a
 * function's queue is full the router answers busy, the units wait in memory and are
 * offered again every BUSY_PROBE_MS (at most retry_after), and reading stops while the
 * stream holds its share (count entries): memory stays bounded. Which case applies is
 * read from the configuration's triggers at start (the router does not say; see
 * sync_trigger_reads()); a sync answer seen later switches the instance to stream
 * order.
 *
 * Delivery counts are Redis's own (XPENDING): an entry read with ">" is at 1; own
 * pending entries read again and entries taken over by XAUTOCLAIM are counted by
 * Redis. Before a failed entry is delivered again its new count is written back with
 * XCLAIM ... RETRYCOUNT, so a crash does not reset it. An entry that failed on its
 * max_deliveries-th delivery, or that is found with more deliveries than that (it
 * crashed triggerd or its consumer each time), is copied to the dead-letter stream with
 * its count and last error, and acknowledged.
 */
#include <triggerd/config.h>
#include <triggerd/engine.h>
#include <triggerd/errors.h>
#include <triggerd/event.h>
#include <triggerd/function.h>
#include <triggerd/log.h>
#include <triggerd/source.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "../router/json.h"
#include "../router/retry.h"
#include "redis_streams_util.h"

enum redis_start { START_NEW, START_ALL };

struct redis_opts {
	char *url;
	struct td_strings streams;
	char *group;
	int start;	/* enum redis_start: "$" or "0" */
	char *consumer; /* NULL: HOSTNAME-PID */
	long long count;
	long long block_ms;
	long long claim_idle_ms;
	long long max_deliveries;
	char *dead_letter_stream; /* "{stream}" stands for the stream's key */
	long long batch_size;
	long long batch_window_ms;
	long long backoff_base_ms;
	long long backoff_cap_ms;
	long long destination_maxlen;
	long long forget_after_ms;
	long long reconnect_min_ms;
	long long reconnect_max_ms;
};

#define O(field) offsetof(struct redis_opts, field)

static const struct td_option redis_options[] = {
    {.type = TD_OPT_STRING,
     .name = "url",
     .flags = TD_OPT_REQUIRED,
     .offset = O(url),
     .desc = "redis://[user:password@]host:port/db, unix:///path?db=N, or the path of a unix "
	     "socket (/run/redis/redis.sock). User and password are percent-decoded; keep the "
	     "password out of the file with ${NAME}. rediss:// (TLS) is not supported by this "
	     "build."},
    {.type = TD_OPT_STRINGS,
     .name = "streams",
     .flags = TD_OPT_REQUIRED,
     .offset = O(streams),
     .desc = "Stream keys to read (one or more)."},
    {.type = TD_OPT_STRING,
     .name = "group",
     .def = "triggerd",
     .offset = O(group),
     .desc = "Consumer group, created with MKSTREAM when missing; instances in one group "
	     "share the entries."},
    {.type = TD_OPT_ENUM,
     .name = "start",
     .def = "$",
     .offset = O(start),
     .choices = "$|0",
     .desc = "Where a new group starts: $ (new entries only) or 0 (the whole stream)."},
    {.type = TD_OPT_STRING,
     .name = "consumer",
     .offset = O(consumer),
     .desc = "Consumer name in the group, unique per instance. Default: "
	     "\"HOSTNAME-PID\"."},
    {.type = TD_OPT_INT,
     .name = "count",
     .def = "100",
     .offset = O(count),
     .min = 1,
     .max = 10000,
     .desc = "Entries per read (XREADGROUP COUNT); a stream holds at most about this many "
	     "(or batch_size) entries waiting in memory."},
    {.type = TD_OPT_DURATION,
     .name = "block",
     .def = "2s",
     .offset = O(block_ms),
     .min = 1,
     .max = 60000,
     .desc = "How long a read waits for new entries (XREADGROUP BLOCK)."},
    {.type = TD_OPT_DURATION,
     .name = "claim_idle",
     .def = "60s",
     .offset = O(claim_idle_ms),
     .min = 1000,
     .max = 86400000,
     .desc = "Pending entries of other consumers idle this long are taken over "
	     "(XAUTOCLAIM, every claim_idle/2); entries this instance holds are kept from "
	     "looking idle."},
    {.type = TD_OPT_INT,
     .name = "max_deliveries",
     .def = "5",
     .offset = O(max_deliveries),
     .min = 1,
     .max = 1000,
     .desc = "Deliveries of one entry before it goes to the dead-letter stream with its "
	     "delivery count and last error."},
    {.type = TD_OPT_STRING,
     .name = "dead_letter_stream",
     .def = "{stream}:dlq",
     .offset = O(dead_letter_stream),
     .desc = "Stream that receives entries delivered max_deliveries times; {stream} is "
	     "the key of the stream they came from."},
    {.type = TD_OPT_INT,
     .name = "batch_size",
     .def = "1",
     .offset = O(batch_size),
     .min = 1,
     .max = 10000,
     .desc = "Most entries per invocation. Above 1 the function gets one event of type "
	     "triggerd.redis.batch whose data is the list of the entries' events, in order; "
	     "a sync function may answer {\"batchItemFailures\": [{\"itemIdentifier\": "
	     "ID}]} to have only those entries delivered again."},
    {.type = TD_OPT_DURATION,
     .name = "batch_window",
     .def = "0s",
     .offset = O(batch_window_ms),
     .min = 0,
     .max = 300000,
     .desc = "How long to wait to fill a batch; 0s sends what one read returned."},
    {.type = TD_OPT_DURATION,
     .name = "backoff.base",
     .def = "1s",
     .offset = O(backoff_base_ms),
     .min = 1,
     .max = 3600000,
     .desc = "Delay before an entry whose sync invocation failed is delivered again; it "
	     "doubles with each delivery (with jitter) up to backoff.cap."},
    {.type = TD_OPT_DURATION,
     .name = "backoff.cap",
     .def = "1m",
     .offset = O(backoff_cap_ms),
     .min = 1,
     .max = 86400000,
     .desc = "Longest delay before an entry is delivered again."},
    {.type = TD_OPT_INT,
     .name = "destination_maxlen",
     .def = "1000000",
     .offset = O(destination_maxlen),
     .min = 0,
     .max = 1e15,
     .desc = "redis://SOURCE/stream destinations through this source add records with "
	     "XADD MAXLEN ~ this many; 0: no trimming."},
    {.type = TD_OPT_DURATION,
     .name = "forget_consumers_after",
     .def = "1h",
     .offset = O(forget_after_ms),
     .min = 0,
     .max = 31536000000.0,
     .desc = "Other consumers of the group with no pending entries, idle this long, are "
	     "deleted (XGROUP DELCONSUMER, checked every claim_idle/2), so that instances "
	     "that came and went (the default consumer name holds the PID) do not pile up; "
	     "0s: never."},
    {.type = TD_OPT_DURATION,
     .name = "reconnect.min",
     .def = "1s",
     .offset = O(reconnect_min_ms),
     .min = 100,
     .max = 60000,
     .desc = "First delay before reconnecting; it doubles up to reconnect.max."},
    {.type = TD_OPT_DURATION,
     .name = "reconnect.max",
     .def = "60s",
     .offset = O(reconnect_max_ms),
     .min = 100,
     .max = 3600000,
     .desc = "Longest delay between reconnection attempts."},
    {0},
};

/* A key, group or consumer name: printable, no white space (they go into log lines,
 * event attributes and CLIENT SETNAME). */
static const char *name_problem(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t left = strlen(s);
	if (!left)
		return "is empty";
	while (left) {
		unsigned cp;
		size_t n = td_utf8_decode(p, left, &cp);
		if (!n)
			return "is not valid UTF-8";
		if (cp == ' ' || cp == '\t' || cp == '\r' || cp == '\n')
			return "holds white space";
		if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
			return "holds a control character";
		if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) == 0xfffe)
			return "holds a Unicode noncharacter";
		p += n;
		left -= n;
	}
	return NULL;
}

static void redis_check(const void *p, const char *file, int line, struct td_diag *diag)
{
	const struct redis_opts *o = p;
	char err[256];
	struct td_redis_url url;
	const char *why;

	if (td_redis_url_parse(o->url, &url, err, sizeof err) < 0)
		td_diag_add(diag, file, line, "option 'url': %s", err);
	for (size_t i = 0; i < o->streams.n; i++) {
		if ((why = name_problem(o->streams.v[i])))
			td_diag_add(diag, file, line, "option 'streams': \"%.200s\" %s",
				    o->streams.v[i], why);
		for (size_t j = 0; j < i; j++)
			if (strcmp(o->streams.v[i], o->streams.v[j]) == 0)
				td_diag_add(diag, file, line,
					    "option 'streams': \"%.200s\" is listed twice",
					    o->streams.v[i]);
		char *dlq = td_redis_dead_letter_key(o->dead_letter_stream, o->streams.v[i]);
		if (dlq)
			for (size_t j = 0; j < o->streams.n; j++)
				if (strcmp(dlq, o->streams.v[j]) == 0)
					td_diag_add(
					    diag, file, line,
					    "option 'dead_letter_stream': the dead letters "
					    "of \"%.200s\" would go to \"%.200s\", which is "
					    "read",
					    o->streams.v[i], dlq);
		free(dlq);
	}
	if (o->streams.n == 0)
		td_diag_add(diag, file, line, "option 'streams': name at least one stream");
	if ((why = name_problem(o->group)))
		td_diag_add(diag, file, line, "option 'group': \"%.200s\" %s", o->group, why);
	if (o->consumer && (why = name_problem(o->consumer)))
		td_diag_add(diag, file, line, "option 'consumer': \"%.200s\" %s", o->consumer, why);
	if ((why = name_problem(o->dead_letter_stream)))
		td_diag_add(diag, file, line, "option 'dead_letter_stream': \"%.200s\" %s",
			    o->dead_letter_stream, why);
	if (o->batch_window_ms > 0 && o->batch_size == 1)
		td_diag_add(diag, file, line,
			    "option 'batch_window' needs option 'batch_size' above 1");
	if (o->reconnect_max_ms < o->reconnect_min_ms)
		td_diag_add(diag, file, line,
			    "option 'reconnect.max' must not be shorter than reconnect.min");
	if (o->backoff_cap_ms < o->backoff_base_ms)
		td_diag_add(diag, file, line,
			    "option 'backoff.cap' must not be shorter than backoff.base");
}

/* ---- Runtime ---------------------------------------------------------------------- */

#define CONNECT_TIMEOUT_MS 2000
#define WRITER_TIMEOUT_MS  5000
#define DRAIN_MS	   3000 /* destroy: how long the writer may finish its work */
#define ACK_CHUNK	   512	/* ids per XACK */
#define READAHEAD_UNITS	   4	/* async: in flight per stream, in units of count entries */
#define MAX_RESPONSE	   4096 /* bytes of a failed function's answer kept for a dead letter */
#define BUSY_PROBE_MS	   50	/* busy: offer held entries again after at most this */

enum entry_state { WAITING, INFLIGHT, ACKING };

struct stream;

/* An entry held in memory: read and not yet removed from the group's pending list. */
struct entry {
	struct entry *prev, *next; /* in its stream, by id */
	struct entry *next_ack;	   /* in the stream's ack list */
	struct stream *st;
	struct td_redis_entry *e;
	struct td_event *ev; /* the event of the next (or current) delivery, or NULL */
	char *json;	     /* batch_size > 1: that event's structured JSON instead, or NULL */
	size_t json_len;
	int deliveries; /* count of the next (or current) delivery */
	int marked;	/* the count Redis holds */
	enum entry_state state;
	bool dead; /* ACKING through the dead-letter stream */
	long long not_before_ms;
	long long read_ms;
	long long touched_ms; /* when Redis last reset its idle time */
	char *error;	      /* the last failure */
	char *response;	      /* the last failed answer (MAX_RESPONSE bytes at most) */
};

struct stream {
	const char *key;
	char *dlq;
	struct entry *head, *tail;
	int waiting, inflight, acking;
	struct entry *ack_head, *ack_tail; /* ACKING entries to XACK */
	bool history_done;
	char history_cursor[TD_REDIS_ID_MAX];
	char claim_cursor[TD_REDIS_ID_MAX];
	bool in_read; /* part of the reader's blocked XREADGROUP */
};

enum job_kind { JOB_UNBLOCK, JOB_DEAD, JOB_MARK, JOB_TOUCH, JOB_PUBLISH };

/* Work for the writer besides acknowledgements. */
struct job {
	struct job *next;
	enum job_kind kind;
	struct redis_ctx *ctx;
	struct stream *st;
	struct entry *entry;	      /* DEAD */
	char (*ids)[TD_REDIS_ID_MAX]; /* MARK (one), TOUCH */
	size_t nids;
	int count;	       /* MARK: the delivery count */
	long long client_id;   /* UNBLOCK */
	char *target, *record; /* PUBLISH */
	size_t len;
	void (*done)(void *arg, bool ok, const char *error);
	void *arg;
	bool ok;
	char error[256];
};

/* The handle of one submission: consecutive units of one stream. */
struct sub {
	struct redis_ctx *ctx;
	struct stream *st;
	int nunits;
	int n;
	struct entry *entries[];
};

struct redis_ctx {
	struct td_source *src;
	const struct redis_opts *o;
	const char *scope;
	struct td_redis_url url;
	char where[300]; /* "127.0.0.1:6379", for messages */
	char consumer[256];
	char source_attr[300];
	char client_name[200];
	struct stream *streams;
	size_t nstreams;
	int threshold; /* a stream is read while fewer entries wait */
	int cap;       /* async: entries in flight or acking per stream */
	long long claim_every_ms, touch_every_ms;

	pthread_mutex_t lock;
	pthread_cond_t reader_cond, writer_cond;
	bool lock_ready;
	pthread_t reader, writer;
	bool reader_running, writer_running;
	/* under lock: */
	bool ordered;
	bool stopped; /* stop() ran: nothing more is submitted */
	bool reader_stop;
	bool writer_stop;
	long long writer_deadline_ms;
	redisContext *rd;    /* the reader's connection, for stop() to shut down */
	bool reader_waiting; /* in reader_cond */
	bool blocking;	     /* in XREADGROUP ... BLOCK */
	bool unblock_sent;
	bool can_unblock;
	long long reader_id; /* CLIENT ID of the reader's connection */
	bool writer_connected;
	char writer_error[256];
	struct job *jobs, *jobs_tail;
	/* engine thread only: */
	struct td_timer *timer;
	long long timer_at;
	/* rate limits of repeated errors: under lock, the reader's, the writer's */
	struct td_log_ratelimit limit, limit_r, limit_w;
};

/* ---- helpers ---- */

static void lock(struct redis_ctx *c)
{
	pthread_mutex_lock(&c->lock);
}

static void unlock(struct redis_ctx *c)
{
	pthread_mutex_unlock(&c->lock);
}

static long long min_deadline(long long a, long long b)
{
	if (a <= 0)
		return b;
	if (b <= 0)
		return a;
	return a < b ? a : b;
}

/* Waits on cond until woken or until the monotonic time deadline_ms (0: no limit). */
static void wait_until(pthread_cond_t *cond, pthread_mutex_t *m, long long deadline_ms)
{
	if (deadline_ms <= 0) {
		pthread_cond_wait(cond, m);
		return;
	}
	struct timespec ts = {.tv_sec = deadline_ms / 1000,
			      .tv_nsec = (deadline_ms % 1000) * 1000000L};
	pthread_cond_timedwait(cond, m, &ts);
}

static char *dup_text(const char *s, size_t max)
{
	if (!s)
		return NULL;
	size_t n = strnlen(s, max);
	char *d = malloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

/*
 * Whether a sync trigger reads this source. The router keeps that to itself; the
 * td_global that td_source_global() returns is the `global` member of the td_config the
 * source was loaded from, whose triggers say it. (The lead is asked for a
 * td_source_... call that answers this from the router's current rule set.)
 */
static bool sync_trigger_reads(struct td_source *src)
{
	return td_source_has_sync_triggers(src);
}

static void entry_free(struct entry *en)
{
	td_event_unref(en->ev);
	free(en->json);
	free(en->e);
	free(en->error);
	free(en->response);
	free(en);
}

static void entry_unlink(struct entry *en)
{
	struct stream *st = en->st;
	if (en->prev)
		en->prev->next = en->next;
	else
		st->head = en->next;
	if (en->next)
		en->next->prev = en->prev;
	else
		st->tail = en->prev;
	en->prev = en->next = NULL;
}

static struct entry *find_entry(struct stream *st, const struct td_redis_id *id)
{
	for (struct entry *en = st->tail; en; en = en->prev) {
		int c = td_redis_id_cmp(&en->e->id, id);
		if (c == 0)
			return en;
		if (c < 0)
			return NULL;
	}
	return NULL;
}

/* Inserts en in id order (new entries go to the tail; walk from there). */
static void entry_insert(struct stream *st, struct entry *en)
{
	struct entry *after = st->tail;
	while (after && td_redis_id_cmp(&after->e->id, &en->e->id) > 0)
		after = after->prev;
	en->st = st;
	en->prev = after;
	en->next = after ? after->next : st->head;
	if (en->next)
		en->next->prev = en;
	else
		st->tail = en;
	if (after)
		after->next = en;
	else
		st->head = en;
}

static void push_job(struct redis_ctx *c, struct job *j, bool front)
{
	j->ctx = c;
	if (front) {
		j->next = c->jobs;
		c->jobs = j;
		if (!c->jobs_tail)
			c->jobs_tail = j;
	} else {
		j->next = NULL;
		if (c->jobs_tail)
			c->jobs_tail->next = j;
		else
			c->jobs = j;
		c->jobs_tail = j;
	}
	pthread_cond_signal(&c->writer_cond);
}

static void job_free(struct job *j)
{
	if (!j)
		return;
	free(j->ids);
	free(j->target);
	free(j->record);
	free(j);
}

/* Whether the reader should read stream st now (lock held). */
static bool wants_read(const struct redis_ctx *c, const struct stream *st)
{
	return st->waiting < c->threshold && st->inflight + st->acking < c->cap;
}

/* Lets the reader see that a stream may be read again (lock held). */
static void wake_reader(struct redis_ctx *c)
{
	if (c->reader_waiting) {
		pthread_cond_signal(&c->reader_cond);
		return;
	}
	if (!c->blocking || c->unblock_sent || !c->can_unblock || c->reader_id <= 0)
		return;
	for (size_t i = 0; i < c->nstreams; i++) {
		struct stream *st = &c->streams[i];
		if (!st->in_read && st->history_done && wants_read(c, st)) {
			struct job *j = calloc(1, sizeof *j);
			if (!j)
				return;
			j->kind = JOB_UNBLOCK;
			j->client_id = c->reader_id;
			c->unblock_sent = true;
			push_job(c, j, true);
			return;
		}
	}
}

/* ---- submitting ---- */

/* Makes the event of en's next delivery when it has none (lock held, or en not yet
 * shared: then limit is the calling thread's). */
static struct td_event *entry_event(struct redis_ctx *c, struct entry *en,
				    struct td_log_ratelimit *limit)
{
	char err[256];
	if (!en->ev) {
		en->ev = td_redis_entry_event(c->source_attr, en->st->key, en->e, en->deliveries,
					      err, sizeof err);
		if (!en->ev && td_log_ratelimit(limit, 5, 10000))
			td_logs_error(c->scope, "entry %s/%s: %s", en->st->key, en->e->id_text,
				      err);
	}
	return en->ev;
}

/* Makes the structured JSON of en's next delivery when it has none, for a batch (lock
 * held, or en not yet shared, as entry_event). false when out of memory. */
static bool entry_json(struct redis_ctx *c, struct entry *en, struct td_log_ratelimit *limit)
{
	if (en->json)
		return true;
	struct td_buf b = {0};
	if (td_redis_entry_json(c->source_attr, en->st->key, en->e, en->deliveries, &b) < 0) {
		td_buf_free(&b);
		if (td_log_ratelimit(limit, 5, 10000))
			td_logs_error(c->scope, "entry %s/%s: out of memory", en->st->key,
				      en->e->id_text);
		return false;
	}
	en->json = td_buf_steal(&b, &en->json_len);
	return en->json != NULL;
}

/* td_json_array_join's view of picked entries (their JSON made). */
static const char *picked_json(const void *arg, size_t i, size_t *len)
{
	struct entry *const *picked = arg;
	*len = picked[i]->json_len;
	return picked[i]->json;
}

/*
 * The batch event of picked[0..count): the entries' JSON joined into one array written
 * once into a buffer of its exact size and handed to the event uncopied. NULL when an
 * entry's JSON cannot be made or the event fails (logged). Lock held.
 */
static struct td_event *batch_event(struct redis_ctx *c, struct stream *st,
				    struct entry *const *picked, int count)
{
	for (int k = 0; k < count; k++)
		if (!entry_json(c, picked[k], &c->limit))
			return NULL;
	size_t total;
	char *data = td_json_array_join((size_t)count, picked_json, picked, &total);
	char err[256];
	if (!data) {
		if (td_log_ratelimit(&c->limit, 5, 10000))
			td_logs_error(c->scope, "batch of %s: out of memory", st->key);
		return NULL;
	}
	struct td_event *ev = td_redis_batch_event_json(
	    c->source_attr, st->key, picked[0]->e->id_text, picked[count - 1]->e->id_text,
	    (size_t)count, data, total, err, sizeof err);
	if (!ev && td_log_ratelimit(&c->limit, 5, 10000))
		td_logs_error(c->scope, "batch of %s: %s", st->key, err);
	return ev;
}

/* Records a new delivery count in Redis before the entry goes out again (lock held). */
static void mark_delivery(struct redis_ctx *c, struct entry *en, long long now)
{
	if (en->deliveries <= en->marked)
		return;
	struct job *j = calloc(1, sizeof *j);
	char(*ids)[TD_REDIS_ID_MAX] = malloc(sizeof *ids);
	if (!j || !ids) {
		free(j);
		free(ids);
		return;
	}
	memcpy(ids[0], en->e->id_text, TD_REDIS_ID_MAX);
	j->kind = JOB_MARK;
	j->st = en->st;
	j->ids = ids;
	j->nids = 1;
	j->count = en->deliveries;
	en->marked = en->deliveries;
	en->touched_ms = now;
	push_job(c, j, false);
}

/*
 * Submits what may go of stream st: the next unit when it keeps order and nothing is in
 * flight, else every ready unit up to the read-ahead bound. Returns the earliest time at
 * which something held back becomes ready (0: none). Lock held.
 */
static long long pump_stream(struct redis_ctx *c, struct stream *st, long long now)
{
	const struct redis_opts *o = c->o;
	int unit = (int)o->batch_size;
	long long deadline = 0;
	for (;;) {
		if (c->ordered && st->inflight > 0)
			return deadline;
		/* Async: submissions of about count entries fit into a nearly full queue. */
		int room = c->ordered ? unit : c->cap - st->inflight - st->acking;
		if (!c->ordered && room > c->threshold)
			room = c->threshold;
		if (room <= 0 || st->waiting == 0)
			return deadline;
		/* The first WAITING entries in order, up to room, none held back. */
		struct entry *pick[256];
		struct entry **picked = room <= 256 ? pick : malloc((size_t)room * sizeof *picked);
		if (!picked)
			return deadline;
		int n = 0;
		for (struct entry *en = st->head; en && n < room; en = en->next) {
			if (en->state != WAITING)
				continue;
			if (en->not_before_ms > now) {
				deadline = min_deadline(deadline, en->not_before_ms);
				break;
			}
			picked[n++] = en;
		}
		/* An incomplete last batch waits for its window. */
		int tail = n % unit;
		if (unit > 1 && tail && o->batch_window_ms > 0) {
			long long due = picked[n - tail]->read_ms + o->batch_window_ms;
			if (due > now) {
				deadline = min_deadline(deadline, due);
				n -= tail;
			}
		}
		if (n == 0) {
			if (picked != pick)
				free(picked);
			return deadline;
		}
		int nunits = (n + unit - 1) / unit;
		struct td_event **events = calloc((size_t)nunits, sizeof *events);
		struct sub *s = malloc(sizeof *s + (size_t)n * sizeof s->entries[0]);
		int made = 0;
		if (!events || !s)
			goto fail;
		for (int u = 0; u < nunits; u++) {
			int from = u * unit, count = n - from < unit ? n - from : unit;
			if (unit == 1) {
				struct td_event *ev = entry_event(c, picked[from], &c->limit);
				if (!ev)
					goto fail;
				events[u] = td_event_ref(ev);
			} else {
				events[u] = batch_event(c, st, picked + from, count);
				if (!events[u])
					goto fail;
			}
			made++;
		}
		s->ctx = c;
		s->st = st;
		s->nunits = nunits;
		s->n = n;
		for (int k = 0; k < n; k++) {
			struct entry *en = picked[k];
			s->entries[k] = en;
			en->state = INFLIGHT;
			mark_delivery(c, en, now);
		}
		st->waiting -= n;
		st->inflight += n;
		td_source_submit(c->src, events, nunits, s);
		free(events);
		if (picked != pick)
			free(picked);
		continue;
	fail:
		/* Out of memory or an entry that cannot become an event: try again later. */
		for (int u = 0; u < made; u++)
			td_event_unref(events[u]);
		free(events);
		free(s);
		if (picked != pick)
			free(picked);
		return min_deadline(deadline, now + 1000);
	}
}

static long long pump(struct redis_ctx *c, long long now)
{
	long long deadline = 0;
	if (c->stopped)
		return 0;
	for (size_t i = 0; i < c->nstreams; i++)
		deadline = min_deadline(deadline, pump_stream(c, &c->streams[i], now));
	return deadline;
}

static void timer_fired(void *arg);

/* Engine thread: makes sure the pump runs again at deadline. */
static void arm_timer(struct redis_ctx *c, long long deadline)
{
	if (deadline <= 0)
		return;
	if (c->timer && c->timer_at <= deadline)
		return;
	if (c->timer)
		td_timer_cancel(td_source_engine(c->src), c->timer);
	long long delay = deadline - td_now_ms();
	c->timer = td_timer_add(td_source_engine(c->src), delay > 0 ? delay : 0, timer_fired, c);
	c->timer_at = deadline;
}

static void timer_fired(void *arg)
{
	struct redis_ctx *c = arg;
	c->timer = NULL;
	lock(c);
	long long deadline = pump(c, td_now_ms());
	wake_reader(c);
	unlock(c);
	arm_timer(c, deadline);
}

/* ---- settling (engine thread) ---- */

static void ack_entry(struct redis_ctx *c, struct entry *en)
{
	struct stream *st = en->st;
	en->state = ACKING;
	st->acking++;
	en->next_ack = NULL;
	if (st->ack_tail)
		st->ack_tail->next_ack = en;
	else
		st->ack_head = en;
	st->ack_tail = en;
	pthread_cond_signal(&c->writer_cond);
}

static void dead_letter(struct redis_ctx *c, struct entry *en)
{
	struct job *j = calloc(1, sizeof *j);
	struct stream *st = en->st;
	td_logs_warn(c->scope, "entry %s/%s goes to %s after %d deliveries: %s", st->key,
		     en->e->id_text, st->dlq, en->deliveries, en->error ? en->error : "failed");
	en->state = ACKING;
	en->dead = true;
	st->acking++;
	if (!j) {
		/* It stays pending in Redis and is taken over again after claim_idle. */
		entry_unlink(en);
		st->acking--;
		entry_free(en);
		return;
	}
	j->kind = JOB_DEAD;
	j->st = st;
	j->entry = en;
	push_job(c, j, false);
}

/*
 * en's delivery failed: deliver it again after a backoff, or dead-letter it. *delay is
 * the backoff of this settlement (-1: not drawn yet), one for all its entries, so that
 * the failed entries of a batch go again together.
 */
static void fail_entry(struct redis_ctx *c, struct entry *en, const char *error,
		       const struct td_result *res, long long now, long long *delay)
{
	struct stream *st = en->st;
	free(en->error);
	en->error = dup_text(error ? error : "failed", 1024);
	if (res && res->body && res->body_len) {
		free(en->response);
		en->response = dup_text(res->body, res->body_len < MAX_RESPONSE ? res->body_len
										: MAX_RESPONSE);
	}
	st->inflight--;
	if (en->deliveries >= c->o->max_deliveries) {
		dead_letter(c, en);
		return;
	}
	if (*delay < 0)
		*delay =
		    td_backoff_ms(en->deliveries, c->o->backoff_base_ms, c->o->backoff_cap_ms, 0);
	td_logs_info(c->scope, "entry %s/%s failed on delivery %d of %lld (%s); again in %lld ms",
		     st->key, en->e->id_text, en->deliveries, c->o->max_deliveries,
		     en->error ? en->error : "failed", *delay);
	en->deliveries++;
	td_event_unref(en->ev);
	en->ev = NULL; /* made again with the new count */
	free(en->json);
	en->json = NULL;
	en->state = WAITING;
	en->not_before_ms = now + *delay;
	st->waiting++;
}

static void redis_settle(struct td_source *src, void *handle, const struct td_settlement *s)
{
	struct redis_ctx *c = td_source_ctx(src);
	struct sub *sub = handle;
	struct stream *st = sub->st;
	long long now = td_now_ms(), delay = -1;
	bool stack_failed[64];
	bool *failed = sub->n <= 64 ? stack_failed : calloc((size_t)sub->n, sizeof *failed);
	char why[300] = "";
	const char *ids_stack[64];
	const char **ids = sub->n <= 64 ? ids_stack : malloc((size_t)sub->n * sizeof *ids);

	lock(c);
	if (s->status == TD_SETTLE_DONE && c->o->batch_size > 1 && sub->nunits == 1 && s->result &&
	    s->result->body && failed && ids) {
		for (int k = 0; k < sub->n; k++)
			ids[k] = sub->entries[k]->e->id_text;
		int k = td_redis_batch_failures(s->result->body, s->result->body_len, st->key, ids,
						(size_t)sub->n, failed, why, sizeof why);
		if (k < 0) {
			td_logs_warn(c->scope, "batch %s/%s..: %s; the whole batch failed", st->key,
				     sub->entries[0]->e->id_text, why);
			for (int i = 0; i < sub->n; i++)
				failed[i] = true;
		} else if (k > 0) {
			snprintf(why, sizeof why, "reported in batchItemFailures");
		}
	} else if (failed) {
		for (int i = 0; i < sub->n; i++)
			failed[i] = false;
	}
	if (!c->ordered && s->result && !c->stopped) {
		c->ordered = true;
		td_logs_warn(c->scope, "a sync trigger answered: streams are read in order from "
				       "now on");
	}
	for (int i = 0; i < sub->n; i++) {
		struct entry *en = sub->entries[i];
		if (c->stopped && s->status != TD_SETTLE_DONE) {
			/* Stays pending in Redis: the next instance reads it again. */
			st->inflight--;
			entry_unlink(en);
			entry_free(en);
			continue;
		}
		switch (s->status) {
		case TD_SETTLE_DONE:
			if (failed && failed[i])
				fail_entry(c, en, why, NULL, now, &delay);
			else {
				st->inflight--;
				ack_entry(c, en);
			}
			break;
		case TD_SETTLE_FAILED:
			fail_entry(c, en,
				   s->result && s->result->error ? s->result->error
				   : s->reason			 ? s->reason
								 : "function failed",
				   s->result, now, &delay);
			break;
		case TD_SETTLE_BUSY:
			/* Offered again soon: the router answers busy at no cost while it is
			 * full, and waiting its whole retry_after would leave the function idle
			 * once its queue drained. */
			st->inflight--;
			st->waiting++;
			en->state = WAITING;
			en->not_before_ms =
			    now + (s->retry_after_ms > 0 && s->retry_after_ms < BUSY_PROBE_MS
				       ? s->retry_after_ms
				       : BUSY_PROBE_MS);
			break;
		}
	}
	if (s->status == TD_SETTLE_BUSY && td_log_ratelimit(&c->limit, 5, 10000))
		td_logs_info(c->scope, "%s: %d entries of %s wait %lld ms",
			     s->reason ? s->reason : "busy", sub->n, st->key, s->retry_after_ms);
	long long deadline = pump(c, now);
	wake_reader(c);
	unlock(c);
	if (failed != stack_failed)
		free(failed);
	if (ids != ids_stack)
		free(ids);
	free(sub);
	arm_timer(c, deadline);
}

/* ---- connections ---- */

static redisReply *command(redisContext *rc, int argc, const char **argv, const size_t *lens)
{
	return redisCommandArgv(rc, argc, argv, lens);
}

/* Runs a command whose only interest is success; 0, or -TD_EIO with why. */
static int simple(redisContext *rc, int argc, const char **argv, char *why, size_t whylen,
		  const char *what)
{
	redisReply *r = command(rc, argc, argv, NULL);
	if (!r) {
		snprintf(why, whylen, "%s: %s", what, rc->errstr[0] ? rc->errstr : "no answer");
		return -TD_EIO;
	}
	int rc2 = 0;
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(why, whylen, "%s: %.*s", what, (int)(r->len < 200 ? r->len : 200),
			 r->str ? r->str : "");
		rc2 = -TD_EINVAL;
	}
	freeReplyObject(r);
	return rc2;
}

static void set_timeout(redisContext *rc, long long ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	redisSetTimeout(rc, tv);
}

/*
 * Opens a connection: AUTH, SELECT, CLIENT SETNAME. publish: stores it in *slot under the
 * lock right after the TCP connection, so that stop() can shut it down while the setup
 * waits. NULL with the reason in why.
 */
static redisContext *open_conn(struct redis_ctx *c, const char *role, redisContext **slot,
			       char *why, size_t whylen)
{
	struct timeval tv = {.tv_sec = CONNECT_TIMEOUT_MS / 1000,
			     .tv_usec = (CONNECT_TIMEOUT_MS % 1000) * 1000};
	redisContext *rc = c->url.unix_socket
			       ? redisConnectUnixWithTimeout(c->url.path, tv)
			       : redisConnectWithTimeout(c->url.host, c->url.port, tv);
	if (!rc) {
		snprintf(why, whylen, "cannot connect to %s: out of memory", c->where);
		return NULL;
	}
	if (rc->err) {
		snprintf(why, whylen, "cannot connect to %s: %s", c->where, rc->errstr);
		redisFree(rc);
		return NULL;
	}
	if (slot) {
		lock(c);
		if (c->reader_stop) {
			unlock(c);
			redisFree(rc);
			snprintf(why, whylen, "stopping");
			return NULL;
		}
		*slot = rc;
		unlock(c);
	}
	set_timeout(rc, WRITER_TIMEOUT_MS);
	if (!c->url.unix_socket)
		redisEnableKeepAlive(rc);
	char what[400];
	if (c->url.has_password) {
		const char *argv[3] = {"AUTH", c->url.user, c->url.password};
		int argc = c->url.user[0] ? 3 : 2;
		if (argc == 2)
			argv[1] = c->url.password;
		snprintf(what, sizeof what, "authentication failed at %s", c->where);
		if (simple(rc, argc, argv, why, whylen, what) < 0)
			goto fail;
	}
	if (c->url.db != 0) {
		char db[24];
		snprintf(db, sizeof db, "%lld", c->url.db);
		const char *argv[2] = {"SELECT", db};
		snprintf(what, sizeof what, "cannot select db %lld at %s", c->url.db, c->where);
		if (simple(rc, 2, argv, why, whylen, what) < 0)
			goto fail;
	}
	char name[260];
	snprintf(name, sizeof name, "%s-%s", c->client_name, role);
	const char *argv[3] = {"CLIENT", "SETNAME", name};
	redisReply *r = command(rc, 3, argv, NULL);
	if (!r) {
		snprintf(why, whylen, "connection to %s lost: %s", c->where, rc->errstr);
		goto fail;
	}
	freeReplyObject(r); /* an ACL without CLIENT is fine */
	return rc;
fail:
	if (slot) {
		lock(c);
		*slot = NULL;
		unlock(c);
	}
	redisFree(rc);
	return NULL;
}

/* ---- the writer ---- */

static void publish_report(void *arg)
{
	struct job *j = arg;
	j->done(j->arg, j->ok, j->ok ? NULL : j->error);
	job_free(j);
}

static void finish_publish(struct job *j)
{
	if (td_engine_call(td_source_engine(j->ctx->src), publish_report, j) < 0)
		job_free(j); /* the engine is gone: nobody waits any more */
}

/* The commands of one job; returns how many replies they produce, or -1. */
static int append_job(struct redis_ctx *c, redisContext *rc, struct job *j)
{
	const struct redis_opts *o = c->o;
	char num[32];
	switch (j->kind) {
	case JOB_UNBLOCK: {
		snprintf(num, sizeof num, "%lld", j->client_id);
		const char *argv[3] = {"CLIENT", "UNBLOCK", num};
		return redisAppendCommandArgv(rc, 3, argv, NULL) == REDIS_OK ? 1 : -1;
	}
	case JOB_MARK:
	case JOB_TOUCH: {
		size_t argc = 5 + j->nids + 3;
		const char **argv = malloc(argc * sizeof *argv);
		if (!argv)
			return -1;
		size_t k = 0;
		argv[k++] = "XCLAIM";
		argv[k++] = j->st->key;
		argv[k++] = o->group;
		argv[k++] = c->consumer;
		argv[k++] = "0";
		for (size_t i = 0; i < j->nids; i++)
			argv[k++] = j->ids[i];
		if (j->kind == JOB_MARK) {
			snprintf(num, sizeof num, "%d", j->count);
			argv[k++] = "RETRYCOUNT";
			argv[k++] = num;
		}
		argv[k++] = "JUSTID";
		int rc2 = redisAppendCommandArgv(rc, (int)k, argv, NULL);
		free(argv);
		return rc2 == REDIS_OK ? 1 : -1;
	}
	case JOB_DEAD: {
		struct entry *en = j->entry;
		const struct td_redis_entry *e = en->e;
		size_t argc = 3 + 2 * 7 + 2 + 2 * e->nfields;
		const char **argv = malloc(argc * sizeof *argv);
		size_t *lens = malloc(argc * sizeof *lens);
		if (!argv || !lens) {
			free(argv);
			free(lens);
			return -1;
		}
		char deliveries[24], when[40];
		snprintf(deliveries, sizeof deliveries, "%d", en->deliveries);
		snprintf(when, sizeof when, "%lld", td_wall_ms());
		size_t k = 0;
#define ARG(s) (argv[k] = (s), lens[k] = strlen(argv[k]), k++)
		ARG("XADD");
		ARG(j->st->dlq);
		ARG("*");
		ARG("triggerd-stream");
		ARG(j->st->key);
		ARG("triggerd-id");
		ARG(e->id_text);
		ARG("triggerd-group");
		ARG(o->group);
		ARG("triggerd-consumer");
		ARG(c->consumer);
		ARG("triggerd-deliveries");
		ARG(deliveries);
		ARG("triggerd-error");
		ARG(en->error ? en->error : "failed");
		ARG("triggerd-time-ms");
		ARG(when);
		if (en->response) {
			ARG("triggerd-response");
			ARG(en->response);
		}
#undef ARG
		for (size_t i = 0; i < e->nfields; i++) {
			argv[k] = e->fields[i].name;
			lens[k++] = e->fields[i].name_len;
			argv[k] = e->fields[i].value;
			lens[k++] = e->fields[i].value_len;
		}
		int ok = redisAppendCommandArgv(rc, (int)k, argv, lens) == REDIS_OK;
		free(argv);
		free(lens);
		return ok ? 1 : -1;
	}
	case JOB_PUBLISH: {
		char maxlen[32];
		snprintf(maxlen, sizeof maxlen, "%lld", o->destination_maxlen);
		const char *argv[8];
		size_t lens[8];
		int k = 0;
		argv[k] = "XADD", lens[k] = 4, k++;
		argv[k] = j->target, lens[k] = strlen(j->target), k++;
		if (o->destination_maxlen > 0) {
			argv[k] = "MAXLEN", lens[k] = 6, k++;
			argv[k] = "~", lens[k] = 1, k++;
			argv[k] = maxlen, lens[k] = strlen(maxlen), k++;
		}
		argv[k] = "*", lens[k] = 1, k++;
		argv[k] = "data", lens[k] = 4, k++;
		argv[k] = j->record, lens[k] = j->len, k++;
		return redisAppendCommandArgv(rc, k, argv, lens) == REDIS_OK ? 1 : -1;
	}
	}
	return -1;
}

/* Reads the replies of job j (n of them). Returns 0, or -1 on a connection error. */
static int finish_job(struct redis_ctx *c, redisContext *rc, struct job *j, int n)
{
	redisReply *r[2] = {NULL};
	for (int i = 0; i < n; i++)
		if (redisGetReply(rc, (void **)&r[i]) != REDIS_OK) {
			for (int k = 0; k < i; k++)
				freeReplyObject(r[k]);
			return -1;
		}
	redisReply *last = r[n - 1];
	bool error = !last || last->type == REDIS_REPLY_ERROR;
	switch (j->kind) {
	case JOB_UNBLOCK:
		if (error) {
			lock(c);
			c->can_unblock = false;
			unlock(c);
			td_logs_info(
			    c->scope,
			    "CLIENT UNBLOCK is not allowed (%s): a stream that may be read "
			    "again waits for the current read to end",
			    last && last->str ? last->str : "?");
		}
		break;
	case JOB_MARK:
	case JOB_TOUCH:
		if (error)
			td_logs_debug(c->scope, "XCLAIM on %s: %s", j->st->key,
				      last && last->str ? last->str : "?");
		break;
	case JOB_DEAD: {
		/* Written: now acknowledged like any settled entry (a crash in between writes
		 * the dead letter twice, never loses it). Not written: it stays pending. */
		struct entry *en = j->entry;
		bool ok = last && last->type == REDIS_REPLY_STRING;
		lock(c);
		if (ok) {
			struct stream *st = j->st;
			en->next_ack = NULL;
			if (st->ack_tail)
				st->ack_tail->next_ack = en;
			else
				st->ack_head = en;
			st->ack_tail = en;
		} else {
			entry_unlink(en);
			j->st->acking--;
			wake_reader(c);
		}
		unlock(c);
		if (!ok) {
			td_logs_error(
			    c->scope,
			    "entry %s/%s could not be written to %s (%s); it stays pending "
			    "and is taken over again after claim_idle",
			    j->st->key, en->e->id_text, j->st->dlq,
			    last && last->str ? last->str : "no answer");
			entry_free(en);
		}
		break;
	}
	case JOB_PUBLISH:
		j->ok = !error && last->type == REDIS_REPLY_STRING;
		if (!j->ok)
			snprintf(j->error, sizeof j->error, "XADD %s: %s", j->target,
				 last && last->str ? last->str : "unexpected answer");
		break;
	}
	for (int i = 0; i < n; i++)
		freeReplyObject(r[i]);
	return 0;
}

/* Acknowledges the entries of list (n of them) on stream st; -1 on a connection error. */
static int append_acks(struct redis_ctx *c, redisContext *rc, struct stream *st, struct entry *list,
		       int *commands)
{
	const char *argv[3 + ACK_CHUNK];
	argv[0] = "XACK";
	argv[1] = st->key;
	argv[2] = c->o->group;
	int k = 3;
	*commands = 0;
	for (struct entry *en = list; en; en = en->next_ack) {
		argv[k++] = en->e->id_text;
		if (k == 3 + ACK_CHUNK || !en->next_ack) {
			if (redisAppendCommandArgv(rc, k, argv, NULL) != REDIS_OK)
				return -1;
			(*commands)++;
			k = 3;
		}
	}
	return 0;
}

static void writer_fail_publishes(struct redis_ctx *c, struct job **jobs, const char *why)
{
	for (struct job **p = jobs; *p;) {
		struct job *j = *p;
		if (j->kind != JOB_PUBLISH) {
			p = &j->next;
			continue;
		}
		*p = j->next;
		j->ok = false;
		snprintf(j->error, sizeof j->error, "%.255s", why);
		finish_publish(j);
	}
	(void)c;
}

/* Puts back work the writer could not do, in front of what came meanwhile. */
static void writer_requeue(struct redis_ctx *c, struct job *jobs, struct entry **acks)
{
	lock(c);
	if (jobs) {
		struct job *last = jobs;
		while (last->next)
			last = last->next;
		last->next = c->jobs;
		if (!c->jobs)
			c->jobs_tail = last;
		c->jobs = jobs;
	}
	for (size_t i = 0; i < c->nstreams; i++) {
		struct stream *st = &c->streams[i];
		struct entry *list = acks[i];
		if (!list)
			continue;
		struct entry *last = list;
		while (last->next_ack)
			last = last->next_ack;
		last->next_ack = st->ack_head;
		if (!st->ack_head)
			st->ack_tail = last;
		st->ack_head = list;
	}
	unlock(c);
}

static bool writer_has_work(const struct redis_ctx *c)
{
	if (c->jobs)
		return true;
	for (size_t i = 0; i < c->nstreams; i++)
		if (c->streams[i].ack_head)
			return true;
	return false;
}

static void *writer_main(void *arg)
{
	struct redis_ctx *c = arg;
	redisContext *rc = NULL;
	long long backoff = c->o->reconnect_min_ms, retry_at = 0;
	struct entry **acks = calloc(c->nstreams, sizeof *acks);
	char why[512];
	if (!acks) {
		td_logs_error(c->scope, "writer: out of memory");
		return NULL;
	}
	for (;;) {
		lock(c);
		for (;;) {
			long long now = td_now_ms();
			if (c->writer_stop && (!writer_has_work(c) || now >= c->writer_deadline_ms))
				break;
			if (writer_has_work(c) && now >= retry_at)
				break;
			long long until = retry_at > now ? retry_at : 0;
			if (c->writer_stop)
				until = min_deadline(until, c->writer_deadline_ms);
			wait_until(&c->writer_cond, &c->lock, until);
		}
		if (c->writer_stop &&
		    (!writer_has_work(c) || td_now_ms() >= c->writer_deadline_ms)) {
			unlock(c);
			break;
		}
		struct job *jobs = c->jobs;
		c->jobs = c->jobs_tail = NULL;
		for (size_t i = 0; i < c->nstreams; i++) {
			acks[i] = c->streams[i].ack_head;
			c->streams[i].ack_head = c->streams[i].ack_tail = NULL;
		}
		unlock(c);

		if (!rc) {
			rc = open_conn(c, "w", NULL, why, sizeof why);
			lock(c);
			c->writer_connected = rc != NULL;
			if (!rc)
				snprintf(c->writer_error, sizeof c->writer_error, "%.255s", why);
			unlock(c);
			if (!rc) {
				writer_fail_publishes(c, &jobs, why);
				writer_requeue(c, jobs, acks);
				retry_at = td_now_ms() + backoff;
				backoff = backoff * 2 < c->o->reconnect_max_ms
					      ? backoff * 2
					      : c->o->reconnect_max_ms;
				continue;
			}
			backoff = c->o->reconnect_min_ms;
			retry_at = 0;
		}

		/* Pipeline everything, then read the replies in the same order. */
		int ack_commands[64],
		    *ackc = c->nstreams <= 64 ? ack_commands : calloc(c->nstreams, sizeof *ackc);
		int *replies = NULL;
		size_t njobs = 0;
		for (struct job *j = jobs; j; j = j->next)
			njobs++;
		replies = calloc(njobs + 1, sizeof *replies);
		bool broken = !ackc || !replies;
		size_t k = 0;
		for (struct job *j = jobs; !broken && j; j = j->next, k++)
			if ((replies[k] = append_job(c, rc, j)) < 0)
				broken = true;
		for (size_t i = 0; !broken && i < c->nstreams; i++)
			if (acks[i] && append_acks(c, rc, &c->streams[i], acks[i], &ackc[i]) < 0)
				broken = true;
		/* Replies: jobs first. A job whose replies all came is done. */
		struct job *left = jobs;
		k = 0;
		while (!broken && left) {
			struct job *j = left;
			if (finish_job(c, rc, j, replies[k]) < 0) {
				broken = true;
				break;
			}
			left = j->next;
			k++;
			if (j->kind == JOB_PUBLISH)
				finish_publish(j);
			else
				job_free(j);
		}
		for (size_t i = 0; !broken && i < c->nstreams; i++) {
			for (int n = 0; acks[i] && n < ackc[i]; n++) {
				redisReply *r = NULL;
				if (redisGetReply(rc, (void **)&r) != REDIS_OK) {
					broken = true;
					break;
				}
				if (r->type == REDIS_REPLY_ERROR &&
				    td_log_ratelimit(&c->limit_w, 5, 10000))
					td_logs_error(c->scope, "XACK on %s: %s", c->streams[i].key,
						      r->str);
				freeReplyObject(r);
			}
			if (broken)
				break;
			/* Acknowledged (or the group is gone): forget the entries. */
			lock(c);
			for (struct entry *en = acks[i]; en;) {
				struct entry *next = en->next_ack;
				entry_unlink(en);
				c->streams[i].acking--;
				entry_free(en);
				en = next;
			}
			acks[i] = NULL;
			wake_reader(c);
			unlock(c);
		}
		free(replies);
		if (ackc != ack_commands)
			free(ackc);
		if (broken) {
			snprintf(why, sizeof why, "connection to %s lost: %s", c->where,
				 rc->errstr[0] ? rc->errstr : "out of memory");
			td_logs_warn(c->scope, "writer: %s", why);
			redisFree(rc);
			rc = NULL;
			lock(c);
			c->writer_connected = false;
			snprintf(c->writer_error, sizeof c->writer_error, "%.255s", why);
			unlock(c);
			/* Unfinished work is done again: XACK and XCLAIM are idempotent, a dead
			 * letter or a record may be written twice (at least once). */
			writer_requeue(c, left, acks);
			for (size_t i = 0; i < c->nstreams; i++)
				acks[i] = NULL;
			retry_at = td_now_ms() + backoff;
		}
	}
	if (rc)
		redisFree(rc);
	free(acks);
	return NULL;
}

/* ---- the reader ---- */

/* Entries parsed from one reply, before they go into the streams. */
struct batch {
	struct redis_ctx *c;
	struct {
		size_t stream;
		struct td_redis_entry *e;
		long long deliveries;
	} * v;
	size_t n, cap;
	bool oom;
};

static void batch_add(void *arg, size_t stream, struct td_redis_entry *e)
{
	struct batch *b = arg;
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 128;
		void *bigger = realloc(b->v, cap * sizeof *b->v);
		if (!bigger) {
			b->oom = true;
			free(e);
			return;
		}
		b->v = bigger;
		b->cap = cap;
	}
	b->v[b->n].stream = stream;
	b->v[b->n].e = e;
	b->v[b->n].deliveries = 1;
	b->n++;
}

static void batch_clear(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->v[i].e);
	b->n = 0;
}

static void batch_count(void *arg, const struct td_redis_id *id, long long deliveries)
{
	struct batch *b = arg;
	for (size_t i = 0; i < b->n; i++)
		if (td_redis_id_cmp(&b->v[i].e->id, id) == 0)
			b->v[i].deliveries = deliveries;
}

/*
 * Moves the parsed entries into their streams (dropping those already held), builds
 * their events outside the lock, dead-letters those delivered too often, then pumps.
 * Returns the pump's next deadline.
 */
static long long take_batch(struct redis_ctx *c, struct batch *b, const char *how)
{
	long long now = td_now_ms();
	struct entry **made = calloc(b->n + 1, sizeof *made);
	if (!made) {
		batch_clear(b);
		return now + 1000;
	}
	for (size_t i = 0; i < b->n; i++) {
		struct entry *en = calloc(1, sizeof *en);
		if (!en)
			continue;
		en->e = b->v[i].e;
		en->st = &c->streams[b->v[i].stream];
		b->v[i].e = NULL;
		long long d = b->v[i].deliveries;
		en->deliveries = d > 1000000 ? 1000000 : d < 1 ? 1 : (int)d;
		en->marked = en->deliveries;
		en->read_ms = en->touched_ms = now;
		if (!en->e->deleted && en->deliveries <= c->o->max_deliveries) {
			/* A batch needs only the entry's JSON; a single entry its event. */
			if (c->o->batch_size > 1)
				entry_json(c, en, &c->limit_r);
			else
				en->ev = entry_event(c, en, &c->limit_r);
		}
		made[i] = en;
	}
	lock(c);
	for (size_t i = 0; i < b->n; i++) {
		struct entry *en = made[i];
		if (!en)
			continue;
		struct stream *st = &c->streams[b->v[i].stream];
		if (find_entry(st, &en->e->id)) {
			entry_free(en); /* already held: a read after a reconnection */
			continue;
		}
		entry_insert(st, en);
		if (en->e->deleted) {
			td_logs_warn(c->scope, "entry %s/%s was deleted before it was acknowledged",
				     st->key, en->e->id_text);
			ack_entry(c, en);
		} else if (en->deliveries > c->o->max_deliveries) {
			char msg[200];
			snprintf(
			    msg, sizeof msg,
			    "%s with %d deliveries and no outcome (each delivery ended with its "
			    "consumer)",
			    how, en->deliveries);
			en->error = dup_text(msg, sizeof msg);
			dead_letter(c, en);
		} else {
			en->state = WAITING;
			st->waiting++;
		}
	}
	long long deadline = pump(c, now);
	unlock(c);
	free(made);
	b->n = 0;
	return deadline;
}

/* XPENDING for the delivery counts of the entries of stream s in b. */
static int fetch_counts(struct redis_ctx *c, redisContext *rc, struct batch *b, size_t s, char *why,
			size_t whylen)
{
	const struct td_redis_entry *lo = NULL, *hi = NULL;
	size_t n = 0;
	for (size_t i = 0; i < b->n; i++) {
		if (b->v[i].stream != s)
			continue;
		const struct td_redis_entry *e = b->v[i].e;
		if (!lo || td_redis_id_cmp(&e->id, &lo->id) < 0)
			lo = e;
		if (!hi || td_redis_id_cmp(&e->id, &hi->id) > 0)
			hi = e;
		n++;
	}
	if (!n)
		return 0;
	/* Other entries this consumer holds may fall in the range too. */
	lock(c);
	const struct stream *st = &c->streams[s];
	n += (size_t)(st->waiting + st->inflight + st->acking);
	unlock(c);
	char count[24];
	snprintf(count, sizeof count, "%zu", n);
	const char *argv[7] = {"XPENDING", c->streams[s].key, c->o->group, lo->id_text, hi->id_text,
			       count,	   c->consumer};
	redisReply *r = command(rc, 7, argv, NULL);
	if (!r) {
		snprintf(why, whylen, "connection to %s lost: %s", c->where, rc->errstr);
		return -TD_EIO;
	}
	char err[256];
	int k = td_redis_parse_xpending(r, batch_count, b, err, sizeof err);
	freeReplyObject(r);
	if (k < 0)
		td_logs_warn(c->scope, "XPENDING on %s: %s", c->streams[s].key, err);
	return 0;
}

static int create_groups(struct redis_ctx *c, redisContext *rc, char *why, size_t whylen)
{
	for (size_t i = 0; i < c->nstreams; i++) {
		const char *argv[6] = {"XGROUP",
				       "CREATE",
				       c->streams[i].key,
				       c->o->group,
				       c->o->start == START_ALL ? "0" : "$",
				       "MKSTREAM"};
		redisReply *r = command(rc, 6, argv, NULL);
		if (!r) {
			snprintf(why, whylen, "connection to %s lost: %s", c->where, rc->errstr);
			return -TD_EIO;
		}
		bool ok = r->type != REDIS_REPLY_ERROR ||
			  (r->str && strncmp(r->str, "BUSYGROUP", 9) == 0);
		if (!ok)
			snprintf(why, whylen, "cannot create group %s on stream %s at %s: %.200s",
				 c->o->group, c->streams[i].key, c->where, r->str ? r->str : "");
		freeReplyObject(r);
		if (!ok)
			return -TD_EINVAL;
	}
	return 0;
}

/* The reader's connection and its setup; the reader is ready afterwards. */
static redisContext *reader_connect(struct redis_ctx *c, char *why, size_t whylen)
{
	redisContext *rc = open_conn(c, "r", &c->rd, why, whylen);
	if (!rc)
		return NULL;
	const char *argv[2] = {"CLIENT", "ID"};
	redisReply *r = command(rc, 2, argv, NULL);
	long long id = r && r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
	bool lost = !r;
	if (r)
		freeReplyObject(r);
	if (lost) {
		snprintf(why, whylen, "connection to %s lost: %s", c->where, rc->errstr);
		goto fail;
	}
	if (create_groups(c, rc, why, whylen) < 0)
		goto fail;
	set_timeout(rc, c->o->block_ms + WRITER_TIMEOUT_MS);
	lock(c);
	c->reader_id = id;
	for (size_t i = 0; i < c->nstreams; i++) {
		c->streams[i].history_done = false;
		snprintf(c->streams[i].history_cursor, TD_REDIS_ID_MAX, "0");
	}
	unlock(c);
	return rc;
fail:
	lock(c);
	c->rd = NULL;
	unlock(c);
	redisFree(rc);
	return NULL;
}

/* Reads own pending entries of the streams still in history; -TD_E* with why. */
static int read_history(struct redis_ctx *c, redisContext *rc, struct batch *b, const bool *pick,
			char *why, size_t whylen)
{
	size_t n = 0;
	for (size_t i = 0; i < c->nstreams; i++)
		n += pick[i];
	const char **argv = calloc(7 + 2 * n, sizeof *argv);
	const char **keys = calloc(n + 1, sizeof *keys);
	size_t *index = calloc(n + 1, sizeof *index);
	char(*cursors)[TD_REDIS_ID_MAX] = calloc(n + 1, sizeof *cursors);
	char count[24];
	int rc2 = -TD_ENOMEM;
	if (!argv || !keys || !index || !cursors) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	snprintf(count, sizeof count, "%lld", c->o->count);
	size_t k = 0, m = 0;
	argv[k++] = "XREADGROUP";
	argv[k++] = "GROUP";
	argv[k++] = c->o->group;
	argv[k++] = c->consumer;
	argv[k++] = "COUNT";
	argv[k++] = count;
	argv[k++] = "STREAMS";
	lock(c);
	for (size_t i = 0; i < c->nstreams; i++)
		if (pick[i]) {
			keys[m] = c->streams[i].key;
			index[m] = i;
			memcpy(cursors[m], c->streams[i].history_cursor, TD_REDIS_ID_MAX);
			argv[k++] = keys[m++];
		}
	unlock(c);
	for (size_t i = 0; i < m; i++)
		argv[k++] = cursors[i];
	redisReply *r = command(rc, (int)k, argv, NULL);
	if (!r) {
		snprintf(why, whylen, "connection to %s lost: %s", c->where, rc->errstr);
		rc2 = -TD_EIO;
		goto out;
	}
	char err[300];
	int got = td_redis_parse_xreadgroup(r, keys, m, batch_add, b, err, sizeof err);
	freeReplyObject(r);
	if (got < 0) {
		snprintf(why, whylen, "reading own pending entries: %s", err);
		batch_clear(b);
		rc2 = got == -TD_ENOMEM ? -TD_ENOMEM : -TD_EINVAL;
		goto out;
	}
	/* Map the parser's indexes (into keys) back to stream indexes. */
	for (size_t i = 0; i < b->n; i++)
		b->v[i].stream = index[b->v[i].stream];
	for (size_t i = 0; i < c->nstreams; i++)
		if (pick[i] && fetch_counts(c, rc, b, i, why, whylen) < 0) {
			batch_clear(b);
			rc2 = -TD_EIO;
			goto out;
		}
	lock(c);
	for (size_t s = 0; s < m; s++) {
		struct stream *st = &c->streams[index[s]];
		const struct td_redis_entry *last = NULL;
		for (size_t i = 0; i < b->n; i++)
			if (b->v[i].stream == index[s] &&
			    (!last || td_redis_id_cmp(&b->v[i].e->id, &last->id) > 0))
				last = b->v[i].e;
		if (last)
			memcpy(st->history_cursor, last->id_text, TD_REDIS_ID_MAX);
		else
			st->history_done = true; /* now the new entries */
	}
	unlock(c);
	take_batch(c, b, "found pending");
	rc2 = 0;
out:
	free(argv);
	free(keys);
	free(index);
	free(cursors);
	return rc2;
}

/* One XAUTOCLAIM page of stream i: entries taken over (>= 0), or -TD_EIO. */
static int claim_page(struct redis_ctx *c, redisContext *rc, struct batch *b, size_t i, char *why,
		      size_t whylen)
{
	struct stream *st = &c->streams[i];
	char idle[24], count[24], cursor[TD_REDIS_ID_MAX], next[TD_REDIS_ID_MAX], err[300];
	snprintf(idle, sizeof idle, "%lld", c->o->claim_idle_ms);
	snprintf(count, sizeof count, "%lld", c->o->count);
	lock(c);
	memcpy(cursor, st->claim_cursor, TD_REDIS_ID_MAX);
	unlock(c);
	const char *argv[8] = {"XAUTOCLAIM", st->key, c->o->group, c->consumer,
			       idle,	     cursor,  "COUNT",	   count};
	redisReply *r = command(rc, 8, argv, NULL);
	if (!r) {
		snprintf(why, whylen, "connection to %s lost: %s", c->where, rc->errstr);
		return -TD_EIO;
	}
	int got = td_redis_parse_xautoclaim(r, i, next, batch_add, b, err, sizeof err);
	freeReplyObject(r);
	if (got < 0) {
		if (td_log_ratelimit(&c->limit_r, 5, 10000))
			td_logs_error(c->scope, "XAUTOCLAIM on %s: %s", st->key, err);
		batch_clear(b);
		return 0;
	}
	lock(c);
	memcpy(st->claim_cursor, next, TD_REDIS_ID_MAX);
	unlock(c);
	if (got == 0)
		return 0;
	td_logs_info(c->scope, "took over %d entries of %s idle for %lld ms or more", got, st->key,
		     c->o->claim_idle_ms);
	if (fetch_counts(c, rc, b, i, why, whylen) < 0) {
		batch_clear(b);
		return -TD_EIO;
	}
	take_batch(c, b, "taken over");
	return got;
}

/*
 * XAUTOCLAIM on every stream, page after page while the stream has room and the scan
 * has not come round; the rest waits for the next round. -TD_EIO on a connection error.
 */
static int claim(struct redis_ctx *c, redisContext *rc, struct batch *b, char *why, size_t whylen)
{
	for (size_t i = 0; i < c->nstreams; i++) {
		for (;;) {
			lock(c);
			bool room = wants_read(c, &c->streams[i]) && !c->reader_stop;
			unlock(c);
			if (!room)
				break;
			int got = claim_page(c, rc, b, i, why, whylen);
			if (got < 0)
				return got;
			lock(c);
			bool wrapped = strcmp(c->streams[i].claim_cursor, "0-0") == 0;
			unlock(c);
			if (got == 0 || wrapped)
				break;
		}
	}
	return 0;
}

/*
 * Deletes the consumers of the group, other than this one, that have no pending entry
 * and were idle for forget_consumers_after. One script, so that the check and the
 * deletion are atomic: a consumer that reads between them would otherwise lose the
 * pending entries that DELCONSUMER drops. A server that refuses scripts is left alone.
 */
static const char forget_script[] =
    "local gone = {}\n"
    "for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do\n"
    "  local f = {}\n"
    "  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end\n"
    "  if f['name'] ~= ARGV[2] and f['pending'] == 0 and f['idle'] >= tonumber(ARGV[3]) then\n"
    "    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])\n"
    "    gone[#gone + 1] = f['name']\n"
    "  end\n"
    "end\n"
    "return gone\n";

static int forget_consumers(struct redis_ctx *c, redisContext *rc, char *why, size_t whylen)
{
	char idle[24];
	snprintf(idle, sizeof idle, "%lld", c->o->forget_after_ms);
	for (size_t i = 0; i < c->nstreams; i++) {
		const char *key = c->streams[i].key;
		const char *argv[7] = {"EVAL",	    forget_script, "1", key,
				       c->o->group, c->consumer,   idle};
		redisReply *r = command(rc, 7, argv, NULL);
		if (!r) {
			snprintf(why, whylen, "connection to %s lost: %s", c->where, rc->errstr);
			return -TD_EIO;
		}
		if (r->type == REDIS_REPLY_ERROR) {
			if (td_log_ratelimit(&c->limit_r, 1, 3600000))
				td_logs_info(c->scope, "idle consumers are not deleted: %.200s",
					     r->str ? r->str : "?");
		} else if (r->type == REDIS_REPLY_ARRAY) {
			for (size_t k = 0; k < r->elements; k++)
				if (r->element[k] && r->element[k]->type == REDIS_REPLY_STRING)
					td_logs_info(c->scope,
						     "deleted consumer %.200s of %s: idle for %lld "
						     "ms with nothing pending",
						     r->element[k]->str, key,
						     c->o->forget_after_ms);
		}
		freeReplyObject(r);
	}
	return 0;
}

/* Keeps the entries this instance holds from looking idle to other instances. */
static void touch_held(struct redis_ctx *c, long long now)
{
	long long older = now - c->touch_every_ms;
	for (size_t i = 0; i < c->nstreams; i++) {
		struct stream *st = &c->streams[i];
		size_t n = 0;
		for (struct entry *en = st->head; en; en = en->next)
			n += en->state != ACKING && en->touched_ms <= older;
		if (!n)
			continue;
		struct job *j = calloc(1, sizeof *j);
		char(*ids)[TD_REDIS_ID_MAX] = malloc(n * sizeof *ids);
		if (!j || !ids) {
			free(j);
			free(ids);
			return;
		}
		size_t k = 0;
		for (struct entry *en = st->head; en; en = en->next)
			if (en->state != ACKING && en->touched_ms <= older) {
				memcpy(ids[k++], en->e->id_text, TD_REDIS_ID_MAX);
				en->touched_ms = now;
			}
		j->kind = JOB_TOUCH;
		j->st = st;
		j->ids = ids;
		j->nids = k;
		push_job(c, j, false);
	}
}

/* XREADGROUP ... BLOCK on the streams that may be read; -TD_E* with why. */
static int read_new(struct redis_ctx *c, redisContext *rc, struct batch *b, const bool *pick,
		    long long block, char *why, size_t whylen)
{
	size_t n = 0;
	for (size_t i = 0; i < c->nstreams; i++)
		n += pick[i];
	const char **argv = calloc(9 + 2 * n, sizeof *argv);
	const char **keys = calloc(n + 1, sizeof *keys);
	size_t *index = calloc(n + 1, sizeof *index);
	char count[24], blockms[24];
	int rc2 = -TD_ENOMEM;
	if (!argv || !keys || !index) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	snprintf(count, sizeof count, "%lld", c->o->count);
	snprintf(blockms, sizeof blockms, "%lld", block);
	size_t k = 0, m = 0;
	argv[k++] = "XREADGROUP";
	argv[k++] = "GROUP";
	argv[k++] = c->o->group;
	argv[k++] = c->consumer;
	argv[k++] = "COUNT";
	argv[k++] = count;
	argv[k++] = "BLOCK";
	argv[k++] = blockms;
	argv[k++] = "STREAMS";
	for (size_t i = 0; i < c->nstreams; i++)
		if (pick[i]) {
			keys[m] = c->streams[i].key;
			index[m++] = i;
			argv[k++] = c->streams[i].key;
		}
	for (size_t i = 0; i < m; i++)
		argv[k++] = ">";
	lock(c);
	c->blocking = true;
	c->unblock_sent = false;
	for (size_t i = 0; i < c->nstreams; i++)
		c->streams[i].in_read = pick[i];
	unlock(c);
	redisReply *r = command(rc, (int)k, argv, NULL);
	lock(c);
	c->blocking = false;
	for (size_t i = 0; i < c->nstreams; i++)
		c->streams[i].in_read = false;
	unlock(c);
	if (!r) {
		snprintf(why, whylen, "connection to %s lost: %s", c->where, rc->errstr);
		rc2 = -TD_EIO;
		goto out;
	}
	char err[300];
	int got = td_redis_parse_xreadgroup(r, keys, m, batch_add, b, err, sizeof err);
	bool nogroup = r->type == REDIS_REPLY_ERROR && r->str && strncmp(r->str, "NOGROUP", 7) == 0;
	bool unblocked =
	    r->type == REDIS_REPLY_ERROR && r->str && strncmp(r->str, "UNBLOCKED", 9) == 0;
	freeReplyObject(r);
	if (unblocked) {
		rc2 = 0;
		goto out;
	}
	if (nogroup) {
		/* The stream or the group was deleted: make them again. */
		td_logs_warn(c->scope, "%s; creating the group again", err);
		rc2 = create_groups(c, rc, why, whylen);
		goto out;
	}
	if (got < 0) {
		snprintf(why, whylen, "XREADGROUP at %.100s: %.300s", c->where, err);
		batch_clear(b);
		rc2 = got;
		goto out;
	}
	for (size_t i = 0; i < b->n; i++)
		b->v[i].stream = index[b->v[i].stream];
	take_batch(c, b, "read");
	rc2 = 0;
out:
	free(argv);
	free(keys);
	free(index);
	return rc2;
}

static void *reader_main(void *arg)
{
	struct redis_ctx *c = arg;
	redisContext *rc = NULL;
	struct batch b = {.c = c};
	long long backoff = c->o->reconnect_min_ms;
	long long next_claim = 0, next_touch = td_now_ms() + c->touch_every_ms;
	bool *pick = calloc(c->nstreams, sizeof *pick);
	char why[512];
	if (!pick) {
		td_source_set_ready(c->src, false, "out of memory");
		return NULL;
	}
	for (;;) {
		lock(c);
		bool stop = c->reader_stop;
		unlock(c);
		if (stop)
			break;
		if (!rc) {
			rc = reader_connect(c, why, sizeof why);
			if (!rc) {
				lock(c);
				stop = c->reader_stop;
				unlock(c);
				if (stop)
					break;
				td_source_set_ready(c->src, false, why);
				td_logs_debug(c->scope, "next attempt in %lld ms", backoff);
				lock(c);
				long long until = td_now_ms() + backoff;
				while (!c->reader_stop && td_now_ms() < until)
					wait_until(&c->reader_cond, &c->lock, until);
				unlock(c);
				backoff = backoff * 2 < c->o->reconnect_max_ms
					      ? backoff * 2
					      : c->o->reconnect_max_ms;
				continue;
			}
			backoff = c->o->reconnect_min_ms;
			next_claim = 0; /* after the own pending entries */
			td_source_set_ready(c->src, true, NULL);
			td_logs_info(c->scope, "connected to %s: group %s, consumer %s", c->where,
				     c->o->group, c->consumer);
		}
		long long now = td_now_ms();
		bool history = false, fresh = false, all_history_done = true;
		lock(c);
		long long deadline = pump(c, now);
		for (size_t i = 0; i < c->nstreams; i++) {
			struct stream *st = &c->streams[i];
			all_history_done &= st->history_done;
			pick[i] = !st->history_done && wants_read(c, st);
			history |= pick[i];
		}
		if (now >= next_touch) {
			touch_held(c, now);
			next_touch = now + c->touch_every_ms;
		}
		unlock(c);
		int rc2 = 0;
		if (history) {
			rc2 = read_history(c, rc, &b, pick, why, sizeof why);
		} else if (all_history_done && now >= next_claim) {
			rc2 = claim(c, rc, &b, why, sizeof why);
			if (rc2 == 0 && c->o->forget_after_ms > 0)
				rc2 = forget_consumers(c, rc, why, sizeof why);
			next_claim = now + c->claim_every_ms;
		} else {
			lock(c);
			for (size_t i = 0; i < c->nstreams; i++) {
				struct stream *st = &c->streams[i];
				pick[i] = st->history_done && wants_read(c, st);
				fresh |= pick[i];
			}
			long long until = min_deadline(deadline, next_touch);
			if (all_history_done)
				until = min_deadline(until, next_claim);
			if (!fresh && !c->reader_stop) {
				c->reader_waiting = true;
				wait_until(&c->reader_cond, &c->lock, until);
				c->reader_waiting = false;
			}
			unlock(c);
			if (fresh) {
				long long block = c->o->block_ms;
				if (until > 0 && until - now < block)
					block = until - now;
				if (block < 1)
					block = 1;
				rc2 = read_new(c, rc, &b, pick, block, why, sizeof why);
			}
		}
		if (rc2 == -TD_EIO || rc2 == -TD_EINVAL) {
			lock(c);
			stop = c->reader_stop;
			c->rd = NULL;
			unlock(c);
			redisFree(rc);
			rc = NULL;
			if (stop)
				break;
			td_source_set_ready(c->src, false, why);
			lock(c);
			long long until = td_now_ms() + backoff;
			while (!c->reader_stop && td_now_ms() < until)
				wait_until(&c->reader_cond, &c->lock, until);
			unlock(c);
			backoff = backoff * 2 < c->o->reconnect_max_ms ? backoff * 2
								       : c->o->reconnect_max_ms;
		}
	}
	if (rc) {
		lock(c);
		c->rd = NULL;
		unlock(c);
		redisFree(rc);
	}
	batch_clear(&b);
	free(b.v);
	free(pick);
	return NULL;
}

/* ---- life cycle (engine thread) ---- */

static void free_streams(struct redis_ctx *c)
{
	for (size_t i = 0; c->streams && i < c->nstreams; i++) {
		struct stream *st = &c->streams[i];
		for (struct entry *en = st->head; en;) {
			struct entry *next = en->next;
			entry_free(en);
			en = next;
		}
		free(st->dlq);
	}
	free(c->streams);
	c->streams = NULL;
	c->nstreams = 0;
}

static void redis_destroy(struct td_source *src)
{
	struct redis_ctx *c = td_source_ctx(src);
	if (!c || !c->src)
		return;
	if (c->writer_running) {
		lock(c);
		c->writer_stop = true;
		c->writer_deadline_ms = td_now_ms() + DRAIN_MS;
		pthread_cond_signal(&c->writer_cond);
		unlock(c);
		pthread_join(c->writer, NULL);
		c->writer_running = false;
	}
	for (struct job *j = c->jobs; j;) {
		struct job *next = j->next;
		if (j->kind == JOB_PUBLISH && j->done)
			j->done(j->arg, false, "the source stopped");
		job_free(j);
		j = next;
	}
	c->jobs = c->jobs_tail = NULL;
	free_streams(c);
	if (c->lock_ready) {
		pthread_mutex_destroy(&c->lock);
		pthread_cond_destroy(&c->reader_cond);
		pthread_cond_destroy(&c->writer_cond);
		c->lock_ready = false;
	}
	c->src = NULL;
}

static void redis_stop(struct td_source *src)
{
	struct redis_ctx *c = td_source_ctx(src);
	if (!c->src)
		return;
	lock(c);
	c->stopped = true;
	c->reader_stop = true;
	if (c->rd && c->rd->fd >= 0)
		shutdown(c->rd->fd, SHUT_RDWR);
	pthread_cond_broadcast(&c->reader_cond);
	unlock(c);
	if (c->reader_running) {
		pthread_join(c->reader, NULL);
		c->reader_running = false;
	}
	if (c->timer) {
		td_timer_cancel(td_source_engine(src), c->timer);
		c->timer = NULL;
	}
}

static int redis_start(struct td_source *src)
{
	struct redis_ctx *c = td_source_ctx(src);
	const struct redis_opts *o = td_source_opts(src);
	char err[256];
	memset(c, 0, sizeof *c);
	c->src = src;
	c->o = o;
	c->scope = td_source_scope(src);
	if (td_redis_url_parse(o->url, &c->url, err, sizeof err) < 0) {
		td_logs_error(c->scope, "option 'url': %s", err);
		c->src = NULL;
		return -TD_EINVAL;
	}
	td_redis_url_describe(&c->url, c->where, sizeof c->where);
	if (o->consumer) {
		snprintf(c->consumer, sizeof c->consumer, "%s", o->consumer);
	} else {
		char host[200] = "localhost";
		if (gethostname(host, sizeof host) < 0)
			snprintf(host, sizeof host, "localhost");
		host[sizeof host - 1] = '\0';
		snprintf(c->consumer, sizeof c->consumer, "%s-%d", host, (int)getpid());
	}
	snprintf(c->source_attr, sizeof c->source_attr, "triggerd/redis/%s", td_source_name(src));
	snprintf(c->client_name, sizeof c->client_name, "triggerd-%s", td_source_name(src));
	for (char *p = c->client_name; *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			*p = '_';
	c->threshold = (int)(o->count > o->batch_size ? o->count : o->batch_size);
	c->cap = READAHEAD_UNITS * c->threshold;
	c->claim_every_ms = o->claim_idle_ms / 2;
	c->touch_every_ms = o->claim_idle_ms / 4;
	c->can_unblock = true;
	c->ordered = sync_trigger_reads(src);
	c->nstreams = o->streams.n;
	c->streams = calloc(c->nstreams, sizeof *c->streams);
	if (!c->streams)
		goto fail;
	for (size_t i = 0; i < c->nstreams; i++) {
		struct stream *st = &c->streams[i];
		st->key = o->streams.v[i];
		snprintf(st->history_cursor, TD_REDIS_ID_MAX, "0");
		snprintf(st->claim_cursor, TD_REDIS_ID_MAX, "0-0");
		if (!(st->dlq = td_redis_dead_letter_key(o->dead_letter_stream, st->key)))
			goto fail;
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&c->reader_cond, &attr);
	pthread_cond_init(&c->writer_cond, &attr);
	pthread_condattr_destroy(&attr);
	c->lock_ready = true;
	td_source_set_ready(src, false, "connecting");
	if (pthread_create(&c->writer, NULL, writer_main, c) != 0)
		goto fail;
	c->writer_running = true;
	if (pthread_create(&c->reader, NULL, reader_main, c) != 0)
		goto fail;
	c->reader_running = true;
	td_logs_info(c->scope, "reading %zu stream%s from %s as %s in group %s%s", c->nstreams,
		     c->nstreams == 1 ? "" : "s", c->where, c->consumer, o->group,
		     c->ordered ? " (in order: a sync trigger reads them)" : "");
	return 0;
fail:
	td_logs_error(c->scope, "cannot start: %s", errno ? strerror(errno) : "out of memory");
	if (c->lock_ready) {
		redis_stop(src);
		redis_destroy(src);
	} else {
		free_streams(c);
		c->src = NULL;
	}
	return -TD_ENOMEM;
}

static void redis_publish(struct td_source *src, const char *target, const void *record, size_t len,
			  void (*done)(void *arg, bool ok, const char *error), void *arg)
{
	struct redis_ctx *c = td_source_ctx(src);
	struct job *j = calloc(1, sizeof *j);
	if (j) {
		j->target = strdup(target);
		j->record = malloc(len + 1);
	}
	if (!j || !j->target || !j->record) {
		job_free(j);
		done(arg, false, "out of memory");
		return;
	}
	memcpy(j->record, record, len);
	j->record[len] = '\0';
	j->len = len;
	j->kind = JOB_PUBLISH;
	j->done = done;
	j->arg = arg;
	j->ctx = c;
	if (!c->src || !c->writer_running) {
		snprintf(j->error, sizeof j->error, "source %s is not running",
			 td_source_name(src));
		finish_publish(j);
		return;
	}
	lock(c);
	if (!c->writer_connected && c->writer_error[0]) {
		snprintf(j->error, sizeof j->error, "%s", c->writer_error);
		unlock(c);
		finish_publish(j);
		return;
	}
	push_job(c, j, false);
	unlock(c);
}

const struct td_source_ops td_source_redis = {
    .name = "redis",
    .summary = "Entries of Redis streams, read in a consumer group",
    .options = redis_options,
    .opts_size = sizeof(struct redis_opts),
    .check = redis_check,
    .ctx_size = sizeof(struct redis_ctx),
    .start = redis_start,
    .stop = redis_stop,
    .settle = redis_settle,
    .destroy = redis_destroy,
    .publish = redis_publish,
};
