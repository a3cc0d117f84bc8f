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
 * when given, else the C rules below). A missing or null value omits the field.
 *
 * opts: object, stream (strings, required), timestamp_field (default
 * "LastModifiedDate"), now (RFC 3339 string; required by const rows),
 * types = { [typename] = function(value) -> value | nil, reason },
 * call = function(fn, ...) -> ok, value, reason (wraps every transform and
 * types call, e.g. to enforce a CPU limit). Without call, lua_pcall is used.
 * A raised error, or ok == false, rejects the field with the error message.
 *
 * C coercion rules: the twin of mappings/types.lua, acting on the value a Lua
 * rule would receive (sf_json_push: integer literals that fit int64 are
 * integers, other numbers doubles), so that opts.types = require
 * "mappings.types" gives byte-identical lines and rejects (tests/lua/test_mapper.lua
 * proves it on a corpus and on random records):
 *   string   string -> itself; number -> integral values in int64 range as
 *            integers ("5.0" -> "5", "1e3" -> "1000"), others as the shortest
 *            %g that reads back ("1e20" -> "1e+20"); true/false -> "true"/"false";
 *            object/array -> reject "expected a scalar for string"
 *   number   a number, or a string holding exactly one JSON number after
 *            trimming JSON white space; written like the string rule's text
 *            but unquoted ("5.0" -> 5); else "not a number: V"
 *   int      number or numeric string whose value is integral and in int64
 *            range -> integer; else "not an integer: V"
 *   bool     true/false; "true"/"false" in any case -> bool; else "not a boolean: V"
 *   date     YYYY-MM-DDTHH:MM:SS[.fff](Z|+hhmm|+hh:mm|-hhmm|-hh:mm) or YYYY-MM-DD
 *            -> UTC "YYYY-MM-DDTHH:MM:SS[.fff]Z" (.fff only when non-zero; the
 *            offset moves hours/minutes, rolling days, months, years, leap
 *            years; seconds kept, so :60 survives; years 0000-9999);
 *            else "not a date: V"
 *   []string array -> each element as string (nulls skipped); scalar -> one
 *            element; empty (or {}) -> omitted; a nested object/array ->
 *            reject "expected a scalar for string"
 *   V in a reason is as Lua's tostring shows the value: a string's first 200
 *   bytes, a number like tostring (5.0 -> "5.0", 1e19 -> "1e+19"),
 *   true/false, and "table" for an object or array.
 * Numbers are read and printed with strtod/snprintf: LC_NUMERIC must be "C"
 * (the engine never calls setlocale), as for Lua's own tostring.
 * derive rejects "not an email address: V" (no '@', empty domain, not a string).
 *
 * Output: one JSON object per record, fields in row order (rows sharing a
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
 */
#include <lua.h>
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "page.h"
#include "strbuf.h"

int luaopen_sf_mapper(lua_State *L);

#define SF_MAPPER_MT "sf.mapper"
#define MAX_SEGS 8
#define VALUE_CHARS 200   /* a string in a reject line's "value" */
#define REASON_BYTES 200  /* a string quoted in a reason (as mappings/types.lua) */
#define ENC_MAX_DEPTH 32

enum { T_STRING, T_NUMBER, T_INT, T_BOOL, T_DATE, T_LIST, NTYPES };
static const char *const type_names[] = {
    "string", "number", "int", "bool", "date", "[]string", NULL
};

typedef struct seg {
    const char *key;   /* points into an anchored Lua string */
    uint32_t len;
    uint32_t cache;    /* ordinal of this key in the previous record */
} seg;

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

typedef struct vref {
    const char *s;         /* document the token indexes */
    const json_tok *t;
} vref;

typedef struct span {
    size_t off, len;
} span;

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
    int types_ref[NTYPES]; /* anchor slot of opts.types[t], 0: C rule */
    int call_ref;          /* anchor slot of opts.call, 0: none */
    const char *object_json, *stream_json;
    size_t object_json_len, stream_json_len;
    const char *now;
    size_t nowlen;
    seg id_seg, del_seg, ts_seg;
    /* runtime buffers, owned, allocated with alloc; freed by mapper_free */
    sf_strbuf out, rej, ubuf, rbuf, lbuf, tbuf, dbuf, nbuf;
    vref *vec;
    size_t nvec, capvec;
    span *spans;
    size_t nspans, capspans;
    uint32_t *hash;        /* dedup set over spans: span index + 1, 0 empty */
    size_t hcap, hashed;
    uint32_t *keys;        /* key tokens of the current record */
    size_t capkeys;
    json_parser *tp;       /* tokenizes transform/types results */
    sf_alloc_fn alloc;
    void *alloc_ud;
} sf_mapper;

typedef struct ctx {
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
} ctx;

/* ------------------------------------------------------------------ */
/* buffers                                                             */

static void nomem(lua_State *L)
{
    luaL_error(L, "sf.mapper: not enough memory");
}

/* The mapper's side of strbuf.h: the same calls, raising on failure (map_page
 * runs inside a lua_pcall, so the error unwinds cleanly). */
static void *grow_mem(lua_State *L, sf_mapper *m, void *p, size_t *cap, size_t elem,
                      size_t need)
{
    void *np = sf_grow(m->alloc, m->alloc_ud, p, cap, elem, need);
    if (np == NULL) nomem(L);
    return np;
}

#define SB_NEED(c, b, k) \
    do { if (sf_strbuf_reserve((b), (k)) != 0) nomem((c)->L); } while (0)

static inline void sb_add(ctx *c, sf_strbuf *b, const void *p, size_t n)
{
    if (sf_strbuf_add(b, p, n) != 0) nomem(c->L);
}

#define SB_LIT(c, b, lit) sb_add((c), (b), lit, sizeof(lit) - 1)

static inline void sb_addc(ctx *c, sf_strbuf *b, char ch)
{
    if (sf_strbuf_addc(b, ch) != 0) nomem(c->L);
}

static inline void vec_push(ctx *c, const char *s, const json_tok *t)
{
    sf_mapper *m = c->m;
    if (m->nvec == m->capvec)
        m->vec = grow_mem(c->L, m, m->vec, &m->capvec, sizeof(vref), m->nvec + 1);
    m->vec[m->nvec].s = s;
    m->vec[m->nvec].t = t;
    m->nvec++;
}

/* Writes s[0..n) as a JSON string with minimal escaping. repair: replace
 * invalid UTF-8 bytes by U+FFFD (for text that came from Lua). */
static void put_escaped(ctx *c, sf_strbuf *b, const char *str, size_t n, int repair)
{
    if (sf_strbuf_json(b, str, n, repair ? SF_JSON_REPAIR : 0, NULL) != 0) nomem(c->L);
}

static size_t fmt_int64(char *o, int64_t v)
{
    char tmp[24];
    size_t n = 0, k = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do { tmp[n++] = (char)('0' + u % 10); u /= 10; } while (u);
    if (v < 0) o[k++] = '-';
    while (n) o[k++] = tmp[--n];
    return k;
}

/* Bytes of the first `chars` code points of s[0..n). */
static size_t utf8_cut(const char *s, size_t n, size_t chars)
{
    size_t i;
    if (n <= chars) return n;
    for (i = 0; i < n; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (chars == 0) return i;
            chars--;
        }
    }
    return n;
}

/* ------------------------------------------------------------------ */
/* values                                                              */

/* Unescaped text of a STRING token (valid until the next call). */
static const char *str_of(ctx *c, vref v, size_t *len)
{
    const json_tok *t = v.t;
    size_t n = t->end - t->start;
    if (!(t->flags & JSON_F_ESCAPED)) {
        *len = n;
        return v.s + t->start;
    }
    c->m->ubuf.n = 0;
    SB_NEED(c, &c->m->ubuf, n);
    *len = json_unescape(v.s, t, c->m->ubuf.p);
    return c->m->ubuf.p;
}

/* Writes a STRING token as a JSON string. */
static void put_jstring(ctx *c, sf_strbuf *b, vref v)
{
    const json_tok *t = v.t;
    if (!(t->flags & (JSON_F_ESCAPED | SF_TOK_RAW))) {
        sb_add(c, b, v.s + t->start - 1, t->end - t->start + 2);
    } else {
        size_t n;
        const char *p = str_of(c, v, &n);
        put_escaped(c, b, p, n, 0);
    }
}

/* ---- numbers, as Lua sees them ----
 * A JSON number is the Lua value sf_json_push makes of it: an integer literal
 * that fits int64 is an integer, anything else a double. The coercion rules
 * below act on that value exactly as mappings/types.lua does. */
typedef struct num {
    int is_int;
    int64_t i;
    double d;
} num;

static double text_to_double(ctx *c, const char *p, size_t n)
{
    char buf[64];
    if (n < sizeof buf) {
        memcpy(buf, p, n);
        buf[n] = '\0';
        return strtod(buf, NULL);
    }
    c->m->nbuf.n = 0;
    sb_add(c, &c->m->nbuf, p, n);
    sb_addc(c, &c->m->nbuf, '\0');
    return strtod(c->m->nbuf.p, NULL);
}

/* p[0..n) is one JSON number; int_flag: no fraction, no exponent. */
static void num_parse(ctx *c, const char *p, size_t n, int int_flag, num *o)
{
    o->is_int = int_flag && json_number_int64(p, n, &o->i) == 1;
    if (!o->is_int) o->d = text_to_double(c, p, n);
}

static int text_is_int_literal(const char *p, size_t n)
{
    size_t k;
    for (k = 0; k < n; k++)
        if (p[k] == '.' || p[k] == 'e' || p[k] == 'E') return 0;
    return 1;
}

/* math.tointeger for a double: 1 and *out when integral in [-2^63, 2^63). */
static int double_to_int64(double d, int64_t *out)
{
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || floor(d) != d)
        return 0;
    *out = (int64_t)d;
    return 1;
}

static int num_to_int64(const num *v, int64_t *out)
{
    if (v->is_int) {
        *out = v->i;
        return 1;
    }
    return double_to_int64(v->d, out);
}

static size_t fix_point(char *buf, size_t n)
{
    size_t k;
    for (k = 0; k < n; k++)  /* a locale may have written ',' for the point */
        if (buf[k] == ',') buf[k] = '.';
    return n;
}

/* Lua's tostring of the number (%.14g, ".0" on integral-looking floats). */
static size_t num_tostring(const num *v, char *buf /* >= 48 */)
{
    int n;
    if (v->is_int) return fmt_int64(buf, v->i);
    n = snprintf(buf, 48, "%.14g", v->d);
    if (buf[strspn(buf, "-0123456789")] == '\0') {
        buf[n++] = '.';
        buf[n++] = '0';
        buf[n] = '\0';
    }
    return fix_point(buf, (size_t)n);
}

/* Output text of a finite number (types.lua number_text): integral values in
 * int64 range as integers, else the shortest %g that reads back the same. */
static size_t num_text(const num *v, char *buf /* >= 48 */)
{
    int64_t i;
    int prec, n = 0;
    if (num_to_int64(v, &i)) return fmt_int64(buf, i);
    for (prec = 15; prec <= 17; prec++) {  /* = types.lua's 1..17 search (DBL_DIG) */
        n = snprintf(buf, 48, "%.*g", prec, v->d);
        fix_point(buf, (size_t)n);
        if (strtod(buf, NULL) == v->d) break;
    }
    return (size_t)n;
}

/* Reason "prefix" + the value as types.lua shows it: a string's first 200
 * bytes, a number as tostring, "true"/"false", "table" for objects/arrays. */
static void reason_val(ctx *c, const char *prefix, vref v)
{
    sf_strbuf *r = &c->m->rbuf;
    const char *p;
    size_t n;
    r->n = 0;
    sb_add(c, r, prefix, strlen(prefix));
    switch (v.t->type) {
    case JSON_STRING:
        p = str_of(c, v, &n);
        sb_add(c, r, p, n < REASON_BYTES ? n : REASON_BYTES);
        break;
    case JSON_NUMBER: {
        num x;
        num_parse(c, v.s + v.t->start, v.t->end - v.t->start, v.t->flags & JSON_F_INTEGER, &x);
        SB_NEED(c, r, 48);
        r->n += num_tostring(&x, r->p + r->n);
        break;
    }
    case JSON_TRUE: SB_LIT(c, r, "true"); break;
    case JSON_FALSE: SB_LIT(c, r, "false"); break;
    case JSON_NULL: SB_LIT(c, r, "nil"); break;
    default: SB_LIT(c, r, "table"); break;
    }
}

static void reason_lit(ctx *c, const char *text)
{
    c->m->rbuf.n = 0;
    sb_add(c, &c->m->rbuf, text, strlen(text));
}

static void reason_lit2(ctx *c, const char *a, const char *b)
{
    reason_lit(c, a);
    sb_add(c, &c->m->rbuf, b, strlen(b));
}

/* ------------------------------------------------------------------ */
/* dates                                                               */

static int dig2(const char *p)
{
    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9') return -1;
    return (p[0] - '0') * 10 + (p[1] - '0');
}

static int days_in(int y, int mo)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
    return d[mo - 1];
}

/* Salesforce date or datetime -> "YYYY-MM-DDTHH:MM:SS[.fff]Z" in out (>= 25
 * bytes); returns its length or 0 when p is not one. */
static size_t parse_date(const char *p, size_t n, char *out)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, a, b, tot;
    size_t i, k = 0;
    if (n < 10 || p[4] != '-' || p[7] != '-') return 0;
    if ((a = dig2(p)) < 0 || (b = dig2(p + 2)) < 0) return 0;
    y = a * 100 + b;
    mo = dig2(p + 5);
    d = dig2(p + 8);
    if (mo < 1 || mo > 12 || d < 1 || d > days_in(y, mo)) return 0;
    if (n > 10) {
        int sign, oh, om;
        if (n < 20 || p[10] != 'T' || p[13] != ':' || p[16] != ':') return 0;
        h = dig2(p + 11);
        mi = dig2(p + 14);
        sec = dig2(p + 17);
        if (h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 60) return 0;
        i = 19;
        if (p[i] == '.') {
            if (n < i + 4) return 0;
            for (k = 1; k <= 3; k++)
                if (p[i + k] < '0' || p[i + k] > '9') return 0;
            ms = (p[i + 1] - '0') * 100 + (p[i + 2] - '0') * 10 + (p[i + 3] - '0');
            i += 4;
        }
        if (i >= n) return 0;
        if (p[i] == 'Z') {
            if (i + 1 != n) return 0;
        } else if (p[i] == '+' || p[i] == '-') {
            sign = p[i] == '+' ? 1 : -1;
            if (n - i == 5) {
                oh = dig2(p + i + 1);
                om = dig2(p + i + 3);
            } else if (n - i == 6 && p[i + 3] == ':') {
                oh = dig2(p + i + 1);
                om = dig2(p + i + 4);
            } else {
                return 0;
            }
            if (oh < 0 || oh > 23 || om < 0 || om > 59) return 0;
            tot = h * 60 + mi - sign * (oh * 60 + om);
            if (tot < 0) {
                tot += 1440;
                if (--d < 1) {
                    if (--mo < 1) { mo = 12; y--; }
                    d = days_in(y < 0 ? 0 : y, mo);
                }
            } else if (tot >= 1440) {
                tot -= 1440;
                if (++d > days_in(y, mo)) {
                    d = 1;
                    if (++mo > 12) { mo = 1; y++; }
                }
            }
            if (y < 0 || y > 9999) return 0;
            h = tot / 60;
            mi = tot % 60;
        } else {
            return 0;
        }
    }
    k = 0;
    out[k++] = (char)('0' + y / 1000);
    out[k++] = (char)('0' + y / 100 % 10);
    out[k++] = (char)('0' + y / 10 % 10);
    out[k++] = (char)('0' + y % 10);
    out[k++] = '-';
    out[k++] = (char)('0' + mo / 10); out[k++] = (char)('0' + mo % 10);
    out[k++] = '-';
    out[k++] = (char)('0' + d / 10); out[k++] = (char)('0' + d % 10);
    out[k++] = 'T';
    out[k++] = (char)('0' + h / 10); out[k++] = (char)('0' + h % 10);
    out[k++] = ':';
    out[k++] = (char)('0' + mi / 10); out[k++] = (char)('0' + mi % 10);
    out[k++] = ':';
    out[k++] = (char)('0' + sec / 10); out[k++] = (char)('0' + sec % 10);
    if (ms != 0) {
        out[k++] = '.';
        out[k++] = (char)('0' + ms / 100);
        out[k++] = (char)('0' + ms / 10 % 10);
        out[k++] = (char)('0' + ms % 10);
    }
    out[k++] = 'Z';
    return k;
}

/* ------------------------------------------------------------------ */
/* C coercion rules: 1 value written to b, 0 nothing (null), -1 reject   */

static int is_space(unsigned char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';  /* JSON white space */
}

static const char *trim(const char *p, size_t *n)
{
    size_t a = 0, e = *n;
    while (a < e && is_space((unsigned char)p[a])) a++;
    while (e > a && is_space((unsigned char)p[e - 1])) e--;
    *n = e - a;
    return p + a;
}

/* A NUMBER token as the Lua value (see num). */
static void tok_num(ctx *c, vref v, num *x)
{
    num_parse(c, v.s + v.t->start, v.t->end - v.t->start, v.t->flags & JSON_F_INTEGER, x);
}

/* JSON integer literals of up to 18 digits are their own output text. */
static inline int short_int_literal(const json_tok *t, const char *s)
{
    size_t n = t->end - t->start;
    return (t->flags & JSON_F_INTEGER) && n <= 18 && !(n == 2 && s[t->start] == '-');
}

static int co_string(ctx *c, sf_strbuf *b, vref v)
{
    switch (v.t->type) {
    case JSON_STRING:
        put_jstring(c, b, v);
        return 1;
    case JSON_NUMBER: {
        num x;
        SB_NEED(c, b, 52);
        b->p[b->n++] = '"';
        if (short_int_literal(v.t, v.s)) {
            memcpy(b->p + b->n, v.s + v.t->start, v.t->end - v.t->start);
            b->n += v.t->end - v.t->start;
        } else {
            tok_num(c, v, &x);
            b->n += num_text(&x, b->p + b->n);
        }
        b->p[b->n++] = '"';
        return 1;
    }
    case JSON_TRUE: SB_LIT(c, b, "\"true\""); return 1;
    case JSON_FALSE: SB_LIT(c, b, "\"false\""); return 1;
    case JSON_NULL: return 0;
    default: reason_lit(c, "expected a scalar for string"); return -1;
    }
}

/* Writes a number (types.lua number rule output); non-finite: reject. */
static int put_num(ctx *c, sf_strbuf *b, const num *x)
{
    if (!x->is_int && !isfinite(x->d)) {
        char tmp[48];
        size_t n = num_tostring(x, tmp);
        c->m->rbuf.n = 0;
        SB_LIT(c, &c->m->rbuf, "not a number: ");
        sb_add(c, &c->m->rbuf, tmp, n);
        return -1;
    }
    SB_NEED(c, b, 48);
    b->n += num_text(x, b->p + b->n);
    return 1;
}

/* The number in a string (JSON white space trimmed), as tonumber would read it. */
static int string_num(ctx *c, vref v, num *x)
{
    size_t n;
    const char *p = trim(str_of(c, v, &n), &n);
    if (!json_is_number(p, n)) return 0;
    num_parse(c, p, n, text_is_int_literal(p, n), x);
    return 1;
}

static int co_number(ctx *c, sf_strbuf *b, vref v)
{
    num x;
    if (v.t->type == JSON_NUMBER) {
        if (short_int_literal(v.t, v.s)) {
            sb_add(c, b, v.s + v.t->start, v.t->end - v.t->start);
            return 1;
        }
        tok_num(c, v, &x);
        return put_num(c, b, &x);
    }
    if (v.t->type == JSON_NULL) return 0;
    if (v.t->type == JSON_STRING && string_num(c, v, &x)) return put_num(c, b, &x);
    reason_val(c, "not a number: ", v);
    return -1;
}

static int co_int(ctx *c, sf_strbuf *b, vref v)
{
    num x;
    int64_t i;
    int have = 0;
    if (v.t->type == JSON_NUMBER) {
        if (short_int_literal(v.t, v.s)) {
            sb_add(c, b, v.s + v.t->start, v.t->end - v.t->start);
            return 1;
        }
        tok_num(c, v, &x);
        have = 1;
    } else if (v.t->type == JSON_STRING) {
        have = string_num(c, v, &x);
    } else if (v.t->type == JSON_NULL) {
        return 0;
    }
    if (have && num_to_int64(&x, &i)) {
        SB_NEED(c, b, 24);
        b->n += fmt_int64(b->p + b->n, i);
        return 1;
    }
    reason_val(c, "not an integer: ", v);
    return -1;
}

static int co_bool(ctx *c, sf_strbuf *b, vref v)
{
    switch (v.t->type) {
    case JSON_TRUE: SB_LIT(c, b, "true"); return 1;
    case JSON_FALSE: SB_LIT(c, b, "false"); return 1;
    case JSON_NULL: return 0;
    case JSON_STRING: {
        size_t n;
        const char *p = str_of(c, v, &n);
        if (n == 4 && strncasecmp(p, "true", 4) == 0) { SB_LIT(c, b, "true"); return 1; }
        if (n == 5 && strncasecmp(p, "false", 5) == 0) { SB_LIT(c, b, "false"); return 1; }
        break;
    }
    default:
        break;
    }
    reason_val(c, "not a boolean: ", v);
    return -1;
}

static int co_date(ctx *c, sf_strbuf *b, vref v)
{
    if (v.t->type == JSON_STRING) {
        size_t n, k;
        const char *p = str_of(c, v, &n);
        SB_NEED(c, b, 32);
        k = parse_date(p, n, b->p + b->n + 1);
        if (k > 0) {
            b->p[b->n] = '"';
            b->p[b->n + 1 + k] = '"';
            b->n += k + 2;
            return 1;
        }
    } else if (v.t->type == JSON_NULL) {
        return 0;
    }
    reason_val(c, "not a date: ", v);
    return -1;
}

static int coerce_scalar(ctx *c, int type, sf_strbuf *b, vref v)
{
    switch (type) {
    case T_STRING: return co_string(c, b, v);
    case T_NUMBER: return co_number(c, b, v);
    case T_INT: return co_int(c, b, v);
    case T_BOOL: return co_bool(c, b, v);
    default: return co_date(c, b, v);
    }
}

/* ---- []string items: texts in m->lbuf, spans in m->spans ---- */

static uint32_t hash_bytes(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    while (n--) h = (h ^ (unsigned char)*p++) * 16777619u;
    return h;
}

static void hash_insert(sf_mapper *m, size_t idx)
{
    span *sp = &m->spans[idx];
    size_t mask = m->hcap - 1, h = hash_bytes(m->lbuf.p + sp->off, sp->len) & mask;
    while (m->hash[h] != 0) h = (h + 1) & mask;
    m->hash[h] = (uint32_t)idx + 1;
}

/* 1 when the item just written at lbuf[off..) duplicates an earlier one. */
static int list_dup(ctx *c, size_t off, size_t len)
{
    sf_mapper *m = c->m;
    const char *p = m->lbuf.p + off;
    size_t i, mask, h;
    if (m->nspans < 16) {
        for (i = 0; i < m->nspans; i++)
            if (m->spans[i].len == len && memcmp(m->lbuf.p + m->spans[i].off, p, len) == 0)
                return 1;
        return 0;
    }
    if (m->hcap < m->nspans * 2 + 2) {
        size_t cap = 0, want = 64;
        while (want < m->nspans * 4) want *= 2;
        if (m->hash != NULL) m->alloc(m->alloc_ud, m->hash, m->hcap * sizeof(uint32_t), 0);
        m->hash = NULL;
        m->hcap = 0;
        m->hash = grow_mem(c->L, m, NULL, &cap, sizeof(uint32_t), want);
        m->hcap = cap;
        m->hashed = 0;
        memset(m->hash, 0, m->hcap * sizeof(uint32_t));
    }
    for (; m->hashed < m->nspans; m->hashed++) hash_insert(m, m->hashed);
    mask = m->hcap - 1;
    for (h = hash_bytes(p, len) & mask; m->hash[h] != 0; h = (h + 1) & mask) {
        span *sp = &m->spans[m->hash[h] - 1];
        if (sp->len == len && memcmp(m->lbuf.p + sp->off, p, len) == 0) return 1;
    }
    return 0;
}

static void list_reset(sf_mapper *m)
{
    m->lbuf.n = 0;
    m->nspans = 0;
    if (m->hashed > 0) memset(m->hash, 0, m->hcap * sizeof(uint32_t));
    m->hashed = 0;
}

/* Keeps lbuf[off..n) as an item unless a duplicate (when dedup). */
static void list_commit(ctx *c, size_t off, int dedup)
{
    sf_mapper *m = c->m;
    size_t len = m->lbuf.n - off;
    if (dedup && list_dup(c, off, len)) {
        m->lbuf.n = off;
        return;
    }
    if (m->nspans == m->capspans)
        m->spans = grow_mem(c->L, m, m->spans, &m->capspans, sizeof(span), m->nspans + 1);
    m->spans[m->nspans].off = off;
    m->spans[m->nspans].len = len;
    m->nspans++;
}

/* Rolls the item list back to n items. */
static void list_truncate(sf_mapper *m, size_t n)
{
    if (n >= m->nspans) return;
    m->lbuf.n = m->spans[n].off;
    m->nspans = n;
    if (m->hashed > n) {  /* rebuild lazily */
        memset(m->hash, 0, m->hcap * sizeof(uint32_t));
        m->hashed = 0;
    }
}

static int list_add_scalar(ctx *c, vref v, int dedup)
{
    size_t off = c->m->lbuf.n;
    int rc = co_string(c, &c->m->lbuf, v);
    if (rc == 1) list_commit(c, off, dedup);
    else c->m->lbuf.n = off;
    return rc;
}

/* Adds a value (array: each element) as []string items. 0 ok, -1 reject. */
static int list_add(ctx *c, vref v, int dedup)
{
    if (v.t->type == JSON_OBJECT && v.t->size == 0) return 0;  /* as types.lua: {} is empty */
    if (v.t->type == JSON_ARRAY) {
        const json_tok *e = v.t + 1;
        uint32_t k;
        for (k = 0; k < v.t->size; k++, e += e->skip) {
            vref ev = {v.s, e};
            if (list_add_scalar(c, ev, dedup) < 0) return -1;
        }
        return 0;
    }
    return list_add_scalar(c, v, dedup) < 0 ? -1 : 0;
}

static void list_emit(ctx *c, sf_strbuf *b)
{
    sf_mapper *m = c->m;
    size_t i;
    sb_addc(c, b, '[');
    for (i = 0; i < m->nspans; i++) {
        if (i) sb_addc(c, b, ',');
        sb_add(c, b, m->lbuf.p + m->spans[i].off, m->spans[i].len);
    }
    sb_addc(c, b, ']');
}

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
static const json_tok *rec_get(ctx *c, seg *g)
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
static void resolve(ctx *c, const json_tok *obj, src *sr, uint32_t k, int *multi)
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
/* Lua values: decoding, calling, encoding                             */

static void push_vals(ctx *c, size_t lo, size_t hi, int multi)
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

/* Reason from the Lua value at idx, read without metamethods. */
static void reason_lua(ctx *c, int idx, const char *fallback)
{
    lua_State *L = c->L;
    sf_strbuf *r = &c->m->rbuf;
    r->n = 0;
    if (lua_type(L, idx) == LUA_TSTRING || lua_type(L, idx) == LUA_TNUMBER) {
        size_t n;
        const char *p = lua_tolstring(L, idx, &n);
        sb_add(c, r, p, n);
    } else if (lua_isnoneornil(L, idx)) {
        sb_add(c, r, fallback, strlen(fallback));
    } else {
        const char *tn = luaL_typename(L, idx);
        SB_LIT(c, r, "error object is a ");
        sb_add(c, r, tn, strlen(tn));
        SB_LIT(c, r, " value");
    }
}

/* stack: ..., f, args(nargs) where f is the user function, or opts.call
 * followed by the user function as its first argument (counted in nargs).
 * Returns 1 with the result on top (stack: ..., value), 0 when the function
 * returned nil/null without a reason, -1 with a reason in rbuf; on 0 and -1
 * the function and arguments are gone. */
static int call_user(ctx *c, int nargs)
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

/* Pushes f (anchor slot) ready for call_user: with opts.call, the wrapper then f. */
static int push_callee(ctx *c, int ref)
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

/* Encodes the Lua value at idx as JSON into b. 0 ok, -1 with reason. */
static int encode_lua(ctx *c, sf_strbuf *b, int idx, int depth)
{
    lua_State *L = c->L;
    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        SB_LIT(c, b, "null");
        return 0;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) {
            SB_LIT(c, b, "null");
            return 0;
        }
        break;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx)) SB_LIT(c, b, "true");
        else SB_LIT(c, b, "false");
        return 0;
    case LUA_TNUMBER:
        {
            num x;
            x.is_int = lua_isinteger(L, idx);
            if (x.is_int) x.i = (int64_t)lua_tointeger(L, idx);
            else x.d = (double)lua_tonumber(L, idx);
            return put_num(c, b, &x) == 1 ? 0 : -1;
        }
    case LUA_TSTRING: {
        size_t n;
        const char *p = lua_tolstring(L, idx, &n);
        put_escaped(c, b, p, n, 1);
        return 0;
    }
    case LUA_TTABLE: {
        lua_Integer len = (lua_Integer)lua_rawlen(L, idx), count = 0, i;
        int is_array = 1;
        if (depth >= ENC_MAX_DEPTH) {
            reason_lit(c, "cannot encode a table nested too deep");
            return -1;
        }
        luaL_checkstack(L, 4, "sf.mapper: stack overflow");
        lua_pushnil(L);
        while (lua_next(L, idx) != 0) {
            lua_pop(L, 1);
            count++;
            if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 ||
                lua_tointeger(L, -1) > len)
                is_array = 0;
        }
        if (is_array && count == len) {
            sb_addc(c, b, '[');
            for (i = 1; i <= len; i++) {
                if (i > 1) sb_addc(c, b, ',');
                lua_rawgeti(L, idx, i);
                if (encode_lua(c, b, -1, depth + 1) != 0) {
                    lua_pop(L, 1);
                    return -1;
                }
                lua_pop(L, 1);
            }
            sb_addc(c, b, ']');
            return 0;
        }
        sb_addc(c, b, '{');
        count = 0;
        lua_pushnil(L);
        while (lua_next(L, idx) != 0) {  /* stack: key, value */
            size_t n;
            const char *k;
            if (lua_type(L, -2) != LUA_TSTRING) {
                lua_pop(L, 2);
                reason_lit(c, "cannot encode a table with non-string keys");
                return -1;
            }
            if (count++ > 0) sb_addc(c, b, ',');
            k = lua_tolstring(L, -2, &n);
            put_escaped(c, b, k, n, 1);
            sb_addc(c, b, ':');
            if (encode_lua(c, b, -1, depth + 1) != 0) {
                lua_pop(L, 2);
                return -1;
            }
            lua_pop(L, 1);
        }
        sb_addc(c, b, '}');
        return 0;
    }
    default:
        break;
    }
    c->m->rbuf.n = 0;
    SB_LIT(c, &c->m->rbuf, "cannot encode a ");
    sb_add(c, &c->m->rbuf, luaL_typename(L, idx), strlen(luaL_typename(L, idx)));
    return -1;
}

/* Encodes the Lua value on top into tbuf and tokenizes it: the value as
 * vrefs appended to m->vec. 0 ok, -1 with reason. */
static int lua_to_vrefs(ctx *c)
{
    sf_mapper *m = c->m;
    m->tbuf.n = 0;
    if (encode_lua(c, &m->tbuf, -1, 0) != 0) return -1;
    if (m->tp == NULL) {
        m->tp = m->alloc(m->alloc_ud, NULL, 0, sizeof(json_parser));
        if (m->tp == NULL) nomem(c->L);
        json_parser_init(m->tp, m->alloc, m->alloc_ud);
    }
    if (json_parse(m->tp, m->tbuf.p, m->tbuf.n) != 0) {
        if (json_parse_oom(m->tp)) nomem(c->L);
        reason_lit(c, "cannot encode the value");
        return -1;
    }
    vec_push(c, m->tbuf.p, &m->tp->toks[0]);
    return 0;
}

/* ------------------------------------------------------------------ */
/* rows                                                                */

/* Writes one reject line for row r; the original value is vec[lo..hi). */
static void write_reject(ctx *c, const row *r, const src *used, size_t lo, size_t hi,
                         int multi)
{
    sf_mapper *m = c->m;
    sf_strbuf *j = &m->rej;
    size_t i;
    c->nrejected++;
    SB_LIT(c, j, "{\"stream\":");
    sb_add(c, j, m->stream_json, m->stream_json_len);
    SB_LIT(c, j, ",\"object\":");
    sb_add(c, j, m->object_json, m->object_json_len);
    SB_LIT(c, j, ",\"id\":");
    if (c->id != NULL && c->id->type == JSON_STRING) {
        vref v = {c->s, c->id};
        put_jstring(c, j, v);
    } else {
        SB_LIT(c, j, "null");
    }
    SB_LIT(c, j, ",\"field\":");
    if (r != NULL) sb_add(c, j, r->key, r->keylen - 1);  /* "to" without ':' */
    else SB_LIT(c, j, "null");
    SB_LIT(c, j, ",\"source\":");
    if (used != NULL) sb_add(c, j, used->name_json, used->name_json_len);
    else if (r != NULL) sb_add(c, j, r->src_json, r->src_json_len);
    else SB_LIT(c, j, "null");
    SB_LIT(c, j, ",\"value\":");
    if (multi) sb_addc(c, j, '[');
    for (i = lo; i < hi; i++) {
        vref v = m->vec[i];
        if (i > lo) sb_addc(c, j, ',');
        if (v.t->type == JSON_STRING) {
            if (!(v.t->flags & (JSON_F_ESCAPED | SF_TOK_RAW)) &&
                v.t->end - v.t->start <= VALUE_CHARS) {
                put_jstring(c, j, v);
            } else {
                size_t n;
                const char *p = str_of(c, v, &n);
                put_escaped(c, j, p, utf8_cut(p, n, VALUE_CHARS), 0);
            }
        } else {
            sb_add(c, j, v.s + v.t->start, v.t->end - v.t->start);
        }
    }
    if (multi) sb_addc(c, j, ']');
    if (hi == lo && !multi) SB_LIT(c, j, "null");
    SB_LIT(c, j, ",\"reason\":");
    put_escaped(c, j, m->rbuf.p, m->rbuf.n, 1);
    SB_LIT(c, j, "}\n");
}

/* Coerces the Lua value on top with the opts.types function for r->type.
 * The value is consumed. list: the result goes to the item list. */
static int coerce_lua(ctx *c, const row *r, sf_strbuf *b, int list, int dedup)
{
    lua_State *L = c->L;
    sf_mapper *m = c->m;
    int extra, rc;
    /* stack: value */
    extra = push_callee(c, m->types_ref[r->type]);  /* stack: value, [call], fn */
    lua_rotate(L, -2 - extra, -1);                  /* stack: [call], fn, value */
    rc = call_user(c, 1 + extra);
    if (rc <= 0) return rc;
    /* stack: result */
    if (!list) {
        size_t mark = b->n;
        if (encode_lua(c, b, -1, 0) != 0) {
            b->n = mark;
            rc = -1;
        }
    } else {
        size_t base = m->nvec;
        if (lua_to_vrefs(c) != 0) {
            rc = -1;
        } else {
            vref v = m->vec[base];
            if (v.t->type == JSON_ARRAY) {
                const json_tok *e = v.t + 1;
                uint32_t k;
                for (k = 0; k < v.t->size; k++, e += e->skip) {
                    size_t off = m->lbuf.n;
                    if (e->type == JSON_NULL) continue;
                    sb_add(c, &m->lbuf, v.s + e->start - (e->type == JSON_STRING),
                           e->end - e->start + 2 * (e->type == JSON_STRING));
                    list_commit(c, off, dedup);
                }
            } else if (v.t->type != JSON_NULL) {
                size_t off = m->lbuf.n;
                sb_add(c, &m->lbuf, v.s + v.t->start - (v.t->type == JSON_STRING),
                       v.t->end - v.t->start + 2 * (v.t->type == JSON_STRING));
                list_commit(c, off, dedup);
            }
        }
        m->nvec = base;
    }
    lua_pop(L, 1);
    return rc;
}

/* Evaluates row r for the current record. Scalar types append the value to
 * b; []string (b == NULL) appends items to the list. Returns 1 when a value
 * was produced, 0 when none (missing, null, dropped), -1 when rejected (the
 * reject line is written, b and the list are rolled back). */
static int eval_row(ctx *c, row *r, sf_strbuf *b, int dedup)
{
    sf_mapper *m = c->m;
    lua_State *L = c->L;
    size_t base = m->nvec, lo, hi, ohi, i, mark = b ? b->n : 0, items = m->nspans;
    int multi = 0, omulti, rc = 0, top = 0, have_lua = 0;
    src *used = NULL;
    json_tok dtok;

    /* 1. sources */
    if (r->is_const) {
        vec_push(c, m->now, &r->ctok);
    } else if (!r->all) {
        for (i = 0; i < r->nsrc; i++) {
            multi = 0;
            resolve(c, NULL, &r->srcs[i], 0, &multi);
            if (m->nvec > base) {
                used = &r->srcs[i];
                break;
            }
        }
    } else {
        for (i = 0; i < r->nsrc; i++) resolve(c, NULL, &r->srcs[i], 0, &multi);
        multi = 1;
    }
    if (m->nvec == base) return 0;
    lo = base;
    hi = ohi = m->nvec;
    omulti = multi;

    /* 2. derive */
    if (r->derive) {
        vref v = m->vec[lo];
        const char *p, *at = NULL;
        size_t n, k;
        if (multi || hi - lo != 1 || v.t->type != JSON_STRING) {
            if (multi) reason_lit(c, "not an email address: table");
            else reason_val(c, "not an email address: ", v);
            goto reject;
        }
        p = str_of(c, v, &n);
        for (k = n; k > 0; k--)
            if (p[k - 1] == '@') { at = p + k; break; }
        if (at == NULL || at == p + n) {
            reason_val(c, "not an email address: ", v);
            goto reject;
        }
        n = (size_t)(p + n - at);
        m->dbuf.n = 0;
        sb_add(c, &m->dbuf, at, n);
        for (k = 0; k < n; k++)
            if (m->dbuf.p[k] >= 'A' && m->dbuf.p[k] <= 'Z') m->dbuf.p[k] += 'a' - 'A';
        memset(&dtok, 0, sizeof dtok);
        dtok.type = JSON_STRING;
        dtok.flags = SF_TOK_RAW;
        dtok.end = (uint32_t)n;
        dtok.skip = 1;
        vec_push(c, m->dbuf.p, &dtok);
        lo = hi;
        hi = m->nvec;
    }

    /* 3. transform */
    if (r->transform) {
        int extra, nargs;
        top = lua_gettop(L);
        extra = push_callee(c, r->transform);
        push_vals(c, lo, hi, multi);
        nargs = 1 + extra;
        if (r->transform_rec) {
            if (!c->have_rec) {
                sf_json_push(L, c->s, c->rec, 0);
                lua_replace(L, c->recslot);
                c->have_rec = 1;
            }
            lua_pushvalue(L, c->recslot);
            nargs++;
        }
        rc = call_user(c, nargs);
        if (rc == 0) goto done;
        if (rc < 0) goto reject;
        have_lua = 1;  /* stack: top..., result */
        multi = 0;
        if (!m->types_ref[r->type]) {
            size_t vbase = m->nvec;
            if (lua_to_vrefs(c) != 0) goto reject;
            lo = vbase;
            hi = m->nvec;
            if (m->vec[lo].t->type == JSON_NULL) {
                rc = 0;
                goto done;
            }
        }
    }

    /* 4. coercion */
    if (m->types_ref[r->type]) {
        if (!top) top = lua_gettop(L);
        if (!have_lua) push_vals(c, lo, hi, multi);
        rc = coerce_lua(c, r, b, b == NULL, dedup);
        if (rc < 0) goto reject;
        if (b == NULL && rc == 1) rc = m->nspans > items ? 1 : 0;
        goto done;
    }
    if (b == NULL) {
        for (i = lo; i < hi; i++)
            if (list_add(c, m->vec[i], dedup) < 0) goto reject;
        rc = m->nspans > items ? 1 : 0;
        goto done;
    }
    if (multi) {
        static const char *const prefix[] = {
            NULL, "not a number: ", "not an integer: ", "not a boolean: ", "not a date: "
        };
        if (r->type == T_STRING) reason_lit(c, "expected a scalar for string");
        else reason_lit2(c, prefix[r->type], "table");
        goto reject;
    }
    rc = coerce_scalar(c, r->type, b, m->vec[lo]);
    if (rc < 0) goto reject;
    goto done;

reject:
    write_reject(c, r, used, base, ohi, omulti);
    rc = -1;
done:
    if (top) lua_settop(L, top);
    m->nvec = base;
    if (rc != 1) {
        if (b != NULL) b->n = mark;
        else list_truncate(m, items);
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* records                                                             */

/* Appends the field of slot sl to out; only_id: identity rows on Id only. */
static void emit_slot(ctx *c, const slotdef *sl, int *first, int only_id)
{
    sf_mapper *m = c->m;
    sf_strbuf *out = &m->out;
    size_t mark = out->n;
    row *r0 = &m->rows[m->order[sl->first]];
    uint32_t k;
    int state = 0;  /* 0 nothing yet, 1 a scalar, 2 list items */

    if (sl->n == 1 && only_id && !r0->identity_id) return;
    if (sl->n == 1 && r0->simple) {
        const json_tok *v = rec_get(c, &r0->srcs[0].segs[0]);
        vref vv;
        int rc;
        if (v == NULL || v->type == JSON_NULL) return;
        SB_NEED(c, out, r0->keylen + 1);
        if (!*first) out->p[out->n++] = ',';
        memcpy(out->p + out->n, r0->key, r0->keylen);
        out->n += r0->keylen;
        vv.s = c->s;
        vv.t = v;
        rc = coerce_scalar(c, r0->type, out, vv);
        if (rc == 1) {
            *first = 0;
            return;
        }
        out->n = mark;
        if (rc < 0) {
            size_t base = m->nvec;
            vec_push(c, c->s, v);
            write_reject(c, r0, &r0->srcs[0], base, base + 1, 0);
            m->nvec = base;
        }
        return;
    }
    if (!*first) sb_addc(c, out, ',');
    sb_add(c, out, r0->key, r0->keylen);
    if (sl->n == 1) {
        if (r0->type == T_LIST) {
            list_reset(m);
            if (eval_row(c, r0, NULL, r0->all) == 1) {
                list_emit(c, out);
                state = 2;
            }
        } else if (eval_row(c, r0, out, 0) == 1) {
            state = 1;
        }
    } else {
        list_reset(m);
        for (k = 0; k < sl->n && state != 1; k++) {
            row *r = &m->rows[m->order[sl->first + k]];
            if (only_id && !r->identity_id) continue;
            if (r->type == T_LIST) {
                if (eval_row(c, r, NULL, 1) == 1) state = 2;
            } else if (state == 0 && eval_row(c, r, out, 0) == 1) {
                state = 1;
            }
        }
        if (state == 2) list_emit(c, out);
    }
    if (state == 0) out->n = mark;
    else *first = 0;
}

static void map_record(ctx *c, const json_tok *rec)
{
    lua_State *L = c->L;
    sf_mapper *m = c->m;
    sf_strbuf *out = &m->out;
    const json_tok *del, *ts;
    uint32_t k, i, ri = (uint32_t)(rec - c->toks);
    int first = 1;

    c->rec = rec;
    c->id = NULL;
    c->nkeys = 0;
    if (c->have_rec) {
        lua_pushnil(L);
        lua_replace(L, c->recslot);
        c->have_rec = 0;
    }
    if (rec->type != JSON_OBJECT) {
        size_t base = m->nvec;
        vec_push(c, c->s, rec);
        reason_lit(c, "record is not an object");
        write_reject(c, NULL, NULL, base, base + 1, 0);
        m->nvec = base;
        return;
    }
    if (m->capkeys < rec->size)
        m->keys = grow_mem(L, m, m->keys, &m->capkeys, sizeof(uint32_t), rec->size);
    for (k = 0, i = ri + 1; k < rec->size; k++) {
        m->keys[k] = i;
        i += 1 + c->toks[i + 1].skip;
    }
    c->nkeys = rec->size;

    c->id = rec_get(c, &m->id_seg);
    ts = rec_get(c, &m->ts_seg);
    if (ts != NULL && ts->type == JSON_STRING) {  /* the cursor: one record's (ts, Id) */
        c->last_ts = ts;
        c->last_id = c->id != NULL && c->id->type == JSON_STRING ? c->id : NULL;
    }
    del = rec_get(c, &m->del_seg);

    if (del != NULL && del->type == JSON_TRUE) {
        SB_LIT(c, out, "{\"_deleted\":true,\"_object\":");
        sb_add(c, out, m->object_json, m->object_json_len);
        SB_LIT(c, out, ",\"_id\":");
        if (c->id != NULL && c->id->type == JSON_STRING) {
            vref v = {c->s, c->id};
            put_jstring(c, out, v);
        } else {
            SB_LIT(c, out, "null");
        }
        SB_LIT(c, out, ",\"_deleted_at\":");
        {
            vref v = {c->s, ts};
            size_t mark = out->n;
            if (ts == NULL || co_date(c, out, v) != 1) {
                out->n = mark;
                SB_LIT(c, out, "null");
            }
        }
        first = 0;
        for (k = 0; k < m->nslots; k++) emit_slot(c, &m->slots[k], &first, 1);
        SB_LIT(c, out, "}\n");
        c->ndeleted++;
        return;
    }

    sb_addc(c, out, '{');
    for (k = 0; k < m->nslots; k++) emit_slot(c, &m->slots[k], &first, 0);
    SB_LIT(c, out, "}\n");
    c->nrecords++;
}

static void set_stat_tok(lua_State *L, ctx *c, const json_tok *t, const char *name)
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
    ctx c;
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
    list_reset(m);
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

static void mapper_free(sf_mapper *m)
{
    sf_strbuf *bufs[] = {&m->out, &m->rej, &m->ubuf, &m->rbuf, &m->lbuf, &m->tbuf, &m->dbuf,
                    &m->nbuf};
    size_t i;
    if (m->alloc == NULL) return;
    for (i = 0; i < sizeof bufs / sizeof bufs[0]; i++) sf_strbuf_free(bufs[i]);
    if (m->vec) m->alloc(m->alloc_ud, m->vec, m->capvec * sizeof(vref), 0);
    if (m->spans) m->alloc(m->alloc_ud, m->spans, m->capspans * sizeof(span), 0);
    if (m->hash) m->alloc(m->alloc_ud, m->hash, m->hcap * sizeof(uint32_t), 0);
    if (m->keys) m->alloc(m->alloc_ud, m->keys, m->capkeys * sizeof(uint32_t), 0);
    if (m->tp) {
        json_parser_free(m->tp);
        m->alloc(m->alloc_ud, m->tp, sizeof(json_parser), 0);
    }
    m->vec = NULL;
    m->spans = NULL;
    m->hash = NULL;
    m->keys = NULL;
    m->tp = NULL;
    m->nvec = m->capvec = m->nspans = m->capspans = m->hcap = m->hashed = m->capkeys = 0;
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
    mapper_free(m);
    return 0;
}

static int l_gc(lua_State *L)
{
    sf_mapper *m = luaL_checkudata(L, 1, SF_MAPPER_MT);
    mapper_free(m);  /* a busy mapper is on a C stack frame: never collected */
    return 0;
}

static int l_tostring(lua_State *L)
{
    sf_mapper *m = luaL_checkudata(L, 1, SF_MAPPER_MT);
    if (!m->open) lua_pushliteral(L, "sf.mapper (closed)");
    else lua_pushfstring(L, "sf.mapper (%d rows)", (int)m->nrows);
    return 1;
}

/* ------------------------------------------------------------------ */
/* compile                                                             */

/* Compile-time stack: 1 rows, 2 opts, 3 mapper, 4 anchor table. */
#define ANCHOR 4

static int anchor_top(lua_State *L, sf_mapper *m)
{
    lua_rawseti(L, ANCHOR, ++m->nanchor);
    return m->nanchor;
}

/* Zeroed memory owned by the anchor table (collected with the mapper). */
static void *cnew(lua_State *L, sf_mapper *m, size_t size)
{
    void *p = lua_newuserdatauv(L, size ? size : 1, 0);
    memset(p, 0, size ? size : 1);
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

/* JSON-quoted s plus suffix, anchored. */
static const char *anchor_json(lua_State *L, sf_mapper *m, const char *s, size_t n,
                               const char *suffix, size_t *len)
{
    ctx c;
    const char *r;
    memset(&c, 0, sizeof c);
    c.L = L;
    c.m = m;
    m->rbuf.n = 0;
    put_escaped(&c, &m->rbuf, s, n, 1);
    sb_add(&c, &m->rbuf, suffix, strlen(suffix));
    lua_pushlstring(L, m->rbuf.p, m->rbuf.n);
    r = lua_tolstring(L, -1, len);
    anchor_top(L, m);
    return r;
}

static int rawfield(lua_State *L, int t, const char *k)
{
    lua_pushstring(L, k);
    return lua_rawget(L, t);
}

static void compile_opts(lua_State *L, sf_mapper *m)
{
    size_t n;
    const char *s;
    int t;

    if (rawfield(L, 2, "object") != LUA_TSTRING || lua_rawlen(L, -1) == 0)
        luaL_error(L, "sf.mapper.compile: opts.object must be a non-empty string");
    s = lua_tolstring(L, -1, &n);
    m->object_json = anchor_json(L, m, s, n, "", &m->object_json_len);
    lua_pop(L, 1);

    if (rawfield(L, 2, "stream") != LUA_TSTRING || lua_rawlen(L, -1) == 0)
        luaL_error(L, "sf.mapper.compile: opts.stream must be a non-empty string");
    s = lua_tolstring(L, -1, &n);
    m->stream_json = anchor_json(L, m, s, n, "", &m->stream_json_len);
    lua_pop(L, 1);

    t = rawfield(L, 2, "timestamp_field");
    if (t == LUA_TNIL) {
        m->ts_seg.key = "LastModifiedDate";
        m->ts_seg.len = 16;
    } else if (t != LUA_TSTRING || lua_rawlen(L, -1) == 0) {
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

    t = rawfield(L, 2, "now");
    if (t == LUA_TSTRING) {
        m->now = anchor_string(L, m, -1, &m->nowlen);
        if (!json_utf8_valid(m->now, m->nowlen) || m->nowlen >= UINT32_MAX)
            luaL_error(L, "sf.mapper.compile: opts.now must be valid UTF-8");
    } else if (t != LUA_TNIL) {
        luaL_error(L, "sf.mapper.compile: opts.now must be a string");
    }
    lua_pop(L, 1);

    t = rawfield(L, 2, "types");
    if (t == LUA_TTABLE) {
        int tt = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, tt) != 0) {  /* stack: types, key, value */
            int k;
            const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
            for (k = 0; name != NULL && type_names[k] != NULL; k++)
                if (strcmp(name, type_names[k]) == 0) break;
            if (name == NULL || type_names[k] == NULL)
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

    t = rawfield(L, 2, "call");
    if (t == LUA_TFUNCTION) m->call_ref = anchor_top(L, m);
    else if (t != LUA_TNIL) luaL_error(L, "sf.mapper.compile: opts.call must be a function");
    else lua_pop(L, 1);
}

/* Source path at idx (a string) for rows[i]. */
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
    if (n == 0 || sr->nseg > MAX_SEGS || n >= UINT32_MAX)
        luaL_error(L, "sf.mapper.compile: rows[%d].sf: bad field path \"%s\"", i, s);
    sr->segs = cnew(L, m, sr->nseg * sizeof(seg));
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

/* rows[i] is on top of the stack. */
static void compile_row(lua_State *L, sf_mapper *m, row *r, int i)
{
    static const char *const combines[] = {"first", "all", NULL};
    static const char *const derives[] = {"emaildomain", NULL};
    static const char *const consts[] = {"now", NULL};
    int t = lua_gettop(L), st, k;
    size_t n;
    const char *s;

    r->index = (uint32_t)i;
    if (rawfield(L, t, "to") != LUA_TSTRING || lua_rawlen(L, -1) == 0)
        luaL_error(L, "sf.mapper.compile: rows[%d].to must be a non-empty string", i);
    s = lua_tolstring(L, -1, &n);
    r->key = anchor_json(L, m, s, n, ":", &r->keylen);
    lua_pop(L, 1);

    rawfield(L, t, "type");
    if ((k = check_enum(L, -1, type_names)) < 0)
        luaL_error(L, "sf.mapper.compile: rows[%d].type must be one of string, number, int, "
                   "bool, date, []string", i);
    r->type = (uint8_t)k;
    lua_pop(L, 1);

    st = rawfield(L, t, "sf");  /* stack: sf */
    if (st == LUA_TNIL) {
        lua_pop(L, 1);
        st = rawfield(L, t, "from");
    }
    if (rawfield(L, t, "const") != LUA_TNIL) {  /* stack: sf, const */
        if (check_enum(L, -1, consts) < 0)
            luaL_error(L, "sf.mapper.compile: rows[%d].const must be \"now\"", i);
        if (st != LUA_TNIL)
            luaL_error(L, "sf.mapper.compile: rows[%d]: sf and const are exclusive", i);
        if (m->now == NULL)
            luaL_error(L, "sf.mapper.compile: rows[%d].const = \"now\" needs opts.now", i);
        r->is_const = 1;
        r->ctok.type = JSON_STRING;
        r->ctok.flags = SF_TOK_RAW;
        r->ctok.end = (uint32_t)m->nowlen;
        r->ctok.skip = 1;
        r->src_json = "null";
        r->src_json_len = 4;
    } else if (st == LUA_TSTRING) {
        r->nsrc = 1;
        r->srcs = cnew(L, m, sizeof(src));
        compile_src(L, m, &r->srcs[0], -2, i);
        r->src_json = r->srcs[0].name_json;
        r->src_json_len = r->srcs[0].name_json_len;
    } else if (st == LUA_TTABLE) {
        int sfi = lua_absindex(L, -2);
        lua_Integer j, ns = (lua_Integer)lua_rawlen(L, sfi);
        luaL_Buffer b;
        if (ns < 1 || ns > 64)
            luaL_error(L, "sf.mapper.compile: rows[%d].sf must be a field path or an array "
                       "of 1 to 64 of them", i);
        r->nsrc = (uint32_t)ns;
        r->srcs = cnew(L, m, (size_t)ns * sizeof(src));
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
    } else if (st == LUA_TNIL) {
        luaL_error(L, "sf.mapper.compile: rows[%d].sf is required (or const)", i);
    } else {
        luaL_error(L, "sf.mapper.compile: rows[%d].sf must be a field path or an array of them",
                   i);
    }
    lua_pop(L, 2);

    if (rawfield(L, t, "combine") != LUA_TNIL) {
        if ((k = check_enum(L, -1, combines)) < 0)
            luaL_error(L, "sf.mapper.compile: rows[%d].combine must be \"first\" or \"all\"", i);
        r->all = (uint8_t)k;
        if (r->all && r->type != T_LIST)
            luaL_error(L, "sf.mapper.compile: rows[%d].combine = \"all\" needs type \"[]string\"",
                       i);
    }
    lua_pop(L, 1);

    if (rawfield(L, t, "derive") != LUA_TNIL) {
        if (check_enum(L, -1, derives) < 0)
            luaL_error(L, "sf.mapper.compile: rows[%d].derive must be \"emaildomain\"", i);
        if (r->is_const)
            luaL_error(L, "sf.mapper.compile: rows[%d].derive needs sf", i);
        r->derive = 1;
    }
    lua_pop(L, 1);

    st = rawfield(L, t, "transform");
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

    st = rawfield(L, t, "identity");
    if (st != LUA_TNIL && st != LUA_TBOOLEAN)
        luaL_error(L, "sf.mapper.compile: rows[%d].identity must be a boolean", i);
    r->identity = (uint8_t)lua_toboolean(L, -1);
    lua_pop(L, 1);
    r->simple = !r->is_const && r->nsrc == 1 && r->srcs[0].nseg == 1 && !r->derive &&
                !r->transform && r->type != T_LIST && !m->types_ref[r->type];
    r->identity_id = r->identity && r->nsrc == 1 && r->srcs[0].nseg == 1 &&
                     r->srcs[0].segs[0].len == 2 && memcmp(r->srcs[0].segs[0].key, "Id", 2) == 0;
}

/* mapper.compile(rows, opts) -> mapper */
static int l_compile(lua_State *L)
{
    sf_mapper *m;
    lua_Integer nrows, i;
    uint32_t k, j, pos = 0;
    uint8_t *done;

    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    /* the userdata exists, closed, before anything is allocated */
    m = lua_newuserdatauv(L, sizeof *m, 1);     /* stack: rows, opts, mapper */
    memset(m, 0, sizeof *m);
    m->alloc = (sf_alloc_fn)lua_getallocf(L, &m->alloc_ud);
    {
        sf_strbuf *bufs[] = {&m->out, &m->rej, &m->ubuf, &m->rbuf, &m->lbuf, &m->tbuf,
                            &m->dbuf, &m->nbuf};
        size_t b;
        for (b = 0; b < sizeof bufs / sizeof bufs[0]; b++)
            sf_strbuf_init(bufs[b], m->alloc, m->alloc_ud);
    }
    luaL_setmetatable(L, SF_MAPPER_MT);
    lua_newtable(L);                            /* stack: rows, opts, mapper, anchor */
    lua_pushvalue(L, ANCHOR);
    lua_setiuservalue(L, 3, 1);

    compile_opts(L, m);

    nrows = (lua_Integer)lua_rawlen(L, 1);
    if (nrows < 1 || nrows > 100000)
        luaL_error(L, "sf.mapper.compile: rows must be a non-empty array");
    m->rows = cnew(L, m, (size_t)nrows * sizeof(row));
    for (i = 1; i <= nrows; i++) {
        if (lua_rawgeti(L, 1, i) != LUA_TTABLE)
            luaL_error(L, "sf.mapper.compile: rows[%d] must be a table", (int)i);
        compile_row(L, m, &m->rows[i - 1], (int)i);
        lua_settop(L, ANCHOR);
    }
    m->nrows = (uint32_t)nrows;

    /* slots: rows grouped by `to`, in order of first appearance */
    m->order = cnew(L, m, (size_t)nrows * sizeof(uint32_t));
    m->slots = cnew(L, m, (size_t)nrows * sizeof(slotdef));
    done = cnew(L, m, (size_t)nrows);
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
    m->open = 1;
    lua_settop(L, 3);
    return 1;
}

static const luaL_Reg mapper_funcs[] = {
    {"compile", l_compile},
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
    {"__index", NULL},  /* set below */
    {NULL, NULL}
};

static void createmeta(lua_State *L)
{
    luaL_newmetatable(L, SF_MAPPER_MT);  /* stack: meta */
    luaL_setfuncs(L, mapper_meta, 0);
    luaL_newlibtable(L, mapper_methods); /* stack: meta, methods */
    luaL_setfuncs(L, mapper_methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
}

/* TYPES: the row type names, in the order messages list them, from the one
 * C table, so Lua validators need no copy of the list. */
static void push_type_names(lua_State *L)
{
    int k;
    lua_createtable(L, NTYPES, 0);
    for (k = 0; type_names[k] != NULL; k++) {
        lua_pushstring(L, type_names[k]);
        lua_rawseti(L, -2, k + 1);
    }
}

int luaopen_sf_mapper(lua_State *L)
{
    luaL_newlib(L, mapper_funcs);  /* stack: module */
    push_type_names(L);
    lua_setfield(L, -2, "TYPES");
    createmeta(L);
    return 1;
}
