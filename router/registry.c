/*
 * The registry of kinds: every source kind (connectors/) and function kind (functions/)
 * is one line below, as in Fluent Bit's plugin list or nginx's module list. Adding a
 * kind is its own file plus one line here; nothing else in the router names a kind.
 */
#include <triggerd/function.h>
#include <triggerd/source.h>

#include <string.h>

/* One line per kind: X(symbol suffix). */
#define SOURCE_KINDS(X)                                                                            \
	X(webhook)                                                                                 \
	X(cron)                                                                                    \
	X(mqtt)                                                                                    \
	X(redis)                                                                                   \
	X(kafka)

#define FUNCTION_KINDS(X)                                                                          \
	X(http)                                                                                    \
	X(log)                                                                                     \
	X(lambda)                                                                                  \
	X(process)

#define DECLARE_SOURCE(kind)   extern const struct td_source_ops td_source_##kind;
#define DECLARE_FUNCTION(kind) extern const struct td_function_ops td_function_##kind;
#define SOURCE_ENTRY(kind)     &td_source_##kind,
#define FUNCTION_ENTRY(kind)   &td_function_##kind,

SOURCE_KINDS(DECLARE_SOURCE)
FUNCTION_KINDS(DECLARE_FUNCTION)

const struct td_source_ops *const td_source_kinds[] = {SOURCE_KINDS(SOURCE_ENTRY) NULL};
const struct td_function_ops *const td_function_kinds[] = {FUNCTION_KINDS(FUNCTION_ENTRY) NULL};

const struct td_source_ops *td_source_kind(const char *name)
{
	for (size_t i = 0; td_source_kinds[i]; i++)
		if (strcmp(td_source_kinds[i]->name, name) == 0)
			return td_source_kinds[i];
	return NULL;
}

const struct td_function_ops *td_function_kind(const char *name)
{
	for (size_t i = 0; td_function_kinds[i]; i++)
		if (strcmp(td_function_kinds[i]->name, name) == 0)
			return td_function_kinds[i];
	return NULL;
}
