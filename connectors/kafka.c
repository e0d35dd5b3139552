/*
 * The Kafka source (librdkafka's high-level consumer): a member of a consumer group that
 * hands records to the router in batches and stores an offset only when every record
 * before it is settled. At least once with out-of-order completion.
 *
 * This file holds the options of the kind and their checks, then the runtime. The pure
 * parts live beside it: kafka_event.c (records as CloudEvents, batch events, the AWS
 * shape, dead letters), kafka_sched.c (ordering and batching per partition) and
 * kafka_offsets.c (which offsets are settled; the commit position).
 *
 * Threads. librdkafka keeps its own threads. One consumer thread per source polls the
 * consumer, turns records into events (batch_size 1) or directly into their JSON (batch
 * mode), the costly part, off the engine, and hands them to the engine in chunks
 * (td_engine_call), each record tagged with its partition object. Everything else runs
 * on the engine thread: the per-partition schedulers, submissions and settlements,
 * retries, bisection, dead letters, offset stores and the pause decisions, which the
 * consumer thread applies between its reads (apply_pauses: librdkafka 2.0.2 loses
 * records when a pause or seek runs while rd_kafka_consume_batch_queue reads).
 * Rebalance callbacks run on the consumer thread: an assignment hands new partition
 * objects to the engine; a revocation asks the engine to finish or give up the
 * partitions' work and waits for its answer (at most rebalance_grace, and never once
 * the source stops), then commits and unassigns.
 * Producing (kafka:// destinations, dead letters) uses a second, lazily made producer
 * handle with its own poll thread, whose delivery reports come back through
 * td_engine_call.
 *
 * Offsets. enable.auto.offset.store is off and auto commit is on: the engine stores
 * position = first unsettled offset per partition (kafka_offsets.h) within a few ms of
 * moving (one rd_kafka_offsets_store for every partition that moved), librdkafka
 * commits stored offsets every auto.commit.interval.ms, and revocation and shutdown
 * commit synchronously. A record that fails is retried (retries, backoff.*), split when
 * bisect_on_error is set, and given up only through on_failure (whose delivery is
 * awaited) or with an error in the log: never skipped silently.
 *
 * Flow and backpressure. The consumer thread stops reading while the partitions that
 * flow hold two batches' worth of records each (at least FLOW_MIN); records then wait
 * in librdkafka's bounded prefetch queue, not in memory of ours. A partition is paused
 * in librdkafka only when it is stuck (records wait and none started for STUCK_MS: a
 * failing record retried, a slow key), when its function is busy (a busy settlement:
 * queue full, concurrency reached; the batch is offered again after the router's
 * retry_after, at most 1 s, and at once when another batch of the source was taken), or
 * when it holds buffer_max records; it is resumed once it is down to one batch. Paused
 * partitions do not count in the flow, so a stuck one does not hold the others back.
 * librdkafka 2.0 has two habits this works around: a pause drops what was prefetched
 * for the partition (the resume fetches it again from the last record the consumer
 * thread took; a record that comes twice is dropped by the scheduler), and a partition
 * whose prefetch queue filled up is fetched again only when something wakes
 * its broker thread, up to a second after it drained: the waker thread (wake()) does,
 * with a ListOffsets request, when a round of reading leaves the local queue under half
 * its limits or finds it empty. Nothing queued is dropped for it (see wake()).
 *
 * Cost per record (batch mode, the hot path): the consumer thread takes the records of
 * a round with one rd_kafka_consume_batch_queue call, writes each record's JSON into a
 * reused scratch buffer (the parts every record of a partition shares are made once per
 * partition: td_kafka_json_prefix) and copies it into the record's single allocation;
 * the engine joins a batch's JSON into one buffer that the batch event takes over
 * without a copy or a second validation (td_kafka_batch_event, td_event_take_data_json).
 * Records are freed by the consumer thread that allocated them: the schedulers hand
 * them back through a lock-free list (rec_bury), since frees on the engine thread
 * contended for the consumer thread's allocator arena. Key hashes are kept busy only
 * for ordering key.
 *
 * Life cycle. stop() stops intake and joins the consumer thread but leaves the consumer
 * in the group, so that settlements arriving during the shutdown grace still store their
 * offsets; destroy() commits and closes it on a closer thread (bounded wait). Everything
 * queued to the engine holds a reference to a small shared block (struct kafka_rt) whose
 * ctx pointer is cleared at destroy, so late arrivals are dropped safely.
 */
#include <triggerd/source.h>

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include <triggerd/engine.h>
#include <triggerd/errors.h>
#include <triggerd/event.h>
#include <triggerd/function.h>
#include <triggerd/log.h>

#include "../router/destination.h"
#include "../router/json.h"
#include "../router/retry.h"
#include "kafka_event.h"
#include "kafka_sched.h"

enum kafka_start { START_LATEST, START_EARLIEST };
enum kafka_ordering { ORDER_PARTITION, ORDER_KEY, ORDER_NONE };

struct kafka_opts {
	struct td_strings brokers;
	struct td_strings topics; /* names, or "^regex" */
	char *group;
	int start;		   /* enum kafka_start */
	struct td_strings rdkafka; /* "name=value" */
	long long batch_size;
	long long batch_window_ms;
	int ordering;		     /* enum kafka_ordering */
	long long max_record_age_ms; /* 0: no limit */
	long long retries;	     /* -1: until success */
	bool bisect_on_error;
	long long batches_in_flight;
	char *on_failure; /* a destination, or NULL */
	long long backoff_base_ms;
	long long backoff_cap_ms;
	long long rebalance_grace_ms;
};

#define O(field) offsetof(struct kafka_opts, field)

static const struct td_option kafka_options[] = {
    {.type = TD_OPT_STRINGS,
     .name = "brokers",
     .flags = TD_OPT_REQUIRED,
     .offset = O(brokers),
     .desc = "Bootstrap brokers, host:port each (a list, or one \"a:9092,b:9092\" string)."},
    {.type = TD_OPT_STRINGS,
     .name = "topics",
     .flags = TD_OPT_REQUIRED,
     .offset = O(topics),
     .desc = "Topics to consume: names, or regular expressions starting with ^."},
    {.type = TD_OPT_STRING,
     .name = "group",
     .def = "triggerd",
     .offset = O(group),
     .desc = "Consumer group id; instances in one group share the partitions."},
    {.type = TD_OPT_ENUM,
     .name = "start",
     .def = "latest",
     .offset = O(start),
     .choices = "latest|earliest",
     .desc = "Where a group without committed offsets starts."},
    {.type = TD_OPT_STRINGS,
     .name = "rdkafka",
     .flags = TD_OPT_SECRET,
     .offset = O(rdkafka),
     .desc = "librdkafka properties as \"name=value\" strings "
	     "([\"security.protocol=SASL_SSL\", \"sasl.password=${KAFKA_PASSWORD}\"]). "
	     "Default: none."},
    {.type = TD_OPT_INT,
     .name = "batch_size",
     .def = "1",
     .offset = O(batch_size),
     .min = 1,
     .max = 10000,
     .desc = "Most records per invocation. Above 1 the function gets one event of type "
	     "triggerd.kafka.batch whose data is the array of the record events."},
    {.type = TD_OPT_DURATION,
     .name = "batch_window",
     .def = "0s",
     .offset = O(batch_window_ms),
     .min = 0,
     .max = 300000,
     .desc = "How long to wait to fill a batch; 0s sends what is there."},
    {.type = TD_OPT_ENUM,
     .name = "ordering",
     .def = "partition",
     .offset = O(ordering),
     .choices = "partition|key|none",
     .desc = "partition: one batch in flight per partition; key: records with different "
	     "keys run in parallel, one key in order; none: no order."},
    {.type = TD_OPT_DURATION,
     .name = "max_record_age",
     .def = "0s",
     .offset = O(max_record_age_ms),
     .min = 0,
     .max = 604800000,
     .desc = "Records older than this (by their timestamp) are not invoked but given up "
	     "to on_failure; 0s: no limit."},
    {.type = TD_OPT_INT,
     .name = "retries",
     .def = "-1",
     .offset = O(retries),
     .min = -1,
     .max = 10000,
     .desc = "Retries of a failed batch (a sync trigger's function failed) before its "
	     "records are given up to on_failure; -1: until it succeeds (the partition "
	     "waits)."},
    {.type = TD_OPT_BOOL,
     .name = "bisect_on_error",
     .def = "false",
     .offset = O(bisect_on_error),
     .desc = "Split a failing batch in two and retry the halves, to isolate the bad "
	     "record."},
    {.type = TD_OPT_INT,
     .name = "batches_in_flight",
     .def = "10",
     .offset = O(batches_in_flight),
     .min = 1,
     .max = 1000,
     .desc = "ordering key or none: most batches of one partition in flight at once (as "
	     "Lambda's ParallelizationFactor); ordering partition has one."},
    {.type = TD_OPT_STRING,
     .name = "on_failure",
     .offset = O(on_failure),
     .desc = "Where a record goes when it is given up (retries exhausted, or older than "
	     "max_record_age), one JSON record per Kafka record, before its offset is "
	     "committed: kafka://THIS-SOURCE/TOPIC (produced with the record's key and "
	     "headers), file:/ABSOLUTE/PATH (JSON lines) or http(s)://URL. Default: none "
	     "(the record is logged as an error and skipped)."},
    {.type = TD_OPT_DURATION,
     .name = "backoff.base",
     .def = "1s",
     .offset = O(backoff_base_ms),
     .min = 1,
     .max = 3600000,
     .desc = "First delay before a failed batch is retried; doubled each time, with "
	     "jitter."},
    {.type = TD_OPT_DURATION,
     .name = "backoff.cap",
     .def = "1m",
     .offset = O(backoff_cap_ms),
     .min = 1,
     .max = 3600000,
     .desc = "Longest delay between retries of a failed batch."},
    {.type = TD_OPT_DURATION,
     .name = "rebalance_grace",
     .def = "10s",
     .offset = O(rebalance_grace_ms),
     .min = 0,
     .max = 300000,
     .desc = "When partitions are taken away (rebalance), how long their batches in "
	     "flight may take to finish before they are given up (the next owner then "
	     "reads them again)."},
    {0},
};

/* Properties triggerd sets from its own options or needs as they are. */
static const char *const managed[][2] = {
    {"bootstrap.servers", "brokers"},
    {"metadata.broker.list", "brokers"},
    {"group.id", "group"},
    {"auto.offset.reset", "start"},
    {"enable.auto.commit", NULL},
    {"enable.auto.offset.store", NULL},
    {"enable.partition.eof", NULL},
};

/*
 * Checks one "name=value" property: its form, that triggerd does not manage it, and that
 * librdkafka accepts it (on scratch). Messages name only what is before '=': the value
 * may be a secret, so librdkafka's own message is shown only when it does not quote it.
 */
static void check_property(const char *prop, size_t index, rd_kafka_conf_t *scratch,
			   const char *file, int line, struct td_diag *diag)
{
	const char *eq = strchr(prop, '=');
	size_t n = eq ? (size_t)(eq - prop) : 0;

	if (!eq || n == 0 || n > 128) {
		td_diag_add(diag, file, line, "option 'rdkafka'[%zu]: expected \"name=value\"",
			    index);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (!islower((unsigned char)prop[i]) && !isdigit((unsigned char)prop[i]) &&
		    prop[i] != '.' && prop[i] != '_') {
			td_diag_add(diag, file, line,
				    "option 'rdkafka': \"%.*s\" is not a librdkafka property name",
				    (int)n, prop);
			return;
		}
	}
	for (size_t i = 0; i < sizeof managed / sizeof managed[0]; i++) {
		if (strlen(managed[i][0]) == n && strncmp(prop, managed[i][0], n) == 0) {
			if (managed[i][1])
				td_diag_add(diag, file, line,
					    "option 'rdkafka': set %s with option '%s'",
					    managed[i][0], managed[i][1]);
			else
				td_diag_add(diag, file, line,
					    "option 'rdkafka': %s is managed by triggerd (offsets "
					    "are committed when events are settled)",
					    managed[i][0]);
			return;
		}
	}
	if (!scratch)
		return;
	char name[129], errstr[512];
	memcpy(name, prop, n);
	name[n] = '\0';
	if (rd_kafka_conf_set(scratch, name, eq + 1, errstr, sizeof errstr) == RD_KAFKA_CONF_OK)
		return;
	if (eq[1] && strstr(errstr, eq + 1))
		td_diag_add(diag, file, line,
			    "option 'rdkafka': librdkafka refuses the value of property %s", name);
	else
		td_diag_add(diag, file, line, "option 'rdkafka': %s: %s", name, errstr);
}

static bool valid_topic_name(const char *t)
{
	return td_kafka_topic_check(t, NULL, 0) == 0;
}

/* on_failure: kafka://SOURCE/TOPIC, file:/ABSOLUTE, http(s)://URL. */
static void check_destination(const char *d, const char *file, int line, struct td_diag *diag)
{
	char err[256];
	if (strncmp(d, "kafka://", 8) == 0) {
		const char *rest = d + 8, *slash = strchr(rest, '/');
		if (!slash || slash == rest)
			td_diag_add(diag, file, line,
				    "option 'on_failure': write kafka://SOURCE/TOPIC (SOURCE: the "
				    "name of this source)");
		else if (td_kafka_topic_check(slash + 1, err, sizeof err) < 0)
			td_diag_add(diag, file, line, "option 'on_failure': %s", err);
		return;
	}
	if (strncmp(d, "file:", 5) == 0) {
		const char *path = d + 5;
		if (strncmp(path, "//", 2) == 0)
			path += 2;
		if (path[0] != '/')
			td_diag_add(
			    diag, file, line,
			    "option 'on_failure': \"%.200s\": file paths must be absolute here", d);
		return;
	}
	if (strncmp(d, "http://", 7) == 0 || strncmp(d, "https://", 8) == 0) {
		if (td_url_check(d, "http://|https://", err, sizeof err) < 0)
			td_diag_add(diag, file, line, "option 'on_failure': %s", err);
		return;
	}
	td_diag_add(diag, file, line,
		    "option 'on_failure': \"%.200s\" is not a destination (kafka://SOURCE/TOPIC, "
		    "file:/PATH or http(s)://URL)",
		    d);
}

static void kafka_check(const void *p, const char *file, int line, struct td_diag *diag)
{
	const struct kafka_opts *o = p;

	for (size_t i = 0; i < o->brokers.n; i++)
		if (strpbrk(o->brokers.v[i], " \t\r\n") || o->brokers.v[i][0] == ',')
			td_diag_add(diag, file, line,
				    "option 'brokers': \"%.200s\" is not host:port[,host:port...]",
				    o->brokers.v[i]);
	for (size_t i = 0; i < o->topics.n; i++) {
		const char *t = o->topics.v[i];
		if (t[0] == '^') {
			regex_t re;
			if (regcomp(&re, t, REG_EXTENDED | REG_NOSUB) != 0)
				td_diag_add(diag, file, line,
					    "option 'topics': \"%.200s\" is not a valid regular "
					    "expression",
					    t);
			else
				regfree(&re);
		} else if (!valid_topic_name(t)) {
			td_diag_add(diag, file, line,
				    "option 'topics': \"%.200s\" is not a topic name (letters, "
				    "digits, '.', '_', '-'; or ^regex)",
				    t);
		}
	}
	rd_kafka_conf_t *scratch = rd_kafka_conf_new();
	for (size_t i = 0; i < o->rdkafka.n; i++)
		check_property(o->rdkafka.v[i], i, scratch, file, line, diag);
	if (scratch)
		rd_kafka_conf_destroy(scratch);
	if (o->on_failure)
		check_destination(o->on_failure, file, line, diag);
	if (o->backoff_cap_ms < o->backoff_base_ms)
		td_diag_add(diag, file, line,
			    "option 'backoff.cap' must not be below option 'backoff.base'");
}

/* ---- runtime: shared state ------------------------------------------------------- */

#define CHUNK_MAX	    512	     /* records per hand-over to the engine */
#define SCRATCH_KEEP	    65536    /* the JSON scratch buffer is kept up to this size */
#define BUFFER_MAX	    5000     /* records waiting in one partition before it is paused */
#define STUCK_MS	    1000     /* a partition that starts nothing this long is paused */
#define FLOW_MIN	    1000     /* waiting in flowing partitions before the reader waits */
#define FLOW_WAIT_MAX_MS    500	     /* it still polls this often (rebalances) */
#define PREFETCH_RECORDS    "5000"   /* queued.min.messages */
#define PREFETCH_KBYTES	    "512"    /* queued.max.messages.kbytes */
#define FETCH_MAX_BYTES	    "262144" /* fetch.max.bytes and message.max.bytes */
#define WAKE_MIN_MS	    2	     /* the fetchers are woken at most this often */
#define WAKE_TIMEOUT_MS	    500	     /* a wake-up request waits this long for its answers */
#define STORE_DELAY_MS	    5	     /* positions are stored at most this late */
#define BUSY_RETRY_MAX_MS   1000     /* a busy batch is offered again at least this often */
#define PROBE_INTERVAL_MS   2000     /* metadata probes while not ready */
#define PROBE_TIMEOUT_MS    1500
#define CLOSE_WAIT_MS	    10000 /* destroy waits this long for the consumer to close */
#define PRODUCER_FLUSH_MS   3000
#define DLQ_BACKOFF_BASE_MS 500
#define DLQ_BACKOFF_CAP_MS  30000

enum batch_state {
	B_NEW,
	B_SUBMITTED,  /* handed to the router, waiting for its settle */
	B_RETRY_WAIT, /* failed: retried when its timer fires */
	B_BUSY_WAIT,  /* not taken: offered again when its timer fires */
	B_DEFERRED,   /* the second half of a split, waiting for the first */
	B_DLQ,	      /* only waiting for dead letters on their way */
};

enum dlq_kind { DLQ_NONE, DLQ_KAFKA, DLQ_DEST };

struct kafka_ctx;

/*
 * Shared by the engine thread, the consumer thread, librdkafka's threads and everything
 * queued to the engine; reference-counted. ctx is read and cleared on the engine thread
 * only (the consumer thread reads it while it runs, before destroy); the rest under lock.
 */
struct kafka_rt {
	atomic_int refs;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_mutex_t log_lock; /* the rate limits below */
	struct td_log_ratelimit rl_log, rl_error;
	bool stopping, closing, closed;
	struct kafka_ctx *ctx;
	struct td_source *src; /* NULL once destroyed */
	struct td_engine *engine;
	rd_kafka_t *rk; /* the consumer */
	char scope[96];
	char bootstrap[256]; /* for messages */
	/* flow control: records waiting in partitions that are not paused */
	atomic_long flowing;
	atomic_bool consumer_waiting;
	atomic_long flow_high;	 /* max(FLOW_MIN, 2 x batch_size x assigned partitions) */
	atomic_bool pause_dirty; /* a partition's pause_want changed (see apply_pauses) */
	/* records done with, to be freed by the consumer thread that made them (rec_bury) */
	_Atomic(struct td_kafka_rec *) graves;
	/* health */
	bool joined;
	char brokers_err[512], topics_err[512], fatal_err[512];
	bool probe_now;
};

/* One partition of the current assignment (or one being given up). */
struct kpart {
	struct kpart *next;  /* ctx->parts (engine thread) */
	struct kpart *cnext; /* the consumer thread's list */
	struct kafka_ctx *ctx;
	char *topic;
	int partition;
	struct td_kafka_sched sched;
	struct revoke_op *revoke;
	bool revoking, dead, paused, busy, touched, pumping, repump;
	atomic_bool pause_want; /* paused, for the consumer thread to apply (apply_pauses) */
	struct td_timer *window_timer;
	long long window_at;
	int submitted;	  /* batches the router has not settled yet */
	int dlq_inflight; /* dead letters on their way */
	size_t buffer_max;
	long long wait_since; /* since when records wait without a batch starting */
	long flow_counted;    /* this partition's share of rt->flowing */
	bool store_dirty;     /* store_pos waits for the store timer */
	long long store_pos;
	struct kpart *dnext; /* ctx->dirty */
	struct kpart *tnext; /* touched list of one chunk */
	/* consumer thread only: */
	struct td_kafka_json_prefix jp; /* batch mode: the parts its records' JSON share */
	long long c_next;		/* the offset after the last record read, -1: none yet */
	bool c_paused;			/* what librdkafka was told (apply_pauses) */
};

/* What a record carries (the scheduler's item). */
struct kitem {
	struct td_event *ev; /* batch_size 1: the event (NULL: it could not be built); else
				made from json when a dead letter needs it */
	char *json;	     /* batch_size > 1: the event's structured JSON (in the record's
				block, struct krec) */
	size_t json_len;
	char *subject;	 /* batch_size > 1: the event's subject, or NULL (in the block too) */
	long long ts_ms; /* the record's timestamp, -1: none */
	int ts_type;	 /* enum td_kafka_ts_type */
};

struct chunk_item {
	struct kpart *p;
	struct td_kafka_rec *r;
};

struct chunk {
	struct kafka_rt *rt;
	size_t n;
	struct chunk_item items[CHUNK_MAX];
};

struct waiter {
	int refs; /* under rt->lock */
	bool done;
};

struct assign_op {
	struct kafka_rt *rt;
	size_t n;
	struct kpart **parts;
};

struct revoke_op {
	struct kafka_rt *rt;
	struct waiter *w;
	bool lost;
	int remaining;
	struct td_timer *timer;
	struct revoke_op *next; /* ctx->revokes */
	size_t n;
	struct kpart **parts;
};

/* A dead letter on its way (engine thread). r NULL: orphaned (its batch was given up). */
struct dlq_send {
	struct kafka_rt *rt;
	struct td_kafka_rec *r;
	char *record;
	size_t len;
	int attempt;
	struct td_timer *timer;
	struct dlq_send *prev, *next;
};

/* A record handed to the producer; done runs on the engine thread. */
struct prod_item {
	struct kafka_rt *rt;
	void (*done)(void *arg, bool ok, const char *error);
	void *arg;
	bool ok;
	char error[256];
};

struct kafka_ctx {
	struct td_source *src;
	const struct kafka_opts *o;
	struct td_engine *engine;
	struct kafka_rt *rt;
	char *source_attr; /* "triggerd/kafka/NAME" */
	char *bootstrap;   /* "a:9092,b:9092" */
	bool stopped;
	struct kpart *parts;
	struct revoke_op *revokes;
	int busy_waiting;    /* batches in B_BUSY_WAIT */
	int nparts;	     /* partitions in parts that are not dead */
	struct kpart *dirty; /* positions to store */
	struct td_timer *store_timer;
	/* consumer thread */
	pthread_t thread;
	bool thread_started;
	struct kpart *cmap, *ccache;
	struct chunk *chunk;
	struct td_buf scratch; /* a record's JSON before it is copied into its block */
	long long next_probe_ms;
	/* the waker thread (see wake), started and joined by the consumer thread */
	pthread_t waker;
	bool waker_started;
	pthread_mutex_t wlock;
	pthread_cond_t wcond;
	rd_kafka_topic_partition_list_t *wtodo; /* under wlock: partitions to wake, or NULL */
	bool wbusy, wstop;			/* under wlock: a request on its way; stop */
	long long wlast_ms;			/* consumer thread: the last request */
	long long wlow_msgs, wlow_bytes;	/* half of queued.min.messages and .kbytes */
	long long read_n, read_bytes;		/* records read and their key + value bytes */
	/* dead letters */
	int dlq_kind;
	char *dlq_topic;
	struct td_destination *dlq_dest;
	struct dlq_send *dlqs;
	/* producer */
	rd_kafka_t *producer;
	pthread_t prod_thread;
	bool prod_started;
	atomic_bool prod_stop;
	struct td_log_ratelimit rl;
};

static struct kafka_rt *rt_ref(struct kafka_rt *rt)
{
	atomic_fetch_add(&rt->refs, 1);
	return rt;
}

/*
 * Any thread (mostly the engine's, through the schedulers): a record that is done with
 * goes back to the consumer thread, which allocated it and frees it there (graves_free),
 * in one list it takes whole. Freed on the engine thread, records made the two threads
 * contend for the allocator's lock of the consumer thread's arena.
 */
static void rec_bury(struct td_kafka_rec *r, void *arg)
{
	struct kafka_rt *rt = arg;
	struct td_kafka_rec *head = atomic_load_explicit(&rt->graves, memory_order_relaxed);
	do
		r->next = head;
	while (!atomic_compare_exchange_weak_explicit(&rt->graves, &head, r, memory_order_release,
						      memory_order_relaxed));
}

/* Frees the buried records: the consumer thread each round, and the last rt_unref. */
static void graves_free(struct kafka_rt *rt)
{
	struct td_kafka_rec *r = atomic_exchange_explicit(&rt->graves, NULL, memory_order_acquire);
	while (r) {
		struct td_kafka_rec *next = r->next;
		free(r);
		r = next;
	}
}

static void rt_unref(struct kafka_rt *rt)
{
	if (!rt || atomic_fetch_sub(&rt->refs, 1) != 1)
		return;
	graves_free(rt);
	pthread_mutex_destroy(&rt->lock);
	pthread_mutex_destroy(&rt->log_lock);
	pthread_cond_destroy(&rt->cond);
	free(rt);
}

static bool rt_ratelimit(struct kafka_rt *rt, struct td_log_ratelimit *rl)
{
	pthread_mutex_lock(&rt->log_lock);
	bool ok = td_log_ratelimit(rl, 5, 10000);
	pthread_mutex_unlock(&rt->log_lock);
	return ok;
}

static struct kpart *part_of(const struct td_kafka_batch *b)
{
	return (struct kpart *)((char *)b->sched - offsetof(struct kpart, sched));
}

/* A record, its item and (batch mode) the item's JSON and subject are one allocation
 * (struct krec); the scheduler frees the record, this frees what the item holds beside. */
struct krec {
	struct td_kafka_rec r; /* first: free(&krec->r) frees the block */
	struct kitem it;
	char text[]; /* json, NUL, subject, NUL */
};

static void item_free(void *p)
{
	struct kitem *it = p;
	td_event_unref(it->ev);
}

/* The record's event, made from its JSON when only that was kept; NULL if unreadable. */
static struct td_event *item_event(struct kitem *it)
{
	if (!it->ev && it->json)
		it->ev = td_event_from_json(it->json, it->json_len, NULL, 0);
	return it->ev;
}

static void rec_free(struct td_kafka_rec *r)
{
	if (r->item)
		item_free(r->item);
	free(r);
}

/* ---- health (/readyz) ---- */

/* Publishes ready or not, and why, from the health fields (any thread; takes rt->lock). */
static void health_publish(struct kafka_rt *rt)
{
	char reason[700];
	bool ready = false;
	pthread_mutex_lock(&rt->lock);
	if (rt->fatal_err[0])
		snprintf(reason, sizeof reason, "%s", rt->fatal_err);
	else if (rt->brokers_err[0])
		snprintf(reason, sizeof reason, "%s", rt->brokers_err);
	else if (rt->topics_err[0])
		snprintf(reason, sizeof reason, "%s", rt->topics_err);
	else if (!rt->joined)
		snprintf(reason, sizeof reason, "joining the consumer group");
	else
		ready = true;
	if (rt->src && !rt->stopping)
		td_source_set_ready(rt->src, ready, ready ? NULL : reason);
	pthread_mutex_unlock(&rt->lock);
}

static void health_set(struct kafka_rt *rt, char *field, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void health_set(struct kafka_rt *rt, char *field, size_t cap, const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&rt->lock);
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(field, cap, fmt, ap);
		va_end(ap);
	} else {
		field[0] = '\0';
	}
	pthread_mutex_unlock(&rt->lock);
	health_publish(rt);
}

/* ---- librdkafka callbacks (any thread) ---- */

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	struct kafka_rt *rt = rd_kafka_opaque(rk);
	if (!rt)
		return;
	/* A producer made from the source's properties warns about consumer-only ones. */
	if (strcmp(fac, "CONFWARN") == 0 && rd_kafka_type(rk) == RD_KAFKA_PRODUCER)
		level = 7;
	if (level <= 4 && !rt_ratelimit(rt, &rt->rl_log))
		return;
	if (level <= 3)
		td_logs_error(rt->scope, "librdkafka %s: %s", fac, buf);
	else if (level == 4)
		td_logs_warn(rt->scope, "librdkafka %s: %s", fac, buf);
	else if (level <= 6)
		td_logs_info(rt->scope, "librdkafka %s: %s", fac, buf);
	else
		td_logs_debug(rt->scope, "librdkafka %s: %s", fac, buf);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct kafka_rt *rt = opaque;
	bool consumer = rd_kafka_type(rk) == RD_KAFKA_CONSUMER;
	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		char why[400];
		rd_kafka_fatal_error(rk, why, sizeof why);
		td_logs_error(rt->scope, "fatal error: %s", why);
		if (consumer)
			health_set(rt, rt->fatal_err, sizeof rt->fatal_err, "fatal error: %s", why);
		return;
	}
	if (consumer &&
	    (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ||
	     err == RD_KAFKA_RESP_ERR__AUTHENTICATION || err == RD_KAFKA_RESP_ERR__RESOLVE)) {
		pthread_mutex_lock(&rt->lock);
		rt->probe_now = true;
		pthread_mutex_unlock(&rt->lock);
		health_set(rt, rt->brokers_err, sizeof rt->brokers_err,
			   "cannot reach the brokers %s: %s", rt->bootstrap, reason);
	}
	if (rt_ratelimit(rt, &rt->rl_error))
		td_logs_warn(rt->scope, "%s: %s", consumer ? "consumer" : "producer", reason);
}

/* ---- the engine side: partitions, batches, settlements ---- */

static void part_pump(struct kafka_ctx *ctx, struct kpart *p);
static void batch_start(struct kafka_ctx *ctx, struct td_kafka_batch *b);
static void revoke_check(struct kafka_ctx *ctx, struct kpart *p);
static void dlq_free(struct dlq_send *d);

static void describe_batch(const struct td_kafka_batch *b, char *out, size_t cap)
{
	const struct kpart *p = part_of(b);
	if (b->n == 1)
		snprintf(out, cap, "record %s-%d-%lld", p->topic, p->partition, b->recs[0]->offset);
	else
		snprintf(out, cap, "batch %s-%d-%lld..%lld (%zu records)", p->topic, p->partition,
			 b->recs[0]->offset, b->recs[b->n - 1]->offset, b->n);
}

/* Stores the positions of the dirty partitions (one librdkafka call). */
static void store_flush(struct kafka_ctx *ctx)
{
	if (!ctx->dirty)
		return;
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
	for (struct kpart *p = ctx->dirty; p; p = p->dnext) {
		p->store_dirty = false;
		if (!p->dead && l)
			rd_kafka_topic_partition_list_add(l, p->topic, p->partition)->offset =
			    p->store_pos;
	}
	ctx->dirty = NULL;
	if (!l)
		return;
	if (l->cnt > 0 && rd_kafka_offsets_store(ctx->rt->rk, l) != RD_KAFKA_RESP_ERR_NO_ERROR)
		td_logs_debug(ctx->rt->scope, "offsets not stored (partitions no longer assigned)");
	for (int i = 0; i < l->cnt; i++)
		if (l->elems[i].err)
			td_logs_debug(ctx->rt->scope, "offset %lld of %s-%d not stored: %s",
				      (long long)l->elems[i].offset, l->elems[i].topic,
				      l->elems[i].partition, rd_kafka_err2str(l->elems[i].err));
	rd_kafka_topic_partition_list_destroy(l);
}

static void store_fired(void *arg)
{
	struct kafka_ctx *ctx = arg;
	ctx->store_timer = NULL;
	store_flush(ctx);
}

/* Records position as p's next offset to commit; stored within STORE_DELAY_MS. */
static void store_offset(struct kafka_ctx *ctx, struct kpart *p, long long position)
{
	if (p->dead)
		return;
	p->store_pos = position;
	if (!p->store_dirty) {
		p->store_dirty = true;
		p->dnext = ctx->dirty;
		ctx->dirty = p;
	}
	if (!ctx->store_timer)
		ctx->store_timer = td_timer_add(ctx->engine, STORE_DELAY_MS, store_fired, ctx);
}

static void wake_consumer(struct kafka_rt *rt)
{
	if (!atomic_load(&rt->consumer_waiting))
		return;
	pthread_mutex_lock(&rt->lock);
	pthread_cond_broadcast(&rt->cond);
	pthread_mutex_unlock(&rt->lock);
}

/*
 * Pauses a partition that is stuck (records wait and no batch started for STUCK_MS: a
 * failing record retried, a slow key), whose function is busy, or that holds
 * buffer_max records; resumes it once it is down to one batch. Pausing is kept for
 * these cases because librdkafka drops what it prefetched for a paused partition. The
 * consumer thread tells librdkafka (apply_pauses), never while it reads: see there.
 * Also keeps p's share of the records that the consumer thread's flow control counts
 * (paused partitions do not count, so a stuck partition does not hold the others back).
 */
static void update_pause(struct kafka_ctx *ctx, struct kpart *p)
{
	bool live = !p->dead && !p->revoking && !ctx->stopped;
	size_t n = p->sched.pending;
	if (n == 0)
		p->wait_since = td_now_ms();
	bool stuck = n > 0 && td_now_ms() - p->wait_since >= STUCK_MS;
	bool want = live && (p->busy || stuck || n >= p->buffer_max ||
			     (p->paused && n > p->sched.conf.batch_size));
	if (want != p->paused) {
		p->paused = want;
		atomic_store(&p->pause_want, want);
		atomic_store(&ctx->rt->pause_dirty, true);
		wake_consumer(ctx->rt);
		td_logs_debug(ctx->rt->scope, "%s %s-%d (%zu records waiting%s)",
			      want ? "paused" : "resumed", p->topic, p->partition, n,
			      p->busy ? ", function busy"
			      : stuck ? ", none started lately"
				      : "");
	}
	long count = live && !p->paused ? (long)p->sched.pending : 0;
	if (count != p->flow_counted) {
		long total = atomic_fetch_add(&ctx->rt->flowing, count - p->flow_counted) + count -
			     p->flow_counted;
		bool fell = count < p->flow_counted;
		p->flow_counted = count;
		if (fell && total <= atomic_load(&ctx->rt->flow_high) / 2)
			wake_consumer(ctx->rt);
	}
}

/* Orphans the dead letters of b's records (b is about to be given up). */
static void orphan_dlqs(struct kafka_ctx *ctx, struct td_kafka_batch *b)
{
	if (b->outstanding == 0)
		return;
	struct kpart *p = part_of(b);
	for (struct dlq_send *d = ctx->dlqs; d; d = d->next)
		if (d->r && d->r->batch == b) {
			d->r = NULL;
			p->dlq_inflight--;
		}
	b->outstanding = 0;
}

/* Gives b up without settling its records (stop, revocation). */
static void batch_drop(struct kafka_ctx *ctx, struct td_kafka_batch *b)
{
	struct kpart *p = part_of(b);
	if (b->timer) {
		td_timer_cancel(ctx->engine, b->timer);
		b->timer = NULL;
	}
	if (b->state == B_BUSY_WAIT)
		ctx->busy_waiting--;
	orphan_dlqs(ctx, b);
	td_kafka_sched_abandon(&p->sched, b);
}

static void part_free(struct kafka_ctx *ctx, struct kpart *p)
{
	if (p->store_dirty)
		for (struct kpart **pp = &ctx->dirty; *pp; pp = &(*pp)->dnext)
			if (*pp == p) {
				*pp = p->dnext;
				break;
			}
	if (p->flow_counted)
		atomic_fetch_sub(&ctx->rt->flowing, p->flow_counted);
	if (p->window_timer)
		td_timer_cancel(ctx->engine, p->window_timer);
	while (p->sched.live)
		batch_drop(ctx, p->sched.live);
	td_kafka_sched_free(&p->sched);
	td_kafka_json_prefix_free(&p->jp);
	free(p->topic);
	free(p);
}

/* Enough records may wait to fill two batches of every partition. */
static void flow_resize(struct kafka_ctx *ctx)
{
	long want = 2 * (long)ctx->o->batch_size * (ctx->nparts > 0 ? ctx->nparts : 1);
	atomic_store(&ctx->rt->flow_high, want > FLOW_MIN ? want : FLOW_MIN);
	wake_consumer(ctx->rt);
}

static void part_maybe_free(struct kafka_ctx *ctx, struct kpart *p)
{
	if (!p->dead || p->submitted > 0)
		return;
	for (struct kpart **pp = &ctx->parts; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	part_free(ctx, p);
}

/* All of b's records are done: settle them, store the new position, go on. */
static void batch_done(struct kafka_ctx *ctx, struct td_kafka_batch *b)
{
	struct kpart *p = part_of(b);
	struct td_kafka_batch *resume;
	long long pos;
	if (td_kafka_sched_settle(&p->sched, b, &pos, &resume) == 1)
		store_offset(ctx, p, pos);
	if (resume)
		batch_start(ctx, resume);
	part_pump(ctx, p);
	revoke_check(ctx, p);
}

static void batch_maybe_done(struct kafka_ctx *ctx, struct td_kafka_batch *b)
{
	if (b->state == B_DLQ && b->outstanding == 0)
		batch_done(ctx, b);
}

/* ---- producing (kafka:// destinations, dead letters) ---- */

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);

static void *producer_main(void *arg)
{
	struct kafka_ctx *ctx = arg;
	while (!atomic_load(&ctx->prod_stop))
		rd_kafka_poll(ctx->producer, 100);
	rd_kafka_poll(ctx->producer, 0);
	return NULL;
}

static void apply_user_properties(rd_kafka_conf_t *conf, const struct kafka_opts *o)
{
	for (size_t i = 0; i < o->rdkafka.n; i++) {
		const char *prop = o->rdkafka.v[i], *eq = strchr(prop, '=');
		char name[129], errstr[256];
		if (!eq || (size_t)(eq - prop) >= sizeof name)
			continue;
		memcpy(name, prop, (size_t)(eq - prop));
		name[eq - prop] = '\0';
		rd_kafka_conf_set(conf, name, eq + 1, errstr, sizeof errstr); /* checked at load */
	}
}

static rd_kafka_t *producer_get(struct kafka_ctx *ctx, char *err, size_t errlen)
{
	char errstr[512];
	if (ctx->producer)
		return ctx->producer;
	if (!ctx->bootstrap || !ctx->rt) {
		snprintf(err, errlen, "the source did not start");
		return NULL;
	}
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (!conf) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof errstr);
	rd_kafka_conf_set(conf, "client.id", "triggerd", errstr, sizeof errstr);
	apply_user_properties(conf, ctx->o);
	if (rd_kafka_conf_set(conf, "bootstrap.servers", ctx->bootstrap, errstr, sizeof errstr) !=
	    RD_KAFKA_CONF_OK) {
		snprintf(err, errlen, "cannot configure the producer: %s", errstr);
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rd_kafka_conf_set_opaque(conf, ctx->rt);
	rd_kafka_conf_set_log_cb(conf, log_cb);
	rd_kafka_conf_set_error_cb(conf, error_cb);
	rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
	if (!rk) {
		snprintf(err, errlen, "cannot create the producer: %s", errstr);
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	ctx->producer = rk;
	atomic_store(&ctx->prod_stop, false);
	if (pthread_create(&ctx->prod_thread, NULL, producer_main, ctx) != 0) {
		snprintf(err, errlen, "cannot start the producer thread: %s", strerror(errno));
		rd_kafka_destroy(rk);
		ctx->producer = NULL;
		return NULL;
	}
	pthread_setname_np(ctx->prod_thread, "td-kafka-prod");
	ctx->prod_started = true;
	return rk;
}

static void prod_done(void *arg)
{
	struct prod_item *item = arg;
	item->done(item->arg, item->ok, item->ok ? NULL : item->error);
	rt_unref(item->rt);
	free(item);
}

/* Producer poll thread: a delivery report. */
static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct kafka_rt *rt = opaque;
	struct prod_item *item = m->_private;
	(void)rk;
	if (!item)
		return;
	item->ok = m->err == RD_KAFKA_RESP_ERR_NO_ERROR;
	if (!item->ok)
		snprintf(item->error, sizeof item->error, "%s", rd_kafka_err2str(m->err));
	if (td_engine_call(rt->engine, prod_done, item) < 0) {
		rt_unref(item->rt); /* the engine is gone: nobody waits any more */
		free(item);
	}
}

/* Runs done(arg, ok, error) later on the engine thread. */
struct deferred {
	void (*done)(void *arg, bool ok, const char *error);
	void *arg;
	bool ok;
	char error[300];
};

static void deferred_run(void *arg)
{
	struct deferred *d = arg;
	d->done(d->arg, d->ok, d->ok ? NULL : d->error);
	free(d);
}

static void defer_done(struct kafka_ctx *ctx, void (*done)(void *arg, bool ok, const char *error),
		       void *arg, bool ok, const char *error)
{
	struct deferred *d = calloc(1, sizeof *d);
	if (!d) {
		done(arg, false, "out of memory");
		return;
	}
	d->done = done;
	d->arg = arg;
	d->ok = ok;
	snprintf(d->error, sizeof d->error, "%s", error ? error : "");
	if (td_engine_call(ctx->engine, deferred_run, d) < 0)
		deferred_run(d);
}

/* Produces value to topic with o's key and headers; done runs later on the engine. */
static void produce(struct kafka_ctx *ctx, const char *topic, const struct td_kafka_origin *o,
		    const void *value, size_t len,
		    void (*done)(void *arg, bool ok, const char *error), void *arg)
{
	char err[600];
	rd_kafka_t *rk = producer_get(ctx, err, sizeof err);
	if (!rk) {
		defer_done(ctx, done, arg, false, err);
		return;
	}
	struct prod_item *item = calloc(1, sizeof *item);
	rd_kafka_headers_t *hdrs = o && o->nheaders ? rd_kafka_headers_new(o->nheaders) : NULL;
	if (!item || (o && o->nheaders && !hdrs)) {
		free(item);
		if (hdrs)
			rd_kafka_headers_destroy(hdrs);
		defer_done(ctx, done, arg, false, "out of memory");
		return;
	}
	for (size_t i = 0; hdrs && i < o->nheaders; i++)
		rd_kafka_header_add(hdrs, o->headers[i].name, -1, o->headers[i].value,
				    o->headers[i].value ? (ssize_t)o->headers[i].value_len : 0);
	item->rt = rt_ref(ctx->rt);
	item->done = done;
	item->arg = arg;
	rd_kafka_vu_t vu[6];
	size_t n = 0;
	vu[n].vtype = RD_KAFKA_VTYPE_TOPIC;
	vu[n++].u.cstr = topic;
	vu[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
	vu[n++].u.i = RD_KAFKA_MSG_F_COPY;
	vu[n].vtype = RD_KAFKA_VTYPE_VALUE;
	vu[n].u.mem.ptr = (void *)value;
	vu[n++].u.mem.size = len;
	if (o && o->key) {
		vu[n].vtype = RD_KAFKA_VTYPE_KEY;
		vu[n].u.mem.ptr = o->key;
		vu[n++].u.mem.size = o->key_len;
	}
	if (hdrs) {
		vu[n].vtype = RD_KAFKA_VTYPE_HEADERS;
		vu[n++].u.headers = hdrs;
	}
	vu[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
	vu[n++].u.ptr = item;
	rd_kafka_error_t *e = rd_kafka_produceva(rk, vu, n);
	if (e) {
		snprintf(err, sizeof err, "cannot produce to %s: %s", topic,
			 rd_kafka_error_string(e));
		rd_kafka_error_destroy(e);
		if (hdrs)
			rd_kafka_headers_destroy(hdrs);
		rt_unref(item->rt);
		free(item);
		defer_done(ctx, done, arg, false, err);
	}
}

/* The publish op: kafka://SOURCE/topic destinations of triggers. */
static void kafka_publish(struct td_source *src, const char *target, const void *record, size_t len,
			  void (*done)(void *arg, bool ok, const char *error), void *arg)
{
	struct kafka_ctx *ctx = td_source_ctx(src);
	char err[300];
	struct td_kafka_origin o;
	if (td_kafka_topic_check(target, err, sizeof err) < 0) {
		char why[400];
		snprintf(why, sizeof why, "kafka://%s/%s: %s", td_source_name(src), target, err);
		defer_done(ctx, done, arg, false, why);
		return;
	}
	if (td_kafka_destination_origin(record, len, &o, err, sizeof err) < 0) {
		td_logs_warn(td_source_scope(src), "record for topic %s sent without its key: %s",
			     target, err);
		memset(&o, 0, sizeof o);
	}
	produce(ctx, target, &o, record, len, done, arg);
	td_kafka_origin_clear(&o);
}

/* ---- dead letters ---- */

static void dlq_try(struct kafka_ctx *ctx, struct dlq_send *d);

static void dlq_unlink(struct kafka_ctx *ctx, struct dlq_send *d)
{
	if (d->prev)
		d->prev->next = d->next;
	else if (ctx && ctx->dlqs == d)
		ctx->dlqs = d->next;
	if (d->next)
		d->next->prev = d->prev;
	d->prev = d->next = NULL;
}

static void dlq_free(struct dlq_send *d)
{
	rt_unref(d->rt);
	free(d->record);
	free(d);
}

static void dlq_timer(void *arg)
{
	struct dlq_send *d = arg;
	struct kafka_ctx *ctx = d->rt->ctx;
	d->timer = NULL;
	if (!d->r) {
		dlq_unlink(ctx, d);
		dlq_free(d);
		return;
	}
	dlq_try(ctx, d);
}

static void dlq_done(void *arg, bool ok, const char *error)
{
	struct dlq_send *d = arg;
	struct kafka_ctx *ctx = d->rt->ctx;
	if (!ctx) { /* destroyed meanwhile: already unlinked */
		dlq_free(d);
		return;
	}
	if (!d->r) {
		dlq_unlink(ctx, d);
		dlq_free(d);
		return;
	}
	struct td_kafka_rec *r = d->r;
	struct kitem *it = r->item;
	const char *id = item_event(it) ? td_event_get(it->ev, "id") : "?";
	if (!ok) {
		long long delay =
		    td_backoff_ms(d->attempt, DLQ_BACKOFF_BASE_MS, DLQ_BACKOFF_CAP_MS, 0);
		if (td_log_ratelimit(&ctx->rl, 5, 10000))
			td_logs_error(ctx->rt->scope,
				      "dead letter of %s not stored (%s); trying again in %lld ms",
				      id, error ? error : "failed", delay);
		d->timer = td_timer_add(ctx->engine, delay, dlq_timer, d);
		return;
	}
	td_logs_warn(ctx->rt->scope, "%s dead-lettered to %s", id, ctx->o->on_failure);
	dlq_unlink(ctx, d);
	dlq_free(d);
	struct td_kafka_batch *b = r->batch;
	struct kpart *p = part_of(b);
	r->dlq_busy = false;
	r->handled = true;
	b->outstanding--;
	p->dlq_inflight--;
	batch_maybe_done(ctx, b);
	revoke_check(ctx, p);
}

static void dlq_try(struct kafka_ctx *ctx, struct dlq_send *d)
{
	struct kitem *it = d->r->item;
	d->attempt++;
	if (ctx->dlq_kind == DLQ_KAFKA) {
		struct td_kafka_origin o = {0};
		if (item_event(it) && td_kafka_event_origin(it->ev, &o, NULL, 0) < 0)
			memset(&o, 0, sizeof o);
		produce(ctx, ctx->dlq_topic, &o, d->record, d->len, dlq_done, d);
		td_kafka_origin_clear(&o);
	} else {
		td_destination_send(ctx->dlq_dest, d->record, d->len, dlq_done, d);
	}
}

/* Gives record r of batch b up: to on_failure (awaited), or loudly into the log. */
static void dead_letter(struct kafka_ctx *ctx, struct td_kafka_batch *b, struct td_kafka_rec *r,
			const char *condition, int attempts, const struct td_result *result,
			const char *error)
{
	struct kpart *p = part_of(b);
	struct kitem *it = r->item;
	char rid[37];
	td_uuid4(rid);
	if (ctx->dlq_kind == DLQ_NONE || !item_event(it)) {
		td_logs_error(ctx->rt->scope,
			      "record %s-%d-%lld given up (%s after %d attempts: %s); %s", p->topic,
			      p->partition, r->offset, condition, attempts,
			      error ? error : "failed",
			      it->ev ? "no on_failure destination: skipped"
				     : "it could not be read: skipped");
		r->handled = true;
		return;
	}
	struct td_kafka_failure f = {
	    .source = td_source_name(ctx->src),
	    .condition = condition,
	    .attempts = attempts,
	    .result = result,
	    .error = error,
	    .wall_ms = td_wall_ms(),
	    .batch_size = b->n,
	    .first_offset = b->recs[0]->offset,
	    .last_offset = b->recs[b->n - 1]->offset,
	    .request_id = rid,
	};
	struct dlq_send *d = calloc(1, sizeof *d);
	if (d)
		d->record = td_kafka_dead_letter(it->ev, &f, &d->len);
	if (!d || !d->record) {
		free(d);
		td_logs_error(ctx->rt->scope,
			      "record %s-%d-%lld given up (%s): out of memory for its dead letter; "
			      "skipped",
			      p->topic, p->partition, r->offset, condition);
		r->handled = true;
		return;
	}
	td_logs_warn(ctx->rt->scope, "record %s-%d-%lld given up (%s after %d attempts: %s)",
		     p->topic, p->partition, r->offset, condition, attempts,
		     error ? error : "failed");
	d->rt = rt_ref(ctx->rt);
	d->r = r;
	d->next = ctx->dlqs;
	if (ctx->dlqs)
		ctx->dlqs->prev = d;
	ctx->dlqs = d;
	r->dlq_busy = true;
	b->outstanding++;
	p->dlq_inflight++;
	dlq_try(ctx, d);
}

/* ---- batches ---- */

static void batch_timer(void *arg)
{
	struct td_kafka_batch *b = arg;
	struct kpart *p = part_of(b);
	b->timer = NULL;
	if (b->state == B_BUSY_WAIT)
		p->ctx->busy_waiting--;
	b->state = B_NEW;
	batch_start(p->ctx, b);
}

static struct td_event *batch_event(struct kafka_ctx *ctx, struct td_kafka_batch *b, size_t live)
{
	if (ctx->o->batch_size <= 1) {
		for (size_t i = 0; i < b->n; i++)
			if (!b->recs[i]->handled && !b->recs[i]->dlq_busy)
				return td_event_ref(((struct kitem *)b->recs[i]->item)->ev);
		return NULL;
	}
	struct td_kafka_batch_item *items = malloc(live * sizeof *items);
	struct kpart *p = part_of(b);
	struct td_event *ev = NULL;
	char err[256];
	if (!items)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < b->n; i++) {
		struct td_kafka_rec *r = b->recs[i];
		struct kitem *it = r->item;
		if (r->handled || r->dlq_busy)
			continue;
		items[k++] = (struct td_kafka_batch_item){it->json,    it->json_len, r->offset,
							  it->subject, it->ts_ms,    it->ts_type};
	}
	ev = td_kafka_batch_event(ctx->source_attr, p->topic, p->partition, items, k, err,
				  sizeof err);
	if (!ev)
		td_logs_error(ctx->rt->scope, "%s", err);
	free(items);
	return ev;
}

/* Offers b to the router (first time, retry, or after busy). */
static void batch_start(struct kafka_ctx *ctx, struct td_kafka_batch *b)
{
	struct kpart *p = part_of(b);
	const struct kafka_opts *o = ctx->o;
	if (ctx->stopped || p->revoking || p->dead) {
		batch_drop(ctx, b);
		revoke_check(ctx, p);
		return;
	}
	long long now = td_wall_ms();
	size_t live = 0;
	for (size_t i = 0; i < b->n; i++) {
		struct td_kafka_rec *r = b->recs[i];
		struct kitem *it = r->item;
		if (r->handled || r->dlq_busy)
			continue;
		if (!it->ev && !it->json) {
			dead_letter(ctx, b, r, "Unreadable", b->attempts, NULL,
				    "the record could not be made into an event");
			continue;
		}
		if (o->max_record_age_ms > 0 && it->ts_ms >= 0 &&
		    now - it->ts_ms > o->max_record_age_ms) {
			dead_letter(ctx, b, r, "RecordAgeExceeded", b->attempts, NULL,
				    "older than max_record_age");
			continue;
		}
		live++;
	}
	if (live == 0) {
		b->state = B_DLQ;
		batch_maybe_done(ctx, b);
		return;
	}
	struct td_event *ev = batch_event(ctx, b, live);
	if (!ev) {
		b->state = B_RETRY_WAIT;
		b->timer = td_timer_add(ctx->engine, 1000, batch_timer, b);
		return;
	}
	b->state = B_SUBMITTED;
	p->submitted++;
	int rc = td_source_submit(ctx->src, &ev, 1, b);
	if (rc == 0)
		return;
	/* Not taken (no settle will come): the engine is stopping, or out of memory. */
	p->submitted--;
	if (rc == -TD_ESTATE) {
		batch_drop(ctx, b);
		revoke_check(ctx, p);
		return;
	}
	b->state = B_BUSY_WAIT;
	ctx->busy_waiting++;
	b->timer = td_timer_add(ctx->engine, BUSY_RETRY_MAX_MS, batch_timer, b);
}

static void batch_failed(struct kafka_ctx *ctx, struct td_kafka_batch *b,
			 const struct td_settlement *s)
{
	struct kpart *p = part_of(b);
	const struct kafka_opts *o = ctx->o;
	const char *why = s->reason ? s->reason : "the function failed";
	char what[200];
	size_t live = 0;

	b->attempts++;
	if (ctx->stopped || p->revoking) {
		batch_drop(ctx, b);
		return;
	}
	for (size_t i = 0; i < b->n; i++)
		live += !b->recs[i]->handled && !b->recs[i]->dlq_busy;
	describe_batch(b, what, sizeof what);
	if (o->bisect_on_error && live > 1) {
		struct td_kafka_batch *second;
		if (td_kafka_sched_split(&p->sched, b, &second) == 0) {
			b->outstanding = second->outstanding = 0;
			for (size_t i = 0; i < b->n; i++)
				b->outstanding += b->recs[i]->dlq_busy;
			for (size_t i = 0; i < second->n; i++)
				second->outstanding += second->recs[i]->dlq_busy;
			second->state = B_DEFERRED;
			td_logs_info(ctx->rt->scope, "%s failed (%s): split into %zu + %zu records",
				     what, why, b->n, second->n);
			b->state = B_NEW;
			batch_start(ctx, b);
			return;
		}
	}
	if (o->retries < 0 || b->attempts <= o->retries) {
		long long delay = td_backoff_ms(b->attempts, o->backoff_base_ms, o->backoff_cap_ms,
						s->result ? s->result->retry_after_ms : 0);
		if (delay < 1)
			delay = 1;
		td_logs_warn(ctx->rt->scope, "%s failed (attempt %d: %s); retry in %lld ms", what,
			     b->attempts, why, delay);
		b->state = B_RETRY_WAIT;
		b->timer = td_timer_add(ctx->engine, delay, batch_timer, b);
		return;
	}
	for (size_t i = 0; i < b->n; i++) {
		struct td_kafka_rec *r = b->recs[i];
		if (!r->handled && !r->dlq_busy)
			dead_letter(ctx, b, r, "RetryAttemptsExhausted", b->attempts, s->result,
				    why);
	}
	b->state = B_DLQ;
	batch_maybe_done(ctx, b);
}

static void batch_busy(struct kafka_ctx *ctx, struct td_kafka_batch *b,
		       const struct td_settlement *s)
{
	struct kpart *p = part_of(b);
	if (ctx->stopped || p->revoking) {
		batch_drop(ctx, b);
		return;
	}
	long long delay = s->retry_after_ms;
	if (delay > BUSY_RETRY_MAX_MS)
		delay = BUSY_RETRY_MAX_MS;
	if (delay < 20)
		delay = 20;
	if (!p->busy)
		td_logs_debug(ctx->rt->scope, "%s-%d: not taken (%s); pausing", p->topic,
			      p->partition, s->reason ? s->reason : "busy");
	p->busy = true;
	update_pause(ctx, p);
	b->state = B_BUSY_WAIT;
	ctx->busy_waiting++;
	b->timer = td_timer_add(ctx->engine, delay, batch_timer, b);
}

/* Another batch was taken: offer the busy ones again now. */
static void wake_busy(struct kafka_ctx *ctx)
{
	if (ctx->busy_waiting == 0)
		return;
	for (struct kpart *p = ctx->parts; p; p = p->next)
		for (struct td_kafka_batch *b = p->sched.live; b; b = b->next_live)
			if (b->state == B_BUSY_WAIT && b->timer) {
				td_timer_cancel(ctx->engine, b->timer);
				b->timer = td_timer_add(ctx->engine, 0, batch_timer, b);
			}
}

static void kafka_settle(struct td_source *src, void *handle, const struct td_settlement *s)
{
	struct kafka_ctx *ctx = td_source_ctx(src);
	struct td_kafka_batch *b = handle;
	struct kpart *p = part_of(b);

	p->submitted--;
	if (p->dead) {
		batch_drop(ctx, b);
		part_maybe_free(ctx, p);
		return;
	}
	switch (s->status) {
	case TD_SETTLE_DONE:
		for (size_t i = 0; i < b->n; i++)
			if (!b->recs[i]->dlq_busy)
				b->recs[i]->handled = true;
		if (p->busy) {
			p->busy = false;
			update_pause(ctx, p);
		}
		wake_busy(ctx);
		b->state = B_DLQ;
		batch_maybe_done(ctx, b); /* ends with revoke_check */
		return;
	case TD_SETTLE_FAILED:
		if (p->busy) {
			p->busy = false;
			update_pause(ctx, p);
		}
		batch_failed(ctx, b, s);
		break;
	case TD_SETTLE_BUSY:
		batch_busy(ctx, b, s);
		break;
	}
	revoke_check(ctx, p);
}

/* ---- partitions ---- */

static void window_fired(void *arg)
{
	struct kpart *p = arg;
	p->window_timer = NULL;
	part_pump(p->ctx, p);
}

static void arm_window(struct kafka_ctx *ctx, struct kpart *p, long long wait)
{
	long long at = td_now_ms() + wait;
	if (p->window_timer) {
		if (p->window_at <= at)
			return;
		td_timer_cancel(ctx->engine, p->window_timer);
	}
	p->window_at = at;
	p->window_timer = td_timer_add(ctx->engine, wait, window_fired, p);
}

/* Starts every batch the partition's ordering allows now. */
static void part_pump(struct kafka_ctx *ctx, struct kpart *p)
{
	if (ctx->stopped || p->revoking || p->dead)
		return;
	if (p->pumping) {
		p->repump = true;
		return;
	}
	p->pumping = true;
	do {
		p->repump = false;
		for (;;) {
			long long wait;
			struct td_kafka_batch *b =
			    td_kafka_sched_next(&p->sched, td_now_ms(), &wait);
			if (!b) {
				if (wait > 0)
					arm_window(ctx, p, wait);
				break;
			}
			b->state = B_NEW;
			p->wait_since = td_now_ms();
			batch_start(ctx, b);
		}
	} while (p->repump);
	p->pumping = false;
	update_pause(ctx, p);
}

static void op_done(struct kafka_ctx *ctx, struct revoke_op *op)
{
	if (op->timer)
		td_timer_cancel(ctx->engine, op->timer);
	for (struct revoke_op **pp = &ctx->revokes; *pp; pp = &(*pp)->next)
		if (*pp == op) {
			*pp = op->next;
			break;
		}
	struct kafka_rt *rt = op->rt;
	pthread_mutex_lock(&rt->lock);
	op->w->done = true;
	bool last = --op->w->refs == 0;
	pthread_cond_broadcast(&rt->cond);
	pthread_mutex_unlock(&rt->lock);
	if (last)
		free(op->w);
	rt_unref(rt);
	free(op->parts);
	free(op);
}

/* The partition's work is finished or given up: it is no longer ours. */
static void part_finalize(struct kafka_ctx *ctx, struct kpart *p)
{
	store_flush(ctx); /* the consumer commits right after the revocation */
	struct td_kafka_batch *b = p->sched.live;
	while (b) {
		struct td_kafka_batch *next = b->next_live;
		if (b->state != B_SUBMITTED)
			batch_drop(ctx, b);
		b = next;
	}
	p->dead = true;
	ctx->nparts--;
	flow_resize(ctx);
	update_pause(ctx, p);
	struct revoke_op *op = p->revoke;
	p->revoke = NULL;
	if (op)
		for (size_t i = 0; i < op->n; i++)
			if (op->parts[i] == p)
				op->parts[i] = NULL;
	part_maybe_free(ctx, p);
	if (op && --op->remaining == 0)
		op_done(ctx, op);
}

static void revoke_check(struct kafka_ctx *ctx, struct kpart *p)
{
	if (p->revoking && !p->dead && p->submitted == 0 && p->dlq_inflight == 0)
		part_finalize(ctx, p);
}

static void part_revoke(struct kafka_ctx *ctx, struct kpart *p, bool give_up)
{
	p->revoking = true;
	if (p->window_timer) {
		td_timer_cancel(ctx->engine, p->window_timer);
		p->window_timer = NULL;
	}
	td_kafka_sched_drop_pending(&p->sched);
	update_pause(ctx, p);
	struct td_kafka_batch *b = p->sched.live;
	while (b) {
		struct td_kafka_batch *next = b->next_live;
		if (b->state != B_SUBMITTED && b->outstanding == 0)
			batch_drop(ctx, b);
		b = next;
	}
	if (give_up)
		part_finalize(ctx, p);
	else
		revoke_check(ctx, p);
}

static void revoke_timeout(void *arg)
{
	struct revoke_op *op = arg;
	struct kafka_ctx *ctx = op->rt->ctx;
	op->timer = NULL;
	op->remaining++; /* keeps op while the loop runs */
	for (size_t i = 0; i < op->n; i++) {
		struct kpart *p = op->parts[i];
		if (!p)
			continue;
		td_logs_warn(
		    ctx->rt->scope,
		    "%s-%d revoked: %d batches and %d dead letters still on their way after "
		    "rebalance_grace; given up (the next owner reads them again)",
		    p->topic, p->partition, p->submitted, p->dlq_inflight);
		part_finalize(ctx, p);
	}
	if (--op->remaining == 0)
		op_done(ctx, op);
}

/* ---- hand-overs from the consumer thread (engine thread) ---- */

static void on_chunk(void *arg)
{
	struct chunk *c = arg;
	struct kafka_ctx *ctx = c->rt->ctx;
	struct kpart *touched = NULL;
	for (size_t i = 0; i < c->n; i++) {
		struct kpart *p = c->items[i].p;
		struct td_kafka_rec *r = c->items[i].r;
		if (!ctx || ctx->stopped || p->dead || p->revoking ||
		    td_kafka_sched_add(&p->sched, r) < 0) {
			rec_free(r);
			continue;
		}
		if (!p->touched) {
			p->touched = true;
			p->tnext = touched;
			touched = p;
		}
	}
	while (touched) {
		struct kpart *p = touched;
		touched = p->tnext;
		p->touched = false;
		part_pump(ctx, p);
	}
	rt_unref(c->rt);
	free(c);
}

static void free_kparts(struct kpart **parts, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		td_kafka_sched_free(&parts[i]->sched);
		td_kafka_json_prefix_free(&parts[i]->jp);
		free(parts[i]->topic);
		free(parts[i]);
	}
}

static void on_assign(void *arg)
{
	struct assign_op *op = arg;
	struct kafka_ctx *ctx = op->rt->ctx;
	if (!ctx) {
		free_kparts(op->parts, op->n);
	} else {
		for (size_t i = 0; i < op->n; i++) {
			op->parts[i]->next = ctx->parts;
			ctx->parts = op->parts[i];
			ctx->nparts++;
		}
		flow_resize(ctx);
	}
	rt_unref(op->rt);
	free(op->parts);
	free(op);
}

static void on_revoke(void *arg)
{
	struct revoke_op *op = arg;
	struct kafka_ctx *ctx = op->rt->ctx;
	if (!ctx) {
		op->remaining = 0;
		op->timer = NULL;
		pthread_mutex_lock(&op->rt->lock);
		op->w->done = true;
		bool last = --op->w->refs == 0;
		pthread_cond_broadcast(&op->rt->cond);
		pthread_mutex_unlock(&op->rt->lock);
		if (last)
			free(op->w);
		rt_unref(op->rt);
		free(op->parts);
		free(op);
		return;
	}
	op->next = ctx->revokes;
	ctx->revokes = op;
	op->remaining = (int)op->n + 1;
	for (size_t i = 0; i < op->n; i++)
		op->parts[i]->revoke = op;
	for (size_t i = 0; i < op->n; i++)
		if (op->parts[i])
			part_revoke(ctx, op->parts[i],
				    op->lost || ctx->stopped || ctx->o->rebalance_grace_ms == 0);
	if (--op->remaining == 0) {
		op_done(ctx, op);
		return;
	}
	op->timer = td_timer_add(ctx->engine, ctx->o->rebalance_grace_ms, revoke_timeout, op);
}

/* ---- the consumer thread ---- */

static bool is_stopping(struct kafka_rt *rt)
{
	pthread_mutex_lock(&rt->lock);
	bool s = rt->stopping;
	pthread_mutex_unlock(&rt->lock);
	return s;
}

/* Hands the records read so far to the engine. */
static void chunk_flush(struct kafka_ctx *ctx)
{
	struct chunk *c = ctx->chunk;
	ctx->chunk = NULL;
	if (!c)
		return;
	if (c->n > 0 && td_engine_call(ctx->engine, on_chunk, c) == 0)
		return;
	for (size_t i = 0; i < c->n; i++)
		rec_free(c->items[i].r);
	rt_unref(c->rt);
	free(c);
}

static struct kpart *map_find(struct kafka_ctx *ctx, const char *topic, int partition)
{
	struct kpart *c = ctx->ccache;
	if (c && c->partition == partition && strcmp(c->topic, topic) == 0)
		return c;
	for (struct kpart *p = ctx->cmap; p; p = p->cnext)
		if (p->partition == partition && strcmp(p->topic, topic) == 0) {
			ctx->ccache = p;
			return p;
		}
	return NULL;
}

/* malloc/calloc that wait for memory rather than losing track of a record. */
static void *alloc_wait(struct kafka_ctx *ctx, size_t size, bool zero)
{
	void *p;
	while (!(p = zero ? calloc(1, size) : malloc(size))) {
		if (is_stopping(ctx->rt))
			return NULL;
		td_logs_error(ctx->rt->scope, "out of memory; waiting");
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return p;
}

static void *calloc_wait(struct kafka_ctx *ctx, size_t size)
{
	return alloc_wait(ctx, size, true);
}

static void *malloc_wait(struct kafka_ctx *ctx, size_t size)
{
	return alloc_wait(ctx, size, false);
}

static void message_error(struct kafka_ctx *ctx, const rd_kafka_message_t *m)
{
	struct kafka_rt *rt = ctx->rt;
	const char *topic = m->rkt ? rd_kafka_topic_name(m->rkt) : NULL;
	const char *what = rd_kafka_message_errstr(m);
	if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
		return;
	if (m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
	    m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
	    m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
		pthread_mutex_lock(&rt->lock);
		rt->probe_now = true;
		pthread_mutex_unlock(&rt->lock);
		if (m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
			health_set(rt, rt->topics_err, sizeof rt->topics_err,
				   "topic \"%s\": not authorized", topic ? topic : "?");
		else
			health_set(rt, rt->topics_err, sizeof rt->topics_err,
				   "topic \"%s\" does not exist", topic ? topic : "?");
	}
	if (rt_ratelimit(rt, &rt->rl_error))
		td_logs_warn(rt->scope, "consumer: %s%s%s", topic ? topic : "", topic ? ": " : "",
			     what);
}

/* now_ms: td_now_ms() of this round of reading (the batch window's clock). */
static void take_message(struct kafka_ctx *ctx, const rd_kafka_message_t *m, long long now_ms)
{
	struct kafka_rt *rt = ctx->rt;
	if (m->err) {
		message_error(ctx, m);
		return;
	}
	const char *topic = rd_kafka_topic_name(m->rkt);
	struct kpart *p = map_find(ctx, topic, m->partition);
	if (!p)
		return; /* not (or no longer) ours */
	struct td_kafka_header small[16], *hs = small;
	size_t nh = 0;
	rd_kafka_headers_t *hdrs = NULL;
	if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs) {
		nh = rd_kafka_header_cnt(hdrs);
		if (nh > sizeof small / sizeof small[0] &&
		    !(hs = calloc_wait(ctx, nh * sizeof *hs)))
			return;
		for (size_t i = 0; i < nh; i++) {
			const char *name;
			const void *val;
			size_t size;
			if (rd_kafka_header_get_all(hdrs, i, &name, &val, &size) !=
			    RD_KAFKA_RESP_ERR_NO_ERROR) {
				nh = i;
				break;
			}
			hs[i] = (struct td_kafka_header){name, strlen(name), val, size};
		}
	}
	rd_kafka_timestamp_type_t tstype;
	long long ts = rd_kafka_message_timestamp(m, &tstype);
	struct td_kafka_record rec = {
	    .topic = topic,
	    .partition = m->partition,
	    .offset = m->offset,
	    .key = m->key,
	    .key_len = m->key_len,
	    .value = m->payload,
	    .value_len = m->len,
	    .timestamp_ms = tstype == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? -1 : ts,
	    .timestamp_type = tstype == RD_KAFKA_TIMESTAMP_CREATE_TIME ? TD_KAFKA_TS_CREATE
			      : tstype == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME
				  ? TD_KAFKA_TS_LOG_APPEND
				  : TD_KAFKA_TS_NONE,
	    .headers = hs,
	    .nheaders = nh,
	};
	/* Batch mode: the record's JSON is written into the reused scratch buffer, then
	 * copied once into the record's own block (struct krec): one allocation a record. */
	struct krec *kr;
	struct td_buf *jb = &ctx->scratch;
	bool json_ok = false, has_subject = false;
	size_t extra = 0;
	char err[300];
	if (ctx->o->batch_size > 1) {
		td_buf_reset(jb);
		json_ok = (p->jp.text ? td_kafka_record_json_with(&p->jp, &rec, jb, &has_subject)
				      : td_kafka_record_json(ctx->source_attr, &rec, jb,
							     &has_subject)) == 0;
		if (json_ok)
			extra = jb->len + 1 + (has_subject ? m->key_len + 1 : 0);
		else
			snprintf(err, sizeof err, "record %s-%d-%lld: out of memory", topic,
				 (int)m->partition, (long long)m->offset);
	}
	kr = malloc_wait(ctx, sizeof *kr + extra);
	if (!kr)
		goto out;
	memset(kr, 0, sizeof *kr);
	struct td_kafka_rec *r = &kr->r;
	struct kitem *it = &kr->it;
	it->ts_ms = rec.timestamp_ms;
	it->ts_type = rec.timestamp_type;
	if (json_ok) {
		it->json = kr->text;
		it->json_len = jb->len;
		memcpy(kr->text, jb->data, jb->len + 1);
		if (has_subject) {
			it->subject = kr->text + jb->len + 1;
			memcpy(it->subject, m->key, m->key_len);
			it->subject[m->key_len] = '\0';
		}
	} else if (ctx->o->batch_size <= 1) {
		it->ev = td_kafka_record_event(ctx->source_attr, &rec, err, sizeof err);
	}
	if (jb->cap > SCRATCH_KEEP)
		td_buf_free(jb); /* a huge record: do not keep its size */
	if (!it->ev && !it->json && rt_ratelimit(rt, &rt->rl_error))
		td_logs_error(rt->scope, "%s", err);
	p->c_next = m->offset + 1;
	ctx->read_n++;
	ctx->read_bytes += (long long)(m->len + m->key_len);
	r->offset = m->offset;
	r->arrival_ms = now_ms;
	r->has_key = m->key != NULL;
	/* Only ordering key looks at key hashes (kafka_sched.c). */
	r->key_hash =
	    m->key && ctx->o->ordering == ORDER_KEY ? td_kafka_key_hash(m->key, m->key_len) : 0;
	r->item = it;
	if (!ctx->chunk) {
		ctx->chunk = calloc_wait(ctx, sizeof *ctx->chunk);
		if (!ctx->chunk) {
			rec_free(r);
			goto out;
		}
		ctx->chunk->rt = rt_ref(rt);
	}
	ctx->chunk->items[ctx->chunk->n++] = (struct chunk_item){p, r};
	if (ctx->chunk->n == CHUNK_MAX)
		chunk_flush(ctx);
out:
	if (hs != small)
		free(hs);
}

/* Metadata of the cluster: are the brokers reachable, do the named topics exist? */
static void probe(struct kafka_ctx *ctx)
{
	struct kafka_rt *rt = ctx->rt;
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t e = rd_kafka_metadata(rt->rk, 1, NULL, &md, PROBE_TIMEOUT_MS);
	ctx->next_probe_ms = td_now_ms() + PROBE_INTERVAL_MS;
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		health_set(rt, rt->brokers_err, sizeof rt->brokers_err,
			   "cannot reach the brokers %s: %s", ctx->bootstrap, rd_kafka_err2str(e));
		return;
	}
	char missing[400] = "";
	size_t used = 0;
	int nmissing = 0;
	for (size_t i = 0; i < ctx->o->topics.n; i++) {
		const char *t = ctx->o->topics.v[i];
		bool found = false;
		if (t[0] == '^')
			continue;
		for (int k = 0; k < md->topic_cnt && !found; k++)
			found = strcmp(md->topics[k].topic, t) == 0 &&
				md->topics[k].err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
		if (!found && used < sizeof missing) {
			used += (size_t)snprintf(missing + used, sizeof missing - used, "%s\"%s\"",
						 nmissing ? ", " : "", t);
			nmissing++;
		}
	}
	rd_kafka_metadata_destroy(md);
	pthread_mutex_lock(&rt->lock);
	rt->brokers_err[0] = '\0';
	if (nmissing)
		snprintf(rt->topics_err, sizeof rt->topics_err, "%s %s %s not exist",
			 nmissing > 1 ? "topics" : "topic", missing, nmissing > 1 ? "do" : "does");
	else
		rt->topics_err[0] = '\0';
	pthread_mutex_unlock(&rt->lock);
	health_publish(rt);
}

static void maybe_probe(struct kafka_ctx *ctx)
{
	struct kafka_rt *rt = ctx->rt;
	pthread_mutex_lock(&rt->lock);
	bool need = rt->probe_now || ((rt->brokers_err[0] || rt->topics_err[0]) &&
				      td_now_ms() >= ctx->next_probe_ms);
	rt->probe_now = false;
	pthread_mutex_unlock(&rt->lock);
	if (need)
		probe(ctx);
}

/*
 * Consumer thread, between two reads: pauses and resumes in librdkafka what the engine
 * decided (update_pause). Never from another thread: librdkafka 2.0.2's
 * rd_kafka_consume_batch_queue (rdkafka_queue.c, rd_kafka_q_serve_rkmessages) moves a
 * partition's application position past each record it takes, and when the barrier of
 * a pause (or seek) made meanwhile on another thread comes up in the same call, it drops
 * those records again without moving the position back; the pause then saves that
 * position as where the resume starts, and the dropped records are never delivered
 * (fixed in librdkafka 2.1.0: "consume_batch_queue intermittently skipping offsets when
 * pause or resume was being used"). That was the rare "triggerd did not deliver every
 * record in time" of bench/kafka. Between reads, the version of a pause makes every
 * record queued before it outdated before anything takes it, so the position stays at
 * the last record handed to the engine and the resume starts right after it.
 */
static void apply_pauses(struct kafka_ctx *ctx)
{
	if (!atomic_exchange(&ctx->rt->pause_dirty, false))
		return;
	for (struct kpart *p = ctx->cmap; p; p = p->cnext) {
		bool want = atomic_load(&p->pause_want);
		if (want == p->c_paused)
			continue;
		rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
		if (!l) {
			atomic_store(&ctx->rt->pause_dirty, true); /* again next round */
			return;
		}
		rd_kafka_topic_partition_list_add(l, p->topic, p->partition);
		if (want)
			rd_kafka_pause_partitions(ctx->rt->rk, l);
		else
			rd_kafka_resume_partitions(ctx->rt->rk, l);
		rd_kafka_topic_partition_list_destroy(l);
		p->c_paused = want;
	}
}

/*
 * Flow control: while the flowing partitions hold flow_high records or more, wait for
 * the engine to take them (it wakes us below half of it). Returns how many records the
 * next round may read: a whole chunk, or one after FLOW_WAIT_MAX_MS (the poll also
 * serves rebalances, which must not wait for a slow function), or 0 when stopping.
 */
static int flow_wait(struct kafka_ctx *ctx)
{
	struct kafka_rt *rt = ctx->rt;
	long long start = td_now_ms();
	while (atomic_load(&rt->flowing) >= atomic_load(&rt->flow_high)) {
		graves_free(rt);
		apply_pauses(ctx);
		if (td_now_ms() - start >= FLOW_WAIT_MAX_MS)
			return 1;
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 20 * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&rt->lock);
		atomic_store(&rt->consumer_waiting, true);
		if (!rt->stopping && atomic_load(&rt->flowing) >= atomic_load(&rt->flow_high))
			pthread_cond_timedwait(&rt->cond, &rt->lock, &until);
		atomic_store(&rt->consumer_waiting, false);
		bool stop = rt->stopping;
		pthread_mutex_unlock(&rt->lock);
		if (stop)
			return 0;
	}
	return CHUNK_MAX;
}

/*
 * Waking the fetchers. librdkafka 2.0.2 (src/rdkafka_fetcher.c,
 * rd_kafka_toppar_fetch_decide) takes a partition off its broker's fetch list while the
 * local queue holds queued.min.messages records or queued.max.messages.kbytes (for the
 * high-level consumer that is the one consumer queue all partitions feed, so all stop
 * together), and gives it no backoff time: the broker thread (rdkafka_broker.c,
 * rd_kafka_broker_consumer_serve) decides again only when it wakes up, on an operation
 * on its queue, on I/O from its connection, or at the end of its one-second serving
 * round (rd_kafka_max_block_ms). Draining the queue does not wake it, and
 * fetch.error.backoff.ms, fetch.wait.max.ms and fetch.min.bytes do not apply (the first
 * is for fetch errors, the others shape a fetch once sent); fetch.queue.backoff.ms came
 * in 2.3.0. So a queue that filled up stalls the partition for 0 to 1000 ms after it is
 * drained, unless something wakes the broker thread.
 *
 * Any request handed to a broker from another thread is an operation on its queue. The
 * waker thread sends one ListOffsets request per leader (rd_kafka_offsets_for_times for
 * the partitions the broker has more of, which groups them by leader and blocks until
 * the answers come, hence its own thread); its broker thread wakes, decides again and
 * fetches what is below the limits. Unlike a seek or a pause and resume, it changes no
 * fetch position or version, so nothing queued is dropped and fetched twice.
 */
static void *waker_main(void *arg)
{
	struct kafka_ctx *ctx = arg;
	pthread_mutex_lock(&ctx->wlock);
	for (;;) {
		while (!ctx->wstop && !ctx->wtodo)
			pthread_cond_wait(&ctx->wcond, &ctx->wlock);
		if (ctx->wstop)
			break;
		rd_kafka_topic_partition_list_t *l = ctx->wtodo;
		ctx->wtodo = NULL;
		ctx->wbusy = true;
		pthread_mutex_unlock(&ctx->wlock);
		/* The answer (the log end offsets) is not needed; errors neither: a broker
		 * that did not answer was not woken, and librdkafka falls back on its own. */
		rd_kafka_offsets_for_times(ctx->rt->rk, l, WAKE_TIMEOUT_MS);
		rd_kafka_topic_partition_list_destroy(l);
		pthread_mutex_lock(&ctx->wlock);
		ctx->wbusy = false;
	}
	pthread_mutex_unlock(&ctx->wlock);
	return NULL;
}

/* Consumer thread: half of the consumer's property conf_name, times unit (at least 1). */
static long long half_limit(rd_kafka_t *rk, const char *conf_name, long long unit)
{
	char v[32];
	size_t n = sizeof v;
	if (rd_kafka_conf_get(rd_kafka_conf(rk), conf_name, v, &n) != RD_KAFKA_CONF_OK)
		return 0;
	long long x = strtoll(v, NULL, 10) * unit / 2;
	return x > 0 ? x : 1;
}

static void waker_start(struct kafka_ctx *ctx)
{
	ctx->wlow_msgs = half_limit(ctx->rt->rk, "queued.min.messages", 1);
	ctx->wlow_bytes = half_limit(ctx->rt->rk, "queued.max.messages.kbytes", 1024);
	pthread_mutex_init(&ctx->wlock, NULL);
	pthread_cond_init(&ctx->wcond, NULL);
	ctx->wtodo = NULL;
	ctx->wbusy = ctx->wstop = false;
	if (pthread_create(&ctx->waker, NULL, waker_main, ctx) != 0) {
		td_logs_warn(ctx->rt->scope,
			     "cannot start the fetch waker thread: %s; a drained partition may "
			     "wait up to a second for its next fetch",
			     strerror(errno));
		return;
	}
	pthread_setname_np(ctx->waker, "td-kafka-wake");
	ctx->waker_started = true;
}

/* Consumer thread, at its end: the waker's request on its way is awaited. */
static void waker_stop(struct kafka_ctx *ctx)
{
	if (ctx->waker_started) {
		pthread_mutex_lock(&ctx->wlock);
		ctx->wstop = true;
		pthread_cond_signal(&ctx->wcond);
		pthread_mutex_unlock(&ctx->wlock);
		pthread_join(ctx->waker, NULL);
		ctx->waker_started = false;
	}
	if (ctx->wtodo)
		rd_kafka_topic_partition_list_destroy(ctx->wtodo);
	ctx->wtodo = NULL;
	pthread_mutex_destroy(&ctx->wlock);
	pthread_cond_destroy(&ctx->wcond);
}

/*
 * Consumer thread, after a round that left queued records in the local queue: when it
 * is under half of both limits (the bytes estimated from the mean size read so far), asks
 * the waker to wake the leaders of the partitions the broker has more of (the cached
 * high watermark is past what was read). One request at a time, at most every
 * WAKE_MIN_MS.
 */
static void wake(struct kafka_ctx *ctx, long long queued)
{
	if (!ctx->waker_started || queued >= ctx->wlow_msgs ||
	    (ctx->read_n > 0 && queued * (ctx->read_bytes / ctx->read_n) >= ctx->wlow_bytes))
		return;
	long long now = td_now_ms();
	if (now - ctx->wlast_ms < WAKE_MIN_MS)
		return;
	pthread_mutex_lock(&ctx->wlock);
	bool busy = ctx->wbusy || ctx->wtodo;
	pthread_mutex_unlock(&ctx->wlock);
	if (busy)
		return;
	rd_kafka_topic_partition_list_t *l = NULL;
	for (struct kpart *p = ctx->cmap; p; p = p->cnext) {
		int64_t lo, hi;
		if (p->c_next < 0 ||
		    rd_kafka_get_watermark_offsets(ctx->rt->rk, p->topic, p->partition, &lo, &hi) !=
			RD_KAFKA_RESP_ERR_NO_ERROR ||
		    hi <= p->c_next)
			continue;
		if (!l && !(l = rd_kafka_topic_partition_list_new(8)))
			return;
		/* -1: the log end offset (ListOffsets' "latest"). */
		rd_kafka_topic_partition_list_add(l, p->topic, p->partition)->offset = -1;
	}
	if (!l)
		return;
	ctx->wlast_ms = now;
	pthread_mutex_lock(&ctx->wlock);
	ctx->wtodo = l;
	pthread_cond_signal(&ctx->wcond);
	pthread_mutex_unlock(&ctx->wlock);
}

static void *consumer_main(void *arg)
{
	struct kafka_ctx *ctx = arg;
	struct kafka_rt *rt = ctx->rt;
	rd_kafka_queue_t *cq = rd_kafka_queue_get_consumer(rt->rk);
	rd_kafka_message_t *msgs[CHUNK_MAX];
	if (!cq) {
		/* A consumer with a group.id always has this queue. */
		td_logs_error(rt->scope, "consumer: no consumer queue");
		return NULL;
	}
	waker_start(ctx);
	while (!is_stopping(rt)) {
		maybe_probe(ctx);
		int room = flow_wait(ctx);
		if (room == 0)
			break;
		apply_pauses(ctx);
		/* Take what the local queue holds, up to room, in one call (one lock, not one a
		 * record). When it ran dry, the fetchers are woken (wake), then one record is
		 * awaited and the rest taken as they are. */
		ssize_t got = rd_kafka_consume_batch_queue(cq, 0, msgs, (size_t)room);
		if (got <= 0) {
			if (room > 1)
				wake(ctx, 0);
			msgs[0] = rd_kafka_consumer_poll(rt->rk, 20);
			got = msgs[0] ? 1 : 0;
			if (got && room > 1) {
				ssize_t more =
				    rd_kafka_consume_batch_queue(cq, 0, msgs + 1, (size_t)room - 1);
				got += more > 0 ? more : 0;
			}
		}
		long long now = td_now_ms();
		for (ssize_t i = 0; i < got; i++) {
			take_message(ctx, msgs[i], now);
			rd_kafka_message_destroy(msgs[i]);
		}
		chunk_flush(ctx);
		graves_free(rt);
		/* Running low: wake the fetchers before the queue is empty. */
		if (room > 1)
			wake(ctx, (long long)rd_kafka_queue_length(cq));
	}
	waker_stop(ctx);
	chunk_flush(ctx);
	rd_kafka_queue_destroy(cq);
	td_buf_free(&ctx->scratch);
	return NULL;
}

/* Rebalance, assignment: new partition objects for the engine. */
static void assign_parts(struct kafka_ctx *ctx, const rd_kafka_topic_partition_list_t *parts)
{
	struct kafka_rt *rt = ctx->rt;
	const struct kafka_opts *o = ctx->o;
	struct assign_op *op = calloc(1, sizeof *op);
	if (!op || !(op->parts = calloc((size_t)parts->cnt + 1, sizeof *op->parts))) {
		free(op);
		td_logs_error(rt->scope, "out of memory: %d assigned partitions not read",
			      parts->cnt);
		return;
	}
	chunk_flush(ctx);
	struct td_kafka_sched_conf sc = {
	    .ordering = o->ordering == ORDER_KEY    ? TD_KAFKA_ORDER_KEY
			: o->ordering == ORDER_NONE ? TD_KAFKA_ORDER_NONE
						    : TD_KAFKA_ORDER_PARTITION,
	    .batch_size = (size_t)o->batch_size,
	    .window_ms = o->batch_window_ms,
	    .max_batches = (size_t)o->batches_in_flight,
	    .free_item = item_free,
	    .free_rec = rec_bury,
	    .free_arg = rt,
	};
	for (int i = 0; i < parts->cnt; i++) {
		const rd_kafka_topic_partition_t *tp = &parts->elems[i];
		if (map_find(ctx, tp->topic, tp->partition))
			continue;
		struct kpart *p = calloc(1, sizeof *p);
		if (!p || !(p->topic = strdup(tp->topic))) {
			free(p);
			td_logs_error(rt->scope, "out of memory: %s-%d not read", tp->topic,
				      tp->partition);
			continue;
		}
		/* Without it (out of memory) each record's JSON is made from scratch. */
		if (sc.batch_size > 1)
			td_kafka_json_prefix_init(&p->jp, ctx->source_attr, tp->topic,
						  tp->partition);
		p->partition = tp->partition;
		p->ctx = ctx;
		p->c_next = -1;
		td_kafka_sched_init(&p->sched, &sc);
		p->buffer_max = BUFFER_MAX > 4 * sc.batch_size ? BUFFER_MAX : 4 * sc.batch_size;
		p->wait_since = td_now_ms();
		p->cnext = ctx->cmap;
		ctx->cmap = p;
		op->parts[op->n++] = p;
	}
	op->rt = rt_ref(rt);
	if (td_engine_call(ctx->engine, on_assign, op) < 0) {
		for (size_t i = 0; i < op->n; i++)
			for (struct kpart **pp = &ctx->cmap; *pp; pp = &(*pp)->cnext)
				if (*pp == op->parts[i]) {
					*pp = op->parts[i]->cnext;
					break;
				}
		ctx->ccache = NULL;
		free_kparts(op->parts, op->n);
		rt_unref(op->rt);
		free(op->parts);
		free(op);
	}
}

/* Rebalance, revocation: the engine finishes or gives up the partitions' work; wait. */
static void revoke_parts(struct kafka_ctx *ctx, const rd_kafka_topic_partition_list_t *parts,
			 bool lost)
{
	struct kafka_rt *rt = ctx->rt;
	struct revoke_op *op = calloc(1, sizeof *op);
	struct waiter *w = calloc(1, sizeof *w);
	chunk_flush(ctx);
	if (!op || !w || !(op->parts = calloc((size_t)parts->cnt + 1, sizeof *op->parts))) {
		free(op);
		free(w);
		td_logs_error(rt->scope, "out of memory: revoked partitions not drained");
		return;
	}
	ctx->ccache = NULL;
	for (int i = 0; i < parts->cnt; i++) {
		const rd_kafka_topic_partition_t *tp = &parts->elems[i];
		for (struct kpart **pp = &ctx->cmap; *pp; pp = &(*pp)->cnext)
			if ((*pp)->partition == tp->partition &&
			    strcmp((*pp)->topic, tp->topic) == 0) {
				op->parts[op->n++] = *pp;
				*pp = (*pp)->cnext;
				break;
			}
	}
	if (op->n == 0) {
		free(op->parts);
		free(op);
		free(w);
		return;
	}
	w->refs = 2;
	op->w = w;
	op->lost = lost;
	op->rt = rt_ref(rt);
	if (td_engine_call(ctx->engine, on_revoke, op) < 0) {
		rt_unref(op->rt);
		free(op->parts);
		free(op);
		free(w);
		return;
	}
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	long long wait_ms = ctx->o->rebalance_grace_ms + 5000;
	until.tv_sec += wait_ms / 1000;
	until.tv_nsec += (wait_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&rt->lock);
	while (!w->done && !rt->stopping)
		if (pthread_cond_timedwait(&rt->cond, &rt->lock, &until) == ETIMEDOUT)
			break;
	bool last = --w->refs == 0;
	pthread_mutex_unlock(&rt->lock);
	if (last)
		free(w);
}

static void describe_parts(const rd_kafka_topic_partition_list_t *parts, char *out, size_t cap)
{
	size_t used = 0;
	out[0] = '\0';
	for (int i = 0; i < parts->cnt && used < cap; i++)
		used += (size_t)snprintf(out + used, cap - used, "%s%s-%d", i ? ", " : "",
					 parts->elems[i].topic, parts->elems[i].partition);
}

/* The consumer thread (inside a poll), or the closer thread while the consumer closes. */
static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			 rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	struct kafka_rt *rt = opaque;
	bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
	char list[300];
	pthread_mutex_lock(&rt->lock);
	bool closing = rt->closing, stopping = rt->stopping;
	struct kafka_ctx *ctx = closing ? NULL : rt->ctx;
	pthread_mutex_unlock(&rt->lock);
	describe_parts(parts, list, sizeof list);

	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		if (ctx)
			assign_parts(ctx, parts);
		rd_kafka_error_t *e = NULL;
		rd_kafka_resp_err_t re = RD_KAFKA_RESP_ERR_NO_ERROR;
		if (coop)
			e = rd_kafka_incremental_assign(rk, parts);
		else
			re = rd_kafka_assign(rk, parts);
		if (e) {
			td_logs_error(rt->scope, "assign: %s", rd_kafka_error_string(e));
			rd_kafka_error_destroy(e);
		} else if (re) {
			td_logs_error(rt->scope, "assign: %s", rd_kafka_err2str(re));
		}
		rd_kafka_resume_partitions(rk, parts);
		if (ctx) {
			pthread_mutex_lock(&rt->lock);
			rt->joined = true;
			if (rt->topics_err[0])
				rt->probe_now = true;
			pthread_mutex_unlock(&rt->lock);
			health_publish(rt);
			td_logs_info(rt->scope, "assigned %d partition%s%s%s", parts->cnt,
				     parts->cnt == 1 ? "" : "s", parts->cnt ? ": " : "", list);
		}
		return;
	}
	if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
		bool lost = rd_kafka_assignment_lost(rk);
		if (ctx)
			revoke_parts(ctx, parts, lost);
		/* A stopping source must not block in a commit: the closer commits. */
		if (!lost && !(stopping || is_stopping(rt))) {
			rd_kafka_resp_err_t ce = rd_kafka_commit(rk, NULL, 0);
			if (ce && ce != RD_KAFKA_RESP_ERR__NO_OFFSET)
				td_logs_warn(rt->scope, "commit at revocation failed: %s",
					     rd_kafka_err2str(ce));
		}
		if (coop) {
			rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
			if (e)
				rd_kafka_error_destroy(e);
		} else {
			rd_kafka_assign(rk, NULL);
		}
		if (ctx)
			td_logs_info(rt->scope, "%s %d partition%s: %s", lost ? "lost" : "revoked",
				     parts->cnt, parts->cnt == 1 ? "" : "s", list);
		return;
	}
	td_logs_error(rt->scope, "rebalance failed: %s", rd_kafka_err2str(err));
	rd_kafka_assign(rk, NULL);
}

/* ---- life cycle ---- */

static char *join_brokers(const struct td_strings *s)
{
	size_t n = 1;
	for (size_t i = 0; i < s->n; i++)
		n += strlen(s->v[i]) + 1;
	char *out = malloc(n), *w = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < s->n; i++)
		w += sprintf(w, "%s%s", i ? "," : "", s->v[i]);
	*w = '\0';
	return out;
}

static int set_conf(rd_kafka_conf_t *conf, const char *name, const char *value, char *why,
		    size_t cap)
{
	char errstr[512];
	if (rd_kafka_conf_set(conf, name, value, errstr, sizeof errstr) == RD_KAFKA_CONF_OK)
		return 0;
	snprintf(why, cap, "librdkafka property %s: %s", name, errstr);
	return -TD_EINVAL;
}

/* Whether the user's rdkafka options set the property name. */
static bool user_sets(const struct td_strings *rdkafka, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < rdkafka->n; i++)
		if (strncmp(rdkafka->v[i], name, n) == 0 && rdkafka->v[i][n] == '=')
			return true;
	return false;
}

/*
 * After the user's options: librdkafka refuses a fetch.max.bytes below
 * message.max.bytes, and triggerd sets both. When the user set only one of them, the
 * other follows it where it must.
 */
static int prefetch_conf(rd_kafka_conf_t *conf, const struct td_strings *rdkafka, char *why,
			 size_t cap)
{
	char msg[32], fetch[32];
	size_t nm = sizeof msg, nf = sizeof fetch;
	bool user_fetch = user_sets(rdkafka, "fetch.max.bytes"),
	     user_msg = user_sets(rdkafka, "message.max.bytes");
	if (user_fetch == user_msg ||
	    rd_kafka_conf_get(conf, "message.max.bytes", msg, &nm) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_get(conf, "fetch.max.bytes", fetch, &nf) != RD_KAFKA_CONF_OK ||
	    strtoll(msg, NULL, 10) <= strtoll(fetch, NULL, 10))
		return 0;
	return user_msg ? set_conf(conf, "fetch.max.bytes", msg, why, cap)
			: set_conf(conf, "message.max.bytes", fetch, why, cap);
}

/* Sets up on_failure: this source's cluster, a file or an HTTP URL. */
static int setup_dead_letters(struct kafka_ctx *ctx, char *why, size_t cap)
{
	const char *d = ctx->o->on_failure;
	if (!d) {
		ctx->dlq_kind = DLQ_NONE;
		return 0;
	}
	if (strncmp(d, "kafka://", 8) == 0) {
		const char *name = td_source_name(ctx->src), *slash = strchr(d + 8, '/');
		size_t n = slash ? (size_t)(slash - (d + 8)) : 0;
		if (!slash || n != strlen(name) || strncmp(d + 8, name, n) != 0) {
			snprintf(
			    why, cap,
			    "option 'on_failure': dead letters of a kafka source go to its own "
			    "cluster: write kafka://%s/TOPIC",
			    name);
			return -TD_EINVAL;
		}
		ctx->dlq_kind = DLQ_KAFKA;
		ctx->dlq_topic = strdup(slash + 1);
		if (!ctx->dlq_topic) {
			snprintf(why, cap, "out of memory");
			return -TD_ENOMEM;
		}
		return 0;
	}
	char err[512];
	ctx->dlq_dest = td_destination_create(d, ctx->engine, NULL, NULL, err, sizeof err);
	if (!ctx->dlq_dest) {
		snprintf(why, cap, "option 'on_failure': %s", err);
		return -TD_EINVAL;
	}
	ctx->dlq_kind = DLQ_DEST;
	return 0;
}

static int kafka_start(struct td_source *src)
{
	struct kafka_ctx *ctx = td_source_ctx(src);
	const struct kafka_opts *o = td_source_opts(src);
	char why[700], errstr[512];
	rd_kafka_conf_t *conf = NULL;
	struct kafka_rt *rt;

	ctx->src = src;
	ctx->o = o;
	ctx->engine = td_source_engine(src);
	ctx->bootstrap = join_brokers(&o->brokers);
	rt = calloc(1, sizeof *rt);
	if (!ctx->bootstrap || !rt ||
	    asprintf(&ctx->source_attr, "triggerd/kafka/%s", td_source_name(src)) < 0) {
		ctx->source_attr = NULL;
		free(rt);
		snprintf(why, sizeof why, "out of memory");
		goto fail;
	}
	atomic_init(&rt->refs, 1);
	pthread_mutex_init(&rt->lock, NULL);
	pthread_mutex_init(&rt->log_lock, NULL);
	pthread_cond_init(&rt->cond, NULL);
	snprintf(rt->scope, sizeof rt->scope, "%s", td_source_scope(src));
	snprintf(rt->bootstrap, sizeof rt->bootstrap, "%s", ctx->bootstrap);
	rt->ctx = ctx;
	rt->src = src;
	rt->engine = ctx->engine;
	rt->probe_now = true;
	atomic_init(&rt->flow_high, FLOW_MIN);
	atomic_init(&rt->flowing, 0);
	atomic_init(&rt->consumer_waiting, false);
	atomic_init(&rt->pause_dirty, false);
	atomic_init(&rt->graves, NULL);
	ctx->rt = rt;
	if (setup_dead_letters(ctx, why, sizeof why) < 0)
		goto fail;

	conf = rd_kafka_conf_new();
	if (!conf) {
		snprintf(why, sizeof why, "out of memory");
		goto fail;
	}
	/* Defaults the user may change, then the user's, then what triggerd manages. The
	 * prefetch is small (memory: librdkafka keeps a few hundred bytes of bookkeeping
	 * per queued record, and each fetch answer in one buffer), which costs no
	 * throughput since the waker restarts fetching as soon as half of it is read
	 * (see wake). fetch.max.bytes may not be below message.max.bytes, which matters
	 * only to producers: both go down together, and up together (prefetch_conf). */
	if (set_conf(conf, "client.id", "triggerd", why, sizeof why) < 0 ||
	    set_conf(conf, "queued.max.messages.kbytes", PREFETCH_KBYTES, why, sizeof why) < 0 ||
	    set_conf(conf, "queued.min.messages", PREFETCH_RECORDS, why, sizeof why) < 0 ||
	    set_conf(conf, "fetch.max.bytes", FETCH_MAX_BYTES, why, sizeof why) < 0 ||
	    set_conf(conf, "message.max.bytes", FETCH_MAX_BYTES, why, sizeof why) < 0)
		goto fail;
	for (size_t i = 0; i < o->rdkafka.n; i++) {
		const char *prop = o->rdkafka.v[i], *eq = strchr(prop, '=');
		char name[129];
		if (!eq || (size_t)(eq - prop) >= sizeof name)
			continue;
		memcpy(name, prop, (size_t)(eq - prop));
		name[eq - prop] = '\0';
		if (rd_kafka_conf_set(conf, name, eq + 1, errstr, sizeof errstr) !=
		    RD_KAFKA_CONF_OK) {
			snprintf(why, sizeof why, "option 'rdkafka': %s is refused by librdkafka",
				 name);
			goto fail;
		}
	}
	if (prefetch_conf(conf, &o->rdkafka, why, sizeof why) < 0 ||
	    set_conf(conf, "bootstrap.servers", ctx->bootstrap, why, sizeof why) < 0 ||
	    set_conf(conf, "group.id", o->group, why, sizeof why) < 0 ||
	    set_conf(conf, "auto.offset.reset", o->start == START_EARLIEST ? "earliest" : "latest",
		     why, sizeof why) < 0 ||
	    set_conf(conf, "enable.auto.commit", "true", why, sizeof why) < 0 ||
	    set_conf(conf, "enable.auto.offset.store", "false", why, sizeof why) < 0 ||
	    set_conf(conf, "enable.partition.eof", "false", why, sizeof why) < 0)
		goto fail;
	rd_kafka_conf_set_opaque(conf, rt);
	rd_kafka_conf_set_log_cb(conf, log_cb);
	rd_kafka_conf_set_error_cb(conf, error_cb);
	rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
	rt->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
	if (!rt->rk) {
		snprintf(why, sizeof why, "cannot create the consumer: %s", errstr);
		goto fail;
	}
	conf = NULL; /* the consumer owns it */
	rd_kafka_poll_set_consumer(rt->rk);
	rd_kafka_topic_partition_list_t *topics =
	    rd_kafka_topic_partition_list_new((int)o->topics.n);
	for (size_t i = 0; topics && i < o->topics.n; i++)
		rd_kafka_topic_partition_list_add(topics, o->topics.v[i], RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t e =
	    topics ? rd_kafka_subscribe(rt->rk, topics) : RD_KAFKA_RESP_ERR__NOENT;
	if (topics)
		rd_kafka_topic_partition_list_destroy(topics);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(why, sizeof why, "cannot subscribe: %s", rd_kafka_err2str(e));
		goto fail;
	}
	health_publish(rt);
	if (pthread_create(&ctx->thread, NULL, consumer_main, ctx) != 0) {
		snprintf(why, sizeof why, "cannot start the consumer thread: %s", strerror(errno));
		goto fail;
	}
	ctx->thread_started = true;
	pthread_setname_np(ctx->thread, "td-kafka");
	td_logs_info(rt->scope, "consuming %zu topic%s from %s as group \"%s\"", o->topics.n,
		     o->topics.n == 1 ? "" : "s", ctx->bootstrap, o->group);
	return 0;
fail:
	if (conf)
		rd_kafka_conf_destroy(conf);
	td_logs_error(td_source_scope(src), "%s", why);
	td_source_set_ready(src, false, why);
	return -TD_EINVAL;
}

static void join_consumer(struct kafka_ctx *ctx)
{
	struct kafka_rt *rt = ctx->rt;
	if (!rt)
		return;
	pthread_mutex_lock(&rt->lock);
	rt->stopping = true;
	pthread_cond_broadcast(&rt->cond);
	pthread_mutex_unlock(&rt->lock);
	if (!ctx->thread_started)
		return;
	rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rt->rk);
	if (q) {
		rd_kafka_queue_yield(q);
		rd_kafka_queue_destroy(q);
	}
	pthread_join(ctx->thread, NULL);
	ctx->thread_started = false;
}

static void kafka_stop(struct td_source *src)
{
	struct kafka_ctx *ctx = td_source_ctx(src);
	ctx->stopped = true;
	join_consumer(ctx);
	/* What waits is given up (read again after the restart); batches in flight and
	 * dead letters on their way finish and store their offsets meanwhile. */
	for (struct kpart *p = ctx->parts; p; p = p->next) {
		if (p->window_timer) {
			td_timer_cancel(ctx->engine, p->window_timer);
			p->window_timer = NULL;
		}
		td_kafka_sched_drop_pending(&p->sched);
		update_pause(ctx, p);
		struct td_kafka_batch *b = p->sched.live;
		while (b) {
			struct td_kafka_batch *next = b->next_live;
			if (b->state != B_SUBMITTED && b->outstanding == 0)
				batch_drop(ctx, b);
			b = next;
		}
	}
}

static void *closer_main(void *arg)
{
	struct kafka_rt *rt = arg;
	rd_kafka_commit(rt->rk, NULL, 0);
	rd_kafka_consumer_close(rt->rk);
	rd_kafka_destroy(rt->rk);
	pthread_mutex_lock(&rt->lock);
	rt->closed = true;
	pthread_cond_broadcast(&rt->cond);
	pthread_mutex_unlock(&rt->lock);
	rt_unref(rt);
	return NULL;
}

/* Commits and leaves the group on a thread of its own; waits CLOSE_WAIT_MS at most. */
static void close_consumer(struct kafka_rt *rt)
{
	pthread_t t;
	rt_ref(rt);
	if (pthread_create(&t, NULL, closer_main, rt) != 0) {
		closer_main(rt);
		return;
	}
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += CLOSE_WAIT_MS / 1000;
	pthread_mutex_lock(&rt->lock);
	while (!rt->closed)
		if (pthread_cond_timedwait(&rt->cond, &rt->lock, &until) == ETIMEDOUT)
			break;
	bool closed = rt->closed;
	pthread_mutex_unlock(&rt->lock);
	if (closed) {
		pthread_join(t, NULL);
	} else {
		td_logs_warn(rt->scope, "the consumer is still closing after %d s; not waiting",
			     CLOSE_WAIT_MS / 1000);
		pthread_detach(t);
	}
}

static void kafka_destroy(struct td_source *src)
{
	struct kafka_ctx *ctx = td_source_ctx(src);
	struct kafka_rt *rt = ctx->rt;

	ctx->stopped = true;
	join_consumer(ctx);
	while (ctx->revokes)
		op_done(ctx, ctx->revokes);
	if (ctx->store_timer) {
		td_timer_cancel(ctx->engine, ctx->store_timer);
		ctx->store_timer = NULL;
	}
	if (rt && rt->rk)
		store_flush(ctx);
	while (ctx->parts) {
		struct kpart *p = ctx->parts;
		ctx->parts = p->next;
		part_free(ctx, p);
	}
	/* Dead letters still on their way free themselves when they land. */
	struct dlq_send *d = ctx->dlqs;
	ctx->dlqs = NULL;
	while (d) {
		struct dlq_send *next = d->next;
		d->prev = d->next = NULL;
		d->r = NULL;
		if (d->timer) {
			td_timer_cancel(ctx->engine, d->timer);
			dlq_free(d);
		}
		d = next;
	}
	if (rt) {
		pthread_mutex_lock(&rt->lock);
		rt->ctx = NULL;
		rt->src = NULL;
		rt->closing = true;
		pthread_mutex_unlock(&rt->lock);
	}
	if (ctx->producer) {
		rd_kafka_flush(ctx->producer, PRODUCER_FLUSH_MS);
		rd_kafka_purge(ctx->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		atomic_store(&ctx->prod_stop, true);
		if (ctx->prod_started)
			pthread_join(ctx->prod_thread, NULL);
		rd_kafka_destroy(ctx->producer);
		ctx->producer = NULL;
	}
	if (rt && rt->rk)
		close_consumer(rt);
	td_destination_destroy(ctx->dlq_dest);
	free(ctx->dlq_topic);
	free(ctx->source_attr);
	free(ctx->bootstrap);
	if (rt)
		rt_unref(rt);
	memset(ctx, 0, sizeof *ctx);
}

const struct td_source_ops td_source_kafka = {
    .name = "kafka",
    .summary = "Records of Kafka topics, read in a consumer group, committed when settled",
    .options = kafka_options,
    .opts_size = sizeof(struct kafka_opts),
    .check = kafka_check,
    .ctx_size = sizeof(struct kafka_ctx),
    .start = kafka_start,
    .stop = kafka_stop,
    .settle = kafka_settle,
    .destroy = kafka_destroy,
    .publish = kafka_publish,
};
