/*
 * `triggerctl usage [--admin URL] [--token TOKEN]`: asks a running triggerd for its
 * metering (GET /v1/usage on the admin listener, default http://127.0.0.1:7071; the
 * token also comes from TRIGGERD_ADMIN_TOKEN) and prints one row per function:
 * requests, errors, throttles, billed milliseconds, GB-seconds, cold starts and the
 * p50/p99 duration in ms. The answer is checked member by member: a missing or
 * mistyped member is reported with the function and the member's name, never guessed.
 * Exit status 0, or 2 with the reason on stderr (usage, connection, HTTP status, bad
 * answer). Like every command of triggerctl's table it gets the arguments after its
 * name and returns -1 for a usage error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "http_body.h"

#define DEFAULT_ADMIN "http://127.0.0.1:7071"
#define EXIT_FAIL     2

int td_cli_usage(int argc, char **argv);

/* GETs url; 0 with the body in *a, else the reason printed. */
static int get(const char *url, const char *token, struct cli_body *a)
{
	CURL *c = curl_easy_init();
	struct curl_slist *headers = NULL;
	char errbuf[CURL_ERROR_SIZE] = "", *auth = NULL;
	long status = 0;
	int rc = -1;

	if (!c)
		goto fail;
	if (token) {
		if (asprintf(&auth, "Authorization: Bearer %s", token) < 0) {
			auth = NULL;
			goto fail;
		}
		headers = curl_slist_append(headers, auth);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, cli_body_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	CURLcode cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		fprintf(stderr, "triggerctl: usage: GET %s failed: %s\n", url,
			a->too_large ? "the answer is over 64 MB"
				     : (errbuf[0] ? errbuf : curl_easy_strerror(cc)));
		goto fail;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		fprintf(stderr, "triggerctl: usage: GET %s answered HTTP %ld: %.300s\n", url,
			status, a->data ? a->data : "");
		goto fail;
	}
	rc = 0;
fail:
	if (!c)
		fprintf(stderr, "triggerctl: usage: cannot start libcurl\n");
	curl_slist_free_all(headers);
	free(auth);
	if (c)
		curl_easy_cleanup(c);
	return rc;
}

struct column {
	const char *member;
	const char *title;
	int integer; /* else a real number */
};

static const struct column columns[] = {
    {"requests", "REQUESTS", 1},     {"errors", "ERRORS", 1},
    {"throttles", "THROTTLES", 1},   {"billed_ms", "BILLED_MS", 1},
    {"gb_seconds", "GB_SECONDS", 0}, {"cold_starts", "COLD_STARTS", 1},
    {"p50_ms", "P50_MS", 0},	     {"p99_ms", "P99_MS", 0},
};

#define NCOLUMNS (sizeof columns / sizeof columns[0])

/* Checks the whole answer before printing anything; 0 or -1 with the reason printed. */
static int check_answer(const json_t *root)
{
	size_t i;
	json_t *fn;

	if (!json_is_array(root)) {
		fprintf(stderr, "triggerctl: usage: the answer is not a JSON array of functions\n");
		return -1;
	}
	json_array_foreach(root, i, fn)
	{
		const json_t *name = json_object_get(fn, "name");
		if (!json_is_object(fn) || !json_is_string(name)) {
			fprintf(stderr,
				"triggerctl: usage: element %zu of the answer is not an object "
				"with a string \"name\"\n",
				i);
			return -1;
		}
		for (size_t k = 0; k < NCOLUMNS; k++) {
			const json_t *v = json_object_get(fn, columns[k].member);
			if (columns[k].integer ? !json_is_integer(v) : !json_is_number(v)) {
				fprintf(stderr,
					"triggerctl: usage: function \"%.64s\": member \"%s\" is "
					"missing or not %s\n",
					json_string_value(name), columns[k].member,
					columns[k].integer ? "an integer" : "a number");
				return -1;
			}
		}
	}
	return 0;
}

static void print_table(const json_t *root)
{
	size_t i, width = strlen("FUNCTION");
	json_t *fn;

	json_array_foreach(root, i, fn)
	{
		size_t n = strlen(json_string_value(json_object_get(fn, "name")));
		if (n > width)
			width = n;
	}
	printf("%-*s", (int)width, "FUNCTION");
	for (size_t k = 0; k < NCOLUMNS; k++)
		printf("  %12s", columns[k].title);
	putchar('\n');
	json_array_foreach(root, i, fn)
	{
		printf("%-*s", (int)width, json_string_value(json_object_get(fn, "name")));
		for (size_t k = 0; k < NCOLUMNS; k++) {
			const json_t *v = json_object_get(fn, columns[k].member);
			if (columns[k].integer)
				printf("  %12lld", (long long)json_integer_value(v));
			else
				printf("  %12.*f",
				       strcmp(columns[k].member, "gb_seconds") == 0 ? 6 : 3,
				       json_number_value(v));
		}
		putchar('\n');
	}
}

int td_cli_usage(int argc, char **argv)
{
	const char *admin = DEFAULT_ADMIN, *token = getenv("TRIGGERD_ADMIN_TOKEN");
	struct cli_body a = {0};
	json_t *root = NULL;
	json_error_t jerr;
	char *url = NULL;
	int rc = EXIT_FAIL;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--admin") == 0 && i + 1 < argc)
			admin = argv[++i];
		else if (strcmp(argv[i], "--token") == 0 && i + 1 < argc)
			token = argv[++i];
		else
			return -1;
	}
	size_t n = strlen(admin);
	while (n && admin[n - 1] == '/')
		n--;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (asprintf(&url, "%.*s/v1/usage", (int)n, admin) < 0) {
		url = NULL;
		fprintf(stderr, "triggerctl: usage: out of memory\n");
		goto done;
	}
	if (get(url, token, &a) < 0)
		goto done;
	root = json_loadb(a.data ? a.data : "", a.len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		fprintf(stderr,
			"triggerctl: usage: the answer of %s is not JSON: line %d, column %d: %s\n",
			url, jerr.line, jerr.column, jerr.text);
		goto done;
	}
	if (check_answer(root) < 0)
		goto done;
	print_table(root);
	rc = 0;
done:
	curl_global_cleanup();
	json_decref(root);
	free(a.data);
	free(url);
	return rc;
}
