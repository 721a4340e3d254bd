/*
 * bench_pipeline: scaling report of the word-count pipeline (apps/pipeline).
 *
 * Generates one Zipf text (default 200 MiB, seed 1, in /tmp) and, in each round, runs
 * BUILD/bin/sn-pipeline --report on it in these modes, in an order that rotates per round:
 *
 *   ref    --reference: the single-threaded reference (the peer), pinned to CPU 0
 *   p1     --smp 1: one reactor, pinned
 *   p2     --smp 2: two reactors, pinned (pieces of 2 MiB handed out by core 0: the default)
 *   p2s    --smp 2 --static: two reactors, pinned, each with one half of the file
 *   p4     --smp 4 --unpinned: four reactors on two CPUs (oversubscribed)
 *   p2nc   --smp 2 --no-combine: two reactors shipping every occurrence (no combiner)
 *   ceil   two references at once, pinned to CPU 0 and CPU 1: what two CPUs of this VM give
 *          for two unrelated copies of the work (a rough scaling ceiling of the machine at
 *          that moment; each copy reads the whole file into its own memory, so the pair also
 *          competes for memory bandwidth, and the pipeline can beat it)
 *   p1x2   two `--smp 1` reactors at once, on CPU 0 and CPU 1: two copies of exactly the
 *          one-core work, so their CPU time per copy against p1's shows how much running on
 *          both CPUs at once costs on this machine by itself (shared caches, the host), apart
 *          from anything the two-core pipeline adds
 *
 * Each run's words/s is what the program reports (open to result, excluding process start
 * and printing); `cpu s` is the child's CPU time (all threads, process start included), so
 * `work_efficiency_2` = CPU time on 1 core / CPU time on 2 cores shows what the shuffle and
 * merge cost in work, which other jobs on the machine disturb less than wall time (issue 17's
 * goals: `speedup_vs_ceiling` >= 0.97, `cpu_ratio_2` = its inverse <= 1.05). Each
 * round also reports how much CPU other processes took meanwhile (/proc/stat busy time minus
 * our children's). Every run's totals and digest must equal the reference's, else the bench
 * fails. Figures are medians over rounds; ratios are medians of per-round ratios, because
 * the machine is shared and noisy.
 *
 *   bench_pipeline [-s MiB] [-r rounds] [-k]     (-k keeps the generated file)
 *
 * Ends with: summary: words_per_s_1=... words_per_s_2=... speedup_2=... vs_reference=...
 */
#include "apps/pipeline/wc_zipf.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"

enum { REF, P1, P2, P2S, P4, P2NC, CEIL, P1X2, NMODES };

static const char *const mode_name[NMODES] = {"ref", "p1",   "p2",   "p2s",
                                              "p4",  "p2nc", "ceil", "p1x2"};
static const char *const mode_desc[NMODES] = {
    "reference, 1 thread, pinned",
    "reactor --smp 1, pinned",
    "reactor --smp 2, pinned",
    "reactor --smp 2, pinned, --static",
    "reactor --smp 4, unpinned (oversubscribed)",
    "reactor --smp 2, pinned, --no-combine",
    "2 references at once, pinned (ceiling)",
    "2 reactors --smp 1 at once, CPU 0 and CPU 1",
};

#define MAX_ROUNDS 50

static char bin[PATH_MAX + 32];
static char input[96];

struct child {
    pid_t pid;
    int fd;
};

/* Starts sn-pipeline with args (NULL-terminated), pinned to `cpu` unless it is -1. */
static struct child spawn(const char *const *args, int cpu)
{
    const char *argv[16] = {bin};
    int n = 1;
    while (args[n - 1] && n < 15) {
        argv[n] = args[n - 1];
        n++;
    }
    argv[n] = NULL;
    int p[2];
    if (pipe(p) < 0) {
        perror("pipe");
        exit(1);
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0) {
        if (cpu >= 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(cpu, &set);
            sched_setaffinity(0, sizeof set, &set);
        }
        dup2(p[1], 1);
        dup2(p[1], 2); /* stall reports and errors stay out of the table, in `out` */
        close(p[0]);
        close(p[1]);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    return (struct child){pid, p[0]};
}

struct outcome {
    double words_per_s;
    double cpu_s; /* the child's user + system CPU time (all its threads) */
    char digest[64];
    char words[64];
};

/* Reads the child's output and waits for it; exits on failure. */
static struct outcome finish(struct child c, const char *what)
{
    char out[65536];
    size_t len = 0;
    ssize_t k;
    while ((k = read(c.fd, out + len, sizeof out - 1 - len)) > 0 || (k < 0 && errno == EINTR))
        if (k > 0)
            len += (size_t)k;
    out[len] = '\0';
    close(c.fd);
    int status;
    struct rusage ru;
    wait4(c.pid, &status, 0, &ru);
    struct outcome o = {0};
    o.cpu_s = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
              (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    const char *rep = strstr(out, "report: ");
    const char *wps = rep ? strstr(rep, "words_per_s=") : NULL;
    const char *dg = strstr(out, "digest ");
    const char *w = strstr(out, "words ");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !wps || !dg || !w) {
        fprintf(stderr, "bench_pipeline: %s failed (status %d):\n%s\n", what, status, out);
        exit(1);
    }
    o.words_per_s = strtod(wps + 12, NULL);
    sscanf(dg, "digest %63s", o.digest);
    sscanf(w, "words %63s", o.words);
    return o;
}

static struct outcome run_mode(int mode)
{
    static const char *const args[NMODES][8] = {
        [REF] = {"--reference", "--report", input, NULL},
        [P1] = {"--smp", "1", "--report", input, NULL},
        [P2] = {"--smp", "2", "--report", input, NULL},
        [P2S] = {"--smp", "2", "--static", "--report", input, NULL},
        [P4] = {"--smp", "4", "--unpinned", "--report", input, NULL},
        [P2NC] = {"--smp", "2", "--no-combine", "--report", input, NULL},
        [CEIL] = {"--reference", "--report", input, NULL},
        [P1X2] = {"--smp", "1", "--cpuset", "0", "--report", input, NULL},
    };
    static const char *const second[] = {"--smp", "1", "--cpuset", "1", "--report", input, NULL};
    if (mode != CEIL && mode != P1X2)
        return finish(spawn(args[mode], mode == REF ? 0 : -1), mode_name[mode]);
    /* Two independent copies at once: the combined rate of the two CPUs. */
    struct child a = spawn(args[mode], mode == CEIL ? 0 : -1);
    struct child b = spawn(mode == CEIL ? args[REF] : second, mode == CEIL ? 1 : -1);
    struct outcome oa = finish(a, mode_name[mode]), ob = finish(b, mode_name[mode]);
    double slower = oa.words_per_s < ob.words_per_s ? oa.words_per_s : ob.words_per_s;
    oa.words_per_s = 2 * slower;          /* both did all the words; the slower one ends the pair */
    oa.cpu_s = (oa.cpu_s + ob.cpu_s) / 2; /* per copy of the work */
    return oa;
}

/* CPU seconds all CPUs spent busy so far (/proc/stat), and our children's share of them. */
static double busy_cpu_s(void)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n != 8)
        return 0;
    /* user nice system [idle iowait] irq softirq steal */
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
}

static double children_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void find_binary(void)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        perror("readlink /proc/self/exe");
        exit(1);
    }
    self[n] = '\0';
    *strrchr(self, '/') = '\0'; /* BUILD/bench */
    *strrchr(self, '/') = '\0'; /* BUILD */
    snprintf(bin, sizeof bin, "%s/bin/sn-pipeline", self);
    if (access(bin, X_OK) != 0) {
        fprintf(stderr, "bench_pipeline: %s is not built (make apps)\n", bin);
        exit(1);
    }
}

/*
 * Writes `mib` MiB of Zipf text to `input` (in a new directory, its name in dir) and prints it
 * with the machine and its load average, which goes to *load_start. 0, or 1 after a message.
 */
static int make_input(long mib, char *dir, double *load_start)
{
    if (!mkdtemp(dir))
        return perror("mkdtemp"), 1;
    snprintf(input, sizeof input, "%s/input.txt", dir);
    struct wc_zipf_opts zo;
    wc_zipf_opts_default(&zo, 1);
    double t = bu_now_s();
    int rc = wc_zipf_write_file(&zo, (uint64_t)mib << 20, input);
    if (rc < 0)
        return fprintf(stderr, "bench_pipeline: writing %s: %s\n", input, strerror(-rc)), 1;
    struct utsname u;
    uname(&u);
    *load_start = bu_load1();
    printf("input: %ld MiB of Zipf text (seed 1, vocabulary %u, long words every ~%u words), "
           "generated in %.2f s\nmachine: %s %s, %ld CPUs online, load average %.2f\n",
           mib, zo.vocab, zo.long_gap, bu_now_s() - t, u.nodename, u.release,
           sysconf(_SC_NPROCESSORS_ONLN), *load_start);
    return 0;
}

/* What the rounds measured: per mode and round, and the other processes' CPUs per round. */
struct rounds {
    int n;
    double wps[NMODES][MAX_ROUNDS], cpu[NMODES][MAX_ROUNDS], bg[MAX_ROUNDS];
};

/* One round: every mode once, in an order that rotates with r. 0, or 1 on a wrong count. */
static int run_round(struct rounds *res, int r, const struct outcome *warm)
{
    double t0 = bu_now_s(), busy0 = busy_cpu_s(), ours0 = children_cpu_s();
    printf("round %d:", r + 1);
    for (int i = 0; i < NMODES; i++) {
        int m = (i + r) % NMODES;
        struct outcome o = run_mode(m);
        if (strcmp(o.digest, warm->digest) || strcmp(o.words, warm->words)) {
            fprintf(stderr,
                    "\nbench_pipeline: %s counted %s words digest %s, the "
                    "reference %s digest %s\n",
                    mode_name[m], o.words, o.digest, warm->words, warm->digest);
            return 1;
        }
        res->wps[m][r] = o.words_per_s;
        res->cpu[m][r] = o.cpu_s;
        printf(" %s=%.1fM", mode_name[m], o.words_per_s / 1e6);
        fflush(stdout);
    }
    /* CPU time other processes took meanwhile, in CPUs: the noise of this round. */
    double bg = (busy_cpu_s() - busy0 - (children_cpu_s() - ours0)) / (bu_now_s() - t0);
    res->bg[r] = bg < 0 ? 0 : bg;
    printf("  (other processes: %.2f CPUs)\n", res->bg[r]);
    return 0;
}

/* Per-round ratios of the rounds, each over res->n rounds. */
struct ratios {
    double work2[MAX_ROUNDS], st[MAX_ROUNDS], sp2[MAX_ROUNDS], sp4[MAX_ROUNDS], vs[MAX_ROUNDS],
        ce[MAX_ROUNDS], nc[MAX_ROUNDS], p1ref[MAX_ROUNDS], vsce[MAX_ROUNDS], cpu2[MAX_ROUNDS],
        pair[MAX_ROUNDS], paircpu[MAX_ROUNDS];
};

static void ratios_of(const struct rounds *res, struct ratios *x)
{
    const double(*w)[MAX_ROUNDS] = res->wps, (*c)[MAX_ROUNDS] = res->cpu;
    for (int r = 0; r < res->n; r++) {
        x->sp2[r] = w[P2][r] / w[P1][r];
        x->sp4[r] = w[P4][r] / w[P1][r];
        x->vs[r] = w[P2][r] / w[REF][r];
        x->p1ref[r] = w[P1][r] / w[REF][r];
        x->ce[r] = w[CEIL][r] / w[REF][r];
        x->nc[r] = w[P2NC][r] / w[P1][r];
        x->st[r] = w[P2S][r] / w[P1][r];
        x->work2[r] = c[P1][r] / c[P2][r];
        x->cpu2[r] = c[P2][r] / c[P1][r];
        x->vsce[r] = x->sp2[r] / x->ce[r];
        x->pair[r] = w[P1X2][r] / w[P1][r];
        x->paircpu[r] = c[P1X2][r] / c[P1][r];
    }
}

/* The round other processes disturbed least. */
static int quietest_round(const struct rounds *res)
{
    int q = 0;
    for (int r = 1; r < res->n; r++)
        if (res->bg[r] < res->bg[q])
            q = r;
    return q;
}

/* The table of modes: median words/s (also into med), per core, and CPU seconds. */
static void report_modes(const struct rounds *res, double *med)
{
    printf("\n%-6s %-44s %12s %12s %8s\n", "mode", "", "words/s", "per core", "cpu s");
    for (int m = 0; m < NMODES; m++) {
        int cores = m == P2 || m == P2S || m == P2NC || m == CEIL || m == P1X2 ? 2
                    : m == P4                                                  ? 4
                                                                               : 1;
        med[m] = bu_median(res->wps[m], res->n);
        printf("%-6s %-44s %12.0f %12.0f %8.2f\n", mode_name[m], mode_desc[m], med[m],
               med[m] / cores, bu_median(res->cpu[m], res->n));
    }
}

/* The scaling, goal and comparison lines under the table. */
static void report_ratios(const struct rounds *res, const struct ratios *x, int q)
{
    int n = res->n;
    double speedup2 = bu_median(x->sp2, n), speedup4 = bu_median(x->sp4, n);
    printf("\nspeedup 1->2 cores %.2fx (efficiency %.0f%% per core); 4 oversubscribed %.2fx "
           "(efficiency %.0f%% per core)\n",
           speedup2, 50 * speedup2, speedup4, 25 * speedup4);
    printf("machine ceiling for 2 CPUs (two independent references) %.2fx; without the "
           "combiner %.2fx; with static halves %.2fx\n",
           bu_median(x->ce, n), bu_median(x->nc, n), bu_median(x->st, n));
    printf("quietest round (%d, other processes %.2f CPUs): speedup 1->2 cores %.2fx, static "
           "halves %.2fx, ceiling %.2fx\n",
           q + 1, res->bg[q], x->sp2[q], x->st[q], x->ce[q]);
    printf("CPU time of 1 core / CPU time of 2 cores (work overhead of the shuffle) %.2f\n",
           bu_median(x->work2, n));
    printf("goals (issue 17): speedup / ceiling %.3f (>= 0.97), CPU of 2 cores / CPU of 1 %.3f "
           "(<= 1.05)\n",
           bu_median(x->vsce, n), bu_median(x->cpu2, n));
    printf("two 1-core reactors at once: %.2fx one alone, CPU per copy %.3fx one alone's (what "
           "sharing the machine costs by itself)\n",
           bu_median(x->pair, n), bu_median(x->paircpu, n));
    printf("reactor on 1 core vs the reference %.2fx; on 2 cores %.2fx\n", bu_median(x->p1ref, n),
           bu_median(x->vs, n));
}

/* The one summary line (bench/report.sh reads its keys). */
static void report_summary(const struct rounds *res, const struct ratios *x, const double *med,
                           int q, long mib, double load_start)
{
    int n = res->n;
    double speedup2 = bu_median(x->sp2, n);
    printf("summary: words_per_s_1=%.0f words_per_s_2=%.0f speedup_2=%.3f vs_reference=%.3f "
           "reference_words_per_s=%.0f words_per_s_4_oversubscribed=%.0f efficiency_2=%.3f "
           "ceiling_2=%.3f speedup_2_static=%.3f speedup_2_no_combine=%.3f "
           "work_efficiency_2=%.3f background_cpus=%.2f speedup_2_quietest=%.3f "
           "quietest_background_cpus=%.2f rounds=%ld size_mib=%ld speedup_vs_ceiling=%.3f "
           "cpu_ratio_2=%.3f pair_speedup_2=%.3f pair_cpu_ratio_2=%.3f load_start=%.2f "
           "load_end=%.2f\n",
           med[P1], med[P2], speedup2, bu_median(x->vs, n), med[REF], med[P4], speedup2 / 2,
           bu_median(x->ce, n), bu_median(x->st, n), bu_median(x->nc, n), bu_median(x->work2, n),
           bu_median(res->bg, n), x->sp2[q], res->bg[q], (long)n, mib, bu_median(x->vsce, n),
           bu_median(x->cpu2, n), bu_median(x->pair, n), bu_median(x->paircpu, n), load_start,
           bu_load1());
}

/* Everything after the rounds: the table, the ratio lines and the summary line. */
static void report(const struct rounds *res, long mib, double load_start)
{
    double med[NMODES];
    static struct ratios x;
    ratios_of(res, &x);
    int q = quietest_round(res);
    report_modes(res, med);
    report_ratios(res, &x, q);
    report_summary(res, &x, med, q, mib, load_start);
}

int main(int argc, char **argv)
{
    long mib = 200, rounds = 5;
    int keep = 0, opt;
    while ((opt = getopt(argc, argv, "s:r:k")) != -1) {
        if (opt == 's')
            mib = strtol(optarg, NULL, 10);
        else if (opt == 'r')
            rounds = strtol(optarg, NULL, 10);
        else if (opt == 'k')
            keep = 1;
        else
            return fprintf(stderr, "usage: bench_pipeline [-s MiB] [-r rounds] [-k]\n"), 2;
    }
    if (mib < 1 || mib > 4096 || rounds < 1 || rounds > MAX_ROUNDS)
        return fprintf(stderr, "bench_pipeline: -s 1..4096, -r 1..%d\n", MAX_ROUNDS), 2;
    find_binary();
    char dir[] = "/tmp/sn-bench-pipeline-XXXXXX";
    double load_start;
    if (make_input(mib, dir, &load_start))
        return 1;
    struct outcome warm = run_mode(REF); /* page cache warm-up, not counted */
    static struct rounds res;
    res.n = (int)rounds;
    for (int r = 0; r < res.n; r++)
        if (run_round(&res, r, &warm))
            return 1;
    report(&res, mib, load_start);
    if (!keep) {
        unlink(input);
        rmdir(dir);
    } else {
        printf("kept %s\n", input);
    }
    return 0;
}
