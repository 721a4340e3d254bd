/*
 * Contract violations abort (include/sn/future.h): a test runs the violating call in a child
 * process and checks that the child died of SIGABRT after printing the expected message.
 * The child is forked by the test itself, so this works the same under Criterion (which runs
 * each test in its own process) and under the TSan build's shim (one process for all tests,
 * where Criterion's .signal is not available). Call it only while the test has no threads of
 * its own running.
 */
#ifndef SN_TESTS_ABORT_UTIL_H
#define SN_TESTS_ABORT_UTIL_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * Runs fn(arg) in a child with stderr captured. True when the child was killed by SIGABRT
 * and its stderr contains `want`; otherwise prints what happened and returns false.
 */
static inline bool au_aborts_with(void (*fn)(void *arg), void *arg, const char *want)
{
    int fds[2];
    if (pipe(fds) != 0)
        return false;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        fn(arg);
        _exit(0); /* not reached when fn aborts as it should */
    }
    close(fds[1]);
    char out[4096];
    size_t len = 0;
    ssize_t n;
    while ((n = read(fds[0], out + len, sizeof out - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    close(fds[0]);
    int status = 0;
    if (waitpid(pid, &status, 0) != pid)
        return false;
    bool aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
    if (!aborted || !strstr(out, want)) {
        fprintf(stderr, "child %s, stderr: \"%s\" (wanted \"%s\")\n",
                aborted ? "aborted" : "did not abort", out, want);
        return false;
    }
    return true;
}

#endif
