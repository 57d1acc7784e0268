from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="PluginMetricsView")


@_attrs_define
class PluginMetricsView:
    """One installed plugin's invocations (hooks, routes, jobs, filters) since
    this server process started; every installed plugin is listed, with
    zeroes when it has not run.

        Attributes:
            id (str): The plugin's id (`ins_…`).
            slug (str):
            invocations (int): Invocations that ran (refused ones are not counted).
            errors (int): Of those, the ones that ended in an error.
            p50_us (int): Latency percentiles and maximum in microseconds (0 when none ran;
                two significant figures; capped at one minute).
            p95_us (int):
            p99_us (int):
            max_us (int):
    """

    id: str
    slug: str
    invocations: int
    errors: int
    p50_us: int
    p95_us: int
    p99_us: int
    max_us: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        id = self.id

        slug = self.slug

        invocations = self.invocations

        errors = self.errors

        p50_us = self.p50_us

        p95_us = self.p95_us

        p99_us = self.p99_us

        max_us = self.max_us

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "id": id,
                "slug": slug,
                "invocations": invocations,
                "errors": errors,
                "p50_us": p50_us,
                "p95_us": p95_us,
                "p99_us": p99_us,
                "max_us": max_us,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        id = d.pop("id")

        slug = d.pop("slug")

        invocations = d.pop("invocations")

        errors = d.pop("errors")

        p50_us = d.pop("p50_us")

        p95_us = d.pop("p95_us")

        p99_us = d.pop("p99_us")

        max_us = d.pop("max_us")

        plugin_metrics_view = cls(
            id=id,
            slug=slug,
            invocations=invocations,
            errors=errors,
            p50_us=p50_us,
            p95_us=p95_us,
            p99_us=p99_us,
            max_us=max_us,
        )

        plugin_metrics_view.additional_properties = d
        return plugin_metrics_view

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
