/*
 * echo_proc.h: the child processes of bench_echo (each one started by the bench is stopped
 * by it, also on error or a signal) and its small helpers: clocks, CPU seconds, pinning, free
 * ports, waiting for a listener. Header-only, for bench/bench_echo.c; main thread only.
 */
#ifndef SN_BENCH_ECHO_PROC_H
#define SN_BENCH_ECHO_PROC_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

#define MAX_CHILDREN 8

/* ---- children: started by us, always stopped by us ---- */

static volatile pid_t children[MAX_CHILDREN];

static inline void child_add(pid_t pid)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (!children[i]) {
            children[i] = pid;
            return;
        }
    kill(pid, SIGKILL); /* cannot happen: at most 3 children at a time */
}

static inline void child_forget(pid_t pid)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i] == pid)
            children[i] = 0;
}

/* SIGTERM, up to 3 s for a graceful exit, then SIGKILL; always reaps. */
static inline void child_stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    for (int i = 0; i < 300; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            child_forget(pid);
            return;
        }
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    child_forget(pid);
}

static inline void stop_all_children(void)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i])
            child_stop(children[i]);
}

static inline void on_signal(int sig)
{
    /* Async-signal-safe: terminate, and let exit-time reaping go (children have no parent to
     * report to once we are gone; init reaps them). */
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i])
            kill(children[i], SIGTERM);
    _exit(128 + sig);
}

/* fork/exec argv; stdout goes to out_fd when >= 0 (e.g. a pipe or /dev/null). */
static inline pid_t spawn(char *const argv[], int out_fd)
{
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        cpu_set_t all;
        CPU_ZERO(&all);
        for (int c = 0; c < CPU_SETSIZE; c++)
            CPU_SET(c, &all);
        sched_setaffinity(0, sizeof all, &all); /* not the bench's own pinning */
        if (out_fd >= 0) {
            dup2(out_fd, STDOUT_FILENO);
            close(out_fd);
        }
        execvp(argv[0], argv);
        fprintf(stderr, "bench_echo: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    child_add(pid);
    return pid;
}

static inline bool child_alive(pid_t pid)
{
    if (waitpid(pid, NULL, WNOHANG) == pid) {
        child_forget(pid);
        return false;
    }
    return true;
}

/* ---- small helpers ---- */

static inline double ru_cpu_s(const struct rusage *ru)
{
    return (double)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) +
           (double)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) * 1e-6;
}

static inline double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru_cpu_s(&ru);
}

/* utime + stime of a whole process (all its threads), seconds; -1 when unreadable. */
static inline double proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p)
        return -1;
    unsigned long long ut = 0, st = 0;
    /* After ")": field 3 (state) ... field 14 utime, 15 stime. */
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Time the process's threads spent runnable but waiting for a CPU (schedstat run_delay),
 * seconds: on a shared machine this shows how much of a run the server was kept off the CPU
 * by other work. -1 when unreadable. */
static inline double proc_runq_wait_s(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    double sum = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char f[320];
        snprintf(f, sizeof f, "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
        FILE *fp = fopen(f, "r");
        unsigned long long run, wait;
        if (fp && fscanf(fp, "%llu %llu", &run, &wait) == 2)
            sum += (double)wait * 1e-9;
        if (fp)
            fclose(fp);
    }
    closedir(d);
    return sum;
}

/* A loopback TCP port nothing uses right now. */
static inline int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Listening sockets on 127.0.0.1:port, from /proc/net/tcp (no probing connection, which
 * iperf3 would take for a client). */
static inline int count_listeners(int port)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    if (!f)
        return -1;
    char line[512], want[32];
    snprintf(want, sizeof want, "0100007F:%04X", port);
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        char local[64], remote[64];
        unsigned st;
        if (sscanf(line, " %*s %63s %63s %x", local, remote, &st) == 3 && st == 0x0A &&
            strcmp(local, want) == 0)
            n++;
    }
    fclose(f);
    return n;
}

static inline int wait_listening(pid_t pid, int port, int sockets, const char *what)
{
    for (int i = 0; i < 1000; i++) {
        if (count_listeners(port) >= sockets)
            return 0;
        if (!child_alive(pid)) {
            fprintf(stderr, "bench_echo: %s exited before listening on port %d\n", what, port);
            return -1;
        }
        usleep(10000);
    }
    fprintf(stderr, "bench_echo: %s does not listen on port %d after 10 s\n", what, port);
    return -1;
}

#endif
