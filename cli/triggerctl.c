/*
 * triggerctl: the command-line tool beside the daemon. Each subcommand is one row of
 * the command table below and one function; they share the small readers at the top
 * (`@file` arguments, whole files, lines). Exit codes: 0 success or match, 1 no match,
 * 2 bad input or usage (the error goes to stderr).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <triggerd/config.h>
#include <triggerd/errors.h>
#include <triggerd/function.h>
#include <triggerd/pattern.h>
#include <triggerd/source.h>

#include "../connectors/cron_schedule.h"

#define EXIT_NOMATCH 1
#define EXIT_USAGE   2

/* Reads a whole file into a NUL-terminated malloc'ed buffer; NULL with errno set. */
static char *read_file(const char *path, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		n += fread(buf + n, 1, cap - n - 1, f);
		if (n < cap - 1)
			break;
		char *bigger = realloc(buf, cap *= 2);
		if (!bigger) {
			free(buf);
			buf = NULL;
		}
		buf = bigger;
	}
	int failed = ferror(f);
	if (f != stdin)
		fclose(f);
	if (!buf || failed) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

/* An argument that is JSON text, or @file naming a file that holds it. */
static char *json_argument(const char *arg, const char *what)
{
	if (arg[0] != '@')
		return strdup(arg);
	char *text = read_file(arg + 1, NULL);
	if (!text)
		fprintf(stderr, "triggerctl: %s: cannot read %s: %s\n", what, arg + 1,
			strerror(errno));
	return text;
}

static int cmd_test_pattern(int argc, char **argv)
{
	if (argc != 2)
		return -1;
	char *pattern = json_argument(argv[0], "pattern");
	char *event = pattern ? json_argument(argv[1], "event") : NULL;
	int rc = EXIT_USAGE;
	char err[512];
	struct td_pattern_set *set = td_pattern_set_create();
	struct td_matcher *m = NULL;
	if (!event || !set)
		goto done;
	if (td_pattern_set_add(set, 0, pattern, strlen(pattern), err, sizeof err) < 0) {
		fprintf(stderr, "triggerctl: invalid pattern: %s\n", err);
		goto done;
	}
	if (td_pattern_set_compile(set) < 0 || !(m = td_matcher_create(set)))
		goto done;
	td_matcher_set_strict(m, 1); /* the events come from outside: validate them whole */
	const unsigned *ids;
	int n = td_matcher_match(m, event, strlen(event), &ids, err, sizeof err);
	if (n < 0) {
		fprintf(stderr, "triggerctl: invalid event: %s\n", err);
		goto done;
	}
	puts(n > 0 ? "match" : "no match");
	rc = n > 0 ? 0 : EXIT_NOMATCH;
done:
	td_matcher_destroy(m);
	td_pattern_set_destroy(set);
	free(pattern);
	free(event);
	return rc;
}

/* Rules of `triggerctl match`: names by id, in the order first seen. */
struct rule_names {
	char **v;
	size_t n, cap;
};

static long rule_id(struct rule_names *names, const char *name)
{
	for (size_t i = 0; i < names->n; i++)
		if (strcmp(names->v[i], name) == 0)
			return (long)i;
	if (names->n == names->cap) {
		size_t cap = names->cap ? names->cap * 2 : 64;
		char **v = realloc(names->v, cap * sizeof *v);
		if (!v)
			return -1;
		names->v = v;
		names->cap = cap;
	}
	names->v[names->n] = strdup(name);
	return names->v[names->n] ? (long)names->n++ : -1;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmd_match(int argc, char **argv)
{
	if (argc != 2)
		return -1;
	int rc = EXIT_USAGE;
	char err[512];
	struct rule_names names = {0};
	struct td_pattern_set *set = td_pattern_set_create();
	struct td_matcher *m = NULL;
	char **row = NULL;
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	FILE *events = NULL;
	FILE *rules = fopen(argv[0], "r");
	if (!rules) {
		fprintf(stderr, "triggerctl: %s: %s\n", argv[0], strerror(errno));
		goto done;
	}
	ssize_t len;
	while ((len = getline(&line, &cap, rules)) >= 0) {
		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0 || line[0] == '#')
			continue;
		char *tab = strchr(line, '\t');
		if (!tab) {
			fprintf(stderr, "triggerctl: %s:%zu: expected name<TAB>pattern\n", argv[0],
				lineno);
			goto done;
		}
		*tab = '\0';
		long id = rule_id(&names, line);
		if (id < 0)
			goto done;
		if (td_pattern_set_add(set, (unsigned)id, tab + 1, strlen(tab + 1), err,
				       sizeof err) < 0) {
			fprintf(stderr, "triggerctl: %s:%zu: rule %s: %s\n", argv[0], lineno, line,
				err);
			goto done;
		}
	}
	if (td_pattern_set_compile(set) < 0 || !(m = td_matcher_create(set)))
		goto done;
	td_matcher_set_strict(m, 1); /* the events come from outside: validate them whole */
	events = fopen(argv[1], "r");
	if (!events) {
		fprintf(stderr, "triggerctl: %s: %s\n", argv[1], strerror(errno));
		goto done;
	}
	row = calloc(names.n + 1, sizeof *row);
	if (!row)
		goto done;
	lineno = 0;
	while ((len = getline(&line, &cap, events)) >= 0) {
		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		const unsigned *ids;
		int n = td_matcher_match(m, line, (size_t)len, &ids, err, sizeof err);
		if (n < 0) {
			fprintf(stderr, "triggerctl: %s:%zu: invalid event: %s\n", argv[1], lineno,
				err);
			goto done;
		}
		for (int i = 0; i < n; i++)
			row[i] = names.v[ids[i]];
		qsort(row, (size_t)n, sizeof *row, compare_names);
		for (int i = 0; i < n; i++)
			printf("%s%s", i ? "\t" : "", row[i]);
		putchar('\n');
	}
	rc = 0;
done:
	if (rules)
		fclose(rules);
	if (events)
		fclose(events);
	free(line);
	free(row);
	for (size_t i = 0; i < names.n; i++)
		free(names.v[i]);
	free(names.v);
	td_matcher_destroy(m);
	td_pattern_set_destroy(set);
	return rc;
}

static int cmd_validate(int argc, char **argv)
{
	if (argc != 1)
		return -1;
	struct td_diag diag = {0};
	struct td_config *cfg = td_config_load(argv[0], &diag);
	if (!cfg) {
		td_diag_print(&diag, stderr);
		fprintf(stderr, "triggerctl: %s: %zu error%s\n", argv[0], diag.n,
			diag.n == 1 ? "" : "s");
		td_diag_clear(&diag);
		return EXIT_USAGE;
	}
	printf("%s: ok: %zu source%s, %zu function%s, %zu trigger%s\n", argv[0], cfg->nsources,
	       cfg->nsources == 1 ? "" : "s", cfg->nfunctions, cfg->nfunctions == 1 ? "" : "s",
	       cfg->ntriggers, cfg->ntriggers == 1 ? "" : "s");
	td_diag_clear(&diag);
	td_config_destroy(cfg);
	return 0;
}

static int cmd_describe(int argc, char **argv)
{
	if (argc != 1)
		return -1;
	const char *kind = argv[0];
	bool global = strcmp(kind, "global") == 0;
	if (global || strcmp(kind, "trigger") == 0) {
		puts(global ? "global options\n" : "trigger options\n");
		td_options_describe(global ? td_global_options : td_trigger_options, stdout);
		return 0;
	}
	const struct td_source_ops *src = td_source_kind(kind);
	if (src) {
		printf("source kind %s: %s\n\n", src->name, src->summary);
		td_options_describe(src->options, stdout);
		return 0;
	}
	const struct td_function_ops *fn = td_function_kind(kind);
	if (fn) {
		printf("function kind %s: %s\n\n", fn->name, fn->summary);
		td_options_describe(fn->options, stdout);
		return 0;
	}
	fprintf(stderr, "triggerctl: no source or function kind named \"%s\"; kinds:", kind);
	for (size_t i = 0; td_source_kinds[i]; i++)
		fprintf(stderr, " %s", td_source_kinds[i]->name);
	for (size_t i = 0; td_function_kinds[i]; i++)
		fprintf(stderr, " %s", td_function_kinds[i]->name);
	fprintf(stderr, " global trigger\n");
	return EXIT_USAGE;
}

static int parse_time_option(const char *name, const char *text, long long *secs)
{
	char err[256];
	if (td_time_parse_rfc3339(text, secs, err, sizeof err) < 0) {
		fprintf(stderr, "triggerctl: %s %s: %s\n", name, text, err);
		return -1;
	}
	return 0;
}

static int cmd_next_fires(int argc, char **argv)
{
	const char *expr = NULL, *tz = NULL;
	long long after = (long long)time(NULL), start = after, count = 5;
	bool start_given = false;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		bool has_value = i + 1 < argc;
		if (strcmp(a, "--tz") == 0 && has_value) {
			tz = argv[++i];
		} else if (strcmp(a, "--after") == 0 && has_value) {
			if (parse_time_option(a, argv[++i], &after) < 0)
				return EXIT_USAGE;
		} else if (strcmp(a, "--start") == 0 && has_value) {
			if (parse_time_option(a, argv[++i], &start) < 0)
				return EXIT_USAGE;
			start_given = true;
		} else if (strcmp(a, "-n") == 0 && has_value) {
			char *end;
			count = strtoll(argv[++i], &end, 10);
			if (*end || count < 1 || count > 100000) {
				fprintf(stderr, "triggerctl: -n %s: expected 1..100000\n", argv[i]);
				return EXIT_USAGE;
			}
		} else if (a[0] == '-' && a[1]) {
			return -1;
		} else if (!expr) {
			expr = a;
		} else {
			return -1;
		}
	}
	if (!expr)
		return -1;
	if (!start_given)
		start = after;
	char err[512];
	struct td_schedule *s = td_schedule_parse(expr, tz, err, sizeof err);
	if (!s) {
		fprintf(stderr, "triggerctl: invalid schedule \"%s\": %s\n", expr, err);
		return EXIT_USAGE;
	}
	long long t = after;
	for (long long i = 0; i < count; i++) {
		long long next;
		int rc = td_schedule_next(s, t, start, &next);
		if (rc == -TD_ENOTFOUND)
			break;
		if (rc < 0) {
			fprintf(stderr, "triggerctl: cannot compute the next fire after %lld\n", t);
			td_schedule_destroy(s);
			return EXIT_USAGE;
		}
		char out[64];
		td_time_format_rfc3339(next, out, sizeof out);
		puts(out);
		t = next;
	}
	td_schedule_destroy(s);
	return 0;
}

int td_cli_topic_match(int argc, char **argv); /* cli/mqtt_commands.c */
int td_cli_usage(int argc, char **argv);       /* cli/usage_command.c */
int td_cli_invoke(int argc, char **argv);      /* cli/invoke_command.c */

struct command {
	const char *name;
	const char *args;
	const char *help;
	int (*run)(int argc, char **argv);
};

static const struct command commands[] = {
    {"validate", "CONFIG", "check a configuration file; print a summary or every error",
     cmd_validate},
    {"test-pattern", "PATTERN EVENT",
     "match one event against one pattern (JSON text or @file): match / no match",
     cmd_test_pattern},
    {"match", "RULES EVENTS",
     "match each event of EVENTS (JSON lines) against every rule of RULES (name<TAB>pattern "
     "lines); print the names each event matches",
     cmd_match},
    {"describe", "KIND", "print the options of a source or function kind (or global, trigger)",
     cmd_describe},
    {"next-fires", "EXPR [--tz ZONE] [--after RFC3339] [--start RFC3339] [-n N]",
     "print the next N (default 5) fire instants of a schedule after --after (default now)",
     cmd_next_fires},
    {"topic-match", "FILTER TOPIC",
     "whether an MQTT topic name matches a topic filter: match / no match", td_cli_topic_match},
    {"invoke", "FUNCTION [PAYLOAD|@file] [--admin URL] [--token T] [--event]",
     "invoke a function through the Lambda Invoke API", td_cli_invoke},
    {"usage", "[--admin URL] [--token T]",
     "print requests, errors, throttles, billed ms, GB-s, cold starts, p50/p99 per function",
     td_cli_usage},
    {NULL, NULL, NULL, NULL},
};

static void usage(FILE *out)
{
	fputs("NAME\n    triggerctl - the command-line tool of triggerd\n\nSYNOPSIS\n", out);
	for (const struct command *c = commands; c->name; c++)
		fprintf(out, "    triggerctl %s %s\n", c->name, c->args);
	fputs("\nCOMMANDS\n", out);
	for (const struct command *c = commands; c->name; c++)
		fprintf(out, "    %-13s %s\n", c->name, c->help);
	fputs("\nEXIT STATUS\n    0 success or match, 1 no match, 2 invalid input or usage\n", out);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	for (const struct command *c = commands; c->name; c++) {
		if (strcmp(argv[1], c->name) != 0)
			continue;
		int rc = c->run(argc - 2, argv + 2);
		if (rc < 0) {
			fprintf(stderr, "usage: triggerctl %s %s\n", c->name, c->args);
			return EXIT_USAGE;
		}
		return rc;
	}
	fprintf(stderr, "triggerctl: unknown command \"%s\" (see triggerctl --help)\n", argv[1]);
	return EXIT_USAGE;
}
