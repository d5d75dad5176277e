"""Co-observed RGB/thermal pairs (`data.pairs`): the same person at the same instant, seen by
both sensors. `vireid synth regdb --paired` and `vireid synth scene --crops` write them to
ROOT/idx/pairs.txt, `training/scripts/make_scene_trainset.sh` merges them across scenes, and a
box's own harvest exports the same format:

    # comment
    <visible relpath> <thermal relpath>

paths relative to the dataset root, as in the RegDB-layout lists. Only pairs of the training
lists are used; pairs of the test lists (other people) are skipped and counted; anything else
is an error naming the file, the line and the fix.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .data import RGB, THERMAL, Sample

FIX = ("`vireid synth regdb --paired` and `vireid synth scene --crops` write idx/pairs.txt "
       "(training/scripts/make_scene_trainset.sh carries them into its training set)")


@dataclass(frozen=True)
class Pairs:
    path: Path
    pairs: list[tuple[int, int]]   # (RGB sample index, thermal sample index) into the training samples
    test_pairs: int                # lines naming two crops of the test lists (skipped)

    def partners(self) -> dict[int, list[int]]:
        """RGB sample index -> the thermal sample indices co-observed with it."""
        out: dict[int, list[int]] = {}
        for v, t in self.pairs:
            out.setdefault(v, []).append(t)
        return out


def resolve(root: str | Path, value: str) -> Path:
    """data.pairs: a path, relative to data.root unless absolute."""
    p = Path(value)
    return p if p.is_absolute() else Path(root) / p


def _key(path: str | Path) -> str:
    return os.path.normpath(str(path))


def read_pairs(path: str | Path, root: str | Path, train: list[Sample], test: list[Sample] = ()) -> Pairs:
    """The pairs of `path` whose two crops are training samples (indices into `train`).
    Relative paths in the file are resolved against `root`, as the image lists are."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data.pairs: {path} does not exist; {FIX}; or set data.pairs = \"\" to train "
                                "without pairs")
    where_train = {_key(s.path): i for i, s in enumerate(train)}
    where_test = {_key(s.path): s for s in test}
    root = Path(root)
    seen: set[tuple[int, int]] = set()
    pairs: list[tuple[int, int]] = []
    test_pairs = lines = 0
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        lines += 1
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(f"{path}:{n}: expected '<visible relpath> <thermal relpath>', got {line!r}")
        found = []
        for rel, want, column in ((parts[0], RGB, "first"), (parts[1], THERMAL, "second")):
            key = _key(root / rel)
            if key in where_train:
                s, i = train[where_train[key]], where_train[key]
            elif key in where_test:
                s, i = where_test[key], None
            else:
                raise ValueError(f"{path}:{n}: {rel} is not in the training or test lists of {root} "
                                 "(idx/*.txt): a pair must name two listed crops; regenerate the pairs with "
                                 "the crops, or remove the line")
            if s.modality != want:
                raise ValueError(f"{path}:{n}: {rel} is {'a thermal' if s.modality == THERMAL else 'a visible'} "
                                 f"crop, but the {column} column must be the "
                                 f"{'visible' if want == RGB else 'thermal'} one (lines are "
                                 "'<visible relpath> <thermal relpath>')")
            found.append((s, i))
        (sv, iv), (st, it) = found
        if (iv is None) != (it is None):
            tr, te = (parts[0], parts[1]) if it is None else (parts[1], parts[0])
            raise ValueError(f"{path}:{n}: {tr} is a training crop but {te} is a test crop: a pair is one "
                             "person at one instant, so both crops belong to the same split")
        if sv.label != st.label:
            raise ValueError(f"{path}:{n}: {parts[0]} (identity label {sv.label}) and {parts[1]} (label "
                             f"{st.label}) are listed as different people: a pair is one person at one instant")
        if iv is None:
            test_pairs += 1
        elif (iv, it) not in seen:
            seen.add((iv, it))
            pairs.append((iv, it))
    if not pairs:
        raise ValueError(f"data.pairs: {path} has no pair of two training crops ({lines} pair lines, "
                         f"{test_pairs} of the test lists); {FIX}; or set data.pairs = \"\"")
    return Pairs(path, pairs, test_pairs)
