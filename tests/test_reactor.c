/*
 * The reactor's loop and life cycle: exit codes, sn_stop from every kind of thread, signals,
 * sleep and wake-up (by messages, by external threads, by timers), shutdown under load, and
 * the io_uring/eventfd fallbacks (the stall detector: test_stall.c). No timed assertions: a lost wake-up
 * shows as a watchdog firing (exit code 99) or the test's timeout.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <signal.h>
#include <sn.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "reactor_util.h"

#define WATCHDOG_NS (60ull * 1000000000)

/* A timer on core 0 that ends a stuck run with exit code 99. */
static struct sn_timer watchdog;
static void watchdog_fire(void *arg)
{
    (void)arg;
    sn_stop(99);
}

static void arm_watchdog(void)
{
    sn_timer_init(&watchdog, watchdog_fire, NULL);
    sn_timer_arm(&watchdog, WATCHDOG_NS);
}

/* ---- exit codes and stop ---------------------------------------------------------- */

static struct sn_future *main_ready(void *arg)
{
    return sn_ready((uintptr_t)arg);
}

static struct sn_future *main_fails(void *arg)
{
    (void)arg;
    return sn_failed(-EIO);
}

static void stop_five(void *arg)
{
    (void)arg;
    sn_stop(5);
}

static struct sn_future *main_remote_stop(void *arg)
{
    (void)arg;
    sn_send(sn_core_count() - 1, stop_five, NULL);
    return sn_when_stopped(); /* keep running until sn_stop */
}

Test(reactor, exit_codes, .timeout = 60)
{
    struct sn_config cfg = test_config(2);
    cr_assert_eq(sn_run(&cfg, main_ready, (void *)(uintptr_t)7), 7);
    cr_assert_eq(sn_run(&cfg, main_ready, (void *)(uintptr_t)0), 0);
    cr_assert_eq(sn_run(&cfg, main_fails, NULL), 1);
    cr_assert_eq(sn_run(&cfg, main_remote_stop, NULL), 5);
    cfg.smp = 1;
    cr_assert_eq(sn_run(&cfg, main_remote_stop, NULL), 5);
    cr_assert_eq(sn_run(&cfg, NULL, NULL), -EINVAL);
    cr_assert_eq(sn_core_count(), 0);
    cr_assert_eq(sn_stopping(), false);
}

Test(reactor, bad_config, .timeout = 30)
{
    struct sn_config cfg = test_config(2);
    cfg.unpinned = false;
    cfg.smp = 4096;
    cr_assert_eq(sn_run(&cfg, main_ready, NULL), -EINVAL);
}

static pthread_t stopper;
static _Atomic bool stopper_saw_sleep;

/* True once every one of the n cores has blocked in io_uring at least once. */
static bool all_cores_slept(unsigned n)
{
    for (unsigned c = 0; c < n; c++) {
        struct sn_core_metrics m;
        if (sn_metrics_core(c, &m) < 0 || m.sleeps == 0)
            return false;
    }
    return true;
}

/* Stops the reactor from a thread of its own once the cores sleep (10 s at the most). */
static void *stop_from_thread(void *arg)
{
    unsigned n = (unsigned)(uintptr_t)arg;
    struct timespec ms = {0, 1000000}, t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        nanosleep(&ms, NULL);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (!all_cores_slept(n) && t.tv_sec - t0.tv_sec < 10);
    atomic_store(&stopper_saw_sleep, all_cores_slept(n));
    sn_stop(42);
    return NULL;
}

static struct sn_future *main_external_stop(void *arg)
{
    (void)arg;
    arm_watchdog();
    pthread_create(&stopper, NULL, stop_from_thread, (void *)(uintptr_t)sn_core_count());
    return sn_when_stopped();
}

Test(reactor, stop_from_external_thread, .timeout = 60)
{
    for (unsigned n = 1; n <= 8; n *= 2) {
        struct sn_config cfg = test_config(n);
        cfg.idle_poll_us = 0; /* every core asleep when the stop comes */
        atomic_store(&stopper_saw_sleep, false);
        cr_assert_eq(sn_run(&cfg, main_external_stop, NULL), 42, "%u cores", n);
        pthread_join(stopper, NULL);
        cr_assert(atomic_load(&stopper_saw_sleep), "%u cores: every core slept before the stop", n);
    }
}

static void raise_term(void *arg)
{
    (void)arg;
    kill(getpid(), SIGTERM);
}

static struct sn_future *main_signal(void *arg)
{
    (void)arg;
    arm_watchdog();
    sn_send(sn_core_count() - 1, raise_term, NULL);
    return sn_when_stopped();
}

Test(reactor, sigterm_stops_gracefully, .timeout = 60)
{
    struct sn_config cfg = test_config(2);
    cr_assert_eq(sn_run(&cfg, main_signal, NULL), 128 + SIGTERM);
}

/* ---- sleep and wake-up ------------------------------------------------------------- */

struct pingpong {
    uint64_t left, done, bad;
    unsigned target;
};
static struct pingpong pp;

static struct sn_future *pong(void *arg)
{
    return sn_ready((uintptr_t)arg + 1);
}

static void ping(void *arg, int err, uint64_t value);

static void send_ping(void)
{
    uint64_t i = pp.done;
    sn_done(sn_submit_to(pp.target, pong, (void *)(uintptr_t)i), ping, (void *)(uintptr_t)i);
}

static void ping(void *arg, int err, uint64_t value)
{
    if (err || value != (uintptr_t)arg + 1)
        pp.bad++;
    pp.done++;
    if (--pp.left == 0)
        sn_stop(0);
    else
        send_ping();
}

static struct sn_future *main_pingpong(void *arg)
{
    (void)arg;
    arm_watchdog();
    pp.target = sn_core_count() - 1;
    send_ping();
    return sn_when_stopped();
}

/* Sequential round trips with no idle polling: the target sleeps before each request. */
static void run_pingpong(unsigned ncores, uint64_t rounds, bool fallback)
{
    struct sn_config cfg = test_config(ncores);
    cfg.idle_poll_us = 0;
    cfg.uring_fallback = fallback;
    cfg.wake_eventfd = fallback;
    memset(&pp, 0, sizeof pp);
    pp.left = rounds;
    cr_assert_eq(sn_run(&cfg, main_pingpong, NULL), 0, "watchdog: a wake-up was lost");
    cr_assert_eq(pp.done, rounds);
    cr_assert_eq(pp.bad, 0);
    struct sn_core_metrics m0, m1;
    cr_assert_eq(sn_metrics_core(0, &m0), 0);
    cr_assert_eq(sn_metrics_core(ncores - 1, &m1), 0);
    cr_assert_gt(m1.sleeps, 0, "the target slept");
    fprintf(stderr, "pingpong %u cores: target slept %lu times, core 0 sent %lu wake-ups\n",
                ncores, (unsigned long)m1.sleeps, (unsigned long)m0.wakeups_sent);
    if (ncores > 1)
        cr_assert_gt(m0.wakeups_sent, 0);
}

Test(reactor, sleep_wake_by_messages_2, .timeout = 120)
{
    run_pingpong(2, SCALE(100000, 20), false);
}

Test(reactor, sleep_wake_by_messages_8, .timeout = 120)
{
    run_pingpong(8, SCALE(20000, 20), false);
}

Test(reactor, sleep_wake_eventfd_plain_uring, .timeout = 120)
{
    run_pingpong(2, SCALE(20000, 20), true);
}

/* External threads waking sleeping cores. */
struct ext_run {
    sem_t sem;
    uint64_t rounds, done, timeouts, rejected;
    pthread_t thread;
};
static struct ext_run ext;

static void ext_fn(void *arg)
{
    (void)arg;
    sem_post(&ext.sem);
}

static void *ext_thread(void *arg)
{
    (void)arg;
    unsigned n = sn_core_count();
    for (uint64_t i = 0; i < ext.rounds; i++) {
        if (sn_submit_external((unsigned)(i % n), ext_fn, NULL) != 0) {
            ext.rejected++;
            break;
        }
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += 10;
        if (sem_timedwait(&ext.sem, &dl) != 0) {
            ext.timeouts++;
            break;
        }
        ext.done++;
    }
    sn_stop(0);
    return NULL;
}

static struct sn_future *main_external(void *arg)
{
    (void)arg;
    arm_watchdog();
    pthread_create(&ext.thread, NULL, ext_thread, NULL);
    return sn_when_stopped();
}

Test(reactor, sleep_wake_by_external_threads, .timeout = 120)
{
    for (unsigned n = 1; n <= 4; n *= 2) {
        struct sn_config cfg = test_config(n);
        cfg.idle_poll_us = 0;
        memset(&ext, 0, sizeof ext);
        sem_init(&ext.sem, 0, 0);
        ext.rounds = SCALE(100000, 20) / n;
        cr_assert_eq(sn_run(&cfg, main_external, NULL), 0);
        pthread_join(ext.thread, NULL);
        sem_destroy(&ext.sem);
        cr_assert_eq(ext.timeouts, 0, "a wake-up from an external thread was lost");
        cr_assert_eq(ext.rejected, 0);
        cr_assert_eq(ext.done, ext.rounds);
    }
    cr_assert_eq(sn_submit_external(0, ext_fn, NULL), -ECANCELED, "no reactor runs");
}

/* ---- timers on a running reactor ------------------------------------------------------ */

struct tstate {
    struct sn_timer periodic;
    uint64_t armed_at[3];
    uint64_t fired_at[3];
    int order[3];
    int nfired;
    int periodic_hits;
    struct sn_promise *fifth; /* settled by the fifth periodic fire */
    int early;
} SN_CACHE_ALIGNED;
static struct tstate ts_[MAXC];

static struct sn_future *timers_done(void *arg, uint64_t v)
{
    (void)v;
    struct tstate *t = arg;
    (void)t;
    return SN_SUCCESS;
}

static void on_periodic(void *arg)
{
    struct tstate *t = arg;
    if (++t->periodic_hits == 5) {
        sn_timer_cancel(&t->periodic);
        sn_promise_set(t->fifth, 0);
    }
}

static struct sn_future *slept(void *arg, uint64_t v)
{
    (void)v;
    struct tstate *t = &ts_[sn_core_id()];
    int i = (int)(uintptr_t)arg;
    t->fired_at[i] = sn_now_ns();
    t->order[t->nfired++] = i;
    return SN_SUCCESS;
}

static struct sn_future *timers_on_core(void *arg)
{
    (void)arg;
    struct tstate *t = &ts_[sn_core_id()];
    static const uint64_t delays[3] = {9000000, 3000000, 6000000};
    struct sn_future *fs[4];
    sn_timer_init(&t->periodic, on_periodic, t);
    t->fifth = sn_promise_new(&fs[3]);
    sn_timer_arm_periodic(&t->periodic, 1000000);
    for (int i = 0; i < 3; i++) {
        t->armed_at[i] = sn_now_ns();
        fs[i] = sn_then(sn_sleep(delays[i]), slept, (void *)(uintptr_t)i);
    }
    /* No count of periods is promised in a given time (a late core skips missed ones), so
     * wait for the fifth fire rather than assume it came within the sleeps. */
    return sn_then(sn_when_all(fs, 4, NULL), timers_done, t);
}

static struct sn_future *main_timers(void *arg)
{
    (void)arg;
    return sn_invoke_on_all(timers_on_core, NULL);
}

static struct sn_future *wait_periodic(void *arg, uint64_t v);

Test(reactor, timers_fire_in_order_and_bound_sleep, .timeout = 60)
{
    (void)wait_periodic;
    struct sn_config cfg = test_config(4);
    cfg.idle_poll_us = 0; /* cores sleep: only the timer deadline wakes them */
    memset(ts_, 0, sizeof ts_);
    cr_assert_eq(sn_run(&cfg, main_timers, NULL), 4);
    static const uint64_t delays[3] = {9000000, 3000000, 6000000};
    for (int c = 0; c < 4; c++) {
        struct tstate *t = &ts_[c];
        cr_assert_eq(t->nfired, 3);
        cr_assert_eq(t->order[0], 1);
        cr_assert_eq(t->order[1], 2);
        cr_assert_eq(t->order[2], 0);
        for (int i = 0; i < 3; i++)
            cr_assert_geq(t->fired_at[i] - t->armed_at[i], delays[i], "fired early");
        cr_assert_eq(t->periodic_hits, 5, "cancelled from its own callback at the fifth");
    }
}

static struct sn_future *wait_periodic(void *arg, uint64_t v)
{
    (void)arg, (void)v;
    return SN_SUCCESS;
}

/* ---- shutdown under load ------------------------------------------------------------ */

#define CHAINS      64
#define LOAD_ROUNDS 4 /* round trips of each chain of core 0 before the stop */
struct load {
    uint64_t issued, ok, cancelled, other_err, double_settle;
    uint8_t inflight[CHAINS];
} SN_CACHE_ALIGNED;
static struct load load[MAXC];

static struct sn_future *after_slow(void *arg, uint64_t v)
{
    (void)v;
    return sn_ready((uintptr_t)arg);
}

static struct sn_future *slow_echo(void *arg)
{
    uintptr_t x = (uintptr_t)arg;
    if (x % 4 == 0)
        return sn_then(sn_sleep(100000), after_slow, arg);
    return sn_ready(x);
}

static void chain_step(void *arg, int err, uint64_t value);

static void chain_issue(unsigned slot, uint64_t seq)
{
    struct load *l = &load[sn_core_id()];
    unsigned n = sn_core_count();
    uintptr_t x = (uintptr_t)(seq * CHAINS + slot);
    l->issued++;
    l->inflight[slot] = 1;
    sn_done(sn_submit_to((unsigned)(seq + slot) % n, slow_echo, (void *)x), chain_step, (void *)x);
}

static void chain_step(void *arg, int err, uint64_t value)
{
    struct load *l = &load[sn_core_id()];
    uintptr_t x = (uintptr_t)arg;
    unsigned slot = (unsigned)(x % CHAINS);
    if (!l->inflight[slot])
        l->double_settle++;
    l->inflight[slot] = 0;
    if (err == -ECANCELED) {
        l->cancelled++;
        return;
    }
    if (err || value != x) {
        l->other_err++;
        return;
    }
    l->ok++;
    chain_issue(slot, x / CHAINS + 1);
}

static struct sn_future *start_chains(void *arg)
{
    (void)arg;
    for (unsigned s = 0; s < CHAINS; s++)
        chain_issue(s, 0);
    return SN_SUCCESS;
}

static struct sn_future *stop_now(void *arg, uint64_t v)
{
    (void)arg, (void)v;
    sn_stop(0);
    return SN_SUCCESS;
}

/* On core 0: its chains (which visit every core) have each come back a few times. */
static bool load_flowing(void *arg)
{
    (void)arg;
    return load[0].ok >= LOAD_ROUNDS * CHAINS;
}

static struct sn_future *main_load(void *arg)
{
    (void)arg;
    sn_ignore(sn_invoke_on_all(start_chains, NULL));
    return sn_then(ru_poll_until(load_flowing, NULL, 10000), stop_now, NULL);
}

Test(reactor, shutdown_under_load_settles_everything_once, .timeout = 120)
{
    for (unsigned n = 1; n <= 8; n *= 2) {
        struct sn_config cfg = test_config(n);
        memset(load, 0, sizeof load);
        cr_assert_eq(sn_run(&cfg, main_load, NULL), 0);
        cr_assert_geq(load[0].ok, LOAD_ROUNDS * CHAINS, "%u cores: the stop came under load", n);
        for (unsigned c = 0; c < n; c++) {
            struct load *l = &load[c];
            cr_expect_eq(l->double_settle, 0, "core %u", c);
            cr_expect_eq(l->other_err, 0, "core %u", c);
            cr_expect_eq(l->issued, l->ok + l->cancelled, "core %u: issued %lu, settled %lu",
                         c, (unsigned long)l->issued, (unsigned long)(l->ok + l->cancelled));
            for (unsigned s = 0; s < CHAINS; s++)
                cr_expect_eq(l->inflight[s], 0);
            struct sn_core_metrics m;
            cr_assert_eq(sn_metrics_core(c, &m), 0);
            cr_expect_eq(m.pool_in_use, 0, "core %u leaked %lu pooled objects", c,
                         (unsigned long)m.pool_in_use);
        }
    }
}

/* ---- io_uring operations with callbacks (reactor/io.h) ------------------------------ */

#include "reactor/io.h"

struct io_probe {
    struct sn__io_op op;
    int res;
    int calls;
    unsigned core;
    struct __kernel_timespec ts;
} SN_CACHE_ALIGNED;
static struct io_probe nops[MAXC], long_timeouts[MAXC];

static void io_done(struct sn__io_op *op, int res, uint32_t flags)
{
    struct io_probe *p = (struct io_probe *)op;
    (void)flags;
    p->res = res;
    p->calls++;
    p->core = sn_core_id();
}

static bool nop_completed(void *probe)
{
    return ((struct io_probe *)probe)->calls > 0;
}

static struct sn_future *start_io(void *arg)
{
    (void)arg;
    unsigned me = sn_core_id();
    struct io_uring_sqe *sqe = sn__sqe_get();
    if (!sqe)
        return sn_failed(-EBUSY);
    sn__io_op_init(&nops[me].op, io_done);
    io_uring_prep_nop(sqe);
    sn__sqe_bind(sqe, &nops[me].op);
    /* A timeout far in the future: only the shutdown's cancellation can end it. */
    sqe = sn__sqe_get();
    if (!sqe)
        return sn_failed(-EBUSY);
    sn__io_op_init(&long_timeouts[me].op, io_done);
    long_timeouts[me].ts.tv_sec = 3600;
    io_uring_prep_timeout(sqe, &long_timeouts[me].ts, 0, 0);
    sn__sqe_bind(sqe, &long_timeouts[me].op);
    return ru_poll_until(nop_completed, &nops[me], 10000);
}

static struct sn_future *main_io(void *arg)
{
    (void)arg;
    arm_watchdog();
    return sn_then(sn_invoke_on_all(start_io, NULL), stop_now, NULL);
}

Test(reactor, io_callbacks_and_cancel_at_stop, .timeout = 60)
{
    for (unsigned n = 1; n <= 2; n++) {
        struct sn_config cfg = test_config(n);
        memset(nops, 0, sizeof nops);
        memset(long_timeouts, 0, sizeof long_timeouts);
        cr_assert_eq(sn_run(&cfg, main_io, NULL), 0, "watchdog: io kept the core busy");
        for (unsigned c = 0; c < n; c++) {
            cr_assert_eq(nops[c].calls, 1);
            cr_assert_eq(nops[c].res, 0);
            cr_assert_eq(nops[c].core, c);
            cr_assert_eq(long_timeouts[c].calls, 1);
            cr_assert_eq(long_timeouts[c].res, -ECANCELED);
            cr_assert_eq(long_timeouts[c].core, c);
            struct sn_core_metrics m;
            cr_assert_eq(sn_metrics_core(c, &m), 0);
            cr_assert_geq(m.cqes, 2);
        }
    }
}

/* ---- the mesh overflow limit from sn_config ------------------------------------------------ */

static _Atomic int ov_spinning, ov_release;
static _Atomic unsigned ov_ran;
static unsigned ov_ok, ov_first_err_at;
static int ov_err;

#define OV_SENDS 3000u

/* Keeps core 1 busy (bounded) so that core 0's messages fill the ring and then the overflow. */
static void ov_spin(void *arg)
{
    (void)arg;
    atomic_store(&ov_spinning, 1);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do
        clock_gettime(CLOCK_MONOTONIC, &t);
    while (!atomic_load(&ov_release) && t.tv_sec - t0.tv_sec < 10);
}

static void ov_count(void *arg)
{
    (void)arg;
    atomic_fetch_add(&ov_ran, 1);
}

/* Core 1 has run every message core 0's sends were accepted with. */
static bool ov_all_ran(void *arg)
{
    (void)arg;
    return atomic_load(&ov_ran) == ov_ok;
}

static struct sn_future *ov_send_all(void *arg, int err, uint64_t value)
{
    (void)arg, (void)err, (void)value;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do
        clock_gettime(CLOCK_MONOTONIC, &t);
    while (!atomic_load(&ov_spinning) && t.tv_sec - t0.tv_sec < 10);
    for (unsigned i = 0; i < OV_SENDS; i++) {
        int rc = sn_send(1, ov_count, NULL);
        if (rc == 0) {
            ov_ok++;
        } else if (!ov_err) {
            ov_err = rc;
            ov_first_err_at = i;
        }
    }
    atomic_store(&ov_release, 1);
    return ru_poll_until(ov_all_ran, NULL, 10000);
}

static struct sn_future *ov_main(void *arg)
{
    (void)arg;
    if (sn_send(1, ov_spin, NULL) < 0)
        return sn_ready(2);
    return sn_then_wrapped(sn_sleep(1000000), ov_send_all, NULL);
}

static int ov_run(size_t limit)
{
    atomic_store(&ov_spinning, 0);
    atomic_store(&ov_release, 0);
    atomic_store(&ov_ran, 0);
    ov_ok = ov_first_err_at = 0;
    ov_err = 0;
    struct sn_config cfg = test_config(2);
    cfg.mesh_overflow_limit = limit;
    return sn_run(&cfg, ov_main, NULL);
}

Test(reactor, mesh_overflow_limit_from_config, .timeout = 60)
{
    /* A limit of 16 messages: once the ring to the busy core is full, 16 more wait in the
     * overflow and the next send fails. */
    cr_assert_eq(ov_run(16), 0);
    cr_assert_eq(ov_err, -ENOBUFS, "sn_send past the limit: %d", ov_err);
    cr_assert_lt(ov_ok, OV_SENDS);
    cr_assert_geq(ov_ok, 16u, "the overflow took its %u messages (ok %u)", 16u, ov_ok);
    cr_assert_leq(ov_ok, SN_MESH_DEFAULT_RING_CAPACITY + 16u + 1, "ok %u", ov_ok);
    cr_assert_eq(atomic_load(&ov_ran), ov_ok, "every accepted message ran");
    /* 0 is the default limit (4 Mi): every send is taken. */
    cr_assert_eq(ov_run(0), 0);
    cr_assert_eq(ov_err, 0, "%d at %u", ov_err, ov_first_err_at);
    cr_assert_eq(ov_ok, OV_SENDS);
    cr_assert_eq(atomic_load(&ov_ran), ov_ok, "every accepted message ran");
}

/* ---- open-file limit ---------------------------------------------------------------- */

/* Runs one core with the soft RLIMIT_NOFILE lowered to 64 and returns the soft limit sn_run
 * left; restores the limit the test started with. */
static rlim_t soft_nofile_after_run(bool keep)
{
    struct rlimit before, low, after;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &before), 0);
    if (before.rlim_max <= 64)
        cr_skip_test("hard RLIMIT_NOFILE is only %llu", (unsigned long long)before.rlim_max);
    low = (struct rlimit){64, before.rlim_max};
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    struct sn_config cfg = test_config(1);
    cfg.keep_nofile_limit = keep;
    int rc = sn_run(&cfg, main_ready, (void *)(uintptr_t)3);
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &after), 0);
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &before), 0);
    cr_assert_eq(rc, 3);
    cr_assert_eq(after.rlim_max, before.rlim_max, "the hard limit must not change");
    return after.rlim_cur;
}

Test(reactor, run_raises_soft_nofile_to_hard, .timeout = 30)
{
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    cr_assert_eq(soft_nofile_after_run(false), rl.rlim_max);
}

Test(reactor, keep_nofile_limit_leaves_it, .timeout = 30)
{
    cr_assert_eq(soft_nofile_after_run(true), 64);
}
