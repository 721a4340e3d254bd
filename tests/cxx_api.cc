/*
 * C++ code that includes <sn.h> (see tests/cxx_api.h): the header's promise of C++ support
 * (SN_BEGIN_DECLS) is kept only if this file compiles warning-free with g++ and behaves like
 * the C it mirrors. Built with -fno-exceptions -fno-rtti and no C++ library calls, so the C
 * test can link it with the C compiler.
 */
#include "tests/cxx_api.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

void sn_cxx_layouts(struct sn_cxx_layout *out, size_t n)
{
    size_t i = 0;
#define SN_CXX_ONE(type)                                                                           \
    if (i < n)                                                                                     \
        out[i++] = sn_cxx_layout{#type, sizeof(struct type), alignof(struct type)};
    SN_CXX_LAYOUTS(SN_CXX_ONE)
#undef SN_CXX_ONE
}

void sn_cxx_ring_offsets(size_t out[4])
{
    out[0] = offsetof(struct sn_ring, prod);
    out[1] = offsetof(struct sn_ring, tail);
    out[2] = offsetof(struct sn_ring, cons);
    out[3] = offsetof(struct sn_ring, head);
}

namespace
{

struct message {
    uint64_t seq;
    uint64_t square;
    uint32_t tag;
    uint32_t pad;
};
static_assert(sizeof(message) == 24, "a 24-byte slot");

constexpr uint64_t total = 1000;

/* The consumer side: checks each message it gets against the next expected number. */
struct reader {
    uint64_t next = 0;
    bool ok = true;

    void check(const message &m)
    {
        ok = ok && m.seq == next && m.square == next * next && m.tag == 0x5a5a;
        next++;
    }
};

message make(uint64_t seq)
{
    return message{seq, seq * seq, 0x5a5a, 0};
}

/* Producer: fills what fits with one of the three publishing forms. */
void produce(struct sn_ring *ring, unsigned form, uint64_t &sent, bool &ok)
{
    if (form == 0) { // stage several, publish once
        message m = make(sent);
        while (sent < total && sn_ring_stage(ring, &m) == 0)
            m = make(++sent);
        ok = ok && sn_ring_staged(ring) > 0;
        sn_ring_flush(ring);
    } else if (form == 1) { // one publishing push at a time
        message m = make(sent);
        while (sent < total && sn_ring_push(ring, &m) == 0)
            m = make(++sent);
    } else { // a batch of up to 5
        message batch[5];
        uint32_t want = 0;
        for (; want < 5 && sent + want < total; want++)
            batch[want] = make(sent + want);
        int k = sn_ring_push_n(ring, batch, want);
        if (k > 0)
            sent += (uint64_t)k;
    }
}

/* Consumer: drains everything with one of the three reading forms. */
void consume(struct sn_ring *ring, unsigned form, reader &rd)
{
    message got[3];
    void *first;
    int k;
    switch (form) {
    case 0:
        while (sn_ring_pop(ring, &got[0]) == 0)
            rd.check(got[0]);
        break;
    case 1:
        while ((k = sn_ring_pop_n(ring, got, 3)) > 0)
            for (int i = 0; i < k; i++)
                rd.check(got[i]);
        break;
    default:
        while ((k = sn_ring_peek(ring, &first)) > 0) {
            for (int i = 0; i < k; i++) {
                memcpy(&got[0], static_cast<char *>(first) + (size_t)i * sn_ring_stride(ring),
                       sizeof got[0]);
                rd.check(got[0]);
            }
            sn_ring_consume(ring, (uint32_t)k);
        }
        break;
    }
}

} // namespace

int sn_cxx_ring_round_trip(void)
{
    struct sn_ring *ring = nullptr;
    int rc = sn_ring_create(8, sizeof(message), nullptr, &ring);
    if (rc < 0)
        return rc;
    reader rd;
    uint64_t sent = 0;
    // Round r produces with form r % 3 and consumes with the next one, so every pair of forms
    // meets the ring's wrap-around.
    for (unsigned r = 0; rd.next < total && rd.ok; r++) {
        produce(ring, r % 3, sent, rd.ok);
        rd.ok = rd.ok && sn_ring_size(ring) == sent - rd.next && !sn_ring_empty(ring);
        consume(ring, (r + 1) % 3, rd);
        rd.ok = rd.ok && sn_ring_empty(ring) && rd.next == sent;
    }
    sn_ring_destroy(ring);
    return rd.ok ? (int)rd.next : -1;
}

/* The README's example program (docs/example.c), compiled as C++ with its main renamed. */
#define main sn_cxx_example_main
#include "docs/example.c"
#undef main
