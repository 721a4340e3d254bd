/*
 * Cross-core calls over the mesh (contract in include/sn/smp.h).
 *
 * The path of one sn_submit_to(B, fn, arg) from core A:
 *   A: takes a call record and a promise from its pool, links the record into its list of
 *      calls waiting for a reply, and queues {req_future, arg, token = record, value = fn}
 *      for B; the loop's flush publishes it (and wakes B if B sleeps).
 *   B: the drain runs req_future: g = fn(arg). When g has settled, the reply {reply_ok or
 *      reply_err, token, value} goes back to A at once; otherwise a pooled reply record
 *      waits on g and sends the reply when it settles.
 *   A: the drain runs reply_ok/err, which unlinks the record and settles the promise; the
 *      caller's continuation runs inline (bounded depth) or from the run queue.
 */
#include <sn/smp.h>

#include "reactor/core.h"

#include <errno.h>
#include <stdlib.h>

/* Waiting for a reply on the calling core. The token of the request is its address. */
struct sn__call {
    struct sn_list_node link; /* in the core's calls */
    struct sn_promise *promise;
};

/* On the target: where the reply of a remote future goes. */
struct reply_to {
    void *token;
    unsigned to;
};

/* A reply that met a full overflow (-ENOBUFS), retried each turn. */
struct sn__deferred {
    struct sn__deferred *next;
    unsigned to;
    struct sn_msg msg;
};
_Static_assert(sizeof(struct sn__deferred) <= SN__SCHED_OBJ_SIZE, "fits the core pool");

/* A call to the own core, run from the run queue. */
struct local_call {
    struct sn_task task;
    union {
        sn_remote_fn remote;
        sn_call_fn call;
        void (*send)(void *);
    } fn;
    void *arg;
    struct sn_promise *promise; /* NULL for sn_send */
    int kind;
};
_Static_assert(sizeof(struct local_call) <= SN__SCHED_OBJ_SIZE, "fits the core pool");

enum { LOCAL_REMOTE, LOCAL_CALL, LOCAL_SEND };

int sn__smp_send_msg(struct sn__core *c, unsigned to, const struct sn_msg *msg)
{
    int rc = sn_mesh_send(c->mesh, c->id, to, msg);
    if (rc == 0)
        sn__count(&c->c.msgs_out, 1);
    return rc;
}

/* ---- replies ---------------------------------------------------------------------- */

static void reply_ok(const struct sn_msg *msg, unsigned from);
static void reply_err(const struct sn_msg *msg, unsigned from);

static void send_reply(struct sn__core *c, unsigned to, void *token, int err, uint64_t value)
{
    struct sn_msg m = {
        .fn = err ? reply_err : reply_ok,
        .token = token,
        .value = err ? (uint64_t)(int64_t)err : value,
    };
    if (c->finishing)
        return; /* the caller has already failed the call with -ECANCELED */
    if (sn_likely(!c->deferred_head) && sn__smp_send_msg(c, to, &m) == 0)
        return;
    /* Keep order behind earlier deferred replies; a reply is never dropped while running. */
    struct sn__deferred *d = sn__sched_obj(&c->sched);
    d->next = NULL;
    d->to = to;
    d->msg = m;
    *c->deferred_tail = d;
    c->deferred_tail = &d->next;
}

bool sn__smp_retry_deferred(struct sn__core *c)
{
    struct sn__deferred *d;
    while ((d = c->deferred_head)) {
        if (sn__smp_send_msg(c, d->to, &d->msg) < 0)
            return true;
        c->deferred_head = d->next;
        if (!c->deferred_head)
            c->deferred_tail = &c->deferred_head;
        sn__sched_obj_put(&c->sched, d);
    }
    return false;
}

void sn__smp_drop_deferred(struct sn__core *c)
{
    struct sn__deferred *d;
    while ((d = c->deferred_head)) {
        c->deferred_head = d->next;
        sn__sched_obj_put(&c->sched, d);
    }
    c->deferred_tail = &c->deferred_head;
}

static void call_unlink(struct sn__core *c, struct sn__call *k)
{
    sn_list_remove(&k->link);
    c->ncalls--;
}

static struct sn__call *call_new(struct sn__core *c, struct sn_future **fut)
{
    struct sn__call *k = sn__sched_obj(&c->sched);
    k->promise = sn_promise_new(fut);
    sn_list_push_back(&c->calls, &k->link);
    c->ncalls++;
    return k;
}

/* A reply arrived: the call it answers is done; returns the promise waiting for it. */
static struct sn_promise *call_answered(const struct sn_msg *msg)
{
    struct sn__core *c = sn__core_self();
    struct sn__call *k = msg->token;
    struct sn_promise *p = k->promise;
    sn__count(&c->c.msgs_in, 1);
    call_unlink(c, k);
    sn__sched_obj_put(&c->sched, k);
    return p;
}

static void reply_ok(const struct sn_msg *msg, unsigned from)
{
    (void)from;
    sn_promise_set(call_answered(msg), msg->value);
}

static void reply_err(const struct sn_msg *msg, unsigned from)
{
    (void)from;
    sn_promise_fail(call_answered(msg), (int)(int64_t)msg->value);
}

void sn__smp_cancel_calls(struct sn__core *c)
{
    struct sn_list_node *n;
    while ((n = sn_list_first(&c->calls))) {
        struct sn__call *k = SN_CONTAINER_OF(n, struct sn__call, link);
        struct sn_promise *p = k->promise;
        call_unlink(c, k);
        sn__sched_obj_put(&c->sched, k);
        sn__count(&c->c.cancelled, 1);
        sn_promise_fail(p, -ECANCELED);
    }
}

/* ---- requests on the target ------------------------------------------------------- */

static void reply_later(void *arg, int err, uint64_t value)
{
    struct sn__core *c = sn__core_self();
    struct reply_to r = *(struct reply_to *)arg;
    sn__sched_obj_put(&c->sched, arg);
    send_reply(c, r.to, r.token, err, value);
}

static void req_future(const struct sn_msg *msg, unsigned from)
{
    struct sn__core *c = sn__core_self();
    sn_remote_fn fn = (sn_remote_fn)(uintptr_t)msg->value;
    void *token = msg->token;
    sn__count(&c->c.msgs_in, 1);
    struct sn_future *g = fn(msg->arg);
    int err = 0;
    uint64_t value = 0;
    if (!g || sn__future_take(g, &err, &value)) {
        send_reply(c, from, token, err, value); /* answered at once: no reply record */
        return;
    }
    struct reply_to *r = sn__sched_obj(&c->sched);
    r->token = token;
    r->to = from;
    sn_done(g, reply_later, r);
}

static void req_call(const struct sn_msg *msg, unsigned from)
{
    struct sn__core *c = sn__core_self();
    sn_call_fn fn = (sn_call_fn)(uintptr_t)msg->value;
    uint64_t value = 0;
    sn__count(&c->c.msgs_in, 1);
    int err = fn(msg->arg, &value);
    send_reply(c, from, msg->token, err, value);
}

static void req_send(const struct sn_msg *msg, unsigned from)
{
    (void)from;
    struct sn__core *c = sn__core_self();
    void (*fn)(void *) = (void (*)(void *))(uintptr_t)msg->value;
    sn__count(&c->c.msgs_in, 1);
    fn(msg->arg);
}

/* ---- the own core ----------------------------------------------------------------- */

static void local_done(void *arg, int err, uint64_t value)
{
    if (err)
        sn_promise_fail(arg, err);
    else
        sn_promise_set(arg, value);
}

static void local_run(struct sn_task *t)
{
    struct local_call l = *(struct local_call *)t;
    sn__sched_obj_put(sn__tls_sched, t);
    switch (l.kind) {
    case LOCAL_REMOTE: {
        struct sn_future *g = l.fn.remote(l.arg);
        if (g)
            sn_done(g, local_done, l.promise);
        else
            sn_promise_set(l.promise, 0);
        break;
    }
    case LOCAL_CALL: {
        uint64_t value = 0;
        int err = l.fn.call(l.arg, &value);
        local_done(l.promise, err, value);
        break;
    }
    default: l.fn.send(l.arg); break;
    }
}

static struct local_call *local_new(struct sn__core *c, int kind, void *arg,
                                    struct sn_future **fut)
{
    struct local_call *l = sn__sched_obj(&c->sched);
    sn_task_init(&l->task, local_run);
    l->kind = kind;
    l->arg = arg;
    l->promise = fut ? sn_promise_new(fut) : NULL;
    sn_schedule(&l->task);
    return l;
}

/* ---- entry points ----------------------------------------------------------------- */

/*
 * Checks the common preconditions; 0 or the error to fail with. `force` (library-internal
 * calls such as sn_sharded_stop) still goes through while the cores are stopping: they keep
 * handling messages until the shutdown check finds none in flight. Only the final phase,
 * when nobody drains any more, refuses it.
 */
static int check_target(struct sn__core *c, unsigned core, bool force)
{
    if (core >= c->rt->ncores)
        return -EINVAL;
    if (c->finishing || (!force && sn__core_refuses(c)))
        return -ECANCELED;
    return 0;
}

static struct sn_future *remote(struct sn__core *c, unsigned core, sn_msg_fn handler,
                                uint64_t fnbits, void *arg, int local_kind, bool force)
{
    int rc = check_target(c, core, force);
    if (rc)
        return sn_failed(rc);
    struct sn_future *f;
    if (core == c->id) {
        struct local_call *l = local_new(c, local_kind, arg, &f);
        if (local_kind == LOCAL_REMOTE)
            l->fn.remote = (sn_remote_fn)(uintptr_t)fnbits;
        else
            l->fn.call = (sn_call_fn)(uintptr_t)fnbits;
        return f;
    }
    struct sn__call *k = call_new(c, &f);
    struct sn_msg m = {.fn = handler, .arg = arg, .token = k, .value = fnbits};
    rc = sn__smp_send_msg(c, core, &m);
    if (rc < 0) {
        struct sn_promise *p = k->promise;
        call_unlink(c, k);
        sn__sched_obj_put(&c->sched, k);
        sn_promise_fail(p, rc); /* f has no consumer yet: it just holds the error */
    }
    return f;
}

struct sn_future *sn_submit_to(unsigned core, sn_remote_fn fn, void *arg)
{
    struct sn__core *c = sn__core_here(__func__);
    return remote(c, core, req_future, (uint64_t)(uintptr_t)fn, arg, LOCAL_REMOTE, false);
}

struct sn_future *sn_call_on(unsigned core, sn_call_fn fn, void *arg)
{
    struct sn__core *c = sn__core_here(__func__);
    return remote(c, core, req_call, (uint64_t)(uintptr_t)fn, arg, LOCAL_CALL, false);
}

int sn_send(unsigned core, void (*fn)(void *arg), void *arg)
{
    struct sn__core *c = sn__core_self();
    if (!c)
        return -EPERM;
    int rc = check_target(c, core, false);
    if (rc)
        return rc;
    if (core == c->id) {
        struct local_call *l = local_new(c, LOCAL_SEND, arg, NULL);
        l->fn.send = fn;
        return 0;
    }
    struct sn_msg m = {.fn = req_send, .arg = arg, .value = (uint64_t)(uintptr_t)fn};
    return sn__smp_send_msg(c, core, &m);
}

/* ---- all cores -------------------------------------------------------------------- */

struct fold {
    struct sn_promise *promise;
    sn_reduce_fn reduce;
    void *reduce_arg;
    uint64_t acc;
    unsigned remaining;
    int err;
};
_Static_assert(sizeof(struct fold) <= SN__SCHED_OBJ_SIZE, "fits the core pool");

static void fold_one(void *arg, int err, uint64_t value)
{
    struct fold *f = arg;
    if (err) {
        if (!f->err)
            f->err = err;
    } else if (f->reduce) {
        f->acc = f->reduce(f->reduce_arg, f->acc, value);
    }
    if (--f->remaining)
        return;
    struct fold done = *f;
    sn__sched_obj_put(sn__tls_sched, f);
    if (done.err)
        sn_promise_fail(done.promise, done.err);
    else
        sn_promise_set(done.promise, done.acc);
}

static uint64_t count_reduce(void *arg, uint64_t acc, uint64_t value)
{
    (void)arg, (void)value;
    return acc + 1;
}

uint64_t sn_reduce_sum(void *arg, uint64_t acc, uint64_t value)
{
    (void)arg;
    return acc + value;
}

struct sn_future *sn__map_reduce(sn_remote_fn fn, void *arg, uint64_t init,
                                 sn_reduce_fn reduce, void *reduce_arg, bool force)
{
    struct sn__core *c = sn__core_here(__func__);
    struct sn_future *out;
    struct fold *f = sn__sched_obj(&c->sched);
    *f = (struct fold){.reduce = reduce, .reduce_arg = reduce_arg, .acc = init,
                       .remaining = c->rt->ncores};
    f->promise = sn_promise_new(&out);
    for (unsigned i = 0; i < c->rt->ncores; i++)
        sn_done(remote(c, i, req_future, (uint64_t)(uintptr_t)fn, arg, LOCAL_REMOTE, force),
                fold_one, f);
    return out;
}

struct sn_future *sn_map_reduce(sn_remote_fn fn, void *arg, uint64_t init,
                                sn_reduce_fn reduce, void *reduce_arg)
{
    sn__core_here(__func__);
    return sn__map_reduce(fn, arg, init, reduce, reduce_arg, false);
}

uint64_t sn__reduce_count(void *arg, uint64_t acc, uint64_t value)
{
    return count_reduce(arg, acc, value);
}

struct sn_future *sn_invoke_on_all(sn_remote_fn fn, void *arg)
{
    sn__core_here(__func__);
    return sn_map_reduce(fn, arg, 0, count_reduce, NULL);
}
