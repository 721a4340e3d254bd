/*
 * Outgoing TCP connections (sn_connect, contract in include/sn/net.h): a non-blocking socket,
 * IORING_OP_CONNECT (linked to a timeout when one is asked for), then a connection owned by
 * the calling core, reading at once, handed over through the future.
 */
#include "reactor/net_internal.h"

#include <sn/reactor.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct connect_op {
    struct sn__io_op op;
    struct sn_promise *promise;
    struct sn__netc *nc;
    int fd;
    struct sockaddr_storage addr;
    struct __kernel_timespec ts;
    struct sn_connect_config cfg;
};

static void connect_end(struct connect_op *k, int err)
{
    struct sn__netc *nc = k->nc;
    struct sn_conn *c = NULL;
    if (!err && sn__net_stopping(nc))
        err = -ECANCELED;
    if (!err) {
        c = sn__conn_new(nc, k->fd, &k->cfg.limits, k->cfg.ops, k->cfg.arg, NULL);
        if (!c)
            err = -ENOMEM;
    }
    if (err) {
        sn__net_close_fd(k->fd, false);
        sn_promise_fail(k->promise, err);
    } else {
        int one = 1;
        setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        sn__conn_start(c);
        sn_promise_set(k->promise, (uint64_t)(uintptr_t)c);
    }
    free(k);
    sn__netc_unref(nc);
}

static void connect_cb(struct sn__io_op *op, int res, uint32_t flags)
{
    (void)flags;
    struct connect_op *k = (struct connect_op *)op;
    /* A linked timeout that fired cancels the connect. */
    if (res == -ECANCELED && k->cfg.timeout_ms && !sn_stopping())
        res = -ETIMEDOUT;
    connect_end(k, res < 0 ? res : 0);
}

struct sn_future *sn_connect(const struct sn_connect_config *cfg)
{
    sn__sched_here(__func__);
    if (!cfg)
        return sn_failed(-EINVAL);
    int err;
    struct sn__netc *nc = sn__netc_get(&err);
    if (!nc)
        return sn_failed(err);
    struct connect_op *k = calloc(1, sizeof *k);
    if (!k)
        return sn_failed(-ENOMEM);
    k->cfg = *cfg;
    k->cfg.host = NULL;
    socklen_t alen;
    int rc = sn_addr_parse(cfg->host, cfg->port, &k->addr, &alen);
    if (rc == 0 &&
        (k->fd = socket(k->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
        rc = -errno;
    struct io_uring_sqe *sqe = NULL, *t = NULL;
    if (rc == 0 && !sn__net_sqes(&sqe, cfg->timeout_ms ? &t : NULL)) {
        close(k->fd);
        rc = -EBUSY;
    }
    if (rc < 0) {
        free(k);
        return sn_failed(rc);
    }
    struct sn_future *f;
    k->promise = sn_promise_new(&f);
    k->nc = nc;
    sn__netc_ref(nc);
    sn__io_op_init(&k->op, connect_cb);
    io_uring_prep_connect(sqe, k->fd, (struct sockaddr *)&k->addr, alen);
    sn__sqe_bind(sqe, &k->op);
    if (t) {
        sqe->flags |= IOSQE_IO_LINK;
        k->ts.tv_sec = cfg->timeout_ms / 1000;
        k->ts.tv_nsec = (long long)(cfg->timeout_ms % 1000) * 1000000;
        io_uring_prep_link_timeout(t, &k->ts, 0);
        io_uring_sqe_set_data64(t, 0);
    }
    return f;
}
