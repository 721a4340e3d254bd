/*
 * The server harness of the tests/test_net*.c binaries: a listener on 2 unpinned cores whose
 * connections behave as `enum behave` says, and a client function run on a plain thread.
 * Each core records what its connections saw in its own slot of `rec` (atomics, since the
 * client thread waits on them). One harness (H) per test binary, reset by harness_init.
 */
#ifndef SN_TESTS_NET_HARNESS_H
#define SN_TESTS_NET_HARNESS_H

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
enum behave {
    ECHO,
    ECHO_REF,
    ECHO_INPUT, /* echo with sn_conn_write_input (receive buffers lent to the output) */
    LINES,
    HOLD,
    BYE_ON_EOF,
    PAUSE_FIRST,
    PAUSE_EVERY,
    STOP_BIG,
    STREAM
};

/* What one core's connections saw. */
struct rec {
    _Atomic uint64_t opened, closed, clean, resets, timeouts, msgsize, cancelled, other;
    _Atomic uint64_t on_error, bufring, plain, ondata, sends, released, refs;
    _Atomic uint64_t max_backlog, max_present;
    _Atomic uint64_t pauses, while_paused, eofs, sqe_failed, busy;
    _Atomic uint64_t drains, drain_high; /* on_drain calls; ones with the backlog over low */
    _Atomic uint64_t highs; /* STREAM: times the backlog was left over output_high */
    _Atomic uint64_t touched; /* connections whose last_active moved after the accept */
    _Atomic uint64_t lent_max; /* ECHO_INPUT: most receive buffers lent at once on this core */
    _Atomic uint64_t fixed;    /* connections whose socket is in a registered file slot */
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

static inline uint64_t total(_Atomic uint64_t *first_core_field)
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

static inline struct rec *my(void)
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

static inline void pconn_unref(struct pconn *pc)
{
    if (--pc->refs == 0)
        free(pc);
}

static inline void resume_now(void *arg, int err, uint64_t value)
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
static inline void pause_for_a_while(struct pconn *pc)
{
    pc->paused = true;
    pc->npauses++;
    atomic_fetch_add(&my()->pauses, 1);
    sn_conn_set_reading(pc->conn, false);
    pc->refs++;
    sn_done(sn_sleep((uint64_t)H.pause_ms * 1000000u), resume_now, pc);
}

static inline size_t paused_data(struct pconn *pc, const char *data, size_t len)
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

static inline size_t big_data(struct pconn *pc, const char *data, size_t len)
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
static inline void stream_more(struct pconn *pc)
{
    char chunk[16384];
    while (pc->streamed < H.big_len &&
           (size_t)sn_conn_backlog(pc->conn) <= H.lc.limits.output_high) {
        size_t left = H.big_len - pc->streamed;
        size_t n = left < sizeof chunk ? left : sizeof chunk;
        for (size_t i = 0; i < n; i++)
            chunk[i] = (char)((pc->streamed + i) * 7 + ((pc->streamed + i) >> 12));
        if (sn_conn_write(pc->conn, chunk, n) < 0)
            return;
        pc->streamed += n;
    }
    if ((size_t)sn_conn_backlog(pc->conn) > H.lc.limits.output_high)
        atomic_fetch_add(&my()->highs, 1);
    if (pc->streamed == H.big_len)
        sn_ignore(sn_conn_close(pc->conn));
}

static inline void srv_drain(struct sn_conn *c, void *arg)
{
    struct pconn *pc = arg;
    atomic_fetch_add(&my()->drains, 1);
    size_t low = H.lc.limits.output_low ? H.lc.limits.output_low : H.lc.limits.output_high / 2;
    if ((size_t)sn_conn_backlog(c) > low)
        atomic_fetch_add(&my()->drain_high, 1);
    if (H.behave == STREAM)
        stream_more(pc);
}

static inline void release_buf(void *arg)
{
    free(arg);
    atomic_fetch_add(&my()->released, 1);
}

static inline void note_backlog(struct sn_conn *c)
{
    uint64_t b = sn_conn_backlog(c);
    if (b > atomic_load(&my()->max_backlog))
        atomic_store(&my()->max_backlog, b);
}

static inline size_t srv_data(struct sn_conn *c, void *arg, const char *data, size_t len)
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
    case ECHO_INPUT: {
        if (sn_conn_write_input(c, data, len) < 0)
            sn_ignore(sn_conn_abort(c));
        uint64_t lent = sn__net_lent_buffers();
        if (lent > atomic_load(&my()->lent_max))
            atomic_store(&my()->lent_max, lent);
        return len;
    }
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

static inline void srv_eof(struct sn_conn *c, void *arg)
{
    struct pconn *pc = arg;
    atomic_fetch_add(&my()->eofs, 1);
    if (pc->paused)
        atomic_fetch_add(&my()->while_paused, 1); /* EOF must wait for the held data too */
    if (H.behave == BYE_ON_EOF)
        sn_conn_write(c, "BYE\n", 4);
    sn_ignore(sn_conn_close(c));
}

static inline void srv_error(struct sn_conn *c, void *arg, int err)
{
    (void)c, (void)arg, (void)err;
    atomic_fetch_add(&my()->on_error, 1);
}

static inline void srv_close(struct sn_conn *c, void *arg, int err)
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

static inline void *srv_accept(struct sn_conn *c, void *arg)
{
    (void)arg;
    struct pconn *pc = calloc(1, sizeof *pc);
    pc->conn = c;
    pc->refs = 1;
    pc->born_active = c->last_active;
    struct rec *r = my();
    atomic_fetch_add(&r->opened, 1);
    atomic_fetch_add(sn__conn_uses_bufring(c) ? &r->bufring : &r->plain, 1);
    if (c->fixed)
        atomic_fetch_add(&r->fixed, 1);
    atomic_store(&r->kernel_bufring,
                 (sn__core_self()->uring.features & SN__URING_BUF_RING) ? 1 : 0);
    return pc;
}

/* ---- the harness ------------------------------------------------------------------------ */

/* Waits (bounded) until the server closed every connection it opened. */
static inline void wait_server_idle(void)
{
    uint64_t end = nu_now_ms() + 10000;
    while (nu_now_ms() < end && TOTAL(closed) < TOTAL(opened))
        usleep(1000);
}

static inline void closed_listener(void *arg, int err, uint64_t value)
{
    (void)arg, (void)value;
    sn_promise_set(H.done, (uint64_t)(err ? 1 : 0));
}

static inline void finish_on_core0(void *arg)
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

static inline void *client_thread(void *arg)
{
    (void)arg;
    H.client_rc = H.client(&H);
    sn_submit_external(0, finish_on_core0, NULL);
    return NULL;
}

/*
 * The usual continuation of sn_listen: records the listener and its port, makes H.done and
 * starts `thread_fn` as the client thread; returns H.done's future (the run ends when it is
 * set). A listen error is kept in H.listen_err and ends the run with 2; a client thread that
 * cannot start ends it with 3.
 */
static inline struct sn_future *harness_listened_start(int err, uint64_t value,
                                                       void *(*thread_fn)(void *))
{
    if (err) {
        H.listen_err = err;
        return sn_ready(2);
    }
    H.l = (struct sn_listener *)(uintptr_t)value;
    H.port = sn_listener_port(H.l);
    struct sn_future *f;
    H.done = sn_promise_new(&f);
    H.thread_started = pthread_create(&H.thread, NULL, thread_fn, NULL) == 0;
    if (!H.thread_started)
        sn_promise_set(H.done, 3);
    return f;
}

static inline struct sn_future *listened(void *arg, int err, uint64_t value)
{
    (void)arg;
    return harness_listened_start(err, value, client_thread);
}

static inline struct sn_future *harness_main(void *arg)
{
    (void)arg;
    return sn_then_wrapped(sn_listen(&H.lc), listened, NULL);
}

static inline void harness_init(enum behave b, int (*client)(struct harness *))
{
    memset(&H, 0, sizeof H);
    H.behave = b;
    H.client = client;
    H.lc.ops = &srv_ops;
    H.lc.on_accept = srv_accept;
}

/* Runs the server on 2 cores until the client function returns; returns sn_run's code. */
static inline int harness_run(void)
{
    struct sn_config cfg = test_config(2);
    int rc = sn_run(&cfg, harness_main, NULL);
    if (H.thread_started)
        pthread_join(H.thread, NULL);
    return rc;
}

#endif
