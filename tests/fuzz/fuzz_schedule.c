/*
 * libFuzzer target for connectors/cron_schedule.c.
 *
 * Input: the expression, then optionally a newline and a zone. The zone is either an
 * IANA name (looked up under TD_ZONEINFO_DIR) or, when it starts with "TZif", the
 * bytes of a TZif file, so the TZif and POSIX TZ rule parsers are fuzzed as well.
 * A schedule that parses must give 20 fire instants (or -TD_ENOTFOUND) from a fixed
 * instant, each strictly after the one before and within range, without hanging.
 * The expression text is also fed to the RFC 3339 parser, and every instant found
 * must survive a format/parse round trip.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <triggerd/errors.h>

#include "../../connectors/cron_schedule.h"

#define FIXED_AFTER 1735689600LL /* 2025-01-01T00:00:00Z */
#define FIXED_START 1735600000LL /* the rate() anchor, a bit earlier */

static void check_round_trip(long long t)
{
	char buf[TD_TIME_RFC3339_LEN];
	long long back;

	td_time_format_rfc3339(t, buf, sizeof(buf));
	if (td_time_parse_rfc3339(buf, &back, NULL, 0) != 0 || back != t)
		__builtin_trap();
}

static void run(const struct td_schedule *s)
{
	long long after = FIXED_AFTER, next;

	if (td_schedule_kind_name(s) == NULL || td_schedule_timezone(s) == NULL)
		__builtin_trap();
	for (int i = 0; i < 20; i++) {
		int rc = td_schedule_next(s, after, FIXED_START, &next);

		if (rc == -TD_ENOTFOUND)
			return;
		if (rc != 0 || next <= after || next > TD_TIME_MAX)
			__builtin_trap();
		check_round_trip(next);
		after = next;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t elen = nl != NULL ? (size_t)(nl - data) : size;
	const uint8_t *zone = nl != NULL ? nl + 1 : NULL;
	size_t zlen = nl != NULL ? size - elen - 1 : 0;
	char err[256];
	char *expr = malloc(elen + 1);
	struct td_schedule *s;
	long long t;

	if (expr == NULL)
		return 0;
	memcpy(expr, data, elen);
	expr[elen] = '\0';

	if (td_time_parse_rfc3339(expr, &t, err, sizeof(err)) == 0)
		check_round_trip(t);

	if (zone != NULL && zlen >= 4 && memcmp(zone, "TZif", 4) == 0) {
		s = td_schedule_parse_tzif(expr, "fuzz", zone, zlen, err, sizeof(err));
	} else {
		char *name = NULL;

		if (zone != NULL) {
			name = malloc(zlen + 1);
			if (name == NULL) {
				free(expr);
				return 0;
			}
			memcpy(name, zone, zlen);
			name[zlen] = '\0';
		}
		s = td_schedule_parse(expr, name, err, sizeof(err));
		free(name);
	}
	if (s != NULL)
		run(s);
	else if (err[0] == '\0')
		__builtin_trap(); /* every refusal says why */
	td_schedule_destroy(s);
	free(expr);
	return 0;
}
