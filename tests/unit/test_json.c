/*
 * Unit tests for router/json.c: the strict validator (valid and invalid tables, each
 * invalid case with the words its message must contain, nesting limits, positions in
 * messages, and agreement with jansson on every case), string escaping and decoding,
 * the member walker, base64 (RFC 4648 vectors), UTF-8 and td_buf.
 */
#include <criterion/criterion.h>

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <triggerd/errors.h>

#include "../../router/json.h"

/* A text with an explicit length, so that cases may hold NUL bytes. */
struct jtext {
	const char *s;
	size_t len;
};
#define T(lit)                                                                                     \
	{                                                                                          \
		lit, sizeof(lit) - 1                                                               \
	}

static const struct jtext valid_docs[] = {
    T("0"),
    T("-0"),
    T("123"),
    T("-1.5e10"),
    T("1E-2"),
    T("1e+2"),
    T("0.000"),
    T("1e400"), /* valid text; a parser may refuse the value */
    T("\"\""),
    T("\"abc\""),
    T("\"\\u00e9\\u20AC\""),
    T("\"\\ud83d\\ude00\""),
    T("\"\\/\\b\\f\\n\\r\\t\\\"\\\\\""),
    T("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""),
    T("\"\x7f\""),
    T("\"\xef\xbf\xbf\""),
    T("\"\\u0000\""),
    T("true"),
    T("false"),
    T("null"),
    T("[]"),
    T("{}"),
    T("[[[]]]"),
    T("{\"\":\"\"}"),
    T(" \t\r\n{ \"a\" : [ 1 , 2 , { \"b\" : null } ] } \n"),
    T("[1,\"two\",{\"3\":[true,false,null]},-4.5]"),
    T("{\"a\":{\"b\":{\"c\":{}}},\"d\":[]}"),
    T("{\"a\":1,\"a\":2}"), /* duplicate keys are valid RFC 8259 text */
};

struct bad_doc {
	struct jtext text;
	const char *words; /* the message must contain this */
};

static const struct bad_doc invalid_docs[] = {
    {T(""), "unexpected end of input"},
    {T("   \n"), "unexpected end of input"},
    {T("01"), "leading zeros"},
    {T("-01"), "leading zeros"},
    {T("1."), "after the decimal point"},
    {T("1.e3"), "after the decimal point"},
    {T(".5"), "expected a value, found '.'"},
    {T("+1"), "expected a value, found '+'"},
    {T("1e"), "in the exponent"},
    {T("1e+"), "in the exponent"},
    {T("-"), "expected a digit"},
    {T("-a"), "expected a digit"},
    {T("[1,]"), "expected a value, found ']'"},
    {T("[,1]"), "expected a value, found ','"},
    {T("{\"a\":1,}"), "expected a string key after ','"},
    {T("{a:1}"), "expected a string key or '}'"},
    {T("{\"a\" 1}"), "expected ':'"},
    {T("{\"a\":}"), "expected a value, found '}'"},
    {T("[1 2]"), "expected ',' or ']'"},
    {T("{\"a\":1 \"b\":2}"), "expected ',' or '}'"},
    {T("[1}"), "expected ',' or ']'"},
    {T("{\"a\":1]"), "expected ',' or '}'"},
    {T("[1"), "expected ',' or ']' after an array element, found end of input"},
    {T("{"), "expected a string key or '}', found end of input"},
    {T("\"abc"), "unterminated string"},
    {T("\"abc\\"), "unterminated string"},
    {T("\"a\\x\""), "invalid escape"},
    {T("\"a\\U0041\""), "invalid escape"},
    {T("\"\\u12\""), "4 hex digits"},
    {T("\"\\u12g4\""), "4 hex digits"},
    {T("\"\\ud800\""), "high surrogate"},
    {T("\"\\ud800\\u0041\""), "high surrogate"},
    {T("\"\\ud800\\ud800\""), "high surrogate"},
    {T("\"\\udc00\""), "lone low surrogate"},
    {T("\"\x01\""), "raw control character 0x01"},
    {T("\"\t\""), "raw control character 0x09"},
    {T("\"a\nb\""), "raw control character 0x0a"},
    {T("\"\x00\""), "raw control character 0x00"},
    {T("\"\xc0\xa0\""), "invalid UTF-8"},	  /* overlong space */
    {T("\"\xe0\x80\xaf\""), "invalid UTF-8"},	  /* overlong '/' */
    {T("\"\xed\xa0\x80\""), "invalid UTF-8"},	  /* an encoded surrogate */
    {T("\"\xf4\x90\x80\x80\""), "invalid UTF-8"}, /* above U+10FFFF */
    {T("\"\xe2\x82\""), "invalid UTF-8"},	  /* truncated */
    {T("\"\x80\""), "invalid UTF-8"},		  /* a lone continuation byte */
    {T("\"\xff\""), "invalid UTF-8"},
    {T("\xef\xbb\xbf{}"), "byte order mark"},
    {T("tru"), "invalid literal"},
    {T("nul"), "invalid literal"},
    {T("True"), "expected a value, found 'T'"},
    {T("NaN"), "expected a value, found 'N'"},
    {T("'a'"), "expected a value, found '''"},
    {T("{} {}"), "after the JSON value"},
    {T("[1]x"), "after the JSON value"},
    {T("truex"), "after the JSON value"},
    {T("[1]//c"), "after the JSON value"},
    {T("\x00"), "found byte 0x00"},
    {T("[\x00]"), "found byte 0x00"},
    {T("1 2"), "after the JSON value"},
    {T("\xc3\xa9"), "found byte 0xc3"},
};

Test(json, validate_accepts_valid_documents)
{
	char err[160];

	for (size_t i = 0; i < sizeof(valid_docs) / sizeof(valid_docs[0]); i++) {
		int rc = td_json_validate(valid_docs[i].s, valid_docs[i].len, 0, err, sizeof(err));
		cr_expect_eq(rc, 0, "case %zu (%s): %s", i, valid_docs[i].s, err);
		cr_expect(td_json_valid(valid_docs[i].s, valid_docs[i].len, 0), "case %zu", i);
	}
}

Test(json, validate_rejects_invalid_documents_with_a_reason)
{
	char err[160];

	for (size_t i = 0; i < sizeof(invalid_docs) / sizeof(invalid_docs[0]); i++) {
		const struct bad_doc *c = &invalid_docs[i];
		err[0] = '\0';
		int rc = td_json_validate(c->text.s, c->text.len, 0, err, sizeof(err));
		cr_expect_eq(rc, -TD_EINVAL, "case %zu (%s) was accepted", i, c->text.s);
		cr_expect(strstr(err, c->words) != NULL, "case %zu: message \"%s\" lacks \"%s\"", i,
			  err, c->words);
		cr_expect(strncmp(err, "line ", 5) == 0, "case %zu: no position in \"%s\"", i, err);
		cr_expect_not(td_json_valid(c->text.s, c->text.len, 0), "case %zu", i);
	}
}

Test(json, validate_agrees_with_jansson)
{
	json_error_t jerr;
	json_t *v;

	/* jansson refuses numbers that overflow a double; everything else must agree. */
	for (size_t i = 0; i < sizeof(valid_docs) / sizeof(valid_docs[0]); i++) {
		if (strcmp(valid_docs[i].s, "1e400") == 0)
			continue;
		v = json_loadb(valid_docs[i].s, valid_docs[i].len, JSON_DECODE_ANY | JSON_ALLOW_NUL,
			       &jerr);
		cr_expect_not_null(v, "jansson refuses valid case %zu: %s", i, jerr.text);
		json_decref(v);
	}
	for (size_t i = 0; i < sizeof(invalid_docs) / sizeof(invalid_docs[0]); i++) {
		const struct bad_doc *c = &invalid_docs[i];
		v = json_loadb(c->text.s, c->text.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
		cr_expect_null(v, "jansson accepts invalid case %zu (%s)", i, c->text.s);
		json_decref(v);
	}
}

Test(json, validate_reports_line_and_character_column)
{
	char err[160];
	const char *a = "{\n  \"a\": tru\n}";
	const char *b = "[\"\xc3\xa9\", x]";

	cr_assert_eq(td_json_validate(a, strlen(a), 0, err, sizeof(err)), -TD_EINVAL);
	cr_expect(strncmp(err, "line 2, column 8 (byte 9): invalid literal", 42) == 0, "%s", err);
	cr_assert_eq(td_json_validate(b, strlen(b), 0, err, sizeof(err)), -TD_EINVAL);
	cr_expect(strncmp(err, "line 1, column 7 (byte 7): expected a value, found 'x'", 53) == 0,
		  "%s", err);
	/* a tiny or absent message buffer is fine */
	cr_expect_eq(td_json_validate(a, strlen(a), 0, err, 4), -TD_EINVAL);
	cr_expect_eq(strlen(err), 3);
	cr_expect_eq(td_json_validate(a, strlen(a), 0, NULL, 0), -TD_EINVAL);
}

static char *nest(size_t depth, const char *open, const char *inner, const char *close)
{
	size_t lo = strlen(open), li = strlen(inner), lc = strlen(close);
	char *s = malloc(depth * (lo + lc) + li + 1), *p = s;

	cr_assert_not_null(s);
	for (size_t i = 0; i < depth; i++, p += lo)
		memcpy(p, open, lo);
	memcpy(p, inner, li);
	p += li;
	for (size_t i = 0; i < depth; i++, p += lc)
		memcpy(p, close, lc);
	*p = '\0';
	return s;
}

Test(json, validate_limits_nesting)
{
	char err[160];
	char *ok = nest(TD_JSON_MAX_DEPTH, "[", "", "]");
	char *deep = nest(TD_JSON_MAX_DEPTH + 1, "[", "", "]");
	char *objs = nest(TD_JSON_MAX_DEPTH + 1, "{\"a\":", "1", "}");
	char *open_only = nest(100000, "[", "", "");

	cr_expect_eq(td_json_validate(ok, strlen(ok), 0, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(td_json_validate(deep, strlen(deep), 0, err, sizeof(err)), -TD_EINVAL);
	cr_expect(strstr(err, "nesting deeper than 512 levels") != NULL, "%s", err);
	cr_expect_eq(td_json_validate(objs, strlen(objs), 0, err, sizeof(err)), -TD_EINVAL);
	cr_expect(strstr(err, "nesting deeper") != NULL, "%s", err);
	cr_expect_eq(td_json_validate(open_only, strlen(open_only), 0, err, sizeof(err)),
		     -TD_EINVAL);
	/* an explicit smaller limit */
	cr_expect(td_json_valid("[[1]]", 5, 2));
	cr_expect_not(td_json_valid("[[[1]]]", 7, 2));
	cr_expect(td_json_valid("1", 1, 1));
	/* a limit above the maximum is the maximum */
	cr_expect_not(td_json_valid(deep, strlen(deep), 100000));
	free(ok);
	free(deep);
	free(objs);
	free(open_only);
}

Test(json, validate_reads_only_len_bytes)
{
	/* exact-size heap copies: the sanitizers catch any read past the end */
	static const char *const texts[] = {"[1,2]", "\"abc\"", "12.5", "{\"a\":true}", "nul"};
	static const size_t cut[] = {3, 4, 3, 9, 3};
	static const bool whole_ok[] = {true, true, true, true, false};

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		size_t n = strlen(texts[i]);
		char *whole = malloc(n), *part = malloc(cut[i]);
		memcpy(whole, texts[i], n);
		memcpy(part, texts[i], cut[i]);
		cr_expect_eq(td_json_valid(whole, n, 0), whole_ok[i], "case %zu", i);
		cr_expect_not(td_json_valid(part, cut[i], 0), "case %zu cut at %zu", i, cut[i]);
		free(whole);
		free(part);
	}
	cr_expect_not(td_json_valid(NULL, 0, 0));
}

struct esc_case {
	struct jtext in;
	const char *out;
};

Test(json, append_string_escapes)
{
	static const struct esc_case cases[] = {
	    {T(""), "\"\""},
	    {T("abc"), "\"abc\""},
	    {T("a\"b"), "\"a\\\"b\""},
	    {T("back\\slash"), "\"back\\\\slash\""},
	    {T("\n\r\t\b\f"), "\"\\n\\r\\t\\b\\f\""},
	    {T("\x01\x1f"), "\"\\u0001\\u001f\""},
	    {T("a\0b"), "\"a\\u0000b\""},
	    {T("/ \x7f"), "\"/ \x7f\""},
	    {T("\xc3\xa9\xf0\x9f\x98\x80"), "\"\xc3\xa9\xf0\x9f\x98\x80\""},
	    {T("\xff"), "\"\\ufffd\""},
	    {T("a\xc3"), "\"a\\ufffd\""},
	    {T("\xc0\xa0z"), "\"\\ufffd\\ufffdz\""},
	    {T("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\""},
	};
	struct td_buf b;

	td_buf_init(&b);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		td_buf_reset(&b);
		cr_assert_eq(td_json_append_string(&b, cases[i].in.s, cases[i].in.len), 0);
		cr_expect_str_eq(b.data, cases[i].out, "case %zu", i);
		cr_expect(td_json_valid(b.data, b.len, 0), "case %zu output is not JSON", i);
	}
	td_buf_reset(&b);
	td_buf_appends(&b, "x=");
	cr_assert_eq(td_json_append_cstr(&b, "q\""), 0);
	cr_expect_str_eq(b.data, "x=\"q\\\"\"");
	td_buf_free(&b);
}

Test(json, append_string_then_decode_gives_the_text_back)
{
	unsigned char all[128 + 6];
	struct td_buf enc, dec;

	for (int i = 0; i < 128; i++)
		all[i] = (unsigned char)i;
	memcpy(all + 128, "\xc3\xa9\xe2\x82\xac", 5);
	td_buf_init(&enc);
	td_buf_init(&dec);
	cr_assert_eq(td_json_append_string(&enc, (const char *)all, 133), 0);
	cr_assert(td_json_valid(enc.data, enc.len, 0));
	cr_assert_eq(td_json_string_decode(enc.data + 1, enc.len - 2, &dec), 0);
	cr_expect_eq(dec.len, 133);
	cr_expect(memcmp(dec.data, all, 133) == 0);
	td_buf_free(&enc);
	td_buf_free(&dec);
}

Test(json, string_decode)
{
	static const struct esc_case good[] = {
	    {T(""), ""},
	    {T("plain"), "plain"},
	    {T("a\\u00e9"), "a\xc3\xa9"},
	    {T("\\u20ac"), "\xe2\x82\xac"},
	    {T("\\ud83d\\ude00!"), "\xf0\x9f\x98\x80!"},
	    {T("\\/\\\"\\\\"), "/\"\\"},
	    {T("\\b\\f\\n\\r\\t"), "\b\f\n\r\t"},
	};
	static const struct jtext bad[] = {
	    T("\\x"),	   T("\\u12"),		T("\\u12z4"), T("\\ud800"),
	    T("\\ud800x"), T("\\ud800\\u0041"), T("\\udc00"), T("abc\\"),
	};
	struct td_buf b;

	td_buf_init(&b);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		td_buf_reset(&b);
		cr_expect_eq(td_json_string_decode(good[i].in.s, good[i].in.len, &b), 0, "case %zu",
			     i);
		cr_expect_eq(b.len, strlen(good[i].out), "case %zu", i);
		cr_expect(b.len == 0 || memcmp(b.data, good[i].out, b.len) == 0, "case %zu", i);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		td_buf_reset(&b);
		cr_expect_eq(td_json_string_decode(bad[i].s, bad[i].len, &b), -TD_EINVAL,
			     "bad case %zu (%s)", i, bad[i].s);
	}
	/* \u0000 decodes to a NUL byte */
	td_buf_reset(&b);
	cr_expect_eq(td_json_string_decode("a\\u0000b", 8, &b), 0);
	cr_expect_eq(b.len, 3);
	cr_expect(memcmp(b.data, "a\0b", 3) == 0);
	td_buf_free(&b);
}

Test(json, iterate_object_members)
{
	const char *doc = " { \"a\" : 1 ,\"b\":{\"c\":[1,2,\"]}\"]},\"d\\\"e\":\"x\\\"y\\\\\","
			  "\"\\u0064ata\": [ {} ] , \"n\":null}";
	static const char *const keys[] = {"a", "b", "d\\\"e", "\\u0064ata", "n"};
	static const char *const values[] = {"1", "{\"c\":[1,2,\"]}\"]}", "\"x\\\"y\\\\\"",
					     "[ {} ]", "null"};
	struct td_json_iter it;
	struct td_json_member m;
	size_t n = 0;
	int rc;

	cr_assert(td_json_valid(doc, strlen(doc), 0));
	cr_assert_eq(td_json_iter_object(&it, doc, strlen(doc)), 0);
	while ((rc = td_json_iter_next(&it, &m)) > 0) {
		cr_assert_lt(n, 5);
		cr_expect_eq(m.key_len, strlen(keys[n]), "member %zu", n);
		cr_expect(memcmp(m.key, keys[n], m.key_len) == 0, "member %zu key", n);
		cr_expect_eq(m.value_len, strlen(values[n]), "member %zu", n);
		cr_expect(memcmp(m.value, values[n], m.value_len) == 0, "member %zu value %.*s", n,
			  (int)m.value_len, m.value);
		if (n == 2)
			cr_expect(td_json_key_equals(&m, "d\"e"));
		if (n == 3) {
			cr_expect(td_json_key_equals(&m, "data"));
			cr_expect_not(td_json_key_equals(&m, "dat"));
		}
		if (n == 0)
			cr_expect_not(td_json_key_equals(&m, "b"));
		n++;
	}
	cr_expect_eq(rc, 0);
	cr_expect_eq(n, 5);
	cr_expect_eq(td_json_iter_next(&it, &m), 0, "stays at the end");

	cr_assert_eq(td_json_iter_object(&it, "{ }", 3), 0);
	cr_expect_eq(td_json_iter_next(&it, &m), 0);
	cr_expect_eq(td_json_iter_object(&it, "[1]", 3), -TD_EINVAL);
	cr_expect_eq(td_json_iter_object(&it, "", 0), -TD_EINVAL);
	cr_expect_eq(td_json_iter_next(&it, &m), 0);
}

Test(json, iterate_broken_structure_fails_without_overreading)
{
	static const char *const broken[] = {
	    "{\"a\":",	   "{\"a\"",	 "{\"a",      "{\"a\":1",
	    "{\"a\":[1,2", "{\"a\":\"x", "{\"a\" 1}", "{\"a\":1 \"b\":2}",
	    "{1:2}",	   "{\"a\":}",	 "{\"a\":1,",
	};

	for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
		size_t n = strlen(broken[i]);
		char *s = malloc(n);
		struct td_json_iter it;
		struct td_json_member m;
		int rc;

		memcpy(s, broken[i], n);
		cr_assert_eq(td_json_iter_object(&it, s, n), 0);
		while ((rc = td_json_iter_next(&it, &m)) > 0)
			;
		cr_expect_eq(rc, -TD_EINVAL, "case %zu (%s)", i, broken[i]);
		free(s);
	}
}

Test(json, skip_values)
{
	static const char *const texts[] = {
	    "123,",  "\"a\\\"b\" ", "[1,[2,\"]\"],{}] x", "{\"a\":{\"b\":\"}\"}}}",
	    "true]", "  null"};
	static const size_t ends[] = {3, 6, 14, 15, 4, 6};
	static const char *const broken[] = {"", "  ", "\"abc", "[1,2", "{\"a\":\"}", ",", "]"};

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		size_t pos = 0;
		cr_expect_eq(td_json_skip(texts[i], strlen(texts[i]), &pos), 0, "case %zu", i);
		cr_expect_eq(pos, ends[i], "case %zu", i);
	}
	for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
		size_t pos = 0;
		cr_expect_eq(td_json_skip(broken[i], strlen(broken[i]), &pos), -TD_EINVAL,
			     "broken %zu", i);
	}
}

Test(json, base64_rfc4648_vectors)
{
	static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *const coded[] = {"",		"Zg==",	    "Zm8=",    "Zm9v",
					    "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
	struct td_buf b;

	td_buf_init(&b);
	for (size_t i = 0; i < 7; i++) {
		td_buf_reset(&b);
		cr_expect_eq(td_base64_encode(&b, plain[i], strlen(plain[i])), 0);
		cr_expect_str_eq(b.data, coded[i], "encode %zu", i);
		cr_expect_eq(td_base64_encoded_len(strlen(plain[i])), strlen(coded[i]));
		td_buf_reset(&b);
		cr_expect_eq(td_base64_decode(coded[i], strlen(coded[i]), &b, NULL, 0), 0);
		cr_expect_eq(b.len, strlen(plain[i]), "decode %zu", i);
		cr_expect(b.len == 0 || memcmp(b.data, plain[i], b.len) == 0, "decode %zu", i);
	}
	td_buf_free(&b);
}

Test(json, base64_round_trips_every_byte)
{
	unsigned char all[256];
	struct td_buf enc, dec;

	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)(255 - i);
	td_buf_init(&enc);
	td_buf_init(&dec);
	for (size_t n = 0; n <= 256; n += 1 + n / 3) {
		td_buf_reset(&enc);
		td_buf_reset(&dec);
		cr_assert_eq(td_base64_encode(&enc, all, n), 0);
		cr_assert_eq(enc.len, td_base64_encoded_len(n));
		cr_assert_eq(td_base64_decode(enc.data, enc.len, &dec, NULL, 0), 0);
		cr_assert_eq(dec.len, n);
		cr_assert(n == 0 || memcmp(dec.data, all, n) == 0, "length %zu", n);
	}
	td_buf_free(&enc);
	td_buf_free(&dec);
}

Test(json, base64_rejects_bad_input_with_a_reason)
{
	static const struct bad_doc cases[] = {
	    {T("Zm9"), "not a multiple of 4"},
	    {T("Zm9vY"), "not a multiple of 4"},
	    {T("Zm9v!A=="), "invalid character '!' at offset 4"},
	    {T("Zm 9"), "invalid character byte 0x20 at offset 2"},
	    {T("Zg=v"), "misplaced padding '=' at offset 2"},
	    {T("Z==="), "misplaced padding '=' at offset 1"},
	    {T("=AAA"), "misplaced padding '=' at offset 0"},
	    {T("Zg==Zg=="), "misplaced padding '=' at offset 2"},
	    {T("Zm9v\nZm9v"), "not a multiple of 4"},
	    {T("Zm9-"), "invalid character '-' at offset 3"},
	};
	char err[128];
	struct td_buf b;

	td_buf_init(&b);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		td_buf_reset(&b);
		err[0] = '\0';
		cr_expect_eq(
		    td_base64_decode(cases[i].text.s, cases[i].text.len, &b, err, sizeof(err)),
		    -TD_EINVAL, "case %zu", i);
		cr_expect(strstr(err, cases[i].words) != NULL, "case %zu: \"%s\" lacks \"%s\"", i,
			  err, cases[i].words);
	}
	td_buf_free(&b);
}

Test(json, utf8_validity)
{
	static const struct {
		struct jtext s;
		bool ok;
		size_t bad;
	} cases[] = {
	    {T(""), true, 0},
	    {T("ascii \x7f"), true, 0},
	    {T("\xc2\x80"), true, 0},
	    {T("\xdf\xbf"), true, 0},
	    {T("\xe0\xa0\x80"), true, 0},
	    {T("\xef\xbf\xbf"), true, 0},
	    {T("\xf0\x90\x80\x80"), true, 0},
	    {T("\xf4\x8f\xbf\xbf"), true, 0},
	    {T("a\0b"), true, 0},
	    {T("ab\x80"), false, 2},
	    {T("\xc1\xbf"), false, 0},
	    {T("x\xe0\x9f\xbf"), false, 1},
	    {T("xy\xed\xbf\xbf"), false, 2},
	    {T("\xf0\x8f\xbf\xbf"), false, 0},
	    {T("\xf4\x90\x80\x80"), false, 0},
	    {T("\xf5\x80\x80\x80"), false, 0},
	    {T("\xc3"), false, 0},
	    {T("\xe2\x82"), false, 0},
	    {T("\xc3\x28"), false, 0},
	    {T("\xfe"), false, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t bad = 999;
		cr_expect_eq(td_utf8_valid(cases[i].s.s, cases[i].s.len, &bad), cases[i].ok,
			     "case %zu", i);
		if (!cases[i].ok)
			cr_expect_eq(bad, cases[i].bad, "case %zu", i);
	}
}

Test(json, utf8_decode_code_points)
{
	unsigned cp = 0;

	cr_expect_eq(td_utf8_decode((const unsigned char *)"A", 1, &cp), 1);
	cr_expect_eq(cp, 0x41);
	cr_expect_eq(td_utf8_decode((const unsigned char *)"\xc3\xa9", 2, &cp), 2);
	cr_expect_eq(cp, 0xe9);
	cr_expect_eq(td_utf8_decode((const unsigned char *)"\xe2\x82\xac", 3, &cp), 3);
	cr_expect_eq(cp, 0x20ac);
	cr_expect_eq(td_utf8_decode((const unsigned char *)"\xf0\x9f\x98\x80", 4, &cp), 4);
	cr_expect_eq(cp, 0x1f600);
	cr_expect_eq(td_utf8_decode((const unsigned char *)"\xf0\x9f\x98\x80", 3, &cp), 0);
	cr_expect_eq(td_utf8_decode((const unsigned char *)"", 0, &cp), 0);
}

Test(json, buf_appends_and_steals)
{
	struct td_buf b;
	char *s;
	size_t len = 0;

	td_buf_init(&b);
	cr_expect_eq(td_buf_appends(&b, "ab"), 0);
	cr_expect_eq(td_buf_appendc(&b, 'c'), 0);
	cr_expect_eq(td_buf_append(&b, "d\0e", 3), 0);
	cr_expect_eq(b.len, 6);
	cr_expect_eq(b.data[6], '\0');
	cr_expect_eq(td_buf_printf(&b, "-%d-%s", 42, "x"), 0);
	cr_expect_eq(b.len, 11);
	cr_expect(memcmp(b.data, "abcd\0e-42-x", 12) == 0);
	/* a formatted piece larger than the spare room */
	cr_expect_eq(td_buf_printf(&b, "%0300d", 7), 0);
	cr_expect_eq(b.len, 311);
	cr_expect_eq(b.data[310], '7');
	cr_expect_eq(b.data[311], '\0');
	for (int i = 0; i < 10000; i++)
		td_buf_appendc(&b, (char)('a' + i % 26));
	cr_expect_eq(b.len, 10311);
	cr_expect_not(td_buf_failed(&b));
	s = td_buf_steal(&b, &len);
	cr_assert_not_null(s);
	cr_expect_eq(len, 10311);
	cr_expect_eq(s[10310], 'a' + 9999 % 26);
	free(s);
	cr_expect_null(b.data);
	cr_expect_eq(b.len, 0);
	/* an empty buffer steals as "" */
	s = td_buf_steal(&b, &len);
	cr_assert_not_null(s);
	cr_expect_str_eq(s, "");
	cr_expect_eq(len, 0);
	free(s);
	/* a first reservation already gives a C string */
	cr_assert_eq(td_buf_reserve(&b, 0), 0);
	cr_expect_str_eq(b.data, "");
	td_buf_appends(&b, "xyz");
	td_buf_reset(&b);
	cr_expect_eq(b.len, 0);
	cr_expect_str_eq(b.data, "");
	td_buf_free(&b);
	td_buf_free(&b);
}

Test(json, buf_failure_is_sticky)
{
	struct td_buf b;

	td_buf_init(&b);
	td_buf_appends(&b, "keep");
	cr_expect_eq(td_buf_reserve(&b, SIZE_MAX - 2), -TD_ENOMEM);
	cr_expect(td_buf_failed(&b));
	cr_expect_eq(td_buf_appends(&b, "more"), -TD_ENOMEM);
	cr_expect_eq(td_buf_appendc(&b, 'x'), -TD_ENOMEM);
	cr_expect_eq(td_json_append_cstr(&b, "y"), -TD_ENOMEM);
	cr_expect_eq(td_base64_encode(&b, "z", 1), -TD_ENOMEM);
	cr_expect_eq(b.len, 4, "nothing was appended after the failure");
	cr_expect_null(td_buf_steal(&b, NULL));
	cr_expect_null(b.data);
	cr_expect_not(td_buf_failed(&b));
	td_buf_free(&b);
}

static const char *join_text(const void *arg, size_t i, size_t *len)
{
	const char *const *texts = arg;
	*len = strlen(texts[i]);
	return texts[i];
}

Test(json, array_join)
{
	static const char *const texts[] = {"{\"a\":1}", "[]", "\"s\"", "2"};
	struct {
		size_t n;
		const char *want;
	} cases[] = {
	    {0, "[]"},
	    {1, "[{\"a\":1}]"},
	    {4, "[{\"a\":1},[],\"s\",2]"},
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		size_t len = 0;
		char *out = td_json_array_join(cases[k].n, join_text, texts, &len);
		cr_assert_not_null(out);
		cr_expect_str_eq(out, cases[k].want);
		cr_expect_eq(len, strlen(cases[k].want));
		cr_expect(td_json_valid(out, len, 0));
		free(out);
	}
}
