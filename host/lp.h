/* lp.h — what every part of the host shares: error codes and a few macros.
 *
 * Functions return 0 on success or a negative LP_E* code. The codes are
 * small and stable so that Lua bindings can map them to messages and HTTP
 * statuses in one place (lp_strerror). */
#ifndef LP_H
#define LP_H

#include <stddef.h>

enum {
    LP_OK = 0,
    LP_EINVAL = -1,    /* bad argument (a caller bug or bad user input)       */
    LP_ENOMEM = -2,    /* allocation failed                                   */
    LP_EUNAVAIL = -3,  /* a dependency is down: PostgreSQL, Redis, upstream   */
    LP_ETIMEDOUT = -4, /* the operation took longer than its deadline         */
    LP_EBUSY = -5,     /* no capacity now (pool wait queue full, limit hit)   */
    LP_ECLOSED = -6,   /* the subsystem is shutting down                      */
    LP_EQUERY = -7,    /* the server answered with an error (SQL error, -ERR) */
    LP_EIO = -8,       /* a socket or file error                              */
    LP_ETOOBIG = -9,   /* a value exceeds a configured limit                  */
};

/* A static, human-readable message for an LP_E* code. */
const char *lp_strerror(int err);

#define LP_ARRAY_SIZE(a)                  (sizeof(a) / sizeof((a)[0]))
#define LP_CONTAINER_OF(ptr, type, field) ((type *)((char *)(ptr)-offsetof(type, field)))

/* Appends n bytes to a growing, NUL-terminated buffer. 0 or LP_ENOMEM. */
int lp_buf_append(char **buf, size_t *len, size_t *cap, const char *p, size_t n);

/* Makes room for n more bytes and the NUL after them; returns where they
 * go (the caller writes them and adds n to *len), or NULL (LP_ENOMEM). */
char *lp_buf_reserve(char **buf, size_t *len, size_t *cap, size_t n);

/* Monotonic milliseconds (uv_hrtime based), for deadlines and durations. */
double lp_now_ms(void);

struct sockaddr;

/* The text of an IPv4 or IPv6 socket address ("127.0.0.1", "::1") into out.
 * 0, or LP_EINVAL for another family or a short buffer. */
int lp_ip_name(const struct sockaddr *sa, char *out, size_t size);

/* True when host is an IPv4 or IPv6 literal rather than a name to look up. */
int lp_is_ip(const char *host);

#endif
