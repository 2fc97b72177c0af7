/* http.h — one HTTP request and the ways to answer it.
 *
 * The server (server.c) parses a request into an lp_request and hands it to
 * the script layer (vm.c). Whoever holds the request answers it exactly once:
 * either lp_request_respond() (a whole response), or lp_request_stream_start()
 * + lp_request_stream_write()* + lp_request_finish() (chunked / SSE). After
 * respond or finish the request is freed and the connection goes on with the
 * next pipelined request.
 *
 * If the client goes away first, the request stays valid (req->conn becomes
 * NULL), writes report LP_ECLOSED, and finishing just frees it. */
#ifndef LP_HTTP_H
#define LP_HTTP_H

#include <stddef.h>
#include <stdint.h>

typedef struct lp_conn lp_conn;
typedef struct lp_server lp_server;

typedef struct lp_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} lp_header;

typedef struct lp_request {
    lp_conn *conn; /* NULL once the client went away                  */
    lp_server *server;
    char method[16];
    char *path; /* NUL-terminated, without the query string        */
    size_t path_len;
    char *query; /* raw query string after '?', or NULL             */
    size_t query_len;
    lp_header *headers; /* names lower-cased; storage owned by the request */
    int nheaders;
    char *body; /* the whole body (NUL-terminated), possibly empty */
    size_t body_len;
    int keep_alive;
    int head;    /* a HEAD request: send headers only               */
    char id[65]; /* request id: X-Request-Id echoed or generated    */
    double start_ms;
    const char *route; /* metrics label, set by the dispatcher            */
    /* response state */
    int status;
    int streaming; /* chunked body started                            */
    /* private to server.c */
    char *hbuf;
    size_t hbuf_len, hbuf_cap;
    size_t body_cap;
} lp_request;

/* The value of a header (case-insensitive name) or NULL; *len gets its length. */
const char *lp_request_header(const lp_request *req, const char *name, size_t *len);

/* The client's address as text ("127.0.0.1", "::1") in buf: 0, or LP_ECLOSED
 * when the connection is gone, LP_EIO when the kernel cannot say. Rate limits
 * fall back to it when no proxy header names the client. */
int lp_request_peer(const lp_request *req, char *buf, size_t len);

/* Answers with a complete response. `hdrs` need not include Content-Length,
 * Date, Server or X-Request-Id; those are added. Frees the request. */
void lp_request_respond(lp_request *req, int status, const lp_header *hdrs, int nhdrs,
                        const char *body, size_t len);

/* Answers with an RFC 9457 problem (application/problem+json). `extra` may
 * add one header (e.g. Allow, Retry-After). Frees the request. */
void lp_request_problem(lp_request *req, int status, const char *code, const char *title,
                        const char *detail, const lp_header *extra);

/* Starts a chunked response. Returns 0 or LP_ECLOSED. */
int lp_request_stream_start(lp_request *req, int status, const lp_header *hdrs, int nhdrs);

/* Sends one chunk (copied). Returns 0, or LP_ECLOSED once the client is gone. */
int lp_request_stream_write(lp_request *req, const char *data, size_t len);

/* Ends a streamed response (or, if nothing was sent, answers 500). Frees it. */
void lp_request_finish(lp_request *req);

/* The reason phrase for a status code ("Not Found"). */
const char *lp_http_reason(int status);

/* Appends `s` to a growing buffer as a JSON string literal (with quotes). */
int lp_json_quote(char **buf, size_t *len, size_t *cap, const char *s, size_t n);

#endif
