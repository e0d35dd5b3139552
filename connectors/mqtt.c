/*
 * The MQTT source (paho MQTTAsync): subscribes to topic filters, MQTT 5 by default, with
 * a persistent session (clean_start false, session_expiry) so that the broker keeps the
 * QoS 1/2 backlog while triggerd is down, and optionally as a shared subscription
 * ($share/<group>/<filter>) so that several triggerd instances split the messages.
 *
 * This file holds the options of the kind and their checks. Every filter of a source is
 * subscribed with the same QoS (option qos): a filter that needs another QoS goes into
 * a second source.
 */
#include <triggerd/source.h>

#include <stdbool.h>
#include <string.h>

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
	     "restarts so that the broker finds the session again."},
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
	     "Receive Maximum): bounds the events in flight."},
    {0},
};

/* MQTT topic filter rules: not empty, '#' last and alone in its level, '+' alone. */
static bool valid_filter(const char *f)
{
	if (!*f)
		return false;
	for (const char *p = f; *p; p++) {
		bool level_start = p == f || p[-1] == '/';
		bool level_end = p[1] == '\0' || p[1] == '/';
		if (*p == '#' && (!level_start || p[1] != '\0'))
			return false;
		if (*p == '+' && (!level_start || !level_end))
			return false;
	}
	return true;
}

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
		if (!valid_filter(f))
			td_diag_add(diag, file, line,
				    "option 'topics': \"%.200s\" is not a topic filter ('#' only "
				    "last, '+' and '#' alone in their level)",
				    f);
		else if (strncmp(f, "$share/", 7) == 0)
			td_diag_add(diag, file, line,
				    "option 'topics': write \"%.200s\" without $share/ and set "
				    "shared_group",
				    f);
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
}

const struct td_source_ops td_source_mqtt = {
    .name = "mqtt",
    .summary = "Messages of MQTT topic filters (MQTT 5 or 3.1.1, shared subscriptions)",
    .options = mqtt_options,
    .opts_size = sizeof(struct mqtt_opts),
    .check = mqtt_check,
};
