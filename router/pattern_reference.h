/*
 * A test oracle, not part of the library: a deliberately simple EventBridge pattern
 * evaluator over jansson trees, used by tests/unit/test_pattern.c and
 * tests/fuzz/fuzz_pattern_match.c to cross-check the engine. It shares nothing with the
 * engine but the case-folding table: it expands "$or" recursively, collects the values
 * at each path by walking the event tree, tests every alternative directly (numbers as
 * doubles, wildcards by dynamic programming, CIDR by comparing address bits) and
 * checks array consistency by trying every combination of values.
 *
 * Differences from the engine, which callers must avoid in comparisons: numbers are
 * doubles here (the engine compares exact decimals), and jansson keeps only the last
 * of duplicate keys. The pattern must be one the engine accepts.
 */
#ifndef TRIGGERD_PATTERN_REFERENCE_H
#define TRIGGERD_PATTERN_REFERENCE_H

#include "pattern_internal.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define TDREF_MAX_CONDS 64
#define TDREF_MAX_VALS	4096

#define TDREF_MAX_DEPTH 16

struct tdref_val {
	json_t *v;
	/* membership: (array, index) for each enclosing array element that is a container */
	json_t *arrays[TDREF_MAX_DEPTH];
	size_t idx[TDREF_MAX_DEPTH];
	int depth;
};

struct tdref_vals {
	struct tdref_val *v;
	int n, cap;
};

struct tdref_cond {
	const char *path[64];
	int npath;
	json_t *leaf;
};

struct tdref_branch {
	struct tdref_cond conds[TDREF_MAX_CONDS];
	int n;
};

struct tdref {
	long budget; /* steps left; below zero the answer is unknown */
};

static int tdref_fold_eq(const char *a, size_t an, const char *b, size_t bn, int mode)
{
	/* mode 0 equal, 1 prefix (b is the prefix), 2 suffix */
	char *fa = malloc(2 * an + 4), *fb = malloc(2 * bn + 4);
	int r = 0;
	if (fa && fb) {
		size_t x = td_pat_fold(a, an, fa, 2 * an + 4);
		size_t y = td_pat_fold(b, bn, fb, 2 * bn + 4);
		if (x != (size_t)-1 && y != (size_t)-1) {
			if (mode == 0)
				r = x == y && memcmp(fa, fb, x) == 0;
			else if (mode == 1)
				r = x >= y && memcmp(fa, fb, y) == 0;
			else
				r = x >= y && memcmp(fa + x - y, fb, y) == 0;
		}
	}
	free(fa);
	free(fb);
	return r;
}

/* Wildcard by dynamic programming over (pattern token, text position). */
static int tdref_wildcard(const char *pat, size_t pn, const char *s, size_t n)
{
	/* tokens: -1 for a star, else a literal byte */
	int *tok = malloc((pn + 1) * sizeof(int));
	unsigned char *row = calloc(n + 1, 1), *next = calloc(n + 1, 1);
	size_t nt = 0;
	int r = 0;
	if (!tok || !row || !next)
		goto out;
	for (size_t i = 0; i < pn; i++) {
		if (pat[i] == '*')
			tok[nt++] = -1;
		else if (pat[i] == '\\' && i + 1 < pn)
			tok[nt++] = (unsigned char)pat[++i];
		else
			tok[nt++] = (unsigned char)pat[i];
	}
	/* row[j]: tokens so far match s[0..j) */
	row[0] = 1;
	for (size_t t = 0; t < nt; t++) {
		memset(next, 0, n + 1);
		for (size_t j = 0; j <= n; j++) {
			if (tok[t] == -1)
				next[j] = row[j] || (j > 0 && next[j - 1]);
			else
				next[j] = j > 0 && row[j - 1] && (unsigned char)s[j - 1] == tok[t];
		}
		unsigned char *tmp = row;
		row = next;
		next = tmp;
	}
	r = row[n];
out:
	free(tok);
	free(row);
	free(next);
	return r;
}

static int tdref_cidr(const char *cidr, const char *ip, size_t ipn)
{
	char net[64], addr[64];
	const char *slash = strchr(cidr, '/');
	unsigned char a[16], b[16];
	if (!slash || (size_t)(slash - cidr) >= sizeof(net) || ipn >= sizeof(addr) ||
	    memchr(ip, 0, ipn))
		return 0;
	memcpy(net, cidr, (size_t)(slash - cidr));
	net[slash - cidr] = 0;
	memcpy(addr, ip, ipn);
	addr[ipn] = 0;
	int bits = atoi(slash + 1), len;
	if (inet_pton(AF_INET, net, a) == 1)
		len = 4;
	else if (inet_pton(AF_INET6, net, a) == 1)
		len = 16;
	else
		return 0;
	if (inet_pton(len == 4 ? AF_INET : AF_INET6, addr, b) != 1)
		return 0;
	for (int i = 0; i < bits; i++) {
		int bit = 7 - i % 8;
		if (((a[i / 8] >> bit) & 1) != ((b[i / 8] >> bit) & 1))
			return 0;
	}
	return 1;
}

static int tdref_num_op(const char *op, double v, double x)
{
	if (strcmp(op, "=") == 0)
		return v == x;
	if (strcmp(op, "<") == 0)
		return v < x;
	if (strcmp(op, "<=") == 0)
		return v <= x;
	if (strcmp(op, ">") == 0)
		return v > x;
	return v >= x;
}

static int tdref_str_in(json_t *list, const char *s, size_t n, int fold)
{
	size_t i;
	json_t *e;
	if (json_is_string(list))
		return fold ? tdref_fold_eq(s, n, json_string_value(list), json_string_length(list),
					    0)
			    : (json_string_length(list) == n &&
			       memcmp(json_string_value(list), s, n) == 0);
	json_array_foreach(list, i, e)
	{
		if (tdref_str_in(e, s, n, fold))
			return 1;
	}
	return 0;
}

/* One alternative against one value (never called for exists). */
static int tdref_alt(json_t *alt, json_t *v)
{
	int str = json_is_string(v);
	const char *s = str ? json_string_value(v) : NULL;
	size_t n = str ? json_string_length(v) : 0;
	if (json_is_string(alt))
		return str && json_string_length(alt) == n &&
		       memcmp(json_string_value(alt), s, n) == 0;
	if (json_is_number(alt))
		return json_is_number(v) && json_number_value(alt) == json_number_value(v);
	if (json_is_true(alt) || json_is_false(alt) || json_is_null(alt))
		return json_typeof(alt) == json_typeof(v);
	const char *op = NULL;
	json_t *x = NULL;
	json_object_foreach(alt, op, x)
	{
		break;
	}
	if (strcmp(op, "prefix") == 0 || strcmp(op, "suffix") == 0) {
		int suffix = op[0] == 's';
		if (!str)
			return 0;
		if (json_is_object(x))
			return tdref_fold_eq(
			    s, n, json_string_value(json_object_get(x, "equals-ignore-case")),
			    json_string_length(json_object_get(x, "equals-ignore-case")),
			    suffix ? 2 : 1);
		size_t k = json_string_length(x);
		return n >= k && memcmp(suffix ? s + n - k : s, json_string_value(x), k) == 0;
	}
	if (strcmp(op, "equals-ignore-case") == 0)
		return str && tdref_fold_eq(s, n, json_string_value(x), json_string_length(x), 0);
	if (strcmp(op, "wildcard") == 0)
		return str && tdref_wildcard(json_string_value(x), json_string_length(x), s, n);
	if (strcmp(op, "cidr") == 0)
		return str && tdref_cidr(json_string_value(x), s, n);
	if (strcmp(op, "numeric") == 0) {
		if (!json_is_number(v))
			return 0;
		double d = json_number_value(v);
		for (size_t i = 0; i + 1 < json_array_size(x); i += 2)
			if (!tdref_num_op(json_string_value(json_array_get(x, i)), d,
					  json_number_value(json_array_get(x, i + 1))))
				return 0;
		return 1;
	}
	/* anything-but */
	if (json_is_string(x))
		return !(str && json_string_length(x) == n &&
			 memcmp(json_string_value(x), s, n) == 0);
	if (json_is_number(x))
		return !(json_is_number(v) && json_number_value(v) == json_number_value(x));
	if (json_is_array(x)) {
		size_t i;
		json_t *e;
		json_array_foreach(x, i, e)
		{
			if (tdref_alt(e, v))
				return 0;
		}
		return 1;
	}
	const char *op2 = NULL;
	json_t *y = NULL;
	json_object_foreach(x, op2, y)
	{
		break;
	}
	if (!str)
		return 1;
	if (strcmp(op2, "prefix") == 0 || strcmp(op2, "suffix") == 0) {
		size_t k = json_string_length(y);
		return !(n >= k &&
			 memcmp(op2[0] == 's' ? s + n - k : s, json_string_value(y), k) == 0);
	}
	if (strcmp(op2, "equals-ignore-case") == 0)
		return !tdref_str_in(y, s, n, 1);
	/* wildcard: a string or a list */
	if (json_is_string(y))
		return !tdref_wildcard(json_string_value(y), json_string_length(y), s, n);
	size_t i;
	json_t *e;
	json_array_foreach(y, i, e)
	{
		if (tdref_wildcard(json_string_value(e), json_string_length(e), s, n))
			return 0;
	}
	return 1;
}

/* Collects the leaf values at path under v (arrays flatten at any level); -1 gives up. */
static int tdref_collect(json_t *v, const struct tdref_cond *c, int step, struct tdref_val *cur,
			 struct tdref_vals *out)
{
	if (json_is_array(v)) {
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e)
		{
			struct tdref_val next = *cur;
			if (json_is_array(e) || json_is_object(e)) {
				if (next.depth >= TDREF_MAX_DEPTH)
					return -1;
				next.arrays[next.depth] = v;
				next.idx[next.depth] = i;
				next.depth++;
			}
			if (tdref_collect(e, c, step, &next, out) < 0)
				return -1;
		}
		return 0;
	}
	if (step == c->npath) {
		if (json_is_object(v))
			return 0;
		if (out->n >= TDREF_MAX_VALS)
			return -1;
		if (out->n == out->cap) {
			int ncap = out->cap ? out->cap * 2 : 8;
			struct tdref_val *nv = realloc(out->v, (size_t)ncap * sizeof(*nv));
			if (!nv)
				return -1;
			out->v = nv;
			out->cap = ncap;
		}
		out->v[out->n] = *cur;
		out->v[out->n].v = v;
		out->n++;
		return 0;
	}
	if (!json_is_object(v))
		return 0;
	json_t *child = json_object_get(v, c->path[step]);
	return child ? tdref_collect(child, c, step + 1, cur, out) : 0;
}

static int tdref_compatible(const struct tdref_val *a, const struct tdref_val *b)
{
	for (int i = 0; i < a->depth; i++)
		for (int j = 0; j < b->depth; j++)
			if (a->arrays[i] == b->arrays[j] && a->idx[i] != b->idx[j])
				return 0;
	return 1;
}

struct tdref_choice {
	struct tdref_val *vals[TDREF_MAX_CONDS];
	int nvals[TDREF_MAX_CONDS];
	struct tdref_val *chosen[TDREF_MAX_CONDS];
	int n;
};

static int tdref_search(struct tdref *r, struct tdref_choice *ch, int k)
{
	if (--r->budget < 0)
		return 0;
	if (k == ch->n)
		return 1;
	if (ch->nvals[k] == 0) { /* satisfied by absence */
		ch->chosen[k] = NULL;
		return tdref_search(r, ch, k + 1);
	}
	for (int i = 0; i < ch->nvals[k]; i++) {
		int ok = 1;
		for (int j = 0; j < k && ok; j++)
			ok = !ch->chosen[j] || tdref_compatible(ch->chosen[j], &ch->vals[k][i]);
		if (!ok)
			continue;
		ch->chosen[k] = &ch->vals[k][i];
		if (tdref_search(r, ch, k + 1))
			return 1;
	}
	return 0;
}

static int tdref_branch(struct tdref *r, const struct tdref_branch *b, json_t *event)
{
	struct tdref_choice ch;
	int rc = 0;
	memset(&ch, 0, sizeof(ch));
	ch.n = b->n;
	for (int i = 0; i < b->n; i++) {
		const struct tdref_cond *c = &b->conds[i];
		struct tdref_vals got = {0};
		struct tdref_val cur;
		memset(&cur, 0, sizeof(cur));
		if (tdref_collect(event, c, 0, &cur, &got) < 0) {
			free(got.v);
			r->budget = -1;
			goto out;
		}
		struct tdref_val *all = got.v;
		int nall = got.n;
		int absent_ok = 0, any = 0;
		size_t ai;
		json_t *alt;
		json_array_foreach(c->leaf, ai, alt)
		{
			json_t *ex = json_is_object(alt) ? json_object_get(alt, "exists") : NULL;
			if (ex && json_is_false(ex))
				absent_ok = 1;
			if (ex && json_is_true(ex))
				any = 1;
		}
		int k = 0;
		for (int j = 0; j < nall; j++) {
			int ok = any;
			json_array_foreach(c->leaf, ai, alt)
			{
				if (ok)
					break;
				if (json_is_object(alt) && json_object_get(alt, "exists"))
					continue;
				ok = tdref_alt(alt, all[j].v);
			}
			if (ok)
				all[k++] = all[j];
		}
		ch.vals[i] = all;
		ch.nvals[i] = k;
		if (k == 0 && !(nall == 0 && absent_ok))
			goto out; /* the condition fails */
	}
	rc = tdref_search(r, &ch, 0);
out:
	for (int i = 0; i < b->n; i++)
		free(ch.vals[i]);
	return rc;
}

struct tdref_item {
	int is_or; /* 1: v is a "$or" array of objects at path; 0: v is a leaf array */
	const char *path[64];
	int npath;
	json_t *v;
};

/* Appends obj's members (at path) as items; returns the new count or -1. */
static int tdref_flatten(json_t *obj, const char *const *path, int npath, struct tdref_item *out,
			 int n, int cap)
{
	const char *key;
	json_t *val;
	json_object_foreach(obj, key, val)
	{
		if (strcmp(key, "$or") == 0 || json_is_array(val)) {
			if (n >= cap || npath >= 64)
				return -1;
			struct tdref_item *it = &out[n++];
			it->is_or = strcmp(key, "$or") == 0;
			if (npath)
				memcpy(it->path, path, (size_t)npath * sizeof(*path));
			it->npath = npath;
			if (!it->is_or)
				it->path[it->npath++] = key;
			it->v = val;
		} else {
			const char *sub[64];
			if (npath >= 63)
				return -1;
			if (npath)
				memcpy(sub, path, (size_t)npath * sizeof(*path));
			sub[npath] = key;
			n = tdref_flatten(val, sub, npath + 1, out, n, cap);
			if (n < 0)
				return -1;
		}
	}
	return n;
}

/* DNF: leaves go into the branch, each "$or" forks over its objects. */
static int tdref_expand(struct tdref *r, const struct tdref_item *items, int n,
			struct tdref_branch *b, json_t *event)
{
	if (r->budget < 0)
		return 0;
	if (n == 0)
		return tdref_branch(r, b, event);
	if (!items[0].is_or) {
		if (b->n >= TDREF_MAX_CONDS) {
			r->budget = -1;
			return 0;
		}
		struct tdref_cond *c = &b->conds[b->n++];
		memcpy(c->path, items[0].path, sizeof(c->path));
		c->npath = items[0].npath;
		c->leaf = items[0].v;
		int rc = tdref_expand(r, items + 1, n - 1, b, event);
		b->n--;
		return rc;
	}
	size_t i;
	json_t *sub;
	json_array_foreach(items[0].v, i, sub)
	{
		enum { CAP = 256 };
		struct tdref_item *next = malloc(CAP * sizeof(*next));
		if (!next) {
			r->budget = -1;
			return 0;
		}
		int k = tdref_flatten(sub, items[0].path, items[0].npath, next, 0, CAP);
		if (k < 0 || k + n - 1 > CAP) {
			free(next);
			r->budget = -1;
			return 0;
		}
		memcpy(next + k, items + 1, (size_t)(n - 1) * sizeof(*next));
		int rc = tdref_expand(r, next, k + n - 1, b, event);
		free(next);
		if (rc)
			return 1;
	}
	return 0;
}

/*
 * 1 when the event matches the pattern, 0 when not, -1 when the search gave up
 * (budget exhausted or too many values). Both are jansson trees; the pattern is valid.
 */
static int tdref_match(json_t *pattern, json_t *event, long budget)
{
	struct tdref r = {budget};
	struct tdref_branch *b = calloc(1, sizeof(*b));
	enum { CAP = 256 };
	struct tdref_item *items = malloc(CAP * sizeof(*items));
	int rc = -1;
	if (b && items) {
		int n = tdref_flatten(pattern, NULL, 0, items, 0, CAP);
		if (n >= 0)
			rc = tdref_expand(&r, items, n, b, event);
		if (n < 0 || r.budget < 0)
			rc = -1;
	}
	free(b);
	free(items);
	return rc;
}

#endif
