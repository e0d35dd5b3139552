/*
 * mock_kafka: a Kafka cluster for tests and benchmarks, and small clients for it.
 *
 * No Kafka broker package exists on this system, so the tests run librdkafka's built-in
 * mock cluster (rdkafka_mock.h) in a process of its own: it listens on loopback ports
 * and speaks the Kafka protocol over TCP, so triggerd connects to it exactly as to a
 * real broker. It is a mock: it keeps every partition in memory, joining a group takes
 * about 3 s, and it implements only what librdkafka's clients use.
 *
 *   mock_kafka [--brokers N] [--topic NAME:PARTITIONS]... [--missing NAME]...
 *       Starts the cluster (1 broker by default), creates the topics, prints one line
 *       "bootstrap=HOST:PORT,..." on stdout as soon as it is ready, and runs until
 *       SIGTERM or SIGINT. A --missing topic answers "unknown topic" to every client (the
 *       mock may otherwise create a topic that a client only asks about); the line
 *       "create NAME" on stdin ends that and gives it 4 partitions; the tool answers
 *       "ok NAME" on stdout.
 *
 *   mock_kafka produce --bootstrap B --topic T
 *       Produces the records given as JSON lines on stdin, one object per line:
 *       {"partition": 2, "key": "k", "value": "v", "headers": [["name", "value"], ...],
 *        "timestamp": 1700000000000}
 *       (every member optional; "key_b64" / "value_b64" give bytes in base64; a null
 *       "value" or a header value null is a null; "timestamp" is the record's create time
 *       in ms, default now). Waits for every delivery report;
 *       prints "produced N" and exits 0 when all were stored, 1 otherwise.
 *
 *   mock_kafka fill --bootstrap B --topic T --count N [--partitions P] [--size BYTES]
 *       Produces N records quickly: key "k<i>", value {"i": i, "pad": "..."} padded to
 *       about BYTES (default 100), partition i % P when P is given (else by key).
 *
 *   mock_kafka committed --bootstrap B --group G --topic T
 *       Prints one line "PARTITION COMMITTED HIGH-WATERMARK" per partition (COMMITTED
 *       is -1 when the group has no offset for it).
 *
 *   mock_kafka consume --bootstrap B --topic T --count N [--timeout SECONDS]
 *       Reads the topic from the beginning (no group) and prints each record as a
 *       JSON line {"partition", "offset", "key" (base64 or null), "value" (base64 or
 *       null), "headers": [[name, base64 or null], ...]} until N records or the
 *       timeout (default 10 s); exits 1 when fewer than N came.
 *
 * Exit status: 0 on success, 1 on a failure of the cluster or the clients, 2 for a bad
 * command line.
 */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "../../router/json.h"

#define MAX_TOPICS 64

static int usage(void)
{
	fputs("usage: mock_kafka [--brokers N] [--topic NAME:PARTITIONS]...\n"
	      "       mock_kafka produce --bootstrap B --topic T   < JSON lines\n"
	      "       mock_kafka fill --bootstrap B --topic T --count N [--partitions P] "
	      "[--size BYTES]\n"
	      "       mock_kafka committed --bootstrap B --group G --topic T\n"
	      "       mock_kafka consume --bootstrap B --topic T --count N [--timeout S]\n",
	      stderr);
	return 2;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool parse_int(const char *s, long long min, long long max, long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static rd_kafka_conf_t *client_conf(const char *bootstrap)
{
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err) != 0 ||
	    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err) != 0) {
		fprintf(stderr, "mock_kafka: %s\n", err);
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	return conf;
}

/* ---- the cluster ---- */

/* Reads "create NAME" lines on stdin: the topic stops answering "unknown topic". */
static void *commands(void *arg)
{
	rd_kafka_mock_cluster_t *mc = arg;
	char line[512];
	while (fgets(line, sizeof line, stdin)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (strncmp(line, "create ", 7) != 0 || !line[7])
			continue;
		rd_kafka_mock_topic_set_error(mc, line + 7, RD_KAFKA_RESP_ERR_NO_ERROR);
		printf("ok %s\n", line + 7);
		fflush(stdout);
	}
	return NULL;
}

static int run_cluster(int argc, char **argv)
{
	long long brokers = 1;
	const char *topics[MAX_TOPICS], *missing[MAX_TOPICS];
	int parts[MAX_TOPICS];
	int ntopics = 0, nmissing = 0;
	char err[512];

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--brokers") == 0 && i + 1 < argc) {
			if (!parse_int(argv[++i], 1, 16, &brokers))
				return usage();
		} else if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc &&
			   ntopics < MAX_TOPICS) {
			char *spec = argv[++i], *colon = strrchr(spec, ':');
			long long n = 1;
			if (colon) {
				*colon = '\0';
				if (!parse_int(colon + 1, 1, 1000, &n))
					return usage();
			}
			if (!*spec)
				return usage();
			topics[ntopics] = spec;
			parts[ntopics++] = (int)n;
		} else if (strcmp(argv[i], "--missing") == 0 && i + 1 < argc &&
			   nmissing < MAX_TOPICS && *argv[i + 1]) {
			missing[nmissing++] = argv[++i];
		} else {
			return usage();
		}
	}

	/* Signals are waited for with sigwait: block them before librdkafka's threads. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
	if (!rk) {
		fprintf(stderr, "mock_kafka: %s\n", err);
		return 1;
	}
	rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, (int)brokers);
	if (!mc) {
		fprintf(stderr, "mock_kafka: cannot create the mock cluster\n");
		rd_kafka_destroy(rk);
		return 1;
	}
	for (int i = 0; i < ntopics; i++) {
		int rf = brokers < 3 ? (int)brokers : 3;
		rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, topics[i], parts[i], rf);
		if (e) {
			fprintf(stderr, "mock_kafka: topic %s: %s\n", topics[i],
				rd_kafka_err2str(e));
			rd_kafka_mock_cluster_destroy(mc);
			rd_kafka_destroy(rk);
			return 1;
		}
	}
	for (int i = 0; i < nmissing; i++) {
		rd_kafka_mock_topic_create(mc, missing[i], 4, 1);
		rd_kafka_mock_topic_set_error(mc, missing[i],
					      RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
	}
	printf("bootstrap=%s\n", rd_kafka_mock_cluster_bootstraps(mc));
	fflush(stdout);
	pthread_t reader;
	if (nmissing > 0 && pthread_create(&reader, NULL, commands, mc) == 0)
		pthread_detach(reader);
	int sig = 0;
	sigwait(&set, &sig);
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(rk);
	return 0;
}

/* ---- produce ---- */

static int delivered, failed;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	(void)opaque;
	if (m->err) {
		if (failed++ < 5)
			fprintf(stderr, "mock_kafka: delivery failed: %s\n",
				rd_kafka_err2str(m->err));
	} else {
		delivered++;
	}
}

static rd_kafka_t *producer(const char *bootstrap)
{
	char err[512];
	rd_kafka_conf_t *conf = client_conf(bootstrap);
	if (!conf)
		return NULL;
	rd_kafka_conf_set(conf, "linger.ms", "5", err, sizeof err);
	rd_kafka_conf_set(conf, "queue.buffering.max.messages", "1000000", err, sizeof err);
	rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
	if (!rk) {
		fprintf(stderr, "mock_kafka: %s\n", err);
		rd_kafka_conf_destroy(conf);
	}
	return rk;
}

/* Bytes of a member: text, or base64 in NAME_b64. 1 found, 0 absent/null, -1 bad. */
static int member_bytes(json_t *obj, const char *name, struct td_buf *out)
{
	char b64name[64];
	json_t *v = json_object_get(obj, name);
	snprintf(b64name, sizeof b64name, "%s_b64", name);
	json_t *b = json_object_get(obj, b64name);
	td_buf_reset(out);
	if (b && json_is_string(b))
		return td_base64_decode(json_string_value(b), json_string_length(b), out, NULL, 0) <
			       0
			   ? -1
			   : 1;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return -1;
	td_buf_append(out, json_string_value(v), json_string_length(v));
	return 1;
}

static int finish_producing(rd_kafka_t *rk, int queued)
{
	rd_kafka_flush(rk, 30000);
	rd_kafka_destroy(rk);
	printf("produced %d\n", delivered);
	if (delivered != queued) {
		fprintf(stderr, "mock_kafka: %d of %d records were not stored\n",
			queued - delivered, queued);
		return 1;
	}
	return 0;
}

static int produce_one(rd_kafka_t *rk, const char *topic, int partition, const void *key,
		       size_t key_len, const void *value, size_t len, rd_kafka_headers_t *hdrs,
		       long long timestamp)
{
	for (;;) {
		rd_kafka_resp_err_t e = rd_kafka_producev(
		    rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
		    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, key_len),
		    RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_HEADERS(hdrs),
		    RD_KAFKA_V_TIMESTAMP(timestamp), RD_KAFKA_V_END);
		if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
			rd_kafka_poll(rk, 50);
			continue;
		}
		if (e) {
			fprintf(stderr, "mock_kafka: cannot produce: %s\n", rd_kafka_err2str(e));
			if (hdrs)
				rd_kafka_headers_destroy(hdrs);
			return -1;
		}
		rd_kafka_poll(rk, 0);
		return 0;
	}
}

static int run_produce(const char *bootstrap, const char *topic)
{
	rd_kafka_t *rk = producer(bootstrap);
	if (!rk)
		return 1;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int queued = 0, lineno = 0;
	struct td_buf key = {0}, value = {0}, hv = {0};
	while ((n = getline(&line, &cap, stdin)) > 0) {
		json_error_t jerr;
		lineno++;
		if (n == 1 && line[0] == '\n')
			continue;
		json_t *o = json_loadb(line, (size_t)n, 0, &jerr);
		if (!o || !json_is_object(o)) {
			fprintf(stderr, "mock_kafka: stdin line %d: %s\n", lineno,
				o ? "not a JSON object" : jerr.text);
			json_decref(o);
			goto fail;
		}
		json_t *p = json_object_get(o, "partition"), *ts = json_object_get(o, "timestamp");
		int partition =
		    p && json_is_integer(p) ? (int)json_integer_value(p) : RD_KAFKA_PARTITION_UA;
		int hk = member_bytes(o, "key", &key), hval = member_bytes(o, "value", &value);
		rd_kafka_headers_t *hdrs = NULL;
		json_t *hs = json_object_get(o, "headers");
		if (hk < 0 || hval < 0 || (hs && !json_is_array(hs))) {
			fprintf(stderr, "mock_kafka: stdin line %d: bad key, value or headers\n",
				lineno);
			json_decref(o);
			goto fail;
		}
		if (hs && json_array_size(hs) > 0) {
			hdrs = rd_kafka_headers_new(json_array_size(hs));
			for (size_t i = 0; i < json_array_size(hs); i++) {
				json_t *h = json_array_get(hs, i);
				json_t *hn = json_array_get(h, 0), *hval2 = json_array_get(h, 1);
				if (!json_is_string(hn)) {
					fprintf(stderr, "mock_kafka: stdin line %d: bad header\n",
						lineno);
					rd_kafka_headers_destroy(hdrs);
					json_decref(o);
					goto fail;
				}
				if (!hval2 || json_is_null(hval2)) {
					rd_kafka_header_add(hdrs, json_string_value(hn), -1, NULL,
							    0);
					continue;
				}
				td_buf_reset(&hv);
				td_buf_append(&hv, json_string_value(hval2),
					      json_string_length(hval2));
				rd_kafka_header_add(hdrs, json_string_value(hn), -1, hv.data,
						    (ssize_t)hv.len);
			}
		}
		if (produce_one(rk, topic, partition, hk ? (key.data ? key.data : "") : NULL,
				hk ? key.len : 0, hval ? (value.data ? value.data : "") : NULL,
				hval ? value.len : 0, hdrs,
				ts && json_is_integer(ts) ? (long long)json_integer_value(ts) : 0) <
		    0) {
			json_decref(o);
			goto fail;
		}
		queued++;
		json_decref(o);
	}
	free(line);
	td_buf_free(&key);
	td_buf_free(&value);
	td_buf_free(&hv);
	return finish_producing(rk, queued);
fail:
	free(line);
	td_buf_free(&key);
	td_buf_free(&value);
	td_buf_free(&hv);
	rd_kafka_flush(rk, 10000);
	rd_kafka_destroy(rk);
	return 1;
}

static int run_fill(const char *bootstrap, const char *topic, long long count, long long parts,
		    long long size)
{
	rd_kafka_t *rk = producer(bootstrap);
	if (!rk)
		return 1;
	char key[32], *value = malloc((size_t)size + 64);
	int queued = 0;
	for (long long i = 0; i < count; i++) {
		int klen = snprintf(key, sizeof key, "k%lld", i);
		int vlen = snprintf(value, (size_t)size + 64, "{\"i\":%lld,\"pad\":\"", i);
		while (vlen < size - 2)
			value[vlen++] = 'x';
		value[vlen++] = '"';
		value[vlen++] = '}';
		if (produce_one(rk, topic, parts > 0 ? (int)(i % parts) : RD_KAFKA_PARTITION_UA,
				key, (size_t)klen, value, (size_t)vlen, NULL, 0) < 0) {
			free(value);
			rd_kafka_destroy(rk);
			return 1;
		}
		queued++;
	}
	free(value);
	return finish_producing(rk, queued);
}

/* ---- committed offsets ---- */

static int partitions_of(rd_kafka_t *rk, const char *topic)
{
	const struct rd_kafka_metadata *md;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
	int n = -1;
	if (e) {
		fprintf(stderr, "mock_kafka: metadata: %s\n", rd_kafka_err2str(e));
	} else {
		if (md->topic_cnt == 1 && !md->topics[0].err)
			n = md->topics[0].partition_cnt;
		else
			fprintf(stderr, "mock_kafka: topic %s: %s\n", topic,
				md->topic_cnt ? rd_kafka_err2str(md->topics[0].err) : "unknown");
		rd_kafka_metadata_destroy(md);
	}
	rd_kafka_topic_destroy(rkt);
	return n;
}

static int run_committed(const char *bootstrap, const char *group, const char *topic)
{
	char err[512];
	rd_kafka_conf_t *conf = client_conf(bootstrap);
	if (!conf)
		return 1;
	rd_kafka_conf_set(conf, "group.id", group, err, sizeof err);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
	if (!rk) {
		fprintf(stderr, "mock_kafka: %s\n", err);
		return 1;
	}
	int n = partitions_of(rk, topic), rc = 1;
	if (n > 0) {
		rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
		for (int i = 0; i < n; i++)
			rd_kafka_topic_partition_list_add(l, topic, i);
		rd_kafka_resp_err_t e = rd_kafka_committed(rk, l, 10000);
		if (e) {
			fprintf(stderr, "mock_kafka: committed: %s\n", rd_kafka_err2str(e));
		} else {
			rc = 0;
			for (int i = 0; i < n; i++) {
				int64_t lo = 0, hi = 0;
				if (rd_kafka_query_watermark_offsets(rk, topic, i, &lo, &hi,
								     10000)) {
					rc = 1;
					break;
				}
				long long c = l->elems[i].offset < 0 ? -1 : l->elems[i].offset;
				printf("%d %lld %lld\n", i, c, (long long)hi);
			}
		}
		rd_kafka_topic_partition_list_destroy(l);
	}
	rd_kafka_destroy(rk);
	return rc;
}

/* ---- consume ---- */

static void print_b64(const void *p, size_t n)
{
	struct td_buf b = {0};
	if (!p) {
		fputs("null", stdout);
		return;
	}
	td_buf_appendc(&b, '"');
	td_base64_encode(&b, p, n);
	td_buf_appendc(&b, '"');
	fputs(b.data, stdout);
	td_buf_free(&b);
}

static int run_consume(const char *bootstrap, const char *topic, long long count,
		       long long timeout_s)
{
	char err[512];
	rd_kafka_conf_t *conf = client_conf(bootstrap);
	if (!conf)
		return 1;
	rd_kafka_conf_set(conf, "group.id", "mock-kafka-reader", err, sizeof err);
	rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
	if (!rk) {
		fprintf(stderr, "mock_kafka: %s\n", err);
		return 1;
	}
	rd_kafka_poll_set_consumer(rk);
	int n = partitions_of(rk, topic);
	long long got = 0;
	if (n > 0) {
		rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
		for (int i = 0; i < n; i++)
			rd_kafka_topic_partition_list_add(l, topic, i)->offset =
			    RD_KAFKA_OFFSET_BEGINNING;
		rd_kafka_assign(rk, l);
		rd_kafka_topic_partition_list_destroy(l);
		long long deadline = now_ms() + timeout_s * 1000;
		while (got < count && now_ms() < deadline) {
			rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
			if (!m)
				continue;
			if (!m->err) {
				rd_kafka_headers_t *hdrs = NULL;
				printf("{\"partition\":%d,\"offset\":%lld,\"key\":", m->partition,
				       (long long)m->offset);
				print_b64(m->key, m->key_len);
				fputs(",\"value\":", stdout);
				print_b64(m->payload, m->len);
				fputs(",\"headers\":[", stdout);
				if (!rd_kafka_message_headers(m, &hdrs) && hdrs) {
					const char *name;
					const void *val;
					size_t size;
					for (size_t i = 0;
					     !rd_kafka_header_get_all(hdrs, i, &name, &val, &size);
					     i++) {
						struct td_buf nb = {0};
						td_json_append_cstr(&nb, name);
						printf("%s[%s,", i ? "," : "", nb.data);
						td_buf_free(&nb);
						print_b64(val, size);
						fputs("]", stdout);
					}
				}
				fputs("]}\n", stdout);
				got++;
			}
			rd_kafka_message_destroy(m);
		}
	}
	fflush(stdout);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return got >= count ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc < 2 || argv[1][0] == '-')
		return run_cluster(argc, argv);
	const char *cmd = argv[1], *bootstrap = NULL, *topic = NULL, *group = NULL;
	long long count = -1, parts = 0, size = 100, timeout = 10;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			return usage();
		i++;
		if (strcmp(a, "--bootstrap") == 0)
			bootstrap = v;
		else if (strcmp(a, "--topic") == 0)
			topic = v;
		else if (strcmp(a, "--group") == 0)
			group = v;
		else if (strcmp(a, "--count") == 0 && parse_int(v, 0, 100000000, &count))
			continue;
		else if (strcmp(a, "--partitions") == 0 && parse_int(v, 1, 100000, &parts))
			continue;
		else if (strcmp(a, "--size") == 0 && parse_int(v, 16, 10000000, &size))
			continue;
		else if (strcmp(a, "--timeout") == 0 && parse_int(v, 1, 3600, &timeout))
			continue;
		else
			return usage();
	}
	if (!bootstrap || !topic)
		return usage();
	if (strcmp(cmd, "produce") == 0)
		return run_produce(bootstrap, topic);
	if (strcmp(cmd, "fill") == 0 && count >= 0)
		return run_fill(bootstrap, topic, count, parts, size);
	if (strcmp(cmd, "committed") == 0 && group)
		return run_committed(bootstrap, group, topic);
	if (strcmp(cmd, "consume") == 0 && count >= 0)
		return run_consume(bootstrap, topic, count, timeout);
	return usage();
}
