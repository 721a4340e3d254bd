/*
 * bench_kv_client: a small memcached ASCII load client with deep pipelining, for
 * bench/bench_kv.sh (memcaslap keeps one request in flight per connection, which cannot make a
 * server the bottleneck from a single client core).
 *
 * One thread, epoll, N connections; each keeps up to D requests in flight, topping the
 * window up in one write whenever half of it has been answered. Requests are gets (single, or
 * multi-gets of M keys) and sets in a given ratio over K preloaded keys with V-byte values
 * derived from the key, so every answer is validated: a get must return exactly the key's
 * value, a set must answer STORED; anything else counts as an error. Operations are counted
 * per key (a multi-get of 16 keys is 16 ops), for the server under test and its peer alike.
 *
 *   bench_kv_client --port P [--host A] [--conns N] [--depth D] [--get-pct G] [--mget M]
 *                   [--keys K] [--value-size V] [--secs S] [--cpu C] [--preload] [--uring]
 *   bench_kv_client --free-port            print a free loopback TCP port and exit
 *   bench_kv_client --port P --wait-port   wait (up to 20 s) until P accepts
 *   bench_kv_client                        (no arguments, as `make bench` runs it) runs the
 *                                          whole comparison: bench/bench_kv.sh
 *
 * --uring (with --depth 1 only): the same requests and checks from an io_uring loop instead of
 * epoll: a multishot receive per connection into a buffer ring, and the next request's send
 * queued as soon as the last one is answered (its answer complete and its send's completion
 * reaped, which may come second: ur_next); all of them go to the kernel in one io_uring_enter
 * per batch of completions, instead of a send and a recv system call per request. A cheaper
 * load generator for one request in flight (docs/PERFORMANCE.md, "seventh session"); the
 * epoll loop stays the default and the row the goals are judged by.
 *
 * Prints one line: "ops=<n> secs=<t> ops_per_s=<r> errors=<e> misses=<m> ... cpu_us_per_op=<c>"
 * (the client's CPU time, user + system, over the timed part, per op; 1e6 / c is the rate it
 * could reach with a CPU of its own. On loopback this also counts kernel work done for the
 * server in the client's context: its sends run the server socket's receive and the server's
 * wake-up, which differ by server, so c is what the client's CPU spends, not what the client's
 * own code costs).
 * Exit status 1 when any answer was wrong or a connection failed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <liburing.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
struct opts {
    char set_tail[32]; /* " 0 0 <V>\r\n" */
    size_t set_tail_len;
    const char *host;
    unsigned port, conns, depth, get_pct, mget, keys, vsize, cpu;
    double secs;
    bool preload, pin, uring;
};

/* What a connection waits for, in request order. */
struct pending {
    uint32_t nkeys; /* 0: a set */
    uint32_t first; /* the get's keys: first, first+stride, ... (mod keys) */
    uint32_t stride;
};

struct conn {
    int fd;
    char *rbuf;
    size_t rlen, rcap;
    char *wbuf;
    size_t wlen, woff;
    struct pending *q; /* ring of depth entries */
    unsigned qhead, qlen;
    unsigned got_keys; /* VALUE lines seen for the head get */
    uint64_t rng;
    bool sending; /* --uring: the request's send has not completed yet (ur_send) */
};

static struct opts o = {
    .host = "127.0.0.1",
    .conns = 16,
    .depth = 32,
    .get_pct = 90,
    .mget = 1,
    .keys = 100000,
    .vsize = 100,
    .secs = 3,
};
static uint64_t n_ops, n_errors, n_misses, n_gets, n_sets;
static char errmsg[160];

static char value_byte(uint32_t k)
{
    return (char)('a' + k % 26);
}

/* "key:%08u" without printf: the client must stay cheaper than the servers it loads. */
static int key_name(char *dst, uint32_t k)
{
    memcpy(dst, "key:", 4);
    for (int i = 11; i >= 4; i--) {
        dst[i] = (char)('0' + k % 10);
        k /= 10;
    }
    dst[12] = '\0';
    return 12;
}

/* p, or the end of the run with a clear message when an allocation of `what` failed. */
static void *must(void *p, const char *what)
{
    if (!p) {
        fprintf(stderr, "bench_kv_client: out of memory (%s)\n", what);
        exit(1);
    }
    return p;
}

static void error(const char *what)
{
    if (!n_errors)
        snprintf(errmsg, sizeof errmsg, "%s", what);
    n_errors++;
}

static void wput(struct conn *c, const char *p, size_t n)
{
    memcpy(c->wbuf + c->wlen, p, n);
    c->wlen += n;
}

/* Appends one request and its pending entry; `value` is a scratch buffer of V bytes. */
static void add_request(struct conn *c, char *value)
{
    struct pending *p = &c->q[(c->qhead + c->qlen) % o.depth];
    char line[64];
    uint32_t k = (uint32_t)(bu_splitmix64(&c->rng) % o.keys);
    if (o.preload || bu_splitmix64(&c->rng) % 100 >= o.get_pct) {
        int n = key_name(line, k);
        memset(value, value_byte(k), o.vsize);
        wput(c, "set ", 4);
        wput(c, line, (size_t)n);
        wput(c, o.set_tail, o.set_tail_len);
        wput(c, value, o.vsize);
        wput(c, "\r\n", 2);
        *p = (struct pending){.nkeys = 0, .first = k};
    } else {
        uint32_t stride = 1 + (uint32_t)(bu_splitmix64(&c->rng) % 7919);
        wput(c, "get", 3);
        for (uint32_t i = 0; i < o.mget; i++) {
            line[0] = ' ';
            int n = key_name(line + 1, (uint32_t)((k + (uint64_t)i * stride) % o.keys));
            wput(c, line, (size_t)n + 1);
        }
        wput(c, "\r\n", 2);
        *p = (struct pending){.nkeys = o.mget, .first = k, .stride = stride};
    }
    c->qlen++;
}

/* Fills the window up to depth requests (only once the previous write has left). */
static void top_up(struct conn *c, char *vals)
{
    if (c->woff < c->wlen || c->qlen > o.depth / 2)
        return;
    c->wlen = c->woff = 0;
    while (c->qlen < o.depth)
        add_request(c, vals);
}

static bool flush_out(struct conn *c)
{
    while (c->woff < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN;
        c->woff += (size_t)n;
    }
    return true;
}

/* One answer line at the head of the buffer; returns bytes consumed, 0 if incomplete. */
static size_t parse_one(struct conn *c)
{
    char *p = c->rbuf;
    char *nl = memchr(p, '\n', c->rlen);
    if (!nl)
        return 0;
    size_t line = (size_t)(nl - p) + 1;
    struct pending *h = &c->q[c->qhead];
    if (c->qlen == 0) {
        error("answer without a request");
        return line;
    }
    if (h->nkeys == 0) {
        if (line != 8 || memcmp(p, "STORED\r\n", 8) != 0)
            error("set not STORED");
        n_sets++;
        n_ops++;
        c->qhead = (c->qhead + 1) % o.depth;
        c->qlen--;
        return line;
    }
    if (line == 5 && memcmp(p, "END\r\n", 5) == 0) {
        n_misses += h->nkeys - c->got_keys;
        n_gets++;
        n_ops += h->nkeys;
        c->got_keys = 0;
        c->qhead = (c->qhead + 1) % o.depth;
        c->qlen--;
        return line;
    }
    if (line < 8 || memcmp(p, "VALUE ", 6) != 0) {
        error("unexpected answer to get");
        return line;
    }
    /* VALUE key:NNNNNNNN 0 <bytes>\r\n<data>\r\n: the data may not be here yet. */
    const char *sp = memrchr(p, ' ', line);
    unsigned long bytes = strtoul(sp + 1, NULL, 10);
    size_t total = line + bytes + 2;
    if (c->rlen < total)
        return 0;
    uint32_t k = (uint32_t)strtoul(p + 10, NULL, 10);
    uint32_t want = (uint32_t)((h->first + (uint64_t)c->got_keys * h->stride) % o.keys);
    if (k != want || bytes != o.vsize || p[line] != value_byte(k) ||
        p[line + bytes - 1] != value_byte(k) || p[total - 2] != '\r')
        error("wrong value");
    c->got_keys++;
    return total;
}

/* Takes every complete answer off the front of the connection's buffer. */
static void parse_all(struct conn *c)
{
    size_t used = 0, u;
    while (used < c->rlen) {
        /* parse_one works at the buffer's start: shift lazily through a view. */
        char *save = c->rbuf;
        size_t savelen = c->rlen;
        c->rbuf += used;
        c->rlen -= used;
        u = parse_one(c);
        c->rbuf = save;
        c->rlen = savelen;
        if (!u)
            break;
        used += u;
    }
    memmove(c->rbuf, c->rbuf + used, c->rlen - used);
    c->rlen -= used;
}

static bool on_readable(struct conn *c)
{
    for (;;) {
        if (c->rcap - c->rlen < 65536) {
            c->rcap *= 2;
            c->rbuf = must(realloc(c->rbuf, c->rcap), "receive buffer");
        }
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
        if (n == 0) {
            error("server closed a connection");
            return false;
        }
        if (n < 0)
            return errno == EAGAIN;
        c->rlen += (size_t)n;
        parse_all(c);
        if ((size_t)n < 65536)
            return true;
    }
}

static int connect_one(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o.port)};
    if (fd < 0 || inet_pton(AF_INET, o.host, &a.sin_addr) != 1 ||
        connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("bench_kv_client: connect");
        exit(1);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* The epoll loop (the default): a send and a recv system call per request and connection. */
static void epoll_loop(struct conn *cs, char *vals, double end)
{
    int ep = epoll_create1(0);
    for (unsigned i = 0; i < o.conns; i++) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = &cs[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
    }
    /* Preloading writes every key once, in order, with its own value. */
    uint64_t left = o.keys;
    bool done = false;
    while (!done && !n_errors) {
        /* One clock read per pass, not per connection: 64 reads cost ~3 us here. */
        bool open = bu_now_s() < end;
        for (unsigned i = 0; i < o.conns; i++) {
            struct conn *c = &cs[i];
            if (o.preload) {
                if (c->woff >= c->wlen && c->qlen <= o.depth / 2) {
                    c->wlen = c->woff = 0;
                    while (c->qlen < o.depth && left) {
                        uint32_t k = (uint32_t)(o.keys - left--);
                        memset(vals, value_byte(k), o.vsize);
                        char line[64];
                        int n = sprintf(line, "set key:%08u 0 0 %u\r\n", k, o.vsize);
                        wput(c, line, (size_t)n);
                        wput(c, vals, o.vsize);
                        wput(c, "\r\n", 2);
                        c->q[(c->qhead + c->qlen) % o.depth] = (struct pending){0};
                        c->qlen++;
                    }
                }
            } else if (open) {
                top_up(c, vals);
            }
            if (!flush_out(c))
                error("send failed");
        }
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, 100);
        for (int i = 0; i < n; i++)
            if (!on_readable(evs[i].data.ptr))
                error("recv failed");
        double now = bu_now_s();
        done = o.preload ? left == 0 : now >= end;
        for (unsigned i = 0; i < o.conns; i++)
            if (cs[i].qlen)
                done = false;
        if (!o.preload && now > end + 30)
            error("answers still missing 30 s after the end");
    }
    close(ep);
}

#define UR_NBUFS 256u /* receive buffers in the ring, shared by the connections */
#define UR_BUFSZ 4096u
#define UR_BGID  1
#define UR_RECV  (1ull << 32) /* user_data: connection index | what completed */

struct uring_client {
    struct io_uring ring;
    bool ring_ok; /* ring was set up (ur_teardown exits it) */
    struct io_uring_buf_ring *br;
    char *bufs;
};

static struct io_uring_sqe *ur_sqe(struct uring_client *u)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (!sqe) {
        io_uring_submit(&u->ring);
        sqe = io_uring_get_sqe(&u->ring);
    }
    return sqe;
}

/* Sends the rest of connection i's request; it is in flight until its completion. */
/* The request's unsent bytes; after an -EAGAIN (poll_first) the kernel waits for room before
 * trying, instead of failing again at once. */
static void ur_send(struct uring_client *u, struct conn *c, unsigned i, bool poll_first)
{
    struct io_uring_sqe *sqe = ur_sqe(u);
    c->sending = true;
    io_uring_prep_send(sqe, (int)i, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
    sqe->flags |= IOSQE_FIXED_FILE;
    if (poll_first)
        sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
    io_uring_sqe_set_data64(sqe, i);
}

static void ur_recv(struct uring_client *u, unsigned i)
{
    struct io_uring_sqe *sqe = ur_sqe(u);
    io_uring_prep_recv_multishot(sqe, (int)i, NULL, 0, 0);
    sqe->flags |= IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT;
    sqe->buf_group = UR_BGID;
    io_uring_sqe_set_data64(sqe, UR_RECV | i);
}

/*
 * A new request on connection i once the last one is answered: its send completed AND its
 * answer is complete (the answer may be reaped before the send's completion: the request
 * buffer must not be rewritten under a send in flight). None once the run's time is over.
 */
static void ur_next(struct uring_client *u, struct conn *cs, unsigned i, char *vals, bool over)
{
    struct conn *c = &cs[i];
    if (over || c->sending || c->qlen)
        return;
    c->wlen = c->woff = 0;
    add_request(c, vals);
    ur_send(u, c, i, false);
}

static void ur_buf_recycle(struct uring_client *u, unsigned bid)
{
    io_uring_buf_ring_add(u->br, u->bufs + (size_t)bid * UR_BUFSZ, UR_BUFSZ, (unsigned short)bid,
                          io_uring_buf_ring_mask(UR_NBUFS), 0);
    io_uring_buf_ring_advance(u->br, 1);
}

/* One completion: a send (the rest again if it was short) or received bytes. */
static void ur_complete(struct uring_client *u, struct conn *cs, struct io_uring_cqe *cqe,
                        char *vals, bool over)
{
    unsigned i = (unsigned)(cqe->user_data & 0xffffffffu);
    struct conn *c = &cs[i];
    if (!(cqe->user_data & UR_RECV)) {
        c->sending = false;
        if (cqe->res == -EAGAIN) {
            ur_send(u, c, i, true); /* the kernel stopped waiting for room (its retry limit) */
        } else if (cqe->res < 0) {
            error("send failed");
        } else if ((c->woff += (size_t)cqe->res) < c->wlen) {
            ur_send(u, c, i, false);
        } else {
            ur_next(u, cs, i, vals, over); /* if its answer came first */
        }
        return;
    }
    if (cqe->res > 0 && (cqe->flags & IORING_CQE_F_BUFFER)) {
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        if (c->rcap - c->rlen < (size_t)cqe->res) {
            c->rcap *= 2;
            c->rbuf = must(realloc(c->rbuf, c->rcap), "receive buffer");
        }
        memcpy(c->rbuf + c->rlen, u->bufs + (size_t)bid * UR_BUFSZ, (size_t)cqe->res);
        c->rlen += (size_t)cqe->res;
        ur_buf_recycle(u, bid);
        parse_all(c);
        ur_next(u, cs, i, vals, over);
    } else if (cqe->res == 0) {
        error("server closed a connection");
    } else if (cqe->res != -ENOBUFS && cqe->res != -EAGAIN) {
        error("recv failed");
    }
    if (!(cqe->flags & IORING_CQE_F_MORE) && !n_errors)
        ur_recv(u, i); /* the kernel ended the multishot receive (no buffer, -EAGAIN): again */
}

/* Frees what ur_setup made (all of it, or what it made before it failed). */
static void ur_teardown(struct uring_client *u)
{
    if (u->ring_ok)
        io_uring_queue_exit(&u->ring);
    free(u->br);
    free(u->bufs);
    *u = (struct uring_client){0};
}

/* The buffer ring of the multishot receives; 0 or -1. */
static int ur_setup_bufs(struct uring_client *u)
{
    size_t ring_bytes = UR_NBUFS * sizeof(struct io_uring_buf);
    if (posix_memalign((void **)&u->br, 4096, ring_bytes) != 0) {
        u->br = NULL;
        return -1;
    }
    u->bufs = must(malloc((size_t)UR_NBUFS * UR_BUFSZ), "receive buffers");
    io_uring_buf_ring_init(u->br);
    struct io_uring_buf_reg reg = {
        .ring_addr = (uint64_t)(uintptr_t)u->br, .ring_entries = UR_NBUFS, .bgid = UR_BGID};
    if (io_uring_register_buf_ring(&u->ring, &reg, 0) != 0)
        return -1;
    for (unsigned b = 0; b < UR_NBUFS; b++)
        ur_buf_recycle(u, b);
    return 0;
}

/* The ring, the connections' sockets as fixed files, the buffer ring; 0, or -1 with
 * nothing left allocated. */
static int ur_setup(struct uring_client *u, struct conn *cs)
{
    struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                                         IORING_SETUP_COOP_TASKRUN};
    unsigned entries = 4 * o.conns < 4096 ? 4 * o.conns : 4096;
    if (io_uring_queue_init_params(entries, &u->ring, &p) < 0) {
        memset(&p, 0, sizeof p); /* a kernel before 6.1: no deferred task work */
        if (io_uring_queue_init_params(entries, &u->ring, &p) < 0) {
            *u = (struct uring_client){0};
            return -1;
        }
    }
    u->ring_ok = true;
    io_uring_register_ring_fd(&u->ring);
    int *fds = must(malloc(o.conns * sizeof *fds), "file table");
    for (unsigned i = 0; i < o.conns; i++)
        fds[i] = cs[i].fd;
    int rc = io_uring_register_files(&u->ring, fds, o.conns);
    free(fds);
    if (rc < 0 || ur_setup_bufs(u) < 0) {
        ur_teardown(u);
        return -1;
    }
    return 0;
}

/*
 * The io_uring loop (--uring, depth 1): every connection keeps one request in flight, as in
 * the epoll loop; a completed answer queues the next request's send, and one io_uring_enter
 * per batch of completions submits them all and waits for the next.
 */
static void uring_loop(struct conn *cs, char *vals, double end)
{
    struct uring_client u = {0};
    if (ur_setup(&u, cs) < 0) {
        error("io_uring set-up failed");
        return;
    }
    for (unsigned i = 0; i < o.conns; i++) {
        ur_recv(&u, i);
        ur_next(&u, cs, i, vals, false);
    }
    unsigned inflight = o.conns;
    double last_answer = bu_now_s();
    while (inflight && !n_errors) {
        struct __kernel_timespec ts = {.tv_nsec = 100000000};
        struct io_uring_cqe *cqe;
        io_uring_submit_and_wait_timeout(&u.ring, &cqe, 1, &ts, NULL);
        double now = bu_now_s();
        bool over = now >= end;
        unsigned head, n = 0;
        io_uring_for_each_cqe(&u.ring, head, cqe)
        {
            ur_complete(&u, cs, cqe, vals, over);
            n++;
        }
        io_uring_cq_advance(&u.ring, n);
        inflight = 0;
        for (unsigned i = 0; i < o.conns; i++)
            inflight += cs[i].qlen + cs[i].sending;
        if (n)
            last_answer = now;
        else if (now > last_answer + 30)
            error("answers missing for 30 s");
    }
    ur_teardown(&u);
}

/* The process's CPU time (user + system) in seconds. */
static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static int run(void)
{
    if (o.pin) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(o.cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) < 0)
            perror("bench_kv_client: sched_setaffinity");
    }
    char *vals = must(malloc(o.vsize), "value");
    struct conn *cs = must(calloc(o.conns, sizeof *cs), "connections");
    size_t wcap = (size_t)o.depth * (o.vsize + 48 + 16 * (size_t)o.mget);
    for (unsigned i = 0; i < o.conns; i++) {
        struct conn *c = &cs[i];
        c->fd = connect_one();
        c->rcap = 1 << 17;
        c->rbuf = must(malloc(c->rcap), "receive buffer");
        c->wbuf = must(malloc(wcap), "request buffer");
        c->q = must(calloc(o.depth, sizeof *c->q), "request queue");
        c->rng = 0x1234567ull * (i + 1);
    }
    double t0 = bu_now_s(), cpu0 = cpu_s();
    if (o.uring)
        uring_loop(cs, vals, t0 + o.secs);
    else
        epoll_loop(cs, vals, t0 + o.secs);
    double secs = bu_now_s() - t0, cpu = cpu_s() - cpu0;
    printf("ops=%llu secs=%.3f ops_per_s=%.0f errors=%llu misses=%llu gets=%llu sets=%llu "
           "conns=%u depth=%u get_pct=%u mget=%u keys=%u value_size=%u loop=%s "
           "cpu_us_per_op=%.2f\n",
           (unsigned long long)n_ops, secs, n_ops / secs, (unsigned long long)n_errors,
           (unsigned long long)n_misses, (unsigned long long)n_gets, (unsigned long long)n_sets,
           o.conns, o.depth, o.get_pct, o.mget, o.keys, o.vsize, o.uring ? "uring" : "epoll",
           n_ops ? cpu * 1e6 / (double)n_ops : 0.0);
    if (n_errors)
        fprintf(stderr, "bench_kv_client: %llu errors, first: %s\n", (unsigned long long)n_errors,
                errmsg);
    for (unsigned i = 0; i < o.conns; i++) {
        close(cs[i].fd);
        free(cs[i].rbuf);
        free(cs[i].wbuf);
        free(cs[i].q);
    }
    free(cs);
    free(vals);
    return n_errors ? 1 : 0;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        return 1;
    printf("%u\n", ntohs(a.sin_port));
    close(fd);
    return 0;
}

/* Waits up to 20 s until something accepts on host:port; 0 when it does. */
static int wait_port(void)
{
    for (int i = 0; i < 2000; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o.port)};
        inet_pton(AF_INET, o.host, &a.sin_addr);
        int rc = connect(fd, (struct sockaddr *)&a, sizeof a);
        close(fd);
        if (rc == 0)
            return 0;
        usleep(10000);
    }
    fprintf(stderr, "bench_kv_client: nothing accepts on %s:%u\n", o.host, o.port);
    return 1;
}

static unsigned num(const char *s, unsigned min, unsigned max, const char *name)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || v < min || v > max) {
        fprintf(stderr, "bench_kv_client: --%s wants %u..%u\n", name, min, max);
        exit(2);
    }
    return (unsigned)v;
}

int main(int argc, char **argv)
{
    if (argc == 1)
        return bu_run_script(argv[0], "bench_kv.sh");
    static const struct option lo[] = {
        {"host", 1, 0, 'h'},      {"port", 1, 0, 'p'},       {"conns", 1, 0, 'c'},
        {"depth", 1, 0, 'd'},     {"get-pct", 1, 0, 'g'},    {"mget", 1, 0, 'm'},
        {"keys", 1, 0, 'k'},      {"value-size", 1, 0, 'v'}, {"secs", 1, 0, 's'},
        {"cpu", 1, 0, 'C'},       {"preload", 0, 0, 'P'},    {"free-port", 0, 0, 'F'},
        {"wait-port", 0, 0, 'W'}, {"uring", 0, 0, 'U'},      {0, 0, 0, 0},
    };
    int ch;
    bool wait = false;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'h': o.host = optarg; break;
        case 'p': o.port = num(optarg, 1, 65535, "port"); break;
        case 'c': o.conns = num(optarg, 1, 10000, "conns"); break;
        case 'd': o.depth = num(optarg, 1, 4096, "depth"); break;
        case 'g': o.get_pct = num(optarg, 0, 100, "get-pct"); break;
        case 'm': o.mget = num(optarg, 1, 100, "mget"); break;
        case 'k': o.keys = num(optarg, 1, 100000000, "keys"); break;
        case 'v': o.vsize = num(optarg, 1, 1000000, "value-size"); break;
        case 's': o.secs = num(optarg, 1, 3600, "secs"); break;
        case 'C': o.cpu = num(optarg, 0, CPU_SETSIZE - 1, "cpu"), o.pin = true; break;
        case 'P': o.preload = true; break;
        case 'F': return free_port();
        case 'W': wait = true; break;
        case 'U': o.uring = true; break;
        default: return 2;
        }
    }
    if (!o.port) {
        fprintf(stderr, "bench_kv_client: --port is required\n");
        return 2;
    }
    if (o.uring && (o.depth != 1 || o.preload)) {
        fprintf(stderr, "bench_kv_client: --uring keeps one request in flight: --depth 1, no "
                        "--preload\n");
        return 2;
    }
    o.set_tail_len = (size_t)snprintf(o.set_tail, sizeof o.set_tail, " 0 0 %u\r\n", o.vsize);
    return wait ? wait_port() : run();
}
