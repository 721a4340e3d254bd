/*
 * Calls on many cores gathered into one future: sn_map_reduce(_on), sn_invoke_on(_all)
 * (contract and ordering guarantees in include/sn/smp.h). One pooled fold record on the
 * calling core counts the answers and folds their values; every remote part is an ordinary
 * cross-core call (reactor/smp.c), so it queues behind this core's earlier messages to that
 * core. The own part is a call to the own core (the run queue) or, with
 * SN_GATHER_LOCAL_INLINE, fn called right here.
 */
#include <sn/mesh.h>
#include <sn/smp.h>

#include "reactor/smp_internal.h"

#include <errno.h>

_Static_assert(SN_CORE_SET_MAX == SN_MESH_MAX_CORES, "a core set holds every possible core");

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

/* The core's part when it runs inline: at once, unless the core refuses new work. */
static struct sn_future *run_inline(struct sn__core *c, sn_remote_fn fn, void *arg, bool force)
{
    int rc = sn__smp_check_target(c, c->id, force);
    return rc ? sn_failed(rc) : fn(arg);
}

static bool selected(const struct sn_gather *how, unsigned core, unsigned me)
{
    if (how && (how->flags & SN_GATHER_SKIP_SELF) && core == me)
        return false;
    return !how || !how->cores || sn_core_set_has(how->cores, core);
}

/* -EINVAL when the set names a core that does not exist; else the number of cores chosen. */
static int count_selected(const struct sn_gather *how, unsigned ncores, unsigned me)
{
    if (how && how->cores)
        for (unsigned i = ncores; i < SN_CORE_SET_MAX; i++)
            if (sn_core_set_has(how->cores, i))
                return -EINVAL;
    int n = 0;
    for (unsigned i = 0; i < ncores; i++)
        n += selected(how, i, me);
    return n;
}

static struct sn_future *gather(const struct sn_gather *how, sn_remote_fn fn, void *arg,
                                uint64_t init, sn_reduce_fn reduce, void *reduce_arg, bool force)
{
    struct sn__core *c = sn__core_here(__func__);
    unsigned ncores = c->rt->ncores, me = c->id;
    int n = count_selected(how, ncores, me);
    if (n <= 0)
        return n < 0 ? sn_failed(n) : sn_ready(init);
    struct sn_future *out;
    struct fold *f = sn__sched_obj(&c->sched);
    *f = (struct fold){
        .reduce = reduce, .reduce_arg = reduce_arg, .acc = init, .remaining = (unsigned)n};
    f->promise = sn_promise_new(&out);
    bool inline_self = how && (how->flags & SN_GATHER_LOCAL_INLINE) && selected(how, me, me);
    /* Inline: the own part first, as if the caller had run fn itself before sending. */
    if (inline_self)
        sn_done(run_inline(c, fn, arg, force), fold_one, f);
    for (unsigned i = 0; i < ncores; i++)
        if (selected(how, i, me) && !(inline_self && i == me))
            sn_done(sn__submit(c, i, fn, arg, force), fold_one, f);
    return out;
}

struct sn_future *sn__map_reduce(sn_remote_fn fn, void *arg, uint64_t init, sn_reduce_fn reduce,
                                 void *reduce_arg, bool force)
{
    return gather(NULL, fn, arg, init, reduce, reduce_arg, force);
}

struct sn_future *sn_map_reduce(sn_remote_fn fn, void *arg, uint64_t init, sn_reduce_fn reduce,
                                void *reduce_arg)
{
    sn__core_here(__func__);
    return gather(NULL, fn, arg, init, reduce, reduce_arg, false);
}

struct sn_future *sn_map_reduce_on(const struct sn_gather *how, sn_remote_fn fn, void *arg,
                                   uint64_t init, sn_reduce_fn reduce, void *reduce_arg)
{
    sn__core_here(__func__);
    return gather(how, fn, arg, init, reduce, reduce_arg, false);
}

uint64_t sn__reduce_count(void *arg, uint64_t acc, uint64_t value)
{
    return count_reduce(arg, acc, value);
}

struct sn_future *sn_invoke_on_all(sn_remote_fn fn, void *arg)
{
    sn__core_here(__func__);
    return gather(NULL, fn, arg, 0, count_reduce, NULL, false);
}

struct sn_future *sn_invoke_on(const struct sn_gather *how, sn_remote_fn fn, void *arg)
{
    sn__core_here(__func__);
    return gather(how, fn, arg, 0, count_reduce, NULL, false);
}
