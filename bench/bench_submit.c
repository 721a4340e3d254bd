/*
 * bench_submit: cross-core calls on a running 2-core reactor (pinned), against their limits.
 *
 *   pingpong    (peer) two plain threads pinned to CPUs 0 and 1 bounce a value through two
 *               cache lines: the round-trip limit of any cross-core protocol;
 *   rtt         sn_submit_to(1, echo) from core 0, one at a time, target polling (p50/p99/p999);
 *   copy8/64    the same round trip with sn_submit_copy and an 8-byte payload (it rides in the
 *               mesh message) or a 64-byte one (a pooled block the target reads);
 *   calls       sn_submit_to 0 -> 1 with WINDOW calls in flight: calls/s with replies;
 *   send        sn_send 0 -> 1 one-way, counted on core 1: messages/s;
 *   wake        core 1 asleep in io_uring (idle after each sample), core 0 takes t0 and
 *               sn_sends a function that takes t1: wake-up latency (p50/p99);
 *   eventfd     (peer) a plain thread blocked in read(2) on an eventfd, woken by a write(2)
 *               from a thread on the other CPU;
 *   idle        CPU time used by an idle 2-core reactor over 2 s, after a settle time
 *               (sum of /proc/self/task/<tid>/schedstat, ns).
 * Every latency sample is taken the same way (CLOCK_MONOTONIC before and after), so the
 * ratios compare like with like. The machine is shared and noisy: everything runs in rounds,
 * interleaved, and each ratio is the median of the per-round ratios.
 *
 * Usage: bench_submit [-r rounds] [-n rtt_samples] [-c calls] [-s sends] [-w wake_samples]
 *                     [-p wake_idle_poll_us] [-q] [-S]
 * -S turns the queue-delay sampling off (config delay_sample_every), so bench_groups can
 * measure what it costs.
 * -q (quick) runs only the busy phases (pingpong, rtt, calls, send): the wake-up and idle
 * figures are then reported as 0. BENCH_VERBOSE=1 adds per-phase counters of both cores
 * (messages handled per loop turn, overflow use).
 */
#include <sn.h>

#include "bench_data.h"
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#define MAX_ROUNDS 31
#define WINDOW     1024
#define SEND_CHUNK 4096
/* Time between wake-up samples, for the reactor and the eventfd peer alike: well past the
 * reactor's idle-poll time, so the target is asleep in the kernel at each sample. */
#define WAKE_GAP_NS 1000000

static int n_rounds = 5;
static int n_rtt = 100000;
static long n_calls = 4000000;
static long n_sends = -1; /* -s: messages of the send phase (default: as many as calls) */
static int n_wake = 500;
static unsigned wake_idle_poll_us = SN_CONFIG_DEFAULT_IDLE_POLL_US;
static int cpus[2] = {0, 1};
static bool no_sampling;

static void pin_attr(pthread_attr_t *attr, int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_attr_init(attr);
    pthread_attr_setaffinity_np(attr, sizeof set, &set);
}

/* ---- peer: raw ping-pong ---------------------------------------------------------------- */

static struct {
    SN_CACHE_ALIGNED _Atomic uint64_t ping;
    SN_CACHE_ALIGNED _Atomic uint64_t pong;
    uint64_t *lat;
    int n;
} pp;

static void *pp_echo(void *arg)
{
    (void)arg;
    for (uint64_t i = 1; i <= (uint64_t)pp.n; i++) {
        while (atomic_load_explicit(&pp.ping, memory_order_acquire) != i)
            ;
        atomic_store_explicit(&pp.pong, i, memory_order_release);
    }
    return NULL;
}

static uint64_t pingpong_p50(void)
{
    pthread_t t;
    pthread_attr_t attr;
    pp.n = n_rtt;
    pp.lat = malloc((size_t)n_rtt * sizeof *pp.lat);
    atomic_store(&pp.ping, 0);
    atomic_store(&pp.pong, 0);
    pin_attr(&attr, cpus[1]);
    pthread_create(&t, &attr, pp_echo, NULL);
    bu_pin_self(cpus[0]);
    for (uint64_t i = 1; i <= (uint64_t)pp.n; i++) {
        uint64_t t0 = bu_now_ns();
        atomic_store_explicit(&pp.ping, i, memory_order_release);
        while (atomic_load_explicit(&pp.pong, memory_order_acquire) != i)
            ;
        pp.lat[i - 1] = bu_now_ns() - t0;
    }
    pthread_join(t, NULL);
    pthread_attr_destroy(&attr);
    bu_pin_self(-1);
    uint64_t p50 = bu_quantile_u64(pp.lat, (size_t)pp.n, 0.5);
    bench_data_quantiles("bench_submit", "pingpong", pp.lat, (size_t)pp.n); /* sorted */
    free(pp.lat);
    return p50;
}

/* ---- peer: eventfd wake ------------------------------------------------------------- */

static struct {
    int efd;
    _Atomic uint64_t t0;
    _Atomic int sleeping;
    uint64_t *lat;
    int n;
} ew;

static void *ew_target(void *arg)
{
    (void)arg;
    for (int i = 0; i < ew.n; i++) {
        uint64_t v;
        atomic_store(&ew.sleeping, 1);
        if (read(ew.efd, &v, sizeof v) != sizeof v)
            break;
        ew.lat[i] = bu_now_ns() - atomic_load(&ew.t0);
    }
    return NULL;
}

static uint64_t eventfd_p50(void)
{
    pthread_t t;
    pthread_attr_t attr;
    ew.n = n_wake;
    ew.lat = calloc((size_t)n_wake, sizeof *ew.lat);
    ew.efd = eventfd(0, 0);
    pin_attr(&attr, cpus[1]);
    pthread_create(&t, &attr, ew_target, NULL);
    bu_pin_self(cpus[0]); /* the sender on the other CPU: a wake-up across cores */
    struct timespec gap = {0, WAKE_GAP_NS};
    for (int i = 0; i < ew.n; i++) {
        while (!atomic_exchange(&ew.sleeping, 0))
            sched_yield();
        nanosleep(&gap, NULL); /* the target is in the kernel by now */
        atomic_store(&ew.t0, bu_now_ns());
        uint64_t one = 1;
        if (write(ew.efd, &one, sizeof one) != sizeof one)
            break;
    }
    pthread_join(t, NULL);
    pthread_attr_destroy(&attr);
    bu_pin_self(-1);
    close(ew.efd);
    uint64_t p50 = bu_quantile_u64(ew.lat, (size_t)ew.n, 0.5);
    free(ew.lat);
    return p50;
}

/* ---- the reactor side ----------------------------------------------------------------- */

struct results {
    uint64_t rtt_p50, rtt_p99, rtt_p999;
    uint64_t copy8_p50, copy64_p50;
    double calls_per_s, send_per_s;
    uint64_t wake_p50, wake_p99;
    uint64_t target_sleeps;
};

static struct {
    uint64_t *rtt;
    uint64_t *copy[2]; /* copy round trips: 8 and 64 bytes */
    int i;
    uint64_t t0;
    long issued, done;
    uint64_t calls_start, calls_ns;
    struct sn_promise *phase;
    long sent;
    uint64_t send_start;
    SN_CACHE_ALIGNED long received; /* core 1 */
    uint64_t send_end;              /* core 1 */
    uint64_t *wake;                 /* written by core 1 */
    int wi;
    struct results *out;
    struct sn_core_metrics ph[2][2]; /* [phase: calls, send][core]: deltas over the phase */
} st;

static bool verbose;
static bool quick; /* -q: only the busy phases (rtt, calls, send), no wake-ups, no idle run */

/* BENCH_VERBOSE: per-phase counters of both cores, to see how messages batch per turn. */
static void phase_mark(int phase, bool end)
{
    for (unsigned c = 0; verbose && c < 2; c++) {
        struct sn_core_metrics m;
        sn_metrics_core(c, &m);
        struct sn_core_metrics *d = &st.ph[phase][c];
        if (!end) {
            *d = m;
            continue;
        }
        d->msgs_in = m.msgs_in - d->msgs_in;
        d->msgs_out = m.msgs_out - d->msgs_out;
        d->loops = m.loops - d->loops;
        d->overflow = m.overflow - d->overflow;
        d->tasks = m.tasks - d->tasks;
    }
}

static void phase_print(void)
{
    static const char *const names[] = {"calls", "send"};
    for (int p = 0; verbose && p < 2; p++)
        for (unsigned c = 0; c < 2; c++) {
            const struct sn_core_metrics *d = &st.ph[p][c];
            printf("  %s phase, core %u: %lu in, %lu out, %lu turns (%.2f in/turn), "
                   "%lu overflowed, %lu tasks\n",
                   names[p], c, (unsigned long)d->msgs_in, (unsigned long)d->msgs_out,
                   (unsigned long)d->loops, d->loops ? (double)d->msgs_in / (double)d->loops : 0,
                   (unsigned long)d->overflow, (unsigned long)d->tasks);
        }
}

static struct sn_future *echo(void *arg)
{
    return sn_ready((uintptr_t)arg);
}

static struct sn_future *copy_echo(const void *req, size_t len, void *out, size_t cap)
{
    (void)out, (void)cap;
    return sn_ready(len ? *(const unsigned char *)req : 0);
}

/* One copy round trip after another; arg: 0 for 8 bytes, 1 for 64. */
static struct sn_future *copy_step(void *arg, uint64_t v)
{
    static const unsigned char payload[64] = {1};
    int which = (int)(uintptr_t)arg;
    (void)v;
    uint64_t t = bu_now_ns();
    if (st.i > 0)
        st.copy[which][st.i - 1] = t - st.t0;
    if (st.i++ == n_rtt)
        return SN_SUCCESS;
    st.t0 = bu_now_ns();
    return sn_then(sn_submit_copy(1, copy_echo, payload, which ? 64 : 8), copy_step, arg);
}

static struct sn_future *copy_phase(void *arg, uint64_t v)
{
    (void)v;
    st.i = 0;
    return copy_step(arg, 0);
}

static struct sn_future *rtt_step(void *arg, uint64_t v)
{
    (void)arg, (void)v;
    uint64_t t = bu_now_ns();
    if (st.i > 0)
        st.rtt[st.i - 1] = t - st.t0;
    if (st.i++ == n_rtt)
        return SN_SUCCESS;
    st.t0 = bu_now_ns();
    return sn_then(sn_submit_to(1, echo, NULL), rtt_step, NULL);
}

static void call_done(void *arg, int err, uint64_t v)
{
    (void)arg, (void)err, (void)v;
    if (++st.done == n_calls) {
        st.calls_ns = bu_now_ns() - st.calls_start;
        phase_mark(0, true);
        sn_promise_set(st.phase, 0);
    } else if (st.issued < n_calls) {
        st.issued++;
        sn_done(sn_submit_to(1, echo, NULL), call_done, NULL);
    }
}

static struct sn_future *calls_phase(void *arg, uint64_t v)
{
    (void)arg, (void)v;
    struct sn_future *f;
    st.phase = sn_promise_new(&f);
    st.issued = st.done = 0;
    phase_mark(0, false);
    st.calls_start = bu_now_ns();
    for (; st.issued < WINDOW && st.issued < n_calls; st.issued++)
        sn_done(sn_submit_to(1, echo, NULL), call_done, NULL);
    return f;
}

static void sent_all(void *arg)
{
    (void)arg;
    phase_mark(1, true);
    sn_promise_set(st.phase, 0);
}

static void count_one(void *arg)
{
    (void)arg;
    if (++st.received == n_sends) {
        st.send_end = bu_now_ns();
        sn_send(0, sent_all, NULL);
    }
}

/* Sends one chunk per loop turn; retries after -ENOBUFS (overflow limit reached). */
static struct sn_future *send_chunk(void *arg, uint64_t v)
{
    (void)arg, (void)v;
    long end = st.sent + SEND_CHUNK < n_sends ? st.sent + SEND_CHUNK : n_sends;
    while (st.sent < end) {
        int rc = sn_send(1, count_one, NULL);
        if (rc == -ENOBUFS)
            break;
        if (rc < 0)
            return sn_failed(rc);
        st.sent++;
    }
    if (st.sent < n_sends)
        return sn_then(sn_yield(), send_chunk, NULL);
    return SN_SUCCESS;
}

static struct sn_future *send_phase(void *arg, uint64_t v)
{
    (void)arg, (void)v;
    struct sn_future *f;
    st.phase = sn_promise_new(&f);
    st.sent = 0;
    st.received = 0;
    phase_mark(1, false);
    st.send_start = bu_now_ns();
    sn_ignore(send_chunk(NULL, 0));
    return f;
}

static void wake_sample(void *arg)
{
    st.wake[st.wi++] = bu_now_ns() - (uintptr_t)arg;
}

static struct sn_future *wake_step(void *arg, uint64_t v)
{
    int *k = arg;
    (void)v;
    if (*k == n_wake)
        return SN_SUCCESS;
    (*k)++;
    sn_send(1, wake_sample, (void *)(uintptr_t)bu_now_ns());
    return sn_then(sn_sleep(WAKE_GAP_NS), wake_step, arg);
}

static struct sn_future *wake_phase(void *arg, uint64_t v)
{
    static int k;
    (void)arg, (void)v;
    k = 0;
    return sn_then(sn_sleep(WAKE_GAP_NS), wake_step, &k);
}

static struct sn_future *bench_main(void *arg)
{
    (void)arg;
    st.i = 0;
    struct sn_future *f = rtt_step(NULL, 0);
    f = sn_then(f, copy_phase, (void *)0);
    f = sn_then(f, copy_phase, (void *)1);
    f = sn_then(f, calls_phase, NULL);
    return sn_then(f, send_phase, NULL);
}

static struct sn_future *wake_main(void *arg)
{
    (void)arg;
    return wake_phase(NULL, 0);
}

static int run_reactor(struct results *r)
{
    struct sn_config cfg;
    sn_config_init(&cfg);
    cfg.smp = 2;
    cfg.stall_ms = 0;
    if (no_sampling)
        cfg.delay_sample_every = SN_CONFIG_NO_DELAY_SAMPLE;
    memset(&st, 0, sizeof st);
    st.rtt = calloc((size_t)n_rtt, sizeof *st.rtt);
    st.copy[0] = calloc((size_t)n_rtt, sizeof *st.rtt);
    st.copy[1] = calloc((size_t)n_rtt, sizeof *st.rtt);
    st.wake = calloc((size_t)n_wake, sizeof *st.wake);
    int rc = sn_run(&cfg, bench_main, NULL);
    if (rc == 0)
        phase_print();
    /* Wake-ups in a run of their own, so the busy phases above leave no trace on the
     * target thread's scheduling (CPU time used, caches). */
    cfg.idle_poll_us = wake_idle_poll_us;
    if (rc == 0 && !quick)
        rc = sn_run(&cfg, wake_main, NULL);
    if (rc == 0) {
        r->rtt_p50 = bu_quantile_u64(st.rtt, (size_t)n_rtt, 0.5);
        r->rtt_p99 = bu_quantile_u64(st.rtt, (size_t)n_rtt, 0.99);
        r->rtt_p999 = bu_quantile_u64(st.rtt, (size_t)n_rtt, 0.999);
        r->copy8_p50 = bu_quantile_u64(st.copy[0], (size_t)n_rtt, 0.5);
        r->copy64_p50 = bu_quantile_u64(st.copy[1], (size_t)n_rtt, 0.5);
        r->calls_per_s = (double)n_calls * 1e9 / (double)st.calls_ns;
        r->send_per_s = (double)n_sends * 1e9 / (double)(st.send_end - st.send_start);
        r->wake_p50 = st.wi ? bu_quantile_u64(st.wake, (size_t)st.wi, 0.5) : 0;
        r->wake_p99 = st.wi ? bu_quantile_u64(st.wake, (size_t)st.wi, 0.99) : 0;
        struct sn_core_metrics m;
        sn_metrics_core(1, &m);
        r->target_sleeps = m.sleeps;
        bench_data_quantiles("bench_submit", "rtt", st.rtt, (size_t)n_rtt); /* sorted */
    }
    free(st.rtt);
    free(st.copy[0]);
    free(st.copy[1]);
    free(st.wake);
    return rc;
}

/* ---- idle CPU -------------------------------------------------------------------------- */

/* CPU time of every thread of this process, in ns (/proc/self/task/<tid>/schedstat). */
static uint64_t cpu_ns(void)
{
    DIR *d = opendir("/proc/self/task");
    uint64_t total = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[300];
        snprintf(path, sizeof path, "/proc/self/task/%s/schedstat", e->d_name);
        FILE *f = fopen(path, "r");
        unsigned long long ns = 0;
        if (f && fscanf(f, "%llu", &ns) == 1)
            total += ns;
        if (f)
            fclose(f);
    }
    if (d)
        closedir(d);
    return total;
}

static struct {
    uint64_t cpu0, wall0;
    double pct;
} idle;

static struct sn_future *idle_end(void *arg, uint64_t v)
{
    (void)arg, (void)v;
    idle.pct = 100.0 * (double)(cpu_ns() - idle.cpu0) / (double)(bu_now_ns() - idle.wall0);
    return SN_SUCCESS;
}

static struct sn_future *idle_start(void *arg, uint64_t v)
{
    (void)arg, (void)v;
    /* Core 0 reads /proc here, itself on a core: that short burst is part of the figure. */
    idle.wall0 = bu_now_ns();
    idle.cpu0 = cpu_ns();
    return sn_then(sn_sleep(2000000000ull), idle_end, NULL);
}

static struct sn_future *idle_main(void *arg)
{
    (void)arg;
    /* Start-up (hwloc discovery, ring set-up) is not idle time: settle first. */
    return sn_then(sn_sleep(200000000ull), idle_start, NULL);
}

/* CPU used by an idle 2-core reactor, as a percentage of one CPU, over 2 s of its life. */
static double idle_cpu_pct(void)
{
    struct sn_config cfg;
    sn_config_init(&cfg);
    cfg.smp = 2;
    if (sn_run(&cfg, idle_main, NULL) != 0)
        return -1;
    return idle.pct;
}

int main(int argc, char **argv)
{
    int opt;
    verbose = getenv("BENCH_VERBOSE") != NULL;
    while ((opt = getopt(argc, argv, "r:n:c:s:w:p:qS")) != -1) {
        switch (opt) {
        case 'r': n_rounds = atoi(optarg); break;
        case 'n': n_rtt = atoi(optarg); break;
        case 'c': n_calls = atol(optarg); break;
        case 's': n_sends = atol(optarg); break;
        case 'w': n_wake = atoi(optarg); break;
        case 'p': wake_idle_poll_us = (unsigned)atoi(optarg); break;
        case 'q': quick = true; break;
        case 'S': no_sampling = true; break;
        default:
            fprintf(stderr, "usage: bench_submit [-r rounds] [-n rtt] [-c calls] [-s sends] "
                            "[-w wakes] [-p idle_poll_us] [-q] [-S]\n");
            return 2;
        }
    }
    if (n_sends < 0)
        n_sends = n_calls;
    if (n_rounds < 1 || n_rounds > MAX_ROUNDS || n_rtt < 100 || n_calls < WINDOW || n_sends < 1 ||
        n_wake < 10) {
        fprintf(stderr, "bench_submit: bad parameters\n");
        return 2;
    }
    cpu_set_t allowed;
    sched_getaffinity(0, sizeof allowed, &allowed);
    for (int c = 0, k = 0; c < CPU_SETSIZE && k < 2; c++)
        if (CPU_ISSET(c, &allowed))
            cpus[k++] = c;

    printf("bench_submit: %d rounds, %d round trips, %ld calls (window %d), %ld sends, "
           "%d wake-ups, CPUs %d and %d\n",
           n_rounds, n_rtt, n_calls, WINDOW, n_sends, n_wake, cpus[0], cpus[1]);
    double r_rtt[MAX_ROUNDS], r_wake[MAX_ROUNDS], rtt[MAX_ROUNDS], ppv[MAX_ROUNDS];
    double calls[MAX_ROUNDS], sends[MAX_ROUNDS], wake[MAX_ROUNDS], efd[MAX_ROUNDS];
    double c8[MAX_ROUNDS], c64[MAX_ROUNDS], r_c8[MAX_ROUNDS], r_c64[MAX_ROUNDS];
    for (int r = 0; r < n_rounds; r++) {
        struct results res = {0};
        uint64_t pp50 = pingpong_p50();
        int rc = run_reactor(&res);
        if (rc != 0) {
            fprintf(stderr, "bench_submit: sn_run failed: %d\n", rc);
            return 1;
        }
        uint64_t e50 = quick ? 1 : eventfd_p50();
        printf("round %d: pingpong p50 %lu ns | rtt p50 %lu p99 %lu p999 %lu ns | "
               "copy8 p50 %lu copy64 p50 %lu ns | "
               "calls %.2fM/s | send %.2fM/s | wake p50 %lu p99 %lu ns (target slept %lu) | "
               "eventfd p50 %lu ns\n",
               r, (unsigned long)pp50, (unsigned long)res.rtt_p50, (unsigned long)res.rtt_p99,
               (unsigned long)res.rtt_p999, (unsigned long)res.copy8_p50,
               (unsigned long)res.copy64_p50, res.calls_per_s / 1e6, res.send_per_s / 1e6,
               (unsigned long)res.wake_p50, (unsigned long)res.wake_p99,
               (unsigned long)res.target_sleeps, (unsigned long)e50);
        fflush(stdout);
        ppv[r] = (double)pp50;
        rtt[r] = (double)res.rtt_p50;
        r_rtt[r] = (double)res.rtt_p50 / (double)pp50;
        c8[r] = (double)res.copy8_p50;
        c64[r] = (double)res.copy64_p50;
        r_c8[r] = (double)res.copy8_p50 / (double)res.rtt_p50;
        r_c64[r] = (double)res.copy64_p50 / (double)res.rtt_p50;
        calls[r] = res.calls_per_s;
        sends[r] = res.send_per_s;
        wake[r] = (double)res.wake_p50;
        efd[r] = (double)e50;
        r_wake[r] = (double)res.wake_p50 / (double)e50;
    }
    double idle_pct = quick ? 0 : idle_cpu_pct();
    printf("idle 2-core reactor for 2 s: %.3f%% of one CPU\n", idle_pct);
    printf("summary: rtt_ns=%.0f pingpong_ns=%.0f rtt_vs_pingpong=%.2f copy8_rtt_ns=%.0f "
           "copy64_rtt_ns=%.0f copy8_vs_rtt=%.2f copy64_vs_rtt=%.2f calls_per_s=%.0f "
           "send_per_s=%.0f wake_p50_ns=%.0f eventfd_wake_p50_ns=%.0f wake_vs_eventfd=%.2f "
           "idle_cpu_pct=%.3f\n",
           bu_median(rtt, n_rounds), bu_median(ppv, n_rounds), bu_median(r_rtt, n_rounds),
           bu_median(c8, n_rounds), bu_median(c64, n_rounds), bu_median(r_c8, n_rounds),
           bu_median(r_c64, n_rounds), bu_median(calls, n_rounds), bu_median(sends, n_rounds),
           bu_median(wake, n_rounds), bu_median(efd, n_rounds), bu_median(r_wake, n_rounds),
           idle_pct);
    return 0;
}
