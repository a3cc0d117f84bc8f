/* Time zones read from TZif files with no global state (engine/tzif.c),
 * checked against the C library's own conversion of the same files (this
 * test alone sets TZ, in its own process). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tzif.h"
#include "tap.h"

static sf_tz TZ;
static unsigned char BUF[1 << 18];

static int load(const char *zone)
{
    char path[256];
    FILE *f;
    size_t n;
    snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", zone);
    f = fopen(path, "rb");
    if (f == NULL) return -1;
    n = fread(BUF, 1, sizeof BUF, f);
    fclose(f);
    return sf_tz_parse(&TZ, BUF, n);
}

/* glibc's UT offset at t in zone (TZ set for this process only). */
static long libc_offset(const char *zone, time_t t)
{
    struct tm tm;
    setenv("TZ", zone, 1);
    tzset();
    localtime_r(&t, &tm);
    return tm.tm_gmtoff;
}

/* Every 6 hours (plus an odd minute) from 1901 to 2100, and the instants
 * around each transition: sf_tz_offset agrees with localtime_r. */
static void agrees(const char *zone)
{
    char name[128];
    int64_t t;
    int32_t off;
    uint32_t i;
    long bad = 0, checked = 0;
    if (load(zone) != 0) {
        snprintf(name, sizeof name, "%s: the TZif file parses", zone);
        TAP_CHECK(0, name);
        return;
    }
    for (t = -2177452800LL; t < 4102444800LL; t += 6 * 3600 + 60) {
        if (sf_tz_offset(&TZ, t, &off) != 0 || off != libc_offset(zone, (time_t)t)) bad++;
        checked++;
    }
    for (i = 0; i < TZ.ntrans; i++) {
        int64_t d;
        for (d = -1; d <= 1; d++) {
            t = TZ.trans[i] + d;
            if (t < -2177452800LL) continue;
            if (sf_tz_offset(&TZ, t, &off) != 0 || off != libc_offset(zone, (time_t)t)) bad++;
            checked++;
        }
    }
    snprintf(name, sizeof name, "%s: UT offsets 1901-2100 and at every transition agree with localtime_r (%ld checked)",
             zone, checked);
    TAP_CHECK(bad == 0, name);
}

static int64_t local_of(int64_t y, int mo, int d, int h, int mi)
{
    return sf_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60;
}

int main(void)
{
    static const char *zones[] = {
        "Europe/Amsterdam", "America/New_York", "Australia/Sydney", "Asia/Kolkata",
        "America/Sao_Paulo", "Pacific/Chatham", "Africa/Casablanca", "Asia/Tokyo", "UTC",
    };
    size_t i;
    int64_t t, y;
    int32_t off;
    int m, d;
    sf_tz_rule r;

    /* the calendar */
    TAP_CHECK(sf_days_from_civil(1970, 1, 1) == 0 && sf_days_from_civil(2000, 3, 1) == 11017,
              "days_from_civil: the epoch and 2000-03-01");
    sf_civil_from_days(-719468, &y, &m, &d);
    TAP_CHECK(y == 0 && m == 3 && d == 1, "civil_from_days: day -719468 is 0000-03-01");
    {
        int ok = 1;
        int64_t z;
        for (z = -1000000; z <= 1000000 && ok; z += 97) {
            sf_civil_from_days(z, &y, &m, &d);
            ok = sf_days_from_civil(y, m, d) == z;
        }
        TAP_CHECK(ok, "days_from_civil inverts civil_from_days over 5,000 years");
    }

    /* the footer rule */
    TAP_CHECK(sf_tz_parse_rule(&r, "CET-1CEST,M3.5.0,M10.5.0/3", 26) == 0 && r.std_off == 3600 &&
              r.dst_off == 7200 && r.start.kind == 'M' && r.end.time == 3 * 3600,
              "rule: CET-1CEST,M3.5.0,M10.5.0/3");
    TAP_CHECK(sf_tz_parse_rule(&r, "<+0530>-5:30", 12) == 0 && r.std_off == 19800 && !r.has_dst,
              "rule: a quoted name and a half-hour offset");
    TAP_CHECK(sf_tz_parse_rule(&r, "EST5EDT,0/0,J365/25", 19) == 0 && r.start.kind == 'D' &&
              r.end.kind == 'J' && r.end.time == 25 * 3600, "rule: all-year DST (RFC 8536 example)");
    TAP_CHECK(sf_tz_parse_rule(&r, "CET-1CEST", 9) == -1, "rule: DST without its rule is refused");
    TAP_CHECK(sf_tz_parse_rule(&r, "X-1", 3) == -1, "rule: a name shorter than 3 letters is refused");
    TAP_CHECK(sf_tz_parse(&TZ, (const unsigned char *)"TZif2", 5) == -1, "parse: a truncated file is refused");

    /* the rule alone decides after the last transition (a slim file) */
    memset(&TZ, 0, sizeof TZ);
    TZ.ntypes = 1;
    sf_tz_parse_rule(&TZ.rule, "CET-1CEST,M3.5.0,M10.5.0/3", 26);
    t = sf_days_from_civil(2100, 3, 28) * 86400 + 3600; /* last Sunday of March 2100, 01:00 UTC */
    TAP_CHECK(sf_tz_offset(&TZ, t - 1, &off) == 0 && off == 3600 && sf_tz_offset(&TZ, t, &off) == 0 &&
              off == 7200, "rule: summer time starts at 01:00 UTC on the last Sunday of March 2100");

    for (i = 0; i < sizeof zones / sizeof zones[0]; i++) agrees(zones[i]);

    /* local -> UTC */
    load("Europe/Amsterdam");
    TAP_CHECK(sf_tz_from_local(&TZ, local_of(2024, 1, 15, 9, 0), &t) == 0 &&
              t == local_of(2024, 1, 15, 8, 0), "from_local: 09:00 Amsterdam in winter is 08:00 UTC");
    TAP_CHECK(sf_tz_from_local(&TZ, local_of(2024, 3, 31, 2, 30), &t) == 0 &&
              t == local_of(2024, 3, 31, 1, 30), "from_local: 02:30 in the spring gap is 03:30 summer time");
    TAP_CHECK(sf_tz_from_local(&TZ, local_of(2024, 10, 27, 2, 30), &t) == 0 &&
              t == local_of(2024, 10, 27, 1, 30), "from_local: 02:30 twice in autumn is the later one");
    TAP_CHECK(sf_tz_from_local(&TZ, local_of(2090, 7, 1, 12, 0), &t) == 0 &&
              t == local_of(2090, 7, 1, 10, 0), "from_local: past the last transition the footer rule holds");
    TAP_CHECK(sf_tz_from_local(&TZ, SF_TZ_TIME_MAX, &t) == -1 && sf_tz_offset(&TZ, -SF_TZ_TIME_MAX - 1, &off) == -1,
              "out of range times fail instead of overflowing");
    unsetenv("TZ");
    return tap_done();
}
