/*
 * The Lambda Invoke API (see invoke_api.h). One prefix route on the admin listener.
 *
 * Everything that needs only the request is done on the HTTP server's thread: the
 * token, the path (FunctionName and Qualifier), the headers, the size and JSON check of
 * the payload and the CloudEvent built from it; a malformed request never reaches the
 * engine. The engine thread then looks the function up in the running configuration,
 * calls td_router_invoke and answers from the router's done callback (which may run
 * inside td_router_invoke, for kinds that complete at once). The log tail is built in
 * that callback from the invocation's own lines, so no log text is kept anywhere else.
 *
 * Authentication, first of all on the HTTP thread: with admin.credentials configured a
 * request must carry a valid AWS SigV4 signature by one of those keys (sigv4.h); the
 * path it signed is rebuilt from the decoded path by encoding it once more, as AWS
 * clients send it (every byte but A-Z a-z 0-9 - _ . ~ and '/' as %XX). With an admin
 * token, "Authorization: Bearer <token>" is accepted as well. The credentials are
 * copied at registration: a reload does not change them (as for the token).
 */
#include "invoke_api.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <triggerd/engine.h>
#include <triggerd/errors.h>
#include <triggerd/event.h>
#include <triggerd/function.h>
#include <triggerd/log.h>

#include "admin.h"
#include "http_server.h"
#include "metering.h"
#include "retry.h"
#include "router.h"
#include "sigv4.h"

#define ROUTE	      TD_INVOKE_PATH_PREFIX "*"
#define ROUTE_BODY    (TD_INVOKE_MAX_PAYLOAD + (1 << 20)) /* room to answer 413 ourselves */
#define SCOPE	      "invoke-api"
#define INVOCATIONS   "/invocations"
#define EVENT_SOURCE  "triggerd/invoke-api"
#define EVENT_TYPE    "triggerd.invoke"
#define LATEST	      "$LATEST"
#define ACCOUNT_LEN   12
#define MAX_ARN_PARTS 8

struct td_invoke_api {
	struct td_http_server *http;
	struct td_router *router;
	struct td_engine *engine;
	char *token; /* NULL: no bearer token */
	size_t token_len;
	struct td_map credentials; /* SigV4 access key id -> secret; n == 0: none */
};

enum invoke_type { INVOKE_SYNC, INVOKE_EVENT, INVOKE_DRYRUN };

/* One request on its way through the engine. Holds the router, never the API. */
struct invoke_job {
	struct td_router *router;
	struct td_http_exchange *ex;
	struct td_event *event; /* NULL once handed to the router */
	enum invoke_type type;
	bool tail;
	struct td_invoke_target target;
	char request_id[37];
	char *client_context; /* X-Amz-Client-Context decoded (JSON object text), or NULL */
	long long memory_mb;
	long long start_ns;
};

/* ---- parsing (pure) ---- */

static bool name_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.';
}

static bool qualifier_char(char c)
{
	return isalnum((unsigned char)c) || c == '$' || c == '_' || c == '-';
}

static bool all_chars(const char *s, size_t n, bool (*ok)(char))
{
	for (size_t i = 0; i < n; i++)
		if (!ok(s[i]))
			return false;
	return true;
}

static bool region_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

static bool partition_char(char c)
{
	return (c >= 'a' && c <= 'z') || c == '-';
}

static bool digit_char(char c)
{
	return c >= '0' && c <= '9';
}

struct part {
	const char *p;
	size_t len;
	size_t at; /* byte offset in the FunctionName */
};

static bool part_is(const struct part *pt, const char *word)
{
	return pt->len == strlen(word) && memcmp(pt->p, word, pt->len) == 0;
}

static int check_part(const struct part *pt, const char *what, bool (*ok)(char), size_t min,
		      size_t max, char *err, size_t errlen)
{
	char shown[64];
	if (pt->len < min || pt->len > max || !all_chars(pt->p, pt->len, ok))
		return td_fail(err, errlen,
			       "FunctionName: the %s \"%s\" at byte %zu is not valid (%zu to %zu "
			       "characters of the allowed set)",
			       what, td_shown(pt->p, pt->len, shown), pt->at + 1, min, max);
	return 0;
}

int td_invoke_parse_function(const char *text, size_t len, struct td_invoke_target *out, char *err,
			     size_t errlen)
{
	struct part parts[MAX_ARN_PARTS];
	size_t n = 0, start = 0;
	const struct part *name, *qualifier = NULL;
	char shown[64];

	memset(out, 0, sizeof *out);
	if (len == 0)
		return td_fail(err, errlen, "FunctionName is empty");
	if (memchr(text, '\0', len))
		return td_fail(err, errlen, "FunctionName holds a NUL byte");
	for (size_t i = 0; i <= len; i++) {
		if (i < len && text[i] != ':')
			continue;
		if (n == MAX_ARN_PARTS)
			return td_fail(err, errlen,
				       "FunctionName \"%s\" has too many ':'-separated parts "
				       "(a name, name:qualifier or a function ARN)",
				       td_shown(text, len, shown));
		parts[n++] = (struct part){text + start, i - start, start};
		start = i + 1;
	}
	switch (n) {
	case 1: /* name */
	case 2: /* name:qualifier */
		name = &parts[0];
		qualifier = n == 2 ? &parts[1] : NULL;
		break;
	case 3: /* ACCOUNT:function:name */
	case 4: /* ACCOUNT:function:name:qualifier */
		if (check_part(&parts[0], "account id", digit_char, ACCOUNT_LEN, ACCOUNT_LEN, err,
			       errlen) < 0)
			return -TD_EINVAL;
		if (!part_is(&parts[1], "function"))
			return td_fail(err, errlen,
				       "FunctionName: expected \"function\" at byte %zu of the "
				       "partial ARN, found \"%s\"",
				       parts[1].at + 1, td_shown(parts[1].p, parts[1].len, shown));
		name = &parts[2];
		qualifier = n == 4 ? &parts[3] : NULL;
		break;
	case 7: /* arn:PARTITION:lambda:REGION:ACCOUNT:function:name */
	case 8: /* ... :qualifier */
		if (!part_is(&parts[0], "arn"))
			return td_fail(err, errlen,
				       "FunctionName \"%s\" is not a function ARN: it must start "
				       "with \"arn:\"",
				       td_shown(text, len, shown));
		if (check_part(&parts[1], "partition", partition_char, 3, 20, err, errlen) < 0 ||
		    check_part(&parts[3], "region", region_char, 1, 30, err, errlen) < 0 ||
		    check_part(&parts[4], "account id", digit_char, ACCOUNT_LEN, ACCOUNT_LEN, err,
			       errlen) < 0)
			return -TD_EINVAL;
		if (!part_is(&parts[2], "lambda"))
			return td_fail(err, errlen,
				       "FunctionName: the ARN's service at byte %zu must be "
				       "\"lambda\", not \"%s\"",
				       parts[2].at + 1, td_shown(parts[2].p, parts[2].len, shown));
		if (!part_is(&parts[5], "function"))
			return td_fail(
			    err, errlen,
			    "FunctionName: expected \"function\" at byte %zu of the ARN, "
			    "found \"%s\"",
			    parts[5].at + 1, td_shown(parts[5].p, parts[5].len, shown));
		name = &parts[6];
		qualifier = n == 8 ? &parts[7] : NULL;
		break;
	default:
		return td_fail(err, errlen,
			       "FunctionName \"%s\" is neither a name, name:qualifier, "
			       "ACCOUNT:function:name nor a function ARN",
			       td_shown(text, len, shown));
	}
	if (check_part(name, "function name", name_char, 1, TD_INVOKE_NAME_MAX, err, errlen) < 0)
		return -TD_EINVAL;
	if (qualifier && check_part(qualifier, "qualifier", qualifier_char, 1,
				    TD_INVOKE_QUALIFIER_MAX, err, errlen) < 0)
		return -TD_EINVAL;
	memcpy(out->function, name->p, name->len);
	if (qualifier)
		memcpy(out->qualifier, qualifier->p, qualifier->len);
	return 0;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes s[0..len) into out[cap]; -TD_EINVAL when malformed or too long. */
static int percent_decode(const char *s, size_t len, char *out, size_t cap, size_t *outlen)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '%') {
			int hi = i + 1 < len ? hex_value(s[i + 1]) : -1;
			int lo = i + 2 < len ? hex_value(s[i + 2]) : -1;
			if (hi < 0 || lo < 0)
				return -TD_EINVAL;
			c = (char)(hi * 16 + lo);
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		if (n + 1 >= cap)
			return -TD_EINVAL;
		out[n++] = c;
	}
	out[n] = '\0';
	*outlen = n;
	return 0;
}

/* The Qualifier query parameter into q (cap bytes): 1 when present, 0 when absent,
 * -TD_EINVAL with err. */
static int query_qualifier(const char *query, char *q, size_t cap, char *err, size_t errlen)
{
	const char *p = query;
	int found = 0;
	char shown[64];
	while (p && *p) {
		const char *end = strchr(p, '&');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		size_t klen = eq ? (size_t)(eq - p) : len;
		if (klen == 9 && memcmp(p, "Qualifier", 9) == 0) {
			const char *v = eq ? eq + 1 : p + len;
			size_t vlen = (size_t)(p + len - v), n;
			if (found)
				return td_fail(err, errlen, "the Qualifier parameter is repeated");
			if (percent_decode(v, vlen, q, cap, &n) < 0 || n == 0 ||
			    !all_chars(q, n, qualifier_char))
				return td_fail(
				    err, errlen,
				    "the Qualifier parameter \"%s\" is not valid ([A-Za-z0-9$_-], "
				    "1 to %d characters)",
				    td_shown(v, vlen, shown), TD_INVOKE_QUALIFIER_MAX);
			found = 1;
		}
		p = end ? end + 1 : NULL;
	}
	return found;
}

int td_invoke_parse_path(const char *path, const char *query, struct td_invoke_target *out,
			 char *err, size_t errlen)
{
	size_t plen = strlen(TD_INVOKE_PATH_PREFIX), ilen = strlen(INVOCATIONS), len;
	const char *name;
	char q[TD_INVOKE_QUALIFIER_MAX + 1], shown[64];
	int rc;

	memset(out, 0, sizeof *out);
	len = strlen(path);
	if (len < plen + ilen + 1 || memcmp(path, TD_INVOKE_PATH_PREFIX, plen) != 0 ||
	    memcmp(path + len - ilen, INVOCATIONS, ilen) != 0 ||
	    memchr(path + plen, '/', len - plen - ilen)) {
		td_fail(err, errlen,
			"no such operation: \"%s\" is not " TD_INVOKE_PATH_PREFIX
			"{FunctionName}" INVOCATIONS,
			td_shown(path, len, shown));
		return -TD_ENOTFOUND;
	}
	name = path + plen;
	if (td_invoke_parse_function(name, len - plen - ilen, out, err, errlen) < 0)
		return -TD_EINVAL;
	rc = query_qualifier(query, q, sizeof q, err, errlen);
	if (rc < 0)
		return rc;
	if (rc == 1) {
		if (out->qualifier[0] && strcmp(out->qualifier, q) != 0)
			return td_fail(err, errlen,
				       "the qualifier in FunctionName (%s) does not match the "
				       "Qualifier parameter (%s)",
				       out->qualifier, q);
		memcpy(out->qualifier, q, strlen(q) + 1);
	}
	return 0;
}

int td_invoke_log_tail(const char *log, size_t len, struct td_buf *out)
{
	size_t start = len > TD_INVOKE_TAIL_MAX ? len - TD_INVOKE_TAIL_MAX : 0;
	while (start > 0 && start < len && ((unsigned char)log[start] & 0xC0) == 0x80)
		start++;
	return td_base64_encode(out, log + start, len - start);
}

/* ---- answers ---- */

static const char *const executed_version = "X-Amz-Executed-Version";

/* An AWS error: x-amzn-ErrorType, {"Type": ..., "Message": ...}. request_id may be NULL;
 * retry_after_s > 0 adds Retry-After (and retryAfterSeconds, as AWS's 429 body). */
static void respond_aws_error(struct td_http_exchange *ex, int status, const char *type,
			      const char *message, const char *request_id, int retry_after_s,
			      const struct td_http_header *extra, size_t nextra)
{
	struct td_http_header h[6];
	size_t n = 0;
	char retry[16];
	struct td_buf b;

	h[n++] = (struct td_http_header){"x-amzn-ErrorType", type};
	if (request_id)
		h[n++] = (struct td_http_header){"x-amzn-RequestId", request_id};
	if (retry_after_s > 0) {
		snprintf(retry, sizeof retry, "%d", retry_after_s);
		h[n++] = (struct td_http_header){"Retry-After", retry};
	}
	for (size_t i = 0; i < nextra && n < sizeof h / sizeof h[0]; i++)
		h[n++] = extra[i];
	td_buf_init(&b);
	td_buf_appends(&b, status >= 500 ? "{\"Type\":\"Service\",\"Message\":"
					 : "{\"Type\":\"User\",\"Message\":");
	td_json_append_cstr(&b, message);
	if (retry_after_s > 0)
		td_buf_printf(&b, ",\"retryAfterSeconds\":\"%d\"", retry_after_s);
	td_buf_appendc(&b, '}');
	if (td_buf_failed(&b))
		td_http_respond_error(ex, 500, "out of memory");
	else
		td_http_respond(ex, status, "application/json", b.data, b.len, h, n);
	td_buf_free(&b);
}

static void job_free(struct invoke_job *job)
{
	td_event_unref(job->event);
	free(job->client_context);
	free(job);
}

/* The invocation's log: START, END and REPORT lines (see invoke_api.h). */
static void build_log(const struct invoke_job *job, const struct td_result *res, struct td_buf *b)
{
	char report[320];
	long long duration_us =
	    res->duration_us > 0 ? res->duration_us : (td_now_ns() - job->start_ns) / 1000;

	td_meter_report_line(report, sizeof report, job->request_id, duration_us, job->memory_mb,
			     res->max_memory_mb, res->init_us);
	td_buf_printf(b, "START RequestId: %s Version: " LATEST "\n", job->request_id);
	if (res->log && res->log_len)
		td_buf_append(b, res->log, res->log_len); /* the function's own lines */
	td_buf_printf(b, "END RequestId: %s\n%s", job->request_id, report);
	if (res->status != TD_RESULT_OK)
		td_buf_printf(b, "\tError: %s", res->error ? res->error : "failed");
	td_buf_appendc(b, '\n');
}

/* A failed invocation's body: the function's own JSON error document when it gave one,
 * else one made from the router's reason (with the function's text output, if any). */
static void error_document(const struct td_result *res, struct td_buf *b)
{
	if (res->body && res->body_len > 0 && td_json_valid(res->body, res->body_len, 0)) {
		td_buf_append(b, res->body, res->body_len);
		return;
	}
	td_buf_appends(b, "{\"errorType\":\"FunctionError\",\"errorMessage\":");
	td_json_append_cstr(b, res->error ? res->error : "the function failed");
	if (res->body && res->body_len > 0) {
		td_buf_appends(b, ",\"output\":");
		td_json_append_string(b, res->body, res->body_len);
	}
	td_buf_appendc(b, '}');
}

/* The router's done callback (engine thread). */
static void invocation_done(void *arg, const struct td_result *res)
{
	struct invoke_job *job = arg;
	struct td_http_header h[5];
	size_t n = 0;
	struct td_buf body, log, tail;
	bool failed = res->status != TD_RESULT_OK;

	if (job->type == INVOKE_EVENT) {
		if (failed) {
			respond_aws_error(job->ex, 500, "ServiceException",
					  "the event could not be queued durably; try again",
					  job->request_id, 1, NULL, 0);
		} else {
			const struct td_http_header ok[] = {{"x-amzn-RequestId", job->request_id}};
			td_http_respond(job->ex, 202, NULL, NULL, 0, ok, 1);
		}
		td_logs_debug(SCOPE, "RequestId %s: %s queued (Event)%s", job->request_id,
			      job->target.function, failed ? " failed" : "");
		job_free(job);
		return;
	}
	td_buf_init(&body);
	td_buf_init(&log);
	td_buf_init(&tail);
	h[n++] = (struct td_http_header){"x-amzn-RequestId", job->request_id};
	h[n++] = (struct td_http_header){executed_version, LATEST};
	if (failed) {
		h[n++] = (struct td_http_header){"X-Amz-Function-Error", "Unhandled"};
		error_document(res, &body);
	} else if (res->body_len > 0) {
		td_buf_append(&body, res->body, res->body_len);
	}
	if (job->tail) {
		build_log(job, res, &log);
		if (!td_buf_failed(&log))
			td_invoke_log_tail(log.data, log.len, &tail);
		h[n++] = (struct td_http_header){"X-Amz-Log-Result", tail.data ? tail.data : ""};
	}
	if (td_buf_failed(&body) || td_buf_failed(&log) || td_buf_failed(&tail))
		respond_aws_error(job->ex, 500, "ServiceException", "out of memory",
				  job->request_id, 0, NULL, 0);
	else
		td_http_respond(job->ex, 200,
				!failed && res->content_type ? res->content_type
							     : "application/json",
				body.data, body.len, h, n);
	td_logs_debug(SCOPE, "RequestId %s: %s answered (RequestResponse)%s", job->request_id,
		      job->target.function, failed ? ": function error" : "");
	td_buf_free(&body);
	td_buf_free(&log);
	td_buf_free(&tail);
	job_free(job);
}

/* On the engine thread. */
static void run_job(void *arg)
{
	struct invoke_job *job = arg;
	const struct td_config *cfg = td_router_config(job->router);
	const struct td_function_conf *fc =
	    cfg ? td_config_function(cfg, job->target.function) : NULL;
	char msg[256];
	int rc;

	if (!fc || (job->target.qualifier[0] && strcmp(job->target.qualifier, LATEST) != 0)) {
		snprintf(msg, sizeof msg, "Function not found: %s%s%s", job->target.function,
			 job->target.qualifier[0] ? ":" : "", job->target.qualifier);
		respond_aws_error(job->ex, 404, "ResourceNotFoundException", msg, job->request_id,
				  0, NULL, 0);
		goto done;
	}
	if (job->type == INVOKE_DRYRUN) {
		const struct td_http_header h[] = {{"x-amzn-RequestId", job->request_id},
						   {executed_version, LATEST}};
		td_http_respond(job->ex, 204, NULL, NULL, 0, h, 2);
		goto done;
	}
	job->memory_mb = ((const struct td_function_common *)fc->opts)->memory_mb;
	job->start_ns = td_now_ns();
	{
		struct td_event *ev = job->event;
		job->event = NULL; /* td_router_invoke takes the reference over */
		/* From here on job may be freed by invocation_done, even before this returns. */
		const struct td_invoke_meta meta = {job->request_id, job->client_context};
		rc = td_router_invoke(job->router, job->target.function, ev,
				      job->type == INVOKE_SYNC, &meta, invocation_done, job);
	}
	if (rc == 0)
		return;
	if (rc == -TD_ENOTFOUND) {
		snprintf(msg, sizeof msg, "Function not found: %s", job->target.function);
		respond_aws_error(job->ex, 404, "ResourceNotFoundException", msg, job->request_id,
				  0, NULL, 0);
	} else if (rc == -TD_EFULL) {
		snprintf(msg, sizeof msg,
			 job->type == INVOKE_SYNC
			     ? "Rate Exceeded: function %s is at its concurrency limit"
			     : "Rate Exceeded: the async queue of function %s is full",
			 job->target.function);
		respond_aws_error(job->ex, 429, "TooManyRequestsException", msg, job->request_id, 1,
				  NULL, 0);
	} else {
		respond_aws_error(job->ex, 500, "ServiceException",
				  "the invocation could not be started (out of memory)",
				  job->request_id, 0, NULL, 0);
	}
done:
	job_free(job);
}

/* ---- the handler (HTTP server threads) ---- */

static bool blank(char c)
{
	return c == ' ' || c == '\t';
}

/* True when the request carries the admin bearer token. */
static bool bearer_ok(const struct td_invoke_api *api, const char *v)
{
	bool invalid;
	return td_admin_bearer_refusal(v, api->token, api->token_len, &invalid) == NULL;
}

/* 0 when the request may go on; else answered with 401. */
static int check_token(const struct td_invoke_api *api, struct td_http_exchange *ex,
		       const struct td_http_request *req)
{
	const char *v = td_http_header_get(req, "Authorization");

	if (!api->token || bearer_ok(api, v))
		return 0;
	const struct td_http_header h[] = {{"WWW-Authenticate", "Bearer realm=\"triggerd\""}};
	respond_aws_error(ex, 401,
			  v ? "UnrecognizedClientException" : "MissingAuthenticationTokenException",
			  v ? "the Authorization header is not the admin bearer token"
			    : "missing credentials: send Authorization: Bearer <token>",
			  NULL, 0, h, 1);
	return -TD_EINVAL;
}

/* 0 when the request is signed by a configured key; else answered with AWS's error. */
static int check_signature(const struct td_invoke_api *api, struct td_http_exchange *ex,
			   const struct td_http_request *req)
{
	struct td_sigv4_verdict verdict;
	struct td_buf raw;
	int rc;

	td_buf_init(&raw);
	if (td_sigv4_uri_encode(req->path, strlen(req->path), true, &raw) < 0) {
		respond_aws_error(ex, 500, "ServiceException", "out of memory", NULL, 0, NULL, 0);
		return -TD_ENOMEM;
	}
	const struct td_sigv4_request sreq = {
	    .method = req->method,
	    .path = raw.data,
	    .query = req->query,
	    .headers = req->headers,
	    .nheaders = req->nheaders,
	    .body = req->body,
	    .body_len = req->body_len,
	};
	rc = td_sigv4_verify(&sreq, &api->credentials, td_wall_ms(), &verdict);
	td_buf_free(&raw);
	if (rc == 0)
		return 0;
	td_logs_debug(SCOPE, "refused a request from %s: %s: %s", req->remote, verdict.type,
		      verdict.message);
	respond_aws_error(ex, verdict.status, verdict.type, verdict.message, NULL, 0, NULL, 0);
	return rc;
}

/* 0 when the request may go on; else answered. A SigV4 request is checked against
 * admin.credentials; a bearer token (admin.token) also lets a request in; with
 * credentials configured, anything else is refused as AWS refuses an unsigned request. */
static int check_auth(const struct td_invoke_api *api, struct td_http_exchange *ex,
		      const struct td_http_request *req)
{
	const char *v = td_http_header_get(req, "Authorization");
	const char *p = v;

	while (p && blank(*p))
		p++;
	if (api->credentials.n == 0)
		return check_token(api, ex, req);
	if (p && strncmp(p, TD_SIGV4_ALGORITHM, strlen(TD_SIGV4_ALGORITHM)) == 0)
		return check_signature(api, ex, req);
	if (api->token && bearer_ok(api, v))
		return 0;
	return check_signature(api, ex, req);
}

/* X-Amz-Client-Context: base64 of a JSON object, at most TD_INVOKE_CLIENT_CONTEXT_MAX
 * bytes as sent (AWS's limit). 0 with the decoded text in *out (malloc'ed), or -TD_EINVAL
 * with a message. */
static int client_context(const char *b64, char **out, char *msg, size_t msglen)
{
	struct td_buf text = {0};
	size_t len = strlen(b64);
	char why[128];
	int rc = -TD_EINVAL;
	if (len > TD_INVOKE_CLIENT_CONTEXT_MAX) {
		snprintf(msg, msglen, "Client context must be at most %d bytes (this one has %zu)",
			 TD_INVOKE_CLIENT_CONTEXT_MAX, len);
		goto out;
	}
	if (td_base64_decode(b64, len, &text, why, sizeof why) < 0 || td_buf_failed(&text) ||
	    text.len == 0 || text.data[0] != '{' ||
	    td_json_validate(text.data, text.len, TD_EVENT_DATA_MAX_DEPTH, why, sizeof why) < 0) {
		snprintf(msg, msglen, "Client context must be a valid Base64-encoded JSON object");
		goto out;
	}
	*out = td_buf_steal(&text, &len);
	rc = *out ? 0 : -TD_EINVAL;
out:
	td_buf_free(&text);
	return rc;
}

/* Reads X-Amz-Invocation-Type and X-Amz-Log-Type; 0, or -TD_EINVAL with a message. */
static int read_headers(const struct td_http_request *req, enum invoke_type *type, bool *tail,
			char *msg, size_t cap)
{
	const char *t = td_http_header_get(req, "X-Amz-Invocation-Type");
	const char *l = td_http_header_get(req, "X-Amz-Log-Type");
	char shown[64];

	if (!t || strcmp(t, "RequestResponse") == 0)
		*type = INVOKE_SYNC;
	else if (strcmp(t, "Event") == 0)
		*type = INVOKE_EVENT;
	else if (strcmp(t, "DryRun") == 0)
		*type = INVOKE_DRYRUN;
	else
		return td_fail(
		    msg, cap,
		    "1 validation error detected: Value '%s' at 'invocationType' (header "
		    "X-Amz-Invocation-Type) failed to satisfy constraint: Member must "
		    "satisfy enum value set: [Event, RequestResponse, DryRun]",
		    td_shown(t, strlen(t), shown));
	if (!l || strcmp(l, "None") == 0)
		*tail = false;
	else if (strcmp(l, "Tail") == 0)
		*tail = true;
	else
		return td_fail(msg, cap,
			       "1 validation error detected: Value '%s' at 'logType' (header "
			       "X-Amz-Log-Type) failed to satisfy constraint: Member must satisfy "
			       "enum value set: [None, Tail]",
			       td_shown(l, strlen(l), shown));
	return 0;
}

static struct td_event *make_event(const struct invoke_job *job, const char *payload, size_t len)
{
	struct td_event *ev = td_event_create();
	if (!ev || td_event_set(ev, "id", job->request_id) < 0 ||
	    td_event_set(ev, "source", EVENT_SOURCE) < 0 ||
	    td_event_set(ev, "type", EVENT_TYPE) < 0 ||
	    td_event_set(ev, "subject", job->target.function) < 0 ||
	    td_event_set_time_ms(ev, td_wall_ms()) < 0 ||
	    td_event_set_data(ev, payload, len, "application/json") < 0) {
		td_event_unref(ev);
		return NULL;
	}
	return ev;
}

static void on_invoke(void *arg, struct td_http_exchange *ex)
{
	const struct td_invoke_api *api = arg;
	const struct td_http_request *req = td_http_request(ex);
	struct invoke_job *job = NULL;
	char msg[512];
	int rc;

	if (check_auth(api, ex, req) < 0)
		return;
	job = calloc(1, sizeof *job);
	if (!job) {
		respond_aws_error(ex, 500, "ServiceException", "out of memory", NULL, 0, NULL, 0);
		return;
	}
	job->ex = ex;
	job->router = api->router;
	td_uuid4(job->request_id);
	rc = td_invoke_parse_path(req->path, req->query, &job->target, msg, sizeof msg);
	if (rc == -TD_ENOTFOUND) {
		respond_aws_error(ex, 404, "UnknownOperationException", msg, job->request_id, 0,
				  NULL, 0);
		goto fail;
	}
	if (rc < 0) {
		respond_aws_error(ex, 400, "ValidationException", msg, job->request_id, 0, NULL, 0);
		goto fail;
	}
	if (strcmp(req->method, "POST") != 0) {
		const struct td_http_header allow[] = {{"Allow", "POST"}};
		snprintf(msg, sizeof msg, "method %.32s is not allowed here: Invoke is POST",
			 req->method);
		respond_aws_error(ex, 405, "MethodNotAllowedException", msg, job->request_id, 0,
				  allow, 1);
		goto fail;
	}
	if (read_headers(req, &job->type, &job->tail, msg, sizeof msg) < 0) {
		respond_aws_error(ex, 400, "ValidationException", msg, job->request_id, 0, NULL, 0);
		goto fail;
	}
	if (req->body_len > TD_INVOKE_MAX_PAYLOAD) {
		snprintf(msg, sizeof msg,
			 "Request must be smaller than %d bytes for the InvokeFunction operation "
			 "(this one has %zu)",
			 TD_INVOKE_MAX_PAYLOAD, req->body_len);
		respond_aws_error(ex, 413, "RequestTooLargeException", msg, job->request_id, 0,
				  NULL, 0);
		goto fail;
	}
	const char *payload = req->body_len > 0 ? req->body : "{}";
	size_t len = req->body_len > 0 ? req->body_len : 2;
	char why[256];
	if (td_json_validate(payload, len, TD_EVENT_DATA_MAX_DEPTH, why, sizeof why) < 0) {
		snprintf(msg, sizeof msg, "Could not parse request body into json: %s", why);
		respond_aws_error(ex, 400, "InvalidRequestContentException", msg, job->request_id,
				  0, NULL, 0);
		goto fail;
	}
	if (!api->router) {
		respond_aws_error(ex, 503, "ServiceException", "the router is not running yet",
				  job->request_id, 1, NULL, 0);
		goto fail;
	}
	const char *cc = td_http_header_get(req, "X-Amz-Client-Context");
	if (cc && client_context(cc, &job->client_context, msg, sizeof msg) < 0) {
		respond_aws_error(ex, 400, "InvalidRequestContentException", msg, job->request_id,
				  0, NULL, 0);
		goto fail;
	}
	if (job->type != INVOKE_DRYRUN && !(job->event = make_event(job, payload, len))) {
		respond_aws_error(ex, 500, "ServiceException", "out of memory", job->request_id, 0,
				  NULL, 0);
		goto fail;
	}
	if (td_engine_call(api->engine, run_job, job) < 0) {
		respond_aws_error(ex, 503, "ServiceException", "shutting down", job->request_id, 1,
				  NULL, 0);
		goto fail;
	}
	return;
fail:
	job_free(job);
}

/* Frees the API's own copies, secrets wiped. NULL is ignored. */
static void api_free(struct td_invoke_api *api)
{
	if (!api)
		return;
	if (api->token)
		explicit_bzero(api->token, api->token_len);
	free(api->token);
	for (size_t i = 0; i < api->credentials.n; i++) {
		if (api->credentials.values[i])
			explicit_bzero(api->credentials.values[i],
				       strlen(api->credentials.values[i]));
		free(api->credentials.keys[i]);
		free(api->credentials.values[i]);
	}
	free(api->credentials.keys);
	free(api->credentials.values);
	free(api);
}

struct td_invoke_api *td_invoke_api_register(struct td_http_server *http, struct td_router *router,
					     const char *token)
{
	struct td_invoke_api *api = calloc(1, sizeof *api);
	const char *why = "out of memory";

	if (!api)
		goto fail;
	api->http = http;
	api->router = router;
	api->engine = router ? td_router_engine(router) : NULL;
	if (token) {
		api->token = strdup(token);
		if (!api->token)
			goto fail;
		api->token_len = strlen(token);
	}
	const struct td_config *cfg = router ? td_router_config(router) : NULL;
	if (cfg && cfg->global.admin_credentials.n > 0) {
		const struct td_map *m = &cfg->global.admin_credentials;
		api->credentials.keys = calloc(m->n, sizeof *api->credentials.keys);
		api->credentials.values = calloc(m->n, sizeof *api->credentials.values);
		if (!api->credentials.keys || !api->credentials.values)
			goto fail;
		for (size_t i = 0; i < m->n; i++) {
			api->credentials.keys[i] = strdup(m->keys[i]);
			api->credentials.values[i] = strdup(m->values[i]);
			api->credentials.n++;
			if (!api->credentials.keys[i] || !api->credentials.values[i])
				goto fail;
		}
	}
	why = "cannot register the route " ROUTE;
	if (td_http_route_add(http, ROUTE, on_invoke, api) < 0)
		goto fail;
	if (td_http_route_set_max_body(http, ROUTE, ROUTE_BODY) < 0) {
		td_http_route_remove(http, ROUTE);
		goto fail;
	}
	return api;
fail:
	td_logs_error(SCOPE, "%s", why);
	api_free(api);
	return NULL;
}

void td_invoke_api_unregister(struct td_invoke_api *api)
{
	if (!api)
		return;
	td_http_route_remove(api->http, ROUTE);
	api_free(api);
}
