/*
 * The connector interface. A source kind (kafka, mqtt, redis, webhook, cron) is one
 * const struct td_source_ops in its own file under connectors/, listed with one line in
 * router/registry.c. The router knows a kind only through this table.
 *
 * This part declares what configuration needs: the kind's name, its option table and
 * the size of the options struct that the table fills in, plus a check across options.
 *
 * Loading one source (router/config.c): the options struct (opts_size bytes, zeroed) is
 * filled by td_options_apply(); when that found no error, finish() and then check() run.
 * The struct then belongs to the td_config and is immutable. `name` and `kind` are read
 * by the loader and are not part of the kind's table.
 */
#ifndef TRIGGERD_SOURCE_H
#define TRIGGERD_SOURCE_H

#include <stdbool.h>
#include <stddef.h>

#include <triggerd/config.h>

struct td_source;
struct td_settlement;

struct td_source_ops {
	const char *name;
	const char *summary;		 /* one line for `triggerctl describe` */
	const struct td_option *options; /* ends with a row whose name is NULL */
	size_t opts_size;		 /* the options struct the table fills in */
	/* Optional: checks that involve several options, after the table was applied.
	 * Reports each problem with td_diag_add(diag, file, line, ...); the loader has set
	 * diag->context to the item ("sources[1] \"orders\""), so messages name only the
	 * option: "option 'end' must be after option 'start'". */
	void (*check)(const void *opts, const char *file, int line, struct td_diag *diag);
	/* Optional: fills values that depend on other options (a preset's defaults), after
	 * the table was applied without error and before check. */
	void (*finish)(void *opts);
	/* Optional: the name of a STRING option whose value must differ between all
	 * sources of this kind (webhook: "path"); the loader checks it. */
	const char *unique_option;
	/* Runtime (see "Runtime" below); a NULL callback is skipped. */
	size_t ctx_size;
	int (*start)(struct td_source *src);
	void (*stop)(struct td_source *src);
	void (*settle)(struct td_source *src, void *handle, const struct td_settlement *s);
	void (*destroy)(struct td_source *src);
	/* Optional: publishes one record to target (a topic or a stream) over the source's
	 * connection, for mqtt://, redis:// and kafka:// destinations; done(arg, ok, error)
	 * runs later on the engine thread once the broker took it (or failed). */
	void (*publish)(struct td_source *src, const char *target, const void *record, size_t len,
			void (*done)(void *arg, bool ok, const char *error), void *arg);
};

/* The source kinds, NULL-terminated (router/registry.c). */
extern const struct td_source_ops *const td_source_kinds[];
const struct td_source_ops *td_source_kind(const char *name);

/* ---- Runtime: instances, submit and settle ------------------------------------------
 *
 * A source instance is made by the router from a td_source_conf. The router calls the
 * kind's callbacks on the engine thread:
 *   start    connect, spawn the kind's threads; must not block for long. 0 or -TD_E*.
 *   stop     stop intake: after it returns the kind submits nothing more. It must not
 *            wait for submissions to settle (they settle later, on this thread).
 *   settle   exactly once per td_source_submit(), with its handle: acknowledge to the
 *            source here (DONE), or arrange redelivery (BUSY), or report (FAILED).
 *   destroy  after stop and after every submission settled: free ctx's contents.
 */

struct td_source; /* an instance */
struct td_event;
struct td_engine;
struct td_result; /* function.h */
struct td_http_server;
struct td_global;

enum td_settle_status {
	TD_SETTLE_DONE,	  /* every matched sync invocation succeeded and every async one is
			     durably queued, or nothing matched: acknowledge */
	TD_SETTLE_FAILED, /* a sync invocation failed (result holds its answer): the
			     source decides (webhook: 502; logs: retry or dead-letter) */
	TD_SETTLE_BUSY,	  /* not taken (queue full, concurrency exhausted, shutting down, the
			     queue could not be written): do not acknowledge; deliver again
			     after retry_after_ms */
};

struct td_settlement {
	enum td_settle_status status;
	int accepted;		      /* async invocations queued for these events */
	const char *const *event_ids; /* ids of the submitted events, n_events of them */
	int n_events;
	const struct td_result *result; /* the first sync trigger's answer, or NULL */
	long long retry_after_ms;	/* BUSY: when to try again */
	const char *reason;		/* FAILED/BUSY: a short reason for logs and bodies */
};

/* For connectors. Any thread unless said otherwise; the pointers returned live as long
 * as the instance. */
void *td_source_ctx(struct td_source *src);
const void *td_source_opts(const struct td_source *src); /* the kind's options struct */
const char *td_source_name(const struct td_source *src);
const char *td_source_scope(const struct td_source *src); /* "kafka:orders", for logs */
struct td_engine *td_source_engine(struct td_source *src);
const struct td_global *td_source_global(const struct td_source *src);
/* The shared webhook listener (router/http_server.h). */
struct td_http_server *td_source_webhook_http(struct td_source *src);
/*
 * Hands n events to the router. The router takes over the caller's references (and
 * copies the array). Returns 0: settle() will be called once for the whole batch, with
 * handle, on the engine thread, never inside this call. Or returns -TD_ENOMEM or
 * -TD_ESTATE (the engine stopped): the events were released and settle() will not be
 * called; answer the source as busy.
 */
int td_source_submit(struct td_source *src, struct td_event **events, int n, void *handle);
/* Whether a sync trigger names this source now (it changes on reload): a log source
 * keeps order for sync triggers and may read ahead for async ones. Any thread. */
bool td_source_has_sync_triggers(struct td_source *src);
/* Health for /readyz and /v1/sources: ready or not, and why (copied). */
void td_source_set_ready(struct td_source *src, bool ready, const char *reason);
/* Counts an HTTP response of a webhook source by status (for /metrics). */
void td_source_count_response(struct td_source *src, int status);

/* For destinations (engine thread): whether the kind publishes, and a publish that keeps
 * the instance alive until done() ran. */
bool td_source_can_publish(const struct td_source *src);
void td_source_publish(struct td_source *src, const char *target, const void *record, size_t len,
		       void (*done)(void *arg, bool ok, const char *error), void *arg);

#endif
