/*
 * libFuzzer target for the cron source's parsers of outside input
 * (connectors/cron_source.h): the last-fired mark (a file in the state directory) and
 * the lease URL (configuration). The first byte picks the parser; the rest is the input.
 * A mark that parses must be in range and survive a write/parse round trip; a URL that
 * parses must give a non-empty host and a port 1-65535.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <triggerd/errors.h>
#include <triggerd/event.h>

#include "../../work/main/connectors/cron_source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	char err[256];
	const char *text = (const char *)data + 1;
	size_t len = size - 1;
	if (data[0] % 3 == 0) {
		long long secs;
		if (td_cron_mark_parse(text, len, &secs, err, sizeof err) == 0) {
			char buf[TD_TIME_RFC3339_LEN + 1];
			long long back;
			if (secs < TD_TIME_MIN || secs > TD_TIME_MAX)
				abort();
			td_time_format_rfc3339(secs, buf, TD_TIME_RFC3339_LEN);
			if (td_cron_mark_parse(buf, strlen(buf), &back, err, sizeof err) != 0 ||
			    back != secs)
				abort();
		} else if (strlen(err) == 0) {
			abort();
		}
		return 0;
	}
	char *s = malloc(len + 1);
	if (!s)
		return 0;
	memcpy(s, text, len);
	s[len] = '\0';
	if (data[0] % 3 == 1) {
		struct td_cron_redis_url u;
		if (td_cron_redis_url_parse(s, &u, err, sizeof err) == 0) {
			if (!u.host[0] || u.port < 1 || u.port > 65535 || u.db < 0)
				abort();
		} else if (strlen(err) == 0) {
			abort();
		}
	} else {
		/* The event of a tick for any name and expression text: built or refused. */
		struct td_event *ev = td_cron_event(s, s, 1735689600LL, NULL, err, sizeof err);
		if (ev) {
			if (td_event_validate(ev, err, sizeof err) != 0)
				abort();
			td_event_unref(ev);
		}
	}
	free(s);
	return 0;
}
