"""Episodes on disk: append-only, chunked, compressed, crash-safe, validated, exportable to Minari."""
from hakisa.data.format import EVENT_DTYPE, DataError, events_array
from hakisa.data.store import CheckReport, EpisodeInfo, EpisodeStore
from hakisa.data.transitions import Transitions
from hakisa.data.writer import EpisodeWriter

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
