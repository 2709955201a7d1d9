"""Data: corpus adapters (RAVDESS, EmoDB), their indexes, the official downloads, and the
synthetic stand-in corpus.

Explained in the chapter "The data".
"""
from .adapters import (COLUMNS, CorpusAdapter, corpus_names, detect_corpus, get_corpus, index_folder,
                       label_from_name, ordered_emotions, parse_any, register_corpus)
from .ravdess import EMOTIONS, SONG_EMOTIONS, index_ravdess, parse_name, summarize
from .emodb import EMODB_EMOTIONS, index_emodb
from .corpus import QUICK_ACTORS, Corpus, clear_index_cache, load_corpus
from .download import (EMODB_URL, RAVDESS_MD5, RAVDESS_URL, completed_download, download_emodb,
                       download_ravdess)
from .standin import is_standin, make_standin_corpus

__all__ = [
    "EMOTIONS", "SONG_EMOTIONS", "index_ravdess", "parse_name", "summarize",
    "EMODB_EMOTIONS", "index_emodb", "COLUMNS", "CorpusAdapter", "register_corpus", "get_corpus",
    "corpus_names", "detect_corpus", "index_folder", "parse_any", "label_from_name", "ordered_emotions",
    "Corpus", "load_corpus", "clear_index_cache", "QUICK_ACTORS",
    "download_ravdess", "download_emodb", "completed_download", "RAVDESS_URL", "RAVDESS_MD5", "EMODB_URL",
    "make_standin_corpus", "is_standin",
]
