/*
 * The lambda function kind: an invocation calls the AWS Lambda Invoke API of a remote
 * function (or of any endpoint that speaks it), signed with SigV4. With handoff, an
 * async trigger hands the event to Lambda's own asynchronous invocation
 * (InvocationType Event) instead of retrying in triggerd.
 *
 * This file holds the options of the kind and their checks, then the runtime.
 *
 * Runtime. Everything runs on the engine thread. An invocation is one POST
 * {endpoint}/2015-03-31/functions/{FunctionName}/invocations[?Qualifier=...] on its own
 * CURL easy handle, run on the engine's transfer thread (td_engine_curl_start, whose
 * connection pool is shared, so calls reuse kept-alive connections). The body is the
 * event in the function's event_format (aws: td_event_aws_payload; cloudevents: the
 * CloudEvent JSON); the header
 * X-Amz-Invocation-Type is RequestResponse, or Event for an async invocation with
 * handoff (then Lambda owns retries and its 202 is success).
 *
 * Signing. Credentials are read once at create: the options, else AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN from the environment (a session token
 * travels as X-Amz-Security-Token). libcurl signs with CURLOPT_AWS_SIGV4
 * "aws:amz:REGION:lambda" when the path needs no %-escapes (a plain function name).
 * libcurl 7.88 (Debian 12) signs the path as it is sent, while AWS signs every service
 * but S3 with the path encoded twice (an ARN's ':' goes as %3A and is signed as %253A:
 * botocore's SigV4Auth._normalize_url_path, the JavaScript SDK's getCanonicalPath), so
 * a name with ':' (an ARN, a partial ARN, name:qualifier) is signed here with
 * router/sigv4.c instead: Host, X-Amz-Date, Content-Type and the X-Amz-* headers, and
 * Authorization set by hand.
 *
 * Outcome: 200 is the function's result, unless X-Amz-Function-Error says it failed
 * (the body is its error document: a sync invocation fails, an async one is retried,
 * as Lambda retries its own async invocations); 202 (Event) is success; 429 is
 * throttled (Retry-After honoured); 5xx and connection failures are retryable; another
 * 4xx is a permanent error named by its x-amzn-ErrorType and message.
 *
 * At destroy the calls still running are taken off the multi handle and freed without
 * completing them (function.h).
 */
#include <triggerd/aws_event.h>
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

#include <curl/curl.h>
#include <jansson.h>

#include "../router/json.h"
#include "../router/sigv4.h"
#include "http_util.h"

struct lambda_opts {
	struct td_function_common common;
	char *function_name;
	char *region;
	char *endpoint; /* NULL: https://lambda.REGION.amazonaws.com */
	char *qualifier;
	char *access_key_id; /* NULL: the AWS_* environment variables at run time */
	char *secret_access_key;
	char *session_token;
	bool handoff;
};

#define O(field) offsetof(struct lambda_opts, field)

static const struct td_option lambda_options[] = {
    TD_FUNCTION_COMMON_OPTIONS(struct lambda_opts, "30s", "64", "aws"),
    {.type = TD_OPT_STRING,
     .name = "function_name",
     .flags = TD_OPT_REQUIRED,
     .offset = O(function_name),
     .desc = "Name, ARN or partial ARN of the Lambda function."},
    {.type = TD_OPT_STRING,
     .name = "region",
     .def = "us-east-1",
     .offset = O(region),
     .desc = "AWS region of the function."},
    {.type = TD_OPT_STRING,
     .name = "endpoint",
     .offset = O(endpoint),
     .desc = "http(s) URL of the Invoke API. Default: https://lambda.REGION.amazonaws.com."},
    {.type = TD_OPT_STRING,
     .name = "qualifier",
     .offset = O(qualifier),
     .desc = "Version or alias to invoke. Default: none ($LATEST)."},
    {.type = TD_OPT_STRING,
     .name = "access_key_id",
     .offset = O(access_key_id),
     .desc = "AWS access key id. Default: none: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY "
	     "and AWS_SESSION_TOKEN from the environment."},
    {.type = TD_OPT_STRING,
     .name = "secret_access_key",
     .flags = TD_OPT_SECRET,
     .offset = O(secret_access_key),
     .desc = "AWS secret access key (with access_key_id). Default: none."},
    {.type = TD_OPT_STRING,
     .name = "session_token",
     .flags = TD_OPT_SECRET,
     .offset = O(session_token),
     .desc = "AWS session token of temporary credentials. Default: none."},
    {.type = TD_OPT_BOOL,
     .name = "handoff",
     .def = "false",
     .offset = O(handoff),
     .desc = "For async triggers: hand the event to Lambda's asynchronous invocation "
	     "(InvocationType Event) instead of queueing and retrying in triggerd."},
    {0},
};

static bool all_chars(const char *s, const char *extra)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr(extra, *s))
			return false;
	return true;
}

static void lambda_check(const void *p, const char *file, int line, struct td_diag *diag)
{
	const struct lambda_opts *o = p;
	char err[256];

	if (strlen(o->function_name) > 170 || !all_chars(o->function_name, "-_:$"))
		td_diag_add(diag, file, line,
			    "option 'function_name': \"%.80s\" is not a function name or ARN",
			    o->function_name);
	if (!all_chars(o->region, "-"))
		td_diag_add(diag, file, line, "option 'region': \"%.80s\" is not an AWS region",
			    o->region);
	if (o->endpoint && td_url_check(o->endpoint, "http://|https://", err, sizeof err) < 0)
		td_diag_add(diag, file, line, "option 'endpoint': %s", err);
	if (o->qualifier && (strlen(o->qualifier) > 128 || !all_chars(o->qualifier, "-_$")))
		td_diag_add(diag, file, line,
			    "option 'qualifier': \"%.80s\" is not a version or an alias",
			    o->qualifier);
	if (!o->access_key_id != !o->secret_access_key)
		td_diag_add(diag, file, line,
			    "options 'access_key_id' and 'secret_access_key' go together");
	if (o->session_token && !o->access_key_id)
		td_diag_add(diag, file, line, "option 'session_token' needs access_key_id");
}

/* ---- Runtime ---- */

#define INVOKE_PREFIX "/2015-03-31/functions/"

struct lambda_call;

struct lambda_ctx {
	struct td_function *fn;
	const struct lambda_opts *opts;
	struct td_engine *engine;
	char *url;   /* the whole Invoke URL */
	char *path;  /* its path as sent (own signing) */
	char *query; /* its query, or NULL (own signing) */
	char *host;  /* the Host header libcurl sends (own signing) */
	char *shown; /* for messages: endpoint and function */
	char *key, *secret, *token;
	char *userpwd; /* key:secret */
	char *sigv4;   /* "aws:amz:REGION:lambda" */
	bool own_signing;
	struct lambda_call *running; /* in flight, doubly linked */
};

struct lambda_call {
	struct lambda_ctx *ctx;
	struct td_invocation *inv;
	CURL *easy;
	struct curl_slist *headers;
	char *body;
	size_t body_len;
	char *client_context; /* X-Amz-Client-Context (base64), or NULL */
	struct td_buf response;
	bool too_large;
	char errbuf[CURL_ERROR_SIZE];
	struct lambda_call *prev, *next;
};

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

/* The request body in the function's event format. */
static char *event_body(const struct lambda_ctx *ctx, const struct td_event *ev, size_t *len)
{
	if (ctx->opts->common.event_format == TD_FORMAT_AWS)
		return td_event_aws_payload(ev, len);
	return td_event_to_json(ev, len);
}

static void call_free(struct lambda_call *call)
{
	if (call->easy)
		curl_easy_cleanup(call->easy);
	curl_slist_free_all(call->headers);
	free(call->body);
	free(call->client_context);
	td_buf_free(&call->response);
	free(call);
}

static void running_add(struct lambda_ctx *ctx, struct lambda_call *call)
{
	call->prev = NULL;
	call->next = ctx->running;
	if (ctx->running)
		ctx->running->prev = call;
	ctx->running = call;
}

static void running_remove(struct lambda_ctx *ctx, struct lambda_call *call)
{
	if (call->prev)
		call->prev->next = call->next;
	else
		ctx->running = call->next;
	if (call->next)
		call->next->prev = call->prev;
	call->prev = call->next = NULL;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct lambda_call *call = arg;
	size_t bytes = size * n;
	if ((long long)(call->response.len + bytes) > TD_HTTP_MAX_RESPONSE) {
		call->too_large = true;
		return 0;
	}
	if (td_buf_append(&call->response, p, bytes) < 0)
		return 0;
	return bytes;
}

/* A response header's value, or NULL. */
static const char *response_header(struct lambda_call *call, const char *name)
{
	struct curl_header *h = NULL;
	if (curl_easy_header(call->easy, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK || !h)
		return NULL;
	return h->value;
}

/* A string member of a JSON object body, copied into out (or "" when absent). */
static void body_member(const struct td_buf *body, const char *const *names, char *out, size_t cap)
{
	json_t *doc = body->len ? json_loadb(body->data, body->len, 0, NULL) : NULL;
	out[0] = '\0';
	for (const char *const *n = names; doc && json_is_object(doc) && *n; n++) {
		const char *v = json_string_value(json_object_get(doc, *n));
		if (v) {
			snprintf(out, cap, "%s", v);
			break;
		}
	}
	json_decref(doc);
}

/* The body of a failure: the remote JSON document when there is one, else ours. */
static void failure_body(struct lambda_call *call, struct td_result *res, const char *type)
{
	if (call->response.len > 0 && !call->too_large &&
	    td_json_valid(call->response.data, call->response.len, 0)) {
		res->body = td_bytes_dup(call->response.data, call->response.len);
		res->body_len = res->body ? call->response.len : 0;
	} else {
		res->body =
		    td_json_error_document(type, res->error ? res->error : type, &res->body_len);
	}
	res->content_type = strdup("application/json");
}

static void retry_after(struct lambda_call *call, struct td_result *res)
{
	const char *v = response_header(call, "Retry-After");
	char err[128];
	long long ms;
	if (v && td_http_retry_after_parse(v, strlen(v), td_wall_ms(), &ms, err, sizeof err) == 0)
		res->retry_after_ms = ms;
}

/* 200 with X-Amz-Function-Error: the function failed; its error document is the body. */
static void function_error(struct lambda_call *call, const char *kind, struct td_result *res)
{
	static const char *const type_names[] = {"errorType", NULL};
	static const char *const message_names[] = {"errorMessage", NULL};
	char type[128], message[512];

	body_member(&call->response, type_names, type, sizeof type);
	body_member(&call->response, message_names, message, sizeof message);
	res->status = call->inv->sync ? TD_RESULT_ERROR : TD_RESULT_RETRY;
	res->http_status = 502;
	res->error = format_error("function error (%s) from %s%s%s%s%s", kind, call->ctx->shown,
				  type[0] ? ": " : "", type, message[0] ? ": " : "", message);
	failure_body(call, res, type[0] ? type : "FunctionError");
}

/* An answer other than 200/202: AWS's error type and message. */
static void aws_error(struct lambda_call *call, long status, struct td_result *res)
{
	static const char *const message_names[] = {"Message", "message", "errorMessage", NULL};
	static const char *const type_names[] = {"__type", "Type", "code", NULL};
	char type[128], message[512];
	const char *t = response_header(call, "x-amzn-ErrorType");

	if (t)
		snprintf(type, sizeof type, "%.*s", (int)strcspn(t, ":"), t);
	else
		body_member(&call->response, type_names, type, sizeof type);
	if (!type[0])
		snprintf(type, sizeof type, "HTTPError");
	body_member(&call->response, message_names, message, sizeof message);
	res->status = td_http_status_outcome(status);
	res->http_status = (int)status;
	res->error = format_error("HTTP %ld %s from %s%s%s", status, type, call->ctx->shown,
				  message[0] ? ": " : "", message);
	failure_body(call, res, type);
	if (res->status == TD_RESULT_RETRY) {
		res->throttled = status == 429;
		retry_after(call, res);
	}
}

static void answered(struct lambda_call *call, long status, const char *ctype,
		     struct td_result *res)
{
	const char *ferr = response_header(call, "X-Amz-Function-Error");

	if (status == 200 && ferr) {
		function_error(call, ferr, res);
		return;
	}
	if (status < 200 || status > 299) {
		aws_error(call, status, res);
		return;
	}
	res->status = TD_RESULT_OK;
	res->http_status = 200;
	if (call->response.len > 0) {
		res->body = td_bytes_dup(call->response.data, call->response.len);
		res->body_len = res->body ? call->response.len : 0;
	}
	res->content_type = strdup(ctype ? ctype : "application/json");
	if ((call->response.len > 0 && !res->body) || !res->content_type) {
		res->status = TD_RESULT_RETRY;
		res->error =
		    format_error("out of memory keeping the response of %s", call->ctx->shown);
		return;
	}
	if (call->inv->sync && call->ctx->opts->common.event_format == TD_FORMAT_AWS)
		td_aws_result_to_http(call->inv->event, res);
}

static void failed(struct lambda_call *call, CURLcode code, long status, struct td_result *res)
{
	struct lambda_ctx *ctx = call->ctx;
	const char *detail = call->errbuf[0] ? call->errbuf : curl_easy_strerror(code);
	const char *type = "ConnectionError";

	res->status = td_http_curl_outcome(code);
	res->http_status = 502;
	if (call->too_large) {
		res->status = TD_RESULT_ERROR;
		res->error = format_error("the response from %s (HTTP %ld) is larger than %lld MB",
					  ctx->shown, status, TD_HTTP_MAX_RESPONSE / (1024 * 1024));
		type = "ResponseTooLarge";
	} else if (call->response.oom) {
		res->status = TD_RESULT_RETRY;
		res->error = format_error("out of memory reading the response from %s", ctx->shown);
		type = "OutOfMemory";
	} else if (code == CURLE_OPERATION_TIMEDOUT) {
		res->http_status = 504;
		res->error =
		    format_error("timed out after %.2f s calling %s",
				 (double)ctx->opts->common.timeout_ms / 1000.0, ctx->shown);
		type = "TimeoutError";
	} else if (code == CURLE_COULDNT_CONNECT) {
		long os_errno = 0;
		curl_easy_getinfo(call->easy, CURLINFO_OS_ERRNO, &os_errno);
		res->error = os_errno == ECONNREFUSED
				 ? format_error("connection refused: %s", ctx->shown)
				 : format_error("cannot connect to %s: %s", ctx->shown, detail);
	} else {
		res->error = format_error("request to %s failed: %s", ctx->shown, detail);
		if (res->status == TD_RESULT_ERROR)
			type = "InvalidResponse";
	}
	failure_body(call, res, type);
}

static void on_done(void *arg, CURLcode code)
{
	struct lambda_call *call = arg;
	struct lambda_ctx *ctx = call->ctx;
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
		failed(call, code, status, &res);
	if (res.status != TD_RESULT_OK && !res.error)
		res.status = TD_RESULT_RETRY; /* out of memory describing the failure */
	inv->kind_state = NULL;
	call_free(call);
	td_invocation_complete(inv, &res);
}

static bool add_header(struct curl_slist **list, const char *name, const char *value)
{
	char *line = format_error("%s: %s", name, value);
	struct curl_slist *l = line ? curl_slist_append(*list, line) : NULL;
	free(line);
	if (l)
		*list = l;
	return l != NULL;
}

/* Signs the call with router/sigv4.c (see the top of this file). */
static int sign_call(struct lambda_call *call, const char *invocation_type)
{
	struct lambda_ctx *ctx = call->ctx;
	char date[17], err[256];
	struct td_buf auth;
	struct td_http_header h[6];
	size_t n = 0;
	int rc;

	td_sigv4_format_date(td_wall_ms(), date);
	h[n++] = (struct td_http_header){"Host", ctx->host};
	h[n++] = (struct td_http_header){"X-Amz-Date", date};
	h[n++] = (struct td_http_header){"Content-Type", "application/json"};
	h[n++] = (struct td_http_header){"X-Amz-Invocation-Type", invocation_type};
	if (ctx->token)
		h[n++] = (struct td_http_header){"X-Amz-Security-Token", ctx->token};
	if (call->client_context)
		h[n++] = (struct td_http_header){"X-Amz-Client-Context", call->client_context};
	const struct td_sigv4_request req = {
	    .method = "POST",
	    .path = ctx->path,
	    .query = ctx->query,
	    .headers = h,
	    .nheaders = n,
	    .body = call->body,
	    .body_len = call->body_len,
	};
	const struct td_sigv4_signer signer = {.access_key = ctx->key,
					       .secret = ctx->secret,
					       .region = ctx->opts->region,
					       .service = "lambda"};
	td_buf_init(&auth);
	rc = td_sigv4_authorization(&req, date, &signer, &auth, err, sizeof err);
	if (rc == 0 && (!add_header(&call->headers, "Host", ctx->host) ||
			!add_header(&call->headers, "X-Amz-Date", date) ||
			!add_header(&call->headers, "Authorization", auth.data)))
		rc = -TD_ENOMEM;
	if (rc == -TD_EINVAL)
		td_logs_error(td_function_scope(ctx->fn), "cannot sign the request: %s", err);
	td_buf_free(&auth);
	return rc;
}

static int lambda_invoke(struct td_function *fn, struct td_invocation *inv)
{
	struct lambda_ctx *ctx = td_function_ctx(fn);
	struct lambda_call *call = calloc(1, sizeof *call);
	const char *type = ctx->opts->handoff && !inv->sync ? "Event" : "RequestResponse";
	int rc = -TD_ENOMEM;

	if (!call)
		return -TD_ENOMEM;
	call->ctx = ctx;
	call->inv = inv;
	call->body = event_body(ctx, inv->event, &call->body_len);
	call->easy = curl_easy_init();
	if (!call->body || !call->easy)
		goto fail;
	if (inv->client_context) { /* the caller's, passed on as the Invoke API takes it */
		struct td_buf b64 = {0};
		size_t len;
		td_base64_encode(&b64, inv->client_context, strlen(inv->client_context));
		call->client_context = td_buf_steal(&b64, &len);
		td_buf_free(&b64);
		if (!call->client_context ||
		    !add_header(&call->headers, "X-Amz-Client-Context", call->client_context))
			goto fail;
	}
	if (!add_header(&call->headers, "Content-Type", "application/json") ||
	    !add_header(&call->headers, "X-Amz-Invocation-Type", type) ||
	    (ctx->token && !add_header(&call->headers, "X-Amz-Security-Token", ctx->token)))
		goto fail;
	if (ctx->own_signing) {
		/* No 100-continue round trip. Not with libcurl's signer: 7.88 signs the
		 * "Expect:" that only tells it to leave the header out. */
		struct curl_slist *l = curl_slist_append(call->headers, "Expect:");
		if (!l)
			goto fail;
		call->headers = l;
		if ((rc = sign_call(call, type)) < 0)
			goto fail;
	} else {
		curl_easy_setopt(call->easy, CURLOPT_AWS_SIGV4, ctx->sigv4);
		curl_easy_setopt(call->easy, CURLOPT_USERPWD, ctx->userpwd);
	}

	long long left = inv->deadline_ms - td_now_ms();
	if (left > ctx->opts->common.timeout_ms || left <= 0)
		left = left <= 0 ? 1 : ctx->opts->common.timeout_ms;
	CURL *e = call->easy;
	rc = -TD_EINVAL;
	if (curl_easy_setopt(e, CURLOPT_URL, ctx->url) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK)
		goto fail;
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "triggerd");
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, call->body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, call->headers);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, call);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, call->errbuf);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)left);
	inv->kind_state = call;
	running_add(ctx, call);
	rc = td_engine_curl_start(ctx->engine, e, on_done, call);
	if (rc < 0) {
		running_remove(ctx, call);
		inv->kind_state = NULL;
		goto fail;
	}
	return 0;
fail:
	call_free(call);
	return rc;
}

static char *dup_or_null(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

/* The Host header libcurl sends for url: the host, with the port when it is not the
 * scheme's default. */
static char *host_header(CURLU *u)
{
	char *host = NULL, *port = NULL, *scheme = NULL, *out = NULL;
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK)
		goto done;
	if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK && port &&
	    !(strcmp(scheme, "http") == 0 && strcmp(port, "80") == 0) &&
	    !(strcmp(scheme, "https") == 0 && strcmp(port, "443") == 0))
		out = format_error("%s:%s", host, port);
	else
		out = strdup(host);
done:
	curl_free(host);
	curl_free(port);
	curl_free(scheme);
	return out;
}

static void wipe_free(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

/* Frees what create made (the calls excepted). */
static void ctx_clear(struct lambda_ctx *ctx)
{
	free(ctx->url);
	free(ctx->path);
	free(ctx->query);
	free(ctx->host);
	free(ctx->shown);
	free(ctx->sigv4);
	free(ctx->key);
	wipe_free(ctx->secret);
	wipe_free(ctx->token);
	wipe_free(ctx->userpwd);
	memset(ctx, 0, sizeof *ctx);
}

static int lambda_create(struct td_function *fn)
{
	struct lambda_ctx *ctx = td_function_ctx(fn);
	const struct lambda_opts *o = td_function_opts(fn);
	const char *scope = td_function_scope(fn);
	struct td_buf url;
	CURLU *u = NULL;
	char *endpoint = NULL;
	int rc = -TD_ENOMEM;

	td_buf_init(&url);
	ctx->fn = fn;
	ctx->opts = o;
	ctx->engine = td_function_engine(fn);
	if (o->access_key_id) {
		ctx->key = strdup(o->access_key_id);
		ctx->secret = strdup(o->secret_access_key);
		ctx->token = dup_or_null(o->session_token);
		if (!ctx->key || !ctx->secret ||
		    (o->session_token && *o->session_token && !ctx->token))
			goto fail;
	} else {
		const char *k = getenv("AWS_ACCESS_KEY_ID"), *s = getenv("AWS_SECRET_ACCESS_KEY");
		if (!k || !*k || !s || !*s) {
			td_logs_error(
			    scope, "no AWS credentials: set access_key_id and secret_access_key, "
				   "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in triggerd's "
				   "environment");
			rc = -TD_EINVAL;
			goto fail;
		}
		ctx->key = strdup(k);
		ctx->secret = strdup(s);
		ctx->token = dup_or_null(getenv("AWS_SESSION_TOKEN"));
		if (!ctx->key || !ctx->secret ||
		    (getenv("AWS_SESSION_TOKEN") && *getenv("AWS_SESSION_TOKEN") && !ctx->token))
			goto fail;
	}
	if (strchr(ctx->key, ':')) {
		td_logs_error(scope, "the access key id must not hold ':'");
		rc = -TD_EINVAL;
		goto fail;
	}
	ctx->userpwd = format_error("%s:%s", ctx->key, ctx->secret);
	ctx->sigv4 = format_error("aws:amz:%s:lambda", o->region);
	endpoint = o->endpoint ? strdup(o->endpoint)
			       : format_error("https://lambda.%s.amazonaws.com", o->region);
	if (!ctx->userpwd || !ctx->sigv4 || !endpoint)
		goto fail;
	size_t elen = strlen(endpoint);
	while (elen > 0 && endpoint[elen - 1] == '/')
		endpoint[--elen] = '\0';

	/* The path: the endpoint's own path (usually none), then the Invoke path. */
	td_buf_appends(&url, endpoint);
	td_buf_appends(&url, INVOKE_PREFIX);
	td_sigv4_uri_encode(o->function_name, strlen(o->function_name), false, &url);
	td_buf_appends(&url, "/invocations");
	if (o->qualifier) {
		td_buf_appends(&url, "?Qualifier=");
		td_sigv4_uri_encode(o->qualifier, strlen(o->qualifier), false, &url);
	}
	if (td_buf_failed(&url))
		goto fail;
	ctx->url = td_buf_steal(&url, NULL);
	if (!ctx->url)
		goto fail;
	ctx->shown = format_error("%s (function %s%s%s)", endpoint, o->function_name,
				  o->qualifier ? ":" : "", o->qualifier ? o->qualifier : "");
	if (!ctx->shown)
		goto fail;

	u = curl_url();
	if (!u)
		goto fail;
	if (curl_url_set(u, CURLUPART_URL, ctx->url, 0) != CURLUE_OK) {
		td_logs_error(scope, "the endpoint %s does not make a valid URL", endpoint);
		rc = -TD_EINVAL;
		goto fail;
	}
	char *path = NULL, *query = NULL;
	if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
		rc = -TD_EINVAL;
		goto fail;
	}
	ctx->path = strdup(path);
	curl_free(path);
	if (curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK && query) {
		ctx->query = strdup(query);
		curl_free(query);
		if (!ctx->query)
			goto fail;
	}
	ctx->host = host_header(u);
	if (!ctx->path || !ctx->host)
		goto fail;
	ctx->own_signing = strchr(ctx->path, '%') != NULL;
	curl_url_cleanup(u);
	free(endpoint);
	return 0;
fail:
	curl_url_cleanup(u);
	free(endpoint);
	td_buf_free(&url);
	if (rc == -TD_ENOMEM)
		td_logs_error(scope, "out of memory");
	ctx_clear(ctx);
	return rc;
}

static void lambda_destroy(struct td_function *fn)
{
	struct lambda_ctx *ctx = td_function_ctx(fn);
	while (ctx->running) {
		struct lambda_call *call = ctx->running;
		running_remove(ctx, call);
		td_engine_curl_cancel(ctx->engine, call->easy);
		if (call->inv)
			call->inv->kind_state = NULL;
		call_free(call);
	}
	ctx_clear(ctx);
}

const struct td_function_ops td_function_lambda = {
    .name = "lambda",
    .summary = "Invoke a remote AWS Lambda function (Invoke API, SigV4)",
    .options = lambda_options,
    .opts_size = sizeof(struct lambda_opts),
    .check = lambda_check,
    .ctx_size = sizeof(struct lambda_ctx),
    .create = lambda_create,
    .invoke = lambda_invoke,
    .destroy = lambda_destroy,
};
