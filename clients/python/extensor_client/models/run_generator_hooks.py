from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.on_failure import OnFailure
from ..types import UNSET, Unset

T = TypeVar("T", bound="RunGeneratorHooks")


@_attrs_define
class RunGeneratorHooks:
    """
    Attributes:
        state (Any | Unset): The state the hooks build on (absent: `null`).
        on_failure (OnFailure | Unset): What a chain does when a step fails or hits a limit. Default: OnFailure.SKIP.
    """

    state: Any | Unset = UNSET
    on_failure: OnFailure | Unset = OnFailure.SKIP
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        state = self.state

        on_failure: str | Unset = UNSET
        if not isinstance(self.on_failure, Unset):
            on_failure = self.on_failure.value

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({})
        if state is not UNSET:
            field_dict["state"] = state
        if on_failure is not UNSET:
            field_dict["on_failure"] = on_failure

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        state = d.pop("state", UNSET)

        _on_failure = d.pop("on_failure", UNSET)
        on_failure: OnFailure | Unset
        if isinstance(_on_failure, Unset):
            on_failure = UNSET
        else:
            on_failure = OnFailure(_on_failure)

        run_generator_hooks = cls(
            state=state,
            on_failure=on_failure,
        )

        run_generator_hooks.additional_properties = d
        return run_generator_hooks

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
