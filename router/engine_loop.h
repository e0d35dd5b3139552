/*
 * The engine loop's life cycle, for the daemon (router/main.c) and the router; the
 * services that connectors and function kinds use are in include/triggerd/engine.h.
 * All of these run on the engine thread.
 */
#ifndef TRIGGERD_ENGINE_LOOP_H
#define TRIGGERD_ENGINE_LOOP_H

#include <triggerd/engine.h>

struct td_engine *td_engine_create(void);
/* Frees the engine; calls still queued are dropped (those of td_engine_call_always run
 * first) and later td_engine_call()s fail. */
void td_engine_destroy(struct td_engine *engine);
/* Runs until td_engine_stop(); returns 0. */
int td_engine_run(struct td_engine *engine);
void td_engine_stop(struct td_engine *engine);
/* Calls fn(arg, fd) on the engine thread when fd is readable. At most 8 fds. */
int td_engine_watch_fd(struct td_engine *engine, int fd, void (*fn)(void *arg, int fd), void *arg);
/* Called once per loop iteration after calls, timers and transfers: the router commits
 * the queue and settles sources there (group commit). */
void td_engine_set_idle_hook(struct td_engine *engine, void (*fn)(void *arg), void *arg);

#endif
