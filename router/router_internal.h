/*
 * The router's instance structures, shared by router.c (life cycle, dispatch, retries)
 * and status.c (metrics and JSON status). Engine thread only, except the fields a
 * comment marks otherwise.
 */
#ifndef TRIGGERD_ROUTER_INTERNAL_H
#define TRIGGERD_ROUTER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <triggerd/pattern.h>
#include <triggerd/source.h>

#include "metering.h"
#include "router.h"

struct generation {
	struct td_config *cfg;
	int refs;
};

struct trigger_rt {
	const struct td_trigger *conf;
	size_t index; /* in the generation's trigger list: the order of sync results */
	struct td_function *function;
	struct td_destination *on_success, *on_failure;
	unsigned long long matched, invoked;
};

struct td_source {
	struct td_router *router;
	const struct td_source_ops *ops;
	const struct td_source_conf *conf;
	struct generation *gen;
	void *ctx;
	char scope[96];
	pthread_mutex_t health_lock;
	bool ready;
	char *reason;
	bool started, stopped;
	atomic_int pending; /* submissions and publishes not yet settled; any thread */
	/* The rules of the current generation for this source. */
	struct td_pattern_set *set;
	struct td_matcher *matcher;
	struct trigger_rt **rules; /* by rule id */
	size_t nrules;
	struct trigger_rt **always;
	size_t nalways;
	unsigned long long received, submissions, busy;
	_Atomic unsigned long long responses[600]; /* by HTTP status; any thread */
	atomic_bool has_sync;			   /* a sync trigger names it; any thread */
	struct td_source *next_retired;
};

struct td_function {
	struct td_router *router;
	const struct td_function_ops *ops;
	const struct td_function_conf *conf;
	const struct td_function_common *common;
	struct generation *gen;
	void *ctx;
	char scope[96];
	int in_flight;
	bool retired;
	struct td_meter meter;
	unsigned long long ok, errors, retries, dead_lettered, throttled_refusals;
	struct td_function *next_retired;
};

struct submission {
	struct td_source *src;
	void *handle;
	struct td_event **events;
	int n;
	int waiting_sync;
	bool waiting_commit;
	bool failed;
	bool commit_failed;
	int accepted;
	struct td_result result; /* of the first sync trigger (lowest index) */
	size_t result_trigger;
	bool has_result;
	struct submission *next_commit;
};

/* An invocation in flight, sync or async. */
struct call {
	struct td_invocation inv;
	struct td_router *router;
	struct submission *sub;	    /* sync from a source */
	struct trigger_rt *trigger; /* may be NULL (Invoke API) */
	size_t trigger_index;
	long long queue_id; /* async: the leased entry, else 0 */
	long long enqueued_ms;
	long long start_ns;
	void (*done)(void *arg, const struct td_result *result); /* Invoke API */
	void *done_arg;
	char *client_context;	  /* inv.client_context's copy */
	bool completed;		  /* td_invocation_complete ran */
	struct call *prev, *next; /* the router's calls in flight */
};

/* A direct async invoke waiting for its commit. */
struct pending_ack {
	void (*done)(void *arg, const struct td_result *result);
	void *arg;
	struct pending_ack *next;
};

struct td_router {
	struct td_engine *engine;
	struct td_http_server *webhook_http;
	struct generation *gen; /* current */
	struct td_queue *queue;
	struct td_source **sources;
	size_t nsources;
	struct td_function **functions;
	size_t nfunctions;
	struct trigger_rt *triggers;
	size_t ntriggers;
	struct td_source *retired_sources;
	struct td_function *retired_functions;
	struct submission *commit_wait;
	struct pending_ack *ack_wait;
	struct td_timer *due_timer;
	long long due_timer_at;
	struct td_timer *commit_timer; /* armed while only unawaited changes are staged */
	bool commit_due;	       /* it fired: commit at the next idle */
	struct call *calls;	       /* in flight */
	bool intake_stopped;
	unsigned long long dead_letter_failures;
};

#endif
