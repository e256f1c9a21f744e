"""Fail when openapi/tally.yaml breaks clients of the spec at a base git revision.

    python scripts/spec_diff.py --base HEAD~1
    python scripts/spec_diff.py --base-file old.yaml --head-file new.yaml

The comparison is Optic's `breaking-changes` ruleset (pinned in tools/node/package-lock.json). Raising the major
number of `info.version` declares the break intended: the diff is still printed, but does not fail.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SPEC_PATH = "openapi/tally.yaml"
OPTIC = ROOT / "tools" / "node" / "node_modules" / ".bin" / "optic"


def major_version(spec_text: str) -> int:
    """The major number of a spec's `info.version` (`1.4.0` -> 1)."""
    version = str(yaml.safe_load(spec_text)["info"]["version"])
    return int(version.split(".", 1)[0])


def spec_at(revision: str) -> str | None:
    """The spec's text at a git revision; None when the revision or the file there does not exist."""
    result = subprocess.run(
        ["git", "show", f"{revision}:{SPEC_PATH}"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return result.stdout if result.returncode == 0 else None


def run_optic(base_file: Path, head_file: Path, *, check: bool) -> int:
    command = [str(OPTIC), "diff", str(base_file), str(head_file)]
    if check:
        command.append("--check")
    # Optic reports usage to its vendor unless told not to; the machines here have no such network anyway.
    env = {**os.environ, "OPTIC_TELEMETRY_LEVEL": "off"}
    return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="git revision of the base spec, e.g. HEAD~1 or main")
    parser.add_argument("--base-file", type=Path, help="compare against this spec file instead of a revision")
    parser.add_argument(
        "--head-file", type=Path, default=ROOT / SPEC_PATH, help="the new spec (default: working tree)"
    )
    parser.add_argument(
        "--allow-missing-base",
        action="store_true",
        help="pass when the base revision or its spec does not exist",
    )
    args = parser.parse_args()
    if not OPTIC.exists():
        print("Optic is not installed: run `make install` (npm ci in tools/node)", file=sys.stderr)
        return 2

    head_text = args.head_file.read_text(encoding="utf-8")
    if args.base_file is not None:
        base_text = args.base_file.read_text(encoding="utf-8")
        base_name = str(args.base_file)
    elif args.base:
        maybe = spec_at(args.base)
        if maybe is None:
            message = f"no {SPEC_PATH} at {args.base!r}"
            if args.allow_missing_base:
                print(f"spec-diff: {message}; nothing to compare against")
                return 0
            print(f"spec-diff: {message}; name a revision that has it with BASE=<rev>", file=sys.stderr)
            return 2
        base_text, base_name = maybe, f"{args.base}:{SPEC_PATH}"
    else:
        parser.error("give --base REV or --base-file FILE")

    base_major, head_major = major_version(base_text), major_version(head_text)
    with tempfile.TemporaryDirectory(prefix="tally-spec-diff-") as scratch:
        base_file = Path(scratch) / "base.yaml"
        base_file.write_text(base_text, encoding="utf-8")
        if head_major > base_major:
            print(
                f"spec-diff: info.version major raised {base_major} -> {head_major}; breaking changes are allowed"
            )
            run_optic(base_file, args.head_file, check=False)
            return 0
        print(f"spec-diff: {base_name} -> {args.head_file} (breaking changes fail)")
        return run_optic(base_file, args.head_file, check=True)


if __name__ == "__main__":
    raise SystemExit(main())
