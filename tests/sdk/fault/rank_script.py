"""One rank of a distributed training job, for the "ranks logging at once" fault test, run as its own process with
the launcher's variables (RANK, LOCAL_RANK, WORLD_SIZE) set as torchrun sets them:

    python rank_script.py NAME STEPS [GROUP]

Each rank logs `loss` = rank * 1000 + step and `rank` = rank at every step, so every point says which rank sent
it, then closes its run and prints `run.status()` as one JSON line.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys

from tally import Tally


def main() -> None:
    name, steps = sys.argv[1], int(sys.argv[2])
    group = sys.argv[3] if len(sys.argv) > 3 else None
    rank = int(os.environ["RANK"])
    with Tally() as client:
        run = client.run(name, group=group) if group else client.run(name)
        for step in range(steps):
            run.log({"loss": rank * 1000 + step, "rank": rank})
        status = run.close()
    print(json.dumps({"inactive": None, **dataclasses.asdict(status)}))  # (an SDK before ranks has no field)


if __name__ == "__main__":
    main()
