/*
 * Unit tests for connectors/s3.c: every shared sample (AWS S3 notification, MinIO's
 * records and MinIO's webhook requests, whose top-level Key must agree with the decoded
 * subject), the attribute mapping, ids (stable, distinct per object), object keys
 * (spaces, plus signs, percent escapes, UTF-8, characters kept encoded, bad escapes),
 * test events, and malformed bodies with the words and place of their messages.
 */
#include <criterion/criterion.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <triggerd/errors.h>
#include <triggerd/event.h>

#include "../../connectors/s3.h"
#include "../../router/json.h"

static char *read_sample(const char *name, size_t *len)
{
	const char *dir = getenv("TD_SAMPLES");
	char path[1024];
	char *text;
	long n;
	FILE *f;

	snprintf(path, sizeof path, "%s/events/%s", dir && *dir ? dir : "../shared/samples", name);
	f = fopen(path, "rb");
	cr_assert_not_null(f,
			   "cannot open %s (set TD_SAMPLES to the samples folder, default "
			   "../shared/samples from the repository)",
			   path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	text = malloc((size_t)n + 1);
	cr_assert_not_null(text);
	cr_assert_eq(fread(text, 1, (size_t)n, f), (size_t)n);
	text[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return text;
}

static void expect_attr(const struct td_event *ev, const char *name, const char *want)
{
	const char *got = td_event_get(ev, name);

	if (!want) {
		cr_expect_null(got, "%s is set: %s", name, got);
		return;
	}
	cr_expect_not_null(got, "%s is missing", name);
	if (got)
		cr_expect_str_eq(got, want, "%s", name);
}

/* One event from body, which must parse. */
static struct td_event *one(const char *body, size_t len)
{
	struct td_event **evs;
	struct td_event *ev;
	char err[256] = "";
	int n = td_s3_parse(body, len, &evs, err, sizeof err);

	cr_assert_eq(n, 1, "parsed %d events: %s", n, err);
	ev = evs[0];
	free(evs);
	return ev;
}

/* The data of ev is exactly the text of the first record of body. */
static void expect_record_data(const struct td_event *ev, const char *body)
{
	const char *rec = strstr(body, "[") + 1;
	size_t len;
	const char *data = td_event_data(ev, &len);

	while (*rec == ' ')
		rec++;
	cr_assert_not_null(data);
	cr_expect_eq(td_event_data_kind(ev), TD_DATA_JSON);
	cr_expect_eq(memcmp(data, rec, len), 0, "data is not the record's text");
	while (rec[len] == ' ')
		len++; /* whitespace after the record is not part of it */
	cr_expect(rec[len] == ']' || rec[len] == ',', "data stops inside the record");
}

Test(s3, sample_aws_put)
{
	size_t len;
	char *body = read_sample("s3-put.json", &len);
	struct td_event *ev = one(body, len);

	expect_attr(ev, "specversion", "1.0");
	expect_attr(ev, "type", "com.amazonaws.s3.ObjectCreated:Put");
	expect_attr(ev, "source", "aws:s3.us-east-1.bkt");
	expect_attr(ev, "subject", "dir/my summer(2024).jpg");
	expect_attr(ev, "id", "C3D13FE58DE4C810.0055AED6DCD90281E5");
	expect_attr(ev, "time", "2026-11-27T06:00:00.000Z");
	expect_attr(ev, "s3bucket", "bkt");
	expect_attr(ev, "datacontenttype", "application/json");
	cr_expect_eq(td_event_validate(ev, NULL, 0), 0);
	expect_record_data(ev, body);
	td_event_unref(ev);
	free(body);
}

Test(s3, sample_minio_records)
{
	size_t len;
	char *body = read_sample("minio-records.json", &len);
	struct td_event *ev = one(body, len);

	/* "s3:" dropped from the type; the Go-escaped key decoded: %2B is a plus, + a space. */
	expect_attr(ev, "type", "com.amazonaws.s3.ObjectCreated:Put");
	expect_attr(ev, "source", "minio:s3..bkt");
	expect_attr(ev, "subject", "dir/my summer(2024)+\xc3\xa4.txt");
	expect_attr(ev, "id", "F95362E982C13092.1A21BBC433F");
	expect_attr(ev, "time", "2026-11-27T06:40:52.543Z");
	expect_attr(ev, "s3bucket", "bkt");
	expect_record_data(ev, body);
	td_event_unref(ev);
	free(body);
}

/* Every request MinIO made in the sample: the body parses, and MinIO's own top-level Key
 * (bucket "/" the unescaped key) agrees with our decoding. */
Test(s3, sample_minio_webhook_requests)
{
	size_t len, lines = 0;
	char *text = read_sample("minio-style.jsonl", &len), *line, *save = NULL;

	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_error_t jerr;
		json_t *req = json_loads(line, 0, &jerr), *outer;
		const char *body, *bucket, *subject;
		struct td_event *ev;
		char key[1024];

		cr_assert_not_null(req, "line %zu: %s", lines + 1, jerr.text);
		body = json_string_value(json_object_get(req, "body"));
		cr_assert_not_null(body);
		ev = one(body, strlen(body));
		outer = json_loads(body, 0, &jerr);
		cr_assert_not_null(outer);
		bucket = td_event_get(ev, "s3bucket");
		subject = td_event_get(ev, "subject");
		snprintf(key, sizeof key, "%s/%s", bucket, subject);
		cr_expect_str_eq(key, json_string_value(json_object_get(outer, "Key")));
		expect_attr(ev, "type", "com.amazonaws.s3.ObjectCreated:Put");
		expect_attr(ev, "source", "minio:s3..bkt");
		cr_expect_str_eq(json_string_value(json_object_get(outer, "EventName")),
				 "s3:ObjectCreated:Put");
		json_decref(outer);
		json_decref(req);
		td_event_unref(ev);
		lines++;
	}
	cr_expect_gt(lines, 0);
	free(text);
}

/* ---- keys ---- */

struct key_case {
	const char *in, *out;
};

Test(s3, key_decoding)
{
	static const struct key_case cases[] = {
	    {"photo.jpg", "photo.jpg"},
	    {"my+summer.jpg", "my summer.jpg"},
	    {"a%2Bb", "a+b"},
	    {"a%2bb", "a+b"},
	    {"a+%2B+b", "a + b"},
	    {"dir%2Fsub%2Ffile", "dir/sub/file"},
	    {"dir/sub/file", "dir/sub/file"},
	    {"%28x%29%5B1%5D", "(x)[1]"},
	    {"100%25", "100%"},
	    {"%2525", "%25"}, /* a literal "%25" in the key */
	    {"%C3%A4%C3%B6%C3%BC", "\xc3\xa4\xc3\xb6\xc3\xbc"},
	    {"%e2%82%ac", "\xe2\x82\xac"},
	    {"%F0%9F%98%80.png", "\xf0\x9f\x98\x80.png"},
	    {"\xc3\xa4+\xe2\x82\xac", "\xc3\xa4 \xe2\x82\xac"}, /* raw UTF-8 as it came */
	    {"%E6%97%A5%E6%9C%AC/%E8%AA%9E", "\xe6\x97\xa5\xe6\x9c\xac/\xe8\xaa\x9e"},
	    /* Kept encoded: characters a CloudEvents String cannot hold. */
	    {"line%0Abreak", "line%0Abreak"},
	    {"tab%09", "tab%09"},
	    {"nul%00x", "nul%00x"},
	    {"del%7F", "del%7F"},
	    {"c1%C2%85", "c1%C2%85"},
	    {"nonchar%EF%BF%BE", "nonchar%EF%BF%BE"},
	    {"nonchar%ef%b7%90", "nonchar%EF%B7%90"},
	    {"+", " "},
	};
	static const struct key_case bad[] = {
	    {"%G1", "bad percent escape \"%G1\" at byte 0"},
	    {"abc%", "bad percent escape \"%\" at byte 3"},
	    {"abc%4", "bad percent escape \"%4\" at byte 3"},
	    {"a%4g", "bad percent escape \"%4g\" at byte 1"},
	    {"%C3", "not UTF-8 once decoded (byte 0"},
	    {"ok%C3%28", "not UTF-8 once decoded (byte 2"},
	    {"%C0%AF", "not UTF-8 once decoded"},    /* overlong */
	    {"%ED%A0%80", "not UTF-8 once decoded"}, /* surrogate */
	    {"%F4%90%80%80", "not UTF-8 once decoded"},
	    {"", "empty key"},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct td_buf out;
		char err[128] = "";

		td_buf_init(&out);
		cr_expect_eq(
		    td_s3_key_decode(cases[i].in, strlen(cases[i].in), &out, err, sizeof err), 0,
		    "%s: %s", cases[i].in, err);
		cr_expect_str_eq(out.data ? out.data : "", cases[i].out, "%s", cases[i].in);
		td_buf_free(&out);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct td_buf out;
		char err[128] = "";

		td_buf_init(&out);
		cr_expect_eq(td_s3_key_decode(bad[i].in, strlen(bad[i].in), &out, err, sizeof err),
			     -TD_EINVAL, "%s accepted", bad[i].in);
		cr_expect(strstr(err, bad[i].out), "%s: \"%s\" lacks \"%s\"", bad[i].in, err,
			  bad[i].out);
		td_buf_free(&out);
	}
}

/* A key through a whole body: JSON escapes first, then URL decoding. */
Test(s3, key_in_a_body)
{
	static const char body[] =
	    "{\"Records\":[{\"eventSource\":\"aws:s3\",\"eventName\":\"ObjectRemoved:Delete\","
	    "\"s3\":{\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":"
	    "\"caf\\u00e9+%2B+\\u00e9t\\u00e9%0A.txt\"}}}]}";
	struct td_event *ev = one(body, sizeof body - 1);

	expect_attr(ev, "subject", "caf\xc3\xa9 + \xc3\xa9t\xc3\xa9%0A.txt");
	expect_attr(ev, "type", "com.amazonaws.s3.ObjectRemoved:Delete");
	expect_attr(ev, "source", "aws:s3..b");
	expect_attr(ev, "time", NULL);
	td_event_unref(ev);
}

/* ---- ids ---- */

#define REC(name, key, seq, reqid)                                                                 \
	"{\"eventSource\":\"aws:s3\",\"awsRegion\":\"eu-west-1\",\"eventName\":\"" name "\","      \
	"\"responseElements\":{\"x-amz-request-id\":\"" reqid "\"},"                               \
	"\"s3\":{\"bucket\":{\"name\":\"bkt\"},\"object\":{\"key\":\"" key "\","                   \
	"\"sequencer\":\"" seq "\"}}}"

Test(s3, ids_are_per_object_and_stable)
{
	/* DeleteObjects: one request, two objects. */
	static const char body[] =
	    "{\"Records\":[" REC("ObjectRemoved:Delete", "a.txt", "00A1", "REQ1") "," REC(
		"ObjectRemoved:Delete", "b.txt", "00B2", "REQ1") "]}";
	static const char nodigest[] =
	    "{\"Records\":[{\"eventSource\":\"aws:s3\",\"eventName\":\"ObjectCreated:Copy\","
	    "\"s3\":{\"bucket\":{\"name\":\"bkt\"},\"object\":{\"key\":\"k\"}}},"
	    "{\"eventSource\":\"aws:s3\",\"eventName\":\"ObjectCreated:Copy\","
	    "\"s3\":{\"bucket\":{\"name\":\"bkt\"},\"object\":{\"key\":\"k2\"}}}]}";
	struct td_event **evs, **again;
	char err[256] = "";
	const char *id;

	cr_assert_eq(td_s3_parse(body, sizeof body - 1, &evs, err, sizeof err), 2, "%s", err);
	expect_attr(evs[0], "id", "REQ1.00A1");
	expect_attr(evs[1], "id", "REQ1.00B2");
	expect_attr(evs[1], "subject", "b.txt");
	expect_attr(evs[1], "source", "aws:s3.eu-west-1.bkt");
	td_s3_events_free(evs, 2);

	/* Without request id and sequencer: a digest of the record, the same every time. */
	cr_assert_eq(td_s3_parse(nodigest, sizeof nodigest - 1, &evs, err, sizeof err), 2, "%s",
		     err);
	cr_assert_eq(td_s3_parse(nodigest, sizeof nodigest - 1, &again, err, sizeof err), 2);
	id = td_event_get(evs[0], "id");
	cr_expect_eq(strlen(id), 35);
	cr_expect_eq(strncmp(id, "s3-", 3), 0, "%s", id);
	cr_expect_str_eq(id, td_event_get(again[0], "id"));
	cr_expect_str_neq(id, td_event_get(evs[1], "id"));
	td_s3_events_free(evs, 2);
	td_s3_events_free(again, 2);
}

/* ---- shapes without records ---- */

Test(s3, test_events_and_empty_records)
{
	static const char *const bodies[] = {
	    "{\"Service\":\"Amazon "
	    "S3\",\"Event\":\"s3:TestEvent\",\"Time\":\"2026-11-27T06:00:00.000Z\","
	    "\"Bucket\":\"bkt\",\"RequestId\":\"5582815E1AEA5ADF\",\"HostId\":\"8cLeGAmw\"}",
	    "{\"EventName\":\"s3:TestEvent\"}",
	    "{\"Records\":[]}",
	    " {\"EventName\":\"s3:ObjectCreated:Put\",\"Key\":\"bkt/\",\"Records\":[ ]} ",
	};

	for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
		struct td_event **evs = (struct td_event **)&evs;
		char err[256] = "";

		cr_expect_eq(td_s3_parse(bodies[i], strlen(bodies[i]), &evs, err, sizeof err), 0,
			     "body %zu: %s", i, err);
		cr_expect_null(evs);
	}
}

/* Members found through escaped names, whitespace everywhere, unknown members kept. */
Test(s3, lenient_where_json_is)
{
	static const char body[] =
	    "{ \"Rec\\u006frds\" : [ { \"eventName\" : \"s3:ObjectCreated:Post\" , \"eventSource\" "
	    ": \"minio:s3\" , \"awsRegion\" : null , \"extra\" : [1, {\"s3\": 2}] , \"s3\" : { "
	    "\"bucket\" : { \"name\" : \"bkt\" } , \"object\" : { \"key\" : \"k\" , \"size\" : 0 } "
	    "} } ] }";
	struct td_event *ev = one(body, sizeof body - 1);

	expect_attr(ev, "type", "com.amazonaws.s3.ObjectCreated:Post");
	expect_attr(ev, "source", "minio:s3..bkt");
	expect_record_data(ev, body);
	td_event_unref(ev);
}

/* ---- malformed bodies ---- */

struct bad_body {
	const char *body;
	const char *words;
};

#define MIN_S3	   "\"s3\":{\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":\"k\"}}"
#define MIN_RECORD "{\"eventSource\":\"aws:s3\",\"eventName\":\"ObjectCreated:Put\"," MIN_S3 "}"

Test(s3, malformed_bodies)
{
	static const struct bad_body cases[] = {
	    {"", "the body is not JSON: "},
	    {"{\"Records\":[}", "the body is not JSON: line 1, column 13"},
	    {"{\"Records\":[" MIN_RECORD ",]}", "the body is not JSON"},
	    {"[]", "the body is not a JSON object"},
	    {"\"Records\"", "the body is not a JSON object"},
	    {"{}", "Records: missing (not an S3 event notification"},
	    {"{\"Records\":null}", "Records: missing"},
	    {"{\"Event\":\"s3:OtherEvent\"}", "Records: missing"},
	    {"{\"Records\":{}}", "Records: not an array"},
	    {"{\"Records\":[1]}", "Records[0]: not an object"},
	    {"{\"Records\":[" MIN_RECORD ",\"x\"]}", "Records[1]: not an object"},
	    {"{\"Records\":[{}]}", "Records[0].eventName: missing"},
	    {"{\"Records\":[{\"eventName\":5}]}", "Records[0].eventName: not a string"},
	    {"{\"Records\":[{\"eventName\":\"\"}]}", "Records[0].eventName: empty"},
	    {"{\"Records\":[{\"eventName\":\"a\\u0001b\"}]}",
	     "Records[0].eventName: character U+0001 at byte 1"},
	    {"{\"Records\":[{\"eventName\":\"x\",\"eventName\":\"y\"}]}",
	     "Records[0].eventName: appears more than once"},
	    {"{\"Records\":[{\"eventName\":\"x\"," MIN_S3 "}]}", "Records[0].eventSource: missing"},
	    {"{\"Records\":[{\"eventName\":\"x\",\"eventSource\":\"aws:s3\",\"awsRegion\":1," MIN_S3
	     "}]}",
	     "Records[0].awsRegion: not a string"},
	    {"{\"Records\":[{\"eventName\":\"x\",\"eventSource\":\"aws:s3\"}]}",
	     "Records[0].s3: missing"},
	    {"{\"Records\":[{\"eventName\":\"x\",\"eventSource\":\"aws:s3\",\"s3\":[]}]}",
	     "Records[0].s3: not an object"},
	    {"{\"Records\":[{\"eventName\":\"x\",\"eventSource\":\"aws:s3\",\"s3\":{}}]}",
	     "Records[0].s3.bucket: missing"},
	    {"{\"Records\":[{\"eventName\":\"x\",\"eventSource\":\"aws:s3\",\"s3\":{\"bucket\":{}}}"
	     "]}",
	     "Records[0].s3.bucket.name: missing"},
	    {"{\"Records\":[{\"eventName\":\"x\",\"eventSource\":\"aws:s3\",\"s3\":{\"bucket\":{"
	     "\"name\":\"a\\u0000\"}}}]}",
	     "Records[0].s3.bucket.name: character U+0000"},
	    {"{\"Records\":[{\"eventName\":\"x\",\"eventSource\":\"aws:s3\",\"s3\":{\"bucket\":{"
	     "\"name\":\"b\"}}}]}",
	     "Records[0].s3.object: missing"},
	    {"{\"Records\":[" MIN_RECORD "," MIN_RECORD
	     ",{\"eventName\":\"x\",\"eventSource\":\"aws:s3\",\"s3\":{\"bucket\":{\"name\":\"b\"},"
	     "\"object\":{}}}]}",
	     "Records[2].s3.object.key: missing"},
	    {"{\"Records\":[{\"eventName\":\"x\",\"eventSource\":\"aws:s3\",\"s3\":{\"bucket\":{"
	     "\"name\":\"b\"},\"object\":{\"key\":[]}}}]}",
	     "Records[0].s3.object.key: not a string"},
	    {"{\"Records\":[{\"eventName\":\"x\",\"eventSource\":\"aws:s3\",\"s3\":{\"bucket\":{"
	     "\"name\":\"b\"},\"object\":{\"key\":\"a%zz\"}}}]}",
	     "Records[0].s3.object.key: bad percent escape \"%zz\" at byte 1"},
	    {"{\"Records\":[{\"eventName\":\"x\",\"eventSource\":\"aws:s3\",\"s3\":{\"bucket\":{"
	     "\"name\":\"b\"},\"object\":{\"key\":\"%FF\"}}}]}",
	     "Records[0].s3.object.key: not UTF-8 once decoded"},
	    {"{\"Records\":[{\"eventName\":\"x\",\"eventSource\":\"aws:s3\",\"s3\":{\"bucket\":{"
	     "\"name\":\"b\"},\"object\":{\"key\":\"a\",\"key\":\"b\"}}}]}",
	     "Records[0].s3.object.key: appears more than once"},
	    {"{\"Records\":[{\"eventName\":\"x\",\"eventSource\":\"aws:s3\",\"eventTime\":"
	     "\"yesterday\"," MIN_S3 "}]}",
	     "Records[0].eventTime: \"yesterday\" is not an RFC 3339 time"},
	    {"{\"Records\":[{\"eventName\":\"x\",\"eventSource\":\"aws:s3\",\"eventTime\":"
	     "\"2026-02-30T00:00:00Z\"," MIN_S3 "}]}",
	     "Records[0].eventTime: \"2026-02-30T00:00:00Z\" is not an RFC 3339 time"},
	    {"{\"Records\":[{\"eventName\":\"x\",\"eventSource\":\"aws:s3\",\"responseElements\":"
	     "\"r\"," MIN_S3 "}]}",
	     "Records[0].responseElements: not an object"},
	    {"{\"Records\":[{\"eventName\":\"x\",\"eventSource\":\"aws:s3\",\"responseElements\":{"
	     "\"x-amz-request-id\":7}," MIN_S3 "}]}",
	     "Records[0].responseElements.x-amz-request-id: not a string"},
	    {"{\"Records\":[{\"eventName\":\"x\",\"eventSource\":\"aws:s3\",\"s3\":{\"bucket\":{"
	     "\"name\":\"b\"},\"object\":{\"key\":\"k\",\"sequencer\":false}}}]}",
	     "Records[0].s3.object.sequencer: not a string"},
	    {"{\"EventName\":3,\"Records\":[]}", "EventName: not a string"},
	    {"{\"Key\":{},\"Records\":[]}", "Key: not a string"},
	    {"{\"Records\":[],\"Records\":[]}", "Records: appears more than once"},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct td_event **evs = (struct td_event **)&evs;
		char err[256] = "";
		int rc = td_s3_parse(cases[i].body, strlen(cases[i].body), &evs, err, sizeof err);

		cr_expect_eq(rc, -TD_EINVAL, "case %zu accepted (%d)", i, rc);
		cr_expect_null(evs, "case %zu: events left behind", i);
		cr_expect(strstr(err, cases[i].words), "case %zu: \"%s\" lacks \"%s\"", i, err,
			  cases[i].words);
	}
}

Test(s3, too_many_records)
{
	struct td_buf b;
	struct td_event **evs;
	char err[256] = "";

	td_buf_init(&b);
	td_buf_appends(&b, "{\"Records\":[");
	for (int i = 0; i <= TD_S3_MAX_RECORDS; i++)
		td_buf_printf(&b, "%s" MIN_RECORD, i ? "," : "");
	td_buf_appends(&b, "]}");
	cr_assert(!td_buf_failed(&b));
	cr_expect_eq(td_s3_parse(b.data, b.len, &evs, err, sizeof err), -TD_EINVAL);
	cr_expect(strstr(err, "Records: more than 10000 records"), "%s", err);

	/* Exactly the limit is fine. */
	b.len -= 2 + strlen(MIN_RECORD) + 1;
	td_buf_appends(&b, "]}");
	cr_expect_eq(td_s3_parse(b.data, b.len, &evs, err, sizeof err), TD_S3_MAX_RECORDS, "%s",
		     err);
	td_s3_events_free(evs, TD_S3_MAX_RECORDS);
	td_buf_free(&b);
}

/* A body held in a buffer without a NUL after it is read within its length. */
Test(s3, reads_only_len_bytes)
{
	static const char text[] = "{\"Records\":[" MIN_RECORD "]}";
	size_t n = sizeof text - 1;
	char *exact = malloc(n);
	struct td_event **evs;
	char err[128] = "";

	cr_assert_not_null(exact);
	memcpy(exact, text, n);
	cr_expect_eq(td_s3_parse(exact, n, &evs, err, sizeof err), 1, "%s", err);
	td_s3_events_free(evs, 1);
	cr_expect_eq(td_s3_parse(exact, n - 1, &evs, err, sizeof err), -TD_EINVAL);
	cr_expect_eq(td_s3_parse(NULL, 0, &evs, err, sizeof err), -TD_EINVAL);
	free(exact);
}
