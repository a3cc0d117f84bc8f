/* The de-duplicating item list of a []string field: see dedup.h. */
#include "dedup.h"

#include <string.h>

#define LINEAR_MAX 16 /* below this many items a linear scan beats hashing */

void sf_dedup_init(sf_dedup *l, sf_alloc_fn alloc, void *ud)
{
    memset(l, 0, sizeof *l);
    sf_strbuf_init(&l->text, alloc, ud);
    l->alloc = alloc;
    l->ud = ud;
}

void sf_dedup_free(sf_dedup *l)
{
    sf_strbuf_free(&l->text);
    if (l->items != NULL) sf_mem(l->alloc, l->ud, l->items, l->cap * sizeof *l->items, 0);
    if (l->hash != NULL) sf_mem(l->alloc, l->ud, l->hash, l->hcap * sizeof *l->hash, 0);
    l->items = NULL;
    l->hash = NULL;
    l->n = l->cap = l->hcap = l->hashed = 0;
}

static uint32_t hash_bytes(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    while (n--) h = (h ^ (unsigned char)*p++) * 16777619u;
    return h;
}

static void hash_insert(sf_dedup *l, size_t idx)
{
    const sf_dedup_span *sp = &l->items[idx];
    size_t mask = l->hcap - 1, h = hash_bytes(l->text.p + sp->off, sp->len) & mask;
    while (l->hash[h] != 0) h = (h + 1) & mask;
    l->hash[h] = (uint32_t)idx + 1;
}

/* A hash at most half full for the items: rebuilt (empty, to be filled
 * lazily) when it is not, a quarter full. 0, or -1 out of memory. */
static int hash_room(sf_dedup *l)
{
    size_t want = 64, need, quarter, cap = 0;
    uint32_t *h;
    if (sf_size_mul(l->n, 2, &need) != 0 || sf_size_add(need, 2, &need) != 0) return -1;
    if (l->hcap >= need) return 0;
    if (l->n >= UINT32_MAX - 1 || sf_size_mul(l->n, 4, &quarter) != 0) return -1; /* slots hold index + 1 */
    while (want < quarter) { /* a power of two */
        if (want > SIZE_MAX / 2) return -1;
        want *= 2;
    }
    h = sf_grow(l->alloc, l->ud, NULL, &cap, sizeof *h, want);
    if (h == NULL) return -1;
    if (l->hash != NULL) sf_mem(l->alloc, l->ud, l->hash, l->hcap * sizeof *l->hash, 0);
    memset(h, 0, cap * sizeof *h);
    l->hash = h;
    l->hcap = cap;
    l->hashed = 0;
    return 0;
}

/* 1 when text[off .. off + len) equals an item already kept, -1 out of memory. */
static int is_dup(sf_dedup *l, size_t off, size_t len)
{
    const char *p = l->text.p + off;
    size_t i, mask, h;
    if (l->n < LINEAR_MAX) {
        for (i = 0; i < l->n; i++)
            if (l->items[i].len == len && memcmp(l->text.p + l->items[i].off, p, len) == 0)
                return 1;
        return 0;
    }
    if (hash_room(l) != 0) return -1;
    for (; l->hashed < l->n; l->hashed++) hash_insert(l, l->hashed);
    mask = l->hcap - 1;
    for (h = hash_bytes(p, len) & mask; l->hash[h] != 0; h = (h + 1) & mask) {
        const sf_dedup_span *sp = &l->items[l->hash[h] - 1];
        if (sp->len == len && memcmp(l->text.p + sp->off, p, len) == 0) return 1;
    }
    return 0;
}

void sf_dedup_reset(sf_dedup *l)
{
    l->text.n = 0;
    l->n = 0;
    if (l->hashed > 0) memset(l->hash, 0, l->hcap * sizeof *l->hash);
    l->hashed = 0;
}

int sf_dedup_commit(sf_dedup *l, size_t off, int dedup)
{
    size_t len = l->text.n - off;
    if (dedup) {
        int d = is_dup(l, off, len);
        if (d != 0) {
            l->text.n = off;
            return d < 0 ? -1 : 0;
        }
    }
    if (l->n == l->cap) {
        sf_dedup_span *np = sf_grow(l->alloc, l->ud, l->items, &l->cap, sizeof *np, l->n + 1);
        if (np == NULL) {
            l->text.n = off;
            return -1;
        }
        l->items = np;
    }
    l->items[l->n].off = off;
    l->items[l->n].len = len;
    l->n++;
    return 0;
}

void sf_dedup_truncate(sf_dedup *l, size_t n)
{
    if (n >= l->n) return;
    l->text.n = l->items[n].off;
    l->n = n;
    if (l->hashed > n) { /* rebuilt lazily by the next lookup */
        memset(l->hash, 0, l->hcap * sizeof *l->hash);
        l->hashed = 0;
    }
}

int sf_dedup_emit(const sf_dedup *l, sf_strbuf *b)
{
    size_t i;
    if (sf_strbuf_addc(b, '[') != 0) return -1;
    for (i = 0; i < l->n; i++) {
        if (i > 0 && sf_strbuf_addc(b, ',') != 0) return -1;
        if (sf_strbuf_add(b, l->text.p + l->items[i].off, l->items[i].len) != 0) return -1;
    }
    return sf_strbuf_addc(b, ']');
}
