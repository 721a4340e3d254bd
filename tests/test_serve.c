/*
 * sn_serve: one fiber per connection, on a running reactor, loopback only (server:
 * tests/kit_util.h). A thousand connections at once, each pipelining requests answered from
 * the other core through reply slots and at once through direct writes, in order; the slot
 * limit making sn_reply_begin wait in the fiber; the connection limit; sn_server_close and a
 * reactor stop with every connection blocked in a read; the -EINVAL of a bad config.
 */
#include <criterion/criterion.h>

#include "kit_util.h"

/* ---- the protocol: "R <id>" answered on the other core, "L <id>" at once ------------------- */

struct sreq {
    struct sn_reply *r;
    unsigned id;
    uint64_t delay_ns;
};

static struct sn_future *remote_triple(void *arg)
{
    struct sreq *q = arg;
    return sn_ready((uint64_t)q->id * 3);
}

static void answered(void *arg, int err, uint64_t value)
{
    struct sreq *q = arg;
    if (err)
        atomic_fetch_add(&kc()->bad, 1);
    char out[48];
    int n = snprintf(out, sizeof out, "R %u %llu\n", q->id,
                     (unsigned long long)(q->delay_ns ? q->id * 3u : value));
    kit_count_err(sn_reply_write(q->r, out, (size_t)n));
    kit_end(q->r);
    free(q);
}

static uint64_t answer_delay_ns;

static int rl_session(struct sn_conn *c, void *arg)
{
    (void)arg;
    kit_session_start();
    struct sn_slice line;
    int rc;
    while ((rc = sn_conn_read_line(c, 64, &line)) == 0) {
        atomic_fetch_add(&kc()->lines, 1);
        unsigned id = (unsigned)strtoul(line.data + 2, NULL, 10);
        if (line.data[0] == 'L') {
            char out[32];
            int n = snprintf(out, sizeof out, "L %u\n", id);
            sn_conn_write(c, out, (size_t)n); /* behind the open slots */
            continue;
        }
        struct sreq *q = malloc(sizeof *q);
        *q = (struct sreq){.id = id, .delay_ns = answer_delay_ns};
        if ((rc = kit_begin(c, &q->r))) { /* waits here at max_open_replies */
            free(q);
            break;
        }
        if (answer_delay_ns)
            sn_done(sn_sleep(answer_delay_ns), answered, q);
        else
            sn_done(sn_submit_to((sn_core_id() + 1) % sn_core_count(), remote_triple, q), answered,
                    q);
    }
    return kit_session_end(rc == SN_EOF ? 0 : rc);
}

/* The requests of connection `i` and the answers they must get, in order. */
static size_t rl_script(unsigned i, unsigned nreq, char *req, char *expect, size_t *elen)
{
    size_t r = 0, e = 0;
    for (unsigned k = 0; k < nreq; k++) {
        unsigned id = i * 1000 + k;
        bool remote = (i + k) % 3 != 0;
        r += (size_t)sprintf(req + r, "%c %u\n", remote ? 'R' : 'L', id);
        if (remote)
            e += (size_t)sprintf(expect + e, "R %u %u\n", id, id * 3);
        else
            e += (size_t)sprintf(expect + e, "L %u\n", id);
    }
    *elen = e;
    return r;
}

/* ---- a thousand connections ------------------------------------------------------------------ */

#define NREQ 8

struct mconn {
    int fd;
    char req[NREQ * 24], expect[NREQ * 32], got[NREQ * 32];
    size_t rlen, elen, sent, glen;
    bool done;
};

static unsigned n_many;

/* Opens every connection, then drives them all with poll: each sends its requests and reads
 * until its answers are complete; every answer is checked byte for byte. */
static int many_client(uint16_t port)
{
    struct mconn *m = calloc(n_many, sizeof *m);
    struct pollfd *pf = calloc(n_many, sizeof *pf);
    int bad = 0;
    for (unsigned i = 0; i < n_many && !bad; i++) {
        m[i].rlen = rl_script(i, NREQ, m[i].req, m[i].expect, &m[i].elen);
        if ((m[i].fd = nu_connect(port)) < 0)
            bad = 1;
        else
            fcntl(m[i].fd, F_SETFL, O_NONBLOCK);
    }
    uint64_t end = nu_now_ms() + 120000;
    unsigned left = bad ? 0 : n_many;
    while (left && nu_now_ms() < end) {
        for (unsigned i = 0; i < n_many; i++)
            pf[i] =
                (struct pollfd){.fd = m[i].done ? -1 : m[i].fd,
                                .events = (short)(POLLIN | (m[i].sent < m[i].rlen ? POLLOUT : 0))};
        if (poll(pf, n_many, 100) <= 0)
            continue;
        for (unsigned i = 0; i < n_many; i++) {
            struct mconn *c = &m[i];
            if ((pf[i].revents & POLLOUT) && c->sent < c->rlen) {
                ssize_t w = send(c->fd, c->req + c->sent, c->rlen - c->sent, MSG_NOSIGNAL);
                if (w > 0)
                    c->sent += (size_t)w;
            }
            if (pf[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t r = recv(c->fd, c->got + c->glen, sizeof c->got - c->glen, 0);
                if (r > 0)
                    c->glen += (size_t)r;
                if (r == 0 || (r < 0 && errno != EAGAIN) || c->glen >= c->elen) {
                    c->done = true;
                    left--;
                    if (c->glen != c->elen || memcmp(c->got, c->expect, c->elen) != 0)
                        bad = 2;
                }
            }
        }
    }
    for (unsigned i = 0; i < n_many; i++)
        if (m[i].fd >= 0)
            close(m[i].fd);
    free(m);
    free(pf);
    return bad ? bad : left ? 3 : 0;
}

Test(serve, a_thousand_connections_one_fiber_each, .timeout = 240)
{
    n_many = 1000;
    answer_delay_ns = 0;
    kit_init_serve(rl_session, many_client);
    cr_assert_eq(kit_run(), 0);
    cr_assert_eq(K.client_rc, 0, "every connection got its answers in order (%d)", K.client_rc);
    cr_assert_eq(KTOTAL(opened), n_many, "a fiber for every connection");
    cr_assert_eq(KTOTAL(closed), n_many);
    cr_assert_eq(KTOTAL(lines), (uint64_t)n_many * NREQ);
    cr_assert_eq(KTOTAL(close_err), 0);
    cr_assert_eq(KTOTAL(bad), 0);
    cr_assert(K.settled);
    cr_assert(kit_pools_at_baseline());
}

/* ---- the slot limit makes the fiber wait --------------------------------------------------------
 */

static int limit_client(uint16_t port)
{
    char req[300 * 24], expect[300 * 32];
    size_t elen, rlen = rl_script(7, 300, req, expect, &elen);
    int fd = nu_connect(port), rc = 1;
    if (fd >= 0) {
        char *got;
        size_t n = kit_exchange(fd, req, rlen, elen, false, 60000, &got);
        rc = n == elen && memcmp(got, expect, n) == 0 ? 0 : 2;
        free(got);
        close(fd);
    }
    return rc;
}

Test(serve, reply_begin_waits_at_the_slot_limit, .timeout = 60)
{
    answer_delay_ns = 1000000; /* answers after 1 ms: slots pile up unless the fiber waits */
    kit_init_serve(rl_session, limit_client);
    K.lc.limits.max_open_replies = 8;
    cr_assert_eq(kit_run(), 0);
    cr_assert_eq(K.client_rc, 0, "every answer, in order");
    cr_assert_eq(KTOTAL(max_slots), 8, "never more than max_open_replies slots");
    cr_assert(kit_pools_at_baseline());
}

/* ---- stop with every connection blocked in a read -----------------------------------------------
 */

#define N_BLOCKED 40

static _Atomic int close_result = 1, cancelled_reads;

static int blocked_session(struct sn_conn *c, void *arg)
{
    (void)arg;
    kit_session_start();
    struct sn_slice s;
    atomic_fetch_add(&kc()->user[0], 1); /* about to block: no whole line will come */
    int rc = sn_conn_read_line(c, 0, &s);
    if (rc == -ECANCELED)
        atomic_fetch_add(&cancelled_reads, 1);
    /* Writes still work: the client gets this before the close. */
    sn_conn_write(c, "closing\n", 8);
    return kit_session_end(rc == -ECANCELED ? 0 : rc);
}

static void server_closed(void *arg, int err, uint64_t value)
{
    (void)arg, (void)value;
    atomic_store(&close_result, err);
}

static void close_server(void *arg)
{
    (void)arg;
    K.closed_by_test = true; /* the harness must not close it again */
    sn_done(sn_server_close(K.srv), server_closed, NULL);
}

static bool close_settled(void)
{
    return atomic_load(&close_result) != 1;
}

static void stop_reactor(void *arg)
{
    (void)arg;
    sn_stop(0);
}

static bool stop_by_reactor;

static int blocked_client(uint16_t port)
{
    int fds[N_BLOCKED], rc = 0;
    for (int i = 0; i < N_BLOCKED; i++) {
        fds[i] = nu_connect(port);
        if (fds[i] < 0)
            return 1;
        nu_timeout(fds[i], 20000);
        if (i % 2 && nu_send_all(fds[i], "half a li", 9)) /* some mid-line */
            return 2;
    }
    uint64_t end = nu_now_ms() + 20000;
    while (KTOTAL(user[0]) < N_BLOCKED && nu_now_ms() < end)
        usleep(1000); /* (polls the server's state) */
    if (KTOTAL(user[0]) < N_BLOCKED)
        return 3;
    sn_submit_external(0, stop_by_reactor ? stop_reactor : close_server, NULL);
    for (int i = 0; i < N_BLOCKED; i++) {
        char got[16];
        if (nu_recv_all(fds[i], got, 8) || memcmp(got, "closing\n", 8) || nu_expect_end(fds[i]))
            rc = 4;
        close(fds[i]);
    }
    return rc;
}

Test(serve, close_with_every_connection_mid_read, .timeout = 60)
{
    atomic_store(&close_result, 1);
    atomic_store(&cancelled_reads, 0);
    stop_by_reactor = false;
    kit_init_serve(blocked_session, blocked_client);
    K.quiet_also = close_settled;
    cr_assert_eq(kit_run(), 0);
    cr_assert_eq(K.client_rc, 0, "each got its last write, then EOF (%d)", K.client_rc);
    cr_assert_eq(atomic_load(&cancelled_reads), N_BLOCKED, "every read ended with -ECANCELED");
    cr_assert_eq(atomic_load(&close_result), 0, "sn_server_close settled");
    cr_assert_eq(KTOTAL(closed), N_BLOCKED);
}

Test(serve, reactor_stop_with_every_connection_mid_read, .timeout = 60)
{
    atomic_store(&cancelled_reads, 0);
    stop_by_reactor = true;
    kit_init_serve(blocked_session, blocked_client);
    cr_assert_eq(kit_run(), 0);
    cr_assert_eq(K.client_rc, 0, "each got its last write, then EOF (%d)", K.client_rc);
    cr_assert_eq(atomic_load(&cancelled_reads), N_BLOCKED);
    /* The server was never closed by the app: libsn freed it (ASan: no leak). */
}

/* ---- the connection limit ------------------------------------------------------------------- */

static int ping_session(struct sn_conn *c, void *arg)
{
    (void)arg;
    kit_session_start();
    struct sn_slice s;
    int rc;
    while ((rc = sn_conn_read_line(c, 0, &s)) == 0)
        sn_conn_write(c, "pong\n", 5);
    return kit_session_end(rc == SN_EOF ? 0 : rc);
}

static int limit_conns_client(uint16_t port)
{
    int fds[12], answered = 0, ended = 0;
    for (int i = 0; i < 12; i++) {
        fds[i] = nu_connect(port);
        nu_timeout(fds[i], 5000);
    }
    for (int i = 0; i < 12; i++) {
        char got[8];
        if (fds[i] >= 0 && nu_send_all(fds[i], "ping\n", 5) == 0 &&
            nu_recv_all(fds[i], got, 5) == 0)
            answered++;
        else
            ended++;
    }
    for (int i = 0; i < 12; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    atomic_store(&K.core[0].user[1], (uint64_t)answered);
    return answered >= 1 && answered <= 4 && ended == 12 - answered ? 0 : 1;
}

Test(serve, connection_limit, .timeout = 60)
{
    kit_init_serve(ping_session, limit_conns_client);
    K.lc.max_conns_per_core = 2;
    cr_assert_eq(kit_run(), 0);
    cr_assert_eq(K.client_rc, 0, "%llu of 12 answered with 2 cores of 2",
                 (unsigned long long)atomic_load(&K.core[0].user[1]));
}

/* ---- a bad configuration ------------------------------------------------------------------------
 */

static int bad_ops_rc, bad_fn_rc;
static const struct sn_conn_ops some_ops;

static void record_rc(void *arg, int err, uint64_t value)
{
    (void)value;
    *(int *)arg = err;
}

static struct sn_future *bad_main(void *arg)
{
    (void)arg;
    struct sn_serve_config with_ops = {.listen = {.ops = &some_ops}};
    sn_done(sn_serve(&with_ops, ping_session, NULL), record_rc, &bad_ops_rc);
    struct sn_serve_config plain = {0};
    sn_done(sn_serve(&plain, NULL, NULL), record_rc, &bad_fn_rc);
    return SN_SUCCESS;
}

Test(serve, bad_config_is_refused, .timeout = 30)
{
    struct sn_config cfg = test_config(2);
    cr_assert_eq(sn_run(&cfg, bad_main, NULL), 0);
    cr_assert_eq(bad_ops_rc, -EINVAL);
    cr_assert_eq(bad_fn_rc, -EINVAL);
}

/* ---- a half-close from the fiber leaves at once (it does not wait for the fiber) ------------- */

static int half_session(struct sn_conn *c, void *arg)
{
    (void)arg;
    kit_session_start();
    struct sn_slice s;
    int rc = sn_conn_read_line(c, 0, &s);
    sn_conn_write(c, "bye\n", 4);
    sn_conn_shutdown(c); /* the peer sees EOF once "bye" left, while this fiber reads on */
    while (rc == 0)
        rc = sn_conn_read_line(c, 0, &s);
    if (rc == SN_EOF)
        atomic_fetch_add(&kc()->user[0], 1);
    return kit_session_end(rc == SN_EOF ? 0 : rc);
}

static int half_client(uint16_t port)
{
    int fd = nu_connect(port);
    if (fd < 0)
        return 1;
    nu_timeout(fd, 10000);
    char got[8];
    /* EOF comes while our side is still open: the fiber has not returned yet. */
    int rc = nu_send_all(fd, "hi\n", 3) || nu_recv_all(fd, got, 4) || memcmp(got, "bye\n", 4) ||
             nu_expect_end(fd);
    shutdown(fd, SHUT_WR); /* now the fiber's read ends with SN_EOF */
    close(fd);
    return rc;
}

Test(serve, shutdown_from_the_fiber_leaves_at_once, .timeout = 60)
{
    kit_init_serve(half_session, half_client);
    cr_assert_eq(kit_run(), 0);
    cr_assert_eq(K.client_rc, 0, "bye, then EOF while the fiber still read");
    cr_assert_eq(KTOTAL(user[0]), 1, "then the fiber's read ended with SN_EOF");
}
