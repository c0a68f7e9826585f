"""What the explorer page asks for, as one checked value: `parse_state(payload, model)`.

The page sends JSON such as {"seed": 7, "truncation_psi": 0.7, "truncation_cutoff": 8, "noise_mode":
"const", "class": "star", "mix_seed": 12, "mix_styles": "coarse", "directions": [0, 1.5, 0],
"translate": [0.1, 0], "rotate": 15}; every mistake is a UsageError whose sentence the page shows.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

from sgan.errors import UsageError
from sgan.latent import parse_styles
from sgan.nn.inputs import NOISE_MODES
from sgan.play.generate import SEED_NOISE_MODE

SEED_MAX = 2 ** 32 - 1
ALL_NOISE_MODES = NOISE_MODES + (SEED_NOISE_MODE,)
KNOWN_KEYS = {"seed", "truncation_psi", "truncation_cutoff", "noise_mode", "class", "mix_seed", "mix_styles",
              "directions", "translate", "rotate"}


@dataclass(frozen=True)
class ModelFacts:
    """What a state is checked against."""
    num_ws: int
    style_groups: Mapping[str, range] = field(default_factory=dict)   # the model's (sgan.play.mixing.model_style_groups)
    class_names: Sequence[str] = ()          # empty: unconditional
    num_directions: int = 0
    has_input_transform: bool = False        # StyleGAN3


@dataclass(frozen=True)
class ExploreState:
    seed: int
    truncation_psi: float
    truncation_cutoff: int | None            # None: every layer
    noise_mode: str
    class_index: int | None = None
    mix_seed: int | None = None
    mix_styles: tuple[int, ...] = ()         # ws indices taken from mix_seed
    directions: tuple[float, ...] = ()       # one strength per direction of the file
    translate: tuple[float, float] = (0.0, 0.0)
    rotate: float = 0.0
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def mixed(self) -> bool:
        return self.mix_seed is not None and bool(self.mix_styles)

    @property
    def steered(self) -> bool:
        return any(s != 0 for s in self.directions)

    @property
    def transformed(self) -> bool:
        return tuple(self.translate) != (0.0, 0.0) or self.rotate != 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("extra")
        d["mix_styles"], d["directions"], d["translate"] = list(self.mix_styles), list(self.directions), list(self.translate)
        return d


def _integer(value: Any, name: str, *, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise UsageError(f"{name} must be a whole number, got {value!r}.")
    try:
        number = int(value) if not isinstance(value, float) else value
    except ValueError:
        raise UsageError(f"{name} must be a whole number, got {value!r}.") from None
    if isinstance(number, float):
        if not number.is_integer():
            raise UsageError(f"{name} must be a whole number, got {value!r}.")
        number = int(number)
    if not lo <= number <= hi:
        raise UsageError(f"{name} {number} is out of range; it must lie within {lo} .. {hi}.")
    return number


def _number(value: Any, name: str, *, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise UsageError(f"{name} must be a number, got {value!r}.")
    try:
        number = float(value)
    except ValueError:
        raise UsageError(f"{name} must be a number, got {value!r}.") from None
    if not math.isfinite(number):
        raise UsageError(f"{name} must be a finite number, got {value!r}.")
    if (lo is not None and number < lo) or (hi is not None and number > hi):
        raise UsageError(f"{name} {number:g} is out of range; it must lie within {lo:g} .. {hi:g}.")
    return number


def parse_state(payload: Mapping[str, Any], model: ModelFacts, *, defaults: Mapping[str, Any]) -> ExploreState:
    """The page's JSON -> an ExploreState; missing keys take `defaults` (truncation_psi,
    truncation_cutoff, noise_mode: the model's sampling defaults)."""
    if not isinstance(payload, Mapping):
        raise UsageError("the request must be a JSON object of settings such as {\"seed\": 7}.")
    unknown = sorted(set(payload) - KNOWN_KEYS)
    if unknown:
        raise UsageError(f"unknown setting {unknown[0]!r}; known: {', '.join(sorted(KNOWN_KEYS))}.")
    seed = _integer(payload.get("seed", 0), "seed", lo=0, hi=SEED_MAX)
    psi = _number(payload.get("truncation_psi", defaults["truncation_psi"]), "truncation psi", lo=-10, hi=10)
    cutoff_raw = payload.get("truncation_cutoff", defaults["truncation_cutoff"])
    cutoff = None if cutoff_raw in (None, "all") else _integer(cutoff_raw, "truncation cutoff", lo=0, hi=10_000)
    noise_mode = payload.get("noise_mode", defaults["noise_mode"])
    if noise_mode not in ALL_NOISE_MODES:
        raise UsageError(f"noise mode {noise_mode!r}: choose one of {', '.join(ALL_NOISE_MODES)}.")
    class_index = _class_index(payload.get("class"), model.class_names)
    mix_seed_raw, mix_styles_raw = payload.get("mix_seed"), payload.get("mix_styles")
    mix_seed, mix_styles = None, ()
    if mix_seed_raw not in (None, ""):
        mix_seed = _integer(mix_seed_raw, "mixing seed", lo=0, hi=SEED_MAX)
        if mix_styles_raw in (None, "", []):
            raise UsageError("style mixing needs the layers to take from the second seed: coarse, middle, fine or A-B.")
        text = ",".join(str(i) for i in mix_styles_raw) if isinstance(mix_styles_raw, list) else str(mix_styles_raw)
        mix_styles = tuple(_parse_styles(text, model))
    directions = _directions(payload.get("directions"), model.num_directions)
    translate, rotate = _transform(payload.get("translate"), payload.get("rotate"), model.has_input_transform)
    return ExploreState(seed=seed, truncation_psi=psi, truncation_cutoff=cutoff, noise_mode=noise_mode,
                        class_index=class_index, mix_seed=mix_seed, mix_styles=mix_styles, directions=directions,
                        translate=translate, rotate=rotate)


def _parse_styles(text: str, model: ModelFacts) -> list[int]:
    """Group names as the model's groups (StyleGAN3's differ from the resolution bands), then
    sgan.latent.parse_styles: the rule of sgan.play.mixing.parse_model_styles, from the facts alone."""
    parts = []
    for part in text.split(","):
        key = part.strip().lower()
        if key in model.style_groups:
            r = model.style_groups[key]
            if not r:
                raise UsageError(f"this model has no {key} styles; choose another group or a ws range such as 0-3.")
            part = f"{r[0]}-{r[-1]}"
        parts.append(part)
    return parse_styles(",".join(parts), model.num_ws)


def _class_index(spec: Any, names: Sequence[str]) -> int | None:
    if not names:
        if spec not in (None, ""):
            raise UsageError(f"class {spec!r}: this model is unconditional; it has no classes.")
        return None
    if spec in (None, ""):
        raise UsageError(f"this model is class-conditional; choose a class ({', '.join(names)}).")
    text = str(spec).strip()
    if text in names:
        return list(names).index(text)
    if text.isdigit() and int(text) < len(names):
        return int(text)
    raise UsageError(f"class {spec!r} is not a class of this model; its classes are "
                     f"{', '.join(f'{i}={n}' for i, n in enumerate(names))}.")


def _directions(value: Any, count: int) -> tuple[float, ...]:
    if value in (None, []):
        return (0.0,) * count
    if count == 0:
        raise UsageError("no directions file was given to `sgan explore` (--directions dirs.npz), so there is nothing to steer.")
    if not isinstance(value, list) or len(value) != count:
        raise UsageError(f"directions must be a list of {count} strengths, one per direction of the file.")
    return tuple(_number(v, f"direction {i} strength", lo=-1000, hi=1000) for i, v in enumerate(value))


def _transform(translate: Any, rotate: Any, allowed: bool) -> tuple[tuple[float, float], float]:
    moved = translate not in (None, [0, 0], [0.0, 0.0]) or rotate not in (None, 0, 0.0)
    if moved and not allowed:
        raise UsageError("translate / rotate move the input of a StyleGAN3 model; this model has no input transform.")
    if translate in (None,):
        shift = (0.0, 0.0)
    elif isinstance(translate, list) and len(translate) == 2:
        shift = (_number(translate[0], "translate x", lo=-10, hi=10), _number(translate[1], "translate y", lo=-10, hi=10))
    else:
        raise UsageError("translate must be two numbers [x, y] (in image widths).")
    angle = 0.0 if rotate is None else _number(rotate, "rotate", lo=-3600, hi=3600)
    return shift, angle
