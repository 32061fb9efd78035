"""Process faults: a fitter whose worker dies mid-fold, and a writer killed mid-save."""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

from gamstore.fit import GAM


class KillingGAM(GAM):
    """A :class:`GAM` whose first fold fit of ``victim`` kills its own process (SIGKILL).

    The kill fires ``after`` seconds into the fit (mid-fit, possibly mid-save) or, if the fit
    is faster, right when it ends, before the result can be returned. A sentinel file makes
    it happen once per run: the retried fold fits normally.
    """

    def __init__(self, *args: Any, victim: Any, sentinel: str, after: float, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.victim = victim
        self.sentinel = sentinel
        self.after = after

    def fit(self, data: Any, *args: Any, **kwargs: Any) -> Any:
        is_fold = kwargs.get("knots") is not None
        subj = data["subj"].unique() if "subj" in getattr(data, "columns", ()) else ()
        if not is_fold or self.victim in subj or os.path.exists(self.sentinel):
            return super().fit(data, *args, **kwargs)
        # the fold that holds everything but the victim: die on the first attempt
        with open(self.sentinel, "x"):
            pass
        timer = threading.Timer(self.after, os.kill, (os.getpid(), signal.SIGKILL))
        timer.start()
        super().fit(data, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable")  # pragma: no cover


WRITER = """
import sys
from gamstore import open_store
from gamstore.store.testing import block_record
store = open_store(sys.argv[1], budget_bytes=1 << 30)
i = 0
print("ready", flush=True)
while True:
    key = f"w-{i % 7}"
    store.save("block", key, block_record(key, i % 10, n_blocks=8, width=4000))
    i += 1
"""


def writer_command(url: str) -> list[str]:
    """argv of a process that saves records to ``url`` in a loop until killed."""
    return [sys.executable, "-c", WRITER, url]
