/* Futures, promises, then/when_all and the run queue, on a scheduler bound to the test thread. */
#include <criterion/criterion.h>
#include <errno.h>
#include <sn.h>

#include "sched_fixture.h"
#include "abort_util.h"

TestSuite(future, .init = sched_setup, .fini = sched_teardown);

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

static struct sn_future *add_one(void *arg, uint64_t v)
{
    (void)arg;
    return sn_ready(v + 1);
}

Test(future, core_id_bound)
{
    cr_assert_eq(sn_core_id(), 0);
    cr_assert_eq(sn_core_count(), 1);
    cr_assert(sn_on_core());
}

Test(future, ready_then_done_runs_inline)
{
    struct outcome o = {0};
    sn_done(sn_then(sn_ready(41), add_one, NULL), record, &o);
    cr_assert_eq(o.calls, 1);
    cr_assert_eq(o.err, 0);
    cr_assert_eq(o.value, 42);
}

Test(future, promise_resolves_later)
{
    struct outcome o = {0};
    struct sn_future *f;
    struct sn_promise *p = sn_promise_new(&f);
    cr_assert_not_null(p);
    cr_assert_not(sn_future_available(f));
    sn_done(sn_then(sn_then(f, add_one, NULL), add_one, NULL), record, &o);
    cr_assert_eq(o.calls, 0);
    sn_promise_set(p, 10);
    sn__sched_run(&sched, 0);
    cr_assert_eq(o.calls, 1);
    cr_assert_eq(o.value, 12);
}

static int skipped_calls;
static struct sn_future *never(void *arg, uint64_t v)
{
    (void)arg, (void)v;
    skipped_calls++;
    return SN_SUCCESS;
}

static struct sn_future *recover(void *arg, int err, uint64_t v)
{
    (void)arg, (void)v;
    return sn_ready(err == -EIO ? 7 : 0);
}

Test(future, error_propagates_and_wrapped_sees_it)
{
    struct outcome o = {0};
    struct sn_future *f;
    struct sn_promise *p = sn_promise_new(&f);
    skipped_calls = 0;
    struct sn_future *g = sn_then(sn_then(f, never, NULL), never, NULL);
    sn_done(g, record, &o);
    sn_promise_fail(p, -EIO);
    cr_assert_eq(skipped_calls, 0);
    cr_assert_eq(o.calls, 1);
    cr_assert_eq(o.err, -EIO);

    struct outcome o2 = {0};
    sn_done(sn_then_wrapped(sn_then(sn_failed(-EIO), never, NULL), recover, NULL), record, &o2);
    cr_assert_eq(o2.calls, 1);
    cr_assert_eq(o2.err, 0);
    cr_assert_eq(o2.value, 7);
    cr_assert_eq(skipped_calls, 0);
}

Test(future, success_from_continuation_means_zero)
{
    struct outcome o = {0};
    skipped_calls = 0;
    sn_done(sn_then(sn_ready(5), never, NULL), record, &o);
    cr_assert_eq(o.calls, 1);
    cr_assert_eq(o.value, 0);
    cr_assert_eq(skipped_calls, 1);
}

/* A continuation that returns a still-pending future: the chain waits for it. */
static struct sn_promise *inner;
static struct sn_future *returns_pending(void *arg, uint64_t v)
{
    (void)arg, (void)v;
    struct sn_future *f;
    inner = sn_promise_new(&f);
    return f;
}

Test(future, continuation_returning_pending_future)
{
    struct outcome o = {0};
    sn_done(sn_then(sn_then(sn_ready(1), returns_pending, NULL), add_one, NULL), record, &o);
    cr_assert_eq(o.calls, 0);
    cr_assert_not_null(inner);
    sn_promise_set(inner, 99);
    sn__sched_run(&sched, 0);
    cr_assert_eq(o.calls, 1);
    cr_assert_eq(o.value, 100);
}

/* A long chain of already-ready links must not recurse without bound. */
static unsigned chain_left;
static struct sn_future *step(void *arg, uint64_t v)
{
    (void)arg;
    if (--chain_left == 0)
        return sn_ready(v + 1);
    return sn_then(sn_ready(v + 1), step, NULL);
}

Test(future, deep_ready_chain_is_bounded)
{
    struct outcome o = {0};
    chain_left = 100000;
    sn_done(sn_then(sn_ready(0), step, NULL), record, &o);
    sn__sched_run(&sched, 0);
    cr_assert_eq(o.calls, 1);
    cr_assert_eq(o.value, 100000);
    cr_assert_eq(sched.depth, 0);
}

Test(future, long_pending_chain_resolves_through_queue)
{
    enum { N = 10000 };
    struct outcome o = {0};
    struct sn_future *f;
    struct sn_promise *p = sn_promise_new(&f);
    for (int i = 0; i < N; i++)
        f = sn_then(f, add_one, NULL);
    sn_done(f, record, &o);
    sn_promise_set(p, 0);
    sn__sched_run(&sched, 0);
    cr_assert_eq(o.calls, 1);
    cr_assert_eq(o.value, N);
}

/*
 * A loop that goes on by returning sn_then(next pending step, itself): each turn waits for a
 * promise settled from outside (like a reply from another core). The futures it holds must
 * not grow with the turns (each returned future only relays to the one before), and the
 * outer consumer still gets the last value or the error, once.
 */
static struct sn_promise *loop_next;
static unsigned loop_left;
static int loop_fail_at;

static struct sn_future *loop_turn(void *arg, uint64_t v)
{
    (void)arg;
    if (loop_left-- == 0)
        return sn_ready(v);
    struct sn_future *f;
    loop_next = sn_promise_new(&f);
    return sn_then(f, loop_turn, NULL);
}

static struct outcome run_pending_loop(unsigned turns, int fail_at, uint64_t *in_use_max)
{
    struct outcome o = {0};
    uint64_t base = sched.pool.in_use, peak = 0;
    loop_left = turns;
    loop_fail_at = fail_at;
    sn_done(sn_then(sn_ready(0), loop_turn, NULL), record, &o);
    for (unsigned i = 1; o.calls == 0; i++) {
        cr_assert_not_null(loop_next);
        struct sn_promise *p = loop_next;
        loop_next = NULL;
        if ((int)i == loop_fail_at)
            sn_promise_fail(p, -EIO);
        else
            sn_promise_set(p, i);
        sn__sched_run(&sched, 0);
        if (sched.pool.in_use - base > peak)
            peak = sched.pool.in_use - base;
    }
    sn__sched_run(&sched, 0);
    cr_assert_eq(sched.pool.in_use, base, "every future back in the pool");
    *in_use_max = peak;
    return o;
}

Test(future, pending_loop_holds_constant_futures)
{
    uint64_t peak;
    struct outcome o = run_pending_loop(10000, 0, &peak);
    cr_assert_eq(o.calls, 1);
    cr_assert_eq(o.err, 0);
    cr_assert_eq(o.value, 10000);
    cr_assert_leq(peak, 4, "futures held by a 10000-turn loop: %lu", (unsigned long)peak);
}

Test(future, pending_loop_error_reaches_the_outer_consumer)
{
    uint64_t peak;
    struct outcome o = run_pending_loop(10000, 5000, &peak);
    cr_assert_eq(o.calls, 1);
    cr_assert_eq(o.err, -EIO);
    cr_assert_leq(peak, 4);
}

/*
 * A relay attached under another run tag (another group's code, or code serving a remote
 * call) is not collapsed: `outer` relays through `held`, which a continuation running under
 * `relay_tag` returned; then the continuation behind `held`, running under tag 0, returns a
 * pending future. With relay_tag 0 the relay goes back to the pool at once; under another
 * tag it stays, and the result still reaches outer's consumer, under outer's tag, with every
 * future back in the pool.
 */
static struct sn_promise *inner;
static struct sn_future *held;
static uint8_t tag_at_record;

static struct sn_future *wait_inner(void *arg, uint64_t v)
{
    (void)arg, (void)v;
    struct sn_future *f;
    inner = sn_promise_new(&f);
    return f;
}

static struct sn_future *return_held(void *arg, uint64_t v)
{
    (void)arg, (void)v;
    return held;
}

static void record_tag(void *arg, int err, uint64_t value)
{
    record(arg, err, value);
    tag_at_record = sched.tag;
}

/* Returns the pool blocks in use while the inner promise is pending (above the start). */
static uint64_t relay_across(uint8_t relay_tag, struct outcome *o)
{
    uint64_t base = sched.pool.in_use;
    struct sn_future *f;
    struct sn_promise *first = sn_promise_new(&f);
    held = sn_then(f, wait_inner, NULL); /* attached under tag 0 */
    struct sn_future *g;
    struct sn_promise *second = sn_promise_new(&g);
    sched.tag = relay_tag;
    sn_done(sn_then(g, return_held, NULL), record_tag, o);
    sched.tag = 0;
    sn_promise_set(second, 0); /* return_held runs under relay_tag: held relays to outer */
    sn_promise_set(first, 1);
    sn__sched_run(&sched, 0);
    cr_assert_not_null(inner);
    uint64_t pending = sched.pool.in_use - base;
    cr_assert_eq(o->calls, 0);
    sn_promise_set(inner, 7);
    inner = NULL;
    sn__sched_run(&sched, 0);
    cr_assert_eq(sched.pool.in_use, base, "every future back in the pool");
    return pending;
}

Test(future, relay_of_another_run_tag_stays)
{
    struct outcome same = {0}, other = {0};
    uint64_t held_same = relay_across(0, &same);
    uint64_t held_other = relay_across(SN__TAG_SERVING, &other);
    cr_expect_eq(held_other, held_same + 1, "blocks held: %lu under one tag, %lu across two",
                 (unsigned long)held_same, (unsigned long)held_other);
    cr_expect_eq(other.calls, 1);
    cr_expect_eq(other.err, 0);
    cr_expect_eq(other.value, 7);
    cr_expect_eq(tag_at_record, SN__TAG_SERVING, "the consumer ran under its own tag");
    cr_expect_eq(same.calls, 1);
    cr_expect_eq(same.value, 7);
}

Test(future, when_all_values_and_first_error)
{
    enum { N = 8 };
    struct sn_future *fs[N];
    struct sn_promise *ps[N];
    struct sn_result res[N];
    struct outcome o = {0};
    for (int i = 0; i < N; i++)
        ps[i] = sn_promise_new(&fs[i]);
    sn_done(sn_when_all(fs, N, res), record, &o);
    for (int i = N - 1; i >= 0; i--) {
        cr_assert_eq(o.calls, 0);
        if (i == 3 || i == 5)
            sn_promise_fail(ps[i], -(10 + i));
        else
            sn_promise_set(ps[i], (uint64_t)i * 100);
    }
    cr_assert_eq(o.calls, 1);
    cr_assert_eq(o.err, -13, "lowest-index failure wins");
    for (int i = 0; i < N; i++) {
        if (i == 3 || i == 5)
            cr_assert_eq(res[i].err, -(10 + i));
        else
            cr_assert_eq(res[i].value, (uint64_t)i * 100);
    }
}

Test(future, when_all_ready_and_empty)
{
    struct sn_future *fs[3] = {sn_ready(1), sn_ready(2), sn_ready(3)};
    struct outcome o = {0};
    sn_done(sn_when_all(fs, 3, NULL), record, &o);
    cr_assert_eq(o.calls, 1);
    cr_assert_eq(o.err, 0);
    cr_assert_eq(o.value, 3);
    struct outcome e = {0};
    sn_done(sn_when_all(NULL, 0, NULL), record, &e);
    cr_assert_eq(e.calls, 1);
    cr_assert_eq(e.value, 0);
}

Test(future, ignore_pending_and_ready)
{
    struct sn_future *f;
    struct sn_promise *p = sn_promise_new(&f);
    sn_ignore(f);
    sn_promise_set(p, 1);
    sn_ignore(sn_ready(3));
    sn_ignore(SN_SUCCESS);
}

/* SN_SUCCESS is a future that succeeded with 0 wherever a future is taken. */
static struct sn_future *plus_one(void *arg, uint64_t v)
{
    (void)arg;
    return sn_ready(v + 1);
}

static struct sn_future *wrapped_echo(void *arg, int err, uint64_t v)
{
    struct outcome *o = arg;
    o->calls++;
    o->err = err;
    o->value = v;
    return SN_SUCCESS;
}

Test(future, success_is_accepted_as_a_settled_future)
{
    struct outcome a = {0}, b = {0}, c = {0}, w = {0};
    sn_done(SN_SUCCESS, record, &a);
    cr_assert_eq(a.calls, 1);
    cr_assert_eq(a.err, 0);
    cr_assert_eq(a.value, 0);

    sn_done(sn_then(SN_SUCCESS, plus_one, NULL), record, &b);
    cr_assert_eq(b.calls, 1);
    cr_assert_eq(b.value, 1);

    struct sn_future *f = sn_then_wrapped(SN_SUCCESS, wrapped_echo, &w);
    cr_assert_not_null(f, "a function that returns a future never returns NULL");
    cr_assert_eq(w.calls, 1);
    cr_assert_eq(w.err, 0);
    sn_done(f, record, &c);
    cr_assert_eq(c.calls, 1);
    cr_assert_eq(c.err, 0);
    cr_assert_eq(c.value, 0);

    cr_assert(sn_future_available(SN_SUCCESS));

    struct sn_result res[3];
    struct outcome all = {0};
    struct sn_future *fs[3] = {sn_ready(4), SN_SUCCESS, sn_failed(-EIO)};
    sn_done(sn_when_all(fs, 3, res), record, &all);
    cr_assert_eq(all.err, -EIO);
    cr_assert_eq(res[1].err, 0);
    cr_assert_eq(res[1].value, 0);
    cr_assert_eq(res[0].value, 4);
}

Test(future, failed_normalises_its_error)
{
    struct outcome a = {0}, b = {0};
    sn_done(sn_failed(EIO), record, &a);
    cr_assert_eq(a.err, -EIO);
    sn_done(sn_failed(0), record, &b);
    cr_assert_eq(b.err, -ECANCELED);
}

/* A future used on a core it does not live on fails an assert (in a child process). */
static void use_on_other_core(void *arg)
{
    (void)arg;
    static struct sn__sched other;
    struct sn_future *f;
    struct sn_promise *p = sn_promise_new(&f); /* on core 0 (the suite's scheduler) */
    if (sn__sched_init(&other, 1, NULL) != 0)
        return;
    sn__sched_bind(&other, 2);
    sn_promise_set(p, 1); /* core 1 settling core 0's promise */
}

Test(future, use_on_another_core_asserts)
{
    cr_assert(
        au_aborts_with(use_on_other_core, NULL, "a future used on a core it does not live on"));
}

static int later_hits;
static void later_fn(void *arg)
{
    later_hits += (int)(uintptr_t)arg;
}

Test(future, later_runs_from_queue_in_order)
{
    later_hits = 0;
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(sn_later(later_fn, (void *)(uintptr_t)1), 0);
    cr_assert_eq(later_hits, 0);
    cr_assert_eq(sn__sched_run(&sched, 0), 1000);
    cr_assert_eq(later_hits, 1000);
}

/* Off a core, every function that makes or takes a future aborts with a message naming it. */
static void call_ready(void *arg)
{
    (void)arg;
    sn_ignore(sn_ready(1));
}

static void call_failed(void *arg)
{
    (void)arg;
    sn_ignore(sn_failed(-EIO));
}

static void call_promise_new(void *arg)
{
    (void)arg;
    struct sn_future *f;
    (void)sn_promise_new(&f);
}

static void call_then(void *arg)
{
    (void)arg;
    sn_ignore(sn_then(SN_SUCCESS, plus_one, NULL));
}

static void call_when_all(void *arg)
{
    (void)arg;
    sn_ignore(sn_when_all(NULL, 0, NULL));
}

static void call_done(void *arg)
{
    (void)arg;
    sn_done(SN_SUCCESS, record, &(struct outcome){0});
}

static void call_ignore(void *arg)
{
    (void)arg;
    sn_ignore(SN_SUCCESS);
}

static void call_sleep(void *arg)
{
    (void)arg;
    sn_ignore(sn_sleep(1));
}

static void call_yield(void *arg)
{
    (void)arg;
    sn_ignore(sn_yield());
}

static void task_noop(struct sn_task *t)
{
    (void)t;
}

static void call_schedule(void *arg)
{
    (void)arg;
    static struct sn_task t;
    sn_task_init(&t, task_noop);
    sn_schedule(&t);
}

Test(future_off_core, every_future_function_aborts)
{
    static const struct {
        void (*fn)(void *);
        const char *msg;
    } calls[] = {
        {call_ready, "libsn: sn_ready called off a reactor core"},
        {call_failed, "libsn: sn_failed called off a reactor core"},
        {call_promise_new, "libsn: sn_promise_new called off a reactor core"},
        {call_then, "libsn: sn_then called off a reactor core"},
        {call_when_all, "libsn: sn_when_all called off a reactor core"},
        {call_done, "libsn: sn_done called off a reactor core"},
        {call_ignore, "libsn: sn_ignore called off a reactor core"},
        {call_sleep, "libsn: sn_sleep called off a reactor core"},
        {call_yield, "libsn: sn_yield called off a reactor core"},
        {call_schedule, "libsn: sn_schedule called off a reactor core"},
    };
    cr_assert_eq(sn_core_id(), SN_NO_CORE);
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++)
        cr_expect(au_aborts_with(calls[i].fn, NULL, calls[i].msg), "%s", calls[i].msg);
}

Test(future_off_core, int_functions_return_eperm)
{
    cr_assert_eq(sn_later(later_fn, NULL), -EPERM);
    cr_assert_eq(sn_core_id(), SN_NO_CORE);
}
