/*
 * Pure helpers of the process kind, kept apart so that unit tests reach them: the
 * runtime's environment, /proc/PID/status fields, how a process ended in Lambda's
 * words, the Lambda-Runtime-* header values and where the runtimes live.
 *
 * Threads: any; nothing here keeps state. Strings returned through out buffers are
 * always NUL-terminated (cut when the buffer is short).
 */
#ifndef TRIGGERD_PROCESS_UTIL_H
#define TRIGGERD_PROCESS_UTIL_H

#include <stddef.h>

#include <triggerd/config.h> /* struct td_map */

/* What a runtime process starts with (the strings are borrowed). */
struct td_proc_env {
	unsigned port;		 /* of its Runtime API listener */
	const char *handler;	 /* _HANDLER */
	const char *task_root;	 /* absolute code folder */
	const char *runtime_dir; /* LAMBDA_RUNTIME_DIR */
	const char *function;	 /* the function's name */
	long long memory_mb;
	const char *region;		  /* AWS_REGION */
	const char *log_stream;		  /* AWS_LAMBDA_LOG_STREAM_NAME */
	const char *path;		  /* PATH; NULL: /usr/local/bin:/usr/bin:/bin */
	const struct td_map *environment; /* the function's own, may be NULL */
};

/* A NULL-terminated "NAME=value" array for execve, malloc'ed as one block (free() it
 * once). The function's own variables come last; one with the name of a variable set
 * here replaces it (the configuration check refuses the reserved names, so in practice
 * PATH and LANG). NULL when out of memory. */
char **td_proc_env_build(const struct td_proc_env *env);

/* The value in kB of a "Name:   1234 kB" line of a /proc/PID/status text (field
 * "VmHWM", "VmRSS"), or -1 when it is not there or malformed. Reads only text[0..len). */
long long td_proc_status_kb(const char *text, size_t len, const char *field);

/* How a process ended, as Lambda says it after "Runtime exited with error: ":
 * "exit status 1", "signal: killed", "signal: segmentation fault". From a waitpid
 * status. */
void td_proc_exit_text(int wstatus, char *out, size_t cap);

/* "Task timed out after 3.00 seconds". */
void td_proc_timeout_text(long long timeout_ms, char *out, size_t cap);

/* "Root=1-5e1b4151-5ac6c58f5b5dbd6a3b22d28c;Parent=53995c3f42cd8ad8;Sampled=0" from the
 * wall clock in seconds and 20 random bytes. */
void td_proc_trace_id(long long wall_s, const unsigned char rnd[20], char *out, size_t cap);

/* "2026/11/27/[$LATEST]" + 32 hex digits of rnd. */
void td_proc_log_stream(long long wall_s, const unsigned char rnd[16], char *out, size_t cap);

/*
 * Where the shipped runtimes live: env_dir (TRIGGERD_RUNTIME_DIR) when set and not
 * empty; else EXE_DIR/../share/triggerd/runtimes when that folder exists (exe is the
 * daemon's path, may be NULL); else builtin. Writes into out.
 */
void td_proc_runtime_dir(const char *env_dir, const char *exe, const char *builtin, char *out,
			 size_t cap);

#endif
