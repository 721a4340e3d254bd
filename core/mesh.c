/*
 * The mesh's message paths: send, flush, drain, pending, sleep (contract in
 * include/sn/mesh.h, layout in core/mesh_internal.h, overflow in core/mesh_overflow.c).
 *
 * Why no message and no wake-up is lost
 * -------------------------------------
 * Names: for a ring from s to r, W is s's release store of the ring's tail (sn_ring_flush,
 * at a flush or at an early publication in sn_mesh_send), F_s the seq_cst fence s issues
 * after W and before touching the doorbell, L the relaxed load of r's doorbell word, D the
 * seq_cst fetch_or that sets s's bit (done only when L saw it clear), Z the seq_cst load of
 * r's sleep word that a flush does next. On r: X is the seq_cst fetch_and with which
 * sn_mesh_drain clears s's bit (only after the ring was found empty SN__MESH_LINGER times in
 * a row), F_r the seq_cst fence after X, R' the acquire reads of the ring that follow (the
 * "last look"); A is the seq_cst store of r's sleep word in sn_mesh_sleep_announce, P the
 * seq_cst loads of sn_mesh_pending (and, for bits r keeps set while their rings are empty,
 * a seq_cst fence F_p and acquire reads of those rings). All seq_cst operations and fences
 * lie in one total order S.
 *
 * 1. Doorbell invariant: s's bit, once set, stays set until an X of r clears it, and while it
 *    is set every drain reads ring s->r (r may keep it set after the ring runs empty: the
 *    bit then "lingers"). Every X is followed by F_r and a last look at the ring.
 *
 * 2. A flush that sets the bit (D): W is sequenced before D, D is a release RMW and X an
 *    acquire RMW reading D (or a later RMW of the same word), so W happens before R': the last
 *    look before the bit is cleared sees the message, if no earlier drain did.
 *
 * 3. A flush that finds the bit set (L reads it, no D): either no X follows in the word's
 *    modification order, and r keeps reading the ring (1) until it sees W; or L reads a value
 *    that precedes some X. If F_r preceded F_s in S, L (after F_s) would have to see X or
 *    later, which it did not; so F_s precedes F_r, and R' (after F_r) sees W.
 *
 * 4. Sleep (Dekker): r does A then P; s does D or F_s-then-L-saw-set, then Z. If s set the bit
 *    (D), D and Z against A and P are four seq_cst operations: either P sees the bit (a bit
 *    that r does not keep lingering, so P counts it) and r does not block, or Z reads A's 1.
 *    If the bit was lingering (L saw it set and r still kept it), F_s and F_p order the two
 *    sides: if F_s precedes F_p, r's read of the ring after F_p sees W and r does not block;
 *    otherwise A (before F_p) precedes Z (after F_s), so Z reads A's 1 (or a later value:
 *    another sender consumed the announcement and woke r, or r cancelled, in which case r is
 *    awake and will announce again before blocking). If the bit was set but is not one r
 *    keeps lingering, P sees it and r does not block. Exactly one flush turns the sleep word
 *    from 1 to 0 (the exchange), so there is one wake callback per announcement.
 *
 * 5. Summary (more than 64 cores): bit w of r's summary word says that doorbell word w may
 *    have bits, so a drain reads one word, not ceil(N / 64). A sender that set a bit (D) then
 *    loads the summary (L_s, seq_cst) and sets bit w (D_s) if it is clear. r clears bit w
 *    (X_s, seq_cst) only after its X left word w empty, then issues a fence F_s' and loads
 *    word w again, setting bit w back if the word is not empty. If L_s saw bit w set and X_s
 *    then cleared it, L_s precedes X_s in S, so D precedes F_s' and the load after F_s' sees
 *    D's bit (or a later value with it): r marks the word again. Otherwise L_s saw the bit
 *    clear, or cleared by X_s, and the sender sets it itself. So a word with a bit set by D
 *    is marked once its sender's ring_bell returns; a bit found set (case 3) needs no mark,
 *    the last look catches its message. sn_mesh_pending reads the words themselves.
 *
 * Cost: while r is awake and keeps the bit, a flush pays per destination one relaxed load of
 * the doorbell (a line nobody writes while the pair keeps talking) and one load of the sleep
 * word, and one fence per flush; a drain pays one load per marked doorbell word and one tail load
 * per watched ring. The read-modify-writes happen only when a pair starts talking again after
 * SN__MESH_LINGER empty drains. A drain that finds nothing pays one load (the doorbell word,
 * or with more than 64 cores the summary).
 */
#include "core/mesh_internal.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

/* Sets sender `from`'s bit in `to`'s doorbell; the RMW is skipped when the bit is set. A
 * sender that set a bit marks its word in the summary (D_s, case 5) unless it is marked. */
static void ring_bell(const struct sn_mesh *mesh, unsigned from, unsigned to)
{
    struct sn__mesh_inbox *inbox = mesh->inboxes[to];
    _Atomic uint64_t *word = &inbox->bell[from / 64];
    uint64_t bit = (uint64_t)1 << (from % 64);

    if (atomic_load_explicit(word, memory_order_relaxed) & bit)
        return;
    atomic_fetch_or_explicit(word, bit, memory_order_seq_cst); /* D */
    if (mesh->nwords == 1)
        return;
    uint64_t wbit = (uint64_t)1 << (from / 64);
    if (!(atomic_load_explicit(&inbox->summary, memory_order_seq_cst) & wbit)) /* L_s */
        atomic_fetch_or_explicit(&inbox->summary, wbit, memory_order_seq_cst); /* D_s */
}

/*
 * Publishes ring from -> to in the middle of a turn: W, F_s and the doorbell (cases 2 and 3
 * above). The sleep word is left to the next sn_mesh_flush, which has the wake callback and
 * visits `to` again because of the SN__MESH_EARLY mark.
 */
static void publish_early(const struct sn_mesh *mesh, struct sn__mesh_core *core, unsigned from,
                          unsigned to, struct sn_ring *r)
{
    core->early += sn_ring_staged(r);
    if (sn__mesh_stamp_needed(core, to, r))
        sn__mesh_stamp_through(mesh, core, to, r->prod.index);
    sn_ring_flush(r);
    atomic_thread_fence(memory_order_seq_cst); /* F_s */
    ring_bell(mesh, from, to);
    core->is_dirty[to] |= SN__MESH_EARLY;
}

/*
 * Takes ownership, ahead of time, of the slot line PREFETCH_LINES lines past the producer,
 * once the consumer has handed it back (it lies below the cached head plus the capacity).
 * Every slot line was last read by the consumer, so each first store into one waits for the
 * line to come back from the consumer's cache; stores retire in order, so without this the
 * producer stalls behind one line transfer after another (perf put most of the send path on
 * the store into the slot). A write prefetch turns those waits into transfers in flight.
 * Slots are 32 bytes and start on a line (include/sn/ring.h), so a line holds two.
 */
#define PREFETCH_LINES 16
#define SLOTS_PER_LINE (SN_CACHELINE / sizeof(struct sn_msg))

static inline void prefetch_write(const void *p)
{
#if defined(__x86_64__) || defined(__i386__)
    /* PREFETCHW, used only when CPUID says the CPU has it (mesh->prefetchw). */
    __asm__ volatile("prefetchw %0" : : "m"(*(const char *)p));
#else
    __builtin_prefetch(p, 1);
#endif
}

static inline void prefetch_ahead(const struct sn_ring *r)
{
    const struct sn__ring_side *p = &r->prod;
    uint64_t ahead = p->index + PREFETCH_LINES * SLOTS_PER_LINE;

    if (p->index % SLOTS_PER_LINE == 0 && ahead - p->other_cache <= p->mask)
        prefetch_write(p->slots + (size_t)(ahead & p->mask) * sizeof(struct sn_msg));
}

/* sn_mesh_send when the ring is full or overflow waits: out of line, so the common send
 * keeps no registers for it. */
__attribute__((noinline)) static int send_overflow(struct sn_mesh *mesh, struct sn__mesh_core *core,
                                                   unsigned to, const struct sn_msg *msg)
{
    int rc = sn__mesh_ovf_push(mesh, core, to, msg);
    if (rc < 0)
        return rc;
    if (sn_unlikely(core->stamp_next != NULL)) /* its turn is its index behind the ring's */
        sn__mesh_stamp_through(mesh, core, to, core->out[to]->prod.index + core->ovf[to].count);
    sn__mesh_mark_dirty(core, to);
    sn__mesh_count(&core->stats.sent, 1);
    return 0;
}

int sn_mesh_send(struct sn_mesh *mesh, unsigned from, unsigned to, const struct sn_msg *msg)
{
    if (sn_unlikely(from >= mesh->ncores || to >= mesh->ncores || from == to || !msg || !msg->fn))
        return -EINVAL;
    struct sn__mesh_core *core = &mesh->cores[from];

    /* Once anything waits in overflow, newer messages queue behind it (FIFO per pair). */
    if (sn_likely(core->ovf[to].count == 0)) {
        struct sn_ring *r = core->out[to];
        void *slot = sn_ring_claim(r);
        if (sn_likely(slot != NULL)) {
            if (mesh->prefetchw)
                prefetch_ahead(r);
            memcpy(slot, msg, sizeof *msg);
            sn__mesh_mark_dirty(core, to);
            sn__mesh_count(&core->stats.sent, 1);
            if (sn_unlikely(sn_ring_staged(r) >= mesh->batch))
                publish_early(mesh, core, from, to, r);
            return 0;
        }
    }
    return send_overflow(mesh, core, to, msg);
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
static uint32_t publish(const struct sn_mesh *mesh, struct sn__mesh_core *core, unsigned to)
{
    struct sn_ring *r = core->out[to];

    if (core->ovf[to].count)
        sn__mesh_ovf_move(core, to, r);
    uint32_t staged = sn_ring_staged(r);
    if (staged) {
        if (sn__mesh_stamp_needed(core, to, r)) /* on the tail's line, just before the tail */
            sn__mesh_stamp_through(mesh, core, to, r->prod.index);
        sn_ring_flush(r);
    }
    return staged;
}

/* Keeps in the dirty list only the destinations that still have overflow to move. */
static void compact_dirty(struct sn__mesh_core *core)
{
    unsigned keep = 0;
    for (unsigned i = 0; i < core->ndirty; i++) {
        unsigned to = core->dirty[i];
        if (core->ovf[to].count) {
            core->dirty[keep++] = to;
            core->is_dirty[to] = SN__MESH_DIRTY;
        } else {
            core->is_dirty[to] = 0;
        }
    }
    core->ndirty = keep;
}

unsigned sn_mesh_flush(struct sn_mesh *mesh, unsigned from, sn_mesh_wake_fn wake, void *ctx)
{
    if (sn_unlikely(from >= mesh->ncores))
        return 0;
    struct sn__mesh_core *core = &mesh->cores[from];
    unsigned total = core->early, nrung = 0, woken = 0;

    core->early = 0;
    for (unsigned i = 0; i < core->ndirty; i++) {
        unsigned to = core->dirty[i];
        uint32_t n = publish(mesh, core, to);
        total += n;
        if (n || (core->is_dirty[to] & SN__MESH_EARLY))
            core->rung[nrung++] = to;
    }
    compact_dirty(core);
    if (!nrung)
        return total;
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

/* True when the consumer sees a published message in `r`. Consumer only. */
static bool ring_has_messages(struct sn_ring *r)
{
    void *first;
    return sn_ring_peek(r, &first) > 0;
}

bool sn_mesh_pending(const struct sn_mesh *mesh, unsigned me)
{
    if (me >= mesh->ncores)
        return false;
    const struct sn__mesh_core *core = &mesh->cores[me];
    _Atomic uint64_t *bell = mesh->inboxes[me]->bell;
    bool lingering = false;

    for (unsigned w = 0; w < mesh->nwords; w++) {
        uint64_t bits = atomic_load_explicit(&bell[w], memory_order_seq_cst); /* P */
        if (bits & ~core->linger[w])
            return true; /* rung since the last drain */
        lingering |= core->linger[w] != 0;
    }
    if (!lingering)
        return false;
    /* Bits kept set: senders skip the doorbell for them, so look at the rings (case 4). */
    atomic_thread_fence(memory_order_seq_cst); /* F_p */
    for (unsigned w = 0; w < mesh->nwords; w++)
        for (uint64_t bits = core->linger[w]; bits; bits &= bits - 1)
            if (ring_has_messages(core->in[w * 64 + (unsigned)__builtin_ctzll(bits)]))
                return true;
    return false;
}

static inline const unsigned char *run_msgs(const unsigned char *p, uint32_t stride, unsigned from,
                                            uint64_t n)
{
    for (uint64_t i = 0; i < n; i++, p += stride) {
        const struct sn_msg *msg = (const struct sn_msg *)p;
        msg->fn(msg, from);
    }
    return p;
}

/*
 * Runs the k messages at `p` (ring indices from the consumer's index on), recording the age
 * of each stamped one just before it runs, and looks at the ring's stamps first when the
 * batch reaches check_at (core/mesh_delay.c).
 */
static void run_sampled(struct sn__mesh_core *core, struct sn_ring *r, const unsigned char *p,
                        unsigned from, uint32_t k)
{
    struct sn__mesh_stamps *st = &core->stamps[from];
    uint32_t stride = sn_ring_stride(r);
    uint64_t at = r->cons.index, end = at + k;

    if (end > st->check_at)
        sn__mesh_stamps_load(st, r);
    while (st->next < end) {
        p = run_msgs(p, stride, from, st->next - at);
        at = st->next;
        sn__mesh_stamp_record(core, from, st);
    }
    run_msgs(p, stride, from, end - at);
    st->watch = st->next < st->check_at ? st->next : st->check_at;
}

/*
 * Runs up to `limit` messages from one ring, zero-copy: each message is handled in its slot,
 * and slots are handed back (one head store) every SN__MESH_BATCH messages at most, so a
 * sender filling the ring gets room early. Returns fewer than `limit` only when it found the
 * ring empty.
 */
static unsigned drain_ring(struct sn__mesh_core *core, unsigned from, unsigned limit)
{
    struct sn_ring *r = core->in[from];
    unsigned done = 0;
    uint32_t stride = sn_ring_stride(r);

    while (done < limit) {
        void *first;
        int n = sn_ring_peek(r, &first);
        if (n <= 0)
            break;
        uint32_t k = (uint32_t)n < limit - done ? (uint32_t)n : limit - done;
        if (k > SN__MESH_BATCH)
            k = SN__MESH_BATCH;
        /* With sampling, a batch that reaches no stamp nor the point where the notes need a
         * look runs plain too (one compare). */
        if (sn_likely(core->stamps == NULL || r->cons.index + k <= core->stamps[from].watch))
            run_msgs(first, stride, from, k);
        else
            run_sampled(core, r, first, from, k);
        sn_ring_consume(r, k);
        done += k;
    }
    return done;
}

/*
 * Doorbell word `w` of core `me` went empty: unmarks it in the summary (X_s), then looks at
 * the word again after a fence and marks it back if a sender set a bit meanwhile (case 5).
 */
static void summary_forget(struct sn_mesh *mesh, unsigned me, unsigned w)
{
    struct sn__mesh_inbox *inbox = mesh->inboxes[me];
    uint64_t wbit = (uint64_t)1 << w;

    if (sn_unlikely(mesh->test_before_unmark != NULL))
        mesh->test_before_unmark(mesh, me, w);
    atomic_fetch_and_explicit(&inbox->summary, ~wbit, memory_order_seq_cst); /* X_s */
    atomic_thread_fence(memory_order_seq_cst);                               /* F_s' */
    if (atomic_load_explicit(&inbox->bell[w], memory_order_relaxed))
        atomic_fetch_or_explicit(&inbox->summary, wbit, memory_order_relaxed);
}

/*
 * Stops watching ring from -> me, which stayed empty for SN__MESH_LINGER drains: clears the
 * sender's bit (X), then takes the last look (F_r, R') that catches a flush which saw the bit
 * still set and skipped the doorbell (case 3). Returns the messages that look handled; when
 * there were some, the bit is set again and the ring watched as before.
 */
static unsigned unwatch(struct sn_mesh *mesh, unsigned me, unsigned from, unsigned limit)
{
    struct sn__mesh_core *core = &mesh->cores[me];
    struct sn__mesh_inbox *inbox = mesh->inboxes[me];
    unsigned w = from / 64;
    _Atomic uint64_t *word = &inbox->bell[w];
    uint64_t bit = (uint64_t)1 << (from % 64);

    uint64_t old = atomic_fetch_and_explicit(word, ~bit, memory_order_seq_cst); /* X */
    atomic_thread_fence(memory_order_seq_cst);                                  /* F_r */
    core->linger[w] &= ~bit;
    core->quiet[from] = 0;
    if (mesh->nwords > 1 && !(old & ~bit))
        summary_forget(mesh, me, w);
    unsigned n = drain_ring(core, from, limit); /* R' */
    if (n) {
        atomic_fetch_or_explicit(word, bit, memory_order_relaxed);
        if (mesh->nwords > 1)
            atomic_fetch_or_explicit(&inbox->summary, (uint64_t)1 << w, memory_order_relaxed);
    }
    return n;
}

/* Drains the rings whose bits are in `bits` (doorbell word `w`). Stops at `limit`. */
static unsigned drain_word(struct sn_mesh *mesh, unsigned me, unsigned w, uint64_t bits,
                           unsigned limit)
{
    struct sn__mesh_core *core = &mesh->cores[me];
    unsigned done = 0;

    while (bits && done < limit) {
        unsigned from = w * 64 + (unsigned)__builtin_ctzll(bits);
        uint64_t bit = bits & -bits;
        unsigned left = limit - done;
        bits &= bits - 1;
        unsigned n = drain_ring(core, from, left);
        if (n == 0 && core->quiet[from] + 1u >= mesh->linger) {
            n = unwatch(mesh, me, from, left);
            if (n == 0)
                continue; /* no longer watched: the sender's next flush rings again */
        }
        done += n;
        if (n == left) {
            /* Out of budget: the ring may hold more, its bit stays set for the next drain. */
            core->linger[w] &= ~bit;
            core->quiet[from] = 0;
        } else {
            /* Found empty: keep the bit set and look again next time (it lingers). */
            core->linger[w] |= bit;
            core->quiet[from] = n ? 1 : (uint16_t)(core->quiet[from] + 1);
        }
    }
    return done;
}

unsigned sn_mesh_drain(struct sn_mesh *mesh, unsigned me, unsigned budget)
{
    if (sn_unlikely(me >= mesh->ncores))
        return 0;
    struct sn__mesh_inbox *inbox = mesh->inboxes[me];
    unsigned limit = budget ? budget : UINT_MAX;
    unsigned done = 0;
    /* The doorbell words that may have bits: one load at any core count. */
    uint64_t words =
        mesh->nwords == 1 ? 1 : atomic_load_explicit(&inbox->summary, memory_order_relaxed);

    while (words && done < limit) {
        unsigned w = (unsigned)__builtin_ctzll(words);
        words &= words - 1;
        /* One plain load: no read-modify-write on the shared line while rings are busy. */
        uint64_t bits = atomic_load_explicit(&inbox->bell[w], memory_order_relaxed);
        if (bits)
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
