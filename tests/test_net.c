/*
 * TCP and UDP on a running reactor with 2 unpinned cores, loopback only. A server listens
 * through sn_listen; the clients are plain sockets on an ordinary thread (tests/net_util.h)
 * started from the app's main, or connections made through the reactor (sn_connect). Each
 * core records what its connections saw in its own slot of `rec` (atomics, since the client
 * thread waits on them); assertions run on the test thread after sn_run returned.
 */
#include <criterion/criterion.h>

#include "net_echo.h"

Test(net, echo_reuseport_bufring, .timeout = 120)
{
    echo_setup();
    harness_init(ECHO, echo_clients);
    check_echo(harness_run());
    if (atomic_load(&H.rec[0].kernel_bufring) || atomic_load(&H.rec[1].kernel_bufring))
        cr_assert_eq(TOTAL(bufring), n_clients, "provided buffer ring used");
    else
        cr_log_info("kernel without provided buffer rings: plain recv used");
}

Test(net, echo_plain_recv_config, .timeout = 120)
{
    echo_setup();
    harness_init(ECHO, echo_clients);
    H.lc.limits.plain_recv = true;
    check_echo(harness_run());
    cr_assert_eq(TOTAL(plain), n_clients);
    cr_assert_eq(TOTAL(bufring), 0);
}

Test(net, echo_plain_recv_env, .timeout = 120)
{
    echo_setup();
    harness_init(ECHO, echo_clients);
    setenv("SN_NET_PLAIN_RECV", "1", 1);
    int rc = harness_run();
    unsetenv("SN_NET_PLAIN_RECV");
    check_echo(rc);
    cr_assert_eq(TOTAL(plain), n_clients);
}

Test(net, echo_one_acceptor_spreads, .timeout = 120)
{
    echo_setup();
    harness_init(ECHO, echo_clients);
    H.lc.mode = SN_ACCEPT_ONE_CORE;
    check_echo(harness_run());
    cr_assert_gt(atomic_load(&H.rec[0].opened), 0);
    cr_assert_gt(atomic_load(&H.rec[1].opened), 0);
}

Test(net, echo_write_ref_releases, .timeout = 120)
{
    echo_setup();
    harness_init(ECHO_REF, echo_clients);
    check_echo(harness_run());
    cr_assert_gt(TOTAL(refs), 0);
    cr_assert_eq(TOTAL(released), TOTAL(refs), "every write_ref released once");
}

/* ---- half-close with a reply after EOF, pipelining and corking --------------------------- */

static int bye_client(struct harness *h)
{
    int fd = nu_connect(h->port);
    if (fd < 0)
        return 1;
    nu_timeout(fd, 10000);
    char got[32] = {0};
    int rc = nu_send_all(fd, "hello", 5) || shutdown(fd, SHUT_WR) || nu_recv_all(fd, got, 9) ||
             memcmp(got, "helloBYE\n", 9) != 0 || nu_expect_end(fd);
    close(fd);
    wait_server_idle();
    return rc;
}

Test(net, half_close_reply_after_eof, .timeout = 60)
{
    harness_init(BYE_ON_EOF, bye_client);
    cr_assert_eq(harness_run(), 0);
    cr_assert_eq(H.client_rc, 0, "got hello + BYE, then EOF");
    cr_assert_eq(TOTAL(clean), 1);
}

#define NLINES 2000

static int lines_client(struct harness *h)
{
    int fd = nu_connect(h->port);
    if (fd < 0)
        return 1;
    nu_timeout(fd, 10000);
    /* Every line in one buffer, sent in random fragments: lines get split across reads. */
    size_t cap = NLINES * 16, len = 0;
    char *out = malloc(cap), *want = malloc(cap + NLINES * 3), *got = malloc(cap + NLINES * 3);
    size_t wlen = 0;
    for (unsigned i = 0; i < NLINES; i++) {
        int n = snprintf(out + len, cap - len, "line %u\n", i);
        wlen += (size_t)snprintf(want + wlen, cap + NLINES * 3 - wlen, "OK %.*s", n, out + len);
        len += (size_t)n;
    }
    uint64_t seed = 7;
    int rc = 0;
    for (size_t off = 0; off < len && !rc;) {
        size_t n = 1 + nu_rand(&seed) % 3000;
        if (n > len - off)
            n = len - off;
        rc = nu_send_all(fd, out + off, n);
        off += n;
    }
    if (!rc)
        rc = nu_recv_all(fd, got, wlen) || memcmp(got, want, wlen) != 0;
    close(fd);
    free(out), free(want), free(got);
    wait_server_idle();
    return rc;
}

Test(net, pipelined_replies_in_order_and_corked, .timeout = 60)
{
    harness_init(LINES, lines_client);
    cr_assert_eq(harness_run(), 0);
    cr_assert_eq(H.client_rc, 0, "every reply, in order");
    /* Corking: all replies written during one on_data leave in one send (a few extra sends
     * only when a send is still in flight while more replies arrive). */
    cr_assert_leq(TOTAL(sends), TOTAL(ondata), "sends %lu, data callbacks %lu",
                  (unsigned long)TOTAL(sends), (unsigned long)TOTAL(ondata));
    cr_assert_lt(TOTAL(sends), NLINES / 4);
}

/* ---- limits ------------------------------------------------------------------------------ */

static int limit_client(struct harness *h)
{
    int held[2], extra[3], rc = 0;
    for (int i = 0; i < 2; i++) {
        held[i] = nu_connect(h->port);
        if (held[i] < 0)
            return 1;
        nu_timeout(held[i], 10000);
        char b;
        rc |= nu_send_all(held[i], "a", 1) || nu_recv_all(held[i], &b, 1);
    }
    for (int i = 0; i < 3; i++) {
        extra[i] = nu_connect(h->port);
        if (extra[i] < 0)
            return 1;
        nu_timeout(extra[i], 10000);
        nu_send_all(extra[i], "b", 1);
        rc |= nu_expect_end(extra[i]) << 1; /* closed by the server at once */
        close(extra[i]);
    }
    /* The held connections still work. */
    for (int i = 0; i < 2; i++) {
        char b;
        rc |= (nu_send_all(held[i], "c", 1) || nu_recv_all(held[i], &b, 1) || b != 'c') << 2;
        close(held[i]);
    }
    wait_server_idle();
    /* Room again once they are gone. */
    int again = nu_connect(h->port);
    char b;
    nu_timeout(again, 10000);
    rc |= (again < 0 || nu_send_all(again, "d", 1) || nu_recv_all(again, &b, 1)) << 3;
    close(again);
    wait_server_idle();
    return rc;
}

Test(net, connection_limit_accepts_and_closes, .timeout = 60)
{
    harness_init(ECHO, limit_client);
    H.lc.mode = SN_ACCEPT_ONE_CORE; /* deterministic placement: one per core */
    H.lc.max_conns_per_core = 1;
    cr_assert_eq(harness_run(), 0);
    cr_assert_eq(H.client_rc, 0, "client rc %d", H.client_rc);
    cr_assert_eq(H.stats.accepted, 3);
    cr_assert_eq(H.stats.refused, 3);
    cr_assert_eq(TOTAL(opened), 3);
}

static int limit_rp_client(struct harness *h)
{
    int fds[6], ended = 0;
    for (int i = 0; i < 6; i++) {
        fds[i] = nu_connect(h->port);
        nu_timeout(fds[i], 300);
    }
    /* Give the server time to accept all of them (refused ones end at once). */
    uint64_t end = nu_now_ms() + 10000;
    struct sn_listener_stats st;
    do {
        usleep(2000);
        sn_listener_stats(h->l, SN_LISTENER_ALL_CORES, &st);
    } while (st.accepted + st.refused < 6 && nu_now_ms() < end);
    for (int i = 0; i < 6; i++) {
        char b;
        ssize_t r = recv(fds[i], &b, 1, 0);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            ended++;
        close(fds[i]);
    }
    wait_server_idle();
    return 6 - ended; /* how many are still open (the accepted ones) */
}

Test(net, connection_limit_reuseport, .timeout = 60)
{
    harness_init(ECHO, limit_rp_client);
    H.lc.max_conns_per_core = 1;
    cr_assert_eq(harness_run(), 0);
    cr_assert_geq(H.stats.accepted, 1);
    cr_assert_leq(H.stats.accepted, 2);
    cr_assert_eq(H.stats.accepted + H.stats.refused, 6);
    cr_assert_eq((uint64_t)H.client_rc, H.stats.accepted, "refused ones saw EOF");
}

static int idle_client(struct harness *h)
{
    int fd = nu_connect(h->port);
    if (fd < 0)
        return 1;
    nu_timeout(fd, 20000);
    char b;
    int rc = nu_send_all(fd, "x", 1) || nu_recv_all(fd, &b, 1) || nu_expect_end(fd);
    close(fd);
    wait_server_idle();
    return rc;
}

Test(net, idle_timeout_closes, .timeout = 60)
{
    harness_init(ECHO, idle_client);
    H.lc.limits.idle_ms = 100;
    cr_assert_eq(harness_run(), 0);
    cr_assert_eq(H.client_rc, 0, "the idle connection was closed");
    cr_assert_eq(TOTAL(timeouts), 1);
    cr_assert_eq(TOTAL(on_error), 1);
}

static int input_limit_client(struct harness *h)
{
    int fd = nu_connect(h->port);
    if (fd < 0)
        return 1;
    nu_timeout(fd, 10000);
    size_t len = 256 * 1024;
    char *p = calloc(1, len);
    nu_send_all(fd, p, len); /* may fail half-way: the server resets */
    free(p);
    int rc = nu_expect_end(fd);
    close(fd);
    wait_server_idle();
    return rc;
}

Test(net, input_limit_closes, .timeout = 60)
{
    harness_init(HOLD, input_limit_client);
    H.lc.limits.input_max = 64 * 1024;
    cr_assert_eq(harness_run(), 0);
    cr_assert_eq(H.client_rc, 0);
    cr_assert_eq(TOTAL(msgsize), 1, "closed with -EMSGSIZE");
}

/* ---- reset by a peer --------------------------------------------------------------------- */

static int reset_clients(struct harness *h)
{
    /* Every 4th client resets its connection mid-transfer. */
    nu_run_clients(h->port, n_clients, max_len, 9, true, 4, 60000, &h->res);
    wait_server_idle();
    return 0;
}

Test(net, reset_by_peer_only_affects_that_connection, .timeout = 120)
{
    echo_setup();
    harness_init(ECHO, reset_clients);
    cr_assert_eq(harness_run(), 0);
    unsigned rogues = n_clients / 4;
    cr_assert_eq(H.res.rogues, rogues);
    cr_assert_eq(H.res.ok, n_clients - rogues, "ok %u bad %u", H.res.ok, H.res.bad);
    cr_assert_eq(H.res.bad, 0);
    cr_assert_eq(TOTAL(clean), n_clients - rogues);
    /* A reset seen by a send or a recv; a reset that lands after the echo finished and the
     * EOF is seen could also be clean, but these rogues reset with echo still in flight. */
    cr_assert_eq(TOTAL(resets) + TOTAL(clean), n_clients, "resets %lu other %lu",
                 (unsigned long)TOTAL(resets), (unsigned long)TOTAL(other));
}

/* ---- backpressure ------------------------------------------------------------------------ */

static size_t bp_total;

static int bp_client(struct harness *h)
{
    int fd = nu_connect(h->port);
    if (fd < 0)
        return 1;
    int small = 65536;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    /* Write everything before reading anything: the server must stop reading. */
    uint8_t *data = malloc(bp_total), *back = malloc(bp_total);
    nu_fill(data, bp_total, 3);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    size_t sent = 0, rcvd = 0;
    uint64_t end = nu_now_ms() + 60000, quiet_since = nu_now_ms();
    /* Phase 1: send until the pipe is stuck for 200 ms (the server paused reading). */
    while (sent < bp_total && nu_now_ms() < end) {
        ssize_t w = send(fd, data + sent, bp_total - sent, MSG_NOSIGNAL);
        if (w > 0) {
            sent += (size_t)w;
            quiet_since = nu_now_ms();
        } else if (nu_now_ms() - quiet_since > 200) {
            break;
        } else {
            usleep(1000);
        }
    }
    /* Phase 2: read and send the rest. */
    struct pollfd pf = {.fd = fd};
    while (rcvd < bp_total && nu_now_ms() < end) {
        pf.events = POLLIN | (sent < bp_total ? POLLOUT : 0);
        poll(&pf, 1, 100);
        if (pf.revents & POLLOUT) {
            ssize_t w = send(fd, data + sent, bp_total - sent, MSG_NOSIGNAL);
            if (w > 0)
                sent += (size_t)w;
        }
        ssize_t n = recv(fd, back + rcvd, bp_total - rcvd, 0);
        if (n > 0)
            rcvd += (size_t)n;
        else if (n == 0)
            break;
    }
    int rc = rcvd != bp_total || memcmp(data, back, bp_total) != 0;
    close(fd);
    free(data);
    free(back);
    wait_server_idle();
    return rc;
}

static void run_backpressure(bool plain)
{
    bp_total = SN_TEST_SLOW ? 6u << 20 : 24u << 20;
    harness_init(ECHO, bp_client);
    H.lc.limits.output_high = 64 * 1024;
    H.lc.limits.plain_recv = plain;
    cr_assert_eq(harness_run(), 0);
    cr_assert_eq(H.client_rc, 0, "everything came back after the pause");
    uint64_t maxb = atomic_load(&H.rec[0].max_backlog);
    if (atomic_load(&H.rec[1].max_backlog) > maxb)
        maxb = atomic_load(&H.rec[1].max_backlog);
    cr_log_info("max backlog %lu with limit 65536", (unsigned long)maxb);
    /* Paused above the limit: only what was already received on its way may add to it. */
    uint64_t slack = plain ? SN__NET_BUFSZ : (uint64_t)SN__NET_NBUFS * SN__NET_BUFSZ;
    cr_assert_leq(maxb, 64 * 1024 + slack, "max backlog %lu", (unsigned long)maxb);
    cr_assert_lt(maxb, bp_total / 2);
}

Test(net, backpressure_plain, .timeout = 120)
{
    run_backpressure(true);
}

Test(net, backpressure_bufring, .timeout = 120)
{
    run_backpressure(false);
}

/* ---- stop with open connections and an open listener --------------------------------------- */

static int stop_client(struct harness *h)
{
    int fds[4], rc = 0;
    for (int i = 0; i < 4; i++) {
        fds[i] = nu_connect(h->port);
        if (fds[i] < 0)
            return 1;
        nu_timeout(fds[i], 10000);
        char b;
        rc |= nu_send_all(fds[i], "s", 1) || nu_recv_all(fds[i], &b, 1);
    }
    /* Stop now: the reactor must close them (and the listener) itself. */
    atomic_store(&h->finished, 1);
    sn_submit_external(0, finish_on_core0, NULL);
    for (int i = 0; i < 4; i++) {
        rc |= nu_expect_end(fds[i]) << 1;
        close(fds[i]);
    }
    return rc;
}

static void *stop_thread(void *arg)
{
    (void)arg;
    H.client_rc = stop_client(&H);
    return NULL;
}

static struct sn_future *stop_listened(void *arg, int err, uint64_t value)
{
    (void)arg;
    return harness_listened_start(err, value, stop_thread);
}

static struct sn_future *stop_main(void *arg)
{
    (void)arg;
    return sn_then_wrapped(sn_listen(&H.lc), stop_listened, NULL);
}

Test(net, stop_closes_connections_and_listener, .timeout = 60)
{
    harness_init(ECHO, NULL);
    H.keep_listener = true;
    struct sn_config cfg = test_config(2);
    int rc = sn_run(&cfg, stop_main, NULL);
    if (H.thread_started)
        pthread_join(H.thread, NULL);
    cr_assert_eq(rc, 0);
    cr_assert_eq(H.client_rc, 0, "clients saw the end");
    cr_assert_eq(TOTAL(opened), 4);
    cr_assert_eq(TOTAL(closed), 4);
    cr_assert_eq(TOTAL(cancelled) + TOTAL(clean), 4);
}
