/*
 * sn_conn_write_input: an echo that sends back the very receive buffers its bytes arrived in.
 * Checked: the echoes are whole on many connections at once; buffers are lent (with the
 * provided buffer ring) and all go back to the ring once the connections are done; the
 * plain-recv fallback copies instead; peers that never read cannot hold more than half of a
 * core's receive buffers, so another connection on the same core still gets its echo.
 */
#include <criterion/criterion.h>

#include "net_echo.h"

/* After the clients: each core's count of lent buffers, + 1 (0: not recorded yet). */
static _Atomic uint64_t lent_end[MAXC];

static void record_lent(void *arg)
{
    (void)arg;
    atomic_store(&lent_end[sn_core_id()], sn__net_lent_buffers() + 1);
}

/* Asks both cores how many buffers are still lent, and waits for the answers. */
static void record_lent_on_cores(void)
{
    for (unsigned i = 0; i < 2; i++) {
        atomic_store(&lent_end[i], 0);
        sn_submit_external(i, record_lent, NULL);
    }
    uint64_t end = nu_now_ms() + 10000;
    while (nu_now_ms() < end && (!atomic_load(&lent_end[0]) || !atomic_load(&lent_end[1])))
        usleep(1000);
}

static int lend_clients(struct harness *h)
{
    echo_clients(h);
    record_lent_on_cores();
    return 0;
}

static bool kernel_bufring(void)
{
    return atomic_load(&H.rec[0].kernel_bufring) || atomic_load(&H.rec[1].kernel_bufring);
}

static uint64_t lent_max(void)
{
    uint64_t a = atomic_load(&H.rec[0].lent_max), b = atomic_load(&H.rec[1].lent_max);
    return a > b ? a : b;
}

static void check_all_returned(void)
{
    for (unsigned i = 0; i < 2; i++)
        cr_assert_eq(atomic_load(&lent_end[i]), 1, "core %u: %ld buffers still lent", i,
                     (long)atomic_load(&lent_end[i]) - 1);
}

Test(net_lend, echo_lends_and_returns_buffers, .timeout = 120)
{
    echo_setup();
    harness_init(ECHO_INPUT, lend_clients);
    check_echo(harness_run());
    check_all_returned();
    if (!kernel_bufring()) {
        cr_log_info("kernel without provided buffer rings: nothing to lend");
        return;
    }
    cr_assert_gt(lent_max(), 0, "receive buffers were lent");
    cr_assert_leq(lent_max(), SN__NET_LEND_MAX);
}

Test(net_lend, plain_recv_copies, .timeout = 120)
{
    echo_setup();
    harness_init(ECHO_INPUT, lend_clients);
    H.lc.limits.plain_recv = true;
    check_echo(harness_run());
    cr_assert_eq(lent_max(), 0, "nothing lent without the ring");
    check_all_returned();
}

/* ---- peers that do not read ------------------------------------------------------------ */

#define STUCK      4
#define STUCK_LEN  ((size_t)4 << 20)
#define LATE_LEN   ((size_t)512 << 10)

/* Sends on a non-blocking socket until it is stuck for 200 ms; returns the bytes sent. */
static size_t send_until_stuck(int fd, const uint8_t *data, size_t len)
{
    size_t sent = 0;
    uint64_t quiet = nu_now_ms();
    while (sent < len && nu_now_ms() - quiet < 200) {
        ssize_t w = send(fd, data + sent, len - sent, MSG_NOSIGNAL);
        if (w > 0) {
            sent += (size_t)w;
            quiet = nu_now_ms();
        } else {
            usleep(1000);
        }
    }
    return sent;
}

/* Sends the rest and reads everything back; 0 when it all came back intact. */
static int finish_echo(int fd, const uint8_t *data, size_t len, size_t sent)
{
    uint8_t *back = malloc(len);
    size_t rcvd = 0;
    uint64_t end = nu_now_ms() + 60000;
    struct pollfd pf = {.fd = fd};
    while (rcvd < len && nu_now_ms() < end) {
        pf.events = POLLIN | (sent < len ? POLLOUT : 0);
        poll(&pf, 1, 100);
        if (pf.revents & POLLOUT) {
            ssize_t w = send(fd, data + sent, len - sent, MSG_NOSIGNAL);
            if (w > 0)
                sent += (size_t)w;
        }
        ssize_t n = recv(fd, back + rcvd, len - rcvd, 0);
        if (n > 0)
            rcvd += (size_t)n;
        else if (n == 0)
            break;
    }
    int bad = rcvd != len || memcmp(data, back, len) != 0;
    free(back);
    return bad;
}

static int late_rc;

static int stuck_clients(struct harness *h)
{
    int fd[STUCK];
    size_t sent[STUCK];
    uint8_t *data = malloc(STUCK_LEN);
    nu_fill(data, STUCK_LEN, 9);
    int rc = 0;
    for (int i = 0; i < STUCK; i++) {
        fd[i] = nu_connect(h->port);
        if (fd[i] < 0)
            return 1;
        fcntl(fd[i], F_SETFL, O_NONBLOCK);
        sent[i] = send_until_stuck(fd[i], data, STUCK_LEN);
    }
    /* The server holds as much as it can for peers that do not read; a new connection (on
     * either core) must still be received and answered. */
    int late = nu_connect(h->port);
    if (late < 0)
        return 1;
    fcntl(late, F_SETFL, O_NONBLOCK);
    late_rc = finish_echo(late, data, LATE_LEN, 0);
    close(late);
    for (int i = 0; i < STUCK; i++) {
        rc |= finish_echo(fd[i], data, STUCK_LEN, sent[i]);
        close(fd[i]);
    }
    free(data);
    wait_server_idle();
    record_lent_on_cores();
    return rc;
}

Test(net_lend, peers_that_do_not_read_hold_at_most_half_the_ring, .timeout = 120)
{
    harness_init(ECHO_INPUT, stuck_clients);
    H.lc.limits.output_high = 8u << 20; /* backpressure far above what the cap allows */
    cr_assert_eq(harness_run(), 0);
    cr_assert_eq(late_rc, 0, "a connection behind the stuck ones got its echo");
    cr_assert_eq(H.client_rc, 0, "the stuck connections got everything back in the end");
    check_all_returned();
    if (!kernel_bufring())
        return;
    cr_log_info("most buffers lent at once: %lu of %u", (unsigned long)lent_max(),
                SN__NET_NBUFS);
    cr_assert_leq(lent_max(), SN__NET_LEND_MAX);
    cr_assert_geq(lent_max(), SN__NET_LEND_MAX / 2, "stuck peers made the server lend a lot");
}

/* The reactor stops while lent buffers are still queued on connections whose peers do not
 * read: the stop closes them, every lent buffer is released (ASan and TSan builds run this
 * too) and sn_run returns cleanly. */
static int stopped_fds[2];

static int stuck_then_stop(struct harness *h)
{
    uint8_t *data = malloc(STUCK_LEN);
    nu_fill(data, STUCK_LEN, 11);
    for (int i = 0; i < 2; i++) {
        stopped_fds[i] = nu_connect(h->port);
        if (stopped_fds[i] < 0)
            return 1;
        fcntl(stopped_fds[i], F_SETFL, O_NONBLOCK);
        send_until_stuck(stopped_fds[i], data, STUCK_LEN);
    }
    free(data);
    return 0; /* the harness stops the reactor with both connections open */
}

Test(net_lend, stop_with_lent_buffers_queued, .timeout = 60)
{
    harness_init(ECHO_INPUT, stuck_then_stop);
    H.lc.limits.output_high = 8u << 20;
    cr_assert_eq(harness_run(), 0);
    cr_assert_eq(H.client_rc, 0);
    for (int i = 0; i < 2; i++)
        close(stopped_fds[i]);
    if (kernel_bufring())
        cr_assert_gt(lent_max(), 0, "buffers were lent when the stop came");
}
