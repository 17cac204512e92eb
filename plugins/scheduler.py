"""Built-in plugin: the scheduler's answer to ``castroom_propose_schedule``.

The work is core's (:mod:`castroom.core.scheduling`: the exact dynamic programme and the
CP-SAT model, priced by the budget's own cost function); this plugin is ``trylast`` so a
studio's plugin with its own rules answers first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from castroom.core.api import hookimpl, propose

if TYPE_CHECKING:
    from castroom.core.api import ProductionView, SchedulePlan, ScheduleRequest


@hookimpl(trylast=True)
def castroom_propose_schedule(view: ProductionView, request: ScheduleRequest) -> SchedulePlan:
    return propose(view, request)
