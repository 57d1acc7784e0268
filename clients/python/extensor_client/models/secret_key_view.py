from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="SecretKeyView")


@_attrs_define
class SecretKeyView:
    """A secret's key, when it was last set and its revision; never its value.

    Attributes:
        key (str):
        updated_at (datetime.datetime):
        revision (int): 1 when first set, +1 per change. Send it as `If-Match` to change or
            remove the secret only if nobody else has since.
    """

    key: str
    updated_at: datetime.datetime
    revision: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        key = self.key

        updated_at = self.updated_at.isoformat()

        revision = self.revision

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "key": key,
                "updated_at": updated_at,
                "revision": revision,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        key = d.pop("key")

        updated_at = datetime.datetime.fromisoformat(d.pop("updated_at"))

        revision = d.pop("revision")

        secret_key_view = cls(
            key=key,
            updated_at=updated_at,
            revision=revision,
        )

        secret_key_view.additional_properties = d
        return secret_key_view

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
