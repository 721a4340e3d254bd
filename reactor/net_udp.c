/*
 * UDP sockets (contract in include/sn/net.h): one IORING_OP_RECVMSG in flight at a time into
 * the socket's own 64 KiB buffer, re-armed after each datagram; sends copy the datagram into
 * a record that lives until its completion. The socket closes once the receive has ended and
 * no send is in flight (an fd must never close under a prepared SQE), then on_close runs from
 * the run queue.
 */
#include "reactor/net_internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct udp_send {
    struct sn__io_op op;
    struct sn_udp *u;
    struct sn_promise *promise;
    struct msghdr msg;
    struct iovec iov;
    struct sockaddr_storage to;
    char data[];
};

static void udp_recv_cb(struct sn__io_op *op, int res, uint32_t flags);

static void udp_finish(struct sn_task *t)
{
    struct sn_udp *u = SN_CONTAINER_OF(t, struct sn_udp, fin_task);
    struct sn__netc *nc = u->nc;
    sn_list_remove(&u->link);
    close(u->fd);
    if (u->cfg.on_close)
        u->cfg.on_close(u, u->cfg.arg);
    struct sn__waiters closed = u->closed; /* after on_close: it may close too */
    free(u);
    sn__netc_unref(nc);
    sn__waiters_settle(&closed, 0, 0);
}

static bool udp_arm(struct sn_udp *u)
{
    struct io_uring_sqe *sqe = sn__io_sqe();
    if (!sqe)
        return false;
    memset(&u->msg, 0, sizeof u->msg);
    u->iov = (struct iovec){u->buf, sizeof u->buf};
    u->msg.msg_name = &u->from;
    u->msg.msg_namelen = sizeof u->from;
    u->msg.msg_iov = &u->iov;
    u->msg.msg_iovlen = 1;
    io_uring_prep_recvmsg(sqe, u->fd, &u->msg, 0);
    u->rop.cb = udp_recv_cb;
    sn__sqe_bind_as(sqe, &u->rop, u->tag);
    return true;
}

static void udp_progress(struct sn_udp *u);

static void udp_sqe_ready(void *arg, int err, uint64_t value)
{
    (void)value;
    struct sn_udp *u = arg;
    u->sqe_wait = false;
    if (err)
        u->closing = true; /* the reactor stops */
    udp_progress(u);
}

/* No SQE for the receive or its cancel: again after the next submit. false: stopping. */
static bool udp_wait_sqe(struct sn_udp *u)
{
    if (u->sqe_wait)
        return true;
    u->sqe_wait = sn__sqe_wait(udp_sqe_ready, u);
    return u->sqe_wait;
}

static void udp_progress(struct sn_udp *u)
{
    if (u->fin_queued || u->sqe_wait)
        return;
    if (!u->closing) {
        if (u->rop.inflight || udp_arm(u) || udp_wait_sqe(u))
            return;
        u->closing = true; /* no SQE while the reactor stops */
    }
    if (u->rop.inflight) {
        if (!u->rcancel && !(u->rcancel = sn__net_cancel(&u->rop)))
            udp_wait_sqe(u); /* (while stopping the reactor cancels it itself) */
        return;
    }
    if (u->sends)
        return;
    u->fin_queued = true;
    sn_task_init(&u->fin_task, udp_finish);
    sn_schedule(&u->fin_task);
}

static void udp_recv_cb(struct sn__io_op *op, int res, uint32_t flags)
{
    (void)flags;
    struct sn_udp *u = SN_CONTAINER_OF(op, struct sn_udp, rop);
    u->rcancel = false;
    if (res >= 0 && !u->closing && u->cfg.on_datagram)
        u->cfg.on_datagram(u, u->cfg.arg, u->buf, (size_t)res, (struct sockaddr *)&u->from,
                           u->msg.msg_namelen);
    else if (res == -ECANCELED)
        u->closing = true; /* ours, or the reactor stops */
    udp_progress(u);
}

/* Opens the socket and starts receiving: 0 with *out set, or a negative errno. */
static int udp_open(const struct sn_udp_config *cfg, struct sn_udp **out)
{
    int err;
    if (!cfg)
        return -EINVAL;
    struct sn__netc *nc = sn__netc_get(&err);
    if (!nc)
        return err;
    struct sockaddr_storage a;
    socklen_t alen;
    err = sn_addr_parse(cfg->host, cfg->port, &a, &alen);
    if (err < 0)
        return err;
    int fd = socket(a.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sn_udp *u = NULL;
    if (bind(fd, (struct sockaddr *)&a, alen) < 0) {
        err = -errno;
    } else if (!(u = calloc(1, sizeof *u))) {
        err = -ENOMEM;
    } else {
        u->fd = fd;
        u->core = nc->core;
        u->nc = nc;
        u->cfg = *cfg;
        u->cfg.host = NULL;
        u->tag = sn__tls_sched->tag & SN__TAG_GROUP; /* the opener's group, not serving */
        sn__io_op_init(&u->rop, udp_recv_cb);
        if (!udp_arm(u))
            err = -EBUSY;
    }
    if (err < 0) {
        free(u);
        close(fd);
        return err;
    }
    struct sockaddr_storage b;
    socklen_t blen = sizeof b;
    if (getsockname(fd, (struct sockaddr *)&b, &blen) == 0)
        u->port = ntohs(b.ss_family == AF_INET ? ((struct sockaddr_in *)&b)->sin_port
                                               : ((struct sockaddr_in6 *)&b)->sin6_port);
    sn_list_push_back(&nc->udps, &u->link);
    sn__netc_ref(nc);
    *out = u;
    return 0;
}

struct sn_future *sn_udp_open(const struct sn_udp_config *cfg)
{
    sn__sched_here(__func__);
    struct sn_udp *u;
    int rc = udp_open(cfg, &u);
    return rc < 0 ? sn_failed(rc) : sn_ready((uint64_t)(uintptr_t)u);
}

uint16_t sn_udp_port(const struct sn_udp *u)
{
    return u->port;
}

static void udp_send_cb(struct sn__io_op *op, int res, uint32_t flags)
{
    (void)flags;
    struct udp_send *s = (struct udp_send *)op;
    struct sn_udp *u = s->u;
    if (res >= 0)
        sn_promise_set(s->promise, (uint64_t)res);
    else
        sn_promise_fail(s->promise, res);
    free(s);
    u->sends--;
    udp_progress(u);
}

struct sn_future *sn_udp_send(struct sn_udp *u, const void *data, size_t len,
                              const struct sockaddr *to, socklen_t tolen)
{
    sn__sched_here(__func__);
    if (sn_core_id() != u->core)
        return sn_failed(-EXDEV);
    if (u->closing)
        return sn_failed(-EPIPE);
    if (!to || tolen > sizeof(struct sockaddr_storage))
        return sn_failed(-EINVAL);
    struct udp_send *s = malloc(sizeof *s + len);
    if (!s)
        return sn_failed(-ENOMEM);
    struct io_uring_sqe *sqe = sn__io_sqe();
    if (!sqe) {
        free(s);
        return sn_failed(-EBUSY); /* the SQ is full even after submitting: try later */
    }
    memset(s, 0, sizeof *s);
    memcpy(s->data, data, len);
    memcpy(&s->to, to, tolen);
    s->u = u;
    s->iov = (struct iovec){s->data, len};
    s->msg.msg_name = &s->to;
    s->msg.msg_namelen = tolen;
    s->msg.msg_iov = &s->iov;
    s->msg.msg_iovlen = 1;
    struct sn_future *f;
    s->promise = sn_promise_new(&f);
    sn__io_op_init(&s->op, udp_send_cb);
    io_uring_prep_sendmsg(sqe, u->fd, &s->msg, MSG_NOSIGNAL);
    sn__sqe_bind(sqe, &s->op);
    u->sends++;
    return f;
}

struct sn_future *sn_udp_close(struct sn_udp *u)
{
    sn__sched_here(__func__);
    if (sn_core_id() != u->core)
        return sn_failed(-EXDEV);
    struct sn_future *f = sn__waiters_add(&u->closed);
    if (!u->closing) {
        u->closing = true;
        udp_progress(u);
    }
    return f;
}

void sn__udp_stop(struct sn_udp *u)
{
    if (u->closing)
        return;
    u->closing = true;
    udp_progress(u);
}
