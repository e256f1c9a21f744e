"""`run.status().last_error` shows the current outage while the real server process is stopped, ahead of an
earlier refusal, and no longer once the server is started again (issue 21, "Resume": nothing is silent)."""

from __future__ import annotations

import time

import pytest

from tally import Tally
from tally.run import FlushTimeoutError, RunRejectedError
from tally.run._format import KIND_LOG, frame

from ..conftest import unique
from .conftest import KEY, ServerProcess

pytestmark = pytest.mark.integration


def test_last_error_names_the_outage_while_it_lasts(server: ServerProcess) -> None:
    server.start()
    with Tally(api_key=KEY, base_url=server.url) as client, client.run(unique("outage")) as run:
        run.log({"loss": 1.0})
        # A record the server refuses (a step past the contract's, as an older SDK could have spooled it).
        run._seq += 1
        run._writer.append(frame([KIND_LOG, run._seq, 2**53, time.time(), None, {"loss": 0.5}]), 1)
        run._logged += 1
        with pytest.raises(RunRejectedError):
            run.flush(timeout=30)
        refusal = run.status().last_error or ""
        assert "step" in refusal

        server.stop()
        run.log({"loss": 0.5})
        with pytest.raises(FlushTimeoutError):
            run.flush(timeout=0.5)
        # The sender reports the outage once its client's own retries have failed: on a loaded machine that can
        # take longer than the flush above, so wait for it (a generous deadline, not a timing assertion).
        deadline = time.monotonic() + 60
        while "connect" not in (run.status().last_error or "").lower():  # the outage, not the older refusal
            assert time.monotonic() < deadline, run.status()
            time.sleep(0.05)
        assert run.status().pending == 1

        server.start()
        run.flush(timeout=60)
        status = run.status()
        assert (status.stored, status.pending, status.rejected) == (2, 0, 1)
        assert status.last_error == refusal  # the outage is over; the refusal stays on record
