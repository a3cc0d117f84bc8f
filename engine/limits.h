/* sf.limits pure math, testable from C (tests/c/test_limits.c).
 * All functions are total: junk input yields an error return, never a crash. */
#ifndef SF_LIMITS_H
#define SF_LIMITS_H
#include <stddef.h>
#include <stdint.h>

/* Times (seconds or milliseconds) passed to these functions must lie within
 * +-SF_LIMITS_TIME_MAX; the Lua binding raises for anything outside. */
#define SF_LIMITS_TIME_MAX ((int64_t)1 << 52)

/* Parses the api-usage segment of a Sforce-Limit-Info header value:
 * "api-usage=25/15000" or "api-usage=25/15000, per-app-api-usage=17/250(appName=x)".
 * Surrounding whitespace and other comma-separated segments are tolerated.
 * Returns 0 and sets *used and *max (max > 0), or -1 for anything else. */
int sf_limits_parse_usage(const char *s, size_t len, int64_t *used, int64_t *max);

/* Token bucket: starts full; refills at rate tokens per second up to burst. */
struct sf_bucket {
    double rate;      /* tokens per second, > 0 */
    double burst;     /* capacity, > 0 */
    double tokens;    /* tokens available at last_ms */
    int64_t last_ms;  /* time of the last refill; INT64_MIN before the first take */
};
/* Returns 0, or -1 if rate or burst is not a positive finite number. */
int sf_bucket_init(struct sf_bucket *b, double rate, double burst);
/* Takes n tokens at now_ms: returns 0 when taken, else the milliseconds to wait
 * until n tokens will be available (nothing is taken then). Returns -1 when
 * n > burst or n < 0 (can never succeed). Time moving backwards refills nothing. */
int64_t sf_bucket_take(struct sf_bucket *b, double n, int64_t now_ms);

/* Rolling 24-hour call counter at minute resolution. Slot m % 1440 holds the
 * calls made in epoch minute m, for the 1440 minutes ending at last_min. */
#define SF_COUNTER_SLOTS 1440
struct sf_counter {
    int64_t last_min;                  /* epoch minute of the newest slot */
    int64_t slot[SF_COUNTER_SLOTS];
};
void sf_counter_init(struct sf_counter *c);
/* Records n >= 0 calls at now_s (epoch seconds). Calls older than the window
 * are ignored; counts saturate at INT64_MAX. */
void sf_counter_add(struct sf_counter *c, int64_t now_s, int64_t n);
/* Calls in the 24 h window ending at now_s (the current minute and the 1439 before). */
int64_t sf_counter_used(const struct sf_counter *c, int64_t now_s);
/* Earliest epoch second >= now_s at which used + n <= max; now_s if already.
 * Returns -1 when n > max (never). */
int64_t sf_counter_next_free(const struct sf_counter *c, int64_t now_s, int64_t n, int64_t max);
/* Compact text form: "c1:<last_min>" then ":<age>=<count>" for each non-zero
 * slot, age = last_min - minute, ascending. Returns the length that the full
 * form needs (excluding NUL); writes at most cap bytes including a NUL. */
size_t sf_counter_dump(const struct sf_counter *c, char *out, size_t cap);
/* Parses a dump; returns 0, or -1 on junk (c is then left initialised empty). */
int sf_counter_load(struct sf_counter *c, const char *s, size_t len);
#endif
