/*
 * Gathering without ordering traps (sn_map_reduce_on, sn_invoke_on): every core pipelines
 * writes to keys of every core (its own keys applied inline, the others sent to their owner)
 * and after each write gathers, from every core, how many of its writes that core has
 * applied. With SN_GATHER_LOCAL_INLINE every answer counts exactly the writes made before the
 * gather, 20,000 times; the default form is exact for code that sends its own core's writes
 * through the run queue too, and shows the trap for inline writes. Core sets and
 * SN_GATHER_SKIP_SELF choose the cores.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <sn.h>
#include <string.h>

#include "reactor_util.h"

/* What each core has applied, per writer: written only by its own core. */
static struct {
    uint64_t applied_from[MAXC];
} SN_CACHE_ALIGNED store[MAXC];

struct tally {
    uint64_t right, wrong, issued, answered, total;
    struct sn_promise *done;
} SN_CACHE_ALIGNED;
static struct tally tally[MAXC];

enum mode { INLINE_WRITES_INLINE_GATHER, QUEUED_WRITES_QUEUED_GATHER, INLINE_WRITES_QUEUED_GATHER };
static enum mode mode;
static unsigned iterations;
#define BATCH 64 /* writes and gathers handled per task, like pipelined requests of one read */

static void apply_write(void *arg)
{
    store[sn_core_id()].applied_from[(uintptr_t)arg]++;
}

static struct sn_future *applied(void *arg)
{
    return sn_ready(store[sn_core_id()].applied_from[(uintptr_t)arg]);
}

static void check_gather(void *arg, int err, uint64_t value)
{
    struct tally *t = &tally[sn_core_id()];
    if (!err && value == (uintptr_t)arg)
        t->right++;
    else
        t->wrong++;
    if (++t->answered == t->total)
        sn_promise_set(t->done, 0);
}

static void one_write_and_gather(unsigned me, unsigned n, uint64_t i)
{
    unsigned owner = (unsigned)((i * 7 + me) % n);
    void *writer = (void *)(uintptr_t)me;
    if (owner == me && mode != QUEUED_WRITES_QUEUED_GATHER)
        apply_write(writer);
    else
        sn_send(owner, apply_write, writer);
    struct sn_gather how = {.flags =
                                mode == INLINE_WRITES_INLINE_GATHER ? SN_GATHER_LOCAL_INLINE : 0};
    sn_done(sn_map_reduce_on(&how, applied, writer, 0, sn_reduce_sum, NULL), check_gather,
            (void *)(uintptr_t)(i + 1));
}

static struct sn_future *pipeline(void *arg, uint64_t v)
{
    (void)arg, (void)v;
    unsigned me = sn_core_id(), n = sn_core_count();
    struct tally *t = &tally[me];
    for (unsigned k = 0; k < BATCH && t->issued < t->total; k++)
        one_write_and_gather(me, n, t->issued++);
    if (t->issued < t->total)
        return sn_then(sn_yield(), pipeline, NULL);
    return SN_SUCCESS;
}

static struct sn_future *start_pipeline(void *arg)
{
    (void)arg;
    struct tally *t = &tally[sn_core_id()];
    struct sn_future *f;
    t->done = sn_promise_new(&f);
    t->total = iterations;
    sn_ignore(pipeline(NULL, 0));
    return f;
}

static struct sn_future *zero(void *arg, uint64_t v)
{
    (void)arg, (void)v;
    return sn_ready(0);
}

static struct sn_future *pipeline_main(void *arg)
{
    (void)arg;
    return sn_then(sn_invoke_on_all(start_pipeline, NULL), zero, NULL);
}

/* Runs the pipeline on every core; returns the wrong answers, checks every one came. */
static uint64_t run_pipeline(unsigned ncores, enum mode m, unsigned iters)
{
    struct sn_config cfg = test_config(ncores);
    memset(store, 0, sizeof store);
    memset(tally, 0, sizeof tally);
    mode = m;
    iterations = iters;
    cr_assert_eq(sn_run(&cfg, pipeline_main, NULL), 0);
    uint64_t wrong = 0;
    for (unsigned c = 0; c < ncores; c++) {
        cr_expect_eq(tally[c].right + tally[c].wrong, iters);
        wrong += tally[c].wrong;
        struct sn_core_metrics met;
        cr_assert_eq(sn_metrics_core(c, &met), 0);
        cr_expect_eq(met.pool_in_use, 0);
    }
    return wrong;
}

Test(smp_gather, inline_gather_sees_pipelined_writes_2_cores, .timeout = 120)
{
    uint64_t wrong = run_pipeline(2, INLINE_WRITES_INLINE_GATHER, SCALE(20000, 10));
    cr_expect_eq(wrong, 0, "%lu of the gathers missed a write made before them",
                 (unsigned long)wrong);
}

Test(smp_gather, inline_gather_sees_pipelined_writes_4_cores, .timeout = 120)
{
    uint64_t wrong = run_pipeline(4, INLINE_WRITES_INLINE_GATHER, SCALE(20000, 10));
    cr_expect_eq(wrong, 0, "%lu of the gathers missed a write made before them",
                 (unsigned long)wrong);
}

Test(smp_gather, queued_gather_matches_queued_writes, .timeout = 120)
{
    uint64_t wrong = run_pipeline(3, QUEUED_WRITES_QUEUED_GATHER, SCALE(20000, 10));
    cr_expect_eq(wrong, 0, "%lu of the gathers missed a write made before them",
                 (unsigned long)wrong);
}

/*
 * The trap the inline form exists for: the default form runs the own part after the current
 * task, so it also counts the inline writes made after the gather in the same batch.
 */
Test(smp_gather, queued_gather_after_inline_writes_is_the_trap, .timeout = 120)
{
    uint64_t wrong = run_pipeline(2, INLINE_WRITES_QUEUED_GATHER, SCALE(20000, 10));
    cr_expect_gt(wrong, 0);
}

/* ---- choosing cores ------------------------------------------------------------------ */

static uint64_t got_value[8];
static int got_err[8];

static void rec(void *arg, int err, uint64_t v)
{
    uintptr_t i = (uintptr_t)arg;
    got_err[i] = err;
    got_value[i] = v;
}

/* Each core answers 1 << its id, so the sum names the cores that ran. */
static struct sn_future *my_bit(void *arg)
{
    (void)arg;
    return sn_ready((uint64_t)1 << sn_core_id());
}

static struct sn_future *choose_main(void *arg)
{
    (void)arg;
    static struct sn_core_set odd, bad, none;
    sn_core_set_clear(&odd);
    for (unsigned c = 1; c < sn_core_count(); c += 2)
        sn_core_set_add(&odd, c);
    sn_core_set_clear(&bad);
    sn_core_set_add(&bad, sn_core_count());
    sn_core_set_clear(&none);
    struct sn_gather only_odd = {.cores = &odd};
    struct sn_gather others = {.flags = SN_GATHER_SKIP_SELF};
    struct sn_gather odd_inline = {.cores = &odd, .flags = SN_GATHER_LOCAL_INLINE};
    struct sn_gather missing = {.cores = &bad};
    struct sn_gather empty = {.cores = &none};
    sn_done(sn_map_reduce_on(&only_odd, my_bit, NULL, 0, sn_reduce_sum, NULL), rec, (void *)0);
    sn_done(sn_map_reduce_on(&others, my_bit, NULL, 0, sn_reduce_sum, NULL), rec, (void *)1);
    sn_done(sn_map_reduce_on(&odd_inline, my_bit, NULL, 0, sn_reduce_sum, NULL), rec, (void *)2);
    sn_done(sn_map_reduce_on(&missing, my_bit, NULL, 0, sn_reduce_sum, NULL), rec, (void *)3);
    sn_done(sn_map_reduce_on(&empty, my_bit, NULL, 42, sn_reduce_sum, NULL), rec, (void *)4);
    sn_done(sn_invoke_on(&others, my_bit, NULL), rec, (void *)5);
    sn_done(sn_map_reduce_on(NULL, my_bit, NULL, 0, sn_reduce_sum, NULL), rec, (void *)6);
    return sn_then(sn_sleep(5000000), zero, NULL);
}

Test(smp_gather, core_sets_and_skip_self, .timeout = 30)
{
    struct sn_config cfg = test_config(4);
    memset(got_err, 1, sizeof got_err);
    cr_assert_eq(sn_run(&cfg, choose_main, NULL), 0);
    cr_expect_eq(got_err[0], 0);
    cr_expect_eq(got_value[0], 0xa, "odd cores of 4: 1 and 3");
    cr_expect_eq(got_value[1], 0xe, "all but core 0");
    cr_expect_eq(got_value[2], 0xa, "inline changes nothing when core 0 is not chosen");
    cr_expect_eq(got_err[3], -EINVAL);
    cr_expect_eq(got_err[4], 0);
    cr_expect_eq(got_value[4], 42, "an empty choice gives init at once");
    cr_expect_eq(got_value[5], 3, "three cores ran");
    cr_expect_eq(got_value[6], 0xf);
}
