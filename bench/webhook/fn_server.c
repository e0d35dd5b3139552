/*
 * A fast HTTP function for the webhook benchmark: answers every POST at once with 200
 * and a small JSON body, so that the benchmark measures triggerd and not the function.
 * Built on triggerd's own HTTP server. Usage: fn_server PORT (runs until SIGTERM).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <unistd.h>

#include "../../router/http_server.h"

static void answer(void *arg, struct td_http_exchange *ex)
{
	(void)arg;
	static const char body[] = "{\"ok\":true}";
	td_http_respond(ex, 200, "application/json", body, sizeof body - 1, NULL, 0);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: fn_server PORT\n");
		return 2;
	}
	char listen[64], err[256];
	snprintf(listen, sizeof listen, "127.0.0.1:%s", argv[1]);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	struct td_http_limits limits = {.max_connections = 4096};
	struct td_http_server *s = td_http_server_create(listen, "fn", &limits, err, sizeof err);
	if (!s || td_http_route_add(s, "/*", answer, NULL) < 0) {
		fprintf(stderr, "fn_server: %s\n", err);
		return 1;
	}
	int sig;
	sigwait(&set, &sig);
	td_http_server_destroy(s);
	return 0;
}
