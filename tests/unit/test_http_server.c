/*
 * Tests of the HTTP server (router/http_server.c) and the admin routes' authentication
 * and methods (router/admin.c), over real sockets on 127.0.0.1 with ephemeral ports and
 * libcurl as the client (raw sockets where curl would hide what is tested: connection
 * limits, timeouts). The router-backed admin contents are left to the integration tests:
 * here the admin has no router.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <triggerd/errors.h>
#include <triggerd/log.h>

#include "../../router/admin.h"
#include "../../router/http_server.h"

/* ---- Client helpers --------------------------------------------------------------------- */

struct reply {
	CURLcode rc;
	long status;
	char *body;
	size_t len;
	char *headers;
	size_t hlen;
	long connects; /* new connections this transfer made */
};

struct call {
	const char *method; /* NULL: GET, or POST with a body */
	const char *path;
	const void *body;
	size_t len;
	bool has_body; /* send body (even empty) */
	bool chunked;  /* Transfer-Encoding: chunked */
	bool no_expect;
	const char *const *headers; /* NULL-terminated */
	const char *host;	    /* default 127.0.0.1 */
};

struct upload {
	const char *p;
	size_t left;
};

static void append(char **buf, size_t *len, const char *p, size_t n)
{
	char *nb = realloc(*buf, *len + n + 1);
	cr_assert_not_null(nb);
	memcpy(nb + *len, p, n);
	*len += n;
	nb[*len] = '\0';
	*buf = nb;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct reply *r = ud;
	append(&r->body, &r->len, p, size * n);
	return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	struct reply *r = ud;
	append(&r->headers, &r->hlen, p, size * n);
	return size * n;
}

static size_t on_read(char *p, size_t size, size_t n, void *ud)
{
	struct upload *u = ud;
	size_t k = size * n < u->left ? size * n : u->left;
	if (k > 7000)
		k = 7000; /* several chunks */
	memcpy(p, u->p, k);
	u->p += k;
	u->left -= k;
	return k;
}

static void reply_free(struct reply *r)
{
	free(r->body);
	free(r->headers);
	memset(r, 0, sizeof(*r));
}

/* The value of a response header (of the last response), or NULL; static buffer. */
static const char *reply_header(const struct reply *r, const char *name)
{
	static char value[512];
	const char *p = r->headers, *found = NULL;
	size_t nl = strlen(name);

	while (p && *p) {
		const char *eol = strstr(p, "\r\n");
		if (!eol)
			break;
		if (strncmp(p, "HTTP/", 5) == 0)
			found = NULL; /* a new response (after 100 Continue) */
		else if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':')
			found = p + nl + 1;
		if (found == p + nl + 1) {
			const char *v = found;
			while (*v == ' ')
				v++;
			snprintf(value, sizeof value, "%.*s", (int)(eol - v), v);
		}
		p = eol + 2;
	}
	return found ? value : NULL;
}

/* Sets up easy for a call; returns the header list to free. */
static struct curl_slist *prepare(CURL *easy, unsigned port, const struct call *c, struct reply *r,
				  struct upload *up, char *url, size_t urlcap)
{
	struct curl_slist *hl = NULL;

	snprintf(url, urlcap, "http://%s:%u%s", c->host ? c->host : "127.0.0.1", port, c->path);
	curl_easy_setopt(easy, CURLOPT_URL, url);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(easy, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_PATH_AS_IS, 1L);
	if (c->has_body && c->chunked) {
		up->p = c->body;
		up->left = c->len;
		curl_easy_setopt(easy, CURLOPT_POST, 1L);
		curl_easy_setopt(easy, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(easy, CURLOPT_READDATA, up);
		hl = curl_slist_append(hl, "Transfer-Encoding: chunked");
	} else if (c->has_body) {
		curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->len);
		curl_easy_setopt(easy, CURLOPT_POSTFIELDS, c->len ? c->body : "");
	}
	if (c->no_expect)
		hl = curl_slist_append(hl, "Expect:");
	for (size_t i = 0; c->headers && c->headers[i]; i++)
		hl = curl_slist_append(hl, c->headers[i]);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, hl);
	if (c->method && strcmp(c->method, "HEAD") == 0)
		curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
	else if (c->method)
		curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, c->method);
	return hl;
}

static void finish_reply(CURL *easy, struct reply *r)
{
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &r->connects);
}

/* One call on easy (reused for keep-alive) or on a fresh handle when easy is NULL. */
static void do_call(CURL *easy, unsigned port, const struct call *c, struct reply *r)
{
	char url[512];
	struct upload up;
	CURL *e = easy ? easy : curl_easy_init();
	struct curl_slist *hl;

	cr_assert_not_null(e);
	memset(r, 0, sizeof(*r));
	hl = prepare(e, port, c, r, &up, url, sizeof url);
	r->rc = curl_easy_perform(e);
	finish_reply(e, r);
	curl_slist_free_all(hl);
	if (easy)
		curl_easy_reset(easy);
	else
		curl_easy_cleanup(e);
}

static long get_status(unsigned port, const char *path, struct reply *r)
{
	struct call c = {.path = path};
	do_call(NULL, port, &c, r);
	return r->status;
}

/* ---- Raw socket helpers --------------------------------------------------------------- */

static int connect_port(unsigned port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0, "connect: %s",
		     strerror(errno));
	return fd;
}

static void send_text(int fd, const char *text)
{
	size_t n = strlen(text);
	cr_assert_eq(send(fd, text, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Reads one response (headers and Content-Length body) or until the peer closes.
 * Returns the bytes read; *closed tells whether the peer closed. */
static size_t read_response(int fd, char *buf, size_t cap, int timeout_ms, bool *closed)
{
	size_t n = 0;

	*closed = false;
	while (n + 1 < cap) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, timeout_ms) <= 0)
			break;
		ssize_t k = recv(fd, buf + n, cap - 1 - n, 0);
		if (k <= 0) {
			*closed = true;
			break;
		}
		n += (size_t)k;
		buf[n] = '\0';
		const char *end = strstr(buf, "\r\n\r\n");
		const char *cl = strcasestr(buf, "\r\nContent-Length:");
		if (end && cl && cl < end && n >= (size_t)(end + 4 - buf) + (size_t)atol(cl + 17))
			break;
	}
	buf[n] = '\0';
	return n;
}

/* ---- Server fixtures ------------------------------------------------------------------ */

static void setup(void)
{
	td_log_set_level(TD_LOG_ERROR);
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static struct td_http_server *start_server(const struct td_http_limits *lim)
{
	char err[256] = "";
	struct td_http_server *s =
	    td_http_server_create("127.0.0.1:0", "test", lim, err, sizeof err);
	cr_assert_not_null(s, "create: %s", err);
	cr_assert_gt(td_http_server_port(s), 0u);
	return s;
}

static atomic_int handler_calls;

/* Answers with the route's tag (arg). */
static void tag_handler(void *arg, struct td_http_exchange *ex)
{
	const char *tag = arg;
	atomic_fetch_add(&handler_calls, 1);
	td_http_respond(ex, 200, "text/plain", tag, strlen(tag), NULL, 0);
}

/* Echoes the body; X-Nul tells whether the body was NUL-terminated. */
static void echo_handler(void *arg, struct td_http_exchange *ex)
{
	const struct td_http_request *req = td_http_request(ex);
	const struct td_http_header h[] = {
	    {"X-Nul", req->body[req->body_len] == '\0' ? "yes" : "no"}};
	(void)arg;
	atomic_fetch_add(&handler_calls, 1);
	td_http_respond(ex, 200, "application/octet-stream", req->body, req->body_len, h, 1);
}

/* ---- Listening ------------------------------------------------------------------------ */

TestSuite(http_server, .init = setup, .timeout = 60);

Test(http_server, port_zero_and_listen_errors)
{
	char err[256] = "", want[128];
	struct td_http_server *s = start_server(NULL), *s2;
	unsigned port = td_http_server_port(s);
	struct reply r;

	cr_assert_eq(td_http_route_add(s, "/t", tag_handler, "t"), 0);
	cr_assert_eq(get_status(port, "/t", &r), 200);
	cr_assert_str_eq(r.body, "t");
	reply_free(&r);

	snprintf(want, sizeof want, "127.0.0.1:%u", port);
	s2 = td_http_server_create(want, "webhook", NULL, err, sizeof err);
	cr_assert_null(s2);
	snprintf(want, sizeof want,
		 "webhook: cannot listen on 127.0.0.1:%u: Address already in use", port);
	cr_assert_str_eq(err, want);

	static const struct {
		const char *listen;
		const char *err_part;
	} bad[] = {
	    {"nonsense", "webhook: bad listen address"},
	    {"127.0.0.1:99999", "port must be a number"},
	    {"1.2.3:80", "not an IPv4 address"},
	    {"[::1:80", "missing ']'"},
	    {"no-such-host.invalid:80", "webhook: cannot listen on no-such-host.invalid:80"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		cr_assert_null(
		    td_http_server_create(bad[i].listen, "webhook", NULL, err, sizeof err), "%s",
		    bad[i].listen);
		cr_assert(strstr(err, bad[i].err_part), "%s: %s", bad[i].listen, err);
	}
	td_http_server_destroy(s);
}

Test(http_server, localhost_and_ipv6)
{
	char err[256] = "";
	struct td_http_server *s =
	    td_http_server_create("localhost:0", "test", NULL, err, sizeof err);
	struct reply r;
	struct call c = {.path = "/t", .host = "localhost"};

	cr_assert_not_null(s, "%s", err);
	cr_assert_eq(td_http_route_add(s, "/t", tag_handler, "t"), 0);
	do_call(NULL, td_http_server_port(s), &c, &r);
	cr_assert_eq(r.status, 200);
	reply_free(&r);
	td_http_server_destroy(s);

	int probe = socket(AF_INET6, SOCK_STREAM, 0);
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	if (probe < 0 || bind(probe, (struct sockaddr *)&a6, sizeof a6) < 0) {
		if (probe >= 0)
			close(probe);
		cr_log_warn("no IPv6 loopback here: [::1] not tested");
		return;
	}
	close(probe);
	s = td_http_server_create("[::1]:0", "test", NULL, err, sizeof err);
	cr_assert_not_null(s, "%s", err);
	cr_assert_eq(td_http_route_add(s, "/echo", echo_handler, NULL), 0);
	c.host = "[::1]";
	c.path = "/echo";
	do_call(NULL, td_http_server_port(s), &c, &r);
	cr_assert_eq(r.rc, CURLE_OK, "%s", curl_easy_strerror(r.rc));
	cr_assert_eq(r.status, 200);
	reply_free(&r);
	td_http_server_destroy(s);
}

/* ---- Routing -------------------------------------------------------------------------- */

Test(http_server, routing)
{
	struct td_http_server *s = start_server(NULL);
	unsigned port = td_http_server_port(s);
	static const struct {
		const char *path, *tag;
	} routes[] = {
	    {"/a", "a"}, {"/a/*", "a/*"}, {"/a/b/*", "a/b/*"}, {"/", "root"}, {"/x*", "x*"},
	};
	static const struct {
		const char *path;
		const char *tag; /* NULL: 404 */
	} cases[] = {
	    {"/a", "a"},
	    {"/a/", "a/*"},
	    {"/a/zz", "a/*"},
	    {"/a/b", "a/*"},
	    {"/a/b/", "a/b/*"},
	    {"/a/b/c/d", "a/b/*"},
	    {"/a/b/c?q=1", "a/b/*"},
	    {"/", "root"},
	    {"/x", "x*"},
	    {"/xyz/w", "x*"},
	    {"/a%2Fq", "a/*"}, /* matched on the decoded path */
	    {"/b", NULL},
	    {"/ab", NULL},
	    {"/A", NULL},
	};
	struct reply r;

	for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
		cr_assert_eq(
		    td_http_route_add(s, routes[i].path, tag_handler, (void *)routes[i].tag), 0);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		get_status(port, cases[i].path, &r);
		if (cases[i].tag) {
			cr_assert_eq(r.status, 200, "%s: %ld", cases[i].path, r.status);
			cr_assert_str_eq(r.body, cases[i].tag, "%s", cases[i].path);
		} else {
			cr_assert_eq(r.status, 404, "%s: %ld", cases[i].path, r.status);
			cr_assert_str_eq(r.body, "{\"error\":\"not found\"}");
			cr_assert_str_eq(reply_header(&r, "Content-Type"), "application/json");
		}
		reply_free(&r);
	}

	/* Bad routes and duplicates. */
	cr_assert_eq(td_http_route_add(s, "/a", tag_handler, "dup"), -TD_EINVAL);
	cr_assert_eq(td_http_route_add(s, "/a/*", tag_handler, "dup"), -TD_EINVAL);
	cr_assert_eq(td_http_route_add(s, "a", tag_handler, "x"), -TD_EINVAL);
	cr_assert_eq(td_http_route_add(s, "", tag_handler, "x"), -TD_EINVAL);
	cr_assert_eq(td_http_route_add(s, "/a*b", tag_handler, "x"), -TD_EINVAL);
	cr_assert_eq(td_http_route_set_max_body(s, "/nope", 10), -TD_ENOTFOUND);
	td_http_server_destroy(s);
}

Test(http_server, not_found_keeps_the_connection)
{
	struct td_http_server *s = start_server(NULL);
	unsigned port = td_http_server_port(s);
	CURL *easy = curl_easy_init();
	struct call c404 = {.path = "/none", .has_body = true, .body = "abc", .len = 3};
	struct call c200 = {.path = "/t"};
	struct reply r;

	cr_assert_eq(td_http_route_add(s, "/t", tag_handler, "t"), 0);
	do_call(easy, port, &c404, &r);
	cr_assert_eq(r.status, 404);
	reply_free(&r);
	do_call(easy, port, &c200, &r);
	cr_assert_eq(r.status, 200);
	cr_assert_eq(r.connects, 0, "the connection was not kept after a 404");
	reply_free(&r);
	curl_easy_cleanup(easy);
	td_http_server_destroy(s);
}

/* ---- What the handler sees ------------------------------------------------------------ */

/* Answers "method|path|query|x-custom|remote-ok|nheaders>0". */
static void fields_handler(void *arg, struct td_http_exchange *ex)
{
	const struct td_http_request *req = td_http_request(ex);
	const char *custom = td_http_header_get(req, "x-CUSTOM");
	char out[1024];
	bool remote_ok = strncmp(req->remote, "127.0.0.1:", 10) == 0 && atoi(req->remote + 10) > 0;

	(void)arg;
	snprintf(out, sizeof out, "%s|%s|%s|%s|%s|%s|%s", req->method, req->path,
		 req->query ? req->query : "(null)", custom ? custom : "(null)",
		 remote_ok ? "remote-ok" : req->remote, req->nheaders > 0 ? "headers" : "none",
		 td_http_header_get(req, "no-such-header") ? "?" : "-");
	td_http_respond(ex, 200, "text/plain", out, strlen(out), NULL, 0);
}

Test(http_server, request_fields)
{
	struct td_http_server *s = start_server(NULL);
	unsigned port = td_http_server_port(s);
	static const char *const custom[] = {"X-Custom: v a l", NULL};
	static const struct {
		struct call c;
		const char *want;
	} cases[] = {
	    {{.path = "/f"}, "GET|/f|(null)|(null)|remote-ok|headers|-"},
	    {{.path = "/f?"}, "GET|/f||(null)|remote-ok|headers|-"},
	    {{.path = "/f?x=1&y=%20z&x=2"}, "GET|/f|x=1&y=%20z&x=2|(null)|remote-ok|headers|-"},
	    {{.path = "/f/%7Euser%20name?a=%2F"},
	     "GET|/f/~user name|a=%2F|(null)|remote-ok|headers|-"},
	    {{.path = "/f", .headers = custom}, "GET|/f|(null)|v a l|remote-ok|headers|-"},
	    {{.path = "/f", .method = "PUT", .has_body = true, .body = "x", .len = 1},
	     "PUT|/f|(null)|(null)|remote-ok|headers|-"},
	    {{.path = "/f", .method = "DELETE"}, "DELETE|/f|(null)|(null)|remote-ok|headers|-"},
	    {{.path = "/f%00x"}, NULL}, /* 400 */
	};
	struct reply r;

	cr_assert_eq(td_http_route_add(s, "/f*", fields_handler, NULL), 0);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		do_call(NULL, port, &cases[i].c, &r);
		if (!cases[i].want) {
			cr_assert_eq(r.status, 400, "%s", cases[i].c.path);
			cr_assert_str_eq(r.body, "{\"error\":\"the request path contains %00\"}");
		} else {
			cr_assert_eq(r.status, 200, "%s", cases[i].c.path);
			cr_assert_str_eq(r.body, cases[i].want);
		}
		reply_free(&r);
	}
	td_http_server_destroy(s);
}

/* ---- Bodies --------------------------------------------------------------------------- */

Test(http_server, body_delivered_exactly)
{
	struct td_http_server *s = start_server(NULL);
	unsigned port = td_http_server_port(s);
	static const size_t sizes[] = {0, 1, 256, 16383, 16384, 16385, 100000, 5u << 20};
	size_t max = 5u << 20;
	unsigned char *data = malloc(max);
	CURL *easy = curl_easy_init();
	struct reply r;

	cr_assert_not_null(data);
	srand(7);
	for (size_t i = 0; i < max; i++)
		data[i] = (unsigned char)(i < 256 ? i : (unsigned)rand());
	cr_assert_eq(td_http_route_add(s, "/echo", echo_handler, NULL), 0);
	for (int chunked = 0; chunked < 2; chunked++) {
		for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
			struct call c = {.path = "/echo",
					 .has_body = true,
					 .body = data,
					 .len = sizes[i],
					 .chunked = chunked};
			do_call(easy, port, &c, &r);
			cr_assert_eq(r.rc, CURLE_OK, "%zu: %s", sizes[i], curl_easy_strerror(r.rc));
			cr_assert_eq(r.status, 200, "%zu bytes chunked=%d", sizes[i], chunked);
			cr_assert_eq(r.len, sizes[i], "%zu bytes: got %zu", sizes[i], r.len);
			cr_assert(sizes[i] == 0 || memcmp(r.body, data, sizes[i]) == 0, "%zu bytes",
				  sizes[i]);
			cr_assert_str_eq(reply_header(&r, "X-Nul"), "yes");
			reply_free(&r);
		}
	}
	curl_easy_cleanup(easy);
	free(data);
	td_http_server_destroy(s);
}

Test(http_server, body_over_max_is_413)
{
	struct td_http_limits lim = {.max_body = 1000};
	struct td_http_server *s = start_server(&lim);
	unsigned port = td_http_server_port(s);
	char data[2000];
	static const char over[] = "{\"error\":\"request body over 1000 bytes\"}";
	static const struct {
		size_t len;
		bool chunked, no_expect;
		long status;
	} cases[] = {
	    {1000, false, false, 200}, {1001, false, false, 413}, {1001, false, true, 413},
	    {1999, false, true, 413},  {1000, true, false, 200},  {1001, true, false, 413},
	    {1999, true, true, 413},
	};
	struct reply r;
	int ok = 0;

	memset(data, 'b', sizeof data);
	atomic_store(&handler_calls, 0);
	cr_assert_eq(td_http_route_add(s, "/echo", echo_handler, NULL), 0);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct call c = {.path = "/echo",
				 .has_body = true,
				 .body = data,
				 .len = cases[i].len,
				 .chunked = cases[i].chunked,
				 .no_expect = cases[i].no_expect};
		do_call(NULL, port, &c, &r);
		cr_assert_eq(r.rc, CURLE_OK, "case %zu: %s", i, curl_easy_strerror(r.rc));
		cr_assert_eq(r.status, cases[i].status, "case %zu: %ld", i, r.status);
		if (r.status == 413) {
			cr_assert_str_eq(r.body, over);
			cr_assert_str_eq(reply_header(&r, "Content-Type"), "application/json");
		} else {
			ok++;
		}
		reply_free(&r);
	}
	cr_assert_eq(atomic_load(&handler_calls), ok, "the handler ran for a body over the limit");

	/* After a chunked 413 (whose body was read), the connection serves on. */
	CURL *easy = curl_easy_init();
	struct call big = {
	    .path = "/echo", .has_body = true, .body = data, .len = 1500, .chunked = true};
	struct call small = {.path = "/echo", .has_body = true, .body = data, .len = 10};
	do_call(easy, port, &big, &r);
	cr_assert_eq(r.status, 413);
	reply_free(&r);
	do_call(easy, port, &small, &r);
	cr_assert_eq(r.status, 200);
	cr_assert_eq(r.connects, 0);
	reply_free(&r);
	curl_easy_cleanup(easy);

	/* A route's own limit. */
	cr_assert_eq(td_http_route_set_max_body(s, "/echo", 10), 0);
	struct call c11 = {.path = "/echo", .has_body = true, .body = data, .len = 11};
	do_call(NULL, port, &c11, &r);
	cr_assert_eq(r.status, 413);
	cr_assert_str_eq(r.body, "{\"error\":\"request body over 10 bytes\"}");
	reply_free(&r);
	td_http_server_destroy(s);
}

Test(http_server, default_limit_is_6_MB)
{
	struct td_http_server *s = start_server(NULL);
	unsigned port = td_http_server_port(s);
	size_t n = (6u << 20) + 1;
	char *data = calloc(1, n);
	struct reply r;

	cr_assert_not_null(data);
	atomic_store(&handler_calls, 0);
	cr_assert_eq(td_http_route_add(s, "/echo", echo_handler, NULL), 0);
	for (int chunked = 0; chunked < 2; chunked++) {
		struct call c = {
		    .path = "/echo", .has_body = true, .body = data, .len = n, .chunked = chunked};
		do_call(NULL, port, &c, &r);
		cr_assert_eq(r.status, 413, "chunked=%d: %ld (%s)", chunked, r.status,
			     curl_easy_strerror(r.rc));
		cr_assert_str_eq(r.body, "{\"error\":\"request body over 6 MB\"}");
		reply_free(&r);
	}
	struct call c = {.path = "/echo", .has_body = true, .body = data, .len = n - 1};
	do_call(NULL, port, &c, &r);
	cr_assert_eq(r.status, 200);
	cr_assert_eq(r.len, n - 1);
	reply_free(&r);
	cr_assert_eq(atomic_load(&handler_calls), 1);
	free(data);
	td_http_server_destroy(s);
}

Test(http_server, headers_over_max_are_431)
{
	struct td_http_limits lim = {.max_header = 4096};
	struct td_http_server *s = start_server(&lim);
	unsigned port = td_http_server_port(s);
	static const size_t sizes[] = {3000, 5000, 20000, 200000};
	static const long want[] = {200, 431, 431, 431};
	struct reply r;

	atomic_store(&handler_calls, 0);
	cr_assert_eq(td_http_route_add(s, "/t", tag_handler, "t"), 0);
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		char *h = malloc(sizes[i] + 16);
		cr_assert_not_null(h);
		strcpy(h, "X-Big: ");
		memset(h + 7, 'a', sizes[i]);
		h[7 + sizes[i]] = '\0';
		const char *const hdrs[] = {h, NULL};
		struct call c = {.path = "/t", .headers = hdrs};
		do_call(NULL, port, &c, &r);
		cr_assert_eq(r.status, want[i], "%zu: %ld (%s)", sizes[i], r.status,
			     curl_easy_strerror(r.rc));
		if (sizes[i] == 5000)
			cr_assert_str_eq(r.body, "{\"error\":\"request headers over 4 KB\"}");
		reply_free(&r);
		free(h);
	}
	cr_assert_eq(atomic_load(&handler_calls), 1);
	td_http_server_destroy(s);
}

/* ---- Answers -------------------------------------------------------------------------- */

static void answers_handler(void *arg, struct td_http_exchange *ex)
{
	const struct td_http_request *req = td_http_request(ex);
	(void)arg;
	if (strcmp(req->path, "/err") == 0) {
		td_http_respond_error(ex, 409, "a \"quoted\"\nline\\");
	} else if (strcmp(req->path, "/hdr") == 0) {
		const struct td_http_header h[] = {
		    {"X-One", "1"}, {"X-Bad", "a\r\nInjected: yes"}, {"X-Two", "two"}};
		td_http_respond(ex, 201, "application/x-thing", "ok", 2, h, 3);
	} else if (strcmp(req->path, "/status") == 0) {
		td_http_respond(ex, 999, NULL, "x", 1, NULL, 0);
	} else {
		td_http_respond(ex, 204, NULL, NULL, 0, NULL, 0);
	}
}

Test(http_server, answers)
{
	struct td_http_server *s = start_server(NULL);
	unsigned port = td_http_server_port(s);
	struct reply r;
	json_t *j;
	json_error_t je;

	cr_assert_eq(td_http_route_add(s, "/*", answers_handler, NULL), 0);
	cr_assert_eq(get_status(port, "/err", &r), 409);
	j = json_loads(r.body, 0, &je);
	cr_assert_not_null(j, "%s: %s", r.body, je.text);
	cr_assert_str_eq(json_string_value(json_object_get(j, "error")), "a \"quoted\"\nline\\");
	json_decref(j);
	reply_free(&r);

	cr_assert_eq(get_status(port, "/hdr", &r), 201);
	cr_assert_str_eq(r.body, "ok");
	cr_assert_str_eq(reply_header(&r, "X-One"), "1");
	cr_assert_str_eq(reply_header(&r, "X-Two"), "two");
	cr_assert_null(reply_header(&r, "X-Bad"));
	cr_assert_null(reply_header(&r, "Injected"));
	cr_assert_str_eq(reply_header(&r, "Content-Type"), "application/x-thing");
	reply_free(&r);

	cr_assert_eq(get_status(port, "/status", &r), 500);
	reply_free(&r);
	cr_assert_eq(get_status(port, "/empty", &r), 204);
	cr_assert_eq(r.len, 0);
	reply_free(&r);
	td_http_server_destroy(s);
}

/* ---- Answers from another thread (suspend and resume) ------------------------------------- */

#define QCAP 4096

struct later_queue {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct td_http_exchange *items[QCAP];
	size_t head, tail;
	atomic_bool stop;
};

static struct later_queue lq = {.lock = PTHREAD_MUTEX_INITIALIZER,
				.cond = PTHREAD_COND_INITIALIZER};
static atomic_int later_seq;

static void later_handler(void *arg, struct td_http_exchange *ex)
{
	(void)arg;
	pthread_mutex_lock(&lq.lock);
	cr_assert_lt(lq.tail - lq.head, (size_t)QCAP);
	lq.items[lq.tail++ % QCAP] = ex;
	pthread_cond_signal(&lq.cond);
	pthread_mutex_unlock(&lq.lock);
}

static void answer_later(struct td_http_exchange *ex)
{
	const struct td_http_request *req = td_http_request(ex);
	char out[512];
	snprintf(out, sizeof out, "later:%s?%s|%zu", req->path, req->query ? req->query : "",
		 req->body_len);
	td_http_respond(ex, 200, "text/plain", out, strlen(out), NULL, 0);
}

/* spin: poll without sleeping, to answer while the handler returns and the connection
 * is being suspended; else sleep on the condition and answer after a short delay. */
static void *responder(void *arg)
{
	bool spin = arg != NULL;

	for (;;) {
		struct td_http_exchange *ex = NULL;
		pthread_mutex_lock(&lq.lock);
		while (!spin && lq.head == lq.tail && !atomic_load(&lq.stop))
			pthread_cond_wait(&lq.cond, &lq.lock);
		if (lq.head != lq.tail)
			ex = lq.items[lq.head++ % QCAP];
		pthread_mutex_unlock(&lq.lock);
		if (!ex) {
			if (atomic_load(&lq.stop))
				return NULL;
			sched_yield();
			continue;
		}
		if (!spin && atomic_fetch_add(&later_seq, 1) % 3 == 0)
			usleep(1000);
		answer_later(ex);
	}
}

Test(http_server, answers_later_under_200_concurrent_keepalive)
{
	struct td_http_server *s = start_server(NULL);
	unsigned port = td_http_server_port(s);
	enum { N = 200, ROUNDS = 3 };
	pthread_t th[2];
	CURLM *multi = curl_multi_init();
	CURL *easy[N];
	struct reply r[N];
	struct upload up[N];
	struct curl_slist *hl[N];
	char url[N][128], paths[N][64]; /* curl sends the bodies from paths */
	long new_connections[ROUNDS] = {0};

	cr_assert_eq(td_http_route_add(s, "/later/*", later_handler, NULL), 0);
	pthread_create(&th[0], NULL, responder, (void *)1);
	pthread_create(&th[1], NULL, responder, NULL);
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)N + 16);
	curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)N);
	for (int i = 0; i < N; i++)
		easy[i] = curl_easy_init();
	for (int round = 0; round < ROUNDS; round++) {
		int running = 0;
		for (int i = 0; i < N; i++) {
			snprintf(paths[i], sizeof paths[i], "/later/%d?round=%d", i, round);
			struct call c = {.path = paths[i],
					 .has_body = i % 2 == 1,
					 .body = paths[i],
					 .len = strlen(paths[i])};
			memset(&r[i], 0, sizeof r[i]);
			hl[i] = prepare(easy[i], port, &c, &r[i], &up[i], url[i], sizeof url[i]);
			curl_multi_add_handle(multi, easy[i]);
		}
		do {
			cr_assert_eq(curl_multi_perform(multi, &running), CURLM_OK);
			if (running)
				curl_multi_poll(multi, NULL, 0, 1000, NULL);
		} while (running);
		CURLMsg *m;
		int left;
		while ((m = curl_multi_info_read(multi, &left))) {
			for (int i = 0; i < N; i++)
				if (easy[i] == m->easy_handle)
					r[i].rc = m->data.result;
		}
		for (int i = 0; i < N; i++) {
			char want[128];
			finish_reply(easy[i], &r[i]);
			curl_multi_remove_handle(multi, easy[i]);
			curl_slist_free_all(hl[i]);
			curl_easy_reset(easy[i]);
			snprintf(want, sizeof want, "later:/later/%d?round=%d|%zu", i, round,
				 i % 2 == 1 ? strlen(paths[i]) : (size_t)0);
			cr_assert_eq(r[i].rc, CURLE_OK, "round %d #%d: %s", round, i,
				     curl_easy_strerror(r[i].rc));
			cr_assert_eq(r[i].status, 200, "round %d #%d", round, i);
			cr_assert_str_eq(r[i].body, want);
			new_connections[round] += r[i].connects;
			reply_free(&r[i]);
		}
	}
	cr_assert_leq(new_connections[0], N);
	cr_assert_leq(new_connections[1] + new_connections[2], 10,
		      "keep-alive: %ld and %ld new connections in rounds 2 and 3",
		      new_connections[1], new_connections[2]);
	for (int i = 0; i < N; i++)
		curl_easy_cleanup(easy[i]);
	curl_multi_cleanup(multi);
	atomic_store(&lq.stop, true);
	pthread_mutex_lock(&lq.lock);
	pthread_cond_broadcast(&lq.cond);
	pthread_mutex_unlock(&lq.lock);
	pthread_join(th[0], NULL);
	pthread_join(th[1], NULL);
	td_http_server_destroy(s);
}

/* ---- Shutdown ------------------------------------------------------------------------- */

static struct td_http_exchange *_Atomic held[64];
static atomic_int nheld;

static void hold_handler(void *arg, struct td_http_exchange *ex)
{
	(void)arg;
	atomic_store(&held[atomic_fetch_add(&nheld, 1)], ex);
}

struct client_arg {
	unsigned port;
	const char *path;
	struct reply r;
};

static void *client_thread(void *p)
{
	struct client_arg *a = p;
	struct call c = {.path = a->path};
	do_call(NULL, a->port, &c, &a->r);
	return NULL;
}

static bool wait_for(atomic_int *v, int want, int ms)
{
	for (int i = 0; i < ms && atomic_load(v) < want; i++)
		usleep(1000);
	return atomic_load(v) >= want;
}

Test(http_server, destroy_with_pending_requests)
{
	struct td_http_server *s = start_server(NULL);
	enum { N = 4 };
	struct client_arg args[N];
	pthread_t th[N];
	int idle;

	atomic_store(&nheld, 0);
	cr_assert_eq(td_http_route_add(s, "/hold", hold_handler, NULL), 0);
	cr_assert_eq(td_http_route_add(s, "/t", tag_handler, "t"), 0);
	idle = connect_port(td_http_server_port(s)); /* an idle keep-alive connection */
	for (int i = 0; i < N; i++) {
		args[i] = (struct client_arg){.port = td_http_server_port(s), .path = "/hold"};
		pthread_create(&th[i], NULL, client_thread, &args[i]);
	}
	cr_assert(wait_for(&nheld, N, 5000), "the handlers did not run");
	td_http_server_destroy(s);
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		cr_assert(args[i].r.status == 503 || args[i].r.rc == CURLE_GOT_NOTHING ||
			      args[i].r.rc == CURLE_RECV_ERROR,
			  "client %d: %ld %s", i, args[i].r.status,
			  curl_easy_strerror(args[i].r.rc));
		if (args[i].r.status == 503)
			cr_assert_str_eq(args[i].r.body, "{\"error\":\"shutting down\"}");
		reply_free(&args[i].r);
	}
	/* The handlers' late answers only free the exchanges. */
	for (int i = 0; i < N; i++)
		td_http_respond(atomic_load(&held[i]), 200, NULL, "late", 4, NULL, 0);
	close(idle);
}

/* Answers race with destroy: every client gets 200, 503 or a closed connection. */
static void *late_answers(void *p)
{
	int n = *(int *)p;
	for (int i = 0; i < n; i++) {
		struct td_http_exchange *ex;
		while (!(ex = atomic_load(&held[i])))
			sched_yield();
		if (i % 2)
			usleep(200);
		td_http_respond(ex, 200, "text/plain", "late", 4, NULL, 0);
	}
	return NULL;
}

Test(http_server, destroy_races_with_answers)
{
	struct td_http_server *s = start_server(NULL);
	enum { N = 32 };
	int n = N;
	struct client_arg args[N];
	pthread_t th[N], answerer;

	atomic_store(&nheld, 0);
	cr_assert_eq(td_http_route_add(s, "/hold", hold_handler, NULL), 0);
	for (int i = 0; i < N; i++) {
		args[i] = (struct client_arg){.port = td_http_server_port(s), .path = "/hold"};
		pthread_create(&th[i], NULL, client_thread, &args[i]);
	}
	cr_assert(wait_for(&nheld, N / 2, 5000));
	pthread_create(&answerer, NULL, late_answers, &n);
	cr_assert(wait_for(&nheld, N, 5000));
	td_http_server_destroy(s);
	pthread_join(answerer, NULL);
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		long st = args[i].r.status;
		cr_assert(st == 200 || st == 503 || args[i].r.rc == CURLE_GOT_NOTHING ||
			      args[i].r.rc == CURLE_RECV_ERROR,
			  "client %d: %ld %s", i, st, curl_easy_strerror(args[i].r.rc));
		reply_free(&args[i].r);
	}
}

/* ---- Route removal -------------------------------------------------------------------- */

static atomic_int slow_started, slow_done;

static void slow_handler(void *arg, struct td_http_exchange *ex)
{
	(void)arg;
	atomic_store(&slow_started, 1);
	usleep(300000); /* a handler must not block: this one does, to test removal */
	atomic_store(&slow_done, 1);
	td_http_respond(ex, 200, "text/plain", "slow", 4, NULL, 0);
}

static void self_removing_handler(void *arg, struct td_http_exchange *ex)
{
	struct td_http_server *s = arg;
	td_http_route_remove(s, "/self");
	td_http_respond(ex, 200, "text/plain", "bye", 3, NULL, 0);
}

Test(http_server, route_removal)
{
	struct td_http_server *s = start_server(NULL);
	unsigned port = td_http_server_port(s);
	struct reply r;
	pthread_t th;
	struct client_arg a = {.port = port, .path = "/slow"};

	cr_assert_eq(td_http_route_add(s, "/r", tag_handler, "r"), 0);
	cr_assert_eq(get_status(port, "/r", &r), 200);
	reply_free(&r);
	td_http_route_remove(s, "/r");
	cr_assert_eq(get_status(port, "/r", &r), 404);
	reply_free(&r);
	td_http_route_remove(s, "/r"); /* unknown: ignored */
	cr_assert_eq(td_http_route_add(s, "/r", tag_handler, "r2"), 0);
	cr_assert_eq(get_status(port, "/r", &r), 200);
	cr_assert_str_eq(r.body, "r2");
	reply_free(&r);

	/* Removal waits for a running call. */
	cr_assert_eq(td_http_route_add(s, "/slow", slow_handler, NULL), 0);
	pthread_create(&th, NULL, client_thread, &a);
	cr_assert(wait_for(&slow_started, 1, 5000));
	td_http_route_remove(s, "/slow");
	cr_assert_eq(atomic_load(&slow_done), 1, "remove returned while the handler ran");
	pthread_join(th, NULL);
	cr_assert_eq(a.r.status, 200);
	reply_free(&a.r);
	cr_assert_eq(get_status(port, "/slow", &r), 404);
	reply_free(&r);

	/* A handler may remove its own route. */
	cr_assert_eq(td_http_route_add(s, "/self", self_removing_handler, s), 0);
	cr_assert_eq(get_status(port, "/self", &r), 200);
	cr_assert_str_eq(r.body, "bye");
	reply_free(&r);
	cr_assert_eq(get_status(port, "/self", &r), 404);
	reply_free(&r);
	td_http_server_destroy(s);
}

/* ---- Connections ---------------------------------------------------------------------- */

Test(http_server, connections_over_max_get_503)
{
	struct td_http_limits lim = {.max_connections = 2};
	struct td_http_server *s = start_server(&lim);
	unsigned port = td_http_server_port(s);
	static const char get[] = "GET /t HTTP/1.1\r\nHost: x\r\n\r\n";
	char buf[4096];
	bool closed;
	int fd[3];

	cr_assert_eq(td_http_route_add(s, "/t", tag_handler, "t"), 0);
	for (int i = 0; i < 2; i++) {
		fd[i] = connect_port(port);
		send_text(fd[i], get);
		read_response(fd[i], buf, sizeof buf, 5000, &closed);
		cr_assert(strncmp(buf, "HTTP/1.1 200", 12) == 0, "%s", buf);
		cr_assert(!closed);
	}
	fd[2] = connect_port(port);
	send_text(fd[2], get);
	read_response(fd[2], buf, sizeof buf, 5000, &closed);
	cr_assert(strncmp(buf, "HTTP/1.1 503", 12) == 0, "%s", buf);
	cr_assert(strstr(buf, "{\"error\":\"too many connections\"}"), "%s", buf);
	cr_assert(strcasestr(buf, "\r\nRetry-After: 1\r\n"), "%s", buf);
	close(fd[2]);

	/* Once a connection goes, a new one is served. */
	close(fd[0]);
	bool served = false;
	for (int attempt = 0; attempt < 50 && !served; attempt++) {
		usleep(20000);
		int f = connect_port(port);
		send_text(f, get);
		read_response(f, buf, sizeof buf, 5000, &closed);
		served = strncmp(buf, "HTTP/1.1 200", 12) == 0;
		close(f);
	}
	cr_assert(served);
	close(fd[1]);
	td_http_server_destroy(s);
}

Test(http_server, slow_request_is_closed)
{
	struct td_http_limits lim = {.request_timeout_ms = 1000};
	struct td_http_server *s = start_server(&lim);
	char buf[512];
	bool closed;
	struct timespec t0, t1;
	int fd = connect_port(td_http_server_port(s));

	clock_gettime(CLOCK_MONOTONIC, &t0);
	send_text(fd, "GET /t HTTP/1.1\r\nHost: x\r\n"); /* never finished */
	read_response(fd, buf, sizeof buf, 6000, &closed);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cr_assert(closed, "the server did not close a stalled request");
	cr_assert_lt(t1.tv_sec - t0.tv_sec, 5);
	close(fd);
	td_http_server_destroy(s);
}

/* ---- Admin routes: authentication and methods (no router) -------------------------------- */

TestSuite(http_admin, .init = setup, .timeout = 60);

Test(http_admin, bearer_token)
{
	struct td_http_server *s = start_server(NULL);
	unsigned port = td_http_server_port(s);
	struct td_admin *admin = td_admin_create(s, NULL, "s3cret-token");
	static const struct {
		const char *auth; /* NULL: none */
		long status;
		const char *www; /* part of WWW-Authenticate, or NULL: absent */
	} cases[] = {
	    {NULL, 401, "Bearer realm=\"triggerd\""},
	    {"Authorization: Bearer wrong", 401, "error=\"invalid_token\""},
	    {"Authorization: Bearer s3cret-toke", 401, "invalid_token"},
	    {"Authorization: Bearer s3cret-tokenn", 401, "invalid_token"},
	    {"Authorization: Bearer ", 401, "Bearer"},
	    {"Authorization: Basic czNjcmV0LXRva2Vu", 401, "Bearer"},
	    {"Authorization: Bearers3cret-token", 401, "Bearer"},
	    {"Authorization: Bearer s3cret-token", 200, NULL},
	    {"Authorization: bearer   s3cret-token  ", 200, NULL},
	    {"authorization: BEARER s3cret-token", 200, NULL},
	};
	struct reply r;

	cr_assert_not_null(admin);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *const hdrs[] = {cases[i].auth, NULL};
		struct call c = {.path = "/healthz", .headers = hdrs};
		do_call(NULL, port, &c, &r);
		cr_assert_eq(r.status, cases[i].status, "case %zu: %ld", i, r.status);
		if (cases[i].www) {
			const char *w = reply_header(&r, "WWW-Authenticate");
			cr_assert(w && strstr(w, cases[i].www), "case %zu: %s", i, w ? w : "none");
			json_error_t je;
			json_t *j = json_loads(r.body, 0, &je);
			cr_assert(j && json_is_string(json_object_get(j, "error")), "%s", r.body);
			json_decref(j);
		} else {
			cr_assert_str_eq(r.body, "{\"status\":\"ok\"}");
			cr_assert_null(reply_header(&r, "WWW-Authenticate"));
		}
		reply_free(&r);
	}

	/* Every admin route checks the token, and the method after it. */
	static const char *const paths[] = {"/healthz",	   "/readyz",	   "/metrics",
					    "/v1/sources", "/v1/triggers", "/v1/functions",
					    "/v1/usage"};
	static const char *const good[] = {"Authorization: Bearer s3cret-token", NULL};
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		struct call c = {.path = paths[i]};
		do_call(NULL, port, &c, &r);
		cr_assert_eq(r.status, 401, "%s", paths[i]);
		reply_free(&r);
		struct call p = {.path = paths[i],
				 .method = "POST",
				 .headers = good,
				 .has_body = true,
				 .body = "x",
				 .len = 1};
		do_call(NULL, port, &p, &r);
		cr_assert_eq(r.status, 405, "%s", paths[i]);
		cr_assert_str_eq(reply_header(&r, "Allow"), "GET, HEAD");
		cr_assert(strstr(r.body, "method POST is not allowed"), "%s", r.body);
		reply_free(&r);
	}
	/* Without a router (start-up), router-backed routes say so. */
	struct call ready = {.path = "/readyz", .headers = good};
	do_call(NULL, port, &ready, &r);
	cr_assert_eq(r.status, 503);
	cr_assert_str_eq(r.body, "{\"error\":\"the router is not running yet\"}");
	reply_free(&r);
	struct call head = {.path = "/healthz", .method = "HEAD", .headers = good};
	do_call(NULL, port, &head, &r);
	cr_assert_eq(r.status, 200);
	reply_free(&r);
	cr_assert_eq(get_status(port, "/v1/nothing", &r), 404);
	reply_free(&r);

	td_admin_destroy(admin);
	cr_assert_eq(get_status(port, "/healthz", &r), 404);
	reply_free(&r);
	td_http_server_destroy(s);
}

Test(http_admin, without_token_and_refusals)
{
	struct td_http_server *s = start_server(NULL);
	unsigned port = td_http_server_port(s);
	struct td_admin *admin = td_admin_create(s, NULL, NULL), *again;
	struct reply r;

	cr_assert_not_null(admin);
	cr_assert_eq(get_status(port, "/healthz", &r), 200);
	cr_assert_str_eq(r.body, "{\"status\":\"ok\"}");
	cr_assert_str_eq(reply_header(&r, "Content-Type"), "application/json");
	reply_free(&r);

	cr_assert_null(td_admin_create(s, NULL, ""), "an empty token was accepted");
	again = td_admin_create(s, NULL, "x"); /* routes taken */
	cr_assert_null(again);
	cr_assert_eq(get_status(port, "/healthz", &r), 200, "a refused admin removed routes");
	reply_free(&r);
	td_admin_destroy(admin);
	td_http_server_destroy(s);
}
