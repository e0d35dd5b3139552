/*
 * The small helpers every parser uses to fail with a reason (see errors.h), kept in one
 * place so that messages look the same everywhere.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <triggerd/errors.h>

int td_fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -TD_EINVAL;
}

const char *td_shown(const char *value, size_t len, char out[64])
{
	size_t n = len > 48 ? 48 : len;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)value[i];
		out[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (n < len) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
	return out;
}
