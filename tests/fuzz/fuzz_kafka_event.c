/*
 * libFuzzer target for the outside input of the Kafka source (connectors/kafka_event.c).
 * The first byte picks where the rest goes:
 *   0  a consumed record: [key length][key][header count]{[name length][name][value
 *      length (255: null)][value]}... and the rest as the value (every byte arbitrary,
 *      as a broker may hand them over) -> td_kafka_record_event, then the event's JSON
 *      form, its AWS shape, its origin (key and headers) and a dead letter;
 *   1  an event in structured JSON (as any source may bring one, with forged Kafka
 *      attributes) -> td_kafka_aws_json and td_kafka_event_origin;
 *   2  a destination record -> td_kafka_destination_origin;
 *   3  a kafkaheaders text -> td_kafka_headers_parse.
 *
 * Oracles: every record becomes an event (the only refusal is out of memory) that
 * validates, reads back equal from its JSON form, has the id TOPIC-PARTITION-OFFSET and
 * gives back exactly the key and headers it came with; the JSON made directly from the
 * record (td_kafka_record_json, the batch path) is byte for byte the event's JSON; the
 * AWS shape of a record event is valid JSON; a refusal is -TD_EINVAL with a message.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <triggerd/errors.h>
#include <triggerd/event.h>

#include "../../connectors/kafka_event.h"
#include "../../router/json.h"

#define CHECK(cond, what)                                                                          \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_kafka_event: %s\n", what);                           \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

struct reader {
	const uint8_t *p;
	size_t n;
};

static bool take(struct reader *r, size_t len, const uint8_t **out)
{
	if (r->n < len)
		return false;
	*out = r->p;
	r->p += len;
	r->n -= len;
	return true;
}

static bool take_byte(struct reader *r, uint8_t *b)
{
	const uint8_t *p;
	if (!take(r, 1, &p))
		return false;
	*b = *p;
	return true;
}

static void headers_sink(void *arg, const char *name, size_t name_len, const void *value,
			 size_t value_len)
{
	(void)arg;
	(void)name;
	(void)name_len;
	(void)value;
	(void)value_len;
}

static void fuzz_record(struct reader *r)
{
	struct td_kafka_header hs[16];
	uint8_t klen = 0, nh = 0;
	const uint8_t *key = NULL, *p;
	size_t n = 0;
	if (!take_byte(r, &klen) || (klen != 255 && !take(r, klen, &key)))
		return;
	if (!take_byte(r, &nh))
		return;
	for (; n < nh % 17 && n < 16; n++) {
		const uint8_t *name, *value = NULL;
		uint8_t nlen, vlen;
		if (!take_byte(r, &nlen) || !take(r, nlen, &name) || !take_byte(r, &vlen))
			return;
		if (vlen != 255 && !take(r, vlen, &value))
			return;
		/* Names are C strings in librdkafka: cut at the first NUL. */
		size_t real = strnlen((const char *)name, nlen);
		hs[n] = (struct td_kafka_header){(const char *)name, real, value,
						 vlen == 255 ? 0 : vlen};
	}
	(void)take(r, 0, &p);
	struct td_kafka_record rec = {
	    .topic = "fuzz.topic_1",
	    .partition = (int)(klen % 7),
	    .offset = (long long)r->n * 1000003LL,
	    .key = key,
	    .key_len = key ? klen : 0,
	    .value = r->n % 5 == 4 ? NULL : r->p,
	    .value_len = r->n % 5 == 4 ? 0 : r->n,
	    .timestamp_ms = (long long)nh * 86400000LL * 365 * 40 + (long long)klen * 1000003LL,
	    .timestamp_type = nh % 3,
	    .headers = hs,
	    .nheaders = n,
	};
	char err[256] = "", id[64];
	struct td_event *ev = td_kafka_record_event("triggerd/kafka/fuzz", &rec, err, sizeof err);
	if (!ev)
		fprintf(stderr, "refused: %s\n", err);
	CHECK(ev, "a record was refused");
	CHECK(td_event_validate(ev, err, sizeof err) == 0, "the record event does not validate");
	snprintf(id, sizeof id, "fuzz.topic_1-%d-%lld", rec.partition, rec.offset);
	CHECK(strcmp(td_event_get(ev, "id"), id) == 0, "wrong id");
	size_t len, len2;
	char *json = td_event_to_json(ev, &len);
	CHECK(json, "no JSON form");
	struct td_event *back = td_event_from_json(json, len, err, sizeof err);
	CHECK(back && td_event_equal(ev, back), "the JSON form does not read back equal");
	td_event_unref(back);
	char *aws = td_kafka_aws_json(ev, "b:1", &len2, err, sizeof err);
	CHECK(aws && td_json_valid(aws, len2, 0), "the AWS shape of a record is not JSON");
	free(aws);
	struct td_kafka_origin o;
	CHECK(td_kafka_event_origin(ev, &o, err, sizeof err) == 0, "no origin of a record");
	CHECK((o.key != NULL) == (key != NULL), "the key was not kept");
	CHECK(!key || (o.key_len == klen && memcmp(o.key, key, klen) == 0), "the key changed");
	CHECK(o.nheaders == n, "headers were lost");
	for (size_t i = 0; i < n; i++) {
		CHECK((o.headers[i].value != NULL) == (hs[i].value != NULL),
		      "a null header changed");
		CHECK(!hs[i].value ||
			  (o.headers[i].value_len == hs[i].value_len &&
			   memcmp(o.headers[i].value, hs[i].value, hs[i].value_len) == 0),
		      "a header value changed");
	}
	td_kafka_origin_clear(&o);
	struct td_kafka_failure f = {.source = "fuzz",
				     .condition = "RetryAttemptsExhausted",
				     .attempts = 1,
				     .wall_ms = 0,
				     .batch_size = 1};
	char *letter = td_kafka_dead_letter(ev, &f, &len2);
	CHECK(letter && td_json_valid(letter, len2, 0), "the dead letter is not JSON");
	CHECK(td_kafka_destination_origin(letter, len2, &o, err, sizeof err) == 0,
	      "the dead letter has no origin");
	CHECK(o.nheaders == n, "the dead letter lost headers");
	td_kafka_origin_clear(&o);
	free(letter);
	/* The JSON made directly from the record is the event's, byte for byte. */
	struct td_buf direct = {0};
	bool has_subject;
	CHECK(td_kafka_record_json("triggerd/kafka/fuzz", &rec, &direct, &has_subject) == 0,
	      "no direct JSON");
	CHECK(direct.len == len && memcmp(direct.data, json, len) == 0,
	      "the direct JSON differs from the event's");
	CHECK(has_subject == (td_event_get(ev, "subject") != NULL), "subject disagreement");
	struct td_kafka_batch_item items[2] = {
	    {direct.data, direct.len, rec.offset, td_event_get(ev, "subject"), rec.timestamp_ms,
	     rec.timestamp_type},
	    {direct.data, direct.len, rec.offset + 1, NULL, -1, 0},
	};
	struct td_event *batch = td_kafka_batch_event("triggerd/kafka/fuzz", rec.topic,
						      rec.partition, items, 2, err, sizeof err);
	CHECK(batch, "no batch event");
	aws = td_kafka_aws_json(batch, NULL, NULL, err, sizeof err);
	CHECK(aws, "the AWS shape of a batch was refused");
	free(aws);
	td_event_unref(batch);
	td_buf_free(&direct);
	free(json);
	td_event_unref(ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct reader r = {data + 1, size - 1};
	const char *text = (const char *)data + 1;
	size_t len = size - 1;
	char err[256];
	struct td_kafka_origin o;
	switch (data[0] % 4) {
	case 0:
		fuzz_record(&r);
		break;
	case 1: {
		struct td_event *ev = td_event_from_json(text, len, err, sizeof err);
		if (!ev)
			break;
		err[0] = '\0';
		char *aws = td_kafka_aws_json(ev, "b", NULL, err, sizeof err);
		CHECK(aws || err[0], "a refusal without a message");
		free(aws);
		int rc = td_kafka_event_origin(ev, &o, err, sizeof err);
		CHECK(rc == 0 || rc == -TD_EINVAL || rc == -TD_ENOMEM, "odd origin result");
		td_kafka_origin_clear(&o);
		td_event_unref(ev);
		break;
	}
	case 2: {
		int rc = td_kafka_destination_origin(text, len, &o, err, sizeof err);
		CHECK(rc == 0 || rc == -TD_EINVAL || rc == -TD_ENOMEM, "odd origin result");
		td_kafka_origin_clear(&o);
		break;
	}
	default: {
		err[0] = '\0';
		int rc = td_kafka_headers_parse(text, len, headers_sink, NULL, err, sizeof err);
		CHECK(rc >= 0 || rc == -TD_ENOMEM || (rc == -TD_EINVAL && err[0]),
		      "a refusal without a message");
		break;
	}
	}
	return 0;
}
