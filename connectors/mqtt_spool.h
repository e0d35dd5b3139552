/*
 * The MQTT source's spool: an append-only log per source (the directory
 * STATE_DIR/mqtt/SOURCE.spool) that holds QoS 1/2 messages between their acknowledgement
 * to the broker and their settlement by the router.
 *
 * Why it exists: paho.mqtt.c 1.3 acknowledges a message when messageArrived returns and
 * runs the callbacks of every client on one thread, so a callback that waited for the
 * router (as it must for sync triggers) takes one message at a time. A message whose
 * triggers are all async is instead appended here, durably as queue.durability says
 * (fsync: fdatasync'ed before the append returns; os: written to the OS; memory: an
 * in-memory file), and acknowledged at once; the router takes it from memory, and its row
 * goes once the router settled it (queued in the async queue, or nothing matched). After
 * a crash the rows that are still here are submitted again at the next start: at least
 * once. One write per message: an SQLite table cost three times as much on paho's thread.
 *
 * Format. Segment files named by their first row id ("%020lld.seg"); a new segment starts
 * once the current one holds SEGMENT_MAX bytes, and the oldest segment goes once none of
 * its rows is left. A record is a 17-byte header (body length u32, check u32: FNV-1a of
 * the rest, id u64, kind u8; little endian) and its body: kind 1 = a message (id; body:
 * u32 event length, the stored event (td_event_encode), then the reply topic and the
 * correlation data, each as u32 length + 1 (0: none) and the bytes), kind 2 = removals
 * (id 0; body: the removed ids, u64 each). Reading stops at the first record that does
 * not check out: in the last segment, what follows is moved to NAME.cut (the torn tail of
 * a crash, or damage) and cut off, so appends go on after valid records; damage in an
 * older segment is reported and the rest of that segment skipped.
 *
 * Claims. A row is claimed by the source instance that has it in flight: the appender,
 * or the instance that recovered it. A reload retires an instance and starts a new one
 * on the same spool (acquire shares one open spool per path and counts references; an
 * in-memory spool that still holds rows outlives its last reference for that), so a row
 * that the old instance gives back (unclaim: it was not taken and the instance stopped)
 * is recovered by the running instance (the source's worker recovers whenever
 * unclaimed() is not 0). Removals are queued in memory and written with the next append
 * or flush, so that the engine thread, which settles, never waits for the disk.
 *
 * Threads: every function may be called from any thread; the spool has its own lock.
 * recover() calls its callback with that lock held: the callback must not call the
 * spool.
 */
#ifndef TRIGGERD_MQTT_SPOOL_H
#define TRIGGERD_MQTT_SPOOL_H

#include <stddef.h>

#include "../router/queue.h"

struct td_mqtt_spool;

/* Opens the spool in the directory path (created when missing; in memory for
 * TD_QUEUE_MEMORY), or shares the one already open at that path. NULL with the reason in
 * err; when a spool is returned, err may still hold a warning (damage that was cut off)
 * and is "" otherwise. */
struct td_mqtt_spool *td_mqtt_spool_acquire(const char *path, enum td_queue_durability d, char *err,
					    size_t errlen);
/* Drops a reference; the last one writes the queued removals and closes the files. */
void td_mqtt_spool_release(struct td_mqtt_spool *s);

/* One spooled message: its event in stored form (td_event_encode) and where the result
 * of a sync trigger goes (reply_topic and correlation may be NULL). */
struct td_mqtt_spooled {
	long long id;
	const void *event;
	size_t event_len;
	const char *reply_topic;
	const void *correlation;
	size_t correlation_len;
};

/* Writes m (m->id is ignored) and the queued removals with one write; when it returns 0
 * the row is durable and claimed, its id in *id. -TD_EIO or -TD_ENOMEM with the reason
 * in err. */
int td_mqtt_spool_append(struct td_mqtt_spool *s, const struct td_mqtt_spooled *m, long long *id,
			 char *err, size_t errlen);
/* The row was settled: it goes (written with the next append or flush). Only queues the
 * id under a lock of its own, never held across a write: the engine thread calls it. */
void td_mqtt_spool_remove(struct td_mqtt_spool *s, long long id);
/* The row was not taken: it stays, unclaimed, for the next recover(). Queues like
 * remove(). */
void td_mqtt_spool_unclaim(struct td_mqtt_spool *s, long long id);
/* Writes the queued removals (if any). 0, or -TD_EIO with the reason in err. */
int td_mqtt_spool_flush(struct td_mqtt_spool *s, char *err, size_t errlen);
/* Removals queued and not yet written. */
size_t td_mqtt_spool_pending(struct td_mqtt_spool *s);
/* Rows that nobody holds (given back, or left by a previous run): recover() takes them. */
size_t td_mqtt_spool_unclaimed(struct td_mqtt_spool *s);
/* Claims every unclaimed row, oldest first, and calls fn for each (with the spool's
 * lock held); fn returns 0, or nonzero to give the row back unclaimed and stop. Returns
 * the number of rows claimed, or -TD_EIO with the reason in err. */
int td_mqtt_spool_recover(struct td_mqtt_spool *s,
			  int (*fn)(void *arg, const struct td_mqtt_spooled *m), void *arg,
			  char *err, size_t errlen);

/*
 * Reads one segment's bytes (for recovery and the fuzz target): calls on_row for each
 * message record (the decoded row; its pointers point into buf) and on_removed for each
 * removed id, in file order. Returns 0 when every byte was a valid record, or -TD_EINVAL
 * with what was wrong and its byte offset in err; *valid is the length of the valid
 * prefix either way. Callbacks return 0, or nonzero to stop (-TD_ENOMEM is returned).
 */
int td_mqtt_spool_parse(const void *buf, size_t len,
			int (*on_row)(void *arg, const struct td_mqtt_spooled *m, size_t offset,
				      size_t record_len),
			int (*on_removed)(void *arg, long long id), void *arg, size_t *valid,
			char *err, size_t errlen);

#endif
