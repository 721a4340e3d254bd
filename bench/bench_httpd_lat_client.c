/*
 * bench_httpd_lat_client: an open-loop HTTP/1.1 load generator that measures latency at a
 * fixed request rate, for bench/bench_httpd_lat.sh (batched sleeps at moderate load).
 *
 *   bench_httpd_lat_client --port P --rate R [--conns C] [--secs S] [--warmup-ms W] [--path /]
 *   bench_httpd_lat_client          (no arguments: runs bench/bench_httpd_lat.sh)
 *
 * Requests leave as a Poisson process of rate R (exponential gaps from a seeded stream), each
 * on a keep-alive connection that has nothing in flight (the lowest-numbered idle one; when
 * all C are busy, the next one in turn, pipelined behind what it has in flight, up to 1024).
 * A request's latency runs from its scheduled send time, not the time it was written, so a
 * server (or client) that falls behind is charged for the wait of every request it delayed
 * (no coordinated omission, as in wrk2). Only requests scheduled after the warm-up count.
 *
 * Prints one line: `rate=.. sent=.. done=.. achieved_rps=.. p50_us=.. p90_us=.. p99_us=..
 * p999_us=.. max_us=.. mean_us=.. behind_us=..` (behind: how late the last send was against
 * its schedule; large when the client itself could not keep up). Exit status 1 on a
 * connection error or a non-200 answer.
 */
#include "bench_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 1024
#define QUEUE     1024 /* requests in flight per connection (power of two) */
#define BUF       16384

struct lconn {
    int fd;
    unsigned head, tail; /* scheduled send times in flight: sched[head..tail) */
    uint64_t sched[QUEUE];
    size_t have; /* bytes of answers read but not yet parsed */
    char buf[BUF];
};

static struct lconn *conns;
static unsigned nconns;
static uint64_t *lat_ns; /* latencies of counted requests */
static size_t nlat, lat_cap;
static uint64_t count_from_ns; /* requests scheduled before this are warm-up */
static char request[256];
static size_t request_len;

static int connect_to(unsigned port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

/* Exponential gap with mean 1/rate seconds, in ns. */
static uint64_t gap_ns(double rate)
{
    double u = ((double)(rand() & 0x7fffffff) + 1.0) / 2147483649.0;
    return (uint64_t)(-log(u) / rate * 1e9);
}

/*
 * The connection a request scheduled now goes out on: the next idle one in round-robin order
 * from where the last pick stopped, so the load spreads over every connection (and so over
 * both cores) like independent users; taking the lowest-numbered idle one would keep a few
 * connections busy and understate how often a core sees several at once (what batching
 * needs). With none idle, the next one in turn, pipelined behind what it has in flight.
 */
static struct lconn *pick(unsigned *turn)
{
    for (unsigned k = 0; k < nconns; k++) {
        struct lconn *c = &conns[(*turn + k) % nconns];
        if (c->head == c->tail) {
            *turn += k + 1;
            return c;
        }
    }
    struct lconn *c = &conns[(*turn)++ % nconns];
    return c->tail - c->head < QUEUE ? c : NULL;
}

static int send_request(struct lconn *c, uint64_t sched)
{
    ssize_t w = write(c->fd, request, request_len); /* small: goes whole or not at all */
    if (w != (ssize_t)request_len)
        return -1;
    c->sched[c->tail++ % QUEUE] = sched;
    return 0;
}

/* Length of a whole answer at the start of buf[0..n), 0 if incomplete, -1 if bad. */
static long answer_len(const char *buf, size_t n)
{
    const char *end = memmem(buf, n, "\r\n\r\n", 4);
    if (!end)
        return 0;
    if (n < 12 || memcmp(buf + 9, "200", 3) != 0)
        return -1;
    long body = 0;
    for (const char *p = buf; p < end; p++)
        if (*p == '\n' && strncasecmp(p + 1, "content-length:", 15) == 0)
            body = strtol(p + 16, NULL, 10);
    if (body < 0)
        return -1;
    size_t total = (size_t)(end + 4 - buf) + (size_t)body;
    return total <= n ? (long)total : 0;
}

static void record(uint64_t sched, uint64_t now)
{
    if (sched < count_from_ns)
        return;
    if (nlat == lat_cap) {
        lat_cap = lat_cap ? 2 * lat_cap : 1 << 16;
        lat_ns = realloc(lat_ns, lat_cap * sizeof *lat_ns);
        if (!lat_ns)
            exit(1);
    }
    lat_ns[nlat++] = now - sched;
}

/* Reads what came on c and settles every whole answer. 0, or -1 on an error. */
static int on_readable(struct lconn *c, uint64_t *done)
{
    for (;;) {
        ssize_t r = read(c->fd, c->buf + c->have, BUF - c->have);
        if (r == 0)
            return -1;
        if (r < 0)
            return errno == EAGAIN ? 0 : -1;
        c->have += (size_t)r;
        uint64_t now = bu_now_ns();
        long len;
        while ((len = answer_len(c->buf, c->have)) > 0) {
            if (c->head == c->tail)
                return -1; /* an answer nobody asked for */
            record(c->sched[c->head++ % QUEUE], now);
            (*done)++;
            c->have -= (size_t)len;
            memmove(c->buf, c->buf + len, c->have);
        }
        if (len < 0 || c->have == BUF)
            return -1;
    }
}

static uint64_t pct(double p)
{
    if (!nlat)
        return 0;
    size_t i = (size_t)(p * (double)(nlat - 1) + 0.5);
    return lat_ns[i];
}

static int run(unsigned port, double rate, double secs, double warmup_ms)
{
    int ep = epoll_create1(0);
    for (unsigned i = 0; i < nconns; i++) {
        if ((conns[i].fd = connect_to(port)) < 0) {
            fprintf(stderr, "bench_httpd_lat_client: connect to port %u: %s\n", port,
                    strerror(errno));
            return 1;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
    }
    uint64_t start = bu_now_ns(), next = start, sent = 0, done = 0, behind = 0;
    uint64_t stop_sending = start + (uint64_t)(secs * 1e9);
    count_from_ns = start + (uint64_t)(warmup_ms * 1e6);
    unsigned t32 = 0;
    struct epoll_event evs[64];
    for (;;) {
        uint64_t now = bu_now_ns();
        while (next <= now && next < stop_sending) {
            struct lconn *c = pick(&t32);
            if (!c || send_request(c, next) != 0) {
                fprintf(stderr, "bench_httpd_lat_client: send failed: %s\n",
                        c ? strerror(errno) : "the connection in turn has 1024 requests in flight");
                return 1;
            }
            behind = now - next;
            sent++;
            next += gap_ns(rate);
        }
        if (next >= stop_sending && done == sent)
            break;
        uint64_t wait = next > now ? next - now : 0;
        if (next >= stop_sending)
            wait = 100000000; /* only answers left to wait for */
        if (now > stop_sending + 5000000000ull) {
            fprintf(stderr, "bench_httpd_lat_client: %llu answers missing after 5 s\n",
                    (unsigned long long)(sent - done));
            return 1;
        }
        struct timespec ts = {.tv_sec = (time_t)(wait / 1000000000u),
                              .tv_nsec = (long)(wait % 1000000000u)};
        int n = epoll_pwait2(ep, evs, 64, &ts, NULL);
        for (int i = 0; i < n; i++)
            if (on_readable(&conns[evs[i].data.u32], &done) != 0) {
                fprintf(stderr, "bench_httpd_lat_client: bad or closed answer\n");
                return 1;
            }
    }
    double elapsed = (double)(stop_sending - start) * 1e-9; /* the sending time, not the drain */
    qsort(lat_ns, nlat, sizeof *lat_ns, bu_cmp_u64);
    double sum = 0;
    for (size_t i = 0; i < nlat; i++)
        sum += (double)lat_ns[i];
    printf("rate=%.0f sent=%llu done=%llu achieved_rps=%.0f p50_us=%.1f p90_us=%.1f p99_us=%.1f "
           "p999_us=%.1f max_us=%.1f mean_us=%.1f behind_us=%.1f\n",
           rate, (unsigned long long)sent, (unsigned long long)done, (double)sent / elapsed,
           pct(0.50) / 1e3, pct(0.90) / 1e3, pct(0.99) / 1e3, pct(0.999) / 1e3,
           nlat ? lat_ns[nlat - 1] / 1e3 : 0.0, nlat ? sum / (double)nlat / 1e3 : 0.0,
           behind / 1e3);
    for (unsigned i = 0; i < nconns; i++)
        close(conns[i].fd);
    close(ep);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 1)
        return bu_run_script(argv[0], "bench_httpd_lat.sh");
    static const struct option lo[] = {
        {"port", 1, 0, 'p'},      {"rate", 1, 0, 'r'}, {"conns", 1, 0, 'c'}, {"secs", 1, 0, 's'},
        {"warmup-ms", 1, 0, 'w'}, {"path", 1, 0, 'u'}, {0, 0, 0, 0},
    };
    unsigned port = 0;
    double rate = 0, secs = 2, warmup_ms = 300;
    const char *path = "/";
    nconns = 64;
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'p': port = (unsigned)atoi(optarg); break;
        case 'r': rate = atof(optarg); break;
        case 'c': nconns = (unsigned)atoi(optarg); break;
        case 's': secs = atof(optarg); break;
        case 'w': warmup_ms = atof(optarg); break;
        case 'u': path = optarg; break;
        default: return 2;
        }
    }
    if (!port || port > 65535 || rate <= 0 || !nconns || nconns > MAX_CONNS || secs <= 0) {
        fprintf(stderr,
                "usage: bench_httpd_lat_client --port P --rate R [--conns C<=%d] "
                "[--secs S] [--warmup-ms W] [--path /]\n",
                MAX_CONNS);
        return 2;
    }
    int len = snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (len < 0 || (size_t)len >= sizeof request) {
        fprintf(stderr, "bench_httpd_lat_client: --path too long\n");
        return 2;
    }
    request_len = (size_t)len;
    conns = calloc(nconns, sizeof *conns);
    if (!conns)
        return 1;
    srand(12345);
    return run(port, rate, secs, warmup_ms);
}
