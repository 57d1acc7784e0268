from enum import StrEnum


class StreamEventsResponse200Event(StrEnum):
    EVENT = "event"

    def __str__(self) -> str:
        return str(self.value)
