/*
 * The input cases shared by the callback-form and fiber-form stream tests (test_stream.c,
 * test_stream_fiber.c): the same bytes, sent the same way, must get the same answers from
 * ops->on_line / sn_conn_read_block and from sn_conn_read_line / sn_conn_read_exact.
 *
 * Lines: line_max LINE_MAX_TEST; each line is answered "LINE <len> <first byte>" or, when too
 * long, "ERR <line_max> <first byte>". Blocks: "set <n>\r\n" then n bytes and "\r\n",
 * answered "STORED <n> <checksum>"; a block over input_max is answered "TOOBIG" and the
 * connection closed.
 */
#ifndef SN_TESTS_STREAM_CASES_H
#define SN_TESTS_STREAM_CASES_H

#include <netinet/tcp.h>

#include "kit_util.h"

/* Sends p[0..len) in pieces of 1 to `most` bytes (TCP_NODELAY: many small segments, so the
 * server receives them across many receives). */
static inline int send_pieces(int fd, const char *p, size_t len, size_t most, uint64_t seed)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    while (len) {
        size_t n = 1 + nu_rand(&seed) % most;
        if (n > len)
            n = len;
        if (nu_send_all(fd, p, n))
            return -1;
        p += n;
        len -= n;
    }
    return 0;
}

#define LINE_MAX_TEST 64

static inline size_t add_line(char *in, size_t n, char ch, size_t count, const char *end,
                              char *expect, const char *answer)
{
    for (size_t i = 0; i < count; i++)
        in[n + i] = ch;
    n += count;
    memcpy(in + n, end, strlen(end));
    strcat(expect, answer);
    return n + strlen(end);
}

static inline char *lines_input(size_t *len, char *expect)
{
    size_t big = (size_t)3 << 20; /* 3 MiB: far over line_max and over input_max (1 MiB) */
    char *in = malloc(big + 16384);
    size_t n = 0;
    expect[0] = 0;
    n = add_line(in, n, 'a', 64, "\r\n", expect, "LINE 64 a\n");   /* at the maximum, CRLF */
    n = add_line(in, n, 'b', 64, "\n", expect, "LINE 64 b\n");     /* at the maximum, LF */
    n = add_line(in, n, 'c', 65, "\n", expect, "ERR 64 c\n");      /* one over */
    n = add_line(in, n, 'd', 65, "\r\n", expect, "ERR 64 d\n");    /* one over, CRLF */
    n = add_line(in, n, 'e', 0, "\r\n", expect, "LINE 0 -\n");     /* empty */
    n = add_line(in, n, 'f', 63, "\r\r\n", expect, "LINE 64 f\n"); /* a lone CR is kept */
    n = add_line(in, n, 'g', 5000, "\r\n", expect, "ERR 64 g\n");  /* far over */
    n = add_line(in, n, 'h', 1, "\n", expect, "LINE 1 h\n");
    n = add_line(in, n, 'i', big, "\n", expect, "ERR 64 i\n"); /* over input_max: skipped */
    n = add_line(in, n, 'j', 2, "\r\n", expect, "LINE 2 j\n");
    *len = n;
    return in;
}

static inline int lines_client(uint16_t port)
{
    char expect[256];
    size_t len;
    char *in = lines_input(&len, expect);
    int fd = nu_connect(port), rc = 1;
    if (fd >= 0) {
        nu_timeout(fd, 30000);
        /* The short lines in pieces of 1 to 7 bytes, the long ones in big sends. */
        size_t head = (size_t)((char *)memchr(in, 'g', len) - in);
        char *got;
        if (send_pieces(fd, in, head, 7, 5) == 0) {
            size_t n = kit_exchange(fd, in + head, len - head, strlen(expect), true, 60000, &got);
            rc = n == strlen(expect) && memcmp(got, expect, n) == 0 ? 0 : 2;
            if (rc)
                fprintf(stderr, "got %zu bytes: %.*s\n", n, (int)(n < 400 ? n : 400), got);
            free(got);
        }
        close(fd);
    }
    free(in);
    return rc;
}

static inline uint32_t checksum(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 16777619u;
    return h;
}

static const size_t block_sizes[] = {0, 1, 100, 16382, 16383, 16384, 16385, 100000, 1000000};
#define NBLOCKS (sizeof block_sizes / sizeof block_sizes[0])

static inline int blocks_client(uint16_t port)
{
    size_t total = 0;
    for (unsigned i = 0; i < NBLOCKS; i++)
        total += block_sizes[i] + 32;
    char *in = malloc(total + 64), expect[NBLOCKS * 40 + 16];
    size_t n = 0, e = 0;
    uint64_t seed = 3;
    for (unsigned i = 0; i < NBLOCKS; i++) {
        size_t sz = block_sizes[i];
        n += (size_t)sprintf(in + n, "set %zu\r\n", sz);
        for (size_t j = 0; j < sz; j++)
            in[n + j] = (char)nu_rand(&seed); /* any byte, "\n" and "\r" included */
        e += (size_t)sprintf(expect + e, "STORED %zu %08x\n", sz, checksum(in + n, sz));
        n += sz;
        memcpy(in + n, "\r\n", 2);
        n += 2;
    }
    n += (size_t)sprintf(in + n, "set %u\r\n", 2u << 20); /* over input_max */
    e += (size_t)sprintf(expect + e, "TOOBIG\n");
    int fd = nu_connect(port), rc = 1;
    if (fd >= 0) {
        nu_timeout(fd, 30000);
        /* The first blocks in pieces of up to 100 bytes, so each is gathered from many
         * receives; the big ones in pieces of up to 3000. */
        size_t first = 0;
        for (unsigned i = 0; i < 7; i++)
            first += (size_t)snprintf(NULL, 0, "set %zu\r\n", block_sizes[i]) + block_sizes[i] + 2;
        if (send_pieces(fd, in, first, 100, 9) == 0 &&
            send_pieces(fd, in + first, n - first, 3000, 10) == 0) {
            char *got;
            size_t m = kit_exchange(fd, "", 0, e, true, 60000, &got);
            rc = m == e && memcmp(got, expect, e) == 0 ? 0 : 2;
            if (rc)
                fprintf(stderr, "got %zu of %zu bytes: %.*s\n", m, e, (int)m, got);
            free(got);
        }
        close(fd);
    }
    free(in);
    return rc;
}

#endif
