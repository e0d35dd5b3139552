/*
 * A small JSON reader for patterns (RFC 8259, strict): it builds a tree that keeps
 * each number's text, which the pattern compiler needs for exact decimal matching
 * (jansson would round 12345678901234567890 or refuse it), and reports errors by line
 * and column. Patterns are configuration: this runs at compile time only, never on the
 * matching path. Nesting is limited so that hostile input cannot exhaust the stack.
 */
#include "pattern_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PJ_MAX_NESTING 256

struct reader {
	const char *text, *p, *end;
	const char *line_start;
	int line;
	char *err;
	size_t errlen;
	int failed;
};

static void fail_at(struct reader *r, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail_at(struct reader *r, const char *at, const char *fmt, ...)
{
	if (r->failed)
		return;
	r->failed = 1;
	if (!r->err || r->errlen == 0)
		return;
	/* the column of `at` on the current line */
	int line = r->line;
	const char *ls = r->line_start;
	if (at < ls) {
		/* error refers to an earlier spot on a previous line: recount */
		line = 1;
		ls = r->text;
		for (const char *q = r->text; q < at; q++)
			if (*q == '\n') {
				line++;
				ls = q + 1;
			}
	}
	int n = snprintf(r->err, r->errlen, "invalid JSON at line %d, column %d: ", line,
			 (int)(at - ls) + 1);
	if (n < 0 || (size_t)n >= r->errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->err + n, r->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

static void skip_ws(struct reader *r)
{
	while (r->p < r->end) {
		char c = *r->p;
		if (c == '\n') {
			r->line++;
			r->line_start = r->p + 1;
		} else if (c != ' ' && c != '\t' && c != '\r') {
			return;
		}
		r->p++;
	}
}

static const char *describe(struct reader *r, char *buf, size_t cap)
{
	if (r->p >= r->end)
		return "end of text";
	unsigned char c = (unsigned char)*r->p;
	if (c >= 0x21 && c < 0x7f)
		snprintf(buf, cap, "'%c'", c);
	else
		snprintf(buf, cap, "byte 0x%02x", c);
	return buf;
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

static int read_hex4(struct reader *r, const char *at, unsigned *out)
{
	if (r->end - at < 4) {
		fail_at(r, at, "\\u needs four hex digits");
		return -1;
	}
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hexval(at[i]);
		if (h < 0) {
			fail_at(r, at + i, "\\u needs four hex digits");
			return -1;
		}
		v = v << 4 | (unsigned)h;
	}
	*out = v;
	return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Reads a string (r->p at the opening quote); returns a malloc'd decoded copy. */
static char *read_string(struct reader *r, size_t *outlen)
{
	const char *start = ++r->p;
	/* decoded text is never longer than the raw text */
	const char *q = start;
	while (q < r->end && *q != '"') {
		if (*q == '\\' && q + 1 < r->end)
			q++;
		q++;
	}
	char *out = malloc((size_t)(q - start) + 1);
	if (!out) {
		fail_at(r, start, "out of memory");
		return NULL;
	}
	size_t n = 0;
	const char *p = start;
	for (;;) {
		if (p >= r->end) {
			fail_at(r, start - 1, "unterminated string");
			goto fail;
		}
		unsigned char c = (unsigned char)*p;
		if (c == '"') {
			p++;
			break;
		}
		if (c < 0x20) {
			fail_at(r, p, "control character 0x%02x in a string (escape it)", c);
			goto fail;
		}
		if (c == '\\') {
			if (p + 1 >= r->end) {
				fail_at(r, start - 1, "unterminated string");
				goto fail;
			}
			char e = p[1];
			const char *esc = "\"\\/bfnrt";
			const char *val = "\"\\/\b\f\n\r\t";
			const char *hit = e ? strchr(esc, e) : NULL;
			if (hit) {
				out[n++] = val[hit - esc];
				p += 2;
				continue;
			}
			if (e != 'u') {
				fail_at(r, p, "invalid escape \\%c", e);
				goto fail;
			}
			unsigned cp;
			if (read_hex4(r, p + 2, &cp) < 0)
				goto fail;
			p += 6;
			if (cp >= 0xdc00 && cp <= 0xdfff) {
				fail_at(r, p - 6, "lone low surrogate \\u%04x", cp);
				goto fail;
			}
			if (cp >= 0xd800 && cp <= 0xdbff) {
				unsigned lo;
				if (r->end - p < 6 || p[0] != '\\' || p[1] != 'u') {
					fail_at(r, p - 6,
						"high surrogate \\u%04x without a low one", cp);
					goto fail;
				}
				if (read_hex4(r, p + 2, &lo) < 0)
					goto fail;
				if (lo < 0xdc00 || lo > 0xdfff) {
					fail_at(r, p, "high surrogate \\u%04x followed by \\u%04x",
						cp, lo);
					goto fail;
				}
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				p += 6;
			}
			n += put_utf8(out + n, cp);
			continue;
		}
		if (c < 0x80) {
			out[n++] = (char)c;
			p++;
			continue;
		}
		/* a UTF-8 sequence: validate it as a whole */
		size_t k = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
		if ((size_t)(r->end - p) < k || !td_pat_utf8_valid(p, k)) {
			fail_at(r, p, "invalid UTF-8 in a string");
			goto fail;
		}
		memcpy(out + n, p, k);
		n += k;
		p += k;
	}
	out[n] = 0;
	*outlen = n;
	r->p = p;
	return out;
fail:
	free(out);
	return NULL;
}

static int read_number(struct reader *r, struct td_pj *v)
{
	const char *s = r->p, *p = r->p;
	if (p < r->end && *p == '-')
		p++;
	if (p >= r->end || *p < '0' || *p > '9') {
		fail_at(r, p, "a number needs a digit here");
		return -1;
	}
	if (*p == '0') {
		p++;
		if (p < r->end && *p >= '0' && *p <= '9') {
			fail_at(r, s, "numbers may not have leading zeros");
			return -1;
		}
	} else {
		while (p < r->end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < r->end && *p == '.') {
		p++;
		if (p >= r->end || *p < '0' || *p > '9') {
			fail_at(r, p, "a digit must follow the decimal point");
			return -1;
		}
		while (p < r->end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < r->end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < r->end && (*p == '+' || *p == '-'))
			p++;
		if (p >= r->end || *p < '0' || *p > '9') {
			fail_at(r, p, "a digit must follow the exponent");
			return -1;
		}
		while (p < r->end && *p >= '0' && *p <= '9')
			p++;
	}
	v->type = TD_PJ_NUMBER;
	v->len = (size_t)(p - s);
	v->str = malloc(v->len + 1);
	if (!v->str) {
		fail_at(r, s, "out of memory");
		return -1;
	}
	memcpy(v->str, s, v->len);
	v->str[v->len] = 0;
	r->p = p;
	return 0;
}

static int read_value(struct reader *r, struct td_pj *v, int depth);

static int read_array(struct reader *r, struct td_pj *v, int depth)
{
	size_t cap = 0;
	v->type = TD_PJ_ARRAY;
	r->p++;
	skip_ws(r);
	if (r->p < r->end && *r->p == ']') {
		r->p++;
		return 0;
	}
	for (;;) {
		if (v->len == cap) {
			size_t ncap = cap ? cap * 2 : 4;
			struct td_pj *n = realloc(v->items, ncap * sizeof(*n));
			if (!n) {
				fail_at(r, r->p, "out of memory");
				return -1;
			}
			v->items = n;
			cap = ncap;
		}
		struct td_pj *item = &v->items[v->len];
		memset(item, 0, sizeof(*item));
		v->len++;
		skip_ws(r);
		if (read_value(r, item, depth + 1) < 0)
			return -1;
		skip_ws(r);
		char buf[16];
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			continue;
		}
		if (r->p < r->end && *r->p == ']') {
			r->p++;
			return 0;
		}
		fail_at(r, r->p, "expected ',' or ']' in an array, found %s",
			describe(r, buf, sizeof(buf)));
		return -1;
	}
}

static int read_object(struct reader *r, struct td_pj *v, int depth)
{
	size_t cap = 0;
	char buf[16];
	v->type = TD_PJ_OBJECT;
	r->p++;
	skip_ws(r);
	if (r->p < r->end && *r->p == '}') {
		r->p++;
		return 0;
	}
	for (;;) {
		skip_ws(r);
		if (r->p >= r->end || *r->p != '"') {
			fail_at(r, r->p, "expected a string key, found %s",
				describe(r, buf, sizeof(buf)));
			return -1;
		}
		if (v->len == cap) {
			size_t ncap = cap ? cap * 2 : 4;
			struct td_pj_member *n = realloc(v->members, ncap * sizeof(*n));
			if (!n) {
				fail_at(r, r->p, "out of memory");
				return -1;
			}
			v->members = n;
			cap = ncap;
		}
		struct td_pj_member *m = &v->members[v->len];
		memset(m, 0, sizeof(*m));
		v->len++;
		m->key = read_string(r, &m->klen);
		if (!m->key)
			return -1;
		skip_ws(r);
		if (r->p >= r->end || *r->p != ':') {
			fail_at(r, r->p, "expected ':' after a key, found %s",
				describe(r, buf, sizeof(buf)));
			return -1;
		}
		r->p++;
		skip_ws(r);
		if (read_value(r, &m->value, depth + 1) < 0)
			return -1;
		skip_ws(r);
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			continue;
		}
		if (r->p < r->end && *r->p == '}') {
			r->p++;
			return 0;
		}
		fail_at(r, r->p, "expected ',' or '}' in an object, found %s",
			describe(r, buf, sizeof(buf)));
		return -1;
	}
}

static int literal(struct reader *r, const char *word, enum td_pj_type t, struct td_pj *v)
{
	size_t n = strlen(word);
	if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0) {
		fail_at(r, r->p, "invalid literal (expected %s)", word);
		return -1;
	}
	r->p += n;
	v->type = t;
	return 0;
}

static int read_value(struct reader *r, struct td_pj *v, int depth)
{
	char buf[16];
	if (depth > PJ_MAX_NESTING) {
		fail_at(r, r->p, "nesting deeper than %d levels", PJ_MAX_NESTING);
		return -1;
	}
	v->line = r->line;
	v->col = (int)(r->p - r->line_start) + 1;
	if (r->p >= r->end) {
		fail_at(r, r->p, "expected a value, found end of text");
		return -1;
	}
	switch (*r->p) {
	case '{':
		return read_object(r, v, depth);
	case '[':
		return read_array(r, v, depth);
	case '"':
		v->type = TD_PJ_STRING;
		v->str = read_string(r, &v->len);
		return v->str ? 0 : -1;
	case 't':
		return literal(r, "true", TD_PJ_TRUE, v);
	case 'f':
		return literal(r, "false", TD_PJ_FALSE, v);
	case 'n':
		return literal(r, "null", TD_PJ_NULL, v);
	default:
		if (*r->p == '-' || (*r->p >= '0' && *r->p <= '9'))
			return read_number(r, v);
		fail_at(r, r->p, "expected a value, found %s", describe(r, buf, sizeof(buf)));
		return -1;
	}
}

static void free_inner(struct td_pj *v)
{
	if (v->type == TD_PJ_ARRAY) {
		for (size_t i = 0; i < v->len; i++)
			free_inner(&v->items[i]);
		free(v->items);
	} else if (v->type == TD_PJ_OBJECT) {
		for (size_t i = 0; i < v->len; i++) {
			free(v->members[i].key);
			free_inner(&v->members[i].value);
		}
		free(v->members);
	} else {
		free(v->str);
	}
}

void td_pj_free(struct td_pj *v)
{
	if (!v)
		return;
	free_inner(v);
	free(v);
}

struct td_pj *td_pj_parse(const char *text, size_t len, char *err, size_t errlen)
{
	if (!text) {
		if (err && errlen)
			snprintf(err, errlen, "no text");
		return NULL;
	}
	struct reader r = {
	    .text = text,
	    .p = text,
	    .end = text + len,
	    .line_start = text,
	    .line = 1,
	    .err = err,
	    .errlen = errlen,
	};
	struct td_pj *v = calloc(1, sizeof(*v));
	if (!v) {
		if (err && errlen)
			snprintf(err, errlen, "out of memory");
		return NULL;
	}
	skip_ws(&r);
	if (read_value(&r, v, 0) < 0)
		goto fail;
	skip_ws(&r);
	if (r.p != r.end) {
		char buf[16];
		fail_at(&r, r.p, "unexpected %s after the value", describe(&r, buf, sizeof(buf)));
		goto fail;
	}
	return v;
fail:
	td_pj_free(v);
	return NULL;
}

const char *td_pj_type_name(enum td_pj_type t)
{
	switch (t) {
	case TD_PJ_NULL:
		return "null";
	case TD_PJ_TRUE:
	case TD_PJ_FALSE:
		return "a boolean";
	case TD_PJ_NUMBER:
		return "a number";
	case TD_PJ_STRING:
		return "a string";
	case TD_PJ_ARRAY:
		return "an array";
	case TD_PJ_OBJECT:
		return "an object";
	}
	return "a value";
}
