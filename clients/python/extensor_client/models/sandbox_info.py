from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="SandboxInfo")


@_attrs_define
class SandboxInfo:
    """The sandbox settings every plugin runs under (manifests may lower them).

    Attributes:
        engine (str):
        heap_bytes_max (int):
        deadline_ms (int):
        job_deadline_ms (int):
        pool_isolates_max (int):
    """

    engine: str
    heap_bytes_max: int
    deadline_ms: int
    job_deadline_ms: int
    pool_isolates_max: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        engine = self.engine

        heap_bytes_max = self.heap_bytes_max

        deadline_ms = self.deadline_ms

        job_deadline_ms = self.job_deadline_ms

        pool_isolates_max = self.pool_isolates_max

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "engine": engine,
                "heap_bytes_max": heap_bytes_max,
                "deadline_ms": deadline_ms,
                "job_deadline_ms": job_deadline_ms,
                "pool_isolates_max": pool_isolates_max,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        engine = d.pop("engine")

        heap_bytes_max = d.pop("heap_bytes_max")

        deadline_ms = d.pop("deadline_ms")

        job_deadline_ms = d.pop("job_deadline_ms")

        pool_isolates_max = d.pop("pool_isolates_max")

        sandbox_info = cls(
            engine=engine,
            heap_bytes_max=heap_bytes_max,
            deadline_ms=deadline_ms,
            job_deadline_ms=job_deadline_ms,
            pool_isolates_max=pool_isolates_max,
        )

        sandbox_info.additional_properties = d
        return sandbox_info

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
