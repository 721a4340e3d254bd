/*
 * sn_serve (include/sn/serve.h): a listener whose on_accept makes each connection a stream
 * (net_stream.c) and spawns a fiber that runs the app's function on it; when the fiber ends
 * the connection is closed gracefully.
 *
 * Per core the server keeps its live connections (a list, to end their reads at a close), a
 * count of the ones whose fiber runs or whose connection is still closing, and the futures
 * of sn_server_close calls waiting for that count to reach 0; all of it touched only by its
 * core.
 *
 * Memory: the server belongs to its listener (sn__listen's fini frees it when the listener
 * is freed). Every connection holds a listener reference from its accept until its fiber has
 * ended and its connection closed (besides the one the connection itself holds until its
 * final step), and a close holds one until it settles, so the server outlives everything
 * that touches it. At a reactor stop libsn closes the listener and the connections; the last
 * reference going frees the server, whether or not the app closed it.
 */
#include "reactor/net_internal.h"

#include <sn/fiber.h>
#include <sn/reactor.h>
#include <sn/serve.h>
#include <sn/smp.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct serve_core {
    struct sn_server *srv;
    struct sn_list conns; /* streams of the live connections (sn__stream.link) */
    unsigned live;        /* fibers running, or their connections closing */
    bool closing;
    struct sn__waiters idle; /* sn_server_close calls: settled when live reaches 0 */
} SN_CACHE_ALIGNED;

struct sn_server {
    struct sn_listener *l; /* set once the listen succeeded */
    sn_serve_fn fn;
    void *arg;
    size_t stack_size;
    unsigned ncores;
    struct serve_core cores[];
};

static const struct sn_conn_ops serve_ops; /* all NULL: the stream takes the input */

static void server_free(void *arg)
{
    free(arg);
}

/* ---- a connection's life ------------------------------------------------------------------ */

static struct serve_core *core_of(struct sn_conn *c)
{
    return c->stream->owner;
}

static int conn_fiber(void *arg, uint64_t *value)
{
    (void)value;
    struct sn_conn *c = arg;
    struct sn_server *s = core_of(c)->srv;
    return s->fn(c, s->arg);
}

/* The connection closed: it is not the server's any more. */
static void conn_closed(void *arg, int err, uint64_t value)
{
    (void)err, (void)value;
    struct sn_conn *c = arg;
    struct serve_core *sc = core_of(c);
    struct sn_listener *l = c->l;
    sn_list_remove(&c->stream->link);
    sn_conn_release(c); /* may free c */
    if (--sc->live == 0 && sc->idle.head)
        sn__waiters_settle(&sc->idle, 0, 0);
    sn__listener_unref(l); /* the connection's hold on the server: may free sc */
}

static void fiber_ended(void *arg, int err, uint64_t value)
{
    (void)err, (void)value; /* the fiber's result is the app's to report */
    struct sn_conn *c = arg;
    c->fiber_runs = false;
    sn__conn_progress(c); /* a close that began at a reactor stop waited for the fiber */
    sn_done(sn_conn_close(c), conn_closed, c); /* (conn_closed may free c at once) */
}

static void *serve_accept(struct sn_conn *c, void *arg)
{
    struct sn_server *s = arg;
    struct serve_core *sc = &s->cores[sn_core_id()];
    if (sc->closing || sn__stream_start(c) < 0) {
        sn_ignore(sn_conn_abort(c));
        return NULL;
    }
    c->stream->owner = sc;
    sn_list_push_back(&sc->conns, &c->stream->link);
    sc->live++;
    atomic_fetch_add(&c->l->refs, 1); /* dropped by conn_closed */
    sn_conn_hold(c);                  /* the fiber reads c until it returns */
    c->fiber_runs = true;
    struct sn_fiber_opts o = {.name = "sn_serve", .stack_size = s->stack_size};
    sn_done(sn_fiber_spawn(conn_fiber, c, &o), fiber_ended, c);
    return s;
}

/* ---- open and close ------------------------------------------------------------------------- */

static struct sn_future *served(void *arg, uint64_t value)
{
    struct sn_server *s = arg;
    s->l = (struct sn_listener *)(uintptr_t)value;
    return sn_ready((uint64_t)(uintptr_t)s);
}

struct sn_future *sn_serve(const struct sn_serve_config *cfg, sn_serve_fn fn, void *arg)
{
    sn__sched_here(__func__);
    if (!cfg || !fn || cfg->listen.ops || cfg->listen.on_accept || cfg->listen.arg)
        return sn_failed(-EINVAL);
    unsigned n = sn_core_count();
    size_t size = sizeof(struct sn_server) + n * sizeof(struct serve_core);
    size = (size + SN_CACHELINE - 1) / SN_CACHELINE * SN_CACHELINE;
    struct sn_server *s = aligned_alloc(SN_CACHELINE, size);
    if (!s)
        return sn_failed(-ENOMEM);
    memset(s, 0, size);
    s->fn = fn;
    s->arg = arg;
    s->stack_size = cfg->stack_size;
    s->ncores = n;
    for (unsigned i = 0; i < n; i++) {
        s->cores[i].srv = s;
        sn_list_init(&s->cores[i].conns);
    }
    struct sn_listen_config lc = cfg->listen;
    lc.ops = &serve_ops;
    lc.on_accept = serve_accept;
    lc.arg = s;
    return sn_then(sn__listen(&lc, server_free, s), served, s);
}

struct sn_listener *sn_server_listener(const struct sn_server *s)
{
    return s->l;
}

/* On each core: no new connections, every read ends; settles once the core's are gone. */
static struct sn_future *core_close(void *arg)
{
    struct sn_server *s = arg;
    struct serve_core *sc = &s->cores[sn_core_id()];
    sc->closing = true;
    /* (A woken fiber resumes from the run queue, not inside this loop.) */
    SN_LIST_FOR_EACH (n, &sc->conns)
        sn__stream_cancel(SN_CONTAINER_OF(n, struct sn__stream, link));
    return sc->live ? sn__waiters_add(&sc->idle) : SN_SUCCESS;
}

static struct sn_future *closed_all(void *arg, int err, uint64_t value)
{
    (void)value;
    sn__listener_unref(arg); /* the close's hold on the server */
    return err ? sn_failed(err) : SN_SUCCESS;
}

static struct sn_future *listener_closed(void *arg, int err, uint64_t value)
{
    (void)err, (void)value; /* (it fails only when the reactor stops: it closes it then) */
    struct sn_server *s = arg;
    return sn_then_wrapped(sn_invoke_on_all(core_close, s), closed_all, s->l);
}

struct sn_future *sn_server_close(struct sn_server *s)
{
    sn__sched_here(__func__);
    if (sn_stopping())
        return sn_ready(0);
    atomic_fetch_add(&s->l->refs, 1); /* held until every core's connections are gone */
    return sn_then_wrapped(sn_listener_close(s->l), listener_closed, s);
}
