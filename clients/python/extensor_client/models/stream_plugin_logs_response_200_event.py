from enum import StrEnum


class StreamPluginLogsResponse200Event(StrEnum):
    LOG = "log"

    def __str__(self) -> str:
        return str(self.value)
