/*
 * Reading by structure in fiber form (sn_conn_read_line, sn_conn_read_exact,
 * sn_conn_read_some) on connections served by sn_serve, loopback only (server:
 * tests/kit_util.h). The same cases as the callback form (tests/stream_cases.h) must give the
 * same answers; plus the end of input (SN_EOF, a last line without "\n"), a slice that stays
 * valid while more input grows the buffer behind it, and the calls' contract errors.
 */
#include <criterion/criterion.h>

#include "stream_cases.h"

/* ---- lines at, over and far over the maximum ---------------------------------------------- */

static int lines_session(struct sn_conn *c, void *arg)
{
    (void)arg;
    kit_session_start();
    struct sn_slice line;
    int rc;
    while ((rc = sn_conn_read_line(c, LINE_MAX_TEST, &line)) != SN_EOF) {
        if (rc && rc != -EMSGSIZE)
            return kit_session_end(rc);
        atomic_fetch_add(rc ? &kc()->too_long : &kc()->lines, 1);
        if (rc && line.len != LINE_MAX_TEST)
            atomic_fetch_add(&kc()->bad, 1);
        kit_max(&kc()->user[0], c->stream->cap); /* the buffer stays small while skipping */
        char out[64];
        int n = snprintf(out, sizeof out, "%s %zu %c\n", rc ? "ERR" : "LINE", line.len,
                         line.len ? line.data[0] : '-');
        sn_conn_write(c, out, (size_t)n);
    }
    return kit_session_end(0);
}

Test(stream_fiber, lines_at_over_and_far_over_the_maximum, .timeout = 120)
{
    kit_init_serve(lines_session, lines_client);
    cr_assert_eq(kit_run(), 0);
    cr_assert_eq(K.client_rc, 0, "each line answered, long ones with -EMSGSIZE");
    cr_assert_eq(KTOTAL(lines), 6);
    cr_assert_eq(KTOTAL(too_long), 4);
    cr_assert_eq(KTOTAL(bad), 0);
    cr_assert_eq(KTOTAL(close_err), 0);
    cr_assert_leq(KTOTAL(user[0]), 256 * 1024, "a 3 MiB line is never kept");
    cr_assert(K.settled);
    cr_assert(kit_pools_at_baseline());
}

/* ---- n-byte blocks split across many receives ---------------------------------------------- */

static int blocks_session(struct sn_conn *c, void *arg)
{
    (void)arg;
    kit_session_start();
    struct sn_slice line, block;
    char buf[64], out[64];
    unsigned long n;
    int rc;
    while ((rc = sn_conn_read_line(c, 0, &line)) == 0) {
        atomic_fetch_add(&kc()->lines, 1);
        snprintf(buf, sizeof buf, "%.*s", (int)line.len, line.data);
        if (sscanf(buf, "set %lu", &n) != 1)
            return kit_session_end(-EPROTO);
        if ((rc = sn_conn_read_exact(c, n + 2, &block)) == -EMSGSIZE) {
            sn_conn_write(c, "TOOBIG\n", 7);
            return kit_session_end(0);
        }
        if (rc)
            break;
        atomic_fetch_add(&kc()->blocks, 1);
        bool ok = block.data[n] == '\r' && block.data[n + 1] == '\n';
        int m = snprintf(out, sizeof out, "%s %lu %08x\n", ok ? "STORED" : "BAD", n,
                         checksum(block.data, n));
        sn_conn_write(c, out, (size_t)m);
    }
    return kit_session_end(rc == SN_EOF ? 0 : rc);
}

Test(stream_fiber, blocks_split_across_many_receives, .timeout = 120)
{
    kit_init_serve(blocks_session, blocks_client);
    cr_assert_eq(kit_run(), 0);
    cr_assert_eq(K.client_rc, 0, "every block whole and intact, then TOOBIG");
    cr_assert_eq(KTOTAL(blocks), NBLOCKS);
    cr_assert_eq(KTOTAL(lines), NBLOCKS + 1);
    cr_assert_eq(KTOTAL(close_err), 0);
    cr_assert(kit_pools_at_baseline());
}

/* ---- the end of input -------------------------------------------------------------------------
 */

/* "a\nb\npartial" then EOF: two lines, SN_EOF (the partial line dropped). A second connection
 * reads everything with read_some: the partial bytes are there, then SN_EOF. */
static int eof_session(struct sn_conn *c, void *arg)
{
    (void)arg;
    kit_session_start();
    struct sn_slice s;
    char out[256];
    size_t o = 0;
    int rc = sn_conn_read_line(c, 0, &s);
    if (rc == 0 && s.len == 4 && memcmp(s.data, "some", 4) == 0) {
        while ((rc = sn_conn_read_some(c, &s)) == 0 && o + s.len < sizeof out - 8)
            o += (size_t)snprintf(out + o, sizeof out - o, "[%.*s]", (int)s.len, s.data);
    } else {
        for (; rc == 0; rc = sn_conn_read_line(c, 0, &s))
            o += (size_t)snprintf(out + o, sizeof out - o, "<%.*s>", (int)s.len, s.data);
    }
    o += (size_t)snprintf(out + o, sizeof out - o, "%s\n", rc == SN_EOF ? "EOF" : "ERR");
    sn_conn_write(c, out, o);
    /* After the end, reads that cannot be served keep saying so. */
    if (sn_conn_read_line(c, 0, &s) != SN_EOF || sn_conn_read_exact(c, 1000, &s) != SN_EOF)
        atomic_fetch_add(&kc()->bad, 1);
    return kit_session_end(0);
}

static int eof_one(uint16_t port, const char *send, const char *expect)
{
    int fd = nu_connect(port);
    if (fd < 0)
        return 1;
    char *got;
    size_t n = kit_exchange(fd, send, strlen(send), 0, true, 20000, &got);
    int rc = n == strlen(expect) && memcmp(got, expect, n) == 0 ? 0 : 2;
    if (rc)
        fprintf(stderr, "sent %s, got %.*s\n", send, (int)n, got);
    free(got);
    close(fd);
    return rc;
}

static int eof_client(uint16_t port)
{
    return eof_one(port, "a\r\nb\npartial", "<a><b>EOF\n") ||
           eof_one(port, "some\ntail bytes", "[tail bytes]EOF\n");
}

Test(stream_fiber, end_of_input, .timeout = 60)
{
    kit_init_serve(eof_session, eof_client);
    cr_assert_eq(kit_run(), 0);
    cr_assert_eq(K.client_rc, 0);
    cr_assert_eq(KTOTAL(bad), 0, "reads after the end return SN_EOF");
}

/* ---- a slice stays valid while the buffer grows behind it ------------------------------------ */

#define HEAD_LEN 3000
#define BODY_LEN (200u * 1024u)

static int grow_session(struct sn_conn *c, void *arg)
{
    (void)arg;
    kit_session_start();
    struct sn_slice head, body;
    int rc = sn_conn_read_line(c, HEAD_LEN, &head);
    if (rc)
        return kit_session_end(rc);
    /* The client sends the body at once: while this fiber sleeps, libsn receives ahead and
     * the buffer grows (from 16 KiB), moving the bytes; `head` must still read the same. */
    uint64_t end = sn_now_ns() + 5000000000ull;
    while (c->stream->len - c->stream->pos < SN_STREAM_READ_AHEAD && sn_now_ns() < end)
        sn_fiber_sleep_ns(1000000);
    bool same = head.len == HEAD_LEN;
    for (size_t i = 0; i < head.len && same; i++)
        same = head.data[i] == (char)('A' + i % 23);
    kit_max(&kc()->user[1], c->stream->cap);
    if ((rc = sn_conn_read_exact(c, BODY_LEN, &body)))
        return kit_session_end(rc);
    char out[64];
    int n = snprintf(out, sizeof out, "%s %08x\n", same ? "SAME" : "MOVED",
                     checksum(body.data, BODY_LEN));
    sn_conn_write(c, out, (size_t)n);
    return kit_session_end(0);
}

static int grow_client(uint16_t port)
{
    char *in = malloc(HEAD_LEN + 1 + BODY_LEN), expect[64];
    for (size_t i = 0; i < HEAD_LEN; i++)
        in[i] = (char)('A' + i % 23);
    in[HEAD_LEN] = '\n';
    uint64_t seed = 77;
    for (size_t i = 0; i < BODY_LEN; i++)
        in[HEAD_LEN + 1 + i] = (char)nu_rand(&seed);
    snprintf(expect, sizeof expect, "SAME %08x\n", checksum(in + HEAD_LEN + 1, BODY_LEN));
    int fd = nu_connect(port), rc = 1;
    if (fd >= 0) {
        char *got;
        size_t n =
            kit_exchange(fd, in, HEAD_LEN + 1 + BODY_LEN, strlen(expect), false, 30000, &got);
        rc = n == strlen(expect) && memcmp(got, expect, n) == 0 ? 0 : 2;
        free(got);
        close(fd);
    }
    free(in);
    return rc;
}

Test(stream_fiber, slice_survives_buffer_growth, .timeout = 60)
{
    kit_init_serve(grow_session, grow_client);
    cr_assert_eq(kit_run(), 0);
    cr_assert_eq(K.client_rc, 0, "the line read before the growth is intact");
    cr_assert_gt(KTOTAL(user[1]), 16384, "the buffer did grow under the slice");
}

/* ---- contract errors ---------------------------------------------------------------------- */

static struct sn_conn *served_conn;
static int outside_rc, other_core_rc, plain_rc;

static void read_outside(void *arg)
{
    (void)arg;
    struct sn_slice s;
    outside_rc = sn_conn_read_some(served_conn, &s); /* a task, not a fiber */
}

static struct sn_future *read_elsewhere(void *arg)
{
    struct sn_slice s;
    other_core_rc = sn_conn_read_some(arg, &s);
    return SN_SUCCESS;
}

static int errors_session(struct sn_conn *c, void *arg)
{
    (void)arg;
    kit_session_start();
    served_conn = c;
    sn_later(read_outside, NULL);
    uint64_t v;
    sn_await(sn_submit_to((sn_core_id() + 1) % sn_core_count(), read_elsewhere, c), &v);
    struct sn_slice s;
    int rc = sn_conn_read_line(c, 0, &s);
    sn_conn_write(c, "bye\n", 4);
    return kit_session_end(rc);
}

static int errors_client(uint16_t port)
{
    int fd = nu_connect(port);
    if (fd < 0)
        return 1;
    char *got;
    size_t n = kit_exchange(fd, "x\n", 2, 4, false, 20000, &got);
    int rc = n == 4 && memcmp(got, "bye\n", 4) == 0 ? 0 : 2;
    free(got);
    close(fd);
    return rc;
}

static void plain_line(struct sn_conn *c, void *arg, const char *line, size_t len, int err)
{
    (void)arg, (void)line, (void)len, (void)err;
    struct sn_slice s;
    plain_rc = sn_conn_read_some(c, &s); /* not a stream connection */
    sn_conn_write(c, "bye\n", 4);
}

static const struct sn_conn_ops plain_ops = {.on_line = plain_line, .on_close = kit_close};

Test(stream_fiber, contract_errors, .timeout = 60)
{
    outside_rc = other_core_rc = plain_rc = 0;
    kit_init_serve(errors_session, errors_client);
    cr_assert_eq(kit_run(), 0);
    cr_assert_eq(K.client_rc, 0);
    cr_assert_eq(outside_rc, -EDEADLK, "outside a fiber a read would block the loop");
    cr_assert_eq(other_core_rc, -EXDEV);
    kit_init(&plain_ops, errors_client);
    cr_assert_eq(kit_run(), 0);
    cr_assert_eq(plain_rc, -EINVAL, "a connection not from sn_serve is not a stream");
}
