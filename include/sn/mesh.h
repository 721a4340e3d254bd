/*
 * The mesh: for N cores, N*(N-1) SPSC rings, one for every ordered pair (from, to), each
 * carrying 32-byte messages. It has no threads of its own and makes no syscalls: the reactor
 * (or a test's plain pthreads) drives it.
 *
 * Sending never fails for a full ring and never blocks: when the ring from->to is full, or
 * older messages for `to` are already waiting, the message goes into a per-destination
 * overflow FIFO on the sender, which sn_mesh_flush moves into the ring before anything newer,
 * so FIFO order per pair always holds. The overflow is bounded by a configurable limit
 * (default SN_MESH_DEFAULT_OVERFLOW_LIMIT messages per sender); past it a send returns
 * -ENOBUFS and the message is not queued. Its size is visible in sn_mesh_stats.
 *
 * Doorbells: each receiving core has a bitmap with one bit per sender (and, with more than
 * 64 cores, a summary word with one bit per 64 senders). A flush that publishes to `to` sets
 * its bit, so a receiver with nothing incoming learns it from one load at any core count
 * (sn_mesh_drain), and a receiver with something incoming reads only the rings whose bits
 * are set. The receiver keeps a bit set for a while after its ring ran dry,
 * so a pair that keeps talking does no atomic read-modify-write on the doorbell.
 *
 * Sleep: a receiver that is about to block calls sn_mesh_sleep_announce, re-checks
 * sn_mesh_pending (and its other sources), and only then blocks. A flush that publishes to a
 * core that announced sleep calls the `wake` callback for it once; the announce/flush pair is
 * ordered (seq_cst) so a wake-up is never lost. While the target is awake a flush pays one
 * load of its sleep word and no atomic read-modify-write.
 *
 * Threads: the functions that take `from` may be called only by the thread acting as core
 * `from`; those that take `me` only by the thread acting as core `me`. Create/destroy need
 * every core quiet.
 */
#ifndef SN_MESH_H
#define SN_MESH_H

#include <sn/common.h>

#include <assert.h>
#include <stdbool.h>

SN_BEGIN_DECLS

struct sn_mesh;
struct sn_msg;

/*
 * Called on the receiving core for each message, in FIFO order per sender. `msg` is valid
 * only during the call (copy what must outlive it). `from` is the sending core.
 */
typedef void (*sn_msg_fn)(const struct sn_msg *msg, unsigned from);

/*
 * One message: 32 bytes. The mesh interprets only `fn`; the other fields travel untouched.
 * Ownership of whatever `arg` and `token` point to is the protocol's business (the reactor's
 * submit path states it in include/sn/reactor.h).
 */
struct sn_msg {
    sn_msg_fn fn;
    void *arg;
    void *token;    /* reply token: e.g. a future living on the sender */
    uint64_t value; /* inline payload: a result, an error, a key */
};
static_assert(sizeof(struct sn_msg) == 32, "a mesh message is 32 bytes");

#define SN_MESH_MAX_CORES              1024
#define SN_MESH_DEFAULT_RING_CAPACITY  1024
#define SN_MESH_DEFAULT_OVERFLOW_LIMIT (1u << 22)

struct sn_mesh_config {
    unsigned ncores; /* 1 to SN_MESH_MAX_CORES */
    /* Slots per ring, a power of two. 0: the default, SN_MESH_DEFAULT_RING_CAPACITY up to 33
     * cores; with more, the largest power of two that keeps a core's N-1 incoming rings
     * within 32768 slots (1 MiB), but at least 64 (e.g. 256 at 128 cores, 64 at 1024). */
    uint32_t ring_capacity;
    size_t overflow_limit; /* messages one sender may hold in overflow; 0: the default */
    /*
     * Queue-delay sampling: 0 off; n (1 to 65535) stamps one message in n per ordered pair
     * (the n-th, 2n-th, ... of the pair) with the time it was published (the sender's flush,
     * or its send when it had to wait in overflow), and the receiver records its age just
     * before it handles it (sn_mesh_queue_delay). A stamp is not a message (it takes no ring
     * slot and does not count in sent/received): it waits in one of 6 notes on the ring's
     * tail line, taken in turn, so while the receiver is more than 6 * n messages behind (a
     * deep backlog), or when one flush publishes more than 6 * n, the older stamps are
     * overwritten and those samples lost.
     * Stamps keep time in units of 64 TSC cycles on x86 with an invariant TSC (24 ns at
     * 2.7 GHz; read with RDTSC, far cheaper than CLOCK_MONOTONIC in a VM), else of 16 ns
     * (64 ns on x86 without it).
     */
    unsigned sample_every;
    /*
     * Optional, ncores entries: allocators[c] provides the memory of every ring whose
     * consumer is core c, and one block for c's doorbell and private mesh state (so they can
     * live on c's NUMA node). NULL or a NULL entry: default; an entry with a NULL alloc or
     * free is -EINVAL. The mesh copies the array (it may be freed after sn_mesh_create) but
     * keeps the entry pointers: the allocators themselves must stay valid until destroy.
     */
    const struct sn_allocator *const *allocators;
};

/*
 * Called by sn_mesh_flush on the sending core, once per flush for each destination that had
 * announced sleep, so the caller can wake it (MSG_RING, eventfd, ...). The sleep
 * announcement is consumed by this call: exactly one flush (of any sender) calls wake for one
 * announcement. The wake may land after the target has already cancelled its sleep, so the
 * target's blocking primitive must tolerate a spurious wake-up (eventfd, futex word, ...).
 */
typedef void (*sn_mesh_wake_fn)(void *ctx, unsigned to);

struct sn_mesh_stats {
    uint64_t sent;              /* messages accepted by sn_mesh_send from this core */
    uint64_t received;          /* messages handled by sn_mesh_drain on this core */
    uint64_t overflowed;        /* messages that went through the overflow FIFO */
    uint64_t overflow_now;      /* messages waiting in this core's overflow FIFOs now */
    uint64_t overflow_peak;     /* the largest overflow_now seen */
    uint64_t overflow_bytes;    /* memory held by this core's overflow FIFOs now */
    uint64_t overflow_rejected; /* sends refused with -ENOBUFS */
    uint64_t wakes;             /* wake callbacks made by this core's flushes */
};

/* Builds a mesh. 0 and *out on success; -EINVAL for a bad config; -ENOMEM. Any thread. */
SN_API int sn_mesh_create(const struct sn_mesh_config *config, struct sn_mesh **out);

/* Frees the mesh, its rings and overflow FIFOs; unhandled messages are dropped. */
SN_API void sn_mesh_destroy(struct sn_mesh *mesh);

/* Number of cores the mesh was built for. Any thread. */
SN_API unsigned sn_mesh_cores(const struct sn_mesh *mesh);

/*
 * Queues a copy of `msg` from core `from` to core `to` (from != to). It becomes visible to
 * `to` at the next sn_mesh_flush at the latest; once a batch of messages (64, or half the
 * ring when that is smaller) waits in the ring for `to`, the send publishes them itself and
 * rings the doorbell, so a long burst reaches the receiver while the sender is still making
 * it (waking a sleeping receiver is still left to sn_mesh_flush). 0 on success; -EINVAL for
 * bad core ids or a NULL fn; -ENOBUFS when the overflow limit is reached; -ENOMEM when
 * overflow memory cannot be had. Core `from` only.
 */
SN_API int sn_mesh_send(struct sn_mesh *mesh, unsigned from, unsigned to, const struct sn_msg *msg);

/*
 * Publishes everything core `from` queued since its last flush: overflow first, into the
 * rings as far as they have room, one release store per ring; rings each destination's
 * doorbell; calls `wake(ctx, to)` for destinations that announced sleep (also those that
 * sn_mesh_send already published to). With wake NULL, sleep announcements are left alone for
 * a later flush that has a callback. Only destinations sent to since the last flush (or still
 * holding overflow) are visited. Returns the number of messages made visible since the last
 * flush (those published early by sn_mesh_send included). Core `from` only.
 */
SN_API unsigned sn_mesh_flush(struct sn_mesh *mesh, unsigned from, sn_mesh_wake_fn wake, void *ctx);

/*
 * True when core `from` still holds messages in overflow that a later flush must move.
 * Receivers do not signal freed room, so a core must not block indefinitely while this is
 * true: it keeps flushing (or blocks with a short timeout). Core `from` only.
 */
SN_API bool sn_mesh_backlog(const struct sn_mesh *mesh, unsigned from);

/*
 * True when messages wait for core `me`: some sender rang its doorbell since the last drain,
 * or a ring whose doorbell bit the receiver keeps set (see sn_mesh_drain) holds messages.
 * One load per 64 senders when no bit is kept; otherwise also a fence and one load per kept
 * ring. Core `me` only.
 */
SN_API bool sn_mesh_pending(const struct sn_mesh *mesh, unsigned me);

/*
 * Handles up to `budget` incoming messages on core `me` (0: no limit), calling each
 * message's fn. Reads only the rings whose doorbell bits are set; a ring not emptied within
 * the budget keeps its bit. A ring found empty also keeps its bit for a while (a few hundred
 * drains), so a sender that keeps talking to `me` finds the bit set and pays no atomic
 * read-modify-write; the bit is cleared, with a last look at the ring, once the ring stays
 * quiet. With nothing set it costs one load (the summary word with more than 64 cores).
 * Returns the number handled.
 * Core `me` only. A message's fn may call sn_mesh_send and sn_mesh_flush for core `me`
 * (replies), but not sn_mesh_drain.
 */
SN_API unsigned sn_mesh_drain(struct sn_mesh *mesh, unsigned me, unsigned budget);

/*
 * Sleep protocol for core `me`: announce, then re-check sn_mesh_pending and every other
 * source of work, then block; after waking (or deciding not to block) call
 * sn_mesh_sleep_cancel. Core `me` only.
 */
SN_API void sn_mesh_sleep_announce(struct sn_mesh *mesh, unsigned me);
SN_API void sn_mesh_sleep_cancel(struct sn_mesh *mesh, unsigned me);

/*
 * Sampled queue delay of one ordered pair (sample_every). Percentiles are the upper edge of
 * their histogram bucket (at most 25% above the true value); max is exact to the stamps' unit
 * (sample_every above; 24 ns on a 2.7 GHz TSC). On x86 the stamps are TSC cycles, turned into
 * nanoseconds when read, at the TSC's rate measured since the first sampling mesh was made:
 * they assume the CPUs' TSCs agree (they are invariant; the project's 2-vCPU VM agrees within
 * its +-80 ns measurement). If they do not, a sample is off by the offset between the two
 * CPUs, and an age that comes out negative counts as 0. An age of 2^31 units or more (51 s at
 * 2.7 GHz) is taken for a negative one and counts as 0 too.
 */
struct sn_mesh_delay {
    uint64_t samples;
    uint64_t p50_ns;
    uint64_t p99_ns;
    uint64_t max_ns;
};

/*
 * The sampled queue delay of messages from `from` to `to`, zeros when sampling is off or
 * nothing was sampled yet. 0 or -EINVAL (bad cores, from == to, NULL out). Any thread
 * (approximate while the receiver runs).
 */
SN_API int sn_mesh_queue_delay(const struct sn_mesh *mesh, unsigned from, unsigned to,
                               struct sn_mesh_delay *out);

/* Counters for core `core` (see struct sn_mesh_stats). Approximate from other threads. */
SN_API void sn_mesh_stats(const struct sn_mesh *mesh, unsigned core, struct sn_mesh_stats *out);

SN_END_DECLS

#endif
