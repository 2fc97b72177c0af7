/* fetch.h — outbound HTTP(S) for one worker: libcurl multi driven by the loop.
 *
 * The LLM providers and the policy collector sit behind this. Transfers run
 * on the worker's libuv loop (curl's sockets watched with uv_poll, its timer
 * a uv_timer); name resolution uses libcurl's threaded resolver, so no call
 * here blocks the loop (lp_fetch_resolver() says which resolver is linked).
 *
 * Callbacks run on the loop and never inside libcurl or inside the lp_fetch
 * call that caused them, so they may start and cancel transfers freely.
 * Once lp_fetch_start returns 0, on_done runs exactly once: with the response,
 * or with an error (after lp_fetch_cancel, on timeout, on lp_fetch_close).
 * Only HTTP and HTTPS URLs are allowed; redirects are not followed; the
 * response body is passed through as received (no Accept-Encoding). */
#ifndef LP_FETCH_H
#define LP_FETCH_H

#include <stddef.h>

#include <uv.h>

typedef struct lp_fetch lp_fetch;
typedef struct lp_fetch_req lp_fetch_req;
typedef struct lp_host lp_host;

typedef struct lp_fetch_header {
    const char *name;  /* lower-cased */
    const char *value; /* surrounding whitespace trimmed */
} lp_fetch_header;

/* A response as far as it got. Everything points into memory owned by the
 * request and is valid until the callback returns. */
typedef struct lp_fetch_response {
    int status;                     /* final HTTP status, 0 when none arrived      */
    const lp_fetch_header *headers; /* of the final response, in arrival order    */
    size_t nheaders;
    const char *body; /* whole body ("" when empty); NULL when streamed   */
    size_t body_len;
    int err;            /* 0, or LP_ETIMEDOUT (any deadline), LP_EUNAVAIL
                           (resolve/connect/TLS handshake failed), LP_EIO (the
                           connection broke mid-way), LP_ETOOBIG (body over
                           max_body_bytes), LP_ECLOSED (cancelled or closing),
                           LP_EINVAL (bad URL or protocol)                   */
    const char *errmsg; /* "" or a human-readable reason (curl's text)     */
} lp_fetch_response;

/* Streaming: body bytes as they arrive. `head` carries the status and the
 * headers (err 0, body NULL); it is the same for every chunk. */
typedef void (*lp_fetch_chunk_cb)(const lp_fetch_response *head, const char *data, size_t len,
                                  void *ud);
typedef void (*lp_fetch_done_cb)(const lp_fetch_response *res, void *ud);

typedef struct lp_fetch_options {
    const char *method;         /* "GET" when NULL; upper-case letters only     */
    const char *url;            /* http:// or https://                          */
    const char *const *headers; /* "Name: value" lines, no CR/LF               */
    size_t nheaders;
    const char *body; /* request body (copied), may contain NULs       */
    size_t body_len;
    int timeout_ms;             /* whole transfer; 0 → the client's default          */
    int connect_timeout_ms;     /* TCP+TLS set-up; 0 → min(10 s, timeout_ms)        */
    int read_timeout_ms;        /* longest silence before the first byte or between
                                   two chunks; 0 → none                              */
    size_t max_body_bytes;      /* unstreamed body limit; 0 → 16 MiB              */
    lp_fetch_chunk_cb on_chunk; /* non-NULL: stream the body instead of keeping it */
    lp_fetch_done_cb on_done;   /* required                                        */
    void *ud;
} lp_fetch_options;

/* `default_timeout_ms` applies to requests that set no timeout_ms. */
int lp_fetch_open(lp_fetch **f, uv_loop_t *loop, int default_timeout_ms);

/* Ends every transfer (on_done with LP_ECLOSED before this returns) and
 * closes the handles; memory is released once the loop has run their close
 * callbacks. Must not be called from inside an lp_fetch callback. */
void lp_fetch_close(lp_fetch *f);

/* Starts a transfer. The options and everything they point to are copied or
 * used only during the call. `*req` (may be NULL) identifies the transfer for
 * lp_fetch_cancel until on_done has been called. */
int lp_fetch_start(lp_fetch *f, const lp_fetch_options *opts, lp_fetch_req **req);

/* Stops a transfer whose on_done has not run yet: no more chunks, and
 * on_done runs soon (on a later loop turn) with LP_ECLOSED, "cancelled".
 * Cancelling twice is harmless. */
void lp_fetch_cancel(lp_fetch_req *req);

/* "threaded", "c-ares" or "blocking": how the linked libcurl resolves names. */
const char *lp_fetch_resolver(void);

/* Host lifecycle: opens h->fetch (HTTP_TIMEOUT_MS as the default timeout) and
 * closes it. */
int lp_fetch_host_open(lp_host *h);
void lp_fetch_host_close(lp_host *h);

#endif
