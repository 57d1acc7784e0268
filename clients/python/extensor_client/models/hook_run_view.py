from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.log_line import LogLine


T = TypeVar("T", bound="HookRunView")


@_attrs_define
class HookRunView:
    """
    Attributes:
        plugin_id (str):
        slug (str):
        duration_ms (float):
        logs (list[LogLine]):
        outcome (Any | Unset): What the hook returned, when it succeeded.
        error (None | str | Unset):
        error_code (None | str | Unset): `plugin_timeout`, `plugin_failed`, … when it failed.
    """

    plugin_id: str
    slug: str
    duration_ms: float
    logs: list[LogLine]
    outcome: Any | Unset = UNSET
    error: None | str | Unset = UNSET
    error_code: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        plugin_id = self.plugin_id

        slug = self.slug

        duration_ms = self.duration_ms

        logs = []
        for logs_item_data in self.logs:
            logs_item = logs_item_data.to_dict()
            logs.append(logs_item)

        outcome = self.outcome

        error: None | str | Unset
        if isinstance(self.error, Unset):
            error = UNSET
        else:
            error = self.error

        error_code: None | str | Unset
        if isinstance(self.error_code, Unset):
            error_code = UNSET
        else:
            error_code = self.error_code

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "plugin_id": plugin_id,
                "slug": slug,
                "duration_ms": duration_ms,
                "logs": logs,
            }
        )
        if outcome is not UNSET:
            field_dict["outcome"] = outcome
        if error is not UNSET:
            field_dict["error"] = error
        if error_code is not UNSET:
            field_dict["error_code"] = error_code

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.log_line import LogLine  # noqa: PLC0415

        d = dict(src_dict)
        plugin_id = d.pop("plugin_id")

        slug = d.pop("slug")

        duration_ms = d.pop("duration_ms")

        logs = []
        _logs = d.pop("logs")
        for logs_item_data in _logs:
            logs_item = LogLine.from_dict(logs_item_data)

            logs.append(logs_item)

        outcome = d.pop("outcome", UNSET)

        def _parse_error(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        error = _parse_error(d.pop("error", UNSET))

        def _parse_error_code(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        error_code = _parse_error_code(d.pop("error_code", UNSET))

        hook_run_view = cls(
            plugin_id=plugin_id,
            slug=slug,
            duration_ms=duration_ms,
            logs=logs,
            outcome=outcome,
            error=error,
            error_code=error_code,
        )

        hook_run_view.additional_properties = d
        return hook_run_view

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
