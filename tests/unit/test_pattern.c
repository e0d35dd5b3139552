/*
 * Unit tests of the EventBridge pattern engine (router/pattern_*.c): every operator
 * positive and negative, numbers, arrays and array consistency, $or, exists, cidr,
 * wildcards, anything-but, type exactness, escapes in events, every validation error
 * (the message must name the place), event errors, the set logic (many rules in one
 * set answer as each rule alone), and the bench data against a simple reference.
 *
 * Every table case is also run through the reference matcher (router/pattern_reference.h)
 * unless marked as a deliberate difference (exact decimals, duplicate keys), so the
 * oracle used on the bench data is itself checked against the same expectations.
 */
#include <criterion/criterion.h>

#include <triggerd/errors.h>
#include <triggerd/pattern.h>

#include "../../router/pattern_reference.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct mcase {
	const char *pattern;
	const char *event;
	int want;
	int noref; /* the reference cannot judge this one (exact decimals, duplicate keys) */
};

/* 1 if the pattern matches, 0 if not; asserts that the pattern compiles. */
static int engine_match(const char *pattern, const char *event, int strict)
{
	char err[256] = "";
	struct td_pattern_set *set = td_pattern_set_create();
	cr_assert_not_null(set);
	int rc = td_pattern_set_add(set, 42, pattern, strlen(pattern), err, sizeof(err));
	cr_assert_eq(rc, 0, "pattern %s rejected: %s", pattern, err);
	cr_assert_eq(td_pattern_set_compile(set), 0);
	struct td_matcher *m = td_matcher_create(set);
	cr_assert_not_null(m);
	td_matcher_set_strict(m, strict);
	const unsigned *ids;
	int n = td_matcher_match(m, event, strlen(event), &ids, err, sizeof(err));
	cr_assert_geq(n, 0, "event %s rejected: %s", event, err);
	cr_assert(n == 0 || (n == 1 && ids[0] == 42), "unexpected ids for %s", event);
	td_matcher_destroy(m);
	td_pattern_set_destroy(set);
	return n;
}

static int reference_match(const char *pattern, const char *event)
{
	json_error_t e;
	json_t *p = json_loads(pattern, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &e);
	json_t *v = json_loads(event, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &e);
	cr_assert_not_null(p, "reference cannot read %s", pattern);
	cr_assert_not_null(v, "reference cannot read %s", event);
	int r = tdref_match(p, v, 1000000);
	json_decref(p);
	json_decref(v);
	return r;
}

static void run_cases(const struct mcase *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int strict = engine_match(c[i].pattern, c[i].event, 1);
		int fast = engine_match(c[i].pattern, c[i].event, 0);
		cr_expect_eq(strict, c[i].want, "case %zu: pattern %s event %s: want %d got %d", i,
			     c[i].pattern, c[i].event, c[i].want, strict);
		cr_expect_eq(fast, strict, "case %zu: fast and strict scans disagree", i);
		if (!c[i].noref) {
			int ref = reference_match(c[i].pattern, c[i].event);
			cr_expect_eq(ref, c[i].want, "case %zu: reference: pattern %s event %s: %d",
				     i, c[i].pattern, c[i].event, ref);
		}
	}
}

#define RUN(table) run_cases(table, sizeof(table) / sizeof(table[0]))

/* ---------------------------------------------------------------------------------- */

Test(pattern, exact_values_and_types)
{
	static const struct mcase c[] = {
	    {"{\"a\":[\"x\"]}", "{\"a\":\"x\"}", 1, 0},
	    {"{\"a\":[\"x\"]}", "{\"a\":\"y\"}", 0, 0},
	    {"{\"a\":[\"x\"]}", "{\"b\":\"x\"}", 0, 0},
	    {"{\"a\":[\"x\"]}", "{\"a\":\"X\"}", 0, 0},
	    {"{\"a\":[\"x\",\"y\"]}", "{\"a\":\"y\"}", 1, 0},
	    {"{\"a\":[\"5\"]}", "{\"a\":5}", 0, 0},
	    {"{\"a\":[5]}", "{\"a\":\"5\"}", 0, 0},
	    {"{\"a\":[5]}", "{\"a\":5}", 1, 0},
	    {"{\"a\":[true]}", "{\"a\":true}", 1, 0},
	    {"{\"a\":[true]}", "{\"a\":\"true\"}", 0, 0},
	    {"{\"a\":[\"true\"]}", "{\"a\":true}", 0, 0},
	    {"{\"a\":[true]}", "{\"a\":1}", 0, 0},
	    {"{\"a\":[true]}", "{\"a\":false}", 0, 0},
	    {"{\"a\":[false]}", "{\"a\":false}", 1, 0},
	    {"{\"a\":[null]}", "{\"a\":null}", 1, 0},
	    {"{\"a\":[null]}", "{\"a\":\"null\"}", 0, 0},
	    {"{\"a\":[null]}", "{}", 0, 0},
	    {"{\"a\":[\"\"]}", "{\"a\":null}", 0, 0},
	    {"{\"a\":[\"\"]}", "{\"a\":\"\"}", 1, 0},
	    {"{\"a\":[\"x\"],\"b\":[\"y\"]}", "{\"a\":\"x\",\"b\":\"y\"}", 1, 0},
	    {"{\"a\":[\"x\"],\"b\":[\"y\"]}", "{\"b\":\"y\",\"a\":\"x\"}", 1, 0},
	    {"{\"a\":[\"x\"],\"b\":[\"y\"]}", "{\"a\":\"x\",\"b\":\"z\"}", 0, 0},
	    {"{\"a\":[\"x\"],\"b\":[\"y\"]}", "{\"a\":\"x\"}", 0, 0},
	    {"{\"a\":[\"x\"]}",
	     "{\"z\":{\"c\":[1,2,{\"d\":null}]},\"a\":\"x\",\"e\":\"f\",\"g\":[[],{}]}", 1, 0},
	    {"{\"a\":[\"x\"]}", "{\"a\":{\"b\":\"x\"}}", 0, 0},
	    {"{\"a\":{\"b\":[\"x\"]}}", "{\"a\":{\"b\":\"x\"}}", 1, 0},
	    {"{\"a\":{\"b\":[\"x\"]}}", "{\"a\":\"x\"}", 0, 0},
	    {"{\"a\":{\"b\":[\"x\"]}}", "{\"a\":{\"b\":{\"c\":\"x\"}}}", 0, 0},
	    {"{\"a\":{\"b\":[\"x\"]}}", "{\"a.b\":\"x\"}", 0, 0},
	    {"{\"a.b\":[\"x\"]}", "{\"a.b\":\"x\"}", 1, 0},
	    {"{\"a.b\":[\"x\"]}", "{\"a\":{\"b\":\"x\"}}", 0, 0},
	    {"{\"a\":{\"b\":{\"c\":{\"d\":[1]}}}}", "{\"a\":{\"b\":{\"c\":{\"d\":1}}}}", 1, 0},
	    {"{\"a\":[\"x\"],\"a2\":{\"b\":[2]}}", "{\"a2\":{\"b\":2},\"a\":\"x\"}", 1, 0},
	};
	RUN(c);
}

Test(pattern, exact_numbers_are_decimal_values)
{
	static const struct mcase c[] = {
	    {"{\"a\":[3]}", "{\"a\":3.0}", 1, 0},
	    {"{\"a\":[3]}", "{\"a\":3e0}", 1, 0},
	    {"{\"a\":[3]}", "{\"a\":30e-1}", 1, 0},
	    {"{\"a\":[3]}", "{\"a\":0.3E+1}", 1, 0},
	    {"{\"a\":[3.0]}", "{\"a\":3}", 1, 0},
	    {"{\"a\":[3]}", "{\"a\":3.5}", 0, 0},
	    {"{\"a\":[3]}", "{\"a\":-3}", 0, 0},
	    {"{\"a\":[0]}", "{\"a\":-0}", 1, 0},
	    {"{\"a\":[-0.0]}", "{\"a\":0}", 1, 0},
	    {"{\"a\":[0]}", "{\"a\":0e10}", 1, 0},
	    {"{\"a\":[-1.5]}", "{\"a\":-1.50}", 1, 0},
	    {"{\"a\":[-1.5]}", "{\"a\":1.5}", 0, 0},
	    {"{\"a\":[1e2]}", "{\"a\":100}", 1, 0},
	    {"{\"a\":[0.001]}", "{\"a\":1e-3}", 1, 0},
	    {"{\"a\":[-122.3942541437]}", "{\"a\":-122.3942541437}", 1, 0},
	    {"{\"a\":[-122.3942541437]}", "{\"a\":-122.3942541438}", 0, 0},
	    {"{\"a\":[12345678901234567890]}", "{\"a\":12345678901234567890}", 1, 0},
	    {"{\"a\":[12345678901234567890]}", "{\"a\":1.2345678901234567890e19}", 1, 0},
	    /* equal as doubles, different decimals: exact matching tells them apart */
	    {"{\"a\":[12345678901234567890]}", "{\"a\":12345678901234567891}", 0, 1},
	    {"{\"a\":[9007199254740993]}", "{\"a\":9007199254740992}", 0, 1},
	    {"{\"a\":[3]}", "{\"a\":3.0000000000000001}", 0, 1},
	    {"{\"a\":[1e400]}", "{\"a\":10e399}", 1, 1},
	    {"{\"a\":[1e400]}", "{\"a\":1e401}", 0, 1},
	    {"{\"a\":[123456789012345678901234567890.5]}",
	     "{\"a\":1234567890123456789012345678905e-1}", 1, 1},
	};
	RUN(c);
}

Test(pattern, prefix_suffix_and_ignore_case)
{
	static const struct mcase c[] = {
	    {"{\"a\":[{\"prefix\":\"ab\"}]}", "{\"a\":\"abc\"}", 1, 0},
	    {"{\"a\":[{\"prefix\":\"ab\"}]}", "{\"a\":\"ab\"}", 1, 0},
	    {"{\"a\":[{\"prefix\":\"ab\"}]}", "{\"a\":\"a\"}", 0, 0},
	    {"{\"a\":[{\"prefix\":\"ab\"}]}", "{\"a\":\"xab\"}", 0, 0},
	    {"{\"a\":[{\"prefix\":\"ab\"}]}", "{\"a\":\"ABc\"}", 0, 0},
	    {"{\"a\":[{\"prefix\":\"12\"}]}", "{\"a\":123}", 0, 0},
	    {"{\"a\":[{\"prefix\":\"\"}]}", "{\"a\":\"\"}", 1, 0},
	    {"{\"a\":[{\"prefix\":\"\"}]}", "{\"a\":5}", 0, 0},
	    {"{\"a\":[{\"prefix\":\"ab\"},{\"prefix\":\"abc\"}]}", "{\"a\":\"abcd\"}", 1, 0},
	    {"{\"a\":[{\"prefix\":{\"equals-ignore-case\":\"aB\"}}]}", "{\"a\":\"ABC\"}", 1, 0},
	    {"{\"a\":[{\"prefix\":{\"equals-ignore-case\":\"aB\"}}]}", "{\"a\":\"abc\"}", 1, 0},
	    {"{\"a\":[{\"prefix\":{\"equals-ignore-case\":\"aB\"}}]}", "{\"a\":\"xab\"}", 0, 0},
	    {"{\"a\":[{\"prefix\":{\"equals-ignore-case\":\"aB\"}}]}", "{\"a\":\"a\"}", 0, 0},
	    {"{\"a\":[{\"prefix\":{\"equals-ignore-case\":\"\\u00e9\"}}]}",
	     "{\"a\":\"\\u00c9clair\"}", 1, 0},
	    {"{\"a\":[{\"suffix\":\"bc\"}]}", "{\"a\":\"abc\"}", 1, 0},
	    {"{\"a\":[{\"suffix\":\"bc\"}]}", "{\"a\":\"bc\"}", 1, 0},
	    {"{\"a\":[{\"suffix\":\"bc\"}]}", "{\"a\":\"c\"}", 0, 0},
	    {"{\"a\":[{\"suffix\":\"bc\"}]}", "{\"a\":\"bcx\"}", 0, 0},
	    {"{\"a\":[{\"suffix\":\".png\"}]}", "{\"a\":[\"x.jpg\",\"y.png\"]}", 1, 0},
	    {"{\"a\":[{\"suffix\":{\"equals-ignore-case\":\"BC\"}}]}", "{\"a\":\"aBc\"}", 1, 0},
	    {"{\"a\":[{\"suffix\":{\"equals-ignore-case\":\"BC\"}}]}", "{\"a\":\"abd\"}", 0, 0},
	    {"{\"a\":[{\"equals-ignore-case\":\"AbC\"}]}", "{\"a\":\"aBc\"}", 1, 0},
	    {"{\"a\":[{\"equals-ignore-case\":\"AbC\"}]}", "{\"a\":\"aBcd\"}", 0, 0},
	    {"{\"a\":[{\"equals-ignore-case\":\"AbC\"}]}", "{\"a\":[\"x\",\"ABC\"]}", 1, 0},
	    {"{\"a\":[{\"equals-ignore-case\":\"5\"}]}", "{\"a\":5}", 0, 0},
	    {"{\"a\":[{\"equals-ignore-case\":\"\\u00c9COLE\"}]}", "{\"a\":\"\\u00e9cole\"}", 1, 0},
	    {"{\"a\":[{\"equals-ignore-case\":\"STRASSE\"}]}", "{\"a\":\"stra\\u00dfe\"}", 0, 0},
	    {"{\"a\":[{\"equals-ignore-case\":\"\\u212a\"}]}", "{\"a\":\"k\"}", 1, 0},
	    {"{\"a\":[{\"equals-ignore-case\":\"\\u03a3\\u0391\\u03a3\"}]}",
	     "{\"a\":\"\\u03c3\\u03b1\\u03c2\"}", 1, 0},
	    {"{\"a\":[{\"equals-ignore-case\":\"\\u0416\"}]}", "{\"a\":\"\\u0436\"}", 1, 0},
	};
	RUN(c);
}

Test(pattern, wildcard)
{
	static const struct mcase c[] = {
	    {"{\"a\":[{\"wildcard\":\"*.png\"}]}", "{\"a\":\"a.png\"}", 1, 0},
	    {"{\"a\":[{\"wildcard\":\"*.png\"}]}", "{\"a\":\".png\"}", 1, 0},
	    {"{\"a\":[{\"wildcard\":\"*.png\"}]}", "{\"a\":\"a.jpg\"}", 0, 0},
	    {"{\"a\":[{\"wildcard\":\"a*b*c\"}]}", "{\"a\":\"abc\"}", 1, 0},
	    {"{\"a\":[{\"wildcard\":\"a*b*c\"}]}", "{\"a\":\"aXXbYYc\"}", 1, 0},
	    {"{\"a\":[{\"wildcard\":\"a*b*c\"}]}", "{\"a\":\"acb\"}", 0, 0},
	    {"{\"a\":[{\"wildcard\":\"a*b*c\"}]}", "{\"a\":\"abcx\"}", 0, 0},
	    {"{\"a\":[{\"wildcard\":\"*a*\"}]}", "{\"a\":\"bab\"}", 1, 0},
	    {"{\"a\":[{\"wildcard\":\"*a*\"}]}", "{\"a\":\"bbb\"}", 0, 0},
	    {"{\"a\":[{\"wildcard\":\"a*\"}]}", "{\"a\":\"a\"}", 1, 0},
	    {"{\"a\":[{\"wildcard\":\"*\"}]}", "{\"a\":\"\"}", 1, 0},
	    {"{\"a\":[{\"wildcard\":\"*\"}]}", "{\"a\":\"anything\"}", 1, 0},
	    {"{\"a\":[{\"wildcard\":\"*\"}]}", "{\"a\":5}", 0, 0},
	    {"{\"a\":[{\"wildcard\":\"\"}]}", "{\"a\":\"\"}", 1, 0},
	    {"{\"a\":[{\"wildcard\":\"\"}]}", "{\"a\":\"x\"}", 0, 0},
	    {"{\"a\":[{\"wildcard\":\"abc\"}]}", "{\"a\":\"abc\"}", 1, 0},
	    {"{\"a\":[{\"wildcard\":\"abc\"}]}", "{\"a\":\"abcd\"}", 0, 0},
	    /* \* is a literal star, \\ a literal backslash */
	    {"{\"a\":[{\"wildcard\":\"a\\\\*b\"}]}", "{\"a\":\"a*b\"}", 1, 0},
	    {"{\"a\":[{\"wildcard\":\"a\\\\*b\"}]}", "{\"a\":\"aXb\"}", 0, 0},
	    {"{\"a\":[{\"wildcard\":\"a\\\\\\\\b\"}]}", "{\"a\":\"a\\\\b\"}", 1, 0},
	    {"{\"a\":[{\"wildcard\":\"a\\\\\\\\*\"}]}", "{\"a\":\"a\\\\xyz\"}", 1, 0},
	    {"{\"a\":[{\"wildcard\":\"*\\\\**\"}]}", "{\"a\":\"x*y\"}", 1, 0},
	    {"{\"a\":[{\"wildcard\":\"*\\\\**\"}]}", "{\"a\":\"xy\"}", 0, 0},
	    {"{\"a\":[{\"wildcard\":\"\\\\**\"}]}", "{\"a\":\"*abc\"}", 1, 0},
	    {"{\"a\":[{\"wildcard\":\"x*\"},{\"wildcard\":\"*y\"}]}", "{\"a\":\"ay\"}", 1, 0},
	    {"{\"a\":[{\"wildcard\":\"\\u00e9*\\u00e8\"}]}", "{\"a\":\"\\u00e9t\\u00e8\"}", 1, 0},
	};
	RUN(c);
}

Test(pattern, anything_but)
{
	static const struct mcase c[] = {
	    {"{\"a\":[{\"anything-but\":\"x\"}]}", "{\"a\":\"y\"}", 1, 0},
	    {"{\"a\":[{\"anything-but\":\"x\"}]}", "{\"a\":\"x\"}", 0, 0},
	    {"{\"a\":[{\"anything-but\":\"x\"}]}", "{\"a\":5}", 1, 0},
	    {"{\"a\":[{\"anything-but\":\"x\"}]}", "{\"a\":null}", 1, 0},
	    {"{\"a\":[{\"anything-but\":\"x\"}]}", "{\"a\":true}", 1, 0},
	    {"{\"a\":[{\"anything-but\":\"x\"}]}", "{}", 0, 0},
	    {"{\"a\":[{\"anything-but\":\"x\"}]}", "{\"a\":{\"b\":1}}", 0, 0},
	    {"{\"a\":[{\"anything-but\":\"x\"}]}", "{\"a\":[\"x\",\"y\"]}", 1, 0},
	    {"{\"a\":[{\"anything-but\":\"x\"}]}", "{\"a\":[\"x\"]}", 0, 0},
	    {"{\"a\":[{\"anything-but\":\"x\"}]}", "{\"a\":[]}", 0, 0},
	    {"{\"a\":[{\"anything-but\":[\"x\",\"y\"]}]}", "{\"a\":\"z\"}", 1, 0},
	    {"{\"a\":[{\"anything-but\":[\"x\",\"y\"]}]}", "{\"a\":\"y\"}", 0, 0},
	    {"{\"a\":[{\"anything-but\":5}]}", "{\"a\":5}", 0, 0},
	    {"{\"a\":[{\"anything-but\":5}]}", "{\"a\":5.0}", 0, 0},
	    {"{\"a\":[{\"anything-but\":5}]}", "{\"a\":6}", 1, 0},
	    {"{\"a\":[{\"anything-but\":5}]}", "{\"a\":\"5\"}", 1, 0},
	    {"{\"a\":[{\"anything-but\":[1,2]}]}", "{\"a\":2}", 0, 0},
	    {"{\"a\":[{\"anything-but\":[1,2]}]}", "{\"a\":3}", 1, 0},
	    {"{\"a\":[{\"anything-but\":[1,2]}]}", "{\"a\":\"a\"}", 1, 0},
	    {"{\"a\":[{\"anything-but\":{\"prefix\":\"ab\"}}]}", "{\"a\":\"abc\"}", 0, 0},
	    {"{\"a\":[{\"anything-but\":{\"prefix\":\"ab\"}}]}", "{\"a\":\"xab\"}", 1, 0},
	    {"{\"a\":[{\"anything-but\":{\"prefix\":\"ab\"}}]}", "{\"a\":\"AB\"}", 1, 0},
	    {"{\"a\":[{\"anything-but\":{\"prefix\":\"ab\"}}]}", "{\"a\":5}", 1, 0},
	    {"{\"a\":[{\"anything-but\":{\"suffix\":\"bc\"}}]}", "{\"a\":\"abc\"}", 0, 0},
	    {"{\"a\":[{\"anything-but\":{\"suffix\":\"bc\"}}]}", "{\"a\":\"bcx\"}", 1, 0},
	    {"{\"a\":[{\"anything-but\":{\"equals-ignore-case\":\"X\"}}]}", "{\"a\":\"x\"}", 0, 0},
	    {"{\"a\":[{\"anything-but\":{\"equals-ignore-case\":\"X\"}}]}", "{\"a\":\"y\"}", 1, 0},
	    {"{\"a\":[{\"anything-but\":{\"equals-ignore-case\":[\"A\",\"b\"]}}]}", "{\"a\":\"B\"}",
	     0, 0},
	    {"{\"a\":[{\"anything-but\":{\"equals-ignore-case\":[\"A\",\"b\"]}}]}", "{\"a\":\"c\"}",
	     1, 0},
	    {"{\"a\":[{\"anything-but\":{\"wildcard\":\"*/lib/*\"}}]}", "{\"a\":\"/usr/lib/x\"}", 0,
	     0},
	    {"{\"a\":[{\"anything-but\":{\"wildcard\":\"*/lib/*\"}}]}", "{\"a\":\"/usr/bin/x\"}", 1,
	     0},
	    {"{\"a\":[{\"anything-but\":{\"wildcard\":[\"*.png\",\"*.jpg\"]}}]}",
	     "{\"a\":\"x.jpg\"}", 0, 0},
	    {"{\"a\":[{\"anything-but\":{\"wildcard\":[\"*.png\",\"*.jpg\"]}}]}",
	     "{\"a\":\"x.gif\"}", 1, 0},
	    {"{\"a\":[{\"anything-but\":\"x\"},\"x\"]}", "{\"a\":\"x\"}", 1, 0},
	    {"{\"b\":[1],\"a\":[{\"anything-but\":[\"x\"]}]}", "{\"a\":\"y\",\"b\":1}", 1, 0},
	    {"{\"b\":[1],\"a\":[{\"anything-but\":[\"x\"]}]}", "{\"a\":\"x\",\"b\":1}", 0, 0},
	};
	RUN(c);
}

Test(pattern, numeric)
{
	static const struct mcase c[] = {
	    {"{\"a\":[{\"numeric\":[\"=\",5]}]}", "{\"a\":5}", 1, 0},
	    {"{\"a\":[{\"numeric\":[\"=\",5]}]}", "{\"a\":5.0}", 1, 0},
	    {"{\"a\":[{\"numeric\":[\"=\",5]}]}", "{\"a\":\"5\"}", 0, 0},
	    {"{\"a\":[{\"numeric\":[\"=\",5]}]}", "{\"a\":6}", 0, 0},
	    {"{\"a\":[{\"numeric\":[\"=\",3.018e2]}]}", "{\"a\":301.8}", 1, 0},
	    {"{\"a\":[{\"numeric\":[\"<\",5]}]}", "{\"a\":4.999}", 1, 0},
	    {"{\"a\":[{\"numeric\":[\"<\",5]}]}", "{\"a\":5}", 0, 0},
	    {"{\"a\":[{\"numeric\":[\"<\",5]}]}", "{\"a\":-1e10}", 1, 0},
	    {"{\"a\":[{\"numeric\":[\"<=\",5]}]}", "{\"a\":5}", 1, 0},
	    {"{\"a\":[{\"numeric\":[\"<=\",5]}]}", "{\"a\":5.0001}", 0, 0},
	    {"{\"a\":[{\"numeric\":[\">\",0]}]}", "{\"a\":0}", 0, 0},
	    {"{\"a\":[{\"numeric\":[\">\",0]}]}", "{\"a\":-0}", 0, 0},
	    {"{\"a\":[{\"numeric\":[\">\",0]}]}", "{\"a\":1e-300}", 1, 0},
	    {"{\"a\":[{\"numeric\":[\">\",0]}]}", "{\"a\":\"1\"}", 0, 0},
	    {"{\"a\":[{\"numeric\":[\">\",0]}]}", "{\"a\":true}", 0, 0},
	    {"{\"a\":[{\"numeric\":[\">\",0]}]}", "{\"a\":null}", 0, 0},
	    {"{\"a\":[{\"numeric\":[\">=\",0]}]}", "{\"a\":-0}", 1, 0},
	    {"{\"a\":[{\"numeric\":[\">=\",0]}]}", "{\"a\":-0.0}", 1, 0},
	    {"{\"a\":[{\"numeric\":[\">=\",-0]}]}", "{\"a\":0}", 1, 0},
	    {"{\"a\":[{\"numeric\":[\">=\",0]}]}", "{\"a\":-1e-300}", 0, 0},
	    {"{\"a\":[{\"numeric\":[\">\",0,\"<=\",5]}]}", "{\"a\":0}", 0, 0},
	    {"{\"a\":[{\"numeric\":[\">\",0,\"<=\",5]}]}", "{\"a\":5}", 1, 0},
	    {"{\"a\":[{\"numeric\":[\">\",0,\"<=\",5]}]}", "{\"a\":5.000001}", 0, 0},
	    {"{\"a\":[{\"numeric\":[\">\",0,\"<=\",5]}]}", "{\"a\":2.5}", 1, 0},
	    {"{\"a\":[{\"numeric\":[\">=\",-10,\"<\",-5]}]}", "{\"a\":-10}", 1, 0},
	    {"{\"a\":[{\"numeric\":[\">=\",-10,\"<\",-5]}]}", "{\"a\":-5}", 0, 0},
	    {"{\"a\":[{\"numeric\":[\">=\",-10,\"<\",-5]}]}", "{\"a\":-7.5}", 1, 0},
	    {"{\"a\":[{\"numeric\":[\">=\",-10,\"<\",-5]}]}", "{\"a\":-10.000001}", 0, 0},
	    {"{\"a\":[{\"numeric\":[\">\",1e15]}]}", "{\"a\":1e16}", 1, 0},
	    {"{\"a\":[{\"numeric\":[\">\",1e15]}]}", "{\"a\":999999999999999}", 0, 0},
	    {"{\"a\":[{\"numeric\":[\">\",5e11]}]}", "{\"a\":500000000000.1}", 1, 0},
	    {"{\"a\":[{\"numeric\":[\"<\",-1.7e308]}]}", "{\"a\":-1.79e308}", 1, 0},
	    {"{\"a\":[{\"numeric\":[\">\",0.1,\"<\",0.3]}]}", "{\"a\":0.2}", 1, 0},
	    {"{\"a\":[{\"numeric\":[\">\",0.1,\"<\",0.3]}]}", "{\"a\":0.1}", 0, 0},
	    {"{\"a\":[{\"numeric\":[\">\",37.75,\"<\",37.76]}]}", "{\"a\":37.7571282417}", 1, 0},
	    {"{\"a\":[{\"numeric\":[\">\",10]}]}", "{\"a\":[1,20]}", 1, 0},
	    {"{\"a\":[{\"numeric\":[\">\",10]}]}", "{\"a\":[1,2]}", 0, 0},
	    {"{\"a\":[{\"numeric\":[\"<\",0]},{\"numeric\":[\">\",10]}]}", "{\"a\":11}", 1, 0},
	    {"{\"a\":[{\"numeric\":[\"<\",0]},{\"numeric\":[\">\",10]}]}", "{\"a\":5}", 0, 0},
	    {"{\"a\":[{\"numeric\":[\">=\",1,\"<=\",2]},{\"numeric\":[\">=\",1.5,\"<=\",3]}]}",
	     "{\"a\":2.5}", 1, 0},
	    {"{\"a\":[{\"numeric\":[\">=\",1,\"<=\",2]},5]}", "{\"a\":5}", 1, 0},
	};
	RUN(c);
}

Test(pattern, exists)
{
	static const struct mcase c[] = {
	    {"{\"a\":[{\"exists\":true}]}", "{\"a\":1}", 1, 0},
	    {"{\"a\":[{\"exists\":true}]}", "{\"a\":null}", 1, 0},
	    {"{\"a\":[{\"exists\":true}]}", "{\"a\":\"\"}", 1, 0},
	    {"{\"a\":[{\"exists\":true}]}", "{}", 0, 0},
	    {"{\"a\":[{\"exists\":true}]}", "{\"a\":{}}", 0, 0},
	    {"{\"a\":[{\"exists\":true}]}", "{\"a\":{\"b\":1}}", 0, 0},
	    {"{\"a\":[{\"exists\":true}]}", "{\"a\":[]}", 0, 0},
	    {"{\"a\":[{\"exists\":true}]}", "{\"a\":[1]}", 1, 0},
	    {"{\"a\":[{\"exists\":true}]}", "{\"a\":[{}]}", 0, 0},
	    {"{\"a\":[{\"exists\":false}]}", "{}", 1, 0},
	    {"{\"a\":[{\"exists\":false}]}", "{\"a\":null}", 0, 0},
	    {"{\"a\":[{\"exists\":false}]}", "{\"a\":{\"b\":1}}", 1, 0},
	    {"{\"a\":[{\"exists\":false}]}", "{\"a\":[]}", 1, 0},
	    {"{\"a\":[{\"exists\":false}]}", "{\"a\":[0]}", 0, 0},
	    {"{\"a\":[{\"exists\":false}]}", "{\"b\":1}", 1, 0},
	    {"{\"a\":{\"b\":[{\"exists\":false}]}}", "{\"a\":5}", 1, 0},
	    {"{\"a\":{\"b\":[{\"exists\":false}]}}", "{}", 1, 0},
	    {"{\"a\":{\"b\":[{\"exists\":false}]}}", "{\"a\":{\"b\":1}}", 0, 0},
	    {"{\"a\":{\"b\":[{\"exists\":false}]}}", "{\"a\":[{\"c\":1},{\"b\":1}]}", 0, 0},
	    {"{\"a\":[\"x\"],\"b\":[{\"exists\":false}]}", "{\"a\":\"x\"}", 1, 0},
	    {"{\"a\":[\"x\"],\"b\":[{\"exists\":false}]}", "{\"a\":\"x\",\"b\":0}", 0, 0},
	    {"{\"a\":[{\"exists\":false}],\"b\":[{\"exists\":false}]}", "{\"c\":1}", 1, 0},
	    {"{\"a\":[{\"exists\":false}],\"b\":[{\"exists\":false}]}", "{\"b\":1}", 0, 0},
	    {"{\"a\":[{\"exists\":false},\"x\"]}", "{}", 1, 0},
	    {"{\"a\":[{\"exists\":false},\"x\"]}", "{\"a\":\"x\"}", 1, 0},
	    {"{\"a\":[{\"exists\":false},\"x\"]}", "{\"a\":\"y\"}", 0, 0},
	    {"{\"a\":[{\"exists\":true}],\"b\":[{\"exists\":true}]}", "{\"b\":2,\"a\":1}", 1, 0},
	    {"{\"a\":[{\"exists\":true}],\"b\":[{\"exists\":true}]}", "{\"b\":2}", 0, 0},
	};
	RUN(c);
}

Test(pattern, cidr)
{
	static const struct mcase c[] = {
	    {"{\"ip\":[{\"cidr\":\"10.0.0.0/24\"}]}", "{\"ip\":\"10.0.0.1\"}", 1, 0},
	    {"{\"ip\":[{\"cidr\":\"10.0.0.0/24\"}]}", "{\"ip\":\"10.0.0.0\"}", 1, 0},
	    {"{\"ip\":[{\"cidr\":\"10.0.0.0/24\"}]}", "{\"ip\":\"10.0.0.255\"}", 1, 0},
	    {"{\"ip\":[{\"cidr\":\"10.0.0.0/24\"}]}", "{\"ip\":\"10.0.1.0\"}", 0, 0},
	    {"{\"ip\":[{\"cidr\":\"10.0.0.0/24\"}]}", "{\"ip\":\"9.255.255.255\"}", 0, 0},
	    {"{\"ip\":[{\"cidr\":\"10.0.0.0/24\"}]}", "{\"ip\":\"10.0.0.1x\"}", 0, 0},
	    {"{\"ip\":[{\"cidr\":\"10.0.0.0/24\"}]}", "{\"ip\":\"10.0.0\"}", 0, 0},
	    {"{\"ip\":[{\"cidr\":\"10.0.0.0/24\"}]}", "{\"ip\":10}", 0, 0},
	    {"{\"ip\":[{\"cidr\":\"10.0.0.0/24\"}]}", "{\"ip\":\"::ffff:10.0.0.1\"}", 0, 0},
	    {"{\"ip\":[{\"cidr\":\"10.0.0.5/24\"}]}", "{\"ip\":\"10.0.0.200\"}", 1, 0},
	    {"{\"ip\":[{\"cidr\":\"0.0.0.0/0\"}]}", "{\"ip\":\"1.2.3.4\"}", 1, 0},
	    {"{\"ip\":[{\"cidr\":\"0.0.0.0/0\"}]}", "{\"ip\":\"::1\"}", 0, 0},
	    {"{\"ip\":[{\"cidr\":\"10.1.2.3/32\"}]}", "{\"ip\":\"10.1.2.3\"}", 1, 0},
	    {"{\"ip\":[{\"cidr\":\"10.1.2.3/32\"}]}", "{\"ip\":\"10.1.2.4\"}", 0, 0},
	    {"{\"ip\":[{\"cidr\":\"172.16.0.0/12\"}]}", "{\"ip\":\"172.31.255.255\"}", 1, 0},
	    {"{\"ip\":[{\"cidr\":\"172.16.0.0/12\"}]}", "{\"ip\":\"172.32.0.0\"}", 0, 0},
	    {"{\"ip\":[{\"cidr\":\"2001:db8::/32\"}]}", "{\"ip\":\"2001:db8::1\"}", 1, 0},
	    {"{\"ip\":[{\"cidr\":\"2001:db8::/32\"}]}", "{\"ip\":\"2001:DB8:FFFF::\"}", 1, 0},
	    {"{\"ip\":[{\"cidr\":\"2001:db8::/32\"}]}", "{\"ip\":\"2001:db9::\"}", 0, 0},
	    {"{\"ip\":[{\"cidr\":\"2001:db8::/32\"}]}", "{\"ip\":\"10.0.0.1\"}", 0, 0},
	    {"{\"ip\":[{\"cidr\":\"::/0\"}]}", "{\"ip\":\"fe80::1\"}", 1, 0},
	    {"{\"ip\":[{\"cidr\":\"2001:db8::1/128\"}]}", "{\"ip\":\"2001:0db8:0000::0001\"}", 1,
	     0},
	    {"{\"ip\":[{\"cidr\":\"2001:db8::1/128\"}]}", "{\"ip\":\"2001:db8::2\"}", 0, 0},
	    {"{\"ip\":[{\"cidr\":\"10.0.0.0/8\"},{\"cidr\":\"192.168.0.0/16\"}]}",
	     "{\"ip\":[\"8.8.8.8\",\"192.168.1.1\"]}", 1, 0},
	};
	RUN(c);
}

Test(pattern, arrays_and_consistency)
{
	static const struct mcase c[] = {
	    {"{\"a\":[\"x\"]}", "{\"a\":[\"y\",\"x\"]}", 1, 0},
	    {"{\"a\":[\"x\"]}", "{\"a\":[[\"x\"]]}", 1, 0},
	    {"{\"a\":[\"x\"]}", "{\"a\":[[[\"y\"],[\"x\"]]]}", 1, 0},
	    {"{\"a\":[\"x\"]}", "{\"a\":[]}", 0, 0},
	    {"{\"a\":[\"x\"]}", "{\"a\":[[]]}", 0, 0},
	    {"{\"a\":{\"b\":[\"x\"]}}", "{\"a\":[{\"b\":\"y\"},{\"b\":\"x\"}]}", 1, 0},
	    {"{\"a\":{\"b\":[\"x\"]}}", "{\"a\":[[{\"b\":\"x\"}]]}", 1, 0},
	    {"{\"a\":{\"b\":[\"x\"]}}", "{\"a\":[{\"b\":[\"x\"]}]}", 1, 0},
	    {"{\"a\":{\"b\":[\"x\"]}}", "{\"a\":[1,\"x\",{\"c\":\"x\"}]}", 0, 0},
	    /* two fields may not come from different elements of one array */
	    {"{\"a\":{\"b\":[1],\"c\":[4]}}", "{\"a\":[{\"b\":1,\"c\":2},{\"b\":3,\"c\":4}]}", 0,
	     0},
	    {"{\"a\":{\"b\":[1],\"c\":[4]}}",
	     "{\"a\":[{\"b\":1,\"c\":2},{\"b\":3,\"c\":4},{\"b\":1,\"c\":4}]}", 1, 0},
	    {"{\"a\":{\"b\":[1],\"c\":[2]}}", "{\"a\":[{\"b\":1},{\"c\":2}]}", 0, 0},
	    {"{\"a\":{\"b\":[1],\"c\":[2]}}", "{\"a\":[{\"b\":1,\"c\":2}]}", 1, 0},
	    {"{\"a\":{\"b\":[1],\"c\":[2]}}", "{\"a\":{\"b\":[1,3],\"c\":2}}", 1, 0},
	    {"{\"x\":[\"y\"],\"a\":{\"b\":[1],\"c\":[2]}}",
	     "{\"x\":\"y\",\"a\":[{\"b\":9},{\"b\":1,\"c\":2}]}", 1, 0},
	    {"{\"a\":{\"b\":{\"c\":[1],\"d\":[2]}}}", "{\"a\":[{\"b\":[{\"c\":1},{\"d\":2}]}]}", 0,
	     0},
	    {"{\"a\":{\"b\":{\"c\":[1],\"d\":[2]}}}", "{\"a\":[{\"b\":[{\"c\":1,\"d\":2}]}]}", 1,
	     0},
	    {"{\"a\":{\"b\":{\"c\":[1],\"d\":[2]}}}",
	     "{\"a\":[{\"b\":[{\"c\":1}]},{\"b\":[{\"d\":2}]}]}", 0, 0},
	    {"{\"a\":{\"b\":[1]},\"c\":{\"d\":[2]}}", "{\"a\":[{\"b\":1}],\"c\":[{\"d\":2}]}", 1,
	     0},
	    {"{\"a\":{\"b\":[1],\"c\":[2],\"d\":[3]}}",
	     "{\"a\":[{\"b\":1,\"c\":2},{\"b\":1,\"c\":2,\"d\":3}]}", 1, 0},
	    {"{\"a\":{\"b\":[1],\"c\":[2],\"d\":[3]}}", "{\"a\":[{\"b\":1,\"c\":2},{\"d\":3}]}", 0,
	     0},
	    {"{\"a\":{\"b\":[1],\"c\":[2],\"d\":[3]}}",
	     "{\"a\":[{\"b\":1,\"x\":[{\"c\":2}],\"d\":3}]}", 0, 0},
	    {"{\"a\":{\"b\":[1],\"x\":{\"c\":[2]},\"d\":[3]}}",
	     "{\"a\":[{\"b\":1,\"x\":[{\"c\":2}],\"d\":3}]}", 1, 0},
	    {"{\"a\":{\"b\":[1],\"x\":{\"c\":[2],\"e\":[5]}}}",
	     "{\"a\":[{\"b\":1,\"x\":[{\"c\":2},{\"e\":5}]}]}", 0, 0},
	    {"{\"a\":{\"b\":[1],\"x\":{\"c\":[2],\"e\":[5]}}}",
	     "{\"a\":[{\"b\":1,\"x\":[{\"c\":2},{\"c\":2,\"e\":5}]},{\"b\":2}]}", 1, 0},
	    {"{\"a\":{\"b\":[1],\"c\":[{\"anything-but\":\"x\"}]}}",
	     "{\"a\":[{\"b\":1,\"c\":\"x\"},{\"b\":2,\"c\":\"y\"}]}", 0, 0},
	    {"{\"a\":{\"b\":[1],\"c\":[{\"anything-but\":\"x\"}]}}",
	     "{\"a\":[{\"b\":1,\"c\":\"x\"},{\"b\":1,\"c\":\"y\"}]}", 1, 0},
	    {"{\"a\":{\"b\":[1],\"c\":[{\"exists\":true}]}}", "{\"a\":[{\"b\":1},{\"c\":5}]}", 0,
	     0},
	    {"{\"a\":{\"b\":[1],\"c\":[{\"exists\":true}]}}", "{\"a\":[{\"b\":1,\"c\":null}]}", 1,
	     0},
	    {"{\"a\":{\"b\":[{\"prefix\":\"x\"}],\"c\":[{\"numeric\":[\">\",1]}]}}",
	     "{\"a\":[{\"b\":\"xa\",\"c\":0},{\"b\":\"y\",\"c\":5}]}", 0, 0},
	    {"{\"a\":{\"b\":[{\"prefix\":\"x\"}],\"c\":[{\"numeric\":[\">\",1]}]}}",
	     "{\"a\":[{\"b\":\"xa\",\"c\":0},{\"b\":\"xb\",\"c\":5}]}", 1, 0},
	    /* the same path constrained twice (through $or): both must hold */
	    {"{\"a\":[\"x\",\"y\"],\"$or\":[{\"a\":[\"y\"]},{\"b\":[1]}]}", "{\"a\":\"x\"}", 0, 0},
	    {"{\"a\":[\"x\",\"y\"],\"$or\":[{\"a\":[\"y\"]},{\"b\":[1]}]}", "{\"a\":\"y\"}", 1, 0},
	    {"{\"a\":[\"x\"],\"$or\":[{\"a\":[\"y\"]},{\"b\":[1]}]}", "{\"a\":[\"x\",\"y\"]}", 1,
	     0},
	    /* an element object holding a value for the parent path too */
	    {"{\"a\":[1],\"$or\":[{\"a\":{\"b\":[2]}},{\"c\":[0]}]}", "{\"a\":[1,{\"b\":2}]}", 1,
	     0},
	};
	RUN(c);
}

Test(pattern, or_operator)
{
	static const struct mcase c[] = {
	    {"{\"$or\":[{\"a\":[\"x\"]},{\"b\":[\"y\"]}]}", "{\"a\":\"x\"}", 1, 0},
	    {"{\"$or\":[{\"a\":[\"x\"]},{\"b\":[\"y\"]}]}", "{\"b\":\"y\"}", 1, 0},
	    {"{\"$or\":[{\"a\":[\"x\"]},{\"b\":[\"y\"]}]}", "{\"a\":\"y\"}", 0, 0},
	    {"{\"c\":[\"z\"],\"$or\":[{\"a\":[\"x\"]},{\"b\":[\"y\"]}]}",
	     "{\"c\":\"z\",\"b\":\"y\"}", 1, 0},
	    {"{\"c\":[\"z\"],\"$or\":[{\"a\":[\"x\"]},{\"b\":[\"y\"]}]}", "{\"b\":\"y\"}", 0, 0},
	    {"{\"$or\":[{\"a\":[\"x\"]},{\"$or\":[{\"b\":[\"y\"]},{\"c\":[\"z\"]}]}]}",
	     "{\"c\":\"z\"}", 1, 0},
	    {"{\"$or\":[{\"a\":[\"x\"]},{\"$or\":[{\"b\":[\"y\"]},{\"c\":[\"z\"]}]}]}",
	     "{\"d\":\"z\"}", 0, 0},
	    {"{\"$or\":[{\"a\":[1]},{\"b\":[2]}],\"d\":{\"$or\":[{\"e\":[3]},{\"f\":[4]}]}}",
	     "{\"b\":2,\"d\":{\"f\":4}}", 1, 0},
	    {"{\"$or\":[{\"a\":[1]},{\"b\":[2]}],\"d\":{\"$or\":[{\"e\":[3]},{\"f\":[4]}]}}",
	     "{\"b\":2,\"d\":{\"g\":4}}", 0, 0},
	    {"{\"d\":{\"$or\":[{\"e\":[3]},{\"f\":{\"g\":[4]}}]}}", "{\"d\":{\"f\":{\"g\":4}}}", 1,
	     0},
	    {"{\"$or\":[{\"a\":[1],\"b\":[2]},{\"c\":[3]}]}", "{\"a\":1}", 0, 0},
	    {"{\"$or\":[{\"a\":[1],\"b\":[2]},{\"c\":[3]}]}", "{\"a\":1,\"b\":2}", 1, 0},
	    {"{\"$or\":[{\"a\":[{\"exists\":false}]},{\"b\":[{\"prefix\":\"q\"}]}]}", "{\"a\":1}",
	     0, 0},
	    {"{\"$or\":[{\"a\":[{\"exists\":false}]},{\"b\":[{\"prefix\":\"q\"}]}]}", "{}", 1, 0},
	    {"{\"$or\":[{\"a\":[{\"exists\":false}]},{\"b\":[{\"prefix\":\"q\"}]}]}",
	     "{\"a\":1,\"b\":\"qq\"}", 1, 0},
	    {"{\"$or\":[{\"a\":[{\"numeric\":[\">\",10]}]},{\"a\":[{\"numeric\":[\"<\",0]}]}]}",
	     "{\"a\":-1}", 1, 0},
	    {"{\"$or\":[{\"a\":[1]},{\"a\":[2]},{\"a\":[3]}]}", "{\"a\":3}", 1, 0},
	};
	RUN(c);
}

Test(pattern, escapes_and_unicode_in_events)
{
	static const struct mcase c[] = {
	    {"{\"a\":[\"\\u00e9\"]}", "{\"a\":\"\\u00e9\"}", 1, 0},
	    {"{\"a\":[\"\\u00e9\"]}", "{\"a\":\"\\u00E9\"}", 1, 0},
	    {"{\"a\":[\"\xc3\xa9\"]}", "{\"a\":\"\\u00e9\"}", 1, 0},
	    {"{\"a\":[\"\\u00e9\"]}", "{\"a\":\"\xc3\xa9\"}", 1, 0},
	    {"{\"a\":[\"\xf0\x9f\x98\x80\"]}", "{\"a\":\"\\ud83d\\ude00\"}", 1, 0},
	    {"{\"a\":[\"\\ud83d\\ude00\"]}", "{\"a\":\"\xf0\x9f\x98\x80\"}", 1, 0},
	    {"{\"a\":[\"a\\\"b\"]}", "{\"a\":\"a\\\"b\"}", 1, 0},
	    {"{\"a\":[\"a\\\"b\"]}", "{\"a\":\"a\\u0022b\"}", 1, 0},
	    {"{\"a\\\"b\":[\"x\"]}", "{\"a\\\"b\":\"x\"}", 1, 0},
	    {"{\"a\\\"b\":[\"x\"]}", "{\"a\\u0022b\":\"x\"}", 1, 0},
	    {"{\"a\\\"b\":[\"x\"]}", "{\"a\\\\\\\"b\":\"x\"}", 0, 0},
	    {"{\"\\u00e9\":[\"x\"]}", "{\"\xc3\xa9\":\"x\"}", 1, 0},
	    {"{\"\\u00e9\":{\"b\":[\"x\"]}}", "{\"\\u00e9\":{\"b\":\"x\"}}", 1, 0},
	    {"{\"a\":[\"/\"]}", "{\"a\":\"\\/\"}", 1, 0},
	    {"{\"a\":[\"a\\nb\"]}", "{\"a\":\"a\\u000ab\"}", 1, 0},
	    {"{\"a\":[\"x\"]}", "{\"a\":\"\\u0078\"}", 1, 0},
	    {"{\"a\":[\"a\\u0000b\"]}", "{\"a\":\"a\\u0000b\"}", 1, 0},
	    {"{\"a\":[\"a\\u0000b\"]}", "{\"a\":\"a\"}", 0, 0},
	    {"{\"a\":[{\"prefix\":\"\\u00e9t\"}]}", "{\"a\":\"\\u00e9t\\u00e9\"}", 1, 0},
	    {"{\"a\":[\"x\"]}", "{\"b\":\"\\\"}\\\\\",\"a\":\"x\"}", 1, 0},
	    {"{\"a\":[\"x\"]}", "{\"b\":[\"]\",\"}\",\"{\",\"\\\"\"],\"a\":\"x\"}", 1, 0},
	    {"{\"a\":[\"x\"]}", " \n\t{ \"a\" : \"x\" } \r\n", 1, 0},
	    /* duplicate keys in an event: every value counts */
	    {"{\"a\":[\"x\"]}", "{\"a\":\"x\",\"a\":\"y\"}", 1, 1},
	    {"{\"a\":[\"y\"]}", "{\"a\":\"x\",\"a\":\"y\"}", 1, 0},
	};
	RUN(c);
}

/* ---------------------------------------------------------------------------------- */
/* validation */

struct ecase {
	const char *pattern;
	const char *msg; /* a substring of the message */
};

Test(pattern, validation_errors_name_the_place)
{
	static const struct ecase c[] = {
	    {"[]", "pattern: expected a JSON object, found an array"},
	    {"\"x\"", "pattern: expected a JSON object, found a string"},
	    {"{}", "at the top level: empty object"},
	    {"{\"a\":\"x\"}", "at a: expected an array of values or an object of fields, found "
			      "\"x\""},
	    {"{\"a\":5}", "at a: expected an array of values or an object of fields, found 5"},
	    {"{\"a\":null}", "at a: expected an array"},
	    {"{\"a\":[]}", "at a: empty array"},
	    {"{\"a\":{}}", "at a: empty object"},
	    {"{\"a\":{\"b\":{}}}", "at a.b: empty object"},
	    {"{\"a\":[[1]]}", "at a: expected a string, number, boolean, null or operator object "
			      "in the array, found an array"},
	    {"{\"a\":[{\"prefx\":\"x\"}]}", "at a: unknown operator \"prefx\""},
	    {"{\"a\":[{\"prefix\":\"x\",\"suffix\":\"y\"}]}",
	     "at a: an operator object must have exactly one key, found 2"},
	    {"{\"a\":[{}]}", "at a: an operator object must have exactly one key, found 0"},
	    {"{\"a\":[{\"prefix\":5}]}", "at a: prefix: expected a string or"},
	    {"{\"a\":[{\"prefix\":{\"equals-ignore-case\":5}}]}",
	     "at a: prefix: equals-ignore-case: expected a string, found 5"},
	    {"{\"a\":[{\"prefix\":{\"foo\":\"x\"}}]}", "at a: prefix: expected a string or"},
	    {"{\"a\":[{\"suffix\":[]}]}", "at a: suffix: expected a string or"},
	    {"{\"a\":[{\"equals-ignore-case\":1}]}",
	     "at a: equals-ignore-case: expected a string, found 1"},
	    {"{\"a\":[{\"wildcard\":\"a**b\"}]}",
	     "at a: wildcard: consecutive \"*\" characters are not allowed in \"a**b\""},
	    {"{\"a\":[{\"wildcard\":\"a\\\\b\"}]}", "at a: wildcard: in \"a\\\\b\", \"\\\" must be "
						    "followed by"},
	    {"{\"a\":[{\"wildcard\":\"ab\\\\\"}]}", "must be followed by"},
	    {"{\"a\":[{\"wildcard\":5}]}", "at a: wildcard: expected a string, found 5"},
	    {"{\"detail\":{\"size\":[{\"numeric\":[\"=>\",5]}]}}",
	     "at detail.size: numeric: expected an operator, found \"=>\""},
	    {"{\"a\":[{\"numeric\":[\">\",0,\">\",5]}]}",
	     "at a: numeric: expected \"<\" or \"<=\" after the lower bound, found \">\""},
	    {"{\"a\":[{\"numeric\":[\"<\",5,\">\",0]}]}",
	     "at a: numeric: nothing may follow \"<\""},
	    {"{\"a\":[{\"numeric\":[\"=\",5,\"<\",6]}]}",
	     "at a: numeric: nothing may follow \"=\""},
	    {"{\"a\":[{\"numeric\":[\">\",5,\"<\",5]}]}",
	     "at a: numeric: the lower bound 5 is not below the upper bound 5"},
	    {"{\"a\":[{\"numeric\":[\">=\",6,\"<=\",5]}]}",
	     "the lower bound 6 is not below the upper bound 5"},
	    {"{\"a\":[{\"numeric\":[\"=\",\"5\"]}]}",
	     "at a: numeric: the value after \"=\" must be a number, found \"5\""},
	    {"{\"a\":[{\"numeric\":[\">\"]}]}", "at a: numeric: \">\" needs a number after it"},
	    {"{\"a\":[{\"numeric\":[]}]}", "at a: numeric: expected an operator, found an empty "
					   "array"},
	    {"{\"a\":[{\"numeric\":5}]}", "at a: numeric: expected an array"},
	    {"{\"a\":[{\"numeric\":[\">\",1e999]}]}", "at a: numeric: 1e999 is out of range"},
	    {"{\"a\":[{\"numeric\":[\">\",0,\"<\",5,\"<\",6]}]}", "at a: numeric: too many"},
	    {"{\"a\":[{\"numeric\":[5,\">\"]}]}", "at a: numeric: expected an operator, found 5"},
	    {"{\"a\":[{\"exists\":\"true\"}]}", "at a: exists: expected true or false, found "
						"\"true\""},
	    {"{\"a\":[{\"exists\":1}]}", "at a: exists: expected true or false, found 1"},
	    {"{\"a\":[{\"cidr\":\"10.0.0.0/33\"}]}",
	     "at a: cidr: \"10.0.0.0/33\": the prefix length must be 0 to 32"},
	    {"{\"a\":[{\"cidr\":\"10.0.0.0\"}]}", "at a: cidr: \"10.0.0.0\" is not "
						  "address/prefix-length"},
	    {"{\"a\":[{\"cidr\":\"foo/8\"}]}",
	     "at a: cidr: \"foo/8\" does not start with an IPv4 or IPv6 address"},
	    {"{\"a\":[{\"cidr\":\"2001:db8::/129\"}]}", "the prefix length must be 0 to 128"},
	    {"{\"a\":[{\"cidr\":\"10.0.0.0/x\"}]}", "the prefix length must be 0 to 32"},
	    {"{\"a\":[{\"cidr\":\"10.0.0.0/\"}]}", "the prefix length must be 0 to 32"},
	    {"{\"a\":[{\"cidr\":\"10.0.0.0/8/8\"}]}", "is not address/prefix-length"},
	    {"{\"a\":[{\"cidr\":\"256.0.0.0/8\"}]}", "does not start with an IPv4 or IPv6"},
	    {"{\"a\":[{\"cidr\":5}]}", "at a: cidr: expected a string such as"},
	    {"{\"a\":[{\"anything-but\":[]}]}", "at a: anything-but: the list is empty"},
	    {"{\"a\":[{\"anything-but\":[\"x\",1]}]}",
	     "at a: anything-but: a list must hold only strings or only numbers"},
	    {"{\"a\":[{\"anything-but\":[null]}]}",
	     "at a: anything-but: list values must be strings or numbers, found null"},
	    {"{\"a\":[{\"anything-but\":null}]}", "at a: anything-but: expected a string, a "
						  "number"},
	    {"{\"a\":[{\"anything-but\":true}]}", "found true"},
	    {"{\"a\":[{\"anything-but\":{\"prefix\":\"\"}}]}",
	     "at a: anything-but: prefix: the prefix must not be empty"},
	    {"{\"a\":[{\"anything-but\":{\"suffix\":\"\"}}]}", "the suffix must not be empty"},
	    {"{\"a\":[{\"anything-but\":{\"numeric\":[\">\",1]}}]}",
	     "at a: anything-but: unsupported operator \"numeric\""},
	    {"{\"a\":[{\"anything-but\":{\"prefix\":\"a\",\"suffix\":\"b\"}}]}",
	     "anything-but: an operator object must have exactly one key, found 2"},
	    {"{\"a\":[{\"anything-but\":{\"prefix\":5}}]}",
	     "at a: anything-but: prefix: expected a string, found 5"},
	    {"{\"a\":[{\"anything-but\":{\"wildcard\":\"a**\"}}]}",
	     "anything-but: wildcard: consecutive"},
	    {"{\"a\":[{\"anything-but\":{\"equals-ignore-case\":[1]}}]}",
	     "anything-but: equals-ignore-case: expected a string or a list of strings, found 1"},
	    {"{\"a\":[{\"anything-but\":{\"equals-ignore-case\":[]}}]}",
	     "anything-but: equals-ignore-case: the list is empty"},
	    {"{\"$or\":{\"a\":[\"x\"]}}",
	     "at the top level: $or must be an array of at least two objects, found an object"},
	    {"{\"$or\":[{\"a\":[\"x\"]}]}", "$or must be an array of at least two objects, found "
					    "1"},
	    {"{\"$or\":[{\"a\":[\"x\"]},\"b\"]}", "at $or[1]: expected an object, found \"b\""},
	    {"{\"$or\":[{\"a\":[\"x\"]},{}]}", "at $or[1]: empty object"},
	    {"{\"$or\":[{\"a\":[\"x\"]},{\"b\":{\"c\":[{\"numeric\":[\">\",\"x\"]}]}}]}",
	     "at $or[1].b.c: numeric: the value after \">\" must be a number, found \"x\""},
	    {"{\"d\":{\"$or\":[{\"a\":[\"x\"]},{\"b\":[]}]}}", "at d.$or[1].b: empty array"},
	    {"{\"a\":[\"x\"]", "pattern: invalid JSON at line 1, column 11"},
	    {"{\"a\":[01]}", "pattern: invalid JSON at line 1, column 7: numbers may not have "
			     "leading zeros"},
	    {"{\"a\":[\"x\"]}x", "pattern: invalid JSON at line 1, column 12: unexpected 'x'"},
	    {"{\n  \"a\": [\n    \"x\",\n  ]\n}", "pattern: invalid JSON at line 4, column 3"},
	    {"{\"a\":[\"\\q\"]}", "invalid escape \\q"},
	    {"{\"a\":[\"\\ud800\"]}", "high surrogate"},
	    {"{\"a\":[\"x\xff\"]}", "invalid UTF-8"},
	    {"", "pattern: invalid JSON at line 1, column 1: expected a value, found end of text"},
	    {"{\"a\":[\"x\"],\"a\":[\"y\"]}", "at the top level: duplicate key \"a\""},
	    {"{\"a.b\":{\"c\":[]}}", "at \"a.b\".c: empty array"},
	    {"{\"\":[]}", "at \"\": empty array"},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		char err[512] = "";
		int rc = td_pattern_validate(c[i].pattern, strlen(c[i].pattern), err, sizeof(err));
		cr_expect_eq(rc, -TD_EINVAL, "case %zu: %s accepted", i, c[i].pattern);
		cr_expect(strstr(err, c[i].msg) != NULL,
			  "case %zu: %s\n  message: %s\n  wanted: %s", i, c[i].pattern, err,
			  c[i].msg);
		/* _add says the same and leaves the set usable */
		struct td_pattern_set *set = td_pattern_set_create();
		char err2[512] = "";
		cr_expect_eq(td_pattern_set_add(set, 1, c[i].pattern, strlen(c[i].pattern), err2,
						sizeof(err2)),
			     -TD_EINVAL);
		cr_expect_str_eq(err2, err);
		cr_expect_eq(td_pattern_set_add(set, 2, "{\"a\":[1]}", 9, NULL, 0), 0);
		td_pattern_set_destroy(set);
	}
}

Test(pattern, validation_limits)
{
	char err[512];
	/* nesting deeper than the limit */
	char deep[2048] = "";
	for (int i = 0; i < 70; i++)
		strcat(deep, "{\"a\":");
	strcat(deep, "[1]");
	for (int i = 0; i < 70; i++)
		strcat(deep, "}");
	cr_expect_eq(td_pattern_validate(deep, strlen(deep), err, sizeof(err)), -TD_EINVAL);
	cr_expect(strstr(err, "nests deeper than 64 levels"), "%s", err);
	/* $or combinations beyond the limit: 2^11 */
	char ors[4096] = "{";
	for (int i = 0; i < 11; i++) {
		char part[128];
		snprintf(part, sizeof(part), "%s\"k%d\":{\"$or\":[{\"a\":[1]},{\"b\":[2]}]}",
			 i ? "," : "", i);
		strcat(ors, part);
	}
	strcat(ors, "}");
	cr_expect_eq(td_pattern_validate(ors, strlen(ors), err, sizeof(err)), -TD_EINVAL);
	cr_expect(strstr(err, "more than 1024 combinations"), "%s", err);
	/* 2^10 combinations are fine */
	char *cut = strstr(ors, ",\"k10\"");
	cr_assert_not_null(cut);
	strcpy(cut, "}");
	cr_expect_eq(td_pattern_validate(ors, strlen(ors), err, sizeof(err)), 0, "%s", err);
	/* more than 64 conditions in one conjunction */
	char wide[4096] = "{";
	for (int i = 0; i < 65; i++) {
		char part[32];
		snprintf(part, sizeof(part), "%s\"f%d\":[1]", i ? "," : "", i);
		strcat(wide, part);
	}
	strcat(wide, "}");
	cr_expect_eq(td_pattern_validate(wide, strlen(wide), err, sizeof(err)), -TD_EINVAL);
	cr_expect(strstr(err, "more than 64 fields must match together"), "%s", err);
	/* JSON nesting that never ends */
	char brackets[1200];
	memset(brackets, '[', sizeof(brackets) - 1);
	brackets[sizeof(brackets) - 1] = 0;
	cr_expect_eq(td_pattern_validate(brackets, strlen(brackets), err, sizeof(err)), -TD_EINVAL);
	cr_expect(strstr(err, "nesting deeper than"), "%s", err);
	/* long operands shown in messages are cut, escapes and UTF-8 kept whole */
	static const char *const pieces[] = {"\\\\",	 "\\\"", "\\u0001",
					     "\xc3\xa9", "x",	 "\xf0\x9f\x98\x80"};
	for (size_t p = 0; p < sizeof(pieces) / sizeof(pieces[0]); p++) {
		for (int n = 0; n < 120; n++) {
			char text[1200];
			size_t o = (size_t)sprintf(text, "{\"a\":\"");
			for (int i = 0; i < n; i++)
				o += (size_t)sprintf(text + o, "%s", pieces[(p + (size_t)i) % 6]);
			o += (size_t)sprintf(text + o, "\"}");
			char msg[160];
			cr_assert_eq(td_pattern_validate(text, o, msg, sizeof(msg)), -TD_EINVAL);
			cr_expect(strncmp(msg, "at a: expected an array of values", 33) == 0, "%s",
				  msg);
			cr_expect(td_pat_utf8_valid(msg, strlen(msg)), "%s", msg);
			cr_expect(msg[strlen(msg) - 1] == '"', "%s", msg);
		}
	}
	/* NULL and tiny error buffers are allowed */
	cr_expect_eq(td_pattern_validate("{}", 2, NULL, 0), -TD_EINVAL);
	char tiny[8];
	cr_expect_eq(td_pattern_validate("{}", 2, tiny, sizeof(tiny)), -TD_EINVAL);
	cr_expect_eq(strlen(tiny), 7);
	cr_expect_eq(td_pattern_validate(NULL, 0, err, sizeof(err)), -TD_EINVAL);
}

/* ---------------------------------------------------------------------------------- */
/* events */

struct evcase {
	const char *event;
	int strict_only; /* fast scans skip this part and need not see the problem */
	const char *msg;
	const char *fast_msg; /* when the fast scan words it differently */
};

Test(pattern, invalid_events)
{
	static const struct evcase c[] = {
	    {"[1]", 0, "event: expected a JSON object, found an array", NULL},
	    {"", 0, "event: expected a JSON object, found nothing", NULL},
	    {"   ", 0, "found nothing", NULL},
	    {"\"x\"", 0, "found a string", NULL},
	    {"5", 0, "found a number", NULL},
	    {"{\"a\":", 0, "event: invalid JSON at byte 5: expected a value", NULL},
	    {"{\"a\":\"x\"", 0, "at byte 8: expected ',' or '}' in an object", NULL},
	    {"{\"a\":\"x\"}}", 0, "at byte 9: unexpected text after the object", NULL},
	    {"{\"a\" \"x\"}", 0, "expected ':' after a key", NULL},
	    {"{a:1}", 0, "expected a string key", NULL},
	    {"{\"a\":\"\\x\"}", 0, "invalid escape", NULL},
	    {"{\"a\":\"a\x01\"}", 0, "control character in a string", NULL},
	    {"{\"a\":01}", 0, "numbers may not have leading zeros", NULL},
	    {"{\"a\":1.}", 0, "a digit must follow the decimal point", NULL},
	    {"{\"a\":1e}", 0, "a digit must follow the exponent", NULL},
	    {"{\"a\":-}", 0, "expected a value", NULL},
	    {"{\"a\":tru}", 0, "invalid literal", NULL},
	    {"{\"a\":nul}", 0, "invalid literal", NULL},
	    {"{\"a\":\"\\ud800\"}", 0, "high surrogate without a low one", NULL},
	    {"{\"a\":\"\\udc00\"}", 0, "lone low surrogate", NULL},
	    {"{\"a\":\"\\u12\"}", 0, "\\u needs four hex digits", NULL},
	    {"{\"a\":\"\xff\"}", 0, "invalid UTF-8", NULL},
	    {"{\"a\":\"\xc0\xaf\"}", 0, "invalid UTF-8", NULL},
	    {"{\"a\":\"\xed\xa0\x80\"}", 0, "invalid UTF-8", NULL},
	    {"{\"a\":[1,2}", 0, "expected ',' or ']' in an array", NULL},
	    {"{\"a\":\"x", 0, "unterminated string", NULL},
	    {"{\"z\":[1,2,{\"a\":\"x\"}", 0, "expected ',' or ']' in an array",
	     "unterminated object or array"},
	    {"{\"z\":\"abc", 0, "unterminated string", NULL},
	    {"{\"z\":[1,,2],\"a\":\"x\"}", 1, "expected a value", NULL},
	    {"{\"z\":{\"q\" 1},\"a\":\"x\"}", 1, "expected ':' after a key", NULL},
	    {"{\"z\":\"\\x\",\"a\":\"x\"}", 1, "invalid escape", NULL},
	    {"{\"z\":[01],\"a\":\"x\"}", 1, "leading zeros", NULL},
	};
	struct td_pattern_set *set = td_pattern_set_create();
	cr_assert_eq(td_pattern_set_add(set, 1, "{\"a\":[\"x\"]}", 11, NULL, 0), 0);
	cr_assert_eq(td_pattern_set_compile(set), 0);
	struct td_matcher *m = td_matcher_create(set);
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		for (int strict = 1; strict >= 0; strict--) {
			char err[256] = "";
			const unsigned *ids;
			td_matcher_set_strict(m, strict);
			int n = td_matcher_match(m, c[i].event, strlen(c[i].event), &ids, err,
						 sizeof(err));
			if (!strict && c[i].strict_only) {
				/* documented: skipped subtrees are only checked for balance */
				cr_expect_eq(n, 1, "case %zu: fast scan: %d %s", i, n, err);
				continue;
			}
			cr_expect_eq(n, -TD_EINVAL, "case %zu (%s): %s accepted", i,
				     strict ? "strict" : "fast", c[i].event);
			const char *want = !strict && c[i].fast_msg ? c[i].fast_msg : c[i].msg;
			cr_expect(strstr(err, want) != NULL, "case %zu: %s\n  got: %s\n  want: %s",
				  i, c[i].event, err, want);
		}
	}
	/* err may be NULL; a NULL event with a length is refused */
	const unsigned *ids;
	cr_expect_eq(td_matcher_match(m, "[", 1, &ids, NULL, 0), -TD_EINVAL);
	cr_expect_eq(td_matcher_match(m, NULL, 3, &ids, NULL, 0), -TD_EINVAL);
	/* nesting along a visited path is limited; in a skipped subtree it is not */
	size_t depth = 3000;
	char *deep = malloc(2 * depth + 64);
	strcpy(deep, "{\"a\":");
	memset(deep + 5, '[', depth);
	strcpy(deep + 5 + depth, "\"x\"");
	memset(deep + 8 + depth, ']', depth);
	strcpy(deep + 8 + 2 * depth, "}");
	char err[256];
	td_matcher_set_strict(m, 0);
	cr_expect_eq(td_matcher_match(m, deep, strlen(deep), &ids, err, sizeof(err)), -TD_EINVAL);
	cr_expect(strstr(err, "nesting too deep"), "%s", err);
	deep[2] = 'z';
	cr_expect_eq(td_matcher_match(m, deep, strlen(deep), &ids, err, sizeof(err)), 0, "%s", err);
	free(deep);
	td_matcher_destroy(m);
	td_pattern_set_destroy(set);
}

/* The 64-byte block paths of the scanner, with every alignment of the tricky bytes. */
Test(pattern, long_events_at_every_alignment)
{
	struct td_pattern_set *set = td_pattern_set_create();
	const char *pat = "{\"a\":[\"x\"],\"o\":{\"k\":[\"v\"]}}";
	cr_assert_eq(td_pattern_set_add(set, 1, pat, strlen(pat), NULL, 0), 0);
	cr_assert_eq(td_pattern_set_compile(set), 0);
	struct td_matcher *m = td_matcher_create(set);
	/* strings full of brackets, quotes and backslashes, in skipped and visited parts */
	static const char *const tricky[] = {
	    "\"]}\\\"[{\"",
	    "\"\\\\\"",
	    "\"\\u005d\\\\\\\"}\"",
	    "[\"}\",{\"q\":\"]\\\"\"},[[]],\"\\\\\"]",
	    "{\"\\\"\":{\"]\":\"[\"}}",
	    "-1.5e3",
	    "\"\xc3\xa9\xe2\x82\xac\"",
	};
	char *ev = malloc(4096);
	for (size_t t = 0; t < sizeof(tricky) / sizeof(tricky[0]); t++) {
		for (int pad = 0; pad < 140; pad++) {
			for (int variant = 0; variant < 3; variant++) {
				int n = 0;
				n += sprintf(ev + n, "{\"z\":[");
				for (int i = 0; i < pad; i++) {
					if (i % 3 == 0) {
						ev[n++] = (char)('0' + i % 10);
						ev[n++] = ',';
					} else {
						ev[n++] = ' ';
					}
				}
				n += sprintf(ev + n, "%s,%s],", tricky[t], tricky[t]);
				/* a visited object with many keys, padded likewise */
				n += sprintf(
				    ev + n, "\"o\":{\"p%d\":\"%.*s\",\"q\":%s,", pad, pad % 40,
				    "................................................", tricky[t]);
				n += sprintf(ev + n, "\"k\":\"%s\"},\"a\":\"x\",\"y\":%s}",
					     variant == 1 ? "w" : "v", tricky[t]);
				if (variant == 2)
					ev[n - 1] = ' '; /* drop the closing brace */
				for (int strict = 0; strict < 2; strict++) {
					const unsigned *ids;
					char err[256];
					td_matcher_set_strict(m, strict);
					int got = td_matcher_match(m, ev, (size_t)n, &ids, err,
								   sizeof(err));
					int want = variant == 0 ? 1 : variant == 1 ? 0 : -TD_EINVAL;
					cr_expect_eq(
					    got, want,
					    "tricky %zu pad %d variant %d strict %d: %d %s\n%s", t,
					    pad, variant, strict, got, got < 0 ? err : "", ev);
				}
			}
		}
	}
	free(ev);
	td_matcher_destroy(m);
	td_pattern_set_destroy(set);
}

/* ---------------------------------------------------------------------------------- */
/* sets */

static const char *const set_patterns[] = {
    "{\"a\":[\"x\"]}",
    "{\"a\":[\"x\",\"y\"]}",
    "{\"a\":[{\"prefix\":\"x\"}]}",
    "{\"a\":[{\"prefix\":\"xy\"}]}",
    "{\"a\":[{\"suffix\":\"y\"}]}",
    "{\"a\":[{\"equals-ignore-case\":\"X\"}]}",
    "{\"a\":[{\"wildcard\":\"x*\"}]}",
    "{\"a\":[{\"anything-but\":\"x\"}]}",
    "{\"a\":[{\"anything-but\":[\"x\",\"y\"]}]}",
    "{\"a\":[{\"exists\":true}]}",
    "{\"a\":[{\"exists\":false}]}",
    "{\"a\":[\"x\"],\"b\":[1]}",
    "{\"a\":[\"x\"],\"b\":[{\"numeric\":[\">\",0]}]}",
    "{\"a\":[\"y\"],\"b\":[{\"numeric\":[\">\",0,\"<\",2]}]}",
    "{\"b\":[{\"numeric\":[\">=\",1]}]}",
    "{\"b\":[{\"numeric\":[\"<\",1]}]}",
    "{\"b\":[1,2,3]}",
    "{\"b\":[{\"anything-but\":[1]}]}",
    "{\"b\":[{\"exists\":false}],\"a\":[{\"exists\":true}]}",
    "{\"c\":{\"d\":[\"x\"],\"e\":[\"y\"]}}",
    "{\"c\":{\"d\":[\"x\"]}}",
    "{\"c\":{\"e\":[\"y\"]},\"a\":[\"x\"]}",
    "{\"$or\":[{\"a\":[\"x\"]},{\"b\":[2]}]}",
    "{\"$or\":[{\"c\":{\"d\":[\"x\"]}},{\"c\":{\"e\":[\"z\"]}}],\"a\":[{\"prefix\":\"\"}]}",
    "{\"ip\":[{\"cidr\":\"10.0.0.0/8\"}]}",
    "{\"ip\":[{\"cidr\":\"10.1.0.0/16\"}],\"a\":[\"x\"]}",
    "{\"ip\":[{\"cidr\":\"2001:db8::/32\"}]}",
    "{\"a\":[null]}",
    "{\"a\":[true]}",
    "{\"b\":[true,false]}",
    "{\"c\":{\"d\":[{\"anything-but\":{\"prefix\":\"x\"}}],\"e\":[{\"exists\":true}]}}",
};

static const char *const set_events[] = {
    "{\"a\":\"x\"}",
    "{\"a\":\"y\"}",
    "{\"a\":\"xy\"}",
    "{\"a\":\"X\",\"b\":1}",
    "{\"a\":\"x\",\"b\":1}",
    "{\"a\":\"x\",\"b\":0.5}",
    "{\"a\":\"y\",\"b\":1.5}",
    "{\"b\":2}",
    "{\"b\":true}",
    "{\"a\":null}",
    "{\"a\":true,\"b\":false}",
    "{\"c\":{\"d\":\"x\",\"e\":\"y\"}}",
    "{\"c\":[{\"d\":\"x\"},{\"e\":\"y\"}],\"a\":\"x\"}",
    "{\"c\":[{\"d\":\"x\",\"e\":\"y\"}],\"a\":\"zz\"}",
    "{\"c\":{\"d\":\"q\",\"e\":\"z\"},\"a\":\"\"}",
    "{\"ip\":\"10.1.2.3\",\"a\":\"x\"}",
    "{\"ip\":[\"10.2.2.3\",\"2001:db8::5\"]}",
    "{\"a\":[\"x\",\"y\",\"z\"],\"b\":[0,1,2]}",
    "{}",
    "{\"d\":{\"a\":\"x\"}}",
};

#define NPAT (sizeof(set_patterns) / sizeof(set_patterns[0]))
#define NEV  (sizeof(set_events) / sizeof(set_events[0]))

Test(pattern, set_answers_like_each_rule_alone)
{
	/* each rule alone */
	int alone[NPAT][NEV];
	for (size_t p = 0; p < NPAT; p++)
		for (size_t e = 0; e < NEV; e++) {
			alone[p][e] = engine_match(set_patterns[p], set_events[e], 1);
			cr_expect_eq(alone[p][e], reference_match(set_patterns[p], set_events[e]),
				     "reference disagrees: %s on %s", set_patterns[p],
				     set_events[e]);
		}
	/* all in one set, ids scrambled (ascending output must be sorted) */
	struct td_pattern_set *set = td_pattern_set_create();
	for (size_t p = 0; p < NPAT; p++)
		cr_assert_eq(td_pattern_set_add(set, (unsigned)(1000 - 7 * p), set_patterns[p],
						strlen(set_patterns[p]), NULL, 0),
			     0);
	cr_assert_eq(td_pattern_set_compile(set), 0);
	struct td_matcher *m = td_matcher_create(set);
	/* twice, so that reused state (stamps, buffers) is exercised */
	for (int round = 0; round < 2; round++)
		for (size_t e = 0; e < NEV; e++) {
			const unsigned *ids;
			int n = td_matcher_match(m, set_events[e], strlen(set_events[e]), &ids,
						 NULL, 0);
			cr_assert_geq(n, 0);
			int want = 0;
			for (size_t p = 0; p < NPAT; p++)
				want += alone[p][e];
			cr_expect_eq(n, want, "event %s: %d ids, want %d", set_events[e], n, want);
			for (int i = 0; i < n; i++) {
				size_t p = (1000 - ids[i]) / 7;
				cr_expect(p < NPAT && alone[p][e], "event %s: unexpected id %u",
					  set_events[e], ids[i]);
				if (i)
					cr_expect_lt(ids[i - 1], ids[i]);
			}
		}
	td_matcher_destroy(m);
	td_pattern_set_destroy(set);
}

Test(pattern, same_id_several_patterns_and_api_states)
{
	struct td_pattern_set *set = td_pattern_set_create();
	cr_assert_eq(td_pattern_set_add(set, 7, "{\"a\":[1]}", 9, NULL, 0), 0);
	cr_assert_eq(td_pattern_set_add(set, 7, "{\"b\":[2]}", 9, NULL, 0), 0);
	cr_assert_eq(td_pattern_set_add(set, 3, "{\"a\":[1]}", 9, NULL, 0), 0);
	cr_expect_null(td_matcher_create(set), "a matcher needs a compiled set");
	cr_assert_eq(td_pattern_set_compile(set), 0);
	cr_expect_eq(td_pattern_set_compile(set), -TD_ESTATE);
	char err[128];
	cr_expect_eq(td_pattern_set_add(set, 1, "{\"a\":[1]}", 9, err, sizeof(err)), -TD_ESTATE);
	cr_expect(strstr(err, "compiled"));
	struct td_matcher *m = td_matcher_create(set);
	const unsigned *ids;
	int n = td_matcher_match(m, "{\"a\":1,\"b\":2}", 13, &ids, NULL, 0);
	cr_assert_eq(n, 2);
	cr_expect_eq(ids[0], 3);
	cr_expect_eq(ids[1], 7);
	n = td_matcher_match(m, "{\"b\":2}", 7, &ids, NULL, 0);
	cr_assert_eq(n, 1);
	cr_expect_eq(ids[0], 7);
	cr_expect_eq(td_matcher_match(m, "{\"c\":2}", 7, &ids, NULL, 0), 0);
	/* two matchers on one set are independent */
	struct td_matcher *m2 = td_matcher_create(set);
	const unsigned *ids2;
	cr_expect_eq(td_matcher_match(m2, "{\"b\":2}", 7, &ids2, NULL, 0), 1);
	cr_expect_eq(td_matcher_match(m, "{\"a\":1}", 7, &ids, NULL, 0), 2);
	cr_expect_eq(ids2[0], 7);
	td_matcher_destroy(m2);
	td_matcher_destroy(m);
	td_pattern_set_destroy(set);
	/* an empty set matches nothing but still checks the event */
	set = td_pattern_set_create();
	cr_assert_eq(td_pattern_set_compile(set), 0);
	m = td_matcher_create(set);
	cr_expect_eq(td_matcher_match(m, "{\"a\":1}", 7, &ids, NULL, 0), 0);
	cr_expect_eq(td_matcher_match(m, "{\"a\":1", 6, &ids, NULL, 0), -TD_EINVAL);
	td_matcher_destroy(m);
	td_pattern_set_destroy(set);
	td_pattern_set_destroy(NULL);
	td_matcher_destroy(NULL);
}

Test(pattern, many_rules_scale_and_stay_exact)
{
	/* 5000 rules on a handful of fields: each event matches exactly its own rules */
	struct td_pattern_set *set = td_pattern_set_create();
	char buf[256];
	for (unsigned i = 0; i < 5000; i++) {
		switch (i % 5) {
		case 0:
			snprintf(buf, sizeof(buf), "{\"k\":[\"v%u\"]}", i);
			break;
		case 1:
			snprintf(buf, sizeof(buf), "{\"n\":[{\"numeric\":[\">=\",%u,\"<\",%u]}]}",
				 i, i + 5);
			break;
		case 2:
			snprintf(buf, sizeof(buf), "{\"k\":[{\"prefix\":\"p%u-\"}]}", i);
			break;
		case 3:
			snprintf(buf, sizeof(buf), "{\"k\":[\"v%u\"],\"m\":[{\"exists\":false}]}",
				 i);
			break;
		default:
			snprintf(buf, sizeof(buf), "{\"$or\":[{\"k\":[\"w%u\"]},{\"n\":[%u.5]}]}",
				 i, i);
			break;
		}
		cr_assert_eq(td_pattern_set_add(set, i, buf, strlen(buf), NULL, 0), 0, "%s", buf);
	}
	cr_assert_eq(td_pattern_set_compile(set), 0);
	struct td_matcher *m = td_matcher_create(set);
	const unsigned *ids;
	/* "v10" is rule 10's value; 12 lies in rule 11's [11, 16) and not in rule 6's [6, 11) */
	int n = td_matcher_match(m, "{\"k\":\"v10\",\"n\":12}", 18, &ids, NULL, 0);
	cr_assert_eq(n, 2);
	cr_expect_eq(ids[0], 10);
	cr_expect_eq(ids[1], 11);
	n = td_matcher_match(m, "{\"k\":\"p4002-x\",\"n\":4004.5}", 26, &ids, NULL, 0);
	cr_assert_eq(n, 3, "%d", n);
	cr_expect_eq(ids[0], 4001);
	cr_expect_eq(ids[1], 4002);
	cr_expect_eq(ids[2], 4004);
	n = td_matcher_match(m, "{\"k\":\"v13\"}", 11, &ids, NULL, 0);
	cr_assert_eq(n, 1);
	cr_expect_eq(ids[0], 13);
	n = td_matcher_match(m, "{\"k\":\"v13\",\"m\":0}", 17, &ids, NULL, 0);
	cr_expect_eq(n, 0);
	td_matcher_destroy(m);
	td_pattern_set_destroy(set);
}

/* ---------------------------------------------------------------------------------- */
/* the benchmark data against the reference */

static char *read_lines(const char *path, size_t maxlines, char ***lines, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 1 << 20, len = 0;
	char *buf = malloc(cap);
	size_t got = 0;
	char *line = NULL;
	size_t lcap = 0;
	ssize_t r;
	while (buf && got < maxlines && (r = getline(&line, &lcap, f)) > 0) {
		if (len + (size_t)r + 1 > cap) {
			cap = (len + (size_t)r + 1) * 2;
			buf = realloc(buf, cap);
			if (!buf)
				break;
		}
		memcpy(buf + len, line, (size_t)r);
		len += (size_t)r;
		got++;
	}
	free(line);
	fclose(f);
	if (!buf)
		return NULL;
	buf[len] = 0;
	*lines = malloc((got + 1) * sizeof(char *));
	*n = 0;
	for (char *p = buf; *p && *n < got;) {
		char *nl = strchr(p, '\n');
		(*lines)[(*n)++] = p;
		if (!nl)
			break;
		*nl = 0;
		p = nl + 1;
	}
	return buf;
}

/* Finds or makes the bench data: $TD_PATTERN_BENCH_DATA, the folder run.sh fills, or
 * the generators (first lines of the standard sets are the same for any count). */
static const char *bench_data_dir(void)
{
	static char dir[512];
	const char *env = getenv("TD_PATTERN_BENCH_DATA");
	const char *cands[] = {env, "build-bench/pattern-data", "../build-bench/pattern-data"};
	for (size_t i = 0; i < 3; i++) {
		char p[600];
		if (!cands[i])
			continue;
		snprintf(p, sizeof(p), "%s/rules_full.tsv", cands[i]);
		if (access(p, R_OK) == 0) {
			snprintf(dir, sizeof(dir), "%s", cands[i]);
			return dir;
		}
	}
	const char *gen = getenv("TD_BENCH_GEN_DIR");
	const char *gens[] = {gen, "../shared/bench"};
	for (size_t i = 0; i < 3; i++) {
		char p[600], *cmd;
		if (!gens[i])
			continue;
		snprintf(p, sizeof(p), "%s/gen_rules.py", gens[i]);
		if (access(p, R_OK) != 0)
			continue;
		snprintf(dir, sizeof(dir), "/tmp/td-pattern-test-%u", (unsigned)getuid());
		snprintf(p, sizeof(p), "%s/rules_full.tsv", dir);
		if (access(p, R_OK) == 0)
			return dir;
		if (asprintf(
			&cmd,
			"set -e; mkdir -p %s; t=$(mktemp -d %s/gen.XXXXXX); "
			"python3 %s/gen_citylots.py -n 2000 --seed 1 -o $t/events.jsonl; "
			"python3 %s/gen_rules.py -k 100 --mix portable -o $t/rules_portable.tsv; "
			"python3 %s/gen_rules.py -k 100 --mix full -o $t/rules_full.tsv; "
			"mv $t/events.jsonl $t/rules_portable.tsv %s/; mv $t/rules_full.tsv %s/; "
			"rmdir $t",
			dir, dir, gens[i], gens[i], gens[i], dir, dir) < 0)
			return NULL;
		int rc = system(cmd);
		free(cmd);
		if (rc == 0)
			return dir;
	}
	return NULL;
}

Test(pattern, bench_data_matches_reference, .timeout = 300)
{
	const char *dir = bench_data_dir();
	if (!dir)
		cr_skip_test("no bench data and no generators (set TD_PATTERN_BENCH_DATA or "
			     "TD_BENCH_GEN_DIR)");
	char path[600];
	char **evl;
	size_t nev;
	snprintf(path, sizeof(path), "%s/events.jsonl", dir);
	char *evbuf = read_lines(path, 2000, &evl, &nev);
	cr_assert_not_null(evbuf, "%s", path);
	cr_assert_eq(nev, 2000);
	json_t **evj = calloc(nev, sizeof(json_t *));
	for (size_t i = 0; i < nev; i++) {
		json_error_t e;
		evj[i] = json_loads(evl[i], JSON_DECODE_INT_AS_REAL, &e);
		cr_assert_not_null(evj[i]);
	}
	const char *mixes[] = {"portable", "full"};
	for (int mi = 0; mi < 2; mi++) {
		char **rl;
		size_t nr;
		snprintf(path, sizeof(path), "%s/rules_%s.tsv", dir, mixes[mi]);
		char *rbuf = read_lines(path, 100, &rl, &nr);
		cr_assert_not_null(rbuf, "%s", path);
		cr_assert_eq(nr, 100);
		struct td_pattern_set *set = td_pattern_set_create();
		json_t *pj[100];
		for (size_t r = 0; r < nr; r++) {
			char *tab = strchr(rl[r], '\t');
			cr_assert_not_null(tab);
			json_error_t e;
			pj[r] = json_loads(tab + 1, JSON_DECODE_INT_AS_REAL, &e);
			cr_assert_not_null(pj[r]);
			cr_assert_eq(
			    td_pattern_set_add(set, (unsigned)r, tab + 1, strlen(tab + 1), NULL, 0),
			    0);
		}
		cr_assert_eq(td_pattern_set_compile(set), 0);
		struct td_matcher *m = td_matcher_create(set);
		size_t total = 0, ref_total = 0, matched = 0;
		for (size_t i = 0; i < nev; i++) {
			const unsigned *ids;
			int n = td_matcher_match(m, evl[i], strlen(evl[i]), &ids, NULL, 0);
			cr_assert_geq(n, 0);
			int k = 0;
			for (size_t r = 0; r < nr; r++) {
				int want = tdref_match(pj[r], evj[i], 1000000);
				cr_assert_geq(want, 0);
				int got = k < n && ids[k] == r;
				k += got;
				cr_expect_eq(got, want,
					     "%s: event %zu rule %zu: engine %d reference %d",
					     mixes[mi], i, r, got, want);
				ref_total += (size_t)want;
			}
			total += (size_t)n;
			matched += n > 0;
		}
		cr_expect_eq(total, ref_total);
		cr_expect_gt(total, 0);
		cr_log_info("%s: %zu matches, %zu events matched", mixes[mi], total, matched);
		for (size_t r = 0; r < nr; r++)
			json_decref(pj[r]);
		td_matcher_destroy(m);
		td_pattern_set_destroy(set);
		free(rl);
		free(rbuf);
	}
	for (size_t i = 0; i < nev; i++)
		json_decref(evj[i]);
	free(evj);
	free(evl);
	free(evbuf);
}
