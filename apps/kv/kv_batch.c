/*
 * Commands sent to the core that owns their key, in batches: one batch per (sending core,
 * owner core), filled by every connection of the sending core during a loop turn and sent
 * with one sn_call_on when the core's task queue next runs (or at once when it grows large,
 * or before a flush_all/stats). So a multi-get with keys on three other cores costs three
 * cross-core calls, and many pipelined commands share one.
 *
 * Ownership: the batch is malloc'ed by the sending core and owns copies of the keys and values
 * (`in`), so nothing points into a connection's input once kv_batch_add returns. From
 * sn_call_on until the reply arrives the owner core reads `ops`/`in` and writes `out` and the
 * ops' `end`/`err`; the sender does not touch the batch then. After the reply the batch is the
 * sender's again: it lives until every connection has consumed its ops (refs), then goes back
 * to the sender core's spare list. Batches are only ever freed on the core that made them.
 */
#include "kv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_MAX_OPS   1024
#define BATCH_MAX_BYTES (256u << 10)
#define SPARE_MAX       16
#define SPARE_BUF_MAX   (1u << 20)

static void batch_free(struct kv_batch *b)
{
    app_outbuf_free(&b->in);
    app_outbuf_free(&b->out);
    free(b->ops);
    free(b->conns);
    free(b);
}

static void batch_recycle(struct kv_batch *b)
{
    struct kv_core *kc = kv_srv.cores[b->from];
    if (kc->nspare >= SPARE_MAX || b->in.cap > SPARE_BUF_MAX || b->out.cap > SPARE_BUF_MAX) {
        batch_free(b);
        return;
    }
    b->next_spare = kc->spare;
    kc->spare = b;
    kc->nspare++;
}

static struct kv_batch *batch_new(struct kv_core *kc, unsigned owner)
{
    struct kv_batch *b = kc->spare;
    if (b) {
        kc->spare = b->next_spare;
        kc->nspare--;
    } else if (!(b = calloc(1, sizeof *b))) {
        return NULL;
    }
    b->from = kc->id;
    b->to = owner;
    b->sent = b->done = false;
    b->err = 0;
    b->refs = 1; /* until the reply is handled */
    b->seq = ++kc->batch_seq;
    b->nops = b->nconns = 0;
    app_outbuf_clear(&b->in);
    app_outbuf_clear(&b->out);
    return b;
}

static int grow(void **arr, uint32_t *cap, uint32_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    uint32_t n = *cap ? *cap * 2 : 16;
    while (n < need)
        n *= 2;
    void *p = realloc(*arr, (size_t)n * elem);
    if (!p)
        return -ENOMEM;
    *arr = p;
    *cap = n;
    return 0;
}

/* ---- on the owner core -------------------------------------------------------------------- */

static bool is_get(enum mc_op op)
{
    return op == MC_OP_GET || op == MC_OP_GETS || op == MC_OP_GAT || op == MC_OP_GATS;
}

static int batch_run(void *arg, uint64_t *value)
{
    struct kv_batch *b = arg;
    struct kv_core *kc = kv_core_self();
    for (uint32_t i = 0; i < b->nops; i++) {
        struct kv_op *op = &b->ops[i];
        int rc = is_get(op->cmd.op) ? mc_exec_get_key(kc->store, &op->cmd, op->cmd.key, &b->out)
                                    : mc_exec_key(kc->store, &op->cmd, &b->out);
        op->err = rc < 0 ? rc : 0;
        op->end = (uint32_t)b->out.len;
    }
    kc->c.served_ops += b->nops;
    *value = 0;
    return 0;
}

/* ---- back on the sending core ------------------------------------------------------------- */

static void batch_back(void *arg, int err, uint64_t value)
{
    (void)value;
    struct kv_batch *b = arg;
    b->done = true;
    b->err = err;
    /* The connections may release their ops (and so the batch) while we walk them. */
    b->refs++;
    for (uint32_t i = 0; i < b->nconns; i++)
        kv_conn_batch_done(b->conns[i]);
    b->nconns = 0;
    b->refs -= 2;
    if (b->refs == 0)
        batch_recycle(b);
}

static void batch_send(struct kv_core *kc, struct kv_batch *b)
{
    kc->outbox[b->to] = NULL;
    kc->outbox_used--;
    /* The slices were offsets while `in` could still move; now they become pointers. */
    for (uint32_t i = 0; i < b->nops; i++) {
        struct mc_cmd *c = &b->ops[i].cmd;
        c->key.p = b->in.data + (uintptr_t)c->key.p;
        c->data.p = b->in.data + (uintptr_t)c->data.p;
    }
    b->sent = true;
    kc->c.remote_batches++;
    kc->c.remote_ops += b->nops;
    sn_done(sn_call_on(b->to, batch_run, b), batch_back, b);
}

void kv_batch_flush(struct kv_core *kc)
{
    for (unsigned i = 0; kc->outbox_used && i < kv_srv.ncores; i++)
        if (kc->outbox[i])
            batch_send(kc, kc->outbox[i]);
}

static struct kv_batch *outbox_get(struct kv_core *kc, unsigned owner)
{
    struct kv_batch *b = kc->outbox[owner];
    if (b)
        return b;
    if (!(b = batch_new(kc, owner)))
        return NULL;
    kc->outbox[owner] = b;
    kc->outbox_used++;
    if (!kc->flush_queued) {
        kc->flush_queued = true;
        sn_schedule(&kc->flush_task);
    }
    return b;
}

int kv_batch_add(struct kv_core *kc, unsigned owner, struct kv_conn *conn,
                 const struct mc_cmd *cmd, const struct mc_slice *key, struct kv_batch **batch)
{
    struct kv_batch *b = outbox_get(kc, owner);
    if (!b)
        return -ENOMEM;
    const struct mc_slice *k = key ? key : &cmd->key;
    bool reg = conn && (b->nconns == 0 || b->conns[b->nconns - 1] != conn);
    /* Everything that can fail first, so a failure leaves the batch as it was. */
    if (!app_outbuf_reserve(&b->in, k->len + cmd->data.len) ||
        grow((void **)&b->ops, &b->capops, b->nops + 1, sizeof *b->ops) < 0 ||
        (reg && grow((void **)&b->conns, &b->capconns, b->nconns + 1, sizeof *b->conns) < 0))
        return -ENOMEM;
    if (reg) {
        b->conns[b->nconns++] = conn;
        kv_conn_hold(conn);
    }
    uint32_t idx = b->nops++;
    struct kv_op *op = &b->ops[idx];
    op->cmd = *cmd;
    op->cmd.key = (struct mc_slice){(const char *)(uintptr_t)b->in.len, k->len};
    app_outbuf_put(&b->in, k->p, k->len);
    op->cmd.data = (struct mc_slice){(const char *)(uintptr_t)b->in.len, cmd->data.len};
    app_outbuf_put(&b->in, cmd->data.p, cmd->data.len);
    op->cmd.keys = (struct mc_slice){NULL, 0};
    op->cmd.args = (struct mc_slice){NULL, 0};
    op->end = 0;
    op->err = 0;
    if (conn)
        b->refs++; /* the connection releases the op once it has written the answer */
    *batch = b;
    if (b->nops >= BATCH_MAX_OPS || b->in.len >= BATCH_MAX_BYTES)
        batch_send(kc, b);
    return (int)idx;
}

int kv_batch_answer(const struct kv_batch *b, uint32_t i, const char **p, size_t *len)
{
    if (b->err)
        return b->err;
    if (b->ops[i].err)
        return b->ops[i].err;
    uint32_t start = i ? b->ops[i - 1].end : 0;
    *p = b->out.data + start;
    *len = b->ops[i].end - start;
    return 0;
}

void kv_batch_release(struct kv_batch *b)
{
    if (--b->refs == 0)
        batch_recycle(b);
}

void kv_batch_cache_free(struct kv_core *kc)
{
    struct kv_batch *b;
    while ((b = kc->spare)) {
        kc->spare = b->next_spare;
        batch_free(b);
    }
    kc->nspare = 0;
    for (unsigned i = 0; kc->outbox && i < kv_srv.ncores; i++) {
        if (kc->outbox[i])
            batch_free(kc->outbox[i]);
        kc->outbox[i] = NULL;
    }
    kc->outbox_used = 0;
}
