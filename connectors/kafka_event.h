/*
 * Kafka records as CloudEvents and back: the pure parts of the kafka source
 * (connectors/kafka.c). Nothing here does I/O or keeps state, so each function is unit
 * tested (tests/unit/test_kafka_event.c) and the parsers of outside input are fuzzed
 * (tests/fuzz/fuzz_kafka_event.c).
 *
 * A record event (DESIGN.md, the envelope table):
 *   id               TOPIC-PARTITION-OFFSET (stable across redelivery)
 *   source           the source_attr given ("triggerd/kafka/SOURCE")
 *   type             triggerd.kafka.record
 *   subject          the key, when it is a valid, non-empty CloudEvents String
 *   time             the record's timestamp (absent when the record has none)
 *   datacontenttype  the record's "content-type" header (any case), when it is a valid
 *                    media type
 *   data             the value as it came (JSON, text, or binary: classified by event.h);
 *                    absent for a null value (a tombstone)
 *   kafkatopic       String
 *   kafkapartition   Integer
 *   kafkaoffset      Integer; a String when the offset is beyond 2147483647 (CloudEvents
 *                    Integers are 32-bit)
 *   kafkakey         the key in base64, only when the key is not carried by `subject`
 *                    (binary, control characters, empty)
 *   kafkatimestamptype  "LOG_APPEND_TIME" for broker timestamps (absent: CREATE_TIME)
 *   kafkaheaders     every header, in order, as JSON text: [{"name": "base64"}, ...] with
 *                    null for a null value (names that are not valid UTF-8 get U+FFFD)
 *   <header name>    each header whose name is a valid extension name ([a-z0-9]{1,20},
 *                    not a CloudEvents attribute, not starting with "kafka") and whose
 *                    value is a valid CloudEvents String; when a name repeats, the last
 *                    such value wins (Kafka's lastHeader).
 *
 * A batch event (batch_size > 1): one invocation for several records of one partition:
 *   id "TOPIC-PARTITION-FIRST..LAST", type triggerd.kafka.batch, subject = the key when
 *   every record has that same subject, time of the first record, kafkatopic,
 *   kafkapartition, kafkaoffset (first), kafkalastoffset, kafkacount (Integer), and as
 *   data (application/json) a JSON array of the record events in structured JSON form.
 *
 * The AWS shape (event_format "aws"): Lambda's self-managed Kafka event,
 *   {"eventSource": "SelfManagedKafka", "bootstrapServers": "...",
 *    "records": {"TOPIC-PARTITION": [{"topic", "partition", "offset", "timestamp",
 *    "timestampType", "key" (base64; absent without a key), "value" (base64; null for a
 *    tombstone), "headers": [{"name": [byte values 0..255]}]}]}}
 * made from a record or a batch event.
 *
 * Threads: every function is reentrant. Ownership: written at each function.
 */
#ifndef TRIGGERD_KAFKA_EVENT_H
#define TRIGGERD_KAFKA_EVENT_H

#include <stdbool.h>
#include <stddef.h>

struct td_buf;
struct td_event;
struct td_result;

#define TD_KAFKA_RECORD_TYPE "triggerd.kafka.record"
#define TD_KAFKA_BATCH_TYPE  "triggerd.kafka.batch"

enum td_kafka_ts_type { TD_KAFKA_TS_NONE, TD_KAFKA_TS_CREATE, TD_KAFKA_TS_LOG_APPEND };

/* A header as the client library has it (views, nothing is kept). value NULL: null. */
struct td_kafka_header {
	const char *name;
	size_t name_len;
	const void *value;
	size_t value_len;
};

/* A consumed record, as views into the client library's buffers. */
struct td_kafka_record {
	const char *topic;
	int partition;
	long long offset;
	const void *key; /* NULL: no key */
	size_t key_len;
	const void *value; /* NULL: a null value */
	size_t value_len;
	long long timestamp_ms; /* < 0: none */
	int timestamp_type;	/* enum td_kafka_ts_type */
	const struct td_kafka_header *headers;
	size_t nheaders;
};

/* FNV-1a, 64 bits: what key ordering compares. */
unsigned long long td_kafka_key_hash(const void *key, size_t len);

/*
 * The event of one record (see the top). Parts that cannot be carried as described are
 * left out (a header with an unusable name or value stays in kafkaheaders only). Returns
 * a new event (the caller owns its reference), or NULL with the reason in err (out of
 * memory, a topic that is no CloudEvents String).
 */
struct td_event *td_kafka_record_event(const char *source_attr, const struct td_kafka_record *r,
				       char *err, size_t errlen);

/*
 * The structured JSON form of the record's event, made directly from the record into out
 * (appended): the same text as td_event_to_json(td_kafka_record_event(r)), made without
 * the event (the batch path, where only the JSON is needed). *has_subject says whether
 * the key is the subject. 0, or -TD_ENOMEM.
 */
int td_kafka_record_json(const char *source_attr, const struct td_kafka_record *r,
			 struct td_buf *out, bool *has_subject);

/*
 * What the JSON of every record of one partition shares, made once per partition for
 * td_kafka_record_json_with (the batch path's per-record cost): the text up to the
 * offset in "id", the source and type, the Kafka extensions up to the offset, and the
 * time text of the last record (a cache: records of one second differ only in the
 * milliseconds). Owned by the caller (td_kafka_json_prefix_free); used by one thread at a
 * time, since the cache changes.
 */
struct td_kafka_json_prefix {
	char *text; /* one allocation: head, mid, ext */
	size_t head_len, mid_len, ext_len;
	long long time_sec; /* the second of time_text, valid when time_ok */
	bool time_ok;
	char time_text[40];
};

/* Makes p for records of topic/partition. 0, or -TD_ENOMEM (p is then empty). */
int td_kafka_json_prefix_init(struct td_kafka_json_prefix *p, const char *source_attr,
			      const char *topic, int partition);
void td_kafka_json_prefix_free(struct td_kafka_json_prefix *p);

/*
 * td_kafka_record_json with the shared parts taken from pre, which was made for r's topic
 * and partition (the same text, byte for byte). 0, or -TD_ENOMEM.
 */
int td_kafka_record_json_with(struct td_kafka_json_prefix *pre, const struct td_kafka_record *r,
			      struct td_buf *out, bool *has_subject);

/* One record of a batch: its event's structured JSON and what the batch event needs. */
struct td_kafka_batch_item {
	const char *json; /* as td_kafka_record_json wrote it: trusted, not validated again */
	size_t json_len;
	long long offset;
	const char *subject;	/* its subject, or NULL */
	long long timestamp_ms; /* < 0: none */
	int timestamp_type;	/* enum td_kafka_ts_type */
};

/*
 * One event for n >= 1 records of one partition, in offset order (see the top; the
 * items are only read). The data is the items' JSON joined into one array in one
 * buffer and handed to the event without a copy or a second validation
 * (td_event_take_data_json), so each item's json must be one valid JSON value: what
 * td_kafka_record_json made. Returns a new event, or NULL with the reason in err.
 */
struct td_event *td_kafka_batch_event(const char *source_attr, const char *topic, int partition,
				      const struct td_kafka_batch_item *items, size_t n, char *err,
				      size_t errlen);

/*
 * The AWS self-managed Kafka event for a record or batch event made above (or read back
 * from JSON). bootstrap may be NULL ("" then). Returns malloc'ed JSON text (the caller
 * frees it) and its length in *len (may be NULL), or NULL with the reason in err when
 * the event is no Kafka event or its Kafka attributes are malformed.
 */
char *td_kafka_aws_json(const struct td_event *ev, const char *bootstrap, size_t *len, char *err,
			size_t errlen);

/*
 * Parses the JSON text of a kafkaheaders extension: calls fn for each header in order
 * (name decoded to UTF-8, value decoded from base64, value NULL for null; the pointers
 * live during the call). Returns the number of headers, or -TD_EINVAL with what and
 * where in err, or -TD_ENOMEM.
 */
int td_kafka_headers_parse(const char *json, size_t len,
			   void (*fn)(void *arg, const char *name, size_t name_len,
				      const void *value, size_t value_len),
			   void *arg, char *err, size_t errlen);

/* The key and headers of a record to produce. Owned by the struct. */
struct td_kafka_out_header {
	char *name;
	void *value; /* NULL: a null value */
	size_t value_len;
};
struct td_kafka_origin {
	void *key; /* NULL: no key */
	size_t key_len;
	struct td_kafka_out_header *headers;
	size_t nheaders;
};
void td_kafka_origin_clear(struct td_kafka_origin *o);

/*
 * The key and headers of the Kafka record an event came from, to produce it again with
 * them (a dead letter keeps them): for a record event its key (kafkakey or subject) and
 * kafkaheaders; for a batch event its common key (subject), no headers; for any other
 * event nothing. 0, or -TD_EINVAL with the reason in err (a malformed kafkakey or
 * kafkaheaders), -TD_ENOMEM. On error o is cleared.
 */
int td_kafka_event_origin(const struct td_event *ev, struct td_kafka_origin *o, char *err,
			  size_t errlen);

/*
 * The same for a destination record (the router's on_success/on_failure JSON, or a dead
 * letter below): the origin of the event in its "requestPayload" member. A record that
 * is not a JSON object, or has no event there, gives nothing (0). -TD_EINVAL when the
 * text is not JSON at all, or the event's Kafka attributes are malformed.
 */
int td_kafka_destination_origin(const char *record, size_t len, struct td_kafka_origin *o,
				char *err, size_t errlen);

/* Why a record was given up, for its dead letter. */
struct td_kafka_failure {
	const char *source;		/* the source's name */
	const char *condition;		/* "RetryAttemptsExhausted", "RecordAgeExceeded" */
	int attempts;			/* invocations made */
	const struct td_result *result; /* the last answer, or NULL */
	const char *error;		/* a short reason, or NULL */
	long long wall_ms;		/* now */
	size_t batch_size;		/* records in the failed batch */
	long long first_offset, last_offset;
	const char *request_id; /* a UUID */
};

/*
 * A dead letter for one record event, shaped like the router's destination records:
 * {"version": "1.0", "timestamp", "requestContext": {"requestId", "source",
 * "condition", "approximateInvokeCount"}, "responseContext": {"statusCode",
 * "functionError"}, "responsePayload", "error", "KafkaBatchInfo": {"topic",
 * "partition", "offset", "batchSize", "firstOffset", "lastOffset"}, "requestPayload":
 * the event}. Malloc'ed (the caller frees it), length in *len; NULL when out of memory.
 */
char *td_kafka_dead_letter(const struct td_event *ev, const struct td_kafka_failure *f,
			   size_t *len);

/*
 * Checks a destination target "TOPIC" (a Kafka topic name: 1..249 of [a-zA-Z0-9._-],
 * not "." or ".."). 0, or -TD_EINVAL with the reason in err.
 */
int td_kafka_topic_check(const char *topic, char *err, size_t errlen);

#endif
