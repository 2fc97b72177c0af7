/* migrate.c — `lifeplan migrate`: apply migrations/NNNN_name.sql in order.
 *
 * A separate CLI process, so blocking libpq calls are fine here (there is no
 * event loop to stall). The whole run holds a session advisory lock; each
 * file and its schema_migrations row commit together. */
#include "migrate.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <libpq-fe.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp.h"

/* Any constant, as long as nothing else in the database uses it as an
 * advisory lock key: "lpmigr" in ASCII. */
#define MIGRATE_LOCK_KEY "119182270376818"

#define NAME_MAX_LEN 200

typedef struct migration {
    char name[NAME_MAX_LEN + 1]; /* file name, e.g. "0001_users.sql"             */
    char checksum[65];           /* hex SHA-256 of the file on disk               */
    char recorded[65];           /* checksum in schema_migrations, "" if pending  */
    char applied_at[40];         /* when it was applied, "" if pending            */
    char *sql;                   /* file contents (NUL-terminated), NULL if gone  */
    int on_disk;
    int applied;
} migration;

typedef struct migration_list {
    migration *items;
    size_t n, cap;
} migration_list;

static void list_free(migration_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i].sql);
    free(l->items);
    l->items = NULL;
    l->n = l->cap = 0;
}

static migration *list_add(migration_list *l)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        migration *items = realloc(l->items, cap * sizeof(*items));
        if (items == NULL) return NULL;
        l->items = items;
        l->cap = cap;
    }
    migration *m = &l->items[l->n++];
    memset(m, 0, sizeof(*m));
    return m;
}

static migration *list_find(migration_list *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->items[i].name, name) == 0) return &l->items[i];
    return NULL;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const migration *)a)->name, ((const migration *)b)->name);
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* NNNN_name.sql with exactly four digits, so that names sort by number. */
static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 10 || n > NAME_MAX_LEN || s[4] != '_') return 0;
    for (int i = 0; i < 4; i++)
        if (!isdigit((unsigned char)s[i])) return 0;
    for (size_t i = 5; i < n - 4; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-') return 0;
    return 1;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    char *buf = NULL;
    size_t size = 0, cap = 0;
    int ok = 1;
    for (;;) {
        if (size == cap) {
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap + 1);
            if (nb == NULL) {
                ok = 0;
                break;
            }
            buf = nb;
        }
        size_t got = fread(buf + size, 1, cap - size, f);
        if (got == 0) break;
        size += got;
    }
    if (ferror(f)) ok = 0;
    fclose(f);
    if (!ok) {
        free(buf);
        return NULL;
    }
    buf[size] = '\0';
    *len = size;
    return buf;
}

static void sha256_hex(const char *data, size_t len, char out[65])
{
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, (const unsigned char *)data, len);
    sodium_bin2hex(out, 65, digest, sizeof(digest));
}

/* Reads every *.sql file of dir. Other files (README, editor backups) are
 * ignored; a *.sql file with a bad name or a duplicate number is an error,
 * since it is almost certainly a mistake that would otherwise go unnoticed. */
static int load_dir(const char *dir, migration_list *l)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "migrate: cannot open migrations directory %s: %s\n", dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !has_suffix(e->d_name, ".sql")) continue;
        if (!valid_name(e->d_name)) {
            fprintf(stderr,
                    "migrate: %s/%s: name must be NNNN_name.sql (four digits, then "
                    "letters, digits, _ or -)\n",
                    dir, e->d_name);
            rc = -1;
            break;
        }
        migration *m = list_add(l);
        char path[1024];
        size_t len = 0;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (m == NULL || (m->sql = read_file(path, &len)) == NULL) {
            fprintf(stderr, "migrate: cannot read %s: %s\n", path, strerror(errno));
            rc = -1;
            break;
        }
        snprintf(m->name, sizeof(m->name), "%.*s", NAME_MAX_LEN, e->d_name);
        sha256_hex(m->sql, len, m->checksum);
        m->on_disk = 1;
    }
    closedir(d);
    if (rc != 0) return rc;
    qsort(l->items, l->n, sizeof(*l->items), by_name);
    for (size_t i = 1; i < l->n; i++) {
        if (strncmp(l->items[i - 1].name, l->items[i].name, 4) == 0) {
            fprintf(stderr, "migrate: %s and %s share the number %.4s\n", l->items[i - 1].name,
                    l->items[i].name, l->items[i].name);
            return -1;
        }
    }
    return 0;
}

/* Runs a command that returns no rows; prints the server's error. */
static int exec_cmd(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok) fprintf(stderr, "migrate: %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    return ok ? 0 : -1;
}

/* "file:line" for the 1-based character (not byte) position the server
 * reported, so an error points into the file; just "file" without one
 * (errors raised while executing, e.g. a constraint violation). */
static void where_of(char *out, size_t size, const migration *m, const char *position)
{
    long pos = position ? strtol(position, NULL, 10) : 0;
    if (pos <= 0) {
        snprintf(out, size, "%s", m->name);
        return;
    }
    const char *sql = m->sql;
    int line = 1;
    for (const unsigned char *p = (const unsigned char *)sql; *p && pos > 1; p++) {
        if ((*p & 0xC0) != 0x80) pos--;
        if (*p == '\n') line++;
    }
    snprintf(out, size, "%s:%d", m->name, line);
}

/* Fills the applied state from schema_migrations; names no longer on disk
 * are added as missing entries. */
static int load_applied(PGconn *c, migration_list *l)
{
    PGresult *r = PQexec(c, "SELECT to_regclass('schema_migrations') IS NOT NULL");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "migrate: %s", PQerrorMessage(c));
        PQclear(r);
        return -1;
    }
    int exists = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!exists) return 0;

    r = PQexec(c, "SELECT name, checksum, to_char(applied_at AT TIME ZONE 'UTC', "
                  "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM schema_migrations ORDER BY name");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "migrate: reading schema_migrations: %s", PQerrorMessage(c));
        PQclear(r);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *name = PQgetvalue(r, i, 0);
        migration *m = list_find(l, name);
        if (m == NULL) {
            if ((m = list_add(l)) == NULL) {
                rc = -1;
                break;
            }
            snprintf(m->name, sizeof(m->name), "%.*s", NAME_MAX_LEN, name);
        }
        m->applied = 1;
        snprintf(m->recorded, sizeof(m->recorded), "%s", PQgetvalue(r, i, 1));
        snprintf(m->applied_at, sizeof(m->applied_at), "%s", PQgetvalue(r, i, 2));
    }
    PQclear(r);
    qsort(l->items, l->n, sizeof(*l->items), by_name);
    return rc;
}

static const char *state_of(const migration *m)
{
    if (!m->applied) return "pending";
    if (!m->on_disk) return "missing";
    if (strcmp(m->recorded, m->checksum) != 0) return "changed";
    return "applied";
}

/* Refuses a history that no longer matches the files: changed or missing
 * applied files, or a new file slipped in before the last applied one. */
static int check_history(const lp_config *cfg, const migration_list *l)
{
    int rc = 0;
    const char *last_applied = NULL;
    for (size_t i = 0; i < l->n; i++)
        if (l->items[i].applied) last_applied = l->items[i].name;
    for (size_t i = 0; i < l->n; i++) {
        const migration *m = &l->items[i];
        const char *state = state_of(m);
        if (strcmp(state, "missing") == 0) {
            fprintf(stderr, "migrate: %s was applied but is missing from %s\n", m->name,
                    cfg->migrations_dir);
            rc = -1;
        } else if (strcmp(state, "changed") == 0) {
            fprintf(stderr,
                    "migrate: %s was changed after it was applied (recorded sha256 %.12s…, file "
                    "%.12s…); add a new migration instead of editing an applied one\n",
                    m->name, m->recorded, m->checksum);
            rc = -1;
        } else if (!m->applied && last_applied && strcmp(m->name, last_applied) < 0) {
            fprintf(stderr,
                    "migrate: %s is new but sorts before %s, which is already applied; "
                    "renumber it\n",
                    m->name, last_applied);
            rc = -1;
        }
    }
    return rc;
}

static int apply_one(PGconn *c, const migration *m)
{
    double t0 = lp_now_ms();
    if (exec_cmd(c, "BEGIN") != 0) return -1;
    PGresult *r = PQexec(c, m->sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK &&
        PQresultStatus(r) != PGRES_EMPTY_QUERY) {
        const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        char where[NAME_MAX_LEN + 16];
        where_of(where, sizeof(where), m, PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION));
        fprintf(stderr, "migrate: %s: %s (nothing of it was applied)\n", where,
                msg ? msg : PQerrorMessage(c));
        PQclear(r);
        PQclear(PQexec(c, "ROLLBACK"));
        return -1;
    }
    PQclear(r);
    const char *params[2] = {m->name, m->checksum};
    r = PQexecParams(c, "INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)", 2, NULL,
                     params, NULL, NULL, 0);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) fprintf(stderr, "migrate: recording %s: %s", m->name, PQerrorMessage(c));
    PQclear(r);
    if (!ok || exec_cmd(c, "COMMIT") != 0) {
        PQclear(PQexec(c, "ROLLBACK"));
        return -1;
    }
    printf("applied %s (%.0f ms)\n", m->name, lp_now_ms() - t0);
    fflush(stdout);
    return 0;
}

static int run_status(const lp_config *cfg, PGconn *c, migration_list *l)
{
    if (load_applied(c, l) != 0) return 1;
    int bad = 0;
    for (size_t i = 0; i < l->n; i++) {
        const migration *m = &l->items[i];
        const char *state = state_of(m);
        bad |= strcmp(state, "changed") == 0 || strcmp(state, "missing") == 0;
        printf("%-8s %s%s%s\n", state, m->name, m->applied ? "  " : "", m->applied_at);
    }
    if (l->n == 0) printf("no migrations in %s\n", cfg->migrations_dir);
    return bad ? 1 : 0;
}

static int run_migrate(const lp_config *cfg, PGconn *c, migration_list *l)
{
    /* Session-level: held across the per-file transactions and released when
     * the connection closes, even if this process dies. */
    if (exec_cmd(c, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")") != 0) return 1;
    if (exec_cmd(c, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " name text PRIMARY KEY,"
                    " checksum text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now())") != 0)
        return 1;
    if (load_applied(c, l) != 0 || check_history(cfg, l) != 0) return 1;

    size_t applied = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (l->items[i].applied) continue;
        if (apply_one(c, &l->items[i]) != 0) return 1;
        applied++;
    }
    if (applied == 0)
        printf("schema is up to date (%zu migrations)\n", l->n);
    else
        printf("applied %zu migration%s\n", applied, applied == 1 ? "" : "s");
    exec_cmd(c, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")");
    return 0;
}

/* Silences NOTICEs such as "extension already exists, skipping". */
static void quiet_notice(void *arg, const char *message) {}

int lp_migrate_main(const lp_config *cfg, int argc, char **argv)
{
    int status = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--status") == 0) {
            status = 1;
        } else {
            fprintf(stderr,
                    "usage: lifeplan migrate [--status]\n"
                    "  applies %s/NNNN_name.sql to DATABASE_URL\n",
                    cfg->migrations_dir);
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "migrate: libsodium failed to initialise\n");
        return 1;
    }

    migration_list l = {0};
    if (load_dir(cfg->migrations_dir, &l) != 0) {
        list_free(&l);
        return 1;
    }
    const char *keys[] = {"dbname", "application_name", NULL};
    const char *vals[] = {cfg->database_url, "lifeplan migrate", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "migrate: cannot connect to the database: %s", PQerrorMessage(c));
        PQfinish(c);
        list_free(&l);
        return 1;
    }
    PQsetNoticeProcessor(c, quiet_notice, NULL);

    int rc = status ? run_status(cfg, c, &l) : run_migrate(cfg, c, &l);
    PQfinish(c);
    list_free(&l);
    return rc;
}
