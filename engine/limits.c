/* sf.limits: Sforce-Limit-Info parser, token bucket, rolling 24 h call counter.
 *
 *   limits.parse_usage(header)   --> used, max   (nil for junk or nil)
 *   limits.bucket(rate_per_s, burst) --> bucket;  bucket:take(n, now_ms) --> 0 or ms to wait
 *   limits.counter(saved?)       --> counter, or nil, msg, "STATE" for a junk saved string
 *     counter:add(now_s, n)  counter:used(now_s)  counter:next_free(now_s, n, max)
 *     counter:dump() --> string accepted by limits.counter
 *
 * The math lives in plain C functions (engine/limits.h) so
 * tests/c/test_limits.c can check it without Lua. Time is always passed in: nothing here reads a clock. */
#include "limits.h" /* engine/limits.h: -iquote keeps <limits.h> the system's */
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>

int luaopen_sf_limits(lua_State *L);

/* ---- pure functions ---------------------------------------------------- */

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Parses an unsigned decimal in s[*i..end) of at most 18 digits (no sign). */
static int parse_u63(const char *s, size_t *i, size_t end, int64_t *out)
{
    int64_t v = 0;
    size_t start = *i;
    while (*i < end && s[*i] >= '0' && s[*i] <= '9') {
        if (*i - start >= 18) return -1; /* 19+ digits: may overflow int64 */
        v = v * 10 + (s[*i] - '0');
        (*i)++;
    }
    if (*i == start) return -1;
    *out = v;
    return 0;
}

int sf_limits_parse_usage(const char *s, size_t len, int64_t *used, int64_t *max)
{
    static const char key[] = "api-usage=";
    const size_t keylen = sizeof key - 1;
    size_t pos = 0;
    if (s == NULL) return -1;
    while (pos <= len) {
        /* One segment: [pos, end) up to the next comma, trimmed. */
        size_t end = pos, a, b, i;
        int64_t u, m;
        while (end < len && s[end] != ',') end++;
        a = pos;
        b = end;
        while (a < b && is_space(s[a])) a++;
        while (b > a && is_space(s[b - 1])) b--;
        if (b - a > keylen && memcmp(s + a, key, keylen) == 0) {
            i = a + keylen;
            if (parse_u63(s, &i, b, &u) != 0) return -1;
            if (i >= b || s[i] != '/') return -1;
            i++;
            if (parse_u63(s, &i, b, &m) != 0) return -1;
            if (i != b || m <= 0) return -1;
            *used = u;
            *max = m;
            return 0;
        }
        pos = end + 1;
    }
    return -1;
}

int sf_bucket_init(struct sf_bucket *b, double rate, double burst)
{
    if (!(rate > 0) || !(burst > 0) || !isfinite(rate) || !isfinite(burst)) return -1;
    b->rate = rate;
    b->burst = burst;
    b->tokens = burst;
    b->last_ms = INT64_MIN;
    return 0;
}

int64_t sf_bucket_take(struct sf_bucket *b, double n, int64_t now_ms)
{
    const double eps = 1e-9;
    double need;
    if (!(n >= 0) || n > b->burst) return -1;
    if (b->last_ms == INT64_MIN) {
        b->last_ms = now_ms;
    } else if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * b->rate / 1000.0;
        if (b->tokens > b->burst) b->tokens = b->burst;
        b->last_ms = now_ms;
    }
    if (b->tokens + eps >= n) {
        b->tokens -= n;
        if (b->tokens < 0) b->tokens = 0;
        return 0;
    }
    need = (n - b->tokens) * 1000.0 / b->rate;
    need = ceil(need - eps);
    return need < 1 ? 1 : (int64_t)need;
}

/* Floor division for negative epoch values too. */
static int64_t minute_of(int64_t s)
{
    return s >= 0 ? s / 60 : -((-s + 59) / 60);
}

static size_t slot_of(int64_t minute)
{
    int64_t r = minute % SF_COUNTER_SLOTS;
    return (size_t)(r < 0 ? r + SF_COUNTER_SLOTS : r);
}

void sf_counter_init(struct sf_counter *c)
{
    memset(c, 0, sizeof *c);
}

void sf_counter_add(struct sf_counter *c, int64_t now_s, int64_t n)
{
    int64_t m = minute_of(now_s), k;
    size_t s;
    if (n <= 0) return;
    if (m > c->last_min) {
        /* Advance: clear the slots of the minutes that leave the window. */
        if (m - c->last_min >= SF_COUNTER_SLOTS) {
            memset(c->slot, 0, sizeof c->slot);
        } else {
            for (k = c->last_min + 1; k <= m; k++) c->slot[slot_of(k)] = 0;
        }
        c->last_min = m;
    } else if (c->last_min - m >= SF_COUNTER_SLOTS) {
        return; /* older than the window: already expired */
    }
    s = slot_of(m);
    c->slot[s] = c->slot[s] > INT64_MAX - n ? INT64_MAX : c->slot[s] + n;
}

/* Sum of the slots for minutes [from, to], clipped to the stored window. */
static int64_t sum_range(const struct sf_counter *c, int64_t from, int64_t to)
{
    int64_t lo = c->last_min - (SF_COUNTER_SLOTS - 1), k, total = 0;
    if (from < lo) from = lo;
    if (to > c->last_min) to = c->last_min;
    for (k = from; k <= to; k++) {
        int64_t v = c->slot[slot_of(k)];
        total = total > INT64_MAX - v ? INT64_MAX : total + v;
    }
    return total;
}

int64_t sf_counter_used(const struct sf_counter *c, int64_t now_s)
{
    int64_t m = minute_of(now_s);
    return sum_range(c, m - (SF_COUNTER_SLOTS - 1), m);
}

int64_t sf_counter_next_free(const struct sf_counter *c, int64_t now_s, int64_t n, int64_t max)
{
    int64_t m = minute_of(now_s), used, k, lo;
    if (n < 0) n = 0;
    if (n > max) return -1;
    used = sf_counter_used(c, now_s);
    if (used <= max - n) return now_s;
    /* The slot of minute k leaves the window at minute k + 1440: walk the
     * window from its oldest minute until enough calls have expired. */
    lo = m - (SF_COUNTER_SLOTS - 1);
    if (lo < c->last_min - (SF_COUNTER_SLOTS - 1)) lo = c->last_min - (SF_COUNTER_SLOTS - 1);
    for (k = lo; k <= m && k <= c->last_min; k++) {
        used -= c->slot[slot_of(k)];
        if (used <= max - n) return (k + SF_COUNTER_SLOTS) * 60;
    }
    return (m + SF_COUNTER_SLOTS) * 60; /* unreachable: the whole window expired */
}

/* Appends n bytes to out (capacity cap, NUL kept in room), counting all of them. */
static void put(char *out, size_t cap, size_t *len, const char *s, size_t n)
{
    if (cap > 0 && *len + 1 < cap) {
        size_t room = cap - 1 - *len;
        memcpy(out + *len, s, n < room ? n : room);
    }
    *len += n;
}

size_t sf_counter_dump(const struct sf_counter *c, char *out, size_t cap)
{
    size_t len = 0;
    int64_t age;
    int w;
    char tmp[64];
    w = snprintf(tmp, sizeof tmp, "c1:%lld", (long long)c->last_min);
    if (w > 0) put(out, cap, &len, tmp, (size_t)w);
    for (age = 0; age < SF_COUNTER_SLOTS; age++) {
        int64_t v = c->slot[slot_of(c->last_min - age)];
        if (v == 0) continue;
        w = snprintf(tmp, sizeof tmp, ":%lld=%lld", (long long)age, (long long)v);
        if (w > 0) put(out, cap, &len, tmp, (size_t)w);
    }
    if (cap > 0) out[len < cap ? len : cap - 1] = '\0';
    return len;
}

/* Parses an optionally negative decimal of at most 18 digits. */
static int parse_i63(const char *s, size_t *i, size_t end, int64_t *out)
{
    int neg = 0;
    if (*i < end && s[*i] == '-') {
        neg = 1;
        (*i)++;
    }
    if (parse_u63(s, i, end, out) != 0) return -1;
    if (neg) *out = -*out;
    return 0;
}

int sf_counter_load(struct sf_counter *c, const char *s, size_t len)
{
    size_t i = 3;
    int64_t last, prev_age = -1;
    sf_counter_init(c);
    if (s == NULL || len < 4 || memcmp(s, "c1:", 3) != 0) return -1;
    if (parse_i63(s, &i, len, &last) != 0) goto junk;
    if (last > SF_LIMITS_TIME_MAX / 60 || last < -SF_LIMITS_TIME_MAX / 60) goto junk;
    c->last_min = last;
    while (i < len) {
        int64_t age, v;
        if (s[i++] != ':') goto junk;
        if (parse_u63(s, &i, len, &age) != 0) goto junk;
        if (i >= len || s[i++] != '=') goto junk;
        if (parse_u63(s, &i, len, &v) != 0) goto junk;
        /* Ascending ages inside the window, no zero counts: one form per state. */
        if (age <= prev_age || age >= SF_COUNTER_SLOTS || v == 0) goto junk;
        c->slot[slot_of(last - age)] = v;
        prev_age = age;
    }
    return 0;
junk:
    sf_counter_init(c);
    return -1;
}

/* ---- Lua binding ------------------------------------------------------- */

#define BUCKET "sf.limits.bucket"
#define COUNTER "sf.limits.counter"

static int l_parse_usage(lua_State *L)
{
    size_t len;
    const char *s;
    int64_t used, max;
    if (lua_isnoneornil(L, 1)) {
        lua_pushnil(L);
        return 1;
    }
    s = luaL_checklstring(L, 1, &len);
    if (sf_limits_parse_usage(s, len, &used, &max) != 0) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushinteger(L, (lua_Integer)used);
    lua_pushinteger(L, (lua_Integer)max);
    return 2;
}

static lua_Integer check_int(lua_State *L, int arg, const char *api, const char *name)
{
    int isint;
    lua_Integer v = lua_tointegerx(L, arg, &isint);
    if (!isint || lua_type(L, arg) != LUA_TNUMBER) {
        const char *msg = lua_pushfstring(L, "%s: %s must be an integer", api, name);
        luaL_argerror(L, arg, msg);
    }
    return v;
}

/* Times must stay within +-SF_LIMITS_TIME_MAX so the math cannot overflow. */
static lua_Integer check_time(lua_State *L, int arg, const char *api, const char *name)
{
    lua_Integer v = check_int(L, arg, api, name);
    if (v > SF_LIMITS_TIME_MAX || v < -SF_LIMITS_TIME_MAX) {
        const char *msg = lua_pushfstring(L, "%s: %s is out of range", api, name);
        luaL_argerror(L, arg, msg);
    }
    return v;
}

static lua_Number check_num(lua_State *L, int arg, const char *api, const char *name)
{
    int isnum;
    lua_Number v = lua_tonumberx(L, arg, &isnum);
    if (!isnum || lua_type(L, arg) != LUA_TNUMBER) {
        const char *msg = lua_pushfstring(L, "%s: %s must be a number", api, name);
        luaL_argerror(L, arg, msg);
    }
    return v;
}

static int l_bucket(lua_State *L)
{
    lua_Number rate = check_num(L, 1, "sf.limits.bucket", "rate_per_s");
    lua_Number burst = check_num(L, 2, "sf.limits.bucket", "burst");
    struct sf_bucket *b = lua_newuserdatauv(L, sizeof *b, 0);
    if (sf_bucket_init(b, rate, burst) != 0)
        return luaL_error(L, "sf.limits.bucket: rate_per_s and burst must be positive numbers");
    luaL_setmetatable(L, BUCKET);
    return 1;
}

static int l_bucket_take(lua_State *L)
{
    struct sf_bucket *b = luaL_checkudata(L, 1, BUCKET);
    lua_Number n = check_num(L, 2, "sf.limits.bucket:take", "n");
    lua_Integer now = check_time(L, 3, "sf.limits.bucket:take", "now_ms");
    int64_t wait;
    if (!(n >= 0) || n > b->burst)
        return luaL_error(L, "sf.limits.bucket:take: n must be between 0 and the burst");
    wait = sf_bucket_take(b, n, (int64_t)now);
    lua_pushinteger(L, (lua_Integer)wait);
    return 1;
}

static int l_bucket_tostring(lua_State *L)
{
    struct sf_bucket *b = luaL_checkudata(L, 1, BUCKET);
    lua_pushfstring(L, "sf.limits.bucket (%f/s, burst %f)", b->rate, b->burst);
    return 1;
}

static int l_counter(lua_State *L)
{
    size_t len = 0;
    const char *saved = luaL_optlstring(L, 1, NULL, &len);
    struct sf_counter *c = lua_newuserdatauv(L, sizeof *c, 0);
    sf_counter_init(c);
    luaL_setmetatable(L, COUNTER);
    if (saved != NULL && sf_counter_load(c, saved, len) != 0)
        return sf_pushfail(L, "STATE", "sf.limits.counter: saved counter is not a valid dump");
    return 1;
}

static int l_counter_add(lua_State *L)
{
    struct sf_counter *c = luaL_checkudata(L, 1, COUNTER);
    lua_Integer now = check_time(L, 2, "sf.limits.counter:add", "now_s");
    lua_Integer n = lua_isnoneornil(L, 3) ? 1 : check_int(L, 3, "sf.limits.counter:add", "n");
    luaL_argcheck(L, n >= 0, 3, "sf.limits.counter:add: n must not be negative");
    sf_counter_add(c, (int64_t)now, (int64_t)n);
    return 0;
}

static int l_counter_used(lua_State *L)
{
    struct sf_counter *c = luaL_checkudata(L, 1, COUNTER);
    lua_Integer now = check_time(L, 2, "sf.limits.counter:used", "now_s");
    lua_pushinteger(L, (lua_Integer)sf_counter_used(c, (int64_t)now));
    return 1;
}

static int l_counter_next_free(lua_State *L)
{
    struct sf_counter *c = luaL_checkudata(L, 1, COUNTER);
    lua_Integer now = check_time(L, 2, "sf.limits.counter:next_free", "now_s");
    lua_Integer n = check_int(L, 3, "sf.limits.counter:next_free", "n");
    lua_Integer max = check_int(L, 4, "sf.limits.counter:next_free", "max");
    int64_t t;
    luaL_argcheck(L, n >= 0, 3, "sf.limits.counter:next_free: n must not be negative");
    t = sf_counter_next_free(c, (int64_t)now, (int64_t)n, (int64_t)max);
    if (t < 0)
        return sf_pushfail(L, "NEVER", "sf.limits.counter: %I calls can never fit under %I",
                           n, max);
    lua_pushinteger(L, (lua_Integer)t);
    return 1;
}

static int l_counter_dump(lua_State *L)
{
    struct sf_counter *c = luaL_checkudata(L, 1, COUNTER);
    luaL_Buffer b;
    size_t need = sf_counter_dump(c, NULL, 0);
    char *p = luaL_buffinitsize(L, &b, need + 1);
    sf_counter_dump(c, p, need + 1);
    luaL_pushresultsize(&b, need);
    return 1;
}

static int l_counter_tostring(lua_State *L)
{
    luaL_checkudata(L, 1, COUNTER);
    lua_pushstring(L, "sf.limits.counter");
    return 1;
}

static const luaL_Reg funcs[] = {
    {"parse_usage", l_parse_usage},
    {"bucket", l_bucket},
    {"counter", l_counter},
    {NULL, NULL}
};

static const luaL_Reg bucket_methods[] = {
    {"take", l_bucket_take},
    {NULL, NULL}
};

static const luaL_Reg bucket_meta[] = {
    {"__tostring", l_bucket_tostring},
    {"__index", NULL}, /* placeholder: set by sf_createmeta */
    {NULL, NULL}
};

static const luaL_Reg counter_methods[] = {
    {"add", l_counter_add},
    {"used", l_counter_used},
    {"next_free", l_counter_next_free},
    {"dump", l_counter_dump},
    {NULL, NULL}
};

static const luaL_Reg counter_meta[] = {
    {"__tostring", l_counter_tostring},
    {"__index", NULL}, /* placeholder: set by sf_createmeta */
    {NULL, NULL}
};

int luaopen_sf_limits(lua_State *L)
{
    sf_createmeta(L, BUCKET, bucket_meta, bucket_methods, NULL);
    sf_createmeta(L, COUNTER, counter_meta, counter_methods, NULL);
    luaL_newlib(L, funcs);
    return 1;
}
