/*
 * libFuzzer target: a pattern and an event, compiled and matched, and compared with the
 * simple reference matcher (router/pattern_reference.h) whenever the reference can judge.
 *
 * Two input forms, chosen by the first byte:
 *   - even: raw texts, the pattern up to the first NUL byte (or newline), the event after
 *     it: exercises both parsers on arbitrary bytes;
 *   - odd: the remaining bytes drive a small grammar that writes a valid pattern (all
 *     operators, nested objects, $or) and an event (nested objects and arrays over the
 *     same keys and values): exercises matching semantics and array consistency.
 * Checks: no crash or out-of-bounds read; the fast scan agrees with the strict one on
 * every event the strict scan accepts; the engine agrees with the reference when both
 * texts are plain (no duplicate keys, numbers of at most 15 significant digits).
 */
#include <triggerd/errors.h>
#include <triggerd/pattern.h>

#include "../../router/pattern_reference.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rd {
	const uint8_t *p;
	size_t n;
};

static unsigned take(struct rd *r, unsigned mod)
{
	if (!r->n)
		return 0;
	r->n--;
	return *r->p++ % mod;
}

struct out {
	char buf[4096];
	size_t n;
};

static void put(struct out *o, const char *s)
{
	size_t k = strlen(s);
	if (o->n + k < sizeof(o->buf)) {
		memcpy(o->buf + o->n, s, k);
		o->n += k;
		o->buf[o->n] = 0;
	}
}

static const char *const keys[] = {"a", "b", "c", "d"};

static const char *const alts[] = {
    "\"x\"",
    "\"y\"",
    "\"xy\"",
    "\"\"",
    "0",
    "1",
    "1.5",
    "-1",
    "true",
    "false",
    "null",
    "{\"prefix\":\"x\"}",
    "{\"prefix\":\"\"}",
    "{\"suffix\":\"y\"}",
    "{\"prefix\":{\"equals-ignore-case\":\"X\"}}",
    "{\"suffix\":{\"equals-ignore-case\":\"Y\"}}",
    "{\"equals-ignore-case\":\"XY\"}",
    "{\"wildcard\":\"x*\"}",
    "{\"wildcard\":\"*y*\"}",
    "{\"wildcard\":\"\\\\**\"}",
    "{\"anything-but\":\"x\"}",
    "{\"anything-but\":[\"x\",\"y\"]}",
    "{\"anything-but\":1}",
    "{\"anything-but\":[0,1.5]}",
    "{\"anything-but\":{\"prefix\":\"x\"}}",
    "{\"anything-but\":{\"suffix\":\"y\"}}",
    "{\"anything-but\":{\"equals-ignore-case\":[\"X\"]}}",
    "{\"anything-but\":{\"wildcard\":\"*y\"}}",
    "{\"numeric\":[\">\",0]}",
    "{\"numeric\":[\">=\",0,\"<\",1.5]}",
    "{\"numeric\":[\"=\",1]}",
    "{\"numeric\":[\"<=\",-1]}",
    "{\"exists\":true}",
    "{\"exists\":false}",
    "{\"cidr\":\"10.0.0.0/8\"}",
    "{\"cidr\":\"2001:db8::/32\"}",
};

static const char *const values[] = {"\"x\"", "\"y\"",	      "\"xy\"", "\"X\"", "\"*y\"",
				     "\"\"",  "\"10.1.2.3\"", "0",	"1",	 "1.5",
				     "-1",    "1e0",	      "-0",	"true",	 "false",
				     "null",  "\"Xy\"",	      "\"yx\"", "15e-1", "\"2001:db8::9\""};

static void gen_pattern(struct rd *r, struct out *o, int depth)
{
	unsigned used = 0, n = 1 + take(r, 3);
	put(o, "{");
	int first = 1;
	for (unsigned i = 0; i < n; i++) {
		unsigned k = take(r, 4);
		if (used & (1u << k))
			continue;
		used |= 1u << k;
		if (!first)
			put(o, ",");
		first = 0;
		put(o, "\"");
		put(o, keys[k]);
		put(o, "\":");
		if (depth < 2 && take(r, 4) == 0) {
			gen_pattern(r, o, depth + 1);
			continue;
		}
		put(o, "[");
		unsigned na = 1 + take(r, 3);
		for (unsigned j = 0; j < na; j++) {
			if (j)
				put(o, ",");
			put(o, alts[take(r, sizeof(alts) / sizeof(alts[0]))]);
		}
		put(o, "]");
	}
	if (depth < 2 && take(r, 5) == 0) {
		put(o, first ? "" : ",");
		put(o, "\"$or\":[");
		unsigned no = 2 + take(r, 2);
		for (unsigned j = 0; j < no; j++) {
			if (j)
				put(o, ",");
			gen_pattern(r, o, depth + 1);
		}
		put(o, "]");
	}
	put(o, "}");
}

static void gen_value(struct rd *r, struct out *o, int depth);

/* Filler nobody names, long enough for the 64-byte block paths of the scanner. */
static const char *const filler[] = {
    "\"]}\\\"[{\"",
    "\"\\\\\"",
    "{\"q\":[1,\"x\",{}]}",
    "12.5e-3",
    "\"\xc3\xa9\xe2\x82\xac\"",
    "\"a\\\"b\"",
    "[[],[[\"]\"]]]",
    "\"................................\"",
    "null",
};

static void gen_object(struct rd *r, struct out *o, int depth)
{
	unsigned used = 0, n = take(r, 5);
	int first = 1;
	put(o, "{");
	if (take(r, 3) == 0) {
		unsigned k = take(r, 16);
		put(o, "\"zz\":[");
		for (unsigned i = 0; i < k; i++) {
			if (i)
				put(o, ",");
			put(o, filler[take(r, sizeof(filler) / sizeof(filler[0]))]);
		}
		put(o, "]");
		first = 0;
	}
	for (unsigned i = 0; i < n; i++) {
		unsigned k = take(r, 4);
		if (used & (1u << k))
			continue;
		used |= 1u << k;
		if (!first)
			put(o, ",");
		first = 0;
		put(o, "\"");
		put(o, keys[k]);
		put(o, "\":");
		gen_value(r, o, depth + 1);
	}
	put(o, "}");
}

static void gen_value(struct rd *r, struct out *o, int depth)
{
	unsigned t = take(r, 8);
	if (depth < 4 && t == 0) {
		gen_object(r, o, depth);
	} else if (depth < 4 && t == 1) {
		unsigned n = take(r, 4);
		put(o, "[");
		for (unsigned i = 0; i < n; i++) {
			if (i)
				put(o, ",");
			gen_value(r, o, depth + 1);
		}
		put(o, "]");
	} else {
		put(o, values[take(r, sizeof(values) / sizeof(values[0]))]);
	}
}

/* Numbers the reference (doubles) judges like the engine (exact decimals). */
static int plain_numbers(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!(s[i] >= '0' && s[i] <= '9'))
			continue;
		size_t digits = 0;
		while (i < n && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.'))
			digits += s[i++] != '.';
		if (digits > 15)
			return 0;
		if (i < n && (s[i] == 'e' || s[i] == 'E')) {
			i++;
			if (i < n && (s[i] == '+' || s[i] == '-'))
				i++;
			size_t ed = 0;
			while (i < n && s[i] >= '0' && s[i] <= '9')
				ed++, i++;
			if (ed > 2)
				return 0;
		}
	}
	return 1;
}

static void check(const char *pat, size_t plen, const char *ev, size_t elen)
{
	char err[256];
	struct td_pattern_set *set = td_pattern_set_create();
	if (!set)
		return;
	if (td_pattern_set_add(set, 9, pat, plen, err, sizeof(err)) < 0 ||
	    td_pattern_set_compile(set) < 0) {
		td_pattern_set_destroy(set);
		return;
	}
	struct td_matcher *m = td_matcher_create(set);
	if (!m)
		abort();
	const unsigned *ids;
	td_matcher_set_strict(m, 1);
	int strict = td_matcher_match(m, ev, elen, &ids, err, sizeof(err));
	if (strict > 1 || (strict == 1 && ids[0] != 9) || (strict < 0 && strict != -TD_EINVAL))
		abort();
	td_matcher_set_strict(m, 0);
	int fast = td_matcher_match(m, ev, elen, &ids, err, sizeof(err));
	if (strict >= 0 && fast != strict)
		abort(); /* the fast scan must agree on valid events */
	if (fast < 0 && fast != -TD_EINVAL)
		abort();
	if (strict >= 0 && plain_numbers(pat, plen) && plain_numbers(ev, elen)) {
		json_error_t e;
		json_t *pj = json_loadb(pat, plen, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &e);
		json_t *ej = json_loadb(
		    ev, elen, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES,
		    &e);
		if (pj && ej) {
			int want = tdref_match(pj, ej, 200000);
			if (want >= 0 && want != strict) {
				fprintf(stderr,
					"engine %d reference %d\npattern %.*s\nevent %.*s\n",
					strict, want, (int)plen, pat, (int)elen, ev);
				abort();
			}
		}
		json_decref(pj);
		json_decref(ej);
	}
	td_matcher_destroy(m);
	td_pattern_set_destroy(set);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 1) {
		struct rd r = {data + 1, size - 1};
		static struct out pat, ev;
		pat.n = ev.n = 0;
		pat.buf[0] = ev.buf[0] = 0;
		gen_pattern(&r, &pat, 0);
		gen_object(&r, &ev, 0);
		check(pat.buf, pat.n, ev.buf, ev.n);
		return 0;
	}
	data++;
	size--;
	const uint8_t *sep = memchr(data, 0, size);
	if (!sep)
		sep = memchr(data, '\n', size);
	size_t plen = sep ? (size_t)(sep - data) : size;
	size_t elen = sep ? size - plen - 1 : 0;
	/* exact-size copies, so that any read past the end is caught by ASan */
	char *pat = malloc(plen ? plen : 1), *ev = malloc(elen ? elen : 1);
	if (pat && ev) {
		memcpy(pat, data, plen);
		if (elen)
			memcpy(ev, sep + 1, elen);
		check(pat, plen, ev, elen);
	}
	free(pat);
	free(ev);
	return 0;
}
