"""The reports' own experiments, rerun on unseen speakers: what each change buys.

The model benchmark (``benchmarks/models.py``) measures every architecture at its report's
settings. The reports also compared variants: report 000 trained with and without data
normalisation and tried SGD and Adam beside RMSprop; report 002 added the song clips;
report 004 compared ReLU with LeakyReLU and several pooling sizes; reports 001 and 004
augmented their training data. Each experiment here is one such change to one registered
model, run under the speaker-independent protocol (actor-wise 5-fold cross-validation over
actors 01-20, the same folds as the model benchmark), so its folds pair with the model's
own rows in ``models.json``. Augmentation is applied after the split, to the training
actors' clips only.

Usage::

    python benchmarks/experiments.py --list
    python benchmarks/experiments.py                       # every experiment, resumable
    python benchmarks/experiments.py --only 004-activation,000-normalize --folds 5
    python benchmarks/experiments.py --table

Each finished (experiment, fold) is written to ``benchmarks/results/experiments.json`` at once
and skipped on the next start. Records have the schema of ``models.json`` (see
``benchmarks/models.py``) plus ``experiment`` (its id), ``variant`` (what changed, in words),
``changes`` (the recipe settings and builder options changed) and ``question``. The chapters
read them through :mod:`serlib.experiments`.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib.util
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
DEFAULT_RESULTS = HERE / "results" / "experiments.json"

_spec = importlib.util.spec_from_file_location("bench_models", HERE / "models.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


@dataclasses.dataclass(frozen=True)
class Experiment:
    id: str              # "<report>-<what>", e.g. "004-activation"
    report: str
    question: str
    model: str           # the registered model it changes
    variant: str         # what changed, in words
    recipe: dict = dataclasses.field(default_factory=dict)    # Recipe.override settings
    builder: dict = dataclasses.field(default_factory=dict)   # options of the model's builder function
    song: bool = False   # add the training actors' song clips


_NOISE_PITCH = {"copies": 3, "ops": ["pitch", "noise"]}                 # report 004: 864 -> 3,456 clips
_NOISE_STRETCH_PITCH = {"copies": 2, "ops": ["noise", "stretch", "pitch"]}   # report 001: "three times bigger"

EXPERIMENTS = [
    Experiment("004-activation", "004", "ReLU or LeakyReLU?", "pankratz2024_cnn_bilstm", "LeakyReLU",
               builder={"activation": "leaky_relu"}),
    Experiment("004-pool", "004", "Which pooling size?", "pankratz2024_cnn_bilstm", "pool 3",
               builder={"pool": 3}),
    Experiment("004-pool", "004", "Which pooling size?", "pankratz2024_cnn_bilstm", "pool 8",
               builder={"pool": 8}),
    Experiment("000-normalize", "000", "With or without data normalisation?", "balata2021_cnn1d",
               "standardised features", recipe={"normalize": True}),
    Experiment("000-optimizer", "000", "RMSprop, SGD or Adam?", "balata2021_cnn1d", "SGD",
               recipe={"optimizer": "sgd"}),
    Experiment("000-optimizer", "000", "RMSprop, SGD or Adam?", "balata2021_cnn1d", "Adam",
               recipe={"optimizer": "adam"}),
    Experiment("004-augment", "004", "What does augmentation buy on unseen speakers?", "pankratz2024_cnn_bilstm",
               "augmented (3 copies: pitch, noise)", recipe={"augment": _NOISE_PITCH}),
    Experiment("001-augment", "001", "What does augmentation buy on unseen speakers?", "kalokyris_cnn_lstm2",
               "augmented (2 copies: noise, stretch, pitch)", recipe={"augment": _NOISE_STRETCH_PITCH}),
    Experiment("002-song", "002", "What do the song clips add?", "das2019_model_b", "speech + song",
               recipe={"train_with_song": True}, song=True),
    Experiment("002-song", "002", "What do the song clips add?", "das2019_model_c", "speech + song",
               recipe={"train_with_song": True}, song=True),
    Experiment("001-augment", "001", "What does augmentation buy on unseen speakers?", "kalokyris_lstm",
               "augmented (2 copies: noise, stretch, pitch)", recipe={"augment": _NOISE_STRETCH_PITCH}),
    Experiment("002-song", "002", "What do the song clips add?", "das2019_model_d", "speech + song",
               recipe={"train_with_song": True}, song=True),
]


def key_of(exp: Experiment, fold: int, settings: dict) -> str:
    return bench.record_key(f"{exp.id}/{exp.model}/{exp.variant}", "speaker", fold, settings)


def changed_entry(prep, exp: Experiment):
    """``prep`` with its model's builder called with ``exp.builder``'s options."""
    if not exp.builder:
        return prep
    entry = prep.entry
    base = entry.builder
    module = sys.modules[base.__module__]
    inner = getattr(module, "_pankratz") if exp.model.startswith("pankratz") else None
    if inner is None:
        raise SystemExit(f"{exp.id}: no builder options known for {exp.model}")
    dropout = 0.0 if exp.model.endswith("nodropout") else 0.25
    builder = functools.partial(inner, dropout=dropout, name=f"{exp.model}_{exp.id}", **exp.builder)
    return dataclasses.replace(prep, entry=dataclasses.replace(entry, builder=builder))


def run_experiment(exp: Experiment, corpus, args, done: set, results_path: Path) -> int:
    import keras

    from serlib.models import get_recipe
    from serlib.training import fit_split, prepare_data, song_data

    settings = bench.settings_of(args, corpus.source)
    todo = [f for f in range(args.folds) if key_of(exp, f, settings) not in done]
    if not todo:
        print(f"{exp.id} {exp.model} ({exp.variant}): all {args.folds} folds done")
        return 0
    recipe = get_recipe(exp.model).override(**exp.recipe) if exp.recipe else get_recipe(exp.model)
    prep = changed_entry(prepare_data(exp.model, corpus, verbose=0, recipe=recipe), exp)
    song = None
    if exp.song:
        folder = bench.song_corpus_01_20(corpus, args.song_data)
        song = song_data(exp.model, folder, speech=prep, verbose=0)
    splits = bench.splits_for("speaker", prep, args)
    n_new = 0
    for fold in todo:
        split = splits[fold]
        started = time.time()
        print(f"{exp.id} {exp.model} ({exp.variant}): {split.protocol} ...", flush=True)
        run = fit_split(prep, split, recipe=recipe, seed=args.seed + fold, quick=args.quick, verbose=0, song=song)
        m, info = run.metrics, run.info
        actors = info["split"]["actors"] or {}
        record = {
            "experiment": exp.id, "question": exp.question, "variant": exp.variant,
            "changes": {"recipe": exp.recipe, "builder": exp.builder, "song": exp.song},
            "model": exp.model, "report": prep.entry.report, "family": prep.entry.family,
            "protocol": "speaker", "protocol_name": split.protocol, "fold": fold, "n_folds": args.folds,
            "settings": settings, "accuracy": m["accuracy"], "uar": m["uar"], "f1_macro": m["f1_macro"],
            "n": m["n"], "labels": m["labels"], "confusion": m["confusion"], "params": info["params"],
            "seconds_per_epoch": info["seconds_per_epoch"], "training_seconds": info["training_seconds"],
            "epochs_run": info["epochs_run"], "best_epoch": info["best_epoch"], "batch_size": info["batch_size"],
            "test_actors": actors.get("test"), "val_actors": actors.get("val"), "train_actors": actors.get("train"),
            "n_train": info["n_train"], "n_train_augmented": info["n_train_augmented"],
            "n_song": (info.get("song") or {}).get("n_clips", 0), "n_val": info["n_val"], "n_test": info["n_test"],
            "data": bench.data_record(corpus), "machine": bench.machine(),
            "serlib_version": info["serlib_version"], "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "history": bench.history_record(run.history),
            "predictions": bench.predictions_record(prep, corpus, split, run),
        }
        if args.note:
            record["note"] = args.note
        results = bench.load_results(results_path)
        results["description"] = "the reports' own experiments on unseen speakers (benchmarks/experiments.py)"
        results["records"] = [r for r in results["records"]
                              if key_of(_of(r), r["fold"], r["settings"]) != key_of(exp, fold, settings)] + [record]
        bench.save_results(results_path, results)
        done.add(key_of(exp, fold, settings))
        n_new += 1
        print(f"  fold {fold + 1}/{args.folds}: UAR {m['uar']:.3f}  accuracy {m['accuracy']:.3f}  "
              f"{info['epochs_run']} epochs ({time.time() - started:.0f} s)", flush=True)
        run.model = None
        keras.backend.clear_session()
    return n_new


def _of(record: dict) -> Experiment:
    return Experiment(record["experiment"], record.get("report", ""), "", record["model"], record["variant"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", help="comma-separated experiment ids (default: all)")
    p.add_argument("--models", help="comma-separated models: only the experiments on these")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="two short epochs per fold: a smoke test")
    p.add_argument("--data", help="RAVDESS speech folder")
    p.add_argument("--song-data", help="RAVDESS song folder (for the song experiments)")
    p.add_argument("--results", default=str(DEFAULT_RESULTS))
    p.add_argument("--note", help="a line kept in each new record")
    p.add_argument("--list", action="store_true")
    p.add_argument("--table", action="store_true")
    args = p.parse_args(argv)
    args.epochs = None
    chosen = EXPERIMENTS if not args.only else [e for e in EXPERIMENTS if e.id in args.only.split(",")]
    if args.models:
        chosen = [e for e in chosen if e.model in args.models.split(",")]
    results_path = Path(args.results)
    if args.list:
        for e in EXPERIMENTS:
            print(f"{e.id:<16} {e.model:<28} {e.variant:<45} {e.question}")
        return 0
    if not args.table:
        from serlib.errors import SerlibError

        try:
            corpus = bench.corpus_01_20(args.data)
        except SerlibError as error:
            print(f"benchmarks/experiments.py: {error}", file=sys.stderr)
            return 2
        results = bench.load_results(results_path)
        done = {key_of(_of(r), r["fold"], r["settings"]) for r in results["records"]}
        for exp in chosen:
            try:
                run_experiment(exp, corpus, args, done, results_path)
            except SerlibError as error:
                print(f"{exp.id} {exp.model}: skipped ({error})", file=sys.stderr)
    from serlib.experiments import experiment_table

    print(experiment_table(results_path).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
