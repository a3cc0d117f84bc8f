/* sf.mapper's state, shared by its files: the compiled mapping and the
 * state of one map_page call (the Lua API is documented in mapper.c):
 *
 *   mapper.c          the module, the userdata, map_page: records -> NDJSON
 *   mapper_compile.c  mapper.compile: rows and opts -> a compiled mapping
 *   mapper_lua.c      the Lua bridge: user transforms and opts.types rules,
 *                     Lua values encoded as JSON
 *   mapper_rejects.c  reject lines
 *   coerce.c          the coercion rules; dedup.c the []string item list
 *
 * Inside map_page every failure to allocate raises (sf_mapper_nomem):
 * map_page runs inside a lua_pcall, and the buffers belong to the mapper,
 * so nothing leaks. */
#ifndef SF_MAPPER_STATE_H
#define SF_MAPPER_STATE_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>
#include <lauxlib.h>

#include "coerce.h"
#include "dedup.h"
#include "json.h"
#include "page.h"
#include "strbuf.h"

#define SF_MAPPER_MT "sf.mapper"
#define SF_MAPPER_MAX_SEGS 8  /* segments of one field path */

/* One segment of a field path. */
typedef struct seg {
    const char *key;   /* points into an anchored Lua string */
    uint32_t len;
    uint32_t cache;    /* ordinal of this key in the previous record */
} seg;

/* One source of a row: a field path. */
typedef struct src {
    seg *segs;
    uint32_t nseg;
    const char *name_json; /* the path as a JSON string, for rejects */
    size_t name_json_len;
} src;

typedef struct row {
    src *srcs;
    uint32_t nsrc;
    uint32_t index;        /* 1-based, for messages */
    uint8_t type, all, derive, is_const, identity, identity_id, transform_rec;
    uint8_t simple;        /* one plain field, scalar type, C rule: the fast path */
    int transform;         /* anchor slot of the function, 0: none */
    const char *key;       /* "\"to\":" */
    size_t keylen;
    const char *src_json;  /* sources joined by ",", as a JSON string ("null" for const) */
    size_t src_json_len;
    json_tok ctok;         /* const: RAW string token over m->now */
} row;

typedef struct slotdef {
    uint32_t first, n;     /* rows order[first .. first+n) share one `to` */
} slotdef;

typedef struct sf_mapper {
    int open;              /* compiled, not closed */
    int busy;              /* inside map_page */
    /* compile-time data: Lua userdata/strings anchored in user value 1 */
    row *rows;
    uint32_t nrows;
    uint32_t *order;
    slotdef *slots;
    uint32_t nslots;
    int nanchor;
    int types_ref[SF_NTYPES]; /* anchor slot of opts.types[t], 0: C rule */
    int call_ref;          /* anchor slot of opts.call, 0: none */
    const char *object_json, *stream_json;
    size_t object_json_len, stream_json_len;
    const char *now;
    size_t nowlen;
    seg id_seg, del_seg, ts_seg;
    /* runtime memory, owned, from alloc; freed by sf_mapper_free */
    sf_strbuf out;         /* the page's NDJSON lines */
    sf_strbuf rej;         /* the page's reject lines */
    sf_strbuf lua_json;    /* a Lua value encoded as JSON (mapper_lua.c) */
    sf_strbuf domain;      /* derive "emaildomain": the lower-cased domain */
    sf_coerce co;          /* the rules' scratch and reasons */
    sf_dedup list;         /* the []string items of the field being built */
    sf_value *vec;         /* values of the row being evaluated */
    size_t nvec, capvec;
    uint32_t *keys;        /* key tokens of the current record */
    size_t capkeys;
    json_parser *tp;       /* tokenizes transform/types results */
    sf_alloc_fn alloc;
    void *alloc_ud;
} sf_mapper;

/* The state of one map_page call. */
typedef struct mctx {
    lua_State *L;
    sf_mapper *m;
    const char *s;         /* page body */
    const json_tok *toks;
    const json_tok *rec;   /* current record */
    uint32_t nkeys;
    int anchor;            /* stack index of the anchor table */
    int recslot;           /* stack index of the decoded record (or nil) */
    int have_rec;
    const json_tok *id;    /* current record's Id value, or NULL */
    lua_Integer nrecords, ndeleted, nrejected;
    const json_tok *last_ts, *last_id;
} mctx;

/* Raises "sf.mapper: not enough memory". */
__attribute__((noreturn)) static inline void sf_mapper_nomem(lua_State *L)
{
    luaL_error(L, "sf.mapper: not enough memory");
    __builtin_unreachable(); /* luaL_error does not return (lua_error longjmps) */
}
/* Frees the runtime memory; the mapper is closed. Idempotent. */
void sf_mapper_free(sf_mapper *m);

/* The raising side of strbuf.h and coerce.h, for code inside map_page. */
static inline void mb_add(mctx *c, sf_strbuf *b, const void *p, size_t n)
{
    if (sf_strbuf_add(b, p, n) != 0) sf_mapper_nomem(c->L);
}

static inline void mb_addc(mctx *c, sf_strbuf *b, char ch)
{
    if (sf_strbuf_addc(b, ch) != 0) sf_mapper_nomem(c->L);
}

#define MB_LIT(c, b, lit) mb_add((c), (b), (lit), sizeof(lit) - 1)

/* rc of a coerce.h call, raising on SF_COERCE_NOMEM. */
static inline int mcheck(mctx *c, int rc)
{
    if (rc == SF_COERCE_NOMEM) sf_mapper_nomem(c->L);
    return rc;
}

/* Appends value (s, t) to m->vec. */
static inline void vec_push(mctx *c, const char *s, const json_tok *t)
{
    sf_mapper *m = c->m;
    if (m->nvec == m->capvec) {
        sf_value *nv = sf_grow(m->alloc, m->alloc_ud, m->vec, &m->capvec, sizeof *nv, m->nvec + 1);
        if (nv == NULL) sf_mapper_nomem(c->L);
        m->vec = nv;
    }
    m->vec[m->nvec].s = s;
    m->vec[m->nvec].t = t;
    m->nvec++;
}

/* mapper_rejects.c: appends the current record's Id as a JSON string, or
 * null (also for deleted records). */
void sf_mapper_put_id(mctx *c, sf_strbuf *b);
/* mapper_rejects.c: writes one reject line for row r (NULL: the whole
 * record) and source used (NULL: all of r's); the original value is
 * m->vec[lo..hi), an array when multi; the reason is m->co.reason. */
void sf_mapper_reject(mctx *c, const row *r, const src *used, size_t lo, size_t hi, int multi);

/* mapper_lua.c: the Lua bridge. */
/* Pushes the values m->vec[lo..hi) as the Lua value a transform receives
 * (an array when multi). */
void sf_mapper_push_values(mctx *c, size_t lo, size_t hi, int multi);
/* Pushes the function in anchor slot ref ready for sf_mapper_call: with
 * opts.call, the wrapper first. Returns the extra argument count (0 or 1). */
int sf_mapper_push_callee(mctx *c, int ref);
/* stack: ..., f, args(nargs) as sf_mapper_push_callee left them plus the
 * arguments. Returns 1 with the result on top, 0 when the function returned
 * nil/null without a reason, -1 with the reason in m->co.reason; on 0 and
 * -1 the function and arguments are gone. */
int sf_mapper_call(mctx *c, int nargs);
/* Encodes the Lua value at idx as JSON into b: 0, or -1 with a reason. */
int sf_mapper_encode(mctx *c, sf_strbuf *b, int idx, int depth);
/* Encodes the Lua value on top (left there) and appends it to m->vec as a
 * tokenized value: 0, or -1 with a reason. */
int sf_mapper_lua_values(mctx *c);
/* Coerces the Lua value on top (consumed) with the opts.types rule of r's
 * type into b, or into the item list when list. 1/0/-1 as sf_mapper_call. */
int sf_mapper_coerce_lua(mctx *c, const row *r, sf_strbuf *b, int list, int dedup);

#endif
