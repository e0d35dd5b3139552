/*
 * libFuzzer target for what connectors/redis_streams_entry.c reads from functions and
 * entries: the input's first byte picks
 *   - Lambda's partial batch response (td_redis_batch_failures) against a batch of
 *     three entries: the count returned must equal the entries marked failed, and a
 *     refusal must say why;
 *   - the mapping of entry fields to data: the rest of the input is split into
 *     name/value pairs at 0x00 bytes; the payload is either one field's exact bytes or
 *     a JSON object that must be valid JSON, and the batch event of such entries must
 *     be valid JSON too.
 * Beyond that, no crash and no out-of-bounds read (ASan, UBSan).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <triggerd/event.h>

#include "../../connectors/redis_streams_util.h"
#include "../../router/json.h"

#define CHECK(cond, what)                                                                          \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_redis_batch: %s\n", what);                           \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define MAX_FIELDS 64

static void failures(const char *body, size_t len)
{
	static const char *const ids[] = {"1-0", "1-1", "2-0"};
	bool failed[3];
	char err[256] = "";
	int rc = td_redis_batch_failures(body, len, "jobs", ids, 3, failed, err, sizeof err);
	if (rc < 0) {
		CHECK(err[0] != '\0', "a refusal without a reason");
		return;
	}
	int marked = failed[0] + failed[1] + failed[2];
	CHECK(rc == marked, "the count disagrees with the entries marked");
}

static void mapping(const char *p, size_t len)
{
	struct td_redis_field f[MAX_FIELDS];
	size_t n = 0, at = 0;
	while (at <= len && n < MAX_FIELDS) {
		const char *name = p + at;
		const char *z = memchr(name, 0, len - at);
		size_t name_len = z ? (size_t)(z - name) : len - at;
		at += name_len + 1;
		const char *value = at <= len ? p + at : p + len;
		size_t left = at <= len ? len - at : 0;
		const char *z2 = memchr(value, 0, left);
		size_t value_len = z2 ? (size_t)(z2 - value) : left;
		at += value_len + 1;
		f[n++] = (struct td_redis_field){name, name_len, value, value_len};
	}
	char err[256];
	struct td_redis_entry *e = td_redis_entry_new("7-7", 3, f, n, err, sizeof err);
	if (!e)
		return;
	struct td_buf out = {0};
	const char *raw = NULL;
	size_t raw_len = 0;
	int kind = td_redis_entry_payload(e, &out, &raw, &raw_len);
	CHECK(kind == 0 || kind == 1, "unexpected payload kind");
	if (kind == 0)
		CHECK(td_json_valid(out.data, out.len, 0), "the data object is invalid JSON");
	else
		CHECK(n == 1 && raw == e->fields[0].value && raw_len == f[0].value_len,
		      "a raw payload that is not the single field's value");
	td_buf_free(&out);
	struct td_event *evs[2];
	evs[0] = td_redis_entry_event("src", "jobs", e, 2, err, sizeof err);
	CHECK(evs[0] != NULL, "an entry did not become an event");
	evs[1] = td_event_ref(evs[0]);
	struct td_event *batch = td_redis_batch_event("src", "jobs", evs, 2, err, sizeof err);
	CHECK(batch != NULL, "a batch did not become an event");
	size_t jl;
	char *json = td_event_to_json(batch, &jl);
	CHECK(json && td_json_valid(json, jl, 0), "the batch event's JSON is invalid");
	free(json);
	td_event_unref(batch);
	td_event_unref(evs[0]);
	td_event_unref(evs[1]);
	free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		failures((const char *)data + 1, size - 1);
	else
		mapping((const char *)data + 1, size - 1);
	return 0;
}
