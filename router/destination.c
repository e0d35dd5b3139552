/*
 * Destinations (see destination.h). A file destination appends the record and a
 * newline with one write(2) on an O_APPEND descriptor and fsyncs it, so a record that
 * was reported stored survives a crash, and records from concurrent writers never
 * interleave. An http destination POSTs the record through the engine's libcurl multi
 * handle; any 2xx answer means stored.
 */
#include "destination.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include <triggerd/engine.h>
#include <triggerd/errors.h>

enum dest_kind { DEST_FILE, DEST_HTTP };

struct td_destination {
	enum dest_kind kind;
	char *spec;
	struct td_engine *engine;
	int fd;             /* file */
	struct curl_slist *headers; /* http */
};

struct pending_send {
	struct td_destination *d;
	void (*done)(void *arg, bool ok, const char *error);
	void *arg;
	bool ok;
	char error[256];
	char *body;
	CURL *easy;
};

static int make_parent_dirs(const char *path)
{
	char *copy = strdup(path);
	if (!copy)
		return -1;
	for (char *p = copy + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, 0755) < 0 && errno != EEXIST) {
			free(copy);
			return -1;
		}
		*p = '/';
	}
	free(copy);
	return 0;
}

struct td_destination *td_destination_create(const char *spec, struct td_engine *engine,
					     char *err, size_t errlen)
{
	struct td_destination *d = calloc(1, sizeof *d);
	if (!d || !(d->spec = strdup(spec))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	d->engine = engine;
	d->fd = -1;
	if (strncmp(spec, "file:", 5) == 0) {
		const char *path = spec + 5;
		if (strncmp(path, "//", 2) == 0)
			path += 2;
		d->kind = DEST_FILE;
		if (make_parent_dirs(path) < 0 ||
		    (d->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) < 0) {
			snprintf(err, errlen, "destination %s: cannot open %s: %s", spec, path,
				 strerror(errno));
			goto fail;
		}
	} else if (strncmp(spec, "http://", 7) == 0 || strncmp(spec, "https://", 8) == 0) {
		d->kind = DEST_HTTP;
		d->headers = curl_slist_append(NULL, "Content-Type: application/json");
		if (!d->headers) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	} else {
		snprintf(err, errlen,
			 "destination %s: this build sends results only to file: and http(s):// "
			 "destinations",
			 spec);
		goto fail;
	}
	return d;
fail:
	td_destination_destroy(d);
	return NULL;
}

void td_destination_destroy(struct td_destination *d)
{
	if (!d)
		return;
	if (d->fd >= 0)
		close(d->fd);
	curl_slist_free_all(d->headers);
	free(d->spec);
	free(d);
}

const char *td_destination_spec(const struct td_destination *d)
{
	return d->spec;
}

static void report(void *arg)
{
	struct pending_send *p = arg;
	p->done(p->arg, p->ok, p->ok ? NULL : p->error);
	free(p->body);
	free(p);
}

static void http_done(void *arg, CURLcode code)
{
	struct pending_send *p = arg;
	long status = 0;
	curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &status);
	p->ok = code == CURLE_OK && status >= 200 && status < 300;
	if (code != CURLE_OK)
		snprintf(p->error, sizeof p->error, "%s: %s", p->d->spec, curl_easy_strerror(code));
	else if (!p->ok)
		snprintf(p->error, sizeof p->error, "%s: HTTP %ld", p->d->spec, status);
	curl_easy_cleanup(p->easy);
	report(p);
}

static size_t discard(char *ptr, size_t size, size_t n, void *arg)
{
	(void)ptr;
	(void)arg;
	return size * n;
}

void td_destination_send(struct td_destination *d, const char *record, size_t len,
			 void (*done)(void *arg, bool ok, const char *error), void *arg)
{
	struct pending_send *p = calloc(1, sizeof *p);
	if (!p) {
		done(arg, false, "out of memory");
		return;
	}
	p->d = d;
	p->done = done;
	p->arg = arg;
	if (d->kind == DEST_FILE) {
		char *line = malloc(len + 1);
		if (line) {
			memcpy(line, record, len);
			line[len] = '\n';
			ssize_t n = write(d->fd, line, len + 1);
			p->ok = n == (ssize_t)(len + 1) && fdatasync(d->fd) == 0;
			free(line);
		}
		if (!p->ok)
			snprintf(p->error, sizeof p->error, "%s: %s", d->spec,
				 line ? strerror(errno) : "out of memory");
		if (td_engine_call(d->engine, report, p) < 0)
			report(p);
		return;
	}
	p->body = malloc(len + 1);
	p->easy = curl_easy_init();
	if (!p->body || !p->easy) {
		curl_easy_cleanup(p->easy);
		snprintf(p->error, sizeof p->error, "out of memory");
		if (td_engine_call(d->engine, report, p) < 0)
			report(p);
		return;
	}
	memcpy(p->body, record, len);
	curl_easy_setopt(p->easy, CURLOPT_URL, d->spec);
	curl_easy_setopt(p->easy, CURLOPT_POSTFIELDS, p->body);
	curl_easy_setopt(p->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(p->easy, CURLOPT_HTTPHEADER, d->headers);
	curl_easy_setopt(p->easy, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(p->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(p->easy, CURLOPT_WRITEFUNCTION, discard);
	if (td_engine_curl_start(d->engine, p->easy, http_done, p) < 0) {
		curl_easy_cleanup(p->easy);
		p->easy = NULL;
		snprintf(p->error, sizeof p->error, "%s: cannot start the request", d->spec);
		if (td_engine_call(d->engine, report, p) < 0)
			report(p);
	}
}
