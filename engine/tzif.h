/* IANA time zones without the C library's global state (no TZ, no tzset):
 * a TZif file (RFC 8536, as /usr/share/zoneinfo holds them) read into a
 * value, then UTC <-> local conversions on that value alone. No Lua API;
 * nothing here raises. Used by sf.clock (engine/clock.c).
 *
 * Times are int64 seconds, within +-SF_TZ_TIME_MAX (years -9999..9999 and a
 * margin): outside, the functions fail rather than overflow. */
#ifndef SF_TZIF_H
#define SF_TZIF_H

#include <stddef.h>
#include <stdint.h>

#define SF_TZ_TIME_MAX ((int64_t)400000000000) /* about year 14,600: every civil date fits */
#define SF_TZ_MAX_TYPES 256
#define SF_TZ_MAX_TRANSITIONS 4096

/* A POSIX TZ rule (the TZif footer): standard time all year, or DST between
 * two yearly rules. */
typedef struct sf_tz_rule_date {
    char kind;       /* 'J' Julian 1..365 (no Feb 29), 'D' day 0..365, 'M' month.week.weekday */
    int16_t day;     /* J/D: the day; M: the weekday 0 (Sunday)..6 */
    int8_t month;    /* M: 1..12 */
    int8_t week;     /* M: 1..5 (5: the last) */
    int32_t time;    /* seconds after local midnight the change happens (may be < 0 or > 24 h) */
} sf_tz_rule_date;

typedef struct sf_tz_rule {
    int present;     /* the file had a footer rule */
    int has_dst;
    int32_t std_off; /* seconds east of UTC */
    int32_t dst_off;
    sf_tz_rule_date start, end; /* DST from start (in standard time) to end (in DST) */
} sf_tz_rule;

typedef struct sf_tz {
    int64_t trans[SF_TZ_MAX_TRANSITIONS]; /* transition times, ascending */
    uint8_t idx[SF_TZ_MAX_TRANSITIONS];   /* the type each transition starts */
    int32_t type_off[SF_TZ_MAX_TYPES];    /* seconds east of UTC of each type */
    uint32_t ntrans, ntypes;
    sf_tz_rule rule;                      /* after the last transition */
} sf_tz;

/* Reads TZif data (v1, or the 64-bit v2+ block and its footer). Returns 0,
 * or -1 when it is not a well-formed TZif file. */
int sf_tz_parse(sf_tz *tz, const unsigned char *data, size_t n);
/* Parses a POSIX TZ rule ("CET-1CEST,M3.5.0,M10.5.0/3"): 0 or -1. */
int sf_tz_parse_rule(sf_tz_rule *r, const char *s, size_t n);

/* Seconds east of UTC at UTC time t: 0, or -1 when t is out of range. */
int sf_tz_offset(const sf_tz *tz, int64_t t, int32_t *off);
/* The UTC time of local wall time `local` (seconds of the proleptic
 * Gregorian calendar since 1970-01-01 00:00 local): in a gap (clocks went
 * forward) the time is read with the offset before the change, so it lands
 * as far after the change as it was into the gap; in an overlap (clocks went
 * back) the later instant (glibc's mktime chose so for the engine before).
 * 0 or -1 (out of range). */
int sf_tz_from_local(const sf_tz *tz, int64_t local, int64_t *t);

/* Calendar helpers (proleptic Gregorian, no range limits beyond int64). */
int64_t sf_days_from_civil(int64_t y, int m, int d); /* m 1..12, d 1..31 */
void sf_civil_from_days(int64_t z, int64_t *y, int *m, int *d);

#endif
