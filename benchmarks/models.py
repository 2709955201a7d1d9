"""Benchmark every registered architecture: size, speed, and honest vs. inflated accuracy.

For each model (or the ``--models`` subset) this measures

* ``params``: trainable + non-trainable parameters for the model's input;
* ``seconds_per_epoch`` on this machine's CPU (mean over the epochs of a fold, validation
  pass included);
* accuracy, UAR and macro-F1 under the **speaker-independent** protocol: actor-wise k-fold
  cross-validation over actors 01-20 (``serlib.splits.actor_kfold``: each fold tests
  unseen actors, validation actors are drawn from the training actors), mean ± std;
* the same under the **random split its report used** (clips shuffled regardless of
  speaker, fractions from ``serlib.training.report_fractions``), repeated with k seeds,
  so the inflation from hearing every test speaker in training is visible.

Usage::

    python benchmarks/models.py --list
    python benchmarks/models.py --models das2019_model_b,das2019_model_c --folds 5
    python benchmarks/models.py --quick --models das2019_model_b --folds 2   # smoke test
    python benchmarks/models.py --protocols speaker --only-fold 0 --refresh --save-runs runs/bench
        # fold 1 of every model again, now with learning curves and per-clip predictions

It takes hours for all models at the reports' epoch budgets: it is resumable. Each
finished (model, protocol, fold) is appended to the results file at once (atomic
rewrite) and skipped on the next start when a record with the same settings exists.
Real RAVDESS is used when found (``--data``, ``$SERLIB_DATA_DIR``, ``../shared/data``);
otherwise the synthetic stand-in, and every record says so (``data.synthetic``). Models
trained on song (``ayadi_conv1d_lstm_song``) use RAVDESS song instead (``--song-data``,
``$SERLIB_SONG_DIR``, or a song folder beside the speech folder); with none found they are
skipped with a message, never trained on speech.

RESULTS FILE SCHEMA (``benchmarks/results/models.json``; the chapter "The comparison"
reads it)::

    {
      "schema": 1,
      "description": "<one line>",
      "records": [                      # one per (model, protocol, fold, settings)
        {
          "model": "das2019_model_b",   # registry name
          "report": "002", "family": "cnn1d", "source": "Das 2019", "task": "emotion",
          "protocol": "speaker" | "random",
          "protocol_name": "speaker-independent, actor 5-fold (fold 1/5)" | "random 80/10/10",
          "fold": 0,                    # 0-based fold (speaker) or repeat (random) number
          "n_folds": 5,
          "settings": {"epochs": null | int, "quick": bool, "seed": 0, "folds": 5,
                       "augment": false, "data_source": "ravdess" | "synthetic" | ...,
                       "learning_rate": 0.001},  # only with --learning-rate
          "accuracy": 0.41, "uar": 0.39, "f1_macro": 0.37,   # test split of this fold
          "n": 240, "labels": [...], "confusion": [[...], ...],
          "params": 4456,
          "seconds_per_epoch": 1.9, "training_seconds": 95.0,
          "epochs_run": 50, "best_epoch": 38, "batch_size": 1,
          "test_actors": [..], "val_actors": [..], "train_actors": [..],
          "n_train": 840, "n_val": 120, "n_test": 240,
          "data": {"path": "...", "source": "ravdess", "synthetic": false, "n_clips": 1200},
          "machine": {"cpu": "...", "cores": 2, "backend": "tensorflow", "keras": "3.x"},
          "serlib_version": "0.1.0", "created": "2025-01-01T12:00:00",
          # records since the per-epoch rerun (--refresh) also carry:
          "history": {"loss": [...], "accuracy": [...], "val_loss": [...], "val_accuracy": [...],
                      "epoch_seconds": [...], "learning_rate": [...]},   # one value per epoch
          "predictions": {"labels": [...], "clips": ["Actor_05/03-01-...flac", ...],  # under data.path
                          "true": [...], "predicted": [...], "proba": [[...], ...]}
        }
      ]
    }

Records of a ``--quick`` run carry ``settings.quick = true``; tables in the book should
use only ``quick = false`` records. Mean ± std is over the folds of one model, protocol
and settings (sample std, ddof=1).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = Path(__file__).resolve().parent
DEFAULT_RESULTS = HERE / "results" / "models.json"
SCHEMA = 1
PROTOCOLS = ("speaker", "random")


# ----------------------------------------------------------------------------- results file
def load_results(path: Path) -> dict:
    if not path.is_file():
        return {"schema": SCHEMA, "description": "serlib model benchmark (benchmarks/models.py)", "records": []}
    try:
        data = json.loads(path.read_text())
    except ValueError as error:
        sys.exit(f"{path}: not valid JSON ({error}); move it away to start afresh")
    if data.get("schema") != SCHEMA or not isinstance(data.get("records"), list):
        sys.exit(f"{path}: unknown schema {data.get('schema')!r}; move it away to start afresh")
    return data


def save_results(path: Path, data: dict) -> None:
    from serlib.runs import write_json

    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, data)


def settings_of(args, data_source: str) -> dict:
    settings = {"epochs": args.epochs, "quick": bool(args.quick), "seed": int(args.seed), "folds": int(args.folds),
                "augment": False, "data_source": data_source}
    if getattr(args, "learning_rate", None) is not None:
        # only present when overridden, so records at the report's settings keep their keys
        settings["learning_rate"] = float(args.learning_rate)
    return settings


def record_key(model: str, protocol: str, fold: int, settings: dict) -> str:
    return json.dumps([model, protocol, int(fold), settings], sort_keys=True)


def machine() -> dict:
    import keras

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "backend": keras.backend.backend(), "keras": keras.__version__}


# ----------------------------------------------------------------------------- running
def corpus_01_20(data_arg):
    from serlib.datasets import load_corpus

    corpus = load_corpus(data_arg, verbose=True)
    present = sorted(int(a) for a in corpus.index["actor"].unique())
    keep = [a for a in present if 1 <= a <= 20]
    if keep != present:
        corpus = corpus.subset(actors=keep, note="actors 01-20")
    return corpus


def song_corpus_01_20(speech, song_arg):
    """RAVDESS song, actors 01-20, for models trained on song (``entry.corpus == "song"``).

    ``--song-data`` wins, then :func:`serlib.song.find_song_folder` beside the speech folder.
    Raises ``DataError`` when there is none: a song model must not quietly train on speech.
    """
    from serlib.datasets import load_corpus
    from serlib.errors import DataError
    from serlib.song import find_song_folder

    folder = Path(song_arg).expanduser() if song_arg else find_song_folder(None if speech.synthetic else speech.root)
    if folder is None or not folder.is_dir():
        raise DataError(f"{folder or 'RAVDESS song'}: no song folder found; pass --song-data DIR "
                        "(Audio_Song_Actors_01-24) or set SERLIB_SONG_DIR")
    corpus = load_corpus(folder, verbose=True)
    present = sorted(int(a) for a in corpus.index["actor"].unique())
    keep = [a for a in present if 1 <= a <= 20]
    return corpus.subset(actors=keep, note="actors 01-20") if keep != present else corpus


def data_record(corpus) -> dict:
    return {"path": str(corpus.root), "source": corpus.source, "synthetic": corpus.synthetic,
            "n_clips": len(corpus.index)}


def splits_for(protocol: str, prep, args):
    from serlib.splits import actor_kfold, random_split
    from serlib.training import kfold_val_actors, report_fractions

    if protocol == "speaker":
        return actor_kfold(prep.index, k=args.folds, seed=args.seed,
                           n_val_actors=kfold_val_actors(prep.index, args.folds))
    fractions = report_fractions(prep.entry)
    return [random_split(prep.index, fractions=fractions, stratify=prep.task, seed=args.seed + i)
            for i in range(args.folds)]


def run_model(name: str, corpus, args, data: dict, done: set, results_path: Path) -> int:
    import keras

    if keras.backend.backend() == "tensorflow":  # one fresh model per fold: retracing notices are expected
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")

    from serlib.models import get_recipe
    from serlib.training import fit_split, prepare_data

    settings = settings_of(args, corpus.source)
    folds = range(args.folds) if args.only_fold is None else [args.only_fold]
    todo = [(p, f) for p in args.protocols for f in folds
            if record_key(name, p, f, settings) not in done]
    if not todo:
        print(f"{name}: all {len(args.protocols) * args.folds} fold(s) already done")
        return 0
    prep = prepare_data(name, corpus, verbose=0)
    recipe = get_recipe(name)
    if settings.get("learning_rate") is not None:
        recipe = recipe.override(learning_rate=settings["learning_rate"])
        print(f"{name}: learning rate {settings['learning_rate']:g} instead of the report's "
              f"{get_recipe(name).learning_rate:g}", flush=True)
    entry = prep.entry
    n_new = 0
    for protocol in args.protocols:
        folds = [f for p, f in todo if p == protocol]
        if not folds:
            continue
        splits = splits_for(protocol, prep, args)
        for fold in folds:
            split = splits[fold]
            started = time.time()
            print(f"{name}: {split.protocol} ...", flush=True)
            run = fit_split(prep, split, recipe=recipe, epochs=args.epochs, seed=args.seed + fold, quick=args.quick,
                            verbose=2 if args.verbose else 0)
            m, info = run.metrics, run.info
            actors = info["split"]["actors"] or {}
            record = {
                "model": name, "report": entry.report, "family": entry.family, "source": entry.source,
                "task": entry.task, "protocol": protocol, "protocol_name": split.protocol, "fold": fold,
                "n_folds": args.folds, "settings": settings,
                "accuracy": m["accuracy"], "uar": m["uar"], "f1_macro": m["f1_macro"], "n": m["n"],
                "labels": m["labels"], "confusion": m["confusion"],
                "params": info["params"], "seconds_per_epoch": info["seconds_per_epoch"],
                "training_seconds": info["training_seconds"], "epochs_run": info["epochs_run"],
                "best_epoch": info["best_epoch"], "batch_size": info["batch_size"],
                "test_actors": actors.get("test"), "val_actors": actors.get("val"),
                "train_actors": actors.get("train"),
                "n_train": info["n_train"], "n_val": info["n_val"], "n_test": info["n_test"],
                "data": {k: data.get(k) for k in ("path", "source", "synthetic", "n_clips")},
                "machine": machine(), "serlib_version": info["serlib_version"],
                "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }
            if args.note:
                record["note"] = args.note
            record["history"] = history_record(run.history)
            record["predictions"] = predictions_record(prep, corpus, split, run)
            if args.save_runs:
                from serlib.runs import save_run

                Path(args.save_runs).mkdir(parents=True, exist_ok=True)
                save_run(run, Path(args.save_runs) / f"{name}-{protocol}-fold{fold}")
            results = load_results(results_path)  # re-read: keep records another run may have added
            key = record_key(name, protocol, fold, settings)
            old = [r for r in results["records"] if record_key(r["model"], r["protocol"], r["fold"], r["settings"]) == key]
            for r in old:  # --refresh: the rerun replaces the record it repeats (said when it differs)
                if abs(r["uar"] - m["uar"]) > 1e-9:
                    print(f"  note: the earlier record of this fold had UAR {r['uar']:.4f}", flush=True)
            results["records"] = [r for r in results["records"] if r not in old] + [record]
            save_results(results_path, results)
            done.add(record_key(name, protocol, fold, settings))
            n_new += 1
            print(f"  fold {fold + 1}/{args.folds}: UAR {m['uar']:.3f}  accuracy {m['accuracy']:.3f}  "
                  f"{info['epochs_run']} epochs, {info['seconds_per_epoch']:.2f} s/epoch  "
                  f"({time.time() - started:.0f} s)", flush=True)
            run.model = None
            keras.backend.clear_session()
    return n_new


def history_record(history: dict) -> dict:
    """The per-epoch curves of a fold (loss, accuracy, their validation twins, seconds), rounded."""
    keep = ("loss", "accuracy", "val_loss", "val_accuracy", "epoch_seconds", "learning_rate")
    out = {}
    for key in keep:
        values = (history or {}).get(key)
        if values is None:
            continue
        out[key] = [None if v is None else round(float(v), 5) for v in values]
    return out


def predictions_record(prep, corpus, split, run) -> dict:
    """Every test clip of a fold: its path under the corpus folder, the true and predicted label
    and the class probabilities (3 decimals), so the book can play the clips a model confused."""
    import numpy as np

    proba = run.test_proba
    root = Path(corpus.root)
    paths = []
    for p in prep.index["path"].to_numpy()[split.test]:
        try:
            paths.append(Path(p).relative_to(root).as_posix())
        except ValueError:
            paths.append(Path(p).name)
    labels = list(prep.labels)
    y_true = [labels[int(k)] for k in prep.y[split.test]]
    y_pred = [labels[int(k)] for k in np.argmax(proba, axis=1)]
    return {"labels": labels, "clips": paths, "true": y_true, "predicted": y_pred,
            "proba": np.round(np.asarray(proba, dtype=float), 3).tolist()}


# ----------------------------------------------------------------------------- table
def summarize(records: list, models: list, settings_filter) -> list[dict]:
    import numpy as np

    rows = []
    for name in models:
        mine = [r for r in records if r["model"] == name and settings_filter(r["settings"])]
        if not mine:
            continue
        row = {"model": name, "params": mine[-1]["params"],
               "s_per_epoch": float(np.median([r["seconds_per_epoch"] for r in mine if r["seconds_per_epoch"]]))}
        for protocol in PROTOCOLS:
            part = [r for r in mine if r["protocol"] == protocol]
            # one fold layout per protocol: the run with the most folds (2-fold and 5-fold
            # runs split the actors differently, so their folds must not be pooled)
            most = max((r["settings"].get("folds") or 0 for r in part), default=0)
            part = [r for r in part if (r["settings"].get("folds") or 0) == most]
            for key in ("uar", "accuracy"):
                values = np.array([r[key] for r in part], dtype=float)
                row[f"{protocol}_{key}"] = (values.mean(), values.std(ddof=1) if len(values) > 1 else 0.0,
                                            len(values)) if len(values) else None
        rows.append(row)
    return rows


def print_table(rows: list[dict]) -> None:
    def cell(value):
        if value is None:
            return f"{'-':>15}"
        mean, std, n = value
        return f"{100 * mean:6.1f} ± {100 * std:4.1f}{'' if n > 1 else '*':1}"

    if not rows:
        print("no results yet")
        return
    width = max(len(r["model"]) for r in rows) + 2
    print()
    print(f"{'model':<{width}}{'params':>10}{'s/epoch':>9}  {'speaker UAR %':>15} {'speaker acc %':>15}  "
          f"{'random UAR %':>15} {'random acc %':>15}  {'inflation':>9}")
    for r in rows:
        inflation = ""
        if r["speaker_uar"] and r["random_uar"]:
            inflation = f"{100 * (r['random_uar'][0] - r['speaker_uar'][0]):+.1f} pt"
        print(f"{r['model']:<{width}}{r['params']:>10,}{r['s_per_epoch']:>9.2f}  {cell(r['speaker_uar'])} "
              f"{cell(r['speaker_accuracy'])}  {cell(r['random_uar'])} {cell(r['random_accuracy'])}  "
              f"{inflation:>9}")
    print("(mean ± sample std over folds, in %; * = one fold only; inflation = random UAR - speaker UAR)")


# ----------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", help="comma-separated registry names (default: every registered model)")
    p.add_argument("--folds", type=int, default=5, help="actor folds, and random-split repeats (default 5)")
    p.add_argument("--epochs", type=int, help="override every model's epoch budget")
    p.add_argument("--protocols", default="speaker,random", help="speaker, random, or both (default: speaker,random)")
    p.add_argument("--learning-rate", type=float,
                   help="override every model's learning rate; recorded in settings.learning_rate and kept "
                        "apart from runs at the report's own rate (serlib.results.benchmark_records(learning_rate=...))")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="two short epochs per fold: a smoke test")
    p.add_argument("--data", help="RAVDESS folder (default: found as serlib.datasets.load_corpus does)")
    p.add_argument("--song-data", help="RAVDESS song folder for the models trained on song (default: "
                                        "$SERLIB_SONG_DIR or a song folder beside the speech folder)")
    p.add_argument("--results", default=str(DEFAULT_RESULTS), help=f"results file (default {DEFAULT_RESULTS})")
    p.add_argument("--list", action="store_true", help="list the models and how many folds are done, then exit")
    p.add_argument("--table", action="store_true", help="print the table of what is done, then exit")
    p.add_argument("--verbose", action="store_true", help="one line per epoch")
    p.add_argument("--note", help="a line kept in each new record (e.g. that its times were disturbed)")
    p.add_argument("--only-fold", type=int, help="run just this fold (0-based) of each protocol")
    p.add_argument("--refresh", action="store_true",
                   help="rerun folds whose record predates per-epoch history and per-clip predictions, "
                        "replacing that record")
    p.add_argument("--save-runs", help="also save each fold's trained run folder here (for serlib evaluate)")
    args = p.parse_args(argv)
    args.protocols = [x.strip() for x in args.protocols.split(",") if x.strip()]
    if args.protocols == ["both"]:
        args.protocols = list(PROTOCOLS)
    bad = [x for x in args.protocols if x not in PROTOCOLS]
    if bad:
        p.error(f"unknown protocol(s) {bad}; use speaker, random or both")
    if args.folds < 2:
        p.error("--folds must be at least 2")
    if args.learning_rate is not None and not args.learning_rate > 0:
        p.error(f"--learning-rate must be positive, got {args.learning_rate}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(HERE.parent))
    from serlib.errors import SerlibError
    from serlib.models import describe_models, get_model, list_models

    results_path = Path(args.results)
    results = load_results(results_path)
    known = list_models()
    models = known if not args.models else [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in known]
    if unknown:
        print(f"unknown model(s) {unknown}; see --list", file=sys.stderr)
        return 2

    if args.list:
        params = {row["name"]: row for row in describe_models()}
        print(f"{'model':<40}{'params':>10}  done records  source")
        for name in models:
            n_done = sum(1 for r in results["records"] if r["model"] == name)
            star = "  (recommended)" if params[name].get("recommended") else ""
            print(f"{name:<40}{params[name]['params']:>10,}  {n_done:>12}  {params[name]['source']}{star}")
        return 0

    if not args.table:
        try:
            corpus = corpus_01_20(args.data)
        except SerlibError as error:
            print(f"benchmarks/models.py: {error}", file=sys.stderr)
            return 2
        if corpus.synthetic:
            print("WARNING: synthetic stand-in corpus; these numbers are not RAVDESS numbers", file=sys.stderr)
        done = {record_key(r["model"], r["protocol"], r["fold"], r["settings"]) for r in results["records"]
                if not (args.refresh and "history" not in r)}
        total = 0
        for name in models:
            try:
                mine = (song_corpus_01_20(corpus, args.song_data) if get_model(name).corpus == "song"
                        else corpus)
                total += run_model(name, mine, args, data_record(mine), done, results_path)
            except SerlibError as error:
                print(f"{name}: skipped ({error})", file=sys.stderr)
        print(f"\n{total} new record(s) in {results_path}")
        results = load_results(results_path)

    wanted_quick = bool(args.quick)
    rows = summarize(results["records"], models,
                     lambda s: s.get("quick") == wanted_quick and s.get("epochs") == args.epochs
                     and s.get("seed") == args.seed and s.get("learning_rate") == args.learning_rate)
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
