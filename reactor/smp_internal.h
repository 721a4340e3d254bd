/*
 * Internal: the records of cross-core calls shared by reactor/smp.c (plain calls, replies,
 * the end of a run), reactor/smp_copy.c (calls with a copied payload) and
 * reactor/smp_gather.c (calls on many cores).
 *
 * Every call waiting for its answer has a record on the calling core, linked into the core's
 * `calls` list so the end of a run can fail it with -ECANCELED. A plain call's record is a
 * struct sn__call from the core's 64-byte pool; a copy call's record is a struct
 * sn__copy_call that also holds the payload and the result area (reactor/smp_copy.c).
 */
#ifndef SN_REACTOR_SMP_INTERNAL_H
#define SN_REACTOR_SMP_INTERNAL_H

#include "reactor/core.h"

enum { SN__CALL_PLAIN, SN__CALL_COPY };

/* A call waiting for its answer, on the calling core. The request's token is its address. */
struct sn__call {
    struct sn_list_node link;   /* in the core's calls (or orphans, see sn__smp_cancel_calls) */
    struct sn_promise *promise; /* NULL once the end of a run failed the call */
    uint8_t kind;               /* SN__CALL_PLAIN or SN__CALL_COPY */
    uint8_t where;              /* copy calls: where the block came from (smp_copy.c) */
    uint32_t size;              /* copy calls: bytes of the block */
};
_Static_assert(sizeof(struct sn__call) == 32, "a call record is half a pool block");

/* Where the reply to a request goes, kept on the target while the remote future is pending. */
struct sn__reply_to {
    void *token;
    unsigned to;
    bool copy;        /* a copy call's reply (its own handlers) */
    uint64_t payload; /* an inline copy call's payload, which fn sees until the reply */
};
_Static_assert(sizeof(struct sn__reply_to) <= SN__SCHED_OBJ_SIZE, "fits the core pool");

/* Links a new plain call record and its promise; *fut receives the caller's future. */
struct sn__call *sn__call_new(struct sn__core *c, struct sn_future **fut);

/* Links `k` (a record the caller filled) and makes its promise; *fut gets the future. */
void sn__call_link(struct sn__core *c, struct sn__call *k, struct sn_future **fut);

/* Unlinks `k` from the core's calls. */
void sn__call_unlink(struct sn__core *c, struct sn__call *k);

/*
 * The checks every new call makes: 0, -EINVAL for a bad core, -ECANCELED once the core
 * refuses new work (`force`: library-internal calls still pass while the cores stop).
 */
int sn__smp_check_target(struct sn__core *c, unsigned core, bool force);

/*
 * Sends a reply from the target: `copy` picks the copy-call handlers. Replies are never
 * refused; one that meets a full overflow waits in the deferred list.
 */
void sn__smp_send_reply(struct sn__core *c, unsigned to, void *token, bool copy, int err,
                        uint64_t value);

/* sn_submit_to for core `c`; `force` as in sn__smp_check_target. */
struct sn_future *sn__submit(struct sn__core *c, unsigned core, sn_remote_fn fn, void *arg,
                             bool force);

/* sn_done callback on the target: sends the reply of a pending remote future (arg: reply_to). */
void sn__smp_reply_later(void *arg, int err, uint64_t value);

/* reactor/smp_copy.c: a copy call ended by the end of a run; its block waits for teardown. */
void sn__copy_orphan(struct sn__core *c, struct sn__call *k);

/* reactor/smp_copy.c: the size-class pools of copied payloads (make_cores / free_cores). */
int sn__copy_pools_init(struct sn__core *c);
void sn__copy_pools_destroy(struct sn__core *c);

/* reactor/smp_copy.c: blocks in use and owned by the size-class pools (the pool gauges). */
uint64_t sn__copy_pools_in_use(const struct sn__core *c);
uint64_t sn__copy_pools_capacity(const struct sn__core *c);

#endif
