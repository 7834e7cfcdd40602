"""The event log's schema, as migrations: SQLite statements, one list per version."""

# Each entry moves the schema from version (index) to (index + 1). Never edit a released one.
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            status TEXT NOT NULL CHECK (status IN ('running', 'completed', 'stopped', 'failed')),
            mode TEXT NOT NULL CHECK (mode IN ('live', 'replay')),
            source TEXT NOT NULL,
            model_path TEXT NOT NULL,
            model_sha256 TEXT NOT NULL,
            provider TEXT NOT NULL,
            agecam_version TEXT NOT NULL,
            config_json TEXT NOT NULL,
            frames INTEGER NOT NULL DEFAULT 0,
            dropped_frames INTEGER NOT NULL DEFAULT 0,
            faces INTEGER NOT NULL DEFAULT 0)""",
        """CREATE TABLE customers (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            track_id INTEGER NOT NULL,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            age REAL NOT NULL,
            age_low REAL NOT NULL,
            age_high REAL NOT NULL,
            samples INTEGER NOT NULL,
            age_group TEXT NOT NULL,
            counted INTEGER NOT NULL CHECK (counted IN (0, 1)),
            ended INTEGER NOT NULL DEFAULT 0 CHECK (ended IN (0, 1)),
            UNIQUE (run_id, track_id))""",
        "CREATE INDEX customers_by_time ON customers (first_seen)",
        """CREATE TABLE hourly_stats (
            run_id INTEGER NOT NULL REFERENCES runs(id),
            hour TEXT NOT NULL,
            age_group TEXT NOT NULL,
            customers INTEGER NOT NULL,
            age_sum REAL NOT NULL,
            PRIMARY KEY (run_id, hour, age_group))""",
    ],
    # 2: POS events, transactions, alerts and flags (edge/store/pos_records.py writes them).
    [
        """CREATE TABLE pos_events (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            received_at TEXT NOT NULL,
            at TEXT NOT NULL,
            t REAL NOT NULL,
            type TEXT NOT NULL,
            till_id TEXT NOT NULL,
            cashier_id TEXT,
            transaction_id TEXT,
            body TEXT NOT NULL)""",
        """CREATE TABLE pos_rejects (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            received_at TEXT NOT NULL,
            http_status INTEGER NOT NULL,
            reason TEXT NOT NULL)""",
        """CREATE TABLE transactions (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            number INTEGER NOT NULL,
            pos_transaction_id TEXT,
            till_id TEXT NOT NULL,
            cashier_id TEXT,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            status TEXT NOT NULL CHECK (status IN ('open', 'completed', 'voided')),
            restricted_items INTEGER NOT NULL,
            id_check TEXT CHECK (id_check IN ('passed', 'failed', 'refused')),
            check_required INTEGER NOT NULL CHECK (check_required IN (0, 1)),
            track_id INTEGER,
            age REAL,
            age_low REAL,
            age_high REAL,
            samples INTEGER,
            association TEXT,
            UNIQUE (run_id, number))""",
        """CREATE TABLE alerts (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            transaction_id INTEGER NOT NULL REFERENCES transactions(id),
            kind TEXT NOT NULL CHECK (kind IN ('alert', 'flag')),
            type TEXT NOT NULL,
            severity TEXT NOT NULL,
            at TEXT NOT NULL,
            t REAL NOT NULL,
            latency_s REAL,
            till_id TEXT NOT NULL,
            cashier_id TEXT,
            track_id INTEGER,
            age REAL,
            age_low REAL,
            age_high REAL,
            samples INTEGER,
            association TEXT,
            evidence TEXT)""",
        "CREATE INDEX alerts_by_time ON alerts (at)",
        "CREATE INDEX transactions_by_time ON transactions (started_at)",
        "CREATE INDEX pos_events_by_run ON pos_events (run_id, t)",
    ],
    # 3: the process of each run, so a run cut off by power loss or kill -9 can be marked failed later.
    ["ALTER TABLE runs ADD COLUMN pid INTEGER"],
    # 4: when that process started (boot id and start time), so a recycled pid is not taken for the run's.
    ["ALTER TABLE runs ADD COLUMN pid_start TEXT"],
    # 5: a pos_rejects row stands for the refusals of one HTTP status within a minute (a flood is one row).
    ["ALTER TABLE pos_rejects ADD COLUMN count INTEGER NOT NULL DEFAULT 1"],
    # 6: restarts and limits (edge/challenge/carry.py). A transaction nobody can decide any more is closed
    # 'unresolved' with a reason, and a row keeps all an open transaction needs to be resumed (its first
    # restricted scan, every ID check). SQLite cannot change a CHECK, so `transactions` is rebuilt with the
    # same ids; alerts refer to it, so their foreign keys are checked at commit, once the rows are back (a
    # missing one fails the migration). Runs say whether they served live POS events and how many of them
    # the policy applied, so the next live run knows which ones to replay.
    [
        "PRAGMA defer_foreign_keys = ON",
        "CREATE TABLE transactions_v3 AS SELECT * FROM transactions",
        "DROP TABLE transactions",
        """CREATE TABLE transactions (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            number INTEGER NOT NULL,
            pos_transaction_id TEXT,
            till_id TEXT NOT NULL,
            cashier_id TEXT,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            status TEXT NOT NULL CHECK (status IN ('open', 'completed', 'voided', 'unresolved')),
            restricted_items INTEGER NOT NULL,
            id_check TEXT CHECK (id_check IN ('passed', 'failed', 'refused')),
            check_required INTEGER NOT NULL CHECK (check_required IN (0, 1)),
            track_id INTEGER,
            age REAL,
            age_low REAL,
            age_high REAL,
            samples INTEGER,
            association TEXT,
            resolution TEXT,
            first_restricted_at TEXT,
            id_checks TEXT,
            UNIQUE (run_id, number))""",
        "INSERT INTO transactions SELECT *, NULL, NULL, NULL FROM transactions_v3",
        "DROP TABLE transactions_v3",
        "CREATE INDEX transactions_by_time ON transactions (started_at)",
        "CREATE INDEX transactions_open ON transactions (run_id) WHERE status = 'open'",
        "CREATE INDEX IF NOT EXISTS alerts_by_transaction ON alerts (transaction_id)",
        "ALTER TABLE runs ADD COLUMN pos TEXT CHECK (pos IN ('live', 'script'))",
        "ALTER TABLE runs ADD COLUMN pos_applied INTEGER",
    ],
    # 7: P(real age < the policy threshold) beside each estimate (policy.mode risk decides on it).
    [f"ALTER TABLE {table} ADD COLUMN p_under REAL" for table in ("customers", "transactions", "alerts")],
    # 8: the review app. Reviewers' outcomes of flags and views of evidence crops are append-only audit
    # tables (triggers refuse UPDATE and DELETE); a live run's heartbeat (till health); indexes that keep
    # a year of one till's pages fast (benchmarks/review_year.py).
    [
        """CREATE TABLE flag_reviews (
            id INTEGER PRIMARY KEY,
            alert_id INTEGER NOT NULL REFERENCES alerts(id),
            at TEXT NOT NULL,
            reviewer TEXT NOT NULL,
            from_outcome TEXT,
            to_outcome TEXT NOT NULL,
            note TEXT NOT NULL DEFAULT '')""",
        "CREATE INDEX flag_reviews_by_alert ON flag_reviews (alert_id, id)",
        "CREATE INDEX flag_reviews_by_time ON flag_reviews (at)",
        """CREATE TABLE evidence_views (
            id INTEGER PRIMARY KEY,
            alert_id INTEGER NOT NULL REFERENCES alerts(id),
            at TEXT NOT NULL,
            viewer TEXT NOT NULL)""",
        "CREATE INDEX evidence_views_by_alert ON evidence_views (alert_id, id)",
        "CREATE INDEX evidence_views_by_time ON evidence_views (at)",
        "CREATE TRIGGER flag_reviews_no_update BEFORE UPDATE ON flag_reviews"
        " BEGIN SELECT RAISE(ABORT, 'flag_reviews is append-only'); END",
        "CREATE TRIGGER flag_reviews_no_delete BEFORE DELETE ON flag_reviews"
        " BEGIN SELECT RAISE(ABORT, 'flag_reviews is append-only'); END",
        "CREATE TRIGGER evidence_views_no_update BEFORE UPDATE ON evidence_views"
        " BEGIN SELECT RAISE(ABORT, 'evidence_views is append-only'); END",
        "CREATE TRIGGER evidence_views_no_delete BEFORE DELETE ON evidence_views"
        " BEGIN SELECT RAISE(ABORT, 'evidence_views is append-only'); END",
        "ALTER TABLE runs ADD COLUMN last_seen TEXT",
        "ALTER TABLE runs ADD COLUMN source_state TEXT",
        "ALTER TABLE runs ADD COLUMN fps REAL",
        # Covering: a year's traffic and age mix are read from the index alone.
        "CREATE INDEX hourly_stats_by_hour ON hourly_stats (hour, age_group, customers, age_sum)",
        # Restricted sales are a few percent of transactions: a small covering index for the overview,
        # compliance and the report, so a year's totals never read every transaction.
        """CREATE INDEX transactions_restricted ON transactions
            (started_at, cashier_id, status, check_required, id_check, till_id, restricted_items)
            WHERE restricted_items > 0""",
        """CREATE INDEX transactions_restricted_by_cashier ON transactions
            (cashier_id, started_at, status, check_required, id_check, restricted_items) WHERE restricted_items > 0""",
        "CREATE INDEX transactions_by_cashier ON transactions (cashier_id, started_at)",
        "CREATE INDEX IF NOT EXISTS alerts_by_transaction ON alerts (transaction_id)",
        "CREATE INDEX pos_events_by_till ON pos_events (run_id, till_id, at)",
    ],
    # 9: fleet: the outbox of records for the chain (edge/store/outbox.py), in the record's own transaction.
    # AUTOINCREMENT: an id is never reused, so (log key, id) names one message for ever. The key tells this
    # log's rows from those of an earlier log on the same till (a replaced disk restarts the ids).
    [
        """CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL CHECK (kind IN ('run', 'customer', 'hourly', 'transaction', 'alert')),
            created_at TEXT NOT NULL,
            body TEXT NOT NULL,
            shipped_at TEXT)""",
        "CREATE INDEX outbox_unshipped ON outbox (id) WHERE shipped_at IS NULL",
        "CREATE TABLE outbox_key (key TEXT NOT NULL)",
        "INSERT INTO outbox_key VALUES (lower(hex(randomblob(8))))",
    ],
    # 10: a transaction keeps which POS event type opened it and whether it is a voided sale's unconfirmed
    # re-ring (edge/challenge/transaction.py), so a sale resumed after a restart is decided as it would have
    # been without one. Earlier rows get what a restart used to assume: opened by a start, confirmed.
    [
        "ALTER TABLE transactions ADD COLUMN opened_by TEXT NOT NULL DEFAULT 'transaction_start'",
        "ALTER TABLE transactions ADD COLUMN unconfirmed INTEGER NOT NULL DEFAULT 0 CHECK (unconfirmed IN (0, 1))",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)
