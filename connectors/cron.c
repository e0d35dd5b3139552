/*
 * The cron source: one schedule (5 or 6 field cron, @macros, AWS cron(), rate(), at())
 * in a time zone, firing an event whose time is the scheduled instant. After downtime
 * it may catch up on missed ticks; with a Redis lease a tick fires once across several
 * triggerd instances.
 *
 * Configuration: the option table below; check runs the schedule parser
 * (connectors/cron_schedule.c) on schedule and timezone and the RFC 3339 parser on
 * start and end, so that a bad expression, an unknown zone or a bad date is an error of
 * the configuration with its file and line, and parses the lease URL.
 *
 * Runtime: one thread per source (sources are few and mostly asleep; a thread of its
 * own keeps a slow lease server or a long catch-up walk away from other schedules and
 * from the engine). It sleeps on a condition variable (CLOCK_MONOTONIC) until the next
 * tick's instant plus that tick's jitter, at most WAKE_MAX_MS at a time so that a step
 * of the wall clock is noticed, and is woken early by stop and by settle.
 *
 * Which ticks fire is the ticker's business (connectors/cron_source.h): the next tick
 * is computed from the last scheduled instant, never from "now", so a late wakeup
 * fires the tick late rather than skipping it; a tick found more than TD_CRON_LATE_S
 * (plus the jitter) late is "missed" and the catch-up policy decides, exactly as for
 * the ticks missed while triggerd was down: none (dropped, the default), last (the most
 * recent fires once) or all (each, oldest first, the newest TD_CRON_CATCHUP_MAX at
 * most, none older than catchup_max_age). A start without a mark fires nothing missed.
 *
 * One tick is in flight at a time, so ticks fire in order. Its settlement comes on the
 * engine thread and is handed to the source's thread: DONE or FAILED (a sync function
 * failed: logged; cron has no redelivery, the tick counts as fired) write the
 * last-fired mark <state_dir>/cron/<name>.mark (temporary file, fsync, rename); BUSY
 * fires the same tick again after retry_after_ms, and later ticks wait. A settlement
 * that comes after stop (the engine settles what was in flight) is handled on the
 * engine thread: it writes the mark of a DONE or FAILED tick. Delivery is at least
 * once: a crash between firing and the mark fires that tick again when catchup is on.
 *
 * Lease: before firing tick T the thread runs SET triggerd:cron:<name>:<T> <instance>
 * NX PX <ttl> on the lease server; it fires when the SET succeeds or the key already
 * holds its own instance id (a BUSY retry, or a restart of this instance: at least
 * once), and leaves the tick to the other instance otherwise. A Redis error is logged,
 * the tick is not fired, the source is not ready until a later tick reaches the server
 * again (each tick reconnects when needed). The instance id is the host name and the
 * absolute state directory, which stay the same across restarts.
 */
#include <triggerd/engine.h>
#include <triggerd/errors.h>
#include <triggerd/event.h>
#include <triggerd/log.h>
#include <triggerd/source.h>

#include "cron_schedule.h"
#include "cron_source.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

struct cron_opts {
	char *schedule;
	char *timezone;
	char *start;   /* RFC 3339 or NULL */
	char *end;     /* RFC 3339 or NULL */
	char *payload; /* JSON text or NULL */
	long long jitter_ms;
	int catchup; /* enum td_cron_catchup */
	long long catchup_max_age_ms;
	char *lease; /* redis:// URL or NULL */
};

#define O(field) offsetof(struct cron_opts, field)

static const struct td_option cron_options[] = {
    {.type = TD_OPT_STRING,
     .name = "schedule",
     .flags = TD_OPT_REQUIRED,
     .offset = O(schedule),
     .desc = "When to fire: \"*/5 * * * *\" (5 fields), \"*/10 * * * * *\" (6, with "
	     "seconds first), @hourly and the other macros, cron(0 12 * * ? *), "
	     "rate(5 minutes), at(2030-01-01T00:00:00)."},
    {.type = TD_OPT_STRING,
     .name = "timezone",
     .def = "UTC",
     .offset = O(timezone),
     .desc = "IANA time zone of the schedule (Europe/Paris)."},
    {.type = TD_OPT_STRING,
     .name = "start",
     .offset = O(start),
     .desc = "RFC 3339 time before which nothing fires; the anchor of rate(). Default: "
	     "none (rate() counts from the loading of the configuration)."},
    {.type = TD_OPT_STRING,
     .name = "end",
     .offset = O(end),
     .desc = "RFC 3339 time after which nothing fires. Default: none."},
    {.type = TD_OPT_JSON,
     .name = "payload",
     .offset = O(payload),
     .desc = "JSON data of every event (a JSON string or a libconfig group). Default: "
	     "none (an event without data)."},
    {.type = TD_OPT_DURATION,
     .name = "jitter",
     .def = "0s",
     .offset = O(jitter_ms),
     .min = 0,
     .max = 86400000,
     .desc = "Largest random delay added to each firing (the event time stays the "
	     "scheduled one)."},
    {.type = TD_OPT_ENUM,
     .name = "catchup",
     .def = "none",
     .offset = O(catchup),
     .choices = "none|last|all",
     .desc = "Ticks missed while triggerd was down (or found more than 60 s past their "
	     "time, plus the jitter, after a clock step or a long backlog): none, the most "
	     "recent once, or all of them (up to catchup_max_age, the newest 1000 at most)."},
    {.type = TD_OPT_DURATION,
     .name = "catchup_max_age",
     .def = "24h",
     .offset = O(catchup_max_age_ms),
     .min = 1000,
     .max = 2592000000.0,
     .desc = "Oldest missed tick that catchup still fires."},
    {.type = TD_OPT_STRING,
     .name = "lease",
     .offset = O(lease),
     .desc = "redis:// URL of a Redis server through which a tick fires once across all "
	     "triggerd instances. Default: none (each instance fires)."},
    {0},
};

/* ---- pure helpers (cron_source.h) ------------------------------------------------ */

int td_cron_window_next(const struct td_schedule *s, const struct td_cron_window *w,
			long long after, long long *next)
{
	if (after < w->after)
		after = w->after;
	if (after < TD_TIME_MIN)
		after = TD_TIME_MIN;
	if (after >= w->end || after >= TD_TIME_MAX)
		return -TD_ENOTFOUND;
	int rc = td_schedule_next(s, after, w->anchor, next);
	if (rc < 0)
		return rc;
	if (*next > w->end)
		return -TD_ENOTFOUND;
	return 0;
}

#define PLAN_FIRST_SPAN_S 1024 /* the first span of a catch-up walk, in seconds */

/* Reverses a[i..j). */
static void reverse(long long *a, size_t i, size_t j)
{
	while (i + 1 < j) {
		long long t = a[i];
		a[i++] = a[--j];
		a[j] = t;
	}
}

int td_cron_plan_catchup(const struct td_schedule *s, const struct td_cron_window *w, int catchup,
			 long long max_age_s, long long after, long long upto, long long now,
			 long long *out, size_t cap, struct td_cron_plan *plan)
{
	struct td_cron_plan local;
	if (!plan)
		plan = &local;
	memset(plan, 0, sizeof *plan);
	plan->decided = true;
	plan->after = after;
	plan->upto = upto;
	plan->found = -1;
	if (upto <= after)
		return 0;
	if (catchup != TD_CRON_CATCHUP_LAST && catchup != TD_CRON_CATCHUP_ALL)
		return 0;
	size_t keep = catchup == TD_CRON_CATCHUP_LAST ? 1 : cap;
	if (keep == 0)
		return 0;
	long long oldest = now - max_age_s; /* the oldest instant that still fires */
	long long from = after;
	if (oldest > TD_TIME_MIN && from < oldest - 1) {
		from = oldest - 1;
		plan->aged = true;
	}
	/*
	 * Only the newest `keep` instants are wanted: walk (upto - span, upto] with a span
	 * that doubles until it holds `keep` instants or reaches back to `from`, so a
	 * dense schedule (every second for 30 days) costs about 2 x keep steps, not a walk
	 * of the whole range. Each walk keeps the newest `keep` instants in a ring.
	 */
	long long found = 0;
	for (long long span = PLAN_FIRST_SPAN_S;; span *= 2) {
		bool whole = span >= upto - from;
		long long lo = whole ? from : upto - span;
		found = 0;
		for (long long t = lo;;) {
			long long n;
			int rc = td_cron_window_next(s, w, t, &n);
			if (rc == -TD_ENOTFOUND || (rc == 0 && n > upto))
				break;
			if (rc < 0)
				return rc;
			out[(size_t)(found % (long long)keep)] = n;
			found++;
			t = n;
		}
		if (whole || found >= (long long)keep) {
			plan->partial = !whole;
			break;
		}
	}
	plan->found = found;
	size_t n = found < (long long)keep ? (size_t)found : keep;
	if ((long long)n < found) {
		/* The ring's oldest entry is at found % keep: rotate it to the front. */
		size_t head = (size_t)(found % (long long)keep);
		reverse(out, 0, head);
		reverse(out, head, n);
		reverse(out, 0, n);
	}
	plan->planned = (long long)n;
	return (int)n;
}

void td_cron_ticker_init(struct td_cron_ticker *t, const struct td_schedule *s,
			 const struct td_cron_window *w, int catchup, long long max_age_s,
			 long long cursor)
{
	memset(t, 0, sizeof *t);
	t->schedule = s;
	t->window = *w;
	t->catchup = catchup;
	t->max_age_s = max_age_s;
	t->cursor = cursor;
}

int td_cron_ticker_peek(struct td_cron_ticker *t, long long upto, long long now, long long *tick,
			bool *catchup, struct td_cron_plan *plan)
{
	bool dummy;
	if (!catchup)
		catchup = &dummy;
	if (plan)
		memset(plan, 0, sizeof *plan);
	if (t->qlen > 0) {
		*tick = t->queue[t->qhead];
		*catchup = true;
		return 0;
	}
	if (!t->has_next) {
		int rc = td_cron_window_next(t->schedule, &t->window, t->cursor, &t->next);
		if (rc < 0)
			return rc;
		t->has_next = true;
	}
	if (t->next <= upto && upto > t->cursor) {
		int n =
		    td_cron_plan_catchup(t->schedule, &t->window, t->catchup, t->max_age_s,
					 t->cursor, upto, now, t->queue, TD_CRON_CATCHUP_MAX, plan);
		if (n < 0)
			return n;
		t->qhead = 0;
		t->qlen = (size_t)n;
		t->cursor = upto;
		t->has_next = false;
		if (n > 0) {
			*tick = t->queue[0];
			*catchup = true;
			return 0;
		}
		int rc = td_cron_window_next(t->schedule, &t->window, t->cursor, &t->next);
		if (rc < 0)
			return rc;
		t->has_next = true;
	}
	*tick = t->next;
	*catchup = false;
	return 0;
}

void td_cron_ticker_pop(struct td_cron_ticker *t)
{
	if (t->qlen > 0) {
		t->qhead++;
		t->qlen--;
	} else if (t->has_next) {
		t->cursor = t->next;
		t->has_next = false;
	}
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

#define MARK_MAX 64 /* bytes of a mark's text */

int td_cron_mark_parse(const char *text, size_t len, long long *secs, char *err, size_t errlen)
{
	char buf[MARK_MAX + 1], perr[256];
	while (len > 0 && strchr(" \t\r\n", text[len - 1]))
		len--;
	if (len == 0) {
		seterr(err, errlen,
		       "empty mark (expected an RFC 3339 time such as "
		       "2025-01-01T00:15:00Z)");
		return -TD_EINVAL;
	}
	if (len > MARK_MAX) {
		seterr(err, errlen,
		       "mark is too long (more than %d bytes; an RFC 3339 time is "
		       "expected)",
		       MARK_MAX);
		return -TD_EINVAL;
	}
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)text[i] < 0x20 || (unsigned char)text[i] >= 0x7f) {
			seterr(err, errlen, "unexpected byte 0x%02x at position %zu of the mark",
			       (unsigned char)text[i], i + 1);
			return -TD_EINVAL;
		}
	memcpy(buf, text, len);
	buf[len] = '\0';
	if (td_time_parse_rfc3339(buf, secs, perr, sizeof perr) < 0) {
		seterr(err, errlen, "%s", perr);
		return -TD_EINVAL;
	}
	return 0;
}

int td_cron_mark_read(const char *path, long long *secs, char *err, size_t errlen)
{
	char buf[MARK_MAX * 4], why[320];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			seterr(err, errlen, "%s: no mark", path);
			return -TD_ENOTFOUND;
		}
		seterr(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return -TD_EIO;
	}
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, sizeof buf - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			seterr(err, errlen, "cannot read %s: %s", path, strerror(errno));
			close(fd);
			return -TD_EIO;
		}
		if (n == 0 || (len += (size_t)n) == sizeof buf)
			break;
	}
	close(fd);
	if (td_cron_mark_parse(buf, len, secs, why, sizeof why) < 0) {
		seterr(err, errlen, "%s: %s", path, why);
		return -TD_EINVAL;
	}
	return 0;
}

/* fsync of the folder that holds path, so that a rename in it is durable. */
static int sync_parent(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
	if (!dir)
		return -1;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

int td_cron_mark_write(const char *path, long long secs, char *err, size_t errlen)
{
	char text[TD_TIME_RFC3339_LEN + 1];
	int fd = -1;
	size_t plen = strlen(path);
	char *tmp = malloc(plen + sizeof ".XXXXXX");
	if (!tmp) {
		seterr(err, errlen, "out of memory");
		return -TD_EIO;
	}
	memcpy(tmp, path, plen);
	memcpy(tmp + plen, ".XXXXXX", sizeof ".XXXXXX");
	td_time_format_rfc3339(secs, text, TD_TIME_RFC3339_LEN);
	size_t len = strlen(text);
	text[len++] = '\n';
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		seterr(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
		goto fail;
	}
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			seterr(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
			goto fail;
		}
		off += (size_t)n;
	}
	if (fsync(fd) < 0) {
		seterr(err, errlen, "cannot fsync %s: %s", tmp, strerror(errno));
		goto fail;
	}
	int rc = close(fd);
	fd = -1;
	if (rc < 0) {
		seterr(err, errlen, "cannot close %s: %s", tmp, strerror(errno));
		goto fail;
	}
	if (rename(tmp, path) < 0) {
		seterr(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
		goto fail;
	}
	free(tmp);
	tmp = NULL;
	if (sync_parent(path) < 0) {
		seterr(err, errlen, "cannot fsync the folder of %s: %s", path, strerror(errno));
		return -TD_EIO;
	}
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	return -TD_EIO;
}

/* The expression with runs of white space made one space, without blanks around. */
static char *squeeze(const char *s)
{
	char *out = malloc(strlen(s) + 1);
	if (!out)
		return NULL;
	size_t n = 0;
	bool space = false;
	for (; *s; s++) {
		if (isspace((unsigned char)*s)) {
			space = n > 0;
			continue;
		}
		if (space)
			out[n++] = ' ';
		space = false;
		out[n++] = *s;
	}
	out[n] = '\0';
	return out;
}

struct td_event *td_cron_event(const char *name, const char *schedule, long long instant,
			       const char *payload, char *err, size_t errlen)
{
	char when[TD_TIME_RFC3339_LEN];
	const char *what = "memory";
	size_t nlen = strlen(name);
	char *id = malloc(nlen + sizeof when + 2);
	char *source = malloc(nlen + sizeof "triggerd/cron/");
	char *expr = squeeze(schedule);
	struct td_event *ev = td_event_create();
	if (!id || !source || !expr || !ev)
		goto fail;
	td_time_format_rfc3339(instant, when, sizeof when);
	sprintf(id, "%s:%s", name, when);
	sprintf(source, "triggerd/cron/%s", name);
	int rc;
	if ((rc = td_event_set(ev, "type", "triggerd.cron.tick")) < 0)
		goto fail;
	what = "source";
	if ((rc = td_event_set(ev, "source", source)) < 0)
		goto fail;
	what = "id";
	if ((rc = td_event_set(ev, "id", id)) < 0)
		goto fail;
	what = "subject";
	if ((rc = td_event_set(ev, "subject", name)) < 0)
		goto fail;
	what = "time";
	if ((rc = td_event_set(ev, "time", when)) < 0)
		goto fail;
	what = "schedule";
	if ((rc = td_event_set(ev, "schedule", expr)) < 0)
		goto fail;
	what = "payload";
	if (payload &&
	    (rc = td_event_set_data(ev, payload, strlen(payload), "application/json")) < 0)
		goto fail;
	free(id);
	free(source);
	free(expr);
	return ev;
fail:
	if (strcmp(what, "memory") == 0)
		seterr(err, errlen, "out of memory");
	else
		seterr(err, errlen, "cannot set the event's %s (not a valid CloudEvents value)",
		       what);
	td_event_unref(ev);
	free(id);
	free(source);
	free(expr);
	return NULL;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes s[0..len) into out[cap]; pos is the offset of s in the URL. */
static int decode(const char *s, size_t len, size_t pos, const char *what, char *out, size_t cap,
		  char *err, size_t errlen)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)s[i];
		if (c == '%') {
			int hi = i + 1 < len ? hexval(s[i + 1]) : -1;
			int lo = i + 2 < len ? hexval(s[i + 2]) : -1;
			c = hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
			if (c <= 0) {
				seterr(err, errlen,
				       "%s: bad percent escape at position %zu (expected %%XX, not "
				       "%%00)",
				       what, pos + i + 1);
				return -TD_EINVAL;
			}
			i += 2;
		}
		if (n + 1 >= cap) {
			seterr(err, errlen, "%s is longer than %zu bytes", what, cap - 1);
			return -TD_EINVAL;
		}
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return 0;
}

int td_cron_redis_url_parse(const char *url, struct td_cron_redis_url *out, char *err,
			    size_t errlen)
{
	memset(out, 0, sizeof *out);
	out->port = 6379;
	if (!url || !*url) {
		seterr(err, errlen, "empty URL (expected redis://host:port)");
		return -TD_EINVAL;
	}
	for (const char *q = url; *q; q++)
		if ((unsigned char)*q <= 0x20 || (unsigned char)*q == 0x7f) {
			seterr(err, errlen,
			       "URL holds a space or control character at position %zu",
			       (size_t)(q - url) + 1);
			return -TD_EINVAL;
		}
	if (strncasecmp(url, "rediss://", 9) == 0) {
		seterr(err, errlen,
		       "rediss:// (TLS) is not supported for the lease; use "
		       "redis://");
		return -TD_EINVAL;
	}
	if (strncasecmp(url, "redis://", 8) != 0) {
		seterr(err, errlen, "\"%.80s\" is not a redis:// URL (redis://host:port/db)", url);
		return -TD_EINVAL;
	}
	const char *p = url + 8;
	size_t alen = strcspn(p, "/?#");
	if (p[alen] == '?' || p[alen] == '#') {
		seterr(err, errlen, "query or fragment at position %zu is not supported",
		       (size_t)(p + alen - url) + 1);
		return -TD_EINVAL;
	}
	const char *host = p, *aend = p + alen;
	const char *at = NULL;
	for (const char *q = p; q < aend; q++)
		if (*q == '@')
			at = q;
	if (at) {
		const char *colon = memchr(p, ':', (size_t)(at - p));
		if (!colon) {
			seterr(err, errlen,
			       "user information without ':' (write redis://:password@host or "
			       "redis://user:password@host)");
			return -TD_EINVAL;
		}
		if (decode(p, (size_t)(colon - p), (size_t)(p - url), "user", out->user,
			   sizeof out->user, err, errlen) < 0 ||
		    decode(colon + 1, (size_t)(at - colon - 1), (size_t)(colon + 1 - url),
			   "password", out->password, sizeof out->password, err, errlen) < 0)
			return -TD_EINVAL;
		host = at + 1;
	}
	const char *hend, *rest;
	if (*host == '[') {
		hend = memchr(host, ']', (size_t)(aend - host));
		if (!hend) {
			seterr(err, errlen, "IPv6 address at position %zu lacks its ']'",
			       (size_t)(host - url) + 1);
			return -TD_EINVAL;
		}
		for (const char *q = host + 1; q < hend; q++)
			if (!isxdigit((unsigned char)*q) && *q != ':' && *q != '.') {
				seterr(err, errlen,
				       "unexpected '%c' in the IPv6 address at position %zu", *q,
				       (size_t)(q - url) + 1);
				return -TD_EINVAL;
			}
		host++;
		rest = hend + 1;
	} else {
		hend = host;
		while (hend < aend && *hend != ':')
			hend++;
		for (const char *q = host; q < hend; q++)
			if (!isalnum((unsigned char)*q) && *q != '.' && *q != '-' && *q != '_') {
				seterr(err, errlen, "unexpected '%c' in the host at position %zu",
				       *q, (size_t)(q - url) + 1);
				return -TD_EINVAL;
			}
		rest = hend;
	}
	if (hend == host) {
		seterr(err, errlen, "no host at position %zu (redis://host:port)",
		       (size_t)(host - url) + 1);
		return -TD_EINVAL;
	}
	if ((size_t)(hend - host) >= sizeof out->host) {
		seterr(err, errlen, "host is longer than %zu bytes", sizeof out->host - 1);
		return -TD_EINVAL;
	}
	memcpy(out->host, host, (size_t)(hend - host));
	out->host[hend - host] = '\0';
	if (rest < aend) {
		if (*rest != ':') {
			seterr(err, errlen, "unexpected '%c' after the host at position %zu", *rest,
			       (size_t)(rest - url) + 1);
			return -TD_EINVAL;
		}
		long port = 0;
		const char *q = rest + 1;
		for (; q < aend && isdigit((unsigned char)*q) && port <= 65535; q++)
			port = port * 10 + (*q - '0');
		if (q == rest + 1 || q != aend || port < 1 || port > 65535) {
			seterr(err, errlen, "port \"%.*s\" at position %zu is not a number 1-65535",
			       (int)(aend - rest - 1 > 20 ? 20 : aend - rest - 1), rest + 1,
			       (size_t)(rest - url) + 2);
			return -TD_EINVAL;
		}
		out->port = (int)port;
	}
	if (*aend == '/') {
		const char *q = aend + 1;
		long db = 0;
		for (; isdigit((unsigned char)*q) && db <= INT_MAX; q++)
			db = db * 10 + (*q - '0');
		if (*q || db > INT_MAX) {
			seterr(
			    err, errlen,
			    "database \"%.20s\" at position %zu is not a number (redis://host/0)",
			    aend + 1, (size_t)(aend - url) + 2);
			return -TD_EINVAL;
		}
		out->db = (int)db;
	}
	return 0;
}

void td_cron_lease_key(const char *name, long long instant, char *out, size_t cap)
{
	char when[TD_TIME_RFC3339_LEN];
	td_time_format_rfc3339(instant, when, sizeof when);
	if (cap > 0)
		snprintf(out, cap, "triggerd:cron:%s:%s", name, when);
}

long long td_cron_lease_ttl_ms(int catchup, long long max_age_ms, long long jitter_ms)
{
	long long latest =
	    catchup == TD_CRON_CATCHUP_NONE ? jitter_ms + TD_CRON_LATE_S * 1000LL : max_age_ms;
	if (latest < jitter_ms + TD_CRON_LATE_S * 1000LL)
		latest = jitter_ms + TD_CRON_LATE_S * 1000LL;
	return latest + 3600 * 1000LL;
}

/* ---- configuration check --------------------------------------------------------- */

static void cron_check(const void *p, const char *file, int line, struct td_diag *diag)
{
	const struct cron_opts *o = p;
	long long start = 0, end = 0;
	bool has_start = false, has_end = false;
	char err[512];

	struct td_schedule *s = td_schedule_parse(o->schedule, o->timezone, err, sizeof err);
	if (!s) {
		/* The parser names the field; a zone problem belongs to option 'timezone'. */
		bool zone = strncmp(err, "timezone: ", 10) == 0;
		td_diag_add(diag, file, line, "option '%s': %s", zone ? "timezone" : "schedule",
			    zone ? err + 10 : err);
	}
	td_schedule_destroy(s);
	if (o->start &&
	    !(has_start = td_time_parse_rfc3339(o->start, &start, err, sizeof err) == 0))
		td_diag_add(diag, file, line, "option 'start': %s", err);
	if (o->end && !(has_end = td_time_parse_rfc3339(o->end, &end, err, sizeof err) == 0))
		td_diag_add(diag, file, line, "option 'end': %s", err);
	if (has_start && has_end && end <= start)
		td_diag_add(diag, file, line, "option 'end' must be after option 'start'");
	/* The common URL check first (its wording is shared with other kinds), then the
	 * lease's own parser: port, database, user information, no TLS. */
	struct td_cron_redis_url url;
	if (o->lease && (td_url_check(o->lease, "redis://|rediss://", err, sizeof err) < 0 ||
			 td_cron_redis_url_parse(o->lease, &url, err, sizeof err) < 0))
		td_diag_add(diag, file, line, "option 'lease': %s", err);
}

/* ---- runtime --------------------------------------------------------------------- */

#define WAKE_MAX_MS	 1000 /* longest sleep: a step of the wall clock is seen this soon */
#define RETRY_MIN_MS	 100  /* shortest wait before a BUSY tick fires again */
#define REDIS_TIMEOUT_MS 1000 /* connect and command timeout of the lease server */
#define INSTANCE_MAX	 512

enum lease_answer { LEASE_OURS, LEASE_TAKEN, LEASE_ERROR };

struct cron_ctx {
	struct td_source *src;
	const struct cron_opts *o;
	const char *scope;
	const char *name;
	struct td_schedule *schedule;
	struct td_cron_ticker ticker; /* the thread's */
	long long late_s;
	char *mark_path;  /* NULL: no mark is kept (the folder could not be made) */
	long long marked; /* the last mark written; see persist() for who may touch it */
	bool has_mark;
	/* Lease (the thread's). */
	bool lease;
	struct td_cron_redis_url url;
	char instance[INSTANCE_MAX];
	long long lease_ttl_ms;
	redisContext *redis;
	bool lease_ok;
	unsigned long long rng;
	struct td_log_ratelimit lease_rl, mark_rl;

	bool sync_made; /* lock and cond are initialised */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool joinable;
	/* Under lock: */
	bool stopping;
	bool running; /* the thread takes settlements; after it: settle() does */
	bool in_flight;
	long long in_flight_tick;
	bool settled;
	enum td_settle_status settle_status;
	long long retry_after_ms;
};

static long long floor_div(long long a, long long b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Writes the mark of tick (the thread, or whoever holds the lock once it has gone). */
static void persist(struct cron_ctx *c, long long tick)
{
	char err[512], when[TD_TIME_RFC3339_LEN];
	if (!c->mark_path || (c->has_mark && tick <= c->marked))
		return;
	if (td_cron_mark_write(c->mark_path, tick, err, sizeof err) < 0) {
		if (td_log_ratelimit(&c->mark_rl, 3, 60000))
			td_logs_error(c->scope, "cannot keep the last-fired mark: %s", err);
		return;
	}
	c->marked = tick;
	c->has_mark = true;
	td_time_format_rfc3339(tick, when, sizeof when);
	td_logs_debug(c->scope, "mark %s written", when);
}

static long long jitter_of(struct cron_ctx *c)
{
	if (c->o->jitter_ms <= 0)
		return 0;
	/* splitmix64 */
	unsigned long long z = (c->rng += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	z ^= z >> 31;
	return (long long)(z % (unsigned long long)(c->o->jitter_ms + 1));
}

/* Sleeps on the condition variable for at most ms (and WAKE_MAX_MS); lock held. */
static void wait_ms(struct cron_ctx *c, long long ms)
{
	struct timespec ts;
	if (ms > WAKE_MAX_MS)
		ms = WAKE_MAX_MS;
	if (ms < 1)
		ms = 1;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&c->cond, &c->lock, &ts);
}

static void redis_drop(struct cron_ctx *c)
{
	if (c->redis)
		redisFree(c->redis);
	c->redis = NULL;
}

/* Sends one command; false with the reason in err (the connection is dropped on an I/O
 * error). The reply, when any, is the caller's. */
static bool redis_reply_ok(struct cron_ctx *c, redisReply *r, const char *what, char *err,
			   size_t errlen)
{
	if (!r) {
		snprintf(err, errlen, "%s: %s", what,
			 c->redis->errstr[0] ? c->redis->errstr : "connection lost");
		redis_drop(c);
		return false;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(err, errlen, "%s: %.200s", what, r->str);
		freeReplyObject(r);
		return false;
	}
	return true;
}

static bool redis_connect(struct cron_ctx *c, char *err, size_t errlen)
{
	struct timeval tv = {REDIS_TIMEOUT_MS / 1000, (REDIS_TIMEOUT_MS % 1000) * 1000};
	redisReply *r;
	c->redis = redisConnectWithTimeout(c->url.host, c->url.port, tv);
	if (!c->redis) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	if (c->redis->err) {
		snprintf(err, errlen, "cannot connect to %s:%d: %s", c->url.host, c->url.port,
			 c->redis->errstr);
		redis_drop(c);
		return false;
	}
	if (redisSetTimeout(c->redis, tv) != REDIS_OK) {
		snprintf(err, errlen, "cannot set the timeout: %s", c->redis->errstr);
		redis_drop(c);
		return false;
	}
	if (c->url.password[0] || c->url.user[0]) {
		r = c->url.user[0]
			? redisCommand(c->redis, "AUTH %s %s", c->url.user, c->url.password)
			: redisCommand(c->redis, "AUTH %s", c->url.password);
		if (!redis_reply_ok(c, r, "AUTH", err, errlen))
			goto fail;
		freeReplyObject(r);
	}
	if (c->url.db) {
		r = redisCommand(c->redis, "SELECT %d", c->url.db);
		if (!redis_reply_ok(c, r, "SELECT", err, errlen))
			goto fail;
		freeReplyObject(r);
	}
	return true;
fail:
	redis_drop(c);
	return false;
}

/* SET key instance NX PX ttl: whether this instance fires tick. Thread only. */
static enum lease_answer lease_take(struct cron_ctx *c, long long tick, char *err, size_t errlen)
{
	char key[512];
	td_cron_lease_key(c->name, tick, key, sizeof key);
	if (!c->redis && !redis_connect(c, err, errlen))
		return LEASE_ERROR;
	/* Two rounds: the key may expire between a refused SET and the GET. */
	for (int round = 0; round < 2; round++) {
		redisReply *r = redisCommand(c->redis, "SET %s %s NX PX %lld", key, c->instance,
					     c->lease_ttl_ms);
		if (!redis_reply_ok(c, r, "SET", err, errlen))
			return LEASE_ERROR;
		bool set = r->type == REDIS_REPLY_STATUS && strcasecmp(r->str, "OK") == 0;
		int type = r->type;
		freeReplyObject(r);
		if (set)
			return LEASE_OURS;
		if (type != REDIS_REPLY_NIL) {
			snprintf(err, errlen, "SET: unexpected reply of type %d", type);
			return LEASE_ERROR;
		}
		r = redisCommand(c->redis, "GET %s", key);
		if (!redis_reply_ok(c, r, "GET", err, errlen))
			return LEASE_ERROR;
		enum lease_answer a = LEASE_TAKEN;
		bool again = r->type == REDIS_REPLY_NIL;
		if (r->type == REDIS_REPLY_STRING && (size_t)r->len == strlen(c->instance) &&
		    memcmp(r->str, c->instance, (size_t)r->len) == 0)
			a = LEASE_OURS;
		freeReplyObject(r);
		if (!again)
			return a;
	}
	snprintf(err, errlen, "the lease key %.200s keeps expiring", key);
	return LEASE_ERROR;
}

/* Fires tick: takes its lease, builds its event, submits it. Thread, lock not held. */
static void fire(struct cron_ctx *c, long long tick)
{
	char when[TD_TIME_RFC3339_LEN], err[512];
	td_time_format_rfc3339(tick, when, sizeof when);
	if (c->lease) {
		enum lease_answer a = lease_take(c, tick, err, sizeof err);
		if (a == LEASE_ERROR) {
			char reason[1024];
			snprintf(reason, sizeof reason, "lease server %s:%d: %s", c->url.host,
				 c->url.port, err);
			if (td_log_ratelimit(&c->lease_rl, 3, 60000))
				td_logs_error(c->scope, "tick %s not fired: %s", when, reason);
			td_source_set_ready(c->src, false, reason);
			c->lease_ok = false;
			return;
		}
		if (!c->lease_ok) {
			td_source_set_ready(c->src, true, NULL);
			c->lease_ok = true;
		}
		if (a == LEASE_TAKEN) {
			td_logs_debug(c->scope, "tick %s: another instance holds its lease", when);
			return;
		}
	}
	struct td_event *ev =
	    td_cron_event(c->name, c->o->schedule, tick, c->o->payload, err, sizeof err);
	if (!ev) {
		td_logs_error(c->scope, "tick %s not fired: %s", when, err);
		return;
	}
	pthread_mutex_lock(&c->lock);
	if (c->stopping) {
		pthread_mutex_unlock(&c->lock);
		td_event_unref(ev);
		return;
	}
	c->in_flight = true;
	c->settled = false;
	c->in_flight_tick = tick;
	pthread_mutex_unlock(&c->lock);
	td_logs_debug(c->scope, "tick %s fired", when);
	td_source_submit(c->src, &ev, 1, c);
}

static void log_plan(struct cron_ctx *c, const struct td_cron_plan *p)
{
	static const char *const policy[] = {"none", "last", "all"};
	char from[TD_TIME_RFC3339_LEN], to[TD_TIME_RFC3339_LEN], age[32];
	td_time_format_rfc3339(p->after, from, sizeof from);
	td_time_format_rfc3339(p->upto, to, sizeof to);
	if (c->o->catchup == TD_CRON_CATCHUP_NONE) {
		td_logs_warn(c->scope,
			     "ticks after %s up to %s were missed and are not fired "
			     "(catchup = none)",
			     from, to);
		return;
	}
	td_duration_format(c->o->catchup_max_age_ms, age, sizeof age);
	td_logs_info(c->scope,
		     "catch-up: %s%lld missed ticks after %s up to %s%s%s%s; firing %lld (catchup "
		     "= %s)",
		     p->partial ? "more than " : "", p->found, from, to,
		     p->aged ? " (ticks older than catchup_max_age " : "", p->aged ? age : "",
		     p->aged ? " are not counted)" : "", p->planned, policy[c->o->catchup]);
	if (c->o->catchup == TD_CRON_CATCHUP_ALL && (p->partial || p->found > p->planned))
		td_logs_warn(c->scope, "catch-up fires the newest %lld of %s%lld missed ticks only",
			     p->planned, p->partial ? "more than " : "", p->found);
}

static void *cron_thread(void *arg)
{
	struct cron_ctx *c = arg;
	bool first = true, retrying = false, idle_logged = false;
	long long retry_tick = 0, retry_due = 0, jitter_tick = LLONG_MIN, jitter = 0;

	pthread_mutex_lock(&c->lock);
	while (!c->stopping) {
		long long tick;
		if (c->in_flight) {
			if (!c->settled) {
				pthread_cond_wait(&c->cond, &c->lock);
				continue;
			}
			c->in_flight = false;
			tick = c->in_flight_tick;
			if (c->settle_status == TD_SETTLE_BUSY) {
				long long after = c->retry_after_ms > RETRY_MIN_MS
						      ? c->retry_after_ms
						      : RETRY_MIN_MS;
				retrying = true;
				retry_tick = tick;
				retry_due = td_now_ms() + after;
			} else {
				pthread_mutex_unlock(&c->lock);
				persist(c, tick);
				pthread_mutex_lock(&c->lock);
			}
			continue;
		}
		if (retrying) {
			long long left = retry_due - td_now_ms();
			if (left > 0) {
				wait_ms(c, left);
				continue;
			}
			retrying = false;
			tick = retry_tick;
		} else {
			long long wall = td_wall_ms(), now = floor_div(wall, 1000);
			struct td_cron_plan plan;
			int rc = td_cron_ticker_peek(&c->ticker, first ? now : now - c->late_s, now,
						     &tick, NULL, &plan);
			first = false;
			if (plan.decided)
				log_plan(c, &plan);
			if (rc < 0) {
				if (!idle_logged && rc == -TD_ENOTFOUND)
					td_logs_info(c->scope, "no tick left to fire (past 'end', "
							       "or a schedule that is over)");
				else if (!idle_logged)
					td_logs_error(c->scope, "cannot compute the next tick");
				idle_logged = true;
				pthread_cond_wait(&c->cond, &c->lock);
				continue;
			}
			if (tick != jitter_tick) {
				jitter_tick = tick;
				jitter = jitter_of(c);
			}
			long long due = tick * 1000 + jitter;
			if (due > wall) {
				wait_ms(c, due - wall);
				continue;
			}
			td_cron_ticker_pop(&c->ticker);
		}
		pthread_mutex_unlock(&c->lock);
		fire(c, tick);
		pthread_mutex_lock(&c->lock);
	}
	/* A settlement that came while stopping is still ours to handle. */
	if (c->in_flight && c->settled) {
		c->in_flight = false;
		if (c->settle_status != TD_SETTLE_BUSY)
			persist(c, c->in_flight_tick);
	}
	c->running = false;
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static void cron_settle(struct td_source *src, void *handle, const struct td_settlement *s)
{
	struct cron_ctx *c = handle;
	char when[TD_TIME_RFC3339_LEN];
	(void)src;
	pthread_mutex_lock(&c->lock);
	td_time_format_rfc3339(c->in_flight_tick, when, sizeof when);
	if (s->status == TD_SETTLE_FAILED)
		td_logs_warn(c->scope,
			     "tick %s: a function failed (%s); the tick counts as fired (cron "
			     "does not deliver a tick again)",
			     when, s->reason ? s->reason : "no reason given");
	if (c->running) {
		if (s->status == TD_SETTLE_BUSY)
			td_logs_debug(c->scope, "tick %s not taken (%s): it fires again in %lld ms",
				      when, s->reason ? s->reason : "busy", s->retry_after_ms);
		c->settled = true;
		c->settle_status = s->status;
		c->retry_after_ms = s->retry_after_ms;
		pthread_cond_signal(&c->cond);
	} else {
		/* The thread has gone (stop): the engine settles what was in flight. */
		c->in_flight = false;
		if (s->status != TD_SETTLE_BUSY)
			persist(c, c->in_flight_tick);
		else
			td_logs_info(c->scope, "tick %s was not taken before the stop (%s)", when,
				     s->reason ? s->reason : "busy");
	}
	pthread_mutex_unlock(&c->lock);
}

/* mkdir -p of path (0750). */
static int make_dirs(const char *path)
{
	char *p = strdup(path);
	if (!p)
		return -1;
	for (char *q = p + 1;; q++) {
		if (*q == '/' || *q == '\0') {
			char saved = *q;
			*q = '\0';
			if (mkdir(p, 0750) < 0 && errno != EEXIST) {
				free(p);
				return -1;
			}
			*q = saved;
			if (!saved)
				break;
		}
	}
	free(p);
	return 0;
}

static void cron_stop(struct td_source *src)
{
	struct cron_ctx *c = td_source_ctx(src);
	if (!c->joinable)
		return;
	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->thread, NULL);
	c->joinable = false;
}

static void cron_destroy(struct td_source *src)
{
	struct cron_ctx *c = td_source_ctx(src);
	cron_stop(src);
	redis_drop(c);
	td_schedule_destroy(c->schedule);
	c->schedule = NULL;
	free(c->mark_path);
	c->mark_path = NULL;
	if (c->sync_made) {
		pthread_cond_destroy(&c->cond);
		pthread_mutex_destroy(&c->lock);
		c->sync_made = false;
	}
}

static int cron_start(struct td_source *src)
{
	struct cron_ctx *c = td_source_ctx(src);
	const struct cron_opts *o = td_source_opts(src);
	const char *state_dir = td_source_global(src)->state_dir;
	char err[512], *dir = NULL;
	long long start = 0, end = TD_TIME_MAX, mark = 0;
	pthread_condattr_t attr;
	int rc = -TD_EINVAL;

	c->src = src;
	c->o = o;
	c->scope = td_source_scope(src);
	c->name = td_source_name(src);
	if (!(c->schedule = td_schedule_parse(o->schedule, o->timezone, err, sizeof err))) {
		td_logs_error(c->scope, "schedule: %s", err);
		goto fail;
	}
	if ((o->start && td_time_parse_rfc3339(o->start, &start, err, sizeof err) < 0) ||
	    (o->end && td_time_parse_rfc3339(o->end, &end, err, sizeof err) < 0)) {
		td_logs_error(c->scope, "%s", err);
		goto fail;
	}
	if (o->lease && td_cron_redis_url_parse(o->lease, &c->url, err, sizeof err) < 0) {
		td_logs_error(c->scope, "lease: %s", err);
		goto fail;
	}
	long long now = floor_div(td_wall_ms(), 1000);
	struct td_cron_window w = {
	    .after = o->start
			 ? start - 1
			 : (td_schedule_kind(c->schedule) == TD_SCHEDULE_RATE ? now : TD_TIME_MIN),
	    .end = end,
	    .anchor = o->start ? start : now,
	};
	c->late_s = TD_CRON_LATE_S + (o->jitter_ms + 999) / 1000;

	/* The mark: <state_dir>/cron/<name>.mark. */
	rc = -TD_ENOMEM;
	if (asprintf(&dir, "%s/cron", state_dir) < 0) {
		dir = NULL;
		goto fail;
	}
	if (make_dirs(dir) < 0) {
		if (o->catchup != TD_CRON_CATCHUP_NONE) {
			td_logs_error(c->scope, "cannot make %s for the last-fired mark: %s", dir,
				      strerror(errno));
			rc = -TD_EIO;
			goto fail;
		}
		td_logs_warn(c->scope, "cannot make %s: %s; no last-fired mark is kept", dir,
			     strerror(errno));
	} else if (asprintf(&c->mark_path, "%s/%s.mark", dir, c->name) < 0) {
		c->mark_path = NULL;
		goto fail;
	}
	if (c->mark_path) {
		int mrc = td_cron_mark_read(c->mark_path, &mark, err, sizeof err);
		if (mrc == 0) {
			c->has_mark = true;
			c->marked = mark;
		} else if (mrc != -TD_ENOTFOUND) {
			td_logs_warn(c->scope, "%s; starting without a mark", err);
		}
	}
	long long cursor = now;
	if (o->catchup != TD_CRON_CATCHUP_NONE && c->has_mark && mark < now)
		cursor = mark;
	td_cron_ticker_init(&c->ticker, c->schedule, &w, o->catchup, o->catchup_max_age_ms / 1000,
			    cursor);

	if (o->lease) {
		char host[256] = "localhost", *abs_dir = realpath(state_dir, NULL);
		c->lease = true;
		c->lease_ok = true;
		if (gethostname(host, sizeof host - 1) < 0)
			snprintf(host, sizeof host, "localhost");
		host[sizeof host - 1] = '\0';
		snprintf(c->instance, sizeof c->instance, "%s:%s", host,
			 abs_dir ? abs_dir : state_dir);
		free(abs_dir);
		c->lease_ttl_ms =
		    td_cron_lease_ttl_ms(o->catchup, o->catchup_max_age_ms, o->jitter_ms);
	}
	if (getrandom(&c->rng, sizeof c->rng, GRND_NONBLOCK) != (ssize_t)sizeof c->rng)
		c->rng = (unsigned long long)td_now_ns() ^ ((unsigned long long)getpid() << 32) ^
			 (unsigned long long)(uintptr_t)c;

	if (pthread_condattr_init(&attr) != 0)
		goto fail;
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (pthread_cond_init(&c->cond, &attr) != 0) {
		pthread_condattr_destroy(&attr);
		goto fail;
	}
	pthread_condattr_destroy(&attr);
	if (pthread_mutex_init(&c->lock, NULL) != 0) {
		pthread_cond_destroy(&c->cond);
		goto fail;
	}
	c->sync_made = true;
	c->running = true;
	/* Ready before the thread runs: its first lease error must not be overwritten. */
	td_source_set_ready(src, true, NULL);
	if ((errno = pthread_create(&c->thread, NULL, cron_thread, c)) != 0) {
		td_logs_error(c->scope, "cannot start its thread: %s", strerror(errno));
		td_source_set_ready(src, false, "its thread could not be started");
		c->running = false;
		rc = -TD_EIO;
		goto fail;
	}
	c->joinable = true;
	free(dir);
	return 0;
fail:
	free(dir);
	cron_destroy(src);
	return rc;
}

const struct td_source_ops td_source_cron = {
    .name = "cron",
    .summary = "Events on a schedule (cron, rate, at), once cluster-wide with a lease",
    .options = cron_options,
    .opts_size = sizeof(struct cron_opts),
    .check = cron_check,
    .ctx_size = sizeof(struct cron_ctx),
    .start = cron_start,
    .stop = cron_stop,
    .settle = cron_settle,
    .destroy = cron_destroy,
};
