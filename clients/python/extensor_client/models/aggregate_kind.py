from enum import StrEnum


class AggregateKind(StrEnum):
    INSTALLATION = "installation"
    TENANT = "tenant"

    def __str__(self) -> str:
        return str(self.value)
