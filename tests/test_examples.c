/*
 * The seed's examples as programs (apps/data_processing, apps/distributed_compute,
 * apps/broadcast): each is run on 1, 2 and 4 unpinned cores from the build folder this test
 * binary lives in (BUILD/tests/test_examples -> BUILD/bin/sn-*), and must print its checked
 * result and exit 0.
 */
#include <criterion/criterion.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "reactor_util.h"
#include "support/server_proc.h"

static void check(const char *app, const char *args, const char *const *want)
{
    static const unsigned smps[] = {1, 2, 4};
    for (size_t i = 0; i < 3; i++) {
        char full[256], out[16384];
        snprintf(full, sizeof full, "--smp %u --unpinned %s", smps[i], args);
        cr_assert_eq(su_run_output(app, full, out, sizeof out), 0, "%s %s:\n%s", app, full, out);
        for (const char *const *w = want; *w; w++)
            cr_assert_not_null(strstr(out, *w), "%s %s: no '%s' in:\n%s", app, full, *w, out);
        char cores[64];
        snprintf(cores, sizeof cores, "on %u cores", smps[i]);
        if (strcmp(app, "broadcast") != 0)
            cr_assert_not_null(strstr(out, cores), "%s", out);
    }
}

Test(examples, data_processing, .timeout = 120)
{
    static const char *const want[] = {"core 0: ", " ok\n", NULL};
    check("data_processing", SN_TEST_SLOW ? "--records 20000 --users 100" : "", want);
    char out[4096];
    cr_assert_eq(su_run_output("data_processing", "--records 0", out, sizeof out), 2);
}

Test(examples, distributed_compute, .timeout = 120)
{
    static const char *const want[] = {"parse: ", "transform: ", "aggregate: ", " ok\n", NULL};
    check("distributed_compute", SN_TEST_SLOW ? "--lines 20000" : "", want);
    char out[4096];
    cr_assert_eq(su_run_output("distributed_compute", "--sensors x", out, sizeof out), 2);
}

Test(examples, broadcast, .timeout = 120)
{
    static const char *const want[] = {"round 1: epoch 1 ", " 0 bad acknowledgements ok\n", NULL};
    check("broadcast", SN_TEST_SLOW ? "--rounds 100" : "", want);
    char out[4096];
    cr_assert_eq(su_run_output("broadcast", "--rounds 5 --smp 3 --unpinned", out, sizeof out), 0);
    cr_assert_not_null(strstr(out, "result: 5 rounds x 3 cores, 3 cores up to date"), "%s", out);
    cr_assert_eq(su_run_output("broadcast", "--rounds -1", out, sizeof out), 2);
}

/* Every sample app checks its command-line tail the same way (apps/common/cli.c). */
Test(examples, every_app_refuses_stray_arguments, .timeout = 60)
{
    static const char *const apps[] = {
        "broadcast", "counter", "data_processing", "distributed_compute", "echo",
        "httpd",     "kv",      "pipeline"};
    for (size_t i = 0; i < sizeof apps / sizeof apps[0]; i++) {
        char out[4096], want[64];
        const char *args = strcmp(apps[i], "pipeline") ? "stray" : "in.txt stray";
        cr_assert_eq(su_run_output(apps[i], args, out, sizeof out), 2, "sn-%s %s: %s", apps[i],
                     args, out);
        snprintf(want, sizeof want, "sn-%s: unknown argument 'stray'\n", apps[i]);
        cr_assert_not_null(strstr(out, want), "sn-%s %s said: %s", apps[i], args, out);
    }
    char out[4096];
    cr_assert_eq(su_run_output("pipeline", "", out, sizeof out), 2);
    cr_assert_not_null(strstr(out, "sn-pipeline: expected one input FILE"), "%s", out);
    cr_assert_eq(su_run_output("pipeline", "--generate 1K x", out, sizeof out), 2);
    cr_assert_not_null(strstr(out, "sn-pipeline: unknown argument 'x'"), "%s", out);
}
