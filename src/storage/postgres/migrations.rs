//! The schema, as numbered migrations applied in order at start, each once, under an
//! advisory lock (several processes may start together).
//!
//! A migration is never edited once released: a change is a new one at the end.
//!
//! May import: nothing of the crate.

/// The migrations, in order; the number of each is its position + 1.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: one row per log (named by its store), the staged batches, the dedup keys.
    "CREATE TABLE srcos_log (
        log_name    text PRIMARY KEY,
        epoch       bigint NOT NULL,
        holder      text,
        lease_until timestamptz,
        size        bigint,
        checkpoint  bytea
    );
    CREATE TABLE srcos_staged (
        log_name   text NOT NULL REFERENCES srcos_log (log_name),
        old_size   bigint NOT NULL,
        new_size   bigint NOT NULL,
        epoch      bigint NOT NULL,
        checkpoint bytea NOT NULL,
        tiles      bytea NOT NULL,
        PRIMARY KEY (log_name, old_size)
    );
    CREATE TABLE srcos_dedup (
        log_name  text NOT NULL REFERENCES srcos_log (log_name),
        dedup_key bytea NOT NULL,
        leaf      bigint NOT NULL,
        PRIMARY KEY (log_name, dedup_key)
    );",
    // 2: the lease holder's advertised URL (`serve --advertise`), written when the lease
    // is taken and cleared when it is given up: where frontends forward writes.
    "ALTER TABLE srcos_log ADD COLUMN advertised text;",
];

/// The advisory lock key migrations are applied under ("srcos" in ASCII).
pub(crate) const MIGRATION_LOCK: i64 = 0x0073_7263_6f73;
