/*
 * The AWS shapes of events (a function's event_format "aws"), and the function-URL
 * response mapping for sync webhooks. The process and lambda function kinds call these;
 * router/aws_event.c implements them, connectors/webhook.c fills in what the
 * function-URL request event needs.
 *
 * Which shape an event gets is decided by its `type` and `source` attributes, as the
 * connectors set them (DESIGN.md's envelope table):
 *
 *   triggerd.cron.tick, source triggerd/cron/NAME
 *       EventBridge "Scheduled Event": {"version": "0", "id": the event id,
 *       "detail-type": "Scheduled Event", "source": "aws.events", "account", "time",
 *       "region", "resources": ["arn:aws:events:REGION:ACCOUNT:rule/NAME"], "detail": the
 *       tick's JSON payload, or {} without one}.
 *   com.amazonaws.s3.*, source aws:s3.* or minio:s3.* (connectors/s3.h, one record per
 *       event)
 *       {"Records": [the record]}. An AWS record is passed as its exact bytes. A MinIO
 *       record is normalised to AWS's record shape: eventSource "aws:s3", eventName
 *       without the "s3:" prefix, an empty awsRegion set to TD_AWS_REGION, MinIO's own
 *       "source" member removed; every other member is kept in its order.
 *   triggerd.webhook.request, source triggerd/webhook/NAME, with the httpmethod extension
 *   (a webhook source in format raw)
 *       The Lambda function URL request event, payload format 2.0: {"version": "2.0",
 *       "routeKey": "$default", "rawPath", "rawQueryString", "cookies" (when there
 *       are), "headers", "queryStringParameters" (when there is a query),
 *       "requestContext": {"accountId": "anonymous", "apiId", "domainName",
 *       "domainPrefix", "http": {"method", "path", "protocol": "HTTP/1.1", "sourceIp",
 *       "userAgent"}, "requestId", "routeKey": "$default", "stage": "$default", "time"
 *       ("27/Nov/2026:06:00:00 +0000"), "timeEpoch" (ms)}, "body" (absent without a
 *       body), "isBase64Encoded"}. The body is text when the content type is textual
 *       (text/ *, JSON, XML, JavaScript) and the bytes are UTF-8, else base64 with
 *       isBase64Encoded true. Headers come from the extension TD_AWS_EXT_HEADERS (below);
 *       the Cookie header moves to "cookies" (split at ";"). Query parameters are
 *       percent-decoded ("+" is a space), repeated names joined with "," (the first 10000
 *       parameters; rawQueryString keeps them all). domainName is
 *       the Host header, apiId and domainPrefix its first label.
 *   triggerd.invoke, source triggerd/invoke-api (router/invoke_api.h)
 *       The payload unchanged (the event's data bytes; {} without data).
 *   triggerd.kafka.record / triggerd.kafka.batch (connectors/kafka_event.h)
 *       Lambda's self-managed Kafka event, made by td_kafka_aws_json (bootstrapServers
 *       from the extension kafkabootstrap when an event has it, else ""). An event whose
 *       Kafka attributes are malformed falls back to the EventBridge shape below.
 *   anything else (MQTT, Redis Streams, a CloudEvent posted to a webhook in format
 *   cloudevents, an S3 event from another source)
 *       An EventBridge event: {"version": "0", "id", "detail-type": the type, "source":
 *       the source, "account", "time", "region", "resources": [], "detail": the payload
 *       (JSON as is; text as a JSON string; binary as a base64 string; {} without one),
 *       "cloudevents": {"subject", "datacontenttype", "dataschema" when set, then every
 *       extension with its type (Integer and Boolean as JSON numbers and booleans)}}.
 *       The "cloudevents" member is triggerd's own: EventBridge has no place for the
 *       subject and extensions (the MQTT topic, the Redis entry id) a handler needs.
 *
 * "time" in the EventBridge shapes is the event's time in UTC without fractions
 * ("2026-11-27T06:00:00Z"), the current time when the event has none. "account" is
 * TD_AWS_ACCOUNT and "region" TD_AWS_REGION: triggerd has no region option.
 *
 * Threads: every function is reentrant and only reads the event. Ownership: written at
 * each function.
 */
#ifndef TRIGGERD_AWS_EVENT_H
#define TRIGGERD_AWS_EVENT_H

#include <stddef.h>

#include <triggerd/event.h>

struct td_result;

#define TD_AWS_REGION  "us-east-1"
#define TD_AWS_ACCOUNT "000000000000"

/*
 * The extensions a webhook source in format raw adds to its events (besides httpmethod)
 * for the function-URL request event:
 *   httpheaders   the request headers as JSON object text, {"name": "value"}: names in
 *                 lower case, in order of first appearance, the values of a repeated
 *                 name joined with ","; the header that authenticated the request
 *                 (Authorization for auth bearer, the signature header for auth hmac)
 *                 has the value TD_AWS_REDACTED. Only ASCII (other characters are \u
 *                 escapes; bytes that are not UTF-8 read as Latin-1).
 *   httpquery     the raw query string (after '?'), when the URL has one; bytes a
 *                 CloudEvents String cannot hold are %XX-encoded.
 *   httpsourceip  the client's address without its port ("127.0.0.1", "::1").
 */
#define TD_AWS_EXT_HEADERS  "httpheaders"
#define TD_AWS_EXT_QUERY    "httpquery"
#define TD_AWS_EXT_SOURCEIP "httpsourceip"
#define TD_AWS_REDACTED	    "[redacted]"

/* The payload a function with event_format "aws" receives for ev: malloc'ed JSON text
 * (NUL-terminated; the caller frees it), its length in *len (len may be NULL); NULL on
 * out of memory. Never fails on a valid event. */
char *td_event_aws_payload(const struct td_event *ev, size_t *len);

/*
 * A sync invocation of an aws-format function whose event came from a webhook (raw
 * format): rewrites a TD_RESULT_OK res as a Lambda function URL would answer:
 *   - a JSON object with a "statusCode" member is a response object: statusCode (an
 *     integer 100..599) becomes http_status; "headers" (an object of string, number or
 *     boolean values) become res->headers, but Content-Type, which becomes
 *     res->content_type (default application/json), and Content-Length,
 *     Transfer-Encoding and Connection, which the server sets; each string of "cookies"
 *     becomes a Set-Cookie header; "body" (a string, absent: empty) is the body,
 *     base64-decoded when "isBase64Encoded" is true;
 *   - any other JSON result becomes 200 application/json with the result as the body;
 *   - a result that is not JSON keeps its body and content type, with status 200.
 * A malformed response object (statusCode not an integer 100..599, headers not an
 * object, a header name that is no HTTP token or a value with a control character, body
 * not a string, isBase64Encoded not a boolean, bad base64, cookies not an array of
 * strings) makes res a TD_RESULT_ERROR (http_status 502) whose error and JSON body
 * {"errorMessage": ..., "errorType": "InvalidResponse"} name the field. Results of
 * other events, and results that are not TD_RESULT_OK, are left unchanged. NULL res is
 * ignored. On out of memory res becomes a TD_RESULT_RETRY with error "out of memory".
 * Ownership: res keeps owning everything it holds; replaced parts are freed.
 */
void td_aws_result_to_http(const struct td_event *ev, struct td_result *res);

/* True when ev is the event of a webhook source in format raw (the events
 * td_aws_result_to_http rewrites results of). */
bool td_event_is_webhook_request(const struct td_event *ev);

/*
 * The value of the httpheaders extension for n request headers (see above); the
 * headers named in redact (case-insensitively; nredact of them, NULL entries skipped)
 * get TD_AWS_REDACTED. Malloc'ed NUL-terminated text (the caller frees it), NULL on out
 * of memory.
 */
char *td_aws_headers_json(const struct td_http_header *headers, size_t n, const char *const *redact,
			  size_t nredact);

#endif
