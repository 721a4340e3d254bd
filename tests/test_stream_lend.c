/*
 * sn_conn_read_some lends the receive buffer itself when nothing is buffered, and
 * sn_conn_write_input queues such a slice by reference: a fiber echo that copies nothing.
 * Checked on loopback (server: tests/kit_util.h): the lent path is taken (the slice is a
 * ring buffer, the output refers to it), and every byte comes back in order across many
 * reads, also when line and block reads (which copy the lent bytes into the stream's
 * buffer) alternate with read_some on the same connection.
 */
#include <criterion/criterion.h>

#include "stream_cases.h"

#define ECHO_LEN (4u * 1024u * 1024u)

/* Counts a slice that is a receive buffer (user[0]) and a write that refers to it (user[1]). */
static int echo_some(struct sn_conn *c, const struct sn_slice *in)
{
    bool lent = c->stream->run_out && c->stream->runs[0].lend;
    int rc = sn_conn_write_input(c, in->data, in->len);
    if (rc)
        return rc;
    if (lent) {
        atomic_fetch_add(&kc()->user[0], 1);
        if (c->otail && !c->otail->cap && c->otail->data == in->data)
            atomic_fetch_add(&kc()->user[1], 1);
        if (sn__net_lent_buffers() == 0)
            atomic_fetch_add(&kc()->bad, 1); /* a lent slice holds its buffer */
    }
    return 0;
}

static int echo_session(struct sn_conn *c, void *arg)
{
    (void)arg;
    kit_session_start();
    struct sn_slice in;
    int rc;
    while ((rc = sn_conn_read_some(c, &in)) == 0)
        if ((rc = echo_some(c, &in)))
            break;
    return kit_session_end(rc == SN_EOF ? 0 : rc);
}

static char *random_bytes(size_t n, uint64_t seed)
{
    char *p = malloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)nu_rand(&seed);
    return p;
}

static int echo_client(uint16_t port)
{
    char *in = random_bytes(ECHO_LEN, 99), *got = NULL;
    int fd = nu_connect(port), rc = 1;
    if (fd >= 0) {
        size_t n = kit_exchange(fd, in, ECHO_LEN, ECHO_LEN, true, 60000, &got);
        rc = n == ECHO_LEN && memcmp(got, in, n) == 0 ? 0 : 2;
        free(got);
        close(fd);
    }
    free(in);
    return rc;
}

Test(stream_lend, echo_lends_the_receive_buffer_and_keeps_every_byte, .timeout = 120)
{
    kit_init_serve(echo_session, echo_client);
    cr_assert_eq(kit_run(), 0);
    cr_assert_eq(K.client_rc, 0, "4 MiB came back byte for byte");
    cr_assert_gt(KTOTAL(user[0]), 10, "read_some handed out receive buffers");
    cr_assert_gt(KTOTAL(user[1]), 10, "write_input queued them by reference");
    cr_assert_eq(KTOTAL(bad), 0);
    cr_assert(K.settled);
    cr_assert_eq(KTOTAL(lent1), 0, "every pin and lent output was released");
}

/* ---- lent input, then a line or block read on the same connection -------------------------- */

/* "<n>\n" then n bytes echoed through read_some, then "x<n>\n" and n bytes read whole. */
#define MIX_ROUNDS 24
#define MIX_LEN    (96u * 1024u)

static int mix_session(struct sn_conn *c, void *arg)
{
    (void)arg;
    kit_session_start();
    struct sn_slice line, in;
    char buf[32];
    int rc;
    while ((rc = sn_conn_read_line(c, 16, &line)) == 0) {
        snprintf(buf, sizeof buf, "%.*s", (int)line.len, line.data);
        bool exact = buf[0] == 'x';
        size_t n = strtoul(buf + exact, NULL, 10);
        if (exact) {
            if ((rc = sn_conn_read_exact(c, n, &in)))
                break;
            sn_conn_write(c, in.data, in.len);
            continue;
        }
        while (n && (rc = sn_conn_read_some(c, &in)) == 0) {
            if (in.len > n)
                return kit_session_end(-EPROTO); /* the client waits for the echo */
            if ((rc = echo_some(c, &in)))
                break;
            n -= in.len;
        }
        if (rc)
            break;
    }
    return kit_session_end(rc == SN_EOF ? 0 : rc);
}

/* Sends msg[0..len) and checks that want[0..n) comes back; 0 or 1. */
static int mix_exchange(int fd, const char *msg, size_t len, const char *want, size_t n)
{
    char *got = NULL;
    size_t m = kit_exchange(fd, msg, len, n, false, 30000, &got);
    int rc = m == n && memcmp(got, want, n) == 0 ? 0 : 1;
    free(got);
    return rc;
}

/* Each message goes in two parts: the header with the first FIRST_LEN bytes, and the rest
 * once they came back, so the rest arrives while the fiber's read_some has nothing buffered
 * (lent then, whatever the timing); every third message is read whole (read_exact). */
#define FIRST_LEN 4096u

static int mix_client(uint16_t port)
{
    int fd = nu_connect(port), rc = 0;
    if (fd < 0)
        return 1;
    for (unsigned i = 0; i < MIX_ROUNDS && !rc; i++) {
        size_t n = MIX_LEN + i * 977, h;
        char *msg = malloc(n + 32);
        bool exact = i % 3 == 2;
        h = (size_t)sprintf(msg, "%s%zu\n", exact ? "x" : "", n);
        uint64_t seed = i + 1;
        for (size_t k = 0; k < n; k++)
            msg[h + k] = (char)nu_rand(&seed);
        if (exact)
            rc = mix_exchange(fd, msg, h + n, msg + h, n);
        else
            rc = mix_exchange(fd, msg, h + FIRST_LEN, msg + h, FIRST_LEN) ||
                 mix_exchange(fd, msg + h + FIRST_LEN, n - FIRST_LEN, msg + h + FIRST_LEN,
                              n - FIRST_LEN);
        rc = rc ? 2 + (int)i : 0;
        free(msg);
    }
    close(fd);
    return rc;
}

Test(stream_lend, lent_input_then_line_and_block_reads, .timeout = 120)
{
    kit_init_serve(mix_session, mix_client);
    cr_assert_eq(kit_run(), 0);
    cr_assert_eq(K.client_rc, 0, "every message came back whole, in order");
    cr_assert_gt(KTOTAL(user[0]), 0, "the second parts were lent");
    cr_assert_eq(KTOTAL(bad), 0);
    cr_assert_eq(KTOTAL(close_err), 0);
}
