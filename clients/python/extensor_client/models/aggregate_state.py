from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="AggregateState")


@_attrs_define
class AggregateState:
    """
    Attributes:
        stream (str):
        revision (int): The stream revision and global position the state includes.
        position (int):
        state (Any): The aggregate's state (token hashes, never tokens; secret ciphertext
            digests, never values).
    """

    stream: str
    revision: int
    position: int
    state: Any
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        stream = self.stream

        revision = self.revision

        position = self.position

        state = self.state

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "stream": stream,
                "revision": revision,
                "position": position,
                "state": state,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        stream = d.pop("stream")

        revision = d.pop("revision")

        position = d.pop("position")

        state = d.pop("state")

        aggregate_state = cls(
            stream=stream,
            revision=revision,
            position=position,
            state=state,
        )

        aggregate_state.additional_properties = d
        return aggregate_state

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
