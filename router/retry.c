/*
 * Backoff and UUIDs (see retry.h). Randomness comes from getrandom(2) in small batches
 * kept per thread, so neither needs a lock nor a syscall per call.
 */
#include "retry.h"

#include <stdint.h>
#include <stdio.h>
#include <sys/random.h>

static _Thread_local uint64_t pool[64];
static _Thread_local int pool_left;

static uint64_t random64(void)
{
	if (pool_left == 0) {
		ssize_t n = getrandom(pool, sizeof pool, 0);
		if (n != (ssize_t)sizeof pool) /* never expected; fall back to a weak mix */
			for (int i = 0; i < 64; i++)
				pool[i] = (uint64_t)(uintptr_t)&pool[i] * 0x9E3779B97F4A7C15ULL +
					  (uint64_t)i;
		pool_left = 64;
	}
	return pool[--pool_left];
}

long long td_backoff_ceiling_ms(int attempt, long long base_ms, long long cap_ms)
{
	if (attempt < 1)
		attempt = 1;
	long long ceiling = base_ms;
	for (int i = 1; i < attempt && ceiling < cap_ms; i++)
		ceiling *= 2;
	return ceiling < cap_ms ? ceiling : cap_ms;
}

long long td_backoff_ms(int attempt, long long base_ms, long long cap_ms, long long retry_after_ms)
{
	long long ceiling = td_backoff_ceiling_ms(attempt, base_ms, cap_ms);
	long long delay = ceiling > 0 ? (long long)(random64() % (uint64_t)(ceiling + 1)) : 0;
	return delay < retry_after_ms ? retry_after_ms : delay;
}

void td_uuid4(char out[37])
{
	uint64_t hi = random64(), lo = random64();
	hi = (hi & ~0xF000ULL) | 0x4000ULL;			   /* version 4 */
	lo = (lo & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL; /* variant 10 */
	snprintf(out, 37, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(hi >> 32),
		 (unsigned)((hi >> 16) & 0xFFFF), (unsigned)(hi & 0xFFFF), (unsigned)(lo >> 48),
		 (unsigned long long)(lo & 0xFFFFFFFFFFFFULL));
}
