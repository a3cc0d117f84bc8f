/* The one growable buffer, its JSON string writer and the overflow-checked
 * size arithmetic (engine/alloc.h, engine/strbuf.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "strbuf.h"
#include "tap.h"

/* An allocator failing after `left` successful (re)allocations. */
static long alloc_left;
static long alloc_live;
static void *failing_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    (void)osize;
    if (nsize == 0) {
        if (ptr != NULL) alloc_live--;
        free(ptr);
        return NULL;
    }
    if (alloc_left-- <= 0) return NULL;
    if (ptr == NULL) alloc_live++;
    return realloc(ptr, nsize);
}

/* The JSON text sf_strbuf_json writes for s[0..n) with flags ("" on failure). */
static const char *json_of(const char *s, size_t n, unsigned flags, int *rc, size_t *bad)
{
    static char out[512];
    sf_strbuf b;
    sf_strbuf_init(&b, NULL, NULL);
    *rc = sf_strbuf_json(&b, s, n, flags, bad);
    out[0] = '\0';
    if (*rc == 0 && b.n < sizeof out) {
        memcpy(out, b.p, b.n);
        out[b.n] = '\0';
    }
    sf_strbuf_free(&b);
    return out;
}

static void sizes(void)
{
    size_t r = 7;
    TAP_CHECK(sf_size_add(SIZE_MAX - 1, 1, &r) == 0 && r == SIZE_MAX, "size_add: the largest sum fits");
    r = 7;
    TAP_CHECK(sf_size_add(SIZE_MAX, 1, &r) == -1 && r == 7, "size_add: an overflowing sum fails, *out untouched");
    TAP_CHECK(sf_size_mul(SIZE_MAX / 6, 6, &r) == 0 && r == SIZE_MAX / 6 * 6, "size_mul: the largest product fits");
    r = 7;
    TAP_CHECK(sf_size_mul(SIZE_MAX / 6 + 1, 6, &r) == -1 && r == 7, "size_mul: n * 6 past SIZE_MAX fails");
    TAP_CHECK(sf_size_mul(0, SIZE_MAX, &r) == 0 && r == 0, "size_mul: zero times anything is zero");
}

static void growth(void)
{
    sf_strbuf b;
    size_t cap = 0, i;
    uint32_t *arr;
    int ok = 1;

    sf_strbuf_init(&b, NULL, NULL);
    TAP_CHECK(sf_strbuf_add(&b, "abc", 3) == 0 && b.n == 3 && b.cap == 64 && memcmp(b.p, "abc", 3) == 0,
              "add: the first growth allocates 64 bytes");
    for (i = 0; i < 1000 && ok; i++) ok = sf_strbuf_addc(&b, (char)('a' + i % 26)) == 0;
    TAP_CHECK(ok && b.n == 1003 && b.p[3] == 'a' && b.p[1002] == 'a' + 999 % 26, "addc: contents kept across growth");
    TAP_CHECK(b.cap == 1024, "growth doubles: 64 -> 1024 for 1003 bytes");
    TAP_CHECK(sf_strbuf_reserve(&b, 100000) == 0 && b.cap == 101003, "reserve of a known total allocates exactly that");
    TAP_CHECK(sf_strbuf_reserve(&b, SIZE_MAX) == -1 && b.n == 1003 && b.cap == 101003,
              "reserve: n + more past SIZE_MAX fails and leaves the buffer as it was");
    sf_strbuf_free(&b);
    TAP_CHECK(b.p == NULL && b.n == 0 && b.cap == 0, "free empties the buffer");
    TAP_CHECK(sf_strbuf_addlit(&b, "again") == 0 && b.n == 5, "a freed buffer is reusable");
    sf_strbuf_free(&b);

    arr = sf_grow(NULL, NULL, NULL, &cap, sizeof *arr, 10);
    TAP_CHECK(arr != NULL && cap == 64, "grow: an array gets at least 64 elements");
    arr[63] = 42;
    arr = sf_grow(NULL, NULL, arr, &cap, sizeof *arr, 65);
    TAP_CHECK(arr != NULL && cap == 128 && arr[63] == 42, "grow: doubles and keeps the elements");
    {
        uint32_t *same = sf_grow(NULL, NULL, arr, &cap, sizeof *arr, SIZE_MAX / 2);
        TAP_CHECK(same == NULL && cap == 128, "grow: need * elem past SIZE_MAX fails, the old array stays");
    }
    free(arr);

    /* every allocation failure leaves a consistent buffer */
    sf_strbuf_init(&b, failing_alloc, NULL);
    alloc_left = 1;
    alloc_live = 0;
    ok = sf_strbuf_add(&b, "x", 1) == 0;
    for (i = 0; i < 200 && ok; i++) ok = sf_strbuf_addc(&b, 'y') == 0;
    TAP_CHECK(!ok && b.n == 64 && b.cap == 64 && b.p[0] == 'x', "a failed growth returns -1, contents intact");
    sf_strbuf_free(&b);
    TAP_CHECK(alloc_live == 0, "... and free gives everything back to the allocator");
}

static void json(void)
{
    int rc;
    size_t bad = 99;
    const char *ctl = "a\"b\\c\n\r\t\b\f\x01\x1f/";
    TAP_CHECK(strcmp(json_of(ctl, strlen(ctl), 0, &rc, &bad),
                     "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f/\"") == 0 && rc == 0,
              "json: quotes, backslashes and control characters escaped, '/' kept");
    TAP_CHECK(strcmp(json_of("", 0, 0, &rc, &bad), "\"\"") == 0, "json: the empty string");
    TAP_CHECK(strcmp(json_of("x\0y", 3, 0, &rc, &bad), "\"x\\u0000y\"") == 0, "json: NUL is \\u0000");
    TAP_CHECK(strcmp(json_of("caf\xC3\xA9 \xE2\x98\x95", 9, SF_JSON_STRICT, &rc, &bad),
                     "\"caf\xC3\xA9 \xE2\x98\x95\"") == 0 && rc == 0, "json: valid UTF-8 is written verbatim");
    TAP_CHECK(strcmp(json_of("a\xFF" "b", 3, 0, &rc, &bad), "\"a\xFF" "b\"") == 0,
              "json: without a flag, bytes >= 0x80 are copied unchecked");
    TAP_CHECK(strcmp(json_of("a\xFF" "b\xC3", 4, SF_JSON_REPAIR, &rc, &bad),
                     "\"a\xEF\xBF\xBD" "b\xEF\xBF\xBD\"") == 0, "json: REPAIR turns each invalid byte into U+FFFD");
    json_of("ab\xC3(", 4, SF_JSON_STRICT, &rc, &bad);
    TAP_CHECK(rc == -2 && bad == 2, "json: STRICT fails with -2 and the offset of the invalid byte");
    TAP_CHECK(strcmp(json_of("say \"\"hi\"\"", 10, SF_JSON_CSV_DQ, &rc, &bad), "\"say \\\"hi\\\"\"") == 0,
              "json: CSV_DQ reads a \"\" pair as one quote");
    {
        sf_strbuf b;
        sf_strbuf_init(&b, NULL, NULL);
        sf_strbuf_addlit(&b, "kept");
        TAP_CHECK(sf_strbuf_json(&b, "x", SIZE_MAX / 6 + 1, 0, &bad) == -1 && b.n == 4,
                  "json: a length whose escaped size (n * 6 + 2) overflows fails before touching memory");
        TAP_CHECK(sf_strbuf_json(&b, "ok\xFF", 3, SF_JSON_STRICT, &bad) == -2 && b.n == 4,
                  "json: a STRICT failure leaves the buffer as it was");
        sf_strbuf_free(&b);
    }
}

int main(void)
{
    sizes();
    growth();
    json();
    return tap_done();
}
