/*
 * sn-echo: a TCP echo server on every core. Each connection sends back what it receives;
 * when the client half-closes, the rest of the echo goes out and the server closes too.
 * Received bytes go back out of the very receive buffer they arrived in (sn_conn_write_input),
 * not through a copy.
 * Runs until SIGINT/SIGTERM, then stops gracefully and exits 0.
 *
 *   sn-echo [--port N] [--listen ADDR] [--one-acceptor] [--max-conns N] [--idle-ms N]
 *           [libsn options: --smp, --cpuset, --unpinned, ...]
 */
#include <sn.h>
#include "apps/common/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct echo_opts {
    unsigned port;
    const char *host;
    bool one_acceptor;
    unsigned max_conns;
    unsigned idle_ms;
};

static struct echo_opts opts = {.port = 7000, .host = SN_NET_DEFAULT_HOST};

static size_t echo_data(struct sn_conn *conn, void *arg, const char *data, size_t len)
{
    (void)arg;
    if (sn_conn_write_input(conn, data, len) < 0)
        sn_ignore(sn_conn_abort(conn));
    return len;
}

static const struct sn_conn_ops echo_ops = {.on_data = echo_data};

static struct sn_future *listening(void *arg, int err, uint64_t value)
{
    (void)arg;
    if (err) {
        fprintf(stderr, "sn-echo: cannot listen on %s:%u: %s\n", opts.host, opts.port,
                sn_strerror(err));
        return sn_failed(err);
    }
    struct sn_listener *l = (struct sn_listener *)(uintptr_t)value;
    printf("sn-echo: listening on %s:%u, %u cores (%s)\n", opts.host, sn_listener_port(l),
           sn_core_count(), opts.one_acceptor ? "one acceptor" : "SO_REUSEPORT");
    fflush(stdout);
    return SN_SUCCESS; /* started; the reactor closes the listener when it stops */
}

static struct sn_future *echo_start(void *arg)
{
    (void)arg;
    struct sn_listen_config cfg = {
        .host = opts.host,
        .port = (uint16_t)opts.port,
        .mode = opts.one_acceptor ? SN_ACCEPT_ONE_CORE : SN_ACCEPT_REUSEPORT,
        .max_conns_per_core = opts.max_conns,
        .limits = {.idle_ms = opts.idle_ms},
        .ops = &echo_ops,
    };
    return sn_then_wrapped(sn_listen(&cfg), listening, NULL);
}

static const char usage[] =
    "usage: sn-echo [--port N] [--listen ADDR] [--one-acceptor] [--max-conns N] [--idle-ms N]\n"
    "  --port N         TCP port (default 7000; 0 = any)\n"
    "  --listen ADDR    numeric address to listen on (default 127.0.0.1)\n"
    "  --one-acceptor   accept on one core and hand connections to the least-loaded core\n"
    "                   (default: one SO_REUSEPORT socket per core)\n"
    "  --max-conns N    connections per core, more are closed at once (default 0 = no limit)\n"
    "  --idle-ms N      close connections idle this long (default 0 = never)\n";

static int parse_args(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},    {"listen", required_argument, NULL, 'l'},
        {"one-acceptor", no_argument, NULL, 'o'},  {"max-conns", required_argument, NULL, 'm'},
        {"idle-ms", required_argument, NULL, 'i'}, {0, 0, 0, 0},
    };
    int c;
    uint64_t v;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (app_parse_range("sn-echo", "port", optarg, 0, 65535, &v) < 0)
                return SN_CONFIG_EXIT_USAGE;
            opts.port = (unsigned)v;
            break;
        case 'l': opts.host = optarg; break;
        case 'o': opts.one_acceptor = true; break;
        case 'm':
            if (app_parse_range("sn-echo", "max-conns", optarg, 0, 1u << 30, &v) < 0)
                return SN_CONFIG_EXIT_USAGE;
            opts.max_conns = (unsigned)v;
            break;
        case 'i':
            if (app_parse_range("sn-echo", "idle-ms", optarg, 0, 1u << 30, &v) < 0)
                return SN_CONFIG_EXIT_USAGE;
            opts.idle_ms = (unsigned)v;
            break;
        default: fputs(usage, stderr); return SN_CONFIG_EXIT_USAGE;
        }
    }
    return app_check_args("sn-echo", argc, argv, opts.host);
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
    struct sn_app app = {.name = "sn-echo", .start = echo_start};
    return sn_app_run(&cfg, &app); /* 0 after SIGINT/SIGTERM */
}
