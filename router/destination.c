/*
 * Destinations (see destination.h). A file destination appends the record and a
 * newline with one write(2) on an O_APPEND descriptor and fsyncs it, so a record that
 * was reported stored survives a crash, and records from concurrent writers never
 * interleave. An http destination POSTs the record through the engine's libcurl multi
 * handle; any 2xx answer means stored. A broker destination hands the record to its
 * source's publish callback (td_source_publish), which answers when the broker took it.
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
#include <triggerd/source.h>

enum dest_kind { DEST_FILE, DEST_HTTP, DEST_BROKER };

struct td_destination {
	enum dest_kind kind;
	int refs;
	char *spec;
	struct td_engine *engine;
	int fd;			    /* file */
	struct curl_slist *headers; /* http */
	struct td_source *source;   /* broker */
	const char *target;	    /* broker: topic or stream, inside spec */
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

static const char *const broker_schemes[] = {"mqtt://", "redis://", "kafka://"};

struct td_destination *td_destination_create(const char *spec, struct td_engine *engine,
					     td_destination_find_source find, void *find_arg,
					     char *err, size_t errlen)
{
	struct td_destination *d = calloc(1, sizeof *d);
	if (!d || !(d->spec = strdup(spec))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	d->refs = 1;
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
		for (size_t i = 0; i < sizeof broker_schemes / sizeof broker_schemes[0]; i++) {
			size_t n = strlen(broker_schemes[i]);
			if (strncmp(spec, broker_schemes[i], n) != 0)
				continue;
			char name[256];
			const char *slash = strchr(spec + n, '/');
			if (!slash || (size_t)(slash - spec - n) >= sizeof name)
				break;
			memcpy(name, spec + n, (size_t)(slash - spec - n));
			name[slash - spec - n] = '\0';
			d->kind = DEST_BROKER;
			d->target = d->spec + (slash + 1 - spec);
			d->source = find ? find(find_arg, name) : NULL;
			if (!d->source) {
				snprintf(err, errlen, "destination %s: no running source \"%s\"",
					 spec, name);
				goto fail;
			}
			if (!td_source_can_publish(d->source)) {
				snprintf(
				    err, errlen,
				    "destination %s: source \"%s\" cannot publish in this build",
				    spec, name);
				goto fail;
			}
			return d;
		}
		snprintf(err, errlen, "destination %s: unknown kind of destination", spec);
		goto fail;
	}
	return d;
fail:
	td_destination_destroy(d);
	return NULL;
}

static void destination_unref(struct td_destination *d)
{
	if (!d || --d->refs > 0)
		return;
	if (d->fd >= 0)
		close(d->fd);
	curl_slist_free_all(d->headers);
	free(d->spec);
	free(d);
}

void td_destination_destroy(struct td_destination *d)
{
	destination_unref(d);
}

const char *td_destination_spec(const struct td_destination *d)
{
	return d->spec;
}

static void report(void *arg)
{
	struct pending_send *p = arg;
	p->done(p->arg, p->ok, p->ok ? NULL : p->error);
	destination_unref(p->d);
	free(p->body);
	free(p);
}

static void published(void *arg, bool ok, const char *error)
{
	struct pending_send *p = arg;
	p->ok = ok;
	if (!ok)
		snprintf(p->error, sizeof p->error, "%s: %s", p->d->spec, error ? error : "failed");
	report(p);
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
	d->refs++;
	p->done = done;
	p->arg = arg;
	if (d->kind == DEST_BROKER) {
		td_source_publish(d->source, d->target, record, len, published, p);
		return;
	}
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
