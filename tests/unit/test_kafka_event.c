/*
 * Unit tests for connectors/kafka_event.c: the record event (every attribute and
 * extension, keys that can and cannot be a subject, headers as extensions and in
 * kafkaheaders, the content-type header, tombstones, timestamps, offsets beyond 32
 * bits), batch events (ids, common subject, data as the records' JSON, which reads back
 * equal), the AWS self-managed Kafka shape (checked against the shared sample,
 * TD_SAMPLES, default ../shared/samples), kafkaheaders parsing with its error messages,
 * the key and headers to produce with (from an event and from a destination record),
 * dead letters, and topic names.
 */
#include <criterion/criterion.h>

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <triggerd/errors.h>
#include <triggerd/event.h>
#include <triggerd/function.h>

#include "../../connectors/kafka_event.h"
#include "../../router/json.h"

#define SRC "triggerd/kafka/orders"

static struct td_event *record_event(const struct td_kafka_record *r)
{
	char err[256] = "";
	struct td_event *ev = td_kafka_record_event(SRC, r, err, sizeof err);
	cr_assert_not_null(ev, "record event: %s", err);
	return ev;
}

static void expect_attr(const struct td_event *ev, const char *name, const char *want)
{
	const char *got = td_event_get(ev, name);
	if (!want) {
		cr_expect_null(got, "%s should be absent, is \"%s\"", name, got);
		return;
	}
	cr_assert_not_null(got, "%s is missing", name);
	cr_expect_str_eq(got, want, "%s", name);
}

static enum td_attr_type ext_type(const struct td_event *ev, const char *name)
{
	const char *n, *v;
	for (size_t i = 0; td_event_extension(ev, i, &n, &v); i++)
		if (strcmp(n, name) == 0)
			return td_event_extension_type(ev, i);
	cr_assert_fail("no extension %s", name);
	return TD_ATTR_STRING;
}

Test(kafka_event, record_attributes)
{
	struct td_kafka_header hs[] = {
	    {"traceparent", 11, "00-abc", 6},
	    {"tenant", 6, "acme", 4},
	    {"Content-Type", 12, "application/json", 16},
	};
	struct td_kafka_record r = {
	    .topic = "orders",
	    .partition = 3,
	    .offset = 42,
	    .key = "customer-7",
	    .key_len = 10,
	    .value = "{\"amount\": 1200}",
	    .value_len = 16,
	    .timestamp_ms = 1545084650987LL,
	    .timestamp_type = TD_KAFKA_TS_CREATE,
	    .headers = hs,
	    .nheaders = 3,
	};
	struct td_event *ev = record_event(&r);
	expect_attr(ev, "id", "orders-3-42");
	expect_attr(ev, "source", SRC);
	expect_attr(ev, "type", "triggerd.kafka.record");
	expect_attr(ev, "subject", "customer-7");
	expect_attr(ev, "time", "2018-12-17T22:10:50.987Z");
	expect_attr(ev, "datacontenttype", "application/json");
	expect_attr(ev, "kafkatopic", "orders");
	expect_attr(ev, "kafkapartition", "3");
	expect_attr(ev, "kafkaoffset", "42");
	expect_attr(ev, "kafkakey", NULL);
	expect_attr(ev, "kafkatimestamptype", NULL);
	expect_attr(ev, "traceparent", "00-abc");
	expect_attr(ev, "tenant", "acme");
	cr_expect_eq(ext_type(ev, "kafkapartition"), TD_ATTR_INTEGER);
	cr_expect_eq(ext_type(ev, "kafkaoffset"), TD_ATTR_INTEGER);
	cr_expect_eq(ext_type(ev, "kafkatopic"), TD_ATTR_STRING);
	cr_expect_eq(td_event_data_kind(ev), TD_DATA_JSON);
	/* kafkaheaders: every header, base64 values, in order. */
	expect_attr(ev, "kafkaheaders",
		    "[{\"traceparent\":\"MDAtYWJj\"},{\"tenant\":\"YWNtZQ==\"},"
		    "{\"Content-Type\":\"YXBwbGljYXRpb24vanNvbg==\"}]");
	char err[256];
	cr_expect_eq(td_event_validate(ev, err, sizeof err), 0, "%s", err);
	td_event_unref(ev);
}

Test(kafka_event, keys_that_are_no_subject_go_to_kafkakey)
{
	static const struct {
		const char *key;
		size_t len;
		const char *subject, *kafkakey;
	} rows[] = {
	    {"plain", 5, "plain", NULL},
	    {"\x00\x01\xff", 3, NULL, "AAH/"},
	    {"", 0, NULL, ""},
	    {"tab\there", 8, NULL, "dGFiCWhlcmU="},
	    {"caf\xc3\xa9", 5, "caf\xc3\xa9", NULL},
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct td_kafka_record r = {.topic = "t",
					    .offset = 1,
					    .key = rows[i].key,
					    .key_len = rows[i].len,
					    .value = "x",
					    .value_len = 1,
					    .timestamp_ms = -1};
		struct td_event *ev = record_event(&r);
		expect_attr(ev, "subject", rows[i].subject);
		expect_attr(ev, "kafkakey", rows[i].kafkakey);
		expect_attr(ev, "time", NULL);
		td_event_unref(ev);
	}
}

Test(kafka_event, null_key_null_value_and_broker_time)
{
	struct td_kafka_record r = {.topic = "t",
				    .partition = 0,
				    .offset = 5000000000LL,
				    .timestamp_ms = 0,
				    .timestamp_type = TD_KAFKA_TS_LOG_APPEND};
	struct td_event *ev = record_event(&r);
	expect_attr(ev, "subject", NULL);
	expect_attr(ev, "kafkakey", NULL);
	expect_attr(ev, "kafkaheaders", NULL);
	expect_attr(ev, "kafkaoffset", "5000000000");
	cr_expect_eq(ext_type(ev, "kafkaoffset"), TD_ATTR_STRING, "beyond a 32-bit Integer");
	expect_attr(ev, "kafkatimestamptype", "LOG_APPEND_TIME");
	expect_attr(ev, "time", "1970-01-01T00:00:00.000Z");
	cr_expect_eq(td_event_data_kind(ev), TD_DATA_NONE, "a tombstone has no data");
	td_event_unref(ev);
}

Test(kafka_event, headers_that_cannot_be_extensions)
{
	struct td_kafka_header hs[] = {
	    {"Tenant", 6, "upper", 5},		    /* upper case: not an extension name */
	    {"x-trace", 7, "dash", 4},		    /* '-' */
	    {"averyveryverylongname1", 22, "l", 1}, /* over 20 characters */
	    {"kafkatopic", 10, "spoof", 5},	    /* reserved prefix */
	    {"subject", 7, "spoof", 5},		    /* a CloudEvents attribute */
	    {"id", 2, "spoof", 5},
	    {"ctl", 3, "a\nb", 3}, /* a control character */
	    {"bin", 3, "\xff", 1}, /* not UTF-8 */
	    {"nul", 3, NULL, 0},   /* null value */
	    {"rep", 3, "first", 5},
	    {"rep", 3, "second", 6}, /* the last one wins */
	    {"content-type", 12, "not a media type", 16},
	};
	size_t n = sizeof hs / sizeof hs[0];
	struct td_kafka_record r = {.topic = "t",
				    .offset = 0,
				    .value = "{}",
				    .value_len = 2,
				    .timestamp_ms = -1,
				    .headers = hs,
				    .nheaders = n};
	struct td_event *ev = record_event(&r);
	expect_attr(ev, "subject", NULL);
	expect_attr(ev, "id", "t-0-0");
	expect_attr(ev, "kafkatopic", "t");
	expect_attr(ev, "ctl", NULL);
	expect_attr(ev, "bin", NULL);
	expect_attr(ev, "nul", NULL);
	expect_attr(ev, "rep", "second");
	expect_attr(ev, "datacontenttype", NULL);
	const char *name, *value;
	size_t exts = 0;
	for (size_t i = 0; td_event_extension(ev, i, &name, &value); i++)
		exts++;
	cr_expect_eq(exts, 5, "kafkatopic, kafkapartition, kafkaoffset, kafkaheaders, rep");
	/* Every header is still in kafkaheaders, null as null. */
	const char *kh = td_event_get(ev, "kafkaheaders");
	cr_assert_not_null(kh);
	json_error_t jerr;
	json_t *arr = json_loads(kh, 0, &jerr);
	cr_assert_not_null(arr, "%s", jerr.text);
	cr_expect_eq(json_array_size(arr), n);
	cr_expect(json_is_null(json_object_get(json_array_get(arr, 8), "nul")));
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(arr, 7), "bin")), "/w==");
	json_decref(arr);
	td_event_unref(ev);
}

Test(kafka_event, odd_header_names_stay_a_cloudevents_string)
{
	/* DEL, a C1 control (U+0085), a noncharacter (U+FFFF), a byte that is not UTF-8, a
	 * quote and a control character. */
	static const char name[] = "a\x7f\xc2\x85\xef\xbf\xbf\xff\"\x01";
	struct td_kafka_header hs[] = {{name, sizeof name - 1, "v", 1}};
	struct td_kafka_record r = {.topic = "t",
				    .value = "{}",
				    .value_len = 2,
				    .timestamp_ms = -1,
				    .headers = hs,
				    .nheaders = 1};
	struct td_event *ev = record_event(&r);
	expect_attr(ev, "kafkaheaders",
		    "[{\"a\\u007f\\u0085\\uffff\\ufffd\\\"\\u0001\":\"dg==\"}]");
	char err[256];
	cr_expect_eq(td_event_validate(ev, err, sizeof err), 0, "%s", err);
	td_event_unref(ev);
}

Test(kafka_event, content_type_header_classifies_the_data)
{
	struct td_kafka_header hs[] = {{"content-type", 12, "text/plain", 10}};
	struct td_kafka_record r = {.topic = "t",
				    .value = "{\"a\":1}",
				    .value_len = 7,
				    .timestamp_ms = -1,
				    .headers = hs,
				    .nheaders = 1};
	struct td_event *ev = record_event(&r);
	expect_attr(ev, "datacontenttype", "text/plain");
	cr_expect_eq(td_event_data_kind(ev), TD_DATA_TEXT);
	td_event_unref(ev);
	r.nheaders = 0;
	r.value = "\xff\xfe";
	r.value_len = 2;
	ev = record_event(&r);
	cr_expect_eq(td_event_data_kind(ev), TD_DATA_BINARY);
	td_event_unref(ev);
}

static struct td_kafka_record numbered_record(int offset, const char *key, char value[64])
{
	int n = snprintf(value, 64, "{\"n\":%d}", offset);
	struct td_kafka_record r = {.topic = "orders",
				    .partition = 1,
				    .offset = offset,
				    .key = key,
				    .key_len = key ? strlen(key) : 0,
				    .value = value,
				    .value_len = (size_t)n,
				    .timestamp_ms = 1000LL * offset,
				    .timestamp_type = TD_KAFKA_TS_CREATE};
	return r;
}

static struct td_event *numbered(int offset, const char *key)
{
	char value[64];
	struct td_kafka_record r = numbered_record(offset, key, value);
	return record_event(&r);
}

/* Batch items the way the source makes them: the JSON made directly from the record. */
struct items {
	struct td_kafka_batch_item v[8];
	struct td_buf json[8];
	size_t n;
};

static void add_item(struct items *it, const struct td_kafka_record *r)
{
	bool has_subject;
	size_t i = it->n++;
	memset(&it->json[i], 0, sizeof it->json[i]);
	cr_assert_eq(td_kafka_record_json(SRC, r, &it->json[i], &has_subject), 0);
	it->v[i] = (struct td_kafka_batch_item){
	    it->json[i].data, it->json[i].len,
	    r->offset,	      has_subject ? (const char *)r->key : NULL,
	    r->timestamp_ms,  r->timestamp_type};
}

static void free_items(struct items *it)
{
	for (size_t i = 0; i < it->n; i++)
		td_buf_free(&it->json[i]);
}

Test(kafka_event, batch_event)
{
	static const int offs[3] = {10, 11, 13};
	struct items it = {0};
	char values[3][64], err[256] = "";
	for (int i = 0; i < 3; i++) {
		struct td_kafka_record r = numbered_record(offs[i], "k", values[i]);
		add_item(&it, &r);
	}
	struct td_event *b = td_kafka_batch_event(SRC, "orders", 1, it.v, 3, err, sizeof err);
	cr_assert_not_null(b, "%s", err);
	expect_attr(b, "id", "orders-1-10..13");
	expect_attr(b, "type", "triggerd.kafka.batch");
	expect_attr(b, "subject", "k");
	expect_attr(b, "time", "1970-01-01T00:00:10.000Z");
	expect_attr(b, "kafkaoffset", "10");
	expect_attr(b, "kafkalastoffset", "13");
	expect_attr(b, "kafkacount", "3");
	expect_attr(b, "kafkapartition", "1");
	expect_attr(b, "datacontenttype", "application/json");
	cr_expect_eq(ext_type(b, "kafkacount"), TD_ATTR_INTEGER);
	cr_expect_eq(td_event_data_kind(b), TD_DATA_JSON);
	/* The data holds the records as structured JSON: each reads back equal to the record
	 * event made the other way. */
	size_t len;
	const char *data = td_event_data(b, &len);
	json_error_t jerr;
	json_t *arr = json_loadb(data, len, 0, &jerr);
	cr_assert(json_is_array(arr), "%s", jerr.text);
	cr_assert_eq(json_array_size(arr), 3);
	for (size_t i = 0; i < 3; i++) {
		char *one = json_dumps(json_array_get(arr, i), JSON_COMPACT);
		struct td_event *back = td_event_from_json(one, strlen(one), err, sizeof err);
		struct td_event *want = numbered(offs[i], "k");
		cr_assert_not_null(back, "%s", err);
		cr_expect(td_event_equal(back, want), "record %zu reads back equal", i);
		td_event_unref(back);
		td_event_unref(want);
		free(one);
	}
	json_decref(arr);
	td_event_unref(b);
	/* Different keys, or a record without a key: no subject. */
	it.v[1].subject = "other";
	b = td_kafka_batch_event(SRC, "orders", 1, it.v, 3, err, sizeof err);
	cr_assert_not_null(b, "%s", err);
	expect_attr(b, "subject", NULL);
	td_event_unref(b);
	it.v[1].subject = NULL;
	b = td_kafka_batch_event(SRC, "orders", 1, it.v, 3, err, sizeof err);
	expect_attr(b, "subject", NULL);
	td_event_unref(b);
	cr_expect_null(td_kafka_batch_event(SRC, "orders", 1, it.v, 0, err, sizeof err));
	free_items(&it);
}

/* The JSON made directly from a record is byte for byte the JSON of its event. */
Test(kafka_event, record_json_equals_the_event_json)
{
	static const char odd_name[] = "a\x7f\xc2\x85\xff";
	struct td_kafka_header many[140];
	char names[140][8];
	for (int i = 0; i < 140; i++) {
		snprintf(names[i], sizeof names[i], "h%d", i % 130);
		many[i] = (struct td_kafka_header){names[i], strlen(names[i]), "v", 1};
	}
	struct td_kafka_header hs[] = {
	    {"traceparent", 11, "00-abc", 6},
	    {"rep", 3, "one", 3},
	    {"x-y", 3, "z", 1},
	    {"rep", 3,
	     "\x01"
	     "bad",
	     4},
	    {"rep", 3, "two", 3},
	    {"nul", 3, NULL, 0},
	    {"nulv", 4, "a\0b", 3},
	    {odd_name, sizeof odd_name - 1, "v", 1},
	    {"subject", 7, "s", 1},
	    {"content-type", 12, "text/plain; charset=utf-8", 25},
	};
	static const struct {
		const char *key;
		size_t key_len;
		const char *value;
		size_t value_len;
		long long ts;
		int ts_type;
		long long offset;
		int nh; /* -1: many */
	} rows[] = {
	    {"k", 1, "{\"a\": [1, 2]}\n", 13, 1545084650987LL, TD_KAFKA_TS_CREATE, 42, 0},
	    {NULL, 0, "plain text", 10, 5, TD_KAFKA_TS_LOG_APPEND, 1, 0},
	    {"", 0, "\xff\x00\x01", 3, -1, TD_KAFKA_TS_NONE, 3000000000LL, 0},
	    {"\x01", 1, NULL, 0, 0, TD_KAFKA_TS_CREATE, 0, 0},
	    {"caf\xc3\xa9", 5, "{\"x\":1}", 7, 253402300800000LL, TD_KAFKA_TS_LOG_APPEND, 7, 10},
	    {"k", 1, "{\"x\":1}", 7, 1, TD_KAFKA_TS_CREATE, 8, 9},
	    {"k", 1, "\"quoted\"", 8, 1, TD_KAFKA_TS_CREATE, 9, -1},
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct td_kafka_record r = {.topic = "t.o_p-c",
					    .partition = 5,
					    .offset = rows[i].offset,
					    .key = rows[i].key,
					    .key_len = rows[i].key_len,
					    .value = rows[i].value,
					    .value_len = rows[i].value_len,
					    .timestamp_ms = rows[i].ts,
					    .timestamp_type = rows[i].ts_type,
					    .headers = rows[i].nh < 0 ? many : hs,
					    .nheaders = rows[i].nh < 0 ? 140 : (size_t)rows[i].nh};
		struct td_event *ev = record_event(&r);
		size_t len;
		char *want = td_event_to_json(ev, &len);
		struct td_buf got = {0};
		bool has_subject;
		cr_assert_eq(td_kafka_record_json(SRC, &r, &got, &has_subject), 0);
		cr_expect_str_eq(got.data, want, "row %zu", i);
		cr_expect_eq(has_subject, td_event_get(ev, "subject") != NULL, "row %zu", i);
		free(want);
		td_buf_free(&got);
		td_event_unref(ev);
	}
}

/* One prefix serves a partition's records in turn: each text is the event's JSON, while
 * its time cache goes through the same second, the next, back, out of range and none. */
Test(kafka_event, record_json_with_a_partition_prefix)
{
	static const struct {
		long long offset, ts;
		int ts_type;
		const char *key;
	} rows[] = {
	    {0, 1545084650987LL, TD_KAFKA_TS_CREATE, "k"},
	    {1, 1545084650001LL, TD_KAFKA_TS_CREATE, "k"},
	    {2, 1545084650999LL, TD_KAFKA_TS_LOG_APPEND, NULL},
	    {3, 1545084651000LL, TD_KAFKA_TS_CREATE, "k"},
	    {4, 1545084650500LL, TD_KAFKA_TS_CREATE, ""},
	    {5, -1, TD_KAFKA_TS_NONE, "k"},
	    {6, 1545084650500LL, TD_KAFKA_TS_NONE, "k"},
	    {7, 253402300800000LL, TD_KAFKA_TS_CREATE, "k"}, /* year 10000: no time */
	    {8, 253402300800007LL, TD_KAFKA_TS_CREATE, "k"},
	    {9, 0, TD_KAFKA_TS_CREATE, "k"},
	    {2147483648LL, 999, TD_KAFKA_TS_CREATE, "k"},
	    {2147483647LL, 1000, TD_KAFKA_TS_CREATE, "\x01"},
	};
	struct td_kafka_json_prefix pre;
	cr_assert_eq(td_kafka_json_prefix_init(&pre, SRC, "t.o_p-c", 12), 0);
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		char value[32];
		int n = snprintf(value, sizeof value, "{\"n\": %zu}", i);
		struct td_kafka_record r = {.topic = "t.o_p-c",
					    .partition = 12,
					    .offset = rows[i].offset,
					    .key = rows[i].key,
					    .key_len = rows[i].key ? strlen(rows[i].key) : 0,
					    .value = value,
					    .value_len = (size_t)n,
					    .timestamp_ms = rows[i].ts,
					    .timestamp_type = rows[i].ts_type};
		struct td_event *ev = record_event(&r);
		size_t len;
		char *want = td_event_to_json(ev, &len);
		struct td_buf got = {0}, plain = {0};
		bool has_subject, plain_subject;
		cr_assert_eq(td_kafka_record_json_with(&pre, &r, &got, &has_subject), 0);
		cr_assert_eq(td_kafka_record_json(SRC, &r, &plain, &plain_subject), 0);
		cr_expect_str_eq(got.data, want, "row %zu", i);
		cr_expect_str_eq(plain.data, want, "row %zu", i);
		cr_expect_eq(has_subject, td_event_get(ev, "subject") != NULL, "row %zu", i);
		cr_expect_eq(has_subject, plain_subject, "row %zu", i);
		free(want);
		td_buf_free(&got);
		td_buf_free(&plain);
		td_event_unref(ev);
	}
	td_kafka_json_prefix_free(&pre);
	cr_expect_null(pre.text);
	td_kafka_json_prefix_free(&pre); /* twice: harmless */
}

static char *read_sample(const char *name)
{
	const char *dir = getenv("TD_SAMPLES");
	char path[1024];
	snprintf(path, sizeof path, "%s/events/%s", dir && *dir ? dir : "../shared/samples", name);
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "cannot open %s (set TD_SAMPLES to the samples folder)", path);
	static char buf[8192];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static void expect_json_equal(const char *got, const char *want)
{
	json_error_t e1, e2;
	json_t *a = json_loads(got, 0, &e1), *b = json_loads(want, 0, &e2);
	cr_assert_not_null(a, "got is not JSON: %s: %s", e1.text, got);
	cr_assert_not_null(b, "want is not JSON: %s", e2.text);
	cr_expect(json_equal(a, b), "got %s\nwant %s", got, want);
	json_decref(a);
	json_decref(b);
}

Test(kafka_event, aws_shape_matches_the_sample)
{
	struct td_kafka_header hs[] = {{"traceparent", 11, "00", 2}};
	struct td_kafka_record r = {.topic = "orders",
				    .partition = 0,
				    .offset = 15,
				    .key = "key1",
				    .key_len = 4,
				    .value = "{\"orderId\":42}",
				    .value_len = 14,
				    .timestamp_ms = 1545084650987LL,
				    .timestamp_type = TD_KAFKA_TS_CREATE,
				    .headers = hs,
				    .nheaders = 1};
	struct td_event *ev = record_event(&r);
	char err[256] = "";
	size_t len;
	char *aws = td_kafka_aws_json(ev, "127.0.0.1:19240", &len, err, sizeof err);
	cr_assert_not_null(aws, "%s", err);
	cr_expect_eq(strlen(aws), len);
	expect_json_equal(aws, read_sample("kafka-selfmanaged.json"));
	free(aws);
	/* The same event read back from its JSON form gives the same shape. */
	char *text = td_event_to_json(ev, &len);
	struct td_event *back = td_event_from_json(text, len, err, sizeof err);
	cr_assert_not_null(back, "%s", err);
	aws = td_kafka_aws_json(back, "127.0.0.1:19240", NULL, err, sizeof err);
	cr_assert_not_null(aws, "%s", err);
	expect_json_equal(aws, read_sample("kafka-selfmanaged.json"));
	free(aws);
	free(text);
	td_event_unref(back);
	td_event_unref(ev);
}

Test(kafka_event, aws_shape_of_a_batch_and_of_odd_records)
{
	struct items it = {0};
	char value[64], err[256] = "";
	struct td_kafka_record r1 = numbered_record(1, NULL, value);
	struct td_kafka_record r2 = {.topic = "orders",
				     .partition = 1,
				     .offset = 2,
				     .key = "\xff",
				     .key_len = 1,
				     .timestamp_ms = 7,
				     .timestamp_type = TD_KAFKA_TS_LOG_APPEND};
	add_item(&it, &r1);
	add_item(&it, &r2);
	struct td_event *b = td_kafka_batch_event(SRC, "orders", 1, it.v, 2, err, sizeof err);
	cr_assert_not_null(b, "%s", err);
	char *aws = td_kafka_aws_json(b, NULL, NULL, err, sizeof err);
	cr_assert_not_null(aws, "%s", err);
	expect_json_equal(aws,
			  "{\"eventSource\":\"SelfManagedKafka\",\"bootstrapServers\":\"\","
			  "\"records\":{\"orders-1\":["
			  "{\"topic\":\"orders\",\"partition\":1,\"offset\":1,\"timestamp\":1000,"
			  "\"timestampType\":\"CREATE_TIME\",\"value\":\"eyJuIjoxfQ==\","
			  "\"headers\":[]},"
			  "{\"topic\":\"orders\",\"partition\":1,\"offset\":2,\"timestamp\":7,"
			  "\"timestampType\":\"LOG_APPEND_TIME\",\"key\":\"/w==\",\"value\":null,"
			  "\"headers\":[]}]}}");
	free(aws);
	td_event_unref(b);
	free_items(&it);
}

Test(kafka_event, aws_shape_refuses_other_events)
{
	static const char *const bad[][2] = {
	    {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"other\"}",
	     "is not a Kafka record"},
	    {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"triggerd.kafka."
	     "record\"}",
	     "missing or malformed"},
	    {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"triggerd.kafka."
	     "record\","
	     "\"kafkatopic\":\"t\",\"kafkapartition\":-1,\"kafkaoffset\":1}",
	     "missing or malformed"},
	    {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"triggerd.kafka."
	     "record\","
	     "\"kafkatopic\":\"t\",\"kafkapartition\":1,\"kafkaoffset\":1,\"kafkakey\":\"*\"}",
	     "kafkakey is not base64"},
	    {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"triggerd.kafka."
	     "record\","
	     "\"kafkatopic\":\"t\",\"kafkapartition\":1,\"kafkaoffset\":1,\"kafkaheaders\":\"[1]"
	     "\"}",
	     "element 1"},
	    {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"triggerd.kafka."
	     "record\","
	     "\"kafkatopic\":\"t\",\"kafkapartition\":1,\"kafkaoffset\":1,"
	     "\"kafkatimestamptype\":\"SOMETIME\"}",
	     "kafkatimestamptype"},
	    {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"triggerd.kafka."
	     "batch\","
	     "\"data\":{\"not\":\"an array\"}}",
	     "not a JSON array"},
	    {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"triggerd.kafka."
	     "batch\","
	     "\"data\":[{\"id\":1}]}",
	     "record 1"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char err[256] = "";
		struct td_event *ev =
		    td_event_from_json(bad[i][0], strlen(bad[i][0]), err, sizeof err);
		cr_assert_not_null(ev, "case %zu: %s", i, err);
		err[0] = '\0';
		char *aws = td_kafka_aws_json(ev, "b", NULL, err, sizeof err);
		cr_expect_null(aws, "case %zu should fail", i);
		cr_expect(strstr(err, bad[i][1]) != NULL, "case %zu: \"%s\" lacks \"%s\"", i, err,
			  bad[i][1]);
		free(aws);
		td_event_unref(ev);
	}
}

struct collected {
	char names[8][32];
	char values[8][32];
	bool null[8];
	int n;
};

static void collect(void *arg, const char *name, size_t name_len, const void *value,
		    size_t value_len)
{
	struct collected *c = arg;
	cr_assert_lt(c->n, 8);
	snprintf(c->names[c->n], 32, "%.*s", (int)name_len, name);
	c->null[c->n] = value == NULL;
	if (value)
		snprintf(c->values[c->n], 32, "%.*s", (int)value_len, (const char *)value);
	c->n++;
}

Test(kafka_event, headers_parse)
{
	struct collected c = {0};
	char err[256];
	const char *ok = "[{\"a\":\"eA==\"},{\"b\\u0021\":null},{\"c\":\"\"}]";
	cr_assert_eq(td_kafka_headers_parse(ok, strlen(ok), collect, &c, err, sizeof err), 3, "%s",
		     err);
	cr_expect_str_eq(c.names[0], "a");
	cr_expect_str_eq(c.values[0], "x");
	cr_expect_str_eq(c.names[1], "b!");
	cr_expect(c.null[1]);
	cr_expect_str_eq(c.values[2], "");
	cr_expect(!c.null[2]);
	static const char *const bad[][2] = {
	    {"", "not JSON text"},
	    {"[", "not JSON text"},
	    {"{}", "expected a JSON array"},
	    {"[1]", "element 1: expected an object with one member"},
	    {"[{}]", "element 1: expected an object with one member"},
	    {"[{\"a\":\"eA==\",\"b\":null}]", "element 1: expected an object with one member"},
	    {"[{\"a\":null},{\"b\":5}]", "element 2 (\"b\"): the value must be a base64 string"},
	    {"[{\"a\":\"not base64!\"}]", "element 1 (\"a\")"},
	    {"[[[{}]]]", "not JSON text"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct collected d = {0};
		err[0] = '\0';
		cr_expect_eq(td_kafka_headers_parse(bad[i][0], strlen(bad[i][0]), collect, &d, err,
						    sizeof err),
			     -TD_EINVAL, "case %zu", i);
		cr_expect(strstr(err, bad[i][1]) != NULL, "case %zu: \"%s\" lacks \"%s\"", i, err,
			  bad[i][1]);
	}
}

Test(kafka_event, origin_of_events_and_destination_records)
{
	struct td_kafka_header hs[] = {{"trace", 5, "t1", 2}, {"n", 1, NULL, 0}};
	struct td_kafka_record r = {.topic = "orders",
				    .partition = 2,
				    .offset = 9,
				    .key = "\x01k",
				    .key_len = 2,
				    .value = "v",
				    .value_len = 1,
				    .timestamp_ms = -1,
				    .headers = hs,
				    .nheaders = 2};
	struct td_event *ev = record_event(&r);
	struct td_kafka_origin o;
	char err[256];
	cr_assert_eq(td_kafka_event_origin(ev, &o, err, sizeof err), 0, "%s", err);
	cr_assert_eq(o.key_len, 2);
	cr_expect(memcmp(o.key, "\x01k", 2) == 0);
	cr_assert_eq(o.nheaders, 2);
	cr_expect_str_eq(o.headers[0].name, "trace");
	cr_expect(o.headers[0].value_len == 2 && memcmp(o.headers[0].value, "t1", 2) == 0);
	cr_expect_null(o.headers[1].value);
	td_kafka_origin_clear(&o);

	/* The router's destination record carries the event under requestPayload. */
	size_t len;
	char *evjson = td_event_to_json(ev, &len);
	char *rec;
	cr_assert(asprintf(&rec,
			   "{\"version\":\"1.0\",\"requestContext\":{\"condition\":\"x\"},"
			   "\"requestPayload\":%s,\"responsePayload\":null}",
			   evjson) > 0);
	cr_assert_eq(td_kafka_destination_origin(rec, strlen(rec), &o, err, sizeof err), 0, "%s",
		     err);
	cr_expect_eq(o.key_len, 2);
	cr_expect_eq(o.nheaders, 2);
	td_kafka_origin_clear(&o);
	free(rec);

	/* A dead letter made here reads back the same way. */
	struct td_result res = {
	    .status = TD_RESULT_ERROR, .http_status = 500, .body = "{\"oops\":1}", .body_len = 10};
	struct td_kafka_failure f = {.source = "orders",
				     .condition = "RetryAttemptsExhausted",
				     .attempts = 3,
				     .result = &res,
				     .error = "HTTP 500",
				     .wall_ms = 1545084650987LL,
				     .batch_size = 4,
				     .first_offset = 8,
				     .last_offset = 11,
				     .request_id = "11111111-2222-3333-4444-555555555555"};
	char *dl = td_kafka_dead_letter(ev, &f, &len);
	cr_assert_not_null(dl);
	json_error_t jerr;
	json_t *j = json_loadb(dl, len, 0, &jerr);
	cr_assert_not_null(j, "%s", jerr.text);
	cr_expect_str_eq(json_string_value(json_object_get(j, "timestamp")),
			 "2018-12-17T22:10:50.987Z");
	json_t *rc = json_object_get(j, "requestContext");
	cr_expect_str_eq(json_string_value(json_object_get(rc, "condition")),
			 "RetryAttemptsExhausted");
	cr_expect_eq(json_integer_value(json_object_get(rc, "approximateInvokeCount")), 3);
	cr_expect_str_eq(json_string_value(json_object_get(rc, "source")), "orders");
	cr_expect_eq(json_integer_value(
			 json_object_get(json_object_get(j, "responseContext"), "statusCode")),
		     500);
	cr_expect_eq(
	    json_integer_value(json_object_get(json_object_get(j, "responsePayload"), "oops")), 1);
	cr_expect_str_eq(json_string_value(json_object_get(j, "error")), "HTTP 500");
	json_t *bi = json_object_get(j, "KafkaBatchInfo");
	cr_expect_str_eq(json_string_value(json_object_get(bi, "topic")), "orders");
	cr_expect_eq(json_integer_value(json_object_get(bi, "partition")), 2);
	cr_expect_eq(json_integer_value(json_object_get(bi, "offset")), 9);
	cr_expect_eq(json_integer_value(json_object_get(bi, "batchSize")), 4);
	cr_expect_eq(json_integer_value(json_object_get(bi, "firstOffset")), 8);
	cr_expect_eq(json_integer_value(json_object_get(bi, "lastOffset")), 11);
	cr_expect_str_eq(
	    json_string_value(json_object_get(json_object_get(j, "requestPayload"), "id")),
	    "orders-2-9");
	json_decref(j);
	cr_assert_eq(td_kafka_destination_origin(dl, len, &o, err, sizeof err), 0, "%s", err);
	cr_expect_eq(o.key_len, 2);
	cr_expect_eq(o.nheaders, 2);
	td_kafka_origin_clear(&o);
	free(dl);
	free(evjson);
	td_event_unref(ev);

	/* Nothing to carry: other events, records without an event, other JSON. */
	static const char webhook_record[] =
	    "{\"requestPayload\":{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\","
	    "\"type\":\"webhook\",\"subject\":\"x\"}}";
	static const char *const none[] = {
	    webhook_record,
	    "{\"requestPayload\":{\"not\":\"an event\"}}",
	    "[1,2]",
	    "{}",
	};
	for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
		cr_expect_eq(
		    td_kafka_destination_origin(none[i], strlen(none[i]), &o, err, sizeof err), 0,
		    "case %zu", i);
		cr_expect_null(o.key, "case %zu", i);
		cr_expect_eq(o.nheaders, 0, "case %zu", i);
	}
	cr_expect_eq(td_kafka_destination_origin("{\"a\":", 5, &o, err, sizeof err), -TD_EINVAL);
	cr_expect(strstr(err, "not JSON") != NULL, "%s", err);
}

Test(kafka_event, topic_names_and_key_hash)
{
	static const struct {
		const char *topic;
		bool ok;
	} rows[] = {
	    {"orders", true}, {"a.b_c-D9", true}, {"", false},	     {".", false},
	    {"..", false},    {"sp ace", false},  {"slash/", false}, {"\xc3\xa9", false},
	};
	char err[256];
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		cr_expect_eq(td_kafka_topic_check(rows[i].topic, err, sizeof err) == 0, rows[i].ok,
			     "\"%s\"", rows[i].topic);
	char longname[300];
	memset(longname, 'a', 250);
	longname[250] = '\0';
	cr_expect_eq(td_kafka_topic_check(longname, err, sizeof err), -TD_EINVAL);
	cr_expect(strstr(err, "249") != NULL);
	cr_expect_eq(td_kafka_key_hash("abc", 3), td_kafka_key_hash("abc", 3));
	cr_expect_neq(td_kafka_key_hash("abc", 3), td_kafka_key_hash("abd", 3));
	cr_expect_neq(td_kafka_key_hash("", 0), td_kafka_key_hash("\0", 1));
}

/* The batch's data is the items' JSON joined into one array, byte for byte, and valid
 * JSON although the event does not validate it again (td_event_take_data_json). */
Test(kafka_event, batch_data_is_the_joined_items)
{
	struct items it = {0};
	char values[4][64], err[256] = "";
	for (int i = 0; i < 4; i++) {
		struct td_kafka_record r = numbered_record(100 + i, i % 2 ? "k" : NULL, values[i]);
		add_item(&it, &r);
	}
	for (size_t n = 1; n <= 4; n++) {
		struct td_event *b =
		    td_kafka_batch_event(SRC, "orders", 1, it.v, n, err, sizeof err);
		cr_assert_not_null(b, "%s", err);
		struct td_buf want = {0};
		td_buf_appendc(&want, '[');
		for (size_t i = 0; i < n; i++) {
			if (i)
				td_buf_appendc(&want, ',');
			td_buf_append(&want, it.v[i].json, it.v[i].json_len);
		}
		td_buf_appendc(&want, ']');
		size_t len;
		const char *data = td_event_data(b, &len);
		cr_expect_eq(len, want.len, "%zu records", n);
		cr_expect(memcmp(data, want.data, want.len) == 0, "%zu records", n);
		cr_expect_eq(data[len], '\0');
		cr_expect(td_json_valid(data, len, TD_EVENT_DATA_MAX_DEPTH), "%zu records", n);
		cr_expect_eq(td_event_data_kind(b), TD_DATA_JSON);
		/* The structured form reads back equal (the data as the exact array text). */
		size_t jlen;
		char *json = td_event_to_json(b, &jlen);
		struct td_event *back = td_event_from_json(json, jlen, err, sizeof err);
		cr_assert_not_null(back, "%s", err);
		cr_expect(td_event_equal(b, back));
		td_event_unref(back);
		free(json);
		td_buf_free(&want);
		td_event_unref(b);
	}
	free_items(&it);
}
