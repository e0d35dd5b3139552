/*
 * Small JSON helpers for the whole daemon. This is deliberately NOT a DOM: the hot path
 * never builds a tree. It offers
 *
 *   - struct td_buf: a growable byte buffer with append functions, always NUL-terminated;
 *   - td_json_validate(): is a byte buffer exactly one JSON value (RFC 8259, strict)?
 *   - td_json_append_string(): append text as a JSON string literal with escapes;
 *   - td_json_iter / td_json_skip(): walk the members of an object and find the exact
 *     bytes of each value without decoding anything;
 *   - td_json_string_decode(): decode the inside of a JSON string literal;
 *   - base64 (RFC 4648, standard alphabet, padded) and a strict UTF-8 check.
 *
 * Strictness of td_json_validate: exactly one value, surrounded only by the four JSON
 * whitespace characters; no byte order mark; no trailing commas, comments, NaN or
 * single quotes; numbers per the RFC grammar (no leading zeros, no "+", no ".5");
 * strings are valid UTF-8 (no overlong forms, no encoded surrogates, nothing above
 * U+10FFFF) with no raw control characters; a \u escape of a surrogate must form a
 * proper high+low pair (a lone surrogate could not be decoded to UTF-8); nesting is at
 * most max_depth containers deep (at most TD_JSON_MAX_DEPTH). Numbers are not range
 * checked: 1e400 is valid JSON text.
 *
 * Threads: every function is reentrant and works only on what it is given. A td_buf
 * belongs to its caller and must not be shared between threads without a lock.
 */
#ifndef TRIGGERD_ROUTER_JSON_H
#define TRIGGERD_ROUTER_JSON_H

#include <stdbool.h>
#include <stddef.h>

/* The deepest nesting td_json_validate accepts ("[[1]]" has depth 2, "1" depth 0). */
#define TD_JSON_MAX_DEPTH 512

/*
 * A growable byte buffer. Zero-initialise it (or td_buf_init) before use. data is
 * NULL until the first append; afterwards data[len] is always '\0', so text can be
 * used as a C string. An allocation failure is sticky: the append returns -TD_ENOMEM,
 * sets oom, and every later append is a no-op that returns -TD_ENOMEM, so a caller can
 * make many appends and check once at the end (td_buf_failed).
 * Ownership: the buffer owns data; td_buf_free releases it, td_buf_steal hands it over.
 */
struct td_buf {
	char *data;
	size_t len;
	size_t cap;
	bool oom;
};

void td_buf_init(struct td_buf *b);
void td_buf_free(struct td_buf *b);
/* Empties the buffer (keeps the allocation and clears oom). */
void td_buf_reset(struct td_buf *b);
/* Makes room for extra more bytes (plus the NUL). 0 or -TD_ENOMEM. */
int td_buf_reserve(struct td_buf *b, size_t extra);
int td_buf_append(struct td_buf *b, const void *p, size_t n);
int td_buf_appends(struct td_buf *b, const char *s);
int td_buf_appendc(struct td_buf *b, char c);
int td_buf_printf(struct td_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline bool td_buf_failed(const struct td_buf *b)
{
	return b->oom;
}
/*
 * Returns the malloc'ed, NUL-terminated contents (the caller frees it) and its length in
 * *len (may be NULL), and leaves the buffer empty. NULL when an append had failed (the
 * buffer is freed then) or on allocation failure. An empty buffer gives "".
 */
char *td_buf_steal(struct td_buf *b, size_t *len);

/*
 * Checks that s[0..len) is exactly one JSON value. max_depth <= 0 or above
 * TD_JSON_MAX_DEPTH means TD_JSON_MAX_DEPTH. Returns 0, or -TD_EINVAL with a message in
 * err (may be NULL) such as "line 2, column 7 (byte 19): expected ',' or '}' after an
 * object member". Line and column are 1-based; the column counts characters.
 */
int td_json_validate(const char *s, size_t len, int max_depth, char *err, size_t errlen);
/* The same without a message; max_depth as above. */
bool td_json_valid(const char *s, size_t len, int max_depth);

/*
 * The JSON array of n texts that are each one JSON value already (not checked again):
 * text(arg, i, &len) gives the i-th. Written once into a buffer of its exact size (the
 * batch paths hand it to an event uncopied); malloc'ed, NUL-terminated, its length in
 * *len. NULL when out of memory.
 */
char *td_json_array_join(size_t n, const char *(*text)(const void *arg, size_t i, size_t *len),
			 const void *arg, size_t *len);

/*
 * Appends s[0..len) as a JSON string literal, quotes included: '"', '\\' and the
 * control characters below U+0020 are escaped (\n, \t, \r, \b, \f or \u00XX), all
 * else is copied. Bytes that are not valid UTF-8 are replaced by \ufffd, so the output
 * is always valid JSON. 0 or -TD_ENOMEM.
 */
int td_json_append_string(struct td_buf *b, const char *s, size_t len);
int td_json_append_cstr(struct td_buf *b, const char *s);

/* {"errorType": type, "errorMessage": message}, the shape of AWS Lambda's error documents:
 * malloc'ed, its length in *len; NULL when out of memory. */
char *td_json_error_document(const char *type, const char *message, size_t *len);
/* A malloc'ed copy of p[0..len) with a NUL after it (bytes may hold NULs); NULL when out of
 * memory. */
char *td_bytes_dup(const void *p, size_t len);

/*
 * Decodes the inside of a string literal (raw points after the opening quote, len
 * bytes up to the closing quote) and appends the UTF-8 text to out. Escapes are
 * checked (surrogates must pair); other bytes are copied as they are, so raw should come
 * from validated JSON. 0, -TD_EINVAL for a bad escape, or -TD_ENOMEM.
 */
int td_json_string_decode(const char *raw, size_t len, struct td_buf *out);

/*
 * Skips the value that starts at s[*pos] (after optional whitespace) and leaves *pos
 * just after it. Returns 0, or -TD_EINVAL when the text ends early or a container is
 * not closed. It checks structure only (brackets, quotes, bounds): use it on text that
 * td_json_validate accepted. It never reads outside s[0..len).
 */
int td_json_skip(const char *s, size_t len, size_t *pos);

/*
 * Walks the members of one object in document order, without decoding:
 *
 *	struct td_json_iter it;
 *	struct td_json_member m;
 *	if (td_json_iter_object(&it, text, len) == 0)
 *		while ((rc = td_json_iter_next(&it, &m)) > 0)
 *			... m.key (raw, escapes kept, no quotes), m.value (exact bytes) ...
 *
 * td_json_iter_object returns -TD_EINVAL when the text (after whitespace) does not
 * start with '{'. td_json_iter_next returns 1 with a member, 0 at the closing brace,
 * -TD_EINVAL on broken structure. Pointers in the member point into text. Like
 * td_json_skip it checks structure only and never reads out of bounds.
 */
struct td_json_iter {
	const char *s;
	size_t len;
	size_t pos;
	int state; /* 0 first member, 1 after a member, 2 done */
};

struct td_json_member {
	const char *key; /* the raw key between its quotes */
	size_t key_len;
	const char *value; /* the value's exact text, no surrounding whitespace */
	size_t value_len;
};

int td_json_iter_object(struct td_json_iter *it, const char *s, size_t len);
int td_json_iter_next(struct td_json_iter *it, struct td_json_member *m);
/* True when the raw key decodes to exactly name (handles escaped keys). */
bool td_json_key_equals(const struct td_json_member *m, const char *name);

/*
 * Base64, RFC 4648 section 4 (standard alphabet, '=' padding). td_base64_encode appends
 * the encoding of p[0..n) to out. td_base64_decode appends the decoded bytes of
 * s[0..len) to out; it accepts only padded input without whitespace and returns
 * -TD_EINVAL with a message in err (may be NULL) naming the offending character.
 */
size_t td_base64_encoded_len(size_t n);
int td_base64_encode(struct td_buf *out, const void *p, size_t n);
int td_base64_decode(const char *s, size_t len, struct td_buf *out, char *err, size_t errlen);

/*
 * Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
 * On false, *bad (may be NULL) is the offset of the first byte of the first invalid
 * sequence.
 */
bool td_utf8_valid(const void *p, size_t n, size_t *bad);
/*
 * Length of the valid UTF-8 sequence at p[0..n) (1 to 4) and its code point in *cp, or
 * 0 when it is not valid.
 */
size_t td_utf8_decode(const unsigned char *p, size_t n, unsigned *cp);

#endif
