/*
 * Listening and accepting (contract in include/sn/net.h).
 *
 * sn_listen makes every socket on the calling core (so the port, and errors, are known at
 * once), then asks every core to start its slot: a multishot accept on its own socket
 * (SO_REUSEPORT mode), or, in one-core mode, only the calling core accepts. Either way the
 * accepting core chooses the core that gets the connection (pick_core: the least loaded; in
 * SO_REUSEPORT mode itself unless the kernel's hash has given it more than its share) and
 * sends the socket there through sn_send. Each slot's connection count is an atomic written
 * by the acceptor (+1 when it assigns a connection) and by the owner (-1 when the connection
 * ends), so the choice sees connections still on their way.
 *
 * The listener is shared by the cores, so its memory is reference counted (atomically): one
 * reference for the app (dropped by sn_listener_close or by the reactor stop), one per open
 * slot, one per connection it made; the last one frees it, on whichever core that is.
 */
#include "reactor/net_internal.h"

#include <sn/reactor.h>
#include <sn/smp.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ACCEPT_RETRY_NS 10000000ull /* after EMFILE and the like */
#define DEFAULT_BACKLOG 1024

static void accept_cb(struct sn__io_op *op, int res, uint32_t flags);
static void retry_fire(void *arg);

/* ---- references ------------------------------------------------------------------------- */

static void listener_free(struct sn_listener *l)
{
    void (*fini)(void *) = l->fini;
    void *arg = l->fini_arg;
    free(l);
    if (fini)
        fini(arg);
}

void sn__listener_unref(struct sn_listener *l)
{
    if (atomic_fetch_sub(&l->refs, 1) == 1)
        listener_free(l);
}

static void drop_app_ref(struct sn_listener *l)
{
    if (atomic_exchange(&l->app_ref, 0))
        sn__listener_unref(l);
}

void sn__listener_conn_gone(struct sn_listener *l, unsigned core)
{
    atomic_fetch_sub(&l->slots[core].nconns, 1);
    sn__listener_unref(l);
}

/* ---- slots: start and stop -------------------------------------------------------------- */

static bool accept_arm(struct sn__lslot *s)
{
    struct io_uring_sqe *sqe = sn__io_sqe();
    if (!sqe)
        return false;
    io_uring_prep_multishot_accept(sqe, s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    s->aop.cb = accept_cb;
    sn__sqe_bind_as(sqe, &s->aop, s->tag);
    return true;
}

static void slot_link(struct sn__netc *nc, struct sn__lslot *s)
{
    s->nc = nc;
    sn_list_push_back(&nc->slots, &s->link);
    sn__netc_ref(nc);
}

static void slot_unlink(struct sn__lslot *s)
{
    struct sn__netc *nc = s->nc;
    sn_list_remove(&s->link);
    s->nc = NULL;
    sn__netc_unref(nc);
}

/* The slot's socket closes; nothing of it is in flight any more. */
static void slot_done(struct sn__lslot *s)
{
    struct sn_listener *l = s->l;
    sn_timer_cancel(&s->retry);
    sn__net_close_fd(s->fd, false);
    s->fd = -1;
    s->done = true;
    slot_unlink(s);
    if (s->closed) {
        struct sn_promise *p = s->closed;
        s->closed = NULL;
        sn_promise_set(p, 0);
    }
    /* The reactor stops: the listener is libsn's to free now (the slot's reference keeps it
     * alive through this; the accept may have been cancelled before the sentinel ran). */
    if (sn_stopping())
        drop_app_ref(l);
    sn__listener_unref(l); /* the slot's reference: may free s */
}

/*
 * No SQE for the accept or its cancel: the retry timer tries again right after the loop's
 * next submit. false when it cannot be armed (the reactor stops: it cancels the accept).
 */
static bool retry_soon(struct sn__lslot *s)
{
    return sn_timer_arm(&s->retry, 0) == 0;
}

/* Closing: cancels the accept, or finishes the slot once it is over. */
static void slot_close_step(struct sn__lslot *s)
{
    if (!s->aop.inflight)
        slot_done(s);
    else if (!sn__net_cancel(&s->aop))
        retry_soon(s); /* else the reactor's stop cancels it */
}

static void slot_stop(struct sn__lslot *s)
{
    if (!s->started || s->closing || s->done)
        return;
    s->closing = true;
    sn_timer_cancel(&s->retry);
    slot_close_step(s);
}

/* Reactor stop (the core's sentinel): close the slot and let go of the app's reference. */
void sn__lslot_stop(struct sn__lslot *s)
{
    struct sn_listener *l = s->l;
    atomic_fetch_add(&l->refs, 1); /* keep l while both drops happen */
    slot_stop(s);
    drop_app_ref(l);
    sn__listener_unref(l);
}

static struct sn_future *slot_start(void *arg)
{
    struct sn_listener *l = arg;
    struct sn__lslot *s = &l->slots[sn_core_id()];
    if (s->fd < 0)
        return SN_SUCCESS; /* one-core mode: this core only receives connections */
    int err;
    struct sn__netc *nc = sn__netc_get(&err);
    if (!nc)
        return sn_failed(err);
    /* sn_listen's caller's group: slot_start runs it on every core, serving its request
     * there, but the slot outlives that request (so not the serving bit). */
    s->tag = sn__tls_sched->tag & SN__TAG_GROUP;
    if (!accept_arm(s))
        return sn_failed(-EBUSY);
    atomic_fetch_add(&l->refs, 1);
    s->started = true;
    slot_link(nc, s);
    return SN_SUCCESS;
}

static struct sn_future *slot_close(void *arg)
{
    struct sn_listener *l = arg;
    struct sn__lslot *s = &l->slots[sn_core_id()];
    if (!s->started || s->done || s->closed)
        return SN_SUCCESS;
    struct sn_future *f;
    s->closed = sn_promise_new(&f);
    if (!s->closing)
        slot_stop(s);
    return f;
}

static void retry_fire(void *arg)
{
    struct sn__lslot *s = arg;
    if (s->closing) {
        slot_close_step(s); /* a cancel that had no SQE */
        return;
    }
    if (sn__net_stopping(s->nc)) {
        s->closing = true;
        slot_done(s);
        return;
    }
    if (!accept_arm(s) && !retry_soon(s)) {
        s->closing = true;
        slot_done(s);
    }
}

/* ---- accepting ----------------------------------------------------------------------------- */

static bool has_room(const struct sn_listener *l, uint64_t open)
{
    return !l->cfg.max_conns_per_core || open < l->cfg.max_conns_per_core;
}

/*
 * The core a new connection should go to, or -1 when every core is full; *given is what the
 * choice saw of that core's `assigned`. Load is counted two ways per core: nconns, the
 * connections open (or on their way) now, and assigned, every connection it was ever given.
 * The candidates are the cores with room whose nconns is within 1 + 1/8 of the least; of
 * them, the one given the fewest so far wins, ties in turn.
 *
 * nconns alone balances long connections but not short ones: with 8 cores on 2 CPUs the
 * cores that happen to run close their connections first, so counting open ones sent core 0
 * (the acceptor, which hands nothing over) 1.3x the mean of 4000 short connections and
 * others 0.7x (Seastar users see the same pull toward shard 0, seastar#3514). Among cores
 * with about as many open, the fewest given evens the counts out whatever the churn.
 *
 * `here` (SO_REUSEPORT mode; -1 otherwise) is the core that accepted: it keeps the
 * connection while it is a candidate and was given at most 1/32 more than the winner, so
 * hand-offs happen only to correct what the kernel's hash of the addresses spreads unevenly
 * (the busiest of 8 cores took 1.22x the mean of 256 long connections, 1.09x of 4000 short).
 * O(cores) loads per connection, as the one-core mode always had.
 */
static int pick_core(struct sn_listener *l, int here, uint64_t *given)
{
    unsigned n = l->ncores;
    uint64_t least = UINT64_MAX;
    for (unsigned k = 0; k < n; k++) {
        uint64_t open = atomic_load_explicit(&l->slots[k].nconns, memory_order_relaxed);
        if (has_room(l, open) && open < least)
            least = open;
    }
    if (least == UINT64_MAX)
        return -1;
    uint64_t near = least + 1 + least / 8;
    unsigned start = atomic_fetch_add_explicit(&l->rr, 1, memory_order_relaxed) % n;
    int best = -1;
    uint64_t best_given = UINT64_MAX;
    for (unsigned i = 0; i < n; i++) {
        unsigned k = (start + i) % n;
        uint64_t open = atomic_load_explicit(&l->slots[k].nconns, memory_order_relaxed);
        if (!has_room(l, open) || open > near)
            continue;
        uint64_t g = atomic_load_explicit(&l->slots[k].assigned, memory_order_relaxed);
        if (g < best_given) {
            best = (int)k;
            best_given = g;
        }
    }
    if (here >= 0) {
        const struct sn__lslot *s = &l->slots[here];
        uint64_t open = atomic_load_explicit(&s->nconns, memory_order_relaxed);
        uint64_t g = atomic_load_explicit(&s->assigned, memory_order_relaxed);
        if (has_room(l, open) && open <= near && g <= best_given + best_given / 32) {
            *given = g;
            return here;
        }
    }
    *given = best_given;
    return best;
}

/*
 * pick_core, then takes the place: `assigned` moves only from the value the choice saw, so two
 * cores accepting at once cannot both give one core its last place in the balance (the loser
 * chooses again; after a few tries it takes its choice anyway). -1 when every core is full.
 */
static int choose_core(struct sn_listener *l, int here)
{
    for (unsigned tries = 0;; tries++) {
        uint64_t given;
        int target = pick_core(l, here, &given);
        if (target < 0)
            return -1;
        _Atomic uint64_t *a = &l->slots[target].assigned;
        if (atomic_compare_exchange_strong(a, &given, given + 1))
            return target;
        if (tries == 3) {
            atomic_fetch_add(a, 1);
            return target;
        }
    }
}

/* On the core that will own it: the socket becomes a connection (the slot count is taken). */
static void adopt(struct sn_listener *l, int fd)
{
    unsigned core = sn_core_id();
    struct sn__lslot *s = &l->slots[core];
    int err;
    struct sn__netc *nc = sn__netc_get(&err);
    struct sn_conn *c = nc ? sn__conn_new(nc, fd, &l->cfg.limits, l->cfg.ops, l->cfg.arg, l) : NULL;
    if (!c) {
        sn__net_close_fd(fd, false);
        atomic_fetch_add(&s->refused, 1);
        sn__listener_conn_gone(l, core);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    atomic_fetch_add(&s->accepted, 1);
    if (l->cfg.on_accept) {
        c->refs++;
        c->arg = l->cfg.on_accept(c, l->cfg.arg);
        c->refs--;
    }
    sn__conn_start(c);
}

struct handoff {
    struct sn_listener *l;
    int fd;
};

static void adopt_remote(void *arg)
{
    struct handoff h = *(struct handoff *)arg;
    free(arg);
    adopt(h.l, h.fd);
}

static void refuse(struct sn__lslot *s, int fd)
{
    sn__net_close_fd(fd, false);
    atomic_fetch_add(&s->refused, 1);
}

static void handle_fd(struct sn__lslot *s, int fd)
{
    struct sn_listener *l = s->l;
    if (s->closing || sn__net_stopping(s->nc)) {
        refuse(s, fd);
        return;
    }
    int target = choose_core(l, l->cfg.mode == SN_ACCEPT_ONE_CORE ? -1 : (int)s->core);
    if (target < 0) {
        refuse(s, fd);
        return;
    }
    atomic_fetch_add(&l->slots[target].nconns, 1);
    atomic_fetch_add(&l->refs, 1);
    if ((unsigned)target == s->core) {
        adopt(l, fd);
        return;
    }
    struct handoff *h = malloc(sizeof *h);
    if (h) {
        *h = (struct handoff){l, fd};
        if (sn_send((unsigned)target, adopt_remote, h) == 0) {
            atomic_fetch_add_explicit(&s->moved, 1, memory_order_relaxed);
            return;
        }
        free(h);
    }
    refuse(&l->slots[target], fd);
    sn__listener_conn_gone(l, (unsigned)target);
}

static bool transient(int err)
{
    return err == -EMFILE || err == -ENFILE || err == -ENOBUFS || err == -ENOMEM ||
           err == -ECONNABORTED || err == -EINTR || err == -EAGAIN;
}

static void accept_cb(struct sn__io_op *op, int res, uint32_t flags)
{
    struct sn__lslot *s = SN_CONTAINER_OF(op, struct sn__lslot, aop);
    if (res >= 0)
        handle_fd(s, res);
    if (flags & IORING_CQE_F_MORE)
        return;
    /* The multishot accept ended: go on, wait a little, or finish the slot. */
    if (s->closing || sn__net_stopping(s->nc) || res == -ECANCELED) {
        s->closing = true;
        slot_done(s);
    } else if (res >= 0 || res == -EINTR || res == -EAGAIN || res == -ECONNABORTED) {
        if (!accept_arm(s) && !retry_soon(s)) {
            s->closing = true;
            slot_done(s);
        }
    } else if (!transient(res) || sn_timer_arm(&s->retry, ACCEPT_RETRY_NS) < 0) {
        s->closing = true;
        slot_done(s);
    }
}

/* ---- public ---------------------------------------------------------------------------------- */

static int open_socket(const struct sockaddr_storage *a, socklen_t alen, bool reuseport,
                       int backlog)
{
    int fd = socket(a->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) ||
        bind(fd, (const struct sockaddr *)a, alen) < 0 || listen(fd, backlog) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

static void set_port(struct sockaddr_storage *a, uint16_t port)
{
    if (a->ss_family == AF_INET)
        ((struct sockaddr_in *)a)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)a)->sin6_port = htons(port);
}

static uint16_t local_port(int fd)
{
    struct sockaddr_storage a;
    socklen_t len = sizeof a;
    if (getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        return 0;
    return ntohs(a.ss_family == AF_INET ? ((struct sockaddr_in *)&a)->sin_port
                                        : ((struct sockaddr_in6 *)&a)->sin6_port);
}

/*
 * SO_REUSEPORT lets any socket of the same user join a port, also another process's: a
 * second server would share the port silently. So a fixed port is first bound by a probe
 * without SO_REUSEPORT, which fails with EADDRINUSE while anything listens there (SO_REUSEADDR
 * keeps connections in TIME_WAIT from counting). The probe is closed again before the real
 * sockets bind (see net.h for the race left). 0 or a negative errno.
 */
static int port_free(const struct sockaddr_storage *a, socklen_t alen)
{
    int fd = socket(a->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    int rc = 0;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (const struct sockaddr *)a, alen) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

/* Makes the listening sockets; 0 or a negative errno (then none is left open). */
static int open_sockets(struct sn_listener *l, struct sockaddr_storage *a, socklen_t alen)
{
    bool reuse = l->cfg.mode == SN_ACCEPT_REUSEPORT;
    int backlog = l->cfg.backlog > 0 ? l->cfg.backlog : DEFAULT_BACKLOG;
    l->port = l->cfg.port;
    if (reuse && l->port) {
        set_port(a, l->port);
        int rc = port_free(a, alen);
        if (rc < 0)
            return rc;
    }
    for (unsigned i = 0; i < l->ncores; i++) {
        if (!reuse && i != l->acceptor)
            continue;
        set_port(a, l->port);
        int fd = open_socket(a, alen, reuse, backlog);
        if (fd < 0) {
            for (unsigned k = 0; k < i; k++)
                sn__net_close_fd(l->slots[k].fd, false);
            return fd;
        }
        l->slots[i].fd = fd;
        if (!l->port)
            l->port = local_port(fd);
    }
    return 0;
}

static struct sn_listener *listener_new(const struct sn_listen_config *cfg)
{
    unsigned n = sn_core_count();
    size_t size = sizeof(struct sn_listener) + n * sizeof(struct sn__lslot);
    size = (size + SN_CACHELINE - 1) / SN_CACHELINE * SN_CACHELINE;
    struct sn_listener *l = aligned_alloc(SN_CACHELINE, size);
    if (!l)
        return NULL;
    memset(l, 0, size);
    l->cfg = *cfg;
    l->cfg.host = NULL; /* not kept: the caller's string */
    l->ncores = n;
    l->acceptor = sn_core_id();
    atomic_init(&l->refs, 1);
    atomic_init(&l->app_ref, 1);
    for (unsigned i = 0; i < n; i++) {
        struct sn__lslot *s = &l->slots[i];
        s->l = l;
        s->core = i;
        s->fd = -1;
        sn__io_op_init(&s->aop, accept_cb);
        sn_timer_init(&s->retry, retry_fire, s);
    }
    return l;
}

static struct sn_future *fail_after_close(void *arg, int err, uint64_t value)
{
    (void)value;
    (void)err;
    return sn_failed((int)(intptr_t)arg);
}

static struct sn_future *close_all(struct sn_listener *l);

static struct sn_future *listen_started(void *arg, int err, uint64_t value)
{
    (void)value;
    struct sn_listener *l = arg;
    if (!err)
        return sn_ready((uint64_t)(uintptr_t)l);
    /* Slots that never started are ours to close; started ones close on their cores. */
    for (unsigned i = 0; i < l->ncores; i++)
        if (!l->slots[i].started) {
            sn__net_close_fd(l->slots[i].fd, false);
            l->slots[i].fd = -1;
        }
    return sn_then_wrapped(close_all(l), fail_after_close, (void *)(intptr_t)err);
}

/* A listen that failed before the listener existed: fini now, then the failure. */
static struct sn_future *listen_failed(int err, void (*fini)(void *arg), void *fini_arg)
{
    if (fini)
        fini(fini_arg);
    return sn_failed(err);
}

struct sn_future *sn__listen(const struct sn_listen_config *cfg, void (*fini)(void *arg),
                             void *fini_arg)
{
    if (!cfg || (cfg->mode != SN_ACCEPT_REUSEPORT && cfg->mode != SN_ACCEPT_ONE_CORE))
        return listen_failed(-EINVAL, fini, fini_arg);
    if (sn_stopping())
        return listen_failed(-ECANCELED, fini, fini_arg);
    struct sockaddr_storage a;
    socklen_t alen;
    int rc = sn_addr_parse(cfg->host, cfg->port, &a, &alen);
    if (rc < 0)
        return listen_failed(rc, fini, fini_arg);
    struct sn_listener *l = listener_new(cfg);
    if (!l)
        return listen_failed(-ENOMEM, fini, fini_arg);
    l->fini = fini;
    l->fini_arg = fini_arg;
    rc = open_sockets(l, &a, alen);
    if (rc < 0) {
        listener_free(l);
        return sn_failed(rc);
    }
    return sn_then_wrapped(sn_invoke_on_all(slot_start, l), listen_started, l);
}

struct sn_future *sn_listen(const struct sn_listen_config *cfg)
{
    sn__sched_here(__func__);
    return sn__listen(cfg, NULL, NULL);
}

static struct sn_future *close_done(void *arg, int err, uint64_t value)
{
    (void)value;
    sn__listener_unref(arg); /* the app's reference, held by the close until now */
    return err ? sn_failed(err) : SN_SUCCESS;
}

static struct sn_future *close_all(struct sn_listener *l)
{
    /* Take the app's reference over, so that a reactor stop meanwhile does not drop it too;
     * the close holds it (and so l) until every core answered. */
    if (!atomic_exchange(&l->app_ref, 0))
        return sn_ready(0);
    if (sn_stopping()) {
        sn__listener_unref(l); /* the cores' sentinels close the slots */
        return sn_ready(0);
    }
    return sn_then_wrapped(sn_invoke_on_all(slot_close, l), close_done, l);
}

struct sn_future *sn_listener_close(struct sn_listener *l)
{
    sn__sched_here(__func__);
    if (sn_stopping())
        return sn_ready(0);
    return close_all(l);
}

uint16_t sn_listener_port(const struct sn_listener *l)
{
    return l->port;
}

void sn_listener_stats(const struct sn_listener *l, unsigned core, struct sn_listener_stats *out)
{
    memset(out, 0, sizeof *out);
    for (unsigned i = 0; i < l->ncores; i++) {
        if (core != SN_LISTENER_ALL_CORES && core != i)
            continue;
        const struct sn__lslot *s = &l->slots[i];
        out->accepted += atomic_load(&s->accepted);
        out->refused += atomic_load(&s->refused);
        out->active += atomic_load(&s->nconns);
        out->moved += atomic_load(&s->moved);
    }
}
