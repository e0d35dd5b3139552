/*
 * Unit tests of the Invoke API's pure helpers (router/invoke_api.h): FunctionName
 * parsing (names, qualifiers, partial and full ARNs), Invoke paths with the Qualifier
 * parameter, and the base64 log tail. Table-driven; the HTTP side is covered by
 * tests/integration/test_invoke_api.py.
 */
#include <criterion/criterion.h>

#include <string.h>

#include <triggerd/errors.h>

#include "../../router/invoke_api.h"

struct name_case {
	const char *text;
	const char *function; /* NULL: an error whose message contains `err` */
	const char *qualifier;
	const char *err;
};

static const struct name_case name_cases[] = {
    {"hello", "hello", "", NULL},
    {"my-fn_2.x", "my-fn_2.x", "", NULL},
    {"hello:$LATEST", "hello", "$LATEST", NULL},
    {"hello:v1", "hello", "v1", NULL},
    {"123456789012:function:hello", "hello", "", NULL},
    {"123456789012:function:hello:$LATEST", "hello", "$LATEST", NULL},
    {"arn:aws:lambda:us-east-1:123456789012:function:hello", "hello", "", NULL},
    {"arn:aws-cn:lambda:cn-north-1:123456789012:function:hello:prod", "hello", "prod", NULL},
    {"arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:f", "f", "", NULL},
    {"", NULL, NULL, "empty"},
    {":", NULL, NULL, "function name"},
    {"hello:", NULL, NULL, "qualifier"},
    {"hello:v 1", NULL, NULL, "qualifier \"v 1\" at byte 7"},
    {"hello world", NULL, NULL, "function name \"hello world\" at byte 1"},
    {"a:b:c:d:e", NULL, NULL, "neither"},
    {"1234:function:hello", NULL, NULL, "account id \"1234\" at byte 1"},
    {"123456789012:func:hello", NULL, NULL, "expected \"function\" at byte 14"},
    {"arx:aws:lambda:us-east-1:123456789012:function:hello", NULL, NULL, "start with \"arn:\""},
    {"arn:aws:s3:us-east-1:123456789012:function:hello", NULL, NULL, "must be \"lambda\""},
    {"arn:AWS:lambda:us-east-1:123456789012:function:hello", NULL, NULL, "partition"},
    {"arn:aws:lambda::123456789012:function:hello", NULL, NULL, "region"},
    {"arn:aws:lambda:us-east-1:12345678901a:function:hello", NULL, NULL, "account id"},
    {"arn:aws:lambda:us-east-1:123456789012:layer:hello", NULL, NULL, "of the ARN"},
    {"arn:aws:lambda:us-east-1:123456789012:function:", NULL, NULL, "function name"},
    {"a:b:c:d:e:f:g:h:i", NULL, NULL, "too many"},
    {"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", NULL, NULL, "1 to 64"},
};

Test(invoke_api, parse_function_table)
{
	for (size_t i = 0; i < sizeof name_cases / sizeof name_cases[0]; i++) {
		const struct name_case *c = &name_cases[i];
		struct td_invoke_target t;
		char err[256] = "";
		int rc = td_invoke_parse_function(c->text, strlen(c->text), &t, err, sizeof err);
		if (c->function) {
			cr_expect_eq(rc, 0, "%s: %s", c->text, err);
			cr_expect_str_eq(t.function, c->function, "%s", c->text);
			cr_expect_str_eq(t.qualifier, c->qualifier, "%s", c->text);
		} else {
			cr_expect_eq(rc, -TD_EINVAL, "%s should fail", c->text);
			cr_expect(strstr(err, c->err) != NULL, "%s: \"%s\" lacks \"%s\"", c->text,
				  err, c->err);
		}
	}
}

Test(invoke_api, parse_function_longest_name_and_nul)
{
	char name[TD_INVOKE_NAME_MAX + 1];
	struct td_invoke_target t;
	char err[256];
	memset(name, 'a', TD_INVOKE_NAME_MAX);
	name[TD_INVOKE_NAME_MAX] = '\0';
	cr_assert_eq(td_invoke_parse_function(name, strlen(name), &t, err, sizeof err), 0);
	cr_expect_str_eq(t.function, name);
	cr_expect_eq(td_invoke_parse_function("ab\0c", 4, &t, err, sizeof err), -TD_EINVAL);
	cr_expect(strstr(err, "NUL") != NULL, "%s", err);
}

struct path_case {
	const char *path;
	const char *query;
	int rc;
	const char *function;
	const char *qualifier;
};

static const struct path_case path_cases[] = {
    {"/2015-03-31/functions/hello/invocations", NULL, 0, "hello", ""},
    {"/2015-03-31/functions/hello/invocations", "Qualifier=%24LATEST", 0, "hello", "$LATEST"},
    {"/2015-03-31/functions/hello/invocations", "x=1&Qualifier=v2&y", 0, "hello", "v2"},
    {"/2015-03-31/functions/hello:v2/invocations", "Qualifier=v2", 0, "hello", "v2"},
    {"/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:hi/invocations", NULL, 0,
     "hi", ""},
    {"/2015-03-31/functions/hello:v1/invocations", "Qualifier=v2", -TD_EINVAL, NULL, NULL},
    {"/2015-03-31/functions/hello/invocations", "Qualifier=", -TD_EINVAL, NULL, NULL},
    {"/2015-03-31/functions/hello/invocations", "Qualifier=%2", -TD_EINVAL, NULL, NULL},
    {"/2015-03-31/functions/hello/invocations", "Qualifier=a&Qualifier=a", -TD_EINVAL, NULL, NULL},
    {"/2015-03-31/functions/bad name/invocations", NULL, -TD_EINVAL, NULL, NULL},
    {"/2015-03-31/functions/hello", NULL, -TD_ENOTFOUND, NULL, NULL},
    {"/2015-03-31/functions//invocations", NULL, -TD_ENOTFOUND, NULL, NULL},
    {"/2015-03-31/functions/a/b/invocations", NULL, -TD_ENOTFOUND, NULL, NULL},
    {"/2015-03-31/functions/hello/invocations/", NULL, -TD_ENOTFOUND, NULL, NULL},
    {"/2015-03-31/functions/invocations", NULL, -TD_ENOTFOUND, NULL, NULL},
    {"/other", NULL, -TD_ENOTFOUND, NULL, NULL},
};

Test(invoke_api, parse_path_table)
{
	for (size_t i = 0; i < sizeof path_cases / sizeof path_cases[0]; i++) {
		const struct path_case *c = &path_cases[i];
		struct td_invoke_target t;
		char err[256] = "";
		int rc = td_invoke_parse_path(c->path, c->query, &t, err, sizeof err);
		cr_expect_eq(rc, c->rc, "%s ? %s: %d (%s)", c->path, c->query ? c->query : "", rc,
			     err);
		if (c->rc == 0 && rc == 0) {
			cr_expect_str_eq(t.function, c->function, "%s", c->path);
			cr_expect_str_eq(t.qualifier, c->qualifier, "%s", c->path);
		} else {
			cr_expect(err[0] != '\0', "%s: no message", c->path);
		}
	}
}

Test(invoke_api, log_tail_short_and_long)
{
	struct td_buf b, dec;
	char big[TD_INVOKE_TAIL_MAX + 100];

	td_buf_init(&b);
	td_buf_init(&dec);
	cr_assert_eq(td_invoke_log_tail("START\n", 6, &b), 0);
	cr_expect_str_eq(b.data, "U1RBUlQK");

	/* Longer than 4 KB: the last 4 KB, never starting inside a UTF-8 sequence. */
	memset(big, 'x', sizeof big);
	memcpy(big + 99, "\xc3\xa9", 2); /* 'é' across the cut at byte 100 */
	td_buf_reset(&b);
	cr_assert_eq(td_invoke_log_tail(big, sizeof big, &b), 0);
	cr_assert_eq(td_base64_decode(b.data, b.len, &dec, NULL, 0), 0);
	cr_expect_eq(dec.len, TD_INVOKE_TAIL_MAX - 1);
	cr_expect(memcmp(dec.data, big + 101, dec.len) == 0);

	td_buf_reset(&b);
	td_buf_reset(&dec);
	cr_assert_eq(td_invoke_log_tail(big + 100, TD_INVOKE_TAIL_MAX, &b), 0);
	cr_assert_eq(td_base64_decode(b.data, b.len, &dec, NULL, 0), 0);
	cr_expect_eq(dec.len, TD_INVOKE_TAIL_MAX);
	td_buf_free(&b);
	td_buf_free(&dec);
}
