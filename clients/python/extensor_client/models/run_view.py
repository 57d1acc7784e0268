from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.run_status_name import RunStatusName
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.run_log_view import RunLogView
    from ..models.truncated_result_view import TruncatedResultView


T = TypeVar("T", bound="RunView")


@_attrs_define
class RunView:
    """One run of a job.

    Attributes:
        run_id (str):
        job (str):
        status (RunStatusName): A run's status.
        scheduled_for (datetime.datetime):
        folded (int): Older skipped occurrences counted into this record.
        logs (list[RunLogView]):
        logs_dropped (int):
        trigger (None | str | Unset): `schedule`, `catch_up` or `run_now`; absent for an occurrence
            skipped without being scheduled.
        started_at (datetime.datetime | None | Unset):
        finished_at (datetime.datetime | None | Unset):
        duration_ms (int | None | Unset):
        result (Any | Unset): The job's return value (JSON), when it succeeded and fit.
        result_truncated (None | TruncatedResultView | Unset):
        error (None | str | Unset):
        skip_reason (None | str | Unset): Why a skipped run did not run: `missed`, `overlap`, `unscheduled`.
    """

    run_id: str
    job: str
    status: RunStatusName
    scheduled_for: datetime.datetime
    folded: int
    logs: list[RunLogView]
    logs_dropped: int
    trigger: None | str | Unset = UNSET
    started_at: datetime.datetime | None | Unset = UNSET
    finished_at: datetime.datetime | None | Unset = UNSET
    duration_ms: int | None | Unset = UNSET
    result: Any | Unset = UNSET
    result_truncated: None | TruncatedResultView | Unset = UNSET
    error: None | str | Unset = UNSET
    skip_reason: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.truncated_result_view import TruncatedResultView  # noqa: PLC0415

        run_id = self.run_id

        job = self.job

        status = self.status.value

        scheduled_for = self.scheduled_for.isoformat()

        folded = self.folded

        logs = []
        for logs_item_data in self.logs:
            logs_item = logs_item_data.to_dict()
            logs.append(logs_item)

        logs_dropped = self.logs_dropped

        trigger: None | str | Unset
        if isinstance(self.trigger, Unset):
            trigger = UNSET
        else:
            trigger = self.trigger

        started_at: None | str | Unset
        if isinstance(self.started_at, Unset):
            started_at = UNSET
        elif isinstance(self.started_at, datetime.datetime):
            started_at = self.started_at.isoformat()
        else:
            started_at = self.started_at

        finished_at: None | str | Unset
        if isinstance(self.finished_at, Unset):
            finished_at = UNSET
        elif isinstance(self.finished_at, datetime.datetime):
            finished_at = self.finished_at.isoformat()
        else:
            finished_at = self.finished_at

        duration_ms: int | None | Unset
        if isinstance(self.duration_ms, Unset):
            duration_ms = UNSET
        else:
            duration_ms = self.duration_ms

        result = self.result

        result_truncated: dict[str, Any] | None | Unset
        if isinstance(self.result_truncated, Unset):
            result_truncated = UNSET
        elif isinstance(self.result_truncated, TruncatedResultView):
            result_truncated = self.result_truncated.to_dict()
        else:
            result_truncated = self.result_truncated

        error: None | str | Unset
        if isinstance(self.error, Unset):
            error = UNSET
        else:
            error = self.error

        skip_reason: None | str | Unset
        if isinstance(self.skip_reason, Unset):
            skip_reason = UNSET
        else:
            skip_reason = self.skip_reason

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "run_id": run_id,
                "job": job,
                "status": status,
                "scheduled_for": scheduled_for,
                "folded": folded,
                "logs": logs,
                "logs_dropped": logs_dropped,
            }
        )
        if trigger is not UNSET:
            field_dict["trigger"] = trigger
        if started_at is not UNSET:
            field_dict["started_at"] = started_at
        if finished_at is not UNSET:
            field_dict["finished_at"] = finished_at
        if duration_ms is not UNSET:
            field_dict["duration_ms"] = duration_ms
        if result is not UNSET:
            field_dict["result"] = result
        if result_truncated is not UNSET:
            field_dict["result_truncated"] = result_truncated
        if error is not UNSET:
            field_dict["error"] = error
        if skip_reason is not UNSET:
            field_dict["skip_reason"] = skip_reason

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.run_log_view import RunLogView  # noqa: PLC0415
        from ..models.truncated_result_view import TruncatedResultView  # noqa: PLC0415

        d = dict(src_dict)
        run_id = d.pop("run_id")

        job = d.pop("job")

        status = RunStatusName(d.pop("status"))

        scheduled_for = datetime.datetime.fromisoformat(d.pop("scheduled_for"))

        folded = d.pop("folded")

        logs = []
        _logs = d.pop("logs")
        for logs_item_data in _logs:
            logs_item = RunLogView.from_dict(logs_item_data)

            logs.append(logs_item)

        logs_dropped = d.pop("logs_dropped")

        def _parse_trigger(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        trigger = _parse_trigger(d.pop("trigger", UNSET))

        def _parse_started_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                started_at_type_0 = datetime.datetime.fromisoformat(data)

                return started_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        started_at = _parse_started_at(d.pop("started_at", UNSET))

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

        def _parse_duration_ms(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        duration_ms = _parse_duration_ms(d.pop("duration_ms", UNSET))

        result = d.pop("result", UNSET)

        def _parse_result_truncated(data: object) -> None | TruncatedResultView | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                result_truncated_type_1 = TruncatedResultView.from_dict(data)

                return result_truncated_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | TruncatedResultView | Unset, data)

        result_truncated = _parse_result_truncated(d.pop("result_truncated", UNSET))

        def _parse_error(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        error = _parse_error(d.pop("error", UNSET))

        def _parse_skip_reason(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        skip_reason = _parse_skip_reason(d.pop("skip_reason", UNSET))

        run_view = cls(
            run_id=run_id,
            job=job,
            status=status,
            scheduled_for=scheduled_for,
            folded=folded,
            logs=logs,
            logs_dropped=logs_dropped,
            trigger=trigger,
            started_at=started_at,
            finished_at=finished_at,
            duration_ms=duration_ms,
            result=result,
            result_truncated=result_truncated,
            error=error,
            skip_reason=skip_reason,
        )

        run_view.additional_properties = d
        return run_view

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
