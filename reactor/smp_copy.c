/*
 * Cross-core calls with a copied payload and a result area (contract in include/sn/smp.h,
 * sn_submit_copy and sn_submit_copy_into).
 *
 * Inline: a payload of at most 8 bytes with no result area rides in the message itself
 * ({req_inline[len], arg = the payload, token = a plain call record, value = fn}); the target
 * copies it into its reply record, which fn's pointer refers to until the reply leaves. The
 * caller's side is an ordinary call (reactor/smp.c's replies).
 *
 * Block: anything larger, and every call with a result area, goes in one block that the
 * calling core takes from its own memory: the call record, then the payload, then the result
 * area ({req_block, arg = len | cap << 32, token = the block, value = fn}). The target reads
 * the payload and writes the result area in place, and only before its reply leaves; the
 * caller copies the result into the user's buffer and frees the block when the reply comes.
 * Blocks come from the core's 64-byte pool when they fit it, from one of three size-class
 * pools up to 4 KiB, from the core's allocator beyond: no malloc per message up to 4 KiB, and
 * nothing is ever freed on another core.
 *
 * The own core: the same block, run from the run queue like sn_submit_to's own-core calls.
 *
 * The end of a run fails every call with -ECANCELED (sn__smp_cancel_calls); the target may be
 * running its last continuations at that moment, so a cancelled call's block stays allocated
 * (an orphan) until the threads have joined, and the user's result buffer is never written.
 */
#include <sn/smp.h>

#include "core/alloc.h"
#include "reactor/smp_internal.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

/* A call with a block: the record, then the payload at data[0], the result at data[res]. */
struct sn__copy_call {
    struct sn__call call; /* first: the request's token; call.out: the result buffer */
    uint32_t len;         /* payload bytes */
    uint32_t cap;         /* result area bytes */
    unsigned char data[] __attribute__((aligned(16)));
};
_Static_assert(offsetof(struct sn__copy_call, data) == 48, "16 payload bytes fit a pool block");

/* Where a block came from (sn__call.where). */
enum { FROM_SCHED_POOL, FROM_CLASS_POOL, FROM_ALLOCATOR = FROM_CLASS_POOL + SN__COPY_POOLS };

static const uint32_t class_size[SN__COPY_POOLS] = {256, 1024, 4096};
static const size_t class_chunk[SN__COPY_POOLS] = {64, 32, 16};

#define INLINE_MAX 8u

/* The result area's offset in data[]: after the payload, 16-byte aligned. */
static inline uint32_t res_off(uint32_t len)
{
    return (len + 15u) & ~15u;
}

/* ---- blocks ------------------------------------------------------------------------- */

int sn__copy_pools_init(struct sn__core *c)
{
    for (unsigned i = 0; i < SN__COPY_POOLS; i++) {
        int rc = sn__pool_init(&c->copy_pools[i], class_size[i], class_chunk[i], c->alloc);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Frees the orphans' allocator blocks (pool blocks go with their pools), then the pools. */
void sn__copy_pools_destroy(struct sn__core *c)
{
    struct sn_list_node *n;
    while ((n = sn_list_first(&c->orphans))) {
        struct sn__call *k = SN_CONTAINER_OF(n, struct sn__call, link);
        sn_list_remove(n);
        if (k->where == FROM_ALLOCATOR)
            sn__free(c->alloc, k, k->size);
    }
    for (unsigned i = 0; i < SN__COPY_POOLS; i++)
        sn__pool_destroy(&c->copy_pools[i]);
}

uint64_t sn__copy_pools_in_use(const struct sn__core *c)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < SN__COPY_POOLS; i++)
        n += c->copy_pools[i].in_use;
    return n;
}

uint64_t sn__copy_pools_capacity(const struct sn__core *c)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < SN__COPY_POOLS; i++)
        n += c->copy_pools[i].capacity;
    return n;
}

/* A block of `size` bytes on the calling core, or NULL (-ENOMEM) past the pools. */
static struct sn__copy_call *block_get(struct sn__core *c, size_t size)
{
    struct sn__copy_call *k;
    uint8_t where;
    if (size <= SN__SCHED_OBJ_SIZE) {
        k = sn__sched_obj(&c->sched);
        where = FROM_SCHED_POOL;
    } else {
        unsigned i = 0;
        while (i < SN__COPY_POOLS && size > class_size[i])
            i++;
        if (i < SN__COPY_POOLS) {
            k = sn__pool_get(&c->copy_pools[i]);
        } else {
            k = sn__alloc(c->alloc, size);
            if (!k)
                return NULL;
        }
        where = (uint8_t)(FROM_CLASS_POOL + i);
    }
    k->call.kind = SN__CALL_COPY;
    k->call.where = where;
    k->call.size = (uint32_t)size;
    return k;
}

static void block_put(struct sn__core *c, struct sn__copy_call *k)
{
    unsigned where = k->call.where;
    if (where == FROM_SCHED_POOL)
        sn__sched_obj_put(&c->sched, k);
    else if (where < FROM_ALLOCATOR)
        sn__pool_put(&c->copy_pools[where - FROM_CLASS_POOL], k);
    else
        sn__free(c->alloc, k, k->call.size);
}

void sn__copy_orphan(struct sn__core *c, struct sn__call *k)
{
    k->promise = NULL;
    sn_list_push_back(&c->orphans, &k->link);
}

/* ---- the calling core: answers ------------------------------------------------------- */

/*
 * Settles a copy call with the outcome its fn's future had: copies a result into the user's
 * buffer (more than cap bytes: -EMSGSIZE), frees the block, then settles the promise.
 */
static void finish(struct sn__core *c, struct sn__copy_call *k, int err, uint64_t value)
{
    struct sn_promise *p = k->call.promise;
    if (!err && k->call.out) {
        if (value > k->cap)
            err = -EMSGSIZE;
        else
            memcpy(k->call.out, k->data + res_off(k->len), (size_t)value);
    }
    sn__call_unlink(c, &k->call);
    block_put(c, k);
    if (err)
        sn_promise_fail(p, err);
    else
        sn_promise_set(p, value);
}

void sn__copy_reply_ok(const struct sn_msg *msg, unsigned from)
{
    (void)from;
    struct sn__core *c = sn__core_self();
    sn__count(&c->c.msgs_in, 1);
    finish(c, (struct sn__copy_call *)sn__token_call(msg->token), 0, msg->value);
}

void sn__copy_reply_err(const struct sn_msg *msg, unsigned from)
{
    (void)from;
    struct sn__core *c = sn__core_self();
    sn__count(&c->c.msgs_in, 1);
    finish(c, (struct sn__copy_call *)sn__token_call(msg->token), (int)(int64_t)msg->value, 0);
}

/* ---- the target ------------------------------------------------------------------------ */

/* Replies now when g has settled, else once it does (r: a pooled reply record, taken). */
static void answer(struct sn__core *c, struct sn__reply_to *r, struct sn_future *g)
{
    int err = 0;
    uint64_t value = 0;
    if (!g || sn__future_take(g, &err, &value)) {
        struct sn__reply_to done = *r;
        sn__sched_obj_put(&c->sched, r);
        sn__smp_send_reply(c, done.to, done.token, done.copy, err, value);
        return;
    }
    sn_done(g, sn__smp_reply_later, r);
}

/*
 * An inline payload of `len` bytes (the length is in the handler, so the token's low bits
 * stay free for the caller's run tag).
 */
static void req_inline(struct sn__core *c, const struct sn_msg *msg, unsigned from, size_t len)
{
    sn_copy_fn fn = (sn_copy_fn)(uintptr_t)msg->value;
    sn__count(&c->c.msgs_in, 1);
    /* The payload must outlive the message's slot: it lives in the reply record. */
    struct sn__reply_to *r = sn__sched_obj(&c->sched);
    r->token = msg->token;
    r->to = from;
    r->copy = false;
    r->payload = (uint64_t)(uintptr_t)msg->arg;
    uint8_t tag = c->sched.tag;
    c->sched.tag = sn__token_tag(tag, msg->token);
    struct sn_future *g = fn(len ? &r->payload : NULL, len, NULL, 0);
    c->sched.tag = tag;
    answer(c, r, g);
}

/* One handler per length; from a non-main scheduling group, run as a task of that group. */
#define REQ_INLINE(n)                                                                              \
    static void req_inline_body_##n(struct sn__core *c, const struct sn_msg *msg, unsigned from)   \
    {                                                                                              \
        req_inline(c, msg, from, n);                                                               \
    }                                                                                              \
    static void req_inline_##n(const struct sn_msg *msg, unsigned from)                            \
    {                                                                                              \
        struct sn__core *c = sn__core_self();                                                      \
        if (!sn__smp_defer_to_group(c, msg, from, req_inline_body_##n))                            \
            req_inline_body_##n(c, msg, from);                                                     \
    }
REQ_INLINE(0)
REQ_INLINE(1)
REQ_INLINE(2)
REQ_INLINE(3)
REQ_INLINE(4)
REQ_INLINE(5)
REQ_INLINE(6)
REQ_INLINE(7)
REQ_INLINE(8)

static const sn_msg_fn req_inline_len[INLINE_MAX + 1] = {
    req_inline_0, req_inline_1, req_inline_2, req_inline_3, req_inline_4,
    req_inline_5, req_inline_6, req_inline_7, req_inline_8,
};

static void req_block_body(struct sn__core *c, const struct sn_msg *msg, unsigned from)
{
    sn_copy_fn fn = (sn_copy_fn)(uintptr_t)msg->value;
    struct sn__copy_call *k = (struct sn__copy_call *)sn__token_call(msg->token);
    uint64_t sizes = (uint64_t)(uintptr_t)msg->arg;
    uint32_t len = (uint32_t)sizes, cap = (uint32_t)(sizes >> 32);
    sn__count(&c->c.msgs_in, 1);
    struct sn__reply_to *r = sn__sched_obj(&c->sched);
    r->token = msg->token;
    r->to = from;
    r->copy = true;
    uint8_t tag = c->sched.tag;
    c->sched.tag = sn__token_tag(tag, msg->token);
    /* Only the payload and result area are read here: the record's line is the caller's. */
    struct sn_future *g = fn(len ? k->data : NULL, len, cap ? k->data + res_off(len) : NULL, cap);
    c->sched.tag = tag;
    answer(c, r, g);
}

static void req_block(const struct sn_msg *msg, unsigned from)
{
    struct sn__core *c = sn__core_self();
    if (!sn__smp_defer_to_group(c, msg, from, req_block_body))
        req_block_body(c, msg, from);
}

/* ---- the own core ------------------------------------------------------------------------ */

struct local_copy {
    struct sn_task task;
    struct sn__copy_call *k;
    sn_copy_fn fn;
    uint8_t tag; /* the caller's run tag */
};
_Static_assert(sizeof(struct local_copy) <= SN__SCHED_OBJ_SIZE, "fits the core pool");

static void local_settled(void *arg, int err, uint64_t value)
{
    struct sn__copy_call *k = arg;
    if (k->call.promise) /* NULL: the end of a run failed it already */
        finish(sn__core_self(), k, err, value);
}

static void local_run(struct sn_task *t)
{
    struct sn__core *c = sn__core_self();
    struct local_copy l = *(struct local_copy *)t;
    sn__sched_obj_put(&c->sched, t);
    struct sn__copy_call *k = l.k;
    uint32_t len = k->len, cap = k->cap;
    uint8_t tag = c->sched.tag;
    c->sched.tag = l.tag;
    struct sn_future *g = l.fn(len ? k->data : NULL, len, cap ? k->data + res_off(len) : NULL, cap);
    sn_done(g, local_settled, k);
    c->sched.tag = tag;
}

/* ---- entry points ------------------------------------------------------------------------ */

/* Largest payload and result area (their sum must fit the record's 32-bit size). */
#define COPY_MAX (1u << 30)

static int check_args(const void *req, size_t len, const void *out, size_t cap)
{
    if ((len && !req) || (cap && !out))
        return -EINVAL;
    if (len > COPY_MAX || cap > COPY_MAX)
        return -EMSGSIZE;
    return 0;
}

/* The inline form: a plain call record, the payload in the message. */
static struct sn_future *send_inline(struct sn__core *c, unsigned core, sn_copy_fn fn,
                                     const void *req, size_t len)
{
    struct sn_future *f;
    struct sn__call *k = sn__call_new(c, &f);
    uint64_t payload = 0;
    if (len)
        memcpy(&payload, req, len);
    assert(((uintptr_t)k & SN__TOKEN_BITS) == 0);
    struct sn_msg m = {.fn = req_inline_len[len],
                       .arg = (void *)(uintptr_t)payload,
                       .token = (void *)((uintptr_t)k | sn__token_bits(c->sched.tag)),
                       .value = (uint64_t)(uintptr_t)fn};
    int rc = sn__smp_send_msg(c, core, &m);
    if (rc < 0)
        sn__smp_call_fail(c, k, rc);
    return f;
}

static struct sn_future *copy_call(struct sn__core *c, unsigned core, sn_copy_fn fn,
                                   const void *req, size_t len, void *out, size_t cap)
{
    int rc = check_args(req, len, out, cap);
    if (rc == 0)
        rc = sn__smp_check_target(c, core, false);
    if (rc)
        return sn_failed(rc);
    if (core != c->id && len <= INLINE_MAX && cap == 0)
        return send_inline(c, core, fn, req, len);

    struct sn__copy_call *k = block_get(c, sizeof *k + res_off((uint32_t)len) + cap);
    if (!k)
        return sn_failed(-ENOMEM);
    k->call.out = out;
    k->len = (uint32_t)len;
    k->cap = (uint32_t)cap;
    if (len)
        memcpy(k->data, req, len);
    struct sn_future *f;
    sn__call_link(c, &k->call, &f);
    if (core == c->id) {
        struct local_copy *l = sn__sched_obj(&c->sched);
        sn_task_init(&l->task, local_run);
        l->k = k;
        l->fn = fn;
        l->tag = c->sched.tag;
        sn_schedule(&l->task);
        return f;
    }
    assert(((uintptr_t)k & SN__TOKEN_BITS) == 0);
    struct sn_msg m = {.fn = req_block,
                       .arg = (void *)(uintptr_t)((uint64_t)len | (uint64_t)cap << 32),
                       .token = (void *)((uintptr_t)k | sn__token_bits(c->sched.tag)),
                       .value = (uint64_t)(uintptr_t)fn};
    rc = sn__smp_send_msg(c, core, &m);
    if (rc < 0)
        finish(c, k, rc, 0); /* f has no consumer yet: it just holds the error */
    return f;
}

struct sn_future *sn_submit_copy(unsigned core, sn_copy_fn fn, const void *req, size_t len)
{
    struct sn__core *c = sn__core_here(__func__);
    return copy_call(c, core, fn, req, len, NULL, 0);
}

struct sn_future *sn_submit_copy_into(unsigned core, sn_copy_fn fn, const void *req, size_t len,
                                      void *out, size_t cap)
{
    struct sn__core *c = sn__core_here(__func__);
    return copy_call(c, core, fn, req, len, out, cap);
}
