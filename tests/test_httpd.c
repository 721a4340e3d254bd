/*
 * End-to-end tests of sn-httpd (apps/httpd): each test starts the real server binary of this
 * build (<build>/bin/sn-httpd, found next to this test binary, so the asan and tsan builds test
 * their own server) with --smp 2 --unpinned --port 0 on loopback, and drives it with curl and
 * with raw sockets. Every server is stopped by the test's .fini, also when an assertion
 * failed, and dies with the test process otherwise (PR_SET_PDEATHSIG).
 */
#include <criterion/criterion.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "support/server_proc.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define START_MS 30000u
#else
#define START_MS 10000u
#endif
#define IO_MS 10000u

/* ---- the server process ----------------------------------------------------------------- */

static struct su_server srv;
static char tmp_dir[64];  /* holds root/ and files outside it */
static char root_dir[96]; /* --root */

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert(fd >= 0, "create %s: %s", path, strerror(errno));
    const char *p = data;
    while (len) {
        ssize_t w = write(fd, p, len);
        cr_assert(w > 0, "write %s", path);
        p += w;
        len -= (size_t)w;
    }
    close(fd);
}

static void make_tree(void)
{
    strcpy(tmp_dir, "/tmp/sn-httpd-test.XXXXXX");
    cr_assert_not_null(mkdtemp(tmp_dir));
    snprintf(root_dir, sizeof root_dir, "%s/root", tmp_dir);
    cr_assert(mkdir(root_dir, 0755) == 0);
    char sub[PATH_MAX];
    snprintf(sub, sizeof sub, "%s/sub", root_dir);
    cr_assert(mkdir(sub, 0755) == 0);
    write_file(tmp_dir, "secret.txt", "TOP SECRET\n", 11);
    write_file(root_dir, "hello.txt", "static hello\n", 13);
    char link[PATH_MAX], target[PATH_MAX];
    snprintf(link, sizeof link, "%s/escape.txt", root_dir);
    snprintf(target, sizeof target, "%s/secret.txt", tmp_dir);
    cr_assert(symlink(target, link) == 0);
}

static void remove_tree(void)
{
    if (!tmp_dir[0])
        return;
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0)
        cr_log_info("could not remove %s", tmp_dir);
    tmp_dir[0] = 0;
}

/*
 * Starts the server (with --root when with_root, then the NULL-terminated extra arguments) and
 * learns its port from its first line.
 */
static void start_server_with(bool with_root, const char *const *extra)
{
    char bin[PATH_MAX + 32];
    su_bin("httpd", bin, sizeof bin);
    int pfd[2];
    cr_assert(pipe2(pfd, O_CLOEXEC) == 0);
    pid_t pid = su_fork();
    cr_assert(pid >= 0, "fork");
    if (pid == 0) {
        dup2(pfd[1], STDOUT_FILENO);
        char *argv[16] = {bin, "--smp", "2", "--unpinned", "--port", "0"};
        unsigned n = 6;
        if (with_root) {
            argv[n++] = "--root";
            argv[n++] = root_dir;
        }
        for (unsigned i = 0; extra && extra[i] && n < 15; i++)
            argv[n++] = (char *)extra[i];
        argv[n] = NULL;
        execv(bin, argv);
        _exit(127);
    }
    srv.pid = pid;
    snprintf(srv.app, sizeof srv.app, "httpd");
    close(pfd[1]);
    char line[256];
    size_t len = 0;
    uint64_t end = nu_now_ms() + START_MS;
    while (len < sizeof line - 1 && !memchr(line, '\n', len) && nu_now_ms() < end) {
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t r = read(pfd[0], line + len, sizeof line - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        line[len] = 0;
    }
    close(pfd[0]);
    line[len] = 0;
    const char *at = strstr(line, "listening on 127.0.0.1:");
    cr_assert_not_null(at, "server did not start: '%s'", line);
    srv.port = (uint16_t)atoi(at + strlen("listening on 127.0.0.1:"));
    cr_assert_gt(srv.port, 0);
}

static void start_server(bool with_root)
{
    start_server_with(with_root, NULL);
}

/* Ends a test: SIGTERM must stop the server cleanly (exit 0; under ASan, no leak or error). */
static void stop_server_ok(void)
{
    su_stop_clean(&srv);
}

static void setup_root(void)
{
    make_tree();
    start_server(true);
}

static void setup_noroot(void)
{
    make_tree();
    start_server(false);
}

static void teardown(void)
{
    su_reap_all(); /* the server, if the test did not stop it */
    srv.pid = 0;
    remove_tree();
}

/* ---- a raw HTTP client ---------------------------------------------------------------------- */

struct client {
    int fd;
    char buf[1 << 16];
    size_t len; /* bytes in buf not yet taken */
};

struct resp {
    int status;
    char head[4096];
    char *body; /* malloc'd, NUL-terminated */
    size_t body_len;
};

static struct client *client_open(void)
{
    struct client *c = calloc(1, sizeof *c);
    cr_assert_not_null(c);
    c->fd = nu_connect(srv.port);
    cr_assert(c->fd >= 0, "connect: %s", strerror(-c->fd));
    nu_timeout(c->fd, IO_MS);
    return c;
}

static void client_close(struct client *c)
{
    close(c->fd);
    free(c);
}

static void client_send(struct client *c, const char *s, size_t len)
{
    cr_assert_eq(nu_send_all(c->fd, s, len), 0, "send");
}

/* Reads more bytes into c->buf; false on EOF, reset or timeout. */
static bool client_fill(struct client *c)
{
    cr_assert_lt(c->len, sizeof c->buf, "response too big for the test buffer");
    ssize_t r;
    do
        r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    while (r < 0 && errno == EINTR);
    if (r <= 0)
        return false;
    c->len += (size_t)r;
    return true;
}

static void client_take(struct client *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* The value of header `name` in a response head, or NULL. */
static const char *head_value(const char *head, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    for (const char *l = strstr(head, "\r\n"); l && l[2] && l[2] != '\r'; l = strstr(l + 2, "\r\n")) {
        const char *p = l + 2;
        if (strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
            p += nlen + 1;
            while (*p == ' ')
                p++;
            const char *e = strstr(p, "\r\n");
            size_t n = (size_t)(e - p) < cap - 1 ? (size_t)(e - p) : cap - 1;
            memcpy(out, p, n);
            out[n] = 0;
            return out;
        }
    }
    return NULL;
}

/* Reads one response; a HEAD response has no body. */
static void read_response(struct client *c, struct resp *r, bool head_req)
{
    char *end;
    while (!(c->len && (end = memmem(c->buf, c->len, "\r\n\r\n", 4))))
        cr_assert(client_fill(c), "connection ended before a full response head");
    size_t hlen = (size_t)(end - c->buf) + 4;
    cr_assert_lt(hlen, sizeof r->head);
    memcpy(r->head, c->buf, hlen);
    r->head[hlen] = 0;
    client_take(c, hlen);
    cr_assert(strncmp(r->head, "HTTP/1.1 ", 9) == 0, "status line: %.40s", r->head);
    r->status = atoi(r->head + 9);
    char v[64];
    cr_assert_not_null(head_value(r->head, "Content-Length", v, sizeof v), "no Content-Length");
    size_t clen = head_req ? 0 : (size_t)strtoull(v, NULL, 10);
    r->body = malloc(clen + 1);
    cr_assert_not_null(r->body);
    size_t got = 0;
    while (got < clen) {
        if (c->len == 0)
            cr_assert(client_fill(c), "connection ended inside a body (%zu of %zu)", got, clen);
        size_t n = c->len < clen - got ? c->len : clen - got;
        memcpy(r->body + got, c->buf, n);
        client_take(c, n);
        got += n;
    }
    r->body[clen] = 0;
    r->body_len = clen;
}

/* Reads one response (not to a HEAD); asserts its status and, unless body is NULL, its body. */
static void expect_response(struct client *c, int status, const char *body)
{
    struct resp r;
    read_response(c, &r, false);
    cr_assert_eq(r.status, status, "status %d, expected %d", r.status, status);
    if (body)
        cr_assert_str_eq(r.body, body);
    free(r.body);
}

/* One request on a new connection; returns the status (and frees the body unless kept). */
static int request(const char *req, struct resp *out)
{
    struct client *c = client_open();
    client_send(c, req, strlen(req));
    struct resp r;
    read_response(c, &r, strncmp(req, "HEAD ", 5) == 0);
    client_close(c);
    if (out)
        *out = r;
    else
        free(r.body);
    return r.status;
}

/* True when the server ends the connection (EOF or reset) with nothing more to read. */
static bool ends(struct client *c)
{
    return c->len == 0 && nu_expect_end(c->fd) == 0;
}

/* ---- curl --------------------------------------------------------------------------------- */

static bool have_curl(void)
{
    return system("curl --version >/dev/null 2>&1") == 0;
}

/* Runs a shell command and returns its whole stdout (malloc'd) and its exit status. */
static char *run_cmd(const char *cmd, int *status)
{
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "popen %s", cmd);
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    size_t r;
    while ((r = fread(out + len, 1, cap - len - 1, p)) > 0) {
        len += r;
        if (cap - len < 1024)
            out = realloc(out, cap *= 2);
    }
    out[len] = 0;
    *status = pclose(p);
    return out;
}

#define CURL "curl -s --max-time 10 "

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
    snprintf(cmd, sizeof cmd, CURL "-o /dev/null -o /dev/null -w '%%{http_code} %%{num_connects}\\n' "
             "http://127.0.0.1:%u/ http://127.0.0.1:%u/", srv.port, srv.port);
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

Test(httpd, static_files_byte_identical)
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

Test(httpd, static_cache_sees_changes_and_date_moves)
{
    /* Only files unchanged for over a second are cached: let this one settle. */
    write_file(root_dir, "cached.txt", "first version\n", 14);
    struct resp before, after;
    cr_assert_eq(request("GET / HTTP/1.1\r\nHost: x\r\n\r\n", &before), 200);
    usleep(1200 * 1000);
    /* Meanwhile the Date header moved on (each core refreshes it every second). */
    cr_assert_eq(request("GET / HTTP/1.1\r\nHost: x\r\n\r\n", &after), 200);
    char d1[64], d2[64];
    cr_assert_not_null(head_value(before.head, "Date", d1, sizeof d1));
    cr_assert_not_null(head_value(after.head, "Date", d2, sizeof d2));
    cr_assert_eq(strlen(d1), 29, "IMF-fixdate: %s", d1);
    cr_assert_str_neq(d1, d2, "Date not refreshed");
    free(before.body);
    free(after.body);
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

Test(httpd, path_traversal_refused)
{
    const char *paths[] = {
        "/static/../secret.txt",       "/static/../../../../etc/passwd",
        "/static/%2e%2e/secret.txt",   "/static/%2E%2E%2Fsecret.txt",
        "/static/..%2fsecret.txt",     "/static/sub/../../secret.txt",
        "/static/escape.txt",          "/static/.%2e/secret.txt",
        "/static/..\\secret.txt",      "/static/%00secret.txt",
        "/static//etc/passwd",         "/static/sub/%2e%2e/%2e%2e/secret.txt",
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

Test(httpd, bad_request_400_and_close)
{
    const char *bad[] = {
        "GARBAGE\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",                       /* no Host */
        "GET  / HTTP/1.1\r\nHost: x\r\n\r\n",           /* two spaces */
        "GET / HTTP/1.1\nHost: x\n\n",                  /* bare LF */
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
    snprintf(longreq + n + 5000, sizeof longreq - (size_t)n - 5000,
             " HTTP/1.1\r\nHost: x\r\n\r\n");
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
    reqs = "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcdeGET / HTTP/1.1\r\nHost: x\r\n\r\n";
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
    usleep(300 * 1000); /* the server fills its output and stops taking requests */
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
