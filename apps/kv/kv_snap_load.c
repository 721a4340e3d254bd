/*
 * One core loads its share of a snapshot at start-up, before the listener accepts: the data
 * files C with C % ncores == its id (so any core count can read a snapshot of any other). A
 * file is read whole into 1 MiB chunks (KV_SNAP_QUEUE reads in flight), its body checksum
 * compared as the chunks arrive in order, its records checked (kv_snap_validate_step, in
 * pieces), and only then loaded, oldest first, in pieces across loop turns: an item this core owns
 * goes into its store, any other is copied into a batch for its owner core (sent when 256 KiB are
 * ready, and at the end). A file that fails any check loads nothing; its one-line message says why
 * (with --snapshot-strict the core's load fails instead). The core's future settles once its
 * files are done and every batch it sent was loaded by its owner.
 */
#include "kv_snap_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#define FWD_BYTES   ((size_t)256 << 10) /* a batch for another core */
#define PIECE_ITEMS 20000               /* records loaded per loop turn at most */

/* Records for one owner core: the owner parses and loads them, then frees it all. */
struct fwd {
    char *data;
    size_t len, cap;
    struct kv_snap_result *res; /* the job's results: the owner counts into its own slot */
};

struct loader {
    const struct kv_snap_load_job *job;
    struct kv_snap_result *res;
    struct mc_store *store;
    unsigned self;
    uint32_t next_file; /* the next file index to load */
    /* the current file */
    char path[PATH_MAX];
    int fd;
    uint64_t size;
    struct kv_snap_header h;
    char *hdr;
    char **chunk;
    size_t *clen;
    bool *ready;
    unsigned nchunks, next_read, reads_inflight, hashed;
    int read_err;
    XXH3_state_t *hash;
    struct kv_snap_parser parser;
    bool validating; /* the parser reads the records once without loading them */
    /* forwarding */
    struct fwd **out; /* [ncores] */
    unsigned fwd_inflight;
    bool files_done;
    int err; /* fatal: the core's load fails */
    struct sn_promise *done;
};

static void next_file(struct loader *l);

/* ---- loading one record ---- */

static void load_one(struct mc_store *s, struct kv_snap_result *res, const struct mc_item_image *im)
{
    switch (mc_store_load(s, im)) {
    case MC_STORED: res->items++; break;
    case MC_TOO_LARGE: res->too_large++; break;
    case MC_NO_MEMORY: res->no_memory++; break;
    default: res->expired++; break;
    }
}

/* On the owner core: loads a batch another core sent, and frees it. */
static struct sn_future *fwd_load(void *arg)
{
    struct fwd *f = arg;
    struct kv_snap_result *res = &f->res[sn_core_id()];
    struct mc_store *s = kv_srv.cores[sn_core_id()]->store;
    char **chunk = malloc(sizeof *chunk);
    size_t *clen = malloc(sizeof *clen);
    if (!chunk || !clen) {
        free(chunk);
        free(clen);
        free(f->data);
        free(f);
        return sn_failed(-ENOMEM);
    }
    chunk[0] = f->data;
    clen[0] = f->len;
    free(f);
    struct kv_snap_parser p;
    struct mc_item_image im;
    char why[KV_SNAP_WHY_MAX];
    kv_snap_parser_init(&p, chunk, clen, 1);
    int rc;
    while ((rc = kv_snap_parse_next(&p, &im, why)) > 0)
        load_one(s, res, &im);
    kv_snap_parser_free(&p);
    return rc < 0 ? sn_failed(rc) : SN_SUCCESS;
}

/* ---- the end ---- */

static void loader_free(struct loader *l)
{
    for (unsigned i = 0; l->out && i < kv_srv.ncores; i++) {
        if (l->out[i])
            free(l->out[i]->data);
        free(l->out[i]);
    }
    free(l->out);
    XXH3_freeState(l->hash);
    free(l->hdr);
    free(l);
}

static void maybe_finish(struct loader *l)
{
    if (!l->files_done || l->fwd_inflight > 0)
        return;
    l->res->err = l->err;
    if (l->err)
        sn_promise_fail(l->done, l->err);
    else
        sn_promise_set(l->done, l->res->items);
    loader_free(l);
}

static void fwd_done(void *arg, int err, uint64_t value)
{
    (void)value;
    struct loader *l = arg;
    l->fwd_inflight--;
    if (err && !l->err)
        l->err = err;
    maybe_finish(l);
}

static void fwd_send(struct loader *l, unsigned owner)
{
    struct fwd *f = l->out[owner];
    l->out[owner] = NULL;
    l->fwd_inflight++;
    sn_done(sn_submit_to(owner, fwd_load, f), fwd_done, l);
}

/* Appends the parser's last record to the batch for `owner`, sending it when full. */
static int forward(struct loader *l, unsigned owner, const struct mc_item_image *im)
{
    size_t need = KV_SNAP_REC_HDR + im->nkey + im->nbytes;
    struct fwd *f = l->out[owner];
    if (f && f->len + need > f->cap) {
        fwd_send(l, owner);
        f = NULL;
    }
    if (!f) {
        f = calloc(1, sizeof *f);
        if (!f)
            return -ENOMEM;
        f->cap = need > FWD_BYTES ? need : FWD_BYTES;
        f->res = l->job->res;
        if (!(f->data = malloc(f->cap))) {
            free(f);
            return -ENOMEM;
        }
        l->out[owner] = f;
    }
    f->len += kv_snap_parser_copy(&l->parser, im, f->data + f->len);
    l->res->forwarded++;
    return 0;
}

static void all_files_done(struct loader *l)
{
    for (unsigned i = 0; i < kv_srv.ncores; i++)
        if (l->out[i] && !l->err)
            fwd_send(l, i);
    l->files_done = true;
    maybe_finish(l);
}

/* ---- one file ---- */

static void file_free(struct loader *l)
{
    for (unsigned i = 0; l->chunk && i < l->nchunks; i++)
        free(l->chunk[i]);
    free(l->chunk);
    free(l->clen);
    free(l->ready);
    l->chunk = NULL;
    l->clen = NULL;
    l->ready = NULL;
    if (l->validating) {
        kv_snap_validate_end(&l->parser); /* the chunks are still ours */
        l->validating = false;
    }
    kv_snap_parser_free(&l->parser);
    if (l->fd >= 0)
        kv_snap_close_fd(l->fd); /* after a failure (a file read whole is closed already) */
    l->fd = -1;
}

/* A file that cannot be loaded: say why, then go on without it (or fail, when strict). */
static void file_failed(struct loader *l, const char *why)
{
    char line[KV_SNAP_WHY_MAX + 64];
    if (l->job->strict) {
        snprintf(line, sizeof line, "%s; refusing to start (--snapshot-strict)", why);
        if (!l->err)
            l->err = -EBADMSG;
    } else {
        snprintf(line, sizeof line, "%s; its items are not loaded", why);
    }
    kv_snap_complain(l->path, line);
    l->res->bad_files++;
    file_free(l);
    next_file(l);
}

static void file_error(struct loader *l, const char *what, int err)
{
    char why[KV_SNAP_WHY_MAX];
    if (err == -ECANCELED) { /* the reactor stops: no message, no more files */
        l->err = err;
        file_free(l);
        all_files_done(l);
        return;
    }
    snprintf(why, sizeof why, "%s: %s", what, sn_strerror(err));
    file_failed(l, why);
}

static void parse_piece(struct loader *l);
static void validate_piece(struct loader *l);

static void parse_yielded(void *arg, int err, uint64_t value)
{
    (void)value;
    struct loader *l = arg;
    if (err) {
        file_error(l, "cannot load it", err);
        return;
    }
    if (l->validating)
        validate_piece(l);
    else
        parse_piece(l);
}

/* The file checked out whole: its records go to their owners from here. */
static void start_loading(struct loader *l)
{
    kv_snap_validate_end(&l->parser);
    l->validating = false;
    /* The parser owns the chunks from here. */
    kv_snap_parser_init(&l->parser, l->chunk, l->clen, l->nchunks);
    l->chunk = NULL;
    l->clen = NULL;
    l->res->bytes += l->size;
    parse_piece(l);
}

/* One record read: into this core's store or into its owner's batch. */
static int take_record(struct loader *l, const struct mc_item_image *im)
{
    unsigned owner = kv_owner(im->key, im->nkey);
    if (owner != l->self)
        return forward(l, owner, im);
    load_one(l->store, l->res, im);
    return 0;
}

/* Checks the next records of the file (a piece per loop turn), then starts loading it. */
static void validate_piece(struct loader *l)
{
    char why[KV_SNAP_WHY_MAX];
    int rc = kv_snap_validate_step(&l->parser, PIECE_ITEMS, l->h.items, why);
    if (rc > 0)
        sn_done(sn_yield(), parse_yielded, l);
    else if (rc == -EBADMSG)
        file_failed(l, why);
    else if (rc < 0)
        file_error(l, "cannot check it", rc);
    else
        start_loading(l);
}

/* Loads the next records (a piece per loop turn), then goes on with the next file. */
static void parse_piece(struct loader *l)
{
    struct mc_item_image im;
    char why[KV_SNAP_WHY_MAX];
    int rc = 1;
    for (unsigned n = 0; n < PIECE_ITEMS && rc > 0; n++) {
        rc = kv_snap_parse_next(&l->parser, &im, why);
        if (rc > 0 && take_record(l, &im) < 0)
            rc = -ENOMEM;
    }
    if (rc > 0) {
        sn_done(sn_yield(), parse_yielded, l);
        return;
    }
    if (rc < 0) { /* a file that checked out parses: only for lack of memory */
        file_error(l, "cannot load it", rc);
        return;
    }
    l->res->files++;
    file_free(l);
    next_file(l);
}

static void closed_after_read(void *arg, int err, uint64_t value)
{
    (void)value;
    struct loader *l = arg;
    if (err) {
        file_error(l, "cannot close it", err);
        return;
    }
    kv_snap_validate_begin(&l->parser, l->chunk, l->clen, l->nchunks);
    l->validating = true;
    validate_piece(l);
}

/* Every chunk has arrived and was hashed in order. */
static void body_read(struct loader *l)
{
    if (XXH3_64bits_digest(l->hash) != l->h.body_hash) {
        file_failed(l, "body checksum mismatch: corrupted");
        return;
    }
    int fd = l->fd;
    l->fd = -1;
    sn_done(sn_file_close(fd), closed_after_read, l);
}

static void read_more(struct loader *l);

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
    if (err)
        l->next_read = l->nchunks; /* no more reads: fail once the others are back */
    else
        l->ready[i] = true;
    while (!l->read_err && l->hashed < l->nchunks && l->ready[l->hashed]) {
        XXH3_64bits_update(l->hash, l->chunk[l->hashed], l->clen[l->hashed]);
        l->hashed++;
    }
    if (l->read_err) {
        if (l->reads_inflight == 0)
            file_error(l, "cannot read it", l->read_err);
        return;
    }
    if (l->hashed == l->nchunks)
        body_read(l);
    else
        read_more(l);
}

static void read_more(struct loader *l)
{
    uint64_t padded = l->size - KV_SNAP_ALIGN;
    while (l->next_read < l->nchunks && l->reads_inflight < KV_SNAP_QUEUE) {
        unsigned i = l->next_read++;
        uint64_t at = (uint64_t)i * KV_SNAP_CHUNK;
        size_t len = padded - at < KV_SNAP_CHUNK ? (size_t)(padded - at) : KV_SNAP_CHUNK;
        struct chunk_read *cr = malloc(sizeof *cr);
        l->chunk[i] = kv_snap_alloc(len);
        if (!cr || !l->chunk[i]) {
            free(cr);
            l->read_err = -ENOMEM;
            l->next_read = l->nchunks;
            if (l->reads_inflight == 0)
                file_error(l, "cannot read it", -ENOMEM);
            return;
        }
        *cr = (struct chunk_read){l, i, len};
        l->reads_inflight++;
        sn_done(sn_file_read(l->fd, l->chunk[i], len, KV_SNAP_ALIGN + at), chunk_read, cr);
    }
}

/* Checks the header against the manifest, then reads the body. */
static void header_read(void *arg, int err, uint64_t value)
{
    struct loader *l = arg;
    char why[KV_SNAP_WHY_MAX];
    if (err) {
        file_error(l, "cannot read it", err);
        return;
    }
    if (kv_snap_header_decode((const uint8_t *)l->hdr, value, l->size, &l->h, why) < 0) {
        file_failed(l, why);
        return;
    }
    const struct kv_snap_manifest *m = &l->job->m;
    if (l->h.generation != m->generation || l->h.ncores != m->ncores ||
        l->h.core != l->next_file - 1) {
        snprintf(why, sizeof why,
                 "belongs to another snapshot (generation %" PRIu64 ", core %" PRIu32 " of %" PRIu32
                 ")",
                 l->h.generation, l->h.core, l->h.ncores);
        file_failed(l, why);
        return;
    }
    if (l->h.cas_seq > l->res->cas_seq)
        l->res->cas_seq = l->h.cas_seq;
    if (l->h.flush_at > l->res->flush_at)
        l->res->flush_at = l->h.flush_at;
    uint64_t padded = l->size - KV_SNAP_ALIGN;
    l->nchunks = (unsigned)((padded + KV_SNAP_CHUNK - 1) / KV_SNAP_CHUNK);
    l->chunk = calloc(l->nchunks ? l->nchunks : 1, sizeof *l->chunk);
    l->clen = calloc(l->nchunks ? l->nchunks : 1, sizeof *l->clen);
    l->ready = calloc(l->nchunks ? l->nchunks : 1, sizeof *l->ready);
    if (!l->chunk || !l->clen || !l->ready) {
        file_error(l, "cannot read it", -ENOMEM);
        return;
    }
    for (unsigned i = 0; i < l->nchunks; i++) {
        uint64_t at = (uint64_t)i * KV_SNAP_CHUNK;
        l->clen[i] =
            l->h.body_bytes - at < KV_SNAP_CHUNK ? (size_t)(l->h.body_bytes - at) : KV_SNAP_CHUNK;
    }
    l->next_read = l->hashed = l->reads_inflight = 0;
    l->read_err = 0;
    XXH3_64bits_reset(l->hash);
    if (l->nchunks == 0)
        body_read(l);
    else
        read_more(l);
}

static void stat_done(void *arg, int err, uint64_t value)
{
    (void)value;
    struct loader *l = arg;
    if (err) {
        file_error(l, "cannot stat it", err);
        return;
    }
    size_t want = l->size < KV_SNAP_ALIGN ? 0 : KV_SNAP_ALIGN;
    if (want == 0) {
        header_read(l, 0, 0); /* too short: the decoder says so */
        return;
    }
    sn_done(sn_file_read(l->fd, l->hdr, KV_SNAP_ALIGN, 0), header_read, l);
}

struct stat_req {
    struct loader *l;
    struct sn_file_stat st;
};

static void fstat_done(void *arg, int err, uint64_t value)
{
    struct stat_req *sr = arg;
    struct loader *l = sr->l;
    l->size = sr->st.size;
    free(sr);
    stat_done(l, err, value);
}

static void opened(void *arg, int err, uint64_t value)
{
    struct loader *l = arg;
    if (err) {
        file_error(l, err == -ENOENT ? "missing" : "cannot open it", err);
        return;
    }
    l->fd = (int)value;
    struct stat_req *sr = calloc(1, sizeof *sr);
    if (!sr) {
        file_error(l, "cannot stat it", -ENOMEM);
        return;
    }
    sr->l = l;
    sn_done(sn_file_fstat(l->fd, &sr->st), fstat_done, sr);
}

static void next_file(struct loader *l)
{
    const struct kv_snap_manifest *m = &l->job->m;
    uint32_t j = l->next_file ? l->next_file - 1 + kv_srv.ncores : l->self;
    if (l->err || j >= m->ncores) {
        all_files_done(l);
        return;
    }
    l->next_file = j + 1; /* index + 1 of the file being loaded */
    int rc = kv_snap_data_path(l->path, sizeof l->path, l->job->dir, m->generation, j);
    if (rc < 0) {
        file_error(l, "cannot name it", rc);
        return;
    }
    sn_done(kv_snap_open(l->path, O_RDONLY, l->job->direct), opened, l);
}

struct sn_future *kv_snap_load_core(void *arg)
{
    const struct kv_snap_load_job *job = arg;
    struct loader *l = calloc(1, sizeof *l);
    if (!l)
        return sn_failed(-ENOMEM);
    l->job = job;
    l->self = sn_core_id();
    l->res = &job->res[l->self];
    l->store = kv_srv.cores[l->self]->store;
    l->fd = -1;
    l->hash = XXH3_createState();
    l->hdr = kv_snap_alloc(KV_SNAP_ALIGN);
    l->out = calloc(kv_srv.ncores, sizeof *l->out);
    if (!l->hash || !l->hdr || !l->out) {
        loader_free(l);
        return sn_failed(-ENOMEM);
    }
    struct sn_future *f;
    l->done = sn_promise_new(&f);
    next_file(l);
    return f;
}
