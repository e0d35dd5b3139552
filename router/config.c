/*
 * Loading the configuration file (include/triggerd/config.h): libconfig parses the text,
 * the option tables (router/options.c) fill the structs, and this file ties the parts
 * together: global settings, the `sources`, `functions` and `triggers` lists, the names
 * that refer from one to another, patterns (checked with td_pattern_validate), and the
 * destinations of triggers.
 *
 * Errors are collected, not returned at the first: every item is checked even after an
 * earlier one failed, and each message says where (file:line), which item
 * (`sources[1] "orders"`) and which option. The loader reports into a diag of its own and
 * hands the messages over at the end, so that "did this load fail" never depends on what
 * the caller's diag held before.
 *
 * Before libconfig sees the text, a small scanner (prescan) walks it with libconfig's
 * lexical rules: it refuses `@include` (a file read behind the loader's back) and adds
 * the `L` suffix to integers beyond 32 bits, which libconfig 1.5 would otherwise wrap
 * silently (5000000000 would become 705032704).
 */
#include <triggerd/config.h>
#include <triggerd/errors.h>
#include <triggerd/function.h>
#include <triggerd/log.h>
#include <triggerd/pattern.h>
#include <triggerd/source.h>

#include "../connectors/mqtt_topic.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FILE_SIZE	 (16 << 20) /* the configuration file */
#define MAX_PATTERN_SIZE (1 << 20)  /* a pattern_file */
#define MAX_NAME	 64

/* ---- ${NAME} expansion --------------------------------------------------------------- */

struct buf {
	char *p;
	size_t n, cap;
};

static int buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->n + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return -1;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
	return 0;
}

char *td_config_expand(const char *text, char *err, size_t errlen)
{
	struct buf b = {0};
	const char *p = text;
	char name[129];

	if (buf_add(&b, "", 0) < 0)
		goto nomem;
	while (*p) {
		const char *dollar = strchr(p, '$');
		if (!dollar) {
			if (buf_add(&b, p, strlen(p)) < 0)
				goto nomem;
			break;
		}
		if (buf_add(&b, p, (size_t)(dollar - p)) < 0)
			goto nomem;
		p = dollar;
		if (p[1] == '$') {
			if (buf_add(&b, "$", 1) < 0)
				goto nomem;
			p += 2;
			continue;
		}
		if (p[1] != '{') {
			if (buf_add(&b, "$", 1) < 0)
				goto nomem;
			p++;
			continue;
		}
		const char *q = p + 2;
		size_t n = 0;
		if (isalpha((unsigned char)*q) || *q == '_')
			while (isalnum((unsigned char)q[n]) || q[n] == '_')
				n++;
		if (n == 0) {
			snprintf(err, errlen,
				 "expected a variable name after \"${\" (letters, digits and _; "
				 "write $$ for a literal $)");
			goto invalid;
		}
		if (n >= sizeof name) {
			snprintf(err, errlen, "variable name too long in ${...}");
			goto invalid;
		}
		memcpy(name, q, n);
		name[n] = '\0';
		q += n;
		const char *value = getenv(name);
		if (*q == '}') {
			if (!value) {
				snprintf(err, errlen,
					 "environment variable %s is not set (write ${%s:-default} "
					 "to give a default)",
					 name, name);
				goto invalid;
			}
			if (buf_add(&b, value, strlen(value)) < 0)
				goto nomem;
			p = q + 1;
			continue;
		}
		if (q[0] == ':' && q[1] == '-') {
			const char *close = strchr(q + 2, '}');
			if (!close) {
				snprintf(err, errlen, "unterminated ${%s:-...: missing '}'", name);
				goto invalid;
			}
			if (value && *value) {
				if (buf_add(&b, value, strlen(value)) < 0)
					goto nomem;
			} else if (buf_add(&b, q + 2, (size_t)(close - q - 2)) < 0) {
				goto nomem;
			}
			p = close + 1;
			continue;
		}
		if (*q == '\0')
			snprintf(err, errlen, "unterminated ${%s: missing '}'", name);
		else
			snprintf(err, errlen,
				 "unexpected '%c' in ${%s...}: write ${NAME} or ${NAME:-default}",
				 isprint((unsigned char)*q) ? *q : '?', name);
		goto invalid;
	}
	return b.p;
invalid:
	free(b.p);
	errno = EINVAL;
	return NULL;
nomem:
	free(b.p);
	snprintf(err, errlen, "out of memory");
	errno = ENOMEM;
	return NULL;
}

/* ---- The pre-scan --------------------------------------------------------------------- */

static bool name_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '*';
}

/*
 * Copies text into a new buffer, adding `L` to integers that need 64 bits. Returns the
 * copy, or NULL (with errors in diag, or on ENOMEM with nomem set).
 */
static char *prescan(const char *text, const char *file, struct td_diag *diag, bool *nomem)
{
	struct buf b = {0};
	const char *p = text;
	int line = 1;
	bool bad = false;

	if (buf_add(&b, "", 0) < 0)
		goto nomem;
	while (*p) {
		const char *start = p;
		char c = *p;
		if (c == '\n') {
			line++;
			p++;
		} else if (c == '#' || (c == '/' && p[1] == '/')) {
			while (*p && *p != '\n')
				p++;
		} else if (c == '/' && p[1] == '*') {
			p += 2;
			while (*p && !(p[0] == '*' && p[1] == '/'))
				line += *p++ == '\n';
			if (*p)
				p += 2;
		} else if (c == '"') {
			p++;
			while (*p && *p != '"') {
				if (*p == '\\' && p[1])
					p++;
				line += *p++ == '\n';
			}
			if (*p)
				p++;
		} else if (c == '@') {
			p++;
			while (isalpha((unsigned char)*p))
				p++;
			if (p - start == 8 && strncmp(start, "@include", 8) == 0) {
				td_diag_add(diag, file, line,
					    "@include is not supported: keep the configuration in "
					    "one file and take secrets from the environment with "
					    "${NAME}");
				bad = true;
			}
		} else if (isalpha((unsigned char)c) || c == '*') {
			while (name_char(*p))
				p++;
		} else if (c == '.' && isdigit((unsigned char)p[1])) {
			/* A float without integer part (.5e3): no L to add. */
			p++;
			while (isdigit((unsigned char)*p))
				p++;
			if (*p == 'e' || *p == 'E') {
				p++;
				if (*p == '+' || *p == '-')
					p++;
				while (isdigit((unsigned char)*p))
					p++;
			}
		} else if (isdigit((unsigned char)c) ||
			   ((c == '-' || c == '+') && isdigit((unsigned char)p[1]))) {
			bool neg = c == '-', hex = false, big = false, huge = false;
			unsigned long long v = 0;
			if (c == '-' || c == '+')
				p++;
			if (!neg && c != '+' && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
				hex = true;
				p += 2;
				while (isxdigit((unsigned char)*p)) {
					int d = isdigit((unsigned char)*p)
						    ? *p - '0'
						    : (tolower((unsigned char)*p) - 'a' + 10);
					if (v > (UINT64_MAX >> 4))
						huge = true;
					v = (v << 4) | (unsigned)d;
					p++;
				}
			} else {
				while (isdigit((unsigned char)*p)) {
					if (v > (UINT64_MAX - 9) / 10)
						huge = true;
					v = v * 10 + (unsigned)(*p - '0');
					p++;
				}
				if (*p == '.' || *p == 'e' || *p == 'E') {
					/* A float: libconfig reads it as a double. */
					while (isdigit((unsigned char)*p) || *p == '.')
						p++;
					if (*p == 'e' || *p == 'E') {
						p++;
						if (*p == '+' || *p == '-')
							p++;
						while (isdigit((unsigned char)*p))
							p++;
					}
					goto copy;
				}
			}
			if (*p == 'L')
				goto copy; /* already 64-bit */
			if (hex) {
				big = v > 0x7fffffffULL;
				huge = huge || v > 0x7fffffffffffffffULL;
			} else if (neg) {
				big = v > 0x80000000ULL;
				huge = huge || v > 0x8000000000000000ULL;
			} else {
				big = v > 0x7fffffffULL;
				huge = huge || v > 0x7fffffffffffffffULL;
			}
			if (huge) {
				td_diag_add(diag, file, line,
					    "the integer %.*s does not fit in 64 bits",
					    (int)(p - start), start);
				bad = true;
			} else if (big) {
				if (buf_add(&b, start, (size_t)(p - start)) < 0 ||
				    buf_add(&b, "L", 1) < 0)
					goto nomem;
				continue;
			}
		} else {
			p++;
		}
	copy:
		if (buf_add(&b, start, (size_t)(p - start)) < 0)
			goto nomem;
	}
	if (bad) {
		free(b.p);
		return NULL;
	}
	return b.p;
nomem:
	free(b.p);
	*nomem = true;
	return NULL;
}

/* ---- Tables --------------------------------------------------------------------------- */

#define G(field) offsetof(struct td_global, field)

const struct td_option td_global_options[] = {
    {.type = TD_OPT_STRING,
     .name = "state_dir",
     .def = "/var/lib/triggerd",
     .offset = G(state_dir),
     .desc = "Folder of the durable queue and the cron marks (created if missing); "
	     "relative to the working directory."},
    {.type = TD_OPT_ENUM,
     .name = "log.level",
     .def = "info",
     .offset = G(log_level),
     .choices = "error|warn|info|debug",
     .desc = "Least severe level written to the log."},
    {.type = TD_OPT_ENUM,
     .name = "log.format",
     .def = "text",
     .offset = G(log_format),
     .choices = "text|json",
     .desc = "Log lines as text for people or as JSON lines for machines."},
    {.type = TD_OPT_DURATION,
     .name = "shutdown_grace",
     .def = "10s",
     .offset = G(shutdown_grace_ms),
     .min = 0,
     .max = 600000,
     .desc = "On SIGTERM, how long in-flight invocations may finish before they are "
	     "abandoned (async events stay queued)."},
    {.type = TD_OPT_STRING,
     .name = "webhook.listen",
     .def = "0.0.0.0:7070",
     .flags = TD_OPT_ADDR,
     .offset = G(webhook_listen),
     .desc = "Address of the public webhook listener (one path per webhook source)."},
    {.type = TD_OPT_STRING,
     .name = "admin.listen",
     .def = "127.0.0.1:7071",
     .flags = TD_OPT_ADDR,
     .offset = G(admin_listen),
     .desc = "Address of the admin API: Lambda Invoke API, /metrics, /healthz, /readyz, "
	     "status."},
    {.type = TD_OPT_STRING,
     .name = "admin.token",
     .flags = TD_OPT_SECRET,
     .offset = G(admin_token),
     .desc = "Bearer token the admin API requires. Default: none, which is allowed only "
	     "when admin.listen is a loopback address."},
    {.type = TD_OPT_MAP,
     .name = "admin.credentials",
     .flags = TD_OPT_SECRET,
     .offset = G(admin_credentials),
     .desc = "Access key id = \"secret access key\" pairs accepted in AWS SigV4 signed "
	     "admin requests (aws lambda invoke --endpoint-url). Default: none."},
    {.type = TD_OPT_SIZE,
     .name = "http.max_body",
     .def = "6MB",
     .offset = G(http_max_body),
     .min = 1024,
     .max = 1073741824,
     .desc = "Largest request body the HTTP listeners accept (413 beyond); AWS Lambda's "
	     "synchronous payload limit is 6MB."},
    {.type = TD_OPT_SIZE,
     .name = "http.max_header",
     .def = "16KB",
     .offset = G(http_max_header),
     .min = 1024,
     .max = 1048576,
     .desc = "Largest request header block the HTTP listeners accept."},
    {.type = TD_OPT_INT,
     .name = "http.max_connections",
     .def = "1024",
     .offset = G(http_max_connections),
     .min = 1,
     .max = 100000,
     .desc = "Most open connections per HTTP listener."},
    {.type = TD_OPT_DURATION,
     .name = "http.request_timeout",
     .def = "30s",
     .offset = G(http_request_timeout_ms),
     .min = 1000,
     .max = 900000,
     .desc = "Idle time after which an HTTP connection is closed (a sync webhook waits for "
	     "its function's timeout instead)."},
    {.type = TD_OPT_ENUM,
     .name = "queue.durability",
     .def = "fsync",
     .offset = G(queue_durability),
     .choices = "fsync|os|memory",
     .desc = "fsync: a queued event survives a power loss; os: it survives a crash of "
	     "triggerd, not of the machine; memory: nothing survives a restart."},
    {.type = TD_OPT_INT,
     .name = "queue.max_events",
     .def = "100000",
     .offset = G(queue_max_events),
     .min = 1,
     .max = 100000000,
     .desc = "Most async events waiting per function (unless the function sets "
	     "queue_max); sources are slowed down beyond."},
    {0},
};

#define T(field) offsetof(struct td_trigger, field)

const struct td_option td_trigger_options[] = {
    {.type = TD_OPT_STRING,
     .name = "name",
     .flags = TD_OPT_REQUIRED,
     .offset = T(name),
     .desc = "Unique name of the trigger: letters, digits, '.', '_' and '-', at most 64."},
    {.type = TD_OPT_STRINGS,
     .name = "sources",
     .flags = TD_OPT_REQUIRED,
     .offset = T(sources),
     .desc = "Names of the sources whose events this trigger considers (one or more)."},
    {.type = TD_OPT_JSON,
     .name = "pattern",
     .offset = T(pattern),
     .desc = "EventBridge event pattern, as a JSON string or a libconfig group. Default: "
	     "none: every event of the sources matches."},
    {.type = TD_OPT_STRING,
     .name = "pattern_file",
     .flags = TD_OPT_PATH,
     .offset = T(pattern_file),
     .desc = "File holding the pattern as JSON, instead of pattern. Default: none."},
    {.type = TD_OPT_STRINGS,
     .name = "topic",
     .offset = T(topic),
     .desc = "MQTT topic filters an event's topic must match (mqtt sources). Default: "
	     "none: any topic."},
    {.type = TD_OPT_STRING,
     .name = "function",
     .flags = TD_OPT_REQUIRED,
     .offset = T(function),
     .desc = "Name of the function to invoke."},
    {.type = TD_OPT_ENUM,
     .name = "invocation",
     .def = "async",
     .offset = T(invocation),
     .choices = "sync|async",
     .desc = "sync: the source waits for the result (webhook response; in order for logs); "
	     "async: the event is queued durably, acknowledged and retried."},
    {.type = TD_OPT_INT,
     .name = "retries",
     .def = "2",
     .offset = T(retries),
     .min = 0,
     .max = 10,
     .desc = "Retries of a failed async invocation."},
    {.type = TD_OPT_DURATION,
     .name = "max_event_age",
     .def = "6h",
     .offset = T(max_event_age_ms),
     .min = 60000,
     .max = 21600000,
     .desc = "Oldest an async event may get before it goes to on_failure unprocessed."},
    {.type = TD_OPT_DURATION,
     .name = "backoff.base",
     .def = "1s",
     .offset = T(backoff_base_ms),
     .min = 1,
     .max = 3600000,
     .desc = "First retry delay; it doubles with each attempt, with jitter."},
    {.type = TD_OPT_DURATION,
     .name = "backoff.cap",
     .def = "5m",
     .offset = T(backoff_cap_ms),
     .min = 1,
     .max = 21600000,
     .desc = "Longest retry delay."},
    {.type = TD_OPT_STRING,
     .name = "on_success",
     .offset = T(on_success),
     .desc = "Destination of results: file:PATH, http(s)://URL, mqtt://SOURCE/topic, "
	     "redis://SOURCE/stream, kafka://SOURCE/topic. Default: none."},
    {.type = TD_OPT_STRING,
     .name = "on_failure",
     .offset = T(on_failure),
     .desc = "Destination of events that failed every attempt, with the error and the "
	     "attempt count (a dead-letter queue); same forms as on_success. Default: "
	     "none (logged and dropped)."},
    {.type = TD_OPT_BOOL,
     .name = "enabled",
     .def = "true",
     .offset = T(enabled),
     .desc = "false keeps the trigger in the file but routes nothing to it."},
    {0},
};

/* name and kind of a source or function. */
struct head {
	char *name;
	char *kind;
};

static const struct td_option kind_option[] = {
    {.type = TD_OPT_STRING,
     .name = "kind",
     .flags = TD_OPT_REQUIRED,
     .offset = offsetof(struct head, kind)},
    {0},
};

static const struct td_option required_name_option[] = {
    {.type = TD_OPT_STRING,
     .name = "name",
     .flags = TD_OPT_REQUIRED,
     .offset = offsetof(struct head, name)},
    {0},
};

static const struct td_option name_option[] = {
    {.type = TD_OPT_STRING, .name = "name", .offset = offsetof(struct head, name)},
    {0},
};

static const char *const item_others[] = {"name", "kind", NULL};
static const char *const root_others[] = {"sources", "functions", "triggers", NULL};

/* ---- Loading ------------------------------------------------------------------------- */

struct loader {
	struct td_config *cfg;
	struct td_diag diag; /* the loader's own: moved to the caller's at the end */
	const char *file;
	const char *dir; /* NULL: relative paths stay relative */
	struct td_opt_scope scope;
	const config_setting_t **source_settings; /* per cfg->sources[i] */
	bool nomem;
	char context[160];
};

static int line_of(const config_setting_t *s)
{
	return s ? (int)config_setting_source_line(s) : 0;
}

/* The setting at a dotted path below group, or NULL. */
static const config_setting_t *member(const config_setting_t *group, const char *path)
{
	char part[128];
	const config_setting_t *s = group;
	while (s && *path) {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);
		if (n >= sizeof part || !config_setting_is_group(s))
			return NULL;
		memcpy(part, path, n);
		part[n] = '\0';
		s = config_setting_get_member(s, part);
		path += n + (dot ? 1 : 0);
	}
	return s;
}

/* The line of the value of an option (element i of a list, or the option itself). */
static int option_line(const config_setting_t *item, const char *name, int i)
{
	const config_setting_t *s = member(item, name);
	if (s && i >= 0 && config_setting_is_aggregate(s)) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		if (e)
			return line_of(e);
	}
	return s ? line_of(s) : line_of(item);
}

static bool valid_name(const char *n)
{
	size_t len = strlen(n);
	if (len == 0 || len > MAX_NAME)
		return false;
	for (const char *p = n; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.')
			return false;
	return true;
}

static void set_context(struct loader *l, const char *list, int i, const char *name)
{
	if (name)
		snprintf(l->context, sizeof l->context, "%s[%d] \"%s\"", list, i, name);
	else
		snprintf(l->context, sizeof l->context, "%s[%d]", list, i);
	l->diag.context = l->context;
}

static void check_rc(struct loader *l, int rc)
{
	if (rc == -TD_ENOMEM)
		l->nomem = true;
}

static void load_global(struct loader *l, const config_setting_t *root)
{
	struct td_global *g = &l->cfg->global;
	struct td_opt_scope scope = l->scope;
	scope.others = root_others;

	check_rc(l, td_options_apply(td_global_options, g, root, &scope, &l->diag));
	/* Each check needs its options read: a NULL string here means it was wrong. */
	const config_setting_t *token = member(root, "admin.token");
	bool token_read = !token;
	if (token && config_setting_type(token) == CONFIG_TYPE_STRING) {
		char err[256],
		    *v = td_config_expand(config_setting_get_string(token), err, sizeof err);
		token_read = v != NULL;
		free(v);
	}
	if (g->admin_listen && token_read && !td_listen_addr_is_loopback(g->admin_listen) &&
	    !g->admin_token)
		td_diag_add(&l->diag, l->file, option_line(root, "admin.listen", -1),
			    "option 'admin.listen': \"%s\" is not a loopback address, so "
			    "admin.token is required",
			    g->admin_listen);
}

/*
 * Reads name and kind of element i of a `sources` or `functions` list. Returns the name
 * (owned by *h) when it is valid and not a duplicate among the first n names.
 */
static const char *load_head(struct loader *l, const char *list, int i,
			     const config_setting_t *item, struct head *h, char *const *names,
			     size_t n, int *const lines)
{
	const struct td_opt_scope partial = {.file = l->file, .partial = true};

	set_context(l, list, i, NULL);
	check_rc(l, td_options_apply(required_name_option, h, item, &partial, &l->diag));
	if (h->name && !valid_name(h->name))
		td_diag_add(&l->diag, l->file, option_line(item, "name", -1),
			    "option 'name': \"%.80s\" is not a valid name (letters, digits, '.', "
			    "'_' and '-', at most %d)",
			    h->name, MAX_NAME);
	else if (h->name)
		set_context(l, list, i, h->name);
	/* The kind is read with the name in the context of its messages. */
	check_rc(l, td_options_apply(kind_option, h, item, &partial, &l->diag));
	if (!h->name || !valid_name(h->name))
		return NULL;
	for (size_t j = 0; j < n; j++) {
		if (names[j] && strcmp(names[j], h->name) == 0) {
			td_diag_add(&l->diag, l->file, option_line(item, "name", -1),
				    "duplicate name: %s[%zu] (line %d) is also \"%s\"", list, j,
				    lines[j], h->name);
			return NULL;
		}
	}
	return h->name;
}

static const config_setting_t *get_list(struct loader *l, const config_setting_t *root,
					const char *name)
{
	const config_setting_t *s = config_setting_get_member(root, name);
	if (!s)
		return NULL;
	if (!config_setting_is_list(s)) {
		td_diag_add(&l->diag, l->file, line_of(s),
			    "option '%s' must be a list of groups: %s = ( { ... }, { ... } );",
			    name, name);
		return NULL;
	}
	return s;
}

static bool is_group_item(struct loader *l, const config_setting_t *e)
{
	if (config_setting_is_group(e))
		return true;
	td_diag_add(&l->diag, l->file, line_of(e), "expected a group { name = ...; ... }");
	return false;
}

static void load_sources(struct loader *l, const config_setting_t *root)
{
	struct td_config *cfg = l->cfg;
	const config_setting_t *list = get_list(l, root, "sources");
	int n = list ? config_setting_length(list) : 0;
	char **names;
	int *lines;

	if (n == 0)
		return;
	cfg->sources = calloc((size_t)n, sizeof *cfg->sources);
	l->source_settings = calloc((size_t)n, sizeof *l->source_settings);
	names = calloc((size_t)n, sizeof *names);
	lines = calloc((size_t)n, sizeof *lines);
	if (!cfg->sources || !l->source_settings || !names || !lines) {
		l->nomem = true;
		goto done;
	}
	for (int i = 0; i < n; i++) {
		const config_setting_t *item = config_setting_get_elem(list, (unsigned)i);
		struct td_source_conf *sc = &cfg->sources[cfg->nsources];
		struct head h = {0};

		set_context(l, "sources", i, NULL);
		if (!is_group_item(l, item)) {
			cfg->nsources++; /* keep indexes equal to list positions */
			continue;
		}
		const char *name =
		    load_head(l, "sources", i, item, &h, names, cfg->nsources, lines);
		sc->file = cfg->path;
		sc->line = line_of(item);
		l->source_settings[cfg->nsources] = item;
		if (name) {
			sc->name = h.name;
			h.name = NULL;
		}
		names[cfg->nsources] = sc->name;
		lines[cfg->nsources] = sc->line;
		cfg->nsources++;
		if (h.kind) {
			sc->ops = td_source_kind(h.kind);
			if (!sc->ops) {
				char kinds[256] = "";
				for (size_t k = 0; td_source_kinds[k]; k++)
					snprintf(kinds + strlen(kinds),
						 sizeof kinds - strlen(kinds), "%s%s",
						 k ? ", " : "", td_source_kinds[k]->name);
				td_diag_add(&l->diag, l->file, option_line(item, "kind", -1),
					    "option 'kind': unknown source kind \"%.80s\" (one of: "
					    "%s)",
					    h.kind, kinds);
			}
		}
		td_options_free(required_name_option, &h);
		td_options_free(kind_option, &h);
		if (!sc->ops)
			continue;
		sc->opts = calloc(1, sc->ops->opts_size);
		if (!sc->opts) {
			l->nomem = true;
			continue;
		}
		struct td_opt_scope scope = l->scope;
		scope.others = item_others;
		size_t before = l->diag.n;
		check_rc(l, td_options_apply(sc->ops->options, sc->opts, item, &scope, &l->diag));
		if (l->diag.n == before && !l->nomem) {
			if (sc->ops->finish)
				sc->ops->finish(sc->opts);
			if (sc->ops->check)
				sc->ops->check(sc->opts, l->file, sc->line, &l->diag);
		}
	}
done:
	l->diag.context = NULL;
	free(names);
	free(lines);
}

/* A source kind's unique_option (webhook paths) must differ across its sources. */
static void check_unique(struct loader *l)
{
	struct td_config *cfg = l->cfg;
	for (size_t i = 0; i < cfg->nsources; i++) {
		const struct td_source_conf *a = &cfg->sources[i];
		if (!a->ops || !a->opts || !a->ops->unique_option)
			continue;
		const struct td_option *row =
		    td_options_find(a->ops->options, a->ops->unique_option);
		if (!row || row->type != TD_OPT_STRING)
			continue;
		const char *va = *(char **)((char *)a->opts + row->offset);
		for (size_t j = 0; va && j < i; j++) {
			const struct td_source_conf *b = &cfg->sources[j];
			if (b->ops != a->ops || !b->opts)
				continue;
			const char *vb = *(char **)((char *)b->opts + row->offset);
			if (vb && strcmp(va, vb) == 0) {
				set_context(l, "sources", (int)i, a->name);
				td_diag_add(
				    &l->diag, l->file,
				    option_line(l->source_settings[i], row->name, -1),
				    "option '%s': \"%.200s\" is already used by sources[%zu] "
				    "(line %d)",
				    row->name, va, j, b->line);
				l->diag.context = NULL;
				break;
			}
		}
	}
}

static void load_functions(struct loader *l, const config_setting_t *root)
{
	struct td_config *cfg = l->cfg;
	const config_setting_t *list = get_list(l, root, "functions");
	int n = list ? config_setting_length(list) : 0;
	char **names;
	int *lines;

	if (n == 0)
		return;
	cfg->functions = calloc((size_t)n, sizeof *cfg->functions);
	names = calloc((size_t)n, sizeof *names);
	lines = calloc((size_t)n, sizeof *lines);
	if (!cfg->functions || !names || !lines) {
		l->nomem = true;
		goto done;
	}
	for (int i = 0; i < n; i++) {
		const config_setting_t *item = config_setting_get_elem(list, (unsigned)i);
		struct td_function_conf *fc = &cfg->functions[cfg->nfunctions];
		struct head h = {0};

		set_context(l, "functions", i, NULL);
		if (!is_group_item(l, item)) {
			cfg->nfunctions++; /* keep indexes equal to list positions */
			continue;
		}
		const char *name =
		    load_head(l, "functions", i, item, &h, names, cfg->nfunctions, lines);
		fc->file = cfg->path;
		fc->line = line_of(item);
		if (name) {
			fc->name = h.name;
			h.name = NULL;
		}
		names[cfg->nfunctions] = fc->name;
		lines[cfg->nfunctions] = fc->line;
		cfg->nfunctions++;
		if (h.kind) {
			fc->ops = td_function_kind(h.kind);
			if (!fc->ops) {
				char kinds[256] = "";
				for (size_t k = 0; td_function_kinds[k]; k++)
					snprintf(kinds + strlen(kinds),
						 sizeof kinds - strlen(kinds), "%s%s",
						 k ? ", " : "", td_function_kinds[k]->name);
				td_diag_add(
				    &l->diag, l->file, option_line(item, "kind", -1),
				    "option 'kind': unknown function kind \"%.80s\" (one of: "
				    "%s)",
				    h.kind, kinds);
			}
		}
		td_options_free(required_name_option, &h);
		td_options_free(kind_option, &h);
		if (!fc->ops)
			continue;
		fc->opts = calloc(1, fc->ops->opts_size);
		if (!fc->opts) {
			l->nomem = true;
			continue;
		}
		struct td_opt_scope scope = l->scope;
		scope.others = item_others;
		size_t before = l->diag.n;
		check_rc(l, td_options_apply(fc->ops->options, fc->opts, item, &scope, &l->diag));
		if (l->diag.n == before && !l->nomem) {
			struct td_function_common *common = fc->opts;
			if (common->queue_max == 0)
				common->queue_max = cfg->global.queue_max_events;
			if (fc->ops->finish)
				fc->ops->finish(fc->opts);
			if (fc->ops->check)
				fc->ops->check(fc->opts, l->file, fc->line, &l->diag);
		}
	}
done:
	l->diag.context = NULL;
	free(names);
	free(lines);
}

static const struct td_source_conf *find_source(const struct td_config *cfg, const char *name,
						size_t *index)
{
	for (size_t i = 0; i < cfg->nsources; i++) {
		if (cfg->sources[i].name && strcmp(cfg->sources[i].name, name) == 0) {
			if (index)
				*index = i;
			return &cfg->sources[i];
		}
	}
	return NULL;
}

/* Reads a pattern_file: a regular file of at most MAX_PATTERN_SIZE bytes, no NUL. */
static char *read_text_file(const char *path, size_t max, char *err, size_t errlen)
{
	struct stat st;
	char *text = NULL;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		goto fail;
	}
	if ((unsigned long long)st.st_size > max) {
		snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
		goto fail;
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, text + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	text[got] = '\0';
	if (strlen(text) != got) {
		snprintf(err, errlen, "%s: contains a NUL byte", path);
		goto fail;
	}
	close(fd);
	return text;
fail:
	free(text);
	close(fd);
	return NULL;
}

static bool has_space_or_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			return true;
	return false;
}

/*
 * Checks a destination; "file:" paths are made relative to the configuration's folder
 * (*dest may be replaced). Returns false after writing the reason into err.
 */
static bool check_destination(struct loader *l, char **dest, char *err, size_t errlen)
{
	static const struct {
		const char *scheme, *kind, *what;
	} brokers[] = {
	    {"mqtt://", "mqtt", "topic"},
	    {"redis://", "redis", "stream"},
	    {"kafka://", "kafka", "topic"},
	};
	const char *d = *dest;
	/* A URL may carry a password: quote it only when it has no user part. */
	char q[240] = "the destination";
	if (!strchr(d, '@'))
		snprintf(q, sizeof q, "\"%.200s\"", d);

	if (strncmp(d, "file:", 5) == 0) {
		const char *path = d + 5;
		if (!*path || strncmp(path, "//", 2) == 0) {
			snprintf(err, errlen, "%s: write file:/path/to/file.jsonl", q);
			return false;
		}
		if (path[0] != '/' && l->dir && strcmp(l->dir, ".") != 0) {
			char *r;
			const char *sep = l->dir[strlen(l->dir) - 1] == '/' ? "" : "/";
			if (asprintf(&r, "file:%s%s%s", l->dir, sep, path) < 0) {
				l->nomem = true;
				return true;
			}
			free(*dest);
			*dest = r;
		}
		return true;
	}
	if (strncmp(d, "http://", 7) == 0 || strncmp(d, "https://", 8) == 0) {
		const char *host = d + (d[4] == 's' ? 8 : 7);
		if (!*host || *host == '/' || has_space_or_control(d)) {
			snprintf(err, errlen, "%s is not an http(s) URL with a host", q);
			return false;
		}
		return true;
	}
	for (size_t k = 0; k < sizeof brokers / sizeof brokers[0]; k++) {
		size_t sl = strlen(brokers[k].scheme);
		if (strncmp(d, brokers[k].scheme, sl) != 0)
			continue;
		const char *src = d + sl, *slash = strchr(src, '/');
		if (!slash || slash == src || !slash[1] || has_space_or_control(slash + 1)) {
			snprintf(err, errlen, "%s: write %sSOURCE/%s", q, brokers[k].scheme,
				 brokers[k].what);
			return false;
		}
		char name[MAX_NAME + 1];
		size_t n = (size_t)(slash - src);
		if (n > MAX_NAME) {
			snprintf(err, errlen, "%s: no source named \"%.*s\"", q, (int)n, src);
			return false;
		}
		memcpy(name, src, n);
		name[n] = '\0';
		const struct td_source_conf *sc = find_source(l->cfg, name, NULL);
		if (!sc) {
			snprintf(err, errlen, "%s: no source named \"%s\"", q, name);
			return false;
		}
		if (sc->ops && strcmp(sc->ops->name, brokers[k].kind) != 0) {
			snprintf(err, errlen, "%s: source \"%s\" is a %s source, not %s", q, name,
				 sc->ops->name, brokers[k].kind);
			return false;
		}
		if (k == 0 && strpbrk(slash + 1, "+#")) {
			snprintf(err, errlen, "%s: a topic to publish to has no wildcards", q);
			return false;
		}
		return true;
	}
	snprintf(err, errlen,
		 "%s is not a destination (file:PATH, http(s)://URL, mqtt://SOURCE/topic, "
		 "redis://SOURCE/stream or kafka://SOURCE/topic)",
		 q);
	return false;
}

/*
 * The checks of a trigger beyond its table: pattern, references, destinations. They run
 * even when some option was wrong (each needs only its own option); whole is false
 * then, and the checks that combine options are left out.
 */
static void check_trigger(struct loader *l, struct td_trigger *t, const config_setting_t *item,
			  bool whole)
{
	struct td_config *cfg = l->cfg;
	char err[1024];

	if (t->pattern_file) {
		int line = option_line(item, "pattern_file", -1);
		if (member(item, "pattern")) {
			td_diag_add(&l->diag, l->file, line,
				    "option 'pattern_file': give either pattern or pattern_file, "
				    "not both");
		} else {
			free(t->pattern);
			t->pattern =
			    read_text_file(t->pattern_file, MAX_PATTERN_SIZE, err, sizeof err);
			if (!t->pattern)
				td_diag_add(&l->diag, l->file, line, "option 'pattern_file': %s",
					    err);
			else if (td_pattern_validate(t->pattern, strlen(t->pattern), err,
						     sizeof err) < 0)
				td_diag_add(&l->diag, l->file, line,
					    "option 'pattern_file': invalid pattern in %s: %s",
					    t->pattern_file, err);
		}
	} else if (t->pattern &&
		   td_pattern_validate(t->pattern, strlen(t->pattern), err, sizeof err) < 0) {
		td_diag_add(&l->diag, l->file, option_line(item, "pattern", -1),
			    "option 'pattern': invalid pattern: %s", err);
	}
	for (size_t i = 0; i < t->topic.n; i++)
		if (td_mqtt_filter_validate(t->topic.v[i], err, sizeof err) < 0)
			td_diag_add(&l->diag, l->file, option_line(item, "topic", (int)i),
				    "option 'topic': \"%.200s\": %s", t->topic.v[i], err);

	if (t->sources.n) {
		t->source_index = calloc(t->sources.n, sizeof *t->source_index);
		if (!t->source_index) {
			l->nomem = true;
			return;
		}
	}
	for (size_t i = 0; i < t->sources.n; i++) {
		if (!find_source(cfg, t->sources.v[i], &t->source_index[i]))
			td_diag_add(&l->diag, l->file, option_line(item, "sources", (int)i),
				    "option 'sources': no source named \"%.80s\"", t->sources.v[i]);
	}
	bool found = false;
	for (size_t i = 0; t->function && i < cfg->nfunctions && !found; i++) {
		if (cfg->functions[i].name && strcmp(cfg->functions[i].name, t->function) == 0) {
			t->function_index = i;
			found = true;
		}
	}
	if (t->function && !found)
		td_diag_add(&l->diag, l->file, option_line(item, "function", -1),
			    "option 'function': no function named \"%.80s\"", t->function);
	if (whole && t->backoff_cap_ms < t->backoff_base_ms)
		td_diag_add(&l->diag, l->file, option_line(item, "backoff.cap", -1),
			    "option 'backoff.cap' must not be shorter than backoff.base");
	if (t->on_success && !check_destination(l, &t->on_success, err, sizeof err))
		td_diag_add(&l->diag, l->file, option_line(item, "on_success", -1),
			    "option 'on_success': %s", err);
	if (t->on_failure && !check_destination(l, &t->on_failure, err, sizeof err))
		td_diag_add(&l->diag, l->file, option_line(item, "on_failure", -1),
			    "option 'on_failure': %s", err);
}

static void load_triggers(struct loader *l, const config_setting_t *root)
{
	struct td_config *cfg = l->cfg;
	const config_setting_t *list = get_list(l, root, "triggers");
	int n = list ? config_setting_length(list) : 0;

	if (n == 0)
		return;
	cfg->triggers = calloc((size_t)n, sizeof *cfg->triggers);
	if (!cfg->triggers) {
		l->nomem = true;
		return;
	}
	for (int i = 0; i < n; i++) {
		const config_setting_t *item = config_setting_get_elem(list, (unsigned)i);
		struct td_trigger *t = &cfg->triggers[cfg->ntriggers];
		struct head h = {0};
		struct td_diag scratch = {0};

		set_context(l, "triggers", i, NULL);
		if (!is_group_item(l, item)) {
			cfg->ntriggers++; /* keep indexes equal to list positions */
			continue;
		}
		/* The name first, for the context of every message (errors come below). */
		td_options_apply(name_option, &h, item,
				 &(struct td_opt_scope){.file = l->file, .partial = true},
				 &scratch);
		td_diag_clear(&scratch);
		if (h.name && valid_name(h.name))
			set_context(l, "triggers", i, h.name);
		td_options_free(name_option, &h);

		t->file = cfg->path;
		t->line = line_of(item);
		cfg->ntriggers++;
		size_t before = l->diag.n;
		check_rc(l, td_options_apply(td_trigger_options, t, item, &l->scope, &l->diag));
		if (l->nomem)
			continue;
		if (t->name && !valid_name(t->name)) {
			td_diag_add(
			    &l->diag, l->file, option_line(item, "name", -1),
			    "option 'name': \"%.80s\" is not a valid name (letters, digits, "
			    "'.', '_' and '-', at most %d)",
			    t->name, MAX_NAME);
		} else {
			for (size_t j = 0; t->name && j + 1 < cfg->ntriggers; j++) {
				const struct td_trigger *o = &cfg->triggers[j];
				if (o->name && strcmp(o->name, t->name) == 0) {
					td_diag_add(
					    &l->diag, l->file, option_line(item, "name", -1),
					    "duplicate name: triggers[%zu] (line %d) is also "
					    "\"%s\"",
					    j, o->line, t->name);
					break;
				}
			}
		}
		check_trigger(l, t, item, l->diag.n == before);
	}
	l->diag.context = NULL;
}

static void move_diag(struct td_diag *from, struct td_diag *to)
{
	if (!to || from->n == 0) {
		td_diag_clear(from);
		return;
	}
	char **msgs = realloc(to->msgs, (to->n + from->n) * sizeof *msgs);
	if (!msgs) {
		td_diag_clear(from);
		return;
	}
	memcpy(msgs + to->n, from->msgs, from->n * sizeof *msgs);
	to->msgs = msgs;
	to->n += from->n;
	free(from->msgs);
	from->msgs = NULL;
	from->n = 0;
}

static struct td_config *load_text(const char *text, const char *name, const char *dir,
				   struct td_diag *diag)
{
	struct loader l = {.file = name, .dir = dir};
	config_t lc;
	char *scanned = NULL;
	bool parsed = false;

	l.scope = (struct td_opt_scope){.file = name, .dir = dir};
	l.cfg = calloc(1, sizeof *l.cfg);
	if (!l.cfg || !(l.cfg->path = strdup(name)))
		goto nomem;
	l.file = l.cfg->path;
	l.scope.file = l.cfg->path;

	scanned = prescan(text, l.file, &l.diag, &l.nomem);
	if (!scanned && l.nomem)
		goto nomem;
	if (!scanned)
		goto fail;
	config_init(&lc);
	parsed = true;
	if (!config_read_string(&lc, scanned)) {
		td_diag_add(&l.diag, l.file, config_error_line(&lc), "%s",
			    config_error_text(&lc) ? config_error_text(&lc) : "syntax error");
		goto fail;
	}
	const config_setting_t *root = config_root_setting(&lc);
	load_global(&l, root);
	load_sources(&l, root);
	check_unique(&l);
	load_functions(&l, root);
	load_triggers(&l, root);
	if (l.nomem)
		goto nomem;
	if (l.diag.n)
		goto fail;
	config_destroy(&lc);
	free(scanned);
	free(l.source_settings);
	return l.cfg;
nomem:
	l.diag.context = NULL;
	td_diag_add(&l.diag, name, 0, "out of memory");
fail:
	if (parsed)
		config_destroy(&lc);
	free(scanned);
	free(l.source_settings);
	td_config_destroy(l.cfg);
	move_diag(&l.diag, diag);
	return NULL;
}

struct td_config *td_config_load_string(const char *text, const char *name, struct td_diag *diag)
{
	return load_text(text, name ? name : "<string>", NULL, diag);
}

struct td_config *td_config_load(const char *path, struct td_diag *diag)
{
	char err[512], *dir = NULL, *text = NULL;
	struct td_config *cfg = NULL;

	text = read_text_file(path, MAX_FILE_SIZE, err, sizeof err);
	if (!text) {
		td_diag_add(diag, NULL, 0, "%s", err);
		return NULL;
	}
	const char *slash = strrchr(path, '/');
	if (slash) {
		dir = strndup(path, slash == path ? 1 : (size_t)(slash - path));
		if (!dir) {
			td_diag_add(diag, path, 0, "out of memory");
			goto done;
		}
	}
	cfg = load_text(text, path, dir, diag);
done:
	free(dir);
	free(text);
	return cfg;
}

void td_config_destroy(struct td_config *cfg)
{
	if (!cfg)
		return;
	td_options_free(td_global_options, &cfg->global);
	for (size_t i = 0; i < cfg->nsources; i++) {
		struct td_source_conf *s = &cfg->sources[i];
		if (s->opts)
			td_options_free(s->ops->options, s->opts);
		free(s->opts);
		free(s->name);
	}
	free(cfg->sources);
	for (size_t i = 0; i < cfg->nfunctions; i++) {
		struct td_function_conf *f = &cfg->functions[i];
		if (f->opts)
			td_options_free(f->ops->options, f->opts);
		free(f->opts);
		free(f->name);
	}
	free(cfg->functions);
	for (size_t i = 0; i < cfg->ntriggers; i++) {
		td_options_free(td_trigger_options, &cfg->triggers[i]);
		free(cfg->triggers[i].source_index);
	}
	free(cfg->triggers);
	free(cfg->path);
	free(cfg);
}

const struct td_source_conf *td_config_source(const struct td_config *cfg, const char *name)
{
	return find_source(cfg, name, NULL);
}

const struct td_function_conf *td_config_function(const struct td_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nfunctions; i++)
		if (cfg->functions[i].name && strcmp(cfg->functions[i].name, name) == 0)
			return &cfg->functions[i];
	return NULL;
}

const struct td_trigger *td_config_trigger(const struct td_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->ntriggers; i++)
		if (cfg->triggers[i].name && strcmp(cfg->triggers[i].name, name) == 0)
			return &cfg->triggers[i];
	return NULL;
}
