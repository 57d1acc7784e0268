from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.chain_step_view import ChainStepView


T = TypeVar("T", bound="ChainResultView")


@_attrs_define
class ChainResultView:
    """
    Attributes:
        value (Any): The final value (the last successful step's output).
        aborted (bool): Whether a failing step stopped the chain.
        steps (list[ChainStepView]):
    """

    value: Any
    aborted: bool
    steps: list[ChainStepView]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        value = self.value

        aborted = self.aborted

        steps = []
        for steps_item_data in self.steps:
            steps_item = steps_item_data.to_dict()
            steps.append(steps_item)

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "value": value,
                "aborted": aborted,
                "steps": steps,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.chain_step_view import ChainStepView  # noqa: PLC0415

        d = dict(src_dict)
        value = d.pop("value")

        aborted = d.pop("aborted")

        steps = []
        _steps = d.pop("steps")
        for steps_item_data in _steps:
            steps_item = ChainStepView.from_dict(steps_item_data)

            steps.append(steps_item)

        chain_result_view = cls(
            value=value,
            aborted=aborted,
            steps=steps,
        )

        chain_result_view.additional_properties = d
        return chain_result_view

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
