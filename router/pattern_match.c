/*
 * Pattern matcher: one pass over the event text, no DOM, no allocation once the
 * matcher's buffers have grown to the size of the events it sees.
 *
 * The scanner descends only into object keys that the field tree (pattern_compile.c)
 * names. A subtree nobody names is skipped 64 bytes at a time: SIMD compares give the
 * masks of quotes and brackets, the running parity of the quotes says which bytes lie
 * inside strings, and popcounts of the brackets outside strings find the end. Inside
 * a visited object the positions of quotes and backslashes of 64 bytes are cached, so
 * the short keys and string values a block holds cost a few bit operations each.
 *
 * Every leaf value found at a field is looked up at once in that field's indexes
 * (hash of the value, of its prefixes and suffixes of the lengths some pattern uses,
 * of its case-folded form, wildcard literal prefixes, the interval index for numbers
 * and IP addresses); each hit satisfies a slot, and a branch whose enumerable
 * conditions are all satisfied becomes a candidate. After the scan the candidates'
 * remaining conditions (anything-but, exists) are checked against the values kept per
 * field, each distinct one once per event, then array consistency: values inside
 * arrays carry a context (array, element), and a branch only matches when one value
 * per condition can be chosen with no two of them in different elements of one array.
 *
 * Validation: visited parts are checked as strict RFC 8259 JSON (including UTF-8 in
 * strings and escapes); skipped parts only for balanced brackets and terminated
 * strings unless td_matcher_set_strict() asks for the whole text.
 */
#include <triggerd/errors.h>
#include <triggerd/pattern.h>

#include "pattern_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Byte classes 32 or 16 bytes at a time; a mask has one bit per byte: AVX2 when the
 * build targets it, else SSE2 (every x86-64), else plain loops. (64-byte AVX-512 blocks
 * measured slower here: an unaligned 64-byte load always spans two cache lines.)
 */
#if defined(__AVX2__)
#include <immintrin.h>
#define VLEN 32
typedef __m256i vec_t;
typedef uint32_t vmask_t;
#define VALL	  0xffffffffu
#define VLOAD(p)  _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define VEQ(v, c) ((uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8((v), _mm256_set1_epi8(c))))
#define VOR20(v)  _mm256_or_si256((v), _mm256_set1_epi8(0x20))
#define VLT20(v)  ((uint32_t)_mm256_movemask_epi8(_mm256_cmpgt_epi8(_mm256_set1_epi8(0x20), (v))))
#elif defined(__SSE2__)
#include <emmintrin.h>
#if defined(__PCLMUL__)
#include <wmmintrin.h>
#endif
#define VLEN	  16
typedef __m128i vec_t;
typedef uint32_t vmask_t;
#define VALL	  0xffffu
#define VLOAD(p)  _mm_loadu_si128((const __m128i *)(const void *)(p))
#define VEQ(v, c) ((uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8((v), _mm_set1_epi8(c))))
#define VOR20(v)  _mm_or_si128((v), _mm_set1_epi8(0x20))
#define VLT20(v)  ((uint32_t)_mm_movemask_epi8(_mm_cmplt_epi8((v), _mm_set1_epi8(0x20))))
#endif

#ifdef VLEN
static inline unsigned vctz(vmask_t m)
{
	return (unsigned)__builtin_ctz(m);
}
#endif

struct mval {
	const char *s; /* string: decoded bytes; number: its text */
	uint32_t len;
	uint32_t field;
	uint32_t next; /* the next value of the same field, or TD_PAT_NONE */
	uint32_t ctx;
	uint8_t type;
};

struct mhit {
	uint32_t value, next;
};

struct mctx {
	uint32_t parent, array;
};

/* a generation stamp and what it qualifies, in one cache line access */
struct stamp2 {
	uint32_t stamp;
	uint32_t val; /* slot: head of its hit list; branch: satisfied conditions */
};

/* consistency search state per context node */
struct dpnode {
	uint32_t stamp;
	uint32_t cur_array;
	uint32_t acc_off, acc_n;
	uint32_t cur_off, cur_n;
	uint64_t direct;
	uint8_t has_cur;
};

struct td_matcher {
	const struct td_pattern_set *set;
	uint32_t gen, dp_gen;
	int strict;
	int oom;
	const char *base, *end;
	/* error */
	const char *err_at;
	const char *err_msg;
	/* stamps, indexed by slot / branch / field / rule */
	struct stamp2 *slots, *branches;
	uint32_t *field_stamp, *field_head;
	uint32_t *rule_stamp;
	uint32_t *ent_stamp;   /* per hash table entry */
	struct stamp2 *checks; /* per checked condition: its result for this event */
	/* per event */
	struct mval *vals;
	uint32_t nvals, cap_vals;
	struct mhit *hits;
	uint32_t nhits, cap_hits;
	struct mctx *ctxs;
	uint32_t nctx, cap_ctx;
	uint32_t narrays;
	uint32_t *cands;
	uint32_t ncands, cap_cands;
	uint32_t *present;
	uint32_t npresent, cap_present;
	uint32_t *res;
	uint32_t nres, cap_res;
	unsigned *ids;
	uint32_t cap_ids;
	char *scratch; /* decoded strings: never more bytes than the event */
	size_t scratch_len, scratch_cap;
	char *tmp; /* one value's folded form or number key */
	size_t tmp_cap;
	/* consistency search */
	struct dpnode *dp;
	uint32_t cap_dp;
	uint64_t *pool;
	uint32_t npool, cap_pool;
	uint32_t *dpnodes;
	uint32_t ndpnodes, cap_dpnodes;
	uint32_t *lists; /* per condition: offsets into dpvals */
	uint32_t *dpvals;
	uint32_t ndpvals, cap_dpvals;
};

/* ---------------------------------------------------------------------------------- */
/* buffers */

static int grow(void **ptr, uint32_t *cap, uint32_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	uint32_t ncap = *cap ? *cap : 16;
	while (ncap < need) {
		if (ncap > UINT32_MAX / 2)
			return -1;
		ncap *= 2;
	}
	void *n = realloc(*ptr, (size_t)ncap * elem);
	if (!n)
		return -1;
	*ptr = n;
	*cap = ncap;
	return 0;
}

static int ensure(char **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap : 256;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2)
			return -1;
		ncap *= 2;
	}
	char *n = realloc(*buf, ncap);
	if (!n)
		return -1;
	*buf = n;
	*cap = ncap;
	return 0;
}

/* The temporary buffer for one value of n bytes (folded form, number key). */
static inline int tmp_for(struct td_matcher *m, size_t n)
{
	if (2 * n + 64 <= m->tmp_cap)
		return 0;
	if (n > SIZE_MAX / 4 || ensure(&m->tmp, &m->tmp_cap, 2 * n + 64) < 0) {
		m->oom = 1;
		return -1;
	}
	return 0;
}

#define PUSH(m, arr, n, cap, val)                                                                  \
	do {                                                                                       \
		if ((m)->n < (m)->cap ||                                                           \
		    grow((void **)&(m)->arr, &(m)->cap, (m)->n + 1, sizeof(*(m)->arr)) == 0)       \
			(m)->arr[(m)->n++] = (val);                                                \
		else                                                                               \
			(m)->oom = 1;                                                              \
	} while (0)

struct td_matcher *td_matcher_create(const struct td_pattern_set *set)
{
	if (!set || !set->compiled)
		return NULL;
	struct td_matcher *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->set = set;
	size_t ns = set->nslots ? set->nslots : 1, nb = set->nbranches ? set->nbranches : 1;
	size_t nf = set->nfields ? set->nfields : 1, nr = set->nrules ? set->nrules : 1;
	m->slots = calloc(ns, sizeof(*m->slots));
	m->branches = calloc(nb, sizeof(*m->branches));
	m->field_stamp = calloc(nf, sizeof(uint32_t));
	m->field_head = calloc(nf, sizeof(uint32_t));
	m->rule_stamp = calloc(nr, sizeof(uint32_t));
	m->ent_stamp = calloc((size_t)set->table_mask + 1, sizeof(uint32_t));
	m->checks = calloc(set->nchecks ? set->nchecks : 1, sizeof(*m->checks));
	m->lists = calloc(TD_PAT_MAX_CONDS + 1, sizeof(uint32_t));
	if (!m->slots || !m->branches || !m->field_stamp || !m->field_head || !m->rule_stamp ||
	    !m->lists || !m->ent_stamp || !m->checks)
		goto fail;
	if (grow((void **)&m->ctxs, &m->cap_ctx, 64, sizeof(*m->ctxs)) < 0)
		goto fail;
	return m;
fail:
	td_matcher_destroy(m);
	return NULL;
}

void td_matcher_destroy(struct td_matcher *m)
{
	if (!m)
		return;
	free(m->slots);
	free(m->branches);
	free(m->field_stamp);
	free(m->field_head);
	free(m->rule_stamp);
	free(m->ent_stamp);
	free(m->checks);
	free(m->vals);
	free(m->hits);
	free(m->ctxs);
	free(m->cands);
	free(m->present);
	free(m->res);
	free(m->ids);
	free(m->scratch);
	free(m->tmp);
	free(m->dp);
	free(m->pool);
	free(m->dpnodes);
	free(m->lists);
	free(m->dpvals);
	free(m);
}

void td_matcher_set_strict(struct td_matcher *m, int strict)
{
	if (m)
		m->strict = strict != 0;
}

/* ---------------------------------------------------------------------------------- */
/* byte scanning */

static const char *fail(struct td_matcher *m, const char *at, const char *msg)
{
	if (!m->err_msg) {
		m->err_at = at;
		m->err_msg = msg;
	}
	return NULL;
}

static inline const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	return p;
}

/* The first '"', '\\', control character or non-ASCII byte at or after p, or end. */
static inline const char *find_special(const char *p, const char *end)
{
#ifdef VLEN
	while (end - p >= VLEN) {
		vec_t v = VLOAD(p);
		vmask_t mk = VEQ(v, '"') | VEQ(v, '\\') | VLT20(v);
		if (mk)
			return p + vctz(mk);
		p += VLEN;
	}
#endif
	for (; p < end; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80)
			return p;
	}
	return end;
}

/* The first '"' or '\\' at or after p, or end. */
static inline const char *find_quote(const char *p, const char *end)
{
#ifdef VLEN
	while (end - p >= VLEN) {
		vec_t v = VLOAD(p);
		vmask_t mk = VEQ(v, '"') | VEQ(v, '\\');
		if (mk)
			return p + vctz(mk);
		p += VLEN;
	}
#endif
	for (; p < end; p++)
		if (*p == '"' || *p == '\\')
			return p;
	return end;
}

/*
 * Quote and backslash positions of 64 bytes, cached while an object's keys and values
 * are walked: one classification serves the several short strings a block holds.
 */
struct cursor {
	const char *base; /* the masks describe [base, base + 64); NULL: nothing cached */
	uint64_t q, bs, ch;
};

/*
 * The first byte at or after x that is '"' or '\\' (or, with special, also a control
 * character or a non-ASCII byte), or end.
 */
static inline const char *cur_next(struct cursor *c, const char *x, const char *end, int special)
{
#ifdef VLEN
	for (;;) {
		if (c->base && x >= c->base && x < c->base + 64) {
			uint64_t mk = c->q | c->bs | (special ? c->ch : 0);
			mk &= ~(uint64_t)0 << (x - c->base);
			if (mk)
				return c->base + __builtin_ctzll(mk);
			x = c->base + 64;
		}
		if (end - x < 64)
			return special ? find_special(x, end) : find_quote(x, end);
		c->base = x;
		c->q = c->bs = c->ch = 0;
		for (int i = 0; i < 64; i += VLEN) {
			vec_t v = VLOAD(x + i);
			c->q |= (uint64_t)VEQ(v, '"') << i;
			c->bs |= (uint64_t)VEQ(v, '\\') << i;
			c->ch |= (uint64_t)VLT20(v) << i;
		}
	}
#else
	(void)c;
	return special ? find_special(x, end) : find_quote(x, end);
#endif
}

/* Skips a string body without validating it (p after the opening quote). */
static const char *skip_string(const char *p, const char *end)
{
	for (;;) {
		p = find_quote(p, end);
		if (p >= end)
			return NULL;
		if (*p == '"')
			return p + 1;
		p += 2;
		if (p > end)
			return NULL;
	}
}

#ifdef VLEN
/* 64 bytes at p: masks of '"', '\\', '[' or '{', and ']' or '}'. */
static inline void classify64(const char *p, uint64_t *q, uint64_t *bs, uint64_t *op, uint64_t *cl)
{
	*q = *bs = *op = *cl = 0;
	for (int i = 0; i < 64; i += VLEN) {
		vec_t v = VLOAD(p + i);
		vec_t o = VOR20(v); /* '[' and '{' both become '{', ']' and '}' both '}' */
		*q |= (uint64_t)VEQ(v, '"') << i;
		*bs |= (uint64_t)VEQ(v, '\\') << i;
		*op |= (uint64_t)VEQ(o, '{') << i;
		*cl |= (uint64_t)VEQ(o, '}') << i;
	}
}

/* Bit i of the result is the parity of bits 0..i of x. */
static inline uint64_t prefix_xor(uint64_t x)
{
#if defined(__PCLMUL__)
	/* carry-less multiplication by all ones is exactly that */
	__m128i r = _mm_clmulepi64_si128(_mm_set_epi64x(0, (long long)x), _mm_set1_epi8(-1), 0);
	return (uint64_t)_mm_cvtsi128_si64(r);
#else
	x ^= x << 1;
	x ^= x << 2;
	x ^= x << 4;
	x ^= x << 8;
	x ^= x << 16;
	x ^= x << 32;
	return x;
#endif
}
#endif

/* Byte-wise bracket counting over [p, stop); returns the end of the container or NULL. */
static const char *skip_bytes(const char *p, const char *stop, size_t *depth, int *in_str, int *esc)
{
	for (; p < stop; p++) {
		char c = *p;
		if (*in_str) {
			if (*esc)
				*esc = 0;
			else if (c == '\\')
				*esc = 1;
			else if (c == '"')
				*in_str = 0;
		} else if (c == '"') {
			*in_str = 1;
		} else if (c == '[' || c == '{') {
			(*depth)++;
		} else if ((c == ']' || c == '}') && --*depth == 0) {
			return p + 1;
		}
	}
	return NULL;
}

/* Counts brackets in one 64-byte block given its masks; the end of the container or NULL. */
static inline const char *block_brackets(const char *blk, uint64_t q, uint64_t op, uint64_t cl,
					 size_t *depth, int *in_str)
{
	uint64_t carry = *in_str ? ~(uint64_t)0 : 0;
	uint64_t inside = q ? prefix_xor(q) ^ carry : carry;
	*in_str = (int)(inside >> 63);
	op &= ~inside;
	cl &= ~inside;
	size_t ncl = (size_t)__builtin_popcountll(cl);
	if (ncl < *depth) {
		*depth += (size_t)__builtin_popcountll(op) - ncl;
		return NULL;
	}
	for (uint64_t bits = op | cl; bits; bits &= bits - 1) {
		unsigned i = (unsigned)__builtin_ctzll(bits);
		if (cl >> i & 1) {
			if (--*depth == 0)
				return blk + i + 1;
		} else {
			++*depth;
		}
	}
	return NULL;
}

/*
 * Skips an object or array (p after its opening bracket) by counting brackets outside
 * strings, 64 bytes at a time: the quotes' running parity says which bytes are inside
 * strings, so a block costs the same however many strings it holds. Blocks with a
 * backslash (rare) are counted byte by byte, which handles escapes. The last partial
 * block is read as the 64 bytes that end the text, with the bytes already counted
 * masked off (start is the beginning of the text, which makes that read safe).
 */
static const char *skip_container(const char *start, const char *p, const char *end)
{
	size_t depth = 1;
	int in_str = 0, esc = 0;
#ifdef VLEN
	uint64_t q, bs, op, cl;
	while (end - p >= 64) {
		classify64(p, &q, &bs, &op, &cl);
		if (bs || esc) {
			const char *r = skip_bytes(p, p + 64, &depth, &in_str, &esc);
			if (r)
				return r;
		} else {
			const char *r = block_brackets(p, q, op, cl, &depth, &in_str);
			if (r)
				return r;
		}
		p += 64;
	}
	if (p < end && end - start >= 64 && !esc) {
		const char *blk = end - 64;
		unsigned skip = (unsigned)(p - blk); /* 1..63 bytes already counted */
		uint64_t keep = ~(uint64_t)0 << skip;
		classify64(blk, &q, &bs, &op, &cl);
		if (!(bs & keep))
			return block_brackets(blk, q & keep, op & keep, cl & keep, &depth, &in_str);
	}
#else
	(void)start;
#endif
	return skip_bytes(p, end, &depth, &in_str, &esc);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int hex4(const char *p, const char *end, unsigned *out)
{
	if (end - p < 4)
		return -1;
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hexval(p[i]);
		if (h < 0)
			return -1;
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

/* A string with escapes or non-ASCII bytes: validate, and decode when asked. */
static const char *scan_string_slow(struct td_matcher *m, const char *start, const char *p,
				    const char **out, size_t *outlen, int decode)
{
	const char *end = m->end;
	char *o = NULL;
	size_t on = 0;
	for (;;) {
		if (p >= end)
			return fail(m, start - 1, "unterminated string");
		unsigned char c = (unsigned char)*p;
		if (c == '"')
			break;
		if (c == '\\') {
			if (decode && !o) {
				o = m->scratch + m->scratch_len;
				on = (size_t)(p - start);
				memcpy(o, start, on);
			}
			if (p + 1 >= end)
				return fail(m, start - 1, "unterminated string");
			char e = p[1];
			char val = 0;
			switch (e) {
			case '"':
			case '\\':
			case '/':
				val = e;
				break;
			case 'b':
				val = '\b';
				break;
			case 'f':
				val = '\f';
				break;
			case 'n':
				val = '\n';
				break;
			case 'r':
				val = '\r';
				break;
			case 't':
				val = '\t';
				break;
			case 'u': {
				unsigned cp, lo;
				if (hex4(p + 2, end, &cp) < 0)
					return fail(m, p, "\\u needs four hex digits");
				p += 6;
				if (cp >= 0xdc00 && cp <= 0xdfff)
					return fail(m, p - 6, "lone low surrogate in \\u escape");
				if (cp >= 0xd800 && cp <= 0xdbff) {
					if (end - p < 6 || p[0] != '\\' || p[1] != 'u' ||
					    hex4(p + 2, end, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
						return fail(
						    m, p - 6,
						    "high surrogate without a low one in \\u "
						    "escape");
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
					p += 6;
				}
				if (o)
					on += put_utf8(o + on, cp);
				continue;
			}
			default:
				return fail(m, p, "invalid escape in a string");
			}
			if (o)
				o[on++] = val;
			p += 2;
			continue;
		}
		if (c < 0x20)
			return fail(m, p, "control character in a string (it must be escaped)");
		if (c >= 0x80) {
			size_t k = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
			if ((size_t)(end - p) < k || !td_pat_utf8_valid(p, k))
				return fail(m, p, "invalid UTF-8 in a string");
			if (o) {
				memcpy(o + on, p, k);
				on += k;
			}
			p += k;
			continue;
		}
		const char *q = find_special(p, end);
		if (o) {
			memcpy(o + on, p, (size_t)(q - p));
			on += (size_t)(q - p);
		}
		p = q;
	}
	if (o) {
		*out = o;
		*outlen = on;
		m->scratch_len += on;
	} else {
		*out = start;
		*outlen = (size_t)(p - start);
	}
	return p + 1;
}

/* Validates a string (p after the opening quote); decoded bytes in *out. */
static inline const char *scan_string(struct td_matcher *m, const char *p, const char **out,
				      size_t *outlen, int decode)
{
	const char *q = find_special(p, m->end);
	if (q < m->end && *q == '"') {
		*out = p;
		*outlen = (size_t)(q - p);
		return q + 1;
	}
	return scan_string_slow(m, p, q, out, outlen, decode);
}

static const char *scan_number(struct td_matcher *m, const char *p)
{
	const char *end = m->end, *s = p;
	if (p < end && *p == '-')
		p++;
	if (p >= end || (unsigned)(*p - '0') > 9)
		return fail(m, s, "expected a value");
	if (*p == '0') {
		p++;
		if (p < end && (unsigned)(*p - '0') <= 9)
			return fail(m, s, "numbers may not have leading zeros");
	} else {
		while (p < end && (unsigned)(*p - '0') <= 9)
			p++;
	}
	if (p < end && *p == '.') {
		p++;
		if (p >= end || (unsigned)(*p - '0') > 9)
			return fail(m, p, "a digit must follow the decimal point");
		while (p < end && (unsigned)(*p - '0') <= 9)
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p >= end || (unsigned)(*p - '0') > 9)
			return fail(m, p, "a digit must follow the exponent");
		while (p < end && (unsigned)(*p - '0') <= 9)
			p++;
	}
	return p;
}

/*
 * scan_number() that also takes the number apart (a value some index will look up).
 * d->ok is 0 when the number has more than 19 significant digits.
 */
static const char *scan_number_dec(struct td_matcher *m, const char *p, struct td_pat_dec *d)
{
	const char *end = m->end, *s = p;
	uint64_t mant = 0;
	unsigned nd = 0;
	long long frac = 0, e = 0;
	int ok = 1;
	d->neg = 0;
	if (p < end && *p == '-') {
		d->neg = 1;
		p++;
	}
	if (p >= end || (unsigned)(*p - '0') > 9)
		return fail(m, s, "expected a value");
	if (*p == '0') {
		p++;
		if (p < end && (unsigned)(*p - '0') <= 9)
			return fail(m, s, "numbers may not have leading zeros");
	} else {
		for (; p < end && (unsigned)(*p - '0') <= 9; p++) {
			if (nd < 19)
				mant = mant * 10 + (uint64_t)(*p - '0');
			else
				ok = 0;
			nd++;
		}
	}
	if (p < end && *p == '.') {
		p++;
		if (p >= end || (unsigned)(*p - '0') > 9)
			return fail(m, p, "a digit must follow the decimal point");
		for (; p < end && (unsigned)(*p - '0') <= 9; p++) {
			frac++;
			if (nd == 0 && *p == '0')
				continue; /* leading zeros of 0.000123 */
			if (nd < 19)
				mant = mant * 10 + (uint64_t)(*p - '0');
			else
				ok = 0;
			nd++;
		}
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		int eneg = 0;
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			eneg = *p++ == '-';
		if (p >= end || (unsigned)(*p - '0') > 9)
			return fail(m, p, "a digit must follow the exponent");
		for (; p < end && (unsigned)(*p - '0') <= 9; p++)
			if (e < 1000000000LL)
				e = e * 10 + (*p - '0');
		if (eneg)
			e = -e;
	}
	d->ok = ok;
	if (ok) {
		e -= frac;
		if (mant == 0) {
			nd = 0;
			e = 0;
		} else {
			while (mant % 10 == 0) {
				mant /= 10;
				nd--;
				e++;
			}
		}
		d->mant = mant;
		d->exp = e;
		d->nd = nd;
	}
	return p;
}

static inline const char *scan_literal(struct td_matcher *m, const char *p, const char *word,
				       size_t n)
{
	if ((size_t)(m->end - p) < n || memcmp(p, word, n) != 0)
		return fail(m, p, "invalid literal");
	return p + n;
}

/* ---------------------------------------------------------------------------------- */
/* index lookups for one value */

static inline void push_cand(struct td_matcher *m, uint32_t b)
{
	PUSH(m, cands, ncands, cap_cands, b);
}

static inline void mark(struct td_matcher *m, uint32_t slot, uint32_t vi)
{
	const struct td_pattern_set *set = m->set;
	struct stamp2 *st = &m->slots[slot];
	uint32_t info = set->slot_info[slot];
	if (st->stamp != m->gen) {
		st->stamp = m->gen;
		st->val = TD_PAT_NONE;
		uint32_t b = info & ~TD_PAT_RECORD;
		struct stamp2 *bs = &m->branches[b];
		if (bs->stamp != m->gen) {
			bs->stamp = m->gen;
			bs->val = 0;
		}
		if (++bs->val == set->branch_need[b])
			push_cand(m, b);
	}
	if (info & TD_PAT_RECORD) {
		struct mhit h = {vi, st->val};
		uint32_t before = m->nhits;
		PUSH(m, hits, nhits, cap_hits, h);
		if (m->nhits != before)
			st->val = before;
	}
}

static inline const struct td_pat_hent *lookup_h(const struct td_pattern_set *set, uint32_t field,
						 uint32_t kind, const char *s, size_t n, uint64_t h)
{
	uint16_t tag = td_pat_tag(h);
	for (uint32_t i = (uint32_t)h & set->table_mask;; i = (i + 1) & set->table_mask) {
		uint16_t t = set->tags[i];
		if (!t)
			return NULL;
		if (t != tag)
			continue;
		const struct td_pat_hent *e = &set->table[i];
		if (e->h == h && e->field == field && e->kind == kind && e->key_len == n &&
		    td_pat_eq(set->keys + e->key_off, s, n))
			return e;
	}
}

static inline const struct td_pat_hent *lookup(const struct td_pattern_set *set, uint32_t field,
					       uint32_t kind, const char *s, size_t n)
{
	return lookup_h(set, field, kind, s, n, td_pat_hash(s, n, (uint64_t)field << 8 | kind));
}

static inline void mark_entry(struct td_matcher *m, const struct td_pat_hent *e, uint32_t vi)
{
	const struct td_pattern_set *set = m->set;
	uint32_t n = e->list_n & ~TD_PAT_RECORD;
	if (n >= 8 && !(e->list_n & TD_PAT_RECORD)) {
		/* a value repeated in the event need not walk a long list again */
		uint32_t *st = &m->ent_stamp[e - set->table];
		if (*st == m->gen)
			return;
		*st = m->gen;
	}
	const uint32_t *l = set->lists + e->list_off;
	for (uint32_t i = 0; i < n; i++)
		mark(m, l[i], vi);
}

static inline void hit(struct td_matcher *m, uint32_t field, uint32_t kind, const char *s, size_t n,
		       uint32_t vi)
{
	const struct td_pat_hent *e = lookup(m->set, field, kind, s, n);
	if (e)
		mark_entry(m, e, vi);
}

static void affixes(struct td_matcher *m, const struct td_pat_field *f, uint32_t field,
		    uint32_t kind, int suffix, const char *s, size_t n, uint32_t vi)
{
	const uint32_t *lens = m->set->lens + f->lens_off[kind];
	for (uint32_t i = 0; i < f->nlens[kind] && lens[i] <= n; i++)
		hit(m, field, kind, suffix ? s + n - lens[i] : s, lens[i], vi);
}

static void wildcards(struct td_matcher *m, const struct td_pat_field *f, uint32_t field,
		      const char *s, size_t n, uint32_t vi)
{
	const struct td_pattern_set *set = m->set;
	const uint32_t *lens = set->lens + f->lens_off[TD_K_WC];
	for (uint32_t i = 0; i < f->nlens[TD_K_WC] && lens[i] <= n; i++) {
		const struct td_pat_hent *e = lookup(set, field, TD_K_WC, s, lens[i]);
		if (!e)
			continue;
		for (uint32_t j = 0; j < (e->list_n & ~TD_PAT_RECORD); j++) {
			const struct td_pat_wc *w = &set->wcs[set->lists[e->list_off + j]];
			if (td_pat_glob(w->pat, w->len, s, n))
				mark(m, w->slot, vi);
		}
	}
}

static void stab(struct td_matcher *m, const struct td_pat_ivx *x, td_pat_u128 key, uint32_t vi)
{
	if (!x || key < x->min || key > x->max)
		return;
	uint32_t lo;
	if (x->pts64) {
		/* branch-free lower bound */
		uint64_t k = (uint64_t)key;
		const uint64_t *base = x->pts64;
		uint32_t len = x->npts;
		while (len > 1) {
			uint32_t half = len / 2;
			base = base[half - 1] < k ? base + half : base;
			len -= half;
		}
		lo = (uint32_t)(base - x->pts64) + (*base < k);
	} else {
		uint32_t hi = x->npts;
		lo = 0;
		while (lo < hi) {
			uint32_t mid = (lo + hi) / 2;
			if (x->pts[mid] < key)
				lo = mid + 1;
			else
				hi = mid;
		}
	}
	uint32_t unit = lo < x->npts && x->pts[lo] == key ? 2 * lo + 1 : 2 * lo;
	if (x->flat) {
		for (uint32_t j = x->node_off[unit]; j < x->node_off[unit + 1]; j++)
			mark(m, x->ids[j], vi);
		return;
	}
	for (uint32_t node = unit + x->size; node; node >>= 1)
		for (uint32_t j = x->node_off[node]; j < x->node_off[node + 1]; j++)
			mark(m, x->ids[j], vi);
}

static int emit(struct td_matcher *m, uint32_t field, int type, const char *s, size_t n,
		uint32_t ctx, const struct td_pat_dec *dec)
{
	if (n > UINT32_MAX)
		return -1;
	if (m->nvals == m->cap_vals &&
	    grow((void **)&m->vals, &m->cap_vals, m->nvals + 1, sizeof(*m->vals)) < 0) {
		m->oom = 1;
		return -1;
	}
	uint32_t vi = m->nvals++;
	struct mval *v = &m->vals[vi];
	v->s = s;
	v->len = (uint32_t)n;
	v->field = field;
	v->ctx = ctx;
	v->type = (uint8_t)type;
	if (m->field_stamp[field] != m->gen) {
		m->field_stamp[field] = m->gen;
		m->field_head[field] = TD_PAT_NONE;
		PUSH(m, present, npresent, cap_present, field);
	}
	v->next = m->field_head[field];
	m->field_head[field] = vi;

	const struct td_pat_field *f = &m->set->fields[field];
	uint32_t fl = f->flags;
	if (!fl)
		return 0;
	if ((fl & (TD_F_FOLD | TD_F_NUM)) && tmp_for(m, n) < 0)
		return -1;
	if (type == TD_V_STRING) {
		if (fl & TD_F_STR)
			hit(m, field, TD_K_STR, s, n, vi);
		if (fl & TD_F_PFX)
			affixes(m, f, field, TD_K_PFX, 0, s, n, vi);
		if (fl & TD_F_SFX)
			affixes(m, f, field, TD_K_SFX, 1, s, n, vi);
		if (fl & TD_F_FOLD) {
			size_t k = td_pat_fold(s, n, m->tmp, m->tmp_cap);
			if (k != (size_t)-1) {
				if (fl & TD_F_IC)
					hit(m, field, TD_K_IC, m->tmp, k, vi);
				if (fl & TD_F_PFX_IC)
					affixes(m, f, field, TD_K_PFX_IC, 0, m->tmp, k, vi);
				if (fl & TD_F_SFX_IC)
					affixes(m, f, field, TD_K_SFX_IC, 1, m->tmp, k, vi);
			}
		}
		if (fl & TD_F_WC)
			wildcards(m, f, field, s, n, vi);
		if (fl & TD_F_CIDR) {
			td_pat_u128 ip;
			int fam = td_pat_ip_parse(s, n, &ip);
			if (fam)
				stab(m, fam == 4 ? f->cidr4 : f->cidr6, ip, vi);
		}
	} else if (type == TD_V_NUMBER) {
		if (fl & TD_F_NUM) {
			uint64_t dg;
			size_t k = dec->ok
				       ? td_pat_num_key_dec(dec, (unsigned char *)m->tmp, &dg)
				       : td_pat_num_key_digest(s, n, (unsigned char *)m->tmp, &dg);
			const struct td_pat_hent *e =
			    lookup_h(m->set, field, TD_K_NUM, m->tmp, k,
				     td_pat_hash_u64(dg, (uint64_t)field << 8 | TD_K_NUM));
			if (e)
				mark_entry(m, e, vi);
		}
		if (fl & TD_F_RANGE)
			stab(m, f->num, td_pat_double_key(td_pat_num_double_dec(dec, s, n)), vi);
	} else if (fl & TD_F_LIT) {
		hit(m, field, TD_K_LIT,
		    type == TD_V_TRUE	 ? "t"
		    : type == TD_V_FALSE ? "f"
					 : "n",
		    1, vi);
	}
	return 0;
}

/* ---------------------------------------------------------------------------------- */
/* the scanner */

static const char *scan_value(struct td_matcher *m, const char *p, uint32_t node, uint32_t ctx,
			      int depth);

static const char *skip_value(struct td_matcher *m, const char *p, int depth)
{
	if (m->strict)
		return scan_value(m, p, TD_PAT_NONE, 0, depth);
	const char *end = m->end;
	if (p >= end)
		return fail(m, p, "expected a value");
	switch (*p) {
	case '"':
		p = skip_string(p + 1, end);
		return p ? p : fail(m, end, "unterminated string");
	case '{':
	case '[':
		p = skip_container(m->base, p + 1, end);
		return p ? p : fail(m, end, "unterminated object or array");
	case 't':
		return scan_literal(m, p, "true", 4);
	case 'f':
		return scan_literal(m, p, "false", 5);
	case 'n':
		return scan_literal(m, p, "null", 4);
	default:
		return scan_number(m, p);
	}
}

static uint32_t find_child(const struct td_pat_node *nd, const char *key, size_t klen)
{
	if (!nd->tab) {
		for (uint32_t i = 0; i < nd->nchild; i++)
			if (nd->child[i].klen == klen && td_pat_eq(nd->child[i].key, key, klen))
				return nd->child[i].node;
		return TD_PAT_NONE;
	}
	uint64_t h = td_pat_hash(key, klen, 0x5eed);
	for (uint32_t i = (uint32_t)h & nd->mask;; i = (i + 1) & nd->mask) {
		uint32_t c = nd->tab[i];
		if (!c)
			return TD_PAT_NONE;
		const struct td_pat_child *ch = &nd->child[c - 1];
		if (ch->h == h && ch->klen == klen && td_pat_eq(ch->key, key, klen))
			return ch->node;
	}
}

static const char *scan_object(struct td_matcher *m, const char *p, uint32_t node, uint32_t ctx,
			       int depth)
{
	const char *end = m->end;
	const struct td_pat_node *nd =
	    node != TD_PAT_NONE && m->set->nodes[node].nchild ? &m->set->nodes[node] : NULL;
	struct cursor cur = {NULL, 0, 0, 0};
	p = skip_ws(p, end);
	if (p < end && *p == '}')
		return p + 1;
	for (;;) {
		if (p >= end || *p != '"')
			return fail(m, p, "expected a string key");
		const char *k;
		size_t kn;
		const char *kq = cur_next(&cur, p + 1, end, 1);
		if (kq < end && *kq == '"') {
			/* plain ASCII without escapes: the bytes are the key */
			k = p + 1;
			kn = (size_t)(kq - k);
			p = kq + 1;
		} else {
			p = scan_string_slow(m, p + 1, kq, &k, &kn, nd != NULL);
			if (!p)
				return NULL;
		}
		p = skip_ws(p, end);
		if (p >= end || *p != ':')
			return fail(m, p, "expected ':' after a key");
		p = skip_ws(p + 1, end);
		uint32_t child = nd ? find_child(nd, k, kn) : TD_PAT_NONE;
		if (child != TD_PAT_NONE)
			p = scan_value(m, p, child, ctx, depth + 1);
		else if (p < end && *p == '"' && !m->strict) {
			/* the common case: a string nobody asked for */
			const char *vq = cur_next(&cur, p + 1, end, 0);
			p = vq < end && *vq == '"' ? vq + 1 : skip_string(vq, end);
			if (!p)
				return fail(m, end, "unterminated string");
		} else {
			p = skip_value(m, p, depth + 1);
		}
		if (!p)
			return NULL;
		p = skip_ws(p, end);
		if (p < end && *p == ',') {
			p = skip_ws(p + 1, end);
			continue;
		}
		if (p < end && *p == '}')
			return p + 1;
		return fail(m, p, "expected ',' or '}' in an object");
	}
}

static const char *scan_array(struct td_matcher *m, const char *p, uint32_t node, uint32_t ctx,
			      int depth)
{
	const char *end = m->end;
	int track = node != TD_PAT_NONE && m->set->track_arrays;
	int objects = node != TD_PAT_NONE && m->set->nodes[node].nchild;
	uint32_t aid = m->narrays++;
	p = skip_ws(p, end);
	if (p < end && *p == ']')
		return p + 1;
	for (;;) {
		uint32_t c = ctx;
		if (track && p < end && (*p == '[' || (*p == '{' && objects))) {
			/* an element that may hold values gets its own context */
			struct mctx x = {ctx, aid};
			uint32_t before = m->nctx;
			PUSH(m, ctxs, nctx, cap_ctx, x);
			if (m->nctx == before)
				return fail(m, p, "out of memory");
			c = before;
		}
		p = scan_value(m, p, node, c, depth + 1);
		if (!p)
			return NULL;
		p = skip_ws(p, end);
		if (p < end && *p == ',') {
			p = skip_ws(p + 1, end);
			continue;
		}
		if (p < end && *p == ']')
			return p + 1;
		return fail(m, p, "expected ',' or ']' in an array");
	}
}

static const char *scan_value(struct td_matcher *m, const char *p, uint32_t node, uint32_t ctx,
			      int depth)
{
	const char *end = m->end, *q;
	if (depth > TD_PAT_EVENT_DEPTH)
		return fail(m, p, "nesting too deep");
	if (p >= end)
		return fail(m, p, "expected a value");
	uint32_t field = node != TD_PAT_NONE ? m->set->nodes[node].field : TD_PAT_NONE;
	int type;
	size_t n;
	const char *s = p;
	struct td_pat_dec dec;
	dec.ok = 0;
	switch (*p) {
	case '{':
		if (node != TD_PAT_NONE && !m->set->nodes[node].nchild)
			return skip_value(m, p, depth);
		return scan_object(m, p + 1, node, ctx, depth);
	case '[':
		return scan_array(m, p + 1, node, ctx, depth);
	case '"':
		q = scan_string(m, p + 1, &s, &n, field != TD_PAT_NONE);
		type = TD_V_STRING;
		break;
	case 't':
		q = scan_literal(m, p, "true", 4);
		type = TD_V_TRUE;
		n = 4;
		break;
	case 'f':
		q = scan_literal(m, p, "false", 5);
		type = TD_V_FALSE;
		n = 5;
		break;
	case 'n':
		q = scan_literal(m, p, "null", 4);
		type = TD_V_NULL;
		n = 4;
		break;
	default:
		if (field != TD_PAT_NONE && (m->set->fields[field].flags & (TD_F_NUM | TD_F_RANGE)))
			q = scan_number_dec(m, p, &dec);
		else
			q = scan_number(m, p);
		type = TD_V_NUMBER;
		n = q ? (size_t)(q - p) : 0;
		break;
	}
	if (q && field != TD_PAT_NONE && emit(m, field, type, s, n, ctx, &dec) < 0)
		return fail(m, p, "out of memory");
	return q;
}

/* ---------------------------------------------------------------------------------- */
/* candidates: checked conditions and array consistency */

static int alt_any(struct td_matcher *m, const struct td_pat_leaf *leaf, const struct mval *v)
{
	if (tmp_for(m, v->len) < 0)
		return 0;
	for (uint32_t i = 0; i < leaf->nalt; i++)
		if (td_pat_alt_match(&leaf->alts[i], v->type, v->s, v->len, m->tmp, m->tmp_cap))
			return 1;
	return 0;
}

/* Does a checked condition hold? With want_ctx, its satisfying values' contexts are
 * appended to dpvals (and an absence that satisfies it appends nothing). */
static int check_cond(struct td_matcher *m, const struct td_pat_cond *c, int want_ctx)
{
	const struct td_pat_leaf *leaf = &m->set->leaves[c->leaf];
	if (m->field_stamp[c->field] != m->gen)
		return leaf->absent_ok;
	struct stamp2 *st = &m->checks[c->check];
	if (!want_ctx) {
		if (st->stamp == m->gen)
			return (int)st->val;
		st->stamp = m->gen;
		st->val = 0;
	}
	int ok = 0;
	for (uint32_t vi = m->field_head[c->field]; vi != TD_PAT_NONE; vi = m->vals[vi].next) {
		if (!leaf->any_present && !alt_any(m, leaf, &m->vals[vi]))
			continue;
		ok = 1;
		if (!want_ctx) {
			st->val = 1;
			return 1;
		}
		PUSH(m, dpvals, ndpvals, cap_dpvals, m->vals[vi].ctx);
	}
	return ok;
}

static int fam_push(struct td_matcher *m, uint64_t mask)
{
	uint32_t before = m->npool;
	PUSH(m, pool, npool, cap_pool, mask);
	return m->npool == before ? -1 : 0;
}

/* Keeps the maximal masks of pool[off, npool) (a superset always serves as well). */
static uint32_t fam_prune(struct td_matcher *m, uint32_t off)
{
	uint64_t *f = m->pool + off;
	uint32_t n = m->npool - off, o = 0;
	for (uint32_t i = 0; i < n; i++) {
		int dominated = 0;
		for (uint32_t j = 0; j < n && !dominated; j++) {
			if (i == j)
				continue;
			if ((f[i] | f[j]) == f[j] && (f[i] != f[j] || j < i))
				dominated = 1;
		}
		if (!dominated)
			f[o++] = f[i];
	}
	m->npool = off + o;
	return o;
}

/* acc <- acc U {a | b : a in acc, b in cur}; returns -1 on memory failure. */
static int fam_combine(struct td_matcher *m, struct dpnode *d)
{
	uint32_t off = m->npool;
	for (uint32_t i = 0; i < d->acc_n; i++) {
		if (fam_push(m, m->pool[d->acc_off + i]) < 0)
			return -1;
		for (uint32_t j = 0; j < d->cur_n; j++)
			if (fam_push(m, m->pool[d->acc_off + i] | m->pool[d->cur_off + j]) < 0)
				return -1;
	}
	d->acc_off = off;
	d->acc_n = fam_prune(m, off);
	d->has_cur = 0;
	return 0;
}

static struct dpnode *dp_node(struct td_matcher *m, uint32_t c)
{
	struct dpnode *d = &m->dp[c];
	if (d->stamp != m->dp_gen) {
		memset(d, 0, sizeof(*d));
		d->stamp = m->dp_gen;
		PUSH(m, dpnodes, ndpnodes, cap_dpnodes, c);
	}
	return d;
}

static int u32_desc(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
	return a < b ? 1 : a > b ? -1 : 0;
}

/*
 * Can one value per condition be chosen with no two in different elements of one
 * array? Conditions with a value outside every array, or satisfied by absence, fit
 * anything. For the rest this computes, bottom-up over the contexts, the sets of
 * conditions that can be satisfied together inside each element: an element combines
 * its own values with at most one element of each array inside it.
 */
static int consistent(struct td_matcher *m, const struct td_pat_branch *bp)
{
	const struct td_pattern_set *set = m->set;
	uint32_t k = 0;
	m->ndpvals = 0;
	for (uint32_t i = 0; i < bp->ncond; i++) {
		const struct td_pat_cond *c = &set->conds[bp->cond_off + i];
		uint32_t start = m->ndpvals;
		if (c->slot == TD_PAT_NONE) {
			check_cond(m, c, 1);
		} else {
			for (uint32_t h = m->slots[c->slot].val; h != TD_PAT_NONE;
			     h = m->hits[h].next)
				PUSH(m, dpvals, ndpvals, cap_dpvals, m->vals[m->hits[h].value].ctx);
		}
		if (m->oom)
			return 0;
		int free_cond = m->ndpvals == start;
		for (uint32_t j = start; j < m->ndpvals && !free_cond; j++)
			free_cond = m->dpvals[j] == 0;
		if (free_cond) {
			m->ndpvals = start;
			continue;
		}
		m->lists[k++] = start;
	}
	m->lists[k] = m->ndpvals;
	if (k <= 1)
		return 1;
	uint64_t full = k >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << k) - 1;
	uint32_t old_cap = m->cap_dp;
	if (grow((void **)&m->dp, &m->cap_dp, m->nctx, sizeof(*m->dp)) < 0) {
		m->oom = 1;
		return 0;
	}
	/* fresh entries must not carry a stamp that looks current */
	memset(m->dp + old_cap, 0, (size_t)(m->cap_dp - old_cap) * sizeof(*m->dp));
	if (++m->dp_gen == 0) {
		memset(m->dp, 0, (size_t)m->cap_dp * sizeof(*m->dp));
		m->dp_gen = 1;
	}
	m->ndpnodes = 0;
	m->npool = 0;
	for (uint32_t r = 0; r < k; r++) {
		for (uint32_t j = m->lists[r]; j < m->lists[r + 1]; j++) {
			uint32_t c = m->dpvals[j];
			dp_node(m, c)->direct |= (uint64_t)1 << r;
			for (c = m->ctxs[c].parent; c != TD_PAT_NONE; c = m->ctxs[c].parent) {
				if (m->dp[c].stamp == m->dp_gen)
					break;
				dp_node(m, c);
			}
		}
	}
	dp_node(m, 0);
	if (m->oom)
		return 0;
	/* children were created after their parents: descending ids visit them first */
	qsort(m->dpnodes, m->ndpnodes, sizeof(uint32_t), u32_desc);
	for (uint32_t i = 0; i < m->ndpnodes; i++) {
		uint32_t c = m->dpnodes[i];
		struct dpnode *d = &m->dp[c];
		if (d->acc_n == 0) {
			d->acc_off = m->npool;
			if (fam_push(m, 0) < 0)
				return 0;
			d->acc_n = 1;
		}
		if (d->has_cur && fam_combine(m, d) < 0)
			return 0;
		for (uint32_t j = 0; j < d->acc_n; j++) {
			m->pool[d->acc_off + j] |= d->direct;
			if ((m->pool[d->acc_off + j] & full) == full)
				return 1;
		}
		if (c == 0)
			break;
		/* report this element to its parent, grouped by array */
		struct dpnode *p = &m->dp[m->ctxs[c].parent];
		uint32_t arr = m->ctxs[c].array;
		if (p->acc_n == 0) {
			p->acc_off = m->npool;
			if (fam_push(m, 0) < 0)
				return 0;
			p->acc_n = 1;
		}
		if (p->has_cur && p->cur_array != arr && fam_combine(m, p) < 0)
			return 0;
		if (!p->has_cur) {
			p->has_cur = 1;
			p->cur_array = arr;
			p->cur_off = d->acc_off;
			p->cur_n = d->acc_n;
		} else {
			/* union of two elements' families of the same array */
			uint32_t off = m->npool;
			for (uint32_t j = 0; j < p->cur_n; j++)
				if (fam_push(m, m->pool[p->cur_off + j]) < 0)
					return 0;
			for (uint32_t j = 0; j < d->acc_n; j++)
				if (fam_push(m, m->pool[d->acc_off + j]) < 0)
					return 0;
			p->cur_off = off;
			p->cur_n = fam_prune(m, off);
		}
	}
	return 0;
}

static int verify(struct td_matcher *m, uint32_t b)
{
	const struct td_pattern_set *set = m->set;
	const struct td_pat_branch *bp = &set->branches[b];
	if (m->rule_stamp[bp->rule] == m->gen)
		return 0; /* the rule already matched */
	if (bp->nchecked) {
		for (uint32_t i = 0; i < bp->ncond; i++) {
			const struct td_pat_cond *c = &set->conds[bp->cond_off + i];
			if (c->slot == TD_PAT_NONE && !check_cond(m, c, 0))
				return 0;
		}
	}
	if (bp->ncond >= 2 && m->nctx > 1)
		return consistent(m, bp);
	return 1;
}

/* ---------------------------------------------------------------------------------- */

static void reset_stamps(struct td_matcher *m)
{
	const struct td_pattern_set *set = m->set;
	memset(m->slots, 0, (set->nslots ? set->nslots : 1) * sizeof(*m->slots));
	memset(m->branches, 0, (set->nbranches ? set->nbranches : 1) * sizeof(*m->branches));
	memset(m->field_stamp, 0, (set->nfields ? set->nfields : 1) * sizeof(uint32_t));
	memset(m->rule_stamp, 0, (set->nrules ? set->nrules : 1) * sizeof(uint32_t));
	memset(m->ent_stamp, 0, ((size_t)set->table_mask + 1) * sizeof(uint32_t));
	memset(m->checks, 0, (set->nchecks ? set->nchecks : 1) * sizeof(*m->checks));
	m->gen = 1;
}

static void sift_down(uint32_t *a, uint32_t i, uint32_t n)
{
	uint32_t v = a[i];
	for (;;) {
		uint32_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && a[c + 1] > a[c])
			c++;
		if (a[c] <= v)
			break;
		a[i] = a[c];
		i = c;
	}
	a[i] = v;
}

/* Ascending: insertion sort for the usual handful, heapsort beyond. */
static void sort_u32(uint32_t *a, uint32_t n)
{
	if (n > 48) {
		for (uint32_t i = n / 2; i-- > 0;)
			sift_down(a, i, n);
		for (uint32_t k = n - 1; k > 0; k--) {
			uint32_t t = a[0];
			a[0] = a[k];
			a[k] = t;
			sift_down(a, 0, k);
		}
		return;
	}
	for (uint32_t i = 1; i < n; i++) {
		uint32_t v = a[i], j = i;
		for (; j > 0 && a[j - 1] > v; j--)
			a[j] = a[j - 1];
		a[j] = v;
	}
}

static const char *first_type(const char *p, const char *end)
{
	if (p >= end)
		return "nothing";
	switch (*p) {
	case '[':
		return "an array";
	case '"':
		return "a string";
	case 't':
	case 'f':
		return "a boolean";
	case 'n':
		return "null";
	default:
		return (*p == '-' || (*p >= '0' && *p <= '9')) ? "a number" : "no JSON value";
	}
}

int td_matcher_match(struct td_matcher *m, const char *event, size_t len, const unsigned **ids,
		     char *err, size_t errlen)
{
	if (ids)
		*ids = NULL;
	if (!m || !ids || (!event && len))
		return -TD_EINVAL;
	const struct td_pattern_set *set = m->set;
	if (++m->gen == 0)
		reset_stamps(m);
	m->nvals = m->nhits = m->ncands = m->npresent = m->nres = 0;
	m->narrays = 0;
	m->nctx = 1;
	m->ctxs[0].parent = TD_PAT_NONE;
	m->ctxs[0].array = TD_PAT_NONE;
	m->oom = 0;
	m->err_msg = NULL;
	m->scratch_len = 0;
	if (ensure(&m->scratch, &m->scratch_cap, len + 16) < 0) {
		if (err && errlen)
			snprintf(err, errlen, "event: out of memory");
		return -TD_ENOMEM;
	}
	const char *p = event ? event : "", *end = p + len;
	m->base = p;
	m->end = end;
	p = skip_ws(p, end);
	if (p >= end || *p != '{') {
		if (err && errlen)
			snprintf(err, errlen, "event: expected a JSON object, found %s",
				 first_type(p, end));
		return -TD_EINVAL;
	}
	p = scan_object(m, p + 1, 0, 0, 1);
	if (!p && !m->err_msg)
		fail(m, end, "invalid JSON");
	if (p) {
		p = skip_ws(p, end);
		if (p != end)
			fail(m, p, "unexpected text after the object");
	}
	if (m->oom) {
		if (err && errlen)
			snprintf(err, errlen, "event: out of memory");
		return -TD_ENOMEM;
	}
	if (m->err_msg) {
		if (err && errlen) {
			size_t at = (size_t)(m->err_at - m->base);
			snprintf(err, errlen, "event: invalid JSON at byte %zu: %s", at,
				 m->err_msg);
		}
		return -TD_EINVAL;
	}
	/* branches made only of checked conditions */
	for (uint32_t i = 0; i < m->npresent; i++) {
		const struct td_pat_field *f = &set->fields[m->present[i]];
		for (uint32_t j = 0; j < f->presence_n; j++)
			push_cand(m, set->presence[f->presence_off + j]);
	}
	for (uint32_t i = 0; i < set->nalways; i++)
		push_cand(m, set->always[i]);
	for (uint32_t i = 0; i < m->ncands && !m->oom; i++) {
		uint32_t b = m->cands[i];
		if (verify(m, b)) {
			uint32_t r = set->branches[b].rule;
			m->rule_stamp[r] = m->gen;
			PUSH(m, res, nres, cap_res, r);
		}
	}
	if (m->oom || grow((void **)&m->ids, &m->cap_ids, m->nres + 1, sizeof(*m->ids)) < 0) {
		if (err && errlen)
			snprintf(err, errlen, "event: out of memory");
		return -TD_ENOMEM;
	}
	sort_u32(m->res, m->nres);
	for (uint32_t i = 0; i < m->nres; i++)
		m->ids[i] = set->rule_ids[m->res[i]];
	*ids = m->ids;
	return (int)m->nres;
}
