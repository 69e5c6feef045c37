"""The picture panel in a terminal: SVG snapshots of each model in a known state (hand-made
snapshots, so deterministic), and what stands out when something moves.

Update after a deliberate change with `pytest tests/test_picture_widget.py --snapshot-update`.
"""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult

from picture_scenes import ROOT, SCENES, accepted, client, conn_fd, proc, queued, snap
from svcviz.tui.widgets.picture import FRESH_SECONDS, PicturePanel

SIZE = (120, 36)


class PictureApp(App):
    """The panel alone, shown one scene."""

    CSS = "PicturePanel { height: 1fr; }"

    def __init__(self, scene=None) -> None:
        super().__init__()
        self.scene = scene

    def compose(self) -> ComposeResult:
        yield PicturePanel()

    def on_mount(self) -> None:
        if self.scene is not None:
            self.query_one(PicturePanel).show(*self.scene)


@pytest.mark.parametrize("name", list(SCENES))
def test_each_model_drawn(snap_compare, name):
    assert snap_compare(PictureApp(SCENES[name]()), terminal_size=SIZE)


def test_too_small_says_why(snap_compare):
    assert snap_compare(PictureApp(SCENES["serial"]()), terminal_size=(60, 10))


async def test_a_new_process_and_a_moved_connection_stand_out_then_fade():
    queued_state = snap([proc(ROOT, 1)], [queued(40000)])
    served_state = snap([proc(ROOT, 1), proc(4250, fds=(conn_fd(4, 40000),))], [accepted(40000, 4250, 4)])
    app = PictureApp()
    async with app.run_test(size=SIZE) as pilot:
        panel = app.query_one(PicturePanel)
        panel.show(queued_state, [client(1, "waiting", 40000)], "fork")
        await pilot.pause()
        assert panel.fresh == frozenset()
        builds = panel.builds
        panel.show(queued_state, [client(1, "waiting", 40000)], "fork")
        assert panel.builds == builds  # nothing changed: not laid out again
        panel.show(served_state, [client(1, "served", 40000)], "fork")
        await pilot.pause()
        assert panel.fresh == {"proc:4250", "client:1"}
        assert any("reverse" in st for st in panel.styles_shown())
        assert "4250 child" in panel.plain
        await pilot.pause(FRESH_SECONDS + 0.5)
        assert panel.fresh == frozenset()
        assert not any("reverse" in st for st in panel.styles_shown())
