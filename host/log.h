/* log.h — one JSON line per event on stderr.
 *
 * Lines are written with a single write(2) to stderr, which is what a
 * container runtime collects; they are short, so the write is effectively
 * non-blocking and atomic per line. */
#ifndef LP_LOG_H
#define LP_LOG_H

#include <stddef.h>

/* level: "info" | "warn" | "error". `fields` is a pre-encoded JSON object body
 * without braces ("\"a\":1,\"b\":\"x\"") or NULL. */
void lp_log(const char *level, const char *msg, const char *request_id, const char *fields);

/* printf-style convenience for host messages without fields. */
void lp_logf(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The access log line. */
void lp_log_request(const char *method, const char *path, int status, double ms,
                    const char *request_id);

/* Set by the worker so every line says which process wrote it. */
void lp_log_set_worker(int worker_id);

/* 0 silences the per-request access line (LOG_REQUESTS=0, used by benches). */
void lp_log_set_requests(int enabled);

#endif
