/* sf.clock: wall and monotonic time, process CPU time, interruptible sleep and
 * IANA time-zone conversion for keep-updated schedules.
 *
 *   clock.now()                 -> epoch seconds (float, CLOCK_REALTIME)
 *   clock.monotonic()           -> seconds (float, CLOCK_MONOTONIC)
 *   clock.cpu()                 -> user+system CPU seconds of this process
 *   clock.sleep(seconds)        -> true, or false when a trapped signal cut it short
 *   clock.to_local(epoch, tz)   -> {year, month, day, hour, min, sec, wday (1 = Sunday)}
 *   clock.from_local(tz, t)     -> epoch seconds of the wall time t in zone tz
 *
 * Time zones are the system's IANA database (/usr/share/zoneinfo, package
 * tzdata), each file read and converted in C (tzif.c) on every call: the
 * process-wide TZ is never changed, so nothing else in the process (a log
 * line's localtime, another thread) can see a borrowed zone. "UTC" needs no
 * file. An unknown zone, or a time outside years -9999..9999, raises. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>

#include "signal.h"
#include "tzif.h"

#define DAY_SECS 86400

int luaopen_sf_clock(lua_State *L);

static double timespec_seconds(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int clock_now(lua_State *L)
{
    lua_pushnumber(L, timespec_seconds(CLOCK_REALTIME));
    return 1;
}

static int clock_monotonic(lua_State *L)
{
    lua_pushnumber(L, timespec_seconds(CLOCK_MONOTONIC));
    return 1;
}

static int clock_cpu(lua_State *L)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6
             + (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    lua_pushnumber(L, s);
    return 1;
}

static int clock_sleep(lua_State *L)
{
    double seconds = luaL_checknumber(L, 1);
    luaL_argcheck(L, seconds >= 0 && seconds < 1e9, 1, "sf.clock.sleep: seconds out of range");
    struct timespec left = { (time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9) };
    /* A trapped signal interrupts nanosleep (handlers are installed without
     * SA_RESTART); stop early so the job can checkpoint and exit. */
    while (nanosleep(&left, &left) != 0) {
        if (errno != EINTR || sf_signal_pending() != 0) {
            lua_pushboolean(L, 0);
            return 1;
        }
    }
    lua_pushboolean(L, sf_signal_pending() == 0);
    return 1;
}

/* ---- time zones: TZif files read in C (tzif.c), never the process's TZ ---- */

#define ZONEINFO "/usr/share/zoneinfo/"
#define MAX_ZONE_FILE (256 << 10) /* TZif files are a few KiB; sf_tz holds at most 4096 transitions */
#define ZONES_KEY "sf.clock.zones"

/* The zone name at arg: IANA names only, no POSIX TZ strings or paths. */
static const char *check_zone(lua_State *L, int arg)
{
    const char *zone = luaL_checkstring(L, arg);
    luaL_argcheck(L, zone[0] != '\0' && zone[0] != ':' && zone[0] != '/' && strstr(zone, "..") == NULL,
                  arg, "sf.clock: time zone must be an IANA name such as Europe/Amsterdam");
    return zone;
}

/* Reads file path into buf (cap bytes): its length, or -1 (missing, not a
 * regular file, unreadable, or larger than cap). No Lua call while the
 * descriptor is open. */
static ssize_t read_small_file(const char *path, unsigned char *buf, size_t cap)
{
    struct stat st;
    ssize_t got = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 && (size_t)st.st_size <= cap) {
        got = 0;
        while (got < st.st_size) {
            ssize_t r = read(fd, buf + got, cap - (size_t)got);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            got += r;
        }
        if (got != st.st_size) got = -1;
    }
    close(fd);
    return got;
}

/* The zone, read once per state and kept in the registry (stack: +1, the
 * zone's userdata). Raises naming the zone when there is none. */
static const sf_tz *load_zone(lua_State *L, const char *zone, const char *api)
{
    static unsigned char buf[MAX_ZONE_FILE]; /* the engine's Lua runs on one thread */
    char path[512];
    ssize_t n;
    sf_tz *tz;
    int len;
    if (luaL_getsubtable(L, LUA_REGISTRYINDEX, ZONES_KEY)) { /* stack: zones */
        if (lua_getfield(L, -1, zone) == LUA_TUSERDATA) { /* stack: zones, tz */
            lua_remove(L, -2);
            return lua_touserdata(L, -1);
        }
        lua_pop(L, 1);
    }
    tz = lua_newuserdatauv(L, sizeof *tz, 0); /* stack: zones, tz */
    if (strcmp(zone, "UTC") == 0) { /* no file needed */
        memset(tz, 0, sizeof *tz);
        tz->ntypes = 1;
    } else {
        len = snprintf(path, sizeof path, ZONEINFO "%s", zone);
        if (len < 0 || (size_t)len >= sizeof path) luaL_error(L, "%s: time zone name too long", api);
        n = read_small_file(path, buf, sizeof buf);
        if (n <= 0 || sf_tz_parse(tz, buf, (size_t)n) != 0)
            luaL_error(L, "%s: unknown time zone '%s'", api, zone);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, zone); /* zones[zone] = tz */
    lua_remove(L, -2);         /* stack: tz */
    return tz;
}

/* clock.to_local(epoch, zone) -> {year, month, day, hour, min, sec, wday} */
static int clock_to_local(lua_State *L)
{
    lua_Number e = luaL_checknumber(L, 1);
    const char *zone = check_zone(L, 2);
    const sf_tz *tz;
    int64_t t, local, days, year;
    int32_t off;
    int month, day, secs;
    luaL_argcheck(L, e >= (lua_Number)-SF_TZ_TIME_MAX && e <= (lua_Number)SF_TZ_TIME_MAX, 1,
                  "sf.clock.to_local: epoch out of range");
    t = (int64_t)floor(e);
    tz = load_zone(L, zone, "sf.clock.to_local");
    if (sf_tz_offset(tz, t, &off) != 0) luaL_argerror(L, 1, "sf.clock.to_local: epoch out of range");
    local = t + off;
    days = local / DAY_SECS - (local % DAY_SECS < 0);
    secs = (int)(local - days * DAY_SECS);
    sf_civil_from_days(days, &year, &month, &day);
    lua_createtable(L, 0, 7);
    lua_pushinteger(L, (lua_Integer)year); lua_setfield(L, -2, "year");
    lua_pushinteger(L, month);             lua_setfield(L, -2, "month");
    lua_pushinteger(L, day);               lua_setfield(L, -2, "day");
    lua_pushinteger(L, secs / 3600);       lua_setfield(L, -2, "hour");
    lua_pushinteger(L, secs / 60 % 60);    lua_setfield(L, -2, "min");
    lua_pushinteger(L, secs % 60);         lua_setfield(L, -2, "sec");
    lua_pushinteger(L, (days % 7 + 7 + 4) % 7 + 1); /* 1970-01-01 was a Thursday; 1 = Sunday */
    lua_setfield(L, -2, "wday");
    return 1;
}

/* t[name], an integer within +-FIELD_MAX (dflt when absent); anything
 * else raises, so the arithmetic below cannot overflow. */
#define FIELD_MAX 100000000
static lua_Integer field_int(lua_State *L, int t, const char *name, lua_Integer dflt)
{
    int isnum = 0;
    lua_Integer v;
    lua_getfield(L, t, name);
    v = lua_tointegerx(L, -1, &isnum);
    if (!isnum && !lua_isnil(L, -1))
        luaL_error(L, "sf.clock.from_local: field '%s' must be an integer", name);
    lua_pop(L, 1);
    if (!isnum) return dflt;
    if (v < -FIELD_MAX || v > FIELD_MAX)
        luaL_error(L, "sf.clock.from_local: field '%s' out of range", name);
    return v;
}

/* clock.from_local(zone, {year, month, day, hour, min, sec}) -> epoch seconds
 * of that wall time in the zone. Fields out of their usual range roll over
 * (day 32 is the next month's 1st), as mktime does; a wall time skipped by
 * a change to summer time is read with the offset before it (02:30 on the
 * spring day is 03:30 summer time), one that happens twice is the later. */
static int clock_from_local(lua_State *L)
{
    const char *zone = check_zone(L, 1);
    lua_Integer year, month, day, hour, min, sec;
    int64_t local, t;
    const sf_tz *tz;
    luaL_checktype(L, 2, LUA_TTABLE);
    year = field_int(L, 2, "year", 1970);
    month = field_int(L, 2, "month", 1) - 1;
    day = field_int(L, 2, "day", 1);
    hour = field_int(L, 2, "hour", 0);
    min = field_int(L, 2, "min", 0);
    sec = field_int(L, 2, "sec", 0);
    year += month / 12 - (month % 12 < 0); /* months past December or before January */
    month = (month % 12 + 12) % 12;
    if (year < -FIELD_MAX || year > FIELD_MAX)
        luaL_error(L, "sf.clock.from_local: date out of range");
    local = (sf_days_from_civil(year, (int)month + 1, 1) + day - 1) * DAY_SECS
          + hour * 3600 + min * 60 + sec;
    tz = load_zone(L, zone, "sf.clock.from_local");
    if (sf_tz_from_local(tz, local, &t) != 0) luaL_error(L, "sf.clock.from_local: date out of range");
    lua_pushinteger(L, (lua_Integer)t);
    return 1;
}

static const luaL_Reg clock_funcs[] = {
    {"now", clock_now},
    {"monotonic", clock_monotonic},
    {"cpu", clock_cpu},
    {"sleep", clock_sleep},
    {"to_local", clock_to_local},
    {"from_local", clock_from_local},
    {NULL, NULL}
};

int luaopen_sf_clock(lua_State *L)
{
    luaL_newlib(L, clock_funcs);
    return 1;
}
