/* lua_crypto.c — `lp.crypto`: libsodium primitives for scripts.
 *
 *   crypto.random(n)                 → n random bytes
 *   crypto.random_hex(n)             → 2n hex characters from n random bytes
 *   crypto.sha256(s)                 → 32 raw bytes
 *   crypto.hmac_sha256(key, msg)     → 32 raw bytes (HMAC-SHA-256)
 *   crypto.equal(a, b)               → constant-time equality of two strings
 *   crypto.hex(s) / crypto.unhex(h)  → hex encoding (unhex: nil if invalid)
 *   crypto.b64url_encode(s)          → base64url without padding
 *   crypto.b64url_decode(s)          → bytes, or nil if invalid
 *   crypto.password_hash(pw)         → argon2id string ($argon2id$v=19$...)
 *   crypto.password_verify(hash, pw) → true/false
 *
 * The two password calls run argon2id on the libuv threadpool and suspend
 * the calling task meanwhile, so the loop keeps serving other requests.
 * Cost: PASSWORD_OPSLIMIT (default 2) and PASSWORD_MEMLIMIT_KB (default
 * 19456 = 19 MiB, OWASP's minimum for argon2id with p=1). */
#include <lauxlib.h>
#include <lua.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "bindings.h"
#include "host.h"
#include "task.h"

static int l_random(lua_State *L)
{
    int n = (int)luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 0 && n <= 4096, 1, "between 0 and 4096");
    unsigned char buf[4096];
    randombytes_buf(buf, (size_t)n);
    lua_pushlstring(L, (const char *)buf, (size_t)n);
    return 1;
}

static int l_hex(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    char *out = malloc(n * 2 + 1);
    if (out == NULL) return luaL_error(L, "out of memory");
    sodium_bin2hex(out, n * 2 + 1, (const unsigned char *)s, n);
    lua_pushlstring(L, out, n * 2);
    free(out);
    return 1;
}

static int l_random_hex(lua_State *L)
{
    l_random(L);
    lua_replace(L, 1);
    lua_settop(L, 1);
    return l_hex(L);
}

static int l_unhex(lua_State *L)
{
    size_t n, outlen;
    const char *s = luaL_checklstring(L, 1, &n);
    unsigned char *out = malloc(n / 2 + 1);
    if (out == NULL) return luaL_error(L, "out of memory");
    const char *end;
    if (sodium_hex2bin(out, n / 2 + 1, s, n, NULL, &outlen, &end) != 0 || end != s + n) {
        free(out);
        return 0;
    }
    lua_pushlstring(L, (const char *)out, outlen);
    free(out);
    return 1;
}

static int l_sha256(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    unsigned char out[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(out, (const unsigned char *)s, n);
    lua_pushlstring(L, (const char *)out, sizeof(out));
    return 1;
}

static int l_hmac_sha256(lua_State *L)
{
    size_t kn, mn;
    const char *k = luaL_checklstring(L, 1, &kn);
    const char *m = luaL_checklstring(L, 2, &mn);
    unsigned char out[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)k, kn);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)m, mn);
    crypto_auth_hmacsha256_final(&st, out);
    lua_pushlstring(L, (const char *)out, sizeof(out));
    return 1;
}

static int l_equal(lua_State *L)
{
    size_t an, bn;
    const char *a = luaL_checklstring(L, 1, &an);
    const char *b = luaL_checklstring(L, 2, &bn);
    lua_pushboolean(L, an == bn && sodium_memcmp(a, b, an) == 0);
    return 1;
}

static int l_b64url_encode(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    const int v = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
    size_t cap = sodium_base64_ENCODED_LEN(n, v);
    char *out = malloc(cap);
    if (out == NULL) return luaL_error(L, "out of memory");
    sodium_bin2base64(out, cap, (const unsigned char *)s, n, v);
    lua_pushstring(L, out);
    free(out);
    return 1;
}

static int l_b64url_decode(lua_State *L)
{
    size_t n, outlen;
    const char *s = luaL_checklstring(L, 1, &n);
    unsigned char *out = malloc(n + 1);
    if (out == NULL) return luaL_error(L, "out of memory");
    const char *end;
    if (sodium_base642bin(out, n + 1, s, n, NULL, &outlen, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        end != s + n) {
        free(out);
        return 0;
    }
    lua_pushlstring(L, (const char *)out, outlen);
    free(out);
    return 1;
}

/* ---- argon2id on the threadpool --------------------------------------- */

typedef struct pw_job {
    uv_work_t work;
    lp_task *task;
    int verify;
    char *password;
    size_t password_len;
    char hash[crypto_pwhash_STRBYTES];
    int ok;
} pw_job;

static unsigned long long opslimit(void)
{
    const char *v = getenv("PASSWORD_OPSLIMIT");
    long n = v ? strtol(v, NULL, 10) : 0;
    return n >= 1 && n <= 10 ? (unsigned long long)n : 2;
}

static size_t memlimit(void)
{
    const char *v = getenv("PASSWORD_MEMLIMIT_KB");
    long n = v ? strtol(v, NULL, 10) : 0;
    return n >= 8 && n <= 1024 * 1024 ? (size_t)n * 1024 : 19456 * 1024;
}

static void pw_work(uv_work_t *w)
{
    pw_job *j = w->data;
    if (j->verify) {
        j->ok = crypto_pwhash_str_verify(j->hash, j->password, j->password_len) == 0;
    } else {
        j->ok = crypto_pwhash_str_alg(j->hash, j->password, j->password_len, opslimit(), memlimit(),
                                      crypto_pwhash_ALG_ARGON2ID13) == 0;
    }
}

static int pw_push(lua_State *co, void *data)
{
    pw_job *j = data;
    if (j->verify) {
        lua_pushboolean(co, j->ok);
        return 1;
    }
    if (!j->ok) {
        lua_pushnil(co);
        lua_pushliteral(co, "password hashing failed (out of memory?)");
        return 2;
    }
    lua_pushstring(co, j->hash);
    return 1;
}

static void pw_done(uv_work_t *w, int status)
{
    pw_job *j = w->data;
    lp_task *t = j->task;
    lp_task_resume(t, pw_push, j);
    sodium_memzero(j->password, j->password_len);
    free(j->password);
    free(j);
}

static int pw_start(lua_State *L, int verify)
{
    size_t pn, hn = 0;
    const char *hash = verify ? luaL_checklstring(L, 1, &hn) : NULL;
    const char *pw = luaL_checklstring(L, verify ? 2 : 1, &pn);
    lp_task *t = lp_task_check(L);
    if (verify && hn >= crypto_pwhash_STRBYTES) {
        lua_pushboolean(L, 0);
        return 1;
    }
    pw_job *j = calloc(1, sizeof(*j));
    if (j == NULL || (j->password = malloc(pn + 1)) == NULL) {
        free(j);
        return luaL_error(L, "out of memory");
    }
    memcpy(j->password, pw, pn);
    j->password_len = pn;
    j->verify = verify;
    j->task = t;
    if (verify) memcpy(j->hash, hash, hn + 1);
    j->work.data = j;
    if (uv_queue_work(lp_host_from(L)->loop, &j->work, pw_work, pw_done) != 0) {
        free(j->password);
        free(j);
        return luaL_error(L, "cannot queue password work");
    }
    return lp_task_yield(L);
}

static int l_password_hash(lua_State *L)
{
    return pw_start(L, 0);
}

static int l_password_verify(lua_State *L)
{
    return pw_start(L, 1);
}

int luaopen_lp_crypto(lua_State *L)
{
    static const luaL_Reg fns[] = {{"random", l_random},
                                   {"random_hex", l_random_hex},
                                   {"hex", l_hex},
                                   {"unhex", l_unhex},
                                   {"sha256", l_sha256},
                                   {"hmac_sha256", l_hmac_sha256},
                                   {"equal", l_equal},
                                   {"b64url_encode", l_b64url_encode},
                                   {"b64url_decode", l_b64url_decode},
                                   {"password_hash", l_password_hash},
                                   {"password_verify", l_password_verify},
                                   {NULL, NULL}};
    lua_newtable(L);
    luaL_register(L, NULL, fns);
    return 1;
}
