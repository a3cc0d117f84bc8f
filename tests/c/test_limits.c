/* sf.limits math, checked without Lua: Sforce-Limit-Info parsing (valid forms
 * and a table of junk), token-bucket arithmetic, and the rolling 24-hour
 * counter (minute slots, expiry after 24 h, next_free, dump/load round trip). */
#include "limits.h"
#include "tap.h"

#include <stdio.h>
#include <string.h>

static int parses(const char *s, int64_t want_used, int64_t want_max)
{
    int64_t used = -1, max = -1;
    return sf_limits_parse_usage(s, strlen(s), &used, &max) == 0 && used == want_used
        && max == want_max;
}

static void test_parse_usage(void)
{
    static const char *junk[] = {
        "",                              /* empty */
        "   ",                           /* blank */
        "api-usage=",                    /* no numbers */
        "api-usage=25",                  /* no max */
        "api-usage=25/",                 /* empty max */
        "api-usage=/15000",              /* empty used */
        "api-usage=-1/15000",            /* negative used */
        "api-usage=25/-15000",           /* negative max */
        "api-usage=+25/15000",           /* sign */
        "api-usage=25/0",                /* zero max */
        "api-usage=2x/15000",            /* non-digit */
        "api-usage=25/15000x",           /* trailing junk */
        "api-usage=25 / 15000",          /* inner spaces */
        "api-usage=99999999999999999999/15000", /* overflow */
        "api-usage=25/9223372036854775808",     /* overflow */
        "api-usage=1.5/15000",           /* decimal */
        "API-USAGE=25/15000",            /* wrong case */
        "per-app-api-usage=17/250(appName=x)", /* only the per-app segment */
        "api-usage:25/15000",            /* wrong separator */
        "api-usage==25/15000",           /* doubled '=' */
        "xapi-usage=25/15000",           /* prefix */
        "api-usage=25/15000/3",          /* extra part */
        ",,,",                           /* only commas */
        "api-usage=0x19/15000",          /* hex */
    };
    size_t i;
    int all = 1;
    int64_t used = 7, max = 7;
    TAP_CHECK(parses("api-usage=25/15000", 25, 15000), "parse_usage reads api-usage=25/15000");
    TAP_CHECK(parses("  api-usage=25/15000 \t", 25, 15000), "parse_usage tolerates surrounding whitespace");
    TAP_CHECK(parses("api-usage=25/15000, per-app-api-usage=17/250(appName=sample-app)", 25, 15000),
              "parse_usage finds api-usage before a per-app segment");
    TAP_CHECK(parses("per-app-api-usage=17/250(appName=sample-app), api-usage=30/15000", 30, 15000),
              "parse_usage finds api-usage after a per-app segment");
    TAP_CHECK(parses("api-usage=0/15000", 0, 15000) && parses("api-usage=16000/15000", 16000, 15000),
              "parse_usage accepts zero use and use above the limit");
    TAP_CHECK(parses("api-usage=123456789012345678/999999999999999999", 123456789012345678LL,
                     999999999999999999LL),
              "parse_usage accepts 18-digit numbers");
    for (i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        used = max = 7;
        if (sf_limits_parse_usage(junk[i], strlen(junk[i]), &used, &max) != -1) {
            printf("# accepted junk: \"%s\"\n", junk[i]);
            all = 0;
        }
    }
    TAP_CHECK(all, "parse_usage rejects 24 malformed headers (empty, negative, overflow, "
                   "missing parts, non-digits, wrong key)");
    TAP_CHECK(sf_limits_parse_usage(NULL, 0, &used, &max) == -1, "parse_usage rejects NULL");
    TAP_CHECK(sf_limits_parse_usage("api-usage=25/15000", 13, &used, &max) == -1,
              "parse_usage respects the length (no reading past it)");
    TAP_CHECK(sf_limits_parse_usage("api-usage=2\0/15000", 18, &used, &max) == -1,
              "parse_usage rejects embedded NUL bytes");
}

static void test_bucket(void)
{
    struct sf_bucket b;
    int ok;
    TAP_CHECK(sf_bucket_init(&b, 0, 5) == -1 && sf_bucket_init(&b, 10, 0) == -1
              && sf_bucket_init(&b, -1, 5) == -1 && sf_bucket_init(&b, 1.0 / 0.0, 5) == -1,
              "bucket refuses non-positive or infinite rate and burst");
    sf_bucket_init(&b, 10, 5); /* 10 tokens/s = one per 100 ms, burst 5 */
    ok = 1;
    for (int i = 0; i < 5; i++) ok &= sf_bucket_take(&b, 1, 1000) == 0;
    TAP_CHECK(ok, "bucket starts full: burst takes succeed at once");
    TAP_CHECK(sf_bucket_take(&b, 1, 1000) == 100, "an empty bucket at 10/s asks to wait 100 ms for one token");
    TAP_CHECK(sf_bucket_take(&b, 3, 1000) == 300, "three tokens at 10/s need 300 ms");
    TAP_CHECK(sf_bucket_take(&b, 1, 1050) == 50, "half refilled after 50 ms: wait the other 50 ms");
    TAP_CHECK(sf_bucket_take(&b, 1, 1100) == 0, "after the advised wait the take succeeds");
    TAP_CHECK(sf_bucket_take(&b, 1, 900) == 100, "time going backwards refills nothing");
    TAP_CHECK(sf_bucket_take(&b, 5, 1000000) == 0 && sf_bucket_take(&b, 1, 1000000) == 100,
              "a long idle period refills only up to the burst");
    TAP_CHECK(sf_bucket_take(&b, 6, 2000000) == -1, "taking more than the burst can never succeed");
    TAP_CHECK(sf_bucket_take(&b, 0, 2000000) == 0, "taking zero tokens always succeeds");
    sf_bucket_init(&b, 0.5, 1); /* one token every 2 s */
    TAP_CHECK(sf_bucket_take(&b, 1, 0) == 0 && sf_bucket_take(&b, 1, 0) == 2000
              && sf_bucket_take(&b, 1, 1999) == 1 && sf_bucket_take(&b, 1, 2000) == 0,
              "fractional rates: 0.5/s waits 2000 ms, rounding the wait up");
    sf_bucket_init(&b, 3, 3);
    ok = 1;
    {
        /* 1000 takes spaced by the advised waits take about 1000/3 s in total. */
        int64_t t = 0;
        int taken = 0, steps = 0;
        while (taken < 1000 && steps < 10000) {
            int64_t w = sf_bucket_take(&b, 1, t);
            if (w == 0) taken++;
            else t += w;
            steps++;
        }
        ok = taken == 1000 && t >= 332000 && t <= 333400;
        printf("# 1000 takes at 3/s burst 3 finished at %lld ms\n", (long long)t);
    }
    TAP_CHECK(ok, "following the advised waits sustains the configured rate (no drift)");
}

static void test_counter(void)
{
    static struct sf_counter c, d, e;
    const int64_t t0 = 1700000000 - 1700000000 % 60; /* a minute boundary */
    char dump[65536], dump2[65536];
    size_t n;
    int ok;
    static const char *junk[] = {
        "", "c1", "c1:", "c2:100", "x1:100", "c1:abc", "c1:100:", "c1:100:0", "c1:100:0=",
        "c1:100:0=0", "c1:100:1440=5", "c1:100:5=1:5=1", "c1:100:5=1:3=1", "c1:100:-1=5",
        "c1:100:0=5x", "c1:100 :0=5", "c1:99999999999999999999", "c1:100:0=99999999999999999999",
    };
    size_t i;

    sf_counter_init(&c);
    TAP_CHECK(sf_counter_used(&c, t0) == 0, "a new counter has no calls");
    sf_counter_add(&c, t0, 10);
    sf_counter_add(&c, t0 + 59, 5);
    TAP_CHECK(sf_counter_used(&c, t0 + 59) == 15, "calls in the same minute add up");
    sf_counter_add(&c, t0 + 60, 7);
    TAP_CHECK(sf_counter_used(&c, t0 + 60) == 22, "calls in the next minute add to the window");
    TAP_CHECK(sf_counter_used(&c, t0 + 86400 - 1) == 22, "calls still count 1 s before 24 h have passed");
    TAP_CHECK(sf_counter_used(&c, t0 + 86400) == 7, "the first minute's calls expire after 24 h");
    TAP_CHECK(sf_counter_used(&c, t0 + 86400 + 60) == 0, "the second minute's calls expire a minute later");
    TAP_CHECK(sf_counter_used(&c, t0 + 10 * 86400) == 0, "nothing is counted days later");
    sf_counter_add(&c, t0 + 2 * 86400, 3);
    TAP_CHECK(sf_counter_used(&c, t0 + 2 * 86400) == 3, "adding after a long gap clears the old window");
    sf_counter_add(&c, t0, 100);
    TAP_CHECK(sf_counter_used(&c, t0 + 2 * 86400) == 3, "calls added with an expired time are ignored");
    sf_counter_add(&c, t0 + 2 * 86400 - 120, 4);
    TAP_CHECK(sf_counter_used(&c, t0 + 2 * 86400) == 7,
              "a late add for a minute still inside the window counts");

    /* next_free */
    sf_counter_init(&c);
    sf_counter_add(&c, t0, 50);        /* minute 0 */
    sf_counter_add(&c, t0 + 600, 30);  /* minute 10 */
    sf_counter_add(&c, t0 + 1200, 20); /* minute 20 */
    TAP_CHECK(sf_counter_next_free(&c, t0 + 1200, 0, 100) == t0 + 1200,
              "next_free is now when the calls already fit");
    TAP_CHECK(sf_counter_next_free(&c, t0 + 1200, 1, 100) == t0 + 86400,
              "next_free waits for the oldest minute to expire");
    TAP_CHECK(sf_counter_next_free(&c, t0 + 1200, 60, 100) == t0 + 600 + 86400,
              "next_free waits for as many minutes as needed");
    TAP_CHECK(sf_counter_next_free(&c, t0 + 1200, 100, 100) == t0 + 1200 + 86400,
              "next_free for the whole budget waits for the newest call to expire");
    TAP_CHECK(sf_counter_next_free(&c, t0 + 1200, 101, 100) == -1, "next_free says never when n > max");
    TAP_CHECK(sf_counter_next_free(&c, t0 + 86400 + 30, 1, 100) == t0 + 86400 + 30,
              "next_free is now once enough calls have expired");

    /* dump / load */
    sf_counter_init(&c);
    for (i = 0; i < 3000; i += 7) sf_counter_add(&c, t0 + (int64_t)i * 37, (int64_t)i + 1);
    n = sf_counter_dump(&c, dump, sizeof dump);
    TAP_CHECK(n < sizeof dump && strlen(dump) == n && strncmp(dump, "c1:", 3) == 0,
              "dump writes a compact c1: string");
    printf("# dump is %zu bytes\n", n);
    TAP_CHECK(sf_counter_load(&d, dump, n) == 0, "load accepts a dump");
    sf_counter_dump(&d, dump2, sizeof dump2);
    TAP_CHECK(strcmp(dump, dump2) == 0, "dump -> load -> dump round-trips exactly");
    ok = 1;
    for (i = 0; i < 2000; i += 13) {
        int64_t t = t0 + (int64_t)i * 60;
        ok &= sf_counter_used(&c, t) == sf_counter_used(&d, t);
        ok &= sf_counter_next_free(&c, t, 5, 1000) == sf_counter_next_free(&d, t, 5, 1000);
    }
    TAP_CHECK(ok, "a restored counter answers used and next_free like the original");
    sf_counter_init(&e);
    n = sf_counter_dump(&e, dump, sizeof dump);
    TAP_CHECK(strcmp(dump, "c1:0") == 0 && sf_counter_load(&d, dump, n) == 0
              && sf_counter_used(&d, t0) == 0,
              "an empty counter dumps as c1:0 and restores empty");
    {
        char small[8];
        size_t need = sf_counter_dump(&c, small, sizeof small);
        TAP_CHECK(need > sizeof small && strlen(small) == sizeof small - 1,
                  "dump into a small buffer truncates safely and reports the size needed");
    }
    ok = 1;
    for (i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        if (sf_counter_load(&d, junk[i], strlen(junk[i])) != -1) {
            printf("# load accepted junk: \"%s\"\n", junk[i]);
            ok = 0;
        }
    }
    TAP_CHECK(ok && sf_counter_used(&d, t0) == 0, "load rejects 18 junk strings and leaves the counter empty");
    sf_counter_init(&c);
    sf_counter_add(&c, t0, INT64_MAX);
    sf_counter_add(&c, t0, 5);
    sf_counter_add(&c, t0 + 60, INT64_MAX);
    TAP_CHECK(sf_counter_used(&c, t0 + 60) == INT64_MAX, "counts saturate instead of overflowing");
}

int main(void)
{
    test_parse_usage();
    test_bucket();
    test_counter();
    return tap_done();
}
