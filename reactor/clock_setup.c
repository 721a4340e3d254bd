/*
 * Whether sn_now_ns() may read the TSC (core/clock.h), decided once per process at the first
 * sn_run: only where the CPU says the TSC is invariant (/proc/cpuinfo: constant_tsc and
 * nonstop_tsc) and the kernel still offers it as a clock source (a kernel that found it
 * unreliable, or was told so with tsc=unstable as some VMs are, drops it from
 * available_clocksource). Everywhere else sn_now_ns() stays CLOCK_MONOTONIC.
 * SN_CLOCK=tsc or SN_CLOCK=monotonic in the environment overrides the decision (tests).
 */
#include "reactor/clock_setup.h"

#include "core/clock.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CALIBRATE_NS 2000000ull /* 2 ms of busy waiting, once per process */

/* True when `line` holds `word` as a whole space-separated word. */
static bool has_word(const char *line, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = strstr(line, word); p; p = strstr(p + 1, word))
        if ((p == line || p[-1] == ' ' || p[-1] == '\t' || p[-1] == ':') &&
            (p[n] == ' ' || p[n] == '\n' || p[n] == '\0'))
            return true;
    return false;
}

/* The first line of `path` that starts with `prefix` (or the first line, prefix ""). */
static bool read_line(const char *path, const char *prefix, char *buf, size_t len)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    bool found = false;
    while (!found && fgets(buf, (int)len, f))
        found = strncmp(buf, prefix, strlen(prefix)) == 0;
    fclose(f);
    return found;
}

bool sn__tsc_trusted(void)
{
    static char line[8192]; /* cpuinfo flag lines are long; called once per process */
    if (!read_line("/proc/cpuinfo", "flags", line, sizeof line) ||
        !has_word(line, "constant_tsc") || !has_word(line, "nonstop_tsc"))
        return false;
    return read_line("/sys/devices/system/clocksource/clocksource0/available_clocksource", "", line,
                     sizeof line) &&
           has_word(line, "tsc");
}

void sn__clock_setup(void)
{
    static atomic_flag done = ATOMIC_FLAG_INIT;
    if (atomic_flag_test_and_set(&done))
        return;
    const char *env = getenv("SN_CLOCK");
    if (env && strcmp(env, "monotonic") == 0)
        return;
    if ((env && strcmp(env, "tsc") == 0) || sn__tsc_trusted())
        sn__clock_use_tsc(CALIBRATE_NS);
}
