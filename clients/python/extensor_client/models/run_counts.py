from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="RunCounts")


@_attrs_define
class RunCounts:
    """Ended runs of a job by status.

    Attributes:
        succeeded (int):
        failed (int):
        timed_out (int):
        skipped (int):
    """

    succeeded: int
    failed: int
    timed_out: int
    skipped: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        succeeded = self.succeeded

        failed = self.failed

        timed_out = self.timed_out

        skipped = self.skipped

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "succeeded": succeeded,
                "failed": failed,
                "timed_out": timed_out,
                "skipped": skipped,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        succeeded = d.pop("succeeded")

        failed = d.pop("failed")

        timed_out = d.pop("timed_out")

        skipped = d.pop("skipped")

        run_counts = cls(
            succeeded=succeeded,
            failed=failed,
            timed_out=timed_out,
            skipped=skipped,
        )

        run_counts.additional_properties = d
        return run_counts

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
