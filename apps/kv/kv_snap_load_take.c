/*
 * What a loading core does with the records of a file (kv_snap_load_int.h tells the whole
 * story): stages the items it owns and links them, early or once the file checked out, and
 * holds back the records of other cores in batches that leave for their owners once the file
 * checked out; and how an owner loads such a batch.
 */
#include "kv_snap_load_int.h"

#include <errno.h>
#include <stdlib.h>

/* ---- an owner loads what another core sent ---- */

static void count(struct kv_snap_result *res, enum mc_result r)
{
    switch (r) {
    case MC_STORED: res->items++; break;
    case MC_TOO_LARGE: res->too_large++; break;
    case MC_NO_MEMORY: res->no_memory++; break;
    default: res->expired++; break;
    }
}

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
        count(res, mc_store_load(s, &im));
    kv_snap_parser_free(&p);
    return rc < 0 ? sn_failed(rc) : SN_SUCCESS;
}

/* ---- forwarding ---- */

static void fwd_free(struct fwd *f)
{
    if (f)
        free(f->data);
    free(f);
}

static void fwd_done(void *arg, int err, uint64_t value)
{
    (void)value;
    struct loader *l = arg;
    l->fwd_inflight--;
    if (err && !l->err)
        l->err = err;
    kv_load_maybe_finish(l);
}

static void fwd_send(struct loader *l, struct fwd *f)
{
    l->fwd_inflight++;
    sn_done(sn_submit_to(f->owner, fwd_load, f), fwd_done, l);
}

/* The file checked out: every batch leaves for its owner. */
static void send_held(struct loader *l)
{
    while (l->held) {
        struct fwd *f = l->held;
        l->held = f->next;
        fwd_send(l, f);
    }
    l->held_tail = &l->held;
    for (unsigned i = 0; i < kv_srv.ncores; i++) {
        if (l->out[i])
            fwd_send(l, l->out[i]);
        l->out[i] = NULL;
    }
}

/* Appends the parser's last record to the batch for `owner`. */
static int forward(struct loader *l, unsigned owner, const struct mc_item_image *im)
{
    size_t need = KV_SNAP_REC_HDR + im->nkey + im->nbytes;
    struct fwd *f = l->out[owner];
    if (f && f->len + need > f->cap) {
        f->next = NULL;
        *l->held_tail = f;
        l->held_tail = &f->next;
        f = l->out[owner] = NULL;
    }
    if (!f) {
        f = calloc(1, sizeof *f);
        if (!f)
            return -ENOMEM;
        f->cap = need > FWD_BYTES ? need : FWD_BYTES;
        f->owner = owner;
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

/* ---- staging and linking ---- */

/* Items staged before a batch is linked (link_early): few enough to be still in the cache. */
#define LINK_BATCH 64

static void link_batch(struct loader *l)
{
    l->early_items +=
        mc_store_link_staged_chain(l->store, &l->staged, SIZE_MAX, true, &l->res->no_memory);
    l->staged_tail = NULL;
    l->staged_bytes = l->nstaged = 0;
}

static int stage(struct loader *l, const struct mc_item_image *im)
{
    enum mc_result r;
    struct mc_item *it = mc_store_stage(l->store, im, &r);
    if (!it) {
        if (r == MC_NO_MEMORY)
            return -ENOMEM;
        count(l->res, r);
        return 0;
    }
    it->hnext = NULL;
    if (l->staged_tail)
        l->staged_tail->hnext = it;
    else
        l->staged = it;
    l->staged_tail = it;
    l->staged_bytes += mc_item_size(it->nkey, it->nbytes);
    if (l->link_early && ++l->nstaged == LINK_BATCH) {
        link_batch(l);
        return 0;
    }
    /* More than the store holds: the oldest would be evicted by the newer ones anyway. */
    while (l->staged_bytes > mc_store_mem_limit(l->store) && l->staged != l->staged_tail) {
        struct mc_item *old = l->staged;
        l->staged = old->hnext;
        l->staged_bytes -= mc_item_size(old->nkey, old->nbytes);
        mc_store_unstage(l->store, old);
        l->res->no_memory++;
    }
    return 0;
}

int kv_load_take_record(struct loader *l, const struct mc_item_image *im)
{
    unsigned owner = l->all_mine ? l->self : kv_owner(im->key, im->nkey);
    return owner == l->self ? stage(l, im) : forward(l, owner, im);
}

void kv_load_drop_pending(struct loader *l)
{
    while (l->staged) {
        struct mc_item *it = l->staged;
        l->staged = it->hnext;
        mc_store_unstage(l->store, it);
    }
    l->staged_tail = NULL;
    l->staged_bytes = l->nstaged = 0;
    if (l->link_early)
        mc_store_undo(l->store, &l->mark);
    l->link_early = false;
    l->early_items = 0;
    while (l->held) {
        struct fwd *f = l->held;
        l->held = f->next;
        fwd_free(f);
    }
    l->held_tail = &l->held;
    for (unsigned i = 0; l->out && i < kv_srv.ncores; i++) {
        fwd_free(l->out[i]);
        l->out[i] = NULL;
    }
}

static void linked_yielded(void *arg, int err, uint64_t value)
{
    (void)value;
    struct loader *l = arg;
    l->yielding = false;
    if (err)
        kv_load_file_error(l, "cannot load it", err);
    else
        kv_load_link_piece(l);
}

void kv_load_link_piece(struct loader *l)
{
    l->res->items += mc_store_link_staged_chain(l->store, &l->staged, PIECE_ITEMS, l->link_early,
                                                &l->res->no_memory);
    if (l->staged) {
        l->yielding = true;
        sn_done(sn_yield(), linked_yielded, l);
        return;
    }
    if (l->link_early) { /* the file checked out: what it linked stays */
        uint64_t gone = mc_store_keep(l->store, &l->mark);
        l->res->items += l->early_items - gone;
        l->res->no_memory += gone;
        l->link_early = false;
        l->early_items = 0;
    }
    l->staged_tail = NULL;
    l->staged_bytes = 0;
    send_held(l);
    l->res->files++;
    l->res->bytes += l->size;
    kv_load_file_free(l);
    kv_load_next_file(l);
}
