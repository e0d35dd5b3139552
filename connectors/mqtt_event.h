/*
 * From an MQTT message to a CloudEvent (DESIGN.md, the envelope table): type
 * triggerd.mqtt.message, source "triggerd/mqtt/SOURCE", subject and the `mqtttopic`
 * extension = the topic, `mqttqos` (Integer), `mqttretain` (Boolean), `time` = the time
 * of receipt, `id` derived from the topic, the payload and the time of receipt (with a
 * per-source sequence number, so two equal messages in one millisecond still differ).
 * MQTT 5 extras: the content type becomes `datacontenttype` when it is a valid media
 * type, and each user property whose name is a valid extension name ([a-z0-9]{1,20},
 * not a CloudEvents attribute or one of the mqtt* extensions above) becomes a String
 * extension (the first of repeated names wins). The payload is the event's data as it
 * came: JSON, text, or binary (base64 in the JSON form), classified by event.h.
 *
 * Pure and thread-safe: the paho callback thread calls it for each message, and the
 * payload fuzz target calls it on arbitrary bytes.
 */
#ifndef TRIGGERD_MQTT_EVENT_H
#define TRIGGERD_MQTT_EVENT_H

#include <stdbool.h>
#include <stddef.h>

struct td_event;

struct td_mqtt_property {
	const char *name; /* not NUL-terminated: name_len bytes */
	size_t name_len;
	const char *value;
	size_t value_len;
};

/* One received message, as views into the client library's buffers (nothing is kept). */
struct td_mqtt_message {
	const char *source; /* the source's name */
	const char *topic;  /* topic_len bytes */
	size_t topic_len;
	const void *payload; /* payload_len bytes; may be NULL when payload_len is 0 */
	size_t payload_len;
	int qos;
	bool retained;
	const char *content_type; /* MQTT 5, content_type_len bytes, or NULL */
	size_t content_type_len;
	const struct td_mqtt_property *props; /* MQTT 5 user properties */
	size_t nprops;
	long long receipt_ms; /* wall clock */
	unsigned long long seq;
};

/*
 * Returns a new event (one reference, owned by the caller), or NULL with the reason in err
 * when the message cannot be an event (an empty or over-long topic, out of memory).
 * Parts that cannot be carried (an invalid content type, a property whose name or value
 * is no CloudEvents String) are left out; when note is not NULL, it receives a short
 * description of the first part left out ("" when none).
 */
struct td_event *td_mqtt_event_create(const struct td_mqtt_message *m, char *note, size_t notelen,
				      char *err, size_t errlen);

#endif
