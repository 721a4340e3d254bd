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
 * ops' `end`/`err`; the sender does not touch the batch then. Back on the sender each answer
 * goes into its op's reply slot (libsn orders them); a big one by reference, so the batch
 * lives until those bytes have left (refs), then goes on the sender core's spare stack (with
 * its buffers) or is freed. Batches are only ever freed on the core that made them.
 *
 * The stack holds as many batches as are usually in flight to the other cores at once: with
 * one request in flight per connection a core sends a small batch at nearly every turn,
 * several are out before the first answer is back (dozens while the owner core waits for its
 * CPU), and the single spare kept before cost a calloc and up to three buffer mallocs (and
 * their frees) for most of them: 0.5-0.7 mallocs per request under get90d1, now ~0.001.
 */
#include "kv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_MAX_OPS   1024
#define BATCH_MAX_BYTES (256u << 10)
#define SPARE_BUF_MAX   (1u << 20)  /* the first spare batch keeps each buffer up to this, */
#define SPARE_MORE_MAX  (8u << 10)  /* the others up to this (~4.5 MB at most in all a core) */
#define REF_MIN         (16u << 10) /* answers this big are sent by reference */
#define SPARES_MAX      64          /* finished batches a core keeps for reuse */

static void batch_free(struct kv_batch *b)
{
    app_outbuf_free(&b->in);
    app_outbuf_free(&b->out);
    app_outbuf_free(&b->ops);
    free(b);
}

static void batch_release(void *arg)
{
    struct kv_batch *b = arg;
    if (--b->refs)
        return;
    struct kv_core *kc = kv_core_self(); /* the sender: batch_back and releases run there */
    size_t keep = kc->nspare ? SPARE_MORE_MAX : SPARE_BUF_MAX;
    if (kc->nspare >= SPARES_MAX || b->in.cap > keep || b->out.cap > keep || b->ops.cap > keep) {
        batch_free(b);
        return;
    }
    b->next_spare = kc->spare;
    kc->spare = b;
    kc->nspare++;
}

static struct kv_op *op_at(const struct kv_batch *b, uint32_t i)
{
    return (struct kv_op *)(void *)b->ops.data + i;
}

/* ---- on the owner core -------------------------------------------------------------------- */

/* How many ops ahead batch_run starts loading a key's hash chain (twice that) and its first
 * item (once that): see mc_store_prefetch. */
#define PREFETCH_AHEAD 4

static void prefetch(struct kv_core *kc, const struct kv_batch *b, uint32_t i, int step)
{
    if (i < b->nops)
        mc_store_prefetch(kc->store, op_at(b, i)->cmd.key.p, op_at(b, i)->cmd.key.len, step);
}

static int batch_run(void *arg, uint64_t *value)
{
    struct kv_batch *b = arg;
    struct kv_core *kc = kv_core_self();
    for (uint32_t i = 0; i < 2 * PREFETCH_AHEAD; i++)
        prefetch(kc, b, i, 0);
    for (uint32_t i = 0; i < b->nops; i++) {
        prefetch(kc, b, i + PREFETCH_AHEAD, 1);
        prefetch(kc, b, i + 2 * PREFETCH_AHEAD, 0);
        struct kv_op *op = op_at(b, i);
        bool get = mc_cmd_route(&op->cmd) == MC_ROUTE_KEYS; /* one key of a get */
        int rc = get ? mc_exec_get_key(kc->store, &op->cmd, op->cmd.key, &b->out)
                     : mc_exec_key(kc->store, &op->cmd, &b->out);
        op->err = rc < 0 ? rc : 0;
        op->end = (uint32_t)b->out.len;
    }
    kc->c.served_ops += b->nops;
    *value = 0;
    return 0;
}

/* ---- back on the sending core ------------------------------------------------------------- */

/*
 * One op's answer into its slot. A big one that makes up at least half of the batch's
 * answers goes by reference (no second copy; keeping the batch for it holds little else).
 */
static void answer(struct kv_batch *b, const struct kv_op *op, uint32_t start)
{
    int err = b->err ? b->err : op->err;
    const char *p = b->out.data + start;
    size_t n = err ? 0 : op->end - start;
    if (n >= REF_MIN && n * 2 >= b->out.len &&
        sn_reply_write_ref(op->reply, p, n, batch_release, b) == 0)
        b->refs++;
    else if (n)
        sn_reply_write(op->reply, p, n);
    kv_conn_answered(op->conn, op->reply, err, n, op->cmd.key.len + op->cmd.data.len);
}

static void batch_back(void *arg, int err, uint64_t value)
{
    (void)value;
    struct kv_batch *b = arg;
    b->err = err;
    for (uint32_t i = 0; i < b->nops; i++)
        if (op_at(b, i)->reply)
            answer(b, op_at(b, i), i ? op_at(b, i - 1)->end : 0);
    batch_release(b);
}

static void batch_send(struct kv_core *kc, struct kv_batch *b)
{
    kc->outbox[b->to] = NULL;
    /* The slices were offsets while `in` could still move; now they become pointers. */
    for (uint32_t i = 0; i < b->nops; i++) {
        struct mc_cmd *c = &op_at(b, i)->cmd;
        c->key.p = b->in.data + (uintptr_t)c->key.p;
        c->data.p = b->in.data + (uintptr_t)c->data.p;
    }
    kc->c.remote_batches++;
    kc->c.remote_ops += b->nops;
    sn_done(sn_call_on(b->to, batch_run, b), batch_back, b);
}

void kv_batch_flush(struct kv_core *kc)
{
    for (unsigned i = 0; i < kv_srv.ncores; i++)
        if (kc->outbox[i])
            batch_send(kc, kc->outbox[i]);
}

static struct kv_batch *outbox_get(struct kv_core *kc, unsigned owner)
{
    struct kv_batch *b = kc->outbox[owner];
    if (b)
        return b;
    if ((b = kc->spare)) {
        kc->spare = b->next_spare;
        kc->nspare--;
    } else if (!(b = calloc(1, sizeof *b)))
        return NULL;
    b->to = owner;
    b->err = 0;
    b->refs = 1; /* until the answers are written */
    b->nops = 0;
    app_outbuf_clear(&b->in);
    app_outbuf_clear(&b->out);
    app_outbuf_clear(&b->ops);
    kc->outbox[owner] = b;
    if (!kc->flush_queued) {
        kc->flush_queued = true;
        sn_schedule(&kc->flush_task);
    }
    return b;
}

int kv_batch_add(struct kv_core *kc, unsigned owner, struct kv_conn *conn, struct sn_reply *reply,
                 const struct mc_cmd *cmd, const struct mc_slice *key)
{
    struct kv_batch *b = outbox_get(kc, owner);
    const struct mc_slice *k = key ? key : &cmd->key;
    /* Everything that can fail first, so a failure leaves the batch as it was. */
    struct kv_op *op;
    if (!b || !app_outbuf_reserve(&b->in, k->len + cmd->data.len) ||
        !(op = (void *)app_outbuf_reserve(&b->ops, sizeof *op)))
        return -ENOMEM;
    app_outbuf_commit(&b->ops, sizeof *op);
    b->nops++;
    op->cmd = *cmd, op->reply = reply, op->conn = conn, op->err = 0; /* end: the owner's */
    op->cmd.key = (struct mc_slice){(const char *)(uintptr_t)b->in.len, k->len};
    app_outbuf_put(&b->in, k->p, k->len);
    op->cmd.data = (struct mc_slice){(const char *)(uintptr_t)b->in.len, cmd->data.len};
    app_outbuf_put(&b->in, cmd->data.p, cmd->data.len);
    op->cmd.keys = op->cmd.args = (struct mc_slice){NULL, 0};
    if (b->nops >= BATCH_MAX_OPS || b->in.len >= BATCH_MAX_BYTES)
        batch_send(kc, b);
    return 0;
}

void kv_batch_cache_free(struct kv_core *kc)
{
    while (kc->spare) {
        struct kv_batch *b = kc->spare;
        kc->spare = b->next_spare;
        batch_free(b);
    }
    kc->nspare = 0;
    for (unsigned i = 0; kc->outbox && i < kv_srv.ncores; i++) {
        if (kc->outbox[i])
            batch_free(kc->outbox[i]);
        kc->outbox[i] = NULL;
    }
}
