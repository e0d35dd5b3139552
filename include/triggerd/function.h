/*
 * The function interface. A function kind (http, log, lambda, process) is one const
 * struct td_function_ops in its own file under functions/, listed with one line in
 * router/registry.c.
 *
 * Every kind's options struct starts with struct td_function_common, and every kind's
 * option table starts with TD_FUNCTION_COMMON_OPTIONS(...) so that the options every
 * function has are declared once, with the defaults of that kind.
 *
 * Loading one function (router/config.c) works as for sources (source.h): apply the
 * table, then finish() and check() when that found no error. A queue_max left at 0 is
 * set by the loader to the global queue.max_events.
 */
#ifndef TRIGGERD_FUNCTION_H
#define TRIGGERD_FUNCTION_H

#include <stdbool.h>
#include <stddef.h>

#include <triggerd/config.h>

enum td_event_format { TD_FORMAT_CLOUDEVENTS, TD_FORMAT_AWS };

struct td_function_common {
	long long timeout_ms;
	long long concurrency; /* maximum invocations in flight */
	long long memory_mb;   /* for metering (GB-seconds) and, for process, the limit */
	int event_format;      /* enum td_event_format */
	long long queue_max;   /* async events waiting per function before backpressure */
};

struct td_function;
struct td_invocation;

struct td_function_ops {
	const char *name;
	const char *summary;
	const struct td_option *options;
	size_t opts_size; /* starts with struct td_function_common */
	void (*check)(const void *opts, const char *file, int line, struct td_diag *diag);
	void (*finish)(void *opts); /* optional, as in struct td_source_ops */
	/* Runtime (see "Runtime" below). */
	size_t ctx_size;
	int (*create)(struct td_function *fn);
	int (*invoke)(struct td_function *fn, struct td_invocation *inv);
	void (*destroy)(struct td_function *fn);
};

/*
 * The rows every kind's table starts with. st is the kind's options struct, whose first
 * member is `struct td_function_common common`; the other arguments are that kind's
 * defaults as the user would write them ("3s", "64", "cloudevents").
 */
#define TD_FUNCTION_COMMON_OPTIONS(st, timeout_def, concurrency_def, format_def)                   \
	{.type = TD_OPT_DURATION,                                                                  \
	 .name = "timeout",                                                                        \
	 .def = (timeout_def),                                                                     \
	 .offset = offsetof(st, common.timeout_ms),                                                \
	 .min = 1,                                                                                 \
	 .max = 900000,                                                                            \
	 .desc = "Longest an invocation may run (at most 15m, as AWS Lambda); then it fails as "   \
		 "timed out."},                                                                    \
	    {.type = TD_OPT_INT,                                                                   \
	     .name = "concurrency",                                                                \
	     .def = (concurrency_def),                                                             \
	     .offset = offsetof(st, common.concurrency),                                           \
	     .min = 1,                                                                             \
	     .max = 10000,                                                                         \
	     .desc = "Most invocations of this function in flight at once."},                      \
	    {.type = TD_OPT_INT,                                                                   \
	     .name = "memory_mb",                                                                  \
	     .def = "128",                                                                         \
	     .offset = offsetof(st, common.memory_mb),                                             \
	     .min = 128,                                                                           \
	     .max = 10240,                                                                         \
	     .desc = "Memory size in MB: for metering (GB-seconds, as AWS Lambda bills) and, "     \
		     "for process functions, the limit."},                                         \
	    {.type = TD_OPT_ENUM,                                                                  \
	     .name = "event_format",                                                               \
	     .def = (format_def),                                                                  \
	     .offset = offsetof(st, common.event_format),                                          \
	     .choices = "cloudevents|aws",                                                         \
	     .desc = "What the function receives: the event's CloudEvents JSON, or its AWS "       \
		     "shape (an S3 notification, an EventBridge event)."},                         \
	{                                                                                          \
		.type = TD_OPT_INT, .name = "queue_max", .offset = offsetof(st, common.queue_max), \
		.min = 1, .max = 100000000,                                                        \
		.desc = "Most async events waiting for this function before its sources are "      \
			"slowed down. Default: the global queue.max_events."                       \
	}

extern const struct td_function_ops *const td_function_kinds[];
const struct td_function_ops *td_function_kind(const char *name);

/* ---- Runtime: instances and invocations ---------------------------------------------
 *
 * A function instance is made by the router from a td_function_conf. The router calls
 * the kind's callbacks on the engine thread:
 *   create   set up ctx (zeroed, ctx_size bytes). 0 or -TD_E*.
 *   invoke   start one invocation; the router already enforced the concurrency limit.
 *            The kind calls td_invocation_complete(inv, &result) exactly once, later or
 *            even inside invoke. A negative return means it could not start (then it
 *            must not complete it): the router treats that as a retryable failure.
 *   destroy  free ctx's contents. Invocations still in flight then (shutdown) are
 *            dropped without td_invocation_complete: free their state only.
 */

struct td_function; /* an instance */
struct td_event;
struct td_engine;
struct td_global;

enum td_result_status {
	TD_RESULT_OK,	 /* success: body is the result */
	TD_RESULT_RETRY, /* retryable failure: 408, 429, 5xx, timeout, connection error */
	TD_RESULT_ERROR, /* permanent failure: another 4xx, a malformed answer */
};

/* What an invocation returns. Every pointer is owned by the result; td_result_clear
 * frees them and zeroes it. */
struct td_result {
	enum td_result_status status;
	int http_status; /* the function's HTTP status (or the kind's mapping) */
	char *content_type;
	char *body; /* the result (OK) or the error document (JSON) */
	size_t body_len;
	char *error;		  /* short reason: "HTTP 503", "timed out after 3.00 s" */
	long long retry_after_ms; /* from Retry-After, else 0 */
	bool throttled;		  /* 429: retried until max_event_age, not counted in retries */
	long long duration_us;	  /* measured by the kind; 0: the router measures */
	long long init_us;	  /* cold start (process kind), else 0 */
	long long max_memory_mb;  /* process kind, else 0 */
	/* Extra HTTP response headers: a sync webhook answered by an aws-format function
	 * (a function-URL response object's headers). Names and values are malloc'ed. */
	struct td_result_header {
		char *name;
		char *value;
	} * headers;
	size_t nheaders;
	/* The function's own output during this invocation (process kind), for the Invoke
	 * API's Tail; NULL when the kind has none. */
	char *log;
	size_t log_len;
};
void td_result_clear(struct td_result *res);

/* One invocation. The router owns it; the kind may keep a pointer until it completes
 * it. */
struct td_invocation {
	struct td_function *function;
	struct td_event *event; /* the event; valid until completion */
	const char *trigger;	/* trigger name, or "invoke-api" */
	char request_id[40];	/* a UUID */
	bool sync;
	int attempt;	       /* 1 for the first */
	long long deadline_ms; /* on the td_now_ms() clock: now + timeout */
	/* The caller's client context (JSON text: the Invoke API's X-Amz-Client-Context,
	 * decoded), or NULL; valid until completion. */
	const char *client_context;
	void *kind_state; /* the kind's own per-invocation state */
};

void *td_function_ctx(struct td_function *fn);
const void *td_function_opts(const struct td_function *fn); /* starts with the common part */
const char *td_function_name(const struct td_function *fn);
const char *td_function_scope(const struct td_function *fn); /* "http:hello", for logs */
struct td_engine *td_function_engine(struct td_function *fn);
const struct td_global *td_function_global(const struct td_function *fn);
/* Ends an invocation (engine thread): the router takes over the result's contents. */
void td_invocation_complete(struct td_invocation *inv, struct td_result *res);

#endif
