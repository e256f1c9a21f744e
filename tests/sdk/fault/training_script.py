"""A training loop for the fault tests, run as its own process:

    python training_script.py MARKER STEPS NAME [close|leave] [thread|process]

It logs 10 metrics a step and, after each `run.log()` returns, appends the step to MARKER with one unbuffered
`os.write` (so MARKER says which calls had returned when the process was killed). The first line of MARKER is
the run's experiment id (or `-`). `close` ends the run; `leave` exits without closing it (the atexit path).
The fifth argument is the run's `sender`.
"""

from __future__ import annotations

import os
import sys
import time

from tally import Tally


def main() -> None:
    marker, steps, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    mode = sys.argv[4] if len(sys.argv) > 4 else "close"
    sender = sys.argv[5] if len(sys.argv) > 5 else "thread"
    fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    client = Tally()
    run = client.run(name, sender=sender)  # type: ignore[arg-type]
    os.write(fd, f"{run.id or '-'}\n".encode())
    for step in range(steps):
        run.log({f"m/{i}": step + i / 10 for i in range(10)}, step=step)
        os.write(fd, b"%d\n" % step)
        if step % 10 == 9:
            time.sleep(0.002)
    if mode == "close":
        run.close()
        client.close()


if __name__ == "__main__":
    main()
