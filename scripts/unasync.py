"""Derive `src/tally/_sync/` from `src/tally/_async/` by token substitution, the way httpcore does.

    uv run python scripts/unasync.py           # write the sync files
    uv run python scripts/unasync.py --check   # fail if a sync file is missing or differs (CI, `make test`)

Every substitution in the table must be used at least once, so the table cannot silently rot. The output is
run through `ruff check --select I,F401,UP028 --fix` and `ruff format`, so the generated files pass the same
lint as the rest.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "src" / "tally" / "_async"
TARGET = ROOT / "src" / "tally" / "_sync"

SUBSTITUTIONS: list[tuple[str, str]] = [
    # Prose first, before the token rules change it.
    (r"\bfor async code\b", "for sync code"),
    (
        r"\bEvery method is awaited; every `list\(\)` is `async for`-able\.",
        "Every `list()` is a lazy iterator.",
    ),
    (r"\basync `list\(\)`", "`list()`"),
    (r"`async for item in paginator`", "`for item in paginator`"),
    (r"`async for page in paginator.pages\(\)`", "`for page in paginator.pages()`"),
    (r"\bwritten once in async form; `scripts/unasync.py` derives `tally/_sync/` from it\.", "generated."),
    # Tokens.
    (
        r"\bAsync(?=[A-Z])",
        "",
    ),  # AsyncTally, AsyncFolders, AsyncPaginator, httpx.AsyncClient, AsyncIterator...
    (r"\basync def\b", "def"),
    (r"\basync with\b", "with"),
    (r"\basync for\b", "for"),
    (r"\bawait ", ""),
    (r"\b__aenter__\b", "__enter__"),
    (r"\b__aexit__\b", "__exit__"),
    (r"\b__aiter__\b", "__iter__"),
    (r"\baclose\b", "close"),
    (r"\baread\b", "read"),
    (r"\baiter_bytes\b", "iter_bytes"),
    (r"\basynccontextmanager\b", "contextmanager"),
    (r"\bAbstractAsyncContextManager\b", "AbstractContextManager"),
    (r"\bhandle_async_request\b", "handle_request"),
    (r"\basync_sleep\b", "sleep"),
    (r"\bdefault_async_transport\b", "default_transport"),
    (r"\basync_pace\b", "pace"),
    (r"\basync_(before_request|after_success|after_error)\b", r"\1"),
    (r'\bplatform_headers\("asyncio"\)', "platform_headers(None)"),
    (r"\brelease_async_pool\(self\.http\)", "self.http.close()"),
    (r"\basyncio\.Lock\b", "threading.Lock"),
    (r"\bimport asyncio\b", "import threading"),
    (
        r"\bAwaitable\[([^\[\]]*(?:\[[^\[\]]*\])?)\]",
        r"\1",
    ),  # Awaitable[T] -> T, Awaitable[Page[T]] -> Page[T]
]

_COMPILED = [(re.compile(pattern), replacement) for pattern, replacement in SUBSTITUTIONS]


def header(name: str) -> str:
    return (
        f"# Generated from src/tally/_async/{name} by scripts/unasync.py. Do not edit: edit the async file.\n"
    )


def unasync_text(text: str, used: list[int]) -> str:
    for index, (pattern, replacement) in enumerate(_COMPILED):
        text, count = pattern.subn(replacement, text)
        used[index] += count
    return text


def ruff(text: str, filename: Path) -> str:
    for command in (
        [
            "ruff",
            "check",
            "--select",
            "I,F401,UP028",
            "--fix",
            "--unsafe-fixes",
            "--quiet",
            "--exit-zero",
            "--stdin-filename",
            str(filename),
            "-",
        ],
        ["ruff", "format", "--quiet", "--stdin-filename", str(filename), "-"],
    ):
        text = subprocess.run(
            command, input=text, capture_output=True, text=True, check=True, cwd=ROOT
        ).stdout
    return text


def generate() -> dict[Path, str]:
    used = [0] * len(_COMPILED)
    outputs: dict[Path, str] = {}
    for source in sorted(SOURCE.glob("*.py")):
        target = TARGET / source.name
        outputs[target] = ruff(
            header(source.name) + unasync_text(source.read_text(encoding="utf-8"), used), target
        )
    unused = [SUBSTITUTIONS[index][0] for index, count in enumerate(used) if count == 0]
    if unused:
        raise SystemExit(f"unasync: substitutions never used (remove them or fix them): {unused}")
    return outputs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the sync files are not up to date")
    args = parser.parse_args()
    outputs = generate()
    stale = sorted(
        str(path.relative_to(ROOT))
        for path, text in outputs.items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    )
    extra = sorted(str(p.relative_to(ROOT)) for p in TARGET.glob("*.py") if p not in outputs)
    if args.check:
        if stale or extra:
            print(
                f"unasync: out of date: {stale + extra}; run `uv run python scripts/unasync.py`",
                file=sys.stderr,
            )
            return 1
        print(f"unasync: {len(outputs)} sync files up to date")
        return 0
    TARGET.mkdir(exist_ok=True)
    for path, text in outputs.items():
        path.write_text(text, encoding="utf-8")
    for name in extra:
        (ROOT / name).unlink()
    print(
        f"unasync: wrote {len(outputs)} files to {TARGET.relative_to(ROOT)}"
        + (f"; removed {extra}" if extra else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
