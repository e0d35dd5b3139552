/*
 * The AWS shapes of events and the function-URL response mapping (aws_event.h).
 *
 * Every shape is written with one pass of appends into a td_buf, as the matcher's JSON
 * form is: the payload bytes are copied as they came, never parsed into a tree. The
 * only exception is a MinIO S3 record, which is rewritten member by member with the
 * json.h iterator to AWS's record shape. Response objects are read the same way, so
 * any text td_json_valid accepts (huge numbers included) is handled.
 *
 * Kafka events get the self-managed Kafka event from the Kafka connector's own builder
 * (connectors/kafka_event.h): this is the second connector header the router includes
 * (after connectors/mqtt_topic.h), kept because that builder is pure and its shape is
 * the connector's knowledge.
 */
#include <triggerd/aws_event.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <triggerd/engine.h>
#include <triggerd/errors.h>
#include <triggerd/event.h>
#include <triggerd/function.h>

#include "../connectors/kafka_event.h"
#include "json.h"

#define WEBHOOK_TYPE	 "triggerd.webhook.request"
#define WEBHOOK_SOURCE	 "triggerd/webhook/"
#define CRON_TYPE	 "triggerd.cron.tick"
#define CRON_SOURCE	 "triggerd/cron/"
#define INVOKE_TYPE	 "triggerd.invoke"
#define INVOKE_SOURCE	 "triggerd/invoke-api"
#define S3_TYPE		 "com.amazonaws.s3."
#define S3_AWS_SOURCE	 "aws:s3."
#define S3_MINIO_SOURCE	 "minio:s3."
#define KAFKA_BOOTSTRAP	 "kafkabootstrap"
#define MAX_QUERY_PARAMS 10000

static bool starts_with(const char *s, const char *prefix)
{
	return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool equals(const char *s, const char *t)
{
	return s && strcmp(s, t) == 0;
}

/* ---- time ---------------------------------------------------------------------------- */

static int digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* An RFC 3339 date-time (the event's `time`, which the setter validated) in ms since
 * the epoch. -1 when it cannot be read. */
static int parse_time_ms(const char *s, long long *ms)
{
	int y, mo, d, h, mi, sec, oh = 0, om = 0, frac = 0;
	struct tm tm = {0};
	size_t i = 19;

	if (!s || strlen(s) < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) ||
	    s[7] != '-' || digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
	    digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
	    digits(s + 17, 2, &sec))
		return -1;
	if (s[i] == '.') {
		int scale = 100;
		for (i++; s[i] >= '0' && s[i] <= '9'; i++) {
			frac += (s[i] - '0') * scale;
			scale /= 10;
		}
	}
	if (s[i] == '+' || s[i] == '-') {
		if (digits(s + i + 1, 2, &oh) || s[i + 3] != ':' || digits(s + i + 4, 2, &om))
			return -1;
		if (s[i] == '-') {
			oh = -oh;
			om = -om;
		}
	} else if (s[i] != 'Z' && s[i] != 'z') {
		return -1;
	}
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec > 59 ? 59 : sec; /* a leap second counts as :59 */
	*ms = ((long long)timegm(&tm) - oh * 3600LL - om * 60LL) * 1000 + frac;
	return 0;
}

/* The event's time in ms (now when it has none). */
static long long event_ms(const struct td_event *ev)
{
	long long ms;
	if (parse_time_ms(td_event_get(ev, "time"), &ms) == 0)
		return ms;
	return td_wall_ms();
}

static struct tm utc(long long ms)
{
	time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	struct tm tm = {0};
	gmtime_r(&t, &tm);
	return tm;
}

/* "2026-11-27T06:00:00Z", as EventBridge writes it. */
static void append_eb_time(struct td_buf *b, long long ms)
{
	struct tm tm = utc(ms);
	td_buf_printf(b, "\"%04d-%02d-%02dT%02d:%02d:%02dZ\"", tm.tm_year + 1900, tm.tm_mon + 1,
		      tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* "27/Nov/2026:06:00:00 +0000", as function URLs write requestContext.time. */
static void append_clf_time(struct td_buf *b, long long ms)
{
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm tm = utc(ms);
	td_buf_printf(b, "\"%02d/%s/%04d:%02d:%02d:%02d +0000\"", tm.tm_mday,
		      months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* ---- shared pieces ------------------------------------------------------------------- */

static void append_member(struct td_buf *b, const char *name, const char *value)
{
	td_buf_appendc(b, '"');
	td_buf_appends(b, name);
	td_buf_appends(b, "\":");
	td_json_append_cstr(b, value ? value : "");
}

/* The payload as EventBridge's detail: JSON as is, text as a string, bytes in base64,
 * {} without a payload. */
static void append_detail(struct td_buf *b, const struct td_event *ev)
{
	size_t len;
	const char *data = td_event_data(ev, &len);

	switch (td_event_data_kind(ev)) {
	case TD_DATA_JSON:
		td_buf_append(b, data, len);
		break;
	case TD_DATA_TEXT:
		td_json_append_string(b, data, len);
		break;
	case TD_DATA_BINARY:
		td_buf_appendc(b, '"');
		td_base64_encode(b, data, len);
		td_buf_appendc(b, '"');
		break;
	default:
		td_buf_appends(b, "{}");
		break;
	}
}

/* {"version":"0","id":...,"detail-type":...,"source":...,"account","time","region", up to
 * "resources": the caller goes on from there. */
static void append_eb_head(struct td_buf *b, const struct td_event *ev, const char *detail_type,
			   const char *source)
{
	td_buf_appends(b, "{\"version\":\"0\",");
	append_member(b, "id", td_event_get(ev, "id"));
	td_buf_appendc(b, ',');
	append_member(b, "detail-type", detail_type);
	td_buf_appendc(b, ',');
	append_member(b, "source", source);
	td_buf_appends(b, ",\"account\":\"" TD_AWS_ACCOUNT "\",\"time\":");
	append_eb_time(b, event_ms(ev));
	td_buf_appends(b, ",\"region\":\"" TD_AWS_REGION "\",\"resources\":");
}

static char *finish(struct td_buf *b, size_t *len)
{
	char *out = td_buf_steal(b, len);
	if (!out && len)
		*len = 0;
	return out;
}

/* ---- EventBridge: cron and the rest -------------------------------------------------- */

static char *cron_event(const struct td_event *ev, size_t *len)
{
	const char *name = td_event_get(ev, "subject");
	struct td_buf b;

	if (!name)
		name = td_event_get(ev, "source") + strlen(CRON_SOURCE);
	td_buf_init(&b);
	append_eb_head(&b, ev, "Scheduled Event", "aws.events");
	td_buf_appends(&b, "[");
	td_buf_appends(&b, "\"arn:aws:events:" TD_AWS_REGION ":" TD_AWS_ACCOUNT ":rule/");
	/* The name inside the string: its JSON string text without the quotes. */
	{
		struct td_buf q;
		td_buf_init(&q);
		if (td_json_append_cstr(&q, name) == 0 && q.len >= 2)
			td_buf_append(&b, q.data + 1, q.len - 2);
		else
			b.oom = true;
		td_buf_free(&q);
	}
	td_buf_appends(&b, "\"],\"detail\":");
	append_detail(&b, ev);
	td_buf_appendc(&b, '}');
	return finish(&b, len);
}

static char *eventbridge_event(const struct td_event *ev, size_t *len)
{
	static const char *const attrs[] = {"subject", "datacontenttype", "dataschema"};
	const char *name, *value;
	bool first = true;
	struct td_buf b;

	td_buf_init(&b);
	append_eb_head(&b, ev, td_event_get(ev, "type"), td_event_get(ev, "source"));
	td_buf_appends(&b, "[],\"detail\":");
	append_detail(&b, ev);
	td_buf_appends(&b, ",\"cloudevents\":{");
	for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++) {
		value = td_event_get(ev, attrs[i]);
		if (!value)
			continue;
		if (!first)
			td_buf_appendc(&b, ',');
		first = false;
		append_member(&b, attrs[i], value);
	}
	for (size_t i = 0; td_event_extension(ev, i, &name, &value); i++) {
		if (!first)
			td_buf_appendc(&b, ',');
		first = false;
		if (td_event_extension_type(ev, i) == TD_ATTR_STRING) {
			append_member(&b, name, value);
		} else {
			td_buf_printf(&b, "\"%s\":", name);
			td_buf_appends(&b, value);
		}
	}
	td_buf_appends(&b, "}}");
	return finish(&b, len);
}

/* ---- S3 ------------------------------------------------------------------------------ */

/* A MinIO record rewritten to AWS's shape (see the header). -TD_EINVAL when the record
 * is no JSON object (then the caller passes it as it is). */
static int minio_record(struct td_buf *b, const char *rec, size_t len)
{
	struct td_json_iter it;
	struct td_json_member m;
	bool first = true;
	int rc;

	if (td_json_iter_object(&it, rec, len) < 0)
		return -TD_EINVAL;
	td_buf_appendc(b, '{');
	while ((rc = td_json_iter_next(&it, &m)) > 0) {
		const char *v = m.value;
		size_t vlen = m.value_len;

		if (td_json_key_equals(&m, "source"))
			continue;
		if (!first)
			td_buf_appendc(b, ',');
		first = false;
		td_buf_appendc(b, '"');
		td_buf_append(b, m.key, m.key_len);
		td_buf_appends(b, "\":");
		if (td_json_key_equals(&m, "eventSource")) {
			td_buf_appends(b, "\"aws:s3\"");
		} else if (td_json_key_equals(&m, "eventName") && vlen >= 5 &&
			   strncmp(v, "\"s3:", 4) == 0) {
			td_buf_appendc(b, '"');
			td_buf_append(b, v + 4, vlen - 4);
		} else if (td_json_key_equals(&m, "awsRegion") && vlen == 2 &&
			   memcmp(v, "\"\"", 2) == 0) {
			td_buf_appends(b, "\"" TD_AWS_REGION "\"");
		} else {
			td_buf_append(b, v, vlen);
		}
	}
	td_buf_appendc(b, '}');
	return rc < 0 ? -TD_EINVAL : 0;
}

static char *s3_event(const struct td_event *ev, size_t *len)
{
	size_t dlen;
	const char *data = td_event_data(ev, &dlen);
	struct td_buf b;

	td_buf_init(&b);
	td_buf_appends(&b, "{\"Records\":[");
	if (starts_with(td_event_get(ev, "source"), S3_MINIO_SOURCE)) {
		size_t mark = b.len;
		if (minio_record(&b, data, dlen) < 0) {
			b.len = mark;
			td_buf_append(&b, data, dlen);
		}
	} else {
		td_buf_append(&b, data, dlen);
	}
	td_buf_appends(&b, "]}");
	return finish(&b, len);
}

/* ---- function URL request event ------------------------------------------------------ */

static bool textual(const char *ct, enum td_data_kind kind)
{
	size_t n;
	const char *slash, *end;

	if (kind == TD_DATA_BINARY || kind == TD_DATA_NONE)
		return false;
	if (!ct)
		return kind == TD_DATA_JSON;
	if (td_event_content_type_is_json(ct) || strncasecmp(ct, "text/", 5) == 0)
		return true;
	end = ct + strcspn(ct, "; \t");
	n = (size_t)(end - ct);
	slash = memchr(ct, '/', n);
	if (!slash)
		return false;
	if ((end - slash > 4 && strncasecmp(end - 4, "+xml", 4) == 0) ||
	    (end - slash == 4 && strncasecmp(slash, "/xml", 4) == 0))
		return true;
	return (n == 22 && strncasecmp(ct, "application/javascript", n) == 0) ||
	       (n == 24 && strncasecmp(ct, "application/x-javascript", n) == 0);
}

/* The decoded value of one member of the headers object, or NULL. */
struct req_headers {
	struct td_buf host, user_agent, cookie;
	bool has_host, has_ua, has_cookie;
};

/* Appends the headers object (without "cookie") and collects the values the event needs.
 * The extension is our own JSON text, but a CloudEvent posted to a webhook could carry
 * anything under that name: what is not an object of strings gives {}. */
static void append_headers(struct td_buf *b, const char *json, struct req_headers *h)
{
	struct td_json_iter it;
	struct td_json_member m;
	size_t len = json ? strlen(json) : 0, mark;
	bool first = true;
	int rc = 0;

	td_buf_appendc(b, '{');
	mark = b->len;
	if (!json || !td_json_valid(json, len, 2) || td_json_iter_object(&it, json, len) < 0) {
		td_buf_appendc(b, '}');
		return;
	}
	while ((rc = td_json_iter_next(&it, &m)) > 0) {
		struct td_buf *dest = NULL;
		bool *has = NULL;

		if (m.value_len < 2 || m.value[0] != '"') {
			rc = -TD_EINVAL;
			break;
		}
		if (td_json_key_equals(&m, "host")) {
			dest = &h->host;
			has = &h->has_host;
		} else if (td_json_key_equals(&m, "user-agent")) {
			dest = &h->user_agent;
			has = &h->has_ua;
		} else if (td_json_key_equals(&m, "cookie")) {
			dest = &h->cookie;
			has = &h->has_cookie;
		}
		if (dest) {
			td_buf_reset(dest);
			if (td_json_string_decode(m.value + 1, m.value_len - 2, dest) == -TD_ENOMEM)
				b->oom = true;
			td_buf_appends(dest, "");
			*has = true;
		}
		if (has == &h->has_cookie)
			continue;
		if (!first)
			td_buf_appendc(b, ',');
		first = false;
		td_buf_appendc(b, '"');
		td_buf_append(b, m.key, m.key_len);
		td_buf_appends(b, "\":");
		td_buf_append(b, m.value, m.value_len);
	}
	if (rc < 0) {
		b->len = mark; /* drop what was written: not an object of strings */
		if (b->data)
			b->data[mark] = '\0';
		h->has_host = h->has_ua = h->has_cookie = false;
	}
	td_buf_appendc(b, '}');
}

static void append_cookies(struct td_buf *b, const char *cookie)
{
	bool first = true;
	const char *p = cookie;

	td_buf_appends(b, ",\"cookies\":[");
	while (*p) {
		size_t n = strcspn(p, ";");
		const char *s = p, *e = p + n;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e > s) {
			if (!first)
				td_buf_appendc(b, ',');
			first = false;
			td_json_append_string(b, s, (size_t)(e - s));
		}
		p += n;
		if (*p)
			p++;
	}
	td_buf_appendc(b, ']');
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Form decoding: "+" is a space, %XX a byte (a malformed escape stays as it is). */
static void form_decode(struct td_buf *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '+') {
			td_buf_appendc(out, ' ');
		} else if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 &&
			   hexval(s[i + 2]) >= 0) {
			td_buf_appendc(out, (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2])));
			i += 2;
		} else {
			td_buf_appendc(out, s[i]);
		}
	}
}

struct qparam {
	const char *name, *value; /* raw text in the query */
	size_t name_len, value_len;
	size_t index; /* position in the query */
	size_t first; /* position of the first parameter with this name */
	char *dname;  /* decoded name */
	size_t dname_len;
};

static int cmp_name(const void *a, const void *b)
{
	const struct qparam *x = a, *y = b;
	size_t n = x->dname_len < y->dname_len ? x->dname_len : y->dname_len;
	int c = memcmp(x->dname, y->dname, n);
	if (c)
		return c;
	if (x->dname_len != y->dname_len)
		return x->dname_len < y->dname_len ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

static bool same_name(const struct qparam *x, const struct qparam *y)
{
	return x->dname_len == y->dname_len && memcmp(x->dname, y->dname, x->dname_len) == 0;
}

static int cmp_order(const void *a, const void *b)
{
	const struct qparam *x = a, *y = b;
	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* "queryStringParameters": {name: value, ...}, repeated names joined with ",", in the
 * order of first appearance. Nothing when the query has no parameter. */
static void append_query_params(struct td_buf *b, const char *query)
{
	struct qparam *v = NULL;
	struct td_buf names, val;
	size_t n = 0, cap = 0;
	const char *p = query;

	td_buf_init(&names);
	td_buf_init(&val);
	while (*p && n < MAX_QUERY_PARAMS) {
		size_t len = strcspn(p, "&");
		if (len > 0) {
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				struct qparam *nv = realloc(v, ncap * sizeof *v);
				if (!nv) {
					b->oom = true;
					goto out;
				}
				v = nv;
				cap = ncap;
			}
			const char *eq = memchr(p, '=', len);
			v[n] = (struct qparam){.name = p,
					       .name_len = eq ? (size_t)(eq - p) : len,
					       .value = eq ? eq + 1 : p + len,
					       .value_len = eq ? len - (size_t)(eq - p) - 1 : 0,
					       .index = n};
			n++;
		}
		p += len;
		if (*p)
			p++;
	}
	if (n == 0)
		goto out;
	/* Decoded names, in one buffer (offsets first: the buffer moves while it grows). */
	for (size_t i = 0; i < n; i++) {
		size_t start = names.len;
		form_decode(&names, v[i].name, v[i].name_len);
		v[i].dname = (char *)(uintptr_t)start;
		v[i].dname_len = names.len - start;
	}
	if (td_buf_appends(&names, "") < 0) {
		b->oom = true;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		v[i].dname = names.data + (uintptr_t)v[i].dname;
	qsort(v, n, sizeof *v, cmp_name);
	for (size_t i = 0; i < n; i++)
		v[i].first = i > 0 && same_name(&v[i - 1], &v[i]) ? v[i - 1].first : v[i].index;
	qsort(v, n, sizeof *v, cmp_order);
	td_buf_appends(b, ",\"queryStringParameters\":{");
	for (size_t i = 0; i < n; i++) {
		bool same = i > 0 && v[i].first == v[i - 1].first;
		if (same) {
			td_buf_appendc(&val, ',');
		} else {
			td_buf_reset(&val);
			if (i > 0)
				td_buf_appendc(b, ',');
			td_json_append_string(b, v[i].dname, v[i].dname_len);
			td_buf_appendc(b, ':');
		}
		form_decode(&val, v[i].value, v[i].value_len);
		if (i + 1 == n || v[i + 1].first != v[i].first) {
			if (td_buf_failed(&val))
				b->oom = true;
			td_json_append_string(b, val.data ? val.data : "", val.len);
		}
	}
	td_buf_appendc(b, '}');
out:
	free(v);
	td_buf_free(&names);
	td_buf_free(&val);
}

/* The first label of a host ("abc" of "abc.lambda-url.us-east-1.on.aws:443"). */
static void append_first_label(struct td_buf *b, const char *host)
{
	size_t n = strcspn(host, ".:");
	if (host[0] == '[') /* an IPv6 literal: up to its bracket */
		n = strcspn(host, "]") + (strchr(host, ']') ? 1 : 0);
	td_json_append_string(b, host, n);
}

static char *url_event(const struct td_event *ev, size_t *len)
{
	struct req_headers h = {0};
	const char *query = td_event_get(ev, TD_AWS_EXT_QUERY);
	const char *ct = td_event_get(ev, "datacontenttype");
	enum td_data_kind kind = td_event_data_kind(ev);
	long long ms = event_ms(ev);
	struct td_buf b, hb;
	size_t dlen;
	const char *data = td_event_data(ev, &dlen);

	td_buf_init(&b);
	td_buf_init(&hb);
	td_buf_init(&h.host);
	td_buf_init(&h.user_agent);
	td_buf_init(&h.cookie);
	append_headers(&hb, td_event_get(ev, TD_AWS_EXT_HEADERS), &h);
	if (td_buf_failed(&hb))
		b.oom = true;

	td_buf_appends(&b, "{\"version\":\"2.0\",\"routeKey\":\"$default\",");
	append_member(&b, "rawPath", td_event_get(ev, "subject"));
	td_buf_appendc(&b, ',');
	append_member(&b, "rawQueryString", query);
	if (h.has_cookie && h.cookie.data)
		append_cookies(&b, h.cookie.data);
	td_buf_appends(&b, ",\"headers\":");
	td_buf_append(&b, hb.data ? hb.data : "{}", hb.data ? hb.len : 2);
	if (query && *query)
		append_query_params(&b, query);
	td_buf_appends(&b, ",\"requestContext\":{\"accountId\":\"anonymous\",\"apiId\":");
	append_first_label(&b, h.has_host && h.host.data ? h.host.data : "");
	td_buf_appendc(&b, ',');
	append_member(&b, "domainName", h.has_host ? h.host.data : "");
	td_buf_appends(&b, ",\"domainPrefix\":");
	append_first_label(&b, h.has_host && h.host.data ? h.host.data : "");
	td_buf_appends(&b, ",\"http\":{");
	append_member(&b, "method", td_event_get(ev, "httpmethod"));
	td_buf_appendc(&b, ',');
	append_member(&b, "path", td_event_get(ev, "subject"));
	td_buf_appends(&b, ",\"protocol\":\"HTTP/1.1\",");
	append_member(&b, "sourceIp", td_event_get(ev, TD_AWS_EXT_SOURCEIP));
	td_buf_appendc(&b, ',');
	append_member(&b, "userAgent", h.has_ua ? h.user_agent.data : "");
	td_buf_appends(&b, "},");
	append_member(&b, "requestId", td_event_get(ev, "id"));
	td_buf_appends(&b, ",\"routeKey\":\"$default\",\"stage\":\"$default\",\"time\":");
	append_clf_time(&b, ms);
	td_buf_printf(&b, ",\"timeEpoch\":%lld}", ms);
	if (kind == TD_DATA_NONE) {
		td_buf_appends(&b, ",\"isBase64Encoded\":false}");
	} else if (textual(ct, kind)) {
		td_buf_appends(&b, ",\"body\":");
		td_json_append_string(&b, data, dlen);
		td_buf_appends(&b, ",\"isBase64Encoded\":false}");
	} else {
		td_buf_appends(&b, ",\"body\":\"");
		td_base64_encode(&b, data, dlen);
		td_buf_appends(&b, "\",\"isBase64Encoded\":true}");
	}
	td_buf_free(&hb);
	td_buf_free(&h.host);
	td_buf_free(&h.user_agent);
	td_buf_free(&h.cookie);
	return finish(&b, len);
}

/* ---- dispatch by event --------------------------------------------------------------- */

bool td_event_is_webhook_request(const struct td_event *ev)
{
	return ev && equals(td_event_get(ev, "type"), WEBHOOK_TYPE) &&
	       starts_with(td_event_get(ev, "source"), WEBHOOK_SOURCE) &&
	       td_event_get(ev, "httpmethod") && td_event_get(ev, "subject");
}

static char *invoke_payload(const struct td_event *ev, size_t *len)
{
	size_t dlen;
	const char *data = td_event_data(ev, &dlen);
	char *out;

	if (!data) {
		data = "{}";
		dlen = 2;
	}
	out = malloc(dlen + 1);
	if (!out) {
		if (len)
			*len = 0;
		return NULL;
	}
	memcpy(out, data, dlen);
	out[dlen] = '\0';
	if (len)
		*len = dlen;
	return out;
}

char *td_event_aws_payload(const struct td_event *ev, size_t *len)
{
	const char *type = td_event_get(ev, "type");
	const char *source = td_event_get(ev, "source");
	char err[128];
	char *out;

	if (len)
		*len = 0;
	if (equals(type, CRON_TYPE) && starts_with(source, CRON_SOURCE))
		return cron_event(ev, len);
	if (starts_with(type, S3_TYPE) && td_event_data_kind(ev) == TD_DATA_JSON &&
	    (starts_with(source, S3_AWS_SOURCE) || starts_with(source, S3_MINIO_SOURCE)))
		return s3_event(ev, len);
	if (td_event_is_webhook_request(ev))
		return url_event(ev, len);
	if (equals(type, INVOKE_TYPE) && equals(source, INVOKE_SOURCE))
		return invoke_payload(ev, len);
	if (equals(type, TD_KAFKA_RECORD_TYPE) || equals(type, TD_KAFKA_BATCH_TYPE)) {
		out =
		    td_kafka_aws_json(ev, td_event_get(ev, KAFKA_BOOTSTRAP), len, err, sizeof err);
		if (out)
			return out;
	}
	return eventbridge_event(ev, len);
}

/* ---- the httpheaders extension ------------------------------------------------------- */

/* A JSON string of only printable ASCII: other characters as \u escapes (surrogate pairs
 * above U+FFFF), bytes that are not UTF-8 read as Latin-1. */
static void append_ascii_string(struct td_buf *b, const char *s, size_t n)
{
	td_buf_appendc(b, '"');
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		unsigned cp;
		size_t k;

		if (c >= 0x20 && c < 0x7f) {
			if (c == '"' || c == '\\')
				td_buf_appendc(b, '\\');
			td_buf_appendc(b, (char)c);
			i++;
			continue;
		}
		k = c >= 0x80 ? td_utf8_decode((const unsigned char *)s + i, n - i, &cp) : 0;
		if (k == 0) {
			cp = c;
			k = 1;
		}
		if (cp >= 0x10000) {
			cp -= 0x10000;
			td_buf_printf(b, "\\u%04x\\u%04x", 0xd800 + (cp >> 10),
				      0xdc00 + (cp & 0x3ff));
		} else {
			td_buf_printf(b, "\\u%04x", cp);
		}
		i += k;
	}
	td_buf_appendc(b, '"');
}

static bool redacted(const char *name, const char *const *redact, size_t nredact)
{
	for (size_t i = 0; i < nredact; i++)
		if (redact[i] && strcasecmp(redact[i], name) == 0)
			return true;
	return false;
}

char *td_aws_headers_json(const struct td_http_header *headers, size_t n, const char *const *redact,
			  size_t nredact)
{
	struct td_buf b;
	bool first = true;

	td_buf_init(&b);
	td_buf_appendc(&b, '{');
	for (size_t i = 0; i < n; i++) {
		const char *name = headers[i].name;
		bool seen = false, hide;
		size_t nlen;

		for (size_t j = 0; j < i && !seen; j++)
			seen = strcasecmp(headers[j].name, name) == 0;
		if (seen)
			continue;
		if (!first)
			td_buf_appendc(&b, ',');
		first = false;
		nlen = strlen(name);
		{
			/* The name in lower case. */
			char small[64];
			char *low = nlen < sizeof small ? small : malloc(nlen + 1);
			if (!low) {
				b.oom = true;
				break;
			}
			for (size_t k = 0; k < nlen; k++)
				low[k] = (name[k] >= 'A' && name[k] <= 'Z') ? (char)(name[k] + 32)
									    : name[k];
			append_ascii_string(&b, low, nlen);
			if (low != small)
				free(low);
		}
		td_buf_appendc(&b, ':');
		hide = redacted(name, redact, nredact);
		if (hide) {
			td_buf_appends(&b, "\"" TD_AWS_REDACTED "\"");
			continue;
		}
		/* The value: this header's and every later one's of the same name. */
		struct td_buf v;
		bool vfirst = true;
		td_buf_init(&v);
		for (size_t j = i; j < n; j++) {
			if (strcasecmp(headers[j].name, name) != 0)
				continue;
			if (!vfirst)
				td_buf_appendc(&v, ',');
			vfirst = false;
			td_buf_appends(&v, headers[j].value ? headers[j].value : "");
		}
		td_buf_appends(&v, "");
		if (td_buf_failed(&v))
			b.oom = true;
		else
			append_ascii_string(&b, v.data, v.len);
		td_buf_free(&v);
	}
	td_buf_appendc(&b, '}');
	return td_buf_steal(&b, NULL);
}

/* ---- function URL responses ---------------------------------------------------------- */

struct response {
	int status;
	struct td_result_header *headers;
	size_t nheaders, cap;
	char *content_type;
	struct td_buf body;
	char err[200];
	bool oom;
};

static bool token_char(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool valid_name(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!token_char((unsigned char)s[i]))
			return false;
	return true;
}

static bool valid_value(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

/* Decodes a JSON string value (with its quotes) into out. */
static int decode_string(const struct td_json_member *m, struct td_buf *out)
{
	td_buf_reset(out);
	if (m->value_len < 2 || m->value[0] != '"')
		return -TD_EINVAL;
	int rc = td_json_string_decode(m->value + 1, m->value_len - 2, out);
	if (rc == 0)
		rc = td_buf_appends(out, "");
	return rc;
}

static int add_header(struct response *r, const char *name, size_t nlen, const char *value,
		      size_t vlen)
{
	if (r->nheaders == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 8;
		struct td_result_header *nh = realloc(r->headers, ncap * sizeof *nh);
		if (!nh)
			return -TD_ENOMEM;
		r->headers = nh;
		r->cap = ncap;
	}
	char *n = strndup(name, nlen);
	char *v = strndup(value, vlen);
	if (!n || !v) {
		free(n);
		free(v);
		return -TD_ENOMEM;
	}
	r->headers[r->nheaders].name = n;
	r->headers[r->nheaders].value = v;
	r->nheaders++;
	return 0;
}

__attribute__((format(printf, 3, 4))) static int fail_field(struct response *r, int rc,
							    const char *fmt, ...)
{
	va_list ap;

	if (rc == -TD_ENOMEM) {
		r->oom = true;
		return rc;
	}
	va_start(ap, fmt);
	vsnprintf(r->err, sizeof r->err, fmt, ap);
	va_end(ap);
	return -TD_EINVAL;
}

/* The raw key of a member as printable text for a message (at most 60 bytes). */
static void key_text(const struct td_json_member *m, char *out, size_t cap)
{
	size_t n = 0;
	for (size_t i = 0; i < m->key_len && n + 1 < cap && n < 60; i++) {
		unsigned char c = (unsigned char)m->key[i];
		out[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	out[n] = '\0';
}

static int read_headers(struct response *r, const struct td_json_member *hm)
{
	struct td_json_iter it;
	struct td_json_member m;
	struct td_buf name, value;
	char key[64];
	int rc;

	if (hm->value_len == 4 && memcmp(hm->value, "null", 4) == 0)
		return 0;
	if (td_json_iter_object(&it, hm->value, hm->value_len) < 0)
		return fail_field(r, 0, "%s: not an object", "headers");
	td_buf_init(&name);
	td_buf_init(&value);
	while ((rc = td_json_iter_next(&it, &m)) > 0) {
		const char *v = m.value;
		key_text(&m, key, sizeof key);
		td_buf_reset(&name);
		if ((rc = td_json_string_decode(m.key, m.key_len, &name)) < 0 ||
		    (rc = td_buf_appends(&name, "")) < 0 || !valid_name(name.data, name.len)) {
			rc = fail_field(r, rc, "headers: \"%s\" is not a header name", key);
			break;
		}
		if (v[0] == '"') {
			if ((rc = decode_string(&m, &value)) < 0) {
				rc = fail_field(r, rc, "headers.%s: not a string", key);
				break;
			}
		} else if (v[0] == '-' || (v[0] >= '0' && v[0] <= '9') ||
			   (m.value_len == 4 && memcmp(v, "true", 4) == 0) ||
			   (m.value_len == 5 && memcmp(v, "false", 5) == 0)) {
			td_buf_reset(&value);
			td_buf_append(&value, v, m.value_len);
			if (td_buf_failed(&value)) {
				rc = fail_field(r, -TD_ENOMEM, "out of memory");
				break;
			}
		} else {
			rc = fail_field(r, 0, "headers.%s: not a string", key);
			break;
		}
		if (!valid_value(value.data ? value.data : "", value.len)) {
			rc = fail_field(r, 0, "headers.%s: the value holds a control character",
					key);
			break;
		}
		if (strcasecmp(name.data, "Content-Type") == 0) {
			free(r->content_type);
			r->content_type = strdup(value.data ? value.data : "");
			if (!r->content_type) {
				rc = fail_field(r, -TD_ENOMEM, "out of memory");
				break;
			}
			continue;
		}
		if (strcasecmp(name.data, "Content-Length") == 0 ||
		    strcasecmp(name.data, "Transfer-Encoding") == 0 ||
		    strcasecmp(name.data, "Connection") == 0)
			continue;
		if ((rc = add_header(r, name.data, name.len, value.data ? value.data : "",
				     value.len)) < 0) {
			rc = fail_field(r, rc, "out of memory");
			break;
		}
	}
	if (rc == -TD_EINVAL && !r->err[0])
		fail_field(r, 0, "%s: not a JSON object", "headers");
	td_buf_free(&name);
	td_buf_free(&value);
	return rc < 0 ? rc : 0;
}

static int read_cookies(struct response *r, const struct td_json_member *cm)
{
	const char *s = cm->value;
	size_t len = cm->value_len, pos = 1;
	struct td_buf value;
	int rc = 0, i = 0;

	if (len == 4 && memcmp(s, "null", 4) == 0)
		return 0;
	if (s[0] != '[')
		return fail_field(r, 0, "%s: not an array of strings", "cookies");
	td_buf_init(&value);
	for (;; i++) {
		size_t start;
		while (pos < len && strchr(" \t\r\n,", s[pos]))
			pos++;
		if (pos >= len || s[pos] == ']')
			break;
		start = pos;
		if (s[pos] != '"' || td_json_skip(s, len, &pos) < 0) {
			char idx[32];
			snprintf(idx, sizeof idx, "%d", i);
			rc = fail_field(r, 0, "cookies[%s]: not a string", idx);
			break;
		}
		struct td_json_member m = {.value = s + start, .value_len = pos - start};
		if ((rc = decode_string(&m, &value)) < 0 ||
		    !valid_value(value.data ? value.data : "", value.len)) {
			char idx[32];
			snprintf(idx, sizeof idx, "%d", i);
			rc = fail_field(
			    r, rc, "cookies[%s]: not a string without control characters", idx);
			break;
		}
		if ((rc = add_header(r, "Set-Cookie", 10, value.data ? value.data : "",
				     value.len)) < 0) {
			rc = fail_field(r, rc, "out of memory");
			break;
		}
	}
	td_buf_free(&value);
	return rc;
}

static int read_status(struct response *r, const struct td_json_member *m)
{
	int v = 0;
	if (m->value_len < 1 || m->value_len > 3)
		return fail_field(r, 0, "%s: not an integer 100..599", "statusCode");
	for (size_t i = 0; i < m->value_len; i++) {
		if (m->value[i] < '0' || m->value[i] > '9')
			return fail_field(r, 0, "%s: not an integer 100..599", "statusCode");
		v = v * 10 + (m->value[i] - '0');
	}
	if (v < 100 || v > 599)
		return fail_field(r, 0, "%s: not an integer 100..599", "statusCode");
	r->status = v;
	return 0;
}

/* Reads a response object. 0, -TD_EINVAL (r->err names the field) or -TD_ENOMEM. */
static int read_response(struct response *r, const char *text, size_t len)
{
	struct td_json_iter it;
	struct td_json_member m, status = {0}, headers = {0}, cookies = {0}, body = {0}, b64 = {0};
	bool encoded = false;
	int rc;

	if (td_json_iter_object(&it, text, len) < 0)
		return -TD_EINVAL;
	while ((rc = td_json_iter_next(&it, &m)) > 0) {
		if (td_json_key_equals(&m, "statusCode"))
			status = m;
		else if (td_json_key_equals(&m, "headers"))
			headers = m;
		else if (td_json_key_equals(&m, "cookies"))
			cookies = m;
		else if (td_json_key_equals(&m, "body"))
			body = m;
		else if (td_json_key_equals(&m, "isBase64Encoded"))
			b64 = m;
	}
	if (rc < 0)
		return fail_field(r, 0, "not a JSON object");
	if ((rc = read_status(r, &status)) < 0)
		return rc;
	if (b64.value) {
		if (b64.value_len == 4 && memcmp(b64.value, "true", 4) == 0)
			encoded = true;
		else if (!((b64.value_len == 5 && memcmp(b64.value, "false", 5) == 0) ||
			   (b64.value_len == 4 && memcmp(b64.value, "null", 4) == 0)))
			return fail_field(r, 0, "%s: not a boolean", "isBase64Encoded");
	}
	if (headers.value && (rc = read_headers(r, &headers)) < 0)
		return rc;
	if (cookies.value && (rc = read_cookies(r, &cookies)) < 0)
		return rc;
	if (body.value && !(body.value_len == 4 && memcmp(body.value, "null", 4) == 0)) {
		struct td_buf text_body;
		if (body.value[0] != '"')
			return fail_field(r, 0, "%s: not a string", "body");
		td_buf_init(&text_body);
		rc = decode_string(&body, &text_body);
		if (rc == 0 && encoded) {
			char why[120];
			rc = td_base64_decode(text_body.data, text_body.len, &r->body, why,
					      sizeof why);
			if (rc == -TD_EINVAL)
				snprintf(r->err, sizeof r->err, "body: bad base64 (%s)", why);
		} else if (rc == 0) {
			td_buf_append(&r->body, text_body.data, text_body.len);
		}
		td_buf_free(&text_body);
		if (rc < 0)
			return rc == -TD_EINVAL && r->err[0]
				   ? rc
				   : fail_field(r, rc, "%s: not a string", "body");
	}
	if (td_buf_failed(&r->body))
		return fail_field(r, -TD_ENOMEM, "out of memory");
	if (!r->content_type && !(r->content_type = strdup("application/json")))
		return fail_field(r, -TD_ENOMEM, "out of memory");
	return 0;
}

static void response_free(struct response *r)
{
	for (size_t i = 0; i < r->nheaders; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	free(r->headers);
	free(r->content_type);
	td_buf_free(&r->body);
}

static void clear_headers(struct td_result *res)
{
	for (size_t i = 0; i < res->nheaders; i++) {
		free(res->headers[i].name);
		free(res->headers[i].value);
	}
	free(res->headers);
	res->headers = NULL;
	res->nheaders = 0;
}

/* The result becomes a failure: status (RETRY for out of memory), reason. */
static void result_fail(struct td_result *res, enum td_result_status status, const char *reason)
{
	struct td_buf b;

	clear_headers(res);
	free(res->body);
	free(res->content_type);
	free(res->error);
	res->body = NULL;
	res->body_len = 0;
	res->content_type = NULL;
	res->status = status;
	res->http_status = 502;
	res->error = strdup(reason);
	if (status != TD_RESULT_ERROR)
		return;
	td_buf_init(&b);
	td_buf_appends(&b, "{\"errorMessage\":");
	td_json_append_cstr(&b, reason);
	td_buf_appends(&b, ",\"errorType\":\"InvalidResponse\"}");
	res->body = td_buf_steal(&b, &res->body_len);
	if (!res->body)
		res->body_len = 0;
	else
		res->content_type = strdup("application/json");
}

void td_aws_result_to_http(const struct td_event *ev, struct td_result *res)
{
	struct response r = {0};
	char reason[256];
	bool object = false;
	int rc;

	if (!res || res->status != TD_RESULT_OK || !td_event_is_webhook_request(ev))
		return;
	if (!res->body || !td_json_valid(res->body, res->body_len, 0)) {
		res->http_status = 200;
		return;
	}
	/* A response object is an object with a statusCode member. */
	{
		struct td_json_iter it;
		struct td_json_member m;
		if (td_json_iter_object(&it, res->body, res->body_len) == 0)
			while (!object && td_json_iter_next(&it, &m) > 0)
				object = td_json_key_equals(&m, "statusCode");
	}
	if (!object) {
		char *ct = strdup("application/json");
		if (!ct) {
			result_fail(res, TD_RESULT_RETRY, "out of memory");
			return;
		}
		free(res->content_type);
		res->content_type = ct;
		res->http_status = 200;
		return;
	}
	td_buf_init(&r.body);
	rc = read_response(&r, res->body, res->body_len);
	if (rc < 0 || r.oom) {
		if (rc == -TD_ENOMEM || r.oom) {
			result_fail(res, TD_RESULT_RETRY, "out of memory");
		} else {
			snprintf(reason, sizeof reason, "function URL response: %s",
				 r.err[0] ? r.err : "malformed");
			result_fail(res, TD_RESULT_ERROR, reason);
		}
		response_free(&r);
		return;
	}
	clear_headers(res);
	free(res->body);
	free(res->content_type);
	res->headers = r.headers;
	res->nheaders = r.nheaders;
	r.headers = NULL;
	r.nheaders = 0;
	res->content_type = r.content_type;
	r.content_type = NULL;
	res->body = td_buf_steal(&r.body, &res->body_len);
	res->http_status = r.status;
	if (!res->body) {
		res->body_len = 0;
		result_fail(res, TD_RESULT_RETRY, "out of memory");
	}
	response_free(&r);
}
