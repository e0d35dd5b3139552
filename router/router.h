/*
 * The router: turns a loaded configuration into running sources and functions, takes
 * events from sources, matches them against the triggers of their source, invokes the
 * matched functions synchronously or through the durable queue, retries, sends results
 * to destinations, meters every invocation, and settles each submission back to its
 * source exactly once.
 *
 * Threads: everything here runs on the engine thread, except where a comment says
 * otherwise. Connectors reach the router only through include/triggerd/source.h, function
 * kinds through include/triggerd/function.h.
 */
#ifndef TRIGGERD_ROUTER_H
#define TRIGGERD_ROUTER_H

#include <stdbool.h>

#include <triggerd/config.h>
#include <triggerd/engine.h>
#include <triggerd/event.h>
#include <triggerd/function.h>

struct td_router;
struct td_http_server;

/* Creates the router on an engine; opens the queue in cfg's state directory. The router
 * takes cfg over (it frees it). NULL with errors logged. */
struct td_router *td_router_create(struct td_engine *engine, struct td_config *cfg,
				   struct td_http_server *webhook_http);
/* Starts every source. Returns 0, or -TD_E* when a source failed to start (logged). */
int td_router_start(struct td_router *router);
/*
 * Replaces the configuration (SIGHUP): the rule set is swapped at once; sources and
 * functions whose settings did not change keep running, the others are stopped,
 * started or replaced. Takes cfg over. Returns 0, or -TD_E* with the old
 * configuration still running.
 */
int td_router_reload(struct td_router *router, struct td_config *cfg);
/*
 * Shutdown, step one: stops intake of every source. Step two happens as the engine
 * runs: td_router_drained() becomes true when no sync invocation is in flight and
 * everything staged is committed. td_router_destroy() settles what is left as busy (the
 * sources will deliver it again), commits the queue and frees everything.
 */
void td_router_stop_intake(struct td_router *router);
bool td_router_drained(const struct td_router *router);
void td_router_destroy(struct td_router *router);

const struct td_config *td_router_config(const struct td_router *router);
struct td_engine *td_router_engine(struct td_router *router);
struct td_http_server *td_router_webhook_http(struct td_router *router);

/* Readiness: true when every source is ready; else reasons gets a malloc'ed JSON array
 * of {"source": ..., "reason": ...} (may be NULL). */
bool td_router_ready(struct td_router *router, char **reasons_json);
/* Malloc'ed texts for the admin API: Prometheus exposition text, and JSON status of
 * "sources", "triggers", "functions" or "usage" (NULL for another name). */
char *td_router_metrics(struct td_router *router);
char *td_router_status_json(struct td_router *router, const char *what);

/* What a direct invocation carries besides its event. */
struct td_invoke_meta {
	const char *request_id;	    /* the sync invocation's id; NULL: a new UUID */
	const char *client_context; /* JSON text for the function's context, or NULL */
};

/*
 * Invokes a function directly (the Lambda Invoke API and `triggerctl invoke`): sync
 * calls done(arg, result) on the engine thread when the function answered; async
 * (Event) durably queues the event and calls done with TD_RESULT_OK once it is
 * committed. Returns 0, -TD_ENOTFOUND (no such function), -TD_EFULL (concurrency or
 * queue full: throttled). Takes over the caller's reference to event. meta (may be NULL;
 * copied) gives a sync invocation its request id, so that the Invoke API's
 * x-amzn-RequestId is the id the function sees, as on AWS Lambda, and its client context.
 */
int td_router_invoke(struct td_router *router, const char *function, struct td_event *event,
		     bool sync, const struct td_invoke_meta *meta,
		     void (*done)(void *arg, const struct td_result *result), void *arg);

#endif
