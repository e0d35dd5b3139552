/*
 * The body of an HTTP answer collected by libcurl for a triggerctl command: a
 * NUL-terminated buffer bounded at CLI_BODY_MAX, so that a runaway server cannot make
 * the command use unbounded memory.
 */
#ifndef TRIGGERD_CLI_HTTP_BODY_H
#define TRIGGERD_CLI_HTTP_BODY_H

#include <stdbool.h>
#include <stddef.h>

#define CLI_BODY_MAX (64L << 20)

struct cli_body {
	char *data; /* malloc'ed, NUL-terminated; NULL while empty. The caller frees it. */
	size_t len;
	bool too_large; /* the answer went past CLI_BODY_MAX: the transfer was stopped */
};

/* A CURLOPT_WRITEFUNCTION; its CURLOPT_WRITEDATA is a struct cli_body. */
size_t cli_body_write(char *p, size_t size, size_t n, void *arg);

#endif
