"""`python -m tally_server`: the same command as `tally serve`."""

from __future__ import annotations

from tally_server.cli import serve

if __name__ == "__main__":
    serve(prog_name="python -m tally_server")
