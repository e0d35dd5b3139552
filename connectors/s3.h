/*
 * S3 event notifications as CloudEvents: one event per record, for the bodies AWS S3
 * sends ({"Records": [...]}, eventSource "aws:s3", eventName "ObjectCreated:Put") and
 * the ones MinIO's webhook target sends ({"EventName": "s3:ObjectCreated:Put",
 * "Key": "bucket/key", "Records": [...]}, eventSource "minio:s3", the "s3:" prefix kept
 * in eventName, keys escaped by Go's url.QueryEscape).
 *
 * Each record becomes (the CloudEvents AWS S3 adapter's mapping, with DESIGN.md's
 * subject and id):
 *   type             "com.amazonaws.s3." + eventName without an "s3:" prefix
 *                    (com.amazonaws.s3.ObjectCreated:Put)
 *   source           eventSource "." awsRegion "." bucket name ("aws:s3.us-east-1.bkt",
 *                    "minio:s3..bkt" when MinIO leaves the region empty)
 *   subject          s3.object.key URL-decoded ("+" is a space, %XX a byte; the result
 *                    must be UTF-8). Characters a CloudEvents String cannot hold (control
 *                    characters, noncharacters), which S3 allows in keys, stay %XX-encoded.
 *   id               responseElements.x-amz-request-id "." s3.object.sequencer (unique per
 *                    object even when one request, such as DeleteObjects, touched several;
 *                    the same on redelivery); without both, "s3-" and 32 hex digits of the
 *                    SHA-256 of the record's bytes (the same on redelivery too)
 *   time             eventTime (RFC 3339), when present
 *   s3bucket         the bucket name (extension)
 *   datacontenttype  application/json; data: the record's JSON text as it came
 *
 * A body without records (AWS's "s3:TestEvent", an empty "Records" array) gives no
 * event. Anything else malformed is refused with what and where:
 * "Records[2].s3.object.key: missing".
 *
 * Pure functions, any thread. Ownership: the events returned belong to the caller.
 */
#ifndef TRIGGERD_S3_H
#define TRIGGERD_S3_H

#include <stddef.h>

struct td_event;
struct td_buf;

/* The most records one body may carry (a notification from S3 holds one). */
#define TD_S3_MAX_RECORDS 10000

/*
 * Parses a notification body into events. Returns the number of events (0 or more)
 * and sets *events to a malloc'ed array of them (NULL when there are none): the caller
 * unrefs each event and frees the array (td_s3_events_free does both). On error
 * returns -TD_EINVAL with the reason in err (may be NULL) or -TD_ENOMEM, and *events
 * is NULL.
 */
int td_s3_parse(const char *body, size_t len, struct td_event ***events, char *err, size_t errlen);
void td_s3_events_free(struct td_event **events, int n);

/*
 * Decodes an object key as S3 and MinIO encode it ("+" for a space, %XX for a byte)
 * and appends it to out, keeping as %XX (upper case) the bytes of every character a
 * CloudEvents String cannot hold. 0, -TD_EINVAL with the reason in err (a bad escape,
 * not UTF-8 once decoded, an empty key), or -TD_ENOMEM.
 */
int td_s3_key_decode(const char *key, size_t len, struct td_buf *out, char *err, size_t errlen);

#endif
