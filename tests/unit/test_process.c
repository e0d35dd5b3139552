/*
 * The pure parts of the process kind: the Runtime API request line, error types and
 * error bodies (runtime_api.h), the runtime's environment, /proc status fields, exit
 * texts, header values and the runtime folder (process_util.h), and line splitting of
 * a process's output (process_output.h).
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <triggerd/config.h>
#include <triggerd/errors.h>

#include "../../functions/process_output.h"
#include "../../functions/process_util.h"
#include "../../functions/runtime_api.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- td_rapi_parse ---- */

Test(process_rapi, request_lines)
{
	static const struct {
		const char *method, *path;
		int rc, status;
		enum td_rapi_kind kind;
		const char *id;
	} cases[] = {
	    {"GET", "/2018-06-01/runtime/invocation/next", 0, 0, TD_RAPI_NEXT, ""},
	    {"POST", "/2018-06-01/runtime/invocation/next", -1, 405, TD_RAPI_NEXT, ""},
	    {"HEAD", "/2018-06-01/runtime/invocation/next", -1, 405, TD_RAPI_NEXT, ""},
	    {"POST", "/2018-06-01/runtime/invocation/abc-123/response", 0, 0, TD_RAPI_RESPONSE,
	     "abc-123"},
	    {"POST", "/2018-06-01/runtime/invocation/A_b/error", 0, 0, TD_RAPI_ERROR, "A_b"},
	    {"GET", "/2018-06-01/runtime/invocation/abc/response", -1, 405, TD_RAPI_RESPONSE, ""},
	    {"POST", "/2018-06-01/runtime/init/error", 0, 0, TD_RAPI_INIT_ERROR, ""},
	    {"GET", "/2018-06-01/runtime/init/error", -1, 405, TD_RAPI_INIT_ERROR, ""},
	    {"POST", "/2018-06-01/runtime/invocation//response", -1, 400, TD_RAPI_RESPONSE, ""},
	    {"POST", "/2018-06-01/runtime/invocation/a b/response", -1, 400, TD_RAPI_RESPONSE, ""},
	    {"POST", "/2018-06-01/runtime/invocation/a.b/error", -1, 400, TD_RAPI_ERROR, ""},
	    {"POST", "/2018-06-01/runtime/invocation/abc/result", -1, 404, 0, ""},
	    {"POST", "/2018-06-01/runtime/invocation/abc/response/x", -1, 404, 0, ""},
	    {"POST", "/2018-06-01/runtime/invocation/abc", -1, 404, 0, ""},
	    {"GET", "/2018-06-01/runtime/invocation/nextx", -1, 404, 0, ""},
	    {"GET", "/2018-06-01/runtime/", -1, 404, 0, ""},
	    {"GET", "/2015-03-31/functions/x/invocations", -1, 404, 0, ""},
	    {"GET", "", -1, 404, 0, ""},
	};
	for (size_t i = 0; i < N(cases); i++) {
		enum td_rapi_kind kind = 99;
		char id[TD_RAPI_ID_MAX + 1], err[160] = "";
		int status = 0;
		int rc = td_rapi_parse(cases[i].method, cases[i].path, &kind, id, &status, err,
				       sizeof err);
		cr_expect_eq(rc < 0 ? -1 : 0, cases[i].rc, "%s %s: rc %d (%s)", cases[i].method,
			     cases[i].path, rc, err);
		if (rc == 0) {
			cr_expect_eq(kind, cases[i].kind, "%s", cases[i].path);
			cr_expect_str_eq(id, cases[i].id, "%s", cases[i].path);
		} else {
			cr_expect_eq(status, cases[i].status, "%s %s: status %d", cases[i].method,
				     cases[i].path, status);
			cr_expect(err[0] != '\0', "%s: a reason", cases[i].path);
		}
	}
}

Test(process_rapi, request_id_length_limit)
{
	char path[256], id[TD_RAPI_ID_MAX + 1], err[160];
	enum td_rapi_kind kind;
	int status;
	char ok[TD_RAPI_ID_MAX + 1], tolong[TD_RAPI_ID_MAX + 2];
	memset(ok, 'a', TD_RAPI_ID_MAX);
	ok[TD_RAPI_ID_MAX] = '\0';
	memset(tolong, 'a', TD_RAPI_ID_MAX + 1);
	tolong[TD_RAPI_ID_MAX + 1] = '\0';
	snprintf(path, sizeof path, "/2018-06-01/runtime/invocation/%s/response", ok);
	cr_expect_eq(td_rapi_parse("POST", path, &kind, id, &status, err, sizeof err), 0);
	cr_expect_str_eq(id, ok);
	snprintf(path, sizeof path, "/2018-06-01/runtime/invocation/%s/response", tolong);
	cr_expect_lt(td_rapi_parse("POST", path, &kind, id, &status, err, sizeof err), 0);
	cr_expect_eq(status, 400);
	cr_expect(strstr(err, "65 bytes") != NULL, "%s", err);
}

/* ---- error types and bodies ---- */

Test(process_rapi, error_types)
{
	static const struct {
		const char *in;
		int ok;
	} cases[] = {{"Unhandled", 1},	{"Runtime.ExitError", 1}, {"a", 1},
		     {"", 0},		{"has space", 0},	  {"tab\t", 0},
		     {"quo\"te", 0},	{"back\\slash", 0},	  {"\x7f", 0},
		     {"caf\xc3\xa9", 0}};
	for (size_t i = 0; i < N(cases); i++) {
		char out[TD_RAPI_TYPE_MAX + 1];
		int rc = td_rapi_error_type(cases[i].in, strlen(cases[i].in), out);
		cr_expect_eq(rc == 0, cases[i].ok, "\"%s\"", cases[i].in);
		cr_expect_str_eq(out, cases[i].ok ? cases[i].in : "", "\"%s\"", cases[i].in);
	}
	char longer[TD_RAPI_TYPE_MAX + 2], out[TD_RAPI_TYPE_MAX + 1];
	memset(longer, 'x', sizeof longer);
	cr_expect_eq(td_rapi_error_type(longer, TD_RAPI_TYPE_MAX, out), 0);
	cr_expect_lt(td_rapi_error_type(longer, TD_RAPI_TYPE_MAX + 1, out), 0);
}

Test(process_rapi, error_bodies)
{
	static const struct {
		const char *body, *header, *type, *msg;
		int json;
	} cases[] = {
	    {"{\"errorMessage\":\"boom\",\"errorType\":\"ValueError\",\"stackTrace\":[]}", NULL,
	     "ValueError", "boom", 1},
	    {"{\"errorMessage\":\"boom\",\"errorType\":\"ValueError\"}", "Unhandled", "ValueError",
	     "boom", 1},
	    {"{\"errorMessage\":\"boom\"}", "Runtime.Custom", "Runtime.Custom", "boom", 1},
	    {"{\"errorMessage\":\"a\\nb \\u00e9\"}", NULL, "Unhandled", "a\nb \xc3\xa9", 1},
	    {"{\"errorType\":\"bad type\"}", NULL, "Unhandled", "", 1},
	    {"{\"errorType\":42,\"errorMessage\":[1]}", NULL, "Unhandled", "", 1},
	    {"[1,2]", NULL, "Unhandled", "", 1},
	    {"not json", NULL, "Unhandled", "", 0},
	    {"{\"errorMessage\":", "X.Y", "X.Y", "", 0},
	    {"", "bad header", "Unhandled", "", 0},
	};
	for (size_t i = 0; i < N(cases); i++) {
		char type[TD_RAPI_TYPE_MAX + 1], msg[64];
		int json = td_rapi_parse_error(cases[i].body, strlen(cases[i].body),
					       cases[i].header, "Unhandled", type, msg, sizeof msg);
		cr_expect_eq(json, cases[i].json, "%s", cases[i].body);
		cr_expect_str_eq(type, cases[i].type, "%s", cases[i].body);
		cr_expect_str_eq(msg, cases[i].msg, "%s", cases[i].body);
	}
	/* A long message is cut to the buffer. */
	char type[TD_RAPI_TYPE_MAX + 1], msg[8];
	static const char body[] = "{\"errorMessage\":\"0123456789\"}";
	td_rapi_parse_error(body, sizeof body - 1, NULL, "U", type, msg, sizeof msg);
	cr_expect_str_eq(msg, "0123456");
}

Test(process_rapi, error_json)
{
	struct td_buf b;
	td_buf_init(&b);
	td_rapi_error_json(&b, "Runtime.ExitError", "say \"hi\"");
	cr_expect_str_eq(b.data, "{\"errorMessage\":\"say \\\"hi\\\"\",\"errorType\":"
				 "\"Runtime.ExitError\"}");
	td_buf_free(&b);
}

/* ---- process_util ---- */

static const char *env_get(char **envp, const char *name)
{
	size_t n = strlen(name);
	for (char **e = envp; *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

Test(process_util, environment)
{
	char *keys[] = {"GREETING", "EMPTY"}, *values[] = {"hi there", ""};
	struct td_map user = {.keys = keys, .values = values, .n = 2};
	struct td_proc_env env = {.port = 41234,
				  .handler = "lambda_function.lambda_handler",
				  .task_root = "/srv/fn",
				  .runtime_dir = "/usr/share/triggerd/runtimes",
				  .function = "hello",
				  .memory_mb = 256,
				  .region = "eu-west-1",
				  .log_stream = "2026/11/27/[$LATEST]abc",
				  .path = NULL,
				  .environment = &user};
	char **envp = td_proc_env_build(&env);
	cr_assert_not_null(envp);
	static const char *const expect[][2] = {
	    {"AWS_LAMBDA_RUNTIME_API", "127.0.0.1:41234"},
	    {"_HANDLER", "lambda_function.lambda_handler"},
	    {"LAMBDA_TASK_ROOT", "/srv/fn"},
	    {"LAMBDA_RUNTIME_DIR", "/usr/share/triggerd/runtimes"},
	    {"AWS_LAMBDA_FUNCTION_NAME", "hello"},
	    {"AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"},
	    {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"},
	    {"AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/hello"},
	    {"AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/27/[$LATEST]abc"},
	    {"AWS_REGION", "eu-west-1"},
	    {"AWS_DEFAULT_REGION", "eu-west-1"},
	    {"TZ", ":UTC"},
	    {"LANG", "C.UTF-8"},
	    {"PATH", "/usr/local/bin:/usr/bin:/bin"},
	    {"GREETING", "hi there"},
	    {"EMPTY", ""},
	};
	size_t count = 0;
	for (char **e = envp; *e; e++)
		count++;
	cr_expect_eq(count, N(expect), "exactly the documented list (%zu)", count);
	for (size_t i = 0; i < N(expect); i++) {
		const char *v = env_get(envp, expect[i][0]);
		cr_expect_not_null(v, "%s", expect[i][0]);
		if (v)
			cr_expect_str_eq(v, expect[i][1], "%s", expect[i][0]);
	}
	free(envp);
	/* The function may replace PATH and LANG. */
	char *k2[] = {"PATH", "LANG"}, *v2[] = {"/fn/bin", "de_DE.UTF-8"};
	struct td_map over = {.keys = k2, .values = v2, .n = 2};
	env.environment = &over;
	envp = td_proc_env_build(&env);
	cr_assert_not_null(envp);
	count = 0;
	for (char **e = envp; *e; e++) {
		count++;
		cr_expect(strncmp(*e, "PATH=", 5) != 0 || strcmp(*e, "PATH=/fn/bin") == 0, "%s",
			  *e);
		cr_expect(strncmp(*e, "LANG=", 5) != 0 || strcmp(*e, "LANG=de_DE.UTF-8") == 0, "%s",
			  *e);
	}
	cr_expect_eq(count, N(expect) - 2, "%zu", count);
	cr_expect_str_eq(env_get(envp, "PATH"), "/fn/bin");
	free(envp);
	env.path = "/opt/bin";
	env.environment = NULL;
	envp = td_proc_env_build(&env);
	cr_assert_not_null(envp);
	cr_expect_str_eq(env_get(envp, "PATH"), "/opt/bin");
	cr_expect_null(env_get(envp, "GREETING"));
	free(envp);
}

Test(process_util, status_fields)
{
	static const char status[] =
	    "Name:\tpython3\nVmPeak:\t   25592 kB\nVmHWM:\t   20840 kB\n"
	    "VmRSS:\t    1234 kB\nBad:\t12 MB\nNoNum:\t kB\nVmHWMX:\t1 kB\n"
	    "Huge:\t99999999999999999999999 kB\nLast:\t7 kB";
	static const struct {
		const char *field;
		long long kb;
	} cases[] = {{"VmHWM", 20840}, {"VmRSS", 1234}, {"VmPeak", 25592},
		     {"Bad", -1},      {"NoNum", -1},	{"Missing", -1},
		     {"Huge", -1},     {"Last", 7},	{"Vm", -1}};
	for (size_t i = 0; i < N(cases); i++)
		cr_expect_eq(td_proc_status_kb(status, sizeof status - 1, cases[i].field),
			     cases[i].kb, "%s", cases[i].field);
	/* Bounds: a text cut inside a line does not read past len. */
	cr_expect_eq(td_proc_status_kb("VmRSS:\t12 kB", 9, "VmRSS"), -1);
	cr_expect_eq(td_proc_status_kb("VmRSS:\t12 kB", 12, "VmRSS"), 12);
	cr_expect_eq(td_proc_status_kb("", 0, "VmRSS"), -1);
}

Test(process_util, exit_texts)
{
	static const struct {
		int status;
		const char *text;
	} cases[] = {
	    {0 << 8, "exit status 0"},
	    {1 << 8, "exit status 1"},
	    {127 << 8, "exit status 127"},
	    {SIGKILL, "signal: killed"},
	    {SIGSEGV, "signal: segmentation fault"},
	    {SIGABRT, "signal: aborted"},
	    {SIGTERM, "signal: terminated"},
	    {SIGUSR1, "signal: 10"},
	};
	for (size_t i = 0; i < N(cases); i++) {
		char out[64];
		td_proc_exit_text(cases[i].status, out, sizeof out);
		cr_expect_str_eq(out, cases[i].text);
	}
}

Test(process_util, timeout_texts)
{
	static const struct {
		long long ms;
		const char *text;
	} cases[] = {{3000, "Task timed out after 3.00 seconds"},
		     {1500, "Task timed out after 1.50 seconds"},
		     {1, "Task timed out after 0.00 seconds"},
		     {900000, "Task timed out after 900.00 seconds"},
		     {2345, "Task timed out after 2.34 seconds"}};
	for (size_t i = 0; i < N(cases); i++) {
		char out[64];
		td_proc_timeout_text(cases[i].ms, out, sizeof out);
		cr_expect_str_eq(out, cases[i].text);
	}
}

Test(process_util, trace_id_and_log_stream)
{
	unsigned char rnd[20];
	char out[128];
	for (int i = 0; i < 20; i++)
		rnd[i] = (unsigned char)(i * 17);
	td_proc_trace_id(0x5e1b4151LL, rnd, out, sizeof out);
	cr_expect_str_eq(out, "Root=1-5e1b4151-00112233445566778899aabb;Parent=ccddeeff10213243;"
			      "Sampled=0");
	td_proc_log_stream(1795737600LL, rnd, out, sizeof out); /* 2026-11-27 */
	cr_expect_str_eq(out, "2026/11/27/[$LATEST]00112233445566778899aabbccddeeff");
}

Test(process_util, runtime_dir)
{
	char out[512], tmp[] = "/tmp/td_rtdir_XXXXXX", path[512];
	cr_assert_not_null(mkdtemp(tmp));
	td_proc_runtime_dir("/from/env", "/x/bin/triggerd", "/builtin", out, sizeof out);
	cr_expect_str_eq(out, "/from/env");
	td_proc_runtime_dir("", "/nonexistent/bin/triggerd", "/builtin", out, sizeof out);
	cr_expect_str_eq(out, "/builtin");
	td_proc_runtime_dir(NULL, NULL, "/builtin", out, sizeof out);
	cr_expect_str_eq(out, "/builtin");
	snprintf(path, sizeof path, "%s/bin", tmp);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/share", tmp);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/share/triggerd", tmp);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/share/triggerd/runtimes", tmp);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/bin/triggerd", tmp);
	td_proc_runtime_dir(NULL, path, "/builtin", out, sizeof out);
	char expect[512];
	snprintf(expect, sizeof expect, "%s/bin/../share/triggerd/runtimes", tmp);
	cr_expect_str_eq(out, expect);
	snprintf(path, sizeof path, "%s/share/triggerd/runtimes", tmp);
	rmdir(path);
	snprintf(path, sizeof path, "%s/share/triggerd", tmp);
	rmdir(path);
	snprintf(path, sizeof path, "%s/share", tmp);
	rmdir(path);
	snprintf(path, sizeof path, "%s/bin", tmp);
	rmdir(path);
	rmdir(tmp);
}

/* ---- line splitting ---- */

struct lines {
	char got[8][64];
	size_t len[8];
	int n;
};

static void collect(void *arg, const char *line, size_t len)
{
	struct lines *l = arg;
	if (l->n < 8) {
		size_t k = len < 63 ? len : 63;
		memcpy(l->got[l->n], line, k);
		l->got[l->n][k] = '\0';
		l->len[l->n] = len;
	}
	l->n++;
}

Test(process_output, split_lines)
{
	static const struct {
		const char *in;
		int final;
		int n;
		const char *lines[4];
		const char *rest;
	} cases[] = {
	    {"a\nbb\n", 0, 2, {"a", "bb"}, ""},
	    {"a\nbb", 0, 1, {"a"}, "bb"},
	    {"a\nbb", 1, 2, {"a", "bb"}, ""},
	    {"crlf\r\n\n", 0, 2, {"crlf", ""}, ""},
	    {"", 1, 0, {NULL}, ""},
	    {"no newline", 0, 0, {NULL}, "no newline"},
	};
	for (size_t i = 0; i < N(cases); i++) {
		struct lines l = {0};
		char buf[64];
		size_t len = strlen(cases[i].in);
		memcpy(buf, cases[i].in, len);
		td_pout_split(buf, &len, cases[i].final, collect, &l);
		cr_expect_eq(l.n, cases[i].n, "\"%s\": %d lines", cases[i].in, l.n);
		for (int k = 0; k < l.n && k < cases[i].n; k++)
			cr_expect_str_eq(l.got[k], cases[i].lines[k], "\"%s\"", cases[i].in);
		cr_expect_eq(len, strlen(cases[i].rest), "\"%s\"", cases[i].in);
		cr_expect(memcmp(buf, cases[i].rest, len) == 0, "\"%s\"", cases[i].in);
	}
}

Test(process_output, long_lines_are_cut)
{
	size_t total = TD_POUT_MAX_LINE * 2 + 10;
	char *buf = malloc(total + 1);
	memset(buf, 'x', total);
	buf[total] = '\0';
	struct lines l = {0};
	size_t len = total;
	td_pout_split(buf, &len, 0, collect, &l);
	cr_expect_eq(l.n, 2);
	cr_expect_eq(l.len[0], TD_POUT_MAX_LINE);
	cr_expect_eq(l.len[1], TD_POUT_MAX_LINE);
	cr_expect_eq(len, 10u); /* the rest waits for its newline */
	free(buf);
}

/* ---- options ---- */

static char *load_error(const char *function_options)
{
	char text[1024];
	struct td_diag d = {0};
	snprintf(text, sizeof text,
		 "functions = ( { name = \"f\"; kind = \"process\"; code = \"/tmp\"; %s } );\n",
		 function_options);
	struct td_config *cfg = td_config_load_string(text, "t.cfg", &d);
	char *first = d.n ? strdup(d.msgs[0]) : NULL;
	td_config_destroy(cfg);
	td_diag_clear(&d);
	return first;
}

Test(process_options, environment_names)
{
	static const struct {
		const char *opts, *error; /* NULL: accepted */
	} cases[] = {
	    {"runtime = \"provided\"; environment = { GREETING = \"hi\"; PATH = \"/x\"; LANG = "
	     "\"C\"; };",
	     NULL},
	    {"runtime = \"provided\"; environment = { TZ = \"Europe/Paris\"; };",
	     "TZ is set by triggerd"},
	    {"runtime = \"provided\"; environment = { AWS_REGION = \"eu-west-1\"; };",
	     "AWS_REGION is set by triggerd"},
	    {"runtime = \"provided\"; environment = { LAMBDA_RUNTIME_DIR = \"x\"; };",
	     "LAMBDA_RUNTIME_DIR is set"},
	    {"runtime = \"python3\"; handler = \"nodot\";", "is not FILE.FUNCTION"},
	    {"runtime = \"provided\"; memory_mb = 64;", "memory_mb"},
	};
	for (size_t i = 0; i < N(cases); i++) {
		char *err = load_error(cases[i].opts);
		if (!cases[i].error)
			cr_expect_null(err, "%s: %s", cases[i].opts, err);
		else
			cr_expect(err && strstr(err, cases[i].error), "%s: %s", cases[i].opts,
				  err ? err : "(accepted)");
		free(err);
	}
}
