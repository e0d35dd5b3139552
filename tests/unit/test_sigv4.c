/*
 * Unit tests of router/sigv4.c: AWS's published SigV4 test vectors (get-vanilla,
 * get-vanilla-query-order-key-case, post-vanilla, post-x-www-form-urlencoded: key
 * AKIDEXAMPLE, region us-east-1, service "service"), known answers for Lambda Invoke
 * requests computed with Python's hmac and hashlib (the path encoded twice, as botocore
 * signs it), and tables for the Authorization parser, the canonical URI and query, the
 * date parser and every refusal of the verifier.
 */
#include <criterion/criterion.h>

#include <string.h>

#include <triggerd/errors.h>

#include "../../router/sigv4.h"

#define VEC_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define VEC_DATE   "20150830T123600Z"
#define EMPTY_HASH "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

#define ARN_PATH                                                                                   \
	"/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Ahello/"  \
	"invocations"
#define KAT_DATE "20240102T030405Z"
/* Python: the canonical request with quote(ARN_PATH, safe='/~') (%253A). */
#define KAT_SIG_DOUBLE "34fad5a00ead3e82329ae0f86d839def691243d60551320ee10bb691d3bf922c"
/* The same request signed with the path as sent (%3A), as libcurl 7.88 signs it. */
#define KAT_SIG_SINGLE "7f9c7c670ca9727c72344c1a93b8a1896474c9ae96ecfff1e0f96c6e3a30f9ca"

struct vector {
	const char *name, *method, *query, *content_type, *body, *want;
};

static const struct vector aws_vectors[] = {
    {"get-vanilla", "GET", NULL, NULL, "",
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"get-vanilla-query-order-key-case", "GET", "Param2=value2&Param1=value1", NULL, "",
     "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
    {"post-vanilla", "POST", NULL, NULL, "",
     "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
    {"post-x-www-form-urlencoded", "POST", NULL, "application/x-www-form-urlencoded",
     "Param1=value1", "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
};

Test(sigv4, aws_test_vectors)
{
	const struct td_sigv4_signer signer = {"AKIDEXAMPLE", VEC_SECRET, "us-east-1", "service"};
	for (size_t i = 0; i < sizeof aws_vectors / sizeof aws_vectors[0]; i++) {
		const struct vector *v = &aws_vectors[i];
		struct td_http_header h[3] = {{"Host", "example.amazonaws.com"},
					      {"X-Amz-Date", VEC_DATE}};
		size_t n = 2;
		if (v->content_type)
			h[n++] = (struct td_http_header){"Content-Type", v->content_type};
		const struct td_sigv4_request req = {v->method, "/",	 v->query,	 h,
						     n,		v->body, strlen(v->body)};
		struct td_buf out;
		char err[256] = "";
		td_buf_init(&out);
		cr_assert_eq(td_sigv4_authorization(&req, VEC_DATE, &signer, &out, err, sizeof err),
			     0, "%s: %s", v->name, err);
		char want[512];
		snprintf(want, sizeof want,
			 "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
			 "aws4_request, SignedHeaders=%shost;x-amz-date, Signature=%s",
			 v->content_type ? "content-type;" : "", v->want);
		cr_assert_str_eq(out.data, want, "%s", v->name);
		td_buf_free(&out);
	}
}

Test(sigv4, get_vanilla_canonical_request)
{
	const struct td_http_header h[] = {{"Host", "example.amazonaws.com"},
					   {"X-Amz-Date", VEC_DATE}};
	const struct td_sigv4_request req = {"GET", "/", NULL, h, 2, NULL, 0};
	struct td_buf out;
	char err[128];
	td_buf_init(&out);
	cr_assert_eq(td_sigv4_canonical_request(&req, "host;x-amz-date", &out, err, sizeof err), 0);
	cr_assert_str_eq(out.data, "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:" VEC_DATE
				   "\n\nhost;x-amz-date\n" EMPTY_HASH);
	char sig[65];
	cr_assert_eq(td_sigv4_signature(out.data, out.len, VEC_SECRET, VEC_DATE, "us-east-1",
					"service", sig),
		     0);
	cr_assert_str_eq(sig, aws_vectors[0].want);
	td_buf_free(&out);
}

/* ---- canonical URI and query ---- */

struct uri_case {
	const char *raw, *want;
};

Test(sigv4, canonical_uri_table)
{
	static const struct uri_case cases[] = {
	    {"", "/"},
	    {"/", "/"},
	    {"/2015-03-31/functions/hello/invocations", "/2015-03-31/functions/hello/invocations"},
	    {"/functions/arn%3Aaws%3Alambda/invocations",
	     "/functions/arn%253Aaws%253Alambda/invocations"},
	    {"/a/./b/../c", "/a/c"},
	    {"//a//b/", "/a/b/"},
	    {"/../..", "/"},
	    {"/a b", "/a%20b"},
	    {"/\xc3\xa4~x", "/%C3%A4~x"},
	    {"/$LATEST:1", "/%24LATEST%3A1"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct td_buf out;
		td_buf_init(&out);
		cr_assert_eq(td_sigv4_canonical_uri(cases[i].raw, &out), 0);
		cr_assert_str_eq(out.data, cases[i].want, "raw \"%s\"", cases[i].raw);
		td_buf_free(&out);
	}
}

Test(sigv4, uri_encode_keeps_unreserved_only)
{
	struct td_buf out;
	td_buf_init(&out);
	cr_assert_eq(td_sigv4_uri_encode("aZ09-_.~/:$ %", 13, false, &out), 0);
	cr_assert_str_eq(out.data, "aZ09-_.~%2F%3A%24%20%25");
	td_buf_reset(&out);
	cr_assert_eq(td_sigv4_uri_encode("/a:b", 4, true, &out), 0);
	cr_assert_str_eq(out.data, "/a%3Ab");
	td_buf_free(&out);
}

struct query_case {
	const char *query, *want; /* want NULL: malformed */
};

Test(sigv4, canonical_query_table)
{
	static const struct query_case cases[] = {
	    {NULL, ""},
	    {"", ""},
	    {"Qualifier=%24LATEST", "Qualifier=%24LATEST"},
	    {"Qualifier=$LATEST", "Qualifier=%24LATEST"},
	    {"b=2&a=1", "a=1&b=2"},
	    {"a=1&a=0", "a=0&a=1"},
	    {"x", "x="},
	    {"x=&&y=1", "x=&y=1"},
	    {"a=b%20c", "a=b%20c"},
	    {"a=%7e", "a=~"},
	    {"B=1&a=2", "B=1&a=2"}, /* byte order: upper case first */
	    {"a=%zz", NULL},
	    {"a=%4", NULL},
	    {"%=1", NULL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct td_buf out;
		char err[128] = "";
		td_buf_init(&out);
		int rc = td_sigv4_canonical_query(cases[i].query, &out, err, sizeof err);
		if (cases[i].want) {
			cr_assert_eq(rc, 0, "\"%s\": %s", cases[i].query, err);
			cr_assert_str_eq(out.data ? out.data : "", cases[i].want, "\"%s\"",
					 cases[i].query);
		} else {
			cr_assert_eq(rc, -TD_EINVAL, "\"%s\" was accepted", cases[i].query);
			cr_assert(strstr(err, "%-escape at byte"), "%s", err);
		}
		td_buf_free(&out);
	}
}

/* ---- the Authorization header ---- */

#define GOOD_AUTH                                                                                  \
	"AWS4-HMAC-SHA256 Credential=AKIDTEST/20240102/us-east-1/lambda/aws4_request, "            \
	"SignedHeaders=content-type;host;x-amz-date, "                                             \
	"Signature=" KAT_SIG_DOUBLE

Test(sigv4, parse_good_authorization)
{
	struct td_sigv4_auth a;
	char err[256] = "";
	cr_assert_eq(
	    td_sigv4_parse_authorization(GOOD_AUTH, strlen(GOOD_AUTH), &a, err, sizeof err), 0,
	    "%s", err);
	cr_assert_str_eq(a.access_key, "AKIDTEST");
	cr_assert_str_eq(a.date, "20240102");
	cr_assert_str_eq(a.region, "us-east-1");
	cr_assert_str_eq(a.service, "lambda");
	cr_assert_str_eq(a.signed_headers, "content-type;host;x-amz-date");
	cr_assert_str_eq(a.signature, KAT_SIG_DOUBLE);

	/* Any order, no spaces after the commas. */
	const char *other =
	    "AWS4-HMAC-SHA256 Signature=" KAT_SIG_DOUBLE
	    ",SignedHeaders=host,Credential=K/20240102/eu-west-1/lambda/aws4_request";
	cr_assert_eq(td_sigv4_parse_authorization(other, strlen(other), &a, err, sizeof err), 0,
		     "%s", err);
	cr_assert_str_eq(a.region, "eu-west-1");
	cr_assert_str_eq(a.signed_headers, "host");
}

struct auth_case {
	const char *value, *why;
};

#define SIG64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define CRED  "Credential=K/20240102/us-east-1/lambda/aws4_request"

Test(sigv4, parse_bad_authorization_table)
{
	static const struct auth_case cases[] = {
	    {"", "algorithm must be AWS4-HMAC-SHA256"},
	    {"AWS4-HMAC-SHA1 " CRED, "algorithm must be AWS4-HMAC-SHA256"},
	    {"AWS4-HMAC-SHA256X " CRED, "algorithm must be"},
	    {"AWS4-HMAC-SHA256", "requires 'Credential'"},
	    {"AWS4-HMAC-SHA256 " CRED ", Signature=" SIG64, "requires 'SignedHeaders'"},
	    {"AWS4-HMAC-SHA256 " CRED ", SignedHeaders=host", "requires 'Signature'"},
	    {"AWS4-HMAC-SHA256 Credential=K/20240102/us-east-1/lambda, SignedHeaders=host, "
	     "Signature=" SIG64,
	     "is not AKID/DATE/REGION/SERVICE/aws4_request"},
	    {"AWS4-HMAC-SHA256 Credential=K/20240102/us-east-1/lambda/aws4_request/x, "
	     "SignedHeaders=host, Signature=" SIG64,
	     "more than 5"},
	    {"AWS4-HMAC-SHA256 Credential=K/2024010/us-east-1/lambda/aws4_request, "
	     "SignedHeaders=host, Signature=" SIG64,
	     "is not YYYYMMDD"},
	    {"AWS4-HMAC-SHA256 Credential=/20240102/us-east-1/lambda/aws4_request, "
	     "SignedHeaders=host, Signature=" SIG64,
	     "access key id"},
	    {"AWS4-HMAC-SHA256 Credential=K/20240102/US-EAST-1/lambda/aws4_request, "
	     "SignedHeaders=host, Signature=" SIG64,
	     "the region \"US-EAST-1\" of the Credential (byte 40)"},
	    {"AWS4-HMAC-SHA256 Credential=K/20240102/us-east-1/lambda/aws5_request, "
	     "SignedHeaders=host, Signature=" SIG64,
	     "must end with \"aws4_request\""},
	    {"AWS4-HMAC-SHA256 " CRED ", SignedHeaders=Host, Signature=" SIG64,
	     "malformed name \"Host\""},
	    {"AWS4-HMAC-SHA256 " CRED ", SignedHeaders=x-amz-date;host, Signature=" SIG64,
	     "not sorted"},
	    {"AWS4-HMAC-SHA256 " CRED ", SignedHeaders=host;host, Signature=" SIG64,
	     "repeats a name"},
	    {"AWS4-HMAC-SHA256 " CRED ", SignedHeaders=x-amz-date, Signature=" SIG64,
	     "must include 'host'"},
	    {"AWS4-HMAC-SHA256 " CRED ", SignedHeaders=host;, Signature=" SIG64, "malformed name"},
	    {"AWS4-HMAC-SHA256 " CRED ", SignedHeaders=host, Signature=abc", "64 lower-case hex"},
	    {"AWS4-HMAC-SHA256 " CRED ", SignedHeaders=host, Signature=" SIG64 "0",
	     "64 lower-case hex"},
	    {"AWS4-HMAC-SHA256 " CRED ", SignedHeaders=host, Signature="
	     "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
	     "64 lower-case hex"},
	    {"AWS4-HMAC-SHA256 " CRED ", SignedHeaders=host, Signature=" SIG64 ", Signature=" SIG64,
	     "given once"},
	    {"AWS4-HMAC-SHA256 " CRED ", " CRED ", SignedHeaders=host, Signature=" SIG64,
	     "Credential is repeated"},
	    {"AWS4-HMAC-SHA256 " CRED ", Foo=1, SignedHeaders=host, Signature=" SIG64,
	     "unknown part \"Foo\""},
	    {"AWS4-HMAC-SHA256 " CRED " garbage", "expected NAME=VALUE"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct td_sigv4_auth a;
		char err[256] = "";
		int rc = td_sigv4_parse_authorization(cases[i].value, strlen(cases[i].value), &a,
						      err, sizeof err);
		cr_assert_eq(rc, -TD_EINVAL, "accepted: %s", cases[i].value);
		cr_assert(strstr(err, cases[i].why), "\"%s\": got \"%s\", want \"%s\"",
			  cases[i].value, err, cases[i].why);
	}
}

Test(sigv4, parse_authorization_reads_only_len_bytes)
{
	/* The value is not NUL-terminated where len ends. */
	char buf[sizeof GOOD_AUTH + 8];
	memcpy(buf, GOOD_AUTH, sizeof GOOD_AUTH - 1);
	memcpy(buf + sizeof GOOD_AUTH - 1, "ffffffff", 8);
	struct td_sigv4_auth a;
	char err[256] = "";
	cr_assert_eq(td_sigv4_parse_authorization(buf, sizeof GOOD_AUTH - 1, &a, err, sizeof err),
		     0, "%s", err);
	cr_assert_eq(td_sigv4_parse_authorization(buf, 10, &a, err, sizeof err), -TD_EINVAL);
}

/* ---- dates ---- */

struct date_case {
	const char *text;
	long long want_s; /* -1: malformed */
};

Test(sigv4, date_table)
{
	static const struct date_case cases[] = {
	    {"20150830T123600Z", 1440938160},
	    {"19700101T000000Z", 0},
	    {"20240229T235959Z", 1709251199},
	    {"20230229T000000Z", -1},
	    {"20150830T123600", -1},
	    {"20150830 123600Z", -1},
	    {"20151330T123600Z", -1},
	    {"20150832T123600Z", -1},
	    {"20150830T243600Z", -1},
	    {"2015-08-30T12:36:00Z", -1},
	    {"", -1},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		long long ms = -1;
		char err[128] = "";
		int rc = td_sigv4_parse_date(cases[i].text, &ms, err, sizeof err);
		if (cases[i].want_s < 0) {
			cr_assert_eq(rc, -TD_EINVAL, "accepted %s", cases[i].text);
			cr_assert(strstr(err, "X-Amz-Date"), "%s", err);
		} else {
			cr_assert_eq(rc, 0, "%s: %s", cases[i].text, err);
			cr_assert_eq(ms, cases[i].want_s * 1000, "%s", cases[i].text);
			char back[17];
			td_sigv4_format_date(ms, back);
			cr_assert_str_eq(back, cases[i].text);
		}
	}
}

/* ---- verification ---- */

static const struct td_map *creds(void)
{
	static char *keys[] = {"OTHER", "AKIDTEST"};
	static char *values[] = {"x", "secret"};
	static const struct td_map m = {keys, values, 2};
	return &m;
}

/* A Lambda Invoke request for an ARN as awscli sends it, signed by KAT_SIG_DOUBLE. */
struct invoke_req {
	struct td_http_header h[8];
	size_t n;
	char auth[512];
	struct td_sigv4_request req;
};

static void invoke_req(struct invoke_req *r, const char *sig, const char *body)
{
	snprintf(r->auth, sizeof r->auth,
		 "AWS4-HMAC-SHA256 Credential=AKIDTEST/20240102/us-east-1/lambda/aws4_request, "
		 "SignedHeaders=content-type;host;x-amz-date;x-amz-invocation-type, Signature=%s",
		 sig);
	r->n = 0;
	r->h[r->n++] = (struct td_http_header){"Host", "127.0.0.1:7071"};
	r->h[r->n++] = (struct td_http_header){"X-Amz-Date", KAT_DATE};
	r->h[r->n++] = (struct td_http_header){"X-Amz-Invocation-Type", "RequestResponse"};
	r->h[r->n++] = (struct td_http_header){"Content-Type", "application/json"};
	r->h[r->n++] = (struct td_http_header){"User-Agent", "not signed"};
	r->h[r->n++] = (struct td_http_header){"Authorization", r->auth};
	r->req = (struct td_sigv4_request){"POST", ARN_PATH, "Qualifier=%24LATEST", r->h,
					   r->n,   body,     strlen(body)};
}

static long long kat_now(int delta_s)
{
	long long ms;
	cr_assert_eq(td_sigv4_parse_date(KAT_DATE, &ms, NULL, 0), 0);
	return ms + delta_s * 1000LL;
}

Test(sigv4, verify_awscli_style_arn_request)
{
	struct invoke_req r;
	struct td_sigv4_verdict v;
	invoke_req(&r, KAT_SIG_DOUBLE, "{\"x\":1}");
	cr_assert_eq(td_sigv4_verify(&r.req, creds(), kat_now(0), &v), 0, "%s: %s", v.type,
		     v.message);
	cr_assert_str_eq(v.access_key, "AKIDTEST");
	/* Within five minutes either way. */
	cr_assert_eq(td_sigv4_verify(&r.req, creds(), kat_now(299), &v), 0);
	cr_assert_eq(td_sigv4_verify(&r.req, creds(), kat_now(-299), &v), 0);
}

Test(sigv4, verify_refuses_the_single_encoded_path_signature)
{
	/* What libcurl 7.88 computes for this path: AWS (and so triggerd) refuse it. */
	struct invoke_req r;
	struct td_sigv4_verdict v;
	invoke_req(&r, KAT_SIG_SINGLE, "{\"x\":1}");
	cr_assert_eq(td_sigv4_verify(&r.req, creds(), kat_now(0), &v), -TD_EINVAL);
	cr_assert_eq(v.status, 403);
	cr_assert_str_eq(v.type, "InvalidSignatureException");
}

struct refusal {
	const char *what;
	int status;
	const char *type, *message;
};

static void expect_refusal(const struct td_sigv4_request *req, long long now,
			   const struct refusal *want)
{
	struct td_sigv4_verdict v;
	cr_assert_eq(td_sigv4_verify(req, creds(), now, &v), -TD_EINVAL, "%s: accepted",
		     want->what);
	cr_assert_eq(v.status, want->status, "%s: status %d", want->what, v.status);
	cr_assert_str_eq(v.type, want->type, "%s", want->what);
	cr_assert(strstr(v.message, want->message), "%s: \"%s\" lacks \"%s\"", want->what,
		  v.message, want->message);
}

Test(sigv4, verify_refusals)
{
	struct invoke_req r;
	const struct refusal tampered_body = {"body changed", 403, "InvalidSignatureException",
					      "does not match the signature you provided"};
	invoke_req(&r, KAT_SIG_DOUBLE, "{\"x\":2}");
	expect_refusal(&r.req, kat_now(0), &tampered_body);

	invoke_req(&r, KAT_SIG_DOUBLE, "{\"x\":1}");
	r.req.query = "Qualifier=1";
	expect_refusal(&r.req, kat_now(0), &tampered_body);

	invoke_req(&r, KAT_SIG_DOUBLE, "{\"x\":1}");
	r.h[2].value = "Event";
	expect_refusal(&r.req, kat_now(0), &tampered_body);

	invoke_req(&r, KAT_SIG_DOUBLE, "{\"x\":1}");
	const struct refusal expired = {"expired", 403, "InvalidSignatureException",
					"Signature expired: " KAT_DATE
					" is now earlier than 20240102T030406Z "
					"(20240102T030906Z - 5 min.)"};
	expect_refusal(&r.req, kat_now(301), &expired);
	const struct refusal future = {"future", 403, "InvalidSignatureException",
				       "Signature not yet current: " KAT_DATE
				       " is still later than"};
	expect_refusal(&r.req, kat_now(-301), &future);

	static char *other_key[] = {"OTHER"}, *other_value[] = {"x"};
	static const struct td_map only_other = {other_key, other_value, 1};
	struct td_sigv4_verdict v;
	cr_assert_eq(td_sigv4_verify(&r.req, &only_other, kat_now(0), &v), -TD_EINVAL);
	cr_assert_eq(v.status, 403);
	cr_assert_str_eq(v.type, "UnrecognizedClientException");
	cr_assert(strstr(v.message, "The security token included in the request is invalid"));

	/* No Authorization at all, or not SigV4. */
	r.req.nheaders = 5;
	const struct refusal missing = {"unsigned", 403, "MissingAuthenticationTokenException",
					"Missing Authentication Token"};
	expect_refusal(&r.req, kat_now(0), &missing);
	r.req.nheaders = 6;
	r.h[5].value = "Bearer abc";
	expect_refusal(&r.req, kat_now(0), &missing);

	/* Malformed header: 400 IncompleteSignatureException with the parser's reason. */
	r.h[5].value = "AWS4-HMAC-SHA256 Credential=AKIDTEST/20240102/us-east-1/lambda";
	const struct refusal malformed = {"malformed", 400, "IncompleteSignatureException",
					  "is not AKID/DATE/REGION/SERVICE/aws4_request"};
	expect_refusal(&r.req, kat_now(0), &malformed);
}

Test(sigv4, verify_date_scope_and_headers)
{
	struct invoke_req r;
	invoke_req(&r, KAT_SIG_DOUBLE, "{\"x\":1}");
	r.h[1].name = "X-Other";
	const struct refusal no_date = {"no date", 400, "IncompleteSignatureException",
					"'X-Amz-Date'"};
	expect_refusal(&r.req, kat_now(0), &no_date);

	invoke_req(&r, KAT_SIG_DOUBLE, "{\"x\":1}");
	r.h[1].value = "2024-01-02";
	const struct refusal bad_date = {"bad date", 400, "IncompleteSignatureException",
					 "is not YYYYMMDDTHHMMSSZ"};
	expect_refusal(&r.req, kat_now(0), &bad_date);

	invoke_req(&r, KAT_SIG_DOUBLE, "{\"x\":1}");
	r.h[1].value = "20240103T030405Z";
	const struct refusal scope = {"scope date", 400, "IncompleteSignatureException",
				      "Date in Credential scope does not match"};
	expect_refusal(&r.req, kat_now(86400), &scope);

	invoke_req(&r, KAT_SIG_DOUBLE, "{\"x\":1}");
	snprintf(r.auth, sizeof r.auth,
		 "AWS4-HMAC-SHA256 Credential=AKIDTEST/20240102/us-east-1/s3/aws4_request, "
		 "SignedHeaders=host, Signature=" KAT_SIG_DOUBLE);
	const struct refusal service = {"service", 403, "InvalidSignatureException",
					"scoped to correct service: 'lambda'"};
	expect_refusal(&r.req, kat_now(0), &service);

	invoke_req(&r, KAT_SIG_DOUBLE, "{\"x\":1}");
	r.h[3].name = "X-Content-Type";
	const struct refusal missing_header = {"signed header absent", 400,
					       "IncompleteSignatureException",
					       "the signed header 'content-type'"};
	expect_refusal(&r.req, kat_now(0), &missing_header);

	invoke_req(&r, KAT_SIG_DOUBLE, "{\"x\":1}");
	r.h[4] = (struct td_http_header){"X-Amz-Content-SHA256", EMPTY_HASH};
	const struct refusal payload = {"payload hash", 400, "IncompleteSignatureException",
					"X-Amz-Content-SHA256"};
	expect_refusal(&r.req, kat_now(0), &payload);
}

Test(sigv4, repeated_headers_are_joined_and_trimmed)
{
	/* Python: "x-amz-meta:a b,c" in the canonical headers. */
	static const char sig[] =
	    "cc1223c886a1e03a0f0aa1e89cb302dc5e7b3e7bd99d6199127a170f033fd676";
	char auth[300];
	snprintf(auth, sizeof auth,
		 "AWS4-HMAC-SHA256 Credential=AKIDTEST/20240102/us-east-1/lambda/aws4_request, "
		 "SignedHeaders=host;x-amz-date;x-amz-meta, Signature=%s",
		 sig);
	const struct td_http_header h[] = {
	    {"Host", "example.com"}, {"X-Amz-Meta", "  a   b "}, {"X-Amz-Date", KAT_DATE},
	    {"x-amz-meta", "\tc"},   {"Authorization", auth},
	};
	const struct td_sigv4_request req = {"GET", "/", NULL, h, 5, NULL, 0};
	struct td_sigv4_verdict v;
	cr_assert_eq(td_sigv4_verify(&req, creds(), kat_now(0), &v), 0, "%s", v.message);
}

Test(sigv4, sign_then_verify_round_trip)
{
	const struct td_sigv4_signer signer = {"AKIDTEST", "secret", "eu-west-1", "lambda"};
	struct td_http_header h[6] = {{"Host", "127.0.0.1:9"},
				      {"X-Amz-Date", KAT_DATE},
				      {"Content-Type", "application/json"},
				      {"X-Amz-Invocation-Type", "Event"},
				      {"X-Amz-Security-Token", "tok"}};
	struct td_sigv4_request req = {"POST", ARN_PATH, "Qualifier=prod", h, 5, "{}", 2};
	struct td_buf auth;
	char err[128];
	td_buf_init(&auth);
	cr_assert_eq(td_sigv4_authorization(&req, KAT_DATE, &signer, &auth, err, sizeof err), 0);
	cr_assert(strstr(auth.data, "SignedHeaders=content-type;host;x-amz-date;"
				    "x-amz-invocation-type;x-amz-security-token,"),
		  "%s", auth.data);
	h[5] = (struct td_http_header){"Authorization", auth.data};
	req.nheaders = 6;
	struct td_sigv4_verdict v;
	cr_assert_eq(td_sigv4_verify(&req, creds(), kat_now(1), &v), 0, "%s", v.message);
	td_buf_free(&auth);
}
