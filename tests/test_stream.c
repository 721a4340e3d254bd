/*
 * Reading by structure in callback form (ops->on_line, ops->on_block, sn_conn_read_block)
 * and sn_conn_flush, on a running reactor, loopback only (server: tests/kit_util.h). Lines at,
 * over and far over the maximum; n-byte blocks split across many receives; a block over the
 * input limit refused; a flush that settles once the bytes left, and fails when the peer
 * resets first.
 */
#include <criterion/criterion.h>

#include "stream_cases.h"

/* ---- lines at, over and far over the maximum --------------------------------------------- */

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
