/*
 * The fixture of the tests that drive a scheduler by hand on the test thread (test_future.c,
 * test_timer.c, test_fiber_core.c, test_sync.c): `sched` is created and bound before each
 * test, run empty, checked for live fibers, leaked pool blocks and registered wait lists, and
 * destroyed after it. Use as TestSuite(name, .init = sched_setup,
 * .fini = sched_teardown).
 */
#ifndef SN_TEST_SCHED_FIXTURE_H
#define SN_TEST_SCHED_FIXTURE_H

#include <criterion/criterion.h>

#include "core/sched.h"

static struct sn__sched sched;

static void sched_setup(void)
{
    cr_assert_eq(sn__sched_init(&sched, 0, NULL), 0);
    sn__sched_bind(&sched, 1);
}

static void sched_teardown(void)
{
    sn__sched_run(&sched, 0);
    cr_expect_eq(sched.fibers.nlive, 0, "fibers alive at the end: %lu",
                 (unsigned long)sched.fibers.nlive);
    /* Every future, record and timer went back to the pool: nothing leaked. */
    cr_expect_eq(sched.pool.in_use, 0, "pool blocks in use at the end: %lu",
                 (unsigned long)sched.pool.in_use);
    cr_expect(sn_list_empty(&sched.sync_waiting), "a wait list is still registered");
    sn__sched_bind(NULL, 0);
    sn__sched_destroy(&sched);
}

#endif
