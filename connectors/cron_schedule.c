/*
 * Schedule expressions (see cron_schedule.h for the contract and the DST rules).
 *
 * Design. A parsed cron expression is a handful of bit sets (seconds, minutes, hours,
 * days of month, months, weekdays, years) plus a day rule for the forms that are not
 * sets (L, LW, nW, nL, n#k). The search for the next fire instant has two layers:
 *
 *   - next_wall() finds the first matching WALL-CLOCK time in a window [lo, hi) of
 *     "local seconds" (the calendar of the zone, counted as if it were UTC). It walks
 *     the calendar field by field, jumping straight to the next allowed year, month,
 *     day, hour, minute and second, so a scan of 400 years costs a few thousand steps.
 *   - next_instant() walks the zone's segments of constant UTC offset (between two
 *     transitions) from the instant after `after`. In each segment, local = UTC +
 *     offset is a bijection, so it asks next_wall() for the window the segment covers.
 *     DST is decided only at segment boundaries: at the start of a segment entered
 *     by a forward jump, cronie's catch-up (fire at the jump if a wall time of the gap
 *     matches); in a segment entered by a backward jump, the repeated wall times are
 *     cut off for the jobs that run only once. EventBridge semantics fall out: no
 *     catch-up, repeated times cut for every job.
 *
 * Zones come from TZif files (RFC 8536): the 64-bit transitions, collapsed to those
 * that change the offset, and the footer's POSIX TZ rule, which supplies transitions
 * for any year after the last one (computed on demand for a few years around T).
 * Nothing here reads or changes process-wide time zone state, and a schedule is never
 * written after parsing, so every function is thread-safe.
 *
 * Parsers of outside input (expressions, zone names, TZif bytes, RFC 3339 text) check
 * every length and range before use and say what is wrong and where.
 */
#include "cron_schedule.h"

#include <triggerd/errors.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECS_PER_DAY 86400LL
/* 400 Gregorian years (one full cycle of the calendar) plus two days of zone slack. */
#define SEARCH_SPAN (146097LL * SECS_PER_DAY + 2 * SECS_PER_DAY)
/* cronie's classification of a clock jump (cron.c): forward by at most 4 minutes is
 * "woke up late" (everything catches up), forward by 3 hours or more, or backward by
 * more than 181 minutes, is "the clock was set" (no catch-up, nothing suppressed). */
#define JUMP_SMALL_MAX	  (4 * 60)
#define JUMP_FORWARD_HUGE (3 * 3600)
#define JUMP_BACK_MAX	  (181 * 60)

#define AWS_YEAR_MIN 1970
#define AWS_YEAR_MAX 2199

#define TZIF_MAX_BYTES	(1 << 20)
#define TZIF_MAX_TIMES	100000u
#define TZIF_MAX_FOOTER 256
#define UTOFF_MIN	(-89999)
#define UTOFF_MAX	93599

/* ---------------------------------------------------------------------------------- */
/* Messages                                                                            */

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Copies n bytes of user text for a message: printable ASCII only, at most 40 bytes. */
#define QUOTE_CAP 48
static const char *quote(char *buf, const char *p, size_t n)
{
	size_t i, o = 0;

	for (i = 0; i < n && o < 40; i++) {
		unsigned char c = (unsigned char)p[i];
		buf[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (i < n) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

/* ---------------------------------------------------------------------------------- */
/* Calendar: proleptic Gregorian, days counted from 1970-01-01                         */

static long long floor_div(long long a, long long b)
{
	long long q = a / b;

	if (a % b != 0 && ((a < 0) != (b < 0)))
		q--;
	return q;
}

static bool is_leap(long long y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(long long y, int m)
{
	static const int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return m == 2 && is_leap(y) ? 29 : len[m - 1];
}

/* Days from 1970-01-01 to y-m-d. Years are shifted to start in March, so that the
 * leap day is the last day of a year, and counted in 400-year eras of 146097 days. */
static long long days_from_civil(long long y, int m, int d)
{
	long long era, yoe, doy, doe;

	if (m <= 2)
		y--;
	era = floor_div(y, 400);
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(long long z, long long *y, int *m, int *d)
{
	long long era, doe, yoe, doy, mp;

	z += 719468;
	era = floor_div(z, 146097);
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

/* 0 = Sunday; 1970-01-01 was a Thursday. */
static int weekday_of(long long days)
{
	return (int)(days - floor_div(days + 4, 7) * 7 + 4);
}

static long long wall_of(long long y, int m, int d, int h, int mi, int s)
{
	return days_from_civil(y, m, d) * SECS_PER_DAY + h * 3600 + mi * 60 + s;
}

static long long year_of(long long t)
{
	long long y;
	int m, d;

	civil_from_days(floor_div(t, SECS_PER_DAY), &y, &m, &d);
	return y;
}

/* ---------------------------------------------------------------------------------- */
/* Time zones                                                                          */

enum { RULE_JULIAN = 'J', RULE_DAY = 'N', RULE_MONTH = 'M' };

struct rule_date {
	int kind;
	int month, week, wday; /* Mm.w.d */
	int day;	       /* Jn (1-365, no Feb 29) or n (0-365) */
	long time;	       /* seconds after local midnight, -167 h to 167 h */
};

struct tz_rule {
	long std_off, dst_off; /* seconds east of UTC */
	bool has_dst;
	struct rule_date start, end;
};

struct zone {
	char name[TD_SCHEDULE_ZONE_MAX + 1];
	long long *times; /* transitions that change the offset, ascending */
	long *offs;	  /* offset from times[i] on */
	size_t n;
	long init_off; /* before times[0] */
	bool has_rule;
	struct tz_rule rule;
};

/* A stretch of constant offset around an instant. */
struct zseg {
	bool has_start, has_end;
	long long start, end; /* [start, end) */
	long off, prev_off;   /* prev_off: before start (when has_start) */
};

static const char *tzs_name(const char *p)
{
	const char *q;

	if (*p == '<') {
		q = ++p;
		while (*p != '\0' && *p != '>') {
			if (!isalnum((unsigned char)*p) && *p != '+' && *p != '-')
				return NULL;
			p++;
		}
		if (*p != '>' || p - q < 3)
			return NULL;
		return p + 1;
	}
	q = p;
	while (isalpha((unsigned char)*p))
		p++;
	return p - q >= 3 ? p : NULL;
}

static const char *tzs_num(const char *p, int maxdigits, long max, long *out)
{
	long v = 0;
	int nd = 0;

	while (isdigit((unsigned char)*p)) {
		if (++nd > maxdigits)
			return NULL;
		v = v * 10 + (*p++ - '0');
	}
	if (nd == 0 || v > max)
		return NULL;
	*out = v;
	return p;
}

/* [+-]h[h[h]][:mm[:ss]], hours up to maxh. */
static const char *tzs_hms(const char *p, long maxh, long *secs)
{
	long sign = 1, h, mm = 0, ss = 0;

	if (*p == '+' || *p == '-')
		sign = *p++ == '-' ? -1 : 1;
	p = tzs_num(p, 3, maxh, &h);
	if (p != NULL && *p == ':') {
		p = tzs_num(p + 1, 2, 59, &mm);
		if (p != NULL && *p == ':')
			p = tzs_num(p + 1, 2, 59, &ss);
	}
	if (p != NULL)
		*secs = sign * (h * 3600 + mm * 60 + ss);
	return p;
}

static const char *tzs_date(const char *p, struct rule_date *rd)
{
	long a, b, c;

	memset(rd, 0, sizeof(*rd));
	if (*p == 'J') {
		p = tzs_num(p + 1, 3, 365, &a);
		if (p == NULL || a < 1)
			return NULL;
		rd->kind = RULE_JULIAN;
		rd->day = (int)a;
	} else if (*p == 'M') {
		p = tzs_num(p + 1, 2, 12, &a);
		if (p == NULL || a < 1 || *p != '.')
			return NULL;
		p = tzs_num(p + 1, 1, 5, &b);
		if (p == NULL || b < 1 || *p != '.')
			return NULL;
		p = tzs_num(p + 1, 1, 6, &c);
		if (p == NULL)
			return NULL;
		rd->kind = RULE_MONTH;
		rd->month = (int)a;
		rd->week = (int)b;
		rd->wday = (int)c;
	} else {
		p = tzs_num(p, 3, 365, &a);
		if (p == NULL)
			return NULL;
		rd->kind = RULE_DAY;
		rd->day = (int)a;
	}
	rd->time = 2 * 3600;
	if (*p == '/')
		p = tzs_hms(p + 1, 167, &rd->time);
	return p;
}

/* POSIX TZ string as in a TZif footer (RFC 8536 3.3): "EST5EDT,M3.2.0,M11.1.0". */
static int tzs_parse(const char *s, struct tz_rule *r)
{
	const char *p = tzs_name(s);
	long off;

	memset(r, 0, sizeof(*r));
	if (p == NULL || (p = tzs_hms(p, 24, &off)) == NULL)
		return -1;
	r->std_off = -off;
	if (*p == '\0')
		return 0;
	if ((p = tzs_name(p)) == NULL)
		return -1;
	r->has_dst = true;
	r->dst_off = r->std_off + 3600;
	if (*p != ',' && *p != '\0') {
		if ((p = tzs_hms(p, 24, &off)) == NULL)
			return -1;
		r->dst_off = -off;
	}
	/* A DST zone without a rule has implementation-defined dates: not in TZif. */
	if (*p != ',' || (p = tzs_date(p + 1, &r->start)) == NULL || *p != ',')
		return -1;
	if ((p = tzs_date(p + 1, &r->end)) == NULL || *p != '\0')
		return -1;
	return 0;
}

/* Local midnight of the rule's day in year y, as days since the epoch. */
static long long rule_day(const struct rule_date *rd, long long y)
{
	long long first;
	int d, n;

	switch (rd->kind) {
	case RULE_JULIAN:
		return days_from_civil(y, 1, 1) + rd->day - 1 + (is_leap(y) && rd->day >= 60);
	case RULE_DAY:
		return days_from_civil(y, 1, 1) + rd->day;
	default:
		first = days_from_civil(y, rd->month, 1);
		n = days_in_month(y, rd->month);
		d = 1 + (rd->wday - weekday_of(first) + 7) % 7 + 7 * (rd->week - 1);
		while (d > n)
			d -= 7;
		return first + d - 1;
	}
}

struct tz_event {
	long long t;
	long off;  /* offset from t on */
	int order; /* tie-break: year, then start before end */
};

/* Transitions of the rule for years y0..y0+3, sorted. Returns how many (8). */
static int rule_events(const struct tz_rule *r, long long y0, struct tz_event *ev)
{
	int n = 0;

	for (int i = 0; i < 4; i++) {
		long long y = y0 + i;

		ev[n].t = rule_day(&r->start, y) * SECS_PER_DAY + r->start.time - r->std_off;
		ev[n].off = r->dst_off;
		ev[n].order = 2 * i;
		n++;
		ev[n].t = rule_day(&r->end, y) * SECS_PER_DAY + r->end.time - r->dst_off;
		ev[n].off = r->std_off;
		ev[n].order = 2 * i + 1;
		n++;
	}
	for (int i = 1; i < n; i++) {
		struct tz_event e = ev[i];
		int j = i;

		while (j > 0 &&
		       (ev[j - 1].t > e.t || (ev[j - 1].t == e.t && ev[j - 1].order > e.order))) {
			ev[j] = ev[j - 1];
			j--;
		}
		ev[j] = e;
	}
	return n;
}

static void zone_lookup(const struct zone *z, long long t, struct zseg *g)
{
	struct tz_event ev[8];
	long long ch_t[8];
	long ch_off[8], ch_prev[8];
	long long base_t = 0;
	long cur, base_prev = 0;
	bool use_base;
	int nev, nch = 0, k;

	memset(g, 0, sizeof(*g));
	if ((z->n > 0 && t < z->times[z->n - 1]) || !z->has_rule || !z->rule.has_dst) {
		size_t lo = 0, hi = z->n; /* first index with times[i] > t */

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (z->times[mid] <= t)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo == 0) {
			g->off = z->n == 0 && z->has_rule ? z->rule.std_off : z->init_off;
		} else {
			g->has_start = true;
			g->start = z->times[lo - 1];
			g->off = z->offs[lo - 1];
			g->prev_off = lo >= 2 ? z->offs[lo - 2] : z->init_off;
		}
		if (lo < z->n) {
			g->has_end = true;
			g->end = z->times[lo];
		}
		return;
	}

	/* After the last transition: the rule, for the years around t. */
	long long y = year_of(t);
	use_base = z->n > 0 && year_of(z->times[z->n - 1]) >= y - 2;
	nev = rule_events(&z->rule, y - 2, ev);
	if (use_base) {
		base_t = z->times[z->n - 1];
		cur = z->offs[z->n - 1];
		base_prev = z->n >= 2 ? z->offs[z->n - 2] : z->init_off;
	} else {
		cur = ev[0].off == z->rule.dst_off ? z->rule.std_off : z->rule.dst_off;
	}
	const long before_all = cur;
	for (int i = 0; i < nev;) {
		long long at = ev[i].t;
		long off = cur;

		while (i < nev && ev[i].t == at)
			off = ev[i++].off;
		if ((use_base && at <= base_t) || off == cur)
			continue;
		ch_t[nch] = at;
		ch_off[nch] = off;
		ch_prev[nch] = cur;
		nch++;
		cur = off;
	}
	for (k = 0; k < nch && ch_t[k] <= t; k++)
		;
	if (k > 0) {
		g->has_start = true;
		g->start = ch_t[k - 1];
		g->off = ch_off[k - 1];
		g->prev_off = ch_prev[k - 1];
	} else if (use_base) {
		g->has_start = true;
		g->start = base_t;
		g->off = before_all;
		g->prev_off = base_prev;
	} else {
		g->off = before_all;
	}
	if (k < nch) {
		g->has_end = true;
		g->end = ch_t[k];
	}
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static long long be64(const unsigned char *p)
{
	uint64_t v = (uint64_t)be32(p) << 32 | be32(p + 4);
	return (long long)v;
}

struct tzif_header {
	int version;
	uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static int tzif_header(const unsigned char *b, size_t len, size_t off, struct tzif_header *h,
		       const char **why)
{
	if (len < off || len - off < 44) {
		*why = "truncated header";
		return -1;
	}
	b += off;
	if (memcmp(b, "TZif", 4) != 0) {
		*why = "no TZif magic";
		return -1;
	}
	h->version = b[4] == 0 ? 1 : b[4] - '0';
	if (h->version < 1 || h->version > 9) {
		*why = "unknown version";
		return -1;
	}
	h->isutcnt = be32(b + 20);
	h->isstdcnt = be32(b + 24);
	h->leapcnt = be32(b + 28);
	h->timecnt = be32(b + 32);
	h->typecnt = be32(b + 36);
	h->charcnt = be32(b + 40);
	if (h->typecnt == 0 || h->typecnt > 256 || h->timecnt > TZIF_MAX_TIMES ||
	    h->charcnt > 65536 || (h->isutcnt != 0 && h->isutcnt != h->typecnt) ||
	    (h->isstdcnt != 0 && h->isstdcnt != h->typecnt) || h->leapcnt > 65536) {
		*why = "bad counts in header";
		return -1;
	}
	if (h->leapcnt != 0) {
		*why = "leap-second zones (right/...) are not supported";
		return -1;
	}
	return 0;
}

static uint64_t tzif_block_size(const struct tzif_header *h, int tsize)
{
	return (uint64_t)h->timecnt * (uint64_t)(tsize + 1) + (uint64_t)h->typecnt * 6 +
	       h->charcnt + (uint64_t)h->leapcnt * (uint64_t)(tsize + 4) + h->isstdcnt + h->isutcnt;
}

/* Parses TZif data into z (times/offs allocated). Returns 0 or -1 with *why. */
static int tzif_parse(struct zone *z, const unsigned char *b, size_t len, const char **why)
{
	struct tzif_header h;
	size_t off = 0;
	int tsize = 4;
	uint64_t need;
	long prev;

	if (tzif_header(b, len, 0, &h, why) < 0)
		return -1;
	if (h.version >= 2) {
		need = tzif_block_size(&h, 4);
		if (need > len - 44) {
			*why = "truncated version 1 data";
			return -1;
		}
		off = 44 + (size_t)need;
		if (tzif_header(b, len, off, &h, why) < 0)
			return -1;
		tsize = 8;
	}
	off += 44;
	need = tzif_block_size(&h, tsize);
	if (need > len - off) {
		*why = "truncated data";
		return -1;
	}

	const unsigned char *tt = b + off;
	const unsigned char *idx = tt + (size_t)h.timecnt * (size_t)tsize;
	const unsigned char *types = idx + h.timecnt;
	for (uint32_t i = 0; i < h.typecnt; i++) {
		const unsigned char *ty = types + 6 * (size_t)i;
		long utoff = (long)(int32_t)be32(ty);

		if (utoff < UTOFF_MIN || utoff > UTOFF_MAX) {
			*why = "UTC offset out of range";
			return -1;
		}
		if (ty[4] > 1 || ty[5] >= h.charcnt) {
			*why = "bad local time type";
			return -1;
		}
	}
	z->init_off = (long)(int32_t)be32(types);
	if (h.timecnt > 0) {
		z->times = calloc(h.timecnt, sizeof(*z->times));
		z->offs = calloc(h.timecnt, sizeof(*z->offs));
		if (z->times == NULL || z->offs == NULL) {
			*why = "out of memory";
			return -1;
		}
	}
	prev = z->init_off;
	for (uint32_t i = 0; i < h.timecnt; i++) {
		long long t = tsize == 8 ? be64(tt + 8 * (size_t)i)
					 : (long long)(int32_t)be32(tt + 4 * (size_t)i);
		long o;

		if (i > 0 &&
		    t <= (tsize == 8 ? be64(tt + 8 * (size_t)(i - 1))
				     : (long long)(int32_t)be32(tt + 4 * (size_t)(i - 1)))) {
			*why = "transition times not in ascending order";
			return -1;
		}
		if (idx[i] >= h.typecnt) {
			*why = "transition names a missing type";
			return -1;
		}
		o = (long)(int32_t)be32(types + 6 * (size_t)idx[i]);
		if (o == prev)
			continue;
		z->times[z->n] = t;
		z->offs[z->n] = o;
		z->n++;
		prev = o;
	}
	off += (size_t)need;

	if (h.version >= 2) {
		const unsigned char *nl;
		char footer[TZIF_MAX_FOOTER + 1];
		size_t flen;

		if (off >= len || b[off] != '\n') {
			*why = "missing footer";
			return -1;
		}
		off++;
		nl = memchr(b + off, '\n', len - off);
		if (nl == NULL) {
			*why = "unterminated footer";
			return -1;
		}
		flen = (size_t)(nl - (b + off));
		if (flen > TZIF_MAX_FOOTER || memchr(b + off, '\0', flen) != NULL) {
			*why = "bad footer";
			return -1;
		}
		memcpy(footer, b + off, flen);
		footer[flen] = '\0';
		if (flen > 0) {
			if (tzs_parse(footer, &z->rule) < 0 || z->rule.std_off < UTOFF_MIN ||
			    z->rule.std_off > UTOFF_MAX || z->rule.dst_off < UTOFF_MIN ||
			    z->rule.dst_off > UTOFF_MAX) {
				*why = "unsupported TZ rule in footer";
				return -1;
			}
			z->has_rule = true;
		}
	}
	return 0;
}

static bool zone_name_ok(const char *name)
{
	const char *comp = name;
	size_t len = strlen(name);

	if (len == 0 || len > TD_SCHEDULE_ZONE_MAX)
		return false;
	for (const char *p = name;; p++) {
		if (*p == '/' || *p == '\0') {
			size_t n = (size_t)(p - comp);
			if (n == 0 || (n == 1 && comp[0] == '.') ||
			    (n == 2 && comp[0] == '.' && comp[1] == '.'))
				return false;
			if (*p == '\0')
				return true;
			comp = p + 1;
		} else if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '+' &&
			   *p != '.') {
			return false;
		}
	}
}

static int zone_from_tzif(struct zone *z, const char *label, const void *data, size_t len,
			  char *err, size_t errlen)
{
	const char *why = NULL;
	char q[QUOTE_CAP];

	if (tzif_parse(z, data, len, &why) < 0) {
		seterr(err, errlen, "timezone: \"%s\" is not usable TZif data: %s",
		       quote(q, label, strlen(label)), why);
		return -1;
	}
	return 0;
}

static int zone_load(struct zone *z, const char *name, char *err, size_t errlen)
{
	char q[QUOTE_CAP];
	char path[sizeof(TD_ZONEINFO_DIR) + TD_SCHEDULE_ZONE_MAX + 2];
	unsigned char *buf = NULL;
	struct stat st;
	size_t got = 0;
	int fd = -1, rc = -1;

	if (name == NULL || name[0] == '\0' || strcmp(name, "UTC") == 0 ||
	    strcmp(name, "Etc/UTC") == 0) {
		snprintf(z->name, sizeof(z->name), "%s", name != NULL && name[0] ? name : "UTC");
		return 0;
	}
	if (!zone_name_ok(name)) {
		seterr(err, errlen,
		       "timezone: invalid zone name \"%s\" (expected an IANA name such as "
		       "Europe/Paris)",
		       quote(q, name, strlen(name)));
		return -1;
	}
	snprintf(z->name, sizeof(z->name), "%s", name);
	snprintf(path, sizeof(path), "%s/%s", TD_ZONEINFO_DIR, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			seterr(err, errlen, "timezone: unknown zone \"%s\" (no file %s)", z->name,
			       path);
		else
			seterr(err, errlen, "timezone: cannot open %s: %s", path, strerror(errno));
		goto fail;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > TZIF_MAX_BYTES) {
		seterr(err, errlen, "timezone: unknown zone \"%s\" (%s is not a zone file)",
		       z->name, path);
		goto fail;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		seterr(err, errlen, "timezone: out of memory");
		goto fail;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			seterr(err, errlen, "timezone: cannot read %s: %s", path,
			       r < 0 ? strerror(errno) : "short read");
			goto fail;
		}
		got += (size_t)r;
	}
	if (zone_from_tzif(z, name, buf, got, err, errlen) < 0)
		goto fail;
	rc = 0;
fail:
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* ---------------------------------------------------------------------------------- */
/* Expressions                                                                         */

enum day_rule {
	DAY_SETS,	  /* doms and dows, AND or OR */
	DAY_LAST,	  /* L */
	DAY_LAST_WEEKDAY, /* LW */
	DAY_NEAR_WEEKDAY, /* nW: day_arg = n */
	DAY_LAST_DOW,	  /* nL: day_arg = weekday */
	DAY_NTH_DOW,	  /* n#k: day_arg = weekday, day_arg2 = k */
};

struct td_schedule {
	enum td_schedule_kind kind;
	uint64_t secs, mins, hours; /* bit = value */
	uint64_t doms;		    /* bit d = day d (1-31) */
	uint64_t months;	    /* bit m = month m (1-12) */
	unsigned dows;		    /* bit w = weekday w (0 = Sunday) */
	bool dom_or_dow;	    /* Vixie: both fields restricted */
	enum day_rule day_rule;
	int day_arg, day_arg2;
	bool all_years;
	uint64_t years[4]; /* bit y - 1970 */
	bool wildcard;	   /* cronie: minute or hour field starts with '*' */
	bool never;	   /* no day ever matches */
	long long period;  /* rate() */
	long long at_wall; /* at(), local seconds */
	struct zone zone;
};

struct field_def {
	const char *name;
	int lo, hi;
	const char *const *names; /* 3-letter names, value = names_base + index */
	int names_base;
	bool wrap; /* cron(): a range may wrap around (FRI-MON) */
	bool step; /* '/' allowed */
};

struct pctx {
	char *err;
	size_t errlen;
	bool aws;
};

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL",
					  "AUG", "SEP", "OCT", "NOV", "DEC", NULL};
static const char *const dow_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL};

static const struct field_def std_fields[6] = {
    {"second", 0, 59, NULL, 0, false, true},	   {"minute", 0, 59, NULL, 0, false, true},
    {"hour", 0, 23, NULL, 0, false, true},	   {"day-of-month", 1, 31, NULL, 0, false, true},
    {"month", 1, 12, month_names, 1, false, true}, {"day-of-week", 0, 7, dow_names, 0, false, true},
};

static const struct field_def aws_fields[6] = {
    {"minute", 0, 59, NULL, 0, true, true},
    {"hour", 0, 23, NULL, 0, true, true},
    {"day-of-month", 1, 31, NULL, 0, true, true},
    {"month", 1, 12, month_names, 1, true, true},
    {"day-of-week", 1, 7, dow_names, 1, true, false},
    {"year", AWS_YEAR_MIN, AWS_YEAR_MAX, NULL, 0, false, true},
};

static void ferr(const struct pctx *pc, const struct field_def *fd, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void ferr(const struct pctx *pc, const struct field_def *fd, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (pc->err == NULL || pc->errlen == 0)
		return;
	n = snprintf(pc->err, pc->errlen, "%s%s: ", pc->aws ? "cron() " : "", fd->name);
	if (n < 0 || (size_t)n >= pc->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(pc->err + n, pc->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* A character that standard cron does not have but cron() does. */
static int std_foreign(const struct pctx *pc, const struct field_def *fd, char c)
{
	if (c == '?' || c == '#' || c == 'L' || c == 'l' || c == 'W' || c == 'w') {
		ferr(pc, fd,
		     "'%c' is only supported in cron(...) expressions (EventBridge syntax); "
		     "standard cron has numbers, names, '*', ',', '-' and '/'",
		     c == 'l' || c == 'w' ? c - 32 : c);
		return -1;
	}
	return 0;
}

static int unexpected(const struct pctx *pc, const struct field_def *fd, const char *p,
		      const char *el, const char *end)
{
	char q[QUOTE_CAP];

	if (!pc->aws && std_foreign(pc, fd, *p) < 0)
		return -1;
	if ((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f)
		ferr(pc, fd, "unexpected '%c' in \"%s\"", *p, quote(q, el, (size_t)(end - el)));
	else
		ferr(pc, fd, "unexpected byte 0x%02x in \"%s\"", (unsigned char)*p,
		     quote(q, el, (size_t)(end - el)));
	return -1;
}

/* A number or (where the field has names) a 3-letter name. */
static int parse_value(const struct pctx *pc, const struct field_def *fd, const char **pp,
		       const char *end, const char *el, int *out)
{
	const char *p = *pp;
	char q[QUOTE_CAP];

	if (p < end && isdigit((unsigned char)*p)) {
		long v = 0;
		int nd = 0;

		while (p < end && isdigit((unsigned char)*p)) {
			if (++nd > 9) {
				ferr(pc, fd, "number in \"%s\" is too long",
				     quote(q, el, (size_t)(end - el)));
				return -1;
			}
			v = v * 10 + (*p++ - '0');
		}
		if (v < fd->lo || v > fd->hi) {
			if (fd->names != NULL)
				ferr(pc, fd, "%ld is out of range (%d-%d or %s-%s)", v, fd->lo,
				     fd->hi, fd->names[0],
				     fd->names[fd->names == dow_names ? 6 : 11]);
			else
				ferr(pc, fd, "%ld is out of range (%d-%d)", v, fd->lo, fd->hi);
			return -1;
		}
		*out = (int)v;
	} else if (p < end && isalpha((unsigned char)*p)) {
		const char *w = p;

		while (p < end && isalpha((unsigned char)*p))
			p++;
		if (fd->names == NULL) {
			if (!pc->aws && p - w <= 2 && std_foreign(pc, fd, *w) < 0)
				return -1;
			ferr(pc, fd, "\"%s\" is not a number", quote(q, w, (size_t)(p - w)));
			return -1;
		}
		for (int i = 0; fd->names[i] != NULL; i++) {
			if (p - w == 3 && strncasecmp(w, fd->names[i], 3) == 0) {
				*out = fd->names_base + i;
				*pp = p;
				return 0;
			}
		}
		if (!pc->aws && p - w <= 2 && std_foreign(pc, fd, *w) < 0)
			return -1;
		ferr(pc, fd, "unknown name \"%s\"", quote(q, w, (size_t)(p - w)));
		return -1;
	} else if (p >= end || *p == ',' || *p == '-' || *p == '/') {
		ferr(pc, fd, "missing value in \"%s\"", quote(q, el, (size_t)(end - el)));
		return -1;
	} else {
		return unexpected(pc, fd, p, el, end);
	}
	*pp = p;
	return 0;
}

static void bits_set(uint64_t *bits, int idx)
{
	bits[idx / 64] |= 1ull << (idx % 64);
}

/* One element of a list: '*', v, a-b, each optionally /step. Sets bits[value - lo]. */
static int parse_element(const struct pctx *pc, const struct field_def *fd, const char *el,
			 const char *end, uint64_t *bits)
{
	const char *p = el;
	char q[QUOTE_CAP];
	int a, b, step = 1, span = fd->hi - fd->lo + 1;
	bool range = false;

	if (p < end && *p == '*') {
		a = fd->lo;
		b = fd->hi;
		p++;
	} else {
		if (parse_value(pc, fd, &p, end, el, &a) < 0)
			return -1;
		b = a;
		if (p < end && *p == '-') {
			p++;
			if (parse_value(pc, fd, &p, end, el, &b) < 0)
				return -1;
			range = true;
			if (b < a && !fd->wrap) {
				ferr(pc, fd, "range \"%s\" is backwards (start after end)",
				     quote(q, el, (size_t)(end - el)));
				return -1;
			}
		}
	}
	if (p < end && *p == '/') {
		long v = 0;
		int nd = 0;

		if (!fd->step) {
			ferr(pc, fd, "'/' is not allowed in this field");
			return -1;
		}
		p++;
		while (p < end && isdigit((unsigned char)*p)) {
			if (++nd > 9) {
				ferr(pc, fd, "step in \"%s\" is too long",
				     quote(q, el, (size_t)(end - el)));
				return -1;
			}
			v = v * 10 + (*p++ - '0');
		}
		if (nd == 0) {
			if (p < end)
				return unexpected(pc, fd, p, el, end);
			ferr(pc, fd, "missing step after '/' in \"%s\"",
			     quote(q, el, (size_t)(end - el)));
			return -1;
		}
		if (v < 1 || v > span) {
			ferr(pc, fd, "step %ld is out of range (1-%d)", v, span);
			return -1;
		}
		step = (int)v;
		if (!range && el[0] != '*')
			b = fd->hi; /* 10/5 = 10-max/5 */
	}
	if (p < end)
		return unexpected(pc, fd, p, el, end);
	if (b < a)
		b += span; /* wrapping range: count on past hi, fold back below */
	for (int v = a; v <= b; v += step)
		bits_set(bits, (v > fd->hi ? v - span : v) - fd->lo);
	return 0;
}

/* A comma-separated list [p, end) into bits (cleared first). */
static int parse_list(const struct pctx *pc, const struct field_def *fd, const char *p,
		      const char *end, uint64_t *bits)
{
	const char *field = p;
	char q[QUOTE_CAP];

	memset(bits, 0, 4 * sizeof(*bits));
	for (;;) {
		const char *c = memchr(p, ',', (size_t)(end - p));
		const char *e = c != NULL ? c : end;

		if (e == p) {
			ferr(pc, fd, "empty element in list \"%s\"",
			     quote(q, field, (size_t)(end - field)));
			return -1;
		}
		if (parse_element(pc, fd, p, e, bits) < 0)
			return -1;
		if (c == NULL)
			return 0;
		p = c + 1;
		if (p == end) {
			ferr(pc, fd, "list ends with ','");
			return -1;
		}
	}
}

struct span {
	const char *p;
	size_t n;
};

/* Splits [p, end) at blanks into at most max fields; returns the count (may be > max). */
static int split_fields(const char *p, const char *end, struct span *f, int max)
{
	int n = 0;

	while (p < end) {
		const char *s;

		while (p < end && is_blank(*p))
			p++;
		if (p == end)
			break;
		s = p;
		while (p < end && !is_blank(*p))
			p++;
		if (n < max) {
			f[n].p = s;
			f[n].n = (size_t)(p - s);
		}
		n++;
	}
	return n;
}

static bool span_is(const struct span *f, const char *text)
{
	return f->n == strlen(text) && strncasecmp(f->p, text, f->n) == 0;
}

/* Can any day match at all, in some year? (Every valid month-day falls on every
 * weekday within 400 years, Feb 29 included.) */
static bool days_possible(const struct td_schedule *s)
{
	static const int maxlen[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	for (int m = 1; m <= 12; m++) {
		uint64_t valid = ((1ull << maxlen[m]) - 1) << 1;

		if (!(s->months >> m & 1))
			continue;
		switch (s->day_rule) {
		case DAY_SETS:
			if (s->dom_or_dow || (s->doms & valid))
				return true;
			break;
		case DAY_NEAR_WEEKDAY:
			if (s->day_arg <= maxlen[m])
				return true;
			break;
		default:
			return true;
		}
	}
	return false;
}

static int parse_std(struct td_schedule *s, const struct pctx *pc, const char *p, const char *end)
{
	struct span f[6];
	uint64_t bits[4];
	const struct field_def *fd = std_fields;
	int n = split_fields(p, end, f, 6), first;

	if (n != 5 && n != 6) {
		seterr(pc->err, pc->errlen,
		       "expected 5 fields (minute hour day-of-month month day-of-week) or 6 "
		       "(second first), found %d",
		       n);
		return -1;
	}
	s->kind = n == 6 ? TD_SCHEDULE_CRON6 : TD_SCHEDULE_CRON;
	first = n == 6 ? 0 : 1;
	s->secs = 1; /* second 0 unless given */
	for (int i = 0; i < n; i++) {
		const struct field_def *d = &fd[first + i];
		const char *fp = f[i].p, *fe = f[i].p + f[i].n;

		if (parse_list(pc, d, fp, fe, bits) < 0)
			return -1;
		switch (first + i) {
		case 0:
			s->secs = bits[0];
			break;
		case 1:
			s->mins = bits[0];
			s->wildcard |= fp[0] == '*';
			break;
		case 2:
			s->hours = bits[0];
			s->wildcard |= fp[0] == '*';
			break;
		case 3:
			s->doms = bits[0] << 1;
			break;
		case 4:
			s->months = bits[0] << 1;
			break;
		case 5:
			s->dows = (unsigned)(bits[0] & 0x7f);
			if (bits[0] >> 7 & 1)
				s->dows |= 1; /* 7 = Sunday */
			break;
		}
	}
	/* Vixie: OR when neither day field starts with '*'. */
	s->dom_or_dow = f[n - 3].p[0] != '*' && f[n - 1].p[0] != '*';
	s->day_rule = DAY_SETS;
	s->all_years = true;
	return 0;
}

/* cron() day-of-month: '?', 'L', 'LW', 'nW' or a list. Returns 1 for '?'. */
static int parse_aws_dom(struct td_schedule *s, const struct pctx *pc, const struct span *f)
{
	const struct field_def *fd = &aws_fields[2];
	const char *p = f->p, *end = f->p + f->n;
	char q[QUOTE_CAP];
	uint64_t bits[4];

	if (span_is(f, "?"))
		return 1;
	if (span_is(f, "L")) {
		s->day_rule = DAY_LAST;
		return 0;
	}
	if (span_is(f, "LW")) {
		s->day_rule = DAY_LAST_WEEKDAY;
		return 0;
	}
	if (f->n >= 2 && (end[-1] == 'W' || end[-1] == 'w')) {
		const char *e = end - 1;
		int v;

		if (memchr(p, ',', f->n) || memchr(p, '-', f->n) || memchr(p, '/', f->n) ||
		    !isdigit((unsigned char)*p)) {
			ferr(pc, fd, "'W' takes a single day (1W-31W) or LW, got \"%s\"",
			     quote(q, p, f->n));
			return -1;
		}
		if (parse_value(pc, fd, &p, e, p, &v) < 0)
			return -1;
		if (p != e)
			return unexpected(pc, fd, p, f->p, end);
		s->day_rule = DAY_NEAR_WEEKDAY;
		s->day_arg = v;
		return 0;
	}
	if (memchr(p, 'L', f->n) || memchr(p, 'l', f->n) || memchr(p, 'W', f->n) ||
	    memchr(p, 'w', f->n) || memchr(p, '?', f->n)) {
		ferr(pc, fd, "'L', 'LW', 'nW' and '?' must stand alone, got \"%s\"",
		     quote(q, p, f->n));
		return -1;
	}
	if (parse_list(pc, fd, p, end, bits) < 0)
		return -1;
	s->day_rule = DAY_SETS;
	s->doms = bits[0] << 1;
	return 0;
}

/* cron() day-of-week: '?', 'L', 'nL', 'n#k' or a list. Returns 1 for '?'. */
static int parse_aws_dow(struct td_schedule *s, const struct pctx *pc, const struct span *f)
{
	const struct field_def *fd = &aws_fields[4];
	const char *p = f->p, *end = f->p + f->n;
	const char *hash = memchr(p, '#', f->n);
	char q[QUOTE_CAP];
	uint64_t bits[4];
	int v;

	if (span_is(f, "?"))
		return 1;
	if (span_is(f, "L")) { /* the last day of the week: Saturday */
		s->day_rule = DAY_SETS;
		s->dows = 1u << 6;
		return 0;
	}
	if (hash != NULL) {
		long k = 0;
		const char *r = hash + 1;

		if (memchr(p, ',', f->n) || memchr(p, '-', f->n)) {
			ferr(pc, fd, "'#' allows only one expression in the field, got \"%s\"",
			     quote(q, p, f->n));
			return -1;
		}
		if (parse_value(pc, fd, &p, hash, f->p, &v) < 0)
			return -1;
		if (p != hash)
			return unexpected(pc, fd, p, f->p, end);
		if (r == end || !isdigit((unsigned char)*r) || end - r > 1 || (k = *r - '0') < 1 ||
		    k > 5) {
			ferr(pc, fd,
			     "'#' needs a week 1-5 after it (3#2 = second Tuesday), got \"%s\"",
			     quote(q, f->p, f->n));
			return -1;
		}
		s->day_rule = DAY_NTH_DOW;
		s->day_arg = v - 1;
		s->day_arg2 = (int)k;
		return 0;
	}
	if (f->n >= 2 && (end[-1] == 'L' || end[-1] == 'l')) {
		const char *e = end - 1;

		if (memchr(p, ',', f->n) || memchr(p, '-', f->n) || memchr(p, '/', f->n)) {
			ferr(pc, fd, "'L' takes a single weekday (6L = last Friday), got \"%s\"",
			     quote(q, p, f->n));
			return -1;
		}
		if (parse_value(pc, fd, &p, e, f->p, &v) < 0)
			return -1;
		if (p != e)
			return unexpected(pc, fd, p, f->p, end);
		s->day_rule = DAY_LAST_DOW;
		s->day_arg = v - 1;
		return 0;
	}
	if (memchr(p, '?', f->n)) {
		ferr(pc, fd, "'?' must stand alone, got \"%s\"", quote(q, p, f->n));
		return -1;
	}
	if (parse_list(pc, fd, p, end, bits) < 0)
		return -1;
	s->day_rule = DAY_SETS;
	s->dows = (unsigned)(bits[0] & 0x7f); /* bit v-1 = weekday v-1 (1 = SUN) */
	return 0;
}

static int parse_aws(struct td_schedule *s, const struct pctx *pc, const char *p, const char *end)
{
	struct span f[6];
	uint64_t bits[4];
	int n, dom_q, dow_q;

	if (end == p || end[-1] != ')') {
		seterr(pc->err, pc->errlen, "cron(): missing ')' at the end");
		return -1;
	}
	end--;
	if (memchr(p, '(', (size_t)(end - p)) || memchr(p, ')', (size_t)(end - p))) {
		seterr(pc->err, pc->errlen, "cron(): unexpected parenthesis inside cron(...)");
		return -1;
	}
	n = split_fields(p, end, f, 6);
	if (n != 6) {
		seterr(pc->err, pc->errlen,
		       "cron(): expected 6 fields (minute hour day-of-month month day-of-week "
		       "year), found %d",
		       n);
		return -1;
	}
	s->kind = TD_SCHEDULE_AWS_CRON;
	s->secs = 1;
	for (int i = 0; i < 6; i++) {
		if (i == 2 || i == 4)
			continue;
		if (memchr(f[i].p, '?', f[i].n)) {
			ferr(pc, &aws_fields[i],
			     "'?' is only allowed in day-of-month or day-of-week");
			return -1;
		}
		if (parse_list(pc, &aws_fields[i], f[i].p, f[i].p + f[i].n, bits) < 0)
			return -1;
		switch (i) {
		case 0:
			s->mins = bits[0];
			break;
		case 1:
			s->hours = bits[0];
			break;
		case 3:
			s->months = bits[0] << 1;
			break;
		case 5:
			memcpy(s->years, bits, sizeof(s->years)); /* '*' = 1970-2199 */
			break;
		}
	}
	s->doms = ((1ull << 31) - 1) << 1;
	s->dows = 0x7f;
	dom_q = parse_aws_dom(s, pc, &f[2]);
	if (dom_q < 0)
		return -1;
	if (dom_q == 1) {
		dow_q = parse_aws_dow(s, pc, &f[4]);
		if (dow_q < 0)
			return -1;
		if (dow_q == 1) {
			seterr(pc->err, pc->errlen,
			       "cron(): day-of-month and day-of-week cannot both be ?; give one of "
			       "them a value or *");
			return -1;
		}
		return 0;
	}
	if (span_is(&f[4], "?")) {
		s->dows = 0x7f;
		return 0;
	}
	seterr(pc->err, pc->errlen,
	       "cron(): day-of-month and day-of-week cannot both be specified; use ? in one of "
	       "them");
	return -1;
}

static int parse_rate(struct td_schedule *s, const struct pctx *pc, const char *p, const char *end)
{
	static const struct {
		const char *one, *many;
		long long secs;
	} units[] = {{"minute", "minutes", 60}, {"hour", "hours", 3600}, {"day", "days", 86400}};
	char q[QUOTE_CAP];
	const char *v, *u;
	long long val = 0;
	int nd = 0;

	if (end == p || end[-1] != ')') {
		seterr(pc->err, pc->errlen, "rate: missing ')' at the end");
		return -1;
	}
	end--;
	while (p < end && is_blank(*p))
		p++;
	while (end > p && is_blank(end[-1]))
		end--;
	v = p;
	while (p < end && !is_blank(*p))
		p++;
	if (p == v || p == end) {
		seterr(pc->err, pc->errlen,
		       "rate: expected rate(value unit), e.g. rate(5 minutes), got rate(%s)",
		       quote(q, v, (size_t)(end - v)));
		return -1;
	}
	for (const char *c = v; c < p; c++) {
		if (!isdigit((unsigned char)*c)) {
			seterr(pc->err, pc->errlen,
			       "rate: value must be a positive whole number, got \"%s\"",
			       quote(q, v, (size_t)(p - v)));
			return -1;
		}
		if (++nd > 7 || (val = val * 10 + (*c - '0')) > 1000000) {
			seterr(pc->err, pc->errlen, "rate: value \"%s\" is too large (max 1000000)",
			       quote(q, v, (size_t)(p - v)));
			return -1;
		}
	}
	if (val == 0) {
		seterr(pc->err, pc->errlen, "rate: value must be at least 1");
		return -1;
	}
	while (p < end && is_blank(*p))
		p++;
	u = p;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		size_t n1 = strlen(units[i].one), n2 = strlen(units[i].many);
		size_t n = (size_t)(end - u);

		if (n == n1 && memcmp(u, units[i].one, n) == 0) {
			if (val != 1) {
				seterr(pc->err, pc->errlen,
				       "rate: value %lld takes the plural unit: rate(%lld %s)", val,
				       val, units[i].many);
				return -1;
			}
		} else if (n == n2 && memcmp(u, units[i].many, n) == 0) {
			if (val == 1) {
				seterr(pc->err, pc->errlen,
				       "rate: value 1 takes the singular unit: rate(1 %s)",
				       units[i].one);
				return -1;
			}
		} else {
			continue;
		}
		s->kind = TD_SCHEDULE_RATE;
		s->period = val * units[i].secs;
		return 0;
	}
	seterr(pc->err, pc->errlen, "rate: unit must be minute(s), hour(s) or day(s), got \"%s\"",
	       quote(q, u, (size_t)(end - u)));
	return -1;
}

static int digits(const char *p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)p[i]))
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	*out = v;
	return 0;
}

static int parse_at(struct td_schedule *s, const struct pctx *pc, const char *p, const char *end)
{
	char q[QUOTE_CAP];
	int y, mo, d, h, mi, se;

	if (end == p || end[-1] != ')') {
		seterr(pc->err, pc->errlen, "at: missing ')' at the end");
		return -1;
	}
	end--;
	if (end - p != 19 || p[4] != '-' || p[7] != '-' || p[10] != 'T' || p[13] != ':' ||
	    p[16] != ':' || digits(p, 4, &y) < 0 || digits(p + 5, 2, &mo) < 0 ||
	    digits(p + 8, 2, &d) < 0 || digits(p + 11, 2, &h) < 0 || digits(p + 14, 2, &mi) < 0 ||
	    digits(p + 17, 2, &se) < 0) {
		seterr(pc->err, pc->errlen, "at: expected at(yyyy-mm-ddThh:mm:ss), got at(%s)",
		       quote(q, p, (size_t)(end - p)));
		return -1;
	}
	if (y < 1) {
		seterr(pc->err, pc->errlen, "at: year 0000 is out of range (0001-9999)");
		return -1;
	}
	if (mo < 1 || mo > 12) {
		seterr(pc->err, pc->errlen, "at: month %02d is out of range (01-12)", mo);
		return -1;
	}
	if (d < 1 || d > days_in_month(y, mo)) {
		seterr(pc->err, pc->errlen, "at: day %02d is out of range for %04d-%02d (01-%02d)",
		       d, y, mo, days_in_month(y, mo));
		return -1;
	}
	if (h > 23 || mi > 59 || se > 59) {
		seterr(pc->err, pc->errlen,
		       "at: time %02d:%02d:%02d is out of range (00:00:00-23:59:59)", h, mi, se);
		return -1;
	}
	s->kind = TD_SCHEDULE_AT;
	s->at_wall = wall_of(y, mo, d, h, mi, se);
	return 0;
}

static int parse_macro(struct td_schedule *s, const struct pctx *pc, const char *p, const char *end)
{
	static const struct {
		const char *name, *expansion;
	} macros[] = {
	    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
	    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},	  {"@midnight", "0 0 * * *"},
	    {"@hourly", "0 * * * *"},
	};
	size_t n = (size_t)(end - p);
	char q[QUOTE_CAP];

	for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++) {
		if (n == strlen(macros[i].name) && memcmp(p, macros[i].name, n) == 0) {
			const char *x = macros[i].expansion;
			return parse_std(s, pc, x, x + strlen(x));
		}
	}
	if (n >= 7 && memcmp(p, "@reboot", 7) == 0)
		seterr(pc->err, pc->errlen, "@reboot is not a schedule: it has no fire instants");
	else if (n >= 6 && memcmp(p, "@every", 6) == 0)
		seterr(pc->err, pc->errlen, "@every is not supported: use rate(N minutes)");
	else
		seterr(pc->err, pc->errlen,
		       "unknown macro \"%s\": use @yearly, @annually, @monthly, @weekly, @daily, "
		       "@midnight or @hourly",
		       quote(q, p, n));
	return -1;
}

static int parse_expr(struct td_schedule *s, const struct pctx *pc_in, const char *expr)
{
	struct pctx pc = *pc_in;
	const char *p = expr, *end;
	size_t len = strlen(expr);
	char q[QUOTE_CAP];

	end = expr + len;
	while (p < end && isspace((unsigned char)*p))
		p++;
	while (end > p && isspace((unsigned char)end[-1]))
		end--;
	if (p == end) {
		seterr(pc.err, pc.errlen, "empty expression");
		return -1;
	}
	if (len > TD_SCHEDULE_EXPR_MAX) {
		seterr(pc.err, pc.errlen, "expression is too long (%zu bytes, max %d)", len,
		       TD_SCHEDULE_EXPR_MAX);
		return -1;
	}
	if (*p == '@')
		return parse_macro(s, &pc, p, end);
	if ((size_t)(end - p) >= 5 && memcmp(p, "cron(", 5) == 0) {
		pc.aws = true;
		return parse_aws(s, &pc, p + 5, end);
	}
	if ((size_t)(end - p) >= 5 && memcmp(p, "rate(", 5) == 0)
		return parse_rate(s, &pc, p + 5, end);
	if ((size_t)(end - p) >= 3 && memcmp(p, "at(", 3) == 0)
		return parse_at(s, &pc, p + 3, end);
	if (memchr(p, '(', (size_t)(end - p)) != NULL) {
		const char *paren = memchr(p, '(', (size_t)(end - p));
		seterr(pc.err, pc.errlen,
		       "unknown expression \"%s(...)\": expected cron(...), rate(...), at(...) or "
		       "5 or 6 cron fields",
		       quote(q, p, (size_t)(paren - p)));
		return -1;
	}
	return parse_std(s, &pc, p, end);
}

static struct td_schedule *schedule_new(const char *expr, char *err, size_t errlen)
{
	struct td_schedule *s;
	struct pctx pc = {err, errlen, false};

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (expr == NULL) {
		seterr(err, errlen, "empty expression");
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		seterr(err, errlen, "out of memory");
		return NULL;
	}
	if (parse_expr(s, &pc, expr) < 0)
		goto fail;
	if (s->kind != TD_SCHEDULE_RATE && s->kind != TD_SCHEDULE_AT)
		s->never = !days_possible(s);
	return s;
fail:
	free(s);
	return NULL;
}

struct td_schedule *td_schedule_parse(const char *expr, const char *timezone, char *err,
				      size_t errlen)
{
	struct td_schedule *s = schedule_new(expr, err, errlen);

	if (s == NULL)
		return NULL;
	if (zone_load(&s->zone, timezone, err, errlen) < 0)
		goto fail;
	return s;
fail:
	td_schedule_destroy(s);
	return NULL;
}

struct td_schedule *td_schedule_parse_tzif(const char *expr, const char *zone_name,
					   const void *tzif, size_t len, char *err, size_t errlen)
{
	struct td_schedule *s = schedule_new(expr, err, errlen);
	const char *label = zone_name != NULL ? zone_name : "custom";

	if (s == NULL)
		return NULL;
	snprintf(s->zone.name, sizeof(s->zone.name), "%s", label);
	if (zone_from_tzif(&s->zone, label, tzif, len, err, errlen) < 0)
		goto fail;
	return s;
fail:
	td_schedule_destroy(s);
	return NULL;
}

void td_schedule_destroy(struct td_schedule *s)
{
	if (s == NULL)
		return;
	free(s->zone.times);
	free(s->zone.offs);
	free(s);
}

enum td_schedule_kind td_schedule_kind(const struct td_schedule *s)
{
	return s->kind;
}

const char *td_schedule_kind_name(const struct td_schedule *s)
{
	static const char *const names[] = {"cron", "cron6", "aws-cron", "rate", "at"};

	return names[s->kind];
}

const char *td_schedule_timezone(const struct td_schedule *s)
{
	return s->zone.name;
}

long long td_schedule_rate_period(const struct td_schedule *s)
{
	return s->kind == TD_SCHEDULE_RATE ? s->period : 0;
}

/* ---------------------------------------------------------------------------------- */
/* Next fire instant                                                                   */

static bool year_ok(const struct td_schedule *s, long long y)
{
	if (s->all_years)
		return true;
	if (y < AWS_YEAR_MIN || y > AWS_YEAR_MAX)
		return false;
	return s->years[(y - AWS_YEAR_MIN) / 64] >> ((y - AWS_YEAR_MIN) % 64) & 1;
}

/* First allowed year after y, or -1. */
static long long next_year(const struct td_schedule *s, long long y)
{
	long long v = y < AWS_YEAR_MIN ? AWS_YEAR_MIN : y + 1;

	for (; v <= AWS_YEAR_MAX; v++)
		if (year_ok(s, v))
			return v;
	return -1;
}

static uint64_t day_mask(const struct td_schedule *s, long long y, int m)
{
	int n = days_in_month(y, m);
	int w1 = weekday_of(days_from_civil(y, m, 1));
	uint64_t valid = ((1ull << n) - 1) << 1, bydow = 0;
	int d, w;

	switch (s->day_rule) {
	case DAY_SETS:
		for (d = 1; d <= n; d++)
			if (s->dows >> ((w1 + d - 1) % 7) & 1)
				bydow |= 1ull << d;
		return (s->dom_or_dow ? (s->doms | bydow) : (s->doms & bydow)) & valid;
	case DAY_LAST:
		return 1ull << n;
	case DAY_LAST_WEEKDAY:
		w = (w1 + n - 1) % 7;
		return 1ull << (w == 6 ? n - 1 : w == 0 ? n - 2 : n);
	case DAY_NEAR_WEEKDAY:
		d = s->day_arg;
		if (d > n)
			return 0; /* no such day this month */
		w = (w1 + d - 1) % 7;
		if (w == 6)
			d = d == 1 ? 3 : d - 1; /* Saturday: Friday, or Monday the 3rd */
		else if (w == 0)
			d = d == n ? d - 2 : d + 1; /* Sunday: Monday, or Friday before the end */
		return 1ull << d;
	case DAY_LAST_DOW:
		w = (w1 + n - 1) % 7;
		return 1ull << (n - (w - s->day_arg + 7) % 7);
	case DAY_NTH_DOW:
		d = 1 + (s->day_arg - w1 + 7) % 7 + 7 * (s->day_arg2 - 1);
		return d <= n ? 1ull << d : 0;
	}
	return 0;
}

static int lowest_bit(uint64_t v)
{
	return __builtin_ctzll(v);
}

/*
 * The first matching wall-clock time in [lo, hi) (local seconds). Returns 1 and *out,
 * 0 when there is none in the window, -1 when there is none at or after lo ever.
 * Every step moves the candidate forward to the next value its field allows, so the
 * loop runs at most a few times per month of the window; the cap only guards bugs.
 */
static int next_wall(const struct td_schedule *s, long long lo, long long hi, long long *out)
{
	long long days, y;
	int m, d, h, mi, sec, sod;

	if (lo >= hi)
		return 0;
	if (s->kind == TD_SCHEDULE_AT) {
		if (s->at_wall < lo)
			return -1;
		if (s->at_wall >= hi)
			return 0;
		*out = s->at_wall;
		return 1;
	}
	days = floor_div(lo, SECS_PER_DAY);
	sod = (int)(lo - days * SECS_PER_DAY);
	civil_from_days(days, &y, &m, &d);
	h = sod / 3600;
	mi = sod / 60 % 60;
	sec = sod % 60;
	for (int guard = 0; guard < 1000000; guard++) {
		uint64_t bits;

		if (wall_of(y, m, d, h, mi, sec) >= hi)
			return 0;
		if (!year_ok(s, y)) {
			y = next_year(s, y);
			if (y < 0)
				return -1;
			m = d = 1;
			h = mi = sec = 0;
			continue;
		}
		if (!(s->months >> m & 1)) {
			bits = s->months & ~((2ull << m) - 1);
			if (bits != 0) {
				m = lowest_bit(bits);
			} else {
				y++;
				m = lowest_bit(s->months);
			}
			d = 1;
			h = mi = sec = 0;
			continue;
		}
		bits = day_mask(s, y, m) & (~0ull << d);
		if (bits == 0) {
			if (++m > 12) {
				m = 1;
				y++;
			}
			d = 1;
			h = mi = sec = 0;
			continue;
		}
		if (lowest_bit(bits) != d) {
			d = lowest_bit(bits);
			h = mi = sec = 0;
		}
		bits = s->hours & (~0ull << h);
		if (bits == 0) {
			d++;
			h = mi = sec = 0;
			continue;
		}
		if (lowest_bit(bits) != h) {
			h = lowest_bit(bits);
			mi = sec = 0;
		}
		bits = s->mins & (~0ull << mi);
		if (bits == 0) {
			h++;
			mi = sec = 0;
			continue;
		}
		if (lowest_bit(bits) != mi) {
			mi = lowest_bit(bits);
			sec = 0;
		}
		bits = s->secs & (~0ull << sec);
		if (bits == 0) {
			mi++;
			sec = 0;
			continue;
		}
		sec = lowest_bit(bits);
		*out = wall_of(y, m, d, h, mi, sec);
		return *out < hi ? 1 : 0;
	}
	return -1;
}

/* Cron kinds and at(): walk the zone's segments of constant offset from after + 1. */
static int next_instant(const struct td_schedule *s, long long after, long long *next)
{
	bool cronie = s->kind == TD_SCHEDULE_CRON || s->kind == TD_SCHEDULE_CRON6;
	long long t = after + 1, limit = TD_TIME_MAX + 1, w;

	if (s->never)
		return -TD_ENOTFOUND;
	/* A cron expression without a year repeats within one 400-year cycle. */
	if (cronie && after + SEARCH_SPAN < limit)
		limit = after + SEARCH_SPAN;
	/* at(): only instants within a day of its wall-clock time can show it. */
	if (s->kind == TD_SCHEDULE_AT) {
		if (t < s->at_wall - UTOFF_MAX)
			t = s->at_wall - UTOFF_MAX;
		if (limit > s->at_wall - UTOFF_MIN + 1)
			limit = s->at_wall - UTOFF_MIN + 1;
	}
	while (t < limit) {
		struct zseg g;
		long long end, lo;
		int r;

		zone_lookup(&s->zone, t, &g);
		end = g.has_end && g.end < limit ? g.end : limit;
		/* cronie: wall times skipped by this segment's forward jump fire at the jump. */
		if (cronie && g.has_start && t == g.start && g.off > g.prev_off) {
			long long gap = g.off - g.prev_off;

			if (gap <= JUMP_SMALL_MAX || (gap < JUMP_FORWARD_HUGE && !s->wildcard)) {
				if (next_wall(s, t + g.prev_off, t + g.off, &w) == 1) {
					*next = t;
					return 0;
				}
			}
		}
		lo = t + g.off;
		/* After a backward jump the wall times up to the old clock come again: skip
		 * them unless this job runs in both passes. */
		if (g.has_start && g.off < g.prev_off) {
			long long overlap = g.prev_off - g.off;
			bool once = !cronie || (!s->wildcard && overlap <= JUMP_BACK_MAX);

			if (once && lo < g.start + g.prev_off)
				lo = g.start + g.prev_off;
		}
		r = next_wall(s, lo, end + g.off, &w);
		if (r == 1) {
			*next = w - g.off;
			return 0;
		}
		if (r < 0)
			return -TD_ENOTFOUND;
		t = end;
	}
	return -TD_ENOTFOUND;
}

int td_schedule_next(const struct td_schedule *s, long long after, long long start, long long *next)
{
	if (after < TD_TIME_MIN || after > TD_TIME_MAX)
		return -TD_EINVAL;
	if (s->kind == TD_SCHEDULE_RATE) {
		long long n;

		if (start < TD_TIME_MIN || start > TD_TIME_MAX)
			return -TD_EINVAL;
		n = after < start ? start : start + ((after - start) / s->period + 1) * s->period;
		if (n > TD_TIME_MAX)
			return -TD_ENOTFOUND;
		*next = n;
		return 0;
	}
	return next_instant(s, after, next);
}

/* ---------------------------------------------------------------------------------- */
/* RFC 3339                                                                            */

static int rfc_fail(char *err, size_t errlen, const char *text, const char *what, size_t pos)
{
	char q[QUOTE_CAP];

	seterr(err, errlen, "invalid RFC 3339 time \"%s\": %s at position %zu",
	       quote(q, text, strlen(text)), what, pos + 1);
	return -TD_EINVAL;
}

int td_time_parse_rfc3339(const char *text, long long *secs, char *err, size_t errlen)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	char q[QUOTE_CAP];
	int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0, oh = 0, om = 0, sign = 0;
	size_t i;
	long long v;

	if (text == NULL)
		text = "";
	for (i = 0; shape[i] != '\0'; i++) {
		char c = text[i];

		if (shape[i] == 'd' && !isdigit((unsigned char)c))
			return rfc_fail(err, errlen, text, "expected a digit", i);
		if (shape[i] == 'T' && c != 'T' && c != 't' && c != ' ')
			return rfc_fail(err, errlen, text, "expected 'T' between date and time", i);
		if ((shape[i] == '-' || shape[i] == ':') && c != shape[i])
			return rfc_fail(err, errlen, text,
					shape[i] == '-' ? "expected '-'" : "expected ':'", i);
	}
	digits(text, 4, &y);
	digits(text + 5, 2, &mo);
	digits(text + 8, 2, &d);
	digits(text + 11, 2, &h);
	digits(text + 14, 2, &mi);
	digits(text + 17, 2, &se);
	if (text[i] == '.') {
		size_t f = ++i;
		while (isdigit((unsigned char)text[i]))
			i++;
		if (i == f)
			return rfc_fail(err, errlen, text, "expected digits after '.'", i);
	}
	if (text[i] == 'Z' || text[i] == 'z') {
		i++;
	} else if (text[i] == '+' || text[i] == '-') {
		sign = text[i] == '-' ? -1 : 1;
		if (!isdigit((unsigned char)text[i + 1]) || !isdigit((unsigned char)text[i + 2]) ||
		    text[i + 3] != ':' || !isdigit((unsigned char)text[i + 4]) ||
		    !isdigit((unsigned char)text[i + 5]))
			return rfc_fail(err, errlen, text, "expected an offset +hh:mm", i);
		digits(text + i + 1, 2, &oh);
		digits(text + i + 4, 2, &om);
		if (oh > 23 || om > 59)
			return rfc_fail(err, errlen, text, "offset out of range", i);
		i += 6;
	} else {
		return rfc_fail(err, errlen, text, "expected 'Z' or an offset +hh:mm", i);
	}
	if (text[i] != '\0')
		return rfc_fail(err, errlen, text, "unexpected text after the time", i);
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo)) {
		seterr(err, errlen, "invalid RFC 3339 time \"%s\": no such date %04d-%02d-%02d",
		       quote(q, text, strlen(text)), y, mo, d);
		return -TD_EINVAL;
	}
	if (h > 23 || mi > 59 || se > 60) {
		seterr(err, errlen, "invalid RFC 3339 time \"%s\": no such time %02d:%02d:%02d",
		       quote(q, text, strlen(text)), h, mi, se);
		return -TD_EINVAL;
	}
	v = wall_of(y, mo, d, h, mi, se) - sign * (oh * 3600LL + om * 60LL);
	if (v < TD_TIME_MIN || v > TD_TIME_MAX) {
		seterr(err, errlen, "invalid RFC 3339 time \"%s\": outside years 0001-9999 UTC",
		       quote(q, text, strlen(text)));
		return -TD_EINVAL;
	}
	*secs = v;
	return 0;
}

void td_time_format_rfc3339(long long secs, char *out, size_t cap)
{
	long long days = floor_div(secs, SECS_PER_DAY), y;
	int sod = (int)(secs - days * SECS_PER_DAY), m, d;

	if (out == NULL || cap == 0)
		return;
	civil_from_days(days, &y, &m, &d);
	snprintf(out, cap, "%04lld-%02d-%02dT%02d:%02d:%02dZ", y, m, d, sod / 3600, sod / 60 % 60,
		 sod % 60);
}
