/* test.h — a tiny assertion helper for the C tests: each CHECK counts, a
 * failure prints where, and TEST_DONE prints "N passed, N failed" and returns
 * the exit status. */
#ifndef LP_TEST_H
#define LP_TEST_H

#include <stdio.h>

static int test_passed, test_failed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            test_passed++;                                                                         \
        } else {                                                                                   \
            test_failed++;                                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define TEST_DONE()                                                                                \
    (printf("%d passed, %d failed\n", test_passed, test_failed), test_failed ? 1 : 0)

#endif
