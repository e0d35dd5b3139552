/*
 * libcurl transfers on a thread of their own, for the engine (router/engine.c), which
 * offers them to function kinds and destinations as td_engine_curl_start/_cancel.
 *
 * The engine thread hands an easy handle over; the transfer thread runs it on its own
 * multi handle and epoll loop (connection pool and DNS cache shared by every transfer)
 * and hands it back when it ends: done(arg, code) runs on the engine thread, from the
 * engine's watch of done_fd. So the engine thread's time goes to intake, matching and
 * the queue, and the sending and receiving of function calls runs beside it.
 *
 * Threads: create, destroy, start, cancel and finish are called on the engine thread.
 * Between start and done (or cancel) the easy handle belongs to the transfer thread,
 * which runs its callbacks (write, header): those must touch only what belongs to the
 * transfer, and the engine thread must not use the handle.
 */
#ifndef TRIGGERD_TRANSFERS_H
#define TRIGGERD_TRANSFERS_H

#include <curl/curl.h>

struct td_transfers;

/* Starts the transfer thread; NULL (logged) when it cannot. */
struct td_transfers *td_transfers_create(void);
/* Stops the thread and frees everything; transfers still running are dropped without
 * their done(). NULL is ignored. */
void td_transfers_destroy(struct td_transfers *t);
/* Readable when finished transfers wait for td_transfers_finish (an eventfd). */
int td_transfers_done_fd(const struct td_transfers *t);
/* Runs the done() of every finished transfer (on the engine thread). */
void td_transfers_finish(struct td_transfers *t);

/* As td_engine_curl_start and td_engine_curl_cancel (include/triggerd/engine.h); the
 * transfers own the handle's CURLOPT_PRIVATE and its open and close socket callbacks.
 * cancel waits until the transfer thread has let the handle go. */
int td_transfers_start(struct td_transfers *t, CURL *easy, void (*done)(void *arg, CURLcode code),
		       void *arg);
void td_transfers_cancel(struct td_transfers *t, CURL *easy);

#endif
