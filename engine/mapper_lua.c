/* sf.mapper's Lua bridge: calling a row's transform and the opts.types
 * rules (through opts.call when given), and encoding what they return as
 * JSON, so that the rest of the mapper handles a Lua result exactly like a
 * value of the page. Lua values are read raw (lua_next, lua_rawgeti): no
 * metamethod of a returned table runs. */
#include "mapper_state.h"

#include <lauxlib.h>
#include <string.h>

#define ENC_MAX_DEPTH 32

void sf_mapper_push_values(mctx *c, size_t lo, size_t hi, int multi)
{
    lua_State *L = c->L;
    size_t i;
    if (!multi) {
        sf_json_push(L, c->m->vec[lo].s, c->m->vec[lo].t, 0);
        return;
    }
    lua_createtable(L, (int)(hi - lo), 0);
    for (i = lo; i < hi; i++) {
        sf_json_push(L, c->m->vec[i].s, c->m->vec[i].t, 0);
        lua_rawseti(L, -2, (lua_Integer)(i - lo + 1));
    }
}

/* The reason from the Lua value at idx, read without metamethods. */
static void reason_lua(mctx *c, int idx, const char *fallback)
{
    lua_State *L = c->L;
    sf_strbuf *r = &c->m->co.reason;
    r->n = 0;
    if (lua_type(L, idx) == LUA_TSTRING || lua_type(L, idx) == LUA_TNUMBER) {
        size_t n;
        const char *p = lua_tolstring(L, idx, &n);
        mb_add(c, r, p, n);
    } else if (lua_isnoneornil(L, idx)) {
        mb_add(c, r, fallback, strlen(fallback));
    } else {
        const char *tn = luaL_typename(L, idx);
        MB_LIT(c, r, "error object is a ");
        mb_add(c, r, tn, strlen(tn));
        MB_LIT(c, r, " value");
    }
}

static void reason_text(mctx *c, const char *a, const char *b)
{
    mcheck(c, sf_coerce_reason(&c->m->co, a, b));
}

int sf_mapper_call(mctx *c, int nargs)
{
    lua_State *L = c->L;
    int base = lua_gettop(L) - nargs - 1;
    int wrapped = c->m->call_ref != 0;
    if (lua_pcall(L, nargs, wrapped ? 3 : 2, 0) != LUA_OK) {
        reason_lua(c, -1, "error");
        lua_settop(L, base);
        return -1;
    }
    if (wrapped) {  /* stack: ok, value, reason */
        if (!lua_toboolean(L, -3)) {
            reason_lua(c, -2, "error");
            lua_settop(L, base);
            return -1;
        }
        lua_remove(L, -3);
    }
    /* stack: value, reason */
    if (lua_isnil(L, -2) || (lua_islightuserdata(L, -2) && lua_touserdata(L, -2) == NULL)) {
        int rc = 0;
        if (!lua_isnil(L, -1)) {
            reason_lua(c, -1, "rejected");
            rc = -1;
        }
        lua_settop(L, base);
        return rc;
    }
    lua_pop(L, 1);
    return 1;
}

int sf_mapper_push_callee(mctx *c, int ref)
{
    lua_State *L = c->L;
    luaL_checkstack(L, 8, "sf.mapper: stack overflow");
    if (c->m->call_ref) {
        lua_rawgeti(L, c->anchor, c->m->call_ref);
        lua_rawgeti(L, c->anchor, ref);
        return 1;  /* extra argument */
    }
    lua_rawgeti(L, c->anchor, ref);
    return 0;
}

/* 1 when the table at idx is a sequence 1..#t and nothing else. */
static int is_array(lua_State *L, int idx, lua_Integer len)
{
    lua_Integer count = 0;
    int array = 1;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        count++;
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > len)
            array = 0;
    }
    return array && count == len;
}

static int encode_array(mctx *c, sf_strbuf *b, int idx, lua_Integer len, int depth)
{
    lua_State *L = c->L;
    lua_Integer i;
    mb_addc(c, b, '[');
    for (i = 1; i <= len; i++) {
        if (i > 1) mb_addc(c, b, ',');
        lua_rawgeti(L, idx, i);
        if (sf_mapper_encode(c, b, -1, depth + 1) != 0) {
            lua_pop(L, 1);
            return -1;
        }
        lua_pop(L, 1);
    }
    mb_addc(c, b, ']');
    return 0;
}

static int encode_object(mctx *c, sf_strbuf *b, int idx, int depth)
{
    lua_State *L = c->L;
    int count = 0;
    mb_addc(c, b, '{');
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {  /* stack: key, value */
        size_t n;
        const char *k;
        if (lua_type(L, -2) != LUA_TSTRING) {
            lua_pop(L, 2);
            reason_text(c, "cannot encode a table with non-string keys", NULL);
            return -1;
        }
        if (count++ > 0) mb_addc(c, b, ',');
        k = lua_tolstring(L, -2, &n);
        if (sf_strbuf_json(b, k, n, SF_JSON_REPAIR, NULL) != 0) sf_mapper_nomem(L);
        mb_addc(c, b, ':');
        if (sf_mapper_encode(c, b, -1, depth + 1) != 0) {
            lua_pop(L, 2);
            return -1;
        }
        lua_pop(L, 1);
    }
    mb_addc(c, b, '}');
    return 0;
}

int sf_mapper_encode(mctx *c, sf_strbuf *b, int idx, int depth)
{
    lua_State *L = c->L;
    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        MB_LIT(c, b, "null");
        return 0;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) { /* cjson.null */
            MB_LIT(c, b, "null");
            return 0;
        }
        break;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx)) MB_LIT(c, b, "true");
        else MB_LIT(c, b, "false");
        return 0;
    case LUA_TNUMBER: {
        sf_num x;
        x.is_int = lua_isinteger(L, idx);
        if (x.is_int) x.i = (int64_t)lua_tointeger(L, idx);
        else x.d = (double)lua_tonumber(L, idx);
        return mcheck(c, sf_coerce_put_number(&c->m->co, b, &x)) == 1 ? 0 : -1;
    }
    case LUA_TSTRING: {
        size_t n;
        const char *p = lua_tolstring(L, idx, &n);
        if (sf_strbuf_json(b, p, n, SF_JSON_REPAIR, NULL) != 0) sf_mapper_nomem(L);
        return 0;
    }
    case LUA_TTABLE: {
        lua_Integer len = (lua_Integer)lua_rawlen(L, idx);
        if (depth >= ENC_MAX_DEPTH) {
            reason_text(c, "cannot encode a table nested too deep", NULL);
            return -1;
        }
        luaL_checkstack(L, 4, "sf.mapper: stack overflow");
        if (is_array(L, idx, len)) return encode_array(c, b, idx, len, depth);
        return encode_object(c, b, idx, depth);
    }
    default:
        break;
    }
    reason_text(c, "cannot encode a ", luaL_typename(L, idx));
    return -1;
}

int sf_mapper_lua_values(mctx *c)
{
    sf_mapper *m = c->m;
    m->lua_json.n = 0;
    if (sf_mapper_encode(c, &m->lua_json, -1, 0) != 0) return -1;
    if (m->tp == NULL) {
        m->tp = m->alloc(m->alloc_ud, NULL, 0, sizeof(json_parser));
        if (m->tp == NULL) sf_mapper_nomem(c->L);
        json_parser_init(m->tp, m->alloc, m->alloc_ud);
    }
    if (json_parse(m->tp, m->lua_json.p, m->lua_json.n) != 0) {
        if (json_parse_oom(m->tp)) sf_mapper_nomem(c->L);
        reason_text(c, "cannot encode the value", NULL);
        return -1;
    }
    vec_push(c, m->lua_json.p, &m->tp->toks[0]);
    return 0;
}

/* Appends JSON value v to the item list as one item (null: none). */
static void list_add_json(mctx *c, sf_value v, int dedup)
{
    sf_dedup *l = &c->m->list;
    size_t off = l->text.n, quoted = v.t->type == JSON_STRING;
    if (v.t->type == JSON_NULL) return;
    /* a string token spans its content: the quotes are one byte either side */
    mb_add(c, &l->text, v.s + v.t->start - quoted, v.t->end - v.t->start + 2 * quoted);
    if (sf_dedup_commit(l, off, dedup) != 0) sf_mapper_nomem(c->L);
}

int sf_mapper_coerce_lua(mctx *c, const row *r, sf_strbuf *b, int list, int dedup)
{
    lua_State *L = c->L;
    sf_mapper *m = c->m;
    int extra, rc;
    /* stack: value */
    extra = sf_mapper_push_callee(c, m->types_ref[r->type]);  /* stack: value, [call], fn */
    lua_rotate(L, -2 - extra, -1);                            /* stack: [call], fn, value */
    rc = sf_mapper_call(c, 1 + extra);
    if (rc <= 0) return rc;
    /* stack: result */
    if (!list) {
        size_t mark = b->n;
        if (sf_mapper_encode(c, b, -1, 0) != 0) {
            b->n = mark;
            rc = -1;
        }
    } else {
        size_t base = m->nvec;
        if (sf_mapper_lua_values(c) != 0) {
            rc = -1;
        } else {
            sf_value v = m->vec[base];
            if (v.t->type == JSON_ARRAY) {
                const json_tok *e = v.t + 1;
                uint32_t k;
                for (k = 0; k < v.t->size; k++, e += e->skip) {
                    sf_value ev = {v.s, e};
                    list_add_json(c, ev, dedup);
                }
            } else {
                list_add_json(c, v, dedup);
            }
        }
        m->nvec = base;
    }
    lua_pop(L, 1);
    return rc;
}
