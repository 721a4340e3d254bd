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

Test(net_again, eagain_sends_and_receives_lose_no_byte, .timeout = 120)
{
    kit_init_serve(again_session, flat_out_client);
    K.lc.limits.output_high = 32u * 1024u; /* pauses and resumes: receives armed again */
    cr_assert_eq(kit_run(), 0);
    cr_assert_eq(K.client_rc, 0, "4 MiB came back byte for byte (client rc %d)", K.client_rc);
    cr_assert_gt(KTOTAL(user[0]), 0, "sends ended with -EAGAIN and were made again");
    cr_assert_gt(KTOTAL(user[1]), 0, "receives ended with -EAGAIN and were armed again");
    cr_assert_eq(KTOTAL(opened), 1);
    cr_assert_eq(KTOTAL(close_err), 0, "no connection ended with an error");
    cr_assert(K.settled);
    cr_assert_eq(KTOTAL(lent1), 0, "every pin and lent output was released");
}
