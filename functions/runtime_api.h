/*
 * The AWS Lambda Runtime API as one runtime process sees it: a loopback HTTP listener
 * of its own (so that every request is known to come from that process) that parses
 * what the runtime sends and hands the valid requests to the engine thread.
 *
 *   GET  /2018-06-01/runtime/invocation/next             TD_RAPI_NEXT (long poll)
 *   POST /2018-06-01/runtime/invocation/{id}/response    TD_RAPI_RESPONSE
 *   POST /2018-06-01/runtime/invocation/{id}/error       TD_RAPI_ERROR
 *   POST /2018-06-01/runtime/init/error                  TD_RAPI_INIT_ERROR
 *
 * Any other path is 404, a known path with another method 405, a malformed request id
 * 400, all answered on the server's thread with AWS's error JSON ({"errorMessage",
 * "errorType"}); what an id means (current, stale, unknown) is the caller's business.
 *
 * The parsers below are pure (any thread, no allocation) and are the fuzz target's
 * surface: they never read outside the bytes they are given.
 */
#ifndef TRIGGERD_RUNTIME_API_H
#define TRIGGERD_RUNTIME_API_H

#include <stdbool.h>
#include <stddef.h>

#include "../router/http_server.h"
#include "../router/json.h"

#define TD_RAPI_PREFIX	 "/2018-06-01/runtime/"
#define TD_RAPI_ID_MAX	 64	    /* longest request id accepted */
#define TD_RAPI_TYPE_MAX 128	    /* longest error type kept */
#define TD_RAPI_MAX_BODY (6u << 20) /* a response over this is 413 (as on Lambda) */

enum td_rapi_kind { TD_RAPI_NEXT, TD_RAPI_RESPONSE, TD_RAPI_ERROR, TD_RAPI_INIT_ERROR };

/*
 * Parses a request line. On success returns 0 with *kind and, for RESPONSE and ERROR,
 * the request id in id (NUL-terminated; letters, digits, '-' and '_', 1 to
 * TD_RAPI_ID_MAX bytes). Otherwise returns -TD_EINVAL with the HTTP status to answer
 * in *status (404, 405 or 400) and the reason in err.
 */
int td_rapi_parse(const char *method, const char *path, enum td_rapi_kind *kind,
		  char id[TD_RAPI_ID_MAX + 1], int *status, char *err, size_t errlen);

/*
 * The Lambda-Runtime-Function-Error-Type header (or an errorType): printable ASCII
 * without spaces, 1 to TD_RAPI_TYPE_MAX bytes. Returns 0 with it copied into out, or
 * -TD_EINVAL (out is then "").
 */
int td_rapi_error_type(const char *value, size_t len, char out[TD_RAPI_TYPE_MAX + 1]);

/*
 * What a runtime posted to .../error or /init/error: when body is a JSON object its
 * "errorType" and "errorMessage" strings are taken (decoded; a message cut at msglen-1
 * bytes). type is the body's errorType when valid (the document the caller gets names
 * it), else header_type (Lambda-Runtime-Function-Error-Type, may be NULL) when valid,
 * else def_type; msg falls back to "". Returns 1 when the body is a JSON document (to
 * pass through as the error document), 0 when it is not.
 */
int td_rapi_parse_error(const char *body, size_t len, const char *header_type, const char *def_type,
			char type[TD_RAPI_TYPE_MAX + 1], char *msg, size_t msglen);

/* Appends {"errorMessage":msg,"errorType":type} to b. */
void td_rapi_error_json(struct td_buf *b, const char *type, const char *msg);

/* ---- The listener ---- */

struct td_engine;
struct td_rapi;

/*
 * Called on the engine thread for each valid request: kind, the request id (RESPONSE,
 * ERROR; else "") and the exchange, which the handler answers with td_http_respond()
 * exactly once, now or later (a /next is answered when an invocation is there).
 */
typedef void (*td_rapi_handler)(void *arg, enum td_rapi_kind kind, const char *id,
				struct td_http_exchange *ex);

/*
 * Listens on 127.0.0.1, any free port, with one server thread. name is for logs
 * ("process:hello"). NULL with the reason in err. Engine thread.
 */
struct td_rapi *td_rapi_create(struct td_engine *engine, const char *name, td_rapi_handler handler,
			       void *arg, char *err, size_t errlen);
unsigned td_rapi_port(const struct td_rapi *rapi);
/*
 * Engine thread. The handler is not called after it returns; requests not yet handed
 * over get 503. Exchanges the handler kept must still be answered by it (before or
 * after: see http_server.h).
 */
void td_rapi_destroy(struct td_rapi *rapi);

/* AWS's error answer: status, {"errorMessage","errorType"}. Any thread. */
void td_rapi_respond_error(struct td_http_exchange *ex, int status, const char *type,
			   const char *msg);

#endif
