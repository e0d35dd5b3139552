/*
 * libFuzzer target for the parsing of authentication headers (connectors/webhook_auth.c):
 * the signature header of every scheme (plain with or without prefix and timestamp
 * header, Stripe's t=,v1=), in hex and base64, SHA-256 and SHA-1, and the bearer
 * Authorization header.
 *
 * Input: the first byte picks the scheme; the rest is split at the first two '\n' into
 * the signature header's value, the timestamp header's value and the body (missing
 * parts are absent headers / an empty body).
 *
 * Oracles: a refusal always has a message that never shows the expected signature; a
 * fuzzed header is accepted only when it carries the right signature (checked against
 * td_hmac_sign's own, which must always be accepted for the same body and time); a
 * bearer header is accepted only when it is the token.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <triggerd/errors.h>

#include "../../connectors/webhook_auth.h"
#include "../../router/json.h"

#define CHECK(cond, what)                                                                          \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_hmac_header: %s\n", what);                           \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define SECRET "fuzz-secret"
#define NOW_MS 1700000000000LL

static char *part(const char **p, const char *end)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	const char *stop = nl ? nl : end;
	char *s = strndup(*p, (size_t)(stop - *p));

	CHECK(s, "out of memory");
	*p = nl ? nl + 1 : end;
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const prefixes[] = {NULL, "sha256=", "v1="};
	const char *p = (const char *)data + 1, *end = (const char *)data + size;
	struct td_http_header h[3];
	struct td_hmac_scheme sc;
	struct td_buf own;
	char err[256], *sig, *ts, *auth_value;
	const char *body;
	size_t body_len, nh = 0;
	unsigned sel;
	int rc;

	if (size == 0)
		return 0;
	sel = data[0];
	sig = part(&p, end);
	ts = part(&p, end);
	body = p;
	body_len = (size_t)(end - p);
	sc = (struct td_hmac_scheme){
	    .style = sel & 1 ? TD_HMAC_STRIPE : TD_HMAC_PLAIN,
	    .algorithm = sel & 2 ? TD_HMAC_SHA1 : TD_HMAC_SHA256,
	    .encoding = sel & 4 ? TD_HMAC_BASE64 : TD_HMAC_HEX,
	    .header = "X-Sig",
	    .prefix = prefixes[(sel >> 3) % 3],
	    .timestamp_header = sel & 0x20 ? "X-Ts" : NULL,
	    .tolerance_ms = 300000,
	};
	if (!(sel & 0x40))
		h[nh++] = (struct td_http_header){"x-sig", sig};
	if (!(sel & 0x80))
		h[nh++] = (struct td_http_header){"X-TS", ts};

	/* The sender's own signature for this body is accepted. */
	td_buf_init(&own);
	CHECK(td_hmac_sign(&sc, SECRET, strlen(SECRET), body, body_len, NOW_MS / 1000, &own) == 0,
	      "sign failed");
	{
		char stamp[32];
		struct td_http_header mine[2] = {{"X-Sig", own.data}, {"X-Ts", stamp}};
		snprintf(stamp, sizeof stamp, "%lld", NOW_MS / 1000);
		rc = td_auth_hmac(&sc, SECRET, strlen(SECRET), mine, 2, body, body_len, NOW_MS, err,
				  sizeof err);
		CHECK(rc == 0, "the sender's own signature is refused");
	}

	/* The fuzzed headers: accepted only with the right signature. */
	err[0] = '\0';
	rc = td_auth_hmac(&sc, SECRET, strlen(SECRET), h, nh, body, body_len, NOW_MS, err,
			  sizeof err);
	if (rc < 0) {
		CHECK(rc == -TD_EINVAL, "unexpected error code");
		CHECK(err[0], "refused without a message");
		if (sc.style == TD_HMAC_PLAIN) {
			const char *bare = own.data + (sc.prefix ? strlen(sc.prefix) : 0);
			CHECK(!strstr(err, bare), "the message shows the expected signature");
		}
	} else {
		CHECK(!(sel & 0x40), "accepted without a signature header");
		/* A forged acceptance would need the secret: the signature must be the one we
		 * compute (up to letter case in hex, whitespace and the prefix's case). */
		if (sc.style == TD_HMAC_PLAIN && sc.encoding == TD_HMAC_HEX &&
		    !sc.timestamp_header) {
			const char *bare = own.data + (sc.prefix ? strlen(sc.prefix) : 0);
			CHECK(strcasestr(sig, bare),
			      "accepted a signature that is not the right one");
		}
	}
	td_buf_free(&own);

	/* The same bytes as an Authorization header. */
	auth_value = sig;
	h[0] = (struct td_http_header){"Authorization", auth_value};
	err[0] = '\0';
	rc = td_auth_bearer(h, 1, "t0ken", err, sizeof err);
	if (rc == 0)
		CHECK(strstr(auth_value, "t0ken"), "accepted a bearer header without the token");
	else
		CHECK(err[0] && !strstr(err, "t0ken"), "bad bearer refusal message");
	rc = td_auth_bearer(h, 1, "Basic dTpw", err, sizeof err);
	if (rc == 0)
		CHECK(strstr(auth_value, "Basic dTpw"), "accepted other credentials");

	free(sig);
	free(ts);
	return 0;
}
