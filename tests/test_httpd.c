/*
 * End-to-end tests of sn-httpd (apps/httpd): each test starts the real server binary of this
 * build (<build>/bin/sn-httpd, found next to this test binary, so the asan and tsan builds test
 * their own server) with --smp 2 --unpinned --port 0 on loopback, and drives it with curl and
 * with raw sockets. Every server is stopped by the test's .fini, also when an assertion
 * failed, and dies with the test process otherwise (PR_SET_PDEATHSIG).
 */
#include "httpd_util.h"
#include "io_batch_util.h"

/* ---- the tests ---------------------------------------------------------------------------- */

TestSuite(httpd, .init = setup_root, .fini = teardown, .timeout = 60);

Test(httpd, hello_with_curl)
{
    cr_assert(have_curl(), "curl is not installed (sh .ci/deps.sh curl)");
    char cmd[256];
    int st;
    snprintf(cmd, sizeof cmd, CURL "-i http://127.0.0.1:%u/", srv.port);
    char *out = run_cmd(cmd, &st);
    cr_assert_eq(st, 0, "curl failed: %s", out);
    cr_assert(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", out);
    cr_assert_not_null(strstr(out, "Content-Type: text/plain"), "%s", out);
    cr_assert_not_null(strstr(out, "\r\nDate: "), "%s", out);
    cr_assert_not_null(strstr(out, "Content-Length: 14\r\n"), "%s", out);
    size_t n = strlen(out);
    cr_assert(n > 18 && strcmp(out + n - 18, "\r\n\r\nHello, world!\n") == 0, "%s", out);
    free(out);
    /* Two URLs in one curl run: the second reuses the first connection. */
    snprintf(cmd, sizeof cmd,
             CURL "-o /dev/null -o /dev/null -w '%%{http_code} %%{num_connects}\\n' "
                  "http://127.0.0.1:%u/ http://127.0.0.1:%u/",
             srv.port, srv.port);
    out = run_cmd(cmd, &st);
    cr_assert_eq(st, 0);
    cr_assert_str_eq(out, "200 1\n200 0\n");
    free(out);
    stop_server_ok();
}

Test(httpd, keep_alive_reuses_the_connection)
{
    struct client *c = client_open();
    for (int i = 0; i < 20; i++) {
        const char *req = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
        client_send(c, req, strlen(req));
        struct resp r;
        read_response(c, &r, false);
        cr_assert_eq(r.status, 200);
        cr_assert_str_eq(r.body, "Hello, world!\n");
        char v[64];
        cr_assert_null(head_value(r.head, "Connection", v, sizeof v), "no Connection: close");
        free(r.body);
    }
    /* Connection: close is answered, then the server ends the connection. */
    const char *last = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    client_send(c, last, strlen(last));
    struct resp r;
    read_response(c, &r, false);
    char v[64];
    cr_assert_str_eq(head_value(r.head, "Connection", v, sizeof v), "close");
    free(r.body);
    cr_assert(ends(c));
    client_close(c);
    stop_server_ok();
}

Test(httpd, pipelined_requests_answered_in_order)
{
    /* 16 requests in one write, alternating routes so the order is visible. */
    char reqs[4096];
    size_t len = 0;
    for (int i = 0; i < 16; i++)
        len += (size_t)snprintf(reqs + len, sizeof reqs - len,
                                i % 2 ? "GET /nothing-%d HTTP/1.1\r\nHost: x\r\n\r\n"
                                      : "GET /?i=%d HTTP/1.1\r\nHost: x\r\n\r\n",
                                i);
    for (int round = 0; round < 3; round++) {
        struct client *c = client_open();
        client_send(c, reqs, len);
        for (int i = 0; i < 16; i++) {
            struct resp r;
            read_response(c, &r, false);
            cr_assert_eq(r.status, i % 2 ? 404 : 200, "response %d", i);
            if (i % 2 == 0)
                cr_assert_str_eq(r.body, "Hello, world!\n");
            free(r.body);
        }
        /* Nothing more: the connection is idle and open. */
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        cr_assert_eq(poll(&p, 1, 100), 0, "unexpected bytes after 16 responses");
        client_close(c);
    }
    stop_server_ok();
}

Test(httpd, pipelined_requests_split_at_every_byte)
{
    const char *two = "GET / HTTP/1.1\r\nHost: x\r\n\r\nHEAD /nothing HTTP/1.1\r\nHost: x\r\n\r\n";
    struct client *c = client_open();
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    for (size_t i = 0; i < strlen(two); i++)
        client_send(c, two + i, 1);
    struct resp r;
    expect_response(c, 200, "Hello, world!\n");
    read_response(c, &r, true);
    cr_assert_eq(r.status, 404);
    free(r.body);
    client_close(c);
    stop_server_ok();
}

Test(httpd, head_has_no_body)
{
    struct client *c = client_open();
    const char *reqs = "HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n";
    client_send(c, reqs, strlen(reqs));
    struct resp r;
    read_response(c, &r, true);
    cr_assert_eq(r.status, 200);
    char v[64];
    cr_assert_str_eq(head_value(r.head, "Content-Length", v, sizeof v), "14");
    free(r.body);
    /* The very next bytes are the GET's response: the HEAD sent no body. */
    expect_response(c, 200, "Hello, world!\n");
    client_close(c);
    stop_server_ok();
}

Test(httpd, http10)
{
    /* HTTP/1.0 without keep-alive: one response, then the server ends the connection. */
    struct client *c = client_open();
    const char *req = "GET / HTTP/1.0\r\n\r\n";
    client_send(c, req, strlen(req));
    struct resp r;
    read_response(c, &r, false);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "Hello, world!\n");
    char v[64];
    cr_assert_str_eq(head_value(r.head, "Connection", v, sizeof v), "close");
    free(r.body);
    cr_assert(ends(c), "HTTP/1.0 connection not closed");
    client_close(c);

    /* HTTP/1.0 asking for keep-alive gets it, and says so. */
    c = client_open();
    req = "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    for (int i = 0; i < 3; i++) {
        client_send(c, req, strlen(req));
        read_response(c, &r, false);
        cr_assert_eq(r.status, 200);
        cr_assert_str_eq(head_value(r.head, "Connection", v, sizeof v), "keep-alive");
        free(r.body);
    }
    client_close(c);

    if (have_curl()) {
        char cmd[256];
        int st;
        snprintf(cmd, sizeof cmd, CURL "--http1.0 http://127.0.0.1:%u/", srv.port);
        char *out = run_cmd(cmd, &st);
        cr_assert_eq(st, 0);
        cr_assert_str_eq(out, "Hello, world!\n");
        free(out);
    }
    stop_server_ok();
}

static void fill_random(char *p, size_t n, uint64_t seed)
{
    nu_fill((uint8_t *)p, n, seed);
}

/* Fetches url with curl into a file and compares it with want[0..n). */
static void curl_compare(const char *path, const char *want, size_t n)
{
    char out[PATH_MAX], cmd[PATH_MAX * 2];
    snprintf(out, sizeof out, "%s/fetched", tmp_dir);
    snprintf(cmd, sizeof cmd, CURL "-f -o '%s' http://127.0.0.1:%u%s", out, srv.port, path);
    int st = system(cmd);
    cr_assert_eq(st, 0, "curl %s failed (%d)", path, st);
    FILE *f = fopen(out, "rb");
    cr_assert_not_null(f);
    char *got = malloc(n + 1);
    size_t r = fread(got, 1, n + 1, f);
    fclose(f);
    cr_assert_eq(r, n, "%s: %zu bytes, want %zu", path, r, n);
    cr_assert(memcmp(got, want, n) == 0, "%s: contents differ", path);
    free(got);
    unlink(out);
}

static void static_files_byte_identical(void)
{
    cr_assert(have_curl(), "curl is not installed (sh .ci/deps.sh curl)");
    size_t sizes[] = {0, 1, 4095, 16384, 100000, 3u << 20};
    char sub[PATH_MAX];
    snprintf(sub, sizeof sub, "%s/sub", root_dir);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char *data = malloc(sizes[i] + 1);
        fill_random(data, sizes[i], 1000 + i);
        char name[64], url[128];
        snprintf(name, sizeof name, "f%zu.bin", i);
        write_file(sub, name, data, sizes[i]);
        snprintf(url, sizeof url, "/static/sub/%s", name);
        curl_compare(url, data, sizes[i]);
        curl_compare(url, data, sizes[i]); /* again: cached or not, the same bytes */
        free(data);
    }
    curl_compare("/static/hello.txt", "static hello\n", 13);
    curl_compare("/static/sub/../hello.txt", "static hello\n", 13); /* curl squashes ".." */

    /* Content-Type by extension; HEAD gives the length without the body. */
    struct resp r;
    cr_assert_eq(request("HEAD /static/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
    char v[128];
    cr_assert_str_eq(head_value(r.head, "Content-Length", v, sizeof v), "13");
    cr_assert_not_null(strstr(head_value(r.head, "Content-Type", v, sizeof v), "text/plain"));
    free(r.body);

    /* A changed file is served changed, at once (the cache checks every time). */
    for (int i = 0; i < 5; i++) {
        char body[32];
        int n = snprintf(body, sizeof body, "version %d\n", i);
        write_file(root_dir, "changing.txt", body, (size_t)n);
        curl_compare("/static/changing.txt", body, (size_t)n);
    }

    /* Pipelined static requests answer in order too, misses included. */
    struct client *c = client_open();
    const char *reqs = "GET /static/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /static/sub/f4.bin HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /static/missing HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /static/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n";
    client_send(c, reqs, strlen(reqs));
    int want_status[] = {200, 200, 200, 404, 200};
    size_t want_len[] = {13, 100000, 14, 0, 13};
    for (int i = 0; i < 5; i++) {
        read_response(c, &r, false);
        cr_assert_eq(r.status, want_status[i], "response %d", i);
        if (want_status[i] == 200)
            cr_assert_eq(r.body_len, want_len[i], "response %d", i);
        free(r.body);
    }
    client_close(c);

    /* Not files: a directory, a missing file, the root itself. */
    cr_assert_eq(request("GET /static/sub HTTP/1.1\r\nHost: x\r\n\r\n", NULL), 404);
    cr_assert_eq(request("GET /static/sub/ HTTP/1.1\r\nHost: x\r\n\r\n", NULL), 404);
    cr_assert_eq(request("GET /static/nope.txt HTTP/1.1\r\nHost: x\r\n\r\n", NULL), 404);
    cr_assert_eq(request("GET /static/ HTTP/1.1\r\nHost: x\r\n\r\n", NULL), 404);
    cr_assert_eq(request("GET /static HTTP/1.1\r\nHost: x\r\n\r\n", NULL), 404);
    stop_server_ok();
}

/* Sum over cores of one counter of /metrics. */
static uint64_t metric_sum(const char *name)
{
    struct resp r;
    cr_assert_eq(request("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
    uint64_t sum = 0;
    size_t n = strlen(name);
    for (const char *l = r.body; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, name, n) == 0 && l[n] == '{')
            sum += strtoull(strchr(l, ' ') + 1, NULL, 10);
    free(r.body);
    return sum;
}

static void get_expect(struct client *c, const char *path, const char *want)
{
    char req[256];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    client_send(c, req, strlen(req));
    expect_response(c, 200, want);
}

/* Whether a file is old enough for the static cache: its ctime over a second in the past. */
static bool file_settled(const char *path)
{
    struct stat st;
    struct timespec now;
    cr_assert_eq(stat(path, &st), 0);
    clock_gettime(CLOCK_REALTIME, &now);
    double age =
        (double)(now.tv_sec - st.st_ctim.tv_sec) + (double)(now.tv_nsec - st.st_ctim.tv_nsec) / 1e9;
    return age > 1.05;
}

Test(httpd, static_cache_sees_changes_and_date_moves)
{
    /* Only files unchanged for over a second are cached: let this one settle. */
    write_file(root_dir, "cached.txt", "first version\n", 14);
    char path[PATH_MAX], d1[64], d2[64];
    snprintf(path, sizeof path, "%s/cached.txt", root_dir);
    struct resp r;
    cr_assert_eq(request("GET / HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
    cr_assert_not_null(head_value(r.head, "Date", d1, sizeof d1));
    cr_assert_eq(strlen(d1), 29, "IMF-fixdate: %s", d1);
    free(r.body);
    /* Meanwhile the Date header moves on (each core refreshes it every second). */
    uint64_t end = nu_now_ms() + 5000;
    do {
        usleep(20000); /* a poll's interval */
        cr_assert_eq(request("GET / HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
        cr_assert_not_null(head_value(r.head, "Date", d2, sizeof d2));
        free(r.body);
    } while ((!strcmp(d1, d2) || !file_settled(path)) && nu_now_ms() < end);
    cr_assert_str_neq(d1, d2, "Date not refreshed");
    cr_assert(file_settled(path), "the file is over a second old");
    struct client *c = client_open(); /* one connection: one core, one cache */
    for (int i = 0; i < 3; i++)
        get_expect(c, "/static/cached.txt", "first version\n");
    cr_assert_geq(metric_sum("httpd_static_cache_hits_total"), 2, "later GETs hit the cache");
    /* Same size, new bytes: served new at once. */
    write_file(root_dir, "cached.txt", "other version\n", 14);
    get_expect(c, "/static/cached.txt", "other version\n");
    /* Replaced by rename, as deploy tools do. */
    write_file(tmp_dir, "next.txt", "third version\n", 14);
    char from[PATH_MAX], to[PATH_MAX];
    snprintf(from, sizeof from, "%s/next.txt", tmp_dir);
    snprintf(to, sizeof to, "%s/cached.txt", root_dir);
    cr_assert_eq(rename(from, to), 0);
    get_expect(c, "/static/cached.txt", "third version\n");
    /* Removed: 404, not the cached copy. */
    cr_assert_eq(unlink(to), 0);
    const char *req = "GET /static/cached.txt HTTP/1.1\r\nHost: x\r\n\r\n";
    client_send(c, req, strlen(req));
    expect_response(c, 404, NULL);
    client_close(c);
    stop_server_ok();
}

static void path_traversal_refused(void)
{
    const char *paths[] = {
        "/static/../secret.txt",     "/static/../../../../etc/passwd",
        "/static/%2e%2e/secret.txt", "/static/%2E%2E%2Fsecret.txt",
        "/static/..%2fsecret.txt",   "/static/sub/../../secret.txt",
        "/static/escape.txt",        "/static/.%2e/secret.txt",
        "/static/..\\secret.txt",    "/static/%00secret.txt",
        "/static//etc/passwd",       "/static/sub/%2e%2e/%2e%2e/secret.txt",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        char req[256];
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", paths[i]);
        struct client *c = client_open();
        client_send(c, req, strlen(req));
        /* The server answers with a refusal, or (for a target the parser rejects) a 400. */
        struct resp r;
        read_response(c, &r, false);
        cr_assert(r.status == 400 || r.status == 403 || r.status == 404, "%s: %d", paths[i],
                  r.status);
        cr_assert_null(strstr(r.body, "SECRET"), "%s leaked the file", paths[i]);
        cr_assert_null(strstr(r.body, "root:"), "%s leaked /etc/passwd", paths[i]);
        free(r.body);
        client_close(c);
    }
    stop_server_ok();
}

Test(httpd, static_files_byte_identical)
{
    static_files_byte_identical();
}

Test(httpd, path_traversal_refused)
{
    path_traversal_refused();
}

/* The same with every open going through io_uring (sn_file_openat2), the path a file takes
 * when it is not in the kernel's dentry cache: the connection waits for the open as for a
 * read, so pipelined answers stay in order and refusals stay refusals. */
static void setup_root_uring_open(void)
{
    setenv("SN_HTTPD_OPEN_URING", "1", 1);
    setup_root();
}

static void teardown_uring_open(void)
{
    teardown();
    unsetenv("SN_HTTPD_OPEN_URING");
}

Test(httpd_uring_open, static_files_byte_identical, .init = setup_root_uring_open,
     .fini = teardown_uring_open, .timeout = 60)
{
    static_files_byte_identical();
}

Test(httpd_uring_open, path_traversal_refused, .init = setup_root_uring_open,
     .fini = teardown_uring_open, .timeout = 60)
{
    path_traversal_refused();
}

/* Checks one exposition line: a comment or `name{core="N"} value`. Returns the core or -1. */
static int check_metrics_line(const char *l)
{
    if (l[0] == '#') {
        cr_assert(strncmp(l, "# HELP ", 7) == 0 || strncmp(l, "# TYPE ", 7) == 0, "%s", l);
        if (strncmp(l, "# TYPE ", 7) == 0)
            cr_assert(strstr(l, " counter") || strstr(l, " gauge"), "%s", l);
        return -1;
    }
    const char *p = l;
    cr_assert(isalpha((unsigned char)*p) || *p == '_' || *p == ':', "%s", l);
    while (isalnum((unsigned char)*p) || *p == '_' || *p == ':')
        p++;
    cr_assert(strncmp(p, "{core=\"", 7) == 0, "no core label: %s", l);
    p += 7;
    char *end;
    long core = strtol(p, &end, 10);
    cr_assert(end != p && strncmp(end, "\"} ", 3) == 0, "%s", l);
    p = end + 3;
    cr_assert(isdigit((unsigned char)*p), "%s", l);
    strtoull(p, &end, 10);
    cr_assert_eq(*end, 0, "%s", l);
    return (int)core;
}

Test(httpd, metrics_prometheus_text)
{
    cr_assert_eq(request("GET / HTTP/1.1\r\nHost: x\r\n\r\n", NULL), 200);
    struct resp r;
    cr_assert_eq(request("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
    char v[128];
    cr_assert_not_null(strstr(head_value(r.head, "Content-Type", v, sizeof v), "version=0.0.4"));
    cr_assert_gt(r.body_len, 0);
    cr_assert_eq(r.body[r.body_len - 1], '\n');
    bool seen[2] = {false, false};
    uint64_t requests = 0;
    char *save = NULL;
    for (char *l = strtok_r(r.body, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        int core = check_metrics_line(l);
        if (core < 0)
            continue;
        cr_assert(core == 0 || core == 1, "%s", l);
        seen[core] = true;
        if (strncmp(l, "httpd_requests_total{", 21) == 0)
            requests += strtoull(strrchr(l, ' ') + 1, NULL, 10);
    }
    cr_assert(seen[0] && seen[1], "samples for both cores");
    cr_assert_geq(requests, 2, "the hello and this /metrics request are counted");
    free(r.body);
    for (const char *name = "sn_loops_total\0sn_uring_cqes_total\0httpd_responses_2xx_total\0";
         *name; name += strlen(name) + 1) {
        cr_assert_eq(request("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
        char want[96];
        snprintf(want, sizeof want, "\n%s{core=\"0\"} ", name);
        cr_assert_not_null(strstr(r.body, want), "%s missing", name);
        free(r.body);
    }
    stop_server_ok();
}

/* A server with sn-httpd's own --io-batch-us (400) whose cores sleep as soon as they are idle
 * (--idle-poll-us 0: with the default 200 a core that saw start-up's cross-core work polls
 * instead of sleeping until 200 us pass idle, which the short spells between stops below
 * never give it). */
static void setup_batch(void)
{
    static const char *const extra[] = {"--idle-poll-us", "0", NULL};
    make_tree();
    start_server_with(true, extra);
}

/* Requests on many connections at once are met by batched sleeps, and every answer still
 * arrives whole and in order. "At once" is made so: each round's requests are written while
 * the server is stopped (SIGSTOP), so its cores find them all when it continues and their next
 * sleep waits for a batch, whatever the machine's load. (Written while it ran, a core that
 * outran a client slowed by a busy machine saw one request per sleep and never batched: no
 * batched sleep in 2000 rounds once, beside a concurrent test run.) */
Test(httpd_batch, batched_sleeps_by_default_under_many_connections, .init = setup_batch,
     .fini = teardown, .timeout = 60)
{
    if (!kernel_batches())
        cr_skip_test("the kernel has no minimum wait (IORING_FEAT_MIN_TIMEOUT)");
    enum { CONNS = 16, ROUNDS = 20 };
    struct client *c[CONNS];
    for (int i = 0; i < CONNS; i++)
        c[i] = client_open();
    static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    for (int round = 0; round < ROUNDS; round++) {
        int st;
        cr_assert_eq(kill(srv.pid, SIGSTOP), 0);
        cr_assert_eq(waitpid(srv.pid, &st, WUNTRACED), srv.pid);
        cr_assert(WIFSTOPPED(st), "the server did not stop");
        for (int i = 0; i < CONNS; i++)
            client_send(c[i], req, sizeof req - 1);
        cr_assert_eq(kill(srv.pid, SIGCONT), 0);
        for (int i = 0; i < CONNS; i++)
            expect_response(c[i], 200, "Hello, world!\n");
    }
    uint64_t batched = metric_sum("sn_batched_sleeps_total");
    for (int i = 0; i < CONNS; i++)
        client_close(c[i]);
    cr_expect_gt(batched, 0, "no batched sleep in %d rounds of %d connections", ROUNDS, CONNS);
    stop_server_ok();
}

Test(httpd, bad_request_400_and_close)
{
    const char *bad[] = {
        "GARBAGE\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",             /* no Host */
        "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", /* two spaces */
        "GET / HTTP/1.1\nHost: x\n\n",        /* bare LF */
        "GET / HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct client *c = client_open();
        client_send(c, bad[i], strlen(bad[i]));
        struct resp r;
        read_response(c, &r, false);
        cr_assert_eq(r.status, 400, "request %zu: %d", i, r.status);
        char v[64];
        cr_assert_str_eq(head_value(r.head, "Connection", v, sizeof v), "close");
        free(r.body);
        cr_assert(ends(c), "request %zu: connection not closed", i);
        client_close(c);
    }
    /* A good request before the bad one is answered first, in order. */
    struct client *c = client_open();
    const char *two = "GET / HTTP/1.1\r\nHost: x\r\n\r\nBOGUS\r\n\r\n";
    client_send(c, two, strlen(two));
    expect_response(c, 200, NULL);
    expect_response(c, 400, NULL);
    cr_assert(ends(c));
    client_close(c);
    stop_server_ok();
}

Test(httpd, other_errors)
{
    /* Header section over 8 KiB: 431 and close. */
    struct client *c = client_open();
    char *big = malloc(16384);
    int n = snprintf(big, 16384, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(big + n, 'a', 10000);
    memcpy(big + n + 10000, "\r\n\r\n", 5);
    client_send(c, big, strlen(big));
    free(big);
    struct resp r;
    expect_response(c, 431, NULL);
    cr_assert(ends(c));
    client_close(c);

    /* Unknown method: 501, and the connection goes on. */
    c = client_open();
    const char *reqs = "DELETE / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n";
    client_send(c, reqs, strlen(reqs));
    expect_response(c, 501, NULL);
    expect_response(c, 200, NULL);
    client_close(c);

    /* Other statuses the parser decides, each closing. */
    struct {
        const char *req;
        int status;
    } cases[] = {
        {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
        {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n", 413},
        {NULL, 414},
    };
    char longreq[6000];
    n = snprintf(longreq, sizeof longreq, "GET /");
    memset(longreq + n, 'x', 5000);
    snprintf(longreq + n + 5000, sizeof longreq - (size_t)n - 5000, " HTTP/1.1\r\nHost: x\r\n\r\n");
    cases[2].req = longreq;
    for (size_t i = 0; i < 3; i++) {
        c = client_open();
        client_send(c, cases[i].req, strlen(cases[i].req));
        read_response(c, &r, false);
        cr_assert_eq(r.status, cases[i].status, "case %zu: %d", i, r.status);
        free(r.body);
        cr_assert(ends(c), "case %zu", i);
        client_close(c);
    }

    /* A body on a GET is read and skipped: the next request still works. */
    c = client_open();
    reqs = "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcdeGET / HTTP/1.1\r\nHost: "
           "x\r\n\r\n";
    client_send(c, reqs, strlen(reqs));
    for (int i = 0; i < 2; i++) {
        expect_response(c, 200, NULL);
    }
    client_close(c);
    stop_server_ok();
}

Test(httpd, sigterm_exits_zero)
{
    /* With an idle keep-alive connection open and one request answered. */
    struct client *c = client_open();
    const char *req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    client_send(c, req, strlen(req));
    struct resp r;
    read_response(c, &r, false);
    free(r.body);
    stop_server_ok();
    cr_assert(ends(c), "connection not closed at shutdown");
    client_close(c);
}

Test(httpd_noroot, static_is_404_without_root, .init = setup_noroot, .fini = teardown,
     .timeout = 60)
{
    cr_assert_eq(request("GET /static/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", NULL), 404);
    cr_assert_eq(request("GET / HTTP/1.1\r\nHost: x\r\n\r\n", NULL), 200);
    /* SIGINT works as SIGTERM does. */
    cr_assert_eq(kill(srv.pid, SIGINT), 0);
    int st = su_wait_exit(srv.pid, START_MS);
    srv.pid = 0;
    cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
}
