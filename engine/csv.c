/* sf.csv: a Bulk API 2.0 query results page (CSV) as a REST query page (JSON),
 * so sf.page and sf.mapper read Bulk results exactly as they read REST pages.
 *
 *   local csv = require "sf.csv"
 *   local body, n = csv.to_page(text, columns, object [, total_size])
 *       -- malformed CSV: nil, "malformed CSV at line N: <what>", "CSV"
 *   text        one results page: RFC 4180, a header row, "" escapes, line
 *               breaks inside quoted values, LF or CRLF line endings; an
 *               empty text is a page without records
 *   columns     { [header name] = describe type }: "boolean" -> true/false;
 *               "int"/"long" -> integer; "double"/"currency"/"percent" ->
 *               number (a value that is not a JSON number stays a string, so
 *               the mapper rejects it with a reason); "date"/"datetime" ->
 *               string as given, except Bulk's "2024-01-15T10:30:00.000Z"
 *               becomes REST's "2024-01-15T10:30:00.000+0000"; any other type,
 *               or a header not in columns (looked up exactly, then ignoring
 *               ASCII case) -> string
 *   object      attributes.type of every record
 *   total_size  totalSize of the page (default: the records converted)
 *   body        {"totalSize":N,"done":true,"records":[{"attributes":{"type":
 *               "Lead"},"Id":"00Q...",...},...]}: keys in header order, an
 *               empty cell is null, "Parent.Field" headers nest
 *               ({"RecordType":{"Name":"x"}}, null when all of the parent's
 *               cells are empty). Nested objects carry no attributes.
 *   n           the number of records
 *
 * Strict: an unterminated quoted value, a quote inside an unquoted value,
 * text after a closing quote, a row whose cell count differs from the
 * header's, invalid UTF-8 or a malformed header fail the whole page. The text
 * is read in place (cells are spans of it; a memchr pass over its line breaks
 * sizes the output once); the document is written into one buffer from the
 * Lua state's allocator (so a memory cap sees it), owned by a userdata until
 * it becomes the result string. About 140 MB/s of CSV on one core. */
#include <lua.h>
#include <lauxlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "csv.h"
#include "util.h"

int luaopen_sf_csv(lua_State *L);

#define PREFIX_ROOM 64  /* {"totalSize":<20 digits>,"done":true,"records":[ fits */
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
    if (pos >= n) return 0;
    for (;;) {
        sf_csv_cell c = {0, 0, 0, 0};
        if (pos < n && s[pos] == '"') {
            size_t open = pos;
            c.quoted = 1;
            c.off = ++pos;
            for (;;) {
                const char *q = memchr(s + pos, '"', n - pos);
                if (q == NULL) return fail_at(r, open, "unterminated quoted value");
                pos = (size_t)(q - s);
                if (pos + 1 < n && s[pos + 1] == '"') {
                    c.dq = 1;
                    pos += 2;
                    continue;
                }
                break;
            }
            c.len = pos - c.off;
            pos++;  /* the closing quote */
            if (pos < n && s[pos] != ',' && s[pos] != '\n' &&
                !(s[pos] == '\r' && pos + 1 < n && s[pos + 1] == '\n'))
                return fail_at(r, pos, "text after a closing quote");
        } else {
            c.off = pos;
            while (pos < n && s[pos] != ',' && s[pos] != '\n') {
                if (s[pos] == '"') return fail_at(r, pos, "quote inside an unquoted value");
                if (s[pos] == '\r') {
                    if (pos + 1 < n && s[pos + 1] == '\n') break;
                    return fail_at(r, pos, "carriage return outside quotes");
                }
                pos++;
            }
            c.len = pos - c.off;
        }
        if (count < max) cells[count] = c;
        count++;
        if (pos >= n) break;
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

/* ---- the output buffer (strbuf.h) ---- */

/* Appends s[0..len) as a JSON string; dq: "" pairs stand for one quote.
 * Returns 0, -1 (out of memory) or -2 (invalid UTF-8 at s + *bad). */
static int put_str(sf_strbuf *b, const char *s, size_t len, int dq, size_t *bad)
{
    return sf_strbuf_json(b, s, len, SF_JSON_STRICT | (dq ? SF_JSON_CSV_DQ : 0), bad);
}

/* ---- header -> tree of keys ---- */

typedef struct node {
    const char *name;          /* segment, unescaped (points into the names arena) */
    size_t nlen;
    int32_t first, last, next; /* children, next sibling; -1: none */
    int32_t col;               /* leaf: header column; group: -1 */
    uint32_t leaf_first;       /* group: its leaf columns are leaves[leaf_first..+leaf_n) */
    uint32_t leaf_n;
    size_t key_off, key_len;   /* "\"name\":" in the keys buffer */
} node;

typedef struct conv {
    const char *s;
    size_t n;
    sf_csv_error *err;
    sf_strbuf *out;
    sf_strbuf keys;            /* rendered keys, then the record prefix */
    node *nodes;               /* owned; nodes[0] is the record itself */
    size_t nnodes, nodes_cap;
    uint32_t *leaves;          /* owned; leaf columns in tree order */
    size_t nleaves, leaves_cap;
    const uint8_t *types;
    sf_csv_cell *cells;        /* owned; one record (cells_cap cells) */
    size_t cells_cap;
    char *names;               /* owned; unquoted header names */
    size_t names_cap;
    size_t rec_off, rec_len;   /* {"attributes":{"type":"Lead"} in keys */
} conv;

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

static int reader_err(conv *cv, const sf_csv_reader *r)
{
    return set_err(cv->err, "CSV", sf_csv_line_of(cv->s, cv->n, r->err_off), "%s", r->err_msg);
}

/* Temporaries come from the output's allocator (a memory cap sees them):
 * an array of count elements of elem bytes, NULL when out of memory or when
 * the size overflows; cv_free gives it back. */
static void *cv_array(conv *cv, size_t count, size_t elem)
{
    size_t bytes;
    if (sf_size_mul(count, elem, &bytes) != 0) return NULL;
    return sf_mem(cv->out->alloc, cv->out->ud, NULL, 0, bytes);
}

static void cv_free(conv *cv, void *p, size_t count, size_t elem)
{
    if (p != NULL) sf_mem(cv->out->alloc, cv->out->ud, p, count * elem /* allocated */, 0);
}

static int32_t new_node(conv *cv, int32_t parent, const char *name, size_t nlen, int32_t col)
{
    node *nd;
    int32_t id = (int32_t)cv->nnodes++;
    nd = &cv->nodes[id];
    memset(nd, 0, sizeof *nd);
    nd->name = name;
    nd->nlen = nlen;
    nd->first = nd->last = nd->next = -1;
    nd->col = col;
    if (parent >= 0) {
        node *p = &cv->nodes[parent];
        if (p->last >= 0) cv->nodes[p->last].next = id;
        else p->first = id;
        p->last = id;
    }
    return id;
}

static int32_t find_child(const conv *cv, int32_t parent, const char *name, size_t nlen)
{
    int32_t c;
    for (c = cv->nodes[parent].first; c >= 0; c = cv->nodes[c].next)
        if (cv->nodes[c].nlen == nlen && memcmp(cv->nodes[c].name, name, nlen) == 0) return c;
    return -1;
}

/* Depth-first: leaf columns of each group are contiguous in leaves[]. */
static void collect_leaves(conv *cv, int32_t id)
{
    node *nd = &cv->nodes[id];
    int32_t c;
    if (nd->col >= 0) {
        cv->leaves[cv->nleaves++] = (uint32_t)nd->col;
        return;
    }
    nd->leaf_first = (uint32_t)cv->nleaves;
    for (c = nd->first; c >= 0; c = cv->nodes[c].next) collect_leaves(cv, c);
    nd->leaf_n = (uint32_t)(cv->nleaves - nd->leaf_first);
}

static int build_tree(conv *cv, const sf_csv_cell *hdr, size_t ncols, const char *object,
                      size_t objlen)
{
    size_t i, total = 0, segs = 1, used = 0, bad;
    int rc;
    for (i = 0; i < ncols; i++) {
        const char *p = cv->s + hdr[i].off, *e = p + hdr[i].len;
        total += hdr[i].len;
        segs++;
        for (; p < e; p++) segs += *p == '.';
    }
    if (segs > INT32_MAX) return set_err(cv->err, "CSV", 1, "the header has too many columns");
    cv->names_cap = total ? total : 1;
    cv->names = cv_array(cv, cv->names_cap, 1);
    cv->nodes_cap = segs;
    cv->nodes = cv_array(cv, segs, sizeof(node));
    cv->leaves_cap = ncols ? ncols : 1;
    cv->leaves = cv_array(cv, cv->leaves_cap, sizeof(uint32_t));
    if (cv->names == NULL || cv->nodes == NULL || cv->leaves == NULL) return oom(cv->err);
    new_node(cv, -1, "", 0, -1);
    for (i = 0; i < ncols; i++) {
        char *name = cv->names + used;
        size_t len = sf_csv_unquote(cv->s, &hdr[i], name), a = 0, depth = 0;
        int32_t cur = 0;
        size_t line = sf_csv_line_of(cv->s, cv->n, hdr[i].off);
        used += len;
        if (len == 0) return set_err(cv->err, "CSV", line, "empty column name in the header");
        for (;;) {
            const char *dot = memchr(name + a, '.', len - a);
            size_t b = dot ? (size_t)(dot - name) : len;
            int32_t ch;
            if (b == a)
                return set_err(cv->err, "CSV", line, "bad column name \"%.*s\"", (int)(len > 80 ? 80 : len), name);
            if (++depth > MAX_DEPTH)
                return set_err(cv->err, "CSV", line, "column name nests deeper than %d", MAX_DEPTH);
            ch = find_child(cv, cur, name + a, b - a);
            if (dot == NULL) {
                if (ch >= 0)
                    return set_err(cv->err, "CSV", line, "%s column \"%.*s\"",
                                   cv->nodes[ch].col >= 0 ? "duplicate" : "field and relationship share the",
                                   (int)(len > 80 ? 80 : len), name);
                new_node(cv, cur, name + a, b - a, (int32_t)i);
                break;
            }
            if (ch >= 0 && cv->nodes[ch].col >= 0)
                return set_err(cv->err, "CSV", line, "field and relationship share the column \"%.*s\"",
                               (int)(b > 80 ? 80 : b), name);
            cur = ch >= 0 ? ch : new_node(cv, cur, name + a, b - a, -1);
            a = b + 1;
        }
    }
    collect_leaves(cv, 0);
    /* keys: "name": for every node, then the record prefix */
    for (i = 1; i < cv->nnodes; i++) {
        node *nd = &cv->nodes[i];
        nd->key_off = cv->keys.n;
        rc = put_str(&cv->keys, nd->name, nd->nlen, 0, &bad);
        if (rc == -2)
            return set_err(cv->err, "CSV", 1, "invalid UTF-8 in the header");
        if (rc != 0 || sf_strbuf_addlit(&cv->keys, ":") != 0) return oom(cv->err);
        nd->key_len = cv->keys.n - nd->key_off;
    }
    cv->rec_off = cv->keys.n;
    if (sf_strbuf_addlit(&cv->keys, "{\"attributes\":{\"type\":") != 0) return oom(cv->err);
    rc = put_str(&cv->keys, object, objlen, 0, &bad);
    if (rc == -2) return set_err(cv->err, "CSV", 0, "sf.csv.to_page: object is not valid UTF-8");
    if (rc != 0 || sf_strbuf_addlit(&cv->keys, "}") != 0) return oom(cv->err);
    cv->rec_len = cv->keys.n - cv->rec_off;
    return 0;
}

/* ---- records ---- */

static int is_word(const char *s, size_t n, const char *w, size_t wn)
{
    return n == wn && strncasecmp(s, w, n) == 0;
}

/* Appends one cell as a JSON value. */
static int put_value(conv *cv, uint32_t col)
{
    const sf_csv_cell *c = &cv->cells[col];
    const char *t = cv->s + c->off;
    sf_strbuf *b = cv->out;
    size_t bad;
    int rc;
    if (c->len == 0) return sf_strbuf_addlit(b, "null");
    if (!c->dq) {
        switch (cv->types[col]) {
        case SF_CSV_BOOL:
            if (is_word(t, c->len, "true", 4)) return sf_strbuf_addlit(b, "true");
            if (is_word(t, c->len, "false", 5)) return sf_strbuf_addlit(b, "false");
            break;
        case SF_CSV_INT:
        case SF_CSV_NUMBER:
            if (json_is_number(t, c->len)) return sf_strbuf_add(b, t, c->len);
            break;
        case SF_CSV_DATE:
        case SF_CSV_DATETIME:
            if (c->len <= 40) {
                char tmp[48];
                size_t k = sf_csv_datetime(t, c->len, tmp);
                if (k > 0) {
                    if (sf_strbuf_reserve(b, k + 2) != 0) return -1;
                    b->p[b->n++] = '"';
                    memcpy(b->p + b->n, tmp, k);
                    b->n += k;
                    b->p[b->n++] = '"';
                    return 0;
                }
            }
            break;
        default:
            break;
        }
    }
    rc = put_str(b, t, c->len, c->dq, &bad);
    if (rc == -2)
        return set_err(cv->err, "CSV", sf_csv_line_of(cv->s, cv->n, c->off + bad), "invalid UTF-8");
    return rc == 0 ? 0 : oom(cv->err);
}

/* Appends the members of group id (without braces). */
static int put_members(conv *cv, int32_t id)
{
    int32_t ch;
    int first = 1;
    for (ch = cv->nodes[id].first; ch >= 0; ch = cv->nodes[ch].next) {
        const node *nd = &cv->nodes[ch];
        if (!first && sf_strbuf_addlit(cv->out, ",") != 0) return oom(cv->err);
        first = 0;
        if (sf_strbuf_add(cv->out, cv->keys.p + nd->key_off, nd->key_len) != 0) return oom(cv->err);
        if (nd->col >= 0) {
            if (put_value(cv, (uint32_t)nd->col) != 0) return cv->err->code ? -1 : oom(cv->err);
        } else {
            uint32_t k;
            int empty = 1;
            for (k = 0; k < nd->leaf_n && empty; k++)
                empty = cv->cells[cv->leaves[nd->leaf_first + k]].len == 0;
            if (empty) {
                if (sf_strbuf_addlit(cv->out, "null") != 0) return oom(cv->err);
            } else {
                if (sf_strbuf_addlit(cv->out, "{") != 0) return oom(cv->err);
                if (put_members(cv, ch) != 0) return -1;
                if (sf_strbuf_addlit(cv->out, "}") != 0) return oom(cv->err);
            }
        }
    }
    return 0;
}

/* Sizes the output once for the whole page (growing a large buffer by
 * doubling copies it each time): every line a record, each carrying the
 * record prefix, every key and a comma per cell, plus the text itself and
 * an eighth for escapes. Embedded line breaks only make it generous. */
static int presize(conv *cv, const sf_csv_reader *r)
{
    size_t lines = 1, per = cv->rec_len + 2, rest = cv->n - r->pos, i, want;
    const char *p = cv->s + r->pos, *e = cv->s + cv->n;
    while (p < e) {
        const char *q = memchr(p, '\n', (size_t)(e - p));
        if (q == NULL) break;
        lines++;
        p = q + 1;
    }
    /* an estimate that overflows is absurd: growth by doubling takes over */
    for (i = 1; i < cv->nnodes; i++)
        if (sf_size_add(per, cv->nodes[i].key_len, &per) != 0 || sf_size_add(per, 3, &per) != 0)
            return 0;
    if (sf_size_mul(lines, per, &want) != 0 || sf_size_add(want, rest, &want) != 0 ||
        sf_size_add(want, rest / 8 + 16, &want) != 0)
        return 0;
    return sf_strbuf_reserve(cv->out, want);
}

long sf_csv_header(const char *csv, size_t n, sf_csv_cell *cells, size_t max, sf_csv_error *err)
{
    sf_csv_reader r;
    size_t nc = 0;
    int rc;
    memset(err, 0, sizeof *err);
    sf_csv_reader_init(&r, csv, n);
    rc = sf_csv_read(&r, cells, max, &nc);
    if (rc < 0)
        return set_err(err, "CSV", sf_csv_line_of(csv, n, r.err_off), "%s", r.err_msg);
    return rc == 0 ? 0 : (long)nc;
}

long sf_csv_header_count(const char *csv, size_t n, sf_csv_error *err)
{
    return sf_csv_header(csv, n, NULL, 0, err);
}

int sf_csv_to_page(const char *csv, size_t n, const sf_csv_page *pg, sf_strbuf *out,
                   size_t *start, size_t *nrec, sf_csv_error *err)
{
    int rc = -1;
    conv cv;
    sf_csv_reader r;
    size_t nc = 0, count = 0, rec_start;
    int got;
    char prefix[PREFIX_ROOM];
    int plen;
    long long total;

    memset(&cv, 0, sizeof cv);
    memset(err, 0, sizeof *err);
    cv.s = csv;
    cv.n = n;
    cv.err = err;
    cv.out = out;
    cv.types = pg->types;
    sf_strbuf_init(&cv.keys, out->alloc, out->ud);
    *nrec = 0;
    *start = 0;

    if (sf_strbuf_reserve(out, PREFIX_ROOM) != 0) {
        oom(err);
        goto done;
    }
    out->n = PREFIX_ROOM;
    sf_csv_reader_init(&r, csv, n);
    if (r.pos < n) {
        cv.cells_cap = pg->ncols + 1;  /* one more detects a row that is too long */
        cv.cells = cv.cells_cap > pg->ncols ? cv_array(&cv, cv.cells_cap, sizeof(sf_csv_cell)) : NULL;
        if (cv.cells == NULL) {
            oom(err);
            goto done;
        }
        got = sf_csv_read(&r, cv.cells, pg->ncols + 1, &nc);
        if (got < 0) {
            reader_err(&cv, &r);
            goto done;
        }
        if (nc != pg->ncols) {
            set_err(err, "CSV", 1, "the header has %zu columns, %zu types were given", nc, pg->ncols);
            goto done;
        }
        if (build_tree(&cv, cv.cells, nc, pg->object, pg->objlen) != 0) goto done;
        if (presize(&cv, &r) != 0) {
            oom(err);
            goto done;
        }
        for (;;) {
            rec_start = r.pos;
            got = sf_csv_read(&r, cv.cells, pg->ncols + 1, &nc);
            if (got == 0) break;
            if (got < 0) {
                reader_err(&cv, &r);
                goto done;
            }
            if (nc != pg->ncols) {
                set_err(err, "CSV", sf_csv_line_of(csv, n, rec_start), "expected %zu values, found %zu",
                        pg->ncols, nc);
                goto done;
            }
            if (count > 0 && sf_strbuf_addlit(out, ",") != 0) {
                oom(err);
                goto done;
            }
            if (sf_strbuf_add(out, cv.keys.p + cv.rec_off, cv.rec_len) != 0) {
                oom(err);
                goto done;
            }
            if (cv.nodes[0].first >= 0) {
                if (sf_strbuf_addlit(out, ",") != 0) {
                    oom(err);
                    goto done;
                }
                if (put_members(&cv, 0) != 0) goto done;
            }
            if (sf_strbuf_addlit(out, "}") != 0) {
                oom(err);
                goto done;
            }
            count++;
        }
    } else if (pg->ncols != 0) {
        set_err(err, "CSV", 1, "the text has no header, %zu types were given", pg->ncols);
        goto done;
    }
    if (sf_strbuf_addlit(out, "]}") != 0) {
        oom(err);
        goto done;
    }
    total = pg->total_size >= 0 ? pg->total_size : (long long)count;
    plen = snprintf(prefix, sizeof prefix, "{\"totalSize\":%lld,\"done\":true,\"records\":[", total);
    if (plen < 0 || plen > PREFIX_ROOM) {
        set_err(err, "CSV", 0, "sf.csv: totalSize out of range");
        goto done;
    }
    *start = PREFIX_ROOM - (size_t)plen;
    memcpy(out->p + *start, prefix, (size_t)plen);
    *nrec = count;
    rc = 0;
done:
    /* temporaries, in reverse order of allocation; out is the caller's */
    cv_free(&cv, cv.leaves, cv.leaves_cap, sizeof(uint32_t));
    cv_free(&cv, cv.nodes, cv.nodes_cap, sizeof(node));
    cv_free(&cv, cv.names, cv.names_cap, 1);
    cv_free(&cv, cv.cells, cv.cells_cap, sizeof(sf_csv_cell));
    sf_strbuf_free(&cv.keys);
    return rc;
}

/* ---- Lua binding ---- */

#define BOX_MT "sf.csv.buffer"

/* A userdata owning one output buffer, freed by __gc, so a Lua error at any
 * point leaks nothing. */
typedef struct box {
    sf_strbuf b;
} box;

static int box_gc(lua_State *L)
{
    box *bx = luaL_checkudata(L, 1, BOX_MT);
    sf_strbuf_free(&bx->b);
    return 0;
}

static box *new_box(lua_State *L)
{
    void *ud;
    box *bx = lua_newuserdatauv(L, sizeof *bx, 0);
    sf_alloc_fn alloc = (sf_alloc_fn)lua_getallocf(L, &ud);
    sf_strbuf_init(&bx->b, alloc, ud);
    luaL_setmetatable(L, BOX_MT);
    return bx;
}

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
        luaL_argerror(L, 2, lua_pushfstring(L, "sf.csv.to_page: columns[\"%s\"] must be a describe type "
                                               "string, not %s", lua_tostring(L, -1), tn));
    }
    ts = lua_tolstring(L, -1, &tl);
    lua_pop(L, 1);
    return sf_csv_type_of(ts, tl);
}

static int push_csv_fail(lua_State *L, const sf_csv_error *err)
{
    return sf_pushfail(L, err->code, "%s", err->msg);
}

/* csv.to_page(text, columns, object [, total_size]) -> body, n | nil, msg, "CSV" */
static int l_to_page(lua_State *L)
{
    size_t n, objlen;
    const char *text = luaL_checklstring(L, 1, &n);
    const char *object;
    lua_Integer total = -1;
    sf_csv_error err;
    sf_csv_page pg;
    sf_csv_cell *hdr = NULL;
    uint8_t *types = NULL;
    box *out;
    size_t nrec = 0, start = 0, i;
    long ncols;

    luaL_checktype(L, 2, LUA_TTABLE);
    object = luaL_checklstring(L, 3, &objlen);
    luaL_argcheck(L, objlen > 0, 3, "sf.csv.to_page: object must not be empty");
    luaL_argcheck(L, json_utf8_valid(object, objlen), 3, "sf.csv.to_page: object must be UTF-8");
    if (!lua_isnoneornil(L, 4)) {
        total = luaL_checkinteger(L, 4);
        luaL_argcheck(L, total >= 0, 4, "sf.csv.to_page: total_size must be >= 0");
    }
    lua_settop(L, 4);

    ncols = sf_csv_header_count(text, n, &err);
    if (ncols < 0) return push_csv_fail(L, &err);
    if (ncols > 0) {
        /* scratch arrays live in userdata: collected if anything below raises */
        size_t bytes;
        if (sf_size_mul((size_t)ncols, sizeof *hdr, &bytes) != 0)
            return luaL_error(L, "sf.csv.to_page: not enough memory");
        hdr = lua_newuserdatauv(L, bytes, 0);                           /* stack: 5 hdr */
        types = lua_newuserdatauv(L, (size_t)ncols, 0);                 /* stack: 6 types */
        (void)sf_csv_header(text, n, hdr, (size_t)ncols, &err);
        for (i = 0; i < (size_t)ncols; i++) {
            size_t len;
            char *name = lua_newuserdatauv(L, hdr[i].len ? hdr[i].len : 1, 0);
            len = sf_csv_unquote(text, &hdr[i], name);
            types[i] = (uint8_t)column_type(L, 2, name, len);
            lua_pop(L, 1);
        }
    }
    out = new_box(L);  /* stack: ..., box */
    pg.object = object;
    pg.objlen = objlen;
    pg.types = types;
    pg.ncols = (size_t)ncols;
    pg.total_size = (long long)total;
    if (sf_csv_to_page(text, n, &pg, &out->b, &start, &nrec, &err) != 0) {
        sf_strbuf_free(&out->b);
        if (strcmp(err.code, "MEMORY") == 0) return luaL_error(L, "%s", err.msg);
        return push_csv_fail(L, &err);
    }
    lua_pushlstring(L, out->b.p + start, out->b.n - start);
    sf_strbuf_free(&out->b);
    lua_pushinteger(L, (lua_Integer)nrec);
    return 2;
}

static const luaL_Reg box_meta[] = {
    {"__gc", box_gc},
    {NULL, NULL}
};

static const luaL_Reg csv_funcs[] = {
    {"to_page", l_to_page},
    {NULL, NULL}
};

int luaopen_sf_csv(lua_State *L)
{
    sf_createmeta(L, BOX_MT, box_meta, NULL, NULL);
    luaL_newlib(L, csv_funcs);
    return 1;
}
