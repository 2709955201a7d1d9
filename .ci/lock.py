"""The last known good versions: ``constraints.txt`` at the top of the repository.

serlib declares version *ranges* (``pyproject.toml``), so a fresh install gets today's newest
releases; that is what a newcomer gets and what CI tests by default. ``constraints.txt`` pins
the exact versions of one environment that passed every test, so a course can reinstall the
same environment next term::

    make install LOCKED=1          # pip install -c constraints.txt -r requirements.txt

Usage::

    python .ci/lock.py --write     # pin what the running interpreter has installed (after a green run)
    python .ci/lock.py --check     # the lock pins every dependency within the declared ranges;
                                   # also lists where this environment has moved on from the lock

``--check`` fails (exit 1) when a dependency the project declares (with all its extras) is not
pinned, or when a pin lies outside the project's declared range; a newer release installed here
is only reported, since the ranges allow it.
"""
from __future__ import annotations

import argparse
import importlib.metadata as metadata
import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent
LOCK = REPO / "constraints.txt"
HEADER = ("# Last known good versions (python .ci/lock.py --write after a green `make test`).\n"
          "# Install them with `make install LOCKED=1`; CI checks with `python .ci/lock.py --check`\n"
          "# that they cover every dependency within pyproject.toml's ranges.\n")


def declared(pyproject: Path = REPO / "pyproject.toml") -> list[Requirement]:
    """Every requirement of the project, its optional extras included."""
    project = tomllib.loads(pyproject.read_text())["project"]
    lines = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        lines += extra
    return [Requirement(line) for line in lines]


def read_lock(path: Path = LOCK) -> dict[str, Version]:
    """``{canonical name: pinned version}`` from a constraints file of ``name==version`` lines."""
    pins = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        if not match:
            raise SystemExit(f"{path}:{number}: not a 'name==version' line: {line!r}")
        pins[canonicalize_name(match.group(1))] = Version(match.group(2))
    return pins


def installed(skip: str = "serlib") -> dict[str, Version]:
    """What the running interpreter has installed, without the project itself and pip's own tools."""
    found = {}
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"] or "")
        if name and name not in {canonicalize_name(skip), "pip", "setuptools", "wheel"}:
            found[name] = Version(dist.version)
    return found


def problems(requirements: list[Requirement], pins: dict[str, Version]) -> list[str]:
    """One line per declared dependency the lock leaves unpinned or pins outside its range."""
    out = []
    for req in requirements:
        name = canonicalize_name(req.name)
        if name not in pins:
            out.append(f"{req.name}: declared ({req}) but not pinned in {LOCK.name}")
        elif req.specifier and pins[name] not in req.specifier:
            out.append(f"{req.name}: pinned at {pins[name]}, outside the declared range '{req.specifier}'")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="pin this environment's versions")
    mode.add_argument("--check", action="store_true", help="check the lock against pyproject.toml")
    args = parser.parse_args(argv)
    if args.write:
        pins = installed()
        missing = problems(declared(), pins)
        if missing:
            print("lock: this environment lacks declared dependencies; install them first:\n  "
                  + "\n  ".join(missing), file=sys.stderr)
            return 1
        LOCK.write_text(HEADER + "".join(f"{name}=={pins[name]}\n" for name in sorted(pins)))
        print(f"lock: wrote {len(pins)} pins to {LOCK}")
        return 0
    if not LOCK.is_file():
        print(f"lock: {LOCK} is missing; run `python .ci/lock.py --write` in a green environment",
              file=sys.stderr)
        return 1
    pins = read_lock()
    bad = problems(declared(), pins)
    here = installed()
    moved = sorted(f"{name} {pins[name]} -> {here[name]}" for name in pins
                   if name in here and here[name] != pins[name])
    unpinned = sorted(name for name in here if name not in pins)
    if moved:
        print(f"lock: this environment differs from {LOCK.name} in {len(moved)} packages "
              "(allowed by the ranges; refresh with --write after a green run):\n  " + "\n  ".join(moved))
    if unpinned:
        print(f"lock: installed here but not pinned: {', '.join(unpinned)}")
    if bad:
        print("lock: FAILED\n  " + "\n  ".join(bad), file=sys.stderr)
        return 1
    print(f"lock: {LOCK.name} pins all {len(declared())} declared dependencies within their ranges "
          f"({len(pins)} packages in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
