/* Forced into every source of a unit-test build (-include): the system
 * headers first, then cmocka.h, whose UNIT_TESTING macros send malloc, calloc,
 * realloc and free of the code under test to cmocka's checking allocator, so
 * a leak or a double free fails the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
