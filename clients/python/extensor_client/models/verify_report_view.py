from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.chain_break_view import ChainBreakView


T = TypeVar("T", bound="VerifyReportView")


@_attrs_define
class VerifyReportView:
    """
    Attributes:
        events_checked (int):
        head_position (int):
        head_hash (str): Hex hash of the head: record it, and a later truncation shows.
        first_break (ChainBreakView | None | Unset): The first broken link, if any. `null`: the chain is intact.
    """

    events_checked: int
    head_position: int
    head_hash: str
    first_break: ChainBreakView | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.chain_break_view import ChainBreakView  # noqa: PLC0415

        events_checked = self.events_checked

        head_position = self.head_position

        head_hash = self.head_hash

        first_break: dict[str, Any] | None | Unset
        if isinstance(self.first_break, Unset):
            first_break = UNSET
        elif isinstance(self.first_break, ChainBreakView):
            first_break = self.first_break.to_dict()
        else:
            first_break = self.first_break

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "events_checked": events_checked,
                "head_position": head_position,
                "head_hash": head_hash,
            }
        )
        if first_break is not UNSET:
            field_dict["first_break"] = first_break

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.chain_break_view import ChainBreakView  # noqa: PLC0415

        d = dict(src_dict)
        events_checked = d.pop("events_checked")

        head_position = d.pop("head_position")

        head_hash = d.pop("head_hash")

        def _parse_first_break(data: object) -> ChainBreakView | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                first_break_type_1 = ChainBreakView.from_dict(data)

                return first_break_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(ChainBreakView | None | Unset, data)

        first_break = _parse_first_break(d.pop("first_break", UNSET))

        verify_report_view = cls(
            events_checked=events_checked,
            head_position=head_position,
            head_hash=head_hash,
            first_break=first_break,
        )

        verify_report_view.additional_properties = d
        return verify_report_view

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
