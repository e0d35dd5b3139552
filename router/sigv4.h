/*
 * AWS Signature Version 4 (AWS4-HMAC-SHA256) for the Lambda Invoke API: verification of
 * signed requests on the admin listener (admin.credentials) and signing of requests by
 * the lambda function kind where libcurl's own signer (CURLOPT_AWS_SIGV4) signs
 * differently from AWS.
 *
 * The canonical request is built as AWS documents it for every service but S3:
 *
 *   METHOD \n CANONICAL_URI \n CANONICAL_QUERY \n CANONICAL_HEADERS \n SIGNED_HEADERS \n
 *   PAYLOAD_HASH
 *
 * CANONICAL_URI is the path as it went on the wire (already percent-encoded once), its
 * dot segments and empty segments removed, then URI-encoded again (every byte but
 * A-Z a-z 0-9 - _ . ~ and '/'): an ARN's ':' travels as %3A and is signed as %253A, as
 * botocore (auth.py, SigV4Auth._normalize_url_path) and the AWS SDK for JavaScript do.
 * libcurl 7.88's CURLOPT_AWS_SIGV4 signs the path as sent, without the second encoding
 * (measured here), so it agrees with AWS only for paths without any '%'.
 * CANONICAL_QUERY: the parameters percent-decoded, URI-encoded again, sorted by name
 * and then value, joined with '&'. CANONICAL_HEADERS: for each name of SignedHeaders,
 * "name:value\n" with every received value of that name trimmed, runs of spaces
 * collapsed, joined with ','. PAYLOAD_HASH: the X-Amz-Content-SHA256 header when
 * present (it must then be the body's SHA-256), else the hex SHA-256 of the body.
 *
 * Threads: every function is reentrant and works only on what it is given.
 * Ownership: nothing given is kept; results go to the caller's buffers.
 */
#ifndef TRIGGERD_SIGV4_H
#define TRIGGERD_SIGV4_H

#include <stdbool.h>
#include <stddef.h>

#include <triggerd/config.h> /* struct td_map */
#include <triggerd/event.h>  /* struct td_http_header */

#include "json.h" /* struct td_buf */

#define TD_SIGV4_ALGORITHM	     "AWS4-HMAC-SHA256"
#define TD_SIGV4_MAX_SKEW_MS	     (5LL * 60 * 1000) /* X-Amz-Date at most 5 min off */
#define TD_SIGV4_KEY_ID_MAX	     128
#define TD_SIGV4_SCOPE_PART_MAX	     63
#define TD_SIGV4_SIGNED_HEADERS_MAX  1024
#define TD_SIGV4_SIGNED_HEADERS_MAXN 64 /* names in SignedHeaders */

/* A request as the signer and the verifier see it. path is the raw path as it goes on
 * the wire (percent-encoded, without the query); query the raw text after '?' (NULL or
 * "": none); headers as sent, repeated names included. */
struct td_sigv4_request {
	const char *method;
	const char *path;
	const char *query;
	const struct td_http_header *headers;
	size_t nheaders;
	const void *body;
	size_t body_len;
};

/* The parts of an Authorization header. */
struct td_sigv4_auth {
	char access_key[TD_SIGV4_KEY_ID_MAX + 1];
	char date[9]; /* YYYYMMDD */
	char region[TD_SIGV4_SCOPE_PART_MAX + 1];
	char service[TD_SIGV4_SCOPE_PART_MAX + 1];
	char signed_headers[TD_SIGV4_SIGNED_HEADERS_MAX + 1]; /* "host;x-amz-date" */
	char signature[65];				      /* 64 lower-case hex digits */
};

/*
 * Parses value[0..len): "AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/
 * aws4_request, SignedHeaders=a;b, Signature=HEX" (the three parts in any order, each
 * once, separated by ',' and optional spaces). SignedHeaders must be lower-case names
 * in ascending order that include "host". 0, or -TD_EINVAL with what is wrong and at
 * which byte in err.
 */
int td_sigv4_parse_authorization(const char *value, size_t len, struct td_sigv4_auth *out,
				 char *err, size_t errlen);

/* Parses an X-Amz-Date "YYYYMMDDTHHMMSSZ" into milliseconds since the epoch. 0 or
 * -TD_EINVAL with the reason in err. */
int td_sigv4_parse_date(const char *s, long long *epoch_ms, char *err, size_t errlen);
/* Formats epoch_ms as "YYYYMMDDTHHMMSSZ" into out[17]. */
void td_sigv4_format_date(long long epoch_ms, char out[17]);

/* Appends s[0..len) URI-encoded: every byte but A-Z a-z 0-9 - _ . ~ (and '/' when
 * keep_slash) as %XX with upper-case hex. 0 or -TD_ENOMEM. */
int td_sigv4_uri_encode(const char *s, size_t len, bool keep_slash, struct td_buf *out);
/* Appends the canonical URI of a raw path (see the top of this file). 0 or -TD_ENOMEM. */
int td_sigv4_canonical_uri(const char *raw_path, struct td_buf *out);
/* Appends the canonical query string of a raw query (NULL: none). 0, -TD_ENOMEM, or
 * -TD_EINVAL for a malformed %-escape (err says where). */
int td_sigv4_canonical_query(const char *query, struct td_buf *out, char *err, size_t errlen);
/*
 * Appends the canonical request of req for signed_headers ("host;x-amz-date"). 0,
 * -TD_ENOMEM, or -TD_EINVAL with err: a malformed query, a signed header that the
 * request lacks, an X-Amz-Content-SHA256 that is not the body's hash.
 */
int td_sigv4_canonical_request(const struct td_sigv4_request *req, const char *signed_headers,
			       struct td_buf *out, char *err, size_t errlen);
/* The signature (64 lower-case hex digits and a NUL into sig) of a canonical request
 * for secret, X-Amz-Date amz_date and the scope DATE/region/service/aws4_request where
 * DATE is amz_date's first 8 characters. 0 or -TD_ENOMEM. */
int td_sigv4_signature(const char *canonical, size_t len, const char *secret, const char *amz_date,
		       const char *region, const char *service, char sig[65]);

/* What signs a request. session_token may be NULL. */
struct td_sigv4_signer {
	const char *access_key;
	const char *secret;
	const char *region;
	const char *service;
};

/*
 * The Authorization header value for req signed at amz_date ("YYYYMMDDTHHMMSSZ", which
 * req must carry as X-Amz-Date) over every header req has (their names lower-cased and
 * sorted; a name given twice is signed once with both values). Appends it to out. 0,
 * -TD_ENOMEM, or -TD_EINVAL with err.
 */
int td_sigv4_authorization(const struct td_sigv4_request *req, const char *amz_date,
			   const struct td_sigv4_signer *signer, struct td_buf *out, char *err,
			   size_t errlen);

/* Why a request was refused: its HTTP status, AWS error type (x-amzn-ErrorType) and
 * message, in AWS's words where AWS has them. */
struct td_sigv4_verdict {
	int status;	  /* 400 or 403; 0 when verified */
	const char *type; /* "InvalidSignatureException", ...; static */
	char message[512];
	char access_key[TD_SIGV4_KEY_ID_MAX + 1]; /* the key id that signed, when verified */
};

/*
 * Verifies a request against credentials (access key id -> secret access key) at now_ms
 * (wall clock, ms since the epoch). Returns 0 when the signature is right and fresh;
 * -TD_EINVAL with the verdict filled: 403 MissingAuthenticationTokenException (no
 * Authorization header, or not SigV4), 400 IncompleteSignatureException (a malformed
 * Authorization header, no or a malformed X-Amz-Date, a scope date that is not
 * X-Amz-Date's, a missing signed header), 403 UnrecognizedClientException (an unknown
 * access key id), 403 InvalidSignatureException (a service other than lambda, X-Amz-Date
 * more than TD_SIGV4_MAX_SKEW_MS off: "Signature expired" / "Signature not yet
 * current", a wrong signature); -TD_ENOMEM (verdict: 500 ServiceException). The
 * signatures are compared in constant time.
 */
int td_sigv4_verify(const struct td_sigv4_request *req, const struct td_map *credentials,
		    long long now_ms, struct td_sigv4_verdict *verdict);

#endif
