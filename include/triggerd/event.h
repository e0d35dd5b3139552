/*
 * The envelope: every event that enters triggerd is a CloudEvents 1.0 event.
 *
 * Ownership and threads: td_event_create() returns an event with one reference, owned
 * by the caller, who fills it in with the setters from one thread. Once it is handed
 * to the router (or to any other thread) it is immutable: only td_event_ref(),
 * td_event_unref() and the getters may be called, from any thread. Every string and
 * byte buffer passed to a setter is copied; every pointer a getter returns lives as
 * long as the event. The reference count is atomic; the last td_event_unref() frees
 * the event (the caller must not touch it afterwards).
 *
 * The context attributes are `id`, `source`, `type`, `specversion` (always "1.0"),
 * `subject`, `time` (RFC 3339), `datacontenttype`, `dataschema`, and extensions whose
 * names match [a-z0-9]{1,20}. The payload (`data`) is kept as the bytes that came;
 * td_event_data_kind() says whether they are JSON, UTF-8 text, or binary (which the
 * JSON form carries as `data_base64`).
 *
 * Rules the setters enforce (each violation is -TD_EINVAL, and the event is unchanged):
 *   - every value is a CloudEvents String: valid UTF-8 without the control characters
 *     U+0000-U+001F and U+007F-U+009F and without Unicode noncharacters. Connectors
 *     whose input may hold such bytes (a binary Kafka key, say) must not pass them raw;
 *   - `id`, `source`, `type`, `subject`, `dataschema`, `datacontenttype`, `time` are
 *     non-empty; `source` is any non-empty string (a URI-reference is recommended, not
 *     checked); `time` is an RFC 3339 date-time ("2018-04-05T17:31:00Z", fractions and
 *     numeric offsets allowed); `dataschema` is a URI with a scheme (RFC 3986);
 *     `datacontenttype` is an RFC 2046 media type ("type/subtype" and parameters);
 *   - `data` and `data_base64` are not attributes (use td_event_set_data);
 *   - at most TD_EVENT_MAX_EXTENSIONS extensions.
 * Setting an attribute again replaces its value (an extension keeps its position);
 * td_event_set(ev, name, NULL) removes it.
 *
 * Extension values have a CloudEvents type: String (what td_event_set makes), Integer
 * (-2147483648..2147483647) or Boolean. The JSON forms write Integer and Boolean
 * extensions as JSON numbers and booleans, so patterns match them as such
 * ({"kafkapartition": [3]}); HTTP headers carry their canonical text ("3", "true"), and
 * an event read from HTTP binary mode has String extensions only.
 *
 * Payload classification (td_event_set_data): the bytes are JSON when the content type
 * is JSON-like (absent, or a media type whose subtype is "json" or ends in "+json",
 * in any case) AND they are one valid JSON value (json.h's strict validator, nesting at
 * most TD_EVENT_DATA_MAX_DEPTH); else TEXT when they are valid UTF-8; else BINARY. So with
 * `datacontenttype` text/plain the bytes {"a":1} stay TEXT. The classification always
 * follows the current `datacontenttype`: setting that attribute later classifies the
 * payload again.
 */
#ifndef TRIGGERD_EVENT_H
#define TRIGGERD_EVENT_H

#include <stdbool.h>
#include <stddef.h>

struct td_event;

enum td_data_kind {
	TD_DATA_NONE,	/* no payload */
	TD_DATA_JSON,	/* the bytes are one valid JSON value */
	TD_DATA_TEXT,	/* valid UTF-8, not JSON: a JSON string in the JSON form */
	TD_DATA_BINARY, /* anything else: data_base64 in the JSON form */
};

/* The CloudEvents type of an extension value. */
enum td_attr_type {
	TD_ATTR_STRING,
	TD_ATTR_INTEGER, /* the value is its decimal text, -2147483648..2147483647 */
	TD_ATTR_BOOLEAN, /* the value is "true" or "false" */
};

/* Limits: extensions per event, and the JSON nesting a JSON payload may have (one
 * level below json.h's TD_JSON_MAX_DEPTH, so the structured and matching forms, which
 * nest the payload in an object, stay within it). */
#define TD_EVENT_MAX_EXTENSIONS 128
#define TD_EVENT_DATA_MAX_DEPTH 511

/* A header as an HTTP server or client sees it (name compared case-insensitively). */
struct td_http_header {
	const char *name;
	const char *value;
};

/* NULL when out of memory. */
struct td_event *td_event_create(void);
/* Adds a reference and returns ev. Any thread. */
struct td_event *td_event_ref(struct td_event *ev);
/* Drops a reference; the last one frees the event. NULL is ignored. Any thread. */
void td_event_unref(struct td_event *ev);

/*
 * Sets a context attribute or an extension (any name that is not a core attribute).
 * Returns -TD_EINVAL for an invalid extension name, an invalid `time`, or an attempt to
 * set `specversion` to anything but "1.0", `data` or `data_base64` (and for the other
 * rules in the comment at the top), -TD_ENOMEM when out of memory. value NULL removes
 * the attribute; setting `specversion` to "1.0" changes nothing.
 */
int td_event_set(struct td_event *ev, const char *name, const char *value);
/* The same with a value of len bytes (not NUL-terminated; an embedded NUL is invalid). */
int td_event_setn(struct td_event *ev, const char *name, const char *value, size_t len);
/*
 * Sets an extension with its CloudEvents type: TD_ATTR_INTEGER needs the text of an
 * integer in range ("-12", no "+", no leading zeros, no fraction), TD_ATTR_BOOLEAN needs
 * "true" or "false". Core attributes accept only TD_ATTR_STRING.
 */
int td_event_set_typed(struct td_event *ev, const char *name, const char *value, size_t len,
		       enum td_attr_type type);
/* Integer and Boolean extensions; -TD_EINVAL for a core name or a value out of range. */
int td_event_set_int(struct td_event *ev, const char *name, long long value);
int td_event_set_bool(struct td_event *ev, const char *name, bool value);
/* Sets `time` from milliseconds since the Unix epoch, as "2026-11-27T08:00:00.123Z". */
int td_event_set_time_ms(struct td_event *ev, long long unix_ms);
/* Copies the payload and classifies it (JSON, text, binary). content_type may be NULL;
 * when it is given it also sets `datacontenttype`. data NULL with len 0 removes the
 * payload; data non-NULL with len 0 is an empty payload (TEXT). */
int td_event_set_data(struct td_event *ev, const void *data, size_t len, const char *content_type);

/*
 * Takes over a payload that the caller has just written and knows to be JSON, without
 * copying or checking it (td_event_set_data copies and validates; use that for anything
 * that came from outside). json is a malloc'ed buffer of at least len + 1 bytes with
 * json[len] == '\0'; the caller guarantees that json[0..len) is exactly one valid JSON
 * value (RFC 8259, UTF-8, nesting at most TD_EVENT_DATA_MAX_DEPTH), and the payload is
 * classified TD_DATA_JSON without a look. content_type, when given, also sets
 * `datacontenttype` and must be JSON-like (td_event_content_type_is_json); NULL keeps
 * the current one, which must be JSON-like too (absent is). The event owns json from
 * the call on, also when the call fails (it is freed then): 0, or -TD_EINVAL (json
 * NULL, len 0, a content type that is not JSON-like or not a valid media type; the
 * event is unchanged), -TD_ENOMEM.
 */
int td_event_take_data_json(struct td_event *ev, char *json, size_t len, const char *content_type);

/* NULL when the attribute is absent. "specversion" is always "1.0". */
const char *td_event_get(const struct td_event *ev, const char *name);
/* The payload bytes (NUL-terminated for convenience, which len does not count), or NULL
 * with *len = 0 when there is none. len may be NULL. */
const void *td_event_data(const struct td_event *ev, size_t *len);
enum td_data_kind td_event_data_kind(const struct td_event *ev);
/* Extensions in the order they were set: returns false past the last one. */
bool td_event_extension(const struct td_event *ev, size_t i, const char **name, const char **value);
/* The type of extension i (TD_ATTR_STRING past the last one). */
enum td_attr_type td_event_extension_type(const struct td_event *ev, size_t i);
/* True when the two events have the same attributes (extensions compared by name,
 * value and type, in any order) and the same payload kind and bytes; a JSON payload is
 * compared without the whitespace around its value, which the structured form does not
 * carry. */
bool td_event_equal(const struct td_event *a, const struct td_event *b);

/* Checks the required attributes (id, source, type non-empty). 0, or -TD_EINVAL with a
 * message in err (may be NULL). */
int td_event_validate(const struct td_event *ev, char *err, size_t errlen);

/* True when a content type (NULL = absent) declares JSON data, as described above. */
bool td_event_content_type_is_json(const char *content_type);

/*
 * JSON structured mode. td_event_to_json returns a malloc'ed NUL-terminated text (the
 * caller frees it) and its length in *len (may be NULL). td_event_from_json parses and
 * validates one event; NULL with a reason in err on any error.
 *
 * Out: "specversion", "id", "source", "type", then the optional attributes that are
 * set, the extensions (typed), then the payload: a JSON payload nested as its exact
 * bytes (without the whitespace around the value) under "data"; a TEXT payload as a
 * JSON string under "data" when the content type is not JSON-like, else (and for
 * BINARY) base64 under "data_base64", so that td_event_from_json(td_event_to_json(ev))
 * is td_event_equal to ev. NULL when out of memory.
 *
 * In (RFC 8259 text, nesting at most TD_JSON_MAX_DEPTH): one JSON object; members
 * with a null value are absent; the required attributes must be present; unknown
 * members must be valid extension names with String, Boolean or Integer values. With a
 * JSON-like content type the payload is the exact text of the "data" value (without
 * the whitespace around it); otherwise "data" must be a string and the payload is its
 * text. "data_base64" decodes to the payload bytes; both together are an error. A
 * repeated member is an error. The payload is never parsed into a tree (jansson decodes
 * only the string values), so any JSON payload td_event_to_json writes reads back.
 */
char *td_event_to_json(const struct td_event *ev, size_t *len);
struct td_event *td_event_from_json(const char *text, size_t len, char *err, size_t errlen);

/*
 * Stored form, for triggerd's own storage (the durable queue): td_event_encode writes a
 * compact length-prefixed binary form (malloc'ed, length in *len; NULL when out of
 * memory), cheaper to write and to read back than JSON. td_event_decode reads that form
 * and also the JSON form (what older versions stored; told apart by the first byte);
 * the result is td_event_equal to the encoded event. A damaged or truncated input gives
 * NULL with the reason and the byte offset in err, never a read out of bounds.
 */
char *td_event_encode(const struct td_event *ev, size_t *len);
struct td_event *td_event_decode(const void *stored, size_t len, char *err, size_t errlen);

/*
 * HTTP: td_event_from_http takes a request in binary mode (ce-* headers and the body
 * as data) or in structured mode (Content-Type application/cloudevents+json); NULL with a
 * reason in err when it is neither or is invalid. td_event_http_headers emits the
 * headers of binary mode (ce-id, ce-source, ..., Content-Type) for a function call; the
 * body is td_event_data().
 *
 * In, binary mode: header names compare case-insensitively; each ce-<name> value is
 * trimmed of spaces and tabs, unquoted when it is an RFC 7230 quoted-string, then
 * percent-decoded once and must be valid UTF-8 (overlong forms such as %C0%A0 are
 * refused). A repeated ce- header, a ce-datacontenttype header or a second
 * Content-Type is an error. Content-Type becomes `datacontenttype`; an empty body means
 * no payload. Structured mode accepts an optional charset parameter only if it is
 * UTF-8. Batched mode (application/cloudevents-batch+json) is refused with an error that
 * says so: the HTTP binding allows batches only when the receiver asked for them, and a
 * webhook settles one event per request. Other structured formats are refused too.
 *
 * Out: ce-specversion, ce-id, ce-source, ce-type, then ce-subject, ce-time,
 * ce-dataschema when set, every extension as ce-<name> (canonical text), values
 * percent-encoded as the binding says (space, '"', '%' and every byte outside
 * U+0021-U+007E as %XX in upper case); then Content-Type: `datacontenttype` when set,
 * else the type the payload implies: application/json for JSON,
 * "text/plain; charset=utf-8" for TEXT, application/octet-stream for BINARY, none
 * without a payload. The strings passed to emit live only during the call.
 */
struct td_event *td_event_from_http(const struct td_http_header *headers, size_t nheaders,
				    const void *body, size_t len, char *err, size_t errlen);
void td_event_http_headers(const struct td_event *ev,
			   void (*emit)(void *arg, const char *name, const char *value), void *arg);
/* True when the headers make a CloudEvents request (ce-specversion or the content type
 * application/cloudevents..., batched included, so that the caller reports its error). */
bool td_event_http_is_cloudevent(const struct td_http_header *headers, size_t nheaders);

/*
 * The JSON form that patterns match: the attributes and extensions as members, and
 * `data` as the parsed JSON payload when it is JSON, else as a string (binary payloads
 * as their base64 text). Malloc'ed; the caller frees it.
 *
 * It has the members of td_event_to_json in the same order, except that the payload is
 * always "data" (no "data_base64") and is absent only without a payload. It is built
 * with one pass of appends into one buffer (no DOM): safe to call on the hot path, from
 * any thread. NULL when out of memory.
 */
char *td_event_match_json(const struct td_event *ev, size_t *len);

#endif
