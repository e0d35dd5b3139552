/*
 * Webhook authentication (see webhook_auth.h): bearer tokens and HMAC signatures.
 *
 * The signature is decoded from the header (hex or base64) and compared as bytes with
 * the HMAC computed here, with CRYPTO_memcmp: the lengths compared are the digest's,
 * which are public. A bearer token is compared through SHA-256 digests of both sides,
 * so that neither the position of the first difference nor the secret token's length
 * shows in the timing beyond the hashing of the request's own bytes.
 *
 * The signature is checked before the timestamp, so "stale timestamp" is only ever
 * said of a genuine request (a clock or a replay to look at), never of a forged one.
 */
#include "webhook_auth.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <triggerd/errors.h>

#include "../router/json.h"

#define MAX_STRIPE_SIGNATURES 16

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static void trim(const char **s, size_t *n)
{
	while (*n && is_ows(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n && is_ows((*s)[*n - 1]))
		(*n)--;
}

/* A header name for messages: it comes from the configuration, but cut it anyway. */
static const char *hname(const char *name)
{
	return name ? name : "(none)";
}

/* 1 with *value when the header is there once, 0 when absent, -TD_EINVAL when repeated. */
static int header_find(const struct td_http_header *headers, size_t n, const char *name,
		       const char **value, char *err, size_t errlen)
{
	int found = 0;

	*value = NULL;
	for (size_t i = 0; i < n; i++) {
		if (!headers[i].name || strcasecmp(headers[i].name, name) != 0)
			continue;
		if (found)
			return td_fail(err, errlen, "header %.80s appears more than once", name);
		*value = headers[i].value ? headers[i].value : "";
		found = 1;
	}
	return found;
}

bool td_auth_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	unsigned char da[SHA256_DIGEST_LENGTH], db[SHA256_DIGEST_LENGTH];

	SHA256(a ? a : (const void *)"", a ? alen : 0, da);
	SHA256(b ? b : (const void *)"", b ? blen : 0, db);
	return (CRYPTO_memcmp(da, db, sizeof da) == 0) & (alen == blen);
}

int td_auth_bearer(const struct td_http_header *headers, size_t nheaders, const char *token,
		   char *err, size_t errlen)
{
	const char *v, *t;
	size_t n, tn;
	int rc;

	if (!token || !*token)
		return td_fail(err, errlen, "no bearer token is configured");
	rc = header_find(headers, nheaders, "Authorization", &v, err, errlen);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return td_fail(err, errlen, "missing header Authorization");
	n = strlen(v);
	trim(&v, &n);
	t = token;
	tn = strlen(token);
	trim(&t, &tn);
	if (memchr(t, ' ', tn) || memchr(t, '\t', tn)) {
		/* "<scheme> <credentials>" configured: the whole value must match. */
		if (!td_auth_equal(v, n, t, tn))
			return td_fail(err, errlen, "wrong credentials in header Authorization");
		return 0;
	}
	if (n < 7 || strncasecmp(v, "Bearer", 6) != 0 || !is_ows(v[6]))
		return td_fail(err, errlen, "header Authorization: expected \"Bearer <token>\"");
	v += 6;
	n -= 6;
	trim(&v, &n);
	if (!td_auth_equal(v, n, t, tn))
		return td_fail(err, errlen, "wrong bearer token");
	return 0;
}

size_t td_hmac_size(enum td_hmac_algorithm algorithm)
{
	return algorithm == TD_HMAC_SHA1 ? 20 : 32;
}

/* HMAC of [ts "."] body into md (td_hmac_size bytes). 0 or -TD_ENOMEM / -TD_EINVAL. */
static int compute(enum td_hmac_algorithm alg, const void *secret, size_t secret_len,
		   const char *ts, size_t tslen, const void *body, size_t len, unsigned char *md)
{
	const EVP_MD *evp = alg == TD_HMAC_SHA1 ? EVP_sha1() : EVP_sha256();
	unsigned int mdlen = 0;
	struct td_buf msg;
	const unsigned char *p = body ? body : (const void *)"";
	size_t plen = body ? len : 0;
	int rc = 0;

	if (secret_len > INT_MAX)
		return -TD_EINVAL;
	td_buf_init(&msg);
	if (ts) {
		td_buf_reserve(&msg, tslen + 1 + plen);
		td_buf_append(&msg, ts, tslen);
		td_buf_appendc(&msg, '.');
		td_buf_append(&msg, p, plen);
		if (td_buf_failed(&msg)) {
			rc = -TD_ENOMEM;
			goto out;
		}
		p = (const unsigned char *)msg.data;
		plen = msg.len;
	}
	if (!HMAC(evp, secret ? secret : (const void *)"", (int)secret_len, p, plen, md, &mdlen) ||
	    mdlen != td_hmac_size(alg))
		rc = -TD_ENOMEM; /* OpenSSL fails only when it cannot allocate */
out:
	td_buf_free(&msg);
	return rc;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Decodes a signature of exactly want bytes. 0, or -TD_EINVAL with a message that
 * says what the text should have been (where names the header).
 */
static int decode_sig(enum td_hmac_encoding enc, const char *s, size_t n, size_t want,
		      unsigned char *out, const char *where, char *err, size_t errlen)
{
	if (enc == TD_HMAC_HEX) {
		if (n != 2 * want)
			return td_fail(
			    err, errlen,
			    "header %.80s: the signature is %zu characters, expected %zu hex "
			    "digits",
			    where, n, 2 * want);
		for (size_t i = 0; i < want; i++) {
			int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
			if (hi < 0 || lo < 0)
				return td_fail(
				    err, errlen,
				    "header %.80s: the signature is not hex (character %zu)", where,
				    2 * i + (hi < 0 ? 1 : 2));
			out[i] = (unsigned char)(hi << 4 | lo);
		}
		return 0;
	}
	struct td_buf b;
	char msg[128];
	int rc;

	td_buf_init(&b);
	rc = td_base64_decode(s, n, &b, msg, sizeof msg);
	if (rc == -TD_ENOMEM) {
		td_buf_free(&b);
		return rc;
	}
	if (rc < 0) {
		td_buf_free(&b);
		return td_fail(err, errlen, "header %.80s: the signature is not base64: %s", where,
			       msg);
	}
	if (b.len != want) {
		size_t got = b.len;
		td_buf_free(&b);
		return td_fail(err, errlen,
			       "header %.80s: the signature decodes to %zu bytes, expected %zu",
			       where, got, want);
	}
	memcpy(out, b.data, want);
	td_buf_free(&b);
	return 0;
}

/* Unix seconds as the sender wrote them: 1 to TD_HMAC_TIMESTAMP_DIGITS digits. */
static bool parse_timestamp(const char *s, size_t n, long long *t)
{
	if (n == 0 || n > TD_HMAC_TIMESTAMP_DIGITS)
		return false;
	*t = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		*t = *t * 10 + (s[i] - '0');
	}
	return true;
}

static int check_time(long long t, long long now_ms, long long tolerance_ms, char *err,
		      size_t errlen)
{
	long long diff = now_ms - t * 1000;

	if (diff > tolerance_ms)
		return td_fail(err, errlen, "stale timestamp: signed %lld s ago (tolerance %g s)",
			       diff / 1000, (double)tolerance_ms / 1000);
	if (-diff > tolerance_ms)
		return td_fail(err, errlen,
			       "timestamp %lld s in the future: check the clocks (tolerance %g s)",
			       -diff / 1000, (double)tolerance_ms / 1000);
	return 0;
}

static int verify_plain(const struct td_hmac_scheme *sc, const void *secret, size_t secret_len,
			const struct td_http_header *headers, size_t nheaders, const void *body,
			size_t len, long long now_ms, char *err, size_t errlen)
{
	unsigned char want[EVP_MAX_MD_SIZE], got[EVP_MAX_MD_SIZE];
	size_t mdlen = td_hmac_size(sc->algorithm), n, tsn = 0, pn;
	const char *v, *ts = NULL;
	long long t = 0;
	int rc;

	rc = header_find(headers, nheaders, sc->header, &v, err, errlen);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return td_fail(err, errlen, "missing header %.80s", sc->header);
	n = strlen(v);
	trim(&v, &n);
	pn = sc->prefix ? strlen(sc->prefix) : 0;
	if (pn) {
		if (n < pn || strncasecmp(v, sc->prefix, pn) != 0)
			return td_fail(err, errlen, "header %.80s: expected the prefix \"%.40s\"",
				       sc->header, sc->prefix);
		v += pn;
		n -= pn;
	}
	rc = decode_sig(sc->encoding, v, n, mdlen, got, sc->header, err, errlen);
	if (rc < 0)
		return rc;
	if (sc->timestamp_header) {
		rc = header_find(headers, nheaders, sc->timestamp_header, &ts, err, errlen);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return td_fail(err, errlen, "missing header %.80s", sc->timestamp_header);
		tsn = strlen(ts);
		trim(&ts, &tsn);
		if (!parse_timestamp(ts, tsn, &t))
			return td_fail(err, errlen, "header %.80s: not a Unix time in seconds",
				       sc->timestamp_header);
	}
	rc = compute(sc->algorithm, secret, secret_len, ts, tsn, body, len, want);
	if (rc < 0)
		return rc;
	if (CRYPTO_memcmp(want, got, mdlen) != 0)
		return td_fail(err, errlen, "bad signature in header %.80s", sc->header);
	if (ts)
		return check_time(t, now_ms, sc->tolerance_ms, err, errlen);
	return 0;
}

struct stripe_sig {
	const char *t;
	size_t tn;
	const char *v1[MAX_STRIPE_SIGNATURES];
	size_t v1n[MAX_STRIPE_SIGNATURES];
	int n;
};

/* Splits "t=...,v1=...,v0=..." (items trimmed; unknown schemes ignored). */
static int parse_stripe(const char *v, const char *header, struct stripe_sig *sig, char *err,
			size_t errlen)
{
	const char *p = v;
	int item = 0;

	memset(sig, 0, sizeof *sig);
	for (;;) {
		const char *comma = strchr(p, ','), *eq;
		size_t n = comma ? (size_t)(comma - p) : strlen(p), kn;

		item++;
		trim(&p, &n);
		eq = memchr(p, '=', n);
		if (!eq)
			return td_fail(err, errlen, "header %.80s: item %d is not key=value",
				       header, item);
		kn = (size_t)(eq - p);
		if (kn == 1 && p[0] == 't') {
			if (sig->t)
				return td_fail(err, errlen,
					       "header %.80s: more than one t=", header);
			sig->t = eq + 1;
			sig->tn = n - kn - 1;
		} else if (kn == 2 && p[0] == 'v' && p[1] == '1') {
			if (sig->n == MAX_STRIPE_SIGNATURES)
				return td_fail(err, errlen,
					       "header %.80s: more than %d v1 signatures", header,
					       MAX_STRIPE_SIGNATURES);
			sig->v1[sig->n] = eq + 1;
			sig->v1n[sig->n] = n - kn - 1;
			sig->n++;
		}
		if (!comma)
			break;
		p = comma + 1;
	}
	if (!sig->t)
		return td_fail(err, errlen, "header %.80s: no timestamp (t=)", header);
	if (sig->n == 0)
		return td_fail(err, errlen, "header %.80s: no v1 signature", header);
	return 0;
}

static int verify_stripe(const struct td_hmac_scheme *sc, const void *secret, size_t secret_len,
			 const struct td_http_header *headers, size_t nheaders, const void *body,
			 size_t len, long long now_ms, char *err, size_t errlen)
{
	unsigned char want[EVP_MAX_MD_SIZE], got[EVP_MAX_MD_SIZE];
	size_t mdlen = td_hmac_size(sc->algorithm);
	struct stripe_sig sig;
	const char *v;
	char msg[192] = "";
	long long t;
	int rc, decoded = 0, match = 0;

	rc = header_find(headers, nheaders, sc->header, &v, err, errlen);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return td_fail(err, errlen, "missing header %.80s", sc->header);
	rc = parse_stripe(v, sc->header, &sig, err, errlen);
	if (rc < 0)
		return rc;
	if (!parse_timestamp(sig.t, sig.tn, &t))
		return td_fail(err, errlen, "header %.80s: t= is not a Unix time in seconds",
			       sc->header);
	rc = compute(sc->algorithm, secret, secret_len, sig.t, sig.tn, body, len, want);
	if (rc < 0)
		return rc;
	/* Every v1 is compared (no early exit): which one matched does not show. */
	for (int i = 0; i < sig.n; i++) {
		rc = decode_sig(sc->encoding, sig.v1[i], sig.v1n[i], mdlen, got, sc->header, msg,
				sizeof msg);
		if (rc == -TD_ENOMEM)
			return rc;
		if (rc < 0)
			continue;
		decoded++;
		match |= CRYPTO_memcmp(want, got, mdlen) == 0;
	}
	if (!decoded)
		return td_fail(err, errlen, "%s", msg);
	if (!match)
		return td_fail(err, errlen, "bad signature in header %.80s", sc->header);
	return check_time(t, now_ms, sc->tolerance_ms, err, errlen);
}

int td_auth_hmac(const struct td_hmac_scheme *scheme, const void *secret, size_t secret_len,
		 const struct td_http_header *headers, size_t nheaders, const void *body,
		 size_t len, long long now_ms, char *err, size_t errlen)
{
	if (!scheme || !scheme->header || !*scheme->header)
		return td_fail(err, errlen, "no signature header is configured");
	if (!secret || secret_len == 0)
		return td_fail(err, errlen, "no HMAC secret is configured");
	if (!headers && nheaders)
		return td_fail(err, errlen, "missing header %.80s", hname(scheme->header));
	if (scheme->style == TD_HMAC_STRIPE)
		return verify_stripe(scheme, secret, secret_len, headers, nheaders, body, len,
				     now_ms, err, errlen);
	return verify_plain(scheme, secret, secret_len, headers, nheaders, body, len, now_ms, err,
			    errlen);
}

static void append_sig(struct td_buf *out, enum td_hmac_encoding enc, const unsigned char *md,
		       size_t n)
{
	static const char hex[] = "0123456789abcdef";

	if (enc == TD_HMAC_BASE64) {
		td_base64_encode(out, md, n);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		td_buf_appendc(out, hex[md[i] >> 4]);
		td_buf_appendc(out, hex[md[i] & 15]);
	}
}

int td_hmac_sign(const struct td_hmac_scheme *scheme, const void *secret, size_t secret_len,
		 const void *body, size_t len, long long timestamp, struct td_buf *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	char ts[32];
	bool stamped = scheme->style == TD_HMAC_STRIPE || scheme->timestamp_header;
	int tsn = 0, rc;

	if (stamped) {
		if (timestamp < 0)
			return -TD_EINVAL;
		tsn = snprintf(ts, sizeof ts, "%lld", timestamp);
	}
	rc = compute(scheme->algorithm, secret, secret_len, stamped ? ts : NULL, (size_t)tsn, body,
		     len, md);
	if (rc < 0)
		return rc;
	if (scheme->style == TD_HMAC_STRIPE)
		td_buf_printf(out, "t=%s,v1=", ts);
	else if (scheme->prefix)
		td_buf_appends(out, scheme->prefix);
	append_sig(out, scheme->encoding, md, td_hmac_size(scheme->algorithm));
	return td_buf_failed(out) ? -TD_ENOMEM : 0;
}
