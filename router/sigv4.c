/*
 * AWS Signature Version 4 (see sigv4.h): the Authorization header parser, the
 * canonical request, the signing key chain and the verifier of the Invoke API.
 *
 * Everything works on the caller's text with explicit lengths and bounds-checked
 * copies into fixed arrays, since the Authorization header and the request come from
 * outside. The crypto is OpenSSL's one-shot SHA256() and HMAC(); the signatures are
 * compared with CRYPTO_memcmp over their fixed 64 bytes, so the time taken says nothing
 * about how much of a guess was right.
 */
#include "sigv4.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <triggerd/errors.h>

#define TERMINATOR "aws4_request"
#define SERVICE	   "lambda"

/* ---- small helpers ---- */

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void to_hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static void sha256_hex(const void *p, size_t n, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256(p ? p : (const void *)"", n, md);
	to_hex(md, sizeof md, out);
}

static bool hmac256(const void *key, size_t klen, const char *msg, size_t mlen,
		    unsigned char out[SHA256_DIGEST_LENGTH])
{
	unsigned int outlen = 0;
	return HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, mlen, out, &outlen) !=
		   NULL &&
	       outlen == SHA256_DIGEST_LENGTH;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t';
}

/* ---- URI encoding and the canonical URI and query ---- */

int td_sigv4_uri_encode(const char *s, size_t len, bool keep_slash, struct td_buf *out)
{
	static const char digits[] = "0123456789ABCDEF";
	if (td_buf_reserve(out, len) < 0)
		return -TD_ENOMEM;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (unreserved(c) || (keep_slash && c == '/')) {
			td_buf_appendc(out, (char)c);
		} else {
			char esc[3] = {'%', digits[c >> 4], digits[c & 15]};
			td_buf_append(out, esc, 3);
		}
	}
	return td_buf_failed(out) ? -TD_ENOMEM : 0;
}

/*
 * RFC 3986 section 5.2.4 dot segments and, as AWS wants, no empty segments: the
 * segments of path that remain, joined with '/', a leading '/' always and a trailing one
 * when the path ended with '/' (as botocore's remove_dot_segments).
 */
static int normalize_path(const char *path, struct td_buf *out)
{
	size_t n = strlen(path), nseg = 0, cap = 16;
	struct seg {
		const char *p;
		size_t len;
	} *segs = malloc(cap * sizeof *segs);
	int rc = -TD_ENOMEM;

	if (!segs)
		return -TD_ENOMEM;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && path[j] != '/')
			j++;
		size_t len = j - i;
		if (len == 2 && path[i] == '.' && path[i + 1] == '.') {
			if (nseg > 0)
				nseg--;
		} else if (len > 0 && !(len == 1 && path[i] == '.')) {
			if (nseg == cap) {
				struct seg *more = realloc(segs, 2 * cap * sizeof *segs);
				if (!more)
					goto fail;
				segs = more;
				cap *= 2;
			}
			segs[nseg++] = (struct seg){path + i, len};
		}
		i = j + 1;
	}
	td_buf_appendc(out, '/');
	for (size_t k = 0; k < nseg; k++) {
		if (k > 0)
			td_buf_appendc(out, '/');
		td_buf_append(out, segs[k].p, segs[k].len);
	}
	if (nseg > 0 && n > 0 && path[n - 1] == '/')
		td_buf_appendc(out, '/');
	rc = td_buf_failed(out) ? -TD_ENOMEM : 0;
fail:
	free(segs);
	return rc;
}

int td_sigv4_canonical_uri(const char *raw_path, struct td_buf *out)
{
	struct td_buf norm;
	int rc;

	td_buf_init(&norm);
	rc = normalize_path(raw_path ? raw_path : "", &norm);
	if (rc == 0)
		rc = td_sigv4_uri_encode(norm.data, norm.len, true, out);
	td_buf_free(&norm);
	return rc;
}

/* Percent-decodes s[0..len) and appends it URI-encoded; at is s's offset in the query,
 * for messages. */
static int reencode(const char *s, size_t len, size_t at, struct td_buf *out, char *err,
		    size_t errlen)
{
	struct td_buf dec;
	int rc;

	td_buf_init(&dec);
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '%') {
			int hi = i + 1 < len ? hex_value(s[i + 1]) : -1;
			int lo = i + 2 < len ? hex_value(s[i + 2]) : -1;
			if (hi < 0 || lo < 0) {
				td_buf_free(&dec);
				return td_fail(err, errlen,
					       "the query has a malformed %%-escape at byte %zu",
					       at + i + 1);
			}
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		td_buf_appendc(&dec, c);
	}
	rc = td_buf_failed(&dec) ? -TD_ENOMEM : td_sigv4_uri_encode(dec.data, dec.len, false, out);
	td_buf_free(&dec);
	return rc;
}

struct param {
	char *key, *value; /* canonical (encoded) */
};

static int param_cmp(const void *a, const void *b)
{
	const struct param *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	return c ? c : strcmp(x->value, y->value);
}

int td_sigv4_canonical_query(const char *query, struct td_buf *out, char *err, size_t errlen)
{
	struct param *params = NULL;
	size_t n = 0, cap = 0, qlen = query ? strlen(query) : 0;
	struct td_buf kb, vb;
	int rc = 0;

	td_buf_init(&kb);
	td_buf_init(&vb);
	for (size_t i = 0; i < qlen;) {
		size_t end = i;
		while (end < qlen && query[end] != '&')
			end++;
		if (end > i) {
			const char *eq = memchr(query + i, '=', end - i);
			size_t klen = eq ? (size_t)(eq - (query + i)) : end - i;
			size_t voff = eq ? (size_t)(eq - query) + 1 : end;
			td_buf_reset(&kb);
			td_buf_reset(&vb);
			if ((rc = reencode(query + i, klen, i, &kb, err, errlen)) < 0 ||
			    (rc = reencode(query + voff, end - voff, voff, &vb, err, errlen)) < 0)
				goto done;
			if (n == cap) {
				size_t ncap = cap ? 2 * cap : 8;
				struct param *more = realloc(params, ncap * sizeof *more);
				if (!more) {
					rc = -TD_ENOMEM;
					goto done;
				}
				params = more;
				cap = ncap;
			}
			params[n].key = td_buf_steal(&kb, NULL);
			params[n].value = td_buf_steal(&vb, NULL);
			n++;
			if (!params[n - 1].key || !params[n - 1].value) {
				rc = -TD_ENOMEM;
				goto done;
			}
		}
		i = end + 1;
	}
	if (n > 1)
		qsort(params, n, sizeof *params, param_cmp);
	for (size_t k = 0; k < n; k++) {
		if (k > 0)
			td_buf_appendc(out, '&');
		td_buf_appends(out, params[k].key);
		td_buf_appendc(out, '=');
		td_buf_appends(out, params[k].value);
	}
	if (td_buf_failed(out))
		rc = -TD_ENOMEM;
done:
	for (size_t k = 0; k < n; k++) {
		free(params[k].key);
		free(params[k].value);
	}
	free(params);
	td_buf_free(&kb);
	td_buf_free(&vb);
	return rc;
}

/* ---- the canonical request ---- */

/* Appends one header value trimmed, with runs of spaces and tabs made one space. */
static void append_trimmed(struct td_buf *out, const char *v)
{
	size_t n = strlen(v), i = 0;
	while (i < n && blank(v[i]))
		i++;
	while (n > i && blank(v[n - 1]))
		n--;
	for (; i < n; i++) {
		if (blank(v[i])) {
			td_buf_appendc(out, ' ');
			while (i + 1 < n && blank(v[i + 1]))
				i++;
		} else {
			td_buf_appendc(out, v[i]);
		}
	}
}

static const char *header_value(const struct td_sigv4_request *req, const char *name)
{
	for (size_t i = 0; i < req->nheaders; i++)
		if (strcasecmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	return NULL;
}

/* "name:v1,v2\n" for one signed header name[0..len); -TD_EINVAL when absent. */
static int canonical_header(const struct td_sigv4_request *req, const char *name, size_t len,
			    struct td_buf *out, char *err, size_t errlen)
{
	bool found = false;
	char shown[64];

	td_buf_append(out, name, len);
	td_buf_appendc(out, ':');
	for (size_t i = 0; i < req->nheaders; i++) {
		const char *h = req->headers[i].name;
		if (strlen(h) != len || strncasecmp(h, name, len) != 0)
			continue;
		if (found)
			td_buf_appendc(out, ',');
		append_trimmed(out, req->headers[i].value ? req->headers[i].value : "");
		found = true;
	}
	td_buf_appendc(out, '\n');
	if (!found)
		return td_fail(err, errlen,
			       "the signed header '%s' (SignedHeaders) is not in the request",
			       td_shown(name, len, shown));
	return 0;
}

int td_sigv4_canonical_request(const struct td_sigv4_request *req, const char *signed_headers,
			       struct td_buf *out, char *err, size_t errlen)
{
	char body_hash[65];
	int rc;

	td_buf_appends(out, req->method);
	td_buf_appendc(out, '\n');
	if ((rc = td_sigv4_canonical_uri(req->path, out)) < 0)
		return rc;
	td_buf_appendc(out, '\n');
	if ((rc = td_sigv4_canonical_query(req->query, out, err, errlen)) < 0)
		return rc;
	td_buf_appendc(out, '\n');
	for (const char *p = signed_headers; *p;) {
		size_t len = strcspn(p, ";");
		if (len == 0)
			return td_fail(err, errlen, "SignedHeaders has an empty name");
		if ((rc = canonical_header(req, p, len, out, err, errlen)) < 0)
			return rc;
		p += len;
		if (*p == ';')
			p++;
	}
	td_buf_appendc(out, '\n');
	td_buf_appends(out, signed_headers);
	td_buf_appendc(out, '\n');
	sha256_hex(req->body, req->body_len, body_hash);
	const char *declared = header_value(req, "X-Amz-Content-SHA256");
	if (declared && strcmp(declared, body_hash) != 0) {
		char shown[64];
		return td_fail(err, errlen,
			       "the X-Amz-Content-SHA256 header (%s) is not the SHA-256 of the "
			       "body (%s)",
			       td_shown(declared, strlen(declared), shown), body_hash);
	}
	td_buf_appends(out, body_hash);
	return td_buf_failed(out) ? -TD_ENOMEM : 0;
}

int td_sigv4_signature(const char *canonical, size_t len, const char *secret, const char *amz_date,
		       const char *region, const char *service, char sig[65])
{
	unsigned char k[SHA256_DIGEST_LENGTH], k2[SHA256_DIGEST_LENGTH];
	char hash[65];
	struct td_buf key, sts;
	bool ok;

	td_buf_init(&key);
	td_buf_init(&sts);
	td_buf_appends(&key, "AWS4");
	td_buf_appends(&key, secret);
	sha256_hex(canonical, len, hash);
	td_buf_printf(&sts, TD_SIGV4_ALGORITHM "\n%s\n%.8s/%s/%s/" TERMINATOR "\n%s", amz_date,
		      amz_date, region, service, hash);
	ok = !td_buf_failed(&key) && !td_buf_failed(&sts) &&
	     hmac256(key.data, key.len, amz_date, strnlen(amz_date, 8), k) &&
	     hmac256(k, sizeof k, region, strlen(region), k2) &&
	     hmac256(k2, sizeof k2, service, strlen(service), k) &&
	     hmac256(k, sizeof k, TERMINATOR, strlen(TERMINATOR), k2) &&
	     hmac256(k2, sizeof k2, sts.data, sts.len, k);
	if (ok)
		to_hex(k, sizeof k, sig);
	if (key.data)
		OPENSSL_cleanse(key.data, key.len);
	OPENSSL_cleanse(k2, sizeof k2);
	OPENSSL_cleanse(k, sizeof k);
	td_buf_free(&key);
	td_buf_free(&sts);
	return ok ? 0 : -TD_ENOMEM;
}

/* ---- the Authorization header ---- */

static bool key_id_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '*';
}

static bool scope_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

static bool header_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

/* Copies one '/'-separated part of the Credential into out[cap] after checking it. */
static int credential_part(const char *p, size_t len, size_t at, const char *what, bool (*ok)(char),
			   char *out, size_t cap, char *err, size_t errlen)
{
	char shown[64];
	bool good = len > 0 && len < cap;
	for (size_t i = 0; good && i < len; i++)
		good = ok(p[i]);
	if (!good)
		return td_fail(err, errlen,
			       "Authorization header: the %s \"%s\" of the Credential (byte %zu) "
			       "is not valid",
			       what, td_shown(p, len, shown), at + 1);
	memcpy(out, p, len);
	out[len] = '\0';
	return 0;
}

static int parse_credential(const char *p, size_t len, size_t at, struct td_sigv4_auth *out,
			    char *err, size_t errlen)
{
	const char *parts[5];
	size_t lens[5], offs[5], n = 0, start = 0;
	char shown[64];

	for (size_t i = 0; i <= len; i++) {
		if (i < len && p[i] != '/')
			continue;
		if (n == 5)
			return td_fail(
			    err, errlen,
			    "Authorization header: the Credential \"%s\" at byte %zu has "
			    "more than 5 '/'-separated parts "
			    "(AKID/DATE/REGION/SERVICE/aws4_request)",
			    td_shown(p, len, shown), at + 1);
		parts[n] = p + start;
		lens[n] = i - start;
		offs[n] = at + start;
		n++;
		start = i + 1;
	}
	if (n != 5)
		return td_fail(err, errlen,
			       "Authorization header: the Credential \"%s\" at byte %zu is not "
			       "AKID/DATE/REGION/SERVICE/aws4_request",
			       td_shown(p, len, shown), at + 1);
	if (credential_part(parts[0], lens[0], offs[0], "access key id", key_id_char,
			    out->access_key, sizeof out->access_key, err, errlen) < 0)
		return -TD_EINVAL;
	bool date_ok = lens[1] == 8;
	for (size_t i = 0; date_ok && i < 8; i++)
		date_ok = parts[1][i] >= '0' && parts[1][i] <= '9';
	if (!date_ok)
		return td_fail(err, errlen,
			       "Authorization header: the date \"%s\" of the Credential (byte "
			       "%zu) is not YYYYMMDD",
			       td_shown(parts[1], lens[1], shown), offs[1] + 1);
	memcpy(out->date, parts[1], 8);
	out->date[8] = '\0';
	if (credential_part(parts[2], lens[2], offs[2], "region", scope_char, out->region,
			    sizeof out->region, err, errlen) < 0 ||
	    credential_part(parts[3], lens[3], offs[3], "service", scope_char, out->service,
			    sizeof out->service, err, errlen) < 0)
		return -TD_EINVAL;
	if (lens[4] != strlen(TERMINATOR) || memcmp(parts[4], TERMINATOR, lens[4]) != 0)
		return td_fail(err, errlen,
			       "Authorization header: the Credential must end with "
			       "\"" TERMINATOR "\", not \"%s\" (byte %zu)",
			       td_shown(parts[4], lens[4], shown), offs[4] + 1);
	return 0;
}

static int parse_signed_headers(const char *p, size_t len, size_t at, struct td_sigv4_auth *out,
				char *err, size_t errlen)
{
	const char *prev = NULL;
	size_t prev_len = 0, count = 0;
	bool host = false;
	char shown[64];

	if (len == 0 || len > TD_SIGV4_SIGNED_HEADERS_MAX)
		return td_fail(err, errlen,
			       "Authorization header: SignedHeaders at byte %zu must have 1 to %d "
			       "characters",
			       at + 1, TD_SIGV4_SIGNED_HEADERS_MAX);
	for (size_t i = 0; i <= len;) {
		size_t j = i;
		while (j < len && p[j] != ';')
			j++;
		size_t n = j - i;
		bool good = n > 0;
		for (size_t k = i; good && k < j; k++)
			good = header_name_char(p[k]);
		if (!good)
			return td_fail(err, errlen,
				       "Authorization header: SignedHeaders has a malformed name "
				       "\"%s\" at byte %zu (lower-case names separated by ';')",
				       td_shown(p + i, n, shown), at + i + 1);
		if (prev) {
			size_t m = n < prev_len ? n : prev_len;
			int c = memcmp(prev, p + i, m);
			if (c > 0 || (c == 0 && prev_len >= n))
				return td_fail(err, errlen,
					       "Authorization header: SignedHeaders is not sorted "
					       "or repeats a name: \"%s\" at byte %zu",
					       td_shown(p + i, n, shown), at + i + 1);
		}
		if (++count > TD_SIGV4_SIGNED_HEADERS_MAXN)
			return td_fail(err, errlen,
				       "Authorization header: SignedHeaders names more than %d "
				       "headers",
				       TD_SIGV4_SIGNED_HEADERS_MAXN);
		if (n == 4 && memcmp(p + i, "host", 4) == 0)
			host = true;
		prev = p + i;
		prev_len = n;
		i = j + 1;
	}
	if (!host)
		return td_fail(err, errlen,
			       "Authorization header: SignedHeaders must include 'host'");
	memcpy(out->signed_headers, p, len);
	out->signed_headers[len] = '\0';
	return 0;
}

int td_sigv4_parse_authorization(const char *value, size_t len, struct td_sigv4_auth *out,
				 char *err, size_t errlen)
{
	size_t alen = strlen(TD_SIGV4_ALGORITHM), i = 0;
	bool have_cred = false, have_signed = false, have_sig = false;
	char shown[64];

	memset(out, 0, sizeof *out);
	while (i < len && blank(value[i]))
		i++;
	if (len - i < alen || memcmp(value + i, TD_SIGV4_ALGORITHM, alen) != 0 ||
	    (len - i > alen && !blank(value[i + alen]))) {
		size_t n = 0;
		while (i + n < len && !blank(value[i + n]))
			n++;
		return td_fail(err, errlen,
			       "Authorization header: the algorithm must be " TD_SIGV4_ALGORITHM
			       ", found \"%s\"",
			       td_shown(value + i, n, shown));
	}
	i += alen;
	while (i < len) {
		while (i < len && (blank(value[i]) || value[i] == ','))
			i++;
		if (i == len)
			break;
		size_t start = i;
		while (i < len && value[i] != ',' && !blank(value[i]))
			i++;
		const char *part = value + start;
		size_t plen = i - start;
		const char *eq = memchr(part, '=', plen);
		if (!eq)
			return td_fail(
			    err, errlen,
			    "Authorization header: expected NAME=VALUE at byte %zu, found "
			    "\"%s\"",
			    start + 1, td_shown(part, plen, shown));
		size_t nlen = (size_t)(eq - part), voff = start + nlen + 1;
		const char *v = eq + 1;
		size_t vlen = plen - nlen - 1;
		if (nlen == 10 && memcmp(part, "Credential", 10) == 0) {
			if (have_cred)
				return td_fail(err, errlen,
					       "Authorization header: Credential is repeated at "
					       "byte %zu",
					       start + 1);
			if (parse_credential(v, vlen, voff, out, err, errlen) < 0)
				return -TD_EINVAL;
			have_cred = true;
		} else if (nlen == 13 && memcmp(part, "SignedHeaders", 13) == 0) {
			if (have_signed)
				return td_fail(err, errlen,
					       "Authorization header: SignedHeaders is repeated at "
					       "byte %zu",
					       start + 1);
			if (parse_signed_headers(v, vlen, voff, out, err, errlen) < 0)
				return -TD_EINVAL;
			have_signed = true;
		} else if (nlen == 9 && memcmp(part, "Signature", 9) == 0) {
			bool good = !have_sig && vlen == 64;
			for (size_t k = 0; good && k < 64; k++)
				good = (v[k] >= '0' && v[k] <= '9') || (v[k] >= 'a' && v[k] <= 'f');
			if (!good)
				return td_fail(err, errlen,
					       "Authorization header: the Signature at byte %zu "
					       "must be given once, as 64 lower-case hex digits",
					       voff + 1);
			memcpy(out->signature, v, 64);
			out->signature[64] = '\0';
			have_sig = true;
		} else {
			return td_fail(err, errlen,
				       "Authorization header: unknown part \"%s\" at byte %zu "
				       "(expected Credential, SignedHeaders, Signature)",
				       td_shown(part, nlen, shown), start + 1);
		}
	}
	if (!have_cred || !have_signed || !have_sig)
		return td_fail(err, errlen, "Authorization header requires '%s' parameter",
			       !have_cred     ? "Credential"
			       : !have_signed ? "SignedHeaders"
					      : "Signature");
	return 0;
}

/* ---- dates ---- */

static bool take(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

int td_sigv4_parse_date(const char *s, long long *epoch_ms, char *err, size_t errlen)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, mo, d, h, mi, se;
	char shown[64];
	size_t n = strnlen(s, 17);

	if (n != 16 || s[8] != 'T' || s[15] != 'Z' || !take(s, 4, &y) || !take(s + 4, 2, &mo) ||
	    !take(s + 6, 2, &d) || !take(s + 9, 2, &h) || !take(s + 11, 2, &mi) ||
	    !take(s + 13, 2, &se) || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 ||
	    mi > 59 || se > 60 || y < 1970)
		return td_fail(err, errlen, "X-Amz-Date \"%s\" is not YYYYMMDDTHHMMSSZ",
			       td_shown(s, n, shown));
	if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return td_fail(err, errlen, "X-Amz-Date \"%s\" is not a date",
			       td_shown(s, n, shown));
	struct tm tm = {.tm_year = y - 1900,
			.tm_mon = mo - 1,
			.tm_mday = d,
			.tm_hour = h,
			.tm_min = mi,
			.tm_sec = se};
	*epoch_ms = (long long)timegm(&tm) * 1000;
	return 0;
}

void td_sigv4_format_date(long long epoch_ms, char out[17])
{
	time_t t = (time_t)(epoch_ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* ---- signing ---- */

struct name_ref {
	const char *name;
};

static int name_cmp(const void *a, const void *b)
{
	return strcasecmp(((const struct name_ref *)a)->name, ((const struct name_ref *)b)->name);
}

int td_sigv4_authorization(const struct td_sigv4_request *req, const char *amz_date,
			   const struct td_sigv4_signer *signer, struct td_buf *out, char *err,
			   size_t errlen)
{
	struct name_ref *names = NULL;
	struct td_buf signed_headers, canonical;
	char sig[65];
	int rc = -TD_ENOMEM;

	td_buf_init(&signed_headers);
	td_buf_init(&canonical);
	if (req->nheaders == 0)
		return td_fail(err, errlen, "a signed request needs at least the Host header");
	names = malloc(req->nheaders * sizeof *names);
	if (!names)
		goto done;
	for (size_t i = 0; i < req->nheaders; i++)
		names[i].name = req->headers[i].name;
	qsort(names, req->nheaders, sizeof *names, name_cmp);
	for (size_t i = 0; i < req->nheaders; i++) {
		if (i > 0 && strcasecmp(names[i].name, names[i - 1].name) == 0)
			continue;
		if (signed_headers.len > 0)
			td_buf_appendc(&signed_headers, ';');
		for (const char *c = names[i].name; *c; c++)
			td_buf_appendc(&signed_headers,
				       (*c >= 'A' && *c <= 'Z') ? (char)(*c - 'A' + 'a') : *c);
	}
	if (td_buf_failed(&signed_headers))
		goto done;
	rc = td_sigv4_canonical_request(req, signed_headers.data, &canonical, err, errlen);
	if (rc < 0)
		goto done;
	rc = td_sigv4_signature(canonical.data, canonical.len, signer->secret, amz_date,
				signer->region, signer->service, sig);
	if (rc < 0)
		goto done;
	td_buf_printf(out,
		      TD_SIGV4_ALGORITHM " Credential=%s/%.8s/%s/%s/" TERMINATOR
					 ", SignedHeaders=%s, Signature=%s",
		      signer->access_key, amz_date, signer->region, signer->service,
		      signed_headers.data, sig);
	rc = td_buf_failed(out) ? -TD_ENOMEM : 0;
done:
	free(names);
	td_buf_free(&signed_headers);
	td_buf_free(&canonical);
	return rc;
}

/* ---- verification ---- */

static int refuse(struct td_sigv4_verdict *v, int status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int refuse(struct td_sigv4_verdict *v, int status, const char *type, const char *fmt, ...)
{
	va_list ap;
	v->status = status;
	v->type = type;
	va_start(ap, fmt);
	vsnprintf(v->message, sizeof v->message, fmt, ap);
	va_end(ap);
	return -TD_EINVAL;
}

static const char *secret_of(const struct td_map *credentials, const char *key)
{
	for (size_t i = 0; credentials && i < credentials->n; i++)
		if (strcmp(credentials->keys[i], key) == 0)
			return credentials->values[i];
	return NULL;
}

int td_sigv4_verify(const struct td_sigv4_request *req, const struct td_map *credentials,
		    long long now_ms, struct td_sigv4_verdict *v)
{
	struct td_sigv4_auth auth;
	struct td_buf canonical;
	char msg[400], want[65], shown[64];
	long long t_ms;
	int rc;

	memset(v, 0, sizeof *v);
	const char *authz = header_value(req, "Authorization");
	if (!authz)
		return refuse(v, 403, "MissingAuthenticationTokenException",
			      "Missing Authentication Token");
	while (blank(*authz))
		authz++;
	if (strncmp(authz, TD_SIGV4_ALGORITHM, strlen(TD_SIGV4_ALGORITHM)) != 0)
		return refuse(v, 403, "MissingAuthenticationTokenException",
			      "Missing Authentication Token: the Authorization header is not an "
			      "AWS Signature Version 4 (" TD_SIGV4_ALGORITHM ")");
	if (td_sigv4_parse_authorization(authz, strlen(authz), &auth, msg, sizeof msg) < 0)
		return refuse(v, 400, "IncompleteSignatureException", "%s", msg);
	const char *date = header_value(req, "X-Amz-Date");
	if (!date)
		return refuse(v, 400, "IncompleteSignatureException",
			      "Authorization header requires existence of a 'X-Amz-Date' header");
	if (td_sigv4_parse_date(date, &t_ms, msg, sizeof msg) < 0)
		return refuse(v, 400, "IncompleteSignatureException", "%s", msg);
	if (memcmp(auth.date, date, 8) != 0)
		return refuse(v, 400, "IncompleteSignatureException",
			      "Date in Credential scope does not match YYYYMMDD from ISO-8601 "
			      "version of date from HTTP: '%s' != '%.8s', from '%.16s'",
			      auth.date, date, date);
	if (strcmp(auth.service, SERVICE) != 0)
		return refuse(v, 403, "InvalidSignatureException",
			      "Credential should be scoped to correct service: '" SERVICE "', "
			      "not '%s'",
			      auth.service);
	const char *secret = secret_of(credentials, auth.access_key);
	if (!secret)
		return refuse(v, 403, "UnrecognizedClientException",
			      "The security token included in the request is invalid (unknown "
			      "access key id %s)",
			      td_shown(auth.access_key, strlen(auth.access_key), shown));
	if (t_ms < now_ms - TD_SIGV4_MAX_SKEW_MS || t_ms > now_ms + TD_SIGV4_MAX_SKEW_MS) {
		char now[17], edge[17];
		bool old = t_ms < now_ms;
		td_sigv4_format_date(now_ms, now);
		td_sigv4_format_date(
		    old ? now_ms - TD_SIGV4_MAX_SKEW_MS : now_ms + TD_SIGV4_MAX_SKEW_MS, edge);
		return old ? refuse(v, 403, "InvalidSignatureException",
				    "Signature expired: %.16s is now earlier than %s (%s - 5 min.)",
				    date, edge, now)
			   : refuse(v, 403, "InvalidSignatureException",
				    "Signature not yet current: %.16s is still later than %s (%s + "
				    "5 min.)",
				    date, edge, now);
	}
	td_buf_init(&canonical);
	rc = td_sigv4_canonical_request(req, auth.signed_headers, &canonical, msg, sizeof msg);
	if (rc == 0)
		rc = td_sigv4_signature(canonical.data, canonical.len, secret, date, auth.region,
					auth.service, want);
	td_buf_free(&canonical);
	if (rc == -TD_EINVAL)
		return refuse(v, 400, "IncompleteSignatureException", "%s", msg);
	if (rc < 0) {
		refuse(v, 500, "ServiceException", "out of memory verifying the signature");
		return -TD_ENOMEM;
	}
	if (CRYPTO_memcmp(want, auth.signature, 64) != 0)
		return refuse(v, 403, "InvalidSignatureException",
			      "The request signature we calculated does not match the signature "
			      "you provided. Check your AWS Secret Access Key and signing method. "
			      "Consult the service documentation for details.");
	memcpy(v->access_key, auth.access_key, sizeof v->access_key);
	return 0;
}
