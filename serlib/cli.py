"""The ``serlib`` command: download, index, train, evaluate, predict, models.

Every problem with the user's input ends as one line on stderr naming the file or folder
and what to do, with exit status 2 and no traceback (the library raises
:class:`~serlib.errors.SerlibError` for those). Any other exception is a bug in serlib: it
ends as one line saying so, with exit status 70; ``SERLIB_DEBUG=1`` shows its traceback.
The library's messages (progress, warnings) go to stderr through :mod:`serlib.log`;
``--quiet`` keeps only the warnings. What a command prints on stdout (tables, JSON, paths)
is its output. Explained in the chapter "Beyond the reports".
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from pathlib import Path

from . import log
from .errors import SerlibError
from .quiet_keras import import_keras
from .storage import write_bytes

#: Exit status of a bug in serlib (an exception that is not a SerlibError): EX_SOFTWARE.
BUG_STATUS = 70


def _actors(text: str | None):
    if not text:
        return None
    try:
        return [int(a) for a in text.replace(" ", "").split(",") if a]
    except ValueError:
        raise SerlibError(f"{text!r}: actor lists are comma-separated numbers, e.g. 19,20") from None


def _corpus_name(text: str | None) -> str | None:
    """The --corpus option checked before any work (an unknown name is one line)."""
    if text is None:
        return None
    from .datasets import get_corpus

    return get_corpus(text).name


def _cmd_index(args) -> int:
    from .datasets import get_corpus, index_folder, summarize

    df = index_folder(args.data_dir, _corpus_name(args.corpus))
    s = summarize(df)
    adapter = get_corpus(s["corpus"][0])
    what = "" if adapter.name == "ravdess" else f"{adapter.title} "
    print(f"{s['clips']} {what}clips in {args.data_dir} (sample rates: {', '.join(map(str, s['sample_rates']))} Hz; "
          f"{s['stereo']} stereo)")
    for title in ("emotion", "gender", "actor"):
        print(f"\nby {title if adapter.name == 'ravdess' or title != 'actor' else 'speaker'}:")
        for key, count in s[title].items():
            label = key
            if title == "actor":
                label = f"Actor_{key:02d}" if adapter.name == "ravdess" else f"{adapter.speaker_id(key)} ({key})"
            print(f"  {label:<12} {count:>5}")
    if args.csv:
        out = Path(args.csv).expanduser()
        if not out.parent.is_dir():
            raise SerlibError(f"{out.parent}: no such folder for the CSV; create it first")
        if out.is_dir():
            raise SerlibError(f"{out}: is a folder; give a file name for the CSV, e.g. {out / 'index.csv'}")
        try:   # a temporary name unique to this process, renamed into place: concurrent runs never collide
            write_bytes(out, df.to_csv(index=False).encode())
        except OSError as error:
            raise SerlibError(f"{out}: cannot write the CSV ({error.strerror or error}); "
                              "check the folder is writable and has free space") from None
        print(f"\nwrote {len(df)} rows to {out}")
    return 0


def _cmd_download(args) -> int:
    from .datasets.download import EMODB_URL, RAVDESS_MD5, RAVDESS_URL, download_emodb, download_ravdess

    corpus = _corpus_name(args.corpus) or "ravdess"
    if args.encoder:
        from .voice_encoder import load_encoder, weights_path

        path = weights_path()
        load_encoder(path)          # proves the file reads before saying so
        print(path)
        return 0
    if corpus == "emodb":
        if args.md5 is None:
            print("serlib download: EmoDB's authors publish no checksum; the archive is checked by its 535 clip "
                  "names instead, and its MD5 is recorded in the folder's .serlib-download.json", file=sys.stderr)
        path = download_emodb(dest=args.dest, url=args.url or EMODB_URL, md5=args.md5, progress=not args.quiet)
        print(path)
        return 0
    md5 = args.md5 or (RAVDESS_MD5 if args.url is None else None)
    if args.url is not None and md5 is None:
        print("serlib download: no --md5 given for --url; the archive's checksum will not be verified",
              file=sys.stderr)
    path = download_ravdess(dest=args.dest, url=args.url or RAVDESS_URL, md5=md5,
                            progress=not args.quiet)
    print(path)
    return 0


def _cmd_train(args) -> int:
    import_keras()   # TensorFlow's native start-up lines stay off the terminal
    from .runs import check_out_dir
    from .training import train

    check_out_dir(args.out)  # refuse a non-empty --out before loading anything heavy
    from .models import get_recipe

    recipe = get_recipe(args.model, *args.set)   # unknown settings and bad values: one line, before any work
    if not Path(args.data).expanduser().is_dir():
        raise SerlibError(f"{args.data}: no such data folder; pass the folder that holds Actor_01/ … "
                          "(or run `serlib download`)")
    if args.song and not Path(args.song).expanduser().is_dir():
        raise SerlibError(f"{args.song}: no such song folder; pass the RAVDESS song folder "
                          "(Audio_Song_Actors_01-24, names 03-02-…) or leave --song out")
    song = False if args.no_song else args.song
    # progress bars on a terminal, one line per epoch in logs, nothing with --quiet
    verbose = 0 if args.quiet else 1 if sys.stdout.isatty() else 2
    test_actors = [] if args.all_speakers else _actors(args.test_actors)   # []: a final model, no test speakers
    changed = recipe.changes_from(get_recipe(args.model))
    if changed and not args.quiet:
        print("recipe: " + ", ".join(f"{k}={json.dumps(v)}" for k, v in changed.items()) + " (--set)")
    run = train(args.model, args.data, out_dir=args.out, val_actors=_actors(args.val_actors),
                test_actors=test_actors, epochs=args.epochs, batch_size=args.batch_size,
                seed=args.seed, augment=True if args.augment else None, quick=True if args.quick else None,
                verbose=verbose, song=song, recipe=recipe)
    m = run.metrics
    info = run.info
    print(f"{info['model']}: {info['epochs_run']} epoch(s) in {info['training_seconds']:.1f} s; "
          f"{info['split']['protocol']}")
    if m:
        print(f"test: accuracy {m['accuracy']:.3f}  UAR {m['uar']:.3f}  macro-F1 {m['f1_macro']:.3f}  (n={m['n']})")
    elif m is None:
        print(f"test: none ({info['split'].get('note', 'no test speakers')})")
    print(f"run saved in {run.dir}")
    return 0


class _OneLineWarnings:
    """Inside ``serlib evaluate``/``predict``: each warning (e.g. a run saved by another serlib
    or Keras version, :class:`serlib.runs.RunWarning`) is one stderr line, no source line."""

    def __init__(self, command: str):
        import warnings

        self.command, self._catch = command, warnings.catch_warnings()

    def __enter__(self):
        import warnings

        from .runs import RunWarning

        self._catch.__enter__()
        warnings.filterwarnings("always", category=RunWarning)   # shown, even under -W error (once per run)
        warnings.showwarning = self._show
        return self

    def _show(self, message, *_args, **_kwargs):
        lines = str(message).strip().splitlines()
        print(f"serlib {self.command}: warning: {lines[0] if lines else type(message).__name__}", file=sys.stderr)

    def __exit__(self, *exc):
        return self._catch.__exit__(*exc)


def _cmd_evaluate(args) -> int:
    import_keras()   # TensorFlow's native start-up lines stay off the terminal
    from .datasets import corpus_names, get_corpus
    from .evaluation import evaluate_run
    from .runs import load_run

    corpus = _corpus_name(args.corpus)
    with _OneLineWarnings("evaluate"):
        run = load_run(args.run_dir)  # a folder that is not a run (or a damaged one) fails here, in one line
        if not Path(args.data).expanduser().is_dir():
            raise SerlibError(f"{args.data}: no such data folder; pass a folder of RAVDESS or EmoDB clips")
        m = evaluate_run(run, args.data, corpus=corpus, adapt=args.adapt, level_db=args.level_db)
    if args.json:
        print(json.dumps(m))
    else:
        cross = m.get("cross_corpus")
        if cross:
            left = (f"; left out: {', '.join(cross['left_out_labels'])} ({cross['left_out_clips']} clips)"
                    if cross["left_out_clips"] else "")
            title = {name: get_corpus(name).title for name in corpus_names()}
            print(f"cross-corpus: run trained on {title.get(cross['train_corpus'], cross['train_corpus'])}, "
                  f"scored on {title.get(cross['target_corpus'], cross['target_corpus'])} "
                  f"over the {len(cross['shared_labels'])} labels both share ({', '.join(cross['shared_labels'])})"
                  f"{left}")
            if cross.get("rule"):
                print(f"decision: {cross['rule']}")
        if m.get("adapt"):
            print(f"transductive (--adapt {m['adapt']['mode']}): {m['adapt']['what']}")
        if m.get("level_db"):
            print(f"level (--level-db {m['level_db']['level_db']:g}): {m['level_db']['what']}")
        print(f"accuracy {m['accuracy']:.3f}  UAR {m['uar']:.3f}  macro-F1 {m['f1_macro']:.3f}  n={m['n']}")
        if cross and cross.get("unrestricted"):
            u = cross["unrestricted"]
            called = ", ".join(f"{k} {v}" for k, v in u["predicted_absent"].items())
            print(f"unrestricted (arg-max over all {len(u['columns'])} labels): accuracy {u['accuracy']:.3f}  "
                  f"UAR {u['uar']:.3f}  macro-F1 {u['f1_macro']:.3f}; clips called {called}")
        width = max(len(label) for label in m["labels"])
        print(" " * (width + 2) + " ".join(f"{label[:5]:>5}" for label in m["labels"]))
        for label, row in zip(m["labels"], m["confusion"]):
            print(f"{label:>{width}}  " + " ".join(f"{v:>5d}" for v in row))
    return 0


def _cmd_predict(args) -> int:
    """Print each file's label and top probabilities (or ``no speech found`` and why); with
    ``--json`` the list :func:`serlib.predict.predict_paths` returns (``status`` "ok", "no
    speech found" or "error"). Errors and warnings (e.g. a truncated file) go to stderr, one
    line each naming the file; the exit status is 1 when a file could not be read."""
    import_keras()   # TensorFlow's native start-up lines stay off the terminal
    from .predict import predict_paths

    from .datasets import label_from_name

    with _OneLineWarnings("predict"):
        results = predict_paths(args.run_dir, args.paths, level_db=args.level_db)
    for r in results:     # a RAVDESS or EmoDB file name says the intended emotion: shown beside the guess
        named = label_from_name(r["path"])
        if named is not None:
            r["from_name"] = named
    failed = [r for r in results if "error" in r]
    for r in results:
        if "error" in r:
            print(f"{r['path']}: {r['error']}", file=sys.stderr)
        if r.get("warning"):
            print(f"{r['path']}: warning: {r['warning']}", file=sys.stderr)
    if args.json:
        print(json.dumps(results))
    else:
        for r in results:
            if "error" in r:
                continue
            if r["label"] is None:
                print(f"{r['path']}: {r['status']}  ({r['reason']})")
                continue
            top = sorted(r["probabilities"].items(), key=lambda kv: -kv[1])[:3]
            named = (f"  [name: {r['from_name']['emotion']}, {r['from_name']['speaker']}]"
                     if r.get("from_name") else "")
            print(f"{r['path']}: {r['label']}  (" + ", ".join(f"{k} {v:.2f}" for k, v in top) + ")" + named)
    return 1 if failed else 0


def _cmd_models(args) -> int:
    import_keras()   # TensorFlow's native start-up lines stay off the terminal
    from .models import describe_models

    rows = describe_models()
    if args.json:
        print(json.dumps(rows))
        return 0
    width = max([len(r["name"]) for r in rows] + [4]) + 2
    print(f"{'name':<{width}} {'params':>10}  {'input':<30} source")
    for r in rows:
        star = "  <- recommended" if r.get("recommended") else ""
        print(f"{r['name']:<{width}} {r['params']:>10,}  {str(r['input'])[:30]:<30} {r['source']}{star}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="serlib", description="Speech emotion recognition from raw audio.")
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true",
                        help="show only warnings and errors on stderr (no progress messages or bars)")

    corpus_help = ("the folder's corpus: ravdess or emodb (default: detected from the file names, "
                   "RAVDESS 03-01-05-02-01-02-12.wav, EmoDB 03a01Fa.wav)")
    s = sub.add_parser("index", parents=[common], help="list the RAVDESS (or EmoDB) clips in a folder")
    s.add_argument("data_dir")
    s.add_argument("--corpus", help=corpus_help)
    s.add_argument("--csv", help="write one row per clip to this CSV file")
    s.set_defaults(func=_cmd_index)

    s = sub.add_parser("download", parents=[common], help="download the official RAVDESS speech zip (Zenodo 1188976) "
                                                          "or, with --corpus emodb, the Berlin EmoDB archive")
    s.add_argument("--corpus", default=None, help="ravdess (default) or emodb (the authors' download.zip, "
                                                  "about 40 MB, unpacked to $SERLIB_CACHE_DIR/emodb)")
    s.add_argument("--dest", help="folder to unpack into (default: $SERLIB_CACHE_DIR/ravdess or .../emodb)")
    s.add_argument("--url", help="download from this mirror instead of Zenodo")
    s.add_argument("--md5", help="expected MD5 of the archive at --url (default: the Zenodo checksum; "
                                 "EmoDB has none published)")
    s.add_argument("--encoder", action="store_true",
                   help="fetch the pretrained voice encoder's weights instead (resemblyzer 0.1.4 from PyPI, "
                        "15.7 MB, once; serlib.voice_encoder)")
    s.set_defaults(func=_cmd_download)

    s = sub.add_parser("train", parents=[common], help="train a registered model (see `serlib models`)")
    s.add_argument("model")
    s.add_argument("--data", required=True, help="RAVDESS folder")
    s.add_argument("--out", required=True, help="run folder to create")
    s.add_argument("--val-actors", help="comma-separated actor numbers for validation")
    held_out = s.add_mutually_exclusive_group()
    held_out.add_argument("--test-actors", help="comma-separated actor numbers held out for testing")
    held_out.add_argument("--all-speakers", action="store_true",
                          help="final model: hold out no test speakers (no test scores); validation actors "
                               "(--val-actors, else drawn) still steer early stopping")
    s.add_argument("--epochs", type=int)
    s.add_argument("--batch-size", type=int)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--augment", action="store_true", help="augment training clips (after the split)")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="change one setting of the model's recipe for this run, e.g. --set epochs=10 "
                        "--set ensemble=1 (repeatable; see serlib/recipes/*.json; saved in run.json)")
    s.add_argument("--quick", action="store_true", help="few epochs, for a smoke test")
    group = s.add_mutually_exclusive_group()
    group.add_argument("--song", metavar="DIR",
                       help="also train on the RAVDESS song clips of the training actors in DIR "
                            "(default for models that train with song: found beside --data or via SERLIB_SONG_DIR)")
    group.add_argument("--no-song", action="store_true", help="train on speech only")
    s.set_defaults(func=_cmd_train)

    s = sub.add_parser("evaluate", parents=[common], help="score a trained run on every clip of a folder "
                                                          "(another corpus: over the emotions both share)")
    s.add_argument("run_dir")
    s.add_argument("--data", required=True)
    s.add_argument("--corpus", help=corpus_help)
    s.add_argument("--json", action="store_true")
    s.add_argument("--adapt", choices=("corpus", "speaker"),
                   help="transductive: standardise with statistics of the unlabelled clips scored (all, or each "
                        "speaker's) instead of the training clips' (serlib.cross_corpus; not for single clips)")
    s.add_argument("--level-db", type=float, metavar="DB",
                   help="scale each clip so its loudest frames sit at DB dB re full scale (e.g. -30) before it is "
                        "described: removes the recording level, a cue that does not travel between corpora "
                        "(serlib.level; works on single clips)")
    s.set_defaults(func=_cmd_evaluate)

    s = sub.add_parser("predict", parents=[common], help="emotion and class probabilities for audio files or folders")
    s.add_argument("run_dir")
    s.add_argument("paths", nargs="+")
    s.add_argument("--json", action="store_true")
    s.add_argument("--level-db", type=float, metavar="DB",
                   help="scale each file so its loudest frames sit at DB dB re full scale (e.g. -30) first "
                        "(serlib.level): for recordings whose gain differs from the training corpus's")
    s.set_defaults(func=_cmd_predict)

    s = sub.add_parser("models", parents=[common], help="list every registered architecture")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_models)
    return p


def _bug(command: str, error: BaseException) -> int:
    """The one line for an exception serlib did not expect (a bug); the traceback with SERLIB_DEBUG=1."""
    if os.environ.get("SERLIB_DEBUG", "").strip() == "1":
        traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
    text = (str(error).strip().splitlines() or [""])[0][:300]
    what = f"{type(error).__name__}: {text}" if text else type(error).__name__
    print(f"serlib {command}: {what}; this is a bug in serlib; please report it with the command "
          "(SERLIB_DEBUG=1 shows the traceback)", file=sys.stderr)
    return BUG_STATUS


def main(argv=None) -> int:
    """Run the ``serlib`` command line; returns the exit status. Explained in "Beyond the reports".

    0: done; 1: some input files could not be read (``predict``); 2: bad input (one line on
    stderr naming it); 70: a bug in serlib (one line; ``SERLIB_DEBUG=1`` adds the
    traceback); 130: interrupted.
    """
    args = build_parser().parse_args(argv)
    log.show(logging.WARNING if args.quiet else logging.INFO)
    try:
        status = args.func(args)
        sys.stdout.flush()   # surface a closed pipe here, not at interpreter exit
        return status
    except SerlibError as error:
        if os.environ.get("SERLIB_DEBUG", "").strip() == "1":
            traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
        print(f"serlib {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("serlib: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`serlib index X | head`): stop quietly. Point stdout at
        # /dev/null so Python's final flush does not raise again; status 1 as Python does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as error:     # anything else is a bug in serlib: one line, not a traceback
        return _bug(args.command, error)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
