from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.run_status_name import RunStatusName
from ..types import UNSET, Unset

T = TypeVar("T", bound="LastRunView")


@_attrs_define
class LastRunView:
    """The last run of a job that ended.

    Attributes:
        run_id (str):
        status (RunStatusName): A run's status.
        scheduled_for (datetime.datetime):
        duration_ms (int):
        finished_at (datetime.datetime | None | Unset):
    """

    run_id: str
    status: RunStatusName
    scheduled_for: datetime.datetime
    duration_ms: int
    finished_at: datetime.datetime | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        run_id = self.run_id

        status = self.status.value

        scheduled_for = self.scheduled_for.isoformat()

        duration_ms = self.duration_ms

        finished_at: None | str | Unset
        if isinstance(self.finished_at, Unset):
            finished_at = UNSET
        elif isinstance(self.finished_at, datetime.datetime):
            finished_at = self.finished_at.isoformat()
        else:
            finished_at = self.finished_at

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "run_id": run_id,
                "status": status,
                "scheduled_for": scheduled_for,
                "duration_ms": duration_ms,
            }
        )
        if finished_at is not UNSET:
            field_dict["finished_at"] = finished_at

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        run_id = d.pop("run_id")

        status = RunStatusName(d.pop("status"))

        scheduled_for = datetime.datetime.fromisoformat(d.pop("scheduled_for"))

        duration_ms = d.pop("duration_ms")

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

        last_run_view = cls(
            run_id=run_id,
            status=status,
            scheduled_for=scheduled_for,
            duration_ms=duration_ms,
            finished_at=finished_at,
        )

        last_run_view.additional_properties = d
        return last_run_view

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
