/*
 * libFuzzer target for router/sigv4.c, the SigV4 verifier of the Invoke API.
 *
 * Input: any bytes. They are parsed as an Authorization header (length-delimited, so
 * NUL bytes and missing terminators are exercised); a success must give the parts the
 * parser promises (a 64-digit lower-case hex signature, an 8-digit date, "host" among
 * the signed headers), a failure a message. Then, NUL-terminated and split into lines,
 * they make a whole request: line 1 the raw path (with a query after '?'), line 2 the
 * Authorization header, line 3 the X-Amz-Date, later "Name: value" lines headers, the
 * rest after an empty line the body. The canonical URI, query and request and the
 * verifier must never crash or read out of bounds, and a refusal always says why.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <triggerd/errors.h>

#include "../../router/sigv4.h"

#define MAX_HEADERS 16

static void check_auth(const struct td_sigv4_auth *a)
{
	if (strlen(a->signature) != 64 || strspn(a->signature, "0123456789abcdef") != 64 ||
	    strlen(a->date) != 8 || strspn(a->date, "0123456789") != 8 || !a->access_key[0] ||
	    !a->region[0] || !a->service[0])
		abort();
	const char *h = a->signed_headers;
	if (strcmp(h, "host") != 0 && strncmp(h, "host;", 5) != 0 && !strstr(h, ";host;") &&
	    !(strlen(h) >= 5 && strcmp(h + strlen(h) - 5, ";host") == 0))
		abort();
}

static char *next_line(char **p)
{
	char *line = *p, *nl;
	if (!line)
		return NULL;
	nl = strchr(line, '\n');
	if (nl) {
		*nl = '\0';
		*p = nl + 1;
	} else {
		*p = NULL;
	}
	return line;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct td_sigv4_auth auth;
	char err[256];
	err[0] = '\0';
	if (td_sigv4_parse_authorization((const char *)data, size, &auth, err, sizeof err) == 0)
		check_auth(&auth);
	else if (!err[0])
		abort();

	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	char *rest = text, *path = next_line(&rest), *authz = next_line(&rest),
	     *date = next_line(&rest);
	struct td_http_header h[MAX_HEADERS + 3];
	size_t n = 0;
	char *query = path ? strchr(path, '?') : NULL;
	if (query)
		*query++ = '\0';
	h[n++] = (struct td_http_header){"Host", "127.0.0.1:7071"};
	if (authz)
		h[n++] = (struct td_http_header){"Authorization", authz};
	if (date)
		h[n++] = (struct td_http_header){"X-Amz-Date", date};
	char *line;
	while (n < MAX_HEADERS + 3 && (line = next_line(&rest)) && *line) {
		char *colon = strchr(line, ':');
		if (!colon)
			continue;
		*colon = '\0';
		h[n++] = (struct td_http_header){line, colon + 1};
	}
	const char *body = rest ? rest : "";
	const struct td_sigv4_request req = {"POST", path ? path : "", query, h, n,
					     body,   strlen(body)};

	struct td_buf out;
	td_buf_init(&out);
	if (td_sigv4_canonical_uri(req.path, &out) == 0 && (out.len == 0 || out.data[0] != '/'))
		abort();
	td_buf_reset(&out);
	err[0] = '\0';
	if (td_sigv4_canonical_query(query, &out, err, sizeof err) == -TD_EINVAL && !err[0])
		abort();
	td_buf_reset(&out);
	err[0] = '\0';
	if (td_sigv4_canonical_request(&req, "host;x-amz-date", &out, err, sizeof err) ==
		-TD_EINVAL &&
	    !err[0])
		abort();
	td_buf_free(&out);

	static char *keys[] = {"AKIDTEST", "K"};
	static char *values[] = {"secret", "s"};
	static const struct td_map creds = {keys, values, 2};
	struct td_sigv4_verdict v;
	long long now = 1704164645000LL; /* 20240102T030405Z */
	int rc = td_sigv4_verify(&req, &creds, now, &v);
	if (rc == -TD_EINVAL && (!v.type || !v.message[0] || v.status < 400))
		abort();

	/* Whatever it is, signing it must work or say why, and then verify. */
	const struct td_sigv4_signer signer = {"AKIDTEST", "secret", "us-east-1", "lambda"};
	struct td_http_header sh[2] = {{"Host", "127.0.0.1:7071"},
				       {"X-Amz-Date", "20240102T030405Z"}};
	struct td_sigv4_request sreq = {"POST", req.path, query, sh, 2, body, strlen(body)};
	struct td_buf a;
	td_buf_init(&a);
	err[0] = '\0';
	rc = td_sigv4_authorization(&sreq, "20240102T030405Z", &signer, &a, err, sizeof err);
	if (rc == 0) {
		struct td_http_header vh[3] = {sh[0], sh[1], {"Authorization", a.data}};
		sreq.headers = vh;
		sreq.nheaders = 3;
		if (td_sigv4_verify(&sreq, &creds, now, &v) != 0)
			abort();
	} else if (rc == -TD_EINVAL && !err[0]) {
		abort();
	}
	td_buf_free(&a);
	free(text);
	return 0;
}
