/*
 * One instance of a user object per core (contract in include/sn/smp.h). The object holds
 * one pointer per core, each written only by its own core (during start and stop) and read
 * by it; other cores never read another core's slot.
 */
#include <sn/smp.h>

#include "reactor/core.h"

#include <errno.h>
#include <stdlib.h>

struct sn_sharded {
    unsigned ncores;
    sn_shard_init_fn init;
    sn_shard_fini_fn fini;
    void *arg;
    void *inst[];
};

/*
 * One sn_sharded_invoke_on_all or stop, from the caller's pool: every core reads it (never
 * writes it) while the calls run; the caller frees it when all have answered.
 */
struct shard_call {
    struct sn_sharded *s;
    sn_shard_fn fn;
    void *arg;
    struct sn_promise *promise;
};
_Static_assert(sizeof(struct shard_call) <= SN__SCHED_OBJ_SIZE, "fits the core pool");

static struct sn_future *init_here(void *arg)
{
    struct sn_sharded *s = arg;
    unsigned me = sn_core_id();
    s->inst[me] = s->init(s->arg, me);
    return s->inst[me] ? SN_SUCCESS : sn_failed(-ENOMEM);
}

struct sn_future *sn_sharded_start(sn_shard_init_fn init, sn_shard_fini_fn fini, void *arg,
                                   struct sn_sharded **out)
{
    struct sn__core *c = sn__core_here(__func__);
    *out = NULL;
    unsigned n = c->rt->ncores;
    struct sn_sharded *s = calloc(1, sizeof *s + n * sizeof(void *));
    if (!s)
        return sn_failed(-ENOMEM);
    *s = (struct sn_sharded){.ncores = n, .init = init, .fini = fini, .arg = arg};
    *out = s;
    return sn_invoke_on_all(init_here, s);
}

void *sn_sharded_local(const struct sn_sharded *s)
{
    unsigned me = sn_core_id();
    return me < s->ncores ? s->inst[me] : NULL;
}

static struct sn_future *call_here(void *arg)
{
    struct shard_call *k = arg;
    return k->fn(k->s->inst[sn_core_id()], k->arg);
}

static void call_done(void *arg, int err, uint64_t value)
{
    struct shard_call *k = arg;
    struct sn_promise *p = k->promise;
    sn__sched_obj_put(sn__tls_sched, k);
    if (err)
        sn_promise_fail(p, err);
    else
        sn_promise_set(p, value);
}

static struct sn_future *invoke(struct sn__core *c, struct sn_sharded *s, sn_shard_fn fn,
                                void *arg, bool force)
{
    struct sn_future *out;
    struct shard_call *k = sn__sched_obj(&c->sched);
    *k = (struct shard_call){.s = s, .fn = fn, .arg = arg};
    k->promise = sn_promise_new(&out);
    sn_done(sn__map_reduce(call_here, k, 0, sn__reduce_count, NULL, force), call_done, k);
    return out;
}

struct sn_future *sn_sharded_invoke_on_all(struct sn_sharded *s, sn_shard_fn fn, void *arg)
{
    return invoke(sn__core_here(__func__), s, fn, arg, false);
}

static struct sn_future *fini_here(void *instance, void *arg)
{
    struct sn_sharded *s = arg;
    if (instance && s->fini)
        s->fini(instance, s->arg);
    s->inst[sn_core_id()] = NULL;
    return SN_SUCCESS;
}

static void free_sharded(void *arg, int err, uint64_t value)
{
    (void)err, (void)value;
    free(arg);
}

static struct sn_future *stopped(void *arg, int err, uint64_t value)
{
    (void)value;
    free(arg);
    return err ? sn_failed(err) : SN_SUCCESS;
}

struct sn_future *sn_sharded_stop(struct sn_sharded *s)
{
    struct sn__core *c = sn__core_here(__func__);
    if (!s)
        return sn_ready(0);
    if (c->finishing) {
        /* The very end of a run: no core handles messages any more, so the instances are
         * finished here (their cores are idle and will not touch them again). */
        for (unsigned i = 0; i < s->ncores; i++)
            if (s->inst[i] && s->fini)
                s->fini(s->inst[i], s->arg);
        free_sharded(s, 0, 0);
        return sn_ready(0);
    }
    return sn_then_wrapped(invoke(c, s, fini_here, s, true), stopped, s);
}
