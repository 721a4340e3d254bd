/*
 * Commands that run on every core: flush_all, stats, stats reset, and the metrics page.
 *
 * One sn_invoke_on with the own part inline (SN_GATHER_LOCAL_INLINE): the calling core runs
 * its part at once, so the commands that follow on this connection, run inline too, already
 * see a flush; the parts for the other cores go after the calling core's outbox (sent first),
 * so batches queued before the flush run before it on their owners. Each core writes only its
 * own snapshot slot. The answer is formatted on the calling core when the last core has
 * answered; flush_all answers OK only then, so a client that saw OK sees the flush on every
 * core, from any connection.
 *
 * Ownership: the gather is malloc'ed by the calling core and freed there after `done`; other
 * cores write their snap slot between the call and its reply and touch nothing else.
 */
#include "kv.h"

#include <errno.h>
#include <stdlib.h>

struct kv_gather {
    enum kv_gather_kind kind;
    int32_t exptime; /* flush_all delay */
    bool noreply;
    kv_gather_done_fn done;
    void *arg;
    struct sn_reply *reply;
    struct app_outbuf out;
    struct kv_core_snap snap[]; /* [ncores] */
};

/* Each core's part. */
static struct sn_future *gather_part(void *arg)
{
    struct kv_gather *g = arg;
    struct kv_core *kc = kv_core_self();
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
        mc_store_stats(kc->store, &g->snap[kc->id].st);
        g->snap[kc->id].c = kc->c;
        break;
    }
    return SN_SUCCESS;
}

static int format(struct kv_gather *g, int err)
{
    if (err)
        return mc_reply_line(&g->out, "SERVER_ERROR a core did not answer");
    switch (g->kind) {
    case KV_G_FLUSH: return g->noreply ? 0 : mc_reply_line(&g->out, "OK");
    case KV_G_RESET: return mc_reply_line(&g->out, "RESET");
    case KV_G_STATS: return kv_stats_format(&g->out, g->snap, kv_srv.ncores);
    case KV_G_METRICS: return kv_metrics_format(&g->out, g->snap, kv_srv.ncores);
    }
    return 0;
}

static void gather_back(void *arg, int err, uint64_t value)
{
    (void)value;
    struct kv_gather *g = arg;
    if (format(g, err) < 0) {
        app_outbuf_clear(&g->out);
        mc_reply_line(&g->out, "SERVER_ERROR out of memory");
    }
    g->done(g->arg, g->reply, &g->out);
    app_outbuf_free(&g->out);
    free(g);
}

int kv_gather_start(enum kv_gather_kind kind, int32_t exptime, bool noreply, kv_gather_done_fn done,
                    void *arg, struct sn_reply *reply)
{
    struct kv_gather *g = calloc(1, sizeof *g + kv_srv.ncores * sizeof g->snap[0]);
    if (!g)
        return -ENOMEM;
    *g = (struct kv_gather){.kind = kind, .exptime = exptime, .noreply = noreply, .done = done};
    g->arg = arg, g->reply = reply;
    kv_batch_flush(kv_core_self());
    struct sn_gather how = {.flags = SN_GATHER_LOCAL_INLINE};
    sn_done(sn_invoke_on(&how, gather_part, g), gather_back, g);
    return 0;
}
