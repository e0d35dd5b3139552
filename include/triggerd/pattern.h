/*
 * EventBridge event patterns: compile a set of rules once, then match events against
 * the whole set in one pass.
 *
 * Semantics are those of Amazon EventBridge (reference implementation: event-ruler):
 * a pattern is a JSON object whose leaves are arrays of alternatives; fields AND,
 * alternatives OR, "$or" ORs whole sub-patterns; exact values (type-exact, numbers
 * compared as exact decimals: 3 == 3.0), prefix, suffix, equals-ignore-case (also
 * inside prefix and suffix), wildcard, anything-but (values, prefix, suffix,
 * equals-ignore-case, wildcard), numeric (doubles), exists (leaf values only), cidr;
 * arrays in events match when any element does, and two fields may not be matched
 * from different elements of one array.
 *
 * Matching time depends on the event and on how many conditions it satisfies, not on
 * the number of rules: see router/pattern_internal.h for the design.
 *
 * Threads and ownership: a td_pattern_set is built by one thread (create, add, compile);
 * after td_pattern_set_compile() it is immutable and may be shared by any number of
 * threads, each matching through its own td_matcher. The set must outlive its matchers.
 * Pattern and event texts are only read during the call.
 */
#ifndef TRIGGERD_PATTERN_H
#define TRIGGERD_PATTERN_H

#include <stddef.h>

struct td_pattern_set;
struct td_matcher;

/* An empty set, or NULL when out of memory. The caller owns it. */
struct td_pattern_set *td_pattern_set_create(void);
/* Frees the set (NULL is allowed); every matcher made from it must be destroyed first. */
void td_pattern_set_destroy(struct td_pattern_set *set);

/*
 * Adds one pattern (JSON text) under the caller's rule id. The same id may be added
 * several times: an event matches the id when any of its patterns match. Returns 0, or
 * -TD_EINVAL with a message in err that says what is wrong and where in the pattern
 * (for example `at detail.size: numeric: expected an operator, found "=>"`), or
 * -TD_ESTATE after td_pattern_set_compile(), or -TD_ENOMEM. On failure the set is as
 * before. err may be NULL.
 */
int td_pattern_set_add(struct td_pattern_set *set, unsigned id, const char *pattern, size_t len,
		       char *err, size_t errlen);
/* Freezes the set; no add after this. Returns 0, -TD_ENOMEM, or -TD_ESTATE if already done. */
int td_pattern_set_compile(struct td_pattern_set *set);

/* Checks one pattern without keeping it (same results and messages as _add). */
int td_pattern_validate(const char *pattern, size_t len, char *err, size_t errlen);

/*
 * A matcher for a compiled set (NULL if the set is not compiled or out of memory). It
 * keeps per-event working memory that grows to the largest event seen and is reused:
 * matching allocates nothing in the steady state. One thread at a time.
 */
struct td_matcher *td_matcher_create(const struct td_pattern_set *set);
void td_matcher_destroy(struct td_matcher *m);

/*
 * How much of an event td_matcher_match() validates. By default (0) every part of the
 * event that some pattern names is checked as strict RFC 8259 JSON (escapes, UTF-8,
 * numbers), while subtrees no pattern names are skipped at memory speed and only
 * checked for balanced brackets and terminated strings: the events triggerd matches
 * are envelopes it built itself. 1 validates the whole text (triggerctl test-pattern,
 * text from outside).
 */
void td_matcher_set_strict(struct td_matcher *m, int strict);

/*
 * Matches one event (a JSON object text). Returns the number of matching rule ids and
 * points *ids at them, ascending and unique, in memory the matcher owns until its next
 * call; or -TD_EINVAL for a text that is not a JSON object (message in err, may be
 * NULL, saying what is wrong and at which byte), or -TD_ENOMEM.
 */
int td_matcher_match(struct td_matcher *m, const char *event, size_t len, const unsigned **ids,
		     char *err, size_t errlen);

#endif
