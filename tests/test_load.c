/*
 * Load: one sn-echo on 2 cores holds 10,000 concurrent loopback connections (1,000 under
 * sanitizers), then every one of them sends a 32-byte request and gets its echo back while all
 * are still open; the server is then stopped with SIGTERM with all of them open and must exit 0.
 *
 * Reported with cr_log_info (and copied into docs/RELIABILITY.md): connections held, the
 * server's RSS growth per connection (VmRSS from /proc/<pid>/status: user-space memory only,
 * not the kernel's socket buffers), the time to connect them all, to answer them all, and to
 * drain at SIGTERM. Run build/tests/test_load --verbose to see the line.
 *
 * The fd limit: sn_run raises the soft RLIMIT_NOFILE to the hard limit, but only root may
 * raise the hard one, so the test raises its own (soft and, when it may, hard) before
 * starting the server, which inherits it. The clients use one epoll set and keep at most
 * CONNECT_WINDOW connects in flight, below the server's listen backlog, so no SYN is dropped
 * and no connect waits for a 1 s retransmission.
 */
#include <sys/epoll.h>

#include "reactor_util.h"
#include "support/server_proc.h"

#define REQ_LEN        32
#define CONNECT_WINDOW 256
#define DEADLINE_MS    60000

struct lconn {
    int fd;
    unsigned got;
    bool connected, done;
};

static int start_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

/* Opens n connections, CONNECT_WINDOW at a time; returns how many are established. */
static unsigned connect_all(int ep, struct lconn *c, unsigned n, uint16_t port, uint64_t end)
{
    unsigned started = 0, established = 0, inflight = 0;
    struct epoll_event ev[256];
    while (established < n && nu_now_ms() < end) {
        while (inflight < CONNECT_WINDOW && started < n) {
            int fd = start_connect(port);
            cr_assert_geq(fd, 0, "socket/connect %u: %s", started, strerror(-fd));
            c[started].fd = fd;
            struct epoll_event e = {.events = EPOLLOUT, .data.u32 = started};
            cr_assert_eq(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e), 0);
            started++;
            inflight++;
        }
        int k = epoll_wait(ep, ev, 256, 100);
        for (int i = 0; i < k; i++) {
            struct lconn *x = &c[ev[i].data.u32];
            /* Counted once: a later event on an established one (a hang-up is always
             * reported, whatever the mask) is request_all's to judge. */
            if (x->connected)
                continue;
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(x->fd, SOL_SOCKET, SO_ERROR, &err, &len);
            cr_assert_eq(err, 0, "connect %u: %s", ev[i].data.u32, strerror(err));
            struct epoll_event e = {.events = EPOLLIN, .data.u32 = ev[i].data.u32};
            epoll_ctl(ep, EPOLL_CTL_MOD, x->fd, &e);
            x->connected = true;
            established++;
            inflight--;
        }
    }
    return established;
}

static void request_body(unsigned i, char out[REQ_LEN])
{
    char tmp[REQ_LEN + 1];
    snprintf(tmp, sizeof tmp, "load %010u abcdefghijklmnop", i);
    memcpy(out, tmp, REQ_LEN);
}

/* Every connection sends its request, then reads its echo; returns how many got it whole. */
static unsigned request_all(int ep, struct lconn *c, unsigned n, uint64_t end)
{
    char req[REQ_LEN], buf[REQ_LEN];
    for (unsigned i = 0; i < n; i++) {
        request_body(i, req);
        cr_assert_eq(send(c[i].fd, req, REQ_LEN, MSG_NOSIGNAL), REQ_LEN, "request %u", i);
    }
    unsigned answered = 0;
    struct epoll_event ev[256];
    while (answered < n && nu_now_ms() < end) {
        int k = epoll_wait(ep, ev, 256, 100);
        for (int i = 0; i < k; i++) {
            unsigned id = ev[i].data.u32;
            struct lconn *x = &c[id];
            ssize_t r = recv(x->fd, buf, REQ_LEN - x->got, 0);
            if (r < 0 && errno == EAGAIN)
                continue;
            cr_assert_gt(r, 0, "connection %u ended before its answer", id);
            request_body(id, req);
            cr_assert_eq(memcmp(buf, req + x->got, (size_t)r), 0, "echo %u intact", id);
            x->got += (unsigned)r;
            if (x->got == REQ_LEN && !x->done) {
                x->done = true;
                answered++;
            }
        }
    }
    return answered;
}

/* The server's VmRSS once it has not changed for 100 ms (3 s at the most): the baseline. */
static long settled_rss_kb(pid_t pid)
{
    long rss = su_rss_kb(pid);
    uint64_t end = nu_now_ms() + 3000, since = nu_now_ms();
    while (nu_now_ms() - since < 100 && nu_now_ms() < end) {
        usleep(5000); /* a poll's interval */
        long now = su_rss_kb(pid);
        if (now != rss) {
            rss = now;
            since = nu_now_ms();
        }
    }
    return rss;
}

Test(load, echo_10k_connections, .timeout = 120, .fini = su_reap_all)
{
    unsigned n = SN_TEST_SLOW ? 1000 : 10000;
    rlim_t lim = su_raise_nofile(n + 1024);
    if (lim < n + 256) {
        cr_log_info("load: RLIMIT_NOFILE is %lu: %u connections instead", (unsigned long)lim,
                    (unsigned)(lim - 256));
        n = (unsigned)(lim - 256);
    }
    struct su_server s;
    su_start(&s, "echo", NULL);
    su_assert_serving(&s, "start"); /* warm: per-core buffers exist before the baseline */
    long rss0 = settled_rss_kb(s.pid);

    struct lconn *c = calloc(n, sizeof *c);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    cr_assert_geq(ep, 0);
    uint64_t end = nu_now_ms() + DEADLINE_MS, t0 = nu_now_ms();
    unsigned held = connect_all(ep, c, n, s.port, end);
    uint64_t t1 = nu_now_ms();
    cr_assert_eq(held, n, "%u of %u connections established in time", held, n);
    unsigned answered = request_all(ep, c, n, end);
    uint64_t t2 = nu_now_ms();
    cr_assert_eq(answered, n, "%u of %u connections answered in time", answered, n);
    cr_assert(su_alive(s.pid), "sn-echo runs with %u connections", n);
    long rss1 = su_rss_kb(s.pid);

    /* SIGTERM with every connection still open: libsn closes them and the server exits 0. */
    uint64_t drain_ms;
    int status = su_stop(&s, 20000, &drain_ms);
    for (unsigned i = 0; i < n; i++)
        if (c[i].fd > 0)
            su_close_rst(c[i].fd);
    close(ep);
    free(c);

    double per_conn = (double)(rss1 - rss0) * 1024.0 / n;
    cr_log_info("load: connections_held=%u server_rss_kb=%ld->%ld bytes_per_conn=%.0f "
                "connect_ms=%llu answer_ms=%llu drain_ms=%llu",
                n, rss0, rss1, per_conn, (unsigned long long)(t1 - t0),
                (unsigned long long)(t2 - t1), (unsigned long long)drain_ms);
    cr_assert_neq(status, -1, "sn-echo stopped within 20 s of SIGTERM with %u connections", n);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit 0 (status 0x%x)",
              (unsigned)status);
    cr_assert_gt(rss1, 0);
}
