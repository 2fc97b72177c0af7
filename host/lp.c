/* lp.c — shared helpers: error strings, the monotonic clock. */
#include "lp.h"

#include <uv.h>

const char *lp_strerror(int err)
{
    switch (err) {
    case LP_OK: return "ok";
    case LP_EINVAL: return "invalid argument";
    case LP_ENOMEM: return "out of memory";
    case LP_EUNAVAIL: return "unavailable";
    case LP_ETIMEDOUT: return "timed out";
    case LP_EBUSY: return "busy";
    case LP_ECLOSED: return "closed";
    case LP_EQUERY: return "query failed";
    case LP_EIO: return "i/o error";
    case LP_ETOOBIG: return "too big";
    default: return "unknown error";
    }
}

double lp_now_ms(void)
{
    return (double)uv_hrtime() / 1e6;
}
