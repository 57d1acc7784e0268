from enum import StrEnum


class StreamOpsTreeResponse200Event(StrEnum):
    TREE = "tree"

    def __str__(self) -> str:
        return str(self.value)
