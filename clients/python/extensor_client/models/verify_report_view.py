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
        tenant_events_verified (int): The caller's tenant's events whose hash-chain links are verified,
            by this call and earlier ones since the server started (never any
            other tenant's count).
        complete (bool): Whether the verified prefix reaches the log's head; `false`: call
            again to continue (each call walks at most 20,000 events).
        first_break (ChainBreakView | None | Unset): The first broken link, if any. `null`: the chain is intact as far
            as
            it is verified.
    """

    tenant_events_verified: int
    complete: bool
    first_break: ChainBreakView | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.chain_break_view import ChainBreakView  # noqa: PLC0415

        tenant_events_verified = self.tenant_events_verified

        complete = self.complete

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
                "tenant_events_verified": tenant_events_verified,
                "complete": complete,
            }
        )
        if first_break is not UNSET:
            field_dict["first_break"] = first_break

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.chain_break_view import ChainBreakView  # noqa: PLC0415

        d = dict(src_dict)
        tenant_events_verified = d.pop("tenant_events_verified")

        complete = d.pop("complete")

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
            tenant_events_verified=tenant_events_verified,
            complete=complete,
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
