/*
 * The cron source's pure parts (connectors/cron.c), apart from its thread so that unit
 * tests can reach them: which ticks fire (the start/end window, catch-up planning and
 * the ticker that walks a schedule), the last-fired mark file, the tick's event, and
 * the Redis lease's URL, key and lifetime.
 *
 * Instants are seconds since the epoch (UTC), as in cron_schedule.h.
 *
 * Ownership and threads: nothing here keeps global state. A td_cron_ticker belongs to
 * its caller and is used by one thread at a time; the schedule it points to is not
 * owned by it and must outlive it. td_cron_event() returns an event with one reference
 * that the caller owns. Messages go to the caller's `err` buffer (err may be NULL when
 * errlen is 0).
 */
#ifndef TRIGGERD_CRON_SOURCE_H
#define TRIGGERD_CRON_SOURCE_H

#include <stdbool.h>
#include <stddef.h>

#include "cron_schedule.h"

struct td_event;

/* The `catchup` option, in the order of its choices "none|last|all". */
enum td_cron_catchup {
	TD_CRON_CATCHUP_NONE, /* missed ticks are dropped */
	TD_CRON_CATCHUP_LAST, /* the most recent missed tick fires once */
	TD_CRON_CATCHUP_ALL,  /* every missed tick fires, oldest first (bounded) */
};

/* Most missed ticks one catch-up fires (catchup = all keeps the newest ones). */
#define TD_CRON_CATCHUP_MAX 1000

/* A tick that is this late (beyond the jitter) when the source gets to it counts as
 * missed, and the catch-up policy decides about it: a clock stepped forward, or a
 * source held back by busy retries. Smaller delays only make the tick late. */
#define TD_CRON_LATE_S 60

/* Where ticks may fall: the `start`/`end` options and the rate() anchor. */
struct td_cron_window {
	long long after;  /* only instants strictly after this: start - 1, the rate() anchor
			     when no start was given (the load time), else TD_TIME_MIN */
	long long end;	  /* only instants at or before this: `end`, or TD_TIME_MAX */
	long long anchor; /* rate(): its first instant (start, else the load time) */
};

/*
 * The first instant of s inside w strictly after `after`: 0 and *next, or -TD_ENOTFOUND
 * when there is none (past `end`, an at() already past, ...), or -TD_EINVAL.
 */
int td_cron_window_next(const struct td_schedule *s, const struct td_cron_window *w,
			long long after, long long *next);

/* What one planning found (for the log). */
struct td_cron_plan {
	bool decided;	 /* a range was decided (missed ticks were looked for) */
	long long after; /* the range (after, upto] */
	long long upto;
	long long found;   /* missed instants in the range not older than the maximum age;
			      -1 when not counted (catchup none) */
	bool partial;	   /* only the newest part of the range was walked: there are more
			      missed instants than `found` (all of them older) */
	long long planned; /* of them, to be fired */
	bool aged;	   /* the range reached back past the maximum age */
};

/*
 * Decides the missed ticks in (after, upto]: none are kept with TD_CRON_CATCHUP_NONE;
 * with LAST the most recent one; with ALL every one, at most `cap` (the newest). Only
 * instants at or after now - max_age_s count. Writes the kept instants to out, oldest
 * first, and returns how many, or a negative TD_E* code. plan may be NULL.
 * Cost: the range is walked backwards in doubling spans (from 1024 s) until a span
 * holds what is kept, so about 2 x max(cap, the instants of 1024 s) calls of
 * td_schedule_next() when many were missed; the whole age window when few were.
 */
int td_cron_plan_catchup(const struct td_schedule *s, const struct td_cron_window *w, int catchup,
			 long long max_age_s, long long after, long long upto, long long now,
			 long long *out, size_t cap, struct td_cron_plan *plan);

/*
 * The sequence of ticks a source fires. `cursor` is the instant up to which every tick
 * was decided (fired, planned for catch-up, or dropped); `queue` holds planned catch-up
 * ticks. The fields are read-only for callers: use the functions.
 */
struct td_cron_ticker {
	const struct td_schedule *schedule;
	struct td_cron_window window;
	int catchup;
	long long max_age_s;
	long long cursor;
	long long next; /* cached td_cron_window_next(cursor) when has_next */
	bool has_next;
	long long queue[TD_CRON_CATCHUP_MAX];
	size_t qhead, qlen;
};

/* cursor: ticks up to it are taken as decided (the mark for a catch-up, else now). */
void td_cron_ticker_init(struct td_cron_ticker *t, const struct td_schedule *s,
			 const struct td_cron_window *w, int catchup, long long max_age_s,
			 long long cursor);
/*
 * The next tick to fire, without taking it: a planned catch-up tick first, else the
 * schedule's next instant. When that instant is at or before `upto` (it was missed),
 * the range (cursor, upto] is planned first with td_cron_plan_catchup (now for the
 * maximum age), and *plan (may be NULL) tells what was found; plan->decided is false
 * otherwise. *catchup (may be NULL) tells whether the tick is a planned one. Returns 0,
 * -TD_ENOTFOUND when no tick is left, or a negative TD_E* code.
 */
int td_cron_ticker_peek(struct td_cron_ticker *t, long long upto, long long now, long long *tick,
			bool *catchup, struct td_cron_plan *plan);
/* Takes the tick the last peek returned. */
void td_cron_ticker_pop(struct td_cron_ticker *t);

/*
 * The last-fired mark: a small text file holding one RFC 3339 UTC instant and a
 * newline ("2025-01-01T00:15:00Z\n"), the scheduled instant of the last tick that
 * settled. td_cron_mark_parse reads such a text (len bytes, trailing white space
 * allowed): 0 and *secs, or -TD_EINVAL with what is wrong. td_cron_mark_read reads a
 * file: -TD_ENOTFOUND when it does not exist, -TD_EINVAL (bad content, message naming
 * the file), -TD_EIO. td_cron_mark_write replaces the file atomically (a unique
 * temporary file in the same folder, fsync, rename, fsync of the folder): 0 or
 * -TD_EIO with the reason.
 */
int td_cron_mark_parse(const char *text, size_t len, long long *secs, char *err, size_t errlen);
int td_cron_mark_read(const char *path, long long *secs, char *err, size_t errlen);
int td_cron_mark_write(const char *path, long long secs, char *err, size_t errlen);

/*
 * The event of one tick (DESIGN.md, envelope table): type "triggerd.cron.tick", source
 * "triggerd/cron/<name>", subject <name>, time and id from the scheduled instant (id
 * "<name>:2025-01-01T00:15:00Z"), extension `schedule` = the expression with each run
 * of white space made one space, data = payload (JSON text, application/json) or none
 * when payload is NULL. NULL with the reason in err.
 */
struct td_event *td_cron_event(const char *name, const char *schedule, long long instant,
			       const char *payload, char *err, size_t errlen);

/* The lease server: redis://[[user]:password@]host[:port][/db]. */
struct td_cron_redis_url {
	char host[256]; /* a name, an IPv4 address or an IPv6 address (brackets removed) */
	int port;	/* default 6379 */
	char user[256]; /* percent-decoded; "" for none */
	char password[256];
	int db; /* default 0 */
};
/* 0, or -TD_EINVAL with what is wrong and where (rediss:// is refused: no TLS). */
int td_cron_redis_url_parse(const char *url, struct td_cron_redis_url *out, char *err,
			    size_t errlen);
/* "triggerd:cron:<name>:2025-01-01T00:15:00Z" (always NUL-terminated when cap > 0). */
void td_cron_lease_key(const char *name, long long instant, char *out, size_t cap);
/*
 * How long a tick's lease lives, in ms: long enough that no other instance can still
 * want the tick when it expires: an hour past the latest attempt, which is at the
 * jitter plus TD_CRON_LATE_S, or at catchup_max_age for a catch-up.
 */
long long td_cron_lease_ttl_ms(int catchup, long long max_age_ms, long long jitter_ms);

#endif
