/*
 * Service groups: caps on the cross-core requests in flight per group, source core and
 * destination core (contract in include/sn/smp.h).
 *
 * Each source core has its own row of the group, allocated by that core on first use, so
 * the counters and queues need no synchronisation: a slot (source, destination) counts the
 * requests in flight and queues, oldest first, those that wait for room. A reply from the
 * destination gives back a slot (reactor/smp.c calls sn__sg_release from its reply handler)
 * and sends the oldest waiter at once, from inside the drain, like any reply-driven send.
 *
 * Why capped calls cannot deadlock (the one rule): the work of a capped request is never
 * capped. A capped request is marked (SN__TOKEN_SERVING); its handler runs with
 * SN__TAG_SERVING in the run tag, which everything it starts inherits (continuations,
 * sn_later, timers, fibers) and which every request it makes carries to the next core. Code
 * with that tag is exempt from caps, as replies are. So a slot is held by a request whose
 * completion needs only exempt requests and replies, none of which ever waits for a slot:
 * every slot is given back in finite time as long as the remote functions themselves
 * finish, and a cycle of waits would need a capped wait inside some capped request's work,
 * which the rule excludes. Top-level work (not serving a capped request) may wait; plain
 * uncapped requests from top-level work do not mark their handlers, since nobody waits for
 * them through a slot.
 */
#include <sn/smp.h>

#include "reactor/smp_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A request waiting for room: a copy of its message (the call record is its token). */
struct sn__sg_wait {
    struct sn__sg_wait *next;
    struct sn_msg msg;
};
_Static_assert(sizeof(struct sn__sg_wait) <= SN__SCHED_OBJ_SIZE, "fits the core pool");

struct slot {
    uint32_t inflight;
    struct sn__sg_wait *head, *tail;
};

/* One source core's part of a group: written by that core only, counters read by anyone. */
struct row {
    unsigned n; /* slots: the core count of the run that made it */
    _Atomic uint64_t inflight, waiting, waited, exempt;
    struct slot slot[];
};

struct sn_service_group {
    char name[32];
    unsigned cap;
    struct row *_Atomic rows[SN_MESH_MAX_CORES];
};

int sn_service_group_create(const struct sn_service_group_config *cfg,
                            struct sn_service_group **out)
{
    if (!cfg || !out || cfg->max_inflight == 0)
        return -EINVAL;
    struct sn_service_group *g = calloc(1, sizeof *g);
    if (!g)
        return -ENOMEM;
    const char *name = cfg->name ? cfg->name : "service";
    strncpy(g->name, name, sizeof g->name - 1);
    g->cap = cfg->max_inflight;
    *out = g;
    return 0;
}

void sn_service_group_destroy(struct sn_service_group *g)
{
    if (!g)
        return;
    for (unsigned i = 0; i < SN_MESH_MAX_CORES; i++)
        free(atomic_load_explicit(&g->rows[i], memory_order_acquire));
    free(g);
}

/* Core c's row of g, made (or grown for a run with more cores) on first use; NULL: -ENOMEM. */
static struct row *row_of(struct sn__core *c, struct sn_service_group *g)
{
    struct row *r = atomic_load_explicit(&g->rows[c->id], memory_order_relaxed);
    unsigned n = c->rt->ncores;
    if (sn_likely(r && r->n >= n))
        return r;
    struct row *bigger = calloc(1, sizeof *r + n * sizeof r->slot[0]);
    if (!bigger)
        return NULL;
    bigger->n = n;
    if (r) {
        /* Only between runs: nothing is in flight or waiting then. */
        atomic_store_explicit(&bigger->waited, atomic_load(&r->waited), memory_order_relaxed);
        atomic_store_explicit(&bigger->exempt, atomic_load(&r->exempt), memory_order_relaxed);
    }
    atomic_store_explicit(&g->rows[c->id], bigger, memory_order_release);
    free(r);
    return bigger;
}

static inline void gauge_add(_Atomic uint64_t *v, int64_t d)
{
    sn__count(v, (uint64_t)d);
}

int sn__sg_admit(struct sn__core *c, struct sn_service_group *g, unsigned to, struct sn__call *k,
                 struct sn_msg *msg)
{
    struct row *r = row_of(c, g);
    if (!r)
        return -ENOMEM;
    if (c->sched.tag & SN__TAG_SERVING) {
        sn__count(&r->exempt, 1);
        return 0;
    }
    struct slot *s = &r->slot[to];
    k->sg = g;
    msg->token = (void *)((uintptr_t)msg->token | SN__TOKEN_SERVING);
    if (s->inflight < g->cap && !s->head) {
        s->inflight++;
        gauge_add(&r->inflight, 1);
        return 0;
    }
    struct sn__sg_wait *w = sn__sched_obj(&c->sched);
    w->next = NULL;
    w->msg = *msg;
    if (s->tail)
        s->tail->next = w;
    else
        s->head = w;
    s->tail = w;
    gauge_add(&r->waiting, 1);
    sn__count(&r->waited, 1);
    return 1;
}

/* Takes the oldest waiter of slot s off its queue. */
static struct sn__sg_wait *pop_waiter(struct slot *s)
{
    struct sn__sg_wait *w = s->head;
    s->head = w->next;
    if (!s->head)
        s->tail = NULL;
    return w;
}

void sn__sg_release(struct sn__core *c, struct sn__call *k, unsigned to)
{
    struct sn_service_group *g = k->sg;
    struct row *r = atomic_load_explicit(&g->rows[c->id], memory_order_relaxed);
    struct slot *s = &r->slot[to];

    k->sg = NULL;
    s->inflight--;
    gauge_add(&r->inflight, -1);
    while (s->head && s->inflight < g->cap) {
        struct sn__sg_wait *w = pop_waiter(s);
        struct sn_msg m = w->msg;
        struct sn__call *next = sn__token_call(m.token);
        sn__sched_obj_put(&c->sched, w);
        gauge_add(&r->waiting, -1);
        s->inflight++;
        gauge_add(&r->inflight, 1);
        int rc = sn__smp_send_msg(c, to, &m);
        if (rc < 0) {
            /* Its continuation may make new requests through g: the slot is consistent. */
            s->inflight--;
            gauge_add(&r->inflight, -1);
            next->sg = NULL;
            sn__smp_call_fail(c, next, rc);
        }
    }
}

void sn__sg_forget(struct sn__core *c, struct sn__call *k)
{
    struct row *r = atomic_load_explicit(&k->sg->rows[c->id], memory_order_relaxed);
    k->sg = NULL;
    for (unsigned to = 0; to < r->n; to++) {
        struct slot *s = &r->slot[to];
        while (s->head)
            sn__sched_obj_put(&c->sched, pop_waiter(s));
        s->inflight = 0;
    }
    atomic_store_explicit(&r->inflight, 0, memory_order_relaxed);
    atomic_store_explicit(&r->waiting, 0, memory_order_relaxed);
}

int sn_service_group_stats(const struct sn_service_group *g, unsigned core,
                           struct sn_service_group_stats *out)
{
    if (!g || !out || core >= SN_MESH_MAX_CORES)
        return -EINVAL;
    *out = (struct sn_service_group_stats){0};
    struct row *r =
        atomic_load_explicit(&((struct sn_service_group *)g)->rows[core], memory_order_acquire);
    if (!r)
        return 0;
    out->inflight = atomic_load_explicit(&r->inflight, memory_order_relaxed);
    out->waiting = atomic_load_explicit(&r->waiting, memory_order_relaxed);
    out->waited = atomic_load_explicit(&r->waited, memory_order_relaxed);
    out->exempt = atomic_load_explicit(&r->exempt, memory_order_relaxed);
    return 0;
}
