/* The item list of a []string field: JSON texts kept in order, a duplicate
 * dropped as it is added (no Lua API; nothing raises). Small lists compare
 * linearly; from 16 items on, an open-addressing hash (FNV-1a) over the
 * items, built lazily, keeps a long list linear in time.
 *
 * An item is written straight into l->text (sf_strbuf calls), then kept
 * with sf_dedup_commit(l, off), off being where its text starts. */
#ifndef SF_DEDUP_H
#define SF_DEDUP_H

#include <stddef.h>
#include <stdint.h>

#include "alloc.h"
#include "strbuf.h"

typedef struct sf_dedup_span {
    size_t off, len;          /* an item: text.p[off .. off + len) */
} sf_dedup_span;

typedef struct sf_dedup {
    sf_strbuf text;           /* owned: the items' texts, back to back */
    sf_dedup_span *items;     /* owned (alloc) */
    size_t n, cap;
    uint32_t *hash;           /* owned (alloc): item index + 1, 0 empty; hcap a power of 2 */
    size_t hcap, hashed;      /* items[0 .. hashed) are in the hash */
    sf_alloc_fn alloc;
    void *ud;
} sf_dedup;

void sf_dedup_init(sf_dedup *l, sf_alloc_fn alloc, void *ud);
void sf_dedup_free(sf_dedup *l);
/* Empties the list (memory kept). */
void sf_dedup_reset(sf_dedup *l);
/* Keeps text[off .. text.n) as the next item, or drops it (text.n back to
 * off) when dedup and an equal item is already in the list. 0, or -1 out of
 * memory (the item is dropped). */
int sf_dedup_commit(sf_dedup *l, size_t off, int dedup);
/* Rolls the list back to its first n items. */
void sf_dedup_truncate(sf_dedup *l, size_t n);
/* Appends the items as a JSON array "[a,b]": 0, or -1 out of memory. */
int sf_dedup_emit(const sf_dedup *l, sf_strbuf *b);

#endif
