/*
 * The Redis Streams source (kind "redis", hiredis): reads one or more streams as a
 * member of a consumer group (XREADGROUP), created with MKSTREAM when missing. On start
 * it reads its own pending entries first, takes over entries that dead consumers left
 * idle (XAUTOCLAIM after claim_idle), acknowledges (XACK) only settled entries, and
 * moves an entry delivered max_deliveries times to a dead-letter stream.
 *
 * This file holds the options of the kind and their checks.
 */
#include <triggerd/source.h>

#include <stdbool.h>
#include <string.h>

enum redis_start { START_NEW, START_ALL };

struct redis_opts {
	char *url;
	struct td_strings streams;
	char *group;
	int start;	/* enum redis_start: "$" or "0" */
	char *consumer; /* NULL: HOSTNAME-PID */
	long long count;
	long long block_ms;
	long long claim_idle_ms;
	long long max_deliveries;
	char *dead_letter_stream; /* "{stream}" stands for the stream's key */
	long long batch_size;
	long long batch_window_ms;
	long long reconnect_min_ms;
	long long reconnect_max_ms;
};

#define O(field) offsetof(struct redis_opts, field)

static const struct td_option redis_options[] = {
    {.type = TD_OPT_STRING,
     .name = "url",
     .flags = TD_OPT_REQUIRED,
     .offset = O(url),
     .desc = "redis://[user:password@]host:port/db, rediss://... for TLS, or the path of a "
	     "unix socket (/run/redis/redis.sock)."},
    {.type = TD_OPT_STRINGS,
     .name = "streams",
     .flags = TD_OPT_REQUIRED,
     .offset = O(streams),
     .desc = "Stream keys to read (one or more)."},
    {.type = TD_OPT_STRING,
     .name = "group",
     .def = "triggerd",
     .offset = O(group),
     .desc = "Consumer group, created with MKSTREAM when missing; instances in one group "
	     "share the entries."},
    {.type = TD_OPT_ENUM,
     .name = "start",
     .def = "$",
     .offset = O(start),
     .choices = "$|0",
     .desc = "Where a new group starts: $ (new entries only) or 0 (the whole stream)."},
    {.type = TD_OPT_STRING,
     .name = "consumer",
     .offset = O(consumer),
     .desc = "Consumer name in the group, unique per instance. Default: "
	     "\"HOSTNAME-PID\"."},
    {.type = TD_OPT_INT,
     .name = "count",
     .def = "100",
     .offset = O(count),
     .min = 1,
     .max = 10000,
     .desc = "Entries per read (XREADGROUP COUNT)."},
    {.type = TD_OPT_DURATION,
     .name = "block",
     .def = "2s",
     .offset = O(block_ms),
     .min = 1,
     .max = 60000,
     .desc = "How long a read waits for new entries (XREADGROUP BLOCK)."},
    {.type = TD_OPT_DURATION,
     .name = "claim_idle",
     .def = "60s",
     .offset = O(claim_idle_ms),
     .min = 1000,
     .max = 86400000,
     .desc = "Pending entries of other consumers idle this long are taken over "
	     "(XAUTOCLAIM)."},
    {.type = TD_OPT_INT,
     .name = "max_deliveries",
     .def = "5",
     .offset = O(max_deliveries),
     .min = 1,
     .max = 1000,
     .desc = "Deliveries of one entry before it goes to the dead-letter stream."},
    {.type = TD_OPT_STRING,
     .name = "dead_letter_stream",
     .def = "{stream}:dlq",
     .offset = O(dead_letter_stream),
     .desc = "Stream that receives entries delivered max_deliveries times; {stream} is "
	     "the key of the stream they came from."},
    {.type = TD_OPT_INT,
     .name = "batch_size",
     .def = "1",
     .offset = O(batch_size),
     .min = 1,
     .max = 10000,
     .desc = "Most entries per invocation (the function gets them as one batch)."},
    {.type = TD_OPT_DURATION,
     .name = "batch_window",
     .def = "0s",
     .offset = O(batch_window_ms),
     .min = 0,
     .max = 300000,
     .desc = "How long to wait to fill a batch; 0s sends what one read returned."},
    {.type = TD_OPT_DURATION,
     .name = "reconnect.min",
     .def = "1s",
     .offset = O(reconnect_min_ms),
     .min = 100,
     .max = 60000,
     .desc = "First delay before reconnecting; it doubles up to reconnect.max."},
    {.type = TD_OPT_DURATION,
     .name = "reconnect.max",
     .def = "60s",
     .offset = O(reconnect_max_ms),
     .min = 1000,
     .max = 3600000,
     .desc = "Longest delay between reconnection attempts."},
    {0},
};

static void redis_check(const void *p, const char *file, int line, struct td_diag *diag)
{
	const struct redis_opts *o = p;
	char err[256];

	if (o->url[0] != '/' &&
	    td_url_check(o->url, "redis://|rediss://|unix://", err, sizeof err) < 0)
		td_diag_add(diag, file, line, "option 'url': %s (or a socket path starting with /)",
			    err);
	for (size_t i = 0; i < o->streams.n; i++)
		if (strpbrk(o->streams.v[i], " \t\r\n"))
			td_diag_add(diag, file, line,
				    "option 'streams': \"%.200s\" holds white space",
				    o->streams.v[i]);
	for (size_t i = 0; i < o->streams.n; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(o->streams.v[i], o->streams.v[j]) == 0)
				td_diag_add(diag, file, line,
					    "option 'streams': \"%.200s\" is listed twice",
					    o->streams.v[i]);
	if (o->reconnect_max_ms < o->reconnect_min_ms)
		td_diag_add(diag, file, line,
			    "option 'reconnect.max' must not be shorter than reconnect.min");
}

const struct td_source_ops td_source_redis = {
    .name = "redis",
    .summary = "Entries of Redis streams, read in a consumer group",
    .options = redis_options,
    .opts_size = sizeof(struct redis_opts),
    .check = redis_check,
};
