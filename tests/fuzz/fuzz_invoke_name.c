/*
 * libFuzzer target for the Invoke API's parsers (router/invoke_api.h).
 *
 * Input: any bytes. They are parsed as a FunctionName (length-delimited, so NUL bytes
 * and missing terminators are exercised), then, NUL-terminated and split at the first
 * '?', as a request path and its query. Neither may crash or read out of bounds, and
 * every success must give a function name of 1 to 64 allowed characters, a qualifier of
 * allowed characters, and a message-free rejection never: a failure always explains
 * itself in err. The bytes are also fed to the log tail, whose base64 must decode to
 * at most TD_INVOKE_TAIL_MAX bytes that end the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <triggerd/errors.h>

#include "../../router/invoke_api.h"

static void check_target(const struct td_invoke_target *t)
{
	size_t n = strlen(t->function);
	if (n == 0 || n > TD_INVOKE_NAME_MAX ||
	    strspn(t->function, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP"
				"QRSTUVWXYZ0123456789_-.") != n)
		abort();
	if (strspn(t->qualifier, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
				 "$_-") != strlen(t->qualifier))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct td_invoke_target t;
	char err[256];
	char *text;
	int rc;

	err[0] = '\0';
	rc = td_invoke_parse_function((const char *)data, size, &t, err, sizeof err);
	if (rc == 0)
		check_target(&t);
	else if (rc != -TD_EINVAL || !err[0])
		abort();

	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	char *q = strchr(text, '?');
	if (q)
		*q++ = '\0';
	err[0] = '\0';
	rc = td_invoke_parse_path(text, q, &t, err, sizeof err);
	if (rc == 0)
		check_target(&t);
	else if ((rc != -TD_EINVAL && rc != -TD_ENOTFOUND) || !err[0])
		abort();
	free(text);

	struct td_buf b, dec;
	td_buf_init(&b);
	td_buf_init(&dec);
	if (td_invoke_log_tail((const char *)data, size, &b) == 0 &&
	    td_base64_decode(b.data ? b.data : "", b.len, &dec, NULL, 0) == 0) {
		if (dec.len > TD_INVOKE_TAIL_MAX || dec.len > size ||
		    (dec.len && memcmp(dec.data, data + size - dec.len, dec.len) != 0))
			abort();
	}
	td_buf_free(&b);
	td_buf_free(&dec);
	return 0;
}
