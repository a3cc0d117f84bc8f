/* The growable buffer and the JSON string writer: see strbuf.h. */
#include "strbuf.h"

#include "json.h"

void sf_strbuf_init(sf_strbuf *b, sf_alloc_fn alloc, void *ud)
{
    b->p = NULL;
    b->n = b->cap = 0;
    b->alloc = alloc;
    b->ud = ud;
}

void sf_strbuf_free(sf_strbuf *b)
{
    if (b->p != NULL) sf_mem(b->alloc, b->ud, b->p, b->cap, 0);
    b->p = NULL;
    b->n = b->cap = 0;
}

int sf_strbuf_grow(sf_strbuf *b, size_t more)
{
    size_t need;
    char *np;
    if (sf_size_add(b->n, more, &need) != 0) return -1;
    np = sf_grow(b->alloc, b->ud, b->p, &b->cap, 1, need);
    if (np == NULL) return -1;
    b->p = np;
    return 0;
}

/* What a byte needs in a JSON string: 0 copied as is, 1 escaped, 2 the
 * first byte of a UTF-8 sequence (or an invalid byte). A run of bytes whose
 * class & stop is 0 is copied in one memcpy. */
static const unsigned char byte_class[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* '"' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* '\\' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

int sf_strbuf_json(sf_strbuf *b, const char *str, size_t n, unsigned flags, size_t *bad)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    /* bytes >= 0x80 need a look only when they are checked or repaired */
    unsigned char stop = (flags & (SF_JSON_REPAIR | SF_JSON_STRICT)) ? 3 : 1;
    size_t worst, i = 0;
    char *o;
    /* the worst case is 6 bytes per input byte ("\u001f"), plus the quotes */
    if (sf_size_mul(n, 6, &worst) != 0 || sf_size_add(worst, 2, &worst) != 0) return -1;
    if (sf_strbuf_reserve(b, worst) != 0) return -1;
    o = b->p + b->n;
    *o++ = '"';
    while (i < n) {
        size_t j = i;
        unsigned c;
        while (j < n && (byte_class[s[j]] & stop) == 0) j++;
        memcpy(o, s + i, j - i);
        o += j - i;
        i = j;
        if (i >= n) break;
        c = s[i];
        if (c >= 0x80) {
            size_t k = json_utf8_seq((const char *)s + i, n - i);
            if (k > 0) {
                memcpy(o, s + i, k);
                o += k;
                i += k;
            } else if (flags & SF_JSON_STRICT) {
                *bad = i;
                return -2; /* b->n not advanced: nothing was appended */
            } else {
                memcpy(o, "\xEF\xBF\xBD", 3); /* U+FFFD for the invalid byte */
                o += 3;
                i++;
            }
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"':
            *o++ = '"';
            i += (flags & SF_JSON_CSV_DQ) ? 2 : 1; /* "" is one quote */
            continue;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
        i++;
    }
    *o++ = '"';
    b->n = (size_t)(o - b->p);
    return 0;
}
