"""A training process for the artifact fault test, run as its own process:

    python artifact_script.py MARKER FILE NAME [SENDER]

It logs 20 steps (with `sender=SENDER`, "thread" unless given), then `run.log_artifact(FILE)`, writing the run's
experiment id and then `logged` to MARKER as each returns, then sleeps until it is killed (the sender uploads
meanwhile)."""

from __future__ import annotations

import os
import sys
import time

from tally import Tally


def main() -> None:
    marker, path, name = sys.argv[1], sys.argv[2], sys.argv[3]
    sender = sys.argv[4] if len(sys.argv) > 4 else "thread"
    fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    client = Tally()
    run = client.run(name, sender=sender)  # type: ignore[arg-type]
    for step in range(20):
        run.log({"loss": 1 / (step + 1)}, step=step)
    os.write(fd, f"{run.id or '-'}\n".encode())
    run.log_artifact(path, name="checkpoints/big.pt")
    os.write(fd, b"logged\n")
    time.sleep(600)


if __name__ == "__main__":
    main()
