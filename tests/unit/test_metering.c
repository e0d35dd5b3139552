/*
 * Metering as Lambda bills (rounded up to the next 1 ms, at least 1 ms; GB-seconds),
 * the REPORT line, quantiles; backoff bounds and UUID shape.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "../../router/metering.h"
#include "../../router/retry.h"

Test(metering, billed_duration_rounds_up_to_the_next_ms)
{
	struct {
		long long us, billed;
	} cases[] = {{0, 1},	  {1, 1},      {999, 1},	{1000, 1}, {1001, 2},
		     {12340, 13}, {12000, 12}, {2999999, 3000}, {-5, 1}};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		cr_expect_eq(td_billed_ms(cases[i].us), cases[i].billed, "%lld us -> %lld ms",
			     cases[i].us, td_billed_ms(cases[i].us));
}

Test(metering, gb_seconds)
{
	cr_expect_float_eq(td_gb_seconds(1000, 1024), 1.0, 1e-12);
	cr_expect_float_eq(td_gb_seconds(13, 128), 0.013 * 0.125, 1e-12);
}

Test(metering, counters_and_quantiles)
{
	struct td_meter m = {.memory_mb = 128};
	for (int i = 1; i <= 100; i++)
		td_meter_record(&m, i * 1000LL, i % 10 == 0, i == 1, i <= 2);
	cr_expect_eq(m.requests, 100);
	cr_expect_eq(m.errors, 10);
	cr_expect_eq(m.throttles, 1);
	cr_expect_eq(m.cold_starts, 2);
	cr_expect_eq(m.billed_ms, 5050);
	double p50 = td_meter_quantile(&m, 0.5), p99 = td_meter_quantile(&m, 0.99);
	cr_expect(p50 > 50 * 0.93 && p50 < 50 * 1.07, "p50 %.2f", p50);
	cr_expect(p99 > 99 * 0.93 && p99 < 99 * 1.07, "p99 %.2f", p99);
	/* Prometheus buckets: 1 ms falls in le=1, 2 ms in le=2.5, ... 100 ms in le=100. */
	cr_expect_eq(m.prom[0], 1);
	cr_expect_eq(m.prom[1], 1);
	unsigned long long sum = 0;
	for (int i = 0; i <= TD_METER_PROM_BUCKETS; i++)
		sum += m.prom[i];
	cr_expect_eq(sum, 100);
	struct td_meter empty = {0};
	cr_expect_float_eq(td_meter_quantile(&empty, 0.5), 0.0, 1e-12);
}

Test(metering, report_line_as_lambda_prints_it)
{
	char line[256];
	td_meter_report_line(line, sizeof line, "8f5c", 12340, 128, 31, 0);
	cr_expect_str_eq(line, "REPORT RequestId: 8f5c\tDuration: 12.34 ms\tBilled Duration: 13 "
			       "ms\tMemory Size: 128 MB\tMax Memory Used: 31 MB");
	td_meter_report_line(line, sizeof line, "x", 500, 256, 0, 45670);
	cr_expect_str_eq(line, "REPORT RequestId: x\tDuration: 0.50 ms\tBilled Duration: 1 ms\t"
			       "Memory Size: 256 MB\tInit Duration: 45.67 ms");
}

Test(retry, backoff_is_full_jitter_below_the_capped_ceiling)
{
	cr_expect_eq(td_backoff_ceiling_ms(1, 1000, 300000), 1000);
	cr_expect_eq(td_backoff_ceiling_ms(2, 1000, 300000), 2000);
	cr_expect_eq(td_backoff_ceiling_ms(5, 1000, 300000), 16000);
	cr_expect_eq(td_backoff_ceiling_ms(30, 1000, 300000), 300000);
	long long lo = 1 << 30, hi = 0;
	for (int i = 0; i < 2000; i++) {
		long long d = td_backoff_ms(3, 1000, 300000, 0);
		cr_assert(d >= 0 && d <= 4000, "delay %lld", d);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
	}
	cr_expect(lo < 1000 && hi > 3000, "jitter spreads: %lld..%lld", lo, hi);
	for (int i = 0; i < 100; i++)
		cr_expect_geq(td_backoff_ms(1, 1000, 300000, 7000), 7000, "Retry-After is a floor");
}

Test(retry, uuid4_shape_and_uniqueness)
{
	char a[37], b[37];
	td_uuid4(a);
	td_uuid4(b);
	cr_expect_eq(strlen(a), 36);
	cr_expect_eq(a[8], '-');
	cr_expect_eq(a[14], '4');
	cr_expect(strchr("89ab", a[19]) != NULL);
	cr_expect_str_neq(a, b);
}
