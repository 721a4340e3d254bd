/*
 * sn-distributed_compute: the seed's "distributed compute" example, a three-stage pipeline
 * across cores with results collected at the end.
 *
 *   parse      core 0 cuts the input text (sensor readings, one per line, some malformed)
 *              into blocks; block b is parsed on core b % N;
 *   transform  the parsing core hands its parsed readings to the next core, (b + 1) % N,
 *              which calibrates them (Celsius tenths to Fahrenheit tenths);
 *   aggregate  the transforming core routes each reading to the core that owns its sensor
 *              (a jump-consistent-hash partitioner on the sensor id), which keeps count, sum,
 *              minimum and maximum per sensor.
 *
 * Each stage returns the next stage's future, so a block's future on core 0 settles only
 * when its readings are aggregated; core 0 keeps a window of blocks in flight. At the end
 * sn_map_reduce collects every core's sensors and core 0 checks them against a direct
 * single-threaded computation of the same input.
 *
 *   sn-distributed_compute [--lines N] [--sensors N] [libsn options]
 *
 * Prints the per-stage counts, a few sensors, and "result: ... ok"; exits 0 when all match.
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

#define BLOCK_LINES 2000
#define WINDOW      8 /* blocks in flight */
#define MAX_CORES   256

struct reading {
    uint32_t sensor;
    int32_t value; /* tenths of a degree */
};

/* A block's journey: its text, then its readings, then one batch per aggregating core. */
struct block {
    unsigned index;
    char *text;
    size_t len;
    struct reading *r;
    unsigned nr, errors;
    struct reading *out[MAX_CORES];
    unsigned nout[MAX_CORES];
    struct sn_future *futs[MAX_CORES];
};

struct stats {
    uint64_t count;
    int64_t sum;
    int32_t min, max;
};

/* One core's aggregates and stage counters. */
struct shard {
    struct stats *s; /* per sensor; only the sensors this core owns are touched */
    uint64_t parsed, errors, transformed, aggregated;
};

static struct {
    uint64_t lines;
    uint32_t sensors;
    struct sn_partition *part;
    struct sn_sharded *shards;
    uint64_t next_line;
    unsigned nblocks;
    struct shard *parts[MAX_CORES];
} app;

/* Line i of the input: "sensor-<s> <celsius>" with one decimal; every 97th is malformed. */
static int make_line(uint64_t i, char *buf, size_t cap)
{
    uint32_t s = (uint32_t)((i * 40503u) % app.sensors);
    int32_t tenths = (int32_t)((i * 7919u) % 900) - 300; /* -30.0 .. 59.9 */
    if (i % 97 == 0)
        return snprintf(buf, cap, "sensor-%u n/a\n", s);
    return snprintf(buf, cap, "sensor-%u %s%d.%d\n", s, tenths < 0 ? "-" : "", abs(tenths) / 10,
                    abs(tenths) % 10);
}

static int32_t calibrate(int32_t c10)
{
    return c10 * 9 / 5 + 320;
}

static void *shard_init(void *arg, unsigned core)
{
    (void)arg, (void)core;
    struct shard *sh = calloc(1, sizeof *sh);
    if (sh && !(sh->s = calloc(app.sensors, sizeof *sh->s))) {
        free(sh);
        sh = NULL;
    }
    return sh;
}

static void shard_fini(void *instance, void *arg)
{
    struct shard *sh = instance;
    (void)arg;
    free(sh->s);
    free(sh);
}

/* ---- stage 3: aggregate, on the sensor's owner ---- */

/* Adds this core's share of a transformed block (b->out[me]) to its sensors. */
static int aggregate(void *arg, uint64_t *value)
{
    struct block *b = arg;
    struct shard *sh = sn_sharded_local(app.shards);
    unsigned me = sn_core_id();
    for (unsigned i = 0; i < b->nout[me]; i++) {
        const struct reading *r = &b->out[me][i];
        struct stats *st = &sh->s[r->sensor];
        if (st->count == 0 || r->value < st->min)
            st->min = r->value;
        if (st->count == 0 || r->value > st->max)
            st->max = r->value;
        st->count++;
        st->sum += r->value;
    }
    sh->aggregated += b->nout[me];
    *value = b->nout[me];
    return 0;
}

/* ---- stage 2: transform, on the next core ---- */

/* Calibrates a parsed block and sends each reading to its sensor's owner. */
static struct sn_future *transform(void *arg)
{
    struct block *b = arg;
    struct shard *sh = sn_sharded_local(app.shards);
    unsigned n = sn_core_count();
    for (unsigned c = 0; c < n; c++) {
        b->out[c] = malloc((b->nr ? b->nr : 1) * sizeof *b->out[c]);
        b->nout[c] = 0;
        if (!b->out[c])
            return sn_failed(-ENOMEM);
    }
    for (unsigned i = 0; i < b->nr; i++) {
        struct reading r = {b->r[i].sensor, calibrate(b->r[i].value)};
        unsigned owner = sn_partition_u64(app.part, r.sensor);
        b->out[owner][b->nout[owner]++] = r;
    }
    sh->transformed += b->nr;
    for (unsigned c = 0; c < n; c++)
        b->futs[c] = sn_call_on(c, aggregate, b);
    return sn_when_all(b->futs, n, NULL);
}

/* ---- stage 1: parse, on core b % N ---- */

static int parse_line(const char *p, const char *end, struct reading *r)
{
    unsigned s = 0, whole = 0, frac = 0;
    int neg = 0, n = 0;
    if (end - p < 8 || memcmp(p, "sensor-", 7) != 0)
        return -1;
    for (p += 7; p < end && *p >= '0' && *p <= '9'; p++, n++)
        s = s * 10 + (unsigned)(*p - '0');
    if (!n || p == end || *p++ != ' ' || s >= app.sensors)
        return -1;
    if (p < end && *p == '-')
        neg = 1, p++;
    for (n = 0; p < end && *p >= '0' && *p <= '9'; p++, n++)
        whole = whole * 10 + (unsigned)(*p - '0');
    if (!n || end - p != 2 || p[0] != '.' || p[1] < '0' || p[1] > '9')
        return -1;
    frac = (unsigned)(p[1] - '0');
    r->sensor = s;
    r->value = (int32_t)(whole * 10 + frac) * (neg ? -1 : 1);
    return 0;
}

/* Parses a block's text; the block goes on to the next core for its transform. */
static struct sn_future *parse(void *arg)
{
    struct block *b = arg;
    struct shard *sh = sn_sharded_local(app.shards);
    b->r = malloc(BLOCK_LINES * sizeof *b->r);
    if (!b->r)
        return sn_failed(-ENOMEM);
    for (const char *p = b->text, *end = b->text + b->len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            nl = end;
        if (parse_line(p, nl, &b->r[b->nr]) == 0)
            b->nr++;
        else
            b->errors++;
        p = nl + 1;
    }
    sh->parsed += b->nr;
    sh->errors += b->errors;
    return sn_submit_to((sn_core_id() + 1) % sn_core_count(), transform, b);
}

/* ---- core 0: feeding blocks through the pipeline ---- */

static void block_free(struct block *b)
{
    for (unsigned c = 0; c < MAX_CORES; c++)
        free(b->out[c]);
    free(b->r);
    free(b->text);
    free(b);
}

static struct block *make_block(void)
{
    struct block *b = calloc(1, sizeof *b);
    size_t cap = BLOCK_LINES * 32;
    if (!b || !(b->text = malloc(cap))) {
        free(b);
        return NULL;
    }
    b->index = app.nblocks++;
    for (unsigned i = 0; i < BLOCK_LINES && app.next_line < app.lines; i++)
        b->len += (size_t)make_line(app.next_line++, b->text + b->len, cap - b->len);
    return b;
}

static struct sn_future *block_done(void *arg, int err, uint64_t value)
{
    (void)value;
    block_free(arg);
    return err ? sn_failed(err) : sn_ready(0);
}

/* Sends up to WINDOW blocks down the pipeline and waits for all before the next window. */
static struct sn_future *send_window(void *arg, uint64_t unused)
{
    static struct sn_future *futs[WINDOW];
    unsigned n = 0;
    (void)arg, (void)unused;
    while (n < WINDOW && app.next_line < app.lines) {
        struct block *b = make_block();
        if (!b)
            futs[n++] = sn_failed(-ENOMEM);
        else
            futs[n++] =
                sn_then_wrapped(sn_submit_to(b->index % sn_core_count(), parse, b), block_done, b);
    }
    if (n == 0)
        return sn_ready(0);
    return sn_then(sn_when_all(futs, n, NULL), send_window, NULL);
}

/* ---- results ---- */

static struct sn_future *collect_one(void *arg)
{
    (void)arg;
    return sn_ready((uintptr_t)sn_sharded_local(app.shards));
}

static uint64_t gather(void *arg, uint64_t acc, uint64_t value)
{
    (void)arg;
    app.parts[acc] = (struct shard *)(uintptr_t)value; /* the order does not matter */
    return acc + 1;
}

/* The same numbers computed directly, on core 0, from the same input. */
static void expected(struct stats *want, uint64_t *errors)
{
    char line[64];
    for (uint64_t i = 0; i < app.lines; i++) {
        struct reading r;
        int len = make_line(i, line, sizeof line);
        if (parse_line(line, line + len - 1, &r) < 0) {
            ++*errors;
            continue;
        }
        struct stats *st = &want[r.sensor];
        int32_t v = calibrate(r.value);
        if (st->count == 0 || v < st->min)
            st->min = v;
        if (st->count == 0 || v > st->max)
            st->max = v;
        st->count++;
        st->sum += v;
    }
}

static struct sn_future *check(void *arg, uint64_t ncores)
{
    (void)arg;
    struct stats *got = calloc(app.sensors, sizeof *got), *want = calloc(app.sensors, sizeof *want);
    uint64_t parsed = 0, errors = 0, transformed = 0, aggregated = 0, want_errors = 0;
    if (!got || !want) {
        free(got);
        free(want);
        return sn_failed(-ENOMEM);
    }
    for (unsigned c = 0; c < ncores; c++) {
        const struct shard *sh = app.parts[c];
        parsed += sh->parsed, errors += sh->errors;
        transformed += sh->transformed, aggregated += sh->aggregated;
        for (uint32_t s = 0; s < app.sensors; s++)
            if (sh->s[s].count) {
                if (got[s].count) /* two owners for one sensor */
                    got[s].count = UINT64_MAX;
                else
                    got[s] = sh->s[s];
            }
    }
    expected(want, &want_errors);
    bool ok = errors == want_errors && parsed == transformed && transformed == aggregated &&
              memcmp(got, want, app.sensors * sizeof *got) == 0;
    printf("parse: %" PRIu64 " readings, %" PRIu64 " malformed lines\n", parsed, errors);
    printf("transform: %" PRIu64 " readings\naggregate: %" PRIu64 " readings\n", transformed,
           aggregated);
    for (uint32_t s = 0; s < app.sensors && s < 3; s++)
        printf("sensor-%u: count=%" PRIu64 " min=%d max=%d mean=%.1f F\n", s, got[s].count,
               got[s].min, got[s].max,
               got[s].count ? (double)got[s].sum / (double)got[s].count / 10.0 : 0.0);
    printf("result: %" PRIu64 " lines, %u blocks, %u sensors on %u cores %s\n", app.lines,
           app.nblocks, app.sensors, sn_core_count(), ok ? "ok" : "MISMATCH");
    fflush(stdout);
    free(got);
    free(want);
    return sn_ready(ok ? 0 : 1);
}

static struct sn_future *collect(void *arg, uint64_t unused)
{
    (void)arg, (void)unused;
    return sn_then(sn_map_reduce(collect_one, NULL, 0, gather, NULL), check, NULL);
}

static struct sn_future *cleanup(void *arg, int err, uint64_t code)
{
    (void)arg;
    return app_stop_sharded("sn-distributed_compute", app.shards, err, code);
}

static struct sn_future *app_main(void *arg)
{
    (void)arg;
    char err[128];
    struct sn_partition_config pc = {.kind = SN_PARTITION_JUMP, .n = sn_core_count()};
    if (sn_core_count() > MAX_CORES || sn_partition_create(&pc, err, sizeof err, &app.part)) {
        fprintf(stderr, "sn-distributed_compute: cannot make the partitioner\n");
        return sn_ready(1);
    }
    struct sn_future *f = sn_sharded_start(shard_init, shard_fini, NULL, &app.shards);
    f = sn_then(sn_then(f, send_window, NULL), collect, NULL);
    return sn_then_wrapped(f, cleanup, NULL);
}

static const char usage[] =
    "usage: sn-distributed_compute [--lines N] [--sensors N] [libsn options]\n"
    "  --lines N     input lines (default 200000)\n"
    "  --sensors N   distinct sensors (default 64)\n";

int main(int argc, char **argv)
{
    struct sn_config cfg;
    int rc = sn_config_parse(&argc, argv, usage, &cfg);
    if (rc != SN_CONFIG_CONTINUE)
        return rc;
    app.lines = 200000;
    app.sensors = 64;
    static const struct option opts[] = {
        {"lines", required_argument, NULL, 'l'},
        {"sensors", required_argument, NULL, 's'},
        {0, 0, 0, 0},
    };
    uint64_t v;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'l' &&
            app_parse_count("sn-distributed_compute", "lines", optarg, 1ull << 34, &app.lines) == 0)
            continue;
        if (c == 's' &&
            app_parse_count("sn-distributed_compute", "sensors", optarg, 1u << 20, &v) == 0) {
            app.sensors = (uint32_t)v;
            continue;
        }
        if (c != 'l' && c != 's')
            fputs(usage, stderr);
        return SN_CONFIG_EXIT_USAGE;
    }
    rc = app_check_operands("sn-distributed_compute", argc, argv, 0, NULL);
    if (rc != SN_CONFIG_CONTINUE)
        return rc;
    rc = sn_run(&cfg, app_main, NULL);
    sn_partition_destroy(app.part);
    return app_job_exit_code("sn-distributed_compute", rc);
}
