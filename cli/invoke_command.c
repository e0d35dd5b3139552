/*
 * `triggerctl invoke FUNCTION [PAYLOAD|@file] [--admin URL] [--token TOKEN] [--event]`:
 * invokes a function of a running triggerd through the Lambda Invoke API on its admin
 * listener (default http://127.0.0.1:7071; the token also comes from
 * TRIGGERD_ADMIN_TOKEN). The payload is JSON text or @file (default {}); it is checked
 * here first, so a typo is reported with its line and column without a round trip.
 * RequestResponse prints the result on stdout; --event queues it (Event) and prints
 * the request id. Exit status 0 on success, 1 when the function failed (its error
 * document is printed), 2 with the reason on stderr for usage, connection, an unknown
 * function or any other API error. It gets the arguments after its name and returns -1
 * for a usage error.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>

#include "http_body.h"

#define DEFAULT_ADMIN  "http://127.0.0.1:7071"
#define EXIT_FUNCTION  1
#define EXIT_FAIL      2
#define REQUEST_ID_MAX 64

int td_cli_invoke(int argc, char **argv);

struct exchange {
	struct cli_body body;
	bool function_error;
	char request_id[REQUEST_ID_MAX];
};

/* Header lines are not NUL-terminated; a value is copied only when it fits. */
static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct exchange *x = arg;
	size_t len = size * n;
	static const char fe[] = "X-Amz-Function-Error:", rid[] = "x-amzn-RequestId:";
	if (len >= sizeof fe - 1 && strncasecmp(p, fe, sizeof fe - 1) == 0)
		x->function_error = true;
	if (len >= sizeof rid - 1 && strncasecmp(p, rid, sizeof rid - 1) == 0) {
		size_t i = sizeof rid - 1, end = len;
		while (i < end && (p[i] == ' ' || p[i] == '\t'))
			i++;
		while (end > i && (p[end - 1] == '\r' || p[end - 1] == '\n' || p[end - 1] == ' '))
			end--;
		if (end - i < sizeof x->request_id) {
			memcpy(x->request_id, p + i, end - i);
			x->request_id[end - i] = '\0';
		}
	}
	return len;
}

/* Reads @file or takes the text; NULL with the reason printed. */
static char *payload_argument(const char *arg, size_t *len)
{
	if (arg[0] != '@') {
		*len = strlen(arg);
		return strdup(arg);
	}
	FILE *f = fopen(arg + 1, "rb");
	char *buf = NULL;
	size_t n = 0;
	if (!f) {
		fprintf(stderr, "triggerctl: invoke: cannot read %s: %s\n", arg + 1,
			strerror(errno));
		return NULL;
	}
	for (;;) {
		char *bigger = realloc(buf, n + 65536 + 1);
		if (!bigger) {
			fprintf(stderr, "triggerctl: invoke: out of memory reading %s\n", arg + 1);
			free(buf);
			buf = NULL;
			break;
		}
		buf = bigger;
		size_t got = fread(buf + n, 1, 65536, f);
		n += got;
		if (got < 65536)
			break;
	}
	if (buf && ferror(f)) {
		fprintf(stderr, "triggerctl: invoke: cannot read %s: %s\n", arg + 1,
			strerror(errno));
		free(buf);
		buf = NULL;
	}
	fclose(f);
	if (buf) {
		buf[n] = '\0';
		*len = n;
	}
	return buf;
}

/* Prints an API error answer: its Type and Message when it has them. */
static void print_api_error(long status, const struct exchange *x)
{
	json_error_t jerr;
	json_t *doc = x->body.data ? json_loadb(x->body.data, x->body.len, 0, &jerr) : NULL;
	const char *msg = json_string_value(json_object_get(doc, "Message"));
	if (!msg)
		msg = json_string_value(json_object_get(doc, "error"));
	if (msg)
		fprintf(stderr, "triggerctl: invoke: HTTP %ld: %s\n", status, msg);
	else
		fprintf(stderr, "triggerctl: invoke: HTTP %ld: %.300s\n", status,
			x->body.data ? x->body.data : "");
	json_decref(doc);
}

int td_cli_invoke(int argc, char **argv)
{
	const char *admin = DEFAULT_ADMIN, *token = getenv("TRIGGERD_ADMIN_TOKEN");
	const char *function = NULL, *payload_arg = NULL;
	bool event = false;
	struct exchange x = {0};
	struct curl_slist *headers = NULL;
	char *payload = NULL, *url = NULL, *escaped = NULL, *auth = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	size_t plen = 0;
	json_error_t jerr;
	CURL *c = NULL;
	long status = 0;
	int rc = EXIT_FAIL;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--admin") == 0 && i + 1 < argc)
			admin = argv[++i];
		else if (strcmp(argv[i], "--token") == 0 && i + 1 < argc)
			token = argv[++i];
		else if (strcmp(argv[i], "--event") == 0)
			event = true;
		else if (argv[i][0] == '-' && argv[i][1] == '-')
			return -1;
		else if (!function)
			function = argv[i];
		else if (!payload_arg)
			payload_arg = argv[i];
		else
			return -1;
	}
	if (!function || !*function)
		return -1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	payload = payload_argument(payload_arg ? payload_arg : "{}", &plen);
	if (!payload)
		goto done;
	json_t *check = json_loadb(payload, plen, JSON_DECODE_ANY, &jerr);
	if (!check) {
		fprintf(stderr,
			"triggerctl: invoke: the payload is not JSON: line %d, column %d: %s\n",
			jerr.line, jerr.column, jerr.text);
		goto done;
	}
	json_decref(check);
	c = curl_easy_init();
	escaped = c ? curl_easy_escape(c, function, 0) : NULL;
	size_t n = strlen(admin);
	while (n && admin[n - 1] == '/')
		n--;
	if (!escaped || asprintf(&url, "%.*s/2015-03-31/functions/%s/invocations", (int)n, admin,
				 escaped) < 0) {
		url = NULL;
		fprintf(stderr, "triggerctl: invoke: out of memory\n");
		goto done;
	}
	headers = curl_slist_append(headers, "Content-Type: application/json");
	headers = curl_slist_append(headers, event ? "X-Amz-Invocation-Type: Event"
						   : "X-Amz-Invocation-Type: RequestResponse");
	headers = curl_slist_append(headers, "Expect:");
	if (token) {
		if (asprintf(&auth, "Authorization: Bearer %s", token) < 0) {
			auth = NULL;
			goto done;
		}
		headers = curl_slist_append(headers, auth);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)plen);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, cli_body_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &x.body);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 960L); /* longer than the longest function timeout */
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	CURLcode cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		fprintf(stderr, "triggerctl: invoke: POST %s failed: %s\n", url,
			x.body.too_large ? "the answer is over 64 MB"
					 : (errbuf[0] ? errbuf : curl_easy_strerror(cc)));
		goto done;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (event && status == 202) {
		printf("queued %s\n", x.request_id[0] ? x.request_id : "(no request id)");
		rc = 0;
	} else if (!event && status == 200) {
		if (x.body.len)
			fwrite(x.body.data, 1, x.body.len, stdout);
		if (x.body.len && x.body.data[x.body.len - 1] != '\n')
			putchar('\n');
		if (x.function_error)
			fprintf(stderr, "triggerctl: invoke: function %s failed (request %s)\n",
				function, x.request_id[0] ? x.request_id : "?");
		rc = x.function_error ? EXIT_FUNCTION : 0;
	} else {
		print_api_error(status, &x);
	}
done:
	if (c)
		curl_easy_cleanup(c);
	curl_free(escaped);
	curl_slist_free_all(headers);
	curl_global_cleanup();
	free(auth);
	free(url);
	free(payload);
	free(x.body.data);
	return rc;
}
