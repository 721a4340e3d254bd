/*
 * The sn-echo binary end to end: started with fork/exec (--smp 2 --unpinned --port P),
 * driven by concurrent clients with random payloads up to 1 MiB that half-close and expect
 * the whole echo then EOF, stopped with SIGTERM, which must end it with exit code 0 within a
 * bound. Also its command line: --help, bad values, a port already taken.
 */
#include "reactor_util.h"
#include "support/server_proc.h"

static void drive_and_stop(const char *extra)
{
    struct su_server s;
    su_start(&s, "echo", (const char *const[]){extra, NULL});
    uint16_t port = s.port;
    unsigned n = SCALE(12, 2);
    size_t maxlen = SN_TEST_SLOW ? 256 * 1024 : 1024 * 1024;
    struct nu_result res;
    nu_run_clients(port, n, maxlen, 1234, true, 0, 60000, &res);
    /* A second wave on fresh connections, with a few resets in it. */
    struct nu_result res2;
    nu_run_clients(port, n, maxlen, 99, true, 3, 60000, &res2);
    int status = su_stop(&s, 20000, NULL);
    cr_assert(!res.timed_out && !res2.timed_out, "clients finished in time");
    cr_assert_eq(res.ok, n, "%u/%u echoes whole and identical (bad %u)", res.ok, n, res.bad);
    cr_assert_eq(res2.ok + res2.rogues, n, "second wave: ok %u rogues %u bad %u", res2.ok,
                 res2.rogues, res2.bad);
    cr_assert_neq(status, -1, "sn-echo stopped within 20 s of SIGTERM");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit 0 after SIGTERM (status %d)",
              status);
}

Test(echo, reuseport_echo_half_close_sigterm, .timeout = 120, .fini = su_reap_all)
{
    drive_and_stop(NULL);
}

Test(echo, one_acceptor_echo_sigterm, .timeout = 120, .fini = su_reap_all)
{
    drive_and_stop("--one-acceptor");
}

static int run_to_exit(char *const argv[])
{
    return su_run_to_exit("echo", argv, false);
}

Test(echo, command_line, .timeout = 60, .fini = su_reap_all)
{
    char *help[] = {"sn-echo", "--help", NULL};
    cr_assert_eq(run_to_exit(help), 0);
    char *bad_port[] = {"sn-echo", "--port", "70000", NULL};
    cr_assert_eq(run_to_exit(bad_port), 2);
    char *bad_host[] = {"sn-echo", "--listen", "nowhere", NULL};
    cr_assert_eq(run_to_exit(bad_host), 2);
    char *extra[] = {"sn-echo", "surprise", NULL};
    cr_assert_eq(run_to_exit(extra), 2);

    /* A port held by a plain listener (no SO_REUSEPORT): sn-echo cannot listen, exits 1. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(fd, 1), 0);
    getsockname(fd, (struct sockaddr *)&a, &len);
    char p[16];
    snprintf(p, sizeof p, "%u", ntohs(a.sin_port));
    char *taken[] = {"sn-echo", "--smp", "2", "--unpinned", "--port", p, NULL};
    int rc = run_to_exit(taken);
    close(fd);
    cr_assert_eq(rc, 1, "a taken port ends sn-echo with 1");
}
