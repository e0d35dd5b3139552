/*
 * The durable async queue: staging and group commit, due order, leases, per-function
 * limits, counters, reopening, surviving _exit() and SIGKILL (in forked children),
 * memory mode, bad and unwritable files, and a failed write (RLIMIT_FSIZE) undoing its
 * whole group while leases survive. Every test works in its own temporary directory.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <triggerd/errors.h>

#include "../../router/queue.h"

static char qdir[64];
static char qpath[128];

static void queue_setup(void)
{
	snprintf(qdir, sizeof qdir, "/tmp/td-queue-test-XXXXXX");
	cr_assert_not_null(mkdtemp(qdir));
	snprintf(qpath, sizeof qpath, "%s/queue.db", qdir);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void queue_teardown(void)
{
	nftw(qdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(queue, .init = queue_setup, .fini = queue_teardown);

static struct td_queue *open_ok(const char *dir, enum td_queue_durability d)
{
	char err[512];
	struct td_queue *q = td_queue_open(dir, d, err, sizeof err);
	cr_assert_not_null(q, "td_queue_open(%s): %s", dir ? dir : "NULL", err);
	return q;
}

static long long push_ok(struct td_queue *q, const char *fn, const char *event,
			 long long enqueued_ms, long long due_ms)
{
	struct td_queue_entry e = {
	    .function = fn,
	    .trigger = "trig",
	    .event = event,
	    .event_len = strlen(event),
	    .enqueued_ms = enqueued_ms,
	    .due_ms = due_ms,
	};
	long long id = -1;
	int rc = td_queue_push(q, &e, 0, &id);
	cr_assert_eq(rc, 0, "push %s/%s: %d", fn, event, rc);
	cr_assert_gt(id, 0);
	return id;
}

static bool has_event(const struct td_queue_entry *e, const char *event)
{
	return e->event_len == strlen(event) && memcmp(e->event, event, e->event_len) == 0;
}

/* ---- basic flow ---- */

Test(queue, push_commit_take_complete)
{
	struct td_queue *q = open_ok(qdir, TD_QUEUE_FSYNC);
	static const char ev[] = "hello\0world"; /* bytes, not a string */
	struct td_queue_entry in = {
	    .function = "fa",
	    .trigger = "t1",
	    .event = ev,
	    .event_len = sizeof ev - 1,
	    .attempts = 0,
	    .enqueued_ms = 1000,
	    .due_ms = 1000,
	};
	long long id = 0;
	cr_assert_eq(td_queue_push(q, &in, 0, &id), 0);
	cr_assert_gt(id, 0);
	cr_assert_eq(td_queue_depth(q, "fa"), 1);
	cr_assert_eq(td_queue_depth(q, NULL), 1);

	const struct td_queue_entry *out[4];
	cr_assert_eq(td_queue_take(q, "fa", 5000, out, 4), 0, "staged entries are not taken");
	cr_assert_eq(td_queue_next_due_ms(q), -1);
	cr_assert_eq(td_queue_commit(q), 0);
	cr_assert_eq(td_queue_next_due_ms(q), 1000);
	cr_assert_eq(td_queue_take(q, "fa", 999, out, 4), 0, "not due yet");
	cr_assert_eq(td_queue_take(q, "fa", 1000, out, 4), 1);
	const struct td_queue_entry *e = out[0];
	cr_assert_eq(e->id, id);
	cr_assert_str_eq(e->function, "fa");
	cr_assert_str_eq(e->trigger, "t1");
	cr_assert_eq(e->event_len, sizeof ev - 1);
	cr_assert_eq(memcmp(e->event, ev, sizeof ev - 1), 0);
	cr_assert_eq(((const char *)e->event)[e->event_len], '\0');
	cr_assert_eq(e->attempts, 0);
	cr_assert_eq(e->enqueued_ms, 1000);
	cr_assert_eq(e->due_ms, 1000);
	cr_assert_null(e->last_error);

	cr_assert_eq(td_queue_take(q, "fa", 5000, out, 4), 0, "a leased entry is not taken");
	cr_assert_eq(td_queue_next_due_ms(q), -1);
	cr_assert_eq(td_queue_depth(q, "fa"), 1, "leased entries count");
	cr_assert_eq(td_queue_complete(q, id), 0);
	cr_assert_eq(td_queue_depth(q, "fa"), 0);
	cr_assert_eq(td_queue_complete(q, id), -TD_ENOTFOUND);
	cr_assert_eq(td_queue_commit(q), 0);
	cr_assert_eq(td_queue_commit(q), 0, "nothing staged");

	long long id2 = push_ok(q, "fa", "x", 1, 1);
	cr_assert_gt(id2, id, "ids are not reused");
	cr_assert_eq(td_queue_commit(q), 0);
	td_queue_close(q);

	q = open_ok(qdir, TD_QUEUE_FSYNC);
	cr_assert_eq(td_queue_depth(q, "fa"), 1, "the completion was durable");
	cr_assert_eq(td_queue_take(q, "fa", 1, out, 4), 1);
	cr_assert_eq(out[0]->id, id2);
	cr_assert(has_event(out[0], "x"));
	td_queue_close(q);
}

Test(queue, null_trigger_and_empty_event)
{
	struct td_queue *q = open_ok(qdir, TD_QUEUE_OS);
	struct td_queue_entry in = {.function = "f", .event = NULL, .event_len = 0};
	long long id;
	cr_assert_eq(td_queue_push(q, &in, 0, &id), 0);
	cr_assert_eq(td_queue_push(q, &in, 0, NULL), 0, "id may be NULL");
	cr_assert_eq(td_queue_commit(q), 0);
	const struct td_queue_entry *out[2];
	cr_assert_eq(td_queue_take(q, "f", 0, out, 2), 2);
	cr_assert_null(out[0]->trigger);
	cr_assert_eq(out[0]->event_len, 0);
	cr_assert_not_null(out[0]->event);
	td_queue_close(q);
}

/* ---- ordering ---- */

Test(queue, due_order)
{
	static const struct {
		const char *fn;
		long long due;
	} pushes[] = {
	    {"f", 50}, {"f", 10}, {"g", 5}, {"f", 30}, {"f", 10}, {"f", 20}, {"f", 40},
	};
	/* (due, push position) expected for "f": due first, then push order */
	static const int order[] = {1, 4, 5, 3, 6, 0};
	struct td_queue *q = open_ok(qdir, TD_QUEUE_OS);
	long long ids[7];
	char ev[16];
	for (int i = 0; i < 7; i++) {
		snprintf(ev, sizeof ev, "e%d", i);
		ids[i] = push_ok(q, pushes[i].fn, ev, 0, pushes[i].due);
	}
	cr_assert_eq(td_queue_commit(q), 0);
	cr_assert_eq(td_queue_next_due_ms(q), 5);

	const struct td_queue_entry *out[16];
	static const struct {
		long long now;
		int limit, want;
	} steps[] = {{9, 16, 0}, {25, 2, 2}, {25, 16, 1}, {100, 16, 3}, {100, 16, 0}};
	int seen = 0;
	for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
		int n = td_queue_take(q, "f", steps[s].now, out, steps[s].limit);
		cr_assert_eq(n, steps[s].want, "step %zu: %d taken", s, n);
		for (int i = 0; i < n; i++, seen++) {
			cr_assert_eq(out[i]->id, ids[order[seen]], "position %d", seen);
			snprintf(ev, sizeof ev, "e%d", order[seen]);
			cr_assert(has_event(out[i], ev));
		}
	}
	cr_assert_eq(seen, 6);
	cr_assert_eq(td_queue_take(q, "g", 100, out, 16), 1, "other functions are apart");
	cr_assert_eq(out[0]->id, ids[2]);
	cr_assert_eq(td_queue_take(q, "nobody", 100, out, 16), 0);
	td_queue_close(q);
}

/* ---- leases ---- */

Test(queue, leases_release_retry)
{
	struct td_queue *q = open_ok(qdir, TD_QUEUE_FSYNC);
	long long a = push_ok(q, "f", "a", 1, 10);
	long long b = push_ok(q, "f", "b", 2, 10);
	long long c = push_ok(q, "f", "c", 3, 10);
	cr_assert_eq(td_queue_commit(q), 0);
	cr_assert_eq(td_queue_release(q, a), -TD_ESTATE, "not leased");
	cr_assert_eq(td_queue_complete(q, a), -TD_ESTATE, "not leased");
	cr_assert_eq(td_queue_retry(q, a, 5, "x"), -TD_ESTATE, "not leased");
	cr_assert_eq(td_queue_release(q, 999), -TD_ENOTFOUND);
	cr_assert_eq(td_queue_retry(q, 999, 5, "x"), -TD_ENOTFOUND);

	const struct td_queue_entry *out[8];
	cr_assert_eq(td_queue_take(q, "f", 10, out, 2), 2);
	cr_assert_eq(out[0]->id, a);
	cr_assert_eq(out[1]->id, b);
	cr_assert_eq(td_queue_take(q, "f", 10, out, 8), 1);
	cr_assert_eq(out[0]->id, c);
	cr_assert_eq(td_queue_take(q, "f", 10, out, 8), 0, "all leased");

	cr_assert_eq(td_queue_release(q, a), 0);
	cr_assert_eq(td_queue_release(q, a), -TD_ESTATE, "released already");
	cr_assert_eq(td_queue_next_due_ms(q), 10);
	cr_assert_eq(td_queue_take(q, "f", 10, out, 8), 1);
	cr_assert_eq(out[0]->id, a);
	cr_assert_eq(out[0]->attempts, 0, "release changes nothing");
	cr_assert_eq(out[0]->due_ms, 10);
	cr_assert_null(out[0]->last_error);

	cr_assert_eq(td_queue_retry(q, b, 500, "HTTP 503 from function"), 0);
	cr_assert_eq(td_queue_next_due_ms(q), 500);
	cr_assert_eq(td_queue_take(q, "f", 499, out, 8), 0, "not due before the backoff");
	cr_assert_eq(td_queue_take(q, "f", 500, out, 8), 1);
	cr_assert_eq(out[0]->id, b);
	cr_assert_eq(out[0]->attempts, 1);
	cr_assert_eq(out[0]->due_ms, 500);
	cr_assert_eq(out[0]->enqueued_ms, 2, "the first enqueue time is kept");
	cr_assert_str_eq(out[0]->last_error, "HTTP 503 from function");
	cr_assert(has_event(out[0], "b"));

	cr_assert_eq(td_queue_retry(q, b, 600, NULL), 0);
	cr_assert_eq(td_queue_take(q, "f", 600, out, 8), 1);
	cr_assert_eq(out[0]->attempts, 2);
	cr_assert_null(out[0]->last_error);
	cr_assert_eq(td_queue_commit(q), 0);
	td_queue_close(q);

	/* Leases are memory only: after a restart all three are due again. */
	q = open_ok(qdir, TD_QUEUE_FSYNC);
	cr_assert_eq(td_queue_take(q, "f", 1000, out, 8), 3);
	cr_assert_eq(out[0]->id, a);
	cr_assert_eq(out[1]->id, c);
	cr_assert_eq(out[2]->id, b);
	cr_assert_eq(out[2]->attempts, 2);
	td_queue_close(q);
}

Test(queue, leased_memory_stays_valid)
{
	struct td_queue *q = open_ok(qdir, TD_QUEUE_MEMORY);
	long long a = push_ok(q, "f", "first event", 1, 1);
	cr_assert_eq(td_queue_commit(q), 0);
	const struct td_queue_entry *held[1], *out[64];
	cr_assert_eq(td_queue_take(q, "f", 1, held, 1), 1);
	/* Much else happens while it is leased (ASan checks the memory). */
	char ev[32];
	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < 50; i++) {
			snprintf(ev, sizeof ev, "r%d-%d", round, i);
			push_ok(q, i % 2 ? "f" : "g", ev, 2, 2);
		}
		cr_assert_eq(td_queue_commit(q), 0);
		int n = td_queue_take(q, "f", 2, out, 64);
		for (int i = 0; i < n; i++)
			cr_assert_eq(td_queue_complete(q, out[i]->id), 0);
		cr_assert_eq(td_queue_commit(q), 0);
	}
	cr_assert_eq(held[0]->id, a);
	cr_assert(has_event(held[0], "first event"));
	cr_assert_str_eq(held[0]->function, "f");
	cr_assert_eq(td_queue_complete(q, a), 0);
	cr_assert_eq(td_queue_depth(q, "f"), 0);
	cr_assert_eq(td_queue_depth(q, "g"), 500);
	td_queue_close(q);
}

/* ---- limits ---- */

Test(queue, limit_per_function)
{
	static const struct {
		long long max;
		int pushes, accepted;
	} cases[] = {{3, 5, 3}, {1, 2, 1}, {0, 20, 20}, {-1, 7, 7}};
	struct td_queue *q = open_ok(qdir, TD_QUEUE_OS);
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		char fn[16];
		snprintf(fn, sizeof fn, "fn%zu", c);
		struct td_queue_entry e = {.function = fn, .event = "x", .event_len = 1};
		int ok = 0;
		for (int i = 0; i < cases[c].pushes; i++) {
			int rc = td_queue_push(q, &e, cases[c].max, NULL);
			if (rc == 0)
				ok++;
			else
				cr_assert_eq(rc, -TD_EFULL, "case %zu push %d: %d", c, i, rc);
		}
		cr_assert_eq(ok, cases[c].accepted, "case %zu", c);
		cr_assert_eq(td_queue_depth(q, fn), cases[c].accepted);
	}
	cr_assert_eq(td_queue_commit(q), 0);

	/* Leased entries still count; a completion makes room. */
	struct td_queue_entry e = {.function = "fn0", .event = "y", .event_len = 1};
	const struct td_queue_entry *out[1];
	cr_assert_eq(td_queue_take(q, "fn0", 0, out, 1), 1);
	cr_assert_eq(td_queue_push(q, &e, 3, NULL), -TD_EFULL);
	cr_assert_eq(td_queue_push(q, &e, 4, NULL), 0, "a larger limit admits it");
	cr_assert_eq(td_queue_push(q, &e, 4, NULL), -TD_EFULL);
	cr_assert_eq(td_queue_complete(q, out[0]->id), 0);
	cr_assert_eq(td_queue_push(q, &e, 4, NULL), 0);
	cr_assert_eq(td_queue_depth(q, "fn0"), 4);
	cr_assert_eq(td_queue_depth(q, NULL), 4 + 1 + 20 + 7);
	cr_assert_eq(td_queue_commit(q), 0);
	td_queue_close(q);
}

/* ---- counters ---- */

Test(queue, depth_oldest_next_due)
{
	struct td_queue *q = open_ok(qdir, TD_QUEUE_FSYNC);
	cr_assert_eq(td_queue_next_due_ms(q), -1);
	cr_assert_eq(td_queue_oldest_ms(q, "fa"), 0);
	long long a1 = push_ok(q, "fa", "a1", 300, 700);
	long long a2 = push_ok(q, "fa", "a2", 100, 900);
	long long a3 = push_ok(q, "fa", "a3", 200, 800);
	push_ok(q, "fb", "b1", 50, 1000);

	static const struct {
		const char *fn;
		long long depth, oldest;
	} before[] = {{"fa", 3, 100}, {"fb", 1, 50}, {"fc", 0, 0}, {NULL, 4, 0}};
	for (size_t i = 0; i < sizeof before / sizeof before[0]; i++) {
		cr_assert_eq(td_queue_depth(q, before[i].fn), before[i].depth, "row %zu", i);
		cr_assert_eq(td_queue_oldest_ms(q, before[i].fn), before[i].oldest, "row %zu", i);
	}
	cr_assert_eq(td_queue_next_due_ms(q), -1, "nothing committed yet");
	cr_assert_eq(td_queue_commit(q), 0);

	const struct td_queue_entry *out[8];
	static const struct {
		long long now;
		int want;
		long long next_due, oldest_fa;
	} steps[] = {{0, 0, 700, 100}, {750, 1, 800, 100}, {2000, 2, 1000, 100}};
	for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
		cr_assert_eq(td_queue_take(q, "fa", steps[s].now, out, 8), steps[s].want,
			     "step %zu", s);
		cr_assert_eq(td_queue_next_due_ms(q), steps[s].next_due, "step %zu", s);
		cr_assert_eq(td_queue_oldest_ms(q, "fa"), steps[s].oldest_fa, "step %zu", s);
	}
	cr_assert_eq(td_queue_complete(q, a2), 0);
	cr_assert_eq(td_queue_oldest_ms(q, "fa"), 200);
	cr_assert_eq(td_queue_complete(q, a3), 0);
	cr_assert_eq(td_queue_oldest_ms(q, "fa"), 300);
	cr_assert_eq(td_queue_retry(q, a1, 650, "e"), 0);
	cr_assert_eq(td_queue_next_due_ms(q), 650);
	cr_assert_eq(td_queue_depth(q, "fa"), 1);
	cr_assert_eq(td_queue_depth(q, NULL), 2);
	cr_assert_eq(td_queue_commit(q), 0);
	td_queue_close(q);

	q = open_ok(qdir, TD_QUEUE_FSYNC);
	cr_assert_eq(td_queue_depth(q, "fa"), 1);
	cr_assert_eq(td_queue_depth(q, "fb"), 1);
	cr_assert_eq(td_queue_oldest_ms(q, "fa"), 300);
	cr_assert_eq(td_queue_oldest_ms(q, "fb"), 50);
	cr_assert_eq(td_queue_next_due_ms(q), 650);
	td_queue_close(q);
}

/* ---- durability ---- */

Test(queue, reopen_keeps_committed)
{
	static const enum td_queue_durability modes[] = {TD_QUEUE_FSYNC, TD_QUEUE_OS};
	for (size_t m = 0; m < 2; m++) {
		char dir[160];
		snprintf(dir, sizeof dir, "%s/%s/nested", qdir, td_queue_durability_name(modes[m]));
		struct td_queue *q = open_ok(dir, modes[m]);
		long long ids[5];
		char ev[16];
		for (int i = 0; i < 5; i++) {
			snprintf(ev, sizeof ev, "ev%d", i);
			ids[i] = push_ok(q, i % 2 ? "odd" : "even", ev, 10 + i, 10);
		}
		cr_assert_eq(td_queue_commit(q), 0);
		const struct td_queue_entry *out[4];
		cr_assert_eq(td_queue_take(q, "even", 10, out, 3), 3);
		cr_assert_eq(td_queue_retry(q, ids[0], 77, "e1"), 0);
		cr_assert_eq(td_queue_complete(q, ids[2]), 0);
		/* ids[4] stays leased at close */
		cr_assert_eq(td_queue_commit(q), 0);
		push_ok(q, "odd", "never committed", 1, 1);
		td_queue_close(q);

		q = open_ok(dir, modes[m]);
		cr_assert_eq(td_queue_depth(q, NULL), 4, "mode %zu", m);
		cr_assert_eq(td_queue_depth(q, "even"), 2);
		cr_assert_eq(td_queue_depth(q, "odd"), 2);
		cr_assert_eq(td_queue_take(q, "even", 1000, out, 4), 2);
		cr_assert_eq(out[0]->id, ids[4], "a lease does not survive a restart");
		cr_assert_eq(out[1]->id, ids[0]);
		cr_assert_eq(out[1]->attempts, 1);
		cr_assert_eq(out[1]->due_ms, 77);
		cr_assert_str_eq(out[1]->last_error, "e1");
		cr_assert_eq(out[1]->enqueued_ms, 10);
		cr_assert(has_event(out[1], "ev0"));
		cr_assert_eq(td_queue_take(q, "odd", 1000, out, 4), 2);
		cr_assert(has_event(out[0], "ev1"));
		cr_assert(has_event(out[1], "ev3"));
		long long next = push_ok(q, "odd", "new", 1, 1);
		cr_assert_gt(next, ids[4], "new ids follow the stored ones");
		td_queue_close(q);
	}
}

#define CRASH_COMMITTED 200
#define CRASH_GROUP	50

/* The child: pushes CRASH_COMMITTED entries in committed groups, stages more, and dies
 * without closing. */
static void crash_child(enum td_queue_durability d, bool sigkill)
{
	struct td_queue *q = td_queue_open(qdir, d, NULL, 0);
	if (!q)
		_exit(3);
	char ev[32];
	for (int i = 0; i < CRASH_COMMITTED + 10; i++) {
		snprintf(ev, sizeof ev, "event-%d", i);
		struct td_queue_entry e = {
		    .function = "f", .event = ev, .event_len = strlen(ev), .due_ms = i};
		if (td_queue_push(q, &e, 0, NULL) != 0)
			_exit(4);
		if ((i + 1) % CRASH_GROUP == 0 && i < CRASH_COMMITTED && td_queue_commit(q) != 0)
			_exit(5);
	}
	if (sigkill)
		kill(getpid(), SIGKILL);
	_exit(0);
}

Test(queue, crash_keeps_committed)
{
	static const struct {
		enum td_queue_durability d;
		bool sigkill;
	} cases[] = {
	    {TD_QUEUE_FSYNC, false},
	    {TD_QUEUE_FSYNC, true},
	    {TD_QUEUE_OS, false},
	    {TD_QUEUE_OS, true},
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		queue_teardown();
		cr_assert_eq(mkdir(qdir, 0700), 0);
		pid_t pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0)
			crash_child(cases[c].d, cases[c].sigkill);
		int status;
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		if (cases[c].sigkill)
			cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
				  "case %zu: status %#x", c, status);
		else
			cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
				  "case %zu: status %#x", c, status);

		struct td_queue *q = open_ok(qdir, cases[c].d);
		/* Every committed entry is there; the staged ones were never committed, and
		 * SQLite rolls back an unfinished transaction. */
		cr_assert_eq(td_queue_depth(q, "f"), CRASH_COMMITTED, "case %zu", c);
		const struct td_queue_entry *out[CRASH_COMMITTED + 10];
		int n = td_queue_take(q, "f", 1 << 30, out, CRASH_COMMITTED + 10);
		cr_assert_eq(n, CRASH_COMMITTED);
		char ev[32];
		for (int i = 0; i < n; i++) {
			snprintf(ev, sizeof ev, "event-%d", i);
			cr_assert(has_event(out[i], ev), "case %zu entry %d", c, i);
		}
		td_queue_close(q);
	}
}

/* A child commits groups of 10 forever and reports each commit; the parent kills it
 * mid-stream. Every reported commit must be found, and only whole groups. */
Test(queue, sigkill_during_writes)
{
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		struct td_queue *q = td_queue_open(qdir, TD_QUEUE_FSYNC, NULL, 0);
		if (!q)
			_exit(3);
		char ev[32];
		for (int i = 0;; i++) {
			snprintf(ev, sizeof ev, "event-%d", i);
			struct td_queue_entry e = {
			    .function = "f", .event = ev, .event_len = strlen(ev), .due_ms = i};
			if (td_queue_push(q, &e, 0, NULL) != 0)
				_exit(4);
			if ((i + 1) % 10 == 0) {
				if (td_queue_commit(q) != 0)
					_exit(5);
				int done = i + 1;
				if (write(fds[1], &done, sizeof done) != sizeof done)
					_exit(6);
			}
		}
	}
	close(fds[1]);
	int done = 0, got;
	while (done < 300 && read(fds[0], &got, sizeof got) == sizeof got)
		done = got;
	cr_assert_geq(done, 300, "the child stopped early");
	kill(pid, SIGKILL);
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %#x", status);
	while (read(fds[0], &got, sizeof got) == sizeof got)
		done = got;
	close(fds[0]);

	struct td_queue *q = open_ok(qdir, TD_QUEUE_FSYNC);
	long long depth = td_queue_depth(q, "f");
	cr_assert_geq(depth, done, "reported %d committed, found %lld", done, depth);
	cr_assert_leq(depth, done + 10, "at most the group being committed when killed");
	cr_assert_eq(depth % 10, 0, "whole groups only: %lld", depth);
	const struct td_queue_entry **out = calloc((size_t)depth, sizeof *out);
	cr_assert_not_null(out);
	cr_assert_eq(td_queue_take(q, "f", 1LL << 40, out, (int)depth), depth);
	char ev[32];
	for (long long i = 0; i < depth; i++) {
		snprintf(ev, sizeof ev, "event-%lld", i);
		cr_assert(has_event(out[i], ev), "entry %lld", i);
	}
	free(out);
	td_queue_close(q);
}

Test(queue, memory_mode_keeps_nothing)
{
	struct td_queue *q = open_ok(NULL, TD_QUEUE_MEMORY);
	long long id = push_ok(q, "f", "in memory", 1, 1);
	cr_assert_eq(td_queue_commit(q), 0);
	const struct td_queue_entry *out[2];
	cr_assert_eq(td_queue_take(q, "f", 1, out, 2), 1);
	cr_assert_eq(out[0]->id, id);
	cr_assert(has_event(out[0], "in memory"));
	cr_assert_eq(td_queue_retry(q, id, 5, "err"), 0);
	cr_assert_eq(td_queue_commit(q), 0);
	cr_assert_eq(td_queue_take(q, "f", 5, out, 2), 1);
	cr_assert_str_eq(out[0]->last_error, "err");
	td_queue_close(q);

	q = open_ok(qdir, TD_QUEUE_MEMORY);
	cr_assert_eq(td_queue_depth(q, NULL), 0, "nothing survives");
	push_ok(q, "f", "x", 1, 1);
	cr_assert_eq(td_queue_commit(q), 0);
	td_queue_close(q);
	struct stat st;
	cr_assert_eq(stat(qpath, &st), -1, "memory mode writes no file");
	q = open_ok(qdir, TD_QUEUE_MEMORY);
	cr_assert_eq(td_queue_depth(q, NULL), 0);
	td_queue_close(q);
}

/* ---- big group ---- */

Test(queue, ten_thousand_in_one_commit)
{
	enum { N = 10000 };
	static const char *const fns[] = {"alpha", "beta", "gamma"};
	struct td_queue *q = open_ok(qdir, TD_QUEUE_FSYNC);
	char ev[64];
	for (int i = 0; i < N; i++) {
		snprintf(ev, sizeof ev, "{\"n\":%d}", i);
		push_ok(q, fns[i % 3], ev, i, 7);
	}
	cr_assert_eq(td_queue_commit(q), 0);
	td_queue_close(q);

	q = open_ok(qdir, TD_QUEUE_FSYNC);
	cr_assert_eq(td_queue_depth(q, NULL), N);
	const struct td_queue_entry *out[500];
	for (int f = 0; f < 3; f++) {
		int next = f, n;
		while ((n = td_queue_take(q, fns[f], 7, out, 500)) > 0) {
			for (int i = 0; i < n; i++, next += 3) {
				snprintf(ev, sizeof ev, "{\"n\":%d}", next);
				cr_assert(has_event(out[i], ev), "%s: expected %s", fns[f], ev);
				cr_assert_eq(td_queue_complete(q, out[i]->id), 0);
			}
		}
		cr_assert_eq(n, 0);
		cr_assert_geq(next, N, "%s: all taken in push order", fns[f]);
	}
	cr_assert_eq(td_queue_commit(q), 0);
	cr_assert_eq(td_queue_depth(q, NULL), 0);
	td_queue_close(q);
	q = open_ok(qdir, TD_QUEUE_FSYNC);
	cr_assert_eq(td_queue_depth(q, NULL), 0);
	td_queue_close(q);
}

/* ---- bad input and bad files ---- */

Test(queue, bad_input)
{
	struct td_queue *q = open_ok(qdir, TD_QUEUE_OS);
	static const struct td_queue_entry bad[] = {
	    {.function = NULL, .event = "x", .event_len = 1},
	    {.function = "", .event = "x", .event_len = 1},
	    {.function = "f", .event = NULL, .event_len = 5},
	    {.function = "f", .event = "x", .event_len = 1, .attempts = -1},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_assert_eq(td_queue_push(q, &bad[i], 0, NULL), -TD_EINVAL, "row %zu", i);
	cr_assert_eq(td_queue_push(q, NULL, 0, NULL), -TD_EINVAL);
	cr_assert_eq(td_queue_push(NULL, &bad[0], 0, NULL), -TD_EINVAL);
	const struct td_queue_entry *out[1];
	cr_assert_eq(td_queue_take(q, "f", 0, out, -1), -TD_EINVAL);
	cr_assert_eq(td_queue_take(q, NULL, 0, out, 1), -TD_EINVAL);
	cr_assert_eq(td_queue_take(q, "f", 0, NULL, 0), 0);
	cr_assert_eq(td_queue_commit(NULL), -TD_EINVAL);
	cr_assert_eq(td_queue_depth(q, NULL), 0, "nothing was stored");
	td_queue_close(q);
	td_queue_close(NULL);

	static const struct {
		const char *name;
		int want;
	} names[] = {{"fsync", TD_QUEUE_FSYNC},
		     {"os", TD_QUEUE_OS},
		     {"memory", TD_QUEUE_MEMORY},
		     {"FSYNC", -1},
		     {"", -1},
		     {NULL, -1}};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		cr_assert_eq(td_queue_durability_parse(names[i].name), names[i].want, "row %zu", i);
	cr_assert_str_eq(td_queue_durability_name(TD_QUEUE_OS), "os");

	char err[256];
	cr_assert_null(td_queue_open(NULL, TD_QUEUE_FSYNC, err, sizeof err));
	cr_assert(strstr(err, "no state directory"), "%s", err);
	cr_assert_null(td_queue_open(qdir, (enum td_queue_durability)7, err, sizeof err));
	cr_assert(strstr(err, "durability"), "%s", err);
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	cr_assert_eq(fwrite(data, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
}

static void sql_exec(const char *path, const char *sql)
{
	sqlite3 *db;
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	cr_assert_eq(rc, SQLITE_OK, "%s: %s", sql, msg ? msg : "");
	sqlite3_close(db);
}

static void make_garbage(void)
{
	char junk[4096];
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = (char)("not a database "[i % 15]);
	write_file(qpath, junk, sizeof junk);
}

static void make_short_garbage(void)
{
	write_file(qpath, "SQLite junk", 11);
}

static void make_db_dir(void)
{
	cr_assert_eq(mkdir(qpath, 0700), 0);
}

static void make_foreign_db(void)
{
	sql_exec(qpath, "CREATE TABLE photos (id INTEGER, path TEXT)");
}

static void make_newer_schema(void)
{
	struct td_queue *q = open_ok(qdir, TD_QUEUE_FSYNC);
	td_queue_close(q);
	sql_exec(qpath, "PRAGMA user_version = 2");
}

static void make_wrong_table(void)
{
	sql_exec(qpath, "CREATE TABLE other (x); PRAGMA user_version = 1");
}

static void damage_row(const char *sql)
{
	struct td_queue *q = open_ok(qdir, TD_QUEUE_FSYNC);
	push_ok(q, "f", "x", 1, 1);
	cr_assert_eq(td_queue_commit(q), 0);
	td_queue_close(q);
	sql_exec(qpath, sql);
}

static void make_empty_function(void)
{
	damage_row("UPDATE entries SET function = ''");
}

static void make_blob_function(void)
{
	damage_row("UPDATE entries SET function = x'6600'");
}

static void make_negative_id(void)
{
	damage_row("UPDATE entries SET id = -5");
}

static void make_negative_attempts(void)
{
	damage_row("UPDATE entries SET attempts = -1");
}

/* A queue spanning many pages, whose table root page is then overwritten. */
static void make_corrupt_page(void)
{
	struct td_queue *q = open_ok(qdir, TD_QUEUE_FSYNC);
	char ev[200];
	memset(ev, 'e', sizeof ev - 1);
	ev[sizeof ev - 1] = '\0';
	for (int i = 0; i < 2000; i++)
		push_ok(q, "f", ev, i, i);
	cr_assert_eq(td_queue_commit(q), 0);
	td_queue_close(q); /* checkpoints the WAL into queue.db */
	int fd = open(qpath, O_WRONLY);
	cr_assert_geq(fd, 0);
	char junk[4096];
	memset(junk, 0xA5, sizeof junk);
	cr_assert_eq(pwrite(fd, junk, sizeof junk, 4096), (ssize_t)sizeof junk); /* page 2 */
	close(fd);
}

static void make_truncated(void)
{
	make_corrupt_page();
	cr_assert_eq(truncate(qpath, 6000), 0);
}

Test(queue, bad_files)
{
	static const struct {
		void (*make)(void);
		const char *want;
	} cases[] = {
	    {make_garbage, "not a SQLite database"},
	    {make_short_garbage, "not a SQLite database"},
	    {make_db_dir, "cannot open"},
	    {make_foreign_db, "not a triggerd queue"},
	    {make_newer_schema, "schema version 2"},
	    {make_wrong_table, "not a triggerd queue"},
	    {make_empty_function, "corrupt database"},
	    {make_blob_function, "corrupt database"},
	    {make_negative_id, "corrupt database"},
	    {make_negative_attempts, "corrupt database"},
	    {make_corrupt_page, "corrupt database"},
	    {make_truncated, "corrupt database"},
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		queue_teardown();
		cr_assert_eq(mkdir(qdir, 0700), 0);
		cases[c].make();
		char err[512] = "";
		struct td_queue *q = td_queue_open(qdir, TD_QUEUE_FSYNC, err, sizeof err);
		cr_assert_null(q, "case %zu opened", c);
		cr_assert(strstr(err, qpath), "case %zu: no path in \"%s\"", c, err);
		cr_assert(strstr(err, cases[c].want), "case %zu: \"%s\" lacks \"%s\"", c, err,
			  cases[c].want);
	}
}

Test(queue, state_dir_under_a_file)
{
	char file[160], dir[200], err[512];
	snprintf(file, sizeof file, "%s/plain", qdir);
	write_file(file, "x", 1);
	snprintf(dir, sizeof dir, "%s/state", file);
	cr_assert_null(td_queue_open(dir, TD_QUEUE_OS, err, sizeof err));
	cr_assert(strstr(err, dir) && strstr(err, "Not a directory"), "%s", err);
	cr_assert_null(td_queue_open(file, TD_QUEUE_OS, err, sizeof err));
	cr_assert(strstr(err, file) && strstr(err, "not a directory"), "%s", err);
}

/* Opens dir as another user (root: a forked child drops to nobody; others: as they
 * are) and returns the error message. */
static void open_as_other(const char *dir, char *err, size_t errlen)
{
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		char msg[512] = "";
		if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
			_exit(3);
		struct td_queue *q = td_queue_open(dir, TD_QUEUE_FSYNC, msg, sizeof msg);
		if (q)
			snprintf(msg, sizeof msg, "OPENED");
		td_queue_close(q);
		if (write(fds[1], msg, strlen(msg) + 1) < 0)
			_exit(4);
		_exit(0);
	}
	close(fds[1]);
	ssize_t n = read(fds[0], err, errlen - 1);
	close(fds[0]);
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
	err[n > 0 ? n : 0] = '\0';
}

Test(queue, not_writable)
{
	char dir[160], err[512];
	cr_assert_eq(chmod(qdir, 0755), 0);

	/* A directory the user cannot write: queue.db cannot be created. */
	snprintf(dir, sizeof dir, "%s/ro", qdir);
	cr_assert_eq(mkdir(dir, 0755), 0);
	if (geteuid() != 0)
		cr_assert_eq(chmod(dir, 0555), 0);
	open_as_other(dir, err, sizeof err);
	cr_assert(strstr(err, dir) && strstr(err, "queue.db"), "%s", err);
	cr_assert(strstr(err, "Permission denied"), "%s", err);

	/* An existing queue.db the user may not read. */
	snprintf(dir, sizeof dir, "%s/locked", qdir);
	struct td_queue *q = open_ok(dir, TD_QUEUE_FSYNC);
	td_queue_close(q);
	char path[200];
	snprintf(path, sizeof path, "%s/queue.db", dir);
	cr_assert_eq(chmod(path, 0000), 0);
	cr_assert_eq(chmod(dir, 0777), 0);
	open_as_other(dir, err, sizeof err);
	cr_assert(strstr(err, path), "%s", err);
	cr_assert(strstr(err, "Permission denied"), "%s", err);
	chmod(dir, 0755);
}

Test(queue, second_open_refused)
{
	struct td_queue *q = open_ok(qdir, TD_QUEUE_FSYNC);
	push_ok(q, "f", "x", 1, 1);
	cr_assert_eq(td_queue_commit(q), 0);
	char err[512];
	cr_assert_null(td_queue_open(qdir, TD_QUEUE_OS, err, sizeof err));
	cr_assert(strstr(err, qpath) && strstr(err, "in use"), "%s", err);

	/* Another process is refused too. */
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(td_queue_open(qdir, TD_QUEUE_FSYNC, NULL, 0) ? 1 : 0);
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child could open it");
	td_queue_close(q);

	q = open_ok(qdir, TD_QUEUE_FSYNC);
	cr_assert_eq(td_queue_depth(q, "f"), 1);
	td_queue_close(q);
}

/* ---- a failing disk (RLIMIT_FSIZE makes writes past a size fail with EFBIG) ---- */

static struct rlimit saved_fsize;

static void limit_file_size(off_t extra)
{
	char wal[160];
	struct stat st;
	snprintf(wal, sizeof wal, "%s-wal", qpath);
	off_t size = stat(wal, &st) == 0 ? st.st_size : 0;
	if (stat(qpath, &st) == 0 && st.st_size > size)
		size = st.st_size;
	signal(SIGXFSZ, SIG_IGN);
	cr_assert_eq(getrlimit(RLIMIT_FSIZE, &saved_fsize), 0);
	struct rlimit rl = {.rlim_cur = (rlim_t)(size + extra), .rlim_max = saved_fsize.rlim_max};
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
}

static void unlimit_file_size(void)
{
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &saved_fsize), 0);
}

Test(queue, failed_commit_undoes_group)
{
	struct td_queue *q = open_ok(qdir, TD_QUEUE_FSYNC);
	long long a = push_ok(q, "f", "a", 1, 1);
	long long b = push_ok(q, "f", "b", 2, 1);
	long long c = push_ok(q, "f", "c", 3, 1);
	cr_assert_eq(td_queue_commit(q), 0);
	const struct td_queue_entry *out[8];
	cr_assert_eq(td_queue_take(q, "f", 1, out, 8), 3);
	const struct td_queue_entry *held = out[2];
	cr_assert_eq(held->id, c);

	/* The group: a completed, b retried, two pushes (one large); c stays leased. */
	cr_assert_eq(td_queue_complete(q, a), 0);
	cr_assert_eq(td_queue_retry(q, b, 50, "boom"), 0);
	push_ok(q, "f", "d", 4, 1);
	size_t big = 512 * 1024;
	char *ev = malloc(big);
	cr_assert_not_null(ev);
	memset(ev, 'z', big);
	struct td_queue_entry e = {.function = "g", .event = ev, .event_len = big};
	cr_assert_eq(td_queue_push(q, &e, 0, NULL), 0);
	cr_assert_eq(td_queue_depth(q, NULL), 4);

	limit_file_size(16 * 1024);
	cr_assert_eq(td_queue_commit(q), -TD_EIO);
	unlimit_file_size();

	/* Back to the last commit: a and b waiting unchanged, c still leased, d and the
	 * big one gone. */
	cr_assert_eq(td_queue_depth(q, NULL), 3);
	cr_assert_eq(td_queue_depth(q, "g"), 0);
	cr_assert_eq(td_queue_oldest_ms(q, "f"), 1);
	cr_assert_eq(held->id, c);
	cr_assert(has_event(held, "c"), "a lease survives the undo");
	cr_assert_eq(td_queue_take(q, "f", 1, out, 8), 2);
	cr_assert_eq(out[0]->id, a);
	cr_assert_eq(out[1]->id, b);
	cr_assert_eq(out[1]->attempts, 0);
	cr_assert_null(out[1]->last_error);
	cr_assert_eq(td_queue_commit(q), 0, "the failure was reported once");

	/* The queue works on: finish everything. */
	cr_assert_eq(td_queue_complete(q, a), 0);
	cr_assert_eq(td_queue_complete(q, b), 0);
	cr_assert_eq(td_queue_complete(q, c), 0);
	long long d2 = push_ok(q, "f", "d2", 5, 1);
	cr_assert_gt(d2, c);
	cr_assert_eq(td_queue_commit(q), 0);
	td_queue_close(q);
	q = open_ok(qdir, TD_QUEUE_FSYNC);
	cr_assert_eq(td_queue_depth(q, NULL), 1);
	cr_assert_eq(td_queue_take(q, "f", 1, out, 8), 1);
	cr_assert_eq(out[0]->id, d2);
	td_queue_close(q);
	free(ev);
}

Test(queue, failed_push_fails_the_group)
{
	struct td_queue *q = open_ok(qdir, TD_QUEUE_FSYNC);
	long long a = push_ok(q, "f", "a", 1, 1);
	cr_assert_eq(td_queue_commit(q), 0);
	push_ok(q, "f", "staged before", 2, 1);

	/* 24 MiB does not fit the 8 MiB page cache: SQLite writes it to the WAL while
	 * inserting, which fails. */
	size_t big = 24u << 20;
	char *ev = malloc(big);
	cr_assert_not_null(ev);
	memset(ev, 'q', big);
	struct td_queue_entry e = {.function = "f", .event = ev, .event_len = big};
	limit_file_size(64 * 1024);
	int rc = td_queue_push(q, &e, 0, NULL);
	unlimit_file_size();
	free(ev);
	cr_assert_eq(rc, -TD_EIO);
	cr_assert_eq(td_queue_depth(q, "f"), 1, "the group was undone");

	push_ok(q, "f", "staged after", 3, 1);
	cr_assert_eq(td_queue_commit(q), -TD_EIO, "the commit reports the failed group");
	cr_assert_eq(td_queue_depth(q, "f"), 1);
	cr_assert_eq(td_queue_commit(q), 0);

	const struct td_queue_entry *out[4];
	cr_assert_eq(td_queue_take(q, "f", 10, out, 4), 1);
	cr_assert_eq(out[0]->id, a);
	td_queue_close(q);
}

Test(queue, uncommitted_counts_staged_changes)
{
	struct td_queue *q = open_ok(qdir, TD_QUEUE_OS);
	cr_assert_eq(td_queue_uncommitted(q), 0);
	long long a = push_ok(q, "f", "a", 1, 1);
	long long b = push_ok(q, "f", "b", 1, 1);
	cr_assert_eq(td_queue_uncommitted(q), 2);
	cr_assert_eq(td_queue_commit(q), 0);
	cr_assert_eq(td_queue_uncommitted(q), 0);
	const struct td_queue_entry *out[2];
	cr_assert_eq(td_queue_take(q, "f", 1, out, 2), 2);
	cr_assert_eq(td_queue_uncommitted(q), 0, "a take changes nothing stored");
	cr_assert_eq(td_queue_complete(q, a), 0);
	cr_assert_eq(td_queue_retry(q, b, 5, "e"), 0);
	cr_assert_eq(td_queue_uncommitted(q), 2);
	cr_assert_eq(td_queue_commit(q), 0);
	cr_assert_eq(td_queue_uncommitted(q), 0);
	cr_assert_eq(td_queue_take(q, "f", 10, out, 2), 1);
	cr_assert_eq(td_queue_release(q, b), 0);
	cr_assert_eq(td_queue_uncommitted(q), 0, "a release writes nothing");
	td_queue_close(q);
}
