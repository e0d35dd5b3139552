/*
 * Unit tests of the cron source's pure parts (connectors/cron_source.h): the start/end
 * window, catch-up planning, the ticker that the source's thread follows (start from a
 * mark, late ticks at run time, end of the schedule), the last-fired mark file, the
 * tick's event, and the lease's URL, key and lifetime. The thread, the lease server and
 * the daemon are tested end to end in tests/integration/test_cron_source.py.
 *
 * Anchors: 2025-01-01T00:00:00Z = 1735689600 (a Wednesday).
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <triggerd/errors.h>
#include <triggerd/event.h>

#include "../../connectors/cron_source.h"

#define T0 1735689600LL /* 2025-01-01T00:00:00Z */

static struct td_schedule *parse(const char *expr, const char *tz)
{
	char err[256];
	struct td_schedule *s = td_schedule_parse(expr, tz, err, sizeof err);
	cr_assert_not_null(s, "%s: %s", expr, err);
	return s;
}

static const struct td_cron_window open_window = {TD_TIME_MIN, TD_TIME_MAX, 0};

/* ---- window ---- */

struct window_case {
	const char *expr;
	long long after, end, anchor; /* the window */
	long long from;		      /* td_cron_window_next(from) */
	long long want;		      /* -1: -TD_ENOTFOUND */
};

Test(cron_source, window_next_respects_start_end_and_anchor)
{
	static const struct window_case cases[] = {
	    /* no window: the schedule's next minute */
	    {"* * * * *", TD_TIME_MIN, TD_TIME_MAX, 0, T0, T0 + 60},
	    /* start = T0 + 3600: nothing before it; start itself fires (after = start - 1) */
	    {"* * * * *", T0 + 3599, TD_TIME_MAX, 0, T0, T0 + 3600},
	    {"0 * * * *", T0 + 3599, TD_TIME_MAX, 0, T0 + 3600, T0 + 7200},
	    /* end is inclusive */
	    {"0 * * * *", TD_TIME_MIN, T0 + 7200, 0, T0 + 3600, T0 + 7200},
	    {"0 * * * *", TD_TIME_MIN, T0 + 7199, 0, T0 + 3600, -1},
	    {"0 * * * *", TD_TIME_MIN, T0 + 7200, 0, T0 + 7200, -1},
	    /* rate() from its anchor; without `start` the anchor itself does not fire */
	    {"rate(5 minutes)", T0 - 1, TD_TIME_MAX, T0, T0 - 1000, T0},
	    {"rate(5 minutes)", T0, TD_TIME_MAX, T0, T0 - 1000, T0 + 300},
	    {"rate(5 minutes)", T0, TD_TIME_MAX, T0, T0 + 301, T0 + 600},
	    /* at(): once */
	    {"at(2025-01-01T00:10:00)", TD_TIME_MIN, TD_TIME_MAX, 0, T0, T0 + 600},
	    {"at(2025-01-01T00:10:00)", TD_TIME_MIN, TD_TIME_MAX, 0, T0 + 600, -1},
	    {"at(2025-01-01T00:10:00)", T0 + 601, TD_TIME_MAX, 0, T0, -1},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct window_case *c = &cases[i];
		struct td_schedule *s = parse(c->expr, NULL);
		struct td_cron_window w = {c->after, c->end, c->anchor};
		long long next = 0;
		int rc = td_cron_window_next(s, &w, c->from, &next);
		if (c->want < 0)
			cr_expect_eq(rc, -TD_ENOTFOUND, "case %zu (%s): rc %d next %lld", i,
				     c->expr, rc, next);
		else
			cr_expect(rc == 0 && next == c->want,
				  "case %zu (%s): rc %d next %lld, want %lld", i, c->expr, rc, next,
				  c->want);
		td_schedule_destroy(s);
	}
}

/* ---- catch-up planning ---- */

struct plan_case {
	const char *name;
	const char *expr;
	int catchup;
	long long max_age;
	long long after, upto, now;
	size_t cap;
	long long found; /* -1: not counted */
	bool aged;
	long long want[6]; /* offsets from T0, ended by -1 */
};

Test(cron_source, plan_catchup_table)
{
	static const struct plan_case cases[] = {
	    {"none drops",
	     "* * * * *",
	     TD_CRON_CATCHUP_NONE,
	     86400,
	     T0,
	     T0 + 600,
	     T0 + 600,
	     1000,
	     -1,
	     false,
	     {-1}},
	    {"last keeps the newest",
	     "* * * * *",
	     TD_CRON_CATCHUP_LAST,
	     86400,
	     T0,
	     T0 + 600,
	     T0 + 600,
	     1000,
	     10,
	     false,
	     {600, -1}},
	    {"last, upto is inclusive, after exclusive",
	     "*/5 * * * *",
	     TD_CRON_CATCHUP_LAST,
	     86400,
	     T0,
	     T0 + 300,
	     T0 + 300,
	     1000,
	     1,
	     false,
	     {300, -1}},
	    {"all in order",
	     "*/2 * * * *",
	     TD_CRON_CATCHUP_ALL,
	     86400,
	     T0,
	     T0 + 600,
	     T0 + 600,
	     1000,
	     5,
	     false,
	     {120, 240, 360, 480, 600, -1}},
	    {"all capped keeps the newest",
	     "* * * * *",
	     TD_CRON_CATCHUP_ALL,
	     86400,
	     T0,
	     T0 + 600,
	     T0 + 600,
	     3,
	     10,
	     false,
	     {480, 540, 600, -1}},
	    {"all capped, cap divides the count",
	     "* * * * *",
	     TD_CRON_CATCHUP_ALL,
	     86400,
	     T0,
	     T0 + 360,
	     T0 + 360,
	     3,
	     6,
	     false,
	     {240, 300, 360, -1}},
	    {"max age cuts old ticks",
	     "* * * * *",
	     TD_CRON_CATCHUP_ALL,
	     180,
	     T0,
	     T0 + 600,
	     T0 + 600,
	     1000,
	     4,
	     true,
	     {420, 480, 540, 600, -1}},
	    {"max age measured from now, not upto",
	     "* * * * *",
	     TD_CRON_CATCHUP_ALL,
	     180,
	     T0,
	     T0 + 540,
	     T0 + 600,
	     1000,
	     3,
	     true,
	     {420, 480, 540, -1}},
	    {"everything too old",
	     "* * * * *",
	     TD_CRON_CATCHUP_LAST,
	     60,
	     T0,
	     T0 + 600,
	     T0 + 7200,
	     1000,
	     0,
	     true,
	     {-1}},
	    {"empty range",
	     "* * * * *",
	     TD_CRON_CATCHUP_ALL,
	     86400,
	     T0 + 600,
	     T0 + 600,
	     T0 + 600,
	     1000,
	     -1,
	     false,
	     {-1}},
	    {"no tick inside",
	     "0 * * * *",
	     TD_CRON_CATCHUP_ALL,
	     86400,
	     T0,
	     T0 + 3599,
	     T0 + 3599,
	     1000,
	     0,
	     false,
	     {-1}},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct plan_case *c = &cases[i];
		struct td_schedule *s = parse(c->expr, NULL);
		long long out[1000];
		struct td_cron_plan p;
		int n = td_cron_plan_catchup(s, &open_window, c->catchup, c->max_age, c->after,
					     c->upto, c->now, out, c->cap, &p);
		size_t want_n = 0;
		while (c->want[want_n] >= 0)
			want_n++;
		cr_expect_eq(n, (int)want_n, "%s: planned %d, want %zu", c->name, n, want_n);
		for (size_t k = 0; k < want_n && (int)k < n; k++)
			cr_expect_eq(out[k], T0 + c->want[k], "%s: tick %zu is %lld, want %lld",
				     c->name, k, out[k] - T0, c->want[k]);
		cr_expect(p.decided, "%s", c->name);
		cr_expect_eq(p.found, c->found, "%s: found %lld", c->name, p.found);
		cr_expect_eq(p.planned, (long long)(n < 0 ? 0 : n), "%s", c->name);
		cr_expect_eq(p.aged, c->aged, "%s: aged", c->name);
		cr_expect_not(p.partial, "%s: partial", c->name);
		cr_expect_eq(p.after, c->after, "%s", c->name);
		cr_expect_eq(p.upto, c->upto, "%s", c->name);
		td_schedule_destroy(s);
	}
}

Test(cron_source, plan_catchup_thirty_days_of_seconds_keeps_the_newest_thousand)
{
	struct td_schedule *s = parse("* * * * * *", "Europe/Paris");
	static long long out[TD_CRON_CATCHUP_MAX];
	struct td_cron_plan p;
	long long now = T0 + 40 * 86400;
	int n = td_cron_plan_catchup(s, &open_window, TD_CRON_CATCHUP_ALL, 30 * 86400, T0, now, now,
				     out, TD_CRON_CATCHUP_MAX, &p);
	cr_assert_eq(n, TD_CRON_CATCHUP_MAX);
	/* Only the newest part was walked: more than the kept ones, far fewer than all. */
	cr_expect(p.partial);
	cr_expect(p.found >= TD_CRON_CATCHUP_MAX && p.found < 10000, "found %lld", p.found);
	cr_expect(p.aged);
	for (int i = 0; i < n; i++)
		cr_assert_eq(out[i], now - TD_CRON_CATCHUP_MAX + 1 + i, "tick %d", i);
	td_schedule_destroy(s);
}

Test(cron_source, plan_catchup_walks_back_until_it_has_enough)
{
	static long long out[TD_CRON_CATCHUP_MAX];
	struct td_cron_plan p;
	long long now = T0 + 3 * 86400;

	/* Every minute for 3 days (4320 missed): the newest 1000, oldest first. */
	struct td_schedule *s = parse("* * * * *", NULL);
	int n = td_cron_plan_catchup(s, &open_window, TD_CRON_CATCHUP_ALL, 30 * 86400, T0, now, now,
				     out, TD_CRON_CATCHUP_MAX, &p);
	cr_assert_eq(n, TD_CRON_CATCHUP_MAX);
	cr_expect(p.partial);
	cr_expect(p.found >= TD_CRON_CATCHUP_MAX && p.found < 4320, "found %lld", p.found);
	for (int i = 0; i < n; i++)
		cr_assert_eq(out[i], now - 60LL * (TD_CRON_CATCHUP_MAX - 1 - i), "tick %d", i);
	/* The same with last: one tick, the newest. */
	n = td_cron_plan_catchup(s, &open_window, TD_CRON_CATCHUP_LAST, 30 * 86400, T0, now, now,
				 out, TD_CRON_CATCHUP_MAX, &p);
	cr_expect(n == 1 && out[0] == now && p.partial);
	td_schedule_destroy(s);

	/* Daily for 30 days: few ticks, so the whole window is walked and counted. */
	s = parse("0 0 * * *", NULL);
	now = T0 + 30 * 86400 + 3600;
	n = td_cron_plan_catchup(s, &open_window, TD_CRON_CATCHUP_ALL, 31 * 86400, T0 - 1, now, now,
				 out, TD_CRON_CATCHUP_MAX, &p);
	cr_assert_eq(n, 31);
	cr_expect_not(p.partial);
	cr_expect_not(p.aged);
	cr_expect_eq(p.found, 31);
	cr_expect_eq(out[0], T0);
	cr_expect_eq(out[30], T0 + 30 * 86400);
	/* One fewer when the oldest (T0) is past the maximum age. */
	n = td_cron_plan_catchup(s, &open_window, TD_CRON_CATCHUP_ALL, 30 * 86400 - 7200, T0 - 1,
				 now, now, out, TD_CRON_CATCHUP_MAX, &p);
	cr_expect_eq(n, 30);
	cr_expect(p.aged && !p.partial);
	td_schedule_destroy(s);
}

Test(cron_source, plan_catchup_respects_the_window)
{
	struct td_schedule *s = parse("* * * * *", NULL);
	/* start = T0 + 300 (after = start - 1), end = T0 + 480 */
	struct td_cron_window w = {T0 + 299, T0 + 480, 0};
	long long out[16];
	int n = td_cron_plan_catchup(s, &w, TD_CRON_CATCHUP_ALL, 86400, T0, T0 + 900, T0 + 900, out,
				     16, NULL);
	cr_assert_eq(n, 4);
	for (int i = 0; i < 4; i++)
		cr_expect_eq(out[i], T0 + 300 + 60 * i);
	td_schedule_destroy(s);
}

/* ---- the ticker ---- */

/* Peeks and pops k ticks, checking each against want (offsets from T0). */
static void expect_ticks(struct td_cron_ticker *t, long long upto, long long now,
			 const long long *want, size_t k, const bool *from_catchup)
{
	for (size_t i = 0; i < k; i++) {
		long long tick;
		bool catchup;
		int rc = td_cron_ticker_peek(t, upto, now, &tick, &catchup, NULL);
		cr_assert_eq(rc, 0, "tick %zu: rc %d", i, rc);
		cr_expect_eq(tick, T0 + want[i], "tick %zu is %lld, want %lld", i, tick - T0,
			     want[i]);
		if (from_catchup)
			cr_expect_eq(catchup, from_catchup[i], "tick %zu: catch-up flag", i);
		/* Peeking again gives the same tick. */
		long long again;
		cr_expect_eq(td_cron_ticker_peek(t, upto, now, &again, NULL, NULL), 0);
		cr_expect_eq(again, tick);
		td_cron_ticker_pop(t);
	}
}

Test(cron_source, ticker_first_start_fires_from_now)
{
	struct td_schedule *s = parse("*/10 * * * * *", NULL);
	struct td_cron_ticker *t = malloc(sizeof *t);
	struct td_cron_plan p;
	long long tick, now = T0 + 25;
	td_cron_ticker_init(t, s, &open_window, TD_CRON_CATCHUP_ALL, 86400, now);
	cr_assert_eq(td_cron_ticker_peek(t, now, now, &tick, NULL, &p), 0);
	cr_expect_not(p.decided, "nothing is missed without a mark");
	cr_expect_eq(tick, T0 + 30);
	static const long long want[] = {30, 40, 50, 60};
	expect_ticks(t, now, now, want, 4, NULL);
	free(t);
	td_schedule_destroy(s);
}

Test(cron_source, ticker_restart_from_mark_catchup_all_then_schedule)
{
	struct td_schedule *s = parse("*/10 * * * * *", NULL);
	struct td_cron_ticker *t = malloc(sizeof *t);
	struct td_cron_plan p;
	long long tick, mark = T0 + 10, now = T0 + 45;
	td_cron_ticker_init(t, s, &open_window, TD_CRON_CATCHUP_ALL, 86400, mark);
	cr_assert_eq(td_cron_ticker_peek(t, now, now, &tick, NULL, &p), 0);
	cr_expect(p.decided);
	cr_expect_eq(p.found, 3); /* 20, 30, 40 */
	cr_expect_eq(p.planned, 3);
	static const long long want[] = {20, 30, 40, 50, 60};
	static const bool caught[] = {true, true, true, false, false};
	expect_ticks(t, now, now, want, 5, caught);
	free(t);
	td_schedule_destroy(s);
}

Test(cron_source, ticker_restart_from_mark_catchup_last_and_none)
{
	struct td_schedule *s = parse("*/10 * * * * *", NULL);
	struct td_cron_ticker *t = malloc(sizeof *t);
	long long mark = T0 + 10, now = T0 + 45;

	td_cron_ticker_init(t, s, &open_window, TD_CRON_CATCHUP_LAST, 86400, mark);
	static const long long want_last[] = {40, 50, 60};
	static const bool caught_last[] = {true, false, false};
	expect_ticks(t, now, now, want_last, 3, caught_last);

	/* The source starts a catchup = none ticker from now, whatever the mark says; a
	 * ticker started from an old cursor with none drops what lies behind. */
	td_cron_ticker_init(t, s, &open_window, TD_CRON_CATCHUP_NONE, 86400, mark);
	static const long long want_none[] = {50, 60};
	expect_ticks(t, now, now, want_none, 2, NULL);
	free(t);
	td_schedule_destroy(s);
}

Test(cron_source, ticker_late_ticks_fire_and_missed_ones_follow_the_policy)
{
	struct td_schedule *s = parse("* * * * * *", NULL);
	struct td_cron_ticker *t = malloc(sizeof *t);
	long long tick;
	struct td_cron_plan p;
	td_cron_ticker_init(t, s, &open_window, TD_CRON_CATCHUP_NONE, 86400, T0);
	/* A wakeup 30 s late (within TD_CRON_LATE_S): ticks are late, none is skipped. */
	long long now = T0 + 30;
	static const long long want[] = {1, 2, 3};
	expect_ticks(t, now - TD_CRON_LATE_S, now, want, 3, NULL);
	/* The wall clock steps forward by an hour: the ticks more than TD_CRON_LATE_S
	 * behind are missed, and catchup = none drops them. */
	now = T0 + 3600;
	cr_assert_eq(td_cron_ticker_peek(t, now - TD_CRON_LATE_S, now, &tick, NULL, &p), 0);
	cr_expect(p.decided);
	cr_expect_eq(p.after, T0 + 3);
	cr_expect_eq(p.upto, now - TD_CRON_LATE_S);
	cr_expect_eq(tick, now - TD_CRON_LATE_S + 1);
	free(t);
	td_schedule_destroy(s);
}

Test(cron_source, ticker_late_ticks_with_catchup_last_fire_the_newest_missed)
{
	struct td_schedule *s = parse("* * * * *", NULL);
	struct td_cron_ticker *t = malloc(sizeof *t);
	td_cron_ticker_init(t, s, &open_window, TD_CRON_CATCHUP_LAST, 86400, T0);
	long long now = T0 + 600;
	/* missed: (T0, T0 + 540]: the newest is T0 + 540; then T0 + 600 (in the tolerance) */
	static const long long want[] = {540, 600, 660};
	static const bool caught[] = {true, false, false};
	expect_ticks(t, now - TD_CRON_LATE_S, now, want, 3, caught);
	free(t);
	td_schedule_destroy(s);
}

Test(cron_source, ticker_ends_at_end_and_after_a_one_shot)
{
	struct td_schedule *s = parse("0 * * * *", NULL);
	struct td_cron_ticker *t = malloc(sizeof *t);
	long long tick;
	struct td_cron_window w = {TD_TIME_MIN, T0 + 7200, 0};
	td_cron_ticker_init(t, s, &w, TD_CRON_CATCHUP_NONE, 86400, T0);
	static const long long want[] = {3600, 7200};
	expect_ticks(t, T0, T0, want, 2, NULL);
	cr_expect_eq(td_cron_ticker_peek(t, T0, T0, &tick, NULL, NULL), -TD_ENOTFOUND);
	td_schedule_destroy(s);

	s = parse("at(2025-01-01T01:00:00)", "Europe/Paris"); /* 00:00Z */
	td_cron_ticker_init(t, s, &open_window, TD_CRON_CATCHUP_NONE, 86400, T0 - 60);
	static const long long want_at[] = {0};
	expect_ticks(t, T0 - 60, T0 - 60, want_at, 1, NULL);
	cr_expect_eq(td_cron_ticker_peek(t, T0, T0, &tick, NULL, NULL), -TD_ENOTFOUND);
	free(t);
	td_schedule_destroy(s);
}

Test(cron_source, ticker_rate_counts_from_its_anchor)
{
	struct td_schedule *s = parse("rate(1 minute)", NULL);
	struct td_cron_ticker *t = malloc(sizeof *t);
	/* No start: the anchor is the load time (T0 + 7) and the first tick comes a period
	 * later. */
	struct td_cron_window w = {T0 + 7, TD_TIME_MAX, T0 + 7};
	td_cron_ticker_init(t, s, &w, TD_CRON_CATCHUP_ALL, 86400, T0 + 7);
	static const long long want[] = {67, 127};
	expect_ticks(t, T0 + 7, T0 + 7, want, 2, NULL);
	/* start = T0 - 30: the ticks fall on start + k minutes, the start included. */
	struct td_cron_window ws = {T0 - 31, TD_TIME_MAX, T0 - 30};
	td_cron_ticker_init(t, s, &ws, TD_CRON_CATCHUP_ALL, 86400, T0 - 100);
	static const long long want_s[] = {-30, 30, 90};
	expect_ticks(t, T0 - 100, T0 - 100, want_s, 3, NULL);
	free(t);
	td_schedule_destroy(s);
}

/* ---- the mark ---- */

struct mark_case {
	const char *text;
	long long want; /* offset from T0; used when err is NULL */
	const char *err;
};

Test(cron_source, mark_parse_table)
{
	static const struct mark_case cases[] = {
	    {"2025-01-01T00:00:00Z\n", 0, NULL},
	    {"2025-01-01T00:15:00Z", 900, NULL},
	    {"2025-01-01T01:15:00+01:00\r\n  \t", 900, NULL},
	    {"2025-01-01T00:00:30.999Z\n", 30, NULL},
	    {"", 0, "empty mark"},
	    {" \n\n", 0, "empty mark"},
	    {"yesterday\n", 0, "invalid RFC 3339 time"},
	    {"2025-13-01T00:00:00Z", 0, "invalid RFC 3339 time"},
	    {"2025-01-01T00:00:00", 0, "invalid RFC 3339 time"},
	    {"2025-01-01T00:00:00Z\nextra", 0, "unexpected byte 0x0a at position 21"},
	    {"\x01"
	     "2025-01-01T00:00:00Z",
	     0, "unexpected byte 0x01 at position 1"},
	    {"2025-01-01T00:00:00Z\xff", 0, "unexpected byte 0xff at position 21"},
	    {"2025-01-01T00:00:00.00000000000000000000000000000000000000000000000000Z", 0,
	     "too long"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct mark_case *c = &cases[i];
		char err[256] = "";
		long long secs = 0;
		int rc = td_cron_mark_parse(c->text, strlen(c->text), &secs, err, sizeof err);
		if (!c->err) {
			cr_expect_eq(rc, 0, "case %zu: %s", i, err);
			cr_expect_eq(secs, T0 + c->want, "case %zu: %lld", i, secs - T0);
		} else {
			cr_expect_eq(rc, -TD_EINVAL, "case %zu: rc %d", i, rc);
			cr_expect(strstr(err, c->err) != NULL, "case %zu: \"%s\" lacks \"%s\"", i,
				  err, c->err);
		}
	}
	/* A NUL inside the text (len counts it) is refused, not read past. */
	char withnul[] = "2025-01-01T00:00:00Z\0junk";
	char err[256];
	long long secs;
	cr_expect_eq(td_cron_mark_parse(withnul, sizeof withnul - 1, &secs, err, sizeof err),
		     -TD_EINVAL);
	cr_expect(strstr(err, "0x00") != NULL, "%s", err);
	/* err may be NULL with errlen 0. */
	cr_expect_eq(td_cron_mark_parse("x", 1, &secs, NULL, 0), -TD_EINVAL);
}

static char *temp_dir(void)
{
	char tmpl[] = "/tmp/test_cron_source.XXXXXX";
	char *d = mkdtemp(tmpl);
	cr_assert_not_null(d);
	return strdup(d);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	cr_assert_not_null(d);
	for (struct dirent *e; (e = readdir(d));)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

Test(cron_source, mark_write_read_round_trip)
{
	char *dir = temp_dir(), path[512], err[512], text[64];
	long long secs;
	snprintf(path, sizeof path, "%s/tick.mark", dir);

	cr_expect_eq(td_cron_mark_read(path, &secs, err, sizeof err), -TD_ENOTFOUND);
	cr_assert_eq(td_cron_mark_write(path, T0 + 900, err, sizeof err), 0, "%s", err);
	cr_assert_eq(td_cron_mark_read(path, &secs, err, sizeof err), 0, "%s", err);
	cr_expect_eq(secs, T0 + 900);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	size_t n = fread(text, 1, sizeof text - 1, f);
	fclose(f);
	text[n] = '\0';
	cr_expect_str_eq(text, "2025-01-01T00:15:00Z\n");
	/* Replaced in place; no temporary file is left behind. */
	cr_assert_eq(td_cron_mark_write(path, T0 + 960, err, sizeof err), 0, "%s", err);
	cr_assert_eq(td_cron_mark_read(path, &secs, err, sizeof err), 0, "%s", err);
	cr_expect_eq(secs, T0 + 960);
	cr_expect_eq(count_entries(dir), 1);

	/* A damaged mark is an error naming the file. */
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("not a time\n", f);
	fclose(f);
	cr_expect_eq(td_cron_mark_read(path, &secs, err, sizeof err), -TD_EINVAL);
	cr_expect(strstr(err, path) != NULL && strstr(err, "RFC 3339") != NULL, "%s", err);
	/* A huge file is read only in part and refused. */
	f = fopen(path, "w");
	cr_assert_not_null(f);
	for (int i = 0; i < 10000; i++)
		fputs("2025-01-01T00:00:00Z", f);
	fclose(f);
	cr_expect_eq(td_cron_mark_read(path, &secs, err, sizeof err), -TD_EINVAL);
	cr_expect(strstr(err, "too long") != NULL, "%s", err);
	unlink(path);

	/* A folder that does not exist: EIO with the reason, nothing left. */
	char missing[600];
	snprintf(missing, sizeof missing, "%s/no/such/dir/tick.mark", dir);
	cr_expect_eq(td_cron_mark_write(missing, T0, err, sizeof err), -TD_EIO);
	cr_expect(strstr(err, "cannot create") != NULL, "%s", err);
	/* A path that is a folder cannot be read as a mark. */
	cr_expect_eq(td_cron_mark_read(dir, &secs, err, sizeof err), -TD_EIO);
	cr_expect_eq(count_entries(dir), 0);
	rmdir(dir);
	free(dir);
}

/* ---- the event ---- */

Test(cron_source, event_attributes_and_payload)
{
	char err[256];
	struct td_event *ev = td_cron_event("nightly", "  0   3\t* * * ", T0 + 10800,
					    "{\"job\": \"backup\"}", err, sizeof err);
	cr_assert_not_null(ev, "%s", err);
	cr_expect_str_eq(td_event_get(ev, "type"), "triggerd.cron.tick");
	cr_expect_str_eq(td_event_get(ev, "source"), "triggerd/cron/nightly");
	cr_expect_str_eq(td_event_get(ev, "subject"), "nightly");
	cr_expect_str_eq(td_event_get(ev, "id"), "nightly:2025-01-01T03:00:00Z");
	cr_expect_str_eq(td_event_get(ev, "time"), "2025-01-01T03:00:00Z");
	cr_expect_str_eq(td_event_get(ev, "schedule"), "0 3 * * *");
	cr_expect_str_eq(td_event_get(ev, "specversion"), "1.0");
	cr_expect_str_eq(td_event_get(ev, "datacontenttype"), "application/json");
	cr_expect_eq(td_event_data_kind(ev), TD_DATA_JSON);
	size_t len;
	const char *data = td_event_data(ev, &len);
	cr_expect_str_eq(data, "{\"job\": \"backup\"}");
	cr_expect_eq(td_event_validate(ev, err, sizeof err), 0, "%s", err);
	char *json = td_event_to_json(ev, NULL);
	cr_assert_not_null(json);
	cr_expect(strstr(json, "\"schedule\":\"0 3 * * *\"") != NULL, "%s", json);
	free(json);
	td_event_unref(ev);

	/* No payload: no data, no content type. Same instant, same id. */
	ev = td_cron_event("nightly", "0 3 * * *", T0 + 10800, NULL, err, sizeof err);
	cr_assert_not_null(ev, "%s", err);
	cr_expect_eq(td_event_data_kind(ev), TD_DATA_NONE);
	cr_expect_null(td_event_get(ev, "datacontenttype"));
	cr_expect_str_eq(td_event_get(ev, "id"), "nightly:2025-01-01T03:00:00Z");
	td_event_unref(ev);
}

/* ---- the lease ---- */

struct url_case {
	const char *url;
	const char *host; /* NULL: an error containing err */
	int port;
	const char *user, *password;
	int db;
	const char *err;
};

Test(cron_source, redis_url_table)
{
	static const struct url_case cases[] = {
	    {"redis://127.0.0.1:6380", "127.0.0.1", 6380, "", "", 0, NULL},
	    {"redis://localhost", "localhost", 6379, "", "", 0, NULL},
	    {"REDIS://cache.internal/", "cache.internal", 6379, "", "", 0, NULL},
	    {"redis://:s%40cret@h:7000/3", "h", 7000, "", "s@cret", 3, NULL},
	    {"redis://alice:pw@h/12", "h", 6379, "alice", "pw", 12, NULL},
	    {"redis://a:b@c@h:1", "h", 1, "a", "b@c", 0, NULL},
	    {"redis://[::1]:6390/1", "::1", 6390, "", "", 1, NULL},
	    {"redis://[::1]", "::1", 6379, "", "", 0, NULL},
	    {"rediss://h:6379", NULL, 0, NULL, NULL, 0, "TLS"},
	    {"http://h:6379", NULL, 0, NULL, NULL, 0, "not a redis:// URL"},
	    {"", NULL, 0, NULL, NULL, 0, "empty URL"},
	    {"redis://", NULL, 0, NULL, NULL, 0, "no host at position 9"},
	    {"redis://:6379", NULL, 0, NULL, NULL, 0, "no host"},
	    {"redis://h:0", NULL, 0, NULL, NULL, 0, "not a number 1-65535"},
	    {"redis://h:65536", NULL, 0, NULL, NULL, 0, "not a number 1-65535"},
	    {"redis://h:99999999999999999999", NULL, 0, NULL, NULL, 0, "1-65535"},
	    {"redis://h:", NULL, 0, NULL, NULL, 0, "1-65535"},
	    {"redis://h:6a", NULL, 0, NULL, NULL, 0, "1-65535"},
	    {"redis://h/x", NULL, 0, NULL, NULL, 0, "database \"x\""},
	    {"redis://h/1/2", NULL, 0, NULL, NULL, 0, "database"},
	    {"redis://h/99999999999", NULL, 0, NULL, NULL, 0, "database"},
	    {"redis://h?db=1", NULL, 0, NULL, NULL, 0, "query or fragment at position 10"},
	    {"redis://h#x", NULL, 0, NULL, NULL, 0, "query or fragment"},
	    {"redis://h o", NULL, 0, NULL, NULL, 0, "space or control character at position 10"},
	    {"redis://h\x01", NULL, 0, NULL, NULL, 0, "control character"},
	    {"redis://pw@h", NULL, 0, NULL, NULL, 0, "without ':'"},
	    {"redis://:%4@h", NULL, 0, NULL, NULL, 0, "bad percent escape at position 10"},
	    {"redis://:%00@h", NULL, 0, NULL, NULL, 0, "bad percent escape"},
	    {"redis://:%@h", NULL, 0, NULL, NULL, 0, "bad percent escape"},
	    {"redis://[::1", NULL, 0, NULL, NULL, 0, "lacks its ']'"},
	    {"redis://[::g]", NULL, 0, NULL, NULL, 0, "IPv6"},
	    {"redis://[::1]x", NULL, 0, NULL, NULL, 0, "after the host"},
	    {"redis://h$t", NULL, 0, NULL, NULL, 0, "unexpected '$' in the host at position 10"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct url_case *c = &cases[i];
		struct td_cron_redis_url u;
		char err[256] = "";
		int rc = td_cron_redis_url_parse(c->url, &u, err, sizeof err);
		if (c->host) {
			cr_expect_eq(rc, 0, "%s: %s", c->url, err);
			cr_expect_str_eq(u.host, c->host, "%s", c->url);
			cr_expect_eq(u.port, c->port, "%s", c->url);
			cr_expect_str_eq(u.user, c->user, "%s", c->url);
			cr_expect_str_eq(u.password, c->password, "%s", c->url);
			cr_expect_eq(u.db, c->db, "%s", c->url);
		} else {
			cr_expect_eq(rc, -TD_EINVAL, "%s: rc %d", c->url, rc);
			cr_expect(strstr(err, c->err) != NULL, "%s: \"%s\" lacks \"%s\"", c->url,
				  err, c->err);
		}
	}
	/* Long parts are refused, not truncated. */
	char url[1200];
	snprintf(url, sizeof url, "redis://:%0300d@h", 0);
	struct td_cron_redis_url u;
	char err[256];
	cr_expect_eq(td_cron_redis_url_parse(url, &u, err, sizeof err), -TD_EINVAL);
	cr_expect(strstr(err, "password is longer") != NULL, "%s", err);
	snprintf(url, sizeof url, "redis://%0300d", 0);
	cr_expect_eq(td_cron_redis_url_parse(url, &u, err, sizeof err), -TD_EINVAL);
	cr_expect(strstr(err, "host is longer") != NULL, "%s", err);
	cr_expect_eq(td_cron_redis_url_parse(NULL, &u, err, sizeof err), -TD_EINVAL);
}

Test(cron_source, lease_key_and_ttl)
{
	char key[128];
	td_cron_lease_key("tick", T0 + 59, key, sizeof key);
	cr_expect_str_eq(key, "triggerd:cron:tick:2025-01-01T00:00:59Z");
	td_cron_lease_key("tick", T0, key, 10);
	cr_expect_str_eq(key, "triggerd:");

	/* none: an hour past the latest regular attempt (jitter + TD_CRON_LATE_S) */
	cr_expect_eq(td_cron_lease_ttl_ms(TD_CRON_CATCHUP_NONE, 86400000, 0),
		     (TD_CRON_LATE_S + 3600) * 1000LL);
	cr_expect_eq(td_cron_lease_ttl_ms(TD_CRON_CATCHUP_NONE, 86400000, 5000),
		     5000 + (TD_CRON_LATE_S + 3600) * 1000LL);
	/* catch-up: an instance may still try a tick catchup_max_age after it */
	cr_expect_eq(td_cron_lease_ttl_ms(TD_CRON_CATCHUP_ALL, 86400000, 5000),
		     86400000LL + 3600000LL);
	cr_expect_eq(td_cron_lease_ttl_ms(TD_CRON_CATCHUP_LAST, 1000, 0),
		     (TD_CRON_LATE_S + 3600) * 1000LL);
}
