/*
 * kv_floor: a reference server for bench_kv_client's one-request-in-flight rows that does only
 * the socket work, to tell how much of a server's rate there is the kernel's and the client's
 * (bench/bench_kv_floor.sh).
 *
 * One thread per CPU, each pinned, with its own SO_REUSEPORT listener and io_uring (single
 * issuer, deferred task work, as sn-kv's reactors), a multishot accept, a multishot receive per
 * connection into a buffer ring, and one send at a time per connection. No store, no
 * framework, no cross-core work: the value of key:NNNNNNNN is derived from its number exactly
 * as bench_kv_client checks it (V bytes of 'a' + N % 26), a get answers it, a set answers
 * STORED and keeps nothing. Its CPU time per request is what the socket work costs a server of
 * this design; bench_kv_floor.sh turns it into a bound on the rate (both CPUs busy with the
 * client's and this work only). It is not a ceiling on the rate itself: it sleeps as soon as it
 * has nothing to do, and a server that polls a while first (sn-kv) can answer sooner.
 *
 *   kv_floor --port P [--smp N] [--value-size V] [--poll-us U]
 *            [-m M -c C -q --lax-keys: sn-kv's, taken and ignored]
 *
 * So bench_kv.sh can start it as KV_BIN or KV_PEER in its setup b only (KV_BENCH_ONLY=b or
 * depth1; setup a's --cpuset and other KV_ARGS are refused). --poll-us U: after work, spin U
 * microseconds on the ring before sleeping (0, the default: sleep at once; spinning at depth 1
 * took CPU from the client and lowered the rate, 120-130k against 155-168k requests/s).
 * Keys not of the form key:NNNNNNNN miss (END); other commands, and noreply, are not known
 * (ERROR, or a set's data taken as a command). Runs until SIGINT/SIGTERM, which kill it:
 * nothing to save. For benchmarks on loopback only: a request must fit 64 KiB.
 */
#include <errno.h>
#include <getopt.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_util.h"

#define MAX_CONNS  8192
#define NBUFS      1024
#define BUF_SIZE   4096
#define IN_CAP     65536
#define TAG_ACCEPT 0xffffffffu

enum { OP_RECV = 1, OP_SEND = 2 };

struct buf {
    char *p;
    size_t len, cap;
};

/* A connection: answers go to `next` while `out` is in the kernel's send (from `sent` on); a
 * completed send swaps them, so a send's bytes never move. It is freed once neither its send
 * nor its multishot receive can complete any more (no CQE then carries its fd). */
struct conn {
    int fd;
    char in[IN_CAP];
    size_t inlen;
    struct buf out, next;
    size_t sent;
    bool sending, recv_live, closing;
};

struct worker {
    int cpu, lfd;
    pthread_t th;
    struct io_uring ring;
    struct io_uring_buf_ring *br;
    char *bufs;
    struct conn *conns[MAX_CONNS];
};

static unsigned port, smp, vsize = 100, poll_us;
static char *values; /* 26 blocks of vsize bytes: 'a'...'z' */

static void die(const char *what, int err)
{
    fprintf(stderr, "kv_floor: %s: %s\n", what, strerror(err));
    exit(1);
}

static struct io_uring_sqe *sqe_of(struct worker *w)
{
    struct io_uring_sqe *s = io_uring_get_sqe(&w->ring);
    if (!s) {
        io_uring_submit(&w->ring);
        s = io_uring_get_sqe(&w->ring);
    }
    if (!s)
        die("no SQE", EBUSY);
    return s;
}

static uint64_t tag(int fd, int op)
{
    return (uint64_t)(unsigned)fd << 8 | (unsigned)op;
}

static void arm_accept(struct worker *w)
{
    struct io_uring_sqe *s = sqe_of(w);
    io_uring_prep_multishot_accept(s, w->lfd, NULL, NULL, 0);
    io_uring_sqe_set_data64(s, TAG_ACCEPT);
}

static void arm_recv(struct worker *w, struct conn *c)
{
    struct io_uring_sqe *s = sqe_of(w);
    io_uring_prep_recv_multishot(s, c->fd, NULL, 0, 0);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = 0;
    io_uring_sqe_set_data64(s, tag(c->fd, OP_RECV));
    c->recv_live = true;
}

static void send_rest(struct worker *w, struct conn *c)
{
    struct io_uring_sqe *s = sqe_of(w);
    io_uring_prep_send(s, c->fd, c->out.p + c->sent, c->out.len - c->sent, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(s, tag(c->fd, OP_SEND));
    c->sending = true;
}

/* Sends what `next` holds unless a send is in flight (its completion comes back here). */
static void flush(struct worker *w, struct conn *c)
{
    if (c->sending || !c->next.len)
        return;
    struct buf t = c->out;
    c->out = c->next;
    c->next = (struct buf){.p = t.p, .cap = t.cap};
    c->sent = 0;
    send_rest(w, c);
}

static void out_put(struct conn *c, const char *p, size_t n)
{
    struct buf *b = &c->next;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p)
            die("out of memory", ENOMEM);
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

/* key:NNNNNNNN's number, or -1 for any other key. */
static long key_number(const char *k, size_t n)
{
    if (n != 12 || memcmp(k, "key:", 4) != 0)
        return -1;
    long v = 0;
    for (size_t i = 4; i < 12; i++) {
        if (k[i] < '0' || k[i] > '9')
            return -1;
        v = v * 10 + (k[i] - '0');
    }
    return v;
}

static void answer_get(struct conn *c, const char *keys, const char *end)
{
    while (keys < end) {
        while (keys < end && *keys == ' ')
            keys++;
        const char *k = keys;
        while (keys < end && *keys != ' ')
            keys++;
        long n = key_number(k, (size_t)(keys - k));
        if (n < 0)
            continue;
        char head[64];
        int h = snprintf(head, sizeof head, "VALUE %.*s 0 %u\r\n", (int)(keys - k), k, vsize);
        out_put(c, head, (size_t)h);
        out_put(c, values + (size_t)(n % 26) * vsize, vsize);
        out_put(c, "\r\n", 2);
    }
    out_put(c, "END\r\n", 5);
}

/* Answers every whole command at the front of c->in; returns the bytes consumed. */
static size_t answer_all(struct conn *c)
{
    size_t used = 0;
    for (;;) {
        char *p = c->in + used;
        size_t left = c->inlen - used;
        char *nl = memchr(p, '\n', left);
        if (!nl)
            return used;
        size_t line = (size_t)(nl - p) + 1;
        char *eol = line >= 2 && nl[-1] == '\r' ? nl - 1 : nl;
        if (left >= 4 && memcmp(p, "get ", 4) == 0) {
            answer_get(c, p + 4, eol);
        } else if (left >= 4 && memcmp(p, "set ", 4) == 0) {
            const char *sp = eol;
            while (sp > p && sp[-1] != ' ')
                sp--;
            size_t total = line + strtoul(sp, NULL, 10) + 2;
            if (left < total)
                return used;
            out_put(c, "STORED\r\n", 8);
            line = total;
        } else {
            out_put(c, "ERROR\r\n", 7);
        }
        used += line;
    }
}

/* Starts closing: shutdown ends the multishot receive (whose request would otherwise keep the
 * socket open past close) and fails a send that waits; the fd is closed and the connection
 * freed once both have completed, so no later CQE can reach a new connection on that fd. */
static void close_conn(struct worker *w, struct conn *c)
{
    if (!c->closing) {
        c->closing = true;
        shutdown(c->fd, SHUT_RDWR);
    }
    if (c->sending || c->recv_live)
        return;
    w->conns[c->fd] = NULL;
    close(c->fd);
    free(c->out.p);
    free(c->next.p);
    free(c);
}

static void recycle(struct worker *w, unsigned bid)
{
    io_uring_buf_ring_add(w->br, w->bufs + (size_t)bid * BUF_SIZE, BUF_SIZE, (unsigned short)bid,
                          io_uring_buf_ring_mask(NBUFS), 0);
    io_uring_buf_ring_advance(w->br, 1);
}

static void on_recv(struct worker *w, struct conn *c, struct io_uring_cqe *cqe)
{
    if (!(cqe->flags & IORING_CQE_F_MORE))
        c->recv_live = false;
    if (cqe->res == -ENOBUFS && !c->recv_live) {
        arm_recv(w, c);
        return;
    }
    if (cqe->res <= 0) {
        close_conn(w, c);
        return;
    }
    unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
    char *b = w->bufs + (size_t)bid * BUF_SIZE;
    size_t n = (size_t)cqe->res;
    if (c->inlen + n > IN_CAP)
        die("a request over 64 KiB", EMSGSIZE);
    memcpy(c->in + c->inlen, b, n);
    c->inlen += n;
    recycle(w, bid);
    size_t used = answer_all(c);
    memmove(c->in, c->in + used, c->inlen - used);
    c->inlen -= used;
    if (!c->recv_live)
        arm_recv(w, c);
    flush(w, c);
}

static void on_send(struct worker *w, struct conn *c, int res)
{
    c->sending = false;
    if (res < 0 || c->closing) {
        close_conn(w, c);
        return;
    }
    c->sent += (size_t)res;
    if (c->sent < c->out.len) {
        send_rest(w, c);
        return;
    }
    c->out.len = 0;
    flush(w, c);
}

static void on_accept(struct worker *w, int res, unsigned flags)
{
    if (!(flags & IORING_CQE_F_MORE))
        arm_accept(w);
    if (res < 0)
        return;
    if (res >= MAX_CONNS) { /* conns[] holds fds below it */
        close(res);
        return;
    }
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        die("out of memory", ENOMEM);
    c->fd = res;
    int one = 1;
    setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    w->conns[res] = c;
    arm_recv(w, c);
}

static void on_cqe(struct worker *w, struct io_uring_cqe *cqe)
{
    uint64_t d = io_uring_cqe_get_data64(cqe);
    if (d == TAG_ACCEPT) {
        on_accept(w, cqe->res, cqe->flags);
        return;
    }
    struct conn *c = w->conns[d >> 8];
    if (!c)
        die("a completion for no connection", EINVAL); /* close_conn waits for the last */
    if (c->closing) { /* what completes while closing: buffers go back, then close_conn */
        if (cqe->flags & IORING_CQE_F_BUFFER)
            recycle(w, cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        if ((d & 0xff) == OP_SEND)
            c->sending = false;
        else if (!(cqe->flags & IORING_CQE_F_MORE))
            c->recv_live = false;
        close_conn(w, c);
        return;
    }
    if ((d & 0xff) == OP_RECV)
        on_recv(w, c, cqe);
    else
        on_send(w, c, cqe->res);
}

static unsigned reap(struct worker *w)
{
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(&w->ring, head, cqe)
    {
        on_cqe(w, cqe);
        n++;
    }
    io_uring_cq_advance(&w->ring, n);
    return n;
}

static void setup_ring(struct worker *w)
{
    struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                                         IORING_SETUP_CQSIZE,
                                .cq_entries = 16384};
    int r = io_uring_queue_init_params(4096, &w->ring, &p);
    if (r < 0)
        die("io_uring_queue_init_params", -r);
    size_t sz = NBUFS * sizeof(struct io_uring_buf);
    w->br = aligned_alloc(4096, (sz + 4095) & ~(size_t)4095);
    w->bufs = malloc((size_t)NBUFS * BUF_SIZE);
    if (!w->br || !w->bufs)
        die("out of memory", ENOMEM);
    io_uring_buf_ring_init(w->br);
    struct io_uring_buf_reg reg = {.ring_addr = (uintptr_t)w->br, .ring_entries = NBUFS, .bgid = 0};
    r = io_uring_register_buf_ring(&w->ring, &reg, 0);
    if (r < 0)
        die("io_uring_register_buf_ring", -r);
    for (unsigned i = 0; i < NBUFS; i++)
        io_uring_buf_ring_add(w->br, w->bufs + (size_t)i * BUF_SIZE, BUF_SIZE, (unsigned short)i,
                              io_uring_buf_ring_mask(NBUFS), (int)i);
    io_uring_buf_ring_advance(w->br, NBUFS);
}

static int listener(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd < 0)
        die("socket", errno);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0)
        die("bind", errno);
    if (listen(fd, 4096) < 0)
        die("listen", errno);
    return fd;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    bu_pin_self_or_exit(w->cpu);
    setup_ring(w);
    arm_accept(w);
    uint64_t idle_since = 0; /* when the ring was last found empty, 0 while there is work */
    for (;;) {
        if (poll_us && (!idle_since || bu_now_ns() - idle_since < poll_us * 1000ull))
            io_uring_submit_and_get_events(&w->ring);
        else
            io_uring_submit_and_wait(&w->ring, 1);
        if (reap(w))
            idle_since = 0;
        else if (!idle_since)
            idle_since = bu_now_ns();
    }
    return NULL;
}

static unsigned num(const char *s, unsigned max, const char *name)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || v > max) {
        fprintf(stderr, "kv_floor: --%s wants 0..%u\n", name, max);
        exit(2);
    }
    return (unsigned)v;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"port", 1, 0, 'p'},    {"smp", 1, 0, 's'},      {"value-size", 1, 0, 'v'},
        {"poll-us", 1, 0, 'u'}, {"lax-keys", 0, 0, 'L'}, {0, 0, 0, 0},
    };
    int ch;
    smp = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    while ((ch = getopt_long(argc, argv, "p:m:c:q", lo, NULL)) != -1) {
        switch (ch) {
        case 'p': port = num(optarg, 65535, "port"); break;
        case 's': smp = num(optarg, 256, "smp"); break;
        case 'v': vsize = num(optarg, IN_CAP / 2, "value-size"); break;
        case 'u': poll_us = num(optarg, 1000000, "poll-us"); break;
        case 'm':
        case 'c':
        case 'q':
        case 'L': break; /* sn-kv's, meaningless here */
        default: return 2;
        }
    }
    if (!port || !smp || !vsize) {
        fprintf(stderr, "kv_floor: --port, --smp and --value-size must not be 0\n");
        return 2;
    }
    values = malloc((size_t)26 * vsize);
    if (!values)
        die("out of memory", ENOMEM);
    for (unsigned i = 0; i < 26; i++)
        memset(values + (size_t)i * vsize, 'a' + (int)i, vsize);
    unsigned ncpu = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    struct worker *ws = calloc(smp, sizeof *ws);
    if (!ws)
        die("out of memory", ENOMEM);
    for (unsigned i = 0; i < smp; i++) {
        ws[i].cpu = (int)(i % ncpu);
        ws[i].lfd = listener();
        int r = pthread_create(&ws[i].th, NULL, worker_main, &ws[i]);
        if (r)
            die("pthread_create", r);
    }
    pthread_join(ws[0].th, NULL);
    return 0;
}
