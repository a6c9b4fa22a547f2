/* tests/test.h - the project's tiny test harness.

   A test program defines cases with TEST(name), runs them with RUN(name) from main, and ends with
   `return test_summary();`. Every case prints one line, "ok <name>" or "FAIL <name>", followed by
   the failed checks (file:line, the expression, both values). The last line is
   "<program>: N passed, N failed", which tests/run.sh adds up into the suite's closing line. */
#ifndef TEST_H
#define TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>

static int test_passed_count, test_failed_count, test_case_failed;
static const char *test_case_name;

#define TEST(name) static void name(void)

static void test_fail_line(const char *file, int line, const char *what)
{
    if (!test_case_failed)
        printf("FAIL %s\n", test_case_name);
    test_case_failed = 1;
    printf("    %s:%d: %s\n", file, line, what);
    fflush(stdout);
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            test_fail_line(__FILE__, __LINE__, "CHECK(" #cond ")");                                \
    } while (0)

#define CHECK_INT(actual, expected)                                                                \
    do {                                                                                           \
        long long test_a_ = (long long)(actual), test_e_ = (long long)(expected);                  \
        if (test_a_ != test_e_) {                                                                  \
            char test_m_[512];                                                                     \
            snprintf(test_m_, sizeof test_m_, "%.200s == %.200s: got %lld, expected %lld", #actual,        \
                     #expected, test_a_, test_e_);                                                 \
            test_fail_line(__FILE__, __LINE__, test_m_);                                           \
        }                                                                                          \
    } while (0)

#define CHECK_STR(actual, expected)                                                                \
    do {                                                                                           \
        const char *test_a_ = (actual), *test_e_ = (expected);                                     \
        if (test_a_ == NULL || test_e_ == NULL ? test_a_ != test_e_ : strcmp(test_a_, test_e_)) {  \
            char test_m_[1024];                                                                    \
            snprintf(test_m_, sizeof test_m_, "%.100s: got \"%.440s\", expected \"%.440s\"", #actual,          \
                     test_a_ ? test_a_ : "(null)", test_e_ ? test_e_ : "(null)");                  \
            test_fail_line(__FILE__, __LINE__, test_m_);                                           \
        }                                                                                          \
    } while (0)

/* The text contains the fragment. */
#define CHECK_CONTAINS(text, fragment)                                                             \
    do {                                                                                           \
        const char *test_t_ = (text), *test_f_ = (fragment);                                       \
        if (test_t_ == NULL || strstr(test_t_, test_f_) == NULL) {                                 \
            char test_m_[1024];                                                                    \
            snprintf(test_m_, sizeof test_m_, "%.100s: \"%.600s\" does not contain \"%.250s\"", #text,        \
                     test_t_ ? test_t_ : "(null)", test_f_);                                       \
            test_fail_line(__FILE__, __LINE__, test_m_);                                           \
        }                                                                                          \
    } while (0)

#define CHECK_NOT_CONTAINS(text, fragment)                                                         \
    do {                                                                                           \
        const char *test_t_ = (text), *test_f_ = (fragment);                                       \
        if (test_t_ != NULL && strstr(test_t_, test_f_) != NULL) {                                 \
            char test_m_[1024];                                                                    \
            snprintf(test_m_, sizeof test_m_, "%.100s: \"%.600s\" must not contain \"%.250s\"", #text,         \
                     test_t_, test_f_);                                                            \
            test_fail_line(__FILE__, __LINE__, test_m_);                                           \
        }                                                                                          \
    } while (0)

static void test_run(const char *name, void (*fn)(void))
{
    test_case_name = name;
    test_case_failed = 0;
    fn();
    if (test_case_failed)
        test_failed_count++;
    else {
        test_passed_count++;
        printf("ok %s\n", name);
    }
    fflush(stdout);
}

#define RUN(name) test_run(#name, name)

static int test_summary_named(const char *program)
{
    printf("%s: %d passed, %d failed\n", program, test_passed_count, test_failed_count);
    return test_failed_count ? 1 : 0;
}

#define test_summary() test_summary_named(__FILE__)

#endif
