"""Data: the RAVDESS index, the official download, and the synthetic stand-in corpus."""
from .ravdess import EMOTIONS, SONG_EMOTIONS, index_ravdess, parse_name, summarize

__all__ = ["EMOTIONS", "SONG_EMOTIONS", "index_ravdess", "parse_name", "summarize"]
