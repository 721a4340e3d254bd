/*
 * bench_util.h: the small helpers every benchmark needs (clocks, the load average,
 * comparators, medians over rounds, a seeded random stream, pinning), so each bench/bench_*.c
 * keeps only its own measurement. Header-only, like the benchmarks themselves; any thread.
 */
#ifndef SN_BENCH_UTIL_H
#define SN_BENCH_UTIL_H

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* CLOCK_MONOTONIC in seconds. */
static inline double bu_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t bu_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * The calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID) in nanoseconds and in seconds: for
 * single-thread timings on this shared machine, where time slices other jobs take away from
 * the thread do not count.
 */
static inline double bu_thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static inline double bu_thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The 1-minute load average from /proc/loadavg, or -1 when it cannot be read. */
static inline double bu_load1(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1;
        fclose(f);
    }
    return l;
}

/* qsort comparators, ascending. */
static inline int bu_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static inline int bu_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/*
 * The median of v[0, n), n >= 1 (the mean of the middle two for even n), with the smallest
 * and largest in *lo and *hi when not NULL. v is left as it was.
 */
static inline double bu_median_range(const double *v, int n, double *lo, double *hi)
{
    double *s = malloc((size_t)n * sizeof *s);
    if (!s)
        abort();
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, bu_cmp_double);
    double m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    if (lo)
        *lo = s[0];
    if (hi)
        *hi = s[n - 1];
    free(s);
    return m;
}

static inline double bu_median(const double *v, int n)
{
    return bu_median_range(v, n, NULL, NULL);
}

/* The median over rounds of a[i] / b[i]: how benchmarks report a ratio to their peer. */
static inline double bu_median_ratio(const double *a, const double *b, int n)
{
    double *r = malloc((size_t)n * sizeof *r);
    if (!r)
        abort();
    for (int i = 0; i < n; i++)
        r[i] = a[i] / b[i];
    double m = bu_median(r, n);
    free(r);
    return m;
}

/* The p-quantile (0 <= p < 1) of v[0, n), n >= 1; sorts v in place. */
static inline uint64_t bu_quantile_u64(uint64_t *v, size_t n, double p)
{
    qsort(v, n, sizeof *v, bu_cmp_u64);
    size_t i = (size_t)(p * (double)n);
    return v[i < n ? i : n - 1];
}

/* splitmix64: a fast, seeded stream of well-mixed 64-bit values. */
static inline uint64_t bu_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Pins the calling thread to `cpu`, or lets it run anywhere with cpu < 0. 0 or -errno. */
static inline int bu_pin_self(int cpu)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (cpu < 0 || c == cpu)
            CPU_SET(c, &s);
    return sched_setaffinity(0, sizeof s, &s) == 0 || cpu < 0 ? 0 : -errno;
}

/* bu_pin_self(cpu), and on failure a message on stderr and exit(1). */
static inline void bu_pin_self_or_exit(int cpu)
{
    int rc = bu_pin_self(cpu);
    if (rc < 0) {
        fprintf(stderr, "sched_setaffinity(cpu %d): %s\n", cpu, strerror(-rc));
        exit(1);
    }
}

/*
 * The command line of the benchmarks that take only -r ROUNDS and -c CPU: fills *rounds and
 * *cpu (left as they are when not given). 0, or 2 (an exit code) after a usage line.
 */
static inline int bu_rounds_cpu(int argc, char **argv, int *rounds, int *cpu)
{
    int opt;
    while ((opt = getopt(argc, argv, "r:c:")) != -1) {
        if (opt == 'r')
            *rounds = atoi(optarg);
        else if (opt == 'c')
            *cpu = atoi(optarg);
        else {
            fprintf(stderr, "usage: %s [-r rounds] [-c cpu]\n", argv[0]);
            return 2;
        }
    }
    return 0;
}

/*
 * For a client binary run with no arguments (`make bench` runs every bench binary so): runs
 * the comparison script bench/<script> instead, found beside the build tree
 * (<build>/bench/<binary> -> <build>/../bench/<script>) or else relative to the working
 * directory. Returns only on failure (1, with a message).
 */
static inline int bu_run_script(const char *argv0, const char *script)
{
    char self[PATH_MAX], path[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return 1;
    self[n] = '\0';
    snprintf(path, sizeof path, "%s/../../bench/%s", dirname(self), script);
    if (access(path, R_OK) != 0)
        snprintf(path, sizeof path, "bench/%s", script);
    execl("/bin/sh", "sh", path, (char *)NULL);
    fprintf(stderr, "%s: cannot run %s\n", argv0, path);
    return 1;
}

#endif
