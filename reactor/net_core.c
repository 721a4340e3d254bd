/*
 * The network layer's per-core state: the provided buffer ring, the corked-output flush that
 * runs once per loop turn, and the stop sentinel (see reactor/net_internal.h). Also address
 * parsing and small socket helpers.
 *
 * Flush timing: the first write of a turn puts the connection on the dirty list and queues
 * the flush task. A write made by a completion callback (phase 4) is flushed from the run
 * queue at the start of the next turn, a write made by a task later in the same task phase;
 * either way the send SQE goes out with that turn's submit, after every reply produced by
 * the completions, mesh replies and tasks before it, so pipelined replies leave in one send.
 */
#include "reactor/net_internal.h"

#include <sn/reactor.h>

#include "reactor/core.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static __thread struct sn__netc *tls_netc;

int sn_addr_parse(const char *host, uint16_t port, struct sockaddr_storage *out, socklen_t *len)
{
    if (!out || !len)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    if (!host || strcmp(host, "localhost") == 0)
        host = SN_NET_DEFAULT_HOST;
    else if (strcmp(host, "*") == 0)
        host = "0.0.0.0";
    struct sockaddr_in *a4 = (struct sockaddr_in *)out;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        *len = sizeof *a4;
        return 0;
    }
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        *len = sizeof *a6;
        return 0;
    }
    return -EINVAL;
}

void sn__net_close_fd(int fd, bool reset)
{
    if (fd < 0)
        return;
    if (reset) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(fd);
}

bool sn__net_sqes(struct io_uring_sqe **a, struct io_uring_sqe **b)
{
    struct sn__core *core = sn__core_self();
    if (!core)
        return false;
    /* Make room first, so the pair is not split by a submit in between. */
    if (b && io_uring_sq_space_left(&core->uring.ring) < 2)
        io_uring_submit(&core->uring.ring);
    *a = sn__io_sqe();
    if (!*a)
        return false;
    if (b && !(*b = sn__io_sqe())) {
        io_uring_prep_nop(*a);
        io_uring_sqe_set_data64(*a, 0);
        return false;
    }
    return true;
}

bool sn__net_cancel(struct sn__io_op *op)
{
    struct io_uring_sqe *sqe = sn__io_sqe();
    if (!sqe)
        return false;
    io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)op, 0);
    io_uring_sqe_set_data64(sqe, 0);
    return true;
}

void sn__net_submit_now(void)
{
    struct sn__core *core = sn__core_self();
    if (core)
        io_uring_submit(&core->uring.ring);
}

bool sn__net_stopping(struct sn__netc *nc)
{
    return nc->stopping || sn_stopping();
}

bool sn__net_final(void)
{
    struct sn__core *core = sn__core_self();
    return !core || core->finishing;
}

/* ---- buffer ring ------------------------------------------------------------------------ */

static void br_setup(struct sn__netc *nc)
{
    struct sn__core *core = sn__core_self();
    nc->br_state = -1;
    if (nc->plain_env || !core || !(core->uring.features & SN__URING_BUF_RING))
        return;
    nc->br_bytes = SN__NET_NBUFS * sizeof(struct io_uring_buf);
    void *mem =
        mmap(NULL, nc->br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return;
    nc->bufs = aligned_alloc(4096, (size_t)SN__NET_NBUFS * SN__NET_BUFSZ);
    if (!nc->bufs) {
        munmap(mem, nc->br_bytes);
        return;
    }
    nc->br = mem;
    io_uring_buf_ring_init(nc->br);
    struct io_uring_buf_reg reg = {
        .ring_addr = (unsigned long)mem, .ring_entries = SN__NET_NBUFS, .bgid = SN__NET_BGID};
    if (io_uring_register_buf_ring(&core->uring.ring, &reg, 0) != 0) {
        munmap(mem, nc->br_bytes);
        free(nc->bufs);
        nc->br = NULL;
        nc->bufs = NULL;
        return;
    }
    int mask = io_uring_buf_ring_mask(SN__NET_NBUFS);
    for (unsigned i = 0; i < SN__NET_NBUFS; i++)
        io_uring_buf_ring_add(nc->br, sn__netc_buf(nc, i), SN__NET_BUFSZ, (unsigned short)i, mask,
                              (int)i);
    io_uring_buf_ring_advance(nc->br, SN__NET_NBUFS);
    for (unsigned i = 0; i < SN__NET_NBUFS; i++)
        nc->lend[i] = (struct sn__lend){.nc = nc};
    nc->br_state = 1;
}

bool sn__netc_bufring(struct sn__netc *nc)
{
    if (nc->br_state == 0)
        br_setup(nc);
    return nc->br_state == 1;
}

void sn__netc_buf_return(struct sn__netc *nc, unsigned bid)
{
    io_uring_buf_ring_add(nc->br, sn__netc_buf(nc, bid), SN__NET_BUFSZ, (unsigned short)bid,
                          io_uring_buf_ring_mask(SN__NET_NBUFS), 0);
    io_uring_buf_ring_advance(nc->br, 1);
}

static void br_teardown(struct sn__netc *nc)
{
    struct sn__core *core = sn__core_self();
    if (nc->br_state != 1)
        return;
    /* The ring may be gone already only if the core is; we run on the core thread. */
    if (core)
        io_uring_unregister_buf_ring(&core->uring.ring, SN__NET_BGID);
    munmap(nc->br, nc->br_bytes);
    free(nc->bufs);
    nc->br = NULL;
    nc->bufs = NULL;
    nc->br_state = -1;
}

/* ---- flush -------------------------------------------------------------------------------- */

static void flush_run(struct sn_task *t)
{
    struct sn__netc *nc = SN_CONTAINER_OF(t, struct sn__netc, flush_task);
    nc->flush_queued = false;
    struct sn_conn *list = nc->dirty;
    nc->dirty = NULL;
    while (list) {
        struct sn_conn *c = list;
        list = c->dirty_next;
        c->dirty_next = NULL;
        c->dirty = false;
        sn__conn_send(c);
    }
    sn__netc_unref(nc);
}

void sn__netc_mark_dirty(struct sn__netc *nc, struct sn_conn *c)
{
    if (c->dirty)
        return;
    c->dirty = true;
    c->dirty_next = nc->dirty;
    nc->dirty = c;
    if (!nc->flush_queued) {
        nc->flush_queued = true;
        sn__netc_ref(nc);
        sn_task_init(&nc->flush_task, flush_run);
        sn_schedule(&nc->flush_task);
    }
}

/* ---- stop sentinel ------------------------------------------------------------------------ */

/* Closes everything this core still has open; each socket drops its netc ref when gone. */
static void netc_stop(struct sn__netc *nc)
{
    nc->stopping = true;
    SN_LIST_FOR_EACH (n, &nc->slots)
        sn__lslot_stop(SN_CONTAINER_OF(n, struct sn__lslot, link));
    SN_LIST_FOR_EACH (n, &nc->udps)
        sn__udp_stop(SN_CONTAINER_OF(n, struct sn_udp, link));
    SN_LIST_FOR_EACH (n, &nc->conns)
        sn__conn_stop(SN_CONTAINER_OF(n, struct sn_conn, link));
}

static bool sentinel_arm(struct sn__netc *nc);

static void sentinel_cb(struct sn__io_op *op, int res, uint32_t flags)
{
    (void)flags;
    struct sn__netc *nc = SN_CONTAINER_OF(op, struct sn__netc, sentinel);
    if (res == -ETIME && !sn_stopping() && sentinel_arm(nc))
        return; /* it really expired (after decades): keep watching */
    netc_stop(nc);
    sn__netc_unref(nc);
}

static bool sentinel_arm(struct sn__netc *nc)
{
    struct io_uring_sqe *sqe = sn__io_sqe();
    if (!sqe)
        return false;
    nc->sentinel_ts.tv_sec = 1ll << 30;
    nc->sentinel_ts.tv_nsec = 0;
    io_uring_prep_timeout(sqe, &nc->sentinel_ts, 0, 0);
    /* The core's own op, not the work of whoever touched networking first: the main group
     * (its callback stops every connection of the core, whatever group opened it). */
    sn__sqe_bind_as(sqe, &nc->sentinel, 0);
    return true;
}

/* ---- the per-core state --------------------------------------------------------------------- */

static bool env_true(const char *name)
{
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

struct sn__netc *sn__netc_get(int *err)
{
    if (sn_likely(tls_netc != NULL)) {
        if (!tls_netc->stopping)
            return tls_netc;
        *err = -ECANCELED;
        return NULL;
    }
    if (!sn__core_self()) {
        *err = -EPERM;
        return NULL;
    }
    if (sn_stopping()) {
        *err = -ECANCELED;
        return NULL;
    }
    struct sn__netc *nc = calloc(1, sizeof *nc);
    if (!nc) {
        *err = -ENOMEM;
        return NULL;
    }
    nc->core = sn_core_id();
    sn_list_init(&nc->conns);
    sn_list_init(&nc->slots);
    sn_list_init(&nc->udps);
    nc->plain_env = env_true("SN_NET_PLAIN_RECV");
    nc->poll_first = sn__net_poll_first_ok();
    nc->lend_max = SN__NET_LEND_MAX;
    nc->out_max = SN__NET_LEND_OUT_MAX;
    sn__io_op_init(&nc->sentinel, sentinel_cb);
    if (!sentinel_arm(nc)) {
        free(nc);
        *err = -EBUSY;
        return NULL;
    }
    nc->refs = 1; /* the sentinel's, dropped when the reactor stops */
    nc->cur_bid = -1;
    sn__pool_init(&nc->rpool, SN__REPLY_BLOCK, 64, NULL);
    tls_netc = nc;
    return nc;
}

unsigned sn__net_take_active(void)
{
    struct sn__netc *nc = tls_netc;
    if (!nc)
        return 0;
    unsigned n = nc->active;
    nc->active = 0;
    nc->epoch++;
    return n;
}

unsigned sn__net_lent_buffers(void)
{
    return tls_netc ? tls_netc->nlent : 0;
}

void sn__net_set_lend_limits(unsigned all, unsigned out)
{
    if (tls_netc) {
        tls_netc->lend_max = all;
        tls_netc->out_max = out;
    }
}

void sn__net_inject_eagain(unsigned sends, unsigned recvs)
{
    if (tls_netc) {
        tls_netc->eagain_sends = sends;
        tls_netc->eagain_recvs = recvs;
    }
}

struct sn__net_counts sn__net_counts(void)
{
    return tls_netc ? tls_netc->counts : (struct sn__net_counts){0};
}

/* SN_NET_STATS=1: one line per core at the end (bench_echo_ab's copy counts). */
static void print_counts(const struct sn__netc *nc)
{
    const struct sn__net_counts *k = &nc->counts;
    if (!env_true("SN_NET_STATS"))
        return;
    fprintf(stderr,
            "libsn: net core %u: recv_bytes=%llu held_copied=%llu stream_copied=%llu "
            "out_copied=%llu stream_lent=%llu lend_budget=%llu lend_slots=%llu "
            "lend_small=%llu lend_other=%llu out_budget=%llu send_again=%llu recv_again=%llu "
            "again_waits=%llu\n",
            nc->core, (unsigned long long)k->recv_bytes, (unsigned long long)k->held_copied,
            (unsigned long long)k->stream_copied, (unsigned long long)k->out_copied,
            (unsigned long long)k->stream_lent, (unsigned long long)k->lend_budget,
            (unsigned long long)k->lend_slots, (unsigned long long)k->lend_small,
            (unsigned long long)k->lend_other, (unsigned long long)k->out_budget,
            (unsigned long long)k->send_again, (unsigned long long)k->recv_again,
            (unsigned long long)k->again_waits);
}

uint64_t sn__net_reply_blocks(void)
{
    return tls_netc ? tls_netc->rpool.in_use : 0;
}

void sn__netc_ref(struct sn__netc *nc)
{
    nc->refs++;
}

void sn__netc_unref(struct sn__netc *nc)
{
    if (--nc->refs)
        return;
    print_counts(nc);
    br_teardown(nc);
    struct sn__core *core = sn__core_self();
    if (nc->files_state == 1 && core) /* drop-slot SQEs still queued then fail harmlessly */
        io_uring_unregister_files(&core->uring.ring);
    sn__pool_destroy(&nc->rpool);
    sn__sblock_cache_free(nc);
    if (tls_netc == nc)
        tls_netc = NULL;
    free(nc);
}
