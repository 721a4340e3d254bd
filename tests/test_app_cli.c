/* Tests of the sample apps' shared command-line helpers (apps/common/cli.c). */
#include <criterion/criterion.h>

#include <getopt.h>

#include "apps/common/cli.h"

Test(app_cli, sizes_take_k_m_g_suffixes)
{
    uint64_t v;
    cr_assert_eq(app_parse_size("4096", 1 << 20, &v), 0);
    cr_assert_eq(v, 4096);
    cr_assert_eq(app_parse_size("3k", 1 << 20, &v), 0);
    cr_assert_eq(v, 3072);
    cr_assert_eq(app_parse_size("2M", 2u << 20, &v), 0);
    cr_assert_eq(v, 2u << 20);
    cr_assert_eq(app_parse_size("1G", 1ull << 40, &v), 0);
    cr_assert_eq(v, 1ull << 30);
    cr_assert_eq(app_parse_size("0K", 1, &v), 0);
    cr_assert_eq(v, 0);
    static const char *const bad[] = {"",    "k",   "-1k", "1T",
                                      "1kb", "1 k", "3M",  "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(app_parse_size(bad[i], 2u << 20, &v), -1, "'%s'", bad[i]);
}

Test(app_cli, ranges_and_counts)
{
    uint64_t v = 7;
    cr_assert_eq(app_parse_range("t", "n", "0", 0, 5, &v), 0);
    cr_assert_eq(v, 0);
    cr_assert_eq(app_parse_range("t", "n", "5", 0, 5, &v), 0);
    cr_assert_eq(v, 5);
    cr_assert_eq(app_parse_range("t", "n", "6", 0, 5, &v), -1);
    cr_assert_eq(app_parse_range("t", "n", "2", 3, 5, &v), -1);
    cr_assert_eq(app_parse_range("t", "n", "+3", 0, 5, &v), -1);
    cr_assert_eq(app_parse_count("t", "n", "0", 5, &v), -1);
    cr_assert_eq(app_parse_count("t", "n", "1", 5, &v), 0);
    cr_assert_eq(v, 1);
}

Test(app_cli, operands_must_match_exactly)
{
    char *argv[] = {"prog", "a", "b", NULL};
    optind = 1;
    cr_assert_eq(app_check_operands("prog", 3, argv, 2, "two"), SN_CONFIG_CONTINUE);
    cr_assert_eq(app_check_operands("prog", 3, argv, 1, "one"), SN_CONFIG_EXIT_USAGE);
    cr_assert_eq(app_check_operands("prog", 3, argv, 3, "three"), SN_CONFIG_EXIT_USAGE);
    optind = 3;
    cr_assert_eq(app_check_operands("prog", 3, argv, 0, NULL), SN_CONFIG_CONTINUE);
    cr_assert_eq(app_check_args("prog", 3, argv, "127.0.0.1"), SN_CONFIG_CONTINUE);
    cr_assert_eq(app_check_args("prog", 3, argv, "::1"), SN_CONFIG_CONTINUE);
    cr_assert_eq(app_check_args("prog", 3, argv, "example.com"), SN_CONFIG_EXIT_USAGE);
}

Test(app_cli, exit_codes)
{
    cr_assert_eq(app_job_exit_code("t", 130), 130, "a batch job stopped by SIGINT did not finish");
    cr_assert_eq(app_job_exit_code("t", -5), 1);
    cr_assert_eq(app_job_exit_code("t", 0), 0);
}
