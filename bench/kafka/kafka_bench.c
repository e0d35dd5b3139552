/*
 * Benchmark of the kafka source (bench/kafka/run.sh runs it; README.md has figures).
 *
 * In one run, against one mock cluster (tests/tools/mock_kafka: librdkafka's mock
 * cluster in a process of its own, the only Kafka available here) holding one topic of
 * P partitions filled beforehand with N records of about 100 bytes:
 *   raw       the rate of a plain librdkafka high-level consumer (its own group, from
 *             the earliest offset) over the same records: first record to the N-th;
 *   ceiling   the HTTP ceiling: a libcurl multi client (64 connections, keep-alive)
 *             posting requests shaped like triggerd's (ce-* headers, the record as the
 *             body) to the same HTTP function, without triggerd;
 *   unbatched records/s from the cluster through triggerd (a sync trigger, an http
 *             function in CloudEvents binary mode) to the function, batch_size 1:
 *             first record at the function to the last;
 *   batched   the same with batch_size 100 (records counted from ce-kafkacount);
 * and triggerd's peak resident memory (VmHWM) in each triggerd run. triggerd reads with
 * ordering "none" over the P partitions and batches_in_flight 8 in both phases: up to
 * 8 x P invocations in flight, with the default 8 partitions the function's concurrency
 * of 64 (8 x P x 100 records batched).
 *
 * The HTTP function is a small epoll server in this program (one thread, keep-alive,
 * 200 and a short body), so that the ceiling measures HTTP and not a slow function.
 * Every loop is bounded by a count and a deadline; everything stays on 127.0.0.1.
 *
 * For looking into a run (README.md): KAFKA_BENCH_RDKAFKA="name=value,..." adds
 * librdkafka properties to triggerd's source, KAFKA_BENCH_LOG its log level,
 * KAFKA_BENCH_DEADLINE=S a shorter deadline for a triggerd phase, KAFKA_BENCH_HOLD=S
 * keeps triggerd S s after its phase, KAFKA_BENCH_INFLIGHT=N sets batches_in_flight for
 * the batched phase. A phase that misses its count prints how far it came and
 * triggerd's /metrics before failing.
 *
 * Usage: kafka_bench --triggerd PATH --mock PATH [--records N] [--unbatched N]
 *                    [--partitions P]
 *        kafka_bench --serve PORT   (only the function, printing records/s each second)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <librdkafka/rdkafka.h>

#define MAX_CONN    1024
#define DEADLINE_S  120 /* no phase runs longer */
#define CONNECTIONS 64

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "kafka_bench: %s\n", what);
	exit(1);
}

/* ---- the HTTP function: an epoll server counting records ---- */

struct conn {
	int fd;
	char *buf;
	size_t len, cap;
};

static _Atomic long long records_seen, requests_seen;
static _Atomic long long first_seen_ns, last_seen_ns;
static int fn_port;

/* Answers every complete request in c's buffer; false when the connection must close. */
static bool serve(struct conn *c)
{
	static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				     "Content-Length: 11\r\n\r\n{\"ok\":true}";
	for (;;) {
		char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
		if (!end)
			return true;
		size_t head = (size_t)(end - c->buf) + 4, body = 0;
		long long count = 1;
		for (char *line = c->buf; line < end;) {
			char *eol = memmem(line, (size_t)(end - line) + 2, "\r\n", 2);
			if (!eol)
				break;
			if (strncasecmp(line, "Content-Length:", 15) == 0)
				body = strtoul(line + 15, NULL, 10);
			else if (strncasecmp(line, "ce-kafkacount:", 14) == 0)
				count = strtoll(line + 14, NULL, 10);
			line = eol + 2;
		}
		if (c->len < head + body)
			return true;
		if (write(c->fd, answer, sizeof answer - 1) != (ssize_t)(sizeof answer - 1))
			return false;
		long long t = now_ns(), zero = 0;
		atomic_compare_exchange_strong(&first_seen_ns, &zero, t);
		atomic_fetch_add(&records_seen, count);
		atomic_fetch_add(&requests_seen, 1);
		atomic_store(&last_seen_ns, t);
		memmove(c->buf, c->buf + head + body, c->len - head - body);
		c->len -= head + body;
	}
}

static void *function_main(void *arg)
{
	int lfd = (int)(long)arg, ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL}, evs[64];
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	for (;;) {
		int n = epoll_wait(ep, evs, 64, 1000);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (!c) {
				int fd = accept(lfd, NULL, NULL), one = 1;
				if (fd < 0)
					continue;
				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
				c = calloc(1, sizeof *c);
				c->fd = fd;
				c->cap = 1 << 16;
				c->buf = malloc(c->cap);
				struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
				epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
				continue;
			}
			if (c->len == c->cap) {
				c->cap *= 2;
				c->buf = realloc(c->buf, c->cap);
			}
			ssize_t got = read(c->fd, c->buf + c->len, c->cap - c->len);
			if (got > 0) {
				c->len += (size_t)got;
				if (serve(c))
					continue;
			}
			epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
			close(c->fd);
			free(c->buf);
			free(c);
		}
	}
	return NULL;
}

static void start_function(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				.sin_port = htons((unsigned short)port)};
	socklen_t len = sizeof a;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, MAX_CONN) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		die("cannot listen for the function");
	fn_port = ntohs(a.sin_port);
	pthread_t t;
	pthread_create(&t, NULL, function_main, (void *)(long)fd);
	pthread_detach(t);
}

static void reset_counts(void)
{
	atomic_store(&records_seen, 0);
	atomic_store(&requests_seen, 0);
	atomic_store(&first_seen_ns, 0);
	atomic_store(&last_seen_ns, 0);
}

/* ---- the HTTP ceiling ---- */

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

static const char record_body[] = "{\"i\":12345,\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
				  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}";

static double http_ceiling(long long total)
{
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/", fn_port);
	struct curl_slist *h = NULL;
	const char *hs[] = {"Content-Type: application/json",
			    "ce-specversion: 1.0",
			    "ce-id: bench-3-12345",
			    "ce-source: triggerd/kafka/bench",
			    "ce-type: triggerd.kafka.record",
			    "ce-subject: k12345",
			    "ce-time: 2026-11-27T08:00:00.123Z",
			    "ce-kafkatopic: bench",
			    "ce-kafkapartition: 3",
			    "ce-kafkaoffset: 12345",
			    "Expect:"};
	for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
		h = curl_slist_append(h, hs[i]);
	CURLM *m = curl_multi_init();
	curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)CONNECTIONS);
	CURL *easy[CONNECTIONS];
	long long started = 0, done = 0, t0 = now_ns(), deadline = t0 + DEADLINE_S * 1000000000LL;
	for (int i = 0; i < CONNECTIONS; i++) {
		easy[i] = curl_easy_init();
		curl_easy_setopt(easy[i], CURLOPT_URL, url);
		curl_easy_setopt(easy[i], CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(easy[i], CURLOPT_POSTFIELDS, record_body);
		curl_easy_setopt(easy[i], CURLOPT_POSTFIELDSIZE, (long)(sizeof record_body - 1));
		curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, discard);
		if (started < total) {
			curl_multi_add_handle(m, easy[i]);
			started++;
		}
	}
	while (done < total && now_ns() < deadline) {
		int running, left;
		curl_multi_perform(m, &running);
		CURLMsg *msg;
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
	for (int i = 0; i < CONNECTIONS; i++) {
		curl_multi_remove_handle(m, easy[i]);
		curl_easy_cleanup(easy[i]);
	}
	curl_multi_cleanup(m);
	curl_slist_free_all(h);
	return (double)done / secs;
}

/* ---- Kafka: the mock cluster, filling, the raw consumer ---- */

static pid_t mock_pid;

static char *start_mock(const char *mock, int partitions)
{
	int fds[2];
	char topic[64];
	snprintf(topic, sizeof topic, "bench:%d", partitions);
	if (pipe(fds) < 0)
		die("pipe");
	mock_pid = fork();
	if (mock_pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		execl(mock, mock, "--topic", topic, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	FILE *f = fdopen(fds[0], "r");
	static char line[512];
	if (!f || !fgets(line, sizeof line, f) || strncmp(line, "bootstrap=", 10) != 0)
		die("mock_kafka did not start");
	line[strcspn(line, "\n")] = '\0';
	return line + 10;
}

static void stop_mock(void)
{
	if (mock_pid > 0) {
		kill(mock_pid, SIGTERM);
		waitpid(mock_pid, NULL, 0);
	}
}

static void fill(const char *bootstrap, long long n, int partitions)
{
	char err[512], key[32], value[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err);
	rd_kafka_conf_set(conf, "linger.ms", "20", err, sizeof err);
	rd_kafka_conf_set(conf, "queue.buffering.max.messages", "2000000", err, sizeof err);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
	if (!rk)
		die(err);
	for (long long i = 0; i < n; i++) {
		int kl = snprintf(key, sizeof key, "k%lld", i);
		int vl = snprintf(
		    value, sizeof value, "{\"i\":%lld,\"pad\":\"%.*s\"}", i, 80,
		    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		    "xxxxxxxxxxxxxxxxxxxxxxxx");
		while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("bench"),
					 RD_KAFKA_V_PARTITION((int)(i % partitions)),
					 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
					 RD_KAFKA_V_KEY(key, (size_t)kl),
					 RD_KAFKA_V_VALUE(value, (size_t)vl),
					 RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
			rd_kafka_poll(rk, 10);
	}
	if (rd_kafka_flush(rk, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR)
		die("the records could not be produced");
	rd_kafka_destroy(rk);
}

static double raw_consumer(const char *bootstrap, long long n)
{
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err);
	rd_kafka_conf_set(conf, "group.id", "raw", err, sizeof err);
	rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", err, sizeof err);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
	if (!rk)
		die(err);
	rd_kafka_poll_set_consumer(rk);
	rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(topics, "bench", RD_KAFKA_PARTITION_UA);
	rd_kafka_subscribe(rk, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	long long got = 0, t0 = 0, t1 = 0, deadline = now_ns() + DEADLINE_S * 1000000000LL;
	while (got < n && now_ns() < deadline) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		if (!m)
			continue;
		if (!m->err) {
			if (!got)
				t0 = now_ns();
			got++;
		}
		rd_kafka_message_destroy(m);
	}
	t1 = now_ns();
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	if (got < n) {
		fprintf(stderr,
			"kafka_bench: the raw consumer read %lld of %lld records (the mock cluster "
			"keeps only the newest records of a partition: fewer --records?)\n",
			got, n);
		exit(1);
	}
	return (double)got / ((double)(t1 - t0) / 1e9);
}

/* ---- triggerd ---- */

static long long vm_hwm_kb(pid_t pid)
{
	char path[64], line[256];
	long long kb = -1;
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, "VmHWM:", 6) == 0)
			kb = strtoll(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return kb;
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	bind(fd, (struct sockaddr *)&a, sizeof a);
	getsockname(fd, (struct sockaddr *)&a, &len);
	close(fd);
	return ntohs(a.sin_port);
}

/* Records/s through triggerd with batch_size batch; *hwm_kb: its peak resident memory. */
static double through(const char *triggerd, const char *bootstrap, int batch, long long n,
		      long long *hwm_kb)
{
	char dir[] = "/tmp/kafka-bench.XXXXXX", cfg[256], state[256], wl[64], al[64];
	if (!mkdtemp(dir))
		die("mkdtemp");
	snprintf(cfg, sizeof cfg, "%s/bench.cfg", dir);
	snprintf(state, sizeof state, "%s/state", dir);
	/* KAFKA_BENCH_RDKAFKA="name=value,..." adds librdkafka properties (experiments). */
	char extra[1024] = "";
	const char *env = getenv("KAFKA_BENCH_RDKAFKA");
	for (size_t used = 0; env && *env && used < sizeof extra;) {
		size_t len = strcspn(env, ",");
		used += (size_t)snprintf(extra + used, sizeof extra - used, ", \"%.*s\"", (int)len,
					 env);
		env += len + (env[len] == ',');
	}
	const char *level = getenv("KAFKA_BENCH_LOG"); /* triggerd's log level, default warn */
	/* batches_in_flight 8 (see the top); KAFKA_BENCH_INFLIGHT=N for the batched phase. */
	const char *bif = getenv("KAFKA_BENCH_INFLIGHT");
	int inflight = batch > 1 && bif && atoi(bif) > 0 ? atoi(bif) : 8;
	FILE *f = fopen(cfg, "w");
	fprintf(f,
		"log = { level = \"%s\"; };\n"
		"sources = ( { name = \"bench\"; kind = \"kafka\"; brokers = [\"%s\"];\n"
		"  topics = [\"bench\"]; group = \"triggerd-%d\"; start = \"earliest\";\n"
		"  ordering = \"none\"; batches_in_flight = %d; batch_size = %d;\n"
		"  rdkafka = [\"fetch.wait.max.ms=10\"%s]; } );\n"
		"functions = ( { name = \"fn\"; kind = \"http\"; url = \"http://127.0.0.1:%d/\";\n"
		"  concurrency = 64; timeout = \"10s\"; } );\n"
		"triggers = ( { name = \"t\"; sources = [\"bench\"]; function = \"fn\";\n"
		"  invocation = \"sync\"; } );\n",
		level ? level : "warn", bootstrap, batch, inflight, batch, extra, fn_port);
	fclose(f);
	pid_t pid = -1;
	long long deadline = 0;
	/* KAFKA_BENCH_DEADLINE=S: a shorter deadline for triggerd (hunting stalls). */
	const char *dl = getenv("KAFKA_BENCH_DEADLINE");
	int deadline_s = dl && atoi(dl) > 0 ? atoi(dl) : DEADLINE_S;
	/* The listen ports are picked free but may be taken by someone else before triggerd
	 * binds them (a shared machine): a triggerd that exits at once is started again. */
	for (int attempt = 0; attempt < 5; attempt++) {
		snprintf(wl, sizeof wl, "127.0.0.1:%d", free_port());
		snprintf(al, sizeof al, "127.0.0.1:%d", free_port());
		reset_counts();
		pid = fork();
		if (pid == 0) {
			execl(triggerd, triggerd, "-c", cfg, "--state-dir", state,
			      "--webhook-listen", wl, "--admin-listen", al, (char *)NULL);
			_exit(127);
		}
		deadline = now_ns() + deadline_s * 1000000000LL;
		bool exited = false;
		while (atomic_load(&records_seen) < n && now_ns() < deadline) {
			if (waitpid(pid, NULL, WNOHANG) == pid) {
				exited = true;
				break;
			}
			usleep(2000);
		}
		if (!exited)
			break;
		fprintf(stderr, "kafka_bench: triggerd exited early; starting it again\n");
		pid = -1;
	}
	if (pid < 0)
		die("triggerd does not start");
	long long seen = atomic_load(&records_seen);
	long long t0 = atomic_load(&first_seen_ns), t1 = atomic_load(&last_seen_ns);
	*hwm_kb = vm_hwm_kb(pid);
	/* KAFKA_BENCH_HOLD=S: triggerd is left running S s more (to look at it). */
	const char *hold = getenv("KAFKA_BENCH_HOLD");
	if (hold && atoi(hold) > 0) {
		fprintf(stderr, "kafka_bench: triggerd (pid %d, batch_size %d) held %d s\n",
			(int)pid, batch, atoi(hold));
		sleep((unsigned)atoi(hold));
	}
	if (seen < n) {
		/* For the post-mortem: how far it came, and triggerd's own metrics. */
		fprintf(stderr,
			"kafka_bench: batch_size %d: %lld of %lld records (with duplicates) after "
			"%d s, none in the last %.1f s; triggerd's /metrics:\n",
			batch, seen, n, deadline_s, t1 ? (double)(now_ns() - t1) / 1e9 : -1.0);
		char url[96];
		snprintf(url, sizeof url, "http://%s/metrics", al);
		CURL *h = curl_easy_init();
		if (h) {
			curl_easy_setopt(h, CURLOPT_URL, url);
			curl_easy_setopt(h, CURLOPT_WRITEDATA, stderr);
			curl_easy_setopt(h, CURLOPT_TIMEOUT, 5L);
			curl_easy_perform(h);
			curl_easy_cleanup(h);
		}
	}
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "kafka_bench: cannot remove %s\n", dir);
	if (seen < n)
		die("triggerd did not deliver every record in time");
	return (double)seen / ((double)(t1 - t0) / 1e9);
}

int main(int argc, char **argv)
{
	const char *triggerd = NULL, *mock = NULL;
	long long records = 200000, unbatched = 50000;
	int partitions = 8;
	if (argc == 3 && strcmp(argv[1], "--serve") == 0) {
		/* Only the function, on a given port, printing records/s each second. */
		signal(SIGPIPE, SIG_IGN);
		start_function(atoi(argv[2]));
		for (long long last = 0;; sleep(1)) {
			long long now = atomic_load(&records_seen);
			printf("%lld records/s (%lld requests)\n", now - last,
			       (long long)atomic_load(&requests_seen));
			fflush(stdout);
			last = now;
		}
	}
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--triggerd") == 0)
			triggerd = argv[i + 1];
		else if (strcmp(argv[i], "--mock") == 0)
			mock = argv[i + 1];
		else if (strcmp(argv[i], "--records") == 0)
			records = strtoll(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--unbatched") == 0)
			unbatched = strtoll(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--partitions") == 0)
			partitions = atoi(argv[i + 1]);
		else
			die("usage: kafka_bench --triggerd PATH --mock PATH [--records N] "
			    "[--unbatched N] [--partitions P]");
	}
	if (!triggerd || !mock || records < 1000 || unbatched < 1000 || unbatched > records ||
	    partitions < 1 || partitions > 64)
		die("usage: kafka_bench --triggerd PATH --mock PATH [--records N] [--unbatched N] "
		    "[--partitions P]");
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	start_function(0);
	const char *bootstrap = start_mock(mock, partitions);
	atexit(stop_mock);
	fill(bootstrap, records, partitions);
	double raw = raw_consumer(bootstrap, records);
	reset_counts();
	double ceiling = http_ceiling(unbatched);
	long long hwm1, hwm100;
	double one = through(triggerd, bootstrap, 1, unbatched, &hwm1);
	double hundred = through(triggerd, bootstrap, 100, records, &hwm100);
	printf("kafka benchmark: %lld records of about 100 bytes in %d partitions of the mock "
	       "cluster\n",
	       records, partitions);
	printf("  raw librdkafka consumer        %9.0f records/s\n", raw);
	printf("  HTTP ceiling (libcurl, %d conn) %9.0f requests/s\n", CONNECTIONS, ceiling);
	printf("  triggerd, batch_size 1         %9.0f records/s  (%.0f%% of the HTTP ceiling; "
	       "%lld records)\n",
	       one, 100 * one / ceiling, unbatched);
	printf("  triggerd, batch_size 100       %9.0f records/s  (%.0f%% of the raw consumer)\n",
	       hundred, 100 * hundred / raw);
	printf("  triggerd peak resident memory  %6lld MB (batch_size 1), %lld MB (batch_size "
	       "100)\n",
	       hwm1 / 1024, hwm100 / 1024);
	curl_global_cleanup();
	return 0;
}
