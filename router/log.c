/*
 * Logging (see include/triggerd/log.h). A record is formatted into a stack buffer and
 * written with a single write(2) to stderr, so concurrent threads never interleave
 * within a line. JSON mode escapes the message so each record is one valid JSON line.
 */
#include <triggerd/log.h>

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum td_log_level td_log_threshold = TD_LOG_INFO;
static bool log_json;

static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const char *const level_labels[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void td_log_set_level(enum td_log_level level)
{
	td_log_threshold = level;
}

void td_log_set_json(bool json)
{
	log_json = json;
}

int td_log_level_parse(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

static size_t format_time(char *out, size_t cap)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(out + n, cap - n, ".%03ldZ", ts.tv_nsec / 1000000);
	return n;
}

/* Appends s to buf as the inside of a JSON string; returns the new length. */
static size_t append_escaped(char *buf, size_t len, size_t cap, const char *s)
{
	for (; *s && len + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf[len++] = '\\';
			buf[len++] = (char)c;
		} else if (c == '\n') {
			buf[len++] = '\\';
			buf[len++] = 'n';
		} else if (c < 0x20) {
			len += (size_t)snprintf(buf + len, cap - len, "\\u%04x", c);
		} else {
			buf[len++] = (char)c;
		}
	}
	return len;
}

void td_log_vwrite(enum td_log_level level, const char *scope, const char *fmt, va_list ap)
{
	char msg[3072], line[8192], ts[40];
	vsnprintf(msg, sizeof msg, fmt, ap);
	format_time(ts, sizeof ts);
	size_t n;
	if (log_json) {
		n = (size_t)snprintf(line, sizeof line, "{\"time\":\"%s\",\"level\":\"%s\",", ts,
				     level_names[level]);
		if (scope) {
			n += (size_t)snprintf(line + n, sizeof line - n, "\"scope\":\"");
			n = append_escaped(line, n, sizeof line, scope);
			n += (size_t)snprintf(line + n, sizeof line - n, "\",");
		}
		n += (size_t)snprintf(line + n, sizeof line - n, "\"msg\":\"");
		n = append_escaped(line, n, sizeof line - 3, msg);
		memcpy(line + n, "\"}\n", 3);
		n += 3;
	} else {
		n = (size_t)snprintf(line, sizeof line, "%s %-5s %s%s%s%s\n", ts,
				     level_labels[level], scope ? "[" : "", scope ? scope : "",
				     scope ? "] " : "", msg);
		if (n >= sizeof line) {
			n = sizeof line;
			line[n - 1] = '\n';
		}
	}
	ssize_t rc = write(STDERR_FILENO, line, n);
	(void)rc;
}

void td_log_write(enum td_log_level level, const char *scope, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	td_log_vwrite(level, scope, fmt, ap);
	va_end(ap);
}

bool td_log_ratelimit(struct td_log_ratelimit *state, int burst, long long interval_ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	long long now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if (state->last_ms == 0) {
		state->last_ms = now;
		state->tokens = burst;
	}
	long long refill = interval_ms > 0 ? (now - state->last_ms) / interval_ms : burst;
	if (refill > 0) {
		state->tokens =
		    state->tokens + (int)refill > burst ? burst : state->tokens + (int)refill;
		state->last_ms = now;
	}
	if (state->tokens <= 0)
		return false;
	state->tokens--;
	return true;
}
