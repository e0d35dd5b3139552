/*
 * Schedule expressions of the cron source, and the instants they fire at.
 *
 * One parser for five kinds of expression, one question answered for all of them:
 * "what is the first fire instant strictly after T?". The cron connector asks it to arm
 * its timer and to replay missed ticks; `triggerctl next-fires` asks it to print.
 *
 *   kind       example                        wall clock of the schedule's time zone
 *   cron       "0,30 9-17 * * MON-FRI"        minute hour day-of-month month day-of-week
 *   cron6      "30 0 12 * * *"                second, then the five fields above
 *   aws-cron   "cron(0 12 ? * 6L *)"          EventBridge: minute hour dom month dow year
 *   rate       "rate(5 minutes)"              every N minutes/hours/days from `start`
 *   at         "at(2025-06-01T09:00:00)"      once, at that wall-clock time
 *
 * cron/cron6 follow Vixie cron and cronie: names JAN-DEC and SUN-SAT (any case),
 * lists, ranges, steps (5-50/5, 10/5, and "*" + "/15"), day-of-week 0-7 with 0 and 7
 * Sunday, the macros @yearly @annually @monthly @weekly @daily @midnight @hourly, and
 * the Vixie rule: when neither day-of-month nor day-of-week starts with '*', a day
 * matches if EITHER matches (otherwise both must). Ranges may not run backwards.
 * cron() follows EventBridge: day-of-week 1-7 = SUN-SAT, exactly one of day-of-month
 * and day-of-week is '?', day-of-month takes L (last day), LW (last weekday) or nW
 * (the weekday nearest day n, never leaving the month; no fire in a month without day
 * n), day-of-week takes L (Saturday), nL (last weekday n of the month) or n#k (k-th
 * weekday n, 1-5); the year is 1970-2199 ('*' too); ranges may wrap (FRI-MON, 22-2)
 * except in the year field.
 *
 * Daylight saving time (the zone is read from the system's TZif files, see below):
 *   cron, cron6 (as cronie, whose crond runs in that zone):
 *     - a job is a "wildcard" job when its minute or hour field starts with '*' (the
 *       macro @hourly is one); other jobs are "fixed-time" jobs;
 *     - wall-clock times skipped by a forward jump fire once, at the instant of the
 *       jump, for fixed-time jobs; wildcard jobs simply have no tick in the gap;
 *     - a repeated wall-clock time fires once (first pass) for fixed-time jobs, twice
 *       (both passes) for wildcard jobs;
 *     - as cronie classifies clock jumps: forward by 4 minutes or less catches up
 *       every job; forward by 3 hours or more, or backward by more than 181 minutes,
 *       counts as "the clock was set": no catch-up forward, every job runs again
 *       backward.
 *   aws-cron, at (as EventBridge Scheduler): a skipped wall-clock time does not fire;
 *     a repeated one fires once, at its first occurrence.
 *   rate: start, start + N, start + 2N, ... in absolute seconds; 1 day = 86400 s;
 *     N is 1 to 1000000, with the singular unit for 1 and the plural otherwise.
 *
 * Time zones: an IANA name (e.g. "America/New_York") is read from
 * TD_ZONEINFO_DIR (/usr/share/zoneinfo, Debian package tzdata) when the schedule is
 * parsed: the TZif v1-v4 transitions, and the POSIX TZ rule of the footer for instants
 * after the last one. NULL, "", "UTC" and "Etc/UTC" need no file. No process-wide state
 * (TZ, localtime) is touched, so any thread may parse and compute at any time.
 *
 * Times are seconds since the epoch (UTC, no leap seconds) in a long long; every
 * function accepts and returns instants between TD_TIME_MIN (0001-01-01T00:00:00Z) and
 * TD_TIME_MAX (9999-12-31T23:59:59Z).
 *
 * Ownership and threads: td_schedule_parse*() returns a schedule owned by the caller,
 * released with td_schedule_destroy(). A schedule is immutable after parsing: any number
 * of threads may call the const functions on it at the same time. Strings returned by
 * accessors live as long as the schedule. Error messages are written into the caller's
 * `err` buffer (truncated to `errlen`; err may be NULL when errlen is 0).
 */
#ifndef TRIGGERD_CRON_SCHEDULE_H
#define TRIGGERD_CRON_SCHEDULE_H

#include <stddef.h>

#ifndef TD_ZONEINFO_DIR
#define TD_ZONEINFO_DIR "/usr/share/zoneinfo"
#endif

#define TD_TIME_MIN (-62135596800LL) /* 0001-01-01T00:00:00Z */
#define TD_TIME_MAX 253402300799LL   /* 9999-12-31T23:59:59Z */

/* Longest accepted expression and zone name, in bytes. */
#define TD_SCHEDULE_EXPR_MAX 1024
#define TD_SCHEDULE_ZONE_MAX 255

/* Size of a buffer that holds any td_time_format_rfc3339() output. */
#define TD_TIME_RFC3339_LEN 32

enum td_schedule_kind {
	TD_SCHEDULE_CRON,     /* 5 fields */
	TD_SCHEDULE_CRON6,    /* 6 fields, seconds first */
	TD_SCHEDULE_AWS_CRON, /* cron(...) */
	TD_SCHEDULE_RATE,     /* rate(...) */
	TD_SCHEDULE_AT,	      /* at(...) */
};

struct td_schedule;

/*
 * Parses `expr` (leading and trailing blanks ignored) in the IANA zone `timezone`
 * (NULL or "" = UTC). On error returns NULL and a message naming the field and why, e.g.
 * "minute: 61 is out of range (0-59)" or `timezone: unknown zone "Mars/Base"`.
 * An expression that can never fire (0 0 30 2 *) parses; td_schedule_next() then
 * answers -TD_ENOTFOUND at once.
 */
struct td_schedule *td_schedule_parse(const char *expr, const char *timezone, char *err,
				      size_t errlen);

/*
 * As td_schedule_parse(), with the zone's TZif data given in memory (`tzif`, `len`
 * bytes, copied) instead of read from TD_ZONEINFO_DIR; `zone_name` is only a label
 * (NULL = "custom"). For tests and fuzzing of odd zones.
 */
struct td_schedule *td_schedule_parse_tzif(const char *expr, const char *zone_name,
					   const void *tzif, size_t len, char *err, size_t errlen);

/* NULL is allowed. */
void td_schedule_destroy(struct td_schedule *s);

/*
 * The first fire instant strictly after `after`. `start` is the anchor of rate() (its
 * first fire instant; ignored by the other kinds). Returns 0 and sets *next; returns
 * -TD_ENOTFOUND when there is none (at() already past or on a skipped wall-clock time,
 * the year field exhausted, a day that never exists, nothing up to TD_TIME_MAX), or
 * -TD_EINVAL when `after` or `start` is outside [TD_TIME_MIN, TD_TIME_MAX]. The source's
 * start/end window, jitter and catch-up policy are the caller's: this only answers
 * "when".
 * Cost: microseconds; never more than a bounded scan (400 years of calendar, which is
 * one full Gregorian cycle) for an expression that does not fire.
 */
int td_schedule_next(const struct td_schedule *s, long long after, long long start,
		     long long *next);

enum td_schedule_kind td_schedule_kind(const struct td_schedule *s);
/* "cron", "cron6", "aws-cron", "rate", "at". */
const char *td_schedule_kind_name(const struct td_schedule *s);
/* The zone name as given ("UTC" when none was). */
const char *td_schedule_timezone(const struct td_schedule *s);
/* rate(): the period in seconds; 0 for the other kinds. */
long long td_schedule_rate_period(const struct td_schedule *s);

/*
 * RFC 3339 date-time: "2025-01-01T00:15:00Z", "2025-01-01t00:15:00.250+02:00",
 * "2025-01-01 00:15:00z". Fractions of a second are dropped (rounded down), a leap
 * second (:60) counts as the next second. Returns 0 and *secs, or -TD_EINVAL with a
 * message saying what is wrong and where.
 */
int td_time_parse_rfc3339(const char *text, long long *secs, char *err, size_t errlen);

/* Writes "2025-01-01T00:15:00Z" (UTC) into out (always NUL-terminated when cap > 0;
 * TD_TIME_RFC3339_LEN bytes are always enough). */
void td_time_format_rfc3339(long long secs, char *out, size_t cap);

#endif
