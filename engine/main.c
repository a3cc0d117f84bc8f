/* sfengine: the command line. Creates the Lua state (capped allocator from
 * sandbox.c), registers the C primitives in package.preload, adds a searcher
 * for the Lua modules compiled into the binary, then runs
 *
 *   sfengine --version          versions of sfengine, Lua, libcurl, OpenSSL
 *   sfengine --test FILE [ARG]  a test file with full privileges (tests/run.sh)
 *   sfengine [options] RECIPE   require("sf.main")(args), in one lua_pcall
 *
 * As in Lua's own lua.c, everything after creating the state runs inside
 * one protected call (pmain): opening the libraries, the searchers, the
 * string-metatable lock, then the test or the job, so even an out-of-memory
 * while setting up is an error message and exit 1, never an abort.
 *
 * An uncaught error prints one line "sfengine: <message>" (a traceback too
 * with --debug) and exits 1; an error object that is a table with a string
 * `message` (a recipe error) prints that message and exits with its
 * `exit_code` (2 when absent). The state is always closed before exit, and
 * libcurl's global state is set up once here (curl_global_init) and torn
 * down once (close_process). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/opensslv.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include <lua-cjson.h>

#include "embedded.h"

#define SF_VERSION "0.1.0"

/* sandbox.c */
lua_State *sf_sandbox_newstate(void);
void sf_sandbox_close(lua_State *L);

int luaopen_cjson_safe(lua_State *L); /* lua-cjson.h declares only luaopen_cjson */

/* The C primitives, one file each, come from sf_modules (embedded.h): the
 * build finds every engine/<name>.c exporting luaopen_sf_<name>. The Lua
 * module sf.sandbox (scripts/sf/sandbox.lua) re-exports sf.sandbox.core. */
static const luaL_Reg libraries[] = {
    {"cjson", luaopen_cjson},
    {"cjson.safe", luaopen_cjson_safe},
    {NULL, NULL},
};

static int debug_mode;

static void print_version(void)
{
    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    printf("sfengine %s\n", SF_VERSION);
    printf("%s\n", LUA_RELEASE);
    printf("libcurl %s\n", cv != NULL ? cv->version : "unknown");
    printf("%s\n", OpenSSL_version(OPENSSL_VERSION));
}

/* package.searchers entry: modules compiled in by engine/embed.py.
 * Returns the loaded chunk and its chunkname, or a "not found" string. */
static int embedded_searcher(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const struct sf_embedded *e;
    for (e = sf_embedded; e->name != NULL; e++) {
        if (strcmp(e->name, name) != 0)
            continue;
        if (luaL_loadbufferx(L, e->source, e->len, e->chunkname, "t") != LUA_OK)
            return lua_error(L); /* a syntax error in a compiled-in module */
        lua_pushstring(L, e->chunkname + 1); /* without the '@' */
        return 2;
    }
    lua_pushfstring(L, "\n\tno embedded module '%s'", name);
    return 1;
}

/* Installs the embedded searcher right after the preload searcher. With
 * files = 0 the file searchers are dropped, so only compiled-in code runs. */
static void setup_searchers(lua_State *L, int files)
{
    lua_Integer i, n;
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "searchers"); /* stack: package, searchers */
    n = (lua_Integer)lua_rawlen(L, -1);
    if (!files) {
        for (i = n; i > 1; i--) {
            lua_pushnil(L);
            lua_rawseti(L, -2, i);
        }
        n = 1;
    }
    for (i = n; i >= 2; i--) { /* shift up to make room at 2 */
        lua_rawgeti(L, -1, i);
        lua_rawseti(L, -2, i + 1);
    }
    lua_pushcfunction(L, embedded_searcher);
    lua_rawseti(L, -2, 2);
    lua_pop(L, 1);

    lua_getfield(L, -1, "preload"); /* stack: package, preload */
    luaL_setfuncs(L, libraries, 0);
    for (const struct sf_module *m = sf_modules; m->name != NULL; m++) {
        lua_pushcfunction(L, m->open);
        lua_setfield(L, -2, m->name);
    }
    lua_pop(L, 2);
}

static int locked_write(lua_State *L)
{
    return luaL_error(L, "the string metatable is read-only");
}

/* The shared string metatable: methods come from a copy of the string
 * library without dump, and getmetatable("") returns a read-only stand-in,
 * so no script can change string methods for the engine or another recipe. */
static void lock_string_metatable(lua_State *L)
{
    lua_pushliteral(L, "");
    if (!lua_getmetatable(L, -1)) { /* stack: "", mt */
        lua_pop(L, 1);
        return;
    }
    lua_newtable(L); /* stack: "", mt, methods */
    lua_getglobal(L, LUA_STRLIBNAME);
    lua_pushnil(L); /* stack: "", mt, methods, string, key */
    while (lua_next(L, -2)) {
        if (lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), "dump") == 0) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -5);
    }
    lua_pop(L, 1);
    lua_setfield(L, -2, "__index");

    lua_newtable(L); /* stack: "", mt, standin */
    lua_newtable(L); /* stack: "", mt, standin, standin_mt */
    lua_pushcfunction(L, locked_write);
    lua_setfield(L, -2, "__newindex");
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);
}

/* The process's end: closes the state (also freeing the allocator state,
 * so __gc runs and LSan sees no leak), then libcurl's global state. */
static void close_process(lua_State *L)
{
    if (L != NULL) sf_sandbox_close(L);
    curl_global_cleanup();
}

/* os.exit shuts down by default; os.exit(code, false) exits at once. */
static int os_exit(lua_State *L)
{
    int status;
    if (lua_isboolean(L, 1))
        status = lua_toboolean(L, 1) ? EXIT_SUCCESS : EXIT_FAILURE;
    else
        status = (int)luaL_optinteger(L, 1, EXIT_SUCCESS);
    if (lua_isnone(L, 2) || lua_toboolean(L, 2)) close_process(L);
    fflush(NULL);
    exit(status);
    return 0;
}

static void setup_state(lua_State *L, int files)
{
    luaL_openlibs(L);
    setup_searchers(L, files);
    lock_string_metatable(L);
    lua_getglobal(L, LUA_OSLIBNAME);
    lua_pushcfunction(L, os_exit);
    lua_setfield(L, -2, "exit");
    lua_pop(L, 1);
}

/* Message handler of the one lua_pcall: a traceback with --debug (always in
 * --test); error tables (recipe errors) pass through untouched. */
static int msghandler(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (lua_type(L, 1) == LUA_TTABLE)
            return 1;
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    if (debug_mode && strstr(msg, "\nstack traceback:") == NULL) /* sandbox.call added one */
        luaL_traceback(L, L, msg, 1);
    else
        lua_pushstring(L, msg);
    return 1;
}

/* Prints the error at the top of the stack; returns the exit code. */
static int report(lua_State *L)
{
    int code = 1;
    const char *msg;
    if (lua_type(L, -1) == LUA_TTABLE) { /* raw reads: no metamethod runs here */
        lua_pushliteral(L, "message");
        lua_rawget(L, -2);
        lua_pushliteral(L, "exit_code");
        lua_rawget(L, -3); /* stack: err, message, exit_code */
        code = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : 2;
        if (code <= 0 || code > 125)
            code = 1; /* an error never exits 0 */
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) {
            lua_pop(L, 1);
            lua_pushliteral(L, "(error object is a table value)");
        }
    }
    msg = lua_tostring(L, -1);
    fprintf(stderr, "sfengine: %s\n", msg != NULL ? msg : "(error object is not a string)");
    fflush(stderr);
    return code;
}

/* --test FILE [ARGS]: stack receives nothing; returns the exit code. */
static int run_test(lua_State *L, int argc, char **argv, int first)
{
    int i, status;
    const char *file = argv[first];
    debug_mode = 1;
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "./?.lua;%s", lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 2);

    lua_createtable(L, argc - first, 1); /* arg: [0] = FILE, [1..] = ARGS */
    for (i = first; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - first);
    }
    lua_setglobal(L, "arg");

    lua_pushcfunction(L, msghandler);
    if (luaL_loadfilex(L, file, "t") != LUA_OK)
        return report(L);
    for (i = first + 1; i < argc; i++)
        lua_pushstring(L, argv[i]);
    status = lua_pcall(L, argc - first - 1, 0, 1);
    if (status != LUA_OK)
        return report(L);
    return 0;
}

/* the normal run: require("sf.main")(args) */
static int call_main(lua_State *L)
{
    int argc = (int)lua_tointeger(L, 1);
    char **argv = lua_touserdata(L, 2);
    int i;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "sf.main");
    lua_call(L, 1, 1); /* stack: argc, argv, main */
    lua_createtable(L, argc - 1, 0);
    for (i = 1; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i);
    }
    lua_call(L, 1, 1);
    return 1;
}

static int run_main(lua_State *L, int argc, char **argv)
{
    int status, code = 0;
    lua_pushcfunction(L, msghandler);
    lua_pushcfunction(L, call_main);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    status = lua_pcall(L, 2, 1, 1);
    if (status != LUA_OK)
        return report(L);
    if (lua_isinteger(L, -1))
        code = (int)lua_tointeger(L, -1);
    else if (lua_type(L, -1) == LUA_TBOOLEAN)
        code = lua_toboolean(L, -1) ? 0 : 1;
    lua_pop(L, 2);
    return code;
}

/* What pmain needs and what it gives back. */
struct run {
    int argc;
    char **argv;
    int test_at; /* index of FILE after --test, 0: the normal run */
    int code;    /* the exit code */
};

/* Everything that touches the state, protected (stack: run). */
static int pmain(lua_State *L)
{
    struct run *r = lua_touserdata(L, 1);
    lua_settop(L, 0);
    setup_state(L, r->test_at != 0);
    r->code = r->test_at ? run_test(L, r->argc, r->argv, r->test_at)
                         : run_main(L, r->argc, r->argv);
    return 0;
}

int main(int argc, char **argv)
{
    lua_State *L = NULL;
    struct run r;
    int i, code = 1, test_at = 0;

    if (argc >= 2 && strcmp(argv[1], "--test") == 0) {
        if (argc < 3) {
            fputs("sfengine: --test needs a FILE\n", stderr);
            return 2;
        }
        test_at = 2;
    }
    for (i = 1; !test_at && i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            print_version();
            return 0;
        }
        if (strcmp(argv[i], "--debug") == 0)
            debug_mode = 1;
    }

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fputs("sfengine: cannot initialise libcurl\n", stderr);
        return 1;
    }
    L = sf_sandbox_newstate();
    if (L == NULL) {
        fputs("sfengine: cannot create the Lua state: not enough memory\n", stderr);
        goto done;
    }
    r.argc = argc;
    r.argv = argv;
    r.test_at = test_at;
    r.code = 1;
    lua_pushcfunction(L, pmain); /* cannot fail: a light C function needs no memory */
    lua_pushlightuserdata(L, &r);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK)
        code = report(L); /* setup failed, e.g. "not enough memory" */
    else
        code = r.code;
done:
    close_process(L);
    return code;
}
