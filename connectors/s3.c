/*
 * S3 and MinIO event notifications to CloudEvents (see s3.h for the mapping).
 *
 * The body is checked once with the strict validator of router/json.h; after that it
 * is walked without a DOM (td_json_iter over the members, td_json_skip over array
 * elements), so that each event's data is the exact bytes of its record. Only the few
 * strings the envelope needs are decoded. A member that appears twice where we read it
 * is refused: a function reading the record's JSON might take the other one than the
 * envelope did.
 *
 * Messages name the place in the body as a path ("Records[2].s3.object.key: missing"),
 * and show values only as printable ASCII, cut.
 */
#include "s3.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include <triggerd/errors.h>
#include <triggerd/event.h>

#include "../router/json.h"

#define TYPE_PREFIX  "com.amazonaws.s3."
#define PATH_MAX_LEN 96

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

/* A code point a CloudEvents String cannot hold (as router/event.c checks). */
static bool forbidden(unsigned cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0xfdd0 && cp <= 0xfdef) ||
	       (cp & 0xfffe) == 0xfffe;
}

/* Checks that s[0..n) is a CloudEvents String; the reason in msg. */
static bool string_ok(const char *s, size_t n, char *msg, size_t cap)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k;
	unsigned cp;

	while (i < n) {
		k = td_utf8_decode(p + i, n - i, &cp);
		if (k == 0) {
			snprintf(msg, cap, "invalid UTF-8 at byte %zu", i);
			return false;
		}
		if (forbidden(cp)) {
			snprintf(msg, cap,
				 "character U+%04X at byte %zu is not allowed in an attribute", cp,
				 i);
			return false;
		}
		i += k;
	}
	return true;
}

int td_s3_key_decode(const char *key, size_t len, struct td_buf *out, char *err, size_t errlen)
{
	static const char hex[] = "0123456789ABCDEF";
	struct td_buf raw;
	size_t bad, i = 0, k;
	unsigned cp;
	char sv[64];
	int rc = 0;

	if (len == 0)
		return td_fail(err, errlen, "empty key");
	td_buf_init(&raw);
	td_buf_reserve(&raw, len);
	for (size_t j = 0; j < len; j++) {
		if (key[j] == '+') {
			td_buf_appendc(&raw, ' ');
		} else if (key[j] != '%') {
			td_buf_appendc(&raw, key[j]);
		} else if (j + 2 < len && hexval(key[j + 1]) >= 0 && hexval(key[j + 2]) >= 0) {
			td_buf_appendc(&raw, (char)(hexval(key[j + 1]) << 4 | hexval(key[j + 2])));
			j += 2;
		} else {
			rc = td_fail(err, errlen, "bad percent escape \"%s\" at byte %zu",
				     td_shown(key + j, len - j < 3 ? len - j : 3, sv), j);
			goto out;
		}
	}
	if (td_buf_failed(&raw)) {
		rc = -TD_ENOMEM;
		goto out;
	}
	if (!td_utf8_valid(raw.data, raw.len, &bad)) {
		rc = td_fail(err, errlen, "not UTF-8 once decoded (byte %zu of the decoded key)",
			     bad);
		goto out;
	}
	while (i < raw.len) {
		k = td_utf8_decode((const unsigned char *)raw.data + i, raw.len - i, &cp);
		if (forbidden(cp)) {
			for (size_t b = 0; b < k; b++) {
				unsigned char c = (unsigned char)raw.data[i + b];
				td_buf_appendc(out, '%');
				td_buf_appendc(out, hex[c >> 4]);
				td_buf_appendc(out, hex[c & 15]);
			}
		} else {
			td_buf_append(out, raw.data + i, k);
		}
		i += k;
	}
	if (td_buf_failed(out))
		rc = -TD_ENOMEM;
out:
	td_buf_free(&raw);
	return rc;
}

/* ---- walking the validated body ---- */

struct val {
	const char *p; /* the value's exact text; NULL when absent */
	size_t n;
};

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void where_join(char *out, const char *base, const char *name)
{
	/* Paths are short ("Records[9999].responseElements.x-amz-request-id"); cut if not. */
	if (snprintf(out, PATH_MAX_LEN, "%s%s%s", base, *base ? "." : "", name) >= PATH_MAX_LEN)
		out[PATH_MAX_LEN - 1] = '\0';
}

/*
 * Finds member name of the object at obj (a validated object text; where is its path).
 * 1 with *v, 0 when absent or null, -TD_EINVAL when it appears twice.
 */
static int member(const struct val *obj, const char *where, const char *name, struct val *v,
		  char *err, size_t errlen)
{
	struct td_json_iter it;
	struct td_json_member m;
	char path[PATH_MAX_LEN];
	int rc;

	v->p = NULL;
	v->n = 0;
	where_join(path, where, name);
	if (td_json_iter_object(&it, obj->p, obj->n) < 0)
		return td_fail(err, errlen, "%s: not an object", where);
	while ((rc = td_json_iter_next(&it, &m)) > 0) {
		if (!td_json_key_equals(&m, name))
			continue;
		if (v->p)
			return td_fail(err, errlen, "%s: appears more than once", path);
		v->p = m.value;
		v->n = m.value_len;
	}
	if (rc < 0)
		return td_fail(err, errlen, "%s: malformed object", where);
	if (v->p && v->n == 4 && memcmp(v->p, "null", 4) == 0)
		v->p = NULL;
	return v->p ? 1 : 0;
}

/* An object member: 1 found (an object), 0 absent (error when required). */
static int get_object(const struct val *obj, const char *where, const char *name, bool required,
		      struct val *v, char *path, char *err, size_t errlen)
{
	int rc = member(obj, where, name, v, err, errlen);

	where_join(path, where, name);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return required ? td_fail(err, errlen, "%s: missing", path) : 0;
	if (v->p[0] != '{')
		return td_fail(err, errlen, "%s: not an object", path);
	return 1;
}

/*
 * A string member decoded into out (reset first): 1 found, 0 absent (error when
 * required). A required string must not be empty.
 */
static int get_string(const struct val *obj, const char *where, const char *name, bool required,
		      struct td_buf *out, char *err, size_t errlen)
{
	char path[PATH_MAX_LEN];
	struct val v;
	int rc = member(obj, where, name, &v, err, errlen);

	where_join(path, where, name);
	td_buf_reset(out);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return required ? td_fail(err, errlen, "%s: missing", path) : 0;
	if (v.p[0] != '"' || v.n < 2)
		return td_fail(err, errlen, "%s: not a string", path);
	rc = td_json_string_decode(v.p + 1, v.n - 2, out);
	if (rc == -TD_ENOMEM || td_buf_failed(out))
		return -TD_ENOMEM;
	if (rc < 0)
		return td_fail(err, errlen, "%s: bad escape in the string", path);
	if (!out->data && td_buf_appends(out, "") < 0)
		return -TD_ENOMEM;
	if (required && out->len == 0)
		return td_fail(err, errlen, "%s: empty", path);
	return 1;
}

/* A decoded string that must be a CloudEvents String. */
static int need_text(const struct td_buf *b, const char *where, const char *name, char *err,
		     size_t errlen)
{
	char msg[96], path[PATH_MAX_LEN];

	if (string_ok(b->data, b->len, msg, sizeof msg))
		return 0;
	where_join(path, where, name);
	return td_fail(err, errlen, "%s: %s", path, msg);
}

struct rec_bufs {
	struct td_buf name, source, region, bucket, key, subject, seq, reqid, time, text;
};

static void bufs_free(struct rec_bufs *b)
{
	td_buf_free(&b->name);
	td_buf_free(&b->source);
	td_buf_free(&b->region);
	td_buf_free(&b->bucket);
	td_buf_free(&b->key);
	td_buf_free(&b->subject);
	td_buf_free(&b->seq);
	td_buf_free(&b->reqid);
	td_buf_free(&b->time);
	td_buf_free(&b->text);
}

/* "s3-" and 32 hex digits of the SHA-256 of the record's bytes. */
static void digest_id(const struct val *rec, struct td_buf *out)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256((const unsigned char *)rec->p, rec->n, md);
	td_buf_appends(out, "s3-");
	for (int i = 0; i < 16; i++) {
		td_buf_appendc(out, hex[md[i] >> 4]);
		td_buf_appendc(out, hex[md[i] & 15]);
	}
}

/* One record (its text in rec, its path in where) to one event. */
static int record(const struct val *rec, const char *where, struct rec_bufs *b,
		  struct td_event **out, char *err, size_t errlen)
{
	char p_s3[PATH_MAX_LEN], p_bucket[PATH_MAX_LEN], p_object[PATH_MAX_LEN],
	    p_resp[PATH_MAX_LEN];
	char msg[160], path[PATH_MAX_LEN], sv[64];
	struct val s3, bucket, object, resp;
	struct td_event *ev = NULL;
	const char *name;
	size_t name_len;
	int rc, has_seq, has_reqid, has_time;

	*out = NULL;
	if (rec->p[0] != '{')
		return td_fail(err, errlen, "%s: not an object", where);
	if ((rc = get_string(rec, where, "eventName", true, &b->name, err, errlen)) < 0 ||
	    (rc = need_text(&b->name, where, "eventName", err, errlen)) < 0)
		return rc;
	name = b->name.data;
	name_len = b->name.len;
	if (name_len > 3 && memcmp(name, "s3:", 3) == 0) {
		name += 3;
		name_len -= 3;
	}
	if ((rc = get_string(rec, where, "eventSource", true, &b->source, err, errlen)) < 0 ||
	    (rc = need_text(&b->source, where, "eventSource", err, errlen)) < 0 ||
	    (rc = get_string(rec, where, "awsRegion", false, &b->region, err, errlen)) < 0 ||
	    (rc = need_text(&b->region, where, "awsRegion", err, errlen)) < 0 ||
	    (rc = get_string(rec, where, "eventTime", false, &b->time, err, errlen)) < 0)
		return rc;
	has_time = rc;
	if ((rc = get_object(rec, where, "s3", true, &s3, p_s3, err, errlen)) < 0 ||
	    (rc = get_object(&s3, p_s3, "bucket", true, &bucket, p_bucket, err, errlen)) < 0 ||
	    (rc = get_string(&bucket, p_bucket, "name", true, &b->bucket, err, errlen)) < 0 ||
	    (rc = need_text(&b->bucket, p_bucket, "name", err, errlen)) < 0 ||
	    (rc = get_object(&s3, p_s3, "object", true, &object, p_object, err, errlen)) < 0 ||
	    (rc = get_string(&object, p_object, "key", true, &b->key, err, errlen)) < 0)
		return rc;
	td_buf_reset(&b->subject);
	rc = td_s3_key_decode(b->key.data, b->key.len, &b->subject, msg, sizeof msg);
	if (rc == -TD_ENOMEM)
		return rc;
	if (rc < 0) {
		where_join(path, p_object, "key");
		return td_fail(err, errlen, "%s: %s", path, msg);
	}
	rc = get_string(&object, p_object, "sequencer", false, &b->seq, err, errlen);
	if (rc < 0)
		return rc;
	has_seq = rc;
	if ((rc = need_text(&b->seq, p_object, "sequencer", err, errlen)) < 0)
		return rc;
	rc = get_object(rec, where, "responseElements", false, &resp, p_resp, err, errlen);
	if (rc < 0)
		return rc;
	has_reqid = 0;
	if (rc == 1) {
		rc = get_string(&resp, p_resp, "x-amz-request-id", false, &b->reqid, err, errlen);
		if (rc < 0)
			return rc;
		has_reqid = rc;
		if ((rc = need_text(&b->reqid, p_resp, "x-amz-request-id", err, errlen)) < 0)
			return rc;
	}

	td_buf_reset(&b->text);
	if (has_reqid && has_seq && b->reqid.len && b->seq.len)
		td_buf_printf(&b->text, "%s.%s", b->reqid.data, b->seq.data);
	else
		digest_id(rec, &b->text);
	if (td_buf_failed(&b->text))
		return -TD_ENOMEM;
	ev = td_event_create();
	if (!ev)
		return -TD_ENOMEM;
	if (td_event_set(ev, "id", b->text.data) < 0)
		goto nomem;
	td_buf_reset(&b->text);
	td_buf_printf(&b->text, "%s.%s.%s", b->source.data, b->region.data ? b->region.data : "",
		      b->bucket.data);
	if (td_buf_failed(&b->text) || td_event_set(ev, "source", b->text.data) < 0)
		goto nomem;
	td_buf_reset(&b->text);
	td_buf_appends(&b->text, TYPE_PREFIX);
	td_buf_append(&b->text, name, name_len);
	if (td_buf_failed(&b->text) || td_event_set(ev, "type", b->text.data) < 0)
		goto nomem;
	if (td_event_setn(ev, "subject", b->subject.data, b->subject.len) < 0 ||
	    td_event_setn(ev, "s3bucket", b->bucket.data, b->bucket.len) < 0)
		goto nomem;
	if (has_time && td_event_setn(ev, "time", b->time.data, b->time.len) < 0) {
		where_join(path, where, "eventTime");
		td_event_unref(ev);
		return td_fail(err, errlen, "%s: \"%s\" is not an RFC 3339 time", path,
			       td_shown(b->time.data, b->time.len, sv));
	}
	if (td_event_set_data(ev, rec->p, rec->n, "application/json") < 0)
		goto nomem;
	*out = ev;
	return 0;
nomem:
	/* Every value was checked above: the setters can only be out of memory. */
	td_event_unref(ev);
	return -TD_ENOMEM;
}

void td_s3_events_free(struct td_event **events, int n)
{
	if (!events)
		return;
	for (int i = 0; i < n; i++)
		td_event_unref(events[i]);
	free(events);
}

/* A body without records: AWS's test event ("Event": "s3:TestEvent"), also as MinIO's
 * "EventName". */
static int test_event(const struct val *body, struct td_buf *tmp, char *err, size_t errlen)
{
	static const char *const names[] = {"Event", "EventName"};
	int rc;

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		rc = get_string(body, "", names[i], false, tmp, err, errlen);
		if (rc < 0)
			return rc;
		if (rc == 1 && strcmp(tmp->data, "s3:TestEvent") == 0)
			return 1;
	}
	return 0;
}

int td_s3_parse(const char *body, size_t len, struct td_event ***events, char *err, size_t errlen)
{
	struct td_event **evs = NULL, *ev;
	struct rec_bufs b;
	struct val top = {body, len}, records, rec;
	char msg[160], where[PATH_MAX_LEN];
	size_t pos, start;
	int n = 0, cap = 0, rc;

	*events = NULL;
	memset(&b, 0, sizeof b);
	if (!body) {
		top.p = "";
		top.n = 0;
	}
	if (td_json_validate(top.p, top.n, 0, msg, sizeof msg) < 0) {
		rc = td_fail(err, errlen, "the body is not JSON: %s", msg);
		goto fail;
	}
	pos = 0;
	while (pos < top.n && is_ws(top.p[pos]))
		pos++;
	if (top.p[pos] != '{') {
		rc = td_fail(err, errlen, "the body is not a JSON object");
		goto fail;
	}
	/* MinIO's own members: checked for their type, not used. */
	if ((rc = get_string(&top, "", "EventName", false, &b.text, err, errlen)) < 0 ||
	    (rc = get_string(&top, "", "Key", false, &b.text, err, errlen)) < 0)
		goto fail;
	rc = member(&top, "", "Records", &records, err, errlen);
	if (rc < 0)
		goto fail;
	if (rc == 0) {
		rc = test_event(&top, &b.text, err, errlen);
		if (rc < 0)
			goto fail;
		if (rc == 0) {
			rc = td_fail(err, errlen,
				     "Records: missing (not an S3 event notification: expected "
				     "{\"Records\": [...]})");
			goto fail;
		}
		bufs_free(&b);
		return 0;
	}
	if (records.p[0] != '[') {
		rc = td_fail(err, errlen, "Records: not an array");
		goto fail;
	}
	pos = 1;
	for (;;) {
		while (pos < records.n && is_ws(records.p[pos]))
			pos++;
		if (pos >= records.n || records.p[pos] == ']')
			break;
		if (records.p[pos] == ',') {
			pos++;
			continue; /* validated text: a comma only ever sits between elements */
		}
		start = pos;
		if (td_json_skip(records.p, records.n, &pos) < 0) {
			rc = td_fail(err, errlen, "Records: malformed array");
			goto fail;
		}
		if (n == TD_S3_MAX_RECORDS) {
			rc = td_fail(err, errlen, "Records: more than %d records",
				     TD_S3_MAX_RECORDS);
			goto fail;
		}
		rec.p = records.p + start;
		rec.n = pos - start;
		snprintf(where, sizeof where, "Records[%d]", n);
		rc = record(&rec, where, &b, &ev, err, errlen);
		if (rc < 0)
			goto fail;
		if (n == cap) {
			int ncap = cap ? cap * 2 : 4;
			struct td_event **grown = realloc(evs, (size_t)ncap * sizeof *grown);
			if (!grown) {
				td_event_unref(ev);
				rc = -TD_ENOMEM;
				goto fail;
			}
			evs = grown;
			cap = ncap;
		}
		evs[n++] = ev;
	}
	bufs_free(&b);
	if (n == 0) {
		free(evs);
		evs = NULL;
	}
	*events = evs;
	return n;
fail:
	if (rc == -TD_ENOMEM && err && errlen)
		snprintf(err, errlen, "out of memory");
	bufs_free(&b);
	td_s3_events_free(evs, n);
	return rc;
}
