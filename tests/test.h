/* test.h: the few assertion macros lawt's tests use. Each test program runs its checks, prints
 * every failure with file and line, ends with "N passed, N failed" and exits non-zero on any
 * failure, so CTest (and CI) see it. */
#ifndef LAWT_TEST_H
#define LAWT_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* One tally per test program, shared with the test libraries it links (tests/model_fixtures.c
 * checks too): every file that includes this header defines it weak, and the linker keeps one. */
__attribute__((weak)) int test_passed_count, test_failed_count;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (cond) {                                                                    \
            test_passed_count++;                                                       \
        } else {                                                                       \
            test_failed_count++;                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);  \
        }                                                                              \
    } while (0)

#define CHECK_MSG(cond, ...)                                                           \
    do {                                                                               \
        if (cond) {                                                                    \
            test_passed_count++;                                                       \
        } else {                                                                       \
            test_failed_count++;                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);  \
            fprintf(stderr, __VA_ARGS__);                                              \
            fputc('\n', stderr);                                                       \
        }                                                                              \
    } while (0)

/* |a - b| <= tol * max(1, |b|) */
#define CHECK_CLOSE(a, b, tol)                                                         \
    do {                                                                               \
        double check_a_ = (a), check_b_ = (b);                                         \
        double check_s_ = fabs(check_b_) > 1.0 ? fabs(check_b_) : 1.0;               \
        CHECK_MSG(fabs(check_a_ - check_b_) <= (tol) * check_s_, "%s = %.10g, %s = %.10g", \
                  #a, check_a_, #b, check_b_);                                         \
    } while (0)

static inline int test_report(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, test_passed_count, test_failed_count);
    return test_failed_count == 0 && test_passed_count > 0 ? 0 : 1;
}

#endif
