/*
 * Timers: a binary min-heap of embedded struct sn_timer per core (see include/sn/timer.h).
 * Each timer records its heap index, so cancel is O(log n) without a search.
 */
#include <sn/future.h>
#include <sn/timer.h>

#include "core/sched.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#define NOT_ARMED UINT32_MAX

int sn__timers_init(struct sn__timers *t)
{
    *t = (struct sn__timers){0};
    return 0;
}

void sn__timers_destroy(struct sn__timers *t)
{
    for (uint32_t i = 0; i < t->n; i++)
        t->heap[i]->index = NOT_ARMED;
    free(t->heap);
    *t = (struct sn__timers){0};
}

static void heap_set(struct sn__timers *h, uint32_t i, struct sn_timer *t)
{
    h->heap[i] = t;
    t->index = i;
}

static void sift_up(struct sn__timers *h, uint32_t i)
{
    struct sn_timer *t = h->heap[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (h->heap[parent]->deadline <= t->deadline)
            break;
        heap_set(h, i, h->heap[parent]);
        i = parent;
    }
    heap_set(h, i, t);
}

static void sift_down(struct sn__timers *h, uint32_t i)
{
    struct sn_timer *t = h->heap[i];
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= h->n)
            break;
        if (child + 1 < h->n && h->heap[child + 1]->deadline < h->heap[child]->deadline)
            child++;
        if (t->deadline <= h->heap[child]->deadline)
            break;
        heap_set(h, i, h->heap[child]);
        i = child;
    }
    heap_set(h, i, t);
}

static void heap_remove(struct sn__timers *h, struct sn_timer *t)
{
    uint32_t i = t->index;
    struct sn_timer *last = h->heap[--h->n];
    t->index = NOT_ARMED;
    if (last == t)
        return;
    heap_set(h, i, last);
    if (i > 0 && h->heap[(i - 1) / 2]->deadline > last->deadline)
        sift_up(h, i);
    else
        sift_down(h, i);
}

static int heap_insert(struct sn__timers *h, struct sn_timer *t)
{
    if (h->n == h->cap) {
        uint32_t cap = h->cap ? h->cap * 2 : 64;
        struct sn_timer **heap = realloc(h->heap, cap * sizeof *heap);
        if (!heap)
            return -ENOMEM;
        h->heap = heap;
        h->cap = cap;
    }
    h->heap[h->n] = t;
    t->index = h->n++;
    sift_up(h, t->index);
    return 0;
}

void sn_timer_init(struct sn_timer *t, sn_timer_fn fn, void *arg)
{
    *t = (struct sn_timer){.fn = fn, .arg = arg, .index = NOT_ARMED};
}

static int arm(struct sn_timer *t, uint64_t delay_ns, uint64_t period_ns)
{
    struct sn__sched *s = sn__tls_sched;
    if (!s)
        return -EPERM;
    if (t->index != NOT_ARMED) {
        if (t->core != s->id)
            return -EXDEV;
        heap_remove(&s->timers, t);
    }
    if (s->stopping)
        return -ECANCELED;
    t->deadline = sn_now_ns() + delay_ns;
    t->period = period_ns;
    t->core = (uint16_t)s->id;
    t->tag = s->tag;
    return heap_insert(&s->timers, t);
}

int sn_timer_arm(struct sn_timer *t, uint64_t delay_ns)
{
    return arm(t, delay_ns, 0);
}

int sn_timer_arm_periodic(struct sn_timer *t, uint64_t period_ns)
{
    if (period_ns == 0)
        return -EINVAL;
    return arm(t, period_ns, period_ns);
}

int sn_timer_cancel(struct sn_timer *t)
{
    struct sn__sched *s = sn__tls_sched;
    if (t->index == NOT_ARMED)
        return 0;
    if (!s)
        return -EPERM;
    if (t->core != s->id)
        return -EXDEV;
    heap_remove(&s->timers, t);
    return 1;
}

int sn_timer_armed(const struct sn_timer *t)
{
    if (t->index == NOT_ARMED)
        return 0;
    return t->core == sn_core_id() ? 1 : -EXDEV;
}

unsigned sn__timers_expire(struct sn__sched *s, uint64_t now)
{
    struct sn__timers *h = &s->timers;
    /* A callback that re-arms its timer with no delay could otherwise keep this loop going:
     * fire at most as many timers as were armed on entry. */
    uint32_t budget = h->n;
    unsigned fired = 0;

    while (h->n && h->heap[0]->deadline <= now && fired < budget) {
        struct sn_timer *t = h->heap[0];
        if (t->period) {
            /* Re-arm before the call so the callback may cancel it. */
            t->deadline += t->period;
            if (t->deadline <= now)
                t->deadline = now + t->period;
            sift_down(h, 0);
        } else {
            heap_remove(h, t);
        }
        fired++;
        uint8_t tag = s->tag;
        s->tag = t->tag; /* the callback runs as the code that armed the timer */
        t->fn(t->arg);
        s->tag = tag;
    }
    s->timers_fired += fired;
    return fired;
}

/* A sleep future's timer and promise, from the core pool. */
struct sleeper {
    struct sn_timer timer;
    struct sn_promise *promise;
};
_Static_assert(sizeof(struct sleeper) <= SN__SCHED_OBJ_SIZE, "fits the core pool");

static void sleeper_fire(void *arg)
{
    struct sleeper *z = arg;
    struct sn_promise *p = z->promise;
    sn__sched_obj_put(sn__tls_sched, z);
    sn_promise_set(p, 0);
}

void sn__timers_cancel_all(struct sn__sched *s)
{
    struct sn__timers *h = &s->timers;
    while (h->n) {
        struct sn_timer *t = h->heap[h->n - 1];
        heap_remove(h, t);
        if (t->fn == sleeper_fire) {
            struct sleeper *z = t->arg;
            struct sn_promise *p = z->promise;
            sn__sched_obj_put(s, z);
            sn_promise_fail(p, -ECANCELED);
        }
    }
}

struct sn_future *sn_sleep(uint64_t ns)
{
    struct sn__sched *s = sn__sched_here(__func__);
    struct sn_future *f;
    struct sleeper *z = sn__sched_obj(s);
    z->promise = sn_promise_new(&f);
    sn_timer_init(&z->timer, sleeper_fire, z);
    int rc = sn_timer_arm(&z->timer, ns);
    if (rc < 0) {
        struct sn_promise *p = z->promise;
        sn__sched_obj_put(s, z);
        sn_promise_fail(p, rc);
    }
    return f;
}

struct sn_future *sn_yield(void)
{
    sn__sched_here(__func__);
    return sn_sleep(0);
}
