/* Command-line and exit-code helpers for the sample servers: see cli.h. */
#include "apps/common/cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

int app_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v > max)
        return -1;
    *out = v;
    return 0;
}

int app_parse_count(const char *prog, const char *name, const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v;
    if (app_parse_u64(s, max, &v) || v == 0) {
        fprintf(stderr, "%s: --%s wants a number from 1 to %" PRIu64 ", not '%s'\n", prog, name,
                max, s);
        return -1;
    }
    *out = v;
    return 0;
}

int app_check_args(const char *prog, int argc, char **argv, const char *host)
{
    if (optind < argc) {
        fprintf(stderr, "%s: unknown argument '%s'\n", prog, argv[optind]);
        return SN_CONFIG_EXIT_USAGE;
    }
    struct sockaddr_storage a;
    socklen_t alen;
    if (sn_addr_parse(host, 0, &a, &alen) < 0) {
        fprintf(stderr, "%s: --listen wants a numeric IPv4/IPv6 address, not '%s'\n", prog, host);
        return SN_CONFIG_EXIT_USAGE;
    }
    return SN_CONFIG_CONTINUE;
}

int app_exit_code(const char *prog, int rc)
{
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", prog, sn_strerror(rc));
        return 1;
    }
    if (rc == 128 + SIGINT || rc == 128 + SIGTERM)
        return 0;
    return rc;
}
