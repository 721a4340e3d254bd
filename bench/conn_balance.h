/*
 * conn_balance.h: how evenly a libsn server spreads connections over its cores; the workload
 * of tests/test_conn_balance.c and bench/bench_conn_balance.c.
 *
 * One run: sn_run on `ncores` unpinned cores, a listener on 127.0.0.1 port 0 in the case's
 * accept mode whose connections echo what they receive, and plain client threads in the same
 * process:
 *   short: each client makes its share of the connections one after another: connect, send
 *          one byte, read the echo, close;
 *   long:  each client opens its share and checks the echo on each; all stay open until
 *          every client has opened all of its own, then all close.
 * The figure is the number of connections each core accepted (sn_listener_stats per core),
 * read once every client is done: the busiest core's count over the mean.
 *
 * Header-only; one run at a time (sn_run runs one reactor per process). Every socket wait is
 * bounded (CB_IO_TIMEOUT_MS).
 */
#ifndef SN_BENCH_CONN_BALANCE_H
#define SN_BENCH_CONN_BALANCE_H

#include <sn.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CB_MAX_CORES     16
#define CB_MAX_CLIENTS   16
#define CB_IO_TIMEOUT_MS 10000

enum cb_kind { CB_SHORT, CB_LONG };

struct cb_case {
    enum sn_accept_mode mode;
    enum cb_kind kind;
    unsigned ncores;  /* reactor cores (unpinned), at most CB_MAX_CORES */
    unsigned conns;   /* connections in all, split evenly over the clients */
    unsigned clients; /* client threads, at most CB_MAX_CLIENTS */
};

struct cb_result {
    int rc;          /* 0, else what failed: -errno of sn_run or listen, or 1 (a client) */
    unsigned failed; /* client connections that did not get their echo */
    uint64_t accepted[CB_MAX_CORES];
    uint64_t total;
    uint64_t moved; /* sent on by the accepting core (sn_listener_stats.moved) */
    double max_over_mean;
    double seconds; /* the clients' wall time */
};

static struct {
    struct cb_case c;
    struct cb_result *res;
    struct sn_listener *l;
    struct sn_promise *done;
    uint16_t port;
    pthread_t coordinator;
    bool coordinator_started;
    _Atomic unsigned opened;   /* long: clients that have opened all of their connections */
    _Atomic unsigned expected; /* long: clients that run (UINT32_MAX until all started) */
    _Atomic unsigned failed;
} cb;

static inline double cb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- server ------------------------------------------------------------------------------ */

static inline size_t cb_echo(struct sn_conn *conn, void *arg, const char *data, size_t len)
{
    (void)arg;
    sn_conn_write(conn, data, len);
    return len;
}

static const struct sn_conn_ops cb_ops = {.on_data = cb_echo};

/* ---- clients ----------------------------------------------------------------------------- */

/* A connection that has had its byte echoed (so a core has accepted and adopted it), or -1. */
static inline int cb_open(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = CB_IO_TIMEOUT_MS / 1000,
                         .tv_usec = (CB_IO_TIMEOUT_MS % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(cb.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char b = 'x';
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 || send(fd, &b, 1, MSG_NOSIGNAL) != 1 ||
        recv(fd, &b, 1, 0) != 1 || b != 'x') {
        close(fd);
        return -1;
    }
    return fd;
}

static inline void *cb_client(void *arg)
{
    unsigned share = (unsigned)(uintptr_t)arg;
    if (cb.c.kind == CB_SHORT) {
        for (unsigned i = 0; i < share; i++) {
            int fd = cb_open();
            if (fd < 0)
                atomic_fetch_add(&cb.failed, 1);
            else
                close(fd);
        }
        return NULL;
    }
    int *fds = calloc(share ? share : 1, sizeof *fds);
    for (unsigned i = 0; i < share; i++) {
        fds[i] = fds ? cb_open() : -1;
        if (fds && fds[i] < 0)
            atomic_fetch_add(&cb.failed, 1);
    }
    /* Hold them until every client holds all of its own (bounded, like every wait here). */
    atomic_fetch_add(&cb.opened, 1);
    double limit = cb_now() + CB_IO_TIMEOUT_MS / 1000.0;
    while (atomic_load(&cb.opened) < atomic_load(&cb.expected) && cb_now() < limit)
        usleep(1000);
    for (unsigned i = 0; fds && i < share; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
    return NULL;
}

static inline void cb_closed(void *arg, int err, uint64_t value)
{
    (void)arg, (void)value, (void)err;
    sn_promise_set(cb.done, 0);
}

static inline void cb_finish_on_core0(void *arg)
{
    (void)arg;
    sn_done(sn_listener_close(cb.l), cb_closed, NULL);
}

/* Runs the clients, then reads every core's count (the listener is still open). */
static inline void *cb_coordinate(void *arg)
{
    (void)arg;
    struct cb_result *r = cb.res;
    unsigned n = cb.c.clients;
    pthread_t t[CB_MAX_CLIENTS];
    unsigned started = 0;
    double t0 = cb_now();
    atomic_store(&cb.expected, UINT32_MAX);
    for (unsigned i = 0; i < n; i++) {
        unsigned share = cb.c.conns / n + (i < cb.c.conns % n);
        if (pthread_create(&t[started], NULL, cb_client, (void *)(uintptr_t)share) == 0)
            started++;
        else
            r->rc = 1;
    }
    atomic_store(&cb.expected, started);
    for (unsigned i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    r->seconds = cb_now() - t0;
    r->failed = atomic_load(&cb.failed);
    uint64_t max = 0;
    for (unsigned k = 0; k < cb.c.ncores; k++) {
        struct sn_listener_stats st;
        sn_listener_stats(cb.l, k, &st);
        r->accepted[k] = st.accepted;
        r->total += st.accepted;
        max = st.accepted > max ? st.accepted : max;
    }
    r->max_over_mean = r->total ? (double)max * cb.c.ncores / (double)r->total : 0;
    struct sn_listener_stats all;
    sn_listener_stats(cb.l, SN_LISTENER_ALL_CORES, &all);
    r->moved = all.moved;
    if (r->failed)
        r->rc = 1;
    if (sn_submit_external(0, cb_finish_on_core0, NULL) != 0)
        sn_stop(1);
    return NULL;
}

static inline struct sn_future *cb_listened(void *arg, int err, uint64_t value)
{
    (void)arg;
    if (err) {
        cb.res->rc = err;
        return sn_ready(2);
    }
    cb.l = (struct sn_listener *)(uintptr_t)value;
    cb.port = sn_listener_port(cb.l);
    struct sn_future *f;
    cb.done = sn_promise_new(&f);
    cb.coordinator_started = pthread_create(&cb.coordinator, NULL, cb_coordinate, NULL) == 0;
    if (!cb.coordinator_started) {
        cb.res->rc = 1;
        sn_promise_set(cb.done, 3);
    }
    return f;
}

static inline struct sn_future *cb_main(void *arg)
{
    (void)arg;
    struct sn_listen_config lc = {.mode = cb.c.mode, .ops = &cb_ops};
    return sn_then_wrapped(sn_listen(&lc), cb_listened, NULL);
}

/* One run of case `c`; fills *r (r->rc says whether it worked). */
static inline void cb_run(const struct cb_case *c, struct cb_result *r)
{
    memset(r, 0, sizeof *r);
    memset(&cb, 0, sizeof cb);
    cb.c = *c;
    cb.res = r;
    if (!c->ncores || c->ncores > CB_MAX_CORES || !c->clients || c->clients > CB_MAX_CLIENTS) {
        r->rc = -EINVAL;
        return;
    }
    struct sn_config cfg;
    sn_config_init(&cfg);
    cfg.smp = c->ncores;
    cfg.unpinned = true;
    cfg.stall_ms = 0;
    int rc = sn_run(&cfg, cb_main, NULL);
    if (cb.coordinator_started)
        pthread_join(cb.coordinator, NULL);
    if (rc != 0 && r->rc == 0)
        r->rc = rc < 0 ? rc : 1;
}

static inline const char *cb_mode_name(enum sn_accept_mode m)
{
    return m == SN_ACCEPT_REUSEPORT ? "reuseport" : "one-core";
}

#endif
