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
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <triggerd/aws_event.h>
#include <triggerd/engine.h>
#include <triggerd/errors.h>
#include <triggerd/event.h>
#include <triggerd/function.h>
#include <triggerd/log.h>

#include "../router/http_server.h"
#include "../router/json.h"
#include "../router/retry.h"
#include "s3.h"
#include "webhook_auth.h"

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

/* ---- Runtime ------------------------------------------------------------------------
 *
 * start adds the source's path to the shared webhook listener; the route's handler runs
 * on the server's threads and never blocks: it checks the method (405 with Allow), the
 * path's own max_body (413; the server enforces it too once set), authentication (401
 * {"error": "..."}: nothing is routed), turns the request into events by format (400
 * with the reason when it cannot) and hands them to the router with the exchange as the
 * settle handle. The connection stays suspended until settle answers on the engine
 * thread:
 *
 *   DONE with a sync result  the function's status, content type and body
 *   DONE                     202 {"accepted": N, "ids": [...]} (N = async invocations
 *                            durably queued; 0 when nothing matched)
 *   FAILED                   502 with the function's error JSON, else {"error": reason}
 *   BUSY                     503, Retry-After in whole seconds, {"error": reason}
 *
 * A body that makes no event (an S3 test event) is answered 202 with accepted 0 at once.
 * Every answer is counted by status for /metrics. stop removes the route (waiting for
 * handlers that run); what was submitted before still gets its answer from settle.
 *
 * raw events: id from the request's delivery id when it has one (Idempotency-Key,
 * X-GitHub-Delivery, webhook-id: the same when the sender delivers again), else a new
 * UUID; source "triggerd/webhook/<source name>"; type triggerd.webhook.request; subject
 * the request path; extension httpmethod; time the moment of receipt; data the body
 * with Content-Type as datacontenttype. For the AWS function-URL request event
 * (triggerd/aws_event.h) they also carry httpheaders (every header as JSON object text;
 * the header this source authenticates with, Authorization or the HMAC signature
 * header, redacted), httpquery (the raw query string, when there is one) and
 * httpsourceip (the client's address).
 *
 * A sync result may carry response headers (an aws-format function's function-URL
 * response object, mapped by td_aws_result_to_http): they are sent with the answer.
 *
 * Threads: the context is written by start before the route exists and only read by
 * handlers afterwards, except the log rate limit, which has its own lock.
 */

#define RAW_TYPE	"triggerd.webhook.request"
#define MAX_DELIVERY_ID 200

struct webhook_ctx {
	struct td_http_server *http; /* while the route is added */
	char *allow;		     /* "POST, PUT": the Allow header of 405 answers */
	char *source_attr;	     /* "triggerd/webhook/<name>" */
	struct td_hmac_scheme scheme;
	bool lock_ready;
	pthread_mutex_t log_lock;
	struct td_log_ratelimit log_limit;
};

/* Headers whose value identifies one delivery, kept by the sender across retries. */
static const char *const delivery_headers[] = {"Idempotency-Key", "X-GitHub-Delivery",
					       "webhook-id"};

static void respond(struct td_source *src, struct td_http_exchange *ex, int status,
		    const char *content_type, const void *body, size_t len,
		    const struct td_http_header *headers, size_t nheaders)
{
	td_source_count_response(src, status);
	td_http_respond(ex, status, content_type, body, len, headers, nheaders);
}

/* {"error": reason}, with one extra header when h is not NULL. */
static void respond_error_with(struct td_source *src, struct td_http_exchange *ex, int status,
			       const char *reason, const struct td_http_header *h)
{
	static const char oom[] = "{\"error\":\"out of memory\"}";
	struct td_buf b;

	td_buf_init(&b);
	td_buf_appends(&b, "{\"error\":");
	td_json_append_cstr(&b, reason ? reason : "");
	td_buf_appendc(&b, '}');
	if (td_buf_failed(&b))
		respond(src, ex, status, "application/json", oom, sizeof oom - 1, h, h ? 1 : 0);
	else
		respond(src, ex, status, "application/json", b.data, b.len, h, h ? 1 : 0);
	td_buf_free(&b);
}

/* {"error": reason}, with Retry-After when retry_after_s > 0. */
static void respond_error(struct td_source *src, struct td_http_exchange *ex, int status,
			  const char *reason, long long retry_after_s)
{
	struct td_http_header h = {"Retry-After", NULL};
	char secs[24];

	if (retry_after_s <= 0) {
		respond_error_with(src, ex, status, reason, NULL);
		return;
	}
	snprintf(secs, sizeof secs, "%lld", retry_after_s);
	h.value = secs;
	respond_error_with(src, ex, status, reason, &h);
}

/* Logs why a request was refused, at most a few lines a second per source. */
static void log_refusal(struct td_source *src, const struct td_http_request *req, int status,
			const char *reason)
{
	struct webhook_ctx *c = td_source_ctx(src);
	bool ok;

	if (TD_LOG_INFO > td_log_threshold)
		return;
	pthread_mutex_lock(&c->log_lock);
	ok = td_log_ratelimit(&c->log_limit, 10, 1000);
	pthread_mutex_unlock(&c->log_lock);
	if (ok)
		td_logs_info(td_source_scope(src), "%d to %s %s from %s: %s", status, req->method,
			     req->path, req->remote, reason);
}

static void refuse(struct td_source *src, struct td_http_exchange *ex,
		   const struct td_http_request *req, int status, const char *reason)
{
	log_refusal(src, req, status, reason);
	respond_error(src, ex, status, reason, 0);
}

static bool method_allowed(const struct webhook_opts *o, const char *method)
{
	for (size_t i = 0; i < o->methods.n; i++)
		if (strcmp(o->methods.v[i], method) == 0)
			return true;
	return false;
}

/* The first header named name, or NULL; *count says how many there are. */
static const char *header_first(const struct td_http_request *req, const char *name, int *count)
{
	const char *v = NULL;

	*count = 0;
	for (size_t i = 0; i < req->nheaders; i++)
		if (strcasecmp(req->headers[i].name, name) == 0) {
			if (!v)
				v = req->headers[i].value;
			(*count)++;
		}
	return v;
}

static int authenticate(const struct webhook_opts *o, const struct webhook_ctx *c,
			const struct td_http_request *req, char *err, size_t errlen)
{
	switch (o->auth) {
	case WEBHOOK_AUTH_BEARER:
		return td_auth_bearer(req->headers, req->nheaders, o->token, err, errlen);
	case WEBHOOK_AUTH_HMAC:
		return td_auth_hmac(&c->scheme, o->hmac_secret, strlen(o->hmac_secret),
				    req->headers, req->nheaders, req->body, req->body_len,
				    td_wall_ms(), err, errlen);
	default:
		return 0;
	}
}

/* The raw query string, with the bytes a CloudEvents String cannot hold (controls, space,
 * bytes above 0x7E, which a well-formed URL has not) as %XX. */
static char *query_text(const char *q)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(q), k = 0;
	char *out = malloc(3 * n + 1);

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)q[i];
		if (ch <= 0x20 || ch >= 0x7f) {
			out[k++] = '%';
			out[k++] = hex[ch >> 4];
			out[k++] = hex[ch & 15];
		} else {
			out[k++] = (char)ch;
		}
	}
	out[k] = '\0';
	return out;
}

/* The client's address without its port: "127.0.0.1:5432" and "[::1]:5432". */
static void remote_ip(const char *remote, char *out, size_t cap)
{
	const char *end;

	if (!remote)
		remote = "";
	if (remote[0] == '[' && (end = strchr(remote, ']'))) {
		snprintf(out, cap, "%.*s", (int)(end - remote - 1), remote + 1);
		return;
	}
	end = strrchr(remote, ':');
	snprintf(out, cap, "%.*s", end ? (int)(end - remote) : (int)strlen(remote), remote);
}

/*
 * httpheaders, httpquery and httpsourceip (see the comment above). Every value is
 * ASCII text, so only memory can fail: 0 or -TD_ENOMEM.
 */
static int http_extensions(const struct webhook_opts *o, struct td_event *ev,
			   const struct td_http_request *req)
{
	const char *redact[2] = {NULL, NULL};
	char ip[64], *headers, *query = NULL;
	int rc = 0;

	if (o->auth == WEBHOOK_AUTH_BEARER)
		redact[0] = "Authorization";
	if (o->auth == WEBHOOK_AUTH_HMAC)
		redact[1] = o->hmac_header;
	headers = td_aws_headers_json(req->headers, req->nheaders, redact, 2);
	if (!headers || td_event_set(ev, TD_AWS_EXT_HEADERS, headers) < 0)
		rc = -TD_ENOMEM;
	free(headers);
	if (rc == 0 && req->query && *req->query) {
		query = query_text(req->query);
		if (!query || td_event_set(ev, TD_AWS_EXT_QUERY, query) < 0)
			rc = -TD_ENOMEM;
		free(query);
	}
	remote_ip(req->remote, ip, sizeof ip);
	if (rc == 0 && ip[0] && td_event_set(ev, TD_AWS_EXT_SOURCEIP, ip) < 0)
		rc = -TD_ENOMEM;
	return rc;
}

/* The raw event of a request. NULL with *status (400 or 503) and the reason in err. */
static struct td_event *raw_event(const struct webhook_opts *o, const struct webhook_ctx *c,
				  const struct td_http_request *req, int *status, char *err,
				  size_t errlen)
{
	struct td_event *ev = td_event_create();
	const char *ct, *id = NULL;
	char uuid[37];
	int count;

	*status = 503;
	if (!ev) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (size_t i = 0; !id && i < sizeof delivery_headers / sizeof delivery_headers[0]; i++) {
		const char *v = header_first(req, delivery_headers[i], &count);
		/* A delivery id that an attribute cannot hold is ignored, not refused. */
		if (v && count == 1 && *v && strlen(v) <= MAX_DELIVERY_ID &&
		    td_event_set(ev, "id", v) == 0)
			id = v;
	}
	if (!id) {
		td_uuid4(uuid);
		if (td_event_set(ev, "id", uuid) < 0)
			goto nomem;
	}
	if (td_event_set(ev, "source", c->source_attr) < 0 ||
	    td_event_set(ev, "type", RAW_TYPE) < 0 ||
	    td_event_set(ev, "httpmethod", req->method) < 0 ||
	    td_event_set_time_ms(ev, td_wall_ms()) < 0)
		goto nomem;
	if (http_extensions(o, ev, req) < 0)
		goto nomem;
	if (td_event_set(ev, "subject", req->path) < 0) {
		*status = 400;
		snprintf(err, errlen, "the request path is not valid UTF-8 text");
		goto fail;
	}
	ct = header_first(req, "Content-Type", &count);
	if (count > 1) {
		*status = 400;
		snprintf(err, errlen, "more than one Content-Type header");
		goto fail;
	}
	if (td_event_set_data(ev, req->body_len ? req->body : NULL, req->body_len, ct) < 0) {
		*status = 400;
		snprintf(err, errlen,
			 "header Content-Type: \"%.80s\" is not a media type (type/subtype)",
			 ct ? ct : "");
		goto fail;
	}
	return ev;
nomem:
	snprintf(err, errlen, "out of memory");
fail:
	td_event_unref(ev);
	return NULL;
}

/*
 * The events of a request by format: the count (0 or more) and *events (malloc'ed, or
 * NULL), or -1 with *status and the reason in err.
 */
static int build_events(const struct webhook_opts *o, const struct webhook_ctx *c,
			const struct td_http_request *req, struct td_event ***events, int *status,
			char *err, size_t errlen)
{
	struct td_event *ev;
	char msg[256];
	int n;

	*events = NULL;
	switch (o->format) {
	case WEBHOOK_S3:
		n = td_s3_parse(req->body, req->body_len, events, msg, sizeof msg);
		if (n >= 0)
			return n;
		*status = n == -TD_ENOMEM ? 503 : 400;
		snprintf(err, errlen, "not an S3 event notification: %s", msg);
		return -1;
	case WEBHOOK_CLOUDEVENTS:
		ev = td_event_from_http(req->headers, req->nheaders, req->body, req->body_len, msg,
					sizeof msg);
		if (!ev) {
			*status = strcmp(msg, "out of memory") == 0 ? 503 : 400;
			snprintf(err, errlen, "%s", msg);
			return -1;
		}
		break;
	default:
		ev = raw_event(o, c, req, status, err, errlen);
		if (!ev)
			return -1;
		break;
	}
	*events = malloc(sizeof **events);
	if (!*events) {
		td_event_unref(ev);
		*status = 503;
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	(*events)[0] = ev;
	return 1;
}

/* The route's handler: one request, on a server thread. */
static void on_request(void *arg, struct td_http_exchange *ex)
{
	struct td_source *src = arg;
	struct webhook_ctx *c = td_source_ctx(src);
	const struct webhook_opts *o = td_source_opts(src);
	const struct td_http_request *req = td_http_request(ex);
	struct td_event **events = NULL;
	char err[320] = "", limit[32];
	int n, rc, status = 0;

	if (!method_allowed(o, req->method)) {
		struct td_http_header allow = {"Allow", c->allow};

		snprintf(err, sizeof err, "method %.16s is not allowed: use %.200s", req->method,
			 c->allow);
		log_refusal(src, req, 405, err);
		respond_error_with(src, ex, 405, err, &allow);
		return;
	}
	if (o->max_body > 0 && req->body_len > (unsigned long long)o->max_body) {
		td_size_format(o->max_body, limit, sizeof limit);
		snprintf(err, sizeof err, "the body is %zu bytes, over this path's max_body of %s",
			 req->body_len, limit);
		refuse(src, ex, req, 413, err);
		return;
	}
	rc = authenticate(o, c, req, err, sizeof err);
	if (rc == -TD_ENOMEM) {
		respond_error(src, ex, 503, "out of memory", 1);
		return;
	}
	if (rc < 0) {
		refuse(src, ex, req, 401, err);
		return;
	}
	n = build_events(o, c, req, &events, &status, err, sizeof err);
	if (n < 0) {
		if (status == 503) {
			td_logs_error(td_source_scope(src), "%s", err);
			respond_error(src, ex, 503, err, 1);
		} else {
			refuse(src, ex, req, status, err);
		}
		return;
	}
	if (n == 0) {
		static const char none[] = "{\"accepted\":0,\"ids\":[]}";
		respond(src, ex, 202, "application/json", none, sizeof none - 1, NULL, 0);
		return;
	}
	/* From here the exchange belongs to the settle callback: do not touch ex or req. */
	if (td_source_submit(src, events, n, ex) < 0)
		respond_error(src, ex, 503, "triggerd is stopping or out of memory", 1);
	free(events);
}

/* A content type for a result that came without one. */
static const char *implied_type(const struct td_result *r)
{
	if (!r->body || r->body_len == 0)
		return NULL;
	if (td_json_valid(r->body, r->body_len, 0))
		return "application/json";
	if (td_utf8_valid(r->body, r->body_len, NULL))
		return "text/plain; charset=utf-8";
	return "application/octet-stream";
}

static void respond_result(struct td_source *src, struct td_http_exchange *ex,
			   const struct td_result *r)
{
	int status = r->http_status >= 200 && r->http_status <= 599 ? r->http_status : 200;
	bool no_body = status == 204 || status == 304;
	struct td_http_header few[16], *h = few;

	if (r->nheaders > sizeof few / sizeof few[0]) {
		h = malloc(r->nheaders * sizeof *h);
		if (!h) {
			respond_error(src, ex, 503, "out of memory", 1);
			return;
		}
	}
	for (size_t i = 0; i < r->nheaders; i++)
		h[i] = (struct td_http_header){r->headers[i].name, r->headers[i].value};
	respond(src, ex, status,
		no_body		  ? NULL
		: r->content_type ? r->content_type
				  : implied_type(r),
		no_body ? NULL : r->body, no_body ? 0 : r->body_len, h, r->nheaders);
	if (h != few)
		free(h);
}

static void respond_accepted(struct td_source *src, struct td_http_exchange *ex,
			     const struct td_settlement *s)
{
	struct td_buf b;

	td_buf_init(&b);
	td_buf_printf(&b, "{\"accepted\":%d,\"ids\":[", s->accepted);
	for (int i = 0; i < s->n_events; i++) {
		if (i)
			td_buf_appendc(&b, ',');
		td_json_append_cstr(&b, s->event_ids[i] ? s->event_ids[i] : "");
	}
	td_buf_appends(&b, "]}");
	if (td_buf_failed(&b))
		respond_error(src, ex, 503, "out of memory", 1);
	else
		respond(src, ex, 202, "application/json", b.data, b.len, NULL, 0);
	td_buf_free(&b);
}

static void webhook_settle(struct td_source *src, void *handle, const struct td_settlement *s)
{
	struct td_http_exchange *ex = handle;
	const struct td_result *r = s->result;
	long long secs;

	switch (s->status) {
	case TD_SETTLE_DONE:
		if (r)
			respond_result(src, ex, r);
		else
			respond_accepted(src, ex, s);
		break;
	case TD_SETTLE_FAILED:
		if (r && r->body && r->body_len && td_json_valid(r->body, r->body_len, 0))
			respond(src, ex, 502, "application/json", r->body, r->body_len, NULL, 0);
		else
			respond_error(src, ex, 502, s->reason ? s->reason : "function failed", 0);
		break;
	default:
		secs = s->retry_after_ms > 0 ? (s->retry_after_ms + 999) / 1000 : 1;
		respond_error(src, ex, 503, s->reason ? s->reason : "busy", secs);
		break;
	}
}

static int webhook_start(struct td_source *src)
{
	struct webhook_ctx *c = td_source_ctx(src);
	const struct webhook_opts *o = td_source_opts(src);
	struct td_http_server *http = td_source_webhook_http(src);
	struct td_buf allow;
	char *attr = NULL;
	int rc;

	if (!c->lock_ready) {
		pthread_mutex_init(&c->log_lock, NULL);
		c->lock_ready = true;
	}
	if (!http) {
		td_logs_error(td_source_scope(src), "no webhook listener (webhook.listen)");
		td_source_set_ready(src, false, "no webhook listener");
		return -TD_ESTATE;
	}
	td_buf_init(&allow);
	for (size_t i = 0; i < o->methods.n; i++) {
		if (i)
			td_buf_appends(&allow, ", ");
		td_buf_appends(&allow, o->methods.v[i]);
	}
	td_buf_appends(&allow, ""); /* an empty list is an empty Allow, not NULL */
	if (td_buf_failed(&allow) ||
	    asprintf(&attr, "triggerd/webhook/%s", td_source_name(src)) < 0) {
		attr = NULL;
		rc = -TD_ENOMEM;
		goto fail;
	}
	free(c->allow);
	free(c->source_attr);
	c->allow = td_buf_steal(&allow, NULL);
	c->source_attr = attr;
	attr = NULL;
	if (!c->allow) {
		rc = -TD_ENOMEM;
		goto fail;
	}
	c->scheme = (struct td_hmac_scheme){
	    .style = o->preset == PRESET_STRIPE ? TD_HMAC_STRIPE : TD_HMAC_PLAIN,
	    .algorithm = o->hmac_algorithm == HMAC_SHA1 ? TD_HMAC_SHA1 : TD_HMAC_SHA256,
	    .encoding = o->hmac_encoding == HMAC_BASE64 ? TD_HMAC_BASE64 : TD_HMAC_HEX,
	    .header = o->hmac_header,
	    .prefix = o->hmac_prefix,
	    .timestamp_header = o->hmac_timestamp_header,
	    .tolerance_ms = o->hmac_tolerance_ms,
	};
	/* The context is complete: requests may come from now on. */
	rc = td_http_route_add(http, o->path, on_request, src);
	if (rc < 0) {
		td_logs_error(td_source_scope(src), "cannot serve path %s: %s", o->path,
			      rc == -TD_ENOMEM ? "out of memory" : "taken or malformed");
		goto fail;
	}
	c->http = http;
	if (o->max_body > 0)
		td_http_route_set_max_body(http, o->path, o->max_body);
	td_logs_info(td_source_scope(src), "serving %s (%s)", o->path, c->allow);
	td_source_set_ready(src, true, NULL);
	return 0;
fail:
	td_buf_free(&allow);
	free(attr);
	td_source_set_ready(src, false, rc == -TD_ENOMEM ? "out of memory" : "path not served");
	return rc;
}

static void webhook_stop(struct td_source *src)
{
	struct webhook_ctx *c = td_source_ctx(src);
	const struct webhook_opts *o = td_source_opts(src);

	if (!c->http)
		return;
	td_http_route_remove(c->http, o->path);
	c->http = NULL;
	td_source_set_ready(src, false, "stopped");
}

static void webhook_destroy(struct td_source *src)
{
	struct webhook_ctx *c = td_source_ctx(src);

	webhook_stop(src);
	free(c->allow);
	free(c->source_attr);
	c->allow = c->source_attr = NULL;
	if (c->lock_ready) {
		pthread_mutex_destroy(&c->log_lock);
		c->lock_ready = false;
	}
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
    .ctx_size = sizeof(struct webhook_ctx),
    .start = webhook_start,
    .stop = webhook_stop,
    .settle = webhook_settle,
    .destroy = webhook_destroy,
};
