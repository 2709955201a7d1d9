"""One pipeline from a clip to everything a model reads: decode once, derive every view.

A model may read more than one *view* of a clip. Every network reads its input features
(a :class:`~serlib.features.FeatureSpec`); a network trained on speed-perturbed copies also
reads the features of those copies; the recommended model's fusion regression reads the
clip statistics of :mod:`serlib.functionals`, of the clip as it is and played 0.9 and 1.1
times as fast. A :class:`Pipeline` names those views, and :meth:`Pipeline.transform`:

1. looks every view of every clip up in the on-disk cache (:mod:`serlib.feature_cache`,
   keyed by a hash of the file's bytes and the view's own settings, with a checksum on
   every entry), so a second run on the same clips computes nothing;
2. decodes each clip that misses any view **once**, at the one sample rate all its views
   share (16 kHz for every registered model), and derives every missing view from that
   one signal: speed copies, trimming and cropping each view asks for, its features;
3. runs the pretrained voice encoder over many clips at once, as :mod:`serlib.voice_encoder`
   is fastest that way, and fetches its weights before any clip is decoded, so a missing
   download fails in the first second, not ten minutes in.

The pipeline is saved with a run (``run.json``, :meth:`Pipeline.to_dict`) and rebuilt from
it by ``serlib predict`` and ``serlib evaluate``, so a clip is described by the same code
in training and in prediction. Explained in the chapter "Beyond the reports".
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from .audio import audio_info, load_audio, resample
from .errors import SerlibError
from .features import FeatureSpec, extract_recording
from .level import check_level, match_level
from .log import get_logger, info

log = get_logger(__name__)

#: Bump when :mod:`serlib.functionals` computes anything differently: cached statistics of
#: another version are then never used (they live under another key).
FUNCTIONALS_VERSION = 1
#: Clips decoded and described together (the voice encoder reads their windows in one batch).
CHUNK = 32


def _speeds(values, *, allow_empty: bool) -> tuple:
    try:
        out = tuple(float(v) for v in (values or ()))
    except (TypeError, ValueError):
        raise SerlibError(f"speeds={values!r}: give numbers such as 1.0, 0.9, 1.1") from None
    if not allow_empty and not out:
        raise SerlibError("a pipeline needs at least one speed for the network's features (1.0)")
    for value in out:
        if not (np.isfinite(value) and 0.5 <= value <= 2.0):
            raise SerlibError(f"speed {value!r}: speeds lie between 0.5 and 2 (1.0 = the clip as it is)")
    if len(set(out)) != len(out):
        raise SerlibError(f"speeds {out}: each speed once")
    return out


@dataclass(frozen=True)
class StatsView:
    """The clip-statistics view: :mod:`serlib.functionals` of the clip played at ``speed``.

    Has what the feature cache asks of a spec (``key``, ``shape``, ``to_dict``); its key
    changes with the statistics' version, the encoder's weights and the analysis limit.
    Explained in the chapter "Beyond the reports".
    """

    speed: float = 1.0

    def to_dict(self) -> dict:
        from .audio import MAX_ANALYSIS_SECONDS
        from .functionals import SR, functional_names
        from .voice_encoder import SHA256

        return {"kind": "functionals", "speed": float(self.speed), "version": FUNCTIONALS_VERSION, "sr": SR,
                "n": len(functional_names()), "max_seconds": MAX_ANALYSIS_SECONDS, "encoder_sha256": SHA256}

    def key(self) -> str:
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return "functionals-" + hashlib.sha1(blob).hexdigest()[:16]

    @property
    def shape(self) -> tuple:
        from .functionals import functional_names

        return (len(functional_names()),)

    @property
    def sr(self) -> int:
        from .functionals import SR

        return SR


@dataclass(frozen=True)
class SpeedView:
    """The network's input features of the clip played ``speed`` times as fast (a training copy).

    Explained in the chapter "Beyond the reports".
    """

    spec: FeatureSpec
    speed: float

    def to_dict(self) -> dict:
        return {"kind": "features at speed", "speed": float(self.speed), "spec": self.spec.to_dict()}

    def key(self) -> str:
        return f"{self.spec.key()}-speed{self.speed:g}"

    @property
    def shape(self) -> tuple:
        return tuple(self.spec.shape)

    @property
    def sr(self) -> int:
        return int(self.spec.sr)


@dataclass(frozen=True)
class LevelView:
    """A view of the clip scaled to ``level_db`` first (:func:`serlib.level.match_level`): its
    cache key differs from the unscaled view's. Explained in the chapter "Does it travel?"."""

    view: object
    level_db: float

    def to_dict(self) -> dict:
        return {**self.view.to_dict(), "level_db": float(self.level_db)}

    def key(self) -> str:
        return f"{self.view.key()}-level{self.level_db:g}"

    @property
    def shape(self) -> tuple:
        return tuple(self.view.shape)

    @property
    def sr(self) -> int:
        return int(self.view.sr)


@dataclass
class ClipViews:
    """What :meth:`Pipeline.transform` returns: every view of every clip, rows in input order.

    ``features[speed]`` is ``(n, *spec.shape)``; ``functionals[speed]`` is ``(n, d)``.
    ``decoded`` counts the clips that had to be decoded (0 when the cache held everything).
    Explained in the chapter "Beyond the reports".
    """

    features: dict
    functionals: dict
    decoded: int = 0

    def functionals_at(self, speeds) -> np.ndarray:
        """The statistics at ``speeds``: ``(n, d)`` for one speed, ``(n, len(speeds), d)`` for more."""
        speeds = tuple(float(s) for s in speeds)
        if len(speeds) == 1:
            return self.functionals[speeds[0]]
        return np.stack([self.functionals[s] for s in speeds], axis=1)


@dataclass(frozen=True)
class Pipeline:
    """The views of a clip a model reads. Explained in the chapter "Beyond the reports".

    ``features``: the network's input (:class:`~serlib.features.FeatureSpec`);
    ``feature_speeds``: the speeds at which the network's features are wanted (1.0 always
    first; others are speed-perturbed training copies); ``functional_speeds``: the speeds
    at which clip statistics are wanted (empty: none, a network on its own); ``level_db``:
    ``None``, or the level every clip is scaled to before any view is derived
    (:func:`serlib.level.match_level`: its loudest frames at that many dB re full scale).
    """

    features: FeatureSpec
    feature_speeds: tuple = (1.0,)
    functional_speeds: tuple = ()
    level_db: float | None = None

    def __post_init__(self):
        if not isinstance(self.features, FeatureSpec):
            raise SerlibError(f"Pipeline.features must be a FeatureSpec, not {type(self.features).__name__}")
        speeds = _speeds(self.feature_speeds, allow_empty=False)
        if 1.0 not in speeds:
            speeds = (1.0, *speeds)
        object.__setattr__(self, "feature_speeds", speeds)
        object.__setattr__(self, "functional_speeds", _speeds(self.functional_speeds, allow_empty=True))
        object.__setattr__(self, "level_db", check_level(self.level_db))

    # ------------------------------------------------------------------ construction
    @classmethod
    def for_model(cls, entry, *, recipe=None, functional_speeds=None) -> Pipeline:
        """The pipeline a registry entry trains with: its features, the speed copies its
        network trains on, and (for a fused model) the statistics its regression learns
        from and scores. Those two come from ``recipe`` (a :class:`~serlib.recipes.Recipe`;
        default the entry's own, ``entry.recipe``). ``functional_speeds`` overrides the last."""
        source = recipe if recipe is not None else getattr(entry, "recipe", entry)
        speeds = (1.0, *(float(f) for f in (getattr(source, "speed_copies", ()) or ())))
        fusion = getattr(source, "functionals_fusion", None)
        if functional_speeds is None:
            functional_speeds = ()
            if fusion:
                extra = [float(f) for f in fusion.get("speed_copies", ()) or ()]
                functional_speeds = (1.0, *[f for f in extra if f != 1.0])
        return cls(features=entry.features, feature_speeds=speeds, functional_speeds=tuple(functional_speeds),
                   level_db=getattr(source, "level_db", None))

    def to_dict(self) -> dict:
        """What ``run.json`` stores: every view's full settings (keys included, for checking)."""
        return {"features": self.features.to_dict(), "feature_speeds": list(self.feature_speeds),
                "functional_speeds": list(self.functional_speeds),
                "functionals": [StatsView(s).to_dict() for s in self.functional_speeds],
                "level_db": self.level_db}

    @classmethod
    def from_dict(cls, data: dict, *, source: str = "run.json") -> Pipeline:
        """The pipeline :meth:`to_dict` described; refuses one whose statistics were computed
        differently from this serlib's (another version or other encoder weights)."""
        try:
            pipeline = cls(features=FeatureSpec.from_dict(data["features"]),
                           feature_speeds=tuple(data.get("feature_speeds") or (1.0,)),
                           functional_speeds=tuple(data.get("functional_speeds") or ()),
                           level_db=data.get("level_db"))
        except (KeyError, TypeError, ValueError, SerlibError) as error:
            raise SerlibError(f"{source}: its pipeline cannot be read ({error}); retrain the run") from None
        for stored, speed in zip(data.get("functionals") or [], pipeline.functional_speeds):
            now = StatsView(speed).to_dict()
            differs = [k for k in ("version", "sr", "n", "encoder_sha256") if stored.get(k) != now.get(k)]
            if differs:
                raise SerlibError(f"{source}: its clip statistics were computed by another serlib "
                                  f"({', '.join(differs)} differ); retrain the run with this version")
        return pipeline

    def replace(self, **changes) -> Pipeline:
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ views
    def views(self) -> list:
        """``[(("features" | "functionals", speed), view), ...]`` in a fixed order."""
        out = [(("features", s), self.features if s == 1.0 else SpeedView(self.features, s))
               for s in self.feature_speeds]
        out += [(("functionals", s), StatsView(s)) for s in self.functional_speeds]
        if self.level_db is not None:
            out = [(name, LevelView(view, self.level_db)) for name, view in out]
        return out

    @property
    def decode_rate(self) -> int | None:
        """The rate every view reads (None when they differ: decode at the file's own rate)."""
        rates = {int(view.sr) for _, view in self.views()}
        return rates.pop() if len(rates) == 1 else None

    # ------------------------------------------------------------------ work
    def describe_signal(self, y: np.ndarray, sr: int, source="<waveform>") -> ClipViews:
        """Every view of one signal ``y`` at ``sr`` Hz (no cache): what ``predict_waveform`` uses."""
        y = np.asarray(y, dtype=np.float32)
        if self.level_db is not None:
            y = match_level(y, int(sr), self.level_db)
        signal = _Signal(y, int(sr), str(source))
        rows = _describe(self, [signal], [name for name, _ in self.views()])
        return _stack(self, [rows[0]], decoded=1)

    def transform(self, paths, *, cache: bool = True, progress: bool = True, verbose: bool = False) -> ClipViews:
        """Every view of every file in ``paths`` (rows in order), each clip decoded at most once.

        Views found in the cache are loaded; a clip missing any view is decoded once and the
        missing views derived from it, then stored. A pipeline with the network's features
        alone (every report's model) goes through :func:`serlib.feature_cache.extract_corpus`,
        which spreads the clips over worker processes, each clip decoded once there too. An unreadable file raises its one-line
        :class:`~serlib.errors.AudioError`. ``cache=False`` computes everything in memory.
        """
        from tqdm import tqdm

        from . import feature_cache

        paths = [str(p) for p in paths]
        names = [name for name, _ in self.views()]
        if names == [("features", 1.0)] and self.level_db is None:   # the network's input alone: in parallel
            X = np.asarray(feature_cache.extract_corpus(paths, self.features, cache=cache, progress=progress))
            if X.dtype == object:
                raise SerlibError("features of different lengths cannot be stacked; give the FeatureSpec a "
                                  "fixed n_frames or duration")
            return ClipViews(features={1.0: X.astype(np.float32, copy=False)}, functionals={},
                             decoded=int(feature_cache.LAST_RUN.get("computed", len(paths))))
        if self.functional_speeds:
            from .voice_encoder import load_encoder

            load_encoder()     # the weights are fetched and checked before any clip is decoded
        stores, digests = {}, None
        if cache and paths:
            for name, view in self.views():
                store = feature_cache.open_store(view)   # None: the cache cannot be written (warned once)
                if store is not None:
                    stores[name] = store
            if stores:
                index = feature_cache.ContentIndex(next(iter(stores.values())).dir.parent)
                digests = [index.lookup(p) for p in paths]
                try:
                    index.save()
                except OSError:
                    pass
        found: dict = {name: [None] * len(paths) for name in names}
        for name, store in stores.items():
            whole = store.get_corpus(digests)
            if whole is not None:
                found[name] = list(whole)
                continue
            for i, digest in enumerate(digests):
                found[name][i] = store.get(digest)
        todo = [i for i in range(len(paths)) if any(found[name][i] is None for name in names)]
        if todo:
            info(log, verbose, "describing %d of %d clips (%s) ...", len(todo), len(paths),
                 ", ".join(f"{kind} at speed {s:g}" for kind, s in names))
        with tqdm(total=len(todo), unit="clip", desc="clips", disable=not (progress and todo)) as bar:
            for start in range(0, len(todo), CHUNK):
                chunk = todo[start:start + CHUNK]
                signals = [self._decode(paths[i]) for i in chunk]
                wanted = [[name for name in names if found[name][i] is None] for i in chunk]
                rows = _describe(self, signals, sorted({n for w in wanted for n in w}, key=names.index))
                for i, row, need in zip(chunk, rows, wanted):
                    for name in need:
                        found[name][i] = row[name]
                        if name in stores:
                            stores[name].put(digests[i], row[name])
                bar.update(len(chunk))
        if todo:                     # next time, one array per view instead of one file per clip
            for name, store in stores.items():
                store.put_corpus(digests, np.stack(found[name]))
        return _stack(self, [{name: found[name][i] for name in names} for i in range(len(paths))],
                      decoded=len(todo))

    def _decode(self, path: str) -> _Signal:
        rate = self.decode_rate
        if rate is None:
            rate = int(audio_info(path)["sample_rate"])
        y = load_audio(path, rate)
        if self.level_db is not None:
            y = match_level(y, rate, self.level_db)
        return _Signal(y, rate, path)


@dataclass
class _Signal:
    y: np.ndarray
    sr: int
    source: str

    def at(self, rate: int) -> np.ndarray:
        return self.y if rate == self.sr else resample(self.y, self.sr, rate)


def _describe(pipeline: Pipeline, signals: list, wanted: Iterable) -> list[dict]:
    """The ``wanted`` views of each decoded signal: one dict per signal."""
    from .augment import speed_perturb

    wanted = list(wanted)
    rows = [{} for _ in signals]
    spec = pipeline.features
    for name in wanted:
        kind, speed = name
        if kind != "features":
            continue
        for row, signal in zip(rows, signals):
            y = signal.at(spec.sr)
            if speed != 1.0:
                y = speed_perturb(y, spec.sr, speed)
            row[name] = extract_recording(y, spec, signal.source)
    stats = [name for name in wanted if name[0] == "functionals"]
    if stats:
        from .functionals import SR, many_functionals

        variants = []
        for signal in signals:
            y = signal.at(SR)
            variants += [y if speed == 1.0 else speed_perturb(y, SR, speed) for _, speed in stats]
        table = many_functionals(variants, SR)
        for k, row in enumerate(rows):
            for j, name in enumerate(stats):
                row[name] = table[k * len(stats) + j]
    return rows


def _stack(pipeline: Pipeline, rows: list, *, decoded: int) -> ClipViews:
    def column(name, view):
        if not rows:
            return np.zeros((0, *view.shape), np.float32)
        return np.stack([np.asarray(row[name], dtype=np.float32) for row in rows])

    features, stats = {}, {}
    for name, view in pipeline.views():
        (features if name[0] == "features" else stats)[name[1]] = column(name, view)
    return ClipViews(features=features, functionals=stats, decoded=decoded)


__all__ = ["Pipeline", "ClipViews", "StatsView", "SpeedView", "LevelView", "FUNCTIONALS_VERSION"]
