"""Cross-validate serlib's recommended model from scratch: features, training, scores, time.

What it measures, on RAVDESS actors 01-20 (``--data``, ``$SERLIB_DATA_DIR`` or
``../shared/data/ravdess``):

* the model's features for every clip, extracted from scratch into an empty cache
  (wall-clock and CPU seconds);
* actor-wise 5-fold cross-validation (``serlib.splits.actor_kfold(k=5, seed=0,
  n_val_actors=0)``: every fold tests two men and two women never heard in training and
  trains on the other 16 actors with the entry's default settings through
  ``serlib.training.fit_split``, the same code ``serlib train recommended`` runs);
* per fold: UAR, accuracy, macro-F1, training wall-clock and CPU seconds;
* mean ± std (sample std, ddof=1) over the folds, and whether features + one training
  stay within the 10-minute budget on this CPU.

No fold's test actors are used for anything but scoring: there is no validation set
(the entry trains a fixed number of epochs), and normalisation is per clip.

Usage::

    python benchmarks/recommended.py                     # full run (about 30 min on 2 cores)
    python benchmarks/recommended.py --folds 0,1         # some folds only
    python benchmarks/recommended.py --quick             # smoke test (2 short epochs)
    python benchmarks/recommended.py --keep /tmp/fusion  # also keep each fold's network probabilities
                                                         # for benchmarks/fusion.py --keep /tmp/fusion
    python benchmarks/recommended.py --epochs 120 --set dropout=0.4 --out /tmp/variant.json
                                                         # a variant: other epochs, builder settings

A model with ``functionals_fusion`` (the recommended one) also gets its clip functionals
(:mod:`serlib.functionals`, and those of the speed-perturbed copies its regression learns
from) in the timed feature step, and each fold records the network's
own UAR beside the fused one (``network_alone``). A model with ``speed_copies`` (not the
recommended one by default; ``--speed-copies``) gets the features of its network's speed-perturbed training copies in the
timed feature step too (``serlib.training.prepared_speed_features``), for every clip, since
each clip is a training clip in four of the five folds.

``--song DIR`` / ``--no-song`` override whether the RAVDESS song clips of each fold's
training actors are added to its training data (``serlib.song``; the model's default is
``train_with_song``). Test actors' songs are never used.

``--epochs``, ``--ensemble N`` (N networks from seeds 100 apart, averaged) and ``--set
KEY=VALUE`` (any key of ``serlib.models.recommended.DEFAULTS``, comma-separated for tuples)
measure a variant of the model under the same folds and seeds, and so do ``--speed-copies
F,F`` and ``--no-speed-copies`` (the network's extra training copies, or none); the variant is registered
under a temporary name and trained by the same harness. The variants tried so far and their scores are in ``benchmarks/results/recommended_tuning.json``.

Writes ``benchmarks/results/recommended.json`` (``--out``)::

    {"model": "serlib_logmel_cnn_attn", "protocol": "...", "settings": {...},
     "features": {"seconds": 31.0, "cpu_seconds": 30.2, "n_clips": 2036, "n_song_clips": 836,
                  "shape": [256, 64]},
     "song": {"path": "...", "n_clips": 836, "use": "..."} | null,
     "folds": [{"fold": 0, "test_actors": [...], "uar": .., "accuracy": .., "f1_macro": ..,
                "n": 240, "confusion": [[..]], "training_seconds": .., "cpu_seconds": ..,
                "epochs": 40, "params": .., "n_train": 960, "n_song": 660}, ...],
     "summary": {"uar_mean": .., "uar_std": .., "accuracy_mean": .., "accuracy_std": ..,
                 "f1_macro_mean": .., "f1_macro_std": .., "train_seconds_max": ..,
                 "features_plus_training_seconds": .., "within_budget": true},
     "machine": {...}, "created": "..."}

Explained in the chapter "Beyond the reports".
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
BUDGET_SECONDS = 600.0


def _data_dir(arg: str | None) -> Path:
    if arg:
        return Path(arg).expanduser()
    env = os.environ.get("SERLIB_DATA_DIR")
    if env:
        return Path(env).expanduser()
    from serlib.config import shared_data_root

    root = shared_data_root()
    if root is None or not (root / "ravdess").is_dir():
        sys.exit("no RAVDESS folder found: pass --data DIR or set SERLIB_DATA_DIR")
    return root / "ravdess"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _write(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh, indent=1)
    os.replace(tmp, path)


def _mean_std(values) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def _parse_setting(text: str) -> tuple[str, object]:
    """``"channels=64,64"`` -> ``("channels", (64, 64))``; numbers become int or float."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        sys.exit(f"--set {text!r}: write KEY=VALUE, e.g. --set dropout=0.4")

    def number(v):
        try:
            return int(v)
        except ValueError:
            try:
                return float(v)
            except ValueError:
                sys.exit(f"--set {text!r}: {v!r} is not a number")

    parts = [number(v) for v in value.split(",")]
    return key.strip(), tuple(parts) if "," in value else parts[0]


def _variant(entry, epochs, overrides: dict, ensemble=None, speed_copies=None, recipe_settings=()):
    """Register ``entry`` with other epochs, builder ``overrides``, number of networks
    (``ensemble``), network ``speed_copies`` (a tuple, ``()`` for none) or other recipe settings
    (``"key=value"`` strings, :meth:`serlib.recipes.Recipe.override`) under a temporary name."""
    from serlib.models import get_recipe, recommended, register_variant

    if overrides and entry.builder is not recommended.build_serlib_logmel_cnn_attn:
        sys.exit("--set works for the recommended model only")
    unknown = sorted(set(overrides) - set(recommended.DEFAULTS))
    if unknown:
        sys.exit(f"--set: unknown setting(s) {unknown}; choose from {', '.join(recommended.DEFAULTS)}")

    def builder(input_shape, n_classes):
        return recommended.build_recommended(input_shape, n_classes, **overrides)

    changed = {k: v for k, v in (("epochs", epochs), ("ensemble", ensemble)) if v}
    if speed_copies is not None:
        changed["speed_copies"] = tuple(speed_copies)
    from serlib.errors import ConfigError

    try:
        recipe = get_recipe(entry).override(*recipe_settings, **changed)
    except ConfigError as error:
        sys.exit(f"--set: {error}")
    tag = "_".join(f"{k}{v}" for k, v in overrides.items()) + (f"_e{epochs}" if epochs else "") \
        + (f"_x{ensemble}" if ensemble else "") \
        + ("" if speed_copies is None else "_speed" + ("_".join(f"{f:g}" for f in speed_copies) or "none")) \
        + "".join(f"_{text}" for text in recipe_settings)
    builder.__qualname__ = f"variant_{tag}"
    changes = {"builder": builder, "recommended": False} if overrides else {"recommended": False}
    changes.update(recipe.changes_from(get_recipe(entry)))
    name = re.sub(r"_+", "_", "variant_" + "".join(c if c.isalnum() else "_" for c in tag).lower()).rstrip("_")
    print(f"variant of {entry.name}: {overrides or 'same builder'}, {recipe.epochs} epochs, "
          f"{recipe.ensemble} network(s), network speed copies {list(recipe.speed_copies) or 'none'}"
          f"{', recipe ' + ' '.join(recipe_settings) if recipe_settings else ''}", flush=True)
    return register_variant(entry.name, name, **changes)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="RAVDESS speech folder (actors 01-20)")
    parser.add_argument("--model", default="recommended", help="registered model (default: recommended)")
    parser.add_argument("--folds", help="comma-separated 0-based folds to run (default: all 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="2 short epochs per fold (smoke test)")
    parser.add_argument("--keep-cache", action="store_true",
                        help="reuse $SERLIB_CACHE_DIR features instead of extracting from scratch")
    parser.add_argument("--epochs", type=int, help="train a variant for this many epochs")
    parser.add_argument("--ensemble", type=int, help="train a variant with this many networks (seeds 100 apart)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a variant with this builder setting (recommended model only) or recipe setting "
                             "(serlib.recipes, e.g. learning_rate=0.001; any model); repeatable")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--song", metavar="DIR", help="train with the RAVDESS song clips of each fold's training "
                                                     "actors from DIR (default: the model's own choice)")
    group.add_argument("--no-song", action="store_true", help="train on speech only")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--speed-copies", metavar="F,F", help="train a variant whose network also learns from "
                                                            "copies of its training clips at these speeds")
    group.add_argument("--no-speed-copies", action="store_true",
                       help="train a variant whose network learns from the clips as they are only")
    parser.add_argument("--keep", help="folder to keep each fold's network probabilities in, as fold<i>.npz "
                                       "(benchmarks/fusion.py --keep reuses them)")
    parser.add_argument("--out", default=str(HERE / "results" / "recommended.json"))
    args = parser.parse_args(argv)

    scratch = None
    if not args.keep_cache:  # time the features from scratch, in a throw-away cache
        scratch = tempfile.TemporaryDirectory(prefix="serlib-bench-")
        os.environ["SERLIB_CACHE_DIR"] = scratch.name

    import keras

    from serlib.models import get_model, get_recipe
    from serlib.recipes import FIELDS as RECIPE_FIELDS
    from serlib.splits import actor_kfold
    from serlib.training import fit_split, prepare_data, prepared_functionals, prepared_speed_features, song_data

    data = _data_dir(args.data)
    entry = get_model(args.model)
    recipe_settings = [s for s in args.set if s.partition("=")[0].split(".")[0].strip() in RECIPE_FIELDS]
    overrides = dict(_parse_setting(s) for s in args.set if s not in recipe_settings)
    speed_copies = () if args.no_speed_copies else (
        tuple(float(f) for f in args.speed_copies.split(",")) if args.speed_copies else None)
    variant = bool(args.epochs or overrides or args.ensemble or speed_copies is not None or recipe_settings)
    if variant:
        entry = _variant(entry, args.epochs, overrides, args.ensemble, speed_copies, recipe_settings)
    print(f"{entry.name} (alias {', '.join(entry.aliases) or '-'}): {entry.input_text}; "
          f"{entry.epochs} epochs, batch {entry.batch_size}, {entry.optimizer} lr {entry.learning_rate}"
          f"{' ' + entry.lr_schedule if entry.lr_schedule else ''}", flush=True)

    wall, cpu = time.perf_counter(), time.process_time()
    prep = prepare_data(entry.name, data, verbose=0)
    if entry.functionals_fusion:  # the clip functionals the fused model also needs, timed with the features
        prepared_functionals(prep, verbose=1)
        for factor in entry.functionals_fusion.get("speed_copies", ()):   # the regression's extra rows
            prepared_functionals(prep, verbose=1, speed=factor)
    for factor in entry.speed_copies:   # the network's extra training clips
        prepared_speed_features(prep, factor, np.arange(len(prep.X)), verbose=1)
    song = song_data(entry.name, False if args.no_song else args.song, speech=prep, verbose=1)
    n_song = 0 if song is None else int(len(song.X))
    features = {"seconds": round(time.perf_counter() - wall, 2), "cpu_seconds": round(time.process_time() - cpu, 2),
                "n_clips": int(len(prep.X)) + n_song, "n_song_clips": n_song, "shape": list(prep.X.shape[1:]),
                "spec": prep.spec.to_dict(), "from_scratch": not args.keep_cache}
    if song is not None:
        print(f"song: {n_song} clips from {song.data.get('path')}; each fold adds those of its training actors",
              flush=True)
    print(f"features: {features['n_clips']} clips -> {tuple(features['shape'])} in {features['seconds']:.1f} s "
          f"(CPU {features['cpu_seconds']:.1f} s){'' if args.keep_cache else ', from scratch'}", flush=True)
    if prep.data.get("synthetic"):
        print("WARNING: SYNTHETIC stand-in data, not RAVDESS: these numbers mean nothing", flush=True)

    splits = actor_kfold(prep.index, k=5, seed=args.seed, n_val_actors=0)
    wanted = range(len(splits)) if not args.folds else [int(f) for f in args.folds.split(",")]
    folds = []
    header = f"{'fold':>4}  {'test actors':<14} {'UAR':>6} {'acc':>6} {'F1':>6} {'train s':>8} {'CPU s':>7}"
    print(header + "\n" + "-" * len(header), flush=True)
    for i in wanted:
        split = splits[i]
        wall, cpu = time.perf_counter(), time.process_time()
        run = fit_split(prep, split, seed=args.seed + i, quick=args.quick, verbose=0, song=song)
        seconds, cpu_seconds = time.perf_counter() - wall, time.process_time() - cpu
        if args.keep:  # the network's own probabilities (before any fusion), as fit_split computed them
            keep = Path(args.keep)
            keep.mkdir(parents=True, exist_ok=True)
            np.savez(keep / f"fold{i}{'_quick' if args.quick else ''}.npz",
                     probs=run.network_test_proba, test=np.asarray(split.test))
        m = run.metrics
        actors = sorted(int(a) for a in prep.index["actor"].iloc[split.test].unique())
        folds.append({"fold": i, "test_actors": actors, "uar": m["uar"], "accuracy": m["accuracy"],
                      "f1_macro": m["f1_macro"], "n": m["n"], "labels": m["labels"], "confusion": m["confusion"],
                      "training_seconds": round(seconds, 2), "cpu_seconds": round(cpu_seconds, 2),
                      "epochs": run.info["epochs_run"], "params": run.info["params"], "seed": args.seed + i,
                      "n_train": int(len(split.train)), "n_song": (run.info["song"] or {}).get("n_clips", 0),
                      "n_speed_copies": (run.info.get("speed_copies") or {}).get("n_clips", 0),
                      "network_alone": (run.info.get("functionals_fusion") or {}).get("network_alone"),
                      "networks": [{k: n[k] for k in ("seed", "training_seconds")} for n in run.info["ensemble"]]
                      if run.info.get("ensemble") else None})
        print(f"{i:>4}  {','.join(f'{a:02d}' for a in actors):<14} {m['uar']:6.3f} {m['accuracy']:6.3f} "
              f"{m['f1_macro']:6.3f} {seconds:8.1f} {cpu_seconds:7.1f}", flush=True)
        run.model = None
        keras.backend.clear_session()

    summary = {}
    for key in ("uar", "accuracy", "f1_macro"):
        summary[f"{key}_mean"], summary[f"{key}_std"] = _mean_std([f[key] for f in folds])
    summary["train_seconds_max"] = max(f["training_seconds"] for f in folds)
    summary["train_cpu_seconds_max"] = max(f["cpu_seconds"] for f in folds)
    summary["features_plus_training_seconds"] = round(features["seconds"] + summary["train_seconds_max"], 1)
    summary["within_budget"] = summary["features_plus_training_seconds"] <= BUDGET_SECONDS
    print("-" * len(header))
    print(f"mean ± std over {len(folds)} folds: UAR {summary['uar_mean']:.3f} ± {summary['uar_std']:.3f}, "
          f"accuracy {summary['accuracy_mean']:.3f} ± {summary['accuracy_std']:.3f}, "
          f"macro-F1 {summary['f1_macro_mean']:.3f} ± {summary['f1_macro_std']:.3f}")
    print(f"features + slowest training: {summary['features_plus_training_seconds']:.0f} s "
          f"(budget {BUDGET_SECONDS:.0f} s: {'within' if summary['within_budget'] else 'OVER'})")

    from serlib.functionals import functional_names

    payload = {
        "model": entry.name, "aliases": list(entry.aliases),
        "variant": {"of": args.model, "epochs": args.epochs, "settings": overrides, "ensemble": args.ensemble,
                    "speed_copies": None if speed_copies is None else list(speed_copies),
                    "recipe_settings": recipe_settings}
        if variant else None,
        "recipe": get_recipe(entry).to_dict(),
        "protocol": "speaker-independent actor 5-fold (actor_kfold seed %d, no validation actors)" % args.seed,
        "settings": {"epochs": entry.epochs, "batch_size": entry.batch_size, "optimizer": entry.optimizer,
                     "learning_rate": entry.learning_rate, "lr_schedule": entry.lr_schedule,
                     "functionals_fusion": entry.functionals_fusion, "ensemble": entry.ensemble,
                     "speed_copies": list(entry.speed_copies),
                     # the regression's input changes with serlib.functionals (e.g. its contour block)
                     "n_functionals": len(functional_names()) if entry.functionals_fusion else None,
                     "quick": bool(args.quick), "seed": args.seed, "folds": list(wanted)},
        "data": {k: prep.data.get(k) for k in ("path", "source", "synthetic", "n_clips", "n_actors")},
        "song": None if song is None else {"path": song.data.get("path"), "n_clips": n_song,
                                           "use": "the song clips of each fold's training actors, training only"},
        "features": features, "folds": folds, "summary": summary,
        "machine": {"cpu": _cpu_name(), "cores": os.cpu_count(), "backend": keras.backend.backend(),
                    "keras": keras.__version__, "load_average": list(os.getloadavg())},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    out = Path(args.out)
    _write(out, payload)
    print(f"wrote {out}")
    if scratch is not None:
        scratch.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
