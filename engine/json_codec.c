/* sf.json: JSON for the export's hot path, in C: exact numbers both ways and
 * sorted keys, so a record's text, its trigger hash and a request body are
 * the same on every run.
 *
 *   local json = require "sf.json"
 *   json.decode('{"n":9007199254740993,"x":1.5,"z":null}')
 *       --> { n = 9007199254740993 (an integer), x = 1.5, z = json.null }
 *       malformed: nil, "malformed JSON at byte N: <what>", "JSON"
 *   json.encode { b = 1, a = { 0.1, true } }  --> '{"a":[0.1,true],"b":1}'
 *   json.null   -- the JSON null both ways (cjson.null: the NULL light userdata)
 *
 * decode: RFC 8259, strictly (engine/json.c: valid UTF-8, no trailing commas,
 * nesting at most 256); integer literals that fit int64 become Lua integers,
 * every other number a float (9007199254740993 stays exact, where cjson reads
 * every number as a double); objects and arrays become plain tables.
 *
 * encode: the format sf.export has always hashed and sent, byte for byte:
 *   strings   escaped as lua-cjson escapes them: '"', '\\', '/' (as "\/"),
 *             \b \t \n \f \r, other control characters and DEL as \u00XX;
 *             UTF-8 copied as it is
 *   numbers   integers exactly; floats as mappings/numbers.lua writes them
 *             (integral values in int64 range as integers, else the fewest
 *             %g digits that read back: coerce.c's twin of that rule); NaN
 *             and infinities as null
 *   tables    with #t > 0: an array of t[1..#t]; an empty table: [] (the
 *             Debian lua-cjson has no empty_array_mt, so the Lua encoder this
 *             replaces wrote every empty table so); otherwise an object whose
 *             keys (tostring of each key) are sorted bytewise, each value
 *             t[key] (or t[tonumber(key)] for a number key)
 *   true, false; nil and json.null -> null; anything else (functions,
 *   userdata, threads) -> null
 * Nesting deeper than 100 raises (a table that contains itself). */
#include <lua.h>
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "coerce.h"
#include "json.h"
#include "page.h"
#include "strbuf.h"
#include "util.h"

int luaopen_sf_json(lua_State *L);

#define SCRATCH "sf.json.scratch"
#define MAX_DEPTH 100

/* Per-state scratch: the token array of decode, the text of encode. Reused
 * from call to call; freed by __gc. */
typedef struct scratch {
    json_parser jp;
    sf_strbuf out;
} scratch;

static int scratch_gc(lua_State *L)
{
    scratch *sc = luaL_checkudata(L, 1, SCRATCH);
    json_parser_free(&sc->jp);
    sf_strbuf_free(&sc->out);
    return 0;
}

/* ---- decode ---- */

static int l_decode(lua_State *L)
{
    scratch *sc = lua_touserdata(L, lua_upvalueindex(1));
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    if (json_parse(&sc->jp, s, len) != 0) {
        if (json_parse_oom(&sc->jp)) return luaL_error(L, "sf.json.decode: not enough memory");
        return sf_pushfail(L, "JSON", "malformed JSON at byte %I: %s", (lua_Integer)sc->jp.err_off,
                           sc->jp.err_msg);
    }
    sf_json_push(L, s, sc->jp.toks, 0);
    return 1;
}

/* ---- encode ---- */

/* What lua-cjson writes for bytes below 0x80 that need escaping (NULL: as is). */
static const char *escape_of(unsigned char ch)
{
    static const char *const low[32] = {
        "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007",
        "\\b", "\\t", "\\n", "\\u000b", "\\f", "\\r", "\\u000e", "\\u000f",
        "\\u0010", "\\u0011", "\\u0012", "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017",
        "\\u0018", "\\u0019", "\\u001a", "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f",
    };
    if (ch < 32) return low[ch];
    switch (ch) {
    case '"': return "\\\"";
    case '\\': return "\\\\";
    case '/': return "\\/";
    case 127: return "\\u007f";
    default: return NULL;
    }
}

static void enc_nomem(lua_State *L)
{
    luaL_error(L, "sf.json.encode: not enough memory");
}

static void put(lua_State *L, sf_strbuf *b, const char *p, size_t n)
{
    if (sf_strbuf_add(b, p, n) != 0) enc_nomem(L);
}

static void put_string(lua_State *L, sf_strbuf *b, const char *s, size_t n)
{
    size_t i, run = 0;
    if (sf_strbuf_reserve(b, n + 2) != 0) enc_nomem(L);
    b->p[b->n++] = '"';
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        const char *esc = (ch < 32 || ch == '"' || ch == '\\' || ch == '/' || ch == 127) ? escape_of(ch) : NULL;
        if (esc == NULL) continue;
        put(L, b, s + run, i - run);
        put(L, b, esc, strlen(esc));
        run = i + 1;
    }
    put(L, b, s + run, n - run);
    put(L, b, "\"", 1);
}

static void put_number(lua_State *L, sf_strbuf *b, int idx)
{
    char tmp[64];
    sf_num x;
    size_t n;
    memset(&x, 0, sizeof x);
    if (lua_isinteger(L, idx)) {
        x.is_int = 1;
        x.i = (int64_t)lua_tointeger(L, idx);
    } else {
        x.d = (double)lua_tonumber(L, idx);
        if (!isfinite(x.d)) {
            put(L, b, "null", 4);
            return;
        }
    }
    n = sf_number_text(&x, tmp);
    put(L, b, tmp, n);
}

typedef struct key {
    const char *s;
    size_t n;
    int slot; /* stack index of its string */
} key;

static int key_cmp(const void *a, const void *b)
{
    const key *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->s, y->s, n);
    if (c != 0) return c;
    return x->n < y->n ? -1 : x->n > y->n;
}

static void enc_value(lua_State *L, scratch *sc, int idx, int depth);

/* Whether the table at idx has no key at all. */
static int is_empty(lua_State *L, int idx)
{
    lua_pushnil(L);
    if (lua_next(L, idx) == 0) return 1;
    lua_pop(L, 2);
    return 0;
}

static void enc_table(lua_State *L, scratch *sc, int idx, int depth)
{
    sf_strbuf *b = &sc->out;
    lua_Integer n, i;
    int base, nk, k;
    key *keys;
    lua_len(L, idx);
    n = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 0;
    lua_pop(L, 1);
    if (n > 0 || is_empty(L, idx)) {
        put(L, b, "[", 1);
        for (i = 1; i <= n; i++) {
            if (i > 1) put(L, b, ",", 1);
            lua_geti(L, idx, i);
            enc_value(L, sc, lua_gettop(L), depth + 1);
            lua_pop(L, 1);
        }
        put(L, b, "]", 1);
        return;
    }
    /* the keys as strings on the stack, then sorted */
    base = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {   /* stack: ..., strings, key, value */
        lua_pop(L, 1);
        luaL_checkstack(L, 3, "sf.json.encode: too many keys");
        lua_pushvalue(L, -1);
        luaL_tolstring(L, -1, NULL);  /* stack: ..., strings, key, key, string */
        lua_remove(L, -2);
        lua_insert(L, -2);            /* stack: ..., strings, string, key */
    }
    nk = lua_gettop(L) - base;
    keys = lua_newuserdatauv(L, (size_t)(nk > 0 ? nk : 1) * sizeof *keys, 0); /* freed by the GC */
    for (k = 0; k < nk; k++) {
        keys[k].slot = base + 1 + k;
        keys[k].s = lua_tolstring(L, keys[k].slot, &keys[k].n);
    }
    qsort(keys, (size_t)nk, sizeof *keys, key_cmp);
    put(L, b, "{", 1);
    for (k = 0; k < nk; k++) {
        if (k > 0) put(L, b, ",", 1);
        put_string(L, b, keys[k].s, keys[k].n);
        put(L, b, ":", 1);
        lua_pushvalue(L, keys[k].slot);
        lua_gettable(L, idx);                         /* t[key] */
        if (lua_isnil(L, -1) && lua_stringtonumber(L, keys[k].s) != 0) {
            lua_remove(L, -2);
            lua_gettable(L, idx);                     /* t[tonumber(key)] */
        }
        enc_value(L, sc, lua_gettop(L), depth + 1);
        lua_pop(L, 1);
    }
    put(L, b, "}", 1);
    lua_settop(L, base);
}

static void enc_value(lua_State *L, scratch *sc, int idx, int depth)
{
    size_t n;
    const char *s;
    if (depth > MAX_DEPTH) luaL_error(L, "sf.json.encode: nested deeper than %d", MAX_DEPTH);
    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &n);
        put_string(L, &sc->out, s, n);
        break;
    case LUA_TNUMBER:
        put_number(L, &sc->out, idx);
        break;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx)) put(L, &sc->out, "true", 4);
        else put(L, &sc->out, "false", 5);
        break;
    case LUA_TTABLE:
        luaL_checkstack(L, 8, "sf.json.encode: nested too deep");
        enc_table(L, sc, idx, depth);
        break;
    default: /* nil, json.null, functions, userdata, threads */
        put(L, &sc->out, "null", 4);
        break;
    }
}

static int l_encode(lua_State *L)
{
    scratch *sc = lua_touserdata(L, lua_upvalueindex(1));
    luaL_checkany(L, 1);
    lua_settop(L, 1);
    sc->out.n = 0;
    enc_value(L, sc, 1, 0);
    lua_pushlstring(L, sc->out.p != NULL ? sc->out.p : "", sc->out.n);
    if (sc->out.cap > (1u << 20)) sf_strbuf_free(&sc->out); /* a huge document's buffer goes */
    return 1;
}

static const luaL_Reg funcs[] = {
    {"decode", l_decode},
    {"encode", l_encode},
    {NULL, NULL}
};

static const luaL_Reg scratch_meta[] = {
    {"__gc", scratch_gc},
    {NULL, NULL}
};

int luaopen_sf_json(lua_State *L)
{
    scratch *sc;
    void *ud;
    sf_alloc_fn af = (sf_alloc_fn)lua_getallocf(L, &ud);
    sf_createmeta(L, SCRATCH, scratch_meta, NULL, NULL);
    sc = lua_newuserdatauv(L, sizeof *sc, 0);    /* stack: scratch */
    memset(sc, 0, sizeof *sc);
    json_parser_init(&sc->jp, af, ud);
    sf_strbuf_init(&sc->out, af, ud);
    luaL_setmetatable(L, SCRATCH);
    luaL_newlibtable(L, funcs);                   /* stack: scratch, module */
    lua_pushvalue(L, -2);
    luaL_setfuncs(L, funcs, 1);
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    lua_remove(L, -2);                            /* stack: module */
    return 1;
}
