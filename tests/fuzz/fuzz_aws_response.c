/*
 * libFuzzer target for router/aws_event.c's parsers of outside input. The first byte
 * picks where the rest goes:
 *   0 (and anything else)  a function's result body, as an aws-format function answering
 *      a sync webhook would return it -> td_aws_result_to_http;
 *   1  the httpheaders extension of a webhook event (a CloudEvent posted to a webhook can
 *      forge it) -> td_event_aws_payload, the function-URL request event;
 *   2  the query string of a webhook event (httpquery; the same) -> td_event_aws_payload;
 *   3  raw request headers "name\0value\0..." -> td_aws_headers_json, whose text then goes
 *      through the function-URL request event.
 *
 * Oracles: a result stays OK (with a status 100..599, a content type, headers whose names
 * are tokens and whose values hold no CR or LF) or becomes an ERROR with a reason and a
 * JSON body, or RETRY only for out of memory; every payload is valid JSON; every
 * httpheaders text is a valid extension value and valid JSON.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <triggerd/aws_event.h>
#include <triggerd/errors.h>
#include <triggerd/event.h>
#include <triggerd/function.h>

#include "../../router/json.h"

#define CHECK(cond, what)                                                                          \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_aws_response: %s\n", what);                          \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static struct td_event *webhook_event(void)
{
	struct td_event *ev = td_event_create();

	CHECK(ev, "out of memory");
	CHECK(td_event_set(ev, "id", "fuzz-1") == 0 &&
		  td_event_set(ev, "source", "triggerd/webhook/in") == 0 &&
		  td_event_set(ev, "type", "triggerd.webhook.request") == 0 &&
		  td_event_set(ev, "httpmethod", "POST") == 0 &&
		  td_event_set(ev, "subject", "/hooks/in") == 0 &&
		  td_event_set(ev, "time", "2026-11-27T06:40:52.543Z") == 0 &&
		  td_event_set_data(ev, "{\"a\":1}", 7, "application/json") == 0,
	      "cannot build the webhook event");
	return ev;
}

static void check_payload(const struct td_event *ev)
{
	size_t len;
	char *text = td_event_aws_payload(ev, &len);

	CHECK(text, "no payload");
	CHECK(strlen(text) == len, "payload length");
	CHECK(td_json_valid(text, len, 0), "payload is not JSON");
	free(text);
}

static bool token(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= 'A' && *s <= 'Z') || strchr("!#$%&'*+-.^_`|~", *s)))
			return false;
	return true;
}

static void fuzz_response(const struct td_event *ev, const uint8_t *data, size_t size)
{
	struct td_result res = {.status = TD_RESULT_OK, .http_status = 200};

	res.body = malloc(size + 1);
	CHECK(res.body, "out of memory");
	memcpy(res.body, data, size);
	res.body[size] = '\0';
	res.body_len = size;
	td_aws_result_to_http(ev, &res);
	switch (res.status) {
	case TD_RESULT_OK:
		CHECK(res.http_status >= 100 && res.http_status <= 599, "status out of range");
		CHECK(res.body || res.body_len == 0, "body length without a body");
		for (size_t i = 0; i < res.nheaders; i++) {
			CHECK(token(res.headers[i].name), "header name is no token");
			CHECK(!strpbrk(res.headers[i].value, "\r\n"), "CR or LF in a header value");
		}
		if (res.nheaders || res.http_status != 200)
			CHECK(res.content_type, "a response object without a content type");
		break;
	case TD_RESULT_ERROR:
		CHECK(res.error && *res.error, "an error without a reason");
		CHECK(res.body && td_json_valid(res.body, res.body_len, 0),
		      "an error body that is not JSON");
		CHECK(res.nheaders == 0, "an error with headers");
		break;
	default:
		CHECK(res.error && strcmp(res.error, "out of memory") == 0,
		      "RETRY but not out of memory");
		break;
	}
	td_result_clear(&res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct td_event *ev = webhook_event();
	uint8_t mode = size ? data[0] : 0;
	const char *text = size ? (const char *)data + 1 : "";
	size_t n = size ? size - 1 : 0;

	switch (mode) {
	case 1:
	case 2:
		/* Only what an extension can hold reaches an event. */
		if (td_event_setn(ev, mode == 1 ? TD_AWS_EXT_HEADERS : TD_AWS_EXT_QUERY, text, n) ==
		    0)
			check_payload(ev);
		break;
	case 3: {
		struct td_http_header h[64];
		size_t nh = 0, pos = 0;
		char *copy = malloc(n + 2);
		CHECK(copy, "out of memory");
		memcpy(copy, text, n);
		copy[n] = copy[n + 1] = '\0';
		while (pos < n && nh < 64) {
			h[nh].name = copy + pos;
			pos += strlen(copy + pos) + 1;
			h[nh].value = pos <= n ? copy + pos : "";
			pos += pos <= n ? strlen(copy + pos) + 1 : 0;
			nh++;
		}
		static const char *const redact[] = {"authorization", "x-sig"};
		char *json = td_aws_headers_json(h, nh, redact, 2);
		CHECK(json, "no headers text");
		CHECK(td_json_valid(json, strlen(json), 0), "headers text is not JSON");
		CHECK(td_event_set(ev, TD_AWS_EXT_HEADERS, json) == 0,
		      "headers text is no extension value");
		check_payload(ev);
		free(json);
		free(copy);
		break;
	}
	default:
		fuzz_response(ev, (const uint8_t *)text, n);
		break;
	}
	td_event_unref(ev);
	return 0;
}
