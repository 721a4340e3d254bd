/* Timers on a scheduler bound to the test thread, driven by hand like the loop would. */
#include <criterion/criterion.h>
#include <errno.h>
#include <sn.h>

#include "sched_fixture.h"

TestSuite(timer, .init = sched_setup, .fini = sched_teardown);

/* Drives the timer phase until `cond` holds or 5 s pass. */
#define RUN_UNTIL(cond)                                                                  \
    do {                                                                                   \
        uint64_t until_ = sn_now_ns() + 5000000000ull;                                     \
        while (!(cond) && sn_now_ns() < until_) {                                          \
            sn__timers_expire(&sched, sn_now_ns());                                        \
            sn__sched_run(&sched, 0);                                                      \
        }                                                                                  \
    } while (0)

struct fired {
    int order[64];
    uint64_t at[64];
    int n;
};
static struct fired log_;

struct tctx {
    int id;
    uint64_t armed_at;
    uint64_t delay;
    struct sn_timer t;
};

static void on_fire(void *arg)
{
    struct tctx *c = arg;
    log_.order[log_.n] = c->id;
    log_.at[log_.n] = sn_now_ns();
    log_.n++;
}

Test(timer, fire_in_order_never_early)
{
    enum { N = 20 };
    static struct tctx c[N];
    log_.n = 0;
    /* Deadlines in scrambled order, 1..20 ms. */
    for (int i = 0; i < N; i++) {
        c[i].id = i;
        c[i].delay = (uint64_t)(((i * 7) % N) + 1) * 1000000;
        sn_timer_init(&c[i].t, on_fire, &c[i]);
        c[i].armed_at = sn_now_ns();
        cr_assert_eq(sn_timer_arm(&c[i].t, c[i].delay), 0);
    }
    cr_assert_eq(sn__timers_next(&sched), c[0].t.deadline, "the 1 ms timer is first");
    RUN_UNTIL(log_.n == N);
    cr_assert_eq(log_.n, N);
    for (int k = 0; k < N; k++) {
        struct tctx *t = &c[log_.order[k]];
        cr_assert_geq(log_.at[k], t->armed_at + t->delay, "timer %d fired early", t->id);
        if (k)
            cr_assert_gt(t->delay, c[log_.order[k - 1]].delay, "out of order");
    }
    cr_assert_eq(sn__timers_next(&sched), UINT64_MAX);
}

Test(timer, cancel_and_rearm)
{
    static struct tctx a = {.id = 1}, b = {.id = 2};
    log_.n = 0;
    sn_timer_init(&a.t, on_fire, &a);
    sn_timer_init(&b.t, on_fire, &b);
    cr_assert_not(sn_timer_cancel(&a.t));
    cr_assert_eq(sn_timer_arm(&a.t, 1000000), 0);
    cr_assert_eq(sn_timer_arm(&b.t, 2000000), 0);
    cr_assert(sn_timer_armed(&a.t));
    cr_assert(sn_timer_cancel(&a.t));
    cr_assert_not(sn_timer_armed(&a.t));
    cr_assert_not(sn_timer_cancel(&a.t));
    /* Re-arming an armed timer moves it. */
    cr_assert_eq(sn_timer_arm(&b.t, 3000000), 0);
    cr_assert_eq(sn_timer_arm(&b.t, 1000000), 0);
    RUN_UNTIL(log_.n == 1);
    uint64_t until = sn_now_ns() + 10000000;
    while (sn_now_ns() < until)
        sn__timers_expire(&sched, sn_now_ns());
    cr_assert_eq(log_.n, 1);
    cr_assert_eq(log_.order[0], 2);
}

static struct sn_timer periodic;
static int periodic_hits;
static void on_periodic(void *arg)
{
    (void)arg;
    if (++periodic_hits == 5)
        cr_assert(sn_timer_cancel(&periodic));
}

Test(timer, periodic_until_cancelled_in_callback)
{
    periodic_hits = 0;
    sn_timer_init(&periodic, on_periodic, NULL);
    cr_assert_eq(sn_timer_arm_periodic(&periodic, 0), -EINVAL);
    uint64_t start = sn_now_ns();
    cr_assert_eq(sn_timer_arm_periodic(&periodic, 1000000), 0);
    RUN_UNTIL(periodic_hits == 5);
    cr_assert_eq(periodic_hits, 5);
    cr_assert_geq(sn_now_ns() - start, 5000000, "five periods cannot end early");
    cr_assert_not(sn_timer_armed(&periodic));
}

struct slept {
    int calls;
    int err;
};
static void on_slept(void *arg, int err, uint64_t v)
{
    (void)v;
    struct slept *s = arg;
    s->calls++;
    s->err = err;
}

Test(timer, sleep_future_and_cancel_all)
{
    struct slept a = {0}, b = {0};
    uint64_t start = sn_now_ns();
    sn_done(sn_sleep(2000000), on_slept, &a);
    sn_done(sn_sleep(60ull * 1000000000), on_slept, &b);
    RUN_UNTIL(a.calls == 1);
    cr_assert_eq(a.calls, 1);
    cr_assert_eq(a.err, 0);
    cr_assert_geq(sn_now_ns() - start, 2000000);
    cr_assert_eq(b.calls, 0);
    sched.stopping = true;
    sn__timers_cancel_all(&sched);
    cr_assert_eq(b.calls, 1);
    cr_assert_eq(b.err, -ECANCELED);
    struct slept c = {0};
    sn_done(sn_sleep(1), on_slept, &c);
    cr_assert_eq(c.calls, 1);
    cr_assert_eq(c.err, -ECANCELED);
}

Test(timer, many_random_timers_heap_order)
{
    enum { N = 2000 };
    static struct sn_timer ts[N];
    static uint64_t deadline[N];
    log_.n = 0;
    unsigned seed = 12345;
    for (int i = 0; i < N; i++) {
        seed = seed * 1103515245 + 12345;
        sn_timer_init(&ts[i], on_fire, NULL);
        cr_assert_eq(sn_timer_arm(&ts[i], (seed >> 8) % 1000000000), 0);
        deadline[i] = ts[i].deadline;
    }
    for (int i = 0; i < N; i += 3)
        cr_assert(sn_timer_cancel(&ts[i]));
    uint64_t prev = 0;
    unsigned left = 0;
    for (int i = 0; i < N; i++)
        left += i % 3 != 0;
    while (sched.timers.n) {
        uint64_t next = sn__timers_next(&sched);
        cr_assert_geq(next, prev);
        prev = next;
        sched.timers.heap[0]->fn = NULL; /* not fired: popped by cancel */
        cr_assert(sn_timer_cancel(sched.timers.heap[0]));
        left--;
    }
    cr_assert_eq(left, 0);
    (void)deadline;
}
