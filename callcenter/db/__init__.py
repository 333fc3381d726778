"""Engine, sessions and the few SQL helpers every aggregate module shares."""

from callcenter.db.base import Base, UTCDateTime
from callcenter.db.session import Database, executemany, insert_ignoring, insert_ignoring_duplicates

__all__ = ["Base", "Database", "UTCDateTime", "executemany", "insert_ignoring", "insert_ignoring_duplicates"]
