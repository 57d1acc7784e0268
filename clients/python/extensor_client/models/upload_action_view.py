from enum import StrEnum


class UploadActionView(StrEnum):
    INSTALLED = "installed"
    UNCHANGED = "unchanged"
    UPGRADED = "upgraded"

    def __str__(self) -> str:
        return str(self.value)
