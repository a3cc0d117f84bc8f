/* Zero-copy JSON tokenizer and walker: see json.h. No Lua API here. */
#include "json.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define OOM_MSG "out of memory"

void json_parser_init(json_parser *p, sf_alloc_fn alloc, void *ud)
{
    memset(p, 0, offsetof(json_parser, stack));
    p->alloc = alloc;
    p->alloc_ud = ud;
}

void json_parser_free(json_parser *p)
{
    if (p->toks != NULL)
        sf_mem(p->alloc, p->alloc_ud, p->toks, (size_t)p->cap * sizeof(json_tok), 0);
    p->toks = NULL;
    p->cap = 0;
    p->ntok = 0;
}

int json_parse_oom(const json_parser *p)
{
    return p->err_msg != NULL && strcmp(p->err_msg, OOM_MSG) == 0;
}

/* Room for one more token; the count stays below UINT32_MAX (tokens are
 * indexed with uint32_t). */
static int grow(json_parser *p)
{
    size_t cap = p->cap;
    json_tok *nt;
    if (p->cap >= UINT32_MAX / 2)
        return -1;
    nt = sf_grow(p->alloc, p->alloc_ud, p->toks, &cap, sizeof(json_tok), (size_t)p->cap + 1);
    if (nt == NULL)
        return -1;
    p->toks = nt;
    p->cap = (uint32_t)cap;
    return 0;
}

/* Length of the valid UTF-8 sequence starting at p (first byte >= 0x80), or 0. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *e)
{
    unsigned c = p[0];
    size_t avail = (size_t)(e - p);
    if (c >= 0xC2 && c <= 0xDF) {
        if (avail < 2 || (p[1] & 0xC0) != 0x80) return 0;
        return 2;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        unsigned lo = 0x80, hi = 0xBF;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
        if (avail < 3 || p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80) return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        unsigned lo = 0x80, hi = 0xBF;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
        if (avail < 4 || p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80 ||
            (p[3] & 0xC0) != 0x80) return 0;
        return 4;
    }
    return 0;
}

size_t json_utf8_seq(const char *s, size_t avail)
{
    const unsigned char *p = (const unsigned char *)s;
    if (*p < 0x80) return 1;
    return utf8_seq(p, p + avail);
}

int json_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *e = p + n;
    while (p < e) {
        if (*p < 0x80) {
            p++;
        } else {
            size_t k = utf8_seq(p, e);
            if (k == 0) return 0;
            p += k;
        }
    }
    return 1;
}

static int hexval(unsigned c)
{
    if (c >= '0' && c <= '9') return (int)(c - '0');
    c |= 0x20;
    if (c >= 'a' && c <= 'f') return (int)(c - 'a' + 10);
    return -1;
}

/* Four hex digits at p (bounds checked by the caller), or -1. */
static long hex4(const unsigned char *p)
{
    int a = hexval(p[0]), b = hexval(p[1]), c = hexval(p[2]), d = hexval(p[3]);
    if ((a | b | c | d) < 0) return -1;
    return (long)((a << 12) | (b << 8) | (c << 4) | d);
}

/* 8-bytes-at-a-time test for "any byte that ends the plain run of a string":
 * '"', '\\', < 0x20 or >= 0x80. */
#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL
static inline uint64_t word_special(uint64_t w)
{
    uint64_t q = w ^ (ONES * '"'), b = w ^ (ONES * '\\');
    uint64_t r = ((w - ONES * 0x20) & ~w) | ((q - ONES) & ~q) | ((b - ONES) & ~b) | w;
    return r & HIGHS;  /* false positives only above a true one: the lowest bit is exact */
}

/* Scans a string whose opening quote is at *pos. On success *pos is one past
 * the closing quote, *flags gets JSON_F_ESCAPED if needed. */
static int scan_string(json_parser *p, const unsigned char *s, size_t len,
                       size_t *pos, uint8_t *flags)
{
    size_t i = *pos + 1;
    uint8_t f = 0;
    for (;;) {
        while (i + 8 <= len) {
            uint64_t w, r;
            memcpy(&w, s + i, 8);
            r = word_special(w);
            if (r != 0) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                i += (size_t)__builtin_ctzll(r) >> 3;  /* straight to the special byte */
#endif
                break;
            }
            i += 8;
        }
        if (i >= len) {
            p->err_off = len;
            p->err_msg = "unterminated string";
            return -1;
        }
        unsigned c = s[i];
        if (c == '"') {
            *pos = i + 1;
            *flags = f;
            return 0;
        }
        if (c == '\\') {
            f |= JSON_F_ESCAPED;
            if (i + 1 >= len) {
                p->err_off = len;
                p->err_msg = "unterminated string";
                return -1;
            }
            switch (s[i + 1]) {
            case '"': case '\\': case '/': case 'b': case 'f':
            case 'n': case 'r': case 't':
                i += 2;
                break;
            case 'u': {
                long cp;
                if (i + 6 > len || (cp = hex4(s + i + 2)) < 0) {
                    p->err_off = i;
                    p->err_msg = "invalid \\u escape";
                    return -1;
                }
                if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    p->err_off = i;
                    p->err_msg = "lone low surrogate in \\u escape";
                    return -1;
                }
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    long lo;
                    if (i + 12 > len || s[i + 6] != '\\' || s[i + 7] != 'u' ||
                        (lo = hex4(s + i + 8)) < 0xDC00 || lo > 0xDFFF) {
                        p->err_off = i;
                        p->err_msg = "unpaired high surrogate in \\u escape";
                        return -1;
                    }
                    i += 12;
                } else {
                    i += 6;
                }
                break;
            }
            default:
                p->err_off = i;
                p->err_msg = "invalid escape";
                return -1;
            }
            continue;
        }
        if (c < 0x20) {
            p->err_off = i;
            p->err_msg = "control character in string";
            return -1;
        }
        if (c >= 0x80) {
            size_t k = utf8_seq(s + i, s + len);
            if (k == 0) {
                p->err_off = i;
                p->err_msg = "invalid UTF-8";
                return -1;
            }
            i += k;
            continue;
        }
        i++;
    }
}

/* Number at *pos (RFC 8259 grammar); on failure *pos is where it broke. */
static int scan_number(const unsigned char *s, size_t len, size_t *pos, uint8_t *flags)
{
    size_t i = *pos;
    uint8_t f = JSON_F_INTEGER;
    if (i < len && s[i] == '-') i++;
    if (i >= len || s[i] < '0' || s[i] > '9') goto bad;
    if (s[i] == '0') {
        i++;
    } else {
        while (i < len && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i < len && s[i] == '.') {
        f = 0;
        i++;
        if (i >= len || s[i] < '0' || s[i] > '9') goto bad;
        while (i < len && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        f = 0;
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= len || s[i] < '0' || s[i] > '9') goto bad;
        while (i < len && s[i] >= '0' && s[i] <= '9') i++;
    }
    *pos = i;
    *flags = f;
    return 0;
bad:
    *pos = i;
    return -1;
}

#define IS_WS(c) ((c) == ' ' || (c) == '\n' || (c) == '\r' || (c) == '\t')

/* The steps of json_parse are inlined into it (one loop, its state in
 * registers): the parse of a page is the hottest path of an import. */
#define STEP static inline __attribute__((always_inline))

/* The state of one json_parse call. */
typedef struct scan {
    json_parser *p;
    const unsigned char *s;
    size_t len;
    size_t pos;        /* the next byte to read */
    uint32_t depth;    /* open containers: p->stack[0 .. depth) */
    uint32_t ntok;     /* tokens written */
} scan;

static int fail(json_parser *p, size_t off, const char *msg)
{
    p->err_off = off;
    p->err_msg = msg;
    return -1;
}

STEP void skip_ws(scan *sc)
{
    while (sc->pos < sc->len && IS_WS(sc->s[sc->pos])) sc->pos++;
}

/* scan_string and scan_number on a copy of the position: the state's
 * address never leaves json_parse, so it stays in registers. */
STEP int scan_string_at(scan *sc, uint8_t *flags)
{
    size_t pos = sc->pos;
    int rc = scan_string(sc->p, sc->s, sc->len, &pos, flags);
    sc->pos = pos;
    return rc;
}

STEP int scan_number_at(scan *sc, uint8_t *flags)
{
    size_t pos = sc->pos;
    int rc = scan_number(sc->s, sc->len, &pos, flags);
    sc->pos = pos;
    return rc;
}

/* The next token, with room made for it (NULL: out of memory). */
STEP json_tok *new_token(scan *sc)
{
    json_tok *t;
    if (sc->ntok == sc->p->cap && grow(sc->p) != 0) {
        fail(sc->p, sc->pos, OOM_MSG);
        return NULL;
    }
    t = &sc->p->toks[sc->ntok];
    t->start = (uint32_t)sc->pos;
    t->size = 0;
    t->skip = 1;
    t->flags = 0;
    return t;
}

/* The token array sized for a typical page before the first parse. */
STEP int start(scan *sc, json_parser *p, const char *str, size_t len)
{
    sc->p = p;
    sc->s = (const unsigned char *)str;
    sc->len = len;
    sc->pos = 0;
    sc->depth = 0;
    sc->ntok = 0;
    p->ntok = 0;
    p->err_off = 0;
    p->err_msg = NULL;
    if (len >= UINT32_MAX) return fail(sc->p, 0, "document too large");
    if (p->cap == 0) {
        /* Salesforce pages run about one token per 12-16 bytes. */
        size_t cap = 0;
        json_tok *nt = sf_grow(p->alloc, p->alloc_ud, NULL, &cap, sizeof(json_tok), len / 10 + 64);
        if (nt == NULL) return fail(sc->p, 0, OOM_MSG);
        p->toks = nt;
        p->cap = (uint32_t)cap;
    }
    return 0;
}

/* true, false or null at the current position, of type `type`. */
STEP int scan_literal(scan *sc, json_tok *t, const char *word, size_t n, uint8_t type)
{
    if (sc->len - sc->pos < n || memcmp(sc->s + sc->pos, word, n) != 0)
        return fail(sc->p, sc->pos, "invalid literal");
    t->type = type;
    sc->pos += n;
    t->end = (uint32_t)sc->pos;
    return 0;
}

/* A string, number or literal into token t. */
STEP int scan_scalar(scan *sc, json_tok *t)
{
    uint8_t flags;
    switch (sc->s[sc->pos]) {
    case '"':
        t->type = JSON_STRING;
        if (scan_string_at(sc, &flags) != 0) return -1;
        t->start++;
        t->end = (uint32_t)sc->pos - 1;
        t->flags = flags;
        return 0;
    case 't': return scan_literal(sc, t, "true", 4, JSON_TRUE);
    case 'f': return scan_literal(sc, t, "false", 5, JSON_FALSE);
    case 'n': return scan_literal(sc, t, "null", 4, JSON_NULL);
    default:
        if (sc->s[sc->pos] != '-' && (sc->s[sc->pos] < '0' || sc->s[sc->pos] > '9'))
            return fail(sc->p, sc->pos, "unexpected character");
        t->type = JSON_NUMBER;
        if (scan_number_at(sc, &flags) != 0) return fail(sc->p, sc->pos, "invalid number");
        t->end = (uint32_t)sc->pos;
        t->flags = flags;
        return 0;
    }
}

/* An object key and its ':' (the key's token, then the value follows). */
STEP int scan_key(scan *sc)
{
    json_tok *t;
    uint8_t flags;
    skip_ws(sc);
    if (sc->pos >= sc->len || sc->s[sc->pos] != '"')
        return fail(sc->p, sc->pos, sc->pos >= sc->len ? "unexpected end of input" : "expected a string key");
    if ((t = new_token(sc)) == NULL) return -1;
    t->type = JSON_STRING;
    t->start = (uint32_t)sc->pos + 1;
    if (scan_string_at(sc, &flags) != 0) return -1;
    t->end = (uint32_t)sc->pos - 1;
    t->flags = flags;
    sc->ntok++;
    skip_ws(sc);
    if (sc->pos >= sc->len || sc->s[sc->pos] != ':')
        return fail(sc->p, sc->pos, sc->pos >= sc->len ? "unexpected end of input" : "expected ':'");
    sc->pos++;
    return 0;
}

/* The closing bracket of the innermost container, at the current position. */
STEP void close_container(scan *sc)
{
    uint32_t idx = sc->p->stack[--sc->depth];
    sc->pos++;
    sc->p->toks[idx].end = (uint32_t)sc->pos;
    sc->p->toks[idx].skip = sc->ntok - idx;
}

/* Token t opens an object or array: 1 when it was empty (and is closed
 * already), 0 when its first member or element follows. */
STEP int open_container(scan *sc, json_tok *t)
{
    char closer;
    if (sc->depth == JSON_MAX_DEPTH) return fail(sc->p, sc->pos, "nesting too deep");
    t->type = sc->s[sc->pos] == '{' ? JSON_OBJECT : JSON_ARRAY;
    closer = t->type == JSON_OBJECT ? '}' : ']';
    sc->p->stack[sc->depth++] = sc->ntok++;
    sc->pos++;
    skip_ws(sc);
    if (sc->pos < sc->len && sc->s[sc->pos] == closer) {
        close_container(sc);
        return 1;
    }
    if (t->type == JSON_OBJECT && scan_key(sc) != 0) return -1;
    return 0;
}

/* One value: 1 complete, 0 a container opened (a value follows), -1 error. */
STEP int read_value(scan *sc)
{
    json_tok *t;
    skip_ws(sc);
    if (sc->pos >= sc->len) return fail(sc->p, sc->pos, "unexpected end of input");
    if ((t = new_token(sc)) == NULL) return -1;
    if (sc->s[sc->pos] == '{' || sc->s[sc->pos] == '[') return open_container(sc, t);
    if (scan_scalar(sc, t) != 0) return -1;
    sc->ntok++;
    return 1;
}

/* After a complete value: counts it in its container, then reads the ','
 * (and the next key) or the closing brackets. 1 a value follows, 0 the
 * document is complete, -1 error. */
STEP int after_value(scan *sc)
{
    while (sc->depth > 0) {
        json_tok *t = &sc->p->toks[sc->p->stack[sc->depth - 1]];
        char closer = t->type == JSON_OBJECT ? '}' : ']';
        t->size++;
        skip_ws(sc);
        if (sc->pos >= sc->len) return fail(sc->p, sc->pos, "unexpected end of input");
        if (sc->s[sc->pos] == ',') {
            sc->pos++;
            if (t->type == JSON_OBJECT && scan_key(sc) != 0) return -1;
            return 1;
        }
        if (sc->s[sc->pos] != closer)
            return fail(sc->p, sc->pos, t->type == JSON_OBJECT ? "expected ',' or '}'" : "expected ',' or ']'");
        close_container(sc); /* a complete value of its parent */
    }
    return 0;
}

/* Only white space may follow the document. */
STEP int finish(scan *sc)
{
    skip_ws(sc);
    if (sc->pos != sc->len) return fail(sc->p, sc->pos, "trailing characters after the document");
    sc->p->ntok = sc->ntok;
    return 0;
}

int json_parse(json_parser *p, const char *str, size_t len)
{
    scan sc;
    int rc;
    if (start(&sc, p, str, len) != 0) return -1;
    for (;;) {
        rc = read_value(&sc);
        if (rc < 0) return -1;
        if (rc == 0) continue; /* a container opened: its first value follows */
        rc = after_value(&sc);
        if (rc < 0) return -1;
        if (rc == 0) return finish(&sc);
    }
}

/* Decodes one escape sequence at p (p[0] == '\\', validated by json_parse)
 * into out (up to 4 bytes); returns bytes written, sets *used to the input
 * bytes consumed. */
static size_t unescape_one(const unsigned char *p, unsigned char *out, size_t *used)
{
    unsigned long cp;
    switch (p[1]) {
    case 'b': out[0] = '\b'; *used = 2; return 1;
    case 'f': out[0] = '\f'; *used = 2; return 1;
    case 'n': out[0] = '\n'; *used = 2; return 1;
    case 'r': out[0] = '\r'; *used = 2; return 1;
    case 't': out[0] = '\t'; *used = 2; return 1;
    case 'u': break;
    default: out[0] = p[1]; *used = 2; return 1;  /* " \ / */
    }
    cp = (unsigned long)hex4(p + 2);
    *used = 6;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        unsigned long lo = (unsigned long)hex4(p + 8);
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        *used = 12;
    }
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t json_unescape(const char *str, const json_tok *t, char *outc)
{
    const unsigned char *s = (const unsigned char *)str;
    unsigned char *out = (unsigned char *)outc;
    size_t i = t->start, e = t->end, o = 0;
    if (!(t->flags & JSON_F_ESCAPED)) {
        memcpy(out, s + i, e - i);
        return e - i;
    }
    while (i < e) {
        const unsigned char *bs = memchr(s + i, '\\', e - i);
        size_t run = bs ? (size_t)(bs - (s + i)) : e - i;
        memcpy(out + o, s + i, run);
        o += run;
        i += run;
        if (i < e) {
            size_t used;
            o += unescape_one(s + i, out + o, &used);
            i += used;
        }
    }
    return o;
}

int json_str_eq(const char *str, const json_tok *t, const char *key, size_t klen)
{
    const unsigned char *s = (const unsigned char *)str;
    const unsigned char *k = (const unsigned char *)key;
    size_t i = t->start, e = t->end, j = 0;
    if (!(t->flags & JSON_F_ESCAPED))
        return e - i == klen && memcmp(s + i, key, klen) == 0;
    if (e - i < klen) return 0;  /* escapes only shrink text */
    while (i < e) {
        if (s[i] != '\\') {
            if (j >= klen || s[i] != k[j]) return 0;
            i++;
            j++;
        } else {
            unsigned char buf[4];
            size_t used, n = unescape_one(s + i, buf, &used);
            if (j + n > klen || memcmp(buf, k + j, n) != 0) return 0;
            i += used;
            j += n;
        }
    }
    return j == klen;
}

long json_obj_get(const char *s, const json_tok *toks, uint32_t obj,
                  const char *key, size_t klen)
{
    uint32_t n = toks[obj].size, i = obj + 1;
    if (toks[obj].type != JSON_OBJECT) return -1;
    while (n-- > 0) {
        if (json_str_eq(s, &toks[i], key, klen)) return (long)i + 1;
        i += 1 + toks[i + 1].skip;
    }
    return -1;
}

int json_is_number(const char *s, size_t n)
{
    size_t pos = 0;
    uint8_t f;
    if (n == 0) return 0;
    if (scan_number((const unsigned char *)s, n, &pos, &f) != 0) return 0;
    return pos == n;
}

int json_number_int64(const char *s, size_t n, int64_t *out)
{
    size_t i = 0, il, fl = 0;
    const char *ip, *fp = NULL;
    long long ex = 0, P, L, f, k;
    int neg = 0;
    uint64_t v = 0, lim;

    if (i < n && s[i] == '-') { neg = 1; i++; }
    ip = s + i;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    il = (size_t)(s + i - ip);
    if (i < n && s[i] == '.') {
        fp = s + ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        fl = (size_t)(s + i - fp);
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        int eneg = 0;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) eneg = s[i++] == '-';
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (ex < 1000000000LL) ex = ex * 10 + (s[i] - '0');
            i++;
        }
        if (eneg) ex = -ex;
    }
#define DIGIT(idx) ((size_t)(idx) < il ? ip[(idx)] : fp[(size_t)(idx) - il])
    L = (long long)(il + fl);
    for (f = 0; f < L && DIGIT(f) == '0'; f++) {}
    if (f == L) {           /* all zeros */
        *out = 0;
        return 1;
    }
    P = (long long)il + ex; /* digits before the decimal point */
    for (k = P > f ? P : f; k < L; k++)
        if (DIGIT(k) != '0') return 0;
    if (P - f > 19) return -1;
    for (k = f; k < P; k++) {
        unsigned d = k < L ? (unsigned)(DIGIT(k) - '0') : 0;
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
#undef DIGIT
    lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (v > lim) return -1;
    if (neg)
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    else
        *out = (int64_t)v;
    return 1;
}
