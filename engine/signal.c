/* sf.signal: SIGTERM/SIGINT become a flag the job polls between pages, so a
 * stop request ends in a clean checkpoint instead of a torn write.
 *
 *   signal.trap()      install the handlers (idempotent)
 *   signal.pending()   -> "TERM", "INT" or nil
 *   signal.clear()
 *
 * Handlers are installed without SA_RESTART so sleeps and blocking waits
 * return early; libcurl transfers are bounded by their own timeouts. */
#include <signal.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>

#include "signal.h"

int luaopen_sf_signal(lua_State *L);

static volatile sig_atomic_t pending_signal;

int sf_signal_pending(void) { return (int)pending_signal; }

static void on_signal(int sig)
{
    if (pending_signal == 0) pending_signal = sig;
}

static int signal_trap(lua_State *L)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        return luaL_error(L, "sf.signal.trap: sigaction failed");
    return 0;
}

static int signal_pending(lua_State *L)
{
    switch (pending_signal) {
    case 0: lua_pushnil(L); break;
    case SIGTERM: lua_pushliteral(L, "TERM"); break;
    case SIGINT: lua_pushliteral(L, "INT"); break;
    default: lua_pushinteger(L, pending_signal); break;
    }
    return 1;
}

static int signal_clear(lua_State *L)
{
    (void)L;
    pending_signal = 0;
    return 0;
}

static const luaL_Reg signal_funcs[] = {
    {"trap", signal_trap},
    {"pending", signal_pending},
    {"clear", signal_clear},
    {NULL, NULL}
};

int luaopen_sf_signal(lua_State *L)
{
    luaL_newlib(L, signal_funcs);
    return 1;
}
