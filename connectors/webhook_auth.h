/*
 * Authentication of webhook requests: a bearer token in Authorization, or an HMAC
 * signature of the body in a header, in the shapes that services sign with:
 *
 *   plain   HEADER: [PREFIX]SIGNATURE, SIGNATURE = hex or base64 of HMAC(secret, BODY)
 *           (GitHub: X-Hub-Signature-256: sha256=<hex>); with a timestamp header the
 *           signed message is "TIMESTAMP.BODY" and TIMESTAMP (Unix seconds) must be
 *           within the tolerance of the clock (replay protection).
 *   stripe  Stripe-Signature: t=TIMESTAMP,v1=SIGNATURE[,v1=...][,v0=...] with the
 *           signed message "TIMESTAMP.BODY"; any v1 may match (secret rotation), other
 *           schemes are ignored, the timestamp must be within the tolerance.
 *
 * Every comparison of a secret with what the request carries takes the same time
 * whatever the bytes (CRYPTO_memcmp). Failures return -TD_EINVAL with a reason for the
 * 401 body that names what failed (missing header, malformed header, bad signature,
 * stale timestamp) and never echoes a secret or the expected signature.
 *
 * Pure functions: nothing here keeps state, reads the clock or allocates beyond the
 * call; any thread. Header names compare case-insensitively; a header the check needs
 * that appears more than once is refused.
 */
#ifndef TRIGGERD_WEBHOOK_AUTH_H
#define TRIGGERD_WEBHOOK_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include <triggerd/event.h> /* struct td_http_header */

struct td_buf;

enum td_hmac_algorithm { TD_HMAC_SHA256, TD_HMAC_SHA1 };
enum td_hmac_encoding { TD_HMAC_HEX, TD_HMAC_BASE64 };
enum td_hmac_style {
	TD_HMAC_PLAIN,	/* [prefix]signature, optional timestamp header */
	TD_HMAC_STRIPE, /* t=...,v1=... */
};

/* How a sender signs. The strings are not owned (they outlive the calls). */
struct td_hmac_scheme {
	enum td_hmac_style style;
	enum td_hmac_algorithm algorithm;
	enum td_hmac_encoding encoding; /* of the signature (stripe: hex) */
	const char *header;		/* the header with the signature (required) */
	const char *prefix;		/* plain: text before the signature, or NULL */
	const char *timestamp_header;	/* plain: header with the signed Unix time, or NULL */
	long long tolerance_ms;		/* largest |clock - timestamp| */
};

/* The longest timestamp accepted, in decimal digits (Unix seconds). */
#define TD_HMAC_TIMESTAMP_DIGITS 12

/*
 * True when a[0..alen) equals b[0..blen). The time it takes depends on the lengths
 * only, never on where the bytes differ (both sides are hashed with SHA-256 and the
 * digests compared with CRYPTO_memcmp), so a token of another length learns nothing
 * either.
 */
bool td_auth_equal(const void *a, size_t alen, const void *b, size_t blen);

/*
 * Checks "Authorization: Bearer <token>" (scheme case-insensitive, spaces around
 * trimmed). A token holding a space ("Basic dXNlcjpw") is compared with the whole
 * header value instead, as MinIO sends such an auth_token as it is. 0, or -TD_EINVAL
 * with the reason in err (may be NULL).
 */
int td_auth_bearer(const struct td_http_header *headers, size_t nheaders, const char *token,
		   char *err, size_t errlen);

/*
 * Checks the HMAC signature of body under scheme with secret (secret_len bytes).
 * now_ms is the wall clock (Unix ms) for the timestamp check. 0, or -TD_EINVAL with
 * the reason in err (may be NULL), or -TD_ENOMEM.
 */
int td_auth_hmac(const struct td_hmac_scheme *scheme, const void *secret, size_t secret_len,
		 const struct td_http_header *headers, size_t nheaders, const void *body,
		 size_t len, long long now_ms, char *err, size_t errlen);

/*
 * Appends to out the value of scheme->header that signs body as the sender would:
 * "[prefix]<signature>" for plain (with timestamp, signing "TIMESTAMP.BODY", when
 * scheme->timestamp_header is set: the caller sends that header with the same
 * timestamp), "t=<timestamp>,v1=<signature>" for stripe. For tests, tools and clients.
 * 0, -TD_EINVAL (a negative timestamp) or -TD_ENOMEM.
 */
int td_hmac_sign(const struct td_hmac_scheme *scheme, const void *secret, size_t secret_len,
		 const void *body, size_t len, long long timestamp, struct td_buf *out);

/* The digest length of an algorithm in bytes (32 for SHA-256, 20 for SHA-1). */
size_t td_hmac_size(enum td_hmac_algorithm algorithm);

#endif
