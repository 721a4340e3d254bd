/*
 * Connection balance (issue 17): 8 unpinned cores, loopback, port 0, both accept modes, a
 * churn of short connections (connect, one request, close) and a set of long ones. The
 * busiest core must hold at most 1.1x the mean of the connections accepted. Before libsn
 * balanced them, SO_REUSEPORT left it to the kernel's hash of the addresses (the busiest
 * core took ~1.5x the mean of 64 long connections) and the one-core mode, counting open
 * connections only, sent the acceptor core 0 about 1.3x the mean of short ones. The
 * workload is bench/conn_balance.h, which bench/bench_conn_balance.c runs at a larger size.
 */
#include <criterion/criterion.h>
#include <stdio.h>

#include "bench/conn_balance.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SHORT_CONNS 400u
#else
#define SHORT_CONNS 800u
#endif
#define LONG_CONNS 64u
#define CORES      8u

static void check_case(enum sn_accept_mode mode, enum cb_kind kind, unsigned conns)
{
    struct cb_case c = {.mode = mode, .kind = kind, .ncores = CORES, .conns = conns, .clients = 4};
    struct cb_result r;
    const char *what = kind == CB_SHORT ? "short" : "long";
    cb_run(&c, &r);
    cr_assert_eq(r.rc, 0, "%s %s: run failed (rc %d, %u connections without echo)",
                 cb_mode_name(mode), what, r.rc, r.failed);
    cr_assert_eq(r.total, conns, "%s %s: every connection accepted once", cb_mode_name(mode), what);
    char counts[128] = "";
    for (unsigned k = 0; k < CORES; k++)
        snprintf(counts + strlen(counts), sizeof counts - strlen(counts), " %llu",
                 (unsigned long long)r.accepted[k]);
    cr_assert_leq(r.max_over_mean, 1.1, "%s %s: busiest core %.3fx the mean (per core:%s)",
                  cb_mode_name(mode), what, r.max_over_mean, counts);
    if (mode == SN_ACCEPT_ONE_CORE)
        cr_assert_eq(r.moved, r.total - r.accepted[0], "one-core: core 0 sends on all others");
    else
        cr_assert_lt(r.moved, r.total, "SO_REUSEPORT: most stay where the kernel put them");
}

Test(conn_balance, reuseport_short, .timeout = 120)
{
    check_case(SN_ACCEPT_REUSEPORT, CB_SHORT, SHORT_CONNS);
}

Test(conn_balance, reuseport_long, .timeout = 120)
{
    check_case(SN_ACCEPT_REUSEPORT, CB_LONG, LONG_CONNS);
}

Test(conn_balance, one_core_short, .timeout = 120)
{
    check_case(SN_ACCEPT_ONE_CORE, CB_SHORT, SHORT_CONNS);
}

Test(conn_balance, one_core_long, .timeout = 120)
{
    check_case(SN_ACCEPT_ONE_CORE, CB_LONG, LONG_CONNS);
}
