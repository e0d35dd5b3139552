/*
 * Retry timing and identifiers: exponential backoff with full jitter (a random delay
 * between 0 and min(cap, base x 2^(attempt-1))), never shorter than a Retry-After the
 * function asked for; and random UUIDs for request ids. Thread-safe.
 */
#ifndef TRIGGERD_RETRY_H
#define TRIGGERD_RETRY_H

/* Delay in ms before attempt `attempt + 1` after `attempt` failed ones (attempt >= 1). */
long long td_backoff_ms(int attempt, long long base_ms, long long cap_ms, long long retry_after_ms);
/* The ceiling of td_backoff_ms before jitter, for tests and documentation. */
long long td_backoff_ceiling_ms(int attempt, long long base_ms, long long cap_ms);
/* Writes a random (version 4) UUID, 36 characters and a NUL, into out[37]. */
void td_uuid4(char out[37]);

#endif
