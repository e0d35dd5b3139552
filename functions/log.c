/*
 * The log function kind: an invocation writes the event to triggerd's log and returns
 * the event's CloudEvents JSON as its result. It needs nothing outside triggerd, so the
 * embedded configuration (config/triggerd.cfg) uses it, and it is the quickest way to
 * see what a trigger matches.
 *
 * This file holds the options of the kind: only the common ones.
 */
#include <triggerd/function.h>

struct log_opts {
	struct td_function_common common;
};

static const struct td_option log_options[] = {
    TD_FUNCTION_COMMON_OPTIONS(struct log_opts, "3s", "64", "cloudevents"),
    {0},
};

const struct td_function_ops td_function_log = {
    .name = "log",
    .summary = "Write the event to the log and return it (for trying triggers out)",
    .options = log_options,
    .opts_size = sizeof(struct log_opts),
};
