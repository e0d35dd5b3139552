/*
 * libFuzzer target for the reply parsers of connectors/redis_streams_entry.c: the
 * input's first byte picks XREADGROUP, XAUTOCLAIM, XPENDING or one entry, the rest is
 * what a server (or anything posing as one) sends, parsed by hiredis's own reader as
 * the source does. Beyond "no crash, no out-of-bounds read" (ASan, UBSan) it checks
 * that a refused reply hands nothing over and says why, that every entry handed over
 * has a well-formed id and NUL-terminated fields of the stated lengths, and that each
 * becomes an event whose JSON form is valid (the payload mapping included).
 *
 * hiredis 0.14 allocates the element array of a multibulk reply at the size its header
 * announces ("*333333332" is a 2.6 GB calloc) before any element arrives; that is the
 * library's behaviour, not the parsers', so inputs announcing more than MAX_ELEMENTS
 * elements are skipped.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include <triggerd/event.h>

#include "../../connectors/redis_streams_util.h"
#include "../../router/json.h"

#define CHECK(cond, what)                                                                          \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_redis_reply: %s\n", what);                           \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define MAX_ELEMENTS 100000

static const char *const streams[] = {"jobs", "s", ""};

/* True when some "*N" in data announces more than MAX_ELEMENTS elements. */
static bool huge_array(const uint8_t *data, size_t size)
{
	for (size_t i = 0; i < size; i++) {
		if (data[i] != '*')
			continue;
		unsigned long long n = 0;
		for (size_t k = i + 1; k < size && data[k] >= '0' && data[k] <= '9'; k++)
			if ((n = n * 10 + (data[k] - '0')) > MAX_ELEMENTS)
				return true;
	}
	return false;
}

static void check_entry(const struct td_redis_entry *e)
{
	struct td_redis_id id;
	CHECK(td_redis_id_parse(e->id_text, strlen(e->id_text), &id) == 0, "bad id text");
	CHECK(td_redis_id_cmp(&id, &e->id) == 0, "id text and id differ");
	CHECK(!e->deleted || e->nfields == 0, "a deleted entry with fields");
	for (size_t i = 0; i < e->nfields; i++) {
		CHECK(e->fields[i].name[e->fields[i].name_len] == '\0', "name not terminated");
		CHECK(e->fields[i].value[e->fields[i].value_len] == '\0', "value not terminated");
	}
	if (e->deleted)
		return;
	char err[256];
	struct td_event *ev =
	    td_redis_entry_event("triggerd/redis/fuzz", "jobs", e, 1, err, sizeof err);
	CHECK(ev != NULL, "an entry did not become an event");
	size_t len;
	char *json = td_event_to_json(ev, &len);
	CHECK(json && td_json_valid(json, len, 0), "the event's JSON is invalid");
	free(json);
	td_event_unref(ev);
}

static size_t handed;

static void take(void *arg, size_t stream, struct td_redis_entry *e)
{
	size_t limit = *(size_t *)arg;
	CHECK(stream < limit, "stream index out of range");
	check_entry(e);
	handed++;
	free(e);
}

static void row(void *arg, const struct td_redis_id *id, long long deliveries)
{
	(void)arg;
	(void)id;
	CHECK(deliveries >= 0, "negative delivery count");
	handed++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || huge_array(data, size))
		return 0;
	int mode = data[0] % 4;
	redisReader *reader = redisReaderCreate();
	if (!reader)
		return 0;
	redisReaderFeed(reader, (const char *)data + 1, size - 1);
	void *reply = NULL;
	while (redisReaderGetReply(reader, &reply) == REDIS_OK && reply) {
		const redisReply *r = reply;
		char err[512] = "", cursor[TD_REDIS_ID_MAX];
		size_t limit = 3;
		int rc = 0;
		handed = 0;
		switch (mode) {
		case 0:
			rc =
			    td_redis_parse_xreadgroup(r, streams, 3, take, &limit, err, sizeof err);
			break;
		case 1:
			limit = 8;
			rc = td_redis_parse_xautoclaim(r, 7, cursor, take, &limit, err, sizeof err);
			if (rc >= 0) {
				struct td_redis_id id;
				CHECK(td_redis_id_parse(cursor, strlen(cursor), &id) == 0,
				      "bad cursor");
			}
			break;
		case 2:
			rc = td_redis_parse_xpending(r, row, NULL, err, sizeof err);
			break;
		case 3: {
			struct td_redis_entry *e = td_redis_entry_from_reply(r, err, sizeof err);
			rc = e ? 1 : -1;
			if (e) {
				check_entry(e);
				handed = 1;
				free(e);
			}
			break;
		}
		}
		if (rc < 0) {
			CHECK(handed == 0, "a refused reply handed entries over");
			CHECK(err[0] != '\0', "a refusal without a reason");
		} else {
			CHECK((size_t)rc == handed,
			      "the count disagrees with what was handed over");
		}
		freeReplyObject(reply);
		reply = NULL;
	}
	redisReaderFree(reader);
	return 0;
}
