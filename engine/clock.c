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
 * Time zones go through the C library (TZ + tzset), the only tz database a
 * Debian machine is sure to have; TZ is restored afterwards. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <lua.h>
#include <lauxlib.h>

#include "signal.h"

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

/* Runs with TZ temporarily set to zone; restores the previous TZ. */
struct tz_guard { char *saved; int had; };

static void tz_enter(struct tz_guard *g, const char *zone)
{
    const char *old = getenv("TZ");
    g->had = old != NULL;
    g->saved = old ? strdup(old) : NULL; /* owned by the guard */
    setenv("TZ", zone, 1);
    tzset();
}

static void tz_leave(struct tz_guard *g)
{
    if (g->had && g->saved) setenv("TZ", g->saved, 1);
    else unsetenv("TZ");
    free(g->saved);
    tzset();
}

static int check_zone(lua_State *L, int arg)
{
    const char *zone = luaL_checkstring(L, arg);
    /* Only IANA names from the system database: refuse POSIX TZ strings and paths. */
    luaL_argcheck(L, zone[0] != ':' && zone[0] != '/' && strstr(zone, "..") == NULL, arg,
                  "sf.clock: time zone must be an IANA name such as Europe/Amsterdam");
    return 0;
}

static int clock_to_local(lua_State *L)
{
    time_t t = (time_t)luaL_checknumber(L, 1);
    check_zone(L, 2);
    struct tz_guard g;
    struct tm tm;
    tz_enter(&g, lua_tostring(L, 2));
    localtime_r(&t, &tm);
    tz_leave(&g);
    lua_createtable(L, 0, 7);
    lua_pushinteger(L, tm.tm_year + 1900); lua_setfield(L, -2, "year");
    lua_pushinteger(L, tm.tm_mon + 1);     lua_setfield(L, -2, "month");
    lua_pushinteger(L, tm.tm_mday);        lua_setfield(L, -2, "day");
    lua_pushinteger(L, tm.tm_hour);        lua_setfield(L, -2, "hour");
    lua_pushinteger(L, tm.tm_min);         lua_setfield(L, -2, "min");
    lua_pushinteger(L, tm.tm_sec);         lua_setfield(L, -2, "sec");
    lua_pushinteger(L, tm.tm_wday + 1);    lua_setfield(L, -2, "wday");
    return 1;
}

static int field_int(lua_State *L, int t, const char *name, int dflt)
{
    lua_getfield(L, t, name);
    int isnum = 0;
    lua_Integer v = lua_tointegerx(L, -1, &isnum);
    if (!isnum && !lua_isnil(L, -1))
        luaL_error(L, "sf.clock.from_local: field '%s' must be an integer", name);
    lua_pop(L, 1);
    return isnum ? (int)v : dflt;
}

static int clock_from_local(lua_State *L)
{
    check_zone(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = field_int(L, 2, "year", 1970) - 1900;
    tm.tm_mon = field_int(L, 2, "month", 1) - 1;
    tm.tm_mday = field_int(L, 2, "day", 1);
    tm.tm_hour = field_int(L, 2, "hour", 0);
    tm.tm_min = field_int(L, 2, "min", 0);
    tm.tm_sec = field_int(L, 2, "sec", 0);
    tm.tm_isdst = -1; /* let the zone rules decide */
    struct tz_guard g;
    tz_enter(&g, lua_tostring(L, 1));
    time_t t = mktime(&tm);
    tz_leave(&g);
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
