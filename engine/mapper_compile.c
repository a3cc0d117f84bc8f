/* sf.mapper.compile(rows, opts): rows and opts -> a compiled mapping.
 *
 * Rows and opts are read raw (no metamethod runs). Every key the C side
 * reads is checked for what C needs to read it safely (its type, its
 * values, bounded sizes), and misuse raises naming the API and the field
 * ("sf.mapper.compile: rows[3].type must be one of ..."). The rules across
 * a row's keys are not checked here: the one row schema every user-facing
 * validator reads (scripts/sf/mapping/schema.lua) holds them, with messages
 * naming the mapping, the row and the field. Given such a row anyway, C
 * does something defined: no sf and no const -- the field is never written;
 * const and sf -- the const; combine "all" on a scalar type -- the values
 * together, rejected as a table; derive on a const -- the time, which is no
 * email address.
 * Everything compiled (strings, segment arrays, functions) is anchored in
 * the mapper's user value, so it lives exactly as long as the mapper. */
#include "mapper_state.h"

#include <lauxlib.h>
#include <string.h>

#define MAX_ROWS 100000
#define MAX_SOURCES 64

/* Compile-time stack: 1 rows, 2 opts, 3 mapper, 4 anchor table. */
#define ANCHOR 4

static int anchor_top(lua_State *L, sf_mapper *m)
{
    lua_rawseti(L, ANCHOR, ++m->nanchor);
    return m->nanchor;
}

/* Zeroed memory for count elements of size bytes, owned by the anchor table
 * (collected with the mapper). */
static void *cnew(lua_State *L, sf_mapper *m, size_t count, size_t size)
{
    size_t bytes;
    void *p;
    if (sf_size_mul(count, size, &bytes) != 0) sf_mapper_nomem(L);
    if (bytes == 0) bytes = 1;
    p = lua_newuserdatauv(L, bytes, 0);
    memset(p, 0, bytes);
    anchor_top(L, m);
    return p;
}

static const char *anchor_string(lua_State *L, sf_mapper *m, int idx, size_t *len)
{
    const char *s;
    lua_pushvalue(L, idx);
    s = lua_tolstring(L, -1, len);
    anchor_top(L, m);
    return s;
}

/* JSON-quoted s plus suffix, anchored. Built in a buffer the mapper owns,
 * so a raise on the way leaks nothing. */
static const char *anchor_json(lua_State *L, sf_mapper *m, const char *s, size_t n,
                               const char *suffix, size_t *len)
{
    sf_strbuf *b = &m->lua_json;
    const char *r;
    b->n = 0;
    if (sf_strbuf_json(b, s, n, SF_JSON_REPAIR, NULL) != 0 ||
        sf_strbuf_add(b, suffix, strlen(suffix)) != 0)
        sf_mapper_nomem(L);
    lua_pushlstring(L, b->p, b->n);
    r = lua_tolstring(L, -1, len);
    anchor_top(L, m);
    return r;
}

static int rawfield(lua_State *L, int t, const char *k)
{
    lua_pushstring(L, k);
    return lua_rawget(L, t);
}

/* ---- opts ---- */

/* opts[name] (a non-empty string) as JSON, anchored. */
static const char *compile_name(lua_State *L, sf_mapper *m, const char *name, size_t *len)
{
    size_t n;
    const char *s, *json;
    if (rawfield(L, 2, name) != LUA_TSTRING || lua_rawlen(L, -1) == 0)
        luaL_error(L, "sf.mapper.compile: opts.%s must be a non-empty string", name);
    s = lua_tolstring(L, -1, &n);
    json = anchor_json(L, m, s, n, "", len);
    lua_pop(L, 1);
    return json;
}

static void compile_timestamp(lua_State *L, sf_mapper *m)
{
    size_t n;
    int t = rawfield(L, 2, "timestamp_field");
    if (t == LUA_TNIL) {
        m->ts_seg.key = "LastModifiedDate";
        m->ts_seg.len = 16;
    } else if (t != LUA_TSTRING || lua_rawlen(L, -1) == 0 || lua_rawlen(L, -1) >= UINT32_MAX) {
        luaL_error(L, "sf.mapper.compile: opts.timestamp_field must be a non-empty string");
    } else {
        m->ts_seg.key = anchor_string(L, m, -1, &n);
        m->ts_seg.len = (uint32_t)n;
    }
    lua_pop(L, 1);
    m->id_seg.key = "Id";
    m->id_seg.len = 2;
    m->del_seg.key = "IsDeleted";
    m->del_seg.len = 9;
}

static void compile_now(lua_State *L, sf_mapper *m)
{
    int t = rawfield(L, 2, "now");
    if (t == LUA_TSTRING) {
        m->now = anchor_string(L, m, -1, &m->nowlen);
        if (!json_utf8_valid(m->now, m->nowlen) || m->nowlen >= UINT32_MAX)
            luaL_error(L, "sf.mapper.compile: opts.now must be valid UTF-8");
    } else if (t != LUA_TNIL) {
        luaL_error(L, "sf.mapper.compile: opts.now must be a string");
    }
    lua_pop(L, 1);
}

/* opts.types: the Lua rules that replace C rules. */
static void compile_types(lua_State *L, sf_mapper *m)
{
    int t = rawfield(L, 2, "types");
    if (t == LUA_TTABLE) {
        int tt = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, tt) != 0) {  /* stack: types, key, value */
            size_t n = 0;
            const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &n) : NULL;
            int k = name != NULL ? sf_type_of(name, n) : -1;
            if (k < 0)
                luaL_error(L, "sf.mapper.compile: opts.types: unknown type %s",
                           name ? name : luaL_typename(L, -2));
            if (lua_type(L, -1) != LUA_TFUNCTION)
                luaL_error(L, "sf.mapper.compile: opts.types[\"%s\"] must be a function", name);
            m->types_ref[k] = anchor_top(L, m);  /* pops the value */
        }
    } else if (t != LUA_TNIL) {
        luaL_error(L, "sf.mapper.compile: opts.types must be a table");
    }
    lua_pop(L, 1);
}

static void compile_call(lua_State *L, sf_mapper *m)
{
    int t = rawfield(L, 2, "call");
    if (t == LUA_TFUNCTION) m->call_ref = anchor_top(L, m);
    else if (t != LUA_TNIL) luaL_error(L, "sf.mapper.compile: opts.call must be a function");
    else lua_pop(L, 1);
}

static void compile_opts(lua_State *L, sf_mapper *m)
{
    m->object_json = compile_name(L, m, "object", &m->object_json_len);
    m->stream_json = compile_name(L, m, "stream", &m->stream_json_len);
    compile_timestamp(L, m);
    compile_now(L, m);
    compile_types(L, m);
    compile_call(L, m);
}

/* ---- one row ---- */

/* Source path at idx (a string) for rows[i]: its segments. */
static void compile_src(lua_State *L, sf_mapper *m, src *sr, int idx, int i)
{
    size_t n, a, k;
    const char *s;
    if (lua_type(L, idx) != LUA_TSTRING)
        luaL_error(L, "sf.mapper.compile: rows[%d].sf must be a field path or an array of them", i);
    s = anchor_string(L, m, idx, &n);
    sr->nseg = 1;
    for (k = 0; k < n; k++)
        if (s[k] == '.') sr->nseg++;
    if (n == 0 || sr->nseg > SF_MAPPER_MAX_SEGS || n >= UINT32_MAX)
        luaL_error(L, "sf.mapper.compile: rows[%d].sf: bad field path \"%s\"", i, s);
    sr->segs = cnew(L, m, sr->nseg, sizeof(seg));
    for (a = 0, k = 0; k < sr->nseg; k++) {
        size_t e = a;
        while (e < n && s[e] != '.') e++;
        if (e == a)
            luaL_error(L, "sf.mapper.compile: rows[%d].sf: bad field path \"%s\"", i, s);
        sr->segs[k].key = s + a;
        sr->segs[k].len = (uint32_t)(e - a);
        a = e + 1;
    }
    sr->name_json = anchor_json(L, m, s, n, "", &sr->name_json_len);
}

/* Index of the string at idx in names, or -1. */
static int check_enum(lua_State *L, int idx, const char *const *names)
{
    int k;
    const char *s;
    if (lua_type(L, idx) != LUA_TSTRING) return -1;
    s = lua_tostring(L, idx);
    for (k = 0; names[k] != NULL; k++)
        if (strcmp(s, names[k]) == 0) return k;
    return -1;
}

/* rows[i] at t: the output key "\"to\":". */
static void compile_to(lua_State *L, sf_mapper *m, row *r, int t, int i)
{
    size_t n;
    const char *s;
    if (rawfield(L, t, "to") != LUA_TSTRING)
        luaL_error(L, "sf.mapper.compile: rows[%d].to must be a string", i);
    s = lua_tolstring(L, -1, &n);
    r->key = anchor_json(L, m, s, n, ":", &r->keylen);
    lua_pop(L, 1);
}

static void compile_type(lua_State *L, row *r, int t, int i)
{
    int k;
    rawfield(L, t, "type");
    if ((k = check_enum(L, -1, sf_type_names)) < 0) {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (k = 0; k < SF_NTYPES; k++) {
            if (k > 0) luaL_addstring(&b, ", ");
            luaL_addstring(&b, sf_type_names[k]);
        }
        luaL_pushresult(&b);
        luaL_error(L, "sf.mapper.compile: rows[%d].type must be one of %s", i, lua_tostring(L, -1));
    }
    r->type = (uint8_t)k;
    lua_pop(L, 1);
}

/* const = "now" (on top): the value is opts.now. */
static void compile_const(lua_State *L, sf_mapper *m, row *r, int i)
{
    static const char *const consts[] = {"now", NULL};
    if (check_enum(L, -1, consts) < 0)
        luaL_error(L, "sf.mapper.compile: rows[%d].const must be \"now\"", i);
    if (m->now == NULL)
        luaL_error(L, "sf.mapper.compile: rows[%d].const = \"now\" needs opts.now", i);
    r->is_const = 1;
    r->ctok.type = JSON_STRING;
    r->ctok.flags = JSON_F_RAW;
    r->ctok.end = (uint32_t)m->nowlen;
    r->ctok.skip = 1;
    r->src_json = "null";
    r->src_json_len = 4;
}

/* sf = {paths}: every path a source, their names joined for rejects. */
static void compile_src_list(lua_State *L, sf_mapper *m, row *r, int sfi, int i)
{
    lua_Integer j, ns = (lua_Integer)lua_rawlen(L, sfi);
    luaL_Buffer b;
    size_t n;
    const char *s;
    if (ns < 1 || ns > MAX_SOURCES)
        luaL_error(L, "sf.mapper.compile: rows[%d].sf must be a field path or an array "
                   "of 1 to 64 of them", i);
    r->nsrc = (uint32_t)ns;
    r->srcs = cnew(L, m, (size_t)ns, sizeof(src));
    for (j = 1; j <= ns; j++) {
        lua_rawgeti(L, sfi, j);
        compile_src(L, m, &r->srcs[j - 1], -1, i);
        lua_pop(L, 1);
    }
    luaL_buffinit(L, &b);
    for (j = 1; j <= ns; j++) {
        if (j > 1) luaL_addchar(&b, ',');
        lua_rawgeti(L, sfi, j);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    s = lua_tolstring(L, -1, &n);
    r->src_json = anchor_json(L, m, s, n, "", &r->src_json_len);
    lua_pop(L, 1);
}

/* Where the values come from: sf (alias from), or const. */
static void compile_sources(lua_State *L, sf_mapper *m, row *r, int t, int i)
{
    int st = rawfield(L, t, "sf");  /* stack: sf */
    if (st == LUA_TNIL) {
        lua_pop(L, 1);
        st = rawfield(L, t, "from");
    }
    if (rawfield(L, t, "const") != LUA_TNIL) {  /* stack: sf, const */
        compile_const(L, m, r, i);
    } else if (st == LUA_TSTRING) {
        r->nsrc = 1;
        r->srcs = cnew(L, m, 1, sizeof(src));
        compile_src(L, m, &r->srcs[0], -2, i);
        r->src_json = r->srcs[0].name_json;
        r->src_json_len = r->srcs[0].name_json_len;
    } else if (st == LUA_TTABLE) {
        compile_src_list(L, m, r, lua_absindex(L, -2), i);
    } else if (st == LUA_TNIL) {
        r->src_json = "null"; /* no source: the row never yields a value */
        r->src_json_len = 4;
    } else {
        luaL_error(L, "sf.mapper.compile: rows[%d].sf must be a field path or an array of them",
                   i);
    }
    lua_pop(L, 2);
}

static void compile_combine(lua_State *L, row *r, int t, int i)
{
    static const char *const combines[] = {"first", "all", NULL};
    int k;
    if (rawfield(L, t, "combine") != LUA_TNIL) {
        if ((k = check_enum(L, -1, combines)) < 0)
            luaL_error(L, "sf.mapper.compile: rows[%d].combine must be \"first\" or \"all\"", i);
        r->all = (uint8_t)k;
    }
    lua_pop(L, 1);
}

static void compile_derive(lua_State *L, row *r, int t, int i)
{
    static const char *const derives[] = {"emaildomain", NULL};
    if (rawfield(L, t, "derive") != LUA_TNIL) {
        if (check_enum(L, -1, derives) < 0)
            luaL_error(L, "sf.mapper.compile: rows[%d].derive must be \"emaildomain\"", i);
        r->derive = 1;
    }
    lua_pop(L, 1);
}

/* transform: anchored; it gets the record too when it declares a second
 * parameter or is vararg. */
static void compile_transform(lua_State *L, sf_mapper *m, row *r, int t, int i)
{
    int st = rawfield(L, t, "transform");
    if (st == LUA_TFUNCTION) {
        lua_Debug ar;
        lua_pushvalue(L, -1);
        lua_getinfo(L, ">u", &ar);
        r->transform_rec = ar.isvararg || ar.nparams >= 2;
        r->transform = anchor_top(L, m);
    } else {
        if (st != LUA_TNIL)
            luaL_error(L, "sf.mapper.compile: rows[%d].transform must be a function", i);
        lua_pop(L, 1);
    }
}

static void compile_identity(lua_State *L, row *r, int t, int i)
{
    int st = rawfield(L, t, "identity");
    if (st != LUA_TNIL && st != LUA_TBOOLEAN)
        luaL_error(L, "sf.mapper.compile: rows[%d].identity must be a boolean", i);
    r->identity = (uint8_t)lua_toboolean(L, -1);
    lua_pop(L, 1);
}

/* rows[i] is on top of the stack. */
static void compile_row(lua_State *L, sf_mapper *m, row *r, int i)
{
    int t = lua_gettop(L);
    r->index = (uint32_t)i;
    compile_to(L, m, r, t, i);
    compile_type(L, r, t, i);
    compile_sources(L, m, r, t, i);
    compile_combine(L, r, t, i);
    compile_derive(L, r, t, i);
    compile_transform(L, m, r, t, i);
    compile_identity(L, r, t, i);
    /* the fast path of emit_slot: one plain field through a C rule */
    r->simple = !r->is_const && r->nsrc == 1 && r->srcs[0].nseg == 1 && !r->derive &&
                !r->transform && r->type != SF_T_LIST && !m->types_ref[r->type];
    r->identity_id = r->identity && r->nsrc == 1 && r->srcs[0].nseg == 1 &&
                     r->srcs[0].segs[0].len == 2 && memcmp(r->srcs[0].segs[0].key, "Id", 2) == 0;
}

/* Slots: rows grouped by `to`, in order of first appearance. */
static void compile_slots(lua_State *L, sf_mapper *m)
{
    uint32_t k, j, pos = 0;
    uint8_t *done;
    m->order = cnew(L, m, m->nrows, sizeof(uint32_t));
    m->slots = cnew(L, m, m->nrows, sizeof(slotdef));
    done = cnew(L, m, m->nrows, 1);
    for (k = 0; k < m->nrows; k++) {
        slotdef *sl;
        if (done[k]) continue;
        sl = &m->slots[m->nslots++];
        sl->first = pos;
        for (j = k; j < m->nrows; j++) {
            if (done[j] || m->rows[j].keylen != m->rows[k].keylen ||
                memcmp(m->rows[j].key, m->rows[k].key, m->rows[k].keylen) != 0)
                continue;
            done[j] = 1;
            m->order[pos++] = j;
        }
        sl->n = pos - sl->first;
    }
}

/* The userdata, closed, before anything is allocated. stack: rows, opts, mapper, anchor */
static sf_mapper *new_mapper(lua_State *L)
{
    sf_mapper *m = lua_newuserdatauv(L, sizeof *m, 1);
    memset(m, 0, sizeof *m);
    m->alloc = (sf_alloc_fn)lua_getallocf(L, &m->alloc_ud);
    sf_strbuf_init(&m->out, m->alloc, m->alloc_ud);
    sf_strbuf_init(&m->rej, m->alloc, m->alloc_ud);
    sf_strbuf_init(&m->lua_json, m->alloc, m->alloc_ud);
    sf_strbuf_init(&m->domain, m->alloc, m->alloc_ud);
    sf_coerce_init(&m->co, m->alloc, m->alloc_ud);
    sf_dedup_init(&m->list, m->alloc, m->alloc_ud);
    luaL_setmetatable(L, SF_MAPPER_MT);
    lua_newtable(L);
    lua_pushvalue(L, ANCHOR);
    lua_setiuservalue(L, 3, 1);
    return m;
}

int sf_mapper_compile(lua_State *L)
{
    sf_mapper *m;
    lua_Integer nrows, i;

    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    m = new_mapper(L);
    compile_opts(L, m);

    nrows = (lua_Integer)lua_rawlen(L, 1);
    if (nrows < 1 || nrows > MAX_ROWS)
        luaL_error(L, "sf.mapper.compile: rows must be a non-empty array");
    m->rows = cnew(L, m, (size_t)nrows, sizeof(row));
    for (i = 1; i <= nrows; i++) {
        if (lua_rawgeti(L, 1, i) != LUA_TTABLE)
            luaL_error(L, "sf.mapper.compile: rows[%d] must be a table", (int)i);
        compile_row(L, m, &m->rows[i - 1], (int)i);
        lua_settop(L, ANCHOR);
    }
    m->nrows = (uint32_t)nrows;
    compile_slots(L, m);
    m->open = 1;
    lua_settop(L, 3);
    return 1;
}
