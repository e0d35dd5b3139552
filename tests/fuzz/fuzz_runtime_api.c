/*
 * libFuzzer target for what a runtime process sends to the Lambda Runtime API
 * (functions/runtime_api.h): the request line, the Lambda-Runtime-Function-Error-Type
 * header and the error body.
 *
 * Input: any bytes, split at the first two NUL bytes into a method+path ("METHOD PATH"),
 * a header value and a body (missing parts are empty; the body keeps any further NULs,
 * since it is length-delimited). Nothing may crash or read out of bounds; a parsed
 * request must have a kind, an id of 1 to TD_RAPI_ID_MAX allowed characters exactly
 * when the kind carries one, and a rejection must name its status (400, 404 or 405) and
 * reason. An error type must be printable ASCII without spaces or quotes; the message
 * must be a NUL-terminated string within its buffer.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <triggerd/errors.h>

#include "../../functions/runtime_api.h"

static void check_type(const char *type)
{
	size_t n = strlen(type);
	if (n == 0 || n > TD_RAPI_TYPE_MAX)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)type[i] <= 0x20 || (unsigned char)type[i] >= 0x7f ||
		    type[i] == '"' || type[i] == '\\')
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';

	const char *line = copy, *header = "", *body = "";
	size_t body_len = 0, n1 = strlen(copy);
	if (n1 < size) {
		header = copy + n1 + 1;
		size_t n2 = strlen(header);
		if (n1 + 1 + n2 < size) {
			body = header + n2 + 1;
			body_len = size - (size_t)(body - copy);
		}
	}

	/* The request line. */
	char method[16] = "GET";
	const char *path = line;
	const char *sp = strchr(line, ' ');
	if (sp && (size_t)(sp - line) < sizeof method) {
		memcpy(method, line, (size_t)(sp - line));
		method[sp - line] = '\0';
		path = sp + 1;
	}
	enum td_rapi_kind kind = 99;
	char id[TD_RAPI_ID_MAX + 1], err[200];
	int status = 0;
	err[0] = '\0';
	int rc = td_rapi_parse(method, path, &kind, id, &status, err, sizeof err);
	if (rc == 0) {
		size_t n = strlen(id);
		bool has_id = kind == TD_RAPI_RESPONSE || kind == TD_RAPI_ERROR;
		if (kind > TD_RAPI_INIT_ERROR || has_id != (n > 0) || n > TD_RAPI_ID_MAX ||
		    strspn(id,
			   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != n)
			abort();
	} else if (rc != -TD_EINVAL || !err[0] ||
		   (status != 400 && status != 404 && status != 405)) {
		abort();
	}

	/* The error type header alone, then with the body. */
	char type[TD_RAPI_TYPE_MAX + 1];
	if (td_rapi_error_type(header, strlen(header), type) == 0)
		check_type(type);
	else if (type[0])
		abort();
	char msg[300];
	memset(msg, 'z', sizeof msg);
	int json = td_rapi_parse_error(body, body_len, *header ? header : NULL, "Unhandled", type,
				       msg, sizeof msg);
	if (json != 0 && json != 1)
		abort();
	check_type(type);
	if (!memchr(msg, '\0', sizeof msg))
		abort();

	/* The error document built from them is valid JSON. */
	struct td_buf b;
	td_buf_init(&b);
	td_rapi_error_json(&b, type, msg);
	if (!td_buf_failed(&b) && !td_json_valid(b.data, b.len, 0))
		abort();
	td_buf_free(&b);
	free(copy);
	return 0;
}
