/* Command-line and exit-code helpers for the sample servers: see cli.h. */
#include "apps/common/cli.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int app_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || !isdigit((unsigned char)s[0]) || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

int app_parse_size(const char *s, uint64_t max, uint64_t *out)
{
    static const char units[] = "KMG";
    size_t n = strlen(s);
    char digits[32];
    unsigned shift = 0;
    const char *u = n ? strchr(units, toupper((unsigned char)s[n - 1])) : NULL;
    if (u && *u) {
        if (n - 1 >= sizeof digits)
            return -1;
        memcpy(digits, s, n - 1);
        digits[n - 1] = '\0';
        s = digits;
        shift = 10 * (unsigned)(u - units + 1);
    }
    uint64_t v;
    if (app_parse_u64(s, max >> shift, &v))
        return -1;
    *out = v << shift;
    return 0;
}

int app_parse_range(const char *prog, const char *name, const char *s, uint64_t min, uint64_t max,
                    uint64_t *out)
{
    uint64_t v;
    if (app_parse_u64(s, max, &v) || v < min) {
        fprintf(stderr, "%s: --%s wants a number from %" PRIu64 " to %" PRIu64 ", not '%s'\n", prog,
                name, min, max, s);
        return -1;
    }
    *out = v;
    return 0;
}

int app_parse_count(const char *prog, const char *name, const char *s, uint64_t max, uint64_t *out)
{
    return app_parse_range(prog, name, s, 1, max, out);
}

int app_check_operands(const char *prog, int argc, char **argv, int n, const char *what)
{
    if (argc - optind > n) {
        fprintf(stderr, "%s: unknown argument '%s'\n", prog, argv[optind + n]);
        return SN_CONFIG_EXIT_USAGE;
    }
    if (argc - optind < n) {
        fprintf(stderr, "%s: expected %s\n", prog, what ? what : "more arguments");
        return SN_CONFIG_EXIT_USAGE;
    }
    return SN_CONFIG_CONTINUE;
}

int app_check_args(const char *prog, int argc, char **argv, const char *host)
{
    int rc = app_check_operands(prog, argc, argv, 0, NULL);
    if (rc != SN_CONFIG_CONTINUE)
        return rc;
    struct sockaddr_storage a;
    socklen_t alen;
    if (sn_addr_parse(host, 0, &a, &alen) < 0) {
        fprintf(stderr, "%s: --listen wants a numeric IPv4/IPv6 address, not '%s'\n", prog, host);
        return SN_CONFIG_EXIT_USAGE;
    }
    return SN_CONFIG_CONTINUE;
}

int app_job_exit_code(const char *prog, int rc)
{
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", prog, sn_strerror(rc));
        return 1;
    }
    return rc;
}
