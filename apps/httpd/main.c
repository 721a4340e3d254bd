/*
 * sn-httpd: an HTTP/1.1 server on every core (keep-alive, pipelining, HTTP/1.0, GET and HEAD).
 *
 *   /            "Hello, world!\n"
 *   /static/...  files under --root DIR (404 without it); nothing outside DIR is ever served
 *   /metrics     per-core reactor and httpd counters, Prometheus text format
 *   /healthz     200 "ok", or 503 "stopping" while the server stops
 *
 * Runs until SIGINT/SIGTERM, then stops gracefully and exits 0.
 *
 *   sn-httpd [--port N] [--listen ADDR] [--root DIR] [--idle-ms N] [--max-conns N]
 *            [--header-timeout-ms N] [libsn options: --smp, --cpuset, --unpinned, ...]
 */
#include "apps/common/cli.h"
#include "apps/httpd/httpd.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: sn-httpd [--port N] [--listen ADDR] [--root DIR] [--idle-ms N] [--max-conns N]\n"
    "                [--header-timeout-ms N]\n"
    "  --port N        TCP port (default 8080; 0 = any, printed at start-up)\n"
    "  --listen ADDR   numeric address to listen on (default 127.0.0.1)\n"
    "  --root DIR      serve /static/... from DIR (default: none, /static answers 404)\n"
    "  --idle-ms N     close connections idle this long (default 60000; 0 = never)\n"
    "  --max-conns N   connections per core, more are closed at once (default 0 = no limit)\n"
    "  --header-timeout-ms N\n"
    "                  a request head must arrive whole within N ms of its first byte, else\n"
    "                  408 and close (default 10000; 0 = no limit)\n"
    "  libsn's --io-batch-us is 400 here (not 0): under load from several connections a core\n"
    "  waits up to 400 us for a batch of 32 requests (12.5 us per request it waits for),\n"
    "  but only while its batches fill at that pace, so a moderate load keeps its latency;\n"
    "  0 turns it off\n";

/* sn-httpd's own default for --io-batch-us: with requests on several connections a core
 * sleeps until a batch of n completions or n x 12.5 us (400 us for a full 32), which cut
 * the server CPU per keep-alive request by 25-35% under wrk's 64 connections, with a lower
 * average latency (issue 17's CPU and throughput goals; 200 us missed them). A core batches
 * only while its batches keep that pace (reactor/loop.c), so at 25% and 60% of saturation
 * the latency stays near that of no batching (within ~1.2x of its mean; before that rule the
 * mean rose from 96 to 395 us at 60% of one core; docs/PERFORMANCE.md,
 * bench/bench_httpd_lat.sh); a lone connection never waits. */
#define HTTPD_IO_BATCH_US 400

/* A number option from 0 to max into *out: 0, or -1 after a message. */
static int parse_num(const char *name, const char *s, unsigned max, unsigned *out)
{
    uint64_t v;
    if (app_parse_range("sn-httpd", name, s, 0, max, &v) < 0)
        return -1;
    *out = (unsigned)v;
    return 0;
}

static int parse_args(int argc, char **argv, struct httpd_options *o)
{
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},
        {"listen", required_argument, NULL, 'l'},
        {"root", required_argument, NULL, 'r'},
        {"idle-ms", required_argument, NULL, 'i'},
        {"max-conns", required_argument, NULL, 'm'},
        {"header-timeout-ms", required_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'p': bad = parse_num("port", optarg, 65535, &o->port); break;
        case 'l': o->host = optarg; break;
        case 'r': o->root = optarg; break;
        case 'i': bad = parse_num("idle-ms", optarg, 1u << 30, &o->idle_ms); break;
        case 'm': bad = parse_num("max-conns", optarg, 1u << 30, &o->max_conns); break;
        case 'h':
            bad = parse_num("header-timeout-ms", optarg, 1u << 30, &o->header_timeout_ms);
            break;
        default: fputs(usage, stderr); return SN_CONFIG_EXIT_USAGE;
        }
        if (bad)
            return SN_CONFIG_EXIT_USAGE;
    }
    return app_check_args("sn-httpd", argc, argv, o->host);
}

int main(int argc, char **argv)
{
    struct sn_config cfg;
    sn_config_init(&cfg);
    cfg.io_batch_us = HTTPD_IO_BATCH_US;
    int rc = sn_config_parse_from(&argc, argv, usage, &cfg);
    if (rc != SN_CONFIG_CONTINUE)
        return rc;
    struct httpd_server srv = {
        .opt = {.port = 8080,
                .host = SN_NET_DEFAULT_HOST,
                .idle_ms = 60000,
                .header_timeout_ms = HTTPD_HEADER_TIMEOUT_MS},
        .root_fd = -1,
    };
    rc = parse_args(argc, argv, &srv.opt);
    if (rc != SN_CONFIG_CONTINUE)
        return rc;
    if (srv.opt.root) {
        srv.root_fd = open(srv.opt.root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (srv.root_fd < 0) {
            fprintf(stderr, "sn-httpd: --root %s: %s\n", srv.opt.root, strerror(errno));
            return SN_CONFIG_EXIT_USAGE;
        }
    }
    struct sn_app app = {.name = "sn-httpd", .start = httpd_start, .arg = &srv};
    rc = sn_app_run(&cfg, &app); /* 0 after SIGINT/SIGTERM */
    httpd_server_free(&srv);
    return rc;
}
