/*
 * Cross-core calls on a running reactor with 1, 2, 4 and 8 cores (unpinned, so 4 and 8 run
 * interleaved on 2 CPUs): every core calls every core, replies come back to the caller's core
 * with the right value, errors propagate, remote functions may return pending futures.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <sn.h>
#include <stdlib.h>
#include <string.h>

#include "reactor_util.h"

/* Per-core results, each slot written only by its core. */
struct tally {
    uint64_t ok;       /* replies with the expected value on the expected core */
    uint64_t bad;      /* anything else */
    uint64_t expected; /* calls issued */
    struct sn_promise *done;
    uint64_t left;
} SN_CACHE_ALIGNED;

static struct tally tally[MAXC];
static unsigned per_pair;

static uint64_t encode(unsigned caller, unsigned target, unsigned i)
{
    return ((uint64_t)caller << 48) | ((uint64_t)target << 32) | i;
}

/* Remote side: answers with the target core and the index. */
static struct sn_future *echo(void *arg)
{
    uint64_t x = (uintptr_t)arg;
    return sn_ready(((uint64_t)sn_core_id() << 32) | (x & 0xffffffffu));
}

static int echo_call(void *arg, uint64_t *value)
{
    uint64_t x = (uintptr_t)arg;
    *value = ((uint64_t)sn_core_id() << 32) | (x & 0xffffffffu);
    return 0;
}

static void finish_one(struct tally *t)
{
    if (--t->left == 0)
        sn_promise_set(t->done, t->ok);
}

static void check_reply(void *arg, int err, uint64_t value)
{
    uint64_t x = (uintptr_t)arg;
    unsigned caller = (unsigned)(x >> 48), target = (unsigned)(x >> 32) & 0xffff;
    struct tally *t = &tally[sn_core_id()];
    if (!err && sn_core_id() == caller && value == (((uint64_t)target << 32) | (x & 0xffffffffu)))
        t->ok++;
    else
        t->bad++;
    finish_one(t);
}

static int use_call_on;

/* On each core: call every core per_pair times, all in flight together. */
static struct sn_future *flood(void *arg)
{
    (void)arg;
    unsigned me = sn_core_id(), n = sn_core_count();
    struct tally *t = &tally[me];
    struct sn_future *f;
    t->done = sn_promise_new(&f);
    t->left = t->expected = (uint64_t)n * per_pair;
    for (unsigned i = 0; i < per_pair; i++)
        for (unsigned d = 0; d < n; d++) {
            void *a = (void *)(uintptr_t)encode(me, d, i);
            struct sn_future *r = use_call_on ? sn_call_on(d, echo_call, a) : sn_submit_to(d, echo, a);
            sn_done(r, check_reply, a);
        }
    return f;
}

static struct sn_future *stop_with_zero(void *arg, uint64_t v)
{
    (void)arg, (void)v;
    return sn_ready(0);
}

static struct sn_future *flood_main(void *arg)
{
    (void)arg;
    return sn_then(sn_invoke_on_all(flood, NULL), stop_with_zero, NULL);
}

static void run_all_to_all(unsigned ncores, unsigned pairs, int call_on)
{
    struct sn_config cfg = test_config(ncores);
    memset(tally, 0, sizeof tally);
    per_pair = pairs;
    use_call_on = call_on;
    cr_assert_eq(sn_run(&cfg, flood_main, NULL), 0);
    for (unsigned c = 0; c < ncores; c++) {
        cr_expect_eq(tally[c].bad, 0, "core %u: %lu bad replies", c, (unsigned long)tally[c].bad);
        cr_expect_eq(tally[c].ok, (uint64_t)ncores * pairs, "core %u: %lu ok of %lu", c,
                     (unsigned long)tally[c].ok, (unsigned long)((uint64_t)ncores * pairs));
        struct sn_core_metrics m;
        cr_assert_eq(sn_metrics_core(c, &m), 0);
        cr_expect_eq(m.pool_in_use, 0, "core %u leaked %lu pooled objects", c,
                     (unsigned long)m.pool_in_use);
        cr_expect_eq(m.cancelled, 0);
    }
}

Test(smp, all_to_all_1, .timeout = 60)
{
    run_all_to_all(1, SCALE(5000, 5), 0);
}

Test(smp, all_to_all_2, .timeout = 60)
{
    run_all_to_all(2, SCALE(5000, 5), 0);
}

Test(smp, all_to_all_4, .timeout = 60)
{
    run_all_to_all(4, SCALE(3000, 5), 0);
}

Test(smp, all_to_all_8, .timeout = 60)
{
    run_all_to_all(8, SCALE(2000, 5), 0);
}

Test(smp, call_on_all_to_all_4, .timeout = 60)
{
    run_all_to_all(4, SCALE(2000, 5), 1);
}

/* ---- errors, chains, remote futures --------------------------------------------- */

struct chain_result {
    int err_remote;       /* error of a remote sn_failed */
    int err_skipped;      /* then after a failure: skipped, error kept */
    int skipped_calls;
    int err_bad_core;
    uint64_t nested;      /* value through a remote fn that itself calls a third core */
    uint64_t slept;       /* value of a remote fn that returns a pending sleep chain */
    uint64_t sum;         /* map_reduce */
    uint64_t all;         /* when_all over submit_to to every core */
    int all_err;
    uint64_t sends;       /* sn_send arrivals, counted on core 0 */
    int done;
};
static struct chain_result cres;

static struct sn_future *fail_eio(void *arg)
{
    (void)arg;
    return sn_failed(-EIO);
}

static struct sn_future *never(void *arg, uint64_t v)
{
    (void)arg, (void)v;
    cres.skipped_calls++;
    return SN_SUCCESS;
}

static struct sn_future *plus_core(void *arg, uint64_t v)
{
    (void)arg;
    return sn_ready(v + 1000 * (sn_core_id() + 1));
}

/* Runs on core 1: calls core (n-1), adds its own mark to the answer. */
static struct sn_future *nested(void *arg)
{
    (void)arg;
    return sn_then(sn_submit_to(sn_core_count() - 1, echo, (void *)(uintptr_t)7), plus_core, NULL);
}

static struct sn_future *after_sleep(void *arg, uint64_t v)
{
    (void)v;
    return sn_ready((uintptr_t)arg + sn_core_id());
}

static struct sn_future *sleepy(void *arg)
{
    return sn_then(sn_sleep(2000000), after_sleep, arg);
}

static struct sn_future *my_id(void *arg)
{
    (void)arg;
    return sn_ready(sn_core_id() + 1);
}

static void count_send(void *arg)
{
    (void)arg;
    cres.sends++; /* only core 0 is targeted */
}

static void send_back(void *arg)
{
    (void)arg;
    sn_send(0, count_send, NULL);
}

static void rec_err(void *arg, int err, uint64_t v)
{
    (void)v;
    *(int *)arg = err;
}

static void rec_val(void *arg, int err, uint64_t v)
{
    *(uint64_t *)arg = err ? (uint64_t)-1 : v;
}

static struct sn_result all_res[MAXC];
static void rec_all(void *arg, int err, uint64_t v)
{
    (void)arg;
    cres.all_err = err;
    cres.all = v;
}

static struct sn_future *finish(void *arg, uint64_t v)
{
    (void)arg, (void)v;
    cres.done = 1;
    return sn_ready(0);
}

/* Every chain started by chains_main has recorded its result (each one is non-zero). */
static bool chains_settled(void *arg)
{
    (void)arg;
    return cres.err_remote && cres.err_skipped && cres.err_bad_core && cres.nested && cres.slept &&
           cres.sum && cres.all && cres.sends == 10u * sn_core_count();
}

static struct sn_future *chains_main(void *arg)
{
    (void)arg;
    unsigned n = sn_core_count(), last = n - 1;
    sn_done(sn_submit_to(last, fail_eio, NULL), rec_err, &cres.err_remote);
    sn_done(sn_then(sn_then(sn_submit_to(last, fail_eio, NULL), never, NULL), never, NULL),
            rec_err, &cres.err_skipped);
    sn_done(sn_submit_to(n, echo, NULL), rec_err, &cres.err_bad_core);
    sn_done(sn_submit_to(n > 1 ? 1 : 0, nested, NULL), rec_val, &cres.nested);
    sn_done(sn_submit_to(last, sleepy, (void *)(uintptr_t)100), rec_val, &cres.slept);
    sn_done(sn_map_reduce(my_id, NULL, 0, sn_reduce_sum, NULL), rec_val, &cres.sum);
    struct sn_future *fs[MAXC];
    for (unsigned i = 0; i < n; i++)
        fs[i] = sn_submit_to(i, my_id, NULL);
    sn_done(sn_when_all(fs, n, all_res), rec_all, NULL);
    for (unsigned i = 0; i < n; i++)
        for (int k = 0; k < 10; k++)
            sn_send(i, send_back, NULL);
    /* Everything above settles within a few ms: wait for that, then stop. */
    return sn_then(ru_poll_until(chains_settled, NULL, 10000), finish, NULL);
}

static void run_chains(unsigned ncores)
{
    struct sn_config cfg = test_config(ncores);
    memset(&cres, 0, sizeof cres);
    cr_assert_eq(sn_run(&cfg, chains_main, NULL), 0);
    unsigned last = ncores - 1;
    cr_expect_eq(cres.done, 1);
    cr_expect_eq(cres.err_remote, -EIO);
    cr_expect_eq(cres.err_skipped, -EIO);
    cr_expect_eq(cres.skipped_calls, 0);
    cr_expect_eq(cres.err_bad_core, -EINVAL);
    cr_expect_eq(cres.nested, ((uint64_t)last << 32 | 7) + 1000 * ((ncores > 1 ? 1 : 0) + 1));
    cr_expect_eq(cres.slept, 100 + last);
    cr_expect_eq(cres.sum, (uint64_t)ncores * (ncores + 1) / 2);
    cr_expect_eq(cres.all_err, 0);
    cr_expect_eq(cres.all, ncores);
    for (unsigned i = 0; i < ncores; i++)
        cr_expect_eq(all_res[i].value, i + 1);
    cr_expect_eq(cres.sends, 10u * ncores);
    for (unsigned c = 0; c < ncores; c++) {
        struct sn_core_metrics m;
        cr_assert_eq(sn_metrics_core(c, &m), 0);
        cr_expect_eq(m.pool_in_use, 0, "core %u leaked %lu", c, (unsigned long)m.pool_in_use);
    }
}

Test(smp, chains_errors_nested_1, .timeout = 60)
{
    run_chains(1);
}

Test(smp, chains_errors_nested_2, .timeout = 60)
{
    run_chains(2);
}

Test(smp, chains_errors_nested_4, .timeout = 60)
{
    run_chains(4);
}

Test(smp, chains_errors_nested_8, .timeout = 60)
{
    run_chains(8);
}

/* ---- sharded ------------------------------------------------------------------------ */

struct shard {
    unsigned core;
    uint64_t hits;
};
static int shard_inits, shard_finis_ok;
static uint64_t shard_total;

static void *shard_init(void *arg, unsigned core)
{
    (void)arg;
    struct shard *s = malloc(sizeof *s);
    s->core = core;
    s->hits = 0;
    __atomic_add_fetch(&shard_inits, 1, __ATOMIC_RELAXED);
    return s;
}

static void shard_fini(void *inst, void *arg)
{
    (void)arg;
    struct shard *s = inst;
    if (s->core == sn_core_id() && s->hits == 3)
        __atomic_add_fetch(&shard_finis_ok, 1, __ATOMIC_RELAXED);
    free(s);
}

static struct sn_sharded *sharded;

static struct sn_future *shard_hit(void *inst, void *arg)
{
    (void)arg;
    struct shard *s = inst;
    if (s != sn_sharded_local(sharded) || s->core != sn_core_id())
        return sn_failed(-EXDEV);
    s->hits++;
    return sn_ready(s->hits);
}

static uint64_t shard_sum_of_hits(void *arg, uint64_t acc, uint64_t v)
{
    (void)arg;
    return acc + v;
}

static struct sn_future *read_hits(void *arg)
{
    (void)arg;
    return sn_ready(((struct shard *)sn_sharded_local(sharded))->hits);
}

static struct sn_future *shard_step(void *arg, uint64_t v)
{
    int step = (int)(uintptr_t)arg;
    (void)v;
    if (step < 3)
        return sn_then(sn_sharded_invoke_on_all(sharded, shard_hit, NULL), shard_step,
                       (void *)(uintptr_t)(step + 1));
    if (step == 3)
        return sn_then(sn_map_reduce(read_hits, NULL, 0, shard_sum_of_hits, NULL), shard_step,
                       (void *)(uintptr_t)4);
    shard_total = v;
    return sn_then(sn_sharded_stop(sharded), stop_with_zero, NULL);
}

static struct sn_future *sharded_main(void *arg)
{
    (void)arg;
    return sn_then(sn_sharded_start(shard_init, shard_fini, NULL, &sharded), shard_step,
                   (void *)(uintptr_t)0);
}

Test(smp, sharded_instances_per_core, .timeout = 60)
{
    for (unsigned n = 1; n <= 4; n *= 2) {
        struct sn_config cfg = test_config(n);
        shard_inits = shard_finis_ok = 0;
        shard_total = 0;
        cr_assert_eq(sn_run(&cfg, sharded_main, NULL), 0);
        cr_expect_eq(shard_inits, (int)n);
        cr_expect_eq(shard_finis_ok, (int)n);
        cr_expect_eq(shard_total, 3u * n);
    }
}

/* sn_sharded_stop after sn_stop: the fini calls still run on each instance's own core. */
static struct sn_future *stop_then_unshard(void *arg, uint64_t v)
{
    (void)arg, (void)v;
    sn_stop(3);
    /* Every instance has 3 hits only in the other test: count finis on the right core. */
    return sn_sharded_stop(sharded);
}

static void shard_fini_count(void *inst, void *arg)
{
    (void)arg;
    struct shard *s = inst;
    if (s->core == sn_core_id())
        __atomic_add_fetch(&shard_finis_ok, 1, __ATOMIC_RELAXED);
    free(s);
}

static struct sn_future *sharded_stop_main(void *arg)
{
    (void)arg;
    return sn_then(sn_sharded_start(shard_init, shard_fini_count, NULL, &sharded),
                   stop_then_unshard, NULL);
}

Test(smp, sharded_stop_during_shutdown, .timeout = 60)
{
    for (unsigned n = 1; n <= 8; n *= 2) {
        struct sn_config cfg = test_config(n);
        shard_inits = shard_finis_ok = 0;
        cr_assert_eq(sn_run(&cfg, sharded_stop_main, NULL), 3);
        cr_expect_eq(shard_inits, (int)n);
        cr_expect_eq(shard_finis_ok, (int)n, "%u cores: %d fini on their core", n,
                     shard_finis_ok);
        struct sn_core_metrics m;
        for (unsigned c = 0; c < n; c++) {
            cr_assert_eq(sn_metrics_core(c, &m), 0);
            cr_expect_eq(m.pool_in_use, 0);
        }
    }
}
