/*
 * The mesh's message paths: send, flush, drain, pending, sleep (contract in
 * include/sn/mesh.h, layout in core/mesh_internal.h, overflow in core/mesh_overflow.c).
 *
 * Why no message and no wake-up is lost
 * -------------------------------------
 * Names: for a ring from s to r, W is s's release store of the ring's tail (sn_ring_flush),
 * F_s the seq_cst fence s issues after all of a flush's W and before touching any doorbell,
 * L the relaxed load of r's doorbell word, D the seq_cst fetch_or that sets s's bit (done only
 * when L saw it clear), Z the seq_cst load of r's sleep word that follows. On r: X is the
 * seq_cst exchange that takes a doorbell word in sn_mesh_drain, F_r the seq_cst fence after a
 * non-zero X, R the acquire loads of the tails that follow; A is the seq_cst store of r's
 * sleep word in sn_mesh_sleep_announce, P the seq_cst loads of sn_mesh_pending. All seq_cst
 * operations and fences lie in one total order S.
 *
 * 1. Doorbell invariant: s's bit, once set, stays set until an X of r takes it, and every X
 *    that takes it is followed by F_r and a read of ring s->r until it looks empty (or the bit
 *    is set again by r itself when the drain budget runs out).
 *
 * 2. A flush that sets the bit (D): W is sequenced before D, D is a release RMW and X an
 *    acquire RMW reading D (or a later RMW of the same word), so W happens before R and the
 *    drain that takes the bit sees the published messages.
 *
 * 3. A flush that finds the bit already set (L reads it, no D): L reads a value that precedes,
 *    in the word's modification order, the X that will take the bit. If F_r preceded F_s in
 *    S, L (after F_s) would have to see X or later, which it did not; so F_s precedes F_r, and
 *    R (after F_r) sees W (before F_s). The drain that takes the bit sees the messages.
 *
 * 4. Sleep (Dekker): r does A then P; s does D (or relied on an earlier D0 of its own, case 3)
 *    then Z. All four are seq_cst. If Z precedes A in S, then D precedes P and P sees the bit:
 *    r does not block. Otherwise Z reads A's 1 (or a later value: another sender consumed the
 *    announcement and woke r, or r cancelled, in which case r is awake and will announce again
 *    before blocking, and that announcement follows Z, so its P sees the bit). If the bit was
 *    already set (no D) and r's last X before A took it, case 3 says that drain saw W.
 *    Otherwise the D0 that set it came after r's last X, and the flush that did D0 ran the
 *    same argument with its own Z0, so r either sees the bit in P or is woken.
 *    Exactly one flush turns the sleep word from 1 to 0 (the exchange), so there is one wake
 *    callback per announcement.
 *
 * Cost: while r is awake, a flush pays per destination one relaxed load of the doorbell (plus
 * one fetch_or when r has drained since the last flush) and one load of the sleep word, and
 * one fence per flush. A drain that finds nothing pays one load per doorbell word.
 */
#include "core/mesh_internal.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

int sn_mesh_send(struct sn_mesh *mesh, unsigned from, unsigned to, const struct sn_msg *msg)
{
    if (sn_unlikely(from >= mesh->ncores || to >= mesh->ncores || from == to || !msg || !msg->fn))
        return -EINVAL;
    struct sn__mesh_core *core = &mesh->cores[from];

    /* Once anything waits in overflow, newer messages queue behind it (FIFO per pair). */
    if (sn_likely(core->ovf[to].count == 0)) {
        void *slot = sn_ring_claim(core->out[to]);
        if (sn_likely(slot != NULL)) {
            memcpy(slot, msg, sizeof *msg);
            sn__mesh_mark_dirty(core, to);
            sn__mesh_count(&core->stats.sent, 1);
            return 0;
        }
    }
    int rc = sn__mesh_ovf_push(mesh, core, to, msg);
    if (rc < 0)
        return rc;
    sn__mesh_mark_dirty(core, to);
    sn__mesh_count(&core->stats.sent, 1);
    return 0;
}

/* Sets sender `from`'s bit in `to`'s doorbell; the RMW is skipped when the bit is set. */
static void ring_bell(const struct sn_mesh *mesh, unsigned from, unsigned to)
{
    _Atomic uint64_t *word = &mesh->inboxes[to]->bell[from / 64];
    uint64_t bit = (uint64_t)1 << (from % 64);

    if (!(atomic_load_explicit(word, memory_order_relaxed) & bit))
        atomic_fetch_or_explicit(word, bit, memory_order_seq_cst);
}

/* Consumes `to`'s sleep announcement, if any, and wakes it. Returns 1 when it woke `to`. */
static unsigned wake_if_asleep(const struct sn_mesh *mesh, unsigned to, sn_mesh_wake_fn wake,
                               void *ctx)
{
    _Atomic uint32_t *sleeping = &mesh->inboxes[to]->sleeping;

    if (sn_likely(!atomic_load_explicit(sleeping, memory_order_seq_cst)))
        return 0;
    if (!atomic_exchange_explicit(sleeping, 0, memory_order_seq_cst))
        return 0; /* another sender got there first and woke it */
    wake(ctx, to);
    return 1;
}

/* Publishes what core `core` staged for `to`, overflow first. Returns the count published. */
static uint32_t publish(struct sn__mesh_core *core, unsigned to)
{
    struct sn_ring *r = core->out[to];

    if (core->ovf[to].count)
        sn__mesh_ovf_move(core, to, r);
    uint32_t staged = sn_ring_staged(r);
    if (staged)
        sn_ring_flush(r);
    return staged;
}

/* Keeps in the dirty list only the destinations that still have overflow to move. */
static void compact_dirty(struct sn__mesh_core *core)
{
    unsigned keep = 0;
    for (unsigned i = 0; i < core->ndirty; i++) {
        unsigned to = core->dirty[i];
        if (core->ovf[to].count)
            core->dirty[keep++] = to;
        else
            core->is_dirty[to] = 0;
    }
    core->ndirty = keep;
}

unsigned sn_mesh_flush(struct sn_mesh *mesh, unsigned from, sn_mesh_wake_fn wake, void *ctx)
{
    if (sn_unlikely(from >= mesh->ncores))
        return 0;
    struct sn__mesh_core *core = &mesh->cores[from];
    unsigned total = 0, nrung = 0, woken = 0;

    for (unsigned i = 0; i < core->ndirty; i++) {
        unsigned to = core->dirty[i];
        uint32_t n = publish(core, to);
        if (n) {
            total += n;
            core->rung[nrung++] = to;
        }
    }
    compact_dirty(core);
    if (!nrung)
        return 0;
    /* F_s: orders every tail store above before the doorbell loads below (case 3). */
    atomic_thread_fence(memory_order_seq_cst);
    for (unsigned i = 0; i < nrung; i++) {
        ring_bell(mesh, from, core->rung[i]);
        if (wake)
            woken += wake_if_asleep(mesh, core->rung[i], wake, ctx);
    }
    if (woken)
        sn__mesh_count(&core->stats.wakes, woken);
    return total;
}

bool sn_mesh_backlog(const struct sn_mesh *mesh, unsigned from)
{
    if (from >= mesh->ncores)
        return false;
    return sn__mesh_counter(&mesh->cores[from].stats.overflow_now) != 0;
}

bool sn_mesh_pending(const struct sn_mesh *mesh, unsigned me)
{
    if (me >= mesh->ncores)
        return false;
    _Atomic uint64_t *bell = mesh->inboxes[me]->bell;
    for (unsigned w = 0; w < mesh->nwords; w++)
        if (atomic_load_explicit(&bell[w], memory_order_seq_cst))
            return true;
    return false;
}

/*
 * Runs up to `limit` messages from one ring, zero-copy: each message is handled in its slot,
 * and a run of slots is released with one store after its handlers return.
 */
static unsigned drain_ring(struct sn_ring *r, unsigned from, unsigned limit)
{
    unsigned done = 0;
    uint32_t stride = sn_ring_stride(r);

    while (done < limit) {
        void *first;
        int n = sn_ring_peek(r, &first);
        if (n <= 0)
            break;
        uint32_t k = (uint32_t)n < limit - done ? (uint32_t)n : limit - done;
        const unsigned char *p = first;
        for (uint32_t i = 0; i < k; i++, p += stride) {
            const struct sn_msg *msg = (const struct sn_msg *)p;
            msg->fn(msg, from);
        }
        sn_ring_consume(r, k);
        done += k;
    }
    return done;
}

/* Drains the rings whose bits are in `bits` (doorbell word `w`). Stops at `limit`. */
static unsigned drain_word(struct sn_mesh *mesh, unsigned me, unsigned w, uint64_t bits,
                           unsigned limit)
{
    struct sn__mesh_core *core = &mesh->cores[me];
    unsigned done = 0;

    while (bits) {
        unsigned from = w * 64 + (unsigned)__builtin_ctzll(bits);
        done += drain_ring(core->in[from], from, limit - done);
        if (done == limit) {
            /* Out of budget: give back this ring's bit (it may not be empty) and the rest. */
            atomic_fetch_or_explicit(&mesh->inboxes[me]->bell[w], bits, memory_order_release);
            break;
        }
        bits &= bits - 1;
    }
    return done;
}

unsigned sn_mesh_drain(struct sn_mesh *mesh, unsigned me, unsigned budget)
{
    if (sn_unlikely(me >= mesh->ncores))
        return 0;
    _Atomic uint64_t *bell = mesh->inboxes[me]->bell;
    unsigned limit = budget ? budget : UINT_MAX;
    unsigned done = 0;

    for (unsigned w = 0; w < mesh->nwords && done < limit; w++) {
        if (!atomic_load_explicit(&bell[w], memory_order_relaxed))
            continue; /* the idle poll: one plain load, no RMW */
        uint64_t bits = atomic_exchange_explicit(&bell[w], 0, memory_order_seq_cst); /* X */
        if (!bits)
            continue;
        atomic_thread_fence(memory_order_seq_cst); /* F_r: see case 3 at the top */
        done += drain_word(mesh, me, w, bits, limit - done);
    }
    if (done)
        sn__mesh_count(&mesh->cores[me].stats.received, done);
    return done;
}

void sn_mesh_sleep_announce(struct sn_mesh *mesh, unsigned me)
{
    if (me < mesh->ncores)
        atomic_store_explicit(&mesh->inboxes[me]->sleeping, 1, memory_order_seq_cst); /* A */
}

void sn_mesh_sleep_cancel(struct sn_mesh *mesh, unsigned me)
{
    if (me < mesh->ncores)
        atomic_store_explicit(&mesh->inboxes[me]->sleeping, 0, memory_order_seq_cst);
}
