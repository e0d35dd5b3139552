/*
 * An HTTP/1.1 server on libmicrohttpd for the webhook listener, the admin API and the
 * Lambda Runtime API: a listener with limits, a route table, whole-body requests, and
 * responses that may come later from another thread (the connection is suspended
 * meanwhile and resumed by td_http_respond).
 *
 * Limits (each answered without calling a handler, never a crash): a body over
 * max_body is 413 (with Content-Length at once, closing the connection; a chunked body
 * is read on and dropped, and its connection closed if it goes on past twice max_body),
 * headers over max_header 431 (far over it: libmicrohttpd's own 431), connections over
 * max_connections get 503 and are closed (libmicrohttpd refuses those over twice max_connections),
 * a connection that stays idle for request_timeout (whole seconds, rounded up; never while its
 * answer is pending) is closed. No route is 404, a path with %00 400. Error bodies are JSON:
 * {"error": "..."}; 503s carry Retry-After. HEAD answers go out without their body.
 *
 * Threads: handlers run on the server's threads and must not block; they answer with
 * td_http_respond() at once or later, from any thread, exactly once. Routes may be added
 * and removed from any thread while the server runs.
 *
 * Ownership: the server owns every exchange. An exchange stays valid until
 * td_http_respond() is called for it, even across td_http_server_destroy(): destroy
 * answers requests still waiting with 503, and the handler's later td_http_respond()
 * then only frees the exchange. An exchange that is never answered is never freed.
 */
#ifndef TRIGGERD_HTTP_SERVER_H
#define TRIGGERD_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include <triggerd/event.h> /* struct td_http_header */

struct td_http_server;
struct td_http_exchange;

struct td_http_limits {
	long long max_body;	      /* bytes; 0: 6 MB */
	long long max_header;	      /* bytes; 0: 16 KB */
	long long max_connections;    /* 0: 1024 */
	long long request_timeout_ms; /* 0: 30 s */
	int threads;		      /* epoll threads; 0: 2 */
};

struct td_http_request {
	const char *method;
	const char *path;		      /* decoded, without the query */
	const char *query;		      /* raw text after '?', or NULL */
	const struct td_http_header *headers; /* as received, repeated names included */
	size_t nheaders;
	const char *body; /* NUL-terminated for convenience; body_len bytes */
	size_t body_len;
	const char *remote; /* "127.0.0.1:54321", "[::1]:54321" */
};

/* Valid until td_http_respond() is called for the exchange. */
const struct td_http_request *td_http_request(const struct td_http_exchange *ex);
/* A header's value (name compared case-insensitively), or NULL. */
const char *td_http_header_get(const struct td_http_request *req, const char *name);

typedef void (*td_http_handler)(void *arg, struct td_http_exchange *ex);

/* Listens on "HOST:PORT" (port 0: any free port; a host name listens on its first
 * address that binds). name is used in logs and messages ("webhook"). limits may be NULL
 * (every default). NULL with the reason in err ("webhook: cannot listen on
 * 127.0.0.1:7070: Address already in use"). Any thread. */
struct td_http_server *td_http_server_create(const char *listen, const char *name,
					     const struct td_http_limits *limits, char *err,
					     size_t errlen);
/* Stops listening, answers 503 to requests still waiting (waiting up to 2 s for those
 * answers to be sent), closes every connection and frees the server and its routes. No
 * handler runs after it returns. Not from a handler. */
void td_http_server_destroy(struct td_http_server *server);
/* The port it listens on (useful with port 0). */
unsigned td_http_server_port(const struct td_http_server *server);

/* A route: an exact path, or a prefix when path ends with '*' ("/2015-03-31/functions/"
 * with a '*' appended matches every decoded path that starts with "/2015-03-31/functions/").
 * An exact route wins, else the longest matching prefix; no route is 404. path starts
 * with '/' and has no '*' but at its end; it is copied. Returns 0, -TD_EINVAL (taken or
 * malformed) or -TD_ENOMEM. */
int td_http_route_add(struct td_http_server *server, const char *path, td_http_handler handler,
		      void *arg);
/* After it returns, the handler is not called again, and no call of it is still running
 * (but the one that called td_http_route_remove, when a handler removes its own route):
 * the caller may free arg. A handler must not remove another route. Unknown paths are
 * ignored. */
void td_http_route_remove(struct td_http_server *server, const char *path);
/* A route's own body limit (bytes; 0: the server's max_body), e.g. a webhook source's
 * max_body. Returns 0 or -TD_ENOTFOUND. */
int td_http_route_set_max_body(struct td_http_server *server, const char *path, long long max_body);

/* Answers an exchange: status (100..599, else 500), content type (may be NULL), body
 * (copied; may be NULL when len is 0), extra headers (copied; a name or value with CR or
 * LF is dropped and logged). Any thread, handler included; exactly once per exchange,
 * after which the exchange and its request must not be used. */
void td_http_respond(struct td_http_exchange *ex, int status, const char *content_type,
		     const void *body, size_t len, const struct td_http_header *headers,
		     size_t nheaders);
/* {"error": reason} with the given status. */
void td_http_respond_error(struct td_http_exchange *ex, int status, const char *reason);

#endif
