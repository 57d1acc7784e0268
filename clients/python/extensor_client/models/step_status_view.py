from enum import StrEnum


class StepStatusView(StrEnum):
    ABORTED = "aborted"
    OK = "ok"
    SKIPPED = "skipped"

    def __str__(self) -> str:
        return str(self.value)
