/* migrate.h — `lifeplan migrate [--status]`: bring the database schema up to date.
 *
 * Applies cfg->migrations_dir/NNNN_name.sql (exactly four digits, a name of
 * [A-Za-z0-9_-], ".sql") in order, each in its own transaction together with
 * its row in schema_migrations (name, SHA-256 checksum, applied_at), so a
 * migration is either fully applied and recorded or not at all. Files must
 * not contain transaction control (BEGIN/COMMIT) or statements that cannot
 * run in a transaction (CREATE INDEX CONCURRENTLY).
 *
 * All of it runs under a PostgreSQL advisory lock: when two hosts start at
 * once, the second waits for the first and then finds nothing to do.
 *
 * It refuses to apply anything (exit 1, with a message naming the file)
 * when an applied migration's file changed or disappeared, when a new file
 * sorts before one already applied, or when two files share a number.
 *
 * `--status` lists every migration as applied / pending / changed / missing
 * and exits 1 when any is changed or missing.
 *
 * This is a command-line process of its own, not the server: it uses
 * blocking libpq, which is fine because there is no event loop to stall. */
#ifndef LP_MIGRATE_H
#define LP_MIGRATE_H

#include "config.h"

/* argv holds the options after `migrate` (argc of them). Uses
 * cfg->database_url and cfg->migrations_dir. Returns the process exit code:
 * 0 success, 1 failure (message on stderr), 2 usage error. */
int lp_migrate_main(const lp_config *cfg, int argc, char **argv);

#endif
