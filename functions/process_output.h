/*
 * The output of one runtime process: its stdout and stderr share one pipe, read by a
 * small thread of its own (the engine has no fd watch for kinds) and handed to the
 * engine thread line by line.
 *
 * Ordering matters for the Invoke API's Tail: a runtime writes its handler's output
 * before it posts the response, so the engine calls td_pout_drain() when the response
 * arrives and gets every line written until then, whether the thread had read it or
 * not (both read under one lock, non-blocking).
 *
 * Threads: create, drain and destroy on the engine thread; the callbacks run there.
 */
#ifndef TRIGGERD_PROCESS_OUTPUT_H
#define TRIGGERD_PROCESS_OUTPUT_H

#include <stddef.h>

struct td_engine;
struct td_pout;

/* A line without its '\n' (a '\r' before it removed too); lines longer than
 * TD_POUT_MAX_LINE are split. line is valid during the call only. */
#define TD_POUT_MAX_LINE 8192
typedef void (*td_pout_line_fn)(void *arg, const char *line, size_t len);
/* The pipe reached end of file (every writer closed it): the last call for this pout. */
typedef void (*td_pout_eof_fn)(void *arg);

/* Takes over fd (the read end; made non-blocking, closed by destroy). NULL on failure
 * (fd is then closed). */
struct td_pout *td_pout_create(struct td_engine *engine, int fd, td_pout_line_fn on_line,
			       td_pout_eof_fn on_eof, void *arg);
/* Reads what is in the pipe now and delivers every complete line (and, at end of file,
 * the rest and on_eof). May be called from inside a callback of another pout. */
void td_pout_drain(struct td_pout *po);
/* Stops and joins the thread, closes the pipe. No callback after it returns. May be
 * called from inside this pout's own callbacks. */
void td_pout_destroy(struct td_pout *po);

/*
 * Splits buf[0..*len) into lines: calls fn for each complete one (and, when final, for
 * the unterminated rest), cuts lines at TD_POUT_MAX_LINE, moves what is left to the
 * front and updates *len. Pure; for tests.
 */
void td_pout_split(char *buf, size_t *len, int final, td_pout_line_fn fn, void *arg);

#endif
