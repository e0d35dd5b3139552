/*
 * The http function kind: an invocation is one HTTP POST to the function's URL, run on
 * the engine's libcurl multi handle. The event goes as a CloudEvent in binary mode (the
 * payload as the body, attributes as ce-* headers), in structured mode (the JSON form),
 * or as the bare data; a 2xx answer is success and its body the result.
 *
 * This file holds the options of the kind and their checks.
 */
#include <triggerd/function.h>

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

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

const struct td_function_ops td_function_http = {
    .name = "http",
    .summary = "POST the event to an HTTP endpoint (CloudEvents binary or structured mode)",
    .options = http_options,
    .opts_size = sizeof(struct http_opts),
    .check = http_check,
};
