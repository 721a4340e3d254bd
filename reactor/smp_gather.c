/*
 * Calls on many cores gathered into one future: sn_map_reduce, sn_invoke_on_all (contract in
 * include/sn/smp.h). One pooled fold record on the calling core counts the answers and folds
 * their values; every part is an ordinary cross-core call (reactor/smp.c).
 */
#include <sn/smp.h>

#include "reactor/smp_internal.h"

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

struct sn_future *sn__map_reduce(sn_remote_fn fn, void *arg, uint64_t init, sn_reduce_fn reduce,
                                 void *reduce_arg, bool force)
{
    struct sn__core *c = sn__core_here(__func__);
    struct sn_future *out;
    struct fold *f = sn__sched_obj(&c->sched);
    *f = (struct fold){
        .reduce = reduce, .reduce_arg = reduce_arg, .acc = init, .remaining = c->rt->ncores};
    f->promise = sn_promise_new(&out);
    for (unsigned i = 0; i < c->rt->ncores; i++)
        sn_done(sn__submit(c, i, fn, arg, force), fold_one, f);
    return out;
}

struct sn_future *sn_map_reduce(sn_remote_fn fn, void *arg, uint64_t init, sn_reduce_fn reduce,
                                void *reduce_arg)
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
