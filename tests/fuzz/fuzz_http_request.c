/*
 * Fuzzes what our HTTP server does with a client's bytes: libmicrohttpd parses HTTP, and
 * our code splits the raw query, refuses %00 paths, checks Content-Length and the
 * header size, accumulates and limits bodies (with Content-Length and chunked), copies
 * headers for handlers, routes on the decoded path, parses the admin's Authorization
 * header, and suspends and resumes connections answered from another thread.
 *
 * The server runs in this process on 127.0.0.1 with small limits; each input is sent
 * over a fresh connection, then the write side is shut and everything is read until the
 * server closes. The first byte picks a template the rest (repeated as the first byte
 * says, to reach the limits with short inputs) is put into: raw bytes, a path, a query, a
 * header, an Authorization value, a body with Content-Length, a chunked body, pipelined
 * requests; so the fuzzer gets past the request line without a corpus. The templates ask the server
 * to close after answering, to spare the wait for a keep-alive connection. Oracles: the server
 * never hangs, and a well-formed echo request gets its body back exactly (or 413 over the limit).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <triggerd/log.h>

#include "../../router/admin.h"
#include "../../router/http_server.h"

#define MAX_BODY 512
#define QCAP	 1024
#define READ_CAP (1u << 20)
#define HANG_MS	 5000
#define IDLE_MS	 50

static struct td_http_server *server;
static struct td_admin *admin;
static unsigned port;

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cond = PTHREAD_COND_INITIALIZER;
static struct td_http_exchange *queue[QCAP];
static size_t q_head, q_tail;

static void echo(void *arg, struct td_http_exchange *ex)
{
	const struct td_http_request *req = td_http_request(ex);
	(void)arg;
	if (req->body[req->body_len] != '\0')
		abort(); /* the body must be NUL-terminated */
	td_http_respond(ex, 200, "application/octet-stream", req->body, req->body_len, NULL, 0);
}

/* Reads every field, then hands the exchange to the responder thread. */
static void later(void *arg, struct td_http_exchange *ex)
{
	const struct td_http_request *req = td_http_request(ex);
	size_t sum = strlen(req->method) + strlen(req->path) + strlen(req->remote);
	(void)arg;
	if (req->query)
		sum += strlen(req->query);
	for (size_t i = 0; i < req->nheaders; i++)
		sum += strlen(req->headers[i].name) + strlen(req->headers[i].value);
	if (sum == 0)
		abort();
	pthread_mutex_lock(&q_lock);
	if (q_tail - q_head == QCAP) {
		pthread_mutex_unlock(&q_lock);
		td_http_respond_error(ex, 503, "queue full");
		return;
	}
	queue[q_tail++ % QCAP] = ex;
	pthread_cond_signal(&q_cond);
	pthread_mutex_unlock(&q_lock);
}

static void *responder(void *arg)
{
	(void)arg;
	for (;;) {
		struct td_http_exchange *ex;
		pthread_mutex_lock(&q_lock);
		while (q_head == q_tail)
			pthread_cond_wait(&q_cond, &q_lock);
		ex = queue[q_head++ % QCAP];
		pthread_mutex_unlock(&q_lock);
		td_http_respond(ex, 202, "text/plain", "later", 5, NULL, 0);
	}
	return NULL;
}

static void start(void)
{
	struct td_http_limits lim = {.max_body = MAX_BODY,
				     .max_header = 1024,
				     .max_connections = 64,
				     .request_timeout_ms = 1000};
	char err[256];
	pthread_t th;

	td_log_set_level(TD_LOG_ERROR);
	server = td_http_server_create("127.0.0.1:0", "fuzz", &lim, err, sizeof err);
	if (!server) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
	port = td_http_server_port(server);
	if (td_http_route_add(server, "/echo", echo, NULL) < 0 ||
	    td_http_route_add(server, "/later/*", later, NULL) < 0 ||
	    !(admin = td_admin_create(server, NULL, "tok")))
		abort();
	pthread_create(&th, NULL, responder, NULL);
	pthread_detach(th);
}

struct out {
	char *p;
	size_t len, cap;
};

static void put(struct out *o, const void *p, size_t n)
{
	if (n == 0)
		return;
	if (o->len + n > o->cap) {
		o->cap = (o->len + n) * 2;
		o->p = realloc(o->p, o->cap);
		if (!o->p)
			abort();
	}
	memcpy(o->p + o->len, p, n);
	o->len += n;
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

/* True when buf holds one whole response with a Content-Length. */
static bool whole_response(const char *buf, size_t len)
{
	const char *end = strstr(buf, "\r\n\r\n");
	const char *cl = strcasestr(buf, "\r\nContent-Length:");

	return end && cl && cl < end && len >= (size_t)(end + 4 - buf) + strtoul(cl + 17, NULL, 10);
}

/*
 * Sends req, shuts the write side and reads what the server sends, until it closes, or
 * a whole response came (one: a request known to be complete), or nothing came for a
 * while (else: libmicrohttpd may wait for its timeout before it closes a connection
 * that the client half-closed, keep-alive or in the middle of a request). A complete
 * request that gets no answer in HANG_MS is a hang.
 */
static size_t exchange(const char *req, size_t len, char *resp, size_t cap, bool one)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct linger lg = {1, 0}; /* no TIME_WAIT: thousands of connections a second */
	size_t sent = 0, got = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		abort();
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
		abort();
	while (sent < len) {
		ssize_t k = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
		if (k <= 0)
			break; /* the server closed early (a limit): fine */
		sent += (size_t)k;
	}
	shutdown(fd, SHUT_WR);
	resp[0] = '\0';
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int rc = poll(&p, 1, one ? HANG_MS : IDLE_MS);
		if (rc == 0 && !one)
			break;
		if (rc == 0) {
			fprintf(stderr, "no answer in %d ms to: %.300s\n", HANG_MS, req);
			abort();
		}
		ssize_t k = recv(fd, resp + got, cap - 1 - got, 0);
		if (k <= 0)
			break;
		got += (size_t)k;
		resp[got] = '\0';
		if (got + 1 >= cap || (one && whole_response(resp, got)))
			break;
	}
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(fd);
	return got;
}

/* Every so often: the server still answers from its other thread. */
static void check_alive(char *resp)
{
	static const char req[] = "GET /later/alive HTTP/1.1\r\nHost: f\r\n\r\n";
	size_t got = exchange(req, sizeof req - 1, resp, READ_CAP, true);

	if (got < 13 || memcmp(resp, "HTTP/1.1 202 ", 13) != 0) {
		fprintf(stderr, "the server stopped answering: %.200s\n", resp);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char *resp;
	static unsigned long runs;
	struct out o = {0}, rest = {0};
	const char *d;
	size_t n;
	char line[64];
	int oracle = 0; /* 1: echo of d expected */

	if (!server) {
		start();
		resp = malloc(READ_CAP);
		if (!resp)
			abort();
	}
	if (++runs % 64 == 0)
		check_alive(resp);
	if (size == 0)
		return 0;
	/* The first byte: the template (low 4 bits) and how many times the rest is
	 * repeated (high 4 bits), to reach the body limit with short inputs. */
	for (int i = 0; i < 1 + (data[0] >> 4) * 8; i++)
		put(&rest, data + 1, size - 1);
	d = rest.p ? rest.p : "";
	n = rest.len;
	switch ((data[0] & 15) % 9) {
	case 0:
		put(&o, d, n);
		break;
	case 1:
		puts_(&o, "GET /later/q?");
		put(&o, d, n);
		puts_(&o, " HTTP/1.1\r\nHost: f\r\nConnection: close\r\n\r\n");
		break;
	case 2:
		puts_(&o, "GET /");
		put(&o, d, n);
		puts_(&o, " HTTP/1.1\r\nHost: f\r\nConnection: close\r\n\r\n");
		break;
	case 3:
		snprintf(line, sizeof line, "Content-Length: %zu\r\n\r\n", n);
		puts_(&o, "POST /echo HTTP/1.1\r\nHost: f\r\nConnection: close\r\n");
		puts_(&o, line);
		put(&o, d, n);
		oracle = 1;
		break;
	case 4:
		puts_(&o, "POST /later/c HTTP/1.1\r\nHost: f\r\nConnection: close\r\n"
			  "Transfer-Encoding: chunked\r\n\r\n");
		put(&o, d, n);
		break;
	case 5:
		puts_(&o,
		      "GET /healthz HTTP/1.1\r\nHost: f\r\nConnection: close\r\nAuthorization: ");
		put(&o, d, n);
		puts_(&o, "\r\n\r\n");
		break;
	case 6:
		puts_(&o, "PUT /later/h HTTP/1.1\r\nHost: f\r\nConnection: close\r\n");
		put(&o, d, n);
		puts_(&o, "\r\n\r\n");
		break;
	case 7:
		puts_(&o, "GET /later/p HTTP/1.1\r\nHost: f\r\n\r\n");
		put(&o, d, n);
		break;
	case 8:
		puts_(&o, "POST /echo HTTP/1.1\r\nHost: f\r\nConnection: close\r\n"
			  "Transfer-Encoding: chunked\r\n\r\n");
		if (n) {
			snprintf(line, sizeof line, "%zx\r\n", n);
			puts_(&o, line);
			put(&o, d, n);
			puts_(&o, "\r\n");
		}
		puts_(&o, "0\r\n\r\n");
		oracle = 1;
		break;
	}
	size_t got = exchange(o.p, o.len, resp, READ_CAP, oracle);
	if (oracle) {
		const char *want = n <= MAX_BODY ? "HTTP/1.1 200 " : "HTTP/1.1 413 ";
		const char *body = strstr(resp, "\r\n\r\n");
		if (got < 13 || memcmp(resp, want, 13) != 0) {
			fprintf(stderr, "wanted %s for a %zu-byte body, got: %.200s\n", want, n,
				resp);
			abort();
		}
		if (n <= MAX_BODY &&
		    (!body || (size_t)(resp + got - (body + 4)) != n || memcmp(body + 4, d, n))) {
			fprintf(stderr, "the echoed body differs (%zu bytes sent)\n", n);
			abort();
		}
	}
	free(o.p);
	free(rest.p);
	return 0;
}
