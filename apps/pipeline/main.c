/*
 * sn-pipeline: word count over a text file as a map / shuffle / reduce across the reactor's
 * cores (see wc_dist.h), with a single-threaded reference to compare with, and the Zipf text
 * generator the tests and the benchmark feed it.
 *
 *   sn-pipeline [--top K] [--all] [--partitioner SPEC] [--report] [libsn options] FILE
 *   sn-pipeline --reference [--top K] [--all] [--report] FILE
 *   sn-pipeline --generate SIZE [--seed N] [--vocab N] [--long-gap N] [--output FILE]
 *
 * The output of a count (format in wc_result.h) is byte-identical between the two modes and
 * for every core count and partitioner.
 */
#include <sn.h>

#include "apps/common/cli.h"
#include "wc_dist.h"
#include "wc_ref.h"
#include "wc_zipf.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: sn-pipeline [options] [libsn options] FILE\n"
    "       sn-pipeline --generate SIZE [--seed N] [--vocab N] [--long-gap N] [--output FILE]\n"
    "Counts the words of FILE (maximal runs of ASCII letters, digits and bytes >= 0x80;\n"
    "case-sensitive) on every core and prints totals, a digest and the most frequent words.\n"
    "  --top K             show the K most frequent words (default 10)\n"
    "  --all               also list every word with its count\n"
    "  --partitioner SPEC  which core owns a word: hash (default), jump, rendezvous,\n"
    "                      ketama-xxh3:N, range:str:m,... (N must be the core count)\n"
    "  --piece-size SIZE   cores take the file in pieces of SIZE bytes from core 0 (2M)\n"
    "  --static            each core takes 1/N of the file instead, one range\n"
    "  --no-combine        ship every occurrence to its owner instead of per-core counts\n"
    "  --combine-max N     ship a core's counts when it holds N distinct words (2^18)\n"
    "  --reference         count single-threaded without the reactor (the oracle)\n"
    "  --report            end with a line 'report: ... words_per_s=...'\n"
    "  --generate SIZE     write SIZE bytes (suffix K, M, G: powers of 1024) of Zipf text\n"
    "  --seed N, --vocab N, --long-gap N   generator seed (default 1), vocabulary size\n"
    "                      (default 50000), mean words between very long words (default\n"
    "                      100000, 0: none)\n"
    "  --output FILE       where --generate writes (default stdout)\n";

struct opts {
    struct wc_job job;
    bool reference, generate;
    uint64_t gen_size;
    struct wc_zipf_opts zipf;
    const char *output;
};

static int bad(const char *name, const char *value, const char *want)
{
    fprintf(stderr, "sn-pipeline: --%s wants %s, not '%s'\n", name, want, value);
    return SN_CONFIG_EXIT_USAGE;
}

/* A number, or with `suffix` a size with an optional K/M/G suffix; -1 when malformed or > max. */
static int parse_u64(const char *s, uint64_t max, bool suffix, uint64_t *out)
{
    return suffix ? app_parse_size(s, max, out) : app_parse_u64(s, max, out);
}

static int parse_opts(struct opts *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"top", required_argument, NULL, 't'},
        {"all", no_argument, NULL, 'a'},
        {"partitioner", required_argument, NULL, 'p'},
        {"reference", no_argument, NULL, 'r'},
        {"report", no_argument, NULL, 'R'},
        {"generate", required_argument, NULL, 'g'},
        {"seed", required_argument, NULL, 's'},
        {"vocab", required_argument, NULL, 'v'},
        {"long-gap", required_argument, NULL, 'l'},
        {"output", required_argument, NULL, 'o'},
        {"no-combine", no_argument, NULL, 'n'},
        {"static", no_argument, NULL, 'S'},
        {"piece-size", required_argument, NULL, 'P'},
        {"combine-max", required_argument, NULL, 'c'},
        {0, 0, 0, 0},
    };
    uint64_t v;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 't':
            if (parse_u64(optarg, SIZE_MAX, false, &v) < 0)
                return bad("top", optarg, "a count");
            o->job.top = (size_t)v;
            break;
        case 'a': o->job.all = true; break;
        case 'p': o->job.partitioner = optarg; break;
        case 'r': o->reference = true; break;
        case 'R': o->job.report = true; break;
        case 'n': o->job.no_combine = true; break;
        case 'S': o->job.static_ranges = true; break;
        case 'P':
            if (parse_u64(optarg, 1ull << 40, true, &v) < 0 || v == 0)
                return bad("piece-size", optarg, "a size from 1 to 1T (suffix K, M or G)");
            o->job.piece_size = v;
            break;
        case 'c':
            if (parse_u64(optarg, UINT32_MAX, false, &v) < 0 || v == 0)
                return bad("combine-max", optarg, "a number from 1 to 4294967295");
            o->job.combine_max = (uint32_t)v;
            break;
        case 'g':
            if (parse_u64(optarg, 1ull << 40, true, &o->gen_size) < 0)
                return bad("generate", optarg, "a size up to 1T (suffix K, M or G)");
            o->generate = true;
            break;
        case 's':
            if (parse_u64(optarg, UINT64_MAX, false, &o->zipf.seed) < 0)
                return bad("seed", optarg, "a number");
            break;
        case 'v':
            if (parse_u64(optarg, 1u << 24, false, &v) < 0 || v == 0)
                return bad("vocab", optarg, "a number from 1 to 16777216");
            o->zipf.vocab = (uint32_t)v;
            break;
        case 'l':
            if (parse_u64(optarg, UINT32_MAX / 2, false, &v) < 0)
                return bad("long-gap", optarg, "a number up to 2147483647");
            o->zipf.long_gap = (uint32_t)v;
            break;
        case 'o': o->output = optarg; break;
        default: fputs(usage, stderr); return SN_CONFIG_EXIT_USAGE;
        }
    }
    int rc = app_check_operands("sn-pipeline", argc, argv, o->generate ? 0 : 1,
                                "one input FILE (see --help)");
    if (rc != SN_CONFIG_CONTINUE)
        return rc;
    if (!o->generate)
        o->job.path = argv[optind];
    return 0;
}

static int generate(const struct opts *o)
{
    int rc = o->output ? wc_zipf_write_file(&o->zipf, o->gen_size, o->output)
                       : wc_zipf_write_fd(&o->zipf, o->gen_size, 1);
    if (rc < 0) {
        fprintf(stderr, "sn-pipeline: --generate: %s\n", sn_strerror(rc));
        return 1;
    }
    return 0;
}

/* The single-threaded oracle: same output format, same report line. */
static int reference(const struct wc_job *job)
{
    struct wc_ref r;
    uint64_t bytes = 0, t0 = sn_now_ns();
    int rc = wc_ref_count_file(job->path, &r, &bytes);
    double s = (double)(sn_now_ns() - t0) / 1e9;
    if (rc == 0)
        rc = wc_print(stdout, &r.sum, job->top, r.items, r.n, job->all);
    if (rc == 0 && job->report)
        printf("report: mode=reference cores=1 bytes=%" PRIu64 " words=%" PRIu64
               " seconds=%.6f words_per_s=%.0f\n",
               bytes, r.sum.total, s, s > 0 ? (double)r.sum.total / s : 0.0);
    wc_ref_free(&r);
    if (rc < 0) {
        fprintf(stderr, "sn-pipeline: %s: %s\n", job->path, sn_strerror(rc));
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
    static struct opts o;
    wc_job_init(&o.job, NULL);
    wc_zipf_opts_default(&o.zipf, 1);
    rc = parse_opts(&o, argc, argv);
    if (rc != 0)
        return rc;
    if (o.generate)
        return generate(&o);
    if (o.reference)
        return reference(&o.job);
    rc = sn_run(&cfg, wc_dist_main, &o.job);
    wc_job_free(&o.job);
    return app_job_exit_code("sn-pipeline", rc);
}
