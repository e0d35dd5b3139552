/*
 * Unit tests of connectors/cron_schedule.c: tables of expressions with the fire
 * instants they must produce, worked out by hand (calendar arithmetic in the comments;
 * zone transitions as published in the tz database: New York 2025-03-09 07:00Z spring
 * forward 02:00->03:00 and 2025-11-02 06:00Z fall back 02:00->01:00, Sydney 2025-04-05
 * 16:00Z fall back 03:00->02:00 and 2025-10-04 16:00Z spring forward 02:00->03:00).
 * Handy anchors: 2025-01-01 was a Wednesday; 2025-01-01T00:00:00Z = 1735689600.
 *
 * Also: every error message, RFC 3339 parsing and formatting, synthetic TZif data
 * (footer-only zones, all-year DST, small/medium/huge jumps, broken files), glibc's
 * localtime_r as an independent oracle over 40 years of 16 zones, and concurrent use.
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <triggerd/errors.h>

#include "../../connectors/cron_schedule.h"

#define NONE "none" /* td_schedule_next() must answer -TD_ENOTFOUND here */

struct fire_case {
	const char *expr;
	const char *tz;	   /* NULL = UTC */
	const char *after; /* RFC 3339 */
	const char *start; /* rate() anchor, NULL = unused */
	const char *fires[9];
};

static void check_fires(const struct fire_case *c, size_t n)
{
	for (size_t k = 0; k < n; k++, c++) {
		char err[256], got[TD_TIME_RFC3339_LEN];
		long long after, start = 0, next;
		const char *zone = c->tz != NULL ? c->tz : "UTC";
		struct td_schedule *s = td_schedule_parse(c->expr, c->tz, err, sizeof(err));

		cr_assert_not_null(s, "%s [%s]: %s", c->expr, zone, err);
		cr_assert_eq(td_time_parse_rfc3339(c->after, &after, err, sizeof(err)), 0, "%s",
			     err);
		if (c->start != NULL)
			cr_assert_eq(td_time_parse_rfc3339(c->start, &start, err, sizeof(err)), 0,
				     "%s", err);
		for (int i = 0; i < 9 && c->fires[i] != NULL; i++) {
			int rc = td_schedule_next(s, after, start, &next);

			if (strcmp(c->fires[i], NONE) == 0) {
				cr_expect_eq(rc, -TD_ENOTFOUND,
					     "%s [%s] fire %d: expected none, rc %d", c->expr, zone,
					     i, rc);
				break;
			}
			cr_expect_eq(rc, 0, "%s [%s] fire %d: rc %d, expected %s", c->expr, zone, i,
				     rc, c->fires[i]);
			if (rc != 0)
				break;
			td_time_format_rfc3339(next, got, sizeof(got));
			cr_expect_str_eq(got, c->fires[i], "%s [%s] fire %d: got %s, expected %s",
					 c->expr, zone, i, got, c->fires[i]);
			cr_expect_gt(next, after);
			after = next;
		}
		td_schedule_destroy(s);
	}
}

#define CHECK(table) check_fires(table, sizeof(table) / sizeof(table[0]))

/* ---------------------------------------------------------------------------------- */
/* Standard cron, UTC                                                                  */

Test(schedule, cron_fields)
{
	static const struct fire_case t[] = {
	    /* the example of the issue */
	    {"*/15 * * * *",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2025-01-01T00:15:00Z", "2025-01-01T00:30:00Z", "2025-01-01T00:45:00Z",
	      "2025-01-01T01:00:00Z"}},
	    /* range with step: minutes 5,10,...,50 */
	    {"5-50/5 * * * *",
	     NULL,
	     "2025-01-01T00:48:00Z",
	     NULL,
	     {"2025-01-01T00:50:00Z", "2025-01-01T01:05:00Z", "2025-01-01T01:10:00Z"}},
	    /* n/step = n-59/step: 10,15,...,55 */
	    {"10/5 * * * *",
	     NULL,
	     "2025-01-01T00:56:00Z",
	     NULL,
	     {"2025-01-01T01:10:00Z", "2025-01-01T01:15:00Z"}},
	    /* lists and ranges */
	    {"0,30 8-9 * * *",
	     NULL,
	     "2025-01-01T08:10:00Z",
	     NULL,
	     {"2025-01-01T08:30:00Z", "2025-01-01T09:00:00Z", "2025-01-01T09:30:00Z",
	      "2025-01-02T08:00:00Z"}},
	    /* Friday Jan 3 09:00 -> Monday Jan 6, Tuesday Jan 7 */
	    {"0 9 * * MON-FRI",
	     NULL,
	     "2025-01-03T09:00:00Z",
	     NULL,
	     {"2025-01-06T09:00:00Z", "2025-01-07T09:00:00Z"}},
	    /* names in any case */
	    {"0 12 1 jan,Jul *",
	     NULL,
	     "2025-01-01T12:00:00Z",
	     NULL,
	     {"2025-07-01T12:00:00Z", "2026-01-01T12:00:00Z"}},
	    /* 7 and 0 and SUN are Sunday: Jan 5 and Jan 12 */
	    {"0 0 * * 7",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2025-01-05T00:00:00Z", "2025-01-12T00:00:00Z"}},
	    {"0 0 * * 0",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2025-01-05T00:00:00Z", "2025-01-12T00:00:00Z"}},
	    {"0 0 * * sun",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2025-01-05T00:00:00Z", "2025-01-12T00:00:00Z"}},
	    /* 5-7 = Friday, Saturday, Sunday */
	    {"0 0 * * 5-7",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2025-01-03T00:00:00Z", "2025-01-04T00:00:00Z", "2025-01-05T00:00:00Z",
	      "2025-01-10T00:00:00Z"}},
	    /* month boundaries and year end */
	    {"59 23 31 12 *",
	     NULL,
	     "2025-06-01T00:00:00Z",
	     NULL,
	     {"2025-12-31T23:59:00Z", "2026-12-31T23:59:00Z"}},
	    /* the Jan 1 00:00 instant itself is excluded (strictly after) */
	    {"0 0 1 1 *", NULL, "2025-01-01T00:00:00Z", NULL, {"2026-01-01T00:00:00Z"}},
	    {"0 0 1 1 *", NULL, "2024-12-31T23:59:59Z", NULL, {"2025-01-01T00:00:00Z"}},
	    /* leading/trailing blanks and tabs between fields */
	    {"  0\t12 * *  * ", NULL, "2025-01-01T00:00:00Z", NULL, {"2025-01-01T12:00:00Z"}},
	    /* before 1970 */
	    {"0 0 1 * *",
	     NULL,
	     "1969-12-15T00:00:00Z",
	     NULL,
	     {"1970-01-01T00:00:00Z", "1970-02-01T00:00:00Z"}},
	};
	CHECK(t);
}

Test(schedule, cron_vixie_dom_dow)
{
	static const struct fire_case t[] = {
	    /* both restricted: the 13th OR any Friday (Fridays of Jan 2025: 3 10 17 24 31) */
	    {"0 0 13 * FRI",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2025-01-03T00:00:00Z", "2025-01-10T00:00:00Z", "2025-01-13T00:00:00Z",
	      "2025-01-17T00:00:00Z"}},
	    /* dom starts with '*': AND. Odd days that are Fridays: Jan 3, 17, 31, Feb 7 */
	    {"0 0 */2 * FRI",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2025-01-03T00:00:00Z", "2025-01-17T00:00:00Z", "2025-01-31T00:00:00Z",
	      "2025-02-07T00:00:00Z"}},
	    /* dow starts with '*' (*\/5 = 0,5 = Sunday, Friday): AND with the 13th.
	     * 13ths of 2025: Jan Mon, Feb Thu, Mar Thu, Apr Sun, May Tue, Jun Fri, Jul Sun */
	    {"0 0 13 * */5",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2025-04-13T00:00:00Z", "2025-06-13T00:00:00Z", "2025-07-13T00:00:00Z"}},
	    /* only one restricted */
	    {"0 0 13 * *",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2025-01-13T00:00:00Z", "2025-02-13T00:00:00Z"}},
	    {"0 0 * * 1",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2025-01-06T00:00:00Z", "2025-01-13T00:00:00Z"}},
	    /* April 31 never exists, but OR with Monday fires (April 1 2025 is a Tuesday) */
	    {"0 0 31 4 MON",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2025-04-07T00:00:00Z", "2025-04-14T00:00:00Z"}},
	};
	CHECK(t);
}

Test(schedule, cron_macros)
{
	static const struct fire_case t[] = {
	    {"@hourly",
	     NULL,
	     "2025-01-01T00:30:00Z",
	     NULL,
	     {"2025-01-01T01:00:00Z", "2025-01-01T02:00:00Z"}},
	    {"@daily",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2025-01-02T00:00:00Z", "2025-01-03T00:00:00Z"}},
	    {"@midnight",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2025-01-02T00:00:00Z", "2025-01-03T00:00:00Z"}},
	    /* Sundays */
	    {"@weekly",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2025-01-05T00:00:00Z", "2025-01-12T00:00:00Z"}},
	    {"@monthly",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2025-02-01T00:00:00Z", "2025-03-01T00:00:00Z"}},
	    {"@yearly",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"}},
	    {"@annually",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"}},
	    {" @daily ", NULL, "2025-01-01T00:00:00Z", NULL, {"2025-01-02T00:00:00Z"}},
	};
	CHECK(t);
}

Test(schedule, cron_leap_years_and_never)
{
	static const struct fire_case t[] = {
	    /* the brief's example; 2028 and 2032 are leap years */
	    {"0 0 29 2 *",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"}},
	    /* 2100 is not a leap year (divisible by 100, not by 400): 2096 -> 2104 */
	    {"0 0 29 2 *", NULL, "2096-03-01T00:00:00Z", NULL, {"2104-02-29T00:00:00Z"}},
	    /* 2000 is (divisible by 400) */
	    {"0 0 29 2 *",
	     NULL,
	     "1997-01-01T00:00:00Z",
	     NULL,
	     {"2000-02-29T00:00:00Z", "2004-02-29T00:00:00Z"}},
	    /* days that never exist */
	    {"0 0 30 2 *", NULL, "2025-01-01T00:00:00Z", NULL, {NONE}},
	    {"0 0 31 4,6,9,11 *", NULL, "2025-01-01T00:00:00Z", NULL, {NONE}},
	    {"0 0 30 2 *", "America/New_York", "2025-01-01T00:00:00Z", NULL, {NONE}},
	    /* with seconds */
	    {"0 0 0 29 2 *", NULL, "2025-01-01T00:00:00Z", NULL, {"2028-02-29T00:00:00Z"}},
	    /* Feb 29 AND Sunday (dow starts with '*': *\/7 = 0,7 = Sunday). 2004-02-29 was
	     * a Sunday; 28 years hold 7 leap days (10227 days = 1461 weeks): 2032, 2060,
	     * 2088. From 2088 the leap days fall on Fri 2092, Wed 2096, (2100 is none) Fri
	     * 2104, Wed 2108, Mon 2112, Sat 2116, Thu 2120, Tue 2124, Sun 2128. */
	    {"0 0 29 2 */7",
	     NULL,
	     "2004-03-01T00:00:00Z",
	     NULL,
	     {"2032-02-29T00:00:00Z", "2060-02-29T00:00:00Z", "2088-02-29T00:00:00Z",
	      "2128-02-29T00:00:00Z"}},
	};
	CHECK(t);
}

Test(schedule, cron_seconds_field)
{
	static const struct fire_case t[] = {
	    {"*/20 * * * * *",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2025-01-01T00:00:20Z", "2025-01-01T00:00:40Z", "2025-01-01T00:01:00Z"}},
	    {"30 0 12 * * *",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2025-01-01T12:00:30Z", "2025-01-02T12:00:30Z"}},
	    {"15,45 30 * * * *",
	     NULL,
	     "2025-01-01T00:30:45Z",
	     NULL,
	     {"2025-01-01T01:30:15Z", "2025-01-01T01:30:45Z"}},
	    {"59 59 23 31 12 *",
	     NULL,
	     "2025-12-31T23:59:58Z",
	     NULL,
	     {"2025-12-31T23:59:59Z", "2026-12-31T23:59:59Z"}},
	    {"* * * * * *",
	     NULL,
	     "2025-01-01T00:00:59Z",
	     NULL,
	     {"2025-01-01T00:01:00Z", "2025-01-01T00:01:01Z"}},
	};
	CHECK(t);
}

/* ---------------------------------------------------------------------------------- */
/* cron(): EventBridge syntax, UTC                                                     */

Test(schedule, aws_cron_basics)
{
	static const struct fire_case t[] = {
	    {"cron(0 12 * * ? *)",
	     NULL,
	     "2025-01-01T12:00:00Z",
	     NULL,
	     {"2025-01-02T12:00:00Z", "2025-01-03T12:00:00Z"}},
	    {"cron(0/15 * * * ? *)",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2025-01-01T00:15:00Z", "2025-01-01T00:30:00Z"}},
	    /* the docs' example: 1/10 = minutes 1, 11, 21, ... */
	    {"cron(1/10 * * * ? *)",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2025-01-01T00:01:00Z", "2025-01-01T00:11:00Z"}},
	    /* day-of-week 1-7 = SUN-SAT: 2-6 is Monday-Friday */
	    {"cron(0 9 ? * 2-6 *)",
	     NULL,
	     "2025-01-03T09:00:00Z",
	     NULL,
	     {"2025-01-06T09:00:00Z", "2025-01-07T09:00:00Z"}},
	    {"cron(0 9 ? * MON-FRI *)",
	     NULL,
	     "2025-01-03T09:00:00Z",
	     NULL,
	     {"2025-01-06T09:00:00Z", "2025-01-07T09:00:00Z"}},
	    /* 1 = Sunday */
	    {"cron(0 0 ? * 1 *)",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2025-01-05T00:00:00Z", "2025-01-12T00:00:00Z"}},
	    {"cron(0 0 1 JAN,JUL ? *)",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2025-07-01T00:00:00Z", "2026-01-01T00:00:00Z"}},
	    {"cron(0 0 29 2 ? *)", NULL, "2025-01-01T00:00:00Z", NULL, {"2028-02-29T00:00:00Z"}},
	    {"cron(0 0 30 2 ? *)", NULL, "2025-01-01T00:00:00Z", NULL, {NONE}},
	    /* wrapping ranges */
	    {"cron(0 22-2 * * ? *)",
	     NULL,
	     "2025-01-01T02:00:00Z",
	     NULL,
	     {"2025-01-01T22:00:00Z", "2025-01-01T23:00:00Z", "2025-01-02T00:00:00Z",
	      "2025-01-02T01:00:00Z", "2025-01-02T02:00:00Z", "2025-01-02T22:00:00Z"}},
	    {"cron(0 0 ? * FRI-MON *)",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2025-01-03T00:00:00Z", "2025-01-04T00:00:00Z", "2025-01-05T00:00:00Z",
	      "2025-01-06T00:00:00Z", "2025-01-10T00:00:00Z"}},
	    /* NOV-FEB/2 wraps: November, January */
	    {"cron(0 0 ? NOV-FEB/2 * *)",
	     NULL,
	     "2025-02-01T00:00:00Z",
	     NULL,
	     {"2025-11-01T00:00:00Z", "2025-11-02T00:00:00Z"}},
	    {"cron(0 0 ? NOV-FEB/2 * *)",
	     NULL,
	     "2025-11-30T00:00:00Z",
	     NULL,
	     {"2026-01-01T00:00:00Z"}},
	};
	CHECK(t);
}

Test(schedule, aws_cron_L_W_hash)
{
	/* Month ends of 2025: Jan 31 Fri, Feb 28 Fri, Mar 31 Mon, Apr 30 Wed, May 31 Sat,
	 * Jun 30 Mon, Jul 31 Thu, Aug 31 Sun, Sep 30 Tue, Oct 31 Fri, Nov 30 Sun, Dec 31
	 * Wed. Firsts: Feb 1 Sat, Mar 1 Sat, Apr 1 Tue, May 1 Thu, Jun 1 Sun. */
	static const struct fire_case t[] = {
	    /* L = last day of the month, across month ends and a leap February */
	    {"cron(0 5 L * ? *)",
	     NULL,
	     "2025-01-31T05:00:00Z",
	     NULL,
	     {"2025-02-28T05:00:00Z", "2025-03-31T05:00:00Z", "2025-04-30T05:00:00Z"}},
	    {"cron(0 5 L * ? *)", NULL, "2028-01-31T05:00:00Z", NULL, {"2028-02-29T05:00:00Z"}},
	    {"cron(0 0 L 12 ? *)",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2025-12-31T00:00:00Z", "2026-12-31T00:00:00Z"}},
	    /* LW = last weekday: May 31 Sat -> 30, Aug 31 Sun -> 29 */
	    {"cron(0 0 LW * ? *)",
	     NULL,
	     "2025-04-30T00:00:00Z",
	     NULL,
	     {"2025-05-30T00:00:00Z", "2025-06-30T00:00:00Z", "2025-07-31T00:00:00Z",
	      "2025-08-29T00:00:00Z"}},
	    /* 15W: Feb 15 and Mar 15 are Saturdays -> the Fridays before */
	    {"cron(0 0 15W * ? *)",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2025-01-15T00:00:00Z", "2025-02-14T00:00:00Z", "2025-03-14T00:00:00Z",
	      "2025-04-15T00:00:00Z"}},
	    /* 1W never leaves the month: Sat Feb 1 -> Mon Feb 3, Sat Mar 1 -> Mon Mar 3,
	     * Sun Jun 1 -> Mon Jun 2 */
	    {"cron(0 0 1W * ? *)",
	     NULL,
	     "2025-01-15T00:00:00Z",
	     NULL,
	     {"2025-02-03T00:00:00Z", "2025-03-03T00:00:00Z", "2025-04-01T00:00:00Z",
	      "2025-05-01T00:00:00Z", "2025-06-02T00:00:00Z"}},
	    /* 31W: Sun Aug 31 -> Fri Aug 29 (not Sep 1); months without a 31st skip */
	    {"cron(0 0 31W * ? *)",
	     NULL,
	     "2025-07-01T00:00:00Z",
	     NULL,
	     {"2025-07-31T00:00:00Z", "2025-08-29T00:00:00Z", "2025-10-31T00:00:00Z",
	      "2025-12-31T00:00:00Z"}},
	    /* L alone in day-of-week = the last day of the week, Saturday */
	    {"cron(0 0 ? * L *)",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2025-01-04T00:00:00Z", "2025-01-11T00:00:00Z"}},
	    /* 6L = last Friday (the docs' example) */
	    {"cron(15 10 ? * 6L *)",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2025-01-31T10:15:00Z", "2025-02-28T10:15:00Z", "2025-03-28T10:15:00Z",
	      "2025-04-25T10:15:00Z"}},
	    /* 5L = last Thursday */
	    {"cron(0 0 ? * 5L *)",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2025-01-30T00:00:00Z", "2025-02-27T00:00:00Z", "2025-03-27T00:00:00Z"}},
	    /* 3#2 = second Tuesday */
	    {"cron(0 0 ? * 3#2 *)",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2025-01-14T00:00:00Z", "2025-02-11T00:00:00Z", "2025-03-11T00:00:00Z"}},
	    {"cron(0 0 ? * TUE#2 *)",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2025-01-14T00:00:00Z", "2025-02-11T00:00:00Z"}},
	    /* 6#5 = fifth Friday: only in months with five (Jan, May, Aug 2025) */
	    {"cron(0 0 ? * 6#5 *)",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2025-01-31T00:00:00Z", "2025-05-30T00:00:00Z", "2025-08-29T00:00:00Z"}},
	};
	CHECK(t);
}

Test(schedule, aws_cron_year_field)
{
	static const struct fire_case t[] = {
	    {"cron(0 0 1 1 ? 2030)",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2030-01-01T00:00:00Z", NONE}},
	    {"cron(0 0 1 1 ? 2025-2026)",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2026-01-01T00:00:00Z", NONE}},
	    {"cron(0 0 1 1 ? 2020)", NULL, "2025-01-01T00:00:00Z", NULL, {NONE}},
	    {"cron(0 0 1 1 ? 2030/10)",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2030-01-01T00:00:00Z", "2040-01-01T00:00:00Z"}},
	    {"cron(0 0 1 1 ? 2199)",
	     "America/New_York",
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2199-01-01T05:00:00Z", NONE}},
	    /* '*' in the year is 1970-2199 */
	    {"cron(0 0 1 1 ? *)", NULL, "2199-06-01T00:00:00Z", NULL, {NONE}},
	    {"cron(0 0 1 1 ? *)", NULL, "1960-06-01T00:00:00Z", NULL, {"1970-01-01T00:00:00Z"}},
	};
	CHECK(t);
}

/* ---------------------------------------------------------------------------------- */
/* rate() and at()                                                                     */

Test(schedule, rate)
{
	static const struct fire_case t[] = {
	    {"rate(5 minutes)",
	     NULL,
	     "2025-01-01T00:07:00Z",
	     "2025-01-01T00:00:00Z",
	     {"2025-01-01T00:10:00Z", "2025-01-01T00:15:00Z"}},
	    /* before the start: the start itself is the first fire */
	    {"rate(1 hour)",
	     NULL,
	     "2024-12-31T00:00:00Z",
	     "2025-01-01T00:00:00Z",
	     {"2025-01-01T00:00:00Z", "2025-01-01T01:00:00Z", "2025-01-01T02:00:00Z"}},
	    {"rate(1 minute)",
	     NULL,
	     "2025-01-01T00:00:30Z",
	     "2025-01-01T00:00:30Z",
	     {"2025-01-01T00:01:30Z", "2025-01-01T00:02:30Z"}},
	    {"rate(2 hours)",
	     NULL,
	     "2025-01-01T03:00:00Z",
	     "2025-01-01T00:00:00Z",
	     {"2025-01-01T04:00:00Z", "2025-01-01T06:00:00Z"}},
	    {"rate(7 days)",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     "2025-01-01T00:00:00Z",
	     {"2025-01-08T00:00:00Z", "2025-01-15T00:00:00Z"}},
	    /* absolute: 24 h apart across New York's spring forward */
	    {"rate(1 day)",
	     "America/New_York",
	     "2025-03-08T12:00:00Z",
	     "2025-03-08T12:00:00Z",
	     {"2025-03-09T12:00:00Z", "2025-03-10T12:00:00Z"}},
	    {"rate( 3 days )",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     "2025-01-01T00:00:00Z",
	     {"2025-01-04T00:00:00Z"}},
	};
	CHECK(t);
}

Test(schedule, at)
{
	static const struct fire_case t[] = {
	    {"at(2025-06-01T09:00:00)",
	     NULL,
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2025-06-01T09:00:00Z", NONE}},
	    /* wall clock of the zone: EDT = UTC-4 */
	    {"at(2025-06-01T09:00:00)",
	     "America/New_York",
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2025-06-01T13:00:00Z", NONE}},
	    /* already past / exactly now */
	    {"at(2025-06-01T09:00:00)", NULL, "2025-06-01T09:00:00Z", NULL, {NONE}},
	    {"at(2020-06-01T09:00:00)", NULL, "2025-01-01T00:00:00Z", NULL, {NONE}},
	    /* skipped by spring forward: never fires (EventBridge) */
	    {"at(2025-03-09T02:30:00)", "America/New_York", "2025-01-01T00:00:00Z", NULL, {NONE}},
	    /* repeated by fall back: once, the first (EDT) occurrence */
	    {"at(2025-11-02T01:30:00)",
	     "America/New_York",
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2025-11-02T05:30:00Z", NONE}},
	    {"at(2025-11-02T01:30:00)", "America/New_York", "2025-11-02T05:30:00Z", NULL, {NONE}},
	    {"at(2025-04-06T02:30:00)",
	     "Australia/Sydney",
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2025-04-05T15:30:00Z", NONE}},
	    /* far away */
	    {"at(9999-12-31T23:59:59)",
	     NULL,
	     "1970-01-01T00:00:00Z",
	     NULL,
	     {"9999-12-31T23:59:59Z", NONE}},
	    {"at(2400-02-29T12:00:00)",
	     "Europe/Paris",
	     "2025-01-01T00:00:00Z",
	     NULL,
	     {"2400-02-29T11:00:00Z", NONE}},
	};
	CHECK(t);
}

/* ---------------------------------------------------------------------------------- */
/* Daylight saving time: cronie semantics for cron/cron6                               */

Test(schedule, dst_new_york_cronie)
{
	/* EST = UTC-5 until 2025-03-09 07:00Z (02:00 EST -> 03:00 EDT), EDT = UTC-4 until
	 * 2025-11-02 06:00Z (02:00 EDT -> 01:00 EST, 01:00-01:59 comes twice). */
	static const struct fire_case t[] = {
	    /* fixed 02:30: skipped on Mar 9 -> runs at the jump, 03:00 EDT */
	    {"30 2 * * *",
	     "America/New_York",
	     "2025-03-07T00:00:00Z",
	     NULL,
	     {"2025-03-07T07:30:00Z", "2025-03-08T07:30:00Z", "2025-03-09T07:00:00Z",
	      "2025-03-10T06:30:00Z"}},
	    /* fixed 02:30 on Nov 2 is not ambiguous (02:30 EST) */
	    {"30 2 * * *",
	     "America/New_York",
	     "2025-11-01T00:00:00Z",
	     NULL,
	     {"2025-11-01T06:30:00Z", "2025-11-02T07:30:00Z", "2025-11-03T07:30:00Z"}},
	    /* fixed 01:30 on Nov 2: once, the first pass (EDT) */
	    {"30 1 * * *",
	     "America/New_York",
	     "2025-11-01T12:00:00Z",
	     NULL,
	     {"2025-11-02T05:30:00Z", "2025-11-03T06:30:00Z"}},
	    /* fixed 02:00 (the start of the gap) also runs at 03:00 EDT */
	    {"0 2 * * *",
	     "America/New_York",
	     "2025-03-08T12:00:00Z",
	     NULL,
	     {"2025-03-09T07:00:00Z", "2025-03-10T06:00:00Z"}},
	    /* wildcard: follows the wall clock, no catch-up of 02:00-02:45 */
	    {"*/15 * * * *",
	     "America/New_York",
	     "2025-03-09T06:30:00Z",
	     NULL,
	     {"2025-03-09T06:45:00Z", "2025-03-09T07:00:00Z", "2025-03-09T07:15:00Z"}},
	    /* wildcard: both passes of 01:00-01:59 on Nov 2 */
	    {"*/15 * * * *",
	     "America/New_York",
	     "2025-11-02T05:30:00Z",
	     NULL,
	     {"2025-11-02T05:45:00Z", "2025-11-02T06:00:00Z", "2025-11-02T06:15:00Z",
	      "2025-11-02T06:30:00Z", "2025-11-02T06:45:00Z", "2025-11-02T07:00:00Z"}},
	    /* hour '*' makes 30 * * * * a wildcard job: 01:30 EST, then 03:30 EDT */
	    {"30 * * * *",
	     "America/New_York",
	     "2025-03-09T06:00:00Z",
	     NULL,
	     {"2025-03-09T06:30:00Z", "2025-03-09T07:30:00Z", "2025-03-09T08:30:00Z"}},
	    /* ... and 00:30 EDT, 01:30 EDT, 01:30 EST, 02:30 EST */
	    {"30 * * * *",
	     "America/New_York",
	     "2025-11-02T04:00:00Z",
	     NULL,
	     {"2025-11-02T04:30:00Z", "2025-11-02T05:30:00Z", "2025-11-02T06:30:00Z",
	      "2025-11-02T07:30:00Z"}},
	    /* fixed hour range: 01:00 EST, 02:00 caught up at 03:00 EDT together with
	     * 03:00 itself (one fire), then 01:00 EDT on Mar 10 */
	    {"0 1-3 * * *",
	     "America/New_York",
	     "2025-03-09T05:00:00Z",
	     NULL,
	     {"2025-03-09T06:00:00Z", "2025-03-09T07:00:00Z", "2025-03-10T05:00:00Z"}},
	    /* 01:00 EDT, (01:00 EST suppressed), 02:00 EST, 03:00 EST */
	    {"0 1-3 * * *",
	     "America/New_York",
	     "2025-11-02T04:00:00Z",
	     NULL,
	     {"2025-11-02T05:00:00Z", "2025-11-02T07:00:00Z", "2025-11-02T08:00:00Z",
	      "2025-11-03T06:00:00Z"}},
	    /* wildcard hour range (minute starts with '*') */
	    {"*/30 1-3 * * *",
	     "America/New_York",
	     "2025-03-09T05:00:00Z",
	     NULL,
	     {"2025-03-09T06:00:00Z", "2025-03-09T06:30:00Z", "2025-03-09T07:00:00Z",
	      "2025-03-09T07:30:00Z", "2025-03-10T05:00:00Z"}},
	    {"*/30 1-3 * * *",
	     "America/New_York",
	     "2025-11-02T04:00:00Z",
	     NULL,
	     {"2025-11-02T05:00:00Z", "2025-11-02T05:30:00Z", "2025-11-02T06:00:00Z",
	      "2025-11-02T06:30:00Z", "2025-11-02T07:00:00Z", "2025-11-02T07:30:00Z",
	      "2025-11-02T08:00:00Z", "2025-11-02T08:30:00Z"}},
	    /* @hourly is a wildcard job in cronie (HR_STAR) */
	    {"@hourly",
	     "America/New_York",
	     "2025-11-02T04:30:00Z",
	     NULL,
	     {"2025-11-02T05:00:00Z", "2025-11-02T06:00:00Z", "2025-11-02T07:00:00Z"}},
	    /* seconds field, fixed: the catch-up is at the jump, 07:00:00Z */
	    {"15 30 2 * * *",
	     "America/New_York",
	     "2025-03-08T12:00:00Z",
	     NULL,
	     {"2025-03-09T07:00:00Z", "2025-03-10T06:30:15Z"}},
	    /* after the jump instant itself, the catch-up is past */
	    {"30 2 * * *",
	     "America/New_York",
	     "2025-03-09T07:00:00Z",
	     NULL,
	     {"2025-03-10T06:30:00Z"}},
	    /* far past the last transition stored in the file: the footer rule
	     * EST5EDT,M3.2.0,M11.1.0. 2040: Jan 1 is a Sunday, Mar 11 = second Sunday,
	     * Nov 4 = first Sunday. */
	    {"30 2 * * *",
	     "America/New_York",
	     "2040-03-10T12:00:00Z",
	     NULL,
	     {"2040-03-11T07:00:00Z", "2040-03-12T06:30:00Z"}},
	    {"*/30 * * * *",
	     "America/New_York",
	     "2040-11-04T05:00:00Z",
	     NULL,
	     {"2040-11-04T05:30:00Z", "2040-11-04T06:00:00Z", "2040-11-04T06:30:00Z",
	      "2040-11-04T07:00:00Z"}},
	    {"30 1 * * *",
	     "America/New_York",
	     "2040-11-03T12:00:00Z",
	     NULL,
	     {"2040-11-04T05:30:00Z", "2040-11-05T06:30:00Z"}},
	};
	CHECK(t);
}

Test(schedule, dst_sydney_cronie)
{
	/* AEDT = UTC+11 until 2025-04-05 16:00Z (03:00 AEDT -> 02:00 AEST, 02:00-02:59
	 * twice), AEST = UTC+10 until 2025-10-04 16:00Z (02:00 AEST -> 03:00 AEDT). */
	static const struct fire_case t[] = {
	    {"30 2 * * *",
	     "Australia/Sydney",
	     "2025-04-04T12:00:00Z",
	     NULL,
	     {"2025-04-04T15:30:00Z", "2025-04-05T15:30:00Z", "2025-04-06T16:30:00Z"}},
	    {"30 2 * * *",
	     "Australia/Sydney",
	     "2025-10-03T12:00:00Z",
	     NULL,
	     {"2025-10-03T16:30:00Z", "2025-10-04T16:00:00Z", "2025-10-05T15:30:00Z"}},
	    {"*/15 * * * *",
	     "Australia/Sydney",
	     "2025-04-05T15:30:00Z",
	     NULL,
	     {"2025-04-05T15:45:00Z", "2025-04-05T16:00:00Z", "2025-04-05T16:15:00Z"}},
	    {"*/15 * * * *",
	     "Australia/Sydney",
	     "2025-10-04T15:30:00Z",
	     NULL,
	     {"2025-10-04T15:45:00Z", "2025-10-04T16:00:00Z", "2025-10-04T16:15:00Z"}},
	    /* 01:30 AEDT, 02:30 AEDT, 02:30 AEST, 03:30 AEST */
	    {"30 * * * *",
	     "Australia/Sydney",
	     "2025-04-05T14:00:00Z",
	     NULL,
	     {"2025-04-05T14:30:00Z", "2025-04-05T15:30:00Z", "2025-04-05T16:30:00Z",
	      "2025-04-05T17:30:00Z"}},
	    /* 01:30 AEST, then 03:30 AEDT (02:30 does not exist) */
	    {"30 * * * *",
	     "Australia/Sydney",
	     "2025-10-04T15:00:00Z",
	     NULL,
	     {"2025-10-04T15:30:00Z", "2025-10-04T16:30:00Z"}},
	    /* fixed 02:00 and 03:00: 02:00 AEDT, (02:00 AEST suppressed), 03:00 AEST */
	    {"0 2-3 * * *",
	     "Australia/Sydney",
	     "2025-04-05T14:00:00Z",
	     NULL,
	     {"2025-04-05T15:00:00Z", "2025-04-05T17:00:00Z"}},
	    /* 02:00 caught up at the jump (= 03:00 AEDT), then 02:00 AEDT on Oct 6 */
	    {"0 2-3 * * *",
	     "Australia/Sydney",
	     "2025-10-04T14:00:00Z",
	     NULL,
	     {"2025-10-04T16:00:00Z", "2025-10-05T15:00:00Z"}},
	};
	CHECK(t);
}

Test(schedule, dst_other_zones_cronie)
{
	static const struct fire_case t[] = {
	    /* Lord Howe: 30-minute DST. Oct 5 2025 02:00 +10:30 -> 02:30 +11 at 15:30Z */
	    {"*/15 * * * *",
	     "Australia/Lord_Howe",
	     "2025-10-04T15:00:00Z",
	     NULL,
	     {"2025-10-04T15:15:00Z", "2025-10-04T15:30:00Z", "2025-10-04T15:45:00Z"}},
	    {"15 2 * * *",
	     "Australia/Lord_Howe",
	     "2025-10-04T12:00:00Z",
	     NULL,
	     {"2025-10-04T15:30:00Z", "2025-10-05T15:15:00Z"}},
	    /* Apr 6 2025 02:00 +11 -> 01:30 +10:30 at 15:00Z */
	    {"*/15 * * * *",
	     "Australia/Lord_Howe",
	     "2025-04-05T14:15:00Z",
	     NULL,
	     {"2025-04-05T14:30:00Z", "2025-04-05T14:45:00Z", "2025-04-05T15:00:00Z",
	      "2025-04-05T15:15:00Z", "2025-04-05T15:30:00Z"}},
	    {"45 1 * * *",
	     "Australia/Lord_Howe",
	     "2025-04-05T12:00:00Z",
	     NULL,
	     {"2025-04-05T14:45:00Z", "2025-04-06T15:15:00Z"}},
	    /* Santiago: the jump is at 24:00 of a Saturday. Sep 7 2025 00:00 -04 -> 01:00
	     * -03 at 04:00Z: midnight caught up at the jump. */
	    {"0 0 * * *",
	     "America/Santiago",
	     "2025-09-05T12:00:00Z",
	     NULL,
	     {"2025-09-06T04:00:00Z", "2025-09-07T04:00:00Z", "2025-09-08T03:00:00Z"}},
	    /* Apr 6 2025 00:00 -03 -> Apr 5 23:00 -04 at 03:00Z */
	    {"0 0 * * *",
	     "America/Santiago",
	     "2025-04-04T12:00:00Z",
	     NULL,
	     {"2025-04-05T03:00:00Z", "2025-04-06T04:00:00Z"}},
	    /* Apr 5 23:30 -03 once (the -04 pass is suppressed), then Apr 6 23:30 -04 */
	    {"30 23 * * *",
	     "America/Santiago",
	     "2025-04-05T12:00:00Z",
	     NULL,
	     {"2025-04-06T02:30:00Z", "2025-04-07T03:30:00Z"}},
	    /* Apia skipped 2011-12-30 (23:59:59 -10 -> Dec 31 00:00 +14 at 10:00Z): a jump
	     * of a day is "the clock was set" for cronie, so no catch-up. */
	    {"0 12 * * *",
	     "Pacific/Apia",
	     "2011-12-29T00:00:00Z",
	     NULL,
	     {"2011-12-29T22:00:00Z", "2011-12-30T22:00:00Z"}},
	    /* Sitka 1867: LMT +14:58:47 -> -9:01:13 at 00:31:13Z on Oct 19, one day back;
	     * a fixed job runs again in the repeated day (clock set, not DST). */
	    {"0 12 * * *",
	     "America/Sitka",
	     "1867-10-17T00:00:00Z",
	     NULL,
	     {"1867-10-17T21:01:13Z", "1867-10-18T21:01:13Z", "1867-10-19T21:01:13Z",
	      "1867-10-20T21:01:13Z"}},
	};
	CHECK(t);
}

/* ---------------------------------------------------------------------------------- */
/* Daylight saving time: EventBridge semantics for cron()                              */

Test(schedule, dst_eventbridge)
{
	static const struct fire_case t[] = {
	    /* a skipped time is skipped */
	    {"cron(30 2 * * ? *)",
	     "America/New_York",
	     "2025-03-07T12:00:00Z",
	     NULL,
	     {"2025-03-08T07:30:00Z", "2025-03-10T06:30:00Z"}},
	    /* a repeated time runs once, the first occurrence */
	    {"cron(30 1 * * ? *)",
	     "America/New_York",
	     "2025-11-01T12:00:00Z",
	     NULL,
	     {"2025-11-02T05:30:00Z", "2025-11-03T06:30:00Z"}},
	    /* every 15 minutes: the second pass of 01:00-01:45 is skipped too */
	    {"cron(0/15 * * * ? *)",
	     "America/New_York",
	     "2025-11-02T05:30:00Z",
	     NULL,
	     {"2025-11-02T05:45:00Z", "2025-11-02T07:00:00Z", "2025-11-02T07:15:00Z"}},
	    {"cron(0/15 * * * ? *)",
	     "America/New_York",
	     "2025-03-09T06:30:00Z",
	     NULL,
	     {"2025-03-09T06:45:00Z", "2025-03-09T07:00:00Z"}},
	    /* 01:00 EST, (02:00 skipped), 03:00 EDT */
	    {"cron(0 1-3 * * ? *)",
	     "America/New_York",
	     "2025-03-09T05:00:00Z",
	     NULL,
	     {"2025-03-09T06:00:00Z", "2025-03-09T07:00:00Z", "2025-03-10T05:00:00Z"}},
	    {"cron(0 1-3 * * ? *)",
	     "America/New_York",
	     "2025-11-02T04:00:00Z",
	     NULL,
	     {"2025-11-02T05:00:00Z", "2025-11-02T07:00:00Z", "2025-11-02T08:00:00Z"}},
	    /* second Sunday of March 02:30 is in the gap every year since 2007: never */
	    {"cron(30 2 ? 3 1#2 *)", "America/New_York", "2025-01-01T00:00:00Z", NULL, {NONE}},
	    {"cron(30 2 * * ? *)",
	     "Australia/Sydney",
	     "2025-04-05T12:00:00Z",
	     NULL,
	     {"2025-04-05T15:30:00Z", "2025-04-06T16:30:00Z"}},
	    {"cron(30 2 * * ? *)",
	     "Australia/Sydney",
	     "2025-10-04T12:00:00Z",
	     NULL,
	     {"2025-10-05T15:30:00Z"}},
	    {"cron(15 2 * * ? *)",
	     "Australia/Lord_Howe",
	     "2025-10-04T12:00:00Z",
	     NULL,
	     {"2025-10-05T15:15:00Z"}},
	    {"cron(0 12 * * ? *)",
	     "Pacific/Apia",
	     "2011-12-29T00:00:00Z",
	     NULL,
	     {"2011-12-29T22:00:00Z", "2011-12-30T22:00:00Z"}},
	    /* 2040, from the footer rule */
	    {"cron(30 1 * * ? *)",
	     "America/New_York",
	     "2040-11-03T12:00:00Z",
	     NULL,
	     {"2040-11-04T05:30:00Z", "2040-11-05T06:30:00Z"}},
	};
	CHECK(t);
}

/* ---------------------------------------------------------------------------------- */
/* Errors                                                                              */

struct error_case {
	const char *expr;
	const char *tz;
	const char *message;
};

static const struct error_case error_cases[] = {
    {"", NULL, "empty expression"},
    {" \t ", NULL, "empty expression"},
    {"* * * *", NULL,
     "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (second first), "
     "found 4"},
    {"0 0 12 * * ? 2025", NULL,
     "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (second first), "
     "found 7"},
    {"61 * * * *", NULL, "minute: 61 is out of range (0-59)"},
    {"* 24 * * *", NULL, "hour: 24 is out of range (0-23)"},
    {"* * 0 * *", NULL, "day-of-month: 0 is out of range (1-31)"},
    {"* * 32 * *", NULL, "day-of-month: 32 is out of range (1-31)"},
    {"* * * 13 *", NULL, "month: 13 is out of range (1-12 or JAN-DEC)"},
    {"* * * * 8", NULL, "day-of-week: 8 is out of range (0-7 or SUN-SAT)"},
    {"60 * * * * *", NULL, "second: 60 is out of range (0-59)"},
    {"* * * * FOO", NULL, "day-of-week: unknown name \"FOO\""},
    {"* * * * MONDAY", NULL, "day-of-week: unknown name \"MONDAY\""},
    {"* * * FOO *", NULL, "month: unknown name \"FOO\""},
    {"a * * * *", NULL, "minute: \"a\" is not a number"},
    {"* * Wed * *", NULL, "day-of-month: \"Wed\" is not a number"},
    {"*/0 * * * *", NULL, "minute: step 0 is out of range (1-60)"},
    {"*/61 * * * *", NULL, "minute: step 61 is out of range (1-60)"},
    {"5-2 * * * *", NULL, "minute: range \"5-2\" is backwards (start after end)"},
    {"* * * * MON-SUN", NULL, "day-of-week: range \"MON-SUN\" is backwards (start after end)"},
    {"1,,2 * * * *", NULL, "minute: empty element in list \"1,,2\""},
    {"1, * * * *", NULL, "minute: list ends with ','"},
    {"5- * * * *", NULL, "minute: missing value in \"5-\""},
    {"*/ * * * *", NULL, "minute: missing step after '/' in \"*/\""},
    {"*x * * * *", NULL, "minute: unexpected 'x' in \"*x\""},
    {"1234567890 * * * *", NULL, "minute: number in \"1234567890\" is too long"},
    {"0 0 ? * *", NULL,
     "day-of-month: '?' is only supported in cron(...) expressions (EventBridge syntax); "
     "standard cron has numbers, names, '*', ',', '-' and '/'"},
    {"0 0 L * *", NULL,
     "day-of-month: 'L' is only supported in cron(...) expressions (EventBridge syntax); "
     "standard cron has numbers, names, '*', ',', '-' and '/'"},
    {"0 0 15W * *", NULL,
     "day-of-month: 'W' is only supported in cron(...) expressions (EventBridge syntax); "
     "standard cron has numbers, names, '*', ',', '-' and '/'"},
    {"0 0 * * 5L", NULL,
     "day-of-week: 'L' is only supported in cron(...) expressions (EventBridge syntax); "
     "standard cron has numbers, names, '*', ',', '-' and '/'"},
    {"0 0 * * 3#2", NULL,
     "day-of-week: '#' is only supported in cron(...) expressions (EventBridge syntax); "
     "standard cron has numbers, names, '*', ',', '-' and '/'"},
    {"@foo", NULL,
     "unknown macro \"@foo\": use @yearly, @annually, @monthly, @weekly, @daily, @midnight "
     "or @hourly"},
    {"@reboot", NULL, "@reboot is not a schedule: it has no fire instants"},
    {"@every 5m", NULL, "@every is not supported: use rate(N minutes)"},
    {"foo(1)", NULL,
     "unknown expression \"foo(...)\": expected cron(...), rate(...), at(...) or 5 or 6 cron "
     "fields"},
    {"CRON(0 12 * * ? *)", NULL,
     "unknown expression \"CRON(...)\": expected cron(...), rate(...), at(...) or 5 or 6 "
     "cron fields"},
    /* cron() */
    {"cron(0 12 * * * *)", NULL,
     "cron(): day-of-month and day-of-week cannot both be specified; use ? in one of them"},
    {"cron(0 12 1 * MON *)", NULL,
     "cron(): day-of-month and day-of-week cannot both be specified; use ? in one of them"},
    {"cron(0 12 ? * ? *)", NULL,
     "cron(): day-of-month and day-of-week cannot both be ?; give one of them a value or *"},
    {"cron(0 12 * *)", NULL,
     "cron(): expected 6 fields (minute hour day-of-month month day-of-week year), found 4"},
    {"cron(0 12 * * ? *", NULL, "cron(): missing ')' at the end"},
    {"cron(0 12 (* * ? *)", NULL, "cron(): unexpected parenthesis inside cron(...)"},
    {"cron(61 12 * * ? *)", NULL, "cron() minute: 61 is out of range (0-59)"},
    {"cron(0 24 * * ? *)", NULL, "cron() hour: 24 is out of range (0-23)"},
    {"cron(0 12 ? * 0 *)", NULL, "cron() day-of-week: 0 is out of range (1-7 or SUN-SAT)"},
    {"cron(0 12 ? * 8 *)", NULL, "cron() day-of-week: 8 is out of range (1-7 or SUN-SAT)"},
    {"cron(0 12 ? * FOO *)", NULL, "cron() day-of-week: unknown name \"FOO\""},
    {"cron(0 12 * * ? 1969)", NULL, "cron() year: 1969 is out of range (1970-2199)"},
    {"cron(0 12 * * ? 2200)", NULL, "cron() year: 2200 is out of range (1970-2199)"},
    {"cron(0 12 * * ? 2030-2025)", NULL,
     "cron() year: range \"2030-2025\" is backwards (start after end)"},
    {"cron(? 12 * * ? *)", NULL,
     "cron() minute: '?' is only allowed in day-of-month or day-of-week"},
    {"cron(0 12 ? * 3#6 *)", NULL,
     "cron() day-of-week: '#' needs a week 1-5 after it (3#2 = second Tuesday), got \"3#6\""},
    {"cron(0 12 ? * 3#0 *)", NULL,
     "cron() day-of-week: '#' needs a week 1-5 after it (3#2 = second Tuesday), got \"3#0\""},
    {"cron(0 12 ? * 3#1,6#3 *)", NULL,
     "cron() day-of-week: '#' allows only one expression in the field, got \"3#1,6#3\""},
    {"cron(0 12 ? * 1-2L *)", NULL,
     "cron() day-of-week: 'L' takes a single weekday (6L = last Friday), got \"1-2L\""},
    {"cron(0 12 ? * */2 *)", NULL, "cron() day-of-week: '/' is not allowed in this field"},
    {"cron(0 12 1-5W * ? *)", NULL,
     "cron() day-of-month: 'W' takes a single day (1W-31W) or LW, got \"1-5W\""},
    {"cron(0 12 32W * ? *)", NULL, "cron() day-of-month: 32 is out of range (1-31)"},
    {"cron(0 12 L-3 * ? *)", NULL,
     "cron() day-of-month: 'L', 'LW', 'nW' and '?' must stand alone, got \"L-3\""},
    {"cron(0 12 1,L * ? *)", NULL,
     "cron() day-of-month: 'L', 'LW', 'nW' and '?' must stand alone, got \"1,L\""},
    /* rate() */
    {"rate(5 minute)", NULL, "rate: value 5 takes the plural unit: rate(5 minutes)"},
    {"rate(1 minutes)", NULL, "rate: value 1 takes the singular unit: rate(1 minute)"},
    {"rate(1 days)", NULL, "rate: value 1 takes the singular unit: rate(1 day)"},
    {"rate(2 hour)", NULL, "rate: value 2 takes the plural unit: rate(2 hours)"},
    {"rate(5 weeks)", NULL, "rate: unit must be minute(s), hour(s) or day(s), got \"weeks\""},
    {"rate(5 Minutes)", NULL, "rate: unit must be minute(s), hour(s) or day(s), got \"Minutes\""},
    {"rate(0 minutes)", NULL, "rate: value must be at least 1"},
    {"rate(-5 minutes)", NULL, "rate: value must be a positive whole number, got \"-5\""},
    {"rate(1.5 hours)", NULL, "rate: value must be a positive whole number, got \"1.5\""},
    {"rate(5)", NULL, "rate: expected rate(value unit), e.g. rate(5 minutes), got rate(5)"},
    {"rate()", NULL, "rate: expected rate(value unit), e.g. rate(5 minutes), got rate()"},
    {"rate(5 minutes", NULL, "rate: missing ')' at the end"},
    {"rate(99999999 minutes)", NULL, "rate: value \"99999999\" is too large (max 1000000)"},
    /* at() */
    {"at(2025-13-01T00:00:00)", NULL, "at: month 13 is out of range (01-12)"},
    {"at(2025-02-29T00:00:00)", NULL, "at: day 29 is out of range for 2025-02 (01-28)"},
    {"at(2025-04-31T00:00:00)", NULL, "at: day 31 is out of range for 2025-04 (01-30)"},
    {"at(2025-01-01T24:00:00)", NULL, "at: time 24:00:00 is out of range (00:00:00-23:59:59)"},
    {"at(2025-01-01 00:00:00)", NULL,
     "at: expected at(yyyy-mm-ddThh:mm:ss), got at(2025-01-01 00:00:00)"},
    {"at(2025-01-01T00:00)", NULL,
     "at: expected at(yyyy-mm-ddThh:mm:ss), got at(2025-01-01T00:00)"},
    {"at(2025-01-01T00:00:00Z)", NULL,
     "at: expected at(yyyy-mm-ddThh:mm:ss), got at(2025-01-01T00:00:00Z)"},
    {"at(0000-01-01T00:00:00)", NULL, "at: year 0000 is out of range (0001-9999)"},
    {"at(2025-01-01T00:00:00", NULL, "at: missing ')' at the end"},
    /* time zones */
    {"0 0 * * *", "Mars/Base",
     "timezone: unknown zone \"Mars/Base\" (no file " TD_ZONEINFO_DIR "/Mars/Base)"},
    {"0 0 * * *", "../etc/passwd",
     "timezone: invalid zone name \"../etc/passwd\" (expected an IANA name such as "
     "Europe/Paris)"},
    {"0 0 * * *", "/etc/localtime",
     "timezone: invalid zone name \"/etc/localtime\" (expected an IANA name such as "
     "Europe/Paris)"},
    {"0 0 * * *", "America//New_York",
     "timezone: invalid zone name \"America//New_York\" (expected an IANA name such as "
     "Europe/Paris)"},
    {"0 0 * * *", "New York",
     "timezone: invalid zone name \"New York\" (expected an IANA name such as "
     "Europe/Paris)"},
    {"0 0 * * *", "America",
     "timezone: unknown zone \"America\" (" TD_ZONEINFO_DIR "/America is not a zone file)"},
    {"0 0 * * *", "zone1970.tab",
     "timezone: \"zone1970.tab\" is not usable TZif data: no TZif magic"},
};

Test(schedule, error_messages)
{
	for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
		const struct error_case *c = &error_cases[i];
		char err[512] = "unset";
		struct td_schedule *s = td_schedule_parse(c->expr, c->tz, err, sizeof(err));

		cr_expect_null(s, "\"%s\" parsed but should fail with: %s", c->expr, c->message);
		td_schedule_destroy(s);
		cr_expect_str_eq(err, c->message, "\"%s\" [%s]:\n got:  %s\n want: %s", c->expr,
				 c->tz != NULL ? c->tz : "UTC", err, c->message);
	}
}

Test(schedule, error_buffer_edges)
{
	char err[300], small[8];
	char *long_expr = malloc(TD_SCHEDULE_EXPR_MAX + 100);

	cr_assert_not_null(long_expr);
	memset(long_expr, '*', TD_SCHEDULE_EXPR_MAX + 99);
	long_expr[TD_SCHEDULE_EXPR_MAX + 99] = '\0';
	cr_expect_null(td_schedule_parse(long_expr, NULL, err, sizeof(err)));
	cr_expect_str_eq(err, "expression is too long (1123 bytes, max 1024)");
	free(long_expr);

	/* truncated, still terminated */
	cr_expect_null(td_schedule_parse("61 * * * *", NULL, small, sizeof(small)));
	cr_expect_str_eq(small, "minute:");
	/* no buffer at all */
	cr_expect_null(td_schedule_parse("61 * * * *", NULL, NULL, 0));
	cr_expect_null(td_schedule_parse(NULL, NULL, err, sizeof(err)));
	cr_expect_str_eq(err, "empty expression");
	/* quoted user text is cut and made printable */
	cr_expect_null(td_schedule_parse("* * * * ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMNOP", NULL,
					 err, sizeof(err)));
	cr_expect_str_eq(
	    err, "day-of-week: unknown name \"ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMN...\"");
	cr_expect_null(td_schedule_parse("1\x01 * * * *", NULL, err, sizeof(err)));
	cr_expect_str_eq(err, "minute: unexpected byte 0x01 in \"1?\"");
}

/* ---------------------------------------------------------------------------------- */
/* Accessors and arguments                                                             */

Test(schedule, kinds_and_accessors)
{
	static const struct {
		const char *expr, *tz, *kind, *zone;
		long long period;
	} t[] = {
	    {"* * * * *", NULL, "cron", "UTC", 0},
	    {"@hourly", "", "cron", "UTC", 0},
	    {"* * * * * *", "UTC", "cron6", "UTC", 0},
	    {"cron(0 12 * * ? *)", "Etc/UTC", "aws-cron", "Etc/UTC", 0},
	    {"rate(5 minutes)", "Europe/Paris", "rate", "Europe/Paris", 300},
	    {"rate(1 hour)", NULL, "rate", "UTC", 3600},
	    {"rate(2 days)", NULL, "rate", "UTC", 172800},
	    {"at(2025-01-01T00:00:00)", "Asia/Tokyo", "at", "Asia/Tokyo", 0},
	};
	char err[256];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct td_schedule *s = td_schedule_parse(t[i].expr, t[i].tz, err, sizeof(err));

		cr_assert_not_null(s, "%s: %s", t[i].expr, err);
		cr_expect_str_eq(td_schedule_kind_name(s), t[i].kind, "%s", t[i].expr);
		cr_expect_str_eq(td_schedule_timezone(s), t[i].zone, "%s", t[i].expr);
		cr_expect_eq(td_schedule_rate_period(s), t[i].period, "%s", t[i].expr);
		td_schedule_destroy(s);
	}
	td_schedule_destroy(NULL);
}

Test(schedule, next_arguments_out_of_range)
{
	char err[256];
	long long next = 42;
	struct td_schedule *c = td_schedule_parse("* * * * *", NULL, err, sizeof(err));
	struct td_schedule *r = td_schedule_parse("rate(1 minute)", NULL, err, sizeof(err));

	cr_assert_not_null(c);
	cr_assert_not_null(r);
	cr_expect_eq(td_schedule_next(c, TD_TIME_MAX + 1, 0, &next), -TD_EINVAL);
	cr_expect_eq(td_schedule_next(c, TD_TIME_MIN - 1, 0, &next), -TD_EINVAL);
	cr_expect_eq(td_schedule_next(r, 0, TD_TIME_MAX + 1, &next), -TD_EINVAL);
	cr_expect_eq(next, 42);
	/* nothing after the last representable second */
	cr_expect_eq(td_schedule_next(c, TD_TIME_MAX, 0, &next), -TD_ENOTFOUND);
	cr_expect_eq(td_schedule_next(r, TD_TIME_MAX, 0, &next), -TD_ENOTFOUND);
	/* the first second */
	cr_expect_eq(td_schedule_next(c, TD_TIME_MIN, 0, &next), 0);
	cr_expect_eq(next, TD_TIME_MIN + 60);
	td_schedule_destroy(c);
	td_schedule_destroy(r);
}

/* An impossible expression answers at once, in every zone. */
Test(schedule, never_is_fast, .timeout = 5.0)
{
	static const char *const exprs[] = {
	    "0 0 30 2 *",	  "0 0 31 2,4 *",	 "*/5 * 31 4,6,9,11 *",	 "0 0 0 30 2 *",
	    "cron(0 0 30 2 ? *)", "cron(0 0 31W 2 ? *)", "cron(0 0 1 1 ? 1970)",
	};
	static const char *const zones[] = {NULL, "America/New_York", "Australia/Sydney"};
	char err[256];
	long long next;

	for (size_t z = 0; z < 3; z++) {
		for (size_t i = 0; i < sizeof(exprs) / sizeof(exprs[0]); i++) {
			struct td_schedule *s =
			    td_schedule_parse(exprs[i], zones[z], err, sizeof(err));

			cr_assert_not_null(s, "%s: %s", exprs[i], err);
			for (int k = 0; k < 100; k++)
				cr_expect_eq(
				    td_schedule_next(s, 1735689600LL + k * 86400LL, 0, &next),
				    -TD_ENOTFOUND, "%s", exprs[i]);
			td_schedule_destroy(s);
		}
	}
}

/* ---------------------------------------------------------------------------------- */
/* RFC 3339                                                                            */

Test(schedule, rfc3339_parse)
{
	static const struct {
		const char *text;
		long long secs;
	} ok[] = {
	    {"2025-01-01T00:15:00Z", 1735690500LL},
	    {"2025-01-01t00:15:00z", 1735690500LL},
	    {"2025-01-01 00:15:00Z", 1735690500LL},
	    {"2025-01-01T02:15:00+02:00", 1735690500LL},
	    {"2024-12-31T19:15:00-05:00", 1735690500LL},
	    {"2025-01-01T05:45:00+05:30", 1735690500LL},
	    {"2025-01-01T00:15:00.999999Z", 1735690500LL},
	    {"1970-01-01T00:00:00Z", 0},
	    {"1969-12-31T23:59:59Z", -1},
	    {"1969-12-31T23:59:59.5Z", -1},
	    {"2000-02-29T00:00:00Z", 951782400LL},
	    /* a leap second counts as the next second */
	    {"2016-12-31T23:59:60Z", 1483228800LL},
	    {"0001-01-01T00:00:00Z", TD_TIME_MIN},
	    {"9999-12-31T23:59:59Z", TD_TIME_MAX},
	};
	static const struct {
		const char *text, *message;
	} bad[] = {
	    {"", "invalid RFC 3339 time \"\": expected a digit at position 1"},
	    {"2025-01-01", "invalid RFC 3339 time \"2025-01-01\": expected 'T' between date and "
			   "time at position 11"},
	    {"2025/01/01T00:00:00Z",
	     "invalid RFC 3339 time \"2025/01/01T00:00:00Z\": expected '-' at position 5"},
	    {"2025-01-01T00.00:00Z",
	     "invalid RFC 3339 time \"2025-01-01T00.00:00Z\": expected ':' at position 14"},
	    {"2025-01-01T00:00:00",
	     "invalid RFC 3339 time \"2025-01-01T00:00:00\": expected 'Z' or an offset +hh:mm at "
	     "position 20"},
	    {"2025-01-01T00:00:00+0100",
	     "invalid RFC 3339 time \"2025-01-01T00:00:00+0100\": expected an offset +hh:mm at "
	     "position 20"},
	    {"2025-01-01T00:00:00+24:00",
	     "invalid RFC 3339 time \"2025-01-01T00:00:00+24:00\": offset out of range at "
	     "position 20"},
	    {"2025-01-01T00:00:00Zjunk",
	     "invalid RFC 3339 time \"2025-01-01T00:00:00Zjunk\": unexpected text after the time "
	     "at position 21"},
	    {"2025-01-01T00:00:00.Z",
	     "invalid RFC 3339 time \"2025-01-01T00:00:00.Z\": expected digits after '.' at "
	     "position 21"},
	    {"2025-02-30T00:00:00Z",
	     "invalid RFC 3339 time \"2025-02-30T00:00:00Z\": no such date 2025-02-30"},
	    {"2025-00-10T00:00:00Z",
	     "invalid RFC 3339 time \"2025-00-10T00:00:00Z\": no such date 2025-00-10"},
	    {"0000-01-01T00:00:00Z",
	     "invalid RFC 3339 time \"0000-01-01T00:00:00Z\": no such date 0000-01-01"},
	    {"2025-01-01T25:00:00Z",
	     "invalid RFC 3339 time \"2025-01-01T25:00:00Z\": no such time 25:00:00"},
	    {"2025-01-01T23:60:00Z",
	     "invalid RFC 3339 time \"2025-01-01T23:60:00Z\": no such time 23:60:00"},
	    {"9999-12-31T23:59:59-01:00",
	     "invalid RFC 3339 time \"9999-12-31T23:59:59-01:00\": outside years 0001-9999 UTC"},
	};
	char err[256];
	long long v;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = 12345;
		cr_expect_eq(td_time_parse_rfc3339(ok[i].text, &v, err, sizeof(err)), 0, "%s: %s",
			     ok[i].text, err);
		cr_expect_eq(v, ok[i].secs, "%s: %lld", ok[i].text, v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 12345;
		cr_expect_eq(td_time_parse_rfc3339(bad[i].text, &v, err, sizeof(err)), -TD_EINVAL,
			     "%s", bad[i].text);
		cr_expect_eq(v, 12345);
		cr_expect_str_eq(err, bad[i].message, "\n got:  %s\n want: %s", err,
				 bad[i].message);
	}
	cr_expect_eq(td_time_parse_rfc3339(NULL, &v, NULL, 0), -TD_EINVAL);
}

Test(schedule, rfc3339_format)
{
	static const struct {
		long long secs;
		const char *text;
	} t[] = {
	    {0, "1970-01-01T00:00:00Z"},
	    {-1, "1969-12-31T23:59:59Z"},
	    {1735690500LL, "2025-01-01T00:15:00Z"},
	    {951782400LL, "2000-02-29T00:00:00Z"},
	    {951868800LL, "2000-03-01T00:00:00Z"},
	    {TD_TIME_MIN, "0001-01-01T00:00:00Z"},
	    {TD_TIME_MAX, "9999-12-31T23:59:59Z"},
	};
	char buf[TD_TIME_RFC3339_LEN], small[5];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		td_time_format_rfc3339(t[i].secs, buf, sizeof(buf));
		cr_expect_str_eq(buf, t[i].text);
	}
	td_time_format_rfc3339(0, small, sizeof(small));
	cr_expect_str_eq(small, "1970");
	td_time_format_rfc3339(0, NULL, 0);
}

/* format then parse gives the instant back, over the whole range */
Test(schedule, rfc3339_round_trip)
{
	char buf[TD_TIME_RFC3339_LEN], err[256];
	uint64_t x = 88172645463325252ULL;
	long long v;

	for (int i = 0; i < 200000; i++) {
		long long t;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		t = TD_TIME_MIN + (long long)(x % (uint64_t)(TD_TIME_MAX - TD_TIME_MIN + 1));
		td_time_format_rfc3339(t, buf, sizeof(buf));
		cr_assert_eq(td_time_parse_rfc3339(buf, &v, err, sizeof(err)), 0, "%s: %s", buf,
			     err);
		cr_assert_eq(v, t, "%s", buf);
	}
}

/* ---------------------------------------------------------------------------------- */
/* Synthetic TZif data                                                                 */

static size_t put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
	return 4;
}

static size_t put64(unsigned char *p, long long v)
{
	put32(p, (uint32_t)((uint64_t)v >> 32));
	put32(p + 4, (uint32_t)v);
	return 8;
}

/* A version 2 TZif file: the v1 block holds one UTC type, the v2 block `n` transitions
 * (times[i] switches to type idx[i]), `ntypes` types with the given offsets, and the
 * footer TZ string. */
static size_t tzif_build(unsigned char *out, const long long *times, const unsigned char *idx,
			 int n, const int *offs, int ntypes, const char *footer)
{
	size_t o = 0;

	memcpy(out, "TZif2", 5);
	memset(out + 5, 0, 15);
	o = 20;
	o += put32(out + o, 0);
	o += put32(out + o, 0);
	o += put32(out + o, 0);
	o += put32(out + o, 0);
	o += put32(out + o, 1);
	o += put32(out + o, 1);
	o += put32(out + o, 0); /* the type: utoff 0, isdst 0, desigidx 0 */
	out[o++] = 0;
	out[o++] = 0;
	out[o++] = 0; /* one designation byte */
	memcpy(out + o, "TZif2", 5);
	memset(out + o + 5, 0, 15);
	o += 20;
	o += put32(out + o, 0);
	o += put32(out + o, 0);
	o += put32(out + o, 0);
	o += put32(out + o, (uint32_t)n);
	o += put32(out + o, (uint32_t)ntypes);
	o += put32(out + o, 1);
	for (int i = 0; i < n; i++)
		o += put64(out + o, times[i]);
	for (int i = 0; i < n; i++)
		out[o++] = idx[i];
	for (int i = 0; i < ntypes; i++) {
		o += put32(out + o, (uint32_t)offs[i]);
		out[o++] = 0;
		out[o++] = 0;
	}
	out[o++] = 0;
	out[o++] = '\n';
	memcpy(out + o, footer, strlen(footer));
	o += strlen(footer);
	out[o++] = '\n';
	return o;
}

struct tzif_case {
	const char *expr;
	const char *after;
	const char *fires[6];
};

static void check_tzif(const unsigned char *data, size_t len, const struct tzif_case *c, size_t n)
{
	for (size_t k = 0; k < n; k++, c++) {
		char err[256], got[TD_TIME_RFC3339_LEN];
		long long after, next;
		struct td_schedule *s =
		    td_schedule_parse_tzif(c->expr, "test", data, len, err, sizeof(err));

		cr_assert_not_null(s, "%s: %s", c->expr, err);
		cr_expect_str_eq(td_schedule_timezone(s), "test");
		cr_assert_eq(td_time_parse_rfc3339(c->after, &after, err, sizeof(err)), 0);
		for (int i = 0; i < 6 && c->fires[i] != NULL; i++) {
			int rc = td_schedule_next(s, after, 0, &next);

			if (strcmp(c->fires[i], NONE) == 0) {
				cr_expect_eq(rc, -TD_ENOTFOUND, "%s fire %d", c->expr, i);
				break;
			}
			cr_expect_eq(rc, 0, "%s fire %d: rc %d", c->expr, i, rc);
			if (rc != 0)
				break;
			td_time_format_rfc3339(next, got, sizeof(got));
			cr_expect_str_eq(got, c->fires[i], "%s fire %d: got %s, expected %s",
					 c->expr, i, got, c->fires[i]);
			after = next;
		}
		td_schedule_destroy(s);
	}
}

#define CHECK_TZIF(buf, len, table) check_tzif(buf, len, table, sizeof(table) / sizeof(table[0]))

/* No transitions at all: everything comes from the footer rule (the US rule). */
Test(schedule, tzif_footer_only)
{
	static const int offs[] = {-18000};
	static const struct tzif_case t[] = {
	    {"30 2 * * *",
	     "2025-03-08T00:00:00Z",
	     {"2025-03-08T07:30:00Z", "2025-03-09T07:00:00Z", "2025-03-10T06:30:00Z"}},
	    {"cron(30 1 * * ? *)",
	     "2025-11-01T12:00:00Z",
	     {"2025-11-02T05:30:00Z", "2025-11-03T06:30:00Z"}},
	    {"*/30 * * * *",
	     "2025-11-02T05:00:00Z",
	     {"2025-11-02T05:30:00Z", "2025-11-02T06:00:00Z", "2025-11-02T06:30:00Z"}},
	    /* 1900: the same rule, back in time */
	    {"0 12 1 1,7 *",
	     "1900-01-01T00:00:00Z",
	     {"1900-01-01T17:00:00Z", "1900-07-01T16:00:00Z"}},
	};
	unsigned char buf[512];
	size_t len = tzif_build(buf, NULL, NULL, 0, offs, 1, "EST5EDT,M3.2.0,M11.1.0");

	CHECK_TZIF(buf, len, t);
}

/* Julian-day rules with times: +03 standard, +04 from J60 (Mar 1) 00:00 to J300
 * (Oct 27 in 2025) 00:00 daylight time. */
Test(schedule, tzif_julian_rule)
{
	static const int offs[] = {10800};
	static const struct tzif_case t[] = {
	    /* midnight Mar 1 is skipped (00:00 +03 -> 01:00 +04 at Feb 28 21:00Z) */
	    {"0 0 * * *",
	     "2025-02-27T00:00:00Z",
	     {"2025-02-27T21:00:00Z", "2025-02-28T21:00:00Z", "2025-03-01T20:00:00Z"}},
	    {"cron(0 0 * * ? *)",
	     "2025-02-27T00:00:00Z",
	     {"2025-02-27T21:00:00Z", "2025-03-01T20:00:00Z"}},
	    /* back at Oct 27 00:00 +04 (Oct 26 20:00Z) to Oct 26 23:00 +03 */
	    {"0 0 * * *",
	     "2025-10-25T00:00:00Z",
	     {"2025-10-25T20:00:00Z", "2025-10-26T21:00:00Z", "2025-10-27T21:00:00Z"}},
	    {"30 23 * * *",
	     "2025-10-26T00:00:00Z",
	     {"2025-10-26T19:30:00Z", "2025-10-27T20:30:00Z"}},
	    {"30 * * * *",
	     "2025-10-26T19:00:00Z",
	     {"2025-10-26T19:30:00Z", "2025-10-26T20:30:00Z", "2025-10-26T21:30:00Z"}},
	    /* 2024 is a leap year but Jn never counts Feb 29: still Mar 1 (Feb 29 21:00Z) */
	    {"0 0 * * *", "2024-02-29T12:00:00Z", {"2024-02-29T21:00:00Z", "2024-03-01T20:00:00Z"}},
	};
	unsigned char buf[512];
	size_t len = tzif_build(buf, NULL, NULL, 0, offs, 1, "<+03>-3<+04>,J60/0,J300/0");

	CHECK_TZIF(buf, len, t);
}

/* DST all year (RFC 8536 3.3.1): the end and the next start meet; always UTC-4. */
Test(schedule, tzif_all_year_dst)
{
	static const int offs[] = {-18000};
	static const struct tzif_case t[] = {
	    {"0 12 * * *", "2025-06-01T00:00:00Z", {"2025-06-01T16:00:00Z"}},
	    {"0 12 * * *",
	     "2025-12-31T12:00:00Z",
	     {"2025-12-31T16:00:00Z", "2026-01-01T16:00:00Z", "2026-01-02T16:00:00Z"}},
	    {"0 0 * * *", "2028-12-30T12:00:00Z", {"2028-12-31T04:00:00Z", "2029-01-01T04:00:00Z"}},
	};
	unsigned char buf[512];
	size_t len = tzif_build(buf, NULL, NULL, 0, offs, 1, "EST5EDT,0/0,J365/25");

	CHECK_TZIF(buf, len, t);
}

/* Explicit transitions at 2025-06-01T00:00:00Z (1748736000) of various sizes. */
Test(schedule, tzif_jump_sizes)
{
	static const long long when[] = {1748736000LL};
	static const unsigned char to1[] = {1};
	unsigned char buf[512];
	size_t len;

	/* forward 3 minutes: small, every job catches up (1 * * * * is a wildcard) */
	{
		static const int offs[] = {0, 180};
		static const struct tzif_case t[] = {
		    {"1 * * * *",
		     "2025-05-31T23:30:00Z",
		     {"2025-06-01T00:00:00Z", "2025-06-01T00:58:00Z"}},
		    {"cron(1 * * * ? *)", "2025-05-31T23:30:00Z", {"2025-06-01T00:58:00Z"}},
		};
		len = tzif_build(buf, when, to1, 1, offs, 2, "<+0003>-0:03");
		CHECK_TZIF(buf, len, t);
	}
	/* forward 30 minutes: medium, only fixed jobs catch up */
	{
		static const int offs[] = {0, 1800};
		static const struct tzif_case t[] = {
		    {"1 * * * *", "2025-05-31T23:30:00Z", {"2025-06-01T00:31:00Z"}},
		    /* 00:01 skipped -> at the jump; June 2 00:01 +00:30 = June 1 23:31Z */
		    {"1 0 * * *",
		     "2025-05-31T23:30:00Z",
		     {"2025-06-01T00:00:00Z", "2025-06-01T23:31:00Z"}},
		};
		len = tzif_build(buf, when, to1, 1, offs, 2, "<+0030>-0:30");
		CHECK_TZIF(buf, len, t);
	}
	/* forward 5 h 30: the clock was set, nothing catches up */
	{
		static const int offs[] = {0, 19800};
		static const struct tzif_case t[] = {
		    {"0 3 * * *",
		     "2025-05-31T00:00:00Z",
		     {"2025-05-31T03:00:00Z", "2025-06-01T21:30:00Z"}},
		};
		len = tzif_build(buf, when, to1, 1, offs, 2, "<+0530>-5:30");
		CHECK_TZIF(buf, len, t);
	}
	/* back 5 h (+05 -> UTC): the clock was set, fixed jobs run again in cronie; once
	 * in EventBridge */
	{
		static const int offs[] = {18000, 0};
		static const struct tzif_case t[] = {
		    {"0 2 * * *",
		     "2025-05-31T12:00:00Z",
		     {"2025-05-31T21:00:00Z", "2025-06-01T02:00:00Z", "2025-06-02T02:00:00Z"}},
		    {"cron(0 2 * * ? *)",
		     "2025-05-31T12:00:00Z",
		     {"2025-05-31T21:00:00Z", "2025-06-02T02:00:00Z"}},
		};
		static const unsigned char idx0[] = {0, 1};
		static const long long two[] = {1700000000LL, 1748736000LL};
		/* type 0 first, so that the first transition changes nothing */
		len = tzif_build(buf, two, idx0, 2, offs, 2, "UTC0");
		CHECK_TZIF(buf, len, t);
	}
	/* back 1 h (+01 -> UTC): fixed jobs once, wildcard jobs twice */
	{
		static const int offs[] = {3600, 0};
		static const struct tzif_case t[] = {
		    {"30 23 * * *",
		     "2025-05-31T12:00:00Z",
		     {"2025-05-31T22:30:00Z", "2025-06-01T23:30:00Z"}},
		    {"30 * * * *",
		     "2025-05-31T22:00:00Z",
		     {"2025-05-31T22:30:00Z", "2025-05-31T23:30:00Z", "2025-06-01T00:30:00Z"}},
		};
		static const unsigned char idx0[] = {0, 1};
		static const long long two[] = {1700000000LL, 1748736000LL};
		len = tzif_build(buf, two, idx0, 2, offs, 2, "");
		CHECK_TZIF(buf, len, t);
	}
}

Test(schedule, tzif_broken)
{
	static const int offs[] = {0, 3600};
	static const long long when[] = {1000, 2000};
	static const long long backwards[] = {2000, 1000};
	static const unsigned char idx[] = {1, 0};
	static const unsigned char bad_idx[] = {1, 7};
	unsigned char buf[512];
	char err[256];
	size_t len;
	struct td_schedule *s;

	len = tzif_build(buf, when, idx, 2, offs, 2, "CET-1");
	s = td_schedule_parse_tzif("* * * * *", "ok", buf, len, err, sizeof(err));
	cr_expect_not_null(s, "%s", err);
	td_schedule_destroy(s);

	static const struct {
		size_t cut; /* bytes kept, 0 = all */
		int what;   /* 0 as built, 1 bad magic, 2 leap count, 3 backwards, 4 index */
		const char *footer;
		const char *message;
	} t[] = {
	    {10, 0, "CET-1", "timezone: \"bad\" is not usable TZif data: truncated header"},
	    {0, 1, "CET-1", "timezone: \"bad\" is not usable TZif data: no TZif magic"},
	    {0, 2, "CET-1",
	     "timezone: \"bad\" is not usable TZif data: leap-second zones (right/...) are not "
	     "supported"},
	    {0, 3, "CET-1",
	     "timezone: \"bad\" is not usable TZif data: transition times not in ascending order"},
	    {0, 4, "CET-1",
	     "timezone: \"bad\" is not usable TZif data: transition names a missing type"},
	    {110, 0, "CET-1", "timezone: \"bad\" is not usable TZif data: truncated data"},
	    {0, 0, "EST5EDT",
	     "timezone: \"bad\" is not usable TZif data: unsupported TZ rule in footer"},
	    {0, 0, "X5",
	     "timezone: \"bad\" is not usable TZif data: unsupported TZ rule in footer"},
	    {0, 0, "EST5EDT,M13.1.0,M11.1.0",
	     "timezone: \"bad\" is not usable TZif data: unsupported TZ rule in footer"},
	    {0, 0, "EST5EDT,M3.2.0/168,M11.1.0",
	     "timezone: \"bad\" is not usable TZif data: unsupported TZ rule in footer"},
	    {0, 0, "EST99",
	     "timezone: \"bad\" is not usable TZif data: unsupported TZ rule in footer"},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		len = tzif_build(buf, t[i].what == 3 ? backwards : when,
				 t[i].what == 4 ? bad_idx : idx, 2, offs, 2, t[i].footer);
		if (t[i].what == 1)
			buf[44 + 7] = 'X'; /* second header: v1 block is 44 + 7 bytes */
		if (t[i].what == 2)
			put32(buf + 44 + 7 + 28, 1);
		if (t[i].cut != 0)
			len = t[i].cut;
		err[0] = '\0';
		s = td_schedule_parse_tzif("* * * * *", "bad", buf, len, err, sizeof(err));
		cr_expect_null(s, "case %zu parsed", i);
		td_schedule_destroy(s);
		cr_expect_str_eq(err, t[i].message, "case %zu:\n got:  %s\n want: %s", i, err,
				 t[i].message);
	}
	/* the missing footer of a version 2 file */
	len = tzif_build(buf, when, idx, 2, offs, 2, "CET-1");
	s = td_schedule_parse_tzif("* * * * *", NULL, buf, len - 7, err, sizeof(err));
	cr_expect_null(s);
	cr_expect_str_eq(err, "timezone: \"custom\" is not usable TZif data: missing footer");
	s = td_schedule_parse_tzif("* * * * *", NULL, NULL, 0, err, sizeof(err));
	cr_expect_null(s);
	cr_expect_str_eq(err, "timezone: \"custom\" is not usable TZif data: truncated header");
}

/* ---------------------------------------------------------------------------------- */
/* glibc as an oracle: a daily noon job fires at 12:00:00 local time on every day     */

Test(schedule, oracle_glibc_noon, .timeout = 60.0)
{
	static const char *const zones[] = {
	    "America/New_York",	 "Australia/Sydney", "Europe/London",	    "Europe/Berlin",
	    "Europe/Dublin",	 "Asia/Kolkata",     "Asia/Tokyo",	    "America/Sao_Paulo",
	    "Africa/Casablanca", "Pacific/Chatham",  "Australia/Lord_Howe", "America/St_Johns",
	    "Asia/Tehran",	 "America/Santiago", "Antarctica/Troll",    "Pacific/Apia",
	};
	char err[256];

	for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
		struct td_schedule *s = td_schedule_parse("0 12 * * *", zones[z], err, sizeof(err));
		long long after, next;
		struct tm prev = {0}, tm;

		cr_assert_not_null(s, "%s: %s", zones[z], err);
		setenv("TZ", zones[z], 1);
		tzset();
		after = 1577836800LL; /* 2020-01-01 */
		for (int day = 0; day < 40 * 365; day++) {
			time_t tt;

			cr_assert_eq(td_schedule_next(s, after, 0, &next), 0, "%s day %d", zones[z],
				     day);
			tt = (time_t)next;
			localtime_r(&tt, &tm);
			cr_assert(tm.tm_hour == 12 && tm.tm_min == 0 && tm.tm_sec == 0,
				  "%s: fire %lld is %02d:%02d:%02d local", zones[z], next,
				  tm.tm_hour, tm.tm_min, tm.tm_sec);
			if (day > 0) {
				/* the next calendar day, none skipped */
				struct tm d = prev;
				d.tm_mday++;
				d.tm_isdst = -1;
				timegm(&d);
				cr_assert(d.tm_year == tm.tm_year && d.tm_yday == tm.tm_yday,
					  "%s: day skipped before %lld", zones[z], next);
			}
			prev = tm;
			after = next;
		}
		td_schedule_destroy(s);
	}
	unsetenv("TZ");
}

/* ---------------------------------------------------------------------------------- */
/* Threads: one schedule, four threads, the same answers as one thread                */

#define THREAD_STEPS 20000

struct thread_arg {
	const struct td_schedule *s;
	long long *out;
};

static void *next_many(void *p)
{
	struct thread_arg *a = p;
	long long after = 1735689600LL;

	for (int i = 0; i < THREAD_STEPS; i++) {
		if (td_schedule_next(a->s, after, 0, &a->out[i]) != 0)
			return NULL;
		after = a->out[i];
	}
	return p;
}

Test(schedule, concurrent_use)
{
	char err[256];
	struct td_schedule *s =
	    td_schedule_parse("*/7 1-3 * * *", "America/New_York", err, sizeof(err));
	long long *res[5];
	pthread_t th[4];
	struct thread_arg args[5];

	cr_assert_not_null(s, "%s", err);
	for (int i = 0; i < 5; i++) {
		res[i] = calloc(THREAD_STEPS, sizeof(long long));
		cr_assert_not_null(res[i]);
		args[i].s = s;
		args[i].out = res[i];
	}
	cr_assert_not_null(next_many(&args[4]));
	for (int i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, next_many, &args[i]), 0);
	for (int i = 0; i < 4; i++) {
		void *rv;
		cr_assert_eq(pthread_join(th[i], &rv), 0);
		cr_expect_not_null(rv);
		cr_expect_eq(memcmp(res[i], res[4], THREAD_STEPS * sizeof(long long)), 0);
	}
	for (int i = 0; i < 5; i++)
		free(res[i]);
	td_schedule_destroy(s);
}
