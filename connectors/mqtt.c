/*
 * The MQTT source (paho MQTTAsync): subscribes to topic filters, MQTT 5 by default, with
 * a persistent session (clean_start false, session_expiry) so that the broker keeps the
 * QoS 1/2 backlog while triggerd is down, and optionally as a shared subscription
 * ($share/<group>/<filter>) so that several triggerd instances split the messages.
 *
 * At least once. paho.mqtt.c 1.3 sends the PUBACK (QoS 1) or PUBCOMP (QoS 2) right after
 * messageArrived returns, whatever it returns, and calls it on its one receive thread
 * (for every client of the process) while holding its global lock. So a message is
 * acknowledged only once it is safe:
 * - Triggers all async (the common case): the callback writes the message to the
 *   source's spool (mqtt_spool.h: an append-only log beside paho's persistence, as durable
 *   as queue.durability says), hands it to the router and returns; the router queues it
 *   or turns it away (busy: it is held in memory and submitted again after retry_after),
 *   and its row goes once it is settled. Rows left by a crash are submitted again at the
 *   next start. At most receive_maximum spooled messages are unsettled; the next one
 *   waits in the callback, so the broker holds the rest of the backlog (backpressure).
 *   This is what lets QoS 1 messages flow at the rate of the receive thread rather
 *   than one router round trip per message (bench/mqtt/README.md).
 * - A sync trigger names the source (its answer must exist before the acknowledgement,
 *   and it may go to a reply topic), or the spool could not be opened or written: the
 *   callback hands the event to the router and waits until the submission is settled:
 *   DONE or FAILED (a sync function answered with an error: there is no negative
 *   acknowledgement in MQTT, so the message counts as handled; the answer goes to the
 *   reply topic) return 1 and the message is acknowledged; BUSY (queue full,
 *   concurrency reached) waits retry_after and submits again, so the broker holds the
 *   rest of the backlog. Such messages are taken one at a time. Several paho clients
 *   per source would not change that: paho runs the callbacks of every client of the
 *   process on its one receive thread (`mqtt_bench threads` shows it).
 * A kill -9 loses nothing: what was neither spooled nor settled was not acknowledged,
 * and the broker delivers it again to the persistent session. stop() shuts paho's socket
 * down (found among the process's sockets, since paho does not expose it) before it
 * releases the waiting callback, so that a message not yet settled is not acknowledged
 * either; should the socket not be known, the callback returns 0 and paho keeps the
 * message in its file persistence (state_dir/mqtt/SOURCE) for the next start. QoS 0
 * messages are neither spooled nor waited for (at most receive_maximum in flight); a
 * busy answer drops them, as QoS 0 allows.
 *
 * Threads. Because a waiting callback holds paho's global lock, the engine thread never
 * calls paho: a worker thread per source creates the client, connects and reconnects
 * (exponential backoff with jitter between reconnect.min and reconnect.max, through the
 * failover list of URIs), publishes (mqtt:// destinations and replies) and tears the
 * client down. The engine only queues work for the worker; paho's completion callbacks
 * come back to the engine through td_engine_call(). The worker state is a heap block
 * owned by the worker once destroy could not join it in time (a callback of another
 * source may hold paho's lock while it waits for this engine thread). paho's receive
 * thread serves every MQTT source of the process, so a callback waiting for its settle
 * delays the other MQTT sources too. After stop() the connection is gone: records to
 * mqtt:// destinations then fail ("the source is stopped") and the router's destination
 * retries report them.
 *
 * Request/response. A message with an MQTT 5 response topic, or any message when
 * reply_topic is set, gets the result of its first sync trigger published there (with
 * the request's correlation data and the result's content type, and on MQTT 5 the user
 * property "triggerd-status" = ok | error).
 */
#include <triggerd/source.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <MQTTAsync.h>

#include <triggerd/engine.h>
#include <triggerd/errors.h>
#include <triggerd/event.h>
#include <triggerd/function.h>
#include <triggerd/log.h>

#include "../router/retry.h"
#include "mqtt_event.h"
#include "mqtt_spool.h"
#include "mqtt_topic.h"

enum mqtt_protocol { MQTT_V5, MQTT_V311 };

struct mqtt_opts {
	struct td_strings uri; /* failover list */
	char *client_id;       /* NULL: derived from the host name and the source name */
	int protocol;	       /* enum mqtt_protocol */
	struct td_strings topics;
	long long qos;
	char *shared_group;
	bool clean_start;
	long long session_expiry_ms;
	long long keepalive_ms;
	char *username;
	char *password;
	char *tls_ca_file;
	char *tls_cert_file;
	char *tls_key_file;
	char *tls_key_password;
	bool tls_verify;
	long long reconnect_min_ms;
	long long reconnect_max_ms;
	long long receive_maximum;
	long long max_payload;
	char *reply_topic;
	long long publish_qos;
	bool publish_retain;
};

#define O(field) offsetof(struct mqtt_opts, field)

static const struct td_option mqtt_options[] = {
    {.type = TD_OPT_STRINGS,
     .name = "uri",
     .flags = TD_OPT_REQUIRED,
     .offset = O(uri),
     .desc = "Broker URI, or a list of them tried in turn for failover: tcp://host:1883, "
	     "ssl://host:8883, ws://host:80/mqtt, wss://..."},
    {.type = TD_OPT_STRING,
     .name = "client_id",
     .offset = O(client_id),
     .desc = "MQTT client identifier. Default: \"triggerd-HOSTNAME-SOURCE\", stable across "
	     "restarts so that the broker finds the session again; instances on one host need "
	     "their own."},
    {.type = TD_OPT_ENUM,
     .name = "protocol",
     .def = "5",
     .offset = O(protocol),
     .choices = "5|3.1.1",
     .desc = "MQTT protocol version."},
    {.type = TD_OPT_STRINGS,
     .name = "topics",
     .flags = TD_OPT_REQUIRED,
     .offset = O(topics),
     .desc = "Topic filters to subscribe to (+ and # wildcards), all with option qos."},
    {.type = TD_OPT_INT,
     .name = "qos",
     .def = "1",
     .offset = O(qos),
     .min = 0,
     .max = 2,
     .desc = "QoS of the subscriptions. 0 may lose messages; 1 and 2 are acknowledged "
	     "only once the event is settled."},
    {.type = TD_OPT_STRING,
     .name = "shared_group",
     .offset = O(shared_group),
     .desc = "Subscribe as $share/GROUP/FILTER so that the instances in GROUP split the "
	     "messages (MQTT 5 shared subscriptions). Default: none."},
    {.type = TD_OPT_BOOL,
     .name = "clean_start",
     .def = "false",
     .offset = O(clean_start),
     .desc = "true starts a new session at each connect (the backlog is dropped)."},
    {.type = TD_OPT_DURATION,
     .name = "session_expiry",
     .def = "1d",
     .offset = O(session_expiry_ms),
     .min = 0,
     .max = 4294967295000.0,
     .desc = "How long the broker keeps the session and its QoS 1/2 backlog after a "
	     "disconnect (MQTT 5)."},
    {.type = TD_OPT_DURATION,
     .name = "keepalive",
     .def = "60s",
     .offset = O(keepalive_ms),
     .min = 1000,
     .max = 65535000,
     .desc = "MQTT keep-alive interval."},
    {.type = TD_OPT_STRING,
     .name = "username",
     .offset = O(username),
     .desc = "User name for the broker. Default: none."},
    {.type = TD_OPT_STRING,
     .name = "password",
     .flags = TD_OPT_SECRET,
     .offset = O(password),
     .desc = "Password for the broker. Default: none."},
    {.type = TD_OPT_STRING,
     .name = "tls.ca_file",
     .flags = TD_OPT_PATH,
     .offset = O(tls_ca_file),
     .desc = "PEM file of the CAs that sign the broker's certificate. Default: the "
	     "system's CAs."},
    {.type = TD_OPT_STRING,
     .name = "tls.cert_file",
     .flags = TD_OPT_PATH,
     .offset = O(tls_cert_file),
     .desc = "PEM client certificate. Default: none."},
    {.type = TD_OPT_STRING,
     .name = "tls.key_file",
     .flags = TD_OPT_PATH,
     .offset = O(tls_key_file),
     .desc = "PEM private key of the client certificate. Default: none."},
    {.type = TD_OPT_STRING,
     .name = "tls.key_password",
     .flags = TD_OPT_SECRET,
     .offset = O(tls_key_password),
     .desc = "Password of an encrypted tls.key_file. Default: none."},
    {.type = TD_OPT_BOOL,
     .name = "tls.verify",
     .def = "true",
     .offset = O(tls_verify),
     .desc = "Verify the broker's certificate and host name."},
    {.type = TD_OPT_DURATION,
     .name = "reconnect.min",
     .def = "1s",
     .offset = O(reconnect_min_ms),
     .min = 100,
     .max = 60000,
     .desc = "First delay before reconnecting; it doubles up to reconnect.max."},
    {.type = TD_OPT_DURATION,
     .name = "reconnect.max",
     .def = "60s",
     .offset = O(reconnect_max_ms),
     .min = 1000,
     .max = 3600000,
     .desc = "Longest delay between reconnection attempts."},
    {.type = TD_OPT_INT,
     .name = "receive_maximum",
     .def = "100",
     .offset = O(receive_maximum),
     .min = 1,
     .max = 65535,
     .desc = "Most QoS 1/2 messages the broker sends before triggerd acknowledges (MQTT 5 "
	     "Receive Maximum), most spooled messages not yet settled and most QoS 0 events "
	     "in flight: bounds the events in flight."},
    {.type = TD_OPT_SIZE,
     .name = "max_payload",
     .def = "1MB",
     .offset = O(max_payload),
     .min = 1,
     .max = 268435455,
     .desc = "Largest payload taken; a bigger message is logged as an error with its topic "
	     "and size, acknowledged and dropped (it would never fit)."},
    {.type = TD_OPT_STRING,
     .name = "reply_topic",
     .offset = O(reply_topic),
     .desc = "Topic the result of a sync trigger is published to when the message has no "
	     "MQTT 5 response topic (MQTT 3.1.1 request/response); {topic} stands for the "
	     "request's topic: \"replies/{topic}\". Default: none."},
    {.type = TD_OPT_INT,
     .name = "publish.qos",
     .def = "1",
     .offset = O(publish_qos),
     .min = 0,
     .max = 2,
     .desc = "QoS of what triggerd publishes through this source (replies, mqtt:// "
	     "destinations; a destination may say \"mqtt://SOURCE/topic?qos=0\")."},
    {.type = TD_OPT_BOOL,
     .name = "publish.retain",
     .def = "false",
     .offset = O(publish_retain),
     .desc = "Retain flag of what triggerd publishes (a destination may say "
	     "\"?retain=true\")."},
    {0},
};

static void mqtt_check(const void *p, const char *file, int line, struct td_diag *diag)
{
	const struct mqtt_opts *o = p;
	char err[256];
	bool tls_uri = false;

	for (size_t i = 0; i < o->uri.n; i++) {
		if (td_url_check(o->uri.v[i], "tcp://|ssl://|ws://|wss://|mqtt://|mqtts://", err,
				 sizeof err) < 0)
			td_diag_add(diag, file, line, "option 'uri': %s", err);
		else if (strncmp(o->uri.v[i], "ssl://", 6) == 0 ||
			 strncmp(o->uri.v[i], "wss://", 6) == 0 ||
			 strncmp(o->uri.v[i], "mqtts://", 8) == 0)
			tls_uri = true;
	}
	for (size_t i = 0; i < o->topics.n; i++) {
		const char *f = o->topics.v[i];
		if (strncmp(f, "$share/", 7) == 0)
			td_diag_add(diag, file, line,
				    "option 'topics': write \"%.200s\" without $share/ and set "
				    "shared_group",
				    f);
		else if (td_mqtt_filter_validate(f, err, sizeof err) < 0)
			td_diag_add(diag, file, line, "option 'topics': \"%.200s\": %s", f, err);
	}
	if (o->shared_group && (!*o->shared_group || strpbrk(o->shared_group, "/+#")))
		td_diag_add(diag, file, line,
			    "option 'shared_group': \"%.80s\" must not contain '/', '+' or '#'",
			    o->shared_group);
	if ((o->tls_ca_file || o->tls_cert_file || o->tls_key_file) && !tls_uri)
		td_diag_add(diag, file, line, "tls options need an ssl://, wss:// or mqtts:// uri");
	if (!o->tls_cert_file != !o->tls_key_file)
		td_diag_add(diag, file, line,
			    "options 'tls.cert_file' and 'tls.key_file' go together");
	if (o->password && !o->username)
		td_diag_add(diag, file, line, "option 'password' needs option 'username'");
	if (o->reconnect_max_ms < o->reconnect_min_ms)
		td_diag_add(diag, file, line,
			    "option 'reconnect.max' must not be shorter than reconnect.min");
	if (o->reply_topic && td_mqtt_template_validate(o->reply_topic, err, sizeof err) < 0)
		td_diag_add(diag, file, line, "option 'reply_topic': %s", err);
	if (o->client_id && strlen(o->client_id) > 256)
		td_diag_add(diag, file, line, "option 'client_id' is longer than 256 bytes");
}

/* ---- runtime ---------------------------------------------------------------------- */

/* One record to publish: a reply, or a record of an mqtt:// destination. */
struct publish_item {
	struct publish_item *next;
	struct mqtt_rt *rt;
	char *topic;
	void *payload;
	size_t len;
	int qos;
	bool retain;
	char *content_type; /* MQTT 5, or NULL */
	void *correlation;  /* MQTT 5, or NULL */
	size_t correlation_len;
	const char *status; /* MQTT 5 user property triggerd-status, or NULL */
	void (*done)(void *arg, bool ok, const char *error); /* NULL: a reply */
	void *arg;
	bool ok;
	char error[200];
};

#define SPOOL_FLUSH_MS 100 /* settled spool rows are written at least this often */

/* One submitted message: the settle handle. */
struct delivery {
	struct delivery *next; /* rt->held (engine thread) */
	int qos;
	bool settled, abandoned; /* abandoned: the callback left, settle frees it */
	long long spool_id;	 /* > 0: spooled (acknowledged already); see spool_message */
	struct td_event *ev;	 /* spooled: for a submission again after a busy settle */
	enum td_settle_status status;
	long long retry_after_ms;
	char *topic;
	char *reply_topic; /* where the sync result goes, or NULL */
	void *correlation;
	size_t correlation_len;
};

/* The worker's state: a heap block that the worker frees itself when destroy could not
 * wait for it. Every string is a private copy, since the options belong to the
 * configuration generation. */
struct mqtt_rt {
	struct td_source *src; /* touched only under lock while !quit, or while !stopping */
	struct td_engine *engine;
	char scope[96];
	char name[128]; /* the source's name */
	int version;	/* MQTTVERSION_5 or MQTTVERSION_3_1_1 */
	char **uris;
	size_t nuris;
	char *client_id;
	char *persist_dir;
	char **filters; /* as subscribed ($share/GROUP/... when shared) */
	int *filter_qos;
	size_t nfilters;
	char *username, *password;
	char *ca_file, *cert_file, *key_file, *key_password;
	bool tls, tls_verify, clean_start;
	long long session_expiry_s, keepalive_s, receive_maximum, max_payload;
	long long reconnect_min_ms, reconnect_max_ms;
	char *reply_template;
	int publish_qos;
	bool publish_retain;

	MQTTAsync client;
	pthread_t worker;
	pthread_mutex_t lock;
	pthread_cond_t cond;  /* callbacks wait for settles */
	pthread_cond_t wcond; /* the worker waits for work */
	bool stopping;	      /* stop(): submit nothing more */
	bool quit;	      /* destroy(): the worker tears down */
	bool orphaned;	      /* destroy gave up waiting: the worker frees rt */
	bool worker_done;
	bool connected, connecting, disconnected;
	int before[256]; /* TCP sockets before the connection attempt */
	int nbefore;
	char tls_error[200]; /* OpenSSL's last word on a failed handshake */
	int sock_fd;	     /* paho's socket to the broker, or -1 */
	int sock_port;
	int attempt;
	long long next_connect_ms;
	struct publish_item *pub_head, *pub_tail;
	long long qos0_inflight;
	struct td_mqtt_spool *spool;	   /* NULL: none could be opened (every message waits) */
	long long spooled;		   /* spooled messages not settled yet */
	struct delivery *held, *held_tail; /* engine thread: spooled, turned away, in order */
	struct td_timer *held_timer;
	unsigned long long seq;
	struct td_log_ratelimit rl_payload, rl_busy, rl_connect, rl_failed, rl_spool;
};

struct mqtt_ctx {
	struct mqtt_rt *rt;
};

/* Readiness for /readyz, from any thread; nothing once destroy began (the instance may be
 * gone). */
static void set_ready(struct mqtt_rt *rt, bool ready, const char *reason)
{
	pthread_mutex_lock(&rt->lock);
	if (!rt->quit)
		td_source_set_ready(rt->src, ready, reason);
	pthread_mutex_unlock(&rt->lock);
}

static struct mqtt_rt *rt_of(struct td_source *src)
{
	return ((struct mqtt_ctx *)td_source_ctx(src))->rt;
}

static void publish_item_free(struct publish_item *p)
{
	if (!p)
		return;
	free(p->topic);
	free(p->payload);
	free(p->content_type);
	free(p->correlation);
	free(p);
}

static void delivery_free(struct delivery *d)
{
	if (!d)
		return;
	free(d->topic);
	free(d->reply_topic);
	free(d->correlation);
	td_event_unref(d->ev);
	free(d);
}

static void free_strings(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

static void rt_free(struct mqtt_rt *rt)
{
	free_strings(rt->uris, rt->nuris);
	free_strings(rt->filters, rt->nfilters);
	free(rt->filter_qos);
	free(rt->client_id);
	free(rt->persist_dir);
	free(rt->username);
	free(rt->password);
	free(rt->ca_file);
	free(rt->cert_file);
	free(rt->key_file);
	free(rt->key_password);
	free(rt->reply_template);
	td_mqtt_spool_release(rt->spool);
	while (rt->pub_head) {
		struct publish_item *p = rt->pub_head;
		rt->pub_head = p->next;
		publish_item_free(p);
	}
	pthread_mutex_destroy(&rt->lock);
	pthread_cond_destroy(&rt->cond);
	pthread_cond_destroy(&rt->wcond);
	free(rt);
}

/* strdup that keeps NULL; sets *failed when out of memory. */
static char *dup_opt(const char *s, bool *failed)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		*failed = true;
	return d;
}

static void timespec_after(struct timespec *ts, long long ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Waits on c at most ms (rt->lock held). */
static void wait_ms(struct mqtt_rt *rt, pthread_cond_t *c, long long ms)
{
	struct timespec ts;
	timespec_after(&ts, ms);
	pthread_cond_timedwait(c, &rt->lock, &ts);
}

/* ---- publishing: the engine queues, the worker sends, paho answers ---- */

static void publish_finish(void *arg)
{
	struct publish_item *p = arg;
	if (p->done)
		p->done(p->arg, p->ok, p->ok ? NULL : p->error);
	else if (!p->ok)
		td_logs_warn(p->rt->scope, "reply to \"%s\" not published: %s", p->topic, p->error);
	publish_item_free(p);
}

/* Any thread: reports p on the engine thread. */
static void publish_report(struct publish_item *p, bool ok, const char *error)
{
	p->ok = ok;
	if (!ok)
		snprintf(p->error, sizeof p->error, "%s", error ? error : "not published");
	if (td_engine_call(p->rt->engine, publish_finish, p) < 0)
		publish_item_free(p); /* the engine is gone: nobody waits any more */
}

static void on_publish_ok(void *context, MQTTAsync_successData *response)
{
	(void)response;
	publish_report(context, true, NULL);
}

static void on_publish_ok5(void *context, MQTTAsync_successData5 *response)
{
	(void)response;
	publish_report(context, true, NULL);
}

static void on_publish_fail(void *context, MQTTAsync_failureData *response)
{
	char why[160];
	snprintf(why, sizeof why, "broker did not take it: %s",
		 response && response->message
		     ? response->message
		     : MQTTAsync_strerror(response ? response->code : -1));
	publish_report(context, false, why);
}

static void on_publish_fail5(void *context, MQTTAsync_failureData5 *response)
{
	char why[160];
	snprintf(why, sizeof why, "broker did not take it: %s",
		 response && response->reasonCode
		     ? MQTTReasonCode_toString(response->reasonCode)
		     : (response && response->message
			    ? response->message
			    : MQTTAsync_strerror(response ? response->code : -1)));
	publish_report(context, false, why);
}

/* Worker thread: hands one record to paho (which buffers it while disconnected). */
static void send_one(struct mqtt_rt *rt, struct publish_item *p)
{
	MQTTAsync_message msg = MQTTAsync_message_initializer;
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	msg.payload = p->payload ? p->payload : "";
	msg.payloadlen = (int)p->len;
	msg.qos = p->qos;
	msg.retained = p->retain;
	ro.context = p;
	if (rt->version == MQTTVERSION_5) {
		ro.onSuccess5 = on_publish_ok5;
		ro.onFailure5 = on_publish_fail5;
		MQTTProperty prop;
		if (p->content_type) {
			prop.identifier = MQTTPROPERTY_CODE_CONTENT_TYPE;
			prop.value.data.data = p->content_type;
			prop.value.data.len = (int)strlen(p->content_type);
			MQTTProperties_add(&msg.properties, &prop);
		}
		if (p->correlation) {
			prop.identifier = MQTTPROPERTY_CODE_CORRELATION_DATA;
			prop.value.data.data = p->correlation;
			prop.value.data.len = (int)p->correlation_len;
			MQTTProperties_add(&msg.properties, &prop);
		}
		if (p->status) {
			prop.identifier = MQTTPROPERTY_CODE_USER_PROPERTY;
			prop.value.data.data = (char *)"triggerd-status";
			prop.value.data.len = 15;
			prop.value.value.data = (char *)p->status;
			prop.value.value.len = (int)strlen(p->status);
			MQTTProperties_add(&msg.properties, &prop);
		}
	} else {
		ro.onSuccess = on_publish_ok;
		ro.onFailure = on_publish_fail;
	}
	int rc = MQTTAsync_sendMessage(rt->client, p->topic, &msg, &ro);
	MQTTProperties_free(&msg.properties);
	if (rc != MQTTASYNC_SUCCESS) {
		char why[160];
		snprintf(why, sizeof why, "cannot publish: %s", MQTTAsync_strerror(rc));
		publish_report(p, false, why);
	}
}

/* Any thread: queues p for the worker (or fails it when the worker is gone). */
static void publish_queue(struct mqtt_rt *rt, struct publish_item *p)
{
	pthread_mutex_lock(&rt->lock);
	bool gone = rt->quit;
	if (!gone) {
		if (rt->pub_tail)
			rt->pub_tail->next = p;
		else
			rt->pub_head = p;
		rt->pub_tail = p;
		pthread_cond_signal(&rt->wcond);
	}
	pthread_mutex_unlock(&rt->lock);
	if (gone)
		publish_report(p, false, "the source is stopping");
}

static void mqtt_publish(struct td_source *src, const char *target, const void *record, size_t len,
			 void (*done)(void *arg, bool ok, const char *error), void *arg)
{
	struct mqtt_rt *rt = rt_of(src);
	struct publish_item *p = calloc(1, sizeof *p);
	char err[200] = "out of memory";
	if (!p || !rt) {
		free(p);
		/* done must run later, never inside this call. */
		struct publish_item *q = calloc(1, sizeof *q);
		if (!q) {
			td_logs_error(td_source_scope(src), "out of memory: record not published");
			return;
		}
		q->done = done;
		q->arg = arg;
		snprintf(q->error, sizeof q->error, "%s", rt ? err : "the source is not running");
		if (td_engine_call(td_source_engine(src), publish_finish, q) < 0)
			free(q);
		return;
	}
	p->rt = rt;
	p->done = done;
	p->arg = arg;
	p->qos = rt->publish_qos;
	p->retain = rt->publish_retain;
	p->payload = malloc(len ? len : 1);
	if (p->payload)
		memcpy(p->payload, record, len);
	p->len = len;
	if (!p->payload ||
	    td_mqtt_target_parse(target, &p->topic, &p->qos, &p->retain, err, sizeof err) < 0) {
		publish_report(p, false, err);
		return;
	}
	publish_queue(rt, p);
}

/* Engine thread: the sync result of a request goes to its reply topic. */
static void queue_reply(struct mqtt_rt *rt, struct delivery *d, const struct td_settlement *s)
{
	const struct td_result *res = s->result;
	struct publish_item *p = calloc(1, sizeof *p);
	if (!p || !(p->topic = strdup(d->reply_topic)))
		goto fail;
	p->rt = rt;
	p->qos = rt->publish_qos;
	p->len = res->body ? res->body_len : 0;
	if (!(p->payload = malloc(p->len ? p->len : 1)))
		goto fail;
	if (p->len)
		memcpy(p->payload, res->body, p->len);
	if (res->content_type && !(p->content_type = strdup(res->content_type)))
		goto fail;
	if (d->correlation) {
		if (!(p->correlation = malloc(d->correlation_len ? d->correlation_len : 1)))
			goto fail;
		memcpy(p->correlation, d->correlation, d->correlation_len);
		p->correlation_len = d->correlation_len;
	}
	p->status = s->status == TD_SETTLE_DONE ? "ok" : "error";
	publish_queue(rt, p);
	return;
fail:
	td_logs_error(rt->scope, "out of memory: reply to \"%s\" lost", d->reply_topic);
	publish_item_free(p);
}

/* ---- receiving ---- */

/* The reply topic of a message: its MQTT 5 response topic, else reply_topic. */
static int reply_target(struct mqtt_rt *rt, struct delivery *d, MQTTAsync_message *msg,
			const char *topic)
{
	char err[200];
	if (rt->version == MQTTVERSION_5) {
		MQTTProperty *rp =
		    MQTTProperties_getProperty(&msg->properties, MQTTPROPERTY_CODE_RESPONSE_TOPIC);
		MQTTProperty *cp = MQTTProperties_getProperty(&msg->properties,
							      MQTTPROPERTY_CODE_CORRELATION_DATA);
		if (rp && rp->value.data.len > 0) {
			if (!(d->reply_topic =
				  strndup(rp->value.data.data, (size_t)rp->value.data.len)))
				return -TD_ENOMEM;
			if (td_mqtt_topic_validate(d->reply_topic, err, sizeof err) < 0) {
				td_logs_warn(rt->scope, "message on \"%s\": response topic: %s",
					     topic, err);
				free(d->reply_topic);
				d->reply_topic = NULL;
			}
		}
		if (cp && cp->value.data.len > 0) {
			d->correlation = malloc((size_t)cp->value.data.len);
			if (!d->correlation)
				return -TD_ENOMEM;
			memcpy(d->correlation, cp->value.data.data, (size_t)cp->value.data.len);
			d->correlation_len = (size_t)cp->value.data.len;
		}
	}
	if (!d->reply_topic && rt->reply_template) {
		d->reply_topic =
		    td_mqtt_template_render(rt->reply_template, topic, err, sizeof err);
		if (!d->reply_topic)
			td_logs_warn(rt->scope, "message on \"%s\": %s", topic, err);
	}
	return 0;
}

static struct td_event *make_event(struct mqtt_rt *rt, const char *topic, size_t tlen,
				   MQTTAsync_message *msg, bool *permanent)
{
	struct td_mqtt_property props[64];
	struct td_mqtt_message m = {
	    .source = rt->name,
	    .topic = topic,
	    .topic_len = tlen,
	    .payload = msg->payload,
	    .payload_len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0,
	    .qos = msg->qos,
	    .retained = msg->retained != 0,
	    .props = props,
	    .receipt_ms = td_wall_ms(),
	};
	char note[200], err[200];
	for (int i = 0; i < msg->properties.count; i++) {
		MQTTProperty *p = &msg->properties.array[i];
		if (p->identifier == MQTTPROPERTY_CODE_CONTENT_TYPE) {
			m.content_type = p->value.data.data;
			m.content_type_len = (size_t)p->value.data.len;
		} else if (p->identifier == MQTTPROPERTY_CODE_USER_PROPERTY &&
			   m.nprops < sizeof props / sizeof props[0]) {
			props[m.nprops++] = (struct td_mqtt_property){
			    p->value.data.data, (size_t)p->value.data.len, p->value.value.data,
			    (size_t)p->value.value.len};
		}
	}
	pthread_mutex_lock(&rt->lock);
	m.seq = rt->seq++;
	pthread_mutex_unlock(&rt->lock);
	struct td_event *ev = td_mqtt_event_create(&m, note, sizeof note, err, sizeof err);
	*permanent = !ev && strcmp(err, "out of memory") != 0;
	if (!ev)
		td_logs_error(rt->scope, "message on \"%.200s\" cannot become an event: %s", topic,
			      err);
	else if (note[0])
		td_logs_debug(rt->scope, "message on \"%.200s\": %s", topic, note);
	return ev;
}

/*
 * paho's receive thread, for a QoS 1/2 message whose triggers are all async: writes it to
 * the spool and hands it to the router without waiting for the settle, so that paho
 * acknowledges it at once (mqtt_spool.h). At most receive_maximum spooled messages are
 * unsettled; the next one waits here (and the broker holds the rest). Returns 1 when the
 * message is in the spool (acknowledge it; d then belongs to the settle), 0 when it could
 * not be written (wait for the router instead), -1 when the source stops first.
 */
static int spool_message(struct mqtt_rt *rt, struct td_event *ev, struct delivery *d)
{
	pthread_mutex_lock(&rt->lock);
	while (rt->spooled >= rt->receive_maximum && !rt->stopping)
		pthread_cond_wait(&rt->cond, &rt->lock);
	if (rt->stopping) {
		pthread_mutex_unlock(&rt->lock);
		return -1;
	}
	rt->spooled++;
	pthread_mutex_unlock(&rt->lock);

	char err[400] = "out of memory";
	size_t len = 0;
	char *stored = td_event_encode(ev, &len);
	struct td_mqtt_spooled m = {.event = stored,
				    .event_len = len,
				    .reply_topic = d->reply_topic,
				    .correlation = d->correlation,
				    .correlation_len = d->correlation_len};
	int rc = stored ? td_mqtt_spool_append(rt->spool, &m, &d->spool_id, err, sizeof err)
			: -TD_ENOMEM;
	free(stored);

	pthread_mutex_lock(&rt->lock);
	if (rc < 0) {
		d->spool_id = 0;
		rt->spooled--;
		pthread_cond_broadcast(&rt->cond);
		bool log = td_log_ratelimit(&rt->rl_spool, 3, 10000);
		pthread_mutex_unlock(&rt->lock);
		if (log)
			td_logs_error(rt->scope,
				      "message on \"%.200s\" not spooled (%s): it waits for the "
				      "router instead",
				      d->topic, err);
		return 0;
	}
	struct td_event *one = NULL;
	/* Under the lock, so that once stop() returned nothing more is submitted. A message
	 * that cannot be submitted now stays in the spool for the next start. */
	if (!rt->stopping) {
		d->ev = td_event_ref(ev);
		one = td_event_ref(ev);
	}
	if (!one || td_source_submit(rt->src, &one, 1, d) < 0) {
		rt->spooled--;
		pthread_mutex_unlock(&rt->lock);
		td_mqtt_spool_unclaim(rt->spool, d->spool_id);
		delivery_free(d);
		return 1;
	}
	pthread_mutex_unlock(&rt->lock);
	return 1;
}

/*
 * paho's receive thread. Returns 1 (acknowledge) once the event is settled or spooled, 0
 * (paho keeps the message in its persistence and delivers it again) when the source stops
 * first.
 */
static int on_message(void *context, char *topic_name, int topic_len, MQTTAsync_message *msg)
{
	struct mqtt_rt *rt = context;
	size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic_name);
	struct td_event *ev = NULL;
	struct delivery *d = NULL;
	bool permanent = false;

	pthread_mutex_lock(&rt->lock);
	bool stopping = rt->stopping;
	pthread_mutex_unlock(&rt->lock);
	if (stopping)
		goto keep;
	if (msg->payloadlen > 0 && (long long)msg->payloadlen > rt->max_payload) {
		pthread_mutex_lock(&rt->lock);
		bool log = td_log_ratelimit(&rt->rl_payload, 5, 10000);
		pthread_mutex_unlock(&rt->lock);
		if (log)
			td_logs_error(
			    rt->scope,
			    "message on \"%.200s\" dropped: its payload of %d bytes is over "
			    "max_payload (%lld bytes)",
			    topic_name, msg->payloadlen, rt->max_payload);
		goto ack;
	}
	if (!(ev = make_event(rt, topic_name, tlen, msg, &permanent)))
		goto out;
	if (!(d = calloc(1, sizeof *d)) || !(d->topic = strndup(topic_name, tlen)) ||
	    reply_target(rt, d, msg, d->topic) < 0)
		goto out;
	d->qos = msg->qos;
	if (d->qos > 0 && rt->spool && !td_source_has_sync_triggers(rt->src)) {
		int spooled = spool_message(rt, ev, d);
		if (spooled == 1) {
			d = NULL;
			goto ack;
		}
		if (spooled < 0) {
			delivery_free(d);
			td_event_unref(ev);
			return 0;
		}
	}

	pthread_mutex_lock(&rt->lock);
	for (;;) {
		if (rt->stopping)
			break;
		if (d->qos == 0) {
			while (rt->qos0_inflight >= rt->receive_maximum && !rt->stopping)
				pthread_cond_wait(&rt->cond, &rt->lock);
			if (rt->stopping)
				break;
			rt->qos0_inflight++;
		}
		/* Under the lock, so that once stop() returned nothing more is submitted. */
		struct td_event *one = td_event_ref(ev);
		td_source_submit(rt->src, &one, 1, d);
		if (d->qos == 0) {
			d = NULL; /* settle frees it */
			pthread_mutex_unlock(&rt->lock);
			goto ack;
		}
		while (!d->settled && !rt->stopping)
			pthread_cond_wait(&rt->cond, &rt->lock);
		if (!d->settled) {
			d->abandoned = true;
			d = NULL;
			break;
		}
		if (d->status != TD_SETTLE_BUSY) {
			pthread_mutex_unlock(&rt->lock);
			goto ack;
		}
		/* Busy: hold the message (the broker keeps the rest) and submit it again. */
		long long delay = d->retry_after_ms < 100 ? 100 : d->retry_after_ms;
		if (delay > 30000)
			delay = 30000;
		if (td_log_ratelimit(&rt->rl_busy, 3, 10000))
			td_logs_warn(rt->scope,
				     "message on \"%.200s\" held: the router is busy; "
				     "trying again in %lld ms",
				     d->topic, delay);
		d->settled = false;
		long long until = td_now_ms() + delay;
		while (!rt->stopping && td_now_ms() < until)
			wait_ms(rt, &rt->cond, until - td_now_ms());
	}
	pthread_mutex_unlock(&rt->lock);
	/* Stopping: keep the message for the next start. */
	delivery_free(d);
	td_event_unref(ev);
keep:
	if (msg->qos == 0)
		goto ack_free;
	return 0;
ack:
	delivery_free(d);
	td_event_unref(ev);
ack_free:
	MQTTAsync_freeMessage(&msg);
	MQTTAsync_free(topic_name);
	return 1;
out:
	/* No event: a message that can never become one is acknowledged (it was logged);
	 * out of memory keeps it for a later delivery. */
	delivery_free(d);
	td_event_unref(ev);
	if (permanent || msg->qos == 0)
		goto ack_free;
	return 0;
}

/* Engine thread: a spooled message leaves the spool's count of unsettled messages; its
 * row goes (settled) or stays for the next start (not taken). */
static void spooled_done(struct mqtt_rt *rt, struct delivery *d, bool taken)
{
	if (taken)
		td_mqtt_spool_remove(rt->spool, d->spool_id);
	else
		td_mqtt_spool_unclaim(rt->spool, d->spool_id);
	pthread_mutex_lock(&rt->lock);
	rt->spooled--;
	pthread_cond_broadcast(&rt->cond);
	pthread_mutex_unlock(&rt->lock);
	delivery_free(d);
}

/* Engine thread (held_timer): the held spooled messages are submitted again. */
static void held_due(void *arg)
{
	struct mqtt_rt *rt = arg;
	struct delivery *list = rt->held;
	rt->held = rt->held_tail = NULL;
	rt->held_timer = NULL;
	while (list) {
		struct delivery *d = list;
		list = d->next;
		d->next = NULL;
		pthread_mutex_lock(&rt->lock);
		struct td_event *one = rt->stopping ? NULL : td_event_ref(d->ev);
		bool submitted = one && td_source_submit(rt->src, &one, 1, d) == 0;
		pthread_mutex_unlock(&rt->lock);
		if (!submitted)
			spooled_done(rt, d, false);
	}
}

/* Engine thread: stop() drops the held messages (their rows stay for the next start). */
static void drop_held(struct mqtt_rt *rt)
{
	if (rt->held_timer)
		td_timer_cancel(rt->engine, rt->held_timer);
	rt->held_timer = NULL;
	while (rt->held) {
		struct delivery *d = rt->held;
		rt->held = d->next;
		spooled_done(rt, d, false);
	}
	rt->held_tail = NULL;
}

/* Engine thread: a spooled message was settled. Not taken (busy, or a failure without a
 * function's answer: the async queue could not be written): it is held in memory (its
 * row is in the spool) and submitted again after retry_after. A sync function's error
 * answer counts as handled, as it does for a message that waited for it. */
static void settle_spooled(struct mqtt_rt *rt, struct delivery *d, const struct td_settlement *s)
{
	bool taken = s->status == TD_SETTLE_DONE || (s->status == TD_SETTLE_FAILED && s->result);
	pthread_mutex_lock(&rt->lock);
	bool stopping = rt->stopping;
	bool log_failed =
	    taken && s->status == TD_SETTLE_FAILED && td_log_ratelimit(&rt->rl_failed, 5, 10000);
	bool log_busy = !taken && !stopping && td_log_ratelimit(&rt->rl_busy, 3, 10000);
	pthread_mutex_unlock(&rt->lock);
	if (log_failed)
		td_logs_warn(rt->scope, "message on \"%.200s\": sync function failed (%s)",
			     d->topic, s->reason ? s->reason : "error");
	if (taken || stopping) {
		spooled_done(rt, d, taken);
		return;
	}
	long long delay = s->retry_after_ms < 100 ? 100 : s->retry_after_ms;
	if (delay > 30000)
		delay = 30000;
	if (log_busy)
		td_logs_warn(rt->scope,
			     "spooled message on \"%.200s\" held: the router did not take it "
			     "(%s); trying again in %lld ms",
			     d->topic, s->reason ? s->reason : "busy", delay);
	if (!rt->held_timer && !(rt->held_timer = td_timer_add(rt->engine, delay, held_due, rt))) {
		spooled_done(rt, d, false); /* out of memory: the worker recovers it */
		return;
	}
	d->next = NULL;
	if (rt->held_tail)
		rt->held_tail->next = d;
	else
		rt->held = d;
	rt->held_tail = d;
}

static void mqtt_settle(struct td_source *src, void *handle, const struct td_settlement *s)
{
	struct mqtt_rt *rt = rt_of(src);
	struct delivery *d = handle;
	if (s->status != TD_SETTLE_BUSY && s->result && d->reply_topic)
		queue_reply(rt, d, s);
	if (d->spool_id > 0) {
		settle_spooled(rt, d, s);
		return;
	}
	pthread_mutex_lock(&rt->lock);
	if (s->status == TD_SETTLE_FAILED && td_log_ratelimit(&rt->rl_failed, 5, 10000))
		td_logs_warn(rt->scope,
			     "message on \"%.200s\": sync function failed (%s); "
			     "acknowledged",
			     d->topic, s->reason ? s->reason : "error");
	if (d->qos == 0) {
		rt->qos0_inflight--;
		pthread_cond_broadcast(&rt->cond);
		if (s->status == TD_SETTLE_BUSY && td_log_ratelimit(&rt->rl_busy, 3, 10000))
			td_logs_warn(rt->scope, "QoS 0 message on \"%.200s\" dropped: %s", d->topic,
				     s->reason ? s->reason : "busy");
		pthread_mutex_unlock(&rt->lock);
		delivery_free(d);
		return;
	}
	if (d->abandoned) {
		pthread_mutex_unlock(&rt->lock);
		delivery_free(d);
		return;
	}
	d->settled = true;
	d->status = s->status;
	d->retry_after_ms = s->retry_after_ms;
	pthread_cond_broadcast(&rt->cond);
	pthread_mutex_unlock(&rt->lock);
}

/* ---- connecting ---- */

static void schedule_reconnect(struct mqtt_rt *rt, const char *why)
{
	pthread_mutex_lock(&rt->lock);
	rt->connecting = false;
	rt->connected = false;
	rt->attempt++;
	long long ceiling =
	    td_backoff_ceiling_ms(rt->attempt, rt->reconnect_min_ms, rt->reconnect_max_ms);
	long long delay = ceiling / 2 + (ceiling > 1 ? random() % (ceiling / 2 + 1) : 0);
	rt->next_connect_ms = td_now_ms() + delay;
	bool quit = rt->quit || rt->orphaned || rt->stopping;
	rt->sock_fd = -1;
	bool log = !quit && td_log_ratelimit(&rt->rl_connect, 3, 30000);
	int attempt = rt->attempt;
	pthread_cond_signal(&rt->wcond);
	pthread_mutex_unlock(&rt->lock);
	if (quit)
		return;
	char reason[400];
	snprintf(reason, sizeof reason, "%s; reconnecting in %lld ms (attempt %d)", why, delay,
		 attempt);
	set_ready(rt, false, reason);
	if (log)
		td_logs_error(rt->scope, "%s", reason);
}

static void on_subscribed(struct mqtt_rt *rt, const int *codes, int ncodes)
{
	for (int i = 0; i < ncodes && i < (int)rt->nfilters; i++)
		if (codes[i] >= 0x80) {
			char reason[400];
			snprintf(reason, sizeof reason,
				 "the broker refused the subscription to \"%.200s\" (%s)",
				 rt->filters[i],
				 MQTTReasonCode_toString((enum MQTTReasonCodes)codes[i]));
			td_logs_error(rt->scope, "%s", reason);
			set_ready(rt, false, reason);
			return;
		}
	td_logs_info(rt->scope, "subscribed to %zu topic filter%s", rt->nfilters,
		     rt->nfilters == 1 ? "" : "s");
	set_ready(rt, true, NULL);
}

static void on_sub_ok(void *context, MQTTAsync_successData *response)
{
	struct mqtt_rt *rt = context;
	int one = response ? response->alt.qos : 0;
	if (rt->nfilters > 1 && response)
		on_subscribed(rt, response->alt.qosList, (int)rt->nfilters);
	else
		on_subscribed(rt, &one, 1);
}

static void on_sub_ok5(void *context, MQTTAsync_successData5 *response)
{
	struct mqtt_rt *rt = context;
	int codes[64];
	int n = 0;
	/* paho fills the array only for several filters; one is in reasonCode. */
	if (response && response->alt.sub.reasonCodeCount > 1 && response->alt.sub.reasonCodes)
		for (; n < response->alt.sub.reasonCodeCount && n < 64; n++)
			codes[n] = response->alt.sub.reasonCodes[n];
	else if (response)
		codes[n++] = response->reasonCode;
	on_subscribed(rt, codes, n);
}

static void sub_failed(struct mqtt_rt *rt, const char *why)
{
	char reason[300];
	snprintf(reason, sizeof reason, "subscribing failed: %s", why);
	td_logs_error(rt->scope, "%s", reason);
	set_ready(rt, false, reason);
}

static void on_sub_fail(void *context, MQTTAsync_failureData *response)
{
	sub_failed(context, response && response->message
				? response->message
				: MQTTAsync_strerror(response ? response->code : -1));
}

static void on_sub_fail5(void *context, MQTTAsync_failureData5 *response)
{
	sub_failed(context, response && response->reasonCode
				? MQTTReasonCode_toString(response->reasonCode)
				: (response && response->message ? response->message : "error"));
}

static void subscribe(struct mqtt_rt *rt)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	MQTTSubscribe_options so[64];
	ro.context = rt;
	if (rt->version == MQTTVERSION_5) {
		ro.onSuccess5 = on_sub_ok5;
		ro.onFailure5 = on_sub_fail5;
		/* Retained messages only for a new subscription: a resumed session does not
		 * get them again at each reconnect. */
		for (size_t i = 0; i < rt->nfilters && i < 64; i++) {
			so[i] = (MQTTSubscribe_options)MQTTSubscribe_options_initializer;
			so[i].retainHandling = 1;
		}
		ro.subscribeOptionsCount = (int)rt->nfilters;
		ro.subscribeOptionsList = so;
	} else {
		ro.onSuccess = on_sub_ok;
		ro.onFailure = on_sub_fail;
	}
	int rc = MQTTAsync_subscribeMany(rt->client, (int)rt->nfilters, rt->filters, rt->filter_qos,
					 &ro);
	if (rc != MQTTASYNC_SUCCESS)
		sub_failed(rt, MQTTAsync_strerror(rc));
}

/* The port of a tcp://, mqtt://, ssl://, ws:// ... URI (its scheme's default without one). */
static int uri_port(const char *uri)
{
	const char *hp = strstr(uri, "://");
	hp = hp ? hp + 3 : uri;
	const char *end = hp + strcspn(hp, "/");
	const char *colon = NULL;
	for (const char *p = hp; p < end; p++)
		if (*p == ':')
			colon = p;
	if (colon && (hp[0] != '[' || colon > strchr(hp, ']')))
		return atoi(colon + 1);
	if (strncmp(uri, "ssl", 3) == 0 || strncmp(uri, "mqtts", 5) == 0)
		return 8883;
	if (strncmp(uri, "wss", 3) == 0)
		return 443;
	if (strncmp(uri, "ws", 2) == 0)
		return 80;
	return 1883;
}

/* The TCP sockets of this process whose peer port is port (any peer: port < 0). */
static int tcp_sockets(int port, int *out, int cap)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;
	if (!dir)
		return 0;
	while ((de = readdir(dir)) && n < cap) {
		int fd = atoi(de->d_name);
		struct stat st;
		struct sockaddr_storage peer;
		socklen_t len = sizeof peer;
		int type = 0;
		socklen_t tlen = sizeof type;
		if (de->d_name[0] < '0' || de->d_name[0] > '9' || fd == dirfd(dir) ||
		    fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode) ||
		    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 || type != SOCK_STREAM ||
		    getpeername(fd, (struct sockaddr *)&peer, &len) < 0)
			continue;
		int pport =
		    peer.ss_family == AF_INET	 ? ntohs(((struct sockaddr_in *)&peer)->sin_port)
		    : peer.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&peer)->sin6_port)
						 : -1;
		if (pport >= 0 && (port < 0 || pport == port))
			out[n++] = fd;
	}
	closedir(dir);
	return n;
}

static bool has_fd(const int *v, int n, int fd)
{
	for (int i = 0; i < n; i++)
		if (v[i] == fd)
			return true;
	return false;
}

/*
 * paho 1.3 neither exposes its socket nor sets TCP_NODELAY, which holds each
 * acknowledgement back for the broker's delayed ACK (40 ms per message when the callback
 * waits for each settle). Its socket is the TCP socket to the broker's port that was not
 * there before the connection attempt (rt->before): TCP_NODELAY is set on it, and stop()
 * shuts it down so that nothing more is acknowledged. When it cannot be told apart (two
 * clients connecting at once), TCP_NODELAY goes on every socket to that port and stop()
 * falls back to paho's persistence.
 */
static int find_own_socket(struct mqtt_rt *rt, int port)
{
	int now[256], n = tcp_sockets(port, now, 256), found = -1, nfound = 0, one = 1;
	for (int i = 0; i < n; i++)
		if (!has_fd(rt->before, rt->nbefore, now[i])) {
			found = now[i];
			nfound++;
		}
	if (nfound != 1) {
		for (int i = 0; i < n; i++)
			setsockopt(now[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		return -1;
	}
	setsockopt(found, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return found;
}

static void connected(struct mqtt_rt *rt, const char *uri, int session_present)
{
	pthread_mutex_lock(&rt->lock);
	rt->connecting = false;
	rt->connected = true;
	rt->attempt = 0;
	bool quit = rt->quit;
	pthread_mutex_unlock(&rt->lock);
	if (quit)
		return;
	int port = uri_port(uri ? uri : rt->uris[0]);
	int fd = find_own_socket(rt, port);
	pthread_mutex_lock(&rt->lock);
	rt->sock_fd = fd;
	rt->sock_port = port;
	pthread_mutex_unlock(&rt->lock);
	td_logs_info(rt->scope, "connected to %s as \"%s\" (MQTT %s, session %s)",
		     uri ? uri : rt->uris[0], rt->client_id,
		     rt->version == MQTTVERSION_5 ? "5" : "3.1.1",
		     session_present ? "resumed" : "new");
	/* A resumed session already holds the subscriptions, and its backlog may come
	 * before the SUBACK (each message waits for its settle): ready now. */
	if (session_present)
		set_ready(rt, true, NULL);
	subscribe(rt);
}

static void on_connect_ok(void *context, MQTTAsync_successData *response)
{
	connected(context, response ? response->alt.connect.serverURI : NULL,
		  response ? response->alt.connect.sessionPresent : 0);
}

static void on_connect_ok5(void *context, MQTTAsync_successData5 *response)
{
	connected(context, response ? response->alt.connect.serverURI : NULL,
		  response ? response->alt.connect.sessionPresent : 0);
}

static void uris_text(struct mqtt_rt *rt, char *out, size_t cap)
{
	size_t n = 0;
	out[0] = '\0';
	for (size_t i = 0; i < rt->nuris && n + 1 < cap; i++)
		n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? ", " : "", rt->uris[i]);
}

/* paho's TLS error callback: keeps OpenSSL's reason for the connect failure. */
static int on_tls_error(const char *str, size_t len, void *u)
{
	struct mqtt_rt *rt = u;
	pthread_mutex_lock(&rt->lock);
	/* OpenSSL 3 lines look like "THREAD:error:CODE:LIB:FUNC:REASON:FILE:LINE:": keep
	 * REASON, the sixth field, when there is one, else the whole line. */
	const char *p = str, *end = str + len;
	int field = 0;
	for (const char *q = str; q < end && field < 5; q++)
		if (*q == ':' && ++field == 5)
			p = q + 1;
	if (field < 5)
		p = str;
	size_t n = (size_t)(end - p);
	const char *colon = field == 5 ? memchr(p, ':', n) : NULL;
	if (colon)
		n = (size_t)(colon - p);
	while (n && (p[n - 1] == '\n' || p[n - 1] == ':'))
		n--;
	snprintf(rt->tls_error, sizeof rt->tls_error, "%.*s", (int)n, p);
	pthread_mutex_unlock(&rt->lock);
	return 0;
}

/* Appends the TLS reason, if one was reported, to why (and forgets it). */
static void add_tls_error(struct mqtt_rt *rt, char *why, size_t cap)
{
	pthread_mutex_lock(&rt->lock);
	if (rt->tls_error[0]) {
		size_t n = strlen(why);
		snprintf(why + n, cap - n, " (TLS: %s)", rt->tls_error);
		rt->tls_error[0] = '\0';
	}
	pthread_mutex_unlock(&rt->lock);
}

static void on_connect_fail(void *context, MQTTAsync_failureData *response)
{
	struct mqtt_rt *rt = context;
	char why[600], uris[300];
	uris_text(rt, uris, sizeof uris);
	int code = response ? response->code : -1;
	/* paho reports a CONNACK refusal (1..5) as the code. */
	static const char *const refused[] = {
	    NULL,
	    "the broker refused the connection: unacceptable protocol version",
	    "the broker refused the connection: identifier rejected",
	    "the broker refused the connection: server unavailable",
	    "the broker refused the connection: bad user name or password",
	    "the broker refused the connection: not authorized",
	};
	snprintf(why, sizeof why, "cannot connect to %s: %s", uris,
		 code >= 1 && code <= 5		 ? refused[code]
		 : response && response->message ? response->message
						 : MQTTAsync_strerror(code));
	add_tls_error(rt, why, sizeof why);
	schedule_reconnect(rt, why);
}

static void on_connect_fail5(void *context, MQTTAsync_failureData5 *response)
{
	struct mqtt_rt *rt = context;
	char why[600], uris[300];
	uris_text(rt, uris, sizeof uris);
	/* A CONNACK refusal comes as the reason code, or (paho 1.3) as the code. */
	int refusal = !response						 ? 0
		      : response->reasonCode >= 0x80			 ? (int)response->reasonCode
		      : response->code >= 0x80 && response->code <= 0xff ? response->code
									 : 0;
	if (refusal)
		snprintf(why, sizeof why,
			 "cannot connect to %s: the broker refused the "
			 "connection: %s",
			 uris, MQTTReasonCode_toString((enum MQTTReasonCodes)refusal));
	else
		snprintf(why, sizeof why, "cannot connect to %s: %s", uris,
			 response && response->message
			     ? response->message
			     : MQTTAsync_strerror(response ? response->code : -1));
	add_tls_error(rt, why, sizeof why);
	schedule_reconnect(rt, why);
}

static void on_connection_lost(void *context, char *cause)
{
	struct mqtt_rt *rt = context;
	char why[300];
	snprintf(why, sizeof why, "connection to the broker lost%s%.200s", cause ? ": " : "",
		 cause ? cause : "");
	pthread_mutex_lock(&rt->lock);
	rt->attempt = 0;
	pthread_mutex_unlock(&rt->lock);
	schedule_reconnect(rt, why);
	if (cause)
		MQTTAsync_free(cause);
}

/* Worker thread: one connection attempt through the list of URIs. */
static void start_connect(struct mqtt_rt *rt)
{
	MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
	MQTTAsync_connectOptions co5 = MQTTAsync_connectOptions_initializer5;
	MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
	MQTTProperties props = MQTTProperties_initializer;
	MQTTAsync_connectOptions *c = rt->version == MQTTVERSION_5 ? &co5 : &co;
	bool ws = strncmp(rt->uris[0], "ws", 2) == 0;

	c->keepAliveInterval = (int)rt->keepalive_s;
	c->connectTimeout = 10;
	c->context = rt;
	c->serverURIs = rt->uris;
	c->serverURIcount = (int)rt->nuris;
	c->username = rt->username;
	c->password = rt->password;
	c->maxInflight = (int)(rt->receive_maximum < 65535 ? rt->receive_maximum : 65535);
	if (ws)
		c->keepAliveInterval = (int)rt->keepalive_s;
	if (rt->tls) {
		ssl.trustStore = rt->ca_file;
		ssl.keyStore = rt->cert_file;
		ssl.privateKey = rt->key_file;
		ssl.privateKeyPassword = rt->key_password;
		ssl.enableServerCertAuth = rt->tls_verify;
		ssl.verify = rt->tls_verify;
		ssl.ssl_error_cb = on_tls_error;
		ssl.ssl_error_context = rt;
		c->ssl = &ssl;
	}
	if (rt->version == MQTTVERSION_5) {
		MQTTProperty p;
		c->cleanstart = rt->clean_start;
		p.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL;
		p.value.integer4 = (unsigned)rt->session_expiry_s;
		MQTTProperties_add(&props, &p);
		p.identifier = MQTTPROPERTY_CODE_RECEIVE_MAXIMUM;
		p.value.integer2 = (unsigned short)rt->receive_maximum;
		MQTTProperties_add(&props, &p);
		c->connectProperties = &props;
		c->onSuccess5 = on_connect_ok5;
		c->onFailure5 = on_connect_fail5;
	} else {
		c->cleansession = rt->clean_start;
		c->MQTTVersion = MQTTVERSION_3_1_1;
		c->onSuccess = on_connect_ok;
		c->onFailure = on_connect_fail;
	}
	int rc = MQTTAsync_connect(rt->client, c);
	MQTTProperties_free(&props);
	if (rc != MQTTASYNC_SUCCESS) {
		char why[300];
		snprintf(why, sizeof why, "cannot start connecting: %s", MQTTAsync_strerror(rc));
		schedule_reconnect(rt, why);
	}
}

static int create_client(struct mqtt_rt *rt)
{
	MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
	co.MQTTVersion = rt->version;
	co.sendWhileDisconnected = 1;
	co.maxBufferedMessages = 10000;
	co.persistQoS0 = 0;
	int rc = MQTTAsync_createWithOptions(&rt->client, rt->uris[0], rt->client_id,
					     MQTTCLIENT_PERSISTENCE_DEFAULT, rt->persist_dir, &co);
	if (rc == MQTTASYNC_SUCCESS)
		rc = MQTTAsync_setCallbacks(rt->client, rt, on_connection_lost, on_message, NULL);
	if (rc != MQTTASYNC_SUCCESS) {
		char why[400];
		snprintf(why, sizeof why, "cannot create the MQTT client (persistence in %s): %s",
			 rt->persist_dir, MQTTAsync_strerror(rc));
		td_logs_error(rt->scope, "%s", why);
		set_ready(rt, false, why);
		if (rt->client)
			MQTTAsync_destroy(&rt->client);
		rt->client = NULL;
		return -TD_EIO;
	}
	return 0;
}

static void on_disconnected(void *context, MQTTAsync_successData *response)
{
	struct mqtt_rt *rt = context;
	(void)response;
	pthread_mutex_lock(&rt->lock);
	rt->disconnected = true;
	pthread_cond_broadcast(&rt->wcond);
	pthread_mutex_unlock(&rt->lock);
}

static void on_disconnect_fail(void *context, MQTTAsync_failureData *response)
{
	(void)response;
	on_disconnected(context, NULL);
}

static void teardown(struct mqtt_rt *rt)
{
	if (!rt->client)
		return;
	if (MQTTAsync_isConnected(rt->client)) {
		MQTTAsync_disconnectOptions dopts = MQTTAsync_disconnectOptions_initializer;
		dopts.timeout = 1000;
		dopts.context = rt;
		dopts.onSuccess = on_disconnected;
		dopts.onFailure = on_disconnect_fail;
		if (MQTTAsync_disconnect(rt->client, &dopts) == MQTTASYNC_SUCCESS) {
			long long until = td_now_ms() + 2000;
			pthread_mutex_lock(&rt->lock);
			while (!rt->disconnected && td_now_ms() < until)
				wait_ms(rt, &rt->wcond, until - td_now_ms());
			pthread_mutex_unlock(&rt->lock);
		}
	}
	MQTTAsync_destroy(&rt->client);
	rt->client = NULL;
}

/* A spooled message from before (recover_spool): submitted again, with what its reply
 * needs. A row that cannot be read is reported and given up (bad, below). */
struct recovery {
	struct mqtt_rt *rt;
	long long *bad;
	size_t nbad, cap;
};

static int recover_one(void *arg, const struct td_mqtt_spooled *m)
{
	struct recovery *r = arg;
	struct mqtt_rt *rt = r->rt;
	char err[200] = "out of memory";
	struct td_event *ev = td_event_decode(m->event, m->event_len, err, sizeof err);
	struct delivery *d = ev ? calloc(1, sizeof *d) : NULL;
	const char *topic = ev ? td_event_get(ev, "mqtttopic") : NULL;
	bool nomem = false;
	if (d) {
		d->qos = 1;
		d->spool_id = m->id;
		d->topic = dup_opt(topic ? topic : "?", &nomem);
		d->reply_topic = dup_opt(m->reply_topic, &nomem);
		if (m->correlation && m->correlation_len &&
		    (d->correlation = malloc(m->correlation_len)))
			memcpy(d->correlation, m->correlation, m->correlation_len);
		nomem |= m->correlation && m->correlation_len && !d->correlation;
	}
	if (!ev) {
		td_logs_error(rt->scope, "spooled message %lld cannot be read (%s): dropped", m->id,
			      err);
		if (r->nbad == r->cap) {
			size_t cap = r->cap ? r->cap * 2 : 16;
			long long *v = realloc(r->bad, cap * sizeof *v);
			if (!v)
				return 0; /* stays claimed and in the file: read again next start */
			r->bad = v;
			r->cap = cap;
		}
		r->bad[r->nbad++] = m->id;
		return 0;
	}
	if (!d || nomem) {
		delivery_free(d);
		td_event_unref(ev);
		return 1;
	}
	pthread_mutex_lock(&rt->lock);
	if (rt->stopping) {
		pthread_mutex_unlock(&rt->lock);
		delivery_free(d);
		td_event_unref(ev);
		return 1;
	}
	d->ev = ev;
	struct td_event *one = td_event_ref(ev);
	int rc = td_source_submit(rt->src, &one, 1, d);
	if (rc == 0)
		rt->spooled++;
	pthread_mutex_unlock(&rt->lock);
	if (rc < 0) {
		delivery_free(d);
		return 1;
	}
	return 0;
}

/* Worker thread, before connecting and whenever rows were given back: what the spool
 * holds unclaimed (left by a crash, given back by a retired instance or by a failed
 * submission) goes to the router again. */
static void recover_spool(struct mqtt_rt *rt)
{
	struct recovery r = {.rt = rt};
	char err[400] = "";
	int n = td_mqtt_spool_recover(rt->spool, recover_one, &r, err, sizeof err);
	for (size_t i = 0; i < r.nbad; i++)
		td_mqtt_spool_remove(rt->spool, r.bad[i]);
	free(r.bad);
	if (n < 0)
		td_logs_error(rt->scope, "%s", err);
	else if (n > 0)
		td_logs_info(rt->scope, "%d spooled messages submitted again", n);
}

static void *worker_main(void *arg)
{
	struct mqtt_rt *rt = arg;
	if (rt->spool)
		recover_spool(rt);
	bool have_client = create_client(rt) == 0;

	pthread_mutex_lock(&rt->lock);
	while (!rt->quit) {
		/* Settled rows of the spool go with the next message, or here when none came
		 * for a while. Not under rt->lock: the spool's lock is never taken under it. */
		if (rt->spool) {
			char err[400];
			bool stopping = rt->stopping;
			pthread_mutex_unlock(&rt->lock);
			if (td_mqtt_spool_pending(rt->spool) &&
			    td_mqtt_spool_flush(rt->spool, err, sizeof err) < 0)
				td_logs_error(rt->scope, "%s", err);
			/* Rows given back since (a reload's retired instance, a failed
			 * submission) are taken up again here. */
			if (!stopping && td_mqtt_spool_unclaimed(rt->spool))
				recover_spool(rt);
			pthread_mutex_lock(&rt->lock);
		}
		if (rt->pub_head) {
			struct publish_item *list = rt->pub_head;
			bool stopped = rt->stopping;
			rt->pub_head = rt->pub_tail = NULL;
			pthread_mutex_unlock(&rt->lock);
			while (list) {
				struct publish_item *p = list;
				list = p->next;
				p->next = NULL;
				if (stopped)
					publish_report(p, false, "the source is stopped");
				else if (have_client)
					send_one(rt, p);
				else
					publish_report(p, false,
						       "the MQTT client could not be created");
			}
			pthread_mutex_lock(&rt->lock);
			continue;
		}
		long long now = td_now_ms();
		if (have_client && !rt->stopping && !rt->connected && !rt->connecting &&
		    now >= rt->next_connect_ms) {
			rt->connecting = true;
			rt->nbefore = tcp_sockets(-1, rt->before, 256);
			pthread_mutex_unlock(&rt->lock);
			start_connect(rt);
			pthread_mutex_lock(&rt->lock);
			continue;
		}
		if (have_client && !rt->stopping && !rt->connected && !rt->connecting)
			wait_ms(rt, &rt->wcond,
				rt->spool && rt->next_connect_ms - now > SPOOL_FLUSH_MS
				    ? SPOOL_FLUSH_MS
				    : rt->next_connect_ms - now);
		else if (rt->spool)
			wait_ms(rt, &rt->wcond, SPOOL_FLUSH_MS);
		else
			pthread_cond_wait(&rt->wcond, &rt->lock);
	}
	pthread_mutex_unlock(&rt->lock);

	teardown(rt);
	pthread_mutex_lock(&rt->lock);
	rt->worker_done = true;
	bool orphaned = rt->orphaned;
	pthread_cond_broadcast(&rt->wcond);
	pthread_mutex_unlock(&rt->lock);
	if (orphaned)
		rt_free(rt);
	return NULL;
}

/* ---- life cycle ---- */

static int make_dirs(const char *path)
{
	char *copy = strdup(path);
	if (!copy)
		return -1;
	for (char *p = copy + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(copy, 0755) < 0 && errno != EEXIST) {
			free(copy);
			return -1;
		}
		if (!c)
			break;
		*p = c;
	}
	free(copy);
	return 0;
}

static int mqtt_start(struct td_source *src)
{
	const struct mqtt_opts *o = td_source_opts(src);
	const char *state_dir = td_source_global(src)->state_dir;
	struct mqtt_rt *rt = calloc(1, sizeof *rt);
	bool failed = false;
	pthread_condattr_t ca;

	if (!rt)
		return -TD_ENOMEM;
	pthread_mutex_init(&rt->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rt->cond, &ca);
	pthread_cond_init(&rt->wcond, &ca);
	pthread_condattr_destroy(&ca);
	rt->src = src;
	rt->engine = td_source_engine(src);
	rt->sock_fd = -1;
	snprintf(rt->scope, sizeof rt->scope, "%s", td_source_scope(src));
	snprintf(rt->name, sizeof rt->name, "%s", td_source_name(src));
	rt->version = o->protocol == MQTT_V311 ? MQTTVERSION_3_1_1 : MQTTVERSION_5;
	rt->uris = calloc(o->uri.n + 1, sizeof *rt->uris);
	rt->filters = calloc(o->topics.n + 1, sizeof *rt->filters);
	rt->filter_qos = calloc(o->topics.n + 1, sizeof *rt->filter_qos);
	if (!rt->uris || !rt->filters || !rt->filter_qos)
		goto nomem;
	for (size_t i = 0; i < o->uri.n; i++, rt->nuris++) {
		const char *u = o->uri.v[i];
		if (!(rt->uris[i] = strdup(u)))
			goto nomem;
		rt->tls |= strncmp(u, "ssl://", 6) == 0 || strncmp(u, "wss://", 6) == 0 ||
			   strncmp(u, "mqtts://", 8) == 0;
	}
	for (size_t i = 0; i < o->topics.n; i++, rt->nfilters++) {
		int n = o->shared_group ? asprintf(&rt->filters[i], "$share/%s/%s", o->shared_group,
						   o->topics.v[i])
					: asprintf(&rt->filters[i], "%s", o->topics.v[i]);
		if (n < 0) {
			rt->filters[i] = NULL;
			goto nomem;
		}
		rt->filter_qos[i] = (int)o->qos;
	}
	if (o->client_id) {
		rt->client_id = dup_opt(o->client_id, &failed);
	} else {
		char host[256] = "localhost";
		gethostname(host, sizeof host - 1);
		if (asprintf(&rt->client_id, "triggerd-%s-%s", host, td_source_name(src)) < 0)
			rt->client_id = NULL;
	}
	if (asprintf(&rt->persist_dir, "%s/mqtt/%s", state_dir ? state_dir : ".",
		     td_source_name(src)) < 0)
		rt->persist_dir = NULL;
	rt->username = dup_opt(o->username, &failed);
	rt->password = dup_opt(o->password, &failed);
	rt->ca_file = dup_opt(o->tls_ca_file, &failed);
	rt->cert_file = dup_opt(o->tls_cert_file, &failed);
	rt->key_file = dup_opt(o->tls_key_file, &failed);
	rt->key_password = dup_opt(o->tls_key_password, &failed);
	rt->reply_template = dup_opt(o->reply_topic, &failed);
	if (failed || !rt->client_id || !rt->persist_dir)
		goto nomem;
	rt->tls_verify = o->tls_verify;
	rt->clean_start = o->clean_start;
	rt->session_expiry_s = o->session_expiry_ms / 1000;
	rt->keepalive_s = o->keepalive_ms / 1000;
	rt->receive_maximum = o->receive_maximum;
	rt->max_payload = o->max_payload;
	rt->reconnect_min_ms = o->reconnect_min_ms;
	rt->reconnect_max_ms = o->reconnect_max_ms;
	rt->publish_qos = (int)o->publish_qos;
	rt->publish_retain = o->publish_retain;
	rt->seq = ((unsigned long long)random() << 20) ^ (unsigned long long)td_now_ns();

	if (make_dirs(rt->persist_dir) < 0) {
		td_logs_error(rt->scope, "cannot create %s: %s", rt->persist_dir, strerror(errno));
		rt_free(rt);
		return -TD_EIO;
	}
	char spool_path[PATH_MAX], err[400];
	snprintf(spool_path, sizeof spool_path, "%s.spool", rt->persist_dir);
	rt->spool = td_mqtt_spool_acquire(spool_path, td_source_global(src)->queue_durability, err,
					  sizeof err);
	if (!rt->spool)
		td_logs_error(rt->scope,
			      "%s: QoS 1/2 messages are taken one at a time, each acknowledged "
			      "once the router settled it",
			      err);
	else if (err[0])
		td_logs_warn(rt->scope, "%s", err);
	char reason[400], uris[300];
	uris_text(rt, uris, sizeof uris);
	snprintf(reason, sizeof reason, "connecting to %s", uris);
	td_source_set_ready(src, false, reason);
	if (pthread_create(&rt->worker, NULL, worker_main, rt) != 0) {
		td_logs_error(rt->scope, "cannot start a thread");
		rt_free(rt);
		return -TD_EIO;
	}
	((struct mqtt_ctx *)td_source_ctx(src))->rt = rt;
	return 0;
nomem:
	rt_free(rt);
	return -TD_ENOMEM;
}

static void mqtt_stop(struct td_source *src)
{
	struct mqtt_rt *rt = rt_of(src);
	if (!rt)
		return;
	pthread_mutex_lock(&rt->lock);
	rt->stopping = true;
	/* Close the connection under paho (whose lock a waiting callback holds): the
	 * messages that are not settled yet are then never acknowledged, and the broker
	 * delivers them again to the next session. */
	int fd = rt->sock_fd, mine[256];
	if (fd >= 0 && has_fd(mine, tcp_sockets(rt->sock_port, mine, 256), fd))
		shutdown(fd, SHUT_RDWR);
	else if (rt->connected)
		td_logs_warn(rt->scope, "stopping without knowing paho's socket: unsettled "
					"messages stay in paho's persistence");
	rt->sock_fd = -1;
	pthread_cond_broadcast(&rt->cond);
	pthread_cond_signal(&rt->wcond);
	pthread_mutex_unlock(&rt->lock);
	drop_held(rt);
}

static void mqtt_destroy(struct td_source *src)
{
	struct mqtt_rt *rt = rt_of(src);
	if (!rt)
		return;
	((struct mqtt_ctx *)td_source_ctx(src))->rt = NULL;
	pthread_mutex_lock(&rt->lock);
	rt->stopping = true;
	rt->quit = true;
	pthread_cond_broadcast(&rt->cond);
	pthread_cond_signal(&rt->wcond);
	/* The worker may wait for paho's lock, which a callback of another source can hold
	 * while it waits for this engine thread: wait a bounded time, then leave it. */
	long long until = td_now_ms() + 3000;
	while (!rt->worker_done && td_now_ms() < until)
		wait_ms(rt, &rt->wcond, until - td_now_ms());
	bool done = rt->worker_done;
	if (!done)
		rt->orphaned = true;
	pthread_mutex_unlock(&rt->lock);
	if (done) {
		pthread_join(rt->worker, NULL);
		rt_free(rt);
	} else {
		td_logs_warn(rt->scope, "the MQTT client is still closing; it finishes alone");
		pthread_detach(rt->worker);
	}
}

const struct td_source_ops td_source_mqtt = {
    .name = "mqtt",
    .summary = "Messages of MQTT topic filters (MQTT 5 or 3.1.1, shared subscriptions)",
    .options = mqtt_options,
    .opts_size = sizeof(struct mqtt_opts),
    .check = mqtt_check,
    .ctx_size = sizeof(struct mqtt_ctx),
    .start = mqtt_start,
    .stop = mqtt_stop,
    .settle = mqtt_settle,
    .destroy = mqtt_destroy,
    .publish = mqtt_publish,
};
