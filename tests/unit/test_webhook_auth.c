/*
 * Unit tests for connectors/webhook_auth.c: the constant-time comparison, bearer tokens
 * (MinIO's auth_token included, with the headers of the shared MinIO sample), HMAC
 * signatures with known vectors (GitHub's documented example, Stripe-style t=,v1=
 * computed independently), each preset's shape, every failure with the words of its
 * message, and a sign/verify round trip over every scheme combination.
 */
#include <criterion/criterion.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <triggerd/errors.h>

#include "../../connectors/webhook_auth.h"
#include "../../router/json.h"

#define NOW_MS 1700000100000LL /* 100 s after the timestamps of the vectors */

/* ---- td_auth_equal ---- */

struct eq_case {
	const char *a, *b;
	size_t alen, blen;
	bool equal;
};

Test(webhook_auth, equal_compares_bytes_and_lengths)
{
	static const struct eq_case cases[] = {
	    {"secret", "secret", 6, 6, true},
	    {"", "", 0, 0, true},
	    {"secret", "Secret", 6, 6, false}, /* first byte */
	    {"secret", "secreT", 6, 6, false}, /* last byte */
	    {"secret", "secret2", 6, 7, false},
	    {"secret2", "secret", 7, 6, false},
	    {"secret", "", 6, 0, false},
	    {"a\0b", "a\0c", 3, 3, false}, /* bytes after a NUL count */
	    {"a\0b", "a\0b", 3, 3, true},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		cr_expect_eq(td_auth_equal(cases[i].a, cases[i].alen, cases[i].b, cases[i].blen),
			     cases[i].equal, "case %zu", i);
	cr_expect(td_auth_equal(NULL, 0, "", 0), "NULL is the empty string");
}

/* ---- bearer ---- */

struct bearer_case {
	const char *token;
	struct td_http_header h[2];
	size_t n;
	const char *words; /* NULL: accepted */
};

Test(webhook_auth, bearer)
{
	static const struct bearer_case cases[] = {
	    {"tok", {{"Authorization", "Bearer tok"}}, 1, NULL},
	    {"tok", {{"authorization", "bearer tok"}}, 1, NULL},
	    {"tok", {{"AUTHORIZATION", " BEARER \t tok  "}}, 1, NULL},
	    {"tok", {{"X-Other", "Bearer tok"}}, 1, "missing header Authorization"},
	    {"tok", {{0}}, 0, "missing header Authorization"},
	    {"tok", {{"Authorization", "Basic tok"}}, 1, "expected \"Bearer <token>\""},
	    {"tok", {{"Authorization", "Bearer"}}, 1, "expected \"Bearer <token>\""},
	    {"tok", {{"Authorization", "Bearertok"}}, 1, "expected \"Bearer <token>\""},
	    {"tok", {{"Authorization", "tok"}}, 1, "expected \"Bearer <token>\""},
	    {"tok", {{"Authorization", "Bearer tok2"}}, 1, "wrong bearer token"},
	    {"tok", {{"Authorization", "Bearer to"}}, 1, "wrong bearer token"},
	    {"tok", {{"Authorization", "Bearer TOK"}}, 1, "wrong bearer token"},
	    {"tok",
	     {{"Authorization", "Bearer tok"}, {"Authorization", "Bearer tok"}},
	     2,
	     "appears more than once"},
	    /* MinIO sends a two-word auth_token as the whole header. */
	    {"Basic dXNlcjpwdw==", {{"Authorization", "Basic dXNlcjpwdw=="}}, 1, NULL},
	    {"Basic dXNlcjpwdw==",
	     {{"Authorization", "Bearer Basic dXNlcjpwdw=="}},
	     1,
	     "wrong credentials in header Authorization"},
	    {"Basic dXNlcjpwdw==",
	     {{"Authorization", "Basic dXNlcjpwdx=="}},
	     1,
	     "wrong credentials in header Authorization"},
	    {"", {{"Authorization", "Bearer "}}, 1, "no bearer token is configured"},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct bearer_case *c = &cases[i];
		char err[256] = "";
		int rc = td_auth_bearer(c->h, c->n, c->token, err, sizeof err);

		if (!c->words) {
			cr_expect_eq(rc, 0, "case %zu refused: %s", i, err);
			continue;
		}
		cr_expect_eq(rc, -TD_EINVAL, "case %zu accepted", i);
		cr_expect(strstr(err, c->words), "case %zu: \"%s\" lacks \"%s\"", i, err, c->words);
		cr_expect(!strstr(err, "tok2") && !strstr(err, "dXNlcjpw"),
			  "case %zu: the message shows a token: %s", i, err);
	}
}

/* The MinIO sample's headers carry its auth_token as MinIO sends it. */
Test(webhook_auth, minio_sample_headers)
{
	const char *dir = getenv("TD_SAMPLES");
	char path[1024], err[256] = "";
	struct td_http_header h[32];
	json_error_t jerr;
	json_t *line, *headers, *v;
	const char *name;
	size_t n = 0;
	FILE *f;

	snprintf(path, sizeof path, "%s/events/minio-style.jsonl",
		 dir && *dir ? dir : "../shared/samples");
	f = fopen(path, "r");
	cr_assert_not_null(f, "cannot open %s (set TD_SAMPLES to the samples folder)", path);
	line = json_loadf(f, JSON_DISABLE_EOF_CHECK, &jerr);
	fclose(f);
	cr_assert_not_null(line, "%s: %s", path, jerr.text);
	headers = json_object_get(line, "headers");
	cr_assert(json_is_object(headers));
	json_object_foreach(headers, name, v)
	{
		cr_assert_lt(n, 32);
		h[n].name = name;
		h[n].value = json_string_value(v);
		n++;
	}
	cr_expect_eq(td_auth_bearer(h, n, "secret-token", err, sizeof err), 0, "%s", err);
	cr_expect_eq(td_auth_bearer(h, n, "other-token", err, sizeof err), -TD_EINVAL);
	json_decref(line);
}

/* ---- HMAC ---- */

static const struct td_hmac_scheme github = {
    .style = TD_HMAC_PLAIN,
    .algorithm = TD_HMAC_SHA256,
    .encoding = TD_HMAC_HEX,
    .header = "X-Hub-Signature-256",
    .prefix = "sha256=",
    .tolerance_ms = 300000,
};

static const struct td_hmac_scheme stripe = {
    .style = TD_HMAC_STRIPE,
    .algorithm = TD_HMAC_SHA256,
    .encoding = TD_HMAC_HEX,
    .header = "Stripe-Signature",
    .tolerance_ms = 300000,
};

static const struct td_hmac_scheme stamped_sha1_b64 = {
    .style = TD_HMAC_PLAIN,
    .algorithm = TD_HMAC_SHA1,
    .encoding = TD_HMAC_BASE64,
    .header = "X-Signature",
    .timestamp_header = "X-Timestamp",
    .tolerance_ms = 300000,
};

static const struct td_hmac_scheme plain_sha1_hex = {
    .style = TD_HMAC_PLAIN,
    .algorithm = TD_HMAC_SHA1,
    .encoding = TD_HMAC_HEX,
    .header = "X-Signature",
    .tolerance_ms = 300000,
};

static const struct td_hmac_scheme plain_sha256_b64 = {
    .style = TD_HMAC_PLAIN,
    .algorithm = TD_HMAC_SHA256,
    .encoding = TD_HMAC_BASE64,
    .header = "X-Signature",
    .tolerance_ms = 300000,
};

#define GH_SECRET  "It's a Secret to Everybody"
#define GH_BODY	   "Hello, World!"
#define GH_SIG	   "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
#define ST_SECRET  "whsec_test_secret"
#define ST_BODY	   "{\"id\":\"evt_1\",\"type\":\"payment_intent.succeeded\"}"
#define ST_SIG	   "22d8dc182f5c588077683bd378368e29765bfe5df2560112b4f28fef120f0e31"
#define ST_OTHER   "0000000000000000000000000000000000000000000000000000000000000000"
#define KEY_SECRET "key"

struct hmac_case {
	const struct td_hmac_scheme *scheme;
	const char *secret;
	const char *body;
	struct td_http_header h[3];
	size_t n;
	long long now_ms;
	const char *words; /* NULL: accepted */
};

/* Each preset's shape and each way to fail. Vectors computed with Python's hmac. */
static const struct hmac_case hmac_cases[] = {
    /* GitHub's documented example. */
    {&github, GH_SECRET, GH_BODY, {{"X-Hub-Signature-256", "sha256=" GH_SIG}}, 1, NOW_MS, NULL},
    {&github,
     GH_SECRET,
     GH_BODY,
     {{"x-hub-signature-256", " SHA256=" GH_SIG " "}},
     1,
     NOW_MS,
     NULL},
    {&github,
     GH_SECRET,
     GH_BODY,
     {{"X-Hub-Signature-256",
       "sha256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17"}},
     1,
     NOW_MS,
     NULL},
    {&github,
     GH_SECRET,
     GH_BODY "!",
     {{"X-Hub-Signature-256", "sha256=" GH_SIG}},
     1,
     NOW_MS,
     "bad signature in header X-Hub-Signature-256"},
    {&github,
     "another secret",
     GH_BODY,
     {{"X-Hub-Signature-256", "sha256=" GH_SIG}},
     1,
     NOW_MS,
     "bad signature"},
    {&github,
     GH_SECRET,
     GH_BODY,
     {{"X-Hub-Signature", "sha1=" GH_SIG}},
     1,
     NOW_MS,
     "missing header X-Hub-Signature-256"},
    {&github, GH_SECRET, GH_BODY, {{0}}, 0, NOW_MS, "missing header X-Hub-Signature-256"},
    {&github,
     GH_SECRET,
     GH_BODY,
     {{"X-Hub-Signature-256", GH_SIG}},
     1,
     NOW_MS,
     "expected the prefix \"sha256=\""},
    {&github,
     GH_SECRET,
     GH_BODY,
     {{"X-Hub-Signature-256", "sha256=757107ea"}},
     1,
     NOW_MS,
     "the signature is 8 characters, expected 64 hex digits"},
    {&github,
     GH_SECRET,
     GH_BODY,
     {{"X-Hub-Signature-256",
       "sha256=g57107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}},
     1,
     NOW_MS,
     "the signature is not hex (character 1)"},
    {&github,
     GH_SECRET,
     GH_BODY,
     {{"X-Hub-Signature-256", "sha256=" GH_SIG}, {"X-Hub-Signature-256", "sha256=" GH_SIG}},
     2,
     NOW_MS,
     "header X-Hub-Signature-256 appears more than once"},
    {&github,
     "",
     GH_BODY,
     {{"X-Hub-Signature-256", "sha256=" GH_SIG}},
     1,
     NOW_MS,
     "no HMAC secret is configured"},

    /* Stripe: t=, v1= over "t.body"; v0 and unknown schemes ignored; rotation. */
    {&stripe,
     ST_SECRET,
     ST_BODY,
     {{"Stripe-Signature", "t=1700000000,v1=" ST_SIG}},
     1,
     NOW_MS,
     NULL},
    {&stripe,
     ST_SECRET,
     ST_BODY,
     {{"stripe-signature", "t=1700000000, v1=" ST_OTHER ", v1=" ST_SIG ", v0=" ST_OTHER}},
     1,
     NOW_MS,
     NULL},
    {&stripe,
     ST_SECRET,
     ST_BODY,
     {{"Stripe-Signature", "v1=" ST_SIG ",t=1700000000,x=y"}},
     1,
     NOW_MS,
     NULL},
    {&stripe,
     ST_SECRET,
     ST_BODY,
     {{"Stripe-Signature", "t=1700000000,v1=" ST_OTHER}},
     1,
     NOW_MS,
     "bad signature in header Stripe-Signature"},
    {&stripe,
     ST_SECRET,
     ST_BODY " ",
     {{"Stripe-Signature", "t=1700000000,v1=" ST_SIG}},
     1,
     NOW_MS,
     "bad signature"},
    /* The timestamp is signed: moving it breaks the signature. */
    {&stripe,
     ST_SECRET,
     ST_BODY,
     {{"Stripe-Signature", "t=1700000001,v1=" ST_SIG}},
     1,
     NOW_MS,
     "bad signature"},
    {&stripe,
     ST_SECRET,
     ST_BODY,
     {{"Stripe-Signature", "t=1700000000,v1=" ST_SIG}},
     1,
     1700000000000LL + 300001,
     "stale timestamp: signed 300 s ago (tolerance 300 s)"},
    {&stripe,
     ST_SECRET,
     ST_BODY,
     {{"Stripe-Signature", "t=1700000000,v1=" ST_SIG}},
     1,
     1700000000000LL + 300000,
     NULL},
    {&stripe,
     ST_SECRET,
     ST_BODY,
     {{"Stripe-Signature", "t=1700000000,v1=" ST_SIG}},
     1,
     1700000000000LL - 400000,
     "timestamp 400 s in the future"},
    {&stripe,
     ST_SECRET,
     ST_BODY,
     {{"Stripe-Signature", "v1=" ST_SIG}},
     1,
     NOW_MS,
     "no timestamp (t=)"},
    {&stripe,
     ST_SECRET,
     ST_BODY,
     {{"Stripe-Signature", "t=1700000000,v0=" ST_SIG}},
     1,
     NOW_MS,
     "no v1 signature"},
    {&stripe,
     ST_SECRET,
     ST_BODY,
     {{"Stripe-Signature", "t=1700000000,v1=" ST_SIG ",junk"}},
     1,
     NOW_MS,
     "item 3 is not key=value"},
    {&stripe, ST_SECRET, ST_BODY, {{"Stripe-Signature", ""}}, 1, NOW_MS, "item 1 is not key=value"},
    {&stripe,
     ST_SECRET,
     ST_BODY,
     {{"Stripe-Signature", "t=1700000000,t=1700000000,v1=" ST_SIG}},
     1,
     NOW_MS,
     "more than one t="},
    {&stripe,
     ST_SECRET,
     ST_BODY,
     {{"Stripe-Signature", "t=17e8,v1=" ST_SIG}},
     1,
     NOW_MS,
     "t= is not a Unix time in seconds"},
    {&stripe,
     ST_SECRET,
     ST_BODY,
     {{"Stripe-Signature", "t=1700000000000000,v1=" ST_SIG}},
     1,
     NOW_MS,
     "t= is not a Unix time in seconds"},
    {&stripe,
     ST_SECRET,
     ST_BODY,
     {{"Stripe-Signature", "t=1700000000,v1=abc"}},
     1,
     NOW_MS,
     "the signature is 3 characters, expected 64 hex digits"},
    {&stripe,
     ST_SECRET,
     ST_BODY,
     {{"X-Other", "t=1700000000,v1=" ST_SIG}},
     1,
     NOW_MS,
     "missing header Stripe-Signature"},

    /* A timestamp header, SHA-1, base64: "ts.body" is signed. */
    {&stamped_sha1_b64,
     KEY_SECRET,
     "hello",
     {{"X-Signature", "dS/okeMPU3yb7o7oVMRCG2eYi8Y="}, {"X-Timestamp", "1700000000"}},
     2,
     NOW_MS,
     NULL},
    {&stamped_sha1_b64,
     KEY_SECRET,
     "hello",
     {{"X-Signature", "dS/okeMPU3yb7o7oVMRCG2eYi8Y="}, {"X-Timestamp", "1700000001"}},
     2,
     NOW_MS,
     "bad signature in header X-Signature"},
    {&stamped_sha1_b64,
     KEY_SECRET,
     "hello",
     {{"X-Signature", "dS/okeMPU3yb7o7oVMRCG2eYi8Y="}},
     1,
     NOW_MS,
     "missing header X-Timestamp"},
    {&stamped_sha1_b64,
     KEY_SECRET,
     "hello",
     {{"X-Signature", "dS/okeMPU3yb7o7oVMRCG2eYi8Y="}, {"X-Timestamp", "-1700000000"}},
     2,
     NOW_MS,
     "header X-Timestamp: not a Unix time in seconds"},
    {&stamped_sha1_b64,
     KEY_SECRET,
     "hello",
     {{"X-Signature", "dS/okeMPU3yb7o7oVMRCG2eYi8Y="}, {"X-Timestamp", "1700000000"}},
     2,
     1700000000000LL + 3600000,
     "stale timestamp: signed 3600 s ago"},
    {&stamped_sha1_b64,
     KEY_SECRET,
     "hello",
     {{"X-Signature", "dS/okeMPU3yb7o7oVMRCG2eYi8Y"}, {"X-Timestamp", "1700000000"}},
     2,
     NOW_MS,
     "the signature is not base64"},
    {&stamped_sha1_b64,
     KEY_SECRET,
     "hello",
     {{"X-Signature", "kwezuRXvtRcf8U2MtV+8x5jGwO8UVtZt7RpqpyOli3s="},
      {"X-Timestamp", "1700000000"}},
     2,
     NOW_MS,
     "the signature decodes to 32 bytes, expected 20"},

    /* SHA-1 in hex, SHA-256 in base64, no timestamp. */
    {&plain_sha1_hex,
     KEY_SECRET,
     "hello",
     {{"X-Signature", "b34ceac4516ff23a143e61d79d0fa7a4fbe5f266"}},
     1,
     NOW_MS,
     NULL},
    {&plain_sha1_hex,
     KEY_SECRET,
     "hellO",
     {{"X-Signature", "b34ceac4516ff23a143e61d79d0fa7a4fbe5f266"}},
     1,
     NOW_MS,
     "bad signature"},
    {&plain_sha256_b64,
     KEY_SECRET,
     "hello",
     {{"X-Signature", "kwezuRXvtRcf8U2MtV+8x5jGwO8UVtZt7RpqpyOli3s="}},
     1,
     NOW_MS,
     NULL},
    {&plain_sha256_b64,
     KEY_SECRET,
     "hello",
     {{"X-Signature", "kwezuRXvtRcf8U2MtV+8x5jGwO8UVtZt7RpqpyOLi3s="}},
     1,
     NOW_MS,
     "bad signature"},
    {&plain_sha256_b64,
     KEY_SECRET,
     "hello",
     {{"X-Signature", "kwezuRXvtRcf8U2MtV+8x5jGwO8UVtZt7Rpqpy!li3s="}},
     1,
     NOW_MS,
     "the signature is not base64"},
};

Test(webhook_auth, hmac_vectors_and_failures)
{
	for (size_t i = 0; i < sizeof hmac_cases / sizeof hmac_cases[0]; i++) {
		const struct hmac_case *c = &hmac_cases[i];
		char err[256] = "";
		int rc = td_auth_hmac(c->scheme, c->secret, strlen(c->secret), c->h, c->n, c->body,
				      strlen(c->body), c->now_ms, err, sizeof err);

		if (!c->words) {
			cr_expect_eq(rc, 0, "case %zu refused: %s", i, err);
			continue;
		}
		cr_expect_eq(rc, -TD_EINVAL, "case %zu accepted", i);
		cr_expect(strstr(err, c->words), "case %zu: \"%s\" lacks \"%s\"", i, err, c->words);
		/* The expected signature never shows in a message. */
		cr_expect(!strstr(err, GH_SIG) && !strstr(err, ST_SIG), "case %zu: %s", i, err);
	}
}

Test(webhook_auth, hmac_misconfigured_scheme)
{
	struct td_hmac_scheme none = github;
	char err[128] = "";

	none.header = NULL;
	cr_expect_eq(td_auth_hmac(&none, "s", 1, NULL, 0, "", 0, NOW_MS, err, sizeof err),
		     -TD_EINVAL);
	cr_expect(strstr(err, "no signature header"), "%s", err);
	cr_expect_eq(td_auth_hmac(&github, "s", 1, NULL, 0, NULL, 0, NOW_MS, NULL, 0), -TD_EINVAL,
		     "no headers, no err buffer");
}

/* Signs body as the sender would under sc and checks it as the receiver; a changed
 * body or secret must fail. */
static void round_trip(const struct td_hmac_scheme *sc)
{
	static const char body[] = "{\"ref\":\"refs/heads/main\",\"bytes\":\"\\u0000\xc3\xa4\"}";
	struct td_http_header h[2] = {{"X-Sig", NULL}, {"X-Request-Timestamp", "1700000050"}};
	char err[256] = "";
	struct td_buf sig;

	td_buf_init(&sig);
	cr_assert_eq(td_hmac_sign(sc, "k3y", 3, body, sizeof body - 1, 1700000050, &sig), 0);
	h[0].value = sig.data;
	cr_expect_eq(
	    td_auth_hmac(sc, "k3y", 3, h, 2, body, sizeof body - 1, NOW_MS, err, sizeof err), 0,
	    "style %d alg %d enc %d prefix %s stamp %s: %s (%s)", sc->style, sc->algorithm,
	    sc->encoding, sc->prefix ? sc->prefix : "-",
	    sc->timestamp_header ? sc->timestamp_header : "-", err, sig.data);
	cr_expect_eq(
	    td_auth_hmac(sc, "k3y", 3, h, 2, body, sizeof body - 2, NOW_MS, err, sizeof err),
	    -TD_EINVAL, "a shorter body passed");
	cr_expect(strstr(err, "bad signature"), "%s", err);
	cr_expect_eq(
	    td_auth_hmac(sc, "k3Y", 3, h, 2, body, sizeof body - 1, NOW_MS, err, sizeof err),
	    -TD_EINVAL, "another secret passed");
	cr_expect(strstr(err, "bad signature"), "%s", err);
	td_buf_free(&sig);
}

/* Every combination of style, algorithm, encoding, prefix and timestamp header. */
Test(webhook_auth, sign_verify_round_trip)
{
	static const char *const prefixes[] = {NULL, "sha256=", "v1,"};
	static const char *const stamps[] = {NULL, "X-Request-Timestamp"};
	int combos = 0;

	for (int i = 0; i < 2 * 2 * 2 * 3 * 2; i++) {
		int style = i % 2, alg = i / 2 % 2, enc = i / 4 % 2, p = i / 8 % 3, st = i / 24;
		struct td_hmac_scheme sc = {
		    .style = style ? TD_HMAC_STRIPE : TD_HMAC_PLAIN,
		    .algorithm = alg ? TD_HMAC_SHA1 : TD_HMAC_SHA256,
		    .encoding = enc ? TD_HMAC_BASE64 : TD_HMAC_HEX,
		    .header = "X-Sig",
		    .prefix = style ? NULL : prefixes[p],
		    .timestamp_header = style ? NULL : stamps[st],
		    .tolerance_ms = 60000,
		};
		round_trip(&sc);
		combos++;
	}
	cr_expect_eq(combos, 48);
}

/* The sign side writes the shapes GitHub and Stripe send. */
Test(webhook_auth, sign_matches_the_services)
{
	struct td_buf b;

	td_buf_init(&b);
	cr_assert_eq(
	    td_hmac_sign(&github, GH_SECRET, strlen(GH_SECRET), GH_BODY, strlen(GH_BODY), 0, &b),
	    0);
	cr_expect_str_eq(b.data, "sha256=" GH_SIG);
	td_buf_reset(&b);
	cr_assert_eq(td_hmac_sign(&stripe, ST_SECRET, strlen(ST_SECRET), ST_BODY, strlen(ST_BODY),
				  1700000000, &b),
		     0);
	cr_expect_str_eq(b.data, "t=1700000000,v1=" ST_SIG);
	cr_expect_eq(
	    td_hmac_sign(&stripe, ST_SECRET, strlen(ST_SECRET), ST_BODY, strlen(ST_BODY), -1, &b),
	    -TD_EINVAL);
	td_buf_free(&b);
	cr_expect_eq(td_hmac_size(TD_HMAC_SHA256), 32);
	cr_expect_eq(td_hmac_size(TD_HMAC_SHA1), 20);
}
