/* Memory for the C primitives: one allocator shape, overflow-checked sizes,
 * and the one growth rule for arrays and buffers (no Lua API; nothing here
 * raises, failures are return values).
 *
 * Memory comes from an sf_alloc_fn, normally the Lua state's allocator so a
 * memory cap on the state sees it, or from realloc/free when it is NULL.
 * Growth keeps the amortised doubling of lua-cjson's strbuf: the new
 * capacity is the larger of twice the old one and what is needed (at least
 * 64 elements), so one reservation of a known total allocates exactly that. */
#ifndef SF_ALLOC_H
#define SF_ALLOC_H

#include <stddef.h>
#include <stdint.h>

/* Same shape as lua_Alloc, so a Lua state's allocator passes through
 * without these files depending on Lua: nsize == 0 frees. */
typedef void *(*sf_alloc_fn)(void *ud, void *ptr, size_t osize, size_t nsize);

/* a + b and a * b into *out; -1 (and *out untouched) when the result does
 * not fit a size_t. Every length that is added or multiplied goes through
 * these before it sizes an allocation or a copy. */
static inline int sf_size_add(size_t a, size_t b, size_t *out)
{
    if (b > SIZE_MAX - a) return -1;
    *out = a + b;
    return 0;
}

static inline int sf_size_mul(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) return -1;
    *out = a * b;
    return 0;
}

/* alloc(ud, p, osize, nsize), or realloc/free when alloc is NULL. */
void *sf_mem(sf_alloc_fn alloc, void *ud, void *p, size_t osize, size_t nsize);

/* Grows the array p of *cap elements of elem bytes to hold at least need
 * elements (contents kept). Returns the array (*cap updated), or NULL when
 * out of memory or when need * elem overflows; the old array is then still
 * valid and still the caller's. */
void *sf_grow(sf_alloc_fn alloc, void *ud, void *p, size_t *cap, size_t elem, size_t need);

#endif
