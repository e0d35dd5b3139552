/*
 * The engine loop: calls from other threads all run, in order per thread; timers run in
 * due order and can be cancelled; a timer may stop the loop. libcurl's sockets: a
 * kept-alive connection stays in the epoll set between transfers, one closed by the
 * server leaves it without spinning the loop, and a number closed by libcurl and taken
 * by another owner is that owner's.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../router/engine_loop.h"

#define CALLS_PER_THREAD 20000

struct counter {
	struct td_engine *engine;
	int seen[2];
	bool in_order;
	int total;
};

struct call_arg {
	struct counter *c;
	int thread, seq;
};

static void count_call(void *arg)
{
	struct call_arg *a = arg;
	if (a->c->seen[a->thread] != a->seq)
		a->c->in_order = false;
	a->c->seen[a->thread]++;
	if (++a->c->total == 2 * CALLS_PER_THREAD)
		td_engine_stop(a->c->engine);
	free(a);
}

struct producer {
	struct counter *c;
	int thread;
};

static void *produce(void *arg)
{
	struct producer *p = arg;
	for (int i = 0; i < CALLS_PER_THREAD; i++) {
		struct call_arg *a = malloc(sizeof *a);
		*a = (struct call_arg){p->c, p->thread, i};
		cr_assert_eq(td_engine_call(p->c->engine, count_call, a), 0);
	}
	return NULL;
}

Test(engine, calls_from_threads_all_run_in_order)
{
	struct counter c = {.engine = td_engine_create(), .in_order = true};
	cr_assert_not_null(c.engine);
	pthread_t th[2];
	struct producer p[2] = {{&c, 0}, {&c, 1}};
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, produce, &p[i]);
	td_engine_run(c.engine);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(c.total, 2 * CALLS_PER_THREAD);
	cr_assert(c.in_order);
	td_engine_destroy(c.engine);
}

struct timer_log {
	struct td_engine *engine;
	int order[8];
	int n;
};

struct timer_arg {
	struct timer_log *log;
	int value;
};

static void record(void *arg)
{
	struct timer_arg *a = arg;
	a->log->order[a->log->n++] = a->value;
	if (a->value == 99)
		td_engine_stop(a->log->engine);
}

Test(engine, timers_run_in_due_order_and_cancel)
{
	struct timer_log log = {.engine = td_engine_create()};
	struct timer_arg args[] = {{&log, 3}, {&log, 1}, {&log, 2}, {&log, 4}, {&log, 99}};
	td_timer_add(log.engine, 30, record, &args[0]);
	td_timer_add(log.engine, 10, record, &args[1]);
	td_timer_add(log.engine, 20, record, &args[2]);
	struct td_timer *cancelled = td_timer_add(log.engine, 25, record, &args[3]);
	td_timer_add(log.engine, 50, record, &args[4]);
	cr_assert(td_timer_cancel(log.engine, cancelled));
	long long start = td_now_ms();
	td_engine_run(log.engine);
	cr_assert_geq(td_now_ms() - start, 50);
	cr_assert_eq(log.n, 4);
	int expected[] = {1, 2, 3, 99};
	for (int i = 0; i < 4; i++)
		cr_assert_eq(log.order[i], expected[i]);
	td_engine_destroy(log.engine);
}

static void stop_engine(void *arg)
{
	td_engine_stop(arg);
}

Test(engine, calls_made_before_run_start_run_first)
{
	struct timer_log log = {.engine = td_engine_create()};
	struct timer_arg first = {&log, 7};
	cr_assert_eq(td_engine_call(log.engine, record, &first), 0);
	cr_assert_eq(td_engine_call(log.engine, stop_engine, log.engine), 0);
	td_engine_run(log.engine);
	cr_assert_eq(log.n, 1);
	cr_assert_eq(log.order[0], 7);
	td_engine_destroy(log.engine);
}

static void bump(void *arg)
{
	(*(int *)arg)++;
}

/* A call accepted after the loop ended is dropped at destroy, but one made with
 * td_engine_call_always runs there, once, so the reference it carries is not lost. */
Test(engine, calls_left_at_destroy_run_only_when_always)
{
	struct td_engine *e = td_engine_create();
	int plain = 0, always = 0;
	cr_assert_not_null(e);
	cr_assert_eq(td_engine_call(e, bump, &plain), 0);
	cr_assert_eq(td_engine_call_always(e, bump, &always), 0);
	td_engine_destroy(e);
	cr_expect_eq(plain, 0);
	cr_expect_eq(always, 1);
}

/* ---- libcurl's sockets in epoll ----
 *
 * A small HTTP/1.1 server thread on loopback answers every request with "ok"; in
 * close mode it closes each connection after its answer (without saying so, so libcurl
 * keeps the connection for reuse and finds it dead later). The epoll set is read from
 * /proc/self/fdinfo of the engine's epoll fds (the eventpoll fds that td_engine_create
 * added to the process). */

struct ok_srv {
	int fd, port;
	bool close_each;
	atomic_bool stop;
	atomic_int requests, connections;
	pthread_t thread;
};

/* Serves one connection until the client closes it (or once, in close mode). */
static void ok_srv_conn(struct ok_srv *s, int fd)
{
	char buf[8192];
	size_t have = 0;
	for (;;) {
		char *end = memmem(buf, have, "\r\n\r\n", 4);
		if (!end) {
			struct pollfd p = {.fd = fd, .events = POLLIN};
			if (atomic_load(&s->stop) || have == sizeof buf)
				return;
			if (poll(&p, 1, 20) <= 0)
				continue;
			ssize_t n = recv(fd, buf + have, sizeof buf - have, 0);
			if (n <= 0)
				return;
			have += (size_t)n;
			continue;
		}
		size_t head = (size_t)(end - buf) + 4, body = 0;
		const char *cl = strcasestr(buf, "\r\ncontent-length:");
		if (cl && cl < end)
			body = strtoul(cl + 17, NULL, 10);
		if (head + body > sizeof buf)
			return;
		if (have < head + body) {
			ssize_t n = recv(fd, buf + have, sizeof buf - have, 0);
			if (n <= 0)
				return;
			have += (size_t)n;
			continue;
		}
		atomic_fetch_add(&s->requests, 1);
		static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
		if (send(fd, reply, sizeof reply - 1, MSG_NOSIGNAL) < 0 || s->close_each)
			return;
		memmove(buf, buf + head + body, have - head - body);
		have -= head + body;
	}
}

static void *ok_srv_main(void *arg)
{
	struct ok_srv *s = arg;
	while (!atomic_load(&s->stop)) {
		struct pollfd p = {.fd = s->fd, .events = POLLIN};
		if (poll(&p, 1, 20) <= 0)
			continue;
		int fd = accept(s->fd, NULL, NULL);
		if (fd < 0)
			continue;
		atomic_fetch_add(&s->connections, 1);
		ok_srv_conn(s, fd); /* one connection at a time: the tests are sequential */
		close(fd);
	}
	return NULL;
}

static struct ok_srv *ok_srv_start(bool close_each)
{
	struct ok_srv *s = calloc(1, sizeof *s);
	s->close_each = close_each;
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(s->fd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	cr_assert_eq(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
	socklen_t len = sizeof a;
	getsockname(s->fd, (struct sockaddr *)&a, &len);
	s->port = ntohs(a.sin_port);
	cr_assert_eq(listen(s->fd, 16), 0);
	pthread_create(&s->thread, NULL, ok_srv_main, s);
	return s;
}

static void ok_srv_stop(struct ok_srv *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->thread, NULL);
	close(s->fd);
	free(s);
}

/* The eventpoll fds of this process, as a bit set over fds 0..1023. */
static void eventpoll_fds(unsigned char set[128])
{
	memset(set, 0, 128);
	DIR *d = opendir("/proc/self/fd");
	cr_assert_not_null(d);
	struct dirent *de;
	while ((de = readdir(d))) {
		char path[64], target[64];
		int fd = atoi(de->d_name);
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
		ssize_t n = readlink(path, target, sizeof target - 1);
		if (n <= 0 || fd >= 1024)
			continue;
		target[n] = '\0';
		if (strcmp(target, "anon_inode:[eventpoll]") == 0)
			set[fd / 8] |= (unsigned char)(1u << (fd % 8));
	}
	closedir(d);
}

/* The epoll fds of an engine: the eventpoll fds that td_engine_create added (one today;
 * more if the engine ever splits its loop), ended by -1. */
struct epolls {
	int fd[5];
};

static struct td_engine *engine_with_epoll(struct epolls *ep)
{
	unsigned char before[128], after[128];
	eventpoll_fds(before);
	struct td_engine *e = td_engine_create();
	cr_assert_not_null(e);
	eventpoll_fds(after);
	int n = 0;
	for (int fd = 0; fd < 1024 && n < 4; fd++)
		if ((after[fd / 8] & (1u << (fd % 8))) && !(before[fd / 8] & (1u << (fd % 8))))
			ep->fd[n++] = fd;
	ep->fd[n] = -1;
	cr_assert_gt(n, 0, "no eventpoll fd appeared");
	return e;
}

/* The event mask fd is registered with in the engine's epoll sets, or -1 when it is in
 * none of them. */
static long epoll_mask_of(const struct epolls *ep, int fd)
{
	long mask = -1;
	for (int i = 0; ep->fd[i] >= 0; i++) {
		char path[64], line[256];
		snprintf(path, sizeof path, "/proc/self/fdinfo/%d", ep->fd[i]);
		FILE *f = fopen(path, "r");
		cr_assert_not_null(f);
		while (fgets(line, sizeof line, f)) {
			int tfd;
			unsigned long events;
			if (sscanf(line, "tfd: %d events: %lx", &tfd, &events) == 2 && tfd == fd)
				mask = (long)events;
		}
		fclose(f);
	}
	return mask;
}

struct xfer_run {
	struct td_engine *engine;
	CURL *easy;
	int done, wanted;
	CURLcode codes[16];
	curl_socket_t socks[16];
	curl_socket_t last_sock; /* the socket of the latest connection */
	char body[16][8];
	size_t body_len[16];
	bool watched_ran;
};

static size_t xfer_body(char *p, size_t size, size_t n, void *arg)
{
	struct xfer_run *r = arg;
	size_t len = size * n, room = sizeof r->body[0] - 1 - r->body_len[r->done];
	if (len > room)
		len = room;
	memcpy(r->body[r->done] + r->body_len[r->done], p, len);
	r->body_len[r->done] += len;
	return size * n;
}

static int xfer_sockopt(void *arg, curl_socket_t fd, curlsocktype purpose)
{
	struct xfer_run *r = arg;
	(void)purpose;
	r->last_sock = fd;
	return CURL_SOCKOPT_OK;
}

static void xfer_done(void *arg, CURLcode code)
{
	struct xfer_run *r = arg;
	r->codes[r->done] = code;
	r->socks[r->done] = r->last_sock;
	r->done++;
	td_engine_stop(r->engine);
}

static void xfer_guard(void *arg)
{
	td_engine_stop(arg);
}

/* Runs one transfer of r->easy on the engine; returns its code. */
static CURLcode xfer_one(struct xfer_run *r)
{
	int before = r->done;
	cr_assert_eq(td_engine_curl_start(r->engine, r->easy, xfer_done, r), 0);
	struct td_timer *guard = td_timer_add(r->engine, 10000, xfer_guard, r->engine);
	td_engine_run(r->engine);
	td_timer_cancel(r->engine, guard);
	cr_assert_eq(r->done, before + 1, "the transfer did not finish in 10 s");
	return r->codes[before];
}

static CURL *xfer_easy(struct xfer_run *r, int port)
{
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
	CURL *easy = curl_easy_init();
	cr_assert_not_null(easy);
	curl_easy_setopt(easy, CURLOPT_URL, url);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, "x");
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, xfer_body);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_SOCKOPTFUNCTION, xfer_sockopt);
	curl_easy_setopt(easy, CURLOPT_SOCKOPTDATA, r);
	return easy;
}

static void sleep_on_engine(struct td_engine *e, int ms)
{
	td_timer_add(e, ms, xfer_guard, e);
	td_engine_run(e);
}

/* A kept-alive connection stays in the epoll set between transfers (no EPOLL_CTL_DEL
 * and ADD per call), and every transfer on it works. */
Test(engine, a_kept_alive_socket_stays_watched_between_transfers, .timeout = 30)
{
	struct ok_srv *s = ok_srv_start(false);
	struct xfer_run r = {0};
	struct epolls epfd;
	r.engine = engine_with_epoll(&epfd);
	r.easy = xfer_easy(&r, s->port);
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(xfer_one(&r), CURLE_OK, "transfer %d", i);
		cr_expect_str_eq(r.body[i], "ok");
		cr_assert_geq(r.socks[i], 0);
		cr_expect_eq(r.socks[i], r.socks[0], "transfer %d on another connection", i);
		/* Parked: still registered for input, though libcurl does not watch it. */
		long mask = epoll_mask_of(&epfd, r.socks[i]);
		cr_expect(mask >= 0 && (mask & EPOLLIN),
			  "socket %d not watched for input after transfer %d (mask %ld)",
			  r.socks[i], i, mask);
	}
	cr_expect_eq(atomic_load(&s->connections), 1);
	cr_expect_eq(atomic_load(&s->requests), 5);
	curl_easy_cleanup(r.easy);
	td_engine_destroy(r.engine);
	ok_srv_stop(s);
}

/* The server closes each connection after its answer: the parked socket turns readable
 * (end of stream), leaves the epoll set instead of waking the loop forever, and the next
 * transfer finds the connection dead and opens another, possibly with the same fd
 * number, which is registered anew. */
Test(engine, a_parked_socket_closed_by_the_server_leaves_epoll, .timeout = 30)
{
	struct ok_srv *s = ok_srv_start(true);
	struct xfer_run r = {0};
	struct epolls epfd;
	r.engine = engine_with_epoll(&epfd);
	r.easy = xfer_easy(&r, s->port);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(xfer_one(&r), CURLE_OK, "transfer %d", i);
		cr_expect_str_eq(r.body[i], "ok");
		struct rusage before, after;
		getrusage(RUSAGE_SELF, &before);
		sleep_on_engine(r.engine, 200);
		getrusage(RUSAGE_SELF, &after);
		long long cpu_us = (after.ru_utime.tv_sec - before.ru_utime.tv_sec) * 1000000LL +
				   (after.ru_utime.tv_usec - before.ru_utime.tv_usec) +
				   (after.ru_stime.tv_sec - before.ru_stime.tv_sec) * 1000000LL +
				   (after.ru_stime.tv_usec - before.ru_stime.tv_usec);
		cr_expect_lt(cpu_us, 100000, "the loop spun on a closed connection: %lld us of CPU",
			     cpu_us);
		cr_expect_eq(epoll_mask_of(&epfd, r.socks[i]), -1,
			     "socket %d still watched after the server closed it", r.socks[i]);
	}
	cr_expect_eq(atomic_load(&s->requests), 4);
	cr_expect_eq(atomic_load(&s->connections), 4);
	curl_easy_cleanup(r.easy);
	td_engine_destroy(r.engine);
	ok_srv_stop(s);
}

static void watched_readable(void *arg, int fd)
{
	struct xfer_run *r = arg;
	uint64_t v;
	ssize_t n = read(fd, &v, sizeof v);
	(void)n;
	r->watched_ran = true;
	td_engine_stop(r->engine);
}

/* libcurl closes a connection (CURLOPT_FORBID_REUSE): its fd leaves the epoll set, and
 * when the number goes to another owner (an eventfd watched by the engine) that owner
 * gets its events and libcurl's next socket is watched correctly. */
Test(engine, a_closed_socket_number_reused_by_another_owner, .timeout = 30)
{
	struct ok_srv *s = ok_srv_start(false);
	struct xfer_run r = {0};
	struct epolls epfd;
	r.engine = engine_with_epoll(&epfd);
	r.easy = xfer_easy(&r, s->port);
	curl_easy_setopt(r.easy, CURLOPT_FORBID_REUSE, 1L);
	/* Each transfer closes its socket; the next one usually gets the same number. */
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(xfer_one(&r), CURLE_OK, "transfer %d", i);
		cr_expect_str_eq(r.body[i], "ok");
		cr_expect_eq(epoll_mask_of(&epfd, r.socks[i]), -1, "closed socket %d still watched",
			     r.socks[i]);
	}
	int old = r.socks[2];
	/* Take the number (the lowest free one; a lower one freed meanwhile is held). */
	int held[16], nheld = 0, efd;
	while ((efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) != old && efd >= 0 && nheld < 16)
		held[nheld++] = efd;
	cr_assert_eq(efd, old, "the closed socket's number %d was not reused (got %d)", old, efd);
	cr_assert_eq(td_engine_watch_fd(r.engine, efd, watched_readable, &r), 0);
	uint64_t one = 1;
	cr_assert_eq(write(efd, &one, sizeof one), (ssize_t)sizeof one);
	struct td_timer *guard = td_timer_add(r.engine, 5000, xfer_guard, r.engine);
	td_engine_run(r.engine);
	td_timer_cancel(r.engine, guard);
	cr_expect(r.watched_ran, "the eventfd that took the number got no event");
	cr_assert_eq(xfer_one(&r), CURLE_OK);
	cr_expect_str_eq(r.body[3], "ok");
	cr_expect_neq(r.socks[3], efd);
	cr_expect_eq(atomic_load(&s->requests), 4);
	curl_easy_cleanup(r.easy);
	td_engine_destroy(r.engine);
	close(efd);
	for (int i = 0; i < nheld; i++)
		close(held[i]);
	ok_srv_stop(s);
}
