/*
 * Reading by structure in a fiber: the connection's input as a buffered stream that a fiber
 * reads a line, exactly n bytes, or what is there from, suspending (only itself) until the
 * bytes have come. For connections served by sn_serve (include/sn/serve.h), whose fiber is
 * the only reader; callback code reads lines and blocks through ops->on_line and
 * sn_conn_read_block instead (include/sn/net.h).
 *
 *     static int session(struct sn_conn *conn, void *arg)   // one fiber per connection
 *     {
 *         struct sn_slice line;
 *         int rc;
 *         while ((rc = sn_conn_read_line(conn, 256, &line)) != SN_EOF) {
 *             if (rc == -EMSGSIZE) {                // too long: already skipped
 *                 sn_conn_write(conn, "ERROR too long\r\n", 16);
 *                 continue;
 *             }
 *             if (rc < 0)
 *                 return rc;                        // reset, -ECANCELED at stop, ...
 *             sn_conn_write(conn, line.data, line.len);
 *             sn_conn_write(conn, "\r\n", 2);
 *         }
 *         return 0;                                 // sn_serve closes the connection
 *     }
 *
 * Slices: a read fills a struct sn_slice that points into libsn's memory, read-only and
 * valid until the next read on that connection (or the end of the fiber); copy what must
 * live longer. A line's slice has no "\n" or "\r\n". libsn owns the bytes either way: they
 * are in the stream's buffer, or (sn_conn_read_some only) in the receive buffer they arrived
 * in, lent to the reader without a copy. sn_conn_write_input (include/sn/net.h) queues a
 * slice of sn_conn_read_some by reference, so an echo or relay fiber copies nothing:
 *
 *     while ((rc = sn_conn_read_some(conn, &in)) == 0)
 *         sn_conn_write_input(conn, in.data, in.len);   // valid until the next read: lent on
 *
 * Reading ahead: libsn keeps receiving while the fiber works, up to 64 KiB beyond what was
 * read (SN_STREAM_READ_AHEAD), so pipelined requests are there when the fiber asks; past it
 * receiving pauses until the fiber reads on. A read that needs more (a long line, a big
 * block) receives as much as it needs.
 *
 * End of input: once the peer has closed its side and every whole line (or block) before
 * it was read, reads return SN_EOF; bytes that do not make up what was asked (a last line
 * without "\n", a cut block) are dropped; sn_conn_read_some sees them. Errors: the
 * connection's failure (-ECONNRESET, ...), -ECANCELED at once (also with bytes buffered)
 * when the reactor stops or the server is closed, -EPIPE after the connection closed.
 *
 * Threads: owner core only, inside a fiber (a read outside one returns -EDEADLK: it would
 * have to block the loop); -EXDEV on another core; -EINVAL on a connection that is not read
 * as a stream (not from sn_serve); -EBUSY while another fiber waits in a read of the same
 * connection (one reader per connection).
 */
#ifndef SN_STREAM_H
#define SN_STREAM_H

#include <sn/common.h>

#include <errno.h>

SN_BEGIN_DECLS

struct sn_conn;

/* Bytes in libsn's buffer: valid until the next read on the same connection. */
struct sn_slice {
    const char *data;
    size_t len;
};

/* What a read returns at the end of the input (the peer closed its side). */
#define SN_EOF (-ENODATA)

/* How far receiving runs ahead of the reading fiber, in bytes. */
#define SN_STREAM_READ_AHEAD (64u * 1024u)

/*
 * Reads the next line into *line, without its "\n" or "\r\n". 0; -EMSGSIZE when the line is
 * longer than `max` bytes (0: limits.line_max; at most limits.input_max): *line then holds
 * its first max bytes, and
 * the rest of it, up to and including its "\n", is skipped (also what has not come yet), so
 * the fiber can answer and read the next line; SN_EOF; the errors above. Owner core only,
 * inside a fiber.
 */
SN_API int sn_conn_read_line(struct sn_conn *conn, size_t max, struct sn_slice *line);

/*
 * Reads exactly `n` bytes, contiguous, into *out (n may be larger than any receive buffer:
 * libsn gathers them). 0; -EMSGSIZE when n is over limits.input_max (nothing is read);
 * SN_EOF when the input ends first; the errors above. Owner core only, inside a fiber.
 */
SN_API int sn_conn_read_exact(struct sn_conn *conn, size_t n, struct sn_slice *out);

/*
 * Reads what has come and not been read, at least one byte (waiting for it when there is
 * none), into *out. 0; SN_EOF; the errors above. Owner core only, inside a fiber.
 * Input is returned in the pieces it came in: *out may be one receive buffer's bytes, lent
 * (no copy; what came behind them is returned by the next reads), valid until the next read
 * on the connection as every slice, and sn_conn_write_input on any connection of the core
 * queues them by reference until then. A stream whose last read was sn_conn_read_some
 * keeps new receive buffers of at least 1 KiB lent instead of copying them (up to 16 per
 * connection, and 7/8 of the core's receive buffers); past that such a buffer is copied
 * whole into a block of its own, which sn_conn_write_input on the same connection also
 * queues by reference (one copy in all). Smaller receives (and any receive while the
 * stream's queue of pieces is full) are gathered in the stream's buffer, and *out is then a
 * run of them, up to the next receive buffer kept whole. A line or block read
 * copies the kept buffers into the stream's buffer.
 */
SN_API int sn_conn_read_some(struct sn_conn *conn, struct sn_slice *out);

SN_END_DECLS

#endif
