"""Does level matching help every architecture across corpora? (issue 28, item 3: what helps)

``benchmarks/travel_level.py`` found that loudness does not travel: RAVDESS keeps each take's
recording level, EmoDB scales every clip to full scale. This script asks the same question
of every saved fold-1 run (``benchmarks/models.py --save-runs``, the runs
``benchmarks/cross_corpus.py`` scores): each run scores EmoDB's clips twice, as 16 kHz copies
unscaled (the control) and scaled so that each clip's loudest frames sit at the median of
the fold's RAVDESS training actors' clips (no EmoDB label or statistic used). Scores are the
arg-max over the six shared emotions, as in ``cross_corpus.py``.

Writes ``benchmarks/results/level_match.json``::

    {"schema": 1, "reference_db": -29.5, "train_actors": [...], "records": {
        "<model>": {"task", "control": {"uar", "accuracy", "n"}, "matched": {...}, "change": matched - control}}}

Resumable (a model with a record is skipped unless ``--refresh``). Usage::

    python benchmarks/level_match.py [--runs /work/bench-runs] [--models a,b]

Explained in the chapter "Does it travel? RAVDESS to EmoDB".
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from travel_level import clip_levels, write_copies  # noqa: E402

OUT = HERE / "results" / "level_match.json"
SUFFIX = "-speaker-fold0"


def main(argv=None) -> int:
    from serlib.datasets.corpus import load_corpus
    from serlib.evaluation import evaluate_run
    from serlib.runs import load_run
    from serlib.storage import write_json

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=Path, default=Path("/work/bench-runs"))
    p.add_argument("--models", help="comma-separated models (default: every *-speaker-fold0 run)")
    p.add_argument("--ravdess", default=str(HERE.parent.parent / "shared" / "data" / "ravdess"))
    p.add_argument("--emodb", default=str(HERE.parent.parent / "shared" / "data" / "emodb"))
    p.add_argument("--work", type=Path, default=Path("/tmp/serlib-level-match"))
    p.add_argument("--refresh", action="store_true")
    args = p.parse_args(argv)
    folders = sorted(f for f in args.runs.iterdir() if f.name.endswith(SUFFIX) and (f / "run.json").is_file())
    if args.models:
        wanted = set(args.models.split(","))
        folders = [f for f in folders if f.name[:-len(SUFFIX)] in wanted]
    if not folders:
        sys.exit(f"{args.runs}: no saved *{SUFFIX} runs (benchmarks/models.py --save-runs)")
    results = json.loads(OUT.read_text()) if OUT.is_file() else {"schema": 1, "records": {}}
    # every fold-1 run trains on the same actors (a gender model on their clips of one gender)
    train = sorted({int(a) for f in folders for a in json.loads((f / "run.json").read_text())["split"]["actors"]["train"]})
    rav = load_corpus(args.ravdess, verbose=False).index
    rav = rav[rav["actor"].isin(train)]
    emo = load_corpus(args.emodb, verbose=False).index
    reference = float(np.median(clip_levels(rav)))
    emo_levels = clip_levels(emo)
    print(f"reference: {reference:.1f} dB (median of {len(rav)} clips of training actors {train})")
    if not (args.work / "done").exists():
        shutil.rmtree(args.work, ignore_errors=True)
        write_copies(emo, emo_levels, args.work / "control", None)
        write_copies(emo, emo_levels, args.work / "matched", reference)
        (args.work / "done").write_text("ok")
    results.update({"description": "fold-1 runs scored on EmoDB, unscaled and level-matched "
                                   "(benchmarks/level_match.py)", "reference_db": round(reference, 2),
                    "train_actors": train})
    for folder in folders:
        model = folder.name[:-len(SUFFIX)]
        if model in results["records"] and not args.refresh:
            continue
        started = time.time()
        run = load_run(folder)
        record = {"task": run.info.get("task", "emotion")}
        for tag in ("control", "matched"):
            m = evaluate_run(run, str(args.work / tag))
            record[tag] = {"uar": round(m["uar"], 4), "accuracy": round(m["accuracy"], 4), "n": m["n"]}
        record["change"] = round(record["matched"]["uar"] - record["control"]["uar"], 4)
        record["seconds"] = round(time.time() - started, 1)
        results["records"][model] = record
        write_json(OUT, results)
        print(f"{model:34s} control {record['control']['uar']:.3f}  matched {record['matched']['uar']:.3f}  "
              f"({record['change']:+.3f})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
