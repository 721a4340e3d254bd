/*
 * Reading off and on, bounded stop flushes, idle clock reads, on_drain pacing and SQE
 * shortages on a running reactor with 2 unpinned cores, loopback only (the harness:
 * tests/net_harness.h, the echo workload: tests/net_echo.h).
 */
#include <criterion/criterion.h>

#include "net_echo.h"

/* ---- reading off and on: held input is presented again (issue: gaps 1 and 2) ------------- */

/* Sends everything at once, then only waits: the server's resume alone must bring it back. */
static int pause_first_client(struct harness *h)
{
    int rc = 0;
    /* One client that keeps its side open, one that half-closes right after its bytes (the
     * EOF must wait behind the held bytes, not overtake them). */
    for (int shut = 0; shut < 2 && !rc; shut++) {
        int fd = nu_connect(h->port);
        if (fd < 0)
            return 1;
        nu_timeout(fd, 10000);
        const char *msg = shut ? "bye, then EOF\n" : "hello, held input\n";
        size_t len = strlen(msg);
        char got[64] = {0};
        rc = nu_send_all(fd, msg, len) || (shut && shutdown(fd, SHUT_WR)) ||
             nu_recv_all(fd, got, len) || memcmp(got, msg, len) != 0;
        if (!rc && shut)
            rc = nu_expect_end(fd) << 1;
        close(fd);
    }
    wait_server_idle();
    return rc;
}

static void run_pause_first(bool plain)
{
    harness_init(PAUSE_FIRST, pause_first_client);
    H.pause_ms = 20;
    H.lc.limits.plain_recv = plain;
    cr_assert_eq(harness_run(), 0);
    cr_assert_eq(H.client_rc, 0, "echo came back after the resume alone (rc %d)", H.client_rc);
    cr_assert_eq(TOTAL(pauses), 2);
    cr_assert_eq(TOTAL(while_paused), 0, "no on_data / on_eof while reading is off");
    cr_assert_eq(TOTAL(eofs), 2, "each client's EOF, after its echo");
    cr_assert_eq(TOTAL(clean), 2);
}

Test(net, resume_presents_held_input_plain, .timeout = 60)
{
    run_pause_first(true);
}

Test(net, resume_presents_held_input_bufring, .timeout = 60)
{
    run_pause_first(false);
}

static int pause_clients(struct harness *h)
{
    nu_run_clients(h->port, n_clients, max_len, 11, true, 0, 60000, &h->res);
    wait_server_idle();
    return 0;
}

/* Many clients stream while every on_data stops reading for a millisecond: nothing reaches
 * on_data while reading is off, and what arrived meanwhile (and what on_data left) comes
 * back after each resume, also once the client has sent everything and only waits. */
static void run_pause_every(bool plain, bool half, unsigned inject)
{
    n_clients = SCALE(8, 2);
    max_len = SN_TEST_SLOW ? 64 * 1024 : 256 * 1024;
    harness_init(PAUSE_EVERY, pause_clients);
    H.pause_ms = 1;
    H.consume_half = half;
    H.inject = inject;
    H.lc.limits.plain_recv = plain;
    check_echo(harness_run());
    cr_assert_gt(TOTAL(pauses), n_clients);
    cr_assert_eq(TOTAL(while_paused), 0, "on_data or on_eof while reading was off");
    cr_assert_eq(TOTAL(msgsize), 0);
}

Test(net, reading_off_is_a_firm_stop_plain, .timeout = 120)
{
    run_pause_every(true, false, 0);
}

Test(net, reading_off_is_a_firm_stop_bufring, .timeout = 120)
{
    run_pause_every(false, false, 0);
}

Test(net, unconsumed_input_comes_back_after_resume, .timeout = 120)
{
    run_pause_every(false, true, 0);
    run_pause_every(true, true, 0);
}

/* Finding 10: an app that stops reading on every call and consumes only a little each time
 * (answers far bigger than requests) while the client pipelined far ahead. What it leaves
 * with reading stopped (its own held input included) does not count against input_max. */
static void run_small_steps(bool plain)
{
    n_clients = 2;
    max_len = SN_TEST_SLOW ? 24 * 1024 : 64 * 1024;
    harness_init(PAUSE_EVERY, pause_clients);
    H.pause_ms = 1;
    H.consume_max = 256;
    H.lc.limits.input_max = 4096;
    H.lc.limits.plain_recv = plain;
    check_echo(harness_run());
    cr_assert_eq(TOTAL(msgsize), 0, "no -EMSGSIZE");
    cr_assert_eq(TOTAL(while_paused), 0);
    uint64_t most = 0;
    for (unsigned i = 0; i < MAXC; i++)
        if (atomic_load(&H.rec[i].max_present) > most)
            most = atomic_load(&H.rec[i].max_present);
    cr_assert_gt(most, 4096, "the app saw more than input_max at once (%lu)", (unsigned long)most);
}

Test(net, input_max_ignores_input_left_while_stopped_bufring, .timeout = 120)
{
    run_small_steps(false);
}

Test(net, input_max_ignores_input_left_while_stopped_plain, .timeout = 120)
{
    run_small_steps(true);
}

/* ---- stop: pending output gets its chance (gap 3) ------------------------------------------ */

#define BIG_LEN (8u << 20)

/* When the client of the big reply starts reading it. */
enum big_wait {
    BIG_NOW,
    BIG_STALLED,  /* once no more arrives: the send is blocked on the full socket */
    BIG_RUN_OVER, /* once sn_run has returned (60 s at the most) */
};

static bool run_is_over(void *arg)
{
    return atomic_load(&((struct harness *)arg)->run_over) != 0;
}

/* Asks for the big reply, waits as big_wait says without reading, then reads it all. */
static enum big_wait big_wait;
static size_t big_got;
static int big_end; /* 0 EOF, 1 reset, 2 timeout or other error */

static int big_client(struct harness *h)
{
    int fd = nu_connect(h->port);
    if (fd < 0)
        return 1;
    nu_timeout(fd, 20000);
    if (nu_send_all(fd, "go", 2))
        return 2;
    bool waited = big_wait == BIG_STALLED    ? nu_wait_peer_stalled(fd, 50, 20000) > 0
                  : big_wait == BIG_RUN_OVER ? nu_wait_for(run_is_over, h, 60000)
                                             : true;
    if (!waited) {
        close(fd);
        return 4;
    }
    char *buf = malloc(1 << 16);
    int rc = 0;
    big_got = 0;
    for (;;) {
        ssize_t r = recv(fd, buf, 1 << 16, 0);
        if (r > 0) {
            for (ssize_t i = 0; i < r && !rc; i++) {
                size_t k = big_got + (size_t)i;
                rc = buf[i] != (char)(k * 7 + (k >> 12));
            }
            big_got += (size_t)r;
            continue;
        }
        big_end = r == 0 ? 0 : errno == ECONNRESET ? 1 : 2;
        break;
    }
    free(buf);
    close(fd);
    return rc ? 3 : 0;
}

static void *big_thread(void *arg)
{
    (void)arg;
    H.client_rc = big_client(&H);
    return NULL;
}

/* H.done is never set: the server's sn_stop ends the run. */
static struct sn_future *big_listened(void *arg, int err, uint64_t value)
{
    (void)arg;
    return harness_listened_start(err, value, big_thread);
}

static struct sn_future *big_main(void *arg)
{
    (void)arg;
    return sn_then_wrapped(sn_listen(&H.lc), big_listened, NULL);
}

static int run_big(enum big_wait wait, unsigned flush_ms)
{
    harness_init(STOP_BIG, NULL);
    H.big_len = BIG_LEN;
    H.lc.limits.stop_flush_ms = flush_ms;
    big_wait = wait;
    big_got = 0;
    big_end = -1;
    struct sn_config cfg = test_config(2);
    int rc = sn_run(&cfg, big_main, NULL);
    atomic_store(&H.run_over, 1);
    if (H.thread_started)
        pthread_join(H.thread, NULL);
    return rc;
}

Test(net, stop_lets_pending_output_leave, .timeout = 60)
{
    /* The client starts reading once the reply stopped coming: the send is blocked (8 MiB is
     * more than loopback's socket buffers), and the stop, begun in the same callback as the
     * write, has cancelled it meanwhile. */
    cr_assert_eq(run_big(BIG_STALLED, 20000), 0);
    cr_assert_eq(H.client_rc, 0, "client rc %d", H.client_rc);
    cr_assert_eq(big_got, BIG_LEN, "the whole reply, got %zu", big_got);
    cr_assert_eq(big_end, 0, "then EOF");
    cr_assert_eq(TOTAL(cancelled), 1, "the connection ends with -ECANCELED (reactor stop)");
}

Test(net, stop_flush_is_bounded, .timeout = 60)
{
    /* A client that reads nothing until the run is over: the flush gives up after 100 ms and
     * resets, so the stop does not wait for the client. */
    cr_assert_eq(run_big(BIG_RUN_OVER, 100), 0);
    cr_assert_eq(H.client_rc, 0, "client rc %d", H.client_rc);
    cr_assert_lt(big_got, BIG_LEN, "the reply was cut");
    cr_assert_eq(big_end, 1, "and the cut is a reset, not an EOF (end %d)", big_end);
    cr_assert_eq(TOTAL(cancelled), 1);
}

/* ---- idle_ms 0: receives and sends do not read the clock ------------------------------------ */

static void run_touch(unsigned idle_ms)
{
    n_clients = 4;
    max_len = 64 * 1024;
    harness_init(ECHO, echo_clients);
    H.lc.limits.idle_ms = idle_ms;
    check_echo(harness_run());
}

Test(net, no_idle_timeout_no_clock_reads, .timeout = 60)
{
    run_touch(0);
    cr_assert_eq(TOTAL(touched), 0, "last_active stays as made: the clock was not read");
    run_touch(60000);
    cr_assert_eq(TOTAL(touched), n_clients, "with an idle timeout every receive notes the time");
}

/* ---- on_drain paces output that does not come from input --------------------------------- */

static int stream_client(struct harness *h)
{
    big_wait = BIG_NOW;
    int rc = big_client(h);
    wait_server_idle();
    return rc;
}

static void run_stream(size_t low)
{
    harness_init(STREAM, stream_client);
    H.big_len = SN_TEST_SLOW ? (2u << 20) : (16u << 20);
    H.lc.limits.output_high = 256 * 1024;
    H.lc.limits.output_low = low;
    big_got = 0;
    big_end = -1;
    cr_assert_eq(harness_run(), 0);
    cr_assert_eq(H.client_rc, 0, "client rc %d", H.client_rc);
    cr_assert_eq(big_got, H.big_len, "the whole stream, got %zu", big_got);
    cr_assert_eq(big_end, 0, "then EOF");
    cr_assert_eq(TOTAL(clean), 1);
    /* Without on_drain the stream stops at the first 256 KiB (no input ever comes). */
    cr_assert_gt(TOTAL(drains), 1);
    /* Once per time over output_high (the last one may end in the close instead). */
    cr_assert_leq(TOTAL(drains), TOTAL(highs));
    cr_assert_geq(TOTAL(drains) + 1, TOTAL(highs), "drains %lu highs %lu",
                  (unsigned long)TOTAL(drains), (unsigned long)TOTAL(highs));
    cr_assert_eq(TOTAL(drain_high), 0, "on_drain only with the backlog at output_low or less");
}

Test(net, on_drain_paces_a_stream, .timeout = 60)
{
    run_stream(0); /* output_high / 2 */
}

Test(net, on_drain_at_output_low, .timeout = 60)
{
    run_stream(16 * 1024);
}

/* ---- no SQE: every operation is retried or fails clearly (gap 4) --------------------------- */

Test(net, sqe_shortage_echo_plain, .timeout = 120)
{
    echo_setup();
    harness_init(ECHO, echo_clients);
    H.inject = 2;
    H.lc.limits.plain_recv = true;
    check_echo(harness_run());
    cr_assert_gt(TOTAL(sqe_failed), 0, "SQE gets were made to fail");
}

Test(net, sqe_shortage_echo_bufring, .timeout = 120)
{
    echo_setup();
    harness_init(ECHO, echo_clients);
    H.inject = 3;
    check_echo(harness_run());
    cr_assert_gt(TOTAL(sqe_failed), 0);
}

Test(net, sqe_shortage_with_pauses, .timeout = 120)
{
    /* Cancels of the receive (reading off) and re-arms (reading on) without an SQE. */
    run_pause_every(false, true, 2);
    cr_assert_gt(TOTAL(sqe_failed), 0);
    run_pause_every(true, false, 1);
}
