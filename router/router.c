/*
 * The router (see router.h): sources in, functions out.
 *
 * A loaded configuration is a generation. Sources and functions are instances made
 * from one generation's settings and hold a reference to it, so a reload can keep an
 * unchanged instance running on the old settings while new ones use the new file; a
 * generation is freed when its last instance is gone.
 *
 * Each source instance has its own compiled rule set: the patterns of the triggers
 * that name it (rule id = index in its trigger list), plus the triggers without a
 * pattern, which take every event. Matching runs on the engine thread against
 * td_event_match_json().
 *
 * A submission (a batch of events from one source call) is settled once: when every
 * sync invocation it started has answered and every async one is committed to the
 * queue. Capacity is checked for the whole submission before anything starts, so a
 * busy answer never leaves half of it queued. Async work is taken from the queue by a
 * pump that keeps each function at its concurrency limit; the queue is committed at
 * most once per engine loop iteration (group commit) in the idle hook, which then
 * settles the submissions waiting for that commit. Events are queued in the envelope's
 * stored form (td_event_encode), which reads back without a JSON parse.
 */
#include "router.h"
#include "engine_loop.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <triggerd/errors.h>
#include <triggerd/log.h>
#include <triggerd/pattern.h>
#include <triggerd/source.h>

#include "../connectors/mqtt_topic.h"
#include "destination.h"
#include "json.h"
#include "metering.h"
#include "queue.h"
#include "retry.h"
#include "router_internal.h"

#define DESTINATION_ATTEMPTS 5
/* Unawaited queue changes (completions, retries) commit within this delay (group_commit). */
#define COMMIT_DELAY_MS 20
#define COMMIT_BATCH	1000

/* ---- generations and lookups ---- */

static struct generation *generation_new(struct td_config *cfg)
{
	struct generation *g = calloc(1, sizeof *g);
	if (!g)
		return NULL;
	g->cfg = cfg;
	g->refs = 1;
	return g;
}

static struct generation *generation_ref(struct generation *g)
{
	g->refs++;
	return g;
}

static void generation_unref(struct generation *g)
{
	if (g && --g->refs == 0) {
		td_config_destroy(g->cfg);
		free(g);
	}
}

static struct td_function *find_function(struct td_router *r, const char *name)
{
	for (size_t i = 0; i < r->nfunctions; i++)
		if (strcmp(td_function_name(r->functions[i]), name) == 0)
			return r->functions[i];
	return NULL;
}

static struct trigger_rt *find_trigger(struct td_router *r, const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < r->ntriggers; i++)
		if (strcmp(r->triggers[i].conf->name, name) == 0)
			return &r->triggers[i];
	return NULL;
}

/* ---- the connector side (include/triggerd/source.h) ---- */

void *td_source_ctx(struct td_source *src)
{
	return src->ctx;
}

const void *td_source_opts(const struct td_source *src)
{
	return src->conf->opts;
}

const char *td_source_name(const struct td_source *src)
{
	return src->conf->name;
}

const char *td_source_scope(const struct td_source *src)
{
	return src->scope;
}

struct td_engine *td_source_engine(struct td_source *src)
{
	return src->router->engine;
}

struct td_http_server *td_source_webhook_http(struct td_source *src)
{
	return src->router->webhook_http;
}

const struct td_global *td_source_global(const struct td_source *src)
{
	return &src->gen->cfg->global;
}

void td_source_set_ready(struct td_source *src, bool ready, const char *reason)
{
	pthread_mutex_lock(&src->health_lock);
	bool changed =
	    src->ready != ready || (reason && (!src->reason || strcmp(src->reason, reason) != 0));
	src->ready = ready;
	free(src->reason);
	src->reason = reason ? strdup(reason) : NULL;
	pthread_mutex_unlock(&src->health_lock);
	if (changed) {
		if (ready)
			td_logs_info(src->scope, "ready");
		else
			td_logs_warn(src->scope, "not ready: %s", reason ? reason : "unknown");
	}
}

static void settle(struct submission *sub, enum td_settle_status status, const char *reason,
		   long long retry_after_ms);
static void dispatch(void *arg);

int td_source_submit(struct td_source *src, struct td_event **events, int n, void *handle)
{
	struct submission *sub = calloc(1, sizeof *sub);
	struct td_event **copy = malloc((size_t)(n > 0 ? n : 1) * sizeof *copy);
	if (!sub || !copy) {
		/* Nothing can be settled without memory; the source sees no answer and
		 * delivers again after its own timeout. */
		td_logs_error(src->scope, "out of memory: %d events not taken", n);
		for (int i = 0; i < n; i++)
			td_event_unref(events[i]);
		free(sub);
		free(copy);
		return -TD_ENOMEM;
	}
	memcpy(copy, events, (size_t)n * sizeof *copy);
	sub->src = src;
	sub->handle = handle;
	sub->events = copy;
	sub->n = n;
	/* Counted now, not in dispatch: a source retired while this waits in the inbox must
	 * stay alive until it is settled. */
	atomic_fetch_add(&src->pending, 1);
	if (td_engine_call(src->router->engine, dispatch, sub) < 0) {
		atomic_fetch_sub(&src->pending, 1);
		for (int i = 0; i < n; i++)
			td_event_unref(copy[i]);
		free(copy);
		free(sub);
		return -TD_ESTATE;
	}
	return 0;
}

bool td_source_has_sync_triggers(struct td_source *src)
{
	return atomic_load(&src->has_sync);
}

bool td_source_can_publish(const struct td_source *src)
{
	return src->ops->publish != NULL;
}

struct publishing {
	struct td_source *src;
	void (*done)(void *arg, bool ok, const char *error);
	void *arg;
};

static void publish_done(void *arg, bool ok, const char *error)
{
	struct publishing *p = arg;
	p->src->pending--;
	p->done(p->arg, ok, error);
	free(p);
}

void td_source_publish(struct td_source *src, const char *target, const void *record, size_t len,
		       void (*done)(void *arg, bool ok, const char *error), void *arg)
{
	struct publishing *p = malloc(sizeof *p);
	if (!p) {
		done(arg, false, "out of memory");
		return;
	}
	*p = (struct publishing){src, done, arg};
	src->pending++; /* a retired source lives until its records are out */
	src->ops->publish(src, target, record, len, publish_done, p);
}

/* ---- the function side (include/triggerd/function.h) ---- */

void *td_function_ctx(struct td_function *fn)
{
	return fn->ctx;
}

const void *td_function_opts(const struct td_function *fn)
{
	return fn->conf->opts;
}

const char *td_function_name(const struct td_function *fn)
{
	return fn->conf->name;
}

const char *td_function_scope(const struct td_function *fn)
{
	return fn->scope;
}

struct td_engine *td_function_engine(struct td_function *fn)
{
	return fn->router->engine;
}

const struct td_global *td_function_global(const struct td_function *fn)
{
	return &fn->gen->cfg->global;
}

void td_result_clear(struct td_result *res)
{
	if (!res)
		return;
	free(res->content_type);
	free(res->body);
	free(res->error);
	for (size_t i = 0; i < res->nheaders; i++) {
		free(res->headers[i].name);
		free(res->headers[i].value);
	}
	free(res->headers);
	free(res->log);
	memset(res, 0, sizeof *res);
}

/* ---- instances ---- */

static struct td_source *source_new(struct td_router *r, struct generation *gen,
				    const struct td_source_conf *conf)
{
	struct td_source *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->router = r;
	s->ops = conf->ops;
	s->conf = conf;
	s->gen = generation_ref(gen);
	snprintf(s->scope, sizeof s->scope, "%s:%s", conf->ops->name, conf->name);
	pthread_mutex_init(&s->health_lock, NULL);
	s->reason = strdup("starting");
	if (s->ops->ctx_size && !(s->ctx = calloc(1, s->ops->ctx_size))) {
		generation_unref(gen);
		free(s->reason);
		free(s);
		return NULL;
	}
	return s;
}

static void source_free_rules(struct td_source *s)
{
	td_matcher_destroy(s->matcher);
	td_pattern_set_destroy(s->set);
	free(s->rules);
	free(s->always);
	s->matcher = NULL;
	s->set = NULL;
	s->rules = s->always = NULL;
	s->nrules = s->nalways = 0;
}

static void source_free(struct td_source *s)
{
	if (s->ops->destroy)
		s->ops->destroy(s);
	source_free_rules(s);
	pthread_mutex_destroy(&s->health_lock);
	free(s->reason);
	free(s->ctx);
	generation_unref(s->gen);
	free(s);
}

/* Stops intake now; the instance is freed once its last submission settled. */
static void source_retire(struct td_router *r, struct td_source *s)
{
	if (s->started && !s->stopped && s->ops->stop)
		s->ops->stop(s);
	s->stopped = true;
	source_free_rules(s);
	if (s->pending == 0) {
		source_free(s);
		return;
	}
	s->next_retired = r->retired_sources;
	r->retired_sources = s;
}

static void reap_retired(struct td_router *r)
{
	for (struct td_source **p = &r->retired_sources; *p;) {
		struct td_source *s = *p;
		if (s->pending == 0) {
			*p = s->next_retired;
			source_free(s);
		} else {
			p = &s->next_retired;
		}
	}
	for (struct td_function **p = &r->retired_functions; *p;) {
		struct td_function *f = *p;
		if (f->in_flight == 0) {
			*p = f->next_retired;
			if (f->ops->destroy)
				f->ops->destroy(f);
			free(f->ctx);
			generation_unref(f->gen);
			free(f);
		} else {
			p = &f->next_retired;
		}
	}
}

static struct td_function *function_new(struct td_router *r, struct generation *gen,
					const struct td_function_conf *conf)
{
	if (!conf->ops->invoke) {
		td_log_error("%s:%d: function %s: kind %s cannot run in this version of triggerd",
			     conf->file, conf->line, conf->name, conf->ops->name);
		return NULL;
	}
	struct td_function *f = calloc(1, sizeof *f);
	if (!f)
		return NULL;
	f->router = r;
	f->ops = conf->ops;
	f->conf = conf;
	f->common = conf->opts;
	f->gen = generation_ref(gen);
	f->meter.memory_mb = f->common->memory_mb;
	snprintf(f->scope, sizeof f->scope, "%s:%s", conf->ops->name, conf->name);
	if (f->ops->ctx_size && !(f->ctx = calloc(1, f->ops->ctx_size)))
		goto fail;
	if (f->ops->create && f->ops->create(f) < 0) {
		td_logs_error(f->scope, "cannot create the function (%s:%d)", conf->file,
			      conf->line);
		goto fail;
	}
	return f;
fail:
	free(f->ctx);
	generation_unref(gen);
	free(f);
	return NULL;
}

static void function_retire(struct td_router *r, struct td_function *f)
{
	f->retired = true;
	f->next_retired = r->retired_functions;
	r->retired_functions = f;
}

/* ---- rules ---- */

/* Builds the rule set of source s from the router's current triggers. */
static int source_build_rules(struct td_router *r, struct td_source *s)
{
	char err[512];
	source_free_rules(s);
	s->rules = calloc(r->ntriggers + 1, sizeof *s->rules);
	s->always = calloc(r->ntriggers + 1, sizeof *s->always);
	s->set = td_pattern_set_create();
	if (!s->rules || !s->always || !s->set)
		return -TD_ENOMEM;
	for (size_t i = 0; i < r->ntriggers; i++) {
		struct trigger_rt *t = &r->triggers[i];
		bool names_source = false;
		for (size_t k = 0; k < t->conf->sources.n; k++)
			if (strcmp(t->conf->sources.v[k], s->conf->name) == 0)
				names_source = true;
		if (!names_source || !t->conf->enabled)
			continue;
		if (!t->conf->pattern) {
			s->always[s->nalways++] = t;
			continue;
		}
		if (td_pattern_set_add(s->set, (unsigned)s->nrules, t->conf->pattern,
				       strlen(t->conf->pattern), err, sizeof err) < 0) {
			td_logs_error(s->scope, "trigger %s: %s", t->conf->name, err);
			return -TD_EINVAL;
		}
		s->rules[s->nrules++] = t;
	}
	bool sync = false;
	for (size_t i = 0; i < s->nrules; i++)
		sync |= s->rules[i]->conf->invocation == TD_INVOKE_SYNC;
	for (size_t i = 0; i < s->nalways; i++)
		sync |= s->always[i]->conf->invocation == TD_INVOKE_SYNC;
	atomic_store(&s->has_sync, sync);
	if (td_pattern_set_compile(s->set) < 0 || !(s->matcher = td_matcher_create(s->set)))
		return -TD_ENOMEM;
	return 0;
}

/* ---- settling ---- */

static void submission_free(struct submission *sub)
{
	for (int i = 0; i < sub->n; i++)
		td_event_unref(sub->events[i]);
	free(sub->events);
	td_result_clear(&sub->result);
	free(sub);
}

static void settle(struct submission *sub, enum td_settle_status status, const char *reason,
		   long long retry_after_ms)
{
	struct td_source *src = sub->src;
	const char *ids[64];
	const char **event_ids = sub->n <= 64 ? ids : malloc((size_t)sub->n * sizeof *event_ids);
	int n_ids = event_ids ? sub->n : 0;
	for (int i = 0; i < n_ids; i++)
		event_ids[i] = td_event_get(sub->events[i], "id");
	struct td_settlement s = {
	    .status = status,
	    .accepted = sub->accepted,
	    .event_ids = event_ids,
	    .n_events = n_ids,
	    .result = sub->has_result ? &sub->result : NULL,
	    .retry_after_ms = retry_after_ms,
	    .reason = reason,
	};
	if (status == TD_SETTLE_BUSY)
		src->busy++;
	if (src->ops->settle)
		src->ops->settle(src, sub->handle, &s);
	if (event_ids != ids)
		free(event_ids);
	src->pending--;
	submission_free(sub);
}

/* Settles sub if nothing it waits for is left. */
static void maybe_settle(struct submission *sub)
{
	if (sub->waiting_sync > 0 || sub->waiting_commit)
		return;
	if (sub->commit_failed)
		settle(sub, TD_SETTLE_BUSY, "the queue could not be written", 1000);
	else if (sub->failed)
		settle(sub, TD_SETTLE_FAILED,
		       sub->has_result && sub->result.error ? sub->result.error : "function failed",
		       0);
	else
		settle(sub, TD_SETTLE_DONE, NULL, 0);
}

/* ---- invocations ---- */

static struct call *call_new(struct td_router *r, struct td_function *fn, struct td_event *ev,
			     struct trigger_rt *t, bool sync)
{
	struct call *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->router = r;
	c->trigger = t;
	c->trigger_index = t ? t->index : 0;
	c->inv.function = fn;
	c->inv.event = td_event_ref(ev);
	c->inv.trigger = t ? t->conf->name : "invoke-api";
	c->inv.sync = sync;
	c->inv.attempt = 1;
	c->inv.deadline_ms = td_now_ms() + fn->common->timeout_ms;
	td_uuid4(c->inv.request_id);
	return c;
}

static void call_free(struct call *c)
{
	struct td_router *r = c->router;
	if (c->prev)
		c->prev->next = c->next;
	else if (r->calls == c)
		r->calls = c->next;
	if (c->next)
		c->next->prev = c->prev;
	td_event_unref(c->inv.event);
	free(c->client_context);
	free(c);
}

static void start_call(struct call *c)
{
	struct td_function *fn = c->inv.function;
	struct td_router *r = c->router;
	c->next = r->calls;
	if (r->calls)
		r->calls->prev = c;
	r->calls = c;
	fn->in_flight++;
	c->start_ns = td_now_ns();
	td_logs_debug(fn->scope, "START RequestId: %s trigger %s event %s", c->inv.request_id,
		      c->inv.trigger, td_event_get(c->inv.event, "id"));
	int rc = fn->ops->invoke ? fn->ops->invoke(fn, &c->inv) : -TD_ESTATE;
	if (rc < 0 && !c->completed) {
		struct td_result res = {.status = TD_RESULT_RETRY};
		res.error = strdup("the function could not be started");
		td_invocation_complete(&c->inv, &res);
	}
}

static void finish_sync(struct call *c, struct td_result *res);
static void finish_async(struct call *c, struct td_result *res);

static void meter(struct call *c, const struct td_result *res)
{
	struct td_function *fn = c->inv.function;
	long long duration_us =
	    res->duration_us > 0 ? res->duration_us : (td_now_ns() - c->start_ns) / 1000;
	bool error = res->status != TD_RESULT_OK;
	td_meter_record(&fn->meter, duration_us, error, res->throttled, res->init_us > 0);
	if (error)
		fn->errors++;
	else
		fn->ok++;
	if (td_log_threshold >= TD_LOG_INFO) {
		char line[256];
		td_meter_report_line(line, sizeof line, c->inv.request_id, duration_us,
				     fn->common->memory_mb, res->max_memory_mb, res->init_us);
		if (error)
			td_logs_info(fn->scope, "%s\tError: %s", line,
				     res->error ? res->error : "failed");
		else
			td_logs_info(fn->scope, "%s", line);
	}
}

void td_invocation_complete(struct td_invocation *inv, struct td_result *res)
{
	struct call *c = (struct call *)inv; /* inv is the first member */
	struct td_function *fn = inv->function;
	if (c->completed) {
		td_logs_error(fn->scope, "invocation %s completed twice", inv->request_id);
		td_result_clear(res);
		return;
	}
	c->completed = true;
	fn->in_flight--;
	meter(c, res);
	if (inv->sync)
		finish_sync(c, res);
	else
		finish_async(c, res);
}

/* A sync invocation answered: hand the result to its submission or Invoke API caller. */
static void finish_sync(struct call *c, struct td_result *res)
{
	struct submission *sub = c->sub;
	if (c->done) {
		c->done(c->done_arg, res);
		td_result_clear(res);
	} else if (sub) {
		if (res->status != TD_RESULT_OK)
			sub->failed = true;
		if (!sub->has_result || c->trigger_index < sub->result_trigger) {
			td_result_clear(&sub->result);
			sub->result = *res;
			sub->result_trigger = c->trigger_index;
			sub->has_result = true;
		} else {
			td_result_clear(res);
		}
		sub->waiting_sync--;
		maybe_settle(sub);
	} else {
		td_result_clear(res);
	}
	call_free(c);
}

/* ---- async: records for destinations ---- */

static void append_time(struct td_buf *b, long long wall_ms)
{
	char ts[40];
	time_t secs = (time_t)(wall_ms / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
	td_buf_printf(b, "\"%s.%03lldZ\"", ts, wall_ms % 1000);
}

/* The record sent to on_success / on_failure: shaped like Lambda's destination records,
 * with the trigger, the last error and the attempts added. */
static char *destination_record(const struct call *c, const struct td_result *res,
				const char *condition, int attempts, size_t *len)
{
	struct td_buf b = {0};
	size_t event_len;
	char *event_json = td_event_to_json(c->inv.event, &event_len);
	td_buf_appends(&b, "{\"version\":\"1.0\",\"timestamp\":");
	append_time(&b, td_wall_ms());
	td_buf_appends(&b, ",\"requestContext\":{\"requestId\":");
	td_json_append_string(&b, c->inv.request_id, strlen(c->inv.request_id));
	td_buf_appends(&b, ",\"function\":");
	td_json_append_string(&b, td_function_name(c->inv.function),
			      strlen(td_function_name(c->inv.function)));
	td_buf_appends(&b, ",\"trigger\":");
	td_json_append_string(&b, c->inv.trigger, strlen(c->inv.trigger));
	td_buf_printf(&b, ",\"condition\":\"%s\",\"approximateInvokeCount\":%d", condition,
		      attempts);
	td_buf_appends(&b, ",\"firstEnqueued\":");
	append_time(&b, c->enqueued_ms);
	td_buf_appends(&b, "},\"requestPayload\":");
	if (event_json)
		td_buf_append(&b, event_json, event_len);
	else
		td_buf_appends(&b, "null");
	td_buf_printf(&b, ",\"responseContext\":{\"statusCode\":%d", res->http_status);
	if (res->status != TD_RESULT_OK)
		td_buf_appends(&b, ",\"functionError\":\"Unhandled\"");
	td_buf_appends(&b, "},\"responsePayload\":");
	if (res->body && td_json_valid(res->body, res->body_len, 0))
		td_buf_append(&b, res->body, res->body_len);
	else if (res->body)
		td_json_append_string(&b, res->body, res->body_len);
	else
		td_buf_appends(&b, "null");
	if (res->error) {
		td_buf_appends(&b, ",\"error\":");
		td_json_append_string(&b, res->error, strlen(res->error));
	}
	td_buf_appends(&b, "}");
	free(event_json);
	return td_buf_steal(&b, len);
}

struct destination_send {
	struct td_router *router;
	struct td_destination *dest;
	char *record;
	size_t len;
	long long queue_id; /* completed once the record is stored (0: none) */
	int attempt;
	bool failure; /* on_failure: count dead letters */
	char function[128];
};

static void destination_try(struct destination_send *d);

static void destination_retry(void *arg)
{
	destination_try(arg);
}

static void destination_done(void *arg, bool ok, const char *error)
{
	struct destination_send *d = arg;
	struct td_router *r = d->router;
	if (!ok && d->attempt < DESTINATION_ATTEMPTS) {
		td_logs_warn(d->function, "destination %s failed (%s); trying again",
			     td_destination_spec(d->dest), error ? error : "?");
		td_timer_add(r->engine, td_backoff_ms(d->attempt, 500, 10000, 0), destination_retry,
			     d);
		return;
	}
	if (!ok) {
		r->dead_letter_failures++;
		td_logs_error(
		    d->function, "destination %s failed %d times (%s); record dropped: %s",
		    td_destination_spec(d->dest), d->attempt, error ? error : "?", d->record);
	}
	if (d->queue_id > 0) {
		/* The queue may be gone when this lands during shutdown. */
		if (r->queue)
			td_queue_complete(r->queue, d->queue_id);
	}
	free(d->record);
	free(d);
}

static void destination_try(struct destination_send *d)
{
	d->attempt++;
	td_destination_send(d->dest, d->record, d->len, destination_done, d);
}

/* Sends the record of c to dest; completes queue_id once stored (or given up). */
static void send_to_destination(struct call *c, struct td_destination *dest,
				const struct td_result *res, const char *condition, int attempts,
				long long queue_id)
{
	struct td_router *r = c->router;
	struct destination_send *d = calloc(1, sizeof *d);
	if (d)
		d->record = destination_record(c, res, condition, attempts, &d->len);
	if (!d || !d->record) {
		td_logs_error(c->inv.function->scope, "out of memory: %s record lost", condition);
		free(d);
		if (queue_id > 0)
			td_queue_complete(r->queue, queue_id);
		return;
	}
	d->router = r;
	d->dest = dest;
	d->queue_id = queue_id;
	snprintf(d->function, sizeof d->function, "%s", c->inv.function->scope);
	destination_try(d);
}

static void finish_async(struct call *c, struct td_result *res)
{
	struct td_router *r = c->router;
	struct td_function *fn = c->inv.function;
	struct trigger_rt *t = find_trigger(r, c->inv.trigger);
	long long retries = t ? t->conf->retries : 2;
	long long max_age = t ? t->conf->max_event_age_ms : 6LL * 3600 * 1000;
	long long base = t ? t->conf->backoff_base_ms : 1000,
		  cap = t ? t->conf->backoff_cap_ms : 300000;
	int attempts = c->inv.attempt;
	long long now = td_wall_ms();

	if (res->status == TD_RESULT_OK) {
		if (t && t->on_success)
			send_to_destination(c, t->on_success, res, "Success", attempts,
					    c->queue_id);
		else
			td_queue_complete(r->queue, c->queue_id);
		goto done;
	}
	/* Throttles are retried until the event is too old; other retryable failures up to
	 * `retries` times; permanent failures at once to on_failure. */
	bool too_old = now - c->enqueued_ms >= max_age;
	bool may_retry =
	    res->status == TD_RESULT_RETRY && (res->throttled || attempts <= retries) && !too_old;
	if (may_retry) {
		long long delay = td_backoff_ms(attempts, base, cap, res->retry_after_ms);
		if (now + delay - c->enqueued_ms < max_age) {
			fn->retries++;
			td_logs_info(fn->scope,
				     "attempt %d of event %s failed (%s); retry in %lld ms",
				     attempts, td_event_get(c->inv.event, "id"),
				     res->error ? res->error : "error", delay);
			td_queue_retry(r->queue, c->queue_id, now + delay, res->error);
			goto done;
		}
		too_old = true;
	}
	const char *condition = too_old				 ? "EventAgeExceeded"
				: res->status == TD_RESULT_ERROR ? "PermanentError"
								 : "RetriesExhausted";
	fn->dead_lettered++;
	td_logs_warn(fn->scope, "event %s failed after %d attempts (%s: %s)%s",
		     td_event_get(c->inv.event, "id"), attempts, condition,
		     res->error ? res->error : "error",
		     t && t->on_failure ? "; sent to on_failure" : "; no on_failure destination");
	if (t && t->on_failure)
		send_to_destination(c, t->on_failure, res, condition, attempts, c->queue_id);
	else
		td_queue_complete(r->queue, c->queue_id);
done:
	td_result_clear(res);
	call_free(c);
}

/* Takes due entries of fn from the queue up to its concurrency limit. */
static void pump_function(struct td_router *r, struct td_function *fn, long long now)
{
	while (!fn->retired && fn->in_flight < fn->common->concurrency) {
		const struct td_queue_entry *entries[16];
		long long room = fn->common->concurrency - fn->in_flight;
		int n = td_queue_take(r->queue, td_function_name(fn), now, entries,
				      room < 16 ? (int)room : 16);
		if (n <= 0)
			return;
		for (int i = 0; i < n; i++) {
			const struct td_queue_entry *e = entries[i];
			char err[256];
			struct td_event *ev =
			    td_event_decode(e->event, e->event_len, err, sizeof err);
			if (!ev) {
				td_logs_error(fn->scope,
					      "queued entry %lld is unreadable (%s); removed",
					      e->id, err);
				td_queue_complete(r->queue, e->id);
				continue;
			}
			struct call *c = call_new(r, fn, ev, find_trigger(r, e->trigger), false);
			td_event_unref(ev);
			if (!c) {
				td_queue_release(r->queue, e->id);
				return;
			}
			c->queue_id = e->id;
			c->enqueued_ms = e->enqueued_ms;
			c->inv.attempt = e->attempts + 1;
			start_call(c);
		}
	}
}

static void due_timer_fired(void *arg)
{
	struct td_router *r = arg;
	r->due_timer = NULL;
	/* the idle hook pumps */
}

static void commit_timer_fired(void *arg)
{
	struct td_router *r = arg;
	r->commit_timer = NULL;
	r->commit_due = true;
}

/*
 * Group commit. A commit that a source or caller waits for runs at once; completions
 * and retries alone wait for the next such commit, or COMMIT_DELAY_MS, or
 * COMMIT_BATCH of them: nobody waits for them, and a crash before their commit only
 * repeats an invocation (at least once), so they cost no commit of their own.
 */
static int group_commit(struct td_router *r)
{
	long long staged = td_queue_uncommitted(r->queue);
	if (!r->commit_wait && !r->ack_wait && !r->commit_due && staged < COMMIT_BATCH) {
		if (staged > 0 && !r->commit_timer)
			r->commit_timer =
			    td_timer_add(r->engine, COMMIT_DELAY_MS, commit_timer_fired, r);
		return 0;
	}
	r->commit_due = false;
	if (r->commit_timer) {
		td_timer_cancel(r->engine, r->commit_timer);
		r->commit_timer = NULL;
	}
	return td_queue_commit(r->queue);
}

/* Runs once per engine loop iteration: group commit, settle, pump. */
static void idle(void *arg)
{
	struct td_router *r = arg;
	int rc = group_commit(r);
	struct submission *sub = r->commit_wait;
	r->commit_wait = NULL;
	while (sub) {
		struct submission *next = sub->next_commit;
		sub->waiting_commit = false;
		sub->commit_failed = rc < 0;
		maybe_settle(sub);
		sub = next;
	}
	struct pending_ack *ack = r->ack_wait;
	r->ack_wait = NULL;
	while (ack) {
		struct pending_ack *next = ack->next;
		struct td_result res = {.status = rc < 0 ? TD_RESULT_RETRY : TD_RESULT_OK,
					.http_status = rc < 0 ? 503 : 202};
		ack->done(ack->arg, &res);
		free(ack);
		ack = next;
	}
	if (!r->intake_stopped) {
		long long now = td_wall_ms();
		for (size_t i = 0; i < r->nfunctions; i++)
			pump_function(r, r->functions[i], now);
		long long due = td_queue_next_due_ms(r->queue);
		if (due >= 0 && due > now && (!r->due_timer || due < r->due_timer_at)) {
			if (r->due_timer)
				td_timer_cancel(r->engine, r->due_timer);
			r->due_timer = td_timer_add(r->engine, due - now, due_timer_fired, r);
			r->due_timer_at = due;
		}
	}
	reap_retired(r);
}

/* ---- dispatch ---- */

struct match {
	struct trigger_rt *t;
	int event;
};

static int compare_matches(const void *a, const void *b)
{
	const struct match *x = a, *y = b;
	if (x->event != y->event)
		return x->event - y->event;
	return x->t->index < y->t->index ? -1 : x->t->index > y->t->index;
}

/* A trigger with MQTT topic filters takes only events whose mqtttopic one of them
 * matches. */
static bool topic_allows(const struct trigger_rt *t, const struct td_event *ev)
{
	if (t->conf->topic.n == 0)
		return true;
	const char *topic = td_event_get(ev, "mqtttopic");
	if (!topic)
		return false;
	for (size_t i = 0; i < t->conf->topic.n; i++)
		if (td_mqtt_topic_match(t->conf->topic.v[i], topic))
			return true;
	return false;
}

/* The triggers of src that event ev matches, appended to *out. */
static int match_event(struct td_source *src, struct td_event *ev, int index, struct match **out,
		       size_t *n, size_t *cap)
{
	size_t need = *n + src->nrules + src->nalways;
	if (need > *cap) {
		struct match *bigger = realloc(*out, need * sizeof **out);
		if (!bigger)
			return -TD_ENOMEM;
		*out = bigger;
		*cap = need;
	}
	for (size_t i = 0; i < src->nalways; i++)
		if (topic_allows(src->always[i], ev))
			(*out)[(*n)++] = (struct match){src->always[i], index};
	if (src->nrules == 0)
		return 0;
	size_t len;
	char *json = td_event_match_json(ev, &len);
	if (!json)
		return -TD_ENOMEM;
	const unsigned *ids;
	char err[256];
	int k = td_matcher_match(src->matcher, json, len, &ids, err, sizeof err);
	free(json);
	if (k < 0) {
		td_logs_error(src->scope, "event %s cannot be matched: %s", td_event_get(ev, "id"),
			      err);
		return 0;
	}
	for (int i = 0; i < k; i++)
		if (topic_allows(src->rules[ids[i]], ev))
			(*out)[(*n)++] = (struct match){src->rules[ids[i]], index};
	return 0;
}

/* Stages ev for an async invocation of function (its stored form in the queue). */
static int queue_event(struct td_router *r, const char *function, const char *trigger,
		       struct td_event *ev, long long now)
{
	size_t len;
	char *stored = td_event_encode(ev, &len);
	struct td_queue_entry e = {
	    .function = function,
	    .trigger = trigger,
	    .event = stored,
	    .event_len = len,
	    .enqueued_ms = now,
	    .due_ms = now,
	};
	int rc = stored ? td_queue_push(r->queue, &e, 0, NULL) : -TD_ENOMEM;
	free(stored);
	return rc;
}

static void dispatch(void *arg)
{
	struct submission *sub = arg;
	struct td_source *src = sub->src;
	struct td_router *r = src->router;
	struct match *matches = NULL;
	size_t n = 0, cap = 0;
	src->submissions++;
	src->received += (unsigned long long)sub->n;
	if (src->stopped || r->intake_stopped) {
		settle(sub, TD_SETTLE_BUSY, "shutting down", 1000);
		return;
	}
	for (int i = 0; i < sub->n; i++)
		if (match_event(src, sub->events[i], i, &matches, &n, &cap) < 0) {
			free(matches);
			settle(sub, TD_SETTLE_BUSY, "out of memory", 1000);
			return;
		}
	qsort(matches, n, sizeof *matches, compare_matches);

	/* Capacity for everything first, so a busy answer starts nothing. */
	for (size_t i = 0; i < n; i++) {
		struct trigger_rt *t = matches[i].t;
		struct td_function *fn = t->function;
		long long want = 0;
		for (size_t k = 0; k < n; k++)
			if (matches[k].t->function == fn &&
			    matches[k].t->conf->invocation == t->conf->invocation)
				want++;
		if (t->conf->invocation == TD_INVOKE_SYNC &&
		    fn->in_flight + want > fn->common->concurrency) {
			fn->throttled_refusals++;
			free(matches);
			settle(sub, TD_SETTLE_BUSY, "function concurrency limit reached", 1000);
			return;
		}
		if (t->conf->invocation == TD_INVOKE_ASYNC &&
		    td_queue_depth(r->queue, td_function_name(fn)) + want > fn->common->queue_max) {
			fn->throttled_refusals++;
			free(matches);
			settle(sub, TD_SETTLE_BUSY, "function queue full", 1000);
			return;
		}
	}

	long long now = td_wall_ms();
	sub->waiting_sync++; /* held while calls start: one may complete inside invoke */
	for (size_t i = 0; i < n; i++) {
		struct trigger_rt *t = matches[i].t;
		struct td_event *ev = sub->events[matches[i].event];
		t->matched++;
		if (t->conf->invocation == TD_INVOKE_ASYNC) {
			if (queue_event(r, td_function_name(t->function), t->conf->name, ev, now) <
			    0) {
				sub->failed = true;
				td_logs_error(src->scope, "event %s could not be queued for %s",
					      td_event_get(ev, "id"), t->conf->name);
				continue;
			}
			sub->accepted++;
			sub->waiting_commit = true;
			continue;
		}
		struct call *c = call_new(r, t->function, ev, t, true);
		if (!c) {
			sub->failed = true;
			continue;
		}
		c->sub = sub;
		sub->waiting_sync++;
		t->invoked++;
		start_call(c);
	}
	free(matches);
	sub->waiting_sync--;
	if (sub->waiting_commit) {
		sub->next_commit = r->commit_wait;
		r->commit_wait = sub;
	} else {
		maybe_settle(sub);
	}
}

/* ---- the Invoke API ---- */

int td_router_invoke(struct td_router *r, const char *function, struct td_event *event, bool sync,
		     const struct td_invoke_meta *meta,
		     void (*done)(void *arg, const struct td_result *result), void *arg)
{
	struct td_function *fn = find_function(r, function);
	int rc = 0;
	if (!fn) {
		rc = -TD_ENOTFOUND;
		goto out;
	}
	if (sync) {
		if (fn->in_flight >= fn->common->concurrency) {
			fn->throttled_refusals++;
			rc = -TD_EFULL;
			goto out;
		}
		struct call *c = call_new(r, fn, event, NULL, true);
		if (!c) {
			rc = -TD_ENOMEM;
			goto out;
		}
		if (meta && meta->request_id && strlen(meta->request_id) < sizeof c->inv.request_id)
			strcpy(c->inv.request_id, meta->request_id);
		if (meta && meta->client_context) {
			if (!(c->client_context = strdup(meta->client_context))) {
				call_free(c);
				rc = -TD_ENOMEM;
				goto out;
			}
			c->inv.client_context = c->client_context;
		}
		c->done = done;
		c->done_arg = arg;
		start_call(c);
		goto out;
	}
	if (td_queue_depth(r->queue, function) >= fn->common->queue_max) {
		rc = -TD_EFULL;
		goto out;
	}
	struct pending_ack *ack = malloc(sizeof *ack);
	if (!ack || queue_event(r, function, NULL, event, td_wall_ms()) < 0) {
		free(ack);
		rc = -TD_ENOMEM;
		goto out;
	}
	ack->done = done;
	ack->arg = arg;
	ack->next = r->ack_wait;
	r->ack_wait = ack;
out:
	td_event_unref(event);
	return rc;
}

/* ---- life cycle ---- */

static struct td_source *destination_source(void *arg, const char *name)
{
	struct td_router *r = arg;
	for (size_t i = 0; i < r->nsources; i++)
		if (strcmp(td_source_name(r->sources[i]), name) == 0)
			return r->sources[i];
	return NULL;
}

/* Resolves the triggers of r's current generation against its function and source
 * instances. */
static int build_triggers(struct td_router *r, struct trigger_rt **out, size_t *nout)
{
	const struct td_config *cfg = r->gen->cfg;
	struct trigger_rt *ts = calloc(cfg->ntriggers + 1, sizeof *ts);
	if (!ts)
		return -TD_ENOMEM;
	char err[512];
	for (size_t i = 0; i < cfg->ntriggers; i++) {
		struct trigger_rt *t = &ts[i];
		t->conf = &cfg->triggers[i];
		t->index = i;
		t->function = find_function(r, t->conf->function);
		if (t->conf->on_success &&
		    !(t->on_success = td_destination_create(
			  t->conf->on_success, r->engine, destination_source, r, err, sizeof err)))
			goto fail;
		if (t->conf->on_failure &&
		    !(t->on_failure = td_destination_create(
			  t->conf->on_failure, r->engine, destination_source, r, err, sizeof err)))
			goto fail;
		continue;
	fail:
		td_log_error("%s:%d: trigger %s: %s", t->conf->file, t->conf->line, t->conf->name,
			     err);
		for (size_t k = 0; k <= i; k++) {
			td_destination_destroy(ts[k].on_success);
			td_destination_destroy(ts[k].on_failure);
		}
		free(ts);
		return -TD_EINVAL;
	}
	*out = ts;
	*nout = cfg->ntriggers;
	return 0;
}

static void free_triggers(struct trigger_rt *ts, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		td_destination_destroy(ts[i].on_success);
		td_destination_destroy(ts[i].on_failure);
	}
	free(ts);
}

struct td_router *td_router_create(struct td_engine *engine, struct td_config *cfg,
				   struct td_http_server *webhook_http)
{
	char err[512];
	struct td_router *r = calloc(1, sizeof *r);
	if (!r) {
		td_config_destroy(cfg);
		return NULL;
	}
	r->engine = engine;
	r->webhook_http = webhook_http;
	r->gen = generation_new(cfg);
	if (!r->gen) {
		td_config_destroy(cfg);
		free(r);
		return NULL;
	}
	r->queue =
	    td_queue_open(cfg->global.state_dir, cfg->global.queue_durability, err, sizeof err);
	if (!r->queue) {
		td_log_error("queue: %s", err);
		goto fail;
	}
	r->functions = calloc(cfg->nfunctions + 1, sizeof *r->functions);
	r->sources = calloc(cfg->nsources + 1, sizeof *r->sources);
	if (!r->functions || !r->sources)
		goto fail;
	for (size_t i = 0; i < cfg->nfunctions; i++) {
		if (!(r->functions[i] = function_new(r, r->gen, &cfg->functions[i])))
			goto fail;
		r->nfunctions++;
	}
	for (size_t i = 0; i < cfg->nsources; i++) {
		if (!(r->sources[i] = source_new(r, r->gen, &cfg->sources[i])))
			goto fail;
		r->nsources++;
	}
	if (build_triggers(r, &r->triggers, &r->ntriggers) < 0)
		goto fail;
	for (size_t i = 0; i < r->nsources; i++)
		if (source_build_rules(r, r->sources[i]) < 0)
			goto fail;
	for (size_t i = 0; i < r->nfunctions; i++) {
		long long depth = td_queue_depth(r->queue, td_function_name(r->functions[i]));
		if (depth > 0)
			td_logs_info(r->functions[i]->scope, "%lld queued events recovered", depth);
	}
	td_engine_set_idle_hook(engine, idle, r);
	return r;
fail:
	td_router_destroy(r);
	return NULL;
}

static int start_source(struct td_source *s)
{
	if (!s->ops->start) {
		td_source_set_ready(s, true, NULL);
		s->started = true;
		return 0;
	}
	int rc = s->ops->start(s);
	if (rc < 0) {
		td_logs_error(s->scope, "cannot start (%s:%d)", s->conf->file, s->conf->line);
		return rc;
	}
	s->started = true;
	return 0;
}

int td_router_start(struct td_router *r)
{
	for (size_t i = 0; i < r->nsources; i++) {
		int rc = start_source(r->sources[i]);
		if (rc < 0)
			return rc;
	}
	td_log_info("started: %zu sources, %zu functions, %zu triggers", r->nsources, r->nfunctions,
		    r->ntriggers);
	return 0;
}

int td_router_reload(struct td_router *r, struct td_config *cfg)
{
	struct generation *gen = generation_new(cfg);
	if (!gen) {
		td_config_destroy(cfg);
		return -TD_ENOMEM;
	}
	struct td_function **functions = calloc(cfg->nfunctions + 1, sizeof *functions);
	struct td_source **sources = calloc(cfg->nsources + 1, sizeof *sources);
	bool *keep_fn = calloc(r->nfunctions + 1, sizeof *keep_fn);
	bool *keep_src = calloc(r->nsources + 1, sizeof *keep_src);
	bool *fresh_src = calloc(cfg->nsources + 1, sizeof *fresh_src);
	size_t nfunctions = 0, nsources = 0;
	if (!functions || !sources || !keep_fn || !keep_src || !fresh_src)
		goto fail;

	/* Functions: keep the unchanged ones, make the new or changed ones. */
	for (size_t i = 0; i < cfg->nfunctions; i++) {
		const struct td_function_conf *fc = &cfg->functions[i];
		struct td_function *old = NULL;
		for (size_t k = 0; k < r->nfunctions; k++) {
			struct td_function *f = r->functions[k];
			if (!keep_fn[k] && strcmp(td_function_name(f), fc->name) == 0 &&
			    f->ops == fc->ops &&
			    td_options_equal(fc->ops->options, f->conf->opts, fc->opts)) {
				old = f;
				keep_fn[k] = true;
			}
		}
		functions[nfunctions] = old ? old : function_new(r, gen, fc);
		if (!functions[nfunctions])
			goto fail;
		nfunctions++;
	}
	for (size_t i = 0; i < cfg->nsources; i++) {
		const struct td_source_conf *sc = &cfg->sources[i];
		struct td_source *old = NULL;
		for (size_t k = 0; k < r->nsources; k++) {
			struct td_source *s = r->sources[k];
			if (!keep_src[k] && strcmp(td_source_name(s), sc->name) == 0 &&
			    s->ops == sc->ops &&
			    td_options_equal(sc->ops->options, s->conf->opts, sc->opts)) {
				old = s;
				keep_src[k] = true;
			}
		}
		if (!old) {
			old = source_new(r, gen, sc);
			fresh_src[i] = true;
		}
		if (!(sources[nsources] = old))
			goto fail;
		nsources++;
	}

	/* Swap: from here the new generation is the router's. */
	struct generation *old_gen = r->gen;
	struct td_function **old_functions = r->functions;
	struct td_source **old_sources = r->sources;
	size_t old_nfunctions = r->nfunctions, old_nsources = r->nsources;
	struct trigger_rt *old_triggers = r->triggers;
	size_t old_ntriggers = r->ntriggers;
	r->gen = gen;
	r->functions = functions;
	r->nfunctions = nfunctions;
	r->sources = sources;
	r->nsources = nsources;
	if (build_triggers(r, &r->triggers, &r->ntriggers) < 0) {
		r->gen = old_gen;
		r->functions = old_functions;
		r->nfunctions = old_nfunctions;
		r->sources = old_sources;
		r->nsources = old_nsources;
		r->triggers = old_triggers;
		r->ntriggers = old_ntriggers;
		goto fail;
	}
	for (size_t i = 0; i < nsources; i++)
		if (source_build_rules(r, sources[i]) < 0)
			td_logs_error(sources[i]->scope, "rules could not be rebuilt");
	for (size_t k = 0; k < old_nsources; k++)
		if (!keep_src[k])
			source_retire(r, old_sources[k]);
	for (size_t k = 0; k < old_nfunctions; k++)
		if (!keep_fn[k])
			function_retire(r, old_functions[k]);
	/* Calls in flight keep their trigger by name; the old trigger table can go. */
	free_triggers(old_triggers, old_ntriggers);
	free(old_functions);
	free(old_sources);
	generation_unref(old_gen);
	for (size_t i = 0; i < nsources; i++)
		if (fresh_src[i])
			start_source(sources[i]);
	td_log_info("reloaded: %zu sources, %zu functions, %zu triggers", r->nsources,
		    r->nfunctions, r->ntriggers);
	free(keep_fn);
	free(keep_src);
	free(fresh_src);
	return 0;
fail:
	/* Undo: free what was made for the new generation, keep the running one. */
	if (functions)
		for (size_t i = 0; i < nfunctions; i++) {
			bool reused = false;
			for (size_t k = 0; k < r->nfunctions; k++)
				reused |= r->functions[k] == functions[i];
			if (!reused) {
				if (functions[i]->ops->destroy)
					functions[i]->ops->destroy(functions[i]);
				free(functions[i]->ctx);
				generation_unref(functions[i]->gen);
				free(functions[i]);
			}
		}
	if (sources)
		for (size_t i = 0; i < nsources; i++)
			if (fresh_src[i])
				source_free(sources[i]);
	free(functions);
	free(sources);
	free(keep_fn);
	free(keep_src);
	free(fresh_src);
	generation_unref(gen);
	td_log_error("reload failed; the running configuration stays");
	return -TD_EINVAL;
}

void td_router_stop_intake(struct td_router *r)
{
	r->intake_stopped = true;
	for (size_t i = 0; i < r->nsources; i++) {
		struct td_source *s = r->sources[i];
		if (s->started && !s->stopped && s->ops->stop)
			s->ops->stop(s);
		s->stopped = true;
	}
}

bool td_router_drained(const struct td_router *r)
{
	if (r->calls || r->commit_wait || r->ack_wait)
		return false;
	/* Submissions still in the engine's inbox count in pending: they settle (as busy)
	 * once dispatched, and their sources must hear it before they are destroyed. */
	for (size_t i = 0; i < r->nsources; i++)
		if (atomic_load(&r->sources[i]->pending) > 0)
			return false;
	for (const struct td_source *s = r->retired_sources; s; s = s->next_retired)
		if (atomic_load(&s->pending) > 0)
			return false;
	return true;
}

void td_router_destroy(struct td_router *r)
{
	if (!r)
		return;
	td_engine_set_idle_hook(r->engine, NULL, NULL);
	for (size_t i = 0; i < r->nsources; i++)
		if (r->sources[i]->started && !r->sources[i]->stopped && r->sources[i]->ops->stop) {
			r->sources[i]->ops->stop(r->sources[i]);
			r->sources[i]->stopped = true;
		}
	if (r->queue)
		td_queue_commit(r->queue);
	struct submission *sub = r->commit_wait;
	r->commit_wait = NULL;
	while (sub) {
		struct submission *next = sub->next_commit;
		sub->waiting_commit = false;
		maybe_settle(sub);
		sub = next;
	}
	/* Invocations still in flight are abandoned: their kinds drop them in destroy
	 * without completing them; a source waiting for one hears busy (it delivers the
	 * event again), and a queued entry stays in the queue for the next start. */
	while (r->calls) {
		struct call *c = r->calls;
		struct submission *waiting = c->sub;
		if (c->done) { /* an Invoke API caller hears that triggerd is stopping */
			struct td_result res = {.status = TD_RESULT_RETRY, .http_status = 503};
			res.error = strdup("triggerd is shutting down");
			c->done(c->done_arg, &res);
			td_result_clear(&res);
		}
		c->inv.function->in_flight--;
		call_free(c);
		if (waiting && --waiting->waiting_sync == 0 && !waiting->waiting_commit)
			settle(waiting, TD_SETTLE_BUSY, "shutting down", 1000);
	}
	struct pending_ack *ack = r->ack_wait;
	while (ack) {
		struct pending_ack *next = ack->next;
		struct td_result res = {.status = TD_RESULT_RETRY, .http_status = 503};
		ack->done(ack->arg, &res);
		free(ack);
		ack = next;
	}
	if (r->due_timer)
		td_timer_cancel(r->engine, r->due_timer);
	if (r->commit_timer)
		td_timer_cancel(r->engine, r->commit_timer);
	for (size_t i = 0; i < r->nfunctions; i++)
		function_retire(r, r->functions[i]);
	r->nfunctions = 0;
	for (size_t i = 0; i < r->nsources; i++)
		source_retire(r, r->sources[i]);
	r->nsources = 0;
	reap_retired(r);
	if (r->retired_sources || r->retired_functions)
		td_log_error("router: instances still busy at exit");
	free_triggers(r->triggers, r->ntriggers);
	td_queue_close(r->queue);
	free(r->functions);
	free(r->sources);
	generation_unref(r->gen);
	free(r);
}

const struct td_config *td_router_config(const struct td_router *r)
{
	return r->gen->cfg;
}

struct td_engine *td_router_engine(struct td_router *r)
{
	return r->engine;
}

struct td_http_server *td_router_webhook_http(struct td_router *r)
{
	return r->webhook_http;
}
