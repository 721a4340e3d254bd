/*
 * Tests for reactor/wake.[ch]: a thread blocked in io_uring on its own ring is woken by
 * another thread's MSG_RING (from that thread's own ring) and by the eventfd path, many
 * cycles, with a deadline on every wait so a lost wake-up fails instead of hanging.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "reactor/wake.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CYCLES 2000
#else
#define CYCLES 10000
#endif
#define DEADLINE_S 10

enum mode {
    MODE_MSG_RING,    /* reactor sender, MSG_RING from its own ring */
    MODE_REACTOR_EFD, /* reactor sender, target forced to eventfd */
    MODE_THREAD,      /* plain thread sender, eventfd */
};

struct wake_test {
    enum mode mode;
    unsigned long cycles;
    struct sn__waker target; /* the sleeper's waker */
    _Atomic int ready;       /* the sleeper's ring and waker exist */
    _Atomic int sender_done; /* the sender will not touch the target any more */
    _Atomic unsigned long posted, consumed;
    _Atomic int failed;
    unsigned long blocked;    /* sleeper: waits that returned a CQE */
    unsigned long wakes_sent; /* sender */
    int sleeper_err, sender_err;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Handles every CQE present; each must be a wake-up CQE. */
static int drain(struct sn__waker *self, struct sn__uring *u)
{
    struct io_uring_cqe *cqe;
    int n = 0;
    while (io_uring_peek_cqe(&u->ring, &cqe) == 0) {
        if (!sn__waker_handle_cqe(self, u, cqe))
            n = -EPROTO;
        io_uring_cqe_seen(&u->ring, cqe);
    }
    return n;
}

/* One sleep: announce, re-check, block with a deadline. Returns 0, or -ETIME when lost. */
static int sleep_once(struct wake_test *t, struct sn__uring *u)
{
    struct __kernel_timespec ts = {.tv_sec = DEADLINE_S};
    struct io_uring_cqe *cqe;

    sn__waker_sleep_begin(&t->target);
    if (atomic_load_explicit(&t->posted, memory_order_acquire) !=
        atomic_load_explicit(&t->consumed, memory_order_relaxed)) {
        sn__waker_sleep_end(&t->target);
        return 0;
    }
    if (sn__waker_arm(&t->target, u) < 0)
        return -EBUSY;
    int r = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
    sn__waker_sleep_end(&t->target);
    if (r == -ETIME)
        return -ETIME;
    if (r < 0 && r != -EINTR)
        return r;
    t->blocked++;
    return drain(&t->target, u) < 0 ? -EPROTO : 0;
}

static void *sleeper(void *arg)
{
    struct wake_test *t = arg;
    struct sn__uring u;

    /* Created on this thread: it is the SINGLE_ISSUER owner that may wait on it. */
    if ((t->sleeper_err = sn__uring_init(&u, 16, 0)) < 0)
        goto out;
    if ((t->sleeper_err = sn__waker_init(&t->target, &u, t->mode == MODE_REACTOR_EFD)) < 0) {
        sn__uring_exit(&u);
        goto out;
    }
    atomic_store_explicit(&t->ready, 1, memory_order_release);
    while (atomic_load(&t->consumed) < t->cycles && !atomic_load(&t->failed)) {
        int r = sleep_once(t, &u);
        if (r < 0) {
            t->sleeper_err = r;
            atomic_store(&t->failed, 1);
            break;
        }
        atomic_store_explicit(&t->consumed, atomic_load(&t->posted), memory_order_release);
    }
    /* The sender may still aim at this ring until it says it is done. */
    while (!atomic_load(&t->sender_done))
        sched_yield();
    sn__uring_exit(&u);
    sn__waker_destroy(&t->target);
    return NULL;
out:
    atomic_store(&t->failed, 1);
    atomic_store_explicit(&t->ready, 1, memory_order_release);
    return NULL;
}

/* Waits for `cond` with the deadline; false (and failed set) when it never came. */
static bool wait_for(struct wake_test *t, bool (*cond)(struct wake_test *, unsigned long),
                     unsigned long i)
{
    double end = now_s() + DEADLINE_S;
    while (!cond(t, i)) {
        if (atomic_load(&t->failed) || now_s() > end) {
            atomic_store(&t->failed, 1);
            return false;
        }
        sched_yield();
    }
    return true;
}

static bool consumed_is(struct wake_test *t, unsigned long i)
{
    return atomic_load_explicit(&t->consumed, memory_order_acquire) >= i;
}

static bool target_sleeping(struct wake_test *t, unsigned long i)
{
    /* Either it announced sleep, or it already ran past this cycle. */
    return atomic_load(&t->target.sleeping) || consumed_is(t, i);
}

static void *sender(void *arg)
{
    struct wake_test *t = arg;
    struct sn__uring u;
    bool reactor = t->mode != MODE_THREAD;

    while (!atomic_load_explicit(&t->ready, memory_order_acquire))
        sched_yield();
    if (reactor && (t->sender_err = sn__uring_init(&u, 16, 0)) < 0) {
        atomic_store(&t->failed, 1);
        goto done;
    }
    for (unsigned long i = 1; i <= t->cycles && !atomic_load(&t->failed); i++) {
        if (!wait_for(t, consumed_is, i - 1))
            break;
        /* Every other cycle, let the target announce sleep first, so both orders occur. */
        if ((i & 1) && !wait_for(t, target_sleeping, i - 1))
            break;
        atomic_store_explicit(&t->posted, i, memory_order_release);
        if (!sn__waker_need_wake(&t->target))
            continue;
        t->wakes_sent++;
        int r = reactor ? sn__wake_from_reactor(&u, &t->target) : sn__wake_from_thread(&t->target);
        if (r == 0 && reactor) {
            r = sn__uring_submit_and_poll(&u);
            r = r < 0 ? r : drain(NULL, &u); /* only SENT CQEs can appear here */
        }
        if (r < 0) {
            t->sender_err = r;
            atomic_store(&t->failed, 1);
        }
    }
    wait_for(t, consumed_is, t->cycles);
    if (reactor)
        sn__uring_exit(&u);
done:
    atomic_store(&t->sender_done, 1);
    return NULL;
}

static void run(enum mode mode)
{
    struct wake_test t = {.mode = mode, .cycles = CYCLES};
    pthread_t a, b;
    cr_assert_eq(pthread_create(&b, NULL, sleeper, &t), 0);
    cr_assert_eq(pthread_create(&a, NULL, sender, &t), 0);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    cr_log_info("mode %d: %lu cycles, %lu blocking waits, %lu wakes sent", mode, t.cycles,
                t.blocked, t.wakes_sent);
    cr_assert_eq(t.sleeper_err, 0, "sleeper error %d (-ETIME = lost wake-up)", t.sleeper_err);
    cr_assert_eq(t.sender_err, 0, "sender error %d", t.sender_err);
    cr_assert_not(atomic_load(&t.failed));
    cr_assert_eq(atomic_load(&t.consumed), t.cycles);
    cr_assert_gt(t.blocked, 0, "the sleeper really blocked");
    cr_assert_gt(t.wakes_sent, 0);
}

Test(wake, msg_ring_cycles, .timeout = 60)
{
    run(MODE_MSG_RING);
}

Test(wake, reactor_eventfd_cycles, .timeout = 60)
{
    run(MODE_REACTOR_EFD);
}

Test(wake, thread_eventfd_cycles, .timeout = 60)
{
    run(MODE_THREAD);
}

/* A failed MSG_RING (sender-side CQE) is redone through the target's eventfd. */
Test(wake, failed_msg_ring_falls_back_to_eventfd)
{
    struct sn__uring u;
    struct sn__waker target;
    cr_assert_eq(sn__uring_init(&u, 8, 0), 0);
    cr_assert_eq(sn__waker_init(&target, &u, false), 0);
    struct io_uring_cqe cqe = {.user_data = SN__UD_WAKE_SENT_TAG | (uintptr_t)&target,
                               .res = -EBADFD};
    cr_assert(sn__waker_handle_cqe(NULL, &u, &cqe));
    uint64_t v = 0;
    cr_assert_eq(read(target.efd, &v, sizeof v), (ssize_t)sizeof v);
    cr_assert_eq(v, 1);
    /* A successful send needs nothing. */
    cqe.res = 0;
    cr_assert(sn__waker_handle_cqe(NULL, &u, &cqe));
    cr_assert_eq(read(target.efd, &v, sizeof v), -1);
    cr_assert_eq(errno, EAGAIN);
    /* Other CQEs are left to the caller. */
    cqe.user_data = 1234;
    cr_assert_not(sn__waker_handle_cqe(&target, &u, &cqe));
    sn__uring_exit(&u);
    sn__waker_destroy(&target);
}

/* A MSG_RING wake towards a ring made with the forced fallback still works. */
Test(wake, msg_ring_into_fallback_ring)
{
    struct sn__uring src, dst;
    struct sn__waker w;
    struct io_uring_cqe *cqe;
    cr_assert_eq(sn__uring_init(&src, 8, 0), 0);
    cr_assert_eq(sn__uring_init(&dst, 8, SN__URING_FORCE_FALLBACK), 0);
    cr_assert_eq(sn__waker_init(&w, &dst, false), 0);
    cr_assert(w.msg_ring);
    cr_assert(sn__waker_need_wake(&w) == false, "awake target: nothing to send");
    sn__waker_sleep_begin(&w);
    cr_assert(sn__waker_need_wake(&w));
    cr_assert_not(sn__waker_need_wake(&w), "only one sender wakes");
    cr_assert_eq(sn__wake_from_reactor(&src, &w), 0);
    cr_assert_eq(sn__uring_submit_and_poll(&src), 1);
    struct __kernel_timespec ts = {.tv_sec = DEADLINE_S};
    cr_assert_eq(io_uring_wait_cqe_timeout(&dst.ring, &cqe, &ts), 0);
    cr_assert_eq(cqe->user_data, SN__UD_WAKE_MSG);
    cr_assert(sn__waker_handle_cqe(&w, &dst, cqe));
    io_uring_cqe_seen(&dst.ring, cqe);
    sn__uring_exit(&src);
    sn__uring_exit(&dst);
    sn__waker_destroy(&w);
}

Test(wake, env_forces_eventfd)
{
    struct sn__uring u;
    struct sn__waker w;
    cr_assert_eq(sn__uring_init(&u, 8, 0), 0);
    setenv("SN_WAKE_EVENTFD", "1", 1);
    int r = sn__waker_init(&w, &u, false);
    unsetenv("SN_WAKE_EVENTFD");
    cr_assert_eq(r, 0);
    cr_assert_not(w.msg_ring);
    sn__uring_exit(&u);
    sn__waker_destroy(&w);
}
