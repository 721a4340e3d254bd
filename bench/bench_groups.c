/*
 * bench_groups: scheduling groups (include/sn/sched.h) and what groups and queue-delay
 * sampling cost the cross-core call path.
 *
 *   shares    one pinned core, two CPU-bound groups with shares 100 and 300 (4 tasks each,
 *             each task doing a fixed ~20 us of work, calibrated on thread CPU time, then
 *             queueing itself again): the share of the work each group got, counted by the
 *             tasks themselves, against 25% / 75%;
 *   latency   one pinned core, a CPU-bound group (shares 100, 4 tasks of 50 us) and a latency
 *             group (shares 1000) woken by a 1 ms periodic timer: the wait from runnable
 *             (the timer queues a task) to running, p50/p99/max; the peer is the same
 *             latency task queued in the CPU-bound group itself (no groups to tell them apart);
 *   calls     bench_submit -q (2 pinned cores, calls/s with 1024 in flight) as built from the
 *             tree before groups (bench/groups_base.sh builds it) against this tree's
 *             bench_submit, and this tree's with sampling on against -S (off), interleaved
 *             in rounds (the order rotating); each ratio is the median of the per-round
 *             ratios, printed with their quartiles (up to 61 rounds: one bench_submit's calls
 *             phase is ~30 ms, and single rounds of a pair differ by several percent on this
 *             VM, so a 2% effect needs many rounds).
 * The machine is shared and noisy: only the ratios within one run mean anything.
 *
 * Usage: bench_groups [-r rounds] [-t ms_per_phase] [-c calls] [-B base_bench_submit]
 * Without -B it runs bench/groups_base.sh (from the current directory, the repository's root
 * under `make bench`); if that fails the calls figures are reported as 0.
 */
#include <sn.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WORKERS     4
#define MAX_SAMPLES 20000
#define MAX_ROUNDS  61

static unsigned phase_ms = 2000;
static int rounds = 5;
static long calls = 1000000;

/* ---- CPU-bound workers ----------------------------------------------------------------- */

struct worker {
    struct sn_task task;
    uint64_t *count;
    uint64_t spin_ns;
};

static volatile bool stopping;
static volatile uint64_t sink;
static double iters_per_us; /* calibrated: a fixed amount of work, not a span of time */

/* A fixed amount of work (an LCG), so the share of work counts CPU time, not wall time. */
static void burn(uint64_t iters)
{
    uint64_t x = sink;
    for (uint64_t i = 0; i < iters; i++)
        x = x * 6364136223846793005ull + 1442695040888963407ull;
    sink = x;
}

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void calibrate(void)
{
    uint64_t iters = 1u << 20, t0 = thread_cpu_ns();
    burn(iters);
    iters_per_us = (double)iters * 1000.0 / (double)(thread_cpu_ns() - t0);
}

static void work(struct sn_task *t)
{
    struct worker *w = SN_CONTAINER_OF(t, struct worker, task);
    burn((uint64_t)(iters_per_us * (double)w->spin_ns / 1000.0));
    (*w->count)++;
    if (!stopping)
        sn_schedule(t);
}

static struct worker workers[2][WORKERS];
static uint64_t counts[2];
static struct sn_timer stop_timer;
static struct sn_promise *phase_done;

static void stop_phase(void *arg)
{
    (void)arg;
    stopping = true;
    sn_promise_set(phase_done, 0);
}

static void start_workers(int which, struct sn_sched_group *g, uint64_t spin_ns)
{
    for (int i = 0; i < WORKERS; i++) {
        workers[which][i] = (struct worker){.count = &counts[which], .spin_ns = spin_ns};
        sn_task_init(&workers[which][i].task, work);
        sn_schedule_in(g, &workers[which][i].task);
    }
}

static struct sn_future *phase_end_future(void)
{
    struct sn_future *f;
    phase_done = sn_promise_new(&f);
    sn_timer_init(&stop_timer, stop_phase, NULL);
    sn_timer_arm(&stop_timer, (uint64_t)phase_ms * 1000000);
    return f;
}

/* ---- shares ----------------------------------------------------------------------------- */

static struct sn_sched_group *g_low, *g_high;

static struct sn_future *shares_main(void *arg)
{
    (void)arg;
    stopping = false;
    counts[0] = counts[1] = 0;
    start_workers(0, g_low, 20000);
    start_workers(1, g_high, 20000);
    return phase_end_future();
}

/* ---- latency ---------------------------------------------------------------------------- */

static uint64_t samples[MAX_SAMPLES];
static unsigned nsamples;
static struct sn_timer tick;
static uint64_t tick_at;
static struct sn_sched_group *g_cpu, *g_lat, *g_tick_target;

static void measured(void *arg)
{
    (void)arg;
    if (nsamples < MAX_SAMPLES)
        samples[nsamples++] = sn_now_ns() - tick_at;
}

/* The timer makes the latency task runnable; its run records how long that took. */
static void on_tick(void *arg)
{
    (void)arg;
    if (stopping)
        return;
    tick_at = sn_now_ns();
    sn_later_in(g_tick_target, measured, NULL);
}

static struct sn_future *latency_main(void *arg)
{
    (void)arg;
    stopping = false;
    nsamples = 0;
    counts[0] = 0;
    start_workers(0, g_cpu, 50000);
    sn_timer_init(&tick, on_tick, NULL);
    sn_timer_arm_periodic(&tick, 1000000);
    struct sn_future *f = phase_end_future();
    return f;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_us(double p)
{
    if (!nsamples)
        return 0;
    qsort(samples, nsamples, sizeof samples[0], cmp_u64);
    size_t i = (size_t)(p * (double)(nsamples - 1));
    return (double)samples[i] / 1000.0;
}

static int run_one_core(sn_main_fn fn)
{
    struct sn_config cfg;
    sn_config_init(&cfg);
    cfg.smp = 1;
    cfg.stall_ms = 0;
    return sn_run(&cfg, fn, NULL);
}

/* ---- calls: bench_submit, with and without groups --------------------------------------- */

/* Runs `cmd` and returns the calls_per_s of its summary line (0 on failure). */
static double calls_per_s(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return 0;
    char line[1024];
    double v = 0;
    while (fgets(line, sizeof line, p)) {
        const char *k = strstr(line, "calls_per_s=");
        if (!strncmp(line, "summary:", 8) && k)
            v = atof(k + strlen("calls_per_s="));
    }
    pclose(p);
    return v;
}

static double median(double *v, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n ? (n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2) : 0;
}

static void calls_phase(const char *self, const char *base, double *vs_base, double *sampling)
{
    char cur[4200], dir[4096];
    snprintf(dir, sizeof dir, "%s", self);
    char *slash = strrchr(dir, '/');
    snprintf(cur, sizeof cur, "%s/bench_submit", slash ? (*slash = 0, dir) : ".");
    double r_base[MAX_ROUNDS], r_samp[MAX_ROUNDS];
    char cmd[8192];
    const char *args = "-q -r 1 -n 1000";
    int n = 0;
    for (int r = 0; r < rounds; r++) {
        /* The order rotates from round to round, so no variant always runs first. */
        double v[3];
        for (int i = 0; i < 3; i++) {
            int which = (r + i) % 3;
            snprintf(cmd, sizeof cmd, "%s %s -c %ld%s", which == 0 ? base : cur, args, calls,
                     which == 2 ? " -S" : "");
            v[which] = calls_per_s(cmd);
        }
        printf("calls round %d: before groups %.0f/s, groups+sampling %.0f/s, groups without "
               "sampling %.0f/s\n",
               r + 1, v[0], v[1], v[2]);
        fflush(stdout);
        if (v[0] > 0 && v[1] > 0 && v[2] > 0) {
            r_base[n] = v[1] / v[0];
            r_samp[n] = v[1] / v[2];
            n++;
        }
    }
    *vs_base = median(r_base, n);
    *sampling = median(r_samp, n);
    /* median() sorted them: the middle half shows how far one round's ratio wanders, so a
     * reader can tell a 2% effect from the noise. */
    if (n >= 4)
        printf("per-round ratios, quartiles: groups/before %.3f %.3f %.3f, sampling on/off "
               "%.3f %.3f %.3f (%d rounds)\n",
               r_base[n / 4], *vs_base, r_base[(3 * n) / 4], r_samp[n / 4], *sampling,
               r_samp[(3 * n) / 4], n);
}

static char *base_binary(void)
{
    FILE *p = popen("sh bench/groups_base.sh", "r");
    if (!p)
        return NULL;
    static char path[4096];
    char *ok = fgets(path, sizeof path, p);
    int rc = pclose(p);
    if (!ok || rc != 0)
        return NULL;
    path[strcspn(path, "\n")] = 0;
    return access(path, X_OK) == 0 ? path : NULL;
}

int main(int argc, char **argv)
{
    const char *base = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "r:t:c:B:")) != -1) {
        switch (opt) {
        case 'r': rounds = atoi(optarg); break;
        case 't': phase_ms = (unsigned)atoi(optarg); break;
        case 'c': calls = atol(optarg); break;
        case 'B': base = optarg; break;
        default:
            fprintf(stderr, "usage: bench_groups [-r rounds] [-t ms] [-c calls] [-B base]\n");
            return 2;
        }
    }
    if (rounds < 1 || rounds > MAX_ROUNDS || phase_ms < 100 || calls < 1024) {
        fprintf(stderr, "bench_groups: bad parameters\n");
        return 2;
    }
    printf("bench_groups: %u ms per phase, %d rounds of bench_submit -c %ld\n", phase_ms, rounds,
           calls);

    calibrate();
    /* Shares. */
    struct sn_sched_group_config lo = {.name = "low", .shares = 100};
    struct sn_sched_group_config hi = {.name = "high", .shares = 300};
    if (sn_sched_group_create(&lo, &g_low) || sn_sched_group_create(&hi, &g_high) ||
        run_one_core(shares_main) != 0)
        return 1;
    double total = (double)(counts[0] + counts[1]);
    double low_pct = 100.0 * (double)counts[0] / total,
           high_pct = 100.0 * (double)counts[1] / total;
    struct sn_sched_group_metrics ml, mh;
    sn_metrics_group(0, g_low, &ml);
    sn_metrics_group(0, g_high, &mh);
    double err = low_pct - 25 > 0 ? low_pct - 25 : 25 - low_pct;
    double err_h = high_pct - 75 > 0 ? high_pct - 75 : 75 - high_pct;
    err = err > err_h ? err : err_h;
    printf("shares 100:300: work %.1f%% / %.1f%% (%lu / %lu tasks of 20 us), run time %.1f%% / "
           "%.1f%%, longest wait %.0f / %.0f us\n",
           low_pct, high_pct, (unsigned long)counts[0], (unsigned long)counts[1],
           100.0 * ml.run_ns / (double)(ml.run_ns + mh.run_ns),
           100.0 * mh.run_ns / (double)(ml.run_ns + mh.run_ns), ml.wait_max_ns / 1e3,
           mh.wait_max_ns / 1e3);

    /* Latency: in a group of its own, then queued behind the CPU-bound tasks. */
    struct sn_sched_group_config cc = {.name = "cpu", .shares = 100};
    struct sn_sched_group_config lc = {.name = "latency", .shares = 1000};
    if (sn_sched_group_create(&cc, &g_cpu) || sn_sched_group_create(&lc, &g_lat))
        return 1;
    g_tick_target = g_lat;
    if (run_one_core(latency_main) != 0)
        return 1;
    double lat_p50 = pct_us(0.5), lat_p99 = pct_us(0.99), lat_max = pct_us(1.0);
    unsigned lat_n = nsamples;
    g_tick_target = g_cpu;
    if (run_one_core(latency_main) != 0)
        return 1;
    double same_p50 = pct_us(0.5), same_p99 = pct_us(0.99), same_max = pct_us(1.0);
    printf("latency group (shares 1000) beside a CPU-bound group: wait p50 %.1f us, p99 %.1f us, "
           "max %.1f us (%u samples)\n",
           lat_p50, lat_p99, lat_max, lat_n);
    printf("peer, the same task in the CPU-bound group: wait p50 %.1f us, p99 %.1f us, max %.1f "
           "us (%u samples)\n",
           same_p50, same_p99, same_max, nsamples);

    /* Calls. */
    if (!base)
        base = base_binary();
    double vs_base = 0, sampling = 0;
    if (base)
        calls_phase(argv[0], base, &vs_base, &sampling);
    else
        fprintf(stderr, "bench_groups: no bench_submit from before groups; calls skipped\n");
    printf("calls/s with groups over before groups: %.3f; with sampling over without: %.3f "
           "(medians of %d rounds)\n",
           vs_base, sampling, rounds);
    printf("summary: share_error_pts=%.2f latency_p99_us=%.1f latency_p99_us_same_group=%.1f "
           "calls_ratio_vs_ungrouped=%.3f sampling_calls_ratio=%.3f\n",
           err, lat_p99, same_p99, vs_base, sampling);
    return 0;
}
