/*
 * Unit tests for connectors/mqtt_topic.c: topic filter matching with the examples of the
 * MQTT 3.1.1 and 5.0 specifications (section 4.7: multi-level and single-level wildcards,
 * '#' taking the parent level, empty levels, $-topics), filter and topic name
 * validation with the words and byte offsets of each message, reply topic templates
 * and the publish target of mqtt:// destinations.
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include <triggerd/errors.h>

#include "../../connectors/mqtt_topic.h"

struct match_case {
	const char *filter, *topic;
	bool match;
};

Test(mqtt_topic, matches_as_the_specification_says)
{
	static const struct match_case cases[] = {
	    /* 4.7.1.2 multi-level wildcard */
	    {"sport/tennis/player1/#", "sport/tennis/player1", true},
	    {"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
	    {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
	    {"sport/tennis/player1/#", "sport/tennis/player2", false},
	    {"sport/#", "sport", true},
	    {"#", "sport/tennis", true},
	    {"#", "/", true},
	    /* 4.7.1.3 single-level wildcard */
	    {"sport/tennis/+", "sport/tennis/player1", true},
	    {"sport/tennis/+", "sport/tennis/player2", true},
	    {"sport/tennis/+", "sport/tennis/player1/ranking", false},
	    {"sport/+", "sport", false},
	    {"sport/+", "sport/", true},
	    {"+/+", "/finance", true},
	    {"/+", "/finance", true},
	    {"+", "/finance", false},
	    {"+/tennis/#", "sport/tennis/player1", true},
	    {"+/tennis/#", "sport/tennis", true},
	    {"+/tennis/#", "sport/golf", false},
	    /* 4.7.2 topics beginning with $ */
	    {"#", "$SYS/broker/load", false},
	    {"+/monitor/Clients", "$SYS/monitor/Clients", false},
	    {"$SYS/#", "$SYS/monitor/Clients", true},
	    {"$SYS/monitor/+", "$SYS/monitor/Clients", true},
	    {"a/$x", "a/$x", true},
	    {"a/+", "a/$x", true},
	    /* literal levels, case and empty levels */
	    {"plant/+/temperature", "plant/7/temperature", true},
	    {"plant/+/temperature", "plant/7/humidity", false},
	    {"plant/+/temperature", "Plant/7/temperature", false},
	    {"a/b", "a/b", true},
	    {"a/b", "a/bc", false},
	    {"a/bc", "a/b", false},
	    {"a/b", "a/b/", false},
	    {"a//b", "a//b", true},
	    {"a/+/b", "a//b", true},
	    {"a/#", "a/", true},
	    {"a/+/#", "a/x", true},
	    {"a/+/#", "a", false},
	    {"/", "/", true},
	    {"+", "x", true},
	    {"ä/ö/+", "ä/ö/ü", true},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		cr_expect_eq(td_mqtt_topic_match(cases[i].filter, cases[i].topic), cases[i].match,
			     "\"%s\" ~ \"%s\" should be %s", cases[i].filter, cases[i].topic,
			     cases[i].match ? "a match" : "no match");
}

struct check_case {
	const char *text;
	const char *words; /* NULL: valid */
};

Test(mqtt_topic, validates_filters_with_clear_messages)
{
	static const struct check_case cases[] = {
	    {"a/b", NULL},
	    {"#", NULL},
	    {"+", NULL},
	    {"+/+/#", NULL},
	    {"/", NULL},
	    {"a//b", NULL},
	    {"$SYS/#", NULL},
	    {"", "the topic filter is empty"},
	    {"a/#/b", "'#' at byte 2 must be the whole last level"},
	    {"a#", "'#' at byte 1 must be the whole last level"},
	    {"#/", "'#' at byte 0"},
	    {"a+", "'+' at byte 1 must be a whole level"},
	    {"a/+b", "'+' at byte 2"},
	    {"a/b+/c", "'+' at byte 3"},
	    {"$share/g/a", "shared subscription"},
	    {"a/\x01", "control character at byte 2"},
	    {"a/\x7f", "control character at byte 2"},
	    {"a/\xc3", "not valid UTF-8 at byte 2"},
	    {"\xff", "not valid UTF-8 at byte 0"},
	    {"a\xed\xa0\x80", "not valid UTF-8 at byte 1"}, /* a surrogate */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char err[256] = "";
		int rc = td_mqtt_filter_validate(cases[i].text, err, sizeof err);
		if (!cases[i].words) {
			cr_expect_eq(rc, 0, "\"%s\": %s", cases[i].text, err);
		} else {
			cr_expect_eq(rc, -TD_EINVAL, "\"%s\" should be refused", cases[i].text);
			cr_expect(strstr(err, cases[i].words), "\"%s\": got \"%s\", want \"%s\"",
				  cases[i].text, err, cases[i].words);
		}
	}
}

Test(mqtt_topic, refuses_over_long_filters_and_takes_null_err)
{
	char *big = malloc(TD_MQTT_TOPIC_MAX + 2);
	cr_assert(big);
	memset(big, 'a', TD_MQTT_TOPIC_MAX + 1);
	big[TD_MQTT_TOPIC_MAX + 1] = '\0';
	char err[128];
	cr_expect_eq(td_mqtt_filter_validate(big, err, sizeof err), -TD_EINVAL);
	cr_expect(strstr(err, "65536 bytes long (at most 65535)"), "%s", err);
	big[TD_MQTT_TOPIC_MAX] = '\0';
	cr_expect_eq(td_mqtt_filter_validate(big, NULL, 0), 0);
	cr_expect_eq(td_mqtt_filter_validate("a/#/b", NULL, 0), -TD_EINVAL);
	free(big);
}

Test(mqtt_topic, validates_topic_names)
{
	static const struct check_case cases[] = {
	    {"a/b", NULL},
	    {"/", NULL},
	    {"$SYS/x", NULL},
	    {"", "the topic is empty"},
	    {"a/+", "wildcard '+' at byte 2"},
	    {"a/#", "wildcard '#' at byte 2"},
	    {"a\tb", "control character at byte 1"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char err[256] = "";
		int rc = td_mqtt_topic_validate(cases[i].text, err, sizeof err);
		if (!cases[i].words) {
			cr_expect_eq(rc, 0, "\"%s\": %s", cases[i].text, err);
		} else {
			cr_expect_eq(rc, -TD_EINVAL, "\"%s\" should be refused", cases[i].text);
			cr_expect(strstr(err, cases[i].words), "\"%s\": got \"%s\"", cases[i].text,
				  err);
		}
	}
}

Test(mqtt_topic, renders_reply_templates)
{
	static const struct {
		const char *tmpl, *topic, *out, *err;
	} cases[] = {
	    {"replies/{topic}", "dev/7/cmd", "replies/dev/7/cmd", NULL},
	    {"fixed", "dev/7", "fixed", NULL},
	    {"{topic}/reply/{topic}", "a", "a/reply/a", NULL},
	    {"{topic}", "x", "x", NULL},
	    {"{topi}/x", "y", "{topi}/x", NULL},
	    {"replies/+/{topic}", "a", NULL, "wildcard '+'"},
	    {"", "a", NULL, "empty"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char err[256] = "";
		char *out = td_mqtt_template_render(cases[i].tmpl, cases[i].topic, err, sizeof err);
		if (cases[i].out) {
			cr_expect(out && strcmp(out, cases[i].out) == 0, "%s: got %s (%s)",
				  cases[i].tmpl, out ? out : "NULL", err);
			cr_expect_eq(td_mqtt_template_validate(cases[i].tmpl, NULL, 0), 0);
		} else {
			cr_expect_null(out, "%s should fail", cases[i].tmpl);
			cr_expect(strstr(err, cases[i].err), "%s: %s", cases[i].tmpl, err);
			cr_expect_eq(td_mqtt_template_validate(cases[i].tmpl, NULL, 0), -TD_EINVAL);
		}
		free(out);
	}
}

Test(mqtt_topic, parses_publish_targets)
{
	static const struct {
		const char *target, *topic;
		int qos;
		bool retain;
		const char *err;
	} cases[] = {
	    {"alerts/hot", "alerts/hot", 1, false, NULL},
	    {"alerts/hot?qos=0", "alerts/hot", 0, false, NULL},
	    {"alerts/hot?qos=2&retain=true", "alerts/hot", 2, true, NULL},
	    {"a?retain=true&qos=0", "a", 0, true, NULL},
	    {"a?retain=false", "a", 1, false, NULL},
	    {"a?", "a", 1, false, NULL},
	    {"a?qos=3", NULL, 0, false, "\"qos=3\" at byte 2 is not a publish option"},
	    {"a?retain=yes", NULL, 0, false, "\"retain=yes\""},
	    {"a?qos=1&&x", NULL, 0, false, "\"\" at byte 8"},
	    {"a/+?qos=1", NULL, 0, false, "wildcard '+'"},
	    {"?qos=1", NULL, 0, false, "empty"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char err[256] = "", *topic = (char *)"unset";
		int qos = 1;
		bool retain = false;
		int rc =
		    td_mqtt_target_parse(cases[i].target, &topic, &qos, &retain, err, sizeof err);
		if (cases[i].topic) {
			cr_expect_eq(rc, 0, "%s: %s", cases[i].target, err);
			cr_expect(topic && strcmp(topic, cases[i].topic) == 0, "%s",
				  cases[i].target);
			cr_expect_eq(qos, cases[i].qos, "%s", cases[i].target);
			cr_expect_eq(retain, cases[i].retain, "%s", cases[i].target);
		} else {
			cr_expect_eq(rc, -TD_EINVAL, "%s should fail", cases[i].target);
			cr_expect_null(topic);
			cr_expect(strstr(err, cases[i].err), "%s: %s", cases[i].target, err);
		}
		free(topic);
	}
}
