/*
 * Destinations: where a trigger's results (on_success) and dead letters (on_failure)
 * go, as one JSON record each. A destination is written as a string in the
 * configuration: "file:/var/lib/triggerd/dead.jsonl" (JSON lines, appended and
 * fsync'ed), "http://..." or "https://..." (POST application/json). Later kinds
 * (mqtt, redis, kafka) add one case each here.
 *
 * Threads: engine thread only. done() always runs later on the engine thread, never
 * inside td_destination_send().
 */
#ifndef TRIGGERD_DESTINATION_H
#define TRIGGERD_DESTINATION_H

#include <stdbool.h>
#include <stddef.h>

struct td_engine;
struct td_destination;

/* NULL with the reason in err for an unknown or unusable destination. */
struct td_destination *td_destination_create(const char *spec, struct td_engine *engine,
					     char *err, size_t errlen);
void td_destination_destroy(struct td_destination *d);
const char *td_destination_spec(const struct td_destination *d);
/* Sends one record (copied); done(arg, ok, error) reports whether it was stored. */
void td_destination_send(struct td_destination *d, const char *record, size_t len,
			 void (*done)(void *arg, bool ok, const char *error), void *arg);

#endif
