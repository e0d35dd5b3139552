/*
 * The admin API's read-only routes (see admin.h). One table lists the routes; a handler
 * checks the bearer token and the method on the HTTP server's thread, answers /healthz
 * there, and posts everything else to the engine thread, where the router's state lives.
 * A posted job holds the router and the exchange, never the admin, so that the admin can
 * go while jobs wait.
 */
#include "admin.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <triggerd/engine.h>
#include <triggerd/errors.h>
#include <triggerd/log.h>

#include "http_server.h"
#include "invoke_api.h"
#include "json.h"
#include "router.h"

enum admin_what { ADMIN_HEALTHZ, ADMIN_READYZ, ADMIN_METRICS, ADMIN_STATUS };

struct admin_endpoint {
	const char *path;
	enum admin_what what;
	const char *status; /* td_router_status_json's name for ADMIN_STATUS */
};

static const struct admin_endpoint endpoints[] = {
    {"/healthz", ADMIN_HEALTHZ, NULL},		{"/readyz", ADMIN_READYZ, NULL},
    {"/metrics", ADMIN_METRICS, NULL},		{"/v1/sources", ADMIN_STATUS, "sources"},
    {"/v1/triggers", ADMIN_STATUS, "triggers"}, {"/v1/functions", ADMIN_STATUS, "functions"},
    {"/v1/usage", ADMIN_STATUS, "usage"},
};

#define NENDPOINTS (sizeof endpoints / sizeof endpoints[0])

struct admin_route {
	struct td_admin *admin;
	const struct admin_endpoint *ep;
};

struct td_admin {
	struct td_http_server *http;
	struct td_router *router;
	struct td_engine *engine;
	char *token; /* NULL: no authentication */
	size_t token_len;
	size_t nregistered;
	struct admin_route routes[NENDPOINTS];
	struct td_invoke_api *invoke; /* the Lambda Invoke API (invoke_api.h) */
};

/* Work for the engine thread. */
struct admin_job {
	struct td_router *router;
	struct td_http_exchange *ex;
	const struct admin_endpoint *ep;
};

static const struct td_http_header no_store[] = {{"Cache-Control", "no-store"}};

/* Equal in a time that depends on the lengths only, never on where the bytes differ. */
static bool same_secret(const char *given, size_t glen, const char *want, size_t wlen)
{
	volatile unsigned char diff = glen != wlen;

	for (size_t i = 0; i < wlen; i++)
		diff |= (unsigned char)want[i] ^ (unsigned char)(i < glen ? given[i] : 0);
	return diff == 0;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t';
}

const char *td_admin_bearer_refusal(const char *authorization, const char *token, size_t token_len,
				    bool *invalid)
{
	const char *v = authorization;
	size_t n;

	*invalid = false;
	if (!v)
		return "missing credentials: send Authorization: Bearer <token>";
	while (blank(*v))
		v++;
	if (strncasecmp(v, "Bearer", 6) != 0 || !blank(v[6]))
		return "the Authorization header is not a bearer token";
	v += 7;
	while (blank(*v))
		v++;
	n = strlen(v);
	while (n && blank(v[n - 1]))
		n--;
	if (!same_secret(v, n, token, token_len)) {
		*invalid = true;
		return "invalid bearer token";
	}
	return NULL;
}

/* NULL when the request may go on, else why not (for the 401 body). */
static const char *auth_failure(const struct td_admin *a, const struct td_http_request *req,
				bool *invalid)
{
	*invalid = false;
	if (!a->token)
		return NULL;
	return td_admin_bearer_refusal(td_http_header_get(req, "Authorization"), a->token,
				       a->token_len, invalid);
}

static void respond_json(struct td_http_exchange *ex, int status, const char *body)
{
	td_http_respond(ex, status, "application/json", body, strlen(body), no_store, 1);
}

/* {"error": why} with extra headers. */
static void respond_error(struct td_http_exchange *ex, int status, const char *why,
			  const struct td_http_header *headers, size_t nheaders)
{
	struct td_buf b;

	td_buf_init(&b);
	td_buf_appends(&b, "{\"error\":");
	td_json_append_cstr(&b, why);
	td_buf_appendc(&b, '}');
	if (td_buf_failed(&b))
		td_http_respond_error(ex, 500, "out of memory");
	else
		td_http_respond(ex, status, "application/json", b.data, b.len, headers, nheaders);
	td_buf_free(&b);
}

/* On the engine thread. */
static void run_job(void *arg)
{
	struct admin_job *job = arg;
	char *text = NULL, *reasons = NULL;

	switch (job->ep->what) {
	case ADMIN_READYZ: {
		struct td_buf b;
		bool ready = td_router_ready(job->router, &reasons);
		td_buf_init(&b);
		if (ready)
			td_buf_appends(&b, "{\"ready\":true}");
		else
			td_buf_printf(&b, "{\"ready\":false,\"reasons\":%s}",
				      reasons ? reasons : "[]");
		if (td_buf_failed(&b))
			td_http_respond_error(job->ex, 500, "out of memory");
		else
			respond_json(job->ex, ready ? 200 : 503, b.data);
		td_buf_free(&b);
		break;
	}
	case ADMIN_METRICS:
		text = td_router_metrics(job->router);
		if (!text)
			td_http_respond_error(job->ex, 500, "metrics are not available");
		else
			td_http_respond(job->ex, 200, "text/plain; version=0.0.4; charset=utf-8",
					text, strlen(text), no_store, 1);
		break;
	case ADMIN_STATUS:
		text = td_router_status_json(job->router, job->ep->status);
		if (!text)
			td_http_respond_error(job->ex, 500, "status is not available");
		else
			respond_json(job->ex, 200, text);
		break;
	case ADMIN_HEALTHZ:
		respond_json(job->ex, 200, "{\"status\":\"ok\"}");
		break;
	}
	free(text);
	free(reasons);
	free(job);
}

/* On the HTTP server's threads. */
static void on_admin(void *arg, struct td_http_exchange *ex)
{
	const struct admin_route *route = arg;
	const struct td_admin *a = route->admin;
	const struct td_http_request *req = td_http_request(ex);
	const char *why;
	bool invalid;
	struct admin_job *job;

	why = auth_failure(a, req, &invalid);
	if (why) {
		const struct td_http_header h[] = {
		    {"WWW-Authenticate", invalid ? "Bearer realm=\"triggerd\", "
						   "error=\"invalid_token\""
						 : "Bearer realm=\"triggerd\""},
		    no_store[0]};
		respond_error(ex, 401, why, h, 2);
		return;
	}
	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		const struct td_http_header allow[] = {{"Allow", "GET, HEAD"}};
		char msg[96];
		snprintf(msg, sizeof msg, "method %.32s is not allowed here: use GET", req->method);
		respond_error(ex, 405, msg, allow, 1);
		return;
	}
	if (route->ep->what == ADMIN_HEALTHZ) {
		respond_json(ex, 200, "{\"status\":\"ok\"}");
		return;
	}
	if (!a->router) {
		td_http_respond_error(ex, 503, "the router is not running yet");
		return;
	}
	job = malloc(sizeof(*job));
	if (!job) {
		td_http_respond_error(ex, 500, "out of memory");
		return;
	}
	job->router = a->router;
	job->ex = ex;
	job->ep = route->ep;
	if (td_engine_call(a->engine, run_job, job) < 0) {
		free(job);
		td_http_respond_error(ex, 503, "shutting down");
	}
}

struct td_admin *td_admin_create(struct td_http_server *http, struct td_router *router,
				 const char *token)
{
	struct td_admin *a;

	if (token && !*token) {
		td_logs_error("admin", "the admin token is empty: set a token or none");
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		td_logs_error("admin", "out of memory");
		goto fail;
	}
	a->http = http;
	a->router = router;
	a->engine = router ? td_router_engine(router) : NULL;
	if (token) {
		a->token = strdup(token);
		if (!a->token) {
			td_logs_error("admin", "out of memory");
			goto fail;
		}
		a->token_len = strlen(token);
	}
	for (size_t i = 0; i < NENDPOINTS; i++) {
		a->routes[i].admin = a;
		a->routes[i].ep = &endpoints[i];
		if (td_http_route_add(http, endpoints[i].path, on_admin, &a->routes[i]) < 0) {
			td_logs_error("admin", "cannot register %s", endpoints[i].path);
			goto fail;
		}
		a->nregistered++;
	}
	a->invoke = td_invoke_api_register(http, router, token);
	if (!a->invoke)
		goto fail;
	return a;
fail:
	td_admin_destroy(a);
	return NULL;
}

void td_admin_destroy(struct td_admin *a)
{
	if (!a)
		return;
	td_invoke_api_unregister(a->invoke);
	for (size_t i = 0; i < a->nregistered; i++)
		td_http_route_remove(a->http, endpoints[i].path);
	if (a->token)
		explicit_bzero(a->token, a->token_len);
	free(a->token);
	free(a);
}
