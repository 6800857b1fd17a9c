"""What every phase handler shares: ``Work`` (one reconcile's view of a job and the status being
edited) and ``Parties`` (a job's party domains, own ones told from partners by the Domain cache)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from atoll.api.constants import ROLE_PARTNER
from atoll.controllers.kusciajob import constants as c
from atoll.controllers.kusciajob.stages import Command
from atoll.controllers.kusciajob.status import party_domains
from atoll.runtime import Cache

JSON = dict[str, Any]


@dataclass(slots=True)
class Memory:
    """What this process remembers about one job between reconciles. Losing it (a restart, a new
    leader) is harmless: a freshly listed cache is consistent and Event names are deterministic."""

    uid: str
    expected: set[str] = field(default_factory=set)
    """Task IDs created here that the task cache has not shown yet (they count as Pending)."""
    recorded: set[str] = field(default_factory=set)
    """Keys (and type/reason/message) of the Events already recorded."""


@dataclass(slots=True)
class Work:
    """One reconcile's view: the cached job, the status being edited, and what to do after the write."""

    job: JSON
    status: JSON
    now: str
    memory: Memory
    command: Command | None = None
    events: list[tuple[str, str, str, str]] = field(default_factory=list)
    """Events to record after the status write: (key, type, reason, message); ``key`` makes each once-only."""

    @property
    def phase(self) -> str:
        return str(self.status.get("phase") or c.INITIALIZED)

    @property
    def uid(self) -> str:
        return str(self.job["metadata"].get("uid", ""))

    @property
    def spec(self) -> JSON:
        return dict(self.job.get("spec") or {})

    def finish(self, phase: str, reason: str = "", message: str = "") -> None:
        self.status["phase"] = phase
        for key, value in (("reason", reason), ("message", message)):
            if value:
                self.status[key] = value
            else:
                self.status.pop(key, None)
        self.status.setdefault("completionTime", self.now)
        if phase == c.FAILED:
            key = f"{phase}/{reason}/{message}/{self._stage_version()}"
            self.events.append((key, "Warning", reason or "Failed", message))

    def _stage_version(self) -> str:
        return str((self.job["metadata"].get("labels") or {}).get(c.LABEL_JOB_STAGE_VERSION) or "")


class Parties:
    def __init__(self, domains: Cache) -> None:
        self.domains = domains

    def is_partner(self, domain: str) -> bool:
        """A Domain of another cluster (``spec.role: partner``)."""
        obj = self.domains.get(domain)
        return bool(obj and (obj.get("spec") or {}).get("role") == ROLE_PARTNER)

    def all(self, job: JSON) -> list[str]:
        return party_domains((job.get("spec") or {}).get("tasks") or ())

    def own(self, job: JSON) -> list[str]:
        return [d for d in self.all(job) if not self.is_partner(d)]

    def set_stage_status(self, work: Work, value: str) -> None:
        """Every own party's ``stageStatus`` becomes ``value``."""
        own = dict.fromkeys(self.own(work.job), value)
        work.status["stageStatus"] = {**(work.status.get("stageStatus") or {}), **own}
