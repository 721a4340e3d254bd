/*
 * sn-counter: the smallest complete libsn program (the seed's "basic worker").
 *
 * Every core owns the counters of the keys a hash partitioner gives it. Core 0 sends each
 * increment to the key's owner (fire and forget: sn_send), then asks every core for its
 * share with sn_map_reduce, prints the per-core counts and the total, and exits 0 when the
 * total is the number of increments sent. Messages from one core to another arrive in the
 * order they were sent, so the map-reduce request reaches each owner after its increments.
 *
 *   sn-counter [--keys N] [--increments N] [libsn options: --smp, --cpuset, ...]
 */
#include <sn.h>
#include "apps/common/cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 4096 /* increments sent per loop turn, so one task never holds the core long */

struct app {
    uint64_t keys;
    uint64_t increments;
    uint64_t sent;
    struct sn_partition *part;
    struct sn_sharded *counters;
};

/* One core's counters: counts[key] for the keys this core owns (others stay 0). */
struct shard {
    uint64_t *counts;
    uint64_t owned;
    uint64_t total;
};

static void *shard_init(void *arg, unsigned core)
{
    struct app *app = arg;
    struct shard *s = calloc(1, sizeof *s);
    (void)core;
    if (!s)
        return NULL;
    s->counts = calloc(app->keys, sizeof *s->counts);
    if (!s->counts) {
        free(s);
        return NULL;
    }
    return s;
}

static void shard_fini(void *instance, void *arg)
{
    struct shard *s = instance;
    (void)arg;
    free(s->counts);
    free(s);
}

static struct app app;

/* On the owner core: count one increment of the key carried in `arg`. */
static void increment(void *arg)
{
    struct shard *s = sn_sharded_local(app.counters);
    uint64_t key = (uintptr_t)arg;
    if (s->counts[key]++ == 0)
        s->owned++;
    s->total++;
}

/* Reports this core's share: prints it, returns the count for the reduction. */
static struct sn_future *report(void *arg)
{
    struct shard *s = sn_sharded_local(app.counters);
    (void)arg;
    printf("core %u: %" PRIu64 " keys, %" PRIu64 " increments\n", sn_core_id(), s->owned,
           s->total);
    fflush(stdout);
    return sn_ready(s->total);
}

static struct sn_future *finish(void *arg, uint64_t total)
{
    (void)arg;
    printf("total: %" PRIu64 "\n", total);
    fflush(stdout);
    return sn_ready(total == app.increments ? 0 : 1);
}

static struct sn_future *stopped(void *arg, int err, uint64_t code)
{
    (void)arg;
    if (err)
        fprintf(stderr, "sn-counter: %s\n", sn_strerror(err));
    return sn_ready(err ? 1 : code);
}

static struct sn_future *cleanup(void *arg, int err, uint64_t code)
{
    (void)arg;
    struct sn_future *f = sn_sharded_stop(app.counters);
    return sn_then_wrapped(f, stopped, (void *)(uintptr_t)(err ? 1 : code));
}

static struct sn_future *send_chunk(void *arg, uint64_t unused);

static struct sn_future *send_chunk(void *arg, uint64_t unused)
{
    (void)arg, (void)unused;
    uint64_t end = app.sent + CHUNK < app.increments ? app.sent + CHUNK : app.increments;
    while (app.sent < end) {
        /* A spread of keys: multiplicative hashing of the index over the key space. */
        uint64_t key = (app.sent * 0x9E3779B97F4A7C15ull >> 16) % app.keys;
        int rc = sn_send(sn_partition_u64(app.part, key), increment, (void *)(uintptr_t)key);
        if (rc == -ENOBUFS)
            break; /* the owner is behind: let the loop flush, then retry */
        if (rc < 0)
            return sn_failed(rc);
        app.sent++;
    }
    if (app.sent < app.increments)
        return sn_then(sn_yield(), send_chunk, NULL);
    return sn_then(sn_map_reduce(report, NULL, 0, sn_reduce_sum, NULL), finish, NULL);
}

static struct sn_future *counter_main(void *arg)
{
    (void)arg;
    struct sn_partition_config pc = {.kind = SN_PARTITION_HASH, .n = sn_core_count()};
    char err[128];
    if (sn_partition_create(&pc, err, sizeof err, &app.part) < 0) {
        fprintf(stderr, "sn-counter: %s\n", err);
        return sn_ready(1);
    }
    printf("sn-counter: %u cores, %" PRIu64 " keys, %" PRIu64 " increments\n", sn_core_count(),
           app.keys, app.increments);
    struct sn_future *f = sn_sharded_start(shard_init, shard_fini, &app, &app.counters);
    return sn_then_wrapped(sn_then(f, send_chunk, NULL), cleanup, NULL);
}

static const char usage[] = "usage: sn-counter [--keys N] [--increments N] [libsn options]\n"
                            "  --keys N         distinct keys (default 1000)\n"
                            "  --increments N   increments sent from core 0 (default 100000)\n";

int main(int argc, char **argv)
{
    struct sn_config cfg;
    int rc = sn_config_parse(&argc, argv, usage, &cfg);
    if (rc != SN_CONFIG_CONTINUE)
        return rc;
    app.keys = 1000;
    app.increments = 100000;
    static const struct option opts[] = {
        {"keys", required_argument, NULL, 'k'},
        {"increments", required_argument, NULL, 'i'},
        {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'k' && app_parse_count("sn-counter", "keys", optarg, 1u << 26, &app.keys) == 0)
            continue;
        if (c == 'i' &&
            app_parse_count("sn-counter", "increments", optarg, 1ull << 40, &app.increments) == 0)
            continue;
        if (c != 'k' && c != 'i')
            fputs(usage, stderr);
        return SN_CONFIG_EXIT_USAGE;
    }
    rc = app_check_operands("sn-counter", argc, argv, 0, NULL);
    if (rc != SN_CONFIG_CONTINUE)
        return rc;
    rc = sn_run(&cfg, counter_main, NULL);
    sn_partition_destroy(app.part);
    if (rc == -EINVAL)
        return SN_CONFIG_EXIT_USAGE; /* --smp/--cpuset this machine cannot run (said why) */
    return app_job_exit_code("sn-counter", rc);
}
