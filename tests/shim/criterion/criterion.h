/*
 * A small source-compatible stand-in for Criterion, used only by `make tsan`.
 *
 * Criterion aborts under ThreadSanitizer (Snaipe/Criterion#274), so the TSan build compiles
 * the same tests/test_*.c against this header instead. It supports the subset the project
 * uses: Test(suite, name, .init/.fini/.timeout/.disabled/.description), TestSuite(), and the
 * cr_assert_* / cr_expect_* macros below. Differences from Criterion that tests must respect:
 * every test runs in one process, one after another, so a test must free what it allocates
 * and leave no global state behind; tests that expect a signal or exit code are skipped; a
 * fatal assertion or a skip on any thread but the test's own aborts the whole run with a
 * message naming it (it cannot longjmp across threads), where Criterion would crash the test.
 */
#ifndef SN_TEST_SHIM_CRITERION_H
#define SN_TEST_SHIM_CRITERION_H

/* cr_assert(x) with no message passes "" as the format: that is intended here. */
#pragma GCC diagnostic ignored "-Wformat-zero-length"

/* Criterion pulls these in too; tests rely on them. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

/* The options Test() and TestSuite() take (.init = ..., .timeout = ...), in both structs so
 * the designated initialisers name them directly. */
#define SN_SHIM_OPTIONS                                                                            \
    void (*init)(void);                                                                            \
    void (*fini)(void);                                                                            \
    const char *description;                                                                       \
    double timeout;                                                                                \
    int disabled;                                                                                  \
    int signal;                                                                                    \
    int exit_code;

struct sn_shim_test {
    const char *suite;
    const char *name;
    void (*fn)(void);
    SN_SHIM_OPTIONS
    struct sn_shim_test *next;
};

struct sn_shim_suite {
    const char *name;
    SN_SHIM_OPTIONS
    struct sn_shim_suite *next;
};

void sn_shim_register(struct sn_shim_test *t);
void sn_shim_register_suite(struct sn_shim_suite *s);
void sn_shim_fail(int fatal, const char *file, int line, const char *expr, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void sn_shim_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sn_shim_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define Test(suite_, name_, ...)                                                         \
    static void suite_##_##name_##_impl(void);                                             \
    static struct sn_shim_test suite_##_##name_##_desc = {                                 \
        .suite = #suite_, .name = #name_, .fn = suite_##_##name_##_impl, __VA_ARGS__};     \
    __attribute__((constructor)) static void suite_##_##name_##_reg(void)                  \
    {                                                                                      \
        sn_shim_register(&suite_##_##name_##_desc);                                        \
    }                                                                                      \
    static void suite_##_##name_##_impl(void)

#define TestSuite(suite_, ...)                                                             \
    static struct sn_shim_suite suite_##_suite_desc = {.name = #suite_, __VA_ARGS__};      \
    __attribute__((constructor)) static void suite_##_suite_reg(void)                      \
    {                                                                                      \
        sn_shim_register_suite(&suite_##_suite_desc);                                      \
    }

#define SN_SHIM_CHECK(fatal, cond, expr, ...)                                              \
    do {                                                                                   \
        if (!(cond))                                                                       \
            sn_shim_fail(fatal, __FILE__, __LINE__, expr, "" __VA_ARGS__);                 \
    } while (0)

#define cr_assert(c, ...) SN_SHIM_CHECK(1, (c), #c, __VA_ARGS__)
#define cr_expect(c, ...) SN_SHIM_CHECK(0, (c), #c, __VA_ARGS__)
#define cr_assert_not(c, ...) SN_SHIM_CHECK(1, !(c), "!(" #c ")", __VA_ARGS__)
#define cr_expect_not(c, ...) SN_SHIM_CHECK(0, !(c), "!(" #c ")", __VA_ARGS__)
#define cr_fail(...) sn_shim_fail(0, __FILE__, __LINE__, "cr_fail", "" __VA_ARGS__)
#define cr_assert_fail(...) sn_shim_fail(1, __FILE__, __LINE__, "cr_assert_fail", "" __VA_ARGS__)
#define cr_skip_test(...) sn_shim_skip("" __VA_ARGS__)
#define cr_log_info(...) sn_shim_log(__VA_ARGS__)
#define cr_log_warn(...) sn_shim_log(__VA_ARGS__)
#define cr_log_error(...) sn_shim_log(__VA_ARGS__)

#define SN_SHIM_CMP(fatal, a, op, b, ...)                                                  \
    SN_SHIM_CHECK(fatal, (a)op(b), #a " " #op " " #b, __VA_ARGS__)

#define cr_assert_eq(a, b, ...) SN_SHIM_CMP(1, a, ==, b, __VA_ARGS__)
#define cr_assert_neq(a, b, ...) SN_SHIM_CMP(1, a, !=, b, __VA_ARGS__)
#define cr_assert_lt(a, b, ...) SN_SHIM_CMP(1, a, <, b, __VA_ARGS__)
#define cr_assert_leq(a, b, ...) SN_SHIM_CMP(1, a, <=, b, __VA_ARGS__)
#define cr_assert_gt(a, b, ...) SN_SHIM_CMP(1, a, >, b, __VA_ARGS__)
#define cr_assert_geq(a, b, ...) SN_SHIM_CMP(1, a, >=, b, __VA_ARGS__)
#define cr_expect_eq(a, b, ...) SN_SHIM_CMP(0, a, ==, b, __VA_ARGS__)
#define cr_expect_neq(a, b, ...) SN_SHIM_CMP(0, a, !=, b, __VA_ARGS__)
#define cr_expect_lt(a, b, ...) SN_SHIM_CMP(0, a, <, b, __VA_ARGS__)
#define cr_expect_leq(a, b, ...) SN_SHIM_CMP(0, a, <=, b, __VA_ARGS__)
#define cr_expect_gt(a, b, ...) SN_SHIM_CMP(0, a, >, b, __VA_ARGS__)
#define cr_expect_geq(a, b, ...) SN_SHIM_CMP(0, a, >=, b, __VA_ARGS__)
#define cr_assert_null(p, ...) SN_SHIM_CHECK(1, (p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_assert_not_null(p, ...) SN_SHIM_CHECK(1, (p) != NULL, #p " != NULL", __VA_ARGS__)
#define cr_expect_null(p, ...) SN_SHIM_CHECK(0, (p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_expect_not_null(p, ...) SN_SHIM_CHECK(0, (p) != NULL, #p " != NULL", __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...) SN_SHIM_CHECK(1, strcmp((a), (b)) == 0, #a " eq " #b, __VA_ARGS__)
#define cr_assert_str_neq(a, b, ...) SN_SHIM_CHECK(1, strcmp((a), (b)) != 0, #a " neq " #b, __VA_ARGS__)
#define cr_expect_str_eq(a, b, ...) SN_SHIM_CHECK(0, strcmp((a), (b)) == 0, #a " eq " #b, __VA_ARGS__)
#define cr_assert_str_empty(a, ...) SN_SHIM_CHECK(1, (a)[0] == '\0', #a " empty", __VA_ARGS__)
#define cr_assert_arr_eq(a, b, n, ...) SN_SHIM_CHECK(1, memcmp((a), (b), (n)) == 0, #a " arr_eq " #b, __VA_ARGS__)
#define cr_expect_arr_eq(a, b, n, ...) SN_SHIM_CHECK(0, memcmp((a), (b), (n)) == 0, #a " arr_eq " #b, __VA_ARGS__)
#define cr_assert_float_eq(a, b, eps, ...)                                                 \
    SN_SHIM_CHECK(1, ((a) - (b)) <= (eps) && ((b) - (a)) <= (eps), #a " ~= " #b, __VA_ARGS__)

#endif
