/*
 * Client side helpers for the network tests (test_net.c, and through tests/support/server_proc.h
 * the tests of the server binaries): plain blocking or non-blocking sockets on ordinary
 * threads, loopback only, every wait bounded.
 *
 * run_clients drives n echo clients at once from one thread with poll(): each sends a random
 * payload (random length up to maxlen, fixed seed) while reading the echo back, checks it
 * byte for byte, and then either half-closes and waits for EOF or simply closes. A client
 * marked "rogue" resets its connection (SO_LINGER 0) once it has received its first bytes.
 */
#ifndef SN_TEST_NET_UTIL_H
#define SN_TEST_NET_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t nu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/*
 * Waits for state another thread or process changes, never for a fixed time: checks
 * done(arg) every millisecond until it holds (true) or ms milliseconds have passed (false).
 */
static inline bool nu_wait_for(bool (*done)(void *arg), void *arg, unsigned ms)
{
    uint64_t end = nu_now_ms() + ms;
    for (;;) {
        if (done(arg))
            return true;
        if (nu_now_ms() >= end)
            return false;
        usleep(1000);
    }
}

/* Bytes received on fd and not read yet (FIONREAD), or -1. */
static inline long nu_unread(int fd)
{
    int n;
    return ioctl(fd, FIONREAD, &n) < 0 ? -1 : n;
}

/*
 * Waits until a peer that is sending to fd, which nobody reads, has stopped: the bytes
 * waiting on fd are more than 0 and have not changed for quiet_ms (the peer is done or
 * blocked on the full socket). Returns them, or -1 when that did not happen within ms.
 */
static inline long nu_wait_peer_stalled(int fd, unsigned quiet_ms, unsigned ms)
{
    uint64_t end = nu_now_ms() + ms, since = nu_now_ms();
    long last = -1;
    while (nu_now_ms() < end) {
        long n = nu_unread(fd);
        if (n != last) {
            last = n;
            since = nu_now_ms();
        } else if (n > 0 && nu_now_ms() - since >= quiet_ms) {
            return n;
        }
        usleep(1000);
    }
    return -1;
}

static inline uint64_t nu_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline void nu_fill(uint8_t *p, size_t len, uint64_t seed)
{
    for (size_t i = 0; i < len; i += 8) {
        uint64_t v = nu_rand(&seed);
        memcpy(p + i, &v, len - i < 8 ? len - i : 8);
    }
}

/* A blocking TCP connection to 127.0.0.1:port, or -errno. */
static inline int nu_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

static inline void nu_timeout(int fd, unsigned ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static inline int nu_send_all(int fd, const void *p, size_t len)
{
    const char *c = p;
    while (len) {
        ssize_t w = send(fd, c, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -errno;
        c += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Reads exactly len bytes (blocking, with the socket's timeout). 0, or -1 on EOF/error. */
static inline int nu_recv_all(int fd, void *p, size_t len)
{
    char *c = p;
    while (len) {
        ssize_t r = recv(fd, c, len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        c += r;
        len -= (size_t)r;
    }
    return 0;
}

/* Waits for the peer to end the connection: 0 on EOF or reset, -1 on data or timeout. */
static inline int nu_expect_end(int fd)
{
    char b[256];
    for (;;) {
        ssize_t r = recv(fd, b, sizeof b, 0);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return 0;
        if (r < 0 && errno == EINTR)
            continue;
        return -1;
    }
}

struct nu_client {
    int fd;
    uint8_t *data;
    size_t len, sent, rcvd;
    bool shut, done, rogue;
};

struct nu_result {
    unsigned ok;     /* clients whose echo came back whole and identical */
    unsigned bad;    /* mismatch, early EOF, error */
    unsigned rogues; /* clients that reset on purpose */
    bool timed_out;
    uint64_t bytes;
};

/* Runs n clients at once against 127.0.0.1:port (see the top of this file). */
static inline void nu_run_clients(uint16_t port, unsigned n, size_t maxlen, uint64_t seed,
                                  bool half_close, unsigned rogue_every, unsigned deadline_ms,
                                  struct nu_result *res)
{
    struct nu_client *cl = calloc(n, sizeof *cl);
    struct pollfd *pf = calloc(n, sizeof *pf);
    uint8_t *buf = malloc(65536);
    memset(res, 0, sizeof *res);
    for (unsigned i = 0; i < n; i++) {
        struct nu_client *c = &cl[i];
        c->len = 1 + nu_rand(&seed) % maxlen;
        c->data = malloc(c->len);
        nu_fill(c->data, c->len, nu_rand(&seed));
        c->rogue = rogue_every && i % rogue_every == rogue_every - 1;
        c->fd = nu_connect(port);
        if (c->fd < 0) {
            c->done = true;
            res->bad++;
            continue;
        }
        fcntl(c->fd, F_SETFL, O_NONBLOCK);
    }
    uint64_t end = nu_now_ms() + deadline_ms;
    for (;;) {
        unsigned m = 0;
        for (unsigned i = 0; i < n; i++) {
            struct nu_client *c = &cl[i];
            if (c->done)
                continue;
            pf[m].fd = c->fd;
            pf[m].events = POLLIN | (c->sent < c->len ? POLLOUT : 0);
            pf[m].revents = 0;
            m++;
        }
        if (!m)
            break;
        if (nu_now_ms() > end) {
            res->timed_out = true;
            break;
        }
        if (poll(pf, m, 100) < 0 && errno != EINTR)
            break;
        unsigned k = 0;
        for (unsigned i = 0; i < n; i++) {
            struct nu_client *c = &cl[i];
            if (c->done)
                continue;
            short ev = pf[k++].revents;
            if ((ev & POLLOUT) && c->sent < c->len) {
                size_t want = c->len - c->sent;
                ssize_t w =
                    send(c->fd, c->data + c->sent, want > 65536 ? 65536 : want, MSG_NOSIGNAL);
                if (w > 0)
                    c->sent += (size_t)w;
                else if (w < 0 && errno != EAGAIN) {
                    c->done = true;
                    res->bad++;
                    continue;
                }
                if (c->sent == c->len && half_close && !c->rogue) {
                    shutdown(c->fd, SHUT_WR);
                    c->shut = true;
                }
            }
            if (!(ev & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t r = recv(c->fd, buf, 65536, 0);
            if (r < 0 && errno == EAGAIN)
                continue;
            if (r > 0 && c->rogue) {
                res->rogues++;
                struct linger lg = {1, 0};
                setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
                c->done = true;
                continue;
            }
            if (r > 0 && c->rcvd + (size_t)r <= c->len &&
                memcmp(buf, c->data + c->rcvd, (size_t)r) == 0) {
                c->rcvd += (size_t)r;
                res->bytes += (size_t)r;
                if (c->rcvd == c->len && !half_close) {
                    c->done = true;
                    res->ok++;
                }
                continue;
            }
            c->done = true;
            if (r == 0 && c->shut && c->rcvd == c->len)
                res->ok++;
            else
                res->bad++;
        }
    }
    for (unsigned i = 0; i < n; i++) {
        if (cl[i].fd >= 0)
            close(cl[i].fd);
        free(cl[i].data);
    }
    free(cl);
    free(pf);
    free(buf);
}

#endif
