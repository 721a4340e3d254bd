/*
 * Command-line and exit-code helpers shared by the sample servers (apps/<name>/main.c). They
 * go into libsnapps.a like every non-main app file. Called from main() on the main thread,
 * before or after sn_run; messages go to stderr prefixed with "<prog>: ".
 */
#ifndef SN_APPS_COMMON_CLI_H
#define SN_APPS_COMMON_CLI_H

#include <sn.h>
#include <stdint.h>

/* A plain decimal number from 0 to max (no sign, no suffix, nothing after): 0, or -1. */
int app_parse_u64(const char *s, uint64_t max, uint64_t *out);

/*
 * A size: a plain decimal number, optionally with a K, M or G suffix (either case: KiB, MiB,
 * GiB), at most max bytes. 0, or -1 (no message: the caller says what it wants).
 */
int app_parse_size(const char *s, uint64_t max, uint64_t *out);

/*
 * An option's value: a plain decimal number from min to max. 0, or -1 after the message
 * "<prog>: --<name> wants a number from <min> to <max>, not '<s>'".
 */
int app_parse_range(const char *prog, const char *name, const char *s, uint64_t min, uint64_t max,
                    uint64_t *out);

/* A count option's value: app_parse_range from 1 to max. */
int app_parse_count(const char *prog, const char *name, const char *s, uint64_t max, uint64_t *out);

/*
 * What is left once getopt_long is done must be exactly n operands (argv[optind] on): one
 * more is rejected with "<prog>: unknown argument '<arg>'", fewer with "<prog>: expected
 * <what>". SN_CONFIG_CONTINUE, or SN_CONFIG_EXIT_USAGE after the message.
 */
int app_check_operands(const char *prog, int argc, char **argv, int n, const char *what);

/*
 * The servers' tail: no operands (app_check_operands), and a --listen `host` that is a
 * numeric IPv4/IPv6 address. SN_CONFIG_CONTINUE, or SN_CONFIG_EXIT_USAGE after a message.
 */
int app_check_args(const char *prog, int argc, char **argv, const char *host);

/*
 * The exit code of a batch app (one that ends by itself) for sn_run's result `rc`: 1 (after
 * a message) when it failed to run, else rc (128 + N when signal N stopped it early).
 */
int app_job_exit_code(const char *prog, int rc);

#endif
