/*
 * Internal: the records of cross-core calls shared by reactor/smp.c (plain calls, replies,
 * the end of a run), reactor/smp_copy.c (calls with a copied payload) and
 * reactor/smp_gather.c (calls on many cores), and reactor/smp_service.c (the caps of service
 * groups).
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

/*
 * A call waiting for its answer on the calling core (or, with a service group whose cap is
 * reached, for room to be sent). The request's token is its address; records are 64-byte
 * aligned, so the token's low 6 bits are free to carry the caller's run tag (see below).
 */
struct sn__call {
    struct sn_list_node link;   /* in the core's calls (or orphans, see sn__smp_cancel_calls) */
    struct sn_promise *promise; /* NULL once the end of a run failed the call */
    union {
        struct sn_service_group *sg; /* plain calls: counted against its cap (NULL: not) */
        void *out;                   /* copy calls: the caller's result buffer (or NULL) */
    };
    uint8_t kind;  /* SN__CALL_PLAIN or SN__CALL_COPY */
    uint8_t where; /* copy calls: where the block came from (smp_copy.c) */
    uint32_t size; /* copy calls: bytes of the block */
};
_Static_assert(sizeof(struct sn__call) == 40, "a copy call's header stays within 48 bytes");

/* The service group k is counted against (copy calls are never capped). */
static inline struct sn_service_group *sn__call_sg(const struct sn__call *k)
{
    return k->kind == SN__CALL_PLAIN ? k->sg : NULL;
}

/*
 * Low bits of a request's token: the caller's run tag as it is (core/sched.h). Bits 0-4, the
 * caller's scheduling group, in which the handler runs on the target; SN__TOKEN_SERVING (bit
 * 5, the tag's serving bit): the request is part of the work of a capped request (it is
 * capped itself, or was made by code with SN__TAG_SERVING), so its handler runs with
 * SN__TAG_SERVING and whatever it starts is exempt from caps too. Every request carries
 * them: plain calls, copy calls, gathers' parts and sn_send.
 */
#define SN__TOKEN_SERVING SN__TAG_SERVING
#define SN__TOKEN_BITS    63u
_Static_assert((SN__TAG_GROUP | SN__TAG_SERVING) == SN__TOKEN_BITS,
               "a run tag is the token's low bits: group id and serving bit");

/* The token bits for a request made under run tag `tag`. */
static inline uintptr_t sn__token_bits(uint8_t tag)
{
    return (uintptr_t)tag & SN__TOKEN_BITS;
}

/* True when a request carries no run-tag bits: made from the main group, serving nothing. */
static inline bool sn__token_plain(const void *token)
{
    return ((uintptr_t)token & SN__TOKEN_BITS) == 0;
}

static inline unsigned sn__token_group(const void *token)
{
    return (unsigned)((uintptr_t)token & SN__TAG_GROUP);
}

static inline struct sn__call *sn__token_call(void *token)
{
    return (struct sn__call *)((uintptr_t)token & ~(uintptr_t)SN__TOKEN_BITS);
}

/*
 * On the target: the run tag a request's handler runs under (the serving bit of its token
 * added to the core's tag). The caller restores the previous tag after the handler.
 */
static inline uint8_t sn__token_tag(uint8_t tag, const void *token)
{
    return (uint8_t)(tag | ((uintptr_t)token & SN__TOKEN_SERVING));
}

/* The body of a request's handler on the target. */
typedef void (*sn__req_body)(struct sn__core *c, const struct sn_msg *msg, unsigned from);

/* smp.c: queues body(c, msg, from) as a task of the group in msg's token (not main). */
void sn__smp_defer(struct sn__core *c, const struct sn_msg *msg, unsigned from, sn__req_body body);

/*
 * True when request msg's caller ran in a scheduling group other than the main one; then
 * body(c, msg, from) is queued as a task of that group (scheduled and charged as the group's
 * work) instead of running inline in the drain. False: the caller runs body now. Inline, so
 * a request from the main group pays one test of its token, not a call.
 */
static inline bool sn__smp_defer_to_group(struct sn__core *c, const struct sn_msg *msg,
                                          unsigned from, sn__req_body body)
{
    if (sn_likely(sn__token_group(msg->token) == 0))
        return false;
    sn__smp_defer(c, msg, from, body);
    return true;
}

/* smp.c: unlinks and frees k, then fails its promise with err (k's continuation runs). */
void sn__smp_call_fail(struct sn__core *c, struct sn__call *k, int err);

/*
 * smp_service.c. Decides whether request `msg` for core `to`, whose call record is k, may
 * leave now under g's cap: 0 yes (a slot is taken, and msg's token marked SERVING; or the
 * caller's work is exempt); 1 it waits in g's queue and leaves when a reply frees a slot;
 * -ENOMEM. Owner core only.
 */
int sn__sg_admit(struct sn__core *c, struct sn_service_group *g, unsigned to, struct sn__call *k,
                 struct sn_msg *msg);

/* Gives back k's slot (its send failed, or its reply from `to` arrived) and sends the
 * requests that now fit. Owner core only. */
void sn__sg_release(struct sn__core *c, struct sn__call *k, unsigned to);

/* The end of a run: forgets every request of core c counted or queued in k's group (their
 * calls are being cancelled). Owner core only. */
void sn__sg_forget(struct sn__core *c, struct sn__call *k);

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
