/*
 * The HTTP server (see http_server.h) on libmicrohttpd: an internal thread pool of
 * HTTP_THREADS epoll loops, keep-alive, and connections suspended while a handler's
 * answer is pending, so that no thread waits for a function.
 *
 * A request's life: the URI callback allocates the exchange (it is the only place that
 * sees the raw query); the first access-handler call checks the limits that can be
 * checked before the body (connections, header size, route, Content-Length) and may
 * answer at once; the body is accumulated into one buffer (sized by Content-Length when
 * there is one); the last call runs the route's handler. The exchange then moves
 * through a small state machine under its mutex, so that an answer from another thread
 * that lands while the connection is being suspended is never lost:
 *
 *   RUNNING --handler returns, answered--> queue the response
 *   RUNNING --handler returns, no answer--> SUSPENDING --MHD_suspend_connection-->
 *       SUSPENDED (or resumed at once when the answer came meanwhile)
 *   SUSPENDED --td_http_respond--> MHD_resume_connection --> the access handler runs
 *       again and queues the response.
 *
 * Early answers: libmicrohttpd 0.9.75 can answer before the body only from the first
 * call (and then closes the connection), never while the body arrives. So a
 * Content-Length over the limit is answered 413 at once; a chunked body that outgrows
 * it is read on and dropped, then answered 413 on a connection that stays usable, and
 * the connection is closed if the body goes on past twice the limit (plus 1 MB). A 404
 * or 400 waits for the body too (dropped), so that keep-alive survives it.
 *
 * An exchange is freed when libmicrohttpd is done with it (the completion callback) and
 * its handler has answered, whichever comes last. Destroy answers the exchanges still
 * waiting with 503 itself ("orphans": the handler's later answer only frees them) and
 * resumes every suspended connection, as libmicrohttpd requires before it stops.
 *
 * Locks: the server's lock guards the live list (exchanges whose handler ran and that
 * libmicrohttpd still holds), the connection count and shutdown; each exchange's own
 * lock guards its state and pending response, and is taken after the server's. Routes
 * have their own lock; a running handler holds a reference to its route, so that
 * td_http_route_remove() can wait for running calls. No lock is held while calling
 * into libmicrohttpd or a handler.
 */
#include "http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <triggerd/config.h>
#include <triggerd/errors.h>
#include <triggerd/log.h>

#include "json.h"

#define HTTP_THREADS		2
#define DEFAULT_MAX_BODY	(6LL << 20)
#define DEFAULT_MAX_HEADER	(16LL << 10)
#define DEFAULT_MAX_CONNECTIONS 1024
#define DEFAULT_TIMEOUT_MS	30000
#define SHUTDOWN_WAIT_MS	2000
#define BODY_MIN_CAP		(16u << 10)

struct route {
	struct route *next;
	td_http_handler handler;
	void *arg;
	long long max_body; /* 0: the server's */
	int refs;	    /* the table's while linked, plus one per running call */
	bool linked;
	bool prefix;
	size_t len;  /* of the path without its '*' */
	char path[]; /* as given */
};

enum ex_state {
	EX_READING,    /* before the handler: headers and body */
	EX_RUNNING,    /* the handler runs */
	EX_SUSPENDING, /* the handler returned without an answer; being suspended */
	EX_SUSPENDED,
	EX_QUEUED, /* a response is queued: nothing left to do */
};

struct td_http_exchange {
	struct td_http_server *server; /* not to be used once orphan */
	struct MHD_Connection *conn;
	struct td_http_exchange *prev, *next; /* the live list */
	pthread_mutex_t lock;
	enum ex_state state;
	bool started;	 /* the first access-handler call happened */
	bool live;	 /* in the live list */
	bool owner;	 /* the handler ran and has not answered yet */
	bool mhd;	 /* libmicrohttpd still holds it */
	bool orphan;	 /* answered by the server (shutdown): the handler's answer is dropped */
	bool answered;	 /* response holds the answer (NULL: out of memory, close) */
	bool discarding; /* over max_body: the rest of the body is read and dropped */
	bool nul_path;	 /* the raw path holds %00 */
	unsigned early_status; /* decided from the headers, given once the body is read */
	const char *early_reason;
	struct MHD_Response *response; /* the answer, not queued yet */
	unsigned status;
	long long max_body;
	char *body;
	size_t body_len, body_cap;
	unsigned long long discarded;
	char *arena; /* header array and strings of req */
	struct td_http_request req;
	bool has_query;
	char query[]; /* raw text after '?' */
};

struct td_http_server {
	char *name;
	struct MHD_Daemon *daemon;
	int listen_fd;
	unsigned port;
	long long max_body;
	long long max_header;
	long long max_connections;

	pthread_mutex_t lock; /* live list, connections, closing (written), resumes */
	pthread_cond_t cond;  /* the live list emptied or a resume finished */
	struct td_http_exchange *live;
	long long connections;
	atomic_bool closing;
	atomic_int resumes; /* td_http_respond() calls between deciding and resuming */

	pthread_mutex_t log_lock;
	struct td_log_ratelimit log_limit;

	pthread_mutex_t routes_lock;
	pthread_cond_t routes_cond; /* a running call of an unlinked route ended */
	struct route *routes;
};

/* The route whose handler runs on this thread, to let it remove itself. */
static __thread const struct route *current_route;

/* Marks connections over max_connections (their socket context). */
static char over_limit_marker;

static const char empty_body[1];

/* ---- Small helpers --------------------------------------------------------------------- */

static void size_text(long long bytes, char *out, size_t cap)
{
	if (bytes >= (1LL << 20) && bytes % (1LL << 20) == 0)
		snprintf(out, cap, "%lld MB", bytes >> 20);
	else if (bytes >= 1024 && bytes % 1024 == 0)
		snprintf(out, cap, "%lld KB", bytes >> 10);
	else
		snprintf(out, cap, "%lld bytes", bytes);
}

static bool has_crlf(const char *s)
{
	return strpbrk(s, "\r\n") != NULL;
}

/* A response (not queued) with a JSON error body; close: the connection closes after it;
 * 503s say when to come back. */
static struct MHD_Response *error_response(unsigned status, const char *reason, bool close)
{
	struct td_buf b;
	struct MHD_Response *resp;

	td_buf_init(&b);
	td_buf_appends(&b, "{\"error\":");
	td_json_append_cstr(&b, reason);
	td_buf_appendc(&b, '}');
	if (td_buf_failed(&b)) {
		td_buf_free(&b);
		return NULL;
	}
	resp = MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_COPY);
	td_buf_free(&b);
	if (!resp)
		return NULL;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	if (close)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	if (status == 503)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	return resp;
}

/* Queues a response on the connection (access-handler thread only) and releases it. */
static enum MHD_Result queue(struct td_http_exchange *ex, unsigned status,
			     struct MHD_Response *resp)
{
	enum MHD_Result rc;

	ex->state = EX_QUEUED;
	if (!resp)
		return MHD_NO; /* out of memory: close the connection */
	rc = MHD_queue_response(ex->conn, status, resp);
	MHD_destroy_response(resp);
	return rc;
}

static enum MHD_Result queue_error(struct td_http_exchange *ex, unsigned status, const char *reason,
				   bool close)
{
	return queue(ex, status, error_response(status, reason, close));
}

static void ex_free(struct td_http_exchange *ex)
{
	if (ex->response)
		MHD_destroy_response(ex->response);
	pthread_mutex_destroy(&ex->lock);
	free(ex->body);
	free(ex->arena);
	free(ex);
}

/* ---- Routes ------------------------------------------------------------------------------ */

static bool route_path_valid(const char *path)
{
	const char *star = strchr(path, '*');
	return path[0] == '/' && (!star || star[1] == '\0');
}

/* An exact route, else the longest prefix route; routes_lock held. */
static struct route *route_match(struct route *list, const char *path)
{
	struct route *best = NULL;
	size_t plen = strlen(path);

	for (struct route *r = list; r; r = r->next) {
		if (!r->prefix) {
			if (r->len == plen && memcmp(r->path, path, plen) == 0)
				return r;
		} else if (r->len <= plen && memcmp(r->path, path, r->len) == 0 &&
			   (!best || r->len > best->len)) {
			best = r;
		}
	}
	return best;
}

static struct route **route_slot(struct td_http_server *s, const char *path)
{
	struct route **pp;

	for (pp = &s->routes; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->path, path) == 0)
			return pp;
	return NULL;
}

int td_http_route_add(struct td_http_server *s, const char *path, td_http_handler handler,
		      void *arg)
{
	size_t len = strlen(path);
	struct route *r;

	if (!route_path_valid(path) || !handler) {
		td_logs_error(s->name, "route \"%s\": a path starts with '/' and may end with '*'",
			      path);
		return -TD_EINVAL;
	}
	r = calloc(1, sizeof(*r) + len + 1);
	if (!r)
		return -TD_ENOMEM;
	memcpy(r->path, path, len + 1);
	r->prefix = path[len - 1] == '*';
	r->len = r->prefix ? len - 1 : len;
	r->handler = handler;
	r->arg = arg;
	r->refs = 1;
	r->linked = true;
	pthread_mutex_lock(&s->routes_lock);
	if (route_slot(s, path)) {
		pthread_mutex_unlock(&s->routes_lock);
		free(r);
		td_logs_error(s->name, "route \"%s\" is taken", path);
		return -TD_EINVAL;
	}
	r->next = s->routes;
	s->routes = r;
	pthread_mutex_unlock(&s->routes_lock);
	return 0;
}

void td_http_route_remove(struct td_http_server *s, const char *path)
{
	struct route **pp, *r;
	int own;

	pthread_mutex_lock(&s->routes_lock);
	pp = route_slot(s, path);
	if (!pp) {
		pthread_mutex_unlock(&s->routes_lock);
		return;
	}
	r = *pp;
	*pp = r->next;
	r->next = NULL;
	r->linked = false;
	own = current_route == r ? 1 : 0;
	while (r->refs > 1 + own)
		pthread_cond_wait(&s->routes_cond, &s->routes_lock);
	r->refs--;
	if (r->refs > 0)
		r = NULL; /* its own running call frees it when it returns */
	pthread_mutex_unlock(&s->routes_lock);
	free(r);
}

int td_http_route_set_max_body(struct td_http_server *s, const char *path, long long max_body)
{
	struct route **pp;

	pthread_mutex_lock(&s->routes_lock);
	pp = route_slot(s, path);
	if (pp)
		(*pp)->max_body = max_body > 0 ? max_body : 0;
	pthread_mutex_unlock(&s->routes_lock);
	return pp ? 0 : -TD_ENOTFOUND;
}

/* The route for a path with a reference for one call, or NULL. */
static struct route *route_get(struct td_http_server *s, const char *path)
{
	struct route *r;

	pthread_mutex_lock(&s->routes_lock);
	r = route_match(s->routes, path);
	if (r)
		r->refs++;
	pthread_mutex_unlock(&s->routes_lock);
	return r;
}

static void route_put(struct td_http_server *s, struct route *r)
{
	bool gone;

	pthread_mutex_lock(&s->routes_lock);
	gone = --r->refs == 0;
	if (!gone && !r->linked)
		pthread_cond_broadcast(&s->routes_cond);
	pthread_mutex_unlock(&s->routes_lock);
	if (gone)
		free(r);
}

/* The body limit for a path before the body is read (the route may change later). */
static long long body_limit(struct td_http_server *s, const char *path, bool *found)
{
	struct route *r;
	long long limit = s->max_body;

	pthread_mutex_lock(&s->routes_lock);
	r = route_match(s->routes, path);
	if (r && r->max_body > 0)
		limit = r->max_body;
	*found = r != NULL;
	pthread_mutex_unlock(&s->routes_lock);
	return limit;
}

/* ---- libmicrohttpd callbacks --------------------------------------------------------- */

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct td_http_server *s = cls;
	char msg[512];
	size_t n;
	bool may;

	if (TD_LOG_WARN > td_log_threshold)
		return;
	vsnprintf(msg, sizeof msg, fmt, ap);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	pthread_mutex_lock(&s->log_lock);
	may = td_log_ratelimit(&s->log_limit, 20, 1000);
	pthread_mutex_unlock(&s->log_lock);
	if (may)
		td_logs_warn(s->name, "libmicrohttpd: %s", msg);
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	const char *q = strchr(uri, '?');
	size_t qlen = q ? strlen(q + 1) : 0;
	size_t plen = q ? (size_t)(q - uri) : strlen(uri);
	struct td_http_exchange *ex;

	ex = calloc(1, sizeof(*ex) + qlen + 1);
	if (!ex)
		return NULL;
	pthread_mutex_init(&ex->lock, NULL);
	ex->server = cls;
	ex->conn = conn;
	ex->mhd = true;
	if (q) {
		memcpy(ex->query, q + 1, qlen + 1);
		ex->has_query = true;
	}
	for (size_t i = 0; i + 2 < plen; i++)
		if (uri[i] == '%' && uri[i + 1] == '0' && uri[i + 2] == '0')
			ex->nul_path = true;
	return ex;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct td_http_server *s = cls;
	struct td_http_exchange *ex = *con_cls;
	bool free_now;

	(void)conn;
	(void)toe;
	if (!ex)
		return;
	*con_cls = NULL;
	pthread_mutex_lock(&s->lock);
	if (ex->live) {
		ex->live = false;
		if (ex->prev)
			ex->prev->next = ex->next;
		else
			s->live = ex->next;
		if (ex->next)
			ex->next->prev = ex->prev;
		if (!s->live)
			pthread_cond_broadcast(&s->cond);
	}
	pthread_mutex_lock(&ex->lock);
	ex->mhd = false;
	if (ex->owner)
		ex->orphan = true; /* only at shutdown: the handler's answer will free it */
	free_now = !ex->owner;
	pthread_mutex_unlock(&ex->lock);
	pthread_mutex_unlock(&s->lock);
	if (free_now)
		ex_free(ex);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct td_http_server *s = cls;

	(void)conn;
	pthread_mutex_lock(&s->lock);
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		if (++s->connections > s->max_connections)
			*socket_context = &over_limit_marker;
	} else {
		s->connections--;
	}
	pthread_mutex_unlock(&s->lock);
}

/* ---- Requests ------------------------------------------------------------------------- */

struct header_walk {
	struct td_http_header *h;
	char *p;
	size_t n, bytes;
};

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
				    const char *value)
{
	struct header_walk *w = cls;

	(void)kind;
	w->n++;
	w->bytes += strlen(key) + 1 + (value ? strlen(value) : 0) + 1;
	return MHD_YES;
}

static char *put(char **p, const char *s)
{
	size_t n = strlen(s) + 1;
	char *at = *p;

	memcpy(at, s, n);
	*p += n;
	return at;
}

static enum MHD_Result copy_header(void *cls, enum MHD_ValueKind kind, const char *key,
				   const char *value)
{
	struct header_walk *w = cls;

	(void)kind;
	w->h[w->n].name = put(&w->p, key);
	w->h[w->n].value = put(&w->p, value ? value : "");
	w->n++;
	return MHD_YES;
}

static void format_remote(struct MHD_Connection *conn, char *out, size_t cap)
{
	const union MHD_ConnectionInfo *info =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	char ip[INET6_ADDRSTRLEN];
	const struct sockaddr *sa = info ? info->client_addr : NULL;

	snprintf(out, cap, "unknown");
	if (sa && sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)sa;
		if (inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip))
			snprintf(out, cap, "%s:%u", ip, (unsigned)ntohs(a->sin_port));
	} else if (sa && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)sa;
		if (inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip))
			snprintf(out, cap, "[%s]:%u", ip, (unsigned)ntohs(a->sin6_port));
	}
}

/* Copies what the handler sees into the exchange, so that it outlives the connection. */
static int build_request(struct td_http_exchange *ex, const char *url, const char *method)
{
	struct header_walk w = {0};
	char remote[INET6_ADDRSTRLEN + 16];
	size_t strings;

	format_remote(ex->conn, remote, sizeof remote);
	MHD_get_connection_values(ex->conn, MHD_HEADER_KIND, count_header, &w);
	strings = w.bytes + strlen(url) + 1 + strlen(method) + 1 + strlen(remote) + 1;
	ex->arena = malloc(w.n * sizeof(struct td_http_header) + strings);
	if (!ex->arena)
		return -TD_ENOMEM;
	w.h = (struct td_http_header *)(void *)ex->arena;
	w.p = ex->arena + w.n * sizeof(struct td_http_header);
	w.n = 0;
	MHD_get_connection_values(ex->conn, MHD_HEADER_KIND, copy_header, &w);
	ex->req.headers = w.h;
	ex->req.nheaders = w.n;
	ex->req.method = put(&w.p, method);
	ex->req.path = put(&w.p, url);
	ex->req.remote = put(&w.p, remote);
	ex->req.query = ex->has_query ? ex->query : NULL;
	if (ex->body)
		ex->body[ex->body_len] = '\0';
	ex->req.body = ex->body ? ex->body : empty_body;
	ex->req.body_len = ex->body_len;
	return 0;
}

/* close: the body is not read, so the connection cannot serve another request. */
static enum MHD_Result body_too_large(struct td_http_exchange *ex, bool close)
{
	char limit[32], msg[64];

	size_text(ex->max_body, limit, sizeof limit);
	snprintf(msg, sizeof msg, "request body over %s", limit);
	return queue_error(ex, 413, msg, close);
}

/* The first call, once the headers are in: every check that needs no body. */
static enum MHD_Result start(struct td_http_server *s, struct td_http_exchange *ex, const char *url)
{
	const union MHD_ConnectionInfo *info;
	const char *cl;
	unsigned long long len = 0;
	bool found, too_large = false;

	if (atomic_load(&s->closing))
		return queue_error(ex, 503, "shutting down", true);
	info = MHD_get_connection_info(ex->conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (info && info->socket_context == &over_limit_marker)
		return queue_error(ex, 503, "too many connections", true);
	info = MHD_get_connection_info(ex->conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
	if (info && (long long)info->header_size > s->max_header) {
		char limit[32], msg[64];
		size_text(s->max_header, limit, sizeof limit);
		snprintf(msg, sizeof msg, "request headers over %s", limit);
		return queue_error(ex, 431, msg, true);
	}
	ex->max_body = body_limit(s, url, &found);
	cl = MHD_lookup_connection_value(ex->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl) {
		char *end;
		errno = 0;
		len = strtoull(cl, &end, 10);
		too_large = errno || end == cl || len > (unsigned long long)ex->max_body;
	}
	/* Answering before the body costs the connection (libmicrohttpd closes it), so
	 * these answers wait for the body, which is dropped, unless it is too large. */
	if (ex->nul_path || !found) {
		ex->early_status = ex->nul_path ? 400 : 404;
		ex->early_reason = ex->nul_path ? "the request path contains %00" : "not found";
		if (too_large)
			return queue_error(ex, ex->early_status, ex->early_reason, true);
		ex->discarding = true;
		return MHD_YES;
	}
	if (too_large)
		return body_too_large(ex, true);
	if (len > 0) {
		ex->body = malloc((size_t)len + 1);
		if (!ex->body)
			return queue_error(ex, 500, "out of memory", true);
		ex->body_cap = (size_t)len + 1;
	}
	return MHD_YES;
}

/* A piece of the body. */
static enum MHD_Result take_body(struct td_http_exchange *ex, const char *data, size_t n)
{
	if (!ex->discarding && ex->body_len + n > (unsigned long long)ex->max_body) {
		ex->discarding = true;
		ex->discarded = ex->body_len;
		free(ex->body);
		ex->body = NULL;
		ex->body_len = ex->body_cap = 0;
	}
	if (ex->discarding) {
		/* Read on to answer 413 on a sane connection, but not forever. */
		unsigned long long bound = 2 * (unsigned long long)ex->max_body + (1u << 20);
		ex->discarded += n;
		if (ex->discarded > bound) {
			td_logs_warn(ex->server->name,
				     "closing a connection whose request body goes on past %llu "
				     "bytes",
				     bound);
			return MHD_NO;
		}
		return MHD_YES;
	}
	if (ex->body_len + n + 1 > ex->body_cap) {
		size_t cap = ex->body_cap ? ex->body_cap : BODY_MIN_CAP;
		char *p;
		while (cap < ex->body_len + n + 1)
			cap *= 2;
		if (cap > (size_t)ex->max_body + 1)
			cap = (size_t)ex->max_body + 1;
		p = realloc(ex->body, cap);
		if (!p)
			return MHD_NO;
		ex->body = p;
		ex->body_cap = cap;
	}
	memcpy(ex->body + ex->body_len, data, n);
	ex->body_len += n;
	return MHD_YES;
}

/* After the handler returned, and on every resume: queue the answer or wait for it. */
static enum MHD_Result finish(struct td_http_server *s, struct td_http_exchange *ex)
{
	struct MHD_Response *resp;
	unsigned status;
	bool resume;

	pthread_mutex_lock(&ex->lock);
	if (!ex->answered && atomic_load(&s->closing)) {
		ex->response = error_response(503, "shutting down", true);
		ex->status = 503;
		ex->answered = true;
		ex->orphan = true;
	}
	if (ex->answered) {
		resp = ex->response;
		status = ex->status;
		ex->response = NULL;
		pthread_mutex_unlock(&ex->lock);
		return queue(ex, status, resp);
	}
	ex->state = EX_SUSPENDING;
	pthread_mutex_unlock(&ex->lock);

	MHD_suspend_connection(ex->conn);

	pthread_mutex_lock(&ex->lock);
	ex->state = EX_SUSPENDED;
	resume = ex->answered; /* answered while being suspended */
	pthread_mutex_unlock(&ex->lock);
	if (resume)
		MHD_resume_connection(ex->conn);
	return MHD_YES;
}

/* The whole request is in: run the route's handler. */
static enum MHD_Result dispatch(struct td_http_server *s, struct td_http_exchange *ex,
				const char *url, const char *method)
{
	struct route *r;

	if (build_request(ex, url, method) < 0)
		return queue_error(ex, 500, "out of memory", true);
	r = route_get(s, url);
	if (!r)
		return queue_error(ex, 404, "not found", false);
	pthread_mutex_lock(&s->lock);
	if (atomic_load(&s->closing)) {
		pthread_mutex_unlock(&s->lock);
		route_put(s, r);
		return queue_error(ex, 503, "shutting down", true);
	}
	ex->live = true;
	ex->prev = NULL;
	ex->next = s->live;
	if (s->live)
		s->live->prev = ex;
	s->live = ex;
	ex->state = EX_RUNNING;
	ex->owner = true;
	pthread_mutex_unlock(&s->lock);

	current_route = r;
	r->handler(r->arg, ex);
	current_route = NULL;
	route_put(s, r);
	return finish(s, ex);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct td_http_server *s = cls;
	struct td_http_exchange *ex = *con_cls;

	(void)conn;
	(void)version;
	if (!ex)
		return MHD_NO; /* out of memory in on_uri */
	if (!ex->started) {
		ex->started = true;
		return start(s, ex, url);
	}
	switch (ex->state) {
	case EX_READING:
		if (*upload_size) {
			size_t n = *upload_size;
			*upload_size = 0;
			return take_body(ex, upload, n);
		}
		if (ex->early_status)
			return queue_error(ex, ex->early_status, ex->early_reason, false);
		if (ex->discarding)
			return body_too_large(ex, false);
		return dispatch(s, ex, url, method);
	case EX_QUEUED:
		*upload_size = 0; /* answered early: the rest of the body is dropped */
		return MHD_YES;
	default:
		return finish(s, ex); /* resumed */
	}
}

/* ---- Answers ------------------------------------------------------------------------- */

const struct td_http_request *td_http_request(const struct td_http_exchange *ex)
{
	return &ex->req;
}

const char *td_http_header_get(const struct td_http_request *req, const char *name)
{
	for (size_t i = 0; i < req->nheaders; i++)
		if (strcasecmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	return NULL;
}

void td_http_respond(struct td_http_exchange *ex, int status, const char *content_type,
		     const void *body, size_t len, const struct td_http_header *headers,
		     size_t nheaders)
{
	struct MHD_Response *resp;
	struct td_http_server *s = NULL;
	bool free_now = false, resume = false;

	if (status < 100 || status > 599) {
		td_log_error("http: td_http_respond with status %d: answering 500", status);
		status = 500;
	}
	if (len == 0 || !body)
		resp =
		    MHD_create_response_from_buffer(0, (void *)empty_body, MHD_RESPMEM_PERSISTENT);
	else
		resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (resp && content_type && !has_crlf(content_type))
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	for (size_t i = 0; resp && i < nheaders; i++) {
		if (has_crlf(headers[i].name) || has_crlf(headers[i].value) ||
		    MHD_add_response_header(resp, headers[i].name, headers[i].value) != MHD_YES)
			td_log_warn("http: response header \"%s\" dropped", headers[i].name);
	}

	pthread_mutex_lock(&ex->lock);
	if (!ex->owner) {
		pthread_mutex_unlock(&ex->lock);
		td_log_error("http: td_http_respond called twice for an exchange");
		if (resp)
			MHD_destroy_response(resp);
		return;
	}
	ex->owner = false;
	if (ex->orphan) {
		free_now = !ex->mhd;
		pthread_mutex_unlock(&ex->lock);
		if (resp)
			MHD_destroy_response(resp);
		if (free_now)
			ex_free(ex);
		return;
	}
	if (!resp)
		td_log_error("http: out of memory building a response: closing the connection");
	ex->response = resp;
	ex->status = (unsigned)status;
	ex->answered = true;
	if (ex->state == EX_SUSPENDED) {
		/* Counted so that destroy does not stop the daemon under our feet. */
		s = ex->server;
		atomic_fetch_add(&s->resumes, 1);
		resume = true;
	}
	pthread_mutex_unlock(&ex->lock);
	if (!resume)
		return; /* the access handler queues it when the handler returns */
	MHD_resume_connection(ex->conn);
	pthread_mutex_lock(&s->lock);
	if (atomic_fetch_sub(&s->resumes, 1) == 1 && atomic_load(&s->closing))
		pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

void td_http_respond_error(struct td_http_exchange *ex, int status, const char *reason)
{
	struct td_buf b;
	static const char oom[] = "{\"error\":\"out of memory\"}";

	td_buf_init(&b);
	td_buf_appends(&b, "{\"error\":");
	td_json_append_cstr(&b, reason ? reason : "");
	td_buf_appendc(&b, '}');
	if (td_buf_failed(&b))
		td_http_respond(ex, status, "application/json", oom, sizeof oom - 1, NULL, 0);
	else
		td_http_respond(ex, status, "application/json", b.data, b.len, NULL, 0);
	td_buf_free(&b);
}

/* ---- Life cycle ----------------------------------------------------------------------- */

static int listen_on(const char *addr, const char *name, int *fd_out, unsigned *port_out,
		     int *family, char *err, size_t errlen)
{
	char host[256], msg[256], portstr[8];
	unsigned port;
	struct addrinfo hints = {0}, *ai = NULL;
	int rc, fd = -1, saved = 0;

	if (td_listen_addr_parse(addr, host, sizeof host, &port, msg, sizeof msg) < 0) {
		snprintf(err, errlen, "%s: bad listen address %s", name, msg);
		return -TD_EINVAL;
	}
	snprintf(portstr, sizeof portstr, "%u", port);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host, portstr, &hints, &ai);
	if (rc != 0) {
		snprintf(err, errlen, "%s: cannot listen on %s: %s", name, addr, gai_strerror(rc));
		return -TD_EINVAL;
	}
	for (struct addrinfo *a = ai; a; a = a->ai_next) {
		int one = 1;
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    a->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0) {
			*family = a->ai_family;
			break;
		}
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot listen on %s: %s", name, addr, strerror(saved));
		return -TD_EIO;
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		snprintf(err, errlen, "%s: cannot listen on %s: %s", name, addr, strerror(errno));
		close(fd);
		return -TD_EIO;
	}
	if (ss.ss_family == AF_INET6)
		*port_out = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	else
		*port_out = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	*fd_out = fd;
	return 0;
}

struct td_http_server *td_http_server_create(const char *listen, const char *name,
					     const struct td_http_limits *limits, char *err,
					     size_t errlen)
{
	struct td_http_server *s;
	struct td_http_limits lim = {0};
	unsigned flags, timeout_s;
	size_t pool;
	int family = AF_INET;

	if (limits)
		lim = *limits;
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "%s: out of memory", name);
		return NULL;
	}
	s->listen_fd = -1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	pthread_mutex_init(&s->routes_lock, NULL);
	pthread_cond_init(&s->routes_cond, NULL);
	pthread_mutex_init(&s->log_lock, NULL);
	s->name = strdup(name);
	if (!s->name) {
		snprintf(err, errlen, "%s: out of memory", name);
		goto fail;
	}
	s->max_body = lim.max_body > 0 ? lim.max_body : DEFAULT_MAX_BODY;
	s->max_header = lim.max_header > 0 ? lim.max_header : DEFAULT_MAX_HEADER;
	s->max_connections =
	    lim.max_connections > 0 ? lim.max_connections : DEFAULT_MAX_CONNECTIONS;
	if (s->max_connections > 1000000)
		s->max_connections = 1000000;
	long long timeout_ms =
	    lim.request_timeout_ms > 0 ? lim.request_timeout_ms : DEFAULT_TIMEOUT_MS;
	timeout_s = (unsigned)((timeout_ms + 999) / 1000);
	/* The connection's memory pool holds the headers and the read buffer: room for
	 * headers a little over max_header, so that those get our 431. */
	pool = (size_t)s->max_header * 2 + (16u << 10);
	if (pool < (32u << 10))
		pool = 32u << 10;

	if (listen_on(listen, name, &s->listen_fd, &s->port, &family, err, errlen) < 0)
		goto fail;

	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
		MHD_USE_ERROR_LOG;
	if (family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* libmicrohttpd splits its connection limit over its threads and just closes
	 * connections over it: leave room to answer 503 ourselves. */
	/* clang-format off */
	s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s, /* first, to catch everything */
		MHD_OPTION_LISTEN_SOCKET, s->listen_fd,
		/* One thread: no pool at all (a pool of 1 makes libmicrohttpd warn), so the
		 * option's slot repeats the connection timeout instead. */
		lim.threads == 1 ? MHD_OPTION_CONNECTION_TIMEOUT : MHD_OPTION_THREAD_POOL_SIZE,
		lim.threads == 1 ? timeout_s : (unsigned)(lim.threads > 1 ? lim.threads : HTTP_THREADS),
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)(s->max_connections * 2),
		MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
		MHD_OPTION_END);
	/* clang-format on */
	if (!s->daemon) {
		snprintf(err, errlen, "%s: cannot start the HTTP server on %s (see the log)", name,
			 listen);
		goto fail;
	}
	td_logs_info(s->name, "listening on %s (port %u)", listen, s->port);
	return s;
fail:
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	pthread_mutex_destroy(&s->log_lock);
	pthread_cond_destroy(&s->routes_cond);
	pthread_mutex_destroy(&s->routes_lock);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s->name);
	free(s);
	return NULL;
}

unsigned td_http_server_port(const struct td_http_server *s)
{
	return s->port;
}

static void deadline_after(struct timespec *ts, long long ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

/* One exchange still waiting for its handler gets 503; returns its connection when that
 * was suspended (to be resumed without the lock), else NULL; *more: another may wait. */
static struct MHD_Connection *answer_one_waiting(struct td_http_server *s, bool *more)
{
	struct MHD_Connection *resume = NULL;

	*more = false;
	pthread_mutex_lock(&s->lock);
	for (struct td_http_exchange *ex = s->live; ex && !*more; ex = ex->next) {
		pthread_mutex_lock(&ex->lock);
		if (ex->owner && !ex->orphan && !ex->answered) {
			ex->response = error_response(503, "shutting down", true);
			ex->status = 503;
			ex->answered = true;
			ex->orphan = true;
			if (ex->state == EX_SUSPENDED)
				resume = ex->conn;
			*more = true;
		}
		pthread_mutex_unlock(&ex->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return resume;
}

void td_http_server_destroy(struct td_http_server *s)
{
	struct timespec deadline;
	bool more;
	int fd;

	if (!s)
		return;
	fd = MHD_quiesce_daemon(s->daemon); /* stop accepting */

	/* No handler runs for new requests from now on; every request still waiting for its
	 * handler's answer gets 503, and suspended connections are resumed to send it:
	 * libmicrohttpd must not be stopped with a suspended connection. */
	atomic_store(&s->closing, true);
	do {
		struct MHD_Connection *conn = answer_one_waiting(s, &more);
		if (conn)
			MHD_resume_connection(conn);
	} while (more);

	/* Let the answers go out, and the resumes of td_http_respond() finish. */
	deadline_after(&deadline, SHUTDOWN_WAIT_MS);
	pthread_mutex_lock(&s->lock);
	while (s->live && pthread_cond_timedwait(&s->cond, &s->lock, &deadline) != ETIMEDOUT) {
	}
	while (atomic_load(&s->resumes) > 0)
		pthread_cond_wait(&s->cond, &s->lock);
	pthread_mutex_unlock(&s->lock);

	MHD_stop_daemon(s->daemon);
	if (fd >= 0)
		close(fd);
	for (struct route *r = s->routes, *next; r; r = next) {
		next = r->next;
		free(r);
	}
	pthread_mutex_destroy(&s->log_lock);
	pthread_cond_destroy(&s->routes_cond);
	pthread_mutex_destroy(&s->routes_lock);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s->name);
	free(s);
}
