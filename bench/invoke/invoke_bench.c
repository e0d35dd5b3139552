/*
 * Benchmark of process functions through the Lambda Invoke API (bench/invoke/run.sh runs
 * it; README.md has figures). It starts triggerd with no-op handlers (Python and Node.js,
 * written into a temporary folder) and measures, in one run:
 *   warm      sequential RequestResponse invocations with LogType Tail on one warm
 *             process: the client's round trip, the handler's Duration from the REPORT
 *             line, and triggerd's overhead = round trip - Duration (p50/p99);
 *   cold      Init Duration of a first invocation, one fresh function each time
 *             (p50 over COLD functions per runtime);
 *   throughput invocations/s with concurrency 1 (one client) and 4 (four clients, one
 *             function with concurrency 4).
 * The client is libcurl easy handles with keep-alive, one per thread, so its own cost
 * stays in the tens of microseconds. Everything is on 127.0.0.1; every loop is bounded
 * by a count; triggerd is stopped by its PID.
 *
 * Usage: invoke_bench --triggerd PATH [--requests N] [--cold N]
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#define MAX_COLD 64

static const char *triggerd = "build-bench/triggerd";
static int requests = 2000;
static int cold = 10;
static char dir[256];
static int admin_port;

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "invoke_bench: %s\n", what);
	exit(1);
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		die("no free port");
	close(fd);
	return ntohs(a.sin_port);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		die("cannot write the test functions");
}

static void make_code(void)
{
	char path[400];
	snprintf(path, sizeof path, "%s/py", dir);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/py/lambda_function.py", dir);
	write_file(path, "def lambda_handler(event, context):\n    return {}\n");
	snprintf(path, sizeof path, "%s/node", dir);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/node/index.mjs", dir);
	write_file(path, "export const handler = async (event) => ({});\n");
}

static void write_config(void)
{
	char path[400];
	snprintf(path, sizeof path, "%s/triggerd.cfg", dir);
	FILE *f = fopen(path, "w");
	if (!f)
		die("cannot write the configuration");
	fprintf(f, "log = { level = \"warn\"; };\nqueue = { durability = \"os\"; };\n"
		   "functions = (\n");
	fprintf(f,
		"  { name = \"py\"; kind = \"process\"; runtime = \"python3\"; code = \"py\"; "
		"concurrency = 1; },\n"
		"  { name = \"node\"; kind = \"process\"; runtime = \"nodejs\"; code = \"node\"; "
		"handler = \"index.handler\"; concurrency = 1; },\n"
		"  { name = \"py4\"; kind = \"process\"; runtime = \"python3\"; code = \"py\"; "
		"concurrency = 4; }");
	for (int i = 0; i < cold; i++)
		fprintf(f,
			",\n  { name = \"coldpy%d\"; kind = \"process\"; runtime = \"python3\"; "
			"code = \"py\"; },\n"
			"  { name = \"coldnode%d\"; kind = \"process\"; runtime = \"nodejs\"; "
			"code = \"node\"; handler = \"index.handler\"; }",
			i, i);
	fprintf(f, "\n);\n");
	if (fclose(f) != 0)
		die("cannot write the configuration");
}

static pid_t start_triggerd(void)
{
	char cfg[400], state[400], admin[64], webhook[64], log[400];
	snprintf(cfg, sizeof cfg, "%s/triggerd.cfg", dir);
	snprintf(state, sizeof state, "%s/state", dir);
	snprintf(log, sizeof log, "%s/triggerd.log", dir);
	admin_port = free_port();
	snprintf(admin, sizeof admin, "127.0.0.1:%d", admin_port);
	snprintf(webhook, sizeof webhook, "127.0.0.1:%d", free_port());
	pid_t pid = fork();
	if (pid < 0)
		die("fork failed");
	if (pid == 0) {
		FILE *l = freopen(log, "w", stderr);
		(void)l;
		execl(triggerd, triggerd, "-c", cfg, "--state-dir", state, "--admin-listen", admin,
		      "--webhook-listen", webhook, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

struct answer {
	char log[8192]; /* the decoded X-Amz-Log-Result */
};

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct answer *a = arg;
	size_t len = size * n;
	static const char name[] = "X-Amz-Log-Result:";
	if (len > sizeof name && strncasecmp(p, name, sizeof name - 1) == 0) {
		const char *v = p + sizeof name - 1;
		size_t vl = len - (sizeof name - 1);
		while (vl && (*v == ' ')) {
			v++;
			vl--;
		}
		while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
			vl--;
		if (vl / 4 * 3 < sizeof a->log) {
			int out = EVP_DecodeBlock((unsigned char *)a->log, (const unsigned char *)v,
						  (int)vl);
			a->log[out > 0 ? out : 0] = '\0';
		}
	}
	return len;
}

/* One RequestResponse invocation; returns the HTTP status. */
static long invoke(CURL *c, const char *function, bool tail, struct answer *a)
{
	char url[256];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/2015-03-31/functions/%s/invocations",
		 admin_port, function);
	struct curl_slist *h = NULL;
	h = curl_slist_append(h, "Content-Type: application/json");
	if (tail)
		h = curl_slist_append(h, "X-Amz-Log-Type: Tail");
	a->log[0] = '\0';
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{\"x\":1}");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, a);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	long status = 0;
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	return status;
}

/* A "Name: 12.34 ms" figure of the REPORT line, in microseconds, or -1. */
static long long report_us(const char *log, const char *name)
{
	const char *p = strstr(log, name);
	if (!p)
		return -1;
	return (long long)(strtod(p + strlen(name), NULL) * 1000.0);
}

static int compare_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return (x > y) - (x < y);
}

static long long quantile(long long *v, int n, double q)
{
	if (n == 0)
		return 0;
	qsort(v, (size_t)n, sizeof *v, compare_ll);
	int i = (int)(q * (n - 1) + 0.5);
	return v[i];
}

static void warm(const char *function, const char *label)
{
	CURL *c = curl_easy_init();
	struct answer a;
	long long *rtt = calloc((size_t)requests, sizeof *rtt);
	long long *dur = calloc((size_t)requests, sizeof *dur);
	long long *over = calloc((size_t)requests, sizeof *over);
	if (!c || !rtt || !dur || !over)
		die("out of memory");
	for (int i = 0; i < 50; i++) /* start the process, warm the connection */
		invoke(c, function, false, &a);
	int n = 0;
	for (int i = 0; i < requests; i++) {
		long long t0 = now_ns();
		long status = invoke(c, function, true, &a);
		long long t = (now_ns() - t0) / 1000;
		long long d = report_us(a.log, "\tDuration: ");
		if (status != 200 || d < 0)
			die("a warm invocation failed (see triggerd.log)");
		rtt[n] = t;
		dur[n] = d;
		over[n] = t - d;
		n++;
	}
	printf("%-7s warm: round trip p50 %lld us p99 %lld us; handler Duration p50 %lld us; "
	       "overhead p50 %lld us p99 %lld us\n",
	       label, quantile(rtt, n, 0.5), quantile(rtt, n, 0.99), quantile(dur, n, 0.5),
	       quantile(over, n, 0.5), quantile(over, n, 0.99));
	free(rtt);
	free(dur);
	free(over);
	curl_easy_cleanup(c);
}

static void cold_starts(const char *prefix, const char *label)
{
	CURL *c = curl_easy_init();
	struct answer a;
	long long init[MAX_COLD], first[MAX_COLD];
	int n = 0;
	if (!c)
		die("out of memory");
	for (int i = 0; i < cold; i++) {
		char name[64];
		snprintf(name, sizeof name, "%s%d", prefix, i);
		long long t0 = now_ns();
		long status = invoke(c, name, true, &a);
		long long t = (now_ns() - t0) / 1000;
		long long us = report_us(a.log, "Init Duration: ");
		if (status != 200 || us < 0)
			die("a cold invocation failed or had no Init Duration (see triggerd.log)");
		init[n] = us;
		first[n] = t;
		n++;
	}
	printf("%-7s cold: Init Duration p50 %.1f ms (min %.1f, max %.1f); first round trip p50 "
	       "%.1f ms\n",
	       label, quantile(init, n, 0.5) / 1000.0, quantile(init, n, 0.0) / 1000.0,
	       quantile(init, n, 1.0) / 1000.0, quantile(first, n, 0.5) / 1000.0);
	curl_easy_cleanup(c);
}

struct client {
	const char *function;
	int count;
	int failed;
};

static void *client_run(void *arg)
{
	struct client *cl = arg;
	CURL *c = curl_easy_init();
	struct answer a;
	for (int i = 0; c && i < cl->count; i++)
		if (invoke(c, cl->function, false, &a) != 200)
			cl->failed++;
	curl_easy_cleanup(c);
	return NULL;
}

static void throughput(const char *function, int clients)
{
	pthread_t th[8];
	struct client cl[8];
	/* warm every process first */
	for (int i = 0; i < clients; i++)
		cl[i] = (struct client){function, 20, 0};
	for (int i = 0; i < clients; i++)
		pthread_create(&th[i], NULL, client_run, &cl[i]);
	for (int i = 0; i < clients; i++)
		pthread_join(th[i], NULL);
	long long t0 = now_ns();
	for (int i = 0; i < clients; i++)
		cl[i] = (struct client){function, requests / clients, 0};
	for (int i = 0; i < clients; i++)
		pthread_create(&th[i], NULL, client_run, &cl[i]);
	int failed = 0;
	for (int i = 0; i < clients; i++) {
		pthread_join(th[i], NULL);
		failed += cl[i].failed;
	}
	double s = (now_ns() - t0) / 1e9;
	printf("python3 throughput, concurrency %d: %.0f invocations/s (%d failed)\n", clients,
	       (requests / clients) * clients / s, failed);
}

static void wait_ready(void)
{
	CURL *c = curl_easy_init();
	char url[128];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", admin_port);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	for (int i = 0; i < 200; i++) {
		long status = 0;
		if (curl_easy_perform(c) == CURLE_OK)
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		if (status == 200) {
			curl_easy_cleanup(c);
			return;
		}
		usleep(50000);
	}
	die("triggerd did not answer /healthz (see its log)");
}

int main(int argc, char **argv)
{
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--triggerd") == 0)
			triggerd = argv[i + 1];
		else if (strcmp(argv[i], "--requests") == 0)
			requests = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--cold") == 0)
			cold = atoi(argv[i + 1]);
		else
			die("usage: invoke_bench --triggerd PATH [--requests N] [--cold N]");
	}
	if (requests < 10 || requests > 1000000 || cold < 1 || cold > MAX_COLD)
		die("--requests must be 10..1000000 and --cold 1..64");
	snprintf(dir, sizeof dir, "/tmp/invoke_bench.%d", (int)getpid());
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		die("cannot make the work folder");
	make_code();
	write_config();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	pid_t td = start_triggerd();
	wait_ready();
	printf("requests %d per measurement, %d cold starts per runtime\n", requests, cold);
	cold_starts("coldpy", "python3");
	cold_starts("coldnode", "nodejs");
	warm("py", "python3");
	warm("node", "nodejs");
	throughput("py", 1);
	throughput("py4", 4);
	kill(td, SIGTERM);
	int st;
	waitpid(td, &st, 0);
	curl_global_cleanup();
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "invoke_bench: could not remove %s\n", dir);
	return 0;
}
