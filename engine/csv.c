/* sf.csv: a Bulk API 2.0 query results page (CSV) read as it arrives, its
 * records handed out as sf.page pages, so sf.mapper maps Bulk results
 * exactly as it maps REST pages, piece by piece, with no JSON in between.
 *
 *   local csv = require "sf.csv"
 *   local rd = csv.reader(columns, object)
 *   local p, err, code = rd:feed(text)  -- the records the text completed, as an sf.page
 *   local p, err, code = rd:finish()    -- the end of the page: the last record
 *       -- malformed CSV: nil, "malformed CSV at line N: <what>", "CSV"
 *       -- a record over 256 MB: nil, message, "TOO_LARGE"
 *   rd.records    -- records read so far (the header row is not one)
 *   rd.header     -- whether the header row has been read
 *   rd:close()    -- frees the buffers (also __gc/__close); idempotent
 *
 *   text        any piece of one results page: RFC 4180, a header row, ""
 *               escapes, line breaks inside quoted values, LF or CRLF line
 *               endings; pieces may split a record, a cell or a UTF-8
 *               sequence anywhere; an empty page is a page without records
 *   columns     { [header name] = describe type }: "boolean" -> true/false;
 *               "int"/"long" -> integer; "double"/"currency"/"percent" ->
 *               number (a value that is not a JSON number stays a string, so
 *               the mapper rejects it with a reason); "date"/"datetime" ->
 *               string as given, except Bulk's "2024-01-15T10:30:00.000Z"
 *               becomes REST's "2024-01-15T10:30:00.000+0000"; any other type,
 *               or a header not in columns (looked up exactly, then ignoring
 *               ASCII case) -> string
 *   object      attributes.type of every record
 *   p           an sf.page (done, no totalSize) whose records are
 *               {"attributes":{"type":"Lead"},"Id":"00Q...",...}: keys in header
 *               order, an empty cell is null, "Parent.Field" headers nest
 *               ({"RecordType":{"Name":"x"}}, null when all of the parent's
 *               cells are empty). Nested objects carry no attributes.
 *
 * The page's text is the text of its records (plus the keys and the cells
 * that had to change: "" pairs, datetimes), its tokens point into it; no
 * JSON is written or parsed. Memory: the last piece fed plus one unfinished
 * record. Strict (see csv.h); after a failure the reader only repeats it. */
#include <lua.h>
#include <lauxlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "csv.h"
#include "page.h"
#include "util.h"

int luaopen_sf_csv(lua_State *L);

#define MAX_DEPTH 32    /* segments of one dotted header name */

/* ---- types ---- */

int sf_csv_type_of(const char *t, size_t n)
{
#define IS(lit) (n == sizeof(lit) - 1 && memcmp(t, lit, n) == 0)
    if (IS("boolean")) return SF_CSV_BOOL;
    if (IS("int") || IS("long")) return SF_CSV_INT;
    if (IS("double") || IS("currency") || IS("percent")) return SF_CSV_NUMBER;
    if (IS("date")) return SF_CSV_DATE;
    if (IS("datetime")) return SF_CSV_DATETIME;
#undef IS
    return SF_CSV_STRING;
}

/* ---- the reader ---- */

void sf_csv_reader_init(sf_csv_reader *r, const char *s, size_t n)
{
    memset(r, 0, sizeof *r);
    r->s = s;
    r->n = n;
    if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) r->pos = 3;
}

static int fail_at(sf_csv_reader *r, size_t off, const char *msg)
{
    r->err_off = off;
    r->err_msg = msg;
    return -1;
}

int sf_csv_read(sf_csv_reader *r, sf_csv_cell *cells, size_t max, size_t *ncells)
{
    const char *s = r->s;
    size_t n = r->n, pos = r->pos, count = 0;
    if (pos >= n) return r->more ? 2 : 0;
    for (;;) {
        sf_csv_cell c = {0, 0, 0, 0};
        if (pos < n && s[pos] == '"') {
            size_t open = pos;
            c.quoted = 1;
            c.off = ++pos;
            for (;;) {
                const char *q = memchr(s + pos, '"', n - pos);
                if (q == NULL) return r->more ? 2 : fail_at(r, open, "unterminated quoted value");
                pos = (size_t)(q - s);
                if (pos + 1 < n && s[pos + 1] == '"') {
                    c.dq = 1;
                    pos += 2;
                    continue;
                }
                if (pos + 1 >= n && r->more) return 2; /* a quote pair may be split */
                break;
            }
            c.len = pos - c.off;
            pos++;  /* the closing quote */
            if (pos < n && s[pos] != ',' && s[pos] != '\n' &&
                !(s[pos] == '\r' && pos + 1 < n && s[pos + 1] == '\n')) {
                if (s[pos] == '\r' && pos + 1 >= n && r->more) return 2;
                return fail_at(r, pos, "text after a closing quote");
            }
        } else {
            c.off = pos;
            while (pos < n && s[pos] != ',' && s[pos] != '\n') {
                if (s[pos] == '"') return fail_at(r, pos, "quote inside an unquoted value");
                if (s[pos] == '\r') {
                    if (pos + 1 < n && s[pos + 1] == '\n') break;
                    if (pos + 1 >= n && r->more) return 2;
                    return fail_at(r, pos, "carriage return outside quotes");
                }
                pos++;
            }
            c.len = pos - c.off;
        }
        if (count < max) cells[count] = c;
        count++;
        if (pos >= n) {
            if (r->more) return 2; /* the record's line break has not arrived */
            break;
        }
        if (s[pos] == ',') {
            pos++;
            continue;
        }
        pos += s[pos] == '\r' ? 2 : 1;  /* \r\n or \n */
        break;
    }
    r->pos = pos;
    *ncells = count;
    return 1;
}

size_t sf_csv_line_of(const char *s, size_t n, size_t off)
{
    size_t line = 1;
    const char *p = s, *e = s + (off < n ? off : n);
    while (p < e) {
        const char *q = memchr(p, '\n', (size_t)(e - p));
        if (q == NULL) break;
        line++;
        p = q + 1;
    }
    return line;
}

size_t sf_csv_unquote(const char *s, const sf_csv_cell *c, char *out)
{
    const char *p = s + c->off, *e = p + c->len;
    size_t o = 0;
    if (!c->dq) {
        memcpy(out, p, c->len);
        return c->len;
    }
    while (p < e) {
        out[o++] = *p;
        p += (*p == '"') ? 2 : 1;
    }
    return o;
}

static int digits(const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

size_t sf_csv_datetime(const char *s, size_t n, char *out)
{
    /* YYYY-MM-DDTHH:MM:SS = 19 bytes, then [.f{1,9}] and Z */
    size_t frac;
    if (n < 20 || s[n - 1] != 'Z') return 0;
    if (!digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' || !digits(s + 8, 2) ||
        s[10] != 'T' || !digits(s + 11, 2) || s[13] != ':' || !digits(s + 14, 2) || s[16] != ':' ||
        !digits(s + 17, 2))
        return 0;
    frac = n - 20;  /* bytes between the seconds and the Z */
    if (frac > 0 && (s[19] != '.' || frac < 2 || frac > 10 || !digits(s + 20, frac - 1))) return 0;
    memcpy(out, s, n - 1);
    if (frac == 0) {
        memcpy(out + 19, ".000+0000", 9);
        return 28;
    }
    memcpy(out + n - 1, "+0000", 5);
    return n + 4;
}

/* The offset of the first byte of s[0..n) that is not valid UTF-8, or n. */
static size_t utf8_bad(const char *s, size_t n)
{
    size_t i = 0, k;
    while (i < n) {
        if (n - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if ((w & 0x8080808080808080ull) == 0) {
                i += 8;
                continue;
            }
        }
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        k = json_utf8_seq(s + i, n - i);
        if (k == 0) return i;
        i += k;
    }
    return n;
}

/* ---- errors ---- */

static int set_err(sf_csv_error *err, const char *code, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int set_err(sf_csv_error *err, const char *code, size_t line, const char *fmt, ...)
{
    va_list ap;
    int k = 0;
    err->code = code;
    err->line = line;
    if (line > 0)
        k = snprintf(err->msg, sizeof err->msg, "malformed CSV at line %zu: ", line);
    if (k < 0 || (size_t)k >= sizeof err->msg) k = 0;
    va_start(ap, fmt);
    vsnprintf(err->msg + k, sizeof err->msg - (size_t)k, fmt, ap);
    va_end(ap);
    return -1;
}

static int oom(sf_csv_error *err)
{
    return set_err(err, "MEMORY", 0, "sf.csv: not enough memory");
}

/* ---- the stream ---- */

struct sf_csv_node {
    uint32_t name_off, name_len; /* the segment's text in the prefix */
    int32_t first, last, next;   /* children, next sibling; -1: none */
    int32_t col;                 /* leaf: header column; group: -1 */
    uint32_t nchild;             /* group: its members */
    uint32_t leaf_first, leaf_n; /* group: its leaf columns are leaves[leaf_first..+leaf_n) */
};

void sf_csv_stream_init(sf_csv_stream *s, sf_alloc_fn alloc, void *ud)
{
    memset(s, 0, sizeof *s);
    s->alloc = alloc;
    s->ud = ud;
    s->line = 1;
    sf_strbuf_init(&s->buf, alloc, ud);
    sf_strbuf_init(&s->prefix, alloc, ud);
    sf_strbuf_init(&s->extra, alloc, ud);
}

static void *arr(sf_csv_stream *s, size_t count, size_t elem)
{
    size_t bytes;
    if (sf_size_mul(count, elem, &bytes) != 0 || bytes == 0) return NULL;
    return sf_mem(s->alloc, s->ud, NULL, 0, bytes);
}

static void arr_free(sf_csv_stream *s, void *p, size_t count, size_t elem)
{
    if (p != NULL) sf_mem(s->alloc, s->ud, p, count * elem /* allocated */, 0);
}

void sf_csv_stream_free(sf_csv_stream *s)
{
    arr_free(s, s->recs, s->caprec, sizeof *s->recs);
    arr_free(s, s->toks, s->captok, sizeof *s->toks);
    arr_free(s, s->fix, s->capfix, sizeof *s->fix);
    arr_free(s, s->cells, s->ncols + 1, sizeof *s->cells);
    arr_free(s, s->leaves, s->ncols + 1, sizeof *s->leaves);
    arr_free(s, s->nodes, s->capnodes, sizeof *s->nodes);
    arr_free(s, s->types, s->ncols + 1, 1);
    sf_strbuf_free(&s->extra);
    sf_strbuf_free(&s->prefix);
    sf_strbuf_free(&s->buf);
    sf_csv_stream_init(s, s->alloc, s->ud);
}

/* The 1-based line of offset off of the unread text buf[start..]. */
static size_t line_at(const sf_csv_stream *s, size_t off)
{
    return s->line - 1 + sf_csv_line_of(s->buf.p, s->buf.n, s->start + off);
}

int sf_csv_stream_feed(sf_csv_stream *s, const char *p, size_t n, sf_csv_error *err)
{
    memset(err, 0, sizeof *err);
    if (n > 2 * SF_CSV_MAX_RECORD || s->buf.n - s->start > 2 * SF_CSV_MAX_RECORD - n)
        return set_err(err, "TOO_LARGE", 0, "sf.csv: more than %zu bytes of unread CSV text",
                       2 * SF_CSV_MAX_RECORD);
    if (sf_strbuf_add(&s->buf, p, n) != 0) return oom(err);
    return 0;
}

long sf_csv_stream_header(sf_csv_stream *s, int final, sf_csv_cell *cells, size_t max, sf_csv_error *err)
{
    sf_csv_reader r;
    size_t nc = 0;
    int rc;
    memset(err, 0, sizeof *err);
    if (s->header) return (long)s->ncols;
    if (s->start == 0 && s->buf.n < 3 && !final &&
        memcmp(s->buf.p ? s->buf.p : "", "\xEF\xBB\xBF", s->buf.n) == 0)
        return 0; /* could still become a byte order mark */
    sf_csv_reader_init(&r, s->buf.p ? s->buf.p : "", s->buf.n);
    if (s->start > r.pos) r.pos = s->start;
    r.more = !final;
    rc = sf_csv_read(&r, cells, max, &nc);
    if (rc < 0) return set_err(err, "CSV", sf_csv_line_of(s->buf.p, s->buf.n, r.err_off), "%s", r.err_msg);
    if (rc != 1) return 0;
    if (nc > (size_t)INT32_MAX / 4) return set_err(err, "CSV", 1, "the header has too many columns");
    return (long)nc;
}

static int32_t new_node(sf_csv_stream *s, int32_t parent, uint32_t name_off, uint32_t name_len, int32_t col)
{
    sf_csv_node *nd;
    int32_t id = (int32_t)s->nnodes++;
    nd = &s->nodes[id];
    memset(nd, 0, sizeof *nd);
    nd->name_off = name_off;
    nd->name_len = name_len;
    nd->first = nd->last = nd->next = -1;
    nd->col = col;
    if (parent >= 0) {
        sf_csv_node *p = &s->nodes[parent];
        if (p->last >= 0) s->nodes[p->last].next = id;
        else p->first = id;
        p->last = id;
        p->nchild++;
    }
    return id;
}

static int32_t find_child(const sf_csv_stream *s, int32_t parent, const char *name, size_t nlen)
{
    int32_t c;
    for (c = s->nodes[parent].first; c >= 0; c = s->nodes[c].next)
        if (s->nodes[c].name_len == nlen && memcmp(s->prefix.p + s->nodes[c].name_off, name, nlen) == 0)
            return c;
    return -1;
}

/* Depth-first: leaf columns of each group are contiguous in leaves[]. */
static void collect_leaves(sf_csv_stream *s, int32_t id, size_t *n)
{
    sf_csv_node *nd = &s->nodes[id];
    int32_t c;
    if (nd->col >= 0) {
        s->leaves[(*n)++] = (uint32_t)nd->col;
        return;
    }
    nd->leaf_first = (uint32_t)*n;
    for (c = nd->first; c >= 0; c = s->nodes[c].next) collect_leaves(s, c, n);
    nd->leaf_n = (uint32_t)(*n - nd->leaf_first);
}

/* Appends a constant to the prefix: its offset in *off. */
static int add_const(sf_csv_stream *s, const char *t, size_t n, uint32_t *off)
{
    *off = (uint32_t)s->prefix.n;
    return sf_strbuf_add(&s->prefix, t, n);
}

int sf_csv_stream_columns(sf_csv_stream *s, const uint8_t *types, size_t ncols, const char *object,
                          size_t objlen, sf_csv_error *err)
{
    sf_csv_reader r;
    sf_csv_cell *hdr = NULL;
    size_t i, segs = 1, total = 0, nc = 0, nleaves = 0;
    char *names = NULL;  /* owned: unquoted header names (names_cap bytes), freed below */
    size_t names_cap = 0;
    int rc = -1;

    memset(err, 0, sizeof *err);
    sf_csv_reader_init(&r, s->buf.p, s->buf.n);
    if (s->start > r.pos) r.pos = s->start;
    hdr = arr(s, ncols + 1, sizeof *hdr);
    if (hdr == NULL) return oom(err);
    if (sf_csv_read(&r, hdr, ncols + 1, &nc) != 1 || nc != ncols) {
        set_err(err, "CSV", 1, "the header has %zu columns, %zu types were given", nc, ncols);
        goto done;
    }
    for (i = 0; i < ncols; i++) {
        const char *p = s->buf.p + hdr[i].off, *e = p + hdr[i].len;
        total += hdr[i].len;
        segs++;
        for (; p < e; p++) segs += *p == '.';
    }
    if (segs > INT32_MAX || total > UINT32_MAX / 2) {
        set_err(err, "CSV", 1, "the header is too large");
        goto done;
    }
    names = arr(s, total + 1, 1);
    s->nodes = arr(s, segs, sizeof *s->nodes);
    s->capnodes = s->nodes != NULL ? segs : 0;
    s->leaves = arr(s, ncols + 1, sizeof *s->leaves);
    s->types = arr(s, ncols + 1, 1);
    s->cells = arr(s, ncols + 1, sizeof *s->cells);
    s->ncols = ncols;
    if (names == NULL || s->nodes == NULL || s->leaves == NULL || s->types == NULL || s->cells == NULL) {
        oom(err);
        goto done;
    }
    names_cap = total + 1;
    if (ncols > 0) memcpy(s->types, types, ncols);
    if (json_utf8_valid(object, objlen) == 0) {
        set_err(err, "CSV", 0, "sf.csv: object is not valid UTF-8");
        goto done;
    }
    /* constants first; the keys follow */
    if (add_const(s, "true", 4, &s->k_true) != 0 || add_const(s, "false", 5, &s->k_false) != 0 ||
        add_const(s, "null", 4, &s->k_null) != 0 || add_const(s, "attributes", 10, &s->k_attr) != 0 ||
        add_const(s, "type", 4, &s->k_type) != 0 || add_const(s, object, objlen, &s->k_obj) != 0) {
        oom(err);
        goto done;
    }
    s->k_objlen = (uint32_t)objlen;
    new_node(s, -1, 0, 0, -1);
    total = 0;
    for (i = 0; i < ncols; i++) {
        char *name = names + total;
        size_t len = sf_csv_unquote(s->buf.p, &hdr[i], name), a = 0, depth = 0;
        int32_t cur = 0;
        size_t line = sf_csv_line_of(s->buf.p, s->buf.n, hdr[i].off);
        total += len;
        if (len == 0) {
            set_err(err, "CSV", line, "empty column name in the header");
            goto done;
        }
        if (utf8_bad(name, len) != len) {
            set_err(err, "CSV", line, "invalid UTF-8 in the header");
            goto done;
        }
        for (;;) {
            const char *dot = memchr(name + a, '.', len - a);
            size_t b = dot ? (size_t)(dot - name) : len;
            int32_t ch;
            uint32_t off;
            if (b == a) {
                set_err(err, "CSV", line, "bad column name \"%.*s\"", (int)(len > 80 ? 80 : len), name);
                goto done;
            }
            if (++depth > MAX_DEPTH) {
                set_err(err, "CSV", line, "column name nests deeper than %d", MAX_DEPTH);
                goto done;
            }
            ch = find_child(s, cur, name + a, b - a);
            if (dot == NULL) {
                if (ch >= 0) {
                    set_err(err, "CSV", line, "%s column \"%.*s\"",
                            s->nodes[ch].col >= 0 ? "duplicate" : "field and relationship share the",
                            (int)(len > 80 ? 80 : len), name);
                    goto done;
                }
                if (add_const(s, name + a, b - a, &off) != 0) {
                    oom(err);
                    goto done;
                }
                new_node(s, cur, off, (uint32_t)(b - a), (int32_t)i);
                break;
            }
            if (ch >= 0 && s->nodes[ch].col >= 0) {
                set_err(err, "CSV", line, "field and relationship share the column \"%.*s\"",
                        (int)(b > 80 ? 80 : b), name);
                goto done;
            }
            if (ch < 0) {
                if (add_const(s, name + a, b - a, &off) != 0) {
                    oom(err);
                    goto done;
                }
                ch = new_node(s, cur, off, (uint32_t)(b - a), -1);
            }
            cur = ch;
            a = b + 1;
        }
    }
    collect_leaves(s, 0, &nleaves);
    s->start = r.pos; /* past the header row */
    s->header = 1;
    rc = 0;
done:
    /* temporaries; on failure the stream stays without a header */
    arr_free(s, names, names_cap, 1);
    arr_free(s, hdr, ncols + 1, sizeof *hdr);
    return rc;
}

/* ---- records as tokens ---- */

static inline json_tok *tok(sf_csv_stream *s, uint8_t type, uint8_t flags, size_t start, size_t end)
{
    json_tok *t = &s->toks[s->ntok++];
    t->type = type;
    t->flags = flags;
    t->start = (uint32_t)start;
    t->end = (uint32_t)end;
    t->size = 0;
    t->skip = 1;
    return t;
}

static int is_word(const char *s, size_t n, const char *w, size_t wn)
{
    return n == wn && strncasecmp(s, w, n) == 0;
}

/* A token pointing at extra[off..off+n): its index goes to the fix list. */
static int extra_tok(sf_csv_stream *s, size_t off, size_t n)
{
    if (s->nfix == s->capfix) {
        uint32_t *nf = sf_grow(s->alloc, s->ud, s->fix, &s->capfix, sizeof *nf, s->nfix + 1);
        if (nf == NULL) return -1;
        s->fix = nf;
    }
    s->fix[s->nfix++] = (uint32_t)s->ntok;
    tok(s, JSON_STRING, JSON_F_RAW, off, off + n);
    return 0;
}

/* The value token of column col; data is the unread text, base the offset
 * of data in the page text. 0 or -1 (out of memory). */
static int value_tok(sf_csv_stream *s, uint32_t col, const char *data, size_t base)
{
    const sf_csv_cell *c = &s->cells[col];
    const char *t = data + c->off;
    size_t off;
    if (c->len == 0) {
        tok(s, JSON_NULL, 0, s->k_null, s->k_null + 4);
        return 0;
    }
    if (!c->dq) {
        switch (s->types[col]) {
        case SF_CSV_BOOL:
            if (is_word(t, c->len, "true", 4)) {
                tok(s, JSON_TRUE, 0, s->k_true, s->k_true + 4);
                return 0;
            }
            if (is_word(t, c->len, "false", 5)) {
                tok(s, JSON_FALSE, 0, s->k_false, s->k_false + 5);
                return 0;
            }
            break;
        case SF_CSV_INT:
        case SF_CSV_NUMBER:
            if (json_is_number(t, c->len)) {
                size_t k;
                uint8_t fl = JSON_F_INTEGER;
                for (k = 0; k < c->len; k++)
                    if (t[k] == '.' || t[k] == 'e' || t[k] == 'E') fl = 0;
                tok(s, JSON_NUMBER, fl, base + c->off, base + c->off + c->len);
                return 0;
            }
            break;
        case SF_CSV_DATE:
        case SF_CSV_DATETIME:
            if (c->len <= 40) {
                size_t k;
                if (sf_strbuf_reserve(&s->extra, c->len + 8) != 0) return -1;
                k = sf_csv_datetime(t, c->len, s->extra.p + s->extra.n);
                if (k > 0) {
                    off = s->extra.n;
                    s->extra.n += k;
                    return extra_tok(s, off, k);
                }
            }
            break;
        default:
            break;
        }
        tok(s, JSON_STRING, JSON_F_RAW, base + c->off, base + c->off + c->len);
        return 0;
    }
    if (sf_strbuf_reserve(&s->extra, c->len) != 0) return -1;
    off = s->extra.n;
    s->extra.n += sf_csv_unquote(data, c, s->extra.p + off);
    return extra_tok(s, off, s->extra.n - off);
}

/* The members of group id. */
static int member_toks(sf_csv_stream *s, int32_t id, const char *data, size_t base)
{
    int32_t ch;
    for (ch = s->nodes[id].first; ch >= 0; ch = s->nodes[ch].next) {
        const sf_csv_node *nd = &s->nodes[ch];
        tok(s, JSON_STRING, JSON_F_RAW, nd->name_off, nd->name_off + nd->name_len);
        if (nd->col >= 0) {
            if (value_tok(s, (uint32_t)nd->col, data, base) != 0) return -1;
        } else {
            uint32_t k;
            int empty = 1;
            for (k = 0; k < nd->leaf_n && empty; k++)
                empty = s->cells[s->leaves[nd->leaf_first + k]].len == 0;
            if (empty) {
                tok(s, JSON_NULL, 0, s->k_null, s->k_null + 4);
            } else {
                size_t at = s->ntok;
                tok(s, JSON_OBJECT, 0, s->k_null, s->k_null)->size = nd->nchild;
                if (member_toks(s, ch, data, base) != 0) return -1;
                s->toks[at].skip = (uint32_t)(s->ntok - at);
            }
        }
    }
    return 0;
}

int sf_csv_stream_records(sf_csv_stream *s, int final, sf_csv_error *err)
{
    sf_csv_reader r;
    const char *data = s->buf.p + s->start;
    size_t n = s->buf.n - s->start, nc, per, base = s->prefix.n, i;
    int got;

    memset(err, 0, sizeof *err);
    s->ntok = s->nrec = s->nfix = 0;
    s->extra.n = 0;
    s->used = 0;
    if (!s->header) return 0;
    /* per record at most: the object, attributes (4), a key and a value per node */
    if (sf_size_mul(s->nnodes, 2, &per) != 0 || sf_size_add(per, 5, &per) != 0) return oom(err);
    memset(&r, 0, sizeof r);
    r.s = data;
    r.n = n;
    r.more = !final;
    for (;;) {
        size_t rec_start = r.pos, bad, at;
        got = sf_csv_read(&r, s->cells, s->ncols + 1, &nc);
        if (got == 0 || got == 2) break;
        if (got < 0) return set_err(err, "CSV", line_at(s, r.err_off), "%s", r.err_msg);
        if (nc != s->ncols)
            return set_err(err, "CSV", line_at(s, rec_start), "expected %zu values, found %zu", s->ncols, nc);
        bad = utf8_bad(data + rec_start, r.pos - rec_start);
        if (bad != r.pos - rec_start) return set_err(err, "CSV", line_at(s, rec_start + bad), "invalid UTF-8");
        if (s->captok - s->ntok < per) {
            json_tok *nt = sf_grow(s->alloc, s->ud, s->toks, &s->captok, sizeof *nt, s->ntok + per);
            if (nt == NULL) return oom(err);
            s->toks = nt;
        }
        if (s->nrec == s->caprec) {
            uint32_t *nr = sf_grow(s->alloc, s->ud, s->recs, &s->caprec, sizeof *nr, s->nrec + 1);
            if (nr == NULL) return oom(err);
            s->recs = nr;
        }
        at = s->ntok;
        s->recs[s->nrec++] = (uint32_t)at;
        tok(s, JSON_OBJECT, 0, s->k_null, s->k_null)->size = 1 + s->nodes[0].nchild;
        tok(s, JSON_STRING, JSON_F_RAW, s->k_attr, s->k_attr + 10);
        tok(s, JSON_OBJECT, 0, s->k_null, s->k_null)->size = 1;
        s->toks[s->ntok - 1].skip = 3;
        tok(s, JSON_STRING, JSON_F_RAW, s->k_type, s->k_type + 4);
        tok(s, JSON_STRING, JSON_F_RAW, s->k_obj, s->k_obj + s->k_objlen);
        if (member_toks(s, 0, data, base) != 0) return oom(err);
        s->toks[at].skip = (uint32_t)(s->ntok - at);
        s->used = r.pos;
        s->records++;
        if (base + s->used + s->extra.n > UINT32_MAX)
            break; /* the page text must fit the token offsets: the rest goes next time */
    }
    if (s->used == 0 && n - s->used > SF_CSV_MAX_RECORD)
        return set_err(err, "TOO_LARGE", 0, "sf.csv: a record is longer than %zu bytes", SF_CSV_MAX_RECORD);
    for (i = 0; i < s->nfix; i++) {
        json_tok *t = &s->toks[s->fix[i]];
        t->start += (uint32_t)(base + s->used);
        t->end += (uint32_t)(base + s->used);
    }
    return 0;
}

size_t sf_csv_stream_text_len(const sf_csv_stream *s)
{
    return s->prefix.n + s->used + s->extra.n;
}

void sf_csv_stream_text(const sf_csv_stream *s, char *out)
{
    if (s->prefix.n > 0) memcpy(out, s->prefix.p, s->prefix.n);
    if (s->used > 0) memcpy(out + s->prefix.n, s->buf.p + s->start, s->used);
    if (s->extra.n > 0) memcpy(out + s->prefix.n + s->used, s->extra.p, s->extra.n);
}

void sf_csv_stream_consume(sf_csv_stream *s)
{
    size_t drop = s->start + s->used;
    s->line = s->line - 1 + sf_csv_line_of(s->buf.p, s->buf.n, drop);
    if (drop > 0 && drop < s->buf.n) memmove(s->buf.p, s->buf.p + drop, s->buf.n - drop);
    s->buf.n -= drop;
    s->start = 0;
    s->used = 0;
    s->ntok = s->nrec = s->nfix = 0;
    s->extra.n = 0;
}

/* ---- Lua binding ---- */

#define READER_MT "sf.csv.reader"

typedef struct reader {
    sf_csv_stream s;
    int open;            /* the stream holds memory */
    int finished;        /* finish() was called */
    sf_csv_error failed; /* code != NULL: the first failure, repeated */
} reader;

/* The type of header name[0..len) from the columns table at index t:
 * exact key, else the first key equal ignoring ASCII case. */
static int column_type(lua_State *L, int t, const char *name, size_t len)
{
    int ty;
    size_t tl;
    const char *ts;
    lua_pushlstring(L, name, len);  /* stack: name */
    ty = lua_rawget(L, t);          /* stack: type? */
    if (ty == LUA_TNIL) {
        lua_pop(L, 1);
        lua_pushnil(L);             /* stack: key */
        while (lua_next(L, t) != 0) {  /* stack: key, value */
            size_t kl;
            const char *k;
            if (lua_type(L, -2) == LUA_TSTRING) {
                k = lua_tolstring(L, -2, &kl);
                if (kl == len && strncasecmp(k, name, len) == 0) {
                    lua_remove(L, -2);  /* stack: value */
                    ty = lua_type(L, -1);
                    goto found;
                }
            }
            lua_pop(L, 1);
        }
        return SF_CSV_STRING;
    }
found:
    if (ty != LUA_TSTRING) {
        const char *tn = luaL_typename(L, -1);
        lua_pushlstring(L, name, len);
        return luaL_error(L, "sf.csv.reader: columns[\"%s\"] must be a describe type string, not %s",
                          lua_tostring(L, -1), tn);
    }
    ts = lua_tolstring(L, -1, &tl);
    lua_pop(L, 1);
    return sf_csv_type_of(ts, tl);
}

static reader *check_reader(lua_State *L, const char *api)
{
    reader *rd = luaL_checkudata(L, 1, READER_MT);
    if (!rd->open) luaL_error(L, "%s: the reader is closed", api);
    return rd;
}

/* Remembers a failure (repeated by every later call) and pushes it; an
 * allocation failure raises instead. */
static int reader_fail(lua_State *L, reader *rd, const sf_csv_error *err)
{
    if (rd->failed.code == NULL) rd->failed = *err;
    sf_csv_stream_free(&rd->s); /* nothing more will be read */
    if (strcmp(err->code, "MEMORY") == 0) return luaL_error(L, "%s", err->msg);
    return sf_pushfail(L, rd->failed.code, "%s", rd->failed.msg);
}

/* Reads the header row when it is in: the column types from the columns
 * table (user value 1). 0, or -1 with err set. */
static int take_header(lua_State *L, reader *rd, int final, sf_csv_error *err)
{
    long nc = sf_csv_stream_header(&rd->s, final, NULL, 0, err);
    sf_csv_cell *cells;
    uint8_t *types;
    size_t objlen;
    const char *object;
    long i;
    int cols;
    size_t bytes;
    if (nc <= 0) return (int)nc;
    /* scratch arrays live in userdata: collected if anything below raises */
    if (sf_size_mul((size_t)nc, sizeof *cells, &bytes) != 0) return luaL_error(L, "sf.csv.reader: not enough memory");
    cells = lua_newuserdatauv(L, bytes, 0);                       /* stack: cells */
    types = lua_newuserdatauv(L, (size_t)nc, 0);                  /* stack: cells, types */
    (void)sf_csv_stream_header(&rd->s, final, cells, (size_t)nc, err);
    lua_getiuservalue(L, 1, 1);                                   /* stack: cells, types, columns */
    cols = lua_gettop(L);
    for (i = 0; i < nc; i++) {
        size_t len;
        char *name = lua_newuserdatauv(L, cells[i].len ? cells[i].len : 1, 0);
        len = sf_csv_unquote(rd->s.buf.p, &cells[i], name);
        types[i] = (uint8_t)column_type(L, cols, name, len);
        lua_pop(L, 1);
    }
    lua_getiuservalue(L, 1, 2);                                   /* stack: ..., columns, object */
    object = lua_tolstring(L, -1, &objlen);
    if (sf_csv_stream_columns(&rd->s, types, (size_t)nc, object, objlen, err) != 0) {
        lua_pop(L, 4);
        return -1;
    }
    lua_pop(L, 4);
    return 0;
}

/* The records completed so far as an sf.page. */
static int process(lua_State *L, reader *rd, int final)
{
    sf_csv_error err;
    size_t len;
    luaL_Buffer b;
    char *p;
    if (rd->failed.code != NULL) return sf_pushfail(L, rd->failed.code, "%s", rd->failed.msg);
    if (!rd->s.header && take_header(L, rd, final, &err) != 0) return reader_fail(L, rd, &err);
    if (sf_csv_stream_records(&rd->s, final, &err) != 0) return reader_fail(L, rd, &err);
    len = sf_csv_stream_text_len(&rd->s);
    p = luaL_buffinitsize(L, &b, len ? len : 1);
    sf_csv_stream_text(&rd->s, p);
    luaL_pushresultsize(&b, len);                         /* stack: ..., text */
    sf_page_push(L, -1, rd->s.toks, (uint32_t)rd->s.ntok, rd->s.recs, (uint32_t)rd->s.nrec);
    sf_csv_stream_consume(&rd->s);
    return 1;
}

/* csv.reader(columns, object) -> reader */
static int l_reader(lua_State *L)
{
    size_t objlen;
    reader *rd;
    void *ud;
    sf_alloc_fn af = (sf_alloc_fn)lua_getallocf(L, &ud);
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checklstring(L, 2, &objlen);
    luaL_argcheck(L, objlen > 0, 2, "sf.csv.reader: object must not be empty");
    luaL_argcheck(L, json_utf8_valid(lua_tostring(L, 2), objlen), 2, "sf.csv.reader: object must be UTF-8");
    rd = lua_newuserdatauv(L, sizeof *rd, 2);
    memset(rd, 0, sizeof *rd);
    sf_csv_stream_init(&rd->s, af, ud);
    rd->open = 1;
    luaL_setmetatable(L, READER_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    lua_pushvalue(L, 2);
    lua_setiuservalue(L, -2, 2);
    return 1;
}

/* rd:feed(text) -> page | nil, message, code */
static int l_feed(lua_State *L)
{
    reader *rd = check_reader(L, "sf.csv.reader.feed");
    size_t n;
    const char *text = luaL_checklstring(L, 2, &n);
    sf_csv_error err;
    if (rd->finished) return luaL_error(L, "sf.csv.reader.feed: the reader is finished");
    if (rd->failed.code != NULL) return sf_pushfail(L, rd->failed.code, "%s", rd->failed.msg);
    if (sf_csv_stream_feed(&rd->s, text, n, &err) != 0) return reader_fail(L, rd, &err);
    lua_settop(L, 1);
    return process(L, rd, 0);
}

/* rd:finish() -> page | nil, message, code */
static int l_finish(lua_State *L)
{
    reader *rd = check_reader(L, "sf.csv.reader.finish");
    if (rd->finished) return luaL_error(L, "sf.csv.reader.finish: the reader is finished");
    rd->finished = 1;
    lua_settop(L, 1);
    return process(L, rd, 1);
}

static int l_close(lua_State *L)
{
    reader *rd = luaL_checkudata(L, 1, READER_MT);
    if (rd->open) sf_csv_stream_free(&rd->s);
    rd->open = 0;
    return 0;
}

/* __index: methods (upvalue 1), then records and header. */
static int l_index(lua_State *L)
{
    reader *rd = luaL_checkudata(L, 1, READER_MT);
    const char *k;
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
    if (lua_type(L, 2) != LUA_TSTRING) return 1;  /* nil */
    k = lua_tostring(L, 2);
    if (strcmp(k, "records") == 0) lua_pushinteger(L, (lua_Integer)rd->s.records);
    else if (strcmp(k, "header") == 0) lua_pushboolean(L, rd->s.header);
    else lua_pushnil(L);
    return 1;
}

static int l_tostring(lua_State *L)
{
    reader *rd = luaL_checkudata(L, 1, READER_MT);
    lua_pushfstring(L, "sf.csv.reader (%I records%s)", (lua_Integer)rd->s.records, rd->open ? "" : ", closed");
    return 1;
}

static const luaL_Reg reader_methods[] = {
    {"feed", l_feed},
    {"finish", l_finish},
    {"close", l_close},
    {NULL, NULL}
};

static const luaL_Reg reader_meta[] = {
    {"__gc", l_close},
    {"__close", l_close},
    {"__tostring", l_tostring},
    {"__index", NULL},  /* placeholder: l_index, set by sf_createmeta */
    {NULL, NULL}
};

static const luaL_Reg csv_funcs[] = {
    {"reader", l_reader},
    {NULL, NULL}
};

int luaopen_sf_csv(lua_State *L)
{
    luaL_requiref(L, "sf.page", luaopen_sf_page, 0); /* the metatable of the pages made here */
    lua_pop(L, 1);
    sf_createmeta(L, READER_MT, reader_meta, reader_methods, l_index);
    luaL_newlib(L, csv_funcs);
    return 1;
}
