/*
 * libFuzzer target for router/json.c. The input is any byte string. Checks, beyond
 * "no crash, no out-of-bounds read" (ASan, UBSan):
 *   - the validator agrees with jansson (which refuses numbers that overflow a double
 *     and allows deeper nesting: those are the only allowed differences);
 *   - on valid text, td_json_skip spans the whole value and the member walker visits
 *     every member of an object, each value valid on its own;
 *   - escaping any bytes gives valid JSON, and decoding it gives valid UTF-8 input back;
 *   - base64 encoding round-trips, and decoding arbitrary text never misbehaves.
 * The walker and the skipper also run on invalid input, where they must only fail.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../router/json.h"

#define CHECK(cond, what)                                                                          \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_json: %s\n", what);                                  \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static void walk(const char *s, size_t len, int valid)
{
	struct td_json_iter it;
	struct td_json_member m;
	struct td_buf key;
	size_t pos = 0;
	int rc;

	rc = td_json_skip(s, len, &pos);
	CHECK(pos <= len, "skip went past the end");
	if (valid) {
		CHECK(rc == 0, "skip failed on valid text");
		while (pos < len && strchr(" \t\r\n", s[pos]))
			pos++;
		CHECK(pos == len, "skip did not span the value");
	}
	if (td_json_iter_object(&it, s, len) < 0)
		return;
	td_buf_init(&key);
	while ((rc = td_json_iter_next(&it, &m)) > 0) {
		CHECK(m.key >= s && m.key + m.key_len <= s + len, "key out of bounds");
		CHECK(m.value >= s && m.value + m.value_len <= s + len, "value out of bounds");
		if (valid) {
			CHECK(td_json_valid(m.value, m.value_len, 0),
			      "member value not valid alone");
			td_buf_reset(&key);
			CHECK(td_json_string_decode(m.key, m.key_len, &key) == 0,
			      "key not decoded");
		}
	}
	if (valid)
		CHECK(rc == 0, "walker failed on a valid object");
	td_buf_free(&key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct td_buf a, b;
	json_error_t jerr;
	char err[256];
	json_t *v;
	int rc;

	rc = td_json_validate(s, size, 0, err, sizeof(err));
	CHECK(rc == 0 || strncmp(err, "line ", 5) == 0, "a message without a position");
	v = json_loadb(s, size, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &jerr);
	/* jansson also takes a NUL byte after the value for the end of the input */
	if (v && rc != 0)
		CHECK(strstr(err, "nesting deeper") != NULL || strstr(err, "byte 0x00") != NULL,
		      "jansson accepts what the validator refuses");
	if (!v && rc == 0)
		CHECK(strstr(jerr.text, "overflow") != NULL || strstr(jerr.text, "depth") != NULL,
		      "the validator accepts what jansson refuses");
	json_decref(v);
	walk(s, size, rc == 0);

	td_buf_init(&a);
	td_buf_init(&b);
	CHECK(td_json_append_string(&a, s, size) == 0, "append_string failed");
	CHECK(td_json_valid(a.data, a.len, 0), "escaped text is not JSON");
	CHECK(td_json_string_decode(a.data + 1, a.len - 2, &b) == 0, "escaped text not decoded");
	CHECK(td_utf8_valid(b.data, b.len, NULL), "decoded text is not UTF-8");
	if (td_utf8_valid(s, size, NULL))
		CHECK(b.len == size && (size == 0 || memcmp(b.data, s, size) == 0),
		      "escape/decode changed the text");

	td_buf_reset(&a);
	td_buf_reset(&b);
	CHECK(td_base64_encode(&a, s, size) == 0, "base64 encode failed");
	CHECK(a.len == td_base64_encoded_len(size), "base64 length");
	CHECK(td_base64_decode(a.data, a.len, &b, NULL, 0) == 0, "base64 decode of own output");
	CHECK(b.len == size && (size == 0 || memcmp(b.data, s, size) == 0), "base64 round trip");
	td_buf_reset(&b);
	if (td_base64_decode(s, size, &b, err, sizeof(err)) == 0) {
		CHECK(b.len <= size / 4 * 3, "base64 decoded too much");
		td_buf_reset(&a);
		td_base64_encode(&a, b.data ? b.data : "", b.len);
		CHECK(a.len == size, "base64 re-encoding has another length");
	}
	td_buf_free(&a);
	td_buf_free(&b);
	return 0;
}
