/*
 * libFuzzer target for connectors/redis_streams_url.c. The input is the text of the url
 * option. Beyond "no crash, no out-of-bounds read" (ASan, UBSan) it checks that an
 * accepted URL is consistent (a TCP URL has a host and a port in 1..65535, a socket a
 * path starting with '/', a user only with a password, db >= 0), that a refusal says
 * where ("at byte N" with N inside the text), that the description is made of the
 * address alone (never of the credentials), and that the TCP form written back from the parts
 * parses to the same parts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../connectors/redis_streams_util.h"

#define CHECK(cond, what)                                                                          \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_redis_url: %s\n", what);                             \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	size_t len = strlen(text);
	struct td_redis_url u;
	char err[256] = "";
	if (td_redis_url_parse(text, &u, err, sizeof err) < 0) {
		size_t at = 0;
		CHECK(sscanf(err, "at byte %zu:", &at) == 1, "a refusal names no byte");
		CHECK(at <= len, "a refusal names a byte past the end");
		free(text);
		return 0;
	}
	CHECK(u.db >= 0, "negative db");
	CHECK(!u.user[0] || u.has_password, "a user without a password");
	CHECK(u.has_password == (u.password[0] != '\0'), "has_password disagrees");
	char where[400];
	td_redis_url_describe(&u, where, sizeof where);
	if (u.unix_socket) {
		CHECK(u.path[0] == '/', "a socket path without '/'");
	} else {
		CHECK(u.host[0] != '\0', "no host");
		CHECK(u.port >= 1 && u.port <= 65535, "port out of range");
		/* The description is made of the address alone: credentials change nothing. */
		struct td_redis_url blank = u;
		char where2[400];
		memset(blank.user, 0, sizeof blank.user);
		memset(blank.password, 'Z', sizeof blank.password - 1);
		blank.password[sizeof blank.password - 1] = '\0';
		td_redis_url_describe(&blank, where2, sizeof where2);
		CHECK(strcmp(where, where2) == 0, "the description depends on the credentials");
		/* Written back (without credentials), it reads the same. */
		char again[400];
		snprintf(again, sizeof again,
			 strchr(u.host, ':') ? "redis://[%s]:%d/%lld" : "redis://%s:%d/%lld",
			 u.host, u.port, u.db);
		struct td_redis_url v;
		CHECK(td_redis_url_parse(again, &v, err, sizeof err) == 0, "written back: refused");
		CHECK(strcmp(v.host, u.host) == 0 && v.port == u.port && v.db == u.db,
		      "written back: different parts");
	}
	free(text);
	return 0;
}
