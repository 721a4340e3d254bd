/*
 * sn-kv: a memcached-compatible (text and meta protocols) key-value server, sharded over the
 * reactor's cores. Every key belongs to one core, chosen by the partitioner; a connection's
 * core runs the commands on its own keys inline and sends the others to their owners,
 * answering in request order (see kv.h). Runs until SIGINT/SIGTERM, then stops gracefully and
 * exits 0. With --snapshot DIR it loads DIR's snapshot before it accepts, and writes one at
 * SIGINT/SIGTERM (its stop hook; also every --snapshot-every seconds) before the cores stop
 * (kv_snap.h).
 *
 *   sn-kv [--port N] [--listen ADDR] [-m MB] [-I SIZE] [-c N] [--partitioner NAME]
 *         [--metrics-port N] [--idle-ms N] [--snapshot DIR [--snapshot-every S]
 *         [--snapshot-strict]] [--lax-keys] [libsn options: --smp, --cpuset, --unpinned, ...]
 */
#include "kv.h"
#include "kv_snap.h"

#include "apps/common/cli.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
    "usage: sn-kv [options] [libsn options]\n"
    "  -p, --port N            TCP port (default 11211; 0 = any)\n"
    "  -l, --listen ADDR       numeric address to listen on (default 127.0.0.1)\n"
    "  -m, --memory-limit MB   item memory in megabytes, split across cores (default 64)\n"
    "  -I, --max-item-size S   largest item, bytes or with a k/m suffix (default 1m)\n"
    "  -c, --conn-limit N      most connections open at once (default 1024)\n"
    "  --partitioner NAME      how keys map to cores: hash, jump (default), rendezvous,\n"
    "                          ketama, ketama-xxh3, range:... (see sn_partition_from_string)\n"
    "  --metrics-port N        serve Prometheus text at http://ADDR:N/metrics\n"
    "  --idle-ms N             close connections with no traffic for N ms (default 0 = never,\n"
    "                          like memcached's idle_timeout)\n"
    "  --snapshot DIR          load DIR's snapshot at start; write one at SIGTERM/SIGINT\n"
    "                          (every core its own file, in parallel; crash-safe)\n"
    "  --snapshot-every S      also write one every S seconds while serving\n"
    "  --snapshot-strict       refuse to start when the snapshot is damaged (default:\n"
    "                          say why and start without the items it cannot read)\n"
    "  --lax-keys              take keys with control bytes, as memcached does (it checks\n"
    "                          only the length); default: CLIENT_ERROR bad command line\n"
    "                          format, as protocol.txt asks (memcaslap's keys hold raw bytes)\n"
    "  -q, --quiet             no start-up line on stdout\n";

static int bad(const char *opt, const char *what, const char *val)
{
    fprintf(stderr, "sn-kv: %s wants %s, not '%s'\n", opt, what, val);
    return -1;
}

/* memcached's -I: bytes, or a number with a k or m suffix; 1k .. 1024m. */
static int parse_size(const char *s, size_t *out)
{
    uint64_t v;
    if (app_parse_size(s, (uint64_t)1024 << 20, &v) < 0 || v < 1024)
        return -1;
    *out = (size_t)v;
    return 0;
}

static int parse_one(int c, const char *arg)
{
    struct kv_opts *o = &kv_srv.opt;
    uint64_t v;
    switch (c) {
    case 'p':
        if (app_parse_u64(arg, 65535, &v) < 0)
            return bad("--port", "a number from 0 to 65535", arg);
        o->port = (unsigned)v;
        return 0;
    case 'l': o->host = arg; return 0;
    case 'm':
        if (app_parse_u64(arg, 1u << 20, &v) < 0 || v == 0)
            return bad("-m", "megabytes from 1 to 1048576", arg);
        o->mem_total = (size_t)v << 20;
        return 0;
    case 'I':
        if (parse_size(arg, &o->item_max) < 0)
            return bad("-I", "a size from 1k to 1024m (bytes, or with a k/m suffix)", arg);
        return 0;
    case 'c':
        if (app_parse_u64(arg, 1u << 24, &v) < 0 || v == 0)
            return bad("-c", "a number from 1 to 16777216", arg);
        o->max_conns = (unsigned)v;
        return 0;
    case 'P': o->partitioner = arg; return 0;
    case 'M':
        if (app_parse_u64(arg, 65535, &v) < 0 || v == 0)
            return bad("--metrics-port", "a number from 1 to 65535", arg);
        o->metrics_port = (unsigned)v;
        return 0;
    case 'i':
        if (app_parse_u64(arg, 1u << 30, &v) < 0)
            return bad("--idle-ms", "milliseconds from 0 to 1073741824", arg);
        o->idle_ms = (unsigned)v;
        return 0;
    case 'S': o->snapshot_dir = arg; return 0;
    case 'E':
        if (app_parse_u64(arg, 1u << 30, &v) < 0 || v == 0)
            return bad("--snapshot-every", "seconds from 1 to 1073741824", arg);
        o->snapshot_every = (unsigned)v;
        return 0;
    case 'T': o->snapshot_strict = true; return 0;
    case 'K': o->lax_keys = true; return 0;
    case 'q': o->quiet = true; return 0;
    }
    fputs(usage, stderr);
    return -1;
}

static int parse_args(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},
        {"listen", required_argument, NULL, 'l'},
        {"memory-limit", required_argument, NULL, 'm'},
        {"max-item-size", required_argument, NULL, 'I'},
        {"conn-limit", required_argument, NULL, 'c'},
        {"partitioner", required_argument, NULL, 'P'},
        {"metrics-port", required_argument, NULL, 'M'},
        {"idle-ms", required_argument, NULL, 'i'},
        {"snapshot", required_argument, NULL, 'S'},
        {"snapshot-every", required_argument, NULL, 'E'},
        {"snapshot-strict", no_argument, NULL, 'T'},
        {"lax-keys", no_argument, NULL, 'K'},
        {"quiet", no_argument, NULL, 'q'},
        {0, 0, 0, 0},
    };
    struct kv_opts *o = &kv_srv.opt;
    *o = (struct kv_opts){
        .port = KV_DEFAULT_PORT,
        .host = SN_NET_DEFAULT_HOST,
        .partitioner = "jump",
        .mem_total = MC_MEM_LIMIT_DEFAULT,
        .item_max = MC_ITEM_MAX_DEFAULT,
        .max_conns = KV_DEFAULT_MAXCONNS,
    };
    int c;
    while ((c = getopt_long(argc, argv, "p:l:m:I:c:q", longopts, NULL)) != -1)
        if (parse_one(c, optarg) < 0)
            return SN_CONFIG_EXIT_USAGE;
    if ((o->snapshot_every || o->snapshot_strict) && !o->snapshot_dir) {
        fprintf(stderr, "sn-kv: --snapshot-every and --snapshot-strict need --snapshot DIR\n");
        return SN_CONFIG_EXIT_USAGE;
    }
    return app_check_args("sn-kv", argc, argv, o->host);
}

/* --snapshot DIR: made when missing (one level), and it must be a directory we can write. */
static int snapshot_dir_ready(const char *dir)
{
    struct stat st;
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "sn-kv: --snapshot %s: %s\n", dir, strerror(errno));
        return -1;
    }
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || access(dir, W_OK | X_OK) < 0) {
        fprintf(stderr, "sn-kv: --snapshot %s: not a directory this user can write\n", dir);
        return -1;
    }
    return 0;
}

/* ---- start-up on core 0 ------------------------------------------------------------------ */

static struct sn_future *metrics_listening(void *arg, int err, uint64_t value)
{
    (void)arg;
    if (err) {
        fprintf(stderr, "sn-kv: cannot listen on %s:%u for metrics: %s\n", kv_srv.opt.host,
                kv_srv.opt.metrics_port, sn_strerror(err));
        return sn_failed(err);
    }
    kv_srv.mlistener = (struct sn_listener *)(uintptr_t)value;
    if (!kv_srv.opt.quiet) {
        printf("sn-kv: metrics on http://%s:%u/metrics\n", kv_srv.opt.host,
               sn_listener_port(kv_srv.mlistener));
        fflush(stdout);
    }
    return SN_SUCCESS;
}

static struct sn_future *listening(void *arg, int err, uint64_t value)
{
    (void)arg;
    const struct kv_opts *o = &kv_srv.opt;
    if (err) {
        fprintf(stderr, "sn-kv: cannot listen on %s:%u: %s\n", o->host, o->port, sn_strerror(err));
        return sn_failed(err);
    }
    kv_srv.listener = (struct sn_listener *)(uintptr_t)value;
    if (!o->quiet) {
        printf("sn-kv: listening on %s:%u, %u cores, partitioner %s, -m %zu MB, -I %zu, "
               "-c %u\n",
               o->host, sn_listener_port(kv_srv.listener), kv_srv.ncores, o->partitioner,
               o->mem_total >> 20, o->item_max, o->max_conns);
        fflush(stdout);
    }
    if (!o->metrics_port)
        return SN_SUCCESS;
    struct sn_listen_config mc = {
        .host = o->host,
        .port = (uint16_t)o->metrics_port,
        .limits = {.input_max = 64 * 1024, .idle_ms = 30000},
        .ops = &kv_metrics_ops,
        .on_accept = kv_metrics_accept,
    };
    return sn_then_wrapped(sn_listen(&mc), metrics_listening, NULL);
}

static struct sn_future *listen_all(void *arg, uint64_t value)
{
    (void)arg;
    (void)value;
    const struct kv_opts *o = &kv_srv.opt;
    /* Unconsumed input is at most one data block or one long get line, plus what pipelined
     * clients sent ahead while the connection was full (see KV_INPUT_SLACK). */
    size_t biggest = o->item_max > MC_GET_LINE_MAX_DEFAULT ? o->item_max : MC_GET_LINE_MAX_DEFAULT;
    struct sn_listen_config cfg = {
        .host = o->host,
        .port = (uint16_t)o->port,
        .limits = {.input_max = biggest + KV_INPUT_SLACK,
                   .output_high = KV_OUTPUT_HIGH, /* see kv.h */
                   .max_open_replies = KV_MAX_OPEN,
                   .idle_ms = o->idle_ms},
        .ops = &kv_conn_ops,
        .on_accept = kv_conn_accept,
    };
    return sn_then_wrapped(sn_listen(&cfg), listening, NULL);
}

static struct sn_future *snapshot_load(void *arg, uint64_t value)
{
    (void)arg;
    (void)value;
    return kv_snap_start(); /* the snapshot is in before clients come */
}

/*
 * The app's start hook: every core's store, the snapshot (--snapshot), then the listeners.
 * The reactor closes the listeners that the stop hook leaves open.
 */
static struct sn_future *kv_start(void *arg)
{
    (void)arg;
    struct sn_future *f = sn_then(kv_server_start(), snapshot_load, NULL);
    return sn_then(f, listen_all, NULL);
}

/*
 * The app's stop hook (SIGTERM, SIGINT or sn_stop; every core still runs): no new clients,
 * then the final snapshot with --snapshot. A failed snapshot fails the stop (exit code 1; its
 * message said why) and the previous snapshot stays.
 */
static struct sn_future *kv_stop(void *arg)
{
    (void)arg;
    if (kv_srv.listener) {
        sn_ignore(sn_listener_close(kv_srv.listener));
        kv_srv.listener = NULL;
    }
    return kv_snap_stop();
}

/* The partitioner that maps keys to cores, one partition per core the run will start. */
static int make_partitioner(const struct sn_config *cfg)
{
    const char *spec = kv_srv.opt.partitioner;
    int n = sn_config_core_count(cfg);
    if (n < 0) {
        fprintf(stderr, "sn-kv: %s\n", sn_strerror(n));
        return 1;
    }
    char err[160];
    if (sn_partition_from_string(spec, (unsigned)n, err, sizeof err, &kv_srv.part) < 0) {
        fprintf(stderr, "sn-kv: --partitioner %s: %s\n", spec, err);
        return 1;
    }
    /* Round-robin ignores the key: a key would have no fixed owner. */
    if (sn_partition_kind(kv_srv.part) == SN_PARTITION_ROUND_ROBIN) {
        fprintf(stderr, "sn-kv: --partitioner %s: a key must always map to the same core\n", spec);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct sn_config cfg;
    int rc = sn_config_parse(&argc, argv, usage, &cfg);
    if (rc != SN_CONFIG_CONTINUE)
        return rc;
    rc = parse_args(argc, argv);
    if (rc != SN_CONFIG_CONTINUE)
        return rc;
    if (kv_srv.opt.snapshot_dir && snapshot_dir_ready(kv_srv.opt.snapshot_dir) < 0)
        return 1;
    rc = make_partitioner(&cfg);
    if (rc == 0) {
        signal(SIGPIPE, SIG_IGN);
        struct sn_app app = {
            .name = "sn-kv", .start = kv_start, .stop = kv_stop, .partition = kv_srv.part};
        rc = sn_app_run(&cfg, &app); /* 0 after SIGINT/SIGTERM */
    }
    kv_server_free();
    return rc;
}
