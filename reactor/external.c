/*
 * The MPSC inbox through which threads that are not cores hand work to a core
 * (sn_submit_external). A Treiber stack: producers push with a CAS, the core takes the whole
 * stack with one exchange and reverses it, so each batch runs in submission order.
 *
 * Lifetime: a producer announces itself in sn__ext_active before it looks at the runtime,
 * and leaves after its push and wake-up. The shutdown check (core 0) waits for that count
 * to be zero, and sn_run waits for it before freeing the runtime, so no push lands in a
 * core that has stopped and no wake-up goes to a closed eventfd.
 */
#include <sn/reactor.h>

#include "reactor/core.h"

#include <errno.h>
#include <stdlib.h>

_Atomic int sn__ext_active;

/* Enters the library from any thread: the running runtime, or NULL (then already left). */
struct sn__rt *sn__ext_enter(void)
{
    atomic_fetch_add(&sn__ext_active, 1);
    struct sn__rt *rt = atomic_load(&sn__rt_current);
    if (!rt)
        atomic_fetch_sub(&sn__ext_active, 1);
    return rt;
}

void sn__ext_leave(void)
{
    atomic_fetch_sub(&sn__ext_active, 1);
}

int sn_submit_external(unsigned core, void (*fn)(void *arg), void *arg)
{
    struct sn__rt *rt = sn__ext_enter();
    if (!rt)
        return -ECANCELED;
    int rc = 0;
    if (core >= rt->ncores || !fn) {
        rc = -EINVAL;
    } else if (atomic_load(&rt->stop)) {
        rc = -ECANCELED;
    } else {
        struct sn__ext *e = malloc(sizeof *e);
        if (!e) {
            rc = -ENOMEM;
        } else {
            struct sn__core *c = rt->cores[core];
            e->fn = fn;
            e->arg = arg;
            e->next = atomic_load_explicit(&c->inbox, memory_order_relaxed);
            while (!atomic_compare_exchange_weak_explicit(&c->inbox, &e->next, e,
                                                          memory_order_release,
                                                          memory_order_relaxed))
                ;
            if (sn__waker_need_wake(&c->waker))
                sn__wake_from_thread(&c->waker);
        }
    }
    sn__ext_leave();
    return rc;
}

unsigned sn__inbox_drain(struct sn__core *c)
{
    struct sn__ext *e = atomic_exchange_explicit(&c->inbox, NULL, memory_order_acquire);
    struct sn__ext *fifo = NULL;
    unsigned n = 0;

    while (e) {
        struct sn__ext *next = e->next;
        e->next = fifo;
        fifo = e;
        e = next;
    }
    while (fifo) {
        struct sn__ext *next = fifo->next;
        void (*fn)(void *) = fifo->fn;
        void *arg = fifo->arg;
        free(fifo);
        fn(arg);
        fifo = next;
        n++;
    }
    sn__count(&c->c.external, n);
    return n;
}

void sn__inbox_free(struct sn__core *c)
{
    struct sn__ext *e = atomic_exchange(&c->inbox, NULL);
    while (e) {
        struct sn__ext *next = e->next;
        free(e);
        e = next;
    }
}
