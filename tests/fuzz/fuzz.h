/* What the fuzz targets share: a finding is a message naming the target and
 * the property that broke, then a trap, which libFuzzer takes for a crash
 * and saves the input of. */
#ifndef RV_FUZZ_H
#define RV_FUZZ_H

#include <stdio.h>

/* Each target defines FUZZ_NAME ("fuzz_cdp", ...) before including this. */
static inline void fuzz_fail(const char *what, const char *detail)
{
    fprintf(stderr, "%s: %s%s%s\n", FUZZ_NAME, what, detail ? ": " : "", detail ? detail : "");
    __builtin_trap();
}

#define FUZZ_CHECK(cond, detail) \
    do { \
        if (!(cond)) \
            fuzz_fail(#cond, detail); \
    } while (0)

#endif
