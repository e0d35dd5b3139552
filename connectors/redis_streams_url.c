/*
 * The Redis server URL of a redis source (redis_streams_util.h gives the forms). A
 * small hand-written scanner: it walks the text once, left to right, and every refusal
 * names the byte where it happened, so that `triggerctl validate` can point at the
 * mistake. Nothing is guessed: a part that does not fit its place is an error, not
 * dropped.
 */
#include "redis_streams_util.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <triggerd/errors.h>

#define DEFAULT_PORT 6379

static int fail(char *err, size_t errlen, size_t at, const char *what)
{
	if (err && errlen)
		snprintf(err, errlen, "at byte %zu: %s", at, what);
	return -TD_EINVAL;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Percent-decodes s[from..to) into out (cap bytes with the NUL). Refuses control
 * characters (raw or decoded), which no credential needs and a log line must not carry.
 */
static int decode(const char *s, size_t from, size_t to, char *out, size_t cap, const char *what,
		  char *err, size_t errlen)
{
	size_t n = 0;
	char msg[96];
	for (size_t i = from; i < to; i++) {
		unsigned char c = (unsigned char)s[i];
		size_t at = i;
		if (c == '%') {
			int hi = i + 2 < to ? hex_value(s[i + 1]) : -1;
			int lo = i + 2 < to ? hex_value(s[i + 2]) : -1;
			if (hi < 0 || lo < 0) {
				snprintf(msg, sizeof msg,
					 "%s: '%%' must be followed by two hex digits", what);
				return fail(err, errlen, at, msg);
			}
			c = (unsigned char)(hi * 16 + lo);
			i += 2;
		}
		if (c < 0x20 || c == 0x7f) {
			snprintf(msg, sizeof msg, "%s: control character", what);
			return fail(err, errlen, at, msg);
		}
		if (n + 1 >= cap) {
			snprintf(msg, sizeof msg, "%s is longer than %zu bytes", what, cap - 1);
			return fail(err, errlen, from, msg);
		}
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return 0;
}

/* A decimal number s[from..to) within [min, max]. */
static int number(const char *s, size_t from, size_t to, long long min, long long max,
		  long long *out, const char *what, char *err, size_t errlen)
{
	char msg[96];
	long long v = 0;
	if (from == to) {
		snprintf(msg, sizeof msg, "%s is empty", what);
		return fail(err, errlen, from, msg);
	}
	for (size_t i = from; i < to; i++) {
		if (s[i] < '0' || s[i] > '9') {
			snprintf(msg, sizeof msg, "%s must be a number", what);
			return fail(err, errlen, i, msg);
		}
		v = v * 10 + (s[i] - '0');
		if (v > max) {
			snprintf(msg, sizeof msg, "%s must be at most %lld", what, max);
			return fail(err, errlen, from, msg);
		}
	}
	if (v < min) {
		snprintf(msg, sizeof msg, "%s must be at least %lld", what, min);
		return fail(err, errlen, from, msg);
	}
	*out = v;
	return 0;
}

static bool host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_';
}

/* The query of a unix:// URL: db=N, user=U, password=P joined by '&'. */
static int unix_query(const char *s, size_t from, size_t to, struct td_redis_url *u, char *err,
		      size_t errlen)
{
	size_t i = from;
	while (i < to) {
		size_t end = i;
		while (end < to && s[end] != '&')
			end++;
		const char *eq = memchr(s + i, '=', end - i);
		if (!eq)
			return fail(err, errlen, i, "a query parameter needs NAME=VALUE");
		size_t name_len = (size_t)(eq - (s + i)), v = (size_t)(eq - s) + 1;
		if (name_len == 2 && strncmp(s + i, "db", 2) == 0) {
			if (number(s, v, end, 0, 2147483647, &u->db, "db", err, errlen) < 0)
				return -TD_EINVAL;
		} else if (name_len == 4 && strncmp(s + i, "user", 4) == 0) {
			if (decode(s, v, end, u->user, sizeof u->user, "user", err, errlen) < 0)
				return -TD_EINVAL;
		} else if (name_len == 8 && strncmp(s + i, "password", 8) == 0) {
			if (decode(s, v, end, u->password, sizeof u->password, "password", err,
				   errlen) < 0)
				return -TD_EINVAL;
			u->has_password = u->password[0] != '\0';
		} else {
			return fail(err, errlen, i,
				    "unknown query parameter (db, user and password are known)");
		}
		i = end < to ? end + 1 : end;
	}
	return 0;
}

static int socket_path(const char *s, size_t from, size_t to, struct td_redis_url *u, char *err,
		       size_t errlen)
{
	if (from == to || s[from] != '/')
		return fail(err, errlen, from, "a socket path must start with '/'");
	if (to - from >= sizeof u->path)
		return fail(err, errlen, from, "the socket path is longer than 107 bytes");
	for (size_t i = from; i < to; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return fail(err, errlen, i, "control character in the socket path");
	memcpy(u->path, s + from, to - from);
	u->path[to - from] = '\0';
	u->unix_socket = true;
	return 0;
}

/* redis://[[user]:password@]host[:port][/db] from s[from..len). */
static int tcp_url(const char *s, size_t from, size_t len, struct td_redis_url *u, char *err,
		   size_t errlen)
{
	/* The authority ends at the first '/', '?' or '#'. */
	size_t end = from;
	while (end < len && s[end] != '/' && s[end] != '?' && s[end] != '#')
		end++;
	size_t host_from = from;
	const char *at = NULL;
	for (size_t i = from; i < end; i++)
		if (s[i] == '@')
			at = s + i; /* the last '@': a password may hold a raw '@' */
	if (at) {
		size_t at_pos = (size_t)(at - s);
		const char *colon = memchr(s + from, ':', at_pos - from);
		if (colon) {
			size_t c = (size_t)(colon - s);
			if (decode(s, from, c, u->user, sizeof u->user, "user", err, errlen) < 0 ||
			    decode(s, c + 1, at_pos, u->password, sizeof u->password, "password",
				   err, errlen) < 0)
				return -TD_EINVAL;
		} else {
			/* redis://secret@host: a lone credential is the password (AUTH secret). */
			if (decode(s, from, at_pos, u->password, sizeof u->password, "password",
				   err, errlen) < 0)
				return -TD_EINVAL;
		}
		u->has_password = u->password[0] != '\0';
		if (u->user[0] && !u->has_password)
			return fail(err, errlen, from, "a user needs a password (user:password@)");
		host_from = at_pos + 1;
	}
	size_t host_end;
	size_t i = host_from;
	if (i < end && s[i] == '[') {
		const char *close = memchr(s + i, ']', end - i);
		if (!close)
			return fail(err, errlen, i, "'[' of an IPv6 address is not closed");
		host_end = (size_t)(close - s);
		if (host_end == i + 1)
			return fail(err, errlen, i, "empty IPv6 address");
		if (host_end - i - 1 >= INET6_ADDRSTRLEN)
			return fail(err, errlen, i + 1, "not an IPv6 address");
		memcpy(u->host, s + i + 1, host_end - i - 1);
		u->host[host_end - i - 1] = '\0';
		struct in6_addr addr;
		if (inet_pton(AF_INET6, u->host, &addr) != 1)
			return fail(err, errlen, i + 1, "not an IPv6 address");
		i = host_end + 1;
	} else {
		while (i < end && s[i] != ':') {
			if (!host_char(s[i]))
				return fail(err, errlen, i, "character not allowed in a host name");
			i++;
		}
		if (i == host_from)
			return fail(err, errlen, i, "the host is missing");
		if (i - host_from >= sizeof u->host)
			return fail(err, errlen, host_from, "the host is too long");
		memcpy(u->host, s + host_from, i - host_from);
		u->host[i - host_from] = '\0';
	}
	u->port = DEFAULT_PORT;
	if (i < end) {
		if (s[i] != ':')
			return fail(err, errlen, i, "expected ':PORT' or '/DB' after the host");
		long long port;
		if (number(s, i + 1, end, 1, 65535, &port, "port", err, errlen) < 0)
			return -TD_EINVAL;
		u->port = (int)port;
	}
	if (end == len)
		return 0;
	if (s[end] != '/')
		return fail(err, errlen, end,
			    "query and fragment are not supported (write the db as /N)");
	size_t db_from = end + 1, db_end = db_from;
	while (db_end < len && s[db_end] != '/' && s[db_end] != '?' && s[db_end] != '#')
		db_end++;
	if (db_end < len)
		return fail(err, errlen, db_end, "nothing may follow the db number");
	if (db_from < db_end &&
	    number(s, db_from, db_end, 0, 2147483647, &u->db, "db", err, errlen) < 0)
		return -TD_EINVAL;
	return 0;
}

int td_redis_url_parse(const char *text, struct td_redis_url *out, char *err, size_t errlen)
{
	struct td_redis_url u;
	memset(&u, 0, sizeof u);
	if (!text || !*text)
		return fail(err, errlen, 0, "the URL is empty");
	size_t len = strlen(text);
	int rc;
	if (text[0] == '/') {
		rc = socket_path(text, 0, len, &u, err, errlen);
	} else if (strncmp(text, "unix://", 7) == 0) {
		const char *q = memchr(text + 7, '?', len - 7);
		size_t path_end = q ? (size_t)(q - text) : len;
		rc = socket_path(text, 7, path_end, &u, err, errlen);
		if (rc == 0 && q)
			rc = unix_query(text, path_end + 1, len, &u, err, errlen);
		if (rc == 0 && u.user[0] && !u.has_password)
			rc = fail(err, errlen, path_end, "a user needs a password");
	} else if (strncmp(text, "redis://", 8) == 0) {
		rc = tcp_url(text, 8, len, &u, err, errlen);
	} else if (strncmp(text, "rediss://", 9) == 0) {
		rc = fail(err, errlen, 0,
			  "rediss:// (TLS) is not supported: the hiredis of this build (0.14) has "
			  "no TLS");
	} else {
		rc = fail(err, errlen, 0,
			  "expected redis://HOST:PORT/DB, unix:///PATH or a socket path /PATH");
	}
	if (rc < 0)
		return rc;
	*out = u;
	return 0;
}

void td_redis_url_describe(const struct td_redis_url *u, char *out, size_t cap)
{
	if (u->unix_socket)
		snprintf(out, cap, "%s", u->path);
	else if (strchr(u->host, ':'))
		snprintf(out, cap, "[%s]:%d", u->host, u->port);
	else
		snprintf(out, cap, "%s:%d", u->host, u->port);
	if (u->db != 0) {
		size_t n = strlen(out);
		if (n < cap)
			snprintf(out + n, cap - n, "/%lld", u->db);
	}
}
