/*
 * End-to-end tests of sn-httpd like test_httpd.c (the real server binary, loopback, curl and
 * raw sockets; helpers in httpd_util.h): flow control towards a client that reads late, and
 * the header timeout.
 */
#include "httpd_util.h"

TestSuite(httpd, .init = setup_root, .fini = teardown, .timeout = 60);

/* ---- flow control: big answers to a client that reads late ---------------------------------- */

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define BIG_PIPELINE 800
#else
#define BIG_PIPELINE 1500
#endif

/*
 * /metrics answers ~100 times the bytes of its request. The client pipelines BIG_PIPELINE of
 * them (several MB of answers), does not read for a while, then reads everything. The server
 * stops taking requests while its output backlog is over 1 MiB and takes the rest up again as
 * the client reads (libsn presents the held input again once the backlog has drained), so
 * every request is answered, in order, and the connection ends after the last one
 * (Connection: close), with no request lost and none cut off.
 */
Test(httpd, pipelined_big_answers_to_a_client_that_reads_late)
{
    static const char m[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    static const char last[] = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    size_t len = BIG_PIPELINE * (sizeof m - 1) + sizeof last - 1;
    char *reqs = malloc(len);
    cr_assert_not_null(reqs);
    for (size_t i = 0; i < BIG_PIPELINE; i++)
        memcpy(reqs + i * (sizeof m - 1), m, sizeof m - 1);
    memcpy(reqs + BIG_PIPELINE * (sizeof m - 1), last, sizeof last - 1);
    struct client *c = client_open();
    client_send(c, reqs, len);
    free(reqs);
    /* Not reading: the server answers until its output is full, then stops taking requests. */
    cr_assert_gt(nu_wait_peer_stalled(c->fd, 100, IO_MS), 0, "the server answered, then stalled");
    size_t bytes = 0;
    for (int i = 0; i < BIG_PIPELINE; i++) {
        struct resp r;
        read_response(c, &r, false);
        cr_assert_eq(r.status, 200, "response %d", i);
        cr_assert(strstr(r.body, "httpd_requests_total") != NULL, "response %d is /metrics", i);
        bytes += r.body_len;
        free(r.body);
    }
    expect_response(c, 200, "Hello, world!\n");
    cr_assert(ends(c), "the connection ends after the last answer");
    cr_assert_gt(bytes, (size_t)3 << 19, "the answers were more than the output limit (1 MiB)");
    cr_log_info("%d pipelined /metrics: %zu bytes of answers, all read after a pause",
                BIG_PIPELINE, bytes);
    client_close(c);
    stop_server_ok();
}

/*
 * 2 MiB of pipelined requests sent before the client reads anything. While its output is
 * full the server leaves them unconsumed, and libsn may hold up to its whole receive ring
 * (2 MiB per core) for the connection; each time the client has read enough, the server
 * takes some more. None of this may cut the client off (with libsn's default input_max of
 * 1 MiB it did: -EMSGSIZE after ~20,000 answers; httpd sets 4 MiB, httpd.h).
 */
Test(httpd, two_mib_pipelined_ahead_of_reading)
{
    static const char hello[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    size_t n = ((size_t)2 << 20) / (sizeof hello - 1);
    struct client *c = client_open();
    size_t got = su_pipeline_ahead(c->fd, hello, sizeof hello - 1, n, "HTTP/1.1 200 OK\r\n", n,
                                   IO_MS);
    cr_assert_eq(got, n, "every pipelined request answered (%zu of %zu)", got, n);
    client_close(c);
    stop_server_ok();
}

/* ---- header timeout ------------------------------------------------------------------------- */

#define HT_MS 300

static void setup_header_timeout(void)
{
    static const char *const extra[] = {"--header-timeout-ms", "300", NULL};
    make_tree();
    start_server_with(false, extra);
}

/*
 * Sends one byte of `trickle` every 50 ms (never the end of a head) until the server answers
 * and closes; returns what it answered (NUL-terminated in out) and the time since the first
 * byte in *ms.
 */
static size_t trickle_until_closed(struct client *c, const char *trickle, char *out, size_t cap,
                                   uint64_t *ms)
{
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    uint64_t t0 = nu_now_ms(), end = t0 + IO_MS;
    size_t got = 0, i = 0;
    bool eof = false;
    while (!eof && nu_now_ms() < end) {
        if (trickle[i])
            send(c->fd, trickle + i++, 1, MSG_NOSIGNAL);
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t r = recv(c->fd, out + got, cap - 1 - got, MSG_DONTWAIT);
        if (r > 0)
            got += (size_t)r;
        else if (r == 0 || (errno != EAGAIN && errno != EINTR))
            eof = true;
    }
    *ms = nu_now_ms() - t0;
    out[got] = 0;
    cr_assert(eof, "the server closed the connection (after %llu ms)", (unsigned long long)*ms);
    return got;
}

Test(httpd_header_timeout, slow_head_gets_408_and_close, .init = setup_header_timeout,
     .fini = teardown, .timeout = 60)
{
    /* 4 KiB of one header line at 20 bytes/s: the head would take minutes. */
    char trickle[4096] = "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ";
    memset(trickle + strlen(trickle), 'a', sizeof trickle - 1 - strlen(trickle));
    struct client *c = client_open();
    char out[1024];
    uint64_t ms;
    trickle_until_closed(c, trickle, out, sizeof out, &ms);
    cr_assert(strncmp(out, "HTTP/1.1 408 ", 13) == 0, "408 Request Timeout, got '%.40s'", out);
    cr_assert(strstr(out, "Connection: close") != NULL);
    cr_assert_geq(ms, HT_MS, "never before the deadline");
    cr_log_info("slow head: 408 and closed %llu ms after its first byte (limit %d ms)",
                (unsigned long long)ms, HT_MS);
    client_close(c);
    stop_server_ok();
}

/* A complete request, then the start of a second head that never ends: 200, then 408. */
Test(httpd_header_timeout, pipelined_then_stalled_head, .init = setup_header_timeout,
     .fini = teardown, .timeout = 60)
{
    struct client *c = client_open();
    const char *req = "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHo";
    client_send(c, req, strlen(req));
    expect_response(c, 200, NULL);
    expect_response(c, 408, NULL);
    cr_assert(ends(c));
    client_close(c);
    stop_server_ok();
}

/*
 * The deadline counts from a head's first byte: an idle keep-alive connection (no byte at all
 * for twice the limit) is not cut by it, and a head sent in pieces within the limit is served.
 */
Test(httpd_header_timeout, idle_and_split_heads_are_fine, .init = setup_header_timeout,
     .fini = teardown, .timeout = 60)
{
    const char *req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    struct client *c = client_open();
    for (int round = 0; round < 2; round++) {
        usleep(2 * HT_MS * 1000);
        char b;
        cr_assert_eq(recv(c->fd, &b, 1, MSG_DONTWAIT), -1, "still open after %d ms idle",
                     2 * HT_MS);
        cr_assert_eq(errno, EAGAIN);
        size_t n = strlen(req);
        client_send(c, req, n / 3);
        usleep(HT_MS * 1000 / 4);
        client_send(c, req + n / 3, n / 3);
        usleep(HT_MS * 1000 / 4);
        client_send(c, req + 2 * (n / 3), n - 2 * (n / 3));
        struct resp r;
        read_response(c, &r, false);
        cr_assert_eq(r.status, 200, "round %d", round);
        free(r.body);
    }
    client_close(c);
    stop_server_ok();
}
