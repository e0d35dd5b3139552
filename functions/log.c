/*
 * The log function kind: an invocation writes the event to triggerd's log and returns
 * the event's CloudEvents JSON as its result. It needs nothing outside triggerd, so the
 * embedded configuration (config/triggerd.cfg) uses it, and it is the quickest way to
 * see what a trigger matches.
 *
 * This file holds the options of the kind (only the common ones) and the runtime, which
 * completes each invocation inside invoke, on the engine thread. The log line carries
 * the event's JSON made compact (whitespace outside strings dropped, so a pretty-printed
 * payload stays on one line) and cut at LOG_JSON_MAX bytes; the result carries it whole.
 */
#include <triggerd/errors.h>
#include <triggerd/event.h>
#include <triggerd/function.h>
#include <triggerd/log.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct log_opts {
	struct td_function_common common;
};

static const struct td_option log_options[] = {
    TD_FUNCTION_COMMON_OPTIONS(struct log_opts, "3s", "64", "cloudevents"),
    {0},
};

#define LOG_JSON_MAX 2048 /* bytes of the event's JSON in one log line */

/*
 * Copies the JSON text s[0..len) to out without the whitespace outside strings, at most
 * cap - 1 bytes and never ending inside a UTF-8 sequence; NUL-terminates it. Returns the
 * length written; *cut tells whether the text did not fit.
 */
static size_t compact_json(const char *s, size_t len, char *out, size_t cap, bool *cut)
{
	size_t n = 0;
	bool in_string = false, escaped = false;
	*cut = false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!in_string && (c == ' ' || c == '\t' || c == '\n' || c == '\r'))
			continue;
		if (n + 1 >= cap) {
			*cut = true;
			/* Drop a UTF-8 sequence that would be left incomplete. */
			if (((unsigned char)c & 0xC0) == 0x80) {
				while (n > 0 && ((unsigned char)out[n - 1] & 0xC0) == 0x80)
					n--;
				if (n > 0 && ((unsigned char)out[n - 1] & 0x80))
					n--;
			}
			break;
		}
		out[n++] = c;
		if (escaped)
			escaped = false;
		else if (in_string && c == '\\')
			escaped = true;
		else if (c == '"')
			in_string = !in_string;
	}
	out[n] = '\0';
	return n;
}

static int log_invoke(struct td_function *fn, struct td_invocation *inv)
{
	size_t len;
	char *json = td_event_to_json(inv->event, &len);
	char *ctype = strdup("application/cloudevents+json");
	if (!json || !ctype) {
		free(json);
		free(ctype);
		return -TD_ENOMEM;
	}
	if (td_log_threshold >= TD_LOG_INFO) {
		char line[LOG_JSON_MAX + 1];
		bool cut;
		compact_json(json, len, line, sizeof line, &cut);
		const char *id = td_event_get(inv->event, "id");
		if (cut)
			td_logs_info(td_function_scope(fn), "event %s: %s... (%zu bytes in all)",
				     id ? id : "?", line, len);
		else
			td_logs_info(td_function_scope(fn), "event %s: %s", id ? id : "?", line);
	}
	struct td_result res = {
	    .status = TD_RESULT_OK,
	    .http_status = 200,
	    .content_type = ctype,
	    .body = json,
	    .body_len = len,
	};
	td_invocation_complete(inv, &res);
	return 0;
}

const struct td_function_ops td_function_log = {
    .name = "log",
    .summary = "Write the event to the log and return it (for trying triggers out)",
    .options = log_options,
    .opts_size = sizeof(struct log_opts),
    .invoke = log_invoke,
};
