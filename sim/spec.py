"""Sampler specs: how ``ditto trace`` drives one ONNX diffusion model (docs/traces.md).

A spec is a small TOML file. It names the model (a file, or a resource inside an installed
package), its input and output names, the parameterisation of its output, the noise
schedule and the sampler. Built-in specs live beside this module in ``models/``
(``terrain``, ``dit-digits``); any other is given by its path.

Every sampler runs in the variance-exploding form of Karras et al. (2022): the state is
``x = x0 + sigma * noise`` and the model is seen as a denoiser ``D(x, sigma) ~ x0``.
:meth:`SamplerSpec.feeds` and :meth:`SamplerSpec.denoised` convert to and from the model's
own form:

- ``edm``: the model takes ``x`` and ``sigma`` and returns ``D`` itself.
- ``eps`` (DDPM): it takes ``x / sqrt(1 + sigma^2)`` (the variance-preserving sample) and its
  timestep ``t``, and returns the noise; ``D = x - sigma * eps``.
- ``v``: the same inputs; it returns ``v = alpha * eps - s * x0`` with
  ``alpha = 1 / sqrt(1 + sigma^2)`` and ``s = sigma * alpha``; ``D = alpha * x_vp - s * v``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.metadata
import importlib.resources
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["BUILTIN_SPECS", "PREDICTIONS", "SAMPLERS", "SCHEDULES", "Condition",
           "SamplerSpec", "Schedule", "SpecError", "karras_sigmas", "load_spec"]

PREDICTIONS = ("edm", "eps", "v")
SCHEDULES = ("karras", "ddpm")
SAMPLERS = ("euler", "ddim", "consistency")
BETA_SCHEDULES = ("linear", "scaled_linear")
DTYPES = {"float32": np.float32, "float64": np.float64, "int64": np.int64,
          "int32": np.int32}

_MODELS_DIR = Path(str(importlib.resources.files("ditto.sim") / "models"))
#: Built-in spec names and their files (package data, so they are in the wheel too).
BUILTIN_SPECS = {path.stem: path for path in sorted(_MODELS_DIR.glob("*.toml"))}

#: Index keys a condition may not take (they describe the trajectory itself).
_RESERVED_KEYS = {"schema", "version", "model", "sampler", "steps", "batch", "seed", "sigmas",
                  "timesteps", "act_bits", "layer_filter", "tensors", "layers"}


class SpecError(ValueError):
    """A sampler spec is missing, malformed, or does not fit its model."""


def karras_sigmas(steps: int, sigma_min: float, sigma_max: float, rho: float) -> np.ndarray:
    """Karras et al. (2022) noise levels, ``steps`` of them from ``sigma_max`` down."""
    if steps < 1:
        raise SpecError(f"--steps {steps}: need at least 1")
    if steps == 1:
        return np.array([sigma_max])
    ramp = np.linspace(0.0, 1.0, steps)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return (hi + ramp * (lo - hi)) ** rho


@dataclass(frozen=True)
class Schedule:
    """Noise levels of a trajectory.

    ``karras``: ``sigma_min``, ``sigma_max``, ``rho``; the model's noise input is sigma.
    ``ddpm``: a discrete training schedule of ``train_steps`` betas (``linear`` from
    ``beta_start`` to ``beta_end``, or ``scaled_linear`` as in Stable Diffusion); a
    trajectory of n steps visits the timesteps ``linspace(train_steps - 1, 0, n)`` rounded,
    the model's noise input is the timestep, and ``sigma_t = sqrt((1 - abar_t) / abar_t)``.
    """

    kind: str
    sigma_min: float = 0.0
    sigma_max: float = 0.0
    rho: float = 7.0
    train_steps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    beta_schedule: str = "linear"

    def ddpm_sigmas(self) -> np.ndarray:
        """sigma of every training timestep (ddpm only), float64."""
        if self.beta_schedule == "linear":
            betas = np.linspace(self.beta_start, self.beta_end, self.train_steps)
        else:
            betas = np.linspace(self.beta_start ** 0.5, self.beta_end ** 0.5,
                                self.train_steps) ** 2
        alphas_cumprod = np.cumprod(1.0 - betas)
        return np.sqrt((1.0 - alphas_cumprod) / alphas_cumprod)

    def levels(self, steps: int) -> tuple[np.ndarray, np.ndarray | None]:
        """``(sigmas, timesteps)`` of an ``steps``-step trajectory; timesteps is None for
        ``karras`` (the model takes sigma)."""
        if self.kind == "karras":
            return karras_sigmas(steps, self.sigma_min, self.sigma_max, self.rho), None
        if steps < 1:
            raise SpecError(f"--steps {steps}: need at least 1")
        timesteps = np.linspace(self.train_steps - 1, 0, steps).round().astype(np.int64)
        return self.ddpm_sigmas()[timesteps], timesteps

    @property
    def lowest_sigma(self) -> float:
        """The smallest noise level of the schedule (the consistency sampler's floor)."""
        return self.sigma_min if self.kind == "karras" else float(self.ddpm_sigmas()[0])


@dataclass(frozen=True)
class Condition:
    """A conditioning input, recorded in the trace index under ``key``.

    ``default`` is one value or a list cycled over the batch. With ``normalise`` the model
    is fed ``(value - lo) / (hi - lo)`` for ``range = [lo, hi]``; values outside the range
    are refused.
    """

    key: str
    input: str
    dtype: str
    default: tuple
    range: tuple[float, float] | None = None
    normalise: bool = False

    def check(self, values: Sequence) -> tuple:
        """The values as a tuple, checked against ``range``."""
        values = tuple(values)
        if not values:
            raise SpecError(f"--condition {self.key}: give at least one value")
        if self.dtype.startswith("int") and any(not float(v).is_integer() for v in values):
            raise SpecError(f"--condition {self.key}: {self.dtype} input {self.input!r} takes "
                            "whole numbers")
        if self.range is not None:
            lo, hi = self.range
            for value in values:
                if not lo <= value <= hi:
                    raise SpecError(f"--condition {self.key}={value}: must be "
                                    f"{lo:g}..{hi:g}")
        return values

    def feed(self, values: tuple, batch: int) -> np.ndarray:
        """The model input for ``batch`` samples: the values cycled over the batch."""
        if self.normalise:
            lo, hi = self.range
            values = tuple((value - lo) / (hi - lo) for value in values)
        if len(values) == 1:
            return np.full(batch, values[0], dtype=DTYPES[self.dtype])
        return np.resize(np.asarray(values, dtype=DTYPES[self.dtype]), batch)


@dataclass(frozen=True)
class SamplerSpec:
    """One model and how to sample it; see the module docstring and ``load_spec``."""

    name: str
    path: Path
    output: str
    sample_input: str
    sample_shape: tuple[int, ...]
    noise_input: str
    noise_dtype: str
    prediction: str
    schedule: Schedule
    sampler: str
    eta: float = 0.0
    conditions: tuple[Condition, ...] = ()
    model_file: Path | None = None
    package: str | None = None
    module: str | None = None
    resource: str | None = None
    caveat: str | None = None

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.sample_input, self.noise_input, *(c.input for c in self.conditions))

    def with_model(self, path: str | Path) -> SamplerSpec:
        """The same spec on another model file (``ditto trace --onnx``)."""
        return dataclasses.replace(self, model_file=Path(path), package=None, module=None,
                                   resource=None)

    def model_path(self, install_hint: str = "") -> Path:
        """The model file; a missing package or file is a ``SpecError``."""
        if self.model_file is not None:
            if not self.model_file.is_file():
                raise SpecError(f"{self.model_file}: no such model file")
            return self.model_file
        try:
            resource = importlib.resources.files(self.module).joinpath(self.resource)
        except ModuleNotFoundError:
            raise SpecError(f"package {self.package} (spec {self.name}) is missing: "
                            f"{install_hint}") from None
        if not resource.is_file():
            raise SpecError(f"{self.package} has no {self.resource}; reinstall it")
        return Path(str(resource))

    def model_record(self, model_path: Path) -> dict:
        """How the trace index names the model: a package by its version, a file by its
        SHA-256."""
        if self.model_file is None:
            try:
                version = importlib.metadata.version(self.package)
            except importlib.metadata.PackageNotFoundError:
                version = "unknown"
            record = {"package": self.package, "version": version, "file": self.resource}
        else:
            digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
            record = {"file": model_path.name, "sha256": digest, "spec": self.name,
                      "prediction": self.prediction}
        if self.caveat:
            record["caveat"] = self.caveat
        return record

    def condition_values(self, given: Mapping[str, Sequence] | None) -> dict[str, tuple]:
        """Every condition's values: ``given`` (by key) over the spec's defaults."""
        given = dict(given or {})
        known = {c.key for c in self.conditions}
        for key in given:
            if key not in known:
                raise SpecError(f"--condition {key}: spec {self.name} has "
                                f"{', '.join(sorted(known)) or 'no conditions'}")
        return {c.key: c.check(given.get(c.key, c.default)) for c in self.conditions}

    def feeds(self, x: np.ndarray, sigma: float, timestep: int | None,
              conditions: Mapping[str, tuple]) -> dict[str, np.ndarray]:
        """The model's inputs for the variance-exploding state ``x`` at ``sigma``."""
        batch = x.shape[0]
        if self.prediction != "edm":
            x = x / np.float32(np.sqrt(1.0 + sigma * sigma))
        noise = sigma if timestep is None else timestep
        feeds = {self.sample_input: np.ascontiguousarray(x, dtype=np.float32),
                 self.noise_input: np.full(batch, noise, dtype=DTYPES[self.noise_dtype])}
        for condition in self.conditions:
            feeds[condition.input] = condition.feed(conditions[condition.key], batch)
        return feeds

    def denoised(self, output: np.ndarray, x: np.ndarray, sigma: float) -> np.ndarray:
        """``D(x, sigma)`` from the model's ``output`` for the state ``x``."""
        if self.prediction == "edm":
            return output
        if self.prediction == "eps":
            return (x - np.float32(sigma) * output).astype(np.float32)
        alpha = 1.0 / np.sqrt(1.0 + sigma * sigma)
        x_vp = x * np.float32(alpha)
        return (np.float32(alpha) * x_vp - np.float32(sigma * alpha) * output
                ).astype(np.float32)


def _table(data: Mapping, key: str, where: str) -> Mapping:
    value = data.get(key)
    if not isinstance(value, Mapping):
        raise SpecError(f"{where}: missing table [{key}]")
    return value


def _field(table: Mapping, key: str, kind: type | tuple, where: str, default=None):
    value = table.get(key, default)
    if value is None:
        raise SpecError(f"{where}: missing {key!r}")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise SpecError(f"{where}: {key!r} = {value!r} is not a {getattr(kind, '__name__', kind)}")
    return value


def _choice(table: Mapping, key: str, choices: Sequence[str], where: str,
            default: str | None = None) -> str:
    value = _field(table, key, str, where, default)
    if value not in choices:
        raise SpecError(f"{where}: {key} = {value!r}; choose one of {', '.join(choices)}")
    return value


def _schedule(table: Mapping, where: str) -> Schedule:
    kind = _choice(table, "kind", SCHEDULES, where)
    if kind == "karras":
        schedule = Schedule(kind, sigma_min=_field(table, "sigma_min", float, where),
                            sigma_max=_field(table, "sigma_max", float, where),
                            rho=_field(table, "rho", float, where, 7.0))
        if not 0 < schedule.sigma_min < schedule.sigma_max:
            raise SpecError(f"{where}: need 0 < sigma_min < sigma_max")
        return schedule
    schedule = Schedule(kind, train_steps=_field(table, "train_steps", int, where),
                        beta_start=_field(table, "beta_start", float, where),
                        beta_end=_field(table, "beta_end", float, where),
                        beta_schedule=_choice(table, "beta_schedule", BETA_SCHEDULES, where,
                                              "linear"))
    if schedule.train_steps < 2 or not 0 < schedule.beta_start < schedule.beta_end < 1:
        raise SpecError(f"{where}: need train_steps >= 2 and 0 < beta_start < beta_end < 1")
    return schedule


def _condition(key: str, table: Mapping, where: str) -> Condition:
    if key in _RESERVED_KEYS:
        raise SpecError(f"{where}: condition {key!r} would overwrite the index key {key!r}")
    default = table.get("default")
    default = tuple(default) if isinstance(default, list) else (default,)
    if any(not isinstance(v, int | float) or isinstance(v, bool) for v in default):
        raise SpecError(f"{where}: 'default' must be a number or a list of numbers")
    span = table.get("range")
    if span is not None and (not isinstance(span, list) or len(span) != 2):
        raise SpecError(f"{where}: 'range' must be [lo, hi]")
    normalise = _field(table, "normalise", bool, where, False)
    if normalise and (span is None or span[0] == span[1]):
        raise SpecError(f"{where}: 'normalise' needs a range [lo, hi] with lo < hi")
    condition = Condition(key, _field(table, "input", str, where, key),
                          _choice(table, "dtype", tuple(DTYPES), where, "float32"),
                          default, tuple(span) if span else None, normalise)
    condition.check(default)
    return condition


def load_spec(name_or_path: str | Path) -> SamplerSpec:
    """A built-in spec by name, or a spec file by path; ``SpecError`` names what is wrong."""
    path = BUILTIN_SPECS.get(str(name_or_path), Path(name_or_path))
    if not path.is_file():
        raise SpecError(f"--spec {name_or_path}: neither a built-in spec "
                        f"({', '.join(BUILTIN_SPECS)}) nor a file")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise SpecError(f"{path}: not valid TOML ({error})") from None
    where = str(path)
    model = _table(data, "model", where)
    inputs = _table(data, "inputs", where)
    sample = _table(inputs, "sample", f"{where} [inputs]")
    noise = _table(inputs, "noise", f"{where} [inputs]")
    sampler = data.get("sampler", {})
    shape = _field(sample, "shape", list, f"{where} [inputs.sample]")
    if not shape or any(not isinstance(d, int) or d < 1 for d in shape):
        raise SpecError(f"{where} [inputs.sample]: 'shape' must be positive integers "
                        "(one sample, without the batch axis)")
    if ("file" in model) == ("resource" in model):
        raise SpecError(f"{where} [model]: give either 'file' (relative to the spec) or "
                        "'package', 'module' and 'resource'")
    source = ({"model_file": path.parent / _field(model, "file", str, where)}
              if "file" in model else
              {"package": _field(model, "package", str, f"{where} [model]"),
               "module": _field(model, "module", str, f"{where} [model]"),
               "resource": _field(model, "resource", str, f"{where} [model]")})
    conditions = tuple(_condition(key, table, f"{where} [inputs.conditions.{key}]")
                       for key, table in inputs.get("conditions", {}).items())
    spec = SamplerSpec(
        name=_field(data, "name", str, where, path.stem), path=path,
        output=_field(model, "output", str, f"{where} [model]"),
        sample_input=_field(sample, "input", str, f"{where} [inputs.sample]"),
        sample_shape=tuple(shape),
        noise_input=_field(noise, "input", str, f"{where} [inputs.noise]"),
        noise_dtype=_choice(noise, "dtype", tuple(DTYPES), f"{where} [inputs.noise]",
                            "float32"),
        prediction=_choice(data, "prediction", PREDICTIONS, where),
        schedule=_schedule(_table(data, "schedule", where), f"{where} [schedule]"),
        sampler=_choice(sampler, "default", SAMPLERS, f"{where} [sampler]", "euler"),
        eta=_field(sampler, "eta", float, f"{where} [sampler]", 0.0),
        conditions=conditions, caveat=model.get("caveat"), **source)
    if spec.prediction == "edm" and spec.schedule.kind != "karras":
        raise SpecError(f"{where}: an edm denoiser takes sigma; use schedule kind 'karras'")
    if spec.prediction != "edm" and spec.schedule.kind != "ddpm":
        raise SpecError(f"{where}: {spec.prediction}-prediction needs a ddpm schedule")
    if len(set(spec.inputs)) != len(spec.inputs):
        raise SpecError(f"{where}: two roles name the same model input")
    return spec
