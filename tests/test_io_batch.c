/*
 * Batched sleeps (sn_config.io_batch_us; reactor/loop.c, batch_want): an echo server on 2
 * unpinned cores (tests/net_harness.h), clients on a plain thread that ping-pong on k
 * connections at once (a message on each, then every answer). With many connections busy
 * the cores' sleeps wait for batches and every answer still arrives, intact and in time;
 * with one connection no sleep batches even with a batch time of 10 s, which would otherwise
 * hold every answer for 10 s (the test's timeout ends that). A batch that cannot fill (every
 * other round pings one connection only) runs out of time, is counted, and its answer still
 * arrives. The batch's time is proportional to the completions it waits for
 * (sn__batch_wait_us). Whether a core batches at all follows the pace of its batches
 * (sn__batch_pace_want), tested on a model of arrivals at a fixed gap: no clock, no threads.
 */
#include <criterion/criterion.h>

#include "net_harness.h"
#include "io_batch_util.h"
#include "reactor/core.h"

#define MSG_LEN 24

static unsigned n_conns, n_rounds;
static bool odd_rounds_one; /* every odd round pings connection 0 only */

/* One round: a distinct message on every connection, then every answer, compared. */
static int ping_round(const int *fds, unsigned round)
{
    char msg[64], got[MSG_LEN];
    unsigned conns = odd_rounds_one && round % 2 ? 1 : n_conns;
    for (unsigned i = 0; i < conns; i++) {
        snprintf(msg, sizeof msg, "r%08u c%04u ........", round, i);
        if (nu_send_all(fds[i], msg, MSG_LEN))
            return 1;
    }
    for (unsigned i = 0; i < conns; i++) {
        snprintf(msg, sizeof msg, "r%08u c%04u ........", round, i);
        if (nu_recv_all(fds[i], got, MSG_LEN) || memcmp(got, msg, MSG_LEN) != 0)
            return 2;
    }
    return 0;
}

static int ping_client(struct harness *h)
{
    int fds[64], rc = 0;
    unsigned opened = 0;
    for (; opened < n_conns; opened++) {
        if ((fds[opened] = nu_connect(h->port)) < 0) {
            rc = 3;
            break;
        }
        nu_timeout(fds[opened], 30000); /* a lost wake-up fails the read, it does not hang */
    }
    for (unsigned r = 0; r < n_rounds && !rc; r++)
        rc = ping_round(fds, r);
    for (unsigned i = 0; i < opened; i++)
        close(fds[i]);
    wait_server_idle();
    return rc;
}

static uint64_t timeouts; /* the cores' batch_timeouts of the last run_pings */

/* Runs the harness with `batch_us`; returns the cores' batched sleeps. */
static uint64_t run_pings(unsigned conns, unsigned rounds, unsigned batch_us)
{
    n_conns = conns;
    n_rounds = rounds;
    harness_init(ECHO, ping_client);
    struct sn_config cfg = test_config(2);
    cfg.io_batch_us = batch_us;
    int rc = sn_run(&cfg, harness_main, NULL);
    if (H.thread_started)
        pthread_join(H.thread, NULL);
    cr_assert_eq(rc, 0, "sn_run: %d (listen: %s)", rc, sn_strerror(H.listen_err));
    cr_assert_eq(H.client_rc, 0, "client: %d (1 send, 2 answer, 3 connect)", H.client_rc);
    cr_assert_eq(TOTAL(opened), conns);
    cr_assert_eq(TOTAL(clean), conns);
    uint64_t batched = 0;
    timeouts = 0;
    for (unsigned i = 0; i < 2; i++) {
        struct sn_core_metrics m;
        cr_assert_eq(sn_metrics_core(i, &m), 0);
        batched += m.batched_sleeps;
        timeouts += m.batch_timeouts;
    }
    return batched;
}

Test(io_batch, many_busy_connections_batch_and_every_answer_arrives, .timeout = 120)
{
    if (!kernel_batches())
        cr_skip_test("the kernel has no minimum wait (IORING_FEAT_MIN_TIMEOUT)");
    uint64_t batched = run_pings(16, SCALE(400, 4), 2000);
    cr_expect_gt(batched, 0, "16 busy connections, yet no sleep waited for a batch");
}

Test(io_batch, one_connection_never_batches, .timeout = 60)
{
    uint64_t batched = run_pings(1, SCALE(300, 4), 10000000);
    cr_expect_eq(batched, 0, "%lu sleeps batched with one connection", (unsigned long)batched);
    cr_expect_eq(timeouts, 0);
}

Test(io_batch, batches_that_cannot_fill_time_out_and_every_answer_arrives, .timeout = 120)
{
    if (!kernel_batches())
        cr_skip_test("the kernel has no minimum wait (IORING_FEAT_MIN_TIMEOUT)");
    /* A core that outruns the client (busy machine) sees one message per sleep and never
     * batches: then run again, at most 4 times. */
    odd_rounds_one = true;
    timeouts = 0;
    uint64_t batched = 0;
    for (int run = 0; run < 4 && !timeouts; run++)
        batched = run_pings(16, SCALE(300, 6), 2000);
    odd_rounds_one = false;
    cr_expect_gt(batched, 0, "16 busy connections, yet no sleep waited for a batch");
    cr_expect_gt(timeouts, 0, "a batch of the 16 was met by one request, yet never timed out");
}

Test(io_batch, batch_wait_is_proportional_to_the_completions_awaited)
{
    unsigned full = SN_CONFIG_IO_BATCH_MAX;
    cr_expect_eq(sn__batch_wait_us(400, full), 400, "a full batch waits the whole time");
    cr_expect_eq(sn__batch_wait_us(400, full / 2), 200);
    cr_expect_eq(sn__batch_wait_us(400, 2), 400 * 2 / full);
    cr_expect_eq(sn__batch_wait_us(400, 4 * full), 400, "never longer than io_batch_us");
    cr_expect_eq(sn__batch_wait_us(1, 2), 1, "at least 1 us");
    cr_expect_eq(sn__batch_wait_us(0, full), 0, "off stays off");
    cr_expect_eq(sn__batch_wait_us(10000000, full), 10000000, "no overflow at the largest");
}

Test(io_batch, off_by_default, .timeout = 60)
{
    struct sn_config cfg;
    sn_config_init(&cfg);
    cr_assert_eq(cfg.io_batch_us, 0);
    cr_expect_eq(run_pings(16, SCALE(100, 4), 0), 0, "batched with io_batch_us 0");
}

/*
 * The pace rule on a model: n connections active before every sleep, completions arriving one
 * per `gap_pct` percent of the time a batch gives each (io_batch_us / SN_CONFIG_IO_BATCH_MAX),
 * so a batch of w finds w * 100 / gap_pct of them (at most w: it wakes when it has them).
 * Runs `sleeps` sleeps as reactor/loop.c does (a batched one noted, a plain one counted) and
 * returns how many of the last `tail` were batched.
 */
static unsigned model_batched(struct sn__batch_pace *p, unsigned n, unsigned gap_pct,
                              unsigned sleeps, unsigned tail)
{
    unsigned batched = 0;
    for (unsigned i = 0; i < sleeps; i++) {
        unsigned want = sn__batch_pace_want(p, n);
        if (want == 1) {
            sn__batch_pace_plain(p);
            continue;
        }
        unsigned found = want * 100 / gap_pct;
        sn__batch_pace_note(p, want, found > want ? want : found);
        batched += i >= sleeps - tail;
    }
    return batched;
}

Test(io_batch, a_fresh_core_batches_what_came_and_never_one)
{
    struct sn__batch_pace p = {0};
    cr_expect_eq(sn__batch_pace_want(&p, 5), 5);
    cr_expect_eq(sn__batch_pace_want(&p, 100), SN_CONFIG_IO_BATCH_MAX, "at most a full batch");
    cr_expect_eq(sn__batch_pace_want(&p, 1), 1, "one connection never batches");
    cr_expect_eq(sn__batch_pace_want(&p, 0), 1);
}

Test(io_batch, batching_goes_on_while_completions_keep_the_pace)
{
    struct sn__batch_pace p = {0};
    /* As fast as the batch's time per completion, and 1.25x slower (4/5 found): every sleep. */
    cr_expect_eq(model_batched(&p, 32, 100, 1000, 500), 500);
    cr_expect_eq(model_batched(&p, 32, 125, 1000, 500), 500);
    cr_expect_eq(model_batched(&p, 8, 125, 1000, 500), 500, "small batches too");
}

Test(io_batch, batching_stops_when_completions_come_slower_than_the_pace)
{
    struct sn__batch_pace p = {0};
    /* 1.5x slower (2/3 found): behind within a few batches, and with fewer than half a full
     * batch of connections active at a time it never starts again: its only batched sleeps
     * are the probes (one in SN__BATCH_PROBE_EVERY + 1 sleeps), which do not fill. */
    unsigned probes = 1000 / (SN__BATCH_PROBE_EVERY + 1);
    cr_expect_eq(model_batched(&p, 12, 150, 10, 10) < 10, true);
    cr_expect_leq(model_batched(&p, 12, 150, 1000, 990), probes + 1);
    cr_expect_leq(model_batched(&p, SN_CONFIG_IO_BATCH_MAX / 2 - 1, 150, 1000, 1000), probes + 1);
    cr_expect_leq(model_batched(&p, 2, 400, 1000, 1000), probes + 1);
    cr_expect(!sn__batch_pace_ok(&p));
}

/* Puts p behind the pace: one batch that found almost nothing. */
static void fall_behind(struct sn__batch_pace *p)
{
    sn__batch_pace_note(p, 32, 1);
    cr_assert(!sn__batch_pace_ok(p));
}

Test(io_batch, a_core_behind_restarts_after_two_sleeps_in_a_row_with_half_a_batch_active)
{
    struct sn__batch_pace p = {0};
    unsigned half = SN_CONFIG_IO_BATCH_MAX / 2;
    fall_behind(&p);
    for (unsigned i = 0; i < SN__BATCH_RESTART_PLAIN; i++) {
        cr_expect_eq(sn__batch_pace_want(&p, 2), 1, "restarted after %u plain sleeps", i);
        sn__batch_pace_plain(&p);
    }
    /* One sleep with half a batch active, one with fewer, one with half again: no restart. */
    cr_expect_eq(sn__batch_pace_want(&p, half), 1, "one burst restarted it");
    sn__batch_pace_plain(&p);
    cr_expect_eq(sn__batch_pace_want(&p, half - 1), 1, "restarted below half a batch");
    sn__batch_pace_plain(&p);
    cr_expect_eq(sn__batch_pace_want(&p, half), 1, "a burst after a quiet sleep restarted it");
    sn__batch_pace_plain(&p);
    cr_expect_eq(sn__batch_pace_want(&p, half), half, "two in a row did not restart it");
    cr_expect(sn__batch_pace_ok(&p), "the restart is judged afresh");
    /* Then the new batches decide: ones that fill go on... */
    cr_expect_eq(model_batched(&p, half, 100, 100, 100), 100);
    /* ...and at a slow pace, one batch in SN__BATCH_RESTART_PLAIN + 1 sleeps is a restart
     * that falls behind at once (every sleep here has half a batch active). */
    cr_expect_eq(model_batched(&p, half, 200, 1000, 500), 500 / (SN__BATCH_RESTART_PLAIN + 1));
}

Test(io_batch, a_core_behind_needs_plain_sleeps_before_it_restarts)
{
    struct sn__batch_pace p = {0};
    fall_behind(&p);
    /* Busy sleeps right after the batch that fell behind (its backlog): plain until the
     * fourth plain sleep has passed, whatever the count. */
    for (unsigned i = 0; i < SN__BATCH_RESTART_PLAIN; i++) {
        cr_expect_eq(sn__batch_pace_want(&p, SN_CONFIG_IO_BATCH_MAX), 1);
        sn__batch_pace_plain(&p);
    }
    cr_expect_eq(sn__batch_pace_want(&p, SN_CONFIG_IO_BATCH_MAX), SN_CONFIG_IO_BATCH_MAX);
}

Test(io_batch, a_batched_sleep_that_found_nothing_counts_against_the_pace)
{
    struct sn__batch_pace p = {0};
    for (int i = 0; i < 20; i++)
        sn__batch_pace_note(&p, 8, 8);
    cr_expect(sn__batch_pace_ok(&p));
    sn__batch_pace_note(&p, 8, 0);
    sn__batch_pace_note(&p, 8, 0);
    sn__batch_pace_note(&p, 8, 0);
    cr_expect(!sn__batch_pace_ok(&p), "three empty batches after twenty full ones");
    cr_expect_eq(sn__batch_pace_want(&p, 8), 1);
}

/* A core that fell behind and then wakes for every completion sees two connections active
 * between sleeps however fast the completions come: only the probe can restart it. */
Test(io_batch, a_core_behind_that_wakes_for_each_completion_restarts_by_a_probe)
{
    struct sn__batch_pace fast = {0}, slow = {0};
    fall_behind(&fast);
    cr_expect_eq(model_batched(&fast, 2, 100, SN__BATCH_PROBE_EVERY + 20, 10), 10,
                 "completions at the batch's pace: the probe filled and batching went on");
    cr_expect(sn__batch_pace_ok(&fast));
    fall_behind(&slow);
    unsigned sleeps = 8 * (SN__BATCH_PROBE_EVERY + 1);
    cr_expect_eq(model_batched(&slow, 2, 200, sleeps, sleeps), 8,
                 "at half the pace: one probe in every %u sleeps, none restarting",
                 SN__BATCH_PROBE_EVERY + 1);
    cr_expect(!sn__batch_pace_ok(&slow));
}

Test(io_batch, a_wake_with_more_than_it_waited_for_counts_in_full)
{
    struct sn__batch_pace p = {0};
    fall_behind(&p);
    sn__batch_pace_note(&p, 2, 200); /* completions came far faster than the pace */
    cr_expect(sn__batch_pace_ok(&p), "the surplus did not count");
}
