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
    if (op->inflight)
        return; /* a second SQE for a multishot op already in flight */
    op->inflight = true;
    sn_list_push_back(&c->ops, &op->link);
    c->nops++;
}

static void unlink_op(struct sn__core *c, struct sn__io_op *op)
{
    sn_list_remove(&op->link);
    op->inflight = false;
    c->nops--;
}

void sn__io_complete(struct sn__core *c, uint64_t user_data, int res, uint32_t flags)
{
    struct sn__io_op *op = (struct sn__io_op *)(uintptr_t)user_data;
    if (!op)
        return;
    /* Unlinked before the callback so it may resubmit the same op. */
    if (!(flags & IORING_CQE_F_MORE) && op->inflight)
        unlink_op(c, op);
    op->cb(op, res, flags);
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
