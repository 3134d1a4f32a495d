"""Errors of the incident core, each carrying a message fit for the person who caused it."""


class IncidentError(Exception):
    """Root of every error the incident core raises on purpose.

    The message is shown to users as is (CLI, Slack ephemeral replies), so it
    says what went wrong and what to do instead.
    """


class IncidentNotFoundError(IncidentError):
    """No incident has the requested id."""


class IllegalTransitionError(IncidentError):
    """The lifecycle refuses the requested action in the incident's current status."""


class StoreError(IncidentError):
    """The SQLite store cannot be used as asked (locked, newer schema, unreadable)."""


class SchemaTooNewError(StoreError):
    """The database was written by a newer tocsin; it is left untouched."""


class StoreLockedError(StoreError):
    """Another writer kept the database locked longer than we are willing to wait."""


class UnsafeDirectoryError(StoreError):
    """Other users may write to the database's directory; nothing was created or opened."""
