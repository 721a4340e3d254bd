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

#include "reactor/smp_internal.h"

#include <errno.h>
#include <stdlib.h>

#define SN__ALWAYS_INLINE __attribute__((always_inline))

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
    uint8_t tag; /* the caller's run tag */
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

/* The copy calls' reply handlers (reactor/smp_copy.c). */
void sn__copy_reply_ok(const struct sn_msg *msg, unsigned from);
void sn__copy_reply_err(const struct sn_msg *msg, unsigned from);

void sn__smp_send_reply(struct sn__core *c, unsigned to, void *token, bool copy, int err,
                        uint64_t value)
{
    struct sn_msg m = {
        .fn = copy ? (err ? sn__copy_reply_err : sn__copy_reply_ok) : (err ? reply_err : reply_ok),
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

void sn__call_unlink(struct sn__core *c, struct sn__call *k)
{
    sn_list_remove(&k->link);
    c->ncalls--;
}

void sn__call_link(struct sn__core *c, struct sn__call *k, struct sn_future **fut)
{
    k->promise = sn_promise_new(fut);
    sn_list_push_back(&c->calls, &k->link);
    c->ncalls++;
}

struct sn__call *sn__call_new(struct sn__core *c, struct sn_future **fut)
{
    struct sn__call *k = sn__sched_obj(&c->sched);
    k->kind = SN__CALL_PLAIN;
    k->sg = NULL;
    sn__call_link(c, k, fut);
    return k;
}

void sn__smp_call_fail(struct sn__core *c, struct sn__call *k, int err)
{
    struct sn_promise *p = k->promise;
    sn__call_unlink(c, k);
    sn__sched_obj_put(&c->sched, k);
    sn_promise_fail(p, err);
}

/*
 * A reply from core `from` arrived: the call it answers is done (its service-group slot, if
 * any, went back in capped_reply); returns the promise waiting for it.
 */
SN__ALWAYS_INLINE static inline struct sn_promise *call_answered(struct sn__call *k)
{
    struct sn__core *c = sn__core_self();
    struct sn_promise *p = k->promise;
    sn__count(&c->c.msgs_in, 1);
    sn__call_unlink(c, k);
    sn__sched_obj_put(&c->sched, k);
    return p;
}

/*
 * The reply of a call counted against a service group: its slot goes back (which may send a
 * request waiting for it and clears k->sg), then the reply runs its handler again as a plain
 * one. Out of line, so a plain reply pays one test and no register saves for it.
 */
__attribute__((noinline, cold)) static void capped_reply(const struct sn_msg *msg, unsigned from)
{
    sn__sg_release(sn__core_self(), sn__token_call(msg->token), from);
    msg->fn(msg, from);
}

static void reply_ok(const struct sn_msg *msg, unsigned from)
{
    struct sn__call *k = sn__token_call(msg->token);
    if (sn_unlikely(k->sg))
        capped_reply(msg, from);
    else
        sn_promise_set(call_answered(k), msg->value);
}

static void reply_err(const struct sn_msg *msg, unsigned from)
{
    struct sn__call *k = sn__token_call(msg->token);
    if (sn_unlikely(k->sg))
        capped_reply(msg, from);
    else
        sn_promise_fail(call_answered(k), (int)(int64_t)msg->value);
}

/*
 * The end of a run: nothing moves between cores any more, so no answer can come. Each call
 * fails with -ECANCELED. A plain record is freed at once; a copy call's block is kept until
 * teardown (sn__copy_orphan), because the target may still be reading its payload: the other
 * cores are running their own last continuations at the same time.
 */
void sn__smp_cancel_calls(struct sn__core *c)
{
    struct sn_list_node *n;
    /* First forget the service groups' slots and queues: failing a call runs user code. */
    for (n = sn_list_first(&c->calls); n; n = sn_list_next(&c->calls, n)) {
        struct sn__call *k = SN_CONTAINER_OF(n, struct sn__call, link);
        if (sn__call_sg(k))
            sn__sg_forget(c, k);
    }
    while ((n = sn_list_first(&c->calls))) {
        struct sn__call *k = SN_CONTAINER_OF(n, struct sn__call, link);
        struct sn_promise *p = k->promise;
        sn__call_unlink(c, k);
        if (k->kind == SN__CALL_COPY)
            sn__copy_orphan(c, k);
        else
            sn__sched_obj_put(&c->sched, k);
        sn__count(&c->c.cancelled, 1);
        sn_promise_fail(p, -ECANCELED);
    }
}

/* ---- requests on the target ------------------------------------------------------- */

/*
 * A request whose caller ran in a group other than the main one runs on the target as a
 * task of that group (so it is scheduled and charged as the group's work), not inline in the
 * drain: a copy of the message and the handler's body.
 */
struct grouped_req {
    struct sn_task task;
    sn__req_body body;
    struct sn_msg msg;
    unsigned from;
};
_Static_assert(sizeof(struct grouped_req) <= SN__SCHED_OBJ_SIZE, "fits the core pool");

static void grouped_run(struct sn_task *t)
{
    struct grouped_req r = *(struct grouped_req *)t;
    struct sn__core *c = sn__core_self();
    sn__sched_obj_put(&c->sched, t);
    r.body(c, &r.msg, r.from);
}

void sn__smp_defer(struct sn__core *c, const struct sn_msg *msg, unsigned from, sn__req_body body)
{
    unsigned gid = sn__token_group(msg->token);
    struct grouped_req *r = sn__sched_obj(&c->sched);
    sn_task_init(&r->task, grouped_run);
    r->body = body;
    r->msg = *msg;
    r->from = from;
    sn__sched_push(&c->sched, sn__sched_group_by_id(&c->sched, gid), &r->task);
}

void sn__smp_reply_later(void *arg, int err, uint64_t value)
{
    struct sn__core *c = sn__core_self();
    struct sn__reply_to r = *(struct sn__reply_to *)arg;
    sn__sched_obj_put(&c->sched, arg);
    sn__smp_send_reply(c, r.to, r.token, r.copy, err, value);
}

/* Inlined into its handler, so a request from the main group costs no extra call. */
SN__ALWAYS_INLINE static inline void req_future_run(struct sn__core *c, const struct sn_msg *msg,
                                                    unsigned from, bool tagged)
{
    sn_remote_fn fn = (sn_remote_fn)(uintptr_t)msg->value;
    void *token = msg->token;
    sn__count(&c->c.msgs_in, 1);
    struct sn_future *g;
    if (tagged) {
        uint8_t tag = c->sched.tag;
        c->sched.tag = sn__token_tag(tag, token); /* fn's work serves a capped call */
        g = fn(msg->arg);
        c->sched.tag = tag;
    } else {
        g = fn(msg->arg);
    }
    if (!g) { /* SN_SUCCESS: apart, so no register is kept to stand for its zeros */
        sn__smp_send_reply(c, from, token, false, 0, 0);
        return;
    }
    int err = 0;
    uint64_t value = 0;
    if (sn__future_take(g, &err, &value)) {
        sn__smp_send_reply(c, from, token, false, err, value); /* at once: no reply record */
        return;
    }
    struct sn__reply_to *r = sn__sched_obj(&c->sched);
    r->token = token;
    r->to = from;
    r->copy = false;
    sn_done(g, sn__smp_reply_later, r);
}

static void req_future_body(struct sn__core *c, const struct sn_msg *msg, unsigned from)
{
    req_future_run(c, msg, from, true);
}

/* A request with token bits (a group, or the serving bit): out of line. */
__attribute__((noinline)) static void req_future_tagged(struct sn__core *c,
                                                        const struct sn_msg *msg, unsigned from)
{
    if (!sn__smp_defer_to_group(c, msg, from, req_future_body))
        req_future_run(c, msg, from, true);
}

static void req_future(const struct sn_msg *msg, unsigned from)
{
    struct sn__core *c = sn__core_self();
    if (sn_likely(sn__token_plain(msg->token)))
        req_future_run(c, msg, from, false); /* the tag stays as it is: no switch */
    else
        req_future_tagged(c, msg, from);
}

/* Inlined into its handler, so a request from the main group costs no extra call. */
SN__ALWAYS_INLINE static inline void req_call_run(struct sn__core *c, const struct sn_msg *msg,
                                                  unsigned from, bool tagged)
{
    sn_call_fn fn = (sn_call_fn)(uintptr_t)msg->value;
    uint64_t value = 0;
    int err;
    sn__count(&c->c.msgs_in, 1);
    if (tagged) {
        uint8_t tag = c->sched.tag;
        c->sched.tag = sn__token_tag(tag, msg->token);
        err = fn(msg->arg, &value);
        c->sched.tag = tag;
    } else {
        err = fn(msg->arg, &value);
    }
    sn__smp_send_reply(c, from, msg->token, false, err, value);
}

static void req_call_body(struct sn__core *c, const struct sn_msg *msg, unsigned from)
{
    req_call_run(c, msg, from, true);
}

__attribute__((noinline)) static void req_call_tagged(struct sn__core *c, const struct sn_msg *msg,
                                                      unsigned from)
{
    if (!sn__smp_defer_to_group(c, msg, from, req_call_body))
        req_call_run(c, msg, from, true);
}

static void req_call(const struct sn_msg *msg, unsigned from)
{
    struct sn__core *c = sn__core_self();
    if (sn_likely(sn__token_plain(msg->token)))
        req_call_run(c, msg, from, false);
    else
        req_call_tagged(c, msg, from);
}

/* sn_send's handler body with token bits (a group, or the serving bit); a plain request's
 * is written out in req_send, without the tag switch. */
static void req_send_body(struct sn__core *c, const struct sn_msg *msg, unsigned from)
{
    (void)from;
    void (*fn)(void *) = (void (*)(void *))(uintptr_t)msg->value;
    sn__count(&c->c.msgs_in, 1);
    uint8_t tag = c->sched.tag;
    c->sched.tag = sn__token_tag(tag, msg->token);
    fn(msg->arg);
    c->sched.tag = tag;
}

static void req_send(const struct sn_msg *msg, unsigned from)
{
    struct sn__core *c = sn__core_self();
    if (sn_likely(sn__token_plain(msg->token))) {
        void (*fn)(void *) = (void (*)(void *))(uintptr_t)msg->value;
        sn__count(&c->c.msgs_in, 1);
        fn(msg->arg); /* no token bits: the tag stays as it is */
    } else if (!sn__smp_defer_to_group(c, msg, from, req_send_body)) {
        req_send_body(c, msg, from);
    }
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
    struct sn__sched *s = sn__tls_sched;
    uint8_t tag = s->tag;
    s->tag = l.tag;
    sn__sched_obj_put(s, t);
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
    s->tag = tag;
}

static struct local_call *local_new(struct sn__core *c, int kind, void *arg, struct sn_future **fut)
{
    struct local_call *l = sn__sched_obj(&c->sched);
    sn_task_init(&l->task, local_run);
    l->kind = kind;
    l->arg = arg;
    l->promise = fut ? sn_promise_new(fut) : NULL;
    l->tag = c->sched.tag;
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
int sn__smp_check_target(struct sn__core *c, unsigned core, bool force)
{
    if (core >= c->rt->ncores)
        return -EINVAL;
    if (c->finishing || (!force && sn__core_refuses(c)))
        return -ECANCELED;
    return 0;
}

SN__ALWAYS_INLINE static inline struct sn_future *remote(struct sn__core *c, unsigned core,
                                                         sn_msg_fn handler, uint64_t fnbits,
                                                         void *arg, int local_kind, bool force,
                                                         struct sn_service_group *sg)
{
    int rc = sn__smp_check_target(c, core, force);
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
    struct sn__call *k = sn__call_new(c, &f);
    struct sn_msg m = {.fn = handler, .arg = arg, .token = k, .value = fnbits};
    m.token = (void *)((uintptr_t)k | sn__token_bits(c->sched.tag));
    if (sg && (rc = sn__sg_admit(c, sg, core, k, &m)) != 0) {
        if (rc < 0)
            sn__smp_call_fail(c, k, rc);
        return f; /* failed, or waits for room: sent by the reply that frees a slot */
    }
    rc = sn__smp_send_msg(c, core, &m);
    if (rc < 0) {
        if (k->sg)
            sn__sg_release(c, k, core);
        sn__smp_call_fail(c, k, rc); /* f has no consumer yet: it just holds the error */
    }
    return f;
}

struct sn_future *sn__submit(struct sn__core *c, unsigned core, sn_remote_fn fn, void *arg,
                             bool force)
{
    return remote(c, core, req_future, (uint64_t)(uintptr_t)fn, arg, LOCAL_REMOTE, force, NULL);
}

struct sn_future *sn_submit_to(unsigned core, sn_remote_fn fn, void *arg)
{
    struct sn__core *c = sn__core_here(__func__);
    return remote(c, core, req_future, (uint64_t)(uintptr_t)fn, arg, LOCAL_REMOTE, false, NULL);
}

struct sn_future *sn_call_on(unsigned core, sn_call_fn fn, void *arg)
{
    struct sn__core *c = sn__core_here(__func__);
    return remote(c, core, req_call, (uint64_t)(uintptr_t)fn, arg, LOCAL_CALL, false, NULL);
}

struct sn_future *sn_submit_to_via(struct sn_service_group *g, unsigned core, sn_remote_fn fn,
                                   void *arg)
{
    struct sn__core *c = sn__core_here(__func__);
    return remote(c, core, req_future, (uint64_t)(uintptr_t)fn, arg, LOCAL_REMOTE, false, g);
}

struct sn_future *sn_call_on_via(struct sn_service_group *g, unsigned core, sn_call_fn fn,
                                 void *arg)
{
    struct sn__core *c = sn__core_here(__func__);
    return remote(c, core, req_call, (uint64_t)(uintptr_t)fn, arg, LOCAL_CALL, false, g);
}

int sn_send(unsigned core, void (*fn)(void *arg), void *arg)
{
    struct sn__core *c = sn__core_self();
    if (!c)
        return -EPERM;
    int rc = sn__smp_check_target(c, core, false);
    if (rc)
        return rc;
    if (core == c->id) {
        struct local_call *l = local_new(c, LOCAL_SEND, arg, NULL);
        l->fn.send = fn;
        return 0;
    }
    struct sn_msg m = {.fn = req_send, .arg = arg, .value = (uint64_t)(uintptr_t)fn};
    m.token = (void *)sn__token_bits(c->sched.tag);
    return sn__smp_send_msg(c, core, &m);
}
