/*
 * Unit tests for router/aws_event.c: every AWS shape (EventBridge Scheduled Event from a
 * cron tick, {"Records": [...]} from the shared S3 and MinIO samples routed through the
 * s3 parser, the function-URL request event of a webhook request, the Invoke API's
 * payload, the self-managed Kafka event, the EventBridge fallback with its detail in
 * each payload kind), the httpheaders extension (lower case, joined, redacted, ASCII),
 * and the function-URL response mapping as a table, malformed objects included.
 */
#include <criterion/criterion.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <triggerd/aws_event.h>
#include <triggerd/errors.h>
#include <triggerd/event.h>
#include <triggerd/function.h>

#include "../../connectors/cron_source.h"
#include "../../connectors/kafka_event.h"
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

/* The AWS payload of ev, parsed (the text must be valid JSON of the length given). */
static json_t *payload(const struct td_event *ev)
{
	size_t len = 12345;
	char *text = td_event_aws_payload(ev, &len);
	json_error_t jerr;
	json_t *j;

	cr_assert_not_null(text);
	cr_assert_eq(strlen(text), len);
	cr_assert(td_json_valid(text, len, 0), "not JSON: %s", text);
	j = json_loadb(text, len, JSON_DECODE_ANY, &jerr);
	cr_assert_not_null(j, "%s: %s", jerr.text, text);
	free(text);
	return j;
}

static const char *jstr(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	cr_assert(json_is_string(v), "member %s is not a string", key);
	return json_string_value(v);
}

static struct td_event *new_event(const char *id, const char *source, const char *type)
{
	struct td_event *ev = td_event_create();
	cr_assert_not_null(ev);
	cr_assert_eq(td_event_set(ev, "id", id), 0);
	cr_assert_eq(td_event_set(ev, "source", source), 0);
	cr_assert_eq(td_event_set(ev, "type", type), 0);
	return ev;
}

/* ---- cron ---- */

Test(aws_event, cron_tick_is_a_scheduled_event_like_the_sample)
{
	size_t slen;
	char *sample = read_sample("scheduled.json", &slen);
	json_t *want = json_loads(sample, 0, NULL);
	char err[200];
	/* 2026-11-27T06:00:00Z */
	struct td_event *ev =
	    td_cron_event("nightly", "0  6 * * *", 1795759200LL, NULL, err, sizeof err);
	cr_assert_not_null(ev, "%s", err);
	json_t *got = payload(ev);

	/* The same members as AWS's sample, in its order. */
	const char *key;
	json_t *value;
	void *it = json_object_iter(want);
	size_t n = 0;
	json_object_foreach(want, key, value)
	{
		cr_expect_not_null(json_object_get(got, key), "member %s missing", key);
		n++;
	}
	(void)it;
	cr_expect_eq(json_object_size(got), n);
	cr_expect_str_eq(jstr(got, "version"), "0");
	cr_expect_str_eq(jstr(got, "id"), "nightly:2026-11-27T06:00:00Z");
	cr_expect_str_eq(jstr(got, "detail-type"), "Scheduled Event");
	cr_expect_str_eq(jstr(got, "source"), "aws.events");
	cr_expect_str_eq(jstr(got, "account"), TD_AWS_ACCOUNT);
	cr_expect_str_eq(jstr(got, "region"), TD_AWS_REGION);
	cr_expect_str_eq(jstr(got, "time"), jstr(want, "time"));
	json_t *res = json_object_get(got, "resources");
	cr_assert(json_is_array(res) && json_array_size(res) == 1);
	cr_expect_str_eq(json_string_value(json_array_get(res, 0)),
			 "arn:aws:events:" TD_AWS_REGION ":" TD_AWS_ACCOUNT ":rule/nightly");
	json_t *detail = json_object_get(got, "detail");
	cr_expect(json_is_object(detail) && json_object_size(detail) == 0);
	json_decref(got);
	json_decref(want);
	td_event_unref(ev);
	free(sample);
}

Test(aws_event, cron_tick_with_a_payload_carries_it_as_detail)
{
	char err[200];
	struct td_event *ev = td_cron_event("report", "@hourly", 1795759200LL,
					    "{\"kind\":\"report\",\"n\":[1,2]}", err, sizeof err);
	cr_assert_not_null(ev, "%s", err);
	json_t *got = payload(ev);
	json_t *want = json_loads("{\"kind\":\"report\",\"n\":[1,2]}", 0, NULL);
	cr_expect(json_equal(json_object_get(got, "detail"), want));
	json_decref(want);
	json_decref(got);
	td_event_unref(ev);
}

/* ---- S3 ---- */

/* The records of a sample body, and the events the s3 parser makes of it. */
static void s3_sample(const char *name, json_t **records, struct td_event ***events, int *n)
{
	size_t len;
	char *text = read_sample(name, &len);
	char err[256] = "";
	json_t *body = json_loadb(text, len, 0, NULL);

	cr_assert_not_null(body);
	*records = json_incref(json_object_get(body, "Records"));
	json_decref(body);
	*n = td_s3_parse(text, len, events, err, sizeof err);
	cr_assert_gt(*n, 0, "%s", err);
	cr_assert_eq((size_t)*n, json_array_size(*records));
	free(text);
}

Test(aws_event, s3_record_comes_back_as_the_records_it_was)
{
	json_t *records;
	struct td_event **events;
	int n;

	s3_sample("s3-put.json", &records, &events, &n);
	for (int i = 0; i < n; i++) {
		json_t *got = payload(events[i]);
		json_t *recs = json_object_get(got, "Records");
		cr_assert_eq(json_object_size(got), 1);
		cr_assert(json_is_array(recs) && json_array_size(recs) == 1);
		cr_expect(json_equal(json_array_get(recs, 0), json_array_get(records, i)),
			  "record %d differs", i);
		json_decref(got);
	}
	/* The exact bytes, too: the record is passed as it came. */
	size_t len, dlen;
	char *text = td_event_aws_payload(events[0], &len);
	const char *data = td_event_data(events[0], &dlen);
	cr_assert_not_null(text);
	cr_expect_eq(len, dlen + strlen("{\"Records\":[]}"));
	cr_expect_eq(memcmp(text + 12, data, dlen), 0);
	free(text);
	td_s3_events_free(events, n);
	json_decref(records);
}

Test(aws_event, minio_record_is_normalised_to_aws_shape)
{
	json_t *records;
	struct td_event **events;
	int n;

	s3_sample("minio-records.json", &records, &events, &n);
	for (int i = 0; i < n; i++) {
		json_t *got = payload(events[i]);
		json_t *rec = json_array_get(json_object_get(got, "Records"), 0);
		json_t *want = json_deep_copy(json_array_get(records, i));
		cr_assert_not_null(rec);
		cr_expect_str_eq(jstr(rec, "eventSource"), "aws:s3");
		cr_expect_str_eq(jstr(rec, "eventName"), "ObjectCreated:Put");
		cr_expect_str_eq(jstr(rec, "awsRegion"), TD_AWS_REGION);
		cr_expect_null(json_object_get(rec, "source"));
		/* Every other member as MinIO sent it. */
		json_object_set_new(want, "eventSource", json_string("aws:s3"));
		json_object_set_new(want, "eventName", json_string("ObjectCreated:Put"));
		json_object_set_new(want, "awsRegion", json_string(TD_AWS_REGION));
		json_object_del(want, "source");
		cr_expect(json_equal(rec, want));
		cr_expect_str_eq(jstr(json_object_get(json_object_get(rec, "s3"), "object"), "key"),
				 "dir%2Fmy+summer%282024%29%2B%C3%A4.txt");
		json_decref(want);
		json_decref(got);
	}
	td_s3_events_free(events, n);
	json_decref(records);
}

Test(aws_event, minio_webhook_request_body_gives_the_same_records)
{
	size_t len;
	char *lines = read_sample("minio-style.jsonl", &len);
	json_t *req = json_loadb(lines, strcspn(lines, "\n"), 0, NULL);
	const char *body;
	struct td_event **events = NULL;
	char err[256] = "";
	int n;

	cr_assert_not_null(req);
	body = jstr(req, "body");
	n = td_s3_parse(body, strlen(body), &events, err, sizeof err);
	cr_assert_eq(n, 1, "%s", err);
	json_t *got = payload(events[0]);
	json_t *rec = json_array_get(json_object_get(got, "Records"), 0);
	cr_assert_not_null(rec);
	cr_expect_str_eq(jstr(rec, "eventSource"), "aws:s3");
	cr_expect_str_eq(jstr(rec, "eventName"), "ObjectCreated:Put");
	cr_expect_str_eq(jstr(json_object_get(json_object_get(rec, "s3"), "bucket"), "name"),
			 "bkt");
	json_decref(got);
	json_decref(req);
	td_s3_events_free(events, n);
	free(lines);
}

/* ---- function URL request event ---- */

/* A webhook raw event as connectors/webhook.c builds it. */
static struct td_event *url_request(const char *method, const char *path, const char *query,
				    const struct td_http_header *h, size_t nh,
				    const char *const *redact, size_t nredact, const void *body,
				    size_t blen, const char *ct)
{
	struct td_event *ev = new_event("req-1", "triggerd/webhook/in", "triggerd.webhook.request");
	char *headers = td_aws_headers_json(h, nh, redact, nredact);

	cr_assert_not_null(headers);
	cr_assert_eq(td_event_set(ev, "httpmethod", method), 0);
	cr_assert_eq(td_event_set(ev, "subject", path), 0);
	cr_assert_eq(td_event_set(ev, "time", "2026-11-27T06:40:52.543Z"), 0);
	cr_assert_eq(td_event_set(ev, TD_AWS_EXT_HEADERS, headers), 0, "%s", headers);
	if (query)
		cr_assert_eq(td_event_set(ev, TD_AWS_EXT_QUERY, query), 0);
	cr_assert_eq(td_event_set(ev, TD_AWS_EXT_SOURCEIP, "192.0.2.7"), 0);
	cr_assert_eq(td_event_set_data(ev, body, blen, ct), 0);
	free(headers);
	return ev;
}

Test(aws_event, webhook_request_is_a_function_url_event)
{
	static const struct td_http_header h[] = {
	    {"Host", "abc123.lambda-url.us-east-1.on.aws"},
	    {"User-Agent", "curl/7.88"},
	    {"Content-Type", "application/json"},
	    {"X-Multi", "a"},
	    {"Cookie", "s=1; theme=dark"},
	    {"x-multi", "b"},
	    {"Authorization", "Bearer s3cret"},
	};
	static const char *const redact[] = {"authorization"};
	static const char body[] = "{\"order\": 7}";
	struct td_event *ev = url_request("POST", "/hooks/in", "a=1&b=x%20y&a=2&flag&c=d+e", h,
					  sizeof h / sizeof h[0], redact, 1, body, sizeof body - 1,
					  "application/json");
	json_t *got = payload(ev);

	cr_expect_str_eq(jstr(got, "version"), "2.0");
	cr_expect_str_eq(jstr(got, "routeKey"), "$default");
	cr_expect_str_eq(jstr(got, "rawPath"), "/hooks/in");
	cr_expect_str_eq(jstr(got, "rawQueryString"), "a=1&b=x%20y&a=2&flag&c=d+e");
	json_t *cookies = json_object_get(got, "cookies");
	cr_assert(json_is_array(cookies) && json_array_size(cookies) == 2);
	cr_expect_str_eq(json_string_value(json_array_get(cookies, 0)), "s=1");
	cr_expect_str_eq(json_string_value(json_array_get(cookies, 1)), "theme=dark");
	json_t *hd = json_object_get(got, "headers");
	cr_assert(json_is_object(hd));
	cr_expect_str_eq(jstr(hd, "host"), "abc123.lambda-url.us-east-1.on.aws");
	cr_expect_str_eq(jstr(hd, "user-agent"), "curl/7.88");
	cr_expect_str_eq(jstr(hd, "x-multi"), "a,b");
	cr_expect_str_eq(jstr(hd, "authorization"), TD_AWS_REDACTED);
	cr_expect_null(json_object_get(hd, "cookie"));
	cr_expect_null(json_object_get(hd, "Host"));
	json_t *q = json_object_get(got, "queryStringParameters");
	cr_assert(json_is_object(q));
	cr_expect_eq(json_object_size(q), 4);
	cr_expect_str_eq(jstr(q, "a"), "1,2");
	cr_expect_str_eq(jstr(q, "b"), "x y");
	cr_expect_str_eq(jstr(q, "flag"), "");
	cr_expect_str_eq(jstr(q, "c"), "d e");
	json_t *rc = json_object_get(got, "requestContext");
	cr_assert(json_is_object(rc));
	cr_expect_str_eq(jstr(rc, "accountId"), "anonymous");
	cr_expect_str_eq(jstr(rc, "apiId"), "abc123");
	cr_expect_str_eq(jstr(rc, "domainName"), "abc123.lambda-url.us-east-1.on.aws");
	cr_expect_str_eq(jstr(rc, "domainPrefix"), "abc123");
	cr_expect_str_eq(jstr(rc, "requestId"), "req-1");
	cr_expect_str_eq(jstr(rc, "routeKey"), "$default");
	cr_expect_str_eq(jstr(rc, "stage"), "$default");
	cr_expect_str_eq(jstr(rc, "time"), "27/Nov/2026:06:40:52 +0000");
	cr_expect_eq(json_integer_value(json_object_get(rc, "timeEpoch")), 1795761652543LL);
	json_t *http = json_object_get(rc, "http");
	cr_assert(json_is_object(http));
	cr_expect_str_eq(jstr(http, "method"), "POST");
	cr_expect_str_eq(jstr(http, "path"), "/hooks/in");
	cr_expect_str_eq(jstr(http, "protocol"), "HTTP/1.1");
	cr_expect_str_eq(jstr(http, "sourceIp"), "192.0.2.7");
	cr_expect_str_eq(jstr(http, "userAgent"), "curl/7.88");
	cr_expect_str_eq(jstr(got, "body"), body);
	cr_expect(json_is_false(json_object_get(got, "isBase64Encoded")));
	json_decref(got);
	td_event_unref(ev);
}

Test(aws_event, function_url_event_without_query_cookies_or_body)
{
	struct td_event *ev =
	    url_request("GET", "/hooks/in", NULL, NULL, 0, NULL, 0, NULL, 0, NULL);
	json_t *got = payload(ev);

	cr_expect_str_eq(jstr(got, "rawQueryString"), "");
	cr_expect_null(json_object_get(got, "cookies"));
	cr_expect_null(json_object_get(got, "queryStringParameters"));
	cr_expect_null(json_object_get(got, "body"));
	cr_expect(json_is_false(json_object_get(got, "isBase64Encoded")));
	cr_expect_eq(json_object_size(json_object_get(got, "headers")), 0);
	json_t *rc = json_object_get(got, "requestContext");
	cr_expect_str_eq(jstr(rc, "domainName"), "");
	cr_expect_str_eq(jstr(json_object_get(rc, "http"), "userAgent"), "");
	json_decref(got);
	td_event_unref(ev);
}

Test(aws_event, function_url_body_is_text_or_base64_by_content_type)
{
	static const struct {
		const char *ct;
		const char *body;
		size_t len;
		bool base64;
	} cases[] = {
	    {"application/json", "{\"a\":1}", 7, false},
	    {"text/plain; charset=utf-8", "h\xc3\xa9llo", 6, false},
	    {"text/csv", "a,b\n1,2\n", 8, false},
	    {"application/xml", "<a/>", 4, false},
	    {"application/atom+xml", "<feed/>", 7, false},
	    {"application/vnd.api+json", "{}", 2, false},
	    {"application/javascript", "f()", 3, false},
	    {NULL, "[1,2]", 5, false},
	    {NULL, "plain words", 11, true},
	    {"application/octet-stream", "abc", 3, true},
	    {"image/png", "\x89PNG\r\n", 6, true},
	    {"text/plain", "\xff\xfe", 2, true},
	    {"application/x-www-form-urlencoded", "a=1&b=2", 7, true},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct td_event *ev = url_request("POST", "/p", NULL, NULL, 0, NULL, 0,
						  cases[i].body, cases[i].len, cases[i].ct);
		json_t *got = payload(ev);
		json_t *enc = json_object_get(got, "isBase64Encoded");
		const char *b = jstr(got, "body");
		cr_expect(json_is_boolean(enc));
		cr_expect_eq(json_is_true(enc), cases[i].base64, "case %zu (%s)", i,
			     cases[i].ct ? cases[i].ct : "none");
		if (cases[i].base64) {
			struct td_buf dec = {0};
			cr_assert_eq(td_base64_decode(b, strlen(b), &dec, NULL, 0), 0);
			cr_expect_eq(dec.len, cases[i].len);
			cr_expect_eq(memcmp(dec.data, cases[i].body, cases[i].len), 0, "case %zu",
				     i);
			td_buf_free(&dec);
		} else {
			cr_expect_eq(strlen(b), cases[i].len);
			cr_expect_eq(memcmp(b, cases[i].body, cases[i].len), 0, "case %zu", i);
		}
		json_decref(got);
		td_event_unref(ev);
	}
}

Test(aws_event, forged_httpheaders_give_empty_headers)
{
	static const char *const forged[] = {
	    "not json", "[1,2]", "{\"a\":1}", "{\"a\":{}}", "{\"a\":\"x\",\"b\":[]}", "\"str\""};
	for (size_t i = 0; i < sizeof forged / sizeof forged[0]; i++) {
		struct td_event *ev =
		    url_request("POST", "/p", NULL, NULL, 0, NULL, 0, "x", 1, "text/plain");
		cr_assert_eq(td_event_set(ev, TD_AWS_EXT_HEADERS, forged[i]), 0);
		json_t *got = payload(ev);
		json_t *hd = json_object_get(got, "headers");
		cr_expect(json_is_object(hd) && json_object_size(hd) == 0, "case %zu", i);
		json_decref(got);
		td_event_unref(ev);
	}
}

/* ---- httpheaders ---- */

Test(aws_event, headers_json_lower_cases_joins_redacts_and_stays_ascii)
{
	static const struct td_http_header h[] = {
	    {"X-Hub-Signature-256", "sha256=abc"},
	    {"Accept", "a/b"},
	    {"ACCEPT", "c/d"},
	    {"X-Name", "caf\xc3\xa9 \xf0\x9f\x98\x80"},
	    {"X-Latin", "caf\xe9"},
	    {"X-Quote", "say \"hi\" \\ \t"},
	    {"x-hub-signature-256", "sha256=def"},
	};
	static const char *const redact[] = {NULL, "x-hub-signature-256"};
	char *text = td_aws_headers_json(h, sizeof h / sizeof h[0], redact, 2);

	cr_assert_not_null(text);
	for (const char *p = text; *p; p++)
		cr_assert((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f,
			  "not printable ASCII: %s", text);
	json_t *j = json_loads(text, 0, NULL);
	cr_assert(json_is_object(j), "%s", text);
	cr_expect_eq(json_object_size(j), 5);
	cr_expect_str_eq(jstr(j, "x-hub-signature-256"), TD_AWS_REDACTED);
	cr_expect_str_eq(jstr(j, "accept"), "a/b,c/d");
	cr_expect_str_eq(jstr(j, "x-name"), "caf\xc3\xa9 \xf0\x9f\x98\x80");
	cr_expect_str_eq(jstr(j, "x-latin"), "caf\xc3\xa9");
	cr_expect_str_eq(jstr(j, "x-quote"), "say \"hi\" \\ \t");
	cr_expect_null(strstr(text, "sha256="));
	/* The order of first appearance. */
	cr_expect_eq(strncmp(text, "{\"x-hub-signature-256\":", 23), 0, "%s", text);
	/* A valid extension value. */
	struct td_event *ev = td_event_create();
	cr_expect_eq(td_event_set(ev, TD_AWS_EXT_HEADERS, text), 0);
	td_event_unref(ev);
	json_decref(j);
	free(text);

	text = td_aws_headers_json(NULL, 0, NULL, 0);
	cr_assert_not_null(text);
	cr_expect_str_eq(text, "{}");
	free(text);
}

/* ---- Invoke API, Kafka ---- */

Test(aws_event, invoke_api_payload_is_unchanged)
{
	static const char body[] = "{ \"x\" : 1 ,\"y\":[true] }";
	struct td_event *ev = new_event("u-1", "triggerd/invoke-api", "triggerd.invoke");
	size_t len;
	char *text;

	cr_assert_eq(td_event_set_data(ev, body, sizeof body - 1, "application/json"), 0);
	text = td_event_aws_payload(ev, &len);
	cr_assert_not_null(text);
	cr_expect_eq(len, sizeof body - 1);
	cr_expect_str_eq(text, body);
	free(text);
	td_event_unref(ev);

	ev = new_event("u-2", "triggerd/invoke-api", "triggerd.invoke");
	text = td_event_aws_payload(ev, &len);
	cr_expect_str_eq(text, "{}");
	cr_expect_eq(len, 2);
	free(text);
	td_event_unref(ev);
}

Test(aws_event, kafka_record_is_the_self_managed_kafka_event)
{
	static const struct td_kafka_header hs[] = {{"traceparent", 11, "00", 2}};
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
	char err[200] = "";
	struct td_event *ev = td_kafka_record_event("triggerd/kafka/orders", &r, err, sizeof err);
	cr_assert_not_null(ev, "%s", err);
	json_t *got = payload(ev);
	size_t slen;
	char *sample = read_sample("kafka-selfmanaged.json", &slen);
	json_t *want = json_loads(sample, 0, NULL);

	/* The sample's records, with the bootstrap servers that the event does not carry. */
	cr_expect_str_eq(jstr(got, "eventSource"), "SelfManagedKafka");
	cr_expect(json_equal(json_object_get(got, "records"), json_object_get(want, "records")),
		  "%s", json_dumps(got, 0));
	/* With the extension kafkabootstrap, bootstrapServers is filled in. */
	cr_assert_eq(td_event_set(ev, "kafkabootstrap", "127.0.0.1:19240"), 0);
	json_decref(got);
	got = payload(ev);
	cr_expect(json_equal(got, want));
	json_decref(got);
	json_decref(want);
	free(sample);
	td_event_unref(ev);
}

/* ---- EventBridge ---- */

Test(aws_event, other_events_are_eventbridge_events)
{
	struct td_event *ev = new_event("m-1", "triggerd/mqtt/sensors", "triggerd.mqtt.message");
	cr_assert_eq(td_event_set(ev, "subject", "home/kitchen/temp"), 0);
	cr_assert_eq(td_event_set(ev, "time", "2026-11-27T08:00:00.999+02:00"), 0);
	cr_assert_eq(td_event_set(ev, "mqtttopic", "home/kitchen/temp"), 0);
	cr_assert_eq(td_event_set_int(ev, "mqttqos", 1), 0);
	cr_assert_eq(td_event_set_bool(ev, "mqttretain", false), 0);
	cr_assert_eq(td_event_set_data(ev, "{\"t\":21.5}", 10, "application/json"), 0);
	json_t *got = payload(ev);

	cr_expect_str_eq(jstr(got, "version"), "0");
	cr_expect_str_eq(jstr(got, "id"), "m-1");
	cr_expect_str_eq(jstr(got, "detail-type"), "triggerd.mqtt.message");
	cr_expect_str_eq(jstr(got, "source"), "triggerd/mqtt/sensors");
	cr_expect_str_eq(jstr(got, "account"), TD_AWS_ACCOUNT);
	cr_expect_str_eq(jstr(got, "region"), TD_AWS_REGION);
	cr_expect_str_eq(jstr(got, "time"), "2026-11-27T06:00:00Z");
	cr_expect(json_is_array(json_object_get(got, "resources")) &&
		  json_array_size(json_object_get(got, "resources")) == 0);
	cr_expect_eq(json_real_value(json_object_get(json_object_get(got, "detail"), "t")), 21.5);
	json_t *ce = json_object_get(got, "cloudevents");
	cr_assert(json_is_object(ce));
	cr_expect_str_eq(jstr(ce, "subject"), "home/kitchen/temp");
	cr_expect_str_eq(jstr(ce, "datacontenttype"), "application/json");
	cr_expect_str_eq(jstr(ce, "mqtttopic"), "home/kitchen/temp");
	cr_expect_eq(json_integer_value(json_object_get(ce, "mqttqos")), 1);
	cr_expect(json_is_false(json_object_get(ce, "mqttretain")));
	json_decref(got);
	td_event_unref(ev);
}

Test(aws_event, eventbridge_detail_by_payload_kind)
{
	static const struct {
		const char *data;
		size_t len;
		const char *ct;
		const char *want; /* the detail's JSON text */
	} cases[] = {
	    {"[1,\"a\"]", 7, "application/json", "[1,\"a\"]"},
	    {"hello \"you\"", 11, "text/plain", "\"hello \\\"you\\\"\""},
	    {"{\"a\":1}", 7, "text/plain", "\"{\\\"a\\\":1}\""},
	    {"\x00\x01\xff", 3, "application/octet-stream", "\"AAH/\""},
	    {NULL, 0, NULL, "{}"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct td_event *ev = new_event("r-1", "triggerd/redis/q", "triggerd.redis.entry");
		if (cases[i].data)
			cr_assert_eq(
			    td_event_set_data(ev, cases[i].data, cases[i].len, cases[i].ct), 0);
		json_t *got = payload(ev);
		json_t *want = json_loads(cases[i].want, JSON_DECODE_ANY, NULL);
		cr_assert_not_null(want);
		cr_expect(json_equal(json_object_get(got, "detail"), want), "case %zu", i);
		/* Without time, the time is now: still the EventBridge form. */
		cr_expect_eq(strlen(jstr(got, "time")), 20);
		json_decref(want);
		json_decref(got);
		td_event_unref(ev);
	}
}

Test(aws_event, look_alikes_fall_back_to_eventbridge)
{
	/* A cron type from another source, an S3 type without an S3 source or JSON data,
	 * a webhook type without httpmethod, a Kafka type without Kafka attributes. */
	static const struct {
		const char *source, *type;
	} cases[] = {
	    {"elsewhere", "triggerd.cron.tick"},
	    {"elsewhere", "com.amazonaws.s3.ObjectCreated:Put"},
	    {"triggerd/webhook/in", "triggerd.webhook.request"},
	    {"triggerd/kafka/x", "triggerd.kafka.record"},
	    {"triggerd/kafka/x", "triggerd.kafka.batch"},
	    {"triggerd/invoke", "triggerd.invoke"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct td_event *ev = new_event("x-1", cases[i].source, cases[i].type);
		cr_assert_eq(td_event_set_data(ev, "{\"k\":1}", 7, "application/json"), 0);
		json_t *got = payload(ev);
		cr_expect_str_eq(jstr(got, "detail-type"), cases[i].type, "case %zu", i);
		cr_expect_str_eq(jstr(got, "source"), cases[i].source);
		json_decref(got);
		td_event_unref(ev);
	}
}

/* ---- function URL responses ---- */

struct rcase {
	const char *body; /* the function's result */
	enum td_result_status status;
	int http_status;
	const char *content_type;
	const char *out;       /* the body afterwards (NULL: not checked) */
	size_t out_len;	       /* when the body is binary */
	const char *headers;   /* "name: value\n" each, in order */
	const char *error_has; /* ERROR: words in res->error */
};

static const struct rcase rcases[] = {
    /* response objects */
    {"{\"statusCode\":201,\"headers\":{\"Content-Type\":\"text/plain\",\"X-A\":\"1\"},"
     "\"body\":\"made\"}",
     TD_RESULT_OK, 201, "text/plain", "made", 0, "X-A: 1\n", NULL},
    {"{\"statusCode\":200,\"body\":\"{\\\"a\\\":1}\"}", TD_RESULT_OK, 200, "application/json",
     "{\"a\":1}", 0, "", NULL},
    {"{\"statusCode\":404}", TD_RESULT_OK, 404, "application/json", "", 0, "", NULL},
    {"{\"statusCode\":200,\"isBase64Encoded\":true,\"body\":\"AAH/\","
     "\"headers\":{\"content-type\":\"application/octet-stream\"}}",
     TD_RESULT_OK, 200, "application/octet-stream", "\x00\x01\xff", 3, "", NULL},
    {"{\"statusCode\":302,\"headers\":{\"Location\":\"/x\",\"X-N\":5,\"X-B\":true},"
     "\"cookies\":[\"a=1; Path=/\",\"b=2\"],\"body\":null,\"isBase64Encoded\":false}",
     TD_RESULT_OK, 302, "application/json", "", 0,
     "Location: /x\nX-N: 5\nX-B: true\nSet-Cookie: a=1; Path=/\nSet-Cookie: b=2\n", NULL},
    {"{\"statusCode\":200,\"headers\":{\"Content-Length\":\"99\",\"Connection\":\"close\","
     "\"Transfer-Encoding\":\"chunked\"},\"body\":\"ok\"}",
     TD_RESULT_OK, 200, "application/json", "ok", 0, "", NULL},
    {"{\"statusCode\":599,\"headers\":null,\"cookies\":null,\"body\":\"\\u00e9\"}", TD_RESULT_OK,
     599, "application/json", "\xc3\xa9", 0, "", NULL},
    /* other JSON: the result itself, 200 application/json */
    {"{\"message\":\"hi\"}", TD_RESULT_OK, 200, "application/json", "{\"message\":\"hi\"}", 0, "",
     NULL},
    {"[1,2]", TD_RESULT_OK, 200, "application/json", "[1,2]", 0, "", NULL},
    {"\"just text\"", TD_RESULT_OK, 200, "application/json", "\"just text\"", 0, "", NULL},
    {"null", TD_RESULT_OK, 200, "application/json", "null", 0, "", NULL},
    {"{\"status\":500,\"body\":\"x\"}", TD_RESULT_OK, 200, "application/json",
     "{\"status\":500,\"body\":\"x\"}", 0, "", NULL},
    /* not JSON: kept as it is */
    {"plain text", TD_RESULT_OK, 200, "text/original", "plain text", 0, "", NULL},
    /* malformed response objects */
    {"{\"statusCode\":\"200\"}", TD_RESULT_ERROR, 502, NULL, NULL, 0, "", "statusCode"},
    {"{\"statusCode\":99}", TD_RESULT_ERROR, 502, NULL, NULL, 0, "", "statusCode"},
    {"{\"statusCode\":600}", TD_RESULT_ERROR, 502, NULL, NULL, 0, "", "statusCode"},
    {"{\"statusCode\":200.0}", TD_RESULT_ERROR, 502, NULL, NULL, 0, "", "statusCode"},
    {"{\"statusCode\":-200}", TD_RESULT_ERROR, 502, NULL, NULL, 0, "", "statusCode"},
    {"{\"statusCode\":2e2}", TD_RESULT_ERROR, 502, NULL, NULL, 0, "", "statusCode"},
    {"{\"statusCode\":null}", TD_RESULT_ERROR, 502, NULL, NULL, 0, "", "statusCode"},
    {"{\"statusCode\":200,\"body\":42}", TD_RESULT_ERROR, 502, NULL, NULL, 0, "", "body"},
    {"{\"statusCode\":200,\"body\":{\"a\":1}}", TD_RESULT_ERROR, 502, NULL, NULL, 0, "", "body"},
    {"{\"statusCode\":200,\"isBase64Encoded\":true,\"body\":\"@@@\"}", TD_RESULT_ERROR, 502, NULL,
     NULL, 0, "", "base64"},
    {"{\"statusCode\":200,\"isBase64Encoded\":\"yes\",\"body\":\"\"}", TD_RESULT_ERROR, 502, NULL,
     NULL, 0, "", "isBase64Encoded"},
    {"{\"statusCode\":200,\"headers\":[]}", TD_RESULT_ERROR, 502, NULL, NULL, 0, "", "headers"},
    {"{\"statusCode\":200,\"headers\":{\"X-A\":[1]}}", TD_RESULT_ERROR, 502, NULL, NULL, 0, "",
     "headers.X-A"},
    {"{\"statusCode\":200,\"headers\":{\"X-A\":\"a\\r\\nX-Evil: 1\"}}", TD_RESULT_ERROR, 502, NULL,
     NULL, 0, "", "headers.X-A"},
    {"{\"statusCode\":200,\"headers\":{\"Bad Name\":\"1\"}}", TD_RESULT_ERROR, 502, NULL, NULL, 0,
     "", "header name"},
    {"{\"statusCode\":200,\"headers\":{\"\":\"1\"}}", TD_RESULT_ERROR, 502, NULL, NULL, 0, "",
     "header name"},
    {"{\"statusCode\":200,\"cookies\":\"a=1\"}", TD_RESULT_ERROR, 502, NULL, NULL, 0, "",
     "cookies"},
    {"{\"statusCode\":200,\"cookies\":[\"a=1\",2]}", TD_RESULT_ERROR, 502, NULL, NULL, 0, "",
     "cookies[1]"},
    {"{\"statusCode\":200,\"cookies\":[\"a=1\\n\"]}", TD_RESULT_ERROR, 502, NULL, NULL, 0, "",
     "cookies[0]"},
};

static void run_rcase(const struct rcase *c, size_t i, const struct td_event *ev)
{
	struct td_result res = {.status = TD_RESULT_OK, .http_status = 200};
	char want_headers[512] = "", *p = want_headers;

	res.body = strdup(c->body);
	res.body_len = strlen(c->body);
	res.content_type = strdup("text/original");
	/* Headers set before are replaced. */
	res.headers = calloc(1, sizeof *res.headers);
	res.headers[0].name = strdup("X-Old");
	res.headers[0].value = strdup("1");
	res.nheaders = 1;
	td_aws_result_to_http(ev, &res);

	cr_expect_eq(res.status, c->status, "case %zu: status %d", i, res.status);
	cr_expect_eq(res.http_status, c->http_status, "case %zu: HTTP %d", i, res.http_status);
	if (c->status == TD_RESULT_ERROR) {
		cr_assert_not_null(res.error, "case %zu", i);
		cr_expect_not_null(strstr(res.error, c->error_has), "case %zu: %s", i, res.error);
		cr_expect_eq(res.nheaders, 0);
		cr_assert_not_null(res.body);
		json_t *j = json_loadb(res.body, res.body_len, 0, NULL);
		cr_expect(json_is_string(json_object_get(j, "errorMessage")), "case %zu", i);
		json_decref(j);
	} else {
		cr_assert_not_null(res.content_type, "case %zu", i);
		cr_expect_str_eq(res.content_type, c->content_type, "case %zu", i);
		size_t want_len = c->out_len ? c->out_len : strlen(c->out);
		cr_expect_eq(res.body_len, want_len, "case %zu: %zu bytes", i, res.body_len);
		cr_expect_eq(memcmp(res.body, c->out, want_len), 0, "case %zu", i);
		if (strcmp(c->content_type, "text/original") == 0) {
			cr_expect_eq(res.nheaders, 1, "case %zu", i); /* untouched */
		} else if (c->headers[0] || strstr(c->body, "statusCode")) {
			for (size_t k = 0; k < res.nheaders; k++)
				p +=
				    snprintf(p, sizeof want_headers - (size_t)(p - want_headers),
					     "%s: %s\n", res.headers[k].name, res.headers[k].value);
			cr_expect_str_eq(want_headers, c->headers, "case %zu", i);
		}
	}
	td_result_clear(&res);
}

Test(aws_event, function_url_response_mapping_table)
{
	struct td_event *ev =
	    url_request("POST", "/p", NULL, NULL, 0, NULL, 0, "{}", 2, "application/json");
	for (size_t i = 0; i < sizeof rcases / sizeof rcases[0]; i++)
		run_rcase(&rcases[i], i, ev);
	td_event_unref(ev);
}

Test(aws_event, results_of_other_events_and_failures_are_unchanged)
{
	static const char body[] = "{\"statusCode\":201,\"body\":\"x\"}";
	struct td_event *cron = new_event("c", "triggerd/cron/x", "triggerd.cron.tick");
	struct td_event *hook =
	    url_request("POST", "/p", NULL, NULL, 0, NULL, 0, "{}", 2, "application/json");
	struct {
		const struct td_event *ev;
		enum td_result_status status;
	} cases[] = {{cron, TD_RESULT_OK},
		     {hook, TD_RESULT_RETRY},
		     {hook, TD_RESULT_ERROR},
		     {NULL, TD_RESULT_OK}};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct td_result res = {.status = cases[i].status, .http_status = 503};
		res.body = strdup(body);
		res.body_len = sizeof body - 1;
		td_aws_result_to_http(cases[i].ev, &res);
		cr_expect_eq(res.status, cases[i].status, "case %zu", i);
		cr_expect_eq(res.http_status, 503, "case %zu", i);
		cr_expect_str_eq(res.body, body);
		cr_expect_null(res.content_type);
		td_result_clear(&res);
	}
	td_aws_result_to_http(hook, NULL);
	td_event_unref(cron);
	td_event_unref(hook);
}
