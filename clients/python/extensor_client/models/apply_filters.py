from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.on_failure import OnFailure
from ..types import UNSET, Unset

T = TypeVar("T", bound="ApplyFilters")


@_attrs_define
class ApplyFilters:
    """
    Attributes:
        input_ (Any | Unset): The value the chain filters (absent: `null`).
        on_failure (OnFailure | Unset): What a chain does when a step fails or hits a limit. Default: OnFailure.SKIP.
    """

    input_: Any | Unset = UNSET
    on_failure: OnFailure | Unset = OnFailure.SKIP
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        input_ = self.input_

        on_failure: str | Unset = UNSET
        if not isinstance(self.on_failure, Unset):
            on_failure = self.on_failure.value

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({})
        if input_ is not UNSET:
            field_dict["input"] = input_
        if on_failure is not UNSET:
            field_dict["on_failure"] = on_failure

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        input_ = d.pop("input", UNSET)

        _on_failure = d.pop("on_failure", UNSET)
        on_failure: OnFailure | Unset
        if isinstance(_on_failure, Unset):
            on_failure = UNSET
        else:
            on_failure = OnFailure(_on_failure)

        apply_filters = cls(
            input_=input_,
            on_failure=on_failure,
        )

        apply_filters.additional_properties = d
        return apply_filters

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
