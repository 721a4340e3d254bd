/*
 * Queue-delay sampling (include/sn/mesh.h sample_every, sn_metrics_queue_delay): a stamp
 * ahead of one message in n per pair, its age recorded by the receiver. On a bare mesh
 * driven by the test thread, messages held back before the drain for a known time must show
 * that delay, with the right number of samples; on a running reactor, cross-core calls must
 * leave samples at the configured rate, and none when sampling is off.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <sn.h>
#include <string.h>

#include "reactor_util.h"

static unsigned handled;

static void count_fn(const struct sn_msg *msg, unsigned from)
{
    (void)msg, (void)from;
    handled++;
}

static void spin_ns(uint64_t ns)
{
    uint64_t end = sn_now_ns() + ns;
    while (sn_now_ns() < end) {
    }
}

Test(queue_delay, mesh_records_the_held_time)
{
    struct sn_mesh *m;
    struct sn_mesh_config cfg = {.ncores = 2, .sample_every = 4};
    cr_assert_eq(sn_mesh_create(&cfg, &m), 0);
    struct sn_msg msg = {.fn = count_fn};
    handled = 0;
    for (unsigned i = 0; i < 64; i++)
        cr_assert_eq(sn_mesh_send(m, 0, 1, &msg), 0);
    sn_mesh_flush(m, 0, NULL, NULL);
    spin_ns(2000000); /* the messages wait 2 ms before anyone drains them */
    unsigned drained = 0;
    for (int i = 0; i < 4; i++)
        drained += sn_mesh_drain(m, 1, 0);
    cr_expect_eq(handled, 64);
    cr_expect_eq(drained, 64 + 16, "stamps are messages too: %u", drained);
    struct sn_mesh_delay d;
    cr_assert_eq(sn_mesh_queue_delay(m, 0, 1, &d), 0);
    cr_expect_eq(d.samples, 16);
    cr_expect_geq(d.max_ns, 2000000, "max %lu", (unsigned long)d.max_ns);
    cr_expect_geq(d.p50_ns, 2000000 * 3 / 4, "p50 %lu", (unsigned long)d.p50_ns);
    cr_expect_leq(d.p50_ns, d.p99_ns);
    cr_expect_leq(d.p99_ns, d.max_ns);
    /* The reverse pair saw nothing. */
    cr_assert_eq(sn_mesh_queue_delay(m, 1, 0, &d), 0);
    cr_expect_eq(d.samples, 0);
    cr_expect_eq(sn_mesh_queue_delay(m, 0, 0, &d), -EINVAL);
    cr_expect_eq(sn_mesh_queue_delay(m, 0, 2, &d), -EINVAL);
    sn_mesh_destroy(m);
}

Test(queue_delay, mesh_off_by_default)
{
    struct sn_mesh *m;
    struct sn_mesh_config cfg = {.ncores = 2};
    cr_assert_eq(sn_mesh_create(&cfg, &m), 0);
    struct sn_msg msg = {.fn = count_fn};
    for (unsigned i = 0; i < 256; i++)
        cr_assert_eq(sn_mesh_send(m, 0, 1, &msg), 0);
    sn_mesh_flush(m, 0, NULL, NULL);
    cr_expect_eq(sn_mesh_drain(m, 1, 0), 256);
    struct sn_mesh_delay d;
    cr_assert_eq(sn_mesh_queue_delay(m, 0, 1, &d), 0);
    cr_expect_eq(d.samples, 0);
    sn_mesh_destroy(m);
    cfg.sample_every = 65536;
    cr_expect_eq(sn_mesh_create(&cfg, &m), -EINVAL);
}

#define CALLS 6400

static struct sn_future *answer(void *arg)
{
    (void)arg;
    return SN_SUCCESS;
}

static struct sn_future *calls_main(void *arg)
{
    (void)arg;
    struct sn_future *fs[64];
    for (unsigned round = 0; round < CALLS / 64; round++) {
        for (unsigned i = 0; i < 64; i++)
            fs[i] = sn_submit_to(1, answer, NULL);
        /* Not a fiber: chain rounds through when_all would need state; one batch suffices. */
        sn_ignore(sn_when_all(fs, 64, NULL));
    }
    return sn_ready(0);
}

static uint64_t run_and_count(unsigned every)
{
    struct sn_config cfg = test_config(2);
    cfg.delay_sample_every = every;
    cr_assert_eq(sn_run(&cfg, calls_main, NULL), 0);
    struct sn_mesh_delay to1, back;
    cr_assert_eq(sn_metrics_queue_delay(0, 1, &to1), 0);
    cr_assert_eq(sn_metrics_queue_delay(1, 0, &back), 0);
    cr_expect_leq(to1.p50_ns, to1.max_ns);
    return to1.samples + back.samples;
}

Test(queue_delay, reactor_samples_one_in_64, .timeout = 60)
{
    /* 6400 requests and 6400 replies: a stamp ahead of one message in 64 on each side (the
     * stamps themselves are counted by the countdown). */
    uint64_t n = run_and_count(0);
    cr_expect_geq(n, 2 * CALLS / 64 - 4, "samples %lu", (unsigned long)n);
    cr_expect_leq(n, 2 * CALLS / 63 + 4, "samples %lu", (unsigned long)n);
}

Test(queue_delay, reactor_sampling_off, .timeout = 60)
{
    cr_expect_eq(run_and_count(SN_CONFIG_NO_DELAY_SAMPLE), 0);
    struct sn_mesh_delay d;
    cr_expect_eq(sn_metrics_queue_delay(0, 0, &d), -EINVAL);
}
