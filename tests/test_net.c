/*
 * TCP and UDP on a running reactor with 2 unpinned cores, loopback only. A server listens
 * through sn_listen; the clients are plain sockets on an ordinary thread (tests/net_util.h)
 * started from the app's main, or connections made through the reactor (sn_connect). Each
 * core records what its connections saw in its own slot of `rec` (atomics, since the client
 * thread waits on them); assertions run on the test thread after sn_run returned.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sn.h>
#include <stdatomic.h>

#include "net_util.h"
#include "reactor/core.h"
#include "reactor/net_internal.h"
#include "reactor_util.h"

/*
 * Server behaviours. PAUSE_FIRST: the first on_data consumes nothing and stops reading for a
 * while; later calls echo. PAUSE_EVERY: every on_data echoes what it consumes (all of it, or
 * half with `consume_half`) and stops reading for a moment. STOP_BIG: the first on_data
 * writes `big_len` bytes and stops the reactor.
 */
enum behave { ECHO, ECHO_REF, LINES, HOLD, BYE_ON_EOF, PAUSE_FIRST, PAUSE_EVERY, STOP_BIG, STREAM };

/* What one core's connections saw. */
struct rec {
    _Atomic uint64_t opened, closed, clean, resets, timeouts, msgsize, cancelled, other;
    _Atomic uint64_t on_error, bufring, plain, ondata, sends, released, refs;
    _Atomic uint64_t max_backlog, max_present;
    _Atomic uint64_t pauses, while_paused, eofs, sqe_failed, busy;
    _Atomic uint64_t drains, drain_high; /* on_drain calls; ones with the backlog over low */
    _Atomic uint64_t highs; /* STREAM: times the backlog was left over output_high */
    _Atomic uint64_t touched; /* connections whose last_active moved after the accept */
    _Atomic int kernel_bufring;
} SN_CACHE_ALIGNED;

struct harness {
    struct sn_listen_config lc;
    enum behave behave;
    bool consume_half;    /* PAUSE_EVERY */
    size_t consume_max;   /* PAUSE_EVERY: consume at most this much per call (0: no cap) */
    unsigned pause_ms;    /* PAUSE_*: how long reading stays off */
    unsigned inject;      /* SQE gets that fail after each on_data (sn__sqe_fail_next) */
    size_t big_len;       /* STOP_BIG */
    _Atomic int run_over; /* set by the test thread once sn_run returned */
    bool keep_listener;   /* do not close it: the reactor stop must */
    int (*client)(struct harness *h);
    uint16_t port;
    struct sn_listener *l;
    struct sn_promise *done;
    struct sn_listener_stats stats;
    pthread_t thread;
    bool thread_started;
    _Atomic int finished;
    int client_rc;
    int listen_err;
    struct nu_result res;
    struct rec rec[MAXC];
};

static struct harness H;

static uint64_t total(_Atomic uint64_t *first_core_field)
{
    /* Sums one field over the cores: fields sit at the same offset in every rec. */
    size_t off = (size_t)((char *)first_core_field - (char *)&H.rec[0]);
    uint64_t sum = 0;
    for (unsigned i = 0; i < MAXC; i++)
        sum += atomic_load((_Atomic uint64_t *)((char *)&H.rec[i] + off));
    return sum;
}
#define TOTAL(f) total(&H.rec[0].f)

/* ---- server side ------------------------------------------------------------------------ */

static struct rec *my(void)
{
    return &H.rec[sn_core_id()];
}

/* A server connection's state (its user data): alive while the connection or a pending
 * resume holds it. */
struct pconn {
    struct sn_conn *conn; /* NULL once closed */
    bool paused;
    unsigned npauses;
    unsigned refs;
    size_t streamed; /* STREAM: bytes written so far */
    uint64_t born_active; /* last_active at the accept */
};

static void pconn_unref(struct pconn *pc)
{
    if (--pc->refs == 0)
        free(pc);
}

static void resume_now(void *arg, int err, uint64_t value)
{
    (void)err, (void)value;
    struct pconn *pc = arg;
    if (pc->conn && pc->paused) {
        pc->paused = false;
        sn_conn_set_reading(pc->conn, true);
    }
    pconn_unref(pc);
}

/* Stops reading for H.pause_ms; resumes from a timer (not from on_data). */
static void pause_for_a_while(struct pconn *pc)
{
    pc->paused = true;
    pc->npauses++;
    atomic_fetch_add(&my()->pauses, 1);
    sn_conn_set_reading(pc->conn, false);
    pc->refs++;
    sn_done(sn_sleep((uint64_t)H.pause_ms * 1000000u), resume_now, pc);
}

static size_t paused_data(struct pconn *pc, const char *data, size_t len)
{
    if (pc->paused)
        atomic_fetch_add(&my()->while_paused, 1); /* must never happen */
    if (H.behave == PAUSE_FIRST && pc->npauses == 0) {
        pause_for_a_while(pc);
        return 0; /* all of it must come again after the resume, with no new byte */
    }
    size_t used = H.behave == PAUSE_EVERY && H.consume_half && len > 1 ? len / 2 : len;
    if (H.behave == PAUSE_EVERY && H.consume_max && used > H.consume_max)
        used = H.consume_max;
    if (len > atomic_load(&my()->max_present))
        atomic_store(&my()->max_present, len);
    sn_conn_write(pc->conn, data, used);
    if (H.behave == PAUSE_EVERY)
        pause_for_a_while(pc);
    return used;
}

static size_t big_data(struct pconn *pc, const char *data, size_t len)
{
    (void)data;
    if (pc->npauses++ == 0) {
        char *big = malloc(H.big_len);
        for (size_t i = 0; i < H.big_len; i++)
            big[i] = (char)(i * 7 + (i >> 12));
        sn_conn_write(pc->conn, big, H.big_len);
        free(big);
        sn_stop(0); /* as SIGTERM would, with the reply still on its way */
    }
    return len;
}

/* STREAM: output that does not come from input. Writes until the backlog is over
 * output_high, goes on from on_drain, closes after big_len bytes. */
static void stream_more(struct pconn *pc)
{
    char chunk[16384];
    while (pc->streamed < H.big_len && sn_conn_backlog(pc->conn) <= H.lc.limits.output_high) {
        size_t left = H.big_len - pc->streamed;
        size_t n = left < sizeof chunk ? left : sizeof chunk;
        for (size_t i = 0; i < n; i++)
            chunk[i] = (char)((pc->streamed + i) * 7 + ((pc->streamed + i) >> 12));
        if (sn_conn_write(pc->conn, chunk, n) < 0)
            return;
        pc->streamed += n;
    }
    if (sn_conn_backlog(pc->conn) > H.lc.limits.output_high)
        atomic_fetch_add(&my()->highs, 1);
    if (pc->streamed == H.big_len)
        sn_conn_close(pc->conn);
}

static void srv_drain(struct sn_conn *c, void *arg)
{
    struct pconn *pc = arg;
    atomic_fetch_add(&my()->drains, 1);
    size_t low = H.lc.limits.output_low ? H.lc.limits.output_low : H.lc.limits.output_high / 2;
    if (sn_conn_backlog(c) > low)
        atomic_fetch_add(&my()->drain_high, 1);
    if (H.behave == STREAM)
        stream_more(pc);
}

static void release_buf(void *arg)
{
    free(arg);
    atomic_fetch_add(&my()->released, 1);
}

static void note_backlog(struct sn_conn *c)
{
    uint64_t b = sn_conn_backlog(c);
    if (b > atomic_load(&my()->max_backlog))
        atomic_store(&my()->max_backlog, b);
}

static size_t srv_data(struct sn_conn *c, void *arg, const char *data, size_t len)
{
    struct pconn *pc = arg;
    atomic_fetch_add(&my()->ondata, 1);
    if (H.inject)
        sn__sqe_fail_next = H.inject; /* the flush, recv re-arm or cancel that follow fail */
    switch (H.behave) {
    case PAUSE_FIRST:
    case PAUSE_EVERY: return paused_data(pc, data, len);
    case STOP_BIG: return big_data(pc, data, len);
    case STREAM:
        if (!pc->streamed)
            stream_more(pc);
        return len;
    case HOLD: return 0;
    case ECHO_REF: {
        char *copy = malloc(len);
        memcpy(copy, data, len);
        if (sn_conn_write_ref(c, copy, len, release_buf, copy) == 0)
            atomic_fetch_add(&my()->refs, 1);
        else
            free(copy);
        return len;
    }
    case LINES: {
        size_t used = 0;
        for (const char *nl; (nl = memchr(data + used, '\n', len - used));) {
            size_t n = (size_t)(nl - (data + used)) + 1;
            sn_conn_write(c, "OK ", 3);
            sn_conn_write(c, data + used, n);
            used += n;
        }
        return used;
    }
    default:
        sn_conn_write(c, data, len);
        note_backlog(c);
        return len;
    }
}

static void srv_eof(struct sn_conn *c, void *arg)
{
    struct pconn *pc = arg;
    atomic_fetch_add(&my()->eofs, 1);
    if (pc->paused)
        atomic_fetch_add(&my()->while_paused, 1); /* EOF must wait for the held data too */
    if (H.behave == BYE_ON_EOF)
        sn_conn_write(c, "BYE\n", 4);
    sn_conn_close(c);
}

static void srv_error(struct sn_conn *c, void *arg, int err)
{
    (void)c, (void)arg, (void)err;
    atomic_fetch_add(&my()->on_error, 1);
}

static void srv_close(struct sn_conn *c, void *arg, int err)
{
    struct pconn *pc = arg;
    struct rec *r = my();
    pc->conn = NULL;
    if (c->last_active != pc->born_active)
        atomic_fetch_add(&r->touched, 1);
    pconn_unref(pc);
    if (sn__sqe_failed > atomic_load(&r->sqe_failed))
        atomic_store(&r->sqe_failed, sn__sqe_failed);
    atomic_fetch_add(&r->sends, sn__conn_sends(c));
    if (err == 0)
        atomic_fetch_add(&r->clean, 1);
    else if (err == -ECONNRESET || err == -EPIPE)
        atomic_fetch_add(&r->resets, 1);
    else if (err == -ETIMEDOUT)
        atomic_fetch_add(&r->timeouts, 1);
    else if (err == -EMSGSIZE)
        atomic_fetch_add(&r->msgsize, 1);
    else if (err == -ECANCELED)
        atomic_fetch_add(&r->cancelled, 1);
    else if (err == -EBUSY)
        atomic_fetch_add(&r->busy, 1);
    else
        atomic_fetch_add(&r->other, 1);
    atomic_fetch_add(&r->closed, 1);
}

static const struct sn_conn_ops srv_ops = {
    .on_data = srv_data,
    .on_eof = srv_eof,
    .on_error = srv_error,
    .on_close = srv_close,
    .on_drain = srv_drain};

static void *srv_accept(void *arg, struct sn_conn *c)
{
    (void)arg;
    struct pconn *pc = calloc(1, sizeof *pc);
    pc->conn = c;
    pc->refs = 1;
    pc->born_active = c->last_active;
    struct rec *r = my();
    atomic_fetch_add(&r->opened, 1);
    atomic_fetch_add(sn__conn_uses_bufring(c) ? &r->bufring : &r->plain, 1);
    atomic_store(&r->kernel_bufring,
                 (sn__core_self()->uring.features & SN__URING_BUF_RING) ? 1 : 0);
    return pc;
}

/* ---- the harness ------------------------------------------------------------------------ */

/* Waits (bounded) until the server closed every connection it opened. */
static void wait_server_idle(void)
{
    uint64_t end = nu_now_ms() + 10000;
    while (nu_now_ms() < end && TOTAL(closed) < TOTAL(opened))
        usleep(1000);
}

static void closed_listener(void *arg, int err, uint64_t value)
{
    (void)arg, (void)value;
    sn_promise_set(H.done, (uint64_t)(err ? 1 : 0));
}

static void finish_on_core0(void *arg)
{
    (void)arg;
    sn_listener_stats(H.l, SN_LISTENER_ALL_CORES, &H.stats);
    if (H.keep_listener) {
        sn_promise_set(H.done, 0);
        return;
    }
    if (H.inject)
        sn__sqe_fail_next = 1; /* the close's cancel of the accept waits for an SQE */
    sn_done(sn_listener_close(H.l), closed_listener, NULL);
}

static void *client_thread(void *arg)
{
    (void)arg;
    H.client_rc = H.client(&H);
    sn_submit_external(0, finish_on_core0, NULL);
    return NULL;
}

static struct sn_future *listened(void *arg, int err, uint64_t value)
{
    (void)arg;
    if (err) {
        H.listen_err = err;
        return sn_ready(2);
    }
    H.l = (struct sn_listener *)(uintptr_t)value;
    H.port = sn_listener_port(H.l);
    struct sn_future *f;
    H.done = sn_promise_new(&f);
    H.thread_started = pthread_create(&H.thread, NULL, client_thread, NULL) == 0;
    if (!H.thread_started)
        sn_promise_set(H.done, 3);
    return f;
}

static struct sn_future *harness_main(void *arg)
{
    (void)arg;
    return sn_then_wrapped(sn_listen(&H.lc), listened, NULL);
}

static void harness_init(enum behave b, int (*client)(struct harness *))
{
    memset(&H, 0, sizeof H);
    H.behave = b;
    H.client = client;
    H.lc.ops = &srv_ops;
    H.lc.on_accept = srv_accept;
}

/* Runs the server on 2 cores until the client function returns; returns sn_run's code. */
static int harness_run(void)
{
    struct sn_config cfg = test_config(2);
    int rc = sn_run(&cfg, harness_main, NULL);
    if (H.thread_started)
        pthread_join(H.thread, NULL);
    return rc;
}

/* ---- echo ------------------------------------------------------------------------------- */

static unsigned n_clients;
static size_t max_len;

static int echo_clients(struct harness *h)
{
    nu_run_clients(h->port, n_clients, max_len, 42, true, 0, 60000, &h->res);
    wait_server_idle();
    return 0;
}

static void check_echo(int rc)
{
    cr_assert_eq(rc, 0, "sn_run: %d (listen: %s)", rc, sn_strerror(H.listen_err));
    cr_assert_eq(H.client_rc, 0);
    cr_assert(!H.res.timed_out, "clients timed out");
    cr_assert_eq(H.res.ok, n_clients, "%u of %u echoes whole (bad %u)", H.res.ok, n_clients,
                 H.res.bad);
    cr_assert_eq(H.res.bad, 0);
    cr_assert_eq(TOTAL(opened), n_clients);
    cr_assert_eq(TOTAL(clean), n_clients, "clean closes %lu, other %lu cancelled %lu resets %lu",
                 (unsigned long)TOTAL(clean), (unsigned long)TOTAL(other),
                 (unsigned long)TOTAL(cancelled), (unsigned long)TOTAL(resets));
    cr_assert_eq(H.stats.accepted, n_clients);
    cr_assert_eq(H.stats.refused, 0);
}

static void echo_setup(void)
{
    n_clients = SCALE(16, 2);
    max_len = SN_TEST_SLOW ? 256 * 1024 : 1024 * 1024;
}

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
    if (err)
        return sn_failed(err);
    H.l = (struct sn_listener *)(uintptr_t)value;
    H.port = sn_listener_port(H.l);
    struct sn_future *f;
    H.done = sn_promise_new(&f);
    H.thread_started = pthread_create(&H.thread, NULL, stop_thread, NULL) == 0;
    return f;
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

/* ---- listen errors --------------------------------------------------------------------------- */

static int err_first, err_second, err_host;

static void record_host_err(void *arg, int err, uint64_t value)
{
    (void)arg, (void)value;
    err_host = err;
}

static struct sn_future *got_second(void *arg, int err, uint64_t value)
{
    err_second = err;
    if (!err) /* unexpected: close it too */
        sn_ignore(sn_listener_close((struct sn_listener *)(uintptr_t)value));
    return sn_listener_close(arg);
}

static struct sn_future *errs_first(void *arg, int err, uint64_t value)
{
    (void)arg;
    err_first = err;
    if (err)
        return sn_ready(1);
    struct sn_listener *l = (struct sn_listener *)(uintptr_t)value;
    /* The same port again without SO_REUSEPORT: the sockets are made at once, so it fails
     * at once with -EADDRINUSE. */
    struct sn_listen_config lc = {
        .port = sn_listener_port(l), .mode = SN_ACCEPT_ONE_CORE, .ops = &srv_ops};
    return sn_then_wrapped(sn_listen(&lc), got_second, l);
}

static struct sn_future *errs_main(void *arg)
{
    (void)arg;
    struct sn_listen_config bad = {.host = "not-an-address", .ops = &srv_ops};
    sn_done(sn_listen(&bad), record_host_err, NULL);
    struct sn_listen_config lc = {.mode = SN_ACCEPT_ONE_CORE, .ops = &srv_ops};
    return sn_then_wrapped(sn_listen(&lc), errs_first, NULL);
}

Test(net, listen_errors, .timeout = 30)
{
    memset(&H, 0, sizeof H);
    err_first = err_second = err_host = 0;
    struct sn_config cfg = test_config(2);
    cr_assert_eq(sn_run(&cfg, errs_main, NULL), 0);
    cr_assert_eq(err_first, 0);
    cr_assert_eq(err_second, -EADDRINUSE);
    cr_assert_eq(err_host, -EINVAL);
}

/* ---- a port in use by another socket group (finding 9) ------------------------------------ */

static int rp_second, rp_foreign, rp_again;
static uint16_t rp_port;
static int rp_foreign_fd = -1;

/* Another process's server: a listening SO_REUSEPORT socket of the same user. */
static int foreign_listener(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 16) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static struct sn_future *rp_reopened(void *arg, int err, uint64_t value)
{
    (void)arg;
    rp_again = err;
    if (err)
        return sn_ready(1);
    struct sn_listener *l = (struct sn_listener *)(uintptr_t)value;
    rp_again = sn_listener_port(l) == rp_port ? 0 : -1;
    return sn_listener_close(l);
}

static struct sn_future *rp_closed(void *arg, int err, uint64_t value)
{
    (void)arg, (void)err, (void)value;
    struct sn_listen_config lc = {.port = rp_port, .ops = &srv_ops};
    return sn_then_wrapped(sn_listen(&lc), rp_reopened, NULL);
}

static struct sn_future *rp_second_done(void *arg, int err, uint64_t value)
{
    rp_second = err;
    if (!err) /* unexpected: close it too */
        sn_ignore(sn_listener_close((struct sn_listener *)(uintptr_t)value));
    return sn_then_wrapped(sn_listener_close(arg), rp_closed, NULL);
}

static void rp_foreign_done(void *arg, int err, uint64_t value)
{
    (void)arg;
    rp_foreign = err;
    if (!err)
        sn_ignore(sn_listener_close((struct sn_listener *)(uintptr_t)value));
}

static struct sn_future *rp_first(void *arg, int err, uint64_t value)
{
    (void)arg;
    if (err)
        return sn_ready(1);
    struct sn_listener *l = (struct sn_listener *)(uintptr_t)value;
    rp_port = sn_listener_port(l);
    /* The same port again, both SO_REUSEPORT: a second server must not join the first. */
    struct sn_listen_config lc = {.port = rp_port, .ops = &srv_ops};
    return sn_then_wrapped(sn_listen(&lc), rp_second_done, l);
}

static struct sn_future *rp_main(void *arg)
{
    (void)arg;
    uint16_t fport = 0;
    rp_foreign_fd = foreign_listener(&fport);
    if (rp_foreign_fd >= 0) {
        struct sn_listen_config fc = {.port = fport, .ops = &srv_ops};
        sn_done(sn_listen(&fc), rp_foreign_done, NULL);
    }
    struct sn_listen_config lc = {.ops = &srv_ops}; /* port 0: every core gets the same */
    return sn_then_wrapped(sn_listen(&lc), rp_first, NULL);
}

Test(net, reuseport_port_in_use_fails, .timeout = 30)
{
    memset(&H, 0, sizeof H);
    rp_second = rp_foreign = rp_again = 99;
    struct sn_config cfg = test_config(2);
    cr_assert_eq(sn_run(&cfg, rp_main, NULL), 0);
    cr_assert_geq(rp_foreign_fd, 0);
    close(rp_foreign_fd);
    rp_foreign_fd = -1;
    cr_assert_eq(rp_second, -EADDRINUSE, "a second listener on the port: %d", rp_second);
    cr_assert_eq(rp_foreign, -EADDRINUSE, "a foreign SO_REUSEPORT listener: %d", rp_foreign);
    cr_assert_eq(rp_again, 0, "the port is free again once closed: %d", rp_again);
}

/* ---- outgoing connections through the reactor -------------------------------------------- */

struct cli {
    char got[64];
    size_t len;
    int closed_err;
    int closes;
    int refused_err;
    struct sn_promise *done;
    struct sn_listener *l;
};

static struct cli CL;

static size_t cli_data(struct sn_conn *c, void *arg, const char *data, size_t len)
{
    (void)arg;
    size_t n = len < sizeof CL.got - CL.len ? len : sizeof CL.got - CL.len;
    memcpy(CL.got + CL.len, data, n);
    CL.len += n;
    if (CL.len >= 8)
        sn_conn_close(c);
    return len;
}

static void cli_close(struct sn_conn *c, void *arg, int err)
{
    (void)c, (void)arg;
    CL.closed_err = err;
    CL.closes++;
    sn_ignore(sn_listener_close(CL.l));
    sn_promise_set(CL.done, 0);
}

static const struct sn_conn_ops cli_ops = {.on_data = cli_data, .on_close = cli_close};

static struct sn_future *connected(void *arg, int err, uint64_t value)
{
    (void)arg;
    if (err) {
        sn_promise_fail(CL.done, err);
        return NULL;
    }
    struct sn_conn *c = (struct sn_conn *)(uintptr_t)value;
    if (sn_conn_core(c) != sn_core_id())
        sn_conn_write(c, "wrong core", 10);
    sn_conn_write(c, "ping", 4);
    sn_conn_write(c, "pong", 4);
    return NULL;
}

static struct sn_future *connect_on_core1(void *arg)
{
    struct sn_connect_config cc = {
        .port = (uint16_t)(uintptr_t)arg, .ops = &cli_ops, .timeout_ms = 5000};
    struct sn_future *f;
    CL.done = sn_promise_new(&f);
    sn_ignore(sn_then_wrapped(sn_connect(&cc), connected, NULL));
    return f;
}

static struct sn_future *refused_seen(void *arg, int err, uint64_t value)
{
    (void)arg, (void)value;
    CL.refused_err = err;
    return NULL;
}

static struct sn_future *after_listen(void *arg, int err, uint64_t value)
{
    (void)arg;
    if (err)
        return sn_failed(err);
    CL.l = (struct sn_listener *)(uintptr_t)value;
    uint16_t port = sn_listener_port(CL.l);
    return sn_submit_to(1, connect_on_core1, (void *)(uintptr_t)port);
}

static struct sn_future *refused_then_listen(void *arg, int err, uint64_t value)
{
    (void)arg, (void)err, (void)value;
    H.behave = ECHO;
    struct sn_listen_config lc = {.ops = &srv_ops, .on_accept = srv_accept};
    return sn_then_wrapped(sn_listen(&lc), after_listen, NULL);
}

/* A port bound on loopback but not listening: connecting to it is refused. (A fixed port such
 * as 1 may have a listener on a shared machine.) */
static int closed_port_fd = -1;

static uint16_t closed_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    closed_port_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (closed_port_fd < 0 || bind(closed_port_fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(closed_port_fd, (struct sockaddr *)&a, &len) < 0)
        return 1;
    return ntohs(a.sin_port);
}

static struct sn_future *connect_main(void *arg)
{
    (void)arg;
    struct sn_connect_config cc = {.port = closed_port(), .ops = &cli_ops};
    struct sn_future *f = sn_then_wrapped(sn_connect(&cc), refused_seen, NULL);
    return sn_then_wrapped(f, refused_then_listen, NULL);
}

Test(net, connect_through_reactor, .timeout = 30)
{
    memset(&H, 0, sizeof H);
    memset(&CL, 0, sizeof CL);
    struct sn_config cfg = test_config(2);
    int rc = sn_run(&cfg, connect_main, NULL);
    close(closed_port_fd);
    closed_port_fd = -1;
    cr_assert_eq(rc, 0);
    cr_assert_eq(CL.refused_err, -ECONNREFUSED);
    cr_assert_eq(CL.len, 8);
    cr_assert_arr_eq(CL.got, "pingpong", 8);
    cr_assert_eq(CL.closes, 1);
    cr_assert_eq(CL.closed_err, 0);
    cr_assert_eq(atomic_load(&H.rec[1].opened) + atomic_load(&H.rec[0].opened), 1);
}

/* A listener whose accept queue is full drops new SYNs, so a connect to it hangs: the
 * connect's timeout must end it with -ETIMEDOUT. */
static int full_fd = -1, fill_fd[3] = {-1, -1, -1}, timeout_err;

static struct sn_future *timeout_seen(void *arg, int err, uint64_t value)
{
    (void)arg;
    timeout_err = err;
    if (!err) /* unexpected: connected after all */
        sn_conn_abort((struct sn_conn *)(uintptr_t)value);
    return NULL;
}

static struct sn_future *timeout_main(void *arg)
{
    (void)arg;
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    full_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (bind(full_fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(full_fd, 0) < 0)
        return sn_failed(-errno);
    getsockname(full_fd, (struct sockaddr *)&a, &len);
    for (int i = 0; i < 3; i++) {
        fill_fd[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fill_fd[i], (struct sockaddr *)&a, sizeof a);
    }
    usleep(20000); /* let the handshakes fill the queue */
    struct sn_connect_config cc = {.port = ntohs(a.sin_port), .timeout_ms = 200, .ops = &cli_ops};
    return sn_then_wrapped(sn_connect(&cc), timeout_seen, NULL);
}

Test(net, connect_timeout, .timeout = 30)
{
    memset(&CL, 0, sizeof CL);
    timeout_err = 0;
    struct sn_config cfg = test_config(1);
    int rc = sn_run(&cfg, timeout_main, NULL);
    for (int i = 0; i < 3; i++)
        close(fill_fd[i]);
    close(full_fd);
    cr_assert_eq(rc, 0);
    cr_assert_eq(timeout_err, -ETIMEDOUT, "got %d", timeout_err);
    cr_assert_eq(CL.closes, 0, "no callback for a failed connect");
}

/* ---- UDP ------------------------------------------------------------------------------------ */

#define UDP_N 50

struct udp_state {
    struct sn_udp *a; /* on core 0: the sender */
    uint16_t b_port;
    unsigned next, ok, bad, closes;
    char expect[2048];
    size_t expect_len;
    struct sn_promise *done;
};

static struct udp_state U;
static struct sn_udp *udp_b; /* on core 1: echoes datagrams back */

static void b_datagram(struct sn_udp *u, void *arg, const char *data, size_t len,
                       const struct sockaddr *from, socklen_t fromlen)
{
    (void)arg;
    sn_ignore(sn_udp_send(u, data, len, from, fromlen));
}

static void udp_closed(struct sn_udp *u, void *arg)
{
    (void)u, (void)arg;
    U.closes++; /* core 0 only: b's close is counted separately */
}

static void b_closed(struct sn_udp *u, void *arg)
{
    (void)u, (void)arg;
    udp_b = NULL;
}

static void send_next(void);

static void a_datagram(struct sn_udp *u, void *arg, const char *data, size_t len,
                       const struct sockaddr *from, socklen_t fromlen)
{
    (void)u, (void)arg, (void)from, (void)fromlen;
    if (len == U.expect_len && memcmp(data, U.expect, len) == 0)
        U.ok++;
    else
        U.bad++;
    send_next();
}

static struct sn_future *close_b(void *arg)
{
    (void)arg;
    /* The reactor may have stopped and closed it already (then b_closed cleared it). */
    if (udp_b)
        sn_udp_close(udp_b);
    return NULL;
}

static void send_next(void)
{
    if (U.next == UDP_N) {
        sn_udp_close(U.a);
        sn_ignore(sn_submit_to(1, close_b, NULL));
        sn_promise_set(U.done, 0);
        return;
    }
    uint64_t seed = U.next++;
    U.expect_len = 1 + nu_rand(&seed) % sizeof U.expect;
    nu_fill((uint8_t *)U.expect, U.expect_len, seed);
    struct sockaddr_storage to;
    socklen_t tolen;
    sn_addr_parse(NULL, U.b_port, &to, &tolen);
    sn_ignore(sn_udp_send(U.a, U.expect, U.expect_len, (struct sockaddr *)&to, tolen));
}

static struct sn_future *open_b(void *arg)
{
    (void)arg;
    struct sn_udp_config c = {.on_datagram = b_datagram, .on_close = b_closed};
    int rc = sn_udp_open(&c, &udp_b);
    return rc < 0 ? sn_failed(rc) : sn_ready(sn_udp_port(udp_b));
}

static struct sn_future *b_opened(void *arg, uint64_t port)
{
    (void)arg;
    U.b_port = (uint16_t)port;
    struct sn_udp_config c = {.on_datagram = a_datagram, .on_close = udp_closed};
    int rc = sn_udp_open(&c, &U.a);
    if (rc < 0)
        return sn_failed(rc);
    struct sn_future *f;
    U.done = sn_promise_new(&f);
    send_next();
    return f;
}

static struct sn_future *udp_main(void *arg)
{
    (void)arg;
    return sn_then(sn_submit_to(1, open_b, NULL), b_opened, NULL);
}

Test(net, udp_round_trip, .timeout = 30)
{
    memset(&U, 0, sizeof U);
    struct sn_config cfg = test_config(2);
    cr_assert_eq(sn_run(&cfg, udp_main, NULL), 0);
    cr_assert_eq(U.ok, UDP_N);
    cr_assert_eq(U.bad, 0);
    cr_assert_eq(U.closes, 1);
}

Test(net, addr_parse)
{
    struct sockaddr_storage a;
    socklen_t len;
    cr_assert_eq(sn_addr_parse(NULL, 80, &a, &len), 0);
    cr_assert_eq(a.ss_family, AF_INET);
    cr_assert_eq(ntohs(((struct sockaddr_in *)&a)->sin_port), 80);
    cr_assert_eq(((struct sockaddr_in *)&a)->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    cr_assert_eq(sn_addr_parse("::1", 1, &a, &len), 0);
    cr_assert_eq(a.ss_family, AF_INET6);
    cr_assert_eq(sn_addr_parse("*", 1, &a, &len), 0);
    cr_assert_eq(((struct sockaddr_in *)&a)->sin_addr.s_addr, htonl(INADDR_ANY));
    cr_assert_eq(sn_addr_parse("example.com", 1, &a, &len), -EINVAL);
}

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

/* Asks for the big reply and reads nothing until `ms` passed (the reactor stops meanwhile,
 * with the send blocked on the full socket), or until the run is over; then reads it all. */
static unsigned big_wait_ms;
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
    uint64_t until = nu_now_ms() + big_wait_ms;
    while (nu_now_ms() < until && !(big_wait_ms > 10000 && atomic_load(&h->run_over)))
        usleep(1000);
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

static struct sn_future *big_listened(void *arg, int err, uint64_t value)
{
    (void)arg;
    if (err)
        return sn_failed(err);
    H.l = (struct sn_listener *)(uintptr_t)value;
    H.port = sn_listener_port(H.l);
    struct sn_future *f;
    H.done = sn_promise_new(&f); /* never set: the server's sn_stop ends the run */
    H.thread_started = pthread_create(&H.thread, NULL, big_thread, NULL) == 0;
    return f;
}

static struct sn_future *big_main(void *arg)
{
    (void)arg;
    return sn_then_wrapped(sn_listen(&H.lc), big_listened, NULL);
}

static int run_big(unsigned wait_ms, unsigned flush_ms)
{
    harness_init(STOP_BIG, NULL);
    H.big_len = BIG_LEN;
    H.lc.limits.stop_flush_ms = flush_ms;
    big_wait_ms = wait_ms;
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
    /* The client starts reading 200 ms after the stop began: the send was blocked (8 MiB is
     * more than loopback's socket buffers) and cancelled by the reactor meanwhile. */
    cr_assert_eq(run_big(200, 20000), 0);
    cr_assert_eq(H.client_rc, 0, "client rc %d", H.client_rc);
    cr_assert_eq(big_got, BIG_LEN, "the whole reply, got %zu", big_got);
    cr_assert_eq(big_end, 0, "then EOF");
    cr_assert_eq(TOTAL(cancelled), 1, "the connection ends with -ECANCELED (reactor stop)");
}

Test(net, stop_flush_is_bounded, .timeout = 60)
{
    /* A client that reads nothing until the run is over: the flush gives up after 100 ms and
     * resets, so the stop does not wait for the client. */
    cr_assert_eq(run_big(60000, 100), 0);
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
    big_wait_ms = 0;
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

/* Calls that report errors fail with -EBUSY when there is no SQE, and work again after. */
static int busy_udp, busy_udp_after, busy_connect;
static struct sn_udp *busy_u;

static void busy_connected(void *arg, int err, uint64_t value)
{
    (void)arg, (void)value;
    busy_connect = err;
}

static void busy_udp_sent(void *arg, int err, uint64_t value)
{
    *(int *)arg = err ? err : (int)value; /* bytes sent, or the error */
}

static struct sn_future *busy_main(void *arg)
{
    (void)arg;
    struct sn_udp_config uc = {0};
    if (sn_udp_open(&uc, &busy_u) < 0)
        return sn_ready(2);
    struct sockaddr_storage to;
    socklen_t tolen;
    sn_addr_parse(NULL, sn_udp_port(busy_u), &to, &tolen);
    sn__sqe_fail_next = 1;
    sn_done(sn_udp_send(busy_u, "x", 1, (struct sockaddr *)&to, tolen), busy_udp_sent, &busy_udp);
    sn_done(sn_udp_send(busy_u, "y", 1, (struct sockaddr *)&to, tolen), busy_udp_sent,
            &busy_udp_after);
    struct sn_connect_config cc = {.port = closed_port(), .ops = &cli_ops};
    sn__sqe_fail_next = 1;
    sn_done(sn_connect(&cc), busy_connected, NULL);
    sn__sqe_fail_next = 1; /* the close's cancel of the receive waits for an SQE */
    sn_udp_close(busy_u);
    return sn_ready(0);
}

Test(net, sqe_shortage_fails_calls_with_ebusy, .timeout = 30)
{
    busy_udp = busy_udp_after = busy_connect = 99;
    struct sn_config cfg = test_config(1);
    int rc = sn_run(&cfg, busy_main, NULL);
    close(closed_port_fd);
    closed_port_fd = -1;
    cr_assert_eq(rc, 0);
    cr_assert_eq(busy_udp, -EBUSY);
    cr_assert(busy_udp_after == 1 || busy_udp_after == -ECANCELED, "the next send went out (%d)",
              busy_udp_after);
    cr_assert_eq(busy_connect, -EBUSY);
}
