/*
 * Kafka records as CloudEvents and back (see kafka_event.h). Events are built with the
 * setters of event.h, which check every value; the JSON texts made here (kafkaheaders,
 * batch data, the AWS shape, dead letters) are built with appends into one buffer, no
 * DOM. What comes back from outside (a kafkaheaders text, an event read from JSON, a
 * destination record) is validated before it is walked, and every walk stays within
 * the text it was given.
 */
#include "kafka_event.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <triggerd/errors.h>
#include <triggerd/event.h>
#include <triggerd/function.h>

#include "../router/json.h"

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -TD_EINVAL;
}

unsigned long long td_kafka_key_hash(const void *key, size_t len)
{
	const unsigned char *p = key;
	unsigned long long h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

int td_kafka_topic_check(const char *topic, char *err, size_t errlen)
{
	size_t n = strlen(topic);
	if (n == 0)
		return fail(err, errlen, "the topic name is empty");
	if (n > 249)
		return fail(err, errlen, "the topic name is longer than 249 characters");
	if (strcmp(topic, ".") == 0 || strcmp(topic, "..") == 0)
		return fail(err, errlen, "\"%s\" is not a topic name", topic);
	for (size_t i = 0; i < n; i++) {
		char c = topic[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return fail(err, errlen,
				    "the topic name has a character other than letters, digits, "
				    "'.', '_' and '-' at byte %zu",
				    i + 1);
	}
	return 0;
}

/* ---- record events ---- */

static const char *const core_names[] = {
    "id",   "source",	       "type",	     "specversion", "subject",
    "time", "datacontenttype", "dataschema", "data"};

/* True when a header may become an extension named name. */
static bool header_ext_name(const char *name, size_t n, char out[21])
{
	if (n == 0 || n > 20 || (n >= 5 && memcmp(name, "kafka", 5) == 0))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9')))
			return false;
	memcpy(out, name, n);
	out[n] = '\0';
	for (size_t i = 0; i < sizeof core_names / sizeof core_names[0]; i++)
		if (strcmp(out, core_names[i]) == 0)
			return false;
	return true;
}

static int set_offset(struct td_event *ev, const char *name, long long offset)
{
	if (offset >= 0 && offset <= INT32_MAX)
		return td_event_set_int(ev, name, offset);
	char text[24];
	snprintf(text, sizeof text, "%lld", offset);
	return td_event_set(ev, name, text);
}

/*
 * Appends s as a JSON string whose text is also a CloudEvents String: besides what
 * JSON needs, DEL, the C1 controls and Unicode noncharacters are written as \u escapes
 * and bytes that are not UTF-8 as \ufffd.
 */
static void append_ce_json_string(struct td_buf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	td_buf_appendc(b, '"');
	while (i < n) {
		unsigned cp;
		size_t k = td_utf8_decode(p + i, n - i, &cp);
		if (k == 0) {
			td_buf_appends(b, "\\ufffd");
			i++;
			continue;
		}
		bool nonchar = (cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) == 0xfffe;
		if (cp == '"' || cp == '\\') {
			td_buf_appendc(b, '\\');
			td_buf_appendc(b, (char)cp);
		} else if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (nonchar && cp <= 0xffff)) {
			td_buf_printf(b, "\\u%04x", cp);
		} else if (nonchar) {
			unsigned v = cp - 0x10000;
			td_buf_printf(b, "\\u%04x\\u%04x", 0xd800 + (v >> 10),
				      0xdc00 + (v & 0x3ff));
		} else {
			td_buf_append(b, p + i, k);
		}
		i += k;
	}
	td_buf_appendc(b, '"');
}

static int append_headers_json(struct td_buf *b, const struct td_kafka_header *h, size_t n)
{
	td_buf_appendc(b, '[');
	for (size_t i = 0; i < n; i++) {
		td_buf_appends(b, i ? ",{" : "{");
		append_ce_json_string(b, h[i].name ? h[i].name : "", h[i].name ? h[i].name_len : 0);
		td_buf_appendc(b, ':');
		if (!h[i].value) {
			td_buf_appends(b, "null}");
			continue;
		}
		td_buf_appendc(b, '"');
		td_base64_encode(b, h[i].value, h[i].value_len);
		td_buf_appends(b, "\"}");
	}
	return td_buf_appendc(b, ']');
}

/* The value of the last "content-type" header that is a usable media type, or NULL. */
static char *content_type_header(const struct td_kafka_record *r)
{
	for (size_t i = r->nheaders; i-- > 0;) {
		const struct td_kafka_header *h = &r->headers[i];
		if (!h->value || h->name_len != 12 || strncasecmp(h->name, "content-type", 12) != 0)
			continue;
		if (h->value_len == 0 || h->value_len > 256 || memchr(h->value, '\0', h->value_len))
			return NULL;
		char *ct = strndup(h->value, h->value_len);
		struct td_event *probe = ct ? td_event_create() : NULL;
		bool ok = probe && td_event_set(probe, "datacontenttype", ct) == 0;
		td_event_unref(probe);
		if (!ok) {
			free(ct);
			return NULL;
		}
		return ct;
	}
	return NULL;
}

struct td_event *td_kafka_record_event(const char *source_attr, const struct td_kafka_record *r,
				       char *err, size_t errlen)
{
	struct td_event *ev = td_event_create();
	struct td_buf b = {0};
	char *ct = NULL;
	char id[320];
	const char *what = "memory";
	int rc;

	if (!ev)
		goto fail;
	snprintf(id, sizeof id, "%s-%d-%lld", r->topic, r->partition, r->offset);
	what = "id";
	if ((rc = td_event_set(ev, "id", id)) < 0)
		goto fail;
	what = "source";
	if ((rc = td_event_set(ev, "source", source_attr)) < 0)
		goto fail;
	what = "type";
	if ((rc = td_event_set(ev, "type", TD_KAFKA_RECORD_TYPE)) < 0)
		goto fail;
	what = "kafkatopic";
	if ((rc = td_event_set(ev, "kafkatopic", r->topic)) < 0)
		goto fail;
	what = "kafkapartition";
	if ((rc = td_event_set_int(ev, "kafkapartition", r->partition)) < 0)
		goto fail;
	what = "kafkaoffset";
	if ((rc = set_offset(ev, "kafkaoffset", r->offset)) < 0)
		goto fail;
	if (r->timestamp_ms >= 0 && r->timestamp_type != TD_KAFKA_TS_NONE) {
		td_event_set_time_ms(ev, r->timestamp_ms); /* out of range: no time */
		if (r->timestamp_type == TD_KAFKA_TS_LOG_APPEND &&
		    (rc = td_event_set(ev, "kafkatimestamptype", "LOG_APPEND_TIME")) < 0)
			goto fail;
	}
	if (r->key) {
		what = "kafkakey";
		if (r->key_len == 0 || td_event_setn(ev, "subject", r->key, r->key_len) < 0) {
			if (td_base64_encode(&b, r->key, r->key_len) < 0 ||
			    (rc = td_event_set(ev, "kafkakey", b.data ? b.data : "")) < 0)
				goto fail;
			td_buf_reset(&b);
		}
	}
	if (r->nheaders > 0) {
		what = "kafkaheaders";
		append_headers_json(&b, r->headers, r->nheaders);
		if (td_buf_failed(&b) || (rc = td_event_set(ev, "kafkaheaders", b.data)) < 0)
			goto fail;
		for (size_t i = 0; i < r->nheaders; i++) {
			const struct td_kafka_header *h = &r->headers[i];
			char name[21];
			if (h->value && h->name && header_ext_name(h->name, h->name_len, name))
				td_event_setn(ev, name, h->value, h->value_len); /* else left out */
		}
		ct = content_type_header(r);
	}
	if (r->value) {
		what = "data";
		if ((rc = td_event_set_data(ev, r->value, r->value_len, ct)) < 0)
			goto fail;
	}
	free(ct);
	td_buf_free(&b);
	return ev;
fail:
	if (err && errlen)
		snprintf(err, errlen, "record %.200s-%d-%lld: cannot set %s", r->topic,
			 r->partition, r->offset, what);
	free(ct);
	td_buf_free(&b);
	td_event_unref(ev);
	return NULL;
}

/* ---- the JSON of a record event, made directly ---- */

/* A CloudEvents String as event.h checks it: UTF-8 without C0 or C1 controls and without
 * noncharacters. */
static bool ce_string(const void *v, size_t n)
{
	const unsigned char *s = v;
	size_t i = 0;
	while (i < n) {
		if (s[i] >= 0x20 && s[i] < 0x7f) {
			i++;
			continue;
		}
		unsigned cp;
		size_t k = td_utf8_decode(s + i, n - i, &cp);
		if (k == 0 || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) ||
		    (cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) == 0xfffe)
			return false;
		i += k;
	}
	return true;
}

/* The decimal text of v (no printf on the hot path); returns its length. */
static size_t fmt_ll(char out[24], long long v)
{
	char tmp[24];
	size_t n = 0, k = 0;
	unsigned long long u = v < 0 ? 0 - (unsigned long long)v : (unsigned long long)v;
	do
		tmp[n++] = (char)('0' + u % 10);
	while ((u /= 10) > 0);
	if (v < 0)
		out[k++] = '-';
	while (n > 0)
		out[k++] = tmp[--n];
	out[k] = '\0';
	return k;
}

static void put2(char *p, int v)
{
	p[0] = (char)('0' + v / 10);
	p[1] = (char)('0' + v % 10);
}

/* event.h's text of a time in ms ("2026-11-27T08:00:00.123Z"); false out of range.
 * Civil date from days since the epoch (proleptic Gregorian), without gmtime. */
static bool format_time_ms(long long unix_ms, char out[40])
{
	long long secs = unix_ms / 1000, ms = unix_ms % 1000;
	if (ms < 0) {
		ms += 1000;
		secs--;
	}
	long long days = secs / 86400, rem = secs % 86400;
	if (rem < 0) {
		rem += 86400;
		days--;
	}
	long long z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
	long long doe = z - era * 146097;
	long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	long long mp = (5 * doy + 2) / 153;
	int d = (int)(doy - (153 * mp + 2) / 5 + 1), m = (int)(mp < 10 ? mp + 3 : mp - 9);
	long long y = yoe + era * 400 + (m <= 2);
	if (y < 0 || y > 9999)
		return false;
	put2(out, (int)(y / 100));
	put2(out + 2, (int)(y % 100));
	out[4] = '-';
	put2(out + 5, m);
	out[7] = '-';
	put2(out + 8, d);
	out[10] = 'T';
	put2(out + 11, (int)(rem / 3600));
	out[13] = ':';
	put2(out + 14, (int)(rem / 60 % 60));
	out[16] = ':';
	put2(out + 17, (int)(rem % 60));
	out[19] = '.';
	out[20] = (char)('0' + ms / 100);
	put2(out + 21, (int)(ms % 100));
	out[23] = 'Z';
	out[24] = '\0';
	return true;
}

/* Appends a string literal (its length known at compile time: no strlen). */
#define LIT(b, s) td_buf_append((b), (s), sizeof(s) - 1)

static void member(struct td_buf *b, const char *name)
{
	td_buf_appends(b, ",\"");
	td_buf_appends(b, name);
	td_buf_appends(b, "\":");
}

static bool json_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The header extensions of r as td_kafka_record_event sets them: names in the order of
 * their first carried value, each with its last carried value. */
struct header_ext {
	char name[21];
	const struct td_kafka_header *h;
};

static size_t header_exts(const struct td_kafka_record *r, struct header_ext *out, size_t cap)
{
	size_t n = 0;
	for (size_t i = 0; i < r->nheaders; i++) {
		const struct td_kafka_header *h = &r->headers[i];
		char name[21];
		if (!h->value || !h->name || !header_ext_name(h->name, h->name_len, name) ||
		    memchr(h->value, '\0', h->value_len) || !ce_string(h->value, h->value_len))
			continue;
		size_t k = 0;
		while (k < n && strcmp(out[k].name, name) != 0)
			k++;
		if (k == n) {
			if (n == cap)
				continue;
			memcpy(out[n].name, name, sizeof name);
			n++;
		}
		out[k].h = h;
	}
	return n;
}

int td_kafka_json_prefix_init(struct td_kafka_json_prefix *p, const char *source_attr,
			      const char *topic, int partition)
{
	struct td_buf b = {0};
	char part[24];
	size_t part_len = fmt_ll(part, partition), topic_len = strlen(topic);

	memset(p, 0, sizeof *p);
	LIT(&b, "{\"specversion\":\"1.0\",\"id\":\"");
	td_buf_append(&b, topic, topic_len);
	td_buf_appendc(&b, '-');
	td_buf_append(&b, part, part_len);
	td_buf_appendc(&b, '-');
	p->head_len = b.len;
	LIT(&b, "\",\"source\":");
	td_json_append_cstr(&b, source_attr);
	LIT(&b, ",\"type\":\"" TD_KAFKA_RECORD_TYPE "\"");
	p->mid_len = b.len - p->head_len;
	LIT(&b, ",\"kafkatopic\":");
	td_json_append_string(&b, topic, topic_len);
	LIT(&b, ",\"kafkapartition\":");
	td_buf_append(&b, part, part_len);
	LIT(&b, ",\"kafkaoffset\":");
	p->ext_len = b.len - p->head_len - p->mid_len;
	p->text = td_buf_steal(&b, NULL);
	if (!p->text) {
		memset(p, 0, sizeof *p);
		return -TD_ENOMEM;
	}
	return 0;
}

void td_kafka_json_prefix_free(struct td_kafka_json_prefix *p)
{
	free(p->text);
	memset(p, 0, sizeof *p);
}

/* The time text of ms (>= 0) into p's cache: formatted whole once a second, else only
 * the milliseconds change. false out of range. */
static bool prefix_time(struct td_kafka_json_prefix *p, long long ms)
{
	long long sec = ms / 1000;
	int frac = (int)(ms % 1000);
	if (!p->time_ok || sec != p->time_sec) {
		p->time_ok = format_time_ms(ms, p->time_text);
		p->time_sec = sec;
		return p->time_ok;
	}
	p->time_text[20] = (char)('0' + frac / 100);
	put2(p->time_text + 21, frac % 100);
	return true;
}

int td_kafka_record_json(const char *source_attr, const struct td_kafka_record *r, struct td_buf *b,
			 bool *has_subject)
{
	struct td_kafka_json_prefix p;
	*has_subject = false;
	if (td_kafka_json_prefix_init(&p, source_attr, r->topic, r->partition) < 0) {
		b->oom = true;
		return -TD_ENOMEM;
	}
	int rc = td_kafka_record_json_with(&p, r, b, has_subject);
	td_kafka_json_prefix_free(&p);
	return rc;
}

int td_kafka_record_json_with(struct td_kafka_json_prefix *pre, const struct td_kafka_record *r,
			      struct td_buf *b, bool *has_subject)
{
	char *ct = r->nheaders ? content_type_header(r) : NULL;
	bool subject = r->key && r->key_len > 0 && !memchr(r->key, '\0', r->key_len) &&
		       ce_string(r->key, r->key_len);
	bool has_time = r->timestamp_ms >= 0 && r->timestamp_type != TD_KAFKA_TS_NONE &&
			prefix_time(pre, r->timestamp_ms);
	int exts = 3;

	*has_subject = subject;
	char off[24];
	size_t off_len = fmt_ll(off, r->offset);
	/* One reservation for the usual parts (appends still grow the buffer as needed). */
	td_buf_reserve(b, 160 + pre->head_len + pre->mid_len + pre->ext_len + 2 * r->key_len +
			      r->value_len + r->value_len / 8);
	td_buf_append(b, pre->text, pre->head_len);
	td_buf_append(b, off, off_len);
	td_buf_append(b, pre->text + pre->head_len, pre->mid_len);
	if (subject) {
		LIT(b, ",\"subject\":");
		td_json_append_string(b, r->key, r->key_len);
	}
	if (has_time) {
		LIT(b, ",\"time\":\"");
		td_buf_append(b, pre->time_text, 24);
		td_buf_appendc(b, '"');
	}
	if (ct) {
		LIT(b, ",\"datacontenttype\":");
		td_json_append_cstr(b, ct);
	}
	td_buf_append(b, pre->text + pre->head_len + pre->mid_len, pre->ext_len);
	if (r->offset >= 0 && r->offset <= INT32_MAX) {
		td_buf_append(b, off, off_len);
	} else {
		td_buf_appendc(b, '"');
		td_buf_append(b, off, off_len);
		td_buf_appendc(b, '"');
	}
	if (r->timestamp_ms >= 0 && r->timestamp_type == TD_KAFKA_TS_LOG_APPEND) {
		LIT(b, ",\"kafkatimestamptype\":\"LOG_APPEND_TIME\"");
		exts++;
	}
	if (r->key && !subject) {
		LIT(b, ",\"kafkakey\":\"");
		td_base64_encode(b, r->key, r->key_len);
		td_buf_appendc(b, '"');
		exts++;
	}
	if (r->nheaders > 0) {
		struct td_buf h = {0};
		append_headers_json(&h, r->headers, r->nheaders);
		LIT(b, ",\"kafkaheaders\":");
		td_json_append_string(b, h.data ? h.data : "", h.len);
		td_buf_free(&h);
		exts++;
		struct header_ext *he = malloc(r->nheaders * sizeof *he);
		size_t n = he ? header_exts(r, he, (size_t)(TD_EVENT_MAX_EXTENSIONS - exts)) : 0;
		if (!he)
			b->oom = true;
		for (size_t i = 0; i < n; i++) {
			member(b, he[i].name);
			td_json_append_string(b, he[i].h->value, he[i].h->value_len);
		}
		free(he);
	}
	if (r->value) {
		const unsigned char *p = r->value;
		size_t n = r->value_len;
		bool ct_json = td_event_content_type_is_json(ct);
		if (ct_json && td_json_valid((const char *)p, n, TD_EVENT_DATA_MAX_DEPTH)) {
			while (n && json_ws(p[0])) {
				p++;
				n--;
			}
			while (n && json_ws(p[n - 1]))
				n--;
			LIT(b, ",\"data\":");
			td_buf_append(b, p, n);
		} else if (!ct_json && td_utf8_valid(p, n, NULL)) {
			LIT(b, ",\"data\":");
			td_json_append_string(b, (const char *)p, n);
		} else {
			LIT(b, ",\"data_base64\":");
			td_buf_appendc(b, '"');
			td_base64_encode(b, p, n);
			td_buf_appendc(b, '"');
		}
	}
	td_buf_appendc(b, '}');
	free(ct);
	return td_buf_failed(b) ? -TD_ENOMEM : 0;
}

/* ---- batch events ---- */

/* td_json_array_join's view of a batch's items. */
static const char *item_json(const void *arg, size_t i, size_t *len)
{
	const struct td_kafka_batch_item *items = arg;
	*len = items[i].json_len;
	return items[i].json;
}

struct td_event *td_kafka_batch_event(const char *source_attr, const char *topic, int partition,
				      const struct td_kafka_batch_item *items, size_t n, char *err,
				      size_t errlen)
{
	struct td_event *ev = NULL;
	const char *subject;
	char *data = NULL;
	char id[640];
	int rc;

	if (n == 0) {
		fail(err, errlen, "an empty batch");
		return NULL;
	}
	/* The array is handed to the event as it is: the items are JSON that
	 * td_kafka_record_json wrote. */
	size_t total;
	data = td_json_array_join(n, item_json, items, &total);
	if (!data)
		goto nomem;
	subject = items[0].subject;
	for (size_t i = 1; i < n && subject; i++)
		if (!items[i].subject || strcmp(items[i].subject, subject) != 0)
			subject = NULL;
	snprintf(id, sizeof id, "%s-%d-%lld..%lld", topic, partition, items[0].offset,
		 items[n - 1].offset);
	ev = td_event_create();
	if (!ev || td_event_set(ev, "id", id) < 0 || td_event_set(ev, "source", source_attr) < 0 ||
	    td_event_set(ev, "type", TD_KAFKA_BATCH_TYPE) < 0 ||
	    (subject && td_event_set(ev, "subject", subject) < 0) ||
	    td_event_set(ev, "kafkatopic", topic) < 0 ||
	    td_event_set_int(ev, "kafkapartition", partition) < 0 ||
	    set_offset(ev, "kafkaoffset", items[0].offset) < 0 ||
	    set_offset(ev, "kafkalastoffset", items[n - 1].offset) < 0 ||
	    td_event_set_int(ev, "kafkacount", (long long)n) < 0)
		goto nomem;
	rc = td_event_take_data_json(ev, data, total, "application/json");
	data = NULL; /* the event's now, or freed */
	if (rc < 0)
		goto nomem;
	if (items[0].timestamp_ms >= 0 && items[0].timestamp_type != TD_KAFKA_TS_NONE)
		td_event_set_time_ms(ev, items[0].timestamp_ms); /* out of range: no time */
	return ev;
nomem:
	fail(err, errlen, "cannot build the batch event (out of memory or malformed records)");
	free(data);
	td_event_unref(ev);
	return NULL;
}

/* ---- small parsers ---- */

static size_t skip_ws(const char *s, size_t len, size_t pos)
{
	while (pos < len && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\n' || s[pos] == '\r'))
		pos++;
	return pos;
}

/* Walks the elements of a JSON array (validated text): 1 with an element, 0 at the
 * end, -TD_EINVAL on broken structure. */
struct array_iter {
	const char *s;
	size_t len, pos;
	bool first, done;
};

static int array_begin(struct array_iter *it, const char *s, size_t len)
{
	*it = (struct array_iter){s, len, skip_ws(s, len, 0), true, false};
	if (it->pos >= len || s[it->pos] != '[')
		return -TD_EINVAL;
	it->pos++;
	return 0;
}

static int array_next(struct array_iter *it, const char **v, size_t *vlen)
{
	if (it->done)
		return 0;
	it->pos = skip_ws(it->s, it->len, it->pos);
	if (it->pos >= it->len)
		return -TD_EINVAL;
	if (it->s[it->pos] == ']') {
		it->done = true;
		return 0;
	}
	if (!it->first) {
		if (it->s[it->pos] != ',')
			return -TD_EINVAL;
		it->pos = skip_ws(it->s, it->len, it->pos + 1);
	}
	it->first = false;
	size_t start = it->pos;
	if (td_json_skip(it->s, it->len, &it->pos) < 0)
		return -TD_EINVAL;
	*v = it->s + start;
	*vlen = it->pos - start;
	return 1;
}

/* Decimal digits only (no sign), at most max of them. */
static bool digits(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static int num(const char *s, size_t n, int *out)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static long long days_from_civil(long long y, int m, int d)
{
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	long long yoe = y - era * 400;
	long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* RFC 3339 date-time to milliseconds since the epoch. */
static int parse_time_ms(const char *s, long long *ms)
{
	size_t n = strlen(s), i = 19;
	int y, mo, d, h, mi, sec, frac = 0, off = 0;
	if (n < 20 || s[4] != '-' || s[7] != '-' ||
	    (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' || s[16] != ':' ||
	    num(s, 4, &y) < 0 || num(s + 5, 2, &mo) < 0 || num(s + 8, 2, &d) < 0 ||
	    num(s + 11, 2, &h) < 0 || num(s + 14, 2, &mi) < 0 || num(s + 17, 2, &sec) < 0)
		return -TD_EINVAL;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -TD_EINVAL;
	if (s[i] == '.') {
		int k = 0;
		for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, k++)
			if (k < 3)
				frac = frac * 10 + (s[i] - '0');
		if (k == 0)
			return -TD_EINVAL;
		for (; k < 3; k++)
			frac *= 10;
	}
	if (i < n && (s[i] == 'Z' || s[i] == 'z') && i + 1 == n) {
		off = 0;
	} else if (i + 6 == n && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
		int oh, om;
		if (num(s + i + 1, 2, &oh) < 0 || num(s + i + 4, 2, &om) < 0 || oh > 23 || om > 59)
			return -TD_EINVAL;
		off = (oh * 60 + om) * (s[i] == '-' ? -1 : 1);
	} else {
		return -TD_EINVAL;
	}
	long long secs =
	    days_from_civil(y, mo, d) * 86400LL + h * 3600LL + mi * 60LL + sec - off * 60LL;
	*ms = secs * 1000 + frac;
	return 0;
}

/* ---- kafkaheaders ---- */

int td_kafka_headers_parse(const char *json, size_t len,
			   void (*fn)(void *arg, const char *name, size_t name_len,
				      const void *value, size_t value_len),
			   void *arg, char *err, size_t errlen)
{
	char msg[200];
	struct array_iter it;
	struct td_buf name = {0}, raw = {0}, value = {0};
	const char *v;
	size_t vlen;
	int count = 0, rc;

	if (td_json_validate(json, len, 2, msg, sizeof msg) < 0)
		return fail(err, errlen, "kafkaheaders is not JSON text: %s", msg);
	if (array_begin(&it, json, len) < 0)
		return fail(err, errlen,
			    "kafkaheaders: expected a JSON array of {\"name\": value}");
	while ((rc = array_next(&it, &v, &vlen)) > 0) {
		struct td_json_iter oi;
		struct td_json_member m, extra;
		count++;
		if (td_json_iter_object(&oi, v, vlen) < 0 || td_json_iter_next(&oi, &m) != 1 ||
		    td_json_iter_next(&oi, &extra) != 0) {
			rc = fail(err, errlen,
				  "kafkaheaders: element %d: expected an object with one member",
				  count);
			goto out;
		}
		td_buf_reset(&name);
		td_buf_reset(&raw);
		td_buf_reset(&value);
		if (td_json_string_decode(m.key, m.key_len, &name) < 0) {
			rc = fail(err, errlen, "kafkaheaders: element %d: bad header name", count);
			goto out;
		}
		if (m.value[0] == 'n') {
			fn(arg, name.data ? name.data : "", name.len, NULL, 0);
			continue;
		}
		if (m.value[0] != '"' ||
		    td_json_string_decode(m.value + 1, m.value_len - 2, &raw) < 0 ||
		    td_base64_decode(raw.data ? raw.data : "", raw.len, &value, msg, sizeof msg) <
			0) {
			rc =
			    fail(err, errlen,
				 "kafkaheaders: element %d (\"%.64s\"): the value must be a base64 "
				 "string or null",
				 count, name.data ? name.data : "");
			goto out;
		}
		if (td_buf_failed(&name) || td_buf_failed(&value)) {
			rc = -TD_ENOMEM;
			goto out;
		}
		fn(arg, name.data ? name.data : "", name.len, value.data ? value.data : "",
		   value.len);
	}
	if (rc < 0) {
		rc = fail(err, errlen, "kafkaheaders: broken array");
		goto out;
	}
	rc = count;
out:
	td_buf_free(&name);
	td_buf_free(&raw);
	td_buf_free(&value);
	return rc;
}

/* ---- the AWS shape ---- */

struct aws_headers {
	struct td_buf *out;
	int n;
};

static void aws_header(void *arg, const char *name, size_t name_len, const void *value,
		       size_t value_len)
{
	struct aws_headers *h = arg;
	const unsigned char *p = value;
	td_buf_appends(h->out, h->n++ ? ",{" : "{");
	td_json_append_string(h->out, name, name_len);
	if (!value) {
		td_buf_appends(h->out, ":null}");
		return;
	}
	td_buf_appends(h->out, ":[");
	for (size_t i = 0; i < value_len; i++)
		td_buf_printf(h->out, i ? ",%u" : "%u", p[i]);
	td_buf_appends(h->out, "]}");
}

/* Appends the AWS record of one record event to out; *group receives "TOPIC-PARTITION"
 * (malloc'ed). */
static int aws_record(const struct td_event *ev, struct td_buf *out, char **group, char *err,
		      size_t errlen)
{
	const char *type = td_event_get(ev, "type");
	const char *topic = td_event_get(ev, "kafkatopic");
	const char *part = td_event_get(ev, "kafkapartition");
	const char *off = td_event_get(ev, "kafkaoffset");
	const char *time = td_event_get(ev, "time");
	const char *tstype = td_event_get(ev, "kafkatimestamptype");
	const char *key = td_event_get(ev, "kafkakey");
	const char *subject = td_event_get(ev, "subject");
	const char *headers = td_event_get(ev, "kafkaheaders");
	long long ts = -1;
	size_t len;
	const void *data;

	*group = NULL;
	if (!type || strcmp(type, TD_KAFKA_RECORD_TYPE) != 0)
		return fail(err, errlen, "event \"%.100s\" is not a Kafka record (type %.100s)",
			    td_event_get(ev, "id") ? td_event_get(ev, "id") : "", type ? type : "");
	if (!topic || !*topic || !digits(part, 10) || !digits(off, 19))
		return fail(
		    err, errlen,
		    "event \"%.100s\": kafkatopic, kafkapartition or kafkaoffset is missing "
		    "or malformed",
		    td_event_get(ev, "id"));
	if (time && parse_time_ms(time, &ts) < 0)
		return fail(err, errlen, "event \"%.100s\": time \"%.40s\" is not RFC 3339",
			    td_event_get(ev, "id"), time);
	if (tstype && strcmp(tstype, "LOG_APPEND_TIME") != 0 && strcmp(tstype, "CREATE_TIME") != 0)
		return fail(err, errlen,
			    "event \"%.100s\": kafkatimestamptype \"%.40s\" is unknown",
			    td_event_get(ev, "id"), tstype);
	if (key) {
		struct td_buf probe = {0};
		int rc = td_base64_decode(key, strlen(key), &probe, NULL, 0);
		td_buf_free(&probe);
		if (rc < 0)
			return fail(err, errlen, "event \"%.100s\": kafkakey is not base64",
				    td_event_get(ev, "id"));
	}
	td_buf_appends(out, "{\"topic\":");
	td_json_append_cstr(out, topic);
	td_buf_printf(out,
		      ",\"partition\":%s,\"offset\":%s,\"timestamp\":%lld,\"timestampType\":", part,
		      off, ts);
	td_buf_appends(out, !time ? "\"NO_TIMESTAMP_TYPE\""
			    : tstype
				? (strcmp(tstype, "LOG_APPEND_TIME") == 0 ? "\"LOG_APPEND_TIME\""
									  : "\"CREATE_TIME\"")
				: "\"CREATE_TIME\"");
	if (key || subject) {
		td_buf_appends(out, ",\"key\":\"");
		if (key)
			td_buf_appends(out, key);
		else
			td_base64_encode(out, subject, strlen(subject));
		td_buf_appendc(out, '"');
	}
	data = td_event_data(ev, &len);
	if (data) {
		td_buf_appends(out, ",\"value\":\"");
		td_base64_encode(out, data, len);
		td_buf_appendc(out, '"');
	} else {
		td_buf_appends(out, ",\"value\":null");
	}
	td_buf_appends(out, ",\"headers\":[");
	if (headers) {
		struct aws_headers h = {out, 0};
		int rc =
		    td_kafka_headers_parse(headers, strlen(headers), aws_header, &h, err, errlen);
		if (rc < 0)
			return rc;
	}
	td_buf_appends(out, "]}");
	if (asprintf(group, "%s-%s", topic, part) < 0) {
		*group = NULL;
		return -TD_ENOMEM;
	}
	return td_buf_failed(out) ? -TD_ENOMEM : 0;
}

struct aws_group {
	char *name;
	struct td_buf recs;
};

char *td_kafka_aws_json(const struct td_event *ev, const char *bootstrap, size_t *len, char *err,
			size_t errlen)
{
	const char *type = td_event_get(ev, "type");
	struct aws_group *groups = NULL;
	size_t ngroups = 0;
	struct td_buf out = {0};
	struct td_event **parts = NULL;
	size_t nparts = 0, cap = 0;
	char *result = NULL;
	int rc = 0;

	if (type && strcmp(type, TD_KAFKA_BATCH_TYPE) == 0) {
		size_t dlen;
		const char *data = td_event_data(ev, &dlen);
		struct array_iter it;
		const char *v;
		size_t vlen;
		if (!data || td_event_data_kind(ev) != TD_DATA_JSON ||
		    array_begin(&it, data, dlen) < 0) {
			fail(err, errlen,
			     "batch event \"%.100s\": data is not a JSON array of records",
			     td_event_get(ev, "id"));
			return NULL;
		}
		while ((rc = array_next(&it, &v, &vlen)) > 0) {
			char msg[256];
			struct td_event *one = td_event_from_json(v, vlen, msg, sizeof msg);
			if (!one) {
				fail(err, errlen, "batch event \"%.100s\": record %zu: %s",
				     td_event_get(ev, "id"), nparts + 1, msg);
				goto out;
			}
			if (nparts == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				struct td_event **p = realloc(parts, ncap * sizeof *p);
				if (!p) {
					td_event_unref(one);
					fail(err, errlen, "out of memory");
					goto out;
				}
				parts = p;
				cap = ncap;
			}
			parts[nparts++] = one;
		}
		if (rc < 0) {
			fail(err, errlen, "batch event: broken data array");
			goto out;
		}
	} else {
		parts = malloc(sizeof *parts);
		if (!parts) {
			fail(err, errlen, "out of memory");
			return NULL;
		}
		parts[nparts++] = td_event_ref((struct td_event *)ev);
	}
	groups = calloc(nparts ? nparts : 1, sizeof *groups);
	if (!groups) {
		fail(err, errlen, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nparts; i++) {
		struct td_buf rec = {0};
		char *name = NULL;
		rc = aws_record(parts[i], &rec, &name, err, errlen);
		if (rc < 0) {
			td_buf_free(&rec);
			free(name);
			goto out;
		}
		size_t g = 0;
		while (g < ngroups && strcmp(groups[g].name, name) != 0)
			g++;
		if (g == ngroups)
			groups[ngroups++].name = name;
		else
			free(name);
		if (groups[g].recs.len)
			td_buf_appendc(&groups[g].recs, ',');
		td_buf_append(&groups[g].recs, rec.data, rec.len);
		td_buf_free(&rec);
	}
	td_buf_appends(&out, "{\"eventSource\":\"SelfManagedKafka\",\"bootstrapServers\":");
	td_json_append_cstr(&out, bootstrap ? bootstrap : "");
	td_buf_appends(&out, ",\"records\":{");
	for (size_t g = 0; g < ngroups; g++) {
		if (g)
			td_buf_appendc(&out, ',');
		td_json_append_cstr(&out, groups[g].name);
		td_buf_appends(&out, ":[");
		td_buf_append(&out, groups[g].recs.data, groups[g].recs.len);
		td_buf_appendc(&out, ']');
	}
	td_buf_appends(&out, "}}");
	for (size_t g = 0; g < ngroups; g++)
		if (td_buf_failed(&groups[g].recs)) {
			fail(err, errlen, "out of memory");
			goto out;
		}
	result = td_buf_steal(&out, len);
	if (!result)
		fail(err, errlen, "out of memory");
out:
	td_buf_free(&out);
	for (size_t g = 0; g < ngroups; g++) {
		free(groups[g].name);
		td_buf_free(&groups[g].recs);
	}
	free(groups);
	for (size_t i = 0; i < nparts; i++)
		td_event_unref(parts[i]);
	free(parts);
	return result;
}

/* ---- origins (key and headers to produce with) ---- */

void td_kafka_origin_clear(struct td_kafka_origin *o)
{
	free(o->key);
	for (size_t i = 0; i < o->nheaders; i++) {
		free(o->headers[i].name);
		free(o->headers[i].value);
	}
	free(o->headers);
	memset(o, 0, sizeof *o);
}

struct origin_ctx {
	struct td_kafka_origin *o;
	bool oom;
};

static void origin_header(void *arg, const char *name, size_t name_len, const void *value,
			  size_t value_len)
{
	struct origin_ctx *c = arg;
	struct td_kafka_origin *o = c->o;
	if (c->oom)
		return;
	struct td_kafka_out_header *h = realloc(o->headers, (o->nheaders + 1) * sizeof *h);
	if (!h) {
		c->oom = true;
		return;
	}
	o->headers = h;
	h = &o->headers[o->nheaders];
	h->name = strndup(name, name_len);
	h->value = NULL;
	h->value_len = 0;
	if (value) {
		h->value = malloc(value_len ? value_len : 1);
		if (h->value)
			memcpy(h->value, value, value_len);
		h->value_len = value_len;
	}
	if (!h->name || (value && !h->value)) {
		free(h->name);
		free(h->value);
		c->oom = true;
		return;
	}
	o->nheaders++;
}

static int copy_key(struct td_kafka_origin *o, const void *p, size_t n)
{
	o->key = malloc(n ? n : 1);
	if (!o->key)
		return -TD_ENOMEM;
	if (n)
		memcpy(o->key, p, n);
	o->key_len = n;
	return 0;
}

int td_kafka_event_origin(const struct td_event *ev, struct td_kafka_origin *o, char *err,
			  size_t errlen)
{
	const char *type = td_event_get(ev, "type");
	const char *subject = td_event_get(ev, "subject");
	int rc = 0;

	memset(o, 0, sizeof *o);
	if (!type)
		return 0;
	if (strcmp(type, TD_KAFKA_BATCH_TYPE) == 0)
		return subject ? copy_key(o, subject, strlen(subject)) : 0;
	if (strcmp(type, TD_KAFKA_RECORD_TYPE) != 0)
		return 0;
	const char *key = td_event_get(ev, "kafkakey");
	const char *headers = td_event_get(ev, "kafkaheaders");
	if (key) {
		struct td_buf b = {0};
		rc = td_base64_decode(key, strlen(key), &b, NULL, 0);
		if (rc == 0)
			rc = td_buf_failed(&b) ? -TD_ENOMEM
					       : copy_key(o, b.data ? b.data : "", b.len);
		else
			rc = fail(err, errlen, "kafkakey is not base64");
		td_buf_free(&b);
	} else if (subject) {
		rc = copy_key(o, subject, strlen(subject));
	}
	if (rc == 0 && headers) {
		struct origin_ctx c = {o, false};
		rc = td_kafka_headers_parse(headers, strlen(headers), origin_header, &c, err,
					    errlen);
		if (rc >= 0)
			rc = c.oom ? -TD_ENOMEM : 0;
	}
	if (rc < 0)
		td_kafka_origin_clear(o);
	return rc;
}

int td_kafka_destination_origin(const char *record, size_t len, struct td_kafka_origin *o,
				char *err, size_t errlen)
{
	struct td_json_iter it;
	struct td_json_member m;
	int rc;

	memset(o, 0, sizeof *o);
	if (!td_json_valid(record, len, 0))
		return fail(err, errlen, "the record is not JSON");
	if (td_json_iter_object(&it, record, len) < 0)
		return 0;
	while ((rc = td_json_iter_next(&it, &m)) > 0) {
		if (!td_json_key_equals(&m, "requestPayload") || m.value[0] != '{')
			continue;
		char msg[200];
		struct td_event *ev = td_event_from_json(m.value, m.value_len, msg, sizeof msg);
		if (!ev)
			return 0;
		rc = td_kafka_event_origin(ev, o, err, errlen);
		td_event_unref(ev);
		return rc;
	}
	return rc < 0 ? fail(err, errlen, "the record is not a well-formed JSON object") : 0;
}

/* ---- dead letters ---- */

static void append_time(struct td_buf *b, long long wall_ms)
{
	char ts[40];
	time_t secs = (time_t)(wall_ms / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
	td_buf_printf(b, "\"%s.%03lldZ\"", ts, wall_ms % 1000);
}

static void append_number_or_string(struct td_buf *b, const char *v)
{
	if (digits(v, 19))
		td_buf_appends(b, v);
	else
		td_json_append_cstr(b, v ? v : "");
}

char *td_kafka_dead_letter(const struct td_event *ev, const struct td_kafka_failure *f, size_t *len)
{
	struct td_buf b = {0};
	size_t event_len;
	char *event_json = td_event_to_json(ev, &event_len);
	const struct td_result *res = f->result;

	if (!event_json)
		return NULL;
	td_buf_appends(&b, "{\"version\":\"1.0\",\"timestamp\":");
	append_time(&b, f->wall_ms);
	td_buf_appends(&b, ",\"requestContext\":{\"requestId\":");
	td_json_append_cstr(&b, f->request_id ? f->request_id : "");
	td_buf_appends(&b, ",\"source\":");
	td_json_append_cstr(&b, f->source ? f->source : "");
	td_buf_appends(&b, ",\"condition\":");
	td_json_append_cstr(&b, f->condition ? f->condition : "");
	td_buf_printf(&b, ",\"approximateInvokeCount\":%d}", f->attempts);
	if (res) {
		td_buf_printf(&b, ",\"responseContext\":{\"statusCode\":%d", res->http_status);
		if (res->status != TD_RESULT_OK)
			td_buf_appends(&b, ",\"functionError\":\"Unhandled\"");
		td_buf_appends(&b, "},\"responsePayload\":");
		if (res->body && td_json_valid(res->body, res->body_len, 0))
			td_buf_append(&b, res->body, res->body_len);
		else if (res->body)
			td_json_append_string(&b, res->body, res->body_len);
		else
			td_buf_appends(&b, "null");
	}
	if (f->error || (res && res->error)) {
		td_buf_appends(&b, ",\"error\":");
		td_json_append_cstr(&b, f->error ? f->error : res->error);
	}
	td_buf_appends(&b, ",\"KafkaBatchInfo\":{\"topic\":");
	td_json_append_cstr(&b,
			    td_event_get(ev, "kafkatopic") ? td_event_get(ev, "kafkatopic") : "");
	td_buf_appends(&b, ",\"partition\":");
	append_number_or_string(&b, td_event_get(ev, "kafkapartition"));
	td_buf_appends(&b, ",\"offset\":");
	append_number_or_string(&b, td_event_get(ev, "kafkaoffset"));
	td_buf_printf(&b, ",\"batchSize\":%zu,\"firstOffset\":%lld,\"lastOffset\":%lld}",
		      f->batch_size, f->first_offset, f->last_offset);
	td_buf_appends(&b, ",\"requestPayload\":");
	td_buf_append(&b, event_json, event_len);
	td_buf_appendc(&b, '}');
	free(event_json);
	return td_buf_steal(&b, len);
}
