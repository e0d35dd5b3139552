/*
 * Unit tests for connectors/redis_streams_entry.c. Replies are built the way the
 * source gets them: RESP bytes as Redis 7 sends them, parsed by hiredis's own reader.
 * Covered: entry ids, the three replies (good ones, and malformed ones refused with the
 * place named and nothing handed over), the mapping of fields to data (raw data/payload
 * field, JSON object, repeated names, binary values), the event's attributes, batch
 * events, Lambda's partial batch response, and the dead-letter key template.
 */
#include <criterion/criterion.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include <triggerd/errors.h>
#include <triggerd/event.h>

#include "../../connectors/redis_streams_util.h"
#include "../../router/json.h"

/* ---- helpers ---- */

static redisReply *resp(const char *bytes)
{
	redisReader *r = redisReaderCreate();
	void *reply = NULL;
	cr_assert_not_null(r);
	cr_assert_eq(redisReaderFeed(r, bytes, strlen(bytes)), REDIS_OK);
	cr_assert_eq(redisReaderGetReply(r, &reply), REDIS_OK, "bad RESP in the test");
	cr_assert_not_null(reply, "incomplete RESP in the test");
	redisReaderFree(r);
	return reply;
}

struct got {
	size_t n;
	size_t stream[16];
	struct td_redis_entry *e[16];
};

static void collect(void *arg, size_t stream, struct td_redis_entry *e)
{
	struct got *g = arg;
	cr_assert_lt(g->n, 16);
	g->stream[g->n] = stream;
	g->e[g->n++] = e;
}

static void got_free(struct got *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->e[i]);
	g->n = 0;
}

static struct td_redis_entry *entry(const char *id, const char *const *kv, size_t n)
{
	struct td_redis_field f[16];
	for (size_t i = 0; i < n; i++)
		f[i] = (struct td_redis_field){kv[2 * i], strlen(kv[2 * i]), kv[2 * i + 1],
					       strlen(kv[2 * i + 1])};
	char err[128];
	struct td_redis_entry *e = td_redis_entry_new(id, strlen(id), f, n, err, sizeof err);
	cr_assert_not_null(e, "%s", err);
	return e;
}

/* ---- ids ---- */

struct id_case {
	const char *text;
	bool ok;
	unsigned long long ms, seq;
};

Test(redis_entry, ids_parse_compare_and_format)
{
	static const struct id_case cases[] = {
	    {"1700000000000-0", true, 1700000000000ULL, 0},
	    {"0-0", true, 0, 0},
	    {"0-1", true, 0, 1},
	    {"18446744073709551615-18446744073709551615", true, 18446744073709551615ULL,
	     18446744073709551615ULL},
	    {"18446744073709551616-0", false, 0, 0},
	    {"01-0", false, 0, 0},
	    {"1-00", false, 0, 0},
	    {"1", false, 0, 0},
	    {"-1", false, 0, 0},
	    {"1-", false, 0, 0},
	    {"1-2-3", false, 0, 0},
	    {"+1-2", false, 0, 0},
	    {"1 -2", false, 0, 0},
	    {"", false, 0, 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct td_redis_id id = {7, 7};
		int rc = td_redis_id_parse(cases[i].text, strlen(cases[i].text), &id);
		cr_expect_eq(rc == 0, cases[i].ok, "%s", cases[i].text);
		if (!cases[i].ok)
			continue;
		cr_expect_eq(id.ms, cases[i].ms, "%s", cases[i].text);
		cr_expect_eq(id.seq, cases[i].seq, "%s", cases[i].text);
		char out[TD_REDIS_ID_MAX];
		td_redis_id_format(&id, out);
		cr_expect_str_eq(out, cases[i].text);
	}
	struct td_redis_id a = {5, 9}, b = {6, 0}, c = {6, 1};
	cr_expect_lt(td_redis_id_cmp(&a, &b), 0);
	cr_expect_lt(td_redis_id_cmp(&b, &c), 0);
	cr_expect_gt(td_redis_id_cmp(&c, &a), 0);
	cr_expect_eq(td_redis_id_cmp(&c, &c), 0);
}

/* ---- replies ---- */

#define ENTRY_A "*2\r\n$3\r\n1-0\r\n*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$2\r\nxy\r\n"
#define ENTRY_B "*2\r\n$3\r\n2-5\r\n*2\r\n$4\r\ndata\r\n$7\r\n{\"k\":1}\r\n"

Test(redis_entry, xreadgroup_reply_hands_over_every_entry)
{
	const char *streams[] = {"jobs", "other"};
	redisReply *r =
	    resp("*2\r\n"
		 "*2\r\n$5\r\nother\r\n*1\r\n" ENTRY_B "*2\r\n$4\r\njobs\r\n*1\r\n" ENTRY_A);
	struct got g = {0};
	char err[256] = "";
	cr_assert_eq(td_redis_parse_xreadgroup(r, streams, 2, collect, &g, err, sizeof err), 2,
		     "%s", err);
	cr_expect_eq(g.stream[0], 1);
	cr_expect_str_eq(g.e[0]->id_text, "2-5");
	cr_expect_eq(g.e[0]->nfields, 1);
	cr_expect_str_eq(g.e[0]->fields[0].name, "data");
	cr_expect_str_eq(g.e[0]->fields[0].value, "{\"k\":1}");
	cr_expect_eq(g.stream[1], 0);
	cr_expect_str_eq(g.e[1]->id_text, "1-0");
	cr_expect_eq(g.e[1]->nfields, 2);
	cr_expect_eq(g.e[1]->fields[1].value_len, 2);
	cr_expect_str_eq(g.e[1]->fields[1].value, "xy");
	cr_expect_not(g.e[1]->deleted);
	got_free(&g);
	freeReplyObject(r);

	/* A timed-out block answers nil; an own pending entry that was deleted has nil
	 * fields. */
	r = resp("*-1\r\n");
	cr_expect_eq(td_redis_parse_xreadgroup(r, streams, 2, collect, &g, err, sizeof err), 0);
	freeReplyObject(r);
	r = resp("*1\r\n*2\r\n$4\r\njobs\r\n*1\r\n*2\r\n$3\r\n9-9\r\n*-1\r\n");
	cr_assert_eq(td_redis_parse_xreadgroup(r, streams, 2, collect, &g, err, sizeof err), 1);
	cr_expect(g.e[0]->deleted);
	cr_expect_eq(g.e[0]->nfields, 0);
	got_free(&g);
	freeReplyObject(r);
}

struct bad_reply {
	const char *resp;
	const char *words;
};

Test(redis_entry, malformed_xreadgroup_replies_hand_over_nothing)
{
	static const struct bad_reply cases[] = {
	    {"-NOGROUP No such key\r\n", "NOGROUP No such key"},
	    {":1\r\n", "answered an integer, not an array of streams"},
	    {"*1\r\n$4\r\njobs\r\n", "stream 1 of the reply is not [key, entries]"},
	    {"*1\r\n*2\r\n$4\r\nnope\r\n*0\r\n", "stream \"nope\", which was not read"},
	    {"*1\r\n*2\r\n$4\r\njobs\r\n:3\r\n", "the entries of stream \"jobs\" are an integer"},
	    {"*1\r\n*2\r\n$4\r\njobs\r\n*2\r\n" ENTRY_A "*2\r\n$3\r\n1-x\r\n*0\r\n",
	     "entry 2 of stream \"jobs\": an entry id is not of the form MS-SEQ"},
	    {"*1\r\n*2\r\n$4\r\njobs\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*1\r\n$1\r\na\r\n",
	     "entry 1 of stream \"jobs\": entry 1-1 has an odd number (1) of names and values"},
	    {"*1\r\n*2\r\n$4\r\njobs\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\na\r\n:5\r\n",
	     "entry 1-1: the value of field 1 is an integer"},
	    {"*1\r\n*2\r\n$4\r\njobs\r\n*1\r\n*3\r\n$3\r\n1-1\r\n*0\r\n*0\r\n",
	     "an entry is an array of another length"},
	    {"*1\r\n*2\r\n$4\r\njobs\r\n*1\r\n*2\r\n:1\r\n*0\r\n", "an entry id is an integer"},
	    {"*1\r\n*2\r\n$4\r\njobs\r\n*1\r\n*2\r\n$3\r\n1-1\r\n:0\r\n",
	     "the fields of entry 1-1 are an integer"},
	};
	const char *streams[] = {"jobs"};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		redisReply *r = resp(cases[i].resp);
		struct got g = {0};
		char err[256] = "";
		cr_expect_eq(td_redis_parse_xreadgroup(r, streams, 1, collect, &g, err, sizeof err),
			     -TD_EINVAL, "case %zu", i);
		cr_expect_eq(g.n, 0, "case %zu handed over %zu", i, g.n);
		cr_expect(strstr(err, cases[i].words) != NULL, "case %zu: \"%s\" lacks \"%s\"", i,
			  err, cases[i].words);
		got_free(&g);
		freeReplyObject(r);
	}
	struct got g = {0};
	char err[64];
	cr_expect_eq(td_redis_parse_xreadgroup(NULL, streams, 1, collect, &g, err, sizeof err),
		     -TD_EINVAL);
}

Test(redis_entry, xautoclaim_replies_of_redis_6_and_7)
{
	struct got g = {0};
	char err[256] = "", cursor[TD_REDIS_ID_MAX] = "";
	/* 7.0: [cursor, entries, deleted ids] */
	redisReply *r = resp("*3\r\n$4\r\n17-3\r\n*2\r\n" ENTRY_A ENTRY_B "*1\r\n$3\r\n5-5\r\n");
	cr_assert_eq(td_redis_parse_xautoclaim(r, 3, cursor, collect, &g, err, sizeof err), 2, "%s",
		     err);
	cr_expect_str_eq(cursor, "17-3");
	cr_expect_eq(g.stream[0], 3);
	cr_expect_eq(g.stream[1], 3);
	cr_expect_str_eq(g.e[1]->id_text, "2-5");
	got_free(&g);
	freeReplyObject(r);
	/* 6.2: [cursor, entries] with nil for a deleted entry */
	r = resp("*2\r\n$3\r\n0-0\r\n*2\r\n*-1\r\n" ENTRY_A);
	cr_assert_eq(td_redis_parse_xautoclaim(r, 0, cursor, collect, &g, err, sizeof err), 1);
	cr_expect_str_eq(cursor, "0-0");
	got_free(&g);
	freeReplyObject(r);

	static const struct bad_reply bad[] = {
	    {"-ERR unknown command 'XAUTOCLAIM'\r\n", "unknown command"},
	    {"*1\r\n$3\r\n0-0\r\n", "not [cursor, entries, deleted]"},
	    {"*2\r\n$1\r\nx\r\n*0\r\n", "the cursor is not an entry id"},
	    {"*2\r\n$3\r\n0-0\r\n$1\r\nx\r\n", "the entries are a string"},
	    {"*2\r\n$3\r\n0-0\r\n*1\r\n:1\r\n", "entry 1: an entry is an integer"},
	    {"*3\r\n$3\r\n0-0\r\n*0\r\n:1\r\n", "the deleted ids are an integer"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		r = resp(bad[i].resp);
		cr_expect_eq(td_redis_parse_xautoclaim(r, 0, cursor, collect, &g, err, sizeof err),
			     -TD_EINVAL, "case %zu", i);
		cr_expect_eq(g.n, 0);
		cr_expect(strstr(err, bad[i].words) != NULL, "case %zu: \"%s\"", i, err);
		freeReplyObject(r);
	}
}

struct counts {
	size_t n;
	struct td_redis_id id[8];
	long long deliveries[8];
};

static void count_row(void *arg, const struct td_redis_id *id, long long deliveries)
{
	struct counts *c = arg;
	c->id[c->n] = *id;
	c->deliveries[c->n++] = deliveries;
}

Test(redis_entry, xpending_rows)
{
	struct counts c = {0};
	char err[256] = "";
	redisReply *r = resp("*2\r\n*4\r\n$3\r\n1-0\r\n$2\r\nc1\r\n:250\r\n:3\r\n"
			     "*4\r\n$3\r\n4-2\r\n$2\r\nc1\r\n:9\r\n:1\r\n");
	cr_assert_eq(td_redis_parse_xpending(r, count_row, &c, err, sizeof err), 2, "%s", err);
	cr_expect_eq(c.id[0].ms, 1);
	cr_expect_eq(c.deliveries[0], 3);
	cr_expect_eq(c.id[1].seq, 2);
	cr_expect_eq(c.deliveries[1], 1);
	freeReplyObject(r);
	static const struct bad_reply bad[] = {
	    {"-NOGROUP x\r\n", "NOGROUP"},
	    {"$2\r\nno\r\n", "answered a string, not an array"},
	    {"*1\r\n*3\r\n$3\r\n1-0\r\n$2\r\nc1\r\n:1\r\n", "row 1 is not"},
	    {"*2\r\n*4\r\n$3\r\n1-0\r\n$2\r\nc1\r\n:1\r\n:1\r\n*4\r\n$3\r\n1-0\r\n$2\r\nc1\r\n:"
	     "1\r\n:-1\r\n",
	     "row 2 is not"},
	    {"*1\r\n*4\r\n$3\r\nx-0\r\n$2\r\nc1\r\n:1\r\n:1\r\n", "row 1 is not"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		c.n = 0;
		r = resp(bad[i].resp);
		cr_expect_eq(td_redis_parse_xpending(r, count_row, &c, err, sizeof err), -TD_EINVAL,
			     "case %zu", i);
		cr_expect_eq(c.n, 0, "case %zu called back", i);
		cr_expect(strstr(err, bad[i].words) != NULL, "case %zu: \"%s\"", i, err);
		freeReplyObject(r);
	}
}

/* ---- payload mapping ---- */

struct payload_case {
	const char *kv[8]; /* name, value pairs */
	size_t n;
	int kind;	  /* 1: raw, 0: JSON object */
	const char *want; /* the raw bytes or the JSON text */
};

Test(redis_entry, fields_become_data)
{
	static const struct payload_case cases[] = {
	    {{"data", "{\"order\":7}"}, 1, 1, "{\"order\":7}"},
	    {{"payload", "plain text"}, 1, 1, "plain text"},
	    {{"data", ""}, 1, 1, ""},
	    {{"Data", "x"}, 1, 0, "{\"Data\":\"x\"}"},
	    {{"data", "1", "other", "2"}, 2, 0, "{\"data\":\"1\",\"other\":\"2\"}"},
	    {{"a", "1", "b", "two"}, 2, 0, "{\"a\":\"1\",\"b\":\"two\"}"},
	    {{"x", "1", "y", "2", "x", "3"}, 3, 0, "{\"x\":[\"1\",\"3\"],\"y\":\"2\"}"},
	    {{"q\"uote", "line\nbreak"}, 1, 0, "{\"q\\\"uote\":\"line\\nbreak\"}"},
	    {{"k", "", "k", "", "k", ""}, 3, 0, "{\"k\":[\"\",\"\",\"\"]}"},
	    {{"b", "\xff\xfe"}, 1, 0, "{\"b\":{\"base64\":\"//4=\"}}"},
	    {{"n\xff", "v"}, 1, 0, "{\"n\\ufffd\":\"v\"}"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct td_redis_entry *e = entry("1-1", cases[i].kv, cases[i].n);
		struct td_buf out = {0};
		const char *raw = NULL;
		size_t raw_len = 0;
		int kind = td_redis_entry_payload(e, &out, &raw, &raw_len);
		cr_expect_eq(kind, cases[i].kind, "case %zu", i);
		if (kind == 1) {
			cr_expect_eq(raw_len, strlen(cases[i].want), "case %zu", i);
			cr_expect_eq(memcmp(raw, cases[i].want, raw_len), 0, "case %zu", i);
		} else {
			cr_expect_str_eq(out.data, cases[i].want, "case %zu", i);
			cr_expect(td_json_valid(out.data, out.len, 0), "case %zu: not JSON", i);
		}
		td_buf_free(&out);
		free(e);
	}
}

Test(redis_entry, many_fields_with_repeats_keep_first_order)
{
	struct td_redis_field f[40];
	char names[40][16], values[40][16];
	for (int i = 0; i < 40; i++) {
		snprintf(names[i], sizeof names[i], "f%d", i % 13);
		snprintf(values[i], sizeof values[i], "%d", i);
		f[i] = (struct td_redis_field){names[i], strlen(names[i]), values[i],
					       strlen(values[i])};
	}
	struct td_redis_entry *e = td_redis_entry_new("3-3", 3, f, 40, NULL, 0);
	cr_assert_not_null(e);
	struct td_buf out = {0};
	const char *raw;
	size_t raw_len;
	cr_assert_eq(td_redis_entry_payload(e, &out, &raw, &raw_len), 0);
	json_error_t jerr;
	json_t *doc = json_loads(out.data, JSON_REJECT_DUPLICATES, &jerr);
	cr_assert_not_null(doc, "%s", jerr.text);
	cr_expect_eq(json_object_size(doc), 13);
	json_t *f0 = json_object_get(doc, "f0"); /* fields 0, 13, 26, 39 */
	cr_assert(json_is_array(f0));
	cr_expect_eq(json_array_size(f0), 4);
	cr_expect_str_eq(json_string_value(json_array_get(f0, 3)), "39");
	cr_expect(strncmp(out.data, "{\"f0\":", 6) == 0, "%s", out.data);
	json_decref(doc);
	td_buf_free(&out);
	free(e);
}

/* ---- events ---- */

Test(redis_entry, entry_event_attributes)
{
	const char *kv[] = {"data", "{\"n\":1}"};
	struct td_redis_entry *e = entry("1700000000123-4", kv, 1);
	char err[256] = "";
	struct td_event *ev =
	    td_redis_entry_event("triggerd/redis/jobs", "orders", e, 3, err, sizeof err);
	cr_assert_not_null(ev, "%s", err);
	cr_expect_str_eq(td_event_get(ev, "id"), "orders/1700000000123-4");
	cr_expect_str_eq(td_event_get(ev, "source"), "triggerd/redis/jobs");
	cr_expect_str_eq(td_event_get(ev, "type"), "triggerd.redis.entry");
	cr_expect_str_eq(td_event_get(ev, "subject"), "orders");
	cr_expect_str_eq(td_event_get(ev, "time"), "2023-11-14T22:13:20.123Z");
	cr_expect_str_eq(td_event_get(ev, "redisstream"), "orders");
	cr_expect_str_eq(td_event_get(ev, "redisid"), "1700000000123-4");
	cr_expect_str_eq(td_event_get(ev, "redisdeliveries"), "3");
	cr_expect_null(td_event_get(ev, "datacontenttype"));
	cr_expect_eq(td_event_data_kind(ev), TD_DATA_JSON);
	char *json = td_event_to_json(ev, NULL);
	cr_expect(strstr(json, "\"redisdeliveries\":3") != NULL, "%s", json);
	cr_expect(strstr(json, "\"data\":{\"n\":1}") != NULL, "%s", json);
	free(json);
	td_event_unref(ev);
	free(e);

	/* Text and bytes say what they are; an id beyond RFC 3339 has no time. */
	const char *text[] = {"payload", "hello"};
	e = entry("5-0", text, 1);
	ev = td_redis_entry_event("s", "k", e, 1, err, sizeof err);
	cr_assert_not_null(ev);
	cr_expect_str_eq(td_event_get(ev, "datacontenttype"), "text/plain; charset=utf-8");
	cr_expect_str_eq(td_event_get(ev, "time"), "1970-01-01T00:00:00.005Z");
	json = td_event_to_json(ev, NULL);
	cr_expect(strstr(json, "\"data\":\"hello\"") != NULL, "%s", json);
	free(json);
	td_event_unref(ev);
	free(e);
	const char *bin[] = {"data", "\x01\xff"};
	e = entry("18446744073709551615-0", bin, 1);
	ev = td_redis_entry_event("s", "k", e, 1, err, sizeof err);
	cr_assert_not_null(ev);
	cr_expect_str_eq(td_event_get(ev, "datacontenttype"), "application/octet-stream");
	cr_expect_eq(td_event_data_kind(ev), TD_DATA_BINARY);
	cr_expect_null(td_event_get(ev, "time"));
	td_event_unref(ev);
	free(e);

	/* A stream key that is no CloudEvents string is refused with the reason. */
	const char *kv2[] = {"a", "b"};
	e = entry("1-0", kv2, 1);
	ev = td_redis_entry_event("s", "bad\x01key", e, 1, err, sizeof err);
	cr_expect_null(ev);
	cr_expect(strstr(err, "cannot set the event id") != NULL ||
		      strstr(err, "not a valid CloudEvents string") != NULL,
		  "%s", err);
	free(e);
}

Test(redis_entry, batch_event_is_the_list_of_entry_events)
{
	struct td_event *evs[3];
	const char *kv[] = {"n", "0"};
	char id[32], err[256] = "";
	for (int i = 0; i < 3; i++) {
		snprintf(id, sizeof id, "100-%d", i);
		struct td_redis_entry *e = entry(id, kv, 1);
		evs[i] = td_redis_entry_event("src", "jobs", e, 1, err, sizeof err);
		cr_assert_not_null(evs[i], "%s", err);
		free(e);
	}
	struct td_event *b = td_redis_batch_event("src", "jobs", evs, 3, err, sizeof err);
	cr_assert_not_null(b, "%s", err);
	cr_expect_str_eq(td_event_get(b, "id"), "jobs/100-0..100-2");
	cr_expect_str_eq(td_event_get(b, "type"), "triggerd.redis.batch");
	cr_expect_str_eq(td_event_get(b, "subject"), "jobs");
	cr_expect_str_eq(td_event_get(b, "redisid"), "100-0");
	cr_expect_str_eq(td_event_get(b, "redislastid"), "100-2");
	cr_expect_str_eq(td_event_get(b, "rediscount"), "3");
	cr_expect_eq(td_event_data_kind(b), TD_DATA_JSON);
	size_t len;
	const char *data = td_event_data(b, &len);
	json_t *list = json_loadb(data, len, 0, NULL);
	cr_assert(json_is_array(list));
	cr_assert_eq(json_array_size(list), 3);
	for (size_t i = 0; i < 3; i++) {
		json_t *item = json_array_get(list, i);
		snprintf(id, sizeof id, "jobs/100-%zu", i);
		cr_expect_str_eq(json_string_value(json_object_get(item, "id")), id);
		cr_expect_str_eq(
		    json_string_value(json_object_get(json_object_get(item, "data"), "n")), "0");
	}
	json_decref(list);
	td_event_unref(b);
	cr_expect_null(td_redis_batch_event("src", "jobs", evs, 0, err, sizeof err));
	for (int i = 0; i < 3; i++)
		td_event_unref(evs[i]);
}

/* ---- partial batch responses ---- */

struct failures_case {
	const char *body;
	int want; /* failed count, or -TD_EINVAL */
	bool failed[3];
	const char *words;
};

Test(redis_entry, batch_item_failures)
{
	static const char *const ids[] = {"1-0", "1-1", "2-0"};
	static const struct failures_case cases[] = {
	    {"", 0, {0}, NULL},
	    {"ok", 0, {0}, NULL},
	    {"[1,2]", 0, {0}, NULL},
	    {"{\"result\":1}", 0, {0}, NULL},
	    {"{\"batchItemFailures\":null}", 0, {0}, NULL},
	    {"{\"batchItemFailures\":[]}", 0, {0}, NULL},
	    {"{\"batchItemFailures\":[{\"itemIdentifier\":\"1-1\"}]}", 1, {0, 1, 0}, NULL},
	    {"{\"batchItemFailures\":[{\"itemIdentifier\":\"jobs/"
	     "2-0\"},{\"itemIdentifier\":\"1-0\"}]}",
	     2,
	     {1, 0, 1},
	     NULL},
	    {"{\"batchItemFailures\":[{\"itemIdentifier\":\"1-1\"},{\"itemIdentifier\":\"1-1\"}]}",
	     1,
	     {0, 1, 0},
	     NULL},
	    {"{\"batchItemFailures\":{}}", -TD_EINVAL, {0}, "batchItemFailures is not a list"},
	    {"{\"batchItemFailures\":[{}]}",
	     -TD_EINVAL,
	     {0},
	     "batchItemFailures[0]: itemIdentifier is missing"},
	    {"{\"batchItemFailures\":[{\"itemIdentifier\":\"\"}]}", -TD_EINVAL, {0}, "empty"},
	    {"{\"batchItemFailures\":[{\"itemIdentifier\":7}]}", -TD_EINVAL, {0}, "not a string"},
	    {"{\"batchItemFailures\":[\"1-0\"]}", -TD_EINVAL, {0}, "itemIdentifier is missing"},
	    {"{\"batchItemFailures\":[{\"itemIdentifier\":\"1-0\"},{\"itemIdentifier\":\"9-9\"}]}",
	     -TD_EINVAL,
	     {0},
	     "batchItemFailures[1]: itemIdentifier \"9-9\" is no entry of the batch"},
	    {"{\"batchItemFailures\":[{\"itemIdentifier\":\"other/1-0\"}]}",
	     -TD_EINVAL,
	     {0},
	     "is no entry of the batch"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		bool failed[3] = {true, true, true};
		char err[256] = "";
		int rc = td_redis_batch_failures(cases[i].body, strlen(cases[i].body), "jobs", ids,
						 3, failed, err, sizeof err);
		cr_expect_eq(rc, cases[i].want, "case %zu: %s", i, err);
		if (rc >= 0)
			for (int k = 0; k < 3; k++)
				cr_expect_eq(failed[k], cases[i].failed[k], "case %zu entry %d", i,
					     k);
		if (cases[i].words)
			cr_expect(strstr(err, cases[i].words) != NULL, "case %zu: \"%s\"", i, err);
	}
}

Test(redis_entry, dead_letter_key_template)
{
	static const char *const cases[][3] = {
	    {"{stream}:dlq", "jobs", "jobs:dlq"},
	    {"dead", "jobs", "dead"},
	    {"dlq:{stream}:{stream}", "a", "dlq:a:a"},
	    {"{stream", "a", "{stream"},
	    {"", "a", ""},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *key = td_redis_dead_letter_key(cases[i][0], cases[i][1]);
		cr_assert_not_null(key);
		cr_expect_str_eq(key, cases[i][2]);
		free(key);
	}
}

/* ---- the structured JSON written without the event (the batch path) ---- */

struct json_case {
	const char *stream;
	const char *id;
	const char *kv[8]; /* name, value pairs */
	size_t n;
	int deliveries;
};

static const struct json_case json_cases[] = {
    {"orders", "1700000000123-4", {"order", "7", "item", "bench-item"}, 2, 1},
    {"orders", "0-0", {"a", "1", "b", "2", "a", "3"}, 3, 5},
    {"o\"rd\\ers\xc3\xa9", "951782400000-1", {"k\xff", "v\xfe", "x", ""}, 2, 1000000},
    {"k", "1709164800999-0", {"data", " \n{\"n\": [1, 2]}\t "}, 1, 2},
    {"k", "4107542400000-7", {"payload", "hello \"there\"\n"}, 1, 1},
    {"k", "1-1", {"data", "\x01\xff\x80"}, 1, 1},
    {"k", "2-2", {"payload", ""}, 1, 1},
    {"k", "3-3", {"data", "12"}, 1, 1},
    {"k", "253402300799999-0", {"data", "null"}, 1, 3},
    {"k", "253402300800000-0", {"f", "v"}, 1, 1},
    {"k", "18446744073709551615-18446744073709551615", {"data", "[1"}, 1, 1},
    {"k", "86399999-0", {"data", "x"}, 1, 1},
};

Test(redis_entry, entry_json_is_the_events_structured_json)
{
	for (size_t i = 0; i < sizeof json_cases / sizeof json_cases[0]; i++) {
		const struct json_case *t = &json_cases[i];
		struct td_redis_field f[4];
		for (size_t k = 0; k < t->n; k++)
			f[k] = (struct td_redis_field){t->kv[2 * k], strlen(t->kv[2 * k]),
						       t->kv[2 * k + 1], strlen(t->kv[2 * k + 1])};
		char err[256] = "";
		struct td_redis_entry *e =
		    td_redis_entry_new(t->id, strlen(t->id), f, t->n, err, sizeof err);
		cr_assert_not_null(e, "case %zu: %s", i, err);
		struct td_event *ev = td_redis_entry_event("triggerd/redis/src", t->stream, e,
							   t->deliveries, err, sizeof err);
		cr_assert_not_null(ev, "case %zu: %s", i, err);
		size_t want_len;
		char *want = td_event_to_json(ev, &want_len);
		cr_assert_not_null(want);
		/* Appended after what the buffer holds already. */
		struct td_buf b = {0};
		td_buf_appends(&b, "[x,");
		cr_assert_eq(
		    td_redis_entry_json("triggerd/redis/src", t->stream, e, t->deliveries, &b), 0,
		    "case %zu", i);
		cr_expect_eq(b.len, 3 + want_len, "case %zu: %.*s\nwant %s", i, (int)b.len, b.data,
			     want);
		cr_expect(b.len == 3 + want_len && memcmp(b.data + 3, want, want_len) == 0,
			  "case %zu: %.*s\nwant %s", i, (int)b.len, b.data, want);
		cr_expect(td_json_valid(b.data + 3, b.len - 3, 0), "case %zu", i);
		td_buf_free(&b);
		free(want);
		td_event_unref(ev);
		free(e);
	}
}

Test(redis_entry, batch_event_from_json_equals_the_batch_of_events)
{
	enum { N = 4 };
	struct td_event *evs[N];
	struct td_buf data = {0};
	const char *kv[] = {"n", "0", "payload", "p"};
	char id[32], err[256] = "";
	td_buf_appendc(&data, '[');
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof id, "170000000%c000-%c", (char)('0' + i), (char)('0' + i));
		struct td_redis_entry *e = entry(id, kv, i == 2 ? 1 : 2);
		evs[i] = td_redis_entry_event("src", "jobs", e, i + 1, err, sizeof err);
		cr_assert_not_null(evs[i], "%s", err);
		if (i)
			td_buf_appendc(&data, ',');
		cr_assert_eq(td_redis_entry_json("src", "jobs", e, i + 1, &data), 0);
		free(e);
	}
	td_buf_appendc(&data, ']');
	struct td_event *want = td_redis_batch_event("src", "jobs", evs, N, err, sizeof err);
	cr_assert_not_null(want, "%s", err);
	size_t len;
	char *json = td_buf_steal(&data, &len);
	cr_assert_not_null(json);
	struct td_event *got = td_redis_batch_event_json(
	    "src", "jobs", "1700000000000-0", "1700000003000-3", N, json, len, err, sizeof err);
	cr_assert_not_null(got, "%s", err);
	cr_expect(td_event_equal(got, want));
	size_t a_len, b_len;
	const char *a = td_event_data(got, &a_len), *b = td_event_data(want, &b_len);
	cr_expect(a_len == b_len && memcmp(a, b, a_len) == 0, "%s\nwant %s", a, b);
	cr_expect_str_eq(td_event_get(got, "id"), "jobs/1700000000000-0..1700000003000-3");
	cr_expect_str_eq(td_event_get(got, "rediscount"), "4");
	cr_expect_str_eq(td_event_get(got, "datacontenttype"), "application/json");
	td_event_unref(got);
	td_event_unref(want);
	for (int i = 0; i < N; i++)
		td_event_unref(evs[i]);

	/* Refusals own the buffer too (freed: ASan's leak check would say otherwise). */
	struct refusal {
		const char *stream, *first;
		size_t n;
		const char *words;
	} bad[] = {
	    {"bad\x01key", "1-0", 1, "event id"},
	    {"jobs", "x-0", 1, "needs entries"},
	    {"jobs", "1-0", 0, "needs entries"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char *text = strdup("[1]");
		cr_assert_not_null(text);
		err[0] = '\0';
		cr_expect_null(td_redis_batch_event_json("src", bad[i].stream, bad[i].first, "1-0",
							 bad[i].n, text, 3, err, sizeof err),
			       "refusal %zu", i);
		cr_expect(strstr(err, bad[i].words) != NULL, "refusal %zu: %s", i, err);
	}
	cr_expect_null(
	    td_redis_batch_event_json("src", "jobs", "1-0", "1-0", 1, NULL, 0, err, sizeof err));
}
