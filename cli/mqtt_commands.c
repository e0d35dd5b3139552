/*
 * triggerctl's MQTT commands. `triggerctl topic-match FILTER TOPIC` answers whether a
 * topic name matches an MQTT topic filter, with the rules triggerd routes by (the
 * trigger option `topic`, connectors/mqtt_topic.h): it prints "match" (exit 0) or
 * "no match" (exit 1); an invalid filter or topic is reported on stderr with what is
 * wrong and where (exit 2). Like every command of the table in triggerctl.c it gets the
 * arguments after its name and returns -1 for a usage error.
 */
#include <stdbool.h>
#include <stdio.h>

#include "../connectors/mqtt_topic.h"

int td_cli_topic_match(int argc, char **argv);

int td_cli_topic_match(int argc, char **argv)
{
	char err[256];
	if (argc != 2)
		return -1;
	if (td_mqtt_filter_validate(argv[0], err, sizeof err) < 0) {
		fprintf(stderr, "triggerctl: invalid topic filter \"%.200s\": %s\n", argv[0], err);
		return 2;
	}
	if (td_mqtt_topic_validate(argv[1], err, sizeof err) < 0) {
		fprintf(stderr, "triggerctl: invalid topic name \"%.200s\": %s\n", argv[1], err);
		return 2;
	}
	bool match = td_mqtt_topic_match(argv[0], argv[1]);
	puts(match ? "match" : "no match");
	return match ? 0 : 1;
}
