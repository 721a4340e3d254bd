/* sn_strerror (include/sn/error.h) and sn_version (include/sn/common.h). */
#include <sn/error.h>

#include <string.h>

const char *sn_strerror(int err)
{
    if (err < 0)
        err = -err;
    if (err == 0)
        return "success";
    /* strerrordesc_np is thread-safe and returns a static string, unlike strerror. */
    const char *s = strerrordesc_np(err);
    return s ? s : "unknown error";
}

const char *sn_version(void)
{
    return SN_VERSION_STRING;
}
