"""The entry point of a run's sender process (`client.run(..., sender="process")`): `python -m tally._sender_main`,
started by the training process only (`tally.run._sender_process`). Here, at the client's layer, because the run
package never imports a client: this module makes the process's client from the parent's instructions and hands
the run package a port over it."""

from __future__ import annotations

import signal


def main() -> None:
    # The training job's Ctrl-C reaches its whole process group: the parent decides when this process stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from pathlib import Path

    from tally.run._sender_wire import client_spec, read_message
    from tally.run._spool import Preparer

    message = read_message()
    # Before the client's imports (`tally.run._sender_wire` says why).
    preparer = Preparer(Path(message["directory"]), message["segment_start"], message["segment_bytes"])
    from tally._sender_spec import client_from_spec
    from tally._sync._run_port import RunPort
    from tally.run._sender_child import serve

    serve(message, RunPort(client_from_spec(client_spec(message)), owned=True), preparer)
    # Everything is closed (the spool's files, the state, the client): leave without the interpreter's teardown of
    # its modules, about 55 ms that the parent's `close()` waited for (83 -> 25-45 ms a run), as multiprocessing's
    # children leave. Only once all went well: an error above ends the process the usual way, with its traceback.
    import logging
    import os
    import sys

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
