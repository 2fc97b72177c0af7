/* log.c — JSON lines on stderr. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "lp.h"

static int worker_id;
static int log_requests = 1;

void lp_log_set_worker(int id)
{
    worker_id = id;
}

void lp_log_set_requests(int enabled)
{
    log_requests = enabled;
}

static int put(char **b, size_t *l, size_t *c, const char *s)
{
    return lp_buf_append(b, l, c, s, strlen(s));
}

static void emit(const char *level, const char *msg, const char *request_id, const char *fields)
{
    char *b = NULL;
    size_t bl = 0, bc = 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char t[32], head[128];
    strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(head, sizeof(head),
             "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"worker\":%d,\"msg\":", t,
             ts.tv_nsec / 1000000, level, worker_id);
    int rc = put(&b, &bl, &bc, head);
    rc |= lp_json_quote(&b, &bl, &bc, msg, strlen(msg));
    if (request_id && *request_id) {
        rc |= put(&b, &bl, &bc, ",\"requestId\":");
        rc |= lp_json_quote(&b, &bl, &bc, request_id, strlen(request_id));
    }
    if (fields && *fields) {
        rc |= put(&b, &bl, &bc, ",");
        rc |= put(&b, &bl, &bc, fields);
    }
    rc |= put(&b, &bl, &bc, "}\n");
    if (rc == 0) {
        ssize_t wr = write(STDERR_FILENO, b, bl);
        (void)wr;
    }
    free(b);
}

void lp_log(const char *level, const char *msg, const char *request_id, const char *fields)
{
    emit(level, msg, request_id, fields);
}

void lp_logf(const char *level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    emit(level, msg, NULL, NULL);
}

void lp_log_request(const char *method, const char *path, int status, double ms,
                    const char *request_id)
{
    if (!log_requests) return;
    char *b = NULL;
    size_t bl = 0, bc = 0;
    char tail[96];
    snprintf(tail, sizeof(tail), ",\"status\":%d,\"durationMs\":%.3f", status, ms);
    int rc = put(&b, &bl, &bc, "\"method\":");
    rc |= lp_json_quote(&b, &bl, &bc, method, strlen(method));
    rc |= put(&b, &bl, &bc, ",\"path\":");
    rc |= lp_json_quote(&b, &bl, &bc, path ? path : "", path ? strlen(path) : 0);
    rc |= put(&b, &bl, &bc, tail);
    if (rc == 0) emit("info", "request", request_id, b);
    free(b);
}
