/*
 * bench_echo: sn-echo (apps/echo) against iperf3's loopback figure, in one run.
 *
 * The bench starts sn-echo itself (<build>/bin/sn-echo, found from its own argv[0]) and an
 * iperf3 server, then drives them in turn, in interleaved rounds:
 *   - echo 64 B and echo 64 KiB: one client thread (epoll) with C connections; each keeps a
 *     window of W messages of S bytes in flight, topping it up in one write whenever half of
 *     it has come back, and checks every echoed byte against what it sent (each connection
 *     sends its own pseudo-random stream). Messages/s = echoed bytes / S / seconds; MB/s
 *     counts echoed payload in one direction (10^6 bytes), like iperf3's figure.
 *   - iperf3 -c for the same time (-J, end.sum_received.bits_per_second): the limit. In setup
 *     (a) also iperf3 --bidir (mean of both directions), whose server, like an echo server,
 *     receives and sends every byte.
 * Two setups (issue 5): (a) sn-echo --cpuset 0, client pinned on CPU 1 (iperf3 -s -A 0,
 * iperf3 -c -A 1); (b) sn-echo --smp 2 --idle-poll-us 0, client unpinned (iperf3 unpinned).
 * Server CPU-seconds (utime + stime from /proc/<pid>/stat) are taken around each run and
 * reported per million messages and per GB echoed, with the server's run-queue wait
 * (schedstat: time runnable but kept off the CPU, by other work on a shared machine). Figures
 * are medians over rounds; the ratio is the median of per-round ratios.
 *
 *   bench_echo [--secs T] [--rounds R] [--conns C] [--window W] [--large-window W]
 *              [--setups ab] [--server PATH]
 *   bench_echo --port P [--size S] [--window W] [--conns C] [--secs T] [--cpu N]
 *              drive an already running echo server once (for profiling) and print one line
 *
 * Ends with: summary: echo_64_mps=... echo_64k_mbps=... iperf3_mbps=... ratio_vs_iperf3=...
 * (setup a) and more keys. Every process it starts is stopped on exit, also on error or
 * interrupt (and dies with the bench through PR_SET_PDEATHSIG if the bench is killed).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ROUNDS   15

#include "echo_client.h"
#include "echo_proc.h"

/* ---- iperf3 ---- */

/* The first number after "key" then "bits_per_second" in iperf3's JSON; -1 when absent. */
static double json_bps(const char *json, const char *key)
{
    const char *p = strstr(json, key);
    if (!p)
        return -1;
    p = strstr(p, "\"bits_per_second\"");
    if (!p)
        return -1;
    p = strchr(p, ':');
    return p ? strtod(p + 1, NULL) : -1;
}

struct ip_res {
    double mbps, srv_cpu, srv_wait, cli_cpu, secs;
};

/* One iperf3 -c run; mbps is per direction (the mean of both with bidir). */
static int iperf_once(int port, unsigned secs, int cpu, bool bidir, pid_t server,
                      struct ip_res *res, bool quiet)
{
    char p[16], t[16], a[16];
    snprintf(p, sizeof p, "%d", port);
    snprintf(t, sizeof t, "%u", secs);
    snprintf(a, sizeof a, "%d", cpu);
    char *argv[16] = {"iperf3", "-c", "127.0.0.1", "-p", p, "-t", t, "-J"};
    int n = 8;
    if (cpu >= 0)
        argv[n++] = "-A", argv[n++] = a;
    if (bidir)
        argv[n++] = "--bidir";
    argv[n] = NULL;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    double s0 = proc_cpu_s(server), w0 = proc_runq_wait_s(server), t0 = bu_now_s();
    struct rusage ru0, ru1;
    getrusage(RUSAGE_CHILDREN, &ru0);
    pid_t pid = spawn(argv, fds[1]);
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        return (int)pid;
    }
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    ssize_t k;
    while (out && (k = read(fds[0], out + len, cap - len - 1)) > 0) {
        len += (size_t)k;
        if (cap - len < 4096) {
            char *bigger = realloc(out, cap * 2);
            if (!bigger)
                break;
            out = bigger, cap *= 2;
        }
    }
    close(fds[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    child_forget(pid);
    getrusage(RUSAGE_CHILDREN, &ru1);
    res->secs = bu_now_s() - t0;
    res->srv_cpu = proc_cpu_s(server) - s0;
    res->srv_wait = proc_runq_wait_s(server) - w0;
    res->cli_cpu = ru_cpu_s(&ru1) - ru_cpu_s(&ru0);
    if (!out)
        return -ENOMEM;
    out[len] = '\0';
    double fwd = json_bps(out, "\"sum_received\"");
    double rev = bidir ? json_bps(out, "\"sum_received_bidir_reverse\"") : fwd;
    int rc = 0;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || fwd <= 0 || rev <= 0) {
        if (!quiet) {
            const char *e = strstr(out, "\"error\"");
            fprintf(stderr, "bench_echo: iperf3 -c failed (status %d): %.200s\n", st, e ? e : out);
        }
        rc = -EIO;
    }
    res->mbps = (fwd + rev) / 2 / 8 / 1e6;
    free(out);
    return rc;
}

static int iperf_run(int port, unsigned secs, int cpu, bool bidir, pid_t server, struct ip_res *res)
{
    /* A busy server ("the server is busy running a test") right after the last test ended
     * is worth a retry. */
    for (int i = 0;; i++) {
        int rc = iperf_once(port, secs, cpu, bidir, server, res, i < 2);
        if (rc == 0 || i == 2)
            return rc;
        usleep(300000);
    }
}

/* ---- setups, rounds, report ---- */

struct opts {
    unsigned secs, rounds, conns, window, large_window;
    const char *setups;
    char server[PATH_MAX];
};

enum { T_E64, T_E64K, T_IP, T_BIDIR, T_N };

static const char *const test_name[T_N] = {"echo 64 B", "echo 64 KiB", "iperf3", "iperf3 bidir"};

struct setup_res {
    int n; /* rounds done */
    bool has[T_N];
    double mps[T_N][MAX_ROUNDS], mbps[T_N][MAX_ROUNDS], srv_util[T_N][MAX_ROUNDS],
        cli_util[T_N][MAX_ROUNDS], srv_wait[T_N][MAX_ROUNDS], cpu_per_m[T_N][MAX_ROUNDS],
        cpu_per_gb[T_N][MAX_ROUNDS], ratio[MAX_ROUNDS], ratio_bidir[MAX_ROUNDS];
};

struct setup {
    char name;
    const char *desc;
    char *echo_args[4]; /* libsn options, NULL-terminated */
    int echo_sockets;   /* listening sockets once every core listens */
    int client_cpu;     /* -1: unpinned */
    int iperf_srv_cpu;
    bool bidir;
};

static struct setup setups[] = {
    {.name = 'a',
     .desc = "server on CPU 0 (sn-echo --cpuset 0; iperf3 -s -A 0), client pinned on CPU 1 "
             "(iperf3 -c -A 1)",
     .echo_args = {"--cpuset", "0", NULL},
     .echo_sockets = 1,
     .client_cpu = 1,
     .iperf_srv_cpu = 0,
     .bidir = true},
    {.name = 'b',
     .desc = "server on both CPUs (sn-echo --smp 2 --idle-poll-us 0; iperf3 -s unpinned), "
             "client unpinned",
     .echo_args = {"--smp", "2", "--idle-poll-us", "0"},
     .echo_sockets = 2,
     .client_cpu = -1,
     .iperf_srv_cpu = -1,
     .bidir = false},
};

static void record(struct setup_res *sr, int t, int round, double mps, double bytes_per_s,
                   double srv_cpu, double srv_wait, double cli_cpu, double secs)
{
    sr->srv_wait[t][round] = srv_wait / secs;
    sr->has[t] = true;
    sr->mps[t][round] = mps;
    sr->mbps[t][round] = bytes_per_s / 1e6;
    sr->srv_util[t][round] = srv_cpu / secs;
    sr->cli_util[t][round] = cli_cpu / secs;
    sr->cpu_per_m[t][round] = mps > 0 ? srv_cpu / (mps * secs / 1e6) : 0;
    sr->cpu_per_gb[t][round] = srv_cpu / (bytes_per_s * secs / 1e9);
}

static int run_echo_test(const struct opts *o, const struct setup *s, int port, pid_t srv, int t,
                         int round, struct setup_res *sr)
{
    struct echo_run r = {.host = "127.0.0.1",
                         .port = port,
                         .conns = o->conns,
                         .window = t == T_E64 ? o->window : o->large_window,
                         .size = t == T_E64 ? 64 : 65536,
                         .secs = o->secs,
                         .server = srv};
    struct echo_res e = {0};
    if (bu_pin_self(s->client_cpu) < 0 || echo_run(&r, &e) < 0)
        return -1;
    bu_pin_self(-1);
    record(sr, t, round, e.mps, e.mbps * 1e6, e.srv_cpu, e.srv_wait, e.cli_cpu, e.secs);
    return 0;
}

static int run_iperf_test(const struct opts *o, const struct setup *s, int port, pid_t srv, int t,
                          int round, struct setup_res *sr)
{
    struct ip_res ip = {0};
    int rc = iperf_run(port, o->secs, s->client_cpu, t == T_BIDIR, srv, &ip);
    if (rc < 0)
        return rc;
    /* The iperf3 client's own time includes its connection setup and the JSON exchange. */
    double secs = o->secs;
    record(sr, t, round, 0, ip.mbps * 1e6, ip.srv_cpu, ip.srv_wait, ip.cli_cpu, secs);
    return 0;
}

static pid_t start_echo(const struct opts *o, const struct setup *s, int *port)
{
    char pbuf[16];
    *port = free_port();
    snprintf(pbuf, sizeof pbuf, "%d", *port);
    char *argv[12] = {(char *)o->server, "--port", pbuf, "--listen", "127.0.0.1"};
    int n = 5;
    for (int i = 0; i < 4 && s->echo_args[i]; i++)
        argv[n++] = s->echo_args[i];
    argv[n] = NULL;
    pid_t pid = spawn(argv, -1);
    if (pid < 0 || wait_listening(pid, *port, s->echo_sockets, "sn-echo") < 0)
        return -1;
    return pid;
}

static pid_t start_iperf(const struct setup *s, int *port)
{
    char pbuf[16], abuf[16];
    *port = free_port();
    snprintf(pbuf, sizeof pbuf, "%d", *port);
    snprintf(abuf, sizeof abuf, "%d", s->iperf_srv_cpu);
    /* Its per-test reports and its "interrupt" line when stopped go to /dev/null; a failed
     * start shows as an exit before it listens. */
    char *argv[12] = {"iperf3", "-s", "-B", "127.0.0.1", "-p", pbuf, "--logfile", "/dev/null"};
    int n = 8;
    if (s->iperf_srv_cpu >= 0)
        argv[n++] = "-A", argv[n++] = abuf;
    argv[n] = NULL;
    pid_t pid = spawn(argv, -1);
    if (pid < 0 || wait_listening(pid, *port, 1, "iperf3 -s") < 0)
        return -1;
    return pid;
}

static int run_setup(const struct opts *o, const struct setup *s, struct setup_res *sr)
{
    int eport, iport;
    pid_t echo = start_echo(o, s, &eport);
    if (echo < 0)
        return -1;
    pid_t ip = start_iperf(s, &iport);
    if (ip < 0)
        return -1;
    memset(sr, 0, sizeof *sr);
    for (unsigned round = 0; round < o->rounds; round++) {
        /* Alternate who goes first, so a drift in the machine's load hits both alike. */
        int order[T_N] = {T_E64, T_E64K, T_IP, T_BIDIR};
        if (round % 2)
            order[0] = T_IP, order[1] = T_BIDIR, order[2] = T_E64, order[3] = T_E64K;
        for (int k = 0; k < T_N; k++) {
            int t = order[k], rc;
            if (t == T_BIDIR && !s->bidir)
                continue;
            if (t == T_E64 || t == T_E64K)
                rc = run_echo_test(o, s, eport, echo, t, (int)round, sr);
            else
                rc = run_iperf_test(o, s, iport, ip, t, (int)round, sr);
            if (rc < 0)
                return -1;
            if (!child_alive(echo)) {
                fprintf(stderr, "bench_echo: sn-echo exited during the run\n");
                return -1;
            }
        }
        sr->ratio[round] = sr->mbps[T_E64K][round] / sr->mbps[T_IP][round];
        sr->ratio_bidir[round] = s->bidir ? sr->mbps[T_E64K][round] / sr->mbps[T_BIDIR][round] : 0;
        sr->n = (int)round + 1;
        char bd[48] = "";
        if (s->bidir)
            snprintf(bd, sizeof bd, ", iperf3 --bidir %.1f MB/s", sr->mbps[T_BIDIR][round]);
        printf("  round %u: echo64 %.0f msg/s, echo64k %.1f MB/s, iperf3 %.1f MB/s%s, "
               "ratio %.3f\n",
               round + 1, sr->mps[T_E64][round], sr->mbps[T_E64K][round], sr->mbps[T_IP][round], bd,
               sr->ratio[round]);
    }
    child_stop(ip);
    child_stop(echo);
    return 0;
}

static void print_setup(const struct opts *o, const struct setup *s, const struct setup_res *sr)
{
    printf("setup %c: %s; %u connections; medians over %d rounds of %u s\n", s->name, s->desc,
           o->conns, sr->n, o->secs);
    printf("  %-13s %11s %9s %8s %8s %8s %11s %9s   %s\n", "test", "msgs/s", "MB/s", "srv_cpu",
           "srv_runq", "cli_cpu", "srv_s/Mmsg", "srv_s/GB", "rounds MB/s");
    for (int t = 0; t < T_N; t++) {
        if (!sr->has[t])
            continue;
        char m[32] = "-", pm[32] = "-";
        if (t == T_E64 || t == T_E64K) {
            snprintf(m, sizeof m, "%.0f", bu_median(sr->mps[t], sr->n));
            snprintf(pm, sizeof pm, "%.3f", bu_median(sr->cpu_per_m[t], sr->n));
        }
        printf("  %-13s %11s %9.1f %8.2f %8.2f %8.2f %11s %9.3f  ", test_name[t], m,
               bu_median(sr->mbps[t], sr->n), bu_median(sr->srv_util[t], sr->n),
               bu_median(sr->srv_wait[t], sr->n), bu_median(sr->cli_util[t], sr->n), pm,
               bu_median(sr->cpu_per_gb[t], sr->n));
        for (int r = 0; r < sr->n; r++)
            printf(" %.1f", sr->mbps[t][r]);
        printf("\n");
    }
    printf("  ratio echo 64 KiB / iperf3 MB/s: %.3f (rounds:", bu_median(sr->ratio, sr->n));
    for (int r = 0; r < sr->n; r++)
        printf(" %.3f", sr->ratio[r]);
    printf(")\n");
    if (s->bidir)
        printf("  ratio echo 64 KiB / iperf3 --bidir per direction: %.3f\n",
               bu_median(sr->ratio_bidir, sr->n));
}

static void print_loadavg(const char *when)
{
    char buf[128] = "?";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (!fgets(buf, sizeof buf, f))
            strcpy(buf, "?\n");
        fclose(f);
    }
    printf("load average %s: %s", when, buf);
}

static int find_server(const char *argv0, char *out, size_t cap)
{
    char self[PATH_MAX];
    if (strchr(argv0, '/')) {
        snprintf(self, sizeof self, "%s", argv0);
    } else {
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n <= 0)
            return -1;
        self[n] = '\0';
    }
    /* <build>/bench/bench_echo -> <build>/bin/sn-echo */
    char *dir = dirname(self);
    snprintf(out, cap, "%s/../bin/sn-echo", dir);
    return access(out, X_OK);
}

/* iperf3 missing: .ci/deps.sh --check names the Debian package and the command to install it
 * (a benchmark never installs anything itself). */
static int need_iperf3(const char *server)
{
    if (system("command -v iperf3 >/dev/null 2>&1") == 0)
        return 0;
    char cmd[PATH_MAX + 64], dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", server);
    snprintf(cmd, sizeof cmd, "sh '%s/../../.ci/deps.sh' --check iperf3", dirname(dir));
    if (system(cmd) != 0 || system("command -v iperf3 >/dev/null 2>&1") != 0) {
        fprintf(stderr, "bench_echo: iperf3 is not installed\n");
        return -1;
    }
    return 0;
}

static unsigned num(const char *s, unsigned min, unsigned max, const char *name)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "bench_echo: --%s wants %u..%u\n", name, min, max);
        exit(2);
    }
    return (unsigned)v;
}

/* --port: one run against a server someone else started (for perf record on it). */
static int client_only(const struct opts *o, unsigned port, unsigned size, int cpu)
{
    struct echo_run r = {.host = "127.0.0.1",
                         .port = (int)port,
                         .conns = o->conns,
                         .window = size <= 1024 ? o->window : o->large_window,
                         .size = size,
                         .secs = o->secs};
    struct echo_res e = {0};
    if (bu_pin_self(cpu) < 0 || echo_run(&r, &e) < 0)
        return 1;
    printf("size=%u conns=%u window=%u secs=%.2f msgs_per_s=%.0f mb_per_s=%.1f cli_cpu=%.2f\n",
           size, r.conns, r.window, e.secs, e.mps, e.mbps, e.cli_cpu / e.secs);
    return 0;
}

/* The one summary line: setup (a)'s keys first (the four), then the rest. */
static int print_summary(const struct opts *o, const struct setup_res *res, const bool *done)
{
    int first = done[0] ? 0 : 1;
    if (!done[first])
        return -1;
    const struct setup_res *a = &res[first];
    printf("summary: echo_64_mps=%.0f echo_64k_mbps=%.1f iperf3_mbps=%.1f ratio_vs_iperf3=%.3f",
           bu_median(a->mps[T_E64], a->n), bu_median(a->mbps[T_E64K], a->n),
           bu_median(a->mbps[T_IP], a->n), bu_median(a->ratio, a->n));
    if (first == 0)
        printf(" iperf3_bidir_mbps=%.1f ratio_vs_iperf3_bidir=%.3f echo_64_srv_s_per_mmsg=%.3f "
               "echo_64k_srv_s_per_gb=%.3f iperf3_srv_s_per_gb=%.3f",
               bu_median(a->mbps[T_BIDIR], a->n), bu_median(a->ratio_bidir, a->n),
               bu_median(a->cpu_per_m[T_E64], a->n), bu_median(a->cpu_per_gb[T_E64K], a->n),
               bu_median(a->cpu_per_gb[T_IP], a->n));
    if (done[1] && first == 0) {
        const struct setup_res *b = &res[1];
        printf(" b_echo_64_mps=%.0f b_echo_64k_mbps=%.1f b_iperf3_mbps=%.1f b_ratio=%.3f "
               "b_echo_64k_srv_s_per_gb=%.3f b_iperf3_srv_s_per_gb=%.3f",
               bu_median(b->mps[T_E64], b->n), bu_median(b->mbps[T_E64K], b->n),
               bu_median(b->mbps[T_IP], b->n), bu_median(b->ratio, b->n),
               bu_median(b->cpu_per_gb[T_E64K], b->n), bu_median(b->cpu_per_gb[T_IP], b->n));
    }
    printf(" rounds=%u secs=%u conns=%u\n", o->rounds, o->secs, o->conns);
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o = {
        .secs = 3, .rounds = 3, .conns = 64, .window = 16, .large_window = 4, .setups = "ab"};
    static const struct option lo[] = {
        {"secs", 1, 0, 's'},
        {"rounds", 1, 0, 'r'},
        {"conns", 1, 0, 'c'},
        {"window", 1, 0, 'w'},
        {"large-window", 1, 0, 'W'},
        {"setups", 1, 0, 'S'},
        {"server", 1, 0, 'x'},
        {"port", 1, 0, 'p'},
        {"size", 1, 0, 'z'},
        {"cpu", 1, 0, 'C'},
        {0, 0, 0, 0},
    };
    unsigned port = 0, size = 65536;
    int cpu = -1, ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 's': o.secs = num(optarg, 1, 600, "secs"); break;
        case 'r': o.rounds = num(optarg, 1, MAX_ROUNDS, "rounds"); break;
        case 'c': o.conns = num(optarg, 1, 10000, "conns"); break;
        case 'w': o.window = num(optarg, 1, 4096, "window"); break;
        case 'W': o.large_window = num(optarg, 1, 256, "large-window"); break;
        case 'S': o.setups = optarg; break;
        case 'x': snprintf(o.server, sizeof o.server, "%s", optarg); break;
        case 'p': port = num(optarg, 1, 65535, "port"); break;
        case 'z': size = num(optarg, 1, 1u << 24, "size"); break;
        case 'C': cpu = (int)num(optarg, 0, CPU_SETSIZE - 1, "cpu"); break;
        default: return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    pattern_init();
    if (port)
        return client_only(&o, port, size, cpu);

    if (!o.server[0] && find_server(argv[0], o.server, sizeof o.server) < 0) {
        fprintf(stderr, "bench_echo: %s is not built (make apps)\n", o.server);
        return 1;
    }
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
        fprintf(stderr, "bench_echo: needs 2 CPUs\n");
        return 1;
    }
    if (need_iperf3(o.server) < 0)
        return 1;
    atexit(stop_all_children);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    struct utsname u;
    uname(&u);
    time_t now = time(NULL);
    char date[64];
    strftime(date, sizeof date, "%F %T UTC", gmtime(&now));
    printf("bench_echo: %s vs iperf3 on 127.0.0.1; %s, kernel %s, %ld CPUs\n", o.server, date,
           u.release, sysconf(_SC_NPROCESSORS_ONLN));
    printf("messages: 64 B (window %u) and 64 KiB (window %u) per connection; MB = 10^6 bytes "
           "echoed (one direction)\n",
           o.window, o.large_window);
    print_loadavg("at start");

    static struct setup_res res[2];
    bool done[2] = {false, false};
    for (int i = 0; i < 2; i++) {
        if (!strchr(o.setups, setups[i].name))
            continue;
        printf("setup %c: %s\n", setups[i].name, setups[i].desc);
        if (run_setup(&o, &setups[i], &res[i]) < 0)
            return 1;
        done[i] = true;
    }
    for (int i = 0; i < 2; i++)
        if (done[i])
            print_setup(&o, &setups[i], &res[i]);
    print_loadavg("at end");

    return print_summary(&o, res, done) < 0 ? 1 : 0;
}
