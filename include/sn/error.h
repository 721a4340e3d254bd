/*
 * Errors. Every libsn call that can fail returns 0 (or a count) on success and a negative
 * errno value on failure, like liburing and libuv. A call that takes a callback and fails
 * never calls that callback.
 */
#ifndef SN_ERROR_H
#define SN_ERROR_H

#include <sn/common.h>

SN_BEGIN_DECLS

/*
 * Text for a libsn return code: `err` is a negative errno (a positive value is treated the
 * same). Returns a static string; never NULL. Any thread.
 */
SN_API const char *sn_strerror(int err);

SN_END_DECLS

#endif
