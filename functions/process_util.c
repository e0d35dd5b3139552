/*
 * Pure helpers of the process kind (see process_util.h). Nothing here allocates but
 * td_proc_env_build, which lays the pointer array and the strings out in one block so
 * that a forked child needs no further allocation before execve.
 */
#include "process_util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

/* True when the function's own environment has the variable name[0..len). */
static bool user_sets(const struct td_map *env, const char *name, size_t len)
{
	for (size_t i = 0; env && i < env->n; i++)
		if (strlen(env->keys[i]) == len && memcmp(env->keys[i], name, len) == 0)
			return true;
	return false;
}

char **td_proc_env_build(const struct td_proc_env *e)
{
	char fixed[10][512];
	size_t nfixed = 0, nuser = e->environment ? e->environment->n : 0, bytes = 0;

	snprintf(fixed[nfixed++], sizeof fixed[0], "AWS_LAMBDA_RUNTIME_API=127.0.0.1:%u", e->port);
	snprintf(fixed[nfixed++], sizeof fixed[0], "AWS_LAMBDA_FUNCTION_VERSION=$LATEST");
	snprintf(fixed[nfixed++], sizeof fixed[0], "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=%lld",
		 e->memory_mb);
	snprintf(fixed[nfixed++], sizeof fixed[0], "AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/%s",
		 e->function);
	snprintf(fixed[nfixed++], sizeof fixed[0], "TZ=:UTC");
	snprintf(fixed[nfixed++], sizeof fixed[0], "LANG=C.UTF-8");

	/* Values that may be long go without the fixed buffers. */
	const char *names[] = {"_HANDLER",
			       "LAMBDA_TASK_ROOT",
			       "LAMBDA_RUNTIME_DIR",
			       "AWS_LAMBDA_FUNCTION_NAME",
			       "AWS_LAMBDA_LOG_STREAM_NAME",
			       "AWS_REGION",
			       "AWS_DEFAULT_REGION",
			       "PATH"};
	const char *values[] = {
	    e->handler,	   e->task_root, e->runtime_dir, e->function,
	    e->log_stream, e->region,	 e->region,	 e->path ? e->path : DEFAULT_PATH};
	size_t nvar = sizeof names / sizeof names[0];

	bool skip_fixed[10] = {false}, skip_var[8] = {false};
	for (size_t i = 0; i < nfixed; i++) {
		skip_fixed[i] = user_sets(e->environment, fixed[i], strcspn(fixed[i], "="));
		bytes += strlen(fixed[i]) + 1;
	}
	for (size_t i = 0; i < nvar; i++) {
		skip_var[i] = user_sets(e->environment, names[i], strlen(names[i]));
		bytes += strlen(names[i]) + 1 + strlen(values[i] ? values[i] : "") + 1;
	}
	for (size_t i = 0; i < nuser; i++)
		bytes +=
		    strlen(e->environment->keys[i]) + 1 + strlen(e->environment->values[i]) + 1;
	size_t count = nfixed + nvar + nuser;
	char **envp = malloc((count + 1) * sizeof *envp + bytes);
	if (!envp)
		return NULL;
	char *p = (char *)(envp + count + 1);
	size_t k = 0;
	for (size_t i = 0; i < nfixed; i++) {
		if (skip_fixed[i])
			continue;
		envp[k++] = p;
		p = stpcpy(p, fixed[i]) + 1;
	}
	for (size_t i = 0; i < nvar; i++) {
		if (skip_var[i])
			continue;
		envp[k++] = p;
		p = stpcpy(p, names[i]);
		*p++ = '=';
		p = stpcpy(p, values[i] ? values[i] : "") + 1;
	}
	for (size_t i = 0; i < nuser; i++) {
		envp[k++] = p;
		p = stpcpy(p, e->environment->keys[i]);
		*p++ = '=';
		p = stpcpy(p, e->environment->values[i]) + 1;
	}
	envp[k] = NULL;
	return envp;
}

long long td_proc_status_kb(const char *text, size_t len, const char *field)
{
	size_t flen = strlen(field), pos = 0;

	while (pos < len) {
		const char *line = text + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t llen = nl ? (size_t)(nl - line) : len - pos;
		pos += llen + 1;
		if (llen <= flen || memcmp(line, field, flen) != 0 || line[flen] != ':')
			continue;
		size_t i = flen + 1;
		while (i < llen && (line[i] == ' ' || line[i] == '\t'))
			i++;
		if (i >= llen || !isdigit((unsigned char)line[i]))
			return -1;
		long long v = 0;
		while (i < llen && isdigit((unsigned char)line[i])) {
			if (v > LLONG_MAX / 10 - 10)
				return -1;
			v = v * 10 + (line[i++] - '0');
		}
		while (i < llen && line[i] == ' ')
			i++;
		if (llen - i != 2 || memcmp(line + i, "kB", 2) != 0)
			return -1;
		return v;
	}
	return -1;
}

/* Go's names (Lambda's runtime is written in Go and prints these). */
static const char *signal_name(int sig)
{
	switch (sig) {
	case SIGKILL:
		return "killed";
	case SIGTERM:
		return "terminated";
	case SIGSEGV:
		return "segmentation fault";
	case SIGABRT:
		return "aborted";
	case SIGBUS:
		return "bus error";
	case SIGFPE:
		return "floating point exception";
	case SIGILL:
		return "illegal instruction";
	case SIGINT:
		return "interrupt";
	case SIGHUP:
		return "hangup";
	case SIGPIPE:
		return "broken pipe";
	case SIGQUIT:
		return "quit";
	default:
		return NULL;
	}
}

void td_proc_exit_text(int wstatus, char *out, size_t cap)
{
	if (WIFEXITED(wstatus)) {
		snprintf(out, cap, "exit status %d", WEXITSTATUS(wstatus));
	} else if (WIFSIGNALED(wstatus)) {
		const char *n = signal_name(WTERMSIG(wstatus));
		if (n)
			snprintf(out, cap, "signal: %s", n);
		else
			snprintf(out, cap, "signal: %d", WTERMSIG(wstatus));
	} else {
		snprintf(out, cap, "unknown wait status %d", wstatus);
	}
}

void td_proc_timeout_text(long long timeout_ms, char *out, size_t cap)
{
	snprintf(out, cap, "Task timed out after %lld.%02lld seconds", timeout_ms / 1000,
		 (timeout_ms % 1000) / 10);
}

static void hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

void td_proc_trace_id(long long wall_s, const unsigned char rnd[20], char *out, size_t cap)
{
	char a[25], b[17];
	hex(rnd, 12, a);
	hex(rnd + 12, 8, b);
	snprintf(out, cap, "Root=1-%08llx-%s;Parent=%s;Sampled=0",
		 (unsigned long long)wall_s & 0xffffffffULL, a, b);
}

void td_proc_log_stream(long long wall_s, const unsigned char rnd[16], char *out, size_t cap)
{
	struct tm tm;
	time_t t = (time_t)wall_s;
	char h[33];
	gmtime_r(&t, &tm);
	hex(rnd, 16, h);
	snprintf(out, cap, "%04d/%02d/%02d/[$LATEST]%s", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, h);
}

void td_proc_runtime_dir(const char *env_dir, const char *exe, const char *builtin, char *out,
			 size_t cap)
{
	struct stat st;

	if (env_dir && *env_dir) {
		snprintf(out, cap, "%s", env_dir);
		return;
	}
	if (exe && *exe) {
		const char *slash = strrchr(exe, '/');
		if (slash) {
			int n = snprintf(out, cap, "%.*s/../share/triggerd/runtimes",
					 (int)(slash - exe), exe);
			if (n > 0 && (size_t)n < cap && stat(out, &st) == 0 && S_ISDIR(st.st_mode))
				return;
		}
	}
	snprintf(out, cap, "%s", builtin);
}
