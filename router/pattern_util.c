/*
 * Leaf-value helpers of the pattern engine: exact decimal keys and doubles for JSON
 * numbers, per-code-point case folding (a table generated from the Unicode database),
 * UTF-8 validation, wildcard matching, IP address parsing, and the direct test of one
 * pattern alternative against one value, which the matcher uses for conditions it
 * cannot index (anything-but, exists, and leaves that mix those with others).
 *
 * Numbers: exact matching compares decimal values, not texts and not doubles, so 3,
 * 3.0 and 30e-1 are equal while 9007199254740993 and 9007199254740992 (the same
 * double) are not. numeric ranges compare doubles rounded correctly from the text.
 */
#include "pattern_internal.h"

#include <arpa/inet.h>
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- numbers ---- */

struct decimal {
	int neg;
	int zero;
	size_t nd;     /* significant digits (leading and trailing zeros dropped) */
	size_t kept;   /* digits written to the caller's buffer (at most its capacity) */
	int sticky;    /* a nonzero digit was dropped for lack of room */
	uint64_t mant; /* the digits as an integer when nd <= 19 */
	long long exp; /* value = digits * 10^exp */
};

/*
 * The common case: at most 19 significant digits, read straight into an integer.
 * Returns 0 when the number has more (then parse_decimal does the general work).
 */
static int decimal_fast(const char *s, size_t n, struct decimal *d)
{
	size_t i = 0;
	uint64_t mant = 0;
	unsigned nd = 0;
	long long frac = 0, e = 0;
	d->neg = 0;
	if (s[0] == '-') {
		d->neg = 1;
		i = 1;
	}
	for (; i < n && (unsigned)(s[i] - '0') <= 9; i++) {
		if (nd == 0 && s[i] == '0')
			continue;
		if (nd == 19)
			return 0;
		mant = mant * 10 + (uint64_t)(s[i] - '0');
		nd++;
	}
	if (i < n && s[i] == '.') {
		for (i++; i < n && (unsigned)(s[i] - '0') <= 9; i++) {
			frac++;
			if (nd == 0 && s[i] == '0')
				continue;
			if (nd == 19)
				return 0;
			mant = mant * 10 + (uint64_t)(s[i] - '0');
			nd++;
		}
	}
	if (i < n) {
		int eneg = 0;
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			eneg = s[i++] == '-';
		for (; i < n; i++)
			if (e < 1000000000LL)
				e = e * 10 + (s[i] - '0');
		if (eneg)
			e = -e;
	}
	d->kept = 0;
	d->sticky = 0;
	if (mant == 0) {
		d->zero = 1;
		d->neg = 0;
		d->nd = 0;
		d->mant = 0;
		d->exp = 0;
		return 1;
	}
	e -= frac;
	while (mant % 10 == 0) {
		mant /= 10;
		nd--;
		e++;
	}
	d->zero = 0;
	d->nd = nd;
	d->mant = mant;
	d->exp = e;
	return 1;
}

/* Splits a valid JSON number into its significant digits and exponent. */
static void parse_decimal(const char *s, size_t n, char *digits, size_t cap, struct decimal *d)
{
	size_t i = 0, idx = 0, last = 0, int_digits = 0, pending = 0;
	int seen = 0;
	memset(d, 0, sizeof(*d));
	if (i < n && s[i] == '-') {
		d->neg = 1;
		i++;
	}
	for (int part = 0; part < 2; part++) {
		for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, idx++) {
			char c = s[i];
			if (part == 0)
				int_digits++;
			if (c == '0') {
				if (seen)
					pending++;
				continue;
			}
			/* a nonzero digit: the zeros before it are significant */
			for (; pending; pending--) {
				if (d->kept < cap)
					digits[d->kept++] = '0';
				if (d->nd < 19)
					d->mant *= 10;
				d->nd++;
			}
			if (d->kept < cap)
				digits[d->kept++] = c;
			else
				d->sticky = 1;
			if (d->nd < 19)
				d->mant = d->mant * 10 + (uint64_t)(c - '0');
			d->nd++;
			seen = 1;
			last = idx;
		}
		if (part == 0 && i < n && s[i] == '.')
			i++;
		else if (part == 0)
			break;
	}
	long long e = 0;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		int eneg = 0;
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			eneg = s[i++] == '-';
		for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			if (e < 1000000000LL)
				e = e * 10 + (s[i] - '0');
		if (eneg)
			e = -e;
	}
	if (!seen) {
		d->zero = 1;
		d->neg = 0;
		return;
	}
	/* the place of the last significant digit */
	d->exp = (long long)int_digits - 1 - (long long)last + e;
}

static void put32(unsigned char *o, long long v)
{
	uint32_t u = (uint32_t)(int32_t)(v > 2000000000LL    ? 2000000000LL
					 : v < -2000000000LL ? -2000000000LL
							     : v);
	memcpy(o, &u, 4);
}

static uint64_t digest_small(uint64_t mant, long long exp, int neg)
{
	uint32_t e = (uint32_t)(int32_t)(exp > 2000000000LL    ? 2000000000LL
					 : exp < -2000000000LL ? -2000000000LL
							       : exp);
	return td_pat_mum(mant ^ 0x2d358dccaa6c78a5ULL,
			  ((uint64_t)e << 1 | (uint64_t)neg) ^ 0x8bb84b93962eacc9ULL);
}

size_t td_pat_num_key_digest(const char *s, size_t n, unsigned char *out, uint64_t *digest)
{
	struct decimal d;
	if (!decimal_fast(s, n, &d)) {
		/* digits go after a 6-byte header; the text has at least as many bytes */
		parse_decimal(s, n, (char *)out + 6, n, &d);
		if (d.nd > 19) {
			out[0] = 2;
			out[1] = (unsigned char)d.neg;
			put32(out + 2, d.exp);
			*digest = td_pat_hash(out, 6 + d.kept, 2);
			return 6 + d.kept;
		}
	}
	if (d.zero) {
		memset(out, 0, 14);
		out[0] = 1;
		*digest = digest_small(0, 0, 0);
		return 14;
	}
	out[0] = 1;
	out[1] = (unsigned char)d.neg;
	memcpy(out + 2, &d.mant, 8);
	put32(out + 10, d.exp);
	*digest = digest_small(d.mant, d.exp, d.neg);
	return 14;
}

size_t td_pat_num_key(const char *s, size_t n, unsigned char *out)
{
	uint64_t digest;
	return td_pat_num_key_digest(s, n, out, &digest);
}

size_t td_pat_num_key_dec(const struct td_pat_dec *d, unsigned char *out, uint64_t *digest)
{
	out[0] = 1;
	out[1] = (unsigned char)(d->mant ? d->neg : 0);
	memcpy(out + 2, &d->mant, 8);
	put32(out + 10, d->mant ? d->exp : 0);
	*digest = d->mant ? digest_small(d->mant, d->exp, d->neg) : digest_small(0, 0, 0);
	return 14;
}

uint64_t td_pat_num_digest(const unsigned char *key, size_t len)
{
	if (len == 14 && key[0] == 1) {
		uint64_t mant;
		int32_t e;
		memcpy(&mant, key + 2, 8);
		memcpy(&e, key + 10, 4);
		return digest_small(mant, e, key[1]);
	}
	return td_pat_hash(key, len, 2);
}

/* strtod in the "C" locale whatever the process's LC_NUMERIC says */
static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void make_c_locale(void)
{
	c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

static double strtod_c(const char *s)
{
	pthread_once(&c_locale_once, make_c_locale);
	return c_locale ? strtod_l(s, NULL, c_locale) : strtod(s, NULL);
}

static const double pow10_exact[] = {1e0,  1e1,	 1e2,  1e3,  1e4,  1e5,	 1e6,  1e7,
				     1e8,  1e9,	 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
				     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

double td_pat_num_double(const char *s, size_t n)
{
	/*
	 * Halfway points between doubles have at most 767 significant digits, so 800
	 * digits plus a sticky digit for anything dropped round like the full text.
	 */
	char out[840];
	struct decimal d;
	size_t o = 3;
	int fast = decimal_fast(s, n, &d);
	if (fast && !d.zero && d.nd <= 15 && d.exp >= -22 && d.exp <= 22) {
		/* exact operands, one rounding (Clinger's fast path) */
		double v = (double)d.mant;
		v = d.exp >= 0 ? v * pow10_exact[d.exp] : v / pow10_exact[-d.exp];
		return d.neg ? -v : v;
	}
	parse_decimal(s, n, out + o, 800, &d);
	if (d.zero)
		return 0.0;
	if (d.nd <= 15 && d.exp >= -22 && d.exp <= 22) {
		/* exact operands, one rounding (Clinger's fast path) */
		double v = (double)d.mant;
		v = d.exp >= 0 ? v * pow10_exact[d.exp] : v / pow10_exact[-d.exp];
		return d.neg ? -v : v;
	}
	/* "-0.<digits>e<exp>" (or " 0.<digits>..." without a sign) */
	out[0] = d.neg ? '-' : ' ';
	out[1] = '0';
	out[2] = '.';
	o += d.kept;
	if (d.sticky)
		out[o++] = '1';
	long long e10 = d.exp + (long long)d.nd;
	if (e10 > 100000)
		e10 = 100000;
	if (e10 < -100000)
		e10 = -100000;
	snprintf(out + o, sizeof(out) - o, "e%lld", e10);
	return strtod_c(out);
}

double td_pat_num_double_dec(const struct td_pat_dec *d, const char *s, size_t n)
{
	if (d->ok && d->mant == 0)
		return 0.0;
	if (d->ok && d->nd <= 15 && d->exp >= -22 && d->exp <= 22) {
		double v = (double)d->mant;
		v = d->exp >= 0 ? v * pow10_exact[d->exp] : v / pow10_exact[-d->exp];
		return d->neg ? -v : v;
	}
	return td_pat_num_double(s, n);
}

/* ---- UTF-8 and case folding ---- */

#include "pattern_fold.h"

int td_pat_utf8_valid(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t k;
		unsigned cp, min;
		if (c >= 0xc2 && c <= 0xdf) {
			k = 2;
			cp = c & 0x1f;
			min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 3;
			cp = c & 0x0f;
			min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 4;
			cp = c & 0x07;
			min = 0x10000;
		} else {
			return 0;
		}
		if (n - i < k)
			return 0;
		for (size_t j = 1; j < k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += k;
	}
	return 1;
}

static uint32_t fold_cp(uint32_t cp)
{
	size_t lo = 0, hi = sizeof(fold_table) / sizeof(fold_table[0]);
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (fold_table[mid][0] < cp)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < sizeof(fold_table) / sizeof(fold_table[0]) && fold_table[lo][0] == cp)
		return fold_table[lo][1];
	return cp;
}

size_t td_pat_fold(const char *str, size_t n, char *out, size_t cap)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, o = 0;
	while (i < n) {
		unsigned c = s[i];
		if (c < 0x80) {
			if (o >= cap)
				return (size_t)-1;
			out[o++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
			i++;
			continue;
		}
		size_t k = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
		if (k == 0 || n - i < k)
			return (size_t)-1;
		uint32_t cp = c & (k == 2 ? 0x1f : k == 3 ? 0x0f : 0x07);
		for (size_t j = 1; j < k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return (size_t)-1;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		i += k;
		cp = fold_cp(cp);
		if (cap - o < 4)
			return (size_t)-1;
		if (cp < 0x80) {
			out[o++] = (char)cp;
		} else if (cp < 0x800) {
			out[o++] = (char)(0xc0 | cp >> 6);
			out[o++] = (char)(0x80 | (cp & 0x3f));
		} else if (cp < 0x10000) {
			out[o++] = (char)(0xe0 | cp >> 12);
			out[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
			out[o++] = (char)(0x80 | (cp & 0x3f));
		} else {
			out[o++] = (char)(0xf0 | cp >> 18);
			out[o++] = (char)(0x80 | ((cp >> 12) & 0x3f));
			out[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
			out[o++] = (char)(0x80 | (cp & 0x3f));
		}
	}
	return o;
}

/* ---- wildcards ---- */

int td_pat_glob(const char *pat, size_t plen, const char *s, size_t n)
{
	size_t pi = 0, si = 0, star_pi = 0, star_si = 0;
	int star = 0;
	while (si < n) {
		if (pi < plen) {
			char c = pat[pi];
			if (c == '*') {
				star = 1;
				star_pi = ++pi;
				star_si = si;
				continue;
			}
			size_t adv = 1;
			if (c == '\\' && pi + 1 < plen) {
				c = pat[pi + 1];
				adv = 2;
			}
			if (c == s[si]) {
				pi += adv;
				si++;
				continue;
			}
		}
		if (!star)
			return 0;
		pi = star_pi;
		si = ++star_si;
	}
	while (pi < plen && pat[pi] == '*')
		pi++;
	return pi == plen;
}

/* ---- IP addresses ---- */

int td_pat_ip_parse(const char *s, size_t n, td_pat_u128 *out)
{
	char buf[48];
	unsigned char a[16];
	if (n == 0 || n >= sizeof(buf))
		return 0;
	memcpy(buf, s, n);
	buf[n] = 0;
	if (memchr(buf, 0, n))
		return 0;
	if (inet_pton(AF_INET, buf, a) == 1) {
		*out = (td_pat_u128)a[0] << 24 | (td_pat_u128)a[1] << 16 | (td_pat_u128)a[2] << 8 |
		       a[3];
		return 4;
	}
	if (inet_pton(AF_INET6, buf, a) == 1) {
		td_pat_u128 v = 0;
		for (int i = 0; i < 16; i++)
			v = v << 8 | a[i];
		*out = v;
		return 6;
	}
	return 0;
}

/* ---- one alternative against one value ---- */

static int bytes_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	size_t m = an < bn ? an : bn;
	int c = m ? memcmp(a, b, m) : 0;
	if (c)
		return c;
	return an < bn ? -1 : an > bn;
}

static int in_set(const struct td_pat_bytes *set, size_t nset, const char *s, size_t n)
{
	if (nset <= 8) {
		for (size_t i = 0; i < nset; i++)
			if (set[i].n == n && td_pat_eq(set[i].s, s, n))
				return 1;
		return 0;
	}
	size_t lo = 0, hi = nset;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = bytes_cmp(set[mid].s, set[mid].n, s, n);
		if (c == 0)
			return 1;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

int td_pat_alt_match(const struct td_pat_alt *a, int vtype, const char *s, size_t n, char *tmp,
		     size_t tmpcap)
{
	int str = vtype == TD_V_STRING;
	size_t k;
	td_pat_u128 ip;
	switch (a->op) {
	case TD_OP_EXACT_STR:
		return str && n == a->len && memcmp(s, a->str, n) == 0;
	case TD_OP_EXACT_NUM:
		if (vtype != TD_V_NUMBER || tmpcap < TD_PAT_NUMKEY_MAX(n))
			return 0;
		k = td_pat_num_key(s, n, (unsigned char *)tmp);
		return k == a->len && memcmp(tmp, a->str, k) == 0;
	case TD_OP_EXACT_LIT:
		return (a->lit == 't' && vtype == TD_V_TRUE) ||
		       (a->lit == 'f' && vtype == TD_V_FALSE) ||
		       (a->lit == 'n' && vtype == TD_V_NULL);
	case TD_OP_PREFIX:
		return str && n >= a->len && memcmp(s, a->str, a->len) == 0;
	case TD_OP_SUFFIX:
		return str && n >= a->len && memcmp(s + n - a->len, a->str, a->len) == 0;
	case TD_OP_EQ_IC:
	case TD_OP_PREFIX_IC:
	case TD_OP_SUFFIX_IC:
		if (!str)
			return 0;
		k = td_pat_fold(s, n, tmp, tmpcap);
		if (k == (size_t)-1 || k < a->len)
			return 0;
		if (a->op == TD_OP_EQ_IC)
			return k == a->len && memcmp(tmp, a->str, k) == 0;
		if (a->op == TD_OP_PREFIX_IC)
			return memcmp(tmp, a->str, a->len) == 0;
		return memcmp(tmp + k - a->len, a->str, a->len) == 0;
	case TD_OP_WILDCARD:
		return str && td_pat_glob(a->str, a->len, s, n);
	case TD_OP_NUMERIC:
		if (vtype != TD_V_NUMBER)
			return 0;
		ip = td_pat_double_key(td_pat_num_double(s, n));
		return ip >= a->lo && ip <= a->hi;
	case TD_OP_CIDR:
		return str && td_pat_ip_parse(s, n, &ip) == a->family && ip >= a->lo && ip <= a->hi;
	case TD_OP_EXISTS_TRUE:
		return 1;
	case TD_OP_EXISTS_FALSE:
		return 0;
	case TD_OP_AB_STRS:
		return !(str && in_set(a->set, a->nset, s, n));
	case TD_OP_AB_NUMS:
		if (vtype != TD_V_NUMBER)
			return 1;
		if (tmpcap < TD_PAT_NUMKEY_MAX(n))
			return 0;
		k = td_pat_num_key(s, n, (unsigned char *)tmp);
		return !in_set(a->set, a->nset, tmp, k);
	case TD_OP_AB_PREFIX:
		return !(str && n >= a->len && memcmp(s, a->str, a->len) == 0);
	case TD_OP_AB_SUFFIX:
		return !(str && n >= a->len && memcmp(s + n - a->len, a->str, a->len) == 0);
	case TD_OP_AB_IC:
		if (!str)
			return 1;
		k = td_pat_fold(s, n, tmp, tmpcap);
		if (k == (size_t)-1)
			return 0;
		return !in_set(a->set, a->nset, tmp, k);
	case TD_OP_AB_WILDCARD:
		if (!str)
			return 1;
		for (size_t i = 0; i < a->nset; i++)
			if (td_pat_glob(a->set[i].s, a->set[i].n, s, n))
				return 0;
		return 1;
	}
	return 0;
}
