/* One growable byte buffer and one JSON string writer for every C primitive
 * (sf.mapper, sf.csv, sf.http, sf.input). No Lua API, and nothing here
 * raises: failures are return values, so the buffers are safe inside
 * libcurl callbacks; a caller on a Lua stack turns -1 into its own "not
 * enough memory" error. Memory and growth follow alloc.h (sf_grow). */
#ifndef SF_STRBUF_H
#define SF_STRBUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "alloc.h"

typedef struct sf_strbuf {
    char *p;             /* owned: from alloc; NULL until the first growth */
    size_t n;            /* bytes used */
    size_t cap;          /* bytes allocated */
    sf_alloc_fn alloc;   /* NULL: realloc/free */
    void *ud;
} sf_strbuf;

/* An empty buffer drawing on alloc (NULL: realloc/free). A zeroed struct is
 * the same as sf_strbuf_init(b, NULL, NULL). */
void sf_strbuf_init(sf_strbuf *b, sf_alloc_fn alloc, void *ud);
/* Frees the memory; the buffer is empty again and may be reused. */
void sf_strbuf_free(sf_strbuf *b);
/* The slow half of sf_strbuf_reserve. */
int sf_strbuf_grow(sf_strbuf *b, size_t more);

/* Room for more bytes past b->n: 0, or -1 (overflow or out of memory; the
 * buffer is unchanged). */
static inline int sf_strbuf_reserve(sf_strbuf *b, size_t more)
{
    return more <= b->cap - b->n ? 0 : sf_strbuf_grow(b, more);
}

static inline int sf_strbuf_add(sf_strbuf *b, const void *s, size_t n)
{
    if (sf_strbuf_reserve(b, n) != 0) return -1;
    if (n > 0) memcpy(b->p + b->n, s, n);
    b->n += n;
    return 0;
}

static inline int sf_strbuf_addc(sf_strbuf *b, char c)
{
    if (sf_strbuf_reserve(b, 1) != 0) return -1;
    b->p[b->n++] = c;
    return 0;
}

#define sf_strbuf_addlit(b, lit) sf_strbuf_add((b), (lit), sizeof(lit) - 1)

/* sf_strbuf_json flags. Without SF_JSON_REPAIR or SF_JSON_STRICT, bytes
 * >= 0x80 are copied as they are (text already known to be UTF-8). */
#define SF_JSON_REPAIR 1u  /* an invalid UTF-8 byte becomes U+FFFD */
#define SF_JSON_STRICT 2u  /* invalid UTF-8 fails with -2, its offset in *bad */
#define SF_JSON_CSV_DQ 4u  /* a "" pair in s stands for one quote (a CSV cell) */

/* Appends s[0..n) as a JSON string: quotes around it, and only '"', '\\'
 * and control characters escaped ("\n", "\u001f"; UTF-8 otherwise kept).
 * Returns 0, -1 (overflow or out of memory) or -2 (SF_JSON_STRICT: invalid
 * UTF-8 at s + *bad). On failure b->n is as before the call. */
int sf_strbuf_json(sf_strbuf *b, const char *s, size_t n, unsigned flags, size_t *bad);

#endif
