/*
 * A loading core reads, checks and parses the body of one file (kv_snap_load_int.h tells the
 * whole story): 1 MiB chunks, KV_SNAP_QUEUE reads in flight and at most WINDOW chunks ahead of
 * the parser; the body is hashed in file order, a slice just ahead of the parser, and the
 * hashed part parsed at once, a piece per loop turn, each record handed to
 * kv_load_take_record. Once every chunk is in and parsed, the last checks (body checksum,
 * record count) decide the file's fate.
 */
#include "kv_snap_load_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

static void read_more(struct loader *l);
static void pump(struct loader *l);

/*
 * The chunk buffers: WINDOW of them in one region of huge pages, made once per core and reused
 * for every chunk, so a read's pages are pinned a huge page at a time (with 4 KiB pages,
 * pinning the 256 pages of each 1 MiB read was 5% of a load's samples) and fault in once.
 * A record longer than the window reads on into buffers of its own, freed once passed.
 */
static int buffers_make(struct loader *l)
{
    size_t bytes = WINDOW * KV_SNAP_CHUNK;
    if (l->region)
        return 0;
    l->region = aligned_alloc(KV_SNAP_HUGE_PAGE, bytes);
    if (!l->region)
        return -ENOMEM;
    (void)madvise(l->region, bytes, MADV_HUGEPAGE); /* a hint: 4 KiB pages work too */
    for (unsigned i = 0; i < WINDOW; i++)
        l->pool[l->npool++] = l->region + (size_t)i * KV_SNAP_CHUNK;
    return 0;
}

static bool in_region(const struct loader *l, const char *chunk)
{
    return l->region && (uintptr_t)chunk - (uintptr_t)l->region < WINDOW * KV_SNAP_CHUNK;
}

static char *buffer_get(struct loader *l)
{
    return l->npool ? l->pool[--l->npool] : kv_snap_alloc(KV_SNAP_CHUNK);
}

/* The parser is done with a chunk: a buffer of the region serves a later read. */
static void pool_put(void *arg, char *chunk)
{
    struct loader *l = arg;
    if (in_region(l, chunk))
        l->pool[l->npool++] = chunk;
    else
        free(chunk);
}

void kv_load_buffers_free(struct loader *l)
{
    free(l->region);
    l->region = NULL;
    l->npool = 0;
}

/* Every record was read and every chunk hashed: the last checks, then the commit. */
static void file_read(struct loader *l)
{
    char why[KV_SNAP_WHY_MAX];
    if (XXH3_64bits_digest(l->hash) != l->h.body_hash) {
        kv_load_file_failed(l, "body checksum mismatch: corrupted");
        return;
    }
    if (l->parser.records != l->h.items) {
        snprintf(why, sizeof why,
                 "%" PRIu64 " records where the header says %" PRIu64 ": corrupted",
                 l->parser.records, l->h.items);
        kv_load_file_failed(l, why);
        return;
    }
    kv_snap_close_fd(l->fd);
    l->fd = -1;
    kv_load_link_piece(l);
}

static void pump_yielded(void *arg, int err, uint64_t value)
{
    (void)value;
    struct loader *l = arg;
    l->yielding = false;
    if (err) {
        l->read_err = l->read_err ? l->read_err : err;
        snprintf(l->bad, sizeof l->bad, "cannot load it: %s", sn_strerror(err));
    }
    pump(l);
}

/*
 * Hashes the next HASH_SLICE bytes of the body when they have arrived, and lets the parser at
 * them: false when they have not. Hashing just ahead of the parser, rather than whole chunks
 * as they arrive, leaves the bytes in the cache for the parser (a chunk hashed whole had left
 * the cache by the time its records were parsed).
 */
static bool hash_more(struct loader *l)
{
    if (l->read_err || l->hashed >= l->nchunks || !l->ready[l->hashed])
        return false;
    size_t clen = l->parser.clen[l->hashed];
    size_t n = clen - l->hashed_off < HASH_SLICE ? clen - l->hashed_off : HASH_SLICE;
    XXH3_64bits_update(l->hash, l->chunk[l->hashed] + l->hashed_off, n);
    l->hashed_bytes += n;
    l->hashed_off += n;
    if (l->hashed_off == clen) {
        l->hashed++;
        l->hashed_off = 0;
    }
    kv_snap_parser_avail(&l->parser, l->hashed_bytes);
    return true;
}

/* Parses what has arrived (a piece per turn); ends the file once nothing is in flight. */
static void pump(struct loader *l)
{
    if (l->yielding)
        return;
    int rc = 1;
    char why[KV_SNAP_WHY_MAX];
    for (unsigned n = 0; n < PIECE_ITEMS && rc > 0 && !l->bad[0] && !l->read_err; n++) {
        struct mc_item_image im;
        while ((rc = kv_snap_parse_next(&l->parser, &im, why)) == -EAGAIN && hash_more(l))
            ;
        if (rc > 0 && kv_load_take_record(l, &im) < 0) {
            snprintf(l->bad, sizeof l->bad, "cannot load it: %s", sn_strerror(-ENOMEM));
            rc = -ENOMEM;
        } else if (rc < 0 && rc != -EAGAIN) {
            snprintf(l->bad, sizeof l->bad, "%s", why);
        }
    }
    if (l->bad[0] || l->read_err) { /* the file fails once its reads are back */
        l->next_read = l->nchunks;
        if (l->reads_inflight > 0)
            return;
        if (l->read_err == -ECANCELED)
            kv_load_file_error(l, "cannot read it", l->read_err);
        else if (l->bad[0])
            kv_load_file_failed(l, l->bad);
        else
            kv_load_file_error(l, "cannot read it", l->read_err);
        return;
    }
    read_more(l); /* the parser may have moved on */
    if (rc > 0) {
        l->yielding = true;
        sn_done(sn_yield(), pump_yielded, l);
        return;
    }
    if (rc == 0)
        file_read(l);
    /* -EAGAIN: a read completion comes back here */
}

struct chunk_read {
    struct loader *l;
    unsigned i;
    size_t len;
};

static void chunk_read(void *arg, int err, uint64_t value)
{
    struct chunk_read *cr = arg;
    struct loader *l = cr->l;
    unsigned i = cr->i;
    size_t len = cr->len;
    free(cr);
    l->reads_inflight--;
    if (!err && value != len)
        err = -EIO; /* the file shrank under us */
    if (err && !l->read_err)
        l->read_err = err;
    if (!err)
        l->ready[i] = true;
    read_more(l);
    pump(l);
}

static void read_more(struct loader *l)
{
    uint64_t padded = l->size - KV_SNAP_ALIGN;
    /* Reused buffers, at most WINDOW chunks ahead of the parser: memory stays bounded and
     * warm (a fresh buffer costs a page fault per page). A record bigger than the window
     * (-I allows 1 GiB) reads on to its end, or the parser would wait for it forever. */
    while (!l->read_err && !l->bad[0] && l->next_read < l->nchunks &&
           l->reads_inflight < KV_SNAP_QUEUE &&
           (l->next_read < l->parser.ci + WINDOW ||
            (uint64_t)l->next_read * KV_SNAP_CHUNK < l->parser.want)) {
        unsigned i = l->next_read++;
        uint64_t at = (uint64_t)i * KV_SNAP_CHUNK;
        size_t len = padded - at < KV_SNAP_CHUNK ? (size_t)(padded - at) : KV_SNAP_CHUNK;
        struct chunk_read *cr = malloc(sizeof *cr);
        l->chunk[i] = buffer_get(l);
        if (!cr || !l->chunk[i]) {
            free(cr);
            l->read_err = -ENOMEM;
            return;
        }
        *cr = (struct chunk_read){l, i, len};
        l->reads_inflight++;
        sn_done(sn_file_read(l->fd, l->chunk[i], len, KV_SNAP_ALIGN + at), chunk_read, cr);
    }
}

/* The parser's arrays for the body: chunk i holds body bytes [i MiB, (i+1) MiB). */
static int prepare_body(struct loader *l)
{
    int rc = buffers_make(l);
    if (rc < 0)
        return rc;
    uint64_t padded = l->size - KV_SNAP_ALIGN;
    unsigned n = (unsigned)((padded + KV_SNAP_CHUNK - 1) / KV_SNAP_CHUNK);
    char **chunk = calloc(n ? n : 1, sizeof *chunk);
    size_t *clen = calloc(n ? n : 1, sizeof *clen);
    l->ready = calloc(n ? n : 1, sizeof *l->ready);
    if (!chunk || !clen || !l->ready) {
        free(chunk);
        free(clen);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < n; i++) {
        uint64_t at = (uint64_t)i * KV_SNAP_CHUNK;
        clen[i] =
            l->h.body_bytes - at < KV_SNAP_CHUNK ? (size_t)(l->h.body_bytes - at) : KV_SNAP_CHUNK;
    }
    kv_snap_parser_init(&l->parser, chunk, clen, n);
    kv_snap_parser_avail(&l->parser, 0);
    l->parser.release = pool_put;
    l->parser.release_arg = l;
    l->parsing = true;
    l->chunk = chunk;
    l->nchunks = n;
    l->next_read = l->hashed = l->reads_inflight = 0;
    l->hashed_off = 0;
    l->hashed_bytes = 0;
    l->read_err = 0;
    l->bad[0] = '\0';
    XXH3_64bits_reset(l->hash);
    return 0;
}

int kv_load_body_start(struct loader *l)
{
    int rc = prepare_body(l);
    if (rc < 0)
        return rc;
    read_more(l);
    pump(l); /* an empty body is read already */
    return 0;
}
