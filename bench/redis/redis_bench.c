/*
 * Benchmark of the redis source (bench/redis/run.sh runs it; README.md has figures).
 *
 * In one run, against one redis-server on loopback:
 *   raw      the rate of a plain consumer: XREADGROUP COUNT 100 + XACK with hiredis, over
 *            entries added beforehand;
 *   ceiling  the HTTP ceiling: a libcurl multi client (64 connections, keep-alive)
 *            posting to the same HTTP function, without triggerd;
 *   unbatched, batched
 *            entries/s from XADD through triggerd (async trigger, http function in
 *            CloudEvents binary mode) to the function: the time from the first XADD
 *            until the function has seen every entry; batch_size 1, then 100;
 *   latency  p50/p99 from XADD to the function at a fixed rate (unbatched), from a
 *            CLOCK_MONOTONIC stamp in each entry;
 * and triggerd's peak resident memory (VmHWM) in each triggerd run.
 *
 * The HTTP function is a small epoll server in this program (one thread, keep-alive):
 * it answers 200 "ok" and counts entries (ce-rediscount for a batch, else 1), so the
 * ceiling measures HTTP and not a slow function. Every loop is bounded by a count and
 * a deadline; everything stays on 127.0.0.1.
 *
 * Usage: redis_bench --redis-port P --triggerd PATH [--entries N] [--rate R]
 *                    [--durability fsync|os|memory]   (triggerd's queue; default fsync)
 *                    [--only unbatched|batched]       (that triggerd row alone)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <hiredis/hiredis.h>

#define MAX_CONN    1024
#define MAX_SAMPLES 200000

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "redis_bench: %s\n", what);
	exit(1);
}

/* ---- the HTTP function ---- */

struct conn {
	int fd;
	char *buf;
	size_t len, cap;
};

static _Atomic long long entries_seen;
static _Atomic long long requests_seen;
static long long *samples; /* latency in ns, for the latency run */
static _Atomic long long nsamples;
static _Atomic bool sampling;
static int fn_port;

static void sample(const char *body, size_t len)
{
	const char *t = memmem(body, len, "\"t\":\"", 5);
	if (!t)
		return;
	long long sent = atoll(t + 5);
	long long k = atomic_fetch_add(&nsamples, 1);
	if (k < MAX_SAMPLES)
		samples[k] = now_ns() - sent;
}

/* Handles every complete request in c->buf; false when the connection must close. */
static bool serve(struct conn *c)
{
	static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
				     "Content-Length: 2\r\n\r\nok";
	size_t at = 0;
	for (;;) {
		char *end = memmem(c->buf + at, c->len - at, "\r\n\r\n", 4);
		if (!end)
			break;
		size_t head = (size_t)(end - (c->buf + at)) + 4;
		long long body = 0, count = 1;
		for (char *p = c->buf + at; p < end; p++) {
			if (*p != '\n')
				continue;
			if (strncasecmp(p + 1, "content-length:", 15) == 0)
				body = atoll(p + 16);
			else if (strncasecmp(p + 1, "ce-rediscount:", 14) == 0)
				count = atoll(p + 15);
		}
		if (c->len - at < head + (size_t)body)
			break;
		if (atomic_load(&sampling))
			sample(c->buf + at + head, (size_t)body);
		atomic_fetch_add(&entries_seen, count);
		atomic_fetch_add(&requests_seen, 1);
		if (write(c->fd, answer, sizeof answer - 1) != (ssize_t)(sizeof answer - 1))
			return false;
		at += head + (size_t)body;
	}
	memmove(c->buf, c->buf + at, c->len - at);
	c->len -= at;
	return true;
}

static void *function_main(void *arg)
{
	int lfd = *(int *)arg;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	struct epoll_event events[64];
	for (;;) {
		int n = epoll_wait(ep, events, 64, -1);
		for (int i = 0; i < n; i++) {
			struct conn *c = events[i].data.ptr;
			if (!c) {
				int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
				if (fd < 0)
					continue;
				int one = 1;
				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
				c = calloc(1, sizeof *c);
				c->fd = fd;
				c->cap = 1 << 16;
				c->buf = malloc(c->cap);
				struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
				epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
				continue;
			}
			bool open = true;
			for (;;) {
				if (c->len == c->cap) {
					c->cap *= 2;
					c->buf = realloc(c->buf, c->cap);
				}
				ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len);
				if (r > 0) {
					c->len += (size_t)r;
					continue;
				}
				if (r == 0 || (errno != EAGAIN && errno != EINTR))
					open = false;
				break;
			}
			if (open)
				open = serve(c);
			if (!open) {
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				close(c->fd);
				free(c->buf);
				free(c);
			}
		}
	}
	return NULL;
}

static void start_function(void)
{
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 512) < 0)
		die("cannot listen");
	socklen_t alen = sizeof a;
	getsockname(lfd, (struct sockaddr *)&a, &alen);
	fn_port = ntohs(a.sin_port);
	static int fd;
	fd = lfd;
	pthread_t t;
	pthread_create(&t, NULL, function_main, &fd);
	pthread_detach(t);
}

/* ---- the HTTP ceiling ---- */

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

static double http_ceiling(long long total)
{
	enum { PARALLEL = 64 };
	static const char body[] = "{\"order\":7,\"item\":\"bench\"}";
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/", fn_port);
	CURLM *m = curl_multi_init();
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	h = curl_slist_append(h, "ce-id: x");
	h = curl_slist_append(h, "Expect:");
	long long started = 0, done = 0;
	CURL *easy[PARALLEL];
	for (int i = 0; i < PARALLEL; i++) {
		easy[i] = curl_easy_init();
		curl_easy_setopt(easy[i], CURLOPT_URL, url);
		curl_easy_setopt(easy[i], CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(easy[i], CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, discard);
		curl_easy_setopt(easy[i], CURLOPT_TCP_NODELAY, 1L);
	}
	long long t0 = now_ns(), deadline = t0 + 60LL * 1000000000LL;
	for (int i = 0; i < PARALLEL && started < total; i++, started++)
		curl_multi_add_handle(m, easy[i]);
	while (done < total && now_ns() < deadline) {
		int running;
		curl_multi_perform(m, &running);
		CURLMsg *msg;
		int left;
		while ((msg = curl_multi_info_read(m, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			CURL *e = msg->easy_handle;
			curl_multi_remove_handle(m, e);
			done++;
			if (started < total) {
				curl_multi_add_handle(m, e);
				started++;
			}
		}
		curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	double secs = (double)(now_ns() - t0) / 1e9;
	for (int i = 0; i < PARALLEL; i++)
		curl_easy_cleanup(easy[i]);
	curl_slist_free_all(h);
	curl_multi_cleanup(m);
	return (double)done / secs;
}

/* ---- Redis ---- */

static int redis_port;
static const char *durability = "fsync"; /* of triggerd's queue */

static redisContext *connect_redis(void)
{
	redisContext *c = redisConnect("127.0.0.1", redis_port);
	if (!c || c->err)
		die("cannot connect to redis");
	return c;
}

static void cmd(redisContext *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = redisvCommand(c, fmt, ap);
	va_end(ap);
	if (!r)
		die("redis command failed");
	freeReplyObject(r);
}

/* Adds n entries of about 60 bytes, pipelined 1000 at a time. stamp: a "t" field
 * with the monotonic time of sending. */
static void add_entries(redisContext *c, const char *stream, long long n)
{
	for (long long i = 0; i < n;) {
		long long chunk = n - i < 1000 ? n - i : 1000;
		for (long long k = 0; k < chunk; k++)
			redisAppendCommand(c, "XADD %s * order %lld item bench-item", stream,
					   i + k);
		for (long long k = 0; k < chunk; k++) {
			void *r;
			if (redisGetReply(c, &r) != REDIS_OK)
				die("XADD failed");
			freeReplyObject(r);
		}
		i += chunk;
	}
}

static double raw_consumer(long long n)
{
	redisContext *c = connect_redis();
	cmd(c, "DEL raw");
	cmd(c, "XGROUP CREATE raw g 0 MKSTREAM");
	add_entries(c, "raw", n);
	long long got = 0, t0 = now_ns(), deadline = t0 + 60LL * 1000000000LL;
	while (got < n && now_ns() < deadline) {
		redisReply *r = redisCommand(c, "XREADGROUP GROUP g c COUNT 100 STREAMS raw >");
		if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 1)
			die("XREADGROUP failed");
		redisReply *entries = r->element[0]->element[1];
		const char **argv = malloc((3 + entries->elements) * sizeof *argv);
		argv[0] = "XACK";
		argv[1] = "raw";
		argv[2] = "g";
		for (size_t i = 0; i < entries->elements; i++)
			argv[3 + i] = entries->element[i]->element[0]->str;
		redisReply *a = redisCommandArgv(c, (int)(3 + entries->elements), argv, NULL);
		freeReplyObject(a);
		free(argv);
		got += (long long)entries->elements;
		freeReplyObject(r);
	}
	double rate = (double)got / ((double)(now_ns() - t0) / 1e9);
	cmd(c, "DEL raw");
	redisFree(c);
	return rate;
}

/* ---- triggerd ---- */

struct daemon {
	pid_t pid;
	char dir[256];
	int admin_port;
};

static long long vm_hwm_kb(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	long long kb = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, "VmHWM:", 6) == 0)
			kb = atoll(line + 6);
	fclose(f);
	return kb;
}

/* CPU time (user + system) of a process so far, in microseconds; -1 when unknown. */
static long long cpu_us(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields after the command name, which ends at the last ')': utime is the 14th. */
	char *p = strrchr(buf, ')');
	unsigned long long ut, st;
	if (!p ||
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	long hz = sysconf(_SC_CLK_TCK);
	return hz > 0 ? (long long)((ut + st) * 1000000ULL / (unsigned long long)hz) : -1;
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	bind(fd, (struct sockaddr *)&a, sizeof a);
	socklen_t alen = sizeof a;
	getsockname(fd, (struct sockaddr *)&a, &alen);
	close(fd);
	return ntohs(a.sin_port);
}

static bool ready(int admin_port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)admin_port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	bool ok = false;
	if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
		static const char req[] = "GET /readyz HTTP/1.0\r\n\r\n";
		char buf[64] = "";
		if (write(fd, req, sizeof req - 1) > 0 && read(fd, buf, sizeof buf - 1) > 12)
			ok = strncmp(buf + 9, "200", 3) == 0;
	}
	close(fd);
	return ok;
}

static struct daemon start_triggerd(const char *triggerd, const char *stream, int batch_size)
{
	struct daemon d = {0};
	snprintf(d.dir, sizeof d.dir, "/tmp/redis_bench.%d.%s", (int)getpid(), stream);
	mkdir(d.dir, 0755);
	char cfg[512];
	snprintf(cfg, sizeof cfg, "%s/triggerd.cfg", d.dir);
	FILE *f = fopen(cfg, "w");
	if (!f)
		die("cannot write the configuration");
	fprintf(f,
		"log = { level = \"warn\"; };\nqueue = { durability = \"%s\"; };\n"
		"sources = ( { name = \"bench\"; kind = \"redis\"; url = "
		"\"redis://127.0.0.1:%d/0\"; streams = [\"%s\"]; start = \"0\"; count = 100; "
		"batch_size = %d; } );\n"
		"functions = ( { name = \"fn\"; kind = \"http\"; url = \"http://127.0.0.1:%d/\"; "
		"concurrency = 64; queue_max = %d; } );\n"
		"triggers = ( { name = \"t\"; sources = [\"bench\"]; function = \"fn\"; "
		"invocation = \"async\"; } );\n",
		durability, redis_port, stream, batch_size, fn_port, batch_size > 1 ? 300 : 5000);
	fclose(f);
	d.admin_port = free_port();
	char state[300], admin[64], log[300];
	snprintf(state, sizeof state, "%s/state", d.dir);
	snprintf(admin, sizeof admin, "127.0.0.1:%d", d.admin_port);
	snprintf(log, sizeof log, "%s/triggerd.log", d.dir);
	d.pid = fork();
	if (d.pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 1);
		dup2(fd, 2);
		execl(triggerd, triggerd, "-c", cfg, "--state-dir", state, "--webhook-listen",
		      "127.0.0.1:0", "--admin-listen", admin, (char *)NULL);
		_exit(127);
	}
	long long deadline = now_ns() + 15LL * 1000000000LL;
	while (!ready(d.admin_port)) {
		if (now_ns() > deadline)
			die("triggerd did not become ready (see its log)");
		usleep(20000);
	}
	return d;
}

static void stop_triggerd(struct daemon *d)
{
	kill(d->pid, SIGTERM);
	waitpid(d->pid, NULL, 0);
	char rm[400];
	snprintf(rm, sizeof rm, "rm -rf %s", d->dir);
	if (system(rm) != 0)
		fprintf(stderr, "redis_bench: could not remove %s\n", d->dir);
}

/* Entries/s from the first XADD until the function saw every entry. */
/* Entries/s; *rss_kb: triggerd's VmHWM; *cpu: triggerd's CPU time per entry in us
 * (less sensitive to the machine's load than the rate). */
static double through(const char *triggerd, const char *stream, int batch, long long n,
		      long long *rss_kb, double *cpu)
{
	redisContext *c = connect_redis();
	cmd(c, "DEL %s", stream);
	struct daemon d = start_triggerd(triggerd, stream, batch);
	long long base = atomic_load(&entries_seen), cpu0 = cpu_us(d.pid);
	long long t0 = now_ns(), deadline = t0 + 120LL * 1000000000LL;
	add_entries(c, stream, n);
	while (atomic_load(&entries_seen) - base < n && now_ns() < deadline)
		usleep(500);
	long long got = atomic_load(&entries_seen) - base;
	double rate = (double)got / ((double)(now_ns() - t0) / 1e9);
	*rss_kb = vm_hwm_kb(d.pid);
	long long cpu1 = cpu_us(d.pid);
	*cpu = cpu0 >= 0 && cpu1 >= 0 && got > 0 ? (double)(cpu1 - cpu0) / (double)got : -1;
	stop_triggerd(&d);
	cmd(c, "DEL %s", stream);
	redisFree(c);
	if (got < n)
		fprintf(stderr, "redis_bench: only %lld of %lld entries arrived\n", got, n);
	return rate;
}

static int compare_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return x < y ? -1 : x > y;
}

static void latency(const char *triggerd, long long rate, long long seconds, double *p50,
		    double *p99, long long *rss_kb)
{
	redisContext *c = connect_redis();
	cmd(c, "DEL lat");
	struct daemon d = start_triggerd(triggerd, "lat", 1);
	atomic_store(&nsamples, 0);
	atomic_store(&sampling, true);
	long long total = rate * seconds, interval = 1000000000LL / rate;
	long long t0 = now_ns();
	for (long long i = 0; i < total; i++) {
		long long due = t0 + i * interval;
		struct timespec at = {.tv_sec = due / 1000000000LL, .tv_nsec = due % 1000000000LL};
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) == EINTR)
			;
		char stamp[32];
		snprintf(stamp, sizeof stamp, "%lld", now_ns());
		redisReply *r = redisCommand(c, "XADD lat * t %s", stamp);
		freeReplyObject(r);
	}
	long long deadline = now_ns() + 10LL * 1000000000LL;
	while (atomic_load(&nsamples) < total && now_ns() < deadline)
		usleep(1000);
	atomic_store(&sampling, false);
	long long n = atomic_load(&nsamples);
	if (n > MAX_SAMPLES)
		n = MAX_SAMPLES;
	qsort(samples, (size_t)n, sizeof *samples, compare_ll);
	*p50 = n ? (double)samples[n / 2] / 1000.0 : -1;
	*p99 = n ? (double)samples[(n * 99) / 100] / 1000.0 : -1;
	*rss_kb = vm_hwm_kb(d.pid);
	stop_triggerd(&d);
	cmd(c, "DEL lat");
	redisFree(c);
}

int main(int argc, char **argv)
{
	const char *triggerd = NULL;
	long long entries = 100000, rate = 2000;
	const char *only = NULL; /* "unbatched" or "batched": that row alone */
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--redis-port") == 0)
			redis_port = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--triggerd") == 0)
			triggerd = argv[i + 1];
		else if (strcmp(argv[i], "--entries") == 0)
			entries = atoll(argv[i + 1]);
		else if (strcmp(argv[i], "--rate") == 0)
			rate = atoll(argv[i + 1]);
		else if (strcmp(argv[i], "--durability") == 0)
			durability = argv[i + 1];
		else if (strcmp(argv[i], "--only") == 0)
			only = argv[i + 1];
	}
	if (!redis_port || !triggerd || entries < 1000 || rate < 1 ||
	    (only && strcmp(only, "unbatched") != 0 && strcmp(only, "batched") != 0))
		die("usage: redis_bench --redis-port P --triggerd PATH [--entries N] [--rate R] "
		    "[--durability fsync|os|memory] [--only unbatched|batched]");
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	samples = calloc(MAX_SAMPLES, sizeof *samples);
	start_function();
	if (only) {
		/* One triggerd row alone, for profiling and A/B runs of a change. */
		long long rss;
		double cpu;
		bool one = strcmp(only, "unbatched") == 0;
		double r = through(triggerd, one ? "bench1" : "bench100", one ? 1 : 100,
				   one ? entries : entries * 3, &rss, &cpu);
		printf("triggerd, batch_size %d:%s%10.0f entries/s  (VmHWM %lld KB; CPU %.2f "
		       "us/entry)\n",
		       one ? 1 : 100, one ? "         " : "       ", r, rss, cpu);
		curl_global_cleanup();
		return 0;
	}

	double raw = raw_consumer(entries * 3);
	printf("entries %lld, triggerd queue durability %s\n", entries, durability);
	printf("raw XREADGROUP+XACK consumer:   %10.0f entries/s\n", raw);
	double ceiling = http_ceiling(entries);
	printf("HTTP ceiling (libcurl multi):   %10.0f requests/s\n", ceiling);
	long long rss1, rss2, rss3;
	double cpu1, cpu2;
	double unbatched = through(triggerd, "bench1", 1, entries, &rss1, &cpu1);
	printf("triggerd, batch_size 1:         %10.0f entries/s  (%.0f%% of the ceiling; "
	       "VmHWM %lld KB; CPU %.2f us/entry)\n",
	       unbatched, 100.0 * unbatched / ceiling, rss1, cpu1);
	double batched = through(triggerd, "bench100", 100, entries * 3, &rss2, &cpu2);
	printf("triggerd, batch_size 100:       %10.0f entries/s  (%.0f%% of the raw consumer; "
	       "VmHWM %lld KB; CPU %.2f us/entry)\n",
	       batched, 100.0 * batched / raw, rss2, cpu2);
	double p50, p99;
	latency(triggerd, rate, 5, &p50, &p99, &rss3);
	printf("latency at %lld entries/s:     p50 %.0f us, p99 %.0f us  (VmHWM %lld KB)\n", rate,
	       p50, p99, rss3);
	curl_global_cleanup();
	return 0;
}
