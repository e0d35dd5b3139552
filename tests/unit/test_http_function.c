/*
 * The http and log function kinds (functions/http.c, functions/log.c).
 *
 * First the pure helpers, table-driven: Retry-After parsing (all three HTTP-date forms,
 * delta-seconds, and bad values with the byte they name), the outcome of HTTP statuses
 * and libcurl errors, and the URL shown in messages.
 *
 * Then the runtime through the real router and engine: a configuration is loaded, the
 * router creates the function, and td_router_invoke (the Invoke API path) runs sync
 * invocations on the engine loop against a small HTTP/1.1 server on loopback in this
 * process, which records every request and answers as each test scripts it. Nothing is
 * mocked: the transfers are libcurl's on the engine's transfer thread.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <triggerd/config.h>
#include <triggerd/errors.h>
#include <triggerd/event.h>
#include <triggerd/function.h>
#include <triggerd/log.h>

#include "../../functions/http_util.h"
#include "../../router/engine_loop.h"
#include "../../router/router.h"

/* ---- Retry-After ---- */

/* Sun, 06 Nov 1994 08:49:37 GMT */
#define T_1994 784111777000LL

struct ra_ok {
	const char *value;
	long long now_ms;
	long long delay_ms;
};

Test(http_function, retry_after_accepts_every_form)
{
	static const struct ra_ok cases[] = {
	    {"120", 0, 120000},
	    {"0", 0, 0},
	    {" \t7 \t", 0, 7000},
	    {"0042", 0, 42000},
	    {"99999999999999999999999", 0, TD_HTTP_RETRY_AFTER_MAX_S * 1000},
	    {"2147483649", 0, TD_HTTP_RETRY_AFTER_MAX_S * 1000},
	    {"2147483647", 0, 2147483647LL * 1000},
	    {"Sun, 06 Nov 1994 08:49:37 GMT", T_1994 - 5000, 5000},
	    {"Sunday, 06-Nov-94 08:49:37 GMT", T_1994 - 5000, 5000},
	    {"Sun Nov  6 08:49:37 1994", T_1994 - 5000, 5000},
	    {"Sun Nov 16 08:49:37 1994", T_1994, 10LL * 86400 * 1000},
	    {"sun, 06 nov 1994 08:49:37 GMT", T_1994 - 1, 1},
	    {"SUNDAY, 06-NOV-94 08:49:37 GMT", T_1994 - 1, 1},
	    /* In the past: no wait. */
	    {"Sun, 06 Nov 1994 08:49:37 GMT", T_1994 + 60000, 0},
	    {"Thu, 01 Jan 1970 00:00:00 GMT", T_1994, 0},
	    /* Leap day, leap second, end of year. */
	    {"Thu, 29 Feb 1996 00:00:00 GMT", 825552000000LL - 1000, 1000},
	    {"Sat, 31 Dec 2016 23:59:60 GMT", 1483228799000LL, 1000},
	    {"Thu, 31 Dec 2026 23:59:59 GMT", 1798761599000LL - 250, 250},
	    /* RFC 850 two-digit years: more than 50 years ahead means the last century. */
	    {"Thursday, 01-Jan-26 00:00:00 GMT", 1767225600000LL - 3000, 3000},
	    {"Friday, 01-Jan-77 00:00:00 GMT", 1767225600000LL, 0},
	    {"Sunday, 31-Dec-76 00:00:00 GMT", 1767225600000LL, 3376598400000LL - 1767225600000LL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		long long delay = -1;
		char err[128] = "";
		int rc = td_http_retry_after_parse(cases[i].value, strlen(cases[i].value),
						   cases[i].now_ms, &delay, err, sizeof err);
		cr_expect_eq(rc, 0, "\"%s\": %s", cases[i].value, err);
		cr_expect_eq(delay, cases[i].delay_ms, "\"%s\": %lld, expected %lld",
			     cases[i].value, delay, cases[i].delay_ms);
	}
}

struct ra_bad {
	const char *value;
	size_t len; /* 0: strlen */
	const char *message;
};

Test(http_function, retry_after_rejects_bad_values_saying_where)
{
	static const struct ra_bad cases[] = {
	    {"", 0, "empty value at byte 0"},
	    {" \t ", 0, "empty value at byte 3"},
	    {"12a", 0, "delta-seconds must be digits only: unexpected character at byte 2"},
	    {"1.5", 0, "delta-seconds must be digits only: unexpected character at byte 1"},
	    {"12\0", 3, "delta-seconds must be digits only: unexpected character at byte 2"},
	    {"-5", 0, "expected delta-seconds or an HTTP-date at byte 0"},
	    {"\xff\xfe", 0, "expected delta-seconds or an HTTP-date at byte 0"},
	    {"Foo, 06 Nov 1994 08:49:37 GMT", 0, "unknown day name at byte 0"},
	    {"Sunday, 06 Nov 1994 08:49:37 GMT", 0, "expected '-' after the day at byte 10"},
	    {"Sun,06 Nov 1994 08:49:37 GMT", 0, "expected a space after the day name at byte 4"},
	    {"Sun, 6 Nov 1994 08:49:37 GMT", 0, "expected a two-digit day of the month at byte 5"},
	    {"Sun, 06 Noo 1994 08:49:37 GMT", 0, "expected a month name (Jan..Dec) at byte 8"},
	    {"Sun, 06 Nov 94 08:49:37 GMT", 0, "expected a four-digit year at byte 12"},
	    {"Sun, 06 Nov 1994 08:49 GMT", 0, "expected a time of day hh:mm:ss at byte 17"},
	    {"Sun, 06 Nov 1994 24:00:00 GMT", 0, "time of day out of range at byte 17"},
	    {"Sun, 06 Nov 1994 08:60:00 GMT", 0, "time of day out of range at byte 17"},
	    {"Sun, 06 Nov 1994 08:49:37 UTC", 0, "expected \"GMT\" at byte 26"},
	    {"Sun, 06 Nov 1994 08:49:37 GM", 0, "expected \"GMT\" at byte 26"},
	    {"Sun, 06 Nov 1994 08:49:37 GMT x", 0, "unexpected text after the date at byte 29"},
	    {"Sun, 31 Nov 1994 08:49:37 GMT", 0, "no such day in that month at byte 5"},
	    {"Wed, 29 Feb 1995 08:49:37 GMT", 0, "no such day in that month at byte 5"},
	    {"Sun, 00 Nov 1994 08:49:37 GMT", 0, "no such day in that month at byte 5"},
	    {"Sunday, 06-Nov-1994 08:49:37 GMT", 0, "expected a space before the time at byte 17"},
	    {"Sun Nov 6 08:49:37 1994", 0, "expected a day of the month at byte 8"},
	    {"Sun Nov  6 08:49:37 94", 0, "expected a four-digit year at byte 20"},
	    {"Sunday Nov  6 08:49:37 1994", 0, "unknown day name at byte 0"},
	    {"Sun Nov  6 08:49:37 1994 GMT", 0, "unexpected text after the date at byte 24"},
	    {"Sun", 0, "expected ',' or a space after the day name at byte 3"},
	    {"Sun,", 0, "expected a space after the day name at byte 4"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		long long delay = -42;
		char err[128] = "";
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].value);
		int rc =
		    td_http_retry_after_parse(cases[i].value, len, T_1994, &delay, err, sizeof err);
		cr_expect_eq(rc, -TD_EINVAL, "\"%s\" was accepted", cases[i].value);
		cr_expect_str_eq(err, cases[i].message, "\"%s\"", cases[i].value);
		cr_expect_eq(delay, -42, "\"%s\": the delay was changed", cases[i].value);
	}
	/* No message buffer: still refused. */
	long long delay;
	cr_expect_eq(td_http_retry_after_parse("x", 1, 0, &delay, NULL, 0), -TD_EINVAL);
}

/* ---- outcomes and URLs ---- */

Test(http_function, status_outcomes)
{
	static const struct {
		long status;
		enum td_result_status outcome;
	} cases[] = {
	    {200, TD_RESULT_OK},    {201, TD_RESULT_OK},    {204, TD_RESULT_OK},
	    {299, TD_RESULT_OK},    {408, TD_RESULT_RETRY}, {429, TD_RESULT_RETRY},
	    {500, TD_RESULT_RETRY}, {502, TD_RESULT_RETRY}, {503, TD_RESULT_RETRY},
	    {504, TD_RESULT_RETRY}, {599, TD_RESULT_RETRY}, {400, TD_RESULT_ERROR},
	    {401, TD_RESULT_ERROR}, {403, TD_RESULT_ERROR}, {404, TD_RESULT_ERROR},
	    {409, TD_RESULT_ERROR}, {413, TD_RESULT_ERROR}, {422, TD_RESULT_ERROR},
	    {499, TD_RESULT_ERROR}, {100, TD_RESULT_ERROR}, {301, TD_RESULT_ERROR},
	    {302, TD_RESULT_ERROR}, {600, TD_RESULT_ERROR}, {0, TD_RESULT_ERROR},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		cr_expect_eq(td_http_status_outcome(cases[i].status), cases[i].outcome, "HTTP %ld",
			     cases[i].status);
}

Test(http_function, curl_outcomes)
{
	static const struct {
		CURLcode code;
		enum td_result_status outcome;
	} cases[] = {
	    {CURLE_OPERATION_TIMEDOUT, TD_RESULT_RETRY},
	    {CURLE_COULDNT_CONNECT, TD_RESULT_RETRY},
	    {CURLE_COULDNT_RESOLVE_HOST, TD_RESULT_RETRY},
	    {CURLE_GOT_NOTHING, TD_RESULT_RETRY},
	    {CURLE_SEND_ERROR, TD_RESULT_RETRY},
	    {CURLE_RECV_ERROR, TD_RESULT_RETRY},
	    {CURLE_PARTIAL_FILE, TD_RESULT_RETRY},
	    {CURLE_SSL_CONNECT_ERROR, TD_RESULT_RETRY},
	    {CURLE_OUT_OF_MEMORY, TD_RESULT_RETRY},
	    {CURLE_URL_MALFORMAT, TD_RESULT_ERROR},
	    {CURLE_UNSUPPORTED_PROTOCOL, TD_RESULT_ERROR},
	    {CURLE_WEIRD_SERVER_REPLY, TD_RESULT_ERROR},
	    {CURLE_WRITE_ERROR, TD_RESULT_ERROR},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		cr_expect_eq(td_http_curl_outcome(cases[i].code), cases[i].outcome, "%s",
			     curl_easy_strerror(cases[i].code));
}

Test(http_function, display_url_hides_credentials_and_query)
{
	static const struct {
		const char *url;
		size_t cap;
		const char *shown;
	} cases[] = {
	    {"http://127.0.0.1:9/", 256, "http://127.0.0.1:9/"},
	    {"https://fn.example", 256, "https://fn.example"},
	    {"http://user:pw@host:8080/p/a?token=x#frag", 256, "http://host:8080/p/a"},
	    {"http://a@b@host/x", 256, "http://host/x"},
	    {"http://host/path@x?q=1", 256, "http://host/path@x"},
	    {"http://host?token=1", 256, "http://host"},
	    {"http://host#x", 256, "http://host"},
	    {"http://host/abcdef", 12, "http://host"},
	    {"http://host/", 1, ""},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char out[256];
		memset(out, 'Z', sizeof out);
		td_http_display_url(cases[i].url, out, cases[i].cap);
		cr_expect_str_eq(out, cases[i].shown, "%s", cases[i].url);
	}
}

/* ---- a loopback HTTP/1.1 server that records requests ---- */

#define SRV_MAX_REQUESTS 64
#define SRV_MAX_CONNS	 64

struct srv_reply {
	int status;
	const char *headers; /* extra lines, each ending in \r\n */
	const char *body;    /* NULL: empty */
	size_t body_len;     /* 0: strlen(body) */
	int delay_ms;
	bool hang_up; /* close the connection instead of answering */
};

struct srv_request {
	char head[16384]; /* request line and headers as received */
	char *body;
	size_t body_len;
};

struct srv {
	int fd, port;
	pthread_t acceptor;
	pthread_mutex_t lock;
	struct srv_reply replies[8]; /* request i gets replies[min(i, nreplies - 1)] */
	int nreplies;
	struct srv_request requests[SRV_MAX_REQUESTS];
	int nrequests;
	int connections, active, max_active;
	pthread_t conn_threads[SRV_MAX_CONNS];
	int conn_fds[SRV_MAX_CONNS];
	atomic_bool stop;
};

struct srv_conn {
	struct srv *s;
	int fd;
};

static bool srv_read_request(int fd, char *buf, size_t cap, size_t *have, size_t *head_len,
			     size_t *body_len)
{
	for (;;) {
		char *end = memmem(buf, *have, "\r\n\r\n", 4);
		if (end) {
			*head_len = (size_t)(end - buf) + 4;
			*body_len = 0;
			for (char *p = buf; p && p < end; p = memchr(p, '\n', (size_t)(end - p))) {
				if (*p == '\n')
					p++;
				if (strncasecmp(p, "content-length:", 15) == 0)
					*body_len = strtoul(p + 15, NULL, 10);
			}
			if (*head_len + *body_len > cap)
				return false;
			if (*have >= *head_len + *body_len)
				return true;
		}
		if (*have == cap)
			return false;
		ssize_t n = recv(fd, buf + *have, cap - *have, 0);
		if (n <= 0)
			return false;
		*have += (size_t)n;
	}
}

static void srv_send_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

static void *srv_conn_main(void *arg)
{
	struct srv_conn *c = arg;
	struct srv *s = c->s;
	size_t cap = 1 << 20, have = 0, head_len, body_len;
	char *buf = malloc(cap);
	while (!atomic_load(&s->stop) &&
	       srv_read_request(c->fd, buf, cap, &have, &head_len, &body_len)) {
		pthread_mutex_lock(&s->lock);
		int index = s->nrequests;
		if (s->nrequests < SRV_MAX_REQUESTS) {
			struct srv_request *r = &s->requests[s->nrequests++];
			size_t n = head_len < sizeof r->head - 1 ? head_len : sizeof r->head - 1;
			memcpy(r->head, buf, n);
			r->head[n] = '\0';
			r->body = malloc(body_len + 1);
			memcpy(r->body, buf + head_len, body_len);
			r->body[body_len] = '\0';
			r->body_len = body_len;
		}
		struct srv_reply reply = s->replies[index < s->nreplies ? index : s->nreplies - 1];
		if (++s->active > s->max_active)
			s->max_active = s->active;
		pthread_mutex_unlock(&s->lock);

		for (int waited = 0; waited < reply.delay_ms && !atomic_load(&s->stop); waited += 5)
			usleep(5000);
		pthread_mutex_lock(&s->lock);
		s->active--;
		pthread_mutex_unlock(&s->lock);
		if (reply.hang_up)
			break;
		size_t blen =
		    reply.body ? (reply.body_len ? reply.body_len : strlen(reply.body)) : 0;
		/* One send for the whole answer: a second small segment would wait for the
		 * client's delayed ACK (Nagle) and slow every call by 40 ms. */
		char *out = NULL;
		size_t out_len = 0;
		FILE *f = open_memstream(&out, &out_len);
		fprintf(f, "HTTP/1.1 %d Scripted\r\nContent-Length: %zu\r\n%s\r\n", reply.status,
			blen, reply.headers ? reply.headers : "");
		if (blen)
			fwrite(reply.body, 1, blen, f);
		fclose(f);
		srv_send_all(c->fd, out, out_len);
		free(out);
		memmove(buf, buf + head_len + body_len, have - head_len - body_len);
		have -= head_len + body_len;
	}
	free(buf);
	shutdown(c->fd, SHUT_RDWR);
	free(c);
	return NULL;
}

static void *srv_accept_main(void *arg)
{
	struct srv *s = arg;
	while (!atomic_load(&s->stop)) {
		struct pollfd p = {.fd = s->fd, .events = POLLIN};
		if (poll(&p, 1, 20) <= 0)
			continue;
		int fd = accept(s->fd, NULL, NULL);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&s->lock);
		if (s->connections == SRV_MAX_CONNS) {
			pthread_mutex_unlock(&s->lock);
			close(fd);
			continue;
		}
		int i = s->connections++;
		s->conn_fds[i] = fd;
		pthread_mutex_unlock(&s->lock);
		struct srv_conn *c = malloc(sizeof *c);
		*c = (struct srv_conn){s, fd};
		pthread_create(&s->conn_threads[i], NULL, srv_conn_main, c);
	}
	return NULL;
}

static int listen_loopback(int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(fd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	socklen_t len = sizeof a;
	getsockname(fd, (struct sockaddr *)&a, &len);
	*port = ntohs(a.sin_port);
	return fd;
}

/* Starts a server that answers every request with the replies given (the last one
 * repeats). */
static struct srv *srv_start(const struct srv_reply *replies, int n)
{
	struct srv *s = calloc(1, sizeof *s);
	s->fd = listen_loopback(&s->port);
	cr_assert_eq(listen(s->fd, 64), 0);
	pthread_mutex_init(&s->lock, NULL);
	for (int i = 0; i < n && i < 8; i++)
		s->replies[i] = replies[i];
	s->nreplies = n < 8 ? n : 8;
	pthread_create(&s->acceptor, NULL, srv_accept_main, s);
	return s;
}

static void srv_stop(struct srv *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->acceptor, NULL);
	pthread_mutex_lock(&s->lock);
	int n = s->connections;
	pthread_mutex_unlock(&s->lock);
	for (int i = 0; i < n; i++)
		shutdown(s->conn_fds[i], SHUT_RDWR);
	for (int i = 0; i < n; i++) {
		pthread_join(s->conn_threads[i], NULL);
		close(s->conn_fds[i]);
	}
	for (int i = 0; i < s->nrequests; i++)
		free(s->requests[i].body);
	close(s->fd);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* The value of header name in request r (trimmed), or NULL; *count receives how many
 * times it appears (may be NULL). */
static const char *req_header(const struct srv_request *r, const char *name, char *out, size_t cap,
			      int *count)
{
	const char *found = NULL;
	size_t nlen = strlen(name);
	int seen = 0;
	for (const char *p = strstr(r->head, "\r\n"); p && p[2] != '\r';
	     p = strstr(p + 2, "\r\n")) {
		const char *line = p + 2;
		if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
			const char *v = line + nlen + 1;
			while (*v == ' ')
				v++;
			size_t vlen = strcspn(v, "\r");
			snprintf(out, cap, "%.*s", (int)vlen, v);
			found = out;
			seen++;
		}
	}
	if (count)
		*count = seen;
	return found;
}

static int ce_header_count(const struct srv_request *r)
{
	int n = 0;
	for (const char *p = strstr(r->head, "\r\nce-"); p; p = strstr(p + 2, "\r\nce-"))
		n++;
	return n;
}

/* ---- the router and engine around one function ---- */

struct harness {
	char dir[64];
	struct td_engine *engine;
	struct td_router *router;
};

struct outcome {
	struct td_result res; /* a deep copy */
	bool done;
};

struct batch {
	struct harness *h;
	const char *function;
	struct td_event *ev;
	int n, started, finished;
	bool sequential;
	long long stop_after_ms; /* > 0: stop the engine then, done or not */
	struct outcome out[64];
	int refused;
	struct td_timer *guard;
	bool timed_out;
};

struct slot {
	struct batch *b;
	int i;
};

static struct slot slots[64];

/* A configuration of the given functions, with its state in dir. */
static struct td_config *functions_config(const char *dir, const char *functions)
{
	char *text = NULL;
	cr_assert(asprintf(&text,
			   "state_dir = \"%s\";\nqueue = { durability = \"memory\"; };\n"
			   "functions = ( %s );\n",
			   dir, functions) > 0);
	struct td_diag diag = {0};
	struct td_config *cfg = td_config_load_string(text, "test.cfg", &diag);
	if (!cfg)
		td_diag_print(&diag, stderr);
	td_diag_clear(&diag);
	free(text);
	cr_assert_not_null(cfg, "the test configuration did not load");
	return cfg;
}

static void harness_start(struct harness *h, const char *functions)
{
	snprintf(h->dir, sizeof h->dir, "/tmp/td_httpfn_XXXXXX");
	cr_assert_not_null(mkdtemp(h->dir));
	struct td_config *cfg = functions_config(h->dir, functions);
	h->engine = td_engine_create();
	cr_assert_not_null(h->engine);
	h->router = td_router_create(h->engine, cfg, NULL);
	cr_assert_not_null(h->router);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void harness_finish(struct harness *h)
{
	td_router_destroy(h->router);
	td_engine_destroy(h->engine);
	nftw(h->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static char *dup_bytes(const char *p, size_t len)
{
	if (!p)
		return NULL;
	char *s = malloc(len + 1);
	memcpy(s, p, len);
	s[len] = '\0';
	return s;
}

static void start_one(struct batch *b);

static void on_result(void *arg, const struct td_result *res)
{
	struct slot *sl = arg;
	struct batch *b = sl->b;
	struct outcome *o = &b->out[sl->i];
	o->res = *res;
	o->res.body = dup_bytes(res->body, res->body_len);
	o->res.content_type = res->content_type ? strdup(res->content_type) : NULL;
	o->res.error = res->error ? strdup(res->error) : NULL;
	o->done = true;
	b->finished++;
	if (b->sequential && b->started < b->n)
		start_one(b);
	else if (b->finished == b->n)
		td_engine_stop(b->h->engine);
}

static void start_one(struct batch *b)
{
	int i = b->started++;
	slots[i] = (struct slot){b, i};
	int rc = td_router_invoke(b->h->router, b->function, td_event_ref(b->ev), true, NULL,
				  on_result, &slots[i]);
	if (rc < 0) {
		b->refused++;
		td_engine_stop(b->h->engine);
	}
}

static void kick(void *arg)
{
	struct batch *b = arg;
	if (b->sequential)
		start_one(b);
	else
		while (b->started < b->n)
			start_one(b);
}

static void guard_fired(void *arg)
{
	struct batch *b = arg;
	b->guard = NULL;
	b->timed_out = b->stop_after_ms == 0;
	td_engine_stop(b->h->engine);
}

/* Runs n sync invocations of function with ev on the engine until all answered. */
static void run_batch(struct batch *b)
{
	cr_assert(b->n > 0 && b->n <= 64);
	cr_assert_eq(td_engine_call(b->h->engine, kick, b), 0);
	b->guard = td_timer_add(b->h->engine, b->stop_after_ms > 0 ? b->stop_after_ms : 20000,
				guard_fired, b);
	td_engine_run(b->h->engine);
	if (b->guard)
		td_timer_cancel(b->h->engine, b->guard);
	cr_assert_not(b->timed_out, "the invocations did not finish in 20 s");
	cr_assert_eq(b->refused, 0);
}

static void batch_clear(struct batch *b)
{
	for (int i = 0; i < b->n; i++)
		td_result_clear(&b->out[i].res);
	td_event_unref(b->ev);
}

/* One sync invocation of "f" (an http function with the given options) against a server
 * answering with reply; returns the server (stopped by the caller). */
static struct srv *invoke_once(const char *options, const struct srv_reply *reply,
			       struct td_event *ev, struct outcome *out)
{
	struct srv *s = srv_start(reply, 1);
	struct harness h;
	char fn[2048];
	snprintf(fn, sizeof fn,
		 "{ name = \"f\"; kind = \"http\"; url = \"http://127.0.0.1:%d/fn\"; %s }", s->port,
		 options);
	harness_start(&h, fn);
	struct batch b = {.h = &h, .function = "f", .ev = ev, .n = 1};
	run_batch(&b);
	cr_assert(b.out[0].done);
	*out = b.out[0];
	td_event_unref(ev);
	harness_finish(&h);
	return s;
}

static struct td_event *sample_event(const char *data, const char *content_type)
{
	struct td_event *ev = td_event_create();
	cr_assert_not_null(ev);
	cr_assert_eq(td_event_set(ev, "id", "evt-1"), 0);
	cr_assert_eq(td_event_set(ev, "source", "/orders"), 0);
	cr_assert_eq(td_event_set(ev, "type", "com.example.order.created"), 0);
	cr_assert_eq(td_event_set(ev, "subject", "order 42"), 0);
	cr_assert_eq(td_event_set(ev, "region", "eu-west"), 0);
	if (data)
		cr_assert_eq(td_event_set_data(ev, data, strlen(data), content_type), 0);
	return ev;
}

static const struct srv_reply ok_reply = {
    .status = 200,
    .headers = "Content-Type: application/json\r\n",
    .body = "{\"ok\":true}",
};

/* ---- formats ---- */

Test(http_function, binary_mode_sends_ce_headers_and_the_payload, .timeout = 30)
{
	struct outcome o;
	struct srv *s =
	    invoke_once("", &ok_reply, sample_event("{\"amount\": 12}", "application/json"), &o);
	cr_assert_eq(s->nrequests, 1);
	const struct srv_request *r = &s->requests[0];
	char v[512];
	cr_expect_eq(strncmp(r->head, "POST /fn HTTP/1.1\r\n", 19), 0, "%s", r->head);
	cr_expect_str_eq(req_header(r, "ce-specversion", v, sizeof v, NULL), "1.0");
	cr_expect_str_eq(req_header(r, "ce-id", v, sizeof v, NULL), "evt-1");
	cr_expect_str_eq(req_header(r, "ce-source", v, sizeof v, NULL), "/orders");
	cr_expect_str_eq(req_header(r, "ce-type", v, sizeof v, NULL), "com.example.order.created");
	cr_expect_str_eq(req_header(r, "ce-subject", v, sizeof v, NULL), "order%2042");
	cr_expect_str_eq(req_header(r, "ce-region", v, sizeof v, NULL), "eu-west");
	cr_expect_str_eq(req_header(r, "content-type", v, sizeof v, NULL), "application/json");
	cr_expect_null(req_header(r, "expect", v, sizeof v, NULL), "an Expect header was sent");
	cr_expect_eq(r->body_len, strlen("{\"amount\": 12}"));
	cr_expect_str_eq(r->body, "{\"amount\": 12}");

	cr_expect_eq(o.res.status, TD_RESULT_OK);
	cr_expect_eq(o.res.http_status, 200);
	cr_expect_str_eq(o.res.content_type, "application/json");
	cr_expect_eq(o.res.body_len, 11);
	cr_expect_str_eq(o.res.body, "{\"ok\":true}");
	cr_expect_null(o.res.error);
	cr_expect_eq(o.res.retry_after_ms, 0);
	cr_expect_gt(o.res.duration_us, 0);
	td_result_clear(&o.res);
	srv_stop(s);
}

Test(http_function, binary_mode_without_data_sends_no_body_and_no_type, .timeout = 30)
{
	struct outcome o;
	struct srv *s = invoke_once("", &ok_reply, sample_event(NULL, NULL), &o);
	cr_assert_eq(s->nrequests, 1);
	const struct srv_request *r = &s->requests[0];
	char v[512];
	cr_expect_str_eq(req_header(r, "ce-id", v, sizeof v, NULL), "evt-1");
	cr_expect_null(req_header(r, "content-type", v, sizeof v, NULL), "Content-Type: %s", v);
	cr_expect_str_eq(req_header(r, "content-length", v, sizeof v, NULL), "0");
	cr_expect_eq(r->body_len, 0);
	cr_expect_eq(o.res.status, TD_RESULT_OK);
	td_result_clear(&o.res);
	srv_stop(s);
}

Test(http_function, binary_mode_binary_payload_goes_as_bytes, .timeout = 30)
{
	struct td_event *ev = sample_event(NULL, NULL);
	static const char bytes[] = {'\x00', '\xff', '\x10', 'a', '\x80'};
	cr_assert_eq(td_event_set_data(ev, bytes, sizeof bytes, NULL), 0);
	struct outcome o;
	struct srv *s = invoke_once("", &ok_reply, ev, &o);
	const struct srv_request *r = &s->requests[0];
	char v[512];
	cr_expect_str_eq(req_header(r, "content-type", v, sizeof v, NULL),
			 "application/octet-stream");
	cr_expect_eq(r->body_len, sizeof bytes);
	cr_expect_eq(memcmp(r->body, bytes, sizeof bytes), 0);
	td_result_clear(&o.res);
	srv_stop(s);
}

Test(http_function, structured_mode_sends_the_event_json, .timeout = 30)
{
	struct td_event *ev = sample_event("{\"amount\": 12}", "application/json");
	size_t len;
	char *json = td_event_to_json(ev, &len);
	struct outcome o;
	struct srv *s = invoke_once("format = \"structured\";", &ok_reply, ev, &o);
	const struct srv_request *r = &s->requests[0];
	char v[512];
	cr_expect_str_eq(req_header(r, "content-type", v, sizeof v, NULL),
			 "application/cloudevents+json");
	cr_expect_eq(ce_header_count(r), 0);
	cr_expect_eq(r->body_len, len);
	cr_expect_str_eq(r->body, json);
	cr_expect_eq(o.res.status, TD_RESULT_OK);
	free(json);
	td_result_clear(&o.res);
	srv_stop(s);
}

Test(http_function, data_mode_sends_the_payload_with_its_type, .timeout = 30)
{
	struct outcome o;
	struct srv *s = invoke_once("format = \"data\";", &ok_reply,
				    sample_event("a,b\n1,2\n", "text/csv"), &o);
	const struct srv_request *r = &s->requests[0];
	char v[512];
	cr_expect_str_eq(req_header(r, "content-type", v, sizeof v, NULL), "text/csv");
	cr_expect_eq(ce_header_count(r), 0);
	cr_expect_str_eq(r->body, "a,b\n1,2\n");
	td_result_clear(&o.res);
	srv_stop(s);

	/* Without datacontenttype: the type the payload implies. */
	s = invoke_once("format = \"data\";", &ok_reply, sample_event("plain words", NULL), &o);
	cr_expect_str_eq(req_header(&s->requests[0], "content-type", v, sizeof v, NULL),
			 "text/plain; charset=utf-8");
	cr_expect_str_eq(s->requests[0].body, "plain words");
	td_result_clear(&o.res);
	srv_stop(s);
}

Test(http_function, extra_headers_are_sent_and_replace_the_kinds, .timeout = 30)
{
	struct outcome o;
	struct srv *s = invoke_once("headers = { Authorization = \"Bearer s3cret\"; X-Team = "
				    "\"payments\"; ce-source = \"/replaced\"; Content-Type = "
				    "\"application/vnd.test+json\"; };",
				    &ok_reply, sample_event("{\"a\":1}", "application/json"), &o);
	const struct srv_request *r = &s->requests[0];
	char v[512];
	int count;
	cr_expect_str_eq(req_header(r, "authorization", v, sizeof v, NULL), "Bearer s3cret");
	cr_expect_str_eq(req_header(r, "x-team", v, sizeof v, NULL), "payments");
	cr_expect_str_eq(req_header(r, "ce-source", v, sizeof v, &count), "/replaced");
	cr_expect_eq(count, 1, "ce-source sent %d times", count);
	cr_expect_str_eq(req_header(r, "content-type", v, sizeof v, &count),
			 "application/vnd.test+json");
	cr_expect_eq(count, 1, "Content-Type sent %d times", count);
	cr_expect_str_eq(req_header(r, "ce-id", v, sizeof v, NULL), "evt-1");
	cr_expect_eq(o.res.status, TD_RESULT_OK);
	td_result_clear(&o.res);
	srv_stop(s);
}

/* ---- the request bytes ---- */

struct hdr_text {
	char text[4096];
	size_t len;
};

static void collect_header(void *arg, const char *name, const char *value)
{
	struct hdr_text *t = arg;
	int n = snprintf(t->text + t->len, sizeof t->text - t->len, "%s: %s\n", name, value);
	if (n > 0 && (size_t)n < sizeof t->text - t->len)
		t->len += (size_t)n;
}

struct hdr_case {
	const char *attrs[8][2]; /* name, value; beyond the required three */
	const char *data, *content_type;
	const char *expected; /* after the first four lines, which every case shares */
};

static char *repeat(const char *unit, int n)
{
	size_t len = strlen(unit);
	char *s = malloc(len * (size_t)n + 1);
	for (int i = 0; i < n; i++)
		memcpy(s + len * (size_t)i, unit, len);
	s[len * (size_t)n] = '\0';
	return s;
}

/* td_event_http_headers, byte for byte: the order, the percent-encoding of the binding,
 * values that fit the stack buffer and longer ones, the longest extension name. */
Test(http_function, binary_mode_headers_byte_exact)
{
	char *spaces169 = repeat(" ", 169), *spaces170 = repeat(" ", 170);
	char *enc169 = repeat("%20", 169), *enc170 = repeat("%20", 170);
	char *long_plain = repeat("abcdefghij", 100);
	char exp_long[4096];
	snprintf(exp_long, sizeof exp_long,
		 "ce-subject: %s\nce-a: %s\nce-b: %s\nContent-Type: text/plain; charset=utf-8\n",
		 enc169, enc170, long_plain);
	const struct hdr_case cases[] = {
	    {.attrs = {{"subject", "order 42"}, {"region", "eu-west"}},
	     .data = "{\"amount\": 12}",
	     .content_type = "application/json",
	     .expected = "ce-subject: order%2042\nce-region: eu-west\n"
			 "Content-Type: application/json\n"},
	    {.attrs = {{"subject", "a\"b%c d\xc3\xa9~"}},
	     .expected = "ce-subject: a%22b%25c%20d%C3%A9~\n"},
	    {.attrs = {{"dataschema", "https://s.example/v1"},
		       {"time", "2026-01-02T03:04:05Z"},
		       {"subject", "s"},
		       {"abcdefghijklmnopqrst", "20 chars"},
		       {"z", ""}},
	     .data = "raw",
	     .content_type = "text/csv",
	     .expected = "ce-subject: s\nce-time: 2026-01-02T03:04:05Z\n"
			 "ce-dataschema: https://s.example/v1\n"
			 "ce-abcdefghijklmnopqrst: 20%20chars\nce-z: \nContent-Type: text/csv\n"},
	    {.attrs = {{"subject", spaces169}, {"a", spaces170}, {"b", long_plain}},
	     .data = "plain words",
	     .expected = exp_long},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct td_event *ev = td_event_create();
		cr_assert_not_null(ev);
		cr_assert_eq(td_event_set(ev, "id", "evt-1"), 0);
		cr_assert_eq(td_event_set(ev, "source", "/orders"), 0);
		cr_assert_eq(td_event_set(ev, "type", "t"), 0);
		for (int k = 0; k < 8 && cases[i].attrs[k][0]; k++)
			cr_assert_eq(td_event_set(ev, cases[i].attrs[k][0], cases[i].attrs[k][1]),
				     0, "case %zu: %s", i, cases[i].attrs[k][0]);
		if (cases[i].data)
			cr_assert_eq(td_event_set_data(ev, cases[i].data, strlen(cases[i].data),
						       cases[i].content_type),
				     0);
		struct hdr_text got = {0};
		td_event_http_headers(ev, collect_header, &got);
		char expected[4096];
		snprintf(expected, sizeof expected,
			 "ce-specversion: 1.0\nce-id: evt-1\nce-source: /orders\nce-type: t\n%s",
			 cases[i].expected);
		cr_expect_str_eq(got.text, expected, "case %zu", i);
		td_event_unref(ev);
	}
	free(spaces169);
	free(spaces170);
	free(enc169);
	free(enc170);
	free(long_plain);
}

/* The whole request head as it goes on the wire, byte for byte, twice on one pooled
 * call (the second call with another event: nothing of the first is left). */
Test(http_function, binary_mode_request_bytes_exact, .timeout = 30)
{
	struct srv *s = srv_start(&ok_reply, 1);
	struct harness h;
	char fn[512];
	snprintf(fn, sizeof fn,
		 "{ name = \"f\"; kind = \"http\"; url = \"http://127.0.0.1:%d/fn?x=1\"; "
		 "headers = { X-Team = \"payments\"; }; }",
		 s->port);
	harness_start(&h, fn);
	struct batch b = {.h = &h,
			  .function = "f",
			  .ev = sample_event("{\"amount\": 12}", "application/json"),
			  .n = 1};
	run_batch(&b);
	batch_clear(&b);
	struct td_event *ev = td_event_create();
	cr_assert_eq(td_event_set(ev, "id", "2"), 0);
	cr_assert_eq(td_event_set(ev, "source", "s"), 0);
	cr_assert_eq(td_event_set(ev, "type", "t"), 0);
	struct batch b2 = {.h = &h, .function = "f", .ev = ev, .n = 1};
	run_batch(&b2);
	batch_clear(&b2);
	harness_finish(&h);
	cr_assert_eq(s->nrequests, 2);
	cr_expect_eq(s->connections, 1);
	char expected[2048];
	snprintf(expected, sizeof expected,
		 "POST /fn?x=1 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: triggerd\r\n"
		 "Accept: */*\r\nce-specversion: 1.0\r\nce-id: evt-1\r\nce-source: /orders\r\n"
		 "ce-type: com.example.order.created\r\nce-subject: order%%2042\r\n"
		 "ce-region: eu-west\r\nContent-Type: application/json\r\nX-Team: payments\r\n"
		 "Content-Length: 14\r\n\r\n",
		 s->port);
	cr_expect_str_eq(s->requests[0].head, expected);
	snprintf(expected, sizeof expected,
		 "POST /fn?x=1 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: triggerd\r\n"
		 "Accept: */*\r\nce-specversion: 1.0\r\nce-id: 2\r\nce-source: s\r\n"
		 "ce-type: t\r\nX-Team: payments\r\nContent-Length: 0\r\n\r\n",
		 s->port);
	cr_expect_str_eq(s->requests[1].head, expected);
	srv_stop(s);
}

/* A URL that passes the configuration check but that libcurl refuses (a port out of
 * range) fails each call for good, with libcurl's reason, as it did when libcurl
 * parsed the text per call. */
Test(http_function, a_url_libcurl_refuses_fails_each_call, .timeout = 30)
{
	struct harness h;
	harness_start(&h,
		      "{ name = \"f\"; kind = \"http\"; url = \"http://127.0.0.1:99999/fn\"; }");
	struct batch b = {.h = &h, .function = "f", .ev = sample_event("{}", NULL), .n = 2};
	run_batch(&b);
	for (int i = 0; i < 2; i++) {
		cr_expect_eq(b.out[i].res.status, TD_RESULT_ERROR, "call %d", i);
		cr_expect_not_null(b.out[i].res.error);
		if (b.out[i].res.error)
			cr_expect_not_null(strstr(b.out[i].res.error,
						  "request to http://127.0.0.1:99999/fn failed: "),
					   "%s", b.out[i].res.error);
	}
	batch_clear(&b);
	harness_finish(&h);
}

/* ---- proxies from the environment ---- */

/* With http_proxy set, the request goes to the proxy (absolute-form target), as
 * libcurl's environment rules say; no_proxy still exempts a host. */
Test(http_function, a_proxy_in_the_environment_is_used, .timeout = 30)
{
	struct srv *proxy = srv_start(&ok_reply, 1);
	char env[64];
	snprintf(env, sizeof env, "http://127.0.0.1:%d", proxy->port);
	cr_assert_eq(setenv("http_proxy", env, 1), 0);
	struct outcome o;
	/* The function's own server: only no_proxy sends the call there. */
	struct srv *s = invoke_once("", &ok_reply, sample_event("{}", NULL), &o);
	cr_expect_eq(o.res.status, TD_RESULT_OK, "%s", o.res.error ? o.res.error : "");
	cr_expect_eq(s->nrequests, 0, "the call bypassed the proxy");
	cr_assert_eq(proxy->nrequests, 1);
	char line[128];
	snprintf(line, sizeof line, "POST http://127.0.0.1:%d/fn HTTP/1.1\r\n", s->port);
	cr_expect_eq(strncmp(proxy->requests[0].head, line, strlen(line)), 0, "%s",
		     proxy->requests[0].head);
	td_result_clear(&o.res);
	srv_stop(s);

	cr_assert_eq(setenv("no_proxy", "127.0.0.1", 1), 0);
	s = invoke_once("", &ok_reply, sample_event("{}", NULL), &o);
	cr_expect_eq(o.res.status, TD_RESULT_OK);
	cr_expect_eq(s->nrequests, 1, "no_proxy was not honoured");
	cr_expect_eq(proxy->nrequests, 1);
	td_result_clear(&o.res);
	srv_stop(s);
	unsetenv("http_proxy");
	unsetenv("no_proxy");
	srv_stop(proxy);
}

/* ---- reload ---- */

static struct td_config *function_config(const struct harness *h, int port)
{
	char fn[128];
	snprintf(fn, sizeof fn,
		 "{ name = \"f\"; kind = \"http\"; url = \"http://127.0.0.1:%d/v2\"; }", port);
	return functions_config(h->dir, fn);
}

/* A reload that changes the URL: the calls after it go to the new URL only, though the
 * function's pooled calls had the old one set. */
Test(http_function, a_reload_with_another_url_sends_there, .timeout = 30)
{
	struct srv *old_srv = srv_start(&ok_reply, 1), *new_srv = srv_start(&ok_reply, 1);
	struct harness h;
	char fn[256];
	snprintf(fn, sizeof fn,
		 "{ name = \"f\"; kind = \"http\"; url = \"http://127.0.0.1:%d/v1\"; }",
		 old_srv->port);
	harness_start(&h, fn);
	struct batch b = {.h = &h, .function = "f", .ev = sample_event("{}", NULL), .n = 4};
	run_batch(&b);
	batch_clear(&b);
	cr_assert_eq(td_router_reload(h.router, function_config(&h, new_srv->port)), 0);
	struct batch b2 = {.h = &h, .function = "f", .ev = sample_event("{}", NULL), .n = 4};
	run_batch(&b2);
	for (int i = 0; i < 4; i++)
		cr_expect_eq(b2.out[i].res.status, TD_RESULT_OK);
	batch_clear(&b2);
	harness_finish(&h);
	cr_expect_eq(old_srv->nrequests, 4);
	cr_expect_eq(new_srv->nrequests, 4);
	for (int i = 0; i < new_srv->nrequests; i++)
		cr_expect_eq(strncmp(new_srv->requests[i].head, "POST /v2 HTTP/1.1\r\n", 19), 0);
	srv_stop(old_srv);
	srv_stop(new_srv);
}

/* ---- outcomes ---- */

Test(http_function, server_error_is_retried_with_its_body_and_retry_after, .timeout = 30)
{
	const struct srv_reply reply = {
	    .status = 503,
	    .headers = "Content-Type: application/json\r\nRetry-After: 7\r\n",
	    .body = "{\"busy\":1}",
	};
	struct outcome o;
	struct srv *s = invoke_once("", &reply, sample_event("{}", NULL), &o);
	char want[128];
	snprintf(want, sizeof want, "HTTP 503 from http://127.0.0.1:%d/fn", s->port);
	cr_expect_eq(o.res.status, TD_RESULT_RETRY);
	cr_expect_eq(o.res.http_status, 503);
	cr_expect_str_eq(o.res.error, want);
	cr_expect_str_eq(o.res.body, "{\"busy\":1}");
	cr_expect_str_eq(o.res.content_type, "application/json");
	cr_expect_eq(o.res.retry_after_ms, 7000);
	cr_expect_not(o.res.throttled);
	td_result_clear(&o.res);
	srv_stop(s);
}

Test(http_function, too_many_requests_is_a_throttle_with_an_http_date, .timeout = 30)
{
	char headers[128];
	time_t when = time(NULL) + 30;
	struct tm tm;
	gmtime_r(&when, &tm);
	strftime(headers, sizeof headers, "Retry-After: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
	const struct srv_reply reply = {.status = 429, .headers = headers};
	struct outcome o;
	struct srv *s = invoke_once("", &reply, sample_event("{}", NULL), &o);
	cr_expect_eq(o.res.status, TD_RESULT_RETRY);
	cr_expect(o.res.throttled);
	cr_expect_eq(o.res.http_status, 429);
	cr_expect(o.res.retry_after_ms > 25000 && o.res.retry_after_ms <= 30000, "%lld",
		  o.res.retry_after_ms);
	td_result_clear(&o.res);
	srv_stop(s);
}

Test(http_function, client_errors_are_permanent_with_an_error_document, .timeout = 30)
{
	const struct srv_reply reply = {.status = 404, .headers = "Retry-After: 5\r\n"};
	struct outcome o;
	struct srv *s = invoke_once("", &reply, sample_event("{}", NULL), &o);
	char want[256];
	snprintf(want, sizeof want,
		 "{\"errorType\":\"HTTPError\",\"errorMessage\":\"HTTP 404 from "
		 "http://127.0.0.1:%d/fn\"}",
		 s->port);
	cr_expect_eq(o.res.status, TD_RESULT_ERROR);
	cr_expect_eq(o.res.http_status, 404);
	cr_expect_str_eq(o.res.body, want);
	cr_expect_eq(o.res.body_len, strlen(want));
	cr_expect_str_eq(o.res.content_type, "application/json");
	cr_expect_eq(o.res.retry_after_ms, 0, "Retry-After is for retryable answers only");
	td_result_clear(&o.res);
	srv_stop(s);
}

Test(http_function, each_status_class_maps_through_a_real_answer, .timeout = 60)
{
	static const struct {
		int status;
		enum td_result_status outcome;
	} cases[] = {
	    {201, TD_RESULT_OK},    {204, TD_RESULT_OK},    {408, TD_RESULT_RETRY},
	    {500, TD_RESULT_RETRY}, {502, TD_RESULT_RETRY}, {400, TD_RESULT_ERROR},
	    {401, TD_RESULT_ERROR}, {422, TD_RESULT_ERROR}, {302, TD_RESULT_ERROR},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct srv_reply reply = {
		    .status = cases[i].status,
		    .headers = cases[i].status == 302 ? "Location: http://127.0.0.1:1/\r\n" : NULL};
		struct outcome o;
		struct srv *s = invoke_once("", &reply, sample_event("{}", NULL), &o);
		cr_expect_eq(o.res.status, cases[i].outcome, "HTTP %d", cases[i].status);
		cr_expect_eq(o.res.http_status, cases[i].status);
		cr_expect_eq(s->nrequests, 1, "HTTP %d: %d requests", cases[i].status,
			     s->nrequests);
		if (cases[i].outcome != TD_RESULT_OK)
			cr_expect_not_null(o.res.body, "HTTP %d: no error document",
					   cases[i].status);
		td_result_clear(&o.res);
		srv_stop(s);
	}
}

Test(http_function, a_slow_function_times_out_as_retryable, .timeout = 30)
{
	const struct srv_reply reply = {.status = 200, .body = "late", .delay_ms = 3000};
	struct outcome o;
	struct srv *s = invoke_once("timeout = \"200ms\";", &reply, sample_event("{}", NULL), &o);
	cr_expect_eq(o.res.status, TD_RESULT_RETRY);
	cr_expect_str_eq(o.res.error, "timed out after 0.20 s");
	cr_expect_eq(o.res.http_status, 504);
	cr_expect_str_eq(
	    o.res.body,
	    "{\"errorType\":\"TimeoutError\",\"errorMessage\":\"timed out after 0.20 s\"}");
	/* libcurl's clock started a little after the kind's: the timeout may end a fraction
	 * of a millisecond before 200 ms on the kind's clock */
	cr_expect_geq(o.res.duration_us, 190000);
	cr_expect_lt(o.res.duration_us, 2000000);
	td_result_clear(&o.res);
	srv_stop(s);
}

Test(http_function, connection_refused_is_retryable, .timeout = 30)
{
	int port;
	int fd = listen_loopback(&port); /* bound, not listening: connections are refused */
	struct harness h;
	char fn[256];
	snprintf(fn, sizeof fn,
		 "{ name = \"f\"; kind = \"http\"; url = \"http://127.0.0.1:%d/\"; }", port);
	harness_start(&h, fn);
	struct batch b = {.h = &h, .function = "f", .ev = sample_event("{}", NULL), .n = 1};
	run_batch(&b);
	char want[128];
	snprintf(want, sizeof want, "connection refused: http://127.0.0.1:%d/", port);
	cr_expect_eq(b.out[0].res.status, TD_RESULT_RETRY);
	cr_expect_str_eq(b.out[0].res.error, want);
	cr_expect_eq(b.out[0].res.http_status, 502);
	cr_expect_not_null(strstr(b.out[0].res.body, "\"errorType\":\"ConnectionError\""));
	batch_clear(&b);
	harness_finish(&h);
	close(fd);
}

Test(http_function, an_empty_reply_is_retryable, .timeout = 30)
{
	const struct srv_reply reply = {.hang_up = true};
	struct outcome o;
	struct srv *s = invoke_once("", &reply, sample_event("{}", NULL), &o);
	char want[128];
	snprintf(want, sizeof want, "request to http://127.0.0.1:%d/fn failed: ", s->port);
	cr_expect_eq(o.res.status, TD_RESULT_RETRY);
	cr_expect_eq(strncmp(o.res.error, want, strlen(want)), 0, "%s", o.res.error);
	td_result_clear(&o.res);
	srv_stop(s);
}

Test(http_function, a_response_over_6mb_fails, .timeout = 30)
{
	size_t big = 6 * 1024 * 1024 + 1;
	char *body = malloc(big);
	memset(body, 'x', big);
	const struct srv_reply reply = {.status = 200, .body = body, .body_len = big};
	struct outcome o;
	struct srv *s = invoke_once("timeout = \"10s\";", &reply, sample_event("{}", NULL), &o);
	cr_expect_eq(o.res.status, TD_RESULT_ERROR);
	cr_expect_not_null(strstr(o.res.error, "is larger than 6 MB"), "%s", o.res.error);
	cr_expect_not_null(strstr(o.res.body, "\"errorType\":\"ResponseTooLarge\""));
	td_result_clear(&o.res);
	srv_stop(s);
	free(body);

	/* Exactly 6 MB is still fine. */
	body = malloc(big - 1);
	memset(body, 'y', big - 1);
	const struct srv_reply fits = {.status = 200, .body = body, .body_len = big - 1};
	s = invoke_once("timeout = \"10s\";", &fits, sample_event("{}", NULL), &o);
	cr_expect_eq(o.res.status, TD_RESULT_OK);
	cr_expect_eq(o.res.body_len, big - 1);
	td_result_clear(&o.res);
	srv_stop(s);
	free(body);
}

Test(http_function, messages_never_show_credentials_or_query, .timeout = 30)
{
	struct srv *s = srv_start(&(struct srv_reply){.status = 500}, 1);
	struct harness h;
	char fn[512];
	snprintf(fn, sizeof fn,
		 "{ name = \"f\"; kind = \"http\"; url = "
		 "\"http://user:hunter2@127.0.0.1:%d/x?token=abc123\"; }",
		 s->port);
	harness_start(&h, fn);
	struct batch b = {.h = &h, .function = "f", .ev = sample_event("{}", NULL), .n = 1};
	run_batch(&b);
	char want[128];
	snprintf(want, sizeof want, "HTTP 500 from http://127.0.0.1:%d/x", s->port);
	cr_expect_str_eq(b.out[0].res.error, want);
	cr_expect_null(strstr(b.out[0].res.body, "hunter2"));
	cr_expect_null(strstr(b.out[0].res.body, "abc123"));
	char v[256];
	cr_expect_not_null(req_header(&s->requests[0], "authorization", v, sizeof v, NULL),
			   "the URL's credentials were not used");
	cr_expect_eq(strncmp(s->requests[0].head, "POST /x?token=abc123 ", 21), 0);
	batch_clear(&b);
	harness_finish(&h);
	srv_stop(s);
}

/* ---- connections, concurrency, reuse, shutdown ---- */

Test(http_function, sequential_calls_reuse_one_connection, .timeout = 30)
{
	/* Answers alternate between failure and success, so pooled calls are reused after
	 * both. */
	const struct srv_reply replies[] = {
	    {.status = 200, .body = "first"},
	    {.status = 500, .body = "oops"},
	    {.status = 200, .headers = "Content-Type: text/plain\r\n", .body = "then fine"},
	};
	struct srv *s = srv_start(replies, 3);
	struct harness h;
	char fn[256];
	snprintf(fn, sizeof fn,
		 "{ name = \"f\"; kind = \"http\"; url = \"http://127.0.0.1:%d/\"; }", s->port);
	harness_start(&h, fn);
	struct batch b = {.h = &h,
			  .function = "f",
			  .ev = sample_event("{\"n\":1}", NULL),
			  .n = 20,
			  .sequential = true};
	run_batch(&b);
	cr_expect_eq(s->nrequests, 20);
	cr_expect_eq(s->connections, 1, "%d connections for 20 sequential calls", s->connections);
	cr_expect_eq(b.out[0].res.status, TD_RESULT_OK);
	cr_expect_str_eq(b.out[0].res.body, "first");
	cr_expect_null(b.out[0].res.content_type);
	cr_expect_eq(b.out[1].res.status, TD_RESULT_RETRY);
	cr_expect_str_eq(b.out[1].res.body, "oops");
	for (int i = 2; i < 20; i++) {
		cr_expect_eq(b.out[i].res.status, TD_RESULT_OK, "call %d", i);
		cr_expect_str_eq(b.out[i].res.body, "then fine", "call %d", i);
		cr_expect_str_eq(b.out[i].res.content_type, "text/plain", "call %d", i);
		char v[64];
		cr_expect_str_eq(req_header(&s->requests[i], "ce-id", v, sizeof v, NULL), "evt-1");
		cr_expect_str_eq(s->requests[i].body, "{\"n\":1}");
	}
	batch_clear(&b);
	harness_finish(&h);
	srv_stop(s);
}

Test(http_function, concurrent_calls_run_in_parallel, .timeout = 30)
{
	struct srv *s =
	    srv_start(&(struct srv_reply){.status = 200, .body = "ok", .delay_ms = 300}, 1);
	struct harness h;
	char fn[256];
	snprintf(
	    fn, sizeof fn,
	    "{ name = \"f\"; kind = \"http\"; url = \"http://127.0.0.1:%d/\"; concurrency = 16; }",
	    s->port);
	harness_start(&h, fn);
	struct batch b = {.h = &h, .function = "f", .ev = sample_event("{}", NULL), .n = 16};
	run_batch(&b);
	for (int i = 0; i < 16; i++)
		cr_expect_eq(b.out[i].res.status, TD_RESULT_OK, "call %d: %s", i,
			     b.out[i].res.error ? b.out[i].res.error : "");
	cr_expect_eq(s->nrequests, 16);
	cr_expect_gt(s->max_active, 1, "the calls never overlapped");
	batch_clear(&b);
	harness_finish(&h);
	srv_stop(s);
}

Test(http_function, shutdown_cancels_transfers_and_answers_callers_busy, .timeout = 30)
{
	struct srv *s =
	    srv_start(&(struct srv_reply){.status = 200, .body = "never", .delay_ms = 5000}, 1);
	struct harness h;
	char fn[256];
	snprintf(fn, sizeof fn,
		 "{ name = \"f\"; kind = \"http\"; url = \"http://127.0.0.1:%d/\"; timeout = "
		 "\"30s\"; }",
		 s->port);
	harness_start(&h, fn);
	struct batch b = {
	    .h = &h, .function = "f", .ev = sample_event("{}", NULL), .n = 4, .stop_after_ms = 300};
	run_batch(&b);
	cr_expect_eq(b.finished, 0);
	/* The router drops its calls, the kind cancels its transfers without completing
	 * them (ASan checks that nothing leaks or is touched after it is freed), and each
	 * direct caller hears a retryable "shutting down". */
	harness_finish(&h);
	for (int i = 0; i < 4; i++) {
		cr_expect(b.out[i].done, "call %d got no answer at shutdown", i);
		cr_expect_eq(b.out[i].res.status, TD_RESULT_RETRY);
		cr_expect_eq(b.out[i].res.http_status, 503);
	}
	batch_clear(&b);
	srv_stop(s);
}

/* ---- the log kind ---- */

Test(http_function, log_kind_logs_one_line_and_returns_the_event, .timeout = 30)
{
	struct harness h;
	harness_start(&h, "{ name = \"show\"; kind = \"log\"; }");
	struct td_event *ev = sample_event("{\n  \"a\": [1, 2],\n  \"s\": \"x y\"\n}", NULL);
	size_t len;
	char *json = td_event_to_json(ev, &len);

	/* The log goes to stderr: catch it in a file. */
	char path[] = "/tmp/td_httpfn_log_XXXXXX";
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	int saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	td_log_set_level(TD_LOG_INFO);
	struct batch b = {.h = &h, .function = "show", .ev = ev, .n = 2, .sequential = true};
	run_batch(&b);
	dup2(saved, STDERR_FILENO);
	close(saved);

	for (int i = 0; i < 2; i++) {
		cr_expect_eq(b.out[i].res.status, TD_RESULT_OK);
		cr_expect_eq(b.out[i].res.http_status, 200);
		cr_expect_str_eq(b.out[i].res.content_type, "application/cloudevents+json");
		cr_expect_eq(b.out[i].res.body_len, len);
		cr_expect_str_eq(b.out[i].res.body, json);
	}
	char log[8192] = "";
	ssize_t n = pread(fd, log, sizeof log - 1, 0);
	cr_assert_gt(n, 0);
	log[n] = '\0';
	close(fd);
	unlink(path);
	int lines = 0;
	for (char *p = strstr(log, "[log:show] event evt-1: {"); p;
	     p = strstr(p + 1, "[log:show] event evt-1: {")) {
		lines++;
		size_t line_len = strcspn(p, "\n");
		char line[4096];
		snprintf(line, sizeof line, "%.*s", (int)line_len, p);
		cr_expect_not_null(strstr(line, "\"data\":{\"a\":[1,2],\"s\":\"x y\"}"),
				   "not compact JSON on one line: %s", line);
		cr_expect_not_null(strstr(line, "\"id\":\"evt-1\""), "%s", line);
	}
	cr_expect_eq(lines, 2, "log:\n%s", log);
	free(json);
	batch_clear(&b);
	harness_finish(&h);
}

Test(http_function, log_kind_cuts_a_long_event_in_its_log_line, .timeout = 30)
{
	struct harness h;
	harness_start(&h, "{ name = \"show\"; kind = \"log\"; }");
	/* A long payload of 3-byte characters: the cut must not split one. */
	size_t n = 3000;
	char *data = malloc(n * 3 + 3);
	data[0] = '"';
	for (size_t i = 0; i < n; i++)
		memcpy(data + 1 + i * 3, "\xe2\x82\xac", 3);
	data[1 + n * 3] = '"';
	data[2 + n * 3] = '\0';
	struct td_event *ev = sample_event(data, "application/json");
	size_t len;
	free(td_event_to_json(ev, &len));

	char path[] = "/tmp/td_httpfn_log_XXXXXX";
	int fd = mkstemp(path);
	int saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	struct batch b = {.h = &h, .function = "show", .ev = ev, .n = 1};
	run_batch(&b);
	dup2(saved, STDERR_FILENO);
	close(saved);
	char log[16384] = "";
	ssize_t got = pread(fd, log, sizeof log - 1, 0);
	cr_assert_gt(got, 0);
	log[got] = '\0';
	close(fd);
	unlink(path);

	char tail[64];
	snprintf(tail, sizeof tail, "... (%zu bytes in all)\n", len);
	char *line = strstr(log, "[log:show] event evt-1: {");
	cr_assert_not_null(line, "%s", log);
	char *end = strstr(line, tail);
	cr_assert_not_null(end, "%s", line);
	/* The text before the tail ends on a whole character. */
	cr_expect_eq(memcmp(end - 3, "\xe2\x82\xac", 3), 0);
	cr_expect_eq(b.out[0].res.body_len, len, "the result is whole");
	free(data);
	batch_clear(&b);
	harness_finish(&h);
}
