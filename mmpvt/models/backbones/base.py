"""What PVT v1 and PVTv2 share as backbones: argument checks, the stage loop, freezing and weights.

A family subclasses :class:`PyramidVisionBackbone`, parses its arch with :func:`parse_arch` and
builds ``self.stages``: modules mapping a (B, C_in, H, W) map to (B, h*w, C) tokens and their grid.
Everything else (out_indices, frozen stages, input checks, random init, strict checkpoint loading
through ``init_cfg``) is here, once.
"""
import math
import numbers
from typing import Dict, List, Optional, Sequence, Tuple, Union

from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.model.weight_init import initialize, trunc_normal_
from torch import Tensor, nn

from ...torch_compat import autocast_enabled, register_load_state_dict_pre_hook
from ..checkpoints import adopt_classifier_state_dict, adopt_state_dict, load_backbone_checkpoint
from ..layers import tokens_to_map, tracing_shapes

ArchSpec = Union[str, dict]


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def parse_arch(arch: ArchSpec, family: str, settings: Dict[str, dict],
               per_stage_keys: Sequence[str], flags: Optional[Dict[str, bool]] = None) -> dict:
    """Validate `arch` (a variant name or a dict) into a dict of per-stage tuples (+ flags).

    per_stage_keys: keys holding one value per stage; ``embed_dims``, ``depths``,
    ``num_heads``, ``sr_ratios``, ``patch_sizes`` must be positive integers, ``mlp_ratios``
    positive numbers. flags: optional boolean keys with their defaults (e.g. PVTv2's ``linear``).
    """
    flags = dict(flags or {})
    if isinstance(arch, str):
        if arch not in settings:
            raise ValueError(f'Unknown {family} arch {arch!r}; expected one of '
                             f'{sorted(settings)} or a dict with keys {list(per_stage_keys)}'
                             + (f' (optional: {list(flags)})' if flags else ''))
        arch = settings[arch]
    elif not isinstance(arch, dict):
        raise TypeError(f'{family} arch must be a str or a dict, got {type(arch).__name__}')
    missing = [k for k in per_stage_keys if k not in arch]
    extra = [k for k in arch if k not in per_stage_keys and k not in flags]
    if missing or extra:
        raise ValueError(f'Custom {family} arch needs the keys {list(per_stage_keys)}'
                         + (f' (optional: {list(flags)})' if flags else '')
                         + f'; missing {missing}, unexpected {extra}')
    parsed = {}
    for key in per_stage_keys:
        value = arch[key]
        if not isinstance(value, (list, tuple)):
            raise TypeError(f'{family} arch: {key} must be a list with one value per stage, '
                            f'got {value!r}')
        parsed[key] = tuple(value)
    lengths = {k: len(v) for k, v in parsed.items()}
    if len(set(lengths.values())) != 1 or 0 in lengths.values():
        raise ValueError(f'{family} arch: every entry needs one value per stage (and at least '
                         f'one stage), got lengths {lengths}')
    for key, values in parsed.items():
        check = ((lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool) and v > 0)
                 if key == 'mlp_ratios' else (lambda v: _is_int(v) and v > 0))
        bad = [v for v in values if not check(v)]
        if bad:
            kind = 'positive numbers' if key == 'mlp_ratios' else 'positive integers'
            raise ValueError(f'{family} arch: {key} must be {kind}, got {list(values)}')
    for i, (c, h) in enumerate(zip(parsed['embed_dims'], parsed['num_heads'])):
        if c % h:
            raise ValueError(f'{family} arch: stage {i} embed_dims {c} is not divisible by '
                             f'num_heads {h}')
    for key, default in flags.items():
        value = arch.get(key, default)
        if not isinstance(value, bool):
            raise TypeError(f'{family} arch: {key} must be True or False, got {value!r}')
        parsed[key] = value
    return parsed


def drop_path_schedule(rate: float, depths: Sequence[int]) -> List[List[float]]:
    """Per-stage stochastic-depth rates rising linearly from 0 (first layer) to `rate` (last)."""
    total = sum(depths)
    rates = [rate * i / (total - 1) if total > 1 else 0.0 for i in range(total)]
    out, start = [], 0
    for d in depths:
        out.append(rates[start:start + d])
        start += d
    return out


def _adopt_loaded_state_dict(module, state_dict, prefix, *args) -> None:
    adopt_state_dict(module, state_dict, prefix)


class PyramidVisionBackbone(BaseModule):
    """Base of :class:`~mmpvt.models.PVT` and :class:`~mmpvt.models.PVTv2` (see those).

    Subclasses set ``family`` (for messages and checkpoint detection) and build
    ``self.stages`` in their ``__init__`` after calling this one, then call ``_freeze_stages()``.
    """

    family = 'PVT'
    # Whether the backbone holds a classifier's class token (PVT v1, out_type='cls_token'): then
    # checkpoints keep their class token, final norm and class-token position when loaded.
    with_cls_token = False

    def __init__(self, num_stages: int, in_channels: int, out_indices: Union[int, Sequence[int]],
                 drop_path_rate: float, frozen_stages: int, with_cp: bool,
                 init_cfg: Optional[Union[dict, list]]) -> None:
        super().__init__(init_cfg=init_cfg)
        name = self.family
        if not _is_int(in_channels) or in_channels < 1:
            raise ValueError(f'{name}: in_channels must be a positive integer, got '
                             f'{in_channels!r}')
        if _is_int(out_indices):
            out_indices = (out_indices, )
        if not isinstance(out_indices, (list, tuple)):
            raise TypeError(f'{name}: out_indices must be an int or a sequence of stage indices, '
                            f'got {out_indices!r}')
        out_indices = tuple(out_indices)
        if (not out_indices or not all(_is_int(i) and 0 <= i < num_stages for i in out_indices)
                or len(set(out_indices)) != len(out_indices)):
            raise ValueError(f'{name}: out_indices must be distinct stage indices in '
                             f'[0, {num_stages - 1}], got {out_indices}')
        if not isinstance(drop_path_rate, numbers.Real) or not 0 <= drop_path_rate < 1:
            raise ValueError(f'{name}: drop_path_rate must be in [0, 1), got {drop_path_rate!r}')
        if not _is_int(frozen_stages) or not -1 <= frozen_stages <= num_stages:
            raise ValueError(f'{name}: frozen_stages must be an integer in [-1, {num_stages}], '
                             f'got {frozen_stages!r}')
        if not isinstance(with_cp, bool):
            raise TypeError(f'{name}: with_cp must be True or False, got {with_cp!r}')
        self.in_channels = in_channels
        self.out_indices = out_indices
        if max(out_indices) < num_stages - 1:
            print_log(f'{name}: out_indices {out_indices} returns nothing of stages '
                      f'{list(range(max(out_indices) + 1, num_stages))}: they are not run and '
                      'not trained (requires_grad=False)', logger='current')
        self.frozen_stages = frozen_stages
        self.with_cp = with_cp
        self.stages = nn.ModuleList()
        # Any loader (whole detectors through mmengine, load_from, inferencers) gets the
        # authors'/mmdet/timm/transformers layouts converted and a mismatch raised, not logged.
        register_load_state_dict_pre_hook(self, _adopt_loaded_state_dict)

    def _checkpoint_filter(self, state_dict: dict, prefix: str, *args) -> None:
        """mmpretrain's ImageClassifier registers this as *its* load-state-dict pre-hook (prefix:
        the classifier's): the authors', timm's and transformers' whole ImageNet classifiers
        are renamed to the classifier's ``backbone.*`` / ``head.fc.*`` before anything loads."""
        adopt_classifier_state_dict(self, state_dict, prefix)

    # ---------------------------------------------------------------------------------------
    def _random_init(self) -> None:
        """The authors' initialisation: trunc-normal(0.02) linears, unit LayerNorms and
        He-normal convolutions with fan-out = k*k*C_out/groups (PVTv2's; PVT v1 overrides the
        convolutions)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
                nn.init.normal_(m.weight, 0, math.sqrt(2.0 / fan_out))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def init_weights(self) -> None:
        """Random init, then `init_cfg` applied; a ``Pretrained`` entry goes through our loader.

        mmengine's generic 'Pretrained' initialiser loads with strict=False and would only log
        mismatches; we convert the checkpoint layout first and refuse mismatched keys or shapes.
        ``init_cfg`` may be a dict or a list of dicts (as mmengine allows); other entries are
        applied by mmengine before the checkpoint is loaded.
        """
        cfgs = self.init_cfg if isinstance(self.init_cfg, list) else [self.init_cfg]
        cfgs = [c for c in cfgs if c is not None]
        pretrained = [c for c in cfgs if c.get('type') == 'Pretrained']
        if len(pretrained) > 1:
            raise ValueError(f'{self.family}: init_cfg has {len(pretrained)} Pretrained entries; '
                             'give one checkpoint')
        self._random_init()
        others = [c for c in cfgs if c.get('type') != 'Pretrained']
        if others:
            initialize(self, others)
        if pretrained:
            cfg = pretrained[0]
            if 'checkpoint' not in cfg:
                raise ValueError(f"{self.family}: init_cfg {cfg} has no 'checkpoint' (a path or "
                                 'URL)')
            load_backbone_checkpoint(self, cfg['checkpoint'], prefix=cfg.get('prefix'))
        self._is_init = True

    def _unused_stages(self) -> List[int]:
        """The stages after the last one ``out_indices`` returns: never run, so never trained."""
        return list(range(max(self.out_indices) + 1, len(self.stages)))

    def _freeze_stages(self) -> None:
        """Stages 1..``frozen_stages`` and the unused stages after the last returned one get
        requires_grad=False and stay in eval mode. The unused ones keep their parameters (a full
        checkpoint loads as it is) but take no part in training: DistributedDataParallel (with
        mmengine's find_unused_parameters=False) stops at the second iteration on a trainable
        parameter that gets no gradient."""
        unused = self._unused_stages()
        for i, stage in enumerate(self.stages):
            if i < self.frozen_stages or i in unused:
                stage.eval()
                for p in stage.parameters():
                    p.requires_grad = False

    def train(self, mode: bool = True) -> 'PyramidVisionBackbone':
        super().train(mode)
        self._freeze_stages()
        return self

    def __prepare_scriptable__(self):
        # torch.jit.script calls this first: one sentence instead of TorchScript's 30-line error
        raise RuntimeError(f'{self.family} cannot be compiled with torch.jit.script (TorchScript '
                           'is not supported: the backbone takes size-dependent Python paths). '
                           'Use torch.export.export, torch.compile or the ONNX export '
                           '(tools/deploy/export_onnx.py) instead.')

    # ---------------------------------------------------------------------------------------
    def _check_input(self, x) -> None:
        name, c = self.family, self.in_channels
        if not isinstance(x, Tensor):
            raise TypeError(f'{name} expects a (B, {c}, H, W) tensor, got {type(x).__name__}')
        # While an exporter traces, sizes are traced values and a comparison on them would be
        # frozen into the graph (a TracerWarning): only the rank is checked then.
        bad_size = not tracing_shapes() and (x.shape[1] != c or x.shape[2] < 1 or x.shape[3] < 1)
        if x.dim() != 4 or bad_size:
            raise ValueError(f'{name} expects a (B, {c}, H, W) tensor with H, W >= 1, got shape '
                             f'{tuple(x.shape)}')
        if not x.is_floating_point():
            raise TypeError(f'{name} expects a floating-point (normalised) image tensor, got '
                            f'dtype {x.dtype}; convert and normalise it first (the mmdet/mmseg '
                            'data preprocessor does)')
        weight_dtype = self.stages[0].patch_embed.proj.weight.dtype
        if x.dtype != weight_dtype and not autocast_enabled(x.device.type):
            raise TypeError(f'{name}: input dtype {x.dtype} differs from the weights\' '
                            f'{weight_dtype}; use x.to({weight_dtype}), model.to({x.dtype}) or '
                            'autocast')

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """(B, C_in, H, W) -> the maps of the stages in ``out_indices``, in that order."""
        self._check_input(x)
        outs = {}
        last = max(self.out_indices)
        for i, stage in enumerate(self.stages[:last + 1]):  # later stages are not needed
            tokens, hw = stage(x)
            x = tokens_to_map(tokens, hw)  # a view: the next patch embedding reads it directly
            if i in self.out_indices:
                outs[i] = x.contiguous()
        return tuple(outs[i] for i in self.out_indices)
