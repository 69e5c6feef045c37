"""`svcviz replay`'s dashboard driven by keys (Pilot), on a real fork session's recording;
the live dashboard's freeze and history; S's SVG of the screen."""

from __future__ import annotations

import html
import subprocess
import sys

import pytest

from fork_session import record_fork_session
from replay_lab import ReplayLab as FakeLab
from replay_lab import drawn_after
from svcviz.record.player import NOTHING_TO_STEER, ReplayLab
from svcviz.record.reader import Recording
from svcviz.tui.app import SvcvizApp
from svcviz.tui.replay import ReplayApp
from svcviz.tui.widgets import LabHeader
from svcviz.tui.widgets.timeline import Timeline

SIZE = (120, 36)


@pytest.fixture
async def fork_recording(tmp_path):
    path = tmp_path / "fork.jsonl.gz"
    seen, zombie_at = await record_fork_session(path)
    return path, seen, zombie_at


async def settled(pilot, app, index: int) -> None:
    for _ in range(200):
        if app.index == index:
            break
        await pilot.pause(0.01)
    assert app.index == index
    await pilot.pause()


def header_text(app) -> str:
    return app.query_one(LabHeader).render().plain


async def test_stepping_reaches_the_zombie_where_it_appeared_live(fork_recording):
    path, seen, zombie_at = fork_recording
    live_index = next(i for i, u in enumerate(seen) if u is zombie_at)  # the sample it appeared in, live
    app = ReplayApp(ReplayLab(Recording(str(path)), playing=False))
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot, app, 0)
        assert "replay 0.0 /" in header_text(app) and "watch mode" not in header_text(app)
        while not app.latest.snapshot.zombies:
            before = app.index
            await pilot.press("right")
            await settled(pilot, app, before + 1)
        assert app.index == live_index
        assert app.latest.snapshot.time == zombie_at.snapshot.time
        zombie = app.latest.snapshot.zombies[0].pid
        assert any(e.kind == "exit" and e.pid == zombie for e in app.event_log)
        assert f"replay {zombie_at.snapshot.time - seen[0].snapshot.time:.1f} /" in header_text(app)

        await pilot.press("left")  # one back: before the child exited, no zombie, no exit in the log
        await settled(pilot, app, live_index - 1)
        assert not app.latest.snapshot.zombies
        assert not any(e.kind == "exit" and e.pid == zombie for e in app.event_log)

        await pilot.press("end")
        await settled(pilot, app, len(app.lab.samples) - 1)
        assert not app.latest.snapshot.zombies  # reaped by w
        await pilot.press("home")
        await settled(pilot, app, 0)
        await pilot.press("right_square_bracket")  # the next sample that brought events
        first_event = next(i for i, u in enumerate(app.lab.samples) if u.events and i > 0)
        await settled(pilot, app, first_event)
        await pilot.press("left_square_bracket")
        await settled(pilot, app, 0)

        timeline = app.query_one(Timeline)
        await pilot.press("greater_than_sign", "space")
        assert app.lab.speed == 2.0  # (a short recording: it may be played out already)
        await settled(pilot, app, len(app.lab.samples) - 1)  # played on to the end, where it stops
        assert not app.lab.playing and not timeline.playing

        for key in ("c", "w"):  # a client's key and the server's own: each says why it does nothing
            app.clear_notifications()
            await pilot.press(key)
            for _ in range(100):
                if any(NOTHING_TO_STEER in n.message for n in app._notifications):
                    break
                await pilot.pause(0.01)
            assert any(NOTHING_TO_STEER in n.message for n in app._notifications), key


async def test_the_live_dashboard_steps_back_through_the_last_minute_while_paused(fork_recording):
    _, seen, zombie_at = fork_recording
    lab = FakeLab(seen[0].config)
    app = SvcvizApp(lab)
    async with app.run_test(size=SIZE) as pilot:
        await drawn_after(pilot, lab, *seen)
        newest = seen[-1]
        await pilot.press("left")  # not paused: the arrows are not history's
        assert app.latest is newest and app.moment == ""
        await pilot.press("p")
        back = len(seen) - 1 - seen.index(zombie_at)
        for _ in range(back):
            await pilot.press("left")
        await pilot.pause()
        assert app.latest is zombie_at  # the snapshot the zombie appeared in, shown again
        ago = newest.snapshot.time - zombie_at.snapshot.time
        assert f"paused: showing {ago:.1f} s ago" in header_text(app)
        assert all(e.time <= zombie_at.snapshot.time for e in app.event_log)
        await pilot.press("right")
        assert app.latest is seen[-back]
        await pilot.press("p")  # on again: the newest sample, live
        await pilot.pause()
        assert app.latest is newest and "showing" not in header_text(app) and " live " in header_text(app)


async def test_s_saves_the_screen_as_svg_and_logs_it(tmp_path, fork_recording):
    _, seen, _ = fork_recording
    lab = FakeLab(seen[0].config)
    app = SvcvizApp(lab)
    app.svg_dir = str(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await drawn_after(pilot, lab, *seen[:5])
        await pilot.press("S")
        await pilot.pause()
        saved = sorted(tmp_path.glob("svcviz-*.svg"))
        assert len(saved) == 1
        text = saved[0].read_text()
        assert text.startswith("<svg") and "fork" in text  # the screen: the model's name among its text
        assert any(str(saved[0]) in e.text for e in app.event_log)


def handout(path, directory, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "svcviz", "replay", str(path), "--svg", str(directory), *options],
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_a_handout_has_one_svg_per_step_and_an_index_naming_the_events(tmp_path, fork_recording):
    path, _, zombie_at = fork_recording
    recorded = list(Recording(str(path)))
    steps = [i for i, u in enumerate(recorded) if i == 0 or u.events]  # --at-events: the start, each event
    done = handout(path, tmp_path / "out")
    assert done.returncode == 0, done.stderr
    svgs = sorted((tmp_path / "out").glob("step-*.svg"))
    assert len(svgs) == len(steps) and all(f.read_text().startswith("<svg") for f in svgs)
    page = (tmp_path / "out" / "index.html").read_text()
    assert [f"src='{f.name}'" in page for f in svgs] == [True] * len(svgs)
    assert page.index(svgs[0].name) < page.index(svgs[-1].name)  # in order
    zombie = zombie_at.snapshot.zombies[0].pid
    exit_event = next(e for e in zombie_at.events if e.kind == "exit" and e.pid == zombie)
    assert html.escape(exit_event.text) in page  # the event that led to the zombie's page

    every = handout(path, tmp_path / "every", "--every", "0.05")
    assert every.returncode == 0, every.stderr
    times = [u.snapshot.time - recorded[0].snapshot.time for u in recorded]
    expected = {
        max(i for i, t in enumerate(times) if t <= tick * 0.05 + 1e-6) for tick in range(int(times[-1] / 0.05) + 1)
    }
    assert len(list((tmp_path / "every").glob("step-*.svg"))) == len(expected)

    bad = subprocess.run(
        [sys.executable, "-m", "svcviz", "replay", str(path), "--every", "1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2 and "need --svg" in bad.stderr and "Traceback" not in bad.stderr


def test_a_recording_with_no_sample_says_so(tmp_path):
    """svcviz stopped before its first sample: a header alone, nothing to draw."""
    path = tmp_path / "empty.jsonl"
    path.write_text('{"format":"svcviz-recording","version":1,"started":1796163820.4}\n')
    done = handout(path, tmp_path / "out")
    assert done.returncode == 2 and "no samples to replay" in done.stderr and "Traceback" not in done.stderr
