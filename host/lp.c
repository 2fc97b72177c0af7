/* lp.c — shared helpers: error strings, the monotonic clock. */
#include "lp.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

const char *lp_strerror(int err)
{
    switch (err) {
    case LP_OK:
        return "ok";
    case LP_EINVAL:
        return "invalid argument";
    case LP_ENOMEM:
        return "out of memory";
    case LP_EUNAVAIL:
        return "unavailable";
    case LP_ETIMEDOUT:
        return "timed out";
    case LP_EBUSY:
        return "busy";
    case LP_ECLOSED:
        return "closed";
    case LP_EQUERY:
        return "query failed";
    case LP_EIO:
        return "i/o error";
    case LP_ETOOBIG:
        return "too big";
    default:
        return "unknown error";
    }
}

double lp_now_ms(void)
{
    return (double)uv_hrtime() / 1e6;
}

int lp_buf_append(char **buf, size_t *len, size_t *cap, const char *p, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t ncap = *cap ? *cap : 256;
        while (ncap < *len + n + 1)
            ncap *= 2;
        char *nb = realloc(*buf, ncap);
        if (nb == NULL) return LP_ENOMEM;
        *buf = nb;
        *cap = ncap;
    }
    if (n) memcpy(*buf + *len, p, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}
