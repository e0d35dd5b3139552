/*
 * libFuzzer target for connectors/mqtt_event.c: an MQTT message of arbitrary bytes
 * becomes an event, or is refused with a reason, never a crash.
 *
 * Input layout: byte 0 = QoS (low 2 bits, taken mod 3) and retain (bit 2); byte 1 = the
 * topic length; byte 2 = the content type length (0xff: none); byte 3 = the number of
 * user properties (at most 8), each then taking a name length and a value length byte;
 * the topic, the content type, the names and values follow, and the rest is the
 * payload. An event that is made must validate, carry the payload bytes unchanged,
 * survive the JSON structured form (td_event_from_json of td_event_to_json is equal)
 * and have a match form.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <triggerd/event.h>

#include "../../connectors/mqtt_event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 4)
		return 0;
	size_t pos = 4, tlen = data[1], clen = data[2], nprops = data[3] % 9;
	struct td_mqtt_property props[8];
	size_t lens[16];
	if (pos + 2 * nprops > size)
		return 0;
	for (size_t i = 0; i < 2 * nprops; i++)
		lens[i] = data[pos++];
	struct td_mqtt_message m = {
	    .source = "fuzz",
	    .qos = (data[0] & 3) % 3,
	    .retained = (data[0] & 4) != 0,
	    .receipt_ms = 1795000000000LL,
	    .seq = 1,
	};
	if (pos + tlen > size)
		return 0;
	m.topic = (const char *)data + pos;
	m.topic_len = tlen;
	pos += tlen;
	if (clen != 0xff) {
		if (pos + clen > size)
			return 0;
		m.content_type = (const char *)data + pos;
		m.content_type_len = clen;
		pos += clen;
	}
	for (size_t i = 0; i < nprops; i++) {
		if (pos + lens[2 * i] + lens[2 * i + 1] > size)
			return 0;
		props[i].name = (const char *)data + pos;
		props[i].name_len = lens[2 * i];
		pos += lens[2 * i];
		props[i].value = (const char *)data + pos;
		props[i].value_len = lens[2 * i + 1];
		pos += lens[2 * i + 1];
	}
	m.props = props;
	m.nprops = nprops;
	m.payload = data + pos;
	m.payload_len = size - pos;

	char note[200], err[200];
	struct td_event *ev = td_mqtt_event_create(&m, note, sizeof note, err, sizeof err);
	if (!ev)
		return 0;
	if (td_event_validate(ev, err, sizeof err) != 0)
		abort();
	size_t len = 0;
	const void *payload = td_event_data(ev, &len);
	if (len != m.payload_len || (len && memcmp(payload, m.payload, len) != 0))
		abort();
	size_t jlen;
	char *json = td_event_to_json(ev, &jlen);
	if (json) {
		struct td_event *back = td_event_from_json(json, jlen, err, sizeof err);
		if (!back || !td_event_equal(ev, back))
			abort();
		td_event_unref(back);
	}
	free(json);
	free(td_event_match_json(ev, NULL));
	td_event_unref(ev);
	return 0;
}
