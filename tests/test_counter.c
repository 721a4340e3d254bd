/* Runs the sample app BUILD/bin/sn-counter (beside this test binary) and checks its output. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "reactor_util.h"
#include "support/server_proc.h"

/* Sums the "core N: K keys, M increments" lines. */
static void sum_cores(const char *out, unsigned *cores, uint64_t *keys, uint64_t *incs)
{
    *cores = 0;
    *keys = *incs = 0;
    for (const char *s = strstr(out, "core "); s; s = strstr(s + 1, "\ncore ")) {
        unsigned id;
        uint64_t k, m;
        if (sscanf(s[0] == '\n' ? s + 1 : s, "core %u: %" SCNu64 " keys, %" SCNu64 " increments",
                   &id, &k, &m) == 3) {
            (*cores)++;
            *keys += k;
            *incs += m;
        }
    }
}

static void check_run(unsigned smp, unsigned keys, unsigned incs)
{
    char args[128], out[8192], want[64];
    snprintf(args, sizeof args, "--smp %u --unpinned --keys %u --increments %u", smp, keys,
             incs);
    cr_assert_eq(su_run_output("counter", args, out, sizeof out), 0, "output:\n%s", out);
    snprintf(want, sizeof want, "total: %u\n", incs);
    cr_assert_not_null(strstr(out, want), "output:\n%s", out);
    unsigned cores;
    uint64_t k, m;
    sum_cores(out, &cores, &k, &m);
    cr_assert_eq(cores, smp, "output:\n%s", out);
    cr_assert_eq(k, keys < incs ? keys : k, "every key owned by exactly one core");
    cr_assert_eq(m, incs);
}

Test(counter, totals_match, .timeout = 120)
{
    check_run(1, 100, SCALE(100000, 10));
    check_run(2, 1000, SCALE(100000, 10));
    check_run(4, 1000, SCALE(200000, 10));
    check_run(8, 50, SCALE(100000, 10));
}

Test(counter, bad_option_exit_2, .timeout = 30)
{
    char out[4096];
    cr_assert_eq(su_run_output("counter", "--keys nope", out, sizeof out), 2);
    cr_assert_not_null(strstr(out, "--keys"));
    cr_assert_eq(su_run_output("counter", "--smp 0", out, sizeof out), 2);
    cr_assert_eq(su_run_output("counter", "--cpuset 4000", out, sizeof out), 2);
    cr_assert_not_null(strstr(out, "--cpuset"), "output:\n%s", out);
    cr_assert_eq(su_run_output("counter", "--help", out, sizeof out), 0);
    cr_assert_not_null(strstr(out, "usage: sn-counter"));
}
