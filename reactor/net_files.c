/*
 * Registered ("fixed") files for connections. Each core's ring gets a sparse table of file
 * slots when its first connection starts, and a connection's socket goes into the slot
 * numbered like its fd (fds are unique in the process, so slots never collide, and no
 * allocator is needed). Its receives and sends then name the slot (IOSQE_FIXED_FILE), which
 * spares the kernel a file lookup and two atomic reference-count updates per operation
 * (fget was ~1-2% of sn-httpd's samples under wrk, from the sends). The fd stays open for
 * everything else (shutdown, sn_conn_fd, socket options).
 *
 * Registering and dropping a slot are SQEs (IORING_OP_FILES_UPDATE, no completion when they
 * succeed) queued before the operations that use the slot, so they take no syscall of their
 * own; the submission queue runs them in order. The drop is queued before close(fd): an fd
 * number the kernel hands out again can only reach a new connection, and its registration,
 * after that. Without an SQE a connection simply uses its fd (registering) or the drop is a
 * synchronous io_uring_register call. SN_NET_PLAIN_FILES=1 turns slots off (tests).
 */
#include "reactor/net_internal.h"

#include "reactor/core.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static int no_file = -1; /* what a dropped slot gets (read by the kernel at submit) */

static bool env_true(const char *name)
{
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

static void files_setup(struct sn__netc *nc)
{
    struct sn__core *core = sn__core_self();
    struct rlimit rl;
    unsigned n = SN__NET_FIXED_MAX;
    nc->files_state = -1;
    if (!core || env_true("SN_NET_PLAIN_FILES"))
        return;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < n)
        n = (unsigned)rl.rlim_cur; /* the kernel refuses a table larger than the limit */
    if (n && io_uring_register_files_sparse(&core->uring.ring, n) == 0) {
        nc->nslots = n;
        nc->files_state = 1;
    }
}

static void slot_sqe_flags(struct io_uring_sqe *sqe)
{
    io_uring_sqe_set_data64(sqe, 0); /* a failure's completion is ignored */
    if (sn__core_self()->uring.features & SN__URING_CQE_SKIP)
        sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

void sn__conn_fix_file(struct sn_conn *c)
{
    struct sn__netc *nc = c->nc;
    if (nc->files_state == 0)
        files_setup(nc);
    if (nc->files_state != 1 || c->fd < 0 || (unsigned)c->fd >= nc->nslots)
        return;
    struct io_uring_sqe *sqe = sn__io_sqe();
    if (!sqe)
        return; /* the connection uses its fd */
    /* The kernel reads the fd at submit time, which comes before SN__NET_FIX_PENDING more
     * SQEs can have been queued (the SQ holds fewer): the ring of values is never overrun. */
    int *val = &nc->fix_fds[nc->fix_next++ % SN__NET_FIX_PENDING];
    *val = c->fd;
    io_uring_prep_files_update(sqe, val, 1, c->fd);
    slot_sqe_flags(sqe);
    c->fixed = true;
}

void sn__conn_unfix_file(struct sn_conn *c)
{
    if (!c->fixed)
        return;
    c->fixed = false;
    struct io_uring_sqe *sqe = sn__io_sqe();
    if (sqe) {
        io_uring_prep_files_update(sqe, &no_file, 1, c->fd);
        slot_sqe_flags(sqe);
        return;
    }
    io_uring_register_files_update(&sn__core_self()->uring.ring, (unsigned)c->fd, &no_file, 1);
}
