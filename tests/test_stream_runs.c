/*
 * A stream's queue of runs (reactor/net_stream_runs.c): lent receive buffers and copied runs
 * interleaved in arrival order. Checked on loopback (server: tests/kit_util.h, 2 cores) with
 * the cores' lend budget forced tiny (sn__net_set_lend_limits), so that lends are refused
 * and granted again while input queues up:
 * - an echo through read_some and write_input gives back 4 MiB byte for byte, with slices
 *   both lent and copied, and lent runs queued behind copied ones (impossible before the
 *   queue: a stream lent only while nothing was buffered);
 * - read_line and read_exact, alternating with read_some, read across lent and copied runs
 *   (they flatten the queue) and every byte comes back once, in order;
 * - a peer that resets its connection while the fiber holds a lent slice: the slice's bytes
 *   stay intact, the next read fails, and no pin is left once the connection is gone.
 * Every run ends with no ring buffer still lent on any core (pins released at close).
 */
#include <criterion/criterion.h>

#include "kit_util.h"

/* Forced lend limits: buffers lent per core at all, to output. */
#define TINY_LENT 3
#define TINY_OUT  1

/* Bytes queued unread (with the last slice's). */
static size_t queued(const struct sn__stream *st)
{
    return st->held_bytes + (st->len - st->pos);
}

/* Waits (bounded, polling the real state) until `more` bytes more are queued, or the input
 * ended. */
static void let_input_gather(struct sn_conn *c, size_t more)
{
    struct sn__stream *st = c->stream;
    size_t want = queued(st) + more;
    uint64_t end = sn_now_ns() + 50u * 1000000u;
    while (queued(st) < want && !st->eof && !st->err && sn_now_ns() < end)
        if (sn_fiber_sleep_ns(200000))
            return;
}

/* Lets input queue up with every lend refused (copied runs), then with lends granted
 * (lent runs behind them), then goes back to the tiny budget. */
static void gather_copied_then_lent(struct sn_conn *c)
{
    sn__net_set_lend_limits(0, 0);
    let_input_gather(c, 8192);
    sn__net_set_lend_limits(SN__NET_LEND_MAX, SN__NET_LEND_OUT_MAX);
    let_input_gather(c, 8192);
    sn__net_set_lend_limits(TINY_LENT, TINY_OUT);
}

/* Whether the queue holds a lent run behind a copied one. */
static bool lent_behind_copied(const struct sn__stream *st)
{
    bool copied = false;
    for (unsigned i = 0; i < st->nruns; i++) {
        if (!st->runs[i].lend)
            copied = true;
        else if (copied)
            return true;
    }
    return false;
}

/* Whether the last slice is a lent receive buffer. */
static bool lent_slice(const struct sn_conn *c)
{
    return c->stream->run_out && c->stream->runs[0].lend;
}

/* Whether the queue holds both a lent and a copied run. */
static bool mixed(const struct sn__stream *st)
{
    return st->nlent && st->nlent < st->nruns;
}

static char *random_bytes(size_t n, uint64_t seed)
{
    char *p = malloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)nu_rand(&seed);
    return p;
}

/* At most this many bytes sent and not echoed yet: under the stream's read-ahead, so the
 * stream never stops reading and a fiber that waits for input to gather gets it. */
#define WINDOW (48u * 1024u)
#define PIECE  (16u * 1024u)

/* Sends in[0..n) in pieces, keeping at most WINDOW bytes unechoed, half-closes, and checks
 * that exactly in[0..n) comes back before the end; 0, 2 (cut or different) or 3 (stuck). */
static int echo_check(uint16_t port, const char *in, size_t n)
{
    int fd = nu_connect(port);
    if (fd < 0)
        return 1;
    char *got = malloc(n + 1);
    size_t sent = 0, have = 0;
    uint64_t end = nu_now_ms() + 60000;
    bool eof = false;
    while (!eof && nu_now_ms() < end) {
        bool may_send = sent < n && sent - have + PIECE <= WINDOW;
        struct pollfd pf = {.fd = fd, .events = POLLIN | (may_send ? POLLOUT : 0)};
        if (poll(&pf, 1, 100) < 0 && errno != EINTR)
            break;
        if ((pf.revents & POLLOUT) && may_send) {
            size_t k = n - sent < PIECE ? n - sent : PIECE;
            ssize_t w = send(fd, in + sent, k, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0 && (sent += (size_t)w) == n)
                shutdown(fd, SHUT_WR);
        }
        if (pf.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = recv(fd, got + have, n + 1 - have, MSG_DONTWAIT);
            if (r > 0)
                have += (size_t)r;
            else if (r == 0 || errno != EAGAIN)
                eof = true;
        }
    }
    int rc = !eof ? 3 : have == n && memcmp(got, in, n) == 0 ? 0 : 2;
    free(got);
    close(fd);
    return rc;
}

/* ---- byte order across interleaved runs ------------------------------------------------ */

#define ECHO_LEN (4u * 1024u * 1024u)

/* user[0]: lent slices; user[1]: copied slices; user[2]: reads that saw a lent run queued
 * behind a copied one; user[3]: blocks (refused lends, copied whole) written by reference. */
static int order_session(struct sn_conn *c, void *arg)
{
    (void)arg;
    kit_session_start();
    sn__net_set_lend_limits(TINY_LENT, TINY_OUT);
    struct sn_slice in;
    int rc;
    for (unsigned i = 0; (rc = sn_conn_read_some(c, &in)) == 0; i++) {
        atomic_fetch_add(&kc()->user[lent_slice(c) ? 0 : 1], 1);
        if (lent_behind_copied(c->stream))
            atomic_fetch_add(&kc()->user[2], 1);
        if ((rc = sn_conn_write_input(c, in.data, in.len)))
            break;
        if (c->stream->runs[0].blk && c->otail && !c->otail->cap && c->otail->data == in.data)
            atomic_fetch_add(&kc()->user[3], 1); /* a copied buffer, written by reference */
        if (i % 4 == 3)
            gather_copied_then_lent(c);
    }
    return kit_session_end(rc == SN_EOF ? 0 : rc);
}

static int order_client(uint16_t port)
{
    char *in = random_bytes(ECHO_LEN, 7);
    int rc = echo_check(port, in, ECHO_LEN);
    free(in);
    return rc;
}

Test(stream_runs, lent_and_copied_runs_keep_byte_order_under_a_tiny_budget, .timeout = 120)
{
    kit_init_serve(order_session, order_client);
    cr_assert_eq(kit_run(), 0);
    cr_assert_eq(K.client_rc, 0, "4 MiB came back byte for byte");
    cr_assert_gt(KTOTAL(user[0]), 0, "some slices were lent receive buffers");
    cr_assert_gt(KTOTAL(user[1]), 0, "some slices were copied runs (lends refused)");
    cr_assert_gt(KTOTAL(user[2]), 0, "a lent run was queued behind a copied one");
    cr_assert_gt(KTOTAL(user[3]), 0, "a refused lend's copy was written by reference");
    cr_assert_eq(KTOTAL(close_err), 0);
    cr_assert(K.settled);
    cr_assert_eq(KTOTAL(lent1), 0, "every pin and lent output was released");
}

/* ---- line and block reads across lent and copied runs ------------------------------------ */

/* Lines of 0..LINE_MOST printable bytes, each ended by "\n"; MIX_LEN bytes in all. */
#define MIX_LEN   (2u * 1024u * 1024u)
#define LINE_MOST 3000u

static char *line_bytes(size_t n, uint64_t seed)
{
    char *p = malloc(n);
    size_t left = 0;
    for (size_t i = 0; i < n; i++) {
        if (!left) {
            left = 1 + nu_rand(&seed) % (LINE_MOST + 1);
            if (left > n - i)
                left = n - i;
        }
        p[i] = --left ? (char)(' ' + nu_rand(&seed) % 95) : '\n';
    }
    return p;
}

/* Echoes one step's read: read_some, read_line (the line and its "\n") or read_exact of k
 * bytes, in turn; `*left` counts the bytes still to come. */
static int mix_step(struct sn_conn *c, unsigned i, size_t *left)
{
    struct sn_slice in;
    int rc;
    if (i % 3 != 0 && mixed(c->stream))
        atomic_fetch_add(&kc()->user[3], 1); /* the read below flattens both kinds */
    if (i % 3 == 0) {
        if ((rc = sn_conn_read_some(c, &in)) == 0)
            rc = sn_conn_write_input(c, in.data, in.len);
        atomic_fetch_add(&kc()->user[lent_slice(c) ? 0 : 1], 1);
    } else if (i % 3 == 1) {
        if ((rc = sn_conn_read_line(c, 2 * LINE_MOST, &in)) == 0 &&
            (rc = sn_conn_write(c, in.data, in.len)) == 0)
            rc = sn_conn_write(c, "\n", 1);
        *left -= rc ? 0 : 1;
    } else {
        size_t k = 1 + (i * 7919u) % 40000u;
        if ((rc = sn_conn_read_exact(c, k < *left ? k : *left, &in)) == 0)
            rc = sn_conn_write(c, in.data, in.len);
    }
    *left -= rc ? 0 : in.len;
    return rc;
}

/* user[0] / user[1]: lent / copied read_some slices; user[3]: line or block reads that found
 * lent and copied runs queued. */
static int mix_session(struct sn_conn *c, void *arg)
{
    (void)arg;
    kit_session_start();
    sn__net_set_lend_limits(TINY_LENT, TINY_OUT);
    size_t left = MIX_LEN;
    int rc = 0;
    for (unsigned i = 0; left && !rc; i++) {
        rc = mix_step(c, i, &left);
        if (i % 3 == 0)
            gather_copied_then_lent(c); /* after read_some: lending is on */
    }
    struct sn_slice in;
    if (!rc)
        rc = sn_conn_read_some(c, &in) == SN_EOF ? 0 : -EPROTO; /* nothing after MIX_LEN */
    return kit_session_end(rc);
}

static int mix_client(uint16_t port)
{
    char *in = line_bytes(MIX_LEN, 11);
    int rc = echo_check(port, in, MIX_LEN);
    free(in);
    return rc;
}

Test(stream_runs, line_and_block_reads_across_lent_and_copied_runs, .timeout = 120)
{
    kit_init_serve(mix_session, mix_client);
    cr_assert_eq(kit_run(), 0);
    cr_assert_eq(K.client_rc, 0, "every byte came back once, in order");
    cr_assert_gt(KTOTAL(user[0]), 0, "read_some handed out lent buffers");
    cr_assert_gt(KTOTAL(user[3]), 0, "line and block reads met lent and copied runs");
    cr_assert_eq(KTOTAL(close_err), 0);
    cr_assert(K.settled);
    cr_assert_eq(KTOTAL(lent1), 0, "every pin and lent output was released");
}

/* ---- the peer resets while a slice is lent ------------------------------------------------ */

#define RESET_SEND                                                                                 \
    (32u * 1024u) /* under the read-ahead: the receive stays armed to see the reset */

/* user[0]: the fiber saw the reset while holding a lent slice; user[1]: ring buffers were
 * still lent on the core then; user[2]: the read after it failed; bad: the slice changed.
 * "r" tells the client that the fiber reads with read_some (lending is on), "x" that it
 * holds a lent slice. */
static int reset_session(struct sn_conn *c, void *arg)
{
    (void)arg;
    kit_session_start();
    struct sn_slice in;
    int rc = sn_conn_read_some(c, &in);
    if (!rc)
        rc = sn_conn_write(c, "r", 1);
    while (!rc && !lent_slice(c))
        rc = sn_conn_read_some(c, &in);
    if (rc)
        return kit_session_end(rc);
    char *copy = malloc(in.len);
    memcpy(copy, in.data, in.len);
    sn_conn_write(c, "x", 1);
    struct sn__stream *st = c->stream;
    uint64_t end = sn_now_ns() + 10ull * 1000000000u;
    while (!st->err && !st->eof && sn_now_ns() < end)
        if (sn_fiber_sleep_ns(1000000))
            break;
    if (st->err)
        atomic_fetch_add(&kc()->user[0], 1);
    if (sn__net_lent_buffers() > 0)
        atomic_fetch_add(&kc()->user[1], 1);
    if (memcmp(copy, in.data, in.len) != 0)
        atomic_fetch_add(&kc()->bad, 1);
    free(copy);
    rc = sn_conn_read_some(c, &in);
    if (rc < 0 && rc != SN_EOF)
        atomic_fetch_add(&kc()->user[2], 1);
    return kit_session_end(rc);
}

/* Waits for the byte `want`; 0 or -1. */
static int expect_byte(int fd, char want)
{
    char x;
    return recv(fd, &x, 1, 0) == 1 && x == want ? 0 : -1;
}

static int reset_client(uint16_t port)
{
    int fd = nu_connect(port);
    if (fd < 0)
        return 1;
    char *data = random_bytes(RESET_SEND, 3);
    nu_timeout(fd, 10000);
    int rc = nu_send_all(fd, data, 1024) || expect_byte(fd, 'r') ? 2 : 0;
    if (!rc)
        rc = nu_send_all(fd, data, RESET_SEND) || expect_byte(fd, 'x') ? 3 : 0;
    struct linger lg = {.l_onoff = 1, .l_linger = 0}; /* close sends a reset */
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
    free(data);
    return rc;
}

Test(stream_runs, peer_reset_while_a_slice_is_lent_leaks_no_pin, .timeout = 60)
{
    kit_init_serve(reset_session, reset_client);
    cr_assert_eq(kit_run(), 0);
    cr_assert_eq(K.client_rc, 0);
    cr_assert_eq(KTOTAL(user[0]), 1, "the fiber saw the reset while holding a lent slice");
    cr_assert_eq(KTOTAL(user[1]), 1, "buffers were still lent to the dead connection");
    cr_assert_eq(KTOTAL(user[2]), 1, "the next read failed");
    cr_assert_eq(KTOTAL(bad), 0, "the lent slice stayed intact");
    cr_assert(K.settled);
    cr_assert_eq(KTOTAL(lent1), 0, "the pins went with the connection");
}
