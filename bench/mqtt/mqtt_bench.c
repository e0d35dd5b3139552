/*
 * The MQTT benchmark's load generator and measuring points (bench/mqtt/run.sh drives it).
 *
 *   mqtt_bench raw URI QOS COUNT
 *       a plain paho subscriber on the broker: COUNT 256-byte messages are published to
 *       bench/raw and counted by a second paho client that acknowledges at once; prints
 *       the subscriber's rate.
 *   mqtt_bench flow URI QOS COUNT PORT
 *       an HTTP function on 127.0.0.1:PORT (what triggerd or Node-RED calls); COUNT
 *       messages are published to bench/in as fast as the broker takes them, and the rate
 *       is COUNT over the time from the first publish to the last function call.
 *   mqtt_bench latency URI QOS RATE SECONDS PORT
 *       publishes RATE messages a second for SECONDS and prints p50/p99 of the time from
 *       publish to function call (the payload carries the send time).
 *   mqtt_bench threads URI CLIENTS
 *       CLIENTS paho subscribers in one process share bench/threads through a shared
 *       subscription, and each message's callback holds paho's thread for 2 ms as
 *       triggerd's does until the event is settled; 200 QoS 1 messages are published.
 *       Prints how many threads ran the callbacks and the most that ran at once: whether
 *       several clients of one process can have several messages in flight.
 *
 * Every loop is bounded by COUNT or SECONDS and by a deadline; only loopback is used.
 * paho leaves Nagle on: TCP_NODELAY is set on the clients' sockets to the broker here,
 * as triggerd does, so that the clients do not add their own delays.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <MQTTAsync.h>

#define PAYLOAD	   256
#define WINDOW	   500
#define DEADLINE_S 180

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_ns(long long ns)
{
	struct timespec ts = {ns / 1000000000LL, ns % 1000000000LL};
	nanosleep(&ts, NULL);
}

static int uri_port(const char *uri)
{
	const char *c = strrchr(uri, ':');
	return c ? atoi(c + 1) : 1883;
}

/* TCP_NODELAY on every socket of this process connected to port. */
static void nodelay(int port)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		int fd = atoi(e->d_name), one = 1;
		struct sockaddr_in peer;
		socklen_t len = sizeof peer;
		if (e->d_name[0] >= '0' && e->d_name[0] <= '9' &&
		    getpeername(fd, (struct sockaddr *)&peer, &len) == 0 &&
		    peer.sin_family == AF_INET && ntohs(peer.sin_port) == port)
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	}
	if (d)
		closedir(d);
}

/* ---- paho clients ---- */

struct client {
	MQTTAsync h;
	atomic_int connected, failed, inflight;
	atomic_long received;
	atomic_llong last_ns;
};

static void on_connect(void *ctx, MQTTAsync_successData *r)
{
	(void)r;
	atomic_store(&((struct client *)ctx)->connected, 1);
}

static void on_connect_fail(void *ctx, MQTTAsync_failureData *r)
{
	fprintf(stderr, "mqtt_bench: connect failed: %s\n", r && r->message ? r->message : "?");
	atomic_store(&((struct client *)ctx)->failed, 1);
}

static void on_sent(void *ctx, MQTTAsync_successData *r)
{
	(void)r;
	atomic_fetch_sub(&((struct client *)ctx)->inflight, 1);
}

static void on_send_fail(void *ctx, MQTTAsync_failureData *r)
{
	(void)r;
	atomic_fetch_sub(&((struct client *)ctx)->inflight, 1);
	atomic_store(&((struct client *)ctx)->failed, 1);
}

static int on_message(void *ctx, char *topic, int len, MQTTAsync_message *m)
{
	struct client *c = ctx;
	(void)len;
	atomic_fetch_add(&c->received, 1);
	atomic_store(&c->last_ns, now_ns());
	MQTTAsync_freeMessage(&m);
	MQTTAsync_free(topic);
	return 1;
}

/* The threads mode: callbacks that hold the thread, with who ran them and how many at
 * once. */
#define HOLD_NS	    2000000LL
#define MAX_THREADS 64
static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t held_threads[MAX_THREADS];
static int held_nthreads, held_now, held_most;
static atomic_long held_count;

static int on_message_held(void *ctx, char *topic, int len, MQTTAsync_message *m)
{
	pthread_t self = pthread_self();
	int i;
	(void)ctx;
	(void)len;
	pthread_mutex_lock(&held_lock);
	for (i = 0; i < held_nthreads && !pthread_equal(held_threads[i], self); i++)
		;
	if (i == held_nthreads && held_nthreads < MAX_THREADS)
		held_threads[held_nthreads++] = self;
	if (++held_now > held_most)
		held_most = held_now;
	pthread_mutex_unlock(&held_lock);
	sleep_ns(HOLD_NS);
	pthread_mutex_lock(&held_lock);
	held_now--;
	pthread_mutex_unlock(&held_lock);
	atomic_fetch_add(&held_count, 1);
	MQTTAsync_freeMessage(&m);
	MQTTAsync_free(topic);
	return 1;
}

static void on_lost(void *ctx, char *cause)
{
	(void)ctx;
	fprintf(stderr, "mqtt_bench: connection lost: %s\n", cause ? cause : "?");
}

static int client_open_with(struct client *c, const char *uri, const char *id,
			    MQTTAsync_messageArrived *arrived)
{
	MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
	memset(c, 0, sizeof *c);
	if (MQTTAsync_create(&c->h, uri, id, MQTTCLIENT_PERSISTENCE_NONE, NULL) !=
		MQTTASYNC_SUCCESS ||
	    MQTTAsync_setCallbacks(c->h, c, on_lost, arrived, NULL) != MQTTASYNC_SUCCESS)
		return -1;
	co.cleansession = 1;
	co.keepAliveInterval = 60;
	co.maxInflight = 65535;
	co.onSuccess = on_connect;
	co.onFailure = on_connect_fail;
	co.context = c;
	if (MQTTAsync_connect(c->h, &co) != MQTTASYNC_SUCCESS)
		return -1;
	long long until = now_ns() + 10000000000LL;
	while (!atomic_load(&c->connected) && !atomic_load(&c->failed) && now_ns() < until)
		sleep_ns(1000000);
	if (!atomic_load(&c->connected))
		return -1;
	nodelay(uri_port(uri));
	return 0;
}

static int client_open(struct client *c, const char *uri, const char *id)
{
	return client_open_with(c, uri, id, on_message);
}

static int subscribe(struct client *c, const char *topic, int qos)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	if (MQTTAsync_subscribe(c->h, topic, qos, &ro) != MQTTASYNC_SUCCESS)
		return -1;
	sleep_ns(300000000); /* the SUBACK */
	return 0;
}

/* One 256-byte JSON message carrying its number and send time. */
static void make_payload(char *buf, long n)
{
	int k = snprintf(buf, PAYLOAD, "{\"n\":%ld,\"t\":%lld,\"pad\":\"", n, now_ns());
	memset(buf + k, 'x', (size_t)(PAYLOAD - k - 2));
	buf[PAYLOAD - 2] = '"';
	buf[PAYLOAD - 1] = '}';
}

static int publish(struct client *c, const char *topic, int qos, long n)
{
	char buf[PAYLOAD];
	MQTTAsync_message m = MQTTAsync_message_initializer;
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	make_payload(buf, n);
	m.payload = buf;
	m.payloadlen = PAYLOAD;
	m.qos = qos;
	ro.onSuccess = on_sent;
	ro.onFailure = on_send_fail;
	ro.context = c;
	while (atomic_load(&c->inflight) >= WINDOW)
		sleep_ns(20000);
	atomic_fetch_add(&c->inflight, 1);
	for (int tries = 0;; tries++) {
		int rc = MQTTAsync_sendMessage(c->h, topic, &m, &ro);
		if (rc == MQTTASYNC_SUCCESS)
			return 0;
		if (tries > 10000) {
			fprintf(stderr, "mqtt_bench: publish: %s\n", MQTTAsync_strerror(rc));
			return -1;
		}
		sleep_ns(100000);
	}
}

/* ---- the HTTP function ---- */

static atomic_long fn_count;
static atomic_llong fn_first_ns, fn_last_ns;
static long long *latency_ns; /* by message number */
static long latency_cap;

static void record(const char *body)
{
	const char *n = strstr(body, "\"n\":"), *t = strstr(body, "\"t\":");
	long long now = now_ns();
	long long zero = 0;
	atomic_compare_exchange_strong(&fn_first_ns, &zero, now);
	atomic_store(&fn_last_ns, now);
	atomic_fetch_add(&fn_count, 1);
	if (n && t && latency_ns) {
		long i = atol(n + 4);
		if (i >= 0 && i < latency_cap)
			latency_ns[i] = now - atoll(t + 4);
	}
}

static void *serve_connection(void *arg)
{
	int fd = (int)(long)arg, one = 1;
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
				 "2\r\n\r\nok";
	char buf[65536];
	size_t have = 0;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	for (;;) {
		char *end = have ? memmem(buf, have, "\r\n\r\n", 4) : NULL;
		if (!end) {
			if (have == sizeof buf)
				break;
			ssize_t r = read(fd, buf + have, sizeof buf - have);
			if (r <= 0)
				break;
			have += (size_t)r;
			continue;
		}
		size_t head = (size_t)(end - buf) + 4, clen = 0;
		for (char *p = buf; p < end; p++)
			if ((*p == 'C' || *p == 'c') && strncasecmp(p, "content-length:", 15) == 0)
				clen = (size_t)atol(p + 15);
		if (head + clen >= sizeof buf)
			break;
		while (have < head + clen) {
			ssize_t r = read(fd, buf + have, sizeof buf - have);
			if (r <= 0)
				goto out;
			have += (size_t)r;
		}
		char saved = buf[head + clen];
		buf[head + clen] = '\0';
		record(buf + head);
		buf[head + clen] = saved;
		if (write(fd, ok, sizeof ok - 1) < 0)
			break;
		memmove(buf, buf + head + clen, have - head - clen);
		have -= head + clen;
	}
out:
	close(fd);
	return NULL;
}

static void *serve(void *arg)
{
	int ls = (int)(long)arg;
	for (;;) {
		int fd = accept(ls, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		pthread_t t;
		if (pthread_create(&t, NULL, serve_connection, (void *)(long)fd) == 0)
			pthread_detach(t);
		else
			close(fd);
	}
}

static int start_function(int port)
{
	int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 256) < 0) {
		perror("mqtt_bench: function listener");
		return -1;
	}
	pthread_t t;
	return pthread_create(&t, NULL, serve, (void *)(long)ls) == 0 ? 0 : -1;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return x < y ? -1 : x > y;
}

/* ---- modes ---- */

static int run_raw(const char *uri, int qos, long count)
{
	struct client sub, pub;
	if (client_open(&sub, uri, "bench-raw-sub") < 0 || subscribe(&sub, "bench/raw", qos) < 0 ||
	    client_open(&pub, uri, "bench-raw-pub") < 0)
		return 1;
	long long t0 = now_ns();
	for (long i = 0; i < count; i++)
		if (publish(&pub, "bench/raw", qos, i) < 0)
			return 1;
	long long until = t0 + DEADLINE_S * 1000000000LL;
	while (atomic_load(&sub.received) < count && now_ns() < until)
		sleep_ns(1000000);
	long got = atomic_load(&sub.received);
	double secs = (double)(atomic_load(&sub.last_ns) - t0) / 1e9;
	printf("raw-paho qos=%d messages=%ld received=%ld seconds=%.2f rate=%.0f msg/s\n", qos,
	       count, got, secs, got / secs);
	return got == count ? 0 : 1;
}

static int run_flow(const char *uri, int qos, long count, int port)
{
	struct client pub;
	if (start_function(port) < 0 || client_open(&pub, uri, "bench-flow-pub") < 0)
		return 1;
	long long t0 = now_ns();
	for (long i = 0; i < count; i++)
		if (publish(&pub, "bench/in", qos, i) < 0)
			return 1;
	long long until = t0 + DEADLINE_S * 1000000000LL;
	while (atomic_load(&fn_count) < count && now_ns() < until)
		sleep_ns(2000000);
	sleep_ns(200000000); /* late duplicates */
	long got = atomic_load(&fn_count);
	double secs = (double)(atomic_load(&fn_last_ns) - t0) / 1e9;
	printf("flow qos=%d messages=%ld function-calls=%ld seconds=%.2f rate=%.0f msg/s\n", qos,
	       count, got, secs, (got < count ? got : count) / secs);
	return got >= count ? 0 : 1;
}

static int run_latency(const char *uri, int qos, long rate, long seconds, int port)
{
	struct client pub;
	latency_cap = rate * seconds;
	latency_ns = calloc((size_t)latency_cap, sizeof *latency_ns);
	if (!latency_ns || start_function(port) < 0 ||
	    client_open(&pub, uri, "bench-latency-pub") < 0)
		return 1;
	long long t0 = now_ns(), step = 1000000000LL / rate;
	for (long i = 0; i < latency_cap; i++) {
		long long due = t0 + i * step, now = now_ns();
		if (due > now)
			sleep_ns(due - now);
		if (publish(&pub, "bench/in", qos, i) < 0)
			return 1;
	}
	long long until = now_ns() + 30000000000LL;
	while (atomic_load(&fn_count) < latency_cap && now_ns() < until)
		sleep_ns(2000000);
	long n = 0;
	for (long i = 0; i < latency_cap; i++)
		if (latency_ns[i] > 0)
			latency_ns[n++] = latency_ns[i];
	if (n == 0) {
		printf("latency qos=%d rate=%ld: nothing arrived\n", qos, rate);
		return 1;
	}
	qsort(latency_ns, (size_t)n, sizeof *latency_ns, cmp_ll);
	printf("latency qos=%d rate=%ld msg/s seconds=%ld received=%ld/%ld p50=%.2f ms "
	       "p99=%.2f ms max=%.2f ms\n",
	       qos, rate, seconds, n, latency_cap, latency_ns[n / 2] / 1e6,
	       latency_ns[(n * 99) / 100] / 1e6, latency_ns[n - 1] / 1e6);
	return 0;
}

static int run_threads(const char *uri, int nclients)
{
	struct client subs[16], pub;
	const long count = 200;
	if (nclients < 1 || nclients > 16) {
		fprintf(stderr, "mqtt_bench: threads: CLIENTS is 1 to 16\n");
		return 2;
	}
	for (int i = 0; i < nclients; i++) {
		char id[48];
		snprintf(id, sizeof id, "bench-threads-%d", i);
		if (client_open_with(&subs[i], uri, id, on_message_held) < 0 ||
		    subscribe(&subs[i], "$share/bench-threads/bench/threads", 1) < 0)
			return 1;
	}
	if (client_open(&pub, uri, "bench-threads-pub") < 0)
		return 1;
	long long t0 = now_ns();
	for (long i = 0; i < count; i++)
		if (publish(&pub, "bench/threads", 1, i) < 0)
			return 1;
	long long until = t0 + 60000000000LL;
	while (atomic_load(&held_count) < count && now_ns() < until)
		sleep_ns(1000000);
	double secs = (double)(now_ns() - t0) / 1e9;
	pthread_mutex_lock(&held_lock);
	printf("threads clients=%d messages=%ld received=%ld callback-threads=%d "
	       "most-at-once=%d seconds=%.2f (one at a time: %.2f)\n",
	       nclients, count, atomic_load(&held_count), held_nthreads, held_most, secs,
	       count * HOLD_NS / 1e9);
	pthread_mutex_unlock(&held_lock);
	return atomic_load(&held_count) == count ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && strcmp(argv[1], "raw") == 0)
		return run_raw(argv[2], atoi(argv[3]), atol(argv[4]));
	if (argc >= 6 && strcmp(argv[1], "flow") == 0)
		return run_flow(argv[2], atoi(argv[3]), atol(argv[4]), atoi(argv[5]));
	if (argc >= 7 && strcmp(argv[1], "latency") == 0)
		return run_latency(argv[2], atoi(argv[3]), atol(argv[4]), atol(argv[5]),
				   atoi(argv[6]));
	if (argc >= 4 && strcmp(argv[1], "threads") == 0)
		return run_threads(argv[2], atoi(argv[3]));
	fprintf(stderr, "usage: mqtt_bench raw URI QOS COUNT\n"
			"       mqtt_bench flow URI QOS COUNT PORT\n"
			"       mqtt_bench latency URI QOS RATE SECONDS PORT\n"
			"       mqtt_bench threads URI CLIENTS\n");
	return 2;
}
