/*
 * One fiber per connection: sn_serve listens (on every core, as sn_listen does) and runs
 * fn(conn, arg) in a fiber of its own for each connection, on the connection's core. The
 * fiber reads with sn_conn_read_line / _read_exact / _read_some (include/sn/stream.h),
 * writes with sn_conn_write or reply slots, awaits whatever it needs (cross-core calls,
 * timers, files) and returns when the conversation is over; libsn then closes the
 * connection gracefully (queued output and open reply slots still leave).
 *
 *     static int session(struct sn_conn *conn, void *arg);   // see include/sn/stream.h
 *
 *     static void served(void *arg, int err, uint64_t value)
 *     {
 *         struct sn_server **srv = arg;
 *         if (!err)
 *             *srv = (struct sn_server *)(uintptr_t)value;   // for sn_server_close
 *     }
 *     ...
 *     struct sn_serve_config cfg = {.listen = {.port = 7000, .max_conns_per_core = 10000}};
 *     sn_done(sn_serve(&cfg, session, NULL), served, &server);
 *
 * Connection limit: listen.max_conns_per_core (a connection over it is accepted and closed
 * at once). Each connection costs its fiber's stack (SN_FIBER_DEFAULT_STACK of address
 * space, about a page of memory while idle) besides the connection itself.
 *
 * Stopping: sn_server_close stops accepting and ends the reads of every connection (pending
 * and later reads fail with -ECANCELED, writes and reply slots still work), so the fibers
 * return and their connections close; its future settles once the last one has closed. At a
 * reactor stop libsn does the same by itself (reads fail with -ECANCELED) and frees the
 * server once its connections are gone, whether sn_server_close was called or not.
 *
 * Threads: sn_serve and sn_server_close on any reactor core; fn runs on each connection's
 * own core, in its fiber.
 */
#ifndef SN_SERVE_H
#define SN_SERVE_H

#include <sn/common.h>
#include <sn/net.h>

SN_BEGIN_DECLS

struct sn_future;
struct sn_server;

/*
 * A connection's fiber: converse over `conn` and return (0 or a negative errno: only
 * reported as the fiber's result; the connection is closed gracefully either way; call
 * sn_conn_abort first to reset it instead). `conn` is valid until fn returns; fn must not
 * close it (libsn does).
 */
typedef int (*sn_serve_fn)(struct sn_conn *conn, void *arg);

struct sn_serve_config {
    /*
     * Where and how to listen, with the connection limit (max_conns_per_core) and the
     * per-connection limits; ops, on_accept and arg must be left zero (they are libsn's:
     * the fiber reads the connection).
     */
    struct sn_listen_config listen;
    /* Usable stack of each connection's fiber; 0: SN_FIBER_DEFAULT_STACK (64 KiB). */
    size_t stack_size;
};

/*
 * Listens as cfg->listen says and serves each connection with fn(conn, arg) in its own
 * fiber. The future succeeds with the server (a `struct sn_server *` in the value) once
 * every core accepts, or fails as sn_listen's does, or with -EINVAL (fn NULL, ops /
 * on_accept / arg set). `cfg` is copied; `arg` is passed to every fn as is and must stay
 * valid while connections are served. Any reactor core.
 */
SN_API SN_MUST_USE struct sn_future *sn_serve(const struct sn_serve_config *cfg, sn_serve_fn fn,
                                              void *arg);

/*
 * The server's listener, for sn_listener_port and sn_listener_stats (close the server, not
 * the listener). Any thread, while the server is open.
 */
SN_API struct sn_listener *sn_server_listener(const struct sn_server *s);

/*
 * Stops accepting, makes every read of the server's connections fail with -ECANCELED (their
 * fibers return; replies already under way still leave), and succeeds once every connection
 * fiber has returned and its connection closed. `s` must not be used afterwards. Once the
 * reactor is stopping, libsn does this itself and the call returns a ready future without
 * touching `s`. Any reactor core.
 */
SN_API SN_MUST_USE struct sn_future *sn_server_close(struct sn_server *s);

SN_END_DECLS

#endif
