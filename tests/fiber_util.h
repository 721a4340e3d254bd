/*
 * Helpers for the fiber tests: a step checker for fiber bodies (an assertion must not run
 * on a reactor thread, nor jump off a fiber's stack, so a body records its first failed
 * check and the test asserts on it after sn_run), and a child process with its stderr
 * captured (stack overflows, shutdown reports).
 */
#ifndef SN_TEST_FIBER_UTIL_H
#define SN_TEST_FIBER_UTIL_H

#include <sn.h>

#include <errno.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

/* The first check that failed in any fiber body: its line and what it saw. */
struct fiber_check {
    int line;
    long long seen;
};

/* In a fiber body returning int: records and fails the fiber when `cond` is false. */
#define FCHECK(fc, cond, seen_)                                                                    \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            if (!(fc)->line) {                                                                     \
                (fc)->line = __LINE__;                                                             \
                (fc)->seen = (long long)(seen_);                                                   \
            }                                                                                      \
            return -EPROTO;                                                                        \
        }                                                                                          \
    } while (0)

/*
 * Runs fn(arg) in a child process whose stderr goes to err[0..cap) (NUL-terminated, cut);
 * the child exits with fn's return value. Returns the wait status, or -1.
 */
static inline int run_in_child(int (*fn)(void *arg), void *arg, char *err, size_t cap)
{
    int pfd[2];
    if (pipe(pfd) < 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(pfd[1], STDERR_FILENO);
        close(pfd[0]);
        close(pfd[1]);
        _exit(fn(arg));
    }
    close(pfd[1]);
    size_t n = 0;
    char sink[256];
    ssize_t r;
    for (;;) {
        r = n + 1 < cap ? read(pfd[0], err + n, cap - 1 - n) : read(pfd[0], sink, sizeof sink);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (n + 1 < cap)
            n += (size_t)r;
    }
    err[n] = '\0';
    close(pfd[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return status;
}

#endif
