/*
 * MQTT topic filters and names (see mqtt_topic.h). Matching walks the filter and the
 * topic level by level with two pointers, without copying or splitting, so it costs a
 * single pass over both strings and can run per event on the engine thread.
 *
 * Validation decodes the text as strict UTF-8 (json.h's decoder) and reports the first
 * problem with its byte offset, since filters come from configuration files and the
 * command line, where a person has to find the mistake.
 */
#include "mqtt_topic.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <triggerd/errors.h>

#include "../router/json.h"

/* Common checks of filters and names: length, UTF-8, control characters. */
static int check_text(const char *s, const char *what, char *err, size_t errlen)
{
	size_t n = strlen(s);
	if (n == 0) {
		if (err && errlen)
			snprintf(err, errlen, "%s is empty", what);
		return -TD_EINVAL;
	}
	if (n > TD_MQTT_TOPIC_MAX) {
		if (err && errlen)
			snprintf(err, errlen, "%s is %zu bytes long (at most %d)", what, n,
				 TD_MQTT_TOPIC_MAX);
		return -TD_EINVAL;
	}
	for (size_t i = 0; i < n;) {
		unsigned cp;
		size_t k = td_utf8_decode((const unsigned char *)s + i, n - i, &cp);
		if (k == 0)
			return td_fail(err, errlen, "%s is not valid UTF-8 at byte %zu", what, i);
		if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
			return td_fail(err, errlen, "%s holds a control character at byte %zu",
				       what, i);
		i += k;
	}
	return 0;
}

int td_mqtt_filter_validate(const char *filter, char *err, size_t errlen)
{
	int rc = check_text(filter, "the topic filter", err, errlen);
	if (rc < 0)
		return rc;
	if (strncmp(filter, "$share/", 7) == 0) {
		if (err && errlen)
			snprintf(err, errlen,
				 "\"$share/...\" is a shared subscription, not a topic filter: "
				 "write the filter alone");
		return -TD_EINVAL;
	}
	for (const char *p = filter; *p; p++) {
		bool level_start = p == filter || p[-1] == '/';
		bool level_end = p[1] == '\0' || p[1] == '/';
		size_t at = (size_t)(p - filter);
		if (*p == '#' && (!level_start || p[1] != '\0'))
			return td_fail(
			    err, errlen,
			    "the topic filter: '#' at byte %zu must be the whole last level "
			    "(\"a/#\")",
			    at);
		if (*p == '+' && (!level_start || !level_end))
			return td_fail(err, errlen,
				       "the topic filter: '+' at byte %zu must be a whole level "
				       "(\"a/+/b\")",
				       at);
	}
	return 0;
}

int td_mqtt_topic_validate(const char *topic, char *err, size_t errlen)
{
	int rc = check_text(topic, "the topic", err, errlen);
	if (rc < 0)
		return rc;
	const char *w = strpbrk(topic, "+#");
	if (w) {
		if (err && errlen)
			snprintf(
			    err, errlen,
			    "the topic name holds the wildcard '%c' at byte %zu (wildcards are "
			    "for filters)",
			    *w, (size_t)(w - topic));
		return -TD_EINVAL;
	}
	return 0;
}

bool td_mqtt_topic_match(const char *filter, const char *topic)
{
	const char *f = filter, *t = topic;
	/* $-topics are not matched by a leading wildcard. */
	if (*t == '$' && (*f == '+' || *f == '#'))
		return false;
	for (;;) {
		/* At the start of a level of both. */
		if (f[0] == '#' && f[1] == '\0')
			return true; /* this level and all below, or the parent ("a/#" ~ "a") */
		if (f[0] == '+' && (f[1] == '/' || f[1] == '\0')) {
			f++;
			while (*t && *t != '/')
				t++;
		} else {
			while (*f && *f != '/' && *t && *t != '/' && *f == *t) {
				f++;
				t++;
			}
			if ((*f && *f != '/') || (*t && *t != '/'))
				return false; /* the levels differ */
		}
		/* Both at the end of a level. */
		if (*f == '\0' && *t == '\0')
			return true;
		if (*f == '\0')
			return false; /* the topic has more levels */
		if (*t == '\0')
			/* The topic ends here; only "/#" in the filter still matches it. */
			return f[0] == '/' && f[1] == '#' && f[2] == '\0';
		f++;
		t++;
	}
}

int td_mqtt_template_validate(const char *tmpl, char *err, size_t errlen)
{
	char *out = td_mqtt_template_render(tmpl, "example/topic", err, errlen);
	if (!out)
		return -TD_EINVAL;
	free(out);
	return 0;
}

char *td_mqtt_template_render(const char *tmpl, const char *topic, char *err, size_t errlen)
{
	static const char key[] = "{topic}";
	size_t klen = sizeof key - 1, tlen = strlen(topic), n = 0;
	for (const char *p = strstr(tmpl, key); p; p = strstr(p + klen, key))
		n++;
	size_t len = strlen(tmpl) - n * klen + n * tlen;
	char *out = malloc(len + 1);
	if (!out) {
		if (err && errlen)
			snprintf(err, errlen, "out of memory");
		return NULL;
	}
	char *o = out;
	for (const char *p = tmpl; *p;) {
		if (strncmp(p, key, klen) == 0) {
			memcpy(o, topic, tlen);
			o += tlen;
			p += klen;
		} else {
			*o++ = *p++;
		}
	}
	*o = '\0';
	char why[200];
	if (td_mqtt_topic_validate(out, why, sizeof why) < 0) {
		if (err && errlen)
			snprintf(err, errlen, "reply topic \"%.100s\": %s", out, why);
		free(out);
		return NULL;
	}
	return out;
}

int td_mqtt_target_parse(const char *target, char **topic, int *qos, bool *retain, char *err,
			 size_t errlen)
{
	*topic = NULL;
	const char *q = strchr(target, '?');
	size_t tlen = q ? (size_t)(q - target) : strlen(target);
	char *name = strndup(target, tlen);
	if (!name) {
		if (err && errlen)
			snprintf(err, errlen, "out of memory");
		return -TD_ENOMEM;
	}
	if (td_mqtt_topic_validate(name, err, errlen) < 0)
		goto fail;
	for (const char *p = q ? q + 1 : NULL; p && *p;) {
		const char *end = strchr(p, '&');
		size_t plen = end ? (size_t)(end - p) : strlen(p);
		if (plen == 5 && p[4] >= '0' && p[4] <= '2' && strncmp(p, "qos=", 4) == 0) {
			*qos = p[4] - '0';
		} else if (plen == 11 && strncmp(p, "retain=true", 11) == 0) {
			*retain = true;
		} else if (plen == 12 && strncmp(p, "retain=false", 12) == 0) {
			*retain = false;
		} else {
			if (err && errlen)
				snprintf(err, errlen,
					 "\"%.*s\" at byte %zu is not a publish option (qos=0|1|2, "
					 "retain=true|false)",
					 (int)(plen > 60 ? 60 : plen), p, (size_t)(p - target));
			goto fail;
		}
		p = end ? end + 1 : NULL;
	}
	*topic = name;
	return 0;
fail:
	free(name);
	return -TD_EINVAL;
}
