/*
 * Unit tests of the option table engine (router/options.c): the value parsers
 * (durations, sizes, listen addresses, URLs), td_options_apply on every type with good
 * and bad values, defaults, required and unknown options, bounds printed in the user's
 * units, the group-to-JSON conversion, td_options_equal, and the tables of every kind:
 * valid defaults, a documented default for every option, and describe printing them.
 */
#include <criterion/criterion.h>

#include <triggerd/config.h>
#include <triggerd/errors.h>
#include <triggerd/function.h>
#include <triggerd/source.h>

#include <libconfig.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Value parsers ------------------------------------------------------------------- */

Test(options, duration_parse)
{
	static const struct {
		const char *text;
		long long ms, unit;
	} good[] = {
	    {"250ms", 250, 1},
	    {"3s", 3000, 1000},
	    {"5m", 300000, 60000},
	    {"6h", 21600000, 3600000},
	    {"1d", 86400000, 86400000},
	    {"1h30m", 5400000, 60000},
	    {"1d2h3m4s5ms", 93784005, 1},
	    {"1.5s", 1500, 1000},
	    {"0.25", 250, 0},
	    {"30", 30000, 0},
	    {"0s", 0, 1000},
	    {"0", 0, 0},
	};
	static const char *const bad[] = {
	    "",
	    "s",
	    "5",
	    "5x",
	    "-1s",
	    "1m1h",
	    "1s1s",
	    "1.5ms",
	    "3 s",
	    "1e3s",
	    "99999999999999999d",
	    "0.0001s",
	    "1h-",
	    ".s",
	};
	char err[256];
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		long long ms = -1, unit = -1;
		cr_expect_eq(td_duration_parse(good[i].text, &ms, &unit, err, sizeof err), 0,
			     "%s: %s", good[i].text, err);
		cr_expect_eq(ms, good[i].ms, "%s: %lld ms", good[i].text, ms);
		cr_expect_eq(unit, good[i].unit, "%s: unit %lld", good[i].text, unit);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		long long ms;
		if (strcmp(bad[i], "5") == 0)
			continue; /* "5" is five seconds: see good[] "30" */
		err[0] = '\0';
		cr_expect_eq(td_duration_parse(bad[i], &ms, NULL, err, sizeof err), -TD_EINVAL,
			     "\"%s\" accepted", bad[i]);
		cr_expect(strstr(err, bad[i]) != NULL, "message for \"%s\": %s", bad[i], err);
	}
}

Test(options, size_parse)
{
	static const struct {
		const char *text;
		long long bytes, unit;
	} good[] = {
	    {"512B", 512, 1},
	    {"16KB", 16384, 1024},
	    {"16kb", 16384, 1024},
	    {"16KiB", 16384, 1024},
	    {"6MB", 6291456, 1048576},
	    {"1GB", 1073741824, 1073741824},
	    {"1.5KB", 1536, 1024},
	    {"1024", 1024, 0},
	    {"2T", 2199023255552LL, 1099511627776LL},
	};
	static const char *const bad[] = {"",	 "MB",	  "6XB",  "-1",
					  "1.5", "0.1KB", "6 MB", "9999999999999TB"};
	char err[256];
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		long long b = -1, unit = -1;
		cr_expect_eq(td_size_parse(good[i].text, &b, &unit, err, sizeof err), 0, "%s: %s",
			     good[i].text, err);
		cr_expect_eq(b, good[i].bytes, "%s: %lld", good[i].text, b);
		cr_expect_eq(unit, good[i].unit, "%s: unit %lld", good[i].text, unit);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		long long b;
		cr_expect_eq(td_size_parse(bad[i], &b, NULL, err, sizeof err), -TD_EINVAL,
			     "\"%s\" accepted", bad[i]);
	}
}

Test(options, formats)
{
	static const struct {
		long long v;
		const char *duration, *size;
	} rows[] = {
	    {0, "0s", "0B"},
	    {250, "250ms", "250B"},
	    {1000, "1s", "1000B"},
	    {90000, "1m30s", "90000B"},
	    {21600000, "6h", "21600000B"},
	    {86400000 + 1, "1d1ms", "86400001B"},
	    {1024, "1s24ms", "1KB"},
	    {6291456, "1h44m51s456ms", "6MB"},
	};
	char out[64];
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		td_duration_format(rows[i].v, out, sizeof out);
		cr_expect_str_eq(out, rows[i].duration);
		td_size_format(rows[i].v, out, sizeof out);
		cr_expect_str_eq(out, rows[i].size);
	}
}

Test(options, listen_addr)
{
	static const struct {
		const char *text;
		const char *host; /* NULL: invalid */
		unsigned port;
		bool loopback;
	} rows[] = {
	    {"0.0.0.0:7070", "0.0.0.0", 7070, false},
	    {"127.0.0.1:7071", "127.0.0.1", 7071, true},
	    {"127.1.2.3:0", "127.1.2.3", 0, true},
	    {"[::1]:80", "::1", 80, true},
	    {"[::]:65535", "::", 65535, false},
	    {"localhost:8080", "localhost", 8080, true},
	    {"my-host.example.com:1", "my-host.example.com", 1, false},
	    {"10.0.0.1:65536", NULL, 0, false},
	    {"10.0.0.1", NULL, 0, false},
	    {":7070", NULL, 0, false},
	    {"::1:80", NULL, 0, false},
	    {"[::1]80", NULL, 0, false},
	    {"[zz]:80", NULL, 0, false},
	    {"300.1.1.1:80", NULL, 0, false},
	    {"-bad.host:80", NULL, 0, false},
	    {"bad_host:80", NULL, 0, false},
	    {"host:", NULL, 0, false},
	    {"host:12a", NULL, 0, false},
	    {"", NULL, 0, false},
	};
	char host[256], err[256];
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		unsigned port = 99999;
		int rc =
		    td_listen_addr_parse(rows[i].text, host, sizeof host, &port, err, sizeof err);
		if (rows[i].host) {
			cr_expect_eq(rc, 0, "%s: %s", rows[i].text, err);
			cr_expect_str_eq(host, rows[i].host);
			cr_expect_eq(port, rows[i].port, "%s", rows[i].text);
		} else {
			cr_expect_eq(rc, -TD_EINVAL, "%s accepted", rows[i].text);
		}
		cr_expect_eq(td_listen_addr_is_loopback(rows[i].text), rows[i].loopback, "%s",
			     rows[i].text);
	}
}

Test(options, url_check)
{
	static const struct {
		const char *url, *schemes;
		bool ok;
	} rows[] = {
	    {"http://x/", "http://|https://", true},
	    {"HTTPS://x:443/p?q", "http://|https://", true},
	    {"redis://:secret@host:6379/0", "redis://|rediss://", true},
	    {"ftp://x", "http://|https://", false},
	    {"http://", "http://|https://", false},
	    {"http:///path", "http://|https://", false},
	    {"http://a b", "http://|https://", false},
	    {"redis://user:pw@/0", "redis://", false},
	};
	char err[256];
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		int rc = td_url_check(rows[i].url, rows[i].schemes, err, sizeof err);
		cr_expect_eq(rc == 0, rows[i].ok, "%s: %s", rows[i].url, err);
		if (rc < 0 && strchr(rows[i].url, '@'))
			cr_expect(strstr(err, "pw") == NULL && strstr(err, "secret") == NULL,
				  "password in message: %s", err);
	}
}

/* ---- td_options_apply on a table of every type ---------------------------------------- */

struct sample {
	bool flag;
	long long count;
	double ratio;
	char *label;
	int mode;
	long long wait_ms;
	long long limit;
	struct td_strings names;
	struct td_map env;
	char *doc;
	char *secret;
	char *where;
	char *file;
	char *inner;
	long long inner_n;
	int noenum;
};

#define S(f) offsetof(struct sample, f)

static const struct td_option sample_options[] = {
    {.type = TD_OPT_BOOL, .name = "flag", .def = "true", .offset = S(flag)},
    {.type = TD_OPT_INT, .name = "count", .def = "5", .offset = S(count), .min = 1, .max = 10},
    {.type = TD_OPT_DOUBLE, .name = "ratio", .def = "0.5", .offset = S(ratio), .min = 0, .max = 1},
    {.type = TD_OPT_STRING, .name = "label", .flags = TD_OPT_REQUIRED, .offset = S(label)},
    {.type = TD_OPT_ENUM, .name = "mode", .def = "b", .offset = S(mode), .choices = "a|b|c"},
    {.type = TD_OPT_DURATION,
     .name = "wait",
     .def = "3s",
     .offset = S(wait_ms),
     .min = 1000,
     .max = 21600000},
    {.type = TD_OPT_SIZE,
     .name = "limit",
     .def = "6MB",
     .offset = S(limit),
     .min = 1024,
     .max = 16777216},
    {.type = TD_OPT_STRINGS, .name = "names", .def = "[\"x\", \"y\"]", .offset = S(names)},
    {.type = TD_OPT_MAP, .name = "env", .offset = S(env)},
    {.type = TD_OPT_JSON, .name = "doc", .offset = S(doc)},
    {.type = TD_OPT_STRING, .name = "secret", .flags = TD_OPT_SECRET, .offset = S(secret)},
    {.type = TD_OPT_STRING,
     .name = "where",
     .def = "127.0.0.1:1",
     .flags = TD_OPT_ADDR,
     .offset = S(where)},
    {.type = TD_OPT_STRING, .name = "file", .flags = TD_OPT_PATH, .offset = S(file)},
    {.type = TD_OPT_STRING, .name = "group.inner", .def = "in", .offset = S(inner)},
    {.type = TD_OPT_INT, .name = "group.n", .def = "0", .offset = S(inner_n)},
    {.type = TD_OPT_ENUM, .name = "noenum", .offset = S(noenum), .choices = "p|q"},
    {0},
};

struct applied {
	struct sample s;
	struct td_diag diag;
	int rc;
};

/* Parses text with libconfig, applies sample_options to its root. */
static void apply_text(const char *text, const char *dir, struct applied *out)
{
	config_t lc;
	static const char *const others[] = {"ignored", NULL};
	struct td_opt_scope scope = {.file = "s.cfg", .dir = dir, .others = others};

	memset(out, 0, sizeof *out);
	config_init(&lc);
	cr_assert(config_read_string(&lc, text), "libconfig: %s", config_error_text(&lc));
	out->rc =
	    td_options_apply(sample_options, &out->s, config_root_setting(&lc), &scope, &out->diag);
	config_destroy(&lc);
}

static void applied_free(struct applied *a)
{
	td_options_free(sample_options, &a->s);
	td_diag_clear(&a->diag);
}

Test(options, defaults_and_values)
{
	struct applied a;
	apply_text("label = \"L\";", NULL, &a);
	cr_assert_eq(a.rc, 0, "%s", a.diag.n ? a.diag.msgs[0] : "");
	cr_expect_eq(a.s.flag, true);
	cr_expect_eq(a.s.count, 5);
	cr_expect(a.s.ratio == 0.5);
	cr_expect_str_eq(a.s.label, "L");
	cr_expect_eq(a.s.mode, 1);
	cr_expect_eq(a.s.wait_ms, 3000);
	cr_expect_eq(a.s.limit, 6291456);
	cr_assert_eq(a.s.names.n, 2);
	cr_expect_str_eq(a.s.names.v[1], "y");
	cr_expect_eq(a.s.env.n, 0);
	cr_expect_null(a.s.doc);
	cr_expect_null(a.s.secret);
	cr_expect_str_eq(a.s.where, "127.0.0.1:1");
	cr_expect_str_eq(a.s.inner, "in");
	cr_expect_eq(a.s.noenum, -1, "an enum without default is -1 when absent");
	applied_free(&a);

	apply_text("label = \"L\"; flag = false; count = 10; ratio = 1; mode = \"c\";"
		   "wait = 1.5; limit = 2048; names = \"one\"; env = { A = \"x\"; B = 2; C = 1.5;"
		   " D = true; }; doc = \"[1, 2]\"; secret = \"s3\"; where = \"[::1]:9\";"
		   "file = \"p.json\"; group = { inner = \"deep\"; n = 7; }; noenum = \"q\";"
		   "ignored = 12;",
		   "/etc/conf", &a);
	cr_assert_eq(a.rc, 0, "%s", a.diag.n ? a.diag.msgs[0] : "");
	cr_expect_eq(a.s.flag, false);
	cr_expect_eq(a.s.count, 10);
	cr_expect(a.s.ratio == 1.0);
	cr_expect_eq(a.s.mode, 2);
	cr_expect_eq(a.s.wait_ms, 1500);
	cr_expect_eq(a.s.limit, 2048);
	cr_assert_eq(a.s.names.n, 1);
	cr_expect_str_eq(a.s.names.v[0], "one");
	cr_assert_eq(a.s.env.n, 4);
	cr_expect_str_eq(a.s.env.keys[1], "B");
	cr_expect_str_eq(a.s.env.values[0], "x");
	cr_expect_str_eq(a.s.env.values[1], "2");
	cr_expect_str_eq(a.s.env.values[2], "1.5");
	cr_expect_str_eq(a.s.env.values[3], "true");
	cr_expect_str_eq(a.s.doc, "[1, 2]");
	cr_expect_str_eq(a.s.secret, "s3");
	cr_expect_str_eq(a.s.where, "[::1]:9");
	cr_expect_str_eq(a.s.file, "/etc/conf/p.json", "a relative path joins the folder");
	cr_expect_str_eq(a.s.inner, "deep");
	cr_expect_eq(a.s.inner_n, 7);
	cr_expect_eq(a.s.noenum, 1);
	applied_free(&a);

	apply_text("label = \"L\"; file = \"/abs/p.json\";", "/etc/conf", &a);
	cr_expect_str_eq(a.s.file, "/abs/p.json", "an absolute path stays");
	applied_free(&a);
	apply_text("label = \"L\"; file = \"rel.json\";", NULL, &a);
	cr_expect_str_eq(a.s.file, "rel.json", "no folder: the path stays relative");
	applied_free(&a);
}

/* One bad value per row: the single message expected, exactly. */
Test(options, errors)
{
	static const struct {
		const char *text, *msg;
	} rows[] = {
	    {"", "s.cfg: option 'label' is required"},
	    {"label = \"\";", "s.cfg:1: option 'label' is required and must not be empty"},
	    {"label = 5;", "s.cfg:1: option 'label': expected a string, found an integer"},
	    {"label = \"L\";\nflag = 1;",
	     "s.cfg:2: option 'flag': expected true or false, found an integer"},
	    {"label = \"L\";\n\ncount = 11;",
	     "s.cfg:3: option 'count': 11 is out of range (1..10)"},
	    {"label = \"L\"; count = 1.5;",
	     "s.cfg:1: option 'count': expected an integer, found a number with a fraction"},
	    {"label = \"L\"; count = \"7\";",
	     "s.cfg:1: option 'count': expected an integer, found a string (quotes are only for "
	     "${NAME})"},
	    {"label = \"L\"; ratio = 1.5;", "s.cfg:1: option 'ratio': 1.5 is out of range (0..1)"},
	    {"label = \"L\"; mode = \"d\";", "s.cfg:1: option 'mode': \"d\" is not one of a|b|c"},
	    {"label = \"L\"; mode = [\"a\"];",
	     "s.cfg:1: option 'mode': expected one of a|b|c, found an array"},
	    {"label = \"L\"; wait = \"7h\";",
	     "s.cfg:1: option 'wait': \"7h\" is out of range (1s..6h)"},
	    {"label = \"L\"; wait = \"500ms\";",
	     "s.cfg:1: option 'wait': \"500ms\" is out of range (1000ms..21600000ms)"},
	    {"label = \"L\"; wait = \"30m\";", NULL},
	    {"label = \"L\"; wait = \"420m\";",
	     "s.cfg:1: option 'wait': \"420m\" is out of range (1s..360m)"},
	    {"label = \"L\"; wait = 0.5;",
	     "s.cfg:1: option 'wait': 0.5 is out of range (1..21600)"},
	    {"label = \"L\"; wait = 30000;",
	     "s.cfg:1: option 'wait': 30000 is out of range (1..21600)"},
	    {"label = \"L\"; wait = -1;", "s.cfg:1: option 'wait': -1 must not be negative"},
	    {"label = \"L\"; wait = \"3 s\";",
	     "s.cfg:1: option 'wait': \"3 s\" is not a duration (write 250ms, 3s, 5m, 6h, 1d, "
	     "1h30m or a number of seconds)"},
	    {"label = \"L\"; wait = true;",
	     "s.cfg:1: option 'wait': expected a duration, found true or false"},
	    {"label = \"L\"; limit = \"20MB\";",
	     "s.cfg:1: option 'limit': \"20MB\" is out of range (1KB..16MB)"},
	    {"label = \"L\"; limit = \"100B\";",
	     "s.cfg:1: option 'limit': \"100B\" is out of range (1024B..16777216B)"},
	    {"label = \"L\"; limit = 100;",
	     "s.cfg:1: option 'limit': 100 is out of range (1024..16777216)"},
	    {"label = \"L\"; limit = 1.5;",
	     "s.cfg:1: option 'limit': expected a size, found 1.5: bytes are whole"},
	    {"label = \"L\"; names = (\"a\",\n 5);",
	     "s.cfg:2: option 'names'[1]: expected a string, found an integer"},
	    {"label = \"L\"; names = [\"a\", \"\"];", "s.cfg:1: option 'names'[1]: empty value"},
	    {"label = \"L\"; names = { a = 1; };",
	     "s.cfg:1: option 'names': expected a string or a list of strings, found a group"},
	    {"label = \"L\"; env = [\"a\"];",
	     "s.cfg:1: option 'env': expected a group of name = \"value\" pairs, found an array"},
	    {"label = \"L\"; env = {\n a = [1]; };",
	     "s.cfg:2: option 'env.a': expected a string, found an array"},
	    {"label = \"L\"; doc = \"{\\\"a\\\": }\";",
	     "s.cfg:1: option 'doc': not valid JSON: unexpected token near '}' (line 1, column "
	     "7 of the JSON)"},
	    {"label = \"L\"; secret = 5;",
	     "s.cfg:1: option 'secret': expected a string, found an integer"},
	    {"label = \"L\"; where = \"1.2.3.4\";",
	     "s.cfg:1: option 'where': \"1.2.3.4\" is not HOST:PORT (127.0.0.1:7070)"},
	    {"label = \"L\";\nzzzz = 1;", "s.cfg:2: unknown option 'zzzz'"},
	    {"label = \"L\"; coutn = 1;",
	     "s.cfg:1: unknown option 'coutn' (did you mean 'count'?)"},
	    {"label = \"L\"; group = { inner = \"x\";\n nn = 1; };",
	     "s.cfg:2: unknown option 'group.nn' (did you mean 'group.n'?)"},
	    {"label = \"L\"; group = 5;",
	     "s.cfg:1: option 'group' must be a group: group = { ... };"},
	    {"label = \"L\"; ignore = 5;",
	     "s.cfg:1: unknown option 'ignore' (did you mean 'ignored'?)"},
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct applied a;
		apply_text(rows[i].text, NULL, &a);
		if (!rows[i].msg) {
			cr_expect_eq(a.rc, 0, "%s: %s", rows[i].text,
				     a.diag.n ? a.diag.msgs[0] : "");
		} else {
			cr_expect_eq(a.rc, -TD_EINVAL, "%s: accepted", rows[i].text);
			cr_expect_eq(a.diag.n, 1, "%s: %zu messages", rows[i].text, a.diag.n);
			if (a.diag.n)
				cr_expect_str_eq(a.diag.msgs[0], rows[i].msg, "row %zu: got\n%s", i,
						 a.diag.msgs[0]);
		}
		applied_free(&a);
	}
}

Test(options, secrets_never_printed)
{
	static const struct td_option table[] = {
	    {.type = TD_OPT_ENUM,
	     .name = "k",
	     .flags = TD_OPT_SECRET,
	     .offset = 0,
	     .choices = "a|b"},
	    {0},
	};
	config_t lc;
	struct td_diag diag = {0};
	int v = 0;
	config_init(&lc);
	cr_assert(config_read_string(&lc, "k = \"hunter2\";"));
	cr_expect_eq(td_options_apply(table, &v, config_root_setting(&lc), NULL, &diag),
		     -TD_EINVAL);
	cr_assert_eq(diag.n, 1);
	cr_expect(strstr(diag.msgs[0], "hunter2") == NULL, "%s", diag.msgs[0]);
	config_destroy(&lc);
	td_diag_clear(&diag);
}

Test(options, env_in_scalars)
{
	struct applied a;
	setenv("TD_TEST_COUNT", "7", 1);
	setenv("TD_TEST_FLAG", "false", 1);
	setenv("TD_TEST_BAD", "seven", 1);
	apply_text("label = \"${TD_TEST_UNSET_X:-dflt}\"; count = \"${TD_TEST_COUNT}\";"
		   "flag = \"${TD_TEST_FLAG}\"; ratio = \"${TD_TEST_UNSET_X:-0.25}\";"
		   "wait = \"${TD_TEST_UNSET_X:-2m}\"; mode = \"${TD_TEST_UNSET_X:-a}\";",
		   NULL, &a);
	cr_assert_eq(a.rc, 0, "%s", a.diag.n ? a.diag.msgs[0] : "");
	cr_expect_str_eq(a.s.label, "dflt");
	cr_expect_eq(a.s.count, 7);
	cr_expect_eq(a.s.flag, false);
	cr_expect(a.s.ratio == 0.25);
	cr_expect_eq(a.s.wait_ms, 120000);
	cr_expect_eq(a.s.mode, 0);
	applied_free(&a);

	apply_text("label = \"L\"; count = \"${TD_TEST_BAD}\";", NULL, &a);
	cr_assert_eq(a.diag.n, 1);
	cr_expect_str_eq(a.diag.msgs[0], "s.cfg:1: option 'count': \"seven\" is not an integer");
	applied_free(&a);

	/* Empty after expansion: the default applies. */
	apply_text(
	    "label = \"L\"; count = \"${TD_TEST_UNSET_X:-}\"; mode = \"${TD_TEST_UNSET_X:-}\";",
	    NULL, &a);
	cr_assert_eq(a.rc, 0, "%s", a.diag.n ? a.diag.msgs[0] : "");
	cr_expect_eq(a.s.count, 5);
	cr_expect_eq(a.s.mode, 1);
	applied_free(&a);

	apply_text("label = \"${TD_TEST_UNSET_X}\";", NULL, &a);
	cr_assert_eq(a.diag.n, 1);
	cr_expect_str_eq(a.diag.msgs[0],
			 "s.cfg:1: option 'label': environment variable TD_TEST_UNSET_X is not set "
			 "(write ${TD_TEST_UNSET_X:-default} to give a default)");
	applied_free(&a);
}

Test(options, json_from_groups)
{
	static const struct {
		const char *text, *json;
	} rows[] = {
	    {"doc = { a = 1; b = \"x\"; };", "{\"a\": 1, \"b\": \"x\"}"},
	    {"doc = { source = [\"orders\"]; data = { amount = ( { numeric = (\">\", 100) } ); "
	     "}; };",
	     "{\"source\": [\"orders\"], \"data\": {\"amount\": [{\"numeric\": [\">\", 100]}]}}"},
	    {"doc = ( 1, 2.5, true, \"s\", { } , ( ) );", "[1, 2.5, true, \"s\", {}, []]"},
	    {"doc = [ 1, 2 ];", "[1, 2]"},
	    {"doc = 5;", "5"},
	    {"doc = { anything-but = [\"a\"]; };", "{\"anything-but\": [\"a\"]}"},
	    {"doc = { v = 5000000000; };", "{\"v\": 5000000000}"},
	    {"doc = { s = \"${TD_TEST_JSON_V:-dflt}\"; };", "{\"s\": \"dflt\"}"},
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		char text[512];
		struct applied a;
		snprintf(text, sizeof text, "label = \"L\"; %s", rows[i].text);
		/* 5000000000 needs libconfig's L: the loader adds it, here the test does. */
		if (strstr(text, "5000000000"))
			snprintf(text, sizeof text, "label = \"L\"; doc = { v = 5000000000L; };");
		apply_text(text, NULL, &a);
		cr_assert_eq(a.rc, 0, "%s: %s", rows[i].text, a.diag.n ? a.diag.msgs[0] : "");
		/* Compare through jansson's compact form with spaces (JSON_COMPACT keeps ", "
		 * out): rebuild the expected text without spaces after ':' and ','. */
		char want[512];
		size_t w = 0;
		bool in_string = false;
		for (const char *p = rows[i].json; *p; p++) {
			if (*p == '"' && (p == rows[i].json || p[-1] != '\\'))
				in_string = !in_string;
			if (!in_string && *p == ' ')
				continue;
			want[w++] = *p;
		}
		want[w] = '\0';
		cr_expect_str_eq(a.s.doc, want, "%s", rows[i].text);
		applied_free(&a);
	}
}

Test(options, json_depth_limit)
{
	char text[4096] = "label = \"L\"; doc = ";
	for (int i = 0; i < 80; i++)
		strcat(text, "(");
	for (int i = 0; i < 80; i++)
		strcat(text, ")");
	strcat(text, ";");
	struct applied a;
	apply_text(text, NULL, &a);
	cr_expect_eq(a.rc, -TD_EINVAL);
	cr_assert_eq(a.diag.n, 1);
	cr_expect(strstr(a.diag.msgs[0], "nested deeper than 64 levels") != NULL, "%s",
		  a.diag.msgs[0]);
	applied_free(&a);
}

Test(options, all_errors_of_a_group)
{
	struct applied a;
	apply_text("count = 0;\nmode = \"z\";\nbogus = 1;", NULL, &a);
	cr_expect_eq(a.rc, -TD_EINVAL);
	cr_assert_eq(a.diag.n, 4);
	cr_expect_str_eq(a.diag.msgs[0], "s.cfg:1: option 'count': 0 is out of range (1..10)");
	cr_expect_str_eq(a.diag.msgs[1], "s.cfg: option 'label' is required");
	cr_expect_str_eq(a.diag.msgs[2], "s.cfg:2: option 'mode': \"z\" is not one of a|b|c");
	cr_expect_str_eq(a.diag.msgs[3], "s.cfg:3: unknown option 'bogus'");
	applied_free(&a);
}

Test(options, partial_and_context)
{
	config_t lc;
	struct sample s = {0};
	struct td_diag diag = {.context = "items[2] \"x\""};
	struct td_opt_scope scope = {.file = "p.cfg", .partial = true};
	config_init(&lc);
	cr_assert(config_read_string(&lc, "label = \"L\"; other = 1; count = 99;"));
	cr_expect_eq(td_options_apply(sample_options, &s, config_root_setting(&lc), &scope, &diag),
		     -TD_EINVAL);
	cr_assert_eq(diag.n, 1, "partial: 'other' is not reported");
	cr_expect_str_eq(diag.msgs[0],
			 "p.cfg:1: items[2] \"x\": option 'count': 99 is out of range (1..10)");
	td_options_free(sample_options, &s);
	cr_expect_null(s.label, "free zeroes the fields");
	config_destroy(&lc);
	td_diag_clear(&diag);
}

Test(options, equal)
{
	struct applied a, b;
	apply_text("label = \"L\"; names = [\"a\", \"b\"]; env = { X = \"1\"; };", NULL, &a);
	apply_text("label = \"L\"; names = [\"a\", \"b\"]; env = { X = \"1\"; };", NULL, &b);
	cr_expect(td_options_equal(sample_options, &a.s, &b.s));
	applied_free(&b);
	apply_text("label = \"L\"; names = [\"a\", \"c\"]; env = { X = \"1\"; };", NULL, &b);
	cr_expect_not(td_options_equal(sample_options, &a.s, &b.s));
	applied_free(&b);
	apply_text("label = \"L\"; names = [\"a\", \"b\"]; env = { X = \"2\"; };", NULL, &b);
	cr_expect_not(td_options_equal(sample_options, &a.s, &b.s));
	applied_free(&b);
	apply_text("label = \"L\"; names = [\"a\", \"b\"]; env = { X = \"1\"; }; wait = 4;", NULL,
		   &b);
	cr_expect_not(td_options_equal(sample_options, &a.s, &b.s));
	applied_free(&b);
	applied_free(&a);
}

Test(options, diag_limit)
{
	struct td_diag diag = {0};
	for (int i = 0; i < TD_DIAG_MAX + 50; i++)
		td_diag_add(&diag, "f", i + 1, "error %d", i);
	cr_expect_eq(diag.n, TD_DIAG_MAX + 1);
	cr_expect_str_eq(diag.msgs[0], "f:1: error 0");
	cr_expect_str_eq(diag.msgs[TD_DIAG_MAX], "too many errors: stopped after 200");
	td_diag_clear(&diag);
	cr_expect_eq(diag.n, 0);
	td_diag_add(&diag, NULL, 0, "plain");
	cr_expect_str_eq(diag.msgs[0], "plain");
	td_diag_clear(&diag);
}

/* ---- The tables of every kind ----------------------------------------------------------- */

struct table {
	const char *name;
	const struct td_option *options;
	size_t size;
};

static size_t all_tables(struct table *out, size_t cap)
{
	size_t n = 0;
	out[n++] = (struct table){"global", td_global_options, sizeof(struct td_global)};
	out[n++] = (struct table){"trigger", td_trigger_options, sizeof(struct td_trigger)};
	for (size_t i = 0; td_source_kinds[i] && n < cap; i++)
		out[n++] = (struct table){td_source_kinds[i]->name, td_source_kinds[i]->options,
					  td_source_kinds[i]->opts_size};
	for (size_t i = 0; td_function_kinds[i] && n < cap; i++)
		out[n++] = (struct table){td_function_kinds[i]->name, td_function_kinds[i]->options,
					  td_function_kinds[i]->opts_size};
	return n;
}

Test(options, registry)
{
	static const char *const sources[] = {"webhook", "cron", "mqtt", "redis", "kafka"};
	static const char *const functions[] = {"http", "log", "lambda", "process"};
	for (size_t i = 0; i < 5; i++) {
		cr_assert_not_null(td_source_kind(sources[i]), "%s", sources[i]);
		cr_expect_str_eq(td_source_kind(sources[i])->name, sources[i]);
		cr_expect_not_null(td_source_kind(sources[i])->summary);
	}
	for (size_t i = 0; i < 4; i++) {
		cr_assert_not_null(td_function_kind(functions[i]), "%s", functions[i]);
		cr_expect_str_eq(td_function_kind(functions[i])->name, functions[i]);
		const struct td_option *t = td_function_kind(functions[i])->options;
		cr_expect_str_eq(t[0].name, "timeout", "%s starts with the common rows",
				 functions[i]);
		cr_expect_eq(t[0].offset, offsetof(struct td_function_common, timeout_ms));
	}
	cr_expect_null(td_source_kind("nope"));
	cr_expect_null(td_function_kind("webhook"));
}

/* Every default parses, every row has a documented default, fields fit the struct. */
Test(options, tables_are_sound)
{
	struct table t[16];
	size_t n = all_tables(t, 16);
	for (size_t k = 0; k < n; k++) {
		size_t required = 0;
		for (const struct td_option *row = t[k].options; row->name; row++) {
			bool documented = row->def || (row->flags & TD_OPT_REQUIRED) ||
					  (row->desc && strstr(row->desc, "Default"));
			cr_expect(documented, "%s: option '%s' has no documented default",
				  t[k].name, row->name);
			cr_expect(row->desc && *row->desc, "%s: option '%s' has no description",
				  t[k].name, row->name);
			cr_expect(row->offset < t[k].size, "%s: %s offset", t[k].name, row->name);
			cr_expect(row->type != TD_OPT_ENUM || row->choices, "%s: %s choices",
				  t[k].name, row->name);
			cr_expect(!(row->def && (row->flags & TD_OPT_REQUIRED)),
				  "%s: %s is required and has a default", t[k].name, row->name);
			for (const struct td_option *o = t[k].options; o != row; o++)
				cr_expect(strcmp(o->name, row->name) != 0, "%s: %s twice",
					  t[k].name, row->name);
			required += (row->flags & TD_OPT_REQUIRED) != 0;
		}
		/* Defaults only: the only errors are the required options. */
		void *opts = calloc(1, t[k].size);
		struct td_diag diag = {0};
		td_options_apply(t[k].options, opts, NULL, &(struct td_opt_scope){.file = "d"},
				 &diag);
		cr_expect_eq(diag.n, required, "%s: %zu messages for %zu required options",
			     t[k].name, diag.n, required);
		for (size_t i = 0; i < diag.n; i++)
			cr_expect(strstr(diag.msgs[i], "is required") != NULL, "%s: %s", t[k].name,
				  diag.msgs[i]);
		td_options_free(t[k].options, opts);
		free(opts);
		td_diag_clear(&diag);
	}
}

Test(options, describe_prints_every_option)
{
	struct table t[16];
	size_t n = all_tables(t, 16);
	cr_expect_eq(n, 11, "global, trigger, 5 sources, 4 functions");
	for (size_t k = 0; k < n; k++) {
		char *text = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&text, &len);
		cr_assert_not_null(f);
		td_options_describe(t[k].options, f);
		fclose(f);
		cr_expect(strncmp(text, "OPTION", 6) == 0, "%s: header", t[k].name);
		for (const struct td_option *row = t[k].options; row->name; row++) {
			/* Each row starts a line with its name. */
			char needle[128];
			snprintf(needle, sizeof needle, "\n%s ", row->name);
			const char *line = strstr(text, needle);
			cr_expect_not_null(line, "%s: %s missing", t[k].name, row->name);
			if (!line)
				continue;
			const char *eol = strchr(line + 1, '\n');
			size_t ll = eol ? (size_t)(eol - line) : strlen(line);
			char buf[1024];
			snprintf(buf, sizeof buf, "%.*s",
				 (int)(ll < sizeof buf ? ll : sizeof buf - 1), line);
			if (row->flags & TD_OPT_SECRET)
				cr_expect(strstr(buf, "secret") != NULL, "%s: %s not marked secret",
					  t[k].name, row->name);
			if (row->flags & TD_OPT_REQUIRED)
				cr_expect(strstr(buf, "(required)") != NULL, "%s: %s", t[k].name,
					  row->name);
			if (row->type == TD_OPT_ENUM)
				cr_expect(strstr(buf, row->choices) != NULL, "%s: %s choices",
					  t[k].name, row->name);
			if (row->desc)
				cr_expect(strstr(buf, row->desc) != NULL, "%s: %s description",
					  t[k].name, row->name);
		}
		free(text);
	}
}

Test(options, describe_format)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	td_options_describe(td_trigger_options, f);
	fclose(f);
	cr_expect(strstr(text, "max_event_age ") != NULL);
	cr_expect(strstr(text, "\"6h\"") != NULL, "default of max_event_age");
	cr_expect(strstr(text, "1m..6h") != NULL, "bounds of max_event_age:\n%s", text);
	cr_expect(strstr(text, "0..10") != NULL, "bounds of retries");
	cr_expect(strstr(text, "sync|async") != NULL);
	free(text);
}
