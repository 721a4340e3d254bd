/*
 * The common tail of the batch sample apps (broadcast, data_processing, distributed_compute):
 * once the work chain settles, report its error, stop the sharded state and settle with the
 * exit code. Goes into libsnapps.a like every non-main app file.
 */
#ifndef SN_APPS_COMMON_FINISH_H
#define SN_APPS_COMMON_FINISH_H

#include <sn.h>
#include <stdint.h>

/*
 * For an sn_then_wrapped continuation that saw (err, code): prints "<prog>: <error>" to stderr
 * when err, then stops `s` (sn_sharded_stop) and returns a future for the exit code: 1 when
 * err or when the stop fails (after the same kind of message), else `code`. `prog` must stay
 * valid until that future settles (a string literal). Owner core of the chain only.
 */
struct sn_future *app_stop_sharded(const char *prog, struct sn_sharded *s, int err, uint64_t code);

#endif
