/* Per-core scheduler: run queue and binding (see core/sched.h, include/sn/sched.h). */
#include "core/sched.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>

__thread unsigned sn__tls_core_id1;
static _Atomic unsigned ncores_now;
__thread struct sn__sched *sn__tls_sched;

int sn__sched_init(struct sn__sched *s, unsigned id, const struct sn_allocator *allocator)
{
    *s = (struct sn__sched){.id = id};
    for (unsigned g = 0; g < SN_SCHED_GROUPS_MAX; g++)
        s->gq[g].tail = &s->gq[g].head;
    s->gq[0].group = sn_sched_group_main();
    sn_list_init(&s->sync_waiting);
    sn_list_init(&s->sync_pending);
    int rc = sn__pool_init(&s->pool, SN__SCHED_OBJ_SIZE, 0, allocator);
    if (rc == 0)
        rc = sn__timers_init(&s->timers);
    return rc;
}

void sn__sched_destroy(struct sn__sched *s)
{
    sn__fibers_release(s);
    sn__timers_destroy(&s->timers);
    sn__pool_destroy(&s->pool);
    for (unsigned g = 0; g < SN_SCHED_GROUPS_MAX; g++) {
        s->gq[g].head = NULL;
        s->gq[g].tail = &s->gq[g].head;
        s->gq[g].len = 0;
    }
    s->active = 0;
}

void sn__sched_bind(struct sn__sched *s, unsigned ncores)
{
    sn__tls_sched = s;
    sn__tls_core_id1 = s ? s->id + 1 : 0;
    if (ncores)
        sn__set_core_count(ncores);
}

void sn__set_core_count(unsigned n)
{
    atomic_store_explicit(&ncores_now, n, memory_order_relaxed);
}

unsigned sn_core_count(void)
{
    return atomic_load_explicit(&ncores_now, memory_order_relaxed);
}

void sn_schedule(struct sn_task *t)
{
    struct sn__sched *s = sn__sched_here(__func__);
    sn__sched_push(s, s->tag & SN__TAG_GROUP, t);
}

void sn_schedule_in(struct sn_sched_group *g, struct sn_task *t)
{
    struct sn__sched *s = sn__sched_here(__func__);
    sn__sched_push(s, g ? sn__sched_group_enter(s, g) : (s->tag & SN__TAG_GROUP), t);
}

/* A pooled task record for sn_later. */
struct later {
    struct sn_task task;
    void (*fn)(void *arg);
    void *arg;
    uint8_t tag; /* the caller's run tag: fn runs under it */
};
_Static_assert(sizeof(struct later) <= SN__SCHED_OBJ_SIZE, "fits the core pool");

static void later_run(struct sn_task *t)
{
    struct sn__sched *s = sn__tls_sched;
    struct later *l = (struct later *)t;
    void (*fn)(void *) = l->fn;
    void *arg = l->arg;
    uint8_t tag = s->tag;
    s->tag = l->tag;
    sn__sched_obj_put(s, l);
    fn(arg);
    s->tag = tag;
}

void sn__off_core(const char *fn)
{
    fprintf(stderr, "libsn: %s called off a reactor core\n", fn);
    abort();
}

int sn_later_in(struct sn_sched_group *g, void (*fn)(void *arg), void *arg)
{
    struct sn__sched *s = sn__tls_sched;
    if (!s)
        return -EPERM;
    struct later *l = sn__sched_obj(s);
    sn_task_init(&l->task, later_run);
    l->fn = fn;
    l->arg = arg;
    l->tag = s->tag;
    if (g)
        l->tag = (uint8_t)((s->tag & ~SN__TAG_GROUP) | sn__sched_group_enter(s, g));
    sn__sched_push(s, l->tag & SN__TAG_GROUP, &l->task);
    return 0;
}

int sn_later(void (*fn)(void *arg), void *arg)
{
    return sn_later_in(NULL, fn, arg);
}
