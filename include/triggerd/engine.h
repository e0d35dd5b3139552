/*
 * The engine: the one thread that owns the rule set, dispatch, the async queue and
 * timers, and starts and finishes every libcurl transfer (which runs, in between, on
 * the engine's transfer thread: router/transfers.h). Connectors and function kinds
 * never touch its state; they use the services below.
 *
 * Threads: td_engine_call() may be called from any thread (it is how other threads get
 * work done on the engine thread: the inbox). Everything else here must be called on
 * the engine thread, and every callback it takes runs on the engine thread, except the
 * callbacks of a running transfer's easy handle (see td_engine_curl_start).
 */
#ifndef TRIGGERD_ENGINE_H
#define TRIGGERD_ENGINE_H

#include <stdbool.h>
#include <curl/curl.h>

struct td_engine;

/* Milliseconds of CLOCK_MONOTONIC and of the wall clock (CLOCK_REALTIME). */
long long td_now_ms(void);
long long td_wall_ms(void);
/* Nanoseconds of CLOCK_MONOTONIC, for durations. */
long long td_now_ns(void);

/*
 * Runs fn(arg) on the engine thread soon, from any thread. Calls are run in the order
 * they were made, in batches: one wakeup of the engine serves every call queued since
 * the last. Returns 0, or -TD_ESTATE once the engine has stopped (fn is then not run).
 */
int td_engine_call(struct td_engine *engine, void (*fn)(void *arg), void *arg);
/* As td_engine_call, for a call whose fn touches nothing but arg (a reference-counted
 * handle that lets itself go): when the engine loop ends before running it, fn(arg)
 * still runs once, inside td_engine_destroy (on the thread destroying the engine, after
 * the router is gone), so that the reference the call holds is never lost. */
int td_engine_call_always(struct td_engine *engine, void (*fn)(void *arg), void *arg);

/* One-shot timers on the engine thread. td_timer_cancel returns false when the timer
 * already ran or was cancelled; a timer may be cancelled from inside its own callback. */
struct td_timer;
struct td_timer *td_timer_add(struct td_engine *engine, long long delay_ms, void (*fn)(void *arg),
			      void *arg);
bool td_timer_cancel(struct td_engine *engine, struct td_timer *timer);

/*
 * Runs a libcurl easy handle on the engine's transfer thread; done(arg, code) runs on
 * the engine thread when the transfer ends, after the handle left the multi handle (the
 * caller still owns the easy handle and cleans it up, typically in done). Connections
 * are reused across calls. Until done (or td_engine_curl_cancel) the handle belongs to
 * the transfer thread, which runs its callbacks (CURLOPT_WRITEFUNCTION and the like):
 * they may touch only what belongs to this transfer, and nothing else may use the handle.
 * The engine owns the handle's CURLOPT_PRIVATE and its open and close socket callbacks.
 */
int td_engine_curl_start(struct td_engine *engine, CURL *easy,
			 void (*done)(void *arg, CURLcode code), void *arg);
/* Takes a running transfer off the transfer thread (waiting for it to let go) without
 * calling its done(); the caller then cleans the easy handle up. For a kind that drops
 * its invocations at shutdown or at a timeout of its own. */
void td_engine_curl_cancel(struct td_engine *engine, CURL *easy);

#endif
