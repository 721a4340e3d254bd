/*
 * bench_data.h: the machine-readable side channel of the benchmarks, for bench/report.sh.
 *
 * Convention: when the environment has SN_BENCH_DATA=<dir> (bench/run.sh sets it to
 * bench/results/<date>-data), a benchmark may write plot data to <dir>/<bench>-<series>.dat:
 * whitespace-separated columns, first line `# <column names>`, one row per line; several
 * blocks (e.g. one per round) are separated by two blank lines (gnuplot's `index`). A series
 * is rewritten by every run of its benchmark. Without SN_BENCH_DATA nothing is written and
 * every function here is a no-op, so the benchmark's own output never changes.
 * bench/report.sh plots each series it finds: known ones (bench_submit-rtt, ...) specially,
 * any other one as column 1 against the others. Keep series small (a few hundred rows).
 *
 * Header-only (bench/bench_*.c are single-file programs); main thread only, not thread-safe.
 */
#ifndef SN_BENCH_DATA_H
#define SN_BENCH_DATA_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define BENCH_DATA_MAX_SERIES 16

static struct {
    const char *name;
    FILE *f;
} bench_data_files[BENCH_DATA_MAX_SERIES];

/* The file of <bench>-<series>, opened (truncated, `# cols` written) on first use in this
 * process; NULL when SN_BENCH_DATA is unset or on any error (data output is best effort). */
static inline FILE *bench_data_file(const char *bench, const char *series, const char *cols)
{
    const char *dir = getenv("SN_BENCH_DATA");
    if (!dir || !*dir)
        return NULL;
    int i = 0;
    for (; i < BENCH_DATA_MAX_SERIES && bench_data_files[i].name; i++)
        if (bench_data_files[i].name == series)
            return bench_data_files[i].f;
    if (i == BENCH_DATA_MAX_SERIES)
        return NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s-%s.dat", dir, bench, series);
    FILE *f = fopen(path, "w");
    if (f)
        fprintf(f, "# %s\n", cols);
    bench_data_files[i].name = series; /* compared by address: pass string literals */
    bench_data_files[i].f = f;
    return f;
}

/* Appends one block to <bench>-<series>.dat describing the distribution of n samples in
 * ns, which must be sorted ascending: rows `block quantile ns` at quantiles spaced evenly in
 * "nines" (0, 0.5, 0.75, 0.9, ... up to the largest sample), ~20 rows per decade of 1-q. */
static inline void bench_data_quantiles(const char *bench, const char *series,
                                        const uint64_t *sorted, size_t n)
{
    static int blocks[BENCH_DATA_MAX_SERIES];
    FILE *f = bench_data_file(bench, series, "block quantile ns");
    if (!f || n == 0)
        return;
    int slot = 0;
    while (slot < BENCH_DATA_MAX_SERIES - 1 && bench_data_files[slot].name != series)
        slot++;
    if (blocks[slot])
        fputs("\n\n", f);
    double tail = 1.0; /* 1 - q */
    for (;;) {
        double q = 1.0 - tail;
        size_t i = (size_t)(q * (double)n);
        if (i >= n)
            i = n - 1;
        fprintf(f, "%d %.6f %llu\n", blocks[slot], q, (unsigned long long)sorted[i]);
        if (i == n - 1)
            break;
        tail *= 0.891250938; /* 10^(-1/20) */
    }
    blocks[slot]++;
    fflush(f);
}

#endif
