/*
 * Internal: limits and helpers behind sn_config_parse (public contract in
 * include/sn/config.h).
 */
#ifndef SN_REACTOR_OPTIONS_H
#define SN_REACTOR_OPTIONS_H

#include <sn/config.h>

#define SN__SMP_MAX          4096u
#define SN__IDLE_POLL_US_MAX 10000000u /* 10 s */
#define SN__STALL_MS_MAX     3600000u  /* 1 h */
#define SN__SLICE_US_MAX     100000u   /* 100 ms, the kernel's largest slice */

/*
 * Parses an unsigned decimal in [min, max]: digits only (no sign, spaces, or suffix).
 * Returns 0 and *out, or -EINVAL (not a number) / -ERANGE (out of range). Any thread.
 */
int sn__parse_uint(const char *s, unsigned min, unsigned max, unsigned *out);

/* Program name for messages: basename of argv0, or "libsn" when it is NULL or empty. */
const char *sn__prog_name(const char *argv0);

#endif
