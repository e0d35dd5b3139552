/*
 * Entries of Redis streams: ids, the replies that carry entries (XREADGROUP,
 * XAUTOCLAIM, XPENDING), the event an entry becomes, batch events, and the partial batch
 * response a function may answer with (redis_streams_util.h says what each accepts).
 *
 * A reply is a tree that hiredis built from the server's bytes; its shape is checked
 * node by node before anything is copied out of it, so a server that answers something
 * unexpected (a proxy, a newer or older version, a bug) gets a message naming the place
 * ("entry 3 of stream \"jobs\": field 2 is not a string"), never a crash. Entries are
 * copied into one allocation each, since the reply is freed right after.
 *
 * The payload mapping builds JSON text with td_buf appends, no DOM; only the function's
 * partial batch response, once per batch, is parsed with jansson. For batches an entry
 * is written straight to its event's structured JSON (td_redis_entry_json), without the
 * event, and the batch event takes the joined array over uncopied; the unit tests check
 * that text against td_event_to_json of the entry's event.
 */
#include "redis_streams_util.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <triggerd/errors.h>
#include <triggerd/event.h>

#include "../router/json.h"

#define ENTRY_TYPE "triggerd.redis.entry"
#define BATCH_TYPE "triggerd.redis.batch"
/* 9999-12-31T23:59:59.999Z: the last instant RFC 3339 can write. */
#define MAX_TIME_MS 253402300799999ULL

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || !errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- ids ---- */

static int parse_u64(const char *s, size_t len, unsigned long long *out)
{
	unsigned long long v = 0;
	if (len == 0 || (len > 1 && s[0] == '0'))
		return -TD_EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -TD_EINVAL;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (ULLONG_MAX - d) / 10)
			return -TD_EINVAL;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int td_redis_id_parse(const char *s, size_t len, struct td_redis_id *out)
{
	const char *dash = s ? memchr(s, '-', len) : NULL;
	struct td_redis_id id;
	if (!dash || parse_u64(s, (size_t)(dash - s), &id.ms) < 0 ||
	    parse_u64(dash + 1, len - (size_t)(dash - s) - 1, &id.seq) < 0)
		return -TD_EINVAL;
	*out = id;
	return 0;
}

int td_redis_id_cmp(const struct td_redis_id *a, const struct td_redis_id *b)
{
	if (a->ms != b->ms)
		return a->ms < b->ms ? -1 : 1;
	if (a->seq != b->seq)
		return a->seq < b->seq ? -1 : 1;
	return 0;
}

void td_redis_id_format(const struct td_redis_id *id, char out[TD_REDIS_ID_MAX])
{
	snprintf(out, TD_REDIS_ID_MAX, "%llu-%llu", id->ms, id->seq);
}

/* ---- entries ---- */

/* Field i of either an array of fields or a reply's flat [name, value, ...] list. */
static struct td_redis_field field_at(const struct td_redis_field *fields,
				      const redisReply *const *flat, size_t i)
{
	if (fields)
		return fields[i];
	const redisReply *name = flat[2 * i], *value = flat[2 * i + 1];
	return (struct td_redis_field){name->str ? name->str : "", name->len,
				       value->str ? value->str : "", value->len};
}

static struct td_redis_entry *entry_make(const char *id, size_t id_len,
					 const struct td_redis_field *fields,
					 const redisReply *const *flat, size_t n, char *err,
					 size_t errlen)
{
	struct td_redis_id parsed;
	if (td_redis_id_parse(id, id_len, &parsed) < 0) {
		set_err(err, errlen, "\"%.*s\" is not an entry id (MS-SEQ)",
			(int)(id_len < 60 ? id_len : 60), id ? id : "");
		return NULL;
	}
	size_t bytes = sizeof(struct td_redis_entry);
	if (n > (SIZE_MAX - bytes) / (sizeof(struct td_redis_field) + 2)) {
		set_err(err, errlen, "too many fields");
		return NULL;
	}
	bytes += n * sizeof(struct td_redis_field);
	for (size_t i = 0; i < n; i++) {
		struct td_redis_field f = field_at(fields, flat, i);
		size_t more = f.name_len + f.value_len + 2;
		if (more < f.name_len || bytes > SIZE_MAX - more) {
			set_err(err, errlen, "entry too large");
			return NULL;
		}
		bytes += more;
	}
	struct td_redis_entry *e = malloc(bytes);
	if (!e) {
		set_err(err, errlen, "out of memory");
		return NULL;
	}
	e->id = parsed;
	td_redis_id_format(&parsed, e->id_text);
	e->deleted = false;
	e->nfields = n;
	e->fields = (struct td_redis_field *)(e + 1);
	char *p = (char *)(e->fields + n);
	for (size_t i = 0; i < n; i++) {
		struct td_redis_field src = field_at(fields, flat, i);
		struct td_redis_field *f = &e->fields[i];
		f->name = p;
		f->name_len = src.name_len;
		if (f->name_len)
			memcpy(p, src.name, f->name_len);
		p[f->name_len] = '\0';
		p += f->name_len + 1;
		f->value = p;
		f->value_len = src.value_len;
		if (f->value_len)
			memcpy(p, src.value, f->value_len);
		p[f->value_len] = '\0';
		p += f->value_len + 1;
	}
	return e;
}

struct td_redis_entry *td_redis_entry_new(const char *id, size_t id_len,
					  const struct td_redis_field *fields, size_t n, char *err,
					  size_t errlen)
{
	static const struct td_redis_field none;
	return entry_make(id, id_len, fields ? fields : &none, NULL, fields ? n : 0, err, errlen);
}

static bool is_string(const redisReply *r)
{
	return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) &&
	       (r->str || r->len == 0);
}

static const char *type_name(const redisReply *r)
{
	if (!r)
		return "missing";
	switch (r->type) {
	case REDIS_REPLY_STRING:
		return "a string";
	case REDIS_REPLY_ARRAY:
		return "an array";
	case REDIS_REPLY_INTEGER:
		return "an integer";
	case REDIS_REPLY_NIL:
		return "nil";
	case REDIS_REPLY_STATUS:
		return "a status";
	case REDIS_REPLY_ERROR:
		return "an error";
	default:
		return "of an unknown type";
	}
}

/* Checks one entry node without copying: [id, [name, value, ...] or nil]. */
static int check_entry(const redisReply *r, char *err, size_t errlen)
{
	struct td_redis_id id;
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 || !r->element) {
		set_err(err, errlen, "an entry is %s, not [id, fields]",
			r && r->type == REDIS_REPLY_ARRAY ? "an array of another length"
							  : type_name(r));
		return -TD_EINVAL;
	}
	const redisReply *idr = r->element[0], *fr = r->element[1];
	if (!is_string(idr) || td_redis_id_parse(idr->str, idr->len, &id) < 0) {
		set_err(err, errlen, "an entry id is %s",
			is_string(idr) ? "not of the form MS-SEQ" : type_name(idr));
		return -TD_EINVAL;
	}
	if (fr && fr->type == REDIS_REPLY_NIL)
		return 0;
	if (!fr || fr->type != REDIS_REPLY_ARRAY || (fr->elements && !fr->element)) {
		set_err(err, errlen, "the fields of entry %.*s are %s", (int)idr->len, idr->str,
			type_name(fr));
		return -TD_EINVAL;
	}
	if (fr->elements % 2) {
		set_err(err, errlen, "entry %.*s has an odd number (%zu) of names and values",
			(int)idr->len, idr->str, fr->elements);
		return -TD_EINVAL;
	}
	for (size_t i = 0; i < fr->elements; i++)
		if (!is_string(fr->element[i])) {
			set_err(err, errlen, "entry %.*s: %s %zu is %s", (int)idr->len, idr->str,
				i % 2 ? "the value of field" : "the name of field", i / 2 + 1,
				type_name(fr->element[i]));
			return -TD_EINVAL;
		}
	return 0;
}

struct td_redis_entry *td_redis_entry_from_reply(const redisReply *r, char *err, size_t errlen)
{
	if (check_entry(r, err, errlen) < 0)
		return NULL;
	const redisReply *idr = r->element[0], *fr = r->element[1];
	if (fr->type == REDIS_REPLY_NIL) {
		struct td_redis_entry *e =
		    td_redis_entry_new(idr->str, idr->len, NULL, 0, err, errlen);
		if (e)
			e->deleted = true;
		return e;
	}
	return entry_make(idr->str, idr->len, NULL, (const redisReply *const *)fr->element,
			  fr->elements / 2, err, errlen);
}

/* ---- replies ---- */

/* An error reply: "COMMAND: the server's message" (never an empty reason). */
static int reply_error(const redisReply *r, const char *command, char *err, size_t errlen)
{
	size_t n = r->str ? strnlen(r->str, r->len < 300 ? r->len : 300) : 0;
	if (n)
		set_err(err, errlen, "%s: %.*s", command, (int)n, r->str);
	else
		set_err(err, errlen, "%s: an error without a message", command);
	return -TD_EINVAL;
}

static long find_stream(const redisReply *key, const char *const *streams, size_t nstreams)
{
	for (size_t i = 0; i < nstreams; i++)
		if (strlen(streams[i]) == key->len && memcmp(streams[i], key->str, key->len) == 0)
			return (long)i;
	return -1;
}

int td_redis_parse_xreadgroup(const redisReply *r, const char *const *streams, size_t nstreams,
			      td_redis_entry_fn fn, void *arg, char *err, size_t errlen)
{
	char why[256];
	if (!r) {
		set_err(err, errlen, "no reply");
		return -TD_EINVAL;
	}
	if (r->type == REDIS_REPLY_NIL)
		return 0;
	if (r->type == REDIS_REPLY_ERROR)
		return reply_error(r, "XREADGROUP", err, errlen);
	if (r->type != REDIS_REPLY_ARRAY || (r->elements && !r->element)) {
		set_err(err, errlen, "XREADGROUP answered %s, not an array of streams",
			type_name(r));
		return -TD_EINVAL;
	}
	/* Check everything first. */
	for (size_t s = 0; s < r->elements; s++) {
		const redisReply *sr = r->element[s];
		if (!sr || sr->type != REDIS_REPLY_ARRAY || sr->elements != 2 || !sr->element ||
		    !is_string(sr->element[0])) {
			set_err(err, errlen,
				"XREADGROUP: stream %zu of the reply is not [key, entries]", s + 1);
			return -TD_EINVAL;
		}
		const redisReply *key = sr->element[0], *entries = sr->element[1];
		if (find_stream(key, streams, nstreams) < 0) {
			set_err(err, errlen,
				"XREADGROUP answered for stream \"%.*s\", which was not read",
				(int)(key->len < 200 ? key->len : 200), key->str ? key->str : "");
			return -TD_EINVAL;
		}
		if (!entries || entries->type != REDIS_REPLY_ARRAY ||
		    (entries->elements && !entries->element)) {
			set_err(err, errlen, "XREADGROUP: the entries of stream \"%.*s\" are %s",
				(int)(key->len < 200 ? key->len : 200), key->str ? key->str : "",
				type_name(entries));
			return -TD_EINVAL;
		}
		for (size_t k = 0; k < entries->elements; k++)
			if (check_entry(entries->element[k], why, sizeof why) < 0) {
				set_err(err, errlen, "XREADGROUP: entry %zu of stream \"%.*s\": %s",
					k + 1, (int)(key->len < 200 ? key->len : 200),
					key->str ? key->str : "", why);
				return -TD_EINVAL;
			}
	}
	int count = 0;
	for (size_t s = 0; s < r->elements; s++) {
		const redisReply *sr = r->element[s];
		size_t stream = (size_t)find_stream(sr->element[0], streams, nstreams);
		const redisReply *entries = sr->element[1];
		for (size_t k = 0; k < entries->elements; k++) {
			struct td_redis_entry *e =
			    td_redis_entry_from_reply(entries->element[k], err, errlen);
			if (!e)
				return -TD_ENOMEM;
			fn(arg, stream, e);
			count++;
		}
	}
	return count;
}

int td_redis_parse_xautoclaim(const redisReply *r, size_t stream, char cursor[TD_REDIS_ID_MAX],
			      td_redis_entry_fn fn, void *arg, char *err, size_t errlen)
{
	char why[256];
	struct td_redis_id next;
	if (!r) {
		set_err(err, errlen, "no reply");
		return -TD_EINVAL;
	}
	if (r->type == REDIS_REPLY_ERROR)
		return reply_error(r, "XAUTOCLAIM", err, errlen);
	if (r->type != REDIS_REPLY_ARRAY || (r->elements != 2 && r->elements != 3) || !r->element) {
		set_err(err, errlen, "XAUTOCLAIM answered %s, not [cursor, entries, deleted]",
			type_name(r));
		return -TD_EINVAL;
	}
	const redisReply *cr = r->element[0], *entries = r->element[1];
	if (!is_string(cr) || td_redis_id_parse(cr->str, cr->len, &next) < 0) {
		set_err(err, errlen, "XAUTOCLAIM: the cursor is not an entry id");
		return -TD_EINVAL;
	}
	if (!entries || entries->type != REDIS_REPLY_ARRAY ||
	    (entries->elements && !entries->element)) {
		set_err(err, errlen, "XAUTOCLAIM: the entries are %s", type_name(entries));
		return -TD_EINVAL;
	}
	for (size_t k = 0; k < entries->elements; k++) {
		const redisReply *er = entries->element[k];
		/* Redis 6.2 answers nil for an entry that was deleted. */
		if (er && er->type == REDIS_REPLY_NIL)
			continue;
		if (check_entry(er, why, sizeof why) < 0) {
			set_err(err, errlen, "XAUTOCLAIM: entry %zu: %s", k + 1, why);
			return -TD_EINVAL;
		}
	}
	if (r->elements == 3) {
		const redisReply *deleted = r->element[2];
		if (!deleted || deleted->type != REDIS_REPLY_ARRAY ||
		    (deleted->elements && !deleted->element)) {
			set_err(err, errlen, "XAUTOCLAIM: the deleted ids are %s",
				type_name(deleted));
			return -TD_EINVAL;
		}
	}
	td_redis_id_format(&next, cursor);
	int count = 0;
	for (size_t k = 0; k < entries->elements; k++) {
		if (entries->element[k]->type == REDIS_REPLY_NIL)
			continue;
		struct td_redis_entry *e =
		    td_redis_entry_from_reply(entries->element[k], err, errlen);
		if (!e)
			return -TD_ENOMEM;
		fn(arg, stream, e);
		count++;
	}
	return count;
}

int td_redis_parse_xpending(const redisReply *r,
			    void (*fn)(void *arg, const struct td_redis_id *id,
				       long long deliveries),
			    void *arg, char *err, size_t errlen)
{
	if (!r) {
		set_err(err, errlen, "no reply");
		return -TD_EINVAL;
	}
	if (r->type == REDIS_REPLY_ERROR)
		return reply_error(r, "XPENDING", err, errlen);
	if (r->type != REDIS_REPLY_ARRAY || (r->elements && !r->element)) {
		set_err(err, errlen, "XPENDING answered %s, not an array", type_name(r));
		return -TD_EINVAL;
	}
	for (size_t i = 0; i < r->elements; i++) {
		const redisReply *row = r->element[i];
		struct td_redis_id id;
		if (!row || row->type != REDIS_REPLY_ARRAY || row->elements != 4 || !row->element ||
		    !is_string(row->element[0]) ||
		    td_redis_id_parse(row->element[0]->str, row->element[0]->len, &id) < 0 ||
		    !is_string(row->element[1]) || !row->element[2] ||
		    row->element[2]->type != REDIS_REPLY_INTEGER || !row->element[3] ||
		    row->element[3]->type != REDIS_REPLY_INTEGER || row->element[3]->integer < 0) {
			set_err(err, errlen,
				"XPENDING: row %zu is not [id, consumer, idle, deliveries]", i + 1);
			return -TD_EINVAL;
		}
	}
	for (size_t i = 0; i < r->elements; i++) {
		const redisReply *row = r->element[i];
		struct td_redis_id id;
		td_redis_id_parse(row->element[0]->str, row->element[0]->len, &id);
		fn(arg, &id, row->element[3]->integer);
	}
	return (int)(r->elements > INT_MAX ? INT_MAX : r->elements);
}

/* ---- events ---- */

static bool name_is(const struct td_redis_field *f, const char *name)
{
	return f->name_len == strlen(name) && memcmp(f->name, name, f->name_len) == 0;
}

static int compare_names(const struct td_redis_field *a, const struct td_redis_field *b)
{
	size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
	int c = n ? memcmp(a->name, b->name, n) : 0;
	if (c)
		return c;
	return a->name_len < b->name_len ? -1 : a->name_len > b->name_len;
}

/* qsort context: the entry whose fields an index array points at. */
struct by_name {
	const struct td_redis_field *fields;
	size_t index;
};

static int compare_by_name(const void *x, const void *y)
{
	const struct by_name *a = x, *b = y;
	int c = compare_names(&a->fields[a->index], &b->fields[b->index]);
	if (c)
		return c;
	return a->index < b->index ? -1 : a->index > b->index;
}

static void append_value(struct td_buf *out, const struct td_redis_field *f)
{
	if (td_utf8_valid(f->value, f->value_len, NULL)) {
		td_json_append_string(out, f->value, f->value_len);
		return;
	}
	td_buf_appends(out, "{\"base64\":\"");
	td_base64_encode(out, f->value, f->value_len);
	td_buf_appends(out, "\"}");
}

int td_redis_entry_payload(const struct td_redis_entry *e, struct td_buf *out, const char **raw,
			   size_t *raw_len)
{
	if (e->nfields == 1 &&
	    (name_is(&e->fields[0], "data") || name_is(&e->fields[0], "payload"))) {
		*raw = e->fields[0].value;
		*raw_len = e->fields[0].value_len;
		return 1;
	}
	/* next[i]: the next field with the same name as field i, or n; first[i]: whether
	 * field i is the first of its name. Found by sorting indexes by name. */
	size_t n = e->nfields;
	struct by_name stack_order[16];
	size_t stack_next[16];
	bool stack_first[16];
	struct by_name *order = n <= 16 ? stack_order : malloc(n * sizeof *order);
	size_t *next = n <= 16 ? stack_next : malloc(n * sizeof *next);
	bool *first = n <= 16 ? stack_first : malloc(n * sizeof *first);
	int rc = 0;
	if (!order || !next || !first) {
		rc = -TD_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		order[i] = (struct by_name){e->fields, i};
		next[i] = n;
		first[i] = true;
	}
	if (n > 1)
		qsort(order, n, sizeof *order, compare_by_name);
	for (size_t k = 1; k < n; k++)
		if (compare_names(&e->fields[order[k - 1].index], &e->fields[order[k].index]) ==
		    0) {
			next[order[k - 1].index] = order[k].index;
			first[order[k].index] = false;
		}
	td_buf_appendc(out, '{');
	bool comma = false;
	for (size_t i = 0; i < n; i++) {
		if (!first[i])
			continue;
		const struct td_redis_field *f = &e->fields[i];
		if (comma)
			td_buf_appendc(out, ',');
		comma = true;
		td_json_append_string(out, f->name, f->name_len);
		td_buf_appendc(out, ':');
		if (next[i] == n) {
			append_value(out, f);
			continue;
		}
		td_buf_appendc(out, '[');
		for (size_t k = i; k < n; k = next[k]) {
			if (k != i)
				td_buf_appendc(out, ',');
			append_value(out, &e->fields[k]);
		}
		td_buf_appendc(out, ']');
	}
	td_buf_appendc(out, '}');
	if (td_buf_failed(out))
		rc = -TD_ENOMEM;
out:
	if (order != stack_order)
		free(order);
	if (next != stack_next)
		free(next);
	if (first != stack_first)
		free(first);
	return rc;
}

/* Sets the attributes every event of a stream has; 0 or -TD_E* with err set. */
static int set_common(struct td_event *ev, const char *source_attr, const char *stream,
		      const char *type, const struct td_redis_id *time_id, char *err, size_t errlen)
{
	if (td_event_set(ev, "source", source_attr) < 0 || td_event_set(ev, "type", type) < 0) {
		set_err(err, errlen, "invalid source attribute \"%.100s\"", source_attr);
		return -TD_EINVAL;
	}
	if (td_event_set(ev, "subject", stream) < 0 ||
	    td_event_set(ev, "redisstream", stream) < 0) {
		set_err(err, errlen, "the stream key \"%.100s\" is not a valid CloudEvents string",
			stream);
		return -TD_EINVAL;
	}
	if (time_id->ms <= MAX_TIME_MS && td_event_set_time_ms(ev, (long long)time_id->ms) < 0) {
		set_err(err, errlen, "out of memory");
		return -TD_ENOMEM;
	}
	return 0;
}

static int set_id(struct td_event *ev, const char *stream, const char *first, const char *last,
		  char *err, size_t errlen)
{
	struct td_buf b = {0};
	td_buf_appends(&b, stream);
	td_buf_appendc(&b, '/');
	td_buf_appends(&b, first);
	if (last) {
		td_buf_appends(&b, "..");
		td_buf_appends(&b, last);
	}
	int rc = td_buf_failed(&b) ? -TD_ENOMEM : td_event_set(ev, "id", b.data);
	td_buf_free(&b);
	if (rc < 0)
		set_err(err, errlen, "cannot set the event id of %s in \"%.100s\"", first, stream);
	return rc;
}

struct td_event *td_redis_entry_event(const char *source_attr, const char *stream,
				      const struct td_redis_entry *e, int deliveries, char *err,
				      size_t errlen)
{
	struct td_buf json = {0};
	struct td_event *ev = td_event_create();
	const char *raw = NULL;
	size_t raw_len = 0;
	if (!ev) {
		set_err(err, errlen, "out of memory");
		goto fail;
	}
	if (set_id(ev, stream, e->id_text, NULL, err, errlen) < 0 ||
	    set_common(ev, source_attr, stream, ENTRY_TYPE, &e->id, err, errlen) < 0)
		goto fail;
	if (td_event_set(ev, "redisid", e->id_text) < 0 ||
	    td_event_set_int(ev, "redisdeliveries", deliveries) < 0) {
		set_err(err, errlen, "out of memory");
		goto fail;
	}
	int kind = td_redis_entry_payload(e, &json, &raw, &raw_len);
	if (kind == 0) {
		/* The object written above is valid JSON: handed over without a copy. */
		size_t len;
		char *text = td_buf_steal(&json, &len);
		if (!text || td_event_take_data_json(ev, text, len, NULL) < 0) {
			set_err(err, errlen, "out of memory");
			goto fail;
		}
	} else if (kind < 0 || !raw || td_event_set_data(ev, raw, raw_len, NULL) < 0) {
		set_err(err, errlen, "out of memory");
		goto fail;
	}
	/* A raw payload that is not JSON says what it is, so that its structured form
	 * carries text as a string and a function sees the right Content-Type. */
	enum td_data_kind dk = td_event_data_kind(ev);
	if ((dk == TD_DATA_TEXT &&
	     td_event_set(ev, "datacontenttype", "text/plain; charset=utf-8") < 0) ||
	    (dk == TD_DATA_BINARY &&
	     td_event_set(ev, "datacontenttype", "application/octet-stream") < 0)) {
		set_err(err, errlen, "out of memory");
		goto fail;
	}
	td_buf_free(&json);
	return ev;
fail:
	td_buf_free(&json);
	td_event_unref(ev);
	return NULL;
}

struct td_event *td_redis_batch_event(const char *source_attr, const char *stream,
				      struct td_event *const *events, size_t n, char *err,
				      size_t errlen)
{
	struct td_buf data = {0};
	struct td_redis_id first_id;
	const char *first = n ? td_event_get(events[0], "redisid") : NULL;
	const char *last = n ? td_event_get(events[n - 1], "redisid") : NULL;
	if (!first || !last || td_redis_id_parse(first, strlen(first), &first_id) < 0) {
		set_err(err, errlen, "a batch needs entry events");
		return NULL;
	}
	td_buf_appendc(&data, '[');
	for (size_t i = 0; i < n; i++) {
		size_t len;
		char *json = td_event_to_json(events[i], &len);
		if (!json) {
			td_buf_free(&data);
			set_err(err, errlen, "out of memory");
			return NULL;
		}
		if (i)
			td_buf_appendc(&data, ',');
		td_buf_append(&data, json, len);
		free(json);
	}
	td_buf_appendc(&data, ']');
	/* The array joins the entries' own JSON forms: valid JSON, handed over uncopied. */
	size_t len;
	char *json = td_buf_steal(&data, &len);
	if (!json) {
		set_err(err, errlen, "out of memory");
		return NULL;
	}
	return td_redis_batch_event_json(source_attr, stream, first, last, n, json, len, err,
					 errlen);
}

int td_redis_batch_failures(const char *body, size_t len, const char *stream,
			    const char *const *ids, size_t n, bool *failed, char *err,
			    size_t errlen)
{
	for (size_t i = 0; i < n; i++)
		failed[i] = false;
	if (!body || len == 0)
		return 0;
	json_t *root = json_loadb(body, len, JSON_DECODE_ANY, NULL);
	int rc = 0;
	if (!root || !json_is_object(root))
		goto out; /* not the partial batch response: every entry succeeded */
	json_t *list = json_object_get(root, "batchItemFailures");
	if (!list || json_is_null(list))
		goto out;
	if (!json_is_array(list)) {
		set_err(err, errlen, "batchItemFailures is not a list");
		rc = -TD_EINVAL;
		goto out;
	}
	size_t stream_len = strlen(stream);
	for (size_t k = 0; k < json_array_size(list); k++) {
		json_t *item = json_array_get(list, k);
		json_t *ident =
		    json_is_object(item) ? json_object_get(item, "itemIdentifier") : NULL;
		if (!json_is_string(ident) || json_string_length(ident) == 0) {
			set_err(err, errlen,
				"batchItemFailures[%zu]: itemIdentifier is missing, empty or not a "
				"string",
				k);
			rc = -TD_EINVAL;
			goto out;
		}
		const char *s = json_string_value(ident);
		size_t slen = json_string_length(ident);
		/* "STREAM/ID" names the entry by its event id. */
		if (slen > stream_len + 1 && memcmp(s, stream, stream_len) == 0 &&
		    s[stream_len] == '/') {
			s += stream_len + 1;
			slen -= stream_len + 1;
		}
		bool found = false;
		for (size_t i = 0; i < n; i++)
			if (strlen(ids[i]) == slen && memcmp(ids[i], s, slen) == 0) {
				if (!failed[i])
					rc++;
				failed[i] = true;
				found = true;
			}
		if (!found) {
			set_err(
			    err, errlen,
			    "batchItemFailures[%zu]: itemIdentifier \"%.80s\" is no entry of the "
			    "batch",
			    k, json_string_value(ident));
			rc = -TD_EINVAL;
			goto out;
		}
	}
out:
	json_decref(root);
	return rc;
}

char *td_redis_dead_letter_key(const char *tmpl, const char *stream)
{
	struct td_buf b = {0};
	static const char mark[] = "{stream}";
	const char *p = tmpl;
	for (;;) {
		const char *hit = strstr(p, mark);
		if (!hit) {
			td_buf_appends(&b, p);
			break;
		}
		td_buf_append(&b, p, (size_t)(hit - p));
		td_buf_appends(&b, stream);
		p = hit + sizeof mark - 1;
	}
	return td_buf_steal(&b, NULL);
}

/* ---- the structured JSON of an entry, without its event (the batch path) ---- */

#define LIT(b, s) td_buf_append((b), (s), sizeof(s) - 1)

static void put2(char *p, unsigned v)
{
	p[0] = (char)('0' + v / 10 % 10);
	p[1] = (char)('0' + v % 10);
}

/* td_event_set_time_ms's text ("2026-11-27T08:00:00.123Z", 24 bytes) of ms <=
 * MAX_TIME_MS, without gmtime and printf: the civil date of a day count (days since
 * 1970-01-01, in 400-year eras of 146097 days that start on March 1st). */
static void format_time(unsigned long long ms, char out[24])
{
	unsigned long long secs = ms / 1000, days = secs / 86400;
	unsigned rem = (unsigned)(secs % 86400), milli = (unsigned)(ms % 1000);
	unsigned long long z = days + 719468, era = z / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	unsigned day = doy - (153 * mp + 2) / 5 + 1, month = mp < 10 ? mp + 3 : mp - 9;
	unsigned year = (unsigned)(yoe + era * 400) + (month <= 2);
	put2(out, year / 100);
	put2(out + 2, year % 100);
	out[4] = '-';
	put2(out + 5, month);
	out[7] = '-';
	put2(out + 8, day);
	out[10] = 'T';
	put2(out + 11, rem / 3600);
	out[13] = ':';
	put2(out + 14, rem / 60 % 60);
	out[16] = ':';
	put2(out + 17, rem % 60);
	out[19] = '.';
	out[20] = (char)('0' + milli / 100);
	put2(out + 21, milli % 100);
	out[23] = 'Z';
}

static bool json_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int td_redis_entry_json(const char *source_attr, const char *stream, const struct td_redis_entry *e,
			int deliveries, struct td_buf *out)
{
	size_t stream_len = strlen(stream), id_len = strlen(e->id_text);
	size_t bytes = 0;
	for (size_t i = 0; i < e->nfields; i++)
		bytes += e->fields[i].name_len + e->fields[i].value_len + 8;
	/* One reservation for the usual text (appends still grow the buffer as needed). */
	td_buf_reserve(out,
		       240 + 4 * stream_len + strlen(source_attr) + 2 * id_len + bytes + bytes / 8);
	LIT(out, "{\"specversion\":\"1.0\",\"id\":");
	/* "STREAM/ID" as one string: the escaped key without its closing quote. */
	td_json_append_string(out, stream, stream_len);
	if (td_buf_failed(out))
		return -TD_ENOMEM;
	out->len--;
	td_buf_appendc(out, '/');
	td_buf_append(out, e->id_text, id_len);
	LIT(out, "\",\"source\":");
	td_json_append_cstr(out, source_attr);
	LIT(out, ",\"type\":\"" ENTRY_TYPE "\",\"subject\":");
	td_json_append_string(out, stream, stream_len);
	if (e->id.ms <= MAX_TIME_MS) {
		char t[24];
		format_time(e->id.ms, t);
		LIT(out, ",\"time\":\"");
		td_buf_append(out, t, sizeof t);
		td_buf_appendc(out, '"');
	}
	/* The payload decides datacontenttype, which comes before the extensions. */
	const char *raw = NULL;
	size_t raw_len = 0;
	enum td_data_kind kind = TD_DATA_JSON;
	if (e->nfields == 1 &&
	    (name_is(&e->fields[0], "data") || name_is(&e->fields[0], "payload"))) {
		raw = e->fields[0].value;
		raw_len = e->fields[0].value_len;
		if (td_json_valid(raw, raw_len, TD_EVENT_DATA_MAX_DEPTH)) {
			while (raw_len && json_ws((unsigned char)raw[0])) {
				raw++;
				raw_len--;
			}
			while (raw_len && json_ws((unsigned char)raw[raw_len - 1]))
				raw_len--;
		} else if (td_utf8_valid(raw, raw_len, NULL)) {
			kind = TD_DATA_TEXT;
			LIT(out, ",\"datacontenttype\":\"text/plain; charset=utf-8\"");
		} else {
			kind = TD_DATA_BINARY;
			LIT(out, ",\"datacontenttype\":\"application/octet-stream\"");
		}
	}
	LIT(out, ",\"redisstream\":");
	td_json_append_string(out, stream, stream_len);
	LIT(out, ",\"redisid\":\"");
	td_buf_append(out, e->id_text, id_len);
	LIT(out, "\",\"redisdeliveries\":");
	char num[24], *w = num + sizeof num;
	long long v = deliveries;
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
	do
		*--w = (char)('0' + u % 10);
	while (u /= 10);
	if (v < 0)
		*--w = '-';
	td_buf_append(out, w, (size_t)(num + sizeof num - w));
	if (kind == TD_DATA_BINARY) {
		LIT(out, ",\"data_base64\":\"");
		td_base64_encode(out, raw, raw_len);
		td_buf_appendc(out, '"');
	} else {
		LIT(out, ",\"data\":");
		if (kind == TD_DATA_TEXT)
			td_json_append_string(out, raw, raw_len);
		else if (raw)
			td_buf_append(out, raw, raw_len);
		else if (td_redis_entry_payload(e, out, &raw, &raw_len) < 0)
			return -TD_ENOMEM;
	}
	td_buf_appendc(out, '}');
	return td_buf_failed(out) ? -TD_ENOMEM : 0;
}

struct td_event *td_redis_batch_event_json(const char *source_attr, const char *stream,
					   const char *first, const char *last, size_t n,
					   char *json, size_t len, char *err, size_t errlen)
{
	struct td_event *ev = NULL;
	struct td_redis_id first_id;
	if (!json || len == 0 || n == 0 || !first || !last ||
	    td_redis_id_parse(first, strlen(first), &first_id) < 0) {
		free(json);
		set_err(err, errlen, "a batch needs entries");
		return NULL;
	}
	if (!(ev = td_event_create())) {
		free(json);
		set_err(err, errlen, "out of memory");
		return NULL;
	}
	if (set_id(ev, stream, first, last, err, errlen) < 0 ||
	    set_common(ev, source_attr, stream, BATCH_TYPE, &first_id, err, errlen) < 0) {
		free(json);
		goto fail;
	}
	if (td_event_set(ev, "redisid", first) < 0 || td_event_set(ev, "redislastid", last) < 0 ||
	    td_event_set_int(ev, "rediscount", (long long)(n > INT32_MAX ? INT32_MAX : n)) < 0) {
		free(json);
		set_err(err, errlen, "out of memory");
		goto fail;
	}
	/* The event owns json from here on, also when this fails. */
	if (td_event_take_data_json(ev, json, len, "application/json") < 0) {
		set_err(err, errlen, "out of memory");
		goto fail;
	}
	return ev;
fail:
	td_event_unref(ev);
	return NULL;
}
