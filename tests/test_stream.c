/*
 * Reading by structure in callback form (ops->on_line, ops->on_block, sn_conn_read_block)
 * and sn_conn_flush, on a running reactor, loopback only (server: tests/kit_util.h). Lines at,
 * over and far over the maximum; n-byte blocks split across many receives; a block over the
 * input limit refused; a flush that settles once the bytes left, and fails when the peer
 * resets first.
 */
#include <criterion/criterion.h>

#include <netinet/tcp.h>

#include "kit_util.h"

/* Sends p[0..len) in pieces of 1 to `most` bytes (TCP_NODELAY: many small segments, so the
 * server receives them across many receives). */
static int send_pieces(int fd, const char *p, size_t len, size_t most, uint64_t seed)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    while (len) {
        size_t n = 1 + nu_rand(&seed) % most;
        if (n > len)
            n = len;
        if (nu_send_all(fd, p, n))
            return -1;
        p += n;
        len -= n;
    }
    return 0;
}

/* ---- lines at, over and far over the maximum --------------------------------------------- */

#define LINE_MAX_TEST 64

static void echo_line(struct sn_conn *c, void *arg, const char *line, size_t len, int err)
{
    (void)arg;
    char out[64];
    atomic_fetch_add(err ? &kc()->too_long : &kc()->lines, 1);
    if (err && (err != -EMSGSIZE || len != LINE_MAX_TEST))
        atomic_fetch_add(&kc()->bad, 1);
    kit_max(&kc()->user[0], c->ilen); /* input kept while lines wait: stays small */
    int n =
        snprintf(out, sizeof out, "%s %zu %c\n", err ? "ERR" : "LINE", len, len ? line[0] : '-');
    sn_conn_write(c, out, (size_t)n);
}

static const struct sn_conn_ops lines_ops = {.on_line = echo_line, .on_close = kit_close};

static size_t add_line(char *in, size_t n, char ch, size_t count, const char *end, char *expect,
                       const char *answer)
{
    for (size_t i = 0; i < count; i++)
        in[n + i] = ch;
    n += count;
    memcpy(in + n, end, strlen(end));
    strcat(expect, answer);
    return n + strlen(end);
}

static char *lines_input(size_t *len, char *expect)
{
    size_t big = (size_t)3 << 20; /* 3 MiB: far over line_max and over input_max (1 MiB) */
    char *in = malloc(big + 16384);
    size_t n = 0;
    expect[0] = 0;
    n = add_line(in, n, 'a', 64, "\r\n", expect, "LINE 64 a\n");   /* at the maximum, CRLF */
    n = add_line(in, n, 'b', 64, "\n", expect, "LINE 64 b\n");     /* at the maximum, LF */
    n = add_line(in, n, 'c', 65, "\n", expect, "ERR 64 c\n");      /* one over */
    n = add_line(in, n, 'd', 65, "\r\n", expect, "ERR 64 d\n");    /* one over, CRLF */
    n = add_line(in, n, 'e', 0, "\r\n", expect, "LINE 0 -\n");     /* empty */
    n = add_line(in, n, 'f', 63, "\r\r\n", expect, "LINE 64 f\n"); /* a lone CR is kept */
    n = add_line(in, n, 'g', 5000, "\r\n", expect, "ERR 64 g\n");  /* far over */
    n = add_line(in, n, 'h', 1, "\n", expect, "LINE 1 h\n");
    n = add_line(in, n, 'i', big, "\n", expect, "ERR 64 i\n"); /* over input_max: skipped */
    n = add_line(in, n, 'j', 2, "\r\n", expect, "LINE 2 j\n");
    *len = n;
    return in;
}

static int lines_client(uint16_t port)
{
    char expect[256];
    size_t len;
    char *in = lines_input(&len, expect);
    int fd = nu_connect(port), rc = 1;
    if (fd >= 0) {
        nu_timeout(fd, 30000);
        /* The short lines in pieces of 1 to 7 bytes, the long ones in big sends. */
        size_t head = (size_t)((char *)memchr(in, 'g', len) - in);
        char *got;
        if (send_pieces(fd, in, head, 7, 5) == 0) {
            size_t n = kit_exchange(fd, in + head, len - head, strlen(expect), true, 60000, &got);
            rc = n == strlen(expect) && memcmp(got, expect, n) == 0 ? 0 : 2;
            if (rc)
                fprintf(stderr, "got %zu bytes: %.*s\n", n, (int)(n < 400 ? n : 400), got);
            free(got);
        }
        close(fd);
    }
    free(in);
    return rc;
}

Test(stream, lines_at_over_and_far_over_the_maximum, .timeout = 120)
{
    kit_init(&lines_ops, lines_client);
    K.lc.limits.line_max = LINE_MAX_TEST;
    cr_assert_eq(kit_run(), 0);
    cr_assert_eq(K.client_rc, 0, "each line answered, long ones with -EMSGSIZE");
    cr_assert_eq(KTOTAL(lines), 6);
    cr_assert_eq(KTOTAL(too_long), 4);
    cr_assert_eq(KTOTAL(bad), 0);
    cr_assert_eq(KTOTAL(close_err), 0, "the long lines did not end the connection");
    cr_assert_leq(KTOTAL(user[0]), 64 * 1024, "input kept while skipping stays small");
}

/* ---- n-byte blocks split across many receives --------------------------------------------- */

static uint32_t checksum(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 16777619u;
    return h;
}

static void set_line(struct sn_conn *c, void *arg, const char *line, size_t len, int err)
{
    (void)arg;
    char buf[64];
    unsigned long n;
    atomic_fetch_add(&kc()->lines, 1);
    if (err || len >= sizeof buf) {
        atomic_fetch_add(&kc()->bad, 1);
        return;
    }
    memcpy(buf, line, len);
    buf[len] = 0;
    if (sscanf(buf, "set %lu", &n) != 1) {
        atomic_fetch_add(&kc()->bad, 1);
        return;
    }
    int rc = sn_conn_read_block(c, n + 2);
    if (rc == -EMSGSIZE) {
        sn_conn_write(c, "TOOBIG\n", 7);
        sn_ignore(sn_conn_close(c));
    } else if (rc) {
        atomic_fetch_add(&kc()->bad, 1);
    }
}

static void set_block(struct sn_conn *c, void *arg, const char *data, size_t len)
{
    (void)arg;
    atomic_fetch_add(&kc()->blocks, 1);
    char out[64];
    bool ok = len >= 2 && data[len - 2] == '\r' && data[len - 1] == '\n';
    int n = snprintf(out, sizeof out, "%s %zu %08x\n", ok ? "STORED" : "BAD", len - 2,
                     checksum(data, len - 2));
    sn_conn_write(c, out, (size_t)n);
}

static const struct sn_conn_ops block_ops = {
    .on_line = set_line, .on_block = set_block, .on_close = kit_close};

static const size_t block_sizes[] = {0, 1, 100, 16382, 16383, 16384, 16385, 100000, 1000000};
#define NBLOCKS (sizeof block_sizes / sizeof block_sizes[0])

static int blocks_client(uint16_t port)
{
    size_t total = 0;
    for (unsigned i = 0; i < NBLOCKS; i++)
        total += block_sizes[i] + 32;
    char *in = malloc(total + 64), expect[NBLOCKS * 40 + 16];
    size_t n = 0, e = 0;
    uint64_t seed = 3;
    for (unsigned i = 0; i < NBLOCKS; i++) {
        size_t sz = block_sizes[i];
        n += (size_t)sprintf(in + n, "set %zu\r\n", sz);
        for (size_t j = 0; j < sz; j++)
            in[n + j] = (char)nu_rand(&seed); /* any byte, "\n" and "\r" included */
        e += (size_t)sprintf(expect + e, "STORED %zu %08x\n", sz, checksum(in + n, sz));
        n += sz;
        memcpy(in + n, "\r\n", 2);
        n += 2;
    }
    n += (size_t)sprintf(in + n, "set %u\r\n", 2u << 20); /* over input_max */
    e += (size_t)sprintf(expect + e, "TOOBIG\n");
    int fd = nu_connect(port), rc = 1;
    if (fd >= 0) {
        nu_timeout(fd, 30000);
        /* The first blocks in pieces of up to 100 bytes, so each is gathered from many
         * receives; the big ones in pieces of up to 3000. */
        size_t first = 0;
        for (unsigned i = 0; i < 7; i++)
            first += (size_t)snprintf(NULL, 0, "set %zu\r\n", block_sizes[i]) + block_sizes[i] + 2;
        if (send_pieces(fd, in, first, 100, 9) == 0 &&
            send_pieces(fd, in + first, n - first, 3000, 10) == 0) {
            char *got;
            size_t m = kit_exchange(fd, "", 0, e, true, 60000, &got);
            rc = m == e && memcmp(got, expect, e) == 0 ? 0 : 2;
            if (rc)
                fprintf(stderr, "got %zu of %zu bytes: %.*s\n", m, e, (int)m, got);
            free(got);
        }
        close(fd);
    }
    free(in);
    return rc;
}

Test(stream, blocks_split_across_many_receives, .timeout = 120)
{
    kit_init(&block_ops, blocks_client);
    cr_assert_eq(kit_run(), 0);
    cr_assert_eq(K.client_rc, 0, "every block whole and intact, then TOOBIG");
    cr_assert_eq(KTOTAL(blocks), NBLOCKS);
    cr_assert_eq(KTOTAL(lines), NBLOCKS + 1);
    cr_assert_eq(KTOTAL(bad), 0);
}

/* ---- sn_conn_flush ------------------------------------------------------------------------------
 */

#define FLUSH_BYTES ((size_t)8 << 20)

struct flusher {
    struct sn_conn *conn;
    uint64_t sent_at_call;
};

static void flushed(void *arg, int err, uint64_t value)
{
    (void)value;
    struct flusher *f = arg;
    struct kit_core *k = kc();
    if (err == 0 && f->conn->sent_total >= f->sent_at_call && sn_conn_backlog(f->conn) == 0)
        atomic_fetch_add(&k->user[1], 1); /* settled with every byte sent */
    else if (err)
        atomic_store(&k->user[2], (uint64_t)-err);
    sn_conn_release(f->conn);
    free(f);
}

static void flush_line(struct sn_conn *c, void *arg, const char *line, size_t len, int err)
{
    (void)arg, (void)err;
    atomic_fetch_add(&kc()->lines, 1);
    if (len == 5 && memcmp(line, "empty", 5) == 0) {
        /* Nothing queued: ready at once. */
        struct sn_future *f = sn_conn_flush(c);
        if (sn_future_available(f))
            atomic_fetch_add(&kc()->user[3], 1);
        sn_ignore(f);
        sn_conn_write(c, "E\n", 2);
        return;
    }
    char *big = malloc(FLUSH_BYTES);
    memset(big, 'x', FLUSH_BYTES);
    sn_conn_write(c, big, FLUSH_BYTES);
    free(big);
    struct flusher *fl = malloc(sizeof *fl);
    fl->conn = c;
    fl->sent_at_call = c->sent_total + c->backlog;
    sn_conn_hold(c); /* flushed() reads the connection, also after a reset */
    sn_done(sn_conn_flush(c), flushed, fl);
}

static const struct sn_conn_ops flush_ops = {.on_line = flush_line, .on_close = kit_close};

static int flush_client(uint16_t port)
{
    int rc = 0;
    int fd = nu_connect(port);
    if (fd < 0)
        return 1;
    nu_timeout(fd, 30000);
    char e[2];
    if (nu_send_all(fd, "empty\n", 6) || nu_recv_all(fd, e, 2) || memcmp(e, "E\n", 2))
        rc = 2;
    /* Reads it all: the flush settles once the last byte was handed to the kernel. */
    char *got;
    size_t n = kit_exchange(fd, "go\n", 3, FLUSH_BYTES, false, 60000, &got);
    if (n != FLUSH_BYTES)
        rc = 3;
    free(got);
    /* Then one it never reads: the server's flush cannot complete before the reset. */
    if (nu_send_all(fd, "go\n", 3))
        rc = 4;
    uint64_t end = nu_now_ms() + 20000;
    while (!rc && atomic_load(&K.core[0].lines) + atomic_load(&K.core[1].lines) < 3 &&
           nu_now_ms() < end)
        usleep(1000); /* (polls the server's state; the reset must come after the write) */
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
    return rc;
}

Test(stream, flush_settles_once_sent_and_fails_on_reset, .timeout = 120)
{
    kit_init(&flush_ops, flush_client);
    cr_assert_eq(kit_run(), 0);
    cr_assert_eq(K.client_rc, 0);
    cr_assert_eq(KTOTAL(user[3]), 1, "a flush with nothing queued is ready at once");
    cr_assert_eq(KTOTAL(user[1]), 1, "the first flush settled with every byte sent");
    uint64_t err = atomic_load(&K.core[0].user[2]) | atomic_load(&K.core[1].user[2]);
    cr_assert(err == ECONNRESET || err == EPIPE, "the second failed with the reset (%d)", (int)err);
    cr_assert(kit_pools_at_baseline());
}
