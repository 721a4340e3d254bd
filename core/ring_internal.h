/* Internal ring helpers, for tests only. */
#ifndef SN_CORE_RING_INTERNAL_H
#define SN_CORE_RING_INTERNAL_H

#include <sn/ring.h>

/*
 * Moves an empty, quiet ring's indices to `index` (both sides), so tests can start just
 * below 2^32 or 2^64 and cross the wraparound. Needs both sides quiet.
 */
void sn__ring_set_index(struct sn_ring *r, uint64_t index);

#endif
