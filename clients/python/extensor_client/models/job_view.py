from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.last_run_view import LastRunView
    from ..models.run_counts import RunCounts


T = TypeVar("T", bound="JobView")


@_attrs_define
class JobView:
    """One job of a plugin.

    Attributes:
        name (str):
        schedule (str): The cron expression in the seconds form (`0 0 2 * * *`).
        timezone (str): IANA zone the schedule is read in.
        catch_up (str): `skip`, `run_once` or `run_each`.
        catch_up_max (int):
        overlap (str): `skip` or `queue_one`.
        scheduled (bool): Whether the scheduler is firing it (the plugin is enabled).
        active_runs (int): Runs scheduled or going now.
        counts (RunCounts): Ended runs of a job by status.
        next_run (datetime.datetime | None | Unset):
        last_run (LastRunView | None | Unset):
    """

    name: str
    schedule: str
    timezone: str
    catch_up: str
    catch_up_max: int
    overlap: str
    scheduled: bool
    active_runs: int
    counts: RunCounts
    next_run: datetime.datetime | None | Unset = UNSET
    last_run: LastRunView | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.last_run_view import LastRunView  # noqa: PLC0415

        name = self.name

        schedule = self.schedule

        timezone = self.timezone

        catch_up = self.catch_up

        catch_up_max = self.catch_up_max

        overlap = self.overlap

        scheduled = self.scheduled

        active_runs = self.active_runs

        counts = self.counts.to_dict()

        next_run: None | str | Unset
        if isinstance(self.next_run, Unset):
            next_run = UNSET
        elif isinstance(self.next_run, datetime.datetime):
            next_run = self.next_run.isoformat()
        else:
            next_run = self.next_run

        last_run: dict[str, Any] | None | Unset
        if isinstance(self.last_run, Unset):
            last_run = UNSET
        elif isinstance(self.last_run, LastRunView):
            last_run = self.last_run.to_dict()
        else:
            last_run = self.last_run

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "name": name,
                "schedule": schedule,
                "timezone": timezone,
                "catch_up": catch_up,
                "catch_up_max": catch_up_max,
                "overlap": overlap,
                "scheduled": scheduled,
                "active_runs": active_runs,
                "counts": counts,
            }
        )
        if next_run is not UNSET:
            field_dict["next_run"] = next_run
        if last_run is not UNSET:
            field_dict["last_run"] = last_run

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.last_run_view import LastRunView  # noqa: PLC0415
        from ..models.run_counts import RunCounts  # noqa: PLC0415

        d = dict(src_dict)
        name = d.pop("name")

        schedule = d.pop("schedule")

        timezone = d.pop("timezone")

        catch_up = d.pop("catch_up")

        catch_up_max = d.pop("catch_up_max")

        overlap = d.pop("overlap")

        scheduled = d.pop("scheduled")

        active_runs = d.pop("active_runs")

        counts = RunCounts.from_dict(d.pop("counts"))

        def _parse_next_run(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                next_run_type_0 = datetime.datetime.fromisoformat(data)

                return next_run_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        next_run = _parse_next_run(d.pop("next_run", UNSET))

        def _parse_last_run(data: object) -> LastRunView | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                last_run_type_1 = LastRunView.from_dict(data)

                return last_run_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(LastRunView | None | Unset, data)

        last_run = _parse_last_run(d.pop("last_run", UNSET))

        job_view = cls(
            name=name,
            schedule=schedule,
            timezone=timezone,
            catch_up=catch_up,
            catch_up_max=catch_up_max,
            overlap=overlap,
            scheduled=scheduled,
            active_runs=active_runs,
            counts=counts,
            next_run=next_run,
            last_run=last_run,
        )

        job_view.additional_properties = d
        return job_view

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
