"""Build the 32 Cogs from the game's own models and render them offscreen (PyPI panda3d, p3tinydisplay).

API (panda3d is imported when the first renderer is created)::

    from training.render.cogs import CogRenderer, View
    renderer = CogRenderer("../shared/game-resources")        # or a GameResources, size_wh=(400, 560)
    renderer.num_frames("coldcaller", "walk")                 # -> 24 (walk: 36/24/24, neutral: 60/71/48 for A/B/C)
    rgba = renderer.render("coldcaller", View(yaw_deg=30, anim="walk", frame=5))
        # (H, W, 4) uint8 RGBA of the whole buffer, transparent background, perspective camera
    sprite, foot_xy = renderer.render_sprite("coldcaller", yaw_deg=45, anim="walk", frame=5, px_height=180)
        # RGBA cropped tight to the body (alpha > 32), orthographic, the Cog's ``height`` (head top) spans
        # ``px_height`` pixels: sprites rendered with px_height = px_per_unit * spec.height share one scale;
        # foot_xy = (x, y) float pixel of the ground point under the Cog, in sprite coordinates.
    renderer.close()

Yaw: 0 faces the camera; positive yaw turns the Cog to its left, so +45 walks towards the camera and
to the right of the image, -45 to the left, 90 walks right in profile, 180 shows its back.
Anim: "neutral" or "walk", every frame of the game's own animation (never the bind pose).

Building follows Suit.generateSuit (see ../shared/game-resources/README.md): department textures swapped on
torso/arms/legs, hand colour, head parts instanced to ``joint_head`` with their texture or tint, the badge on
``joint_attachMeter``, the geom node scaled.  Every problem the user can fix raises ResourceError naming the
file or Cog: a missing file, a texture a model cannot find (Panda3D only logs those, so its log is read),
a missing joint or head part, an animation with empty joint tables (an FFT-compressed file this panda3d
cannot decode), and a render with too few Cog pixels or no head (the silhouette must reach the Cog's height).
The model cache is off so a failed load is never cached.

Several renderers may live in one process (e.g. a crop maker and a sprite renderer): they share one
graphics state (GSG) and offscreen buffers are reused, never destroyed.  Renders are byte-identical across
fresh processes; inside one process a render can differ in a stray pixel depending on what was rendered
before (panda3d state), which is why crops.py renders in fresh worker processes.  Each Cog is built once
per renderer; rendering a frame costs about 1 ms.
Not thread-safe: use processes for parallel work (see crops.py).
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from toonvision_live.errors import ResourceError
from toonvision_live.geometry import XYXY
from training.render.resources import ANIMS, CogSpec, GameResources, load_resources

log = logging.getLogger(__name__)

_PRC_LINES = (
    "load-display p3tinydisplay",
    "window-type none",
    "audio-library-name null",
    "default-model-extension .bam",
    "model-cache-dir",
    "model-cache-models 0",
    "model-cache-textures 0",
    "framebuffer-alpha 1",
    "sync-video 0",
    "notify-level-display error",
    "notify-level-device fatal",
)
_panda_state: dict[str, object] = {}  # one engine, pipe and log stream per process
_TEXTURE_MISSING = re.compile(r'Unable to find texture "([^"]+)"')
_TEXTURE_UNREADABLE = re.compile(r"couldn't read: (\S+)")


@dataclass(frozen=True, slots=True)
class Light:
    """Mild lighting: ambient + one directional light (RGB 0..1 each); the textures carry the shading.

    The game's Cog models have no vertex normals (the game draws them unlit), so panda3d lights cannot
    touch them: :func:`shade_rgba` applies this light to the rendered pixels instead, as a colour
    factor ``ambient + directional * ramp``, the ramp brighter on the side the light comes from
    (heading 0: from the camera, +90: from the image's left, 180: from behind) and, the steeper the
    light (pitch), towards the top.
    """

    ambient_rgb: tuple[float, float, float] = (0.75, 0.75, 0.75)
    directional_rgb: tuple[float, float, float] = (0.35, 0.35, 0.35)
    direction_hp: tuple[float, float] = (30.0, -40.0)  # heading, pitch of the directional light (degrees)


@dataclass(frozen=True, slots=True)
class View:
    """One pose and camera.  fov_deg is the vertical field of view; fill is the share of the image height
    the Cog's nominal height spans; elevation_deg lifts the camera (positive looks down on the Cog)."""

    yaw_deg: float = 0.0
    anim: str = "neutral"
    frame: int = 0
    fov_deg: float = 30.0
    fill: float = 0.78
    elevation_deg: float = 8.0
    light: Light | None = None  # None: unlit, the texture colours as the game shows them


def _panda():
    """Configure panda3d once per process (offscreen tiny display, no model cache) and return its engine."""
    if _panda_state:
        return _panda_state
    from panda3d.core import (
        GraphicsEngine,
        GraphicsPipeSelection,
        LineStream,
        Notify,
        loadPrcFileData,
    )

    for line in _PRC_LINES:
        loadPrcFileData("toonvision-render", line)
    stream = LineStream()
    Notify.ptr().setOstreamPtr(stream, False)
    pipe = GraphicsPipeSelection.getGlobalPtr().makePipe("TinyOffscreenGraphicsPipe", "p3tinydisplay")
    if pipe is None:
        raise ResourceError("panda3d could not open its software renderer p3tinydisplay: reinstall panda3d.")
    _panda_state.update(engine=GraphicsEngine.getGlobalPtr(), pipe=pipe, log=stream)
    return _panda_state


def _drain_log() -> list[str]:
    stream = _panda_state["log"]
    lines = []
    while stream.isTextAvailable():
        lines.append(stream.getLine())
    return lines


@dataclass(slots=True)
class _BuiltCog:
    spec: CogSpec
    actor: object  # direct.actor.Actor.Actor
    num_frames: dict[str, int]


class CogRenderer:
    """Builds Cogs from a resource root (each once, cached) and renders posed frames offscreen."""

    def __init__(self, resources: GameResources | str | Path, size_wh: tuple[int, int] = (400, 560)) -> None:
        self.resources = resources if isinstance(resources, GameResources) else load_resources(resources)
        self.size_wh = (int(size_wh[0]), int(size_wh[1]))
        state = _panda()
        from panda3d.core import (
            Camera,
            FrameBufferProperties,
            GraphicsOutput,
            GraphicsPipe,
            NodePath,
            PerspectiveLens,
            Texture,
            WindowProperties,
        )

        self._use_root()

        width, height = self.size_wh
        self._engine = state["engine"]
        free = state.setdefault("free_buffers", {}).setdefault(self.size_wh, [])
        if free:  # buffers are reused, never removed: the process keeps one GSG for its whole life
            self._buffer, self._texture, self._region = free.pop()
        else:
            fb = FrameBufferProperties()
            fb.setRgbColor(True)
            fb.setRgbaBits(8, 8, 8, 8)
            fb.setDepthBits(16)
            self._buffer = self._engine.makeOutput(
                state["pipe"],
                f"cogs-{width}x{height}-{len(state)}",
                0,
                fb,
                WindowProperties.size(width, height),
                GraphicsPipe.BFRefuseWindow,
                state.get("gsg"),
            )
            if self._buffer is None:
                raise ResourceError("panda3d could not open an offscreen buffer: reinstall panda3d.")
            state.setdefault("gsg", self._buffer.getGsg())  # one GSG per process, shared by every buffer
            self._buffer.setClearColorActive(True)
            self._buffer.setClearColor((0, 0, 0, 0))
            self._texture = Texture("cog-frame")
            self._buffer.addRenderTexture(self._texture, GraphicsOutput.RTMCopyRam)
            self._region = self._buffer.makeDisplayRegion()
        self.scene = NodePath("scene")
        self._lens = PerspectiveLens()
        self._lens.setAspectRatio(width / height)
        self._lens.setNearFar(0.5, 500.0)
        self._camera = self.scene.attachNewNode(Camera("camera", self._lens))
        self._region.setCamera(self._camera)
        self._cogs: dict[str, _BuiltCog] = {}
        self._shown: str | None = None
        self._checked_anims: set[str] = set()
        self._textures: dict[str, object] = {}
        self._badges = None

    # -- building ---------------------------------------------------------------------------------------
    def _use_root(self) -> None:
        """Point panda3d's model path (where bams find their textures) at this root only.

        Switching roots empties the model and texture pools, so nothing loaded from another root is reused.
        """
        from panda3d.core import ModelPool, TexturePool, getModelPath

        if _panda_state.get("root") == self.resources.root:
            return
        getModelPath().clear()
        getModelPath().appendDirectory(str(self.resources.root))
        ModelPool.releaseAllModels()
        TexturePool.releaseAllTextures()
        _drain_log()
        _panda_state["root"] = self.resources.root

    def _filename(self, relative: str):
        from panda3d.core import Filename

        path = self.resources.path(relative)
        if not path.is_file():
            raise ResourceError(f"The resource file {path} is missing: restore it in the game resource folder.")
        return Filename.fromOsSpecific(str(path))

    def _check_log(self, what: str) -> None:
        lines = [line.strip() for line in _drain_log() if line.strip()]
        for line in lines:
            missing = _TEXTURE_MISSING.search(line) or _TEXTURE_UNREADABLE.search(line)
            if missing:
                raise ResourceError(
                    f"The texture {self.resources.root / missing.group(1)} used by {what} is missing or "
                    "unreadable: restore it in the game resource folder."
                )
        for line in lines:
            if "FFTW" in line or "compressed" in line:
                raise ResourceError(
                    f"{what} holds FFT-compressed animation data this panda3d cannot read: "
                    "use the decoded/ animations described in the resources README."
                )
            if "(error)" in line or "(fatal)" in line:
                raise ResourceError(f"panda3d could not load {what}: {line}.")
            log.debug("panda3d: %s", line)

    def _load_model(self, relative: str):
        from panda3d.core import Loader, NodePath

        node = Loader.getGlobalPtr().loadSync(self._filename(relative))
        self._check_log(str(self.resources.path(relative)))
        if node is None:
            raise ResourceError(f"The model {self.resources.path(relative)} could not be read: restore it.")
        return NodePath(node)

    def _load_texture(self, relative: str):
        """A texture of our own (not from panda3d's pool, which the body models also load the suit
        textures into with their own settings), so a Cog looks the same whatever was built before it."""
        from panda3d.core import SamplerState, Texture

        texture = self._textures.get(relative)
        if texture is None:
            texture = Texture(relative)
            ok = texture.read(self._filename(relative))
            self._check_log(str(self.resources.path(relative)))
            if not ok:
                raise ResourceError(f"The texture {self.resources.path(relative)} could not be read: restore it.")
            texture.setMinfilter(SamplerState.FT_linear_mipmap_linear)
            texture.setMagfilter(SamplerState.FT_linear)
            self._textures[relative] = texture
        return texture

    def _check_anim(self, spec: CogSpec, actor, anim: str) -> int:
        from panda3d.core import AnimChannelMatrixXfmTable

        control = actor.getAnimControl(anim)
        path = self.resources.path(spec.anim_file(anim))
        self._check_log(str(path))
        if control is None or control.getAnim() is None:
            raise ResourceError(f"The animation {path} could not be bound to {spec.name}'s body: restore it.")
        frames = control.getNumFrames()
        if str(path) not in self._checked_anims:
            animated = 0
            stack = [control.getAnim()]
            while stack:
                group = stack.pop()
                if isinstance(group, AnimChannelMatrixXfmTable):
                    animated += sum(len(group.getTable(c)) > 1 for c in "hprxyz")
                stack.extend(group.getChild(i) for i in range(group.getNumChildren()))
            if frames < 1 or animated == 0:
                raise ResourceError(
                    f"The animation {path} has empty joint tables (an FFT-compressed file this panda3d "
                    "cannot "
                    "decode): use the decoded/ animations described in the resources README."
                )
            self._checked_anims.add(str(path))
        return frames

    def cog(self, key: str) -> _BuiltCog:
        """The built Cog ``key`` (built on first use, then cached)."""
        built = self._cogs.get(key)
        if built is None:
            built = self._build(self.resources.spec(key))
            self._cogs[key] = built
            try:
                self._validate(built)
            except BaseException:
                self._forget(key)
                raise
        return built

    def _forget(self, key: str) -> None:
        built = self._cogs.pop(key)
        if self._shown == key:
            self._shown = None
        built.actor.cleanup()

    def _build(self, spec: CogSpec) -> _BuiltCog:
        from direct.actor.Actor import Actor

        self._use_root()
        anims = {name: self._filename(path) for name, path in spec.anims}
        actor = Actor(self._filename(spec.body_model), anims)
        self._check_log(f"{self.resources.path(spec.body_model)} ({spec.name})")
        for part, texture_file in spec.suit_textures:
            node = actor.find(f"**/{part}")
            if node.isEmpty():
                raise ResourceError(f"The body model {self.resources.path(spec.body_model)} has no '{part}' node.")
            node.setTexture(self._load_texture(texture_file), 1)
        hands = actor.find("**/hands")
        if hands.isEmpty():
            raise ResourceError(f"The body model {self.resources.path(spec.body_model)} has no 'hands' node.")
        hands.setColor(*spec.hand_color)
        for joint in (self.resources.head_joint, self.resources.badge.parent_joint):
            if actor.find(f"**/{joint}").isEmpty():
                raise ResourceError(
                    f"The body model {self.resources.path(spec.body_model)} lacks the joint '{joint}' "
                    f"({spec.name} needs it): restore the file."
                )
        heads = self._load_model(spec.head_model)
        head_texture = self._load_texture(spec.head_texture) if spec.head_texture else None
        for part in spec.head_parts:
            matches = heads.findAllMatches(f"**/{part}")
            if matches.getNumPaths() == 0:
                raise ResourceError(
                    f"The head model {self.resources.path(spec.head_model)} has no head part '{part}' "
                    f"for {spec.name}: restore the file."
                )
            for match in matches:
                instance = actor.instance(match, "modelRoot", self.resources.head_joint)
                if (
                    instance is None
                    or instance.isEmpty()
                    or (instance.findAllMatches("**/+GeomNode").getNumPaths() == 0 and not instance.node().isGeomNode())
                ):
                    raise ResourceError(f"{spec.name}'s head '{part}' has no geometry in {spec.head_model}.")
                if head_texture is not None:
                    instance.setTexture(head_texture, 1)
                if spec.head_color is not None:
                    instance.setColor(*spec.head_color)
        badges = self._load_model(self.resources.badge.model)
        badge = badges.find(f"**/{spec.badge_node}")
        if badge.isEmpty():
            raise ResourceError(
                f"The badge model {self.resources.path(self.resources.badge.model)} lacks "
                f"'{spec.badge_node}' ({spec.name})."
            )
        placed = badge.copyTo(actor.find(f"**/{self.resources.badge.parent_joint}"))
        b = self.resources.badge
        placed.setPosHprScale(*b.pos, *b.hpr, b.scale, b.scale, b.scale)
        placed.setColor(*spec.badge_color)
        actor.getGeomNode().setScale(spec.scale)
        num_frames = {anim: self._check_anim(spec, actor, anim) for anim in ANIMS}
        return _BuiltCog(spec=spec, actor=actor, num_frames=num_frames)

    def _validate(self, built: _BuiltCog) -> None:
        """One orthographic front render: enough Cog pixels, and the silhouette reaches the head top."""
        spec = built.spec
        height_px = 0.7 * self.size_wh[1]
        rgba, _ = self.render_sprite(spec.key, 0.0, "neutral", 0, height_px, elevation_deg=0.0)
        measured = rgba.shape[0] / height_px * spec.height
        if not 0.9 * spec.height <= measured <= 1.15 * spec.height:
            raise ResourceError(
                f"{spec.name} renders {measured:.2f} units tall instead of {spec.height:.2f}: its head "
                f"({self.resources.path(spec.head_model)}) or body did not build; check those files."
            )

    # -- rendering --------------------------------------------------------------------------------------
    def num_frames(self, key: str, anim: str) -> int:
        built = self.cog(key)
        if anim not in built.num_frames:
            raise ResourceError(f"Unknown animation '{anim}': use one of {', '.join(ANIMS)}.")
        return built.num_frames[anim]

    def _show(self, key: str, anim: str, frame: int, yaw_deg: float):
        built = self.cog(key)
        if self._shown != key:
            if self._shown is not None:
                self._cogs[self._shown].actor.detachNode()
            built.actor.reparentTo(self.scene)
            self._shown = key
        frames = self.num_frames(key, anim)
        built.actor.pose(anim, int(frame) % frames)
        built.actor.setH(yaw_deg)
        return built

    def _grab(self) -> np.ndarray:
        # renderFrame draws every active buffer: only this renderer's is active while it renders
        # (with one GSG per process shared by all buffers, a render never depends on other renderers)
        active = _panda_state.get("active")
        if active is not self._buffer:
            if active is not None:
                active.setActive(False)
            self._buffer.setActive(True)
            _panda_state["active"] = self._buffer
        self._engine.renderFrame()
        width, height = self.size_wh
        bgra = np.frombuffer(self._texture.getRamImage(), np.uint8).reshape(height, width, 4)
        return cv2.cvtColor(cv2.flip(bgra, 0), cv2.COLOR_BGRA2RGBA)

    def render(self, key: str, view: View) -> np.ndarray:
        """The whole buffer (H, W, 4) RGBA uint8 with Cog ``key`` posed and framed per ``view``."""
        from panda3d.core import PerspectiveLens

        built = self._show(key, view.anim, view.frame, view.yaw_deg)
        if not isinstance(self._lens, PerspectiveLens):
            self._lens = PerspectiveLens()
            self._camera.node().setLens(self._lens)
            self._lens.setNearFar(0.5, 500.0)
        self._lens.setFov(view.fov_deg * self.size_wh[0] / self.size_wh[1], view.fov_deg)
        height = built.spec.height
        distance = (0.5 * height) / (view.fill * math.tan(math.radians(view.fov_deg) / 2))
        self._place_camera(height * 0.5, distance, view.elevation_deg)
        rgba = self._grab()
        if view.light is not None:
            box = alpha_box_xyxy(rgba[:, :, 3])
            if box is not None:
                x0, y0, x1, y1 = box
                rgba[y0:y1, x0:x1] = shade_rgba(rgba[y0:y1, x0:x1], view.light)
        return rgba

    def _place_camera(self, target_z: float, distance: float, elevation_deg: float) -> None:
        e = math.radians(elevation_deg)
        self._camera.setPos(0.0, distance * math.cos(e), target_z + distance * math.sin(e))
        self._camera.lookAt(0.0, 0.0, target_z)

    def render_sprite(
        self,
        key: str,
        yaw_deg: float,
        anim: str,
        frame: int,
        px_height: float,
        *,
        elevation_deg: float = 8.0,
        light: Light | None = None,
    ) -> tuple[np.ndarray, tuple[float, float]]:
        """RGBA cropped tight to the body; orthographic, ``spec.height`` units = ``px_height`` pixels.

        Returns (rgba, foot_xy) with foot_xy the ground point under the Cog in sprite pixels.
        """
        from panda3d.core import OrthographicLens, Point2, Point3

        width, height = self.size_wh
        if px_height > 0.8 * height:
            raise ValueError(f"px_height {px_height} too large for a {width}x{height} renderer")
        built = self._show(key, anim, frame, yaw_deg)
        px_per_unit = px_height / built.spec.height
        if not isinstance(self._lens, OrthographicLens):
            self._lens = OrthographicLens()
            self._camera.node().setLens(self._lens)
            self._lens.setNearFar(0.5, 500.0)
        self._lens.setFilmSize(width / px_per_unit, height / px_per_unit)
        self._place_camera(built.spec.height * 0.5, 50.0, elevation_deg)
        rgba = self._grab()
        box = alpha_box_xyxy(rgba[:, :, 3])
        if box is None:
            raise ResourceError(f"{built.spec.name} rendered empty: check its model files in {self.resources.root}.")
        x0, y0, x1, y1 = box
        if x0 == 0 or y0 == 0 or x1 == width or y1 == height:
            raise ValueError(f"{built.spec.name} does not fit the {width}x{height} buffer at px_height {px_height}")
        ground = self.scene.getRelativePoint(built.actor, Point3(0, 0, 0))
        film = Point2()
        self._lens.project(self._camera.getRelativePoint(self.scene, ground), film)
        foot_x = (film.x + 1) / 2 * width - x0
        foot_y = (1 - film.y) / 2 * height - y0
        sprite = rgba[y0:y1, x0:x1].copy()
        if light is not None:
            sprite = shade_rgba(sprite, light)
        return sprite, (float(foot_x), float(foot_y))

    def close(self) -> None:
        """Release the Cogs and hand the offscreen buffer back to this process's pool."""
        from panda3d.core import NodePath

        for built in self._cogs.values():
            built.actor.cleanup()
        self._cogs.clear()
        self._shown = None
        if self._buffer is not None:
            self._buffer.setActive(False)
            if _panda_state.get("active") is self._buffer:
                _panda_state["active"] = None
            self._region.setCamera(NodePath())
            _panda_state["free_buffers"][self.size_wh].append((self._buffer, self._texture, self._region))
            self._buffer = None

    def __enter__(self) -> CogRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def alpha_box_xyxy(alpha: np.ndarray, threshold: int = 32) -> XYXY | None:
    """Tight box (x0, y0, x1, y1), exclusive ends, of the pixels with alpha above ``threshold``, or None."""
    mask = alpha > threshold
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def shade_rgba(rgba: np.ndarray, light: Light) -> np.ndarray:
    """``rgba`` (a Cog tight in its box) lit by ``light`` as described on :class:`Light`; alpha unchanged."""
    h, w = rgba.shape[:2]
    heading, pitch = (math.radians(a) for a in light.direction_hp)
    front = 0.5 * (1 + math.cos(heading))  # 1: light from the camera side, 0: from behind
    side = math.sin(heading)  # +1: from the image's left
    top = min(1.0, abs(math.sin(pitch)))
    cols = 0.25 + 0.5 * front - 0.3 * side * np.linspace(-1, 1, w, dtype=np.float32)
    rows = 0.25 * top * np.linspace(1, -1, h, dtype=np.float32)
    ramp = np.clip(rows[:, None] + cols[None, :], 0.0, 1.2)
    factor = np.empty((h, w, 4), np.float32)
    for c in range(3):
        factor[:, :, c] = light.ambient_rgb[c] + light.directional_rgb[c] * ramp
    factor[:, :, 3] = 1.0
    return cv2.multiply(rgba, factor, dtype=cv2.CV_8U)
