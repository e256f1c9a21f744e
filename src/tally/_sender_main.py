"""The entry point of a run's sender process (`client.run(..., sender="process")`): `python -m tally._sender_main`,
started by the training process only (`tally.run._sender_process`). Here, at the client's layer, because the run
package never imports a client: this module makes the process's client from the parent's instructions and hands
the run package a port over it."""

from __future__ import annotations

import signal


def main() -> None:
    # The training job's Ctrl-C reaches its whole process group: the parent decides when this process stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from tally._sender_spec import client_from_spec
    from tally._sync._run_port import RunPort
    from tally.run._sender_child import read_message, serve

    message = read_message()
    serve(message, RunPort(client_from_spec(message["client"]), owned=True))


if __name__ == "__main__":
    main()
