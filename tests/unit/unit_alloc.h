/* Forced into every source of a unit-test build (-include): the system
 * headers first, then cmocka.h, whose UNIT_TESTING macros send malloc, calloc,
 * realloc and free of the code under test to cmocka's checking allocator, so
 * a leak or a double free fails the test.
 *
 * Under valgrind that allocator would hide what memcheck looks for: it fills
 * every block with a pattern (no read of uninitialised memory is seen), pads
 * it with guard bytes (a small overrun reads padding), and keeps every block
 * on its own list (a leak is never "definitely lost"). With UNIT_ALLOC=libc
 * in the environment, as tests/unit/valgrind.sh runs them, the test binaries
 * use libc's allocator instead and valgrind does the checking. The choice is
 * made once per process, before the first allocation, so a block is always
 * freed by the allocator that gave it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#undef malloc
#undef calloc
#undef realloc
#undef free

static inline int unit_alloc_libc(void)
{
    static int libc = -1;
    if (libc < 0) {
        const char *v = getenv("UNIT_ALLOC");
        libc = v && strcmp(v, "libc") == 0;
    }
    return libc;
}

static inline void *unit_malloc(size_t size, const char *file, int line)
{
    return unit_alloc_libc() ? malloc(size) : _test_malloc(size, file, line);
}

static inline void *unit_calloc(size_t n, size_t size, const char *file, int line)
{
    return unit_alloc_libc() ? calloc(n, size) : _test_calloc(n, size, file, line);
}

static inline void *unit_realloc(void *ptr, size_t size, const char *file, int line)
{
    return unit_alloc_libc() ? realloc(ptr, size) : _test_realloc(ptr, size, file, line);
}

static inline void unit_free(void *ptr, const char *file, int line)
{
    if (unit_alloc_libc())
        free(ptr);
    else
        _test_free(ptr, file, line);
}

#define malloc(size) unit_malloc((size), __FILE__, __LINE__)
#define calloc(n, size) unit_calloc((n), (size), __FILE__, __LINE__)
#define realloc(ptr, size) unit_realloc((ptr), (size), __FILE__, __LINE__)
#define free(ptr) unit_free((ptr), __FILE__, __LINE__)
