/* lp.c — shared helpers: error strings, the monotonic clock, addresses. */
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

int lp_ip_name(const struct sockaddr *sa, char *out, size_t size)
{
    int rc = sa->sa_family == AF_INET6  ? uv_ip6_name((const struct sockaddr_in6 *)sa, out, size)
             : sa->sa_family == AF_INET ? uv_ip4_name((const struct sockaddr_in *)sa, out, size)
                                        : UV_EINVAL;
    return rc == 0 ? 0 : LP_EINVAL;
}

int lp_is_ip(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return uv_inet_pton(AF_INET, host, buf) == 0 || uv_inet_pton(AF_INET6, host, buf) == 0;
}

char *lp_buf_reserve(char **buf, size_t *len, size_t *cap, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t ncap = *cap ? *cap : 256;
        while (ncap < *len + n + 1)
            ncap *= 2;
        char *nb = realloc(*buf, ncap);
        if (nb == NULL) return NULL;
        *buf = nb;
        *cap = ncap;
    }
    return *buf + *len;
}

int lp_buf_append(char **buf, size_t *len, size_t *cap, const char *p, size_t n)
{
    char *at = lp_buf_reserve(buf, len, cap, n);
    if (at == NULL) return LP_ENOMEM;
    if (n) memcpy(at, p, n);
    *len += n;
    at[n] = '\0';
    return 0;
}
