/*
 * Bounded queue of 64-bit items on one core (include/sn/sync.h): a ring of `cap` slots and
 * two wait lists. Pushes wait only while the ring is full and pops only while it is empty,
 * so at most one of the lists has waiters at a time; a push meeting a waiting pop hands the
 * item over directly, and a pop that frees a slot moves the oldest waiting push in.
 */
#include "core/sync_internal.h"

#include <stdlib.h>

struct sn_queue {
    struct sn__wait_list pushers; /* while full; each waiter's data is its item */
    struct sn__wait_list poppers; /* while empty */
    struct sn_promise *drained;   /* the close future's promise while items remain */
    uint32_t cap, head, len;
    unsigned core;
    int err; /* 0 while open, else the close error */
    uint64_t items[];
};

#define QUEUE_MAX_CAPACITY (1u << 31)

int sn_queue_create(uint32_t capacity, struct sn_queue **out)
{
    if (!out || capacity == 0 || capacity > QUEUE_MAX_CAPACITY)
        return -EINVAL;
    if (!sn_on_core())
        return -EPERM;
    struct sn_queue *q = malloc(sizeof *q + (size_t)capacity * sizeof q->items[0]);
    if (!q)
        return -ENOMEM;
    sn__wait_list_init(&q->pushers, NULL);
    sn__wait_list_init(&q->poppers, NULL);
    q->drained = NULL;
    q->cap = capacity;
    q->head = q->len = 0;
    q->core = sn_core_id();
    q->err = 0;
    *out = q;
    return 0;
}

void sn_queue_destroy(struct sn_queue *q)
{
    if (!q)
        return;
    sn__sync_check_destroy(q->core, __func__);
    struct sn__sched *s = sn__tls_sched;
    struct sn__wake b;
    sn__wake_init(&b);
    sn__wait_take_all(s, &q->pushers, -ECANCELED, &b);
    sn__wait_take_all(s, &q->poppers, -ECANCELED, &b);
    struct sn_promise *drained = q->drained;
    free(q);
    sn__wake_settle(s, &b);
    if (drained)
        sn_promise_fail(drained, -ECANCELED);
}

static void ring_put(struct sn_queue *q, uint64_t item)
{
    uint32_t tail = q->head + q->len;
    q->items[tail >= q->cap ? tail - q->cap : tail] = item;
    q->len++;
}

static uint64_t ring_take(struct sn_queue *q)
{
    uint64_t item = q->items[q->head];
    q->head = q->head + 1 == q->cap ? 0 : q->head + 1;
    q->len--;
    return item;
}

/*
 * Pushes without waiting: 0 when the item went in (or to a waiting pop, taken into `b`),
 * -EAGAIN when the push must wait, or the close error.
 */
static int push_now(struct sn__sched *s, struct sn_queue *q, uint64_t item, struct sn__wake *b)
{
    if (q->err)
        return q->err;
    struct sn__sync_wait *w = sn__wait_first(&q->poppers);
    if (w) {
        sn__wait_take(s, w, 0, item, b);
        return 0;
    }
    if (q->pushers.len || q->len == q->cap)
        return -EAGAIN;
    ring_put(q, item);
    return 0;
}

/*
 * Pops without waiting: 0 with the item in *item (the oldest waiting push moves into the
 * freed slot, taken into `b`; the close future's promise, once drained, into *drained),
 * -EAGAIN when the pop must wait, or the close error.
 */
static int pop_now(struct sn__sched *s, struct sn_queue *q, uint64_t *item, struct sn__wake *b,
                   struct sn_promise **drained)
{
    if (q->len == 0)
        return q->err ? q->err : -EAGAIN;
    *item = ring_take(q);
    struct sn__sync_wait *w = sn__wait_first(&q->pushers);
    if (w) {
        ring_put(q, w->data);
        sn__wait_take(s, w, 0, 0, b);
    }
    if (q->len == 0 && q->drained) {
        *drained = q->drained;
        q->drained = NULL;
    }
    return 0;
}

/* Settles what a push or pop released, once the queue is no longer touched. */
static void release(struct sn__sched *s, struct sn__wake *b, struct sn_promise *drained)
{
    sn__wake_settle(s, b);
    if (drained)
        sn_promise_set(drained, 0);
}

static struct sn_future *push(struct sn__sched *s, struct sn_queue *q, uint64_t item,
                              uint64_t timeout_ns)
{
    if (!q)
        return sn_failed(-EINVAL);
    if (q->core != s->id)
        return sn_failed(-EXDEV);
    struct sn__wake b;
    sn__wake_init(&b);
    int rc = push_now(s, q, item, &b);
    if (rc == -EAGAIN)
        return sn__wait_add(s, &q->pushers, item, timeout_ns);
    sn__wake_settle(s, &b);
    return rc ? sn_failed(rc) : sn_ready(0);
}

static struct sn_future *pop(struct sn__sched *s, struct sn_queue *q, uint64_t timeout_ns)
{
    if (!q)
        return sn_failed(-EINVAL);
    if (q->core != s->id)
        return sn_failed(-EXDEV);
    struct sn__wake b;
    struct sn_promise *drained = NULL;
    uint64_t item = 0;
    sn__wake_init(&b);
    int rc = pop_now(s, q, &item, &b, &drained);
    if (rc == -EAGAIN)
        return sn__wait_add(s, &q->poppers, 0, timeout_ns);
    release(s, &b, drained);
    return rc ? sn_failed(rc) : sn_ready(item);
}

struct sn_future *sn_queue_push(struct sn_queue *q, uint64_t item)
{
    return push(sn__sched_here(__func__), q, item, SN__NO_TIMEOUT);
}

struct sn_future *sn_queue_push_for(struct sn_queue *q, uint64_t item, uint64_t timeout_ns)
{
    if (timeout_ns == SN__NO_TIMEOUT)
        timeout_ns--;
    return push(sn__sched_here(__func__), q, item, timeout_ns);
}

struct sn_future *sn_queue_pop(struct sn_queue *q)
{
    return pop(sn__sched_here(__func__), q, SN__NO_TIMEOUT);
}

struct sn_future *sn_queue_pop_for(struct sn_queue *q, uint64_t timeout_ns)
{
    if (timeout_ns == SN__NO_TIMEOUT)
        timeout_ns--;
    return pop(sn__sched_here(__func__), q, timeout_ns);
}

int sn_queue_try_push(struct sn_queue *q, uint64_t item)
{
    if (!q)
        return -EINVAL;
    int rc = sn__sync_check(q->core);
    if (rc)
        return rc;
    struct sn__sched *s = sn__tls_sched;
    struct sn__wake b;
    sn__wake_init(&b);
    rc = push_now(s, q, item, &b);
    sn__wake_settle(s, &b);
    return rc;
}

int sn_queue_try_pop(struct sn_queue *q, uint64_t *item)
{
    if (!q || !item)
        return -EINVAL;
    int rc = sn__sync_check(q->core);
    if (rc)
        return rc;
    struct sn__sched *s = sn__tls_sched;
    struct sn__wake b;
    struct sn_promise *drained = NULL;
    sn__wake_init(&b);
    rc = pop_now(s, q, item, &b, &drained);
    release(s, &b, drained);
    return rc;
}

struct sn_future *sn_queue_close(struct sn_queue *q, int err)
{
    struct sn__sched *s = sn__sched_here(__func__);
    if (!q)
        return sn_failed(-EINVAL);
    if (q->core != s->id)
        return sn_failed(-EXDEV);
    if (q->err)
        return sn_failed(-EALREADY);
    q->err = sn__sync_err(err);
    struct sn__wake b;
    sn__wake_init(&b);
    sn__wait_take_all(s, &q->pushers, q->err, &b);
    sn__wait_take_all(s, &q->poppers, q->err, &b); /* pops wait only while it is empty */
    struct sn_future *f;
    if (q->len == 0)
        f = sn_ready(0);
    else
        q->drained = sn_promise_new(&f);
    sn__wake_settle(s, &b);
    return f;
}

int64_t sn_queue_length(const struct sn_queue *q)
{
    if (!q)
        return -EINVAL;
    int rc = sn__sync_check(q->core);
    return rc ? rc : (int64_t)q->len;
}

int64_t sn_queue_capacity(const struct sn_queue *q)
{
    if (!q)
        return -EINVAL;
    int rc = sn__sync_check(q->core);
    return rc ? rc : (int64_t)q->cap;
}
