"""The SQLite schema, created and upgraded by sqlite-utils migrations.

Add a new migration function at the end to change the schema; never edit one
that has shipped. A file that records migrations this code does not know was
written by a newer tocsin and is refused untouched.
"""

from collections.abc import Callable
from pathlib import Path

import sqlite_utils
from sqlite_utils import Migrations

from incidents.errors import SchemaTooNewError

MigrationFunction = Callable[[sqlite_utils.Database], None]

MIGRATIONS = Migrations("tocsin")
SCHEMA_VERSIONS: list[str] = []


def migration(name: str) -> Callable[[MigrationFunction], MigrationFunction]:
    """Register a migration and remember its name as a schema version this code knows."""
    SCHEMA_VERSIONS.append(name)
    return MIGRATIONS(name=name)


@migration("0001_incidents")
def create_incidents(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE incidents (
            number INTEGER PRIMARY KEY AUTOINCREMENT,
            title TEXT NOT NULL,
            severity TEXT NOT NULL CHECK (severity IN ('P0', 'P1', 'P2', 'P3')),
            status TEXT NOT NULL
                CHECK (status IN ('open', 'acknowledged', 'mitigated', 'resolved', 'closed')),
            service TEXT NOT NULL DEFAULT '',
            dedup_key TEXT,
            channel TEXT,
            thread_ts TEXT,
            started_at TEXT,
            detected_at TEXT,
            declared_at TEXT,
            acknowledged_at TEXT,
            mitigated_at TEXT,
            resolved_at TEXT,
            closed_at TEXT,
            closure_reason TEXT
                CHECK (closure_reason IN ('resolved', 'duplicate', 'false_positive', 'cancelled')),
            updated_at TEXT NOT NULL
        )
        """
    )
    # At most one active incident per dedup key, enforced by SQLite itself so
    # that two writers (threads, processes, replicas) cannot both open one.
    db.execute(
        """
        CREATE UNIQUE INDEX incidents_one_active_per_key ON incidents (dedup_key)
        WHERE dedup_key IS NOT NULL AND status IN ('open', 'acknowledged', 'mitigated')
        """
    )
    db.execute("CREATE INDEX incidents_by_status ON incidents (status, number)")
    db.execute(
        """
        CREATE TABLE timeline (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            incident_number INTEGER NOT NULL REFERENCES incidents (number),
            at TEXT NOT NULL,
            actor_source TEXT NOT NULL,
            actor_id TEXT NOT NULL,
            actor_name TEXT NOT NULL DEFAULT '',
            kind TEXT NOT NULL,
            field TEXT,
            old TEXT,
            new TEXT,
            text TEXT NOT NULL DEFAULT ''
        )
        """
    )
    db.execute("CREATE INDEX timeline_by_incident ON timeline (incident_number, id)")
    for verb in ("UPDATE", "DELETE"):
        db.execute(
            f"""
            CREATE TRIGGER timeline_append_only_{verb.lower()} BEFORE {verb} ON timeline
            BEGIN SELECT RAISE(ABORT, 'the incident timeline is append-only'); END
            """
        )
    db.execute(
        """
        CREATE TABLE participants (
            incident_number INTEGER NOT NULL REFERENCES incidents (number),
            actor_source TEXT NOT NULL,
            actor_id TEXT NOT NULL,
            actor_name TEXT NOT NULL DEFAULT '',
            first_at TEXT NOT NULL,
            PRIMARY KEY (incident_number, actor_source, actor_id)
        )
        """
    )


@migration("0002_probes")
def create_probe_tables(db: sqlite_utils.Database) -> None:
    """Detection state, recent results, state changes, incident membership and heartbeats."""
    db.execute(
        """
        CREATE TABLE probe_states (
            probe_id TEXT PRIMARY KEY,
            state TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE probe_samples (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            probe_id TEXT NOT NULL,
            started_at TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('ok', 'fail', 'error')),
            duration_ms REAL NOT NULL,
            reason TEXT NOT NULL,
            measurements TEXT NOT NULL DEFAULT '[]',
            evidence TEXT NOT NULL DEFAULT '[]'
        )
        """
    )
    db.execute("CREATE INDEX probe_samples_by_probe ON probe_samples (probe_id, id)")
    db.execute(
        """
        CREATE TABLE probe_changes (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            probe_id TEXT NOT NULL,
            at TEXT NOT NULL,
            old TEXT NOT NULL,
            new TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT ''
        )
        """
    )
    db.execute("CREATE INDEX probe_changes_by_probe ON probe_changes (probe_id, id)")
    db.execute(
        """
        CREATE TABLE incident_probes (
            incident_number INTEGER NOT NULL REFERENCES incidents (number),
            probe_id TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('member', 'symptom')),
            joined_at TEXT NOT NULL,
            recovered_at TEXT,
            reason TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (incident_number, probe_id)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE heartbeats (
            probe_id TEXT PRIMARY KEY,
            watching_since TEXT NOT NULL,
            last_ping TEXT,
            failed_at TEXT
        )
        """
    )


@migration("0003_slack")
def create_delivery_tables(db: sqlite_utils.Database) -> None:
    """The outbox of Slack writes, escalation steps, ad-hoc maintenance, pins and replays."""
    db.execute(
        """
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            incident_number INTEGER NOT NULL REFERENCES incidents (number),
            kind TEXT NOT NULL CHECK (kind IN ('card', 'reply', 'dm')),
            timeline_id INTEGER,
            recipient TEXT,
            text TEXT NOT NULL DEFAULT '',
            key TEXT NOT NULL UNIQUE,
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'skipped')),
            attempts INTEGER NOT NULL DEFAULT 0,
            not_before TEXT,
            created_at TEXT NOT NULL,
            claimed_at TEXT,
            sent_at TEXT,
            channel TEXT,
            ts TEXT,
            error TEXT
        )
        """
    )
    # Successive changes of one card coalesce into the one pending update.
    db.execute(
        """
        CREATE UNIQUE INDEX outbox_one_pending_card ON outbox (incident_number)
        WHERE kind = 'card' AND state = 'pending'
        """
    )
    db.execute("CREATE INDEX outbox_open ON outbox (state, incident_number, id)")
    db.execute(
        """
        CREATE TABLE escalation_plans (
            incident_number INTEGER PRIMARY KEY REFERENCES incidents (number),
            severity TEXT NOT NULL,
            policy TEXT NOT NULL,
            planned_at TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE escalation_steps (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            incident_number INTEGER NOT NULL REFERENCES incidents (number),
            kind TEXT NOT NULL CHECK (kind IN ('page', 'reminder')),
            round INTEGER NOT NULL,
            level INTEGER NOT NULL,
            targets TEXT NOT NULL,
            due_at TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'delivered', 'cancelled', 'skipped')),
            done_at TEXT,
            late INTEGER NOT NULL DEFAULT 0
        )
        """
    )
    db.execute("CREATE INDEX escalation_steps_due ON escalation_steps (state, due_at)")
    db.execute(
        "CREATE INDEX escalation_steps_by_incident ON escalation_steps (incident_number, state)"
    )
    db.execute(
        """
        CREATE TABLE maintenance_windows (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            probes TEXT NOT NULL,
            starts_at TEXT NOT NULL,
            ends_at TEXT NOT NULL,
            reason TEXT NOT NULL,
            created_by TEXT NOT NULL,
            ended_at TEXT,
            ended_by TEXT
        )
        """
    )
    db.execute(
        """
        CREATE TABLE pinned_messages (
            channel TEXT NOT NULL,
            message_ts TEXT NOT NULL,
            incident_number INTEGER NOT NULL REFERENCES incidents (number),
            pinned_at TEXT NOT NULL,
            PRIMARY KEY (channel, message_ts)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE seen_requests (
            signature TEXT PRIMARY KEY,
            seen_at TEXT NOT NULL
        )
        """
    )


@migration("0004_outbox_late_copies")
def outbox_late_copies(db: sqlite_utils.Database) -> None:
    """A post searched for and not found may still land late: when that attempt was claimed,
    and when the channel is next searched for such a late copy (NULL: no longer looked for)."""
    db.execute("ALTER TABLE outbox ADD COLUMN uncertain_since TEXT")
    db.execute("ALTER TABLE outbox ADD COLUMN recheck_at TEXT")
    db.execute("CREATE INDEX outbox_rechecks ON outbox (recheck_at) WHERE recheck_at IS NOT NULL")


@migration("0005_notices")
def notices(db: sqlite_utils.Database) -> None:
    """Channel notices that belong to no incident (probes tocsin cannot see): the outbox's
    incident becomes optional and `notice` a kind (SQLite changes a CHECK only by copying
    the table); the blind probes' episodes are kept beside it."""
    columns = (
        "id, incident_number, kind, timeline_id, recipient, text, key, state, attempts, "
        "not_before, created_at, claimed_at, sent_at, channel, ts, error, uncertain_since, "
        "recheck_at"
    )
    db.execute(
        """
        CREATE TABLE outbox_next (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            incident_number INTEGER REFERENCES incidents (number),
            kind TEXT NOT NULL CHECK (kind IN ('card', 'reply', 'dm', 'notice')),
            timeline_id INTEGER,
            recipient TEXT,
            text TEXT NOT NULL DEFAULT '',
            key TEXT NOT NULL UNIQUE,
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'skipped')),
            attempts INTEGER NOT NULL DEFAULT 0,
            not_before TEXT,
            created_at TEXT NOT NULL,
            claimed_at TEXT,
            sent_at TEXT,
            channel TEXT,
            ts TEXT,
            error TEXT,
            uncertain_since TEXT,
            recheck_at TEXT,
            CHECK ((kind = 'notice') = (incident_number IS NULL))
        )
        """
    )
    db.execute(f"INSERT INTO outbox_next ({columns}) SELECT {columns} FROM outbox")
    db.execute("DROP TABLE outbox")
    db.execute("ALTER TABLE outbox_next RENAME TO outbox")
    db.execute(
        "CREATE UNIQUE INDEX outbox_one_pending_card ON outbox (incident_number) "
        "WHERE kind = 'card' AND state = 'pending'"
    )
    db.execute("CREATE INDEX outbox_open ON outbox (state, incident_number, id)")
    db.execute("CREATE INDEX outbox_rechecks ON outbox (recheck_at) WHERE recheck_at IS NOT NULL")
    db.execute(
        """
        CREATE TABLE blind_spots (
            probe_id TEXT PRIMARY KEY,
            since TEXT NOT NULL,
            reason TEXT NOT NULL,
            told_at TEXT
        )
        """
    )


def check_schema_version(db: sqlite_utils.Database, path: Path) -> None:
    """Refuse, without writing, a file migrated by a newer tocsin."""
    unknown = [m.name for m in MIGRATIONS.applied(db) if m.name not in SCHEMA_VERSIONS]
    if unknown:
        raise SchemaTooNewError(
            f"{path}: this database was written by a newer tocsin (schema "
            f"{', '.join(unknown)}); it was left untouched. Upgrade tocsin to open it"
        )
