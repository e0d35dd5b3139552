/*
 * The Lambda Runtime API listener of one runtime process (see runtime_api.h).
 *
 * Each process gets its own td_http_server on 127.0.0.1:0 with one thread, so identity
 * is the listener: a process can only ever reach its own function's invocations. The
 * server thread checks the request line and hands valid requests to the engine thread.
 * Hand-over goes through a small mailbox shared by the server thread and the engine
 * (a mutex, a list and a "posted" flag): one td_engine_call per batch, and since the
 * mailbox is reference-counted a batch posted just before td_rapi_destroy finds the
 * handler gone and answers 503 instead of touching freed memory.
 *
 * The body limit of the server is set well above Lambda's 6 MB so that an oversized
 * response reaches the handler, which answers 413 and fails the invocation; a body
 * past TD_RAPI_SERVER_MAX_BODY is refused by the server itself.
 */
#include "runtime_api.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <triggerd/engine.h>
#include <triggerd/errors.h>
#include <triggerd/log.h>

#define TD_RAPI_SERVER_MAX_BODY (32LL << 20)

/* ---- Parsers ---- */

static bool id_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

int td_rapi_parse(const char *method, const char *path, enum td_rapi_kind *kind,
		  char id[TD_RAPI_ID_MAX + 1], int *status, char *err, size_t errlen)
{
	static const char inv[] = TD_RAPI_PREFIX "invocation/";
	char shown[64];
	bool post = strcmp(method, "POST") == 0;
	const char *rest;
	size_t n;

	id[0] = '\0';
	*status = 404;
	if (strncmp(path, TD_RAPI_PREFIX, sizeof TD_RAPI_PREFIX - 1) != 0)
		return td_fail(err, errlen, "no such path: %s",
			       td_shown(path, strlen(path), shown));
	if (strcmp(path, TD_RAPI_PREFIX "init/error") == 0) {
		*kind = TD_RAPI_INIT_ERROR;
		if (!post)
			goto method;
		return 0;
	}
	if (strncmp(path, inv, sizeof inv - 1) != 0)
		return td_fail(err, errlen, "no such path: %s",
			       td_shown(path, strlen(path), shown));
	rest = path + sizeof inv - 1;
	if (strcmp(rest, "next") == 0) {
		*kind = TD_RAPI_NEXT;
		if (strcmp(method, "GET") != 0)
			goto method;
		return 0;
	}
	n = strcspn(rest, "/");
	if (rest[n] != '/' ||
	    (strcmp(rest + n, "/response") != 0 && strcmp(rest + n, "/error") != 0))
		return td_fail(err, errlen, "no such path: %s",
			       td_shown(path, strlen(path), shown));
	*kind = strcmp(rest + n, "/response") == 0 ? TD_RAPI_RESPONSE : TD_RAPI_ERROR;
	if (!post)
		goto method;
	*status = 400;
	if (n == 0 || n > TD_RAPI_ID_MAX)
		return td_fail(err, errlen, "request id of %zu bytes (1 to %d expected)", n,
			       TD_RAPI_ID_MAX);
	for (size_t i = 0; i < n; i++)
		if (!id_char(rest[i]))
			return td_fail(err, errlen,
				       "request id \"%s\": byte %zu is not a letter, digit, - or _",
				       td_shown(rest, n, shown), i + 1);
	memcpy(id, rest, n);
	id[n] = '\0';
	return 0;
method:
	*status = 405;
	return td_fail(err, errlen, "method %s not allowed on %s",
		       td_shown(method, strlen(method), shown), path);
}

int td_rapi_error_type(const char *value, size_t len, char out[TD_RAPI_TYPE_MAX + 1])
{
	out[0] = '\0';
	if (!value || len == 0 || len > TD_RAPI_TYPE_MAX)
		return -TD_EINVAL;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)value[i] <= 0x20 || (unsigned char)value[i] >= 0x7f ||
		    value[i] == '"' || value[i] == '\\')
			return -TD_EINVAL;
	memcpy(out, value, len);
	out[len] = '\0';
	return 0;
}

/* Decodes the JSON string value v (quotes included) into out (cut at cap-1 bytes). */
static int member_string(const struct td_json_member *m, char *out, size_t cap)
{
	struct td_buf b;
	int rc = -TD_EINVAL;

	if (m->value_len < 2 || m->value[0] != '"' || m->value[m->value_len - 1] != '"')
		return -TD_EINVAL;
	td_buf_init(&b);
	if (td_json_string_decode(m->value + 1, m->value_len - 2, &b) == 0 && !td_buf_failed(&b)) {
		size_t n = b.len < cap - 1 ? b.len : cap - 1;
		if (n)
			memcpy(out, b.data, n);
		out[n] = '\0';
		rc = 0;
	}
	td_buf_free(&b);
	return rc;
}

int td_rapi_parse_error(const char *body, size_t len, const char *header_type, const char *def_type,
			char type[TD_RAPI_TYPE_MAX + 1], char *msg, size_t msglen)
{
	char body_type[TD_RAPI_TYPE_MAX + 1] = "";
	bool json = body && len > 0 && td_json_valid(body, len, 0);

	if (msglen)
		msg[0] = '\0';
	if (json) {
		struct td_json_iter it;
		struct td_json_member m;
		char t[TD_RAPI_TYPE_MAX + 2];
		if (td_json_iter_object(&it, body, len) == 0)
			while (td_json_iter_next(&it, &m) > 0) {
				if (td_json_key_equals(&m, "errorType") &&
				    member_string(&m, t, sizeof t) == 0)
					td_rapi_error_type(t, strlen(t), body_type);
				else if (td_json_key_equals(&m, "errorMessage") && msglen)
					member_string(&m, msg, msglen);
			}
	}
	if (body_type[0])
		memcpy(type, body_type, strlen(body_type) + 1);
	else if (!header_type || td_rapi_error_type(header_type, strlen(header_type), type) < 0)
		td_rapi_error_type(def_type, strlen(def_type), type);
	return json;
}

void td_rapi_error_json(struct td_buf *b, const char *type, const char *msg)
{
	td_buf_appends(b, "{\"errorMessage\":");
	td_json_append_cstr(b, msg);
	td_buf_appends(b, ",\"errorType\":");
	td_json_append_cstr(b, type);
	td_buf_appendc(b, '}');
}

void td_rapi_respond_error(struct td_http_exchange *ex, int status, const char *type,
			   const char *msg)
{
	struct td_buf b;
	td_buf_init(&b);
	td_rapi_error_json(&b, type, msg);
	if (td_buf_failed(&b))
		td_http_respond(ex, 500, NULL, NULL, 0, NULL, 0);
	else
		td_http_respond(ex, status, "application/json", b.data, b.len, NULL, 0);
	td_buf_free(&b);
}

/* ---- The listener ---- */

struct request {
	struct request *next;
	enum td_rapi_kind kind;
	char id[TD_RAPI_ID_MAX + 1];
	struct td_http_exchange *ex;
};

/* Shared by the server thread and the engine; freed at the last unref. */
struct mailbox {
	pthread_mutex_t lock;
	int refs;
	bool posted, closed;
	struct request *head, *tail;
	struct td_engine *engine;
	td_rapi_handler handler; /* engine thread only; NULL once destroyed */
	void *arg;
};

struct td_rapi {
	struct td_http_server *http;
	struct mailbox *box;
};

static void box_unref(struct mailbox *box)
{
	pthread_mutex_lock(&box->lock);
	bool last = --box->refs == 0;
	pthread_mutex_unlock(&box->lock);
	if (!last)
		return;
	pthread_mutex_destroy(&box->lock);
	free(box);
}

static void answer_gone(struct request *list)
{
	while (list) {
		struct request *next = list->next;
		td_rapi_respond_error(list->ex, 503, "Runtime.Unavailable",
				      "the runtime environment is shutting down");
		free(list);
		list = next;
	}
}

/* Engine thread: hands the batch to the handler. */
static void deliver(void *arg)
{
	struct mailbox *box = arg;

	pthread_mutex_lock(&box->lock);
	struct request *list = box->head;
	box->head = box->tail = NULL;
	box->posted = false;
	pthread_mutex_unlock(&box->lock);
	while (list) {
		struct request *next = list->next;
		if (box->handler)
			box->handler(box->arg, list->kind, list->id, list->ex);
		else
			td_rapi_respond_error(list->ex, 503, "Runtime.Unavailable",
					      "the runtime environment is shutting down");
		free(list);
		list = next;
	}
	box_unref(box);
}

/* Server thread. */
static void on_request(void *arg, struct td_http_exchange *ex)
{
	struct mailbox *box = arg;
	const struct td_http_request *req = td_http_request(ex);
	struct request *r;
	char err[160];
	int status;
	bool post = false;

	r = calloc(1, sizeof *r);
	if (!r) {
		td_http_respond(ex, 500, NULL, NULL, 0, NULL, 0);
		return;
	}
	if (td_rapi_parse(req->method, req->path, &r->kind, r->id, &status, err, sizeof err) < 0) {
		free(r);
		td_rapi_respond_error(ex, status,
				      status == 404   ? "NotFound"
				      : status == 405 ? "MethodNotAllowed"
						      : "InvalidRequestID",
				      err);
		return;
	}
	r->ex = ex;
	pthread_mutex_lock(&box->lock);
	if (box->closed) {
		pthread_mutex_unlock(&box->lock);
		answer_gone(r);
		return;
	}
	if (box->tail)
		box->tail->next = r;
	else
		box->head = r;
	box->tail = r;
	if (!box->posted) {
		box->posted = post = true;
		box->refs++;
	}
	pthread_mutex_unlock(&box->lock);
	if (post && td_engine_call_always(box->engine, deliver, box) < 0) {
		pthread_mutex_lock(&box->lock);
		struct request *list = box->head;
		box->head = box->tail = NULL;
		box->posted = false;
		pthread_mutex_unlock(&box->lock);
		answer_gone(list);
		box_unref(box);
	}
}

struct td_rapi *td_rapi_create(struct td_engine *engine, const char *name, td_rapi_handler handler,
			       void *arg, char *err, size_t errlen)
{
	struct td_http_limits lim = {.max_body = TD_RAPI_SERVER_MAX_BODY,
				     .max_connections = 16,
				     .request_timeout_ms = 3600000,
				     .threads = 1};
	struct td_rapi *rapi = calloc(1, sizeof *rapi);
	struct mailbox *box = calloc(1, sizeof *box);

	if (!rapi || !box) {
		snprintf(err, errlen, "%s: out of memory", name);
		goto fail;
	}
	pthread_mutex_init(&box->lock, NULL);
	box->refs = 1;
	box->engine = engine;
	box->handler = handler;
	box->arg = arg;
	rapi->box = box;
	rapi->http = td_http_server_create("127.0.0.1:0", name, &lim, err, errlen);
	if (!rapi->http)
		goto fail;
	if (td_http_route_add(rapi->http, "/*", on_request, box) < 0) {
		snprintf(err, errlen, "%s: cannot add the Runtime API route", name);
		goto fail;
	}
	return rapi;
fail:
	if (rapi && rapi->http)
		td_http_server_destroy(rapi->http);
	if (box && rapi && rapi->box)
		box_unref(box);
	else
		free(box);
	free(rapi);
	return NULL;
}

unsigned td_rapi_port(const struct td_rapi *rapi)
{
	return td_http_server_port(rapi->http);
}

void td_rapi_destroy(struct td_rapi *rapi)
{
	if (!rapi)
		return;
	struct mailbox *box = rapi->box;
	pthread_mutex_lock(&box->lock);
	box->closed = true;
	struct request *list = box->head;
	box->head = box->tail = NULL;
	pthread_mutex_unlock(&box->lock);
	box->handler = NULL;
	answer_gone(list);
	td_http_server_destroy(rapi->http);
	box_unref(box);
	free(rapi);
}
