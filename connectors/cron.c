/*
 * The cron source: one schedule (5 or 6 field cron, @macros, AWS cron(), rate(), at())
 * in a time zone, firing an event whose time is the scheduled instant. After downtime
 * it may catch up on missed ticks; with a Redis lease a tick fires once across several
 * triggerd instances.
 *
 * This file holds the options of the kind. The schedule's syntax is checked by the
 * schedule parser (connectors/cron_schedule.c) when the source starts; the checks here
 * are the ones that need no schedule: start and end dates, and the lease URL.
 */
#include <triggerd/source.h>

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

enum cron_catchup { CATCHUP_NONE, CATCHUP_LAST, CATCHUP_ALL };

struct cron_opts {
	char *schedule;
	char *timezone;
	char *start;   /* RFC 3339 or NULL */
	char *end;     /* RFC 3339 or NULL */
	char *payload; /* JSON text or NULL */
	long long jitter_ms;
	int catchup; /* enum cron_catchup */
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
     .desc = "Ticks missed while triggerd was down: none, the most recent once, or all of "
	     "them (up to catchup_max_age)."},
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

static bool leap(long y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static bool digits(const char *s, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		*v = *v * 10 + (s[i] - '0');
	}
	return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static long long days_from_civil(long long y, int m, int d)
{
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	long long yoe = y - era * 400;
	long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* RFC 3339 date-time ("2025-01-01T00:00:00Z", "...T01:00:00.5+01:00") to Unix seconds. */
static bool parse_rfc3339(const char *s, long long *secs)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, mo, d, h, mi, se, oh = 0, om = 0;

	if (strlen(s) < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
	    s[7] != '-' || !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
	    !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
	    !digits(s + 17, 2, &se))
		return false;
	if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || se > 60)
		return false;
	if (d > mdays[mo - 1] + (mo == 2 && leap(y)))
		return false;
	const char *p = s + 19;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || oh > 23 ||
		    om > 59)
			return false;
		if (*p == '-') {
			oh = -oh;
			om = -om;
		}
		p += 6;
	} else {
		return false;
	}
	if (*p)
		return false;
	*secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - oh * 3600 - om * 60;
	return true;
}

static void cron_check(const void *p, const char *file, int line, struct td_diag *diag)
{
	const struct cron_opts *o = p;
	long long start = 0, end = 0;
	bool has_start = false, has_end = false;
	char err[256];

	if (o->start && !(has_start = parse_rfc3339(o->start, &start)))
		td_diag_add(diag, file, line,
			    "option 'start': \"%.80s\" is not an RFC 3339 time "
			    "(2025-01-01T00:00:00Z)",
			    o->start);
	if (o->end && !(has_end = parse_rfc3339(o->end, &end)))
		td_diag_add(
		    diag, file, line,
		    "option 'end': \"%.80s\" is not an RFC 3339 time (2025-01-01T00:00:00Z)",
		    o->end);
	if (has_start && has_end && end <= start)
		td_diag_add(diag, file, line, "option 'end' must be after option 'start'");
	if (o->lease && td_url_check(o->lease, "redis://|rediss://", err, sizeof err) < 0)
		td_diag_add(diag, file, line, "option 'lease': %s", err);
	for (const char *t = o->timezone; *t; t++) {
		if (!isalnum((unsigned char)*t) && !strchr("/_+-", *t)) {
			td_diag_add(diag, file, line,
				    "option 'timezone': \"%.80s\" is not an IANA time zone name",
				    o->timezone);
			break;
		}
	}
}

const struct td_source_ops td_source_cron = {
    .name = "cron",
    .summary = "Events on a schedule (cron, rate, at), once cluster-wide with a lease",
    .options = cron_options,
    .opts_size = sizeof(struct cron_opts),
    .check = cron_check,
};
