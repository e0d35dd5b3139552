/*
 * The webhook source: one URL path on the public webhook listener. A request becomes an
 * event as it came (format raw), the CloudEvent it carries (binary or structured mode),
 * or one event per record of an S3 bucket notification (AWS S3 through EventBridge
 * pipes, MinIO). Requests may be authenticated by a bearer token or an HMAC signature
 * of the body; presets fill in the signature scheme of GitHub, Stripe and MinIO.
 *
 * This file holds the options of the kind (table, presets, checks); the listener itself
 * is the router's HTTP server, which calls into the kind through its ops.
 */
#include <triggerd/source.h>

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

enum webhook_format { WEBHOOK_RAW, WEBHOOK_CLOUDEVENTS, WEBHOOK_S3 };
enum webhook_auth { WEBHOOK_AUTH_NONE, WEBHOOK_AUTH_BEARER, WEBHOOK_AUTH_HMAC };
enum webhook_preset { PRESET_NONE, PRESET_GITHUB, PRESET_STRIPE, PRESET_MINIO };
enum webhook_algorithm { HMAC_SHA256, HMAC_SHA1 };
enum webhook_encoding { HMAC_HEX, HMAC_BASE64 };

struct webhook_opts {
	char *path;
	struct td_strings methods;
	int format; /* enum webhook_format (set by finish when not given) */
	int auth;   /* enum webhook_auth (set by finish when not given) */
	char *token;
	char *hmac_secret;
	char *hmac_header;
	int hmac_algorithm; /* enum webhook_algorithm */
	int hmac_encoding;  /* enum webhook_encoding */
	char *hmac_prefix;
	char *hmac_timestamp_header;
	long long hmac_tolerance_ms;
	int preset;	    /* enum webhook_preset */
	long long max_body; /* bytes; 0: the global http.max_body */
};

#define O(field) offsetof(struct webhook_opts, field)

static const struct td_option webhook_options[] = {
    {.type = TD_OPT_STRING,
     .name = "path",
     .flags = TD_OPT_REQUIRED,
     .offset = O(path),
     .desc = "URL path on the webhook listener, starting with \"/\"; unique across webhook "
	     "sources."},
    {.type = TD_OPT_STRINGS,
     .name = "methods",
     .def = "[\"POST\"]",
     .offset = O(methods),
     .desc = "HTTP methods accepted (others get 405)."},
    {.type = TD_OPT_ENUM,
     .name = "format",
     .offset = O(format),
     .choices = "raw|cloudevents|s3",
     .desc = "raw: the request body is the event's data; cloudevents: the request is a "
	     "CloudEvent; s3: an S3 bucket notification, one event per record. Default: raw "
	     "(s3 with preset minio)."},
    {.type = TD_OPT_ENUM,
     .name = "auth",
     .offset = O(auth),
     .choices = "none|bearer|hmac",
     .desc = "How requests are authenticated: none, an Authorization bearer token, or an "
	     "HMAC signature of the body. Default: the preset's (hmac for github and stripe, "
	     "bearer for minio), else none."},
    {.type = TD_OPT_STRING,
     .name = "token",
     .flags = TD_OPT_SECRET,
     .offset = O(token),
     .desc = "The bearer token (auth bearer; with preset minio, the MinIO webhook "
	     "auth_token). Default: none."},
    {.type = TD_OPT_STRING,
     .name = "hmac.secret",
     .flags = TD_OPT_SECRET,
     .offset = O(hmac_secret),
     .desc = "Shared secret of the HMAC signature (auth hmac). Default: none."},
    {.type = TD_OPT_STRING,
     .name = "hmac.header",
     .offset = O(hmac_header),
     .desc = "Request header carrying the signature. Default: the preset's "
	     "(X-Hub-Signature-256, Stripe-Signature); required for auth hmac without a "
	     "preset."},
    {.type = TD_OPT_ENUM,
     .name = "hmac.algorithm",
     .def = "sha256",
     .offset = O(hmac_algorithm),
     .choices = "sha256|sha1",
     .desc = "Hash of the HMAC."},
    {.type = TD_OPT_ENUM,
     .name = "hmac.encoding",
     .def = "hex",
     .offset = O(hmac_encoding),
     .choices = "hex|base64",
     .desc = "How the signature is written in the header."},
    {.type = TD_OPT_STRING,
     .name = "hmac.prefix",
     .offset = O(hmac_prefix),
     .desc = "Text before the signature in the header, e.g. \"sha256=\". Default: the "
	     "preset's (github: \"sha256=\"), else none."},
    {.type = TD_OPT_STRING,
     .name = "hmac.timestamp_header",
     .offset = O(hmac_timestamp_header),
     .desc = "Header with the request's Unix time, signed as \"TIMESTAMP.BODY\" and "
	     "checked against hmac.tolerance (replay protection). Default: none (stripe "
	     "carries it in Stripe-Signature)."},
    {.type = TD_OPT_DURATION,
     .name = "hmac.tolerance",
     .def = "5m",
     .offset = O(hmac_tolerance_ms),
     .min = 1000,
     .max = 86400000,
     .desc = "Largest difference between a signed timestamp and the clock."},
    {.type = TD_OPT_ENUM,
     .name = "preset",
     .def = "none",
     .offset = O(preset),
     .choices = "none|github|stripe|minio",
     .desc = "Fills the defaults of a service: github (HMAC SHA-256 in X-Hub-Signature-256 "
	     "with prefix sha256=), stripe (Stripe-Signature t=...,v1=...), minio (bearer "
	     "token, S3 notification format)."},
    {.type = TD_OPT_SIZE,
     .name = "max_body",
     .offset = O(max_body),
     .min = 1,
     .max = 1073741824,
     .desc = "Largest request body of this path (413 beyond). Default: the global "
	     "http.max_body."},
    {0},
};

static void webhook_finish(void *p)
{
	struct webhook_opts *o = p;
	static const int preset_auth[] = {
	    [PRESET_NONE] = WEBHOOK_AUTH_NONE,
	    [PRESET_GITHUB] = WEBHOOK_AUTH_HMAC,
	    [PRESET_STRIPE] = WEBHOOK_AUTH_HMAC,
	    [PRESET_MINIO] = WEBHOOK_AUTH_BEARER,
	};
	static const char *const preset_header[] = {
	    [PRESET_GITHUB] = "X-Hub-Signature-256",
	    [PRESET_STRIPE] = "Stripe-Signature",
	};
	static const char *const preset_prefix[] = {
	    [PRESET_GITHUB] = "sha256=",
	};

	if (o->preset < PRESET_NONE || o->preset > PRESET_MINIO)
		o->preset = PRESET_NONE;
	if (o->format < 0)
		o->format = o->preset == PRESET_MINIO ? WEBHOOK_S3 : WEBHOOK_RAW;
	if (o->auth < 0)
		o->auth = preset_auth[o->preset];
	/* Literal defaults: the runtime treats these as owned like the others. */
	if (!o->hmac_header && o->preset <= PRESET_STRIPE && preset_header[o->preset])
		o->hmac_header = strdup(preset_header[o->preset]);
	if (!o->hmac_prefix && o->preset == PRESET_GITHUB)
		o->hmac_prefix = strdup(preset_prefix[o->preset]);
}

static bool valid_path(const char *p)
{
	if (p[0] != '/' || strlen(p) > 1024)
		return false;
	for (; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '?' || *p == '#')
			return false;
	return true;
}

static bool valid_method(const char *m)
{
	size_t n = strlen(m);
	if (n == 0 || n > 16)
		return false;
	for (; *m; m++)
		if (!isupper((unsigned char)*m))
			return false;
	return true;
}

static bool valid_header_name(const char *h)
{
	if (!*h)
		return false;
	for (; *h; h++)
		if (!isalnum((unsigned char)*h) && !strchr("!#$%&'*+-.^_`|~", *h))
			return false;
	return true;
}

static void webhook_check(const void *p, const char *file, int line, struct td_diag *diag)
{
	const struct webhook_opts *o = p;

	if (!valid_path(o->path))
		td_diag_add(diag, file, line,
			    "option 'path': \"%.200s\" must start with \"/\" and hold no space, "
			    "control character, '?' or '#'",
			    o->path);
	for (size_t i = 0; i < o->methods.n; i++)
		if (!valid_method(o->methods.v[i]))
			td_diag_add(diag, file, line,
				    "option 'methods': \"%.40s\" is not an HTTP method (GET, POST, "
				    "PUT, ...)",
				    o->methods.v[i]);
	if (o->auth == WEBHOOK_AUTH_BEARER && !o->token)
		td_diag_add(diag, file, line, "auth bearer needs option 'token'");
	if (o->auth == WEBHOOK_AUTH_HMAC && !o->hmac_secret)
		td_diag_add(diag, file, line, "auth hmac needs option 'hmac.secret'");
	if (o->auth == WEBHOOK_AUTH_HMAC && !o->hmac_header)
		td_diag_add(diag, file, line,
			    "auth hmac needs option 'hmac.header' (or a preset that names it)");
	if (o->hmac_header && !valid_header_name(o->hmac_header))
		td_diag_add(diag, file, line,
			    "option 'hmac.header': \"%.80s\" is not a header name", o->hmac_header);
	if (o->hmac_timestamp_header && !valid_header_name(o->hmac_timestamp_header))
		td_diag_add(diag, file, line,
			    "option 'hmac.timestamp_header': \"%.80s\" is not a header name",
			    o->hmac_timestamp_header);
	if (o->preset == PRESET_STRIPE && o->hmac_algorithm != HMAC_SHA256)
		td_diag_add(diag, file, line, "preset stripe signs with hmac.algorithm sha256");
}

const struct td_source_ops td_source_webhook = {
    .name = "webhook",
    .summary = "HTTP requests to a path of the webhook listener (raw, CloudEvents, S3 "
	       "notifications)",
    .options = webhook_options,
    .opts_size = sizeof(struct webhook_opts),
    .check = webhook_check,
    .finish = webhook_finish,
    .unique_option = "path",
};
