"""Packing and unpacking of packed port vectors, driven by the manifest's field layouts.

A leaf field of a layout has a path such as ``["lanes", 2, "operand"]``. Its *key* joins the
name parts (``"lanes.operand"``) and its *index* is the tuple of array indices (``(2,)``),
so a whole stream of beats is stored as one NumPy array per key, shaped
``[beats, *index]``: ``lanes.operand`` is ``[beats, lanes]``, ``last`` is ``[beats]``.
A port without a layout is one leaf with key ``""``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["Leaf", "PayloadCodec", "int_to_words", "words_to_int"]


def int_to_words(raw: int, words: int) -> np.ndarray:
    """A packed value as uint32 ``[words]``, least significant word first."""
    return np.array([(raw >> (32 * i)) & 0xFFFFFFFF for i in range(words)], np.uint32)


def words_to_int(words) -> int:
    """The inverse of :func:`int_to_words`."""
    return sum(int(w) << (32 * i) for i, w in enumerate(words))


@dataclass(frozen=True)
class Leaf:
    name: str
    key: str
    index: tuple[int, ...]
    offset: int
    width: int
    signed: bool
    enum: dict[int, str] | None = None

    @property
    def mask(self) -> int:
        return (1 << self.width) - 1

    def decode(self, raw: int) -> int:
        value = (raw >> self.offset) & self.mask
        if self.signed and value >> (self.width - 1):
            value -= 1 << self.width
        return value

    @property
    def bounds(self) -> tuple[int, int]:
        """The smallest and largest value the field holds."""
        low = -(1 << (self.width - 1)) if self.signed else 0
        return low, (1 << (self.width - (1 if self.signed else 0))) - 1

    def encode(self, value: int) -> int:
        value = int(value)
        low, high = self.bounds
        if not low <= value <= high:
            raise ValueError(f"field {self.name or '<port>'}: {value} does not fit "
                             f"{'signed' if self.signed else 'unsigned'}({self.width})")
        return (value & self.mask) << self.offset

    def show(self, value: int) -> str:
        if self.enum is not None and value in self.enum:
            return f"{self.enum[value]}({value})"
        return str(value)


class PayloadCodec:
    """Packs dictionaries of field values into port integers and back, for one port.

    Parameters
    ----------
    port : dict
        A port entry of the manifest (``name``, ``width``, ``signed`` and, for layout-shaped
        ports, ``fields``).
    """

    def __init__(self, port: Mapping):
        self.name = port["name"]
        self.width = port["width"]
        fields = port.get("fields") or [{"name": "", "path": [], "offset": 0,
                                         "width": port["width"], "signed": port["signed"],
                                         **({"enum": port["enum"]} if "enum" in port else {})}]
        self.leaves = [
            Leaf(name=f["name"],
                 key=".".join(str(p) for p in f["path"] if isinstance(p, str)),
                 index=tuple(p for p in f["path"] if isinstance(p, int)),
                 offset=f["offset"], width=f["width"], signed=f["signed"],
                 enum={v: k for k, v in f["enum"].items()} if "enum" in f else None)
            for f in fields
        ]
        self.keys = sorted({leaf.key for leaf in self.leaves})

    def pack(self, values: Mapping[str, object] | int) -> int:
        """One beat: ``values[key][index]`` for every leaf (a bare int for a one-leaf port)."""
        if not isinstance(values, Mapping):
            values = {"": values}
        raw = 0
        for leaf in self.leaves:
            value = values[leaf.key]
            for i in leaf.index:
                value = value[i]
            raw |= leaf.encode(value)
        return raw

    def pack_all(self, arrays: Mapping[str, np.ndarray]) -> list[int]:
        """Many beats: ``arrays[key]`` shaped ``[beats, *index]``."""
        missing = set(self.keys) - set(arrays)
        if missing:
            raise KeyError(f"port {self.name}: no values for field(s) {sorted(missing)}")
        beats = len(np.asarray(arrays[self.keys[0]]))
        raws = [0] * beats
        for leaf in self.leaves:
            column = np.asarray(arrays[leaf.key])[(slice(None), *leaf.index)]
            if len(column) != beats:
                raise ValueError(f"port {self.name}: field {leaf.key} has {len(column)} "
                                 f"beats, expected {beats}")
            for n, value in enumerate(column.tolist()):
                raws[n] |= leaf.encode(value)
        return raws

    @property
    def words(self) -> int:
        """32-bit words of a beat (what a Verilated model's port of this width holds)."""
        return -(-self.width // 32)

    def pack_words(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """Many beats as uint32 ``[beats, words]``, word 0 holding bits 0-31: what
        ``pack_all`` gives, vectorised, for the bulk tier's stimulus files."""
        missing = set(self.keys) - set(arrays)
        if missing:
            raise KeyError(f"port {self.name}: no values for field(s) {sorted(missing)}")
        beats = len(np.asarray(arrays[self.keys[0]]))
        out = np.zeros((beats, self.words), np.uint64)
        for leaf in self.leaves:
            column = np.asarray(arrays[leaf.key])[(slice(None), *leaf.index)]
            if len(column) != beats:
                raise ValueError(f"port {self.name}: field {leaf.key} has {len(column)} "
                                 f"beats, expected {beats}")
            if leaf.width > 63:
                raise ValueError(f"port {self.name}: field {leaf.name} is wider than 63 bits")
            column = column.astype(np.int64)
            low, high = leaf.bounds
            outside = (column < low) | (column > high)
            if outside.any():
                raise ValueError(f"field {leaf.name or '<port>'}: {column[outside][0]} does "
                                 f"not fit {'signed' if leaf.signed else 'unsigned'}"
                                 f"({leaf.width})")
            value = column.astype(np.uint64) & np.uint64(leaf.mask)
            done = 0
            while done < leaf.width:  # the field's bits, one word at a time
                word, bit = divmod(leaf.offset + done, 32)
                take = min(32 - bit, leaf.width - done)
                part = (value >> np.uint64(done)) & np.uint64((1 << take) - 1)
                out[:, word] |= part << np.uint64(bit)
                done += take
        return out.astype(np.uint32)

    def mask_words(self, keys) -> np.ndarray:
        """uint32 ``[words]`` with the bits of the fields named in ``keys`` set."""
        raw = 0
        for leaf in self.leaves:
            if leaf.key in keys:
                raw |= leaf.mask << leaf.offset
        return int_to_words(raw, self.words)

    def unpack(self, raw: int) -> dict[str, object]:
        """``{key: value or nested list}`` of one beat."""
        out: dict[str, object] = {}
        for leaf in self.leaves:
            value = leaf.decode(raw)
            if not leaf.index:
                out[leaf.key] = value
                continue
            container = out.setdefault(leaf.key, [])
            for depth, i in enumerate(leaf.index):
                last = depth == len(leaf.index) - 1
                while len(container) <= i:
                    container.append(None if last else [])
                if last:
                    container[i] = value
                else:
                    container = container[i]
        return out

    def describe(self, raw: int) -> str:
        """Readable one-line form of a beat, enum values by name."""
        parts = []
        groups: dict[str, list[str]] = {}
        for leaf in self.leaves:
            groups.setdefault(leaf.key, []).append(leaf.show(leaf.decode(raw)))
        for key, shown in groups.items():
            text = shown[0] if len(shown) == 1 else "[" + ", ".join(shown) + "]"
            parts.append(f"{key}={text}" if key else text)
        return " ".join(parts)

    def differences(self, expected: int, got: int, *,
                    labels: tuple[str, str] = ("expected", "got")) -> list[str]:
        """``name: expected X, got Y`` for every leaf that differs."""
        lines = []
        for leaf in self.leaves:
            want, have = leaf.decode(expected), leaf.decode(got)
            if want != have:
                lines.append(f"{leaf.name or self.name}: {labels[0]} {leaf.show(want)}, "
                             f"{labels[1]} {leaf.show(have)}")
        return lines
