/*
 * libFuzzer target for connectors/mqtt_topic.c.
 *
 * Input: a topic filter, a newline, a topic name (without a newline: both are the same
 * text). Every function must take any bytes without crashing or reading out of bounds.
 * When the filter and the topic are valid, td_mqtt_topic_match must agree with a
 * straightforward reference that splits both into levels; a valid filter without
 * wildcards matches exactly the equal topic. The same text is used as a reply template
 * and as an mqtt:// publish target, whose results must be valid topic names.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <triggerd/errors.h>

#include "../../connectors/mqtt_topic.h"

/* The reference: split into levels and compare them one by one. */
static size_t levels(const char *s, const char **start, size_t *len, size_t cap)
{
	size_t n = 0;
	const char *p = s;
	for (;;) {
		const char *e = strchr(p, '/');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (n < cap) {
			start[n] = p;
			len[n] = l;
		}
		n++;
		if (!e)
			return n;
		p = e + 1;
	}
}

static bool reference(const char *filter, const char *topic)
{
	static const char *fs[70000], *ts[70000];
	static size_t fl[70000], tl[70000];
	size_t nf = levels(filter, fs, fl, 70000), nt = levels(topic, ts, tl, 70000);
	if (topic[0] == '$' && (filter[0] == '+' || filter[0] == '#'))
		return false;
	for (size_t i = 0; i < nf; i++) {
		if (fl[i] == 1 && fs[i][0] == '#')
			return true; /* the last level (valid filter): this level and below */
		if (i >= nt)
			return false;
		if (fl[i] == 1 && fs[i][0] == '+')
			continue;
		if (fl[i] != tl[i] || memcmp(fs[i], ts[i], fl[i]) != 0)
			return false;
	}
	return nf == nt;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (strlen(text) != size) { /* C strings: nothing past a NUL */
		free(text);
		return 0;
	}
	char *nl = strchr(text, '\n');
	const char *filter = text, *topic = text;
	if (nl) {
		*nl = '\0';
		topic = nl + 1;
	}
	char err[256];
	bool fvalid = td_mqtt_filter_validate(filter, err, sizeof err) == 0;
	bool tvalid = td_mqtt_topic_validate(topic, err, sizeof err) == 0;
	bool m = td_mqtt_topic_match(filter, topic);
	if (fvalid && tvalid) {
		if (m != reference(filter, topic))
			abort();
		if (!strpbrk(filter, "+#") && m != (strcmp(filter, topic) == 0))
			abort();
	}
	/* The filter text as a template and a target. */
	char *out = td_mqtt_template_render(filter, topic, err, sizeof err);
	if (out && td_mqtt_topic_validate(out, NULL, 0) != 0)
		abort();
	free(out);
	char *name = NULL;
	int qos = 1;
	bool retain = false;
	if (td_mqtt_target_parse(filter, &name, &qos, &retain, err, sizeof err) == 0) {
		if (!name || td_mqtt_topic_validate(name, NULL, 0) != 0 || qos < 0 || qos > 2)
			abort();
	} else if (name) {
		abort();
	}
	free(name);
	free(text);
	return 0;
}
