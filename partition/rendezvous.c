/*
 * Rendezvous (highest random weight) hashing, Thaler & Ravishankar 1998: every node scores
 * the key and the highest score wins, so adding node N moves to it exactly the keys it now
 * outscores (~1/(N+1) of them) and moves nothing else.
 *
 * The key is hashed once (XXH3-64, h); node i's score comes from mixing h with a per-node
 * seed, which costs two multiplies per node instead of rehashing the key N times. Seeds
 * depend only on the node index, never on N.
 *
 * Weights use the logarithmic method (Schindelhauer & Schomaker, "Weighted distributed hash
 * tables", SPAA 2005): with u uniform in (0, 1), score = -w / ln(u) makes node i win with
 * probability w_i / sum(w), and changing one weight only moves keys to or from that node.
 */
#include "partition/partition_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

/* MurmurHash3's 64-bit finaliser: a bijection with full avalanche. */
static inline uint64_t fmix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t node_seed(uint32_t i)
{
    return fmix64(((uint64_t)i + 1) * 0x9e3779b97f4a7c15ULL); /* SplitMix64's step */
}

int sn__rendezvous_init(struct sn_partition *p, const struct sn_partition_config *cfg, char *err,
                        size_t errlen)
{
    struct sn__rendezvous *r = &p->u.rdv;
    bool equal = true;
    for (uint32_t i = 0; cfg->weights && i < cfg->n; i++) {
        double w = cfg->weights[i];
        if (!(w > 0) || !isfinite(w))
            return sn__perr(err, errlen,
                            "rendezvous: weight %u is %g; weights must be finite "
                            "and > 0",
                            i, w);
        equal = equal && w == cfg->weights[0];
    }
    r->seeds = malloc(cfg->n * sizeof(*r->seeds));
    if (!r->seeds)
        goto nomem;
    for (uint32_t i = 0; i < cfg->n; i++)
        r->seeds[i] = node_seed(i);
    if (!equal) {
        r->weights = malloc(cfg->n * sizeof(*r->weights));
        if (!r->weights)
            goto nomem;
        for (uint32_t i = 0; i < cfg->n; i++)
            r->weights[i] = cfg->weights[i];
    }
    return 0;
nomem:
    sn__rendezvous_free(p);
    sn__perr(err, errlen, "out of memory");
    return -ENOMEM;
}

void sn__rendezvous_free(struct sn_partition *p)
{
    free(p->u.rdv.seeds);
    free(p->u.rdv.weights);
    p->u.rdv.seeds = NULL;
    p->u.rdv.weights = NULL;
}

/* Equal weights: -1/ln(u) grows with u, so the largest mixed value wins; no logarithm. */
static uint32_t lookup_equal(const uint64_t *seeds, uint32_t n, uint64_t h)
{
    uint64_t best = 0;
    uint32_t owner = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t s = fmix64(h ^ seeds[i]);
        if (s > best) {
            best = s;
            owner = i;
        }
    }
    return owner;
}

static uint32_t lookup_weighted(const uint64_t *seeds, const double *w, uint32_t n, uint64_t h)
{
    double best = -1;
    uint32_t owner = 0;
    for (uint32_t i = 0; i < n; i++) {
        /* u in (0, 1), never 0 or 1: the top 53 bits plus half a step. */
        double u = ((double)(fmix64(h ^ seeds[i]) >> 11) + 0.5) * 0x1p-53;
        double score = -w[i] / log(u);
        if (score > best) {
            best = score;
            owner = i;
        }
    }
    return owner;
}

uint32_t sn__rendezvous_lookup(const struct sn_partition *p, uint64_t h)
{
    const struct sn__rendezvous *r = &p->u.rdv;
    return r->weights ? lookup_weighted(r->seeds, r->weights, p->n, h)
                      : lookup_equal(r->seeds, p->n, h);
}
