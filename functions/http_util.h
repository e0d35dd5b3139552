/*
 * Pure helpers of the http function kind (functions/http.c), public so that the unit
 * tests and the Retry-After fuzz target can reach them. None of them allocates; all are
 * reentrant and may be called from any thread.
 */
#ifndef TRIGGERD_FUNCTIONS_HTTP_UTIL_H
#define TRIGGERD_FUNCTIONS_HTTP_UTIL_H

#include <stddef.h>

#include <triggerd/function.h>

/* Largest response body an http function may return (AWS Lambda's synchronous payload
 * limit); a bigger answer fails the invocation. */
#define TD_HTTP_MAX_RESPONSE (6LL * 1024 * 1024)

/* The delay a delta-seconds value saturates at (2^31 s, as RFC 9111 section 1.2.2 says). */
#define TD_HTTP_RETRY_AFTER_MAX_S 2147483648LL

/*
 * Parses a Retry-After header value (RFC 9110 section 10.2.3): delta-seconds ("120") or
 * an HTTP-date in any of the three forms a recipient must accept: IMF-fixdate
 * ("Sun, 06 Nov 1994 08:49:37 GMT"), the obsolete RFC 850 form ("Sunday, 06-Nov-94
 * 08:49:37 GMT", a two-digit year more than 50 years ahead of now_ms meaning the
 * previous century) and asctime ("Sun Nov  6 08:49:37 1994"). Spaces and tabs around the
 * value are ignored; names of days and months compare case-insensitively.
 *
 * value[0..len) need not be NUL-terminated. now_ms is the wall clock (ms since the Unix
 * epoch) a date is measured from. On success *delay_ms is the wait in milliseconds, >= 0
 * (a date in the past gives 0) and returns 0. Otherwise returns -TD_EINVAL with a reason
 * and the byte offset in err (may be NULL), e.g. "expected a month name at byte 8", and
 * leaves *delay_ms alone.
 */
int td_http_retry_after_parse(const char *value, size_t len, long long now_ms, long long *delay_ms,
			      char *err, size_t errlen);

/* The outcome of an HTTP answer: 2xx OK; 408, 429 and 5xx RETRY; anything else (other
 * 4xx, 1xx and 3xx: redirects are not followed) ERROR. */
enum td_result_status td_http_status_outcome(long status);

/* The outcome of a transfer that libcurl failed (a CURLcode other than CURLE_OK):
 * RETRY for timeouts and connection, TLS and transport errors; ERROR for a malformed
 * answer or a request that can never succeed (bad URL, unsupported scheme). */
enum td_result_status td_http_curl_outcome(int curl_code);

/*
 * The URL as it may be shown in logs and errors: scheme, host, port and path, without
 * user information, query or fragment (which may hold secrets). Always NUL-terminates
 * out (cap > 0); a URL longer than cap is cut.
 */
void td_http_display_url(const char *url, char *out, size_t cap);

#endif
