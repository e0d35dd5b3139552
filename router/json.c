/*
 * JSON helpers (see json.h): a growable buffer, a strict validator, a string escaper and
 * decoder, an object member walker, base64 and UTF-8 checks. No DOM anywhere.
 *
 * The validator is iterative: a small stack of container kinds (one byte per level,
 * on the C stack, at most TD_JSON_MAX_DEPTH) replaces recursion, so hostile nesting
 * costs neither stack depth nor allocations. Every read is bounds-checked against the
 * given length; nothing relies on a terminating NUL. The error path alone computes the
 * line and column, from the offset where the problem was found.
 *
 * The skipper and the member walker check structure only (quotes, brackets, bounds):
 * they are meant for text that was validated once, and stay memory-safe on anything.
 */
#include "json.h"

#include <triggerd/errors.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* td_buf */

void td_buf_init(struct td_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->oom = false;
}

void td_buf_free(struct td_buf *b)
{
	free(b->data);
	td_buf_init(b);
}

void td_buf_reset(struct td_buf *b)
{
	b->len = 0;
	b->oom = false;
	if (b->data)
		b->data[0] = '\0';
}

int td_buf_reserve(struct td_buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (b->oom)
		return -TD_ENOMEM;
	if (extra > SIZE_MAX - b->len - 1)
		goto fail;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap < 64 ? 64 : b->cap;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	p = realloc(b->data, cap);
	if (!p)
		goto fail;
	b->data = p;
	b->cap = cap;
	b->data[b->len] = '\0';
	return 0;
fail:
	b->oom = true;
	return -TD_ENOMEM;
}

int td_buf_append(struct td_buf *b, const void *p, size_t n)
{
	if (td_buf_reserve(b, n) < 0)
		return -TD_ENOMEM;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int td_buf_appends(struct td_buf *b, const char *s)
{
	return td_buf_append(b, s, strlen(s));
}

int td_buf_appendc(struct td_buf *b, char c)
{
	if (b->len + 1 >= b->cap && td_buf_reserve(b, 1) < 0)
		return -TD_ENOMEM;
	if (b->oom)
		return -TD_ENOMEM;
	b->data[b->len++] = c;
	b->data[b->len] = '\0';
	return 0;
}

int td_buf_printf(struct td_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (td_buf_reserve(b, 64) < 0)
		return -TD_ENOMEM;
	va_start(ap, fmt);
	n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->data[b->len] = '\0';
		return -TD_EINVAL;
	}
	if ((size_t)n >= b->cap - b->len) {
		if (td_buf_reserve(b, (size_t)n) < 0)
			return -TD_ENOMEM;
		va_start(ap, fmt);
		vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
	return 0;
}

char *td_buf_steal(struct td_buf *b, size_t *len)
{
	char *p;

	if (b->oom) {
		td_buf_free(b);
		return NULL;
	}
	if (!b->data && td_buf_reserve(b, 0) < 0) {
		td_buf_free(b);
		return NULL;
	}
	b->data[b->len] = '\0';
	p = b->data;
	if (len)
		*len = b->len;
	td_buf_init(b);
	return p;
}

/* UTF-8 */

size_t td_utf8_decode(const unsigned char *p, size_t n, unsigned *cp)
{
	unsigned c, v;

	if (n == 0)
		return 0;
	c = p[0];
	if (c < 0x80) {
		v = c;
		goto one;
	}
	if (c < 0xc2)
		return 0; /* a continuation byte, or an overlong 2-byte form */
	if (c < 0xe0) {
		if (n < 2 || (p[1] & 0xc0) != 0x80)
			return 0;
		if (cp)
			*cp = ((c & 0x1f) << 6) | (p[1] & 0x3f);
		return 2;
	}
	if (c < 0xf0) {
		if (n < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
			return 0;
		v = ((c & 0x0f) << 12) | ((p[1] & 0x3fu) << 6) | (p[2] & 0x3fu);
		if (v < 0x800 || (v >= 0xd800 && v <= 0xdfff))
			return 0;
		if (cp)
			*cp = v;
		return 3;
	}
	if (c < 0xf5) {
		if (n < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
		    (p[3] & 0xc0) != 0x80)
			return 0;
		v = ((c & 0x07) << 18) | ((p[1] & 0x3fu) << 12) | ((p[2] & 0x3fu) << 6) |
		    (p[3] & 0x3fu);
		if (v < 0x10000 || v > 0x10ffff)
			return 0;
		if (cp)
			*cp = v;
		return 4;
	}
	return 0;
one:
	if (cp)
		*cp = v;
	return 1;
}

bool td_utf8_valid(const void *p, size_t n, size_t *bad)
{
	const unsigned char *s = p;
	size_t i = 0, k;

	while (i < n) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		k = td_utf8_decode(s + i, n - i, NULL);
		if (k == 0) {
			if (bad)
				*bad = i;
			return false;
		}
		i += k;
	}
	return true;
}

static void put_utf8(unsigned cp, char out[4], size_t *n)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		*n = 1;
	} else if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		*n = 2;
	} else if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		*n = 3;
	} else {
		out[0] = (char)(0xf0 | (cp >> 18));
		out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[3] = (char)(0x80 | (cp & 0x3f));
		*n = 4;
	}
}

/* The validator */

struct vstate {
	const unsigned char *s;
	size_t len;
	size_t pos;
	char *err;
	size_t errlen;
};

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Four hex digits at s[at..at+4) as a number, or -1. */
static long hex4(const unsigned char *s, size_t len, size_t at)
{
	long v = 0;

	if (at > len || len - at < 4)
		return -1;
	for (size_t i = 0; i < 4; i++) {
		int h = hexval(s[at + i]);
		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

static int vfail(struct vstate *v, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int vfail(struct vstate *v, size_t at, const char *fmt, ...)
{
	size_t line = 1, col = 1, n;
	va_list ap;
	int k;

	if (!v->err || v->errlen == 0)
		return -TD_EINVAL;
	if (at > v->len)
		at = v->len;
	for (size_t i = 0; i < at; i++) {
		if (v->s[i] == '\n') {
			line++;
			col = 1;
		} else if ((v->s[i] & 0xc0) != 0x80) {
			col++;
		}
	}
	k = snprintf(v->err, v->errlen, "line %zu, column %zu (byte %zu): ", line, col, at);
	n = k < 0 ? 0 : (size_t)k;
	if (n < v->errlen) {
		va_start(ap, fmt);
		vsnprintf(v->err + n, v->errlen - n, fmt, ap);
		va_end(ap);
	}
	return -TD_EINVAL;
}

/* A description of the byte at pos for messages: "'x'", "byte 0xff" or "end of input". */
static const char *found(const struct vstate *v, size_t pos, char buf[16])
{
	if (pos >= v->len)
		return "end of input";
	if (v->s[pos] > 0x20 && v->s[pos] < 0x7f)
		snprintf(buf, 16, "'%c'", v->s[pos]);
	else
		snprintf(buf, 16, "byte 0x%02x", v->s[pos]);
	return buf;
}

static void skip_ws(const unsigned char *s, size_t len, size_t *pos)
{
	size_t p = *pos;

	while (p < len && (s[p] == ' ' || s[p] == '\n' || s[p] == '\t' || s[p] == '\r'))
		p++;
	*pos = p;
}

/*
 * The end of the run of plain string bytes from p (printable ASCII other than '"' and
 * '\\'): the bytes the validator and the escaper pass over unchanged. Eight bytes at a
 * time while the word holds no special byte (the classic byte tests on a 64-bit word:
 * a high bit of the result is set exactly when the word holds a byte >= 0x80, < 0x20,
 * '"' or '\\'), then byte by byte from the first word that does. Reads stay below len.
 */
#define LANES(c) (0x0101010101010101ULL * (unsigned char)(c))
static size_t plain_run(const unsigned char *s, size_t p, size_t len)
{
	while (len - p >= 8) {
		uint64_t x, q, b;
		memcpy(&x, s + p, 8);
		q = x ^ LANES('"');
		b = x ^ LANES('\\');
		if (((x | ((x - LANES(0x20)) & ~x) | ((q - LANES(1)) & ~q) |
		      ((b - LANES(1)) & ~b)) &
		     LANES(0x80)) != 0)
			break;
		p += 8;
	}
	while (p < len && s[p] >= 0x20 && s[p] < 0x80 && s[p] != '"' && s[p] != '\\')
		p++;
	return p;
}

static int v_string(struct vstate *v)
{
	const unsigned char *s = v->s;
	size_t len = v->len, start = v->pos, p = v->pos + 1, k;
	long u, lo;
	unsigned char c;

	for (;;) {
		p = plain_run(s, p, len);
		if (p >= len)
			return vfail(v, start, "unterminated string");
		c = s[p];
		if (c == '"')
			break;
		if (c == '\\') {
			if (p + 1 >= len)
				return vfail(v, start, "unterminated string");
			switch (s[p + 1]) {
			case '"':
			case '\\':
			case '/':
			case 'b':
			case 'f':
			case 'n':
			case 'r':
			case 't':
				p += 2;
				continue;
			case 'u':
				break;
			default: {
				char buf[16];
				return vfail(v, p, "invalid escape: backslash followed by %s",
					     found(v, p + 1, buf));
			}
			}
			u = hex4(s, len, p + 2);
			if (u < 0)
				return vfail(v, p, "invalid \\u escape: expected 4 hex digits");
			if (u >= 0xdc00 && u <= 0xdfff)
				return vfail(v, p, "lone low surrogate \\u%04lX in a string", u);
			if (u >= 0xd800 && u <= 0xdbff) {
				lo = -1;
				if (p + 7 < len && s[p + 6] == '\\' && s[p + 7] == 'u')
					lo = hex4(s, len, p + 8);
				if (lo < 0xdc00 || lo > 0xdfff)
					return vfail(
					    v, p,
					    "high surrogate \\u%04lX not followed by a low "
					    "surrogate escape",
					    u);
				p += 12;
			} else {
				p += 6;
			}
			continue;
		}
		if (c < 0x20)
			return vfail(
			    v, p, "raw control character 0x%02x in a string (must be escaped)", c);
		k = td_utf8_decode(s + p, len - p, NULL);
		if (k == 0)
			return vfail(v, p, "invalid UTF-8 byte 0x%02x in a string", c);
		p += k;
	}
	v->pos = p + 1;
	return 0;
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int v_number(struct vstate *v)
{
	const unsigned char *s = v->s;
	size_t len = v->len, p = v->pos;
	char buf[16];

	if (s[p] == '-')
		p++;
	if (p >= len || !is_digit(s[p]))
		return vfail(v, p, "expected a digit in a number, found %s", found(v, p, buf));
	if (s[p] == '0') {
		p++;
		if (p < len && is_digit(s[p]))
			return vfail(v, p - 1, "leading zeros are not allowed in numbers");
	} else {
		while (p < len && is_digit(s[p]))
			p++;
	}
	if (p < len && s[p] == '.') {
		p++;
		if (p >= len || !is_digit(s[p]))
			return vfail(v, p, "expected a digit after the decimal point, found %s",
				     found(v, p, buf));
		while (p < len && is_digit(s[p]))
			p++;
	}
	if (p < len && (s[p] == 'e' || s[p] == 'E')) {
		p++;
		if (p < len && (s[p] == '+' || s[p] == '-'))
			p++;
		if (p >= len || !is_digit(s[p]))
			return vfail(v, p, "expected a digit in the exponent, found %s",
				     found(v, p, buf));
		while (p < len && is_digit(s[p]))
			p++;
	}
	v->pos = p;
	return 0;
}

static int v_literal(struct vstate *v, const char *word)
{
	size_t n = strlen(word);

	if (v->len - v->pos < n || memcmp(v->s + v->pos, word, n) != 0)
		return vfail(v, v->pos, "invalid literal (expected true, false or null)");
	v->pos += n;
	return 0;
}

enum { IN_ARRAY = 1, IN_OBJECT = 2 };

/* After '{' or ',' in an object: a key, its ':', and whitespace up to the value. */
static int v_key(struct vstate *v, bool first)
{
	char buf[16];
	int rc;

	skip_ws(v->s, v->len, &v->pos);
	if (v->pos >= v->len || v->s[v->pos] != '"')
		return vfail(v, v->pos,
			     first ? "expected a string key or '}', found %s"
				   : "expected a string key after ',', found %s",
			     found(v, v->pos, buf));
	if ((rc = v_string(v)) < 0)
		return rc;
	skip_ws(v->s, v->len, &v->pos);
	if (v->pos >= v->len || v->s[v->pos] != ':')
		return vfail(v, v->pos, "expected ':' after an object key, found %s",
			     found(v, v->pos, buf));
	v->pos++;
	return 0;
}

int td_json_validate(const char *text, size_t len, int max_depth, char *err, size_t errlen)
{
	unsigned char stack[TD_JSON_MAX_DEPTH];
	struct vstate v = {(const unsigned char *)text, len, 0, err, errlen};
	size_t depth = 0, limit;
	char buf[16];
	int rc;

	if (!text && len)
		return vfail(&v, 0, "no text");
	limit = (max_depth <= 0 || max_depth > TD_JSON_MAX_DEPTH) ? TD_JSON_MAX_DEPTH
								  : (size_t)max_depth;
	if (len >= 3 && v.s[0] == 0xef && v.s[1] == 0xbb && v.s[2] == 0xbf)
		return vfail(&v, 0, "a byte order mark is not allowed");
	for (;;) {
		/* Parse one value at v.pos. */
		skip_ws(v.s, len, &v.pos);
		if (v.pos >= len)
			return vfail(&v, v.pos, "unexpected end of input, expected a value");
		switch (v.s[v.pos]) {
		case '{':
		case '[':
			if (depth >= limit)
				return vfail(&v, v.pos, "nesting deeper than %zu levels", limit);
			stack[depth++] = v.s[v.pos] == '{' ? IN_OBJECT : IN_ARRAY;
			v.pos++;
			skip_ws(v.s, len, &v.pos);
			if (v.pos < len &&
			    v.s[v.pos] == (stack[depth - 1] == IN_OBJECT ? '}' : ']')) {
				v.pos++;
				depth--;
				rc = 0;
				break;
			}
			if (stack[depth - 1] == IN_OBJECT && (rc = v_key(&v, true)) < 0)
				return rc;
			continue;
		case '"':
			rc = v_string(&v);
			break;
		case 't':
			rc = v_literal(&v, "true");
			break;
		case 'f':
			rc = v_literal(&v, "false");
			break;
		case 'n':
			rc = v_literal(&v, "null");
			break;
		default:
			if (v.s[v.pos] == '-' || is_digit(v.s[v.pos])) {
				rc = v_number(&v);
				break;
			}
			return vfail(&v, v.pos, "expected a value, found %s",
				     found(&v, v.pos, buf));
		}
		if (rc < 0)
			return rc;
		/* After a value: close containers, or find the ',' before the next value. */
		for (;;) {
			skip_ws(v.s, len, &v.pos);
			if (depth == 0) {
				if (v.pos < len)
					return vfail(&v, v.pos,
						     "unexpected %s after the JSON value",
						     found(&v, v.pos, buf));
				return 0;
			}
			if (v.pos < len && v.s[v.pos] == ',') {
				v.pos++;
				break;
			}
			if (stack[depth - 1] == IN_OBJECT) {
				if (v.pos >= len || v.s[v.pos] != '}')
					return vfail(&v, v.pos,
						     "expected ',' or '}' after an object member, "
						     "found %s",
						     found(&v, v.pos, buf));
			} else if (v.pos >= len || v.s[v.pos] != ']') {
				return vfail(&v, v.pos,
					     "expected ',' or ']' after an array element, found %s",
					     found(&v, v.pos, buf));
			}
			v.pos++;
			depth--;
		}
		if (stack[depth - 1] == IN_OBJECT && (rc = v_key(&v, false)) < 0)
			return rc;
	}
}

bool td_json_valid(const char *s, size_t len, int max_depth)
{
	return td_json_validate(s, len, max_depth, NULL, 0) == 0;
}

/* Escaping and decoding strings */

int td_json_append_string(struct td_buf *b, const char *text, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)text;
	size_t i = 0, start, k;
	unsigned char c;
	char esc[6];

	if (td_buf_reserve(b, len + 2) < 0)
		return -TD_ENOMEM;
	td_buf_appendc(b, '"');
	while (i < len) {
		start = i;
		i = plain_run(s, i, len);
		td_buf_append(b, s + start, i - start);
		if (i >= len)
			break;
		c = s[i];
		if (c >= 0x80) {
			k = td_utf8_decode(s + i, len - i, NULL);
			if (k) {
				td_buf_append(b, s + i, k);
				i += k;
			} else {
				td_buf_append(b, "\\ufffd", 6);
				i++;
			}
			continue;
		}
		esc[0] = '\\';
		switch (c) {
		case '"':
			esc[1] = '"';
			break;
		case '\\':
			esc[1] = '\\';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		case '\b':
			esc[1] = 'b';
			break;
		case '\f':
			esc[1] = 'f';
			break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			td_buf_append(b, esc, 6);
			i++;
			continue;
		}
		td_buf_append(b, esc, 2);
		i++;
	}
	td_buf_appendc(b, '"');
	return td_buf_failed(b) ? -TD_ENOMEM : 0;
}

int td_json_append_cstr(struct td_buf *b, const char *s)
{
	return td_json_append_string(b, s, strlen(s));
}

int td_json_string_decode(const char *raw, size_t len, struct td_buf *out)
{
	const unsigned char *s = (const unsigned char *)raw;
	size_t i = 0, n;
	const unsigned char *bs;
	long u, lo;
	unsigned cp;
	char enc[4];

	while (i < len) {
		bs = memchr(s + i, '\\', len - i);
		n = bs ? (size_t)(bs - (s + i)) : len - i;
		td_buf_append(out, s + i, n);
		i += n;
		if (i >= len)
			break;
		if (i + 1 >= len)
			return -TD_EINVAL;
		switch (s[i + 1]) {
		case '"':
		case '\\':
		case '/':
			td_buf_appendc(out, (char)s[i + 1]);
			i += 2;
			continue;
		case 'b':
			td_buf_appendc(out, '\b');
			i += 2;
			continue;
		case 'f':
			td_buf_appendc(out, '\f');
			i += 2;
			continue;
		case 'n':
			td_buf_appendc(out, '\n');
			i += 2;
			continue;
		case 'r':
			td_buf_appendc(out, '\r');
			i += 2;
			continue;
		case 't':
			td_buf_appendc(out, '\t');
			i += 2;
			continue;
		case 'u':
			break;
		default:
			return -TD_EINVAL;
		}
		u = hex4(s, len, i + 2);
		if (u < 0 || (u >= 0xdc00 && u <= 0xdfff))
			return -TD_EINVAL;
		if (u >= 0xd800 && u <= 0xdbff) {
			if (i + 7 >= len || s[i + 6] != '\\' || s[i + 7] != 'u')
				return -TD_EINVAL;
			lo = hex4(s, len, i + 8);
			if (lo < 0xdc00 || lo > 0xdfff)
				return -TD_EINVAL;
			cp = 0x10000 + (((unsigned)u - 0xd800) << 10) + ((unsigned)lo - 0xdc00);
			i += 12;
		} else {
			cp = (unsigned)u;
			i += 6;
		}
		put_utf8(cp, enc, &n);
		td_buf_append(out, enc, n);
	}
	return td_buf_failed(out) ? -TD_ENOMEM : 0;
}

/* Skipping and walking */

/* s[*pos] is '"': leaves *pos after the closing quote. */
static int skip_string(const char *s, size_t len, size_t *pos)
{
	size_t p = *pos + 1;

	while (p < len) {
		const char *q = memchr(s + p, '"', len - p);
		size_t bs;

		if (!q)
			return -TD_EINVAL;
		/* The quote ends the string unless an odd run of backslashes precedes it. */
		bs = 0;
		while ((size_t)(q - s) - bs > p && q[-1 - (ptrdiff_t)bs] == '\\')
			bs++;
		p = (size_t)(q - s) + 1;
		if (bs % 2 == 0) {
			*pos = p;
			return 0;
		}
	}
	return -TD_EINVAL;
}

int td_json_skip(const char *s, size_t len, size_t *pos)
{
	size_t p = *pos, depth = 0;

	skip_ws((const unsigned char *)s, len, &p);
	if (p >= len)
		return -TD_EINVAL;
	switch (s[p]) {
	case '"':
		if (skip_string(s, len, &p) < 0)
			return -TD_EINVAL;
		*pos = p;
		return 0;
	case '{':
	case '[':
		while (p < len) {
			switch (s[p]) {
			case '"':
				if (skip_string(s, len, &p) < 0)
					return -TD_EINVAL;
				continue;
			case '{':
			case '[':
				depth++;
				break;
			case '}':
			case ']':
				if (--depth == 0) {
					*pos = p + 1;
					return 0;
				}
				break;
			default:
				break;
			}
			p++;
		}
		return -TD_EINVAL;
	case ',':
	case ':':
	case '}':
	case ']':
		return -TD_EINVAL;
	default:
		while (p < len && !strchr(",:{}[]\" \t\r\n", s[p]))
			p++;
		*pos = p;
		return 0;
	}
}

int td_json_iter_object(struct td_json_iter *it, const char *s, size_t len)
{
	size_t p = 0;

	it->s = s;
	it->len = len;
	it->state = 2;
	skip_ws((const unsigned char *)s, len, &p);
	if (p >= len || s[p] != '{')
		return -TD_EINVAL;
	it->pos = p + 1;
	it->state = 0;
	return 0;
}

int td_json_iter_next(struct td_json_iter *it, struct td_json_member *m)
{
	const char *s = it->s;
	size_t len = it->len, p = it->pos, k, v;

	if (it->state == 2)
		return 0;
	skip_ws((const unsigned char *)s, len, &p);
	if (p >= len)
		goto fail;
	if (s[p] == '}') {
		it->pos = p + 1;
		it->state = 2;
		return 0;
	}
	if (it->state == 1) {
		if (s[p] != ',')
			goto fail;
		p++;
		skip_ws((const unsigned char *)s, len, &p);
		if (p >= len)
			goto fail;
	}
	if (s[p] != '"')
		goto fail;
	k = p;
	if (skip_string(s, len, &p) < 0)
		goto fail;
	m->key = s + k + 1;
	m->key_len = p - k - 2;
	skip_ws((const unsigned char *)s, len, &p);
	if (p >= len || s[p] != ':')
		goto fail;
	p++;
	skip_ws((const unsigned char *)s, len, &p);
	v = p;
	if (td_json_skip(s, len, &p) < 0 || p == v)
		goto fail;
	m->value = s + v;
	m->value_len = p - v;
	it->pos = p;
	it->state = 1;
	return 1;
fail:
	it->state = 2;
	return -TD_EINVAL;
}

bool td_json_key_equals(const struct td_json_member *m, const char *name)
{
	struct td_buf b;
	bool eq;

	if (!memchr(m->key, '\\', m->key_len))
		return strlen(name) == m->key_len && memcmp(m->key, name, m->key_len) == 0;
	td_buf_init(&b);
	eq = td_json_string_decode(m->key, m->key_len, &b) == 0 && b.data &&
	     b.len == strlen(name) && memcmp(b.data, name, b.len) == 0;
	td_buf_free(&b);
	return eq;
}

/* Base64 */

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t td_base64_encoded_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

int td_base64_encode(struct td_buf *out, const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i = 0, o;
	char *d;

	if (n > (SIZE_MAX - 2) / 4 * 3 || td_buf_reserve(out, td_base64_encoded_len(n)) < 0) {
		out->oom = true;
		return -TD_ENOMEM;
	}
	d = out->data;
	o = out->len;
	for (; i + 3 <= n; i += 3) {
		unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
		d[o++] = b64chars[v >> 18];
		d[o++] = b64chars[(v >> 12) & 63];
		d[o++] = b64chars[(v >> 6) & 63];
		d[o++] = b64chars[v & 63];
	}
	if (n - i == 1) {
		unsigned v = (unsigned)s[i] << 16;
		d[o++] = b64chars[v >> 18];
		d[o++] = b64chars[(v >> 12) & 63];
		d[o++] = '=';
		d[o++] = '=';
	} else if (n - i == 2) {
		unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8;
		d[o++] = b64chars[v >> 18];
		d[o++] = b64chars[(v >> 12) & 63];
		d[o++] = b64chars[(v >> 6) & 63];
		d[o++] = '=';
	}
	out->len = o;
	d[o] = '\0';
	return 0;
}

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

static int b64fail(char *err, size_t errlen, const char *s, size_t at, const char *what)
{
	if (err && errlen) {
		unsigned char c = (unsigned char)s[at];
		if (c > 0x20 && c < 0x7f)
			snprintf(err, errlen, "invalid base64: %s '%c' at offset %zu", what, c, at);
		else
			snprintf(err, errlen, "invalid base64: %s byte 0x%02x at offset %zu", what,
				 c, at);
	}
	return -TD_EINVAL;
}

int td_base64_decode(const char *s, size_t len, struct td_buf *out, char *err, size_t errlen)
{
	unsigned char q[3];
	size_t i, pad = 0;

	if (len % 4 != 0) {
		if (err && errlen)
			snprintf(err, errlen,
				 "invalid base64: length %zu is not a multiple of 4 (padding '=' "
				 "required)",
				 len);
		return -TD_EINVAL;
	}
	if (td_buf_reserve(out, len / 4 * 3) < 0)
		return -TD_ENOMEM;
	for (i = 0; i < len; i += 4) {
		int v[4];
		for (size_t j = 0; j < 4; j++) {
			unsigned char c = (unsigned char)s[i + j];
			if (c == '=' && i + 4 == len && j >= 2) {
				/* "xy==" or "xyz=": '=' only at the end, and only as a suffix */
				if (j == 2 && s[i + 3] != '=')
					return b64fail(err, errlen, s, i + j, "misplaced padding");
				v[j] = 0;
				pad++;
				continue;
			}
			v[j] = b64val(c);
			if (v[j] < 0)
				return b64fail(err, errlen, s, i + j,
					       c == '=' ? "misplaced padding"
							: "invalid character");
		}
		q[0] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		q[1] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
		q[2] = (unsigned char)((v[2] & 3) << 6 | v[3]);
		td_buf_append(out, q, 3 - pad);
	}
	return td_buf_failed(out) ? -TD_ENOMEM : 0;
}

char *td_json_error_document(const char *type, const char *message, size_t *len)
{
	struct td_buf b;
	td_buf_init(&b);
	td_buf_appends(&b, "{\"errorType\":");
	td_json_append_cstr(&b, type);
	td_buf_appends(&b, ",\"errorMessage\":");
	td_json_append_cstr(&b, message);
	td_buf_appendc(&b, '}');
	return td_buf_steal(&b, len);
}

char *td_bytes_dup(const void *p, size_t len)
{
	char *s = malloc(len + 1);
	if (s) {
		memcpy(s, p, len);
		s[len] = '\0';
	}
	return s;
}

char *td_json_array_join(size_t n, const char *(*text)(const void *arg, size_t i, size_t *len),
			 const void *arg, size_t *len)
{
	size_t total = 2 + (n ? n - 1 : 0), one;
	for (size_t i = 0; i < n; i++) {
		text(arg, i, &one);
		total += one;
	}
	char *out = malloc(total + 1), *w = out;
	if (!out)
		return NULL;
	*w++ = '[';
	for (size_t i = 0; i < n; i++) {
		const char *t = text(arg, i, &one);
		if (i)
			*w++ = ',';
		memcpy(w, t, one);
		w += one;
	}
	*w++ = ']';
	*w = '\0';
	*len = total;
	return out;
}
