/* io_uring operations with callbacks: see reactor/io.h. */
#include "reactor/io.h"

#include "reactor/core.h"

struct io_uring_sqe *sn__sqe_get(void)
{
    struct sn__core *c = sn__core_self();
    if (!c)
        return NULL;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&c->uring.ring);
    if (!sqe) {
        io_uring_submit(&c->uring.ring);
        sqe = io_uring_get_sqe(&c->uring.ring);
    }
    return sqe;
}

void sn__sqe_bind(struct io_uring_sqe *sqe, struct sn__io_op *op)
{
    struct sn__core *c = sn__core_self();
    io_uring_sqe_set_data(sqe, op);
    op->tag = c->sched.tag;
    if (op->inflight)
        return; /* a second SQE for a multishot op already in flight */
    op->inflight = true;
    sn_list_push_back(&c->ops, &op->link);
    c->nops++;
}

void sn__sqe_bind_as(struct io_uring_sqe *sqe, struct sn__io_op *op, uint8_t tag)
{
    sn__sqe_bind(sqe, op);
    op->tag = tag;
}

static void unlink_op(struct sn__core *c, struct sn__io_op *op)
{
    sn_list_remove(&op->link);
    op->inflight = false;
    c->nops--;
}

/* A callback under the tag of the code that started the I/O, charged to its group. */
static void complete_tagged(struct sn__core *c, struct sn__io_op *op, int res, uint32_t flags)
{
    struct sn__sched *s = &c->sched;
    uint8_t tag = op->tag, saved = s->tag; /* op may be gone after its callback */
    bool timed = (tag & SN__TAG_GROUP) != 0;
    uint64_t t0 = timed ? sn_now_ns() : 0;
    s->tag = tag;
    op->cb(op, res, flags);
    if (timed)
        sn__sched_charge(s, tag & SN__TAG_GROUP, sn_now_ns() - t0);
    s->tag = saved;
}

void sn__io_complete(struct sn__core *c, uint64_t user_data, int res, uint32_t flags)
{
    struct sn__io_op *op = (struct sn__io_op *)(uintptr_t)user_data;
    if (!op)
        return;
    /* Unlinked before the callback so it may resubmit the same op. */
    if (!(flags & IORING_CQE_F_MORE) && op->inflight)
        unlink_op(c, op);
    if (sn_likely(op->tag == 0)) /* the main group, not serving: as before groups */
        op->cb(op, res, flags);
    else
        complete_tagged(c, op, res, flags);
}

void sn__io_cancel_all(struct sn__core *c)
{
    SN_LIST_FOR_EACH (n, &c->ops) {
        struct sn__io_op *op = SN_CONTAINER_OF(n, struct sn__io_op, link);
        struct io_uring_sqe *sqe = sn__sqe_get();
        if (!sqe)
            return; /* retried at the next turn: ops_cancelled stays false */
        io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)op, 0);
        io_uring_sqe_set_data64(sqe, 0);
    }
    c->ops_cancelled = true;
}
