/*
 * The lambda function kind: an invocation calls the AWS Lambda Invoke API of a remote
 * function (or of any endpoint that speaks it), signed with SigV4. With handoff, an
 * async trigger hands the event to Lambda's own asynchronous invocation
 * (InvocationType Event) instead of retrying in triggerd.
 *
 * This file holds the options of the kind and their checks.
 */
#include <triggerd/function.h>

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

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

	if (strlen(o->function_name) > 170 || !all_chars(o->function_name, "-_:"))
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

const struct td_function_ops td_function_lambda = {
    .name = "lambda",
    .summary = "Invoke a remote AWS Lambda function (Invoke API, SigV4)",
    .options = lambda_options,
    .opts_size = sizeof(struct lambda_opts),
    .check = lambda_check,
};
