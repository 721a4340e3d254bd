/*
 * Internal layout of the mesh (include/sn/mesh.h), shared by core/mesh.c (hot paths),
 * core/mesh_setup.c (create, destroy, stats) and core/mesh_overflow.c (the overflow FIFOs).
 * Tests of the mesh may include it to look at the layout.
 *
 * Who writes what decides the layout: struct sn_mesh is read-only after creation; each
 * struct sn__mesh_core is written only by its own core (its counters sit on their own line
 * because other threads read them); each struct sn__mesh_inbox is written by the senders
 * (doorbell bits, sleep consumption) and by its receiver, with the doorbell and the sleep word
 * on separate lines so a receiver polling its doorbell is not disturbed by sleep traffic.
 */
#ifndef SN_CORE_MESH_INTERNAL_H
#define SN_CORE_MESH_INTERNAL_H

#include <sn/mesh.h>
#include <sn/ring.h>

#include <stdatomic.h>

/*
 * Largest batch a sender stages for one destination before publishing it on its own, without
 * waiting for sn_mesh_flush (rings of fewer than 4 slots: never). Mid-turn publication lets
 * the receiver start on a long batch while the sender is still producing it, so two cores
 * exchanging many messages work side by side instead of taking turns.
 */
#define SN__MESH_BATCH 64

/*
 * A receiver keeps a sender's doorbell bit set (and keeps looking at its ring) for this many
 * drains that find the ring empty after it last delivered. While the bit stays set, that
 * sender's flushes see it set and skip the read-modify-write, and the receiver does not
 * clear the line the sender reads: the doorbell line stops moving between the two cores
 * for as long as they keep talking.
 */
#define SN__MESH_LINGER 256

/*
 * The default ring capacity shrinks as the core count grows, so that one core's incoming rings
 * hold about this many slots in all (1 MiB of 32-byte messages), but never below the minimum
 * (core/mesh_setup.c, default_capacity).
 */
#define SN__MESH_INBOUND_SLOTS        32768u
#define SN__MESH_MIN_DEFAULT_CAPACITY 64u

/* Messages per overflow chunk: a 32-byte header plus 127 messages make one 4 KiB block. */
#define SN__MESH_CHUNK_MSGS 127

struct sn__mesh_chunk {
    struct sn__mesh_chunk *next;
    uint32_t begin; /* oldest message not yet moved into the ring */
    uint32_t end;   /* next free slot */
    uint64_t pad[2];
    struct sn_msg msgs[SN__MESH_CHUNK_MSGS];
};
_Static_assert(sizeof(struct sn__mesh_chunk) == 4096, "an overflow chunk is one 4 KiB block");

/*
 * The overflow FIFO of one ordered pair, on the sender: a list of chunks, oldest first, plus
 * at most one spare chunk kept when the FIFO empties so a ring that fills now and then does
 * not cost a malloc/free pair each time.
 */
struct sn__mesh_ovf {
    struct sn__mesh_chunk *head;
    struct sn__mesh_chunk *tail;
    struct sn__mesh_chunk *spare;
    size_t count; /* messages waiting */
};

/* One core's counters: written only by that core, read (relaxed) by anyone. */
struct sn__mesh_counters {
    _Atomic uint64_t sent;
    _Atomic uint64_t received;
    _Atomic uint64_t overflowed;
    _Atomic uint64_t overflow_now;
    _Atomic uint64_t overflow_peak;
    _Atomic uint64_t overflow_bytes;
    _Atomic uint64_t overflow_rejected;
    _Atomic uint64_t wakes;
};
_Static_assert(sizeof(struct sn__mesh_counters) <= SN_CACHELINE, "counters fit one line");

/*
 * What senders and the receiver share for one receiving core: the doorbell (one bit per
 * sender, set by a flush that published to this core, taken by its drain, and a summary of
 * its words) and the sleep word
 * (set by sn_mesh_sleep_announce, consumed by the one flush that wakes the core). It starts
 * the core's block from the core's allocator, ahead of the core's private arrays.
 */
struct sn__mesh_inbox {
    SN_CACHE_ALIGNED _Atomic uint32_t sleeping;
    /* With more than 64 cores (nwords > 1): bit w set while doorbell word w may have bits, so
     * an idle drain reads one word at any core count. Set by the sender that sets a bit in an
     * empty word, cleared by the receiver when it empties a word (core/mesh.c, case 5). */
    SN_CACHE_ALIGNED _Atomic uint64_t summary;
    _Atomic uint64_t bell[]; /* ceil(ncores / 64) words */
};
_Static_assert(SN_MESH_MAX_CORES <= 64 * 64, "one summary word covers every doorbell word");

/*
 * One core's private state. Written only by the thread acting as this core. The arrays live in
 * the core's block (after its inbox), so no two cores' arrays share a cache line.
 */
struct sn__mesh_core {
    /* Sender side. */
    SN_CACHE_ALIGNED struct sn_ring **out; /* out[to]: ring this -> to (NULL for itself) */
    struct sn__mesh_ovf *ovf;              /* ovf[to] */
    unsigned *dirty;   /* destinations with staged or overflowed messages, no duplicates */
    unsigned *rung;    /* scratch: destinations a flush published to */
    uint8_t *is_dirty; /* is_dirty[to]: SN__MESH_DIRTY (in dirty[]) | SN__MESH_EARLY */
    unsigned ndirty;
    unsigned early; /* messages published early (by send) since the last flush */
    /* Receiver side. */
    struct sn_ring **in; /* in[from]: ring from -> this (NULL for itself) */
    struct sn__mesh_inbox *inbox;
    uint64_t *linger; /* [nwords]: bits kept set in the doorbell while their rings are empty */
    uint16_t *quiet;  /* quiet[from]: drains that found ring from -> this empty in a row */
    /* Queue-delay sampling (core/mesh_delay.c), NULL when off. The arrays live in the
     * core's block, on no line another core's arrays share. */
    struct sn__mesh_delay *_Atomic *delay; /* delay[from]: histogram, made at the first stamp */
    struct sn__mesh_stamps *stamps;        /* stamps[from]: copies of ring from -> this's notes */
    uint64_t *stamp_next; /* stamp_next[to]: ring index of the next message to stamp */
    /* Read by other threads through sn_mesh_stats. */
    SN_CACHE_ALIGNED struct sn__mesh_counters stats;
};
_Static_assert(sizeof(struct sn__mesh_core) % SN_CACHELINE == 0, "cores do not share lines");

/* is_dirty[to] flags. */
enum {
    SN__MESH_DIRTY = 1, /* `to` is in the dirty list */
    SN__MESH_EARLY = 2, /* published to `to` by sn_mesh_send since the last flush */
};

/* Read-only after sn_mesh_create, so any core may read it freely. */
struct sn_mesh {
    unsigned ncores;
    unsigned nwords;        /* doorbell words per receiver */
    uint32_t batch;         /* staged messages that make a send publish (UINT32_MAX: never) */
    bool prefetchw;         /* the CPU has a write prefetch (x86: CPUID PRFCHW) */
    unsigned linger;        /* SN__MESH_LINGER, or what a test set (sn__mesh_set_linger) */
    size_t overflow_limit;  /* messages per sender */
    unsigned sample_every;  /* queue-delay stamp every this many messages per pair, 0: off */
    size_t inbox_size;      /* bytes of a struct sn__mesh_inbox, whole lines */
    size_t block_size;      /* bytes per core from its allocator: inbox, then private arrays */
    struct sn_ring **rings; /* rings[from * ncores + to] */
    struct sn__mesh_inbox **inboxes;        /* inboxes[to] */
    const struct sn_allocator **allocators; /* allocators[to]: NULL for the default */
    struct sn__mesh_core *cores;            /* ncores entries */
    /* Tests only (NULL otherwise): called by a receiver that emptied doorbell word `word`,
     * just before it unmarks the word in its summary, so a test can act as a sender in that
     * moment (tests/test_mesh.c). */
    void (*test_before_unmark)(struct sn_mesh *mesh, unsigned me, unsigned word);
};

/* Single-writer counter update: no read-modify-write needed, only tear-free access. */
static inline void sn__mesh_count(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline uint64_t sn__mesh_counter(const _Atomic uint64_t *c)
{
    return atomic_load_explicit((_Atomic uint64_t *)c, memory_order_relaxed);
}

/* Records `to` as needing a flush from `core`, once. Core-private. */
static inline void sn__mesh_mark_dirty(struct sn__mesh_core *core, unsigned to)
{
    if (!core->is_dirty[to]) {
        core->is_dirty[to] = SN__MESH_DIRTY;
        core->dirty[core->ndirty++] = to;
    }
}

/*
 * Appends a copy of `msg` to the overflow FIFO for `to` (core/mesh_overflow.c). 0, -ENOBUFS
 * past the sender's overflow limit, -ENOMEM. Sender only.
 */
int sn__mesh_ovf_push(const struct sn_mesh *mesh, struct sn__mesh_core *core, unsigned to,
                      const struct sn_msg *msg);

/* Moves the oldest overflowed messages for `to` into ring `r` (staged) while it has room. */
void sn__mesh_ovf_move(struct sn__mesh_core *core, unsigned to, struct sn_ring *r);

/*
 * Tests only, before any message moves: sets how many empty drains a doorbell bit lingers
 * (1: cleared at the first empty drain, so the clear-and-look-again path runs all the time).
 */
void sn__mesh_set_linger(struct sn_mesh *mesh, unsigned drains);

/*
 * Queue-delay sampling (core/mesh_delay.c). A sampled message's stamp (its ring index and
 * enqueue time) waits in a note on its ring's tail line (include/sn/ring.h); the receiver
 * copies a ring's notes each time it sees a new tail, and records the age of each stamp just
 * before it handles the stamped message.
 */
struct sn__mesh_delay;

/* Notes that hold stamps; the last note holds the index of the next message to stamp (it moves
 * with every stamp written), so a receiver copies the others only when a stamp came. */
#define SN__MESH_STAMPS      (SN_RING_NOTES - 1)
#define SN__MESH_STAMP_COUNT (SN_RING_NOTES - 1)

/*
 * The receiver's copy of one source ring's stamps. Receiver only. Stamps of a pair are
 * sample_every messages apart, so after the last stamp seen, at `expect - every`, the next
 * one cannot come before `expect`: the notes need a look only once the drain reaches
 * check_at (that, or the tail of the last look, whichever is later), and a batch that ends
 * at or before `watch` runs with no look at the stamps at all.
 */
struct sn__mesh_stamps {
    uint64_t watch;     /* min(next, check_at): batches ending at or before it are plain */
    uint64_t next;      /* ring index of the next stamped message known, UINT64_MAX: none */
    uint64_t check_at;  /* the first ring index that may carry a stamp not copied yet */
    uint64_t expect;    /* where the stamp after the last one seen is due */
    uint64_t written;   /* the ring's stamp mark (last note) at the last copy */
    uint32_t next_time; /* next's stamp time (core/stamp_clock.h) */
    uint32_t every;     /* the mesh's sample_every */
    uint64_t note[SN__MESH_STAMPS]; /* the copied stamps */
};

/*
 * Stamps, with the time now, every message for `to` whose turn came (ring indices
 * stamp_next[to], + sample_every, ...) below ring index `limit`: a note each on ring core ->
 * to (overwriting the stamp SN__MESH_STAMPS samples older). The flush calls it right before
 * its tail store (so the tail's line is written once per flush, and a send costs nothing),
 * a send into overflow right after queueing (so a message that waits there is stamped with
 * the time it was sent). Sender only.
 */
void sn__mesh_stamp_through(const struct sn_mesh *mesh, struct sn__mesh_core *core, unsigned to,
                            uint64_t limit);

/* True when a flush of ring r (core -> to) must stamp first. Sender only. */
static inline bool sn__mesh_stamp_needed(const struct sn__mesh_core *core, unsigned to,
                                         const struct sn_ring *r)
{
    return sn_unlikely(core->stamp_next != NULL) && core->stamp_next[to] < r->prod.index;
}

/* Copies ring r's stamps into st when a stamp came since the last copy, finds the next one
 * and sets check_at (r's consumer, when a batch reaches check_at). */
void sn__mesh_stamps_load(struct sn__mesh_stamps *st, struct sn_ring *r);

/* Records the age of the stamp at st->next into the histogram of `from` -> core, and finds
 * the next stamp. Receiver only. */
void sn__mesh_stamp_record(struct sn__mesh_core *core, unsigned from, struct sn__mesh_stamps *st);

void sn__mesh_delay_init(struct sn_mesh *mesh, unsigned me);
void sn__mesh_delay_free(struct sn_mesh *mesh, unsigned me);

/* Frees every chunk of one pair's FIFO, spare included (destroy only). */
void sn__mesh_ovf_free(struct sn__mesh_ovf *ovf);

#endif
