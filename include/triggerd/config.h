/*
 * Configuration: one libconfig file with global settings, `sources`, `functions` and
 * `triggers`.
 *
 * Options are declared as tables (struct td_option rows: type, name, default, flags,
 * offset, bounds, description), one table per kind, as nginx and Fluent Bit do. One
 * code path applies defaults and user values, rejects unknown names, wrong types and
 * values out of range with "file:line: option: reason", and prints a table as
 * documentation (`triggerctl describe KIND`). `${NAME}` and `${NAME:-default}` in a
 * string take a value from the environment.
 *
 * Ownership: td_config_load() returns a configuration the caller owns and frees with
 * td_config_destroy(); every string, list and options struct inside it belongs to it.
 * A loaded configuration is immutable and may be read from any thread.
 *
 * The file (config/triggerd.cfg and config/examples/ show every option):
 *
 *   state_dir = "/var/lib/triggerd";
 *   log = { level = "info"; format = "text"; };
 *   sources = ( { name = "demo"; kind = "webhook"; path = "/hooks/demo"; }, ... );
 *   functions = ( { name = "hello"; kind = "http"; url = "http://127.0.0.1:8080/"; }, ... );
 *   triggers = ( { name = "t"; sources = ["demo"]; function = "hello"; }, ... );
 *
 * Rules every option follows:
 * - A dotted option name is a nested group: "log.level" is written log = { level = ...; }.
 * - `${NAME}` in any string is replaced by the environment variable NAME (an error when it
 *   is unset); `${NAME:-text}` gives text when NAME is unset or empty; `$$` is one `$`; a
 *   `$` before anything else stays as it is (so "$share/g/t" and "$or" need no escape).
 *   The text after `:-` is literal up to the first `}`. Expansion happens before a value
 *   is checked, so `retries = "${RETRIES:-2}"` works: a number or a boolean may be written
 *   as a string only when that string uses `${`.
 * - An empty string (after expansion) is the same as leaving the option out: its default
 *   applies, or it is an error for a required option (so `token = "${TOKEN:-}"` means no
 *   token when TOKEN is unset).
 * - Durations: "250ms", "3s", "5m", "6h", "1d", combinations in falling order ("1h30m"),
 *   decimals ("1.5s"), or a number of seconds (3, 0.25). Sizes: "512B", "16KB", "6MB",
 *   "1GB" (K, KB and KiB all mean 1024), or a number of bytes.
 * - Integers beyond 32 bits need no `L` suffix (the loader adds it before libconfig sees
 *   the text, since libconfig 1.5 would silently truncate them).
 * - `@include` is refused: one file, with secrets through `${NAME}`.
 * - Relative paths (options flagged TD_OPT_PATH: pattern_file, process `code`, `file:`
 *   destinations) are relative to the folder of the configuration file; `state_dir` is
 *   relative to the working directory.
 * - libconfig counts lines in 16 bits: messages about lines past 65535 wrap.
 */
#ifndef TRIGGERD_CONFIG_H
#define TRIGGERD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum td_opt_type {
	TD_OPT_BOOL,	 /* bool */
	TD_OPT_INT,	 /* long long */
	TD_OPT_DOUBLE,	 /* double */
	TD_OPT_STRING,	 /* char * */
	TD_OPT_ENUM,	 /* int: the index of the value in choices ("sync|async") */
	TD_OPT_DURATION, /* long long milliseconds: "250ms", "3s", "5m", "6h", "1d", or seconds as a
			    number */
	TD_OPT_SIZE,	 /* long long bytes: "512KB", "6MB", "1GB" (powers of 1024), or bytes as a
			    number */
	TD_OPT_STRINGS,	 /* struct td_strings: one string or a list of strings */
	TD_OPT_MAP,	 /* struct td_map: a group of name = "value" pairs (headers, environment) */
	TD_OPT_JSON, /* char *: JSON text, written as a string or as a libconfig group or list */
};

#define TD_OPT_REQUIRED 0x1u /* no default: the user must give it */
#define TD_OPT_SECRET	0x2u /* never printed or logged */
#define TD_OPT_PATH	0x4u /* STRING: a path, relative to the configuration file's folder */
#define TD_OPT_ADDR	0x8u /* STRING: a listen address HOST:PORT (IPv4, [IPv6] or a name) */

/*
 * One row of an option table. Tables end with a row whose name is NULL.
 *
 * def is the default as the user would write it: "3s", "info", "true", "100"; for
 * STRINGS, MAP and JSON it is JSON text (`["POST"]`, `{}`). An option that is neither
 * required nor has a default is left zero (NULL, 0, false; ENUM: -1) when absent, and
 * its desc says what that means ("Default: ..."). Bounds apply when min or max is not 0;
 * DURATION bounds are in milliseconds, SIZE bounds in bytes.
 */
struct td_option {
	enum td_opt_type type;
	const char *name; /* dotted for a nested group: "log.level" is log = { level = ... } */
	const char *def;  /* the default as the user would write it; NULL for none */
	unsigned flags;
	size_t offset;	     /* of the field in the kind's options struct */
	double min, max;     /* bounds (INT, DOUBLE, DURATION in ms, SIZE in bytes); both 0: none */
	const char *choices; /* ENUM: "a|b|c" */
	const char *desc;
};

struct td_strings {
	char **v;
	size_t n;
};

struct td_map {
	char **keys;
	char **values;
	size_t n;
};

/* A list of diagnostics: every error found, not only the first. */
struct td_diag {
	char **msgs;
	size_t n;
	/* Set by the caller while it checks one item (e.g. `sources[1] "orders"`): written
	 * after "file:line: " in every message added meanwhile. Not owned. */
	const char *context;
};
/* Adds "file:line: context: message" (file NULL: no location; line <= 0: file only).
 * After TD_DIAG_MAX messages one last "too many errors" is kept and the rest dropped. */
void td_diag_add(struct td_diag *diag, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void td_diag_print(const struct td_diag *diag, FILE *out);
void td_diag_clear(struct td_diag *diag);
#define TD_DIAG_MAX 200

/* ---- The table engine (router/options.c) ------------------------------------------ */

struct config_setting_t; /* libconfig's */

/* How td_options_apply reads a group. */
struct td_opt_scope {
	const char *file;	   /* for messages about settings libconfig gives no file for */
	const char *dir;	   /* base of TD_OPT_PATH values; NULL: leave them relative */
	const char *const *others; /* member names the caller reads itself (NULL-terminated) */
	bool partial;		   /* read only the table's rows; ignore any other member */
};

/*
 * Fills out (an options struct the caller allocated and zeroed) from the libconfig group
 * (NULL: defaults only): every row gets the user's value or its default. Unknown members,
 * wrong types, bad values, values out of range and missing required options are added
 * to diag with the file and line of the setting. Returns 0, or -TD_EINVAL when it added
 * an error (out is then still consistent: td_options_free() frees it), or -TD_ENOMEM.
 * Strings are expanded (td_config_expand) before they are checked.
 */
int td_options_apply(const struct td_option *opts, void *out, const struct config_setting_t *group,
		     const struct td_opt_scope *scope, struct td_diag *diag);
/* Frees what td_options_apply allocated in out (not out itself) and zeroes those fields. */
void td_options_free(const struct td_option *opts, void *out);
/* True when a and b (two structs the table filled) hold equal values in every row:
 * what a reload uses to tell an unchanged source or function from a changed one. */
bool td_options_equal(const struct td_option *opts, const void *a, const void *b);
/* The row named name (dotted), or NULL. */
const struct td_option *td_options_find(const struct td_option *opts, const char *name);
/*
 * Prints the table as documentation, one row per option: name, type, default,
 * bounds or choices, description; secrets marked "secret" (defaults of secrets are
 * never printed).
 */
void td_options_describe(const struct td_option *opts, FILE *out);

/*
 * Value parsers the engine uses, public for triggerctl and tests. Each returns 0, or
 * -TD_EINVAL with the reason in err. td_duration_parse: ms >= 0; td_size_parse:
 * bytes >= 0. unit (may be NULL) receives the smallest unit the text used, in ms or
 * bytes, so that messages can speak the user's units.
 */
int td_duration_parse(const char *text, long long *ms, long long *unit, char *err, size_t errlen);
int td_size_parse(const char *text, long long *bytes, long long *unit, char *err, size_t errlen);
/* Compact exact forms: 90000 -> "1m30s", 250 -> "250ms", 0 -> "0s"; 6291456 -> "6MB". */
void td_duration_format(long long ms, char *out, size_t cap);
void td_size_format(long long bytes, char *out, size_t cap);
/*
 * A listen address HOST:PORT: HOST is an IPv4 address, an IPv6 address in brackets or a
 * host name; PORT is 0..65535 (0: any free port). host receives HOST without brackets.
 */
int td_listen_addr_parse(const char *text, char *host, size_t hostcap, unsigned *port, char *err,
			 size_t errlen);
/* True for 127.0.0.0/8, ::1 and "localhost". */
bool td_listen_addr_is_loopback(const char *text);
/*
 * For kinds' check callbacks: url starts with one of the "|"-separated schemes
 * ("http://|https://"), has a host after it, and holds no space or control character.
 */
int td_url_check(const char *url, const char *schemes, char *err, size_t errlen);

/*
 * ${NAME} expansion (the rules are above). Returns a malloc'ed string the caller frees,
 * or NULL with the reason in err (which names the variable). Reads the environment: call
 * it while no thread changes the environment.
 */
char *td_config_expand(const char *text, char *err, size_t errlen);

/* ---- The configuration model (router/config.c) ------------------------------------ */

struct td_source_ops;
struct td_function_ops;

enum td_log_format { TD_LOGFMT_TEXT, TD_LOGFMT_JSON };
enum td_invocation_mode { TD_INVOKE_SYNC, TD_INVOKE_ASYNC };

/* The global settings (td_global_options). */
struct td_global {
	char *state_dir; /* "/var/lib/triggerd"; relative: to the working directory */
	int log_level;	 /* enum td_log_level */
	int log_format;	 /* enum td_log_format */
	long long shutdown_grace_ms;
	char *webhook_listen;		 /* HOST:PORT */
	char *admin_listen;		 /* HOST:PORT */
	char *admin_token;		 /* NULL: none (only allowed on a loopback admin.listen) */
	struct td_map admin_credentials; /* access key id -> secret access key (SigV4) */
	long long http_max_body;	 /* bytes */
	long long http_max_header;	 /* bytes */
	long long http_max_connections;
	long long http_request_timeout_ms;
	int queue_durability;	    /* fsync|os|memory: enum td_queue_durability (router/queue.h) */
	long long queue_max_events; /* per function, unless the function sets queue_max */
};

struct td_source_conf {
	char *name;
	const struct td_source_ops *ops;
	void *opts;	  /* the kind's options struct (ops->opts_size bytes) */
	const char *file; /* where it is defined, for runtime messages */
	int line;
};

struct td_function_conf {
	char *name;
	const struct td_function_ops *ops;
	void *opts; /* starts with struct td_function_common */
	const char *file;
	int line;
};

/* One trigger (td_trigger_options fills the fields up to `enabled`). */
struct td_trigger {
	char *name;
	struct td_strings sources; /* source names, at least one */
	char *pattern;		   /* JSON text; NULL: every event matches. From pattern_file
				      when that is given. */
	char *pattern_file;	   /* resolved path, or NULL */
	struct td_strings topic;   /* MQTT topic filters (may be empty) */
	char *function;
	int invocation; /* enum td_invocation_mode */
	long long retries;
	long long max_event_age_ms;
	long long backoff_base_ms;
	long long backoff_cap_ms;
	char *on_success; /* destination or NULL: "file:/p", "http(s)://...", */
	char *
	    on_failure; /* "mqtt://SOURCE/topic", "redis://SOURCE/stream", "kafka://SOURCE/topic" */
	bool enabled;
	/* Filled by the loader: */
	size_t *source_index;  /* sources.n indexes into td_config.sources */
	size_t function_index; /* into td_config.functions */
	const char *file;
	int line;
};

struct td_config {
	char *path; /* the file, or the name given to td_config_load_string */
	struct td_global global;
	struct td_source_conf *sources;
	size_t nsources;
	struct td_function_conf *functions;
	size_t nfunctions;
	struct td_trigger *triggers;
	size_t ntriggers;
};

extern const struct td_option td_global_options[];
extern const struct td_option td_trigger_options[];

/*
 * Loads, expands and validates a configuration file. Returns NULL when anything is
 * wrong, with every error found in diag ("file:line: item: option 'x': why"). Call it
 * from one thread while no thread changes the environment; the result is then
 * immutable and may be shared.
 */
struct td_config *td_config_load(const char *path, struct td_diag *diag);
/* The same from a text; name is used in messages, relative paths are relative to the
 * working directory. */
struct td_config *td_config_load_string(const char *text, const char *name, struct td_diag *diag);
void td_config_destroy(struct td_config *cfg);

/* Lookups by name: NULL when there is none. */
const struct td_source_conf *td_config_source(const struct td_config *cfg, const char *name);
const struct td_function_conf *td_config_function(const struct td_config *cfg, const char *name);
const struct td_trigger *td_config_trigger(const struct td_config *cfg, const char *name);

#endif
