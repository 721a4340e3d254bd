/*
 * Fibers on a scheduler bound to the test thread (no reactor, stacks from the allocator):
 * where a fiber runs, when it switches and when it does not, errors, names, the stack
 * high-water mark, and that every pooled object comes back.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <sn.h>
#include <stdio.h>

#include "sched_fixture.h"

TestSuite(fiber_core, .init = sched_setup, .fini = sched_teardown);

struct outcome {
    int calls;
    int err;
    uint64_t value;
};

static void record(void *arg, int err, uint64_t value)
{
    struct outcome *o = arg;
    o->calls++;
    o->err = err;
    o->value = value;
}

/* ---- spawn and result ------------------------------------------------------------------ */

static int ran;

static int body_value(void *arg, uint64_t *value)
{
    ran++;
    cr_expect(sn_in_fiber());
    *value = (uintptr_t)arg * 2;
    return 0;
}

Test(fiber_core, runs_from_the_run_queue_and_settles_with_its_value)
{
    struct outcome o = {0};
    ran = 0;
    sn_done(sn_fiber_spawn(body_value, (void *)21, NULL), record, &o);
    cr_assert_eq(ran, 0, "a spawned fiber starts from the run queue, not inline");
    cr_assert(!sn_in_fiber());
    sn__sched_run(&sched, 0);
    cr_assert_eq(ran, 1);
    cr_assert_eq(o.calls, 1);
    cr_assert_eq(o.err, 0);
    cr_assert_eq(o.value, 42);
}

static int body_fail(void *arg, uint64_t *value)
{
    (void)arg;
    *value = 7; /* dropped: the fiber failed */
    return -EIO;
}

static int body_positive_errno(void *arg, uint64_t *value)
{
    (void)arg, (void)value;
    return EPIPE;
}

Test(fiber_core, errors_become_the_futures_error)
{
    struct outcome a = {0}, b = {0};
    sn_done(sn_fiber_spawn(body_fail, NULL, NULL), record, &a);
    sn_done(sn_fiber_spawn(body_positive_errno, NULL, NULL), record, &b);
    sn__sched_run(&sched, 0);
    cr_assert_eq(a.err, -EIO);
    cr_assert_eq(a.value, 0);
    cr_assert_eq(b.err, -EPIPE, "a positive errno is negated");
}

Test(fiber_core, bad_arguments_fail_the_future)
{
    struct outcome a = {0}, b = {0}, c = {0};
    sn_done(sn_fiber_spawn(NULL, NULL, NULL), record, &a);
    struct sn_fiber_opts big = {.stack_size = (size_t)SN_FIBER_MAX_STACK + 1};
    sn_done(sn_fiber_spawn(body_value, NULL, &big), record, &b);
    struct sn_fiber_opts flags = {.flags = 0x80};
    sn_done(sn_fiber_spawn(body_value, NULL, &flags), record, &c);
    cr_assert_eq(a.err, -EINVAL);
    cr_assert_eq(b.err, -EINVAL);
    cr_assert_eq(c.err, -EINVAL);
    cr_assert_eq(sched.fibers.nlive, 0);
}

/* ---- await ----------------------------------------------------------------------------- */

static bool marker;

static void set_marker(void *arg)
{
    (void)arg;
    marker = true;
}

static int await_ready(void *arg, uint64_t *value)
{
    (void)arg;
    marker = false;
    cr_expect_eq(sn_later(set_marker, NULL), 0);
    uint64_t v = 0;
    int err = sn_await(sn_ready(5), &v);
    /* Had the fiber switched out, the queued task would have run before it came back. */
    cr_expect(!marker, "awaiting a settled future switched");
    cr_expect_eq(err, 0);
    cr_expect_eq(v, 5);
    err = sn_await(sn_failed(-ENOENT), &v);
    cr_expect_eq(err, -ENOENT);
    cr_expect_eq(v, 0);
    cr_expect_eq(sn_await(NULL, &v), 0, "NULL is SN_SUCCESS");
    cr_expect(!marker);
    *value = 1;
    return 0;
}

Test(fiber_core, awaiting_a_settled_future_does_not_switch)
{
    struct outcome o = {0};
    sn_done(sn_fiber_spawn(await_ready, NULL, NULL), record, &o);
    sn__sched_run(&sched, 0);
    cr_assert_eq(o.calls, 1);
    cr_assert_eq(o.value, 1);
    cr_assert(marker);
}

static struct sn_promise *pending;
static int stage;

static int await_pending(void *arg, uint64_t *value)
{
    (void)arg;
    struct sn_future *f;
    pending = sn_promise_new(&f);
    stage = 1;
    uint64_t v = 0;
    int err = sn_await(f, &v);
    stage = 2;
    *value = v + 1;
    return err;
}

Test(fiber_core, a_pending_future_suspends_only_the_fiber_and_resumes_from_the_queue)
{
    struct outcome o = {0};
    stage = 0;
    sn_done(sn_fiber_spawn(await_pending, NULL, NULL), record, &o);
    sn__sched_run(&sched, 0);
    cr_assert_eq(stage, 1, "the fiber waits");
    cr_assert(!sn__sched_has_tasks(&sched));
    sn_promise_set(pending, 41);
    cr_assert_eq(stage, 1, "settling a future never resumes a fiber inline");
    cr_assert(sn__sched_has_tasks(&sched));
    sn__sched_run(&sched, 0);
    cr_assert_eq(stage, 2);
    cr_assert_eq(o.calls, 1);
    cr_assert_eq(o.value, 42);
}

Test(fiber_core, await_outside_a_fiber_fails_at_once_and_takes_the_future)
{
    uint64_t v = 99;
    struct sn_future *f;
    struct sn_promise *p = sn_promise_new(&f);
    cr_assert_eq(sn_await(f, &v), -EDEADLK);
    cr_assert_eq(v, 0);
    sn_promise_set(p, 1); /* f was taken (ignored): settling it frees it */
    cr_assert_eq(sn_await(sn_ready(3), NULL), -EDEADLK, "also when already settled");
    cr_assert_eq(sn_fiber_yield(), -EDEADLK);
    cr_assert_eq(sn_fiber_sleep_ns(1), -EDEADLK);
    cr_assert(!sn_in_fiber());
    cr_assert_null(sn_fiber_name());
    cr_assert_eq(sn_fiber_stack_used(), 0);
}

/*
 * Assertions inside fiber bodies are cr_expect: a failing cr_assert would jump off the
 * fiber's stack. Outcomes are asserted on the test's own stack.
 */

/* A fiber awaiting its child, which awaits its own child: results travel up. */
static int child(void *arg, uint64_t *value)
{
    uintptr_t depth = (uintptr_t)arg;
    if (depth == 0) {
        *value = 1;
        return sn_fiber_yield();
    }
    uint64_t v;
    int err = sn_await(sn_fiber_spawn(child, (void *)(depth - 1), NULL), &v);
    *value = v + 1;
    return err;
}

Test(fiber_core, fibers_await_fibers)
{
    struct outcome o = {0};
    sn_done(sn_fiber_spawn(child, (void *)50, NULL), record, &o);
    sn__sched_run(&sched, 0);
    cr_assert_eq(o.err, 0);
    cr_assert_eq(o.value, 51);
}

/* ---- yield ----------------------------------------------------------------------------- */

static char order[64];
static int norder;

static int yielder(void *arg, uint64_t *value)
{
    (void)value;
    for (int i = 0; i < 4; i++) {
        order[norder++] = *(const char *)arg;
        cr_expect_eq(sn_fiber_yield(), 0);
    }
    return 0;
}

Test(fiber_core, yield_lets_the_others_run_in_turn)
{
    norder = 0;
    sn_ignore(sn_fiber_spawn(yielder, "a", NULL));
    sn_ignore(sn_fiber_spawn(yielder, "b", NULL));
    sn__sched_run(&sched, 0);
    order[norder] = '\0';
    cr_assert_str_eq(order, "abababab");
}

static int yield_until_error(void *arg, uint64_t *value)
{
    (void)arg;
    int err;
    while ((err = sn_fiber_yield()) == 0)
        ++*value;
    return err;
}

Test(fiber_core, yield_fails_once_the_core_stops)
{
    struct outcome o = {0};
    sn_done(sn_fiber_spawn(yield_until_error, NULL, NULL), record, &o);
    sn__sched_run(&sched, 16); /* a few turns */
    cr_assert_eq(o.calls, 0);
    sched.stopping = true;
    sn__sched_run(&sched, 0);
    sched.stopping = false;
    cr_assert_eq(o.calls, 1);
    cr_assert_eq(o.err, -ECANCELED);
}

/* ---- names ----------------------------------------------------------------------------- */

static char seen[64];

static int copy_name(void *arg, uint64_t *value)
{
    (void)arg, (void)value;
    snprintf(seen, sizeof seen, "%s", sn_fiber_name());
    return 0;
}

Test(fiber_core, names_are_copied_and_cut)
{
    char name[] = "worker-1";
    struct sn_fiber_opts o = {.name = name};
    sn_ignore(sn_fiber_spawn(copy_name, NULL, &o));
    name[0] = 'X'; /* copied at spawn: the fiber still sees the old name */
    sn__sched_run(&sched, 0);
    cr_assert_str_eq(seen, "worker-1");

    sn_ignore(sn_fiber_spawn(copy_name, NULL, NULL));
    sn__sched_run(&sched, 0);
    cr_assert_str_eq(seen, "fiber");

    char longname[100];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    o.name = longname;
    sn_ignore(sn_fiber_spawn(copy_name, NULL, &o));
    sn__sched_run(&sched, 0);
    cr_assert_eq(strlen(seen), SN_FIBER_NAME_MAX - 1);
}

/* ---- stacks ---------------------------------------------------------------------------- */

/* Uses about `arg` bytes of stack in frames of 512 bytes. */
static __attribute__((noinline)) uint64_t dig(unsigned levels)
{
    volatile char frame[480];
    frame[0] = (char)levels;
    frame[sizeof frame - 1] = 1;
    if (levels == 0)
        return frame[0];
    return dig(levels - 1) + frame[sizeof frame - 1];
}

static int digger(void *arg, uint64_t *value)
{
    size_t before = sn_fiber_stack_used();
    *value = dig((unsigned)(uintptr_t)arg);
    cr_expect_geq(sn_fiber_stack_used(), before);
    return 0;
}

Test(fiber_core, stack_high_water_mark)
{
    size_t small = 0, deep = 0;
    struct sn_fiber_opts o = {.flags = SN_FIBER_MEASURE_STACK, .stack_used = &small};
    sn_ignore(sn_fiber_spawn(digger, (void *)4, &o));
    o.stack_used = &deep;
    sn_ignore(sn_fiber_spawn(digger, (void *)80, &o));
    sn__sched_run(&sched, 0);
    cr_assert_gt(small, 0);
    cr_assert_lt(small, 16 * 1024, "4 levels used %zu bytes", small);
    cr_assert_geq(deep, small + 76 * 480, "80 levels used %zu bytes, 4 used %zu", deep, small);
    cr_assert_lt(deep, SN_FIBER_DEFAULT_STACK);
    cr_assert_eq(sched.fibers.high_water, deep);
}

/* ---- many ------------------------------------------------------------------------------ */

static int empty(void *arg, uint64_t *value)
{
    (void)arg;
    *value = 1;
    return 0;
}

static int spawner(void *arg, uint64_t *value)
{
    uint64_t n = (uintptr_t)arg, sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t v;
        int err = sn_await(sn_fiber_spawn(empty, NULL, NULL), &v);
        if (err)
            return err;
        sum += v;
    }
    *value = sum;
    return 0;
}

Test(fiber_core, many_fibers_one_after_another)
{
    struct outcome o = {0};
    sn_done(sn_fiber_spawn(spawner, (void *)20000, NULL), record, &o);
    sn__sched_run(&sched, 0);
    cr_assert_eq(o.err, 0);
    cr_assert_eq(o.value, 20000);
    cr_assert_eq(sched.fibers.spawned, 20001);
    cr_assert_eq(sched.fibers.stack_bytes, 0);
}
