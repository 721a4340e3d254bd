/*
 * The sn-kv binary end to end, like test_kv_server.c (fork/exec, loopback, SIGTERM, exit 0
 * required): memcached's exact errors, flush_all, stats, quit, -c, the metrics page, bad
 * command lines, `memccapable -a`, back-pressure towards a client that reads late, and
 * --idle-ms.
 */
#include "kv_server_util.h"

/* ---- errors, exactly as memcached 1.6 answers them ------------------------------------------ */

static const struct {
    const char *req, *want;
} errors[] = {
    {"bogus\r\n", "ERROR\r\n"},
    {"get\r\n", "ERROR\r\n"},
    {"GET k\r\n", "ERROR\r\n"},
    {"\r\n", "ERROR\r\n"},
    {"set k 0 0 abc\r\n", "CLIENT_ERROR bad command line format\r\n"},
    {"set k 0 0 -1\r\n", "CLIENT_ERROR bad command line format\r\n"},
    {"set k abc 0 1\r\nx\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
    {"set k 0 0 3\r\nabcd\r\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\n"},
    {"set k 0 0 1\r\n\r\n\r\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\n"},
    {"set k 0 0 3\r\nabc\r\n", "STORED\r\n"},
    {"incr k abc\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n"},
    {"incr k -1\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n"},
    {"incr k 1\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"},
    {"decr k 1\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"},
    {"incr nokey 1\r\n", "NOT_FOUND\r\n"},
    {"delete k 5\r\n", "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"},
    {"delete k 0\r\n", "DELETED\r\n"},
    {"delete k\r\n", "NOT_FOUND\r\n"},
    {"touch k abc\r\n", "CLIENT_ERROR invalid exptime argument\r\n"},
    {"gat abc k\r\n", "CLIENT_ERROR invalid exptime argument\r\n"},
    {"flush_all abc\r\n", "CLIENT_ERROR invalid exptime argument\r\n"},
    {"verbosity\r\n", "ERROR\r\n"},
    {"verbosity 1\r\n", "OK\r\n"},
    {"cas k 0 0 1\r\n", "ERROR\r\n"},
    {"gets\r\n", "ERROR\r\n"},
    {"gat\r\n", "ERROR\r\n"},
    {"gat 10\r\n", "END\r\n"},
    {"stats foo\r\n", "ERROR\r\n"},
    {"set n 0 0 2\r\n10\r\n", "STORED\r\n"},
    {"incr n 18446744073709551615\r\n", "9\r\n"},
    {"decr n 100\r\n", "0\r\n"},
    {"get n\r\n", "VALUE n 0 2\r\n0 \r\nEND\r\n"},
    {"set k 0 0 1 noreply\r\nx\r\n", ""},
    {"prepend k 0 0 1\r\ny\r\n", "STORED\r\n"},
    {"get k\r\n", "VALUE k 0 2\r\nyx\r\nEND\r\n"},
    {"append nokey 0 0 1\r\nx\r\n", "NOT_STORED\r\n"},
    {"add k 0 0 1\r\nz\r\n", "NOT_STORED\r\n"},
    {"replace zz 0 0 1\r\nz\r\n", "NOT_STORED\r\n"},
    {"cas k 0 0 1 999\r\nq\r\n", "EXISTS\r\n"},
    {"cas zz 0 0 1 1\r\nq\r\n", "NOT_FOUND\r\n"},
    {"touch k 10\r\n", "TOUCHED\r\n"},
    {"set neg 0 -1 1\r\nx\r\n", "STORED\r\n"},
    {"get neg\r\n", "END\r\n"},
    /* A deliberate difference (issue 6): control bytes in a key are refused. */
    {"get a\001b\r\n", "CLIENT_ERROR bad command line format\r\n"},
};

Test(kv, errors_exactly_as_memcached, .timeout = 120)
{
    kvs_start(2, "jump", NULL);
    int fd = kc_connect();
    /* One at a time... */
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
        expect_str(fd, errors[i].req, errors[i].want);
    /* ...and all in one pipeline, with keys owned by other cores now and then. */
    struct dbuf req = {0}, want = {0};
    db_printf(&req, "flush_all\r\n");
    db_printf(&want, "OK\r\n");
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++) {
        db_printf(&req, "%s", errors[i].req);
        db_printf(&want, "%s", errors[i].want);
    }
    expect_exact(fd, req.p, req.len, want.p, want.len, "errors pipelined");
    /* Keys of 250 bytes are fine, 251 are not. */
    char k250[251], line[400];
    memset(k250, 'x', 250);
    k250[250] = '\0';
    snprintf(line, sizeof line, "get %s\r\n", k250);
    expect_str(fd, line, "END\r\n");
    snprintf(line, sizeof line, "get %sy\r\n", k250);
    expect_str(fd, line, "CLIENT_ERROR bad command line format\r\n");
    snprintf(line, sizeof line, "set %sy 0 0 1\r\nx\r\n", k250);
    expect_str(fd, line, "CLIENT_ERROR bad command line format\r\nERROR\r\n");
    db_free(&req);
    db_free(&want);
    close(fd);
    kvs_stop();
}

/* ---- flush_all, stats, quit, -c, metrics ----------------------------------------------------- */

Test(kv, flush_all_every_core, .timeout = 120)
{
    kvs_start(4, "jump", NULL);
    enum { PER = 8 };
    char(*keys)[48] = calloc(4 * PER, sizeof *keys);
    keys_on_every_core("fl:", PER, keys);
    int a = kc_connect(), b = kc_connect();
    struct dbuf req = {0}, want = {0}, get = {0};
    db_printf(&get, "get");
    for (unsigned i = 0; i < 4 * PER; i++) {
        db_printf(&req, "set %s 0 0 1\r\nx\r\n", keys[i]);
        db_printf(&want, "STORED\r\n");
        db_printf(&get, " %s", keys[i]);
    }
    db_printf(&get, "\r\n");
    /* Sets, flush_all and a get in one pipeline: the get comes after the flush everywhere. */
    db_printf(&req, "flush_all\r\n");
    db_printf(&want, "OK\r\n");
    db_put(&req, get.p, get.len);
    db_printf(&want, "END\r\n");
    expect_exact(a, req.p, req.len, want.p, want.len, "sets, flush_all, get");
    /* Again, then the get from another connection once OK was seen. */
    req.len = want.len = 0;
    for (unsigned i = 0; i < 4 * PER; i++) {
        db_printf(&req, "set %s 0 0 1\r\nx\r\n", keys[i]);
        db_printf(&want, "STORED\r\n");
    }
    db_printf(&req, "flush_all noreply\r\nflush_all 0\r\n");
    db_printf(&want, "OK\r\n");
    expect_exact(a, req.p, req.len, want.p, want.len, "sets, flush_all");
    expect_exact(b, get.p, get.len, "END\r\n", 5, "get on another connection");
    char *st = get_stats();
    cr_expect_eq(stat_of(st, "curr_items"), 0);
    cr_expect_eq(stat_of(st, "cmd_flush"), 4 * 3, "every core counted 3 flushes");
    free(st);
    db_free(&req);
    db_free(&want);
    db_free(&get);
    free(keys);
    close(a);
    close(b);
    kvs_stop();
}

static void stats_case(unsigned ncores, const char *spec)
{
    kvs_start(ncores, spec, "-m", "32", NULL);
    enum { N = 200 };
    int fd = kc_connect();
    struct dbuf req = {0}, want = {0};
    unsigned per[MAXC] = {0};
    for (unsigned i = 0; i < N; i++) {
        char k[32];
        snprintf(k, sizeof k, "st:%u", i);
        per[owner(k)]++;
        db_printf(&req, "set %s 0 0 2\r\nab\r\nget %s nokey\r\n", k, k);
        db_printf(&want, "STORED\r\nVALUE %s 0 2\r\nab\r\nEND\r\n", k);
    }
    expect_exact(fd, req.p, req.len, want.p, want.len, "sets and gets");
    char *st = get_stats();
    cr_expect_eq(stat_of(st, "pid"), srv.s.pid);
    cr_expect_eq(stat_of(st, "threads"), ncores);
    cr_expect_eq(stat_of(st, "curr_items"), N);
    cr_expect_eq(stat_of(st, "total_items"), N);
    cr_expect_eq(stat_of(st, "cmd_set"), N);
    cr_expect_eq(stat_of(st, "cmd_get"), 2 * N);
    cr_expect_eq(stat_of(st, "get_hits"), N);
    cr_expect_eq(stat_of(st, "get_misses"), N);
    cr_expect_eq(stat_of(st, "limit_maxbytes"), 32ll << 20);
    cr_expect_geq(stat_of(st, "curr_connections"), 2);
    cr_expect_geq(stat_of(st, "total_connections"), 2);
    cr_expect_gt(stat_of(st, "bytes_read"), (long long)req.len - 1);
    cr_expect_geq(stat_of(st, "uptime"), 0);
    cr_expect_gt(stat_of(st, "time"), 1600000000);
    cr_expect(strstr(st, "STAT version 1.6.0-libsn\r\n") != NULL);
    cr_expect(strncmp(st, "STAT pid ", 9) == 0, "stats starts with pid, as memcached's");
    for (unsigned c = 0; c < ncores; c++) {
        char name[48];
        snprintf(name, sizeof name, "core:%u:curr_items", c);
        cr_expect_eq(stat_of(st, name), per[c], "core %u owns %u keys", c, per[c]);
        snprintf(name, sizeof name, "core:%u:limit_maxbytes", c);
        cr_expect_eq(stat_of(st, name), (32ll << 20) / ncores);
    }
    free(st);
    expect_str(fd, "stats reset\r\n", "RESET\r\n");
    st = get_stats();
    cr_expect_eq(stat_of(st, "cmd_get"), 0);
    cr_expect_eq(stat_of(st, "curr_items"), N, "reset keeps the gauges");
    free(st);
    db_free(&req);
    db_free(&want);
    close(fd);
    kvs_stop();
}

Test(kv, stats_smp2, .timeout = 120)
{
    stats_case(2, "jump");
}

Test(kv, stats_smp4_ketama, .timeout = 120)
{
    stats_case(4, "ketama-xxh3");
}

Test(kv, quit_and_eof_close_after_answers, .timeout = 60)
{
    kvs_start(2, "jump", NULL);
    char keys[2][48];
    keys_on_every_core("q:", 1, keys);
    int fd = kc_connect();
    char req[1024], want[1024];
    snprintf(req, sizeof req,
             "set %s 0 0 1\r\na\r\nset %s 0 0 1\r\nb\r\nget %s %s\r\nquit\r\nget %s\r\n", keys[0],
             keys[1], keys[0], keys[1], keys[0]);
    snprintf(want, sizeof want,
             "STORED\r\nSTORED\r\nVALUE %s 0 1\r\na\r\nVALUE %s 0 1\r\nb\r\nEND\r\n", keys[0],
             keys[1]);
    expect_str(fd, req, want);
    cr_expect(sees_eof(fd), "quit closes the connection (nothing after it is answered)");
    close(fd);
    /* A client that half-closes still gets every answer, then EOF. */
    fd = kc_connect();
    snprintf(req, sizeof req, "get %s %s\r\n", keys[1], keys[0]);
    nu_send_all(fd, req, strlen(req));
    shutdown(fd, SHUT_WR);
    char *a = read_until(fd, "END\r\n");
    snprintf(want, sizeof want, "VALUE %s 0 1\r\nb\r\nVALUE %s 0 1\r\na\r\nEND\r\n", keys[1],
             keys[0]);
    cr_expect_str_eq(a, want);
    free(a);
    cr_expect(sees_eof(fd));
    close(fd);
    kvs_stop();
}

Test(kv, connection_limit, .timeout = 60)
{
    kvs_start(2, "jump", "-c", "4", NULL);
    int fds[4];
    for (int i = 0; i < 4; i++) {
        fds[i] = kc_connect();
        expect_str(fds[i], "version\r\n", "VERSION 1.6.0-libsn\r\n");
    }
    int extra = kc_connect();
    char *a = read_until(extra, "\r\n");
    cr_expect_str_eq(a, "ERROR Too many open connections\r\n");
    free(a);
    cr_expect(sees_eof(extra));
    close(extra);
    char *st = NULL;
    close(fds[3]);
    /* The closed slot frees up (the close is noticed asynchronously: retry a while). */
    bool ok = false;
    for (int i = 0; i < 200 && !ok; i++) {
        int fd = kc_connect();
        nu_send_all(fd, "stats\r\n", 7);
        st = read_until(fd, "\r\n");
        ok = strncmp(st, "STAT pid", 8) == 0;
        free(st);
        close(fd);
        if (!ok)
            usleep(10000);
    }
    cr_expect(ok, "a connection is accepted again once one closed");
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    kvs_stop();
}

/*
 * The metrics listener starts after the main port answers, so a first connect can be
 * refused for a moment: retry for up to 5 s.
 */
static int connect_metrics(void)
{
    for (int i = 0; i < 500; i++) {
        int h = nu_connect(srv.mport);
        if (h >= 0)
            return h;
        usleep(10000);
    }
    return -1;
}

Test(kv, metrics_page, .timeout = 60)
{
    kvs_start(2, "jump", NULL);
    int fd = kc_connect();
    expect_str(fd, "set m 0 0 1\r\nx\r\nget m\r\n", "STORED\r\nVALUE m 0 1\r\nx\r\nEND\r\n");
    close(fd);
    int h = connect_metrics();
    cr_assert_geq(h, 0);
    nu_timeout(h, IO_MS);
    const char *get = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    nu_send_all(h, get, strlen(get));
    struct dbuf page = {0};
    char tmp[4096];
    ssize_t n;
    while ((n = recv(h, tmp, sizeof tmp, 0)) > 0)
        db_put(&page, tmp, (size_t)n);
    close(h);
    cr_assert_not_null(page.p);
    cr_expect(strncmp(page.p, "HTTP/1.1 200 OK\r\n", 17) == 0);
    cr_expect(strstr(page.p, "text/plain; version=0.0.4") != NULL);
    cr_expect(strstr(page.p, "# TYPE kv_cmd_get_total counter\n") != NULL);
    cr_expect(strstr(page.p, "kv_cmd_set_total{core=\"1\"}") != NULL);
    cr_expect(strstr(page.p, "kv_curr_connections{core=\"0\"}") != NULL);
    cr_expect(strstr(page.p, "sn_loops_total{core=\"1\"}") != NULL);
    cr_expect(strstr(page.p, "sn_wakeups_sent_total{core=\"1\"}") != NULL);
    long long items = 0;
    for (const char *p = page.p; (p = strstr(p, "\nkv_curr_items{")); p++)
        items += atoll(strchr(p, '}') + 1);
    cr_expect_eq(items, 1);
    db_free(&page);
    h = connect_metrics();
    nu_timeout(h, IO_MS);
    nu_send_all(h, "GET / HTTP/1.1\r\n\r\n", 18);
    char *a = read_until(h, "\r\n");
    cr_expect(strncmp(a, "HTTP/1.1 404 Not Found\r\n", 24) == 0, "%s", a);
    free(a);
    close(h);
    kvs_stop();
}

Test(kv, bad_command_lines, .timeout = 60)
{
    cr_expect_eq(run_to_exit("-m", "0", NULL), 2);
    cr_expect_eq(run_to_exit("-I", "12", NULL), 2);
    cr_expect_eq(run_to_exit("--port", "70000", NULL), 2);
    cr_expect_eq(run_to_exit("--bogus", NULL), 2);
    cr_expect_eq(run_to_exit("--idle-ms", "-1", NULL), 2);
    cr_expect_eq(run_to_exit("--idle-ms", "x", NULL), 2);
    cr_expect_eq(run_to_exit("--help", NULL), 0);
    /* Errors found once the cores are known: a start-up failure, exit 1. */
    cr_expect_eq(run_to_exit("--partitioner", "nonsense", NULL), 1);
    cr_expect_eq(run_to_exit("--partitioner", "round-robin", NULL), 1);
    cr_expect_eq(run_to_exit("-m", "1", "-I", "2m", NULL), 1);
}

/* ---- conformance: memccapable from libmemcached-tools ---------------------------------------- */

Test(kv, memccapable_ascii, .timeout = 180)
{
    cr_assert_eq(system("command -v memccapable >/dev/null 2>&1"), 0,
                 "memccapable is installed (Debian libmemcached-tools; make deps)");
    kvs_start(2, "jump", NULL);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "memccapable -a -h 127.0.0.1 -p %u -t %d 2>&1", srv.port,
             SN_TEST_SLOW ? 30 : 10);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char line[256];
    unsigned pass = 0, fail = 0;
    bool all = false;
    while (fgets(line, sizeof line, p)) {
        if (strstr(line, "[pass]"))
            pass++;
        else if (strstr(line, "[") && strstr(line, "]"))
            fail++, cr_log_info("memccapable: %s", line);
        if (strstr(line, "All tests passed"))
            all = true;
    }
    int rc = pclose(p);
    cr_expect_eq(fail, 0, "no memccapable test fails");
    cr_expect_geq(pass, 27, "every ASCII test ran (%u passed)", pass);
    cr_expect(all, "memccapable says all tests passed");
    cr_expect_eq(rc, 0, "memccapable exit status");
    kvs_stop();
}

/* ---- back-pressure: big answers to a client that reads late ------------------------------- */

/*
 * Gets of two 64 KiB values (one on each core, so both the local path and the answers coming
 * back from the other core are covered), pipelined far beyond the server's output limit
 * (1 MiB), and one multi-get line asking for many of them, sent before the client reads
 * anything. The server stops parsing while too much waits (between two keys of the
 * multi-get, too) and goes on as the client reads, so the answers arrive byte for byte, in
 * order, none lost or doubled.
 */
Test(kv, big_answers_to_a_client_that_reads_late, .timeout = 120)
{
    kvs_start(2, "jump", NULL);
    char keys[2][48];
    keys_on_every_core("late:", 1, keys);
    size_t vlen = 65536;
    char *vals[2];
    struct dbuf req = {0}, want = {0};
    for (int i = 0; i < 2; i++) {
        vals[i] = malloc(vlen);
        nu_fill((uint8_t *)vals[i], vlen, 77 + (uint64_t)i);
        db_printf(&req, "set %s %d 0 %zu\r\n", keys[i], i, vlen);
        db_put(&req, vals[i], vlen);
        db_printf(&req, "\r\n");
        db_printf(&want, "STORED\r\n");
    }
    int fd = kc_connect();
    expect_exact(fd, req.p, req.len, want.p, want.len, "two 64 KiB values stored");
    req.len = want.len = 0;
    unsigned pairs = SCALE(150, 3), multi = SCALE(120, 3);
    for (unsigned i = 0; i < 2 * pairs + multi; i++) {
        unsigned k = i % 2;
        if (i < 2 * pairs)
            db_printf(&req, "get %s\r\n", keys[k]);
        else if (i == 2 * pairs)
            db_printf(&req, "get %s", keys[k]);
        else
            db_printf(&req, " %s", keys[k]);
        db_printf(&want, "VALUE %s %u %zu\r\n", keys[k], k, vlen);
        db_put(&want, vals[k], vlen);
        db_printf(&want, "\r\n");
        if (i < 2 * pairs)
            db_printf(&want, "END\r\n");
    }
    db_printf(&req, "\r\nversion\r\n");
    db_printf(&want, "END\r\nVERSION 1.6.0-libsn\r\n");
    cr_assert_eq(nu_send_all(fd, req.p, req.len), 0);
    /* Not reading: the server answers until its output is full, then stops parsing. */
    cr_assert_gt(nu_wait_peer_stalled(fd, 100, IO_MS), 0, "the server answered, then stalled");
    expect_exact(fd, "", 0, want.p, want.len, "every answer, in order, after a pause");
    cr_log_info("%u gets and a %u-key get of 64 KiB values: %zu bytes of answers", 2 * pairs, multi,
                want.len);
    close(fd);
    for (int i = 0; i < 2; i++)
        free(vals[i]);
    db_free(&req);
    db_free(&want);
    kvs_stop();
}

/*
 * 2 MiB of pipelined gets (one key on each core) sent before the client reads anything: the
 * server stops parsing while its output is full and libsn may hold up to its whole receive
 * ring for the connection meanwhile; that must never cut the client off (-EMSGSIZE), see
 * KV_INPUT_SLACK in kv.h. Every get is answered.
 */
Test(kv, two_mib_pipelined_ahead_of_reading, .timeout = 120)
{
    kvs_start(2, "jump", NULL);
    char keys[2][48], unit[128], req[256];
    keys_on_every_core("ahead:", 1, keys);
    int fd = kc_connect();
    snprintf(req, sizeof req, "set %s 0 0 10\r\n0123456789\r\nset %s 0 0 10\r\n0123456789\r\n",
             keys[0], keys[1]);
    expect_str(fd, req, "STORED\r\nSTORED\r\n");
    int ul = snprintf(unit, sizeof unit, "get %s\r\nget %s\r\n", keys[0], keys[1]);
    size_t n = ((size_t)2 << 20) / (size_t)ul;
    size_t got = su_pipeline_ahead(fd, unit, (size_t)ul, n, "END\r\n", 2 * n, IO_MS);
    cr_assert_eq(got, 2 * n, "every pipelined get answered (%zu of %zu)", got, 2 * n);
    close(fd);
    kvs_stop();
}

/* ---- --idle-ms ---------------------------------------------------------------------------- */

/*
 * --idle-ms IDLE_MS: a connection that says nothing is closed; one that sends a command every
 * 100 ms is kept for twice that long. Without the option (the default, as memcached's
 * idle_timeout 0) an idle connection stays open. Under the sanitizers on a loaded machine a
 * process can stall for a few hundred ms, so the idle time there leaves a 10x margin over
 * the 100 ms the active client may be silent, not 3x.
 */
#define IDLE_MS (SN_TEST_SLOW ? 1000 : 300)

Test(kv, idle_timeout, .timeout = 60)
{
    char idle[16];
    snprintf(idle, sizeof idle, "%d", IDLE_MS);
    kvs_start(2, "jump", "--idle-ms", idle, NULL);
    int silent = kc_connect(), active = kc_connect();
    for (int tick = 0; tick < 2 * IDLE_MS / 100 + 2; tick++) {
        expect_str(active, "version\r\n", "VERSION 1.6.0-libsn\r\n");
        usleep(100 * 1000); /* the activity under test, not a wait */
    }
    cr_assert(sees_eof(silent), "a silent connection is closed after --idle-ms");
    expect_str(active, "version\r\n", "VERSION 1.6.0-libsn\r\n");
    close(silent);
    close(active);
    kvs_stop();
    sn_partition_destroy(srv.part);
    srv.part = NULL;

    kvs_start(2, "jump", NULL);
    int fd = kc_connect();
    usleep(2 * IDLE_MS * 1000); /* idle on purpose: what is tested is that nothing happens */
    char b;
    ssize_t got = recv(fd, &b, 1, MSG_DONTWAIT);
    int err = errno; /* read before any assertion can change it */
    cr_assert_eq(got, -1, "no idle timeout by default (recv gave %zd)", got);
    cr_assert_eq(err, EAGAIN, "no idle timeout by default: %s", strerror(err));
    expect_str(fd, "version\r\n", "VERSION 1.6.0-libsn\r\n");
    close(fd);
    kvs_stop();
}

/* ---- --lax-keys -------------------------------------------------------------------------- */

/*
 * --lax-keys takes keys with control bytes as memcached does (memcaslap's keys begin with 8
 * raw bytes): stored and fetched on every core, in one multi-get too; the length limit holds.
 */
Test(kv, lax_keys_with_control_bytes_on_every_core, .timeout = 60)
{
    kvs_start(2, "jump", "--lax-keys", NULL);
    int fd = kc_connect();
    enum { N = 16 };
    char keys[N][24];
    bool on[2] = {false, false};
    struct dbuf get = {0}, want = {0};
    db_printf(&get, "get");
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "\x10\x10\x10\x10\x10\x10\x10\x10k\x01%d", i);
        on[owner(keys[i])] = true;
        char line[64], val[16];
        snprintf(val, sizeof val, "v%02d", i);
        snprintf(line, sizeof line, "set %s 0 0 3\r\n%s\r\n", keys[i], val);
        expect_str(fd, line, "STORED\r\n");
        db_printf(&get, " %s", keys[i]);
        db_printf(&want, "VALUE %s 0 3\r\n%s\r\n", keys[i], val);
    }
    cr_assert(on[0] && on[1], "the keys must cover both cores");
    db_printf(&get, "\r\n");
    db_printf(&want, "END\r\n");
    expect_exact(fd, get.p, get.len, want.p, want.len, "multi-get of lax keys");
    char k251[260], line[300];
    memset(k251, '\x01', 251);
    k251[251] = '\0';
    snprintf(line, sizeof line, "get %s\r\n", k251);
    expect_str(fd, line, "CLIENT_ERROR bad command line format\r\n");
    db_free(&get);
    db_free(&want);
    close(fd);
    kvs_stop();
}
