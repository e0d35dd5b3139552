/*
 * The pure parts of the Redis Streams source (connectors/redis_streams.c): the server
 * URL, entry ids, the replies of XREADGROUP, XAUTOCLAIM and XPENDING, the mapping of an
 * entry's fields to an event, batch events, and Lambda's partial batch response. None of
 * them does I/O or keeps state, so each is unit tested and fuzzed on its own
 * (tests/unit/test_redis_*.c, tests/fuzz/fuzz_redis_*.c).
 *
 * Everything that comes from outside (the URL in the configuration, the server's
 * replies, the function's answer) is checked before it is used: a bad value is refused
 * with a message that says what and where, never read out of bounds.
 *
 * Threads: every function is reentrant and works only on what it is given.
 * Ownership: written at each function.
 */
#ifndef TRIGGERD_REDIS_STREAMS_UTIL_H
#define TRIGGERD_REDIS_STREAMS_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#include <hiredis/hiredis.h>

struct td_buf;
struct td_event;

/* ---- The server URL ---------------------------------------------------------------- */

/*
 * Accepted forms:
 *   redis://[[user]:password@]host[:port][/db]   host: a name, IPv4, or [IPv6]; port
 *                                                 6379 by default; db 0 by default
 *   unix:///path/to/redis.sock[?db=N&user=U&password=P]
 *   /path/to/redis.sock                           a socket path, db 0, no password
 * User and password are percent-decoded (%40 is '@'). rediss:// (TLS) is refused: the
 * hiredis of this system (0.14) has no TLS.
 */
struct td_redis_url {
	bool unix_socket;
	char host[256]; /* without brackets */
	int port;
	char path[108]; /* the socket (sun_path holds 108 bytes) */
	char user[256]; /* "" for none (AUTH password only) */
	char password[512];
	bool has_password;
	long long db;
};

/* 0, or -TD_EINVAL with "at byte N: reason" in err. */
int td_redis_url_parse(const char *text, struct td_redis_url *out, char *err, size_t errlen);
/* "127.0.0.1:6379", "[::1]:6380/2", "/run/redis.sock": for messages, never a password. */
void td_redis_url_describe(const struct td_redis_url *u, char *out, size_t cap);

/* ---- Entry ids --------------------------------------------------------------------- */

/* The longest id text, "18446744073709551615-18446744073709551615", and its NUL. */
#define TD_REDIS_ID_MAX 48

struct td_redis_id {
	unsigned long long ms, seq;
};

/* "MS-SEQ", both decimal without sign or leading zeros beyond "0". 0 or -TD_EINVAL. */
int td_redis_id_parse(const char *s, size_t len, struct td_redis_id *out);
int td_redis_id_cmp(const struct td_redis_id *a, const struct td_redis_id *b);
void td_redis_id_format(const struct td_redis_id *id, char out[TD_REDIS_ID_MAX]);

/* ---- Entries ----------------------------------------------------------------------- */

struct td_redis_field {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

/*
 * An entry copied out of a reply: one allocation holding the struct, the field array and
 * the bytes (each name and value is also NUL-terminated, which the lengths do not
 * count). deleted: the id is pending but the entry is gone from the stream (XDEL or
 * trimming), so it has no fields. Freed with free().
 */
struct td_redis_entry {
	struct td_redis_id id;
	char id_text[TD_REDIS_ID_MAX];
	bool deleted;
	size_t nfields;
	struct td_redis_field *fields;
};

/* Copies fields[0..n) under id. NULL with a reason in err (a bad id, out of memory). */
struct td_redis_entry *td_redis_entry_new(const char *id, size_t id_len,
					  const struct td_redis_field *fields, size_t n, char *err,
					  size_t errlen);
/* One entry of a reply: [id, [name, value, ...]] or [id, nil] (deleted). */
struct td_redis_entry *td_redis_entry_from_reply(const redisReply *r, char *err, size_t errlen);

/*
 * Receives one parsed entry; it owns e from then on. stream is the index of the entry's
 * stream in the list the parser was given (XAUTOCLAIM: the index passed in).
 */
typedef void (*td_redis_entry_fn)(void *arg, size_t stream, struct td_redis_entry *e);

/*
 * XREADGROUP's reply: nil (the block timed out) or [[key, [entry, ...]], ...]. Every key
 * must be one of streams[0..nstreams). The whole reply is checked before the first
 * entry is handed to fn, so a malformed reply hands over nothing. Returns the number of
 * entries, -TD_EINVAL with a reason in err, or -TD_ENOMEM (entries handed over so far
 * stay with fn).
 */
int td_redis_parse_xreadgroup(const redisReply *r, const char *const *streams, size_t nstreams,
			      td_redis_entry_fn fn, void *arg, char *err, size_t errlen);
/*
 * XAUTOCLAIM's reply: [next cursor, [entry, ...]] (Redis 6.2) or [next cursor, [entry,
 * ...], [deleted id, ...]] (7.0 and later). cursor receives the next start id ("0-0"
 * when the scan is complete). Entries whose fields are nil are handed over as deleted.
 * Returns the number of entries, or as td_redis_parse_xreadgroup.
 */
int td_redis_parse_xautoclaim(const redisReply *r, size_t stream, char cursor[TD_REDIS_ID_MAX],
			      td_redis_entry_fn fn, void *arg, char *err, size_t errlen);
/*
 * XPENDING's extended reply: [[id, consumer, idle ms, deliveries], ...]. Calls fn for
 * each row once the whole reply was checked. Returns the number of rows, or -TD_EINVAL.
 */
int td_redis_parse_xpending(const redisReply *r,
			    void (*fn)(void *arg, const struct td_redis_id *id,
				       long long deliveries),
			    void *arg, char *err, size_t errlen);

/* ---- Events ------------------------------------------------------------------------ */

/*
 * The payload of an entry. An entry with exactly one field, named "data" or "payload",
 * carries its payload as that value: returns 1 with the bytes in *raw, *raw_len (they
 * point into e). Otherwise appends a JSON object to out and returns 0: one member per
 * field name in the order of first appearance; the value is a JSON string when it is
 * valid UTF-8, else {"base64": "..."}; a name given several times maps to a list of its
 * values in order; a name that is not valid UTF-8 has its bad bytes replaced by U+FFFD.
 * -TD_ENOMEM when out ran out of memory.
 */
int td_redis_entry_payload(const struct td_redis_entry *e, struct td_buf *out, const char **raw,
			   size_t *raw_len);

/*
 * The event of one entry (DESIGN.md): id "STREAM/ENTRY-ID", the given source attribute,
 * type triggerd.redis.entry, subject and extension redisstream = the stream key,
 * redisid = the entry id, redisdeliveries = deliveries (Integer: this delivery's count),
 * time = the id's milliseconds (the time of XADD for ids Redis made), data as
 * td_redis_entry_payload. A raw payload that is not JSON gets datacontenttype
 * "text/plain; charset=utf-8" (valid UTF-8) or "application/octet-stream". NULL with a reason in
 * err. The caller owns the event.
 */
struct td_event *td_redis_entry_event(const char *source_attr, const char *stream,
				      const struct td_redis_entry *e, int deliveries, char *err,
				      size_t errlen);

/*
 * One event for a batch of entry events of one stream, in order (n >= 1): type
 * triggerd.redis.batch, id "STREAM/FIRST..LAST", subject and redisstream = the stream,
 * redisid = the first entry id, redislastid = the last, rediscount = n, time of the
 * first, and as data a JSON array of the entries' events in their structured JSON form.
 * The events are only read. NULL with a reason in err; the caller owns the event.
 */
struct td_event *td_redis_batch_event(const char *source_attr, const char *stream,
				      struct td_event *const *events, size_t n, char *err,
				      size_t errlen);

/*
 * The structured JSON form of an entry's event, appended to out: the same text as
 * td_event_to_json(td_redis_entry_event(source_attr, stream, e, deliveries)), written
 * straight from the entry without the event (the batch path, where only the JSON is
 * needed). source_attr and stream must be valid CloudEvents strings (the batch event
 * made with them checks that: td_redis_batch_event_json). 0, or -TD_ENOMEM.
 */
int td_redis_entry_json(const char *source_attr, const char *stream, const struct td_redis_entry *e,
			int deliveries, struct td_buf *out);

/*
 * The batch event of td_redis_batch_event made from its data already written: json is
 * the malloc'ed JSON array of the n entries' td_redis_entry_json texts in order (json[len]
 * == '\0'), first and last the ids of the first and last entry. The event takes json
 * over without copying or validating it, and owns it from the call on (it is freed
 * when this fails). NULL with a reason in err; the caller owns the event.
 */
struct td_event *td_redis_batch_event_json(const char *source_attr, const char *stream,
					   const char *first, const char *last, size_t n,
					   char *json, size_t len, char *err, size_t errlen);

/*
 * Lambda's partial batch response in a function's answer:
 *   {"batchItemFailures": [{"itemIdentifier": "1700000000000-0"}, ...]}
 * An identifier names an entry by its id or by its event id ("STREAM/ID"). Sets
 * failed[i] for each named entry of ids[0..n) and returns how many are failed. A body
 * that is not a JSON object, has no batchItemFailures, or has it null or empty means
 * that every entry succeeded (0). Returns -TD_EINVAL with the reason when the list is
 * malformed or an identifier is missing, empty, not a string or names no entry of the
 * batch: as Lambda, the whole batch then counts as failed.
 */
int td_redis_batch_failures(const char *body, size_t len, const char *stream,
			    const char *const *ids, size_t n, bool *failed, char *err,
			    size_t errlen);

/*
 * The dead-letter stream of stream: tmpl with every "{stream}" replaced by the key.
 * Malloc'ed (the caller frees it), or NULL when out of memory.
 */
char *td_redis_dead_letter_key(const char *tmpl, const char *stream);

#endif
