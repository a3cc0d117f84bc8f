/* sf.sandbox (C half): the resource limits recipes run under.
 *
 *   sf_sandbox_newstate()             lua_State with the capped allocator (main.c)
 *   sf_sandbox_close(L)               closes it and frees the allocator state
 *
 *   sandbox.set_memory_limit(bytes)   cap on the whole Lua heap (default 4 GiB)
 *   sandbox.memory_limit()            -> bytes
 *   sandbox.memory_used()             -> bytes currently allocated by Lua
 *   sandbox.call(budget_ms, fn, ...)  -> true, ... | false, err
 *                                      fn runs under a CPU deadline; nested calls
 *                                      never extend the outer deadline
 *   sandbox.expired()                 -> true once the deadline in force has passed
 *   sandbox.set_traceback(on)         errors caught by call get a traceback (--debug)
 *   sandbox.isatty(fd)                -> boolean
 *   sandbox.now()                     -> epoch seconds (float)
 *   sandbox.realpath(path)            -> absolute path | nil, message, code
 *   sandbox.embedded(name)            -> source, chunkname | nil (compiled-in modules)
 *
 * The deadline is a count hook that looks at the clock every HOOK_COUNT
 * instructions. Once the deadline has passed it re-arms itself to fire on
 * every instruction and raises each time, so a pcall inside the recipe cannot
 * swallow the error: the handler's next instruction raises again. The hook is
 * per thread; coroutines created inside the call inherit it (lua_newthread).
 * An error raised in a hook calls the active message handler while hooks are
 * still disabled, so the recipe's xpcall must not run its handler once the
 * deadline has passed (sandbox.lua wraps xpcall with expired()).
 *
 * The hook cannot interrupt a C function (a pathological string.find, a
 * huge sort): a watchdog (SIGALRM, ITIMER_REAL) armed for WATCHDOG_GRACE_MS
 * after the deadline ends the process with exit code 1 and one line on
 * stderr if the call is still running then. Job state is written atomically,
 * so the next run resumes from the last checkpoint.
 *
 * Allocation failures past the cap make Lua raise its "not enough memory"
 * error, which a pcall can catch; call() reports it as "memory limit exceeded
 * (N MiB)". Frees and shrinks never fail. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>

#include "embedded.h"

int luaopen_sf_sandbox_core(lua_State *L);
lua_State *sf_sandbox_newstate(void);
void sf_sandbox_close(lua_State *L);

#define HOOK_COUNT 1000
#define WATCHDOG_GRACE_MS 3000
#define DEFAULT_LIMIT ((size_t)4 << 30)
#define MIB (1024.0 * 1024.0)

struct sbx {
    size_t used;        /* bytes handed out by sbx_alloc */
    size_t limit;       /* cap on used */
    int hit;            /* an allocation was refused since the last reset */
    int owned;          /* 1: the state's allocator (limits enforced) */
    int depth;          /* nesting of sandbox.call */
    int traceback;      /* add a traceback to errors caught by call */
    double deadline;    /* monotonic ms; meaningful when depth > 0 */
    lua_Integer budget; /* ms of the call whose deadline is in force */
};

static const char *const SBX_KEY = "sf.sandbox.state";

static void *sbx_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct sbx *S = ud;
    void *p;
    if (ptr == NULL)
        osize = 0; /* osize encodes the object type then */
    if (nsize == 0) {
        free(ptr);
        S->used -= osize;
        return NULL;
    }
    if (nsize > osize && nsize - osize > S->limit - S->used) {
        S->hit = 1;
        return NULL;
    }
    p = realloc(ptr, nsize);
    if (p == NULL)
        return NULL;
    S->used = S->used - osize + nsize;
    return p;
}

/* The state behind L: the allocator's when it is ours; otherwise (a state
 * made elsewhere, e.g. a C unit test) one kept in the registry, without a cap. */
static struct sbx *getsbx(lua_State *L)
{
    void *ud = NULL;
    struct sbx *S;
    if (lua_getallocf(L, &ud) == sbx_alloc)
        return ud;
    lua_rawgetp(L, LUA_REGISTRYINDEX, SBX_KEY);
    S = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (S == NULL) {
        S = lua_newuserdatauv(L, sizeof *S, 0);
        memset(S, 0, sizeof *S);
        lua_rawsetp(L, LUA_REGISTRYINDEX, SBX_KEY);
    }
    return S;
}

/* An error outside any protected call: main.c runs everything inside one,
 * so this is a bug; say so before Lua aborts. */
static int panic(lua_State *L)
{
    const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(not a string)";
    fprintf(stderr, "sfengine: PANIC: unprotected error: %s\n", msg);
    fflush(stderr);
    return 0; /* Lua aborts */
}

lua_State *sf_sandbox_newstate(void)
{
    lua_State *L;
    struct sbx *S = calloc(1, sizeof *S); /* owned by the state; freed in sf_sandbox_close */
    if (S == NULL)
        return NULL;
    S->limit = DEFAULT_LIMIT;
    S->owned = 1;
    L = lua_newstate(sbx_alloc, S);
    if (L == NULL)
        free(S);
    else
        lua_atpanic(L, panic);
    return L;
}

void sf_sandbox_close(lua_State *L)
{
    void *ud = NULL;
    lua_Alloc f = lua_getallocf(L, &ud);
    lua_close(L);
    if (f == sbx_alloc)
        free(ud);
}

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- watchdog ---- */

static void watchdog_fire(int sig)
{
    static const char msg[] =
        "sfengine: recipe code ran past its CPU deadline inside a C function; stopped\n";
    ssize_t n = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)n;
    (void)sig;
    _exit(1);
}

/* Arms the watchdog for deadline + grace (monotonic ms), or disarms it (0). */
static void watchdog_arm(double deadline)
{
    static int installed;
    struct itimerval it;
    memset(&it, 0, sizeof it);
    if (!installed) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = watchdog_fire;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        sigaction(SIGALRM, &sa, NULL);
        installed = 1;
    }
    if (deadline > 0) {
        double ms = deadline + WATCHDOG_GRACE_MS - mono_ms();
        if (ms < 1)
            ms = 1;
        it.it_value.tv_sec = (time_t)(ms / 1000);
        it.it_value.tv_usec = (suseconds_t)((ms - (double)it.it_value.tv_sec * 1000) * 1000);
    }
    setitimer(ITIMER_REAL, &it, NULL);
}

/* ---- memory ---- */

static int sbx_set_memory_limit(lua_State *L)
{
    struct sbx *S = getsbx(L);
    lua_Integer bytes = luaL_checkinteger(L, 1);
    luaL_argcheck(L, bytes > 0, 1, "sf.sandbox.set_memory_limit: bytes must be positive");
    if (!S->owned)
        return luaL_error(L, "sf.sandbox.set_memory_limit: this Lua state does not use the engine allocator");
    S->limit = (uint64_t)bytes > SIZE_MAX ? SIZE_MAX : (size_t)bytes;
    return 0;
}

static int sbx_memory_limit(lua_State *L)
{
    struct sbx *S = getsbx(L);
    if (!S->owned)
        lua_pushnil(L);
    else
        lua_pushinteger(L, (lua_Integer)S->limit);
    return 1;
}

static int sbx_memory_used(lua_State *L)
{
    struct sbx *S = getsbx(L);
    if (S->owned)
        lua_pushinteger(L, (lua_Integer)S->used);
    else
        lua_pushinteger(L, (lua_Integer)lua_gc(L, LUA_GCCOUNT, 0) * 1024 + lua_gc(L, LUA_GCCOUNTB, 0));
    return 1;
}

/* ---- CPU deadline ---- */

static void sbx_hook(lua_State *L, lua_Debug *ar)
{
    struct sbx *S = getsbx(L);
    lua_Debug here;
    (void)ar;
    if (S->depth == 0) { /* a thread left over from a finished call */
        lua_sethook(L, NULL, 0, 0);
        return;
    }
    if (mono_ms() < S->deadline)
        return;
    lua_sethook(L, sbx_hook, LUA_MASKCOUNT, 1); /* from now on, every instruction */
    if (lua_getstack(L, 0, &here) && lua_getinfo(L, "Sl", &here) && here.currentline > 0)
        lua_pushfstring(L, "%s:%d: CPU time limit exceeded (%I ms)", here.short_src, here.currentline,
                        (LUAI_UACINT)S->budget);
    else
        lua_pushfstring(L, "CPU time limit exceeded (%I ms)", (LUAI_UACINT)S->budget);
    lua_error(L);
}

static int sbx_msgh(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL)
        return 1; /* tables (recipe errors) and other values pass through */
    luaL_traceback(L, L, msg, 1);
    return 1;
}

static int is_memory_message(lua_State *L, int idx)
{
    const char *msg = lua_tostring(L, idx);
    return msg != NULL && strstr(msg, "not enough memory") != NULL;
}

static int sbx_call(lua_State *L)
{
    struct sbx *S = getsbx(L);
    lua_Integer ms = luaL_checkinteger(L, 1);
    double saved_deadline = S->deadline, now, deadline;
    lua_Integer saved_budget = S->budget;
    int base, status, nres, msgh = 0;
    luaL_argcheck(L, ms > 0, 1, "sf.sandbox.call: budget_ms must be positive");
    luaL_checktype(L, 2, LUA_TFUNCTION);

    now = mono_ms();
    deadline = now + (double)ms;
    if (S->depth > 0 && S->deadline <= deadline) {
        deadline = S->deadline; /* the outer deadline stays in force */
        ms = S->budget;
    }
    if (S->traceback) {
        lua_pushcfunction(L, sbx_msgh);
        lua_replace(L, 1); /* stack: msgh, fn, args... */
        msgh = 1;
    } else {
        lua_remove(L, 1); /* stack: fn, args... */
    }
    base = msgh ? 2 : 1; /* index of fn */

    S->deadline = deadline;
    S->budget = ms;
    S->depth++;
    S->hit = 0;
    lua_sethook(L, sbx_hook, LUA_MASKCOUNT, HOOK_COUNT);
    watchdog_arm(deadline);
    status = lua_pcall(L, lua_gettop(L) - base, LUA_MULTRET, msgh);
    S->depth--;
    S->deadline = saved_deadline;
    S->budget = saved_budget;
    if (S->depth == 0) {
        lua_sethook(L, NULL, 0, 0);
        watchdog_arm(0);
    } else {
        lua_sethook(L, sbx_hook, LUA_MASKCOUNT, HOOK_COUNT); /* re-checks the outer deadline */
        watchdog_arm(saved_deadline);
    }

    if (status == LUA_OK) {
        luaL_checkstack(L, 1, "sf.sandbox.call: too many results");
        nres = lua_gettop(L) - (base - 1);
        lua_pushboolean(L, 1);
        lua_insert(L, base);
        return nres + 1;
    }
    /* stack: [msgh], err */
    if (S->hit && (status == LUA_ERRMEM || is_memory_message(L, -1))) {
        lua_settop(L, 0);
        lua_gc(L, LUA_GCCOLLECT, 0); /* the bomb is garbage now */
        lua_pushboolean(L, 0);
        lua_pushfstring(L, "memory limit exceeded (%d MiB)", (int)((double)S->limit / MIB + 0.5));
        return 2;
    }
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;
}

static int sbx_expired(lua_State *L)
{
    struct sbx *S = getsbx(L);
    lua_pushboolean(L, S->depth > 0 && mono_ms() >= S->deadline);
    return 1;
}

static int sbx_set_traceback(lua_State *L)
{
    getsbx(L)->traceback = lua_toboolean(L, 1);
    return 0;
}

/* ---- small system helpers ---- */

static int sbx_isatty(lua_State *L)
{
    lua_Integer fd = luaL_checkinteger(L, 1);
    lua_pushboolean(L, fd >= 0 && fd <= INT32_MAX && isatty((int)fd));
    return 1;
}

static int sbx_now(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}

static int sbx_realpath(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    char *r = realpath(path, NULL); /* malloc'd; freed here */
    if (r == NULL) {
        int e = errno;
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", path, strerror(e));
        lua_pushstring(L, e == ENOENT ? "ENOENT" : e == EACCES ? "EACCES" : e == ENOTDIR ? "ENOTDIR" : "EIO");
        return 3;
    }
    lua_pushstring(L, r);
    free(r);
    return 1;
}

static int sbx_embedded(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const struct sf_embedded *e;
    for (e = sf_embedded; e->name != NULL; e++) {
        if (strcmp(e->name, name) == 0) {
            lua_pushlstring(L, e->source, e->len);
            lua_pushstring(L, e->chunkname);
            return 2;
        }
    }
    lua_pushnil(L);
    return 1;
}

static const luaL_Reg sbx_funcs[] = {
    {"set_memory_limit", sbx_set_memory_limit},
    {"memory_limit", sbx_memory_limit},
    {"memory_used", sbx_memory_used},
    {"call", sbx_call},
    {"expired", sbx_expired},
    {"set_traceback", sbx_set_traceback},
    {"isatty", sbx_isatty},
    {"now", sbx_now},
    {"realpath", sbx_realpath},
    {"embedded", sbx_embedded},
    {NULL, NULL},
};

int luaopen_sf_sandbox_core(lua_State *L)
{
    getsbx(L); /* creates the registry state for foreign states */
    luaL_newlib(L, sbx_funcs);
    return 1;
}
