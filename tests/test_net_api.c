/*
 * sn_listen errors, SO_REUSEPORT port clashes, sn_connect through the reactor, UDP,
 * sn_addr_parse and -EBUSY on an SQE shortage, with 2 unpinned cores, loopback only (server
 * side: tests/net_harness.h).
 */
#include <criterion/criterion.h>

#include "net_harness.h"

/* ---- listen errors --------------------------------------------------------------------------- */

static int err_first, err_second, err_host;

static void record_host_err(void *arg, int err, uint64_t value)
{
    (void)arg, (void)value;
    err_host = err;
}

static struct sn_future *got_second(void *arg, int err, uint64_t value)
{
    err_second = err;
    if (!err) /* unexpected: close it too */
        sn_ignore(sn_listener_close((struct sn_listener *)(uintptr_t)value));
    return sn_listener_close(arg);
}

static struct sn_future *errs_first(void *arg, int err, uint64_t value)
{
    (void)arg;
    err_first = err;
    if (err)
        return sn_ready(1);
    struct sn_listener *l = (struct sn_listener *)(uintptr_t)value;
    /* The same port again without SO_REUSEPORT: the sockets are made at once, so it fails
     * at once with -EADDRINUSE. */
    struct sn_listen_config lc = {
        .port = sn_listener_port(l), .mode = SN_ACCEPT_ONE_CORE, .ops = &srv_ops};
    return sn_then_wrapped(sn_listen(&lc), got_second, l);
}

static struct sn_future *errs_main(void *arg)
{
    (void)arg;
    struct sn_listen_config bad = {.host = "not-an-address", .ops = &srv_ops};
    sn_done(sn_listen(&bad), record_host_err, NULL);
    struct sn_listen_config lc = {.mode = SN_ACCEPT_ONE_CORE, .ops = &srv_ops};
    return sn_then_wrapped(sn_listen(&lc), errs_first, NULL);
}

Test(net, listen_errors, .timeout = 30)
{
    memset(&H, 0, sizeof H);
    err_first = err_second = err_host = 0;
    struct sn_config cfg = test_config(2);
    cr_assert_eq(sn_run(&cfg, errs_main, NULL), 0);
    cr_assert_eq(err_first, 0);
    cr_assert_eq(err_second, -EADDRINUSE);
    cr_assert_eq(err_host, -EINVAL);
}

/* ---- a port in use by another socket group (finding 9) ------------------------------------ */

static int rp_second, rp_foreign, rp_again;
static uint16_t rp_port;
static int rp_foreign_fd = -1;

/* Another process's server: a listening SO_REUSEPORT socket of the same user. */
static int foreign_listener(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 16) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static struct sn_future *rp_reopened(void *arg, int err, uint64_t value)
{
    (void)arg;
    rp_again = err;
    if (err)
        return sn_ready(1);
    struct sn_listener *l = (struct sn_listener *)(uintptr_t)value;
    rp_again = sn_listener_port(l) == rp_port ? 0 : -1;
    return sn_listener_close(l);
}

static struct sn_future *rp_closed(void *arg, int err, uint64_t value)
{
    (void)arg, (void)err, (void)value;
    struct sn_listen_config lc = {.port = rp_port, .ops = &srv_ops};
    return sn_then_wrapped(sn_listen(&lc), rp_reopened, NULL);
}

static struct sn_future *rp_second_done(void *arg, int err, uint64_t value)
{
    rp_second = err;
    if (!err) /* unexpected: close it too */
        sn_ignore(sn_listener_close((struct sn_listener *)(uintptr_t)value));
    return sn_then_wrapped(sn_listener_close(arg), rp_closed, NULL);
}

static void rp_foreign_done(void *arg, int err, uint64_t value)
{
    (void)arg;
    rp_foreign = err;
    if (!err)
        sn_ignore(sn_listener_close((struct sn_listener *)(uintptr_t)value));
}

static struct sn_future *rp_first(void *arg, int err, uint64_t value)
{
    (void)arg;
    if (err)
        return sn_ready(1);
    struct sn_listener *l = (struct sn_listener *)(uintptr_t)value;
    rp_port = sn_listener_port(l);
    /* The same port again, both SO_REUSEPORT: a second server must not join the first. */
    struct sn_listen_config lc = {.port = rp_port, .ops = &srv_ops};
    return sn_then_wrapped(sn_listen(&lc), rp_second_done, l);
}

static struct sn_future *rp_main(void *arg)
{
    (void)arg;
    uint16_t fport = 0;
    rp_foreign_fd = foreign_listener(&fport);
    if (rp_foreign_fd >= 0) {
        struct sn_listen_config fc = {.port = fport, .ops = &srv_ops};
        sn_done(sn_listen(&fc), rp_foreign_done, NULL);
    }
    struct sn_listen_config lc = {.ops = &srv_ops}; /* port 0: every core gets the same */
    return sn_then_wrapped(sn_listen(&lc), rp_first, NULL);
}

Test(net, reuseport_port_in_use_fails, .timeout = 30)
{
    memset(&H, 0, sizeof H);
    rp_second = rp_foreign = rp_again = 99;
    struct sn_config cfg = test_config(2);
    cr_assert_eq(sn_run(&cfg, rp_main, NULL), 0);
    cr_assert_geq(rp_foreign_fd, 0);
    close(rp_foreign_fd);
    rp_foreign_fd = -1;
    cr_assert_eq(rp_second, -EADDRINUSE, "a second listener on the port: %d", rp_second);
    cr_assert_eq(rp_foreign, -EADDRINUSE, "a foreign SO_REUSEPORT listener: %d", rp_foreign);
    cr_assert_eq(rp_again, 0, "the port is free again once closed: %d", rp_again);
}

/* ---- outgoing connections through the reactor -------------------------------------------- */

struct cli {
    char got[64];
    size_t len;
    int closed_err;
    int closes;
    int refused_err;
    struct sn_promise *done;
    struct sn_listener *l;
};

static struct cli CL;

static size_t cli_data(struct sn_conn *c, void *arg, const char *data, size_t len)
{
    (void)arg;
    size_t n = len < sizeof CL.got - CL.len ? len : sizeof CL.got - CL.len;
    memcpy(CL.got + CL.len, data, n);
    CL.len += n;
    if (CL.len >= 8)
        sn_ignore(sn_conn_close(c));
    return len;
}

static void cli_close(struct sn_conn *c, void *arg, int err)
{
    (void)c, (void)arg;
    CL.closed_err = err;
    CL.closes++;
    sn_ignore(sn_listener_close(CL.l));
    sn_promise_set(CL.done, 0);
}

static const struct sn_conn_ops cli_ops = {.on_data = cli_data, .on_close = cli_close};

static struct sn_future *connected(void *arg, int err, uint64_t value)
{
    (void)arg;
    if (err) {
        sn_promise_fail(CL.done, err);
        return SN_SUCCESS;
    }
    struct sn_conn *c = (struct sn_conn *)(uintptr_t)value;
    if (sn_conn_core(c) != sn_core_id())
        sn_conn_write(c, "wrong core", 10);
    sn_conn_write(c, "ping", 4);
    sn_conn_write(c, "pong", 4);
    return SN_SUCCESS;
}

static struct sn_future *connect_on_core1(void *arg)
{
    struct sn_connect_config cc = {
        .port = (uint16_t)(uintptr_t)arg, .ops = &cli_ops, .timeout_ms = 5000};
    struct sn_future *f;
    CL.done = sn_promise_new(&f);
    sn_ignore(sn_then_wrapped(sn_connect(&cc), connected, NULL));
    return f;
}

static struct sn_future *refused_seen(void *arg, int err, uint64_t value)
{
    (void)arg, (void)value;
    CL.refused_err = err;
    return SN_SUCCESS;
}

static struct sn_future *after_listen(void *arg, int err, uint64_t value)
{
    (void)arg;
    if (err)
        return sn_failed(err);
    CL.l = (struct sn_listener *)(uintptr_t)value;
    uint16_t port = sn_listener_port(CL.l);
    return sn_submit_to(1, connect_on_core1, (void *)(uintptr_t)port);
}

static struct sn_future *refused_then_listen(void *arg, int err, uint64_t value)
{
    (void)arg, (void)err, (void)value;
    H.behave = ECHO;
    struct sn_listen_config lc = {.ops = &srv_ops, .on_accept = srv_accept};
    return sn_then_wrapped(sn_listen(&lc), after_listen, NULL);
}

/* A port bound on loopback but not listening: connecting to it is refused. (A fixed port such
 * as 1 may have a listener on a shared machine.) */
static int closed_port_fd = -1;

static uint16_t closed_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    closed_port_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (closed_port_fd < 0 || bind(closed_port_fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(closed_port_fd, (struct sockaddr *)&a, &len) < 0)
        return 1;
    return ntohs(a.sin_port);
}

static struct sn_future *connect_main(void *arg)
{
    (void)arg;
    struct sn_connect_config cc = {.port = closed_port(), .ops = &cli_ops};
    struct sn_future *f = sn_then_wrapped(sn_connect(&cc), refused_seen, NULL);
    return sn_then_wrapped(f, refused_then_listen, NULL);
}

Test(net, connect_through_reactor, .timeout = 30)
{
    memset(&H, 0, sizeof H);
    memset(&CL, 0, sizeof CL);
    struct sn_config cfg = test_config(2);
    int rc = sn_run(&cfg, connect_main, NULL);
    close(closed_port_fd);
    closed_port_fd = -1;
    cr_assert_eq(rc, 0);
    cr_assert_eq(CL.refused_err, -ECONNREFUSED);
    cr_assert_eq(CL.len, 8);
    cr_assert_arr_eq(CL.got, "pingpong", 8);
    cr_assert_eq(CL.closes, 1);
    cr_assert_eq(CL.closed_err, 0);
    cr_assert_eq(atomic_load(&H.rec[1].opened) + atomic_load(&H.rec[0].opened), 1);
}

/* A listener whose accept queue is full drops new SYNs, so a connect to it hangs: the
 * connect's timeout must end it with -ETIMEDOUT. */
static int full_fd = -1, fill_fd[3] = {-1, -1, -1}, timeout_err;

static struct sn_future *timeout_seen(void *arg, int err, uint64_t value)
{
    (void)arg;
    timeout_err = err;
    if (!err) /* unexpected: connected after all */
        sn_ignore(sn_conn_abort((struct sn_conn *)(uintptr_t)value));
    return SN_SUCCESS;
}

/* True once one of the three fill_fd connections completed its handshake. */
static bool one_connected(void *arg)
{
    const int *fds = arg;
    for (int i = 0; i < 3; i++) {
        struct pollfd p = {.fd = fds[i], .events = POLLOUT};
        int err = -1;
        socklen_t elen = sizeof err;
        if (poll(&p, 1, 0) == 1 && (p.revents & POLLOUT) &&
            getsockopt(fds[i], SOL_SOCKET, SO_ERROR, &err, &elen) == 0 && err == 0)
            return true;
    }
    return false;
}

static struct sn_future *timeout_main(void *arg)
{
    (void)arg;
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    full_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (bind(full_fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(full_fd, 0) < 0)
        return sn_failed(-errno);
    getsockname(full_fd, (struct sockaddr *)&a, &len);
    for (int i = 0; i < 3; i++) {
        fill_fd[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fill_fd[i], (struct sockaddr *)&a, sizeof a);
    }
    /* With a backlog of 0 the queue is full once one handshake completed; SYNs after it are
     * dropped, so the connect below can only time out. */
    if (!nu_wait_for(one_connected, fill_fd, 10000))
        return sn_failed(-EAGAIN);
    struct sn_connect_config cc = {.port = ntohs(a.sin_port), .timeout_ms = 200, .ops = &cli_ops};
    return sn_then_wrapped(sn_connect(&cc), timeout_seen, NULL);
}

Test(net, connect_timeout, .timeout = 30)
{
    memset(&CL, 0, sizeof CL);
    timeout_err = 0;
    struct sn_config cfg = test_config(1);
    int rc = sn_run(&cfg, timeout_main, NULL);
    for (int i = 0; i < 3; i++)
        close(fill_fd[i]);
    close(full_fd);
    cr_assert_eq(rc, 0);
    cr_assert_eq(timeout_err, -ETIMEDOUT, "got %d", timeout_err);
    cr_assert_eq(CL.closes, 0, "no callback for a failed connect");
}

/* ---- UDP ------------------------------------------------------------------------------------ */

#define UDP_N 50

struct udp_state {
    struct sn_udp *a; /* on core 0: the sender */
    uint16_t b_port;
    unsigned next, ok, bad, closes;
    char expect[2048];
    size_t expect_len;
    struct sn_promise *done;
};

static struct udp_state U;
static struct sn_udp *udp_b; /* on core 1: echoes datagrams back */

static void b_datagram(struct sn_udp *u, void *arg, const char *data, size_t len,
                       const struct sockaddr *from, socklen_t fromlen)
{
    (void)arg;
    sn_ignore(sn_udp_send(u, data, len, from, fromlen));
}

static void udp_closed(struct sn_udp *u, void *arg)
{
    (void)u, (void)arg;
    U.closes++; /* core 0 only: b's close is counted separately */
}

static void b_closed(struct sn_udp *u, void *arg)
{
    (void)u, (void)arg;
    udp_b = NULL;
}

static void send_next(void);

static void a_datagram(struct sn_udp *u, void *arg, const char *data, size_t len,
                       const struct sockaddr *from, socklen_t fromlen)
{
    (void)u, (void)arg, (void)from, (void)fromlen;
    if (len == U.expect_len && memcmp(data, U.expect, len) == 0)
        U.ok++;
    else
        U.bad++;
    send_next();
}

static struct sn_future *close_b(void *arg)
{
    (void)arg;
    /* The reactor may have stopped and closed it already (then b_closed cleared it). */
    if (udp_b)
        sn_ignore(sn_udp_close(udp_b));
    return SN_SUCCESS;
}

static void send_next(void)
{
    if (U.next == UDP_N) {
        sn_ignore(sn_udp_close(U.a));
        sn_ignore(sn_submit_to(1, close_b, NULL));
        sn_promise_set(U.done, 0);
        return;
    }
    uint64_t seed = U.next++;
    U.expect_len = 1 + nu_rand(&seed) % sizeof U.expect;
    nu_fill((uint8_t *)U.expect, U.expect_len, seed);
    struct sockaddr_storage to;
    socklen_t tolen;
    sn_addr_parse(NULL, U.b_port, &to, &tolen);
    sn_ignore(sn_udp_send(U.a, U.expect, U.expect_len, (struct sockaddr *)&to, tolen));
}

static struct sn_future *b_port(void *arg, uint64_t udp)
{
    (void)arg;
    udp_b = (struct sn_udp *)(uintptr_t)udp;
    return sn_ready(sn_udp_port(udp_b));
}

static struct sn_future *open_b(void *arg)
{
    (void)arg;
    struct sn_udp_config c = {.on_datagram = b_datagram, .on_close = b_closed};
    return sn_then(sn_udp_open(&c), b_port, NULL);
}

static struct sn_future *a_opened(void *arg, uint64_t udp)
{
    (void)arg;
    U.a = (struct sn_udp *)(uintptr_t)udp;
    struct sn_future *f;
    U.done = sn_promise_new(&f);
    send_next();
    return f;
}

static struct sn_future *b_opened(void *arg, uint64_t port)
{
    (void)arg;
    U.b_port = (uint16_t)port;
    struct sn_udp_config c = {.on_datagram = a_datagram, .on_close = udp_closed};
    return sn_then(sn_udp_open(&c), a_opened, NULL);
}

static struct sn_future *udp_main(void *arg)
{
    (void)arg;
    return sn_then(sn_submit_to(1, open_b, NULL), b_opened, NULL);
}

Test(net, udp_round_trip, .timeout = 30)
{
    memset(&U, 0, sizeof U);
    struct sn_config cfg = test_config(2);
    cr_assert_eq(sn_run(&cfg, udp_main, NULL), 0);
    cr_assert_eq(U.ok, UDP_N);
    cr_assert_eq(U.bad, 0);
    cr_assert_eq(U.closes, 1);
}

Test(net, addr_parse)
{
    struct sockaddr_storage a;
    socklen_t len;
    cr_assert_eq(sn_addr_parse(NULL, 80, &a, &len), 0);
    cr_assert_eq(a.ss_family, AF_INET);
    cr_assert_eq(ntohs(((struct sockaddr_in *)&a)->sin_port), 80);
    cr_assert_eq(((struct sockaddr_in *)&a)->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    cr_assert_eq(sn_addr_parse("::1", 1, &a, &len), 0);
    cr_assert_eq(a.ss_family, AF_INET6);
    cr_assert_eq(sn_addr_parse("*", 1, &a, &len), 0);
    cr_assert_eq(((struct sockaddr_in *)&a)->sin_addr.s_addr, htonl(INADDR_ANY));
    cr_assert_eq(sn_addr_parse("example.com", 1, &a, &len), -EINVAL);
}

/* Calls that report errors fail with -EBUSY when there is no SQE, and work again after. */
static int busy_udp, busy_udp_after, busy_connect;
static struct sn_udp *busy_u;

static void busy_connected(void *arg, int err, uint64_t value)
{
    (void)arg, (void)value;
    busy_connect = err;
}

static void busy_udp_sent(void *arg, int err, uint64_t value)
{
    *(int *)arg = err ? err : (int)value; /* bytes sent, or the error */
}

static struct sn_future *busy_opened(void *arg, uint64_t udp)
{
    (void)arg;
    busy_u = (struct sn_udp *)(uintptr_t)udp;
    struct sockaddr_storage to;
    socklen_t tolen;
    sn_addr_parse(NULL, sn_udp_port(busy_u), &to, &tolen);
    sn__sqe_fail_next = 1;
    sn_done(sn_udp_send(busy_u, "x", 1, (struct sockaddr *)&to, tolen), busy_udp_sent, &busy_udp);
    sn_done(sn_udp_send(busy_u, "y", 1, (struct sockaddr *)&to, tolen), busy_udp_sent,
            &busy_udp_after);
    struct sn_connect_config cc = {.port = closed_port(), .ops = &cli_ops};
    sn__sqe_fail_next = 1;
    sn_done(sn_connect(&cc), busy_connected, NULL);
    sn__sqe_fail_next = 1; /* the close's cancel of the receive waits for an SQE */
    sn_ignore(sn_udp_close(busy_u));
    return sn_ready(0);
}

static struct sn_future *busy_main(void *arg)
{
    (void)arg;
    struct sn_udp_config uc = {0};
    return sn_then(sn_udp_open(&uc), busy_opened, NULL);
}

Test(net, sqe_shortage_fails_calls_with_ebusy, .timeout = 30)
{
    busy_udp = busy_udp_after = busy_connect = 99;
    struct sn_config cfg = test_config(1);
    int rc = sn_run(&cfg, busy_main, NULL);
    close(closed_port_fd);
    closed_port_fd = -1;
    cr_assert_eq(rc, 0);
    cr_assert_eq(busy_udp, -EBUSY);
    cr_assert(busy_udp_after == 1 || busy_udp_after == -ECANCELED, "the next send went out (%d)",
              busy_udp_after);
    cr_assert_eq(busy_connect, -EBUSY);
}
