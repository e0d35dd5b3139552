/*
 * Unit tests of configuration loading (router/config.c): every kind of error with its
 * exact file:line and item, all errors of a file reported, ${NAME} expansion, defaults
 * of the kinds, durations and sizes in context, patterns (string, group, file),
 * destinations, cross references, the lookups, and config/triggerd.cfg plus every
 * config/examples/ (every .cfg) loading cleanly and showing every option of its kind.
 *
 * Texts are loaded with td_config_load_string under the fake name "t.cfg"; the line in
 * an expected message is the line of the text it points at (count the "\n").
 */
#include <criterion/criterion.h>

#include <triggerd/config.h>
#include <triggerd/errors.h>
#include <triggerd/function.h>
#include <triggerd/source.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A minimal valid tail: one source, one function, one trigger. */
#define BASE                                                                                       \
	"sources = ( { name = \"s\"; kind = \"webhook\"; path = \"/s\"; } );\n"                    \
	"functions = ( { name = \"f\"; kind = \"log\"; } );\n"

static struct td_config *load(const char *text, struct td_diag *diag)
{
	memset(diag, 0, sizeof *diag);
	return td_config_load_string(text, "t.cfg", diag);
}

static const char *first(const struct td_diag *d)
{
	return d->n ? d->msgs[0] : "(no message)";
}

/* The field of a kind's options struct that the row `name` fills. */
static const void *field(const struct td_option *opts, const void *base, const char *name)
{
	const struct td_option *row = td_options_find(opts, name);
	cr_assert_not_null(row, "no option %s", name);
	return (const char *)base + row->offset;
}

static long long ll_field(const struct td_option *opts, const void *base, const char *name)
{
	return *(const long long *)field(opts, base, name);
}

static const char *str_field(const struct td_option *opts, const void *base, const char *name)
{
	return *(char *const *)field(opts, base, name);
}

static int enum_field(const struct td_option *opts, const void *base, const char *name)
{
	return *(const int *)field(opts, base, name);
}

/* ---- Every error kind, with its exact message -------------------------------------------- */

Test(config, error_messages)
{
	static const struct {
		const char *text, *msg;
	} rows[] = {
	    /* libconfig syntax */
	    {"a = 1;\nb = ;\n", "t.cfg:2: syntax error"},
	    {"x = [1, \"a\"];", "t.cfg:1: mismatched element type in array"},
	    {"log = { level = \"info\"; };\nlog = 1;\n", "t.cfg:2: duplicate setting name"},
	    {"# comment\n@include \"other.cfg\"\n",
	     "t.cfg:2: @include is not supported: keep the configuration in one file and take "
	     "secrets from the environment with ${NAME}"},
	    {"\n\nqueue = { max_events = 99999999999999999999; };",
	     "t.cfg:3: the integer 99999999999999999999 does not fit in 64 bits"},
	    /* global options */
	    {"lgo = { level = \"info\"; };", "t.cfg:1: unknown option 'lgo' (did you mean 'log'?)"},
	    {"log = {\n  level = \"verbose\"; };",
	     "t.cfg:2: option 'log.level': \"verbose\" is not one of error|warn|info|debug"},
	    {"log = { colour = true; };", "t.cfg:1: unknown option 'log.colour'"},
	    {"\nstate_dir = 5;",
	     "t.cfg:2: option 'state_dir': expected a string, found an integer"},
	    {"http = { max_body = \"2GB\"; };",
	     "t.cfg:1: option 'http.max_body': \"2GB\" is out of range (1KB..1GB)"},
	    {"queue = { max_events = 5000000000; };",
	     "t.cfg:1: option 'queue.max_events': 5000000000 is out of range (1..100000000)"},
	    {"shutdown_grace = \"11m\";",
	     "t.cfg:1: option 'shutdown_grace': \"11m\" is out of range (0m..10m)"},
	    {"webhook = { listen = \"7070\"; };",
	     "t.cfg:1: option 'webhook.listen': \"7070\" is not HOST:PORT (127.0.0.1:7070)"},
	    {"admin = {\n listen = \"0.0.0.0:7071\"; };",
	     "t.cfg:2: option 'admin.listen': \"0.0.0.0:7071\" is not a loopback address, so "
	     "admin.token is required"},
	    {"sources = { a = 1; };",
	     "t.cfg:1: option 'sources' must be a list of groups: sources = ( { ... }, { ... } );"},
	    /* sources */
	    {"sources = (\n \"x\" );", "t.cfg:2: sources[0]: expected a group { name = ...; ... }"},
	    {"sources = ( { kind = \"webhook\";\n path = \"/a\"; } );",
	     "t.cfg:1: sources[0]: option 'name' is required"},
	    {"sources = ( { name = \"a\"; } );",
	     "t.cfg:1: sources[0] \"a\": option 'kind' is required"},
	    {"sources = ( { name = \"a\";\n kind = \"ftp\"; } );",
	     "t.cfg:2: sources[0] \"a\": option 'kind': unknown source kind \"ftp\" (one of: "
	     "webhook, cron, mqtt, redis, kafka)"},
	    {"sources = ( { name = \"a b\"; kind = \"cron\"; schedule = \"@daily\"; } );",
	     "t.cfg:1: sources[0]: option 'name': \"a b\" is not a valid name (letters, digits, "
	     "'.', '_' and '-', at most 64)"},
	    {"sources = ( { name = \"a\"; kind = \"webhook\"; } );",
	     "t.cfg:1: sources[0] \"a\": option 'path' is required"},
	    {"sources = ( { name = \"a\"; kind = \"webhook\"; path = \"/a\";\n pth = \"/b\"; } );",
	     "t.cfg:2: sources[0] \"a\": unknown option 'pth' (did you mean 'path'?)"},
	    {"sources = ( { name = \"a\"; kind = \"webhook\"; path = \"/a\";\n methods = 5; } );",
	     "t.cfg:2: sources[0] \"a\": option 'methods': expected a string or a list of strings, "
	     "found an integer"},
	    {"sources = ( { name = \"a\"; kind = \"kafka\"; brokers = \"k:9092\"; topics = \"t\";\n"
	     " batch_size = 20000; } );",
	     "t.cfg:2: sources[0] \"a\": option 'batch_size': 20000 is out of range (1..10000)"},
	    {"sources = (\n { name = \"a\"; kind = \"cron\"; schedule = \"@daily\"; },\n"
	     " { name = \"a\"; kind = \"cron\"; schedule = \"@daily\"; } );",
	     "t.cfg:3: sources[1] \"a\": duplicate name: sources[0] (line 2) is also \"a\""},
	    {"sources = (\n { name = \"a\"; kind = \"webhook\"; path = \"/x\"; },\n"
	     " { name = \"b\"; kind = \"webhook\";\n path = \"/x\"; } );",
	     "t.cfg:4: sources[1] \"b\": option 'path': \"/x\" is already used by sources[0] (line "
	     "2)"},
	    {"sources = ( { name = \"a\"; kind = \"webhook\";\n path = \"${TD_CFG_UNSET}\"; } );",
	     "t.cfg:2: sources[0] \"a\": option 'path': environment variable TD_CFG_UNSET is not "
	     "set (write ${TD_CFG_UNSET:-default} to give a default)"},
	    /* kind checks (at the item's line) */
	    {"sources = (\n { name = \"a\"; kind = \"webhook\"; path = \"x\"; } );",
	     "t.cfg:2: sources[0] \"a\": option 'path': \"x\" must start with \"/\" and hold no "
	     "space, control character, '?' or '#'"},
	    {"sources = ( { name = \"a\"; kind = \"webhook\"; path = \"/a\"; auth = \"bearer\"; } "
	     ");",
	     "t.cfg:1: sources[0] \"a\": auth bearer needs option 'token'"},
	    {"sources = ( { name = \"a\"; kind = \"webhook\"; path = \"/a\"; preset = \"github\"; "
	     "} );",
	     "t.cfg:1: sources[0] \"a\": auth hmac needs option 'hmac.secret'"},
	    {"sources = ( { name = \"a\"; kind = \"webhook\"; path = \"/a\"; preset = \"minio\"; } "
	     ");",
	     "t.cfg:1: sources[0] \"a\": auth bearer needs option 'token'"},
	    {"sources = ( { name = \"a\"; kind = \"cron\"; schedule = \"@daily\";\n"
	     " start = \"2025-02-01T00:00:00Z\"; end = \"2025-01-01T00:00:00Z\"; } );",
	     "t.cfg:1: sources[0] \"a\": option 'end' must be after option 'start'"},
	    {"sources = ( { name = \"a\"; kind = \"cron\"; schedule = \"@daily\"; lease = "
	     "\"http://x\"; } );",
	     "t.cfg:1: sources[0] \"a\": option 'lease': \"http://x\" must start with "
	     "redis://|rediss://"},
	    {"sources = ( { name = \"a\"; kind = \"mqtt\"; uri = \"http://b\"; topics = \"t\"; } "
	     ");",
	     "t.cfg:1: sources[0] \"a\": option 'uri': \"http://b\" must start with "
	     "tcp://|ssl://|ws://|wss://|mqtt://|mqtts://"},
	    {"sources = ( { name = \"a\"; kind = \"mqtt\"; uri = \"tcp://b\"; topics = \"a/#/b\"; "
	     "} );",
	     "t.cfg:1: sources[0] \"a\": option 'topics': \"a/#/b\": the topic filter: '#' at byte "
	     "2 must be the whole last level (\"a/#\")"},
	    {"sources = ( { name = \"a\"; kind = \"mqtt\"; uri = \"tcp://b\"; topics = \"t\"; tls "
	     "= "
	     "{ ca_file = \"/ca.pem\"; }; } );",
	     "t.cfg:1: sources[0] \"a\": tls options need an ssl://, wss:// or mqtts:// uri"},
	    {"sources = ( { name = \"a\"; kind = \"mqtt\"; uri = \"tcp://b\"; topics = \"t\"; qos "
	     "= "
	     "3; } );",
	     "t.cfg:1: sources[0] \"a\": option 'qos': 3 is out of range (0..2)"},
	    {"sources = ( { name = \"a\"; kind = \"redis\"; url = \"localhost:6379\"; streams = "
	     "\"s\"; } );",
	     "t.cfg:1: sources[0] \"a\": option 'url': at byte 0: expected redis://HOST:PORT/DB, "
	     "unix:///PATH or a socket path /PATH"},
	    {"sources = ( { name = \"a\"; kind = \"kafka\"; brokers = \"k:1\"; topics = \"t\"; "
	     "rdkafka = [\"group.id=x\"]; } );",
	     "t.cfg:1: sources[0] \"a\": option 'rdkafka': set group.id with option 'group'"},
	    {"sources = ( { name = \"a\"; kind = \"kafka\"; brokers = \"k:1\"; topics = \"t\"; "
	     "rdkafka = [\"sasl.password\"]; } );",
	     "t.cfg:1: sources[0] \"a\": option 'rdkafka'[0]: expected \"name=value\""},
	    {"sources = ( { name = \"a\"; kind = \"kafka\"; brokers = \"k:1\"; topics = \"^(\"; } "
	     ");",
	     "t.cfg:1: sources[0] \"a\": option 'topics': \"^(\" is not a valid regular "
	     "expression"},
	    /* functions */
	    {"functions = ( { name = \"f\"; kind = \"http\"; } );",
	     "t.cfg:1: functions[0] \"f\": option 'url' is required"},
	    {"functions = ( { name = \"f\"; kind = \"lambdas\"; } );",
	     "t.cfg:1: functions[0] \"f\": option 'kind': unknown function kind \"lambdas\" (one "
	     "of: http, log, lambda, process)"},
	    {"functions = ( { name = \"f\"; kind = \"http\"; url = \"ftp://x\"; } );",
	     "t.cfg:1: functions[0] \"f\": option 'url': \"ftp://x\" must start with "
	     "http://|https://"},
	    {"functions = ( { name = \"f\"; kind = \"log\";\n timeout = \"16m\"; } );",
	     "t.cfg:2: functions[0] \"f\": option 'timeout': \"16m\" is out of range (1ms..15m)"},
	    {"functions = ( { name = \"f\"; kind = \"log\"; memory_mb = 64; } );",
	     "t.cfg:1: functions[0] \"f\": option 'memory_mb': 64 is out of range (128..10240)"},
	    {"functions = ( { name = \"f\"; kind = \"log\"; url = \"http://x\"; } );",
	     "t.cfg:1: functions[0] \"f\": unknown option 'url'"},
	    {"functions = ( { name = \"f\"; kind = \"process\"; code = \"c\"; } );",
	     "t.cfg:1: functions[0] \"f\": option 'runtime' is required"},
	    {"functions = ( { name = \"f\"; kind = \"process\"; code = \"c\"; runtime = \"ruby\"; "
	     "} "
	     ");",
	     "t.cfg:1: functions[0] \"f\": option 'runtime': \"ruby\" is not one of "
	     "python3|nodejs|provided"},
	    {"functions = ( { name = \"f\"; kind = \"process\"; code = \"c\"; runtime = "
	     "\"python3\"; environment = { AWS_LAMBDA_RUNTIME_API = \"x\"; }; } );",
	     "t.cfg:1: functions[0] \"f\": option 'environment': AWS_LAMBDA_RUNTIME_API is set by "
	     "triggerd"},
	    {"functions = ( { name = \"f\"; kind = \"lambda\"; function_name = \"x\"; "
	     "access_key_id = \"AK\"; } );",
	     "t.cfg:1: functions[0] \"f\": options 'access_key_id' and 'secret_access_key' go "
	     "together"},
	    {"functions = ( { name = \"f\"; kind = \"log\"; },\n { name = \"f\"; kind = \"log\"; } "
	     ");",
	     "t.cfg:2: functions[1] \"f\": duplicate name: functions[0] (line 1) is also \"f\""},
	    /* triggers */
	    {BASE "triggers = ( { name = \"t\"; function = \"f\"; } );",
	     "t.cfg:3: triggers[0] \"t\": option 'sources' is required"},
	    {BASE "triggers = ( { name = \"t\"; sources = []; function = \"f\"; } );",
	     "t.cfg:3: triggers[0] \"t\": option 'sources' is required and must not be empty"},
	    {BASE "triggers = ( { name = \"t\"; sources = [\"s\",\n \"nope\"]; function = \"f\"; } "
		  ");",
	     "t.cfg:4: triggers[0] \"t\": option 'sources': no source named \"nope\""},
	    {BASE "triggers = ( { name = \"t\"; sources = \"s\";\n function = \"g\"; } );",
	     "t.cfg:4: triggers[0] \"t\": option 'function': no function named \"g\""},
	    {BASE "triggers = ( { name = \"t\"; sources = \"s\"; function = \"f\";\n invocation = "
		  "\"later\"; } );",
	     "t.cfg:4: triggers[0] \"t\": option 'invocation': \"later\" is not one of sync|async"},
	    {BASE "triggers = ( { name = \"t\"; sources = \"s\"; function = \"f\"; retries = 11; } "
		  ");",
	     "t.cfg:3: triggers[0] \"t\": option 'retries': 11 is out of range (0..10)"},
	    {BASE "triggers = ( { name = \"t\"; sources = \"s\"; function = \"f\"; max_event_age = "
		  "\"30s\"; } );",
	     "t.cfg:3: triggers[0] \"t\": option 'max_event_age': \"30s\" is out of range "
	     "(60s..21600s)"},
	    {BASE "triggers = ( { name = \"t\"; sources = \"s\"; function = \"f\"; max_event_age = "
		  "\"7h\"; } );",
	     "t.cfg:3: triggers[0] \"t\": option 'max_event_age': \"7h\" is out of range (1m..6h)"},
	    {BASE "triggers = ( { name = \"t\"; sources = \"s\"; function = \"f\";\n backoff = { "
		  "base = \"10m\"; cap = \"1m\"; }; } );",
	     "t.cfg:4: triggers[0] \"t\": option 'backoff.cap' must not be shorter than "
	     "backoff.base"},
	    {BASE "triggers = ( { name = \"t\"; sources = \"s\"; function = \"f\";\n pattern = "
		  "\"{\\\"a\\\": [1\"; } );",
	     "t.cfg:4: triggers[0] \"t\": option 'pattern': not valid JSON: ']' expected near end "
	     "of file (line 1, column 8 of the JSON)"},
	    {BASE "triggers = ( { name = \"t\"; sources = \"s\"; function = \"f\"; on_failure = "
		  "\"gopher://x\"; } );",
	     "t.cfg:3: triggers[0] \"t\": option 'on_failure': \"gopher://x\" is not a destination "
	     "(file:PATH, http(s)://URL, mqtt://SOURCE/topic, redis://SOURCE/stream or "
	     "kafka://SOURCE/topic)"},
	    {BASE "triggers = ( { name = \"t\"; sources = \"s\"; function = \"f\"; on_failure = "
		  "\"gopher://u:pw@x\"; } );",
	     "t.cfg:3: triggers[0] \"t\": option 'on_failure': the destination is not a "
	     "destination (file:PATH, http(s)://URL, mqtt://SOURCE/topic, "
	     "redis://SOURCE/stream or kafka://SOURCE/topic)"},
	    {BASE "triggers = ( { name = \"t\"; sources = \"s\"; function = \"f\"; on_failure = "
		  "\"kafka://s/dlq\"; } );",
	     "t.cfg:3: triggers[0] \"t\": option 'on_failure': \"kafka://s/dlq\": source \"s\" is "
	     "a webhook source, not kafka"},
	    {BASE "triggers = ( { name = \"t\"; sources = \"s\"; function = \"f\"; on_success = "
		  "\"redis://nope/x\"; } );",
	     "t.cfg:3: triggers[0] \"t\": option 'on_success': \"redis://nope/x\": no source named "
	     "\"nope\""},
	    {BASE "triggers = ( { name = \"t\"; sources = \"s\"; function = \"f\"; on_success = "
		  "\"mqtt://s\"; } );",
	     "t.cfg:3: triggers[0] \"t\": option 'on_success': \"mqtt://s\": write "
	     "mqtt://SOURCE/topic"},
	    {BASE "triggers = ( { name = \"t\"; sources = \"s\"; function = \"f\"; on_success = "
		  "\"file:\"; } );",
	     "t.cfg:3: triggers[0] \"t\": option 'on_success': \"file:\": write "
	     "file:/path/to/file.jsonl"},
	    {BASE "triggers = ( { name = \"t\"; sources = \"s\"; function = \"f\"; on_success = "
		  "\"http://\"; } );",
	     "t.cfg:3: triggers[0] \"t\": option 'on_success': \"http://\" is not an http(s) URL "
	     "with a host"},
	    {BASE "triggers = ( { name = \"t\"; sources = \"s\"; function = \"f\"; },\n"
		  " { name = \"t\"; sources = \"s\"; function = \"f\"; } );",
	     "t.cfg:4: triggers[1] \"t\": duplicate name: triggers[0] (line 3) is also \"t\""},
	    {BASE
	     "triggers = ( { name = \"t\"; sources = \"s\"; function = \"f\"; pattern = \"{}\";"
	     "\n pattern_file = \"p.json\"; } );",
	     "t.cfg:4: triggers[0] \"t\": option 'pattern_file': give either pattern or "
	     "pattern_file, not both"},
	    {BASE "triggers = ( { name = \"t\"; sources = \"s\"; function = \"f\";\n pattern_file "
		  "= \"/nonexistent/p.json\"; } );",
	     "t.cfg:4: triggers[0] \"t\": option 'pattern_file': /nonexistent/p.json: No such "
	     "file or directory"},
	    {BASE "triggers = ( { name = \"t\"; sources = \"s\"; function = \"f\"; pattern_file = "
		  "\"/tmp\"; } );",
	     "t.cfg:3: triggers[0] \"t\": option 'pattern_file': /tmp: not a regular file"},
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct td_diag d;
		struct td_config *cfg = load(rows[i].text, &d);
		cr_expect_null(cfg, "row %zu accepted:\n%s", i, rows[i].text);
		td_config_destroy(cfg);
		cr_expect_eq(d.n, 1, "row %zu: %zu messages, first: %s", i, d.n, first(&d));
		cr_expect_str_eq(first(&d), rows[i].msg, "row %zu: got\n%s", i, first(&d));
		td_diag_clear(&d);
	}
}

/* The message of an invalid pattern comes from td_pattern_validate: only its start is
 * fixed here. */
Test(config, invalid_pattern)
{
	static const char *const patterns[] = {
	    "pattern = \"[1, 2]\";",
	    "pattern = \"{\\\"a\\\": \\\"x\\\"}\";",
	    "pattern = { a = 5; };",
	};
	for (size_t i = 0; i < sizeof patterns / sizeof patterns[0]; i++) {
		char text[1024];
		snprintf(text, sizeof text,
			 BASE "triggers = (\n { name = \"t\"; sources = \"s\"; function = \"f\";\n"
			      " %s } );",
			 patterns[i]);
		struct td_diag d;
		struct td_config *cfg = load(text, &d);
		cr_expect_null(cfg, "%s accepted", patterns[i]);
		td_config_destroy(cfg);
		cr_expect_eq(d.n, 1, "%s: %zu messages", patterns[i], d.n);
		const char *want =
		    "t.cfg:5: triggers[0] \"t\": option 'pattern': invalid pattern: ";
		cr_expect(strncmp(first(&d), want, strlen(want)) == 0 &&
			      strlen(first(&d)) > strlen(want),
			  "%s", first(&d));
		td_diag_clear(&d);
	}
}

/* The cron kind checks schedule, timezone, start and end with the schedule module, whose
 * messages (after the option's name) are its own: only the start is fixed here. */
Test(config, cron_checks)
{
	static const struct {
		const char *options, *start;
	} rows[] = {
	    {"schedule = \"61 * * * *\";", "t.cfg:2: sources[0] \"c\": option 'schedule': "},
	    {"schedule = \"rate(5 fortnights)\";",
	     "t.cfg:2: sources[0] \"c\": option 'schedule': "},
	    {"schedule = \"@daily\"; timezone = \"Mars/Base\";",
	     "t.cfg:2: sources[0] \"c\": option 'timezone': "},
	    {"schedule = \"@daily\"; start = \"2025-02-30T00:00:00Z\";",
	     "t.cfg:2: sources[0] \"c\": option 'start': "},
	    {"schedule = \"@daily\"; end = \"tomorrow\";",
	     "t.cfg:2: sources[0] \"c\": option 'end': "},
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		char text[512];
		snprintf(text, sizeof text,
			 "sources = (\n { name = \"c\"; kind = \"cron\"; %s } );", rows[i].options);
		struct td_diag d;
		struct td_config *cfg = load(text, &d);
		cr_expect_null(cfg, "%s accepted", rows[i].options);
		td_config_destroy(cfg);
		cr_expect_eq(d.n, 1, "%s: %zu messages", rows[i].options, d.n);
		cr_expect(strncmp(first(&d), rows[i].start, strlen(rows[i].start)) == 0 &&
			      strlen(first(&d)) > strlen(rows[i].start),
			  "%s: %s", rows[i].options, first(&d));
		td_diag_clear(&d);
	}
	/* Valid forms load. */
	static const char *const good[] = {
	    "schedule = \"*/10 * * * * *\";",
	    "schedule = \"cron(0 12 ? * MON-FRI *)\"; timezone = \"Europe/Paris\";",
	    ("schedule = \"at(2030-01-01T00:00:00)\"; start = \"2025-01-01T00:00:00+02:00\"; "
	     "end = \"2031-01-01T00:00:00Z\";"),
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		char text[512];
		snprintf(text, sizeof text,
			 "sources = (\n { name = \"c\"; kind = \"cron\"; %s } );", good[i]);
		struct td_diag d;
		struct td_config *cfg = load(text, &d);
		cr_expect_not_null(cfg, "%s: %s", good[i], first(&d));
		td_config_destroy(cfg);
		td_diag_clear(&d);
	}
}

Test(config, all_errors_reported)
{
	const char *text =
	    "log = { level = \"loud\"; };\n"					  /* 1 */
	    "sources = ( { name = \"s\"; kind = \"webhook\"; path = \"/s\"; },\n" /* 2 */
	    "  { name = \"c\"; kind = \"cron\"; schedul = \"@daily\"; } );\n"	  /* 3 */
	    "functions = ( { name = \"f\"; kind = \"log\"; } );\n"		  /* 4 */
	    "triggers = ( { name = \"t\"; sources = [\"s\"];\n"			  /* 5 */
	    "  function = \"nope\"; } );\n";					  /* 6 */
	struct td_diag d;
	struct td_config *cfg = load(text, &d);
	cr_expect_null(cfg);
	cr_assert_eq(d.n, 4, "%zu messages", d.n);
	cr_expect_str_eq(
	    d.msgs[0], "t.cfg:1: option 'log.level': \"loud\" is not one of error|warn|info|debug");
	cr_expect_str_eq(d.msgs[1], "t.cfg:3: sources[1] \"c\": option 'schedule' is required");
	cr_expect_str_eq(d.msgs[2],
			 "t.cfg:3: sources[1] \"c\": unknown option 'schedul' (did you mean "
			 "'schedule'?)");
	cr_expect_str_eq(d.msgs[3], "t.cfg:6: triggers[0] \"t\": option 'function': no function "
				    "named \"nope\"");
	td_diag_clear(&d);

	/* Three independent mistakes, three messages. */
	cfg = load(BASE "triggers = ( { name = \"t\"; sources = \"x\"; function = \"f\"; retries "
			"= 99; },\n { name = \"u\"; sources = \"s\"; function = \"g\"; } );",
		   &d);
	cr_expect_null(cfg);
	cr_expect_eq(d.n, 3, "%zu messages", d.n);
	td_diag_clear(&d);
}

Test(config, the_callers_diag_is_appended)
{
	struct td_diag d = {0};
	td_diag_add(&d, "earlier", 1, "kept");
	struct td_config *cfg = td_config_load_string("log = 1;", "t.cfg", &d);
	cr_expect_null(cfg);
	cr_assert_eq(d.n, 2);
	cr_expect_str_eq(d.msgs[0], "earlier:1: kept");
	td_diag_clear(&d);
	/* A clean load adds nothing, and a NULL diag is allowed. */
	cfg = td_config_load_string(BASE, "t.cfg", &d);
	cr_expect_not_null(cfg);
	cr_expect_eq(d.n, 0);
	td_config_destroy(cfg);
	cr_expect_null(td_config_load_string("log = 1;", "t.cfg", NULL));
}

/* ---- ${NAME} expansion ----------------------------------------------------------------- */

Test(config, expand)
{
	static const struct {
		const char *in, *out, *err; /* out NULL: error containing err */
	} rows[] = {
	    {"plain", "plain", NULL},
	    {"${TD_X}", "ex", NULL},
	    {"a${TD_X}b${TD_X}", "aexbex", NULL},
	    {"${TD_EMPTY}", "", NULL},
	    {"${TD_UNSET:-dflt}", "dflt", NULL},
	    {"${TD_EMPTY:-dflt}", "dflt", NULL},
	    {"${TD_X:-dflt}", "ex", NULL},
	    {"${TD_UNSET:-}", "", NULL},
	    {"${TD_UNSET:-a:b-c{d}", "a:b-c{d", NULL},
	    {"$$", "$", NULL},
	    {"$${TD_X}", "${TD_X}", NULL},
	    {"cost: $5", "cost: $5", NULL},
	    {"$share/g/t", "$share/g/t", NULL},
	    {"{\"$or\": []}", "{\"$or\": []}", NULL},
	    {"end$", "end$", NULL},
	    {"${TD_UNSET}", NULL, "environment variable TD_UNSET is not set"},
	    {"${TD_X", NULL, "unterminated ${TD_X: missing '}'"},
	    {"${TD_UNSET:-abc", NULL, "unterminated ${TD_UNSET:-...: missing '}'"},
	    {"${}", NULL, "expected a variable name"},
	    {"${1X}", NULL, "expected a variable name"},
	    {"${TD X}", NULL, "unexpected ' ' in ${TD...}"},
	    {"${TD_X-d}", NULL, "unexpected '-' in ${TD_X...}"},
	};
	setenv("TD_X", "ex", 1);
	setenv("TD_EMPTY", "", 1);
	unsetenv("TD_UNSET");
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		char err[256] = "";
		char *out = td_config_expand(rows[i].in, err, sizeof err);
		if (rows[i].out) {
			cr_expect_not_null(out, "%s: %s", rows[i].in, err);
			if (out)
				cr_expect_str_eq(out, rows[i].out, "%s", rows[i].in);
		} else {
			cr_expect_null(out, "%s accepted", rows[i].in);
			cr_expect(strstr(err, rows[i].err) != NULL, "%s: %s", rows[i].in, err);
		}
		free(out);
	}
}

Test(config, expand_in_every_string)
{
	setenv("TD_CFG_PATH", "/from-env", 1);
	setenv("TD_CFG_LEVEL", "debug", 1);
	setenv("TD_CFG_RETRIES", "4", 1);
	setenv("TD_CFG_HDR", "Bearer abc", 1);
	const char *text =
	    "log = { level = \"${TD_CFG_LEVEL}\"; };\n"
	    "sources = ( { name = \"${TD_CFG_UNSET:-s}\"; kind = \"webhook\"; path = "
	    "\"${TD_CFG_PATH}\"; } );\n"
	    "functions = ( { name = \"f\"; kind = \"http\"; url = \"http://h/\"; headers = { "
	    "Authorization = \"${TD_CFG_HDR}\"; }; } );\n"
	    "triggers = ( { name = \"t\"; sources = [\"${TD_CFG_UNSET:-s}\"]; function = \"f\"; "
	    "retries = \"${TD_CFG_RETRIES}\"; pattern = { subject = [\"${TD_CFG_PATH}\"]; }; } "
	    ");\n";
	struct td_diag d;
	struct td_config *cfg = load(text, &d);
	cr_assert_not_null(cfg, "%s", first(&d));
	cr_expect_eq(cfg->global.log_level, 3);
	cr_expect_str_eq(cfg->sources[0].name, "s");
	cr_expect_str_eq(str_field(cfg->sources[0].ops->options, cfg->sources[0].opts, "path"),
			 "/from-env");
	const struct td_map *h =
	    field(cfg->functions[0].ops->options, cfg->functions[0].opts, "headers");
	cr_assert_eq(h->n, 1);
	cr_expect_str_eq(h->values[0], "Bearer abc");
	cr_expect_eq(cfg->triggers[0].retries, 4);
	cr_expect_str_eq(cfg->triggers[0].pattern, "{\"subject\":[\"/from-env\"]}");
	td_config_destroy(cfg);
	td_diag_clear(&d);
}

/* ---- Defaults and values ------------------------------------------------------------------ */

Test(config, global_defaults)
{
	struct td_diag d;
	struct td_config *cfg = load("", &d);
	cr_assert_not_null(cfg, "%s", first(&d));
	const struct td_global *g = &cfg->global;
	cr_expect_str_eq(g->state_dir, "/var/lib/triggerd");
	cr_expect_eq(g->log_level, 2, "info");
	cr_expect_eq(g->log_format, TD_LOGFMT_TEXT);
	cr_expect_eq(g->shutdown_grace_ms, 10000);
	cr_expect_str_eq(g->webhook_listen, "0.0.0.0:7070");
	cr_expect_str_eq(g->admin_listen, "127.0.0.1:7071");
	cr_expect_null(g->admin_token);
	cr_expect_eq(g->admin_credentials.n, 0);
	cr_expect_eq(g->http_max_body, 6 << 20);
	cr_expect_eq(g->http_max_header, 16 << 10);
	cr_expect_eq(g->http_max_connections, 1024);
	cr_expect_eq(g->http_request_timeout_ms, 30000);
	cr_expect_eq(g->queue_durability, 0, "fsync");
	cr_expect_eq(g->queue_max_events, 100000);
	cr_expect_eq(cfg->nsources + cfg->nfunctions + cfg->ntriggers, 0);
	cr_expect_str_eq(cfg->path, "t.cfg");
	td_config_destroy(cfg);
	td_diag_clear(&d);
}

Test(config, global_values)
{
	const char *text = "state_dir = \"st\";\n"
			   "log = { level = \"warn\"; format = \"json\"; };\n"
			   "shutdown_grace = 2.5;\n"
			   "admin = { listen = \"0.0.0.0:9\"; token = \"tok\"; credentials = { "
			   "AKID = \"sec\"; }; };\n"
			   "http = { max_body = \"1MB\"; max_header = 8192; max_connections = 7; "
			   "request_timeout = \"1m\"; };\n"
			   "queue = { durability = \"memory\"; max_events = 10; };\n";
	struct td_diag d;
	struct td_config *cfg = load(text, &d);
	cr_assert_not_null(cfg, "%s", first(&d));
	const struct td_global *g = &cfg->global;
	cr_expect_str_eq(g->state_dir, "st");
	cr_expect_eq(g->log_level, 1);
	cr_expect_eq(g->log_format, TD_LOGFMT_JSON);
	cr_expect_eq(g->shutdown_grace_ms, 2500);
	cr_expect_str_eq(g->admin_token, "tok");
	cr_assert_eq(g->admin_credentials.n, 1);
	cr_expect_str_eq(g->admin_credentials.keys[0], "AKID");
	cr_expect_str_eq(g->admin_credentials.values[0], "sec");
	cr_expect_eq(g->http_max_body, 1 << 20);
	cr_expect_eq(g->http_max_header, 8192);
	cr_expect_eq(g->http_max_connections, 7);
	cr_expect_eq(g->http_request_timeout_ms, 60000);
	cr_expect_eq(g->queue_durability, 2);
	cr_expect_eq(g->queue_max_events, 10);
	td_config_destroy(cfg);
	td_diag_clear(&d);

	/* An empty token is no token: refused on a public admin address. */
	cfg = load("admin = { listen = \"0.0.0.0:9\"; token = \"${TD_CFG_UNSET:-}\"; };", &d);
	cr_expect_null(cfg);
	cr_expect_eq(d.n, 1, "%s", first(&d));
	td_diag_clear(&d);
}

Test(config, function_defaults)
{
	static const struct {
		const char *kind, *extra;
		long long timeout_ms, concurrency;
		int event_format;
	} rows[] = {
	    {"http", "url = \"http://x/\";", 3000, 64, 0},
	    {"log", "", 3000, 64, 0},
	    {"lambda", "function_name = \"fn\";", 30000, 64, 1},
	    {"process", "runtime = \"python3\"; code = \"code\";", 3000, 4, 1},
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		char text[512];
		snprintf(text, sizeof text,
			 "queue = { max_events = 777; };\n"
			 "functions = ( { name = \"f\"; kind = \"%s\"; %s } );",
			 rows[i].kind, rows[i].extra);
		struct td_diag d;
		struct td_config *cfg = load(text, &d);
		cr_assert_not_null(cfg, "%s: %s", rows[i].kind, first(&d));
		const struct td_function_common *c = cfg->functions[0].opts;
		cr_expect_eq(c->timeout_ms, rows[i].timeout_ms, "%s", rows[i].kind);
		cr_expect_eq(c->concurrency, rows[i].concurrency, "%s", rows[i].kind);
		cr_expect_eq(c->memory_mb, 128, "%s", rows[i].kind);
		cr_expect_eq(c->event_format, rows[i].event_format, "%s", rows[i].kind);
		cr_expect_eq(c->queue_max, 777, "%s: queue_max from queue.max_events",
			     rows[i].kind);
		cr_expect_str_eq(cfg->functions[0].ops->name, rows[i].kind);
		cr_expect_eq(cfg->functions[0].line, 2);
		td_config_destroy(cfg);
		td_diag_clear(&d);
	}
}

Test(config, kind_values)
{
	const char *text =
	    "sources = (\n"
	    " { name = \"k\"; kind = \"kafka\"; brokers = \"a:1,b:2\"; topics = [\"t\", "
	    "\"^t-.*\"]; retries = -1; max_record_age = \"7d\"; rdkafka = "
	    "[\"fetch.wait.max.ms=10\"]; },\n"
	    " { name = \"m\"; kind = \"mqtt\"; uri = [\"tcp://a:1883\", \"ssl://b:8883\"]; "
	    "topics = \"x/+/y\"; session_expiry = 4294967295; protocol = 5; shared_group = "
	    "\"g\"; },\n"
	    " { name = \"r\"; kind = \"redis\"; url = \"/run/redis.sock\"; streams = \"s\"; start "
	    "= 0; },\n"
	    " { name = \"g\"; kind = \"webhook\"; path = \"/gh\"; preset = \"github\"; hmac = { "
	    "secret = \"x\"; }; },\n"
	    " { name = \"n\"; kind = \"webhook\"; path = \"/mn\"; preset = \"minio\"; token = "
	    "\"t\"; },\n"
	    " { name = \"c\"; kind = \"cron\"; schedule = \"rate(1 minute)\"; payload = { a = 1; "
	    "}; start = \"2025-01-01T00:00:00.5+01:00\"; }\n"
	    ");\n";
	struct td_diag d;
	struct td_config *cfg = load(text, &d);
	cr_assert_not_null(cfg, "%s", first(&d));
	cr_assert_eq(cfg->nsources, 6);
	const struct td_source_conf *s = td_config_source(cfg, "k");
	cr_assert_not_null(s);
	cr_expect_eq(s->line, 2);
	cr_expect_eq(ll_field(s->ops->options, s->opts, "retries"), -1);
	cr_expect_eq(ll_field(s->ops->options, s->opts, "max_record_age"), 604800000LL);
	cr_expect_eq(ll_field(s->ops->options, s->opts, "batch_size"), 1);
	cr_expect_eq(enum_field(s->ops->options, s->opts, "ordering"), 0);
	s = td_config_source(cfg, "m");
	cr_expect_eq(ll_field(s->ops->options, s->opts, "session_expiry"), 4294967295000LL,
		     "beyond 32 bits without an L");
	cr_expect_eq(enum_field(s->ops->options, s->opts, "protocol"), 0, "5 given as a number");
	cr_expect_eq(ll_field(s->ops->options, s->opts, "qos"), 1);
	cr_expect_eq(ll_field(s->ops->options, s->opts, "receive_maximum"), 100);
	cr_expect_eq(*(const bool *)field(s->ops->options, s->opts, "tls.verify"), true);
	cr_expect_null(str_field(s->ops->options, s->opts, "client_id"));
	s = td_config_source(cfg, "r");
	cr_expect_eq(enum_field(s->ops->options, s->opts, "start"), 1);
	cr_expect_eq(ll_field(s->ops->options, s->opts, "count"), 100);
	cr_expect_eq(ll_field(s->ops->options, s->opts, "claim_idle"), 60000);
	cr_expect_eq(ll_field(s->ops->options, s->opts, "max_deliveries"), 5);
	cr_expect_str_eq(str_field(s->ops->options, s->opts, "dead_letter_stream"), "{stream}:dlq");
	s = td_config_source(cfg, "g");
	cr_expect_eq(enum_field(s->ops->options, s->opts, "auth"), 2, "github: hmac");
	cr_expect_eq(enum_field(s->ops->options, s->opts, "format"), 0, "raw");
	cr_expect_str_eq(str_field(s->ops->options, s->opts, "hmac.header"), "X-Hub-Signature-256");
	cr_expect_str_eq(str_field(s->ops->options, s->opts, "hmac.prefix"), "sha256=");
	cr_expect_eq(ll_field(s->ops->options, s->opts, "hmac.tolerance"), 300000);
	s = td_config_source(cfg, "n");
	cr_expect_eq(enum_field(s->ops->options, s->opts, "auth"), 1, "minio: bearer");
	cr_expect_eq(enum_field(s->ops->options, s->opts, "format"), 2, "minio: s3");
	cr_expect_eq(ll_field(s->ops->options, s->opts, "max_body"), 0, "0: http.max_body");
	s = td_config_source(cfg, "c");
	cr_expect_str_eq(str_field(s->ops->options, s->opts, "payload"), "{\"a\":1}");
	cr_expect_str_eq(str_field(s->ops->options, s->opts, "timezone"), "UTC");
	cr_expect_eq(ll_field(s->ops->options, s->opts, "catchup_max_age"), 86400000);
	cr_expect_null(td_config_source(cfg, "nope"));
	td_config_destroy(cfg);
	td_diag_clear(&d);
}

Test(config, triggers_and_lookups)
{
	const char *text =
	    "sources = ( { name = \"a\"; kind = \"webhook\"; path = \"/a\"; },\n"
	    "  { name = \"b\"; kind = \"mqtt\"; uri = \"tcp://h\"; topics = \"#\"; } );\n"
	    "functions = ( { name = \"f\"; kind = \"log\"; }, { name = \"g\"; kind = \"log\"; } "
	    ");\n"
	    "triggers = (\n"
	    "  { name = \"t1\"; sources = \"b\"; function = \"g\"; },\n"
	    "  { name = \"t2\"; sources = [\"b\", \"a\"]; function = \"f\"; invocation = \"sync\";"
	    " retries = 0; max_event_age = \"1h\"; backoff = { base = \"250ms\"; cap = \"1m\"; };"
	    " topic = [\"x/#\"]; on_success = \"mqtt://b/out\"; on_failure = "
	    "\"file:/var/dead.jsonl\"; enabled = false;\n"
	    "    pattern = { source = [\"a\"]; data = { n = ( { numeric = (\">\", 0) } ); }; }; }\n"
	    ");\n";
	struct td_diag d;
	struct td_config *cfg = load(text, &d);
	cr_assert_not_null(cfg, "%s", first(&d));
	const struct td_trigger *t = td_config_trigger(cfg, "t1");
	cr_assert_not_null(t);
	cr_expect_eq(t->line, 5);
	cr_expect_str_eq(t->file, "t.cfg");
	cr_expect_eq(t->invocation, TD_INVOKE_ASYNC);
	cr_expect_eq(t->retries, 2);
	cr_expect_eq(t->max_event_age_ms, 21600000);
	cr_expect_eq(t->backoff_base_ms, 1000);
	cr_expect_eq(t->backoff_cap_ms, 300000);
	cr_expect_null(t->pattern, "no pattern: every event");
	cr_expect_eq(t->enabled, true);
	cr_expect_eq(t->source_index[0], 1);
	cr_expect_eq(t->function_index, 1);
	t = td_config_trigger(cfg, "t2");
	cr_assert_not_null(t);
	cr_expect_eq(t->invocation, TD_INVOKE_SYNC);
	cr_expect_eq(t->retries, 0);
	cr_expect_eq(t->max_event_age_ms, 3600000);
	cr_expect_eq(t->backoff_base_ms, 250);
	cr_expect_eq(t->backoff_cap_ms, 60000);
	cr_expect_eq(t->sources.n, 2);
	cr_expect_eq(t->source_index[0], 1);
	cr_expect_eq(t->source_index[1], 0);
	cr_expect_eq(t->function_index, 0);
	cr_expect_eq(t->topic.n, 1);
	cr_expect_str_eq(t->on_success, "mqtt://b/out");
	cr_expect_str_eq(t->on_failure, "file:/var/dead.jsonl");
	cr_expect_eq(t->enabled, false);
	cr_expect_str_eq(t->pattern,
			 "{\"source\":[\"a\"],\"data\":{\"n\":[{\"numeric\":[\">\",0]}]}}");
	cr_expect_not_null(td_config_function(cfg, "g"));
	cr_expect_null(td_config_function(cfg, "h"));
	cr_expect_null(td_config_trigger(cfg, "t3"));
	td_config_destroy(cfg);
	td_diag_clear(&d);
}

/* ---- Files: relative paths, pattern_file, the shipped configurations ------------------------ */

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s", path);
	fputs(text, f);
	fclose(f);
}

Test(config, files_and_relative_paths)
{
	char dir[] = "/tmp/td_config_test_XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char path[256], pat[256], sub[256];
	snprintf(sub, sizeof sub, "%s/patterns", dir);
	mkdir(sub, 0700);
	snprintf(pat, sizeof pat, "%s/patterns/p.json", dir);
	write_file(pat, "{\"source\": [\"a\"]}");
	snprintf(path, sizeof path, "%s/main.cfg", dir);
	write_file(path,
		   "sources = ( { name = \"a\"; kind = \"webhook\"; path = \"/a\"; } );\n"
		   "functions = ( { name = \"p\"; kind = \"process\"; runtime = \"nodejs\"; "
		   "handler = \"index.handler\"; code = \"fn\"; } );\n"
		   "triggers = ( { name = \"t\"; sources = \"a\"; function = \"p\"; "
		   "pattern_file = \"patterns/p.json\"; on_failure = \"file:dead.jsonl\"; } );\n");
	struct td_diag d = {0};
	struct td_config *cfg = td_config_load(path, &d);
	cr_assert_not_null(cfg, "%s", first(&d));
	char want[1024];
	snprintf(want, sizeof want, "%s/fn", dir);
	cr_expect_str_eq(str_field(cfg->functions[0].ops->options, cfg->functions[0].opts, "code"),
			 want);
	cr_expect_str_eq(cfg->triggers[0].pattern_file, pat);
	cr_expect_str_eq(cfg->triggers[0].pattern, "{\"source\": [\"a\"]}");
	snprintf(want, sizeof want, "file:%s/dead.jsonl", dir);
	cr_expect_str_eq(cfg->triggers[0].on_failure, want);
	cr_expect_str_eq(cfg->path, path);
	cr_expect_str_eq(cfg->triggers[0].file, path);
	td_config_destroy(cfg);

	/* An invalid pattern file names itself. */
	write_file(pat, "[1]");
	cfg = td_config_load(path, &d);
	cr_expect_null(cfg);
	cr_assert_eq(d.n, 1);
	snprintf(want, sizeof want,
		 "%s:3: triggers[0] \"t\": option 'pattern_file': invalid pattern in %s: ", path,
		 pat);
	cr_expect(strncmp(d.msgs[0], want, strlen(want)) == 0, "%s", d.msgs[0]);
	td_diag_clear(&d);

	/* A missing file. */
	cfg = td_config_load("/nonexistent/triggerd.cfg", &d);
	cr_expect_null(cfg);
	cr_assert_eq(d.n, 1);
	cr_expect_str_eq(d.msgs[0], "/nonexistent/triggerd.cfg: No such file or directory");
	td_diag_clear(&d);

	unlink(pat);
	rmdir(sub);
	unlink(path);
	rmdir(dir);
}

Test(config, strings_keep_relative_paths)
{
	struct td_diag d;
	struct td_config *cfg = load("functions = ( { name = \"p\"; kind = \"process\"; runtime = "
				     "\"provided\"; code = \"fn\"; } );",
				     &d);
	cr_assert_not_null(cfg, "%s", first(&d));
	cr_expect_str_eq(str_field(cfg->functions[0].ops->options, cfg->functions[0].opts, "code"),
			 "fn");
	td_config_destroy(cfg);
	td_diag_clear(&d);
}

static void set_example_env(void)
{
	static const char *const vars[] = {
	    "DEMO_TOKEN",	 "GITHUB_WEBHOOK_SECRET", "MINIO_WEBHOOK_TOKEN",
	    "MQTT_PASSWORD",	 "KAFKA_PASSWORD",	  "HELLO_TOKEN",
	    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
	};
	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
		setenv(vars[i], "test-value", 1);
	setenv("MQTT_URL", "tcp://127.0.0.1:1883", 1);
	setenv("MQTT_USERNAME", "test-user", 1);
	setenv("REDIS_URL", "redis://127.0.0.1:6379", 1);
	setenv("KAFKA_BROKERS", "127.0.0.1:9092", 1);
	setenv("FUNCTION_URL", "http://127.0.0.1:8080/", 1);
}

Test(config, embedded_default)
{
	struct td_diag d = {0};
	unsetenv("TRIGGERD_ADMIN_TOKEN");
	struct td_config *cfg = td_config_load("config/triggerd.cfg", &d);
	cr_assert_not_null(cfg, "%s", first(&d));
	cr_expect_str_eq(cfg->global.state_dir, "state");
	cr_expect_str_eq(cfg->global.webhook_listen, "127.0.0.1:7070");
	cr_expect_str_eq(cfg->global.admin_listen, "127.0.0.1:7071");
	cr_expect_null(cfg->global.admin_token);
	const struct td_source_conf *demo = NULL, *tick = NULL;
	for (size_t i = 0; i < cfg->nsources; i++) {
		if (strcmp(cfg->sources[i].ops->name, "webhook") == 0)
			demo = &cfg->sources[i];
		if (strcmp(cfg->sources[i].ops->name, "cron") == 0)
			tick = &cfg->sources[i];
	}
	cr_assert_not_null(demo);
	cr_assert_not_null(tick);
	cr_expect_str_eq(str_field(demo->ops->options, demo->opts, "path"), "/hooks/demo");
	cr_expect_eq(enum_field(demo->ops->options, demo->opts, "format"), 0, "raw");
	cr_expect_str_eq(str_field(tick->ops->options, tick->opts, "schedule"), "*/10 * * * * *");
	cr_assert_eq(cfg->nfunctions, 2);
	cr_expect_str_eq(cfg->functions[0].name, "hello");
	cr_expect_str_eq(cfg->functions[0].ops->name, "process");
	cr_expect_str_eq(cfg->functions[1].name, "show");
	cr_expect_str_eq(cfg->functions[1].ops->name, "log");
	cr_assert_eq(cfg->ntriggers, 2);
	for (size_t i = 0; i < 2; i++) {
		const struct td_trigger *t = &cfg->triggers[i];
		const struct td_source_conf *s = &cfg->sources[t->source_index[0]];
		cr_expect_str_eq(t->function, "hello");
		cr_expect_eq(t->invocation, s == demo ? TD_INVOKE_SYNC : TD_INVOKE_ASYNC, "%s",
			     t->name);
	}
	td_config_destroy(cfg);
	td_diag_clear(&d);
}

/* Every example loads, and names every option of the kind it is about. */
Test(config, examples)
{
	set_example_env();
	DIR *dir = opendir("config/examples");
	cr_assert_not_null(dir, "run the tests from the repository root");
	struct dirent *e;
	size_t seen = 0;
	while ((e = readdir(dir))) {
		size_t len = strlen(e->d_name);
		if (len < 5 || strcmp(e->d_name + len - 4, ".cfg") != 0)
			continue;
		char path[512], kind[64];
		snprintf(path, sizeof path, "config/examples/%s", e->d_name);
		snprintf(kind, sizeof kind, "%.*s", (int)(len - 4), e->d_name);
		struct td_diag d = {0};
		struct td_config *cfg = td_config_load(path, &d);
		cr_expect_not_null(cfg, "%s: %s", path, first(&d));
		td_config_destroy(cfg);
		td_diag_clear(&d);

		const struct td_option *opts = NULL;
		if (td_source_kind(kind))
			opts = td_source_kind(kind)->options;
		else if (td_function_kind(kind))
			opts = td_function_kind(kind)->options;
		cr_expect_not_null(opts, "%s: not the name of a kind", path);
		if (!opts)
			continue;
		seen++;
		FILE *f = fopen(path, "r");
		static char text[65536];
		size_t n = fread(text, 1, sizeof text - 1, f);
		text[n] = '\0';
		fclose(f);
		for (const struct td_option *row = opts; row->name; row++) {
			const char *leaf = strrchr(row->name, '.');
			char needle[128];
			snprintf(needle, sizeof needle, "%s = ", leaf ? leaf + 1 : row->name);
			cr_expect(strstr(text, needle) != NULL, "%s does not show option '%s'",
				  path, row->name);
		}
	}
	closedir(dir);
	cr_expect_eq(seen, 9, "one example per kind: %zu", seen);
}

/* Integers beyond 32 bits get libconfig's L from the loader; strings and comments keep
 * their text. */
Test(config, big_integers)
{
	const char *text =
	    "# 5000000000 in a comment\n"
	    "state_dir = \"dir 5000000000\"; // 6000000000\n"
	    "/* 7000000000 */ shutdown_grace = .5;\n"
	    "sources = ( { name = \"m\"; kind = \"mqtt\"; uri = \"tcp://h\"; topics = "
	    "\"t\"; session_expiry = 0x10000000; } );\n";
	struct td_diag d;
	struct td_config *cfg = load(text, &d);
	cr_assert_not_null(cfg, "%s", first(&d));
	cr_expect_str_eq(cfg->global.state_dir, "dir 5000000000");
	cr_expect_eq(cfg->global.shutdown_grace_ms, 500);
	const struct td_source_conf *s = &cfg->sources[0];
	cr_expect_eq(ll_field(s->ops->options, s->opts, "session_expiry"), 268435456000LL);
	td_config_destroy(cfg);
	td_diag_clear(&d);

	static const struct {
		const char *text, *msg;
	} rows[] = {
	    {"sources = ( { name = \"m\"; kind = \"mqtt\"; uri = \"tcp://h\"; topics = \"t\";\n"
	     " session_expiry = 0x100000000; } );",
	     "t.cfg:2: sources[0] \"m\": option 'session_expiry': 4294967296 is out of range "
	     "(0..4294967295)"},
	    {"queue = { max_events = -5000000000; };",
	     "t.cfg:1: option 'queue.max_events': -5000000000 is out of range (1..100000000)"},
	    {"queue = { max_events = 2147483648; };",
	     "t.cfg:1: option 'queue.max_events': 2147483648 is out of range (1..100000000)"},
	    {"queue = { max_events = 0x1FFFFFFFFFFFFFFFF; };",
	     "t.cfg:1: the integer 0x1FFFFFFFFFFFFFFFF does not fit in 64 bits"},
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		cfg = load(rows[i].text, &d);
		cr_expect_null(cfg);
		td_config_destroy(cfg);
		cr_expect_eq(d.n, 1, "row %zu: %zu messages", i, d.n);
		cr_expect_str_eq(first(&d), rows[i].msg, "row %zu: got\n%s", i, first(&d));
		td_diag_clear(&d);
	}
}
