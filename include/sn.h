/*
 * shared-nothing (libsn): the whole public API. Applications include only this header.
 * Each module's contract is in its own header under sn/.
 */
#ifndef SN_H
#define SN_H

#include <sn/common.h>
#include <sn/error.h>
#include <sn/ring.h>
#include <sn/mesh.h>

#endif
