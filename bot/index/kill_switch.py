"""A testing knob: `BOT_TEST_KILL_AT_WRITE=N` makes the process kill itself (SIGKILL, as `kill -9`
would) right after its N-th write to the index.

The crash tests and `bench/kill_trials.py` stop an ingest at each write boundary in turn with it,
deterministically, rather than at random moments. Unset (as it always is outside those), a write
costs one comparison more. Read once, when the module is imported.
"""

from __future__ import annotations

import os
import signal

ENV_VAR = "BOT_TEST_KILL_AT_WRITE"


class _KillSwitch:
    def __init__(self, value: str) -> None:
        value = value.strip()
        self.kill_at = int(value) if value.isdigit() and int(value) > 0 else None
        self.writes = 0

    def wrote(self) -> None:
        if self.kill_at is None:
            return
        self.writes += 1
        if self.writes == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


_SWITCH = _KillSwitch(os.environ.get(ENV_VAR, ""))


def wrote() -> None:
    """Count one finished write to the index (one Chroma call that changes it); with the knob
    set, the process dies here at the chosen one."""
    _SWITCH.wrote()
