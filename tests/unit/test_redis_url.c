/*
 * Unit tests for connectors/redis_streams_url.c: every accepted form with what it
 * yields (host, port, path, credentials, db), every refusal with the byte it names and
 * the words of its reason, and the describe form that messages use (never a password).
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include <triggerd/errors.h>

#include "../../connectors/redis_streams_util.h"

struct good_case {
	const char *url;
	bool unix_socket;
	const char *host;
	int port;
	const char *path;
	const char *user;
	const char *password; /* NULL: none */
	long long db;
	const char *describe;
};

Test(redis_url, accepted_forms)
{
	static const struct good_case cases[] = {
	    {"redis://127.0.0.1:6379/0", false, "127.0.0.1", 6379, "", "", NULL, 0,
	     "127.0.0.1:6379"},
	    {"redis://localhost", false, "localhost", 6379, "", "", NULL, 0, "localhost:6379"},
	    {"redis://localhost/", false, "localhost", 6379, "", "", NULL, 0, "localhost:6379"},
	    {"redis://cache.example.org:7000/3", false, "cache.example.org", 7000, "", "", NULL, 3,
	     "cache.example.org:7000/3"},
	    {"redis://:s3cret@10.0.0.5:6380", false, "10.0.0.5", 6380, "", "", "s3cret", 0,
	     "10.0.0.5:6380"},
	    {"redis://s3cret@h", false, "h", 6379, "", "", "s3cret", 0, "h:6379"},
	    {"redis://alice:pa%40ss%3Aword@h:1/15", false, "h", 1, "", "alice", "pa@ss:word", 15,
	     "h:1/15"},
	    {"redis://alice:p@ss@h", false, "h", 6379, "", "alice", "p@ss", 0, "h:6379"},
	    {"redis://[::1]:6390/2", false, "::1", 6390, "", "", NULL, 2, "[::1]:6390/2"},
	    {"redis://[::ffff:127.0.0.1]", false, "::ffff:127.0.0.1", 6379, "", "", NULL, 0,
	     "[::ffff:127.0.0.1]:6379"},
	    {"redis://h:65535/2147483647", false, "h", 65535, "", "", NULL, 2147483647,
	     "h:65535/2147483647"},
	    {"/run/redis/redis.sock", true, "", 0, "/run/redis/redis.sock", "", NULL, 0,
	     "/run/redis/redis.sock"},
	    {"unix:///tmp/r.sock", true, "", 0, "/tmp/r.sock", "", NULL, 0, "/tmp/r.sock"},
	    {"unix:///tmp/r.sock?db=4&password=x%20y", true, "", 0, "/tmp/r.sock", "", "x y", 4,
	     "/tmp/r.sock/4"},
	    {"unix:///tmp/r.sock?user=bob&password=pw", true, "", 0, "/tmp/r.sock", "bob", "pw", 0,
	     "/tmp/r.sock"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct good_case *c = &cases[i];
		struct td_redis_url u;
		char err[256] = "", where[300];
		int rc = td_redis_url_parse(c->url, &u, err, sizeof err);
		cr_assert_eq(rc, 0, "%s: %s", c->url, err);
		cr_expect_eq(u.unix_socket, c->unix_socket, "%s", c->url);
		cr_expect_str_eq(u.host, c->host, "%s", c->url);
		if (!c->unix_socket)
			cr_expect_eq(u.port, c->port, "%s", c->url);
		cr_expect_str_eq(u.path, c->path, "%s", c->url);
		cr_expect_str_eq(u.user, c->user, "%s", c->url);
		cr_expect_eq(u.has_password, c->password != NULL, "%s", c->url);
		if (c->password)
			cr_expect_str_eq(u.password, c->password, "%s", c->url);
		cr_expect_eq(u.db, c->db, "%s", c->url);
		td_redis_url_describe(&u, where, sizeof where);
		cr_expect_str_eq(where, c->describe, "%s", c->url);
		cr_expect_null(strstr(where, "s3cret"), "no password in %s", where);
	}
}

struct bad_case {
	const char *url;
	const char *words; /* the message holds these */
};

Test(redis_url, refusals_name_the_byte_and_the_reason)
{
	static const struct bad_case cases[] = {
	    {"", "at byte 0: the URL is empty"},
	    {"http://h:1", "at byte 0: expected redis://"},
	    {"rediss://h:6379", "at byte 0: rediss:// (TLS) is not supported"},
	    {"redis://", "at byte 8: the host is missing"},
	    {"redis://:6379", "at byte 8: the host is missing"},
	    {"redis://h:0", "at byte 10: port must be at least 1"},
	    {"redis://h:65536", "at byte 10: port must be at most 65535"},
	    {"redis://h:12x", "at byte 12: port must be a number"},
	    {"redis://h:", "at byte 10: port is empty"},
	    {"redis://h/x", "at byte 10: db must be a number"},
	    {"redis://h/1/2", "at byte 11: nothing may follow the db number"},
	    {"redis://h?db=1", "at byte 9: query and fragment are not supported"},
	    {"redis://h h", "at byte 9: character not allowed in a host name"},
	    {"redis://[::1", "at byte 8: '[' of an IPv6 address is not closed"},
	    {"redis://[]", "at byte 8: empty IPv6 address"},
	    {"redis://[::g]", "at byte 9: not an IPv6 address"},
	    {"redis://[::.:1..8]", "at byte 9: not an IPv6 address"},
	    {"redis://[::1]x", "at byte 13: expected ':PORT' or '/DB' after the host"},
	    {"redis://u:%4@h", "at byte 10: password: '%' must be followed by two hex digits"},
	    {"redis://u:%zz@h", "at byte 10: password: '%' must be followed by two hex digits"},
	    {"redis://u:a%0Ab@h", "at byte 11: password: control character"},
	    {"redis://alice:@h", "at byte 8: a user needs a password"},
	    {"redis://h/99999999999", "at byte 10: db must be at most 2147483647"},
	    {"unix://tmp/r.sock", "at byte 7: a socket path must start with '/'"},
	    {"unix:///tmp/r.sock?db", "at byte 19: a query parameter needs NAME=VALUE"},
	    {"unix:///tmp/r.sock?colour=red", "at byte 19: unknown query parameter"},
	    {"unix:///tmp/r.sock?user=bob", "a user needs a password"},
	    {"/tmp/\x01.sock", "at byte 5: control character in the socket path"},
	    {"/0123456789012345678901234567890123456789012345678901234567890123456789"
	     "01234567890123456789012345678901234567890",
	     "at byte 0: the socket path is longer than 107 bytes"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct td_redis_url u;
		char err[256] = "";
		int rc = td_redis_url_parse(cases[i].url, &u, err, sizeof err);
		cr_expect_eq(rc, -TD_EINVAL, "%s was accepted", cases[i].url);
		cr_expect(strstr(err, cases[i].words) != NULL, "%s: \"%s\" lacks \"%s\"",
			  cases[i].url, err, cases[i].words);
	}
}

Test(redis_url, long_credentials_are_refused_not_cut)
{
	char url[1200], pw[700];
	memset(pw, 'p', sizeof pw - 1);
	pw[sizeof pw - 1] = '\0';
	snprintf(url, sizeof url, "redis://:%s@h", pw);
	struct td_redis_url u;
	char err[256] = "";
	cr_expect_eq(td_redis_url_parse(url, &u, err, sizeof err), -TD_EINVAL);
	cr_expect(strstr(err, "password is longer than 511 bytes") != NULL, "%s", err);
}

Test(redis_url, a_refusal_leaves_the_output_untouched)
{
	struct td_redis_url u;
	memset(&u, 0x5a, sizeof u);
	struct td_redis_url before = u;
	cr_expect_eq(td_redis_url_parse("redis://:pw@", &u, NULL, 0), -TD_EINVAL);
	cr_expect_eq(memcmp(&u, &before, sizeof u), 0);
}
