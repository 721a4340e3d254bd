/* The distributed word count (see wc_dist.h). */
#include "wc_dist.h"

#include "wc_map.h"

#include <sn.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void wc_job_init(struct wc_job *job, const char *path)
{
    memset(job, 0, sizeof *job);
    job->path = path;
    job->partitioner = "hash";
    job->top = 10;
    job->out = stdout;
    job->fd = -1;
}

void wc_job_free(struct wc_job *job)
{
    sn_partition_destroy(job->part);
    job->part = NULL;
    free(job->parts);
    job->parts = NULL;
}

/*
 * Bytes of a tail piece starting with `rem` bytes left: a 1/(2N) share of what is left
 * (guided self-scheduling), between piece_size / 16 and piece_size. Pieces of the full size
 * until the tail would leave a core idle for up to two of them at the end (its current one
 * and the one it claimed ahead) while another still works; shrinking pieces bound that to
 * a few small ones.
 */
static uint64_t tail_piece(uint64_t rem, unsigned n, uint64_t p)
{
    uint64_t len = rem / (2 * (uint64_t)n), min = p / 16 ? p / 16 : 1;
    len = len < min ? min : len > p ? p : len;
    return len < rem ? len : rem;
}

static uint64_t piece_size(const struct wc_job *job)
{
    return job->piece_size ? job->piece_size : WC_PIECE_DEFAULT;
}

void wc_job_plan(struct wc_job *job, unsigned n)
{
    job->ncores = n;
    if (job->static_ranges) {
        job->npieces = job->body_pieces = n;
        return;
    }
    uint64_t p = piece_size(job), tail = 2 * (uint64_t)n * p;
    job->body_pieces = job->size > tail ? (job->size - tail) / p : 0;
    job->npieces = job->body_pieces;
    for (uint64_t at = job->body_pieces * p; at < job->size; job->npieces++)
        at += tail_piece(job->size - at, n, p);
}

void wc_job_piece(const struct wc_job *job, uint64_t i, uint64_t *lo, uint64_t *hi)
{
    unsigned n = job->ncores;
    if (job->static_ranges) {
        *lo = wc_nominal(job->size, (unsigned)i, n);
        *hi = wc_nominal(job->size, (unsigned)i + 1, n);
        return;
    }
    uint64_t p = piece_size(job);
    if (i < job->body_pieces) {
        *lo = i * p;
        *hi = *lo + p;
        return;
    }
    uint64_t at = job->body_pieces * p; /* a few dozen steps at most */
    for (uint64_t k = job->body_pieces; k < i && at < job->size; k++)
        at += tail_piece(job->size - at, n, p);
    *lo = at;
    *hi = at + tail_piece(job->size - at, n, p);
}

/* ---- reduce ---- */

/* Runs on every core: sorts its counts, keeps its first K items (all with --all). */
static struct sn_future *collect(void *arg)
{
    struct wc_job *job = arg;
    struct wc_core *c = sn_sharded_local(job->shards);
    int rc = wc_core_items(c, job->all ? SIZE_MAX : job->top);
    return rc < 0 ? sn_failed(rc) : sn_ready((uintptr_t)c);
}

/* On core 0: files each core's part under its id. */
static uint64_t gather(void *arg, uint64_t acc, uint64_t value)
{
    struct wc_job *job = arg;
    struct wc_core *c = (struct wc_core *)(uintptr_t)value;
    job->parts[c->id] = c;
    return acc + 1;
}

/* Appends ",x" (or "x" first) to a report field, quietly truncated when it is full. */
static void field_add(char *buf, size_t cap, const char *fmt, double v)
{
    size_t at = strlen(buf);
    if (at + 2 < cap)
        snprintf(buf + at, cap - at, fmt, at ? "," : "", v);
}

static void per_core_stats(struct wc_job *job, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        const struct wc_core *c = job->parts[i];
        field_add(job->pieces_per_core, sizeof job->pieces_per_core, "%s%.0f", (double)c->pieces);
        field_add(job->map_ms_per_core, sizeof job->map_ms_per_core, "%s%.1f",
                  (double)c->map_ns / 1e6);
        field_add(job->read_ms_per_core, sizeof job->read_ms_per_core, "%s%.1f",
                  (double)c->read_ns / 1e6);
        field_add(job->wait_ms_per_core, sizeof job->wait_ms_per_core, "%s%.1f",
                  (double)c->claim_wait_ns / 1e6);
        field_add(job->cpu_ms_per_core, sizeof job->cpu_ms_per_core, "%s%.1f",
                  (double)c->cpu_ns / 1e6);
        struct sn_core_metrics m;
        if (sn_metrics_core(i, &m) == 0) {
            field_add(job->loops_per_core, sizeof job->loops_per_core, "%s%.0f", (double)m.loops);
            field_add(job->sleeps_per_core, sizeof job->sleeps_per_core, "%s%.0f",
                      (double)m.sleeps);
        }
    }
}

static struct sn_future *print_result(void *arg, uint64_t unused)
{
    struct wc_job *job = arg;
    unsigned n = sn_core_count();
    struct wc_item **lists = calloc(n, sizeof *lists);
    size_t *counts = calloc(n, sizeof *counts);
    struct wc_item *merged = NULL;
    size_t nmerged = 0;
    (void)unused;
    int rc = lists && counts ? 0 : -ENOMEM;
    for (unsigned i = 0; i < n && rc == 0; i++) {
        lists[i] = job->parts[i]->items;
        counts[i] = job->parts[i]->nitems;
        wc_summary_add(&job->sum, &job->parts[i]->sum);
    }
    if (rc == 0)
        per_core_stats(job, n);
    if (rc == 0)
        rc = wc_items_merge(lists, counts, n, job->all ? SIZE_MAX : job->top, &merged, &nmerged);
    job->ns = sn_now_ns() - job->t0;
    if (rc == 0)
        rc = wc_print(job->out, &job->sum, job->top, merged, nmerged, job->all);
    free(merged);
    free(lists);
    free(counts);
    return rc < 0 ? sn_failed(rc) : sn_ready(0);
}

/* ---- the run on core 0 ---- */

static struct sn_future *reduce(void *arg, uint64_t unused)
{
    struct wc_job *job = arg;
    (void)unused;
    job->t_reduce = sn_now_ns();
    job->parts = calloc(sn_core_count(), sizeof *job->parts);
    if (!job->parts)
        return sn_failed(-ENOMEM);
    return sn_then(sn_map_reduce(collect, job, 0, gather, job), print_result, job);
}

static struct sn_future *map_shuffle(void *arg, uint64_t unused)
{
    struct wc_job *job = arg;
    (void)unused;
    job->t_map = sn_now_ns();
    return sn_then(sn_sharded_invoke_on_all(job->shards, wc_core_scan, job), reduce, job);
}

static struct sn_future *stat_done(void *arg, uint64_t unused)
{
    struct wc_job *job = arg;
    (void)unused;
    if (S_ISDIR(job->st.mode))
        return sn_failed(-EISDIR);
    if (!S_ISREG(job->st.mode))
        return sn_failed(-EINVAL); /* ranges need a size: a regular file */
    job->size = job->st.size;
    wc_job_plan(job, sn_core_count());
    /* Core i starts on piece i without asking (wc_core_scan); claims begin after those. */
    job->next_piece = job->npieces < sn_core_count() ? job->npieces : sn_core_count();
    struct sn_future *f = sn_sharded_start(wc_core_new, wc_core_free, job, &job->shards);
    return sn_then(f, map_shuffle, job);
}

static struct sn_future *opened(void *arg, uint64_t fd)
{
    struct wc_job *job = arg;
    job->fd = (int)fd;
    return sn_then(sn_file_fstat(job->fd, &job->st), stat_done, job);
}

static struct sn_future *exit_code(void *arg, int err, uint64_t value)
{
    struct wc_job *job = arg;
    (void)err, (void)value;
    if (job->err) {
        fprintf(stderr, "sn-pipeline: %s: %s\n", job->path, sn_strerror(job->err));
        return sn_ready(1);
    }
    if (job->report) {
        double s = (double)job->ns / 1e9;
        fprintf(
            job->out,
            "report: mode=reactor cores=%u bytes=%" PRIu64 " words=%" PRIu64 " seconds=%.6f "
            "words_per_s=%.0f setup_s=%.6f map_s=%.6f reduce_s=%.6f pieces=%" PRIu64
            " pieces_per_core=%s map_ms_per_core=%s read_ms_per_core=%s wait_ms_per_core=%s"
            " map_cpu_ms_per_core=%s loops_per_core=%s sleeps_per_core=%s\n",
            sn_core_count(), job->size, job->sum.total, s, s > 0 ? (double)job->sum.total / s : 0.0,
            (double)(job->t_map - job->t0) / 1e9, (double)(job->t_reduce - job->t_map) / 1e9,
            (double)(job->t0 + job->ns - job->t_reduce) / 1e9, job->npieces, job->pieces_per_core,
            job->map_ms_per_core, job->read_ms_per_core, job->wait_ms_per_core,
            job->cpu_ms_per_core, job->loops_per_core, job->sleeps_per_core);
        fflush(job->out);
    }
    return sn_ready(0);
}

static struct sn_future *close_file(void *arg, int err, uint64_t value)
{
    struct wc_job *job = arg;
    (void)value;
    if (err && !job->err)
        job->err = err;
    if (job->fd < 0)
        return exit_code(job, 0, 0);
    int fd = job->fd;
    job->fd = -1;
    return sn_then_wrapped(sn_file_close(fd), exit_code, job);
}

static struct sn_future *cleanup(void *arg, int err, uint64_t value)
{
    struct wc_job *job = arg;
    (void)value;
    job->err = err;
    if (!job->shards)
        return close_file(job, 0, 0);
    struct sn_sharded *s = job->shards;
    job->shards = NULL;
    return sn_then_wrapped(sn_sharded_stop(s), close_file, job);
}

struct sn_future *wc_dist_main(void *arg)
{
    struct wc_job *job = arg;
    char msg[160];
    job->t0 = sn_now_ns();
    int rc =
        sn_partition_from_string(job->partitioner, sn_core_count(), msg, sizeof msg, &job->part);
    if (rc == 0 && sn_partition_kind(job->part) == SN_PARTITION_ROUND_ROBIN) {
        snprintf(msg, sizeof msg, "round-robin ignores the key: every word needs one owner");
        rc = -EINVAL;
    }
    if (rc < 0) {
        fprintf(stderr, "sn-pipeline: --partitioner %s: %s\n", job->partitioner, msg);
        return sn_ready(2);
    }
    struct sn_future *f = sn_then(sn_file_open(job->path, O_RDONLY, 0), opened, job);
    return sn_then_wrapped(f, cleanup, job);
}
