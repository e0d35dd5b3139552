/*
 * Pattern compiler: validation of EventBridge patterns with messages that name the
 * place ("at detail.size: numeric: ..."), expansion of "$or" into conjunctions
 * (branches), and, at td_pattern_set_compile(), the indexes the matcher drives: one
 * open-addressing hash table over (field, kind, operand bytes) for exact values,
 * prefixes, suffixes, case-folded values and wildcard literal prefixes; per field the
 * distinct operand lengths of each prefix-like kind; a segment tree per field for
 * numeric ranges and CIDR blocks; and the lists of branches that the presence of a
 * field (or every event) triggers. See pattern_internal.h for the overall design.
 *
 * Semantics follow Amazon EventBridge and its reference implementation event-ruler,
 * with these deliberate choices: exact numbers compare as exact decimals; a key that
 * contains a dot is its own path segment (never the same as nesting); the same path
 * may be constrained twice in one conjunction (through "$or") and both must hold;
 * CIDR blocks accept /0 to /32 and /0 to /128 and ignore host bits.
 */
#include <triggerd/errors.h>
#include <triggerd/pattern.h>

#include "pattern_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------- */
/* growable arrays */

static int grow(void **ptr, uint32_t *cap, uint32_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	uint32_t ncap = *cap ? *cap : 8;
	while (ncap < need) {
		if (ncap > UINT32_MAX / 2)
			return -TD_ENOMEM;
		ncap *= 2;
	}
	void *n = realloc(*ptr, (size_t)ncap * elem);
	if (!n)
		return -TD_ENOMEM;
	*ptr = n;
	*cap = ncap;
	return 0;
}

#define GROW(arr, cap, need) grow((void **)&(arr), &(cap), (need), sizeof(*(arr)))

/* ---------------------------------------------------------------------------------- */
/* building state of one pattern */

struct seg {
	const char *key; /* NULL for a "$or" element */
	size_t klen;
	int index; /* "$or" element index */
};

struct pleaf {
	struct td_pat_leaf leaf;
	struct seg *path; /* the field path (object keys only) */
	size_t npath;
};

struct bvec {
	uint32_t *ids; /* leaf indexes */
	size_t n;
};

struct blist {
	struct bvec *v;
	size_t n;
};

struct build {
	char *err;
	size_t errlen;
	struct seg stack[TD_PAT_MAX_DEPTH * 2 + 4];
	size_t depth;
	struct pleaf *leaves;
	uint32_t nleaves, cap_leaves;
};

static void path_text(const struct build *b, char *out, size_t cap)
{
	size_t o = 0;
	out[0] = 0;
	for (size_t i = 0; i < b->depth && o + 8 < cap; i++) {
		const struct seg *s = &b->stack[i];
		if (!s->key) {
			o +=
			    (size_t)snprintf(out + o, cap - o, "%s$or[%d]", i ? "." : "", s->index);
			continue;
		}
		int plain = s->klen > 0;
		for (size_t k = 0; k < s->klen; k++) {
			unsigned char c = (unsigned char)s->key[k];
			if (c < 0x20 || c == '.' || c == '"' || c == '\\' || c == ' ' || c == 0x7f)
				plain = 0;
		}
		if (i && o + 1 < cap)
			out[o++] = '.';
		if (plain) {
			size_t n = s->klen < cap - o - 1 ? s->klen : cap - o - 1;
			memcpy(out + o, s->key, n);
			o += n;
		} else {
			if (o + 1 < cap)
				out[o++] = '"';
			for (size_t k = 0; k < s->klen && o + 7 < cap; k++) {
				unsigned char c = (unsigned char)s->key[k];
				if (c == '"' || c == '\\') {
					out[o++] = '\\';
					out[o++] = (char)c;
				} else if (c < 0x20 || c == 0x7f) {
					o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
				} else {
					out[o++] = (char)c;
				}
			}
			if (o + 1 < cap)
				out[o++] = '"';
		}
		out[o < cap ? o : cap - 1] = 0;
	}
	if (o < cap)
		out[o] = 0;
}

static int errf(struct build *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int errf(struct build *b, const char *fmt, ...)
{
	if (!b->err || !b->errlen)
		return -TD_EINVAL;
	char path[256];
	path_text(b, path, sizeof(path));
	int n = snprintf(b->err, b->errlen, "at %s: ", b->depth ? path : "the top level");
	if (n >= 0 && (size_t)n < b->errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(b->err + n, b->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -TD_EINVAL;
}

static int oom(struct build *b)
{
	if (b->err && b->errlen)
		snprintf(b->err, b->errlen, "out of memory");
	return -TD_ENOMEM;
}

/* A short rendering of a pattern value for messages: "=>", 12, null, an object. */
static const char *show(const struct td_pj *v, char *buf, size_t cap)
{
	switch (v->type) {
	case TD_PJ_STRING: {
		/* room for the escapes, "...", the closing quote and the NUL */
		size_t o = 0, lim = cap - 6;
		buf[o++] = '"';
		for (size_t i = 0; i < v->len; i++) {
			unsigned char c = (unsigned char)v->str[i];
			/* a whole UTF-8 sequence or nothing (the text is valid UTF-8) */
			size_t seq = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
			size_t need = c == '"' || c == '\\' ? 2 : c < 0x20 ? 6 : seq;
			if (o + need > lim || i + seq > v->len) {
				memcpy(buf + o, "...", 3);
				o += 3;
				break;
			}
			if (c == '"' || c == '\\') {
				buf[o++] = '\\';
				buf[o++] = (char)c;
			} else if (c < 0x20) {
				o += (size_t)snprintf(buf + o, cap - o, "\\u%04x", c);
			} else {
				memcpy(buf + o, v->str + i, seq);
				o += seq;
				i += seq - 1;
			}
		}
		buf[o++] = '"';
		buf[o] = 0;
		return buf;
	}
	case TD_PJ_NUMBER:
		snprintf(buf, cap, "%.*s%s", (int)(v->len < 40 ? v->len : 40), v->str,
			 v->len > 40 ? "..." : "");
		return buf;
	case TD_PJ_TRUE:
		return "true";
	case TD_PJ_FALSE:
		return "false";
	case TD_PJ_NULL:
		return "null";
	case TD_PJ_ARRAY:
		return "an array";
	case TD_PJ_OBJECT:
		return "an object";
	}
	return "a value";
}

/* ---------------------------------------------------------------------------------- */
/* leaves: the alternatives for one path */

static void alt_free(struct td_pat_alt *a)
{
	free(a->str);
	for (size_t i = 0; i < a->nset; i++)
		free(a->set[i].s);
	free(a->set);
}

static void leaf_free(struct td_pat_leaf *l)
{
	for (uint32_t i = 0; i < l->nalt; i++)
		alt_free(&l->alts[i]);
	free(l->alts);
	l->alts = NULL;
	l->nalt = 0;
}

static char *dup_bytes(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (d) {
		if (n)
			memcpy(d, s, n);
		d[n] = 0;
	}
	return d;
}

static int set_str(struct td_pat_alt *a, const char *s, size_t n)
{
	a->str = dup_bytes(s, n);
	a->len = n;
	return a->str ? 0 : -TD_ENOMEM;
}

static int set_folded(struct td_pat_alt *a, const char *s, size_t n)
{
	char *buf = malloc(2 * n + 4);
	if (!buf)
		return -TD_ENOMEM;
	size_t k = td_pat_fold(s, n, buf, 2 * n + 4);
	if (k == (size_t)-1) {
		free(buf);
		return -TD_EINVAL;
	}
	buf[k] = 0;
	a->str = buf;
	a->len = k;
	return 0;
}

static int set_numkey(struct td_pat_alt *a, const struct td_pj *v)
{
	unsigned char *buf = malloc(TD_PAT_NUMKEY_MAX(v->len));
	if (!buf)
		return -TD_ENOMEM;
	a->len = td_pat_num_key(v->str, v->len, buf);
	a->str = (char *)buf;
	return 0;
}

static int bytes_order(const void *x, const void *y)
{
	const struct td_pat_bytes *a = x, *b = y;
	size_t m = a->n < b->n ? a->n : b->n;
	int c = m ? memcmp(a->s, b->s, m) : 0;
	if (c)
		return c;
	return a->n < b->n ? -1 : a->n > b->n;
}

static void sort_set(struct td_pat_alt *a)
{
	if (a->nset < 2)
		return;
	qsort(a->set, a->nset, sizeof(*a->set), bytes_order);
	size_t o = 1;
	for (size_t i = 1; i < a->nset; i++) {
		if (bytes_order(&a->set[i], &a->set[o - 1]) == 0)
			free(a->set[i].s);
		else
			a->set[o++] = a->set[i];
	}
	a->nset = o;
}

/* Checks a wildcard operand: "\" escapes only "*" and "\", and "**" is not allowed. */
static int check_wildcard(struct build *b, const char *what, const struct td_pj *v)
{
	char buf[96];
	for (size_t i = 0; i < v->len; i++) {
		if (v->str[i] == '\\') {
			if (i + 1 >= v->len || (v->str[i + 1] != '*' && v->str[i + 1] != '\\'))
				return errf(b,
					    "%s: in %s, \"\\\" must be followed by \"*\" or \"\\\" "
					    "(escape a backslash as \"\\\\\")",
					    what, show(v, buf, sizeof(buf)));
			i++;
		} else if (v->str[i] == '*' && i + 1 < v->len && v->str[i + 1] == '*') {
			return errf(b, "%s: consecutive \"*\" characters are not allowed in %s",
				    what, show(v, buf, sizeof(buf)));
		}
	}
	return 0;
}

static int parse_cidr(struct build *b, const struct td_pj *v, struct td_pat_alt *a)
{
	char buf[96];
	if (v->type != TD_PJ_STRING)
		return errf(b, "cidr: expected a string such as \"10.0.0.0/24\", found %s",
			    show(v, buf, sizeof(buf)));
	const char *slash = memchr(v->str, '/', v->len);
	if (!slash || memchr(slash + 1, '/', v->len - (size_t)(slash + 1 - v->str)))
		return errf(b, "cidr: %s is not address/prefix-length (such as \"10.0.0.0/24\")",
			    show(v, buf, sizeof(buf)));
	td_pat_u128 ip;
	int fam = td_pat_ip_parse(v->str, (size_t)(slash - v->str), &ip);
	if (!fam)
		return errf(b, "cidr: %s does not start with an IPv4 or IPv6 address",
			    show(v, buf, sizeof(buf)));
	const char *d = slash + 1, *end = v->str + v->len;
	int bits = 0, width = fam == 4 ? 32 : 128;
	if (d == end || end - d > 3)
		return errf(b, "cidr: %s: the prefix length must be 0 to %d",
			    show(v, buf, sizeof(buf)), width);
	for (; d < end; d++) {
		if (*d < '0' || *d > '9')
			return errf(b, "cidr: %s: the prefix length must be 0 to %d",
				    show(v, buf, sizeof(buf)), width);
		bits = bits * 10 + (*d - '0');
	}
	if (bits > width)
		return errf(b, "cidr: %s: the prefix length must be 0 to %d for IPv%d",
			    show(v, buf, sizeof(buf)), width, fam);
	td_pat_u128 all = fam == 4 ? (td_pat_u128)0xffffffffu : ~(td_pat_u128)0;
	int host = width - bits;
	td_pat_u128 hostmask = host == 0     ? 0
			       : host >= 128 ? ~(td_pat_u128)0
					     : ((td_pat_u128)1 << host) - 1;
	hostmask &= all;
	a->op = TD_OP_CIDR;
	a->family = (uint8_t)fam;
	a->lo = ip & ~hostmask & all;
	a->hi = a->lo | hostmask;
	return 0;
}

static const char *const numeric_ops[] = {"=", "<", "<=", ">", ">="};

static int numeric_op(const struct td_pj *v)
{
	if (v->type != TD_PJ_STRING)
		return -1;
	for (int i = 0; i < 5; i++)
		if (strlen(numeric_ops[i]) == v->len && strcmp(v->str, numeric_ops[i]) == 0)
			return i;
	return -1;
}

static int numeric_value(struct build *b, const struct td_pj *arr, size_t i, const char *op,
			 double *out)
{
	char buf[96];
	if (i >= arr->len)
		return errf(b, "numeric: \"%s\" needs a number after it", op);
	const struct td_pj *v = &arr->items[i];
	if (v->type != TD_PJ_NUMBER)
		return errf(b, "numeric: the value after \"%s\" must be a number, found %s", op,
			    show(v, buf, sizeof(buf)));
	double d = td_pat_num_double(v->str, v->len);
	if (!isfinite(d))
		return errf(b, "numeric: %s is out of range", show(v, buf, sizeof(buf)));
	*out = d;
	return 0;
}

static int parse_numeric(struct build *b, const struct td_pj *arr, struct td_pat_alt *a)
{
	char buf[96];
	int rc;
	if (arr->type != TD_PJ_ARRAY)
		return errf(b, "numeric: expected an array such as [\">\", 0, \"<=\", 5], found %s",
			    show(arr, buf, sizeof(buf)));
	if (arr->len == 0)
		return errf(b, "numeric: expected an operator, found an empty array");
	int op = numeric_op(&arr->items[0]);
	if (op < 0)
		return errf(b,
			    "numeric: expected an operator, found %s (operators: =, <, <=, >, >=)",
			    show(&arr->items[0], buf, sizeof(buf)));
	double x;
	if ((rc = numeric_value(b, arr, 1, numeric_ops[op], &x)) < 0)
		return rc;
	uint64_t k = td_pat_double_key(x);
	a->op = TD_OP_NUMERIC;
	a->lo = 0;
	a->hi = UINT64_MAX;
	switch (op) {
	case 0:
		a->lo = a->hi = k;
		break;
	case 1:
		a->hi = (td_pat_u128)k - 1;
		break;
	case 2:
		a->hi = k;
		break;
	case 3:
		a->lo = (td_pat_u128)k + 1;
		break;
	case 4:
		a->lo = k;
		break;
	}
	if (arr->len == 2)
		return 0;
	if (op <= 2)
		return errf(b,
			    "numeric: nothing may follow \"%s\" %s (write a range as [\">\", low, "
			    "\"<\", high])",
			    numeric_ops[op], show(&arr->items[1], buf, sizeof(buf)));
	int op2 = numeric_op(&arr->items[2]);
	if (op2 != 1 && op2 != 2)
		return errf(b, "numeric: expected \"<\" or \"<=\" after the lower bound, found %s",
			    show(&arr->items[2], buf, sizeof(buf)));
	double y;
	if ((rc = numeric_value(b, arr, 3, numeric_ops[op2], &y)) < 0)
		return rc;
	if (arr->len > 4)
		return errf(b, "numeric: too many elements (at most a lower and an upper bound)");
	if (!(x < y)) {
		char b2[96];
		return errf(b, "numeric: the lower bound %s is not below the upper bound %s",
			    show(&arr->items[1], buf, sizeof(buf)),
			    show(&arr->items[3], b2, sizeof(b2)));
	}
	k = td_pat_double_key(y);
	a->hi = op2 == 1 ? (td_pat_u128)k - 1 : k;
	return 0;
}

/* {"prefix": "x"} or {"prefix": {"equals-ignore-case": "x"}} (and suffix). */
static int parse_affix(struct build *b, const char *what, const struct td_pj *v,
		       struct td_pat_alt *a, int op, int op_ic)
{
	char buf[96];
	if (v->type == TD_PJ_STRING) {
		a->op = (uint8_t)op;
		return set_str(a, v->str, v->len) < 0 ? oom(b) : 0;
	}
	if (v->type == TD_PJ_OBJECT && v->len == 1 &&
	    strcmp(v->members[0].key, "equals-ignore-case") == 0 &&
	    v->members[0].klen == strlen("equals-ignore-case")) {
		const struct td_pj *s = &v->members[0].value;
		if (s->type != TD_PJ_STRING)
			return errf(b, "%s: equals-ignore-case: expected a string, found %s", what,
				    show(s, buf, sizeof(buf)));
		a->op = (uint8_t)op_ic;
		return set_folded(a, s->str, s->len) < 0 ? oom(b) : 0;
	}
	return errf(b, "%s: expected a string or {\"equals-ignore-case\": string}, found %s", what,
		    show(v, buf, sizeof(buf)));
}

static int set_add(struct build *b, struct td_pat_alt *a, const char *s, size_t n, int fold)
{
	struct td_pat_bytes *set = realloc(a->set, (a->nset + 1) * sizeof(*set));
	if (!set)
		return oom(b);
	a->set = set;
	struct td_pat_alt tmp = {0};
	int rc = fold ? set_folded(&tmp, s, n) : set_str(&tmp, s, n);
	if (rc < 0)
		return oom(b);
	set[a->nset].s = tmp.str;
	set[a->nset].n = tmp.len;
	a->nset++;
	return 0;
}

/* anything-but: a string, a number, a list of either, or an operator object. */
static int parse_anything_but(struct build *b, const struct td_pj *v, struct td_pat_alt *a)
{
	char buf[96];
	int rc;
	if (v->type == TD_PJ_STRING) {
		a->op = TD_OP_AB_STRS;
		return set_add(b, a, v->str, v->len, 0);
	}
	if (v->type == TD_PJ_NUMBER) {
		a->op = TD_OP_AB_NUMS;
		struct td_pat_alt tmp = {0};
		if (set_numkey(&tmp, v) < 0)
			return oom(b);
		rc = set_add(b, a, tmp.str, tmp.len, 0);
		free(tmp.str);
		return rc;
	}
	if (v->type == TD_PJ_ARRAY) {
		if (v->len == 0)
			return errf(b, "anything-but: the list is empty");
		int strs = 0, nums = 0;
		for (size_t i = 0; i < v->len; i++) {
			const struct td_pj *e = &v->items[i];
			if (e->type == TD_PJ_STRING) {
				strs++;
				if ((rc = set_add(b, a, e->str, e->len, 0)) < 0)
					return rc;
			} else if (e->type == TD_PJ_NUMBER) {
				nums++;
				struct td_pat_alt tmp = {0};
				if (set_numkey(&tmp, e) < 0)
					return oom(b);
				rc = set_add(b, a, tmp.str, tmp.len, 0);
				free(tmp.str);
				if (rc < 0)
					return rc;
			} else {
				return errf(b,
					    "anything-but: list values must be strings or numbers, "
					    "found %s",
					    show(e, buf, sizeof(buf)));
			}
		}
		if (strs && nums)
			return errf(b, "anything-but: a list must hold only strings or only "
				       "numbers, not both");
		a->op = strs ? TD_OP_AB_STRS : TD_OP_AB_NUMS;
		sort_set(a);
		return 0;
	}
	if (v->type != TD_PJ_OBJECT)
		return errf(b,
			    "anything-but: expected a string, a number, a list of strings or of "
			    "numbers, or an object, found %s",
			    show(v, buf, sizeof(buf)));
	if (v->len != 1)
		return errf(b,
			    "anything-but: an operator object must have exactly one key, found %zu",
			    v->len);
	const char *op = v->members[0].key;
	const struct td_pj *x = &v->members[0].value;
	int is_prefix = strcmp(op, "prefix") == 0, is_suffix = strcmp(op, "suffix") == 0;
	if (is_prefix || is_suffix) {
		if (x->type != TD_PJ_STRING)
			return errf(b, "anything-but: %s: expected a string, found %s", op,
				    show(x, buf, sizeof(buf)));
		if (x->len == 0)
			return errf(b, "anything-but: %s: the %s must not be empty", op, op);
		a->op = is_prefix ? TD_OP_AB_PREFIX : TD_OP_AB_SUFFIX;
		return set_str(a, x->str, x->len) < 0 ? oom(b) : 0;
	}
	int is_ic = strcmp(op, "equals-ignore-case") == 0, is_wc = strcmp(op, "wildcard") == 0;
	if (!is_ic && !is_wc) {
		struct td_pj key = {
		    .type = TD_PJ_STRING, .str = v->members[0].key, .len = v->members[0].klen};
		return errf(b,
			    "anything-but: unsupported operator %s (allowed inside anything-but: "
			    "prefix, suffix, equals-ignore-case, wildcard)",
			    show(&key, buf, sizeof(buf)));
	}
	a->op = is_ic ? TD_OP_AB_IC : TD_OP_AB_WILDCARD;
	const struct td_pj *one = x;
	size_t n = 1;
	if (x->type == TD_PJ_ARRAY) {
		if (x->len == 0)
			return errf(b, "anything-but: %s: the list is empty", op);
		one = x->items;
		n = x->len;
	}
	for (size_t i = 0; i < n; i++) {
		const struct td_pj *e = &one[i];
		if (e->type != TD_PJ_STRING)
			return errf(b,
				    "anything-but: %s: expected a string or a list of strings, "
				    "found %s",
				    op, show(e, buf, sizeof(buf)));
		if (is_wc) {
			char what[64];
			snprintf(what, sizeof(what), "anything-but: wildcard");
			if ((rc = check_wildcard(b, what, e)) < 0)
				return rc;
		}
		if ((rc = set_add(b, a, e->str, e->len, is_ic)) < 0)
			return rc;
	}
	sort_set(a);
	return 0;
}

static int parse_operator(struct build *b, const struct td_pj *obj, struct td_pat_alt *a)
{
	char buf[96];
	if (obj->len != 1)
		return errf(b, "an operator object must have exactly one key, found %zu", obj->len);
	const char *op = obj->members[0].key;
	size_t oplen = obj->members[0].klen;
	const struct td_pj *v = &obj->members[0].value;
	if (strlen(op) != oplen)
		goto unknown;
	if (strcmp(op, "prefix") == 0)
		return parse_affix(b, "prefix", v, a, TD_OP_PREFIX, TD_OP_PREFIX_IC);
	if (strcmp(op, "suffix") == 0)
		return parse_affix(b, "suffix", v, a, TD_OP_SUFFIX, TD_OP_SUFFIX_IC);
	if (strcmp(op, "equals-ignore-case") == 0) {
		if (v->type != TD_PJ_STRING)
			return errf(b, "equals-ignore-case: expected a string, found %s",
				    show(v, buf, sizeof(buf)));
		a->op = TD_OP_EQ_IC;
		return set_folded(a, v->str, v->len) < 0 ? oom(b) : 0;
	}
	if (strcmp(op, "wildcard") == 0) {
		if (v->type != TD_PJ_STRING)
			return errf(b, "wildcard: expected a string, found %s",
				    show(v, buf, sizeof(buf)));
		int rc = check_wildcard(b, "wildcard", v);
		if (rc < 0)
			return rc;
		a->op = TD_OP_WILDCARD;
		return set_str(a, v->str, v->len) < 0 ? oom(b) : 0;
	}
	if (strcmp(op, "anything-but") == 0)
		return parse_anything_but(b, v, a);
	if (strcmp(op, "numeric") == 0)
		return parse_numeric(b, v, a);
	if (strcmp(op, "exists") == 0) {
		if (v->type != TD_PJ_TRUE && v->type != TD_PJ_FALSE)
			return errf(b, "exists: expected true or false, found %s",
				    show(v, buf, sizeof(buf)));
		a->op = v->type == TD_PJ_TRUE ? TD_OP_EXISTS_TRUE : TD_OP_EXISTS_FALSE;
		return 0;
	}
	if (strcmp(op, "cidr") == 0)
		return parse_cidr(b, v, a);
unknown:;
	struct td_pj key = {.type = TD_PJ_STRING, .str = obj->members[0].key, .len = oplen};
	return errf(b,
		    "unknown operator %s (known: prefix, suffix, equals-ignore-case, wildcard, "
		    "anything-but, numeric, exists, cidr)",
		    show(&key, buf, sizeof(buf)));
}

static int enumerable_op(int op)
{
	return op <= TD_OP_CIDR;
}

static int parse_leaf(struct build *b, const struct td_pj *arr, struct td_pat_leaf *leaf)
{
	char buf[96];
	int rc;
	memset(leaf, 0, sizeof(*leaf));
	if (arr->len == 0)
		return errf(b, "empty array: a field needs at least one value or operator");
	leaf->alts = calloc(arr->len, sizeof(*leaf->alts));
	if (!leaf->alts)
		return oom(b);
	leaf->enumerable = 1;
	for (size_t i = 0; i < arr->len; i++) {
		const struct td_pj *v = &arr->items[i];
		struct td_pat_alt *a = &leaf->alts[leaf->nalt];
		switch (v->type) {
		case TD_PJ_STRING:
			a->op = TD_OP_EXACT_STR;
			rc = set_str(a, v->str, v->len) < 0 ? oom(b) : 0;
			break;
		case TD_PJ_NUMBER:
			a->op = TD_OP_EXACT_NUM;
			rc = set_numkey(a, v) < 0 ? oom(b) : 0;
			break;
		case TD_PJ_TRUE:
		case TD_PJ_FALSE:
		case TD_PJ_NULL:
			a->op = TD_OP_EXACT_LIT;
			a->lit = v->type == TD_PJ_TRUE ? 't' : v->type == TD_PJ_FALSE ? 'f' : 'n';
			rc = 0;
			break;
		case TD_PJ_OBJECT:
			rc = parse_operator(b, v, a);
			break;
		default:
			rc = errf(b,
				  "expected a string, number, boolean, null or operator object in "
				  "the array, found %s",
				  show(v, buf, sizeof(buf)));
			break;
		}
		leaf->nalt++; /* counted even on failure so leaf_free() releases it */
		if (rc < 0)
			return rc;
		if (!enumerable_op(a->op))
			leaf->enumerable = 0;
		if (a->op == TD_OP_EXISTS_FALSE)
			leaf->absent_ok = 1;
		if (a->op == TD_OP_EXISTS_TRUE)
			leaf->any_present = 1;
	}
	return 0;
}

/* ---------------------------------------------------------------------------------- */
/* conjunctions */

static void blist_free(struct blist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].ids);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* out = every concatenation of one branch of a and one of c. */
static int cross(struct build *b, struct blist *a, const struct blist *c)
{
	if (a->n * c->n > TD_PAT_MAX_BRANCHES)
		return errf(b, "the pattern expands through $or into more than %d combinations",
			    TD_PAT_MAX_BRANCHES);
	size_t total = a->n * c->n;
	struct blist out = {calloc(total ? total : 1, sizeof(struct bvec)), 0};
	if (!out.v)
		return oom(b);
	for (size_t i = 0; i < a->n; i++) {
		for (size_t j = 0; j < c->n; j++) {
			size_t n = a->v[i].n + c->v[j].n;
			if (n > TD_PAT_MAX_CONDS) {
				blist_free(&out);
				return errf(b, "more than %d fields must match together",
					    TD_PAT_MAX_CONDS);
			}
			struct bvec *v = &out.v[out.n++];
			v->ids = malloc((n ? n : 1) * sizeof(uint32_t));
			if (!v->ids) {
				blist_free(&out);
				return oom(b);
			}
			if (a->v[i].n)
				memcpy(v->ids, a->v[i].ids, a->v[i].n * sizeof(uint32_t));
			if (c->v[j].n)
				memcpy(v->ids + a->v[i].n, c->v[j].ids,
				       c->v[j].n * sizeof(uint32_t));
			v->n = n;
		}
	}
	blist_free(a);
	*a = out;
	return 0;
}

static int push_seg(struct build *b, const char *key, size_t klen, int index)
{
	if (b->depth >= sizeof(b->stack) / sizeof(b->stack[0]))
		return errf(b, "the pattern nests deeper than %d levels", TD_PAT_MAX_DEPTH);
	b->stack[b->depth].key = key;
	b->stack[b->depth].klen = klen;
	b->stack[b->depth].index = index;
	b->depth++;
	return 0;
}

static int key_depth(const struct build *b)
{
	int n = 0;
	for (size_t i = 0; i < b->depth; i++)
		n += b->stack[i].key != NULL;
	return n;
}

static int build_object(struct build *b, const struct td_pj *obj, struct blist *out);

static int build_member(struct build *b, const struct td_pj_member *m, struct blist *acc)
{
	char buf[96];
	int rc;
	const struct td_pj *v = &m->value;
	if (m->klen == 3 && memcmp(m->key, "$or", 3) == 0) {
		if (v->type != TD_PJ_ARRAY)
			return errf(b, "$or must be an array of at least two objects, found %s",
				    show(v, buf, sizeof(buf)));
		if (v->len < 2)
			return errf(b, "$or must be an array of at least two objects, found %zu",
				    v->len);
		struct blist alts = {0};
		for (size_t i = 0; i < v->len; i++) {
			if ((rc = push_seg(b, NULL, 0, (int)i)) < 0)
				goto or_fail;
			if (v->items[i].type != TD_PJ_OBJECT) {
				rc = errf(b, "expected an object, found %s",
					  show(&v->items[i], buf, sizeof(buf)));
				goto or_fail;
			}
			struct blist sub = {0};
			if ((rc = build_object(b, &v->items[i], &sub)) < 0)
				goto or_fail;
			b->depth--;
			if (alts.n + sub.n > TD_PAT_MAX_BRANCHES) {
				blist_free(&sub);
				rc = errf(b,
					  "the pattern expands through $or into more than %d "
					  "combinations",
					  TD_PAT_MAX_BRANCHES);
				goto or_fail;
			}
			struct bvec *nv = realloc(alts.v, (alts.n + sub.n) * sizeof(*nv));
			if (!nv) {
				blist_free(&sub);
				rc = oom(b);
				goto or_fail;
			}
			alts.v = nv;
			memcpy(alts.v + alts.n, sub.v, sub.n * sizeof(*nv));
			alts.n += sub.n;
			free(sub.v);
		}
		rc = cross(b, acc, &alts);
		blist_free(&alts);
		return rc;
	or_fail:
		blist_free(&alts);
		return rc;
	}
	if ((rc = push_seg(b, m->key, m->klen, 0)) < 0)
		return rc;
	if (key_depth(b) > TD_PAT_MAX_DEPTH) {
		rc = errf(b, "the pattern nests deeper than %d levels", TD_PAT_MAX_DEPTH);
		goto out;
	}
	if (v->type == TD_PJ_OBJECT) {
		struct blist sub = {0};
		if ((rc = build_object(b, v, &sub)) < 0)
			goto out;
		rc = cross(b, acc, &sub);
		blist_free(&sub);
	} else if (v->type == TD_PJ_ARRAY) {
		if ((rc = GROW(b->leaves, b->cap_leaves, b->nleaves + 1)) < 0) {
			rc = oom(b);
			goto out;
		}
		struct pleaf *pl = &b->leaves[b->nleaves];
		memset(pl, 0, sizeof(*pl));
		b->nleaves++;
		if ((rc = parse_leaf(b, v, &pl->leaf)) < 0)
			goto out;
		pl->path = malloc(b->depth * sizeof(struct seg));
		if (!pl->path) {
			rc = oom(b);
			goto out;
		}
		for (size_t i = 0; i < b->depth; i++)
			if (b->stack[i].key)
				pl->path[pl->npath++] = b->stack[i];
		uint32_t id = b->nleaves - 1;
		for (size_t i = 0; i < acc->n; i++) {
			struct bvec *bv = &acc->v[i];
			if (bv->n + 1 > TD_PAT_MAX_CONDS) {
				rc = errf(b, "more than %d fields must match together",
					  TD_PAT_MAX_CONDS);
				goto out;
			}
			uint32_t *ids = realloc(bv->ids, (bv->n + 1) * sizeof(uint32_t));
			if (!ids) {
				rc = oom(b);
				goto out;
			}
			ids[bv->n++] = id;
			bv->ids = ids;
		}
	} else {
		rc = errf(b, "expected an array of values or an object of fields, found %s",
			  show(v, buf, sizeof(buf)));
	}
out:
	b->depth--;
	return rc;
}

static int member_order(const void *x, const void *y)
{
	const struct td_pj_member *a = *(const struct td_pj_member *const *)x;
	const struct td_pj_member *c = *(const struct td_pj_member *const *)y;
	size_t m = a->klen < c->klen ? a->klen : c->klen;
	int r = m ? memcmp(a->key, c->key, m) : 0;
	if (r)
		return r;
	return a->klen < c->klen ? -1 : a->klen > c->klen;
}

/* Duplicate keys would make one of them silently lost: refuse them. */
static int check_duplicates(struct build *b, const struct td_pj *obj)
{
	if (obj->len < 2)
		return 0;
	const struct td_pj_member **v = malloc(obj->len * sizeof(*v));
	if (!v)
		return oom(b);
	for (size_t i = 0; i < obj->len; i++)
		v[i] = &obj->members[i];
	qsort(v, obj->len, sizeof(*v), member_order);
	int rc = 0;
	for (size_t i = 1; i < obj->len && rc == 0; i++)
		if (member_order(&v[i - 1], &v[i]) == 0) {
			struct td_pj key = {
			    .type = TD_PJ_STRING, .str = v[i]->key, .len = v[i]->klen};
			char buf[96];
			rc = errf(b, "duplicate key %s", show(&key, buf, sizeof(buf)));
		}
	free(v);
	return rc;
}

static int build_object(struct build *b, const struct td_pj *obj, struct blist *out)
{
	int rc;
	if (obj->len == 0)
		return errf(b, "empty object: name at least one field");
	if ((rc = check_duplicates(b, obj)) < 0)
		return rc;
	out->v = calloc(1, sizeof(struct bvec));
	if (!out->v)
		return oom(b);
	out->n = 1;
	for (size_t i = 0; i < obj->len; i++)
		if ((rc = build_member(b, &obj->members[i], out)) < 0) {
			blist_free(out);
			return rc;
		}
	return 0;
}

static void build_free(struct build *b)
{
	for (uint32_t i = 0; i < b->nleaves; i++) {
		leaf_free(&b->leaves[i].leaf);
		free(b->leaves[i].path);
	}
	free(b->leaves);
	b->leaves = NULL;
	b->nleaves = 0;
}

/* Parses and expands one pattern; on success b holds the leaves and out the branches. */
static int build_pattern(struct build *b, const char *text, size_t len, struct td_pj **dom,
			 struct blist *out)
{
	char jerr[200];
	*dom = td_pj_parse(text, len, jerr, sizeof(jerr));
	if (!*dom) {
		if (b->err && b->errlen)
			snprintf(b->err, b->errlen, "pattern: %s", jerr);
		return strstr(jerr, "out of memory") ? -TD_ENOMEM : -TD_EINVAL;
	}
	if ((*dom)->type != TD_PJ_OBJECT) {
		if (b->err && b->errlen)
			snprintf(b->err, b->errlen, "pattern: expected a JSON object, found %s",
				 td_pj_type_name((*dom)->type));
		return -TD_EINVAL;
	}
	return build_object(b, *dom, out);
}

int td_pattern_validate(const char *pattern, size_t len, char *err, size_t errlen)
{
	struct build b = {.err = err, .errlen = errlen};
	struct td_pj *dom = NULL;
	struct blist br = {0};
	int rc = build_pattern(&b, pattern, len, &dom, &br);
	blist_free(&br);
	build_free(&b);
	td_pj_free(dom);
	return rc;
}

/* ---------------------------------------------------------------------------------- */
/* the set: field tree and committing patterns */

static int node_rehash(struct td_pat_node *n)
{
	uint32_t size = 16;
	while (size < n->nchild * 2 + 2)
		size *= 2;
	uint32_t *tab = calloc(size, sizeof(uint32_t));
	if (!tab)
		return -TD_ENOMEM;
	for (uint32_t i = 0; i < n->nchild; i++) {
		uint32_t h = (uint32_t)n->child[i].h & (size - 1);
		while (tab[h])
			h = (h + 1) & (size - 1);
		tab[h] = i + 1;
	}
	free(n->tab);
	n->tab = tab;
	n->mask = size - 1;
	return 0;
}

static uint32_t node_find(const struct td_pattern_set *set, uint32_t node, const char *key,
			  size_t klen, uint64_t h)
{
	const struct td_pat_node *n = &set->nodes[node];
	if (!n->tab) {
		for (uint32_t i = 0; i < n->nchild; i++)
			if (n->child[i].klen == klen && memcmp(n->child[i].key, key, klen) == 0)
				return n->child[i].node;
		return TD_PAT_NONE;
	}
	for (uint32_t i = (uint32_t)h & n->mask;; i = (i + 1) & n->mask) {
		uint32_t c = n->tab[i];
		if (!c)
			return TD_PAT_NONE;
		const struct td_pat_child *ch = &n->child[c - 1];
		if (ch->h == h && ch->klen == klen && memcmp(ch->key, key, klen) == 0)
			return ch->node;
	}
}

static int node_child(struct td_pattern_set *set, uint32_t node, const char *key, size_t klen,
		      uint32_t *out)
{
	uint64_t h = td_pat_hash(key, klen, 0x5eed);
	uint32_t c = node_find(set, node, key, klen, h);
	if (c != TD_PAT_NONE) {
		*out = c;
		return 0;
	}
	if (GROW(set->nodes, set->cap_nodes, set->nnodes + 1) < 0)
		return -TD_ENOMEM;
	struct td_pat_node *n = &set->nodes[node];
	if (grow((void **)&n->child, &n->cap, n->nchild + 1, sizeof(*n->child)) < 0)
		return -TD_ENOMEM;
	char *k = dup_bytes(key, klen);
	if (!k)
		return -TD_ENOMEM;
	uint32_t id = set->nnodes++;
	memset(&set->nodes[id], 0, sizeof(set->nodes[id]));
	set->nodes[id].field = TD_PAT_NONE;
	n->child[n->nchild].h = h;
	n->child[n->nchild].key = k;
	n->child[n->nchild].klen = (uint32_t)klen;
	n->child[n->nchild].node = id;
	n->nchild++;
	if (n->nchild > TD_PAT_LINEAR_CHILDREN && node_rehash(n) < 0)
		return -TD_ENOMEM;
	*out = id;
	return 0;
}

struct td_pattern_set *td_pattern_set_create(void)
{
	struct td_pattern_set *set = calloc(1, sizeof(*set));
	if (!set)
		return NULL;
	if (GROW(set->nodes, set->cap_nodes, 1) < 0)
		goto fail;
	memset(&set->nodes[0], 0, sizeof(set->nodes[0]));
	set->nodes[0].field = TD_PAT_NONE;
	set->nnodes = 1;
	return set;
fail:
	free(set);
	return NULL;
}

static void ivx_free_field(struct td_pat_field *f)
{
	td_pat_ivx_free(f->num);
	td_pat_ivx_free(f->cidr4);
	td_pat_ivx_free(f->cidr6);
}

void td_pattern_set_destroy(struct td_pattern_set *set)
{
	if (!set)
		return;
	for (uint32_t i = 0; i < set->nnodes; i++) {
		for (uint32_t j = 0; j < set->nodes[i].nchild; j++)
			free(set->nodes[i].child[j].key);
		free(set->nodes[i].child);
		free(set->nodes[i].tab);
	}
	free(set->nodes);
	for (uint32_t i = 0; i < set->nfields; i++)
		ivx_free_field(&set->fields[i]);
	free(set->fields);
	for (uint32_t i = 0; i < set->nleaves; i++)
		leaf_free(&set->leaves[i]);
	free(set->leaves);
	free(set->branches);
	free(set->conds);
	free(set->slot_info);
	free(set->branch_need);
	free(set->tags);
	free(set->rule_ids);
	free(set->table);
	free(set->keys);
	free(set->lists);
	free(set->lens);
	free(set->wcs);
	free(set->presence);
	free(set->always);
	free(set);
}

static int path_field(struct td_pattern_set *set, const struct pleaf *pl, uint32_t *field)
{
	uint32_t node = 0;
	for (size_t i = 0; i < pl->npath; i++)
		if (node_child(set, node, pl->path[i].key, pl->path[i].klen, &node) < 0)
			return -TD_ENOMEM;
	if (set->nodes[node].field == TD_PAT_NONE) {
		if (GROW(set->fields, set->cap_fields, set->nfields + 1) < 0)
			return -TD_ENOMEM;
		memset(&set->fields[set->nfields], 0, sizeof(set->fields[0]));
		set->nodes[node].field = set->nfields++;
	}
	*field = set->nodes[node].field;
	return 0;
}

int td_pattern_set_add(struct td_pattern_set *set, unsigned id, const char *pattern, size_t len,
		       char *err, size_t errlen)
{
	struct build b = {.err = err, .errlen = errlen};
	struct td_pj *dom = NULL;
	struct blist br = {0};
	uint32_t *fieldof = NULL;
	int rc;
	if (!set)
		return -TD_EINVAL;
	if (set->compiled) {
		if (err && errlen)
			snprintf(err, errlen, "the set is compiled: no pattern can be added");
		return -TD_ESTATE;
	}
	if ((rc = build_pattern(&b, pattern, len, &dom, &br)) < 0)
		goto fail;
	/* commit: reserve everything first so that a failure leaves the set unchanged */
	size_t nconds = 0;
	for (size_t i = 0; i < br.n; i++)
		nconds += br.v[i].n;
	rc = -TD_ENOMEM;
	if (GROW(set->leaves, set->cap_leaves, set->nleaves + b.nleaves) < 0 ||
	    GROW(set->branches, set->cap_branches, set->nbranches + (uint32_t)br.n) < 0 ||
	    GROW(set->conds, set->cap_conds, set->nconds + (uint32_t)nconds) < 0)
		goto oom;
	fieldof = malloc((b.nleaves ? b.nleaves : 1) * sizeof(uint32_t));
	if (!fieldof)
		goto oom;
	for (uint32_t i = 0; i < b.nleaves; i++)
		if (path_field(set, &b.leaves[i], &fieldof[i]) < 0)
			goto oom; /* the field tree may keep unused nodes: harmless */
	uint32_t leaf0 = set->nleaves;
	for (uint32_t i = 0; i < b.nleaves; i++) {
		set->leaves[set->nleaves++] = b.leaves[i].leaf;
		memset(&b.leaves[i].leaf, 0, sizeof(b.leaves[i].leaf));
	}
	for (size_t i = 0; i < br.n; i++) {
		struct td_pat_branch *bp = &set->branches[set->nbranches++];
		memset(bp, 0, sizeof(*bp));
		bp->rule = id;
		bp->cond_off = set->nconds;
		bp->ncond = (uint32_t)br.v[i].n;
		bp->presence_field = TD_PAT_NONE;
		for (size_t j = 0; j < br.v[i].n; j++) {
			uint32_t li = br.v[i].ids[j];
			struct td_pat_cond *c = &set->conds[set->nconds++];
			const struct td_pat_leaf *leaf = &set->leaves[leaf0 + li];
			c->field = fieldof[li];
			c->leaf = leaf0 + li;
			if (leaf->enumerable) {
				c->slot = set->nslots++;
				bp->n_enum++;
			} else {
				c->slot = TD_PAT_NONE;
				bp->nchecked++;
				if (!leaf->absent_ok && bp->presence_field == TD_PAT_NONE)
					bp->presence_field = c->field;
			}
		}
		bp->trigger = bp->n_enum			  ? TD_TRIG_COUNT
			      : bp->presence_field != TD_PAT_NONE ? TD_TRIG_PRESENCE
								  : TD_TRIG_ALWAYS;
	}
	rc = 0;
	goto out;
oom:
	if (err && errlen)
		snprintf(err, errlen, "out of memory");
fail:
out:
	free(fieldof);
	blist_free(&br);
	build_free(&b);
	td_pj_free(dom);
	return rc;
}

/* ---------------------------------------------------------------------------------- */
/* compile: indexes */

struct item {
	uint64_t h;
	uint32_t field, kind;
	const char *key;
	uint32_t klen;
	uint32_t id;
	uint32_t next;
};

struct lenrec {
	uint32_t field, kind, len;
};

struct ivrec {
	uint32_t field;
	uint8_t which; /* 0 numeric, 1 cidr4, 2 cidr6 */
	struct td_pat_ivx_item it;
};

struct cbuild {
	struct item *items;
	uint32_t nitems, cap_items;
	struct lenrec *lens;
	uint32_t nlens, cap_lens;
	struct ivrec *ivs;
	uint32_t nivs, cap_ivs;
};

static int add_item(struct cbuild *c, uint32_t field, uint32_t kind, const char *key, size_t klen,
		    uint32_t id)
{
	if (klen > UINT32_MAX || GROW(c->items, c->cap_items, c->nitems + 1) < 0)
		return -TD_ENOMEM;
	struct item *it = &c->items[c->nitems++];
	uint64_t seed = (uint64_t)field << 8 | kind;
	it->h = kind == TD_K_NUM
		    ? td_pat_hash_u64(td_pat_num_digest((const unsigned char *)key, klen), seed)
		    : td_pat_hash(key, klen, seed);
	it->field = field;
	it->kind = kind;
	it->key = key;
	it->klen = (uint32_t)klen;
	it->id = id;
	it->next = TD_PAT_NONE;
	return 0;
}

static int add_len(struct cbuild *c, uint32_t field, uint32_t kind, size_t len)
{
	if (GROW(c->lens, c->cap_lens, c->nlens + 1) < 0)
		return -TD_ENOMEM;
	c->lens[c->nlens].field = field;
	c->lens[c->nlens].kind = kind;
	c->lens[c->nlens].len = (uint32_t)len;
	c->nlens++;
	return 0;
}

static int add_iv(struct cbuild *c, uint32_t field, int which, td_pat_u128 lo, td_pat_u128 hi,
		  uint32_t id)
{
	if (lo > hi)
		return 0; /* empty after open bounds, such as (1, next double after 1) */
	if (GROW(c->ivs, c->cap_ivs, c->nivs + 1) < 0)
		return -TD_ENOMEM;
	struct ivrec *r = &c->ivs[c->nivs++];
	r->field = field;
	r->which = (uint8_t)which;
	r->it.lo = lo;
	r->it.hi = hi;
	r->it.id = id;
	return 0;
}

/* The unescaped text before a wildcard's first unescaped "*". */
static size_t wildcard_prefix(const char *s, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '*')
			break;
		if (s[i] == '\\' && i + 1 < n)
			i++;
		out[o++] = s[i];
	}
	return o;
}

static const uint32_t kind_flag[TD_K_COUNT] = {
    [TD_K_STR] = TD_F_STR,	 [TD_K_NUM] = TD_F_NUM,	      [TD_K_LIT] = TD_F_LIT,
    [TD_K_PFX] = TD_F_PFX,	 [TD_K_SFX] = TD_F_SFX,	      [TD_K_IC] = TD_F_IC,
    [TD_K_PFX_IC] = TD_F_PFX_IC, [TD_K_SFX_IC] = TD_F_SFX_IC, [TD_K_WC] = TD_F_WC,
};

static int gather(struct td_pattern_set *set, struct cbuild *c)
{
	static const char lit_key[3][1] = {{'t'}, {'f'}, {'n'}};
	uint32_t nwc = 0, cap_wc = 0;
	for (uint32_t ci = 0; ci < set->nconds; ci++) {
		const struct td_pat_cond *cond = &set->conds[ci];
		if (cond->slot == TD_PAT_NONE)
			continue;
		const struct td_pat_leaf *leaf = &set->leaves[cond->leaf];
		uint32_t f = cond->field;
		struct td_pat_field *fd = &set->fields[f];
		for (uint32_t ai = 0; ai < leaf->nalt; ai++) {
			const struct td_pat_alt *a = &leaf->alts[ai];
			int kind = -1, lens = 0, rc = 0;
			switch (a->op) {
			case TD_OP_EXACT_STR:
				kind = TD_K_STR;
				break;
			case TD_OP_EXACT_NUM:
				kind = TD_K_NUM;
				break;
			case TD_OP_EXACT_LIT:
				fd->flags |= TD_F_LIT;
				rc = add_item(c, f, TD_K_LIT,
					      lit_key[a->lit == 't'   ? 0
						      : a->lit == 'f' ? 1
								      : 2],
					      1, cond->slot);
				break;
			case TD_OP_PREFIX:
				kind = TD_K_PFX, lens = 1;
				break;
			case TD_OP_SUFFIX:
				kind = TD_K_SFX, lens = 1;
				break;
			case TD_OP_EQ_IC:
				kind = TD_K_IC;
				break;
			case TD_OP_PREFIX_IC:
				kind = TD_K_PFX_IC, lens = 1;
				break;
			case TD_OP_SUFFIX_IC:
				kind = TD_K_SFX_IC, lens = 1;
				break;
			case TD_OP_WILDCARD: {
				if (GROW(set->wcs, cap_wc, nwc + 1) < 0)
					return -TD_ENOMEM;
				/* the hash key is the unescaped literal prefix, owned by the item
				 * until the table is built */
				char *pfx = malloc(a->len + 1);
				if (!pfx)
					return -TD_ENOMEM;
				size_t pl = wildcard_prefix(a->str, a->len, pfx);
				set->wcs[nwc].pat = a->str;
				set->wcs[nwc].len = a->len;
				set->wcs[nwc].slot = cond->slot;
				fd->flags |= TD_F_WC;
				rc = add_item(c, f, TD_K_WC, pfx, pl, nwc);
				if (rc == 0)
					rc = add_len(c, f, TD_K_WC, pl);
				else
					free(pfx);
				nwc++;
				break;
			}
			case TD_OP_NUMERIC:
				fd->flags |= TD_F_RANGE;
				rc = add_iv(c, f, 0, a->lo, a->hi, cond->slot);
				break;
			case TD_OP_CIDR:
				fd->flags |= TD_F_CIDR;
				rc = add_iv(c, f, a->family == 4 ? 1 : 2, a->lo, a->hi, cond->slot);
				break;
			default:
				break;
			}
			if (rc < 0)
				return rc;
			if (kind >= 0) {
				fd->flags |= kind_flag[kind];
				if (add_item(c, f, (uint32_t)kind, a->str, a->len, cond->slot) < 0)
					return -TD_ENOMEM;
				if (lens && add_len(c, f, (uint32_t)kind, a->len) < 0)
					return -TD_ENOMEM;
			}
		}
	}
	set->nwcs = nwc;
	return 0;
}

static int lenrec_order(const void *x, const void *y)
{
	const struct lenrec *a = x, *b = y;
	if (a->field != b->field)
		return a->field < b->field ? -1 : 1;
	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	return a->len < b->len ? -1 : a->len > b->len;
}

static int build_lens(struct td_pattern_set *set, struct cbuild *c)
{
	if (c->nlens == 0)
		return 0;
	qsort(c->lens, c->nlens, sizeof(*c->lens), lenrec_order);
	set->lens = malloc(c->nlens * sizeof(uint32_t));
	if (!set->lens)
		return -TD_ENOMEM;
	uint32_t o = 0;
	for (uint32_t i = 0; i < c->nlens; i++) {
		const struct lenrec *r = &c->lens[i];
		struct td_pat_field *f = &set->fields[r->field];
		if (i && lenrec_order(r, &c->lens[i - 1]) == 0)
			continue;
		if (f->nlens[r->kind] == 0)
			f->lens_off[r->kind] = o;
		f->nlens[r->kind]++;
		set->lens[o++] = r->len;
	}
	return 0;
}

static int build_table(struct td_pattern_set *set, struct cbuild *c)
{
	uint32_t size = 16;
	while (size < c->nitems * 2)
		size *= 2;
	if (c->nitems > (1u << 30))
		return -TD_ENOMEM;
	set->table = calloc(size, sizeof(*set->table));
	set->tags = calloc(size, sizeof(*set->tags));
	if (!set->table || !set->tags)
		return -TD_ENOMEM;
	set->table_mask = size - 1;
	size_t keys_len = 0, keys_cap = 1024;
	set->keys = malloc(keys_cap);
	uint32_t *tail = calloc(size, sizeof(uint32_t));
	if (!tail || !set->keys) {
		free(tail);
		return -TD_ENOMEM;
	}
	int rc = -TD_ENOMEM;
	for (uint32_t i = 0; i < c->nitems; i++) {
		struct item *it = &c->items[i];
		uint32_t e = (uint32_t)it->h & set->table_mask;
		for (;; e = (e + 1) & set->table_mask) {
			struct td_pat_hent *h = &set->table[e];
			if (h->list_n == 0) {
				/* new entry: copy the key bytes */
				if (keys_len + it->klen + 1 > keys_cap) {
					size_t ncap = keys_cap * 2;
					while (ncap < keys_len + it->klen + 1)
						ncap *= 2;
					char *nk = realloc(set->keys, ncap);
					if (!nk)
						goto out;
					set->keys = nk;
					keys_cap = ncap;
				}
				if (keys_len + it->klen > UINT32_MAX)
					goto out;
				memcpy(set->keys + keys_len, it->key, it->klen);
				h->h = it->h;
				h->field = it->field;
				h->kind = it->kind;
				h->key_off = (uint32_t)keys_len;
				h->key_len = it->klen;
				keys_len += it->klen;
				h->list_off = i; /* head item until flattened */
				h->list_n = 1;
				set->tags[e] = td_pat_tag(it->h);
				tail[e] = i;
				break;
			}
			if (h->h == it->h && h->field == it->field && h->kind == it->kind &&
			    h->key_len == it->klen &&
			    memcmp(set->keys + h->key_off, it->key, it->klen) == 0) {
				c->items[tail[e]].next = i;
				tail[e] = i;
				h->list_n++;
				break;
			}
		}
	}
	set->lists = malloc((c->nitems ? c->nitems : 1) * sizeof(uint32_t));
	if (!set->lists)
		goto out;
	uint32_t o = 0;
	for (uint32_t e = 0; e <= set->table_mask; e++) {
		struct td_pat_hent *h = &set->table[e];
		if (!h->list_n)
			continue;
		uint32_t head = h->list_off, n = 0, rec = 0;
		h->list_off = o;
		for (uint32_t i = head; i != TD_PAT_NONE; i = c->items[i].next) {
			/* repeats of one id (["a", "a"]) come from one leaf, one after the other */
			if (n && set->lists[o - 1] == c->items[i].id)
				continue;
			set->lists[o++] = c->items[i].id;
			n++;
			if (h->kind != TD_K_WC && (set->slot_info[c->items[i].id] & TD_PAT_RECORD))
				rec = TD_PAT_RECORD;
		}
		h->list_n = n | rec;
	}
	rc = 0;
out:
	free(tail);
	return rc;
}

static int ivrec_order(const void *x, const void *y)
{
	const struct ivrec *a = x, *b = y;
	if (a->field != b->field)
		return a->field < b->field ? -1 : 1;
	if (a->which != b->which)
		return a->which < b->which ? -1 : 1;
	return a->it.id < b->it.id ? -1 : a->it.id > b->it.id;
}

static int build_intervals(struct td_pattern_set *set, struct cbuild *c)
{
	if (c->nivs == 0)
		return 0;
	qsort(c->ivs, c->nivs, sizeof(*c->ivs), ivrec_order);
	struct td_pat_ivx_item *items = malloc(c->nivs * sizeof(*items));
	if (!items)
		return -TD_ENOMEM;
	for (uint32_t i = 0, j; i < c->nivs; i = j) {
		uint32_t f = c->ivs[i].field;
		int which = c->ivs[i].which;
		for (j = i; j < c->nivs && c->ivs[j].field == f && c->ivs[j].which == which; j++)
			items[j - i] = c->ivs[j].it;
		struct td_pat_ivx *x = td_pat_ivx_build(items, j - i);
		if (!x) {
			free(items);
			return -TD_ENOMEM;
		}
		if (which == 0)
			set->fields[f].num = x;
		else if (which == 1)
			set->fields[f].cidr4 = x;
		else
			set->fields[f].cidr6 = x;
	}
	free(items);
	return 0;
}

/* ---------------------------------------------------------------------------------- */
/* checked conditions: one id per distinct (field, leaf content) */

struct bytebuf {
	char *p;
	size_t n, cap;
};

static int bb_put(struct bytebuf *b, const void *s, size_t n)
{
	if (b->n + n > b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 256;
		while (ncap < b->n + n)
			ncap *= 2;
		char *np = realloc(b->p, ncap);
		if (!np)
			return -1;
		b->p = np;
		b->cap = ncap;
	}
	if (n)
		memcpy(b->p + b->n, s, n);
	b->n += n;
	return 0;
}

static int leaf_bytes(struct bytebuf *b, uint32_t field, const struct td_pat_leaf *l)
{
	int rc = bb_put(b, &field, sizeof(field)) | bb_put(b, &l->nalt, sizeof(l->nalt));
	for (uint32_t i = 0; i < l->nalt; i++) {
		const struct td_pat_alt *a = &l->alts[i];
		uint8_t head[3] = {a->op, a->lit, a->family};
		uint64_t len = a->len, nset = a->nset;
		rc |= bb_put(b, head, 3) | bb_put(b, &len, 8) |
		      bb_put(b, a->str, a->str ? a->len : 0);
		rc |= bb_put(b, &nset, 8);
		for (size_t k = 0; k < a->nset; k++) {
			uint64_t n = a->set[k].n;
			rc |= bb_put(b, &n, 8) | bb_put(b, a->set[k].s, a->set[k].n);
		}
		rc |= bb_put(b, &a->lo, sizeof(a->lo)) | bb_put(b, &a->hi, sizeof(a->hi));
	}
	return rc ? -TD_ENOMEM : 0;
}

struct checkent {
	uint64_t h;
	size_t off, len;
	uint32_t id; /* + 1; 0 when free */
};

static int assign_checks(struct td_pattern_set *set)
{
	uint32_t size = 16;
	while (size < set->nconds * 2)
		size *= 2;
	struct checkent *tab = calloc(size, sizeof(*tab));
	struct bytebuf all = {0}, one = {0};
	int rc = -TD_ENOMEM;
	if (!tab)
		goto out;
	for (uint32_t i = 0; i < set->nconds; i++) {
		struct td_pat_cond *c = &set->conds[i];
		if (c->slot != TD_PAT_NONE)
			continue;
		one.n = 0;
		if (leaf_bytes(&one, c->field, &set->leaves[c->leaf]) < 0)
			goto out;
		uint64_t h = td_pat_hash(one.p, one.n, 7);
		uint32_t e = (uint32_t)h & (size - 1);
		for (;; e = (e + 1) & (size - 1)) {
			struct checkent *ce = &tab[e];
			if (!ce->id) {
				ce->h = h;
				ce->off = all.n;
				ce->len = one.n;
				ce->id = ++set->nchecks;
				if (bb_put(&all, one.p, one.n) < 0)
					goto out;
				break;
			}
			if (ce->h == h && ce->len == one.n &&
			    memcmp(all.p + ce->off, one.p, one.n) == 0)
				break;
		}
		c->check = tab[e].id - 1;
	}
	rc = 0;
out:
	free(tab);
	free(all.p);
	free(one.p);
	return rc;
}

static int unsigned_order(const void *x, const void *y)
{
	unsigned a = *(const unsigned *)x, b = *(const unsigned *)y;
	return a < b ? -1 : a > b;
}

static uint32_t rule_index(const struct td_pattern_set *set, unsigned id)
{
	uint32_t lo = 0, hi = set->nrules;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (set->rule_ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int build_triggers(struct td_pattern_set *set)
{
	uint32_t npres = 0;
	for (uint32_t b = 0; b < set->nbranches; b++) {
		const struct td_pat_branch *bp = &set->branches[b];
		if (bp->trigger == TD_TRIG_PRESENCE) {
			set->fields[bp->presence_field].presence_n++;
			npres++;
		} else if (bp->trigger == TD_TRIG_ALWAYS) {
			set->nalways++;
		}
	}
	set->presence = malloc((npres ? npres : 1) * sizeof(uint32_t));
	set->always = malloc((set->nalways ? set->nalways : 1) * sizeof(uint32_t));
	if (!set->presence || !set->always)
		return -TD_ENOMEM;
	uint32_t o = 0;
	for (uint32_t f = 0; f < set->nfields; f++) {
		set->fields[f].presence_off = o;
		o += set->fields[f].presence_n;
		set->fields[f].presence_n = 0;
	}
	uint32_t na = 0;
	for (uint32_t b = 0; b < set->nbranches; b++) {
		const struct td_pat_branch *bp = &set->branches[b];
		if (bp->trigger == TD_TRIG_PRESENCE) {
			struct td_pat_field *f = &set->fields[bp->presence_field];
			set->presence[f->presence_off + f->presence_n++] = b;
		} else if (bp->trigger == TD_TRIG_ALWAYS) {
			set->always[na++] = b;
		}
	}
	return 0;
}

int td_pattern_set_compile(struct td_pattern_set *set)
{
	struct cbuild c = {0};
	int rc = -TD_ENOMEM;
	if (!set)
		return -TD_EINVAL;
	if (set->compiled)
		return -TD_ESTATE;
	if (set->nbranches >= TD_PAT_RECORD)
		return -TD_ENOMEM;
	/* dense rule indexes, ascending by caller id */
	set->rule_ids = malloc((set->nbranches ? set->nbranches : 1) * sizeof(unsigned));
	set->slot_info = malloc((set->nslots ? set->nslots : 1) * sizeof(uint32_t));
	set->branch_need = malloc((set->nbranches ? set->nbranches : 1) * sizeof(uint32_t));
	if (!set->rule_ids || !set->slot_info || !set->branch_need)
		goto out;
	for (uint32_t b = 0; b < set->nbranches; b++)
		set->rule_ids[b] = set->branches[b].rule;
	qsort(set->rule_ids, set->nbranches, sizeof(unsigned), unsigned_order);
	for (uint32_t b = 0; b < set->nbranches; b++)
		if (b == 0 || set->rule_ids[b] != set->rule_ids[set->nrules - 1])
			set->rule_ids[set->nrules++] = set->rule_ids[b];
	for (uint32_t b = 0; b < set->nbranches; b++) {
		struct td_pat_branch *bp = &set->branches[b];
		bp->rule = rule_index(set, bp->rule);
		set->branch_need[b] = bp->n_enum;
		if (bp->ncond >= 2)
			set->track_arrays = 1;
		for (uint32_t i = 0; i < bp->ncond; i++) {
			const struct td_pat_cond *cd = &set->conds[bp->cond_off + i];
			if (cd->slot == TD_PAT_NONE)
				continue;
			set->slot_info[cd->slot] = b | (bp->ncond >= 2 ? TD_PAT_RECORD : 0);
		}
	}
	if ((rc = assign_checks(set)) < 0 || (rc = gather(set, &c)) < 0 ||
	    (rc = build_lens(set, &c)) < 0 || (rc = build_table(set, &c)) < 0 ||
	    (rc = build_intervals(set, &c)) < 0 || (rc = build_triggers(set)) < 0)
		goto out;
	set->compiled = 1;
	rc = 0;
out:
	for (uint32_t i = 0; i < c.nitems; i++)
		if (c.items[i].kind == TD_K_WC)
			free((char *)c.items[i].key);
	free(c.items);
	free(c.lens);
	free(c.ivs);
	return rc;
}

/* ---------------------------------------------------------------------------------- */
/* interval index: a segment tree over the distinct ends of closed intervals */

static int u128_order(const void *x, const void *y)
{
	td_pat_u128 a, b;
	memcpy(&a, x, sizeof(a));
	memcpy(&b, y, sizeof(b));
	return a < b ? -1 : a > b;
}

static uint32_t point_index(const td_pat_u128 *pts, uint32_t n, td_pat_u128 x)
{
	uint32_t lo = 0, hi = n;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (pts[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct td_pat_ivx *td_pat_ivx_build(const struct td_pat_ivx_item *items, size_t n)
{
	struct td_pat_ivx *x = calloc(1, sizeof(*x));
	if (!x || n > (UINT32_MAX - 2) / 4)
		goto fail;
	x->pts = malloc(2 * n * sizeof(td_pat_u128));
	if (!x->pts)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		x->pts[2 * i] = items[i].lo;
		x->pts[2 * i + 1] = items[i].hi;
	}
	qsort(x->pts, 2 * n, sizeof(td_pat_u128), u128_order);
	uint32_t m = 0;
	for (size_t i = 0; i < 2 * n; i++)
		if (m == 0 || x->pts[i] != x->pts[m - 1])
			x->pts[m++] = x->pts[i];
	x->npts = m;
	x->min = x->pts[0];
	x->max = x->pts[m - 1];
	if (x->max <= UINT64_MAX) {
		x->pts64 = malloc(m * sizeof(uint64_t));
		if (!x->pts64)
			goto fail;
		for (uint32_t i = 0; i < m; i++)
			x->pts64[i] = (uint64_t)x->pts[i];
	}
	/* units: 2i+1 is the point pts[i], 2i the gap below it, 2m above the last */
	uint32_t units = 2 * m + 1;
	/* few units covered in all: one list per unit, a query is one search and a scan */
	uint64_t cover = 0;
	for (size_t i = 0; i < n; i++)
		cover += 2 * (uint64_t)(point_index(x->pts, m, items[i].hi) -
					point_index(x->pts, m, items[i].lo)) +
			 1;
	if (cover <= (uint64_t)(16 * n > (1u << 20) ? 16 * n : (1u << 20))) {
		x->flat = 1;
		x->node_off = calloc((size_t)units + 1, sizeof(uint32_t));
		x->ids = malloc((cover ? cover : 1) * sizeof(uint32_t));
		if (!x->node_off || !x->ids)
			goto fail;
		for (size_t i = 0; i < n; i++) {
			uint32_t a = 2 * point_index(x->pts, m, items[i].lo) + 1;
			uint32_t z = 2 * point_index(x->pts, m, items[i].hi) + 1;
			for (uint32_t u = a; u <= z; u++)
				x->node_off[u + 1]++;
		}
		for (uint32_t u = 1; u <= units; u++)
			x->node_off[u] += x->node_off[u - 1];
		for (size_t i = 0; i < n; i++) {
			uint32_t a = 2 * point_index(x->pts, m, items[i].lo) + 1;
			uint32_t z = 2 * point_index(x->pts, m, items[i].hi) + 1;
			for (uint32_t u = a; u <= z; u++)
				x->ids[x->node_off[u]++] = items[i].id;
		}
		for (uint32_t u = units; u > 0; u--)
			x->node_off[u] = x->node_off[u - 1];
		x->node_off[0] = 0;
		return x;
	}
	x->size = 1;
	while (x->size < units)
		x->size *= 2;
	x->node_off = calloc(2 * (size_t)x->size + 1, sizeof(uint32_t));
	if (!x->node_off)
		goto fail;
	size_t total = 0;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n; i++) {
			uint32_t l = 2 * point_index(x->pts, m, items[i].lo) + 1 + x->size;
			uint32_t r = 2 * point_index(x->pts, m, items[i].hi) + 2 + x->size;
			for (; l < r; l >>= 1, r >>= 1) {
				if (l & 1) {
					if (pass == 0)
						x->node_off[l + 1]++, total++;
					else
						x->ids[x->node_off[l]++] = items[i].id;
					l++;
				}
				if (r & 1) {
					--r;
					if (pass == 0)
						x->node_off[r + 1]++, total++;
					else
						x->ids[x->node_off[r]++] = items[i].id;
				}
			}
		}
		if (pass == 0) {
			if (total > UINT32_MAX)
				goto fail;
			for (uint32_t k = 1; k <= 2 * x->size; k++)
				x->node_off[k] += x->node_off[k - 1];
			x->ids = malloc((total ? total : 1) * sizeof(uint32_t));
			if (!x->ids)
				goto fail;
		}
	}
	/* the fill pass advanced each start to the next node's start: shift back */
	for (uint32_t k = 2 * x->size; k > 0; k--)
		x->node_off[k] = x->node_off[k - 1];
	x->node_off[0] = 0;
	return x;
fail:
	td_pat_ivx_free(x);
	return NULL;
}

void td_pat_ivx_free(struct td_pat_ivx *x)
{
	if (!x)
		return;
	free(x->pts);
	free(x->pts64);
	free(x->node_off);
	free(x->ids);
	free(x);
}
