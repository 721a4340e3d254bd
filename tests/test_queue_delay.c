/*
 * Queue-delay sampling (include/sn/mesh.h sample_every, sn_metrics_queue_delay): one message
 * in n per pair stamped with its enqueue time (a note on its ring's tail line, not a message),
 * its age recorded by the receiver. On a bare mesh driven by the test thread, messages held
 * back before the drain for a known time must show that delay, with the right number of
 * samples, also through the overflow; a backlog deeper than the ring's notes keeps only the
 * newest stamps; a receiver that keeps up sees exactly one sample per n messages. On a running
 * reactor, cross-core calls must leave samples at the configured rate, and none when off.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <sn.h>
#include <string.h>

#include "core/mesh_internal.h"
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

/* Sends n messages 0 -> 1 with the given ring capacity, holds them `hold_ns`, then drains
 * (flushing between drains, so overflowed messages reach the ring). */
static struct sn_mesh *send_hold_drain(unsigned every, uint32_t capacity, unsigned n,
                                       uint64_t hold_ns)
{
    struct sn_mesh *m;
    struct sn_mesh_config cfg = {.ncores = 2, .sample_every = every, .ring_capacity = capacity};
    cr_assert_eq(sn_mesh_create(&cfg, &m), 0);
    struct sn_msg msg = {.fn = count_fn};
    handled = 0;
    for (unsigned i = 0; i < n; i++)
        cr_assert_eq(sn_mesh_send(m, 0, 1, &msg), 0);
    sn_mesh_flush(m, 0, NULL, NULL);
    spin_ns(hold_ns); /* the messages wait before anyone drains them */
    unsigned drained = 0;
    for (int i = 0; i < 64 && drained < n; i++) {
        drained += sn_mesh_drain(m, 1, 0);
        sn_mesh_flush(m, 0, NULL, NULL);
    }
    cr_expect_eq(handled, n);
    cr_expect_eq(drained, n, "stamps are not messages: %u", drained);
    return m;
}

Test(queue_delay, mesh_records_the_held_time)
{
    /* One stamp per 8 messages: 6, as many as a ring holds, so none is overwritten. */
    struct sn_mesh *m = send_hold_drain(8, 0, 8 * SN__MESH_STAMPS, 2000000);
    struct sn_mesh_delay d;
    cr_assert_eq(sn_mesh_queue_delay(m, 0, 1, &d), 0);
    cr_expect_eq(d.samples, SN__MESH_STAMPS);
    /* 99%: ticks become ns at a rate measured over bracketed clock reads, a few us off at
     * worst over this span; max is otherwise exact to 64 ticks. */
    cr_expect_geq(d.max_ns, 2000000 * 99 / 100, "max %lu", (unsigned long)d.max_ns);
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

Test(queue_delay, mesh_stamps_messages_in_overflow)
{
    /* A 16-slot ring: 32 of the 48 messages wait in overflow and reach the ring over several
     * flushes; every stamp still finds its message (its ring index counts the overflow). */
    struct sn_mesh *m = send_hold_drain(8, 16, 8 * SN__MESH_STAMPS, 2000000);
    struct sn_mesh_delay d;
    cr_assert_eq(sn_mesh_queue_delay(m, 0, 1, &d), 0);
    cr_expect_eq(d.samples, SN__MESH_STAMPS);
    cr_expect_geq(d.p50_ns, 2000000 * 3 / 4, "p50 %lu", (unsigned long)d.p50_ns);
    sn_mesh_destroy(m);
}

Test(queue_delay, mesh_deep_backlog_keeps_the_newest_stamps)
{
    /* 80 stamps written before the receiver looks: only the newest SN__MESH_STAMPS remain. */
    struct sn_mesh *m = send_hold_drain(8, 0, 640, 1000000);
    struct sn_mesh_delay d;
    cr_assert_eq(sn_mesh_queue_delay(m, 0, 1, &d), 0);
    cr_expect_eq(d.samples, SN__MESH_STAMPS);
    cr_expect_geq(d.max_ns, 1000000, "max %lu", (unsigned long)d.max_ns);
    sn_mesh_destroy(m);
}

Test(queue_delay, mesh_samples_one_in_n_while_the_receiver_keeps_up)
{
    struct sn_mesh *m;
    struct sn_mesh_config cfg = {.ncores = 2, .sample_every = 8, .ring_capacity = 64};
    cr_assert_eq(sn_mesh_create(&cfg, &m), 0);
    struct sn_msg msg = {.fn = count_fn};
    handled = 0;
    /* 1000 rounds of 5 messages (not a multiple of 8: stamps fall anywhere in a batch). */
    for (unsigned round = 0; round < 1000; round++) {
        for (unsigned i = 0; i < 5; i++)
            cr_assert_eq(sn_mesh_send(m, 0, 1, &msg), 0);
        sn_mesh_flush(m, 0, NULL, NULL);
        cr_assert_eq(sn_mesh_drain(m, 1, 0), 5);
    }
    cr_expect_eq(handled, 5000);
    struct sn_mesh_delay d;
    cr_assert_eq(sn_mesh_queue_delay(m, 0, 1, &d), 0);
    cr_expect_eq(d.samples, 5000 / 8);
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

static unsigned rounds_left;

static struct sn_future *next_round(void);

static struct sn_future *round_done(void *arg, uint64_t value)
{
    (void)arg, (void)value;
    return --rounds_left ? next_round() : sn_ready(0);
}

/* 64 calls in flight, the next 64 when they are answered: a receiver that keeps up. */
static struct sn_future *next_round(void)
{
    struct sn_future *fs[64];
    for (unsigned i = 0; i < 64; i++)
        fs[i] = sn_submit_to(1, answer, NULL);
    return sn_then(sn_when_all(fs, 64, NULL), round_done, NULL);
}

static struct sn_future *calls_main(void *arg)
{
    (void)arg;
    rounds_left = CALLS / 64;
    return next_round();
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
    /* 6400 requests and 6400 replies: one message in 64 stamped on each side. */
    uint64_t n = run_and_count(0);
    cr_expect_eq(n, 2 * CALLS / 64, "samples %lu", (unsigned long)n);
}

Test(queue_delay, reactor_sampling_off, .timeout = 60)
{
    cr_expect_eq(run_and_count(SN_CONFIG_NO_DELAY_SAMPLE), 0);
    struct sn_mesh_delay d;
    cr_expect_eq(sn_metrics_queue_delay(0, 0, &d), -EINVAL);
}
