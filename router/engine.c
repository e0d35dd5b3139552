/*
 * The engine loop: one thread that runs calls handed in by other threads (the inbox),
 * one-shot timers, and the done() of every libcurl transfer, and sleeps in epoll_wait()
 * when there is nothing to do. The transfers themselves run on a thread of their own
 * (router/transfers.c), which hands each one back through an fd the loop watches: the
 * engine thread's time goes to intake, matching and the queue.
 *
 * The inbox is a mutex-protected list plus an eventfd. Cross-thread wakeups are dear
 * on small machines, so a producer writes the eventfd only when the engine sleeps and
 * no wakeup is already pending, and the engine drains the whole list per wakeup.
 *
 * Timers live in a binary min-heap keyed by due time; each timer knows its heap slot,
 * so cancelling is O(log n). Extra file descriptors (a signalfd, a listening socket of
 * a kind) can be watched with td_engine_watch_fd().
 */
#include "engine_loop.h"
#include "transfers.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <triggerd/errors.h>
#include <triggerd/log.h>

#define MAX_WATCHED_FDS 8

struct call {
	struct call *next;
	void (*fn)(void *arg);
	void *arg;
	bool always; /* td_engine_call_always: run even at destroy */
};

struct td_timer {
	long long due_ms;
	unsigned long long seq; /* ties broken by order of creation */
	size_t slot;		/* index in the heap */
	void (*fn)(void *arg);
	void *arg;
};

struct watched_fd {
	int fd;
	void (*fn)(void *arg, int fd);
	void *arg;
};

struct td_engine {
	struct td_transfers *transfers;
	int epoll_fd;
	int wake_fd;
	pthread_mutex_t lock;
	struct call *calls, *calls_tail; /* the inbox, under lock */
	bool sleeping, wake_pending, closed;
	struct td_timer **heap;
	size_t heap_len, heap_cap;
	unsigned long long timer_seq;
	struct watched_fd watched[MAX_WATCHED_FDS];
	int n_watched;
	void (*idle_hook)(void *arg);
	void *idle_arg;
	bool running;
};

long long td_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

long long td_now_ms(void)
{
	return td_now_ns() / 1000000;
}

long long td_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void transfers_finished(void *arg, int fd)
{
	(void)fd;
	td_transfers_finish(arg);
}

struct td_engine *td_engine_create(void)
{
	struct td_engine *e = calloc(1, sizeof *e);
	if (!e)
		return NULL;
	e->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	e->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event wake = {.events = EPOLLIN, .data.fd = e->wake_fd};
	if (e->wake_fd < 0 || e->epoll_fd < 0 ||
	    epoll_ctl(e->epoll_fd, EPOLL_CTL_ADD, e->wake_fd, &wake) < 0) {
		td_log_error("engine: cannot create the event loop: %s", strerror(errno));
		goto fail;
	}
	if (!(e->transfers = td_transfers_create()) ||
	    td_engine_watch_fd(e, td_transfers_done_fd(e->transfers), transfers_finished,
			       e->transfers) < 0)
		goto fail;
	pthread_mutex_init(&e->lock, NULL);
	return e;
fail:
	td_transfers_destroy(e->transfers);
	if (e->wake_fd >= 0)
		close(e->wake_fd);
	if (e->epoll_fd >= 0)
		close(e->epoll_fd);
	free(e);
	return NULL;
}

void td_engine_destroy(struct td_engine *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&e->lock);
	e->closed = true;
	struct call *c = e->calls;
	e->calls = e->calls_tail = NULL;
	pthread_mutex_unlock(&e->lock);
	while (c) { /* accepted but never run: the loop had ended */
		struct call *next = c->next;
		if (c->always)
			c->fn(c->arg);
		free(c);
		c = next;
	}
	for (size_t i = 0; i < e->heap_len; i++)
		free(e->heap[i]);
	free(e->heap);
	td_transfers_destroy(e->transfers);
	close(e->wake_fd);
	close(e->epoll_fd);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

static int post_call(struct td_engine *e, void (*fn)(void *arg), void *arg, bool always)
{
	struct call *c = malloc(sizeof *c);
	if (!c)
		return -TD_ENOMEM;
	c->next = NULL;
	c->fn = fn;
	c->arg = arg;
	c->always = always;
	bool wake = false;
	pthread_mutex_lock(&e->lock);
	if (e->closed) {
		pthread_mutex_unlock(&e->lock);
		free(c);
		return -TD_ESTATE;
	}
	if (e->calls_tail)
		e->calls_tail->next = c;
	else
		e->calls = c;
	e->calls_tail = c;
	if (e->sleeping && !e->wake_pending) {
		e->wake_pending = true;
		wake = true;
	}
	pthread_mutex_unlock(&e->lock);
	if (wake) {
		uint64_t one = 1;
		ssize_t rc = write(e->wake_fd, &one, sizeof one);
		(void)rc;
	}
	return 0;
}

int td_engine_call(struct td_engine *e, void (*fn)(void *arg), void *arg)
{
	return post_call(e, fn, arg, false);
}

int td_engine_call_always(struct td_engine *e, void (*fn)(void *arg), void *arg)
{
	return post_call(e, fn, arg, true);
}

/* Runs every call queued so far; returns how many ran. */
static int run_calls(struct td_engine *e)
{
	pthread_mutex_lock(&e->lock);
	struct call *c = e->calls;
	e->calls = e->calls_tail = NULL;
	pthread_mutex_unlock(&e->lock);
	int n = 0;
	while (c) {
		struct call *next = c->next;
		c->fn(c->arg);
		free(c);
		c = next;
		n++;
	}
	return n;
}

/* ---- timers ---- */

static bool timer_before(const struct td_timer *a, const struct td_timer *b)
{
	return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->seq < b->seq);
}

static void heap_set(struct td_engine *e, size_t i, struct td_timer *t)
{
	e->heap[i] = t;
	t->slot = i;
}

static void heap_up(struct td_engine *e, size_t i)
{
	struct td_timer *t = e->heap[i];
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!timer_before(t, e->heap[parent]))
			break;
		heap_set(e, i, e->heap[parent]);
		i = parent;
	}
	heap_set(e, i, t);
}

static void heap_down(struct td_engine *e, size_t i)
{
	struct td_timer *t = e->heap[i];
	for (;;) {
		size_t child = 2 * i + 1;
		if (child >= e->heap_len)
			break;
		if (child + 1 < e->heap_len && timer_before(e->heap[child + 1], e->heap[child]))
			child++;
		if (!timer_before(e->heap[child], t))
			break;
		heap_set(e, i, e->heap[child]);
		i = child;
	}
	heap_set(e, i, t);
}

static void heap_remove(struct td_engine *e, size_t i)
{
	struct td_timer *last = e->heap[--e->heap_len];
	if (i == e->heap_len)
		return;
	heap_set(e, i, last);
	heap_down(e, i);
	heap_up(e, last->slot);
}

struct td_timer *td_timer_add(struct td_engine *e, long long delay_ms, void (*fn)(void *arg),
			      void *arg)
{
	if (e->heap_len == e->heap_cap) {
		size_t cap = e->heap_cap ? e->heap_cap * 2 : 64;
		struct td_timer **heap = realloc(e->heap, cap * sizeof *heap);
		if (!heap)
			return NULL;
		e->heap = heap;
		e->heap_cap = cap;
	}
	struct td_timer *t = malloc(sizeof *t);
	if (!t)
		return NULL;
	t->due_ms = td_now_ms() + (delay_ms > 0 ? delay_ms : 0);
	t->seq = e->timer_seq++;
	t->fn = fn;
	t->arg = arg;
	heap_set(e, e->heap_len++, t);
	heap_up(e, t->slot);
	return t;
}

bool td_timer_cancel(struct td_engine *e, struct td_timer *t)
{
	if (!t || t->slot >= e->heap_len || e->heap[t->slot] != t)
		return false;
	heap_remove(e, t->slot);
	free(t);
	return true;
}

/* Runs due timers; returns ms until the next one, or -1 for none. */
static long long run_timers(struct td_engine *e)
{
	long long now = td_now_ms();
	while (e->heap_len > 0 && e->heap[0]->due_ms <= now) {
		struct td_timer *t = e->heap[0];
		heap_remove(e, 0);
		t->slot = SIZE_MAX;
		void (*fn)(void *) = t->fn;
		void *arg = t->arg;
		free(t);
		fn(arg);
	}
	return e->heap_len ? e->heap[0]->due_ms - now : -1;
}

/* ---- libcurl ---- */

int td_engine_curl_start(struct td_engine *e, CURL *easy, void (*done)(void *arg, CURLcode code),
			 void *arg)
{
	return td_transfers_start(e->transfers, easy, done, arg);
}

void td_engine_curl_cancel(struct td_engine *e, CURL *easy)
{
	td_transfers_cancel(e->transfers, easy);
}

/* ---- the loop ---- */

int td_engine_watch_fd(struct td_engine *e, int fd, void (*fn)(void *arg, int fd), void *arg)
{
	if (e->n_watched == MAX_WATCHED_FDS)
		return -TD_EFULL;
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
	if (epoll_ctl(e->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -TD_EIO;
	e->watched[e->n_watched++] = (struct watched_fd){fd, fn, arg};
	return 0;
}

void td_engine_set_idle_hook(struct td_engine *e, void (*fn)(void *arg), void *arg)
{
	e->idle_hook = fn;
	e->idle_arg = arg;
}

void td_engine_stop(struct td_engine *e)
{
	e->running = false;
}

static bool is_watched(struct td_engine *e, int fd, int *index)
{
	for (int i = 0; i < e->n_watched; i++)
		if (e->watched[i].fd == fd) {
			*index = i;
			return true;
		}
	return false;
}

int td_engine_run(struct td_engine *e)
{
	struct epoll_event events[64];
	e->running = true;
	while (e->running) {
		run_calls(e);
		long long next_timer = run_timers(e);
		if (e->idle_hook)
			e->idle_hook(e->idle_arg);
		if (!e->running)
			break;
		long long wait = 1000;
		if (next_timer >= 0 && next_timer < wait)
			wait = next_timer;

		pthread_mutex_lock(&e->lock);
		if (e->calls)
			wait = 0;
		e->sleeping = true;
		pthread_mutex_unlock(&e->lock);

		int n = epoll_wait(e->epoll_fd, events, 64, (int)wait);

		pthread_mutex_lock(&e->lock);
		e->sleeping = false;
		bool drain = e->wake_pending;
		e->wake_pending = false;
		pthread_mutex_unlock(&e->lock);
		if (drain) {
			uint64_t count;
			ssize_t rc = read(e->wake_fd, &count, sizeof count);
			(void)rc;
		}
		for (int i = 0; i < n; i++) {
			int fd = events[i].data.fd, w;
			if (fd == e->wake_fd)
				continue;
			if (is_watched(e, fd, &w))
				e->watched[w].fn(e->watched[w].arg, fd);
		}
	}
	return 0;
}
