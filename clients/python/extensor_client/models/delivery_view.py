from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.delivery_status_name import DeliveryStatusName
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.attempt_view import AttemptView


T = TypeVar("T", bound="DeliveryView")


@_attrs_define
class DeliveryView:
    """One delivery: an event on its way to the webhook, with its attempts.

    Attributes:
        delivery_id (str): `msg_…`: the `webhook-id` header of every attempt.
        status (DeliveryStatusName):
        event_id (str):
        event_type (str):
        origin (str): `event`, `redeliver`, `replay` or `test`.
        webhook_revision (int): The webhook revision the delivery follows.
        created_at (datetime.datetime):
        attempts (list[AttemptView]):
        redelivery_of (None | str | Unset): For a redelivery: the delivery it repeats.
        finished_at (datetime.datetime | None | Unset):
        reason (None | str | Unset): Why it failed or was skipped.
    """

    delivery_id: str
    status: DeliveryStatusName
    event_id: str
    event_type: str
    origin: str
    webhook_revision: int
    created_at: datetime.datetime
    attempts: list[AttemptView]
    redelivery_of: None | str | Unset = UNSET
    finished_at: datetime.datetime | None | Unset = UNSET
    reason: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        delivery_id = self.delivery_id

        status = self.status.value

        event_id = self.event_id

        event_type = self.event_type

        origin = self.origin

        webhook_revision = self.webhook_revision

        created_at = self.created_at.isoformat()

        attempts = []
        for attempts_item_data in self.attempts:
            attempts_item = attempts_item_data.to_dict()
            attempts.append(attempts_item)

        redelivery_of: None | str | Unset
        if isinstance(self.redelivery_of, Unset):
            redelivery_of = UNSET
        else:
            redelivery_of = self.redelivery_of

        finished_at: None | str | Unset
        if isinstance(self.finished_at, Unset):
            finished_at = UNSET
        elif isinstance(self.finished_at, datetime.datetime):
            finished_at = self.finished_at.isoformat()
        else:
            finished_at = self.finished_at

        reason: None | str | Unset
        if isinstance(self.reason, Unset):
            reason = UNSET
        else:
            reason = self.reason

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "delivery_id": delivery_id,
                "status": status,
                "event_id": event_id,
                "event_type": event_type,
                "origin": origin,
                "webhook_revision": webhook_revision,
                "created_at": created_at,
                "attempts": attempts,
            }
        )
        if redelivery_of is not UNSET:
            field_dict["redelivery_of"] = redelivery_of
        if finished_at is not UNSET:
            field_dict["finished_at"] = finished_at
        if reason is not UNSET:
            field_dict["reason"] = reason

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.attempt_view import AttemptView  # noqa: PLC0415

        d = dict(src_dict)
        delivery_id = d.pop("delivery_id")

        status = DeliveryStatusName(d.pop("status"))

        event_id = d.pop("event_id")

        event_type = d.pop("event_type")

        origin = d.pop("origin")

        webhook_revision = d.pop("webhook_revision")

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        attempts = []
        _attempts = d.pop("attempts")
        for attempts_item_data in _attempts:
            attempts_item = AttemptView.from_dict(attempts_item_data)

            attempts.append(attempts_item)

        def _parse_redelivery_of(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        redelivery_of = _parse_redelivery_of(d.pop("redelivery_of", UNSET))

        def _parse_finished_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                finished_at_type_0 = datetime.datetime.fromisoformat(data)

                return finished_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        finished_at = _parse_finished_at(d.pop("finished_at", UNSET))

        def _parse_reason(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        reason = _parse_reason(d.pop("reason", UNSET))

        delivery_view = cls(
            delivery_id=delivery_id,
            status=status,
            event_id=event_id,
            event_type=event_type,
            origin=origin,
            webhook_revision=webhook_revision,
            created_at=created_at,
            attempts=attempts,
            redelivery_of=redelivery_of,
            finished_at=finished_at,
            reason=reason,
        )

        delivery_view.additional_properties = d
        return delivery_view

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
