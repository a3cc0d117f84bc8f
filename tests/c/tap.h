/* Minimal TAP output for the C unit tests: each check prints "ok - name" or
 * "not ok - name: detail"; tap_done() returns the exit status. */
#ifndef SF_TAP_H
#define SF_TAP_H
#include <stdio.h>
static int tap_failed;
#define TAP_CHECK(cond, name) do { \
    if (cond) printf("ok - %s\n", name); \
    else { printf("not ok - %s: %s (%s:%d)\n", name, #cond, __FILE__, __LINE__); tap_failed++; } \
} while (0)
static inline int tap_done(void) { fflush(stdout); return tap_failed ? 1 : 0; }
#endif
