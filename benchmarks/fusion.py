"""Late fusion: the recommended network plus a linear model on utterance functionals.

On the folds of ``benchmarks/recommended.py`` (actor-wise 5-fold on actors 01-20,
``actor_kfold(k=5, seed, n_val_actors=0)``, fold i trained with seed + i), this script

1. trains the recommended model on each fold's 16 training actors with
   ``serlib.training.fit_split`` (the same code as ``serlib train recommended``) and keeps
   its network's class probabilities for the fold's 4 test actors (the recommended model
   has since adopted this fusion; this script still scores the parts separately);
2. fits a standardised logistic regression (``--C``) on :mod:`serlib.functionals` vectors
   of the same training clips (librosa, NumPy and SciPy only; ``librosa``), on the same
   without the :mod:`serlib.voice_quality` block (``librosa_spectral``, to measure what
   that block adds) and, with ``--opensmile``, on openSMILE's ComParE_2016 functionals too
   (needs the ``opensmile`` package, research licence);
3. averages the two probability vectors, ``weight * network + (1 - weight) * linear``,
   with the weight fixed beforehand (``--weight``, default 0.5): it is not tuned on the
   test folds. The sweep printed at the end is for information only, and choosing from
   it would be optimistic;
4. scores the average once more under equal class priors (``fused_<set>_uniform``:
   divided by each class's share of the fold's training clips and renormalised,
   :func:`serlib.fusion.uniform_prior`);
5. pools the two in the log domain instead, ``network ** weight * linear ** (1 - weight)``
   renormalised (:func:`serlib.fusion.geometric_pool`), under equal priors
   (``fused_<set>_geometric``), as the recommended model does, and without them
   (``fused_<set>_geometric_plain``), so that ``uniform_product_gain_<set>`` measures
   what the equal priors add after the product. Pooling was chosen after the other
   steps, on these same folds, so its gain is measured on folds that also chose it;
6. fits the regression once more on the training clips *and* their speed-perturbed copies
   (``--speed-copies``, default 0.9 and 1.1: :func:`serlib.augment.speed_perturb`), as the
   recommended model now does, and pools it with the same network by product under equal
   priors (``librosa_speed`` alone, ``fused_librosa_speed_geometric``;
   ``speed_gain_librosa`` is the step from ``fused_librosa_geometric``).

Every model sees each test clip on its own: the scaler and the regression are fitted on
the training actors only.

Usage::

    python benchmarks/fusion.py                       # 5 folds, about 30 min on 2 cores
    python benchmarks/fusion.py --folds 0 --quick     # smoke test
    python benchmarks/fusion.py --keep /tmp/fusion    # keep each fold's network probabilities
                                                      # there, and reuse them when run again

Writes ``benchmarks/results/fusion.json`` (``--out``). Explained in the chapter
"Beyond the reports".
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from recommended import _data_dir, _mean_std, _write  # noqa: E402  (the same data lookup, statistics, atomic write)

SWEEP = (0.25, 0.4, 0.5, 0.6, 0.75)


def _opensmile_rows(paths):
    import opensmile
    from tqdm import tqdm

    from serlib.audio import load_audio

    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.ComParE_2016,
                            feature_level=opensmile.FeatureLevel.Functionals)
    rows = [smile.process_signal(load_audio(p, sr=16000), 16000).values[0]
            for p in tqdm(paths, unit="clip", desc="openSMILE ComParE_2016")]
    return np.nan_to_num(np.vstack(rows).astype(np.float32))


def _opensmile_functionals(paths):
    """ComParE_2016 functionals, computed in a fresh process (openSMILE crashes beside TensorFlow)."""
    import importlib.util
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    if importlib.util.find_spec("opensmile") is None:
        sys.exit("--opensmile needs the opensmile package: pip install opensmile (audEERING research licence)")
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_opensmile_rows, list(paths)).result()


def _linear_log_probabilities(X, y, train, test, C, n_classes):
    """The test clips' class log probabilities under a regression fitted on the training clips
    (serlib.fusion), and the training clips' class shares (``params["prior"]``) that
    ``uniform_prior`` divides by."""
    from serlib.fusion import fit_linear, linear_log_proba

    params = fit_linear(X[train], y[train], n_classes, C=C, weight=0.0)
    return linear_log_proba(params, X[test]), params["prior"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="RAVDESS speech folder (actors 01-20)")
    parser.add_argument("--folds", help="comma-separated 0-based folds (default: all 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--C", type=float, default=0.01, help="inverse L2 strength of the regression (default 0.01)")
    parser.add_argument("--weight", type=float, default=0.5, help="the network's share of the average (default 0.5)")
    parser.add_argument("--opensmile", action="store_true", help="also fuse openSMILE ComParE_2016 functionals")
    parser.add_argument("--speed-copies", default="0.9,1.1",
                        help="speed factors of the perturbed copies step 6 adds to the regression (default 0.9,1.1)")
    parser.add_argument("--quick", action="store_true", help="2 short epochs per fold (smoke test)")
    parser.add_argument("--keep", help="folder for each fold's network probabilities (reused when present)")
    parser.add_argument("--out", default=str(HERE / "results" / "fusion.json"))
    args = parser.parse_args(argv)
    if not 0.0 <= args.weight <= 1.0:
        sys.exit(f"--weight {args.weight}: choose a share between 0 and 1")

    import keras

    from serlib.functionals import functional_blocks
    from serlib.fusion import fit_linear, fuse, geometric_pool, linear_proba, uniform_prior
    from serlib.metrics import classification_report
    from serlib.splits import actor_kfold
    from serlib.training import fit_split, prepare_data, prepared_functionals, regression_rows

    prep = prepare_data("recommended", _data_dir(args.data), verbose=0)
    if prep.data.get("synthetic"):
        print("WARNING: SYNTHETIC stand-in data, not RAVDESS: these numbers mean nothing", flush=True)
    paths = prep.index["path"].astype(str).tolist()
    wall = time.perf_counter()
    tables = {"librosa": prepared_functionals(prep)}          # kept on prep: the fused model reuses them
    extraction = {"librosa": round(time.perf_counter() - wall, 1)}
    # the same minus serlib.voice_quality's block: what the voice-quality descriptors add
    voice = functional_blocks()["voice quality"]
    tables["librosa_spectral"] = np.delete(tables["librosa"], np.arange(voice.start, voice.stop), axis=1)
    extraction["librosa_spectral"] = extraction["librosa"]
    if args.opensmile:
        wall = time.perf_counter()
        tables["opensmile_compare"] = _opensmile_functionals(paths)
        extraction["opensmile_compare"] = round(time.perf_counter() - wall, 1)
    speeds = [float(f) for f in args.speed_copies.split(",") if f.strip()]
    wall = time.perf_counter()
    for factor in speeds:
        prepared_functionals(prep, speed=factor)
    extraction["librosa_speed_copies"] = round(time.perf_counter() - wall, 1)
    print("functionals: " + ", ".join(f"{k} {v.shape[1]} per clip in {extraction[k]} s" for k, v in tables.items()),
          flush=True)

    keep = Path(args.keep) if args.keep else None
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
    labels = list(prep.labels)
    splits = actor_kfold(prep.index, k=5, seed=args.seed, n_val_actors=0)
    wanted = range(len(splits)) if not args.folds else [int(f) for f in args.folds.split(",")]

    def uar(y, probs):
        return classification_report(y, probs, labels=labels)["uar"]

    folds = []
    for i in wanted:
        split = splits[i]
        test = np.asarray(split.test)
        stored = keep / f"fold{i}{'_quick' if args.quick else ''}.npz" if keep else None
        reused = bool(stored and stored.is_file())
        if reused:  # written by an earlier run of this script or by benchmarks/recommended.py --keep
            network = np.load(stored)["probs"]
        else:
            run = fit_split(prep, split, seed=args.seed + i, quick=args.quick, verbose=0)
            network = run.network_test_proba   # the network's own, before fit_split fuses it
            keras.backend.clear_session()
            if stored:
                np.savez(stored, probs=network, test=test)
        y = prep.y[test]
        row = {"fold": i, "test_actors": sorted(int(a) for a in prep.index["actor"].iloc[test].unique()),
               "network": uar(y, network), "network_probabilities": "reused from --keep" if reused else "trained"}
        for name, X in tables.items():
            linear_log, prior = _linear_log_probabilities(X, prep.y, np.asarray(split.train), test, args.C, len(labels))
            linear = np.exp(linear_log)
            fused = args.weight * network + (1 - args.weight) * linear
            row[name] = uar(y, linear)
            row[f"fused_{name}"] = uar(y, fused)
            row[f"fused_{name}_accuracy"] = float((fused.argmax(1) == y).mean())
            uniform = uniform_prior(fused, prior)
            row[f"fused_{name}_uniform"] = uar(y, uniform)
            row[f"fused_{name}_uniform_accuracy"] = float((uniform.argmax(1) == y).mean())
            product = geometric_pool(network, linear_log, args.weight)
            row[f"fused_{name}_geometric_plain"] = uar(y, product)
            row[f"fused_{name}_geometric_plain_accuracy"] = float((product.argmax(1) == y).mean())
            geometric = uniform_prior(product, prior)
            row[f"fused_{name}_geometric"] = uar(y, geometric)
            row[f"fused_{name}_geometric_accuracy"] = float((geometric.argmax(1) == y).mean())
            row[f"sweep_{name}"] = {str(w): uar(y, w * network + (1 - w) * linear) for w in SWEEP}
        if speeds:   # step 6: the regression also learns from the speed-perturbed copies
            F_fit, y_fit = regression_rows(prep, split.train, speeds, verbose=0)
            params = fit_linear(F_fit, y_fit, len(labels), C=args.C, weight=args.weight, uniform_prior=True,
                                pooling="geometric")          # the recommended model's own fusion step
            row["librosa_speed"] = uar(y, linear_proba(params, tables["librosa"][test]))
            geometric = fuse(params, network, tables["librosa"][test])
            row["fused_librosa_speed_geometric"] = uar(y, geometric)
            row["fused_librosa_speed_geometric_accuracy"] = float((geometric.argmax(1) == y).mean())
        folds.append(row)
        print(f"fold {i} (actors {','.join(f'{a:02d}' for a in row['test_actors'])}): network {row['network']:.3f}  "
              + "  ".join(f"{k} {row[k]:.3f} -> fused {row['fused_' + k]:.3f}" for k in tables), flush=True)

    summary = {"network": _mean_std([f["network"] for f in folds])}
    for name in tables:
        summary[name] = _mean_std([f[name] for f in folds])
        summary[f"fused_{name}"] = _mean_std([f[f"fused_{name}"] for f in folds])
        summary[f"fused_{name}_accuracy"] = _mean_std([f[f"fused_{name}_accuracy"] for f in folds])
        for key in (f"fused_{name}_uniform", f"fused_{name}_uniform_accuracy",
                    f"fused_{name}_geometric", f"fused_{name}_geometric_accuracy",
                    f"fused_{name}_geometric_plain", f"fused_{name}_geometric_plain_accuracy"):
            summary[key] = _mean_std([f[key] for f in folds])
        # uniform: equal priors after the average; geometric: product instead of average (both under equal
        # priors); uniform_product: equal priors after the product (the recommended model's last step)
        steps_of = {"uniform": ("", "_uniform"), "geometric": ("_uniform", "_geometric"),
                    "uniform_product": ("_geometric_plain", "_geometric")}
        for step, (before, after) in steps_of.items():
            steps = [f[f"fused_{name}{after}"] - f[f"fused_{name}{before}"] for f in folds]
            summary[f"{step}_gain_{name}"] = {"mean": float(np.mean(steps)), "min": float(np.min(steps)),
                                              "max": float(np.max(steps)),
                                              "folds_better": int(sum(g > 0 for g in steps))}
        gains = [f[f"fused_{name}"] - f["network"] for f in folds]
        summary[f"gain_{name}"] = {"mean": float(np.mean(gains)), "min": float(np.min(gains)),
                                   "max": float(np.max(gains)), "folds_better": int(sum(g > 0 for g in gains))}
        sweep = {w: np.mean([f[f"sweep_{name}"][str(w)] for f in folds]) for w in SWEEP}
        print(f"{name}: UAR alone {summary[name][0]:.3f}, network {summary['network'][0]:.3f}, fused (weight "
              f"{args.weight}) {summary[f'fused_{name}'][0]:.3f} ± {summary[f'fused_{name}'][1]:.3f}; gain per fold "
              f"{min(gains):+.3f} to {max(gains):+.3f}; equal priors {summary[f'fused_{name}_uniform'][0]:.3f}; "
              f"product {summary[f'fused_{name}_geometric_plain'][0]:.3f}, with equal priors "
              f"{summary[f'fused_{name}_geometric'][0]:.3f}; sweep (information only, chosen on test folds "
              f"would be optimistic): " + ", ".join(f"{w}: {u:.3f}" for w, u in sweep.items()))

    if speeds:
        for key in ("librosa_speed", "fused_librosa_speed_geometric", "fused_librosa_speed_geometric_accuracy"):
            summary[key] = _mean_std([f[key] for f in folds])
        steps = [f["fused_librosa_speed_geometric"] - f["fused_librosa_geometric"] for f in folds]
        summary["speed_gain_librosa"] = {"mean": float(np.mean(steps)), "min": float(np.min(steps)),
                                         "max": float(np.max(steps)), "folds_better": int(sum(g > 0 for g in steps))}
        print(f"speed copies {speeds}: regression alone {summary['librosa_speed'][0]:.3f}, fused by product with "
              f"equal priors {summary['fused_librosa_speed_geometric'][0]:.3f} ± "
              f"{summary['fused_librosa_speed_geometric'][1]:.3f} (step {100 * np.mean(steps):+.1f} points, better "
              f"in {summary['speed_gain_librosa']['folds_better']} of {len(folds)} folds)")

    payload = {"protocol": f"speaker-independent actor 5-fold (actor_kfold seed {args.seed}, no validation actors)",
               "network": prep.model_name,
               "network_settings": {"epochs": prep.entry.epochs, "ensemble": prep.entry.ensemble},
               "settings": {"C": args.C, "weight": args.weight, "quick": args.quick, "seed": args.seed,
                            "folds": list(wanted), "speed_copies": speeds},
               "labels": labels, "extraction_seconds": extraction, "n_clips": len(paths),
               "folds": folds, "summary": summary, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    out = Path(args.out)
    _write(out, payload)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
