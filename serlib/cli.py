"""The ``serlib`` command: download, index, train, evaluate, predict, models.

Every problem with the user's input ends as one line on stderr naming the file or folder
and what to do, with a non-zero exit status and no traceback. Explained in the chapter
"Beyond the reports".
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import SerlibError


def _actors(text: str | None):
    if not text:
        return None
    try:
        return [int(a) for a in text.replace(" ", "").split(",") if a]
    except ValueError:
        raise SerlibError(f"{text!r}: actor lists are comma-separated numbers, e.g. 19,20") from None


def _cmd_index(args) -> int:
    from .datasets import index_ravdess, summarize

    df = index_ravdess(args.data_dir)
    s = summarize(df)
    print(f"{s['clips']} clips in {args.data_dir} (sample rates: {', '.join(map(str, s['sample_rates']))} Hz; "
          f"{s['stereo']} stereo)")
    for title in ("emotion", "gender", "actor"):
        print(f"\nby {title}:")
        for key, count in s[title].items():
            label = f"Actor_{key:02d}" if title == "actor" else key
            print(f"  {label:<12} {count:>5}")
    if args.csv:
        out = Path(args.csv)
        if out.parent and not out.parent.exists():
            raise SerlibError(f"{out.parent}: no such folder for the CSV; create it first")
        tmp = out.with_name(out.name + ".tmp")
        df.to_csv(tmp, index=False)
        tmp.replace(out)
        print(f"\nwrote {len(df)} rows to {out}")
    return 0


def _cmd_download(args) -> int:
    from .datasets.download import download_ravdess

    path = download_ravdess(dest=args.dest)
    print(path)
    return 0


def _cmd_train(args) -> int:
    from .training import train

    run = train(args.model, args.data, out_dir=args.out, val_actors=_actors(args.val_actors),
                test_actors=_actors(args.test_actors), epochs=args.epochs, batch_size=args.batch_size,
                seed=args.seed, augment=args.augment, quick=args.quick)
    m = run.metrics
    if m:
        print(f"test: accuracy {m['accuracy']:.3f}  UAR {m['uar']:.3f}  macro-F1 {m['f1_macro']:.3f}  (n={m['n']})")
    print(f"run saved in {run.dir}")
    return 0


def _cmd_evaluate(args) -> int:
    from .training import evaluate_run

    m = evaluate_run(args.run_dir, args.data)
    if args.json:
        print(json.dumps(m))
    else:
        print(f"accuracy {m['accuracy']:.3f}  UAR {m['uar']:.3f}  macro-F1 {m['f1_macro']:.3f}  n={m['n']}")
        width = max(len(label) for label in m["labels"])
        print(" " * (width + 2) + " ".join(f"{label[:5]:>5}" for label in m["labels"]))
        for label, row in zip(m["labels"], m["confusion"]):
            print(f"{label:>{width}}  " + " ".join(f"{v:>5d}" for v in row))
    return 0


def _cmd_predict(args) -> int:
    from .predict import predict_paths

    results = predict_paths(args.run_dir, args.paths)
    failed = [r for r in results if "error" in r]
    for r in failed:
        print(f"{r['path']}: {r['error']}", file=sys.stderr)
    if args.json:
        print(json.dumps(results))
    else:
        for r in results:
            if "error" in r:
                continue
            top = sorted(r["probabilities"].items(), key=lambda kv: -kv[1])[:3]
            print(f"{r['path']}: {r['label']}  (" + ", ".join(f"{k} {v:.2f}" for k, v in top) + ")")
    return 1 if failed else 0


def _cmd_models(args) -> int:
    from .models import describe_models

    rows = describe_models()
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'name':<34} {'params':>10}  {'input':<34} source")
    for r in rows:
        star = " (recommended)" if r.get("recommended") else ""
        print(f"{r['name']:<34} {r['params']:>10,}  {r['input']:<34} {r['source']}{star}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="serlib", description="Speech emotion recognition from raw audio.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("index", help="list the RAVDESS clips in a folder")
    s.add_argument("data_dir")
    s.add_argument("--csv", help="write one row per clip to this CSV file")
    s.set_defaults(func=_cmd_index)

    s = sub.add_parser("download", help="download the official RAVDESS speech zip (Zenodo 1188976)")
    s.add_argument("--dest", help="folder to unpack into (default: $SERLIB_CACHE_DIR/ravdess)")
    s.set_defaults(func=_cmd_download)

    s = sub.add_parser("train", help="train a registered model (see `serlib models`)")
    s.add_argument("model")
    s.add_argument("--data", required=True, help="RAVDESS folder")
    s.add_argument("--out", required=True, help="run folder to create")
    s.add_argument("--val-actors", help="comma-separated actor numbers for validation")
    s.add_argument("--test-actors", help="comma-separated actor numbers held out for testing")
    s.add_argument("--epochs", type=int)
    s.add_argument("--batch-size", type=int)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--augment", action="store_true", help="augment training clips (after the split)")
    s.add_argument("--quick", action="store_true", help="few epochs, for a smoke test")
    s.set_defaults(func=_cmd_train)

    s = sub.add_parser("evaluate", help="score a trained run on every clip of a folder")
    s.add_argument("run_dir")
    s.add_argument("--data", required=True)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_evaluate)

    s = sub.add_parser("predict", help="emotion and class probabilities for audio files or folders")
    s.add_argument("run_dir")
    s.add_argument("paths", nargs="+")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_predict)

    s = sub.add_parser("models", help="list every registered architecture")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_models)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SerlibError as error:
        print(f"serlib {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("serlib: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
