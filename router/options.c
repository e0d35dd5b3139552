/*
 * The option table engine (include/triggerd/config.h): one code path turns a libconfig
 * group into a kind's options struct, as nginx's command tables and Fluent Bit's config
 * maps do. Each row names an option, its type, default, bounds and the offset of its
 * field; td_options_apply() walks the rows (user value or default, type and range checks,
 * `${NAME}` expansion first), then walks the group's members to reject the ones no row
 * names. Every problem becomes one diagnostic with the file and line of the setting, so
 * a file with several mistakes is reported in one go. The same rows print the
 * documentation (td_options_describe) and free the struct (td_options_free).
 *
 * Also here: the diagnostics list, and the value parsers (durations, sizes, listen
 * addresses) with their formatters, which speak the user's units in messages.
 */
#include <triggerd/config.h>
#include <triggerd/errors.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <libconfig.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- Diagnostics -------------------------------------------------------------------- */

void td_diag_add(struct td_diag *diag, const char *file, int line, const char *fmt, ...)
{
	char msg[2048], loc[512] = "";
	va_list ap;

	if (!diag || diag->n > TD_DIAG_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (file && line > 0)
		snprintf(loc, sizeof loc, "%s:%d: ", file, line);
	else if (file)
		snprintf(loc, sizeof loc, "%s: ", file);

	char *text = NULL;
	int rc;
	if (diag->n == TD_DIAG_MAX)
		rc = asprintf(&text, "too many errors: stopped after %d", TD_DIAG_MAX);
	else
		rc = asprintf(&text, "%s%s%s%s", loc, diag->context ? diag->context : "",
			      diag->context ? ": " : "", msg);
	if (rc < 0)
		return;
	char **msgs = realloc(diag->msgs, (diag->n + 1) * sizeof *msgs);
	if (!msgs) {
		free(text);
		return;
	}
	msgs[diag->n++] = text;
	diag->msgs = msgs;
}

void td_diag_print(const struct td_diag *diag, FILE *out)
{
	for (size_t i = 0; i < diag->n; i++)
		fprintf(out, "%s\n", diag->msgs[i]);
}

void td_diag_clear(struct td_diag *diag)
{
	for (size_t i = 0; i < diag->n; i++)
		free(diag->msgs[i]);
	free(diag->msgs);
	diag->msgs = NULL;
	diag->n = 0;
	diag->context = NULL;
}

/* ---- Durations and sizes ------------------------------------------------------------- */

struct unit {
	const char *name;
	long long factor;
};

/* Falling order: a combination ("1h30m") must use them in this order. */
static const struct unit duration_units[] = {
    {"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}, {NULL, 0},
};

static const struct unit size_units[] = {
    {"TB", 1LL << 40},	{"TiB", 1LL << 40}, {"T", 1LL << 40},	{"GB", 1LL << 30},
    {"GiB", 1LL << 30}, {"G", 1LL << 30},   {"MB", 1LL << 20},	{"MiB", 1LL << 20},
    {"M", 1LL << 20},	{"KB", 1LL << 10},  {"KiB", 1LL << 10}, {"K", 1LL << 10},
    {"B", 1},		{NULL, 0},
};

/*
 * Reads "123" or "1.5" at *p: the integer part, the fraction digits as an integer and
 * their count. Returns 0, or -1 when there is no number or it has too many digits.
 */
static int read_decimal(const char **p, long long *ipart, long long *frac, int *fdigits)
{
	const char *s = *p;
	long long ip = 0, fr = 0;
	int nd = 0, nf = 0;

	while (isdigit((unsigned char)*s)) {
		if (nd >= 18)
			return -1;
		ip = ip * 10 + (*s++ - '0');
		nd++;
	}
	if (*s == '.') {
		s++;
		while (isdigit((unsigned char)*s)) {
			if (nf >= 9)
				return -1;
			fr = fr * 10 + (*s++ - '0');
			nf++;
		}
	}
	if (nd == 0 && nf == 0)
		return -1;
	*ipart = ip;
	*frac = fr;
	*fdigits = nf;
	*p = s;
	return 0;
}

/* ipart.frac * factor, exactly; -1 when it overflows or is not a whole number. */
static int scale(long long ip, long long fr, int nf, long long factor, long long *out,
		 bool *inexact)
{
	long long pow10 = 1;
	for (int i = 0; i < nf; i++)
		pow10 *= 10;
	*inexact = false;
	if (ip > LLONG_MAX / factor)
		return -1;
	long long whole = ip * factor;
	/* fr < 10^9 and factor < 2^41 would overflow: split the factor. */
	long long q = factor / pow10, r = factor % pow10;
	long long part = fr * q;
	long long rest = fr * r; /* fr < 10^9, r < 10^9: fits */
	if (rest % pow10 != 0) {
		*inexact = true;
		return -1;
	}
	part += rest / pow10;
	if (whole > LLONG_MAX - part)
		return -1;
	*out = whole + part;
	return 0;
}

int td_duration_parse(const char *text, long long *ms, long long *unit, char *err, size_t errlen)
{
	const char *p = text;
	long long total = 0, smallest = 0, ip, fr;
	int nf, last = -1;
	bool inexact = false;

	if (!*p) {
		snprintf(err, errlen, "empty duration");
		return -TD_EINVAL;
	}
	if (read_decimal(&p, &ip, &fr, &nf) == 0 && *p == '\0') {
		/* A plain number: seconds. */
		if (scale(ip, fr, nf, 1000, &total, &inexact) < 0)
			goto bad_number;
		*ms = total;
		if (unit)
			*unit = 0;
		return 0;
	}
	p = text;
	while (*p) {
		if (read_decimal(&p, &ip, &fr, &nf) < 0)
			goto bad;
		const char *u = p;
		while (isalpha((unsigned char)*p))
			p++;
		size_t ulen = (size_t)(p - u);
		int k;
		for (k = 0; duration_units[k].name; k++)
			if (strlen(duration_units[k].name) == ulen &&
			    strncmp(duration_units[k].name, u, ulen) == 0)
				break;
		if (!duration_units[k].name || ulen == 0)
			goto bad;
		if (k <= last) {
			snprintf(err, errlen,
				 "\"%s\" is not a duration: write the units from the largest to "
				 "the smallest, each once (1h30m)",
				 text);
			return -TD_EINVAL;
		}
		last = k;
		long long v;
		if (scale(ip, fr, nf, duration_units[k].factor, &v, &inexact) < 0 ||
		    total > LLONG_MAX - v)
			goto bad_number;
		total += v;
		smallest = duration_units[k].factor;
	}
	*ms = total;
	if (unit)
		*unit = smallest;
	return 0;
bad_number:
	if (inexact)
		snprintf(err, errlen, "\"%s\" is not a whole number of milliseconds", text);
	else
		snprintf(err, errlen, "\"%s\" is too long a duration", text);
	return -TD_EINVAL;
bad:
	snprintf(err, errlen,
		 "\"%s\" is not a duration (write 250ms, 3s, 5m, 6h, 1d, 1h30m or a number of "
		 "seconds)",
		 text);
	return -TD_EINVAL;
}

int td_size_parse(const char *text, long long *bytes, long long *unit, char *err, size_t errlen)
{
	const char *p = text;
	long long ip, fr, v;
	int nf, k;
	bool inexact = false;

	if (read_decimal(&p, &ip, &fr, &nf) < 0)
		goto bad;
	if (*p == '\0') {
		if (nf > 0 && fr != 0) {
			snprintf(err, errlen, "\"%s\" is not a whole number of bytes", text);
			return -TD_EINVAL;
		}
		*bytes = ip;
		if (unit)
			*unit = 0;
		return 0;
	}
	for (k = 0; size_units[k].name; k++)
		if (strcasecmp(size_units[k].name, p) == 0)
			break;
	if (!size_units[k].name)
		goto bad;
	if (scale(ip, fr, nf, size_units[k].factor, &v, &inexact) < 0) {
		if (inexact)
			snprintf(err, errlen, "\"%s\" is not a whole number of bytes", text);
		else
			snprintf(err, errlen, "\"%s\" is too large a size", text);
		return -TD_EINVAL;
	}
	*bytes = v;
	if (unit)
		*unit = size_units[k].factor;
	return 0;
bad:
	snprintf(err, errlen,
		 "\"%s\" is not a size (write 512B, 16KB, 6MB, 1GB or a number of bytes)", text);
	return -TD_EINVAL;
}

void td_duration_format(long long ms, char *out, size_t cap)
{
	size_t n = 0;

	if (cap == 0)
		return;
	out[0] = '\0';
	if (ms <= 0) {
		snprintf(out, cap, "%llds", ms / 1000);
		return;
	}
	for (int k = 0; duration_units[k].name && n < cap; k++) {
		long long f = duration_units[k].factor;
		if (ms >= f) {
			n += (size_t)snprintf(out + n, cap - n, "%lld%s", ms / f,
					      duration_units[k].name);
			ms %= f;
		}
	}
}

void td_size_format(long long bytes, char *out, size_t cap)
{
	static const struct unit pick[] = {
	    {"TB", 1LL << 40}, {"GB", 1LL << 30}, {"MB", 1LL << 20}, {"KB", 1LL << 10}, {NULL, 0},
	};
	for (int k = 0; pick[k].name; k++) {
		if (bytes != 0 && bytes % pick[k].factor == 0) {
			snprintf(out, cap, "%lld%s", bytes / pick[k].factor, pick[k].name);
			return;
		}
	}
	snprintf(out, cap, "%lldB", bytes);
}

static const char *unit_name(const struct unit *units, long long factor)
{
	for (int k = 0; units[k].name; k++)
		if (units[k].factor == factor)
			return units[k].name;
	return NULL;
}

/* A bound in the unit the user wrote (0: a plain number: seconds or bytes). */
static void format_in_unit(enum td_opt_type type, long long v, long long unit, char *out,
			   size_t cap)
{
	const struct unit *units = type == TD_OPT_DURATION ? duration_units : size_units;
	if (unit == 0) {
		if (type == TD_OPT_SIZE || v % 1000 == 0) {
			snprintf(out, cap, "%lld", type == TD_OPT_SIZE ? v : v / 1000);
			return;
		}
		char frac[8];
		snprintf(frac, sizeof frac, "%03lld", v % 1000);
		for (int i = 2; i > 0 && frac[i] == '0'; i--)
			frac[i] = '\0';
		snprintf(out, cap, "%lld.%s", v / 1000, frac);
		return;
	}
	const char *name = unit_name(units, unit);
	if (name && v % unit == 0) {
		snprintf(out, cap, "%lld%s", v / unit, name);
		return;
	}
	if (type == TD_OPT_DURATION)
		td_duration_format(v, out, cap);
	else
		td_size_format(v, out, cap);
}

/* ---- Listen addresses ---------------------------------------------------------------- */

static bool valid_hostname(const char *h)
{
	size_t len = strlen(h), label = 0;
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i <= len; i++) {
		char c = h[i];
		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63 || h[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)c) && c != '-')
			return false;
		if (label == 0 && c == '-')
			return false;
		label++;
	}
	return true;
}

int td_listen_addr_parse(const char *text, char *host, size_t hostcap, unsigned *port, char *err,
			 size_t errlen)
{
	char buf[256];
	const char *colon, *portstr;
	struct in6_addr a6;
	struct in_addr a4;

	if (strlen(text) >= sizeof buf) {
		snprintf(err, errlen, "address is too long");
		return -TD_EINVAL;
	}
	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		if (!close) {
			snprintf(err, errlen, "\"%s\": missing ']' after the IPv6 address", text);
			return -TD_EINVAL;
		}
		size_t n = (size_t)(close - text - 1);
		memcpy(buf, text + 1, n);
		buf[n] = '\0';
		if (inet_pton(AF_INET6, buf, &a6) != 1) {
			snprintf(err, errlen, "\"%s\": \"%s\" is not an IPv6 address", text, buf);
			return -TD_EINVAL;
		}
		if (close[1] != ':') {
			snprintf(err, errlen, "\"%s\" is not HOST:PORT ([::1]:7070)", text);
			return -TD_EINVAL;
		}
		portstr = close + 2;
	} else {
		colon = strrchr(text, ':');
		if (!colon) {
			snprintf(err, errlen, "\"%s\" is not HOST:PORT (127.0.0.1:7070)", text);
			return -TD_EINVAL;
		}
		size_t n = (size_t)(colon - text);
		memcpy(buf, text, n);
		buf[n] = '\0';
		if (n == 0) {
			snprintf(err, errlen,
				 "\"%s\": missing host (0.0.0.0 listens on every interface)", text);
			return -TD_EINVAL;
		}
		if (strchr(buf, ':')) {
			snprintf(err, errlen,
				 "\"%s\": write an IPv6 address in brackets: [%s]:PORT", text, buf);
			return -TD_EINVAL;
		}
		if (strspn(buf, "0123456789.") == n) {
			if (inet_pton(AF_INET, buf, &a4) != 1) {
				snprintf(err, errlen, "\"%s\": \"%s\" is not an IPv4 address", text,
					 buf);
				return -TD_EINVAL;
			}
		} else if (!valid_hostname(buf)) {
			snprintf(err, errlen, "\"%s\": \"%s\" is not a host name", text, buf);
			return -TD_EINVAL;
		}
		portstr = colon + 1;
	}
	size_t pl = strlen(portstr);
	if (pl == 0 || pl > 5 || strspn(portstr, "0123456789") != pl || atol(portstr) > 65535) {
		snprintf(err, errlen, "\"%s\": the port must be a number from 0 to 65535", text);
		return -TD_EINVAL;
	}
	if (strlen(buf) >= hostcap) {
		snprintf(err, errlen, "\"%s\": host name too long", text);
		return -TD_EINVAL;
	}
	if (host)
		strcpy(host, buf);
	if (port)
		*port = (unsigned)atol(portstr);
	return 0;
}

bool td_listen_addr_is_loopback(const char *text)
{
	char host[256], err[8];
	struct in_addr a4;
	struct in6_addr a6;

	if (td_listen_addr_parse(text, host, sizeof host, NULL, err, sizeof err) < 0)
		return false;
	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}

int td_url_check(const char *url, const char *schemes, char *err, size_t errlen)
{
	const char *rest = NULL;
	/* A URL may carry a password: quote it in messages only when it has no user part. */
	char quoted[240] = "the URL";
	if (!strchr(url, '@'))
		snprintf(quoted, sizeof quoted, "\"%.200s\"", url);

	for (const char *p = schemes; p && !rest;) {
		const char *bar = strchr(p, '|');
		size_t n = bar ? (size_t)(bar - p) : strlen(p);
		if (strncasecmp(url, p, n) == 0)
			rest = url + n;
		p = bar ? bar + 1 : NULL;
	}
	if (!rest) {
		snprintf(err, errlen, "%s must start with %s", quoted, schemes);
		return -TD_EINVAL;
	}
	for (const char *p = url; *p; p++) {
		if ((unsigned char)*p <= ' ' || *p == 0x7f) {
			snprintf(err, errlen, "%s contains a space or a control character", quoted);
			return -TD_EINVAL;
		}
	}
	const char *end = rest + strcspn(rest, "/?#");
	const char *at = memrchr(rest, '@', (size_t)(end - rest));
	const char *host = at ? at + 1 : rest;
	if (host >= end || *host == ':') {
		snprintf(err, errlen, "%s has no host", quoted);
		return -TD_EINVAL;
	}
	return 0;
}

/* ---- The engine ---------------------------------------------------------------------- */

struct apply {
	const struct td_opt_scope *scope;
	struct td_diag *diag;
	bool failed; /* an error was reported */
	bool nomem;
};

/* What a value turned out to be: given, absent (or empty: the same), or wrong. */
enum got { GOT_VALUE, GOT_ABSENT, GOT_ERROR };

#define JSON_MAX_DEPTH 64

static const char *setting_file(const struct apply *a, const config_setting_t *s)
{
	const char *f = s ? config_setting_source_file(s) : NULL;
	return f ? f : a->scope->file;
}

static int setting_line(const config_setting_t *s)
{
	return s ? (int)config_setting_source_line(s) : 0;
}

static void report(struct apply *a, const config_setting_t *s, const char *label, const char *fmt,
		   ...) __attribute__((format(printf, 4, 5)));

static void report(struct apply *a, const config_setting_t *s, const char *label, const char *fmt,
		   ...)
{
	char msg[1536];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	a->failed = true;
	td_diag_add(a->diag, setting_file(a, s), setting_line(s), "%s: %s", label, msg);
}

static const char *type_found(const config_setting_t *s)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_GROUP:
		return "a group";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return "an integer";
	case CONFIG_TYPE_FLOAT:
		return "a number with a fraction";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "true or false";
	case CONFIG_TYPE_ARRAY:
		return "an array";
	case CONFIG_TYPE_LIST:
		return "a list";
	default:
		return "nothing";
	}
}

static void wrong_type(struct apply *a, const config_setting_t *s, const char *label,
		       const char *expected)
{
	report(a, s, label, "expected %s, found %s", expected, type_found(s));
}

/* The member at a dotted path below group, or NULL (also when a step is no group). */
static const config_setting_t *lookup(const config_setting_t *group, const char *path)
{
	char part[128];
	const char *p = path;
	const config_setting_t *s = group;

	while (s && *p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		if (n >= sizeof part || !config_setting_is_group(s))
			return NULL;
		memcpy(part, p, n);
		part[n] = '\0';
		s = config_setting_get_member(s, part);
		p += n + (dot ? 1 : 0);
	}
	return s;
}

/*
 * The text of a string setting after ${NAME} expansion, malloc'ed in *out. GOT_ABSENT
 * for an empty result, GOT_ERROR after reporting.
 */
static enum got expanded(struct apply *a, const config_setting_t *s, const char *label, char **out)
{
	char err[512];
	const char *raw = config_setting_get_string(s);
	char *v = td_config_expand(raw ? raw : "", err, sizeof err);
	if (!v) {
		if (errno == ENOMEM) {
			a->nomem = true;
			return GOT_ERROR;
		}
		report(a, s, label, "%s", err);
		return GOT_ERROR;
	}
	if (!*v) {
		free(v);
		return GOT_ABSENT;
	}
	*out = v;
	return GOT_VALUE;
}

/* A string that stands for a number or a boolean: allowed only when it uses ${. */
static enum got scalar_text(struct apply *a, const config_setting_t *s, const char *label,
			    const char *expected, char **out)
{
	const char *raw = config_setting_get_string(s);
	if (!raw || !strstr(raw, "${")) {
		report(a, s, label, "expected %s, found a string (quotes are only for ${NAME})",
		       expected);
		return GOT_ERROR;
	}
	return expanded(a, s, label, out);
}

static bool parse_ll(const char *t, long long *v)
{
	char *end;
	errno = 0;
	*v = strtoll(t, &end, 10);
	return errno == 0 && end != t && *end == '\0' && !isspace((unsigned char)*t);
}

static bool parse_double(const char *t, double *v)
{
	char *end;
	errno = 0;
	*v = strtod(t, &end);
	return errno == 0 && end != t && *end == '\0' && isfinite(*v) &&
	       !isspace((unsigned char)*t);
}

static int choice_index(const char *choices, const char *v)
{
	size_t vl = strlen(v);
	int i = 0;
	for (const char *p = choices; p; i++) {
		const char *bar = strchr(p, '|');
		size_t n = bar ? (size_t)(bar - p) : strlen(p);
		if (n == vl && strncmp(p, v, n) == 0)
			return i;
		p = bar ? bar + 1 : NULL;
	}
	return -1;
}

static bool has_bounds(const struct td_option *row)
{
	return row->min != 0 || row->max != 0;
}

/* Quoted value for messages, or a placeholder for secrets. */
static const char *shown(const struct td_option *row, const char *v, char *buf, size_t cap)
{
	if (row->flags & TD_OPT_SECRET)
		return "the value";
	snprintf(buf, cap, "\"%.200s\"", v);
	return buf;
}

static char *resolve_path(struct apply *a, char *v)
{
	const char *dir = a->scope->dir;
	if (!dir || !*dir || v[0] == '/' || strcmp(dir, ".") == 0)
		return v;
	char *r;
	const char *sep = dir[strlen(dir) - 1] == '/' ? "" : "/";
	if (asprintf(&r, "%s%s%s", dir, sep, v) < 0) {
		a->nomem = true;
		return v;
	}
	free(v);
	return r;
}

static enum got read_bool(struct apply *a, const config_setting_t *s, const char *label, bool *out)
{
	char *t = NULL;
	enum got g;
	if (config_setting_type(s) == CONFIG_TYPE_BOOL) {
		*out = config_setting_get_bool(s) != 0;
		return GOT_VALUE;
	}
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		wrong_type(a, s, label, "true or false");
		return GOT_ERROR;
	}
	if ((g = scalar_text(a, s, label, "true or false", &t)) != GOT_VALUE)
		return g;
	if (strcmp(t, "true") == 0 || strcmp(t, "false") == 0) {
		*out = t[0] == 't';
	} else {
		report(a, s, label, "\"%.200s\" is not true or false", t);
		g = GOT_ERROR;
	}
	free(t);
	return g;
}

static enum got read_int(struct apply *a, const struct td_option *row, const config_setting_t *s,
			 const char *label, long long *out)
{
	char *t = NULL;
	long long v;
	enum got g = GOT_VALUE;

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		v = config_setting_get_int64(s);
		break;
	case CONFIG_TYPE_STRING:
		if ((g = scalar_text(a, s, label, "an integer", &t)) != GOT_VALUE)
			return g;
		if (!parse_ll(t, &v)) {
			report(a, s, label, "\"%.200s\" is not an integer", t);
			free(t);
			return GOT_ERROR;
		}
		free(t);
		break;
	default:
		wrong_type(a, s, label, "an integer");
		return GOT_ERROR;
	}
	if (has_bounds(row) && ((double)v < row->min || (double)v > row->max)) {
		report(a, s, label, "%lld is out of range (%.0f..%.0f)", v, row->min, row->max);
		return GOT_ERROR;
	}
	*out = v;
	return GOT_VALUE;
}

static enum got read_double(struct apply *a, const struct td_option *row, const config_setting_t *s,
			    const char *label, double *out)
{
	char *t = NULL;
	double v;
	enum got g;

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		v = (double)config_setting_get_int64(s);
		break;
	case CONFIG_TYPE_FLOAT:
		v = config_setting_get_float(s);
		if (!isfinite(v)) {
			report(a, s, label, "the number is not finite");
			return GOT_ERROR;
		}
		break;
	case CONFIG_TYPE_STRING:
		if ((g = scalar_text(a, s, label, "a number", &t)) != GOT_VALUE)
			return g;
		if (!parse_double(t, &v)) {
			report(a, s, label, "\"%.200s\" is not a number", t);
			free(t);
			return GOT_ERROR;
		}
		free(t);
		break;
	default:
		wrong_type(a, s, label, "a number");
		return GOT_ERROR;
	}
	if (has_bounds(row) && (v < row->min || v > row->max)) {
		report(a, s, label, "%g is out of range (%g..%g)", v, row->min, row->max);
		return GOT_ERROR;
	}
	*out = v;
	return GOT_VALUE;
}

static enum got read_string(struct apply *a, const struct td_option *row, const config_setting_t *s,
			    const char *label, char **out)
{
	char *t = NULL, err[512];
	enum got g;

	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		wrong_type(a, s, label, "a string");
		return GOT_ERROR;
	}
	if ((g = expanded(a, s, label, &t)) != GOT_VALUE)
		return g;
	if ((row->flags & TD_OPT_ADDR) &&
	    td_listen_addr_parse(t, NULL, 256, NULL, err, sizeof err) < 0) {
		report(a, s, label, "%s", err);
		free(t);
		return GOT_ERROR;
	}
	if (row->flags & TD_OPT_PATH)
		t = resolve_path(a, t);
	*out = t;
	return GOT_VALUE;
}

static enum got read_enum(struct apply *a, const struct td_option *row, const config_setting_t *s,
			  const char *label, int *out)
{
	char *t = NULL, buf[256];
	enum got g;

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_STRING:
		if ((g = expanded(a, s, label, &t)) != GOT_VALUE)
			return g;
		break;
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		if (asprintf(&t, "%lld", config_setting_get_int64(s)) < 0) {
			a->nomem = true;
			return GOT_ERROR;
		}
		break;
	default:
		report(a, s, label, "expected one of %s, found %s", row->choices, type_found(s));
		return GOT_ERROR;
	}
	int i = choice_index(row->choices, t);
	if (i < 0) {
		report(a, s, label, "%s is not one of %s", shown(row, t, buf, sizeof buf),
		       row->choices);
		free(t);
		return GOT_ERROR;
	}
	free(t);
	*out = i;
	return GOT_VALUE;
}

/* DURATION and SIZE. */
static enum got read_quantity(struct apply *a, const struct td_option *row,
			      const config_setting_t *s, const char *label, long long *out)
{
	bool dur = row->type == TD_OPT_DURATION;
	const char *what = dur ? "a duration" : "a size";
	char *t = NULL, err[512], written[256], lo[64], hi[64];
	long long v, unit = 0;
	enum got g;

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_STRING:
		if ((g = expanded(a, s, label, &t)) != GOT_VALUE)
			return g;
		if ((dur ? td_duration_parse(t, &v, &unit, err, sizeof err)
			 : td_size_parse(t, &v, &unit, err, sizeof err)) < 0) {
			report(a, s, label, "%s", err);
			free(t);
			return GOT_ERROR;
		}
		snprintf(written, sizeof written, "\"%.200s\"", t);
		free(t);
		break;
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		v = config_setting_get_int64(s);
		snprintf(written, sizeof written, "%lld", v);
		if (v < 0) {
			report(a, s, label, "%s must not be negative", written);
			return GOT_ERROR;
		}
		if (dur && v > LLONG_MAX / 1000) {
			report(a, s, label, "%s is too long a duration", written);
			return GOT_ERROR;
		}
		if (dur)
			v *= 1000;
		break;
	case CONFIG_TYPE_FLOAT: {
		double d = config_setting_get_float(s);
		snprintf(written, sizeof written, "%g", d);
		if (!dur) {
			report(a, s, label, "expected a size, found %s: bytes are whole", written);
			return GOT_ERROR;
		}
		if (!isfinite(d) || d < 0 || d > 9e15) {
			report(a, s, label, "%s is not a duration in seconds", written);
			return GOT_ERROR;
		}
		v = llround(d * 1000);
		break;
	}
	default:
		wrong_type(a, s, label, what);
		return GOT_ERROR;
	}
	if (has_bounds(row) && ((double)v < row->min || (double)v > row->max)) {
		format_in_unit(row->type, (long long)row->min, unit, lo, sizeof lo);
		format_in_unit(row->type, (long long)row->max, unit, hi, sizeof hi);
		report(a, s, label, "%s is out of range (%s..%s)", written, lo, hi);
		return GOT_ERROR;
	}
	*out = v;
	return GOT_VALUE;
}

static void strings_free(struct td_strings *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static void map_free(struct td_map *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->keys[i]);
		free(m->values[i]);
	}
	free(m->keys);
	free(m->values);
	m->keys = m->values = NULL;
	m->n = 0;
}

static enum got read_strings(struct apply *a, const struct td_option *row,
			     const config_setting_t *s, const char *label, struct td_strings *out)
{
	struct td_strings l = {0};
	char elabel[256];
	enum got g;
	int n = 1;

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_STRING:
		break;
	case CONFIG_TYPE_ARRAY:
	case CONFIG_TYPE_LIST:
		n = config_setting_length(s);
		if (n == 0)
			return GOT_ABSENT;
		break;
	default:
		wrong_type(a, s, label, "a string or a list of strings");
		return GOT_ERROR;
	}
	l.v = calloc((size_t)n, sizeof *l.v);
	if (!l.v) {
		a->nomem = true;
		return GOT_ERROR;
	}
	g = GOT_VALUE;
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_type(s) == CONFIG_TYPE_STRING
						? s
						: config_setting_get_elem(s, (unsigned)i);
		char *t = NULL;
		if (e != s)
			snprintf(elabel, sizeof elabel, "%s[%d]", label, i);
		else
			snprintf(elabel, sizeof elabel, "%s", label);
		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			wrong_type(a, e, elabel, "a string");
			g = GOT_ERROR;
			continue;
		}
		enum got ge = expanded(a, e, elabel, &t);
		if (ge == GOT_ABSENT && e == s) {
			free(l.v);
			return GOT_ABSENT;
		}
		if (ge == GOT_ABSENT) {
			report(a, e, elabel, "empty value");
			g = GOT_ERROR;
		} else if (ge == GOT_ERROR) {
			g = GOT_ERROR;
		} else {
			if (row->flags & TD_OPT_PATH)
				t = resolve_path(a, t);
			l.v[l.n++] = t;
		}
	}
	if (g != GOT_VALUE) {
		strings_free(&l);
		return g;
	}
	*out = l;
	return GOT_VALUE;
}

/* A scalar as text: strings expanded, numbers and booleans written out. */
static enum got scalar_to_text(struct apply *a, const config_setting_t *s, const char *label,
			       char **out)
{
	int rc = 0;
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_STRING: {
		enum got g = expanded(a, s, label, out);
		if (g == GOT_ABSENT) {
			*out = strdup("");
			if (!*out) {
				a->nomem = true;
				return GOT_ERROR;
			}
			return GOT_VALUE;
		}
		return g;
	}
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		rc = asprintf(out, "%lld", config_setting_get_int64(s));
		break;
	case CONFIG_TYPE_FLOAT:
		if (!isfinite(config_setting_get_float(s))) {
			report(a, s, label, "the number is not finite");
			return GOT_ERROR;
		}
		rc = asprintf(out, "%.17g", config_setting_get_float(s));
		break;
	case CONFIG_TYPE_BOOL:
		rc = asprintf(out, "%s", config_setting_get_bool(s) ? "true" : "false");
		break;
	default:
		wrong_type(a, s, label, "a string");
		return GOT_ERROR;
	}
	if (rc < 0) {
		a->nomem = true;
		return GOT_ERROR;
	}
	return GOT_VALUE;
}

static enum got read_map(struct apply *a, const config_setting_t *s, const char *label,
			 struct td_map *out)
{
	struct td_map m = {0};
	char elabel[256];
	enum got g = GOT_VALUE;

	if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
		wrong_type(a, s, label, "a group of name = \"value\" pairs");
		return GOT_ERROR;
	}
	int n = config_setting_length(s);
	if (n == 0)
		return GOT_ABSENT;
	m.keys = calloc((size_t)n, sizeof *m.keys);
	m.values = calloc((size_t)n, sizeof *m.values);
	if (!m.keys || !m.values) {
		a->nomem = true;
		g = GOT_ERROR;
		goto done;
	}
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *key = config_setting_name(e);
		char *v = NULL;
		/* label is "option 'x'": name the member inside the quotes. */
		snprintf(elabel, sizeof elabel, "%.*s.%s'", (int)strlen(label) - 1, label,
			 key ? key : "?");
		if (scalar_to_text(a, e, elabel, &v) != GOT_VALUE) {
			g = GOT_ERROR;
			continue;
		}
		m.keys[m.n] = strdup(key ? key : "");
		if (!m.keys[m.n]) {
			free(v);
			a->nomem = true;
			g = GOT_ERROR;
			continue;
		}
		m.values[m.n++] = v;
	}
done:
	if (g != GOT_VALUE) {
		map_free(&m);
		return g;
	}
	*out = m;
	return GOT_VALUE;
}

/* libconfig value -> jansson value; NULL after reporting. */
static json_t *to_json(struct apply *a, const config_setting_t *s, const char *label, int depth)
{
	json_t *j = NULL;
	char *t = NULL;

	if (depth > JSON_MAX_DEPTH) {
		report(a, s, label, "nested deeper than %d levels", JSON_MAX_DEPTH);
		return NULL;
	}
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_GROUP:
	case CONFIG_TYPE_ARRAY:
	case CONFIG_TYPE_LIST: {
		bool obj = config_setting_type(s) == CONFIG_TYPE_GROUP;
		j = obj ? json_object() : json_array();
		if (!j)
			goto nomem;
		int n = config_setting_length(s);
		for (int i = 0; i < n; i++) {
			const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
			json_t *v = to_json(a, e, label, depth + 1);
			if (!v) {
				json_decref(j);
				return NULL;
			}
			int rc = obj ? json_object_set_new(j, config_setting_name(e), v)
				     : json_array_append_new(j, v);
			if (rc < 0) {
				json_decref(j);
				goto nomem;
			}
		}
		return j;
	}
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		j = json_integer(config_setting_get_int64(s));
		break;
	case CONFIG_TYPE_FLOAT:
		if (!isfinite(config_setting_get_float(s))) {
			report(a, s, label, "the number is not finite");
			return NULL;
		}
		j = json_real(config_setting_get_float(s));
		break;
	case CONFIG_TYPE_BOOL:
		j = json_boolean(config_setting_get_bool(s));
		break;
	case CONFIG_TYPE_STRING:
		if (expanded(a, s, label, &t) == GOT_ERROR)
			return NULL;
		j = json_string(t ? t : "");
		free(t);
		if (!j) {
			report(a, s, label, "a string in it is not valid UTF-8");
			return NULL;
		}
		return j;
	default:
		report(a, s, label, "cannot be written as JSON");
		return NULL;
	}
	if (j)
		return j;
nomem:
	a->nomem = true;
	return NULL;
}

static enum got read_json(struct apply *a, const config_setting_t *s, const char *label, char **out)
{
	char *t = NULL;
	enum got g;

	if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		json_error_t je;
		if ((g = expanded(a, s, label, &t)) != GOT_VALUE)
			return g;
		json_t *j = json_loads(t, JSON_DECODE_ANY, &je);
		if (!j) {
			report(a, s, label, "not valid JSON: %s (line %d, column %d of the JSON)",
			       je.text, je.line, je.column);
			free(t);
			return GOT_ERROR;
		}
		json_decref(j);
		*out = t;
		return GOT_VALUE;
	}
	json_t *j = to_json(a, s, label, 0);
	if (!j)
		return GOT_ERROR;
	t = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(j);
	if (!t) {
		a->nomem = true;
		return GOT_ERROR;
	}
	*out = t;
	return GOT_VALUE;
}

static enum got read_value(struct apply *a, const struct td_option *row, const config_setting_t *s,
			   void *field)
{
	char label[192];
	snprintf(label, sizeof label, "option '%s'", row->name);

	switch (row->type) {
	case TD_OPT_BOOL:
		return read_bool(a, s, label, field);
	case TD_OPT_INT:
		return read_int(a, row, s, label, field);
	case TD_OPT_DOUBLE:
		return read_double(a, row, s, label, field);
	case TD_OPT_STRING:
		return read_string(a, row, s, label, field);
	case TD_OPT_ENUM:
		return read_enum(a, row, s, label, field);
	case TD_OPT_DURATION:
	case TD_OPT_SIZE:
		return read_quantity(a, row, s, label, field);
	case TD_OPT_STRINGS:
		return read_strings(a, row, s, label, field);
	case TD_OPT_MAP:
		return read_map(a, s, label, field);
	case TD_OPT_JSON:
		return read_json(a, s, label, field);
	}
	return GOT_ERROR;
}

/* Parses a row's default into its field; false when the table itself is wrong. */
static bool apply_default(struct apply *a, const struct td_option *row, void *field)
{
	const char *d = row->def;
	char err[256];
	json_error_t je;
	json_t *j;
	size_t i;

	switch (row->type) {
	case TD_OPT_BOOL:
		if (strcmp(d, "true") != 0 && strcmp(d, "false") != 0)
			return false;
		*(bool *)field = d[0] == 't';
		return true;
	case TD_OPT_INT:
		return parse_ll(d, field);
	case TD_OPT_DOUBLE:
		return parse_double(d, field);
	case TD_OPT_STRING:
		if (!(*(char **)field = strdup(d))) {
			a->nomem = true;
			return true;
		}
		if (row->flags & TD_OPT_PATH)
			*(char **)field = resolve_path(a, *(char **)field);
		return true;
	case TD_OPT_ENUM:
		*(int *)field = choice_index(row->choices, d);
		return *(int *)field >= 0;
	case TD_OPT_DURATION:
		return td_duration_parse(d, field, NULL, err, sizeof err) == 0;
	case TD_OPT_SIZE:
		return td_size_parse(d, field, NULL, err, sizeof err) == 0;
	case TD_OPT_JSON:
		if (!(j = json_loads(d, JSON_DECODE_ANY, &je)))
			return false;
		json_decref(j);
		if (!(*(char **)field = strdup(d)))
			a->nomem = true;
		return true;
	case TD_OPT_STRINGS: {
		struct td_strings *l = field;
		json_t *e;
		if (!(j = json_loads(d, 0, &je)) || !json_is_array(j))
			goto bad_json;
		l->v = calloc(json_array_size(j) + 1, sizeof *l->v);
		if (!l->v)
			goto nomem_json;
		json_array_foreach(j, i, e)
		{
			if (!json_is_string(e))
				goto bad_json;
			if (!(l->v[l->n] = strdup(json_string_value(e))))
				goto nomem_json;
			l->n++;
		}
		json_decref(j);
		return true;
	}
	case TD_OPT_MAP: {
		struct td_map *m = field;
		const char *k;
		json_t *e;
		if (!(j = json_loads(d, 0, &je)) || !json_is_object(j))
			goto bad_json;
		m->keys = calloc(json_object_size(j) + 1, sizeof *m->keys);
		m->values = calloc(json_object_size(j) + 1, sizeof *m->values);
		if (!m->keys || !m->values)
			goto nomem_json;
		json_object_foreach(j, k, e)
		{
			if (!json_is_string(e))
				goto bad_json;
			m->keys[m->n] = strdup(k);
			m->values[m->n] = strdup(json_string_value(e));
			m->n++;
			if (!m->keys[m->n - 1] || !m->values[m->n - 1])
				goto nomem_json;
		}
		json_decref(j);
		return true;
	}
	}
	return false;
nomem_json:
	a->nomem = true;
	json_decref(j);
	return true;
bad_json:
	json_decref(j);
	return false;
}

static size_t edit_distance(const char *x, const char *y)
{
	size_t lx = strlen(x), ly = strlen(y), row[64];
	if (lx >= 63 || ly >= 63)
		return 99;
	for (size_t j = 0; j <= ly; j++)
		row[j] = j;
	for (size_t i = 1; i <= lx; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= ly; j++) {
			size_t up = row[j];
			size_t best = diag + (x[i - 1] != y[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[ly];
}

/* The first `segments` dotted parts of name, in out. */
static void leading(const char *name, int segments, char *out, size_t cap)
{
	const char *p = name;
	for (int i = 0; i < segments && p; i++) {
		p = strchr(p, '.');
		if (p && i + 1 < segments)
			p++;
	}
	size_t n = p ? (size_t)(p - name) : strlen(name);
	snprintf(out, cap, "%.*s", (int)n, name);
}

static void unknown(struct apply *a, const struct td_option *opts, const config_setting_t *s,
		    const char *path)
{
	char best[128] = "", cand[128];
	size_t bestd = 3;
	int segments = 1;
	for (const char *p = path; (p = strchr(p, '.')); p++)
		segments++;
	/* Suggest among the names at the same depth: "lgo" -> "log", "log.levl" -> "log.level". */
	for (const struct td_option *r = opts; r->name; r++) {
		leading(r->name, segments, cand, sizeof cand);
		size_t d = edit_distance(path, cand);
		if (d < bestd) {
			bestd = d;
			snprintf(best, sizeof best, "%s", cand);
		}
	}
	const char *const *o = a->scope->others;
	for (; segments == 1 && o && *o; o++) {
		size_t d = edit_distance(path, *o);
		if (d < bestd) {
			bestd = d;
			snprintf(best, sizeof best, "%s", *o);
		}
	}
	a->failed = true;
	if (*best)
		td_diag_add(a->diag, setting_file(a, s), setting_line(s),
			    "unknown option '%s' (did you mean '%s'?)", path, best);
	else
		td_diag_add(a->diag, setting_file(a, s), setting_line(s), "unknown option '%s'",
			    path);
}

/* Rejects the members of group that no row names. prefix: the dotted path of group. */
static void check_members(struct apply *a, const struct td_option *opts,
			  const config_setting_t *group, const char *prefix)
{
	char path[256];
	int n = config_setting_length(group);

	for (int i = 0; i < n; i++) {
		const config_setting_t *m = config_setting_get_elem(group, (unsigned)i);
		const char *name = config_setting_name(m);
		bool exact = false, parent = false;

		if (!name)
			continue;
		snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", name);
		if (!*prefix) {
			const char *const *o = a->scope->others;
			for (; o && *o && strcmp(*o, name) != 0; o++)
				;
			if (o && *o)
				continue;
		}
		size_t pl = strlen(path);
		for (const struct td_option *r = opts; r->name; r++) {
			if (strcmp(r->name, path) == 0)
				exact = true;
			else if (strncmp(r->name, path, pl) == 0 && r->name[pl] == '.')
				parent = true;
		}
		if (exact)
			continue;
		if (!parent) {
			unknown(a, opts, m, path);
			continue;
		}
		if (!config_setting_is_group(m)) {
			a->failed = true;
			td_diag_add(a->diag, setting_file(a, m), setting_line(m),
				    "option '%s' must be a group: %s = { ... };", path, name);
			continue;
		}
		check_members(a, opts, m, path);
	}
}

int td_options_apply(const struct td_option *opts, void *out, const struct config_setting_t *group,
		     const struct td_opt_scope *scope, struct td_diag *diag)
{
	static const struct td_opt_scope none = {0};
	struct apply a = {.scope = scope ? scope : &none, .diag = diag};

	if (group && !config_setting_is_group(group)) {
		a.failed = true;
		td_diag_add(diag, setting_file(&a, group), setting_line(group),
			    "expected a group { ... }, found %s", type_found(group));
		group = NULL;
	}
	for (const struct td_option *row = opts; row->name; row++) {
		void *field = (char *)out + row->offset;
		const config_setting_t *s = group ? lookup(group, row->name) : NULL;
		enum got g = s ? read_value(&a, row, s, field) : GOT_ABSENT;

		if (g != GOT_ABSENT)
			continue;
		if (row->def) {
			if (!apply_default(&a, row, field)) {
				a.failed = true;
				td_diag_add(diag, a.scope->file, 0,
					    "internal error: option '%s' has an invalid default "
					    "\"%s\"",
					    row->name, row->def);
			}
		} else if (row->flags & TD_OPT_REQUIRED) {
			a.failed = true;
			if (s)
				td_diag_add(diag, setting_file(&a, s), setting_line(s),
					    "option '%s' is required and must not be empty",
					    row->name);
			else
				td_diag_add(diag, setting_file(&a, group), setting_line(group),
					    "option '%s' is required", row->name);
		} else if (row->type == TD_OPT_ENUM) {
			*(int *)field = -1;
		}
	}
	if (group && !a.scope->partial)
		check_members(&a, opts, group, "");
	if (a.nomem)
		return -TD_ENOMEM;
	return a.failed ? -TD_EINVAL : 0;
}

void td_options_free(const struct td_option *opts, void *out)
{
	for (const struct td_option *row = opts; row->name; row++) {
		void *field = (char *)out + row->offset;
		switch (row->type) {
		case TD_OPT_STRING:
		case TD_OPT_JSON:
			free(*(char **)field);
			*(char **)field = NULL;
			break;
		case TD_OPT_STRINGS:
			strings_free(field);
			break;
		case TD_OPT_MAP:
			map_free(field);
			break;
		default:
			break;
		}
	}
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

bool td_options_equal(const struct td_option *opts, const void *a, const void *b)
{
	for (const struct td_option *row = opts; row->name; row++) {
		const void *fa = (const char *)a + row->offset, *fb = (const char *)b + row->offset;
		switch (row->type) {
		case TD_OPT_BOOL:
			if (*(const bool *)fa != *(const bool *)fb)
				return false;
			break;
		case TD_OPT_INT:
		case TD_OPT_DURATION:
		case TD_OPT_SIZE:
			if (*(const long long *)fa != *(const long long *)fb)
				return false;
			break;
		case TD_OPT_DOUBLE:
			if (*(const double *)fa != *(const double *)fb)
				return false;
			break;
		case TD_OPT_ENUM:
			if (*(const int *)fa != *(const int *)fb)
				return false;
			break;
		case TD_OPT_STRING:
		case TD_OPT_JSON:
			if (!str_eq(*(char *const *)fa, *(char *const *)fb))
				return false;
			break;
		case TD_OPT_STRINGS: {
			const struct td_strings *la = fa, *lb = fb;
			if (la->n != lb->n)
				return false;
			for (size_t i = 0; i < la->n; i++)
				if (!str_eq(la->v[i], lb->v[i]))
					return false;
			break;
		}
		case TD_OPT_MAP: {
			const struct td_map *ma = fa, *mb = fb;
			if (ma->n != mb->n)
				return false;
			for (size_t i = 0; i < ma->n; i++)
				if (!str_eq(ma->keys[i], mb->keys[i]) ||
				    !str_eq(ma->values[i], mb->values[i]))
					return false;
			break;
		}
		}
	}
	return true;
}

const struct td_option *td_options_find(const struct td_option *opts, const char *name)
{
	for (const struct td_option *row = opts; row->name; row++)
		if (strcmp(row->name, name) == 0)
			return row;
	return NULL;
}

/* ---- Documentation ------------------------------------------------------------------- */

static const char *const type_names[] = {
    [TD_OPT_BOOL] = "bool",	[TD_OPT_INT] = "int",	      [TD_OPT_DOUBLE] = "number",
    [TD_OPT_STRING] = "string", [TD_OPT_ENUM] = "enum",	      [TD_OPT_DURATION] = "duration",
    [TD_OPT_SIZE] = "size",	[TD_OPT_STRINGS] = "strings", [TD_OPT_MAP] = "map",
    [TD_OPT_JSON] = "json",
};

static void describe_type(const struct td_option *row, char *out, size_t cap)
{
	const char *extra = row->flags & TD_OPT_SECRET ? ", secret"
			    : row->flags & TD_OPT_PATH ? ", path"
			    : row->flags & TD_OPT_ADDR ? ", host:port"
						       : "";
	snprintf(out, cap, "%s%s", type_names[row->type], extra);
}

static void describe_default(const struct td_option *row, char *out, size_t cap)
{
	if (row->flags & TD_OPT_REQUIRED)
		snprintf(out, cap, "(required)");
	else if (!row->def)
		snprintf(out, cap, "-");
	else if (row->flags & TD_OPT_SECRET)
		snprintf(out, cap, "(secret)");
	else if (row->type == TD_OPT_STRING || row->type == TD_OPT_ENUM ||
		 row->type == TD_OPT_DURATION || row->type == TD_OPT_SIZE)
		snprintf(out, cap, "\"%s\"", row->def);
	else
		snprintf(out, cap, "%s", row->def);
}

static void describe_range(const struct td_option *row, char *out, size_t cap)
{
	char lo[64], hi[64];
	out[0] = '\0';
	if (row->type == TD_OPT_ENUM) {
		snprintf(out, cap, "%s", row->choices);
		return;
	}
	if (!has_bounds(row))
		return;
	switch (row->type) {
	case TD_OPT_DURATION:
		td_duration_format((long long)row->min, lo, sizeof lo);
		td_duration_format((long long)row->max, hi, sizeof hi);
		break;
	case TD_OPT_SIZE:
		td_size_format((long long)row->min, lo, sizeof lo);
		td_size_format((long long)row->max, hi, sizeof hi);
		break;
	default:
		snprintf(lo, sizeof lo, "%g", row->min);
		snprintf(hi, sizeof hi, "%g", row->max);
		break;
	}
	snprintf(out, cap, "%s..%s", lo, hi);
}

void td_options_describe(const struct td_option *opts, FILE *out)
{
	char type[64], def[256], range[256];
	int wn = 6, wt = 4, wd = 7, wr = 5;

	for (const struct td_option *row = opts; row->name; row++) {
		describe_type(row, type, sizeof type);
		describe_default(row, def, sizeof def);
		describe_range(row, range, sizeof range);
		if ((int)strlen(row->name) > wn)
			wn = (int)strlen(row->name);
		if ((int)strlen(type) > wt)
			wt = (int)strlen(type);
		if ((int)strlen(def) > wd)
			wd = (int)strlen(def);
		if ((int)strlen(range) > wr)
			wr = (int)strlen(range);
	}
	fprintf(out, "%-*s  %-*s  %-*s  %-*s  %s\n", wn, "OPTION", wt, "TYPE", wd, "DEFAULT", wr,
		"RANGE", "DESCRIPTION");
	for (const struct td_option *row = opts; row->name; row++) {
		describe_type(row, type, sizeof type);
		describe_default(row, def, sizeof def);
		describe_range(row, range, sizeof range);
		fprintf(out, "%-*s  %-*s  %-*s  %-*s  %s\n", wn, row->name, wt, type, wd, def, wr,
			range, row->desc ? row->desc : "");
	}
}
