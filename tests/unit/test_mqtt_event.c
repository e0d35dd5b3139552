/*
 * Unit tests for connectors/mqtt_event.c: the envelope of an MQTT message (DESIGN.md's
 * table row), payload classification (JSON, text, binary, empty), MQTT 5 content type and
 * user properties (valid names kept, others and reserved ones left out with a note),
 * percent-encoded topics, ids that differ per message and the refusals.
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include <triggerd/event.h>

#include "../../connectors/mqtt_event.h"

static struct td_mqtt_message message(const char *topic, const void *payload, size_t len)
{
	return (struct td_mqtt_message){
	    .source = "sensors",
	    .topic = topic,
	    .topic_len = strlen(topic),
	    .payload = payload,
	    .payload_len = len,
	    .qos = 1,
	    .receipt_ms = 1795000000123LL,
	    .seq = 7,
	};
}

static const char *ext(const struct td_event *ev, const char *name, enum td_attr_type *type)
{
	const char *n, *v;
	for (size_t i = 0; td_event_extension(ev, i, &n, &v); i++)
		if (strcmp(n, name) == 0) {
			if (type)
				*type = td_event_extension_type(ev, i);
			return v;
		}
	return NULL;
}

Test(mqtt_event, carries_the_envelope_of_the_design)
{
	struct td_mqtt_message m = message("plant/7/temperature", "{\"c\": 21.5}", 11);
	m.retained = true;
	m.qos = 2;
	char err[128], note[128];
	struct td_event *ev = td_mqtt_event_create(&m, note, sizeof note, err, sizeof err);
	cr_assert(ev, "%s", err);
	cr_expect_str_eq(td_event_get(ev, "type"), "triggerd.mqtt.message");
	cr_expect_str_eq(td_event_get(ev, "source"), "triggerd/mqtt/sensors");
	cr_expect_str_eq(td_event_get(ev, "subject"), "plant/7/temperature");
	cr_expect_str_eq(td_event_get(ev, "time"), "2026-11-18T11:06:40.123Z");
	enum td_attr_type type;
	cr_expect_str_eq(ext(ev, "mqtttopic", &type), "plant/7/temperature");
	cr_expect_eq(type, TD_ATTR_STRING);
	cr_expect_str_eq(ext(ev, "mqttqos", &type), "2");
	cr_expect_eq(type, TD_ATTR_INTEGER);
	cr_expect_str_eq(ext(ev, "mqttretain", &type), "true");
	cr_expect_eq(type, TD_ATTR_BOOLEAN);
	cr_expect_eq(td_event_data_kind(ev), TD_DATA_JSON);
	cr_expect_str_eq(note, "");
	char verr[128];
	cr_expect_eq(td_event_validate(ev, verr, sizeof verr), 0, "%s", verr);
	/* The match form has typed extensions and the parsed payload. */
	char *json = td_event_match_json(ev, NULL);
	cr_assert(json);
	cr_expect(strstr(json, "\"mqttqos\":2"), "%s", json);
	cr_expect(strstr(json, "\"mqttretain\":true"), "%s", json);
	cr_expect(strstr(json, "\"data\":{\"c\": 21.5}") || strstr(json, "\"data\":{\"c\":21.5}"),
		  "%s", json);
	free(json);
	td_event_unref(ev);
}

Test(mqtt_event, classifies_payloads)
{
	static const struct {
		const char *payload;
		size_t len;
		const char *content_type;
		enum td_data_kind kind;
	} cases[] = {
	    {"{\"a\":1}", 7, NULL, TD_DATA_JSON},
	    {"[1,2]", 5, NULL, TD_DATA_JSON},
	    {"21.5 C", 6, NULL, TD_DATA_TEXT},
	    {"{\"a\":", 5, NULL, TD_DATA_TEXT},
	    {"\x00\x01\xff", 3, NULL, TD_DATA_BINARY},
	    {"", 0, NULL, TD_DATA_TEXT},
	    {"{\"a\":1}", 7, "text/plain", TD_DATA_TEXT},
	    {"{\"a\":1}", 7, "application/vnd.x+json", TD_DATA_JSON},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct td_mqtt_message m = message("t", cases[i].payload, cases[i].len);
		m.content_type = cases[i].content_type;
		m.content_type_len = cases[i].content_type ? strlen(cases[i].content_type) : 0;
		char err[128];
		struct td_event *ev = td_mqtt_event_create(&m, NULL, 0, err, sizeof err);
		cr_assert(ev, "case %zu: %s", i, err);
		cr_expect_eq(td_event_data_kind(ev), cases[i].kind, "case %zu", i);
		size_t len = 99;
		const void *data = td_event_data(ev, &len);
		cr_expect_eq(len, cases[i].len, "case %zu", i);
		cr_expect(data && memcmp(data, cases[i].payload, len) == 0, "case %zu", i);
		if (cases[i].content_type)
			cr_expect_str_eq(td_event_get(ev, "datacontenttype"),
					 cases[i].content_type);
		else
			cr_expect_null(td_event_get(ev, "datacontenttype"));
		td_event_unref(ev);
	}
}

Test(mqtt_event, keeps_valid_user_properties_only)
{
	static const struct td_mqtt_property props[] = {
	    {"site", 4, "plant-7", 7},
	    {"site", 4, "second", 6}, /* repeated: the first wins */
	    {"Site2", 5, "x", 1},     /* upper case: not an extension name */
	    {"id", 2, "spoof", 5},    /* a core attribute */
	    {"mqttqos", 7, "9", 1},   /* ours */
	    {"toolongnameforanextension", 25, "v", 1},
	    {"bad", 3, "a\x01", 2}, /* a control character in the value */
	    {"ok2", 3, "fine", 4},
	};
	struct td_mqtt_message m = message("t", "x", 1);
	m.props = props;
	m.nprops = sizeof props / sizeof props[0];
	char note[200], err[128];
	struct td_event *ev = td_mqtt_event_create(&m, note, sizeof note, err, sizeof err);
	cr_assert(ev, "%s", err);
	cr_expect_str_eq(ext(ev, "site", NULL), "plant-7");
	cr_expect_str_eq(ext(ev, "ok2", NULL), "fine");
	cr_expect_null(ext(ev, "site2", NULL));
	cr_expect_null(ext(ev, "bad", NULL));
	cr_expect_null(ext(ev, "toolongnameforanextension", NULL));
	cr_expect_neq(strcmp(td_event_get(ev, "id"), "spoof"), 0);
	cr_expect_str_eq(ext(ev, "mqttqos", NULL), "1");
	cr_expect(strstr(note, "user property \"Site2\" is not a valid extension name"), "%s",
		  note);
	td_event_unref(ev);
}

Test(mqtt_event, leaves_out_an_invalid_content_type)
{
	struct td_mqtt_message m = message("t", "{\"a\":1}", 7);
	m.content_type = "not a type";
	m.content_type_len = strlen(m.content_type);
	char note[200], err[128];
	struct td_event *ev = td_mqtt_event_create(&m, note, sizeof note, err, sizeof err);
	cr_assert(ev, "%s", err);
	cr_expect_null(td_event_get(ev, "datacontenttype"));
	cr_expect_eq(td_event_data_kind(ev), TD_DATA_JSON);
	cr_expect(strstr(note, "content type \"not a type\" is not a media type"), "%s", note);
	td_event_unref(ev);
}

Test(mqtt_event, percent_encodes_a_topic_that_is_no_cloudevents_string)
{
	const char topic[] = "a/\x01/\xff/ok";
	struct td_mqtt_message m = message(topic, "1", 1);
	char note[200], err[128];
	struct td_event *ev = td_mqtt_event_create(&m, note, sizeof note, err, sizeof err);
	cr_assert(ev, "%s", err);
	cr_expect_str_eq(td_event_get(ev, "subject"), "a/%01/%FF/ok");
	cr_expect_str_eq(ext(ev, "mqtttopic", NULL), "a/%01/%FF/ok");
	cr_expect(strstr(note, "percent-encoded"), "%s", note);
	td_event_unref(ev);
}

Test(mqtt_event, ids_differ_per_message_and_name_the_content)
{
	struct td_mqtt_message a = message("t/1", "same", 4), b = a, c = a;
	b.seq = 8;
	c.topic = "t/2";
	c.topic_len = 3;
	struct td_event *ea = td_mqtt_event_create(&a, NULL, 0, NULL, 0);
	struct td_event *eb = td_mqtt_event_create(&b, NULL, 0, NULL, 0);
	struct td_event *ec = td_mqtt_event_create(&c, NULL, 0, NULL, 0);
	cr_assert(ea && eb && ec);
	const char *ia = td_event_get(ea, "id"), *ib = td_event_get(eb, "id"),
		   *ic = td_event_get(ec, "id");
	cr_expect_neq(strcmp(ia, ib), 0);
	cr_expect_neq(strcmp(ia, ic), 0);
	/* Same content: the same hash before the first '-'. */
	cr_expect_eq(strncmp(ia, ib, 16), 0);
	cr_expect_neq(strncmp(ia, ic, 16), 0);
	td_event_unref(ea);
	td_event_unref(eb);
	td_event_unref(ec);
}

Test(mqtt_event, refuses_messages_that_cannot_be_events)
{
	char err[128];
	struct td_mqtt_message m = message("", "x", 1);
	cr_expect_null(td_mqtt_event_create(&m, NULL, 0, err, sizeof err));
	cr_expect(strstr(err, "empty, over-long or NUL-holding topic"), "%s", err);
	const char nul[] = "a\0b";
	m = message("a", "x", 1);
	m.topic = nul;
	m.topic_len = 3;
	cr_expect_null(td_mqtt_event_create(&m, NULL, 0, err, sizeof err));
	cr_expect(strstr(err, "NUL"), "%s", err);
}
