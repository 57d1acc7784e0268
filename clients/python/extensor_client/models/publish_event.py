from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="PublishEvent")


@_attrs_define
class PublishEvent:
    """A business event from the host application.

    Attributes:
        event_type (str): Dotted name, e.g. `auth.user.created`: at most 128 letters, digits,
            `_`, `-` and single dots, starting with a letter
            (`extensor_core::manifest::event_type_problem`).
        event_data (Any | Unset): Any JSON, at most 1 MiB serialised.
    """

    event_type: str
    event_data: Any | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        event_type = self.event_type

        event_data = self.event_data

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "event_type": event_type,
            }
        )
        if event_data is not UNSET:
            field_dict["event_data"] = event_data

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        event_type = d.pop("event_type")

        event_data = d.pop("event_data", UNSET)

        publish_event = cls(
            event_type=event_type,
            event_data=event_data,
        )

        publish_event.additional_properties = d
        return publish_event

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
