/*
 * Logging: one line per record on stderr, as text ("2026-11-27T08:00:00.123Z INFO
 * [kafka:orders] message") or as JSON lines for machines. The level is checked before
 * anything is formatted. Any thread may log; a record is written with one write(2), so
 * lines from different threads never interleave. Repeated errors are rate-limited by
 * the caller with td_log_ratelimit().
 */
#ifndef TRIGGERD_LOG_H
#define TRIGGERD_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum td_log_level { TD_LOG_ERROR, TD_LOG_WARN, TD_LOG_INFO, TD_LOG_DEBUG };

extern enum td_log_level td_log_threshold;

/* Set once at start-up or on reload, from the engine thread. */
void td_log_set_level(enum td_log_level level);
void td_log_set_json(bool json);
/* "error", "warn", "info", "debug"; returns -1 for anything else. */
int td_log_level_parse(const char *name);

/* scope is "kafka:orders", "engine", ... or NULL. Do not call directly: use the macros. */
void td_log_write(enum td_log_level level, const char *scope, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void td_log_vwrite(enum td_log_level level, const char *scope, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* A token bucket per call site: true when a record may be written now (at most
 * burst records, then one every interval_ms). *state is owned by the caller. */
struct td_log_ratelimit {
	long long last_ms;
	int tokens;
};
bool td_log_ratelimit(struct td_log_ratelimit *state, int burst, long long interval_ms);

#define TD_LOG_AT(level, scope, ...)                                                               \
	do {                                                                                       \
		if ((level) <= td_log_threshold)                                                   \
			td_log_write((level), (scope), __VA_ARGS__);                               \
	} while (0)

#define td_log_error(...) TD_LOG_AT(TD_LOG_ERROR, NULL, __VA_ARGS__)
#define td_log_warn(...)  TD_LOG_AT(TD_LOG_WARN, NULL, __VA_ARGS__)
#define td_log_info(...)  TD_LOG_AT(TD_LOG_INFO, NULL, __VA_ARGS__)
#define td_log_debug(...) TD_LOG_AT(TD_LOG_DEBUG, NULL, __VA_ARGS__)

/* Scoped records: td_logs_info("kafka:orders", "assigned %d partitions", n). */
#define td_logs_error(scope, ...) TD_LOG_AT(TD_LOG_ERROR, scope, __VA_ARGS__)
#define td_logs_warn(scope, ...)  TD_LOG_AT(TD_LOG_WARN, scope, __VA_ARGS__)
#define td_logs_info(scope, ...)  TD_LOG_AT(TD_LOG_INFO, scope, __VA_ARGS__)
#define td_logs_debug(scope, ...) TD_LOG_AT(TD_LOG_DEBUG, scope, __VA_ARGS__)

#endif
