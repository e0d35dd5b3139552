/*
 * What the admin API shows of the router: readiness, Prometheus metrics and JSON
 * status of sources, triggers, functions and usage. Everything is rendered on the
 * engine thread from the router's own counters into one buffer; nothing here changes
 * state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <triggerd/log.h>

#include "json.h"
#include "queue.h"
#include "router_internal.h"

void td_source_count_response(struct td_source *src, int status)
{
	if (status >= 100 && status < 600)
		atomic_fetch_add_explicit(&src->responses[status], 1, memory_order_relaxed);
}

/* A Prometheus label value: backslash, quote and newline escaped. */
static void append_label(struct td_buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			td_buf_appendc(b, '\\');
		if (*s == '\n') {
			td_buf_appends(b, "\\n");
			continue;
		}
		td_buf_appendc(b, *s);
	}
}

static void append_json_str(struct td_buf *b, const char *s)
{
	if (s)
		td_json_append_string(b, s, strlen(s));
	else
		td_buf_appends(b, "null");
}

static bool source_ready(struct td_source *s, char **reason)
{
	pthread_mutex_lock(&s->health_lock);
	bool ready = s->ready;
	*reason = s->reason ? strdup(s->reason) : NULL;
	pthread_mutex_unlock(&s->health_lock);
	return ready;
}

bool td_router_ready(struct td_router *r, char **reasons_json)
{
	struct td_buf b = {0};
	bool all = true;
	td_buf_appendc(&b, '[');
	for (size_t i = 0; i < r->nsources; i++) {
		char *reason;
		if (source_ready(r->sources[i], &reason)) {
			free(reason);
			continue;
		}
		td_buf_appends(&b, all ? "{\"source\":" : ",{\"source\":");
		all = false;
		append_json_str(&b, td_source_name(r->sources[i]));
		td_buf_appends(&b, ",\"reason\":");
		append_json_str(&b, reason ? reason : "not ready");
		td_buf_appendc(&b, '}');
		free(reason);
	}
	if (r->intake_stopped) {
		td_buf_appends(&b, all ? "" : ",");
		td_buf_appends(&b, "{\"source\":null,\"reason\":\"shutting down\"}");
		all = false;
	}
	td_buf_appendc(&b, ']');
	if (reasons_json)
		*reasons_json = all ? NULL : td_buf_steal(&b, NULL);
	td_buf_free(&b);
	return all;
}

static void family(struct td_buf *b, const char *name, const char *type, const char *help)
{
	td_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void labelled(struct td_buf *b, const char *metric, const char *label, const char *value)
{
	td_buf_printf(b, "%s{%s=\"", metric, label);
	append_label(b, value);
	td_buf_appends(b, "\"}");
}

char *td_router_metrics(struct td_router *r)
{
	struct td_buf b = {0};
	long long now = td_wall_ms();

	family(&b, "triggerd_events_received_total", "counter", "Events received per source.");
	for (size_t i = 0; i < r->nsources; i++) {
		labelled(&b, "triggerd_events_received_total", "source",
			 td_source_name(r->sources[i]));
		td_buf_printf(&b, " %llu\n", r->sources[i]->received);
	}
	family(&b, "triggerd_source_ready", "gauge", "1 when the source is connected and ready.");
	for (size_t i = 0; i < r->nsources; i++) {
		char *reason;
		bool ready = source_ready(r->sources[i], &reason);
		free(reason);
		labelled(&b, "triggerd_source_ready", "source", td_source_name(r->sources[i]));
		td_buf_printf(&b, " %d\n", ready);
	}
	family(&b, "triggerd_source_busy_total", "counter",
	       "Submissions refused with backpressure (queue full, concurrency, shutdown).");
	for (size_t i = 0; i < r->nsources; i++) {
		labelled(&b, "triggerd_source_busy_total", "source", td_source_name(r->sources[i]));
		td_buf_printf(&b, " %llu\n", r->sources[i]->busy);
	}
	family(&b, "triggerd_webhook_responses_total", "counter",
	       "HTTP responses of webhook sources per status code.");
	for (size_t i = 0; i < r->nsources; i++)
		for (int code = 100; code < 600; code++) {
			unsigned long long n = atomic_load_explicit(&r->sources[i]->responses[code],
								    memory_order_relaxed);
			if (!n)
				continue;
			td_buf_appends(&b, "triggerd_webhook_responses_total{source=\"");
			append_label(&b, td_source_name(r->sources[i]));
			td_buf_printf(&b, "\",code=\"%d\"} %llu\n", code, n);
		}
	family(&b, "triggerd_events_matched_total", "counter", "Events matched per trigger.");
	for (size_t i = 0; i < r->ntriggers; i++) {
		labelled(&b, "triggerd_events_matched_total", "trigger", r->triggers[i].conf->name);
		td_buf_printf(&b, " %llu\n", r->triggers[i].matched);
	}

	family(&b, "triggerd_invocations_total", "counter",
	       "Function invocations per outcome (ok or error).");
	for (size_t i = 0; i < r->nfunctions; i++) {
		struct td_function *f = r->functions[i];
		td_buf_appends(&b, "triggerd_invocations_total{function=\"");
		append_label(&b, td_function_name(f));
		td_buf_printf(&b, "\",outcome=\"ok\"} %llu\n", f->ok);
		td_buf_appends(&b, "triggerd_invocations_total{function=\"");
		append_label(&b, td_function_name(f));
		td_buf_printf(&b, "\",outcome=\"error\"} %llu\n", f->errors);
	}
	struct {
		const char *name, *help;
		size_t offset;
	} counters[] = {
	    {"triggerd_requests_total", "Billed requests per function (one per invocation).",
	     offsetof(struct td_function, meter.requests)},
	    {"triggerd_billed_milliseconds_total",
	     "Billed duration per function: each invocation rounded up to the next 1 ms.",
	     offsetof(struct td_function, meter.billed_ms)},
	    {"triggerd_cold_starts_total", "Invocations that started a new runtime process.",
	     offsetof(struct td_function, meter.cold_starts)},
	    {"triggerd_throttles_total",
	     "Invocations refused or failed because the function was at its limit.",
	     offsetof(struct td_function, throttled_refusals)},
	    {"triggerd_retries_total", "Async invocations scheduled again after a failure.",
	     offsetof(struct td_function, retries)},
	    {"triggerd_dead_lettered_total",
	     "Async events given up on (sent to on_failure, or dropped without one).",
	     offsetof(struct td_function, dead_lettered)},
	};
	for (size_t k = 0; k < sizeof counters / sizeof counters[0]; k++) {
		family(&b, counters[k].name, "counter", counters[k].help);
		for (size_t i = 0; i < r->nfunctions; i++) {
			const unsigned long long *v =
			    (const void *)((const char *)r->functions[i] + counters[k].offset);
			labelled(&b, counters[k].name, "function",
				 td_function_name(r->functions[i]));
			td_buf_printf(&b, " %llu\n", *v);
		}
	}
	family(&b, "triggerd_gb_seconds_total", "counter",
	       "Billed GB-seconds per function (billed ms x memory).");
	for (size_t i = 0; i < r->nfunctions; i++) {
		struct td_function *f = r->functions[i];
		labelled(&b, "triggerd_gb_seconds_total", "function", td_function_name(f));
		td_buf_printf(&b, " %.6f\n", td_gb_seconds(f->meter.billed_ms, f->meter.memory_mb));
	}
	family(&b, "triggerd_invocation_duration_seconds", "histogram",
	       "Invocation duration per function.");
	for (size_t i = 0; i < r->nfunctions; i++) {
		struct td_function *f = r->functions[i];
		unsigned long long cumulative = 0;
		for (int k = 0; k <= TD_METER_PROM_BUCKETS; k++) {
			cumulative += f->meter.prom[k];
			td_buf_appends(&b,
				       "triggerd_invocation_duration_seconds_bucket{function=\"");
			append_label(&b, td_function_name(f));
			if (k < TD_METER_PROM_BUCKETS)
				td_buf_printf(&b, "\",le=\"%g\"} %llu\n",
					      td_meter_prom_bounds_ms[k] / 1000.0, cumulative);
			else
				td_buf_printf(&b, "\",le=\"+Inf\"} %llu\n", cumulative);
		}
		labelled(&b, "triggerd_invocation_duration_seconds_sum", "function",
			 td_function_name(f));
		td_buf_printf(&b, " %.6f\n", f->meter.duration_sum_ms / 1000.0);
		labelled(&b, "triggerd_invocation_duration_seconds_count", "function",
			 td_function_name(f));
		td_buf_printf(&b, " %llu\n", f->meter.requests);
	}
	family(&b, "triggerd_queue_depth", "gauge", "Async events queued per function.");
	for (size_t i = 0; i < r->nfunctions; i++) {
		labelled(&b, "triggerd_queue_depth", "function", td_function_name(r->functions[i]));
		td_buf_printf(&b, " %lld\n",
			      td_queue_depth(r->queue, td_function_name(r->functions[i])));
	}
	family(&b, "triggerd_queue_oldest_age_seconds", "gauge",
	       "Age of the oldest queued async event per function (0 when none).");
	for (size_t i = 0; i < r->nfunctions; i++) {
		long long oldest = td_queue_oldest_ms(r->queue, td_function_name(r->functions[i]));
		labelled(&b, "triggerd_queue_oldest_age_seconds", "function",
			 td_function_name(r->functions[i]));
		td_buf_printf(&b, " %.3f\n", oldest > 0 ? (double)(now - oldest) / 1000.0 : 0.0);
	}
	family(&b, "triggerd_destination_failures_total", "counter",
	       "Destination records dropped after every attempt failed.");
	td_buf_printf(&b, "triggerd_destination_failures_total %llu\n", r->dead_letter_failures);
	return td_buf_steal(&b, NULL);
}

static void status_sources(struct td_router *r, struct td_buf *b)
{
	td_buf_appendc(b, '[');
	for (size_t i = 0; i < r->nsources; i++) {
		struct td_source *s = r->sources[i];
		char *reason;
		bool ready = source_ready(s, &reason);
		td_buf_appends(b, i ? ",{\"name\":" : "{\"name\":");
		append_json_str(b, td_source_name(s));
		td_buf_appends(b, ",\"kind\":");
		append_json_str(b, s->ops->name);
		td_buf_printf(b, ",\"state\":\"%s\",\"ready\":%s,\"last_error\":",
			      s->stopped ? "stopped"
			      : ready	 ? "running"
					 : "degraded",
			      ready ? "true" : "false");
		append_json_str(b, ready ? NULL : reason);
		td_buf_printf(b, ",\"received\":%llu,\"busy\":%llu,\"pending\":%d", s->received,
			      s->busy, s->pending);
		td_buf_appends(b, ",\"triggers\":[");
		size_t n = 0;
		for (size_t k = 0; k < s->nalways; k++, n++) {
			td_buf_appends(b, n ? "," : "");
			append_json_str(b, s->always[k]->conf->name);
		}
		for (size_t k = 0; k < s->nrules; k++, n++) {
			td_buf_appends(b, n ? "," : "");
			append_json_str(b, s->rules[k]->conf->name);
		}
		td_buf_appends(b, "]}");
		free(reason);
	}
	td_buf_appendc(b, ']');
}

static void status_triggers(struct td_router *r, struct td_buf *b)
{
	td_buf_appendc(b, '[');
	for (size_t i = 0; i < r->ntriggers; i++) {
		const struct trigger_rt *t = &r->triggers[i];
		td_buf_appends(b, i ? ",{\"name\":" : "{\"name\":");
		append_json_str(b, t->conf->name);
		td_buf_appends(b, ",\"sources\":[");
		for (size_t k = 0; k < t->conf->sources.n; k++) {
			td_buf_appends(b, k ? "," : "");
			append_json_str(b, t->conf->sources.v[k]);
		}
		td_buf_appends(b, "],\"function\":");
		append_json_str(b, t->conf->function);
		td_buf_printf(b, ",\"invocation\":\"%s\",\"enabled\":%s,\"pattern\":",
			      t->conf->invocation == TD_INVOKE_SYNC ? "sync" : "async",
			      t->conf->enabled ? "true" : "false");
		if (t->conf->pattern)
			td_buf_appends(b, t->conf->pattern);
		else
			td_buf_appends(b, "null");
		td_buf_printf(b, ",\"matched\":%llu,\"on_success\":", t->matched);
		append_json_str(b, t->conf->on_success);
		td_buf_appends(b, ",\"on_failure\":");
		append_json_str(b, t->conf->on_failure);
		td_buf_appendc(b, '}');
	}
	td_buf_appendc(b, ']');
}

static void status_functions(struct td_router *r, struct td_buf *b, bool usage)
{
	long long now = td_wall_ms();
	td_buf_appendc(b, '[');
	for (size_t i = 0; i < r->nfunctions; i++) {
		const struct td_function *f = r->functions[i];
		const struct td_meter *m = &f->meter;
		const char *name = td_function_name(f);
		td_buf_appends(b, i ? ",{\"name\":" : "{\"name\":");
		append_json_str(b, name);
		if (!usage) {
			long long oldest = td_queue_oldest_ms(r->queue, name);
			td_buf_appends(b, ",\"kind\":");
			append_json_str(b, f->ops->name);
			td_buf_printf(
			    b,
			    ",\"state\":\"running\",\"in_flight\":%d,\"concurrency\":%lld,"
			    "\"timeout_ms\":%lld,\"queue_depth\":%lld,\"queue_oldest_age_ms\":"
			    "%lld,\"invocations\":%llu,\"errors\":%llu,\"retries\":%llu,"
			    "\"dead_lettered\":%llu",
			    f->in_flight, f->common->concurrency, f->common->timeout_ms,
			    td_queue_depth(r->queue, name), oldest > 0 ? now - oldest : 0,
			    m->requests, f->errors, f->retries, f->dead_lettered);
		}
		td_buf_printf(b,
			      ",\"requests\":%llu,\"errors\":%llu,\"throttles\":%llu,"
			      "\"billed_ms\":%llu,\"memory_mb\":%lld,\"gb_seconds\":%.6f,"
			      "\"cold_starts\":%llu,\"p50_ms\":%.3f,\"p99_ms\":%.3f}",
			      m->requests, m->errors, m->throttles + f->throttled_refusals,
			      m->billed_ms, m->memory_mb, td_gb_seconds(m->billed_ms, m->memory_mb),
			      m->cold_starts, td_meter_quantile(m, 0.5),
			      td_meter_quantile(m, 0.99));
	}
	td_buf_appendc(b, ']');
}

char *td_router_status_json(struct td_router *r, const char *what)
{
	struct td_buf b = {0};
	if (strcmp(what, "sources") == 0)
		status_sources(r, &b);
	else if (strcmp(what, "triggers") == 0)
		status_triggers(r, &b);
	else if (strcmp(what, "functions") == 0)
		status_functions(r, &b, false);
	else if (strcmp(what, "usage") == 0)
		status_functions(r, &b, true);
	else
		return NULL;
	return td_buf_steal(&b, NULL);
}
