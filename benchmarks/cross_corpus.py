"""Cross-corpus benchmark: RAVDESS-trained runs scored on the Berlin EmoDB.

For each run folder (by default every ``<model>-speaker-fold0`` under ``--runs``, the runs
``benchmarks/models.py --save-runs`` keeps: each trained on the training actors of RAVDESS
fold 1 of the speaker-independent protocol) this scores the run on EmoDB's 454 clips of the
six emotions both corpora share (boredom left out) with :func:`serlib.evaluation.evaluate_run`:

* headline: the arg-max over the six shared labels only (the run's calm and surprised set
  aside), accuracy, UAR, macro-F1, confusion over the shared labels;
* ``unrestricted``: the run's own arg-max over all its labels, with how many clips it called
  calm or surprised;
* ``within``: the run's own test scores on its unseen RAVDESS actors (``metrics.json``), so
  the drop from within-corpus to cross-corpus UAR is one subtraction (``uar_drop``);
* ``predictions``: every clip (path relative to the EmoDB folder), its true, predicted and
  unrestricted label and the class probabilities (3 decimals).

No EmoDB label is used to train or choose anything here: EmoDB is test data only.

Usage::

    python benchmarks/cross_corpus.py                       # every run under /work/bench-runs
    python benchmarks/cross_corpus.py RUN_DIR [RUN_DIR ...]  # these runs
    python benchmarks/cross_corpus.py --models das2019_model_b --refresh

Resumable: the results file is rewritten (atomically) after each run, and a run whose
record is there already (same run folder, same ``run.json`` creation time and model
checksum) is skipped; runs whose folder does not exist yet are skipped with a line.

RESULTS FILE SCHEMA (``benchmarks/results/cross_corpus.json``)::

    {
      "schema": 1, "description": "<one line>",
      "data": {"path": "...", "corpus": "emodb", "clips": 535, "shared_clips": 454,
               "shared_labels": [...], "left_out": {"boredom": 81}},   # for an eight-emotion run;
                                        # a run with fewer labels or a gender filter has its own n
      "rule": "<how labels the target lacks are treated>",
      "records": {
        "<model>": {
          "model": "...", "task": "emotion" | "gender", "run_dir": "...", "run_created": "...", "model_sha256": "...",
          "protocol": "speaker-independent, actor 5-fold (fold 1/5)", "train_actors": [...],
          "within": {"accuracy", "uar", "f1_macro", "n"},          # RAVDESS unseen actors
          "cross": {"accuracy", "uar", "f1_macro", "n", "labels", "confusion", "recall"},
          "unrestricted": {"accuracy", "uar", "f1_macro", "columns", "confusion", "predicted_absent"},
                                            # {} when the run has no label the target lacks (gender)
          "uar_drop": within.uar - cross.uar,
          "predictions": {"labels", "clips", "true", "predicted", "predicted_any_label", "proba"},
          "seconds": 41.2, "machine": {...}, "serlib_version": "...", "created": "..."
        }
      }
    }
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SCHEMA = 1
DEFAULT_RUNS = Path("/work/bench-runs")
DEFAULT_DATA = REPO.parent / "shared" / "data" / "emodb"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "cross_corpus.json"
SUFFIX = "-speaker-fold0"


def load_results(path: Path) -> dict:
    if not path.is_file():
        return {"schema": SCHEMA, "description": "RAVDESS-trained runs scored on EmoDB's shared emotions "
                                                 "(benchmarks/cross_corpus.py)", "records": {}}
    try:
        data = json.loads(path.read_text())
    except ValueError as error:
        sys.exit(f"{path}: not valid JSON ({error}); move it away to start afresh")
    if data.get("schema") != SCHEMA or not isinstance(data.get("records"), dict):
        sys.exit(f"{path}: unknown schema {data.get('schema')!r}; move it away to start afresh")
    return data


def save_results(path: Path, data: dict) -> None:
    from serlib.storage import write_json

    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, data)


def machine_record() -> dict:
    """CPU model, core count, Keras backend and version, as benchmarks/models.py records them."""
    import platform

    import keras

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "backend": keras.backend.backend(), "keras": keras.__version__}


def run_folders(args) -> list[tuple[str, Path]]:
    """(model, run folder) pairs to score, in a stable order."""
    if args.run_dirs:
        pairs = []
        for given in args.run_dirs:
            folder = Path(given)
            name = folder.name[:-len(SUFFIX)] if folder.name.endswith(SUFFIX) else folder.name
            pairs.append((name, folder))
        return pairs
    wanted = [m for m in (args.models or "").split(",") if m]
    if wanted:
        return [(m, args.runs / f"{m}{SUFFIX}") for m in wanted]
    if not args.runs.is_dir():
        return []
    return [(p.name[:-len(SUFFIX)], p) for p in sorted(args.runs.iterdir()) if p.name.endswith(SUFFIX)]


def identity(folder: Path) -> dict:
    info = json.loads((folder / "run.json").read_text())
    return {"run_created": info.get("created"), "model_sha256": (info.get("sha256") or {}).get("model.keras")}


def finished(folder: Path) -> bool:
    """A run folder is ready once it holds run.json (written last by serlib.runs) and a model."""
    return (folder / "run.json").is_file() and (folder / "model.keras").is_file()


def score(model: str, folder: Path, corpus, machine: dict) -> dict:
    import numpy as np

    from serlib import __version__
    from serlib.evaluation import evaluate_run
    from serlib.runs import load_run

    start = time.perf_counter()
    run = load_run(folder)
    m = evaluate_run(run, corpus, predictions=True)
    seconds = time.perf_counter() - start
    info, within = run.info, run.metrics or {}
    cross = m.get("cross_corpus") or {}
    root = Path(corpus.root)
    clips = []
    for record in m["predictions"]:
        try:
            clips.append(Path(record["path"]).relative_to(root).as_posix())
        except ValueError:
            clips.append(Path(record["path"]).name)
    labels = list(run.labels)
    unrestricted = dict(cross.get("unrestricted") or {})
    return {
        "model": model, "task": info.get("task") or "emotion", "run_dir": str(folder), **identity(folder),
        "protocol": (info.get("split") or {}).get("protocol"),
        "train_actors": ((info.get("split") or {}).get("actors") or {}).get("train"),
        "within": {k: within.get(k) for k in ("accuracy", "uar", "f1_macro", "n")},
        "cross": {"accuracy": m["accuracy"], "uar": m["uar"], "f1_macro": m["f1_macro"], "n": m["n"],
                  "labels": m["labels"], "confusion": m["confusion"],
                  "recall": {k: v["recall"] for k, v in m.get("per_class", {}).items()}},
        "unrestricted": unrestricted,
        "uar_drop": (within["uar"] - m["uar"]) if within.get("uar") is not None else None,
        "dropped": m["dropped"], "dropped_labels": m["dropped_labels"],
        "predictions": {
            "labels": labels, "clips": clips,
            "true": [r["true"] for r in m["predictions"]],
            "predicted": [r["predicted"] for r in m["predictions"]],
            "predicted_any_label": [r["predicted_any_label"] for r in m["predictions"]],
            "proba": np.round([[r["probabilities"][k] for k in labels] for r in m["predictions"]], 3).tolist()},
        "seconds": round(seconds, 1), "machine": machine, "serlib_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def data_record(corpus, shared: list[str]) -> dict:
    df = corpus.index
    left = df[~df["emotion"].isin(shared)]["emotion"].value_counts().to_dict()
    return {"path": str(corpus.root), "corpus": corpus.kind, "clips": len(df),
            "shared_clips": int(df["emotion"].isin(shared).sum()), "shared_labels": shared,
            "left_out": {str(k): int(v) for k, v in left.items()}}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dirs", nargs="*", help="run folders to score (default: every *-speaker-fold0 under --runs)")
    p.add_argument("--runs", type=Path, default=DEFAULT_RUNS, help=f"folder of saved runs (default {DEFAULT_RUNS})")
    p.add_argument("--models", help="comma-separated model names: score only <runs>/<model>-speaker-fold0")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the EmoDB folder")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results file")
    p.add_argument("--refresh", action="store_true", help="score again runs that already have a record")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from serlib.datasets import EMOTIONS, load_corpus
    from serlib.quiet_keras import import_keras

    import_keras()
    if not args.data.is_dir():
        sys.exit(f"{args.data}: no EmoDB folder; pass --data")
    corpus = load_corpus(args.data, corpus="emodb", verbose=False)
    results = load_results(args.out)
    # the corpus-level shared emotions; a run with fewer labels (Balata's seven without neutral,
    # a gender-specific model) records its own labels and n
    results["data"] = data_record(corpus, [e for e in EMOTIONS if e in corpus.classes()])
    machine = machine_record()
    done = 0
    for model, folder in run_folders(args):
        if not finished(folder):
            print(f"{model}: no finished run at {folder} yet; skipped", flush=True)
            continue
        old = results["records"].get(model)
        if old and not args.refresh and old.get("run_dir") == str(folder) and \
                {k: old.get(k) for k in ("run_created", "model_sha256")} == identity(folder):
            print(f"{model}: scored already (cross UAR {old['cross']['uar']:.3f}); skipped", flush=True)
            continue
        record = score(model, folder, corpus, machine)
        results["rule"] = ("headline scores: arg-max over the labels both corpora share (the run's other "
                           "labels' probabilities set aside); 'unrestricted': the run's own arg-max over all "
                           "its labels, a clip called calm or surprised counting as an error")
        results["records"][model] = record
        save_results(args.out, results)
        done += 1
        w, u = record["within"].get("uar"), record["unrestricted"].get("uar")
        print(f"{model} ({record['task']}): within-corpus UAR {'-' if w is None else f'{w:.3f}'}  cross-corpus "
              f"UAR {record['cross']['uar']:.3f} acc {record['cross']['accuracy']:.3f} (n={record['cross']['n']}); "
              f"unrestricted UAR {'-' if u is None else f'{u:.3f}'}; {record['seconds']:.0f} s", flush=True)
    print(f"{done} run(s) scored; results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
