"""The picture in the dashboard: g swaps it with the server and clients panels; on from the
start for the lecture's models at 120x36 and larger, off (saying why) in a small terminal."""

from __future__ import annotations

from picture_scenes import SCENES
from replay_lab import ReplayLab, drawn_after
from svcviz.lab import LabUpdate
from svcviz.servers.config import ServerConfig
from svcviz.tui.app import SvcvizApp
from svcviz.tui.widgets import ClientsPanel, PicturePanel, ServerPanel


def shown(widget) -> bool:
    """On screen: laid out with some room (a panel in a hidden container has none)."""
    return widget.region.area > 0


def leak_update() -> LabUpdate:
    snapshot, clients, model = SCENES["fork-leak-fd"]()
    return LabUpdate(snapshot, (), tuple(clients), ServerConfig(model, close_fd=False), 4242, "running", None)


async def test_on_at_120x36_and_g_swaps_it_with_the_panels():
    app = SvcvizApp(ReplayLab(ServerConfig("fork", close_fd=False)))
    async with app.run_test(size=(120, 36)) as pilot:
        await drawn_after(pilot, app.lab, leak_update())
        panel = app.query_one(PicturePanel)
        assert app.picture and shown(panel) and not shown(app.query_one(ServerPanel))
        assert not shown(app.query_one(ClientsPanel))
        assert "4242 parent" in panel.plain and "6 ← #3" in panel.plain
        await pilot.press("g")
        await pilot.pause()
        assert not app.picture and not shown(panel) and shown(app.query_one(ServerPanel))
        await pilot.press("g")
        await pilot.pause()
        assert app.picture and shown(panel)


async def test_a_hidden_picture_is_not_laid_out():
    app = SvcvizApp(ReplayLab(ServerConfig("fork")), picture=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await drawn_after(pilot, app.lab, leak_update())
        panel = app.query_one(PicturePanel)
        assert panel.builds == 0
        await pilot.press("g")
        await pilot.pause()
        assert panel.builds >= 1 and "4242 parent" in panel.plain


async def test_off_at_80x24_and_g_says_why():
    app = SvcvizApp(ReplayLab(ServerConfig("fork")))
    async with app.run_test(size=(80, 24)) as pilot:
        await drawn_after(pilot, app.lab, leak_update())
        assert not app.picture
        await pilot.press("g")
        assert not app.picture
        (notice,) = list(app._notifications)
        assert "80x24" in notice.message and "needs a terminal of 100x30" in notice.message


async def test_off_from_the_start_when_watching():
    app = SvcvizApp(ReplayLab(ServerConfig("fork"), controls_server=False))
    async with app.run_test(size=(160, 45)) as pilot:
        await drawn_after(pilot, app.lab, leak_update())
        assert not app.picture
        await pilot.press("g")
        assert app.picture


def test_the_dashboard_with_the_picture(snap_compare):
    async def run(pilot) -> None:
        await drawn_after(pilot, pilot.app.lab, leak_update())

    assert snap_compare(
        SvcvizApp(ReplayLab(ServerConfig("fork", close_fd=False))), terminal_size=(120, 36), run_before=run
    )
