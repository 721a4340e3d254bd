/*
 * The distributed word count (map / shuffle / reduce over the reactor's cores):
 *
 *  1. core 0 opens the file (sn_file_open/fstat) and creates one shard per core;
 *  2. map: the file is cut into nominal ranges ("pieces", 2 MiB by default); a word belongs
 *     to the piece that holds its first byte (wc_token.h), so no cut splits or repeats a
 *     word. Core i starts on piece i, then asks core 0 for the next one (a message; core 0
 *     alone keeps the cursor), reads it through io_uring (sn_file_read, two buffers so the
 *     next read is in flight while the current chunk is tokenized) and scans it with
 *     wc_scan, asking for the next piece ahead; a core slowed down by other work on its CPU
 *     simply takes fewer pieces.
 *     With `static_ranges` core i takes exactly 1/N of the file, piece i, and nothing else;
 *  3. shuffle: each word goes to the core the partitioner names for its bytes, as
 *     (word, count) pairs packed into 64 KiB batches sent with sn_call_on (at most a fixed
 *     number in flight per core: reading pauses until owners catch up); pairs the core owns
 *     itself are counted at once; owners add the counts into their own table. By default a
 *     core first combines its words in a local table (a MapReduce combiner) and ships one
 *     pair per distinct word when its reading is done (or the table holds 2^18 words), so
 *     the shuffle moves distinct words, not occurrences; at the end the words the core owns
 *     stay in its combiner, which then takes the other cores' pairs for them (wc_map.c,
 *     ship_final). `no_combine` ships every occurrence as it is read (count 1), to show
 *     what the shuffle costs;
 *  4. reduce: sn_map_reduce asks every core for its summary and its first K items in result
 *     order (every item with `all`); core 0 merges them and prints the result exactly as the
 *     reference does (wc_result.h).
 */
#ifndef WC_DIST_H
#define WC_DIST_H

#include <sn.h>

#include "wc_result.h"

#include <stdbool.h>
#include <stdio.h>

struct wc_core;

struct wc_job {
    /* Set by the caller before sn_run. */
    const char *path;
    const char *partitioner; /* sn_partition_from_string spec; N = the core count */
    size_t top;
    bool all;
    bool report;          /* print a "report:" line with words/s after the result */
    bool no_combine;      /* ship every occurrence instead of per-core combined counts */
    uint32_t combine_max; /* distinct words a combiner holds before shipping; 0: 2^18 */
    bool static_ranges;   /* one range per core instead of pieces handed out by core 0 */
    uint64_t piece_size;  /* bytes per piece; 0: WC_PIECE_DEFAULT */
    FILE *out;
    /* Filled during the run (core 0 unless noted). */
    struct sn_partition *part; /* owned: the caller frees it after sn_run (wc_job_free) */
    int fd;
    uint64_t size;
    struct sn_file_stat st;
    unsigned ncores;      /* cores the file is cut for (wc_job_plan) */
    uint64_t npieces;     /* nominal ranges the file is cut into */
    uint64_t body_pieces; /* the first ones, piece_size each; then the tail shrinks */
    uint64_t next_piece;  /* the next piece to hand out (core 0 only) */
    struct sn_sharded *shards;
    struct wc_core **parts;   /* per core, set by the reduce */
    uint64_t t0, ns;          /* start and elapsed time of the count */
    uint64_t t_map, t_reduce; /* when the map began and when it ended (all counted) */
    int err;
    struct wc_summary sum;
    char pieces_per_core[128];  /* "51,49": for the report, filled by the reduce */
    char map_ms_per_core[128];  /* "450.1,452.3": each core's map time */
    char read_ms_per_core[128]; /* each core's part of it until its last piece was read */
    char wait_ms_per_core[128]; /* "0.2,0.1": each core's time idle waiting for a piece */
    char cpu_ms_per_core[128];  /* each core's thread CPU time during its map */
    char loops_per_core[128];   /* each core's reactor loop turns so far (sn_metrics_core) */
    char sleeps_per_core[128];  /* each core's sleeps in io_uring so far */
};

#define WC_PIECE_DEFAULT (2u << 20)

/*
 * Cuts job->size bytes into pieces for n cores: sets ncores, npieces and body_pieces. Pure
 * (any thread); the run calls it on core 0 once the size is known, before the map starts.
 */
void wc_job_plan(struct wc_job *job, unsigned n);

/*
 * Nominal range [*lo, *hi) of piece i < npieces of a planned job (words belong to the piece holding
 * their first byte, wc_token.h): 1/N of the file per core with static ranges; else piece_size bytes
 * each, except the last 2N piece sizes of the file, cut into pieces that shrink (each a 1/(2N)
 * share of what is left, at least piece_size / 16) so the cores end their map at nearly the same
 * time. The pieces cover [0, size) in order, without gaps.
 */
void wc_job_piece(const struct wc_job *job, uint64_t i, uint64_t *lo, uint64_t *hi);

/* Initialises a job with the defaults (top 10, hash partitioner, stdout). */
void wc_job_init(struct wc_job *job, const char *path);

/* The app's main for sn_run(cfg, wc_dist_main, job): exit code 0, or 1 after a message. */
struct sn_future *wc_dist_main(void *arg);

/* Frees what the run left for the caller (the partitioner). Not on a core. */
void wc_job_free(struct wc_job *job);

#endif
