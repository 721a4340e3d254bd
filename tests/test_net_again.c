/*
 * Sends and receives that the kernel ends with -EAGAIN (reactor/net_send.c, net_recv.c).
 *
 * Was a data-loss bug (faults::flood_echo_never_reading failed 2-5 times in 60): io_uring
 * waits for a full socket in an async poll it re-arms at most 128 times; past that an io-wq
 * worker tries the O_NONBLOCK socket once and the send completes with -EAGAIN, nothing sent.
 * libsn took that for a failed connection: it closed it and dropped the unsent output (the
 * client got a FIN with ~1 MB missing) or, with input still unread, the close reset it. Now
 * the output stays and goes again with the next flush, and a receive ending so is armed
 * again.
 *
 * The kernel's condition cannot be made on demand, so the test makes the same completions:
 * sn__net_inject_eagain turns the core's next sends and receive arms into NOPs that complete
 * with -EAGAIN. An sn-echo-like fiber (read_some + write_input, lending) injects them every
 * few reads, with output_high tiny so that reading pauses and resumes (receives are armed
 * again) all along, while the client sends 4 MiB flat out and reads it back concurrently.
 * Asserts: every byte comes back, in order; both kinds were injected and taken as "again"
 * (counts send_again, recv_again); no connection ended with an error; nothing stays lent.
 * plain_recv_eagain_loses_no_byte does the same on the plain-receive fallback.
 *
 * Repeated -EAGAINs (reactor/net_again.c): repeated_send_eagain_backs_off and
 * repeated_recv_eagain_backs_off make a run of them in a row and assert that the retries
 * waited the back-offs (the run takes at least their sum; without them it took well under a
 * millisecond, a retry per loop turn) and that nothing was lost or reordered.
 */
#include <criterion/criterion.h>

#include "kit_util.h"

#define ECHO_LEN (4u * 1024u * 1024u)
#define PIECE    (16u * 1024u)

static char *random_bytes(size_t n, uint64_t seed)
{
    char *p = malloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)nu_rand(&seed);
    return p;
}

/* user[0]: sends taken as "again"; user[1]: receives taken as "again" (the core's counts at
 * the session's end). */
static int again_session(struct sn_conn *c, void *arg)
{
    (void)arg;
    kit_session_start();
    struct sn_slice in;
    int rc;
    for (unsigned i = 0; (rc = sn_conn_read_some(c, &in)) == 0; i++) {
        if (i % 4 == 0)
            sn__net_inject_eagain(1, 1);
        if ((rc = sn_conn_write_input(c, in.data, in.len)) < 0)
            break;
    }
    sn__net_inject_eagain(0, 0);
    atomic_store(&kc()->user[2], sn__conn_uses_bufring(c));
    struct sn__net_counts k = sn__net_counts();
    kit_max(&kc()->user[0], k.send_again);
    kit_max(&kc()->user[1], k.recv_again);
    return kit_session_end(rc == SN_EOF ? 0 : rc);
}

/* Sends in[0..n) flat out while reading what comes back, half-closes, reads to the end;
 * 0, 2 (cut or different) or 3 (stuck). */
static int flat_out_client(uint16_t port)
{
    char *in = random_bytes(ECHO_LEN, 11), *got = malloc(ECHO_LEN + 1);
    int fd = nu_connect(port);
    size_t sent = 0, have = 0;
    bool eof = fd < 0;
    uint64_t end = nu_now_ms() + 60000;
    while (!eof && nu_now_ms() < end) {
        struct pollfd pf = {.fd = fd, .events = POLLIN | (sent < ECHO_LEN ? POLLOUT : 0)};
        if (poll(&pf, 1, 100) < 0 && errno != EINTR)
            break;
        if ((pf.revents & POLLOUT) && sent < ECHO_LEN) {
            size_t k = ECHO_LEN - sent < PIECE ? ECHO_LEN - sent : PIECE;
            ssize_t w = send(fd, in + sent, k, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0 && (sent += (size_t)w) == ECHO_LEN)
                shutdown(fd, SHUT_WR);
        }
        if (pf.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = recv(fd, got + have, ECHO_LEN + 1 - have, MSG_DONTWAIT);
            if (r > 0)
                have += (size_t)r;
            else if (r == 0 || errno != EAGAIN)
                eof = true;
        }
    }
    int rc = !eof ? 3 : have == ECHO_LEN && memcmp(got, in, ECHO_LEN) == 0 ? 0 : 2;
    if (rc)
        fprintf(stderr, "net_again: %zu of %u bytes sent, %zu came back\n", sent, ECHO_LEN, have);
    if (fd >= 0)
        close(fd);
    free(in);
    free(got);
    return rc;
}

/* The 4 MiB echo with -EAGAINs throughout, on the ring's multishot receive or on plain ones. */
static void echo_with_eagains(bool plain)
{
    kit_init_serve(again_session, flat_out_client);
    /* Every echo of 1 KiB or more pauses reading until its send completed, so receives are
     * armed again throughout, whatever the machine's load (at 32 KiB a fast client kept the
     * backlog under it, no receive was armed again and the faked -EAGAINs went unused). */
    K.lc.limits.output_high = 1024u;
    K.lc.limits.plain_recv = plain;
    cr_assert_eq(kit_run(), 0);
    cr_assert_eq(K.client_rc, 0, "4 MiB came back byte for byte (client rc %d)", K.client_rc);
    cr_assert_gt(KTOTAL(user[0]), 0, "sends ended with -EAGAIN and were made again");
    cr_assert_gt(KTOTAL(user[1]), 0, "receives ended with -EAGAIN and were armed again");
    cr_assert_eq(KTOTAL(opened), 1);
    cr_assert_eq(KTOTAL(close_err), 0, "no connection ended with an error");
    cr_assert(K.settled);
    cr_assert_eq(KTOTAL(lent1), 0, "every pin and lent output was released");
    cr_assert_eq(KTOTAL(user[2]), plain ? 0 : 1, "the receive was the one asked for");
}

Test(net_again, eagain_sends_and_receives_lose_no_byte, .timeout = 120)
{
    echo_with_eagains(false);
}

/* The same through the plain-receive fallback (one recv at a time into the connection's own
 * buffer, re-armed after each): every -EAGAIN there re-arms it too. */
Test(net_again, plain_recv_eagain_loses_no_byte, .timeout = 120)
{
    echo_with_eagains(true);
}

/* ---- no spin when -EAGAIN repeats (reactor/net_again.c) ----------------------------------- */

#define BLOCK      (1u << 20)
#define AGAIN_FREE 2u /* SN__NET_AGAIN_FREE: retried at once, polling first */
#define SEND_FAILS 10u
#define RECV_FAILS 8u

/* The least time `fails` consecutive -EAGAINs take: the back-offs after the free ones, 1 ms
 * doubling up to 32 ms (io_uring timeouts, on CLOCK_MONOTONIC, never end early). */
static uint64_t least_backoff_ms(unsigned fails)
{
    uint64_t ms = 0;
    for (unsigned n = AGAIN_FREE + 1; n <= fails; n++)
        ms += 1u << (n - AGAIN_FREE - 1 < 5 ? n - AGAIN_FREE - 1 : 5);
    return ms;
}

/* Stores what one -EAGAIN episode did: user[0] its ms, user[1] the -EAGAINs taken as "again"
 * (send or receive), user[3] the back-offs started. */
static void note_episode(uint64_t t0_ms, const struct sn__net_counts *k0, bool send)
{
    struct sn__net_counts k = sn__net_counts();
    atomic_store(&kc()->user[0], nu_now_ms() - t0_ms);
    atomic_store(&kc()->user[1],
                 send ? k.send_again - k0->send_again : k.recv_again - k0->recv_again);
    atomic_store(&kc()->user[3], k.again_waits - k0->again_waits);
}

/* Reads a byte, then sends BLOCK bytes while the core's next SEND_FAILS sends end with
 * -EAGAIN; waits until they are all handed to the kernel. */
static int backoff_send_session(struct sn_conn *c, void *arg)
{
    (void)arg;
    kit_session_start();
    struct sn_slice in;
    int rc = sn_conn_read_some(c, &in);
    if (rc == 0) {
        char *out = random_bytes(BLOCK, 5);
        struct sn__net_counts k0 = sn__net_counts();
        uint64_t t0 = nu_now_ms();
        sn__net_inject_eagain(SEND_FAILS, 0);
        rc = sn_conn_write(c, out, BLOCK);
        free(out);
        if (rc == 0)
            rc = sn_await(sn_conn_flush(c), NULL);
        note_episode(t0, &k0, true);
    }
    return kit_session_end(rc);
}

/* Sends a byte, reads BLOCK bytes and the end; 0 when they are the server's, in order. */
static int block_client(uint16_t port)
{
    int fd = nu_connect(port);
    if (fd < 0 || send(fd, "g", 1, MSG_NOSIGNAL) != 1)
        return 1;
    char *got;
    size_t n = kit_read_all(fd, &got);
    char *want = random_bytes(BLOCK, 5);
    int rc = n == BLOCK && memcmp(got, want, BLOCK) == 0 ? 0 : 2;
    if (rc)
        fprintf(stderr, "net_again: %zu of %u bytes came\n", n, BLOCK);
    free(got);
    free(want);
    close(fd);
    return rc;
}

/*
 * Sends that keep ending with -EAGAIN (a socket writable by poll that takes nothing, as under
 * TCP memory pressure) are made again after a growing back-off, not at every loop turn (they
 * were: the 10 took well under a millisecond), and the output leaves whole and in order.
 */
Test(net_again, repeated_send_eagain_backs_off, .timeout = 60)
{
    kit_init_serve(backoff_send_session, block_client);
    cr_assert_eq(kit_run(), 0);
    cr_assert_eq(K.client_rc, 0, "1 MiB came whole and in order (client rc %d)", K.client_rc);
    cr_assert_eq(KTOTAL(user[1]), SEND_FAILS, "every failed send was made again");
    cr_assert_geq(KTOTAL(user[0]), least_backoff_ms(SEND_FAILS), "the retries waited (%llu ms)",
                  (unsigned long long)KTOTAL(user[0]));
    cr_assert_eq(KTOTAL(user[3]), SEND_FAILS - AGAIN_FREE, "a back-off after each non-free one");
    cr_assert_eq(KTOTAL(close_err), 0);
    cr_assert(K.settled);
}

/* Reads "a"; the core's next RECV_FAILS receive arms end with -EAGAIN; answers "1", reads
 * "b" (it comes on the receive armed before), answers "2", reads "c" (behind the failures). */
static int backoff_recv_session(struct sn_conn *c, void *arg)
{
    (void)arg;
    kit_session_start();
    struct sn_slice in;
    int rc = sn_conn_read_some(c, &in);
    if (rc == 0) {
        struct sn__net_counts k0 = sn__net_counts();
        uint64_t t0 = nu_now_ms();
        sn__net_inject_eagain(0, RECV_FAILS);
        if ((rc = sn_conn_write(c, "1", 1)) == 0 && (rc = sn_conn_read_some(c, &in)) == 0 &&
            (rc = sn_conn_write(c, "2", 1)) == 0 && (rc = sn_conn_read_some(c, &in)) == 0)
            rc = in.len == 1 && in.data[0] == 'c' ? 0 : -EPROTO;
        note_episode(t0, &k0, false);
    }
    return kit_session_end(rc);
}

/* Sends "a", waits for "1", sends "b", waits for "2", sends "c", waits for the end. */
static int step_client(uint16_t port)
{
    int fd = nu_connect(port);
    char b[2];
    int rc = fd < 0 || send(fd, "a", 1, MSG_NOSIGNAL) != 1 || recv(fd, b, 1, 0) != 1 ||
             send(fd, "b", 1, MSG_NOSIGNAL) != 1 || recv(fd, b + 1, 1, 0) != 1 ||
             send(fd, "c", 1, MSG_NOSIGNAL) != 1 || recv(fd, b, 1, 0) != 0 ||
             memcmp(b, "12", 2) != 0;
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Receives that keep ending with -EAGAIN are armed again after the same back-off, and the
 * byte that comes meanwhile is not lost (plain receives: each one is armed anew). */
Test(net_again, repeated_recv_eagain_backs_off, .timeout = 60)
{
    kit_init_serve(backoff_recv_session, step_client);
    K.lc.limits.plain_recv = true;
    cr_assert_eq(kit_run(), 0);
    cr_assert_eq(K.client_rc, 0, "every answer came (client rc %d)", K.client_rc);
    cr_assert_eq(KTOTAL(close_err), 0, "\"c\" was read after the failed receives");
    cr_assert_eq(KTOTAL(user[1]), RECV_FAILS, "every failed receive was armed again");
    cr_assert_geq(KTOTAL(user[0]), least_backoff_ms(RECV_FAILS), "the re-arms waited (%llu ms)",
                  (unsigned long long)KTOTAL(user[0]));
    cr_assert_eq(KTOTAL(user[3]), RECV_FAILS - AGAIN_FREE, "a back-off after each non-free one");
    cr_assert(K.settled);
}
