/*
 * The AWS Lambda Invoke API on the admin listener, so that `aws lambda invoke
 * --endpoint-url http://127.0.0.1:7071 --function-name hello ...` and the AWS SDKs work
 * against triggerd:
 *
 *   POST /2015-03-31/functions/{FunctionName}/invocations[?Qualifier=$LATEST]
 *
 * FunctionName is a function name ("hello"), a name with a qualifier ("hello:$LATEST"),
 * a partial ARN ("123456789012:function:hello") or a full ARN
 * ("arn:aws:lambda:us-east-1:123456789012:function:hello[:$LATEST]"), URL-encoded or not
 * (the HTTP server decodes the path). Region, account and partition of an ARN are
 * checked for form only. triggerd has no versions or aliases: the only qualifier that
 * exists is $LATEST; any other is 404 ResourceNotFoundException.
 *
 * Headers: X-Amz-Invocation-Type RequestResponse (default: 200 with the function's
 * result; a failed invocation is also 200, with X-Amz-Function-Error: Unhandled and an
 * error document), Event (the event is durably queued and retried as an async trigger
 * would be; 202 once committed), DryRun (204 when the function exists). X-Amz-Log-Type
 * Tail (RequestResponse only) adds X-Amz-Log-Result: base64 of at most the last 4 KB of
 * the invocation's log, which holds the lines triggerd writes for it: "START RequestId:
 * ID Version: $LATEST", "END RequestId: ID" and the REPORT line (Duration, Billed
 * Duration, Memory Size, Max Memory Used and Init Duration when the kind measured
 * them, and "Error: ..." when it failed), with the function's own output (process
 * functions) between START and END. The RequestId is the invocation's event id, which is
 * also the x-amzn-RequestId header, the `id` of the CloudEvent the function gets and the
 * request id the function's context sees. X-Amz-Client-Context (base64 of a JSON object,
 * at most TD_INVOKE_CLIENT_CONTEXT_MAX bytes; else 400 InvalidRequestContentException)
 * reaches the function's context.client_context. Every answer carries
 * X-Amz-Executed-Version: $LATEST (but errors).
 *
 * The payload (the request body) must be JSON (an empty body is the JSON {}), at most
 * TD_INVOKE_MAX_PAYLOAD bytes. It becomes a CloudEvent: id a new UUID, source
 * "triggerd/invoke-api", type "triggerd.invoke", subject the function's name,
 * datacontenttype application/json, data the payload bytes as they came.
 *
 * Errors carry their code in x-amzn-ErrorType and a JSON body {"Type": "User" |
 * "Service", "Message": "..."} with AWS's status: 400 InvalidRequestContentException
 * (not JSON), 400 ValidationException (a malformed name, qualifier or header value), 404
 * ResourceNotFoundException, 404 UnknownOperationException (another path under
 * /2015-03-31/functions/), 405 (not POST), 413 RequestTooLargeException, 429
 * TooManyRequestsException (concurrency exhausted, or the function's async queue full;
 * with Retry-After), 401 when the admin token is set and the request lacks
 * "Authorization: Bearer <token>", 500 ServiceException, 503 while the router is not
 * running.
 *
 * Threads: the handler runs on the HTTP server's threads: it checks the token, parses
 * and validates the request and builds the event there, then posts the invocation to the
 * engine thread (td_engine_call), which calls the router and answers from there. A
 * posted job holds the router and the exchange, never the td_invoke_api, so the API can
 * be unregistered while jobs wait (destroy it before the router, as the admin).
 */
#ifndef TRIGGERD_INVOKE_API_H
#define TRIGGERD_INVOKE_API_H

#include <stdbool.h>
#include <stddef.h>

#include "json.h"

struct td_invoke_api;
struct td_http_server;
struct td_router;

#define TD_INVOKE_PATH_PREFIX	     "/2015-03-31/functions/"
#define TD_INVOKE_MAX_PAYLOAD	     6291456 /* 6 MB, as AWS Lambda (sync and Event) */
#define TD_INVOKE_CLIENT_CONTEXT_MAX 3583    /* bytes of X-Amz-Client-Context (base64) */
#define TD_INVOKE_TAIL_MAX	     4096    /* bytes of log in X-Amz-Log-Result */
#define TD_INVOKE_NAME_MAX	     64	     /* as triggerd's function names */
#define TD_INVOKE_QUALIFIER_MAX	     128

/*
 * Registers the route TD_INVOKE_PATH_PREFIX "*" on http (which must outlive the API).
 * router may be NULL (then every request is 503). token is copied; NULL: none. NULL
 * with the reason logged (route taken, out of memory). Any thread; the admin calls it
 * from td_admin_create.
 */
struct td_invoke_api *td_invoke_api_register(struct td_http_server *http, struct td_router *router,
					     const char *token);
/* Removes the route and frees the API; requests already posted to the engine are still
 * answered there. NULL is ignored. */
void td_invoke_api_unregister(struct td_invoke_api *api);

/* ---- Pure helpers (any thread; exposed for tests and the fuzz target) ---- */

/* The function an Invoke request names: its name and the qualifier ("" when none). */
struct td_invoke_target {
	char function[TD_INVOKE_NAME_MAX + 1];
	char qualifier[TD_INVOKE_QUALIFIER_MAX + 1];
};

/*
 * Parses a FunctionName (already URL-decoded) of len bytes: a name
 * [A-Za-z0-9_.-]{1,64}, "name:qualifier", "ACCOUNT:function:name[:qualifier]" or
 * "arn:PARTITION:lambda:REGION:ACCOUNT:function:name[:qualifier]" (ACCOUNT 12 digits,
 * qualifier [A-Za-z0-9$_-]{1,128}). 0, or -TD_EINVAL with what is wrong and where in err.
 */
int td_invoke_parse_function(const char *text, size_t len, struct td_invoke_target *out, char *err,
			     size_t errlen);

/*
 * Parses a decoded request path and its raw query (may be NULL): the path must be
 * TD_INVOKE_PATH_PREFIX "{FunctionName}/invocations"; a Qualifier query parameter
 * (percent-encoded) must agree with a qualifier in the name. 0; -TD_ENOTFOUND when the
 * path is not an Invoke path (err says so); -TD_EINVAL for a malformed name or
 * qualifier (err says what and where).
 */
int td_invoke_parse_path(const char *path, const char *query, struct td_invoke_target *out,
			 char *err, size_t errlen);

/* Appends base64 of the last TD_INVOKE_TAIL_MAX bytes of log[0..len) (never starting
 * inside a UTF-8 sequence) to out. 0 or -TD_ENOMEM. */
int td_invoke_log_tail(const char *log, size_t len, struct td_buf *out);

#endif
