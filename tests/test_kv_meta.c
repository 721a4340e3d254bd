/*
 * sn-kv against the real thing: Debian's memcached 1.6.18 and sn-kv (2 cores, so keys live on
 * both and meta commands on the other core's keys take the cross-core path) run side by side
 * on free loopback ports with the same -m and -I, and must answer alike:
 *   - a table of meta and classic exchanges whose bytes were taken from memcached, checked
 *     against both servers, one at a time and pipelined, with keys on both cores;
 *   - quiet mode: the answers that q leaves, in request order across cores, up to an mn;
 *   - random streams of meta and classic commands, pipelined and mixed on two connections,
 *     compared byte for byte (tests/py/kv_diff.py; seeds SN_KV_DIFF_SEEDS, default 1-4,
 *     commands per seed SN_KV_DIFF_OPS, default 2000; a failure prints the seed to replay);
 *   - python3-pymemcache and python3-pylibmc through their ordinary APIs (tests/py/
 *     kv_clients.py), and a binary protocol client (pylibmc binary=True) that must fail at once
 *     against sn-kv and work against memcached (tests/py/kv_binary.py).
 * Every sn-kv run ends with SIGTERM and must exit 0 (under ASan: no leak).
 */
#include "kv_server_util.h"

#include <poll.h>

#define PYTHON    "/usr/bin/python3"
#define MEMCACHED "/usr/bin/memcached"

/* ---- the reference server ---------------------------------------------------------------- */

static pid_t mcd_pid;
static uint16_t mcd_port;

/* Starts memcached with sn-kv's limits on a free port; waits until it accepts. */
static void memcached_start(void)
{
    cr_assert_eq(access(MEMCACHED, X_OK), 0,
                 "memcached is installed (Debian memcached; make deps)");
    char port[8];
    for (int attempt = 0; attempt < 5; attempt++) {
        mcd_port = su_free_port();
        snprintf(port, sizeof port, "%u", mcd_port);
        char *argv[] = {"memcached", "-p", port, "-U", "0",  "-l",   "127.0.0.1",
                        "-m",        "64", "-I", "1m", "-u", "root", NULL};
        if (geteuid() != 0)
            argv[11] = NULL; /* -u only matters (and is only allowed) for root */
        mcd_pid = su_spawn(MEMCACHED, argv, true);
        cr_assert_gt(mcd_pid, 0);
        for (uint64_t end = nu_now_ms() + 10000; nu_now_ms() < end && su_alive(mcd_pid);) {
            int fd = nu_connect(mcd_port);
            if (fd >= 0) {
                close(fd);
                return;
            }
            poll(NULL, 0, 20);
        }
        su_wait_exit(mcd_pid, 1000); /* the port was taken meanwhile: try another */
    }
    cr_assert_fail("memcached did not start");
}

static void memcached_stop(void)
{
    kill(mcd_pid, SIGTERM);
    su_wait_exit(mcd_pid, 10000);
}

static void both_start(void)
{
    kvs_start(2, "jump", "-m", "64", "-I", "1m", NULL);
    memcached_start();
}

static void both_stop(void)
{
    memcached_stop();
    kvs_stop();
}

/* ---- running the Python parts -------------------------------------------------------------- */

/*
 * Runs tests/py/<script> with args (NULL-terminated) and the two servers' addresses, at most
 * limit_s seconds; returns its exit status (-1 when it had to be killed) and its output.
 */
static int run_py(const char *script, unsigned limit_s, struct dbuf *out, ...)
{
    cr_assert_eq(access(PYTHON, X_OK), 0, "python3 is installed (make deps)");
    char path[1024], ref[32], sut[32];
    snprintf(path, sizeof path, "%s/tests/py/%s", SN_SRC_DIR, script);
    snprintf(ref, sizeof ref, "127.0.0.1:%u", mcd_port);
    snprintf(sut, sizeof sut, "127.0.0.1:%u", srv.port);
    char *argv[24] = {PYTHON, path, "--ref", ref, "--sut", sut};
    int n = 6;
    va_list ap;
    va_start(ap, out);
    for (const char *a; n < 23 && (a = va_arg(ap, const char *));)
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = su_fork();
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        close(fds[1]);
        execv(PYTHON, argv);
        _exit(127);
    }
    close(fds[1]);
    uint64_t end = nu_now_ms() + (uint64_t)limit_s * 1000;
    char buf[4096];
    for (;;) {
        uint64_t now = nu_now_ms();
        struct pollfd p = {fds[0], POLLIN, 0};
        if (now >= end || poll(&p, 1, (int)(end - now)) <= 0)
            break;
        ssize_t r = read(fds[0], buf, sizeof buf);
        if (r <= 0)
            break;
        db_put(out, buf, (size_t)r);
    }
    close(fds[0]);
    if (!out->p)
        db_put(out, "", 0);
    int st = su_wait_exit(pid, nu_now_ms() < end ? (unsigned)(end - nu_now_ms()) + 1000 : 1000);
    return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Runs a script and asserts it ends with status 0; its output is logged either way. */
static void expect_py_ok(const char *script, unsigned limit_s, ...)
{
    struct dbuf out = {0};
    va_list ap;
    va_start(ap, limit_s);
    const char *a[8] = {0};
    for (int i = 0; i < 7 && (a[i] = va_arg(ap, const char *)); i++)
        ;
    va_end(ap);
    uint64_t t0 = nu_now_ms();
    int rc = run_py(script, limit_s, &out, a[0], a[1], a[2], a[3], a[4], a[5], a[6], NULL);
    cr_log_info("%s (%.1f s):\n%s", script, (double)(nu_now_ms() - t0) / 1000, out.p);
    cr_assert_eq(rc, 0, "%s failed (status %d); its output is above", script, rc);
    db_free(&out);
}

/* ---- a table of answers, taken from memcached 1.6.18 --------------------------------------- */

static const struct {
    const char *req, *want;
} golden[] = {
    {"ms a 2 T0 F5\r\nhi\r\n", "HD\r\n"},
    {"mg a s v f t k O9\r\n", "VA 2 s2 f5 t-1 ka O9\r\nhi\r\n"},
    {"mg a\r\nmg a q\r\nmg a v q\r\n", "HD\r\nHD\r\nVA 2\r\nhi\r\n"},
    {"mg zz\r\nmg zz v k O123\r\nmg zz q\r\n", "EN\r\nEN kzz O123\r\n"},
    {"ms a 2 MA\r\nzz\r\nms a 2 MP\r\nyy\r\nmg a v\r\n", "HD\r\nHD\r\nVA 6\r\nyyhizz\r\n"},
    {"ms nope 2 MA\r\nzz\r\nms nope 2 MR\r\nzz\r\nms nope 2 ME\r\nzz\r\nms nope 2 ME\r\nzz\r\n",
     "NS\r\nNS\r\nHD\r\nNS\r\n"},
    {"ms a 2 C1 c k\r\nhi\r\nms nokey 2 C1 O5\r\nhi\r\n", "EX c0 ka\r\nNF O5\r\n"},
    {"ms a 2 q\r\nhi\r\nms a 2 q MX\r\nhi\r\nms a 2 q\r\nhix\r\n",
     "CLIENT_ERROR invalid mode for ms M token\r\nCLIENT_ERROR bad data chunk\r\nERROR\r\n"},
    {"md a q\r\nmd a q\r\nmd a k O5\r\n", "NF\r\nNF ka O5\r\n"},
    {"ms s 2\r\nhi\r\nmd s I T30\r\nmg s v\r\nmg s v\r\n",
     "HD\r\nHD\r\nVA 2 X W\r\nhi\r\nVA 2 Z X\r\nhi\r\n"},
    /* TTLs are only shown by the command that sets them: a clock tick between two commands
     * would change what either server shows. */
    {"mg v1 N30 v t s\r\nmg v1 N30 v s\r\n", "VA 0 t30 s0 W\r\n\r\nVA 0 s0 Z\r\n\r\n"},
    {"ms r 1 T0\r\nx\r\nmg r t T50\r\nmg r T70 t\r\n", "HD\r\nHD t-1\r\nHD t70\r\n"},
    {"mg r R30\r\nmg r R200\r\nmg r R200\r\n", "HD\r\nHD W\r\nHD Z\r\n"},
    {"ma n\r\nma n N0 J10 v\r\nma n v D5 MD\r\nma n v M+ D90\r\nma n q\r\nma n v t k\r\n",
     "NF\r\nVA 2\r\n10\r\nVA 1\r\n5\r\nVA 2\r\n95\r\nVA 2 t-1 kn\r\n97\r\n"},
    {"set x 0 0 1\r\nx\r\nma x\r\nma x C1\r\n",
     "STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\nEX\r\n"},
    {"ms YWJj 2 b\r\nxy\r\nmg abc v k\r\nmg YWJj b k\r\n",
     "HD\r\nVA 2 kYWJj b\r\nxy\r\nHD kYWJj b\r\n"},
    {"mg Y!Q== b k\r\nmg YQ= b k\r\n", "EN kYQ== b\r\nCLIENT_ERROR error decoding key\r\n"},
    {"set h 0 0 1\r\n1\r\nincr h 1\r\nmg h h u\r\nget h\r\nmg h h u\r\n",
     "STORED\r\n2\r\nHD h0\r\nVALUE h 0 1\r\n2\r\nEND\r\nHD h1\r\n"},
    {"me nokey\r\nmn\r\nmn x\r\n", "EN\r\nMN\r\nMN\r\n"},
    {"mg\r\nmx a\r\nme\r\n", "ERROR\r\nERROR\r\nCLIENT_ERROR bad command line format\r\n"},
    {"mg a t t\r\nmg a Zz\r\nmg a Tx\r\nmg a M\r\nmg a Jx\r\nmg a Dx\r\n",
     "CLIENT_ERROR duplicate flag\r\nCLIENT_ERROR invalid flag\r\n"
     "CLIENT_ERROR bad token in command line format\r\n"
     "CLIENT_ERROR incorrect length for M token\r\n"
     "CLIENT_ERROR invalid numeric initial value\r\nCLIENT_ERROR invalid numeric delta value\r\n"},
    {"md a X\r\nma a Mx\r\nma a Dx\r\n",
     "CLIENT_ERROR invalid or duplicate flag\r\nCLIENT_ERROR invalid mode for ma M token\r\n"
     "CLIENT_ERROR invalid or duplicate flag\r\n"},
    {"mg a O123456789012345678901234567890123\r\n", "CLIENT_ERROR opaque token too long\r\n"},
    {"mg k a b c d e f g h i j k l m n o p q r s\r\n",
     "CLIENT_ERROR options flags are too long\r\n"},
    {"ms k 2 a b c d e f g h i j k l m n o p q\r\nhi\r\n",
     "CLIENT_ERROR options flags too long\r\nERROR\r\n"},
    {"set k 0 4294967295 1\r\nx\r\nget k\r\n", "STORED\r\nEND\r\n"},
};

/* Every exchange on one connection: one at a time, then all pipelined after a flush_all. */
static void golden_on(uint16_t port, const char *who)
{
    int fd = nu_connect(port);
    cr_assert_geq(fd, 0, "%s: connect", who);
    nu_timeout(fd, IO_MS);
    expect_str(fd, "flush_all\r\n", "OK\r\n");
    struct dbuf req = {0}, want = {0};
    db_printf(&req, "flush_all\r\n");
    db_printf(&want, "OK\r\n");
    for (size_t i = 0; i < sizeof golden / sizeof golden[0]; i++) {
        char what[160];
        snprintf(what, sizeof what, "%s: %.120s", who, golden[i].req);
        expect_exact(fd, golden[i].req, strlen(golden[i].req), golden[i].want,
                     strlen(golden[i].want), what);
        db_printf(&req, "%s", golden[i].req);
        db_printf(&want, "%s", golden[i].want);
    }
    char what[64];
    snprintf(what, sizeof what, "%s: pipelined", who);
    expect_exact(fd, req.p, req.len, want.p, want.len, what);
    db_free(&req);
    db_free(&want);
    close(fd);
}

Test(kv, meta_golden_answers_from_both_servers, .timeout = 120)
{
    both_start();
    /* The table's keys are spread over both of sn-kv's cores. */
    unsigned on[2] = {0, 0};
    const char *keys[] = {"a", "zz", "nope", "nokey", "s", "v1", "r", "n", "x", "abc", "h"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        on[owner(keys[i])]++;
    cr_assert(on[0] && on[1], "keys on both cores (%u, %u)", on[0], on[1]);
    golden_on(mcd_port, "memcached");
    golden_on(srv.port, "sn-kv");
    both_stop();
}

/* ---- quiet mode and mn, in order across cores ---------------------------------------------- */

Test(kv, meta_quiet_mode_keeps_order_across_cores, .timeout = 120)
{
    both_start();
    char keys[8][48];
    keys_on_every_core("q", 4, keys);
    struct dbuf req = {0};
    db_printf(&req, "flush_all\r\n");
    /* Hits on even keys only; then quiet gets of all (misses say nothing), quiet sets (say
     * nothing), quiet deletes of missing keys (say NF), each answer tagged with O. */
    for (int i = 0; i < 8; i += 2)
        db_printf(&req, "ms %s 1 q\r\n%d\r\n", keys[i], i);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 8; i++)
            db_printf(&req, "mg %s v q k O%d\r\n", keys[i], i);
        db_printf(&req, "mn\r\n");
        for (int i = 0; i < 8; i++)
            db_printf(&req, "md %s-missing q O%d\r\nms %s 1 q T0\r\n%d\r\n", keys[i], i, keys[i],
                      i);
        db_printf(&req, "mn\r\n");
    }
    struct dbuf want = {0};
    db_printf(&want, "OK\r\n");
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 8; i++)
            if (round > 0 || i % 2 == 0)
                db_printf(&want, "VA 1 k%s O%d\r\n%d\r\n", keys[i], i, i);
        db_printf(&want, "MN\r\n");
        for (int i = 0; i < 8; i++)
            db_printf(&want, "NF O%d\r\n", i);
        db_printf(&want, "MN\r\n");
    }
    uint16_t ports[2] = {mcd_port, srv.port};
    for (int s = 0; s < 2; s++) {
        int fd = nu_connect(ports[s]);
        cr_assert_geq(fd, 0);
        nu_timeout(fd, IO_MS);
        expect_exact(fd, req.p, req.len, want.p, want.len, s ? "sn-kv" : "memcached");
        close(fd);
    }
    db_free(&req);
    db_free(&want);
    both_stop();
}

/* ---- random streams, real clients, binary clients ------------------------------------------ */

Test(kv, meta_differential_random_streams, .timeout = 1800)
{
    const char *seeds = getenv("SN_KV_DIFF_SEEDS");
    const char *ops = getenv("SN_KV_DIFF_OPS");
    both_start();
    expect_py_ok("kv_diff.py", 1700, "--seeds", seeds ? seeds : "1-4", "--ops", ops ? ops : "2000",
                 NULL);
    both_stop();
}

Test(kv, pymemcache_and_pylibmc_get_memcached_answers, .timeout = 300)
{
    both_start();
    expect_py_ok("kv_clients.py", 240, "--rounds", "2", NULL);
    both_stop();
}

Test(kv, binary_protocol_clients_fail_at_once, .timeout = 120)
{
    both_start();
    expect_py_ok("kv_binary.py", 60, "--limit", "2", NULL);
    su_assert_serving(&srv.s, "binary clients");
    both_stop();
}
