"""Which flips are held (sent to no channel, but recorded and shown), as pure functions:
maintenance windows (domain.quiet) and dependencies between canaries.

- A flip whose time falls in a maintenance window covering its canary is held
  ("maintenance <window id>"). A deadline that falls in one is not judged there: the canary's
  period restarts at the window's end (`judge`), under an open-ended one it has no deadline.
- A canary depends on canaries (`depends_on`, ids) and tags (`depends_on_tags`: any canary
  carrying one). Its down flip while one of those is down (before, or in the same batch) is
  held ("depends on <name>"), and the parent's down flip lists the dependents down with it
  (`dependents`): the ones held with it and those that were down already.
- The recovery of a canary whose down flip was held is held for the same reason: no
  "recovered" for a "down" nobody was told of.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec

from domain.canary_state import CanaryState, deadline, evaluate, restart
from domain.quiet import FOREVER, covers, open_until, quiet_until
from schemas.canaries import CanaryDefined, Flip
from schemas.quiet import WindowDefined


def judged_deadline(state: CanaryState, windows: Iterable[WindowDefined]) -> float | None:
    """When the worker must look at the canary: its deadline, or the end of the maintenance
    it falls in (None: no deadline, or one under an open-ended window)."""
    due = deadline(state)
    if due is None or state.definition is None:
        return due
    until = quiet_until(windows, state.definition, due)
    return None if until == FOREVER else until


def judge(state: CanaryState, now: float, windows: Iterable[WindowDefined]) -> Flip | None:
    """domain.canary_state.evaluate, with a deadline that fell in maintenance restarted at
    its end (and judged again from there)."""
    due = deadline(state)
    if due is None or state.definition is None:
        return None
    until = quiet_until(windows, state.definition, due)
    if until == FOREVER:
        return None
    if until > due:
        restart(state, until)
    return evaluate(state, now)


def window_open(
    windows: Iterable[WindowDefined], canary: CanaryDefined, at: float
) -> WindowDefined | None:

    for window in sorted(windows, key=lambda w: w.id):
        if covers(window, canary) and open_until(window, at) is not None:
            return window
    return None


def depends(child: CanaryDefined, parent: CanaryDefined) -> bool:
    if child.id == parent.id:
        return False
    return parent.id in child.depends_on or any(t in child.depends_on_tags for t in parent.tags)


def settle(
    flips: list[Flip],
    states: Mapping[str, CanaryState],
    down_before: Mapping[str, CanaryDefined],
    windows: Iterable[WindowDefined],
) -> list[Flip]:
    """The flips of one batch, held or annotated (module docstring), in the same order.
    `states`: the flipping canaries' states (after the flips; `held` from before them);
    `down_before`: the canaries known down before the batch (the worker's view)."""
    windows = list(windows)
    down = dict(down_before)
    for flip in flips:
        state = states[flip.canary_id]
        if flip.status == "down" and state.definition is not None:
            down[flip.canary_id] = state.definition
        else:
            down.pop(flip.canary_id, None)
    settled = []
    # Why each canary's latest down was held, flip by flip: a down and its recovery may come
    # in one batch.
    last_held = {flip.canary_id: states[flip.canary_id].held for flip in flips}
    for flip in flips:
        state = states[flip.canary_id]
        d = state.definition
        held = ""
        dependents: list[str] = []
        if flip.status == "up":
            held = last_held[flip.canary_id]
        elif d is not None:
            window = window_open(windows, d, flip.at)
            parents = sorted(p.name for p in down.values() if depends(d, p))
            if window is not None:
                held = f"maintenance {window.id}"
            elif parents:
                held = f"depends on {parents[0]}"
            dependents = sorted(c.name for c in down.values() if depends(c, d))
        last_held[flip.canary_id] = held if flip.status == "down" else ""
        changes: dict[str, object] = {}
        if held:
            changes.update(held=held, channels=[])
        if dependents:
            changes["dependents"] = dependents
        settled.append(msgspec.structs.replace(flip, **changes) if changes else flip)
    return settled


def remember_holds(flips: Iterable[Flip], states: Mapping[str, CanaryState]) -> None:
    """Keep on each state why its down flip was held (its recovery is held alike)."""
    for flip in flips:
        states[flip.canary_id].held = flip.held if flip.status == "down" else ""


def dependency_cycle(canaries: Iterable[CanaryDefined]) -> list[str] | None:
    """The names along a cycle of dependencies, if any: canaries depending on each other
    (directly or through tags) would hold each other's alerts, and none would be sent."""
    every = list(canaries)
    parents = {c.id: [p for p in every if depends(c, p)] for c in every}
    names = {c.id: c.name for c in every}
    done: set[str] = set()
    for start in parents:
        path: list[str] = []
        on_path: set[str] = set()
        stack = [(start, iter(parents[start]))]
        path.append(start)
        on_path.add(start)
        while stack:
            node, children = stack[-1]
            step = next(children, None)
            if step is None:
                stack.pop()
                path.pop()
                on_path.discard(node)
                done.add(node)
                continue
            if step.id in on_path:
                cycle = path[path.index(step.id) :] + [step.id]
                return [names[i] for i in cycle]
            if step.id not in done:
                stack.append((step.id, iter(parents[step.id])))
                path.append(step.id)
                on_path.add(step.id)
    return None
