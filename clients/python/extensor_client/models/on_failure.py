from enum import StrEnum


class OnFailure(StrEnum):
    ABORT = "abort"
    SKIP = "skip"

    def __str__(self) -> str:
        return str(self.value)
