/*
 * sn-httpd's /static responses in reply slots (apps/httpd/static_files.c): a file that is
 * opened and read later still answers in request order while the pipelined requests behind it
 * are answered at once, and a client that leaves in the middle of a file costs the server
 * nothing (every slot ends, every connection closes; under ASan the server's clean exit
 * proves no leak and no use after free). Each suite runs once with opens that may succeed
 * inline and once with every open through io_uring (SN_HTTPD_OPEN_URING=1: every /static
 * request then waits for a completion).
 */
#include "httpd_util.h"

#include <netinet/in.h>

#define BIG_SIZE  (3u << 20) /* streamed in chunks */
#define MID_SIZE  100000u    /* read whole, then cached */
#define HUGE_SIZE (16u << 20)

static char *big, *mid;

static void make_files(void)
{
    big = malloc(BIG_SIZE);
    mid = malloc(MID_SIZE);
    cr_assert(big && mid);
    nu_fill((uint8_t *)big, BIG_SIZE, 7);
    nu_fill((uint8_t *)mid, MID_SIZE, 8);
    write_file(root_dir, "big.bin", big, BIG_SIZE);
    write_file(root_dir, "mid.bin", mid, MID_SIZE);
}

static void setup_files(void)
{
    make_tree();
    make_files();
    start_server(true);
}

static void setup_files_uring(void)
{
    setenv("SN_HTTPD_OPEN_URING", "1", 1);
    setup_files();
}

static void teardown_files(void)
{
    teardown();
    unsetenv("SN_HTTPD_OPEN_URING");
    free(big);
    free(mid);
}

/* What one pipelined request asks, and what its answer must be. */
struct want {
    const char *path;
    int status;
    const char *body; /* NULL: not checked (/metrics) */
    size_t len;
};

static void pipelined_mix(void)
{
    const struct want kinds[] = {
        {"/static/big.bin", 200, NULL, BIG_SIZE},
        {"/", 200, "Hello, world!\n", 14},
        {"/static/mid.bin", 200, NULL, MID_SIZE},
        {"/static/hello.txt", 200, "static hello\n", 13},
        {"/", 200, "Hello, world!\n", 14},
        {"/static/missing.bin", 404, NULL, 0},
        {"/metrics", 200, NULL, 0},
        {"/", 200, "Hello, world!\n", 14},
    };
    enum { NKINDS = sizeof kinds / sizeof kinds[0], NREQ = 40 };
    char reqs[NREQ * 96];
    size_t len = 0;
    for (int i = 0; i < NREQ; i++)
        len +=
            (size_t)snprintf(reqs + len, sizeof reqs - len, "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n",
                             kinds[i % NKINDS].path, i == NREQ - 1 ? "Connection: close\r\n" : "");
    for (int round = 0; round < 2; round++) { /* the second round hits the cache */
        struct client *c = client_open();
        client_send(c, reqs, len);
        for (int i = 0; i < NREQ; i++) {
            const struct want *w = &kinds[i % NKINDS];
            struct resp r;
            read_response(c, &r, false);
            cr_assert_eq(r.status, w->status, "round %d response %d (%s): %d", round, i, w->path,
                         r.status);
            const char *body = w->body;
            if (w->len == BIG_SIZE)
                body = big;
            else if (w->len == MID_SIZE)
                body = mid;
            if (body) {
                cr_assert_eq(r.body_len, w->len, "response %d (%s)", i, w->path);
                cr_assert(memcmp(r.body, body, w->len) == 0, "response %d (%s): other bytes", i,
                          w->path);
            }
            free(r.body);
        }
        cr_assert(ends(c), "the server ends the connection after Connection: close");
        client_close(c);
    }
    stop_server_ok();
}

Test(httpd_slots, pipelined_static_and_hello_answered_in_order, .init = setup_files,
     .fini = teardown_files, .timeout = 60)
{
    pipelined_mix();
}

Test(httpd_slots_uring_open, pipelined_static_and_hello_answered_in_order,
     .init = setup_files_uring, .fini = teardown_files, .timeout = 60)
{
    pipelined_mix();
}

/* Sum over cores of one counter in a /metrics body. */
static uint64_t metric_sum(const char *body, const char *name)
{
    uint64_t sum = 0;
    size_t n = strlen(name);
    for (const char *l = body; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, name, n) == 0 && l[n] == '{')
            sum += strtoull(strchr(l, ' ') + 1, NULL, 10);
    return sum;
}

/* Connections opened and closed, from one /metrics answer (its own connection is open). */
static void conn_counts(uint64_t *opened, uint64_t *closed)
{
    struct resp r;
    cr_assert_eq(request("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
    *opened = metric_sum(r.body, "httpd_connections_opened_total");
    *closed = metric_sum(r.body, "httpd_connections_closed_total");
    free(r.body);
}

/* Reads up to n bytes of what the server sends (fewer if it stops sending for a while). */
static void read_some(int fd, size_t n)
{
    char buf[16384];
    nu_timeout(fd, 200);
    while (n) {
        ssize_t r = recv(fd, buf, n < sizeof buf ? n : sizeof buf, 0);
        if (r <= 0)
            break;
        n -= (size_t)r;
    }
}

static void client_leaves_mid_file(void)
{
    char *huge = malloc(HUGE_SIZE);
    cr_assert_not_null(huge);
    memset(huge, 'h', HUGE_SIZE);
    write_file(root_dir, "huge.bin", huge, HUGE_SIZE);
    free(huge);
    /* The huge file first (streamed, the oldest slot), then a slot behind it that holds its
     * bytes (mid.bin) and answers written behind both. */
    const char *reqs = "GET /static/huge.bin HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /static/mid.bin HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /static/big.bin HTTP/1.1\r\nHost: x\r\n\r\n";
    const size_t cut[] = {0, 1000, 100000, 1u << 20, 5u << 20};
    for (int i = 0; i < 10; i++) {
        int fd = nu_connect(srv.port);
        cr_assert(fd >= 0);
        int small = 16 << 10;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        cr_assert_eq(nu_send_all(fd, reqs, strlen(reqs)), 0);
        read_some(fd, cut[i % 5]);
        if (i % 2) { /* a reset instead of a FIN */
            struct linger lg = {.l_onoff = 1, .l_linger = 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        close(fd);
    }
    /* Every one of those connections closes on the server (the /metrics request that asks is
     * the one still open), within a bounded time: nothing waits for a slot forever. */
    uint64_t end = nu_now_ms() + 20000, opened = 0, closed = 0;
    while (nu_now_ms() < end) {
        conn_counts(&opened, &closed);
        if (closed + 1 == opened)
            break;
        usleep(20000); /* polling real state, bounded by the deadline */
    }
    cr_assert_eq(closed + 1, opened, "every connection closed (%llu of %llu)",
                 (unsigned long long)closed, (unsigned long long)opened);
    /* The server goes on serving, and stops cleanly (ASan: no leak of slots, chunks, files). */
    struct resp r;
    cr_assert_eq(request("GET /static/mid.bin HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
    cr_assert(r.body_len == MID_SIZE && memcmp(r.body, mid, MID_SIZE) == 0);
    free(r.body);
    stop_server_ok();
}

Test(httpd_slots, client_leaves_in_the_middle_of_a_file, .init = setup_files,
     .fini = teardown_files, .timeout = 90)
{
    client_leaves_mid_file();
}

Test(httpd_slots_uring_open, client_leaves_in_the_middle_of_a_file, .init = setup_files_uring,
     .fini = teardown_files, .timeout = 90)
{
    client_leaves_mid_file();
}

/* Static file reads started so far (sum over cores). */
static uint64_t static_misses(void)
{
    struct resp r;
    cr_assert_eq(request("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
    uint64_t n = metric_sum(r.body, "httpd_static_cache_misses_total");
    free(r.body);
    return n;
}

/*
 * A client that pipelines many requests for a streamed file and reads nothing: the server
 * starts at most HTTPD_MAX_OPEN_REPLIES (8) of them, plus the few that the kernel's socket
 * buffers take whole, instead of one file read per request (each holds up to 1 MiB); every
 * answer still comes, in order, once the client reads.
 */
static void pipelined_files_bounded(void)
{
    enum { NREQ = 48 };
    const char *one = "GET /static/big.bin HTTP/1.1\r\nHost: x\r\n\r\n";
    char reqs[NREQ * 64];
    size_t len = 0;
    for (int i = 0; i < NREQ; i++)
        len += (size_t)snprintf(reqs + len, sizeof reqs - len, "%s", one);
    struct client *c = calloc(1, sizeof *c);
    cr_assert_not_null(c);
    c->fd = nu_connect(srv.port);
    cr_assert(c->fd >= 0);
    int small = 16 << 10;
    setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    nu_timeout(c->fd, IO_MS);
    client_send(c, reqs, len);
    uint64_t end = nu_now_ms() + 10000, started = 0;
    while ((started = static_misses()) < 8 && nu_now_ms() < end)
        usleep(10000); /* polling real state, bounded by the deadline */
    cr_assert_geq(started, 8, "the first files start (%llu)", (unsigned long long)started);
    /* Watch a while longer: with the client not reading, no more start. */
    for (end = nu_now_ms() + 300; nu_now_ms() < end; usleep(20000))
        started = static_misses();
    cr_log_info("file reads started before the client read: %llu of %d",
                (unsigned long long)started, NREQ);
    cr_assert_leq(started, 12, "reading stopped at the slot limit (%llu started)",
                  (unsigned long long)started);
    for (int i = 0; i < NREQ; i++) {
        struct resp r;
        read_response(c, &r, false);
        cr_assert_eq(r.status, 200);
        cr_assert(r.body_len == BIG_SIZE && memcmp(r.body, big, BIG_SIZE) == 0, "response %d", i);
        free(r.body);
    }
    client_close(c);
    cr_assert_geq(static_misses(), NREQ);
    stop_server_ok();
}

Test(httpd_slots, pipelined_files_to_a_client_that_does_not_read, .init = setup_files,
     .fini = teardown_files, .timeout = 120)
{
    pipelined_files_bounded();
}
