"""The replay scored where the tag can be read: which tags count as covered (pure parts)."""

from __future__ import annotations

import numpy as np

from toonvision_live.demo.scene import SceneFrame
from toonvision_live.tools.replay import on_screen_cogs
from toonvision_live.track import TrackedCog
from toonvision_live.voc import VocObject
from training.reader.replay_visible import strict_frame, tag_cover, with_hidden_tags_dropped


def test_a_tag_is_covered_only_by_nearer_tags() -> None:
    # far to near: the first tag is half covered by the second, which the third does not touch
    tags = ((100, 100, 200, 140), (150, 100, 250, 140), (400, 100, 500, 140), None)
    cover = tag_cover(tags)
    assert cover[0] == 0.5 and cover[1] == 0.0 and cover[2] == 0.0 and cover[3] == 1.0


def test_cogs_with_covered_tags_are_not_counted() -> None:
    objects = (VocObject("cog_sb_coldcaller", (100, 150, 200, 400)),
               VocObject("cog_lb_bloodsucker", (150, 150, 250, 400)), VocObject("toon_dog", (300, 150, 380, 400)))
    tags = ((100, 100, 200, 140), (150, 100, 250, 140), (290, 100, 390, 140))
    shown = SceneFrame(np.zeros((720, 1280, 3), np.uint8), objects, tags)
    before = on_screen_cogs(with_hidden_tags_dropped(shown, 0.0, max_covered=1.0), (1280, 720))
    after = on_screen_cogs(with_hidden_tags_dropped(shown, 0.0), (1280, 720))
    assert [o.name for o in before] == ["cog_sb_coldcaller", "cog_lb_bloodsucker"]
    assert [o.name for o in after] == ["cog_lb_bloodsucker"]


def test_strict_matching_gives_a_hidden_cogs_track_to_that_cog() -> None:
    # a mostly hidden Mr. Hollywood (tag above) behind a Name Dropper whose own tag was not found: the
    # one track, on Mr. Hollywood's tag, names Mr. Hollywood and its body box covers the Name Dropper
    objects = (VocObject("cog_sb_mrhollywood", (382, 145, 564, 537), difficult=True),
               VocObject("cog_sb_namedropper", (392, 222, 616, 640)))
    tags = ((402, 89, 507, 134), (445, 145, 572, 203))
    shown = with_hidden_tags_dropped(SceneFrame(np.zeros((720, 1280, 3), np.uint8), objects, tags), 0.0)
    track = TrackedCog(4, (380, 180, 600, 620), "sb", "mrhollywood", 0.9, True, tag_xyxy=(398, 89, 511, 135))
    assert strict_frame([track], shown)[:3] == (1, 0, 0)  # counted 1, found 0: not a naming miss
    mine = TrackedCog(5, (390, 222, 615, 640), "sb", "mrhollywood", 0.9, True, tag_xyxy=(444, 145, 572, 204))
    n, found, right, misses = strict_frame([track, mine], shown)
    assert (n, found, right) == (1, 1, 0) and misses[0]["truth"] == "cog_sb_namedropper"
