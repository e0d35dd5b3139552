/*
 * Destinations: where a trigger's results (on_success) and dead letters (on_failure)
 * go, as one JSON record each. A destination is written as a string in the
 * configuration: "file:/var/lib/triggerd/dead.jsonl" (JSON lines, appended and
 * fsync'ed), "http://..." or "https://..." (POST application/json), or
 * "mqtt://SOURCE/topic", "redis://SOURCE/stream", "kafka://SOURCE/topic": published
 * through the connection of the named source, by its kind's publish callback.
 *
 * A destination is reference-counted: a record being sent holds a reference, so a
 * reload may drop the trigger that made it while records are still on their way.
 *
 * Threads: engine thread only. done() always runs later on the engine thread, never
 * inside td_destination_send().
 */
#ifndef TRIGGERD_DESTINATION_H
#define TRIGGERD_DESTINATION_H

#include <stdbool.h>
#include <stddef.h>

struct td_engine;
struct td_source;
struct td_destination;

/* Finds the running source named name for a broker destination (NULL: none). */
typedef struct td_source *(*td_destination_find_source)(void *arg, const char *name);

/* NULL with the reason in err for an unknown or unusable destination. */
struct td_destination *td_destination_create(const char *spec, struct td_engine *engine,
					     td_destination_find_source find, void *find_arg,
					     char *err, size_t errlen);
/* Drops the creator's reference (NULL is ignored). */
void td_destination_destroy(struct td_destination *d);
const char *td_destination_spec(const struct td_destination *d);
/* Sends one record (copied); done(arg, ok, error) reports whether it was stored. */
void td_destination_send(struct td_destination *d, const char *record, size_t len,
			 void (*done)(void *arg, bool ok, const char *error), void *arg);

#endif
