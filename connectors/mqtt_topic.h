/*
 * MQTT topic names, topic filters and the small texts built from them, as the MQTT 3.1.1
 * and 5.0 specifications define them (sections 4.7): pure functions, no allocation
 * unless said, safe on any input (fuzzed), usable from any thread.
 *
 * A topic filter is one or more levels separated by '/'; a level may be empty; '+' is a
 * whole level and matches any one level; '#' is the whole last level and matches the
 * parent level and everything below it ("plant/#" matches "plant" and "plant/a/b").
 * Topic names that start with '$' ($SYS/...) are not matched by a filter whose first
 * level is a wildcard.
 *
 * The router uses td_mqtt_filter_validate on the `topic` option of triggers and
 * td_mqtt_topic_match when it routes an event of an mqtt source: the event's topic is
 * its `mqtttopic` extension.
 */
#ifndef TRIGGERD_MQTT_TOPIC_H
#define TRIGGERD_MQTT_TOPIC_H

#include <stdbool.h>
#include <stddef.h>

/* Longest topic name or filter MQTT can carry (a two-byte length). */
#define TD_MQTT_TOPIC_MAX 65535

/*
 * Checks a topic filter: not empty, at most TD_MQTT_TOPIC_MAX bytes, valid UTF-8 without
 * control characters, '#' only as the whole last level, '+' only as a whole level.
 * A shared subscription ("$share/group/filter") is refused: write the plain filter (the
 * source's shared_group option makes the shared form). Returns 0, or -TD_EINVAL with what
 * is wrong and where (the byte offset) in err.
 */
int td_mqtt_filter_validate(const char *filter, char *err, size_t errlen);

/*
 * True when the topic name matches the filter. filter should have passed
 * td_mqtt_filter_validate: an invalid one gives an unspecified answer, never a crash.
 */
bool td_mqtt_topic_match(const char *filter, const char *topic);

/* Checks a topic name to publish to: like a filter, but without any '+' or '#'. */
int td_mqtt_topic_validate(const char *topic, char *err, size_t errlen);

/*
 * A reply topic template: a topic name in which "{topic}" stands for the topic of the
 * request ("replies/{topic}"). Validate checks the template with an example topic.
 * Render returns the malloc'ed topic (the caller frees it), or NULL when out of memory or
 * when the result is not a valid topic name (err says why).
 */
int td_mqtt_template_validate(const char *tmpl, char *err, size_t errlen);
char *td_mqtt_template_render(const char *tmpl, const char *topic, char *err, size_t errlen);

/*
 * The target of an mqtt:// destination: "TOPIC" or "TOPIC?qos=N&retain=true|false".
 * *topic receives the malloc'ed topic name (the caller frees it); *qos and *retain hold
 * the defaults on entry and are replaced by what the target says. Returns 0, or
 * -TD_EINVAL with the reason in err (*topic is then NULL), -TD_ENOMEM.
 */
int td_mqtt_target_parse(const char *target, char **topic, int *qos, bool *retain, char *err,
			 size_t errlen);

#endif
