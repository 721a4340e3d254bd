/*
 * Ordered replies: a connection that pipelines requests whose answers are ready at different
 * times (from other cores, from timers, from files) must still answer in request order.
 * Reserve one reply slot per request in the order the requests arrive (sn_reply_begin),
 * fill each from whatever continuation or fiber on the connection's core has its answer
 * (sn_reply_write, any number of times), and end it (sn_reply_end): libsn writes the slots
 * out in the order they were begun.
 *
 *     static void on_line(struct sn_conn *conn, void *arg, const char *line, size_t len,
 *                         int err)
 *     {
 *         struct sn_reply *r;
 *         if (sn_reply_begin(conn, &r) < 0)
 *             return;                           // the connection is closing
 *         struct req *q = req_parse(line, len, r);
 *         sn_done(sn_submit_to(owner_of(q->key), lookup, q), answered, q);
 *     }
 *     static void answered(void *arg, int err, uint64_t value)   // back on conn's core
 *     {
 *         struct req *q = arg;
 *         sn_reply_printf(q->reply, "VALUE %llu\r\n", (unsigned long long)value);
 *         sn_reply_end(q->reply);               // the slot's memory is gone now
 *         free(q);
 *     }
 *
 * Cost: the oldest open slot writes straight into the connection's output, like
 * sn_conn_write (no second copy), so answers that come back in order cost about what
 * sn_conn_write costs. A later slot keeps its bytes in buffers of the core's pool until
 * every earlier slot has ended; they then move into the output without a copy. Answers
 * that are ready at once need no slot: sn_conn_write while slots are open queues its bytes
 * behind them.
 *
 * Lifetime: a slot holds its connection. When the connection closes or fails while slots
 * are open (the peer went away), the slots stay valid: writes to them fail with -EPIPE and
 * drop the bytes, and sn_reply_end frees them. The connection's memory lives until on_close
 * has run and every slot has ended, so a continuation may use the connection pointer of its
 * slot (sn_reply_conn) until it ends the slot. A graceful sn_conn_close or sn_conn_shutdown
 * waits for the open slots, so the last answers still leave.
 *
 * Backpressure: a connection with limits.max_open_replies slots begun and not written
 * out, or more buffered bytes in slots plus output than limits.output_high, stops
 * reading (on_data, on_line are not called) until both are back at half; line mode stops
 * between two lines, so one slot per line is held at exactly the limit. In a fiber,
 * sn_reply_begin waits instead (reading a request the fiber cannot answer yet would gain
 * nothing).
 *
 * Threads: a slot belongs to its connection's core; every function here is owner core only
 * and fails with -EXDEV elsewhere (nothing happens then).
 */
#ifndef SN_REPLY_H
#define SN_REPLY_H

#include <sn/common.h>

SN_BEGIN_DECLS

struct sn_conn;
struct sn_reply;

/*
 * Reserves the next reply slot of `conn`, in request order, in *out. Costs a block of the
 * core's pool (no malloc). The slot must be ended with sn_reply_end, exactly once, also
 * when the connection is gone. 0; -EPIPE when the connection no longer takes replies (the
 * app closed or shut it down, it failed or closed); -EXDEV on another core. In a fiber, when
 * the connection is at its limits (see above) it first waits until they are back at half:
 * then also -ECANCELED when the reactor stops meanwhile. Owner core only.
 */
SN_API int sn_reply_begin(struct sn_conn *conn, struct sn_reply **out);

/*
 * Appends a copy of data[0..len) to the slot. The oldest open slot writes into the output
 * at once; a later one keeps the bytes until its turn. 0; -EPIPE when the connection closed
 * or failed (the bytes are dropped; the error of the failure when known, as sn_conn_write);
 * -EINVAL after sn_reply_end; -ENOMEM; -EXDEV on another core. Owner core only.
 */
SN_API int sn_reply_write(struct sn_reply *r, const void *data, size_t len);

/*
 * Appends data[0..len) without copying: the caller keeps the memory valid and unchanged
 * until release(release_arg) is called, once, when the bytes have left or the connection
 * ended (from the loop, never from inside this call). Errors as sn_reply_write; on error
 * release is not called. Owner core only.
 */
SN_API int sn_reply_write_ref(struct sn_reply *r, const void *data, size_t len,
                              void (*release)(void *arg), void *release_arg);

/*
 * Appends printf-formatted text (formatted on the stack when under 512 bytes, else in a
 * temporary allocation). Returns the bytes appended, or the errors of sn_reply_write
 * (-EINVAL also for a bad format). Owner core only.
 */
SN_API int sn_reply_printf(struct sn_reply *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Ends the slot: its bytes are complete and leave as soon as every earlier slot has ended.
 * Frees the slot: `r` must not be used afterwards (the connection may be freed too, when it
 * closed and this was its last slot). 0; -EPIPE when the connection closed or failed
 * (the bytes were dropped; the slot is freed all the same); -EXDEV on another core (nothing
 * happens). Owner core only.
 */
SN_API int sn_reply_end(struct sn_reply *r);

/* The connection the slot belongs to (valid until the slot ends). Any thread (reads `r`). */
SN_API struct sn_conn *sn_reply_conn(const struct sn_reply *r);

SN_END_DECLS

#endif
