/*
 * The process function kind: local code run as AWS Lambda runs it. triggerd serves the
 * Lambda Runtime API on loopback and starts runtime processes (the shipped Python and
 * Node.js bootstraps, or the function's own `bootstrap` for runtime provided), one
 * invocation per process at a time, kept warm up to the concurrency limit and stopped
 * after idle_timeout.
 *
 * Options. `code` is a folder relative to the configuration file; whether it exists
 * (and, for provided, CODE/bootstrap is executable) is checked when the function is
 * created, since a configuration may be validated on another machine.
 *
 * Runtime. Everything below runs on the engine thread. Each process has its own
 * Runtime API listener (runtime_api.c, 127.0.0.1:0), so the listener is the process's
 * identity: it only ever sees the invocation it holds, a request id that is not that
 * one is 400, and one this function already finished (a ring of recent ids) is 410.
 * Its stdout and stderr share one pipe read by process_output.c, whose lines go to
 * triggerd's log ("process:NAME", with the request id) and into the invocation's own
 * log for the Invoke API's Tail; the pipe is drained when an answer arrives so that the
 * handler's last lines are in.
 *
 * Hand-over: invocations wait in a FIFO; a process whose /next is suspended is idle.
 * invoke() gives the oldest waiting invocation to an idle process that is still alive
 * (waitpid WNOHANG), else spawns a process when fewer than `concurrency` exist and fewer
 * are starting than invocations wait. A process that dies holding an invocation ends it
 * with Runtime.ExitError ("Runtime exited with error: exit status 1", "signal: killed");
 * one that dies before its first /next, posts /runtime/init/error, or does not ask for
 * /next within init_timeout fails the oldest waiting invocation (Runtime.InitError
 * unless it named a type) and the next invocation starts a new process. One that has
 * answered and does not ask for /next again within init_timeout is killed (nothing
 * fails: it held no invocation) so that it does not keep its place. Processes are
 * only freed by sweep() at the end of a callback, never inside invoke(), so a
 * td_invocation_complete that re-enters invoke() finds every process in place.
 *
 * Timeout at the invocation's deadline: the process group gets SIGKILL and the answer is
 * "Task timed out after 3.00 seconds" (Sandbox.Timedout). Idle processes stop after
 * idle_timeout (SIGTERM, SIGKILL 500 ms later); with idle_timeout 0 the last one stays
 * and others stop after 5 minutes.
 *
 * Memory. memory_mb is enforced by triggerd itself; cgroup v2 memory.max is not used
 * (this machine's /sys/fs/cgroup is cgroup v1 and not writable, so it could not be
 * tested). python3 processes get RLIMIT_AS = memory_mb (an allocation past it fails in
 * the handler with MemoryError); every runtime is watched while it holds an invocation
 * (its VmRSS every 100 ms, its VmHWM when it answers), and one over memory_mb is killed
 * and its invocation fails with Runtime.OutOfMemory ("Runtime exited with error: signal:
 * killed"). Node.js and provided processes get no RLIMIT_AS (Node reserves far more
 * address space than it uses and hangs under a small one). Only the runtime process
 * itself is measured, not processes it starts. Max Memory Used is its VmHWM, reset
 * (clear_refs 5) when it takes an invocation.
 *
 * /next sends Lambda-Runtime-Client-Context when the invocation has one (the Invoke API's
 * X-Amz-Client-Context); never -Cognito-Identity (no source of triggerd carries one).
 *
 * Outcomes (struct td_result): success is TD_RESULT_OK with the runtime's body and
 * content type (application/json unless it named another; curl's and urllib's default
 * application/x-www-form-urlencoded counts as naming none). Every failure -- a handler
 * error, a timeout, a crash, an init error, out of memory, an oversized response -- is
 * TD_RESULT_RETRY with http_status 502 and the Lambda error document as the body,
 * because Lambda retries async invocations on function errors too; the router then
 * retries async events up to the trigger's `retries` and sends them to on_failure.
 */
#include <triggerd/aws_event.h>
#include <triggerd/engine.h>
#include <triggerd/errors.h>
#include <triggerd/event.h>
#include <triggerd/function.h>
#include <triggerd/log.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../router/json.h"
#include "process_output.h"
#include "process_util.h"
#include "runtime_api.h"

#ifndef TD_RUNTIME_DIR
#define TD_RUNTIME_DIR "/usr/local/share/triggerd/runtimes"
#endif

enum process_runtime { RUNTIME_PYTHON3, RUNTIME_NODEJS, RUNTIME_PROVIDED };

struct process_opts {
	struct td_function_common common;
	int runtime; /* enum process_runtime */
	char *code;
	char *handler;
	struct td_map environment;
	long long idle_timeout_ms;
	long long init_timeout_ms;
};

#define O(field) offsetof(struct process_opts, field)

static const struct td_option process_options[] = {
    TD_FUNCTION_COMMON_OPTIONS(struct process_opts, "3s", "4", "aws"),
    {.type = TD_OPT_ENUM,
     .name = "runtime",
     .flags = TD_OPT_REQUIRED,
     .offset = O(runtime),
     .choices = "python3|nodejs|provided",
     .desc = "python3 and nodejs use triggerd's bootstraps; provided runs CODE/bootstrap "
	     "(any Lambda runtime interface client)."},
    {.type = TD_OPT_STRING,
     .name = "code",
     .flags = TD_OPT_REQUIRED | TD_OPT_PATH,
     .offset = O(code),
     .desc = "Folder of the function's code (LAMBDA_TASK_ROOT), relative to the "
	     "configuration file."},
    {.type = TD_OPT_STRING,
     .name = "handler",
     .def = "lambda_function.lambda_handler",
     .offset = O(handler),
     .desc = "FILE.FUNCTION the runtime calls (_HANDLER): lambda_function.lambda_handler, "
	     "index.handler."},
    {.type = TD_OPT_MAP,
     .name = "environment",
     .offset = O(environment),
     .desc = "Environment variables of the function, NAME = \"value\". Default: none."},
    {.type = TD_OPT_DURATION,
     .name = "idle_timeout",
     .def = "5m",
     .offset = O(idle_timeout_ms),
     .min = 0,
     .max = 86400000,
     .desc = "A warm process idle this long is stopped (scale to zero); 0s keeps one "
	     "warm."},
    {.type = TD_OPT_DURATION,
     .name = "init_timeout",
     .def = "10s",
     .offset = O(init_timeout_ms),
     .min = 1000,
     .max = 600000,
     .desc = "Longest a new process may take to ask for its first invocation."},
    {0},
};

/* Set by triggerd for every process and reserved, as on Lambda (PATH and LANG are set
 * too but the function may replace them). */
static const char *const reserved[] = {
    "AWS_LAMBDA_RUNTIME_API",
    "_HANDLER",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "TZ",
    NULL,
};

static void process_check(const void *p, const char *file, int line, struct td_diag *diag)
{
	const struct process_opts *o = p;

	if (o->runtime != RUNTIME_PROVIDED) {
		const char *dot = strrchr(o->handler, '.');
		if (!dot || dot == o->handler || !dot[1] || strpbrk(o->handler, " \t\r\n"))
			td_diag_add(diag, file, line,
				    "option 'handler': \"%.80s\" is not FILE.FUNCTION "
				    "(lambda_function.lambda_handler)",
				    o->handler);
	}
	for (size_t i = 0; i < o->environment.n; i++) {
		const char *k = o->environment.keys[i];
		bool ok = isalpha((unsigned char)k[0]) || k[0] == '_';
		for (const char *c = k; *c; c++)
			if (!isalnum((unsigned char)*c) && *c != '_')
				ok = false;
		if (!ok)
			td_diag_add(diag, file, line,
				    "option 'environment': \"%.80s\" is not a variable name "
				    "(letters, digits and _)",
				    k);
		for (size_t r = 0; reserved[r]; r++)
			if (strcmp(k, reserved[r]) == 0)
				td_diag_add(diag, file, line,
					    "option 'environment': %s is set by triggerd", k);
	}
}

/* ---- Runtime ---- */

#define RECENT_IDS	 128
#define IDLE_KEEP_ONE_MS 300000 /* idle_timeout 0: extra processes stop after this */
#define TERM_GRACE_MS	 500
#define WATCH_MS	 100
#define LOG_MAX		 (256u << 10)			     /* kept per invocation for Tail */
#define FORM_CT		 "application/x-www-form-urlencoded" /* curl/urllib default */

struct proc;

/* One invocation (inv->kind_state). */
struct pinv {
	struct pinv *next; /* in the waiting FIFO */
	struct td_invocation *inv;
	struct process_ctx *ctx;
	struct proc *proc; /* holding it, or NULL while waiting */
	struct td_timer *deadline;
	struct td_buf log;
	long long start_ns; /* handed to the runtime */
};

struct proc {
	struct proc *next, *prev;
	struct process_ctx *ctx;
	pid_t pid;
	struct td_rapi *rapi;
	struct td_pout *out;
	struct td_http_exchange *next_ex; /* a suspended /next */
	struct pinv *inv;		  /* the invocation it holds */
	struct td_timer *timer;		  /* init, idle or SIGTERM grace */
	struct td_timer *watch;		  /* memory and liveness while busy */
	struct td_timer *reap;		  /* polling for its exit */
	long long spawn_ns, init_us;
	bool started;	   /* asked /next once */
	bool init_failed;  /* an init error was reported for it */
	bool dying;	   /* killed or stopping: never hand it work */
	bool cold_pending; /* init_us not yet reported */
	bool reaped;
	bool eof;
	int wstatus;
	const char *kill_type; /* errorType when triggerd killed it for a reason */
	struct pinv *draining; /* the invocation finish() is draining the output for */
};

struct process_ctx {
	struct td_function *fn;
	const struct process_opts *opts;
	struct td_engine *engine;
	const char *name, *scope;
	char code[PATH_MAX];
	char runtime_dir[PATH_MAX];
	char command[PATH_MAX];
	char bootstrap_dir[PATH_MAX];
	char region[64];
	char arn[256];
	struct proc *procs;
	int nprocs;
	struct pinv *wait_head, *wait_tail;
	int nwaiting;
	char recent[RECENT_IDS][40];
	unsigned recent_next;
};

static void dispatch(struct process_ctx *ctx);
static void sweep(struct process_ctx *ctx);
static void finish(struct pinv *pi, struct td_result *res);
static void next_timeout(void *arg);

/* ---- small helpers ---- */

static char *payload(const struct process_ctx *ctx, const struct td_event *ev, size_t *len)
{
	if (ctx->opts->common.event_format == TD_FORMAT_AWS)
		return td_event_aws_payload(ev, len);
	return td_event_to_json(ev, len);
}

static void remember_id(struct process_ctx *ctx, const char *id)
{
	snprintf(ctx->recent[ctx->recent_next++ % RECENT_IDS], sizeof ctx->recent[0], "%s", id);
}

static bool recent_id(const struct process_ctx *ctx, const char *id)
{
	for (unsigned i = 0; i < RECENT_IDS; i++)
		if (ctx->recent[i][0] && strcmp(ctx->recent[i], id) == 0)
			return true;
	return false;
}

static long long status_kb(pid_t pid, const char *field)
{
	char path[64], text[4096];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, text, sizeof text);
	close(fd);
	return n > 0 ? td_proc_status_kb(text, (size_t)n, field) : -1;
}

static void reset_peak(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/clear_refs", (int)pid);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t w = write(fd, "5", 1);
	(void)w;
	close(fd);
}

static void kill_group(struct proc *p, int sig)
{
	if (!p->reaped && p->pid > 0)
		kill(-p->pid, sig);
}

static void cancel(struct process_ctx *ctx, struct td_timer **t)
{
	if (*t)
		td_timer_cancel(ctx->engine, *t);
	*t = NULL;
}

/* A failure result: Lambda's error document, errorType and message. */
static void fail_result(struct td_result *res, const char *type, const char *msg, const char *doc,
			size_t doc_len)
{
	struct td_buf b;
	td_buf_init(&b);
	if (doc)
		td_buf_append(&b, doc, doc_len);
	else
		td_rapi_error_json(&b, type, msg);
	res->status = TD_RESULT_RETRY;
	res->http_status = 502;
	res->content_type = strdup("application/json");
	res->body = td_buf_steal(&b, &res->body_len);
	size_t n = strlen(type) + strlen(msg) + 3;
	res->error = malloc(n);
	if (res->error)
		snprintf(res->error, n, "%s: %s", type, msg);
}

static void waiting_push(struct process_ctx *ctx, struct pinv *pi)
{
	pi->next = NULL;
	if (ctx->wait_tail)
		ctx->wait_tail->next = pi;
	else
		ctx->wait_head = pi;
	ctx->wait_tail = pi;
	ctx->nwaiting++;
}

static struct pinv *waiting_pop(struct process_ctx *ctx)
{
	struct pinv *pi = ctx->wait_head;
	if (!pi)
		return NULL;
	ctx->wait_head = pi->next;
	if (!ctx->wait_head)
		ctx->wait_tail = NULL;
	ctx->nwaiting--;
	pi->next = NULL;
	return pi;
}

static void waiting_remove(struct process_ctx *ctx, struct pinv *pi)
{
	for (struct pinv **pp = &ctx->wait_head, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next)
		if (*pp == pi) {
			*pp = pi->next;
			if (ctx->wait_tail == pi)
				ctx->wait_tail = prev;
			ctx->nwaiting--;
			pi->next = NULL;
			return;
		}
}

static void pinv_free(struct process_ctx *ctx, struct pinv *pi)
{
	cancel(ctx, &pi->deadline);
	td_buf_free(&pi->log);
	pi->inv->kind_state = NULL;
	free(pi);
}

/* ---- ending an invocation ---- */

/* Completes pi with res (engine thread). The process, if any, lets go of it first. */
static void finish(struct pinv *pi, struct td_result *res)
{
	struct process_ctx *ctx = pi->ctx;
	struct td_invocation *inv = pi->inv;
	struct proc *p = pi->proc;

	if (p) {
		/* The handler's last lines, before END. The invocation is detached first: an
		 * exit the drain comes across (a killed process) is not this invocation's
		 * end any more, the lines still are its own (p->draining). */
		p->inv = NULL;
		p->draining = pi;
		td_pout_drain(p->out);
		p->draining = NULL;
		cancel(ctx, &p->watch);
		if (!p->dying) {
			cancel(ctx, &p->timer);
			p->timer =
			    td_timer_add(ctx->engine, ctx->opts->init_timeout_ms, next_timeout, p);
		}
		res->duration_us = (td_now_ns() - pi->start_ns) / 1000;
		if (res->duration_us <= 0)
			res->duration_us = 1;
		long long hwm = status_kb(p->pid, "VmHWM");
		if (hwm > 0)
			res->max_memory_mb = (hwm + 1023) / 1024;
		if (p->cold_pending) {
			res->init_us = p->init_us > 0 ? p->init_us : 1;
			p->cold_pending = false;
		}
		td_logs_info(ctx->scope, "END RequestId: %s", inv->request_id);
	} else {
		waiting_remove(ctx, pi);
	}
	if (pi->log.len && !td_buf_failed(&pi->log))
		res->log = td_buf_steal(&pi->log, &res->log_len);
	remember_id(ctx, inv->request_id);
	if (inv->sync && res->status == TD_RESULT_OK &&
	    ctx->opts->common.event_format == TD_FORMAT_AWS)
		td_aws_result_to_http(inv->event, res);
	pinv_free(ctx, pi);
	td_invocation_complete(inv, res);
}

static void finish_error(struct pinv *pi, const char *type, const char *msg)
{
	struct td_result res = {0};
	fail_result(&res, type, msg, NULL, 0);
	finish(pi, &res);
}

/* ---- process life ---- */

/* Called once its exit status is known: ends what it held. */
static void proc_ended(struct proc *p)
{
	struct process_ctx *ctx = p->ctx;
	char how[64], msg[128];

	p->dying = true;
	cancel(ctx, &p->timer);
	cancel(ctx, &p->watch);
	cancel(ctx, &p->reap);
	td_proc_exit_text(p->wstatus, how, sizeof how);
	snprintf(msg, sizeof msg, "Runtime exited with error: %s", how);
	if (p->inv) {
		td_logs_warn(ctx->scope, "RequestId: %s %s", p->inv->inv->request_id, msg);
		finish_error(p->inv, p->kill_type ? p->kill_type : "Runtime.ExitError", msg);
	} else if (!p->started && !p->init_failed) {
		td_logs_warn(ctx->scope, "runtime process %d exited before its first /next: %s",
			     (int)p->pid, msg);
		p->init_failed = true;
		struct pinv *pi = waiting_pop(ctx);
		if (pi)
			finish_error(pi, "Runtime.ExitError", msg);
	} else {
		td_logs_debug(ctx->scope, "runtime process %d ended: %s", (int)p->pid, how);
	}
}

/* Non-blocking: true when the process has ended (and is reaped now or before). */
static bool try_reap(struct proc *p)
{
	if (p->reaped)
		return true;
	int st;
	pid_t r = waitpid(p->pid, &st, WNOHANG);
	if (r == 0)
		return false;
	p->reaped = true;
	p->wstatus = r == p->pid ? st : 0;
	kill(-p->pid, SIGKILL); /* what the runtime started in its group goes with it */
	proc_ended(p);
	return true;
}

static void proc_free(struct proc *p)
{
	struct process_ctx *ctx = p->ctx;

	if (!p->reaped && p->pid > 0) {
		kill(-p->pid, SIGKILL);
		while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR) {
		}
	}
	cancel(ctx, &p->timer);
	cancel(ctx, &p->watch);
	cancel(ctx, &p->reap);
	if (p->next_ex)
		td_rapi_respond_error(p->next_ex, 503, "Runtime.Unavailable",
				      "the runtime environment is shutting down");
	p->next_ex = NULL;
	td_pout_destroy(p->out);
	td_rapi_destroy(p->rapi);
	if (p->prev)
		p->prev->next = p->next;
	else
		ctx->procs = p->next;
	if (p->next)
		p->next->prev = p->prev;
	ctx->nprocs--;
	free(p);
}

/* Frees the processes that ended (only from the top of a callback). */
static void sweep(struct process_ctx *ctx)
{
	for (struct proc *p = ctx->procs, *next; p; p = next) {
		next = p->next;
		if (p->reaped && !p->inv && !p->draining)
			proc_free(p);
	}
}

static void reap_poll(void *arg);

/* Starts polling for the exit of a process that closed its output or was killed. */
static void watch_exit(struct proc *p)
{
	if (!p->reaped && !p->reap)
		p->reap = td_timer_add(p->ctx->engine, 20, reap_poll, p);
}

static void reap_poll(void *arg)
{
	struct proc *p = arg;
	struct process_ctx *ctx = p->ctx;
	p->reap = NULL;
	if (!try_reap(p))
		p->reap = td_timer_add(ctx->engine, p->dying ? 20 : 250, reap_poll, p);
	sweep(ctx);
	dispatch(ctx);
}

/* Kills the process group for a reason; the exit is then reaped by polling. */
static void proc_kill(struct proc *p, const char *type)
{
	p->dying = true;
	if (type)
		p->kill_type = type;
	kill_group(p, SIGKILL);
	cancel(p->ctx, &p->timer);
	watch_exit(p);
}

static void on_line(void *arg, const char *line, size_t len)
{
	struct proc *p = arg;
	struct process_ctx *ctx = p->ctx;
	struct pinv *cur = p->inv ? p->inv : p->draining;
	const char *rid = cur ? cur->inv->request_id : "-";

	td_logs_info(ctx->scope, "%s\t%.*s", rid, (int)len, line);
	if (!cur)
		return;
	struct td_buf *log = &cur->log;
	if (log->len + len + 1 > LOG_MAX) {
		/* Tail wants the end: drop the older half, at a line boundary (a line is at
		 * most TD_POUT_MAX_LINE, far below LOG_MAX / 2). */
		const char *nl = memchr(log->data + log->len / 2, '\n', log->len - log->len / 2);
		size_t keep = nl ? log->len - (size_t)(nl + 1 - log->data) : 0;
		memmove(log->data, log->data + log->len - keep, keep);
		log->len = keep;
		log->data[keep] = '\0';
	}
	td_buf_append(log, line, len);
	td_buf_appendc(log, '\n');
}

static void on_eof(void *arg)
{
	struct proc *p = arg;
	struct process_ctx *ctx = p->ctx; /* sweep may free p */
	p->eof = true;
	if (!try_reap(p))
		watch_exit(p);
	sweep(ctx);
	dispatch(ctx);
}

static void init_timeout(void *arg)
{
	struct proc *p = arg;
	struct process_ctx *ctx = p->ctx;
	char msg[96];

	p->timer = NULL;
	if (p->started || p->dying)
		return;
	snprintf(msg, sizeof msg, "Runtime did not ask for an invocation within %lld.%02lld s",
		 ctx->opts->init_timeout_ms / 1000, ctx->opts->init_timeout_ms % 1000 / 10);
	td_logs_warn(ctx->scope, "runtime process %d: %s; killed", (int)p->pid, msg);
	p->init_failed = true;
	struct pinv *pi = waiting_pop(ctx);
	proc_kill(p, NULL);
	if (pi)
		finish_error(pi, "Runtime.InitError", msg);
	sweep(ctx);
	dispatch(ctx);
}

/* A process that answered must ask for the next invocation within init_timeout: one
 * stuck after its answer would otherwise count as starting for ever and keep its place
 * under concurrency while invocations wait and time out. */
static void next_timeout(void *arg)
{
	struct proc *p = arg;
	struct process_ctx *ctx = p->ctx;

	p->timer = NULL;
	if (p->dying || p->inv || p->next_ex)
		return;
	td_logs_warn(ctx->scope,
		     "runtime process %d did not ask for the next invocation within %lld.%02lld "
		     "s: killed",
		     (int)p->pid, ctx->opts->init_timeout_ms / 1000,
		     ctx->opts->init_timeout_ms % 1000 / 10);
	proc_kill(p, NULL);
	sweep(ctx);
	dispatch(ctx);
}

static void term_grace(void *arg)
{
	struct proc *p = arg;
	p->timer = NULL;
	kill_group(p, SIGKILL);
	watch_exit(p);
}

static int live_count(const struct process_ctx *ctx, bool only_usable)
{
	int n = 0;
	for (const struct proc *p = ctx->procs; p; p = p->next)
		if (!only_usable || !p->dying)
			n++;
	return n;
}

static void idle_expired(void *arg)
{
	struct proc *p = arg;
	struct process_ctx *ctx = p->ctx;

	p->timer = NULL;
	if (p->dying || p->inv)
		return;
	if (ctx->opts->idle_timeout_ms == 0 && live_count(ctx, true) <= 1)
		return; /* keep one warm */
	td_logs_debug(ctx->scope, "runtime process %d idle: stopping it", (int)p->pid);
	p->dying = true;
	kill_group(p, SIGTERM);
	p->timer = td_timer_add(ctx->engine, TERM_GRACE_MS, term_grace, p);
}

static void arm_idle(struct proc *p)
{
	struct process_ctx *ctx = p->ctx;
	long long ms =
	    ctx->opts->idle_timeout_ms > 0 ? ctx->opts->idle_timeout_ms : IDLE_KEEP_ONE_MS;
	cancel(ctx, &p->timer);
	p->timer = td_timer_add(ctx->engine, ms, idle_expired, p);
}

/* While a process holds an invocation: memory and liveness. */
static void watch_busy(void *arg)
{
	struct proc *p = arg;
	struct process_ctx *ctx = p->ctx;

	p->watch = NULL;
	if (!p->inv || p->dying)
		return;
	if (try_reap(p)) {
		sweep(ctx);
		dispatch(ctx);
		return;
	}
	long long rss = status_kb(p->pid, "VmRSS");
	if (rss > ctx->opts->common.memory_mb * 1024) {
		td_logs_warn(ctx->scope,
			     "RequestId: %s runtime process %d uses %lld MB of %lld MB: "
			     "killed",
			     p->inv->inv->request_id, (int)p->pid, rss / 1024,
			     ctx->opts->common.memory_mb);
		proc_kill(p, "Runtime.OutOfMemory");
		return;
	}
	p->watch = td_timer_add(ctx->engine, WATCH_MS, watch_busy, p);
}

/* ---- the Runtime API ---- */

static void respond_next(struct proc *p, struct pinv *pi)
{
	struct process_ctx *ctx = p->ctx;
	struct td_invocation *inv = pi->inv;
	unsigned char rnd[20];
	char deadline[32], trace[128];
	size_t len = 0;

	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
		memset(rnd, 0x5a, sizeof rnd);
	long long wall = td_wall_ms();
	snprintf(deadline, sizeof deadline, "%lld", wall + (inv->deadline_ms - td_now_ms()));
	td_proc_trace_id(wall / 1000, rnd, trace, sizeof trace);
	char *body = payload(ctx, inv->event, &len);
	struct td_http_header h[] = {
	    {"Lambda-Runtime-Aws-Request-Id", inv->request_id},
	    {"Lambda-Runtime-Deadline-Ms", deadline},
	    {"Lambda-Runtime-Invoked-Function-Arn", ctx->arn},
	    {"Lambda-Runtime-Trace-Id", trace},
	    {"Lambda-Runtime-Client-Context", inv->client_context},
	};
	size_t nh = sizeof h / sizeof h[0] - (inv->client_context ? 0 : 1);
	struct td_http_exchange *ex = p->next_ex;
	p->next_ex = NULL;
	cancel(ctx, &p->timer);
	p->inv = pi;
	pi->proc = p;
	reset_peak(p->pid);
	td_logs_info(ctx->scope, "START RequestId: %s Version: $LATEST", inv->request_id);
	pi->start_ns = td_now_ns();
	if (!body) {
		td_rapi_respond_error(ex, 500, "ServiceException", "out of memory");
		finish_error(pi, "ServiceException", "out of memory");
		return;
	}
	td_http_respond(ex, 200, "application/json", body, len, h, nh);
	free(body);
	p->watch = td_timer_add(ctx->engine, WATCH_MS, watch_busy, p);
}

static void on_next(struct proc *p, struct td_http_exchange *ex)
{
	struct process_ctx *ctx = p->ctx;

	if (p->dying) {
		td_rapi_respond_error(ex, 410, "Runtime.Unavailable",
				      "this runtime environment is stopping");
		return;
	}
	if (p->next_ex || p->inv) {
		td_rapi_respond_error(ex, 400, "InvalidStateTransition",
				      p->inv ? "the current invocation has not been answered"
					     : "another /next is already waiting");
		return;
	}
	if (!p->started) {
		p->started = true;
		p->init_us = (td_now_ns() - p->spawn_ns) / 1000;
		p->cold_pending = true;
		cancel(ctx, &p->timer);
		td_logs_debug(ctx->scope, "runtime process %d ready after %lld us", (int)p->pid,
			      p->init_us);
	}
	p->next_ex = ex;
	arm_idle(p); /* also ends next_timeout; respond_next cancels it when work is there */
}

/* /response and /error of the invocation p holds. */
static void on_answer(struct proc *p, enum td_rapi_kind kind, struct td_http_exchange *ex)
{
	struct process_ctx *ctx = p->ctx;
	const struct td_http_request *req = td_http_request(ex);
	struct pinv *pi = p->inv;
	struct td_result res = {0};
	static const char accepted[] = "{\"status\":\"OK\"}";

	if (req->body_len > TD_RAPI_MAX_BODY) { /* a result or an error document */
		char msg[160];
		snprintf(msg, sizeof msg,
			 "Response payload size (%zu bytes) exceeded maximum allowed payload "
			 "size (%u bytes).",
			 req->body_len, TD_RAPI_MAX_BODY);
		td_rapi_respond_error(ex, 413, "RequestEntityTooLarge", msg);
		finish_error(pi, "Function.ResponseSizeTooLarge", msg);
		return;
	}
	if (kind == TD_RAPI_RESPONSE) {
		const char *ct = td_http_header_get(req, "Content-Type");
		res.status = TD_RESULT_OK;
		res.http_status = 200;
		res.content_type =
		    strdup(ct && *ct && strncasecmp(ct, FORM_CT, sizeof FORM_CT - 1) != 0
			       ? ct
			       : "application/json");
		res.body = malloc(req->body_len + 1);
		if (res.body) {
			memcpy(res.body, req->body, req->body_len);
			res.body[req->body_len] = '\0';
			res.body_len = req->body_len;
		}
		if (!res.body || !res.content_type) {
			td_result_clear(&res);
			res.status = TD_RESULT_RETRY;
			res.error = strdup("out of memory");
		}
	} else {
		char type[TD_RAPI_TYPE_MAX + 1], msg[1024];
		int json = td_rapi_parse_error(
		    req->body, req->body_len,
		    td_http_header_get(req, "Lambda-Runtime-Function-Error-Type"), "Unhandled",
		    type, msg, sizeof msg);
		if (json)
			fail_result(&res, type, msg, req->body, req->body_len);
		else {
			if (!msg[0] && req->body_len)
				snprintf(msg, sizeof msg, "%.*s",
					 (int)(req->body_len < 1000 ? req->body_len : 1000),
					 req->body);
			fail_result(&res, type, msg, NULL, 0);
		}
	}
	td_http_respond(ex, 202, "application/json", accepted, sizeof accepted - 1, NULL, 0);
	/* Over the limit at its peak: out of memory, as a cgroup would have killed it. */
	long long hwm = status_kb(p->pid, "VmHWM");
	if (hwm > ctx->opts->common.memory_mb * 1024) {
		td_result_clear(&res);
		fail_result(&res, "Runtime.OutOfMemory",
			    "Runtime exited with error: signal: killed", NULL, 0);
		proc_kill(p, NULL);
	}
	finish(pi, &res);
}

static void on_init_error(struct proc *p, struct td_http_exchange *ex)
{
	struct process_ctx *ctx = p->ctx;
	const struct td_http_request *req = td_http_request(ex);
	char type[TD_RAPI_TYPE_MAX + 1], msg[1024];
	static const char accepted[] = "{\"status\":\"OK\"}";

	if (p->started || p->init_failed) {
		td_rapi_respond_error(ex, 403, "InvalidStateTransition",
				      "init/error is only allowed before the first /next");
		return;
	}
	int json = td_rapi_parse_error(
	    req->body, req->body_len, td_http_header_get(req, "Lambda-Runtime-Function-Error-Type"),
	    "Runtime.InitError", type, msg, sizeof msg);
	struct td_result res = {0};
	fail_result(&res, type, msg, json ? req->body : NULL, json ? req->body_len : 0);
	td_http_respond(ex, 202, "application/json", accepted, sizeof accepted - 1, NULL, 0);
	td_logs_warn(ctx->scope, "runtime process %d failed to start: %s: %s", (int)p->pid, type,
		     msg);
	p->init_failed = true;
	struct pinv *pi = waiting_pop(ctx);
	if (pi)
		finish(pi, &res);
	else
		td_result_clear(&res);
	proc_kill(p, NULL);
}

static void on_rapi(void *arg, enum td_rapi_kind kind, const char *id, struct td_http_exchange *ex)
{
	struct proc *p = arg;
	struct process_ctx *ctx = p->ctx;
	char msg[160];

	switch (kind) {
	case TD_RAPI_NEXT:
		on_next(p, ex);
		break;
	case TD_RAPI_INIT_ERROR:
		on_init_error(p, ex);
		break;
	case TD_RAPI_RESPONSE:
	case TD_RAPI_ERROR:
		if (p->dying && p->inv) {
			/* killed (timeout, out of memory): its invocation ends with that reason
			 * when the process is reaped, not with an answer still in flight */
			td_rapi_respond_error(ex, 410, "Runtime.Unavailable",
					      "this runtime environment is stopping");
		} else if (p->inv && strcmp(p->inv->inv->request_id, id) == 0) {
			on_answer(p, kind, ex);
		} else if (recent_id(ctx, id)) {
			snprintf(msg, sizeof msg, "Invocation %s is already answered or timed out",
				 id);
			td_rapi_respond_error(ex, 410, "InvalidRequestID", msg);
		} else {
			snprintf(msg, sizeof msg,
				 "Invalid request ID: %s is not the invocation of "
				 "this runtime",
				 id);
			td_rapi_respond_error(ex, 400, "InvalidRequestID", msg);
		}
		break;
	}
	sweep(ctx);
	dispatch(ctx);
}

/* ---- spawning ---- */

static int spawn(struct process_ctx *ctx)
{
	char err[256], stream[128];
	unsigned char rnd[16];
	int fds[2] = {-1, -1};
	char **envp = NULL;
	struct proc *p = calloc(1, sizeof *p);

	if (!p)
		return -TD_ENOMEM;
	p->ctx = ctx;
	p->rapi = td_rapi_create(ctx->engine, ctx->scope, on_rapi, p, err, sizeof err);
	if (!p->rapi) {
		td_logs_error(ctx->scope, "%s", err);
		goto fail;
	}
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
		memset(rnd, 0xa5, sizeof rnd);
	td_proc_log_stream(td_wall_ms() / 1000, rnd, stream, sizeof stream);
	struct td_proc_env env = {.port = td_rapi_port(p->rapi),
				  .handler = ctx->opts->handler,
				  .task_root = ctx->code,
				  .runtime_dir = ctx->bootstrap_dir,
				  .function = ctx->name,
				  .memory_mb = ctx->opts->common.memory_mb,
				  .region = ctx->region,
				  .log_stream = stream,
				  .path = getenv("PATH"),
				  .environment = &ctx->opts->environment};
	envp = td_proc_env_build(&env);
	if (!envp || pipe2(fds, O_CLOEXEC) < 0) {
		td_logs_error(ctx->scope, "cannot start a runtime process: %s", strerror(errno));
		goto fail;
	}
	char *argv[] = {ctx->command, NULL};
	struct rlimit as = {.rlim_cur = (rlim_t)ctx->opts->common.memory_mb << 20,
			    .rlim_max = (rlim_t)ctx->opts->common.memory_mb << 20};
	bool limit_as = ctx->opts->runtime == RUNTIME_PYTHON3;
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	/* For kernels without close_range (before 5.9): every descriptor up to the limit.
	 * Libraries (hiredis, paho) open sockets without O_CLOEXEC. */
	struct rlimit nofile;
	int maxfd = getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY &&
			    nofile.rlim_cur < INT_MAX
			? (int)nofile.rlim_cur
			: 65536;
	p->spawn_ns = td_now_ns();
	pid_t pid = fork();
	if (pid == 0) {
		/* The child: async-signal-safe calls only. */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		setpgid(0, 0);
		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		if (syscall(SYS_close_range, 3U, ~0U, 0U) < 0)
			for (int fd = 3; fd < maxfd; fd++)
				close(fd);
		if (chdir(ctx->code) < 0)
			_exit(126);
		if (limit_as)
			setrlimit(RLIMIT_AS, &as);
		execve(ctx->command, argv, envp);
		static const char m[] = "triggerd: cannot execute the runtime\n";
		ssize_t w = write(2, m, sizeof m - 1);
		(void)w;
		_exit(127);
	}
	int saved = errno;
	if (devnull >= 0)
		close(devnull);
	close(fds[1]);
	fds[1] = -1;
	free(envp);
	envp = NULL;
	if (pid < 0) {
		td_logs_error(ctx->scope, "cannot start a runtime process: fork: %s",
			      strerror(saved));
		goto fail;
	}
	setpgid(pid, pid);
	p->pid = pid;
	p->out = td_pout_create(ctx->engine, fds[0], on_line, on_eof, p);
	fds[0] = -1;
	p->next = ctx->procs;
	if (ctx->procs)
		ctx->procs->prev = p;
	ctx->procs = p;
	ctx->nprocs++;
	if (!p->out) {
		td_logs_error(ctx->scope, "cannot read the output of runtime process %d", (int)pid);
		p->init_failed = true;
		proc_kill(p, NULL);
		return -TD_EIO;
	}
	p->timer = td_timer_add(ctx->engine, ctx->opts->init_timeout_ms, init_timeout, p);
	td_logs_debug(ctx->scope, "runtime process %d started (%s, Runtime API port %u)", (int)pid,
		      ctx->command, td_rapi_port(p->rapi));
	return 0;
fail:
	free(envp);
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	td_rapi_destroy(p->rapi);
	free(p);
	return -TD_EIO;
}

/* Hands waiting invocations to idle processes, or starts processes for them. */
static void dispatch(struct process_ctx *ctx)
{
	while (ctx->wait_head) {
		struct proc *idle = NULL;
		for (struct proc *p = ctx->procs; p && !idle; p = p->next)
			if (!p->dying && p->next_ex && !p->inv) {
				if (try_reap(p)) /* never hand work to a dead process */
					continue;
				idle = p;
			}
		if (idle) {
			respond_next(idle, waiting_pop(ctx));
			continue;
		}
		int starting = 0;
		for (struct proc *p = ctx->procs; p; p = p->next)
			if (!p->dying && !p->inv && !p->next_ex)
				starting++;
		if (starting >= ctx->nwaiting || ctx->nprocs >= ctx->opts->common.concurrency)
			break;
		if (spawn(ctx) < 0) {
			struct pinv *pi = waiting_pop(ctx);
			finish_error(pi, "Runtime.StartError", "the runtime could not be started");
		}
	}
}

static void deadline_expired(void *arg)
{
	struct pinv *pi = arg;
	struct process_ctx *ctx = pi->ctx;
	struct proc *p = pi->proc;
	char msg[64];

	pi->deadline = NULL;
	td_proc_timeout_text(ctx->opts->common.timeout_ms, msg, sizeof msg);
	td_logs_warn(ctx->scope, "RequestId: %s %s", pi->inv->request_id, msg);
	if (p)
		proc_kill(p, NULL);
	finish_error(pi, "Sandbox.Timedout", msg);
	sweep(ctx);
	dispatch(ctx);
}

static int process_invoke(struct td_function *fn, struct td_invocation *inv)
{
	struct process_ctx *ctx = td_function_ctx(fn);
	struct pinv *pi = calloc(1, sizeof *pi);

	if (!pi)
		return -TD_ENOMEM;
	pi->inv = inv;
	pi->ctx = ctx;
	td_buf_init(&pi->log);
	inv->kind_state = pi;
	long long delay = inv->deadline_ms - td_now_ms();
	pi->deadline = td_timer_add(ctx->engine, delay > 0 ? delay : 0, deadline_expired, pi);
	if (!pi->deadline) {
		inv->kind_state = NULL;
		free(pi);
		return -TD_ENOMEM;
	}
	waiting_push(ctx, pi);
	dispatch(ctx);
	return 0;
}

static bool executable(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

static int process_create(struct td_function *fn)
{
	struct process_ctx *ctx = td_function_ctx(fn);
	struct stat st;
	char exe[PATH_MAX];
	const char *region = getenv("AWS_REGION");

	ctx->fn = fn;
	ctx->opts = td_function_opts(fn);
	ctx->engine = td_function_engine(fn);
	ctx->name = td_function_name(fn);
	ctx->scope = td_function_scope(fn);
	if (!realpath(ctx->opts->code, ctx->code) || stat(ctx->code, &st) < 0 ||
	    !S_ISDIR(st.st_mode)) {
		td_logs_error(ctx->scope, "code folder %s: %s", ctx->opts->code,
			      errno ? strerror(errno) : "not a folder");
		return -TD_EINVAL;
	}
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	exe[n > 0 ? n : 0] = '\0';
	td_proc_runtime_dir(getenv("TRIGGERD_RUNTIME_DIR"), exe, TD_RUNTIME_DIR, ctx->runtime_dir,
			    sizeof ctx->runtime_dir);
	int w;
	if (ctx->opts->runtime == RUNTIME_PROVIDED)
		w = snprintf(ctx->command, sizeof ctx->command, "%s/bootstrap", ctx->code);
	else
		w = snprintf(ctx->command, sizeof ctx->command, "%s/%s/bootstrap", ctx->runtime_dir,
			     ctx->opts->runtime == RUNTIME_PYTHON3 ? "python3" : "nodejs");
	if (w < 0 || (size_t)w >= sizeof ctx->command || !executable(ctx->command)) {
		td_logs_error(ctx->scope, "%s: %s", ctx->command,
			      access(ctx->command, F_OK) == 0 ? "not an executable file"
							      : "no such file (the runtime's "
								"bootstrap)");
		return -TD_EINVAL;
	}
	/* LAMBDA_RUNTIME_DIR: the bootstrap's own folder (functions/runtimes/README.md). */
	snprintf(ctx->bootstrap_dir, sizeof ctx->bootstrap_dir, "%s", ctx->command);
	*strrchr(ctx->bootstrap_dir, '/') = '\0';
	snprintf(ctx->region, sizeof ctx->region, "%s", region && *region ? region : "us-east-1");
	snprintf(ctx->arn, sizeof ctx->arn, "arn:aws:lambda:%s:000000000000:function:%s",
		 ctx->region, ctx->name);
	return 0;
}

static void process_destroy(struct td_function *fn)
{
	struct process_ctx *ctx = td_function_ctx(fn);

	/* Output readers first: a process killed while its reader runs would post a drain
	 * that a stopped engine never runs (and so never frees). */
	for (struct proc *p = ctx->procs; p; p = p->next) {
		td_pout_destroy(p->out);
		p->out = NULL;
	}
	for (struct proc *p = ctx->procs; p; p = p->next)
		kill_group(p, SIGKILL);
	while (ctx->procs) {
		struct proc *p = ctx->procs;
		if (p->inv) {
			pinv_free(ctx, p->inv);
			p->inv = NULL;
		}
		proc_free(p);
	}
	while (ctx->wait_head)
		pinv_free(ctx, waiting_pop(ctx));
}

const struct td_function_ops td_function_process = {
    .name = "process",
    .summary = "Run local code behind the AWS Lambda Runtime API (Python, Node.js, "
	       "provided)",
    .options = process_options,
    .opts_size = sizeof(struct process_opts),
    .check = process_check,
    .ctx_size = sizeof(struct process_ctx),
    .create = process_create,
    .invoke = process_invoke,
    .destroy = process_destroy,
};
