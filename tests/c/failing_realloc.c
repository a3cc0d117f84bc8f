/* LD_PRELOAD shim for tests/c/test_setup_oom.sh: realloc fails (returns
 * NULL) for every growth after the first FAIL_AFTER ones, as a heap that has
 * run out would. The Lua state allocates everything through realloc
 * (engine/sandbox.c), so this reaches every allocation of its setup. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>

static void *(*real_realloc)(void *, size_t);
static long left = -1; /* growths still allowed; -1: no limit */

void *realloc(void *p, size_t n)
{
    if (real_realloc == NULL) {
        const char *e = getenv("FAIL_AFTER");
        real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
        left = e != NULL ? atol(e) : -1;
    }
    if (left >= 0 && n > 0) {
        if (left == 0) return NULL;
        left--;
    }
    return real_realloc(p, n);
}
