from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="SecretValue")


@_attrs_define
class SecretValue:
    """
    Attributes:
        value (str): The secret, 1 to 8,192 characters (32 KiB of UTF-8). Write-only: it
            is never returned.
    """

    value: str

    def to_dict(self) -> dict[str, Any]:
        value = self.value

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "value": value,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        value = d.pop("value")

        secret_value = cls(
            value=value,
        )

        return secret_value
