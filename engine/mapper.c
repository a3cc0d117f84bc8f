/* sf.mapper: a compiled mapping; maps a whole sf.page to NDJSON in C.
 *
 *   local mapper = require "sf.mapper"
 *   local m = mapper.compile(rows, opts)      -- once per job; misuse raises
 *   local out, rejects, stats = m:map_page(p) -- p: an sf.page
 *   m:close()                                 -- frees the buffers (also __gc/__close)
 *   mapper.TYPES                              -- {"string", "number", "int", "bool",
 *                                             --  "date", "[]string"}: the row types
 *
 * rows[i] (all keys read raw; unknown keys are ignored; `from` is an alias of `sf`):
 *   sf        "Field", "Parent.Field" (parent relationship; deeper paths work too),
 *             "Children.Field" (child subquery {totalSize, done, records}: the
 *             values of every child record), or an array of such paths
 *   combine   "first" (default: the first source with a non-null value) or
 *             "all" (every value of every source, de-duplicated; type "[]string")
 *   const     "now": the value is opts.now (instead of sf)
 *   derive    "emaildomain": lower-cased (ASCII) text after the last '@'
 *   transform function(value, record) -> value | nil | nil, reason; called only
 *             for present values, before coercion; `record` (the whole record
 *             decoded, shared by the transforms of one record) is passed only
 *             when the function declares a second parameter or is vararg
 *   type      "string" | "number" | "int" | "bool" | "date" | "[]string"
 *   to        output field name (non-empty); identity = true marks identity fields
 * Pipeline per row: sources -> derive -> transform -> coercion (opts.types[type]
 * when given, else the C rules of engine/coerce.h, the twin of
 * mappings/types.lua). A missing or null value omits the field.
 *
 * opts: object, stream (strings, required), timestamp_field (default
 * "LastModifiedDate"), now (RFC 3339 string; required by const rows),
 * types = { [typename] = function(value) -> value | nil, reason },
 * call = function(fn, ...) -> ok, value, reason (wraps every transform and
 * types call, e.g. to enforce a CPU limit). Without call, lua_pcall is used.
 * A raised error, or ok == false, rejects the field with the error message.
 * derive rejects "not an email address: V" (no '@', empty domain, not a string).
 *
 * Output: one JSON object per record: "_id" (the record's Id, null when it has
 * none) first, then the fields in row order (rows sharing a
 * `to`: the first that yields a value wins; []string rows merge, de-duplicated),
 * minimal escaping (only '"', '\\' and control characters; UTF-8 verbatim).
 * A record with "IsDeleted": true yields {"_deleted":true,"_object":O,"_id":ID,
 * "_deleted_at":<timestamp as date, or null>, ...identity rows whose sf is "Id"}.
 * rejects: {"stream","object","id","field","source","value","reason"} lines;
 * value is the original JSON value (strings cut to 200 characters; a
 * multi-valued source as an array); source is the path the value came from
 * (all sources joined by "," for combine "all"; null for const).
 * stats: {records (not deleted), deleted, rejected (field rejects), last_ts,
 * last_id}: the raw timestamp text and the Id of the last record (deleted or
 * not) whose timestamp is a string, for the incremental (ts, Id) cursor; both
 * nil when no record has one.
 *
 * This file: the module, the userdata and map_page. The other rooms of the
 * mapper are listed in mapper_state.h.
 */
#include "mapper_state.h"

#include <lauxlib.h>
#include <string.h>

#include "util.h"

int luaopen_sf_mapper(lua_State *L);
int sf_mapper_compile(lua_State *L); /* mapper_compile.c */

/* ------------------------------------------------------------------ */
/* record lookup                                                       */

static inline int bytes_eq(const char *a, const char *b, size_t n)
{
    while (n >= 8) {
        uint64_t x, y;
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        if (x != y) return 0;
        a += 8;
        b += 8;
        n -= 8;
    }
    while (n > 0) {
        if (*a++ != *b++) return 0;
        n--;
    }
    return 1;
}

static inline int key_is(const char *s, const json_tok *k, const seg *g)
{
    if (!(k->flags & JSON_F_ESCAPED))
        return k->end - k->start == g->len && bytes_eq(s + k->start, g->key, g->len);
    return json_str_eq(s, k, g->key, g->len);
}

/* Value of top-level field g of the current record, or NULL. Fields come in
 * SELECT order, so the ordinal of the last hit is tried first. */
static const json_tok *rec_get(mctx *c, seg *g)
{
    const uint32_t *keys = c->m->keys;
    uint32_t n = c->nkeys, k = g->cache;
    if (k < n && key_is(c->s, &c->toks[keys[k]], g)) return &c->toks[keys[k] + 1];
    for (k = 0; k < n; k++) {
        if (key_is(c->s, &c->toks[keys[k]], g)) {
            g->cache = k;
            return &c->toks[keys[k] + 1];
        }
    }
    return NULL;
}

static const json_tok *obj_get(const char *s, const json_tok *obj, const seg *g)
{
    const json_tok *k = obj + 1;
    uint32_t i;
    for (i = 0; i < obj->size; i++) {
        if (key_is(s, k, g)) return k + 1;
        k += 1 + k[1].skip;
    }
    return NULL;
}

static const seg SEG_RECORDS = {"records", 7, 0};
static const seg SEG_TOTALSIZE = {"totalSize", 9, 0};

/* Appends the non-null values of path sr->segs[k..] under obj (NULL: the
 * current record) to m->vec; *multi set when a child subquery fanned out. */
static void resolve(mctx *c, const json_tok *obj, src *sr, uint32_t k, int *multi)
{
    const json_tok *v = obj == NULL ? rec_get(c, &sr->segs[k]) : obj_get(c->s, obj, &sr->segs[k]);
    const json_tok *rs;
    if (v == NULL || v->type == JSON_NULL) return;
    if (k + 1 == sr->nseg) {
        vec_push(c, c->s, v);
        return;
    }
    if (v->type != JSON_OBJECT) return;
    rs = obj_get(c->s, v, &SEG_RECORDS);
    if (rs != NULL && rs->type == JSON_ARRAY && obj_get(c->s, v, &SEG_TOTALSIZE) != NULL) {
        const json_tok *e = rs + 1;
        uint32_t i;
        *multi = 1;
        for (i = 0; i < rs->size; i++, e += e->skip)
            if (e->type == JSON_OBJECT) resolve(c, e, sr, k + 1, multi);
        return;
    }
    resolve(c, v, sr, k + 1, multi);
}

/* ------------------------------------------------------------------ */
/* one row: sources -> derive -> transform -> coercion                 */

/* The values of one row on their way through the pipeline. */
typedef struct eval {
    size_t base;          /* m->vec[base..ohi): the original values (for a reject) */
    size_t ohi;
    int omulti;
    size_t lo, hi;        /* m->vec[lo..hi): the values now */
    int multi;            /* several values (an array for a transform) */
    const src *used;      /* the source they came from (combine "first"), or NULL */
    int top;              /* Lua stack top to restore; 0: nothing pushed */
    int have_lua;         /* the value is the Lua value on top of the stack */
    json_tok dtok;        /* derive: the domain, a RAW token over m->domain */
} eval;

/* 1. sources: the row's values into m->vec. 0 when there are none. */
static int gather_sources(mctx *c, row *r, eval *e)
{
    sf_mapper *m = c->m;
    uint32_t i;
    memset(e, 0, sizeof *e);
    e->base = m->nvec;
    if (r->is_const) {
        vec_push(c, m->now, &r->ctok);
    } else if (!r->all) {
        for (i = 0; i < r->nsrc; i++) {  /* the first source with a value */
            e->multi = 0;
            resolve(c, NULL, &r->srcs[i], 0, &e->multi);
            if (m->nvec > e->base) {
                e->used = &r->srcs[i];
                break;
            }
        }
    } else {
        for (i = 0; i < r->nsrc; i++) resolve(c, NULL, &r->srcs[i], 0, &e->multi);
        e->multi = 1;
    }
    if (m->nvec == e->base) return 0;
    e->lo = e->base;
    e->hi = e->ohi = m->nvec;
    e->omulti = e->multi;
    return 1;
}

/* 2. derive "emaildomain": the value becomes the lower-cased text after its
 * last '@'. 1, or -1 rejected. */
static int derive_domain(mctx *c, eval *e)
{
    sf_mapper *m = c->m;
    sf_value v = m->vec[e->lo];
    const char *p, *at = NULL;
    size_t n, k;
    if (e->multi || e->hi - e->lo != 1 || v.t->type != JSON_STRING) {
        if (e->multi) mcheck(c, sf_coerce_reason(&m->co, "not an email address: table", NULL));
        else mcheck(c, sf_coerce_reason_value(&m->co, "not an email address: ", v));
        return -1;
    }
    p = sf_value_text(&m->co, v, &n);
    if (p == NULL) sf_mapper_nomem(c->L);
    for (k = n; k > 0; k--)
        if (p[k - 1] == '@') { at = p + k; break; }
    if (at == NULL || at == p + n) {
        mcheck(c, sf_coerce_reason_value(&m->co, "not an email address: ", v));
        return -1;
    }
    n = (size_t)(p + n - at);
    m->domain.n = 0;
    mb_add(c, &m->domain, at, n);
    for (k = 0; k < n; k++)
        if (m->domain.p[k] >= 'A' && m->domain.p[k] <= 'Z') m->domain.p[k] += 'a' - 'A';
    e->dtok.type = JSON_STRING;
    e->dtok.flags = JSON_F_RAW;
    e->dtok.end = (uint32_t)n;
    e->dtok.skip = 1;
    vec_push(c, m->domain.p, &e->dtok);
    e->lo = e->hi;
    e->hi = m->nvec;
    return 1;
}

/* 3. transform: the row's function on the value (and the record when it
 * asks for it). 1 a value (on the Lua stack, or as JSON values when the
 * type's rule is in C), 0 dropped, -1 rejected. */
static int apply_transform(mctx *c, row *r, eval *e)
{
    lua_State *L = c->L;
    sf_mapper *m = c->m;
    int extra, nargs, rc;
    e->top = lua_gettop(L);
    extra = sf_mapper_push_callee(c, r->transform);
    sf_mapper_push_values(c, e->lo, e->hi, e->multi);
    nargs = 1 + extra;
    if (r->transform_rec) {
        if (!c->have_rec) {  /* decoded once per record, shared by its transforms */
            sf_json_push(L, c->s, c->rec, 0);
            lua_replace(L, c->recslot);
            c->have_rec = 1;
        }
        lua_pushvalue(L, c->recslot);
        nargs++;
    }
    rc = sf_mapper_call(c, nargs);
    if (rc <= 0) return rc;
    e->have_lua = 1;  /* stack: top..., result */
    e->multi = 0;
    if (!m->types_ref[r->type]) {
        size_t vbase = m->nvec;
        if (sf_mapper_lua_values(c) != 0) return -1;
        e->lo = vbase;
        e->hi = m->nvec;
        if (m->vec[e->lo].t->type == JSON_NULL) return 0;
    }
    return 1;
}

/* 4. coercion: the type's rule, in Lua (opts.types) or in C, into b or, for
 * []string (b == NULL), into the item list. 1 a value, 0 none, -1 rejected. */
static int coerce_values(mctx *c, row *r, sf_strbuf *b, int dedup, eval *e, size_t items)
{
    sf_mapper *m = c->m;
    size_t i;
    int rc;
    if (m->types_ref[r->type]) {
        if (!e->top) e->top = lua_gettop(c->L);
        if (!e->have_lua) sf_mapper_push_values(c, e->lo, e->hi, e->multi);
        rc = sf_mapper_coerce_lua(c, r, b, b == NULL, dedup);
        if (b == NULL && rc == 1) rc = m->list.n > items ? 1 : 0;
        return rc;
    }
    if (b == NULL) {
        for (i = e->lo; i < e->hi; i++)
            if (mcheck(c, sf_coerce_list(&m->co, &m->list, m->vec[i], dedup)) < 0) return -1;
        return m->list.n > items ? 1 : 0;
    }
    if (e->multi) return mcheck(c, sf_coerce_reject_table(&m->co, r->type));
    return mcheck(c, sf_coerce_scalar(&m->co, r->type, b, m->vec[e->lo]));
}

/* Evaluates row r for the current record. Scalar types append the value to
 * b; []string (b == NULL) appends items to the list. Returns 1 when a value
 * was produced, 0 when none (missing, null, dropped), -1 when rejected (the
 * reject line is written, b and the list are rolled back). */
static int eval_row(mctx *c, row *r, sf_strbuf *b, int dedup)
{
    sf_mapper *m = c->m;
    size_t mark = b != NULL ? b->n : 0, items = m->list.n;
    eval e;
    int rc;

    if (!gather_sources(c, r, &e)) return 0;
    rc = r->derive ? derive_domain(c, &e) : 1;
    if (rc == 1 && r->transform) rc = apply_transform(c, r, &e);
    if (rc == 1) rc = coerce_values(c, r, b, dedup, &e, items);
    if (rc < 0) sf_mapper_reject(c, r, e.used, e.base, e.ohi, e.omulti);

    if (e.top) lua_settop(c->L, e.top);
    m->nvec = e.base;
    if (rc != 1) {
        if (b != NULL) b->n = mark;
        else sf_dedup_truncate(&m->list, items);
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* records                                                             */

/* The fast path of emit_slot: one plain field through a C rule, straight
 * from the record's token into the output. */
static void emit_simple(mctx *c, row *r, int *first)
{
    sf_mapper *m = c->m;
    sf_strbuf *out = &m->out;
    size_t mark = out->n;
    const json_tok *v = rec_get(c, &r->srcs[0].segs[0]);
    sf_value vv;
    int rc;
    if (v == NULL || v->type == JSON_NULL) return;
    if (sf_strbuf_reserve(out, r->keylen + 1) != 0) sf_mapper_nomem(c->L);
    if (!*first) out->p[out->n++] = ',';
    memcpy(out->p + out->n, r->key, r->keylen);
    out->n += r->keylen;
    vv.s = c->s;
    vv.t = v;
    rc = mcheck(c, sf_coerce_scalar(&m->co, r->type, out, vv));
    if (rc == 1) {
        *first = 0;
        return;
    }
    out->n = mark;
    if (rc < 0) {
        size_t base = m->nvec;
        vec_push(c, c->s, v);
        sf_mapper_reject(c, r, &r->srcs[0], base, base + 1, 0);
        m->nvec = base;
    }
}

/* Appends the field of slot sl to out; only_id: identity rows on Id only. */
static void emit_slot(mctx *c, const slotdef *sl, int *first, int only_id)
{
    sf_mapper *m = c->m;
    sf_strbuf *out = &m->out;
    size_t mark = out->n;
    row *r0 = &m->rows[m->order[sl->first]];
    uint32_t k;
    int state = 0;  /* 0 nothing yet, 1 a scalar, 2 list items */

    if (sl->n == 1 && only_id && !r0->identity_id) return;
    if (sl->n == 1 && r0->simple) {
        emit_simple(c, r0, first);
        return;
    }
    if (!*first) mb_addc(c, out, ',');
    mb_add(c, out, r0->key, r0->keylen);
    if (sl->n == 1) {
        if (r0->type == SF_T_LIST) {
            sf_dedup_reset(&m->list);
            if (eval_row(c, r0, NULL, r0->all) == 1) state = 2;
        } else if (eval_row(c, r0, out, 0) == 1) {
            state = 1;
        }
    } else {
        sf_dedup_reset(&m->list);
        for (k = 0; k < sl->n && state != 1; k++) {
            row *r = &m->rows[m->order[sl->first + k]];
            if (only_id && !r->identity_id) continue;
            if (r->type == SF_T_LIST) {
                if (eval_row(c, r, NULL, 1) == 1) state = 2;
            } else if (state == 0 && eval_row(c, r, out, 0) == 1) {
                state = 1;
            }
        }
    }
    if (state == 2 && sf_dedup_emit(&m->list, out) != 0) sf_mapper_nomem(c->L);
    if (state == 0) out->n = mark;
    else *first = 0;
}

/* Indexes the record's keys (m->keys) for rec_get. */
static void index_keys(mctx *c, const json_tok *rec)
{
    sf_mapper *m = c->m;
    uint32_t k, i = (uint32_t)(rec - c->toks) + 1;
    if (m->capkeys < rec->size) {
        uint32_t *nk = sf_grow(m->alloc, m->alloc_ud, m->keys, &m->capkeys, sizeof *nk, rec->size);
        if (nk == NULL) sf_mapper_nomem(c->L);
        m->keys = nk;
    }
    for (k = 0; k < rec->size; k++) {
        m->keys[k] = i;
        i += 1 + c->toks[i + 1].skip;
    }
    c->nkeys = rec->size;
}

/* {"_deleted":true,"_object":O,"_id":ID,"_deleted_at":T, ...identity on Id} */
static void emit_deleted(mctx *c, const json_tok *ts)
{
    sf_mapper *m = c->m;
    sf_strbuf *out = &m->out;
    size_t mark;
    uint32_t k;
    int first = 0;
    MB_LIT(c, out, "{\"_deleted\":true,\"_object\":");
    mb_add(c, out, m->object_json, m->object_json_len);
    MB_LIT(c, out, ",\"_id\":");
    sf_mapper_put_id(c, out);
    MB_LIT(c, out, ",\"_deleted_at\":");
    mark = out->n;
    if (ts == NULL) {
        MB_LIT(c, out, "null");
    } else {
        sf_value v = {c->s, ts};
        if (mcheck(c, sf_coerce_scalar(&m->co, SF_T_DATE, out, v)) != 1) {
            out->n = mark;
            MB_LIT(c, out, "null");
        }
    }
    for (k = 0; k < m->nslots; k++) emit_slot(c, &m->slots[k], &first, 1);
    MB_LIT(c, out, "}\n");
    c->ndeleted++;
}

static void map_record(mctx *c, const json_tok *rec)
{
    lua_State *L = c->L;
    sf_mapper *m = c->m;
    const json_tok *del, *ts;
    uint32_t k;
    int first = 0;  /* "_id" leads every line */

    c->rec = rec;
    c->id = NULL;
    c->nkeys = 0;
    if (c->have_rec) {  /* the previous record's decoded table */
        lua_pushnil(L);
        lua_replace(L, c->recslot);
        c->have_rec = 0;
    }
    if (rec->type != JSON_OBJECT) {
        size_t base = m->nvec;
        vec_push(c, c->s, rec);
        mcheck(c, sf_coerce_reason(&m->co, "record is not an object", NULL));
        sf_mapper_reject(c, NULL, NULL, base, base + 1, 0);
        m->nvec = base;
        return;
    }
    index_keys(c, rec);
    c->id = rec_get(c, &m->id_seg);
    ts = rec_get(c, &m->ts_seg);
    if (ts != NULL && ts->type == JSON_STRING) {  /* the cursor: one record's (ts, Id) */
        c->last_ts = ts;
        c->last_id = c->id != NULL && c->id->type == JSON_STRING ? c->id : NULL;
    }
    del = rec_get(c, &m->del_seg);
    if (del != NULL && del->type == JSON_TRUE) {
        emit_deleted(c, ts);
        return;
    }
    /* Every line leads with the record's Id under the key the deletion events
     * use, so a consumer can apply an update or a deletion to what it holds. */
    MB_LIT(c, &m->out, "{\"_id\":");
    sf_mapper_put_id(c, &m->out);
    for (k = 0; k < m->nslots; k++) emit_slot(c, &m->slots[k], &first, 0);
    MB_LIT(c, &m->out, "}\n");
    c->nrecords++;
}

static void set_stat_tok(lua_State *L, mctx *c, const json_tok *t, const char *name)
{
    if (t == NULL) return;
    sf_json_push(L, c->s, t, 0);
    lua_setfield(L, -2, name);
}

/* stack: mapper, page (both checked, pinned by l_map_page) */
static int map_page_body(lua_State *L)
{
    sf_mapper *m = lua_touserdata(L, 1);
    sf_page *p = lua_touserdata(L, 2);
    mctx c;
    uint32_t i;

    memset(&c, 0, sizeof c);
    c.L = L;
    c.m = m;
    c.s = p->body;
    c.toks = p->toks;
    lua_settop(L, 2);
    lua_getiuservalue(L, 1, 1);  /* stack: mapper, page, anchor */
    c.anchor = 3;
    lua_pushnil(L);              /* stack: mapper, page, anchor, record */
    c.recslot = 4;
    m->out.n = 0;
    m->rej.n = 0;
    m->nvec = 0;
    sf_dedup_reset(&m->list);
    for (i = 0; i < p->nrec; i++) map_record(&c, &p->toks[p->recs[i]]);

    lua_pushlstring(L, m->out.p ? m->out.p : "", m->out.n);
    lua_pushlstring(L, m->rej.p ? m->rej.p : "", m->rej.n);
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, c.nrecords);
    lua_setfield(L, -2, "records");
    lua_pushinteger(L, c.ndeleted);
    lua_setfield(L, -2, "deleted");
    lua_pushinteger(L, c.nrejected);
    lua_setfield(L, -2, "rejected");
    set_stat_tok(L, &c, c.last_ts, "last_ts");
    set_stat_tok(L, &c, c.last_id, "last_id");
    return 3;
}

/* ------------------------------------------------------------------ */
/* the mapper userdata                                                 */

void sf_mapper_free(sf_mapper *m)
{
    if (m->alloc == NULL) return;
    sf_strbuf_free(&m->out);
    sf_strbuf_free(&m->rej);
    sf_strbuf_free(&m->lua_json);
    sf_strbuf_free(&m->domain);
    sf_coerce_free(&m->co);
    sf_dedup_free(&m->list);
    if (m->vec) m->alloc(m->alloc_ud, m->vec, m->capvec * sizeof *m->vec, 0);
    if (m->keys) m->alloc(m->alloc_ud, m->keys, m->capkeys * sizeof *m->keys, 0);
    if (m->tp) {
        json_parser_free(m->tp);
        m->alloc(m->alloc_ud, m->tp, sizeof(json_parser), 0);
    }
    m->vec = NULL;
    m->keys = NULL;
    m->tp = NULL;
    m->nvec = m->capvec = m->capkeys = 0;
    m->open = 0;
    m->rows = NULL;
    m->nrows = 0;
    m->nslots = 0;
}

static sf_mapper *check_open(lua_State *L, int idx, const char *api)
{
    sf_mapper *m = luaL_checkudata(L, idx, SF_MAPPER_MT);
    if (!m->open) luaL_error(L, "%s: the mapper is closed", api);
    return m;
}

/* m:map_page(page) -> out, rejects, stats */
static int l_map_page(lua_State *L)
{
    sf_mapper *m = check_open(L, 1, "sf.mapper.map_page");
    sf_page *p = sf_page_check(L, 2, "sf.mapper.map_page");
    int st;
    if (m->busy) return luaL_error(L, "sf.mapper.map_page: called from inside map_page");
    lua_settop(L, 2);
    lua_pushcfunction(L, map_page_body);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    m->busy = 1;
    p->pinned++;
    st = lua_pcall(L, 2, 3, 0);
    m->busy = 0;
    p->pinned--;
    if (st != LUA_OK) return lua_error(L);
    return 3;
}

static int l_close(lua_State *L)
{
    sf_mapper *m = luaL_checkudata(L, 1, SF_MAPPER_MT);
    if (m->busy) return luaL_error(L, "sf.mapper.close: the mapper is mapping a page");
    sf_mapper_free(m);
    return 0;
}

static int l_gc(lua_State *L)
{
    sf_mapper *m = luaL_checkudata(L, 1, SF_MAPPER_MT);
    sf_mapper_free(m);  /* a busy mapper is on a C stack frame: never collected */
    return 0;
}

static int l_tostring(lua_State *L)
{
    sf_mapper *m = luaL_checkudata(L, 1, SF_MAPPER_MT);
    if (!m->open) lua_pushliteral(L, "sf.mapper (closed)");
    else lua_pushfstring(L, "sf.mapper (%d rows)", (int)m->nrows);
    return 1;
}

static const luaL_Reg mapper_funcs[] = {
    {"compile", sf_mapper_compile},
    {NULL, NULL}
};

static const luaL_Reg mapper_methods[] = {
    {"map_page", l_map_page},
    {"close", l_close},
    {NULL, NULL}
};

static const luaL_Reg mapper_meta[] = {
    {"__gc", l_gc},
    {"__close", l_close},
    {"__tostring", l_tostring},
    {"__index", NULL},  /* placeholder: set by sf_createmeta */
    {NULL, NULL}
};

/* TYPES: the row type names, in the order messages list them, from the one
 * C table (coerce.c), so Lua validators need no copy of the list. */
static void push_type_names(lua_State *L)
{
    int k;
    lua_createtable(L, SF_NTYPES, 0);
    for (k = 0; k < SF_NTYPES; k++) {
        lua_pushstring(L, sf_type_names[k]);
        lua_rawseti(L, -2, k + 1);
    }
}

int luaopen_sf_mapper(lua_State *L)
{
    luaL_newlib(L, mapper_funcs);  /* stack: module */
    push_type_names(L);
    lua_setfield(L, -2, "TYPES");
    sf_createmeta(L, SF_MAPPER_MT, mapper_meta, mapper_methods, NULL);
    return 1;
}
