from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="WebhookStatsView")


@_attrs_define
class WebhookStatsView:
    """Live counters of a webhook's endpoint actor.

    Attributes:
        pending (int): Deliveries created and not final.
        in_flight (int):
        scheduled (int): Deliveries waiting for a retry.
        consecutive_failures (int): Failed attempts since the receiver's last success (informational:
            a webhook is disabled by time failing, never by this count).
    """

    pending: int
    in_flight: int
    scheduled: int
    consecutive_failures: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        pending = self.pending

        in_flight = self.in_flight

        scheduled = self.scheduled

        consecutive_failures = self.consecutive_failures

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "pending": pending,
                "in_flight": in_flight,
                "scheduled": scheduled,
                "consecutive_failures": consecutive_failures,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        pending = d.pop("pending")

        in_flight = d.pop("in_flight")

        scheduled = d.pop("scheduled")

        consecutive_failures = d.pop("consecutive_failures")

        webhook_stats_view = cls(
            pending=pending,
            in_flight=in_flight,
            scheduled=scheduled,
            consecutive_failures=consecutive_failures,
        )

        webhook_stats_view.additional_properties = d
        return webhook_stats_view

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
