/*
 * echo_client.h: bench_echo's echo client (one epoll thread, C connections with a window
 * of messages each, every echoed byte checked against a per-connection pattern).
 * Header-only, for bench/bench_echo.c; main thread only.
 */
#ifndef SN_BENCH_ECHO_CLIENT_H
#define SN_BENCH_ECHO_CLIENT_H

#include "echo_proc.h"

#define PAT_LEN      131101u        /* pattern period: prime, longer than any single read */
#define RBUF_LEN     (128u * 1024u) /* <= PAT_LEN so one memcmp checks one read */
#define WARMUP_S     0.25

/* ---- the echo client ---- */

struct conn {
    int fd;
    bool want_out;   /* EPOLLOUT armed: the last write was cut short */
    uint32_t base;   /* this connection's start in the pattern */
    uint64_t sent;   /* bytes written */
    uint64_t target; /* bytes to have written: echoed + window */
    uint64_t rcvd;   /* bytes echoed and checked */
};

struct echo_run {
    const char *host;
    int port;
    unsigned conns, window;
    size_t size;
    double secs;
    pid_t server; /* for its CPU time; 0: none */
};

struct echo_res {
    double mps, mbps, srv_cpu, srv_wait, cli_cpu, secs;
};

static unsigned char pat[2 * PAT_LEN]; /* pat[i] == pat[i % PAT_LEN] */
static unsigned char rbuf[RBUF_LEN];

static inline void pattern_init(void)
{
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (unsigned i = 0; i < PAT_LEN; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        pat[i] = pat[i + PAT_LEN] = (unsigned char)(x >> 24);
    }
}

static inline int conn_open(struct conn *c, const struct echo_run *r, unsigned idx, int ep)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)r->port)};
    if (inet_pton(AF_INET, r->host, &a.sin_addr) != 1)
        return -EINVAL;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -errno;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0)
        return -errno;
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    c->base = (uint32_t)(((uint64_t)idx * 7919u + 1) % PAT_LEN);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = idx};
    return epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0 ? -errno : 0;
}

/* Writes toward c->target; arms EPOLLOUT when the socket is full. */
static inline int conn_flush(struct conn *c, int ep, unsigned idx)
{
    while (c->sent < c->target) {
        size_t off = (size_t)((c->base + c->sent) % PAT_LEN);
        size_t len = (size_t)(c->target - c->sent);
        if (len > PAT_LEN)
            len = PAT_LEN;
        ssize_t n = send(c->fd, pat + off, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN)
                break;
            return -errno;
        }
        c->sent += (uint64_t)n;
    }
    bool want = c->sent < c->target;
    if (want != c->want_out) {
        struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0u), .data.u32 = idx};
        if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
            return -errno;
        c->want_out = want;
    }
    return 0;
}

/* Tops the window up once half of it (at least one message) has come back. */
static inline int conn_refill(struct conn *c, const struct echo_run *r, int ep, unsigned idx)
{
    uint64_t win = (uint64_t)r->window * r->size;
    uint64_t step = (uint64_t)(r->window / 2 ? r->window / 2 : 1) * r->size;
    if (c->target - c->rcvd <= win - step)
        c->target = c->rcvd + win;
    return conn_flush(c, ep, idx);
}

/* Reads what has come back and checks it byte for byte; returns bytes read or -errno. */
static inline ssize_t conn_read(struct conn *c)
{
    ssize_t total = 0;
    for (;;) {
        ssize_t n = recv(c->fd, rbuf, sizeof rbuf, 0);
        if (n < 0)
            return errno == EAGAIN ? total : -errno;
        if (n == 0)
            return -ECONNRESET; /* the server closed */
        size_t off = (size_t)((c->base + c->rcvd) % PAT_LEN);
        if (c->rcvd + (uint64_t)n > c->sent || memcmp(rbuf, pat + off, (size_t)n) != 0)
            return -EBADMSG;
        c->rcvd += (uint64_t)n;
        total += n;
        if ((size_t)n < sizeof rbuf)
            return total;
    }
}

/* Runs the event loop until `until`; adds echoed bytes to *bytes. */
static inline int echo_loop(struct conn *cs, const struct echo_run *r, int ep, double until,
                            uint64_t *bytes)
{
    struct epoll_event evs[256];
    while (bu_now_s() < until) {
        int n = epoll_wait(ep, evs, 256, 50);
        if (n < 0 && errno != EINTR)
            return -errno;
        for (int i = 0; i < n; i++) {
            unsigned idx = evs[i].data.u32;
            struct conn *c = &cs[idx];
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                ssize_t got = conn_read(c);
                if (got < 0)
                    return (int)got;
                *bytes += (uint64_t)got;
            }
            int rc = conn_refill(c, r, ep, idx);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

static inline int echo_run(const struct echo_run *r, struct echo_res *res)
{
    struct conn *cs = calloc(r->conns, sizeof *cs);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int rc = cs && ep >= 0 ? 0 : -ENOMEM;
    for (unsigned i = 0; i < r->conns && rc == 0; i++)
        cs[i].fd = -1;
    for (unsigned i = 0; i < r->conns && rc == 0; i++)
        rc = conn_open(&cs[i], r, i, ep);
    for (unsigned i = 0; i < r->conns && rc == 0; i++)
        rc = conn_refill(&cs[i], r, ep, i);
    uint64_t bytes = 0;
    if (rc == 0)
        rc = echo_loop(cs, r, ep, bu_now_s() + WARMUP_S, &bytes);
    double t0 = bu_now_s(), s0 = r->server ? proc_cpu_s(r->server) : 0, c0 = self_cpu_s();
    double w0 = r->server ? proc_runq_wait_s(r->server) : 0;
    bytes = 0;
    if (rc == 0)
        rc = echo_loop(cs, r, ep, t0 + r->secs, &bytes);
    double t1 = bu_now_s(), s1 = r->server ? proc_cpu_s(r->server) : 0, c1 = self_cpu_s();
    double w1 = r->server ? proc_runq_wait_s(r->server) : 0;
    for (unsigned i = 0; cs && i < r->conns; i++)
        if (cs[i].fd >= 0)
            close(cs[i].fd);
    free(cs);
    if (ep >= 0)
        close(ep);
    if (rc < 0) {
        fprintf(stderr, "bench_echo: echo of %zu-byte messages: %s\n", r->size,
                rc == -EBADMSG ? "echoed bytes differ from the bytes sent" : strerror(-rc));
        return rc;
    }
    res->secs = t1 - t0;
    res->mps = (double)bytes / (double)r->size / res->secs;
    res->mbps = (double)bytes / 1e6 / res->secs;
    res->srv_cpu = s1 - s0;
    res->srv_wait = w1 - w0;
    res->cli_cpu = c1 - c0;
    return 0;
}

#endif
