/*
 * Futures and promises (see include/sn/future.h). A promise and its future are one pooled
 * object: the producer settles it, the consumer attaches one continuation, and whichever
 * comes second dispatches the continuation, which frees the object before calling user code
 * (so a long chain holds one object per pending link, not one per link ever made).
 */
#include <sn/future.h>
#include <sn/mesh.h>

#include "core/sched.h"

#include <assert.h>
#include <errno.h>

enum { ST_PENDING, ST_READY };

/* What consumes a future. */
enum {
    K_NONE,     /* nothing yet */
    K_THEN,     /* fn.then, then forward to out */
    K_WRAPPED,  /* fn.wrapped, then forward to out */
    K_DONE,     /* fn.done, final */
    K_FORWARD,  /* settle out with the same result */
    K_IGNORE,   /* drop */
    K_WHEN_ALL, /* record into a when_all group (arg), slot `index` */
};

struct sn_future {
    struct sn_task task; /* runs the continuation from the run queue when too deep */
    uint64_t value;
    int32_t err;
    uint8_t state;
    uint8_t kind;
    uint16_t core; /* the core it lives on (asserted by every use) */
    uint8_t tag;   /* the run tag of the code that attached the consumer */
    union {
        sn_then_fn then;
        sn_wrapped_fn wrapped;
        sn_done_fn done;
    } fn;
    void *arg;
    union {
        struct sn_future *out;
        uintptr_t index;
    } u;
};
_Static_assert(sizeof(struct sn_future) <= SN__SCHED_OBJ_SIZE, "futures fit the core pool");

struct when_all {
    struct sn_future *out;
    struct sn_result *results;
    unsigned remaining;
    unsigned n;
    unsigned failed_index; /* lowest failed input so far, n when none */
    int err;
};
_Static_assert(sizeof(struct when_all) <= SN__SCHED_OBJ_SIZE, "fits the core pool");

static void settle(struct sn__sched *s, struct sn_future *f, int err, uint64_t value);

_Static_assert(SN_MESH_MAX_CORES <= UINT16_MAX + 1, "a core id fits the future's core field");

static struct sn_future *fut_new(struct sn__sched *s)
{
    struct sn_future *f = sn__sched_obj(s);
    f->core = (uint16_t)s->id;
    f->state = ST_PENDING;
    f->kind = K_NONE; /* tag: set with the consumer (consume, link), read only after */
    f->err = 0;
    f->value = 0;
    return f;
}

static int norm_err(int err)
{
    if (err > 0)
        return -err;
    return err ? err : -ECANCELED;
}

/* A future of another core is a contract violation: its state is that core's alone. */
static inline void check_core(const struct sn__sched *s, const struct sn_future *f)
{
    assert(f->core == s->id && "a future used on a core it does not live on");
    (void)s;
    (void)f;
}

static struct sn_future *fut_ready(struct sn__sched *s, int err, uint64_t value)
{
    struct sn_future *f = fut_new(s);
    f->state = ST_READY;
    f->err = err;
    f->value = err ? 0 : value;
    return f;
}

/* Passes g's eventual result to out. g NULL (SN_SUCCESS) means success with 0. */
static void link(struct sn__sched *s, struct sn_future *g, struct sn_future *out)
{
    if (!g) {
        settle(s, out, 0, 0);
    } else if (g->state == ST_READY) {
        check_core(s, g);
        assert(g->kind == K_NONE);
        int err = g->err;
        uint64_t value = g->value;
        sn__sched_obj_put(s, g);
        settle(s, out, err, value);
    } else {
        assert(g->kind == K_NONE);
        /*
         * out's only producer was the continuation that returned g, so once g settles it, a
         * relay (out forwarding to a later future) does nothing but pass the result on, and
         * nothing else can reach it: g forwards to the end of the relay chain instead, and
         * the relays go back to the pool. Without this a loop that goes on by returning
         * sn_then(step(), itself) held one future per turn until it ended (and the pool grew
         * into cold memory on every turn: measured on the cross-core round trip,
         * docs/PERFORMANCE.md). Relays of another run tag stay (their settle belongs to
         * their group).
         */
        while (out->kind == K_FORWARD && out->tag == s->tag) {
            struct sn_future *next = out->u.out;
            assert(out->state == ST_PENDING);
            sn__sched_obj_put(s, out);
            out = next;
        }
        g->kind = K_FORWARD;
        g->tag = s->tag;
        g->u.out = out;
    }
}

static void when_all_record(struct sn__sched *s, struct when_all *w, unsigned i, int err,
                            uint64_t value)
{
    if (w->results)
        w->results[i] = (struct sn_result){.err = err, .value = value};
    if (err && i < w->failed_index) {
        w->failed_index = i;
        w->err = err;
    }
    if (--w->remaining)
        return;
    struct sn_future *out = w->out;
    int werr = w->err;
    unsigned n = w->n;
    sn__sched_obj_put(s, w);
    settle(s, out, werr, werr ? 0 : n);
}

/* Runs f's continuation; f is settled and has a consumer. Frees f first. */
static void run_continuation(struct sn__sched *s, struct sn_future *f)
{
    struct sn_future c = *f;
    sn__sched_obj_put(s, f);
    switch (c.kind) {
    case K_DONE: c.fn.done(c.arg, c.err, c.value); break;
    case K_IGNORE: break;
    case K_FORWARD: settle(s, c.u.out, c.err, c.value); break;
    case K_THEN:
        if (c.err)
            settle(s, c.u.out, c.err, 0);
        else
            link(s, c.fn.then(c.arg, c.value), c.u.out);
        break;
    case K_WRAPPED: link(s, c.fn.wrapped(c.arg, c.err, c.value), c.u.out); break;
    case K_WHEN_ALL: when_all_record(s, c.arg, (unsigned)c.u.index, c.err, c.value); break;
    default: assert(0 && "future without a consumer dispatched");
    }
}

static void continuation_task(struct sn_task *t)
{
    struct sn__sched *s = sn__tls_sched;
    uint8_t tag = s->tag;
    s->tag = ((struct sn_future *)t)->tag;
    s->depth++;
    run_continuation(s, (struct sn_future *)t);
    s->depth--;
    s->tag = tag;
}

/*
 * Runs the continuation inline while the nesting allows, else from the run queue of its
 * group; either way under the run tag of the code that attached it.
 */
__attribute__((noinline)) static void dispatch_other(struct sn__sched *s, struct sn_future *f);

static inline void dispatch(struct sn__sched *s, struct sn_future *f)
{
    /* The common case, attached and settled by the same code: nothing to switch. Inline in
     * its callers; everything else is out of line. */
    if (sn_likely(s->depth < SN_FUTURE_MAX_DEPTH && s->tag == f->tag)) {
        s->depth++;
        run_continuation(s, f);
        s->depth--;
    } else {
        dispatch_other(s, f);
    }
}

/* dispatch under another tag, or too deep. Inline only within its own group: another
 * group's continuation is queued there, so it is scheduled and charged as that group's work. */
static void dispatch_other(struct sn__sched *s, struct sn_future *f)
{
    if (s->depth < SN_FUTURE_MAX_DEPTH && !((s->tag ^ f->tag) & SN__TAG_GROUP)) {
        uint8_t tag = s->tag;
        s->tag = f->tag;
        s->depth++;
        run_continuation(s, f);
        s->depth--;
        s->tag = tag;
    } else {
        sn_task_init(&f->task, continuation_task);
        sn__sched_push(s, f->tag & SN__TAG_GROUP, &f->task);
    }
}

static void settle(struct sn__sched *s, struct sn_future *f, int err, uint64_t value)
{
    check_core(s, f);
    assert(f->state == ST_PENDING);
    f->state = ST_READY;
    f->err = err;
    f->value = err ? 0 : value;
    if (f->kind != K_NONE)
        dispatch(s, f);
}

/* Sets f's consumer; dispatches at once when f has already settled. */
static void consume(struct sn__sched *s, struct sn_future *f, uint8_t kind)
{
    check_core(s, f);
    assert(f->kind == K_NONE);
    f->kind = kind;
    f->tag = s->tag;
    if (f->state == ST_READY)
        dispatch(s, f);
}

struct sn_promise *sn_promise_new(struct sn_future **fut)
{
    struct sn__sched *s = sn__sched_here(__func__);
    *fut = fut_new(s);
    return (struct sn_promise *)*fut;
}

void sn_promise_set(struct sn_promise *p, uint64_t value)
{
    settle(sn__sched_here(__func__), (struct sn_future *)p, 0, value);
}

void sn_promise_fail(struct sn_promise *p, int err)
{
    settle(sn__sched_here(__func__), (struct sn_future *)p, norm_err(err), 0);
}

struct sn_future *sn_ready(uint64_t value)
{
    return fut_ready(sn__sched_here(__func__), 0, value);
}

struct sn_future *sn_failed(int err)
{
    return fut_ready(sn__sched_here(__func__), norm_err(err), 0);
}

struct sn_future *sn_then(struct sn_future *f, sn_then_fn fn, void *arg)
{
    struct sn__sched *s = sn__sched_here(__func__);
    if (!f)
        f = fut_ready(s, 0, 0); /* SN_SUCCESS */
    check_core(s, f);
    if (f->state == ST_READY && s->depth < SN_FUTURE_MAX_DEPTH) {
        /* Fast path: call fn now and hand back its future; no extra object. */
        if (f->err)
            return f;
        uint64_t value = f->value;
        sn__sched_obj_put(s, f);
        s->depth++;
        struct sn_future *g = fn(arg, value);
        s->depth--;
        return g ? g : fut_ready(s, 0, 0);
    }
    struct sn_future *out = fut_new(s);
    f->fn.then = fn;
    f->arg = arg;
    f->u.out = out;
    consume(s, f, K_THEN);
    return out;
}

struct sn_future *sn_then_wrapped(struct sn_future *f, sn_wrapped_fn fn, void *arg)
{
    struct sn__sched *s = sn__sched_here(__func__);
    if (!f)
        f = fut_ready(s, 0, 0); /* SN_SUCCESS */
    check_core(s, f);
    if (f->state == ST_READY && s->depth < SN_FUTURE_MAX_DEPTH) {
        int err = f->err;
        uint64_t value = f->value;
        sn__sched_obj_put(s, f);
        s->depth++;
        struct sn_future *g = fn(arg, err, value);
        s->depth--;
        return g ? g : fut_ready(s, 0, 0);
    }
    struct sn_future *out = fut_new(s);
    f->fn.wrapped = fn;
    f->arg = arg;
    f->u.out = out;
    consume(s, f, K_WRAPPED);
    return out;
}

void sn_done(struct sn_future *f, sn_done_fn fn, void *arg)
{
    struct sn__sched *s = sn__sched_here(__func__);
    if (!f)
        f = fut_ready(s, 0, 0); /* SN_SUCCESS */
    f->fn.done = fn;
    f->arg = arg;
    consume(s, f, K_DONE);
}

void sn_ignore(struct sn_future *f)
{
    struct sn__sched *s = sn__sched_here(__func__);
    if (f)
        consume(s, f, K_IGNORE);
}

struct sn_future *sn_when_all(struct sn_future *const *futs, unsigned n, struct sn_result *results)
{
    struct sn__sched *s = sn__sched_here(__func__);
    if (n == 0)
        return fut_ready(s, 0, 0);
    struct sn_future *out = fut_new(s);
    struct when_all *w = sn__sched_obj(s);
    *w = (struct when_all){
        .out = out, .results = results, .remaining = n, .n = n, .failed_index = n};
    for (unsigned i = 0; i < n; i++) {
        struct sn_future *f = futs[i];
        if (!f) { /* SN_SUCCESS */
            when_all_record(s, w, i, 0, 0);
            continue;
        }
        f->arg = w;
        f->u.index = i;
        consume(s, f, K_WHEN_ALL);
    }
    return out;
}

bool sn_future_available(const struct sn_future *f)
{
    return !f || f->state == ST_READY;
}

bool sn__future_take(struct sn_future *f, int *err, uint64_t *value)
{
    if (!f) { /* SN_SUCCESS */
        *err = 0;
        *value = 0;
        return true;
    }
    if (f->state != ST_READY || f->kind != K_NONE)
        return false;
    *err = f->err;
    *value = f->value;
    sn__sched_obj_put(sn__tls_sched, f);
    return true;
}

/* ---- waiter sets (core/sched.h) -------------------------------------------------------- */

struct sn__waiter {
    struct sn__waiter *next;
    struct sn_promise *promise;
};
_Static_assert(sizeof(struct sn__waiter) <= SN__SCHED_OBJ_SIZE, "fits the core pool");

struct sn_future *sn__waiters_add(struct sn__waiters *w)
{
    struct sn__sched *s = sn__sched_here(__func__);
    struct sn__waiter *k = sn__sched_obj(s);
    struct sn_future *f;
    k->next = NULL;
    k->promise = sn_promise_new(&f);
    if (w->last)
        w->last->next = k;
    else
        w->head = k;
    w->last = k;
    return f;
}

void sn__waiters_settle(struct sn__waiters *w, int err, uint64_t value)
{
    struct sn__sched *s = sn__sched_here(__func__);
    struct sn__waiter *k = w->head;
    w->head = w->last = NULL;
    while (k) {
        struct sn__waiter *next = k->next;
        struct sn_promise *p = k->promise;
        sn__sched_obj_put(s, k);
        if (err)
            sn_promise_fail(p, err);
        else
            sn_promise_set(p, value);
        k = next;
    }
}
