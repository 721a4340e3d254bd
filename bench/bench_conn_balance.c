/*
 * bench_conn_balance: how evenly connections spread over 8 unpinned cores on this 2-CPU
 * machine, in both accept modes (SN_ACCEPT_REUSEPORT: one SO_REUSEPORT socket per core;
 * SN_ACCEPT_ONE_CORE: core 0 accepts and hands each connection to the least-loaded core),
 * with many short connections (connect, one request, close; 4 client threads) and with long
 * ones (opened by 4 client threads and held until all are open). The workload is
 * bench/conn_balance.h, which tests/test_conn_balance.c runs at a smaller size.
 *
 * Figure: connections accepted per core (sn_listener_stats), the busiest core over the mean;
 * the goal (issue 17) is at most 1.1 in every case. Peer: the same figure for connections
 * dealt to the cores uniformly at random (the spread of a hash, what SO_REUSEPORT gives
 * without help), the median of 1001 simulated deals of the same counts. Every case runs once
 * per round, interleaved; the table gives the median and the worst round.
 *
 * Usage: bench_conn_balance [-r rounds] [-s short_conns] [-l long_conns] [-n cores]
 * Ends with: summary: conn_balance_max_over_mean=<worst case's median> ...
 */
#include "bench_util.h"
#include "conn_balance.h"

#include <getopt.h>
#include <stdio.h>

#define MAX_ROUNDS 15
#define NCASES     4

struct row {
    struct cb_case c;
    double ratio[MAX_ROUNDS];
    double seconds[MAX_ROUNDS];
    double moved[MAX_ROUNDS];    /* fraction of the connections sent on by the accepting core */
    uint64_t last[CB_MAX_CORES]; /* per-core counts of the last round */
    double peer;
};

static double worst(const double *v, int n)
{
    double w = 0;
    for (int i = 0; i < n; i++)
        w = v[i] > w ? v[i] : w;
    return w;
}

/* Busiest over mean when `conns` connections go to `cores` cores uniformly at random. */
static double random_deal(unsigned conns, unsigned cores)
{
    enum { TRIALS = 1001 };
    static double r[TRIALS];
    uint64_t s = 12345;
    for (int t = 0; t < TRIALS; t++) {
        unsigned count[CB_MAX_CORES] = {0}, max = 0;
        for (unsigned i = 0; i < conns; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            unsigned k = (unsigned)(((s >> 32) * cores) >> 32);
            if (++count[k] > max)
                max = count[k];
        }
        r[t] = (double)max * cores / conns;
    }
    return bu_median(r, TRIALS);
}

int main(int argc, char **argv)
{
    int rounds = 5, opt;
    unsigned short_conns = 4000, long_conns = 256, cores = 8;
    while ((opt = getopt(argc, argv, "r:s:l:n:")) != -1) {
        if (opt == 'r')
            rounds = atoi(optarg);
        else if (opt == 's')
            short_conns = (unsigned)atoi(optarg);
        else if (opt == 'l')
            long_conns = (unsigned)atoi(optarg);
        else if (opt == 'n')
            cores = (unsigned)atoi(optarg);
        else {
            fprintf(stderr, "usage: %s [-r rounds] [-s short_conns] [-l long_conns] [-n cores]\n",
                    argv[0]);
            return 2;
        }
    }
    if (rounds < 1 || rounds > MAX_ROUNDS || cores < 2 || cores > CB_MAX_CORES || !short_conns ||
        !long_conns) {
        fprintf(stderr, "rounds 1..%d, cores 2..%d, connection counts above 0\n", MAX_ROUNDS,
                CB_MAX_CORES);
        return 2;
    }
    struct row rows[NCASES];
    for (int i = 0; i < NCASES; i++) {
        enum cb_kind kind = i < 2 ? CB_SHORT : CB_LONG;
        rows[i].c = (struct cb_case){.mode = i % 2 ? SN_ACCEPT_ONE_CORE : SN_ACCEPT_REUSEPORT,
                                     .kind = kind,
                                     .ncores = cores,
                                     .conns = kind == CB_SHORT ? short_conns : long_conns,
                                     .clients = 4};
        rows[i].peer = random_deal(rows[i].c.conns, cores);
    }
    printf("bench_conn_balance: %u unpinned cores, %d rounds, short %u conns, long %u conns, 4 "
           "client threads\n",
           cores, rounds, short_conns, long_conns);
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < NCASES; k++) {
            struct row *row = &rows[(k + r) % NCASES]; /* rotate the order per round */
            struct cb_result res;
            cb_run(&row->c, &res);
            if (res.rc != 0 || res.total != row->c.conns) {
                fprintf(stderr, "%s %s: run failed (rc %d, %u failed, %llu accepted of %u)\n",
                        cb_mode_name(row->c.mode), row->c.kind == CB_SHORT ? "short" : "long",
                        res.rc, res.failed, (unsigned long long)res.total, row->c.conns);
                return 1;
            }
            row->ratio[r] = res.max_over_mean;
            row->seconds[r] = res.seconds;
            row->moved[r] = (double)res.moved / (double)res.total;
            memcpy(row->last, res.accepted, sizeof row->last);
        }
    }

    printf("%-10s %-6s %6s %9s %9s %9s %7s %7s  %s\n", "mode", "conns", "count", "max/mean",
           "worst", "random", "moved", "secs", "per core (last round)");
    double worst_case = 0;
    for (int i = 0; i < NCASES; i++) {
        const struct row *row = &rows[i];
        double m = bu_median(row->ratio, rounds);
        worst_case = m > worst_case ? m : worst_case;
        printf("%-10s %-6s %6u %9.3f %9.3f %9.3f %6.1f%% %7.2f  ", cb_mode_name(row->c.mode),
               row->c.kind == CB_SHORT ? "short" : "long", row->c.conns, m,
               worst(row->ratio, rounds), row->peer, 100 * bu_median(row->moved, rounds),
               bu_median(row->seconds, rounds));
        for (unsigned k = 0; k < cores; k++)
            printf("%s%llu", k ? " " : "", (unsigned long long)row->last[k]);
        printf("\n");
    }
    printf("(max/mean: busiest core's accepted connections over the mean, median over rounds; "
           "random: the same for a uniform random deal; moved: connections the accepting core "
           "sent to another, median)\n");
    printf("target: busiest core at most 1.1x the mean in every case: %s (%.3f)\n",
           worst_case <= 1.1 ? "met" : "MISSED", worst_case);
    printf("summary: conn_balance_max_over_mean=%.3f reuseport_short=%.3f one_core_short=%.3f "
           "reuseport_long=%.3f one_core_long=%.3f random_short=%.3f random_long=%.3f "
           "reuseport_moved_short=%.3f reuseport_moved_long=%.3f cores=%u rounds=%d\n",
           worst_case, bu_median(rows[0].ratio, rounds), bu_median(rows[1].ratio, rounds),
           bu_median(rows[2].ratio, rounds), bu_median(rows[3].ratio, rounds), rows[0].peer,
           rows[2].peer, bu_median(rows[0].moved, rounds), bu_median(rows[2].moved, rounds), cores,
           rounds);
    return 0;
}
