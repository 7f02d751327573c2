"""``toonvision render scenes``: labelled frames written in the dataset layout, read back through read_voc."""

from __future__ import annotations

import numpy as np
import pytest
from test_scene_street import write_synthetic_atlas

from toonvision_live.cli import main
from toonvision_live.demo.scene import StreetScene
from toonvision_live.fileio import read_image_rgb
from toonvision_live.taxonomy import parse_label
from toonvision_live.voc import read_voc
from training.render.scenes import FRAME_STEP_S, SceneOptions, render_scenes


@pytest.fixture(scope="module")
def atlas_dir(tmp_path_factory):
    return write_synthetic_atlas(tmp_path_factory.mktemp("atlas"))


def test_written_scenes_round_trip_through_read_voc(tmp_path, atlas_dir):
    options = SceneOptions(size_wh=(640, 360), n_cogs=4, n_toons=1, seed=3)
    paths = render_scenes(tmp_path, 3, options, atlas_folder=atlas_dir)
    assert [p.name for p in paths] == ["scene_0.png", "scene_1.png", "scene_2.png"]
    for png in paths:
        assert png.parent == tmp_path / "raw" / "screenshots"
        rgb = read_image_rgb(png)
        ann = read_voc(png.with_suffix(".xml"))
        assert ann.filename == png.name and (ann.width, ann.height) == (640, 360) == rgb.shape[1::-1]
        assert not ann.outside_boxes()
        assert ann.objects, png
        for obj in ann.objects:
            parse_label(obj.name)  # a valid cog_<suit>_<key> or toon_<animal>
    # the same seed gives the same frames; a second run never overwrites, it takes the next numbers
    again = render_scenes(tmp_path, 2, options, atlas_folder=atlas_dir)
    assert [p.name for p in again] == ["scene_3.png", "scene_4.png"]
    assert np.array_equal(read_image_rgb(again[0]), read_image_rgb(paths[0]))
    assert read_voc(again[1].with_suffix(".xml")).objects == read_voc(paths[1].with_suffix(".xml")).objects


def test_frames_of_one_scene_show_the_cogs_walking(tmp_path, atlas_dir):
    options = SceneOptions(size_wh=(640, 360), n_cogs=3, n_toons=0, seed=5)
    a, b = render_scenes(tmp_path, 2, options, atlas_folder=atlas_dir)
    boxes_a = {o.name: o.xyxy for o in read_voc(a.with_suffix(".xml")).objects}
    boxes_b = {o.name: o.xyxy for o in read_voc(b.with_suffix(".xml")).objects}
    assert boxes_a != boxes_b and FRAME_STEP_S > 1


def test_cli_writes_scenes(tmp_path, atlas_dir, capsys):
    rc = main(
        [
            "render",
            "scenes",
            "--count",
            "2",
            "--out",
            str(tmp_path / "ds"),
            "--size",
            "480x270",
            "--cogs",
            "2",
            "--toons",
            "1",
            "--atlas",
            str(atlas_dir),
            "--jpeg",
            "90",
        ]
    )
    assert rc == 0
    shots = tmp_path / "ds" / "raw" / "screenshots"
    assert sorted(p.name for p in shots.iterdir()) == [
        "scene_0.png",
        "scene_0.xml",
        "scene_1.png",
        "scene_1.xml",
    ]
    assert "Wrote 2 labelled street frames" in capsys.readouterr().out


def test_cli_names_a_missing_atlas(tmp_path, capsys):
    rc = main(["render", "scenes", "--count", "1", "--out", str(tmp_path / "ds"), "--atlas", str(tmp_path)])
    assert rc != 0
    assert "demo_atlas" in capsys.readouterr().err


def test_fresh_scenes_render_cogs_from_the_game_models(tmp_path, game_resources):
    options = SceneOptions(size_wh=(640, 360), n_cogs=2, n_toons=0, seed=1)
    (png,) = render_scenes(tmp_path, 1, options, fresh=True, resources=game_resources)
    ann = read_voc(png.with_suffix(".xml"))
    assert all(parse_label(o.name).kind == "cog" for o in ann.objects)
    assert read_image_rgb(png).std() > 10


def test_default_atlas_scene_is_the_demo_scene():
    """The demo uses the shipped atlas: a default StreetScene builds from it and draws Cogs."""
    from toonvision_live.demo.sprites import SpriteAtlas

    frame = StreetScene(SpriteAtlas.load(), n_cogs=8, n_toons=2, seed=0).frame(1.0)
    assert sum(o.name.startswith("cog_") for o in frame.objects) >= 4
