/*
 * The Kafka source (librdkafka): a member of a consumer group that hands records to the
 * router in batches and commits an offset only when every record before it is settled.
 * Ordering decides what may run in parallel: one batch per partition (partition), one
 * per record key (key), or anything (none).
 *
 * This file holds the options of the kind and their checks. librdkafka's own properties
 * (SASL, TLS, timeouts) pass through option rdkafka as a list of "name=value" strings,
 * with librdkafka's exact names (libconfig setting names cannot hold dots); the
 * properties triggerd sets itself are refused there.
 */
#include <triggerd/source.h>

#include <ctype.h>
#include <regex.h>
#include <stdbool.h>
#include <string.h>

enum kafka_start { START_LATEST, START_EARLIEST };
enum kafka_ordering { ORDER_PARTITION, ORDER_KEY, ORDER_NONE };

struct kafka_opts {
	struct td_strings brokers;
	struct td_strings topics; /* names, or "^regex" */
	char *group;
	int start;		   /* enum kafka_start */
	struct td_strings rdkafka; /* "name=value" */
	long long batch_size;
	long long batch_window_ms;
	int ordering;		     /* enum kafka_ordering */
	long long max_record_age_ms; /* 0: no limit */
	long long retries;	     /* -1: until success */
	bool bisect_on_error;
	long long batches_in_flight;
	char *on_failure; /* a destination, or NULL */
	long long backoff_base_ms;
	long long backoff_cap_ms;
	long long rebalance_grace_ms;
};

#define O(field) offsetof(struct kafka_opts, field)

static const struct td_option kafka_options[] = {
    {.type = TD_OPT_STRINGS,
     .name = "brokers",
     .flags = TD_OPT_REQUIRED,
     .offset = O(brokers),
     .desc = "Bootstrap brokers, host:port each (a list, or one \"a:9092,b:9092\" string)."},
    {.type = TD_OPT_STRINGS,
     .name = "topics",
     .flags = TD_OPT_REQUIRED,
     .offset = O(topics),
     .desc = "Topics to consume: names, or regular expressions starting with ^."},
    {.type = TD_OPT_STRING,
     .name = "group",
     .def = "triggerd",
     .offset = O(group),
     .desc = "Consumer group id; instances in one group share the partitions."},
    {.type = TD_OPT_ENUM,
     .name = "start",
     .def = "latest",
     .offset = O(start),
     .choices = "latest|earliest",
     .desc = "Where a group without committed offsets starts."},
    {.type = TD_OPT_STRINGS,
     .name = "rdkafka",
     .flags = TD_OPT_SECRET,
     .offset = O(rdkafka),
     .desc = "librdkafka properties as \"name=value\" strings "
	     "([\"security.protocol=SASL_SSL\", \"sasl.password=${KAFKA_PASSWORD}\"]). "
	     "Default: none."},
    {.type = TD_OPT_INT,
     .name = "batch_size",
     .def = "1",
     .offset = O(batch_size),
     .min = 1,
     .max = 10000,
     .desc = "Most records per invocation (the function gets them as one batch)."},
    {.type = TD_OPT_DURATION,
     .name = "batch_window",
     .def = "0s",
     .offset = O(batch_window_ms),
     .min = 0,
     .max = 300000,
     .desc = "How long to wait to fill a batch; 0s sends what is there."},
    {.type = TD_OPT_ENUM,
     .name = "ordering",
     .def = "partition",
     .offset = O(ordering),
     .choices = "partition|key|none",
     .desc = "partition: one batch in flight per partition; key: records with different "
	     "keys run in parallel, one key in order; none: no order."},
    {.type = TD_OPT_DURATION,
     .name = "max_record_age",
     .def = "0s",
     .offset = O(max_record_age_ms),
     .min = 0,
     .max = 604800000,
     .desc = "Records older than this are skipped (sent to on_failure); 0s: no limit."},
    {.type = TD_OPT_INT,
     .name = "retries",
     .def = "-1",
     .offset = O(retries),
     .min = -1,
     .max = 10000,
     .desc = "Retries of a failed batch of a sync trigger before it is skipped; -1: until "
	     "it succeeds (the partition waits)."},
    {.type = TD_OPT_BOOL,
     .name = "bisect_on_error",
     .def = "false",
     .offset = O(bisect_on_error),
     .desc = "Split a failing batch in two and retry the halves, to isolate the bad "
	     "record."},
    {.type = TD_OPT_INT,
     .name = "batches_in_flight",
     .def = "10",
     .offset = O(batches_in_flight),
     .min = 1,
     .max = 1000,
     .desc = "ordering key or none: most batches of one partition in flight at once (as "
	     "Lambda's ParallelizationFactor); ordering partition has one."},
    {.type = TD_OPT_STRING,
     .name = "on_failure",
     .offset = O(on_failure),
     .desc = "Where a record goes when it is given up (retries exhausted, or older than "
	     "max_record_age), one JSON record per Kafka record, before its offset is "
	     "committed: kafka://THIS-SOURCE/TOPIC (produced with the record's key and "
	     "headers), file:/ABSOLUTE/PATH (JSON lines) or http(s)://URL. Default: none "
	     "(the record is logged as an error and skipped)."},
    {.type = TD_OPT_DURATION,
     .name = "backoff.base",
     .def = "1s",
     .offset = O(backoff_base_ms),
     .min = 1,
     .max = 3600000,
     .desc = "First delay before a failed batch is retried; doubled each time, with "
	     "jitter."},
    {.type = TD_OPT_DURATION,
     .name = "backoff.cap",
     .def = "1m",
     .offset = O(backoff_cap_ms),
     .min = 1,
     .max = 3600000,
     .desc = "Longest delay between retries of a failed batch."},
    {.type = TD_OPT_DURATION,
     .name = "rebalance_grace",
     .def = "10s",
     .offset = O(rebalance_grace_ms),
     .min = 0,
     .max = 300000,
     .desc = "When partitions are taken away (rebalance), how long their batches in "
	     "flight may take to finish before they are given up (the next owner then "
	     "reads them again)."},
    {0},
};

/* Properties triggerd sets from its own options or needs as they are. */
static const char *const managed[][2] = {
    {"bootstrap.servers", "brokers"},
    {"metadata.broker.list", "brokers"},
    {"group.id", "group"},
    {"auto.offset.reset", "start"},
    {"enable.auto.commit", NULL},
    {"enable.auto.offset.store", NULL},
};

/* Messages name only what is before '=': the value may be a secret. */
static void check_property(const char *prop, size_t index, const char *file, int line,
			   struct td_diag *diag)
{
	const char *eq = strchr(prop, '=');
	size_t n = eq ? (size_t)(eq - prop) : 0;

	if (!eq || n == 0 || n > 128) {
		td_diag_add(diag, file, line, "option 'rdkafka'[%zu]: expected \"name=value\"",
			    index);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (!islower((unsigned char)prop[i]) && !isdigit((unsigned char)prop[i]) &&
		    prop[i] != '.' && prop[i] != '_') {
			td_diag_add(diag, file, line,
				    "option 'rdkafka': \"%.*s\" is not a librdkafka property name",
				    (int)n, prop);
			return;
		}
	}
	for (size_t i = 0; i < sizeof managed / sizeof managed[0]; i++) {
		if (strlen(managed[i][0]) == n && strncmp(prop, managed[i][0], n) == 0) {
			if (managed[i][1])
				td_diag_add(diag, file, line,
					    "option 'rdkafka': set %s with option '%s'",
					    managed[i][0], managed[i][1]);
			else
				td_diag_add(diag, file, line,
					    "option 'rdkafka': %s is managed by triggerd (offsets "
					    "are committed when events are settled)",
					    managed[i][0]);
			return;
		}
	}
}

static bool valid_topic_name(const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n > 249 || strcmp(t, ".") == 0 || strcmp(t, "..") == 0)
		return false;
	for (; *t; t++)
		if (!isalnum((unsigned char)*t) && *t != '.' && *t != '_' && *t != '-')
			return false;
	return true;
}

static void kafka_check(const void *p, const char *file, int line, struct td_diag *diag)
{
	const struct kafka_opts *o = p;

	for (size_t i = 0; i < o->brokers.n; i++)
		if (strpbrk(o->brokers.v[i], " \t\r\n") || o->brokers.v[i][0] == ',')
			td_diag_add(diag, file, line,
				    "option 'brokers': \"%.200s\" is not host:port[,host:port...]",
				    o->brokers.v[i]);
	for (size_t i = 0; i < o->topics.n; i++) {
		const char *t = o->topics.v[i];
		if (t[0] == '^') {
			regex_t re;
			if (regcomp(&re, t, REG_EXTENDED | REG_NOSUB) != 0)
				td_diag_add(diag, file, line,
					    "option 'topics': \"%.200s\" is not a valid regular "
					    "expression",
					    t);
			else
				regfree(&re);
		} else if (!valid_topic_name(t)) {
			td_diag_add(diag, file, line,
				    "option 'topics': \"%.200s\" is not a topic name (letters, "
				    "digits, '.', '_', '-'; or ^regex)",
				    t);
		}
	}
	for (size_t i = 0; i < o->rdkafka.n; i++)
		check_property(o->rdkafka.v[i], i, file, line, diag);
}

const struct td_source_ops td_source_kafka = {
    .name = "kafka",
    .summary = "Records of Kafka topics, read in a consumer group, committed when settled",
    .options = kafka_options,
    .opts_size = sizeof(struct kafka_opts),
    .check = kafka_check,
};
