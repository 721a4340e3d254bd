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
#include <time.h>
#include <unistd.h>

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

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
    double s[MAX_ROUNDS];
    memcpy(s, v, (size_t)n * sizeof *v);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
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

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The 1-minute load average, to print with the figures (the machine is shared). */
static double load1(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1;
        fclose(f);
    }
    return l;
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
    if (!mkdtemp(dir))
        return perror("mkdtemp"), 1;
    snprintf(input, sizeof input, "%s/input.txt", dir);
    struct wc_zipf_opts zo;
    wc_zipf_opts_default(&zo, 1);
    double t = now_s();
    int rc = wc_zipf_write_file(&zo, (uint64_t)mib << 20, input);
    if (rc < 0)
        return fprintf(stderr, "bench_pipeline: writing %s: %s\n", input, strerror(-rc)), 1;
    struct utsname u;
    uname(&u);
    double load_start = load1();
    printf("input: %ld MiB of Zipf text (seed 1, vocabulary %u, long words every ~%u words), "
           "generated in %.2f s\nmachine: %s %s, %ld CPUs online, load average %.2f\n",
           mib, zo.vocab, zo.long_gap, now_s() - t, u.nodename, u.release,
           sysconf(_SC_NPROCESSORS_ONLN), load_start);
    struct outcome warm = run_mode(REF); /* page cache warm-up, not counted */
    double wps[NMODES][MAX_ROUNDS], cpu[NMODES][MAX_ROUNDS], bg[MAX_ROUNDS];
    for (int r = 0; r < rounds; r++) {
        double t0 = now_s(), busy0 = busy_cpu_s(), ours0 = children_cpu_s();
        printf("round %d:", r + 1);
        for (int i = 0; i < NMODES; i++) {
            int m = (i + r) % NMODES;
            struct outcome o = run_mode(m);
            if (strcmp(o.digest, warm.digest) || strcmp(o.words, warm.words)) {
                fprintf(stderr,
                        "\nbench_pipeline: %s counted %s words digest %s, the "
                        "reference %s digest %s\n",
                        mode_name[m], o.words, o.digest, warm.words, warm.digest);
                return 1;
            }
            wps[m][r] = o.words_per_s;
            cpu[m][r] = o.cpu_s;
            printf(" %s=%.1fM", mode_name[m], o.words_per_s / 1e6);
            fflush(stdout);
        }
        /* CPU time other processes took meanwhile, in CPUs: the noise of this round. */
        bg[r] = (busy_cpu_s() - busy0 - (children_cpu_s() - ours0)) / (now_s() - t0);
        if (bg[r] < 0)
            bg[r] = 0;
        printf("  (other processes: %.2f CPUs)\n", bg[r]);
    }
    double med[NMODES], medcpu[NMODES], work2[MAX_ROUNDS], st[MAX_ROUNDS], sp2[MAX_ROUNDS],
        sp4[MAX_ROUNDS], vs[MAX_ROUNDS], ce[MAX_ROUNDS], nc[MAX_ROUNDS], p1ref[MAX_ROUNDS],
        vsce[MAX_ROUNDS], cpu2[MAX_ROUNDS], pair[MAX_ROUNDS], paircpu[MAX_ROUNDS];
    for (int m = 0; m < NMODES; m++) {
        med[m] = median(wps[m], (int)rounds);
        medcpu[m] = median(cpu[m], (int)rounds);
    }
    for (int r = 0; r < rounds; r++) {
        sp2[r] = wps[P2][r] / wps[P1][r];
        sp4[r] = wps[P4][r] / wps[P1][r];
        vs[r] = wps[P2][r] / wps[REF][r];
        p1ref[r] = wps[P1][r] / wps[REF][r];
        ce[r] = wps[CEIL][r] / wps[REF][r];
        nc[r] = wps[P2NC][r] / wps[P1][r];
        st[r] = wps[P2S][r] / wps[P1][r];
        work2[r] = cpu[P1][r] / cpu[P2][r];
        cpu2[r] = cpu[P2][r] / cpu[P1][r];
        vsce[r] = sp2[r] / ce[r];
        pair[r] = wps[P1X2][r] / wps[P1][r];
        paircpu[r] = cpu[P1X2][r] / cpu[P1][r];
    }
    double speedup2 = median(sp2, (int)rounds), speedup4 = median(sp4, (int)rounds);
    printf("\n%-6s %-44s %12s %12s %8s\n", "mode", "", "words/s", "per core", "cpu s");
    for (int m = 0; m < NMODES; m++) {
        int cores = m == P2 || m == P2S || m == P2NC || m == CEIL || m == P1X2 ? 2
                    : m == P4                                                  ? 4
                                                                               : 1;
        printf("%-6s %-44s %12.0f %12.0f %8.2f\n", mode_name[m], mode_desc[m], med[m],
               med[m] / cores, medcpu[m]);
    }
    printf("\nspeedup 1->2 cores %.2fx (efficiency %.0f%% per core); 4 oversubscribed %.2fx "
           "(efficiency %.0f%% per core)\n",
           speedup2, 50 * speedup2, speedup4, 25 * speedup4);
    printf("machine ceiling for 2 CPUs (two independent references) %.2fx; without the "
           "combiner %.2fx; with static halves %.2fx\n",
           median(ce, (int)rounds), median(nc, (int)rounds), median(st, (int)rounds));
    int q = 0; /* the round other processes disturbed least */
    for (int r = 1; r < rounds; r++)
        if (bg[r] < bg[q])
            q = r;
    printf("quietest round (%d, other processes %.2f CPUs): speedup 1->2 cores %.2fx, static "
           "halves %.2fx, ceiling %.2fx\n",
           q + 1, bg[q], sp2[q], st[q], ce[q]);
    printf("CPU time of 1 core / CPU time of 2 cores (work overhead of the shuffle) %.2f\n",
           median(work2, (int)rounds));
    printf("goals (issue 17): speedup / ceiling %.3f (>= 0.97), CPU of 2 cores / CPU of 1 %.3f "
           "(<= 1.05)\n",
           median(vsce, (int)rounds), median(cpu2, (int)rounds));
    printf("two 1-core reactors at once: %.2fx one alone, CPU per copy %.3fx one alone's (what "
           "sharing the machine costs by itself)\n",
           median(pair, (int)rounds), median(paircpu, (int)rounds));
    printf("reactor on 1 core vs the reference %.2fx; on 2 cores %.2fx\n",
           median(p1ref, (int)rounds), median(vs, (int)rounds));
    printf("summary: words_per_s_1=%.0f words_per_s_2=%.0f speedup_2=%.3f vs_reference=%.3f "
           "reference_words_per_s=%.0f words_per_s_4_oversubscribed=%.0f efficiency_2=%.3f "
           "ceiling_2=%.3f speedup_2_static=%.3f speedup_2_no_combine=%.3f "
           "work_efficiency_2=%.3f background_cpus=%.2f speedup_2_quietest=%.3f "
           "quietest_background_cpus=%.2f rounds=%ld size_mib=%ld speedup_vs_ceiling=%.3f "
           "cpu_ratio_2=%.3f pair_speedup_2=%.3f pair_cpu_ratio_2=%.3f load_start=%.2f "
           "load_end=%.2f\n",
           med[P1], med[P2], speedup2, median(vs, (int)rounds), med[REF], med[P4], speedup2 / 2,
           median(ce, (int)rounds), median(st, (int)rounds), median(nc, (int)rounds),
           median(work2, (int)rounds), median(bg, (int)rounds), sp2[q], bg[q], rounds, mib,
           median(vsce, (int)rounds), median(cpu2, (int)rounds), median(pair, (int)rounds),
           median(paircpu, (int)rounds), load_start, load1());
    if (!keep) {
        unlink(input);
        rmdir(dir);
    } else {
        printf("kept %s\n", input);
    }
    return 0;
}
