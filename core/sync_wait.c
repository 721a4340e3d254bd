/*
 * Wait lists, wake batches, the per-core registry of lists with waiters and the owner
 * checks shared by the synchronisation primitives (see core/sync_internal.h).
 */
#include "core/sync_internal.h"

#include <stdio.h>
#include <stdlib.h>

void sn__wait_list_init(struct sn__wait_list *l, sn__after_timeout_fn after_timeout)
{
    *l = (struct sn__wait_list){.after_timeout = after_timeout};
    sn_list_init(&l->waits);
    sn_list_node_init(&l->reg);
}

static void list_append(struct sn__sched *s, struct sn__wait_list *l, struct sn__sync_wait *w)
{
    sn_list_push_back(&l->waits, &w->link);
    if (l->len++ == 0)
        sn_list_push_back(&s->sync_waiting, &l->reg);
}

static void list_unlink(struct sn__wait_list *l, struct sn__sync_wait *w)
{
    sn_list_remove(&w->link);
    if (--l->len == 0)
        sn_list_remove(&l->reg);
}

/* A wait's deadline passed: it fails with -ETIMEDOUT; what it held back may go on. */
static void timeout_fire(void *arg)
{
    struct sn__wait_timeout *t = arg;
    struct sn__sync_wait *w = t->wait;
    struct sn__wait_list *l = w->list;
    struct sn__sched *s = sn__tls_sched;
    struct sn__wake b;

    sn__wake_init(&b);
    sn__wait_take(s, w, -ETIMEDOUT, 0, &b);
    if (l->after_timeout)
        l->after_timeout(l, &b);
    sn__wake_settle(s, &b);
}

/* Arms w's deadline; 0 or the timer's error (w is not queued then). */
static int arm_timeout(struct sn__sched *s, struct sn__sync_wait *w, uint64_t timeout_ns)
{
    struct sn__wait_timeout *t = sn__sched_obj(s);
    t->wait = w;
    sn_timer_init(&t->timer, timeout_fire, t);
    int rc = sn_timer_arm(&t->timer, timeout_ns);
    if (rc < 0) {
        sn__sched_obj_put(s, t);
        return rc;
    }
    w->timeout = t;
    return 0;
}

struct sn_future *sn__wait_add(struct sn__sched *s, struct sn__wait_list *l, uint64_t data,
                               uint64_t timeout_ns)
{
    if (s->stopping)
        return sn_failed(-ECANCELED);
    if (timeout_ns == 0)
        return sn_failed(-ETIMEDOUT);
    struct sn_future *f;
    struct sn__sync_wait *w = sn__sched_obj(s);
    *w = (struct sn__sync_wait){.list = l, .data = data};
    w->promise = sn_promise_new(&f);
    if (timeout_ns != SN__NO_TIMEOUT) {
        int rc = arm_timeout(s, w, timeout_ns);
        if (rc < 0) {
            struct sn_promise *p = w->promise;
            sn__sched_obj_put(s, w);
            sn_promise_fail(p, rc);
            return f;
        }
    }
    list_append(s, l, w);
    return f;
}

void sn__wait_take(struct sn__sched *s, struct sn__sync_wait *w, int err, uint64_t value,
                   struct sn__wake *b)
{
    list_unlink(w->list, w);
    w->list = NULL;
    if (w->timeout) {
        sn_timer_cancel(&w->timeout->timer); /* 0 when it is the one firing now */
        sn__sched_obj_put(s, w->timeout);
        w->timeout = NULL;
    }
    w->err = err;
    w->value = value;
    sn_list_push_back(&b->waits, &w->link);
}

void sn__wait_take_all(struct sn__sched *s, struct sn__wait_list *l, int err, struct sn__wake *b)
{
    struct sn__sync_wait *w;
    while ((w = sn__wait_first(l)))
        sn__wait_take(s, w, err, 0, b);
}

/* Moves every node of `src` to the back of `dst`, in order. */
static void splice_back(struct sn_list *dst, struct sn_list *src)
{
    struct sn_list_node *n;
    while ((n = sn_list_pop_front(src)))
        sn_list_push_back(dst, n);
}

/*
 * Wakes taken but not settled yet wait on s->sync_pending, oldest first; s->sync_settling
 * says that a settle loop runs further up this core's stack.
 */
void sn__wake_settle(struct sn__sched *s, struct sn__wake *b)
{
    if (sn_list_empty(&b->waits))
        return;
    splice_back(&s->sync_pending, &b->waits);
    if (s->sync_settling)
        return; /* the loop below, further up the stack, settles them in turn */
    s->sync_settling = true;
    struct sn_list_node *n;
    while ((n = sn_list_pop_front(&s->sync_pending))) {
        struct sn__sync_wait *w = SN_CONTAINER_OF(n, struct sn__sync_wait, link);
        struct sn_promise *p = w->promise;
        int err = w->err;
        uint64_t value = w->value;
        sn__sched_obj_put(s, w);
        if (err)
            sn_promise_fail(p, err);
        else
            sn_promise_set(p, value);
    }
    s->sync_settling = false;
}

void sn__sync_cancel_all(struct sn__sched *s)
{
    struct sn__wake b;
    struct sn_list_node *n;
    sn__wake_init(&b);
    while ((n = sn_list_first(&s->sync_waiting)))
        sn__wait_take_all(s, SN_CONTAINER_OF(n, struct sn__wait_list, reg), -ECANCELED, &b);
    sn__wake_settle(s, &b);
}

int sn__sync_check(unsigned owner)
{
    return sn_core_id() == owner ? 0 : -EXDEV;
}

void sn__sync_check_destroy(unsigned owner, const char *fn)
{
    unsigned me = sn_core_id();
    if (sn_likely(me == owner))
        return;
    if (me == SN_NO_CORE)
        fprintf(stderr, "libsn: %s called off a reactor core (the object is core %u's)\n", fn,
                owner);
    else
        fprintf(stderr, "libsn: %s called on core %u (the object is core %u's)\n", fn, me, owner);
    abort();
}
