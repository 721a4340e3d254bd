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

#include <errno.h>
#include <getopt.h>
#include <signal.h>
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

static void listening(void *arg, int err, uint64_t value)
{
    (void)arg;
    if (err) {
        fprintf(stderr, "sn-echo: cannot listen on %s:%u: %s\n", opts.host, opts.port,
                sn_strerror(err));
        sn_stop(1);
        return;
    }
    struct sn_listener *l = (struct sn_listener *)(uintptr_t)value;
    printf("sn-echo: listening on %s:%u, %u cores (%s)\n", opts.host, sn_listener_port(l),
           sn_core_count(), opts.one_acceptor ? "one acceptor" : "SO_REUSEPORT");
    fflush(stdout);
}

static struct sn_future *echo_main(void *arg)
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
    sn_done(sn_listen(&cfg), listening, NULL);
    return sn_when_stopped(); /* serve until a signal */
}

static int parse_num(const char *name, const char *s, unsigned max, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v > max) {
        fprintf(stderr, "sn-echo: --%s wants a number from 0 to %u, not '%s'\n", name, max, s);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
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
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (parse_num("port", optarg, 65535, &opts.port) < 0)
                return SN_CONFIG_EXIT_USAGE;
            break;
        case 'l': opts.host = optarg; break;
        case 'o': opts.one_acceptor = true; break;
        case 'm':
            if (parse_num("max-conns", optarg, 1u << 30, &opts.max_conns) < 0)
                return SN_CONFIG_EXIT_USAGE;
            break;
        case 'i':
            if (parse_num("idle-ms", optarg, 1u << 30, &opts.idle_ms) < 0)
                return SN_CONFIG_EXIT_USAGE;
            break;
        default: fputs(usage, stderr); return SN_CONFIG_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sn-echo: unknown argument '%s'\n", argv[optind]);
        return SN_CONFIG_EXIT_USAGE;
    }
    struct sockaddr_storage a;
    socklen_t alen;
    if (sn_addr_parse(opts.host, 0, &a, &alen) < 0) {
        fprintf(stderr, "sn-echo: --listen wants a numeric IPv4/IPv6 address, not '%s'\n",
                opts.host);
        return SN_CONFIG_EXIT_USAGE;
    }
    return SN_CONFIG_CONTINUE;
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
    rc = sn_run(&cfg, echo_main, NULL);
    if (rc < 0) {
        fprintf(stderr, "sn-echo: %s\n", sn_strerror(rc));
        return 1;
    }
    /* A stop by signal is the normal way to end a server. */
    if (rc == 128 + SIGINT || rc == 128 + SIGTERM)
        return 0;
    return rc;
}
