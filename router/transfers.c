/*
 * libcurl transfers on a thread of their own (contract in transfers.h).
 *
 * Hand-over: a transfer record moves through PENDING (queued by the engine thread),
 * RUNNING (on the transfer thread's multi handle) and FINISHED (queued back, with its
 * code), then the engine thread runs its done() and frees it. The three lists (pending,
 * finished, cancels) and every state change are under one mutex; each side wakes the
 * other through an eventfd only when it put something on an empty list. A cancel of a
 * RUNNING transfer is a request the transfer thread answers (the handle leaves its
 * multi handle) before td_transfers_cancel returns; a PENDING one just leaves its list;
 * a FINISHED one is marked so that td_transfers_finish drops it.
 *
 * Sockets in epoll: libcurl asks for a socket when a transfer starts on a kept-alive
 * connection and gives it up (CURL_POLL_REMOVE) when the transfer ends, so a naive
 * callback costs an EPOLL_CTL_ADD and a DEL per call. The thread keeps, per fd, the
 * mask registered in epoll and skips changes that change nothing; and a socket opened
 * here for libcurl (CURLOPT_OPENSOCKETFUNCTION) stays registered when libcurl gives it
 * up ("parked"), because libcurl closes such a socket only through
 * CURLOPT_CLOSESOCKETFUNCTION, where it leaves epoll first: a parked fd is never closed
 * behind our back, so its number cannot be reused by another owner while registered. An
 * event on a parked socket (the server closed an idle connection) takes it out of epoll
 * then; libcurl notices the dead connection itself when it next looks at it. Any other
 * socket libcurl watches (the threaded resolver's pipe) is taken out at once.
 */
#include "transfers.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <triggerd/engine.h>
#include <triggerd/errors.h>
#include <triggerd/log.h>

enum transfer_state {
	T_PENDING,
	T_RUNNING,
	T_FINISHED,
	T_CANCELLED, /* taken off the multi handle at a cancel: the canceller frees it */
	T_DROPPED,   /* cancelled while FINISHED: td_transfers_finish frees it */
};

struct transfer {
	CURL *easy;
	void (*done)(void *arg, CURLcode code);
	void *arg;
	CURLcode code;
	enum transfer_state state;
	struct transfer *next;		      /* on the pending or the finished list */
	struct transfer *next_cancel;	      /* on the cancels list */
	struct transfer *run_prev, *run_next; /* on the running list (the thread's) */
};

/* What the thread knows of one fd that libcurl uses (indexed by fd). */
struct curl_sock {
	uint32_t events; /* the mask registered in epoll (when in_epoll) */
	bool in_epoll;
	bool ours;   /* opened by open_socket: libcurl closes it through close_socket */
	bool wanted; /* libcurl watches it now; in_epoll && !wanted: parked */
};

struct td_transfers {
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t let_go; /* a cancelled transfer left the multi handle */
	int wake_fd;	       /* engine -> thread: pending transfers, cancels or stop */
	int done_fd;	       /* thread -> engine: finished transfers */
	/* under lock */
	bool stop;
	struct transfer *pending, **pending_tail;
	struct transfer *finished, **finished_tail;
	struct transfer *cancels;
	/* the transfer thread's own (and destroy's, after the join) */
	int epoll_fd;
	CURLM *multi;
	struct transfer *running; /* on the multi handle */
	/* the engine thread's own */
	struct transfer *spare; /* freed records kept for reuse */
	size_t nspare;
	long long curl_due_ms;
	struct curl_sock *socks;
	size_t nsocks;
};

static void notify(int fd)
{
	uint64_t one = 1;
	ssize_t rc = write(fd, &one, sizeof one);
	(void)rc; /* a full counter still wakes the reader */
}

static void drain(int fd)
{
	uint64_t count;
	ssize_t rc = read(fd, &count, sizeof count);
	(void)rc;
}

/* ---- sockets ---- */

/* The state of fd, growing the table; NULL for a bad fd or when out of memory (the
 * caller then does every epoll change for real). */
static struct curl_sock *sock_state(struct td_transfers *t, curl_socket_t fd)
{
	if (fd < 0)
		return NULL;
	if ((size_t)fd >= t->nsocks) {
		size_t n = t->nsocks ? t->nsocks : 64;
		while (n <= (size_t)fd)
			n *= 2;
		struct curl_sock *socks = realloc(t->socks, n * sizeof *socks);
		if (!socks)
			return NULL;
		memset(socks + t->nsocks, 0, (n - t->nsocks) * sizeof *socks);
		t->socks = socks;
		t->nsocks = n;
	}
	return &t->socks[fd];
}

/* The registered state of fd, without growing; NULL when it has none. */
static struct curl_sock *sock_known(struct td_transfers *t, int fd)
{
	return fd >= 0 && (size_t)fd < t->nsocks ? &t->socks[fd] : NULL;
}

static void sock_unregister(struct td_transfers *t, int fd, struct curl_sock *st)
{
	if (st->in_epoll)
		epoll_ctl(t->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
	st->in_epoll = false;
	st->events = 0;
}

/* libcurl wants socket s watched for `what` (or no longer: CURL_POLL_REMOVE). */
static int socket_changed(CURL *easy, curl_socket_t s, int what, void *arg, void *socketp)
{
	(void)easy;
	(void)socketp;
	struct td_transfers *t = arg;
	struct curl_sock *st = sock_state(t, s);
	if (what == CURL_POLL_REMOVE) {
		if (!st) {
			epoll_ctl(t->epoll_fd, EPOLL_CTL_DEL, s, NULL);
			return 0;
		}
		st->wanted = false;
		if (!st->ours) /* its close would not reach us: out now */
			sock_unregister(t, s, st);
		return 0;
	}
	struct epoll_event ev = {.data.fd = s};
	if (what & CURL_POLL_IN)
		ev.events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev.events |= EPOLLOUT;
	if (st) {
		st->wanted = true;
		if (st->in_epoll && st->events == ev.events)
			return 0;
	}
	int op = st && st->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(t->epoll_fd, op, s, &ev) < 0 &&
	    epoll_ctl(t->epoll_fd, op == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s, &ev) <
		0) {
		td_log_error("transfers: cannot watch socket %d: %s", (int)s, strerror(errno));
		if (st)
			st->in_epoll = false;
		return 0;
	}
	if (st) {
		st->in_epoll = true;
		st->events = ev.events;
	}
	return 0;
}

/* CURLOPT_OPENSOCKETFUNCTION: the socket of a connection, with a clean state. */
static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
	struct td_transfers *t = arg;
	(void)purpose;
	int fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
	if (fd < 0)
		return CURL_SOCKET_BAD;
	struct curl_sock *st = sock_state(t, fd);
	if (st) {
		/* The number is new to its owner: whatever it carried is stale. */
		sock_unregister(t, fd, st);
		*st = (struct curl_sock){.ours = true};
	}
	return fd;
}

/* CURLOPT_CLOSESOCKETFUNCTION: out of epoll (parked or not), then closed. */
static int close_socket(void *arg, curl_socket_t fd)
{
	struct td_transfers *t = arg;
	struct curl_sock *st = sock_known(t, fd);
	if (st) {
		sock_unregister(t, fd, st);
		*st = (struct curl_sock){0};
	}
	return close(fd);
}

/* An epoll event for a libcurl fd; false when the fd is parked (it leaves epoll then:
 * libcurl does not watch it, and it would keep waking a level-triggered loop). */
static bool sock_event_wanted(struct td_transfers *t, int fd)
{
	struct curl_sock *st = sock_known(t, fd);
	if (!st || !st->in_epoll || st->wanted)
		return true;
	sock_unregister(t, fd, st);
	return false;
}

static int timer_changed(CURLM *multi, long timeout_ms, void *arg)
{
	(void)multi;
	struct td_transfers *t = arg;
	t->curl_due_ms = timeout_ms < 0 ? -1 : td_now_ms() + timeout_ms;
	return 0;
}

/* ---- the transfer thread ---- */

static void running_add(struct td_transfers *t, struct transfer *tr)
{
	tr->run_prev = NULL;
	tr->run_next = t->running;
	if (t->running)
		t->running->run_prev = tr;
	t->running = tr;
}

static void running_remove(struct td_transfers *t, struct transfer *tr)
{
	if (tr->run_prev)
		tr->run_prev->run_next = tr->run_next;
	else
		t->running = tr->run_next;
	if (tr->run_next)
		tr->run_next->run_prev = tr->run_prev;
}

/* Puts tr on the finished list (under the lock); true when the engine must be woken. */
static bool finished_locked(struct td_transfers *t, struct transfer *tr, CURLcode code)
{
	bool wake = !t->finished;
	tr->code = code;
	tr->state = T_FINISHED;
	tr->next = NULL;
	*t->finished_tail = tr;
	t->finished_tail = &tr->next;
	return wake;
}

/* Hands the transfers that ended back to the engine thread. */
static void collect_finished(struct td_transfers *t)
{
	int left;
	CURLMsg *msg;
	bool wake = false;
	while ((msg = curl_multi_info_read(t->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		CURL *easy = msg->easy_handle;
		CURLcode code = msg->data.result;
		struct transfer *tr = NULL;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&tr);
		curl_multi_remove_handle(t->multi, easy);
		if (!tr)
			continue;
		running_remove(t, tr);
		pthread_mutex_lock(&t->lock);
		wake |= finished_locked(t, tr, code);
		pthread_mutex_unlock(&t->lock);
	}
	if (wake)
		notify(t->done_fd);
}

static void act(struct td_transfers *t, curl_socket_t s, int flags)
{
	int running;
	curl_multi_socket_action(t->multi, s, flags, &running);
	collect_finished(t);
}

/* Takes the new transfers and answers the cancels; false once asked to stop. */
static bool take_requests(struct td_transfers *t)
{
	pthread_mutex_lock(&t->lock);
	bool stop = t->stop;
	struct transfer *add = t->pending;
	t->pending = NULL;
	t->pending_tail = &t->pending;
	for (struct transfer *tr = add; tr; tr = tr->next)
		tr->state = T_RUNNING;
	struct transfer *cancel = t->cancels;
	t->cancels = NULL;
	for (; cancel; cancel = cancel->next_cancel) {
		if (cancel->state == T_RUNNING) {
			curl_multi_remove_handle(t->multi, cancel->easy);
			running_remove(t, cancel);
			cancel->state = T_CANCELLED;
		} else if (cancel->state == T_FINISHED) {
			cancel->state = T_DROPPED;
		}
	}
	pthread_cond_broadcast(&t->let_go);
	pthread_mutex_unlock(&t->lock);
	/* Outside the lock: a transfer is RUNNING before it is added, so a cancel that
	 * comes now waits for the next round, when it is on the multi handle. */
	while (add) {
		struct transfer *next = add->next;
		CURLMcode rc = curl_multi_add_handle(t->multi, add->easy);
		if (rc == CURLM_OK) {
			running_add(t, add);
		} else {
			td_log_error("transfers: curl_multi_add_handle: %s",
				     curl_multi_strerror(rc));
			/* Finished at once with an error: its owner hears of it. */
			pthread_mutex_lock(&t->lock);
			bool wake = finished_locked(t, add, CURLE_FAILED_INIT);
			pthread_cond_broadcast(&t->let_go);
			pthread_mutex_unlock(&t->lock);
			if (wake)
				notify(t->done_fd);
		}
		add = next;
	}
	if (!stop)
		act(t, CURL_SOCKET_TIMEOUT, 0); /* start what was added */
	return !stop;
}

static void *run(void *arg)
{
	struct td_transfers *t = arg;
	struct epoll_event events[64];
	for (;;) {
		int wait = -1;
		if (t->curl_due_ms >= 0) {
			long long left = t->curl_due_ms - td_now_ms();
			wait = left > 0 ? (int)(left < 1000 ? left : 1000) : 0;
		}
		int n = epoll_wait(t->epoll_fd, events, 64, wait);
		for (int i = 0; i < n; i++) {
			int fd = events[i].data.fd;
			if (fd == t->wake_fd) {
				drain(t->wake_fd);
				if (!take_requests(t))
					return NULL;
				continue;
			}
			if (!sock_event_wanted(t, fd))
				continue;
			int flags = 0;
			if (events[i].events & (EPOLLIN | EPOLLHUP))
				flags |= CURL_CSELECT_IN;
			if (events[i].events & EPOLLOUT)
				flags |= CURL_CSELECT_OUT;
			if (events[i].events & EPOLLERR)
				flags |= CURL_CSELECT_ERR;
			act(t, fd, flags);
		}
		if (t->curl_due_ms >= 0 && t->curl_due_ms <= td_now_ms()) {
			t->curl_due_ms = -1;
			act(t, CURL_SOCKET_TIMEOUT, 0);
		}
	}
}

/* ---- the engine thread's side ---- */

#define SPARE_RECORDS 1024 /* freed transfer records kept for reuse */

static struct transfer *record_get(struct td_transfers *t)
{
	struct transfer *tr = t->spare;
	if (!tr)
		return calloc(1, sizeof *tr);
	t->spare = tr->next;
	t->nspare--;
	memset(tr, 0, sizeof *tr);
	return tr;
}

static void record_put(struct td_transfers *t, struct transfer *tr)
{
	if (t->nspare >= SPARE_RECORDS) {
		free(tr);
		return;
	}
	tr->next = t->spare;
	t->spare = tr;
	t->nspare++;
}

struct td_transfers *td_transfers_create(void)
{
	struct td_transfers *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	t->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	t->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	t->multi = curl_multi_init();
	t->curl_due_ms = -1;
	t->pending_tail = &t->pending;
	t->finished_tail = &t->finished;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->let_go, NULL);
	struct epoll_event wake = {.events = EPOLLIN, .data.fd = t->wake_fd};
	if (t->wake_fd < 0 || t->done_fd < 0 || t->epoll_fd < 0 || !t->multi ||
	    epoll_ctl(t->epoll_fd, EPOLL_CTL_ADD, t->wake_fd, &wake) < 0) {
		td_log_error("transfers: cannot create the transfer loop: %s", strerror(errno));
		goto fail;
	}
	curl_multi_setopt(t->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
	curl_multi_setopt(t->multi, CURLMOPT_MAXCONNECTS, 256L);
	curl_multi_setopt(t->multi, CURLMOPT_SOCKETFUNCTION, socket_changed);
	curl_multi_setopt(t->multi, CURLMOPT_SOCKETDATA, t);
	curl_multi_setopt(t->multi, CURLMOPT_TIMERFUNCTION, timer_changed);
	curl_multi_setopt(t->multi, CURLMOPT_TIMERDATA, t);
	int rc = pthread_create(&t->thread, NULL, run, t);
	if (rc != 0) {
		td_log_error("transfers: cannot start the transfer thread: %s", strerror(rc));
		goto fail;
	}
	t->started = true;
	return t;
fail:
	td_transfers_destroy(t);
	return NULL;
}

static void free_list(struct transfer *tr)
{
	while (tr) {
		struct transfer *next = tr->next;
		free(tr);
		tr = next;
	}
}

void td_transfers_destroy(struct td_transfers *t)
{
	if (!t)
		return;
	if (t->started) {
		pthread_mutex_lock(&t->lock);
		t->stop = true;
		pthread_mutex_unlock(&t->lock);
		notify(t->wake_fd);
		pthread_join(t->thread, NULL);
	}
	/* Transfers still on the multi handle are dropped with their records. */
	while (t->running) {
		struct transfer *tr = t->running;
		running_remove(t, tr);
		curl_multi_remove_handle(t->multi, tr->easy);
		curl_easy_setopt(tr->easy, CURLOPT_PRIVATE, NULL);
		free(tr);
	}
	if (t->multi)
		curl_multi_cleanup(t->multi); /* closes the pooled connections: close_socket */
	free_list(t->pending);
	free_list(t->finished);
	free_list(t->spare);
	free(t->socks);
	if (t->wake_fd >= 0)
		close(t->wake_fd);
	if (t->done_fd >= 0)
		close(t->done_fd);
	if (t->epoll_fd >= 0)
		close(t->epoll_fd);
	pthread_cond_destroy(&t->let_go);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

int td_transfers_done_fd(const struct td_transfers *t)
{
	return t->done_fd;
}

int td_transfers_start(struct td_transfers *t, CURL *easy, void (*done)(void *arg, CURLcode code),
		       void *arg)
{
	struct transfer *tr = record_get(t);
	if (!tr)
		return -TD_ENOMEM;
	tr->easy = easy;
	tr->done = done;
	tr->arg = arg;
	curl_easy_setopt(easy, CURLOPT_PRIVATE, tr);
	curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, t);
	curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, close_socket);
	curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, t);
	pthread_mutex_lock(&t->lock);
	bool wake = !t->pending && !t->cancels;
	tr->state = T_PENDING;
	*t->pending_tail = tr;
	t->pending_tail = &tr->next;
	pthread_mutex_unlock(&t->lock);
	if (wake)
		notify(t->wake_fd);
	return 0;
}

void td_transfers_cancel(struct td_transfers *t, CURL *easy)
{
	struct transfer *tr = NULL;
	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&tr);
	if (!tr)
		return;
	bool free_it = false;
	pthread_mutex_lock(&t->lock);
	switch (tr->state) {
	case T_PENDING:
		for (struct transfer **p = &t->pending; *p; p = &(*p)->next)
			if (*p == tr) {
				*p = tr->next;
				if (t->pending_tail == &tr->next)
					t->pending_tail = p;
				break;
			}
		free_it = true;
		break;
	case T_RUNNING: {
		bool wake = !t->pending && !t->cancels;
		tr->next_cancel = t->cancels;
		t->cancels = tr;
		if (wake)
			notify(t->wake_fd);
		while (tr->state == T_RUNNING)
			pthread_cond_wait(&t->let_go, &t->lock);
		free_it = tr->state == T_CANCELLED;
		break;
	}
	case T_FINISHED:
		tr->state = T_DROPPED;
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&t->lock);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
	if (free_it)
		record_put(t, tr);
}

void td_transfers_finish(struct td_transfers *t)
{
	drain(t->done_fd);
	pthread_mutex_lock(&t->lock);
	struct transfer *list = t->finished;
	t->finished = NULL;
	t->finished_tail = &t->finished;
	pthread_mutex_unlock(&t->lock);
	while (list) {
		struct transfer *tr = list;
		list = tr->next;
		/* A done() may cancel a transfer further down the list: DROPPED then. */
		if (tr->state == T_FINISHED) {
			curl_easy_setopt(tr->easy, CURLOPT_PRIVATE, NULL);
			tr->done(tr->arg, tr->code);
		}
		record_put(t, tr);
	}
}
