/*
 * Reading a runtime process's output (see process_output.h). The thread sleeps in
 * poll() on the pipe and on an eventfd that destroy uses to stop it; when the pipe is
 * readable it reads everything there under the lock into `raw` and posts one drain
 * call to the engine unless one is already on its way. The engine side moves `raw` into
 * its own partial-line buffer and cuts lines there, so callbacks run without the lock
 * (they may destroy this pout, or another). The object is reference-counted: the
 * thread, a posted drain and the owner each hold one.
 */
#include "process_output.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <triggerd/engine.h>
#include <triggerd/errors.h>

#include "../router/json.h"

struct td_pout {
	pthread_mutex_t lock;
	int refs;
	int fd, stop_fd;
	struct td_buf raw; /* read by either side, not yet split (under lock) */
	bool eof, posted;
	pthread_t thread;
	bool joined;
	/* Engine thread only. */
	struct td_engine *engine;
	struct td_buf part;
	bool eof_delivered, destroyed;
	bool delivering; /* a drain from inside a callback has nothing more to do */
	td_pout_line_fn on_line;
	td_pout_eof_fn on_eof;
	void *arg;
};

void td_pout_split(char *buf, size_t *len, int final, td_pout_line_fn fn, void *arg)
{
	size_t start = 0, n = *len;

	while (start < n) {
		char *nl = memchr(buf + start, '\n', n - start);
		size_t end = nl ? (size_t)(nl - buf) : n;
		if (!nl && end - start < TD_POUT_MAX_LINE && !final)
			break;
		if (end - start > TD_POUT_MAX_LINE) {
			fn(arg, buf + start, TD_POUT_MAX_LINE);
			start += TD_POUT_MAX_LINE;
			continue;
		}
		size_t l = end - start;
		if (l > 0 && buf[start + l - 1] == '\r')
			l--;
		fn(arg, buf + start, l);
		start = nl ? end + 1 : end;
	}
	memmove(buf, buf + start, n - start);
	*len = n - start;
}

static void pout_unref(struct td_pout *po)
{
	pthread_mutex_lock(&po->lock);
	bool last = --po->refs == 0;
	pthread_mutex_unlock(&po->lock);
	if (!last)
		return;
	td_buf_free(&po->raw);
	td_buf_free(&po->part);
	pthread_mutex_destroy(&po->lock);
	free(po);
}

/* Under the lock: reads what the pipe holds now. */
/* Output read but not yet taken by the engine stays under this: past it the reader
 * stops reading until a drain took it, so a process that writes faster than the engine
 * cuts lines waits on its full pipe instead of growing triggerd's memory. */
#define RAW_MAX (1u << 20)

static void read_locked(struct td_pout *po)
{
	char tmp[16384];

	while (!po->eof && po->fd >= 0 && po->raw.len < RAW_MAX) {
		ssize_t n = read(po->fd, tmp, sizeof tmp);
		if (n > 0) {
			td_buf_append(&po->raw, tmp, (size_t)n);
			if (td_buf_failed(&po->raw))
				td_buf_reset(&po->raw); /* out of memory: drop output */
		} else if (n == 0) {
			po->eof = true;
		} else if (errno == EINTR) {
			continue;
		} else {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				po->eof = true;
			break;
		}
	}
}

static void line_cb(void *arg, const char *line, size_t len)
{
	struct td_pout *po = arg;
	if (!po->destroyed && po->on_line)
		po->on_line(po->arg, line, len);
}

/* Engine thread; the caller holds a reference. */
static void deliver(struct td_pout *po)
{
	if (po->delivering)
		return;
	po->delivering = true;
	pthread_mutex_lock(&po->lock);
	read_locked(po);
	struct td_buf raw = po->raw;
	td_buf_init(&po->raw);
	bool eof = po->eof;
	pthread_mutex_unlock(&po->lock);

	if (raw.len)
		td_buf_append(&po->part, raw.data, raw.len);
	td_buf_free(&raw);
	if (td_buf_failed(&po->part))
		td_buf_reset(&po->part);
	if (po->part.len)
		td_pout_split(po->part.data, &po->part.len, eof, line_cb, po);
	po->delivering = false;
	if (eof && !po->eof_delivered && !po->destroyed) {
		po->eof_delivered = true;
		if (po->on_eof)
			po->on_eof(po->arg);
	}
}

static void posted_drain(void *arg)
{
	struct td_pout *po = arg;
	pthread_mutex_lock(&po->lock);
	po->posted = false;
	pthread_mutex_unlock(&po->lock);
	if (!po->destroyed)
		deliver(po);
	pout_unref(po);
}

static void *reader(void *arg)
{
	struct td_pout *po = arg;

	for (;;) {
		struct pollfd p[2] = {{.fd = po->fd, .events = POLLIN},
				      {.fd = po->stop_fd, .events = POLLIN}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		bool post = false, eof, full;
		pthread_mutex_lock(&po->lock);
		read_locked(po);
		eof = po->eof;
		full = po->raw.len >= RAW_MAX;
		if ((po->raw.len || eof) && !po->posted) {
			po->posted = post = true;
			po->refs++;
		}
		pthread_mutex_unlock(&po->lock);
		if (post && td_engine_call_always(po->engine, posted_drain, po) < 0) {
			pthread_mutex_lock(&po->lock);
			po->posted = false;
			pthread_mutex_unlock(&po->lock);
			pout_unref(po);
			break;
		}
		if (eof)
			break;
		if (!post && (!(p[0].revents & POLLIN) || full)) {
			/* POLLHUP with nothing to read, or RAW_MAX unread, and a drain
			 * pending: wait for it. */
			usleep(1000);
		}
	}
	pout_unref(po);
	return NULL;
}

struct td_pout *td_pout_create(struct td_engine *engine, int fd, td_pout_line_fn on_line,
			       td_pout_eof_fn on_eof, void *arg)
{
	struct td_pout *po = calloc(1, sizeof *po);
	if (!po)
		goto fail;
	pthread_mutex_init(&po->lock, NULL);
	td_buf_init(&po->raw);
	td_buf_init(&po->part);
	po->fd = fd;
	po->engine = engine;
	po->on_line = on_line;
	po->on_eof = on_eof;
	po->arg = arg;
	po->refs = 2; /* the owner and the thread */
	po->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (po->stop_fd < 0)
		goto fail;
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		goto fail;
	if (pthread_create(&po->thread, NULL, reader, po) != 0)
		goto fail;
	return po;
fail:
	if (po) {
		if (po->stop_fd > 0)
			close(po->stop_fd);
		pthread_mutex_destroy(&po->lock);
		free(po);
	}
	close(fd);
	return NULL;
}

void td_pout_drain(struct td_pout *po)
{
	if (!po || po->destroyed)
		return;
	pthread_mutex_lock(&po->lock);
	po->refs++;
	pthread_mutex_unlock(&po->lock);
	deliver(po);
	pout_unref(po);
}

void td_pout_destroy(struct td_pout *po)
{
	if (!po || po->destroyed)
		return;
	po->destroyed = true;
	uint64_t one = 1;
	ssize_t w = write(po->stop_fd, &one, sizeof one);
	(void)w;
	pthread_join(po->thread, NULL);
	pthread_mutex_lock(&po->lock);
	close(po->fd);
	po->fd = -1;
	pthread_mutex_unlock(&po->lock);
	close(po->stop_fd);
	pout_unref(po);
}
