/*
 * sn-echo: a TCP echo server on every core, one fiber per connection (sn_serve). Each fiber
 * writes back what it reads; when the client half-closes, its reads end with SN_EOF, the
 * fiber returns and libsn closes the connection once the rest of the echo has left. A client
 * that does not read is held back by libsn: past limits.output_high the connection stops
 * receiving, so the fiber waits in its read. Runs until SIGINT/SIGTERM, then exits 0.
 *
 *   sn-echo [--port N] [--listen ADDR] [--one-acceptor] [--max-conns N] [--idle-ms N]
 *           [libsn options: --smp, --cpuset, --unpinned, ...]
 */
#include <sn.h>

#include <getopt.h>
#include <stdio.h>

#include "apps/common/cli.h"

static struct sn_serve_config serve_cfg = {.listen = {.port = 7000}};

static int echo(struct sn_conn *conn, void *arg)
{
    (void)arg;
    struct sn_slice in;
    int rc;
    while ((rc = sn_conn_read_some(conn, &in)) == 0)
        if ((rc = sn_conn_write_input(conn, in.data, in.len)) < 0) /* lends, no copy */
            return rc;
    return rc == SN_EOF ? 0 : rc;
}

static struct sn_future *serving(void *arg, int err, uint64_t value)
{
    (void)arg;
    struct sn_listen_config *l = &serve_cfg.listen;
    if (err) {
        fprintf(stderr, "sn-echo: cannot listen on %s:%u: %s\n", l->host, l->port,
                sn_strerror(err));
        return sn_failed(err);
    }
    struct sn_server *srv = (struct sn_server *)(uintptr_t)value;
    printf("sn-echo: listening on %s:%u, %u cores (%s)\n", l->host,
           sn_listener_port(sn_server_listener(srv)), sn_core_count(),
           l->mode == SN_ACCEPT_ONE_CORE ? "one acceptor" : "SO_REUSEPORT");
    fflush(stdout);
    return SN_SUCCESS; /* started; libsn closes the server when the run stops */
}

static struct sn_future *echo_start(void *arg)
{
    (void)arg;
    return sn_then_wrapped(sn_serve(&serve_cfg, echo, NULL), serving, NULL);
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
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},    {"listen", required_argument, NULL, 'l'},
        {"one-acceptor", no_argument, NULL, 'o'},  {"max-conns", required_argument, NULL, 'm'},
        {"idle-ms", required_argument, NULL, 'i'}, {0, 0, 0, 0},
    };
    struct sn_listen_config *l = &serve_cfg.listen;
    l->host = SN_NET_DEFAULT_HOST;
    uint64_t v;
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        if (c == 'p' && app_parse_range("sn-echo", "port", optarg, 0, 65535, &v) == 0)
            l->port = (uint16_t)v;
        else if (c == 'l')
            l->host = optarg;
        else if (c == 'o')
            l->mode = SN_ACCEPT_ONE_CORE;
        else if (c == 'm' && app_parse_range("sn-echo", "max-conns", optarg, 0, 1u << 30, &v) == 0)
            l->max_conns_per_core = (unsigned)v;
        else if (c == 'i' && app_parse_range("sn-echo", "idle-ms", optarg, 0, 1u << 30, &v) == 0)
            l->limits.idle_ms = (unsigned)v;
        else {
            if (c == '?')
                fputs(usage, stderr);
            return SN_CONFIG_EXIT_USAGE;
        }
    }
    return app_check_args("sn-echo", argc, argv, l->host);
}

int main(int argc, char **argv)
{
    struct sn_config cfg;
    int rc = sn_config_parse(&argc, argv, usage, &cfg);
    if (rc == SN_CONFIG_CONTINUE)
        rc = parse_args(argc, argv);
    if (rc != SN_CONFIG_CONTINUE)
        return rc;
    struct sn_app app = {.name = "sn-echo", .start = echo_start};
    return sn_app_run(&cfg, &app); /* 0 after SIGINT/SIGTERM */
}
