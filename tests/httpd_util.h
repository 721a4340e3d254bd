/*
 * The sn-httpd server process, a raw HTTP client and curl helpers shared by the
 * tests/test_httpd*.c binaries (see test_httpd.c). One server (srv) per test binary.
 */
#ifndef SN_TESTS_HTTPD_UTIL_H
#define SN_TESTS_HTTPD_UTIL_H

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

/* Plain static, not inline: inlined, gcc -O1 (tsan) warns of a false snprintf truncation. */
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

static inline void make_tree(void)
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

static inline void remove_tree(void)
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
static inline void start_server_with(bool with_root, const char *const *extra)
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

static inline void start_server(bool with_root)
{
    start_server_with(with_root, NULL);
}

/* Ends a test: SIGTERM must stop the server cleanly (exit 0; under ASan, no leak or error). */
static inline void stop_server_ok(void)
{
    su_stop_clean(&srv);
}

static inline void setup_root(void)
{
    make_tree();
    start_server(true);
}

static inline void setup_noroot(void)
{
    make_tree();
    start_server(false);
}

static inline void teardown(void)
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

static inline struct client *client_open(void)
{
    struct client *c = calloc(1, sizeof *c);
    cr_assert_not_null(c);
    c->fd = nu_connect(srv.port);
    cr_assert(c->fd >= 0, "connect: %s", strerror(-c->fd));
    nu_timeout(c->fd, IO_MS);
    return c;
}

static inline void client_close(struct client *c)
{
    close(c->fd);
    free(c);
}

static inline void client_send(struct client *c, const char *s, size_t len)
{
    cr_assert_eq(nu_send_all(c->fd, s, len), 0, "send");
}

/* Reads more bytes into c->buf; false on EOF, reset or timeout. */
static inline bool client_fill(struct client *c)
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

static inline void client_take(struct client *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* The value of header `name` in a response head, or NULL. */
static inline const char *head_value(const char *head, const char *name, char *out, size_t cap)
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
static inline void read_response(struct client *c, struct resp *r, bool head_req)
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
static inline void expect_response(struct client *c, int status, const char *body)
{
    struct resp r;
    read_response(c, &r, false);
    cr_assert_eq(r.status, status, "status %d, expected %d", r.status, status);
    if (body)
        cr_assert_str_eq(r.body, body);
    free(r.body);
}

/* One request on a new connection; returns the status (and frees the body unless kept). */
static inline int request(const char *req, struct resp *out)
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
static inline bool ends(struct client *c)
{
    return c->len == 0 && nu_expect_end(c->fd) == 0;
}

/* ---- curl --------------------------------------------------------------------------------- */

static inline bool have_curl(void)
{
    return system("curl --version >/dev/null 2>&1") == 0;
}

/* Runs a shell command and returns its whole stdout (malloc'd) and its exit status. */
static inline char *run_cmd(const char *cmd, int *status)
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

#endif
