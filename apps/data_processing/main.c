/*
 * sn-data_processing: the seed's "data processing" example. Records are spread over the
 * cores by a hash partitioner on their user key, processed by the core that owns the user
 * (validated, a 3% fee taken, added to the user's account), and the results collected back
 * on core 0 with sn_map_reduce, where they are checked against a direct computation.
 *
 * Core 0 makes the records a slice at a time, packs the slice into one batch per owner,
 * sends every batch with sn_call_on and waits for all of them (sn_when_all) before the next
 * slice: the wait is the flow control. Each core keeps its accounts in a sharded instance.
 *
 *   sn-data_processing [--records N] [--users N] [libsn options: --smp, --cpuset, ...]
 *
 * Prints one line per core, then "result: ... ok" and exits 0 when every total matches.
 */
#include <sn.h>
#include "apps/common/cli.h"
#include "apps/common/finish.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLICE     4096 /* records per slice */
#define MAX_CORES 256

struct record {
    uint64_t id;
    uint32_t user;
    uint32_t cents; /* 0 is invalid and rejected by the owner */
};

struct batch {
    unsigned n;
    struct record rec[SLICE];
};

/* One core's accounts: balance per user (only the users this core owns are touched). */
struct accounts {
    uint64_t *balance;
    uint64_t records, rejected, users;
};

struct app {
    uint64_t nrecords;
    uint32_t nusers;
    uint64_t next; /* next record to make */
    struct sn_partition *part;
    struct sn_sharded *accounts;
    struct batch *batches[MAX_CORES];
    struct sn_future *futs[MAX_CORES];
    uint64_t want_total, want_rejected;
};

static struct app app;

/* The i-th record: deterministic, so core 0 can compute the expected result itself. */
static struct record make_record(uint64_t i)
{
    return (struct record){
        .id = i,
        .user = (uint32_t)((i * 2654435761u) % app.nusers),
        .cents = (uint32_t)((i * 7919) % 10007),
    };
}

static uint32_t owner_of(uint32_t user)
{
    char key[24];
    int len = snprintf(key, sizeof key, "user-%u", user);
    return sn_partition(app.part, key, (size_t)len);
}

static void *accounts_init(void *arg, unsigned core)
{
    (void)arg, (void)core;
    struct accounts *a = calloc(1, sizeof *a);
    if (a && !(a->balance = calloc(app.nusers, sizeof *a->balance))) {
        free(a);
        a = NULL;
    }
    return a;
}

static void accounts_fini(void *instance, void *arg)
{
    struct accounts *a = instance;
    (void)arg;
    free(a->balance);
    free(a);
}

/* On the owner core: processes a batch; answers with the number of records accepted. */
static int process(void *arg, uint64_t *value)
{
    const struct batch *b = arg;
    struct accounts *a = sn_sharded_local(app.accounts);
    uint64_t ok = 0;
    for (unsigned i = 0; i < b->n; i++) {
        const struct record *r = &b->rec[i];
        if (owner_of(r->user) != sn_core_id())
            return -EXDEV; /* routed to the wrong core: must never happen */
        if (r->cents == 0) {
            a->rejected++;
            continue;
        }
        if (a->balance[r->user] == 0)
            a->users++;
        a->balance[r->user] += r->cents - r->cents * 3 / 100;
        ok++;
    }
    a->records += ok;
    *value = ok;
    return 0;
}

static struct sn_future *send_slice(void *arg, uint64_t unused);

/* Makes the next slice, sends one batch per owner, and waits for all of them. */
static struct sn_future *send_slice(void *arg, uint64_t unused)
{
    (void)arg, (void)unused;
    unsigned n = sn_core_count();
    if (app.next >= app.nrecords)
        return sn_ready(0);
    for (unsigned c = 0; c < n; c++)
        app.batches[c]->n = 0;
    uint64_t end = app.next + SLICE < app.nrecords ? app.next + SLICE : app.nrecords;
    for (; app.next < end; app.next++) {
        struct record r = make_record(app.next);
        struct batch *b = app.batches[owner_of(r.user)];
        b->rec[b->n++] = r;
        if (r.cents == 0)
            app.want_rejected++;
        else
            app.want_total += r.cents - r.cents * 3 / 100;
    }
    for (unsigned c = 0; c < n; c++)
        app.futs[c] = sn_call_on(c, process, app.batches[c]);
    return sn_then(sn_when_all(app.futs, n, NULL), send_slice, NULL);
}

/* Each core's share of the result, printed there; the reduction sums the balances. */
static struct sn_future *report(void *arg)
{
    struct accounts *a = sn_sharded_local(app.accounts);
    uint64_t sum = 0;
    (void)arg;
    for (uint32_t u = 0; u < app.nusers; u++)
        sum += a->balance[u];
    printf("core %u: %" PRIu64 " records, %" PRIu64 " rejected, %" PRIu64 " users, %" PRIu64
           " cents\n",
           sn_core_id(), a->records, a->rejected, a->users, sum);
    fflush(stdout);
    return sn_ready(sum);
}

static struct sn_future *finish(void *arg, uint64_t total)
{
    (void)arg;
    bool ok = total == app.want_total;
    printf("result: %" PRIu64 " records over %u users on %u cores, total_cents=%" PRIu64
           " expected=%" PRIu64 " rejected=%" PRIu64 " %s\n",
           app.nrecords, app.nusers, sn_core_count(), total, app.want_total, app.want_rejected,
           ok ? "ok" : "MISMATCH");
    fflush(stdout);
    return sn_ready(ok ? 0 : 1);
}

static struct sn_future *collect(void *arg, uint64_t unused)
{
    (void)arg, (void)unused;
    return sn_then(sn_map_reduce(report, NULL, 0, sn_reduce_sum, NULL), finish, NULL);
}

/* Whatever happened, the accounts are destroyed on their cores before the exit. */
static struct sn_future *cleanup(void *arg, int err, uint64_t code)
{
    (void)arg;
    return app_stop_sharded("sn-data_processing", app.accounts, err, code);
}

static struct sn_future *app_main(void *arg)
{
    (void)arg;
    char err[128];
    struct sn_partition_config pc = {.kind = SN_PARTITION_HASH, .n = sn_core_count()};
    if (sn_core_count() > MAX_CORES || sn_partition_create(&pc, err, sizeof err, &app.part)) {
        fprintf(stderr, "sn-data_processing: cannot make the partitioner\n");
        return sn_ready(1);
    }
    for (unsigned c = 0; c < sn_core_count(); c++)
        if (!(app.batches[c] = malloc(sizeof *app.batches[c])))
            return sn_ready(1);
    struct sn_future *f = sn_sharded_start(accounts_init, accounts_fini, NULL, &app.accounts);
    f = sn_then(sn_then(f, send_slice, NULL), collect, NULL);
    return sn_then_wrapped(f, cleanup, NULL);
}

static const char usage[] = "usage: sn-data_processing [--records N] [--users N] [libsn options]\n"
                            "  --records N   records to process (default 200000)\n"
                            "  --users N     distinct user keys (default 1000)\n";

int main(int argc, char **argv)
{
    struct sn_config cfg;
    int rc = sn_config_parse(&argc, argv, usage, &cfg);
    if (rc != SN_CONFIG_CONTINUE)
        return rc;
    app.nrecords = 200000;
    app.nusers = 1000;
    static const struct option opts[] = {
        {"records", required_argument, NULL, 'r'},
        {"users", required_argument, NULL, 'u'},
        {0, 0, 0, 0},
    };
    uint64_t v;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'r' && app_parse_count("sn-data_processing", "records", optarg, 1ull << 36,
                                        &app.nrecords) == 0)
            continue;
        if (c == 'u' && app_parse_count("sn-data_processing", "users", optarg, 1u << 24, &v) == 0) {
            app.nusers = (uint32_t)v;
            continue;
        }
        if (c != 'r' && c != 'u')
            fputs(usage, stderr);
        return SN_CONFIG_EXIT_USAGE;
    }
    rc = app_check_operands("sn-data_processing", argc, argv, 0, NULL);
    if (rc != SN_CONFIG_CONTINUE)
        return rc;
    rc = sn_run(&cfg, app_main, NULL);
    for (unsigned i = 0; i < MAX_CORES; i++)
        free(app.batches[i]);
    sn_partition_destroy(app.part);
    return app_job_exit_code("sn-data_processing", rc);
}
