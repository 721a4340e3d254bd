/*
 * The command-line parser shared by every libsn app: see include/sn/config.h. It never
 * exits; it returns the exit code the app should return.
 */
#include "reactor/options.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "reactor/topology.h"

enum opt_id {
    OPT_SMP,
    OPT_CPUSET,
    OPT_IDLE,
    OPT_IO_POLL,
    OPT_IO_BATCH,
    OPT_STALL,
    OPT_UNPINNED,
    OPT_SLICE,
    OPT_MESH_OVERFLOW,
    OPT_HELP,
    OPT_VERSION
};

struct opt {
    const char *name;
    enum opt_id id;
    bool has_value;
};

static const struct opt opts[] = {
    {"--smp", OPT_SMP, true},
    {"--cpuset", OPT_CPUSET, true},
    {"--idle-poll-us", OPT_IDLE, true},
    {"--io-poll-us", OPT_IO_POLL, true},
    {"--io-batch-us", OPT_IO_BATCH, true},
    {"--stall-ms", OPT_STALL, true},
    {"--unpinned", OPT_UNPINNED, false},
    {"--sched-slice-us", OPT_SLICE, true},
    {"--mesh-overflow-limit", OPT_MESH_OVERFLOW, true},
    {"--help", OPT_HELP, false},
    {"--version", OPT_VERSION, false},
};

static const char help_text[] =
    "Reactor options (libsn " SN_VERSION_STRING "):\n"
    "  --smp N            number of reactor cores (default: one per physical core)\n"
    "  --cpuset LIST      run one reactor on each listed CPU, e.g. 0-1,3 or 0-7:2\n"
    "  --unpinned         do not pin reactor threads; allows more reactors than CPUs\n"
    "  --idle-poll-us N   busy-poll N microseconds before sleeping after cross-core work\n"
    "                     (default 200)\n"
    "  --io-poll-us N     the same after network or file work only (default 0)\n"
    "  --io-batch-us N    with requests on several connections, sleep until a batch of\n"
    "                     completions is there or its time passed: N/32 us per awaited\n"
    "                     completion, at most N (default 0 = off)\n"
    "  --stall-ms N       report a task holding a core over N ms, 0 = off (default 25)\n"
    "  --sched-slice-us N scheduler slice of each reactor thread in microseconds (Linux\n"
    "                     6.12+, 100-100000), 0 = the kernel's (default 0)\n"
    "  --mesh-overflow-limit N\n"
    "                     messages a core may hold for cores whose rings are full before\n"
    "                     sends fail with ENOBUFS, 0 = default (4194304)\n"
    "  --help             show this help and exit\n"
    "  --version          show the version and exit\n"
    "Environment: SN_URING_FALLBACK=1 (plain io_uring setup), SN_WAKE_EVENTFD=1 (eventfd "
    "wake-ups),\n"
    "  SN_CLOCK=tsc|monotonic (sn_now_ns from the TSC, or from CLOCK_MONOTONIC; default: the "
    "TSC\n"
    "  where it is invariant and the kernel offers it as a clock source).\n";

void sn_config_init(struct sn_config *cfg)
{
    *cfg = (struct sn_config){
        .idle_poll_us = SN_CONFIG_DEFAULT_IDLE_POLL_US,
        .io_poll_us = SN_CONFIG_DEFAULT_IO_POLL_US,
        .io_batch_us = SN_CONFIG_DEFAULT_IO_BATCH_US,
        .stall_ms = SN_CONFIG_DEFAULT_STALL_MS,
    };
}

int sn__parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
    unsigned long long v = 0;

    if (!s || !*s)
        return -EINVAL;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        if (v <= max)
            v = v * 10 + (unsigned)(*p - '0');
    }
    if (v < min || v > max)
        return -ERANGE;
    *out = (unsigned)v;
    return 0;
}

const char *sn__prog_name(const char *argv0)
{
    if (!argv0 || !*argv0)
        return "libsn";
    const char *slash = strrchr(argv0, '/');
    return slash && slash[1] ? slash + 1 : argv0;
}

static int usage_error(const char *prog, const char *fmt_opt, const char *value, const char *why)
{
    fprintf(stderr, "%s: %s: '%s' %s\nTry '%s --help'.\n", prog, fmt_opt, value, why, prog);
    return SN_CONFIG_EXIT_USAGE;
}

static int set_uint(const char *prog, const char *name, const char *v, unsigned min, unsigned max,
                    unsigned *out)
{
    char why[80];
    if (sn__parse_uint(v, min, max, out) == 0)
        return SN_CONFIG_CONTINUE;
    snprintf(why, sizeof why, "is not a whole number in %u..%u", min, max);
    return usage_error(prog, name, v, why);
}

static void ignore_cpu(void *arg, unsigned cpu)
{
    (void)arg, (void)cpu;
}

/* Applies one recognised option; returns SN_CONFIG_CONTINUE or an exit code. */
static int apply(struct sn_config *cfg, const struct opt *o, const char *v, const char *prog,
                 const char *app_usage)
{
    char msg[160];

    switch (o->id) {
    case OPT_SMP: return set_uint(prog, o->name, v, 1, SN__SMP_MAX, &cfg->smp);
    case OPT_IDLE: return set_uint(prog, o->name, v, 0, SN__IDLE_POLL_US_MAX, &cfg->idle_poll_us);
    case OPT_IO_POLL: return set_uint(prog, o->name, v, 0, SN__IDLE_POLL_US_MAX, &cfg->io_poll_us);
    case OPT_IO_BATCH:
        return set_uint(prog, o->name, v, 0, SN__IDLE_POLL_US_MAX, &cfg->io_batch_us);
    case OPT_STALL: return set_uint(prog, o->name, v, 0, SN__STALL_MS_MAX, &cfg->stall_ms);
    case OPT_CPUSET:
        if (sn__cpulist_parse(v, ignore_cpu, NULL, msg, sizeof msg) < 0) {
            fprintf(stderr, "%s: --cpuset: %s\nTry '%s --help'.\n", prog, msg, prog);
            return SN_CONFIG_EXIT_USAGE;
        }
        cfg->cpuset = v;
        return SN_CONFIG_CONTINUE;
    case OPT_UNPINNED: cfg->unpinned = true; return SN_CONFIG_CONTINUE;
    case OPT_SLICE: return set_uint(prog, o->name, v, 0, SN__SLICE_US_MAX, &cfg->sched_slice_us);
    case OPT_MESH_OVERFLOW: {
        unsigned lim = 0;
        int rc = set_uint(prog, o->name, v, 0, UINT_MAX, &lim);
        if (rc == SN_CONFIG_CONTINUE)
            cfg->mesh_overflow_limit = lim;
        return rc;
    }
    case OPT_HELP:
        if (app_usage)
            fputs(app_usage, stdout);
        fputs(help_text, stdout);
        fflush(stdout);
        return 0;
    case OPT_VERSION:
        printf("%s (libsn %s)\n", prog, SN_VERSION_STRING);
        fflush(stdout);
        return 0;
    }
    return SN_CONFIG_EXIT_USAGE;
}

/* The option `arg` names ("--smp" or "--smp=4"), or NULL; *eq gets the '=' or NULL. */
static const struct opt *lookup(const char *arg, const char **eq)
{
    *eq = strchr(arg, '=');
    size_t len = *eq ? (size_t)(*eq - arg) : strlen(arg);
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        if (strlen(opts[i].name) == len && memcmp(opts[i].name, arg, len) == 0)
            return &opts[i];
    return NULL;
}

int sn_config_parse(int *argc, char **argv, const char *app_usage, struct sn_config *cfg)
{
    sn_config_init(cfg);
    return sn_config_parse_from(argc, argv, app_usage, cfg);
}

int sn_config_parse_from(int *argc, char **argv, const char *app_usage, struct sn_config *cfg)
{
    const char *prog = sn__prog_name(*argc > 0 ? argv[0] : NULL);
    int n = *argc, out = n > 0 ? 1 : 0, i;

    for (i = 1; i < n; i++) {
        const char *eq, *a = argv[i];
        if (strcmp(a, "--") == 0)
            break;
        const struct opt *o = lookup(a, &eq);
        if (!o) {
            argv[out++] = argv[i];
            continue;
        }
        const char *v = NULL;
        if (o->has_value) {
            v = eq ? eq + 1 : (i + 1 < n ? argv[++i] : NULL);
            if (!v) {
                fprintf(stderr, "%s: %s needs a value\nTry '%s --help'.\n", prog, o->name, prog);
                return SN_CONFIG_EXIT_USAGE;
            }
        } else if (eq) {
            return usage_error(prog, o->name, eq + 1, "is not expected (no value allowed)");
        }
        int rc = apply(cfg, o, v, prog, app_usage);
        if (rc != SN_CONFIG_CONTINUE)
            return rc;
    }
    while (i < n) /* "--" and what follows belong to the app */
        argv[out++] = argv[i++];
    if (n > 0)
        argv[out] = NULL;
    *argc = out;
    return SN_CONFIG_CONTINUE;
}

int sn_config_reject_extra(int argc, char **argv)
{
    if (argc <= 1)
        return SN_CONFIG_CONTINUE;
    const char *prog = sn__prog_name(argv[0]);
    fprintf(stderr, "%s: unknown argument '%s'\nTry '%s --help'.\n", prog, argv[1], prog);
    return SN_CONFIG_EXIT_USAGE;
}
