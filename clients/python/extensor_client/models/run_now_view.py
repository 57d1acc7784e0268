from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.run_status_name import RunStatusName
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.run_log_view import RunLogView
    from ..models.truncated_result_view import TruncatedResultView


T = TypeVar("T", bound="RunNowView")


@_attrs_define
class RunNowView:
    """What run-now answers.

    Attributes:
        run_id (str):
        finished (bool): Whether the run ended within the wait; if not, poll
            `GET /api/plugins/{id}/runs/{run_id}`.
        status (RunStatusName): A run's status.
        logs (list[RunLogView]):
        duration_ms (int | None | Unset):
        result (Any | Unset):
        result_truncated (None | TruncatedResultView | Unset):
        error (None | str | Unset):
    """

    run_id: str
    finished: bool
    status: RunStatusName
    logs: list[RunLogView]
    duration_ms: int | None | Unset = UNSET
    result: Any | Unset = UNSET
    result_truncated: None | TruncatedResultView | Unset = UNSET
    error: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.truncated_result_view import TruncatedResultView  # noqa: PLC0415

        run_id = self.run_id

        finished = self.finished

        status = self.status.value

        logs = []
        for logs_item_data in self.logs:
            logs_item = logs_item_data.to_dict()
            logs.append(logs_item)

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

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "run_id": run_id,
                "finished": finished,
                "status": status,
                "logs": logs,
            }
        )
        if duration_ms is not UNSET:
            field_dict["duration_ms"] = duration_ms
        if result is not UNSET:
            field_dict["result"] = result
        if result_truncated is not UNSET:
            field_dict["result_truncated"] = result_truncated
        if error is not UNSET:
            field_dict["error"] = error

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.run_log_view import RunLogView  # noqa: PLC0415
        from ..models.truncated_result_view import TruncatedResultView  # noqa: PLC0415

        d = dict(src_dict)
        run_id = d.pop("run_id")

        finished = d.pop("finished")

        status = RunStatusName(d.pop("status"))

        logs = []
        _logs = d.pop("logs")
        for logs_item_data in _logs:
            logs_item = RunLogView.from_dict(logs_item_data)

            logs.append(logs_item)

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

        run_now_view = cls(
            run_id=run_id,
            finished=finished,
            status=status,
            logs=logs,
            duration_ms=duration_ms,
            result=result,
            result_truncated=result_truncated,
            error=error,
        )

        run_now_view.additional_properties = d
        return run_now_view

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
