/*
 * The harness of the server-kit tests (test_reply*.c, test_stream*.c, test_serve*.c): a
 * listener on K unpinned cores with the test's connection ops, a client function on a plain
 * thread, and a check that every core's pools are back at their baseline once the client is
 * done and the server has closed every connection and ended every reply slot.
 *
 * Server-side counters live in one cache-aligned slot per core (atomics: the client thread
 * and core 0 read them). Pool baselines: the core's general pool (futures, slots, call
 * records) and its reply-buffer pool, read on each core right after the listener is up and
 * again at the end, both through sn_invoke_on_all, so both readings include the same
 * in-flight call records.
 */
#ifndef SN_TESTS_KIT_UTIL_H
#define SN_TESTS_KIT_UTIL_H

#include <pthread.h>
#include <sn.h>
#include <stdatomic.h>

#include "core/sched.h"
#include "net_util.h"
#include "reactor/net_internal.h"
#include "reactor_util.h"

struct kit_core {
    _Atomic uint64_t opened, closed, close_err;
    _Atomic uint64_t begun, ended, epipe;  /* slots; writes or ends that saw -EPIPE */
    _Atomic uint64_t out_of_order;         /* slots ended while an earlier one was open */
    _Atomic uint64_t max_slots, max_bytes; /* most slots, most backlog + reply_mem seen */
    _Atomic uint64_t lines, too_long, blocks, bad;
    _Atomic uint64_t pool0, pool1, rblk0, rblk1; /* baseline and final pool readings */
    _Atomic uint64_t lent1;   /* ring buffers still lent (pins, output) at the final reading */
    _Atomic uint64_t user[4]; /* free for a test */
} SN_CACHE_ALIGNED;

struct kit {
    struct sn_listen_config lc;
    sn_serve_fn serve; /* set: the server is sn_serve(lc, serve) instead of sn_listen(lc) */
    size_t stack_size;
    struct sn_server *srv;
    bool closed_by_test;      /* the test closed the server itself: the harness must not */
    bool (*quiet_also)(void); /* more the server must have done before the end reading */
    unsigned ncores;
    int (*client)(uint16_t port);
    int client_rc;
    int listen_err;
    bool settled; /* every connection closed and every slot ended before the end reading */
    uint16_t port;
    struct sn_listener *l;
    struct sn_promise *done;
    pthread_t thread;
    bool thread_started;
    struct kit_core core[MAXC];
};

static struct kit K;

static inline struct kit_core *kc(void)
{
    return &K.core[sn_core_id()];
}

static inline uint64_t kit_total(_Atomic uint64_t *first)
{
    size_t off = (size_t)((char *)first - (char *)&K.core[0]);
    uint64_t sum = 0;
    for (unsigned i = 0; i < MAXC; i++)
        sum += atomic_load((_Atomic uint64_t *)((char *)&K.core[i] + off));
    return sum;
}
#define KTOTAL(f) kit_total(&K.core[0].f)

static inline void kit_max(_Atomic uint64_t *m, uint64_t v)
{
    uint64_t old = atomic_load(m);
    while (v > old && !atomic_compare_exchange_weak(m, &old, v))
        ;
}

/* Notes the slot count and buffered bytes of `c` (the bounds the backpressure keeps). */
static inline void kit_note(struct sn_conn *c)
{
    kit_max(&kc()->max_slots, c->nslots);
    kit_max(&kc()->max_bytes, c->backlog + c->reply_mem);
}

static inline void kit_count_err(int rc)
{
    if (rc == -EPIPE || rc == -ECONNRESET)
        atomic_fetch_add(&kc()->epipe, 1);
    else if (rc < 0)
        atomic_fetch_add(&kc()->bad, 1);
}

/* sn_reply_end with the counters (out of order: an earlier slot is still open). */
static inline void kit_end(struct sn_reply *r)
{
    struct sn_conn *c = sn_reply_conn(r);
    if (!c->finished && c->rhead != r)
        atomic_fetch_add(&kc()->out_of_order, 1);
    kit_count_err(sn_reply_end(r));
    atomic_fetch_add(&kc()->ended, 1);
}

static inline int kit_begin(struct sn_conn *c, struct sn_reply **r)
{
    int rc = sn_reply_begin(c, r);
    if (rc == 0) {
        atomic_fetch_add(&kc()->begun, 1);
        kit_note(c);
    }
    return rc;
}

static inline void *kit_accept(struct sn_conn *c, void *arg)
{
    (void)c;
    atomic_fetch_add(&kc()->opened, 1);
    return arg;
}

static inline void kit_close(struct sn_conn *c, void *arg, int err)
{
    (void)c, (void)arg;
    if (err)
        atomic_fetch_add(&kc()->close_err, 1);
    atomic_fetch_add(&kc()->closed, 1);
}

/* ---- pool readings ------------------------------------------------------------------------ */

static inline struct sn_future *read_pools(void *arg)
{
    struct kit_core *k = kc();
    uint64_t pool = sn__tls_sched->pool.in_use, rblk = sn__net_reply_blocks();
    if (arg) {
        atomic_store(&k->pool1, pool);
        atomic_store(&k->rblk1, rblk);
        atomic_store(&k->lent1, sn__net_lent_buffers());
    } else {
        atomic_store(&k->pool0, pool);
        atomic_store(&k->rblk0, rblk);
    }
    return SN_SUCCESS;
}

/* ---- the run -------------------------------------------------------------------------------- */

static inline bool kit_quiet(void)
{
    struct sn_listener_stats st = {0};
    if (!K.closed_by_test)
        sn_listener_stats(K.l, SN_LISTENER_ALL_CORES, &st);
    return KTOTAL(closed) == KTOTAL(opened) && KTOTAL(ended) == KTOTAL(begun) && !st.active &&
           (!K.quiet_also || K.quiet_also());
}

static inline void kit_closed_listener(void *arg, int err, uint64_t value)
{
    (void)arg, (void)value;
    sn_promise_set(K.done, err ? 1 : 0);
}

/* After the final reading (made the same way as the first, so the same transient records
 * exist during both). */
static inline void kit_read_end(void *arg, int err, uint64_t value)
{
    (void)arg, (void)err, (void)value;
    if (K.closed_by_test) {
        sn_promise_set(K.done, 0);
        return;
    }
    struct sn_future *f = K.srv ? sn_server_close(K.srv) : sn_listener_close(K.l);
    sn_done(f, kit_closed_listener, NULL);
}

/* On core 0 once the client is done: waits (bounded) until the server is quiet. */
static inline void kit_wait_quiet(void *arg, int err, uint64_t value)
{
    (void)err, (void)value;
    uint64_t deadline = (uint64_t)(uintptr_t)arg;
    if (!kit_quiet() && sn_now_ns() < deadline) {
        sn_done(sn_sleep(1000000), kit_wait_quiet, arg);
        return;
    }
    K.settled = kit_quiet();
    sn_done(sn_invoke_on_all(read_pools, (void *)1), kit_read_end, NULL);
}

static inline void kit_client_done(void *arg)
{
    (void)arg;
    uint64_t deadline = sn_now_ns() + 20ull * 1000000000u;
    kit_wait_quiet((void *)(uintptr_t)deadline, 0, 0);
}

static inline void *kit_client_thread(void *arg)
{
    (void)arg;
    K.client_rc = K.client(K.port);
    sn_submit_external(0, kit_client_done, NULL);
    return NULL;
}

static inline void kit_read_start(void *arg, int err, uint64_t value)
{
    (void)arg, (void)err, (void)value;
    K.thread_started = pthread_create(&K.thread, NULL, kit_client_thread, NULL) == 0;
    if (!K.thread_started)
        sn_promise_set(K.done, 3);
}

static inline struct sn_future *kit_listened(void *arg, int err, uint64_t value)
{
    (void)arg;
    if (err) {
        K.listen_err = err;
        return sn_ready(2);
    }
    if (K.serve) {
        K.srv = (struct sn_server *)(uintptr_t)value;
        K.l = sn_server_listener(K.srv);
    } else {
        K.l = (struct sn_listener *)(uintptr_t)value;
    }
    K.port = sn_listener_port(K.l);
    struct sn_future *f;
    K.done = sn_promise_new(&f);
    sn_done(sn_invoke_on_all(read_pools, NULL), kit_read_start, NULL);
    return f;
}

static inline struct sn_future *kit_main(void *arg)
{
    (void)arg;
    if (K.serve) {
        struct sn_serve_config sc = {.listen = K.lc, .stack_size = K.stack_size};
        return sn_then_wrapped(sn_serve(&sc, K.serve, NULL), kit_listened, NULL);
    }
    return sn_then_wrapped(sn_listen(&K.lc), kit_listened, NULL);
}

/* Clears K and makes the server sn_serve(fn) (its fibers count opened / closed with
 * kit_session_start / kit_session_end); the test may then change K.lc. */
static inline void kit_init_serve(sn_serve_fn fn, int (*client)(uint16_t port))
{
    memset(&K, 0, sizeof K);
    K.ncores = 2;
    K.client = client;
    K.serve = fn;
}

static inline void kit_session_start(void)
{
    atomic_fetch_add(&kc()->opened, 1);
}

static inline int kit_session_end(int rc)
{
    if (rc && rc != SN_EOF)
        atomic_fetch_add(&kc()->close_err, 1);
    atomic_fetch_add(&kc()->closed, 1);
    return rc;
}

/* Clears K and sets the ops and the client; the test may then change K.lc. */
static inline void kit_init(const struct sn_conn_ops *ops, int (*client)(uint16_t port))
{
    memset(&K, 0, sizeof K);
    K.ncores = 2;
    K.client = client;
    K.lc.ops = ops;
    K.lc.on_accept = kit_accept;
}

/* Runs the server until the client returned and the server is quiet; sn_run's code. */
static inline int kit_run(void)
{
    struct sn_config cfg = test_config(K.ncores);
    int rc = sn_run(&cfg, kit_main, NULL);
    if (K.thread_started)
        pthread_join(K.thread, NULL);
    return rc;
}

/* Every core's pools are back where they were before the first connection. */
static inline bool kit_pools_at_baseline(void)
{
    bool same = true;
    for (unsigned i = 0; i < K.ncores; i++) {
        uint64_t p0 = atomic_load(&K.core[i].pool0), p1 = atomic_load(&K.core[i].pool1);
        uint64_t r0 = atomic_load(&K.core[i].rblk0), r1 = atomic_load(&K.core[i].rblk1);
        if (p0 != p1 || r0 != r1) {
            fprintf(stderr, "core %u: pool blocks %llu -> %llu, reply blocks %llu -> %llu\n", i,
                    (unsigned long long)p0, (unsigned long long)p1, (unsigned long long)r0,
                    (unsigned long long)r1);
            same = false;
        }
    }
    return same;
}

/* ---- client helpers ------------------------------------------------------------------------- */

/* Reads until `want` bytes came or the peer ended; returns the bytes read (buf is grown). */
static inline size_t kit_read_n(int fd, char **buf, size_t *cap, size_t want)
{
    size_t got = 0;
    if (*cap < want + 1) {
        *cap = want + 1;
        *buf = realloc(*buf, *cap);
    }
    while (got < want) {
        ssize_t r = recv(fd, *buf + got, want - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    (*buf)[got] = 0;
    return got;
}

/*
 * Sends req[0..len) while reading the answers (poll, so neither side can block the other),
 * until `want` bytes came back, the peer ended, or `ms` passed. Returns the bytes read into
 * *out (malloc'd, NUL-terminated). With shut, half-closes once everything is sent and reads
 * until EOF.
 */
static inline size_t kit_exchange(int fd, const char *req, size_t len, size_t want, bool shut,
                                  unsigned ms, char **out)
{
    size_t cap = want + 65537, got = 0, sent = 0;
    char *b = malloc(cap);
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    uint64_t end = nu_now_ms() + ms;
    bool eof = false;
    while (!eof && (shut || got < want) && nu_now_ms() < end) {
        struct pollfd pf = {.fd = fd, .events = POLLIN | (sent < len ? POLLOUT : 0)};
        if (poll(&pf, 1, 100) < 0 && errno != EINTR)
            break;
        if ((pf.revents & POLLOUT) && sent < len) {
            ssize_t w = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
            if (w > 0 && (sent += (size_t)w) == len && shut)
                shutdown(fd, SHUT_WR);
            else if (w < 0 && errno != EAGAIN)
                break;
        }
        if (pf.revents & (POLLIN | POLLHUP | POLLERR)) {
            if (got + 65536 > cap)
                b = realloc(b, cap *= 2);
            ssize_t r = recv(fd, b + got, 65536, 0);
            if (r > 0)
                got += (size_t)r;
            else if (r == 0 || errno != EAGAIN)
                eof = true;
        }
    }
    fcntl(fd, F_SETFL, fl);
    b[got] = 0;
    *out = b;
    return got;
}

/* Reads until EOF (or error, or timeout); returns the bytes read into a malloc'd buffer. */
static inline size_t kit_read_all(int fd, char **out)
{
    size_t cap = 65536, len = 0;
    char *b = malloc(cap);
    for (;;) {
        if (len + 65536 > cap)
            b = realloc(b, cap *= 2);
        ssize_t r = recv(fd, b + len, 65536, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    b[len] = 0;
    *out = b;
    return len;
}

#endif
