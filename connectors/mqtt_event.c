/*
 * The MQTT envelope (see mqtt_event.h). A topic that is not a valid CloudEvents String
 * (control characters, invalid UTF-8: MQTT only discourages them) is carried with the
 * offending bytes percent-encoded, so that such a message still becomes an event.
 */
#include "mqtt_event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <triggerd/errors.h>
#include <triggerd/event.h>

#include "../router/json.h"
#include "mqtt_topic.h"

/* Attribute names a user property must not take over. */
static const char *const reserved[] = {
    "id",	 "source",	    "type",	  "specversion", "subject",
    "time",	 "datacontenttype", "dataschema", "data",	 "data_base64",
    "mqtttopic", "mqttqos",	    "mqttretain", NULL,
};

static bool bad_codepoint(unsigned cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0xfdd0 && cp <= 0xfdef) ||
	       (cp & 0xfffe) == 0xfffe;
}

/* The topic as a CloudEvents String: bad bytes percent-encoded. Malloc'ed. */
static char *escape_topic(const char *t, size_t n)
{
	char *out = malloc(n * 3 + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n;) {
		unsigned cp = 0;
		size_t k = td_utf8_decode((const unsigned char *)t + i, n - i, &cp);
		bool bad = k == 0 || bad_codepoint(cp);
		if (k == 0)
			k = 1;
		for (size_t j = 0; j < k; j++, i++) {
			if (bad)
				o += sprintf(o, "%%%02X", (unsigned char)t[i]);
			else
				*o++ = t[i];
		}
	}
	*o = '\0';
	return out;
}

static bool valid_extension_name(const char *s, size_t n)
{
	if (n == 0 || n > 20)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
			return false;
	for (size_t i = 0; reserved[i]; i++)
		if (strlen(reserved[i]) == n && memcmp(reserved[i], s, n) == 0)
			return false;
	return true;
}

/* Keeps the first note only: "what \"name\" why". */
static void set_note(char *note, size_t notelen, const char *what, const char *a, size_t alen,
		     const char *why)
{
	if (note && notelen && !note[0])
		snprintf(note, notelen, "%s \"%.*s\" %s", what, (int)(alen > 64 ? 64 : alen), a,
			 why);
}

struct td_event *td_mqtt_event_create(const struct td_mqtt_message *m, char *note, size_t notelen,
				      char *err, size_t errlen)
{
	char id[80], *topic = NULL, *ctype = NULL;
	struct td_event *ev = NULL;
	const char *what = "out of memory";

	if (note && notelen)
		note[0] = '\0';
	if (m->topic_len == 0 || m->topic_len > TD_MQTT_TOPIC_MAX || !m->topic ||
	    memchr(m->topic, '\0', m->topic_len)) {
		what = "the message has an empty, over-long or NUL-holding topic";
		goto fail;
	}
	/* FNV-1a over topic and payload: the id names the content, the time and the
	 * sequence number make it unique. */
	unsigned long long h = 1469598103934665603ULL;
	for (size_t i = 0; i < m->topic_len; i++)
		h = (h ^ (unsigned char)m->topic[i]) * 1099511628211ULL;
	h = (h ^ 0xffu) * 1099511628211ULL;
	for (size_t i = 0; i < m->payload_len; i++)
		h = (h ^ ((const unsigned char *)m->payload)[i]) * 1099511628211ULL;
	snprintf(id, sizeof id, "%016llx-%llx-%llx", h, (unsigned long long)m->receipt_ms, m->seq);

	if (!(ev = td_event_create()))
		goto fail;
	char src[300];
	snprintf(src, sizeof src, "triggerd/mqtt/%.256s", m->source);
	if (td_event_set(ev, "id", id) < 0 || td_event_set(ev, "source", src) < 0 ||
	    td_event_set(ev, "type", "triggerd.mqtt.message") < 0 ||
	    td_event_set_time_ms(ev, m->receipt_ms) < 0)
		goto fail;
	int rc = td_event_setn(ev, "subject", m->topic, m->topic_len);
	if (rc == -TD_EINVAL) {
		if (!(topic = escape_topic(m->topic, m->topic_len)))
			goto fail;
		set_note(note, notelen, "the topic", topic, strlen(topic), "was percent-encoded");
		rc = td_event_set(ev, "subject", topic);
	}
	if (rc < 0 || td_event_set(ev, "mqtttopic", td_event_get(ev, "subject")) < 0 ||
	    td_event_set_int(ev, "mqttqos", m->qos) < 0 ||
	    td_event_set_bool(ev, "mqttretain", m->retained) < 0)
		goto fail;

	for (size_t i = 0; i < m->nprops; i++) {
		const struct td_mqtt_property *p = &m->props[i];
		char name[24];
		if (!valid_extension_name(p->name, p->name_len)) {
			set_note(note, notelen, "user property", p->name, p->name_len,
				 "is not a valid extension name ([a-z0-9], at most 20)");
			continue;
		}
		memcpy(name, p->name, p->name_len);
		name[p->name_len] = '\0';
		if (td_event_get(ev, name))
			continue; /* repeated: the first wins */
		rc = td_event_setn(ev, name, p->value ? p->value : "", p->value ? p->value_len : 0);
		if (rc == -TD_ENOMEM)
			goto fail;
		if (rc < 0)
			set_note(note, notelen, "user property", p->name, p->name_len,
				 "has a value that is no CloudEvents String");
	}

	if (m->content_type) {
		if (!(ctype = strndup(m->content_type, m->content_type_len)))
			goto fail;
		if (memchr(m->content_type, '\0', m->content_type_len) ||
		    td_event_set(ev, "datacontenttype", ctype) < 0) {
			set_note(note, notelen, "content type", ctype, strlen(ctype),
				 "is not a media type");
			free(ctype);
			ctype = NULL;
		}
	}
	if (td_event_set_data(ev, m->payload_len ? m->payload : "", m->payload_len, ctype) < 0)
		goto fail;
	free(topic);
	free(ctype);
	return ev;
fail:
	if (err && errlen)
		snprintf(err, errlen, "%s", what);
	td_event_unref(ev);
	free(topic);
	free(ctype);
	return NULL;
}
