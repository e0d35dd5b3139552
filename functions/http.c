/*
 * The http function kind: an invocation is one HTTP POST to the function's URL, run by
 * the engine's libcurl transfers. The event goes as a CloudEvent in binary mode (the
 * payload as the body, attributes as ce-* headers), in structured mode (the JSON form),
 * or as the bare data; a 2xx answer is success and its body the result.
 *
 * This file holds the options of the kind and their checks, then the runtime.
 *
 * Runtime. Everything runs on the engine thread. An invocation is a struct http_call
 * that owns one CURL easy handle; the easy handles run on the engine's transfer thread
 * (td_engine_curl_start; only the write callback runs there, into the call's own
 * buffer), whose connection pool and DNS cache are shared by every transfer, so calls
 * to the same host reuse kept-alive connections. Finished calls go
 * back to a per-function free list with their easy handle (its options stay set:
 * only the headers, body and timeout change per call) and their buffers, so a steady
 * stream of invocations allocates little here beyond the result it hands over. The URL
 * is parsed once per function (CURLOPT_CURLU, shared read-only by its handles): given
 * the text, libcurl would parse it again on every transfer (about a tenth of its
 * instructions per call, measured with callgrind).
 *
 * Request headers are curl_slist nodes laid out in the call's own arrays (libcurl only
 * reads the list): the per-call ones (ce-* attributes, Content-Type) come first and
 * their last node links to the function's fixed list (the configured headers and an
 * empty "Expect:", so that no 100-continue round trip happens), built once in create.
 * A configured header replaces the per-call header of the same name. The per-call texts
 * are copied in, not formatted: this runs about ten times per call on the engine thread.
 *
 * Proxies follow libcurl's environment rules (http_proxy, https_proxy, all_proxy,
 * no_proxy). When no proxy variable is set at create (reload re-reads them), the handles
 * say CURLOPT_NOPROXY "*", which spares libcurl looking them all up again per transfer.
 *
 * The body is the event's payload itself (binary and data formats; the call holds a
 * reference to the event) or the event's JSON (structured). The response body is kept
 * up to TD_HTTP_MAX_RESPONSE bytes. The outcome follows td_http_status_outcome and
 * td_http_curl_outcome (http_util.h); Retry-After is honoured on retryable answers.
 *
 * At destroy (shutdown, or a reload that retired the function) the calls still running
 * are taken off the multi handle and freed without completing them (function.h).
 */
#include <triggerd/engine.h>
#include <triggerd/errors.h>
#include <triggerd/event.h>
#include <triggerd/function.h>
#include <triggerd/log.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "../router/json.h"
#include "http_util.h"

enum http_format { HTTP_BINARY, HTTP_STRUCTURED, HTTP_DATA };

struct http_opts {
	struct td_function_common common;
	char *url;
	int format; /* enum http_format */
	struct td_map headers;
};

#define O(field) offsetof(struct http_opts, field)

static const struct td_option http_options[] = {
    TD_FUNCTION_COMMON_OPTIONS(struct http_opts, "3s", "64", "cloudevents"),
    {.type = TD_OPT_STRING,
     .name = "url",
     .flags = TD_OPT_REQUIRED,
     .offset = O(url),
     .desc = "http:// or https:// URL the event is POSTed to."},
    {.type = TD_OPT_ENUM,
     .name = "format",
     .def = "binary",
     .offset = O(format),
     .choices = "binary|structured|data",
     .desc = "binary: CloudEvents binary mode (ce-* headers, the payload as the body); "
	     "structured: the event's JSON (application/cloudevents+json); data: the payload "
	     "only."},
    {.type = TD_OPT_MAP,
     .name = "headers",
     .offset = O(headers),
     .desc = "Extra request headers, Name = \"value\" (use ${NAME} for tokens). Default: "
	     "none."},
    {0},
};

static void http_check(const void *p, const char *file, int line, struct td_diag *diag)
{
	const struct http_opts *o = p;
	char err[256];

	if (td_url_check(o->url, "http://|https://", err, sizeof err) < 0)
		td_diag_add(diag, file, line, "option 'url': %s", err);
	for (size_t i = 0; i < o->headers.n; i++) {
		const char *k = o->headers.keys[i], *v = o->headers.values[i];
		bool ok = *k != '\0';
		for (const char *c = k; *c; c++)
			if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_')
				ok = false;
		if (!ok)
			td_diag_add(diag, file, line,
				    "option 'headers': \"%.80s\" is not a header name", k);
		if (strpbrk(v, "\r\n"))
			td_diag_add(diag, file, line,
				    "option 'headers.%.80s': a header value must not hold a line "
				    "break",
				    k);
	}
}

/* ---- Pure helpers (http_util.h) ---- */

/* A position in a Retry-After value being parsed; err receives the first failure. */
struct cursor {
	const char *s;
	size_t pos, end;
	char *err;
	size_t errlen;
};

static int fail_at(struct cursor *c, size_t at, const char *what)
{
	if (c->err && c->errlen)
		snprintf(c->err, c->errlen, "%s at byte %zu", what, at);
	return -TD_EINVAL;
}

static int peek(const struct cursor *c)
{
	return c->pos < c->end ? (unsigned char)c->s[c->pos] : -1;
}

static bool is_digit(int ch)
{
	return ch >= '0' && ch <= '9';
}

static bool is_letter(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/* Exactly n digits; false (nothing consumed) otherwise. */
static bool take_digits(struct cursor *c, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (c->pos + (size_t)i >= c->end || !is_digit((unsigned char)c->s[c->pos + i]))
			return false;
		v = v * 10 + (c->s[c->pos + i] - '0');
	}
	c->pos += (size_t)n;
	*out = v;
	return true;
}

static int expect(struct cursor *c, char ch, const char *what)
{
	if (peek(c) != (unsigned char)ch)
		return fail_at(c, c->pos, what);
	c->pos++;
	return 0;
}

static const char *const day_names[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
static const char *const day_names_long[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
					     "Friday", "Saturday", "Sunday"};
static const char *const month_names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* The index of s[0..n) in names (case-insensitive, whole word), or -1. */
static int name_index(const char *s, size_t n, const char *const *names, int count)
{
	for (int i = 0; i < count; i++)
		if (strlen(names[i]) == n && strncasecmp(s, names[i], n) == 0)
			return i;
	return -1;
}

/* A month name: returns 1..12. */
static int take_month(struct cursor *c, int *month)
{
	size_t at = c->pos;
	while (is_letter(peek(c)))
		c->pos++;
	int i = name_index(c->s + at, c->pos - at, month_names, 12);
	if (i < 0)
		return fail_at(c, at, "expected a month name (Jan..Dec)");
	*month = i + 1;
	return 0;
}

/* hh:mm:ss (a leap second 60 is allowed). */
static int take_time(struct cursor *c, int *h, int *m, int *s)
{
	size_t at = c->pos;
	if (!take_digits(c, 2, h) || expect(c, ':', "expected hh:mm:ss") < 0 ||
	    !take_digits(c, 2, m) || expect(c, ':', "expected hh:mm:ss") < 0 ||
	    !take_digits(c, 2, s))
		return fail_at(c, at, "expected a time of day hh:mm:ss");
	if (*h > 23 || *m > 59 || *s > 60)
		return fail_at(c, at, "time of day out of range");
	return 0;
}

static int take_gmt(struct cursor *c)
{
	if (c->end - c->pos < 3 || memcmp(c->s + c->pos, "GMT", 3) != 0)
		return fail_at(c, c->pos, "expected \"GMT\"");
	c->pos += 3;
	return 0;
}

static bool leap_year(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && leap_year(y) ? 29 : days[m - 1];
}

/* The three HTTP-date forms, from just after the day name. */
static int parse_http_date(struct cursor *c, size_t day_at, size_t day_len, long long now_ms,
			   long long *date_ms)
{
	int day = 0, month = 0, year = 0, h = 0, m = 0, s = 0;
	size_t day_of_month_at;
	const char *day_name = c->s + day_at;

	if (peek(c) == ',') {
		c->pos++;
		bool rfc850 = day_len > 3;
		if (name_index(day_name, day_len, rfc850 ? day_names_long : day_names, 7) < 0)
			return fail_at(c, day_at, "unknown day name");
		if (expect(c, ' ', "expected a space after the day name") < 0)
			return -TD_EINVAL;
		day_of_month_at = c->pos;
		if (!take_digits(c, 2, &day))
			return fail_at(c, c->pos, "expected a two-digit day of the month");
		if (expect(c, rfc850 ? '-' : ' ',
			   rfc850 ? "expected '-' after the day"
				  : "expected a space after the day") < 0 ||
		    take_month(c, &month) < 0 ||
		    expect(c, rfc850 ? '-' : ' ',
			   rfc850 ? "expected '-' after the month"
				  : "expected a space after the month") < 0)
			return -TD_EINVAL;
		if (rfc850) {
			if (!take_digits(c, 2, &year))
				return fail_at(c, c->pos, "expected a two-digit year");
			/* RFC 9110: a two-digit year more than 50 years ahead is in the past. */
			time_t now_s = (time_t)(now_ms / 1000);
			struct tm now_tm;
			gmtime_r(&now_s, &now_tm);
			int now_year = now_tm.tm_year + 1900;
			year += now_year / 100 * 100;
			if (year > now_year + 50)
				year -= 100;
		} else if (!take_digits(c, 4, &year)) {
			return fail_at(c, c->pos, "expected a four-digit year");
		}
		if (expect(c, ' ', "expected a space before the time") < 0 ||
		    take_time(c, &h, &m, &s) < 0 ||
		    expect(c, ' ', "expected a space after the time") < 0 || take_gmt(c) < 0)
			return -TD_EINVAL;
	} else {
		/* asctime: "Sun Nov  6 08:49:37 1994" */
		if (day_len != 3 || name_index(day_name, day_len, day_names, 7) < 0)
			return fail_at(c, day_at, "unknown day name");
		if (expect(c, ' ', "expected ',' or a space after the day name") < 0 ||
		    take_month(c, &month) < 0 ||
		    expect(c, ' ', "expected a space after the month") < 0)
			return -TD_EINVAL;
		day_of_month_at = c->pos;
		if (peek(c) == ' ') {
			c->pos++;
			if (!take_digits(c, 1, &day))
				return fail_at(c, c->pos, "expected a day of the month");
		} else if (!take_digits(c, 2, &day)) {
			return fail_at(c, c->pos, "expected a day of the month");
		}
		if (expect(c, ' ', "expected a space before the time") < 0 ||
		    take_time(c, &h, &m, &s) < 0 ||
		    expect(c, ' ', "expected a space before the year") < 0)
			return -TD_EINVAL;
		if (!take_digits(c, 4, &year))
			return fail_at(c, c->pos, "expected a four-digit year");
	}
	if (c->pos != c->end)
		return fail_at(c, c->pos, "unexpected text after the date");
	if (day < 1 || day > days_in_month(year, month))
		return fail_at(c, day_of_month_at, "no such day in that month");

	struct tm tm = {.tm_year = year - 1900,
			.tm_mon = month - 1,
			.tm_mday = day,
			.tm_hour = h,
			.tm_min = m,
			.tm_sec = s};
	*date_ms = (long long)timegm(&tm) * 1000;
	return 0;
}

int td_http_retry_after_parse(const char *value, size_t len, long long now_ms, long long *delay_ms,
			      char *err, size_t errlen)
{
	struct cursor c = {.s = value, .end = len, .err = err, .errlen = errlen};

	while (c.pos < c.end && (value[c.pos] == ' ' || value[c.pos] == '\t'))
		c.pos++;
	while (c.end > c.pos && (value[c.end - 1] == ' ' || value[c.end - 1] == '\t'))
		c.end--;
	if (c.pos == c.end)
		return fail_at(&c, c.pos, "empty value");

	if (is_digit(peek(&c))) {
		long long secs = 0;
		for (; c.pos < c.end; c.pos++) {
			int ch = peek(&c);
			if (!is_digit(ch))
				return fail_at(
				    &c, c.pos,
				    "delta-seconds must be digits only: unexpected character");
			if (secs < TD_HTTP_RETRY_AFTER_MAX_S)
				secs = secs * 10 + (ch - '0');
		}
		if (secs > TD_HTTP_RETRY_AFTER_MAX_S)
			secs = TD_HTTP_RETRY_AFTER_MAX_S;
		*delay_ms = secs * 1000;
		return 0;
	}
	if (!is_letter(peek(&c)))
		return fail_at(&c, c.pos, "expected delta-seconds or an HTTP-date");
	size_t day_at = c.pos;
	while (is_letter(peek(&c)))
		c.pos++;
	long long date_ms = 0;
	if (parse_http_date(&c, day_at, c.pos - day_at, now_ms, &date_ms) < 0)
		return -TD_EINVAL;
	*delay_ms = date_ms > now_ms ? date_ms - now_ms : 0;
	return 0;
}

enum td_result_status td_http_status_outcome(long status)
{
	if (status >= 200 && status <= 299)
		return TD_RESULT_OK;
	if (status == 408 || status == 429 || (status >= 500 && status <= 599))
		return TD_RESULT_RETRY;
	return TD_RESULT_ERROR;
}

enum td_result_status td_http_curl_outcome(int curl_code)
{
	switch ((CURLcode)curl_code) {
	case CURLE_OK:
		return TD_RESULT_OK;
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_NOT_BUILT_IN:
	case CURLE_BAD_FUNCTION_ARGUMENT:
	case CURLE_UNKNOWN_OPTION:
	case CURLE_WRITE_ERROR: /* the response body was refused: too large */
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_TOO_MANY_REDIRECTS:
	case CURLE_BAD_CONTENT_ENCODING:
	case CURLE_FILESIZE_EXCEEDED:
	case CURLE_ABORTED_BY_CALLBACK:
	case CURLE_LOGIN_DENIED:
		return TD_RESULT_ERROR;
	default:
		return TD_RESULT_RETRY;
	}
}

static void put(char *out, size_t cap, size_t *n, const char *s, size_t len)
{
	size_t room = cap - 1 - *n;
	if (len > room)
		len = room;
	memcpy(out + *n, s, len);
	*n += len;
	out[*n] = '\0';
}

void td_http_display_url(const char *url, char *out, size_t cap)
{
	size_t n = 0;
	if (cap == 0)
		return;
	out[0] = '\0';
	const char *p = url;
	const char *scheme_end = strstr(url, "://");
	if (scheme_end && (size_t)(scheme_end - url) < strcspn(url, "/?#")) {
		put(out, cap, &n, url, (size_t)(scheme_end - url) + 3);
		p = scheme_end + 3;
		size_t authority = strcspn(p, "/?#");
		const char *at = memrchr(p, '@', authority);
		if (at)
			p = at + 1;
	}
	put(out, cap, &n, p, strcspn(p, "?#"));
}

/* ---- Runtime ---- */

#define POOL_MAX	256	    /* idle calls kept per function */
#define KEEP_BUFFER_MAX (64 * 1024) /* a pooled call keeps buffers up to this size */

struct http_call;

struct http_ctx {
	struct td_function *fn;
	const struct http_opts *opts;
	struct td_engine *engine;
	struct curl_slist *fixed; /* configured headers, then "Expect:" */
	bool fixed_content_type;  /* the configured headers set Content-Type */
	char url_shown[256];	  /* td_http_display_url of the URL */
	bool no_proxy_env;	  /* no proxy variable in the environment at create */
	CURLU *url;		  /* the URL parsed once (NULL: libcurl parses opts->url) */
	struct http_call *idle;	  /* the free list */
	int n_idle, idle_max;
	struct http_call *running; /* in flight, doubly linked */
	struct td_log_ratelimit warn_limit;
};

struct http_call {
	struct http_ctx *ctx;
	struct td_invocation *inv;
	struct td_event *event; /* our reference: the body may point into it */
	CURL *easy;
	char *json; /* structured: the body */
	struct td_buf response;
	bool too_large;
	/* Per-call headers: NUL-separated texts, their offsets and the list nodes. */
	struct td_buf hdr_text;
	size_t *hdr_off;
	struct curl_slist *hdr_nodes;
	size_t nhdr, hdr_cap;
	bool hdr_failed, has_content_type;
	char errbuf[CURL_ERROR_SIZE];
	struct http_call *prev, *next;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct http_call *call = arg;
	size_t bytes = size * n;
	if ((long long)(call->response.len + bytes) > TD_HTTP_MAX_RESPONSE) {
		call->too_large = true;
		return 0; /* libcurl ends the transfer with CURLE_WRITE_ERROR */
	}
	if (td_buf_append(&call->response, p, bytes) < 0)
		return 0;
	return bytes;
}

static void call_free(struct http_call *call)
{
	if (call->easy)
		curl_easy_cleanup(call->easy);
	td_event_unref(call->event);
	free(call->json);
	td_buf_free(&call->response);
	td_buf_free(&call->hdr_text);
	free(call->hdr_off);
	free(call->hdr_nodes);
	free(call);
}

/* Options that stay the same for every call of the function. */
static int easy_setup(struct http_ctx *ctx, struct http_call *call)
{
	CURL *e = call->easy;
	/* A parsed URL spares libcurl parsing the text again on every transfer; it only
	 * reads the handle, so every call of the function shares it. */
	CURLcode set = ctx->url ? curl_easy_setopt(e, CURLOPT_CURLU, ctx->url)
				: curl_easy_setopt(e, CURLOPT_URL, ctx->opts->url);
	if (set != CURLE_OK || curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK)
		return -TD_EINVAL;
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "triggerd");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, call);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, call->errbuf);
	/* Without a proxy variable libcurl would look them all up again on every transfer
	 * to find none; "*" says so once. With one, libcurl's own rules apply. */
	if (ctx->no_proxy_env)
		curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
	return 0;
}

/* A call from the free list, or a new one. NULL when out of memory. */
static struct http_call *call_get(struct http_ctx *ctx)
{
	struct http_call *call = ctx->idle;
	if (call) {
		ctx->idle = call->next;
		ctx->n_idle--;
		call->next = NULL;
		return call;
	}
	call = calloc(1, sizeof *call);
	if (!call)
		return NULL;
	call->ctx = ctx;
	call->easy = curl_easy_init();
	if (!call->easy || easy_setup(ctx, call) < 0)
		goto fail;
	return call;
fail:
	call_free(call);
	return NULL;
}

static void buf_trim(struct td_buf *b)
{
	if (b->cap > KEEP_BUFFER_MAX)
		td_buf_free(b);
	else
		td_buf_reset(b);
}

/* Back to the free list once the transfer is off the multi handle. */
static void call_release(struct http_ctx *ctx, struct http_call *call)
{
	td_event_unref(call->event);
	call->event = NULL;
	call->inv = NULL;
	free(call->json);
	call->json = NULL;
	buf_trim(&call->response);
	buf_trim(&call->hdr_text);
	call->too_large = call->hdr_failed = call->has_content_type = false;
	call->nhdr = 0;
	call->errbuf[0] = '\0';
	if (ctx->n_idle >= ctx->idle_max) {
		call_free(call);
		return;
	}
	call->prev = NULL;
	call->next = ctx->idle;
	ctx->idle = call;
	ctx->n_idle++;
}

static void running_add(struct http_ctx *ctx, struct http_call *call)
{
	call->prev = NULL;
	call->next = ctx->running;
	if (ctx->running)
		ctx->running->prev = call;
	ctx->running = call;
}

static void running_remove(struct http_ctx *ctx, struct http_call *call)
{
	if (call->prev)
		call->prev->next = call->next;
	else
		ctx->running = call->next;
	if (call->next)
		call->next->prev = call->prev;
	call->prev = call->next = NULL;
}

static bool configured_header(const struct http_ctx *ctx, const char *name)
{
	const struct td_map *h = &ctx->opts->headers;
	for (size_t i = 0; i < h->n; i++)
		if (strcasecmp(h->keys[i], name) == 0)
			return true;
	return false;
}

static int grow_headers(struct http_call *call)
{
	size_t cap = call->hdr_cap ? call->hdr_cap * 2 : 16;
	size_t *off = realloc(call->hdr_off, cap * sizeof *off);
	if (!off)
		goto fail;
	call->hdr_off = off;
	struct curl_slist *nodes = realloc(call->hdr_nodes, cap * sizeof *nodes);
	if (!nodes)
		goto fail;
	call->hdr_nodes = nodes;
	call->hdr_cap = cap;
	return 0;
fail:
	call->hdr_failed = true;
	return -TD_ENOMEM;
}

/* Adds "name: value" to the call's headers unless a configured header replaces it.
 * value NULL keeps libcurl from sending a header of its own by that name. */
static void add_header(struct http_call *call, const char *name, const char *value)
{
	if (strcasecmp(name, "Content-Type") == 0)
		call->has_content_type = true;
	if (configured_header(call->ctx, name))
		return;
	if (call->nhdr == call->hdr_cap && grow_headers(call) < 0)
		return;
	call->hdr_off[call->nhdr++] = call->hdr_text.len;
	/* "Name;" is how libcurl sends a header with an empty value, "Name:" how it is told
	 * to leave its own out. Appended piece by piece: this runs ~10 times per call. */
	struct td_buf *t = &call->hdr_text;
	size_t nlen = strlen(name), vlen = value ? strlen(value) : 0;
	if (td_buf_reserve(t, nlen + vlen + 3) < 0) {
		call->hdr_failed = true;
		return;
	}
	memcpy(t->data + t->len, name, nlen);
	t->len += nlen;
	if (!value) {
		t->data[t->len++] = ':';
	} else if (vlen) {
		t->data[t->len++] = ':';
		t->data[t->len++] = ' ';
		memcpy(t->data + t->len, value, vlen);
		t->len += vlen;
	} else {
		t->data[t->len++] = ';';
	}
	t->data[t->len++] = '\0';
	t->data[t->len] = '\0';
}

static void emit_header(void *arg, const char *name, const char *value)
{
	add_header(arg, name, value);
}

/* The list libcurl sends: the call's headers, then the function's fixed ones. */
static struct curl_slist *link_headers(struct http_call *call)
{
	if (call->nhdr == 0)
		return call->ctx->fixed;
	for (size_t i = 0; i < call->nhdr; i++) {
		call->hdr_nodes[i].data = call->hdr_text.data + call->hdr_off[i];
		call->hdr_nodes[i].next =
		    i + 1 < call->nhdr ? &call->hdr_nodes[i + 1] : call->ctx->fixed;
	}
	return call->hdr_nodes;
}

/* The media type of the bare payload (format data), as binary mode would send it. */
static const char *payload_content_type(const struct td_event *ev)
{
	const char *ct = td_event_get(ev, "datacontenttype");
	if (ct)
		return ct;
	switch (td_event_data_kind(ev)) {
	case TD_DATA_JSON:
		return "application/json";
	case TD_DATA_TEXT:
		return "text/plain; charset=utf-8";
	case TD_DATA_BINARY:
		return "application/octet-stream";
	default:
		return NULL;
	}
}

/* Body and content type of a failed invocation: the function's answer when it gave one,
 * else the error document. */
static void failure_body(struct http_call *call, struct td_result *res, const char *type,
			 const char *response_type)
{
	if (call->response.len > 0 && !call->too_large) {
		res->body = td_bytes_dup(call->response.data, call->response.len);
		res->body_len = res->body ? call->response.len : 0;
		res->content_type = response_type ? strdup(response_type) : NULL;
		return;
	}
	res->body = td_json_error_document(type, res->error ? res->error : type, &res->body_len);
	res->content_type = strdup("application/json");
}

static char *format_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *format_error(const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

static void retry_after(struct http_call *call, struct td_result *res)
{
	struct curl_header *h = NULL;
	if (curl_easy_header(call->easy, "Retry-After", 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
		return;
	char err[128];
	long long ms;
	if (td_http_retry_after_parse(h->value, strlen(h->value), td_wall_ms(), &ms, err,
				      sizeof err) == 0)
		res->retry_after_ms = ms;
	else if (td_log_ratelimit(&call->ctx->warn_limit, 5, 60000))
		td_logs_warn(td_function_scope(call->ctx->fn),
			     "ignoring the Retry-After header \"%.64s\" from %s: %s", h->value,
			     call->ctx->url_shown, err);
}

/* The result of a transfer that ended with an HTTP answer. */
static void answered(struct http_call *call, long status, const char *ctype, struct td_result *res)
{
	struct http_ctx *ctx = call->ctx;
	res->status = td_http_status_outcome(status);
	res->http_status = (int)status;
	if (res->status == TD_RESULT_OK) {
		if (call->response.len > 0) {
			res->body = td_bytes_dup(call->response.data, call->response.len);
			res->body_len = res->body ? call->response.len : 0;
		}
		res->content_type = ctype ? strdup(ctype) : NULL;
		if ((call->response.len > 0 && !res->body) || (ctype && !res->content_type)) {
			res->status = TD_RESULT_RETRY;
			res->error = format_error("out of memory keeping the response of %s",
						  ctx->url_shown);
		}
		return;
	}
	res->error =
	    format_error("HTTP %ld from %s%s", status, ctx->url_shown,
			 status >= 300 && status < 400 ? " (redirects are not followed)" : "");
	failure_body(call, res, "HTTPError", ctype);
	if (res->status == TD_RESULT_RETRY) {
		res->throttled = status == 429;
		retry_after(call, res);
	}
}

/* The result of a transfer that libcurl failed. */
static void failed(struct http_call *call, CURLcode code, long status, const char *ctype,
		   struct td_result *res)
{
	struct http_ctx *ctx = call->ctx;
	const char *detail = call->errbuf[0] ? call->errbuf : curl_easy_strerror(code);
	const char *type = "ConnectionError";
	res->status = td_http_curl_outcome(code);
	res->http_status = 502;

	if (call->too_large) {
		/* A failure status keeps its meaning; a success is lost: permanent. */
		bool retry = status > 0 && td_http_status_outcome(status) == TD_RESULT_RETRY;
		res->status = retry ? TD_RESULT_RETRY : TD_RESULT_ERROR;
		if (status > 0)
			res->http_status = (int)status;
		res->error =
		    format_error("the response from %s (HTTP %ld) is larger than %lld MB",
				 ctx->url_shown, status, TD_HTTP_MAX_RESPONSE / (1024 * 1024));
		type = "ResponseTooLarge";
	} else if (call->response.oom) {
		res->status = TD_RESULT_RETRY;
		res->error =
		    format_error("out of memory reading the response from %s", ctx->url_shown);
		type = "OutOfMemory";
	} else if (code == CURLE_OPERATION_TIMEDOUT) {
		res->http_status = 504;
		res->error = format_error("timed out after %.2f s",
					  (double)ctx->opts->common.timeout_ms / 1000.0);
		type = "TimeoutError";
	} else if (code == CURLE_COULDNT_CONNECT) {
		long os_errno = 0;
		curl_easy_getinfo(call->easy, CURLINFO_OS_ERRNO, &os_errno);
		if (os_errno == ECONNREFUSED)
			res->error = format_error("connection refused: %s", ctx->url_shown);
		else
			res->error =
			    format_error("cannot connect to %s: %s", ctx->url_shown, detail);
	} else if (code == CURLE_COULDNT_RESOLVE_HOST) {
		res->error =
		    format_error("cannot resolve the host of %s: %s", ctx->url_shown, detail);
	} else {
		res->error = format_error("request to %s failed: %s", ctx->url_shown, detail);
		if (res->status == TD_RESULT_ERROR)
			type = "InvalidResponse";
	}
	failure_body(call, res, type, ctype);
	if (res->status == TD_RESULT_RETRY && status > 0)
		retry_after(call, res);
}

static void on_done(void *arg, CURLcode code)
{
	struct http_call *call = arg;
	struct http_ctx *ctx = call->ctx;
	struct td_invocation *inv = call->inv;
	struct td_result res = {0};
	long status = 0;
	curl_off_t total_us = 0;
	char *ctype = NULL;

	running_remove(ctx, call);
	curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(call->easy, CURLINFO_TOTAL_TIME_T, &total_us);
	curl_easy_getinfo(call->easy, CURLINFO_CONTENT_TYPE, &ctype);
	res.duration_us = (long long)total_us;
	if (code == CURLE_OK)
		answered(call, status, ctype, &res);
	else
		failed(call, code, status, ctype, &res);
	if (res.status != TD_RESULT_OK && !res.error) {
		/* Out of memory while describing the failure: still a failure. */
		res.status = TD_RESULT_RETRY;
	}
	call_release(ctx, call);
	td_invocation_complete(inv, &res);
}

static int http_invoke(struct td_function *fn, struct td_invocation *inv)
{
	struct http_ctx *ctx = td_function_ctx(fn);
	struct http_call *call = call_get(ctx);
	const void *data = NULL;
	size_t len = 0;
	int rc = -TD_ENOMEM;

	if (!call)
		return -TD_ENOMEM;
	call->inv = inv;
	call->event = td_event_ref(inv->event);
	switch (ctx->opts->format) {
	case HTTP_STRUCTURED:
		call->json = td_event_to_json(call->event, &len);
		if (!call->json)
			goto fail;
		data = call->json;
		add_header(call, "Content-Type", "application/cloudevents+json");
		break;
	case HTTP_DATA: {
		const char *ct = payload_content_type(call->event);
		data = td_event_data(call->event, &len);
		if (ct)
			add_header(call, "Content-Type", ct);
		break;
	}
	default:
		td_event_http_headers(call->event, emit_header, call);
		data = td_event_data(call->event, &len);
		break;
	}
	/* Without a type of its own libcurl would send a form's. */
	if (!call->has_content_type && !ctx->fixed_content_type)
		add_header(call, "Content-Type", NULL);
	if (call->hdr_failed)
		goto fail;

	long long left = inv->deadline_ms - td_now_ms();
	if (left > ctx->opts->common.timeout_ms || left <= 0)
		left = left <= 0 ? 1 : ctx->opts->common.timeout_ms;
	curl_easy_setopt(call->easy, CURLOPT_HTTPHEADER, link_headers(call));
	curl_easy_setopt(call->easy, CURLOPT_POSTFIELDS, data ? data : "");
	curl_easy_setopt(call->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(call->easy, CURLOPT_TIMEOUT_MS, (long)left);
	inv->kind_state = call;
	running_add(ctx, call);
	rc = td_engine_curl_start(ctx->engine, call->easy, on_done, call);
	if (rc < 0) {
		running_remove(ctx, call);
		goto fail;
	}
	return 0;
fail:
	inv->kind_state = NULL;
	call_release(ctx, call);
	return rc;
}

/* True when the environment names a proxy that libcurl would use for http or https
 * (its variables: http_proxy, https_proxy, all_proxy, in either case). */
static bool proxy_in_environment(void)
{
	static const char *const names[] = {"http_proxy",  "HTTP_PROXY", "https_proxy",
					    "HTTPS_PROXY", "all_proxy",	 "ALL_PROXY"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (getenv(names[i]))
			return true;
	return false;
}

static int http_create(struct td_function *fn)
{
	struct http_ctx *ctx = td_function_ctx(fn);
	struct td_buf line;
	td_buf_init(&line);

	ctx->fn = fn;
	ctx->opts = td_function_opts(fn);
	ctx->engine = td_function_engine(fn);
	ctx->idle_max = ctx->opts->common.concurrency < POOL_MAX
			    ? (int)ctx->opts->common.concurrency
			    : POOL_MAX;
	td_http_display_url(ctx->opts->url, ctx->url_shown, sizeof ctx->url_shown);
	ctx->no_proxy_env = !proxy_in_environment();
	/* As libcurl parses CURLOPT_URL; a URL it refuses is left to it, so that each call
	 * fails with its message as before. */
	ctx->url = curl_url();
	if (!ctx->url)
		goto fail;
	if (curl_url_set(ctx->url, CURLUPART_URL, ctx->opts->url,
			 CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
		curl_url_cleanup(ctx->url);
		ctx->url = NULL;
	}
	for (size_t i = 0; i < ctx->opts->headers.n; i++) {
		const char *name = ctx->opts->headers.keys[i],
			   *value = ctx->opts->headers.values[i];
		if (strcasecmp(name, "Content-Type") == 0)
			ctx->fixed_content_type = true;
		td_buf_reset(&line);
		if (*value)
			td_buf_printf(&line, "%s: %s", name, value);
		else
			td_buf_printf(&line, "%s;", name);
		if (td_buf_failed(&line))
			goto fail;
		struct curl_slist *l = curl_slist_append(ctx->fixed, line.data);
		if (!l)
			goto fail;
		ctx->fixed = l;
	}
	if (!configured_header(ctx, "Expect")) {
		struct curl_slist *l = curl_slist_append(ctx->fixed, "Expect:");
		if (!l)
			goto fail;
		ctx->fixed = l;
	}
	if (ctx->opts->common.event_format == TD_FORMAT_AWS)
		td_logs_warn(td_function_scope(fn),
			     "event_format \"aws\" is not supported by http functions; events are "
			     "sent as CloudEvents");
	td_buf_free(&line);
	return 0;
fail:
	td_buf_free(&line);
	curl_slist_free_all(ctx->fixed);
	ctx->fixed = NULL;
	curl_url_cleanup(ctx->url);
	ctx->url = NULL;
	return -TD_ENOMEM;
}

static void http_destroy(struct td_function *fn)
{
	struct http_ctx *ctx = td_function_ctx(fn);
	while (ctx->running) {
		struct http_call *call = ctx->running;
		running_remove(ctx, call);
		td_engine_curl_cancel(ctx->engine, call->easy);
		call_free(call);
	}
	while (ctx->idle) {
		struct http_call *call = ctx->idle;
		ctx->idle = call->next;
		call_free(call);
	}
	ctx->n_idle = 0;
	curl_slist_free_all(ctx->fixed);
	ctx->fixed = NULL;
	curl_url_cleanup(ctx->url); /* after the handles that read it */
	ctx->url = NULL;
}

const struct td_function_ops td_function_http = {
    .name = "http",
    .summary = "POST the event to an HTTP endpoint (CloudEvents binary or structured mode)",
    .options = http_options,
    .opts_size = sizeof(struct http_opts),
    .check = http_check,
    .ctx_size = sizeof(struct http_ctx),
    .create = http_create,
    .invoke = http_invoke,
    .destroy = http_destroy,
};
