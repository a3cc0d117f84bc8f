/* sf.store: embedded key/value store (SQLite) for per-user export state.
 *
 *   store.open(path)      --> store, or nil, msg, "STORE"
 *   store:get(key)        --> value (string) or nil; nil, msg, "STORE" on error
 *   store:put(key, value) --> true     store:delete(key) --> true
 *   store:begin() / store:commit() / store:rollback() --> true   (batching)
 *   store:count()         --> number of keys
 *   store:close()         idempotent; also __gc and __close (rolls back an open batch)
 *
 * One table kv(key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID, WAL journal:
 * a put touches a few B-tree pages, never the whole file, so millions of keys
 * stay cheap. synchronous=FULL: a commit is on disk when it returns, as
 * durable as the job state it goes with (callers batch puts in one
 * transaction, so this is one fsync per batch). Statements are prepared once
 * per handle. A key or value longer than 16 MiB fails with "too large"
 * (checked before its length meets SQLite's int), and every bind's result
 * is checked. */
#include "util.h"

#include <string.h>

#include <sqlite3.h>

#include <lua.h>
#include <lauxlib.h>

int luaopen_sf_store(lua_State *L);

#define STORE "sf.store"
#define STORE_MAX_BYTES (16 << 20) /* a key or a value (user keys and hashes are far smaller) */
#define STORE_MAX_ROW (2 * STORE_MAX_BYTES + 4096) /* SQLITE_LIMIT_LENGTH: a whole row fits */

enum { ST_GET, ST_PUT, ST_DELETE, ST_COUNT, ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_N };

static const char *const sql[ST_N] = {
    "SELECT value FROM kv WHERE key = ?1",
    "INSERT INTO kv(key, value) VALUES (?1, ?2) "
    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    "DELETE FROM kv WHERE key = ?1",
    "SELECT count(*) FROM kv",
    "BEGIN IMMEDIATE",
    "COMMIT",
    "ROLLBACK",
};

struct store {
    sqlite3 *db;              /* owned; NULL when closed */
    sqlite3_stmt *stmt[ST_N]; /* owned, prepared lazily */
};

/* Finalizes the statements and closes the database; idempotent. */
static void store_close(struct store *s)
{
    int i;
    for (i = 0; i < ST_N; i++) {
        sqlite3_finalize(s->stmt[i]);
        s->stmt[i] = NULL;
    }
    if (s->db != NULL) sqlite3_close_v2(s->db); /* an open batch is rolled back */
    s->db = NULL;
}

static struct store *checkstore(lua_State *L, const char *api)
{
    struct store *s = luaL_checkudata(L, 1, STORE);
    if (s->db == NULL) luaL_error(L, "%s: attempt to use a closed store", api);
    return s;
}

static int fail(lua_State *L, struct store *s, const char *what)
{
    return sf_pushfail(L, "STORE", "sf.store: %s: %s", what, sqlite3_errmsg(s->db));
}

/* Returns the cached statement, reset and unbound, or NULL on error. */
static sqlite3_stmt *stmt(struct store *s, int which)
{
    if (s->stmt[which] == NULL) {
        if (sqlite3_prepare_v3(s->db, sql[which], -1, SQLITE_PREPARE_PERSISTENT,
                               &s->stmt[which], NULL) != SQLITE_OK)
            return NULL;
    }
    sqlite3_reset(s->stmt[which]);
    sqlite3_clear_bindings(s->stmt[which]);
    return s->stmt[which];
}

/* A bind that failed: SQLITE_TOOBIG, or SQLite's message (bind errors are
 * not always in sqlite3_errmsg). The statement is reset. */
static int fail_bind(lua_State *L, sqlite3_stmt *st, const char *what, int rc)
{
    sqlite3_reset(st);
    if (rc == SQLITE_TOOBIG)
        return sf_pushfail(L, "STORE", "sf.store: %s: key or value too large (over %d bytes)", what,
                           STORE_MAX_BYTES);
    return sf_pushfail(L, "STORE", "sf.store: %s: %s", what, sqlite3_errstr(rc));
}

/* Binds p[0..n) to parameter col, as text or a blob; the bytes stay on the
 * Lua stack for the statement's run (SQLITE_STATIC). Lengths past
 * STORE_MAX_BYTES never reach SQLite's int. */
static int bind(sqlite3_stmt *st, int col, const char *p, size_t n, int blob)
{
    if (n > STORE_MAX_BYTES) return SQLITE_TOOBIG;
    if (blob) return sqlite3_bind_blob(st, col, p, (int)n, SQLITE_STATIC);
    return sqlite3_bind_text(st, col, p, (int)n, SQLITE_STATIC);
}

/* The statement `which` with the key (argument 2) bound: NULL after
 * pushing the failure (*nret results), else the statement. */
static sqlite3_stmt *keyed(lua_State *L, struct store *s, int which, const char *what, int *nret)
{
    size_t klen;
    const char *key = luaL_checklstring(L, 2, &klen);
    sqlite3_stmt *st = stmt(s, which);
    int rc;
    if (st == NULL) {
        *nret = fail(L, s, what);
        return NULL;
    }
    rc = bind(st, 1, key, klen, 0);
    if (rc != SQLITE_OK) {
        *nret = fail_bind(L, st, what, rc);
        return NULL;
    }
    return st;
}

/* Runs a statement that returns no rows; leaves it reset. */
static int exec_stmt(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int l_open(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct store *s;
    char *errmsg = NULL;
    lua_settop(L, 1);
    s = lua_newuserdatauv(L, sizeof *s, 0); /* stack: path, store -- closed */
    memset(s, 0, sizeof *s);
    luaL_setmetatable(L, STORE);
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                        | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        int n;
        if (s->db == NULL) return sf_pushfail(L, "STORE", "sf.store: %s: out of memory", path);
        n = sf_pushfail(L, "STORE", "sf.store: %s: %s", path, sqlite3_errmsg(s->db));
        store_close(s);
        return n;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_limit(s->db, SQLITE_LIMIT_LENGTH, STORE_MAX_ROW);
    sqlite3_busy_timeout(s->db, 5000);
    if (sqlite3_exec(s->db,
                     "PRAGMA journal_mode=WAL;"
                     "PRAGMA synchronous=FULL;"
                     "CREATE TABLE IF NOT EXISTS kv(key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID;",
                     NULL, NULL, &errmsg) != SQLITE_OK) {
        /* errmsg is owned by us (sqlite3_free); copy it into Lua first. */
        int n = sf_pushfail(L, "STORE", "sf.store: %s: %s", path,
                            errmsg != NULL ? errmsg : sqlite3_errmsg(s->db));
        sqlite3_free(errmsg);
        store_close(s);
        return n;
    }
    return 1;
}

static int l_get(lua_State *L)
{
    struct store *s = checkstore(L, "sf.store:get");
    int rc, nret = 0;
    sqlite3_stmt *st = keyed(L, s, ST_GET, "get", &nret);
    if (st == NULL) return nret;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const void *v = sqlite3_column_blob(st, 0);
        int n = sqlite3_column_bytes(st, 0);
        /* pushlstring copies; it may raise on out-of-memory, which leaves the
         * statement un-reset until its next use resets it. */
        lua_pushlstring(L, v != NULL ? v : "", (size_t)n);
        sqlite3_reset(st);
        return 1;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return fail(L, s, "get");
    lua_pushnil(L);
    return 1;
}

static int l_put(lua_State *L)
{
    struct store *s = checkstore(L, "sf.store:put");
    size_t vlen;
    const char *value;
    sqlite3_stmt *st;
    int rc, nret = 0;
    luaL_checkstring(L, 2);
    if (lua_type(L, 3) != LUA_TSTRING)
        return luaL_argerror(L, 3, "sf.store:put: value must be a string");
    value = lua_tolstring(L, 3, &vlen);
    st = keyed(L, s, ST_PUT, "put", &nret);
    if (st == NULL) return nret;
    rc = bind(st, 2, value, vlen, 1);
    if (rc != SQLITE_OK) return fail_bind(L, st, "put", rc);
    if (exec_stmt(st) != 0) return fail(L, s, "put");
    lua_pushboolean(L, 1);
    return 1;
}

static int l_delete(lua_State *L)
{
    struct store *s = checkstore(L, "sf.store:delete");
    int nret = 0;
    sqlite3_stmt *st = keyed(L, s, ST_DELETE, "delete", &nret);
    if (st == NULL) return nret;
    if (exec_stmt(st) != 0) return fail(L, s, "delete");
    lua_pushboolean(L, 1);
    return 1;
}

static int l_count(lua_State *L)
{
    struct store *s = checkstore(L, "sf.store:count");
    sqlite3_stmt *st = stmt(s, ST_COUNT);
    lua_Integer n;
    if (st == NULL || sqlite3_step(st) != SQLITE_ROW) {
        if (st != NULL) sqlite3_reset(st);
        return fail(L, s, "count");
    }
    n = (lua_Integer)sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    lua_pushinteger(L, n);
    return 1;
}

static int simple(lua_State *L, int which, const char *api, const char *what)
{
    struct store *s = checkstore(L, api);
    sqlite3_stmt *st = stmt(s, which);
    if (st == NULL || exec_stmt(st) != 0) return fail(L, s, what);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_begin(lua_State *L)
{
    return simple(L, ST_BEGIN, "sf.store:begin", "begin");
}

static int l_commit(lua_State *L)
{
    return simple(L, ST_COMMIT, "sf.store:commit", "commit");
}

static int l_rollback(lua_State *L)
{
    return simple(L, ST_ROLLBACK, "sf.store:rollback", "rollback");
}

static int l_close(lua_State *L)
{
    store_close(luaL_checkudata(L, 1, STORE));
    return 0;
}

static int l_tostring(lua_State *L)
{
    struct store *s = luaL_checkudata(L, 1, STORE);
    lua_pushstring(L, s->db != NULL ? "sf.store" : "sf.store (closed)");
    return 1;
}

static const luaL_Reg funcs[] = {
    {"open", l_open},
    {NULL, NULL}
};

static const luaL_Reg methods[] = {
    {"get", l_get},
    {"put", l_put},
    {"delete", l_delete},
    {"count", l_count},
    {"begin", l_begin},
    {"commit", l_commit},
    {"rollback", l_rollback},
    {"close", l_close},
    {NULL, NULL}
};

static const luaL_Reg meta[] = {
    {"__gc", l_close},
    {"__close", l_close},
    {"__tostring", l_tostring},
    {"__index", NULL}, /* placeholder: set by sf_createmeta */
    {NULL, NULL}
};

int luaopen_sf_store(lua_State *L)
{
    sf_createmeta(L, STORE, meta, methods, NULL);
    luaL_newlib(L, funcs);
    return 1;
}
