"""The chain's PostgreSQL schema (schema `agecam`), as migrations: one list of statements per version.

Every record is keyed by its till (store_id, till_id), the till's event-log key (a replaced disk starts a
new log) and its own key there. `inbox` holds one row per message id: the unique key that makes a resend
a no-op. Snapshots (runs, hourly statistics, transactions) carry the outbox row id they came from (`seq`)
and only a newer one replaces them, so two collectors may write them in any order.
"""

# Each entry moves the schema from version (index) to (index + 1). Never edit a released one.
MIGRATIONS: list[list[str]] = [
    [
        "CREATE SCHEMA IF NOT EXISTS agecam",
        """CREATE TABLE agecam.inbox (
            store_id text NOT NULL, till_id text NOT NULL, msg_id text NOT NULL, kind text NOT NULL,
            created_at timestamptz NOT NULL, received_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            PRIMARY KEY (store_id, till_id, msg_id))""",
        """CREATE TABLE agecam.tills (
            store_id text NOT NULL, till_id text NOT NULL,
            first_seen timestamptz NOT NULL, last_seen timestamptz NOT NULL,
            availability text, availability_at timestamptz, status jsonb,
            PRIMARY KEY (store_id, till_id))""",
        """CREATE TABLE agecam.runs (
            store_id text NOT NULL, till_id text NOT NULL, log_key text NOT NULL, run_id integer NOT NULL,
            started_at timestamptz NOT NULL, ended_at timestamptz, status text NOT NULL, mode text NOT NULL,
            model_sha256 text NOT NULL, provider text NOT NULL, agecam_version text NOT NULL,
            frames bigint NOT NULL, dropped_frames bigint NOT NULL, faces bigint NOT NULL, seq bigint NOT NULL,
            PRIMARY KEY (store_id, till_id, log_key, run_id))""",
        """CREATE TABLE agecam.customers (
            store_id text NOT NULL, till_id text NOT NULL, log_key text NOT NULL, run_id integer NOT NULL,
            track_id integer NOT NULL, first_seen timestamptz NOT NULL, last_seen timestamptz NOT NULL,
            age real NOT NULL, age_low real NOT NULL, age_high real NOT NULL, samples integer NOT NULL,
            age_group text NOT NULL, counted boolean NOT NULL,
            PRIMARY KEY (store_id, till_id, log_key, run_id, track_id))""",
        "CREATE INDEX customers_by_time ON agecam.customers (first_seen)",
        """CREATE TABLE agecam.hourly_stats (
            store_id text NOT NULL, till_id text NOT NULL, log_key text NOT NULL, run_id integer NOT NULL,
            hour timestamptz NOT NULL, age_group text NOT NULL, customers integer NOT NULL,
            age_sum double precision NOT NULL, seq bigint NOT NULL,
            PRIMARY KEY (store_id, till_id, log_key, run_id, hour, age_group))""",
        "CREATE INDEX hourly_stats_by_hour ON agecam.hourly_stats (hour)",
        """CREATE TABLE agecam.transactions (
            store_id text NOT NULL, till_id text NOT NULL, log_key text NOT NULL, run_id integer NOT NULL,
            number integer NOT NULL, pos_transaction_id text, pos_till_id text NOT NULL, cashier_id text,
            started_at timestamptz NOT NULL, ended_at timestamptz, status text NOT NULL,
            restricted_items integer NOT NULL, id_check text, check_required boolean NOT NULL, track_id integer,
            age real, age_low real, age_high real, samples integer, seq bigint NOT NULL,
            PRIMARY KEY (store_id, till_id, log_key, run_id, number))""",
        "CREATE INDEX transactions_by_time ON agecam.transactions (started_at)",
        """CREATE TABLE agecam.alerts (
            store_id text NOT NULL, till_id text NOT NULL, log_key text NOT NULL, alert_id integer NOT NULL,
            run_id integer NOT NULL, transaction_number integer NOT NULL, kind text NOT NULL, type text NOT NULL,
            severity text NOT NULL, at timestamptz NOT NULL, latency_s real, pos_till_id text NOT NULL,
            cashier_id text, track_id integer, age real, age_low real, age_high real, samples integer,
            association jsonb, has_evidence boolean NOT NULL,
            PRIMARY KEY (store_id, till_id, log_key, alert_id))""",
        "CREATE INDEX alerts_by_time ON agecam.alerts (at)",
        # Filled by the central review app: what a person decided about a flag (crops stay on the till).
        """CREATE TABLE agecam.flag_reviews (
            store_id text NOT NULL, till_id text NOT NULL, log_key text NOT NULL, alert_id integer NOT NULL,
            outcome text NOT NULL CHECK (outcome IN ('confirmed', 'dismissed', 'escalated')),
            reviewer text NOT NULL, reviewed_at timestamptz NOT NULL DEFAULT now(), note text,
            PRIMARY KEY (store_id, till_id, log_key, alert_id))""",
        """CREATE VIEW agecam.chain_hourly AS
            SELECT store_id, till_id, hour, age_group, sum(customers)::integer AS customers,
                   round((sum(age_sum) / nullif(sum(customers), 0))::numeric, 1) AS mean_age
            FROM agecam.hourly_stats GROUP BY store_id, till_id, hour, age_group""",
        """CREATE VIEW agecam.chain_hourly_by_store AS
            SELECT store_id, hour, age_group, sum(customers)::integer AS customers,
                   round((sum(age_sum) / nullif(sum(customers), 0))::numeric, 1) AS mean_age
            FROM agecam.hourly_stats GROUP BY store_id, hour, age_group""",
        """CREATE VIEW agecam.chain_flags AS
            SELECT a.store_id, a.till_id, a.at, a.type, a.severity, a.cashier_id, t.pos_transaction_id,
                   a.age, a.age_low, a.age_high, a.samples, a.has_evidence,
                   coalesce(r.outcome, 'pending') AS review_outcome, r.reviewer, r.reviewed_at, r.note,
                   a.log_key, a.alert_id
            FROM agecam.alerts a
            LEFT JOIN agecam.transactions t ON t.store_id = a.store_id AND t.till_id = a.till_id
                 AND t.log_key = a.log_key AND t.run_id = a.run_id AND t.number = a.transaction_number
            LEFT JOIN agecam.flag_reviews r ON r.store_id = a.store_id AND r.till_id = a.till_id
                 AND r.log_key = a.log_key AND r.alert_id = a.alert_id
            WHERE a.kind = 'flag'""",
        """CREATE VIEW agecam.chain_compliance AS
            SELECT store_id, coalesce(cashier_id, '(unknown)') AS cashier, count(*) AS required,
                   count(id_check) AS checked, round(100.0 * count(id_check) / count(*), 1) AS checked_pct
            FROM agecam.transactions WHERE check_required AND status <> 'open'
            GROUP BY store_id, coalesce(cashier_id, '(unknown)')""",
        """CREATE VIEW agecam.chain_tills AS
            SELECT store_id, till_id, last_seen, now() - last_seen AS silent_for, availability, availability_at,
                   (status ->> 'outbox')::integer AS outbox, status
            FROM agecam.tills""",
        # Not heard from in 15 minutes (a till sends a heartbeat every minute), or gone offline.
        """CREATE VIEW agecam.chain_silent_tills AS
            SELECT * FROM agecam.chain_tills
            WHERE last_seen < now() - interval '15 minutes' OR availability = 'offline'""",
    ],
    # 2: P(real age < the till's Challenge age) beside each estimate (a till's event log schema 7). NULL for
    # rows written before, and for messages from tills that do not send it yet. chain_flags shows it; a
    # replaced view may only add columns at its end, so it comes last there.
    [
        *(f"ALTER TABLE agecam.{table} ADD COLUMN p_under real" for table in ("customers", "transactions", "alerts")),
        """CREATE OR REPLACE VIEW agecam.chain_flags AS
            SELECT a.store_id, a.till_id, a.at, a.type, a.severity, a.cashier_id, t.pos_transaction_id,
                   a.age, a.age_low, a.age_high, a.samples, a.has_evidence,
                   coalesce(r.outcome, 'pending') AS review_outcome, r.reviewer, r.reviewed_at, r.note,
                   a.log_key, a.alert_id, a.p_under
            FROM agecam.alerts a
            LEFT JOIN agecam.transactions t ON t.store_id = a.store_id AND t.till_id = a.till_id
                 AND t.log_key = a.log_key AND t.run_id = a.run_id AND t.number = a.transaction_number
            LEFT JOIN agecam.flag_reviews r ON r.store_id = a.store_id AND r.till_id = a.till_id
                 AND r.log_key = a.log_key AND r.alert_id = a.alert_id
            WHERE a.kind = 'flag'""",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)
MIGRATION_LOCK = 0x61676563616D  # pg_advisory_xact_lock key: collectors starting together migrate once
