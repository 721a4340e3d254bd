/*
 * shared-nothing (libsn): the whole public API. Applications include only this header.
 * Each module's contract is in its own header under sn/. Every function follows one shape
 * (docs/ARCHITECTURE.md, "API conventions"):
 *
 *   1. Errors: 0 (or a count) or a negative errno; a call that fails never calls its
 *      callback.
 *   2. Out-parameters come last; the object a function makes is its last argument.
 *   3. Lifecycle: create/destroy for memory objects (destroy accepts NULL), open/close for
 *      kernel resources (opening that needs I/O gives a future of the object; every close
 *      returns a future that settles once the object is released: sn_ignore it when you need
 *      not wait), start/stop for services spanning cores (stop returns a future), _init for
 *      structs the caller embeds.
 *   4. A function that returns a future never returns NULL; off a reactor core it prints
 *      "libsn: <function> called off a reactor core" and aborts. SN_SUCCESS (a null future)
 *      is what a continuation or remote function returns for "succeeded with 0"; a server's
 *      main returns sn_when_stopped().
 *   5. A function taking an object that belongs to a core fails with -EXDEV on another core.
 *   6. Callbacks: fn then arg; a callback gets its object first, then arg.
 *   7. Internal names use sn__; public ones sn_ / SN_.
 */
#ifndef SN_H
#define SN_H

#include <sn/common.h>
#include <sn/error.h>
#include <sn/list.h>
#include <sn/ring.h>
#include <sn/mesh.h>
#include <sn/config.h>
#include <sn/sched.h>
#include <sn/future.h>
#include <sn/timer.h>
#include <sn/sync.h>
#include <sn/reactor.h>
#include <sn/app.h>
#include <sn/smp.h>
#include <sn/metrics.h>
#include <sn/partition.h>
#include <sn/net.h>
#include <sn/reply.h>
#include <sn/stream.h>
#include <sn/serve.h>
#include <sn/file.h>
#include <sn/fiber.h>

#endif
