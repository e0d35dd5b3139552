/*
 * The durable async queue: events that triggerd has taken over for an asynchronous
 * invocation, kept until the function succeeded or the event went to its on_failure
 * destination. Stored in embedded SQLite (WAL mode) in <state dir>/queue.db.
 *
 * Group commit: push, complete and retry only stage a change; td_queue_commit() makes
 * every change staged since the last commit durable together, in one transaction (one
 * fsync in TD_QUEUE_FSYNC mode). The engine stages everything of one loop iteration,
 * commits once in its idle hook, and only then settles (acknowledges) the sources whose
 * events it pushed. Uncommitted changes are lost on a crash or on td_queue_close(): an
 * unacknowledged source delivers its event again, and an entry whose completion was
 * lost is invoked again (delivery is at least once).
 *
 * Leases: td_queue_take() leases an entry to the caller until td_queue_complete(),
 * td_queue_retry() or td_queue_release(). Leases live in memory only: after a restart
 * every stored entry is due again at its due time.
 *
 * The queue stores the event as opaque bytes (the engine serialises the envelope) and
 * knows functions and triggers only by name.
 *
 * Threads: a queue belongs to ONE thread at a time (the engine thread); it has no locks
 * and no function here may be called concurrently on the same queue. It may be opened on
 * one thread and handed to another. The file is locked for the queue's lifetime, so a
 * second process (or a second td_queue_open() of the same directory) is refused.
 */
#ifndef TRIGGERD_QUEUE_H
#define TRIGGERD_QUEUE_H

#include <stddef.h>

/*
 * TD_QUEUE_FSYNC  SQLite synchronous=FULL: the WAL is fsync'ed at every commit, so a
 *                 committed entry survives a process kill, an OS crash and a power loss.
 * TD_QUEUE_OS     synchronous=NORMAL: a commit is written to the WAL file (handed to the
 *                 OS) but not fsync'ed; the WAL is fsync'ed only at checkpoints. A
 *                 committed entry survives a process kill (kill -9); after an OS crash or
 *                 power loss the database is intact but the most recent commits may be
 *                 rolled back.
 * TD_QUEUE_MEMORY an in-memory database: nothing survives the process; no file is used.
 */
enum td_queue_durability { TD_QUEUE_FSYNC, TD_QUEUE_OS, TD_QUEUE_MEMORY };

/* "fsync", "os", "memory" (the config's queue.durability); -1 for anything else. */
int td_queue_durability_parse(const char *name);
const char *td_queue_durability_name(enum td_queue_durability d);

struct td_queue_entry {
	long long id;	      /* assigned by the queue, unique among the stored entries */
	const char *function; /* name; never NULL or empty */
	const char *trigger;  /* name, or NULL (e.g. an Invoke API call with type Event) */
	const void *event;    /* the serialised envelope, event_len bytes (from take(): plus
			       * a NUL byte not counted in event_len) */
	size_t event_len;
	int attempts;		/* invocations already made */
	long long enqueued_ms;	/* wall clock, ms, of the first enqueue (for max_event_age) */
	long long due_ms;	/* not to be invoked before this wall clock time, ms */
	const char *last_error; /* NULL before the first failure */
};

struct td_queue;

/*
 * Opens (creating as needed) <dir>/queue.db, creating dir and its parents if missing.
 * In TD_QUEUE_MEMORY mode dir is not used and may be NULL. Loads the index of every
 * stored entry into memory (function, due and enqueue times; not the event bytes).
 * Returns NULL on failure with a message naming the path in err (errlen bytes, may be
 * 0): a directory that cannot be created or written, a file that is not a SQLite
 * database, is corrupt, holds another schema or a newer schema version, or is in use.
 */
struct td_queue *td_queue_open(const char *dir, enum td_queue_durability d, char *err,
			       size_t errlen);
/* Discards uncommitted changes (call td_queue_commit() first), frees every entry, also
 * the leased ones, and closes the file. NULL is ignored. */
void td_queue_close(struct td_queue *q);

/*
 * Stages an entry: e->function (required), e->trigger, e->event (copied), e->attempts,
 * e->enqueued_ms, e->due_ms and e->last_error are stored; e->id is ignored and the new
 * id is written to *id (id may be NULL). Nothing of e is kept. The entry counts in
 * td_queue_depth() at once but td_queue_take() returns it only after td_queue_commit().
 * max_for_function > 0 limits the entries a function holds (staged, waiting and leased):
 * -TD_EFULL when it already holds that many (backpressure: do not acknowledge the
 * source). -TD_EINVAL for a bad entry, -TD_EIO (see below).
 */
int td_queue_push(struct td_queue *q, const struct td_queue_entry *e, long long max_for_function,
		  long long *id);

/*
 * Makes every change staged since the last commit durable, in one transaction; a no-op
 * returning 0 when nothing is staged. Then pushed entries become visible to take().
 *
 * -TD_EIO from push, complete, retry, take or commit (the disk is full or failing):
 * every change staged since the last successful commit is undone, as after a crash.
 * Pushed entries are gone (their sources must not be acknowledged), completed and
 * retried entries are back as they were committed. Leased entries stay leased and their
 * memory stays valid. The next td_queue_commit() then also answers -TD_EIO (undoing
 * anything staged after the failure), so an engine that settles its sources only after
 * a commit answered 0 never acknowledges a lost event. If even the stored state cannot
 * be read back, the queue answers -TD_EIO to every later call and must be closed and
 * opened again. Errors are logged, with the path, under the scope "queue".
 */
int td_queue_commit(struct td_queue *q);

/*
 * Leases up to limit entries of function that are due at now_ms, earliest due first
 * (ties in push order), and stores pointers to them in out[0..n-1]; returns n (0 when
 * none is due, or the function is unknown) or a negative TD_E* code. A leased entry is
 * not returned again until it is released or retried. The pointed-to entry and its
 * strings and bytes are owned by the queue and stay valid, unchanged, until the entry is
 * completed, retried or released, or the queue is closed. Reads the event bytes from
 * the database by primary key; never scans.
 */
int td_queue_take(struct td_queue *q, const char *function, long long now_ms,
		  const struct td_queue_entry **out, int limit);

/* The following three act on a leased entry: -TD_ENOTFOUND for an unknown id,
 * -TD_ESTATE for an entry that is not leased. The lease and its memory end. */

/* Stages the removal of the entry (done: succeeded, or sent to its on_failure
 * destination). */
int td_queue_complete(struct td_queue *q, long long id);
/* Stages attempts + 1, the new due time and error (copied; NULL stores none) and makes
 * the entry available to take() again from due_ms. */
int td_queue_retry(struct td_queue *q, long long id, long long due_ms, const char *error);
/* Drops the lease; the entry is unchanged and available to take() again. Writes
 * nothing. */
int td_queue_release(struct td_queue *q, long long id);

/* Changes (pushes, completions, retries) staged since the last commit. */
long long td_queue_uncommitted(const struct td_queue *q);

/* Entries the function holds (staged, waiting and leased); with function NULL, the
 * whole queue. O(1) per call after the name lookup. */
long long td_queue_depth(const struct td_queue *q, const char *function);
/* enqueued_ms of the function's oldest entry (staged, waiting or leased), or 0 when it
 * holds none. O(1). */
long long td_queue_oldest_ms(const struct td_queue *q, const char *function);
/* The earliest due_ms among committed entries that are not leased, or -1 when there is
 * none: the engine's timer. O(number of functions), no database access. */
long long td_queue_next_due_ms(const struct td_queue *q);

#endif
