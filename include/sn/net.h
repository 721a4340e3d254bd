/*
 * TCP and UDP on the reactor (docs/ARCHITECTURE.md, "Network"). Every socket belongs to one
 * core and all its callbacks run there; nothing here takes a lock.
 *
 * Listening: sn_listen opens the port on every core, with one SO_REUSEPORT socket per core
 * (the default: the kernel spreads connections) or one socket accepted on the calling core,
 * which hands each connection to the core with the fewest connections (Seastar's way).
 * Accepting uses multishot accept.
 *
 * Connections: data arrives through multishot recv into a per-core provided buffer ring where
 * the kernel has one, else through one plain recv at a time into a per-connection buffer
 * (forced by `plain_recv` or env SN_NET_PLAIN_RECV=1). sn_conn_write appends to the
 * connection's output and returns at once; the output leaves once per loop turn, so many
 * pipelined replies written in one turn leave in one send (corking). sn_conn_write_ref queues
 * caller-owned memory without copying it (sent with the rest through sendmsg's iovec).
 * Output that does not come from input paces itself with ops->on_drain (called when the
 * backlog falls to limits.output_low after being over limits.output_high).
 *
 * Lifetime: a connection is valid from the moment it is handed to the app (on_accept, or the
 * future of sn_connect) until its on_close has returned, and after that for as long as it is
 * held (sn_conn_hold) or has a reply slot open (include/sn/reply.h); on_close is called
 * exactly once, always from the run queue (never from inside an sn_conn_* call), after every
 * other callback. A connection ends when the app closes it, the peer resets it, a limit is
 * hit, or the reactor stops (every socket still open is closed then, connections with err
 * -ECANCELED). Open reply slots count as activity for the idle timeout, and a graceful close
 * or shutdown waits for them (their bytes still leave, in order).
 *
 * Reactor stop (sn_stop, SIGINT/SIGTERM, main's future settling): listeners and UDP sockets
 * close at once. Each connection stops reading (on_data and on_eof are not called any more)
 * but still takes writes until it closes, so replies to the last requests, also ones still
 * coming from other cores, can leave: it closes once its output has been sent, and gets at
 * most limits.stop_flush_ms (default 1 s) for that; output still unsent then is dropped and
 * the connection reset (so the peer cannot take a cut reply for a whole one). on_error and
 * on_close get -ECANCELED either way. The reactor's shutdown waits for these flushes.
 *
 * Errors that end a connection (on_error, then on_close get the same value): -ECONNRESET /
 * -EPIPE (the peer reset it; only that connection is affected), -ETIMEDOUT (idle timeout),
 * -EMSGSIZE (more unconsumed input than limits.input_max), -ECANCELED (reactor stop), -EBUSY
 * (the io_uring submission queue stayed full while the reactor was stopping), or the error of
 * the failing recv/send.
 *
 * Full submission queue: when the core's io_uring takes no more requests even after
 * submitting (rare: the kernel refuses while completions overflow), nothing is lost. Work the
 * app cannot see fail (re-arming a receive, sending queued output, a cancel) waits for the
 * loop's next submit and goes on; calls that report errors (sn_listen, sn_connect,
 * sn_udp_open, sn_udp_send) fail with -EBUSY, and may be tried again.
 *
 * SIGPIPE: sends use MSG_NOSIGNAL, so a reset peer never raises it.
 * Threads: every function here is for reactor cores only; a connection, UDP socket or listener
 * slot is used only on the core that owns it (functions taking one return -EXDEV elsewhere).
 */
#ifndef SN_NET_H
#define SN_NET_H

#include <sn/common.h>

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>

SN_BEGIN_DECLS

struct sn_future;
struct sn_conn;
struct sn_listener;
struct sn_udp;

/* The listen / connect address when none is given. */
#define SN_NET_DEFAULT_HOST "127.0.0.1"

/* Per-connection limits; 0 in a field means its default. */
struct sn_conn_limits {
    /* Bytes on_data may leave unconsumed, checked when an on_data call returns with reading
     * still on; past it: -EMSGSIZE. Not counted: what is left when on_data returns with
     * reading stopped (sn_conn_set_reading(false), or output over output_high), since nothing
     * new is received until the app reads again; and bytes received while reading is off
     * (held, at most what was in flight: bounded apart, by input_max plus the core's receive
     * buffers). So an app that stops reading on its own (e.g. while its output is full) and
     * consumes little on each resume needs no input_max above its own need. Default 1 MiB. */
    size_t input_max;
    /* Output backlog above which reading pauses, as with sn_conn_set_reading(false) (bytes
     * already on their way are held, not delivered); it resumes at half. Default 1 MiB. */
    size_t output_high;
    /* Close a connection with no byte received or sent for this long (-ETIMEDOUT). 0: never. */
    unsigned idle_ms;
    /* Receive with plain recv even where provided buffer rings exist (testing, old kernels). */
    bool plain_recv;
    /* When the reactor stops: how long queued output may take to leave before the connection
     * is reset with it unsent (milliseconds). 0: SN_CONN_DEFAULT_STOP_FLUSH_MS. */
    unsigned stop_flush_ms;
    /* Output backlog at or below which ops->on_drain is called, after the backlog had been
     * over output_high. 0 (or not below output_high): output_high / 2. */
    size_t output_low;
    /*
     * Reply slots (include/sn/reply.h) begun and not yet written out at which reading
     * pauses as it does for output_high (and resumes at half); bytes buffered in slots
     * behind the oldest open one count towards output_high together with the backlog.
     * In a fiber, sn_reply_begin waits at this mark instead. This bounds the work a
     * pipelining client can start on a connection (e.g. requests sent to other cores)
     * before it reads a single answer. 0: SN_CONN_DEFAULT_MAX_OPEN_REPLIES.
     */
    unsigned max_open_replies;
    /* Line mode (ops->on_line): the longest line, without its "\n" or "\r\n", given whole;
     * longer ones are reported with -EMSGSIZE and skipped. 0: SN_CONN_DEFAULT_LINE_MAX; at
     * most input_max. */
    size_t line_max;
};

#define SN_CONN_DEFAULT_INPUT_MAX        (1u << 20)
#define SN_CONN_DEFAULT_OUTPUT_HIGH      (1u << 20)
#define SN_CONN_DEFAULT_STOP_FLUSH_MS    1000u
#define SN_CONN_DEFAULT_MAX_OPEN_REPLIES 1024u
#define SN_CONN_DEFAULT_LINE_MAX         8192u

/* What a connection calls back; `arg` is the connection's user data. Any may be NULL. */
struct sn_conn_ops {
    /*
     * Bytes arrived: data[0..len) holds what the previous call left unconsumed followed by
     * the new bytes. Returns how many bytes (from the front) it consumed; the rest is kept and
     * presented again with the next bytes, or when reading resumes after
     * sn_conn_set_reading(false) (see there). Never called while reading is off or paused
     * by backpressure (limits.output_high). The memory is libsn's and valid only during the
     * call. NULL: everything is discarded.
     */
    size_t (*on_data)(struct sn_conn *conn, void *arg, const char *data, size_t len);
    /*
     * The peer closed its side (EOF), after every byte before it was presented to on_data.
     * Like on_data, never called while reading is off (it waits for the resume). The
     * connection may still write. NULL: sn_conn_close (pending output still leaves first).
     */
    void (*on_eof)(struct sn_conn *conn, void *arg);
    /* The connection failed with `err` (see above); on_close follows with the same err. */
    void (*on_error)(struct sn_conn *conn, void *arg, int err);
    /* Last call: the socket is closed; `conn` is invalid once this returns. err 0: clean. */
    void (*on_close)(struct sn_conn *conn, void *arg, int err);
    /*
     * The output drained: called once when a send brings the backlog down to limits.output_low
     * or less (zero included) after it had been over limits.output_high; then again only after
     * the next time it goes over output_high. For apps whose output does not come from input
     * (a stream, a push) to pace themselves: write until the backlog is over output_high, go
     * on here. Called from the send's completion (never from inside an sn_conn_* call), only
     * while the connection takes writes; it may write, close or abort. NULL: not called.
     */
    void (*on_drain)(struct sn_conn *conn, void *arg);
    /*
     * Line mode, used instead of on_data when set: libsn splits the input into lines and
     * calls this once per line, as soon as it is whole, with the line without its "\n" or
     * "\r\n" (len may be 0), err 0. A line longer than limits.line_max gives err -EMSGSIZE
     * with its first line_max bytes in `line`; the rest of it, up to and including its "\n",
     * is skipped, so the app can answer (an error reply) and go on with the next line. The
     * memory is libsn's and valid only during the call (lines are given in place, from the
     * receive buffer, whenever they are whole in it: no copy).
     *
     * Between two lines libsn stops as soon as reading goes off (sn_conn_set_reading(false),
     * sn_conn_close, a failure) or the connection is over its output or reply-slot limits
     * (output_high, max_open_replies); the lines not given yet wait, and come in order once
     * reading resumes. So an app that begins one reply slot per line is held at exactly
     * max_open_replies. Bytes of a last line that the peer did not end before EOF are
     * dropped; on_eof follows the last whole line. From inside, sn_conn_read_block asks for
     * the next bytes as one block (on_block) instead of lines.
     */
    void (*on_line)(struct sn_conn *conn, void *arg, const char *line, size_t len, int err);
    /*
     * Line mode: the block of `len` bytes asked for with sn_conn_read_block, whole and in one
     * call (it may be longer than a receive buffer: libsn gathers it). Valid during the call
     * only. After it, input goes on as lines (or as the next block asked for from inside).
     */
    void (*on_block)(struct sn_conn *conn, void *arg, const char *data, size_t len);
};

/* ---- addresses ------------------------------------------------------------------------ */

/*
 * Fills *out and *len with host:port. `host` is a numeric IPv4 or IPv6 address, "localhost"
 * (127.0.0.1), "*" (0.0.0.0), or NULL (SN_NET_DEFAULT_HOST); names are not resolved (that
 * would block). 0 or -EINVAL. Any thread.
 */
SN_API int sn_addr_parse(const char *host, uint16_t port, struct sockaddr_storage *out,
                         socklen_t *len);

/* ---- listening ------------------------------------------------------------------------ */

/*
 * Where connections are accepted, and which core gets each. The core that gets one is chosen
 * the same way in both modes: among the cores with room whose open connections are within
 * 1 + 1/8 of the fewest, the one given the fewest connections so far (ties in turn), so that
 * long connections and a churn of short ones both spread evenly.
 */
enum sn_accept_mode {
    SN_ACCEPT_REUSEPORT = 0, /* one SO_REUSEPORT socket per core (default); a core keeps what
                                the kernel gives it unless it has had more than its share,
                                then hands the connection to the core chosen as above */
    SN_ACCEPT_ONE_CORE = 1,  /* one socket on the calling core, which hands every connection
                                to the core chosen as above */
};

struct sn_listen_config {
    const char *host; /* NULL: SN_NET_DEFAULT_HOST */
    uint16_t port;    /* 0: the kernel picks one (sn_listener_port tells which) */
    int backlog;      /* listen(2) backlog; 0: 1024 */
    enum sn_accept_mode mode;
    /* Connections open at once per core; a connection that finds every core full is
     * accepted and closed at once (counted in `refused`). 0: no limit. */
    unsigned max_conns_per_core;
    struct sn_conn_limits limits;
    const struct sn_conn_ops *ops; /* for every connection (must outlive the listener's
                                      connections) */
    /*
     * Called on the core that owns a new connection, before any other callback; returns the
     * connection's user data (`arg` of its ops). It may close the connection at once. NULL:
     * every connection gets `arg`.
     */
    void *(*on_accept)(struct sn_conn *conn, void *arg);
    void *arg;
};

struct sn_listener_stats {
    uint64_t accepted; /* connections handed to the app (counted on the core that owns them) */
    uint64_t refused;  /* accepted and closed at once (connection limit, reactor stopping) */
    uint64_t active;   /* gauge: connections open now (including ones on their way to a core) */
    uint64_t moved;    /* sent on to another core by the core that accepted them (counted
                          there): every other one in one-core mode, the balancing in
                          SO_REUSEPORT mode */
};

/*
 * Opens the port on every core as cfg->mode says and starts accepting; the future succeeds
 * with the listener (a `struct sn_listener *` in the value) once every core accepts. The
 * sockets are made synchronously, so address errors (-EADDRINUSE, -EACCES, -EINVAL for a bad
 * host or config, -ENOMEM) come back as an already failed future; -EBUSY when a core could
 * not queue its accept (full submission queue), -ECANCELED once the reactor stops. `cfg` is
 * copied (not the memory `ops` and `arg` point to). Any reactor core.
 *
 * A port in use: SO_REUSEPORT would let a second server of the same user join a port that is
 * already listened on (and the kernel split the clients between the two), so in
 * SN_ACCEPT_REUSEPORT mode a given port is first bound by a probe socket without
 * SO_REUSEPORT, closed again before the listener's sockets bind: -EADDRINUSE if anything
 * listens there. Residual race: a server of the same user that binds the port in the
 * moment between that probe and the first socket's bind can still join (two servers
 * started at the very same instant). Port 0 needs no probe: the kernel picks a port no other
 * socket uses, and every core's socket gets that port.
 */
SN_API SN_MUST_USE struct sn_future *sn_listen(const struct sn_listen_config *cfg);

/* The port the listener is bound to. Any core, while the listener exists. */
SN_API uint16_t sn_listener_port(const struct sn_listener *l);

/* sn_listener_stats over every core. */
#define SN_LISTENER_ALL_CORES (~0u)

/*
 * Sums the counters of every core (SN_LISTENER_ALL_CORES) or of one core. Any thread, while
 * the listener exists (the counters are atomics).
 */
SN_API void sn_listener_stats(const struct sn_listener *l, unsigned core,
                              struct sn_listener_stats *out);

/*
 * Stops accepting on every core and closes the listening sockets; the future succeeds once
 * all are closed. Connections already accepted stay open. `l` must not be used afterwards.
 * Once the reactor is stopping, libsn closes listeners itself and this returns a ready
 * future without touching `l`. Any core (the listener's memory is freed by the last core to
 * let go of it).
 */
SN_API SN_MUST_USE struct sn_future *sn_listener_close(struct sn_listener *l);

/* ---- connecting ----------------------------------------------------------------------- */

struct sn_connect_config {
    const char *host; /* NULL: SN_NET_DEFAULT_HOST */
    uint16_t port;
    unsigned timeout_ms; /* 0: the kernel's */
    struct sn_conn_limits limits;
    const struct sn_conn_ops *ops;
    void *arg;
};

/*
 * Connects to host:port from the calling core; the future succeeds with the connection (a
 * `struct sn_conn *` in the value), owned by this core, reading already. Fails with the
 * connect error (-ECONNREFUSED, -ETIMEDOUT after timeout_ms, -EINVAL for a bad address,
 * -ECANCELED when the reactor stops, -EBUSY when the submission queue is full, -ENOMEM), in
 * which case no callback is ever called. Any reactor core.
 */
SN_API SN_MUST_USE struct sn_future *sn_connect(const struct sn_connect_config *cfg);

/* ---- connections (owner core only) ------------------------------------------------------ */

/*
 * Queues a copy of data[0..len) for sending; it leaves with the rest of this turn's output.
 * While reply slots are open (include/sn/reply.h) the bytes go behind them, as an answer
 * that is complete at once: so immediate answers need no slot of their own. 0; -EPIPE after
 * sn_conn_close / sn_conn_shutdown / a failure (the failure's error when known) or once the
 * connection closes at a reactor stop (writes made after the stop began and before that are still
 * sent); -ENOMEM; -EXDEV on another core.
 */
SN_API int sn_conn_write(struct sn_conn *conn, const void *data, size_t len);

/*
 * Queues data[0..len) for sending without copying: the caller keeps the memory valid and
 * unchanged until release(release_arg) is called, once, when the bytes have left or the
 * connection ended (from the loop, never from inside this call). Errors as sn_conn_write;
 * on error release is not called.
 */
SN_API int sn_conn_write_ref(struct sn_conn *conn, const void *data, size_t len,
                             void (*release)(void *arg), void *release_arg);

/*
 * Queues on `conn` data[0..len), bytes that libsn is lending the caller from a receive buffer,
 * without copying when it can: a part of what on_data (of conn or of any other connection
 * on this core) is being given, from inside that on_data; or a part of a slice that
 * sn_conn_read_some (include/sn/stream.h) returned on a connection of this core, before the
 * next read on it. The receive buffer they are in is lent to conn's output and goes back to
 * the core's receive ring once they have left (or the connection ended), so an echo or a
 * relay between two connections of a core forwards what it receives with no copy; the
 * caller may read on at once. A read_some slice of conn itself that is a receive buffer the
 * stream had to copy whole (include/sn/stream.h) is queued by reference too (the copy lives
 * until it has left). Copies instead (as sn_conn_write) any other bytes (input that
 * on_data left before and is presented again, the plain-recv fallback, a slice from the
 * stream's own buffer), when len is under 1 KiB (a copy is cheaper), or when half of the
 * core's receive buffers are lent to output already (receiving must not starve behind peers
 * that do not read; with streams' lent reads, at most 7/8 of them are lent at all). Errors
 * as sn_conn_write.
 */
SN_API int sn_conn_write_input(struct sn_conn *conn, const void *data, size_t len);

/*
 * Whether on_data should take another request now: 1 while reading is on, the connection is
 * not closing and it is under its output and reply-slot limits (limits.output_high,
 * max_open_replies); 0 when it should stop and return what it consumed so far. What it
 * leaves is presented again once reading resumes, which libsn does by itself when the
 * backlog and the open slots are back at half. For on_data that answers several pipelined
 * requests per call: the check line mode makes between two lines (ops->on_line), so such an
 * app stops at exactly the limits too. -EXDEV on another core. Owner core only.
 */
SN_API int sn_conn_may_read(const struct sn_conn *conn);

/* Bytes queued and not yet sent, or -EXDEV on another core. Owner core only. */
SN_API ssize_t sn_conn_backlog(const struct sn_conn *conn);

/*
 * Half-close: once the queued output has left, shuts the write side (the peer sees EOF);
 * reading goes on. Later writes fail with -EPIPE. 0, or -EXDEV.
 */
SN_API int sn_conn_shutdown(struct sn_conn *conn);

/*
 * Graceful close: stops reading at once, sends the queued output and the bytes of the reply
 * slots still open as they end (in order), then closes; on_close(0) follows (or an error if
 * the send fails). Direct writes fail with -EPIPE from now on; new slots too. Returns a future that
 * settles once the connection is released, after on_close has returned, with on_close's outcome:
 * success with value 0 for a clean close, else a failure with the error on_close got (the send's,
 * or -ECONNABORTED when sn_conn_abort came first, -ECANCELED at a reactor stop, ...). Every call
 * gets its own future, also a call made while the connection already closes (then it changes
 * nothing else) or from inside on_close; hand it to sn_ignore when the outcome does not matter. A
 * failed future with -EXDEV on another core (nothing happens then). Owner core only.
 */
SN_API SN_MUST_USE struct sn_future *sn_conn_close(struct sn_conn *conn);

/*
 * Abortive close: drops the queued output and closes at once with a TCP reset; on_error is
 * not called, on_close gets -ECONNABORTED (unless the connection had already failed or
 * begun its final step, when it changes nothing). The future settles as sn_conn_close's:
 * after on_close, failing with on_close's error (-ECONNABORTED for the abort itself).
 * -EXDEV on another core. Owner core only.
 */
SN_API SN_MUST_USE struct sn_future *sn_conn_abort(struct sn_conn *conn);

/*
 * Stops (false) or resumes (true) reading, for the app's own flow control. Backpressure on
 * the output (limits.output_high) pauses reading the same way, independently: on_data runs
 * only while both allow it.
 *
 * Off is a firm stop: from the moment this returns (also when called inside on_data), on_data
 * and on_eof are not called until reading is on again. libsn stops receiving at once; bytes
 * that were already on their way (at most one 16 KiB buffer, or what the kernel had put in
 * the core's buffer ring) are held behind whatever on_data left unconsumed, even past
 * limits.input_max; an EOF is held behind them.
 *
 * On again: if input is held (unconsumed or received meanwhile) or an EOF is, on_data is
 * called with all of it (then on_eof) from the run queue soon after, in this loop turn or
 * the next, even if the peer sends nothing more; never from inside this call. Receiving
 * starts again after that call; input_max applies to what it leaves if it returns with
 * reading on (see sn_conn_limits.input_max). So an app that stops
 * reading while it works on a request, and resumes when done, always sees the rest of the
 * input, also when the client already sent everything. Calling it with the current state
 * does nothing. 0, or -EXDEV on another core (nothing changes). Owner core only.
 */
SN_API int sn_conn_set_reading(struct sn_conn *conn, bool on);

/*
 * Line mode (ops->on_line): the next `len` bytes of input, after the line or block being
 * given now, go to ops->on_block as one block; then lines again. Called from on_line (e.g.
 * after a memcached "set" line or an HTTP header with Content-Length) or on_block. 0;
 * -EINVAL when the connection has no on_line or on_block or len is 0; -EMSGSIZE when len is
 * over limits.input_max (nothing changes: answer and close, or skip it yourself); -EXDEV on
 * another core. Owner core only.
 */
SN_API int sn_conn_read_block(struct sn_conn *conn, size_t len);

/*
 * Waits for the output: the future succeeds (value 0) once every byte queued on the
 * connection before the call has been handed to the kernel, at once when nothing is queued.
 * Writes leave by themselves once per loop turn; this is for pacing (a fiber that streams
 * awaits it when sn_conn_backlog is high) and for knowing the bytes left. Bytes of reply
 * slots count once they are in the output (their slot and every earlier one ended). Fails
 * with the connection's error (-EPIPE when it has none) when the connection fails or closes
 * before they left, with -EXDEV on another core. Owner core only.
 */
SN_API SN_MUST_USE struct sn_future *sn_conn_flush(struct sn_conn *conn);

/*
 * Keeps the connection's memory valid after its on_close, until the matching
 * sn_conn_release: for code that may still touch `conn` later (a continuation of work sent
 * to another core). A held connection that has closed is harmless to use: writes fail with
 * -EPIPE, sn_conn_close and sn_conn_abort return a settled future, reading and the other
 * calls change nothing. Reply slots and fiber reads hold the connection themselves, so apps
 * using them need no hold of their own. 0, or -EXDEV on another core. Owner core only.
 */
SN_API int sn_conn_hold(struct sn_conn *conn);

/*
 * Drops a hold of sn_conn_hold; the last one after on_close (with no reply slot still open)
 * frees the connection, which must not be used afterwards. 0; -EINVAL when it is not held;
 * -EXDEV on another core. Owner core only.
 */
SN_API int sn_conn_release(struct sn_conn *conn);

/* Replaces the connection's user data. 0, or -EXDEV on another core. Owner core only. */
SN_API int sn_conn_set_arg(struct sn_conn *conn, void *arg);

/*
 * The socket (for setsockopt and the like; do not read, write or close it), or -EXDEV on
 * another core. Owner core only.
 */
SN_API int sn_conn_fd(const struct sn_conn *conn);

/* The core that owns the connection. Any thread. */
SN_API unsigned sn_conn_core(const struct sn_conn *conn);

/*
 * The peer's address into *out and *len (getpeername). 0, -EXDEV on another core, or the
 * error of getpeername. Owner core only.
 */
SN_API int sn_conn_peer(const struct sn_conn *conn, struct sockaddr_storage *out, socklen_t *len);

/* ---- UDP (owner core only) -------------------------------------------------------------- */

struct sn_udp_config {
    const char *host; /* NULL: SN_NET_DEFAULT_HOST */
    uint16_t port;    /* 0: any */
    /* A datagram arrived; data and from are valid during the call only. NULL: dropped. */
    void (*on_datagram)(struct sn_udp *u, void *arg, const char *data, size_t len,
                        const struct sockaddr *from, socklen_t fromlen);
    /* Last call after sn_udp_close or at reactor stop; `u` is invalid once it returns. */
    void (*on_close)(struct sn_udp *u, void *arg);
    void *arg;
};

/*
 * Binds a UDP socket on the calling core and starts receiving (one datagram at a time, up
 * to 64 KiB; longer ones are truncated). The future succeeds with the socket (a
 * `struct sn_udp *` in the value), owned by this core, or fails with -EINVAL, -EADDRINUSE,
 * -ENOMEM, -ECANCELED once the reactor stops, -EBUSY (full submission queue); then no
 * callback is ever called. The socket is made synchronously, so the future is already
 * settled. `cfg` is copied. Any reactor core.
 */
SN_API SN_MUST_USE struct sn_future *sn_udp_open(const struct sn_udp_config *cfg);

/* The bound port (fixed when the socket opened). Any thread, while the socket is open. */
SN_API uint16_t sn_udp_port(const struct sn_udp *u);

/*
 * Sends a copy of data[0..len) to `to`; the future succeeds with the bytes sent or fails with
 * the send error (-EXDEV on another core, -EPIPE after sn_udp_close, -EBUSY when the
 * submission queue is full, -ENOMEM).
 */
SN_API SN_MUST_USE struct sn_future *sn_udp_send(struct sn_udp *u, const void *data, size_t len,
                                                 const struct sockaddr *to, socklen_t tolen);

/*
 * Stops receiving and closes the socket once in-flight sends are done; on_close follows.
 * The future succeeds with 0 once the socket is released, after on_close has returned;
 * every call gets one (a call while it already closes changes nothing else). A failed
 * future with -EXDEV on another core. Owner core only.
 */
SN_API SN_MUST_USE struct sn_future *sn_udp_close(struct sn_udp *u);

SN_END_DECLS

#endif
