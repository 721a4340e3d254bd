/*
 * shared-nothing (libsn): the whole public API. Applications include only this header.
 * Each module's contract is in its own header under sn/.
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
#include <sn/reactor.h>
#include <sn/smp.h>
#include <sn/metrics.h>
#include <sn/partition.h>
#include <sn/net.h>
#include <sn/file.h>

#endif
