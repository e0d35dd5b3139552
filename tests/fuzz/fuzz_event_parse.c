/*
 * libFuzzer target for the envelope's parsers of outside input. The first byte picks
 * the door: even, the rest is a structured-mode JSON event (td_event_from_json); odd,
 * the rest is an HTTP request head and body: "Name: value" lines up to an empty line,
 * then the body (td_event_from_http, binary or structured mode).
 *
 * Every event that parses must also survive the way out and back:
 *   - td_event_validate passes, the payload kind matches its bytes;
 *   - td_event_to_json is valid JSON and td_event_from_json gives an equal event;
 *   - td_event_decode(td_event_encode()) gives an equal event of the same payload kind;
 *   - td_event_match_json is valid JSON;
 *   - td_event_http_headers + the payload parse again in binary mode to the same
 *     attributes and payload (extensions as Strings, the implied content type allowed,
 *     an empty payload read back as none).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <triggerd/event.h>

#include "../../router/json.h"

#define CHECK(cond, what)                                                                          \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_event_parse: %s\n", what);                           \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define MAX_HEADERS 64

struct headers {
	size_t n;
	struct td_http_header h[MAX_HEADERS];
};

static void collect(void *arg, const char *name, const char *value)
{
	struct headers *hs = arg;

	CHECK(hs->n < MAX_HEADERS, "too many headers out");
	hs->h[hs->n].name = strdup(name);
	hs->h[hs->n].value = strdup(value);
	CHECK(hs->h[hs->n].name && hs->h[hs->n].value, "out of memory");
	hs->n++;
}

static void headers_free(struct headers *hs)
{
	for (size_t i = 0; i < hs->n; i++) {
		free((char *)hs->h[i].name);
		free((char *)hs->h[i].value);
	}
	hs->n = 0;
}

static bool same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* What survives binary mode: attributes and extension values as text, the payload. */
static void check_http_trip(const struct td_event *a, const struct td_event *b)
{
	static const char *const core[] = {"id", "source", "type", "subject", "time", "dataschema"};
	const char *name, *value;
	size_t la, lb;
	const void *pa = td_event_data(a, &la), *pb = td_event_data(b, &lb);

	for (size_t i = 0; i < sizeof(core) / sizeof(core[0]); i++)
		CHECK(same(td_event_get(a, core[i]), td_event_get(b, core[i])),
		      "attribute changed");
	if (td_event_get(a, "datacontenttype"))
		CHECK(same(td_event_get(a, "datacontenttype"), td_event_get(b, "datacontenttype")),
		      "datacontenttype changed");
	for (size_t i = 0; td_event_extension(a, i, &name, &value); i++)
		CHECK(same(td_event_get(b, name), value), "extension changed");
	for (size_t i = 0; td_event_extension(b, i, &name, &value); i++)
		CHECK(td_event_get(a, name), "extension appeared");
	if (la == 0) {
		CHECK(td_event_data_kind(b) == TD_DATA_NONE, "empty payload came back");
		return;
	}
	CHECK(td_event_data_kind(a) == td_event_data_kind(b), "payload kind changed");
	CHECK(la == lb && memcmp(pa, pb, la) == 0, "payload changed");
}

static void check_event(struct td_event *ev)
{
	struct td_event *back;
	struct headers hs = {0};
	char err[256], *s;
	const void *p;
	size_t len, dlen;

	CHECK(td_event_validate(ev, err, sizeof(err)) == 0, "a parsed event does not validate");
	p = td_event_data(ev, &dlen);
	switch (td_event_data_kind(ev)) {
	case TD_DATA_NONE:
		CHECK(p == NULL, "data without a kind");
		break;
	case TD_DATA_JSON:
		CHECK(td_json_valid(p, dlen, TD_EVENT_DATA_MAX_DEPTH), "JSON payload is not JSON");
		CHECK(td_event_content_type_is_json(td_event_get(ev, "datacontenttype")),
		      "JSON payload under a non-JSON type");
		break;
	case TD_DATA_TEXT:
		CHECK(td_utf8_valid(p, dlen, NULL), "TEXT payload is not UTF-8");
		break;
	case TD_DATA_BINARY:
		CHECK(!td_utf8_valid(p, dlen, NULL), "BINARY payload is UTF-8");
		break;
	}

	s = td_event_to_json(ev, &len);
	CHECK(s, "to_json failed");
	CHECK(td_json_valid(s, len, 0), "to_json is not JSON");
	back = td_event_from_json(s, len, err, sizeof(err));
	if (!back)
		fprintf(stderr, "%s\n%s\n", err, s);
	CHECK(back, "to_json output is refused by from_json");
	CHECK(td_event_equal(ev, back), "to_json/from_json changed the event");
	td_event_unref(back);
	free(s);

	s = td_event_encode(ev, &len);
	CHECK(s, "encode failed");
	back = td_event_decode(s, len, err, sizeof(err));
	if (!back)
		fprintf(stderr, "%s\n", err);
	CHECK(back && td_event_equal(ev, back), "encode/decode changed the event");
	CHECK(td_event_data_kind(back) == td_event_data_kind(ev), "encode/decode changed the kind");
	td_event_unref(back);
	free(s);

	s = td_event_match_json(ev, &len);
	CHECK(s, "match_json failed");
	CHECK(td_json_valid(s, len, 0), "match_json is not JSON");
	free(s);

	td_event_http_headers(ev, collect, &hs);
	back = td_event_from_http(hs.h, hs.n, p, dlen, err, sizeof(err));
	if (!back)
		fprintf(stderr, "%s\n", err);
	CHECK(back, "own binary-mode headers are refused");
	check_http_trip(ev, back);
	td_event_unref(back);
	headers_free(&hs);
}

/* "Name: value" lines (LF or CRLF) up to an empty line; the rest is the body. */
static struct td_event *from_request(const char *s, size_t n, char *err, size_t errlen)
{
	struct headers hs = {0};
	struct td_event *ev;
	size_t i = 0;

	while (i < n) {
		const char *nl = memchr(s + i, '\n', n - i);
		size_t end = nl ? (size_t)(nl - s) : n, le = end;
		const char *colon;

		if (le > i && s[le - 1] == '\r')
			le--;
		if (le == i) {
			i = end + 1;
			break;
		}
		colon = memchr(s + i, ':', le - i);
		if (colon && hs.n < MAX_HEADERS) {
			hs.h[hs.n].name = strndup(s + i, (size_t)(colon - (s + i)));
			hs.h[hs.n].value = strndup(colon + 1, le - (size_t)(colon + 1 - s));
			CHECK(hs.h[hs.n].name && hs.h[hs.n].value, "out of memory");
			hs.n++;
		}
		i = end + 1;
	}
	if (i > n)
		i = n;
	(void)td_event_http_is_cloudevent(hs.h, hs.n);
	ev = td_event_from_http(hs.h, hs.n, s + i, n - i, err, errlen);
	headers_free(&hs);
	return ev;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct td_event *ev;
	char err[256] = "";

	if (size < 1)
		return 0;
	if (data[0] % 2 == 0)
		ev = td_event_from_json((const char *)data + 1, size - 1, err, sizeof(err));
	else
		ev = from_request((const char *)data + 1, size - 1, err, sizeof(err));
	if (!ev) {
		CHECK(err[0] != '\0', "refused without a message");
		return 0;
	}
	check_event(ev);
	td_event_unref(ev);
	return 0;
}
