/*
 * The loop turn's fairness towards io completions (reactor/loop.c): a source of completions
 * that never runs dry must not hold the core in the io phase, and no turn handles more than
 * SN__LOOP_REAP_BUDGET completions (the rest wait for the next turn). The flood is FLOOD_POLLS
 * multishot polls on one eventfd that a plain thread keeps writing: every write wakes every
 * poll, so each entry into the kernel posts a new wave of completions, like a peer that keeps
 * streaming into many connections. Checked: no turn handles more than the reap budget, and a
 * task queued in the middle of the flood runs before the flood ends, after at most one
 * budget of further completions. No timed assertions: the writer stops on its own only after
 * WRITER_MAX_S, long after a fair loop has let the task run.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdbool.h>
#include <poll.h>
#include <pthread.h>
#include <sn.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "reactor/core.h"
#include "reactor/io.h"
#include "reactor_util.h"

#define FLOOD_POLLS 300 /* more than one turn's budget per wave */
#define QUEUE_AT 1000   /* the completion whose callback queues the task */
#define WRITER_MAX_S 20.0

struct flood_poll {
    struct sn__io_op op;
} SN_CACHE_ALIGNED;

static struct {
    int efd;
    struct flood_poll polls[FLOOD_POLLS];
    atomic_int stop;        /* set by the task: the writer ends */
    atomic_int writer_done; /* set by the writer when it ends, for whatever reason */
    uint64_t cqes;          /* flood completions handled (core 0 only, like what follows) */
    uint64_t turn;          /* loop turn of the last completion */
    uint64_t in_turn;       /* completions handled in that turn so far */
    uint64_t max_in_turn;
    uint64_t queued_at, ran_at;
    int writer_was_done;    /* what the task saw */
    int ended;              /* polls that ended (a completion without IORING_CQE_F_MORE) */
    int cancelled;          /* ... with -ECANCELED, at the stop */
    bool deferred;          /* the ring runs task work only when asked (DEFER_TASKRUN) */
    struct sn_promise *done;
} fl;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *writer(void *arg)
{
    (void)arg;
    double end = now_s() + WRITER_MAX_S;
    for (unsigned i = 0; !atomic_load(&fl.stop); i++) {
        if (eventfd_write(fl.efd, 1) < 0 && errno != EAGAIN)
            break;
        if ((i & 63) == 0 && now_s() > end)
            break;
    }
    atomic_store(&fl.writer_done, 1);
    return NULL;
}

static void task_in_flood(void *arg)
{
    (void)arg;
    fl.ran_at = fl.cqes;
    fl.writer_was_done = atomic_load(&fl.writer_done);
    atomic_store(&fl.stop, 1);
    sn_promise_set(fl.done, 0); /* main returns: the stop cancels the polls */
}

static void flood_cqe(struct sn__io_op *op, int res, uint32_t flags)
{
    (void)op;
    if (!(flags & IORING_CQE_F_MORE))
        fl.ended++;
    if (res < 0) {
        fl.cancelled += res == -ECANCELED;
        return;
    }
    uint64_t turn = atomic_load_explicit(&sn__core_self()->c.loops, memory_order_relaxed);
    if (turn != fl.turn) {
        fl.turn = turn;
        fl.in_turn = 0;
    }
    if (++fl.in_turn > fl.max_in_turn)
        fl.max_in_turn = fl.in_turn;
    if (++fl.cqes == QUEUE_AT) {
        fl.queued_at = fl.cqes;
        sn_later(task_in_flood, NULL);
    }
}

static pthread_t writer_tid;

static struct sn_future *main_flood(void *arg)
{
    (void)arg;
    struct sn_future *f;
    fl.done = sn_promise_new(&f);
    fl.deferred = sn__core_self()->uring.features & SN__URING_DEFER_TASKRUN;
    for (unsigned i = 0; i < FLOOD_POLLS; i++) {
        struct io_uring_sqe *sqe = sn__sqe_get();
        if (!sqe)
            return sn_failed(-EBUSY);
        sn__io_op_init(&fl.polls[i].op, flood_cqe);
        io_uring_prep_poll_multishot(sqe, fl.efd, POLLIN);
        sn__sqe_bind(sqe, &fl.polls[i].op);
    }
    if (pthread_create(&writer_tid, NULL, writer, NULL) != 0)
        return sn_failed(-EAGAIN);
    return f;
}

Test(loop, io_flood_leaves_room_for_tasks, .timeout = 120)
{
    struct sn_config cfg = test_config(1);
    memset(&fl, 0, sizeof fl);
    fl.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    cr_assert_geq(fl.efd, 0);

    int rc = sn_run(&cfg, main_flood, NULL);
    atomic_store(&fl.stop, 1);
    pthread_join(writer_tid, NULL);
    close(fl.efd);

    cr_assert_eq(rc, 0);
    cr_log_info("flood: %llu completions, at most %llu in one turn, task ran %llu after",
                (unsigned long long)fl.cqes, (unsigned long long)fl.max_in_turn,
                (unsigned long long)(fl.ran_at - fl.queued_at));
    cr_assert_eq(fl.queued_at, QUEUE_AT);
    cr_assert_geq(fl.ran_at, fl.queued_at, "the task ran");
    cr_assert_leq(fl.max_in_turn, SN__LOOP_REAP_BUDGET, "one turn handled more than its budget");
    cr_assert_leq(fl.ran_at - fl.queued_at, SN__LOOP_REAP_BUDGET,
                  "the queued task waited behind more than one turn of completions");
    cr_assert_not(fl.writer_was_done, "the task ran only after the flood ended");
    cr_assert_eq(fl.ended, FLOOD_POLLS, "every poll ended once");
    /* The kernel ends a multishot poll whose completion finds the CQ full. With DEFER_TASKRUN
     * the loop never asks for new completions while the CQ holds a backlog, so none did. */
    if (fl.deferred)
        cr_assert_eq(fl.cancelled, FLOOD_POLLS, "a poll ended before the stop: CQ overflow");
}

/* ---- the budget itself: a burst of completions that are all there at once ------------- */

#define BURST 600 /* more than two budgets, and more than the CQ holds (the rest overflows) */

static struct {
    struct sn__io_op ops[BURST];
    uint64_t cqes, turns, turn, in_turn, max_in_turn;
    int errors;
} nb;

static void nop_cqe(struct sn__io_op *op, int res, uint32_t flags)
{
    (void)op, (void)flags;
    uint64_t turn = atomic_load_explicit(&sn__core_self()->c.loops, memory_order_relaxed);
    if (turn != nb.turn || !nb.cqes) {
        nb.turn = turn;
        nb.in_turn = 0;
        nb.turns++;
    }
    if (++nb.in_turn > nb.max_in_turn)
        nb.max_in_turn = nb.in_turn;
    nb.errors += res != 0;
    nb.cqes++;
}

static bool burst_done(void *arg)
{
    (void)arg;
    return nb.cqes == BURST;
}

static struct sn_future *main_burst(void *arg)
{
    (void)arg;
    /* NOPs complete while they are submitted, so the whole burst is there at the next reap. */
    for (unsigned i = 0; i < BURST; i++) {
        struct io_uring_sqe *sqe = sn__sqe_get();
        if (!sqe)
            return sn_failed(-EBUSY);
        sn__io_op_init(&nb.ops[i], nop_cqe);
        io_uring_prep_nop(sqe);
        sn__sqe_bind(sqe, &nb.ops[i]);
    }
    return ru_poll_until(burst_done, NULL, 10000);
}

Test(loop, reap_budget_per_turn, .timeout = 60)
{
    struct sn_config cfg = test_config(1);
    memset(&nb, 0, sizeof nb);
    cr_assert_eq(sn_run(&cfg, main_burst, NULL), 0);
    cr_log_info("burst: %llu completions in %llu turns, at most %llu in one",
                (unsigned long long)nb.cqes, (unsigned long long)nb.turns,
                (unsigned long long)nb.max_in_turn);
    cr_assert_eq(nb.cqes, BURST, "every completion arrived (also those the CQ overflowed)");
    cr_assert_eq(nb.errors, 0);
    cr_assert_leq(nb.max_in_turn, SN__LOOP_REAP_BUDGET);
    cr_assert_geq(nb.turns, (BURST + SN__LOOP_REAP_BUDGET - 1) / SN__LOOP_REAP_BUDGET);
}
