/*
 * Commands that run on every core: flush_all, stats, stats reset, and the metrics page.
 *
 * The calling core runs its part inline at once (so the commands that follow on this
 * connection, run inline too, already see a flush), then sends its outbox (so batches queued
 * before the flush run before it on their owners) and one sn_call_on to every other core.
 * Each core writes only its own snapshot slot. The answer is formatted on the calling core when
 * the last core has answered; flush_all answers OK only then, so a client that saw OK sees the
 * flush on every core, from any connection.
 *
 * Ownership: the gather is malloc'ed by the calling core; other cores write their snap slot
 * between the call and its reply and touch nothing else. It is freed on the calling core when
 * it is done and the waiter released it.
 */
#include "kv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct kv_gather_slot {
    struct kv_gather *g;
    int err;
};

/* This core's part. */
static void gather_here(struct kv_gather *g, struct kv_core *kc)
{
    struct kv_core_snap *s = &g->snap[kc->id];
    switch (g->kind) {
    case KV_G_FLUSH: mc_store_flush_all(kc->store, g->exptime); break;
    case KV_G_RESET:
        mc_store_stats_reset(kc->store);
        kc->c.total_conns = kc->c.rejected_conns = 0;
        kc->c.bytes_read = kc->c.bytes_written = 0;
        kc->c.remote_ops = kc->c.remote_batches = kc->c.served_ops = 0;
        break;
    case KV_G_STATS:
    case KV_G_METRICS:
        mc_store_stats(kc->store, &s->st);
        s->c = kc->c;
        break;
    }
}

static int gather_run(void *arg, uint64_t *value)
{
    struct kv_gather_slot *slot = arg;
    gather_here(slot->g, kv_core_self());
    *value = 0;
    return 0;
}

static void gather_free(struct kv_gather *g)
{
    app_outbuf_free(&g->out);
    free(g->snap);
    free(g->slots);
    free(g);
}

void kv_gather_release(struct kv_gather *g)
{
    if (--g->refs == 0)
        gather_free(g);
}

static int format(struct kv_gather *g)
{
    for (unsigned i = 0; i < kv_srv.ncores; i++)
        if (g->slots[i].err)
            return mc_reply_line(&g->out, "SERVER_ERROR a core did not answer");
    switch (g->kind) {
    case KV_G_FLUSH: return g->noreply ? 0 : mc_reply_line(&g->out, "OK");
    case KV_G_RESET: return mc_reply_line(&g->out, "RESET");
    case KV_G_STATS: return kv_stats_format(&g->out, g->snap, kv_srv.ncores);
    case KV_G_METRICS: return kv_metrics_format(&g->out, g->snap, kv_srv.ncores);
    }
    return 0;
}

/* One core fewer to wait for; the last one formats the answer and tells the waiter. */
static void part_done(struct kv_gather *g)
{
    if (--g->pending)
        return;
    if (format(g) < 0) {
        app_outbuf_clear(&g->out);
        mc_reply_line(&g->out, "SERVER_ERROR out of memory");
    }
    g->done = true;
    if (!g->starting && g->on_done)
        g->on_done(g, g->arg);
    kv_gather_release(g); /* the in-flight reference */
}

static void gather_back(void *arg, int err, uint64_t value)
{
    (void)value;
    struct kv_gather_slot *slot = arg;
    slot->err = err;
    part_done(slot->g);
}

struct kv_gather *kv_gather_start(enum kv_gather_kind kind, int32_t exptime, bool noreply,
                                  void (*on_done)(struct kv_gather *g, void *arg), void *arg)
{
    struct kv_core *kc = kv_core_self();
    unsigned n = kv_srv.ncores;
    struct kv_gather *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->snap = calloc(n, sizeof *g->snap);
    g->slots = calloc(n, sizeof *g->slots);
    if (!g->snap || !g->slots) {
        gather_free(g);
        return NULL;
    }
    g->kind = kind;
    g->exptime = exptime;
    g->noreply = noreply;
    g->on_done = on_done;
    g->arg = arg;
    g->refs = 2;       /* the caller's, and one until every core has answered */
    g->pending = n;    /* every core, this one included */
    g->starting = true;
    kv_batch_flush(kc);
    gather_here(g, kc);
    for (unsigned i = 0; i < n; i++) {
        g->slots[i].g = g;
        if (i == kc->id)
            continue;
        sn_done(sn_call_on(i, gather_run, &g->slots[i]), gather_back, &g->slots[i]);
    }
    part_done(g); /* this core's part: done now when no other core is left to answer */
    g->starting = false;
    return g;
}
