/*
 * Metering, as AWS Lambda bills: one request per invocation, duration rounded up to
 * the next 1 ms (at least 1 ms), GB-seconds = billed seconds x memory in GB. A meter
 * per function keeps the counters that /metrics and /v1/usage show, and a histogram of
 * durations for Prometheus buckets and for p50/p99.
 *
 * A meter is written and read on the engine thread only.
 */
#ifndef TRIGGERD_METERING_H
#define TRIGGERD_METERING_H

#include <stdbool.h>
#include <stddef.h>

/* Prometheus bucket bounds in ms for the duration histogram (plus +Inf). */
#define TD_METER_PROM_BUCKETS 14
extern const double td_meter_prom_bounds_ms[TD_METER_PROM_BUCKETS];

/* Fine histogram for quantiles: 16 sub-buckets per power of two of microseconds. */
#define TD_METER_FINE_SUB     16
#define TD_METER_FINE_BUCKETS (40 * TD_METER_FINE_SUB)

struct td_meter {
	unsigned long long requests, errors, throttles, cold_starts;
	unsigned long long billed_ms;
	double duration_sum_ms;
	unsigned long long prom[TD_METER_PROM_BUCKETS + 1];
	unsigned long long fine[TD_METER_FINE_BUCKETS];
	long long memory_mb;
};

/* Billed milliseconds for a duration in microseconds: rounded up, at least 1. */
long long td_billed_ms(long long duration_us);
double td_gb_seconds(unsigned long long billed_ms, long long memory_mb);

/* Counts one invocation. */
void td_meter_record(struct td_meter *m, long long duration_us, bool error, bool throttled,
		     bool cold_start);
/* Duration quantile in ms (q in 0..1) from the fine histogram; 0 when empty. */
double td_meter_quantile(const struct td_meter *m, double q);

/* Lambda's REPORT line: "REPORT RequestId: ID Duration: 12.34 ms Billed Duration: 13 ms
 * Memory Size: 128 MB Max Memory Used: 31 MB[ Init Duration: 45.67 ms]". Max Memory Used
 * is left out when max_memory_mb is 0, Init Duration when init_us is 0. */
size_t td_meter_report_line(char *out, size_t cap, const char *request_id, long long duration_us,
			    long long memory_mb, long long max_memory_mb, long long init_us);

#endif
