/* Memory for the C primitives: see alloc.h. */
#include "alloc.h"

#include <stdlib.h>

#define MIN_CAP 64

void *sf_mem(sf_alloc_fn alloc, void *ud, void *p, size_t osize, size_t nsize)
{
    if (alloc != NULL) return alloc(ud, p, osize, nsize);
    if (nsize == 0) {
        free(p);
        return NULL;
    }
    return realloc(p, nsize);
}

void *sf_grow(sf_alloc_fn alloc, void *ud, void *p, size_t *cap, size_t elem, size_t need)
{
    size_t ncap = *cap, bytes;
    void *np;
    if (ncap >= need) return p;
    /* max(2 * cap, need, MIN_CAP): doubling amortises, need sizes a known total */
    ncap = ncap > SIZE_MAX / 2 ? SIZE_MAX : ncap * 2;
    if (ncap < need) ncap = need;
    if (ncap < MIN_CAP) ncap = MIN_CAP;
    if (sf_size_mul(ncap, elem, &bytes) != 0) {
        ncap = need; /* the doubled size overflows: try the exact one */
        if (sf_size_mul(ncap, elem, &bytes) != 0) return NULL;
    }
    np = sf_mem(alloc, ud, p, *cap * elem /* fits: it was allocated */, bytes);
    if (np == NULL) return NULL;
    *cap = ncap;
    return np;
}
