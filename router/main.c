/*
 * triggerd: the daemon. Parses the command line, loads the configuration, starts the
 * HTTP listeners, the router and its sources, and runs the engine loop on the main
 * thread until SIGTERM or SIGINT; SIGHUP reloads the configuration.
 *
 * Signals are blocked in every thread and read from a signalfd that the engine
 * watches, so a handler never runs in the middle of anything. Shutdown: stop intake,
 * let sync invocations finish and commit the queue within shutdown_grace, then settle
 * what is left as busy (sources deliver it again) and exit 0.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <curl/curl.h>

#include <triggerd/config.h>
#include <triggerd/errors.h>
#include <triggerd/log.h>

#include "admin.h"
#include "engine_loop.h"
#include "http_server.h"
#include "router.h"

#define TRIGGERD_VERSION "0.1.0"

static const char usage_text[] =
    "NAME\n"
    "    triggerd - event-trigger router: sources in, functions out\n"
    "\n"
    "SYNOPSIS\n"
    "    triggerd -c FILE [--state-dir DIR] [--webhook-listen ADDR:PORT]\n"
    "             [--admin-listen ADDR:PORT]\n"
    "    triggerd --help | --version\n"
    "\n"
    "DESCRIPTION\n"
    "    Takes events from the sources of FILE (webhooks, cron schedules, MQTT, Redis\n"
    "    Streams, Kafka), matches them against its triggers (EventBridge event patterns)\n"
    "    and invokes the matched functions synchronously or through a durable queue.\n"
    "    Runs in the foreground and logs to stderr.\n"
    "\n"
    "OPTIONS\n"
    "    -c, --config FILE          the configuration (libconfig); see triggerctl validate\n"
    "    --state-dir DIR            overrides state_dir (the durable queue lives there)\n"
    "    --webhook-listen ADDR:PORT overrides webhook.listen\n"
    "    --admin-listen ADDR:PORT   overrides admin.listen\n"
    "    -h, --help                 this text\n"
    "    --version                  the version\n"
    "\n"
    "SIGNALS\n"
    "    SIGTERM, SIGINT  stop intake, drain within shutdown_grace, exit 0\n"
    "    SIGHUP           reload FILE; a file with errors is refused and the running\n"
    "                     configuration stays\n"
    "\n"
    "EXIT STATUS\n"
    "    0 after a clean shutdown, 2 for a bad command line or configuration, 1 when a\n"
    "    listener or source cannot start.\n";

struct overrides {
	const char *config;
	const char *state_dir;
	const char *webhook_listen;
	const char *admin_listen;
};

struct daemon {
	struct overrides args;
	struct td_engine *engine;
	struct td_http_server *webhook_http, *admin_http;
	struct td_admin *admin;
	struct td_router *router;
	int signal_fd;
	bool stopping;
	long long stop_deadline_ms;
};

static int replace_string(char **field, const char *value)
{
	if (!value)
		return 0;
	char *copy = strdup(value);
	if (!copy)
		return -TD_ENOMEM;
	free(*field);
	*field = copy;
	return 0;
}

static struct td_config *load_config(const struct overrides *args)
{
	struct td_diag diag = {0};
	struct td_config *cfg = td_config_load(args->config, &diag);
	if (!cfg) {
		for (size_t i = 0; i < diag.n; i++)
			td_log_error("%s", diag.msgs[i]);
		td_diag_clear(&diag);
		return NULL;
	}
	td_diag_clear(&diag);
	if (replace_string(&cfg->global.state_dir, args->state_dir) < 0 ||
	    replace_string(&cfg->global.webhook_listen, args->webhook_listen) < 0 ||
	    replace_string(&cfg->global.admin_listen, args->admin_listen) < 0) {
		td_config_destroy(cfg);
		return NULL;
	}
	if (!td_listen_addr_is_loopback(cfg->global.admin_listen) && !cfg->global.admin_token) {
		td_log_error("%s: admin.listen %s is not a loopback address: set admin.token",
			     cfg->path, cfg->global.admin_listen);
		td_config_destroy(cfg);
		return NULL;
	}
	td_log_set_level((enum td_log_level)cfg->global.log_level);
	td_log_set_json(cfg->global.log_format == TD_LOGFMT_JSON);
	return cfg;
}

static void check_drained(void *arg)
{
	struct daemon *d = arg;
	if (td_router_drained(d->router) || td_now_ms() >= d->stop_deadline_ms) {
		if (!td_router_drained(d->router))
			td_log_warn(
			    "shutdown grace over; unfinished events stay with their sources");
		td_engine_stop(d->engine);
		return;
	}
	td_timer_add(d->engine, 10, check_drained, d);
}

static void begin_shutdown(struct daemon *d, const char *why)
{
	if (d->stopping)
		return;
	d->stopping = true;
	const struct td_config *cfg = td_router_config(d->router);
	d->stop_deadline_ms = td_now_ms() + cfg->global.shutdown_grace_ms;
	td_log_info("%s: stopping intake, draining for up to %lld ms", why,
		    cfg->global.shutdown_grace_ms);
	td_router_stop_intake(d->router);
	check_drained(d);
}

static void reload(struct daemon *d)
{
	td_log_info("SIGHUP: reloading %s", d->args.config);
	struct td_config *cfg = load_config(&d->args);
	if (!cfg) {
		td_log_error("reload refused: the file has errors; the running configuration "
			     "stays");
		return;
	}
	const struct td_global *old = &td_router_config(d->router)->global;
	if (strcmp(old->webhook_listen, cfg->global.webhook_listen) != 0 ||
	    strcmp(old->admin_listen, cfg->global.admin_listen) != 0 ||
	    strcmp(old->state_dir, cfg->global.state_dir) != 0)
		td_log_warn("reload: listen addresses and state_dir change only at restart");
	td_router_reload(d->router, cfg);
}

static void on_signal(void *arg, int fd)
{
	struct daemon *d = arg;
	struct signalfd_siginfo info;
	while (read(fd, &info, sizeof info) == (ssize_t)sizeof info) {
		if (info.ssi_signo == SIGHUP && !d->stopping)
			reload(d);
		else if (info.ssi_signo == SIGTERM || info.ssi_signo == SIGINT)
			begin_shutdown(d, info.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
	}
}

static int parse_args(int argc, char **argv, struct overrides *args)
{
	enum { OPT_STATE = 256, OPT_WEBHOOK, OPT_ADMIN, OPT_VERSION };
	static const struct option long_options[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"state-dir", required_argument, NULL, OPT_STATE},
	    {"webhook-listen", required_argument, NULL, OPT_WEBHOOK},
	    {"admin-listen", required_argument, NULL, OPT_ADMIN},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, OPT_VERSION},
	    {NULL, 0, NULL, 0},
	};
	int opt;
	while ((opt = getopt_long(argc, argv, "c:h", long_options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			args->config = optarg;
			break;
		case OPT_STATE:
			args->state_dir = optarg;
			break;
		case OPT_WEBHOOK:
			args->webhook_listen = optarg;
			break;
		case OPT_ADMIN:
			args->admin_listen = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		case OPT_VERSION:
			puts("triggerd " TRIGGERD_VERSION);
			exit(0);
		default:
			fputs("usage: triggerd -c FILE [--state-dir DIR] [--webhook-listen "
			      "ADDR:PORT] "
			      "[--admin-listen ADDR:PORT]\n",
			      stderr);
			return -1;
		}
	}
	if (!args->config || optind != argc) {
		fputs("triggerd: -c FILE is required (see triggerd --help)\n", stderr);
		return -1;
	}
	char host[256], err[256];
	unsigned port;
	const char *listens[] = {args->webhook_listen, args->admin_listen};
	for (int i = 0; i < 2; i++)
		if (listens[i] && td_listen_addr_parse(listens[i], host, sizeof host, &port, err,
						       sizeof err) < 0) {
			fprintf(stderr, "triggerd: %s: %s\n", listens[i], err);
			return -1;
		}
	return 0;
}

static struct td_http_server *listener(const struct td_global *g, const char *addr,
				       const char *name)
{
	char err[512];
	struct td_http_limits limits = {
	    .max_body = g->http_max_body,
	    .max_header = g->http_max_header,
	    .max_connections = g->http_max_connections,
	    .request_timeout_ms = g->http_request_timeout_ms,
	};
	struct td_http_server *s = td_http_server_create(addr, name, &limits, err, sizeof err);
	if (!s)
		td_log_error("%s", err);
	else
		td_log_info("%s listener on %s", name, addr);
	return s;
}

int main(int argc, char **argv)
{
	struct daemon d = {.signal_fd = -1};
	if (parse_args(argc, argv, &d.args) < 0)
		return 2;
	sigset_t signals;
	sigemptyset(&signals);
	sigaddset(&signals, SIGTERM);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &signals, NULL); /* before any thread exists */
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);

	int status = 1;
	struct td_config *cfg = load_config(&d.args);
	if (!cfg) {
		status = 2;
		goto out;
	}
	d.engine = td_engine_create();
	d.signal_fd = signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
	if (!d.engine || d.signal_fd < 0)
		goto out;
	td_engine_watch_fd(d.engine, d.signal_fd, on_signal, &d);
	if (!(d.admin_http = listener(&cfg->global, cfg->global.admin_listen, "admin")) ||
	    !(d.webhook_http = listener(&cfg->global, cfg->global.webhook_listen, "webhook")))
		goto out;
	const char *token = cfg->global.admin_token;
	d.router = td_router_create(d.engine, cfg, d.webhook_http);
	cfg = NULL; /* the router owns it now */
	if (!d.router)
		goto out;
	d.admin = td_admin_create(d.admin_http, d.router, token);
	if (!d.admin || td_router_start(d.router) < 0)
		goto out;
	td_log_info("triggerd %s running (pid %d)", TRIGGERD_VERSION, (int)getpid());
	td_engine_run(d.engine);
	status = 0;
out:
	td_admin_destroy(d.admin); /* no admin request reaches the engine from now on */
	if (d.admin_http)
		td_http_server_destroy(d.admin_http);
	if (d.router)
		td_router_stop_intake(d.router);
	td_router_destroy(d.router);
	if (d.webhook_http)
		td_http_server_destroy(d.webhook_http);
	td_config_destroy(cfg);
	td_engine_destroy(d.engine);
	if (d.signal_fd >= 0)
		close(d.signal_fd);
	curl_global_cleanup();
	if (status == 0)
		td_log_info("stopped");
	return status;
}
