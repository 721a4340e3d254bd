/*
 * The stop hook of sn_app_run under load. A server on every core answers 8-byte requests
 * after a cross-core round trip (sn_submit_copy to the next core, which answers 5 ms later);
 * client threads keep pipelining requests. The first core to take TRIGGER requests calls
 * sn_stop(7) while requests are in flight. The stop hook then, with every core still running:
 * counts the requests in flight, closes the listener (a new connection is refused from then on),
 * tells every core to stop taking requests and to close each connection once its requests are
 * answered, and waits until none is in flight. Only then do the cores stop. Every request the
 * server took was answered, every answer reached its client and was right, the run ends with exit
 * code 7.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sn.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "net_util.h"
#include "reactor_util.h"

#define NCORES   3
#define NCLIENTS 6
#define PIPELINE 4
#define TRIGGER  100 /* a core asks to stop at its TRIGGER-th request */

struct conn_state {
    struct sn_list_node link; /* in its core's conns */
    struct sn_conn *conn;
    unsigned inflight;
    bool closed, closing;
};

static struct core_state {
    struct sn_list conns;
    uint64_t received, answered, failed, inflight;
    bool draining;
} SN_CACHE_ALIGNED cs[MAXC];

static struct {
    _Atomic unsigned port;
    struct sn_listener *listener;
    int seq, hook_at, listener_closed_at, drained_at;
    uint64_t inflight_at_hook;
    int connect_err;
} srv;

/* ---- the server ------------------------------------------------------------------------- */

static struct sn_future *plus_one(void *arg, uint64_t v)
{
    (void)v;
    return sn_ready((uintptr_t)arg + 1);
}

/* On the next core: answers x + 1 after 5 ms. */
static struct sn_future *slow_echo(const void *req, size_t len, void *out, size_t cap)
{
    (void)out, (void)cap;
    uint64_t x;
    if (len != sizeof x)
        return sn_failed(-EINVAL);
    memcpy(&x, req, sizeof x);
    return sn_then(sn_sleep(5000000), plus_one, (void *)(uintptr_t)x);
}

static void release(struct conn_state *st)
{
    sn_list_remove(&st->link);
    free(st);
}

static void close_when_idle(struct conn_state *st)
{
    if (!st->closed && !st->closing && st->inflight == 0) {
        st->closing = true;
        sn_ignore(sn_conn_close(st->conn));
    }
}

static void on_answer(void *arg, int err, uint64_t v)
{
    struct conn_state *st = arg;
    struct core_state *c = &cs[sn_core_id()];
    st->inflight--;
    c->inflight--;
    if (err || st->closed) {
        c->failed++;
    } else if (sn_conn_write(st->conn, &v, sizeof v) == 0) {
        c->answered++;
    } else {
        c->failed++;
    }
    if (st->closed && st->inflight == 0)
        release(st);
    else if (c->draining)
        close_when_idle(st);
}

static size_t on_data(struct sn_conn *conn, void *arg, const char *data, size_t len)
{
    struct conn_state *st = arg;
    unsigned me = sn_core_id();
    struct core_state *c = &cs[me];
    if (c->draining) { /* take no new request: those not consumed were never received */
        sn_conn_set_reading(conn, false);
        return 0;
    }
    size_t used = 0;
    for (; len - used >= sizeof(uint64_t); used += sizeof(uint64_t)) {
        c->received++;
        c->inflight++;
        st->inflight++;
        struct sn_future *f =
            sn_submit_copy((me + 1) % sn_core_count(), slow_echo, data + used, sizeof(uint64_t));
        sn_done(f, on_answer, st);
        if (c->received == TRIGGER)
            sn_stop(7); /* with this request and others in flight (the first call wins) */
    }
    return used;
}

static void on_close(struct sn_conn *conn, void *arg, int err)
{
    (void)conn, (void)err;
    struct conn_state *st = arg;
    st->closed = true;
    if (st->inflight == 0)
        release(st);
}

static const struct sn_conn_ops ops = {.on_data = on_data, .on_close = on_close};

static void *on_accept(struct sn_conn *conn, void *arg)
{
    (void)arg;
    struct conn_state *st = calloc(1, sizeof *st);
    st->conn = conn;
    sn_list_push_back(&cs[sn_core_id()].conns, &st->link);
    return st;
}

static struct sn_future *init_core(void *arg)
{
    (void)arg;
    sn_list_init(&cs[sn_core_id()].conns);
    return SN_SUCCESS;
}

static struct sn_future *keep_listener(void *arg, uint64_t value)
{
    (void)arg;
    srv.listener = (struct sn_listener *)(uintptr_t)value;
    atomic_store(&srv.port, sn_listener_port(srv.listener));
    return SN_SUCCESS;
}

static struct sn_future *do_listen(void *arg, uint64_t v)
{
    (void)arg, (void)v;
    struct sn_listen_config cfg = {.ops = &ops, .on_accept = on_accept};
    return sn_then(sn_listen(&cfg), keep_listener, NULL);
}

static struct sn_future *app_start(void *arg)
{
    (void)arg;
    return sn_then(sn_invoke_on_all(init_core, NULL), do_listen, NULL);
}

/* ---- the stop hook ---------------------------------------------------------------------- */

static struct sn_future *inflight_here(void *arg)
{
    (void)arg;
    return sn_ready(cs[sn_core_id()].inflight);
}

static struct sn_future *drain_here(void *arg)
{
    (void)arg;
    struct core_state *c = &cs[sn_core_id()];
    c->draining = true;
    struct sn_list_node *n, *next;
    for (n = c->conns.head.next; n != &c->conns.head; n = next) {
        next = n->next; /* a close may release the connection's state later, not now */
        close_when_idle(SN_CONTAINER_OF(n, struct conn_state, link));
    }
    return SN_SUCCESS;
}

static uint64_t drain_deadline;

static struct sn_future *count_inflight(void *arg, uint64_t v)
{
    (void)arg, (void)v;
    return sn_map_reduce(inflight_here, NULL, 0, sn_reduce_sum, NULL);
}

static struct sn_future *wait_drained(void *arg, uint64_t inflight)
{
    (void)arg;
    if (inflight == 0) {
        srv.drained_at = ++srv.seq;
        return SN_SUCCESS;
    }
    if (sn_now_ns() > drain_deadline)
        return sn_failed(-ETIMEDOUT);
    struct sn_future *f = sn_then(sn_sleep(1000000), count_inflight, NULL);
    return sn_then(f, wait_drained, NULL);
}

static struct sn_future *after_drain_order(void *arg, uint64_t v)
{
    (void)arg, (void)v;
    drain_deadline = sn_now_ns() + 20000000000ull;
    return sn_then(count_inflight(NULL, 0), wait_drained, NULL);
}

static struct sn_future *after_refused(void *arg, int err, uint64_t value)
{
    (void)arg;
    srv.connect_err = err;
    if (!err)
        sn_ignore(sn_conn_close((struct sn_conn *)(uintptr_t)value));
    return sn_then(sn_invoke_on_all(drain_here, NULL), after_drain_order, NULL);
}

static struct sn_future *after_listener_closed(void *arg, uint64_t v)
{
    (void)arg, (void)v;
    srv.listener_closed_at = ++srv.seq;
    struct sn_connect_config cc = {.port = (uint16_t)atomic_load(&srv.port), .ops = &ops};
    return sn_then_wrapped(sn_connect(&cc), after_refused, NULL);
}

static struct sn_future *after_count(void *arg, uint64_t inflight)
{
    (void)arg;
    srv.inflight_at_hook = inflight;
    return sn_then(sn_listener_close(srv.listener), after_listener_closed, NULL);
}

static struct sn_future *app_stop(void *arg)
{
    (void)arg;
    srv.hook_at = ++srv.seq;
    return sn_then(sn_map_reduce(inflight_here, NULL, 0, sn_reduce_sum, NULL), after_count, NULL);
}

/* ---- the clients ------------------------------------------------------------------------ */

struct client {
    pthread_t th;
    unsigned id;
    uint64_t ok, bad;
    bool connected;
};
static struct client clients[NCLIENTS];

static void *client_run(void *arg)
{
    struct client *cl = arg;
    uint64_t deadline = nu_now_ms() + 30000;
    while (atomic_load(&srv.port) == 0 && nu_now_ms() < deadline)
        usleep(1000); /* polls for the server's port, bounded */
    int fd = nu_connect((uint16_t)atomic_load(&srv.port));
    if (fd < 0)
        return NULL;
    cl->connected = true;
    nu_timeout(fd, 30000);
    for (uint64_t seq = 0;; seq += PIPELINE) {
        uint64_t req[PIPELINE], ans[PIPELINE];
        for (unsigned i = 0; i < PIPELINE; i++)
            req[i] = ((uint64_t)cl->id << 40) | (seq + i);
        if (nu_send_all(fd, req, sizeof req) < 0)
            break;
        unsigned got = 0;
        for (; got < PIPELINE; got++) {
            if (nu_recv_all(fd, &ans[got], sizeof ans[got]) < 0)
                break;
            if (ans[got] == req[got] + 1)
                cl->ok++;
            else
                cl->bad++;
        }
        if (got < PIPELINE)
            break; /* the server closed the connection: it is stopping */
    }
    close(fd);
    return NULL;
}

Test(app_stop, stop_hook_order_under_load, .timeout = 120)
{
    struct sn_config cfg = test_config(NCORES);
    memset(cs, 0, sizeof cs);
    memset(&srv, 0, sizeof srv);
    memset(clients, 0, sizeof clients);
    for (unsigned i = 0; i < NCLIENTS; i++) {
        clients[i].id = i + 1;
        cr_assert_eq(pthread_create(&clients[i].th, NULL, client_run, &clients[i]), 0);
    }
    struct sn_app app = {.name = "test-stop", .start = app_start, .stop = app_stop};
    int rc = sn_app_run(&cfg, &app);
    uint64_t ok = 0, bad = 0;
    unsigned connected = 0;
    for (unsigned i = 0; i < NCLIENTS; i++) {
        pthread_join(clients[i].th, NULL);
        ok += clients[i].ok;
        bad += clients[i].bad;
        connected += clients[i].connected;
    }
    cr_assert_eq(rc, 7, "sn_stop's code");
    uint64_t received = 0, answered = 0, failed = 0;
    for (unsigned c = 0; c < NCORES; c++) {
        received += cs[c].received;
        answered += cs[c].answered;
        failed += cs[c].failed;
        cr_expect_eq(cs[c].inflight, 0);
    }
    cr_expect_eq(connected, NCLIENTS);
    cr_expect_geq(received, TRIGGER);
    cr_expect_gt(srv.inflight_at_hook, 0, "the stop came with requests in flight");
    cr_expect_eq(srv.hook_at, 1);
    cr_expect_eq(srv.listener_closed_at, 2, "the listener closed in the hook");
    cr_expect_eq(srv.connect_err, -ECONNREFUSED, "no new connection after the listener closed");
    cr_expect_eq(srv.drained_at, 3, "every request answered before the cores stopped");
    cr_expect_eq(failed, 0, "no answer was lost");
    cr_expect_eq(answered, received, "every request taken was answered");
    cr_expect_eq(bad, 0);
    cr_expect_eq(ok, answered, "every answer reached its client");
}
