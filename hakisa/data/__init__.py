"""Episodes on disk: append-only, chunked, compressed, crash-safe, validated, exportable to Minari."""
from hakisa.data.store import (
    EVENT_DTYPE,
    CheckReport,
    DataError,
    EpisodeInfo,
    EpisodeStore,
    EpisodeWriter,
    events_array,
)
from hakisa.data.transitions import Transitions

__all__ = [
    "EVENT_DTYPE",
    "CheckReport",
    "DataError",
    "EpisodeInfo",
    "EpisodeStore",
    "EpisodeWriter",
    "Transitions",
    "events_array",
]
