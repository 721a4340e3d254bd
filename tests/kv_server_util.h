/*
 * The sn-kv server process and raw-socket client I/O shared by the tests/test_kv_server*.c
 * binaries (see test_kv_server.c for what they cover). One server (srv) per test binary.
 */
#ifndef SN_TESTS_KV_SERVER_UTIL_H
#define SN_TESTS_KV_SERVER_UTIL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>

#include "reactor_util.h"
#include "support/server_proc.h"

#define IO_MS (SN_TEST_SLOW ? 60000 : 20000)

/* ---- the server process ------------------------------------------------------------------ */

struct kvs {
    struct su_server s;
    uint16_t port;  /* s.port */
    uint16_t mport; /* s.port2: --metrics-port */
    unsigned ncores;
    struct sn_partition *part;
};

static struct kvs srv;

/* Runs sn-kv with these extra arguments (NULL-terminated list) to completion: exit status. */
static inline int run_to_exit(const char *first, ...)
{
    char *argv[16] = {"sn-kv", "--smp", "1", "--unpinned", "--port", "0"};
    int n = 6;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && n < 15; a = va_arg(ap, const char *))
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    return su_run_to_exit("kv", argv, true);
}

/*
 * Starts sn-kv on `ncores` cores with partitioner `spec` and up to 7 extra arguments (NULL
 * terminated) on a free port; waits until it accepts. Fills srv.
 */
static inline void kvs_start(unsigned ncores, const char *spec, ...)
{
    char smp[8];
    snprintf(smp, sizeof smp, "%u", ncores);
    const char *args[24] = {"--smp",         smp,  "--unpinned",     "--port",
                            SU_PORT,         "--partitioner", spec, "--metrics-port",
                            SU_PORT2};
    int n = 9;
    va_list ap;
    va_start(ap, spec);
    for (int i = 0; i < 7; i++)
        if (!(args[n++] = va_arg(ap, const char *)))
            break;
    va_end(ap);
    char err[128];
    srv.ncores = ncores;
    cr_assert_eq(sn_partition_from_string(spec, ncores, err, sizeof err, &srv.part), 0, "%s",
                 err);
    su_start_args(&srv.s, "kv", args);
    srv.port = srv.s.port;
    srv.mport = srv.s.port2;
}

/* SIGTERM must end the server with exit code 0 (and, under ASan, no leak report). */
static inline void kvs_stop(void)
{
    su_stop_clean(&srv.s);
}

/* Whatever happened in the test: nothing it started survives it. */
static inline void kvs_fini(void)
{
    su_reap_all();
    srv.s.pid = 0;
    sn_partition_destroy(srv.part);
    srv.part = NULL;
}

TestSuite(kv, .fini = kvs_fini);

static inline unsigned owner(const char *key)
{
    return sn_partition(srv.part, key, strlen(key));
}

/* Names prefix0, prefix1, ... until each core owns `per_core` of them: keys[ncores*per_core]. */
static inline void keys_on_every_core(const char *prefix, unsigned per_core, char (*keys)[48])
{
    unsigned have[MAXC] = {0}, n = 0, want = per_core * srv.ncores;
    for (unsigned i = 0; n < want; i++) {
        char k[48];
        snprintf(k, sizeof k, "%s%u", prefix, i);
        unsigned o = owner(k);
        if (have[o] < per_core) {
            have[o]++;
            memcpy(keys[n++], k, sizeof k);
        }
    }
}

/* ---- a growable byte buffer ---------------------------------------------------------------- */

struct dbuf {
    char *p;
    size_t len, cap;
};

static inline void db_put(struct dbuf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = realloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

__attribute__((format(printf, 2, 3))) static void db_printf(struct dbuf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    db_put(b, tmp, (size_t)n);
}

static inline void db_free(struct dbuf *b)
{
    free(b->p);
    *b = (struct dbuf){0};
}

/* ---- client I/O ------------------------------------------------------------------------------ */

static inline int kc_connect(void)
{
    int fd = nu_connect(srv.port);
    cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
    nu_timeout(fd, IO_MS);
    return fd;
}

/*
 * Sends req while reading the answer (so neither side can block the other), until `want`
 * bytes came back or the peer closed. Returns the bytes read into *resp (malloc'ed, NUL
 * terminated).
 */
static inline size_t exchange(int fd, const char *req, size_t reqlen, size_t want, char **resp)
{
    char *r = malloc(want + 1);
    size_t sent = 0, got = 0;
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    uint64_t end = nu_now_ms() + IO_MS;
    while ((got < want || sent < reqlen) && nu_now_ms() < end) {
        struct pollfd p = {fd, (short)(POLLIN | (sent < reqlen ? POLLOUT : 0)), 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        if ((p.revents & POLLOUT) && sent < reqlen) {
            size_t n = reqlen - sent < 65536 ? reqlen - sent : 65536;
            ssize_t w = send(fd, req + sent, n, MSG_NOSIGNAL);
            if (w > 0)
                sent += (size_t)w;
            else if (w < 0 && errno != EAGAIN)
                break;
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = got < want ? recv(fd, r + got, want - got, 0) : 0;
            if (n > 0)
                got += (size_t)n;
            else if (n == 0 || errno != EAGAIN)
                break;
        }
    }
    fcntl(fd, F_SETFL, fl);
    r[got] = '\0';
    *resp = r;
    return got;
}

/* Sends req and asserts the answer is exactly want. */
static inline void expect_exact(int fd, const char *req, size_t reqlen, const char *want,
                                size_t wantlen, const char *what)
{
    char *got;
    size_t n = exchange(fd, req, reqlen, wantlen, &got);
    size_t i = 0;
    while (i < n && got[i] == want[i])
        i++;
    if (n != wantlen || i != wantlen) {
        size_t from = i > 40 ? i - 40 : 0;
        cr_log_info("%s: answer differs at byte %zu of %zu (got %zu)", what, i, wantlen, n);
        cr_log_info("want: %.*s", (int)(wantlen - from < 120 ? wantlen - from : 120), want + from);
        cr_log_info("got:  %.*s", (int)(n - from < 120 ? n - from : 120), got + from);
    }
    free(got);
    cr_assert(n == wantlen && i == wantlen, "%s: the answer is exactly memcached's", what);
}

static inline void expect_str(int fd, const char *req, const char *want)
{
    expect_exact(fd, req, strlen(req), want, strlen(want), req);
}

/* Reads until the buffer ends with `term` (or the peer closes): malloc'ed, NUL terminated. */
static inline char *read_until(int fd, const char *term)
{
    struct dbuf b = {0};
    size_t tl = strlen(term);
    char tmp[16384];
    while (b.len < tl || memcmp(b.p + b.len - tl, term, tl) != 0) {
        ssize_t n = recv(fd, tmp, sizeof tmp, 0);
        if (n <= 0)
            break;
        db_put(&b, tmp, (size_t)n);
    }
    if (!b.p)
        db_put(&b, "", 0);
    return b.p;
}

/* True when the peer closes the connection (EOF) within the I/O timeout. */
static inline bool sees_eof(int fd)
{
    char c;
    return recv(fd, &c, 1, 0) == 0;
}

/* "stats" on a fresh connection: the value of STAT name, or -1. */
static inline long long stat_of(const char *stats, const char *name)
{
    char pat[96];
    snprintf(pat, sizeof pat, "STAT %s ", name);
    const char *p = strstr(stats, pat);
    return p ? atoll(p + strlen(pat)) : -1;
}

static inline char *get_stats(void)
{
    int fd = kc_connect();
    nu_send_all(fd, "stats\r\n", 7);
    char *s = read_until(fd, "END\r\n");
    close(fd);
    return s;
}

#endif
