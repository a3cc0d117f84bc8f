/* sf.page: one Salesforce query response page, tokenized once, zero-copy.
 *
 *   local page = require "sf.page"
 *   local p, err, code = page.parse(body)  -- body: raw JSON of /query or /queryAll
 *       -- malformed JSON:        nil, "malformed JSON at byte N: <what>", "JSON"
 *       -- JSON but not a page:   nil, "not a query response: <what>", "PAGE"
 *       --   (also done:false without a nextRecordsUrl path: more is due but
 *       --   unreachable, so the page is refused rather than taken as the last)
 *   p.total_size   -- totalSize (integer), nil when absent
 *   p.done         -- boolean (absent: true unless nextRecordsUrl is given)
 *   p.next_url     -- nextRecordsUrl, or nil on the last page
 *   #p             -- number of records on this page
 *   p:record(i)    -- record i (1-based) decoded as a table, cjson semantics
 *                  -- (null -> cjson.null; integer literals -> integers)
 *   for i, rec in p:records() do ... end   -- like ipairs over decoded records
 *   p:raw(i)       -- JSON text of record i, verbatim from the body
 *   p:close()      -- frees the tokens now (also __gc/__close); idempotent
 *
 * The page keeps a reference to the body string (user value 1) and points
 * into it; tokens (about 20 bytes per JSON value) come from the Lua state's
 * allocator, so a memory cap on the state sees them. Index out of range or
 * use after close raises.
 */
#include <lua.h>
#include <lauxlib.h>
#include <string.h>

#include "alloc.h"
#include "page.h"
#include "util.h"

int luaopen_sf_page(lua_State *L);

/* ---- decoding tokens to Lua values (shared with sf.mapper) ---- */

static uint32_t push_tok(lua_State *L, const char *s, const json_tok *toks, uint32_t i,
                         int depth);

static void push_number(lua_State *L, const char *s, const json_tok *t)
{
    size_t n = t->end - t->start;
    const char *p = s + t->start;
    char buf[64];
    if (t->flags & JSON_F_INTEGER) {
        int64_t v;
        if (json_number_int64(p, n, &v) == 1) {
            lua_pushinteger(L, (lua_Integer)v);
            return;
        }
    }
    if (n < sizeof buf) {
        memcpy(buf, p, n);
        buf[n] = '\0';
        if (lua_stringtonumber(L, buf) != 0) return;
    } else {
        lua_pushlstring(L, p, n);  /* stack: str */
        if (lua_stringtonumber(L, lua_tostring(L, -1)) != 0) {
            lua_remove(L, -2);
            return;
        }
        lua_pop(L, 1);
    }
    lua_pushnumber(L, 0.0);  /* unreachable for validated JSON numbers */
}

static uint32_t push_tok(lua_State *L, const char *s, const json_tok *toks, uint32_t i,
                         int depth)
{
    const json_tok *t = &toks[i];
    uint32_t k, j;
    switch (t->type) {
    case JSON_OBJECT:
        luaL_checkstack(L, 3, "sf.page: JSON nested too deep");
        lua_createtable(L, 0, (int)(t->size < 1024 ? t->size : 1024));
        for (k = 0, j = i + 1; k < t->size; k++) {
            j = push_tok(L, s, toks, j, depth + 1);      /* key */
            j = push_tok(L, s, toks, j, depth + 1);      /* value */
            lua_rawset(L, -3);
        }
        return i + t->skip;
    case JSON_ARRAY:
        luaL_checkstack(L, 3, "sf.page: JSON nested too deep");
        lua_createtable(L, (int)(t->size < 65536 ? t->size : 65536), 0);
        for (k = 0, j = i + 1; k < t->size; k++) {
            j = push_tok(L, s, toks, j, depth + 1);
            lua_rawseti(L, -2, (lua_Integer)k + 1);
        }
        return i + t->skip;
    case JSON_STRING:
        if (t->flags & JSON_F_ESCAPED) {
            luaL_Buffer b;
            char *p = luaL_buffinitsize(L, &b, t->end - t->start);
            luaL_pushresultsize(&b, json_unescape(s, t, p));
        } else {
            lua_pushlstring(L, s + t->start, t->end - t->start);
        }
        return i + 1;
    case JSON_NUMBER:
        push_number(L, s, t);
        return i + 1;
    case JSON_TRUE:
    case JSON_FALSE:
        lua_pushboolean(L, t->type == JSON_TRUE);
        return i + 1;
    default:
        lua_pushlightuserdata(L, NULL);  /* cjson.null */
        return i + 1;
    }
}

void sf_json_push(lua_State *L, const char *s, const json_tok *toks, uint32_t i)
{
    luaL_checkstack(L, 4, "sf.page: stack overflow");
    (void)push_tok(L, s, toks, i, 0);
}

/* ---- the page userdata ---- */

static void page_free(sf_page *p)
{
    if (p->recs != NULL)
        p->alloc(p->alloc_ud, p->recs, (size_t)p->nrec * sizeof(uint32_t), 0);
    p->recs = NULL;
    if (p->toks != NULL)
        p->alloc(p->alloc_ud, p->toks, (size_t)p->cap * sizeof(json_tok), 0);
    p->toks = NULL;
    p->nrec = 0;
    p->ntok = 0;
    p->cap = 0;
}

sf_page *sf_page_check(lua_State *L, int idx, const char *api)
{
    sf_page *p = luaL_checkudata(L, idx, SF_PAGE_MT);
    if (p->toks == NULL)
        luaL_error(L, "%s: the page is closed", api);
    return p;
}

/* A new page userdata, closed, over the string at index body (kept alive
 * as the page's user value). stack: ... -> ..., page */
static sf_page *new_page(lua_State *L, int body)
{
    void *ud;
    sf_alloc_fn af = (sf_alloc_fn)lua_getallocf(L, &ud);
    sf_page *p;
    body = lua_absindex(L, body);
    p = lua_newuserdatauv(L, sizeof *p, 1);
    memset(p, 0, sizeof *p);
    p->alloc = af;
    p->alloc_ud = ud;
    p->total_tok = -1;
    p->next_tok = -1;
    luaL_setmetatable(L, SF_PAGE_MT);
    lua_pushvalue(L, body);
    lua_setiuservalue(L, -2, 1);  /* the page keeps the body alive */
    p->body = lua_tolstring(L, body, &p->len);
    return p;
}

void sf_page_push(lua_State *L, int body, const json_tok *toks, uint32_t ntok, const uint32_t *recs,
                  uint32_t nrec)
{
    sf_page *p = new_page(L, body);
    uint32_t cap = ntok > 0 ? ntok : 1; /* an open page always has a token array */
    p->done = 1;
    p->toks = p->alloc(p->alloc_ud, NULL, 0, (size_t)cap * sizeof(json_tok));
    if (p->toks == NULL) luaL_error(L, "sf.page: not enough memory");
    p->cap = cap;
    if (nrec > 0) {
        p->recs = p->alloc(p->alloc_ud, NULL, 0, (size_t)nrec * sizeof(uint32_t));
        if (p->recs == NULL) {
            page_free(p);
            luaL_error(L, "sf.page: not enough memory");
        }
        memcpy(p->recs, recs, (size_t)nrec * sizeof(uint32_t));
        p->nrec = nrec;
    }
    if (ntok > 0) memcpy(p->toks, toks, (size_t)ntok * sizeof(json_tok));
    else memset(p->toks, 0, sizeof(json_tok));
    p->ntok = ntok;
}

/* page.parse(body) -> page | nil, message, code */
static int l_parse(lua_State *L)
{
    size_t len;
    const char *body = luaL_checklstring(L, 1, &len);
    json_parser jp;
    sf_page *p;
    long rtok, dtok;
    uint32_t k, j;
    const char *err = NULL;

    /* The userdata exists, closed, before anything is allocated. */
    p = new_page(L, 1);
    json_parser_init(&jp, p->alloc, p->alloc_ud);
    if (json_parse(&jp, body, len) != 0) {
        if (json_parse_oom(&jp)) {
            json_parser_free(&jp);
            return luaL_error(L, "sf.page.parse: not enough memory");
        }
        size_t off = jp.err_off;
        const char *what = jp.err_msg; /* static text */
        json_parser_free(&jp);         /* before anything that may raise */
        return sf_pushfail(L, "JSON", "malformed JSON at byte %I: %s", (lua_Integer)off, what);
    }
    /* ownership of the token array moves to the page (freed by page_free) */
    p->toks = jp.toks;
    p->ntok = jp.ntok;
    p->cap = jp.cap;

    if (p->toks[0].type != JSON_OBJECT) {
        err = "expected a JSON object";
        goto fail;
    }
    rtok = json_obj_get(body, p->toks, 0, "records", 7);
    if (rtok < 0 || p->toks[rtok].type != JSON_ARRAY) {
        err = "records must be an array";
        goto fail;
    }
    p->total_tok = json_obj_get(body, p->toks, 0, "totalSize", 9);
    if (p->total_tok >= 0 && p->toks[p->total_tok].type != JSON_NUMBER) {
        if (p->toks[p->total_tok].type != JSON_NULL) {
            err = "totalSize must be a number";
            goto fail;
        }
        p->total_tok = -1;
    }
    p->next_tok = json_obj_get(body, p->toks, 0, "nextRecordsUrl", 14);
    if (p->next_tok >= 0 && p->toks[p->next_tok].type != JSON_STRING) {
        if (p->toks[p->next_tok].type != JSON_NULL) {
            err = "nextRecordsUrl must be a string";
            goto fail;
        }
        p->next_tok = -1;
    }
    dtok = json_obj_get(body, p->toks, 0, "done", 4);
    if (dtok >= 0 && p->toks[dtok].type != JSON_TRUE && p->toks[dtok].type != JSON_FALSE) {
        err = "done must be a boolean";
        goto fail;
    }
    p->done = dtok >= 0 ? p->toks[dtok].type == JSON_TRUE : p->next_tok < 0;
    if (!p->done && (p->next_tok < 0 || p->toks[p->next_tok].end == p->toks[p->next_tok].start
                     || body[p->toks[p->next_tok].start] != '/')) {
        /* A page that says there is more but gives no way to it is not the
         * last page: taking it as one would end the read silently short. */
        err = "done is false but nextRecordsUrl is missing, empty or not a path";
        goto fail;
    }

    if (p->toks[rtok].size > 0) {
        uint32_t n = p->toks[rtok].size;
        size_t bytes;
        if (sf_size_mul(n, sizeof(uint32_t), &bytes) == 0) p->recs = p->alloc(p->alloc_ud, NULL, 0, bytes);
        if (p->recs == NULL) {
            page_free(p);
            return luaL_error(L, "sf.page.parse: not enough memory");
        }
        p->nrec = n;
        for (k = 0, j = (uint32_t)rtok + 1; k < n; k++) {
            p->recs[k] = j;
            j += p->toks[j].skip;
        }
    }
    return 1;

fail:
    page_free(p);
    return sf_pushfail(L, "PAGE", "not a query response: %s", err);
}

static uint32_t check_index(lua_State *L, sf_page *p, const char *api)
{
    lua_Integer i = luaL_checkinteger(L, 2);
    if (i < 1 || (lua_Unsigned)i > p->nrec)
        luaL_argerror(L, 2, lua_pushfstring(L, "%s: index %I out of range 1..%I", api, i,
                                            (lua_Integer)p->nrec));
    return (uint32_t)(i - 1);
}

static int l_record(lua_State *L)
{
    sf_page *p = sf_page_check(L, 1, "sf.page.record");
    uint32_t k = check_index(L, p, "sf.page.record");
    sf_json_push(L, p->body, p->toks, p->recs[k]);
    return 1;
}

static int l_raw(lua_State *L)
{
    sf_page *p = sf_page_check(L, 1, "sf.page.raw");
    uint32_t k = check_index(L, p, "sf.page.raw");
    const json_tok *t = &p->toks[p->recs[k]];
    uint32_t start = t->start, end = t->end;
    if (t->type == JSON_STRING) {  /* include the quotes */
        start--;
        end++;
    }
    lua_pushlstring(L, p->body + start, end - start);
    return 1;
}

static int records_iter(lua_State *L)
{
    sf_page *p = sf_page_check(L, 1, "sf.page.records");
    lua_Integer i = luaL_checkinteger(L, 2);
    if (i < 0 || (lua_Unsigned)i >= p->nrec) return 0;
    lua_pushinteger(L, i + 1);
    sf_json_push(L, p->body, p->toks, p->recs[i]);
    return 2;
}

static int l_records(lua_State *L)
{
    sf_page_check(L, 1, "sf.page.records");
    lua_pushcfunction(L, records_iter);
    lua_pushvalue(L, 1);
    lua_pushinteger(L, 0);
    return 3;
}

static int l_close(lua_State *L)
{
    sf_page *p = luaL_checkudata(L, 1, SF_PAGE_MT);
    if (p->pinned > 0)
        return luaL_error(L, "sf.page.close: the page is being mapped");
    page_free(p);
    return 0;
}

static int l_gc(lua_State *L)
{
    sf_page *p = luaL_checkudata(L, 1, SF_PAGE_MT);
    page_free(p);  /* pinned pages are on a C stack frame: never collected */
    return 0;
}

static int l_len(lua_State *L)
{
    sf_page *p = sf_page_check(L, 1, "sf.page");
    lua_pushinteger(L, (lua_Integer)p->nrec);
    return 1;
}

static int l_tostring(lua_State *L)
{
    sf_page *p = luaL_checkudata(L, 1, SF_PAGE_MT);
    if (p->toks == NULL)
        lua_pushliteral(L, "sf.page (closed)");
    else
        lua_pushfstring(L, "sf.page (%I records)", (lua_Integer)p->nrec);
    return 1;
}

/* __index: methods (upvalue 1), then the page fields. */
static int l_index(lua_State *L)
{
    sf_page *p = luaL_checkudata(L, 1, SF_PAGE_MT);
    const char *k;
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
    if (lua_type(L, 2) != LUA_TSTRING) return 1;  /* nil */
    k = lua_tostring(L, 2);
    if (strcmp(k, "total_size") == 0) {
        sf_page_check(L, 1, "sf.page.total_size");
        if (p->total_tok < 0) {
            lua_pushnil(L);
        } else {
            sf_json_push(L, p->body, p->toks, (uint32_t)p->total_tok);
            lua_Integer v;
            if (lua_isinteger(L, -1) == 0 && lua_numbertointeger(lua_tonumber(L, -1), &v)) {
                lua_pop(L, 1);
                lua_pushinteger(L, v);
            }
        }
        return 1;
    }
    if (strcmp(k, "done") == 0) {
        sf_page_check(L, 1, "sf.page.done");
        lua_pushboolean(L, p->done);
        return 1;
    }
    if (strcmp(k, "next_url") == 0) {
        sf_page_check(L, 1, "sf.page.next_url");
        if (p->next_tok < 0) lua_pushnil(L);
        else sf_json_push(L, p->body, p->toks, (uint32_t)p->next_tok);
        return 1;
    }
    lua_pushnil(L);
    return 1;
}

static const luaL_Reg page_funcs[] = {
    {"parse", l_parse},
    {NULL, NULL}
};

static const luaL_Reg page_methods[] = {
    {"record", l_record},
    {"records", l_records},
    {"raw", l_raw},
    {"close", l_close},
    {NULL, NULL}
};

static const luaL_Reg page_meta[] = {
    {"__len", l_len},
    {"__gc", l_gc},
    {"__close", l_close},
    {"__tostring", l_tostring},
    {"__index", NULL},  /* placeholder: l_index, set by sf_createmeta */
    {NULL, NULL}
};

int luaopen_sf_page(lua_State *L)
{
    luaL_newlib(L, page_funcs);
    sf_createmeta(L, SF_PAGE_MT, page_meta, page_methods, l_index);
    return 1;
}
