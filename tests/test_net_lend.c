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

/*
 * Asks `core` for its count of lent buffers until it is 0 or ms have passed; lent_end[core]
 * keeps the last answer for the assertion.
 */
static void wait_lent_returned(unsigned core, unsigned ms)
{
    uint64_t end = nu_now_ms() + ms;
    do {
        atomic_store(&lent_end[core], 0);
        sn_submit_external(core, record_lent, NULL);
        while (!atomic_load(&lent_end[core]) && nu_now_ms() < end)
            usleep(1000);
    } while (atomic_load(&lent_end[core]) != 1 && nu_now_ms() < end);
}

/* Once the connections are gone, waits until both cores have given back what they lent. */
static void record_lent_on_cores(void)
{
    for (unsigned i = 0; i < 2; i++)
        wait_lent_returned(i, 10000);
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
    cr_assert_leq(lent_max(), SN__NET_LEND_OUT_MAX);
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

#define STUCK     4
#define STUCK_LEN ((size_t)4 << 20)
#define LATE_LEN  ((size_t)512 << 10)

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

/*
 * Sends data[sent..len) on `from` while reading len bytes on `to` (the same socket for an
 * echo); 0 when all of data came back intact.
 */
static int pass_through(int from, int to, const uint8_t *data, size_t len, size_t sent)
{
    uint8_t *back = malloc(len);
    size_t rcvd = 0;
    uint64_t end = nu_now_ms() + 60000;
    struct pollfd pf[2] = {{.fd = from}, {.fd = to, .events = POLLIN}};
    while (rcvd < len && nu_now_ms() < end) {
        pf[0].events = sent < len ? POLLOUT : 0;
        poll(pf, 2, 100);
        if (sent < len) {
            ssize_t w = send(from, data + sent, len - sent, MSG_NOSIGNAL);
            if (w > 0)
                sent += (size_t)w;
        }
        ssize_t n = recv(to, back + rcvd, len - rcvd, 0);
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
    late_rc = pass_through(late, late, data, LATE_LEN, 0);
    close(late);
    for (int i = 0; i < STUCK; i++) {
        rc |= pass_through(fd[i], fd[i], data, STUCK_LEN, sent[i]);
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
    cr_log_info("most buffers lent at once: %lu of %u", (unsigned long)lent_max(), SN__NET_NBUFS);
    cr_assert_leq(lent_max(), SN__NET_LEND_OUT_MAX);
    cr_assert_geq(lent_max(), SN__NET_LEND_OUT_MAX / 2, "stuck peers made the server lend a lot");
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

/* ---- a relay between two connections of one core ---------------------------------------- */

/* One core; the server pairs connections in accept order and writes what one receives to the
 * other with sn_conn_write_input, so the receive buffers of one go out on the other. */
#define RELAY_LEN ((size_t)4 << 20)

static struct {
    struct sn_conn *waiting; /* accepted, no partner yet */
    _Atomic uint64_t lent_max, forwarded, writes_failed;
    _Atomic int client_rc, bufring, paired, closed;
    uint16_t port;
    pthread_t thread;
} R;

struct relay_end {
    struct sn_conn *peer;
};

static size_t relay_data(struct sn_conn *c, void *arg, const char *data, size_t len)
{
    (void)c;
    struct relay_end *e = arg;
    if (!e->peer)
        return 0; /* the client sends only once both ends are paired */
    if (sn_conn_write_input(e->peer, data, len) < 0)
        atomic_fetch_add(&R.writes_failed, 1);
    atomic_fetch_add(&R.forwarded, len);
    uint64_t lent = sn__net_lent_buffers();
    if (lent > atomic_load(&R.lent_max))
        atomic_store(&R.lent_max, lent);
    return len;
}

static void relay_close(struct sn_conn *c, void *arg, int err)
{
    (void)c, (void)err;
    struct relay_end *e = arg;
    if (R.waiting == c)
        R.waiting = NULL;
    if (e->peer) {
        struct relay_end *pe = (struct relay_end *)e->peer->arg;
        if (pe)
            pe->peer = NULL;
    }
    free(e);
    atomic_fetch_add(&R.closed, 1);
}

static const struct sn_conn_ops relay_ops = {.on_data = relay_data, .on_close = relay_close};

static void *relay_accept(struct sn_conn *c, void *arg)
{
    (void)arg;
    struct relay_end *e = calloc(1, sizeof *e);
    if (sn__conn_uses_bufring(c))
        atomic_store(&R.bufring, 1);
    if (R.waiting) {
        struct relay_end *pe = (struct relay_end *)R.waiting->arg;
        e->peer = R.waiting;
        pe->peer = c;
        R.waiting = NULL;
        atomic_store(&R.paired, 1);
    } else {
        R.waiting = c;
    }
    return e;
}

static void relay_stop(void *arg)
{
    (void)arg;
    sn_stop(0);
}

static bool relay_flag(void *flag)
{
    return atomic_load((_Atomic int *)flag) != 0;
}

static bool relay_both_closed(void *arg)
{
    (void)arg;
    return atomic_load(&R.closed) == 2;
}

static void *relay_client(void *arg)
{
    (void)arg;
    int a = nu_connect(R.port), b = nu_connect(R.port);
    int rc = a < 0 || b < 0;
    uint8_t *data = malloc(RELAY_LEN);
    nu_fill(data, RELAY_LEN, 21);
    rc |= !nu_wait_for(relay_flag, &R.paired, 10000) << 3;
    if (!rc) {
        fcntl(a, F_SETFL, O_NONBLOCK);
        fcntl(b, F_SETFL, O_NONBLOCK);
        rc |= pass_through(a, b, data, RELAY_LEN, 0) << 1;
        rc |= pass_through(b, a, data + 1, RELAY_LEN - 1, 0) << 2;
    }
    close(a);
    close(b);
    free(data);
    /* The server sees both close; then it must give back every buffer it lent. */
    rc |= !nu_wait_for(relay_both_closed, NULL, 10000) << 4;
    wait_lent_returned(0, 10000);
    atomic_store(&R.client_rc, rc);
    sn_submit_external(0, relay_stop, NULL);
    return NULL;
}

static void relay_listening(void *arg, int err, uint64_t value)
{
    (void)arg;
    if (err) {
        sn_stop(3);
        return;
    }
    R.port = sn_listener_port((struct sn_listener *)(uintptr_t)value);
    if (pthread_create(&R.thread, NULL, relay_client, NULL) != 0)
        sn_stop(4);
}

static struct sn_future *relay_main(void *arg)
{
    (void)arg;
    struct sn_listen_config lc = {
        .host = "127.0.0.1", .ops = &relay_ops, .on_accept = relay_accept};
    sn_done(sn_listen(&lc), relay_listening, NULL);
    return sn_when_stopped();
}

Test(net_lend, relay_between_connections_of_a_core, .timeout = 120)
{
    memset(&R, 0, sizeof R);
    atomic_store(&lent_end[0], 0);
    struct sn_config cfg = test_config(1);
    cr_assert_eq(sn_run(&cfg, relay_main, NULL), 0);
    pthread_join(R.thread, NULL);
    cr_assert_eq(atomic_load(&R.client_rc), 0, "relayed bytes intact (rc %d)",
                 atomic_load(&R.client_rc));
    cr_assert_eq(atomic_load(&R.writes_failed), 0);
    cr_assert_eq(atomic_load(&R.forwarded), 2 * RELAY_LEN - 1);
    cr_assert_eq(atomic_load(&lent_end[0]), 1, "buffers still lent after both closed");
    if (atomic_load(&R.bufring))
        cr_assert_gt(atomic_load(&R.lent_max), 0, "the relay lent receive buffers");
}
