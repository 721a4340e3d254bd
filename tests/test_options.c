/* Tests for sn_config_parse (include/sn/config.h, reactor/options.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sn/config.h>
#include "reactor/options.h"

#define ARGV(...) ((char *[]){"prog", __VA_ARGS__, NULL})
#define ARGC(v)   ((int)(sizeof(v) / sizeof((v)[0])) - 1)

/* Runs the parser with stdout/stderr sent to /dev/null so error tests stay quiet. */
static int parse_quiet(struct sn_config *cfg, int *argc, char **argv, const char *usage)
{
    fflush(stdout);
    fflush(stderr);
    int out = dup(1), err = dup(2);
    FILE *null = fopen("/dev/null", "w");
    cr_assert_not_null(null);
    dup2(fileno(null), 1);
    dup2(fileno(null), 2);
    int rc = sn_config_parse(argc, argv, usage, cfg);
    fflush(stdout);
    fflush(stderr);
    dup2(out, 1);
    dup2(err, 2);
    close(out);
    close(err);
    fclose(null);
    return rc;
}

Test(options, defaults)
{
    struct sn_config cfg;
    char *argv[] = {"prog", NULL};
    int argc = 1;
    cr_assert_eq(sn_config_parse(&argc, argv, NULL, &cfg), SN_CONFIG_CONTINUE);
    cr_assert_eq(argc, 1);
    cr_assert_eq(cfg.smp, 0);
    cr_assert_null(cfg.cpuset);
    cr_assert_eq(cfg.idle_poll_us, SN_CONFIG_DEFAULT_IDLE_POLL_US);
    cr_assert_eq(cfg.io_poll_us, SN_CONFIG_DEFAULT_IO_POLL_US);
    cr_assert_eq(cfg.stall_ms, SN_CONFIG_DEFAULT_STALL_MS);
    cr_assert_not(cfg.unpinned);
    cr_assert_eq(cfg.sched_slice_us, 0);
}

Test(options, sched_slice_us)
{
    struct sn_config cfg;
    char **argv = ARGV("--sched-slice-us", "100", "x");
    int argc = 4;
    cr_assert_eq(sn_config_parse(&argc, argv, NULL, &cfg), SN_CONFIG_CONTINUE);
    cr_assert_eq(cfg.sched_slice_us, 100);
    cr_assert_eq(argc, 2);
    cr_assert_str_eq(argv[1], "x");
    char **argv2 = ARGV("--sched-slice-us=100000");
    argc = 2;
    cr_assert_eq(sn_config_parse(&argc, argv2, NULL, &cfg), SN_CONFIG_CONTINUE);
    cr_assert_eq(cfg.sched_slice_us, 100000);
}

Test(options, mesh_overflow_limit)
{
    struct sn_config cfg;
    char **argv = ARGV("--mesh-overflow-limit", "1000", "x");
    int argc = 4;
    cr_assert_eq(sn_config_parse(&argc, argv, NULL, &cfg), SN_CONFIG_CONTINUE);
    cr_assert_eq(cfg.mesh_overflow_limit, 1000);
    cr_assert_eq(argc, 2);
    cr_assert_str_eq(argv[1], "x");
    char **argv2 = ARGV("--mesh-overflow-limit=0");
    argc = 2;
    cr_assert_eq(sn_config_parse(&argc, argv2, NULL, &cfg), SN_CONFIG_CONTINUE);
    cr_assert_eq(cfg.mesh_overflow_limit, 0, "0: the default");
    sn_config_init(&cfg);
    cr_assert_eq(cfg.mesh_overflow_limit, 0);
}

Test(options, all_forms)
{
    struct sn_config cfg;
    char **argv = ARGV("--smp", "2", "--cpuset=0-1", "--idle-poll-us", "0", "--io-poll-us=7",
                       "--stall-ms=100", "--unpinned");
    int argc = ARGC(ARGV("--smp", "2", "--cpuset=0-1", "--idle-poll-us", "0", "--io-poll-us=7",
                         "--stall-ms=100", "--unpinned"));
    cr_assert_eq(sn_config_parse(&argc, argv, NULL, &cfg), SN_CONFIG_CONTINUE);
    cr_assert_eq(argc, 1);
    cr_assert_null(argv[1]);
    cr_assert_eq(cfg.smp, 2);
    cr_assert_str_eq(cfg.cpuset, "0-1");
    cr_assert_eq(cfg.idle_poll_us, 0);
    cr_assert_eq(cfg.io_poll_us, 7);
    cr_assert_eq(cfg.stall_ms, 100);
    cr_assert(cfg.unpinned);
}

/* An app's own defaults survive sn_config_parse_from unless the command line names them;
 * sn_config_parse starts from libsn's. */
Test(options, parse_from_keeps_the_apps_defaults)
{
    struct sn_config cfg;
    sn_config_init(&cfg);
    cfg.io_batch_us = 200;
    cfg.stall_ms = 7;
    char **argv = ARGV("--stall-ms", "9", "x");
    int argc = 4;
    cr_assert_eq(sn_config_parse_from(&argc, argv, NULL, &cfg), SN_CONFIG_CONTINUE);
    cr_assert_eq(cfg.io_batch_us, 200, "not on the command line: the app's value");
    cr_assert_eq(cfg.stall_ms, 9, "on the command line: overridden");
    cr_assert_eq(argc, 2);
    cr_assert_str_eq(argv[1], "x");
    char **off = ARGV("--io-batch-us=0");
    argc = 2;
    cr_assert_eq(sn_config_parse_from(&argc, off, NULL, &cfg), SN_CONFIG_CONTINUE);
    cr_assert_eq(cfg.io_batch_us, 0);
    cfg.io_batch_us = 200;
    char **none = ARGV("y");
    argc = 2;
    cr_assert_eq(sn_config_parse(&argc, none, NULL, &cfg), SN_CONFIG_CONTINUE);
    cr_assert_eq(cfg.io_batch_us, SN_CONFIG_DEFAULT_IO_BATCH_US, "sn_config_parse resets");
    cr_assert_eq(cfg.stall_ms, SN_CONFIG_DEFAULT_STALL_MS);
}

Test(options, io_batch_us)
{
    struct sn_config cfg;
    sn_config_init(&cfg);
    cr_assert_eq(cfg.io_batch_us, SN_CONFIG_DEFAULT_IO_BATCH_US);
    cr_assert_eq(cfg.io_batch_us, 0, "off unless asked for");
    char **argv = ARGV("--io-batch-us", "250");
    int argc = ARGC(ARGV("--io-batch-us", "250"));
    cr_assert_eq(sn_config_parse(&argc, argv, NULL, &cfg), SN_CONFIG_CONTINUE);
    cr_assert_eq(cfg.io_batch_us, 250);
    cr_assert_eq(argc, 1);
    char **bad = ARGV("--io-batch-us=-1");
    argc = ARGC(ARGV("--io-batch-us=-1"));
    cr_assert_eq(sn_config_parse(&argc, bad, NULL, &cfg), SN_CONFIG_EXIT_USAGE);
}

/* App options and operands stay, in order; libsn's are removed; "--" stops libsn. */
Test(options, compacts_argv_for_the_app)
{
    struct sn_config cfg;
    char *argv[] = {"sn-echo",  "--port", "7000",  "--smp", "1", "file",
                    "--port=8", "--",     "--smp", "9",     NULL};
    int argc = 10;
    cr_assert_eq(sn_config_parse(&argc, argv, NULL, &cfg), SN_CONFIG_CONTINUE);
    cr_assert_eq(cfg.smp, 1);
    cr_assert_eq(argc, 8);
    const char *want[] = {"sn-echo", "--port", "7000", "file", "--port=8", "--", "--smp", "9"};
    for (int i = 0; i < 8; i++)
        cr_assert_str_eq(argv[i], want[i]);
    cr_assert_null(argv[8]);
}

static void expect_usage_error(char **argv, int argc)
{
    struct sn_config cfg;
    cr_expect_eq(parse_quiet(&cfg, &argc, argv, NULL), SN_CONFIG_EXIT_USAGE, "%s %s", argv[1],
                 argc > 2 && argv[2] ? argv[2] : "");
}

Test(options, bad_values_exit_2)
{
    expect_usage_error(ARGV("--smp", "0"), 3);
    expect_usage_error(ARGV("--sched-slice-us", "100001"), 3);
    expect_usage_error(ARGV("--sched-slice-us", "-1"), 3);
    expect_usage_error(ARGV("--smp", "abc"), 3);
    expect_usage_error(ARGV("--smp", "-1"), 3);
    expect_usage_error(ARGV("--smp", "99999999999999999999"), 3);
    expect_usage_error(ARGV("--smp", ""), 3);
    expect_usage_error(ARGV("--smp=4x"), 2);
    expect_usage_error(ARGV("--smp"), 2);
    expect_usage_error(ARGV("--cpuset", "1-"), 3);
    expect_usage_error(ARGV("--cpuset", "0,,1"), 3);
    expect_usage_error(ARGV("--idle-poll-us", "20000000"), 3);
    expect_usage_error(ARGV("--io-poll-us", "-5"), 3);
    expect_usage_error(ARGV("--stall-ms", "1.5"), 3);
    expect_usage_error(ARGV("--unpinned=1"), 2);
    expect_usage_error(ARGV("--mesh-overflow-limit", "many"), 3);
    expect_usage_error(ARGV("--mesh-overflow-limit", "4294967296"), 3);
}

/* Captures what the parser prints to `fd` (1 or 2) into buf. */
static int parse_capture(int fd, char **argv, int argc, const char *usage, char *buf, size_t len)
{
    struct sn_config cfg;
    char path[] = "/tmp/sn_options_XXXXXX";
    int tmp = mkstemp(path);
    cr_assert_geq(tmp, 0);
    unlink(path);
    fflush(fd == 1 ? stdout : stderr);
    int saved = dup(fd);
    dup2(tmp, fd);
    int rc = sn_config_parse(&argc, argv, usage, &cfg);
    fflush(fd == 1 ? stdout : stderr);
    dup2(saved, fd);
    close(saved);
    ssize_t n = pread(tmp, buf, len - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    close(tmp);
    return rc;
}

Test(options, message_names_option_and_range)
{
    char buf[1024];
    cr_assert_eq(parse_capture(2, ARGV("--smp", "abc"), 3, NULL, buf, sizeof buf), 2);
    cr_assert(strstr(buf, "prog: --smp: 'abc'") != NULL, "got: %s", buf);
    cr_assert(strstr(buf, "1..4096") != NULL, "got: %s", buf);
}

Test(options, help_prints_app_usage_and_shared_help)
{
    char buf[4096];
    cr_assert_eq(parse_capture(1, ARGV("--port", "1", "--help"), 4, "usage: sn-echo [--port N]\n",
                               buf, sizeof buf),
                 0);
    cr_assert(strncmp(buf, "usage: sn-echo [--port N]\n", 26) == 0, "got: %s", buf);
    cr_assert(strstr(buf, "--smp N") != NULL);
    cr_assert(strstr(buf, "--cpuset LIST") != NULL);
    cr_assert(strstr(buf, "--idle-poll-us N") != NULL);
    cr_assert(strstr(buf, "--io-poll-us N") != NULL);
    cr_assert(strstr(buf, "--sched-slice-us N") != NULL);
    cr_assert(strstr(buf, "--stall-ms N") != NULL);
    cr_assert(strstr(buf, "--mesh-overflow-limit N") != NULL);
}

Test(options, version)
{
    char buf[256];
    cr_assert_eq(parse_capture(1, ARGV("--version"), 2, NULL, buf, sizeof buf), 0);
    cr_assert(strstr(buf, SN_VERSION_STRING) != NULL, "got: %s", buf);
}

Test(options, reject_extra)
{
    char *none[] = {"prog", NULL};
    cr_assert_eq(sn_config_reject_extra(1, none), SN_CONFIG_CONTINUE);
    char buf[256];
    char path[] = "/tmp/sn_options_XXXXXX";
    int tmp = mkstemp(path);
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    dup2(tmp, 2);
    int rc = sn_config_reject_extra(2, ARGV("--bogus"));
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ssize_t n = pread(tmp, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    close(tmp);
    cr_assert_eq(rc, SN_CONFIG_EXIT_USAGE);
    cr_assert(strstr(buf, "'--bogus'") != NULL, "got: %s", buf);
}

Test(options, parse_uint)
{
    unsigned v = 7;
    cr_assert_eq(sn__parse_uint("0", 0, 10, &v), 0);
    cr_assert_eq(v, 0);
    cr_assert_eq(sn__parse_uint("4294967295", 0, 4294967295u, &v), 0);
    cr_assert_eq(v, 4294967295u);
    cr_assert_eq(sn__parse_uint("4294967296", 0, 4294967295u, &v), -ERANGE);
    cr_assert_eq(sn__parse_uint("11", 0, 10, &v), -ERANGE);
    cr_assert_eq(sn__parse_uint(" 1", 0, 10, &v), -EINVAL);
    cr_assert_eq(sn__parse_uint(NULL, 0, 10, &v), -EINVAL);
    cr_assert_str_eq(sn__prog_name("/usr/bin/sn-echo"), "sn-echo");
    cr_assert_str_eq(sn__prog_name(NULL), "libsn");
}
