/*
 * The mesh's overflow FIFOs: where a sender keeps messages for a destination whose ring is
 * full (or which already has older messages waiting here), so sn_mesh_send never blocks and
 * FIFO order per pair holds. This is the cold path: chunks come from malloc, one spare chunk
 * per pair is kept to avoid churn, and every byte held is counted in overflow_bytes.
 */
#include "core/mesh_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct sn__mesh_chunk *chunk_get(struct sn__mesh_core *core, struct sn__mesh_ovf *ovf)
{
    struct sn__mesh_chunk *c = ovf->spare;
    if (c) {
        ovf->spare = NULL;
    } else {
        c = malloc(sizeof *c);
        if (!c)
            return NULL;
        sn__mesh_count(&core->stats.overflow_bytes, sizeof *c);
    }
    c->next = NULL;
    c->begin = c->end = 0;
    return c;
}

/* A chunk whose messages have all moved on becomes the spare, or is freed if one exists. */
static void chunk_retire(struct sn__mesh_core *core, struct sn__mesh_ovf *ovf,
                         struct sn__mesh_chunk *c)
{
    if (!ovf->spare) {
        ovf->spare = c;
        return;
    }
    free(c);
    sn__mesh_count(&core->stats.overflow_bytes, -(uint64_t)sizeof *c);
}

int sn__mesh_ovf_push(const struct sn_mesh *mesh, struct sn__mesh_core *core, unsigned to,
                      const struct sn_msg *msg)
{
    struct sn__mesh_ovf *ovf = &core->ovf[to];
    uint64_t now = sn__mesh_counter(&core->stats.overflow_now);

    if (now >= mesh->overflow_limit) {
        sn__mesh_count(&core->stats.overflow_rejected, 1);
        return -ENOBUFS;
    }
    if (!ovf->tail || ovf->tail->end == SN__MESH_CHUNK_MSGS) {
        struct sn__mesh_chunk *c = chunk_get(core, ovf);
        if (!c)
            return -ENOMEM;
        if (ovf->tail)
            ovf->tail->next = c;
        else
            ovf->head = c;
        ovf->tail = c;
    }
    ovf->tail->msgs[ovf->tail->end++] = *msg;
    ovf->count++;
    now++;
    sn__mesh_count(&core->stats.overflow_now, 1);
    sn__mesh_count(&core->stats.overflowed, 1);
    if (now > sn__mesh_counter(&core->stats.overflow_peak))
        atomic_store_explicit(&core->stats.overflow_peak, now, memory_order_relaxed);
    return 0;
}

void sn__mesh_ovf_move(struct sn__mesh_core *core, unsigned to, struct sn_ring *r)
{
    struct sn__mesh_ovf *ovf = &core->ovf[to];
    size_t moved = 0;

    while (ovf->count) {
        struct sn__mesh_chunk *c = ovf->head;
        void *slot = sn_ring_claim(r);
        if (!slot)
            break;
        memcpy(slot, &c->msgs[c->begin++], sizeof(struct sn_msg));
        ovf->count--;
        moved++;
        /* The tail chunk is dropped only when the FIFO is empty, so `tail` stays valid. */
        if (c->begin == c->end && (c->end == SN__MESH_CHUNK_MSGS || !ovf->count)) {
            ovf->head = c->next;
            if (!ovf->head)
                ovf->tail = NULL;
            chunk_retire(core, ovf, c);
        }
    }
    if (moved)
        sn__mesh_count(&core->stats.overflow_now, -(uint64_t)moved);
}

void sn__mesh_ovf_free(struct sn__mesh_ovf *ovf)
{
    struct sn__mesh_chunk *c = ovf->head;
    while (c) {
        struct sn__mesh_chunk *next = c->next;
        free(c);
        c = next;
    }
    free(ovf->spare);
    ovf->head = ovf->tail = ovf->spare = NULL;
    ovf->count = 0;
}
