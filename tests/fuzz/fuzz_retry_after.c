/*
 * libFuzzer target for the Retry-After parser of the http function kind
 * (td_http_retry_after_parse in functions/http.c): the value comes from any HTTP server
 * a function points at.
 *
 * Input: the header value, as bytes (copied to a buffer of exactly that size, so a read
 * past the end is caught). Checks, for two clocks (2025 and the epoch, which moves the
 * two-digit years of the RFC 850 form to another century):
 *   - an accepted value gives a delay >= 0, at most the saturated delta-seconds or the
 *     distance to the year 9999;
 *   - a refused one leaves the delay alone and says where: "... at byte N", N <= size;
 *   - an accepted date in the future, written back as an IMF-fixdate, parses to the
 *     same delay.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <triggerd/errors.h>

#include "../../functions/http_util.h"

#define NOW_2025 1735689600000LL   /* 2025-01-01T00:00:00Z */
#define Y10000	 253402300800000LL /* 10000-01-01T00:00:00Z in ms */

static void check(const char *value, size_t size, long long now_ms)
{
	long long delay = -7;
	char err[160] = "";
	int rc = td_http_retry_after_parse(value, size, now_ms, &delay, err, sizeof err);

	if (rc != 0) {
		const char *at = strstr(err, " at byte ");
		if (rc != -TD_EINVAL || delay != -7 || !at)
			__builtin_trap();
		if (strtoull(at + 9, NULL, 10) > size)
			__builtin_trap();
		return;
	}
	long long most = TD_HTTP_RETRY_AFTER_MAX_S * 1000;
	if (Y10000 - now_ms > most)
		most = Y10000 - now_ms;
	if (delay < 0 || delay > most)
		__builtin_trap();

	/* Round trip of a future date (delta-seconds give the same answer either way). */
	if (delay > 0 && delay < Y10000 - now_ms - 1000) {
		time_t when = (time_t)((now_ms + delay) / 1000);
		struct tm tm;
		char text[64];
		long long again = -1;
		gmtime_r(&when, &tm);
		if (tm.tm_year + 1900 < 1000)
			return;
		strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
		if (td_http_retry_after_parse(text, strlen(text), now_ms, &again, NULL, 0) != 0)
			__builtin_trap();
		/* The date form has whole seconds; the clock may have a fraction. */
		long long want = (long long)when * 1000 - now_ms;
		if (again != (want > 0 ? want : 0))
			__builtin_trap();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *value = malloc(size ? size : 1);
	if (!value)
		return 0;
	if (size)
		memcpy(value, data, size);
	check(value, size, NOW_2025);
	check(value, size, 0);
	free(value);
	return 0;
}
