/*
 * The server's start-up on a running reactor: one struct kv_core (store, outbox, counters) per
 * core, each made on its own core so its memory is that core's (main.c made the partitioner
 * before the run). Everything is freed by the main thread once sn_app_run has returned (at that
 * point no connection, batch or gather is left: libsn closed them all).
 */
#include "kv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kv_server kv_srv;

static void flush_task(struct sn_task *t)
{
    struct kv_core *kc = SN_CONTAINER_OF(t, struct kv_core, flush_task);
    kc->flush_queued = false;
    kv_batch_flush(kc);
}

/* Runs on every core: its store and its state. */
static struct sn_future *core_init(void *arg)
{
    (void)arg;
    unsigned id = sn_core_id();
    struct kv_core *kc = calloc(1, sizeof *kc);
    if (!kc)
        return sn_failed(-ENOMEM);
    kc->id = id;
    sn_task_init(&kc->flush_task, flush_task);
    kc->outbox = calloc(kv_srv.ncores, sizeof *kc->outbox);
    struct mc_store_config cfg = {
        .mem_limit = kv_srv.opt.mem_total / kv_srv.ncores,
        .item_max = kv_srv.opt.item_max,
        .core_id = id,
    };
    kc->store = mc_store_create(&cfg);
    kv_srv.cores[id] = kc;
    if (!kc->outbox)
        return sn_failed(-ENOMEM);
    if (!kc->store) {
        fprintf(stderr,
                "sn-kv: core %u: cannot make a store of %zu bytes with items up to %zu bytes "
                "(-m is split across %u cores; -I must not exceed a core's share)\n",
                id, cfg.mem_limit, cfg.item_max, kv_srv.ncores);
        return sn_failed(-EINVAL);
    }
    return SN_SUCCESS;
}

struct sn_future *kv_server_start(void)
{
    kv_srv.ncores = sn_core_count();
    kv_srv.started = time(NULL);
    kv_srv.pcfg.item_max = kv_srv.opt.item_max;
    kv_srv.pcfg.lax_keys = kv_srv.opt.lax_keys;
    kv_srv.cores = calloc(kv_srv.ncores, sizeof *kv_srv.cores);
    if (!kv_srv.cores)
        return sn_failed(-ENOMEM);
    return sn_invoke_on_all(core_init, NULL);
}

void kv_server_free(void)
{
    for (unsigned i = 0; kv_srv.cores && i < kv_srv.ncores; i++) {
        struct kv_core *kc = kv_srv.cores[i];
        if (!kc)
            continue;
        kv_batch_cache_free(kc);
        app_outbuf_free(&kc->local);
        mc_store_destroy(kc->store);
        free(kc->outbox);
        free(kc);
    }
    free(kv_srv.cores);
    kv_srv.cores = NULL;
    sn_partition_destroy(kv_srv.part);
    kv_srv.part = NULL;
}
