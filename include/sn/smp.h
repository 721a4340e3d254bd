/*
 * Cross-core work: run a function on another core and get its result back as a future on
 * the calling core. Requests and replies travel as 32-byte struct sn_msg through the mesh's
 * SPSC rings (fn: the handler, arg: the user's arg, token: the caller's call record, value:
 * the user function or the result); nothing is allocated per message but a pooled call
 * record on the caller (and, when the remote function returns a pending future, a pooled
 * reply record on the target). sn_submit_copy and sn_submit_copy_into carry a copy of the
 * request and a result area instead of a pointer (below).
 *
 * Ownership across cores, for sn_submit_to, sn_call_on, sn_send and the gathering calls:
 *   - `arg` is handed to `fn` on the target core as is. libsn never reads or frees it. The
 *     caller must keep what it points to valid until fn has run (for a remote function that
 *     returns a future: until that future settles), and the two sides must agree on who
 *     frees it. Memory allocated on one core and freed on another is fine with malloc, not
 *     with a core's pool.
 *   - The 64-bit result travels by value. When it carries a pointer, the pointed-to object
 *     belongs to the caller from the moment the future resolves, unless the protocol says
 *     otherwise; the target must not touch it after returning it.
 *   - A future returned by a remote function lives on the target core and is consumed there
 *     by libsn. The future returned to the caller lives on the caller's core.
 *
 * The own core is a valid target: the call goes through the local run queue, never inline
 * and never through the mesh, so ordering and re-entrancy are the same as for other cores.
 * Calls from one core to another run in the order they were made, whatever their kind
 * (sn_submit_to, sn_call_on, sn_send, copies, the parts of gathering calls). Gathering calls
 * can also run the own part inline: see "Gathering" below for what each form sees.
 *
 * All functions here: any reactor core. On other threads the ones returning a future abort
 * (include/sn/future.h) and sn_send returns -EPERM.
 * After shutdown began they fail with -ECANCELED (see include/sn/reactor.h).
 */
#ifndef SN_SMP_H
#define SN_SMP_H

#include <sn/common.h>
#include <sn/future.h>

#include <stdbool.h>

SN_BEGIN_DECLS

/* A remote function returning a future (or SN_SUCCESS: success with value 0). */
typedef struct sn_future *(*sn_remote_fn)(void *arg);

/* A remote function returning at once: 0 or a negative errno, the value in *value. */
typedef int (*sn_call_fn)(void *arg, uint64_t *value);

/*
 * Runs fn(arg) on core `core` and returns a future, on the calling core, for the outcome of
 * the future fn returns; when that future is still pending the reply leaves when it settles.
 * Fails (as a failed future) with -EINVAL for a bad core, -ECANCELED after shutdown began,
 * -ENOBUFS when the mesh's overflow limit is reached.
 */
SN_API SN_MUST_USE struct sn_future *sn_submit_to(unsigned core, sn_remote_fn fn, void *arg);

/* Like sn_submit_to for a function that answers at once (no future on the target). */
SN_API SN_MUST_USE struct sn_future *sn_call_on(unsigned core, sn_call_fn fn, void *arg);

/*
 * Typed messages: the request is copied, not pointed to, so the caller may reuse or free its
 * struct as soon as the call returns, and results larger than 64 bits come back into a buffer
 * of the caller's. For example, with a request struct and an owner core:
 *
 *     struct get_req { uint64_t key; uint32_t flags; };
 *     static struct sn_future *get_remote(const void *req, size_t len, void *out, size_t cap)
 *     {
 *         const struct get_req *r = req;          // libsn's copy, len == sizeof *r
 *         size_t n = store_get(r->key, out, cap);  // writes at most cap bytes into out
 *         return sn_ready(n);                      // the number of bytes written
 *     }
 *     struct get_req q = {.key = k};
 *     f = sn_submit_copy_into(owner, get_remote, &q, sizeof q, buf, sizeof buf);
 *     // f succeeds with n once buf holds the n bytes
 *
 * `req` points to libsn's copy of the caller's payload (`len` bytes, NULL when len is 0),
 * aligned to 16 bytes (8 when len <= 8); `out` to `cap` bytes for a result (NULL and 0 for
 * sn_submit_copy). fn may keep both pointers until the future it returns settles, and must
 * not use them after that, nor free them. Runs on the target core.
 */
typedef struct sn_future *(*sn_copy_fn)(const void *req, size_t len, void *out, size_t cap);

/*
 * Runs fn on core `core` with a copy of the `len` bytes at `req`, like sn_submit_to: the
 * future, on the calling core, gets the outcome of the future fn returns.
 *
 * Who frees what: libsn copies the payload into memory of the calling core and frees it
 * there when the reply comes back (the target only reads it, and only before its reply
 * leaves); nothing is freed on another core and the caller's `req` is not used after the
 * call returns. Payloads of up to 8 bytes travel inside the 32-byte mesh message; larger ones
 * in a block from the calling core's pools (no malloc up to 4 KiB) or, beyond that, from its
 * allocator. Calls to the own core go through the run queue, as sn_submit_to's do.
 *
 * Fails (as a failed future) with -EINVAL (bad core, or req NULL with len > 0), -EMSGSIZE
 * (len over 1 GiB), -ENOMEM, and as sn_submit_to. At the end of a run a call still waiting
 * fails with -ECANCELED; its copy is kept until sn_run returns, since the target may still
 * be reading it.
 */
SN_API SN_MUST_USE struct sn_future *sn_submit_copy(unsigned core, sn_copy_fn fn, const void *req,
                                                   size_t len);

/*
 * sn_submit_copy with a result: fn writes up to `cap` bytes into the `out` it is given (an
 * area of libsn's in the same block as the payload, not the caller's buffer), and its future's
 * value is the number of bytes written. When the reply arrives, libsn copies them into the
 * caller's `out` on the calling core and the future succeeds with that count; a count larger
 * than cap fails it with -EMSGSIZE instead, and `out` is left alone. The caller's `out` must
 * stay valid until the future settles; it is written only on the calling core, just before
 * the future succeeds, and never after a failure (so a call failed at the end of a run never
 * writes it). Errors as sn_submit_copy, and -EINVAL for out NULL with cap > 0.
 */
SN_API SN_MUST_USE struct sn_future *sn_submit_copy_into(unsigned core, sn_copy_fn fn,
                                                        const void *req, size_t len, void *out,
                                                        size_t cap);

/*
 * Runs fn(arg) on core `core`, no reply (fire and forget). 0, -EINVAL, -EPERM off a core,
 * -ECANCELED after shutdown began, -ENOBUFS. On failure fn never runs.
 * Never capped by a service group: a slot is given back by the reply, and there is none; what
 * bounds sn_send is the mesh (a full ring's overflow, then -ENOBUFS at its limit). For fire
 * and forget under a cap, use sn_submit_to_via(g, core, fn, arg) with fn returning
 * SN_SUCCESS and drop the future with sn_ignore(): the reply (one message back) frees the slot.
 */
SN_API int sn_send(unsigned core, void (*fn)(void *arg), void *arg);

/*
 * Gathering: one call on many cores, one future for all the answers.
 *
 * Ordering guarantees (what a part on core B sees, for a gather made on core A):
 *   - B != A: the part is a message from A to B, queued behind every message A sent to B
 *     before the call (sn_submit_to, sn_call_on, sn_send, copies, earlier gathers) and ahead
 *     of every later one. Those earlier requests have run on B when the part runs (a request
 *     whose function returned a pending future has started, not necessarily finished).
 *   - B == A, by default: the part goes through A's run queue, like sn_submit_to(A, ...): it
 *     runs after the tasks A queued before (earlier calls to A itself included), but only once
 *     the current task has returned, so code that runs inline after the call (the next
 *     pipelined request on a connection, say) does not see its effect yet.
 *   - B == A with SN_GATHER_LOCAL_INLINE: fn(arg) runs at once, inside the call, before any
 *     remote part is sent: it sees everything A did inline before, and whatever A does inline
 *     after the call sees it. It does not wait for calls to A still in A's run queue.
 *   - Between the parts on different cores there is no order; the reducer sees the values in
 *     the order they arrive.
 *
 * So pick the form that matches how the work before it was done. A server that applies its
 * own keys inline and sends the other keys to their owners (as sn-kv does) gathers inline:
 *
 *     // set: the owner applies it; this core's keys at once, the others by message
 *     if (owner == sn_core_id())
 *         store_set(key, value);
 *     else
 *         sn_send(owner, apply_set, msg);
 *     ...
 *     // a count of every core's keys, made after the set: must include it
 *     struct sn_gather how = {.flags = SN_GATHER_LOCAL_INLINE};
 *     f = sn_map_reduce_on(&how, count_keys, NULL, 0, sn_reduce_sum, NULL);
 *
 * Code that sends every write through sn_submit_to or sn_send, its own core's included, keeps
 * the default. Work batched by the app and not yet sent is the app's to send first.
 */

/* Cores that sn_core_set_* and struct sn_gather can name (SN_MESH_MAX_CORES). */
#define SN_CORE_SET_MAX 1024

/* A set of cores, for struct sn_gather. Zero-initialised (or sn_core_set_clear): empty. */
struct sn_core_set {
    uint64_t bits[SN_CORE_SET_MAX / 64];
};

/* Empties `s`. Any thread (touches only `s`), as are the other sn_core_set_* helpers. */
static inline void sn_core_set_clear(struct sn_core_set *s)
{
    for (unsigned i = 0; i < SN_CORE_SET_MAX / 64; i++)
        s->bits[i] = 0;
}

/* Adds `core` (< SN_CORE_SET_MAX; larger values are ignored). */
static inline void sn_core_set_add(struct sn_core_set *s, unsigned core)
{
    if (core < SN_CORE_SET_MAX)
        s->bits[core / 64] |= (uint64_t)1 << (core % 64);
}

/* Removes `core`. */
static inline void sn_core_set_remove(struct sn_core_set *s, unsigned core)
{
    if (core < SN_CORE_SET_MAX)
        s->bits[core / 64] &= ~((uint64_t)1 << (core % 64));
}

/* True when `core` is in `s`. */
static inline bool sn_core_set_has(const struct sn_core_set *s, unsigned core)
{
    return core < SN_CORE_SET_MAX && (s->bits[core / 64] >> (core % 64) & 1);
}

/* struct sn_gather flags. */
#define SN_GATHER_LOCAL_INLINE (1u << 0) /* the calling core's part runs inside the call */
#define SN_GATHER_SKIP_SELF    (1u << 1) /* leave the calling core out */

/*
 * Which cores a gathering call runs on and how. Zero-initialised: every core, the own part
 * through the run queue (sn_map_reduce's and sn_invoke_on_all's behaviour). Read during the
 * call only.
 */
struct sn_gather {
    const struct sn_core_set *cores; /* NULL: every core; else only these */
    unsigned flags;                  /* SN_GATHER_LOCAL_INLINE, SN_GATHER_SKIP_SELF */
};

/*
 * Runs fn(arg) on every core (the caller's included, through its run queue); the future
 * succeeds with the core count when all succeeded, else fails with the first error to
 * arrive, after all settled. `arg` must stay valid until the future settles.
 */
SN_API SN_MUST_USE struct sn_future *sn_invoke_on_all(sn_remote_fn fn, void *arg);

/*
 * sn_invoke_on_all on the cores and in the way `how` says (NULL: as sn_invoke_on_all). The
 * future succeeds with the number of cores that ran fn (0, at once, for an empty choice).
 * Fails (as a failed future, fn never called) with -EINVAL when the set names a core that
 * does not exist.
 */
SN_API SN_MUST_USE struct sn_future *sn_invoke_on(const struct sn_gather *how, sn_remote_fn fn,
                                                 void *arg);

/*
 * Service groups: a cap on the cross-core requests one core has in flight to another, per
 * group and per destination (Seastar's smp_service_group). A request made through a group
 * whose cap toward its destination is reached waits on the calling core, in order, and leaves
 * when a reply from that destination frees a slot: its future settles later, and the mesh's
 * overflow does not grow. Replies are never capped, and neither is any request made by code
 * that runs on behalf of a request from another core (its remote function, and the
 * continuations, sn_later calls, timers and fibers it starts): only top-level work waits for
 * a cap, and nothing it waits for can wait for a cap in turn, so capped calls cannot
 * deadlock (docs/ARCHITECTURE.md, "Service groups"). sn_send (no reply) is never capped:
 * nothing would give its slot back (see sn_send for the capped way to fire and forget).
 */
struct sn_service_group;

struct sn_service_group_config {
    const char *name;      /* copied (up to 31 bytes); NULL: "service" */
    unsigned max_inflight; /* requests in flight from one core to one other core; 1 or more */
};

/*
 * Makes a service group in *out. 0, -EINVAL (NULL cfg or out, max_inflight 0), -ENOMEM.
 * Any thread; the group may be used on every core of any run until destroyed.
 */
SN_API int sn_service_group_create(const struct sn_service_group_config *cfg,
                                   struct sn_service_group **out);

/*
 * Frees `g` (NULL: nothing). Any thread, once no call made through g is waiting or in flight
 * on any core (e.g. after sn_run returned, or once all its futures settled).
 */
SN_API void sn_service_group_destroy(struct sn_service_group *g);

/* Like sn_submit_to, counted against g's cap toward `core` (g NULL: uncapped). */
SN_API SN_MUST_USE struct sn_future *sn_submit_to_via(struct sn_service_group *g, unsigned core,
                                                      sn_remote_fn fn, void *arg);

/* Like sn_call_on, counted against g's cap toward `core` (g NULL: uncapped). */
SN_API SN_MUST_USE struct sn_future *sn_call_on_via(struct sn_service_group *g, unsigned core,
                                                    sn_call_fn fn, void *arg);

/* What one core did through a service group. */
struct sn_service_group_stats {
    uint64_t inflight; /* gauge: its capped requests in flight, all destinations */
    uint64_t waiting;  /* gauge: its requests waiting for room */
    uint64_t waited;   /* requests that had to wait */
    uint64_t exempt;   /* requests made on behalf of another core's request (never capped) */
};

/*
 * Copies core `core`'s figures for g into *out (zeros for a core that never used g). 0 or
 * -EINVAL (NULL g or out, core out of range). Any thread (approximate while cores run).
 */
SN_API int sn_service_group_stats(const struct sn_service_group *g, unsigned core,
                                  struct sn_service_group_stats *out);

/* Folds one core's value into the accumulator, on the calling core. */
typedef uint64_t (*sn_reduce_fn)(void *arg, uint64_t acc, uint64_t value);

/*
 * Runs fn(arg) on every core and folds the values on the calling core, in the order they
 * arrive (so `reduce` should be associative and commutative): acc = reduce(reduce_arg, acc,
 * value), starting from `init`. Succeeds with the final acc, or fails with the first error
 * seen (after every core answered). The own part goes through the run queue (see above).
 */
SN_API SN_MUST_USE struct sn_future *sn_map_reduce(sn_remote_fn fn, void *arg, uint64_t init,
                                                   sn_reduce_fn reduce, void *reduce_arg);

/*
 * sn_map_reduce on the cores and in the way `how` says (NULL: as sn_map_reduce). An empty
 * choice succeeds at once with `init`; -EINVAL as sn_invoke_on.
 */
SN_API SN_MUST_USE struct sn_future *sn_map_reduce_on(const struct sn_gather *how,
                                                     sn_remote_fn fn, void *arg, uint64_t init,
                                                     sn_reduce_fn reduce, void *reduce_arg);

/* Ready-made reducer: the sum of the values. */
SN_API uint64_t sn_reduce_sum(void *arg, uint64_t acc, uint64_t value);

/*
 * Sharded: one instance of a user object per core, created on its core (so its memory is
 * that core's), used there without locks.
 *
 *   init(arg, core) runs on each core and returns the instance (NULL: failure, -ENOMEM);
 *   fini(instance, arg) runs on each core at stop for the instances that exist.
 */
struct sn_sharded;
typedef void *(*sn_shard_init_fn)(void *arg, unsigned core);
typedef void (*sn_shard_fini_fn)(void *instance, void *arg);
typedef struct sn_future *(*sn_shard_fn)(void *instance, void *arg);

/*
 * Creates the sharded object in *out (usable at once for sn_sharded_stop) and runs init on
 * every core; the future succeeds when every instance exists, else fails (call
 * sn_sharded_stop to destroy the instances that were made). `arg` must stay valid until
 * sn_sharded_stop's future settles. The object may be used from every core.
 */
SN_API SN_MUST_USE struct sn_future *sn_sharded_start(sn_shard_init_fn init, sn_shard_fini_fn fini,
                                                      void *arg, struct sn_sharded **out);

/* The calling core's instance (NULL before start finished there). Any core, lock free. */
SN_API void *sn_sharded_local(const struct sn_sharded *s);

/*
 * Runs fn(instance, arg) on every core with that core's instance; the future settles as
 * sn_invoke_on_all's. `arg` must stay valid until it settles.
 */
SN_API SN_MUST_USE struct sn_future *sn_sharded_invoke_on_all(struct sn_sharded *s, sn_shard_fn fn,
                                                              void *arg);

/*
 * Runs fini on every core's instance, each on its own core, then frees `s` on the calling
 * core when all are done; the future settles then. `s` must not be used after the call.
 * Works during shutdown too (these calls are let through while the cores stop). Only when
 * called from a continuation that runs at the very end of a run (a call failed with
 * -ECANCELED by the shutdown) are the instances finished on the calling core, since the
 * other cores are idle for good by then.
 */
SN_API SN_MUST_USE struct sn_future *sn_sharded_stop(struct sn_sharded *s);

SN_END_DECLS

#endif
