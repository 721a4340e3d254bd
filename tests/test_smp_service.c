/*
 * Service groups (include/sn/smp.h): the deadlock pattern of scylladb#15844 and Glommio #555.
 * Eight unpinned cores (so they interleave on this machine's 2 CPUs) each submit to every
 * other core through one group capped at 1 (or 4) request in flight per destination, all
 * requests issued at once, and every remote function submits back to its caller through the
 * same group before it answers. The run must finish with every reply right, the cap must
 * hold at the targets, requests must have waited instead of filling the mesh's overflow,
 * and the nested requests must have gone through as exempt. The same flood without a group
 * does use the overflow, which shows what the cap prevents.
 */
#include <criterion/criterion.h>
#include <sn.h>
#include <string.h>

#include "reactor_util.h"

#define NCORES 8
#define TOTAL  100000u /* requests in all, nested ones not counted */

struct tally {
    uint64_t ok, bad, left;
    struct sn_promise *done;
    /* Written by this core as a target: requests of each caller being served now, and the
     * most seen at once. */
    unsigned active[NCORES];
    unsigned peak[NCORES];
} SN_CACHE_ALIGNED;

static struct tally tally[NCORES];
static struct sn_service_group *group; /* NULL: plain sn_submit_to (the control) */
static unsigned per_core;

static uint64_t encode(unsigned caller, unsigned i)
{
    return ((uint64_t)caller << 32) | i;
}

static unsigned caller_of(uint64_t x)
{
    return (unsigned)(x >> 32);
}

static struct sn_future *submit(unsigned core, sn_remote_fn fn, uint64_t x)
{
    void *arg = (void *)(uintptr_t)x;
    return group ? sn_submit_to_via(group, core, fn, arg) : sn_submit_to(core, fn, arg);
}

/* The nested call, run back on the original caller. */
static struct sn_future *inner(void *arg)
{
    return sn_ready((uint64_t)(uintptr_t)arg + 1);
}

static struct sn_future *outer_done(void *arg, uint64_t value)
{
    struct tally *t = &tally[sn_core_id()];
    t->active[caller_of((uintptr_t)arg)]--;
    return sn_ready(value + 1);
}

/* Runs on the target: holds the request open until the nested call back has answered. */
static struct sn_future *outer(void *arg)
{
    uint64_t x = (uintptr_t)arg;
    struct tally *t = &tally[sn_core_id()];
    unsigned from = caller_of(x);
    if (++t->active[from] > t->peak[from])
        t->peak[from] = t->active[from];
    return sn_then(submit(from, inner, x), outer_done, arg);
}

static void check(void *arg, int err, uint64_t value)
{
    struct tally *t = &tally[sn_core_id()];
    if (!err && value == (uint64_t)(uintptr_t)arg + 2)
        t->ok++;
    else
        t->bad++;
    if (--t->left == 0)
        sn_promise_set(t->done, t->ok);
}

/* Top-level work on each core: every request issued at once, round robin over the others. */
static struct sn_future *flood(void *arg)
{
    (void)arg;
    unsigned me = sn_core_id(), n = sn_core_count();
    struct tally *t = &tally[me];
    struct sn_future *f;
    t->done = sn_promise_new(&f);
    t->left = per_core;
    for (unsigned i = 0; i < per_core; i++) {
        unsigned to = (me + 1 + i % (n - 1)) % n;
        uint64_t x = encode(me, i);
        sn_done(submit(to, outer, x), check, (void *)(uintptr_t)x);
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

/* Runs the flood; returns the mesh overflow summed over the cores. */
static uint64_t run_flood(unsigned cap)
{
    memset(tally, 0, sizeof tally);
    per_core = TOTAL / NCORES;
    group = NULL;
    if (cap) {
        struct sn_service_group_config gc = {.name = "flood", .max_inflight = cap};
        cr_assert_eq(sn_service_group_create(&gc, &group), 0);
    }
    struct sn_config cfg = test_config(NCORES);
    cr_assert_eq(sn_run(&cfg, flood_main, NULL), 0);
    uint64_t overflow = 0, exempt = 0;
    for (unsigned c = 0; c < NCORES; c++) {
        cr_expect_eq(tally[c].bad, 0, "core %u: %lu bad replies", c, (unsigned long)tally[c].bad);
        cr_expect_eq(tally[c].ok, per_core, "core %u: %lu of %u replies", c,
                     (unsigned long)tally[c].ok, per_core);
        struct sn_core_metrics m;
        cr_assert_eq(sn_metrics_core(c, &m), 0);
        cr_expect_eq(m.pool_in_use, 0, "core %u leaked %lu pooled objects", c,
                     (unsigned long)m.pool_in_use);
        cr_expect_eq(m.cancelled, 0);
        overflow += m.overflow;
        for (unsigned from = 0; from < NCORES; from++) {
            if (from == c)
                continue;
            cr_expect_gt(tally[c].peak[from], 0, "no request %u -> %u", from, c);
            if (cap)
                cr_expect_leq(tally[c].peak[from], cap, "%u requests %u -> %u at once, cap %u",
                              tally[c].peak[from], from, c, cap);
        }
        if (cap) {
            struct sn_service_group_stats st;
            cr_assert_eq(sn_service_group_stats(group, c, &st), 0);
            cr_expect_gt(st.waited, 0, "core %u: no request waited for the cap", c);
            cr_expect_eq(st.inflight, 0);
            cr_expect_eq(st.waiting, 0);
            exempt += st.exempt;
        }
    }
    if (cap) {
        /* Every nested call went through the group, exempt (else the flood could deadlock). */
        cr_expect_eq(exempt, (uint64_t)per_core * NCORES, "exempt %lu", (unsigned long)exempt);
        sn_service_group_destroy(group);
        group = NULL;
    }
    return overflow;
}

Test(smp_service, nested_all_pairs_cap_1, .timeout = 300)
{
    uint64_t overflow = run_flood(1);
    cr_expect_eq(overflow, 0, "capped requests still went through the overflow: %lu",
                 (unsigned long)overflow);
}

Test(smp_service, nested_all_pairs_cap_4, .timeout = 300)
{
    uint64_t overflow = run_flood(4);
    cr_expect_eq(overflow, 0, "capped requests still went through the overflow: %lu",
                 (unsigned long)overflow);
}

/* The control: the same flood uncapped fills the rings and grows the overflow. */
Test(smp_service, uncapped_flood_overflows, .timeout = 300)
{
    uint64_t overflow = run_flood(0);
    cr_expect_gt(overflow, 0, "the uncapped flood never used the overflow");
}

Test(smp_service, create_rejects_bad_config)
{
    struct sn_service_group *g = NULL;
    struct sn_service_group_config gc = {.max_inflight = 0};
    cr_expect_eq(sn_service_group_create(&gc, &g), -EINVAL);
    cr_expect_eq(sn_service_group_create(NULL, &g), -EINVAL);
    gc.max_inflight = 1;
    cr_expect_eq(sn_service_group_create(&gc, NULL), -EINVAL);
    cr_assert_eq(sn_service_group_create(&gc, &g), 0);
    struct sn_service_group_stats st;
    cr_expect_eq(sn_service_group_stats(g, 0, &st), 0);
    cr_expect_eq(st.waited, 0);
    cr_expect_eq(sn_service_group_stats(g, SN_MESH_MAX_CORES, &st), -EINVAL);
    sn_service_group_destroy(g);
    sn_service_group_destroy(NULL);
}

/*
 * sn_send has no reply, so nothing could give a cap's slot back; the capped way to fire and
 * forget (include/sn/smp.h) is sn_submit_to_via with a remote function that returns
 * SN_SUCCESS, its future dropped with sn_ignore: the reply frees the slot. 1000 of them at
 * once through a cap of 1 must all run, one at a time, each but the first having waited.
 */
#define FORGET 1000u

static unsigned forgot_ran, forgot_active, forgot_peak; /* written by core 1 only */

static struct sn_future *forgotten_end(void *arg, uint64_t v)
{
    (void)arg, (void)v;
    forgot_active--;
    return SN_SUCCESS;
}

/* Stays active across a yield, so two served at once would show in the peak. */
static struct sn_future *forgotten(void *arg)
{
    (void)arg;
    forgot_ran++;
    if (++forgot_active > forgot_peak)
        forgot_peak = forgot_active;
    return sn_then(sn_yield(), forgotten_end, NULL);
}

static struct sn_future *forget_last(void *arg, uint64_t v)
{
    (void)arg, (void)v;
    return SN_SUCCESS;
}

static struct sn_future *forget_main(void *arg)
{
    struct sn_service_group *g = arg;
    for (unsigned i = 0; i < FORGET - 1; i++)
        sn_ignore(sn_submit_to_via(g, 1, forgotten, NULL));
    /* Waiters leave in order: when the last one is answered, all ran. */
    return sn_then(sn_submit_to_via(g, 1, forgotten, NULL), forget_last, NULL);
}

Test(smp_service, fire_and_forget_through_a_group_is_capped, .timeout = 60)
{
    struct sn_service_group *g;
    struct sn_service_group_config gc = {.max_inflight = 1};
    cr_assert_eq(sn_service_group_create(&gc, &g), 0);
    forgot_ran = forgot_active = forgot_peak = 0;
    struct sn_config cfg = test_config(2);
    cr_assert_eq(sn_run(&cfg, forget_main, g), 0);
    cr_expect_eq(forgot_ran, FORGET);
    cr_expect_eq(forgot_peak, 1, "at most one in flight: %u", forgot_peak);
    struct sn_service_group_stats st;
    cr_assert_eq(sn_service_group_stats(g, 0, &st), 0);
    cr_expect_eq(st.waited, FORGET - 1, "waited: %lu", (unsigned long)st.waited);
    cr_expect_eq(st.inflight + st.waiting, 0);
    sn_service_group_destroy(g);
}
