"""Cog assembly from the game resources: facts, real renders, and every bad input named clearly."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from toonvision_live.errors import ResourceError
from toonvision_live.taxonomy import COG_KEYS
from training.render.resources import load_resources

pytestmark = pytest.mark.train


def _writable_copy(source: Path, target: Path) -> Path:
    """A writable copy of the (read-only) resource folder, without the large preview image."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("preview.png"))
    for folder, _dirs, files in os.walk(target):
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(Path(folder) / name, 0o644)
    return target


def _edit_cog(root: Path, key: str, **changes: object) -> None:
    path = root / "cogs.json"
    raw = json.loads(path.read_text())
    for entry in raw["cogs"]:
        if entry["key"] == key:
            entry.update(changes)
    path.write_text(json.dumps(raw))


@pytest.fixture(scope="module")
def renderer(game_resources):
    from training.render.cogs import CogRenderer

    with CogRenderer(game_resources) as cog_renderer:
        yield cog_renderer


@pytest.fixture()
def resource_copy(game_resources, tmp_path) -> Path:
    return _writable_copy(game_resources, tmp_path / "res")


def test_resources_describe_all_32_cogs(game_resources):
    resources = load_resources(game_resources)
    assert [c.key for c in resources.cogs] == list(COG_KEYS)
    coldcaller = resources.spec("coldcaller")
    assert coldcaller.body == "C" and coldcaller.suit == "sb" and coldcaller.head_color is not None
    assert {c.body for c in resources.cogs} == {"A", "B", "C"}
    assert all(c.height > 3 for c in resources.cogs)


@pytest.mark.parametrize(
    ("remove", "named"),
    [
        ("phase_4/models/char/suitA-heads.bam", "suitA-heads.bam"),
        ("phase_3.5/maps/s_blazer.jpg", "s_blazer.jpg"),
        ("decoded/phase_4/models/char/suitB-walk.bam", "suitB-walk.bam"),
        ("cogs.json", "cogs.json"),
    ],
)
def test_missing_resource_files_are_named(resource_copy, remove, named):
    (resource_copy / remove).unlink()
    with pytest.raises(ResourceError, match=named.replace(".", r"\.")):
        load_resources(resource_copy)


def test_missing_root_and_unknown_cog_are_named(game_resources, tmp_path):
    with pytest.raises(ResourceError, match="does not exist"):
        load_resources(tmp_path / "nowhere")
    with pytest.raises(ResourceError, match="Unknown Cog 'notacog'"):
        load_resources(game_resources).spec("notacog")


def test_every_body_renders_posed_with_its_head(renderer):
    from training.render.cogs import View, alpha_box_xyxy

    for key in ("coldcaller", "telemarketer", "mrhollywood"):  # bodies C, B, A
        spec = renderer.resources.spec(key)
        assert renderer.num_frames(key, "walk") >= 24
        assert renderer.num_frames(key, "neutral") >= 48
        first = renderer.render(key, View(yaw_deg=0, anim="walk", frame=0))
        later = renderer.render(key, View(yaw_deg=0, anim="walk", frame=renderer.num_frames(key, "walk") // 2))
        assert first.shape == (560, 400, 4)
        mask0, mask1 = first[:, :, 3] > 32, later[:, :, 3] > 32
        assert mask0.mean() > 0.05  # a body, not an empty frame
        assert (mask0 != mask1).mean() > 0.005  # the walk animation moves the body
        # the silhouette spans the Cog's full height (head included): fill 0.78 of 560 px
        x0, y0, x1, y1 = alpha_box_xyxy(first[:, :, 3])
        assert (y1 - y0) == pytest.approx(0.78 * 560, rel=0.1)
        # textured: many distinct colours on the body, not a flat untextured shape
        assert len(np.unique(first[mask0][:, :3], axis=0)) > 200
        assert spec.height > 0


def test_bind_pose_is_never_shown(renderer):
    """The walk/neutral poses hold the arms down: the T-pose would be much wider than tall."""
    from training.render.cogs import View, alpha_box_xyxy

    for key in ("flunky", "pencilpusher", "yesman"):
        rgba = renderer.render(key, View(yaw_deg=0, anim="neutral", frame=0))
        x0, y0, x1, y1 = alpha_box_xyxy(rgba[:, :, 3])
        assert (x1 - x0) < 0.85 * (y1 - y0)


def test_sprite_is_tight_and_scaled(renderer):
    sprite, foot = renderer.render_sprite("bigwig", 45, "walk", 3, 200.0)
    assert sprite.shape[2] == 4
    assert sprite[0, :, 3].max() > 32 and sprite[-1, :, 3].max() > 32
    assert sprite[:, 0, 3].max() > 32 and sprite[:, -1, 3].max() > 32
    assert sprite.shape[0] == pytest.approx(200, rel=0.12)
    assert 0 < foot[0] < sprite.shape[1] and sprite.shape[0] * 0.8 < foot[1] < sprite.shape[0] * 1.05


def test_unknown_cog_and_animation(renderer):
    from training.render.cogs import View

    with pytest.raises(ResourceError, match="Unknown Cog 'nobody'"):
        renderer.render("nobody", View())
    with pytest.raises(ResourceError, match="Unknown animation 'dance'"):
        renderer.num_frames("coldcaller", "dance")


def _build(root: Path, key: str) -> None:
    from training.render.cogs import CogRenderer

    with CogRenderer(root) as cog_renderer:
        cog_renderer.cog(key)


def test_texture_missing_inside_a_model_is_named(resource_copy):
    # the head model loads its own palette texture: Panda3D only logs its absence
    (resource_copy / "phase_3.5/maps/flunky.jpg").unlink()
    with pytest.raises(ResourceError, match=r"flunky\.jpg"):
        _build(resource_copy, "flunky")


def test_missing_head_part_is_named(resource_copy):
    _edit_cog(resource_copy, "coldcaller", head_parts=["nosuchhead"])
    with pytest.raises(ResourceError, match="no head part 'nosuchhead'"):
        _build(resource_copy, "coldcaller")


def test_missing_joint_is_named(resource_copy):
    raw = json.loads((resource_copy / "cogs.json").read_text())
    raw["head_joint"] = "joint_neck"
    (resource_copy / "cogs.json").write_text(json.dumps(raw))
    with pytest.raises(ResourceError, match="joint 'joint_neck'"):
        _build(resource_copy, "coldcaller")


def test_headless_render_is_caught(resource_copy):
    # a Cog whose silhouette stops well below its head top is refused (as a missing head would be)
    _edit_cog(resource_copy, "coldcaller", height=6.5)
    with pytest.raises(ResourceError, match="renders .* tall instead of 6.50"):
        _build(resource_copy, "coldcaller")


def test_compressed_animation_is_refused(resource_copy):
    # the game's own FFT-compressed file loads with empty tables in PyPI panda3d: never a crumpled body
    _edit_cog(resource_copy, "coldcaller", neutral_anim_pypi="phase_3.5/models/char/suitC-neutral.bam")
    with pytest.raises(ResourceError, match=r"suitC-neutral\.bam"):
        _build(resource_copy, "coldcaller")


def test_positive_yaw_faces_the_image_right(renderer):
    """The documented convention (the atlas's walk_right uses +45): the shoes point the way the Cog faces."""
    for key in ("coldcaller", "pencilpusher"):
        for yaw in (45, 90):
            toes = []
            for sign in (1, -1):
                sprite, foot = renderer.render_sprite(key, sign * yaw, "neutral", 0, 200.0)
                shoes = sprite[int(0.93 * sprite.shape[0]) :, :, 3] > 32
                toes.append(np.nonzero(shoes)[1].mean() - foot[0])
            assert toes[0] > 1 and toes[1] < -1


def test_light_changes_the_cog_and_leaves_the_background(renderer):
    """The models have no normals, so light is applied to the pixels: dim light darkens, side light tilts."""
    from training.render.cogs import Light, View

    unlit = renderer.render("bigwig", View(yaw_deg=10))
    dim = renderer.render("bigwig", View(yaw_deg=10, light=Light((0.5, 0.5, 0.5), (0.0, 0.0, 0.0))))
    mask = unlit[:, :, 3] > 32
    assert np.array_equal(unlit[:, :, 3], dim[:, :, 3])
    assert dim[mask][:, :3].mean() == pytest.approx(0.5 * unlit[mask][:, :3].mean(), rel=0.05)
    assert not dim[~mask].any()
    from_left = renderer.render("bigwig", View(yaw_deg=10, light=Light((0.6,) * 3, (0.6,) * 3, (90.0, -30.0))))
    cols = np.nonzero(mask.any(axis=0))[0]
    mid = (cols[0] + cols[-1]) // 2
    ratio = from_left[:, :, :3].astype(float) / np.maximum(unlit[:, :, :3], 1)
    left = ratio[:, cols[0] : mid][mask[:, cols[0] : mid]].mean()
    right = ratio[:, mid : cols[-1] + 1][mask[:, mid : cols[-1] + 1]].mean()
    assert left > right + 0.1
