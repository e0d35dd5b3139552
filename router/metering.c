/*
 * Metering (see metering.h). The fine histogram is log-linear: bucket
 * (e * 16 + s) holds durations in [2^e * (16 + s) / 16, 2^e * (17 + s) / 16) us, so a
 * quantile is within about 6% of the true value whatever the scale, at a fixed 5 KB per
 * function and no allocation.
 */
#include "metering.h"

#include <math.h>
#include <stdio.h>

const double td_meter_prom_bounds_ms[TD_METER_PROM_BUCKETS] = {
    1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 60000};

long long td_billed_ms(long long duration_us)
{
	if (duration_us <= 0)
		return 1;
	long long ms = (duration_us + 999) / 1000;
	return ms < 1 ? 1 : ms;
}

double td_gb_seconds(unsigned long long billed_ms, long long memory_mb)
{
	return (double)billed_ms / 1000.0 * (double)memory_mb / 1024.0;
}

static int fine_bucket(long long us)
{
	if (us < TD_METER_FINE_SUB)
		return us < 0 ? 0 : (int)us;
	int e = 63 - __builtin_clzll((unsigned long long)us); /* 2^e <= us */
	int shift = e - 4;				      /* 16 sub-buckets */
	int sub = (int)((us >> shift) - TD_METER_FINE_SUB);
	int b = (e - 3) * TD_METER_FINE_SUB + sub;
	return b >= TD_METER_FINE_BUCKETS ? TD_METER_FINE_BUCKETS - 1 : b;
}

/* The lower bound in us of a fine bucket (inverse of fine_bucket). */
static double fine_lower(int b)
{
	if (b < TD_METER_FINE_SUB)
		return b;
	int e = b / TD_METER_FINE_SUB + 3;
	int sub = b % TD_METER_FINE_SUB;
	return ldexp((double)(TD_METER_FINE_SUB + sub), e - 4);
}

void td_meter_record(struct td_meter *m, long long duration_us, bool error, bool throttled,
		     bool cold_start)
{
	m->requests++;
	if (error)
		m->errors++;
	if (throttled)
		m->throttles++;
	if (cold_start)
		m->cold_starts++;
	m->billed_ms += (unsigned long long)td_billed_ms(duration_us);
	double ms = (double)duration_us / 1000.0;
	m->duration_sum_ms += ms;
	int i = 0;
	while (i < TD_METER_PROM_BUCKETS && ms > td_meter_prom_bounds_ms[i])
		i++;
	m->prom[i]++;
	m->fine[fine_bucket(duration_us)]++;
}

double td_meter_quantile(const struct td_meter *m, double q)
{
	unsigned long long total = 0;
	for (int b = 0; b < TD_METER_FINE_BUCKETS; b++)
		total += m->fine[b];
	if (total == 0)
		return 0;
	unsigned long long rank = (unsigned long long)ceil(q * (double)total);
	if (rank == 0)
		rank = 1;
	unsigned long long seen = 0;
	for (int b = 0; b < TD_METER_FINE_BUCKETS; b++) {
		seen += m->fine[b];
		if (seen >= rank) /* the middle of the bucket */
			return (fine_lower(b) + fine_lower(b + 1)) / 2.0 / 1000.0;
	}
	return 0;
}

size_t td_meter_report_line(char *out, size_t cap, const char *request_id, long long duration_us,
			    long long memory_mb, long long max_memory_mb, long long init_us)
{
	int n = snprintf(out, cap,
			 "REPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %lld ms\t"
			 "Memory Size: %lld MB",
			 request_id, (double)duration_us / 1000.0, td_billed_ms(duration_us),
			 memory_mb);
	if (n >= 0 && (size_t)n < cap && max_memory_mb > 0)
		n +=
		    snprintf(out + n, cap - (size_t)n, "\tMax Memory Used: %lld MB", max_memory_mb);
	if (n >= 0 && (size_t)n < cap && init_us > 0)
		n += snprintf(out + n, cap - (size_t)n, "\tInit Duration: %.2f ms",
			      (double)init_us / 1000.0);
	return n < 0 ? 0 : (size_t)n;
}
