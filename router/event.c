/*
 * The envelope (see include/triggerd/event.h): one CloudEvents 1.0 event, its
 * attributes as C strings and its payload as the bytes that came.
 *
 * Storage: the seven optional/required core attributes sit in a fixed array indexed by
 * enum core; `specversion` is implicit (always "1.0"); extensions are a small array in
 * the order they were set, each with its CloudEvents type, looked up linearly (there are
 * few, and at most TD_EVENT_MAX_EXTENSIONS). Every setter checks its input completely
 * before it changes anything, so a failed call leaves the event as it was.
 *
 * The payload kind is a function of (bytes, datacontenttype) and is recomputed whenever
 * either changes, with json.c's validator: no DOM, no jansson on that path. The two JSON
 * forms (structured, and the one patterns match) are written by one function with one
 * pass of appends into one pre-sized buffer. Reading structured JSON validates the text
 * once with json.c, walks the members with json.c's walker (document order, exact value
 * text), and has jansson decode the string values. A JSON "data" value is never parsed
 * into a tree: the payload is its exact text, so any valid JSON (huge numbers, deep
 * nesting up to the limit) that td_event_to_json writes, td_event_from_json reads back.
 *
 * HTTP: binary mode maps ce-* headers to attributes (quoted-string unescaping, then one
 * round of percent-decoding, then UTF-8 and attribute checks), Content-Type to
 * `datacontenttype` and the body to the payload; structured mode hands the body to the
 * JSON reader. The reference count is a C11 atomic; an event is immutable once shared.
 */
#include <triggerd/event.h>
#include <triggerd/errors.h>

#include "json.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum core { A_ID, A_SOURCE, A_TYPE, A_SUBJECT, A_TIME, A_DATACONTENTTYPE, A_DATASCHEMA, A_NCORE };

/* The order of the JSON forms and of the HTTP headers. */
static const char *const core_names[A_NCORE] = {
    "id", "source", "type", "subject", "time", "datacontenttype", "dataschema",
};

#define EXT_NAME_MAX 20

struct ext {
	char name[EXT_NAME_MAX + 1];
	enum td_attr_type type;
	char *value;
};

struct td_event {
	atomic_size_t refs;
	char *core[A_NCORE];
	struct ext *ext;
	size_t next;
	size_t ext_cap;
	unsigned char *data; /* NUL-terminated copy, NULL without a payload */
	size_t data_len;
	enum td_data_kind kind;
};

/* Small helpers */

static char lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Case-insensitive (ASCII) comparison of s[0..n) with the lower-case word. */
static bool ieq(const char *s, size_t n, const char *word)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (word[i] == '\0' || lower(s[i]) != word[i])
			return false;
	return word[i] == '\0';
}

static bool istarts(const char *s, size_t n, const char *word)
{
	size_t k = strlen(word);

	return n >= k && ieq(s, k, word);
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static void trim(const char **s, size_t *n)
{
	while (*n && is_ows(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n && is_ows((*s)[*n - 1]))
		(*n)--;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static char *dupn(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* Attribute value checks (each writes what is wrong and where) */

/* A CloudEvents String: UTF-8 without control characters and noncharacters. */
static int check_string(const char *v, size_t len, char *err, size_t errlen)
{
	const unsigned char *s = (const unsigned char *)v;
	size_t i = 0, k;
	unsigned cp;

	while (i < len) {
		if (s[i] >= 0x20 && s[i] < 0x7f) {
			i++;
			continue;
		}
		k = td_utf8_decode(s + i, len - i, &cp);
		if (k == 0)
			return td_fail(err, errlen, "invalid UTF-8 at byte %zu", i);
		if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
			return td_fail(err, errlen,
				       "control character U+%04X at byte %zu is not allowed", cp,
				       i);
		if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) == 0xfffe)
			return td_fail(err, errlen,
				       "noncharacter U+%04X at byte %zu is not allowed", cp, i);
		i += k;
	}
	return 0;
}

static int days_in_month(int y, int m)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return days[m - 1];
}

/* n digits at s[*i]; their value in *out. */
static bool digits(const char *s, size_t len, size_t *i, int n, int *out)
{
	int v = 0;

	for (int k = 0; k < n; k++) {
		if (*i >= len || !is_digit(s[*i]))
			return false;
		v = v * 10 + (s[(*i)++] - '0');
	}
	*out = v;
	return true;
}

/* RFC 3339 section 5.6 date-time. */
static int check_time(const char *s, size_t len, char *err, size_t errlen)
{
	size_t i = 0;
	int y, mo, d, h, mi, sec, oh, om;

#define EXPECT(cond, what)                                                                         \
	do {                                                                                       \
		if (!(cond))                                                                       \
			return td_fail(err, errlen,                                                \
				       "not an RFC 3339 date-time: expected %s at character %zu",  \
				       what, i + 1);                                               \
	} while (0)

	EXPECT(digits(s, len, &i, 4, &y), "a 4-digit year");
	EXPECT(i < len && s[i] == '-', "'-' after the year");
	i++;
	EXPECT(digits(s, len, &i, 2, &mo), "a 2-digit month");
	EXPECT(mo >= 1 && mo <= 12, "a month from 01 to 12");
	EXPECT(i < len && s[i] == '-', "'-' after the month");
	i++;
	EXPECT(digits(s, len, &i, 2, &d), "a 2-digit day");
	EXPECT(d >= 1 && d <= days_in_month(y, mo), "a day that exists in that month");
	EXPECT(i < len && (s[i] == 'T' || s[i] == 't'), "'T' between date and time");
	i++;
	EXPECT(digits(s, len, &i, 2, &h), "a 2-digit hour");
	EXPECT(h <= 23, "an hour from 00 to 23");
	EXPECT(i < len && s[i] == ':', "':' after the hour");
	i++;
	EXPECT(digits(s, len, &i, 2, &mi), "2-digit minutes");
	EXPECT(mi <= 59, "minutes from 00 to 59");
	EXPECT(i < len && s[i] == ':', "':' and seconds after the minutes");
	i++;
	EXPECT(digits(s, len, &i, 2, &sec), "2-digit seconds");
	EXPECT(sec <= 60, "seconds from 00 to 60");
	if (i < len && s[i] == '.') {
		i++;
		EXPECT(i < len && is_digit(s[i]), "a digit after '.'");
		while (i < len && is_digit(s[i]))
			i++;
	}
	EXPECT(i < len, "a time offset ('Z' or +hh:mm)");
	if (s[i] == 'Z' || s[i] == 'z') {
		i++;
	} else {
		EXPECT(s[i] == '+' || s[i] == '-', "a time offset ('Z' or +hh:mm)");
		i++;
		EXPECT(digits(s, len, &i, 2, &oh), "a 2-digit offset hour");
		EXPECT(oh <= 23, "an offset hour from 00 to 23");
		EXPECT(i < len && s[i] == ':', "':' in the offset (+hh:mm)");
		i++;
		EXPECT(digits(s, len, &i, 2, &om), "2-digit offset minutes");
		EXPECT(om <= 59, "offset minutes from 00 to 59");
	}
	EXPECT(i == len, "the end of the value");
#undef EXPECT
	return 0;
}

/* RFC 7230 tchar: the characters of a token. */
static bool is_tchar(char c)
{
	return is_alpha(c) || is_digit(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static size_t token(const char *s, size_t len, size_t i)
{
	while (i < len && is_tchar(s[i]))
		i++;
	return i;
}

/* RFC 2046 media type, written as RFC 7231 3.1.1.1 has it: type "/" subtype and
 * parameters (OWS ";" OWS token "=" (token / quoted-string)); empty parameters allowed. */
static int check_media_type(const char *s, size_t len, char *err, size_t errlen)
{
	size_t i = 0, j;

#define EXPECT(cond, what)                                                                         \
	do {                                                                                       \
		if (!(cond))                                                                       \
			return td_fail(err, errlen,                                                \
				       "not an RFC 2046 media type: expected %s at character %zu", \
				       what, i + 1);                                               \
	} while (0)

	if (len && is_ows(s[len - 1]))
		return td_fail(err, errlen,
			       "not an RFC 2046 media type: whitespace at the end (character %zu)",
			       len);
	j = token(s, len, i);
	EXPECT(j > i, "a type (like \"application\")");
	i = j;
	EXPECT(i < len && s[i] == '/', "'/' after the type");
	i++;
	j = token(s, len, i);
	EXPECT(j > i, "a subtype after '/'");
	i = j;
	for (;;) {
		while (i < len && is_ows(s[i]))
			i++;
		if (i == len)
			break;
		EXPECT(s[i] == ';', "';' before a parameter");
		i++;
		while (i < len && is_ows(s[i]))
			i++;
		if (i == len || s[i] == ';')
			continue;
		j = token(s, len, i);
		EXPECT(j > i, "a parameter name");
		i = j;
		EXPECT(i < len && s[i] == '=', "'=' after the parameter name");
		i++;
		if (i < len && s[i] == '"') {
			i++;
			while (i < len && s[i] != '"') {
				if (s[i] == '\\')
					i++;
				i++;
			}
			EXPECT(i < len, "a closing '\"'");
			i++;
		} else {
			j = token(s, len, i);
			EXPECT(j > i, "a parameter value");
			i = j;
		}
	}
#undef EXPECT
	return 0;
}

/* RFC 3986 URI: scheme ":" and then only URI characters, with valid %XX escapes. */
static int check_uri(const char *s, size_t len, char *err, size_t errlen)
{
	size_t i = 0;
	bool fragment = false;

	if (len == 0 || !is_alpha(s[0]))
		return td_fail(err, errlen,
			       "not a URI: expected a scheme (like \"https:\") at character 1");
	while (i < len &&
	       (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'))
		i++;
	if (i == len || s[i] != ':')
		return td_fail(err, errlen,
			       "not a URI: expected ':' after the scheme at character %zu", i + 1);
	for (i++; i < len; i++) {
		char c = s[i];
		if (c == '%') {
			if (i + 2 >= len || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0)
				return td_fail(
				    err, errlen,
				    "not a URI: '%%' must start a %%XX escape at character %zu",
				    i + 1);
			i += 2;
			continue;
		}
		if (c == '#') {
			if (fragment)
				return td_fail(err, errlen,
					       "not a URI: a second '#' at character %zu", i + 1);
			fragment = true;
			continue;
		}
		if (is_alpha(c) || is_digit(c) || (c && strchr("-._~:/?[]@!$&'()*+,;=", c)))
			continue;
		return td_fail(err, errlen, "not a URI: character %zu must be percent-encoded",
			       i + 1);
	}
	return 0;
}

static bool ext_name_valid(const char *name, size_t n)
{
	if (n == 0 || n > EXT_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || is_digit(name[i])))
			return false;
	return true;
}

/* -?(0|[1-9][0-9]*) within the 32-bit range. */
static bool int_text_valid(const char *s, size_t len)
{
	size_t i = 0;
	long long v = 0;
	bool neg = false;

	if (i < len && s[i] == '-') {
		neg = true;
		i++;
	}
	if (i >= len || len - i > 10)
		return false;
	if (s[i] == '0' && len - i > 1)
		return false;
	for (; i < len; i++) {
		if (!is_digit(s[i]))
			return false;
		v = v * 10 + (s[i] - '0');
	}
	return neg ? v <= 2147483648LL : v <= 2147483647LL;
}

/* Payload classification */

bool td_event_content_type_is_json(const char *ct)
{
	const char *slash, *end;
	size_t n;

	if (!ct)
		return true;
	slash = strchr(ct, '/');
	if (!slash)
		return false;
	end = slash + 1;
	while (*end && *end != ';' && !is_ows(*end))
		end++;
	n = (size_t)(end - (slash + 1));
	if (ieq(slash + 1, n, "json"))
		return true;
	return n >= 5 && ieq(end - 5, 5, "+json");
}

static enum td_data_kind classify(const unsigned char *p, size_t len, const char *ct)
{
	if (!p)
		return TD_DATA_NONE;
	if (td_event_content_type_is_json(ct) &&
	    td_json_valid((const char *)p, len, TD_EVENT_DATA_MAX_DEPTH))
		return TD_DATA_JSON;
	if (td_utf8_valid(p, len, NULL))
		return TD_DATA_TEXT;
	return TD_DATA_BINARY;
}

/* Life cycle */

struct td_event *td_event_create(void)
{
	struct td_event *ev = calloc(1, sizeof(*ev));

	if (!ev)
		return NULL;
	atomic_init(&ev->refs, 1);
	ev->kind = TD_DATA_NONE;
	return ev;
}

struct td_event *td_event_ref(struct td_event *ev)
{
	atomic_fetch_add_explicit(&ev->refs, 1, memory_order_relaxed);
	return ev;
}

void td_event_unref(struct td_event *ev)
{
	if (!ev)
		return;
	if (atomic_fetch_sub_explicit(&ev->refs, 1, memory_order_release) != 1)
		return;
	atomic_thread_fence(memory_order_acquire);
	for (int i = 0; i < A_NCORE; i++)
		free(ev->core[i]);
	for (size_t i = 0; i < ev->next; i++)
		free(ev->ext[i].value);
	free(ev->ext);
	free(ev->data);
	free(ev);
}

/* Setters */

static int core_index(const char *name)
{
	for (int i = 0; i < A_NCORE; i++)
		if (strcmp(name, core_names[i]) == 0)
			return i;
	return -1;
}

static struct ext *find_ext(const struct td_event *ev, const char *name)
{
	for (size_t i = 0; i < ev->next; i++)
		if (strcmp(ev->ext[i].name, name) == 0)
			return &ev->ext[i];
	return NULL;
}

static int check_core(int ci, const char *v, size_t len, char *err, size_t errlen)
{
	switch (ci) {
	case A_TIME:
		return check_time(v, len, err, errlen);
	case A_DATACONTENTTYPE:
		return check_media_type(v, len, err, errlen);
	case A_DATASCHEMA:
		return check_uri(v, len, err, errlen);
	default:
		return 0;
	}
}

/*
 * Every setter ends here. err names the attribute: "attribute \"time\": not an RFC 3339
 * date-time: ...".
 */
static int set_attr(struct td_event *ev, const char *name, const char *value, size_t len,
		    enum td_attr_type type, char *err, size_t errlen)
{
	char msg[192], sv[64];
	struct ext *x;
	char *copy;
	int ci, rc;

	if (!ev || !name)
		return td_fail(err, errlen, "no event or no attribute name");
	if (strcmp(name, "data") == 0 || strcmp(name, "data_base64") == 0)
		return td_fail(err, errlen, "\"%s\" is the payload, not an attribute", name);
	if (strcmp(name, "specversion") == 0) {
		if (!value || type != TD_ATTR_STRING || len != 3 || memcmp(value, "1.0", 3) != 0)
			return td_fail(
			    err, errlen,
			    "attribute \"specversion\": \"%s\" is not supported, only \"1.0\"",
			    value ? td_shown(value, len, sv) : "(none)");
		return 0;
	}
	ci = core_index(name);
	if (ci < 0 && !ext_name_valid(name, strlen(name)))
		return td_fail(
		    err, errlen,
		    "invalid attribute name \"%s\": extension names are 1 to 20 lower-case "
		    "letters and digits",
		    td_shown(name, strlen(name), sv));
	if (ci >= 0 && type != TD_ATTR_STRING)
		return td_fail(err, errlen, "attribute \"%s\" is a String", name);
	if (value) {
		switch (type) {
		case TD_ATTR_STRING:
			rc = check_string(value, len, msg, sizeof(msg));
			if (rc == 0 && ci >= 0 && len == 0)
				rc = td_fail(msg, sizeof(msg), "must not be empty");
			if (rc == 0 && ci >= 0)
				rc = check_core(ci, value, len, msg, sizeof(msg));
			if (rc < 0)
				return td_fail(err, errlen, "attribute \"%s\": %s", name, msg);
			break;
		case TD_ATTR_INTEGER:
			if (!int_text_valid(value, len))
				return td_fail(
				    err, errlen,
				    "extension \"%s\": \"%s\" is not a CloudEvents Integer (a "
				    "whole number from -2147483648 to 2147483647)",
				    name, td_shown(value, len, sv));
			break;
		case TD_ATTR_BOOLEAN:
			if (!((len == 4 && memcmp(value, "true", 4) == 0) ||
			      (len == 5 && memcmp(value, "false", 5) == 0)))
				return td_fail(
				    err, errlen,
				    "extension \"%s\": \"%s\" is not a Boolean (true or false)",
				    name, td_shown(value, len, sv));
			break;
		default:
			return td_fail(err, errlen, "attribute \"%s\": unknown type %d", name,
				       (int)type);
		}
	}
	if (ci >= 0) {
		copy = value ? dupn(value, len) : NULL;
		if (value && !copy)
			goto nomem;
		free(ev->core[ci]);
		ev->core[ci] = copy;
		if (ci == A_DATACONTENTTYPE)
			ev->kind = classify(ev->data, ev->data_len, copy);
		return 0;
	}
	x = find_ext(ev, name);
	if (!value) {
		if (x) {
			free(x->value);
			memmove(x, x + 1, (size_t)(ev->ext + ev->next - (x + 1)) * sizeof(*x));
			ev->next--;
		}
		return 0;
	}
	if (!x && ev->next >= TD_EVENT_MAX_EXTENSIONS)
		return td_fail(err, errlen, "extension \"%s\": more than %d extensions", name,
			       TD_EVENT_MAX_EXTENSIONS);
	copy = dupn(value, len);
	if (!copy)
		goto nomem;
	if (!x) {
		if (ev->next == ev->ext_cap) {
			size_t cap = ev->ext_cap ? ev->ext_cap * 2 : 4;
			struct ext *p = realloc(ev->ext, cap * sizeof(*p));
			if (!p) {
				free(copy);
				goto nomem;
			}
			ev->ext = p;
			ev->ext_cap = cap;
		}
		x = &ev->ext[ev->next++];
		snprintf(x->name, sizeof(x->name), "%s", name);
		x->value = NULL;
	}
	free(x->value);
	x->value = copy;
	x->type = type;
	return 0;
nomem:
	if (err && errlen)
		snprintf(err, errlen, "out of memory");
	return -TD_ENOMEM;
}

int td_event_setn(struct td_event *ev, const char *name, const char *value, size_t len)
{
	return set_attr(ev, name, value, len, TD_ATTR_STRING, NULL, 0);
}

int td_event_set(struct td_event *ev, const char *name, const char *value)
{
	return set_attr(ev, name, value, value ? strlen(value) : 0, TD_ATTR_STRING, NULL, 0);
}

int td_event_set_typed(struct td_event *ev, const char *name, const char *value, size_t len,
		       enum td_attr_type type)
{
	return set_attr(ev, name, value, len, type, NULL, 0);
}

int td_event_set_int(struct td_event *ev, const char *name, long long value)
{
	char buf[24];
	int n = snprintf(buf, sizeof(buf), "%lld", value);

	return set_attr(ev, name, buf, (size_t)n, TD_ATTR_INTEGER, NULL, 0);
}

int td_event_set_bool(struct td_event *ev, const char *name, bool value)
{
	return set_attr(ev, name, value ? "true" : "false", value ? 4 : 5, TD_ATTR_BOOLEAN, NULL,
			0);
}

int td_event_set_time_ms(struct td_event *ev, long long unix_ms)
{
	long long secs = unix_ms / 1000, ms = unix_ms % 1000;
	char buf[40];
	struct tm tm;
	time_t t;
	int n;

	if (ms < 0) {
		ms += 1000;
		secs--;
	}
	t = (time_t)secs;
	if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999)
		return -TD_EINVAL;
	n = snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)ms);
	return set_attr(ev, "time", buf, (size_t)n, TD_ATTR_STRING, NULL, 0);
}

/*
 * Replaces the payload (p NULL: none) and classifies it with the content type as set.
 * valid_json: the caller knows the bytes are one JSON value within
 * TD_EVENT_DATA_MAX_DEPTH and the content type is JSON-like (spares a second pass).
 */
static int set_payload_as(struct td_event *ev, const void *p, size_t len, bool valid_json)
{
	unsigned char *copy = NULL;

	if (p) {
		copy = malloc(len + 1);
		if (!copy)
			return -TD_ENOMEM;
		if (len)
			memcpy(copy, p, len);
		copy[len] = '\0';
	}
	free(ev->data);
	ev->data = copy;
	ev->data_len = p ? len : 0;
	ev->kind = valid_json && p ? TD_DATA_JSON
				   : classify(ev->data, ev->data_len, ev->core[A_DATACONTENTTYPE]);
	return 0;
}

static int set_payload(struct td_event *ev, const void *p, size_t len)
{
	return set_payload_as(ev, p, len, false);
}

int td_event_set_data(struct td_event *ev, const void *data, size_t len, const char *content_type)
{
	size_t n = content_type ? strlen(content_type) : 0;
	char *ct = NULL;

	if (!ev || (!data && len))
		return -TD_EINVAL;
	if (content_type) {
		if (n == 0 || check_string(content_type, n, NULL, 0) < 0 ||
		    check_media_type(content_type, n, NULL, 0) < 0)
			return -TD_EINVAL;
		ct = dupn(content_type, n);
		if (!ct)
			return -TD_ENOMEM;
	}
	/* Install the content type first so that set_payload classifies with it; if the
	 * payload cannot be copied, put the old one back: the event stays as it was. */
	if (ct) {
		char *old = ev->core[A_DATACONTENTTYPE];
		ev->core[A_DATACONTENTTYPE] = ct;
		if (set_payload(ev, data, len) < 0) {
			ev->core[A_DATACONTENTTYPE] = old;
			free(ct);
			return -TD_ENOMEM;
		}
		free(old);
		return 0;
	}
	return set_payload(ev, data, len);
}

int td_event_take_data_json(struct td_event *ev, char *json, size_t len, const char *content_type)
{
	size_t n = content_type ? strlen(content_type) : 0;
	char *ct = NULL;
	int rc = -TD_EINVAL;

	if (!ev || !json || len == 0 || json[len] != '\0')
		goto fail;
	if (content_type) {
		if (n == 0 || !td_event_content_type_is_json(content_type) ||
		    check_string(content_type, n, NULL, 0) < 0 ||
		    check_media_type(content_type, n, NULL, 0) < 0)
			goto fail;
		rc = -TD_ENOMEM;
		ct = dupn(content_type, n);
		if (!ct)
			goto fail;
		free(ev->core[A_DATACONTENTTYPE]);
		ev->core[A_DATACONTENTTYPE] = ct;
	} else if (!td_event_content_type_is_json(ev->core[A_DATACONTENTTYPE])) {
		goto fail;
	}
	/* No copy and no validation: the caller guarantees one JSON value (event.h). */
	free(ev->data);
	ev->data = (unsigned char *)json;
	ev->data_len = len;
	ev->kind = TD_DATA_JSON;
	return 0;
fail:
	free(json);
	return rc;
}

/* Getters */

const char *td_event_get(const struct td_event *ev, const char *name)
{
	const struct ext *x;
	int ci;

	if (!ev || !name)
		return NULL;
	if (strcmp(name, "specversion") == 0)
		return "1.0";
	ci = core_index(name);
	if (ci >= 0)
		return ev->core[ci];
	x = find_ext(ev, name);
	return x ? x->value : NULL;
}

const void *td_event_data(const struct td_event *ev, size_t *len)
{
	if (len)
		*len = ev->data ? ev->data_len : 0;
	return ev->data;
}

enum td_data_kind td_event_data_kind(const struct td_event *ev)
{
	return ev->kind;
}

bool td_event_extension(const struct td_event *ev, size_t i, const char **name, const char **value)
{
	if (i >= ev->next)
		return false;
	if (name)
		*name = ev->ext[i].name;
	if (value)
		*value = ev->ext[i].value;
	return true;
}

enum td_attr_type td_event_extension_type(const struct td_event *ev, size_t i)
{
	return i < ev->next ? ev->ext[i].type : TD_ATTR_STRING;
}

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* A JSON payload without the whitespace around its value. */
static bool is_json_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void json_trim(const unsigned char **p, size_t *n)
{
	while (*n && is_json_ws((*p)[0])) {
		(*p)++;
		(*n)--;
	}
	while (*n && is_json_ws((*p)[*n - 1]))
		(*n)--;
}

bool td_event_equal(const struct td_event *a, const struct td_event *b)
{
	const unsigned char *pa, *pb;
	size_t la, lb;

	if (a == b)
		return true;
	if (!a || !b)
		return false;
	for (int i = 0; i < A_NCORE; i++)
		if (!str_eq(a->core[i], b->core[i]))
			return false;
	if (a->next != b->next)
		return false;
	for (size_t i = 0; i < a->next; i++) {
		const struct ext *x = find_ext(b, a->ext[i].name);
		if (!x || x->type != a->ext[i].type || strcmp(x->value, a->ext[i].value) != 0)
			return false;
	}
	if (a->kind != b->kind)
		return false;
	pa = a->data;
	pb = b->data;
	la = a->data_len;
	lb = b->data_len;
	if (a->kind == TD_DATA_JSON) {
		json_trim(&pa, &la);
		json_trim(&pb, &lb);
	}
	return la == lb && (la == 0 || memcmp(pa, pb, la) == 0);
}

int td_event_validate(const struct td_event *ev, char *err, size_t errlen)
{
	static const int required[] = {A_ID, A_SOURCE, A_TYPE};

	if (!ev)
		return td_fail(err, errlen, "no event");
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		if (!ev->core[required[i]] || !ev->core[required[i]][0])
			return td_fail(err, errlen, "missing required attribute \"%s\"",
				       core_names[required[i]]);
	return 0;
}

/* Stored form (td_event_encode / td_event_decode) */

/*
 * Layout: STORED_MARK, STORED_VERSION, then each core attribute as a length + 1 (0 when
 * absent) and its bytes, the extension count and per extension its name length, name,
 * type, value length and value, then the payload kind and, with a payload, its length
 * and bytes. Lengths are 32-bit little-endian. The mark is a byte that no JSON text
 * starts with, so a reader tells the two forms apart by the first byte.
 */
#define STORED_MARK    0x00
#define STORED_VERSION 1

static void put_u32(struct td_buf *b, size_t v)
{
	unsigned char le[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
			       (unsigned char)(v >> 24)};
	td_buf_append(b, le, 4);
}

char *td_event_encode(const struct td_event *ev, size_t *len)
{
	struct td_buf b = {0};
	const unsigned char head[2] = {STORED_MARK, STORED_VERSION};

	if (ev->data_len > UINT32_MAX - 1)
		return NULL;
	td_buf_reserve(&b, 256 + ev->data_len);
	td_buf_append(&b, head, 2);
	for (int i = 0; i < A_NCORE; i++) {
		size_t n = ev->core[i] ? strlen(ev->core[i]) : 0;
		put_u32(&b, ev->core[i] ? n + 1 : 0);
		if (n)
			td_buf_append(&b, ev->core[i], n);
	}
	put_u32(&b, ev->next);
	for (size_t i = 0; i < ev->next; i++) {
		unsigned char name_len = (unsigned char)strlen(ev->ext[i].name);
		unsigned char type = (unsigned char)ev->ext[i].type;
		size_t n = strlen(ev->ext[i].value);
		td_buf_append(&b, &name_len, 1);
		td_buf_append(&b, ev->ext[i].name, name_len);
		td_buf_append(&b, &type, 1);
		put_u32(&b, n);
		td_buf_append(&b, ev->ext[i].value, n);
	}
	unsigned char kind = (unsigned char)ev->kind;
	td_buf_append(&b, &kind, 1);
	if (ev->kind != TD_DATA_NONE) {
		put_u32(&b, ev->data_len);
		td_buf_append(&b, ev->data, ev->data_len);
	}
	return td_buf_steal(&b, len);
}

struct reader {
	const unsigned char *p;
	size_t left;
};

static bool take(struct reader *r, size_t n, const unsigned char **out)
{
	if (n > r->left)
		return false;
	*out = r->p;
	r->p += n;
	r->left -= n;
	return true;
}

static bool take_u32(struct reader *r, size_t *v)
{
	const unsigned char *q;
	if (!take(r, 4, &q))
		return false;
	*v = (size_t)q[0] | (size_t)q[1] << 8 | (size_t)q[2] << 16 | (size_t)q[3] << 24;
	return true;
}

/*
 * Every attribute goes through set_attr, with the checks of every other way in, so a
 * damaged row cannot make an event that those would refuse; the payload's kind is
 * taken as stored (it was classified when the event was made).
 */
static struct td_event *decode_stored(const unsigned char *p, size_t len, char *err, size_t errlen)
{
	struct reader r = {p + 2, len - 2};
	struct td_event *ev = td_event_create();
	const unsigned char *v;
	const char *what = "attributes";
	char name[EXT_NAME_MAX + 1];
	size_t n, count;
	int rc;

	if (!ev) {
		td_fail(err, errlen, "out of memory");
		return NULL;
	}
	if (p[1] != STORED_VERSION) {
		td_fail(err, errlen, "stored event of unknown version %u", p[1]);
		goto fail;
	}
	for (int i = 0; i < A_NCORE; i++) {
		if (!take_u32(&r, &n) || (n && !take(&r, n - 1, &v)))
			goto bad;
		if (n && (rc = set_attr(ev, core_names[i], (const char *)v, n - 1, TD_ATTR_STRING,
					err, errlen)) < 0)
			goto fail;
	}
	what = "extensions";
	if (!take_u32(&r, &count) || count > TD_EVENT_MAX_EXTENSIONS)
		goto bad;
	for (size_t i = 0; i < count; i++) {
		const unsigned char *name_len, *name_bytes, *type;
		if (!take(&r, 1, &name_len) || *name_len > EXT_NAME_MAX ||
		    !take(&r, *name_len, &name_bytes) || !take(&r, 1, &type) ||
		    *type > TD_ATTR_BOOLEAN || !take_u32(&r, &n) || !take(&r, n, &v))
			goto bad;
		memcpy(name, name_bytes, *name_len);
		name[*name_len] = '\0';
		if (strlen(name) != *name_len || core_index(name) >= 0 || find_ext(ev, name))
			goto bad;
		if ((rc = set_attr(ev, name, (const char *)v, n, (enum td_attr_type)type[0], err,
				   errlen)) < 0)
			goto fail;
	}
	what = "payload";
	const unsigned char *kind;
	if (!take(&r, 1, &kind) || *kind > TD_DATA_BINARY)
		goto bad;
	if (*kind != TD_DATA_NONE) {
		if (!take_u32(&r, &n) || !take(&r, n, &v))
			goto bad;
		if (set_payload_as(ev, v, n, true) < 0) { /* no classification: kind below */
			td_fail(err, errlen, "out of memory");
			goto fail;
		}
		ev->kind = (enum td_data_kind)kind[0];
	}
	if (r.left) {
		what = "end";
		goto bad;
	}
	if (td_event_validate(ev, err, errlen) < 0)
		goto fail;
	return ev;
bad:
	td_fail(err, errlen, "stored event damaged (%s, at byte %zu)", what, len - r.left);
fail:
	td_event_unref(ev);
	return NULL;
}

struct td_event *td_event_decode(const void *stored, size_t len, char *err, size_t errlen)
{
	const unsigned char *p = stored;

	if (len >= 2 && p[0] == STORED_MARK)
		return decode_stored(p, len, err, errlen);
	return td_event_from_json(stored, len, err, errlen);
}

/* JSON out */

static void append_member_name(struct td_buf *b, const char *name)
{
	td_buf_appends(b, ",\"");
	td_buf_appends(b, name);
	td_buf_appends(b, "\":");
}

/*
 * One pass of appends. match: the matching form ("data" always, base64 text for
 * binary); else the structured form ("data_base64" for what "data" cannot carry).
 */
static char *write_json(const struct td_event *ev, size_t *len, bool match)
{
	struct td_buf b;
	size_t est = 32 + ev->data_len / 3 * 4 + 8;
	const char *ct = ev->core[A_DATACONTENTTYPE];
	const unsigned char *p;
	bool as_data;
	size_t n;

	for (int i = 0; i < A_NCORE; i++)
		if (ev->core[i])
			est += strlen(ev->core[i]) + 24;
	for (size_t i = 0; i < ev->next; i++)
		est += strlen(ev->ext[i].value) + EXT_NAME_MAX + 8;
	td_buf_init(&b);
	td_buf_reserve(&b, est);
	td_buf_appends(&b, "{\"specversion\":\"1.0\"");
	for (int i = 0; i < A_NCORE; i++) {
		if (!ev->core[i])
			continue;
		append_member_name(&b, core_names[i]);
		td_json_append_cstr(&b, ev->core[i]);
	}
	for (size_t i = 0; i < ev->next; i++) {
		append_member_name(&b, ev->ext[i].name);
		if (ev->ext[i].type == TD_ATTR_STRING)
			td_json_append_cstr(&b, ev->ext[i].value);
		else
			td_buf_appends(&b, ev->ext[i].value);
	}
	switch (ev->kind) {
	case TD_DATA_NONE:
		break;
	case TD_DATA_JSON:
		p = ev->data;
		n = ev->data_len;
		json_trim(&p, &n);
		append_member_name(&b, "data");
		td_buf_append(&b, p, n);
		break;
	case TD_DATA_TEXT:
		/* In the structured form a string under "data" with a JSON-like content type
		 * would be read back as a JSON string value, not as this text. */
		as_data = match || !td_event_content_type_is_json(ct);
		append_member_name(&b, as_data ? "data" : "data_base64");
		if (as_data) {
			td_json_append_string(&b, (const char *)ev->data, ev->data_len);
		} else {
			td_buf_appendc(&b, '"');
			td_base64_encode(&b, ev->data, ev->data_len);
			td_buf_appendc(&b, '"');
		}
		break;
	case TD_DATA_BINARY:
		append_member_name(&b, match ? "data" : "data_base64");
		td_buf_appendc(&b, '"');
		td_base64_encode(&b, ev->data, ev->data_len);
		td_buf_appendc(&b, '"');
		break;
	}
	td_buf_appendc(&b, '}');
	return td_buf_steal(&b, len);
}

char *td_event_to_json(const struct td_event *ev, size_t *len)
{
	return write_json(ev, len, false);
}

char *td_event_match_json(const struct td_event *ev, size_t *len)
{
	return write_json(ev, len, true);
}

/* JSON in */

/* What a (validated) JSON value is, from its first byte, for messages. */
static const char *vtype(const struct td_json_member *m)
{
	switch (m->value[0]) {
	case '{':
		return "an object";
	case '[':
		return "an array";
	case '"':
		return "a string";
	case 't':
	case 'f':
		return "a boolean";
	case 'n':
		return "null";
	default:
		return "a number";
	}
}

/*
 * Decodes a string value with jansson (the exact slice of one validated JSON string).
 * The caller releases *out with json_decref.
 */
static int decode_string(const struct td_json_member *m, const char *what, json_t **out, char *err,
			 size_t errlen)
{
	json_error_t jerr;

	*out = json_loadb(m->value, m->value_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (!*out || !json_is_string(*out)) {
		json_decref(*out);
		*out = NULL;
		return td_fail(err, errlen, "%s: cannot decode the string: %s", what, jerr.text);
	}
	return 0;
}

/* One top-level member other than data / data_base64; its name is acceptable. */
static int read_member(struct td_event *ev, const char *name, const struct td_json_member *m,
		       bool *specversion, char *err, size_t errlen)
{
	bool is_spec = strcmp(name, "specversion") == 0;
	int ci = core_index(name), rc;
	char what[48];
	json_t *s;

	snprintf(what, sizeof(what), "attribute \"%s\"", name);
	switch (m->value[0]) {
	case 'n':
		return 0; /* null is the same as absent */
	case '"':
		if (decode_string(m, what, &s, err, errlen) < 0)
			return -TD_EINVAL;
		rc = set_attr(ev, name, json_string_value(s), json_string_length(s), TD_ATTR_STRING,
			      err, errlen);
		json_decref(s);
		if (rc == 0 && is_spec)
			*specversion = true;
		return rc;
	case 't':
	case 'f':
		if (is_spec || ci >= 0)
			break;
		return set_attr(ev, name, m->value, m->value_len, TD_ATTR_BOOLEAN, err, errlen);
	case '{':
	case '[':
		if (is_spec || ci >= 0)
			break;
		return td_fail(
		    err, errlen,
		    "extension \"%s\" must be a string, an integer or a boolean, found %s", name,
		    vtype(m));
	default:
		if (is_spec || ci >= 0)
			break;
		/* The exact text decides: 10 is an Integer, 10.0 and 1e1 are not. */
		return set_attr(ev, name, m->value, m->value_len, TD_ATTR_INTEGER, err, errlen);
	}
	return td_fail(err, errlen, "attribute \"%s\" must be a string, found %s", name, vtype(m));
}

/* Names already read, to refuse a duplicate member. Accepted names are short. */
#define MAX_MEMBERS (TD_EVENT_MAX_EXTENSIONS + 16)

struct seen {
	size_t n;
	char name[MAX_MEMBERS][EXT_NAME_MAX + 1];
};

static int see(struct seen *seen, const char *name, char *err, size_t errlen)
{
	for (size_t i = 0; i < seen->n; i++)
		if (strcmp(seen->name[i], name) == 0)
			return td_fail(err, errlen, "duplicate member \"%s\"", name);
	if (seen->n == MAX_MEMBERS)
		return td_fail(err, errlen, "more than %d members", MAX_MEMBERS);
	snprintf(seen->name[seen->n++], EXT_NAME_MAX + 1, "%s", name);
	return 0;
}

static bool name_acceptable(const char *name)
{
	return strcmp(name, "specversion") == 0 || strcmp(name, "data") == 0 ||
	       strcmp(name, "data_base64") == 0 || core_index(name) >= 0 ||
	       ext_name_valid(name, strlen(name));
}

struct td_event *td_event_from_json(const char *text, size_t len, char *err, size_t errlen)
{
	struct td_json_member m, data_m = {0}, b64_m = {0};
	bool specversion = false, have_data = false, have_b64 = false;
	struct td_event *ev = NULL;
	struct seen *seen = NULL;
	struct td_json_iter it;
	struct td_buf key, bytes;
	json_t *s = NULL;
	char msg[192];
	int rc;

	td_buf_init(&key);
	td_buf_init(&bytes);
	if (!text) {
		td_fail(err, errlen, "no event text");
		goto fail;
	}
	if (td_json_validate(text, len, TD_JSON_MAX_DEPTH, msg, sizeof(msg)) < 0) {
		td_fail(err, errlen, "invalid JSON: %s", msg);
		goto fail;
	}
	if (td_json_iter_object(&it, text, len) < 0) {
		struct td_json_member whole = {NULL, 0, text, len};
		while (is_json_ws((unsigned char)whole.value[0])) {
			whole.value++;
			whole.value_len--;
		}
		td_fail(err, errlen, "a structured event must be a JSON object, found %s",
			vtype(&whole));
		goto fail;
	}
	ev = td_event_create();
	seen = calloc(1, sizeof(*seen));
	if (!ev || !seen) {
		td_fail(err, errlen, "out of memory");
		goto fail;
	}
	while ((rc = td_json_iter_next(&it, &m)) > 0) {
		const char *name;

		td_buf_reset(&key);
		if (td_json_string_decode(m.key, m.key_len, &key) < 0 ||
		    td_buf_reserve(&key, 0) < 0) {
			td_fail(err, errlen,
				key.oom ? "out of memory" : "member name is not valid");
			goto fail;
		}
		name = key.data;
		if (strlen(name) != key.len) {
			td_fail(err, errlen, "member name \"%s\" contains a NUL character",
				td_shown(name, key.len, msg));
			goto fail;
		}
		if (!name_acceptable(name)) {
			td_fail(
			    err, errlen,
			    "invalid attribute name \"%s\": extension names are 1 to 20 lower-case "
			    "letters and digits",
			    td_shown(name, key.len, msg));
			goto fail;
		}
		if (see(seen, name, err, errlen) < 0)
			goto fail;
		if (strcmp(name, "data") == 0) {
			data_m = m;
			have_data = true;
		} else if (strcmp(name, "data_base64") == 0) {
			if (m.value[0] == 'n')
				continue; /* null is the same as absent */
			if (m.value[0] != '"') {
				td_fail(err, errlen, "\"data_base64\" must be a string, found %s",
					vtype(&m));
				goto fail;
			}
			b64_m = m;
			have_b64 = true;
		} else if (read_member(ev, name, &m, &specversion, err, errlen) < 0) {
			goto fail;
		}
	}
	if (rc < 0) {
		td_fail(err, errlen, "internal error: cannot walk the object");
		goto fail;
	}
	if (!specversion) {
		td_fail(err, errlen, "missing required attribute \"specversion\"");
		goto fail;
	}
	/* null data beside data_base64, or with a non-JSON content type: absent */
	if (have_data && data_m.value[0] == 'n' &&
	    (have_b64 || !td_event_content_type_is_json(ev->core[A_DATACONTENTTYPE])))
		have_data = false;
	if (have_data && have_b64) {
		td_fail(err, errlen, "\"data\" and \"data_base64\" must not both be present");
		goto fail;
	}
	if (have_b64) {
		if (decode_string(&b64_m, "\"data_base64\"", &s, err, errlen) < 0)
			goto fail;
		if (td_base64_decode(json_string_value(s), json_string_length(s), &bytes, msg,
				     sizeof(msg)) < 0) {
			td_fail(err, errlen, "\"data_base64\": %s",
				bytes.oom ? "out of memory" : msg);
			goto fail;
		}
		if (set_payload(ev, bytes.data ? bytes.data : "", bytes.len) < 0) {
			td_fail(err, errlen, "out of memory");
			goto fail;
		}
	} else if (have_data) {
		const char *ct = ev->core[A_DATACONTENTTYPE];
		if (td_event_content_type_is_json(ct)) {
			/* the exact bytes of the value, never parsed into a tree; the
			 * whole text was validated, so the value is JSON, one level
			 * shallower than the limit */
			rc = set_payload_as(ev, data_m.value, data_m.value_len, true);
		} else if (data_m.value[0] == '"') {
			if (decode_string(&data_m, "\"data\"", &s, err, errlen) < 0)
				goto fail;
			rc = set_payload(ev, json_string_value(s), json_string_length(s));
		} else {
			td_fail(
			    err, errlen,
			    "\"data\" must be a string when datacontenttype \"%s\" is not JSON, "
			    "found %s",
			    td_shown(ct, strlen(ct), msg), vtype(&data_m));
			goto fail;
		}
		if (rc < 0) {
			td_fail(err, errlen, "out of memory");
			goto fail;
		}
	}
	if (td_event_validate(ev, err, errlen) < 0)
		goto fail;
	json_decref(s);
	free(seen);
	td_buf_free(&key);
	td_buf_free(&bytes);
	return ev;
fail:
	json_decref(s);
	free(seen);
	td_buf_free(&key);
	td_buf_free(&bytes);
	td_event_unref(ev);
	return NULL;
}

/* HTTP */

/* RFC 7230 quoted-string unescaping, then one round of percent-decoding, then UTF-8. */
static int header_value_decode(const char *v, size_t n, struct td_buf *tmp, struct td_buf *out,
			       char *err, size_t errlen)
{
	size_t i, bad;

	td_buf_reset(tmp);
	td_buf_reset(out);
	trim(&v, &n);
	if (n && v[0] == '"') {
		for (i = 1; i < n && v[i] != '"'; i++) {
			if (v[i] == '\\') {
				if (++i >= n)
					break;
			}
			td_buf_appendc(tmp, v[i]);
		}
		if (i >= n)
			return td_fail(err, errlen, "unterminated quoted string");
		if (i + 1 != n)
			return td_fail(err, errlen, "text after the closing quote at character %zu",
				       i + 2);
		v = tmp->data ? tmp->data : "";
		n = tmp->len;
	}
	td_buf_reserve(out, n);
	for (i = 0; i < n; i++) {
		if (v[i] != '%') {
			td_buf_appendc(out, v[i]);
			continue;
		}
		if (i + 2 >= n || hexval(v[i + 1]) < 0 || hexval(v[i + 2]) < 0)
			return td_fail(err, errlen,
				       "'%%' at character %zu does not start a %%XX escape", i + 1);
		td_buf_appendc(out, (char)(hexval(v[i + 1]) * 16 + hexval(v[i + 2])));
		i += 2;
	}
	if (td_buf_failed(tmp) || td_buf_failed(out))
		return td_fail(err, errlen, "out of memory");
	if (!td_utf8_valid(out->data, out->len, &bad))
		return td_fail(err, errlen, "the decoded value is not valid UTF-8 (byte %zu)", bad);
	return 0;
}

static bool header_is(const struct td_http_header *h, const char *lname)
{
	return h->name && ieq(h->name, strlen(h->name), lname);
}

/* The media type of a Content-Type value without parameters, trimmed. */
static void media_type(const char *v, const char **mt, size_t *n)
{
	const char *semi = strchr(v, ';');
	size_t len = semi ? (size_t)(semi - v) : strlen(v);

	trim(&v, &len);
	*mt = v;
	*n = len;
}

/* Structured mode's parameters: a valid media type, and a charset only if UTF-8. */
static int check_charset(const char *ct, char *err, size_t errlen)
{
	const char *p;
	char msg[160];
	size_t ctn = strlen(ct);

	trim(&ct, &ctn);
	if (check_media_type(ct, ctn, msg, sizeof(msg)) < 0)
		return td_fail(err, errlen, "structured mode: header Content-Type: %s", msg);
	for (p = memchr(ct, ';', ctn); p; p = memchr(p + 1, ';', (size_t)(ct + ctn - p - 1))) {
		const char *seg = p + 1, *next = memchr(seg, ';', (size_t)(ct + ctn - seg));
		size_t total = next ? (size_t)(next - seg) : (size_t)(ct + ctn - seg);
		const char *eq = memchr(seg, '=', total);
		const char *name = seg, *val;
		size_t nn, vn;

		if (!eq)
			continue;
		nn = (size_t)(eq - seg);
		val = eq + 1;
		vn = total - nn - 1;
		trim(&name, &nn);
		trim(&val, &vn);
		if (vn >= 2 && val[0] == '"' && val[vn - 1] == '"') {
			val++;
			vn -= 2;
		}
		if (ieq(name, nn, "charset") && !ieq(val, vn, "utf-8") && !ieq(val, vn, "utf8"))
			return td_fail(
			    err, errlen,
			    "structured mode: charset \"%s\" is not supported, only UTF-8",
			    td_shown(val, vn, msg));
	}
	return 0;
}

bool td_event_http_is_cloudevent(const struct td_http_header *headers, size_t nheaders)
{
	const char *mt;
	size_t n;

	for (size_t i = 0; i < nheaders; i++) {
		if (header_is(&headers[i], "ce-specversion"))
			return true;
		if (header_is(&headers[i], "content-type") && headers[i].value) {
			media_type(headers[i].value, &mt, &n);
			if (istarts(mt, n, "application/cloudevents"))
				return true;
		}
	}
	return false;
}

struct td_event *td_event_from_http(const struct td_http_header *headers, size_t nheaders,
				    const void *body, size_t len, char *err, size_t errlen)
{
	const char *ct = NULL, *mt;
	struct td_event *ev = NULL;
	struct td_buf tmp, val;
	bool specversion = false;
	char attr[32] = "", msg[192], sv[64];
	size_t n, ctn;

	td_buf_init(&tmp);
	td_buf_init(&val);
	if (!headers && nheaders) {
		td_fail(err, errlen, "no headers");
		goto fail;
	}
	for (size_t i = 0; i < nheaders; i++) {
		if (!header_is(&headers[i], "content-type"))
			continue;
		if (ct) {
			td_fail(err, errlen, "more than one Content-Type header");
			goto fail;
		}
		ct = headers[i].value ? headers[i].value : "";
	}
	if (ct) {
		media_type(ct, &mt, &n);
		if (istarts(mt, n, "application/cloudevents-batch")) {
			td_fail(err, errlen,
				"batched content mode (%.*s) is not supported: send one event per "
				"request, in binary or structured mode",
				(int)(n > 64 ? 64 : n), mt);
			goto fail;
		}
		if (ieq(mt, n, "application/cloudevents+json")) {
			if (check_charset(ct, err, errlen) < 0)
				goto fail;
			ev = td_event_from_json(body ? body : "", body ? len : 0, msg, sizeof(msg));
			if (!ev)
				td_fail(err, errlen, "structured mode: %s", msg);
			goto done;
		}
		if (istarts(mt, n, "application/cloudevents")) {
			td_fail(err, errlen,
				"structured mode with %s is not supported: only "
				"application/cloudevents+json",
				td_shown(mt, n, sv));
			goto fail;
		}
	}
	ev = td_event_create();
	if (!ev) {
		td_fail(err, errlen, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < nheaders; i++) {
		const char *name = headers[i].name;
		const char *value = headers[i].value ? headers[i].value : "";
		size_t nl = name ? strlen(name) : 0;

		if (nl < 3 || !ieq(name, 3, "ce-"))
			continue;
		if (nl - 3 >= sizeof(attr)) {
			td_fail(err, errlen, "header %s: the attribute name is too long",
				td_shown(name, nl, sv));
			goto fail;
		}
		for (size_t k = 0; k < nl - 3; k++)
			attr[k] = lower(name[k + 3]);
		attr[nl - 3] = '\0';
		if (strcmp(attr, "datacontenttype") == 0) {
			td_fail(err, errlen,
				"binary mode: header %s must not be sent: Content-Type carries the "
				"datacontenttype",
				td_shown(name, nl, sv));
			goto fail;
		}
		if (strcmp(attr, "specversion") == 0 ? specversion
						     : td_event_get(ev, attr) != NULL) {
			td_fail(err, errlen, "binary mode: header %s appears more than once",
				td_shown(name, nl, sv));
			goto fail;
		}
		if (header_value_decode(value, strlen(value), &tmp, &val, msg, sizeof(msg)) < 0) {
			td_fail(err, errlen, "binary mode: header %s: %s", td_shown(name, nl, sv),
				msg);
			goto fail;
		}
		if (set_attr(ev, attr, val.data ? val.data : "", val.len, TD_ATTR_STRING, msg,
			     sizeof(msg)) < 0) {
			td_fail(err, errlen, "binary mode: header %s: %s", td_shown(name, nl, sv),
				msg);
			goto fail;
		}
		if (strcmp(attr, "specversion") == 0)
			specversion = true;
	}
	if (!specversion) {
		td_fail(err, errlen,
			"not a CloudEvent: no ce-specversion header, and the Content-Type is not "
			"application/cloudevents+json");
		goto fail;
	}
	for (int i = A_ID; i <= A_TYPE; i++) {
		if (!ev->core[i]) {
			td_fail(err, errlen, "binary mode: missing required header ce-%s",
				core_names[i]);
			goto fail;
		}
	}
	if (ct) {
		ctn = strlen(ct);
		trim(&ct, &ctn);
		if (set_attr(ev, "datacontenttype", ct, ctn, TD_ATTR_STRING, msg, sizeof(msg)) <
		    0) {
			td_fail(err, errlen, "binary mode: header Content-Type: %s", msg);
			goto fail;
		}
	}
	if (body && len && set_payload(ev, body, len) < 0) {
		td_fail(err, errlen, "out of memory");
		goto fail;
	}
done:
	td_buf_free(&tmp);
	td_buf_free(&val);
	return ev;
fail:
	td_buf_free(&tmp);
	td_buf_free(&val);
	td_event_unref(ev);
	return NULL;
}

/* Percent-encoding per the HTTP binding: space, '"', '%' and all but U+0021-U+007E.
 * Into small (cap bytes) when the worst case fits, else into b; NULL when out of memory. */
static const char *header_value_encode(const char *v, char *small, size_t cap, struct td_buf *b)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t len = strlen(v);
	char *out = small;

	if (len >= cap / 3) {
		td_buf_reset(b);
		if (td_buf_reserve(b, 3 * len) < 0)
			return NULL;
		out = b->data;
	}
	char *o = out;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p > 0x20 && *p < 0x7f && *p != '"' && *p != '%') {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = '\0';
	return out;
}

/* Built with copies into stack buffers (no formatting, no allocation for values under
 * 170 bytes): it runs for every call of an http function. */
void td_event_http_headers(const struct td_event *ev,
			   void (*emit)(void *arg, const char *name, const char *value), void *arg)
{
	static const int order[] = {A_ID, A_SOURCE, A_TYPE, A_SUBJECT, A_TIME, A_DATASCHEMA};
	static const char *const names[A_NCORE] = {
	    [A_ID] = "ce-id",		[A_SOURCE] = "ce-source", [A_TYPE] = "ce-type",
	    [A_SUBJECT] = "ce-subject", [A_TIME] = "ce-time",	  [A_DATASCHEMA] = "ce-dataschema",
	};
	char name[3 + EXT_NAME_MAX + 1] = "ce-";
	char small[512];
	const char *v, *ct;
	struct td_buf b;

	td_buf_init(&b);
	emit(arg, "ce-specversion", "1.0");
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (!ev->core[order[i]])
			continue;
		v = header_value_encode(ev->core[order[i]], small, sizeof(small), &b);
		if (!v)
			continue; /* out of memory: the header is left out */
		emit(arg, names[order[i]], v);
	}
	for (size_t i = 0; i < ev->next; i++) {
		v = header_value_encode(ev->ext[i].value, small, sizeof(small), &b);
		if (!v)
			continue;
		/* ext names are at most EXT_NAME_MAX bytes (set_attr checks) */
		size_t n = strnlen(ev->ext[i].name, EXT_NAME_MAX);
		memcpy(name + 3, ev->ext[i].name, n);
		name[3 + n] = '\0';
		emit(arg, name, v);
	}
	td_buf_free(&b);
	ct = ev->core[A_DATACONTENTTYPE];
	if (!ct) {
		switch (ev->kind) {
		case TD_DATA_JSON:
			ct = "application/json";
			break;
		case TD_DATA_TEXT:
			ct = "text/plain; charset=utf-8";
			break;
		case TD_DATA_BINARY:
			ct = "application/octet-stream";
			break;
		default:
			break;
		}
	}
	if (ct)
		emit(arg, "Content-Type", ct);
}
