/*
 * bench_mesh_scale: what one loop turn of a core costs as the mesh grows to core counts this
 * machine does not have (issue 17; Seastar's poll cost grew with the shard count, its
 * #986/#987/#996). A model, measured: for N = 2, 8, 32, 128 and SN_MESH_MAX_CORES, the bench
 * builds the real mesh of N cores (every one of the N*(N-1) rings, with the default ring
 * capacity) and one real reactor core on it, core 0 with its own io_uring, and runs that
 * core's loop turn (reactor/loop.c, sn__loop_turn) on this thread. The other N-1 cores have
 * no thread: their rings exist and stay quiet, which is what an idle core sees of them.
 *
 *   idle_ns   one turn of core 0 with nothing to do: the mesh drain, the external inbox, the
 *             run queue, the mesh flush, the io_uring submit-and-reap check, the timers and
 *             the idle clock (the loop never sleeps here: its idle-poll time is unbounded);
 *   drain_ns  sn_mesh_drain alone on that idle core (the doorbell check);
 *   busy_ns   one busy sender among the N: core N-1 (the last doorbell word, the farthest
 *             from core 0's first) sends one message to core 0 and flushes, then core 0 turns
 *             and handles it; the cost of the send, the flush and the turn together;
 *   mem       bytes the mesh allocated (glibc mallinfo2: every ring, doorbell and core
 *             array), in total and per core, and the ring capacity the mesh chose.
 *
 * The goal: the idle turn at the largest N within 1.2x of N = 2 (idle_turn_ratio), and the
 * same for the busy turn. The machine is shared and noisy, so every N runs once per round,
 * interleaved, and each figure is the median over rounds; ratios are medians of per-round
 * ratios against N = 2 in the same round.
 *
 * Usage: bench_mesh_scale [-r rounds] [-c cpu] [-m max_cores]
 */
#include <sn.h>

#include "core/mesh_internal.h"
#include "reactor/core.h"

#include "bench_util.h"

#include <getopt.h>
#include <malloc.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_ROUNDS 31
#define TARGET_NS  5000000.0 /* each timed run lasts about this long */
#define NMODELS    5

struct model {
    unsigned n;
    struct sn_mesh *mesh;
    struct sn__rt rt;
    struct sn__core *core; /* core 0, the measured one */
    struct sn__core **cores;
    size_t mesh_bytes;
    uint32_t ring_capacity;
    uint64_t idle_turns, busy_turns, drains; /* per timed run, calibrated */
    double idle[MAX_ROUNDS], busy[MAX_ROUNDS], drain[MAX_ROUNDS];
};

static uint64_t handled;

static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static void on_msg(const struct sn_msg *msg, unsigned from)
{
    (void)from;
    handled += msg->value;
}

/* The measured core, set up as reactor/run.c sets up a core (no waker: it never sleeps). */
static int model_init(struct model *m, unsigned n)
{
    m->n = n;
    size_t before = heap_in_use();
    struct sn_mesh_config mc = {.ncores = n};
    int rc = sn_mesh_create(&mc, &m->mesh);
    if (rc < 0)
        return rc;
    m->mesh_bytes = heap_in_use() - before;
    m->ring_capacity = sn_ring_capacity(m->mesh->rings[1]);
    m->cores = calloc(n, sizeof *m->cores);
    m->core = aligned_alloc(SN_CACHELINE, sizeof *m->core);
    if (!m->cores || !m->core)
        return -ENOMEM;
    memset(m->core, 0, sizeof *m->core);
    struct sn__core *c = m->core;
    m->rt.ncores = n;
    m->rt.mesh = m->mesh;
    m->rt.cores = m->cores;
    m->cores[0] = c;
    c->id = 0;
    c->rt = &m->rt;
    c->mesh = m->mesh;
    c->deferred_tail = &c->deferred_head;
    /* The stall detector as in a default run (its CPU-clock checkpoints: no signal here). */
    sn__stall_start(&c->stall, (uint64_t)SN_CONFIG_DEFAULT_STALL_MS * 1000000u, false);
    c->idle_poll_ns = UINT64_MAX; /* never sleeps */
    c->io_poll_ns = UINT64_MAX;
    rc = sn__sched_init(&c->sched, 0, NULL);
    if (rc == 0)
        rc = sn__uring_init(&c->uring, 256, 0);
    if (rc < 0)
        return rc;
    c->uring_ok = true;
    c->sched.owner = c;
    return 0;
}

static void model_free(struct model *m)
{
    if (m->core) {
        sn__stall_stop(&m->core->stall);
        if (m->core->uring_ok)
            sn__uring_exit(&m->core->uring);
        sn__sched_destroy(&m->core->sched);
    }
    free(m->core);
    free(m->cores);
    sn_mesh_destroy(m->mesh);
}

static double run_idle(struct model *m, uint64_t turns)
{
    struct sn__core *c = m->core;
    sn__sched_bind(&c->sched, m->n);
    double t0 = bu_thread_cpu_ns();
    for (uint64_t i = 0; i < turns; i++)
        sn__loop_turn(c);
    double t = bu_thread_cpu_ns() - t0;
    sn__sched_bind(NULL, 0);
    return t / (double)turns;
}

static double run_drain(struct model *m, uint64_t drains)
{
    unsigned got = 0;
    double t0 = bu_thread_cpu_ns();
    for (uint64_t i = 0; i < drains; i++)
        got += sn_mesh_drain(m->mesh, 0, 4096);
    double t = bu_thread_cpu_ns() - t0;
    handled += got;
    return t / (double)drains;
}

/* Core N-1 sends one message to core 0 and flushes; core 0 turns and handles it. */
static double run_busy(struct model *m, uint64_t turns)
{
    struct sn__core *c = m->core;
    unsigned from = m->n - 1;
    struct sn_msg msg = {.fn = on_msg, .value = 1};
    uint64_t before = handled;
    sn__sched_bind(&c->sched, m->n);
    double t0 = bu_thread_cpu_ns();
    for (uint64_t i = 0; i < turns; i++) {
        sn_mesh_send(m->mesh, from, 0, &msg);
        sn_mesh_flush(m->mesh, from, NULL, NULL);
        sn__loop_turn(c);
    }
    double t = bu_thread_cpu_ns() - t0;
    sn__sched_bind(NULL, 0);
    if (handled - before != turns) {
        fprintf(stderr, "N=%u: %llu messages handled of %llu sent\n", m->n,
                (unsigned long long)(handled - before), (unsigned long long)turns);
        exit(1);
    }
    return t / (double)turns;
}

/* Iterations that make a timed run last about TARGET_NS. */
static uint64_t calibrate(struct model *m, double (*run)(struct model *, uint64_t))
{
    uint64_t iters = 1000;
    for (;;) {
        double per = run(m, iters);
        if (per * (double)iters >= TARGET_NS / 4 || iters >= (1ull << 28))
            return (uint64_t)(TARGET_NS / (per > 0 ? per : 1)) + 1;
        iters *= 4;
    }
}

int main(int argc, char **argv)
{
    int rounds = 7, cpu = -1, opt;
    unsigned max_cores = SN_MESH_MAX_CORES;
    while ((opt = getopt(argc, argv, "r:c:m:")) != -1) {
        if (opt == 'r')
            rounds = atoi(optarg);
        else if (opt == 'c')
            cpu = atoi(optarg);
        else if (opt == 'm')
            max_cores = (unsigned)atoi(optarg);
        else {
            fprintf(stderr, "usage: %s [-r rounds] [-c cpu] [-m max_cores]\n", argv[0]);
            return 2;
        }
    }
    if (rounds < 1 || rounds > MAX_ROUNDS || max_cores <= 128 || max_cores > SN_MESH_MAX_CORES) {
        fprintf(stderr, "rounds must be 1..%d, max_cores 129..%u\n", MAX_ROUNDS, SN_MESH_MAX_CORES);
        return 2;
    }
    if (cpu < 0) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        cpu = ncpu > 1 ? (int)ncpu - 1 : 0;
    }
    bu_pin_self_or_exit(cpu);

    const unsigned ns[NMODELS] = {2, 8, 32, 128, max_cores};
    static struct model models[NMODELS];
    for (int i = 0; i < NMODELS; i++) {
        int rc = model_init(&models[i], ns[i]);
        if (rc < 0) {
            fprintf(stderr, "N=%u: %s\n", ns[i], sn_strerror(rc));
            return 1;
        }
    }
    for (int i = 0; i < NMODELS; i++) {
        models[i].idle_turns = calibrate(&models[i], run_idle);
        models[i].busy_turns = calibrate(&models[i], run_busy);
        models[i].drains = calibrate(&models[i], run_drain);
    }
    printf("bench_mesh_scale: pinned to cpu %d, %d rounds, ~%.0f ms per run, one real core on a "
           "mesh of N cores (the others quiet, no threads)\n",
           cpu, rounds, TARGET_NS / 1e6);

    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < NMODELS; k++) {
            /* Rotate the order of the models per round, so none always runs first. */
            struct model *m = &models[(k + r) % NMODELS];
            m->idle[r] = run_idle(m, m->idle_turns);
            m->drain[r] = run_drain(m, m->drains);
            m->busy[r] = run_busy(m, m->busy_turns);
        }
    }

    const struct model *two = &models[0], *top = &models[NMODELS - 1];
    printf("%6s %9s %9s %9s %9s %9s %8s %11s %12s\n", "N", "idle_ns", "ratio", "drain_ns",
           "busy_ns", "ratio", "ring_cap", "mesh_MiB", "KiB_per_core");
    for (int i = 0; i < NMODELS; i++) {
        const struct model *m = &models[i];
        printf("%6u %9.2f %9.3f %9.2f %9.2f %9.3f %8u %11.1f %12.1f\n", m->n,
               bu_median(m->idle, rounds), bu_median_ratio(m->idle, two->idle, rounds),
               bu_median(m->drain, rounds), bu_median(m->busy, rounds),
               bu_median_ratio(m->busy, two->busy, rounds), m->ring_capacity,
               (double)m->mesh_bytes / (1 << 20), (double)m->mesh_bytes / m->n / 1024);
    }
    double idle_ratio = bu_median_ratio(top->idle, two->idle, rounds),
           busy_ratio = bu_median_ratio(top->busy, two->busy, rounds);
    printf("(ratio: against N = 2, median of per-round ratios; mem: every allocation of "
           "sn_mesh_create, per core = total / N)\n");
    printf("target: idle turn at N=%u within 1.2x of N=2: %s (%.3f); busy turn: %s (%.3f)\n",
           top->n, idle_ratio <= 1.2 ? "met" : "MISSED", idle_ratio,
           busy_ratio <= 1.2 ? "met" : "MISSED", busy_ratio);
    printf("summary: idle_turn_ns_2=%.2f idle_turn_ns_max=%.2f idle_turn_ratio=%.3f max_cores=%u "
           "busy_turn_ns_2=%.2f busy_turn_ns_max=%.2f busy_turn_ratio=%.3f "
           "mesh_kib_per_core_2=%.1f mesh_kib_per_core_max=%.1f rounds=%d\n",
           bu_median(two->idle, rounds), bu_median(top->idle, rounds), idle_ratio, top->n,
           bu_median(two->busy, rounds), bu_median(top->busy, rounds), busy_ratio,
           (double)two->mesh_bytes / two->n / 1024, (double)top->mesh_bytes / top->n / 1024,
           rounds);
    for (int i = 0; i < NMODELS; i++)
        model_free(&models[i]);
    return 0;
}
