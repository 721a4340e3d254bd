/*
 * The sn-echo binary end to end: started with fork/exec (--smp 2 --unpinned --port P),
 * driven by concurrent clients with random payloads up to 1 MiB that half-close and expect
 * the whole echo then EOF, stopped with SIGTERM, which must end it with exit code 0 within a
 * bound. Also its command line: --help, bad values, a port already taken.
 */
#include <criterion/criterion.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <sys/wait.h>

#include "net_util.h"
#include "reactor_util.h"

static char bin[PATH_MAX];

/* build/tests/test_echo -> build/bin/sn-echo */
static void find_bin(void)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    cr_assert_gt(n, 0);
    self[n] = '\0';
    snprintf(bin, sizeof bin, "%s/../bin/sn-echo", dirname(self));
    cr_assert_eq(access(bin, X_OK), 0, "%s is built", bin);
}

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

static pid_t spawn(char *const argv[])
{
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, STDOUT_FILENO);
        execv(bin, argv);
        _exit(127);
    }
    return pid;
}

/* Waits up to ms for the child to exit; its wait status, or -1 (then it is killed). */
static int wait_exit(pid_t pid, unsigned ms)
{
    int status;
    uint64_t end = nu_now_ms() + ms;
    while (nu_now_ms() < end) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return status;
        usleep(5000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

/* Starts sn-echo with the extra flag (or NULL) on a free port; waits until it accepts. */
static pid_t start_echo(const char *extra, uint16_t *port)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        *port = free_port();
        char p[16];
        snprintf(p, sizeof p, "%u", *port);
        char *argv[] = {"sn-echo", "--smp", "2", "--unpinned", "--port", p, (char *)extra, NULL};
        pid_t pid = spawn(argv);
        uint64_t end = nu_now_ms() + 10000;
        while (nu_now_ms() < end) {
            int status;
            if (waitpid(pid, &status, WNOHANG) == pid)
                break; /* the port was taken in between: try another */
            int fd = nu_connect(*port);
            if (fd >= 0) {
                close(fd);
                return pid;
            }
            usleep(5000);
        }
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    return -1;
}

static void drive_and_stop(const char *extra)
{
    find_bin();
    uint16_t port;
    pid_t pid = start_echo(extra, &port);
    cr_assert_gt(pid, 0, "sn-echo started");
    unsigned n = SCALE(12, 2);
    size_t maxlen = SN_TEST_SLOW ? 256 * 1024 : 1024 * 1024;
    struct nu_result res;
    nu_run_clients(port, n, maxlen, 1234, true, 0, 60000, &res);
    /* A second wave on fresh connections, with a few resets in it. */
    struct nu_result res2;
    nu_run_clients(port, n, maxlen, 99, true, 3, 60000, &res2);
    kill(pid, SIGTERM);
    int status = wait_exit(pid, 20000);
    cr_assert(!res.timed_out && !res2.timed_out, "clients finished in time");
    cr_assert_eq(res.ok, n, "%u/%u echoes whole and identical (bad %u)", res.ok, n, res.bad);
    cr_assert_eq(res2.ok + res2.rogues, n, "second wave: ok %u rogues %u bad %u", res2.ok,
                 res2.rogues, res2.bad);
    cr_assert_neq(status, -1, "sn-echo stopped within 20 s of SIGTERM");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit 0 after SIGTERM (status %d)",
              status);
}

Test(echo, reuseport_echo_half_close_sigterm, .timeout = 120)
{
    drive_and_stop(NULL);
}

Test(echo, one_acceptor_echo_sigterm, .timeout = 120)
{
    drive_and_stop("--one-acceptor");
}

static int run_to_exit(char *const argv[])
{
    pid_t pid = spawn(argv);
    int status = wait_exit(pid, 20000);
    return status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(echo, command_line, .timeout = 60)
{
    find_bin();
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
