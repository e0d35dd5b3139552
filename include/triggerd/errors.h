/*
 * Error codes shared by every module: functions return 0 (or a count) on success and
 * a negative TD_E* code on failure; constructors return NULL. A message for a person
 * travels separately (an err buffer or a td_diag), made where the error happened.
 */
#ifndef TRIGGERD_ERRORS_H
#define TRIGGERD_ERRORS_H

#include <stddef.h>

enum {
	TD_OK = 0,
	TD_EINVAL = 1,	  /* bad input: syntax, type, range */
	TD_ENOMEM = 2,	  /* allocation failed */
	TD_EIO = 3,	  /* a system call or a library failed */
	TD_ENOTFOUND = 4, /* no such name */
	TD_EFULL = 5,	  /* a queue or a limit is full: back off and retry */
	TD_ETIMEDOUT = 6,
	TD_ESTATE = 7, /* not allowed in the current state */
};

/* Writes the message into err (when err is not NULL and errlen > 0) and returns
 * -TD_EINVAL: the one-line way for a parser to fail with its reason. Any thread. */
int td_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A value quoted in a message: printable ASCII kept, any other byte shown as '?', cut at
 * 48 bytes with "..." added. Writes into out and returns it. */
const char *td_shown(const char *value, size_t len, char out[64]);

#endif
