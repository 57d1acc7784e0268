from enum import StrEnum


class RunStatusName(StrEnum):
    FAILED = "failed"
    RUNNING = "running"
    SCHEDULED = "scheduled"
    SKIPPED = "skipped"
    SUCCEEDED = "succeeded"
    TIMED_OUT = "timed_out"

    def __str__(self) -> str:
        return str(self.value)
