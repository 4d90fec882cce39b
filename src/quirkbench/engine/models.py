"""Model zoo: a registry of model factories, built by name.

* ``mlp-W1-W2-...``  fully connected ReLU net with hidden widths W1, W2, ...
  (``mlp`` alone: no hidden layer, softmax regression; ``softmax`` is an alias).
* ``lenet-300-100``  the MLP of LeCun et al. 1998 and Han et al. 2015 (266,610 weights on MNIST).
* ``lenet5``         LeNet-5 (conv 6@5×5, pool, conv 16@5×5, pool, 120, 84), inputs ≥ 12×12.
* ``convnet``        a small VGG-style convnet for 32×32×3 (works on any image ≥ 8×8).

A factory is ``factory(input_shape, num_classes) -> nn.Module``; ``register_model(name,
factory)`` adds one (other packages: the entry-point group ``quirkbench.models``, naming a
module that registers). ``make_model(name, input_shape, num_classes, generator=g)`` draws the
initial weights from ``g`` and leaves torch's global RNG as it was.

Anywhere a model name is accepted, a reference ``package.module:factory`` names a user's
factory instead (imported on use, nothing to register). ``validate_model`` checks one up
front — importable, callable, ``(B, num_classes)`` logits on a dummy batch, every parameter
on the run's device — each failure a one-line ``UserError``.
"""

from __future__ import annotations

import hashlib
import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import UserError, did_you_mean
from ..registry import Registry

Factory = Callable[[tuple[int, ...], int], nn.Module]


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: ``factory(input_shape, num_classes) -> nn.Module``.

    ``variants``: a family of models named ``<name>-<suffix>`` (``mlp-300-100``); it maps the
    whole name to a factory and raises ``UserError`` for a suffix it cannot read.
    ``variant_syntax`` says how such names read in messages (``mlp-W1-W2-...``).
    ``example_input``: an input shape the model accepts (the registry test builds it there).
    """

    name: str
    factory: Factory
    description: str = ""
    example_input: tuple[int, ...] = (1, 28, 28)
    variants: Callable[[str], Factory] | None = None
    variant_syntax: str = ""


REGISTRY: Registry[ModelSpec] = Registry("model", "quirkbench.models",
                                         identity=lambda spec: spec.factory)
register = REGISTRY.register


def register_model(name: str, factory: Factory, *, description: str = "",
                   example_input: tuple[int, ...] = (1, 28, 28),
                   variants: Callable[[str], Factory] | None = None,
                   variant_syntax: str = "") -> ModelSpec:
    """Register ``factory(input_shape, num_classes) -> nn.Module`` under ``name``."""
    return register(ModelSpec(name, factory, description, tuple(example_input), variants,
                              variant_syntax))


class MLP(nn.Module):
    """x: (B, *input_shape) → logits (B, num_classes); ReLU between linear layers."""

    def __init__(self, input_shape, num_classes: int, widths=(512,)):
        super().__init__()
        dims = [math.prod(input_shape), *widths, num_classes]
        layers: list[nn.Module] = [nn.Flatten()]
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
            layers.append(nn.Linear(a, b))
            if i < len(dims) - 2:
                layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)

    def features(self, x):
        """Activations of the last hidden layer, (B, widths[-1])."""
        return self.net[:-1](x)


class LeNet5(nn.Module):
    """LeNet-5 for 1×28×28-like inputs (channels and size taken from ``input_shape``)."""

    def __init__(self, input_shape, num_classes: int):
        super().__init__()
        if len(input_shape) != 3 or min(input_shape[1:]) < 12:
            raise UserError(f"lenet5 needs C×H×W images at least 12×12, got "
                            f"{'×'.join(map(str, input_shape))}; use an mlp for this data set")
        c = input_shape[0]
        self.conv = nn.Sequential(
            nn.Conv2d(c, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
        n = self.conv(torch.zeros(1, *input_shape)).shape[1]
        self.fc = nn.Sequential(nn.Linear(n, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU())
        self.head = nn.Linear(84, num_classes)

    def features(self, x):
        return self.fc(self.conv(x))

    def forward(self, x):
        return self.head(self.features(x))


class ConvNet(nn.Module):
    """Three conv blocks (32, 64, 128 channels, BN, ReLU, pool), global pool, linear head."""

    def __init__(self, input_shape, num_classes: int, width: int = 32):
        super().__init__()
        if len(input_shape) != 3 or min(input_shape[1:]) < 8:
            raise UserError("convnet needs C×H×W images at least 8×8, got "
                            f"{'×'.join(map(str, input_shape))}")
        c = input_shape[0]
        blocks = []
        for w in (width, 2 * width, 4 * width):
            blocks += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
                       nn.MaxPool2d(2)]
            c = w
        self.body = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(c, num_classes)

    def features(self, x):
        return self.body(x)

    def forward(self, x):
        return self.head(self.features(x))


# --------------------------------------------------------------------------- the zoo

def _mlp_variant(name: str) -> Factory:
    """``mlp-W1-W2-...`` → an MLP factory with those hidden widths."""
    parts = name.split("-")[1:]
    try:
        widths = tuple(int(p) for p in parts)
    except ValueError:
        widths = ()
    if any(w <= 0 for w in widths) or not widths:
        raise UserError(f"bad MLP name {name!r}: widths must be positive integers, "
                        "e.g. mlp-512 or mlp-300-100")
    return lambda input_shape, num_classes: MLP(input_shape, num_classes, widths)


def _softmax(input_shape, num_classes: int) -> nn.Module:
    return MLP(input_shape, num_classes, ())


def _lenet_300_100(input_shape, num_classes: int) -> nn.Module:
    return MLP(input_shape, num_classes, (300, 100))


register_model("mlp", _softmax, variants=_mlp_variant, variant_syntax="mlp-W1-W2-...",
               description="fully connected ReLU net with hidden widths W1, W2, ... "
                           "(no hidden layer: softmax regression)")
register_model("lenet-300-100", _lenet_300_100,
               description="the MLP of LeCun et al. 1998 and Han et al. 2015 (mlp-300-100)")
register_model("softmax", _softmax, description="softmax regression (mlp)")
register_model("lenet5", LeNet5, description="LeNet-5: conv 6@5×5, pool, conv 16@5×5, pool, "
                                             "120, 84; images ≥ 12×12")
register_model("convnet", ConvNet, example_input=(3, 32, 32),
               description="three conv blocks (32, 64, 128, BN, ReLU, pool), global pool, "
                           "linear head; images ≥ 8×8")


# --------------------------------------------------------------------------- building

def model_names() -> list[str]:
    """Every valid model name, families as their syntax (``mlp-W1-W2-...``)."""
    out = []
    for spec in REGISTRY.values():
        out += [spec.name] + ([spec.variant_syntax or f"{spec.name}-..."] if spec.variants else [])
    return out


def is_reference(name) -> bool:
    """``package.module:factory`` (a user's factory) rather than a registered name."""
    return isinstance(name, str) and ":" in name


FACTORY_CONTRACT = "factory(input_shape, num_classes) -> torch.nn.Module"


def import_factory(ref: str) -> Factory:
    """The callable a ``package.module:factory`` reference names; one-line errors."""
    mod, _, attr = ref.partition(":")
    if not mod or not attr or not all(p.isidentifier() for p in mod.split(".") + attr.split(".")):
        raise UserError(f"model {ref!r} is not a reference of the form package.module:factory")
    try:
        obj = importlib.import_module(mod)
    except Exception as e:  # ImportError, or the module's own code failing
        msg = str(e).splitlines()[0] if str(e) else ""
        raise UserError(f"model {ref!r}: cannot import module {mod!r} ({type(e).__name__}: "
                        f"{msg})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UserError(f"model {ref!r}: module {mod!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UserError(f"model {ref!r}: {attr} is a {type(obj).__name__}, not callable; "
                        f"expected {FACTORY_CONTRACT}")
    return obj


def get_model_factory(name: str) -> Factory:
    """The factory of a registered model name, of a family member (``mlp-300-100``), or of a
    ``package.module:factory`` reference."""
    if is_reference(name):
        return import_factory(name)
    if name in REGISTRY:
        return REGISTRY[name].factory
    families = [s for s in REGISTRY.values() if s.variants and name.startswith(f"{s.name}-")]
    if families:
        return max(families, key=lambda s: len(s.name)).variants(name)
    raise UserError(f"unknown model {name!r}{did_you_mean(name, model_names())}; valid: "
                    f"{', '.join(model_names())}")


def build(factory: Factory, input_shape, num_classes: int = 10, *,
          generator: torch.Generator | None = None) -> nn.Module:
    """``factory(input_shape, num_classes)`` with its initial weights drawn from ``generator``.

    torch's layers draw their initial weights from the global RNG. With a generator, the
    factory runs while the global CPU generator holds ``generator``'s state (inside
    ``torch.random.fork_rng``, which restores the global state afterwards), and ``generator``
    advances past the draws: the weights are those of ``torch.manual_seed`` + constructor,
    and nothing outside sees a change. Without one, the global RNG is used, as torch does.
    """
    shape = tuple(int(d) for d in input_shape)
    if generator is None:
        model = factory(shape, num_classes)
    else:
        if generator.device.type != "cpu":
            raise ValueError("models are initialized on the CPU: pass a CPU torch.Generator, "
                             f"got one on {generator.device}")
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(generator.get_state())
            model = factory(shape, num_classes)
            generator.set_state(torch.get_rng_state())
    if not isinstance(model, nn.Module):
        raise UserError(f"model factory {getattr(factory, '__name__', factory)!r} returned "
                        f"{type(model).__name__}, not a torch.nn.Module")
    return model


def make_model(name: str, input_shape, num_classes: int = 10, seed: int | None = None, *,
               generator: torch.Generator | None = None) -> nn.Module:
    """Build a model by name, its initial weights drawn from ``generator`` (or a fresh one
    seeded with ``seed``); torch's global RNG is left as it was. Neither given: the global
    RNG, as torch's layers do. ``seed=s`` gives the weights that ``torch.manual_seed(s)``
    followed by the constructor gives."""
    if seed is not None and generator is not None:
        raise ValueError("make_model takes a seed or a generator, not both")
    factory = get_model_factory(name)
    if seed is not None:
        generator = torch.Generator().manual_seed(seed)
    return build(factory, input_shape, num_classes, generator=generator)


_VALIDATED: dict[tuple, str] = {}  # (name, shape, classes, device) → its architecture


def validate_model(name: str, input_shape, num_classes: int,
                   device: str | torch.device = "cpu") -> str:
    """Check that ``name`` builds a model that works here, or raise a one-line ``UserError``:
    the factory imports and is callable, returns an ``nn.Module`` whose parameters and
    buffers all sit on ``device`` after ``.to(device)``, and maps a dummy batch of two
    inputs of ``input_shape`` to ``(2, num_classes)`` logits. Checked once per process for
    each (name, shape, classes, device); torch's global RNG is left alone. An error raised in
    the user's code names its innermost frame there (file:line in function).

    Returns the model's ``architecture``: what a run's settings digest holds for a user's
    factory, so an edited model is never resumed into old results."""
    device = torch.device(device)
    shape = tuple(int(d) for d in input_shape)
    key = (name, shape, num_classes, str(device))
    if key in _VALIDATED:
        return _VALIDATED[key]
    what = f"model {name!r}"
    factory = get_model_factory(name)
    try:
        model = build(factory, shape, num_classes, generator=torch.Generator().manual_seed(0))
    except UserError as e:
        raise UserError(f"{what}: {e}") from None
    except Exception as e:
        raise UserError(f"{what}: factory({shape}, {num_classes}) raised {type(e).__name__}: "
                        f"{_first_line(e)}{user_frame(e)}") from None
    arch = architecture(model)
    try:
        model = model.to(device)
    except Exception as e:
        raise UserError(f"{what}: .to({device}) failed ({type(e).__name__}: "
                        f"{_first_line(e)})") from None
    off = [n for n, t in [*model.named_parameters(), *model.named_buffers()]
           if t.device.type != device.type
           or (device.index is not None and t.device.index != device.index)]
    if off:
        raise UserError(f"{what}: parameters not on the device {device} after .to({device}): "
                        f"{', '.join(off[:3])}{' ...' if len(off) > 3 else ''}")
    x = torch.zeros(2, *shape, device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            y = model(x)
    except Exception as e:
        msg = _first_line(e)
        hint = " (parameters not on the device?)" if "device" in msg else ""
        raise UserError(f"{what} failed on a dummy batch of shape {tuple(x.shape)}: "
                        f"{type(e).__name__}: {msg}{hint}{user_frame(e)}") from None
    model.train(was_training)
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != (2, num_classes):
        got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise UserError(f"{what}: output {got} on a dummy batch of shape {tuple(x.shape)}; "
                        f"expected logits of shape (2, {num_classes}){defined_at(factory)}")
    _VALIDATED[key] = arch
    return arch


def architecture(model: nn.Module) -> str:
    """``repr(model)``, each parameter's and buffer's name, shape and dtype, and the SHA-256
    of their initial values (on the CPU, before any ``.to``)."""
    h = hashlib.sha256()
    lines = [repr(model)]
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        lines.append(f"{name} {tuple(t.shape)} {t.dtype}")
        if t.device.type == "cpu":
            h.update(t.detach().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return "\n".join([*lines, f"init {h.hexdigest()}"])


def user_frame(err: BaseException) -> str:
    """`` (at FILE:LINE in FUNCTION)``: the innermost frame of ``err``'s traceback outside
    torch and quirkbench (the user's code), or "" when there is none."""
    import traceback

    skip = (str(Path(torch.__file__).resolve().parent), str(Path(__file__).resolve().parents[1]))
    frames = [f for f in traceback.extract_tb(err.__traceback__)
              if not str(Path(f.filename).resolve()).startswith(skip)]
    if not frames:
        return ""
    return f" (at {_short_path(frames[-1].filename)}:{frames[-1].lineno} in {frames[-1].name})"


def defined_at(factory) -> str:
    """`` (NAME at FILE:LINE)``: where the user's factory is defined, or ""."""
    import inspect

    try:
        file, line = inspect.getsourcefile(factory), inspect.getsourcelines(factory)[1]
    except (TypeError, OSError):
        return ""
    return f" ({getattr(factory, '__name__', 'factory')} at {_short_path(file)}:{line})"


def _short_path(file: str | None) -> str:
    """``file`` relative to the working folder when it lies below it."""
    try:
        return str(Path(file or "?").resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(file)





def _first_line(e: BaseException) -> str:
    s = str(e).strip()
    return s.splitlines()[0][:200] if s else ""


def count_params(model: nn.Module, nonzero: bool = False) -> int:
    """Number of parameters (``nonzero=True``: those not exactly zero, for pruned models)."""
    if nonzero:
        return int(sum((p != 0).sum().item() for p in model.parameters()))
    return sum(p.numel() for p in model.parameters())
