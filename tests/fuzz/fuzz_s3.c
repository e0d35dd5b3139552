/*
 * libFuzzer target for the S3 / MinIO notification parser (connectors/s3.c). The first
 * byte picks where the rest goes, so that the fuzzer reaches the record walker without
 * a corpus:
 *   0  the whole body (AWS, MinIO or anything else);
 *   1  an object key inside a valid MinIO-shaped body (as the JSON string's inside);
 *   2  one record inside {"Records": [...]}, after a valid record;
 *   3  the members of a record around a valid "s3" member;
 *   4  td_s3_key_decode on the raw bytes.
 *
 * Oracles: a refusal is -TD_EINVAL (never a setter's refusal passed off as out of
 * memory) and has a message; every event validates, has the adapter's type prefix, the
 * bucket extension, and a JSON payload that is byte for byte a part of the body; its
 * subject is a CloudEvents String; an empty result has no array; a key decodes to valid
 * UTF-8 without control characters or noncharacters.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <triggerd/errors.h>
#include <triggerd/event.h>

#include "../../connectors/s3.h"
#include "../../router/json.h"

#define CHECK(cond, what)                                                                          \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_s3: %s\n", what);                                    \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static const char rec_head[] =
    "{\"eventVersion\":\"2.0\",\"eventSource\":\"minio:s3\",\"awsRegion\":\"\","
    "\"eventTime\":\"2026-11-27T06:40:52.543Z\",\"eventName\":\"s3:ObjectCreated:Put\","
    "\"responseElements\":{\"x-amz-request-id\":\"F95362E982C13092\"},\"s3\":{\"bucket\":{"
    "\"name\":\"bkt\"},\"object\":{\"key\":\"";
static const char rec_tail[] = "\",\"sequencer\":\"1A21BBC433F\",\"size\":6}}}";
static const char valid_rec[] = "{\"eventSource\":\"aws:s3\",\"eventName\":\"ObjectCreated:Put\","
				"\"s3\":{\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":\"k\"}}}";

static bool is_text(const char *s)
{
	size_t n = strlen(s), i = 0, k;
	unsigned cp;

	while (i < n) {
		k = td_utf8_decode((const unsigned char *)s + i, n - i, &cp);
		if (k == 0 || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) ||
		    (cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) == 0xfffe)
			return false;
		i += k;
	}
	return true;
}

static void check_events(const char *body, size_t len, struct td_event **evs, int n)
{
	for (int i = 0; i < n; i++) {
		const struct td_event *ev = evs[i];
		const char *type = td_event_get(ev, "type"), *subject = td_event_get(ev, "subject");
		size_t dlen;
		const char *data = td_event_data(ev, &dlen);
		char err[256];

		CHECK(td_event_validate(ev, err, sizeof err) == 0, "an event does not validate");
		CHECK(type && strncmp(type, "com.amazonaws.s3.", 17) == 0, "type prefix");
		CHECK(td_event_get(ev, "s3bucket"), "no s3bucket");
		CHECK(subject && *subject && is_text(subject), "subject is not text");
		CHECK(td_event_data_kind(ev) == TD_DATA_JSON, "data is not JSON");
		CHECK(data && dlen <= len && memmem(body, len, data, dlen),
		      "data is not from the body");
	}
}

static void parse(const char *body, size_t len)
{
	struct td_event **evs = (struct td_event **)&evs;
	char err[256] = "";
	int n = td_s3_parse(body, len, &evs, err, sizeof err);

	if (n < 0) {
		/* Allocation does not fail here: -TD_ENOMEM would hide a setter's refusal. */
		CHECK(n == -TD_EINVAL, "refused with another code than -TD_EINVAL");
		CHECK(err[0], "refused without a message");
		CHECK(evs == NULL, "events left after a refusal");
		return;
	}
	CHECK(n == 0 ? evs == NULL : evs != NULL, "events array and count disagree");
	check_events(body, len, evs, n);
	td_s3_events_free(evs, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *d = (const char *)data + 1;
	size_t n = size ? size - 1 : 0;
	struct td_buf b, out;
	char err[256] = "";

	if (size == 0)
		return 0;
	td_buf_init(&b);
	switch (data[0] % 5) {
	case 0:
		parse(d, n);
		break;
	case 1:
		td_buf_appends(&b, "{\"EventName\":\"s3:ObjectCreated:Put\",\"Key\":\"bkt/x\","
				   "\"Records\":[");
		td_buf_appends(&b, rec_head);
		td_buf_append(&b, d, n);
		td_buf_appends(&b, rec_tail);
		td_buf_appends(&b, "]}");
		CHECK(!td_buf_failed(&b), "out of memory");
		parse(b.data, b.len);
		break;
	case 2:
		td_buf_appends(&b, "{\"Records\":[");
		td_buf_appends(&b, valid_rec);
		td_buf_appendc(&b, ',');
		td_buf_append(&b, d, n);
		td_buf_appends(&b, "]}");
		CHECK(!td_buf_failed(&b), "out of memory");
		parse(b.data, b.len);
		break;
	case 3:
		td_buf_appends(&b, "{\"Records\":[{\"s3\":{\"bucket\":{\"name\":\"b\"},\"object\":{"
				   "\"key\":\"k\"}},");
		td_buf_append(&b, d, n);
		td_buf_appends(&b, "}]}");
		CHECK(!td_buf_failed(&b), "out of memory");
		parse(b.data, b.len);
		break;
	default:
		td_buf_init(&out);
		if (td_s3_key_decode(d, n, &out, err, sizeof err) == 0) {
			CHECK(out.data && is_text(out.data) && strlen(out.data) == out.len,
			      "a decoded key is not text");
		} else {
			CHECK(err[0], "a key refused without a message");
		}
		td_buf_free(&out);
		break;
	}
	td_buf_free(&b);
	return 0;
}
