/* redis.h — one non-blocking Redis connection per worker (hiredis async on libuv).
 *
 * Every call returns at once; replies arrive on the loop through the callback.
 * Redis is a cache for lifeplan, never the only copy of anything, so the
 * client is built to fail fast rather than wait:
 *
 *   - While the connection is down (between reconnect attempts) a command is
 *     refused at once with LP_EUNAVAIL; nothing is queued for later.
 *   - Each command has a deadline (cfg->redis_timeout_ms). When it passes, the
 *     caller gets LP_ETIMEDOUT and the connection is dropped and reopened:
 *     Redis answers in order, so a late reply would otherwise be taken as the
 *     answer to the next command.
 *   - After a disconnect the client reconnects by itself with exponential
 *     backoff (50 ms doubling, capped at 2 s). On every (re)connect it sends
 *     AUTH and SELECT when the URL asks for them, then PING; commands are
 *     accepted from the moment a connection attempt starts and run after
 *     that handshake.
 *
 * URLs: redis://[[user]:password@]host[:port][/db] (password and user may be
 * %-encoded) and unix:///path/to/socket[?db=N&password=P]. Host names are
 * resolved with uv_getaddrinfo (hiredis 0.14 would block the loop in
 * getaddrinfo); the numeric address is what hiredis connects to.
 *
 * Callbacks run on the loop, never inside the lp_redis_* call that started the
 * operation: when a call returns 0 its callback runs exactly once later, when
 * it returns an error the callback never runs. Replies are hiredis
 * redisReply values owned by the client and valid until the callback returns.
 * A Redis error reply (-ERR ...) is not a failure of the client: the status is
 * 0 and the reply has type REDIS_REPLY_ERROR. */
#ifndef LP_REDIS_H
#define LP_REDIS_H

#include <stddef.h>

#include <hiredis/hiredis.h>
#include <uv.h>

typedef struct lp_redis lp_redis;
typedef struct lp_host lp_host;

/* A single command's outcome: status 0 and a reply, or a negative LP_E* and
 * reply NULL (LP_EUNAVAIL: connection lost, LP_ETIMEDOUT, LP_ECLOSED). */
typedef void (*lp_redis_cb)(int status, redisReply *reply, void *data);

/* A pipeline's outcome: status 0 and one reply per command, in order, or a
 * negative LP_E* and replies NULL (the pipeline failed as a whole). */
typedef void (*lp_redis_pipeline_cb)(int status, redisReply **replies, size_t n, void *data);

/* Readiness: 0 when the server answered PONG, else a negative LP_E*. */
typedef void (*lp_redis_ping_cb)(int status, void *data);

typedef struct lp_redis_stats {
    int connected;            /* 1 once the handshake completed, 0 while down          */
    unsigned long errors;     /* commands that failed + connection attempts that failed */
    unsigned long reconnects; /* successful connections after the first one         */
} lp_redis_stats;

/* Opens the client and starts connecting; never waits and never fails
 * because Redis is down (only LP_EINVAL for a bad URL, LP_ENOMEM).
 * `timeout_ms` is the per-command deadline (> 0). */
int lp_redis_open(lp_redis **r, uv_loop_t *loop, const char *url, int timeout_ms);

/* Fails every pending command with LP_ECLOSED (their callbacks run before
 * this returns), stops reconnecting and closes the handles; the memory is
 * released once the loop has run the handles' close callbacks. Must not be
 * called from inside an lp_redis callback. */
void lp_redis_close(lp_redis *r);

/* One command, binary safe: argv[i] holds argvlen[i] bytes. The arguments
 * are copied before the call returns. */
int lp_redis_command(lp_redis *r, int argc, const char *const *argv, const size_t *argvlen,
                     lp_redis_cb cb, void *data);

/* Several commands sent back to back, one callback with all replies (not a
 * transaction: wrap in MULTI/EXEC for that). `argcs[i]` arguments of command
 * i start at argv[sum of argcs before i]. The deadline covers the whole
 * pipeline. */
int lp_redis_pipeline(lp_redis *r, size_t ncmds, const int *argcs, const char *const *argv,
                      const size_t *argvlen, lp_redis_pipeline_cb cb, void *data);

/* PING, for readiness checks. */
int lp_redis_ping(lp_redis *r, lp_redis_ping_cb cb, void *data);

void lp_redis_get_stats(const lp_redis *r, lp_redis_stats *stats);

/* Host lifecycle: opens h->redis from h->cfg (REDIS_URL, REDIS_TIMEOUT_MS),
 * and closes it. Opening never blocks and never fails because Redis is down. */
int lp_redis_host_open(lp_host *h);
void lp_redis_host_close(lp_host *h);

#endif
