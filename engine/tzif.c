/* IANA time zones from TZif data, with no global state: see tzif.h. */
#include "tzif.h"

#include <string.h>

#include "alloc.h"

#define DAY 86400
#define MAX_OFFSET (7 * DAY) /* |UT offset| of any sane zone; RFC 8536 allows +-167 h rule times */

/* ---- the calendar (Howard Hinnant's days_from_civil / civil_from_days) ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t sf_days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;
    y -= m <= 2;
    era = floor_div(y, 400);
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void sf_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    int64_t era, doe, yoe, doy, mp;
    z += 719468;
    era = floor_div(z, 146097);
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : d[m - 1];
}

/* ---- the POSIX TZ rule of the footer ---- */

typedef struct cursor {
    const char *p, *e;
} cursor;

static int digits(cursor *c, int max_digits, int *v)
{
    int n = 0;
    *v = 0;
    while (c->p < c->e && *c->p >= '0' && *c->p <= '9' && n < max_digits) {
        *v = *v * 10 + (*c->p++ - '0');
        n++;
    }
    return n > 0 ? 0 : -1;
}

/* A zone abbreviation: <...> or 3+ letters. */
static int name(cursor *c)
{
    const char *s = c->p;
    if (c->p < c->e && *c->p == '<') {
        while (c->p < c->e && *c->p != '>') c->p++;
        if (c->p >= c->e) return -1;
        c->p++;
        return 0;
    }
    while (c->p < c->e && ((*c->p >= 'A' && *c->p <= 'Z') || (*c->p >= 'a' && *c->p <= 'z'))) c->p++;
    return c->p - s >= 3 ? 0 : -1;
}

/* [+-]hh[:mm[:ss]] as signed seconds; hours up to max_h. */
static int hms(cursor *c, int max_h, int32_t *secs)
{
    int sign = 1, h, mi = 0, s = 0;
    if (c->p < c->e && (*c->p == '+' || *c->p == '-')) sign = *c->p++ == '-' ? -1 : 1;
    if (digits(c, 3, &h) != 0 || h > max_h) return -1;
    if (c->p < c->e && *c->p == ':') {
        c->p++;
        if (digits(c, 2, &mi) != 0 || mi > 59) return -1;
        if (c->p < c->e && *c->p == ':') {
            c->p++;
            if (digits(c, 2, &s) != 0 || s > 59) return -1;
        }
    }
    *secs = sign * (h * 3600 + mi * 60 + s);
    return 0;
}

/* Jn, n or Mm.w.d, then an optional /time (default 02:00). */
static int rule_date(cursor *c, sf_tz_rule_date *r)
{
    int v, w, d;
    memset(r, 0, sizeof *r);
    if (c->p < c->e && *c->p == 'J') {
        c->p++;
        if (digits(c, 3, &v) != 0 || v < 1 || v > 365) return -1;
        r->kind = 'J';
        r->day = (int16_t)v;
    } else if (c->p < c->e && *c->p == 'M') {
        c->p++;
        if (digits(c, 2, &v) != 0 || v < 1 || v > 12) return -1;
        if (c->p >= c->e || *c->p++ != '.' || digits(c, 1, &w) != 0 || w < 1 || w > 5) return -1;
        if (c->p >= c->e || *c->p++ != '.' || digits(c, 1, &d) != 0 || d > 6) return -1;
        r->kind = 'M';
        r->month = (int8_t)v;
        r->week = (int8_t)w;
        r->day = (int16_t)d;
    } else {
        if (digits(c, 3, &v) != 0 || v > 365) return -1;
        r->kind = 'D';
        r->day = (int16_t)v;
    }
    r->time = 7200;
    if (c->p < c->e && *c->p == '/') {
        c->p++;
        if (hms(c, 167, &r->time) != 0) return -1;
    }
    return 0;
}

int sf_tz_parse_rule(sf_tz_rule *r, const char *s, size_t n)
{
    cursor c = {s, s + n};
    int32_t off;
    memset(r, 0, sizeof *r);
    if (name(&c) != 0 || hms(&c, 24, &off) != 0) return -1;
    r->std_off = -off; /* POSIX counts west of UTC */
    r->present = 1;
    if (c.p == c.e) return 0;
    if (name(&c) != 0) return -1;
    r->has_dst = 1;
    r->dst_off = r->std_off + 3600;
    if (c.p < c.e && *c.p != ',') {
        if (hms(&c, 24, &off) != 0) return -1;
        r->dst_off = -off;
    }
    /* RFC 8536 footers always give the rule when there is DST */
    if (c.p >= c.e || *c.p++ != ',' || rule_date(&c, &r->start) != 0) return -1;
    if (c.p >= c.e || *c.p++ != ',' || rule_date(&c, &r->end) != 0) return -1;
    return c.p == c.e ? 0 : -1;
}

/* Local seconds (since 1970-01-01 local) at which rule date r falls in year y. */
static int64_t rule_local(const sf_tz_rule_date *r, int64_t y)
{
    int64_t day;
    if (r->kind == 'J') {
        day = sf_days_from_civil(y, 1, 1) + r->day - 1 + (is_leap(y) && r->day >= 60);
    } else if (r->kind == 'D') {
        day = sf_days_from_civil(y, 1, 1) + r->day;
    } else {
        int64_t first = sf_days_from_civil(y, r->month, 1);
        int wd = (int)(((first + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
        int dom = 1 + (r->day - wd + 7) % 7 + (r->week - 1) * 7;
        while (dom > days_in_month(y, r->month)) dom -= 7; /* week 5: the last one */
        day = first + dom - 1;
    }
    return day * DAY + r->time;
}

static int32_t rule_offset(const sf_tz_rule *r, int64_t t)
{
    int64_t y, start, end;
    int m, d;
    if (!r->has_dst) return r->std_off;
    sf_civil_from_days(floor_div(t + r->std_off, DAY), &y, &m, &d);
    start = rule_local(&r->start, y) - r->std_off; /* the change to DST, read in standard time */
    end = rule_local(&r->end, y) - r->dst_off;     /* and back, read in DST */
    if (start < end) return t >= start && t < end ? r->dst_off : r->std_off;
    return t >= end && t < start ? r->std_off : r->dst_off; /* southern hemisphere */
}

/* ---- the TZif file ---- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* The counts of a header at d[0..44): isutcnt isstdcnt leapcnt timecnt typecnt charcnt. */
static int header(const unsigned char *d, size_t n, uint32_t c[6])
{
    int i;
    if (n < 44 || memcmp(d, "TZif", 4) != 0) return -1;
    for (i = 0; i < 6; i++) c[i] = be32(d + 20 + 4 * i);
    return 0;
}

/* Bytes of the data block after a header with counts c and time size tsz. */
static int block_size(const uint32_t c[6], size_t tsz, size_t *size)
{
    size_t a, b, s;
    if (sf_size_mul(c[3], tsz + 1, &a) != 0 || sf_size_mul(c[4], 6, &b) != 0) return -1;
    if (sf_size_add(a, b, &s) != 0 || sf_size_add(s, c[5], &s) != 0) return -1;
    if (sf_size_mul(c[2], tsz + 4, &a) != 0 || sf_size_add(s, a, &s) != 0) return -1;
    if (sf_size_add(s, c[1], &s) != 0 || sf_size_add(s, c[0], &s) != 0) return -1;
    *size = s;
    return 0;
}

int sf_tz_parse(sf_tz *tz, const unsigned char *d, size_t n)
{
    uint32_t c[6], i;
    size_t tsz = 4, size, pos = 44;
    const unsigned char *p;
    memset(tz, 0, sizeof *tz);
    if (header(d, n, c) != 0 || block_size(c, 4, &size) != 0) return -1;
    if (d[4] >= '2') { /* skip the 32-bit block: the 64-bit one follows */
        if (sf_size_add(pos, size, &pos) != 0 || pos > n) return -1;
        if (header(d + pos, n - pos, c) != 0 || block_size(c, 8, &size) != 0) return -1;
        pos += 44;
        tsz = 8;
    }
    if (size > n - pos) return -1;
    if (c[3] > SF_TZ_MAX_TRANSITIONS || c[4] < 1 || c[4] > SF_TZ_MAX_TYPES) return -1;
    tz->ntrans = c[3];
    tz->ntypes = c[4];
    p = d + pos;
    for (i = 0; i < tz->ntrans; i++, p += tsz) {
        tz->trans[i] = tsz == 8 ? be64(p) : (int64_t)(int32_t)be32(p);
        if (i > 0 && tz->trans[i] <= tz->trans[i - 1]) return -1;
    }
    for (i = 0; i < tz->ntrans; i++, p++) {
        if (*p >= tz->ntypes) return -1;
        tz->idx[i] = *p;
    }
    for (i = 0; i < tz->ntypes; i++, p += 6) {
        int32_t off = (int32_t)be32(p);
        if (off < -MAX_OFFSET || off > MAX_OFFSET) return -1;
        tz->type_off[i] = off;
    }
    pos += size;
    /* the footer: "\n<POSIX TZ rule>\n" (v2+); an empty rule means none */
    if (tsz == 8 && pos < n && d[pos] == '\n') {
        const unsigned char *e = memchr(d + pos + 1, '\n', n - pos - 1);
        if (e == NULL) return -1;
        if (e > d + pos + 1 &&
            sf_tz_parse_rule(&tz->rule, (const char *)d + pos + 1, (size_t)(e - (d + pos + 1))) != 0)
            memset(&tz->rule, 0, sizeof tz->rule); /* a rule we cannot read: the last type holds */
    }
    return 0;
}

int sf_tz_offset(const sf_tz *tz, int64_t t, int32_t *off)
{
    uint32_t lo = 0, hi;
    if (t < -SF_TZ_TIME_MAX || t > SF_TZ_TIME_MAX) return -1;
    if (tz->ntrans == 0) {
        *off = tz->rule.present ? rule_offset(&tz->rule, t) : tz->type_off[0];
        return 0;
    }
    if (t < tz->trans[0]) { /* before the first transition: type 0 (RFC 8536 3.2) */
        *off = tz->type_off[0];
        return 0;
    }
    hi = tz->ntrans; /* the last transition at or before t: trans[lo] */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (tz->trans[mid] <= t) lo = mid;
        else hi = mid;
    }
    if (lo == tz->ntrans - 1 && tz->rule.present) *off = rule_offset(&tz->rule, t);
    else *off = tz->type_off[tz->idx[lo]];
    return 0;
}

int sf_tz_from_local(const sf_tz *tz, int64_t local, int64_t *t)
{
    int32_t before, after, o;
    int64_t ta, tb;
    int va, vb;
    if (local < -SF_TZ_TIME_MAX + 2 * DAY || local > SF_TZ_TIME_MAX - 2 * DAY) return -1;
    /* the offsets a day either side: a change in between gives two candidates */
    if (sf_tz_offset(tz, local - DAY, &before) != 0 || sf_tz_offset(tz, local + DAY, &after) != 0)
        return -1;
    ta = local - before;
    tb = local - after;
    va = sf_tz_offset(tz, ta, &o) == 0 && o == before;
    vb = sf_tz_offset(tz, tb, &o) == 0 && o == after;
    if (va && vb) *t = ta > tb ? ta : tb; /* an overlap: the later instant, as mktime chose */
    else if (va) *t = ta;
    else if (vb) *t = tb;
    else *t = ta; /* a gap: read with the offset before the change */
    return 0;
}
