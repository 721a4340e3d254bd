/*
 * bench_reply: what ordered reply slots (include/sn/reply.h) cost against plain
 * sn_conn_write, on the same connection workload in the same run.
 *
 * One reactor core (pinned to CPU 0 unless --unpinned, idle-poll 0 so its CPU time is the
 * work done) listens on four ports, one per way of answering; a client thread (pinned to
 * CPU 1) drives C connections, each keeping a window of W pipelined memcached-style requests
 * ("get k:NNNNNNNN\r\n") in flight and topping it up when half has come back. The server
 * reads them in line mode (ops->on_line) and answers each with the same 62 bytes, written in
 * two pieces (header, then value and END):
 *   plain     two sn_conn_write calls;
 *   slots     sn_reply_begin, two sn_reply_write, sn_reply_end: answers in order, the
 *             fast path (the oldest slot writes straight into the output);
 *   reversed  slots begun per line and filled at the end of the input batch in reverse
 *             order (a task), so all but one of each batch take the buffered path: the
 *             price of answers that come back out of order;
 *   fiber     one fiber per connection (sn_serve) reading with sn_conn_read_line and
 *             answering with two sn_conn_write calls: the price of the fiber form.
 * The client checks every answer's framing. For each way it reports answers/s and the
 * server core's CPU time per answer (CLOCK_THREAD_CPUTIME_ID on the core, read before and
 * after each run). That figure carries the noise of the network path on a shared machine,
 * so plain and slots also time, on the core (TSC), just the code that makes one answer: the
 * difference is what slots add, reported as a share of plain's CPU time per answer. Runs are
 * interleaved in rounds (plain, slots, reversed, ...); each ratio is the median of the per-round
 * ratios, so a noisy neighbour hits both sides alike.
 *
 *   bench_reply [--secs T] [--rounds R] [--conns C] [--window W] [--unpinned]
 *
 * SN_BENCH_QUICK=1 shortens it. Ends with one line:
 *   summary: plain_aps=... slots_aps=... reversed_aps=... fiber_aps=... plain_cpu_ns=...
 *   slots_cpu_ns=... reversed_cpu_ns=... fiber_cpu_ns=... slots_cpu_ratio=...
 *   slots_aps_ratio=... reversed_cpu_ratio=... fiber_cpu_ratio=... plain_make_ns=...
 *   slots_make_ns=... slots_extra_ns=... slots_extra_pct=...
 */
#include <sn.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

#define MAX_ROUNDS 15
#define MAX_CONNS  64
#define REQ_LEN    16 /* "get k:NNNNNNNN\r\n" */
#define HEAD_LEN   23 /* "VALUE k:NNNNNNNN 0 32\r\n" */
#define TAIL_LEN   39 /* 32 bytes, "\r\n", "END\r\n" */
#define ANS_LEN    (HEAD_LEN + TAIL_LEN)
#define BATCH_MAX  4096

enum way { PLAIN, SLOTS, REVERSED, FIBER, NWAYS };
static const char *way_name[NWAYS] = {"plain", "slots", "reversed", "fiber"};

static double secs = 1.0;
static int rounds = 5;
static unsigned conns = 8, window = 64;
static bool unpinned;
static unsigned micro_batches = 8000;

static uint16_t ports[NWAYS];
static struct sn_listener *listeners[NWAYS];
static struct sn_server *fiber_server;
static _Atomic int started;
static _Atomic uint64_t cpu_reading;
static _Atomic int cpu_ready;

/*
 * Answer production, timed on the core around the code that makes one answer (plain: the
 * two writes; slots: begin, the two writes, end): the slots' own cost, without the network
 * noise that the CPU time per answer carries. Written by the core only; read through
 * cpu_now's snapshot.
 */
static uint64_t prod_ticks[NWAYS], prod_count[NWAYS];
static uint64_t outlier_ticks = UINT64_MAX; /* 5 us: the core was preempted in between */
static _Atomic uint64_t snap_ticks[NWAYS], snap_count[NWAYS];
static double ns_per_tick = 1.0;

static inline uint64_t ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
    return __builtin_ia32_rdtsc();
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#endif
}
static int client_rc;

/* ---- server ---------------------------------------------------------------------------- */

static const char tail[TAIL_LEN + 1] = "0123456789abcdef0123456789abcdef\r\nEND\r\n";

static void head_of(char *head, const char *line)
{
    memcpy(head, "VALUE ", 6);
    memcpy(head + 6, line + 4, 10); /* "k:NNNNNNNN" */
    memcpy(head + 16, " 0 32\r\n", 7);
}

/* A sample longer than 5 us is a preemption (a shared VM), not the code: left out. */
static inline void prod_note(enum way w, uint64_t d)
{
    if (d < outlier_ticks) {
        prod_ticks[w] += d;
        prod_count[w]++;
    }
}

static void plain_line(struct sn_conn *c, void *arg, const char *line, size_t len, int err)
{
    (void)arg;
    char head[HEAD_LEN];
    if (err || len != REQ_LEN - 2)
        return;
    head_of(head, line);
    uint64_t t0 = ticks();
    sn_conn_write(c, head, HEAD_LEN);
    sn_conn_write(c, tail, TAIL_LEN);
    prod_note(PLAIN, ticks() - t0);
}

static void slots_line(struct sn_conn *c, void *arg, const char *line, size_t len, int err)
{
    (void)arg;
    char head[HEAD_LEN];
    struct sn_reply *r;
    if (err || len != REQ_LEN - 2)
        return;
    head_of(head, line);
    uint64_t t0 = ticks();
    if (sn_reply_begin(c, &r) < 0)
        return;
    sn_reply_write(r, head, HEAD_LEN);
    sn_reply_write(r, tail, TAIL_LEN);
    sn_reply_end(r);
    prod_note(SLOTS, ticks() - t0);
}

/* reversed: the slots of one input batch, answered from a task, last first. */
struct rev {
    struct sn_task task;
    bool queued, closed;
    unsigned n;
    struct sn_reply *r[BATCH_MAX];
    char key[BATCH_MAX][10];
};

static void rev_run(struct sn_task *t)
{
    struct rev *v = SN_CONTAINER_OF(t, struct rev, task);
    v->queued = false;
    while (v->n) {
        unsigned i = --v->n;
        char head[HEAD_LEN];
        memcpy(head, "VALUE ", 6);
        memcpy(head + 6, v->key[i], 10);
        memcpy(head + 16, " 0 32\r\n", 7);
        sn_reply_write(v->r[i], head, HEAD_LEN);
        sn_reply_write(v->r[i], tail, TAIL_LEN);
        sn_reply_end(v->r[i]);
    }
    if (v->closed)
        free(v);
}

static void reversed_line(struct sn_conn *c, void *arg, const char *line, size_t len, int err)
{
    struct rev *v = arg;
    if (err || len != REQ_LEN - 2 || v->n == BATCH_MAX || sn_reply_begin(c, &v->r[v->n]) < 0)
        return;
    memcpy(v->key[v->n++], line + 4, 10);
    if (!v->queued) {
        v->queued = true;
        sn_task_init(&v->task, rev_run);
        sn_schedule(&v->task);
    }
}

static void *rev_accept(struct sn_conn *c, void *arg)
{
    (void)c, (void)arg;
    return calloc(1, sizeof(struct rev));
}

static void rev_close(struct sn_conn *c, void *arg, int err)
{
    (void)c, (void)err;
    struct rev *v = arg;
    /* Slots still waiting for the queued task: it ends them (their writes fail with -EPIPE)
     * and frees the record. */
    if (v->queued)
        v->closed = true;
    else
        free(v);
}

/*
 * The micro phase, in a fiber on one connection whose client only reads: batches of 64
 * answers made back to back, plain and slots batches alternating, each batch timed with
 * the TSC; the medians over the batches (preemptions and a cold cache fall out) give the
 * cost of making an answer each way, caches warm, no network in the timed part. Between
 * batches the fiber lets the output drain (sn_conn_flush) once it passes 256 KiB.
 */
#define MICRO_BATCH 64
#define MICRO_MAX   20000

static double micro_ns[2];
static _Atomic int micro_done;

static void micro_batch(struct sn_conn *c, enum way w, char *head)
{
    for (unsigned i = 0; i < MICRO_BATCH; i++) {
        if (w == PLAIN) {
            sn_conn_write(c, head, HEAD_LEN);
            sn_conn_write(c, tail, TAIL_LEN);
        } else {
            struct sn_reply *r;
            if (sn_reply_begin(c, &r) < 0)
                return;
            sn_reply_write(r, head, HEAD_LEN);
            sn_reply_write(r, tail, TAIL_LEN);
            sn_reply_end(r);
        }
    }
}

static int micro_run(struct sn_conn *c, unsigned batches)
{
    static double t[2][MICRO_MAX / 2];
    char head[HEAD_LEN];
    head_of(head, "get k:00000001");
    for (unsigned b = 0; b < batches; b++) {
        enum way w = b % 2 ? SLOTS : PLAIN;
        uint64_t t0 = ticks();
        micro_batch(c, w, head);
        t[w][b / 2] = (double)(ticks() - t0) * ns_per_tick / MICRO_BATCH;
        if (sn_conn_backlog(c) > 256 * 1024 && sn_await(sn_conn_flush(c), NULL) < 0)
            return -1;
    }
    micro_ns[PLAIN] = bu_median(t[PLAIN], (int)batches / 2);
    micro_ns[SLOTS] = bu_median(t[SLOTS], (int)batches / 2);
    atomic_store(&micro_done, 1);
    sn_conn_write(c, "OK", 2);
    return 0;
}

/* fiber: one fiber per connection (sn_serve) reads lines and writes the same answers. */
static int fiber_session(struct sn_conn *c, void *arg)
{
    (void)arg;
    struct sn_slice line;
    char head[HEAD_LEN];
    unsigned batches;
    while (sn_conn_read_line(c, 64, &line) == 0) {
        if (line.len > 6 && memcmp(line.data, "micro ", 6) == 0 &&
            sscanf(line.data + 6, "%u", &batches) == 1 && batches <= MICRO_MAX)
            return micro_run(c, batches);
        if (line.len != REQ_LEN - 2)
            continue;
        head_of(head, line.data);
        sn_conn_write(c, head, HEAD_LEN);
        sn_conn_write(c, tail, TAIL_LEN);
    }
    return 0;
}

static void cpu_now(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    atomic_store(&cpu_reading, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
    for (int w = 0; w < NWAYS; w++) {
        atomic_store(&snap_ticks[w], prod_ticks[w]);
        atomic_store(&snap_count[w], prod_count[w]);
    }
    atomic_store(&cpu_ready, 1);
}

/* The server core's CPU time (ns), asked from the client thread. */
static uint64_t server_cpu(void)
{
    atomic_store(&cpu_ready, 0);
    if (sn_submit_external(0, cpu_now, NULL) < 0)
        return 0;
    while (!atomic_load(&cpu_ready))
        usleep(50);
    return atomic_load(&cpu_reading);
}

/* ---- client ---------------------------------------------------------------------------- */

struct cconn {
    int fd;
    uint64_t sent, answered; /* requests */
    size_t partial;          /* bytes of the answer being read */
};

static int open_conn(struct cconn *k, uint16_t port, int ep, unsigned idx)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    *k = (struct cconn){.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    int one = 1;
    setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (k->fd < 0 || connect(k->fd, (struct sockaddr *)&a, sizeof a) < 0)
        return -1;
    fcntl(k->fd, F_SETFL, O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = idx};
    return epoll_ctl(ep, EPOLL_CTL_ADD, k->fd, &ev);
}

static char reqs[4096 * REQ_LEN + 1];

static int top_up(struct cconn *k)
{
    uint64_t inflight = k->sent - k->answered;
    if (inflight > window / 2)
        return 0;
    size_t n = (size_t)(window - inflight) * REQ_LEN;
    ssize_t w = send(k->fd, reqs, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EAGAIN)
        return 0;
    if (w < 0 || w % REQ_LEN) /* small writes on loopback are taken whole */
        return -1;
    k->sent += (uint64_t)w / REQ_LEN;
    return 0;
}

/* Reads answers and checks their framing: each is ANS_LEN bytes from "VALUE k:" to END. */
static int read_answers(struct cconn *k)
{
    static char buf[1 << 16];
    for (;;) {
        ssize_t n = recv(k->fd, buf, sizeof buf, 0);
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        if (n == 0)
            return -1;
        for (ssize_t i = 0; i < n; i++) {
            size_t at = k->partial++;
            if ((at == 0 && buf[i] != 'V') || (at == ANS_LEN - 2 && buf[i] != '\r'))
                return -2;
            if (k->partial == ANS_LEN) {
                k->partial = 0;
                k->answered++;
            }
        }
        if (k->answered > k->sent)
            return -3;
    }
}

struct result {
    double aps, cpu_ns;
    double prod_ns; /* plain and slots: making one answer */
};

static int run_way(enum way w, double t, struct result *res)
{
    struct cconn k[MAX_CONNS];
    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (unsigned i = 0; i < conns; i++)
        if (open_conn(&k[i], ports[w], ep, i) < 0)
            return -1;
    for (unsigned i = 0; i < conns; i++)
        if (top_up(&k[i]) < 0)
            return -1;
    uint64_t t0 = 0, c0 = 0, a0 = 0, p0 = 0, n0 = 0, warm = bu_now_ns() + 100000000u;
    uint64_t end = warm + (uint64_t)(t * 1e9);
    bool measuring = false;
    int rc = 0;
    while (!rc) {
        uint64_t now = bu_now_ns();
        if (!measuring && now >= warm) {
            measuring = true;
            t0 = now;
            c0 = server_cpu();
            p0 = atomic_load(&snap_ticks[w]);
            n0 = atomic_load(&snap_count[w]);
            for (unsigned i = 0; i < conns; i++)
                a0 += k[i].answered;
        }
        if (now >= end)
            break;
        struct epoll_event ev[MAX_CONNS];
        int n = epoll_wait(ep, ev, MAX_CONNS, 100);
        for (int j = 0; j < n && !rc; j++) {
            struct cconn *c = &k[ev[j].data.u32];
            rc = read_answers(c);
            if (!rc)
                rc = top_up(c);
        }
    }
    uint64_t t1 = bu_now_ns(), c1 = server_cpu(), a1 = 0;
    for (unsigned i = 0; i < conns; i++) {
        a1 += k[i].answered;
        close(k[i].fd);
    }
    close(ep);
    if (rc)
        return rc;
    double answers = (double)(a1 - a0);
    res->aps = answers / ((double)(t1 - t0) / 1e9);
    res->cpu_ns = (double)(c1 - c0) / answers;
    uint64_t n1 = atomic_load(&snap_count[w]);
    res->prod_ns =
        n1 > n0 ? (double)(atomic_load(&snap_ticks[w]) - p0) * ns_per_tick / (double)(n1 - n0) : 0;
    return 0;
}

/* The micro phase's client: asks for it, reads everything, returns the medians. */
static int run_micro(unsigned batches, double *plain, double *slots)
{
    struct cconn k;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (open_conn(&k, ports[FIBER], ep, 0) < 0)
        return -1;
    fcntl(k.fd, F_SETFL, 0);
    char req[32];
    int n = snprintf(req, sizeof req, "micro %u\n", batches);
    if (send(k.fd, req, (size_t)n, MSG_NOSIGNAL) != n)
        return -1;
    size_t want = (size_t)batches * MICRO_BATCH * ANS_LEN + 2, got = 0;
    static char buf[1 << 16];
    while (got < want) {
        ssize_t r = recv(k.fd, buf, sizeof buf, 0);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    close(k.fd);
    close(ep);
    if (!atomic_load(&micro_done))
        return -1;
    *plain = micro_ns[PLAIN];
    *slots = micro_ns[SLOTS];
    return 0;
}

static void stop_all(void *arg)
{
    (void)arg;
    for (int w = 0; w < FIBER; w++)
        sn_ignore(sn_listener_close(listeners[w]));
    sn_ignore(sn_server_close(fiber_server));
    sn_stop(client_rc ? 1 : 0);
}

static void *client(void *arg)
{
    (void)arg;
    if (!unpinned) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(1, &set);
        pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    }
    for (unsigned i = 0; i < sizeof reqs / REQ_LEN; i++)
        snprintf(reqs + i * REQ_LEN, REQ_LEN + 1, "get k:%08u\r\n", i % 100000000u);
    struct result r[MAX_ROUNDS][NWAYS];
    double aps[NWAYS][MAX_ROUNDS], cpu[NWAYS][MAX_ROUNDS];
    double slots_cpu_ratio[MAX_ROUNDS], slots_aps_ratio[MAX_ROUNDS], rev_cpu_ratio[MAX_ROUNDS];
    double fiber_cpu_ratio[MAX_ROUNDS], make[2][MAX_ROUNDS], extra[MAX_ROUNDS];
    double extra_pct[MAX_ROUNDS];
    for (int i = 0; i < rounds && !client_rc; i++) {
        for (int w = 0; w < NWAYS && !client_rc; w++) {
            /* Alternate the order, so neither way always runs first in a round. */
            int way = i % 2 ? NWAYS - 1 - w : w;
            client_rc = run_way((enum way)way, secs, &r[i][way]);
        }
        if (client_rc)
            break;
        for (int w = 0; w < NWAYS; w++) {
            aps[w][i] = r[i][w].aps;
            cpu[w][i] = r[i][w].cpu_ns;
        }
        slots_cpu_ratio[i] = r[i][SLOTS].cpu_ns / r[i][PLAIN].cpu_ns;
        slots_aps_ratio[i] = r[i][SLOTS].aps / r[i][PLAIN].aps;
        rev_cpu_ratio[i] = r[i][REVERSED].cpu_ns / r[i][PLAIN].cpu_ns;
        fiber_cpu_ratio[i] = r[i][FIBER].cpu_ns / r[i][PLAIN].cpu_ns;
        make[0][i] = r[i][PLAIN].prod_ns;
        make[1][i] = r[i][SLOTS].prod_ns;
        extra[i] = r[i][SLOTS].prod_ns - r[i][PLAIN].prod_ns;
        extra_pct[i] = 100 * extra[i] / r[i][PLAIN].cpu_ns;
        printf("round %d: plain %.0f/s %.0f ns, slots %.0f/s %.0f ns (x%.3f), reversed "
               "%.0f/s %.0f ns (x%.3f), fiber %.0f/s %.0f ns (x%.3f)\n",
               i + 1, r[i][PLAIN].aps, r[i][PLAIN].cpu_ns, r[i][SLOTS].aps, r[i][SLOTS].cpu_ns,
               slots_cpu_ratio[i], r[i][REVERSED].aps, r[i][REVERSED].cpu_ns, rev_cpu_ratio[i],
               r[i][FIBER].aps, r[i][FIBER].cpu_ns, fiber_cpu_ratio[i]);
        printf("         making an answer: plain %.1f ns, slots %.1f ns (+%.1f ns, %.1f%% of "
               "plain's CPU per answer)\n",
               make[0][i], make[1][i], extra[i], extra_pct[i]);
        fflush(stdout);
    }
    double micro_plain = 0, micro_slots = 0;
    if (!client_rc)
        client_rc = run_micro(micro_batches, &micro_plain, &micro_slots);
    if (client_rc) {
        fprintf(stderr, "bench_reply: client failed (%d)\n", client_rc);
    } else {
        double m_aps[NWAYS], m_cpu[NWAYS];
        for (int w = 0; w < NWAYS; w++) {
            m_aps[w] = bu_median(aps[w], rounds);
            m_cpu[w] = bu_median(cpu[w], rounds);
        }
        printf("%d rounds of %.1f s, %u connections, window %u, %d-byte answers in 2 writes\n",
               rounds, secs, conns, window, ANS_LEN);
        for (int w = 0; w < NWAYS; w++)
            printf("  %-8s %10.0f answers/s  %6.1f ns server CPU per answer\n", way_name[w],
                   m_aps[w], m_cpu[w]);
        double scr = bu_median(slots_cpu_ratio, rounds), sar = bu_median(slots_aps_ratio, rounds);
        double rcr = bu_median(rev_cpu_ratio, rounds), fcr = bu_median(fiber_cpu_ratio, rounds);
        printf("slots / plain: CPU per answer x%.3f (goal <= 1.05), answers/s x%.3f; "
               "reversed / plain: CPU x%.3f; fiber / plain: CPU x%.3f\n",
               scr, sar, rcr, fcr);
        double mk0 = bu_median(make[0], rounds), mk1 = bu_median(make[1], rounds);
        double ex = bu_median(extra, rounds), exp = bu_median(extra_pct, rounds);
        printf("making one answer (timed on the core): plain %.1f ns, slots %.1f ns; slots "
               "add %.1f ns = %.1f%% of plain's CPU per answer (goal <= 5%%)\n",
               mk0, mk1, ex, exp);
        double mextra = micro_slots - micro_plain;
        double mpct = 100 * mextra / m_cpu[PLAIN];
        printf("micro (%u batches of %d answers each way, caches warm, medians): plain %.1f ns, "
               "slots %.1f ns per answer; slots add %.1f ns = %.1f%% of plain's CPU per "
               "answer (goal <= 5%%)\n",
               micro_batches / 2, MICRO_BATCH, micro_plain, micro_slots, mextra, mpct);
        printf(
            "summary: micro_plain_ns=%.1f micro_slots_ns=%.1f micro_extra_ns=%.1f "
            "micro_extra_pct=%.2f plain_aps=%.0f slots_aps=%.0f reversed_aps=%.0f fiber_aps=%.0f "
            "plain_cpu_ns=%.1f slots_cpu_ns=%.1f reversed_cpu_ns=%.1f fiber_cpu_ns=%.1f "
            "slots_cpu_ratio=%.3f slots_aps_ratio=%.3f reversed_cpu_ratio=%.3f "
            "fiber_cpu_ratio=%.3f plain_make_ns=%.1f slots_make_ns=%.1f "
            "slots_extra_ns=%.1f slots_extra_pct=%.2f\n",
            micro_plain, micro_slots, mextra, mpct, m_aps[PLAIN], m_aps[SLOTS], m_aps[REVERSED],
            m_aps[FIBER], m_cpu[PLAIN], m_cpu[SLOTS], m_cpu[REVERSED], m_cpu[FIBER], scr, sar, rcr,
            fcr, mk0, mk1, ex, exp);
    }
    sn_submit_external(0, stop_all, NULL);
    return NULL;
}

/* ---- setup ----------------------------------------------------------------------------- */

static const struct sn_conn_ops ops[FIBER] = {
    {.on_line = plain_line},
    {.on_line = slots_line},
    {.on_line = reversed_line, .on_close = rev_close},
};

static pthread_t client_thread;

static struct sn_future *listened(void *arg, uint64_t value)
{
    int w = (int)(intptr_t)arg;
    if (w == FIBER) {
        fiber_server = (struct sn_server *)(uintptr_t)value;
        listeners[w] = sn_server_listener(fiber_server);
    } else {
        listeners[w] = (struct sn_listener *)(uintptr_t)value;
    }
    ports[w] = sn_listener_port(listeners[w]);
    if (atomic_fetch_add(&started, 1) + 1 == NWAYS &&
        pthread_create(&client_thread, NULL, client, NULL) != 0)
        sn_stop(1);
    return SN_SUCCESS;
}

static struct sn_future *app_main(void *arg)
{
    (void)arg;
    struct sn_serve_config sc = {.listen = {.limits.max_open_replies = BATCH_MAX}};
    sn_ignore(sn_then(sn_serve(&sc, fiber_session, NULL), listened, (void *)(intptr_t)FIBER));
    for (int w = 0; w < FIBER; w++) {
        struct sn_listen_config lc = {.ops = &ops[w]};
        if (w == REVERSED)
            lc.on_accept = rev_accept;
        lc.limits.max_open_replies = BATCH_MAX;
        sn_ignore(sn_then(sn_listen(&lc), listened, (void *)(intptr_t)w));
    }
    return sn_when_stopped();
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"secs", 1, 0, 't'},     {"rounds", 1, 0, 'r'},
                                         {"conns", 1, 0, 'c'},    {"window", 1, 0, 'w'},
                                         {"unpinned", 0, 0, 'u'}, {0, 0, 0, 0}};
    const char *quick = getenv("SN_BENCH_QUICK");
    if (quick && *quick && strcmp(quick, "0") != 0) {
        secs = 0.3;
        rounds = 3;
        micro_batches = 2000;
    }
    for (int o; (o = getopt_long(argc, argv, "t:r:c:w:u", opts, NULL)) != -1;) {
        switch (o) {
        case 't': secs = atof(optarg); break;
        case 'r': rounds = atoi(optarg); break;
        case 'c': conns = (unsigned)atoi(optarg); break;
        case 'w': window = (unsigned)atoi(optarg); break;
        case 'u': unpinned = true; break;
        default:
            fprintf(stderr, "usage: bench_reply [--secs T] [--rounds R] [--conns C] "
                            "[--window W] [--unpinned]\n");
            return 2;
        }
    }
    if (rounds < 1 || rounds > MAX_ROUNDS || conns < 1 || conns > MAX_CONNS || window < 2 ||
        window > 4096 || secs <= 0) {
        fprintf(stderr, "bench_reply: bad arguments\n");
        return 2;
    }
    /* Ticks to nanoseconds (the TSC on x86), over 100 ms. */
    uint64_t k0 = ticks(), n0 = bu_now_ns();
    while (bu_now_ns() - n0 < 100000000u)
        ;
    ns_per_tick = (double)(bu_now_ns() - n0) / (double)(ticks() - k0);
    outlier_ticks = (uint64_t)(5000 / ns_per_tick);
    struct sn_config cfg;
    sn_config_init(&cfg);
    cfg.smp = 1;
    cfg.idle_poll_us = 0; /* the core's CPU time is its work, not polling */
    cfg.stall_ms = 0;
    if (unpinned)
        cfg.unpinned = true;
    else
        cfg.cpuset = "0";
    int rc = sn_run(&cfg, app_main, NULL);
    if (atomic_load(&started) == NWAYS)
        pthread_join(client_thread, NULL);
    return rc ? rc : client_rc;
}
