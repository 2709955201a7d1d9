"""Data: the RAVDESS index, the official download, and the synthetic stand-in corpus.

Explained in the chapter "The data".
"""
from .corpus import QUICK_ACTORS, Corpus, clear_index_cache, load_corpus
from .download import RAVDESS_MD5, RAVDESS_URL, completed_download, download_ravdess
from .ravdess import EMOTIONS, SONG_EMOTIONS, index_ravdess, parse_name, summarize
from .standin import is_standin, make_standin_corpus

__all__ = [
    "EMOTIONS", "SONG_EMOTIONS", "index_ravdess", "parse_name", "summarize",
    "Corpus", "load_corpus", "clear_index_cache", "QUICK_ACTORS",
    "download_ravdess", "completed_download", "RAVDESS_URL", "RAVDESS_MD5",
    "make_standin_corpus", "is_standin",
]
