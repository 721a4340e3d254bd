/*
 * How long an idle core busy-polls before it sleeps (reactor/loop.c): idle_poll_us after
 * cross-core work (the next message is seen at once by a polling core), io_poll_us after work
 * that came only from io_uring (the kernel wakes the core when io completes). Each test sets
 * idle_poll_us to 10 s and waits 50 ms on a timer, so whether the core slept shows in its
 * sleep count, without any timed assertion.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <sn.h>

#include "reactor_util.h"

#define WAIT_NS 50000000ull

static struct sn_config poll_config(unsigned ncores)
{
    struct sn_config cfg = test_config(ncores);
    cfg.idle_poll_us = 10000000; /* 10 s: a core that polls does not sleep during the wait */
    cfg.io_poll_us = 0;
    return cfg;
}

static struct sn_future *wait_then_end(void *arg, uint64_t value)
{
    (void)arg, (void)value;
    return sn_sleep(WAIT_NS);
}

static struct sn_future *close_file(void *arg, uint64_t fd)
{
    (void)arg;
    return sn_file_close((int)fd);
}

static struct sn_future *main_io_only(void *arg)
{
    (void)arg;
    struct sn_future *f = sn_then(sn_file_open("/dev/null", O_RDONLY, 0), close_file, NULL);
    return sn_then(f, wait_then_end, NULL);
}

Test(idle_poll, io_work_only_sleeps_at_once, .timeout = 60)
{
    struct sn_config cfg = poll_config(1);
    cr_assert_eq(sn_run(&cfg, main_io_only, NULL), 0);
    struct sn_core_metrics m;
    cr_assert_eq(sn_metrics_core(0, &m), 0);
    cr_expect_geq(m.sleeps, 1, "the core polled for idle_poll_us after io work only");
}

static struct sn_future *remote_noop(void *arg)
{
    (void)arg;
    return SN_SUCCESS;
}

static struct sn_future *main_cross_core(void *arg)
{
    (void)arg;
    return sn_then(sn_submit_to(1, remote_noop, NULL), wait_then_end, NULL);
}

Test(idle_poll, cross_core_work_polls_idle_poll_us, .timeout = 60)
{
    struct sn_config cfg = poll_config(2);
    cr_assert_eq(sn_run(&cfg, main_cross_core, NULL), 0);
    struct sn_core_metrics m;
    cr_assert_eq(sn_metrics_core(0, &m), 0);
    cr_expect_eq(m.sleeps, 0, "core 0 slept %lu times after cross-core work",
                 (unsigned long)m.sleeps);
}

/* With both at 10 s nothing changes from the single setting: no sleep after io work either. */
Test(idle_poll, io_poll_us_polls_after_io_work, .timeout = 60)
{
    struct sn_config cfg = poll_config(1);
    cfg.io_poll_us = 10000000;
    cr_assert_eq(sn_run(&cfg, main_io_only, NULL), 0);
    struct sn_core_metrics m;
    cr_assert_eq(sn_metrics_core(0, &m), 0);
    cr_expect_eq(m.sleeps, 0, "the core slept %lu times", (unsigned long)m.sleeps);
}
