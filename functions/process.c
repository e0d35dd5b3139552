/*
 * The process function kind: local code run as AWS Lambda runs it. triggerd serves the
 * Lambda Runtime API on loopback and starts runtime processes (the shipped Python and
 * Node.js bootstraps, or the function's own `bootstrap` for runtime provided), one
 * invocation per process at a time, kept warm up to the concurrency limit and stopped
 * after idle_timeout.
 *
 * This file holds the options of the kind and their checks. `code` is a folder relative
 * to the configuration file; whether it exists is checked when the function starts (the
 * configuration may be validated on another machine).
 */
#include <triggerd/function.h>

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

enum process_runtime { RUNTIME_PYTHON3, RUNTIME_NODEJS, RUNTIME_PROVIDED };

struct process_opts {
	struct td_function_common common;
	int runtime; /* enum process_runtime */
	char *code;
	char *handler;
	struct td_map environment;
	long long idle_timeout_ms;
	long long init_timeout_ms;
};

#define O(field) offsetof(struct process_opts, field)

static const struct td_option process_options[] = {
    TD_FUNCTION_COMMON_OPTIONS(struct process_opts, "3s", "4", "aws"),
    {.type = TD_OPT_ENUM,
     .name = "runtime",
     .flags = TD_OPT_REQUIRED,
     .offset = O(runtime),
     .choices = "python3|nodejs|provided",
     .desc = "python3 and nodejs use triggerd's bootstraps; provided runs CODE/bootstrap "
	     "(any Lambda runtime interface client)."},
    {.type = TD_OPT_STRING,
     .name = "code",
     .flags = TD_OPT_REQUIRED | TD_OPT_PATH,
     .offset = O(code),
     .desc = "Folder of the function's code (LAMBDA_TASK_ROOT), relative to the "
	     "configuration file."},
    {.type = TD_OPT_STRING,
     .name = "handler",
     .def = "lambda_function.lambda_handler",
     .offset = O(handler),
     .desc = "FILE.FUNCTION the runtime calls (_HANDLER): lambda_function.lambda_handler, "
	     "index.handler."},
    {.type = TD_OPT_MAP,
     .name = "environment",
     .offset = O(environment),
     .desc = "Environment variables of the function, NAME = \"value\". Default: none."},
    {.type = TD_OPT_DURATION,
     .name = "idle_timeout",
     .def = "5m",
     .offset = O(idle_timeout_ms),
     .min = 0,
     .max = 86400000,
     .desc = "A warm process idle this long is stopped (scale to zero); 0s keeps one "
	     "warm."},
    {.type = TD_OPT_DURATION,
     .name = "init_timeout",
     .def = "10s",
     .offset = O(init_timeout_ms),
     .min = 1000,
     .max = 600000,
     .desc = "Longest a new process may take to ask for its first invocation."},
    {0},
};

/* Set by triggerd for every process. */
static const char *const reserved[] = {
    "AWS_LAMBDA_RUNTIME_API",	       "_HANDLER", "LAMBDA_TASK_ROOT", "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", NULL,
};

static void process_check(const void *p, const char *file, int line, struct td_diag *diag)
{
	const struct process_opts *o = p;

	if (o->runtime != RUNTIME_PROVIDED) {
		const char *dot = strrchr(o->handler, '.');
		if (!dot || dot == o->handler || !dot[1] || strpbrk(o->handler, " \t\r\n"))
			td_diag_add(diag, file, line,
				    "option 'handler': \"%.80s\" is not FILE.FUNCTION "
				    "(lambda_function.lambda_handler)",
				    o->handler);
	}
	for (size_t i = 0; i < o->environment.n; i++) {
		const char *k = o->environment.keys[i];
		bool ok = isalpha((unsigned char)k[0]) || k[0] == '_';
		for (const char *c = k; *c; c++)
			if (!isalnum((unsigned char)*c) && *c != '_')
				ok = false;
		if (!ok)
			td_diag_add(diag, file, line,
				    "option 'environment': \"%.80s\" is not a variable name "
				    "(letters, digits and _)",
				    k);
		for (size_t r = 0; reserved[r]; r++)
			if (strcmp(k, reserved[r]) == 0)
				td_diag_add(diag, file, line,
					    "option 'environment': %s is set by triggerd", k);
	}
}

const struct td_function_ops td_function_process = {
    .name = "process",
    .summary = "Run local code behind the AWS Lambda Runtime API (Python, Node.js, "
	       "provided)",
    .options = process_options,
    .opts_size = sizeof(struct process_opts),
    .check = process_check,
};
