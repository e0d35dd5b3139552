/*
 * The admin API's read-only routes on the admin listener: GET /healthz (the process is
 * up), /readyz (every source ready), /metrics (Prometheus text format) and the JSON
 * status documents /v1/sources, /v1/triggers, /v1/functions and /v1/usage. HEAD works
 * wherever GET does; another method is 405 with Allow.
 *
 * With a token, every request to these routes needs "Authorization: Bearer <token>"
 * (compared in constant time), else 401 with WWW-Authenticate: Bearer.
 *
 * Threads: /healthz is answered on the HTTP server's thread. The other routes read
 * router state, which belongs to the engine thread: the work is posted there with
 * td_engine_call() and answered from there. Create and destroy from the engine thread.
 */
#ifndef TRIGGERD_ADMIN_H
#define TRIGGERD_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

struct td_admin;
struct td_http_server;
struct td_router;

/*
 * Registers the routes on http (which must outlive the admin). router may be NULL while
 * there is none (start-up): then /healthz works and the other routes answer 503. token
 * is copied; NULL: no authentication; "" is refused. NULL with the reason logged (a
 * route taken, an empty token, out of memory).
 */
struct td_admin *td_admin_create(struct td_http_server *http, struct td_router *router,
				 const char *token);
/*
 * Removes the routes and frees the admin. Requests already posted to the engine are
 * still answered there (they hold the router, not the admin): destroy the admin before
 * the router, and run the engine until then.
 */
void td_admin_destroy(struct td_admin *admin);

/*
 * Checks an Authorization header value (may be NULL) against a bearer token of
 * token_len bytes, in constant time: NULL when it carries the token, else why not (for
 * a 401 body), with *invalid true when a bearer token was given but is not this one.
 * Shared by the admin routes and the Invoke API. Any thread.
 */
const char *td_admin_bearer_refusal(const char *authorization, const char *token, size_t token_len,
				    bool *invalid);

#endif
