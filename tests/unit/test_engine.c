/*
 * The engine loop: calls from other threads all run, in order per thread; timers run in
 * due order and can be cancelled; a timer may stop the loop.
 */
#include <criterion/criterion.h>
#include <pthread.h>

#include "../../router/engine_loop.h"

#define CALLS_PER_THREAD 20000

struct counter {
	struct td_engine *engine;
	int seen[2];
	bool in_order;
	int total;
};

struct call_arg {
	struct counter *c;
	int thread, seq;
};

static void count_call(void *arg)
{
	struct call_arg *a = arg;
	if (a->c->seen[a->thread] != a->seq)
		a->c->in_order = false;
	a->c->seen[a->thread]++;
	if (++a->c->total == 2 * CALLS_PER_THREAD)
		td_engine_stop(a->c->engine);
	free(a);
}

struct producer {
	struct counter *c;
	int thread;
};

static void *produce(void *arg)
{
	struct producer *p = arg;
	for (int i = 0; i < CALLS_PER_THREAD; i++) {
		struct call_arg *a = malloc(sizeof *a);
		*a = (struct call_arg){p->c, p->thread, i};
		cr_assert_eq(td_engine_call(p->c->engine, count_call, a), 0);
	}
	return NULL;
}

Test(engine, calls_from_threads_all_run_in_order)
{
	struct counter c = {.engine = td_engine_create(), .in_order = true};
	cr_assert_not_null(c.engine);
	pthread_t th[2];
	struct producer p[2] = {{&c, 0}, {&c, 1}};
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, produce, &p[i]);
	td_engine_run(c.engine);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(c.total, 2 * CALLS_PER_THREAD);
	cr_assert(c.in_order);
	td_engine_destroy(c.engine);
}

struct timer_log {
	struct td_engine *engine;
	int order[8];
	int n;
};

struct timer_arg {
	struct timer_log *log;
	int value;
};

static void record(void *arg)
{
	struct timer_arg *a = arg;
	a->log->order[a->log->n++] = a->value;
	if (a->value == 99)
		td_engine_stop(a->log->engine);
}

Test(engine, timers_run_in_due_order_and_cancel)
{
	struct timer_log log = {.engine = td_engine_create()};
	struct timer_arg args[] = {{&log, 3}, {&log, 1}, {&log, 2}, {&log, 4}, {&log, 99}};
	td_timer_add(log.engine, 30, record, &args[0]);
	td_timer_add(log.engine, 10, record, &args[1]);
	td_timer_add(log.engine, 20, record, &args[2]);
	struct td_timer *cancelled = td_timer_add(log.engine, 25, record, &args[3]);
	td_timer_add(log.engine, 50, record, &args[4]);
	cr_assert(td_timer_cancel(log.engine, cancelled));
	long long start = td_now_ms();
	td_engine_run(log.engine);
	cr_assert_geq(td_now_ms() - start, 50);
	cr_assert_eq(log.n, 4);
	int expected[] = {1, 2, 3, 99};
	for (int i = 0; i < 4; i++)
		cr_assert_eq(log.order[i], expected[i]);
	td_engine_destroy(log.engine);
}

static void stop_engine(void *arg)
{
	td_engine_stop(arg);
}

Test(engine, calls_made_before_run_start_run_first)
{
	struct timer_log log = {.engine = td_engine_create()};
	struct timer_arg first = {&log, 7};
	cr_assert_eq(td_engine_call(log.engine, record, &first), 0);
	cr_assert_eq(td_engine_call(log.engine, stop_engine, log.engine), 0);
	td_engine_run(log.engine);
	cr_assert_eq(log.n, 1);
	cr_assert_eq(log.order[0], 7);
	td_engine_destroy(log.engine);
}

static void bump(void *arg)
{
	(*(int *)arg)++;
}

/* A call accepted after the loop ended is dropped at destroy, but one made with
 * td_engine_call_always runs there, once, so the reference it carries is not lost. */
Test(engine, calls_left_at_destroy_run_only_when_always)
{
	struct td_engine *e = td_engine_create();
	int plain = 0, always = 0;
	cr_assert_not_null(e);
	cr_assert_eq(td_engine_call(e, bump, &plain), 0);
	cr_assert_eq(td_engine_call_always(e, bump, &always), 0);
	td_engine_destroy(e);
	cr_expect_eq(plain, 0);
	cr_expect_eq(always, 1);
}
